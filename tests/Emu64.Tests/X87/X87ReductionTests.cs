using Iced.Intel;
using Emu64.Tests.Sse;

namespace Emu64.Tests.X87;

/// <summary>
/// The argument reduction of FSIN/FCOS/FSINCOS/FPTAN is where the x87 of different vendors differ most, and the
/// host cannot referee it (an AMD host reduces otherwise). The SDM states Intel's (vol. 1 §8.3.8, "Approximation of
/// Pi"): the reduction uses Pi = 0.C90FDAA2_2168C234_C × 2^2, 66 significant bits, so the instructions approximate
/// sin, cos and tan of x − n·Pi/2 taken by quadrant. The expected values below are that function of the exact
/// argument, rounded to nearest, computed with mpmath at 500 bits; the comment beside each gives the true function for
/// contrast. Where published Intel measurements exist they are checked too.
/// </summary>
public sealed class X87ReductionTests
{
    private static byte[] Asm(Action<Assembler> f) => X87Asm.Bytes(f);

    /// <summary>Runs one instruction on ST(0) = x (TOP = 6, round to nearest, all masked) and returns the state.</summary>
    private static X87State Run(Action<Assembler> insn, ulong sig, ushort se)
    {
        var s = new X87State { Fcw = 0x37F, Fsw = 0x3000, Ftw = 0x40, Mxcsr = 0x1F80 };   // TOP = 6, only ST(0) valid
        s.SetSt(0, sig, se);
        Assert.Equal(-1, new X87Emu(Asm(insn)).Run(ref s));
        return s;
    }

    private const ulong LdPi = 0xC90FDAA22168C235;   // FLDPI's value in round to nearest: 0x4000:C90FDAA22168C235

    [Fact]
    public void FSIN_of_FLDPI_s_value_is_its_distance_to_the_SDM_s_66_bit_Pi()
    {
        // x − Pi = (C90FDAA22168C235_0 − C90FDAA22168C234_C)·2^-66 = 2^-64, so FSIN(x) = −sin(2^-64) = −2^-64.
        // The true sin(x) is −5.0165576126683320e-20 (0xBFBE:ECE675D1FC8F8CBB), 8% away.
        var s = Run(a => a.fsin(), LdPi, 0x4000);
        Assert.Equal((0x8000000000000000UL, (ushort)0xBFBF), s.St(0));
        Assert.Equal(0, s.Fsw & 0x400);                                    // C2 = 0: the reduction was complete
    }

    [Fact]
    public void FCOS_of_half_of_FLDPI_s_value_is_minus_its_distance_to_Pi_over_2()
    {
        // x − Pi/2 = 4·2^-67 = 2^-65: FCOS(x) = −sin(2^-65) = −2^-65 (the true cos is 0xBFBD:ECE675D1FC8F8CBB).
        var s = Run(a => a.fcos(), LdPi, 0x3FFF);
        Assert.Equal((0x8000000000000000UL, (ushort)0xBFBE), s.St(0));
    }

    [Fact]
    public void FPTAN_of_FLDPI_s_value_pushes_one_over_the_tangent_of_its_distance_to_Pi()
    {
        var s = Run(a => a.fptan(), LdPi, 0x4000);
        Assert.Equal((0x8000000000000000UL, (ushort)0x3FFF), s.St(0));    // 1.0 pushed
        Assert.Equal((0x8000000000000000UL, (ushort)0x3FBF), s.St(1));    // tan(2^-64) = 2^-64 (true: 0x3FBE:ECE6…)
        Assert.Equal(5, (s.Fsw >> 11) & 7);
    }

    [Fact]
    public void FSINCOS_of_a_large_argument_reduces_by_the_66_bit_Pi_for_both_results()
    {
        // x = 2^62 + 1 (0x403D:8000000000000002): n·Pi/2 differs from n·π/2 by about 0.5 here, so the results are far
        // from the true ones: true sin 0xBFFE:FA71EADBEAD1F984, cos 0x3FFC:D4299770D4C2C9E9.
        var s = Run(a => a.fsincos(), 0x8000000000000002, 0x403D);
        Assert.Equal((0xDA1B3DE101390F4DUL, (ushort)0x3FFC), s.St(0));    // cos
        Assert.Equal((0xFA202BBEB2050B31UL, (ushort)0xBFFE), s.St(1));    // sin
    }

    [Fact]
    public void FSIN_gives_the_value_measured_on_an_Intel_Core_i7()
    {
        // Published measurement (Eric Postpischil, Stack Overflow question 12225668, 2012, Intel Core i7): FSIN of
        // −0x1.448ec3aaa278dp+2 (−5.0712136427263319) is 0xe.fb206c69b0ba402p-4. The argument needs a reduction by
        // two quadrants; here the 66-bit and the exact reduction agree.
        var s = Run(a => a.fsin(), 0xA24761D5513C6800, 0xC001);
        Assert.Equal((0xEFB206C69B0BA402UL, (ushort)0x3FFE), s.St(0));
    }
}
