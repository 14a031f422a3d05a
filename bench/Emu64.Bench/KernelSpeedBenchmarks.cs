using BenchmarkDotNet.Attributes;

namespace Emu64.Bench;

/// <summary>
/// Guest instructions per host second in the toy kernel's <c>init=syscalls:N</c> loop (getpid in a loop) with
/// <c>pti=on</c> and PCID: every system call goes through the entry trampoline and two CR3 writes, and the TLB
/// model refills what the switches leave behind. Setup boots the kernel into the loop (N is large enough
/// that it never ends during a run); each invoke runs <see cref="InstructionsPerInvoke"/> more instructions,
/// so the time is per guest instruction (MIPS column as in <see cref="LoopBenchmarks"/>). Model on and off.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(MipsConfig))]
public class KernelSpeedBenchmarks
{
    public const int InstructionsPerInvoke = 1_000_000;
    public const string Append = "init=syscalls:100000000 pti=on nokaslr";
    private Machine _on = null!, _off = null!;

    [GlobalSetup]
    public void Setup()
    {
        _on = Boot(model: true);
        _off = Boot(model: false);
    }

    /// <summary>firmware/toykernel.elf, searched for above the running benchmark's directory.</summary>
    public static string KernelPath()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
        {
            var p = Path.Combine(d.FullName, "firmware", "toykernel.elf");
            if (File.Exists(p)) return p;
        }
        throw new FileNotFoundException("firmware/toykernel.elf not found above " + AppContext.BaseDirectory);
    }

    internal static Machine Boot(bool model)
    {
        var output = new MemoryStream();
        var m = new Machine(new MachineOptions { Append = Append, Output = output, Tlb = new Mmu.TlbConfig { Model = model } });
        m.LoadKernel(File.ReadAllBytes(KernelPath()), "toykernel.elf", Array.Empty<Loader.BootModule>());
        var reason = m.Run(20_000_000);   // boot, start init, and run into the system-call loop
        string console = System.Text.Encoding.Latin1.GetString(output.ToArray());
        if (reason != StopReason.None || !console.Contains("pti: on") || !console.Contains("pcid: on"))
            throw new InvalidOperationException($"toy kernel did not reach its syscall loop with pti+pcid: {reason} {m.StopMessage}\n{console}");
        return m;
    }

    [Benchmark(OperationsPerInvoke = InstructionsPerInvoke)]
    public ulong SyscallsPtiPcid() { _on.Run(InstructionsPerInvoke); return _on.Cpu.Retired; }

    [Benchmark(OperationsPerInvoke = InstructionsPerInvoke)]
    public ulong SyscallsPtiPcidModelOff() { _off.Run(InstructionsPerInvoke); return _off.Cpu.Retired; }

    /// <summary>
    /// <c>Emu64.Bench syscalls [instructions]</c>: a quick look without BenchmarkDotNet (while working on the system-call path):
    /// the loop booted, warmed past the compile threshold, then the best of five timed runs, in guest MIPS, and the five runs'
    /// instructions per CPU second (the figure to compare on a loaded host). <c>EMU64_CHAIN=1</c> adds the chain's counters per
    /// system call (region entries, interpreted blocks, exits).
    /// </summary>
    public static void Quick(ulong instructions)
    {
        var m = Boot(model: true);
        m.Run(150_000_000);   // past the default compile threshold (1e6 runs of each block of the loop)
        double best = double.MaxValue;
        var self = System.Diagnostics.Process.GetCurrentProcess();
        var cpu0 = self.TotalProcessorTime;
        for (int r = 0; r < 5; r++)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            m.Run(instructions);
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        self.Refresh();
        // CPU time of the five runs (all threads: the run loop's, the JIT's, the GC's): on a loaded host the wall time includes
        // waiting for a core, the CPU time much less of it.
        double cpu = (self.TotalProcessorTime - cpu0).TotalSeconds;
        if (Environment.GetEnvironmentVariable("EMU64_CHAIN") == "1")
        {
            var c = m.Chain; ulong r0 = m.Cpu.Retired;
            var (s, ce, cr, ib, ee, eu, eb, lm) = (c.Starts, c.CompiledEntries, c.CompiledRetired, c.InterpretedBlocks, c.ExitEarly, c.ExitUnchainable, c.ExitBoundary, c.LinkMisses);
            m.Run(10_300_000);
            double calls = (m.Cpu.Retired - r0) / 103.0;
            Console.WriteLine($"per ~syscall (103 insns): starts {(c.Starts - s) / calls:F2} entries {(c.CompiledEntries - ce) / calls:F2} compiledRetired {(c.CompiledRetired - cr) / calls:F1} interpBlocks {(c.InterpretedBlocks - ib) / calls:F2} early {(c.ExitEarly - ee) / calls:F2} unchainable {(c.ExitUnchainable - eu) / calls:F2} boundary {(c.ExitBoundary - eb) / calls:F2} linkMisses {(c.LinkMisses - lm) / calls:F2}");
        }
        Console.WriteLine($"SyscallsPtiPcid {instructions / best / 1e6,8:F1} MIPS, {5 * instructions / cpu / 1e6,8:F1} per CPU second ({m.StopReason}, {m.Chain.CompiledRetired * 100.0 / m.Cpu.Retired:F0}% compiled)");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var (name, m) in new[] { ("SyscallsPtiPcid", _on), ("SyscallsPtiPcidModelOff", _off) })
            if (m.StopReason != StopReason.None || m.Stats.UnimplementedTotal != 0)
                throw new InvalidOperationException($"{name}: the kernel left its loop ({m.StopReason} {m.StopMessage})");
    }
}
