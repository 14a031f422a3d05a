using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;
using static Emu64.Isa.Sse;
using static Emu64.Isa.SseInteger;

namespace Emu64.Isa;

/// <summary>
/// SSE/SSE2 rearrangements: unpacks and packs, PSHUFD/PSHUFLW/PSHUFHW, SHUFPS/SHUFPD, the element
/// shifts (by an XMM/m128 count or an immediate; counts past the element width give 0, or the sign for
/// arithmetic shifts), the whole-register byte shifts PSLLDQ/PSRLDQ, and PEXTRW/PINSRW.
/// </summary>
public static unsafe class SseShuffle
{
    private static readonly nint[] Funcs = new nint[Enum.GetValues<Code>().Length];

    /// <summary>The 128-bit function registered for an XMM code (the MMX forms reuse it on 64-bit lanes, Mmx.cs).</summary>
    internal static nint Func(Code c) => Funcs[(int)c];

    internal static void Register()
    {
        Bin(&UnpackLo8, Code.Punpcklbw_xmm_xmmm128); Bin(&UnpackHi8, Code.Punpckhbw_xmm_xmmm128);
        Bin(&UnpackLo16, Code.Punpcklwd_xmm_xmmm128); Bin(&UnpackHi16, Code.Punpckhwd_xmm_xmmm128);
        Bin(&UnpackLo32, Code.Punpckldq_xmm_xmmm128, Code.Unpcklps_xmm_xmmm128);
        Bin(&UnpackHi32, Code.Punpckhdq_xmm_xmmm128, Code.Unpckhps_xmm_xmmm128);
        Bin(&UnpackLo64, Code.Punpcklqdq_xmm_xmmm128, Code.Unpcklpd_xmm_xmmm128);
        Bin(&UnpackHi64, Code.Punpckhqdq_xmm_xmmm128, Code.Unpckhpd_xmm_xmmm128);
        Bin(&Packsswb, Code.Packsswb_xmm_xmmm128); Bin(&Packssdw, Code.Packssdw_xmm_xmmm128); Bin(&Packuswb, Code.Packuswb_xmm_xmmm128);
        Bin(&Psllw, Code.Psllw_xmm_xmmm128); Bin(&Pslld, Code.Pslld_xmm_xmmm128); Bin(&Psllq, Code.Psllq_xmm_xmmm128);
        Bin(&Psrlw, Code.Psrlw_xmm_xmmm128); Bin(&Psrld, Code.Psrld_xmm_xmmm128); Bin(&Psrlq, Code.Psrlq_xmm_xmmm128);
        Bin(&Psraw, Code.Psraw_xmm_xmmm128); Bin(&Psrad, Code.Psrad_xmm_xmmm128);
        Imm(&Psllw, Code.Psllw_xmm_imm8); Imm(&Pslld, Code.Pslld_xmm_imm8); Imm(&Psllq, Code.Psllq_xmm_imm8);
        Imm(&Psrlw, Code.Psrlw_xmm_imm8); Imm(&Psrld, Code.Psrld_xmm_imm8); Imm(&Psrlq, Code.Psrlq_xmm_imm8);
        Imm(&Psraw, Code.Psraw_xmm_imm8); Imm(&Psrad, Code.Psrad_xmm_imm8);
        Imm(&Pslldq, Code.Pslldq_xmm_imm8); Imm(&Psrldq, Code.Psrldq_xmm_imm8);
        HandlerTable.Map(Code.Pshufd_xmm_xmmm128_imm8, &Pshufd);
        HandlerTable.Map(Code.Pshuflw_xmm_xmmm128_imm8, &Pshuflw);
        HandlerTable.Map(Code.Pshufhw_xmm_xmmm128_imm8, &Pshufhw);
        HandlerTable.Map(Code.Shufps_xmm_xmmm128_imm8, &Shufps);
        HandlerTable.Map(Code.Shufpd_xmm_xmmm128_imm8, &Shufpd);
        HandlerTable.Map(&Pextrw, Code.Pextrw_r32_xmm_imm8, Code.Pextrw_r64_xmm_imm8);
        HandlerTable.Map(&Pinsrw, Code.Pinsrw_xmm_r32m16_imm8, Code.Pinsrw_xmm_r64m16_imm8);
    }

    private static void Bin(delegate*<UInt128, UInt128, UInt128> f, params Code[] codes)
    {
        foreach (var c in codes) { Funcs[(int)c] = (nint)f; HandlerTable.Map(c, &BinaryHandler); }
    }

