using Iced.Intel;
using Emu64.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Sse;

/// <summary>
/// What the SDM says SSE/SSE2 instructions do when they may not run or must not complete, checked in the
/// emulator (the host would deliver these as signals): CR0.EM/CR4.OSFXSR #UD, CR0.TS #NM, unmasked SIMD
/// exceptions (#XM with CR4.OSXMMEXCPT=1, else #UD) with the destination unchanged and MXCSR flags set,
/// #GP(0) for misaligned aligned forms and reserved MXCSR bits, and FXSAVE/FXRSTOR.
/// </summary>
public class SseExceptionTests
{
    private static byte[] Asm(Action<Assembler> emit)
    {
        var a = new Assembler(64);
        emit(a);
        var w = new MemoryStream();
        a.Assemble(new StreamCodeWriter(w), EmuRunner.CodeAddr);
        return w.ToArray();
    }

    private static SseState State(uint mxcsr = 0x1F80)
    {
        var s = new SseState { Mxcsr = mxcsr, Flags = 2 };
        s.SetXmm(1, new UInt128(0x4000000000000000, 0x3FF0000000000000));   // 2.0, 1.0
        s.SetXmm(2, new UInt128(0, 0));
        return s;
    }

    private static readonly byte[] Addpd = Asm(a => a.addpd(xmm1, xmm2));

    [Fact]
    public void SSE_instructions_raise_UD_when_CR0_EM_is_set()
    {
        var e = new EmuRunner(Addpd);
        e.Cpu.CR0 |= Cr0.Em;
        var s = State();
        Assert.Equal(Vec.UD, e.Run(ref s));
    }

    [Fact]
    public void SSE_instructions_raise_UD_when_CR4_OSFXSR_is_clear()
    {
        var e = new EmuRunner(Addpd);
        e.Cpu.CR4 &= ~Cr4.Osfxsr;
        var s = State();
        Assert.Equal(Vec.UD, e.Run(ref s));
    }

    [Fact]
    public void SSE_instructions_raise_NM_when_CR0_TS_is_set_and_UD_outranks_it()
    {
        var e = new EmuRunner(Addpd);
        e.Cpu.CR0 |= Cr0.Ts;
        var s = State();
        Assert.Equal(Vec.NM, e.Run(ref s));
        e.Cpu.CR0 |= Cr0.Em;
        s = State();
        Assert.Equal(Vec.UD, e.Run(ref s));
    }

    [Fact]
    public void WAIT_raises_NM_only_when_CR0_MP_and_TS_are_both_set()
    {
        var e = new EmuRunner(Asm(a => a.wait()));
        var s = State();
        Assert.Equal(-1, e.Run(ref s));
        e.Cpu.CR0 |= Cr0.Ts;
        Assert.Equal(Vec.NM, e.Run(ref s));
        e.Cpu.CR0 &= ~Cr0.Mp;
        Assert.Equal(-1, e.Run(ref s));
    }

    [Fact]
    public void A_masked_divide_by_zero_returns_infinity_and_sets_ZE()
    {
        var e = new EmuRunner(Asm(a => a.divsd(xmm1, xmm2)));
        var s = State();
        Assert.Equal(-1, e.Run(ref s));
        Assert.Equal(0x7FF0000000000000UL, (ulong)s.Xmm(1));
        Assert.Equal(0x1F80u | global::Emu64.Isa.Sse.ZE, s.Mxcsr);
    }

    [Fact]
    public void An_unmasked_divide_by_zero_raises_XM_leaves_the_destination_and_records_ZE()
    {
        var e = new EmuRunner(Asm(a => a.divpd(xmm1, xmm2)));
        var s = State(0x1F80 & ~(1u << 9));   // ZM clear
        var before = s.Xmm(1);
        Assert.Equal(Vec.XM, e.Run(ref s));
        Assert.Equal(before, s.Xmm(1));
        Assert.Equal((0x1F80u & ~(1u << 9)) | global::Emu64.Isa.Sse.ZE, s.Mxcsr);
    }

