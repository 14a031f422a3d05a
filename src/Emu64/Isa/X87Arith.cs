using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;
using static Emu64.Cpu.X87;
using static Emu64.Isa.X87Core;

namespace Emu64.Isa;

/// <summary>
/// x87 arithmetic: FADD/FSUB/FSUBR/FMUL/FDIV/FDIVR in every form (m32/m64 real, m16/m32 integer, ST(0)/ST(i) either
/// way round, and popping), FSQRT, FABS, FCHS, FRNDINT, FSCALE, FXTRACT, FPREM, FPREM1. The values come from
/// <see cref="Float80"/>; this file only picks operands and the destination.
/// </summary>
public static unsafe class X87Arith
{
    private enum Op { Add, Sub, SubR, Mul, Div, DivR }

    internal static void Register()
    {
        HandlerTable.Map(&Fadd, Mnemonic.Fadd, Mnemonic.Fiadd);
        HandlerTable.Map(&Faddp, Mnemonic.Faddp);
        HandlerTable.Map(&Fsub, Mnemonic.Fsub, Mnemonic.Fisub);
        HandlerTable.Map(&Fsubp, Mnemonic.Fsubp);
        HandlerTable.Map(&Fsubr, Mnemonic.Fsubr, Mnemonic.Fisubr);
        HandlerTable.Map(&Fsubrp, Mnemonic.Fsubrp);
        HandlerTable.Map(&Fmul, Mnemonic.Fmul, Mnemonic.Fimul);
        HandlerTable.Map(&Fmulp, Mnemonic.Fmulp);
        HandlerTable.Map(&Fdiv, Mnemonic.Fdiv, Mnemonic.Fidiv);
        HandlerTable.Map(&Fdivp, Mnemonic.Fdivp);
        HandlerTable.Map(&Fdivr, Mnemonic.Fdivr, Mnemonic.Fidivr);
        HandlerTable.Map(&Fdivrp, Mnemonic.Fdivrp);
        HandlerTable.Map(Mnemonic.Fsqrt, &Fsqrt);
        HandlerTable.Map(Mnemonic.Fabs, &Fabs);
        HandlerTable.Map(Mnemonic.Fchs, &Fchs);
        HandlerTable.Map(Mnemonic.Frndint, &Frndint);
        HandlerTable.Map(Mnemonic.Fscale, &Fscale);
        HandlerTable.Map(Mnemonic.Fxtract, &Fxtract);
        HandlerTable.Map(Mnemonic.Fprem, &Fprem);
        HandlerTable.Map(Mnemonic.Fprem1, &Fprem1);
    }

    private static void Fadd(CpuCore cpu, ref Insn i) => Arith(cpu, ref i, Op.Add, false);
    private static void Faddp(CpuCore cpu, ref Insn i) => Arith(cpu, ref i, Op.Add, true);
    private static void Fsub(CpuCore cpu, ref Insn i) => Arith(cpu, ref i, Op.Sub, false);
    private static void Fsubp(CpuCore cpu, ref Insn i) => Arith(cpu, ref i, Op.Sub, true);
    private static void Fsubr(CpuCore cpu, ref Insn i) => Arith(cpu, ref i, Op.SubR, false);
    private static void Fsubrp(CpuCore cpu, ref Insn i) => Arith(cpu, ref i, Op.SubR, true);
    private static void Fmul(CpuCore cpu, ref Insn i) => Arith(cpu, ref i, Op.Mul, false);
    private static void Fmulp(CpuCore cpu, ref Insn i) => Arith(cpu, ref i, Op.Mul, true);
    private static void Fdiv(CpuCore cpu, ref Insn i) => Arith(cpu, ref i, Op.Div, false);
    private static void Fdivp(CpuCore cpu, ref Insn i) => Arith(cpu, ref i, Op.Div, true);
    private static void Fdivr(CpuCore cpu, ref Insn i) => Arith(cpu, ref i, Op.DivR, false);
    private static void Fdivrp(CpuCore cpu, ref Insn i) => Arith(cpu, ref i, Op.DivR, true);

