using System.Buffers.Binary;
using System.Text;
using Emu64.Memory;

namespace Emu64.Loader;

/// <summary>
/// Loads a bzImage through the Linux/x86 boot protocol (Documentation/arch/x86/boot.rst) and enters it
/// through the protocol's 32-bit entry, as a boot loader without a real-mode BIOS does:
/// <list type="bullet">
/// <item>the setup header (at 0x1F1 in the file, magic "HdrS" at 0x202) is checked: protocol 2.12 or newer,
///   LOADED_HIGH (a bzImage), XLF_KERNEL_64, the file holds the setup sectors and the <c>syssize</c> paragraphs
///   it announces, and the decompression buffer (<c>init_size</c> bytes from <c>pref_address</c>, or the load
///   address aligned to <c>kernel_alignment</c> if that is higher) fits in usable RAM;</item>
/// <item>the protected-mode kernel (the file after the setup sectors) goes to 1 MiB, where QEMU puts it and
///   where the protocol requires a non-relocatable kernel to be;</item>
/// <item><c>boot_params</c> (the "zero page") is built at 0x10000 (QEMU's address for the real-mode part of a
///   recent kernel): a copy of the setup header, type_of_loader 0xB0 (QEMU's id), the command line at 0x20000
///   (QEMU's address), the initrd at the top of usable RAM below <c>initrd_addr_max</c> (as QEMU places it),
///   the e820 map (<see cref="E820"/>), hardware_subarch 0 (a PC), and with protocol 2.14 or newer the RSDP
///   address;</item>
/// <item>the CPU starts at <c>code32_start</c> in flat 32-bit protected mode with paging off, interrupts off,
///   a GDT holding __BOOT_CS (0x10) and __BOOT_DS (0x18), ESI = boot_params and EBP = EDI = EBX = 0 (the
///   protocol's "32-bit boot protocol" section). The kernel's own startup_32 then turns on long mode.</item>
/// </list>
/// QEMU itself enters such a kernel through its real-mode setup code, which asks the BIOS for the e820 map
/// and the video mode and then takes this same 32-bit entry; Emu64 has no real-mode BIOS, so it fills in what
/// the setup code would have found. The screen_info stays zero: there is no display (Linux's VGA console
/// sees mode 0 with 0 lines and 0 columns and stays off).
/// </summary>
public static class LinuxBoot
{
    /// <summary>"HdrS" at 0x202: the setup header's magic.</summary>
    public const uint HeaderMagic = 0x53726448;
    /// <summary>The oldest protocol taken: 2.12 added xloadflags (XLF_KERNEL_64), the newest field checked.</summary>
    public const ushort MinVersion = 0x020C;
    /// <summary>QEMU's boot loader id (0xB, version 0): what Linux sees under <c>qemu -kernel</c>.</summary>
    public const byte TypeOfLoader = 0xB0;

    /// <summary>Where boot_params (struct boot_params, 4 KiB) is built: QEMU's real_addr for a recent kernel.</summary>
    public const uint BootParamsAddress = 0x10000;
    /// <summary>The GDT with __BOOT_CS and __BOOT_DS the 32-bit entry needs (right after boot_params).</summary>
    public const uint GdtAddress = 0x11000;
    /// <summary>The kernel command line: QEMU's cmdline_addr for a recent kernel.</summary>
    public const uint CmdLineAddress = 0x20000;
    /// <summary>Where the protected-mode kernel is loaded (code32_start): 1 MiB, as QEMU.</summary>
    public const uint KernelAddress = 0x100000;

    /// <summary>Selectors the 32-bit boot protocol requires (arch/x86/include/asm/segment.h).</summary>
    public const ushort BootCs = 0x10, BootDs = 0x18;

