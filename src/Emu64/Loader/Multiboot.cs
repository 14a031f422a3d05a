using System.Buffers.Binary;
using System.Text;
using Emu64.Memory;

namespace Emu64.Loader;

/// <summary>A module passed with --initrd: file contents and its command line.</summary>
public sealed record BootModule(string CommandLine, byte[] Data);

/// <summary>
/// Multiboot v1 loading as <c>qemu-system-x86_64 -kernel</c> does it: the header in the first 8 KiB,
/// either its address fields (flag bit 16) or ELF program headers place the image; the info structure
/// carries mem_lower/upper, the BIOS-style memory map, the command line ("KERNEL APPEND", as QEMU
/// passes it), modules and the boot loader name. The CPU starts in flat 32-bit protected mode with
/// EAX = 0x2BADB002 and EBX = the info structure.
/// </summary>
public static class Multiboot
{
    public const uint HeaderMagic = 0x1BADB002, BootMagic = 0x2BADB002;
    public const uint FlagPageAlign = 1, FlagMemInfo = 2, FlagVideo = 4, FlagAddresses = 1 << 16;

    /// <summary>
    /// Where the loader puts the info structure, its memory map and strings when the image leaves room
    /// (QEMU's option ROM writes its memory map at 0x9000 and the structure at 0x9500). An image that
    /// occupies that place (a real-mode test program linked at 0x8000, GRUB loaded at 0x9000) gets the
    /// information in the first page-aligned gap below <see cref="InfoEnd"/> (the EBDA) that no segment and
    /// no module touches: the guest finds it through EBX, and below 640 KiB it stays reachable in real mode.
    /// </summary>
    public const uint InfoBase = 0x9000, InfoEnd = 0x9F000;

    /// <summary>The lowest address the information may take when <see cref="InfoBase"/> is occupied (above the real-mode IVT and BDA).</summary>
    public const uint InfoLowest = 0x1000;

    /// <summary>RAM at the top of low memory that QEMU's BIOS keeps for itself (reported reserved; see <see cref="E820"/>).</summary>
    public const ulong BiosReserved = E820.BiosReserved;

    public sealed record Result(uint Entry, uint InfoAddress, ulong ImageEnd, ElfImage? Elf);

    public static Result Load(PhysicalMemory mem, byte[] image, string kernelPath, string append, IReadOnlyList<BootModule> modules)
    {
        int hdr = FindHeader(image);
        uint flags = U32(image, hdr + 4);
        ulong end;
        uint entry;
        ElfImage? elf = null;
        ulong imageStart = 0;
        if ((flags & FlagAddresses) != 0)
        {
            if (hdr + 32 > image.Length) throw new ImageException("multiboot header with address fields is truncated");
            uint headerAddr = U32(image, hdr + 12), loadAddr = U32(image, hdr + 16), loadEnd = U32(image, hdr + 20);
            uint bssEnd = U32(image, hdr + 24);
            entry = U32(image, hdr + 28);
            if (loadAddr > headerAddr) throw new ImageException($"multiboot load_addr 0x{loadAddr:x} is above header_addr 0x{headerAddr:x}");
            long fileOff = hdr - (long)(headerAddr - loadAddr);
            if (fileOff < 0) throw new ImageException("multiboot header_addr/load_addr place the image before the start of the file");
            ulong size = loadEnd == 0 ? (ulong)(image.Length - fileOff) : loadEnd - (ulong)loadAddr;
            if (loadEnd != 0 && loadEnd < loadAddr) throw new ImageException($"multiboot load_end_addr 0x{loadEnd:x} is below load_addr 0x{loadAddr:x}");
            if ((ulong)fileOff + size > (ulong)image.Length) throw new ImageException($"multiboot image claims {size} bytes but the file has {image.Length - fileOff} from the load offset");
            end = loadAddr + size;
            if (bssEnd != 0)
            {
                if (bssEnd < end) throw new ImageException($"multiboot bss_end_addr 0x{bssEnd:x} is below load_end_addr 0x{end:x}");
                end = bssEnd;
            }
            CheckRange(mem, loadAddr, end - loadAddr, "kernel image");
            imageStart = loadAddr;
            mem.WriteBytes(loadAddr, image.AsSpan((int)fileOff, (int)size));
            if (ElfImage.IsElf(image)) { try { elf = new ElfImage(image); } catch (ImageException) { } }
        }
        else
        {
            if (!ElfImage.IsElf(image)) throw new ImageException("multiboot header has no address fields (flag bit 16) and the file is not ELF");
            elf = new ElfImage(image);
            if (elf.Is64) throw new ImageException("ELF64 kernels need the multiboot address fields (flag bit 16), as with QEMU; use objcopy -O elf32-i386");
            end = 0;
            CheckSegments(mem, elf);
            foreach (var s in elf.Segments)
            {
                mem.WriteBytes(s.PhysAddr, elf.SegmentBytes(s));
                end = Math.Max(end, s.PhysAddr + s.MemSize);
            }
            if (elf.Entry > uint.MaxValue) throw new ImageException($"ELF entry point 0x{elf.Entry:x} is above 4 GiB");
            entry = (uint)elf.Entry;
        }
        var occupied = new List<(ulong Start, ulong End)>();
        if (elf is not null && (flags & FlagAddresses) == 0)
            foreach (var seg in elf.Segments) occupied.Add((seg.PhysAddr, seg.PhysAddr + seg.MemSize));
        else
            occupied.Add((imageStart, end));
        uint info = BuildInfo(mem, kernelPath, append, modules, ref end, occupied);
        return new Result(entry, info, end, elf);
    }

