using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;
using static Emu64.Cpu.X87;
using static Emu64.Isa.X87Core;

namespace Emu64.Isa;

/// <summary>
/// x87 comparisons: FCOM/FCOMP/FCOMPP and FICOM/FICOMP (IE on any NaN), FUCOM/FUCOMP/FUCOMPP (IE only on SNaN), FTST,
/// FXAM, and FCOMI/FCOMIP/FUCOMI/FUCOMIP, which set ZF/PF/CF instead of C3/C2/C0 (SDM vol. 2 FCOM, FCOMI tables):
/// greater 000, less 001 (C0/CF), equal 100 (C3/ZF), unordered 111. C1 is cleared (0 also on stack underflow).
/// </summary>
public static unsafe class X87Compare
{
    internal static void Register()
    {
        HandlerTable.Map(&Fcom, Mnemonic.Fcom, Mnemonic.Ficom);
        HandlerTable.Map(&Fcomp, Mnemonic.Fcomp, Mnemonic.Ficomp);
        HandlerTable.Map(Mnemonic.Fcompp, &Fcompp);
        HandlerTable.Map(Mnemonic.Fucom, &Fucom);
        HandlerTable.Map(Mnemonic.Fucomp, &Fucomp);
        HandlerTable.Map(Mnemonic.Fucompp, &Fucompp);
        HandlerTable.Map(Mnemonic.Ftst, &Ftst);
        HandlerTable.Map(Mnemonic.Fxam, &Fxam);
        HandlerTable.Map(Mnemonic.Fcomi, &Fcomi);
        HandlerTable.Map(Mnemonic.Fcomip, &Fcomip);
        HandlerTable.Map(Mnemonic.Fucomi, &Fucomi);
        HandlerTable.Map(Mnemonic.Fucomip, &Fucomip);
    }

    private static void Fcom(CpuCore cpu, ref Insn i) => Com(cpu, ref i, false, 0, false);
    private static void Fcomp(CpuCore cpu, ref Insn i) => Com(cpu, ref i, false, 1, false);
    private static void Fcompp(CpuCore cpu, ref Insn i) => Com(cpu, ref i, false, 2, false);
    private static void Fucom(CpuCore cpu, ref Insn i) => Com(cpu, ref i, true, 0, false);
    private static void Fucomp(CpuCore cpu, ref Insn i) => Com(cpu, ref i, true, 1, false);
    private static void Fucompp(CpuCore cpu, ref Insn i) => Com(cpu, ref i, true, 2, false);
    private static void Ftst(CpuCore cpu, ref Insn i) => Com(cpu, ref i, false, 0, true);
    private static void Fcomi(CpuCore cpu, ref Insn i) => Comi(cpu, ref i, false, false);
    private static void Fcomip(CpuCore cpu, ref Insn i) => Comi(cpu, ref i, false, true);
    private static void Fucomi(CpuCore cpu, ref Insn i) => Comi(cpu, ref i, true, false);
    private static void Fucomip(CpuCore cpu, ref Insn i) => Comi(cpu, ref i, true, true);

    private static ushort Cc(int r) => r switch { 0 => C3, -1 => C0, 1 => 0, _ => C3 | C2 | C0 };

    /// <summary>ST(0) against operand 1 (memory, ST(i); ST(1) when there is none; +0.0 for FTST), popping <paramref name="pops"/> times.</summary>
    private static void Com(CpuCore cpu, ref Insn i, bool quiet, int pops, bool test)
    {
        var f = Begin(cpu, ref i);
        ushort fl = 0;
        bool mem = i.K0 == Opnd.Mem || i.K1 == Opnd.Mem;
        F80 b = mem ? ReadMem(cpu, ref i, ref fl, true) : default;
        int src = test || mem ? -1 : i.K1 == Opnd.Reg ? i.R1 : i.K0 == Opnd.Reg && i.R0 != 0 ? i.R0 : 1;
        int r;
        if (f.IsEmpty(0) || (src >= 0 && f.IsEmpty(src))) { fl = IE | SF; r = 2; }
        else
        {
            if (src >= 0) b = St(f, src);
            if (test) b = F80.Zero(false);
            r = Float80.Compare(St(f, 0), b, quiet, ref fl);
            F80 a = St(f, 0);
            if (mem && !a.IsNaN && !a.IsUnsupported && X87Arith.IsBinaryDenormal(cpu, ref i)) fl |= DE;
        }
        // the condition codes are written even when an unmasked exception stops the pops (as measured)
        bool ok = Commit(f, (ushort)(fl & ~C1));
        f.Status = (ushort)((f.Status & ~CcMask) | Cc(r));
        if (ok) for (int k = 0; k < pops; k++) Pop(f);
    }

    /// <summary>FCOMI/FUCOMI ST(0), ST(i): ZF PF CF from the comparison, OF SF AF cleared.</summary>
    private static void Comi(CpuCore cpu, ref Insn i, bool quiet, bool pop)
    {
        var f = Begin(cpu, ref i);
        ushort fl = 0;
        int src = i.R1, r;
        if (f.IsEmpty(0) || f.IsEmpty(src)) { fl = IE | SF; r = 2; }
        else r = Float80.Compare(St(f, 0), St(f, src), quiet, ref fl);
        bool ok = Commit(f, (ushort)(fl & ~C1));
        f.Status &= unchecked((ushort)~C1);   // "C1 Set to 0" (SDM vol. 2 FCOMI; Bochs too). AMD leaves it alone.
        ulong flags = r switch { 0 => RFlags.ZF, -1 => RFlags.CF, 1 => 0UL, _ => RFlags.ZF | RFlags.PF | RFlags.CF };
        cpu.Rflags = (cpu.Rflags & ~(RFlags.ZF | RFlags.PF | RFlags.CF | RFlags.OF | RFlags.SF | RFlags.AF)) | flags;
        if (pop && ok) Pop(f);
    }

    /// <summary>
    /// FXAM: the class of ST(0) in C3 C2 C0 (unsupported 000, NaN 001, normal 010, infinity 011, zero 100, empty 101,
    /// denormal 110) and its sign in C1 — the register's sign bit even when it is empty.
    /// </summary>
    private static void Fxam(CpuCore cpu, ref Insn i)
    {
        var f = Begin(cpu, ref i);
        F80 x = St(f, 0);
        ushort cc;
        if (f.IsEmpty(0)) cc = C3 | C0;
        else if (x.IsUnsupported) cc = 0;
        else if (x.IsNaN) cc = C0;
        else if (x.IsInf) cc = C2 | C0;
        else if (x.IsZero) cc = C3;
        else if (x.IsDenormal) cc = C3 | C2;
        else cc = C2;
        if (x.Sign) cc |= C1;
        f.Status = (ushort)((f.Status & ~CcMask) | cc);
    }
}