    /// <summary>Offsets in struct boot_params (arch/x86/include/uapi/asm/bootparam.h) and its setup_header.</summary>
    public static class Bp
    {
        public const int AcpiRsdpAddr = 0x070, ExtRamdiskImage = 0x0C0, ExtRamdiskSize = 0x0C4, ExtCmdLinePtr = 0x0C8,
            AltMemK = 0x1E0, E820Entries = 0x1E8, Sentinel = 0x1EF, Hdr = 0x1F1, E820Table = 0x2D0, Size = 0x1000;
        // setup_header fields, at their offsets in boot_params (and in the bzImage file).
        public const int SetupSects = 0x1F1, Syssize = 0x1F4, VidMode = 0x1FA, BootFlag = 0x1FE, Jump = 0x200, Header = 0x202,
            Version = 0x206, TypeOfLoader = 0x210, LoadFlags = 0x211, Code32Start = 0x214, RamdiskImage = 0x218,
            RamdiskSize = 0x21C, CmdLinePtr = 0x228, InitrdAddrMax = 0x22C, KernelAlignment = 0x230, RelocatableKernel = 0x234,
            XLoadFlags = 0x236, CmdlineSize = 0x238, HardwareSubarch = 0x23C, SetupData = 0x250, PrefAddress = 0x258, InitSize = 0x260;
        /// <summary>The setup header ends no later than here (edd_mbr_sig_buffer follows).</summary>
        public const int HdrLimit = 0x290;
        public const int E820Max = 128;   // E820_MAX_ENTRIES_ZEROPAGE
    }

    public const byte LoadedHigh = 0x01;   // loadflags: protected-mode code at 0x100000 (a bzImage)
    public const ushort XlfKernel64 = 0x01; // xloadflags: the kernel has the legacy 64-bit entry (a 64-bit kernel)

    public sealed record Result(uint Entry, uint BootParams, ushort Version, ulong KernelEnd, ulong DecompressStart, ulong DecompressEnd,
        ulong RamdiskImage, ulong RamdiskSize);

    /// <summary>True when the file has the Linux setup header's magic, the test QEMU uses to tell a Linux kernel.</summary>
    public static bool IsBzImage(ReadOnlySpan<byte> image) => image.Length >= Bp.Header + 4 && BinaryPrimitives.ReadUInt32LittleEndian(image[Bp.Header..]) == HeaderMagic;

