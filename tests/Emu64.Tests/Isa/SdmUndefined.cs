using Emu64.Cpu;
using Iced.Intel;

namespace Emu64.Tests.Isa;

/// <summary>
/// The parts of one instruction's outcome that the SDM leaves undefined or to the implementation, for
/// one set of inputs: RFLAGS bits, bits of GPRs and bytes of the harness data page. The host referees
/// everything else on any x86-64 processor; these parts are Intel's (see docs/UNDEFINED-FLAGS.md).
/// </summary>
public sealed class UndefinedParts
{
    /// <summary>RFLAGS bits whose value the SDM does not define here.</summary>
    public ulong Flags;
    /// <summary>Per GPR (encoding order), the bits whose value the SDM does not define here.</summary>
    public readonly ulong[] Gpr = new ulong[16];
    /// <summary>Bytes [MemAt, MemAt + MemLength) of the data page whose value the SDM does not define here.</summary>
    public int MemAt, MemLength;

    public bool Any => Flags != 0 || MemLength != 0 || HasGpr;
    public bool HasGpr { get { foreach (var m in Gpr) if (m != 0) return true; return false; } }

    public void Clear()
    {
        Flags = 0;
        Array.Clear(Gpr);
        MemAt = MemLength = 0;
    }

    public bool MemoryMasked(int offset) => offset >= MemAt && offset < MemAt + MemLength;

    /// <summary>What is undefined, for a mismatch report ("flags OF AF; rbx bits ffff").</summary>
    public string Describe()
    {
        var parts = new List<string>();
        if (Flags != 0) parts.Add("flags " + Differential.FlagNames(Flags));
        for (int r = 0; r < 16; r++) if (Gpr[r] != 0) parts.Add($"{Reg.Names64[r]} bits {Gpr[r]:x}");
        if (MemLength != 0) parts.Add($"data+{MemAt:x}..+{MemLength}");
        return parts.Count == 0 ? "nothing" : string.Join(", ", parts);
    }
}

/// <summary>
/// Which parts of an instruction's outcome the SDM (vol. 2, "Flags Affected" and "Operation" of each
/// instruction, and vol. 1 for PUSH of a segment register) leaves undefined or model-specific.
/// Decided from the decoded instruction and its inputs, and (for BSF/BSR and LAR) from ZF after it,
/// which the SDM defines and the host checks. Everything not named here is defined and is compared
/// with the host on every vendor. One table for the differential suite, Data/flags.vec and the capture
/// tool.
/// </summary>
public static class SdmUndefined
{
    private const ulong CF = RFlags.CF, PF = RFlags.PF, AF = RFlags.AF, ZF = RFlags.ZF, SF = RFlags.SF, OF = RFlags.OF;
    private const ulong AllStatus = RFlags.Status;

    /// <summary>Whether any input can leave part of this instruction's outcome undefined.</summary>
    public static bool MayApply(in Instruction ins, int bitness)
    {
        switch (ins.Mnemonic)
        {
            case Mnemonic.And or Mnemonic.Or or Mnemonic.Xor or Mnemonic.Test:
            case Mnemonic.Shl or Mnemonic.Sal or Mnemonic.Shr or Mnemonic.Sar or Mnemonic.Rol or Mnemonic.Ror or Mnemonic.Rcl or Mnemonic.Rcr:
            case Mnemonic.Shld or Mnemonic.Shrd or Mnemonic.Mul or Mnemonic.Imul or Mnemonic.Div or Mnemonic.Idiv:
            case Mnemonic.Bt or Mnemonic.Bts or Mnemonic.Btr or Mnemonic.Btc or Mnemonic.Bsf or Mnemonic.Bsr or Mnemonic.Lzcnt or Mnemonic.Tzcnt:
            case Mnemonic.Andn or Mnemonic.Blsi or Mnemonic.Blsmsk or Mnemonic.Blsr or Mnemonic.Bzhi or Mnemonic.Bextr:
            case Mnemonic.Daa or Mnemonic.Das or Mnemonic.Aaa or Mnemonic.Aas or Mnemonic.Aam or Mnemonic.Aad:
                return true;
            case Mnemonic.Bswap: return ins.Op0Register.GetSize() == 2;
            case Mnemonic.Lar: return ins.Op0Register.GetSize() >= 4;
            case Mnemonic.Push: return IsSegment(ins.Op0Register) && OperandBits(ins) > 16;
        }
        return RepA32(ins, bitness);
    }

