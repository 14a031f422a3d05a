using System.Runtime.CompilerServices;
using Iced.Intel;

namespace Emu64.Cpu;

/// <summary>Operand kinds of the compact decoded form.</summary>
public enum Opnd : byte { None, Reg, Mem, Imm, Other }

/// <summary>
/// One decoded instruction in the compact form the handlers read. Built once per instruction by
/// <see cref="InsnBuilder"/> and cached by physical address; executing it never touches Iced again.
/// Addresses that depend on where the code is mapped (branch targets, RIP-relative operands) are kept
/// relative to the next instruction, because the same physical code can be mapped at several linear
/// addresses (the kernel image has two aliases).
/// </summary>
public unsafe struct Insn
{
    public delegate*<Cpu, ref Insn, void> Exec;
    /// <summary>First immediate (sign- or zero-extended as the encoding says), or the branch displacement.</summary>
    public ulong Imm;
    /// <summary>Memory displacement; for RIP-relative operands, relative to the next instruction.</summary>
    public long Disp;
    public byte Length;
    /// <summary>Operand size in bytes of operand 0 (1, 2, 4, 8, 16).</summary>
    public byte Size;
    /// <summary>Size of operand 1 in bytes (differs for MOVZX/MOVSX and friends).</summary>
    public byte Size1;
    /// <summary>Address size in bytes (2, 4, 8).</summary>
    public byte AddrSize;
    /// <summary>Effective segment of the memory operand (ES..GS).</summary>
    public byte Seg;
    public byte Base, Index, Scale;  // Base: register, Reg.Rip or Reg.None; Scale: shift count 0..3
    public Opnd K0, K1, K2;
    public byte R0, R1, R2;          // register numbers for Reg operands
    public byte Prefix;              // PrefixRep / PrefixRepne / PrefixLock
    /// <summary>Condition code 0..15 in encoding order (O NO B AE E NE BE A S NS P NP L GE LE G) for Jcc/SETcc/CMOVcc.</summary>
    public byte Cc;
    public ushort CodeId;            // Iced Code, for diagnostics and handlers shared between codes
    /// <summary>The Iced instruction, kept for handlers with unusual operands and for disassembly.</summary>
    public Instruction I;

    public const byte PrefixRep = 1, PrefixRepne = 2, PrefixLock = 4;

    public readonly Code Code => (Code)CodeId;
    public readonly bool HasRep => (Prefix & PrefixRep) != 0;
    public readonly bool HasRepne => (Prefix & PrefixRepne) != 0;
}

/// <summary>Turns an Iced instruction into the compact form.</summary>
public static class InsnBuilder
{
    // Iced Register -> (our register number, size in bytes); built once.
    private static readonly int RegisterCount = Enum.GetValues<Register>().Length;
    private static readonly byte[] RegNum = new byte[RegisterCount];
    private static readonly byte[] RegSize = new byte[RegisterCount];

    static InsnBuilder()
    {
        for (int r = 0; r < RegNum.Length; r++)
        {
            var reg = (Register)r;
            byte num = 0, size = 0;
            if (reg == Register.None) { num = Reg.None; }
            else if (reg.IsGPR8())
            {
                int n = reg - Register.AL;   // AL CL DL BL AH CH DH BH SPL BPL SIL DIL R8L..R15L
                num = (byte)(n < 4 ? n : n < 8 ? Reg.HighByte + n - 4 : n < 12 ? n - 4 : n - 4);
                size = 1;
            }
            else if (reg.IsGPR16()) { num = (byte)(reg - Register.AX); size = 2; }
            else if (reg.IsGPR32()) { num = (byte)(reg - Register.EAX); size = 4; }
            else if (reg.IsGPR64()) { num = (byte)(reg - Register.RAX); size = 8; }
            else if (reg == Register.RIP || reg == Register.EIP) { num = Reg.Rip; size = 8; }
            else if (reg.IsSegmentRegister()) { num = (byte)(reg - Register.ES); size = 2; }
            else if (reg >= Register.CR0 && reg <= Register.CR15) { num = (byte)(reg - Register.CR0); size = 8; }
            else if (reg >= Register.DR0 && reg <= Register.DR15) { num = (byte)(reg - Register.DR0); size = 8; }
            else if (reg.IsXMM()) { num = (byte)(reg - Register.XMM0); size = 16; }
            else if (reg >= Register.MM0 && reg <= Register.MM7) { num = (byte)(reg - Register.MM0); size = 8; }
            else if (reg >= Register.ST0 && reg <= Register.ST7) { num = (byte)(reg - Register.ST0); size = 10; }
            else { num = Reg.None; }
            RegNum[r] = num;
            RegSize[r] = size;
        }
    }

    public static byte Number(Register r) => RegNum[(int)r];
    public static int SizeOf(Register r) => RegSize[(int)r];

