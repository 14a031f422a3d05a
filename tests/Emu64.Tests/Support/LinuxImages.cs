using System.Buffers.Binary;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Support;

/// <summary>
/// Hand-built Linux kernel images for the loader tests: a bzImage with a real setup header (the fields of
/// protocol 2.15 as Debian 12's kernel has them, values chosen per test) and 32-bit payloads that report
/// their entry state over COM1.
/// </summary>
public static class LinuxImages
{
    /// <summary>Setup header fields of the synthetic bzImage (file offsets as in the boot protocol).</summary>
    public sealed record Header
    {
        public byte SetupSects { get; init; } = 4;
        public ushort Version { get; init; } = 0x020F;
        public byte LoadFlags { get; init; } = 0x01;          // LOADED_HIGH
        public ushort XLoadFlags { get; init; } = 0x0003;     // XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G
        public uint InitrdAddrMax { get; init; } = 0x7FFFFFFF;
        public uint KernelAlignment { get; init; } = 0x200000;
        public byte Relocatable { get; init; } = 1;
        public uint CmdlineSize { get; init; } = 2047;
        public ulong PrefAddress { get; init; } = 0x1000000;
        public uint InitSize { get; init; } = 0x800000;
        public uint? Syssize { get; init; }                   // default: the payload's length in paragraphs
    }

    /// <summary>A bzImage: boot sector and <see cref="Header.SetupSects"/> setup sectors, then <paramref name="payload"/>.</summary>
    public static byte[] BzImage(byte[] payload, Header? h = null)
    {
        h ??= new Header();
        int setup = ((h.SetupSects == 0 ? 4 : h.SetupSects) + 1) * 512;
        var f = new byte[setup + payload.Length];
        var s = f.AsSpan();
        s[0x1F1] = h.SetupSects;
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x1F4..], h.Syssize ?? (uint)((payload.Length + 15) / 16));
        BinaryPrimitives.WriteUInt16LittleEndian(s[0x1FA..], 0xFFFF);     // vid_mode NORMAL_VGA
        BinaryPrimitives.WriteUInt16LittleEndian(s[0x1FE..], 0xAA55);
        s[0x200] = 0xEB; s[0x201] = 0x6A;                                  // jmp over the header, which ends at 0x26C
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x202..], 0x53726448);  // "HdrS"
        BinaryPrimitives.WriteUInt16LittleEndian(s[0x206..], h.Version);
        BinaryPrimitives.WriteUInt16LittleEndian(s[0x20E..], 0x3C0);       // kernel_version string offset
        s[0x211] = h.LoadFlags;
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x214..], 0x100000);    // code32_start
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x22C..], h.InitrdAddrMax);
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x230..], h.KernelAlignment);
        s[0x234] = h.Relocatable;
        s[0x235] = 0x15;                                                   // min_alignment
        BinaryPrimitives.WriteUInt16LittleEndian(s[0x236..], h.XLoadFlags);
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x238..], h.CmdlineSize);
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x248..], 0x3A5);       // payload_offset
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x24C..], (uint)payload.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(s[0x258..], h.PrefAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x260..], h.InitSize);
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x264..], 0x190);       // handover_offset
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x268..], 0x12345);     // kernel_info_offset
        // A byte past the header (edd_mbr_sig_buffer's place in boot_params) that the loader must not copy.
        s[0x26C] = 0x5A;
        payload.CopyTo(f, setup);
        return f;
    }

    /// <summary>Assembles 32-bit code at <paramref name="at"/>.</summary>
    public static byte[] Code32(uint at, Action<Assembler> body)
    {
        var a = new Assembler(32);
        body(a);
        var w = new MemoryStream();
        a.Assemble(new StreamCodeWriter(w), at);
        return w.ToArray();
    }

    /// <summary>Prints the 32-bit value in EAX as 8 hex digits and a newline on COM1 (clobbers EAX, ECX, EDX; needs a stack).</summary>
    public static void Hex32(Assembler a)
    {
        var digit = a.CreateLabel();
        var low = a.CreateLabel();
        a.mov(ecx, 8);
        a.Label(ref digit);
        a.rol(eax, 4);
        a.push(eax);
        a.and(eax, 0xF);
        a.add(eax, (int)'0');
        a.cmp(eax, (int)'9');
        a.jbe(low);
        a.add(eax, 'a' - '9' - 1);
        a.Label(ref low);
        a.mov(dx, TestKernel.Com1);
        a.@out(dx, al);
        a.pop(eax);
        a.dec(ecx);
        a.jnz(digit);
        a.mov(al, (byte)'\n');
        a.@out(dx, al);
    }

    /// <summary>Prints the NUL-terminated string at the address held in <paramref name="reg"/> and a newline (clobbers EAX, EDX and the register).</summary>
    public static void PrintString(Assembler a, AssemblerRegister32 reg)
    {
        var loop = a.CreateLabel();
        var end = a.CreateLabel();
        a.Label(ref loop);
        a.mov(al, __byte_ptr[reg]);
        a.test(al, al);
        a.jz(end);
        a.mov(dx, TestKernel.Com1);
        a.@out(dx, al);
        a.inc(reg);
        a.jmp(loop);
        a.Label(ref end);
        a.mov(al, (byte)'\n');
        a.mov(dx, TestKernel.Com1);
        a.@out(dx, al);
    }

    /// <summary>Exits through isa-debug-exit with <paramref name="value"/> (status (value &lt;&lt; 1) | 1).</summary>
    public static void Exit(Assembler a, uint value)
    {
        a.mov(dx, (ushort)0xF4);
        a.mov(eax, value);
        a.@out(dx, eax);
        a.hlt();
    }
}
