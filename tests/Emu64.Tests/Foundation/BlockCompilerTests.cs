using Emu64.Bench;
using Emu64.Cpu;
using Emu64.Tests.Support;

namespace Emu64.Tests.Foundation;

/// <summary>
/// Hot blocks compiled to .NET methods (Cpu/BlockCompiler.cs) must be invisible: the same guest, run with every
/// block compiled at its first run, at the default threshold, and never compiled, gives the same console output,
/// the same retired count, the same boundary events at the same instruction counts, the same registers and the
/// same TLB counters.
/// </summary>
public class BlockCompilerTests
{
    internal sealed record Outcome(string Console, ulong Retired, StopReason Reason, ulong[] Gprs, ulong Rip, ulong Rflags,
        IReadOnlyList<(string Key, ulong Value)> Tlb, List<BoundaryEvent> Events, Machine Machine);

    private static Outcome BootToyKernel(string append, int threshold)
    {
        var k = ToyKernel.Boot(append, maxInstructions: 60_000_000, compileThreshold: threshold);
        return Capture(k.Machine, k.Console, k.Events);
    }

    internal static Outcome Capture(Machine m, string console, List<BoundaryEvent> events)
    {
        var gprs = new ulong[16];
        for (int r = 0; r < 16; r++) gprs[r] = m.Cpu.R[r];
        return new Outcome(console, m.Cpu.Retired, m.StopReason, gprs, m.Cpu.Rip, m.Cpu.Rflags,
            m.Cpu.Mmu.Snapshot().Named().ToList(), events, m);
    }

    internal static void AssertSame(Outcome expected, Outcome actual)
    {
        Assert.Equal(expected.Console, actual.Console);
        Assert.Equal(expected.Reason, actual.Reason);
        Assert.Equal(expected.Retired, actual.Retired);
        Assert.Equal(expected.Rip, actual.Rip);
        Assert.Equal(expected.Rflags, actual.Rflags);
        Assert.Equal(expected.Gprs, actual.Gprs);
        Assert.Equal(expected.Tlb, actual.Tlb);
        Assert.Equal(expected.Events.Count, actual.Events.Count);
        for (int i = 0; i < expected.Events.Count; i++) Assert.Equal(expected.Events[i], actual.Events[i]);
    }

    /// <summary>
    /// Runs <paramref name="reference"/> and <paramref name="m"/> side by side, stopping both after 1, 7, 104, 1000, 20,001 and
    /// 1,000,000 more instructions (inside and across blocks and regions), and asserts after each stop that they agree (registers,
    /// flags, RIP, retired count, TLB counters, boundary events).
    /// </summary>
    internal static void RunInLockstep(Machine reference, Machine m)
    {
        foreach (ulong n in new ulong[] { 1, 7, 104, 1000, 20_001, 1_000_000 })
        {
            reference.Run(n);
            m.Run(n);
            AssertSame(Capture(reference, "", []), Capture(m, "", []));
            Assert.Equal(reference.Events.Recent(), m.Events.Recent());
            Assert.Equal(reference.Events.Cr3NoFlushWrites, m.Events.Cr3NoFlushWrites);
        }
    }

    [Theory]
    [Trait("Category", "Kernel")]
    [InlineData("init=syscalls:300:2000 pti=on nokaslr")]     // user register loops (self-looping blocks) cut by timer interrupts
    [InlineData("init=syscalls:2000 pti=on nopcid")]
    [InlineData("init=touch:96:4:50 pti=on")]
    [InlineData("init=pingpong:40:3")]
    [InlineData("init=hello,mmap:12:40 pti=off")]
    public void The_toy_kernel_runs_identically_compiled_at_once_at_the_default_threshold_and_interpreted(string append)
    {
        var interpreted = BootToyKernel(append, threshold: 0);
        Assert.Equal(StopReason.DebugExit, interpreted.Reason);
        AssertSame(interpreted, BootToyKernel(append, threshold: 1));
        AssertSame(interpreted, BootToyKernel(append, threshold: MachineOptions.DefaultCompileThreshold));
    }