    [Fact]
    public void An_unmasked_SIMD_exception_raises_UD_when_CR4_OSXMMEXCPT_is_clear()
    {
        var e = new EmuRunner(Asm(a => a.divss(xmm1, xmm2)));
        e.Cpu.CR4 &= ~Cr4.Osxmmexcpt;
        var s = State(0x1F80 & ~(1u << 9));
        s.SetXmm(1, 0x3F800000);   // 1.0f / 0.0f
        Assert.Equal(Vec.UD, e.Run(ref s));
    }

    [Fact]
    public void An_unmasked_precision_exception_faults_after_computing_with_PE_recorded()
    {
        var e = new EmuRunner(Asm(a => a.divsd(xmm1, xmm2)));
        var s = State(0x1F80 & ~(1u << 12));   // PM clear
        s.SetXmm(2, new UInt128(0, 0x4008000000000000));   // 3.0: 1/3 is inexact
        var before = s.Xmm(1);
        Assert.Equal(Vec.XM, e.Run(ref s));
        Assert.Equal(before, s.Xmm(1));
        Assert.Equal((0x1F80u & ~(1u << 12)) | global::Emu64.Isa.Sse.PE, s.Mxcsr);
    }

    [Fact]
    public void An_unmasked_invalid_comparison_raises_XM_and_leaves_RFLAGS()
    {
        var e = new EmuRunner(Asm(a => a.comisd(xmm1, xmm2)));
        var s = State(0x1F80 & ~(1u << 7));   // IM clear
        s.SetXmm(2, new UInt128(0, 0x7FF8000000000000));   // QNaN: COMISD signals on any NaN
        s.Flags = 2 | 0x800;
        Assert.Equal(Vec.XM, e.Run(ref s));
        Assert.Equal(2UL | 0x800, s.Flags & 0x8D7);
        s = State(0x1F80 & ~(1u << 7));
        s.SetXmm(2, new UInt128(0, 0x7FF8000000000000));
        Assert.Equal(-1, new EmuRunner(Asm(a => a.ucomisd(xmm1, xmm2))).Run(ref s));   // UCOMISD: only SNaN signals
        Assert.Equal(2UL | 0x45, s.Flags & 0x8D7);   // unordered: ZF PF CF
    }

    [Fact]
    public void An_unmasked_overflow_faults_with_OE_and_PE_and_a_masked_one_returns_infinity()
    {
        var e = new EmuRunner(Asm(a => a.mulsd(xmm1, xmm2)));
        var s = State(0x1F80 & ~(1u << 10));   // OM clear
        s.SetXmm(1, 0x7FE0000000000000);   // 2^1023
        s.SetXmm(2, 0x4000000000000000);   // 2.0: exact product 2^1024 overflows; exact at full precision
        Assert.Equal(Vec.XM, e.Run(ref s));
        Assert.Equal((UInt128)0x7FE0000000000000, s.Xmm(1));
        Assert.Equal((0x1F80u & ~(1u << 10)) | global::Emu64.Isa.Sse.OE, s.Mxcsr);
        s = State();
        s.SetXmm(1, 0x7FE0000000000000);
        s.SetXmm(2, 0x4000000000000000);
        Assert.Equal(-1, e.Run(ref s));
        Assert.Equal((UInt128)0x7FF0000000000000, s.Xmm(1));
        Assert.Equal(0x1F80u | global::Emu64.Isa.Sse.OE | global::Emu64.Isa.Sse.PE, s.Mxcsr);
    }

    [Fact]
    public void An_exact_tiny_result_signals_underflow_only_when_UE_is_unmasked()
    {
        var e = new EmuRunner(Asm(a => a.mulsd(xmm1, xmm2)));
        var s = State();
        s.SetXmm(1, 0x0010000000000000);   // 2^-1022
        s.SetXmm(2, 0x3FE0000000000000);   // 0.5: 2^-1023 is an exact denormal
        Assert.Equal(-1, e.Run(ref s));
        Assert.Equal((UInt128)0x0008000000000000, s.Xmm(1));
        Assert.Equal(0x1F80u, s.Mxcsr);
        s = State(0x1F80 & ~(1u << 11));   // UM clear
        s.SetXmm(1, 0x0010000000000000);
        s.SetXmm(2, 0x3FE0000000000000);
        Assert.Equal(Vec.XM, e.Run(ref s));
        Assert.Equal((0x1F80u & ~(1u << 11)) | global::Emu64.Isa.Sse.UE, s.Mxcsr);
    }

