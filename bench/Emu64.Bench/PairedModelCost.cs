using System.Diagnostics;

namespace Emu64.Bench;

/// <summary>
/// What the TLB model costs on the loops, measured so that the host's drift cancels: the model-on and model-off
/// machines run alternately, <see cref="SliceInstructions"/> guest instructions each, and each on/off pair gives one
/// ratio; the median ratio over the pairs is the cost. On the shared VM the speed of a whole BenchmarkDotNet
/// benchmark can change by 2x from one minute to the next, more than the effect being measured; two slices
/// a few milliseconds apart see the same host. Run with
/// <c>dotnet run -c Release --project bench/Emu64.Bench -- paired [pairs]</c>. (The BenchmarkDotNet pairs in
/// <see cref="LoopBenchmarks"/> stay the reference; this is the same comparison with the noise taken out.)
/// </summary>
public static class PairedModelCost
{
    public const ulong SliceInstructions = 4_000_000;

    public static void Run(int pairs)
    {
        Console.WriteLine($"paired model cost: {pairs} pairs of {SliceInstructions:N0}-instruction slices, model on then off, alternating");
        Console.WriteLine($"host: {Environment.ProcessorCount} cpus, .NET {Environment.Version}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        foreach (var (name, image) in new[] { ("RegisterLoop", LoopImage.RegisterLoop()), ("MemoryLoop", LoopImage.MemoryLoop()) })
        {
            var on = LoopBenchmarks.Boot(image, model: true);
            var off = LoopBenchmarks.Boot(image, model: false);
            for (int w = 0; w < 5; w++) { on.Run(SliceInstructions); off.Run(SliceInstructions); }   // compile, tier up
            var ratios = new List<double>();
            double bestOn = double.MaxValue, bestOff = double.MaxValue;
            for (int p = 0; p < pairs; p++)
            {
                double a = Time(on), b = Time(off);
                // Alternate which goes first, so a drift within a pair does not favour one side.
                if (p % 2 == 1) { b = Time(off); a = Time(on); }
                ratios.Add(a / b);
                bestOn = Math.Min(bestOn, a); bestOff = Math.Min(bestOff, b);
            }
            ratios.Sort();
            double median = ratios[ratios.Count / 2], q1 = ratios[ratios.Count / 4], q3 = ratios[ratios.Count * 3 / 4];
            Console.WriteLine(FormattableString.Invariant(
                $"{name,-13} model on/off time: median {median:F3} (quartiles {q1:F3} .. {q3:F3}); fastest slices {1e3 * SliceInstructions / bestOn / 1e6 / 1e3:F1} vs {1e3 * SliceInstructions / bestOff / 1e6 / 1e3:F1} M instr/s; cost {100 * (median - 1):+0.0;-0.0;+0.0}%"));
        }
    }

    private static double Time(Machine m)
    {
        long t0 = Stopwatch.GetTimestamp();
        m.Run(SliceInstructions);
        return Stopwatch.GetElapsedTime(t0).TotalSeconds;
    }
}