    [Fact]
    public void Compiling_the_toy_kernel_finds_every_handler_by_its_entry_point()
    {
        long unknown = BlockCompiler.UnknownHandlers, compiled = BlockCompiler.Compiled;
        BootToyKernel("init=hello,syscalls:50 pti=on", threshold: 1);
        Assert.True(BlockCompiler.Compiled > compiled);
        Assert.Equal(unknown, BlockCompiler.UnknownHandlers);   // so each is classified (RegisterOnly, NoRip, ...) and native forms apply
    }

    private static Machine LoopMachine(byte[] image, int threshold)
    {
        var m = new Machine(new MachineOptions { Output = Stream.Null, CompileThreshold = threshold });
        m.LoadKernel(image, "bench", Array.Empty<Loader.BootModule>());
        Assert.Equal(StopReason.None, m.Run(1000));
        return m;
    }

    [Theory]
    [InlineData(1UL)]
    [InlineData(2UL)]
    [InlineData(3UL)]
    [InlineData(1000UL)]
    [InlineData(123_457UL)]
    public void A_self_looping_compiled_block_stops_at_exactly_the_requested_instruction(ulong n)
    {
        foreach (var image in new[] { LoopImage.RegisterLoop(), LoopImage.MemoryLoop() })
        {
            var compiled = LoopMachine(image, threshold: 1);
            var interpreted = LoopMachine(image, threshold: 0);
            for (int round = 0; round < 5; round++)
            {
                ulong before = compiled.Cpu.Retired;
                Assert.Equal(StopReason.None, compiled.Run(n));
                Assert.Equal(StopReason.None, interpreted.Run(n));
                Assert.Equal(before + n, compiled.Cpu.Retired);
                AssertSame(Capture(interpreted, "", []), Capture(compiled, "", []));
            }
            Assert.True(compiled.Cache.Decodes > 0);
        }
    }

    [Fact]
    public void A_loop_that_jumps_back_to_its_own_start_is_branched_by_the_compiled_method_itself()
    {
        foreach (var (image, count) in new[] { (LoopImage.RegisterLoop(), 3), (LoopImage.MemoryLoop(), 6) })
        {
            var compiled = LoopMachine(image, threshold: 1);
            var interpreted = LoopMachine(image, threshold: 0);
            Assert.Equal(StopReason.None, compiled.Run(100_000));
            Assert.Equal(StopReason.None, interpreted.Run(100_000));
            AssertSame(Capture(interpreted, "", []), Capture(compiled, "", []));
            // The inner loop: a compiled one-block region ending at JNZ (condition code 5) to its own first byte.
            var loop = Assert.Single(compiled.Cache.Blocks, b => b.Code != null && BlockCompiler.DirectBranch(b, 0, out _, out _, out ulong t) && t == 0);
            Assert.True(BlockCompiler.DirectBranch(loop, 0, out int cc, out ulong fall, out _));
            Assert.Equal(5, cc);
            Assert.Equal((ulong)loop.Insns.Take(loop.Count).Sum(i => i.Length), fall);
            Assert.Equal(count, loop.Count);
        }
    }

    [Theory]
    [InlineData(1UL)]
    [InlineData(37UL)]
    [InlineData(1009UL)]
    public void A_compiled_region_of_several_blocks_stops_at_exactly_the_requested_instruction(ulong n)
    {
        // The system-call loop under PTI: its entry and exit code and the C dispatcher become regions of several blocks
        // (compiled after 10 runs, when the chain has linked them), left at every stop, event and resync.
        Machine Boot(int threshold)
        {
            var m = new Machine(new MachineOptions { Append = "init=syscalls:100000000 pti=on nokaslr", Output = Stream.Null, CompileThreshold = threshold });
            m.LoadKernel(File.ReadAllBytes(ToyKernel.ImagePath), "toykernel.elf", Array.Empty<Loader.BootModule>());
            Assert.Equal(StopReason.None, m.Run(3_000_000));
            return m;
        }
        var compiled = Boot(10);
        var interpreted = Boot(0);
        for (int round = 0; round < 300; round++)
        {
            ulong before = compiled.Cpu.Retired;
            Assert.Equal(StopReason.None, compiled.Run(n));
            Assert.Equal(StopReason.None, interpreted.Run(n));
            Assert.Equal(before + n, compiled.Cpu.Retired);
            if (round % 30 == 0) AssertSame(Capture(interpreted, "", []), Capture(compiled, "", []));
        }
        AssertSame(Capture(interpreted, "", []), Capture(compiled, "", []));
        Assert.Contains(compiled.Cache.Blocks, b => b.Code != null && b.Region!.Length >= 3);
        Assert.Contains(compiled.Cache.Blocks, b => b.Code != null && b.Entry > 0);   // a block compiled inside another's region
        Assert.True(compiled.Events.Syscalls > 20);
    }

