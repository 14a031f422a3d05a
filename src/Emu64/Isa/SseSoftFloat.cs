using System.Numerics;
using System.Runtime.CompilerServices;

namespace Emu64.Isa;

/// <summary>
/// IEEE 754 binary32/binary64 arithmetic exactly as SSE/SSE2 does it (SDM vol. 1 §4.8, §4.9, §11.5),
/// independent of the host's MXCSR: every rounding mode, DAZ and FTZ, tininess detected after rounding,
/// NaN propagation (first source's NaN wins, SNaN quieted, default NaN is the negative QNaN "real
/// indefinite"), and exception flags split into pre-computation (IE/DE/ZE) and post-computation
/// (OE/UE/PE) ones. Values travel as raw bits; <c>d</c> selects binary64.
/// Internal form of a finite non-zero value: sig * 2^(exp-62) with bit 62 of sig set and any lost
/// low bits ORed into bit 0 (sticky).
/// </summary>
public struct SoftFloat
{
    public uint Mxcsr;
    public uint Pre, Post;

    public SoftFloat(uint mxcsr) { Mxcsr = mxcsr; Pre = Post = 0; }

    private readonly int Rc => (int)(Mxcsr >> 13) & 3;       // 0 RN, 1 RD, 2 RU, 3 RZ
    private readonly bool Daz => (Mxcsr & Sse.Daz) != 0;
    private readonly bool Ftz => (Mxcsr & Sse.Ftz) != 0;
    private readonly bool Masked(uint flag) => (Mxcsr & (flag << 7)) != 0;

    // ---- format helpers ----------------------------------------------------------------------
    private static int Fb(bool d) => d ? 52 : 23;
    private static int EMax(bool d) => d ? 2047 : 255;
    private static int Bias(bool d) => d ? 1023 : 127;
    public static ulong SignBit(bool d) => d ? 1UL << 63 : 1UL << 31;
    private static int ExpOf(ulong x, bool d) => (int)(x >> Fb(d)) & EMax(d);
    private static ulong FracOf(ulong x, bool d) => x & ((1UL << Fb(d)) - 1);
    public static bool IsNaN(ulong x, bool d) => ExpOf(x, d) == EMax(d) && FracOf(x, d) != 0;
    public static bool IsSNaN(ulong x, bool d) => IsNaN(x, d) && (x & (1UL << (Fb(d) - 1))) == 0;
    public static bool IsInf(ulong x, bool d) => ExpOf(x, d) == EMax(d) && FracOf(x, d) == 0;
    public static bool IsZero(ulong x, bool d) => (x & ~SignBit(d)) == 0;
    public static bool IsDenormal(ulong x, bool d) => ExpOf(x, d) == 0 && FracOf(x, d) != 0;
    public static ulong Quiet(ulong x, bool d) => x | (1UL << (Fb(d) - 1));
    public static ulong DefaultNaN(bool d) => d ? 0xFFF8000000000000UL : 0xFFC00000UL;
    private static ulong Inf(bool d) => (ulong)EMax(d) << Fb(d);
    private static ulong MaxFinite(bool d) => Inf(d) - 1;

    /// <summary>Applies DAZ to a source operand.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly ulong In(ulong x, bool d) => Daz && IsDenormal(x, d) ? x & SignBit(d) : x;

    /// <summary>NaN operands: IE for any SNaN; the first source's NaN (quieted) wins.</summary>
    private ulong PropagateNaN(ulong a, ulong b, bool d)
    {
        if (IsSNaN(a, d) || IsSNaN(b, d)) Pre |= Sse.IE;
        return IsNaN(a, d) ? Quiet(a, d) : Quiet(b, d);
    }

    private void CheckDenormal(ulong a, ulong b, bool d)
    {
        if (IsDenormal(a, d) || IsDenormal(b, d)) Pre |= Sse.DE;
    }

    private ulong Invalid(bool d) { Pre |= Sse.IE; return DefaultNaN(d); }

    /// <summary>Unpacks a finite non-zero value.</summary>
    private static void Unpack(ulong x, bool d, out int exp, out ulong sig)
    {
        int fb = Fb(d), e = ExpOf(x, d);
        ulong f = FracOf(x, d);
        if (e != 0) { sig = (f | (1UL << fb)) << (62 - fb); exp = e - Bias(d); return; }
        int s = BitOperations.LeadingZeroCount(f) - 1;
        sig = f << s;
        exp = 62 - s + 1 - Bias(d) - fb;
    }

