using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;
using static Emu64.Cpu.X87;
using static Emu64.Isa.X87Core;

namespace Emu64.Isa;

/// <summary>
/// x87 data movement: FLD/FILD/FBLD and the constants (push), FST/FSTP/FIST/FISTP/FBSTP (store), FXCH, FCMOVcc,
/// FFREE/FFREEP, FINCSTP/FDECSTP. Loading an 80-bit value or copying a register never signals on NaNs; m32/m64
/// loads quiet an SNaN with IE and raise DE for denormals; stores round to the destination format.
/// </summary>
public static unsafe class X87Load
{
    internal static void Register()
    {
        HandlerTable.Map(&Fld, Mnemonic.Fld, Mnemonic.Fild, Mnemonic.Fbld);
        HandlerTable.Map(&Fst, Mnemonic.Fst, Mnemonic.Fist);
        HandlerTable.Map(&Fstp, Mnemonic.Fstp, Mnemonic.Fistp, Mnemonic.Fbstp, Mnemonic.Fstpnce);
        HandlerTable.Map(&Fxch, Mnemonic.Fxch);
        HandlerTable.Map(&Fcmov, Mnemonic.Fcmovb, Mnemonic.Fcmove, Mnemonic.Fcmovbe, Mnemonic.Fcmovu,
                         Mnemonic.Fcmovnb, Mnemonic.Fcmovne, Mnemonic.Fcmovnbe, Mnemonic.Fcmovnu);
        HandlerTable.Map(Mnemonic.Ffree, &Ffree);
        HandlerTable.Map(Mnemonic.Ffreep, &Ffreep);
        HandlerTable.Map(Mnemonic.Fincstp, &Fincstp);
        HandlerTable.Map(Mnemonic.Fdecstp, &Fdecstp);
        HandlerTable.Map(Mnemonic.Fld1, &Fld1);
        HandlerTable.Map(Mnemonic.Fldz, &Fldz);
        HandlerTable.Map(Mnemonic.Fldpi, &Fldpi);
        HandlerTable.Map(Mnemonic.Fldl2t, &Fldl2t);
        HandlerTable.Map(Mnemonic.Fldl2e, &Fldl2e);
        HandlerTable.Map(Mnemonic.Fldlg2, &Fldlg2);
        HandlerTable.Map(Mnemonic.Fldln2, &Fldln2);
    }

    /// <summary>FLD m32/m64/m80/ST(i), FILD m16/m32/m64, FBLD m80: push the operand (ST(i) empty → underflow, indefinite pushed if masked).</summary>
    private static void Fld(CpuCore cpu, ref Insn i)
    {
        var f = Begin(cpu, ref i);
        ushort fl = 0;
        F80 v;
        if (i.K0 == Opnd.Mem) v = ReadMem(cpu, ref i, ref fl, false);
        else if (f.IsEmpty(i.R0)) { v = F80.Indefinite; fl = IE | SF; }
        else v = St(f, i.R0);
        Push(f, v, fl);
    }

    private static void Fst(CpuCore cpu, ref Insn i) => Store(cpu, ref i, false);
    private static void Fstp(CpuCore cpu, ref Insn i) => Store(cpu, ref i, true);

    /// <summary>
    /// FST/FSTP/FIST/FISTP/FBSTP: ST(0) to memory or ST(i), converted and rounded to the destination format.
    /// An unmasked exception leaves the destination and the stack unchanged (SDM vol. 1 §8.5).
    /// </summary>
    private static void Store(CpuCore cpu, ref Insn i, bool pop)
    {
        var f = Begin(cpu, ref i);
        if (i.K0 == Opnd.Reg)
        {
            if (f.IsEmpty(0)) { if (!Underflow(f)) return; SetSt(f, i.R0, F80.Indefinite); }
            else { Commit(f, 0); SetSt(f, i.R0, St(f, 0)); }
            if (pop) Pop(f);
            return;
        }
        ushort fl = 0;
        var c = Ctx(f);
        bool empty = f.IsEmpty(0);
        F80 v = empty ? F80.Indefinite : St(f, 0);
        if (empty) fl = IE | SF;
        ulong la = cpu.OperandLinear(ref i, i.Size, true);
        int size = i.I.MemorySize.GetSize();
        ulong lo = 0; ushort hi = 0;
        switch (i.I.MemorySize)
        {
            case MemorySize.Float32: lo = empty ? 0xFFC00000 : Float80.ToBinary(v, 23, 8, c, ref fl); break;
            case MemorySize.Float64: lo = empty ? 0xFFF8000000000000 : Float80.ToBinary(v, 52, 11, c, ref fl); break;
            case MemorySize.Float80: lo = v.Sig; hi = v.Se; break;
            case MemorySize.Int16: lo = (ulong)(empty ? short.MinValue : Float80.ToInt(v, 16, c.Rc, ref fl)); break;
            case MemorySize.Int32: lo = (ulong)(empty ? int.MinValue : Float80.ToInt(v, 32, c.Rc, ref fl)); break;
            case MemorySize.Int64: lo = (ulong)(empty ? long.MinValue : Float80.ToInt(v, 64, c.Rc, ref fl)); break;
            default: lo = empty ? 0xC000000000000000 : BcdOf(v, c.Rc, ref fl, out hi); if (empty) hi = 0xFFFF; break;
        }
        ushort unmasked = (ushort)(fl & ~f.Fcw & Flags);
        if ((unmasked & (IE | DE | OE | UE)) != 0)
        {
            if ((fl & (IE | DE)) != 0 && (fl & (IE | DE) & ~f.Fcw) != 0) fl &= IE | DE | SF;   // pre-computation: only those recorded
            else fl &= unchecked((ushort)~PE);   // unmasked OE/UE on a memory destination: nothing stored, no PE (as measured)
            f.Status = (ushort)((f.Status & ~C1) | (fl & (Flags | SF)) | ((fl & SF) != 0 ? fl & C1 : 0));
            f.UpdateSummary();
            return;
        }
        Commit(f, fl);
        if (size == 10) Write80(cpu, la, lo, hi);
        else cpu.WriteLinear(la, size, lo);
        if (pop) Pop(f);
    }

