using Iced.Intel;
using Emu64.Tests.Sse;
using Xunit;
using Xunit.Abstractions;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.X87;

/// <summary>
/// The x87 and MMX against the host CPU: the same bytes run natively and in the emulator from the same FXSAVE image
/// (random and special operands in every register, random tags, every precision and rounding control, exception masks
/// mostly set and sometimes not), and the control word, status word (TOP, C0..C3, every exception flag, SF, ES, B),
/// abridged tag word, all eight registers, the memory operand and RFLAGS must be equal. Only what the SDM defines for
/// every x86-64 processor is compared: condition codes the SDM calls undefined for an instruction are masked out per
/// form. Transcendentals are not compared bit for bit (the SDM makes their last bits and argument reduction
/// model-specific); they have their own accuracy test. EMU64_DIFF_SCALE multiplies the case count.
/// </summary>
[Trait("Category", "Differential")]
public sealed class X87DifferentialTests(ITestOutputHelper output)
{
    private const ushort C0 = 0x100, C1 = 0x200, C2 = 0x400, C3 = 0x4000, AllCc = C0 | C1 | C2 | C3;

    private static byte[] Asm(Action<Assembler> f) => X87Asm.Bytes(f);

    /// <summary>A form: its bytes and the condition codes the SDM leaves undefined for it (not compared).</summary>
    public sealed record Form(string Name, byte[] Bytes, ushort Undefined);

    private static Form F(string n, Action<Assembler> a, ushort undef = C0 | C2 | C3) => new(n, Asm(a), undef);

    public static readonly Form[] Arith =
    [
        F("fadd st0,st1", a => a.fadd(st0, st1)), F("fadd st2,st0", a => a.fadd(st2, st0)), F("faddp st1", a => a.faddp(st1, st0)),
        F("fsub st0,st3", a => a.fsub(st0, st3)), F("fsub st1,st0", a => a.fsub(st1, st0)), F("fsubr st0,st1", a => a.fsubr(st0, st1)),
        F("fsubr st2,st0", a => a.fsubr(st2, st0)), F("fsubp st1", a => a.fsubp(st1, st0)), F("fsubrp st1", a => a.fsubrp(st1, st0)),
        F("fmul st0,st1", a => a.fmul(st0, st1)), F("fmulp st2", a => a.fmulp(st2, st0)),
        F("fdiv st0,st1", a => a.fdiv(st0, st1)), F("fdiv st1,st0", a => a.fdiv(st1, st0)), F("fdivr st0,st1", a => a.fdivr(st0, st1)),
        F("fdivp st1", a => a.fdivp(st1, st0)), F("fdivrp st1", a => a.fdivrp(st1, st0)),
        F("fadd m32", a => a.fadd(__dword_ptr[rsi])), F("fmul m64", a => a.fmul(__qword_ptr[rsi])), F("fsub m32", a => a.fsub(__dword_ptr[rsi])),
        F("fdivr m64", a => a.fdivr(__qword_ptr[rsi])), F("fdiv m32", a => a.fdiv(__dword_ptr[rsi])), F("fsubr m64", a => a.fsubr(__qword_ptr[rsi])),
        F("fiadd m16", a => a.fiadd(__word_ptr[rsi])), F("fimul m32", a => a.fimul(__dword_ptr[rsi])), F("fidiv m32", a => a.fidiv(__dword_ptr[rsi])),
        F("fisubr m16", a => a.fisubr(__word_ptr[rsi])),
        F("fsqrt", a => a.fsqrt()), F("fabs", a => a.fabs()), F("fchs", a => a.fchs()), F("frndint", a => a.frndint()),
        F("fscale", a => a.fscale()), F("fxtract", a => a.fxtract(), AllCc),   // C1 on stack overflow: the SDM says 1, AMD leaves 0; C0 C2 C3 undefined
        F("fprem", a => a.fprem(), 0), F("fprem1", a => a.fprem1(), 0),
    ];