    public static int FindHeader(byte[] image)
    {
        int limit = Math.Min(image.Length - 12, 8192 - 12);
        for (int o = 0; o <= limit; o += 4)
        {
            if (U32(image, o) != HeaderMagic) continue;
            uint flags = U32(image, o + 4), sum = U32(image, o + 8);
            if (unchecked(HeaderMagic + flags + sum) == 0) return o;
        }
        if (image.Length < 12) throw new ImageException($"file is too small ({image.Length} bytes) to hold a multiboot header");
        throw new ImageException("no multiboot header (magic 0x1BADB002 with a valid checksum) in the first 8 KiB");
    }

    /// <summary>Every loadable segment fits in RAM, keeps clear of the legacy hole, and overlaps no other segment.</summary>
    private static void CheckSegments(PhysicalMemory mem, ElfImage elf)
    {
        var segs = elf.Segments;
        for (int i = 0; i < segs.Count; i++)
        {
            var s = segs[i];
            CheckRange(mem, s.PhysAddr, s.MemSize, $"ELF segment {i}");
            for (int j = 0; j < i; j++)
            {
                var t = segs[j];
                if (s.MemSize != 0 && t.MemSize != 0 && s.PhysAddr < t.PhysAddr + t.MemSize && t.PhysAddr < s.PhysAddr + s.MemSize)
                    throw new ImageException($"ELF segments {j} [0x{t.PhysAddr:x}, 0x{t.PhysAddr + t.MemSize:x}) and {i} [0x{s.PhysAddr:x}, 0x{s.PhysAddr + s.MemSize:x}) overlap");
            }
        }
    }

    internal static void CheckRange(PhysicalMemory mem, ulong addr, ulong size, string what, string subject = "kernel image")
    {
        if (addr + size > mem.RamSize || addr + size < addr)
            throw new ImageException($"{what} [0x{addr:x}, 0x{unchecked(addr + size):x}) does not fit in {mem.RamSize >> 20} MiB of RAM (use -m)", subject);
        if (addr < 0x100000 && addr + size > 0xA0000)
            throw new ImageException($"{what} [0x{addr:x}, 0x{addr + size:x}) overlaps the legacy hole below 1 MiB", subject);
    }