    /// <summary>
    /// Loads the bzImage <paramref name="image"/>, its initrd and command line into <paramref name="mem"/> and
    /// returns the entry state to set (<see cref="Enter"/>). <paramref name="rsdp"/> is the ACPI RSDP's physical
    /// address (0: none; Linux then scans the BIOS area for it).
    /// </summary>
    public static Result Load(PhysicalMemory mem, byte[] image, string append, IReadOnlyList<BootModule> initrds, ulong rsdp)
    {
        var f = image.AsSpan();
        int hdrEnd = Bp.Jump + 2 + image[Bp.Jump + 1];   // the jump at 0x200 skips the header: its end
        if (image.Length < Bp.InitSize + 4 || image.Length < hdrEnd)
            throw new ImageException($"Linux setup header is truncated (the file has {image.Length} bytes)");
        ushort version = U16(f, Bp.Version);
        if (version < MinVersion)
            throw new ImageException($"Linux boot protocol {version >> 8}.{version & 0xFF:d2} is older than 2.12, the oldest Emu64 boots");
        byte loadflags = f[Bp.LoadFlags];
        if ((loadflags & LoadedHigh) == 0)
            throw new ImageException("Linux kernel is a zImage (loadflags bit 0, LOADED_HIGH, is clear); Emu64 boots bzImages");
        ushort xloadflags = U16(f, Bp.XLoadFlags);
        if ((xloadflags & XlfKernel64) == 0)
            throw new ImageException("Linux kernel is 32-bit (xloadflags bit 0, XLF_KERNEL_64, is clear); Emu64 boots 64-bit kernels");
        int setupSects = f[Bp.SetupSects] == 0 ? 4 : f[Bp.SetupSects];
        int setupBytes = (setupSects + 1) * 512;
        if (setupBytes >= image.Length)
            throw new ImageException($"Linux setup code ({setupSects} sectors) leaves no protected-mode kernel in the file ({image.Length} bytes)");
        ulong pmSize = (ulong)(image.Length - setupBytes);
        ulong syssize = (ulong)U32(f, Bp.Syssize) * 16;   // in 16-byte paragraphs, rounded up
        if (syssize > ((pmSize + 15) & ~15UL))
            throw new ImageException($"Linux protected-mode kernel is truncated: syssize says 0x{syssize:x} bytes, the file has 0x{pmSize:x} after the setup code");

        ulong usableTop = E820.UsableTop(mem.RamSize);
        ulong kernelEnd = KernelAddress + pmSize;
        if (kernelEnd > usableTop)
            throw new ImageException($"Linux kernel [0x{KernelAddress:x}, 0x{kernelEnd:x}) does not fit in {mem.RamSize >> 20} MiB of RAM (use -m)");
        // The decompressor runs in a buffer of init_size bytes from the load address aligned up to kernel_alignment,
        // or from pref_address (LOAD_PHYSICAL_ADDR) if that is higher (arch/x86/boot/compressed/head_64.S).
        bool relocatable = f[Bp.RelocatableKernel] != 0;
        uint alignment = U32(f, Bp.KernelAlignment);
        ulong pref = U64(f, Bp.PrefAddress), initSize = U32(f, Bp.InitSize);
        if (relocatable && (alignment == 0 || (alignment & (alignment - 1)) != 0))
            throw new ImageException($"Linux kernel_alignment 0x{alignment:x} is not a power of two");
        ulong bufStart = relocatable ? Math.Max((KernelAddress + (ulong)alignment - 1) & ~((ulong)alignment - 1), pref) : pref;
        ulong bufEnd = bufStart + initSize;
        if (bufEnd > usableTop || bufEnd < bufStart)
            throw new ImageException($"Linux kernel needs init_size 0x{initSize:x} bytes from 0x{bufStart:x} to decompress, more than {mem.RamSize >> 20} MiB of RAM holds (use -m)");

        // Command line: at most cmdline_size bytes (without the NUL).
        var cmd = Encoding.UTF8.GetBytes(append);
        uint cmdlineSize = U32(f, Bp.CmdlineSize);
        if ((ulong)cmd.Length > cmdlineSize)
            throw new ImageException($"the command line is {cmd.Length} bytes long; this kernel takes at most {cmdlineSize} (cmdline_size)", "command line");

        // The initrd: one file, at the top of usable RAM below initrd_addr_max, page-aligned (QEMU's placement).
        var (rdAddr, rdSize) = PlaceInitrd(mem, initrds, U32(f, Bp.InitrdAddrMax), Math.Max(kernelEnd, bufEnd), "the kernel's decompression buffer");

        // boot_params: zero, then the setup header copied from the file, then what the loader fills in.
        var bp = new byte[Bp.Size];
        f[Bp.Hdr..Math.Min(hdrEnd, Bp.HdrLimit)].CopyTo(bp.AsSpan(Bp.Hdr));
        var b = bp.AsSpan();
        b[Bp.TypeOfLoader] = TypeOfLoader;
        W32(b, Bp.Code32Start, KernelAddress);
        W32(b, Bp.CmdLinePtr, CmdLineAddress);
        W32(b, Bp.RamdiskImage, (uint)rdAddr);
        W32(b, Bp.RamdiskSize, (uint)rdSize);
        W32(b, Bp.HardwareSubarch, 0);   // X86_SUBARCH_PC
        W64(b, Bp.SetupData, 0);
        if (version >= 0x020E && rsdp != 0) W64(b, Bp.AcpiRsdpAddr, rsdp);
        W32(b, Bp.AltMemK, (uint)((usableTop >> 10) - 1024));   // what INT 15h AX=E801h would report: KiB above 1 MiB
        var map = E820.Map(mem.RamSize);
        b[Bp.E820Entries] = (byte)map.Length;
        for (int k = 0; k < map.Length; k++)
        {
            int o = Bp.E820Table + 20 * k;
            W64(b, o, map[k].Base); W64(b, o + 8, map[k].Length); W32(b, o + 16, map[k].Type);
        }

        // 32-bit entry GDT: null, unused, __BOOT_CS flat execute/read, __BOOT_DS flat read/write.
        var gdt = new byte[32];
        BinaryPrimitives.WriteUInt64LittleEndian(gdt.AsSpan(BootCs), 0x00CF9B000000FFFFUL);
        BinaryPrimitives.WriteUInt64LittleEndian(gdt.AsSpan(BootDs), 0x00CF93000000FFFFUL);

        mem.WriteBytes(KernelAddress, f[setupBytes..]);
        mem.WriteBytes(BootParamsAddress, bp);
        mem.WriteBytes(GdtAddress, gdt);
        mem.WriteBytes(CmdLineAddress, cmd.Append((byte)0).ToArray());
        if (rdSize != 0) mem.WriteBytes(rdAddr, initrds[0].Data);
        return new Result(KernelAddress, BootParamsAddress, version, kernelEnd, bufStart, bufEnd, rdAddr, rdSize);
    }

