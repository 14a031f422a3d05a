namespace Emu64.Tests.Sse;

/// <summary>
/// Operand values for differential cases: IEEE boundary values (±0, ±inf, quiet and signalling NaNs,
/// denormals, smallest normal, largest finite, ±1, powers of two at the integer-conversion limits,
/// halves for rounding ties), integer extremes per lane width, and seeded random values — random
/// floats with a uniform exponent reach overflow, underflow and cancellation.
/// </summary>
public sealed class SseInputs(int seed)
{
    private readonly Random _r = new(seed);

    public enum Lane { F32, F64, Int }

    private static readonly uint[] F32Special =
    [
        0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0xFFA00000, 0x7FBFFFFF,
        0x00000001, 0x807FFFFF, 0x00400000, 0x00800000, 0x80800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x3F800000, 0xBF800000,
        0x4F000000, 0xCF000000, 0x5F000000, 0xDF000000, 0x4EFFFFFF, 0x3F000000, 0x3FC00000, 0x40200000, 0xBFC00000,
        0x00FFFFFF, 0x7F000000, 0x0C000000, 0x4B000000, 0x4B800001, 0x3EFFFFFF, 0xCF000001, 0x5EFFFFFF,
    ];

    private static readonly ulong[] F64Special =
    [
        0, 0x8000000000000000, 0x7FF0000000000000, 0xFFF0000000000000, 0x7FF8000000000000, 0xFFF8000000000000,
        0x7FF0000000000001, 0xFFF4000000000000, 0x7FF7FFFFFFFFFFFF, 0x0000000000000001, 0x800FFFFFFFFFFFFF,
        0x0008000000000000, 0x0010000000000000, 0x8010000000000000, 0x7FEFFFFFFFFFFFFF, 0xFFEFFFFFFFFFFFFF,
        0x3FF0000000000000, 0xBFF0000000000000, 0x41E0000000000000, 0xC1E0000000000000, 0x43E0000000000000,
        0xC3E0000000000000, 0x41DFFFFFFFC00000, 0xC1E0000000200000, 0x3FE0000000000000, 0x3FF8000000000000,
        0x4004000000000000, 0xBFF8000000000000, 0x47EFFFFFE0000000, 0x47EFFFFFF0000000, 0x3810000000000000,
        0x36A0000000000000, 0x380FFFFFF0000000, 0x4330000000000000, 0x43DFFFFFFFFFFFFF, 0x41EFFFFFFFE00000,
    ];

    private static readonly ulong[] IntSpecial =
    [
        0, 1, ulong.MaxValue, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
        0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0x8080808080808080, 0x7F7F7F7F7F7F7F7F, 0x0F, 0x10, 0x1F, 0x20, 0x3F, 0x40,
    ];

    private ulong Bits64() => (ulong)_r.NextInt64() ^ ((ulong)_r.Next() << 62);

    public uint F32()
    {
        switch (_r.Next(4))
        {
            case 0: return F32Special[_r.Next(F32Special.Length)];
            case 1: return (uint)Bits64();
            case 2: return (uint)(_r.Next(2) << 31) | (uint)_r.Next(256) << 23 | (uint)_r.Next(1 << 23);
            default:   // near 1.0 or with few mantissa bits: exact results, ties
                return (uint)(_r.Next(2) << 31) | (uint)(110 + _r.Next(40)) << 23 | ((uint)_r.Next(1 << 6) << 17);
        }
    }

    public ulong F64()
    {
        switch (_r.Next(4))
        {
            case 0: return F64Special[_r.Next(F64Special.Length)];
            case 1: return Bits64();
            case 2: return ((ulong)_r.Next(2) << 63) | ((ulong)_r.Next(2048) << 52) | (Bits64() & 0xFFFFFFFFFFFFF);
            default:
                return ((ulong)_r.Next(2) << 63) | ((ulong)(990 + _r.Next(80)) << 52) | ((ulong)_r.Next(1 << 10) << 42);
        }
    }

    public ulong Int64()
    {
        ulong v = _r.Next(3) switch
        {
            0 => IntSpecial[_r.Next(IntSpecial.Length)],
            1 => (ulong)(long)_r.Next(-300, 300),
            _ => Bits64(),
        };
        return v;
    }

    /// <summary>A 64-bit lane pair of the given kind; Int mixes widths by repeating per-lane extremes.</summary>
    public ulong Half(Lane k) => k switch
    {
        Lane.F32 => F32() | ((ulong)F32() << 32),
        Lane.F64 => F64(),
        _ => _r.Next(3) switch
        {
            0 => Int64(),
            1 => (ulong)(uint)Int64() | ((ulong)(uint)Int64() << 32),
            _ => Repeat(Int64(), _r.Next(3)),
        },
    };

    private ulong Repeat(ulong v, int w) => w switch
    {
        0 => (v & 0xFF) * 0x0101010101010101UL ^ (Bits64() & 0x8100810081008100UL),
        1 => (v & 0xFFFF) * 0x0001000100010001UL ^ (Bits64() & 0x8000000080000000UL),
        _ => v,
    };

    /// <summary>A 128-bit value: half the time of the preferred lane kind, otherwise any kind.</summary>
    public UInt128 X(Lane preferred)
    {
        Lane Pick() => _r.Next(2) == 0 ? preferred : (Lane)_r.Next(3);
        var k = Pick();
        ulong lo = Half(k), hi = _r.Next(4) == 0 ? Half(Pick()) : Half(k);
        return new UInt128(hi, lo);
    }

    /// <summary>MXCSR with every exception masked (native runs must not trap), a random rounding mode,
    /// DAZ and FTZ sometimes, and random sticky flags.</summary>
    public uint Mxcsr()
    {
        uint m = 0x1F80;
        if (_r.Next(2) == 0) return m;
        m |= (uint)_r.Next(4) << 13;
        if (_r.Next(3) == 0) m |= 1 << 6;
        if (_r.Next(3) == 0) m |= 1 << 15;
        if (_r.Next(3) == 0) m |= (uint)_r.Next(64);
        return m;
    }

    public ulong Flags() => 2 | ((ulong)_r.Next() & 0x8D5);
    public int Next(int n) => _r.Next(n);
    public ulong Random64() => Bits64();
}