    private static void Imm(delegate*<UInt128, UInt128, UInt128> f, params Code[] codes)
    {
        foreach (var c in codes) { Funcs[(int)c] = (nint)f; HandlerTable.Map(c, &ImmHandler); }
    }

    private static void BinaryHandler(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        UInt128 b = Src(cpu, ref i, true);
        ref UInt128 a = ref cpu.Xmm[i.R0];
        a = ((delegate*<UInt128, UInt128, UInt128>)Funcs[i.CodeId])(a, b);
    }

    /// <summary>Shift-by-immediate forms: the immediate is the count operand.</summary>
    private static void ImmHandler(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        ref UInt128 a = ref cpu.Xmm[i.R0];
        a = ((delegate*<UInt128, UInt128, UInt128>)Funcs[i.CodeId])(a, (byte)i.Imm);
    }

    private static UInt128 Interleave<T>(UInt128 a, UInt128 b, int first) where T : unmanaged
    {
        int n = 16 / System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        UInt128 r = 0;
        for (int k = 0; k < n / 2; k++)
        {
            L<T>(ref r, 2 * k) = L<T>(ref a, first + k);
            L<T>(ref r, 2 * k + 1) = L<T>(ref b, first + k);
        }
        return r;
    }

    private static UInt128 UnpackLo8(UInt128 a, UInt128 b) => Interleave<byte>(a, b, 0);
    private static UInt128 UnpackHi8(UInt128 a, UInt128 b) => Interleave<byte>(a, b, 8);
    private static UInt128 UnpackLo16(UInt128 a, UInt128 b) => Interleave<ushort>(a, b, 0);
    private static UInt128 UnpackHi16(UInt128 a, UInt128 b) => Interleave<ushort>(a, b, 4);
    private static UInt128 UnpackLo32(UInt128 a, UInt128 b) => Interleave<uint>(a, b, 0);
    private static UInt128 UnpackHi32(UInt128 a, UInt128 b) => Interleave<uint>(a, b, 2);
    private static UInt128 UnpackLo64(UInt128 a, UInt128 b) => new((ulong)b, (ulong)a);
    private static UInt128 UnpackHi64(UInt128 a, UInt128 b) => new((ulong)(b >> 64), (ulong)(a >> 64));

    private static UInt128 Packsswb(UInt128 a, UInt128 b)
    {
        UInt128 r = 0;
        for (int k = 0; k < 8; k++)
        {
            L<sbyte>(ref r, k) = (sbyte)Math.Clamp((int)L<short>(ref a, k), -128, 127);
            L<sbyte>(ref r, k + 8) = (sbyte)Math.Clamp((int)L<short>(ref b, k), -128, 127);
        }
        return r;
    }

    private static UInt128 Packuswb(UInt128 a, UInt128 b)
    {
        UInt128 r = 0;
        for (int k = 0; k < 8; k++)
        {
            L<byte>(ref r, k) = (byte)Math.Clamp((int)L<short>(ref a, k), 0, 255);
            L<byte>(ref r, k + 8) = (byte)Math.Clamp((int)L<short>(ref b, k), 0, 255);
        }
        return r;
    }

    private static UInt128 Packssdw(UInt128 a, UInt128 b)
    {
        UInt128 r = 0;
        for (int k = 0; k < 4; k++)
        {
            L<short>(ref r, k) = (short)Math.Clamp(L<int>(ref a, k), -32768, 32767);
            L<short>(ref r, k + 4) = (short)Math.Clamp(L<int>(ref b, k), -32768, 32767);
        }
        return r;
    }