    /// <summary>
    /// dst = dst op src. Memory forms: dst ST(0), src the operand. Register forms: dst operand 0, src operand 1
    /// (FSUB ST(i), ST(0) is ST(i) − ST(0); the R forms swap the operands of the operation, not the destination).
    /// </summary>
    private static void Arith(CpuCore cpu, ref Insn i, Op op, bool pop)
    {
        var f = Begin(cpu, ref i);
        ushort fl = 0;
        bool mem = i.K0 == Opnd.Mem;
        F80 b = mem ? ReadMem(cpu, ref i, ref fl, true) : default;
        int dst = mem ? 0 : i.R0;
        int src = mem ? -1 : (i.K1 == Opnd.Reg ? i.R1 : 0);
        if (f.IsEmpty(dst) || (!mem && f.IsEmpty(src)))
        {
            if (!Underflow(f)) return;
            SetSt(f, dst, F80.Indefinite);
            if (pop) Pop(f);
            return;
        }
        F80 a = St(f, dst);
        if (!mem) b = St(f, src);
        bool memDenormal = mem && IsBinaryDenormal(cpu, ref i);
        var c = Ctx(f);
        F80 r = op switch
        {
            Op.Add => Float80.Add(a, b, c, ref fl),
            Op.Sub => Float80.Sub(a, b, c, ref fl),
            Op.SubR => Float80.Sub(b, a, c, ref fl),
            Op.Mul => Float80.Mul(a, b, c, ref fl),
            Op.Div => Float80.Div(a, b, c, ref fl),
            _ => Float80.Div(b, a, c, ref fl),
        };
        // an m32/m64 denormal was normalized on the way in: its DE comes after the NaN, unsupported and zero-divisor checks
        if (memDenormal && (fl & (IE | ZE)) == 0 && !a.IsNaN) fl |= DE;
        if (!Commit(f, fl)) return;
        SetSt(f, dst, r);
        if (pop) Pop(f);
    }

    /// <summary>Whether the m32/m64 real operand is a denormal (read again: the access already succeeded).</summary>
    internal static bool IsBinaryDenormal(CpuCore cpu, ref Insn i)
    {
        var ms = i.I.MemorySize;
        if (ms == MemorySize.Float32) { ulong v = cpu.ReadOperandMem(ref i, 4); return (v & 0x7F800000) == 0 && (v & 0x7FFFFF) != 0; }
        if (ms == MemorySize.Float64) { ulong v = cpu.ReadOperandMem(ref i, 8); return (v & 0x7FF0000000000000) == 0 && (v & 0xFFFFFFFFFFFFF) != 0; }
        return false;
    }

    /// <summary>ST(0) = fn(ST(0)) with underflow handling; fn gets the flags.</summary>
    private static void Unary(CpuCore cpu, ref Insn i, delegate*<F80, Float80.Ctx, ref ushort, F80> fn, bool fullPrecision)
    {
        var f = Begin(cpu, ref i);
        if (f.IsEmpty(0)) { if (Underflow(f)) SetSt(f, 0, F80.Indefinite); return; }
        ushort fl = 0;
        var c = Ctx(f);
        if (fullPrecision) c = c.WithP(64);
        F80 r = fn(St(f, 0), c, ref fl);
        if (Commit(f, fl)) SetSt(f, 0, r);
    }

    private static void Fsqrt(CpuCore cpu, ref Insn i) => Unary(cpu, ref i, &Float80.Sqrt, false);
    private static void Frndint(CpuCore cpu, ref Insn i) => Unary(cpu, ref i, &RoundInt, true);
    private static F80 RoundInt(F80 a, Float80.Ctx c, ref ushort fl) => Float80.RoundToInt(a, c.Rc, ref fl);
    /// <summary>FABS/FCHS change only the sign, whatever the operand (no exception but stack underflow; C1 cleared).</summary>
    private static void Fabs(CpuCore cpu, ref Insn i) => Unary(cpu, ref i, &Abs, true);
    private static void Fchs(CpuCore cpu, ref Insn i) => Unary(cpu, ref i, &Chs, true);
    private static F80 Abs(F80 a, Float80.Ctx c, ref ushort fl) => a.Abs();
    private static F80 Chs(F80 a, Float80.Ctx c, ref ushort fl) => a.Negate();

    /// <summary>ST(0) = fn(ST(0), ST(1)) (FSCALE, FPREM, FPREM1).</summary>
    private static bool Binary01(CpuCore cpu, ref Insn i, out X87 f)
    {
        f = Begin(cpu, ref i);
        if (f.IsEmpty(0) || f.IsEmpty(1))
        {
            f.Status &= unchecked((ushort)~C2);   // FPREM: "C2 = 0" on a stack fault too (as measured)
            if (Underflow(f)) SetSt(f, 0, F80.Indefinite);
            return false;
        }
        return true;
    }

