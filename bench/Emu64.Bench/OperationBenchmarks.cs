using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using static Emu64.Bench.OperationImages;

namespace Emu64.Bench;

/// <summary>
/// Host nanoseconds per guest operation for the operations kvm-unit-tests' x86/vmexit times (issue #19): CPUID, IN from
/// the ACPI PM timer, MOV from and to CR8, PAUSE, and WRMSR IA32_TSC_DEADLINE with the local APIC timer in TSC-deadline
/// mode and the deadline far away. Each guest loops over one operation forever (<c>op; dec r8; jnz</c>, the CPUID loop
/// also zeroes EAX first: leaf 0); each invoke runs <see cref="Iterations"/> iterations exactly, so the reported time is per
/// iteration (the operation and its two loop instructions), the number to set beside QEMU's in <c>bench/compare.sh --ops</c>.
/// MemoryDiagnoser: 0 B per operation in steady state.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(OperationConfig))]
public class OperationBenchmarks
{
    public const int Iterations = 200_000;
    private Machine _cpuid = null!, _inPm = null!, _cr8Read = null!, _cr8Write = null!, _pause = null!, _tscDeadline = null!;

    [GlobalSetup]
    public void Setup()
    {
        _cpuid = LoopBenchmarks.Boot(Cpuid(), model: true);
        _inPm = LoopBenchmarks.Boot(InPmTimer(), model: true);
        _cr8Read = LoopBenchmarks.Boot(Cr8Read(), model: true);
        _cr8Write = LoopBenchmarks.Boot(Cr8Write(), model: true);
        _pause = LoopBenchmarks.Boot(Pause(), model: true);
        _tscDeadline = LoopBenchmarks.Boot(TscDeadline(), model: true);
    }

    /// <summary>Instructions per loop iteration: the operation, dec, jnz (CPUID: xor eax,eax too).</summary>
    private const int Three = 3, Four = 4;

    [Benchmark(OperationsPerInvoke = Iterations)]
    public ulong Cpuid0() { _cpuid.Run((ulong)Iterations * Four); return _cpuid.Cpu.Retired; }

    [Benchmark(OperationsPerInvoke = Iterations)]
    public ulong InPmTimer32() { _inPm.Run((ulong)Iterations * Three); return _inPm.Cpu.Retired; }

    [Benchmark(OperationsPerInvoke = Iterations)]
    public ulong MovFromCr8() { _cr8Read.Run((ulong)Iterations * Three); return _cr8Read.Cpu.Retired; }

    [Benchmark(OperationsPerInvoke = Iterations)]
    public ulong MovToCr8() { _cr8Write.Run((ulong)Iterations * Three); return _cr8Write.Cpu.Retired; }

    [Benchmark(OperationsPerInvoke = Iterations)]
    public ulong PauseOp() { _pause.Run((ulong)Iterations * Three); return _pause.Cpu.Retired; }

    [Benchmark(OperationsPerInvoke = Iterations)]
    public ulong WrmsrTscDeadline() { _tscDeadline.Run((ulong)Iterations * Three); return _tscDeadline.Cpu.Retired; }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var (name, m) in new[] { ("Cpuid0", _cpuid), ("InPmTimer32", _inPm), ("MovFromCr8", _cr8Read), ("MovToCr8", _cr8Write),
                                          ("PauseOp", _pause), ("WrmsrTscDeadline", _tscDeadline) })
            if (m.StopReason != StopReason.None || m.Stats.UnimplementedTotal != 0 || m.Stats.Faults != 0)
                throw new InvalidOperationException($"{name}: the guest left its loop ({m.StopReason}, faults {m.Stats.Faults})");
    }

    /// <summary>
    /// <c>Emu64.Bench ops [iterations [name]]</c>: a quick look without BenchmarkDotNet (while working on a handler): each guest booted,
    /// warmed past the compile threshold, then the best of five timed runs of <paramref name="iterations"/> iterations.
    /// </summary>
    public static void Quick(int iterations, string? only = null)
    {
        foreach (var (name, image, per) in new[] { ("Cpuid0", Cpuid(), Four), ("InPmTimer32", InPmTimer(), Three), ("MovFromCr8", Cr8Read(), Three),
                                                   ("MovToCr8", Cr8Write(), Three), ("PauseOp", Pause(), Three), ("WrmsrTscDeadline", TscDeadline(), Three) })
        {
            if (only != null && !name.Contains(only, StringComparison.OrdinalIgnoreCase)) continue;
            var m = LoopBenchmarks.Boot(image, model: true);
            m.Run((ulong)per * 1_500_000);   // past MachineOptions' default compile threshold (1e6 runs of the loop's block)
            double best = double.MaxValue;
            for (int r = 0; r < 5; r++)
            {
                var sw = System.Diagnostics.Stopwatch.StartNew();
                m.Run((ulong)per * (ulong)iterations);
                best = Math.Min(best, sw.Elapsed.TotalNanoseconds / iterations);
            }
            string ok = m.StopReason == StopReason.None && m.Stats.Faults == 0 && m.Stats.UnimplementedTotal == 0 ? "" : $" (left its loop: {m.StopReason}, faults {m.Stats.Faults})";
            Console.WriteLine($"{name,-18} {best,8:F1} ns/op{ok}");
        }
    }
}

/// <summary>The default columns (Mean is ns per operation) and the longer build timeout of <see cref="MipsConfig"/>; no MIPS column.</summary>
public sealed class OperationConfig : ManualConfig
{
    public OperationConfig() => WithBuildTimeout(TimeSpan.FromMinutes(10));
}
