using System.Numerics;
using System.Runtime.CompilerServices;
using static Emu64.Cpu.X87;

namespace Emu64.Isa;

/// <summary>
/// One 80-bit double extended-precision value (SDM vol. 1 §4.2.2): sign and 15-bit biased exponent in
/// <see cref="Se"/>, a 64-bit significand with an explicit integer bit J in <see cref="Sig"/>.
/// Encodings the 387 and later reject as operands (unnormals, pseudo-NaNs, pseudo-infinities: exponent
/// nonzero and J clear) are "unsupported" (§8.2.2); pseudo-denormals (exponent 0, J set) are accepted.
/// </summary>
public readonly record struct F80(ulong Sig, ushort Se)
{
    public const ulong J = 1UL << 63, QuietBit = 1UL << 62;
    /// <summary>The real indefinite: the default QNaN of masked invalid operations.</summary>
    public static readonly F80 Indefinite = new(0xC000000000000000, 0xFFFF);
    public static readonly F80 One = new(J, 0x3FFF);

    public bool Sign => (Se & 0x8000) != 0;
    public int Exp => Se & 0x7FFF;
    public bool IsZero => Exp == 0 && Sig == 0;
    /// <summary>Exponent 0, nonzero significand: a denormal or pseudo-denormal operand (raises DE).</summary>
    public bool IsDenormal => Exp == 0 && Sig != 0;
    public bool IsUnsupported => Exp != 0 && (Sig & J) == 0;
    public bool IsInf => Exp == 0x7FFF && Sig == J;
    public bool IsNaN => Exp == 0x7FFF && (Sig & J) != 0 && (Sig << 1) != 0;
    public bool IsSNaN => IsNaN && (Sig & QuietBit) == 0;
    /// <summary>Finite and not zero (normal, denormal or pseudo-denormal).</summary>
    public bool IsFinite => Exp != 0x7FFF && !IsUnsupported;
    public F80 Negate() => new(Sig, (ushort)(Se ^ 0x8000));
    public F80 Abs() => new(Sig, (ushort)(Se & 0x7FFF));
    public F80 Quiet() => new(Sig | QuietBit, Se);
    public static F80 Zero(bool neg) => new(0, (ushort)(neg ? 0x8000 : 0));
    public static F80 Inf(bool neg) => new(J, (ushort)(neg ? 0xFFFF : 0x7FFF));
    public override string ToString() => $"{Se:X4}:{Sig:X16}";
}

/// <summary>
/// The x87's arithmetic on <see cref="F80"/> values, exact to the IEEE rules as the x87 applies them: one
/// rounding to the precision control (24, 53 or 64 bits) with the full 15-bit exponent range, in the
/// rounding control's direction; tininess detected before rounding; masked responses for every
/// exception, and for unmasked overflow/underflow on a register destination the result scaled by
/// 2^∓24576 (SDM vol. 1 §8.5.4/§8.5.5). Every function reports exception flags (IE DE ZE OE UE PE) and C1
/// ("rounded up") in <c>fl</c>; the caller decides from them and the masks what to write (X87Core.Finish).
/// Intermediates are exact: a 128-bit significand (UInt128) whose bit 0 collects the sticky bits.
/// </summary>
public static class Float80
{
    public const int RcNearest = 0, RcDown = 1, RcUp = 2, RcZero = 3;
    /// <summary>The bias adjustment of unmasked overflow/underflow results (SDM vol. 1 §8.5.4: 3 × 2^13).</summary>
    public const int BiasAdjust = 24576;

    /// <summary>Rounding context: significand bits, rounding control and which of OE/UE are masked.</summary>
    public readonly record struct Ctx(int P, int Rc, bool OeMasked, bool UeMasked)
    {
        /// <summary>From a control word: PC 00 → 24 bits, 10 → 53, 11 → 64 (01 is reserved and behaves as 64 here).</summary>
        public static Ctx Of(ushort fcw) => new(((fcw >> 8) & 3) switch { 0 => 24, 2 => 53, _ => 64 }, (fcw >> 10) & 3,
                                              (fcw & OE) != 0, (fcw & UE) != 0);
        public Ctx WithP(int p) => this with { P = p };
    }