    /// <summary>v * 2^e2 (v ≠ 0) in the internal form.</summary>
    private static void Norm(UInt128 v, int e2, out int exp, out ulong sig)
    {
        int t = 127 - (int)UInt128.LeadingZeroCount(v);
        if (t > 62)
        {
            int sh = t - 62;
            bool sticky = (v & ((UInt128.One << sh) - 1)) != 0;
            sig = (ulong)(v >> sh) | (sticky ? 1UL : 0);
        }
        else sig = (ulong)v << (62 - t);
        exp = e2 + t;
    }

    /// <summary>Drops the low <paramref name="shift"/> bits of sig, rounding per MXCSR.RC.</summary>
    private readonly ulong RoundBits(ulong sig, int shift, bool neg, out bool inexact)
    {
        ulong kept, rem, half;
        if (shift >= 64) { kept = 0; rem = sig; half = shift == 64 ? 1UL << 63 : ulong.MaxValue; if (shift > 64) half = ulong.MaxValue; }
        else { kept = sig >> shift; rem = sig & ((1UL << shift) - 1); half = 1UL << (shift - 1); }
        inexact = rem != 0;
        if (!inexact) return kept;
        bool up = Rc switch
        {
            0 => rem > half || (rem == half && (kept & 1) != 0),
            1 => neg,
            2 => !neg,
            _ => false,
        };
        return up ? kept + 1 : kept;
    }

    /// <summary>Rounds sig * 2^(exp-62) to the format with overflow, underflow, FTZ and flags.</summary>
    private ulong RoundPack(bool neg, int exp, ulong sig, bool d)
    {
        int fb = Fb(d), emax = EMax(d), drop = 62 - fb;
        ulong sign = neg ? SignBit(d) : 0;
        int e = exp + Bias(d);
        ulong m = RoundBits(sig, drop, neg, out bool inexFull);
        int er = e;
        if (m == 1UL << (fb + 1)) { m >>= 1; er++; }
        if (er >= emax)
        {
            Post |= Sse.OE;
            if (!Masked(Sse.OE)) { if (inexFull) Post |= Sse.PE; return sign | Inf(d); }
            Post |= Sse.PE;
            bool toInf = Rc == 0 || (Rc == 1 && neg) || (Rc == 2 && !neg);
            return sign | (toInf ? Inf(d) : MaxFinite(d));
        }
        if (e >= 1)
        {
            if (inexFull) Post |= Sse.PE;
            return sign | ((ulong)er << fb) | (m & ((1UL << fb) - 1));
        }
        bool tiny = er < 1;
        if (!Masked(Sse.UE))
        {
            if (tiny) { Post |= Sse.UE; if (inexFull) Post |= Sse.PE; return sign; }
        }
        else if (tiny && Ftz) { Post |= Sse.UE | Sse.PE; return sign; }
        ulong md = RoundBits(sig, drop + (1 - e), neg, out bool inexD);
        if (inexD) Post |= Sse.PE | (tiny ? Sse.UE : 0);
        return sign | md;
    }

    // ---- arithmetic --------------------------------------------------------------------------

    public ulong Add(ulong a, ulong b, bool d) => AddSub(a, b, false, d);
    public ulong Sub(ulong a, ulong b, bool d) => AddSub(a, b, true, d);

    private ulong AddSub(ulong a, ulong b, bool sub, bool d)
    {
        a = In(a, d); b = In(b, d);
        if (IsNaN(a, d) || IsNaN(b, d)) return PropagateNaN(a, b, d);
        ulong sb = SignBit(d);
        ulong bs = sub ? b ^ sb : b;
        bool ia = IsInf(a, d), ib = IsInf(bs, d);
        if (ia && ib) return ((a ^ bs) & sb) != 0 ? Invalid(d) : a;
        CheckDenormal(a, b, d);
        if (ia) return a;
        if (ib) return bs;
        bool za = IsZero(a, d), zb = IsZero(bs, d);
        if (za && zb) return ((a ^ bs) & sb) == 0 ? a : (Rc == 1 ? sb : 0);
        if (za || zb)
        {
            ulong x = za ? bs : a;
            Unpack(x, d, out int xe, out ulong xs);
            return RoundPack((x & sb) != 0, xe, xs, d);
        }
        bool na = (a & sb) != 0, nb = (bs & sb) != 0;
        Unpack(a, d, out int ea, out ulong ma);
        Unpack(bs, d, out int eb, out ulong mb);
        if (ea < eb || (ea == eb && ma < mb)) { (ea, eb) = (eb, ea); (ma, mb) = (mb, ma); (na, nb) = (nb, na); }
        int diff = ea - eb;
        if (diff > 0) mb = diff >= 63 ? 1 : (mb >> diff) | ((mb & ((1UL << diff) - 1)) != 0 ? 1UL : 0);
        if (na == nb)
        {
            ulong s = ma + mb;   // < 2^64
            return PackSum(na, ea, s, d);
        }
        ulong r = ma - mb;
        if (r == 0) return Rc == 1 ? sb : 0;
        Norm(r, ea - 62, out int re, out ulong rs);
        return RoundPack(na, re, rs, d);
    }

