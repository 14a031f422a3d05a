using Iced.Intel;
using Emu64.Cpu;
using Emu64.Isa;
using Emu64.Tests.Sse;
using Fpu = Emu64.Cpu.X87;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.X87;

/// <summary>
/// x87/MMX rules a differential test cannot reach: #NM and #UD from CR0.EM/TS/MP, #MF delivery of a pending unmasked
/// exception at the next waiting instruction (and not at the no-wait ones), the MMX aliasing of the register file,
/// one save form restored by another, and CPUID.
/// </summary>
public sealed class X87BehaviourTests
{
    private static byte[] Asm(Action<Assembler> f) => X87Asm.Bytes(f);

    private static EmuRunner Runner(Action<Assembler> f) => new(Asm(f));

    /// <summary>
    /// ln(1+x) for a negative x runs its series on |x| (atanh is odd): shifted right, a negative term would stop at −1
    /// and the loop never end. 1 × log2(0.75) = −0.41503749927884381854…, rounded to nearest: −1.A8FF97181… × 2^−2.
    /// </summary>
    [Fact]
    public void FYL2XP1_of_a_negative_x_ends_with_the_correctly_rounded_logarithm()
    {
        var s = new X87State { Fcw = 0x37F, Fsw = 0x3000, Ftw = 0xC0, Mxcsr = 0x1F80 };   // TOP = 6, ST(0) and ST(1) valid
        s.SetSt(0, 0x8000000000000000, 0xBFFD);                                              // x = −0.25
        s.SetSt(1, 0x8000000000000000, 0x3FFF);                                              // y = 1
        Assert.Equal(-1, new X87Emu(Asm(a => a.fyl2xp1())).Run(ref s));
        Assert.Equal((0xD47FCB8C0852F0C1UL, (ushort)0xBFFD), s.St(0));
        Assert.Equal(7, (s.Fsw >> 11) & 7);                                                  // popped: TOP = 7
    }

    /// <summary>SDM vol. 2, FCOMI/FCOMIP/FUCOMI/FUCOMIP, FPU flags affected: "C1 Set to 0" (an AMD host leaves it).</summary>
    [Fact]
    public void FCOMI_and_FUCOMIP_set_C1_to_0_as_the_SDM_says()
    {
        foreach (var insn in new Action<Assembler>[] { a => a.fcomi(st0, st1), a => a.fucomip(st0, st1) })
        {
            var s = new X87State { Fcw = 0x37F, Fsw = 0x3200, Ftw = 0xC0, Mxcsr = 0x1F80 };   // TOP = 6, C1 = 1
            s.SetSt(0, 0x8000000000000000, 0x3FFF);                                              // 1.0
            s.SetSt(1, 0xC000000000000000, 0x3FFF);                                              // 1.5
            Assert.Equal(-1, new X87Emu(Asm(insn)).Run(ref s));
            Assert.Equal(0, s.Fsw & 0x200);
            Assert.Equal(1UL, s.Flags & 0x45);                                                   // ST(0) < ST(1): CF = 1, ZF = PF = 0
        }
    }

    [Fact]
    public void An_x87_instruction_raises_NM_when_CR0_EM_or_CR0_TS_is_set()
    {
        var e = Runner(a => a.fld1());
        e.Cpu.CR0 |= Cr0.Em;
        Assert.Equal(Vec.NM, e.RunRaw(EmuRunner.MemAddr));
        e.Cpu.CR0 &= ~Cr0.Em;
        e.Cpu.CR0 |= Cr0.Ts;
        Assert.Equal(Vec.NM, e.RunRaw(EmuRunner.MemAddr));
        e.Cpu.CR0 &= ~Cr0.Ts;
        Assert.Equal(-1, e.RunRaw(EmuRunner.MemAddr));
    }

    [Fact]
    public void FWAIT_raises_NM_only_when_CR0_MP_and_CR0_TS_are_both_set()
    {
        var e = Runner(a => a.wait());
        e.Cpu.CR0 = (e.Cpu.CR0 & ~Cr0.Mp) | Cr0.Ts;
        Assert.Equal(-1, e.RunRaw(EmuRunner.MemAddr));
        e.Cpu.CR0 |= Cr0.Mp;
        Assert.Equal(Vec.NM, e.RunRaw(EmuRunner.MemAddr));
    }

    [Fact]
    public void An_MMX_instruction_raises_UD_with_CR0_EM_and_NM_with_CR0_TS()
    {
        var e = Runner(a => a.paddb(mm0, mm1));
        e.Cpu.CR0 |= Cr0.Em;
        Assert.Equal(Vec.UD, e.RunRaw(EmuRunner.MemAddr));
        e.Cpu.CR0 = (e.Cpu.CR0 & ~Cr0.Em) | Cr0.Ts;
        Assert.Equal(Vec.NM, e.RunRaw(EmuRunner.MemAddr));
    }

