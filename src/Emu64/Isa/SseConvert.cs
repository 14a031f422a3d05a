using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;
using static Emu64.Isa.Sse;
using static Emu64.Isa.SseInteger;

namespace Emu64.Isa;

/// <summary>
/// SSE/SSE2 conversions between integers, binary32 and binary64: CVTSI2SS/SD, CVT(T)SS2SI, CVT(T)SD2SI,
/// CVTSS2SD, CVTSD2SS, CVTPS2PD, CVTPD2PS, CVTDQ2PS, CVT(T)PS2DQ, CVTDQ2PD, CVT(T)PD2DQ. The "T" forms
/// truncate; the others round by MXCSR.RC. Out-of-range and NaN sources give the integer indefinite
/// (only the sign bit set) with IE. Narrowing packed forms zero the upper half of the destination.
/// </summary>
public static unsafe class SseConvert
{
    internal static void Register()
    {
        HandlerTable.Map(&Cvtsi2ss, Code.Cvtsi2ss_xmm_rm32, Code.Cvtsi2ss_xmm_rm64);
        HandlerTable.Map(&Cvtsi2sd, Code.Cvtsi2sd_xmm_rm32, Code.Cvtsi2sd_xmm_rm64);
        HandlerTable.Map(&Cvtss2si, Code.Cvtss2si_r32_xmmm32, Code.Cvtss2si_r64_xmmm32);
        HandlerTable.Map(&Cvttss2si, Code.Cvttss2si_r32_xmmm32, Code.Cvttss2si_r64_xmmm32);
        HandlerTable.Map(&Cvtsd2si, Code.Cvtsd2si_r32_xmmm64, Code.Cvtsd2si_r64_xmmm64);
        HandlerTable.Map(&Cvttsd2si, Code.Cvttsd2si_r32_xmmm64, Code.Cvttsd2si_r64_xmmm64);
        HandlerTable.Map(Code.Cvtss2sd_xmm_xmmm32, &Cvtss2sd);
        HandlerTable.Map(Code.Cvtsd2ss_xmm_xmmm64, &Cvtsd2ss);
        HandlerTable.Map(Code.Cvtps2pd_xmm_xmmm64, &Cvtps2pd);
        HandlerTable.Map(Code.Cvtpd2ps_xmm_xmmm128, &Cvtpd2ps);
        HandlerTable.Map(Code.Cvtdq2ps_xmm_xmmm128, &Cvtdq2ps);
        HandlerTable.Map(Code.Cvtps2dq_xmm_xmmm128, &Cvtps2dq);
        HandlerTable.Map(Code.Cvttps2dq_xmm_xmmm128, &Cvttps2dq);
        HandlerTable.Map(Code.Cvtdq2pd_xmm_xmmm64, &Cvtdq2pd);
        HandlerTable.Map(Code.Cvtpd2dq_xmm_xmmm128, &Cvtpd2dq);
        HandlerTable.Map(Code.Cvttpd2dq_xmm_xmmm128, &Cvttpd2dq);
    }

    private static long SrcInt(CpuCore cpu, ref Insn i)
    {
        int size = i.Size1;
        ulong v = i.K1 == Opnd.Reg ? cpu.GetReg(i.R1, size) : cpu.ReadOperandMem(ref i, size);
        return size == 8 ? (long)v : (int)(uint)v;
    }

    private static void Cvtsi2ss(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        long v = SrcInt(cpu, ref i);
        var sf = new SoftFloat(cpu.Mxcsr);
        ulong r = sf.FromInt(v, false);
        Finish(cpu, sf.Pre, sf.Post);
        Dw(cpu, i.R0, 0) = (uint)r;
    }

    private static void Cvtsi2sd(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        long v = SrcInt(cpu, ref i);
        var sf = new SoftFloat(cpu.Mxcsr);
        ulong r = sf.FromInt(v, true);
        Finish(cpu, sf.Pre, sf.Post);
        Lo(cpu, i.R0) = r;
    }

    private static void ToInt(CpuCore cpu, ref Insn i, bool d, bool truncate)
    {
        Check(cpu);
        ulong a = SrcScalar(cpu, ref i, d ? 8 : 4);
        var sf = new SoftFloat(cpu.Mxcsr);
        ulong r = sf.ToInt(a, d, i.Size == 8, truncate);
        Finish(cpu, sf.Pre, sf.Post);
        cpu.SetReg(i.R0, i.Size, r);
    }