    /// <summary>Sets the CPU to the 32-bit boot protocol's entry state for a loaded kernel.</summary>
    public static void Enter(Cpu.Cpu cpu, Result r)
    {
        cpu.ResetToFlat32(r.Entry);
        cpu.Gdtr = new Cpu.TableReg { Base = GdtAddress, Limit = 31 };
        cpu.R[Cpu.Reg.RSI] = r.BootParams;
        cpu.R[Cpu.Reg.RBP] = 0; cpu.R[Cpu.Reg.RDI] = 0; cpu.R[Cpu.Reg.RBX] = 0;
    }

    /// <summary>
    /// Places the one initrd Linux takes as QEMU does: page-aligned, ending at the lower of
    /// <paramref name="addrMax"/> + 1 and the end of usable RAM; it must stay above <paramref name="floor"/>.
    /// Returns (0, 0) without an initrd.
    /// </summary>
    internal static (ulong Addr, ulong Size) PlaceInitrd(PhysicalMemory mem, IReadOnlyList<BootModule> initrds, ulong addrMax, ulong floor, string floorName)
    {
        if (initrds.Count == 0) return (0, 0);
        if (initrds.Count > 1 || initrds[0].CommandLine.Contains(' '))
            throw new ImageException("a Linux kernel takes one --initrd FILE, without arguments (concatenate cpio archives into one file)", "initrd module");
        ulong size = (ulong)initrds[0].Data.Length;
        ulong top = Math.Min(addrMax + 1, E820.UsableTop(mem.RamSize));
        ulong addr = size > top ? 0 : (top - size) & ~0xFFFUL;
        if (size > top || addr < floor)
            throw new ImageException($"initrd of {size} bytes does not fit between {floorName} (ends 0x{floor:x}) and 0x{top:x} (use -m)", "initrd module");
        return (addr, size);
    }

    private static ushort U16(ReadOnlySpan<byte> d, int o) => BinaryPrimitives.ReadUInt16LittleEndian(d[o..]);
    private static uint U32(ReadOnlySpan<byte> d, int o) => BinaryPrimitives.ReadUInt32LittleEndian(d[o..]);
    private static ulong U64(ReadOnlySpan<byte> d, int o) => BinaryPrimitives.ReadUInt64LittleEndian(d[o..]);
    private static void W32(Span<byte> d, int o, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(d[o..], v);
    private static void W64(Span<byte> d, int o, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(d[o..], v);
}