    /// <summary>FSCALE: ST(0) × 2^trunc(ST(1)), rounded to 64 bits (the precision control does not apply).</summary>
    private static void Fscale(CpuCore cpu, ref Insn i)
    {
        if (!Binary01(cpu, ref i, out var f)) return;
        ushort fl = 0;
        F80 r = Float80.Scale(St(f, 0), St(f, 1), Ctx(f).WithP(64), ref fl);
        if (Commit(f, fl)) SetSt(f, 0, r);
    }

    private static void Fprem(CpuCore cpu, ref Insn i) => Rem(cpu, ref i, false);
    private static void Fprem1(CpuCore cpu, ref Insn i) => Rem(cpu, ref i, true);

    /// <summary>
    /// FPREM/FPREM1: the exact (partial) remainder. Complete: C2=0 and the quotient's low bits Q2 Q1 Q0 in C0 C3 C1.
    /// Partial (exponents 64 or more apart): C2=1, C0 C1 C3 cleared (SDM vol. 2 FPREM).
    /// </summary>
    private static void Rem(CpuCore cpu, ref Insn i, bool nearest)
    {
        if (!Binary01(cpu, ref i, out var f)) return;
        ushort fl = 0;
        ushort cc = (ushort)(f.Status & CcMask);
        F80 r = Float80.Rem(St(f, 0), St(f, 1), nearest, (f.Fcw & Emu64.Cpu.X87.UE) != 0, ref fl, out bool partial, out int q);
        bool nan = St(f, 0).IsNaN || St(f, 1).IsNaN;
        // no remainder (NaN operand, invalid, unmasked denormal): C1 and C2 cleared, C0 and C3 kept (as measured)
        if (!Commit(f, fl)) { f.Status &= unchecked((ushort)~(C1 | C2)); return; }
        if (nan) { SetSt(f, 0, r); f.Status &= unchecked((ushort)~(C1 | C2)); return; }
        SetSt(f, 0, r);
        if ((fl & IE) != 0) { f.Status &= unchecked((ushort)~(C1 | C2)); return; }
        cc = partial ? C2 : (ushort)(((q & 4) != 0 ? C0 : 0) | ((q & 2) != 0 ? C3 : 0) | ((q & 1) != 0 ? C1 : 0));
        f.Status = (ushort)((f.Status & ~CcMask) | cc);
    }

    /// <summary>
    /// FXTRACT: ST(0) = x becomes exponent(x) (as a real, in ST(1)) and significand(x) (same sign, exponent 0, in ST(0)).
    /// Zero: ZE, exponent −∞, significand the zero. ±∞: exponent +∞, significand ±∞. NaNs propagate to both.
    /// </summary>
    private static void Fxtract(CpuCore cpu, ref Insn i)
    {
        var f = Begin(cpu, ref i);
        if (f.IsEmpty(0))
        {
            if (!Underflow(f)) return;
            SetSt(f, 0, F80.Indefinite);
            Push(f, F80.Indefinite, 0);
            return;
        }
        if (!f.IsEmpty(7))
        {
            // stack overflow: masked, both the old ST(0) and the new one become the indefinite (as measured)
            if (!Commit(f, IE | SF | C1)) return;
            SetSt(f, 0, F80.Indefinite);
            f.Top = (f.Top - 1) & 7;
            SetSt(f, 0, F80.Indefinite);
            return;
        }
        F80 x = St(f, 0);
        ushort fl = 0;
        F80 exp, sig;
        if (x.IsUnsupported) { fl = IE; exp = sig = F80.Indefinite; }
        else if (x.IsNaN) { if (x.IsSNaN) fl = IE; exp = sig = x.Quiet(); }
        else if (x.IsInf) { exp = F80.Inf(false); sig = x; }
        else if (x.IsZero) { fl = ZE; exp = F80.Inf(true); sig = x; }
        else
        {
            if (x.IsDenormal) fl = DE;
            Float80.Unpack(x, out int e, out ulong g);
            exp = Float80.FromInteger(e < 0, (ulong)Math.Abs(e));
            sig = new F80(g, (ushort)((x.Sign ? 0x8000 : 0) | 16383));
        }
        if (!Commit(f, fl)) return;
        SetSt(f, 0, exp);
        f.Top = (f.Top - 1) & 7;
        SetSt(f, 0, sig);
    }
}