    // Element shifts: the count is the low 64 bits of the count operand.
    private static UInt128 Psllw(UInt128 a, UInt128 c) { ulong n = (ulong)c; for (int k = 0; k < 8; k++) L<ushort>(ref a, k) = n > 15 ? (ushort)0 : (ushort)(L<ushort>(ref a, k) << (int)n); return a; }
    private static UInt128 Pslld(UInt128 a, UInt128 c) { ulong n = (ulong)c; for (int k = 0; k < 4; k++) L<uint>(ref a, k) = n > 31 ? 0 : L<uint>(ref a, k) << (int)n; return a; }
    private static UInt128 Psllq(UInt128 a, UInt128 c) { ulong n = (ulong)c; for (int k = 0; k < 2; k++) L<ulong>(ref a, k) = n > 63 ? 0 : L<ulong>(ref a, k) << (int)n; return a; }
    private static UInt128 Psrlw(UInt128 a, UInt128 c) { ulong n = (ulong)c; for (int k = 0; k < 8; k++) L<ushort>(ref a, k) = n > 15 ? (ushort)0 : (ushort)(L<ushort>(ref a, k) >> (int)n); return a; }
    private static UInt128 Psrld(UInt128 a, UInt128 c) { ulong n = (ulong)c; for (int k = 0; k < 4; k++) L<uint>(ref a, k) = n > 31 ? 0 : L<uint>(ref a, k) >> (int)n; return a; }
    private static UInt128 Psrlq(UInt128 a, UInt128 c) { ulong n = (ulong)c; for (int k = 0; k < 2; k++) L<ulong>(ref a, k) = n > 63 ? 0 : L<ulong>(ref a, k) >> (int)n; return a; }
    private static UInt128 Psraw(UInt128 a, UInt128 c) { int n = (int)Math.Min((ulong)c, 15); for (int k = 0; k < 8; k++) L<short>(ref a, k) = (short)(L<short>(ref a, k) >> n); return a; }
    private static UInt128 Psrad(UInt128 a, UInt128 c) { int n = (int)Math.Min((ulong)c, 31); for (int k = 0; k < 4; k++) L<int>(ref a, k) = L<int>(ref a, k) >> n; return a; }
    private static UInt128 Pslldq(UInt128 a, UInt128 c) { ulong n = (ulong)c; return n > 15 ? 0 : a << (int)(8 * n); }
    private static UInt128 Psrldq(UInt128 a, UInt128 c) { ulong n = (ulong)c; return n > 15 ? 0 : a >> (int)(8 * n); }

    private static void Pshufd(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        UInt128 s = Src(cpu, ref i, true), r = 0;
        int imm = (int)i.Imm;
        for (int k = 0; k < 4; k++) L<uint>(ref r, k) = L<uint>(ref s, (imm >> (2 * k)) & 3);
        cpu.Xmm[i.R0] = r;
    }

    private static void Pshuflw(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        UInt128 s = Src(cpu, ref i, true), r = s;
        int imm = (int)i.Imm;
        for (int k = 0; k < 4; k++) L<ushort>(ref r, k) = L<ushort>(ref s, (imm >> (2 * k)) & 3);
        cpu.Xmm[i.R0] = r;
    }

    private static void Pshufhw(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        UInt128 s = Src(cpu, ref i, true), r = s;
        int imm = (int)i.Imm;
        for (int k = 0; k < 4; k++) L<ushort>(ref r, 4 + k) = L<ushort>(ref s, 4 + ((imm >> (2 * k)) & 3));
        cpu.Xmm[i.R0] = r;
    }

    private static void Shufps(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        UInt128 b = Src(cpu, ref i, true), a = cpu.Xmm[i.R0], r = 0;
        int imm = (int)i.Imm;
        L<uint>(ref r, 0) = L<uint>(ref a, imm & 3);
        L<uint>(ref r, 1) = L<uint>(ref a, (imm >> 2) & 3);
        L<uint>(ref r, 2) = L<uint>(ref b, (imm >> 4) & 3);
        L<uint>(ref r, 3) = L<uint>(ref b, (imm >> 6) & 3);
        cpu.Xmm[i.R0] = r;
    }

    private static void Shufpd(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        UInt128 b = Src(cpu, ref i, true), a = cpu.Xmm[i.R0];
        int imm = (int)i.Imm;
        cpu.Xmm[i.R0] = new UInt128(L<ulong>(ref b, (imm >> 1) & 1), L<ulong>(ref a, imm & 1));
    }

    /// <summary>PEXTRW r32/r64, xmm, imm8: the selected word, zero-extended.</summary>
    private static void Pextrw(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        UInt128 s = cpu.Xmm[i.R1];
        cpu.SetReg(i.R0, i.Size, L<ushort>(ref s, (int)i.Imm & 7));
    }

    /// <summary>PINSRW xmm, r32/m16, imm8: replaces the selected word.</summary>
    private static void Pinsrw(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        ushort w = (ushort)(i.K1 == Opnd.Reg ? cpu.GetReg(i.R1, 2) : cpu.ReadOperandMem(ref i, 2));
        L<ushort>(ref cpu.Xmm[i.R0], (int)i.Imm & 7) = w;
    }
}