    [Fact]
    public void Same_page_fetches_leave_the_itlb_counters_and_lru_stamps_as_separate_lookups_would()
    {
        // The fast cache off: every fetch is the model's own lookup (no armed entry, no pending hits).
        var reference = LoopMachine(LoopImage.MemoryLoop(), threshold: 0);
        reference.Cpu.Mmu.FastCacheDisabled = true;
        var compiled = LoopMachine(LoopImage.MemoryLoop(), threshold: 1);
        foreach (var m in new[] { reference, compiled }) m.Run(250_000);
        AssertSame(Capture(reference, "", []), Capture(compiled, "", []));
        foreach (var level in new[] { Emu64.Mmu.TlbLevel.Itlb, Emu64.Mmu.TlbLevel.Dtlb, Emu64.Mmu.TlbLevel.Stlb })
        {
            var a = reference.Cpu.Mmu.Arrays(level);
            var b = compiled.Cpu.Mmu.Arrays(level);
            for (int k = 0; k < a.Count; k++)
            {
                Assert.Equal(a[k].LruSets.Select(s => s.Clock), b[k].LruSets.Select(s => s.Clock));
                Assert.Equal(a[k].E.Select(e => (e.Vpn, e.Frame, e.Stamp, e.Flags)), b[k].E.Select(e => (e.Vpn, e.Frame, e.Stamp, e.Flags)));
            }
        }
    }
}

/// <summary>The command line's --compile-threshold: output and every counter are the same interpreted and compiled.</summary>
public class CompileThresholdCliTests
{
    private static (string Out, string[] Stats) Boot(string threshold)
    {
        var r = CliRun.Execute(["boot", "--append", "init=hello,syscalls:3000:20 pti=on", "--stats", "--compile-threshold", .. threshold.Split(' ')]);
        Assert.Equal(0, r.Status);   // boot: debug-exit 0 is a clean run of the bundled kernel
        // Host-side lines differ by design: wall time, rate, and how many blocks were compiled.
        var stats = r.ErrLines.Where(l => !l.StartsWith("seconds:") && !l.StartsWith("mips:") && !l.StartsWith("compiled_blocks:") && !l.StartsWith("compiled_instructions:")).ToArray();
        return (r.Out, stats);
    }

    [Fact]
    public void Boot_prints_the_same_console_and_counters_whatever_the_compile_threshold()
    {
        var interpreted = Boot("0");
        Assert.Contains("tlb.dtlb.lookups:", string.Join('\n', interpreted.Stats));
        foreach (var t in new[] { "1", "200", "1 --background-compile", "200 --background-compile" })
        {
            var compiled = Boot(t);
            Assert.Equal(interpreted.Out, compiled.Out);
            Assert.Equal(interpreted.Stats, compiled.Stats);
        }
    }

    [Fact]
    public void Stats_report_the_compiled_blocks_and_none_when_compiling_is_off()
    {
        var off = CliRun.Execute("boot", "--append", "init=hello", "--stats", "--compile-threshold", "0");
        Assert.Contains("compiled_blocks: 0", off.ErrLines);
        var on = CliRun.Execute("boot", "--append", "init=hello", "--stats", "--compile-threshold", "1");
        Assert.Contains(on.ErrLines, l => l.StartsWith("compiled_blocks: ") && ulong.Parse(l["compiled_blocks: ".Length..]) > 100);
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("x")]
    [InlineData("4294967296")]
    public void A_bad_threshold_is_a_usage_error(string value)
    {
        var r = CliRun.Execute("boot", "--compile-threshold", value);
        Assert.Equal(2, r.Status);
        Assert.Contains("--compile-threshold", r.Stderr);
    }
}

