using System.Numerics;
using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;
using static Emu64.Cpu.X87;
using static Emu64.Isa.X87Core;

namespace Emu64.Isa;

/// <summary>
/// FSIN, FCOS, FSINCOS, FPTAN (|x| &lt; 2^63, else C2=1 and the operand unchanged; the argument is reduced exactly by the
/// SDM's 66-bit Pi/2, as Intel's x87 does), FPATAN, F2XM1, FYL2X, FYL2XP1. Each value is computed in fixed point (<see cref="X87Math"/>) with at least
/// 192 bits beyond the operand's own scale and rounded once to 64 bits by the rounding control (the precision control
/// does not apply, SDM vol. 1 §8.1.5.2); C1 says whether it was rounded up.
/// </summary>
public static unsafe class X87Transcendental
{
    internal static void Register()
    {
        HandlerTable.Map(Mnemonic.Fsin, &Fsin);
        HandlerTable.Map(Mnemonic.Fcos, &Fcos);
        HandlerTable.Map(Mnemonic.Fsincos, &Fsincos);
        HandlerTable.Map(Mnemonic.Fptan, &Fptan);
        HandlerTable.Map(Mnemonic.Fpatan, &Fpatan);
        HandlerTable.Map(Mnemonic.F2xm1, &F2xm1);
        HandlerTable.Map(Mnemonic.Fyl2x, &Fyl2x);
        HandlerTable.Map(Mnemonic.Fyl2xp1, &Fyl2xp1);
    }

    private const int Guard = 192;

    /// <summary>A finite value as a signed fixed-point BigInteger with w fraction bits (exact when w ≥ 63 − exponent).</summary>
    private static BigInteger ToFixed(F80 x, int w)
    {
        if (x.IsZero) return 0;
        Float80.Unpack(x, out int e, out ulong g);
        int sh = w + e - 63;
        BigInteger v = sh >= 0 ? (BigInteger)g << sh : (BigInteger)g >> -sh;
        return x.Sign ? -v : v;
    }

    private static int ExpOf(F80 x) { Float80.Unpack(x, out int e, out _); return e; }

    /// <summary>A fixed-point value (w fraction bits, never exact) rounded once to 64 bits.</summary>
    private static F80 Round(BigInteger v, int w, Float80.Ctx c, ref ushort fl)
    {
        if (v.IsZero) return F80.Zero(false);
        bool neg = v.Sign < 0;
        BigInteger a = BigInteger.Abs(v);
        int bits = (int)a.GetBitLength();
        int sh = bits - 126;
        UInt128 m = sh >= 0 ? (UInt128)(a >> sh) | 1 : (UInt128)a << -sh | 0;
        if (sh < 0) m |= 1;
        return Float80.PackScaled(neg, m, sh - w, c.WithP(64), ref fl);
    }

    private static bool Screen1(F80 x, ref ushort fl, out F80 r)
    {
        if (x.IsUnsupported) { fl |= IE; r = F80.Indefinite; return true; }
        if (x.IsNaN) { if (x.IsSNaN) fl |= IE; r = x.Quiet(); return true; }
        if (x.IsDenormal) fl |= DE;
        r = default;
        return false;
    }

    /// <summary>
    /// The π the x87 reduces by: SDM vol. 1 §8.3.8 ("Approximation of Pi") gives it as 0.f·2^2 with
    /// f = C90FDAA2 2168C234 C, 66 significant bits (π rounded to nearest-even to 68 bits). So FSIN(x) is really
    /// sin(x − n·Pi/2) taken by quadrant, not sin(x): near a multiple of π the result is the distance to a multiple of
    /// this Pi, not of π (FSIN of FLDPI's value is −2^-64 where sin of that value is −5.0166e-20).
    /// </summary>
    internal static readonly BigInteger Pi66 = BigInteger.Parse("0C90FDAA22168C234C", System.Globalization.NumberStyles.HexNumber);
    private const int Pi66Fraction = 66;      // Pi = Pi66 · 2^-66

