using Emu64.Cpu;
using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Foundation;

/// <summary>
/// Runs of PUSH r64 / POP r64 in compiled blocks (Isa/StackRuns.cs) where they cannot take the fast path: a run
/// that walks off its page into an unmapped one faults at exactly the instruction the interpreter faults at, and
/// a run whose stores hit code ends the block where the interpreter ends it. Each guest runs interpreted and with
/// every block compiled at its first run; everything that can be seen must be the same.
/// </summary>
public class StackRunTests
{
    private const ulong P = 1, W = 2, Page = GuestKit.PtBase;

    private static Trap Run(Action<Assembler, GuestKit> body, int threshold)
        => Trap.Run(body, setup: m => m.Options.CompileThreshold = threshold);

    private static void AssertSame(Trap interpreted, Trap compiled)
    {
        Assert.Equal(interpreted.Vector, compiled.Vector);
        Assert.Equal(interpreted.Cpu.Retired, compiled.Cpu.Retired);
        Assert.Equal(interpreted.Cpu.CR2, compiled.Cpu.CR2);
        for (int r = 0; r < 16; r++) Assert.Equal(interpreted.Cpu.R[r], compiled.Cpu.R[r]);
        for (ulong a = Page; a < Page + 3 * 4096; a += 8) Assert.Equal(interpreted.Mem(a), compiled.Mem(a));
        Assert.Equal(interpreted.Cpu.Mmu.Snapshot().Named(), compiled.Cpu.Mmu.Snapshot().Named());
    }

    /// <summary>Runs the guest interpreted and compiled, both to the handler of <paramref name="vector"/>; asserts they agree and returns the compiled run.</summary>
    private static Trap Both(Action<Assembler, GuestKit> body, int vector)
    {
        var interpreted = Run(body, threshold: 0).Expect(vector);
        var compiled = Run(body, threshold: 1).Expect(vector);
        AssertSame(interpreted, compiled);
        return compiled;
    }

    private static void LoadRegisters(Assembler a)
    {
        var regs = new[] { rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15 };
        for (int r = 0; r < regs.Length; r++) a.mov(regs[r], 0x1111_0000_0000_0000UL * (ulong)(r + 1) + (ulong)r);
    }

    [Fact]
    public void A_push_run_that_leaves_its_page_faults_at_the_first_push_into_the_unmapped_page()
    {
        Label fourth = default;
        Action<Assembler, GuestKit> body = (a, k) =>
        {
            k.MapPage(1, (Page + 0x1000) | P | W);   // page 0 stays unmapped
            k.SetGate(Vec.PF, k.Handlers[Vec.PF], GuestKit.Attr(ist: 1));   // the fault frame goes to a good stack
            LoadRegisters(a);
            a.mov(rsp, Page + 0x1000 + 24);             // three slots left in page 1
            a.push(rax); a.push(rbx); a.push(rcx);
            fourth = a.CreateLabel(); a.Label(ref fourth);
            a.push(rdx); a.push(rsi); a.push(rdi); a.push(rbp); a.push(r8); a.push(r9);
            a.ud2();
        };
        var compiled = Both(body, Vec.PF);
        var f = compiled.Frame(true);
        Assert.Equal(compiled.At(fourth), f.Rip);
        Assert.Equal(Page + 0x1000, f.Rsp);                  // three pushes done, the fourth not
        Assert.Equal(Page + 0x1000 - 8, compiled.Cpu.CR2);
        Assert.Equal(0x3333_0000_0000_0002UL, compiled.Mem(Page + 0x1000));   // rcx, the third push
        Assert.True(compiled.M.Cache.Compiled > 0);
    }

    [Fact]
    public void A_pop_run_that_leaves_its_page_faults_at_the_first_pop_from_the_unmapped_page()
    {
        Label fourth = default;
        Action<Assembler, GuestKit> body = (a, k) =>
        {
            k.MapPage(1, (Page + 0x1000) | P | W);   // page 2 stays unmapped
            k.SetGate(Vec.PF, k.Handlers[Vec.PF], GuestKit.Attr(ist: 1));
            a.mov(rsp, Page + 0x2000 - 24);
            a.pop(rax); a.pop(rbx); a.pop(rcx);
            fourth = a.CreateLabel(); a.Label(ref fourth);
            a.pop(rdx); a.pop(rsi); a.pop(rdi); a.pop(rbp);
            a.ud2();
        };
        var compiled = Both(body, Vec.PF);
        var f = compiled.Frame(true);
        Assert.Equal(compiled.At(fourth), f.Rip);
        Assert.Equal(Page + 0x2000, f.Rsp);
        Assert.Equal(Page + 0x2000, compiled.Cpu.CR2);
    }