    /// <summary>Fills <paramref name="d"/> from <paramref name="i"/> (decoded at bitness, with or without a 0x67 prefix).</summary>
    public static void Build(in Instruction i, ref Insn d, int bitness, bool addressSizePrefix)
    {
        int addrSize = bitness switch { 64 => addressSizePrefix ? 4 : 8, 32 => addressSizePrefix ? 2 : 4, _ => addressSizePrefix ? 4 : 2 };
        d.I = i;
        d.CodeId = (ushort)i.Code;
        d.Length = (byte)i.Length;
        d.Cc = (byte)(i.ConditionCode == ConditionCode.None ? 0 : i.ConditionCode - 1);
        ulong next = i.NextIP;
        d.Prefix = (byte)((i.HasRepPrefix ? Insn.PrefixRep : 0) | (i.HasRepnePrefix ? Insn.PrefixRepne : 0)
                          | (i.HasLockPrefix ? Insn.PrefixLock : 0));
        d.Base = d.Index = Reg.None;
        d.AddrSize = (byte)addrSize;
        d.Seg = (byte)Emu64.Cpu.Seg.DS;
        int n = i.OpCount;
        d.K0 = n > 0 ? Kind(i, 0, ref d, next, out d.R0, out d.Size) : Opnd.None;
        d.K1 = n > 1 ? Kind(i, 1, ref d, next, out d.R1, out d.Size1) : Opnd.None;
        d.K2 = n > 2 ? Kind(i, 2, ref d, next, out d.R2, out _) : Opnd.None;
        if (n == 0) d.Size = (byte)OperandSizeOf(i);
        if (d.Size == 0) d.Size = (byte)OperandSizeOf(i);
        if (d.Size1 == 0) d.Size1 = d.Size;
        if (HasStringMemory(i))
        {
            d.Seg = (byte)SegNum(i.MemorySegment);
            // The element size is the memory operand's: OUTSB's first operand is DX, which is not its size.
            int es = i.MemorySize.GetSize();
            if (es is 1 or 2 or 4 or 8) d.Size = d.Size1 = (byte)es;
        }
    }

    private static Opnd Kind(in Instruction i, int op, ref Insn d, ulong next, out byte reg, out byte size)
    {
        reg = Reg.None;
        size = 0;
        switch (i.GetOpKind(op))
        {
            case OpKind.Register:
                var r = i.GetOpRegister(op);
                reg = RegNum[(int)r];
                size = RegSize[(int)r];
                return Opnd.Reg;
            case OpKind.Memory:
                var b = i.MemoryBase;
                d.Base = b == Register.None ? Reg.None : RegNum[(int)b];
                d.Index = i.MemoryIndex == Register.None ? Reg.None : RegNum[(int)i.MemoryIndex];
                d.Scale = (byte)System.Numerics.BitOperations.Log2((uint)i.MemoryIndexScale);
                d.Disp = d.Base == Reg.Rip ? (long)(i.MemoryDisplacement64 - next) : (long)i.MemoryDisplacement64;
                d.Seg = (byte)SegNum(i.MemorySegment);
                size = (byte)i.MemorySize.GetSize();
                return Opnd.Mem;
            case OpKind.Immediate8: case OpKind.Immediate16: case OpKind.Immediate32: case OpKind.Immediate64:
            case OpKind.Immediate8to16: case OpKind.Immediate8to32: case OpKind.Immediate8to64:
            case OpKind.Immediate32to64: case OpKind.Immediate8_2nd:
                if (op == 0 || d.K0 != Opnd.Imm) d.Imm = i.GetImmediate(op);
                size = (byte)OperandSizeOf(i);
                return Opnd.Imm;
            case OpKind.NearBranch16: case OpKind.NearBranch32: case OpKind.NearBranch64:
                d.Imm = i.NearBranchTarget - next;   // relative; the handler adds the next RIP
                size = i.GetOpKind(op) switch { OpKind.NearBranch16 => 2, OpKind.NearBranch32 => 4, _ => 8 };
                return Opnd.Imm;
            default:
                return Opnd.Other;
        }
    }

    private static int SegNum(Register r) => r == Register.None ? Emu64.Cpu.Seg.DS : r - Register.ES;

    private static bool HasStringMemory(in Instruction i)
    {
        for (int k = 0; k < i.OpCount; k++)
            switch (i.GetOpKind(k))
            {
                case OpKind.MemorySegSI: case OpKind.MemorySegESI: case OpKind.MemorySegRSI:
                case OpKind.MemorySegDI: case OpKind.MemorySegEDI: case OpKind.MemorySegRDI:
                case OpKind.MemoryESDI: case OpKind.MemoryESEDI: case OpKind.MemoryESRDI:
                    return true;
            }
        return false;
    }

    /// <summary>The operand size of an instruction whose operands do not say it (PUSHF, string ops...).</summary>
    private static int OperandSizeOf(in Instruction i)
    {
        for (int k = 0; k < i.OpCount; k++)
        {
            var kind = i.GetOpKind(k);
            if (kind == OpKind.Register) return RegSize[(int)i.GetOpRegister(k)];
            if (kind is OpKind.Memory or >= OpKind.MemorySegSI and <= OpKind.MemoryESRDI)
            {
                int s = i.MemorySize.GetSize();
                if (s is 1 or 2 or 4 or 8) return s;
            }
        }
        int req = i.Code.ToOpCode().OperandSize;   // required operand size in bits, or 0
        if (req != 0) return req / 8;
        return i.CodeSize == CodeSize.Code16 ? 2 : i.CodeSize == CodeSize.Code64 && i.Code.ToOpCode().DefaultOpSize64 ? 8 : 4;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Mask(int size) => size >= 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1;
}
