using Emu64.Cpu;
using Emu64.Tests.Support;
using Iced.Intel;

namespace Emu64.Tests.Isa;

/// <summary>
/// The GDT a 64-bit Linux kernel gives every CPU (arch/x86/include/asm/segment.h, cpu/common.c), written
/// into the emulated machine so LAR/LSL/VERR/VERW and far transfers see the selectors the host's user
/// code sees: 0x08 KERNEL32_CS, 0x10 KERNEL_CS, 0x18 KERNEL_DS (DPL 0), 0x23 USER32_CS, 0x2B USER_DS,
/// 0x33 USER_CS, 0x40 the busy 64-bit TSS (DPL 0, 16 bytes), 0x50 the LDT slot and 0x60-0x70 the TLS
/// slots (empty for the test process), 0x7B CPUNODE (a read-only expand-down data segment whose limit is
/// the CPU number: LSL on it is not compared). Limit 0x7F. No LDT is loaded.
/// </summary>
public static class LinuxGdt
{
    public const ulong Linear = 0xFFFF_FE00_0000_0000;

    public static readonly ulong[] Entries =
    [
        0,
        0x00CF9B000000FFFF, 0x00AF9B000000FFFF, 0x00CF93000000FFFF,
        0x00CFFB000000FFFF, 0x00CFF3000000FFFF, 0x00AFFB000000FFFF,
        0,
        0x00008B0000000067, 0,     // TSS: base and limit are the kernel's; type, DPL and P are what user code can observe
        0, 0, 0, 0, 0,
        0x0040F50000000000,
    ];

    public static void Install(RawMachine raw)
    {
        var bytes = new byte[Entries.Length * 8];
        for (int k = 0; k < Entries.Length; k++) BitConverter.TryWriteBytes(bytes.AsSpan(k * 8), Entries[k]);
        raw.Write(Linear, bytes);
        raw.Cpu.Gdtr = new TableReg { Base = Linear, Limit = (ushort)(bytes.Length - 1) };
        raw.Cpu.Ldtr = new Segment { Attr = 0x82 };
    }

    /// <summary>Puts the emulated CPU at CPL 3 in 64-bit mode (CS 0x33, SS 0x2B, DS = ES = 0) or compatibility mode (CS 0x23, DS = ES = SS = 0x2B), as the host harnesses run.</summary>
    public static void UserMode(Emu64.Cpu.Cpu cpu, bool compat)
    {
        var data = new Segment { Selector = 0x2B, Limit = 0xFFFFFFFF, Attr = 0xC0F3 };
        cpu.Segs[Seg.CS] = compat ? new Segment { Selector = 0x23, Limit = 0xFFFFFFFF, Attr = 0xC0FB }
                                  : new Segment { Selector = 0x33, Limit = 0xFFFFFFFF, Attr = 0xA0FB };
        cpu.Segs[Seg.SS] = data;
        cpu.Segs[Seg.DS] = compat ? data : new Segment();
        cpu.Segs[Seg.ES] = compat ? data : new Segment();
        cpu.Segs[Seg.FS] = new Segment { Base = cpu.Segs[Seg.FS].Base };
        cpu.Segs[Seg.GS] = new Segment { Base = cpu.Segs[Seg.GS].Base };
        cpu.UpdateMode();
    }
}

/// <summary>Selector inputs for LAR/LSL/VERR/VERW forms: mostly the GDT's range with every RPL and TI, sometimes any value.</summary>
public static class Selectors
{
    public static ushort Pick(ulong random, Mnemonic m)
    {
        ushort sel = (random >> 60) == 0 ? (ushort)(random >> 8) : (ushort)((random >> 8) % 0x90);
        if (m == Mnemonic.Lsl && sel is >= 0x78 and <= 0x7F) sel ^= 0x40;   // CPUNODE's limit is the current CPU number
        return sel;
    }
}
