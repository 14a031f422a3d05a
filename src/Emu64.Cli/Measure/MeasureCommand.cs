using System.Diagnostics;
using System.Globalization;

namespace Emu64.Cli.Measure;

/// <summary>Options of <c>emu64 measure</c>.</summary>
public sealed class MeasureOptions
{
    public MatrixSpec Spec = new();
    public List<string> TlbConfig = new();
    public string? OutDir;
    /// <summary>Cells at a time: each holds a machine with 128 MiB of guest RAM, so at most 8 unless asked.</summary>
    public int Jobs = Math.Clamp(Environment.ProcessorCount, 1, 8);
    public ulong Seed;
    public bool Quiet;
    /// <summary>What a tick of guest time is in every cell (--clock).</summary>
    public Emu64.Mmu.GuestClock Clock;
    /// <summary>--kernel/--initrd: the matrix on Linux (LinuxBoot.cs) instead of the toy kernel; -m its guest RAM.</summary>
    public string? Kernel, Initrd;
    public ulong? RamBytes;

    public const string Usage = """
        usage: emu64 measure [options]

        The cost of KPTI in TLB misses and page walks, with and without PCID, and of the direct map's page
        size (docs/MEASURE.md). Prints a table; --out DIR also writes CSV, JSON and SVG charts (the last
        line says where, or how).
          --workload NAME[,NAME]  syscalls, touch, pingpong, mmap (the default: KPTI and PCID), and pagecache
                                  (the direct map's page size; under nopti unless --configs is given)
          --configs LIST          nopti, pti, pti+pcid, pti+pcid+invpcid (default: these four; nopti is the baseline),
                                  nopti+noinvpcid (on request)
          --kernel FILE           run the matrix on Linux: a bzImage whose initramfs (--initrd) has the workloads
                                  of tests/linux/initramfs (tests/linux/fetch-linux.sh); one boot per configuration
          --initrd FILE           the initramfs for --kernel
          -m SIZE                 guest RAM of each Linux boot (default 512M, 64M to 3G; suffix M or G)
          --sweep PARAM=V1,V2,... values of a workload parameter, for every selected workload that has it, or
                                  of one workload's with WORKLOAD.PARAM=... (repeatable: the product of the sweeps).
                                  A single value just sets the parameter; k, m, g multiply by 1024, 1024², 1024³.
                                  Default sweeps: syscalls.work, touch.pages, pingpong.procs, mmap.pages,
                                  pagecache.pages x pagecache.directmap (replaced when that parameter is given).
                                  syscalls: calls, work   touch: pages, rounds, work   pingpong: yields, procs
                                  mmap: cycles, pages   pagecache: pages, rounds, bytes, directmap (4k,2m,1g)
          --tlb-config FILE|K=V   TLB geometry and cost model for every cell (as for run; repeatable)
          --clock KIND            guest time in instructions (default) or modeled cycles (as for run)
          --out DIR               write results.csv, results.json, overhead-vs-syscall-rate.svg,
                                  tlb-misses-vs-working-set.svg, direct-map-dtlb-misses.svg, direct-map-walks.svg there
          --jobs N                cells run in parallel (default: the number of CPUs, at most 8)
          --seed N                seed of every cell (default 0)
          --quiet                 no progress lines on stderr
          -h, --help              this text
        """;