/// <summary>Regions compiled on the background thread (MachineOptions.CompileInBackground) and installed at a fixed guest time.</summary>
public class BackgroundCompileTests
{
    private static Machine Boot(int threshold, bool background, string append = "init=syscalls:100000000 pti=on nokaslr")
    {
        // A short schedule: the toy kernel's boot queues hundreds of regions at a threshold of 10.
        var m = new Machine(new MachineOptions
        {
            Append = append, Output = Stream.Null, CompileThreshold = threshold, CompileInBackground = background,
            BackgroundCompileLead = 100_000, BackgroundCompileSpacing = 5_000,
        });
        m.LoadKernel(File.ReadAllBytes(ToyKernel.ImagePath), "toykernel.elf", Array.Empty<Loader.BootModule>());
        return m;
    }

    [Fact]
    public void Code_compiled_in_the_background_leaves_every_counter_as_the_interpreter_does()
    {
        var background = Boot(10, background: true);
        var interpreted = Boot(0, background: false);
        foreach (var n in new[] { 2_000_000UL, 1_000_003UL, 6_000_001UL })
        {
            Assert.Equal(StopReason.None, background.Run(n));
            Assert.Equal(StopReason.None, interpreted.Run(n));
            BlockCompilerTests.AssertSame(BlockCompilerTests.Capture(interpreted, "", []), BlockCompilerTests.Capture(background, "", []));
        }
        Assert.Contains(background.Cache.Blocks, b => b.Code != null && b.Region!.Length >= 3);
        Assert.True(background.Chain.CompiledRetired > 1_000_000, $"compiled code ran ({background.Chain.CompiledRetired} instructions)");
        Assert.Equal(0UL, interpreted.Chain.CompiledRetired);
    }

    [Fact]
    public void Regions_are_installed_at_the_same_instruction_in_every_run_however_fast_the_compiler_thread_is()
    {
        // The second run lets its compiler thread finish before it goes on, the first does not: the same regions are
        // installed at the same guest ticks all the same, so even the host-side counters of compiled code agree.
        var a = Boot(10, background: true);
        var b = Boot(10, background: true);
        foreach (var (n, wait) in new[] { (1_000_000UL, true), (2_000_000UL, true), (5_000_000UL, false) })
        {
            Assert.Equal(StopReason.None, a.Run(n));
            Assert.Equal(StopReason.None, b.Run(n));
            if (wait) Assert.True(b.Compiler!.WaitCompiled(TimeSpan.FromMinutes(2)));
        }
        Assert.Equal(a.Cache.Compiled, b.Cache.Compiled);
        Assert.Equal(a.Chain.CompiledRetired, b.Chain.CompiledRetired);
        Assert.Equal(a.Chain.CompiledEntries, b.Chain.CompiledEntries);
        Assert.True(a.Cache.Compiled > 0);
        BlockCompilerTests.AssertSame(BlockCompilerTests.Capture(a, "", []), BlockCompilerTests.Capture(b, "", []));
    }

    [Fact]
    public void A_halted_cpu_does_not_sleep_until_a_region_is_installed()
    {
        // A kernel that halts between timer ticks: compiling in the background (installed at the first HLT, not at a later
        // install time the CPU would sleep to) ends with the console and every counter of a run that compiles nothing.
        var k = Path.Combine(Path.GetTempPath(), $"emu64-bg-{Guid.NewGuid():N}.bin");
        File.WriteAllBytes(k, Platform.PitPicTests.TickKernel(30, halt: true));
        try
        {
            static string[] Counters(CliRun.Result r) => r.ErrLines.Where(l => !l.StartsWith("seconds:") && !l.StartsWith("mips:") && !l.StartsWith("compiled_")).ToArray();
            var background = CliRun.Execute("run", k, "--stats", "--compile-threshold", "1", "--background-compile");
            var none = CliRun.Execute("run", k, "--stats", "--compile-threshold", "0");
            Assert.Equal(none.Status, background.Status);
            Assert.Equal(none.Out, background.Out);
            Assert.Equal(Counters(none), Counters(background));
            Assert.Contains("interrupts: 30", none.ErrLines);
            Assert.Contains(background.ErrLines, l => l.StartsWith("compiled_blocks: ") && l != "compiled_blocks: 0");
        }
        finally { File.Delete(k); }
    }
}