    public static readonly Form[] Moves =
    [
        F("fld m32", a => a.fld(__dword_ptr[rsi])), F("fld m64", a => a.fld(__qword_ptr[rsi])), F("fld m80", a => a.fld(__tword_ptr[rsi])),
        F("fld st3", a => a.fld(st3)), F("fild m16", a => a.fild(__word_ptr[rsi])), F("fild m32", a => a.fild(__dword_ptr[rsi])),
        F("fild m64", a => a.fild(__qword_ptr[rsi])), F("fbld", a => a.fbld(__tword_ptr[rsi])),
        F("fst m32", a => a.fst(__dword_ptr[rsi])), F("fstp m64", a => a.fstp(__qword_ptr[rsi])), F("fstp m80", a => a.fstp(__tword_ptr[rsi])),
        F("fst st2", a => a.fst(st2)), F("fstp st1", a => a.fstp(st1)),
        F("fist m16", a => a.fist(__word_ptr[rsi])), F("fistp m32", a => a.fistp(__dword_ptr[rsi])), F("fistp m64", a => a.fistp(__qword_ptr[rsi])),
        F("fbstp", a => a.fbstp(__tword_ptr[rsi])),
        F("fxch st1", a => a.fxch(st0, st1)), F("fcmovb", a => a.fcmovb(st0, st1)), F("fcmovne", a => a.fcmovne(st0, st2)), F("fcmovnbe", a => a.fcmovnbe(st0, st1)),
        F("fcmovu", a => a.fcmovu(st0, st1)),
        F("ffree st1", a => a.ffree(st1), AllCc), F("fincstp", a => a.fincstp()), F("fdecstp", a => a.fdecstp()),
        F("fld1", a => a.fld1()), F("fldz", a => a.fldz()), F("fldpi", a => a.fldpi()), F("fldl2t", a => a.fldl2t()),
        F("fldl2e", a => a.fldl2e()), F("fldlg2", a => a.fldlg2()), F("fldln2", a => a.fldln2()),
    ];

    public static readonly Form[] Compares =
    [
        F("fcom st1", a => a.fcom(st0, st1), 0), F("fcomp m32", a => a.fcomp(__dword_ptr[rsi]), 0), F("fcompp", a => a.fcompp(), 0),
        F("fucom st2", a => a.fucom(st0, st2), 0), F("fucompp", a => a.fucompp(), 0), F("ficom m16", a => a.ficom(__word_ptr[rsi]), 0),
        F("fcom m64", a => a.fcom(__qword_ptr[rsi]), 0),
        F("ftst", a => a.ftst(), 0), F("fxam", a => a.fxam(), 0),
        // FCOMI's C1: the SDM sets it to 0 (Intel, Emu64), AMD leaves it as it was; X87BehaviourTests checks the SDM's value
        F("fcomi st1", a => a.fcomi(st0, st1), AllCc), F("fucomip st1", a => a.fucomip(st0, st1), AllCc),
    ];

    public static readonly Form[] Control =
    [
        F("fninit", a => a.fninit(), 0), F("fnclex", a => a.fnclex(), 0), F("fnstsw ax", a => a.fnstsw(ax), 0),
        F("fnstcw", a => a.fnstcw(__word_ptr[rsi]), 0), F("fldcw", a => a.fldcw(__word_ptr[rsi]), 0),
        F("fnstenv", a => a.fnstenv(__[rsi]), 0), F("fldenv", a => a.fldenv(__[rsi]), 0),
        F("fnop", a => a.fnop(), 0),
    ];

    public static readonly Form[] Mmx =
    [
        F("paddb", a => a.paddb(mm0, mm1), 0), F("paddsw", a => a.paddsw(mm2, mm3), 0), F("psubusb", a => a.psubusb(mm0, __qword_ptr[rsi]), 0),
        F("pmaddwd", a => a.pmaddwd(mm1, mm2), 0), F("pmulhw", a => a.pmulhw(mm0, mm1), 0), F("pcmpgtd", a => a.pcmpgtd(mm0, mm1), 0),
        F("packsswb", a => a.packsswb(mm0, mm1), 0), F("packuswb", a => a.packuswb(mm3, mm4), 0), F("packssdw", a => a.packssdw(mm0, mm1), 0),
        F("punpcklbw", a => a.punpcklbw(mm0, mm1), 0), F("punpckhwd", a => a.punpckhwd(mm0, mm1), 0), F("punpckhdq", a => a.punpckhdq(mm0, __qword_ptr[rsi]), 0),
        F("punpckldq m32", a => a.punpckldq(mm0, __dword_ptr[rsi]), 0),
        F("psllw mm", a => a.psllw(mm0, mm1), 0), F("psrad imm", a => a.psrad(mm2, 5), 0), F("psrlq imm", a => a.psrlq(mm1, 33), 0),
        F("pand", a => a.pand(mm0, mm1), 0), F("pxor", a => a.pxor(mm5, mm6), 0),
        F("movq mm,mm", a => a.movq(mm0, mm7), 0), F("movq m,mm", a => a.movq(__qword_ptr[rsi], mm3), 0), F("movd mm,m32", a => a.movd(mm1, __dword_ptr[rsi]), 0),
        F("movd eax,mm", a => a.movd(eax, mm2), 0), F("emms", a => a.emms(), 0),
        F("pshufw", a => a.pshufw(mm0, mm1, 0x1B), 0), F("pinsrw", a => a.pinsrw(mm0, __word_ptr[rsi], 2), 0), F("pextrw", a => a.pextrw(eax, mm1, 3), 0),
        F("pmovmskb", a => a.pmovmskb(eax, mm1), 0), F("pavgb", a => a.pavgb(mm0, mm1), 0), F("psadbw", a => a.psadbw(mm0, mm1), 0),
        F("pminsw", a => a.pminsw(mm0, mm1), 0), F("pmuludq", a => a.pmuludq(mm0, mm1), 0), F("paddq", a => a.paddq(mm0, mm1), 0),
    ];