    [Fact]
    public void A_push_run_whose_stores_hit_code_ends_the_block_where_the_interpreter_does()
    {
        Action<Assembler, GuestKit> body = (a, k) =>
        {
            // A one-byte function (RET) in page 1, run once so that its frame holds decoded code.
            k.MapPage(1, (Page + 0x1000) | P | W);
            a.mov(__byte_ptr[Page + 0x1800], 0xC3);
            a.mov(rax, Page + 0x1800);
            a.call(rax);
            LoadRegisters(a);
            a.mov(rsp, Page + 0x1800 + 64);            // the run's stores land on the page with the RET
            for (int n = 0; n < 4; n++) { a.push(rax); a.push(rbx); a.push(rcx); a.push(rdx); }
            a.mov(__qword_ptr[Page + 0x1100], rsp);
            a.ud2();
        };
        var interpreted = Run(body, threshold: 0).Expect(Vec.UD);
        var compiled = Run(body, threshold: 1).Expect(Vec.UD);
        AssertSame(interpreted, compiled);
        Assert.Equal(Page + 0x1800 + 64 - 16 * 8, compiled.Mem(Page + 0x1100));
        Assert.True(compiled.M.Cache.Invalidations >= 1);
        Assert.Equal(interpreted.M.Cache.Invalidations, compiled.M.Cache.Invalidations);
    }

    [Fact]
    public void Push_and_pop_runs_on_one_page_count_one_lookup_and_hit_each()
    {
        Action<Assembler, GuestKit> body = (a, k) =>
        {
            k.MapPage(1, (Page + 0x1000) | P | W);
            LoadRegisters(a);
            a.mov(rsp, Page + 0x1800);
            var loop = a.CreateLabel();
            a.mov(r15, 50UL);
            a.Label(ref loop);
            a.push(rax); a.push(rbx); a.push(rcx); a.push(rdx); a.push(rsi); a.push(rdi);
            a.pop(rdi); a.pop(rsi); a.pop(rdx); a.pop(rcx); a.pop(rbx); a.pop(rax);
            a.dec(r15);
            a.jnz(loop);
            a.ud2();
        };
        Both(body, Vec.UD);
        Assert.True(Emu64.Cpu.BlockCompiler.Runs > 0);
    }

    [Fact]
    public void PUSH_RSP_inside_a_run_stores_RSP_as_it_was_before_that_push()
    {
        // A run of four PUSHes with PUSH RSP third, on one live page (the host-page path, RSP written once at the end),
        // then POPs into other registers: RBX receives the RSP that PUSH RSP saw, i.e. the value after the first two pushes.
        Action<Assembler, GuestKit> body = (a, k) =>
        {
            k.MapPage(1, (Page + 0x1000) | P | W);
            LoadRegisters(a);
            a.mov(rsp, Page + 0x1800);
            var loop = a.CreateLabel();
            a.mov(r15, 20UL);
            a.Label(ref loop);
            a.push(rax); a.push(rcx); a.push(rsp); a.push(rdx);
            a.pop(r8); a.pop(rbx); a.pop(r9); a.pop(r10);
            a.dec(r15);
            a.jnz(loop);
            a.ud2();
        };
        var compiled = Both(body, Vec.UD);
        Assert.Equal(Page + 0x1800 - 16, compiled.Cpu.R[Reg.RBX]);
        Assert.Equal(Page + 0x1800 - 40, compiled.Cpu.R[Reg.RSP]);   // balanced, then the #UD frame (SS, RSP, RFLAGS, CS, RIP)
        Assert.Equal(compiled.Cpu.R[Reg.RDX], compiled.Cpu.R[Reg.R8]);
    }
}