    public static MeasureOptions Parse(string[] a)
    {
        var o = new MeasureOptions();
        var workloads = new List<string>();
        var configs = new List<string>();
        for (int i = 0; i < a.Length; i++)
        {
            string opt = a[i];
            string Value()
            {
                if (i + 1 >= a.Length) throw new CliException($"option {opt} needs a value");
                return a[++i];
            }
            switch (opt)
            {
                case "--workload": case "--workloads": workloads.AddRange(List(Value())); break;
                case "--configs": case "--config": configs.AddRange(List(Value())); break;
                case "--sweep": o.Spec.Sweeps.Add(ParseSweep(Value())); break;
                case "--tlb-config": o.TlbConfig.Add(Value()); break;
                case "--clock": o.Clock = Cli.ParseClock(Value()); break;
                case "--out": o.OutDir = Value(); break;
                case "--jobs":
                    o.Jobs = (int)Number(opt, Value(), 1, 64);
                    break;
                case "--seed": o.Seed = (ulong)Number(opt, Value(), 0, long.MaxValue); break;
                case "--quiet": o.Quiet = true; break;
                case "--kernel": o.Kernel = Value(); break;
                case "--initrd": o.Initrd = Value(); break;
                case "-m":
                {
                    string v = Value();
                    ulong mul = v.Length > 1 && char.ToLowerInvariant(v[^1]) == 'g' ? 1024UL : 1UL;
                    string digits = v.Length > 1 && char.ToLowerInvariant(v[^1]) is 'g' or 'm' ? v[..^1] : v;
                    o.RamBytes = (ulong)Number(opt, digits, 1, 65536) * mul << 20;
                    if (o.RamBytes < 64UL << 20 || o.RamBytes > Cli.MaxRamBytes) throw new CliException($"option -m needs 64M to {Cli.MaxRamBytes >> 30}G, not '{v}'");
                    break;
                }
                case "-h" or "--help": throw new Cli.HelpRequested();
                default:
                    throw new CliException(opt.StartsWith('-') ? $"measure: unknown option {opt}" : $"measure: unexpected argument '{opt}'");
            }
        }
        if ((o.Kernel is null) != (o.Initrd is null))
            throw new CliException(o.Kernel is null ? "measure: --initrd needs --kernel" : "measure: --kernel needs --initrd (the initramfs with the workloads: tests/linux/fetch-linux.sh)");
        if (o.RamBytes is not null && o.Kernel is null) throw new CliException("measure: -m applies to Linux boots only (--kernel)");
        o.Spec.Linux = o.Kernel is not null;
        o.Spec.LinuxRamBytes = o.RamBytes ?? LinuxBoot.DefaultRam;
        o.Spec.Workloads = (workloads.Count == 0 ? Workload.Defaults : workloads.Distinct().Select(Workload.Find)).ToList();
        o.Spec.ConfigsGiven = configs.Count > 0;
        o.Spec.Configs = (configs.Count == 0 ? KernelConfig.Defaults : configs.Distinct().Select(KernelConfig.Find))
            .OrderBy(c => KernelConfig.All.ToList().IndexOf(c)).ToList();
        foreach (var (param, values) in o.Spec.Sweeps)
        {
            var owners = o.Spec.Workloads.Where(w => MatrixSpec.Target(w, param) is not null).ToList();
            if (owners.Count == 0)
                throw new CliException($"--sweep: no selected workload has a parameter '{param}' ({string.Join("; ", o.Spec.Workloads.Select(w => $"{w.Name}: {string.Join(", ", w.Params.Select(p => p.Name))}"))})");
            foreach (var w in owners)
            {
                var p = w.Params[w.ParamIndex(MatrixSpec.Target(w, param)!)];
                foreach (var v in values)
                    if (p.Allowed is not null && !p.Allowed.Contains(v))
                        throw new CliException($"--sweep: {w.Name} {p.Name}={p.Show(v)} is not one of {string.Join(", ", p.Allowed.Select(p.Show))}");
                    else if (v < p.Min || v > p.Max)
                        throw new CliException($"--sweep: {w.Name} {p.Name}={v} is out of range ({p.Min}..{p.Max})");
            }
        }
        foreach (var w in o.Spec.Workloads)
        {
            var twice = o.Spec.Sweeps.Select(s => MatrixSpec.Target(w, s.Param)).Where(t => t is not null).GroupBy(t => t).FirstOrDefault(g => g.Count() > 1);
            if (twice is not null) throw new CliException($"--sweep: {w.Name}'s parameter '{twice.Key}' is swept twice");
        }
        if (o.Spec.Linux && o.Spec.LinuxRamBytes < LinuxBoot.MinRamFor1G && o.Spec.Sweeps.Any(s => s.Param.EndsWith(DirectMap.Param) && s.Values.Contains(DirectMap.Page1G)))
            throw new CliException($"measure: a 1g direct map on Linux needs -m {LinuxBoot.MinRamFor1G >> 20}M or more, not {o.Spec.LinuxRamBytes >> 20}M " +
                "(Linux maps only whole, aligned GiBs of RAM from 1 GiB up with 1 GiB pages)");
        return o;
    }