    // ---- unpack / round / pack -----------------------------------------------------------

    /// <summary>A finite nonzero operand as (unbiased exponent of its leading bit, significand with bit 63 set).</summary>
    public static void Unpack(F80 a, out int e, out ulong sig)
    {
        e = (a.Exp == 0 ? 1 : a.Exp) - 16383;
        int lz = BitOperations.LeadingZeroCount(a.Sig);
        sig = a.Sig << lz;
        e -= lz;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Lz(UInt128 m) => (int)UInt128.LeadingZeroCount(m);

    private static UInt128 ShiftRightSticky(UInt128 m, int n)
    {
        if (n <= 0) return m;
        if (n >= 128) return m != 0 ? UInt128.One : UInt128.Zero;
        UInt128 lost = m & ((UInt128.One << n) - 1);
        return (m >> n) | (lost != 0 ? UInt128.One : UInt128.Zero);
    }

    /// <summary>
    /// Rounds sign × m × 2^(e−127) (m ≠ 0, bit 0 sticky) to <c>c.P</c> bits for a format whose normal numbers
    /// have exponents emin..emax. Returns the significand left-aligned at bit 63 (below it for a denormal)
    /// and the exponent of bit 63 in <paramref name="eo"/>; <paramref name="inf"/> when the masked response to
    /// overflow is infinity. With an unmasked OE/UE the result is scaled by 2^∓<paramref name="adjust"/>.
    /// </summary>
    public static ulong Round(bool sign, int e, UInt128 m, int emin, int emax, Ctx c, int adjust, ref ushort fl, out int eo, out bool inf)
    {
        inf = false;
        int lz = Lz(m);
        m <<= lz; e -= lz;
        bool tiny = e < emin;
        bool adjusted = tiny && !c.UeMasked && e + adjust >= emin;
        // unmasked but too small even for the bias adjustment (only FSCALE gets there): a zero with UE and PE (as measured)
        if (tiny && !c.UeMasked && !adjusted) { fl |= UE | PE; fl &= unchecked((ushort)~C1); eo = emin; return 0; }
        if (adjusted) e += adjust;
        else if (tiny) { m = ShiftRightSticky(m, emin - e); e = emin; }
        int drop = 128 - c.P;
        UInt128 lsb = UInt128.One << drop, rem = m & (lsb - 1), half = lsb >> 1;
        bool inc = c.Rc switch
        {
            RcNearest => rem > half || (rem == half && (m & lsb) != 0),
            RcDown => sign && rem != 0,
            RcUp => !sign && rem != 0,
            _ => false,
        };
        m &= ~(lsb - 1);
        if (inc)
        {
            m += lsb;
            if (m == 0) { m = UInt128.One << 127; e++; }
        }
        bool inexact = rem != 0;
        if (tiny && (inexact || !c.UeMasked)) fl |= UE;
        if (tiny && !adjusted && !c.UeMasked && inexact) fl |= PE;
        if (e > emax)
        {
            // unmasked but too large even for the bias adjustment (FSCALE): infinity whatever the rounding (as measured)
            if (!c.OeMasked && e - adjust > emax) { fl |= OE | PE | C1; inf = true; eo = emax + 1; return J; }
            if (c.OeMasked)
            {
                fl |= OE | PE;
                bool toInf = c.Rc == RcNearest || (c.Rc == RcUp && !sign) || (c.Rc == RcDown && sign);
                if (toInf) { fl |= C1; inf = true; eo = emax + 1; return J; }
                fl &= unchecked((ushort)~C1);
                eo = emax;
                return ulong.MaxValue << (64 - c.P);
            }
            fl |= OE;
            e -= adjust;
        }
        if (inexact) { fl |= PE; if (inc) fl |= C1; }
        eo = e;
        return (ulong)(m >> 64);
    }

    private const ulong J = F80.J;

    /// <summary>Rounds to an 80-bit register value (exponent range −16382..16383).</summary>
    public static F80 Pack80(bool sign, int e, UInt128 m, Ctx c, ref ushort fl)
    {
        if (m == 0) return F80.Zero(sign);
        ulong sig = Round(sign, e, m, -16382, 16383, c, BiasAdjust, ref fl, out int eo, out bool inf);
        if (inf) return F80.Inf(sign);
        int field = (sig & J) != 0 ? eo + 16383 : 0;
        return new F80(sig, (ushort)((sign ? 0x8000 : 0) | field));
    }

    /// <summary>An exact conversion of sign × mag (an integer) to 80 bits.</summary>
    public static F80 FromInteger(bool sign, ulong mag)
    {
        if (mag == 0) return F80.Zero(sign);
        int lz = BitOperations.LeadingZeroCount(mag);
        return new F80(mag << lz, (ushort)((sign ? 0x8000 : 0) | (16383 + 63 - lz)));
    }

    // ---- operand screening ----------------------------------------------------------------

    /// <summary>
    /// The NaN result of an operation with NaN operands (SDM vol. 1 table 4-7, x87 column): a QNaN beats an SNaN,
    /// of two of the same kind the larger significand (on a tie the positive one), always returned quiet.
    /// </summary>
    public static F80 PropagateNaN(F80 a, F80 b)
    {
        bool an = a.IsNaN, bn = b.IsNaN;
        if (an && bn)
        {
            if (a.IsSNaN != b.IsSNaN) return (a.IsSNaN ? b : a).Quiet();
            if (a.Sig != b.Sig) return (a.Sig > b.Sig ? a : b).Quiet();
            return (a.Sign ? b : a).Quiet();
        }
        return (an ? a : b).Quiet();
    }

    /// <summary>The checks every two-operand arithmetic instruction makes first: unsupported → IE and indefinite; NaN → propagate (IE for an SNaN); denormal → DE.</summary>
    private static bool Screen(F80 a, F80 b, ref ushort fl, out F80 r, bool de = true)
    {
        if (a.IsUnsupported || b.IsUnsupported) { fl |= IE; r = F80.Indefinite; return true; }
        if (a.IsNaN || b.IsNaN)
        {
            if (a.IsSNaN || b.IsSNaN) fl |= IE;
            r = PropagateNaN(a, b);
            return true;
        }
        if (de && (a.IsDenormal || b.IsDenormal)) fl |= DE;
        r = default;
        return false;
    }

    private static bool Screen(F80 a, ref ushort fl, out F80 r)
    {
        if (a.IsUnsupported) { fl |= IE; r = F80.Indefinite; return true; }
        if (a.IsNaN) { if (a.IsSNaN) fl |= IE; r = a.Quiet(); return true; }
        if (a.IsDenormal) fl |= DE;
        r = default;
        return false;
    }

    private static F80 Invalid(ref ushort fl) { fl |= IE; return F80.Indefinite; }

    // ---- arithmetic ----------------------------------------------------------------------

    public static F80 Add(F80 a, F80 b, Ctx c, ref ushort fl) => AddSub(a, b, false, c, ref fl);
    public static F80 Sub(F80 a, F80 b, Ctx c, ref ushort fl) => AddSub(a, b, true, c, ref fl);

    private static F80 AddSub(F80 a, F80 b, bool sub, Ctx c, ref ushort fl)
    {
        if (Screen(a, b, ref fl, out var r)) return r;
        bool sa = a.Sign, sb = b.Sign ^ sub;
        if (a.IsInf || b.IsInf)
        {
            if (a.IsInf && b.IsInf && sa != sb) return Invalid(ref fl);
            return F80.Inf(a.IsInf ? sa : sb);
        }
        if (a.IsZero && b.IsZero) return F80.Zero(sa == sb ? sa : c.Rc == RcDown);
        if (b.IsZero) return Pack80(sa, Unpacked(a, out var ma), ma, c, ref fl);
        if (a.IsZero) return Pack80(sb, Unpacked(b, out var mb0), mb0, c, ref fl);
        Unpack(a, out int ea, out ulong ga);
        Unpack(b, out int eb, out ulong gb);
        UInt128 x = (UInt128)ga << 63, y = (UInt128)gb << 63;   // leading bit at 126: room for the carry
        if (ea < eb || (ea == eb && x < y)) { (ea, eb) = (eb, ea); (x, y) = (y, x); (sa, sb) = (sb, sa); }
        y = ShiftRightSticky(y, ea - eb);
        UInt128 m = sa == sb ? x + y : x - y;
        if (m == 0) return F80.Zero(c.Rc == RcDown);
        return Pack80(sa, ea + 1, m, c, ref fl);
    }

    /// <summary>A finite nonzero value as its exponent for <see cref="Pack80"/> and a 128-bit significand.</summary>
    private static int Unpacked(F80 a, out UInt128 m)
    {
        Unpack(a, out int e, out ulong s);
        m = (UInt128)s << 64;
        return e;
    }

    public static F80 Mul(F80 a, F80 b, Ctx c, ref ushort fl)
    {
        if (Screen(a, b, ref fl, out var r)) return r;
        bool s = a.Sign ^ b.Sign;
        if (a.IsInf || b.IsInf)
        {
            if (a.IsZero || b.IsZero) return Invalid(ref fl);
            return F80.Inf(s);
        }
        if (a.IsZero || b.IsZero) return F80.Zero(s);
        Unpack(a, out int ea, out ulong ga);
        Unpack(b, out int eb, out ulong gb);
        return Pack80(s, ea + eb + 1, (UInt128)ga * gb, c, ref fl);
    }

    public static F80 Div(F80 a, F80 b, Ctx c, ref ushort fl)
    {
        if (Screen(a, b, ref fl, out var r, de: false)) return r;
        // division by zero outranks a denormal dividend (as measured on the host)
        if (!(b.IsZero && a.IsFinite && !a.IsZero) && (a.IsDenormal || b.IsDenormal)) fl |= DE;
        bool s = a.Sign ^ b.Sign;
        if (a.IsInf) return b.IsInf ? Invalid(ref fl) : F80.Inf(s);
        if (b.IsInf) return F80.Zero(s);
        if (b.IsZero)
        {
            if (a.IsZero) return Invalid(ref fl);
            fl |= ZE;
            return F80.Inf(s);
        }
        if (a.IsZero) return F80.Zero(s);
        Unpack(a, out int ea, out ulong ga);
        Unpack(b, out int eb, out ulong gb);
        // q = ga·2^127 / gb in two 64-bit steps (each numerator fits 128 bits because the remainder is < gb)
        UInt128 n = (UInt128)ga << 63;
        UInt128 q1 = n / gb, r1 = n % gb;
        UInt128 n2 = r1 << 64;
        UInt128 q2 = n2 / gb, r2 = n2 % gb;
        UInt128 q = (q1 << 64) | q2 | (r2 != 0 ? UInt128.One : UInt128.Zero);
        return Pack80(s, ea - eb, q, c, ref fl);
    }

    public static F80 Sqrt(F80 a, Ctx c, ref ushort fl)
    {
        if (a.Sign && !a.IsZero && !a.IsNaN && !a.IsUnsupported) return Invalid(ref fl);   // IE outranks DE (as measured)
        if (Screen(a, ref fl, out var r)) return r;
        if (a.IsZero) return a;
        if (a.IsInf) return a;
        Unpack(a, out int e, out ulong g);
        int E = e - 63;                       // a = g × 2^E
        BigInteger n = g;
        if ((E & 1) != 0) { n <<= 1; E--; }
        n <<= 128;
        BigInteger root = ISqrt(n);
        bool exact = root * root == n;
        UInt128 m = Big(root, exact, out int shift);
        return PackScaled(false, m, (E - 128) / 2 + shift, c, ref fl);
    }

    /// <summary>Pack80 for a value given as m × 2^scale (scale of bit 0, m's leading bit anywhere).</summary>
    public static F80 PackScaled(bool sign, UInt128 m, int scale, Ctx c, ref ushort fl) => Pack80(sign, scale + 127, m, c, ref fl);

    /// <summary>A BigInteger as a 128-bit significand (bit 0 sticky) and how far it was shifted right.</summary>
    private static UInt128 Big(BigInteger v, bool exact, out int shift)
    {
        long bits = (long)v.GetBitLength();
        shift = (int)Math.Max(0, bits - 126);
        BigInteger top = v >> shift;
        bool lost = !exact || (shift > 0 && (v & ((BigInteger.One << shift) - 1)) != 0);
        UInt128 m = (UInt128)top;
        if (lost) m |= 1;
        return m;
    }

    public static BigInteger ISqrt(BigInteger n)
    {
        if (n.IsZero) return 0;
        int bits = (int)n.GetBitLength();
        BigInteger x = BigInteger.One << ((bits + 1) / 2);
        while (true)
        {
            BigInteger y = (x + n / x) >> 1;
            if (y >= x) return x;
            x = y;
        }
    }

    /// <summary>
    /// The exact remainder of FPREM (quotient truncated) or FPREM1 (rounded to nearest even). When the exponents differ
    /// by 64 or more only a partial remainder is computed: the quotient's top N = 32 + (D mod 32) bits are removed
    /// (the reduction AMD documents and Intel parts follow), <paramref name="partial"/> is set, and the quotient bits are not reported.
    /// <paramref name="q"/> receives the low three quotient bits of a complete remainder.
    /// </summary>
    public static F80 Rem(F80 a, F80 b, bool nearest, bool ueMasked, ref ushort fl, out bool partial, out int q)
    {
        partial = false; q = 0;
        if (Screen(a, b, ref fl, out var r, de: false)) return r;
        if (a.IsInf || b.IsZero) return Invalid(ref fl);            // IE outranks DE (as measured)
        if (a.IsDenormal || b.IsDenormal) fl |= DE;
        if (a.IsZero) return a;
        if (b.IsInf) return a.IsDenormal ? Pack80(a.Sign, Unpacked(a, out var ma), ma, new Ctx(64, RcNearest, true, true), ref fl) : a;   // a pseudo-denormal comes back normalized
        Unpack(a, out int ea, out ulong ga);
        Unpack(b, out int eb, out ulong gb);
        int d = ea - eb;
        BigInteger A = ga, B = gb;
        int scale;                               // the remainder R is R × 2^scale
        if (d >= 64)
        {
            int n = 32 + d % 32;
            A <<= n;
            BigInteger qq = A / B;
            BigInteger rr = A - qq * B;
            partial = true;
            scale = eb - 63 + d - n;
            if (rr.IsZero) return F80.Zero(a.Sign);
            return Exact(a.Sign, rr, scale, ueMasked, ref fl);
        }
        if (d >= 0) A <<= d; else B <<= -d;
        scale = Math.Min(ea, eb) - 63;
        BigInteger Q = BigInteger.DivRem(A, B, out BigInteger R);
        bool neg = a.Sign;
        if (nearest)
        {
            BigInteger twice = R << 1;
            if (twice > B || (twice == B && !Q.IsEven)) { Q += 1; R = B - R; neg = !neg; }
        }
        q = (int)(Q & 7);
        if (R.IsZero) return F80.Zero(a.Sign);
        return Exact(neg, R, scale, ueMasked, ref fl);
    }

    /// <summary>
    /// An exact value sign × v × 2^scale (at most 64 significant bits) rounded only for range (tiny results): a tiny
    /// remainder with underflow unmasked is delivered scaled by 2^24576 with UE set, as for any other unmasked underflow.
    /// </summary>
    private static F80 Exact(bool sign, BigInteger v, int scale, bool ueMasked, ref ushort fl)
    {
        int bits = (int)v.GetBitLength();
        UInt128 m = (UInt128)v << (128 - bits);
        return Pack80(sign, scale + bits - 1, m, new Ctx(64, RcNearest, true, ueMasked), ref fl);
    }

    /// <summary>
    /// Rounds a finite value to an integer by the rounding control: its magnitude, whether it was inexact, and whether
    /// the magnitude was rounded up. <paramref name="big"/> when the magnitude is at least 2^63 (then the value is already an integer).
    /// </summary>
    public static ulong ToIntegerMagnitude(F80 a, int rc, out bool inexact, out bool up, out bool big)
    {
        inexact = up = big = false;
        if (a.IsZero) return 0;
        Unpack(a, out int e, out ulong g);
        if (e >= 63) { big = true; return e == 63 ? g : ulong.MaxValue; }
        UInt128 ip, rem, half;
        if (e < -1) { ip = 0; rem = 1; half = 2; }   // 0 < |a| < 1/2
        else
        {
            int fb = 63 - e;                          // 1..64 fraction bits
            ip = (UInt128)g >> fb;
            rem = (UInt128)g & ((UInt128.One << fb) - 1);
            half = UInt128.One << (fb - 1);
        }
        inexact = rem != 0;
        bool s = a.Sign;
        up = rc switch
        {
            RcNearest => rem > half || (rem == half && (ip & 1) != 0),
            RcDown => s && rem != 0,
            RcUp => !s && rem != 0,
            _ => false,
        };
        return (ulong)ip + (up ? 1UL : 0);
    }

    /// <summary>FRNDINT: the value rounded to an integer by RC (PE when inexact; the precision control does not apply).</summary>
    public static F80 RoundToInt(F80 a, int rc, ref ushort fl)
    {
        if (Screen(a, ref fl, out var r)) return r;
        if (a.IsZero || a.IsInf) return a;
        ulong mag = ToIntegerMagnitude(a, rc, out bool inexact, out bool up, out bool big);
        if (big) return a;
        if (inexact) { fl |= PE; if (up) fl |= C1; }
        return FromInteger(a.Sign, mag);
    }

    /// <summary>FSCALE: a × 2^trunc(b), rounded to the precision control (SDM vol. 2 FSCALE table 3-..).</summary>
    public static F80 Scale(F80 a, F80 b, Ctx c, ref ushort fl)
    {
        if (Screen(a, b, ref fl, out var r)) return r;
        if (b.IsInf)
        {
            if (b.Sign) return a.IsInf ? Invalid(ref fl) : F80.Zero(a.Sign);     // x × 2^−∞
            return a.IsZero ? Invalid(ref fl) : F80.Inf(a.Sign);                  // x × 2^+∞
        }
        if (a.IsZero || a.IsInf) return a;
        long n;
        ulong mag = b.IsZero ? 0 : ToIntegerMagnitude(b, RcZero, out _, out _, out bool big);
        if (!b.IsZero && Unexp(b) >= 31) n = b.Sign ? -100000 : 100000;
        else n = b.Sign ? -(long)mag : (long)mag;
        n = Math.Clamp(n, -100000, 100000);
        Unpack(a, out int e, out ulong g);
        return Pack80(a.Sign, e + (int)n, (UInt128)g << 64, c, ref fl);
    }

    private static int Unexp(F80 b) { Unpack(b, out int e, out _); return e; }

    // ---- comparisons ---------------------------------------------------------------------

    /// <summary>Compares two values: −1, 0, 1, or 2 for unordered. IE for unsupported operands and SNaNs, and for QNaNs unless <paramref name="quiet"/>; DE for denormals.</summary>
    public static int Compare(F80 a, F80 b, bool quiet, ref ushort fl)
    {
        if (a.IsUnsupported || b.IsUnsupported) { fl |= IE; return 2; }
        if (a.IsNaN || b.IsNaN)
        {
            if (!quiet || a.IsSNaN || b.IsSNaN) fl |= IE;
            return 2;
        }
        if (a.IsDenormal || b.IsDenormal) fl |= DE;
        if (a.IsZero && b.IsZero) return 0;
        int ka = Key(a, out ulong ga), kb = Key(b, out ulong gb);
        int mag = ka != kb ? ka.CompareTo(kb) : ga.CompareTo(gb);
        if (a.IsZero) return b.Sign ? 1 : -1;
        if (b.IsZero) return a.Sign ? -1 : 1;
        if (a.Sign != b.Sign) return a.Sign ? -1 : 1;
        return a.Sign ? -mag : mag;
    }

    private static int Key(F80 a, out ulong g)
    {
        if (a.IsInf) { g = 0; return int.MaxValue; }
        if (a.IsZero) { g = 0; return int.MinValue; }
        Unpack(a, out int e, out g);
        return e;
    }

    // ---- conversions ---------------------------------------------------------------------

    /// <summary>A binary32/binary64 value as 80 bits (exact). SNaN → IE and quieted; denormal → DE.</summary>
    public static F80 FromBinary(ulong bits, int fracBits, int expBits, ref ushort fl, bool quiet = true)
    {
        int bias = (1 << (expBits - 1)) - 1;
        bool s = (bits >> (fracBits + expBits)) != 0;
        int exp = (int)((bits >> fracBits) & ((1UL << expBits) - 1));
        ulong frac = bits & ((1UL << fracBits) - 1);
        ushort sign = (ushort)(s ? 0x8000 : 0);
        if (exp == (1 << expBits) - 1)
        {
            if (frac == 0) return F80.Inf(s);
            var nan = new F80(J | (frac << (63 - fracBits)), (ushort)(sign | 0x7FFF));
            if (nan.IsSNaN && quiet) { fl |= IE; nan = nan.Quiet(); }   // an arithmetic operand stays signaling: the operation raises IE
            return nan;
        }
        if (exp == 0)
        {
            if (frac == 0) return F80.Zero(s);
            if (quiet) fl |= DE;   // an arithmetic operand's DE is decided by the operation (X87Arith: after NaN checks)
            int lz = BitOperations.LeadingZeroCount(frac);
            return new F80(frac << lz, (ushort)(sign | (16383 + 63 - lz - (bias - 1) - fracBits)));
        }
        return new F80(J | (frac << (63 - fracBits)), (ushort)(sign | (exp - bias + 16383)));
    }

    /// <summary>
    /// An 80-bit value rounded to binary32 (fracBits 23, expBits 8) or binary64 (52, 11). Invalid → the format's
    /// indefinite; an unmasked OE/UE is only reported (the caller does not store).
    /// </summary>
    public static ulong ToBinary(F80 a, int fracBits, int expBits, Ctx c, ref ushort fl)
    {
        int bias = (1 << (expBits - 1)) - 1;
        ulong sign = a.Sign ? 1UL << (fracBits + expBits) : 0;
        ulong expAll = ((1UL << expBits) - 1) << fracBits;
        if (a.IsUnsupported) { fl |= IE; return (1UL << (fracBits + expBits)) | expAll | (1UL << (fracBits - 1)); }
        if (a.IsNaN)
        {
            if (a.IsSNaN) fl |= IE;
            return sign | expAll | (1UL << (fracBits - 1)) | ((a.Sig << 1) >> (64 - fracBits));
        }
        if (a.IsInf) return sign | expAll;
        if (a.IsZero) return sign;
        Unpack(a, out int e, out ulong g);   // a denormal source raises no DE on a store (as measured)
        ulong sig = Round(a.Sign, e, (UInt128)g << 64, 1 - bias, bias, c.WithP(fracBits + 1), 0, ref fl, out int eo, out bool inf);
        if (inf) return sign | expAll;
        if (((fl & OE) != 0 && !c.OeMasked) || ((fl & UE) != 0 && !c.UeMasked)) return 0;   // unmasked: nothing is stored
        ulong fracField = (sig >> (63 - fracBits)) & ((1UL << fracBits) - 1);
        ulong expField = (sig & J) != 0 ? (ulong)(eo + bias) : 0;
        return sign | (expField << fracBits) | fracField;
    }

    /// <summary>
    /// An 80-bit value as a signed integer of <paramref name="bits"/> bits, rounded by RC; NaN, infinity and values out
    /// of range → IE and the integer indefinite (only the sign bit set). PE and C1 as for any rounding.
    /// </summary>
    public static long ToInt(F80 a, int bits, int rc, ref ushort fl)
    {
        long indefinite = bits == 64 ? long.MinValue : -(1L << (bits - 1));
        if (!a.IsFinite || a.IsNaN) { fl |= IE; return indefinite; }
        if (a.IsZero) return 0;
        ulong mag = ToIntegerMagnitude(a, rc, out bool inexact, out bool up, out bool big);
        ulong limit = (1UL << (bits - 1)) - (a.Sign ? 0UL : 1UL);   // 2^(n−1) for negatives, 2^(n−1)−1 for positives
        if (mag > limit) { fl |= IE; return indefinite; }
        if (inexact) { fl |= PE; if (up) fl |= C1; }
        return a.Sign ? -(long)mag : (long)mag;
    }
}
