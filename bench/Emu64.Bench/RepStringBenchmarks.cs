using BenchmarkDotNet.Attributes;

namespace Emu64.Bench;

/// <summary>
/// REP STOSQ and REP MOVSB over whole 4 KiB pages (Linux's clear_page and copy_page with ERMS), with the TLB model on:
/// the time per pass (one page cleared and one copied: 512 STOSQ and 4,096 MOVSB iterations). Isa/Strings.cs
/// runs such in-page stretches at memory speed, the hits counted as the iterations count them.
/// <c>dotnet run -c Release --project bench/Emu64.Bench -- --filter '*RepStringBenchmarks*'</c>
/// </summary>
[MemoryDiagnoser]
public class RepStringBenchmarks
{
    public const int Passes = 1000;
    private Machine _m = null!;

    /// <summary>False: every iteration the ordinary way (the interpreter before the in-page runs), for comparison.</summary>
    [Params(true, false)]
    public bool FastRuns;

    [GlobalSetup]
    public void Setup()
    {
        Isa.Strings.FastRuns = FastRuns;
        _m = LoopBenchmarks.Boot(LoopImage.RepLoop(), model: true);
    }

    /// <summary>One pass: 4 KiB zeroed with REP STOSQ, 4 KiB copied with REP MOVSB (9 guest instructions).</summary>
    [Benchmark(OperationsPerInvoke = Passes)]
    public ulong ClearAndCopyPage() { _m.Run((ulong)(Passes * LoopImage.RepLoopInstructions)); return _m.Cpu.Retired; }

    [GlobalCleanup]
    public void Cleanup()
    {
        if (_m.StopReason != StopReason.None || _m.Stats.Faults != 0)
            throw new InvalidOperationException($"RepLoop: the guest left its loop ({_m.StopReason}, faults {_m.Stats.Faults})");
    }
}
