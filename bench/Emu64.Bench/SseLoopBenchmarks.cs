using BenchmarkDotNet.Attributes;

namespace Emu64.Bench;

/// <summary>
/// Guest instructions per host second on the SSE/SSE2 loop (<see cref="LoopImage.SseLoop"/>) under 4-level paging,
/// with the TLB model on, measured like <see cref="LoopBenchmarks"/>: issue #17 asks that the x87/MMX work leave the
/// integer and SSE loops at their speed, so this is run paired against the commit before it (docs/PERFORMANCE.md).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(MipsConfig))]
public class SseLoopBenchmarks
{
    private Machine _sse = null!;

    [GlobalSetup]
    public void Setup() => _sse = LoopBenchmarks.Boot(LoopImage.SseLoop(), model: true);

    [Benchmark(OperationsPerInvoke = LoopBenchmarks.InstructionsPerInvoke)]
    public ulong SseLoop() { _sse.Run(LoopBenchmarks.InstructionsPerInvoke); return _sse.Cpu.Retired; }

    [GlobalCleanup]
    public void Cleanup()
    {
        if (_sse.StopReason != StopReason.None || _sse.Stats.UnimplementedTotal != 0 || _sse.Stats.Faults != 0)
            throw new InvalidOperationException($"SseLoop: the guest left its loop ({_sse.StopReason}, faults {_sse.Stats.Faults})");
    }
}
