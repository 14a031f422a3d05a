using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;
using static Emu64.Isa.Sse;

namespace Emu64.Isa;

/// <summary>
/// SSE/SSE2 floating-point arithmetic: ADD, SUB, MUL, DIV, MIN, MAX, SQRT in the PS, SS, PD and SD
/// forms, computed by <see cref="SoftFloat"/> under the guest's MXCSR. All lanes are computed first;
/// an unmasked exception in any lane raises #XM (or #UD when CR4.OSXMMEXCPT=0) and leaves the
/// destination unchanged. Scalar forms change only the low lane.
/// </summary>
public static unsafe class SseArith
{
    public enum Op : byte { Add, Sub, Mul, Div, Min, Max, Sqrt }

    // Per code: operation, and form (0 PS, 1 SS, 2 PD, 3 SD).
    private static readonly byte[] OpOf = new byte[Enum.GetValues<Code>().Length];
    private static readonly byte[] FormOf = new byte[Enum.GetValues<Code>().Length];

    internal static void Register()
    {
        Row(Op.Add, Code.Addps_xmm_xmmm128, Code.Addss_xmm_xmmm32, Code.Addpd_xmm_xmmm128, Code.Addsd_xmm_xmmm64);
        Row(Op.Sub, Code.Subps_xmm_xmmm128, Code.Subss_xmm_xmmm32, Code.Subpd_xmm_xmmm128, Code.Subsd_xmm_xmmm64);
        Row(Op.Mul, Code.Mulps_xmm_xmmm128, Code.Mulss_xmm_xmmm32, Code.Mulpd_xmm_xmmm128, Code.Mulsd_xmm_xmmm64);
        Row(Op.Div, Code.Divps_xmm_xmmm128, Code.Divss_xmm_xmmm32, Code.Divpd_xmm_xmmm128, Code.Divsd_xmm_xmmm64);
        Row(Op.Min, Code.Minps_xmm_xmmm128, Code.Minss_xmm_xmmm32, Code.Minpd_xmm_xmmm128, Code.Minsd_xmm_xmmm64);
        Row(Op.Max, Code.Maxps_xmm_xmmm128, Code.Maxss_xmm_xmmm32, Code.Maxpd_xmm_xmmm128, Code.Maxsd_xmm_xmmm64);
        Row(Op.Sqrt, Code.Sqrtps_xmm_xmmm128, Code.Sqrtss_xmm_xmmm32, Code.Sqrtpd_xmm_xmmm128, Code.Sqrtsd_xmm_xmmm64);
        HandlerTable.Map(Code.Rcpps_xmm_xmmm128, &Rcpps);
        HandlerTable.Map(Code.Rcpss_xmm_xmmm32, &Rcpss);
        HandlerTable.Map(Code.Rsqrtps_xmm_xmmm128, &Rsqrtps);
        HandlerTable.Map(Code.Rsqrtss_xmm_xmmm32, &Rsqrtss);
    }

    // ---- RCPPS/RCPSS/RSQRTPS/RSQRTSS ---------------------------------------------------------
    // The SDM specifies only the accuracy (relative error ≤ 1.5·2^-12) and the special cases; the bits
    // a given core returns come from its own tables. Emu64 returns the exact reciprocal (or reciprocal
    // square root) rounded to nearest and truncated to 12 fraction bits — relative error < 2^-12 —
    // deterministic on every host. Special cases as the SDM lists them: ±0 and denormals (always
    // treated as zero) give ±inf; ±inf gives ±0; a reciprocal below 2^-126 is flushed to ±0;
    // RSQRT of a negative number gives the default NaN; NaNs are quieted. No MXCSR flag is ever set.

    public static uint Rcp(uint x)
    {
        uint sign = x & 0x80000000, e = (x >> 23) & 0xFF, f = x & 0x7FFFFF;
        if (e == 0xFF) return f != 0 ? x | 0x400000 : sign;
        if (e == 0) return sign | 0x7F800000;
        double r = 1.0 / BitConverter.UInt32BitsToSingle(x & 0x7FFFFFFF);
        if (r < 1.1754943508222875E-38) return sign;   // 2^-126
        return sign | (BitConverter.SingleToUInt32Bits((float)r) & 0xFFFFF800);
    }