    private static uint BuildInfo(PhysicalMemory mem, string kernelPath, string append, IReadOnlyList<BootModule> modules,
        ref ulong end, List<(ulong Start, ulong End)> occupied)
    {
        var map = E820.Map(mem.RamSize);
        string kernelCmdline = $"{kernelPath} {append}";   // QEMU passes "KERNEL APPEND", with the space even when APPEND is empty
        static uint StrSize(string s) => (uint)((Encoding.UTF8.GetByteCount(s) + 1 + 3) & ~3);

        // The information's size: the structure (116 bytes, padded to 0x100), the kernel command line, the
        // memory map, the module list, the module command lines and the loader name.
        const uint areaMax = InfoEnd - InfoBase;
        ulong fixedPart = 0x100 + (ulong)StrSize(kernelCmdline) + (ulong)map.Length * 24;
        if (fixedPart + (ulong)modules.Count * 16 > areaMax) throw new ImageException($"too many modules ({modules.Count}) for the multiboot information area", "initrd module");
        ulong needed = fixedPart + (ulong)modules.Count * 16 + StrSize("qemu");
        foreach (var mod in modules) needed += StrSize(mod.CommandLine);
        if (needed > areaMax) throw new ImageException("the command lines of the kernel and modules do not fit in the multiboot information area", "command line");

        // Modules, placed after the kernel (page-aligned, as QEMU does): QEMU stages the command lines,
        // module list and loader name in the pages after the kernel and loads the modules after them;
        // modules land at the same addresses here.
        int staging = Encoding.UTF8.GetByteCount(kernelPath) + 1 + Encoding.UTF8.GetByteCount(append) + 1 + "qemu".Length + 1;
        foreach (var mod in modules) staging += Encoding.UTF8.GetByteCount(mod.CommandLine) + 1 + 16;
        ulong next = ((end + 0xFFF) & ~0xFFFUL) + (((ulong)staging + 0xFFF) & ~0xFFFUL);
        var modAt = new ulong[modules.Count];
        for (int k = 0; k < modules.Count; k++)
        {
            var m = modules[k];
            CheckRange(mem, next, (ulong)m.Data.Length, $"module {k} ({m.CommandLine})", "initrd module");
            modAt[k] = next;
            occupied.Add((next, next + (ulong)m.Data.Length));
            next = (next + (ulong)m.Data.Length + 0xFFF) & ~0xFFFUL;
        }

        uint baseAt = PlaceInfo((uint)needed, occupied);

        uint p = baseAt + 0x100;
        uint Str(string s)
        {
            var b = Encoding.UTF8.GetBytes(s + "\0");
            uint at = p;
            mem.WriteBytes(at, b);
            p += (uint)((b.Length + 3) & ~3);
            return at;
        }
        var info = new byte[116];
        // As QEMU: its BIOS (SeaBIOS) reserves the top 128 KiB of RAM below 4 GiB for its tables, and QEMU's
        // multiboot option ROM takes mem_upper and the memory map from that e820 map (E820.Map: the same map
        // Linux and PVH kernels get).
        ulong usableTop = E820.UsableTop(mem.RamSize);
        uint memLower = 639, memUpper = (uint)(usableTop / 1024 - 1024);
        uint f = 1 /* mem */ | 2 /* boot device */ | 4 /* cmdline */ | 8 /* mods */ | 64 /* mmap */ | 512 /* boot loader name */;
        W(info, 0, f);
        W(info, 4, memLower);
        W(info, 8, memUpper);
        W(info, 12, 0x8000FFFF);            // boot device: QEMU's "BIOS disk 0x80, no partition"
        W(info, 16, Str(kernelCmdline));
        // Memory map: 20-byte entries preceded by their size field (multiboot §3.3).
        uint mmapAt = p;
        foreach (var (b, l, t) in map)
        {
            var e = new byte[24];
            W(e, 0, 20); W64(e, 4, b); W64(e, 12, l); W(e, 20, t);
            mem.WriteBytes(p, e);
            p += 24;
        }
        W(info, 44, (uint)(map.Length * 24));
        W(info, 48, mmapAt);
        uint modsAt = p;
        p += (uint)(16 * modules.Count);
        for (int k = 0; k < modules.Count; k++)
        {
            var m = modules[k];
            mem.WriteBytes(modAt[k], m.Data);
            var e = new byte[16];
            W(e, 0, (uint)modAt[k]); W(e, 4, (uint)(modAt[k] + (ulong)m.Data.Length)); W(e, 8, Str(m.CommandLine));
            mem.WriteBytes(modsAt + (uint)(16 * k), e);
        }
        end = Math.Max(end, next);
        W(info, 20, (uint)modules.Count);
        W(info, 24, modsAt);
        W(info, 64, Str("qemu"));           // the boot loader name QEMU reports; kernels may test for it
        mem.WriteBytes(baseAt, info);
        return baseAt;
    }

    /// <summary>
    /// The address of the information: <see cref="InfoBase"/> when [InfoBase, InfoBase + size) is free,
    /// else the lowest page at or above <see cref="InfoLowest"/> whose range below <see cref="InfoEnd"/>
    /// touches neither the image nor a module (the loader must never write over what it loaded).
    /// </summary>
    internal static uint PlaceInfo(uint size, IReadOnlyList<(ulong Start, ulong End)> occupied)
    {
        bool Free(ulong at)
        {
            if (at + size > InfoEnd) return false;
            foreach (var (s, e) in occupied)
                if (e > s && s < at + size && at < e) return false;
            return true;
        }
        if (Free(InfoBase)) return InfoBase;
        for (ulong at = InfoLowest; at + size <= InfoEnd; at += 0x1000)
            if (Free(at)) return (uint)at;
        throw new ImageException($"no room for the multiboot information below 0x{InfoEnd:x} clear of the kernel image and modules");
    }

    private static uint U32(byte[] d, int o) => o + 4 <= d.Length ? BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(o)) : 0;
    private static void W(byte[] d, int o, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(o), v);
    private static void W64(byte[] d, int o, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(d.AsSpan(o), v);
}