    [Fact]
    public void An_unmasked_exception_is_delivered_as_MF_at_the_next_waiting_instruction_only()
    {
        var div = Runner(a => a.fdiv(st0, st1));
        // every runner first: building one re-initializes the shared machine's FPU
        var fnstsw = Runner(a => a.fnstsw(ax));
        var wait = Runner(a => a.wait());
        var fld1 = Runner(a => a.fld1());
        var paddb = Runner(a => a.paddb(mm0, mm1));
        var fnclex = Runner(a => a.fnclex());
        var f = div.Cpu.Fpu;
        f.Init();
        f.Fcw = 0x37F & ~Fpu.ZE;                        // divide-by-zero unmasked
        f.Top = 6; f.Valid = 0xC0;
        f.Sig[6] = F80.J; f.Se[6] = 0x3FFF;             // ST(0) = 1
        f.Sig[7] = 0; f.Se[7] = 0;                      // ST(1) = 0
        Assert.Equal(-1, div.RunRaw(EmuRunner.MemAddr)); // the faulting instruction itself completes
        Assert.Equal(Fpu.ZE | Fpu.ES | Fpu.B, f.Status & (Fpu.Flags | Fpu.ES | Fpu.B));
        Assert.Equal(0x3FFF, f.Se[6]);                  // unmasked ZE: ST(0) unchanged
        Assert.Equal(-1, fnstsw.RunRaw(EmuRunner.MemAddr));   // no-wait: no #MF
        Assert.Equal(Vec.MF, wait.RunRaw(EmuRunner.MemAddr));
        Assert.Equal(Vec.MF, fld1.RunRaw(EmuRunner.MemAddr));
        Assert.Equal(Vec.MF, paddb.RunRaw(EmuRunner.MemAddr));
        Assert.Equal(-1, fnclex.RunRaw(EmuRunner.MemAddr));
        Assert.Equal(-1, wait.RunRaw(EmuRunner.MemAddr));
    }

    [Fact]
    public void An_MMX_write_sets_the_exponent_to_all_ones_TOP_to_0_and_every_tag_valid_and_EMMS_empties_them()
    {
        var e = Runner(a => a.movq(mm3, rax));
        var emms = Runner(a => a.emms());
        var f = e.Cpu.Fpu;
        f.Init(); f.Top = 5;
        e.Cpu.R[Reg.RAX] = 0x1122334455667788;
        Assert.Equal(-1, e.RunRaw(EmuRunner.MemAddr));
        Assert.Equal(0x1122334455667788UL, f.Sig[3]);
        Assert.Equal(0xFFFF, f.Se[3]);
        Assert.Equal(0, f.Top);
        Assert.Equal(0xFF, f.Valid);
        Assert.Equal(0x80, f.TagWord() & 0xC0);         // R3: exponent all ones → tagged special (10)
        Assert.Equal(-1, emms.RunRaw(EmuRunner.MemAddr));
        Assert.Equal(0, f.Valid);
        Assert.Equal(0xFFFF, f.TagWord());
    }

    [Fact]
    public void State_saved_by_FNSAVE_restores_through_FRSTOR_and_matches_what_FXSAVE_stores()
    {
        var save = Runner(a => a.fnsave(__[rsi]));
        var frstor = Runner(a => a.frstor(__[rsi]));
        var fxsave = Runner(a => a.fxsave64(__[rsi]));
        var fxrstor = Runner(a => a.fxrstor64(__[rsi]));
        var f = save.Cpu.Fpu;
        var m = save.Machine.Memory;
        f.Init();
        f.Fcw = 0x0A7F; f.Top = 3; f.Valid = 0b0001_1000; f.Status = Fpu.C3 | Fpu.C0;
        f.Sig[3] = 0xC90FDAA22168C235; f.Se[3] = 0x4000;   // π in ST(0)
        f.Sig[4] = 0; f.Se[4] = 0x8000;                     // −0 in ST(1)
        Assert.Equal(-1, save.RunRaw(0x30000));
        Assert.Equal(0x037F, f.Fcw);                        // FNSAVE ends with FNINIT
        Assert.Equal(0x0A7FUL, m.Read(0x30000, 2));
        Assert.Equal((ulong)(Fpu.C3 | Fpu.C0 | (3 << 11)), m.Read(0x30004, 2));
        Assert.Equal(0xFD3FUL, m.Read(0x30008, 2));         // R3 valid 00, R4 zero 01, the rest empty 11
        Assert.Equal(0xC90FDAA22168C235UL, m.Read(0x30000 + 28, 8));
        Assert.Equal(-1, frstor.RunRaw(0x30000));
        Assert.Equal(0x0A7F, f.Fcw);
        Assert.Equal(3, f.Top);
        Assert.Equal(0b0001_1000, f.Valid);
        Assert.Equal(0xC90FDAA22168C235UL, f.Sig[3]);
        Assert.Equal(-1, fxsave.RunRaw(0x31000));
        Assert.Equal(0x0A7FUL, m.Read(0x31000, 2));
        Assert.Equal(0x18UL, m.Read(0x31004, 1));          // abridged tag word
        Assert.Equal(0xC90FDAA22168C235UL, m.Read(0x31000 + 32, 8));   // ST(0)
        Assert.Equal(0x4000UL, m.Read(0x31000 + 40, 2));
        f.Init();
        Assert.Equal(-1, fxrstor.RunRaw(0x31000));
        Assert.Equal(3, f.Top);
        Assert.Equal(0x8000, f.Se[4]);
    }

    [Fact]
    public void CPUID_reports_the_FPU_and_MMX_and_isa_coverage_finds_nothing_missing_in_either_group()
    {
        var e = Runner(a => a.nop());
        e.Cpu.Cpuid(1, 0, out _, out _, out _, out uint edx);
        Assert.True((edx & 1) != 0, "CPUID.1:EDX.FPU");
        Assert.True((edx & (1u << 23)) != 0, "CPUID.1:EDX.MMX");
        Assert.DoesNotContain(Coverage.List(Coverage.Group.X87), l => !l.Implemented);
        Assert.DoesNotContain(Coverage.List(Coverage.Group.Mmx), l => !l.Implemented);
    }
}