    private static IEnumerable<string> List(string s)
    {
        var items = s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (items.Length == 0) throw new CliException($"empty list '{s}'");
        return items;
    }

    private static (string, List<long>) ParseSweep(string s)
    {
        int eq = s.IndexOf('=');
        if (eq <= 0 || eq == s.Length - 1) throw new CliException($"--sweep needs PARAM=V1,V2,..., not '{s}'");
        string param = s[..eq].Trim();
        var values = new List<long>();
        foreach (var v in s[(eq + 1)..].Split(',', StringSplitOptions.TrimEntries))
        {
            // A size suffix multiplies by 1024 (k), 1024^2 (m) or 1024^3 (g): directmap=4k,2m,1g.
            int shift = v.Length > 1 ? char.ToLowerInvariant(v[^1]) switch { 'k' => 10, 'm' => 20, 'g' => 30, _ => 0 } : 0;
            string digits = shift > 0 ? v[..^1] : v;
            if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n > (long.MaxValue >> shift))
                throw new CliException($"--sweep {param}: '{v}' is not a non-negative number (k, m, g multiply by 1024, 1024², 1024³)");
            n <<= shift;
            if (!values.Contains(n)) values.Add(n);
        }
        return (param, values);
    }

    private static long Number(string opt, string s, long min, long max)
    {
        if (!long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out long v) || v < min || v > max)
            throw new CliException($"option {opt} needs a number from {min} to {max}, not '{s}'");
        return v;
    }
}

/// <summary><c>emu64 measure</c>: runs the matrix, prints the tables, writes CSV, JSON and SVG charts.</summary>
public static class MeasureCommand
{
    public const string CsvFile = "results.csv", JsonFile = "results.json",
        OverheadChartFile = "overhead-vs-syscall-rate.svg", MissesChartFile = "tlb-misses-vs-working-set.svg",
        DirectMapChartFile = "direct-map-dtlb-misses.svg", DirectMapWalksChartFile = "direct-map-walks.svg";

    /// <summary>The result of a measurement, also what tests look at.</summary>
    public sealed record Outcome(List<CellResult> Results, string Table, string Csv, string Json, string? OverheadSvg, string? MissesSvg,
        string? DirectMapSvg = null, string? DirectMapWalksSvg = null)
    {
        public string Summary => Reports.Summary(Results);
    }

    /// <summary>The last line of a run without --out: nothing was written, and how to get the files.</summary>
    public const string NoFilesNote = $"no files written: add --out DIR for {CsvFile}, {JsonFile} and the charts ({OverheadChartFile}, {MissesChartFile}, {DirectMapChartFile}, {DirectMapWalksChartFile})";

