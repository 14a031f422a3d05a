using System.Runtime.CompilerServices;
using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;
using static Emu64.Cpu.X87;

namespace Emu64.Isa;

/// <summary>
/// What every x87 handler shares, in one place: the availability checks (CR0.EM or CR0.TS → #NM, SDM vol. 3A
/// table 2-2), delivery of a pending unmasked exception as #MF at the next waiting instruction (CR0.NE=1; with
/// NE=0 the PC-style FERR#/IGNNE# path is not modeled and the instruction proceeds as if IGNNE# were asserted),
/// the last-instruction pointers, register-stack access (ST(i), push, pop, overflow and underflow), memory
/// operands of every format, and the status-word bookkeeping that decides between a masked response and a
/// pending exception (<see cref="Commit"/>).
/// </summary>
public static class X87Core
{
    /// <summary>
    /// Starts a waiting, non-control x87 instruction: #NM, pending #MF, then FOP/FIP/FCS (and FDP/FDS for a memory
    /// operand) are recorded (SDM vol. 1 §8.1.8). FOP was taken from the instruction bytes at decode (Insn.Imm).
    /// </summary>
    public static X87 Begin(CpuCore cpu, ref Insn i)
    {
        var f = Wait(cpu);
        f.Fop = (ushort)i.Imm;
        f.Fip = cpu.InsnRip;
        f.Fcs = cpu.Segs[Seg.CS].Selector;
        if (i.K0 == Opnd.Mem || i.K1 == Opnd.Mem)
        {
            f.Fdp = cpu.EffectiveAddress(ref i);
            f.Fds = cpu.Segs[i.Seg].Selector;
        }
        return f;
    }

    /// <summary>The checks of a waiting control instruction (FINIT, FSTSW, ...): #NM, then a pending #MF.</summary>
    public static X87 Wait(CpuCore cpu)
    {
        var f = NoWait(cpu);
        if ((f.Status & ES) != 0 && (cpu.CR0 & Cr0.Ne) != 0) cpu.Fault(Vec.MF);
        return f;
    }

    /// <summary>The check of a non-waiting control instruction (FNINIT, FNSTSW, ...): #NM only.</summary>
    public static X87 NoWait(CpuCore cpu)
    {
        if ((cpu.CR0 & (Cr0.Em | Cr0.Ts)) != 0) cpu.Fault(Vec.NM);
        return cpu.Fpu;
    }

    // ---- the register stack ----------------------------------------------------------------

    public static F80 St(X87 f, int i) { int p = f.Phys(i); return new F80(f.Sig[p], f.Se[p]); }

    public static void SetSt(X87 f, int i, F80 v)
    {
        int p = f.Phys(i);
        f.Sig[p] = v.Sig; f.Se[p] = v.Se;
        f.Valid |= (byte)(1 << p);
    }

    public static void Pop(X87 f)
    {
        f.Valid &= (byte)~(1 << f.Top);
        f.Top = (f.Top + 1) & 7;
    }

    /// <summary>
    /// Pushes a value computed with flags <paramref name="fl"/>. A full slot is a stack overflow (IE, SF, C1=1): masked,
    /// the real indefinite is pushed; unmasked, nothing changes. Other unmasked invalid/denormal flags also leave the stack as it was.
    /// </summary>
    public static void Push(X87 f, F80 v, ushort fl)
    {
        if ((fl & SF) == 0 && (f.Valid & (1 << ((f.Top - 1) & 7))) != 0) { fl = IE | SF | C1; v = F80.Indefinite; }
        // a load completes despite an unmasked DE (the host CPU pushes the normalized value and flags DE)
        if (!Commit(f, fl) && (fl & ~f.Fcw & (IE | ZE)) != 0) return;
        f.Top = (f.Top - 1) & 7;
        SetSt(f, 0, v);
    }

    /// <summary>
    /// Records the flags of an instruction and says whether its result may be written: not when an unmasked IE, DE or ZE
    /// occurred (those are detected before computing, SDM vol. 1 §8.5), in which case only they are recorded. C1 takes
    /// the flags' C1 (rounded up, or the stack-fault direction); ES and B follow the masks.
    /// </summary>
    public static bool Commit(X87 f, ushort fl)
    {
        ushort pre = (ushort)(fl & (IE | DE | ZE));
        bool ok = (pre & ~f.Fcw & Flags) == 0;
        ushort rec = ok ? (ushort)(fl & (Flags | SF)) : (ushort)(pre | (fl & SF));
        ushort c1 = ok || (fl & SF) != 0 ? (ushort)(fl & C1) : (ushort)0;   // no result: no "rounded up"
        f.Status = (ushort)((f.Status & ~C1) | rec | c1);
        f.UpdateSummary();
        return ok;
    }

