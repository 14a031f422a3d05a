using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;
using static Emu64.Isa.Sse;

namespace Emu64.Isa;

/// <summary>
/// SSE2 128-bit integer arithmetic and logic on XMM registers: add/subtract (wrapping and saturating),
/// multiplies, averages, min/max, sums of absolute differences, compares, and the bitwise operations
/// (including the PS/PD forms, which are the same bit operations). Each is a pure function of the two
/// 128-bit operands; the m128 operand must be 16-byte aligned (legacy SSE encoding).
/// </summary>
public static unsafe class SseInteger
{
    internal static void Register()
    {
        Row(&Paddb, Code.Paddb_xmm_xmmm128); Row(&Paddw, Code.Paddw_xmm_xmmm128);
        Row(&Paddd, Code.Paddd_xmm_xmmm128); Row(&Paddq, Code.Paddq_xmm_xmmm128);
        Row(&Psubb, Code.Psubb_xmm_xmmm128); Row(&Psubw, Code.Psubw_xmm_xmmm128);
        Row(&Psubd, Code.Psubd_xmm_xmmm128); Row(&Psubq, Code.Psubq_xmm_xmmm128);
        Row(&Paddsb, Code.Paddsb_xmm_xmmm128); Row(&Paddsw, Code.Paddsw_xmm_xmmm128);
        Row(&Psubsb, Code.Psubsb_xmm_xmmm128); Row(&Psubsw, Code.Psubsw_xmm_xmmm128);
        Row(&Paddusb, Code.Paddusb_xmm_xmmm128); Row(&Paddusw, Code.Paddusw_xmm_xmmm128);
        Row(&Psubusb, Code.Psubusb_xmm_xmmm128); Row(&Psubusw, Code.Psubusw_xmm_xmmm128);
        Row(&Pmullw, Code.Pmullw_xmm_xmmm128); Row(&Pmulhw, Code.Pmulhw_xmm_xmmm128);
        Row(&Pmulhuw, Code.Pmulhuw_xmm_xmmm128); Row(&Pmuludq, Code.Pmuludq_xmm_xmmm128);
        Row(&Pmaddwd, Code.Pmaddwd_xmm_xmmm128);
        Row(&Pavgb, Code.Pavgb_xmm_xmmm128); Row(&Pavgw, Code.Pavgw_xmm_xmmm128);
        Row(&Pminub, Code.Pminub_xmm_xmmm128); Row(&Pmaxub, Code.Pmaxub_xmm_xmmm128);
        Row(&Pminsw, Code.Pminsw_xmm_xmmm128); Row(&Pmaxsw, Code.Pmaxsw_xmm_xmmm128);
        Row(&Psadbw, Code.Psadbw_xmm_xmmm128);
        Row(&Pcmpeqb, Code.Pcmpeqb_xmm_xmmm128); Row(&Pcmpeqw, Code.Pcmpeqw_xmm_xmmm128); Row(&Pcmpeqd, Code.Pcmpeqd_xmm_xmmm128);
        Row(&Pcmpgtb, Code.Pcmpgtb_xmm_xmmm128); Row(&Pcmpgtw, Code.Pcmpgtw_xmm_xmmm128); Row(&Pcmpgtd, Code.Pcmpgtd_xmm_xmmm128);
        Row(&And, Code.Pand_xmm_xmmm128, Code.Andps_xmm_xmmm128, Code.Andpd_xmm_xmmm128);
        Row(&AndN, Code.Pandn_xmm_xmmm128, Code.Andnps_xmm_xmmm128, Code.Andnpd_xmm_xmmm128);
        Row(&Or, Code.Por_xmm_xmmm128, Code.Orps_xmm_xmmm128, Code.Orpd_xmm_xmmm128);
        Row(&Xor, Code.Pxor_xmm_xmmm128, Code.Xorps_xmm_xmmm128, Code.Xorpd_xmm_xmmm128);
    }

    // One handler body per function pointer: the table stores (handler, function) pairs by code.
    private static readonly nint[] Funcs = new nint[Enum.GetValues<Code>().Length];

    /// <summary>The 128-bit function registered for an XMM code (the MMX forms reuse it on 64-bit lanes, Mmx.cs).</summary>
    internal static nint Func(Code c) => Funcs[(int)c];