    /// <summary>
    /// Fills <paramref name="u"/> with the undefined parts of <paramref name="ins"/> for these inputs.
    /// <paramref name="memAt"/> is the data-page offset of the instruction's memory operand,
    /// <paramref name="stackAt"/> the data-page offset RSP/ESP points to before it runs.
    /// </summary>
    public static void Find(in Instruction ins, int bitness, ReadOnlySpan<ulong> gprIn, ulong flagsOut, int memAt, int stackAt, UndefinedParts u)
    {
        u.Clear();
        int bits = OperandBits(ins);
        switch (ins.Mnemonic)
        {
            case Mnemonic.And or Mnemonic.Or or Mnemonic.Xor or Mnemonic.Test:
                u.Flags = AF;
                break;
            case Mnemonic.Shl or Mnemonic.Sal or Mnemonic.Shr or Mnemonic.Sar:
                {
                    // count masked to 5 bits (6 with REX.W); 0: nothing changes. OF is defined for 1-bit shifts
                    // only, AF never; SHL/SHR leave CF undefined when the count reaches the operand size
                    int c = Count(ins, 1, gprIn, bits);
                    if (c == 0) break;
                    u.Flags = AF | (c != 1 ? OF : 0);
                    if (c >= bits && ins.Mnemonic != Mnemonic.Sar) u.Flags |= CF;
                    break;
                }
            case Mnemonic.Rol or Mnemonic.Ror or Mnemonic.Rcl or Mnemonic.Rcr:
                {
                    // only OF, and only when the masked count is not 1 (count 0 changes nothing)
                    int c = Count(ins, 1, gprIn, bits);
                    if (c > 1) u.Flags = OF;
                    break;
                }
            case Mnemonic.Shld or Mnemonic.Shrd:
                {
                    int c = Count(ins, 2, gprIn, bits);
                    if (c == 0) break;
                    u.Flags = AF | (c != 1 ? OF : 0);
                    if (c > bits)
                    {
                        // a 16-bit operand shifted by 17..31: the result and every status flag are undefined
                        u.Flags = AllStatus;
                        Destination(ins, bits, memAt, u);
                    }
                    break;
                }
            case Mnemonic.Mul or Mnemonic.Imul:
                u.Flags = SF | ZF | AF | PF;
                break;
            case Mnemonic.Div or Mnemonic.Idiv:
                u.Flags = AllStatus;
                break;
            case Mnemonic.Bt or Mnemonic.Bts or Mnemonic.Btr or Mnemonic.Btc:
                u.Flags = OF | SF | AF | PF;
                break;
            case Mnemonic.Bsf or Mnemonic.Bsr:
                u.Flags = CF | OF | SF | AF | PF;
                if ((flagsOut & ZF) != 0) Destination(ins, bits, memAt, u);   // a zero source leaves the destination undefined
                break;
            case Mnemonic.Lzcnt or Mnemonic.Tzcnt:
                u.Flags = OF | SF | AF | PF;
                break;
            case Mnemonic.Andn or Mnemonic.Blsi or Mnemonic.Blsmsk or Mnemonic.Blsr or Mnemonic.Bzhi:
                u.Flags = AF | PF;
                break;
            case Mnemonic.Bextr:
                u.Flags = AF | SF | PF;
                break;
            case Mnemonic.Daa or Mnemonic.Das:
                u.Flags = OF;
                break;
            case Mnemonic.Aaa or Mnemonic.Aas:
                u.Flags = OF | SF | ZF | PF;
                break;
            case Mnemonic.Aam or Mnemonic.Aad:
                u.Flags = OF | AF | CF;
                break;
            case Mnemonic.Bswap when bits == 16:
                Destination(ins, bits, memAt, u);   // "the result is undefined" for a 16-bit register
                break;
            case Mnemonic.Lar when bits >= 32 && (flagsOut & ZF) != 0:
                // access rights = second descriptor dword AND 00FxFF00H: x (limit 19:16) is undefined
                u.Gpr[Index(ins.Op0Register)] = 0xF0000;
                break;
            case Mnemonic.Push when IsSegment(ins.Op0Register) && bits > 16:
                // a 32/64-bit push of a selector may write the whole slot zero-extended or only its low word
                u.MemAt = stackAt - bits / 8 + 2;
                u.MemLength = bits / 8 - 2;
                break;
        }
        if (RepA32(ins, bitness) && (uint)gprIn[Reg.RCX] == 0)
        {
            // a REP string instruction with a 32-bit address size in 64-bit mode and ECX = 0: whether ECX,
            // ESI and EDI are written (clearing the upper halves) is model-specific (Intel writes, AMD does not)
            u.Gpr[Reg.RCX] = 0xFFFFFFFF00000000UL;
            for (int k = 0; k < ins.OpCount; k++)
            {
                if (ins.GetOpKind(k) == OpKind.MemorySegESI) u.Gpr[Reg.RSI] = 0xFFFFFFFF00000000UL;
                if (ins.GetOpKind(k) == OpKind.MemoryESEDI) u.Gpr[Reg.RDI] = 0xFFFFFFFF00000000UL;
            }
        }
    }