    /// <summary>A stack underflow (an operand register is empty): IE and SF with C1=0; whether the masked response may be written.</summary>
    public static bool Underflow(X87 f) => Commit(f, IE | SF);

    /// <summary>The rounding context of the control word.</summary>
    public static Float80.Ctx Ctx(X87 f) => Float80.Ctx.Of(f.Fcw);

    // ---- memory operands -------------------------------------------------------------------

    /// <summary>
    /// Reads the memory operand of an x87 instruction as an 80-bit value, by its Iced memory size: real (m32/m64/m80),
    /// integer (m16/m32/m64) or packed BCD (m80). For <paramref name="arith"/> operands an SNaN stays signaling so the
    /// operation sees it; a load quiets it and raises IE. Conversions into 80 bits are exact.
    /// </summary>
    public static F80 ReadMem(CpuCore cpu, ref Insn i, ref ushort fl, bool arith)
    {
        switch (i.I.MemorySize)
        {
            case MemorySize.Float32: return Float80.FromBinary(cpu.ReadOperandMem(ref i, 4), 23, 8, ref fl, !arith);
            case MemorySize.Float64: return Float80.FromBinary(cpu.ReadOperandMem(ref i, 8), 52, 11, ref fl, !arith);
            case MemorySize.Int16: return FromLong((short)cpu.ReadOperandMem(ref i, 2));
            case MemorySize.Int32: return FromLong((int)cpu.ReadOperandMem(ref i, 4));
            case MemorySize.Int64: return FromLong((long)cpu.ReadOperandMem(ref i, 8));
            case MemorySize.Bcd: return Bcd.Load(Read80Raw(cpu, ref i, out ushort hi), hi);
            default:
                ulong sig = Read80Raw(cpu, ref i, out ushort se);
                return new F80(sig, se);
        }
    }

    private static F80 FromLong(long v) => Float80.FromInteger(v < 0, v < 0 ? (ulong)-v : (ulong)v);

    /// <summary>Ten bytes at the operand (both pieces read before anything changes).</summary>
    public static ulong Read80Raw(CpuCore cpu, ref Insn i, out ushort hi)
    {
        ulong la = cpu.OperandLinear(ref i, 10, false);
        ulong lo = cpu.ReadLinear(la, 8);
        hi = (ushort)cpu.ReadLinear(la + 8, 2);
        return lo;
    }

    /// <summary>Writes ten bytes (the whole range translated for writing first: no partial store on a fault).</summary>
    public static void Write80(CpuCore cpu, ulong la, ulong lo, ushort hi)
    {
        cpu.RmwRef(la, 1);
        cpu.RmwRef(la + 9, 1);
        cpu.WriteLinear(la, 8, lo);
        cpu.WriteLinear(la + 8, 2, hi);
    }
}

/// <summary>Packed BCD (m80: 18 digits, sign in bit 79, SDM vol. 1 §4.7).</summary>
public static class Bcd
{
    /// <summary>FBLD: exact; digits above 9 are undefined by the SDM and are taken at face value.</summary>
    public static F80 Load(ulong lo, ushort hi)
    {
        ulong v = 0;
        for (int d = 8; d >= 0; d--)
        {
            int b = d == 8 ? hi & 0xFF : (int)(lo >> (8 * d)) & 0xFF;
            v = v * 100 + (ulong)((b >> 4) * 10 + (b & 15));
        }
        return Float80.FromInteger((hi & 0x8000) != 0, v);
    }

    /// <summary>An integer magnitude below 10^18 as 18 BCD digits (low 8 bytes, and byte 8 in <paramref name="hi"/>).</summary>
    public static ulong Store(ulong mag, bool neg, out ushort hi)
    {
        ulong lo = 0;
        int b8 = 0;
        for (int d = 0; d < 9; d++)
        {
            int two = (int)(mag % 100);
            mag /= 100;
            int b = ((two / 10) << 4) | (two % 10);
            if (d < 8) lo |= (ulong)b << (8 * d); else b8 = b;
        }
        hi = (ushort)(b8 | (neg ? 0x8000 : 0));
        return lo;
    }
}