    private static void Row(delegate*<UInt128, UInt128, UInt128> f, params Code[] codes)
    {
        foreach (var c in codes) { Funcs[(int)c] = (nint)f; HandlerTable.Map(c, &Binary); }
    }

    /// <summary>xmm1 = f(xmm1, xmm2/m128).</summary>
    private static void Binary(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        UInt128 b = Src(cpu, ref i, true);
        ref UInt128 a = ref cpu.Xmm[i.R0];
        a = ((delegate*<UInt128, UInt128, UInt128>)Funcs[i.CodeId])(a, b);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ref T L<T>(ref UInt128 v, int k) where T : unmanaged => ref Unsafe.Add(ref Unsafe.As<UInt128, T>(ref v), k);

    private static Vector128<byte> B(UInt128 v) => V(v);

    private static UInt128 Paddb(UInt128 a, UInt128 b) => U(B(a) + B(b));
    private static UInt128 Paddw(UInt128 a, UInt128 b) => U(B(a).AsUInt16() + B(b).AsUInt16());
    private static UInt128 Paddd(UInt128 a, UInt128 b) => U(B(a).AsUInt32() + B(b).AsUInt32());
    private static UInt128 Paddq(UInt128 a, UInt128 b) => U(B(a).AsUInt64() + B(b).AsUInt64());
    private static UInt128 Psubb(UInt128 a, UInt128 b) => U(B(a) - B(b));
    private static UInt128 Psubw(UInt128 a, UInt128 b) => U(B(a).AsUInt16() - B(b).AsUInt16());
    private static UInt128 Psubd(UInt128 a, UInt128 b) => U(B(a).AsUInt32() - B(b).AsUInt32());
    private static UInt128 Psubq(UInt128 a, UInt128 b) => U(B(a).AsUInt64() - B(b).AsUInt64());

    private static UInt128 Paddsb(UInt128 a, UInt128 b)
    {
        for (int k = 0; k < 16; k++) L<sbyte>(ref a, k) = (sbyte)Math.Clamp(L<sbyte>(ref a, k) + L<sbyte>(ref b, k), -128, 127);
        return a;
    }
    private static UInt128 Psubsb(UInt128 a, UInt128 b)
    {
        for (int k = 0; k < 16; k++) L<sbyte>(ref a, k) = (sbyte)Math.Clamp(L<sbyte>(ref a, k) - L<sbyte>(ref b, k), -128, 127);
        return a;
    }
    private static UInt128 Paddsw(UInt128 a, UInt128 b)
    {
        for (int k = 0; k < 8; k++) L<short>(ref a, k) = (short)Math.Clamp(L<short>(ref a, k) + L<short>(ref b, k), -32768, 32767);
        return a;
    }
    private static UInt128 Psubsw(UInt128 a, UInt128 b)
    {
        for (int k = 0; k < 8; k++) L<short>(ref a, k) = (short)Math.Clamp(L<short>(ref a, k) - L<short>(ref b, k), -32768, 32767);
        return a;
    }
    private static UInt128 Paddusb(UInt128 a, UInt128 b)
    {
        for (int k = 0; k < 16; k++) L<byte>(ref a, k) = (byte)Math.Min(L<byte>(ref a, k) + L<byte>(ref b, k), 255);
        return a;
    }
    private static UInt128 Psubusb(UInt128 a, UInt128 b)
    {
        for (int k = 0; k < 16; k++) L<byte>(ref a, k) = (byte)Math.Max(L<byte>(ref a, k) - L<byte>(ref b, k), 0);
        return a;
    }
    private static UInt128 Paddusw(UInt128 a, UInt128 b)
    {
        for (int k = 0; k < 8; k++) L<ushort>(ref a, k) = (ushort)Math.Min(L<ushort>(ref a, k) + L<ushort>(ref b, k), 65535);
        return a;
    }
    private static UInt128 Psubusw(UInt128 a, UInt128 b)
    {
        for (int k = 0; k < 8; k++) L<ushort>(ref a, k) = (ushort)Math.Max(L<ushort>(ref a, k) - L<ushort>(ref b, k), 0);
        return a;
    }

    private static UInt128 Pmullw(UInt128 a, UInt128 b) => U(B(a).AsUInt16() * B(b).AsUInt16());
    private static UInt128 Pmulhw(UInt128 a, UInt128 b)
    {
        for (int k = 0; k < 8; k++) L<short>(ref a, k) = (short)((L<short>(ref a, k) * L<short>(ref b, k)) >> 16);
        return a;
    }
    private static UInt128 Pmulhuw(UInt128 a, UInt128 b)
    {
        for (int k = 0; k < 8; k++) L<ushort>(ref a, k) = (ushort)((L<ushort>(ref a, k) * (uint)L<ushort>(ref b, k)) >> 16);
        return a;
    }
    private static UInt128 Pmuludq(UInt128 a, UInt128 b)
        => new((ulong)L<uint>(ref a, 2) * L<uint>(ref b, 2), (ulong)L<uint>(ref a, 0) * L<uint>(ref b, 0));
    private static UInt128 Pmaddwd(UInt128 a, UInt128 b)
    {
        UInt128 r = 0;
        for (int k = 0; k < 4; k++)
            L<int>(ref r, k) = (int)((long)L<short>(ref a, 2 * k) * L<short>(ref b, 2 * k) + (long)L<short>(ref a, 2 * k + 1) * L<short>(ref b, 2 * k + 1));
        return r;
    }

    private static UInt128 Pavgb(UInt128 a, UInt128 b)
    {
        for (int k = 0; k < 16; k++) L<byte>(ref a, k) = (byte)((L<byte>(ref a, k) + L<byte>(ref b, k) + 1) >> 1);
        return a;
    }
    private static UInt128 Pavgw(UInt128 a, UInt128 b)
    {
        for (int k = 0; k < 8; k++) L<ushort>(ref a, k) = (ushort)((L<ushort>(ref a, k) + L<ushort>(ref b, k) + 1) >> 1);
        return a;
    }
    private static UInt128 Pminub(UInt128 a, UInt128 b) => U(Vector128.Min(B(a), B(b)));
    private static UInt128 Pmaxub(UInt128 a, UInt128 b) => U(Vector128.Max(B(a), B(b)));
    private static UInt128 Pminsw(UInt128 a, UInt128 b) => U(Vector128.Min(B(a).AsInt16(), B(b).AsInt16()));
    private static UInt128 Pmaxsw(UInt128 a, UInt128 b) => U(Vector128.Max(B(a).AsInt16(), B(b).AsInt16()));

    private static UInt128 Psadbw(UInt128 a, UInt128 b)
    {
        ulong lo = 0, hi = 0;
        for (int k = 0; k < 8; k++)
        {
            lo += (ulong)Math.Abs(L<byte>(ref a, k) - L<byte>(ref b, k));
            hi += (ulong)Math.Abs(L<byte>(ref a, k + 8) - L<byte>(ref b, k + 8));
        }
        return new UInt128(hi, lo);
    }

    private static UInt128 Pcmpeqb(UInt128 a, UInt128 b) => U(Vector128.Equals(B(a), B(b)));
    private static UInt128 Pcmpeqw(UInt128 a, UInt128 b) => U(Vector128.Equals(B(a).AsUInt16(), B(b).AsUInt16()));
    private static UInt128 Pcmpeqd(UInt128 a, UInt128 b) => U(Vector128.Equals(B(a).AsUInt32(), B(b).AsUInt32()));
    private static UInt128 Pcmpgtb(UInt128 a, UInt128 b) => U(Vector128.GreaterThan(B(a).AsSByte(), B(b).AsSByte()));
    private static UInt128 Pcmpgtw(UInt128 a, UInt128 b) => U(Vector128.GreaterThan(B(a).AsInt16(), B(b).AsInt16()));
    private static UInt128 Pcmpgtd(UInt128 a, UInt128 b) => U(Vector128.GreaterThan(B(a).AsInt32(), B(b).AsInt32()));

    private static UInt128 And(UInt128 a, UInt128 b) => a & b;
    private static UInt128 AndN(UInt128 a, UInt128 b) => ~a & b;
    private static UInt128 Or(UInt128 a, UInt128 b) => a | b;
    private static UInt128 Xor(UInt128 a, UInt128 b) => a ^ b;
}