    public static uint Rsqrt(uint x)
    {
        uint sign = x & 0x80000000, e = (x >> 23) & 0xFF, f = x & 0x7FFFFF;
        if (e == 0xFF && f != 0) return x | 0x400000;
        if (e == 0) return sign | 0x7F800000;
        if (sign != 0) return 0xFFC00000;
        if (e == 0xFF) return 0;
        double r = 1.0 / Math.Sqrt(BitConverter.UInt32BitsToSingle(x));
        return BitConverter.SingleToUInt32Bits((float)r) & 0xFFFFF800;
    }

    private static void Rcpps(CpuCore cpu, ref Insn i) => Approx(cpu, ref i, &Rcp);
    private static void Rsqrtps(CpuCore cpu, ref Insn i) => Approx(cpu, ref i, &Rsqrt);

    private static void Approx(CpuCore cpu, ref Insn i, delegate*<uint, uint> f)
    {
        Check(cpu);
        UInt128 s = Src(cpu, ref i, true), r = 0;
        for (int k = 0; k < 4; k++) SseInteger.L<uint>(ref r, k) = f(SseInteger.L<uint>(ref s, k));
        cpu.Xmm[i.R0] = r;
    }

    private static void Rcpss(CpuCore cpu, ref Insn i) { Check(cpu); Dw(cpu, i.R0, 0) = Rcp((uint)SrcScalar(cpu, ref i, 4)); }
    private static void Rsqrtss(CpuCore cpu, ref Insn i) { Check(cpu); Dw(cpu, i.R0, 0) = Rsqrt((uint)SrcScalar(cpu, ref i, 4)); }

    private static void Row(Op op, Code ps, Code ss, Code pd, Code sd)
    {
        Code[] codes = [ps, ss, pd, sd];
        for (int f = 0; f < 4; f++)
        {
            OpOf[(int)codes[f]] = (byte)op;
            FormOf[(int)codes[f]] = (byte)f;
            HandlerTable.Map(codes[f], (f & 1) == 0 ? &Packed : &Scalar);
        }
    }

    public static ulong Compute(ref SoftFloat sf, Op op, ulong a, ulong b, bool d) => op switch
    {
        Op.Add => sf.Add(a, b, d),
        Op.Sub => sf.Sub(a, b, d),
        Op.Mul => sf.Mul(a, b, d),
        Op.Div => sf.Div(a, b, d),
        Op.Min => sf.MinMax(a, b, d, max: false),
        Op.Max => sf.MinMax(a, b, d, max: true),
        _ => sf.Sqrt(b, d),
    };

    private static void Packed(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        var op = (Op)OpOf[i.CodeId];
        bool d = FormOf[i.CodeId] == 2;
        UInt128 b = Src(cpu, ref i, true), a = cpu.Xmm[i.R0], r = 0;
        var sf = new SoftFloat(cpu.Mxcsr);
        if (d)
        {
            for (int k = 0; k < 2; k++)
                SseInteger.L<ulong>(ref r, k) = Compute(ref sf, op, SseInteger.L<ulong>(ref a, k), SseInteger.L<ulong>(ref b, k), true);
        }
        else
        {
            for (int k = 0; k < 4; k++)
                SseInteger.L<uint>(ref r, k) = (uint)Compute(ref sf, op, SseInteger.L<uint>(ref a, k), SseInteger.L<uint>(ref b, k), false);
        }
        Finish(cpu, sf.Pre, sf.Post);
        cpu.Xmm[i.R0] = r;
    }

    private static void Scalar(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        var op = (Op)OpOf[i.CodeId];
        bool d = FormOf[i.CodeId] == 3;
        ulong b = SrcScalar(cpu, ref i, d ? 8 : 4);
        var sf = new SoftFloat(cpu.Mxcsr);
        if (d)
        {
            ulong r = Compute(ref sf, op, Lo(cpu, i.R0), b, true);
            Finish(cpu, sf.Pre, sf.Post);
            Lo(cpu, i.R0) = r;
        }
        else
        {
            ulong r = Compute(ref sf, op, Dw(cpu, i.R0, 0), b, false);
            Finish(cpu, sf.Pre, sf.Post);
            Dw(cpu, i.R0, 0) = (uint)r;
        }
    }
}
