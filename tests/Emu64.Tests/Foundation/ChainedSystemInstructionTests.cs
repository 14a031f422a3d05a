using Emu64.Bench;
using Emu64.Cpu;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Foundation;

/// <summary>
/// IN, MOV to CR8 and WRMSR IA32_TSC_DEADLINE end their block but let the run loop's chain go on to the next block
/// (DecodeCache.ContinuesChain, issue #19), and CPUID runs without per-instruction bookkeeping in compiled code: the run
/// must stay what it was when each of them went back to the outer loop. Interrupts that they let through are taken right
/// after them, and every counter is the same interpreted, compiled at the first run and compiled at the default threshold.
/// </summary>
public class ChainedSystemInstructionTests
{
    private static readonly int[] Thresholds = [0, 1, MachineOptions.DefaultCompileThreshold];

    private static Machine OperationMachine(byte[] image, int threshold)
    {
        var m = new Machine(new MachineOptions { Output = Stream.Null, CompileThreshold = threshold });
        m.LoadKernel(image, "bench", Array.Empty<Loader.BootModule>());
        Assert.Equal(StopReason.None, m.Run(1000));
        return m;
    }

    public static TheoryData<string> Operations() => new() { "cpuid", "inpm", "cr8r", "cr8w", "pause", "tscdl" };

    private static byte[] Image(string op) => op switch
    {
        "cpuid" => OperationImages.Cpuid(),
        "inpm" => OperationImages.InPmTimer(),
        "cr8r" => OperationImages.Cr8Read(),
        "cr8w" => OperationImages.Cr8Write(),
        "pause" => OperationImages.Pause(),
        _ => OperationImages.TscDeadline(),
    };

    [Theory, MemberData(nameof(Operations))]
    public void An_operation_loop_runs_identically_interpreted_and_compiled_and_stops_at_exactly_the_requested_instruction(string op)
    {
        var interpreted = OperationMachine(Image(op), threshold: 0);
        var compiled = OperationMachine(Image(op), threshold: 1);
        foreach (ulong n in new ulong[] { 1, 2, 3, 1000, 123_457, 1 })
        {
            ulong before = compiled.Cpu.Retired;
            Assert.Equal(StopReason.None, compiled.Run(n));
            Assert.Equal(StopReason.None, interpreted.Run(n));
            Assert.Equal(before + n, compiled.Cpu.Retired);
            BlockCompilerTests.AssertSame(BlockCompilerTests.Capture(interpreted, "", []), BlockCompilerTests.Capture(compiled, "", []));
            Assert.Equal(interpreted.Now, compiled.Now);
        }
        Assert.True(compiled.Chain.CompiledRetired > 100_000, $"{op}: the loop ran compiled ({compiled.Chain.CompiledRetired} instructions)");
        Assert.Equal(0UL, compiled.Stats.Faults);
        Assert.Equal(0UL, compiled.Stats.UnimplementedTotal);
    }

