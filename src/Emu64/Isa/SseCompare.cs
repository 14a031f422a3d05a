using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;
using static Emu64.Isa.Sse;

namespace Emu64.Isa;

/// <summary>
/// CMPPS/CMPSS/CMPPD/CMPSD (predicates EQ LT LE UNORD NEQ NLT NLE ORD from imm8[2:0]; LT, LE, NLT, NLE
/// signal invalid on any NaN, the others only on SNaN) producing all-ones/all-zeros masks, and
/// COMISS/COMISD (signal on any NaN) and UCOMISS/UCOMISD (only on SNaN), which set ZF, PF, CF
/// (unordered 1,1,1; less 0,0,1; equal 1,0,0; greater 0,0,0) and clear OF, SF, AF.
/// </summary>
public static unsafe class SseCompare
{
    internal static void Register()
    {
        HandlerTable.Map(Code.Cmpps_xmm_xmmm128_imm8, &Cmpps);
        HandlerTable.Map(Code.Cmppd_xmm_xmmm128_imm8, &Cmppd);
        HandlerTable.Map(Code.Cmpss_xmm_xmmm32_imm8, &Cmpss);
        HandlerTable.Map(Code.Cmpsd_xmm_xmmm64_imm8, &Cmpsd);
        HandlerTable.Map(Code.Comiss_xmm_xmmm32, &Comiss);
        HandlerTable.Map(Code.Ucomiss_xmm_xmmm32, &Ucomiss);
        HandlerTable.Map(Code.Comisd_xmm_xmmm64, &Comisd);
        HandlerTable.Map(Code.Ucomisd_xmm_xmmm64, &Ucomisd);
    }

    /// <summary>Evaluates predicate p (0..7) on a, b.</summary>
    public static bool Predicate(ref SoftFloat sf, int p, ulong a, ulong b, bool d)
    {
        bool signaling = p is 1 or 2 or 5 or 6;
        int c = sf.Compare(a, b, d, signaling);
        bool unordered = c == 2;
        return p switch
        {
            0 => c == 0,
            1 => c == -1,
            2 => c is -1 or 0,
            3 => unordered,
            4 => c != 0,
            5 => c != -1,
            6 => !(c is -1 or 0),
            _ => !unordered,
        };
    }

    private static void Cmpps(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        UInt128 b = Src(cpu, ref i, true), a = cpu.Xmm[i.R0], r = 0;
        int p = (int)i.Imm & 7;
        var sf = new SoftFloat(cpu.Mxcsr);
        for (int k = 0; k < 4; k++)
            SseInteger.L<uint>(ref r, k) = Predicate(ref sf, p, SseInteger.L<uint>(ref a, k), SseInteger.L<uint>(ref b, k), false) ? uint.MaxValue : 0;
        Finish(cpu, sf.Pre, sf.Post);
        cpu.Xmm[i.R0] = r;
    }

    private static void Cmppd(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        UInt128 b = Src(cpu, ref i, true), a = cpu.Xmm[i.R0], r = 0;
        int p = (int)i.Imm & 7;
        var sf = new SoftFloat(cpu.Mxcsr);
        for (int k = 0; k < 2; k++)
            SseInteger.L<ulong>(ref r, k) = Predicate(ref sf, p, SseInteger.L<ulong>(ref a, k), SseInteger.L<ulong>(ref b, k), true) ? ulong.MaxValue : 0;
        Finish(cpu, sf.Pre, sf.Post);
        cpu.Xmm[i.R0] = r;
    }

    private static void Cmpss(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        ulong b = SrcScalar(cpu, ref i, 4);
        var sf = new SoftFloat(cpu.Mxcsr);
        bool t = Predicate(ref sf, (int)i.Imm & 7, Dw(cpu, i.R0, 0), b, false);
        Finish(cpu, sf.Pre, sf.Post);
        Dw(cpu, i.R0, 0) = t ? uint.MaxValue : 0;
    }

    private static void Cmpsd(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        ulong b = SrcScalar(cpu, ref i, 8);
        var sf = new SoftFloat(cpu.Mxcsr);
        bool t = Predicate(ref sf, (int)i.Imm & 7, Lo(cpu, i.R0), b, true);
        Finish(cpu, sf.Pre, sf.Post);
        Lo(cpu, i.R0) = t ? ulong.MaxValue : 0;
    }

    private static void OrderedCompare(CpuCore cpu, ref Insn i, bool d, bool signaling)
    {
        Check(cpu);
        ulong b = SrcScalar(cpu, ref i, d ? 8 : 4);
        ulong a = d ? Lo(cpu, i.R0) : Dw(cpu, i.R0, 0);
        var sf = new SoftFloat(cpu.Mxcsr);
        int c = sf.Compare(a, b, d, signaling);
        Finish(cpu, sf.Pre, sf.Post);
        cpu.SetStatus(cf: c is -1 or 2, pf: c == 2, af: false, zf: c is 0 or 2, sf: false, of: false);
    }

    private static void Comiss(CpuCore cpu, ref Insn i) => OrderedCompare(cpu, ref i, false, true);
    private static void Ucomiss(CpuCore cpu, ref Insn i) => OrderedCompare(cpu, ref i, false, false);
    private static void Comisd(CpuCore cpu, ref Insn i) => OrderedCompare(cpu, ref i, true, true);
    private static void Ucomisd(CpuCore cpu, ref Insn i) => OrderedCompare(cpu, ref i, true, false);
}