    public static IEnumerable<object[]> Names(string set) => (set switch
    {
        "arith" => Arith, "moves" => Moves, "compares" => Compares, "control" => Control, _ => Mmx,
    }).Select(f => new object[] { f.Name });

    internal static Form Find(string name) => Arith.Concat(Moves).Concat(Compares).Concat(Control).Concat(Mmx).First(f => f.Name == name);

    [Theory]
    [MemberData(nameof(Names), "arith")]
    public void Arithmetic_matches_the_host(string form) => Check(Find(form));

    [Theory]
    [MemberData(nameof(Names), "moves")]
    public void Loads_stores_and_register_moves_match_the_host(string form) => Check(Find(form));

    [Theory]
    [MemberData(nameof(Names), "compares")]
    public void Comparisons_match_the_host(string form) => Check(Find(form));

    [Theory]
    [MemberData(nameof(Names), "control")]
    public void Control_instructions_match_the_host(string form) => Check(Find(form));

    [Theory]
    [MemberData(nameof(Names), "mmx")]
    public void MMX_instructions_match_the_host(string form) => Check(Find(form));

    // ---- operands --------------------------------------------------------------------------

    /// <summary>80-bit operands: zeros, denormals, pseudo-denormals, unnormals, infinities, pseudo-infinities, QNaN/SNaN, pseudo-NaNs, limits, integers, randoms.</summary>
    private static (ulong, ushort) Special(Random r)
    {
        ushort s = (ushort)(r.Next(2) << 15);
        ulong frac = (ulong)r.NextInt64() & 0x7FFFFFFFFFFFFFFF;
        return r.Next(22) switch
        {
            0 => (0, s),
            1 => (frac >> r.Next(64), s),                                   // denormal
            2 => (0x8000000000000000 | frac, s),                            // pseudo-denormal
            3 => (frac, (ushort)(s | (1 + r.Next(0x7FFE)))),                // unnormal
            4 => (0x8000000000000000, (ushort)(s | 0x7FFF)),                // infinity
            5 => (0, (ushort)(s | 0x7FFF)),                                 // pseudo-infinity
            6 => (0xC000000000000000 | (frac >> 2), (ushort)(s | 0x7FFF)),  // QNaN
            7 => (0x8000000000000000 | (frac >> 2) | 1, (ushort)(s | 0x7FFF)), // SNaN
            8 => (frac | 1, (ushort)(s | 0x7FFF)),                          // pseudo-NaN
            9 => (0xFFFFFFFFFFFFFFFF, (ushort)(s | 0x7FFE)),                // largest
            10 => (0x8000000000000000 | frac, (ushort)(s | (1 + r.Next(80)))),     // near underflow
            11 => (0x8000000000000000 | frac, (ushort)(s | (0x7FFE - r.Next(80)))), // near overflow
            12 => (0xC000000000000000, 0xFFFF),                             // indefinite
            13 => Int(r, s),
            14 => Int(r, s),
            15 => (0x8000000000000000 | (frac & ~((1UL << r.Next(64)) - 1)) | (r.Next(2) == 0 ? 0UL : 1UL << r.Next(11)), (ushort)(s | (0x3FFF + r.Next(-70, 70)))), // rounding boundaries
            16 => (0x8000000000000000, (ushort)(s | 0x3FFF)),               // ±1
            _ => (0x8000000000000000 | frac, (ushort)(s | (0x3FFF + r.Next(-200, 200)))),
        };
    }

    private static (ulong, ushort) Int(Random r, ushort s)
    {
        ulong v = ((ulong)r.NextInt64() >> r.Next(0, 63)) | 1;
        int lz = System.Numerics.BitOperations.LeadingZeroCount(v);
        return (v << lz, (ushort)(s | (0x3FFF + 63 - lz)));
    }

    private static ulong MemValue(Random r)
    {
        ulong x = (ulong)r.NextInt64() ^ ((ulong)r.NextInt64() << 1);
        return r.Next(10) switch
        {
            0 => x & 0x807FFFFF807FFFFF,                 // binary32 denormals / small
            1 => x | 0x7F8000007FF00000,                 // binary32/64 NaN or inf
            2 => x & 0x800FFFFFFFFFFFFF,                 // binary64 denormal
            3 => x & 0x8000000000000000,                 // zeros
            4 => (ulong)BitConverter.DoubleToInt64Bits(r.NextDouble() * 1000 - 500),
            5 => (ulong)(uint)BitConverter.SingleToInt32Bits((float)(r.NextDouble() * 100 - 50)) | ((ulong)r.Next(100) << 32),
            6 => Bcd(r),
            _ => x,
        };
    }