    /// <summary>x reduced modulo Pi/2 exactly: r (fixed, w bits) and the quadrant n mod 4 (n = x/(Pi/2) rounded to nearest).</summary>
    private static BigInteger Reduce(F80 x, int w, out int quadrant)
    {
        BigInteger X = ToFixed(x, w);
        int e = ExpOf(x);
        if (e < -1) { quadrant = 0; return X; }                  // |x| < 1/2 < π/4
        BigInteger halfPi = Pi66 << (w - Pi66Fraction - 1);      // Pi/2 in w fraction bits: exact (w > 67)
        BigInteger n = BigInteger.Divide(X + (halfPi >> 1) * X.Sign, halfPi);
        BigInteger r = X - n * halfPi;                           // exact: never 0 (Pi's odd part has 66 bits, x has 64)
        quadrant = (int)(((n % 4) + 4) % 4);
        return r;
    }

    /// <summary>The working width for an argument of exponent e: the guard bits plus its own scale, plus the π reduction.</summary>
    private static int Width(F80 x) => Guard + 64 + Math.Max(0, -ExpOf(x)) + Math.Max(0, ExpOf(x));

    /// <summary>Common front of FSIN/FCOS/FSINCOS/FPTAN: underflow, specials, out-of-range (C2).</summary>
    private static bool Trig(CpuCore cpu, ref Insn i, bool pushes, out X87 f, out F80 x)
    {
        f = Begin(cpu, ref i);
        x = St(f, 0);
        if (f.IsEmpty(0))
        {
            if (Underflow(f)) { SetSt(f, 0, F80.Indefinite); if (pushes) Push(f, F80.Indefinite, 0); }
            return false;
        }
        if (pushes && !f.IsEmpty(7)) { Push(f, default, 0); return false; }
        if (x.IsFinite && !x.IsZero && ExpOf(x) >= 63)
        {
            f.Status = (ushort)((f.Status & ~(C1 | C2)) | C2);
            return false;
        }
        f.Status &= unchecked((ushort)~C2);
        return true;
    }

    private static void Fsin(CpuCore cpu, ref Insn i) => SinCos(cpu, ref i, 0);
    private static void Fcos(CpuCore cpu, ref Insn i) => SinCos(cpu, ref i, 1);
    private static void Fsincos(CpuCore cpu, ref Insn i) => SinCos(cpu, ref i, 2);
    private static void Fptan(CpuCore cpu, ref Insn i) => SinCos(cpu, ref i, 3);

    /// <summary>which: 0 sin, 1 cos, 2 sincos (ST(1)=sin, ST(0)=cos), 3 tan (ST(1)=tan, ST(0)=1).</summary>
    private static void SinCos(CpuCore cpu, ref Insn i, int which)
    {
        if (!Trig(cpu, ref i, which >= 2, out var f, out F80 x)) return;
        ushort fl = 0;
        var c = Ctx(f);
        F80 a, b = F80.One;
        if (Screen1(x, ref fl, out var nan)) a = b = nan;
        else if (x.IsInf) { fl |= IE; a = b = F80.Indefinite; }
        else if (x.IsZero) { a = which == 1 ? F80.One : x; b = F80.One; }
        else
        {
            int w = Width(x);
            BigInteger r = Reduce(x, w, out int q);
            X87Math.SinCosW(r, w, out var s, out var co);
            BigInteger sin = q switch { 0 => s, 1 => co, 2 => -s, _ => -co };
            BigInteger cos = q switch { 0 => co, 1 => -s, 2 => -co, _ => s };
            ushort f2 = 0;
            switch (which)
            {
                case 0: a = Round(sin, w, c, ref fl); break;
                case 1: a = Round(cos, w, c, ref fl); break;
                case 2: a = Round(sin, w, c, ref f2); b = Round(cos, w, c, ref fl); fl |= (ushort)(f2 & ~C1); break;
                default: a = Round((sin << w) / cos, w, c, ref fl); break;
            }
        }
        if (!Commit(f, fl)) return;
        SetSt(f, 0, a);
        if (which >= 2) { f.Top = (f.Top - 1) & 7; SetSt(f, 0, b); }
    }

    /// <summary>ST(1) = fn(ST(1), ST(0)), pop.</summary>
    private static void Pair(CpuCore cpu, ref Insn i, delegate*<F80, F80, Float80.Ctx, ref ushort, F80> fn)
    {
        var f = Begin(cpu, ref i);
        if (f.IsEmpty(0) || f.IsEmpty(1))
        {
            if (Underflow(f)) { SetSt(f, 1, F80.Indefinite); Pop(f); }
            return;
        }
        ushort fl = 0;
        F80 r = fn(St(f, 1), St(f, 0), Ctx(f), ref fl);
        if (!Commit(f, fl)) return;
        SetSt(f, 1, r);
        Pop(f);
    }