    [Fact]
    public void A_masked_exception_in_one_lane_and_an_unmasked_one_in_another_fault_with_both_recorded()
    {
        var e = new EmuRunner(Asm(a => a.divps(xmm1, xmm2)));
        var s = State(0x1F80 & ~(1u << 9));                        // ZM clear, IM masked
        s.SetXmm(1, new UInt128(0, 0x3F800000_00000000));          // lanes: 0/0 (IE), 1/0 (ZE)
        s.SetXmm(2, new UInt128(0x3F800000_3F800000, 0));
        Assert.Equal(Vec.XM, e.Run(ref s));
        Assert.Equal((0x1F80u & ~(1u << 9)) | global::Emu64.Isa.Sse.IE | global::Emu64.Isa.Sse.ZE, s.Mxcsr);
    }

    [Fact]
    public void Aligned_forms_raise_GP_on_a_misaligned_operand_and_unaligned_forms_do_not()
    {
        var s = State();
        Assert.Equal(Vec.GP, new EmuRunner(Asm(a => a.movaps(xmm1, __xmmword_ptr[rsi + 4]))).Run(ref s));
        Assert.Equal(Vec.GP, new EmuRunner(Asm(a => a.movdqa(__xmmword_ptr[rsi + 8], xmm1))).Run(ref s));
        Assert.Equal(Vec.GP, new EmuRunner(Asm(a => a.paddd(xmm1, __xmmword_ptr[rsi + 1]))).Run(ref s));
        s.SetMem(0, 0x1111111111111111); s.SetMem(1, 0x2222222222222222); s.SetMem(2, 0x3333333333333333);
        Assert.Equal(-1, new EmuRunner(Asm(a => a.movups(xmm3, __xmmword_ptr[rsi + 4]))).Run(ref s));
        Assert.Equal(new UInt128(0x3333333322222222, 0x2222222211111111), s.Xmm(3));
        Assert.Equal(-1, new EmuRunner(Asm(a => a.addsd(xmm1, __qword_ptr[rsi + 3]))).Run(ref s));
    }

    [Fact]
    public void LDMXCSR_with_a_reserved_bit_raises_GP_and_changes_nothing()
    {
        var s = State();
        s.SetMem(0, 0x10000 | 0x1F80);
        Assert.Equal(Vec.GP, new EmuRunner(Asm(a => a.ldmxcsr(__dword_ptr[rsi]))).Run(ref s));
        Assert.Equal(0x1F80u, s.Mxcsr);
        s.SetMem(0, 0xFFFF);
        Assert.Equal(-1, new EmuRunner(Asm(a => a.ldmxcsr(__dword_ptr[rsi]))).Run(ref s));
        Assert.Equal(0xFFFFu, s.Mxcsr);
    }

    [Fact]
    public void FXSAVE_then_FXRSTOR_round_trips_XMM_MXCSR_and_the_x87_image()
    {
        var save = new EmuRunner(Asm(a => a.fxsave64(__[rsi])));
        var cpu = save.Cpu;
        var m = save.Machine.Memory;
        var s = State(0x1F80 | 0x6000 | 0x21);
        for (int k = 0; k < 16; k++) s.SetXmm(k, new UInt128(0xA0A0A0A0A0A0A0A0 + (ulong)k, (ulong)k * 0x0101010101010101));
        // The area is bigger than the case buffer: run with RSI pointing at a 512-byte area.
        ulong area = 0x30000;
        for (int k = 0; k < 16; k++) cpu.Xmm[k] = s.Xmm(k);
        cpu.Mxcsr = s.Mxcsr;
        cpu.Fpu.Init();
        for (int b = 416; b < 512; b++) m.Write(area + (ulong)b, 1, 0xEE);
        Assert.Equal(-1, RunAt(save, area));
        Assert.Equal(0x037FUL, m.Read(area, 2));
        Assert.Equal((ulong)s.Mxcsr, m.Read(area + 24, 4));
        Assert.Equal(0xFFFFUL, m.Read(area + 28, 4));
        for (int k = 0; k < 16; k++) Assert.Equal((ulong)k * 0x0101010101010101, m.Read(area + 160 + 16 * (ulong)k, 8));
        Assert.Equal(0xEEUL, m.Read(area + 416, 1));   // the available area is not written

        m.Write(area + 0, 2, 0x027F);   // a changed FCW must come back through the x87 image
        var restore = new EmuRunner(Asm(a => a.fxrstor64(__[rsi])));
        for (int k = 0; k < 16; k++) cpu.Xmm[k] = 0;
        cpu.Mxcsr = 0x1F80;
        Assert.Equal(-1, RunAt(restore, area));
        for (int k = 0; k < 16; k++) Assert.Equal(s.Xmm(k), cpu.Xmm[k]);
        Assert.Equal(s.Mxcsr, cpu.Mxcsr);
        Assert.Equal(0x027F, cpu.Fpu.Fcw);
    }