    private static void Cvtss2si(CpuCore cpu, ref Insn i) => ToInt(cpu, ref i, false, false);
    private static void Cvttss2si(CpuCore cpu, ref Insn i) => ToInt(cpu, ref i, false, true);
    private static void Cvtsd2si(CpuCore cpu, ref Insn i) => ToInt(cpu, ref i, true, false);
    private static void Cvttsd2si(CpuCore cpu, ref Insn i) => ToInt(cpu, ref i, true, true);

    private static void Cvtss2sd(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        ulong a = SrcScalar(cpu, ref i, 4);
        var sf = new SoftFloat(cpu.Mxcsr);
        ulong r = sf.Convert(a, fromDouble: false);
        Finish(cpu, sf.Pre, sf.Post);
        Lo(cpu, i.R0) = r;
    }

    private static void Cvtsd2ss(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        ulong a = SrcScalar(cpu, ref i, 8);
        var sf = new SoftFloat(cpu.Mxcsr);
        ulong r = sf.Convert(a, fromDouble: true);
        Finish(cpu, sf.Pre, sf.Post);
        Dw(cpu, i.R0, 0) = (uint)r;
    }

    private static void Cvtps2pd(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        ulong s = SrcScalar(cpu, ref i, 8);
        var sf = new SoftFloat(cpu.Mxcsr);
        ulong lo = sf.Convert(s & 0xFFFFFFFF, false), hi = sf.Convert(s >> 32, false);
        Finish(cpu, sf.Pre, sf.Post);
        cpu.Xmm[i.R0] = new UInt128(hi, lo);
    }

    private static void Cvtpd2ps(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        UInt128 s = Src(cpu, ref i, true);
        var sf = new SoftFloat(cpu.Mxcsr);
        ulong lo = sf.Convert((ulong)s, true), hi = sf.Convert((ulong)(s >> 64), true);
        Finish(cpu, sf.Pre, sf.Post);
        cpu.Xmm[i.R0] = (hi << 32) | lo;
    }

    private static void Cvtdq2ps(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        UInt128 s = Src(cpu, ref i, true), r = 0;
        var sf = new SoftFloat(cpu.Mxcsr);
        for (int k = 0; k < 4; k++) L<uint>(ref r, k) = (uint)sf.FromInt(L<int>(ref s, k), false);
        Finish(cpu, sf.Pre, sf.Post);
        cpu.Xmm[i.R0] = r;
    }

    private static void Ps2dq(CpuCore cpu, ref Insn i, bool truncate)
    {
        Check(cpu);
        UInt128 s = Src(cpu, ref i, true), r = 0;
        var sf = new SoftFloat(cpu.Mxcsr);
        for (int k = 0; k < 4; k++) L<uint>(ref r, k) = (uint)sf.ToInt(L<uint>(ref s, k), false, false, truncate);
        Finish(cpu, sf.Pre, sf.Post);
        cpu.Xmm[i.R0] = r;
    }

    private static void Cvtps2dq(CpuCore cpu, ref Insn i) => Ps2dq(cpu, ref i, false);
    private static void Cvttps2dq(CpuCore cpu, ref Insn i) => Ps2dq(cpu, ref i, true);

    private static void Cvtdq2pd(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        ulong s = SrcScalar(cpu, ref i, 8);
        var sf = new SoftFloat(cpu.Mxcsr);
        ulong lo = sf.FromInt((int)(uint)s, true), hi = sf.FromInt((int)(uint)(s >> 32), true);
        cpu.Xmm[i.R0] = new UInt128(hi, lo);
    }

    private static void Pd2dq(CpuCore cpu, ref Insn i, bool truncate)
    {
        Check(cpu);
        UInt128 s = Src(cpu, ref i, true);
        var sf = new SoftFloat(cpu.Mxcsr);
        ulong lo = sf.ToInt((ulong)s, true, false, truncate), hi = sf.ToInt((ulong)(s >> 64), true, false, truncate);
        Finish(cpu, sf.Pre, sf.Post);
        cpu.Xmm[i.R0] = (hi << 32) | lo;
    }

    private static void Cvtpd2dq(CpuCore cpu, ref Insn i) => Pd2dq(cpu, ref i, false);
    private static void Cvttpd2dq(CpuCore cpu, ref Insn i) => Pd2dq(cpu, ref i, true);
}
