using System.Diagnostics;

namespace Emu64.Cli.Measure;

/// <summary>
/// Runs every cell of a matrix (in parallel, up to <c>jobs</c> at a time, each an independent machine) and
/// puts the results back in cell order, so the outcome never depends on the number of jobs or on timing.
/// </summary>
public static class Measurement
{
    public static List<CellResult> Run(IReadOnlyList<Cell> cells, CellRunner runner, int jobs, TextWriter? progress)
    {
        // The boots: cells that share a kernel command line run in one (on Linux), each cell alone on the toy kernel;
        // in the order of their first cell, each boot's cells in cell order.
        var boots = cells.GroupBy(runner.BootKey).Select(g => g.ToList()).ToList();
        var results = new CellResult?[cells.Count];
        var errors = new MeasureException?[boots.Count];
        int done = 0;
        var gate = new object();
        var total = Stopwatch.StartNew();
        int width = boots.Count.ToString().Length;
        // Boots start in order (no chunking), so progress reads top to bottom; results land in their slot whatever the timing.
        var order = System.Collections.Concurrent.Partitioner.Create(Enumerable.Range(0, boots.Count), System.Collections.Concurrent.EnumerablePartitionerOptions.NoBuffering);
        Parallel.ForEach(order, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, jobs) }, i =>
        {
            var sw = Stopwatch.StartNew();
            var boot = boots[i];
            var c = boot[0];
            string name = runner.Linux is null ? $"{c.Workload.Name} {c.ParamText} {c.Config.Name}"
                : $"Linux {c.Config.Name}{(c.LinuxKernelOptions.Length > 0 ? $" ({c.LinuxKernelOptions})" : "")}: {boot.Count} cells";
            try
            {
                var got = runner.RunBoot(boot);
                for (int k = 0; k < boot.Count; k++) results[boot[k].Index] = got[k];
            }
            catch (MeasureException e) { errors[i] = e; }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                errors[i] = new MeasureException($"cell {c.Workload.Name} {c.ParamText} {c.Config.Name}: {e.GetType().Name}: {e.Message}");
            }
            sw.Stop();
            // Each boot's machine held its guest RAM (pinned): give it back now rather than at the GC's leisure.
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: false);
            if (progress is null) return;
            lock (gate)
            {
                done++;
                progress.WriteLine(FormattableString.Invariant(
                    $"[{done.ToString().PadLeft(width)}/{boots.Count}] {name}: {(errors[i] is null ? "ok" : "FAILED")} ({sw.Elapsed.TotalSeconds:F1} s, {total.Elapsed.TotalSeconds:F1} s so far)"));
            }
        });
        var firstError = errors.FirstOrDefault(e => e is not null);
        if (firstError is not null) throw firstError;
        var list = results.Select(r => r!).ToList();
        ComputeOverheads(list);
        return list;
    }

    /// <summary>Overhead of each cell against the baseline configuration at the same workload parameters.</summary>
    public static void ComputeOverheads(List<CellResult> results)
    {
        var baseline = results.Where(r => r.Cell.Config.Name == KernelConfig.Baseline).ToDictionary(r => r.Cell.PointKey);
        foreach (var r in results)
            r.OverheadPercent = baseline.TryGetValue(r.Cell.PointKey, out var b) && b.Cycles > 0
                ? (r.Cycles / b.Cycles - 1) * 100
                : null;
        // The direct map's page size against 1 GiB pages, same workload parameters and configuration.
        string GigaKey(CellResult r)
        {
            var v = r.Cell.Values.ToArray();
            v[r.Cell.Workload.ParamIndex(DirectMap.Param)] = DirectMap.Page1G;
            return r.Cell.Workload.Name + ":" + string.Join(":", v) + "|" + r.Cell.Config.Name;
        }
        var withDm = results.Where(r => r.Cell.Workload.ParamIndex(DirectMap.Param) >= 0).ToList();
        var giga = withDm.Where(r => r.Cell.Value(DirectMap.Param) == DirectMap.Page1G).ToDictionary(GigaKey);
        foreach (var r in withDm)
            r.VsGigaDirectMapPercent = giga.TryGetValue(GigaKey(r), out var g) && g.Cycles > 0 ? (r.Cycles / g.Cycles - 1) * 100 : null;
    }
}
