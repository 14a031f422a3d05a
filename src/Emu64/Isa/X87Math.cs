using System.Numerics;

namespace Emu64.Isa;

/// <summary>
/// High-precision reference arithmetic behind the x87 constants and transcendentals: BigInteger fixed point with
/// at least 192 fraction bits beyond the operand's own scale (so tiny arguments keep their relative accuracy),
/// rounded once into 80 bits. The results are within half an ulp before that rounding, i.e. correctly rounded
/// except in astronomically rare near-halfway cases — better than the SDM's "within 1 ulp" for the x87 (vol. 1 §8.3.10).
/// </summary>
public static class X87Math
{
    /// <summary>A positive constant as a 128-bit significand (bit 0 sticky) times 2^Scale.</summary>
    public readonly record struct Fixed(UInt128 M, int Scale);

    private const int W = 320;                 // fraction bits of the constants
    private static readonly BigInteger One = BigInteger.One << W;
    public static readonly BigInteger PiW = ComputePi(W);
    public static readonly BigInteger Ln2W = 2 * Atanh(One / 3, W, 3);
    private static readonly BigInteger Ln10W = 3 * Ln2W + 2 * Atanh(One / 9, W, 9);

    public static readonly Fixed Pi = ToFixed(PiW, W);
    public static readonly Fixed Ln2 = ToFixed(Ln2W, W);
    public static readonly Fixed Log2E = ToFixed((One << W) / Ln2W, W);
    public static readonly Fixed Log2Ten = ToFixed((Ln10W << W) / Ln2W, W);
    public static readonly Fixed Log10Two = ToFixed((Ln2W << W) / Ln10W, W);

    private static Fixed ToFixed(BigInteger v, int w)
    {
        int bits = (int)v.GetBitLength();
        int sh = bits - 126;
        UInt128 m = (UInt128)(v >> sh) | 1;     // irrational: never exact
        return new Fixed(m, sh - w);
    }

    /// <summary>atanh(z) for fixed-point z = zn/2^w given exactly as One/den when den &gt; 0 (constants), by its series.</summary>
    private static BigInteger Atanh(BigInteger z, int w, int den)
    {
        BigInteger sum = 0, p = z, z2 = (z * z) >> w;
        for (int k = 1; !p.IsZero; k += 2) { sum += p / k; p = (p * z2) >> w; }
        return sum;
    }

    private static BigInteger ArctanInv(int n, int w)
    {
        BigInteger one = BigInteger.One << w, sum = 0, p = one / n, n2 = n * n;
        for (int k = 1; !p.IsZero; k += 2) { sum += (k & 2) == 0 ? p / k : -(p / k); p /= n2; }
        return sum;
    }

    private static BigInteger ComputePi(int w) => 16 * ArctanInv(5, w + 8) - 4 * ArctanInv(239, w + 8) >> 8;

    /// <summary>
    /// π with w fraction bits. Beyond the 320-bit constant it comes from one wider value computed once (FPATAN of operands
    /// far apart in scale and the reduction of large FSIN arguments need up to about 33,000 bits): the bits depend only
    /// on w, never on which instruction asked first, so every run gives the same results.
    /// </summary>
    public static BigInteger PiBits(int w) => w <= W ? PiW >> (W - w) : w <= PiWideBits ? PiWide.Value >> (PiWideBits - w) : ComputePi(w);

    private const int PiWideBits = 1 << 16;
    private static readonly Lazy<BigInteger> PiWide = new(() => ComputePi(PiWideBits));

    // ---- fixed-point series (value = v / 2^w) ------------------------------------------------

    public static BigInteger Mul(BigInteger a, BigInteger b, int w) => (a * b) >> w;

    /// <summary>ln(1+t)/… : atanh(z) = z + z³/3 + …, |z| ≤ 1/2.</summary>
    public static BigInteger AtanhW(BigInteger z, int w)
    {
        // atanh is odd. The series runs on |z|: a negative term shifted right rounds toward −∞ and would stop at −1, never 0.
        if (z.Sign < 0) return -AtanhW(-z, w);
        BigInteger sum = 0, p = z, z2 = Mul(z, z, w);
        for (int k = 1; !p.IsZero; k += 2) { sum += p / k; p = Mul(p, z2, w); }
        return sum;
    }

    /// <summary>e^t − 1 for |t| ≤ 1.</summary>
    public static BigInteger Expm1W(BigInteger t, int w)
    {
        BigInteger sum = 0, p = t;
        for (int k = 2; !p.IsZero; k++) { sum += p; p = Mul(p, t, w) / k; }
        return sum;
    }

    /// <summary>sin r and cos r for |r| ≤ 1.</summary>
    public static void SinCosW(BigInteger r, int w, out BigInteger sin, out BigInteger cos)
    {
        BigInteger r2 = Mul(r, r, w);
        sin = 0; cos = 0;
        BigInteger p = r;
        for (int k = 1; !p.IsZero; k += 2) { sin += p; p = -Mul(p, r2, w) / ((k + 1) * (k + 2)); }
        p = BigInteger.One << w;
        for (int k = 0; !p.IsZero; k += 2) { cos += p; p = -Mul(p, r2, w) / ((k + 1) * (k + 2)); }
    }

    /// <summary>
    /// atan z for 0 ≤ z ≤ 1: up to three halvings (atan z = 2 atan(z / (1 + √(1+z²)))) while z &gt; 1/8, then the series.
    /// A small z needs no halving: its series already converges by 6 bits a term, and w may be tens of thousands of bits.
    /// </summary>
    public static BigInteger AtanW(BigInteger z, int w)
    {
        BigInteger one = BigInteger.One << w;
        int doublings = 0;
        for (; doublings < 3 && z > one >> 3; doublings++)
        {
            BigInteger s = Float80.ISqrt((one + Mul(z, z, w)) << w);
            z = (z << w) / (one + s);
        }
        BigInteger z2 = Mul(z, z, w), sum = 0, p = z;
        for (int k = 1; !p.IsZero; k += 2) { sum += (k & 2) == 0 ? p / k : -(p / k); p = Mul(p, z2, w); }
        return sum << doublings;
    }

    /// <summary>ln m for a fixed-point m in [1, 2): 2 atanh((m−1)/(m+1)).</summary>
    public static BigInteger LnW(BigInteger m, int w)
    {
        BigInteger one = BigInteger.One << w;
        return 2 * AtanhW(((m - one) << w) / (m + one), w);
    }

    public static BigInteger Ln2Bits(int w) => w <= W ? Ln2W >> (W - w) : 2 * Atanh((BigInteger.One << w) / 3, w, 3);

    /// <summary>v / ln 2 (v fixed point, any width): a quotient needs ln 2 only to its own relative precision, 320 bits.</summary>
    public static BigInteger DivLn2(BigInteger v) => (v << W) / Ln2W;

    /// <summary>v × ln 2 (v fixed point, any width), to 320 bits of relative precision.</summary>
    public static BigInteger MulLn2(BigInteger v) => (v * Ln2W) >> W;
}
