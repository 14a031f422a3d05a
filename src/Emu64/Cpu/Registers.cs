using System.Runtime.CompilerServices;

namespace Emu64.Cpu;

/// <summary>The sixteen general registers, RAX..R15 in encoding order.</summary>
[InlineArray(16)]
public struct GprFile { private ulong _e; }

/// <summary>Register numbers in x86 encoding order. 16..19 name AH, CH, DH, BH in decoded operands.</summary>
public static class Reg
{
    public const int RAX = 0, RCX = 1, RDX = 2, RBX = 3, RSP = 4, RBP = 5, RSI = 6, RDI = 7;
    public const int R8 = 8, R9 = 9, R10 = 10, R11 = 11, R12 = 12, R13 = 13, R14 = 14, R15 = 15;
    /// <summary>First of the legacy high-byte registers AH, CH, DH, BH (16..19).</summary>
    public const int HighByte = 16;
    public const int Rip = 32;
    public const byte None = 0xFF;

    public static readonly string[] Names64 =
        ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];
}

/// <summary>Segment registers in encoding order (ES, CS, SS, DS, FS, GS).</summary>
public static class Seg
{
    public const int ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5;
    /// <summary>Pseudo-segments for the descriptor-table registers, for error reporting.</summary>
    public const int None = 6;
    public static readonly string[] Names = ["es", "cs", "ss", "ds", "fs", "gs"];
}

/// <summary>A segment register: the visible selector and the hidden descriptor cache.</summary>
public struct Segment
{
    public ushort Selector;
    public ulong Base;
    public uint Limit;       // byte-granular effective limit
    public ushort Attr;      // descriptor bits 40..55: type(4) S DPL(2) P | AVL L DB G  (bits 8..11 = upper nibble)

    public readonly bool Present => (Attr & 0x80) != 0;
    public readonly int Dpl => (Attr >> 5) & 3;
    public readonly int Type => Attr & 0xF;
    public readonly bool IsSystem => (Attr & 0x10) == 0;
    public readonly bool IsCode => !IsSystem && (Attr & 0x8) != 0;
    public readonly bool Long => (Attr & 0x2000) != 0;
    public readonly bool Db => (Attr & 0x4000) != 0;
    public readonly bool Granularity => (Attr & 0x8000) != 0;

    public override readonly string ToString() => $"sel={Selector:x4} base={Base:x16} limit={Limit:x8} attr={Attr:x4}";
}

/// <summary>A descriptor-table register (GDTR, IDTR).</summary>
public struct TableReg
{
    public ulong Base;
    public ushort Limit;
}