    private ulong PackSum(bool neg, int ea, ulong s, bool d)
    {
        Norm(s, ea - 62, out int re, out ulong rs);
        return RoundPack(neg, re, rs, d);
    }

    public ulong Mul(ulong a, ulong b, bool d)
    {
        a = In(a, d); b = In(b, d);
        if (IsNaN(a, d) || IsNaN(b, d)) return PropagateNaN(a, b, d);
        ulong sb = SignBit(d), sign = (a ^ b) & sb;
        bool ia = IsInf(a, d), ib = IsInf(b, d), za = IsZero(a, d), zb = IsZero(b, d);
        if ((ia && zb) || (ib && za)) return Invalid(d);
        CheckDenormal(a, b, d);
        if (ia || ib) return sign | Inf(d);
        if (za || zb) return sign;
        Unpack(a, d, out int ea, out ulong ma);
        Unpack(b, d, out int eb, out ulong mb);
        Norm((UInt128)ma * mb, ea + eb - 124, out int re, out ulong rs);
        return RoundPack(sign != 0, re, rs, d);
    }

    public ulong Div(ulong a, ulong b, bool d)
    {
        a = In(a, d); b = In(b, d);
        if (IsNaN(a, d) || IsNaN(b, d)) return PropagateNaN(a, b, d);
        ulong sb = SignBit(d), sign = (a ^ b) & sb;
        bool ia = IsInf(a, d), ib = IsInf(b, d), za = IsZero(a, d), zb = IsZero(b, d);
        if ((ia && ib) || (za && zb)) return Invalid(d);
        if (zb && !ia) { Pre |= Sse.ZE; return sign | Inf(d); }   // divide-by-zero outranks a denormal dividend
        CheckDenormal(a, b, d);
        if (ia) return sign | Inf(d);
        if (ib) return sign;
        if (za) return sign;
        Unpack(a, d, out int ea, out ulong ma);
        Unpack(b, d, out int eb, out ulong mb);
        UInt128 n = (UInt128)ma << 64;
        UInt128 q = n / mb;
        bool sticky = q * mb != n;
        Norm(q | (sticky ? UInt128.One : UInt128.Zero), ea - eb - 64, out int re, out ulong rs);
        return RoundPack(sign != 0, re, rs, d);
    }

    public ulong Sqrt(ulong a, bool d)
    {
        a = In(a, d);
        if (IsNaN(a, d)) return PropagateNaN(a, a, d);
        ulong sb = SignBit(d);
        if (IsZero(a, d)) return a;
        if ((a & sb) != 0) return Invalid(d);
        if (IsDenormal(a, d)) Pre |= Sse.DE;
        if (IsInf(a, d)) return a;
        Unpack(a, d, out int ea, out ulong ma);
        int k = ((ea - 62 - 62) & 1) == 0 ? 62 : 63;
        UInt128 v = (UInt128)ma << k;
        UInt128 r = ISqrt(v);
        bool sticky = r * r != v;
        Norm(r | (sticky ? UInt128.One : UInt128.Zero), (ea - 62 - k) / 2, out int re, out ulong rs);
        return RoundPack(false, re, rs, d);
    }

    private static UInt128 ISqrt(UInt128 v)
    {
        UInt128 x = (UInt128)(Math.Sqrt((double)v) * (1 + 1e-12)) + 2;
        while (true)
        {
            UInt128 y = (x + v / x) >> 1;
            if (y >= x) break;
            x = y;
        }
        return x;
    }