    private static void Fpatan(CpuCore cpu, ref Insn i) => Pair(cpu, ref i, &Atan2);
    private static void Fyl2x(CpuCore cpu, ref Insn i) => Pair(cpu, ref i, &Yl2x);
    private static void Fyl2xp1(CpuCore cpu, ref Insn i) => Pair(cpu, ref i, &Yl2xp1);

    private static bool Screen2(F80 a, F80 b, ref ushort fl, out F80 r)
    {
        if (a.IsUnsupported || b.IsUnsupported) { fl |= IE; r = F80.Indefinite; return true; }
        if (a.IsNaN || b.IsNaN) { if (a.IsSNaN || b.IsSNaN) fl |= IE; r = Float80.PropagateNaN(a, b); return true; }
        if (a.IsDenormal || b.IsDenormal) fl |= DE;
        r = default;
        return false;
    }

    private static F80 PiTimes(int num, int den, bool neg, Float80.Ctx c, ref ushort fl)
        => Round(neg ? -(X87Math.PiBits(256) * num / den) : X87Math.PiBits(256) * num / den, 256, c, ref fl);

    /// <summary>FPATAN: atan2(y, x) with the SDM's table for zeros and infinities.</summary>
    private static F80 Atan2(F80 y, F80 x, Float80.Ctx c, ref ushort fl)
    {
        if (Screen2(y, x, ref fl, out var r)) return r;
        bool sy = y.Sign, xneg = x.Sign;
        if (y.IsInf && x.IsInf) return PiTimes(xneg ? 3 : 1, 4, sy, c, ref fl);
        if (y.IsInf || (x.IsZero && !y.IsZero)) return PiTimes(1, 2, sy, c, ref fl);
        if (x.IsInf) return xneg ? PiTimes(1, 1, sy, c, ref fl) : F80.Zero(sy);
        if (y.IsZero) return xneg ? PiTimes(1, 1, sy, c, ref fl) : F80.Zero(sy);
        int ey = ExpOf(y), ex = ExpOf(x);
        int w = Guard + 64 + Math.Abs(ey - ex);
        BigInteger Y = BigInteger.Abs(ToFixed(y, w + 64 - ey)) , X = BigInteger.Abs(ToFixed(x, w + 64 - ey));
        // both scaled alike: Y ≈ 2^(w+64); the ratio is what matters
        bool swap = Y > X;
        BigInteger z = swap ? (X << w) / Y : (Y << w) / X;
        BigInteger t = X87Math.AtanW(z, w);
        BigInteger pi = X87Math.PiBits(w);
        if (swap) t = (pi >> 1) - t;
        if (xneg) t = pi - t;
        return Round(sy ? -t : t, w, c, ref fl);
    }

    /// <summary>log2 of a positive finite x as fixed point with w bits.</summary>
    private static BigInteger Log2(F80 x, int w)
    {
        Float80.Unpack(x, out int e, out ulong g);
        BigInteger m = (BigInteger)g << (w - 63);                 // in [1, 2)
        BigInteger ln = X87Math.LnW(m, w);
        return ((BigInteger)e << w) + X87Math.DivLn2(ln);
    }

    /// <summary>FYL2X: y × log2 x (x &lt; 0 → IE; x = ±0 → ZE and ∓∞·sign(y); 0 × ∞ → IE).</summary>
    private static F80 Yl2x(F80 y, F80 x, Float80.Ctx c, ref ushort fl)
    {
        if (Screen2(y, x, ref fl, out var r)) return r;
        if (x.Sign && !x.IsZero) { fl |= IE; return F80.Indefinite; }
        if (x.IsZero)
        {
            if (y.IsZero) { fl |= IE; return F80.Indefinite; }
            fl |= ZE;
            return F80.Inf(!y.Sign);
        }
        if (x.IsInf)
        {
            if (y.IsZero) { fl |= IE; return F80.Indefinite; }
            return F80.Inf(y.Sign);
        }
        Float80.Unpack(x, out int ex, out ulong gx);
        bool one = gx == F80.J;                                   // a power of two: log2 x = ex exactly
        if (y.IsInf)
        {
            if (one && ex == 0) { fl |= IE; return F80.Indefinite; }
            return F80.Inf(y.Sign ^ (ex < 0));
        }
        if (one) return Float80.Mul(y, Float80.FromInteger(ex < 0, (ulong)Math.Abs(ex)), c.WithP(64), ref fl);
        if (y.IsZero) return F80.Zero(y.Sign ^ (ex < 0));
        int w = Guard + 128;
        BigInteger l = Log2(x, w);
        Float80.Unpack(y, out int ey, out ulong gy);
        BigInteger prod = l * gy;                                  // value × 2^(w + 63 − ey)
        bool neg = y.Sign ^ (prod.Sign < 0);
        return Round(neg ? -BigInteger.Abs(prod) : BigInteger.Abs(prod), w + 63 - ey, c, ref fl);
    }