    /// <summary>FBSTP's value: rounded to an integer by RC; |x| ≥ 10^18, NaN or infinity → IE and the BCD indefinite.</summary>
    private static ulong BcdOf(F80 v, int rc, ref ushort fl, out ushort hi)
    {
        if (v.IsNaN || !v.IsFinite) { fl |= IE; hi = 0xFFFF; return 0xC000000000000000; }
        bool inexact = false, up = false, big = false;
        ulong mag = v.IsZero ? 0 : Float80.ToIntegerMagnitude(v, rc, out inexact, out up, out big);
        if (big || mag >= 1_000_000_000_000_000_000UL) { fl |= IE; hi = 0xFFFF; return 0xC000000000000000; }
        if (inexact) { fl |= PE; if (up) fl |= C1; }
        return Bcd.Store(mag, v.Sign, out hi);
    }

    /// <summary>FXCH ST(i): an empty operand is an underflow; masked, the empty one becomes the indefinite first.</summary>
    private static void Fxch(CpuCore cpu, ref Insn i)
    {
        var f = Begin(cpu, ref i);
        int r = i.K1 == Opnd.Reg ? i.R1 : 1;
        bool e0 = f.IsEmpty(0), ei = f.IsEmpty(r);
        if (e0 || ei)
        {
            if (!Underflow(f)) return;
            if (e0) SetSt(f, 0, F80.Indefinite);
            if (ei) SetSt(f, r, F80.Indefinite);
        }
        else Commit(f, 0);
        F80 a = St(f, 0), b = St(f, r);
        SetSt(f, 0, b); SetSt(f, r, a);
    }

    /// <summary>FCMOVcc ST(0), ST(i): the EFLAGS condition in the Cc field (B E BE U and their negations).</summary>
    private static void Fcmov(CpuCore cpu, ref Insn i)
    {
        var f = Begin(cpu, ref i);
        if (f.IsEmpty(0) || f.IsEmpty(i.R1))
        {
            if (!Underflow(f)) return;
            SetSt(f, 0, F80.Indefinite);
            return;
        }
        ulong fl = cpu.Rflags;   // C1 is left alone (as measured)
        bool cf = (fl & 1) != 0, zf = (fl & 0x40) != 0, pf = (fl & 4) != 0;
        bool cond = i.I.Mnemonic switch
        {
            Mnemonic.Fcmovb => cf, Mnemonic.Fcmove => zf, Mnemonic.Fcmovbe => cf || zf, Mnemonic.Fcmovu => pf,
            Mnemonic.Fcmovnb => !cf, Mnemonic.Fcmovne => !zf, Mnemonic.Fcmovnbe => !cf && !zf, _ => !pf,
        };
        if (cond) SetSt(f, 0, St(f, i.R1));
    }

    /// <summary>FFREE: C0..C3 are undefined; the measured AMD behaviour (C1 cleared) is kept.</summary>
    private static void Ffree(CpuCore cpu, ref Insn i) { var f = Begin(cpu, ref i); f.Valid &= (byte)~(1 << f.Phys(i.R0)); f.Status &= unchecked((ushort)~C1); }
    private static void Ffreep(CpuCore cpu, ref Insn i) { var f = Begin(cpu, ref i); f.Valid &= (byte)~(1 << f.Phys(i.R0)); Pop(f); }
    private static void Fincstp(CpuCore cpu, ref Insn i) { var f = Begin(cpu, ref i); f.Top = (f.Top + 1) & 7; f.Status &= unchecked((ushort)~C1); }
    private static void Fdecstp(CpuCore cpu, ref Insn i) { var f = Begin(cpu, ref i); f.Top = (f.Top - 1) & 7; f.Status &= unchecked((ushort)~C1); }

    private static void Fld1(CpuCore cpu, ref Insn i) => Push(Begin(cpu, ref i), F80.One, 0);
    private static void Fldz(CpuCore cpu, ref Insn i) => Push(Begin(cpu, ref i), F80.Zero(false), 0);
    private static void Fldpi(CpuCore cpu, ref Insn i) => Constant(cpu, ref i, X87Math.Pi);
    private static void Fldl2t(CpuCore cpu, ref Insn i) => Constant(cpu, ref i, X87Math.Log2Ten);
    private static void Fldl2e(CpuCore cpu, ref Insn i) => Constant(cpu, ref i, X87Math.Log2E);
    private static void Fldlg2(CpuCore cpu, ref Insn i) => Constant(cpu, ref i, X87Math.Log10Two);
    private static void Fldln2(CpuCore cpu, ref Insn i) => Constant(cpu, ref i, X87Math.Ln2);

    /// <summary>
    /// The constants are held to more than 64 bits and rounded to 64 by the rounding control (SDM vol. 1 §8.3.5: the
    /// precision control does not apply, and no precision exception is reported).
    /// </summary>
    private static void Constant(CpuCore cpu, ref Insn i, X87Math.Fixed k)
    {
        var f = Begin(cpu, ref i);
        ushort fl = 0;
        var v = Float80.PackScaled(false, k.M, k.Scale, new Float80.Ctx(64, Ctx(f).Rc, true, true), ref fl);
        Push(f, v, 0);
    }
}