    private static bool RepA32(in Instruction ins, int bitness)
    {
        if (bitness != 64 || !(ins.HasRepPrefix || ins.HasRepePrefix || ins.HasRepnePrefix)) return false;
        for (int k = 0; k < ins.OpCount; k++)
            if (ins.GetOpKind(k) is OpKind.MemorySegESI or OpKind.MemoryESEDI) return true;
        return false;
    }

    private static bool IsSegment(Register r) => r is Register.ES or Register.CS or Register.SS or Register.DS or Register.FS or Register.GS;

    /// <summary>Operand size in bits: of operand 0 (PUSH: of the stack slot).</summary>
    private static int OperandBits(in Instruction ins)
    {
        if (ins.Mnemonic == Mnemonic.Push) return ins.StackPointerIncrement == -2 ? 16 : -ins.StackPointerIncrement * 8;
        if (ins.OpCount == 0) return 0;
        return ins.Op0Kind == OpKind.Register ? ins.Op0Register.GetSize() * 8 : ins.MemorySize.GetSize() * 8;
    }

    /// <summary>The masked shift count of operand <paramref name="op"/> (CL or an immediate): 6 bits for 64-bit operands, else 5.</summary>
    private static int Count(in Instruction ins, int op, ReadOnlySpan<ulong> gprIn, int bits)
    {
        ulong raw = ins.GetOpKind(op) == OpKind.Register ? gprIn[Reg.RCX] & 0xFF : ins.GetImmediate(op);
        return (int)(raw & (bits == 64 ? 0x3FUL : 0x1FUL));
    }

    /// <summary>Marks operand 0 (register bits or the memory operand's bytes) undefined.</summary>
    private static void Destination(in Instruction ins, int bits, int memAt, UndefinedParts u)
    {
        if (ins.Op0Kind != OpKind.Register)
        {
            u.MemAt = memAt;
            u.MemLength = bits / 8;
            return;
        }
        var r = ins.Op0Register;
        if (r is Register.AH or Register.CH or Register.DH or Register.BH) u.Gpr[r - Register.AH] = 0xFF00;
        else u.Gpr[Index(r)] = bits switch { 8 => 0xFF, 16 => 0xFFFF, _ => ulong.MaxValue };   // a 32-bit write clears bits 63:32
    }

    private static int Index(Register r) => r.GetFullRegister() - Register.RAX;
}