    /// <summary>FYL2XP1: y × log2(x + 1) for |x| &lt; 1 − √2/2 (computed for any x &gt; −1).</summary>
    private static F80 Yl2xp1(F80 y, F80 x, Float80.Ctx c, ref ushort fl)
    {
        if (Screen2(y, x, ref fl, out var r)) return r;
        if (x.IsInf || y.IsInf)
        {
            if (x.IsZero || y.IsZero) { fl |= IE; return F80.Indefinite; }
            if (x.IsInf && x.Sign) { fl |= IE; return F80.Indefinite; }
            return F80.Inf(y.Sign ^ x.Sign);
        }
        if (x.IsZero || y.IsZero) return F80.Zero(y.Sign ^ x.Sign);
        int ex = ExpOf(x);
        if (ex >= 0 && x.Sign) { fl |= IE; return F80.Indefinite; }   // x ≤ −1
        int w = Guard + 128 + Math.Max(0, -ex);
        BigInteger X = ToFixed(x, w), one = BigInteger.One << w, l;
        if (ex >= -1)
        {
            // |x| ≥ 1/2 (outside the SDM's range): atanh(x / (2 + x)) would creep towards 1 (x large, or near −1), its series
            // needing ~2^ex terms. 1 + x is exact in w bits here (x's last bit is ≥ 2^−65); log2 of it by exponent and [1, 2) mantissa.
            BigInteger s1 = one + X;                              // > 0: x ≤ −1 was refused above
            int e = (int)s1.GetBitLength() - 1 - w;
            BigInteger m = e >= 0 ? s1 >> e : s1 << -e;           // in [1, 2), w bits (truncated when e > 0: still w bits of relative precision)
            l = ((BigInteger)e << w) + X87Math.DivLn2(X87Math.LnW(m, w));
        }
        else
        {
            BigInteger ln = 2 * X87Math.AtanhW((X << w) / (2 * one + X), w);
            l = X87Math.DivLn2(ln);                               // ln 2 to 320 bits whatever w is: tiny x make w large
        }
        Float80.Unpack(y, out int ey, out ulong gy);
        BigInteger prod = l * gy;
        bool neg = y.Sign ^ (prod.Sign < 0);
        return Round(neg ? -BigInteger.Abs(prod) : BigInteger.Abs(prod), w + 63 - ey, c, ref fl);
    }

    /// <summary>F2XM1: 2^x − 1 for −1 ≤ x ≤ 1 (the SDM leaves larger |x| undefined; they are computed the same way up to 2^8).</summary>
    private static void F2xm1(CpuCore cpu, ref Insn i)
    {
        var f = Begin(cpu, ref i);
        if (f.IsEmpty(0)) { if (Underflow(f)) SetSt(f, 0, F80.Indefinite); return; }
        F80 x = St(f, 0), r;
        ushort fl = 0;
        var c = Ctx(f);
        if (Screen1(x, ref fl, out var nan)) r = nan;
        else if (x.IsZero) r = x;
        else if (x.IsInf) r = x.Sign ? F80.One.Negate() : x;
        else if (ExpOf(x) >= 8) r = x.Sign ? F80.One.Negate() : F80.Inf(false);
        else if (x.Sig == F80.J && ExpOf(x) == 0) r = x.Sign ? new F80(F80.J, 0xBFFE) : F80.One;   // exact: 2^±1 − 1
        else
        {
            int w = Guard + 64 + Math.Max(0, -ExpOf(x));
            BigInteger t = X87Math.MulLn2(ToFixed(x, w));
            r = Round(X87Math.Expm1W(t, w), w, c, ref fl);
        }
        if (Commit(f, fl)) SetSt(f, 0, r);
    }
}