    [Theory, MemberData(nameof(Operations))]
    public void An_operation_loop_allocates_nothing_per_operation(string op)
    {
        foreach (int threshold in new[] { 0, 1 })
        {
            var m = OperationMachine(Image(op), threshold);
            m.Run(100_000);   // compiled by now (threshold 1), the JIT warm
            long before = GC.GetAllocatedBytesForCurrentThread();
            m.Run(1_000_000);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < 32 * 1024, $"{op}, threshold {threshold}: {allocated} bytes allocated while running 1,000,000 guest instructions");
        }
    }

    [Theory]
    [InlineData("inpm", Mnemonic.In)]
    [InlineData("cr8w", Mnemonic.Mov)]
    [InlineData("tscdl", Mnemonic.Wrmsr)]
    public void A_block_ending_at_IN_MOV_to_CR8_or_WRMSR_TSC_deadline_links_to_its_successor_in_the_chain(string op, Mnemonic last)
    {
        var m = OperationMachine(Image(op), threshold: 0);
        m.Run(30_000);
        // The chain links a block to the next only when it goes on without returning to the outer loop.
        var block = Assert.Single(m.Cache.Blocks, b => b.Count == 1 && b.Insns[0].I.Mnemonic == last);   // the loop's operation, a block of its own
        Assert.True(block.Chainable);
        Assert.NotNull(block.Next0);
    }

    /// <summary>
    /// x2APIC on, TPR 15, IF=1 and a self-IPI of vector 0x40 (priority class 4) pending behind the task priority; then a loop
    /// whose block ends at MOV CR8, RBX with RBX = 15 for 99 iterations and 0 on the 100th: that write lets the interrupt through.
    /// </summary>
    private static (Trap T, ulong After) UnmaskByCr8(int threshold)
    {
        Label after = default;
        var t = Trap.Run((a, k) =>
        {
            k.SetGate(0x40, k.Handlers[0x40]);
            a.mov(ecx, 0x1B); a.rdmsr(); a.or(eax, 0xC00); a.wrmsr();                   // IA32_APIC_BASE: EN and EXTD (x2APIC)
            a.mov(ecx, 0x80F); a.mov(eax, 0x1FF); a.xor(edx, edx); a.wrmsr();           // SVR: software enabled
            a.mov(eax, 15); a.mov(cr8, rax);
            a.mov(ecx, 0x83F); a.mov(eax, 0x40); a.xor(edx, edx); a.wrmsr();            // SELF_IPI, vector 0x40: held by the TPR
            a.sti();
            a.xor(r9d, r9d);
            var loop = a.CreateLabel(); a.Label(ref loop);
            a.inc(r9);
            a.mov(ebx, 15); a.xor(eax, eax);
            a.cmp(r9, 100);
            a.cmovae(ebx, eax);
            a.mov(cr8, rbx);
            after = a.CreateLabel(); a.Label(ref after);
            a.cmp(r9, 200);
            a.jb(loop);
            a.ud2();
        }, setup: m => m.Options.CompileThreshold = threshold);
        return (t, t.At(after));
    }

    [Fact]
    public void An_interrupt_that_MOV_to_CR8_unmasks_is_taken_right_after_it_interpreted_and_compiled()
    {
        ulong? retired = null;
        foreach (int threshold in Thresholds)
        {
            var (t, after) = UnmaskByCr8(threshold);
            t.Expect(0x40);
            Assert.Equal(after, t.Frame(false).Rip);
            Assert.Equal(100UL, t.Cpu.R[Reg.R9]);
            Assert.Equal(0UL, t.Cpu.CR8);
            retired ??= t.Cpu.Retired;
            Assert.Equal(retired, t.Cpu.Retired);
        }
    }

    /// <summary>
    /// x2APIC on, the LVT timer in TSC-deadline mode with vector 0x40, IF=1; a loop writes IA32_TSC_DEADLINE = 2^64-1 (far
    /// away) 49 times and then 1 (already passed): the timer fires at once, and the interrupt comes right after that WRMSR.
    /// </summary>
    [Fact]
    public void A_TSC_deadline_already_passed_interrupts_right_after_its_WRMSR_interpreted_and_compiled()
    {
        ulong? retired = null;
        foreach (int threshold in Thresholds)
        {
            Label after = default;
            var t = Trap.Run((a, k) =>
            {
                k.SetGate(0x40, k.Handlers[0x40]);
                a.mov(ecx, 0x1B); a.rdmsr(); a.or(eax, 0xC00); a.wrmsr();
                a.mov(ecx, 0x80F); a.mov(eax, 0x1FF); a.xor(edx, edx); a.wrmsr();
                a.mov(ecx, 0x832); a.mov(eax, 0x40040); a.wrmsr();                     // LVT timer: TSC-deadline mode, vector 0x40
                a.sti();
                a.xor(r9d, r9d);
                var loop = a.CreateLabel(); a.Label(ref loop);
                a.inc(r9);
                a.mov(eax, 0xFFFFFFFF); a.mov(edx, eax);
                a.mov(esi, 1); a.xor(edi, edi);
                a.cmp(r9, 50);
                a.cmovae(eax, esi); a.cmovae(edx, edi);
                a.mov(ecx, 0x6E0);
                a.wrmsr();
                after = a.CreateLabel(); a.Label(ref after);
                a.cmp(r9, 200);
                a.jb(loop);
                a.ud2();
            }, setup: m => m.Options.CompileThreshold = threshold);
            t.Expect(0x40);
            Assert.Equal(t.At(after), t.Frame(false).Rip);
            Assert.Equal(50UL, t.Cpu.R[Reg.R9]);
            retired ??= t.Cpu.Retired;
            Assert.Equal(retired, t.Cpu.Retired);
        }
    }

    [Fact]
    public void CPUID_gives_the_same_leaves_as_before_its_fast_path()
    {
        var m = new Machine(new MachineOptions { Output = Stream.Null });
        var cpu = m.Cpu;
        cpu.Cpuid(0, 0, out uint a, out uint b, out uint c, out uint d);
        Assert.Equal((7u, 0x756E6547u, 0x6C65746Eu, 0x49656E69u), (a, b, c, d));   // max leaf 7, "GenuineIntel" in EBX, EDX, ECX
        var brand = new byte[48];
        for (uint leaf = 0x80000002; leaf <= 0x80000004; leaf++)
        {
            cpu.Cpuid(leaf, 0, out a, out b, out c, out d);
            int o = (int)(leaf - 0x80000002) * 16;
            BitConverter.GetBytes(a).CopyTo(brand, o); BitConverter.GetBytes(b).CopyTo(brand, o + 4);
            BitConverter.GetBytes(c).CopyTo(brand, o + 8); BitConverter.GetBytes(d).CopyTo(brand, o + 12);
        }
        Assert.Equal("Emu64 virtual x86-64 CPU" + new string(' ', 23) + "\0", System.Text.Encoding.ASCII.GetString(brand));
        cpu.Cpuid(7, 1, out a, out b, out c, out d);
        Assert.Equal((0u, 0u, 0u, 0u), (a, b, c, d));                                 // sub-leaf 1 of leaf 7: none
        cpu.Cpuid(0x80000009, 0, out a, out b, out c, out d);
        Assert.Equal((0u, 0u, 0u, 0u), (a, b, c, d));
        cpu.Cpuid(1, 0, out a, out _, out _, out _);
        Assert.Equal(0x000506E3u, a);
        cpu.Cpuid(0x80000000, 0, out a, out _, out _, out _);
        Assert.Equal(0x80000008u, a);
    }

    private sealed class FakeTimer(ulong at) : ITimedDevice
    {
        public ulong NextEventAt { get; set; } = at;
        public void OnTime(ulong now) { }
    }

    [Fact]
    public void Rescheduling_one_timer_gives_the_machine_the_same_next_event_as_a_full_recompute()
    {
        var m = new Machine(new MachineOptions { Output = Stream.Null });
        var a = new FakeTimer(5_000_000_000); var b = new FakeTimer(7_000_000_000);
        m.AddTimedDevice(a); m.AddTimedDevice(b);
        var rng = new Random(19);
        for (int i = 0; i < 2000; i++)
        {
            var t = rng.Next(2) == 0 ? a : b;
            ulong old = t.NextEventAt;
            t.NextEventAt = rng.Next(8) == 0 ? ulong.MaxValue : 4_000_000_000UL + (ulong)rng.Next(4_000_000);
            m.Reschedule(old, t.NextEventAt);
            ulong incremental = m.NextEventAt;
            m.RecomputeNextEvent();
            Assert.Equal(m.NextEventAt, incremental);
        }
    }
}