    public static int Run(string[] args)
    {
        var o = MeasureOptions.Parse(args);
        var stdout = Cli.Out;
        var stderr = TextWriter.Synchronized(Cli.Err);   // progress lines come from the worker threads
        var tlbRun = new Cli.RunOptions(null, "", 0, new(), 0, 0, false) { TlbConfig = o.TlbConfig };
        Cli.BuildTlbConfig(tlbRun);                 // a bad configuration is reported before anything runs
        if (o.OutDir is not null)
        {
            try { Directory.CreateDirectory(o.OutDir); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            { throw new CliException($"--out: cannot create directory '{o.OutDir}': {e.Message}"); }
        }
        var sw = Stopwatch.StartNew();
        Outcome outcome;
        try { outcome = Measure(o, o.Quiet ? null : stderr); }
        catch (MeasureException e) { stderr.WriteLine($"emu64: measure: {e.Message}"); return 1; }
        sw.Stop();
        stdout.Write(outcome.Table);
        stdout.WriteLine();
        stdout.WriteLine(Reports.Legend);
        string summary = outcome.Summary;
        if (summary.Length > 0) stdout.Write("\n" + summary);
        if (o.OutDir is not null)
        {
            try
            {
                File.WriteAllText(Path.Combine(o.OutDir, CsvFile), outcome.Csv);
                File.WriteAllText(Path.Combine(o.OutDir, JsonFile), outcome.Json);
                if (outcome.OverheadSvg is not null) File.WriteAllText(Path.Combine(o.OutDir, OverheadChartFile), outcome.OverheadSvg);
                if (outcome.MissesSvg is not null) File.WriteAllText(Path.Combine(o.OutDir, MissesChartFile), outcome.MissesSvg);
                if (outcome.DirectMapSvg is not null) File.WriteAllText(Path.Combine(o.OutDir, DirectMapChartFile), outcome.DirectMapSvg);
                if (outcome.DirectMapWalksSvg is not null) File.WriteAllText(Path.Combine(o.OutDir, DirectMapWalksChartFile), outcome.DirectMapWalksSvg);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            { throw new CliException($"--out: cannot write to '{o.OutDir}': {e.Message}"); }
            stdout.WriteLine($"\nwrote {string.Join(", ", new[] { CsvFile, JsonFile, outcome.OverheadSvg is null ? null : OverheadChartFile, outcome.MissesSvg is null ? null : MissesChartFile, outcome.DirectMapSvg is null ? null : DirectMapChartFile, outcome.DirectMapWalksSvg is null ? null : DirectMapWalksChartFile }.Where(f => f != null))} to {o.OutDir}");
        }
        else
            stdout.WriteLine($"\n{NoFilesNote}");
        stdout.Flush();
        if (!o.Quiet)
            stderr.WriteLine(FormattableString.Invariant(
                $"measure: {outcome.Results.Count} cells, {outcome.Results.Sum(r => (double)r.Instructions) / 1e6:F1} M measured instructions, {sw.Elapsed.TotalSeconds:F1} s with {o.Jobs} jobs"));
        return ExitStatus.Ok;
    }

    /// <summary>Runs the matrix of <paramref name="o"/> and renders every output (nothing is written to disk).</summary>
    public static Outcome Measure(MeasureOptions o, TextWriter? progress)
    {
        var tlbRun = new Cli.RunOptions(null, "", 0, new(), 0, 0, false) { TlbConfig = o.TlbConfig };
        Cli.CheckClock(o.Clock, Cli.BuildTlbConfig(tlbRun));
        var runner = new CellRunner(Cli.BundledKernelPath(), () => Cli.BuildTlbConfig(tlbRun))
        {
            Seed = o.Seed, TlbArgs = o.TlbConfig, Clock = o.Clock,
            Linux = o.Kernel is null ? null : new LinuxBoot(o.Kernel, o.Initrd!) { RamBytes = o.RamBytes ?? LinuxBoot.DefaultRam, Clock = o.Clock },
        };
        var cells = o.Spec.Cells();
        var results = Measurement.Run(cells, runner, o.Jobs, progress);
        return new Outcome(results, Reports.Table(results), Reports.Csv(results), Reports.Json(results, runner, o.Spec),
            Charts.OverheadVsRate(results)?.Render(), Charts.MissesVsWorkingSet(results)?.Render(), Charts.DirectMapPageSize(results)?.Render(),
            Charts.DirectMapPageSize(results, walks: true)?.Render());
    }
}