    private static ulong Bcd(Random r)
    {
        ulong v = 0;
        for (int d = 0; d < 16; d++) v |= (ulong)r.Next(10) << (4 * d);
        return v;
    }

    internal static X87State Make(Random r, Form f)
    {
        var s = new X87State();
        ushort pc = (ushort)(new[] { 0, 2, 3 }[r.Next(3)] << 8), rc = (ushort)(r.Next(4) << 10);
        ushort masks = (ushort)(r.Next(4) == 0 ? r.Next(64) : 0x3F);
        s.Fcw = (ushort)(0x40 | pc | rc | masks);
        s.Fsw = (ushort)((r.Next(8) << 11) | (r.Next(16) is var cc ? ((cc & 7) << 8) | ((cc & 8) << 11) : 0));
        s.Ftw = (byte)(r.Next(4) == 0 ? r.Next(256) : 0xFF & ~(1 << r.Next(8)) | ((1 << ((s.Fsw >> 11) & 7)) | (1 << (((s.Fsw >> 11) + 1) & 7))));
        if (r.Next(6) == 0) s.Ftw = 0xFF;
        s.Mxcsr = 0x1F80;
        for (int i = 0; i < 8; i++) { var (sig, se) = Special(r); s.SetSt(i, sig, se); }
        for (int k = 0; k < 8; k++) s.SetMem(k, MemValue(r));
        if (f.Name == "fldcw") s.SetMem(0, (ulong)(0x40 | (r.Next(4) << 8) | (r.Next(4) << 10) | 0x3F));
        if (f.Name == "fldenv") { s.SetMem(0, 0xFFFF037FUL | ((ulong)(r.Next(0x10000) & 0x7F7F) << 32)); s.SetMem(1, 0xFFFF0000UL | (uint)r.Next(0x10000)); }
        s.Flags = (ulong)(r.Next(2) | (r.Next(2) << 2) | (r.Next(2) << 6)) | 2;
        return s;
    }

    private void Check(Form f)
    {
        if (!NativeRunner.Supported) { output.WriteLine("SKIPPED: needs an x86-64 Linux host"); return; }
        int scale = int.TryParse(Environment.GetEnvironmentVariable("EMU64_DIFF_SCALE"), out int sc) ? sc : 1;
        int seed = int.TryParse(Environment.GetEnvironmentVariable("EMU64_DIFF_SEED"), out int sd) ? sd : 17;
        var r = new Random(seed + f.Name.Sum(ch => ch));
        var host = new X87Native(f.Bytes);
        var emu = new X87Emu(f.Bytes);
        var failures = new List<string>();
        int n = 1000 * scale;
        for (int k = 0; k < n && failures.Count < 5; k++)
        {
            var input = Make(r, f);
            var h = input; host.Run(ref h);
            var e = input; int fault = emu.Run(ref e);
            string? diff = fault >= 0 ? $"emulator fault {fault}" : Diff(h, e, f);
            if (diff != null) failures.Add($"{f.Name}: {diff}\n  in:   {Show(input)}\n  host: {Show(h)}\n  emu:  {Show(e)}");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    private static string? Diff(X87State h, X87State e, Form f)
    {
        if (h.Fcw != e.Fcw) return $"FCW {h.Fcw:X4} vs {e.Fcw:X4}";
        ushort mask = (ushort)~f.Undefined;
        if ((h.Fsw & mask) != (e.Fsw & mask)) return $"FSW {h.Fsw:X4} vs {e.Fsw:X4}";
        if (h.Ftw != e.Ftw) return $"FTW {h.Ftw:X2} vs {e.Ftw:X2}";
        for (int i = 0; i < 8; i++) if (h.St(i) != e.St(i)) return $"R{i} {h.St(i)} vs {e.St(i)}";
        for (int k = 0; k < 8; k++) if (h.Mem(k) != e.Mem(k)) return $"mem[{k}] {h.Mem(k):X16} vs {e.Mem(k):X16}";
        if ((h.Flags & 0x8D5) != (e.Flags & 0x8D5)) return $"RFLAGS {h.Flags:X} vs {e.Flags:X}";
        return null;
    }

    private static string Show(X87State s)
    {
        var sb = new System.Text.StringBuilder($"FCW {s.Fcw:X4} FSW {s.Fsw:X4} FTW {s.Ftw:X2} FL {s.Flags:X3} |");
        for (int i = 0; i < 8; i++) sb.Append($" {s.St(i).Se:X4}:{s.St(i).Sig:X16}");
        sb.Append($" | mem {s.Mem(0):X16} {s.Mem(1):X16}");
        return sb.ToString();
    }
}