    [Fact]
    public void FXSAVE_raises_NM_when_CR0_TS_or_EM_is_set_and_GP_when_misaligned()
    {
        var e = new EmuRunner(Asm(a => a.fxsave64(__[rsi])));
        e.Cpu.CR0 |= Cr0.Ts;
        Assert.Equal(Vec.NM, RunAt(e, 0x30000));
        e = new EmuRunner(Asm(a => a.fxsave64(__[rsi])));
        e.Cpu.CR0 |= Cr0.Em;
        Assert.Equal(Vec.NM, RunAt(e, 0x30000));
        e = new EmuRunner(Asm(a => a.fxsave64(__[rsi])));
        Assert.Equal(Vec.GP, RunAt(e, 0x30008));
    }

    [Fact]
    public void FXRSTOR_with_a_reserved_MXCSR_bit_raises_GP_and_changes_nothing()
    {
        var e = new EmuRunner(Asm(a => a.fxrstor64(__[rsi])));
        var m = e.Machine.Memory;
        for (int b = 0; b < 512; b += 8) m.Write(0x30000 + (ulong)b, 8, 0x5555555555555555);
        m.Write(0x30000 + 24, 4, 0x00011F80);
        e.Cpu.Xmm[3] = 7;
        Assert.Equal(Vec.GP, RunAt(e, 0x30000));
        Assert.Equal((UInt128)7, e.Cpu.Xmm[3]);
        Assert.Equal(0x037F, e.Cpu.Fpu.Fcw);
    }

    [Fact]
    public void A_16_byte_store_that_runs_into_a_non_present_page_faults_and_writes_nothing()
    {
        var e = new EmuRunner(Asm(a => a.movups(__xmmword_ptr[rsi], xmm1)));
        var m = e.Machine.Memory;
        // 2 MiB pages instead of the 1 GiB one, with 0x200000..0x3FFFFF not present
        for (ulong k = 0; k < 512; k++) m.Write(0x3000 + 8 * k, 8, k == 1 ? 0 : (k << 21) | 0x87);
        m.Write(0x2000, 8, 0x3000 | 7);
        e.Cpu.Mmu.OnCr0Write(Cr0.Pg, 0);
        m.Write(0x1FFFF8, 8, 0x1122334455667788);
        e.Cpu.Xmm[1] = UInt128.MaxValue;
        Assert.Equal(Vec.PF, RunAt(e, 0x1FFFF8));
        Assert.Equal(0x1122334455667788UL, m.Read(0x1FFFF8, 8));
        new EmuRunner(Addpd);   // restores the 1 GiB mapping for later tests on this thread
    }

    /// <summary>Runs the runner's instruction with RSI = <paramref name="rsi"/> and the CPU state as it is.</summary>
    private static int RunAt(EmuRunner e, ulong rsi)
    {
        var c = e.Cpu;
        c.R[Reg.RSI] = rsi;
        var d = Decoder.Create(64, ReadCode(e), EmuRunner.CodeAddr);
        d.Decode(out var instr);
        var insn = new Insn();
        InsnBuilder.Build(instr, ref insn, 64, false);
        global::Emu64.Isa.HandlerTable.Bind(ref insn);
        c.InsnRip = EmuRunner.CodeAddr;
        c.Rip = EmuRunner.CodeAddr + insn.Length;
        try { unsafe { insn.Exec(c, ref insn); } }
        catch (GuestFault f) { return f.Vector; }
        return -1;
    }

    private static byte[] ReadCode(EmuRunner e)
    {
        var b = new byte[15];
        e.Machine.Memory.ReadBytes(EmuRunner.CodeAddr, b);
        return b;
    }
}