    // ---- conversions -------------------------------------------------------------------------

    /// <summary>CVTSI2SS/SD, CVTDQ2PS/PD: a signed integer to the format (PE when inexact).</summary>
    public ulong FromInt(long v, bool d)
    {
        if (v == 0) return 0;
        bool neg = v < 0;
        ulong mag = neg ? (ulong)(-(v + 1)) + 1 : (ulong)v;
        Norm(mag, 0, out int e, out ulong s);
        return RoundPack(neg, e, s, d);
    }

    /// <summary>CVTSS2SD (d=false → binary64) and CVTSD2SS (d=true → binary32).</summary>
    public ulong Convert(ulong a, bool fromDouble)
    {
        bool d = fromDouble, to = !fromDouble;
        a = In(a, d);
        ulong sign = (a & SignBit(d)) != 0 ? SignBit(to) : 0;
        if (IsNaN(a, d))
        {
            if (IsSNaN(a, d)) Pre |= Sse.IE;
            ulong f = FracOf(a, d);
            f = fromDouble ? f >> 29 : f << 29;
            return Quiet(sign | Inf(to) | f, to);
        }
        if (IsInf(a, d)) return sign | Inf(to);
        if (IsZero(a, d)) return sign;
        if (IsDenormal(a, d)) Pre |= Sse.DE;
        Unpack(a, d, out int e, out ulong s);
        return RoundPack(sign != 0, e, s, to);
    }

    /// <summary>
    /// CVT(T)SS/SD2SI and the packed forms: to a signed integer of 32 or 64 bits, truncating or by
    /// MXCSR.RC. NaN, infinity or out of range → IE and the integer indefinite (sign bit only).
    /// </summary>
    public ulong ToInt(ulong a, bool d, bool is64, bool truncate)
    {
        a = In(a, d);
        ulong indefinite = is64 ? 1UL << 63 : 1UL << 31;
        if (IsNaN(a, d) || IsInf(a, d)) { Pre |= Sse.IE; return indefinite; }
        if (IsZero(a, d)) return 0;
        bool neg = (a & SignBit(d)) != 0;
        Unpack(a, d, out int e, out ulong s);
        if (e >= 64) { Pre |= Sse.IE; return indefinite; }
        ulong mag;
        bool inexact = false;
        if (e >= 62) mag = s << (e - 62);
        else
        {
            int saved = (int)Mxcsr;
            if (truncate) Mxcsr |= 3u << 13;
            mag = RoundBits(s, 62 - e, neg, out inexact);
            Mxcsr = (uint)saved;
        }
        ulong limit = (is64 ? 1UL << 63 : 1UL << 31) - (neg ? 0UL : 1UL);
        if (mag > limit) { Pre |= Sse.IE; return indefinite; }
        if (inexact) Post |= Sse.PE;
        ulong r = neg ? 0 - mag : mag;
        return is64 ? r : r & 0xFFFFFFFF;
    }

    // ---- comparisons -------------------------------------------------------------------------

    /// <summary>
    /// Compares a and b: -1, 0, 1, or 2 when unordered. IE for SNaN, or for any NaN when
    /// <paramref name="signaling"/>; DE for denormal operands of an ordered comparison.
    /// </summary>
    public int Compare(ulong a, ulong b, bool d, bool signaling)
    {
        a = In(a, d); b = In(b, d);
        if (IsNaN(a, d) || IsNaN(b, d))
        {
            if (signaling || IsSNaN(a, d) || IsSNaN(b, d)) Pre |= Sse.IE;
            return 2;
        }
        CheckDenormal(a, b, d);
        if (IsZero(a, d) && IsZero(b, d)) return 0;
        long ka = Key(a, d), kb = Key(b, d);
        return ka < kb ? -1 : ka > kb ? 1 : 0;
    }

    private static long Key(ulong x, bool d)
    {
        ulong sb = SignBit(d);
        long mag = (long)(x & ~sb);
        return (x & sb) != 0 ? -mag : mag;
    }

    /// <summary>MINSS/MINPD... : the second source when either is NaN (IE) or both are zero.</summary>
    public ulong MinMax(ulong a, ulong b, bool d, bool max)
    {
        ulong ia = In(a, d), ib = In(b, d);
        int c = Compare(ia, ib, d, signaling: true);
        if (c == 2) return ib;
        if (max ? c > 0 : c < 0) return ia;
        return ib;
    }
}
