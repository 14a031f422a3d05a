using System.Diagnostics;
using System.Xml.Linq;
using Emu64.Cli;
using Emu64.Cli.Measure;

namespace Emu64.Tests.Measure;

/// <summary>A small matrix, measured once for all the tests of the class (21 short toy-kernel runs).</summary>
public sealed class SmallMatrix
{
    public static readonly string[] Args =
    {
        "--workload", "syscalls,touch,pingpong", "--configs", "nopti,pti,pti+pcid",
        "--sweep", "syscalls.calls=10", "--sweep", "syscalls.work=0,100,400",
        "--sweep", "touch.pages=4,16,32", "--sweep", "touch.rounds=3", "--sweep", "touch.work=200",
        "--sweep", "pingpong.yields=10", "--sweep", "pingpong.procs=2",
        "--quiet",
    };

    /// <summary>A smaller matrix for the determinism tests (6 runs, each measured twice).</summary>
    public static readonly string[] Tiny =
    {
        "--workload", "syscalls,pingpong", "--configs", "nopti,pti+pcid",
        "--sweep", "syscalls.calls=10", "--sweep", "syscalls.work=0,100",
        "--sweep", "pingpong.yields=10", "--sweep", "pingpong.procs=2", "--quiet",
    };

    public MeasureCommand.Outcome Outcome { get; }
    public double Seconds { get; }

    public SmallMatrix()
    {
        var sw = Stopwatch.StartNew();
        Outcome = MeasureCommand.Measure(MeasureOptions.Parse(Args.Concat(new[] { "--jobs", "2" }).ToArray()), null);
        Seconds = sw.Elapsed.TotalSeconds;
    }

    public IEnumerable<CellResult> Of(string workload, string config) =>
        Outcome.Results.Where(r => r.Cell.Workload.Name == workload && r.Cell.Config.Name == config);
}

/// <summary>
/// <c>emu64 measure</c> on a small matrix: invariants of KPTI and PCID (not magic numbers), determinism
/// across runs and job counts, and well-formed charts.
/// </summary>
[Trait("Category", "Measure")]
public class MeasureTests(SmallMatrix m) : IClassFixture<SmallMatrix>
{
    [Fact]
    public void The_matrix_has_every_configuration_at_every_point_and_counts_only_the_region()
    {
        Assert.Equal((3 + 3 + 1) * 3, m.Outcome.Results.Count);
        foreach (var r in m.Outcome.Results)
        {
            Assert.Equal(r.Instructions, r.UserInstructions + r.KernelInstructions);
            Assert.True(r.UserInstructions > 0 && r.KernelInstructions > 0, $"{r.Cell.Append}");
        }
        // the region holds exactly the workload's system calls: 10 getpid(); touch: one per round
        Assert.All(m.Outcome.Results.Where(r => r.Cell.Workload.Name == "syscalls"), r => Assert.Equal(10UL, r.Syscalls));
        Assert.All(m.Outcome.Results.Where(r => r.Cell.Workload.Name == "touch"), r => Assert.Equal(3UL, r.Syscalls));
    }

    [Fact]
    public void Without_pti_a_system_call_never_writes_CR3()
    {
        Assert.All(m.Of("syscalls", "nopti"), r => Assert.Equal(0UL, r.Cr3Writes));
    }

    [Fact]
    public void With_pti_and_no_pcid_a_system_call_writes_CR3_twice_and_both_writes_flush()
    {
        Assert.All(m.Of("syscalls", "pti"), r =>
        {
            Assert.Equal(2 * r.Syscalls, r.Cr3Writes);
            Assert.Equal(r.Cr3Writes, r.Cr3Flushing);
            Assert.Equal(r.Syscalls, r.EntryCr3Writes);
            Assert.Equal(0UL, r.EntryCr3NoFlush);
        });
    }

    [Fact]
    public void With_pti_and_pcid_a_system_call_writes_CR3_twice_and_the_kernel_entry_write_is_noflush()
    {
        Assert.All(m.Of("syscalls", "pti+pcid"), r =>
        {
            Assert.Equal(2 * r.Syscalls, r.Cr3Writes);
            Assert.Equal(r.Syscalls, r.EntryCr3Writes);
            Assert.Equal(r.EntryCr3Writes, r.EntryCr3NoFlush);
        });
    }

    private double MissesPerSyscall(string workload, string config, Func<CellResult, bool>? where = null)
    {
        var r = m.Of(workload, config).Where(where ?? (_ => true)).ToList();
        return (double)r.Sum(x => (long)x.TlbMisses) / r.Sum(x => (long)x.Syscalls);
    }

    [Theory]
    [InlineData("syscalls")]
    [InlineData("touch")]
    [InlineData("pingpong")]
    public void Tlb_misses_per_system_call_are_higher_with_pti_than_with_pti_pcid_and_never_lower_with_pcid_than_without_pti(string workload)
    {
        double nopti = MissesPerSyscall(workload, "nopti"), pti = MissesPerSyscall(workload, "pti"), pcid = MissesPerSyscall(workload, "pti+pcid");
        Assert.True(pti > pcid, $"{workload}: pti {pti} <= pti+pcid {pcid}");
        Assert.True(pcid >= nopti, $"{workload}: pti+pcid {pcid} < nopti {nopti}");
    }

    [Theory]
    [InlineData("syscalls")]
    [InlineData("pingpong")]
    public void Tlb_misses_per_system_call_are_higher_with_pti_pcid_than_without_pti(string workload)
    {
        // Kernel pages are global without PTI; with PTI they are tagged with the kernel PCID and must be refilled.
        double nopti = MissesPerSyscall(workload, "nopti"), pcid = MissesPerSyscall(workload, "pti+pcid");
        Assert.True(pcid > nopti, $"{workload}: pti+pcid {pcid} <= nopti {nopti}");
    }

    [Theory]
    [InlineData("pti")]
    [InlineData("pti+pcid")]
    public void Overhead_rises_with_the_system_call_rate(string config)
    {
        var byRate = m.Of("syscalls", config).OrderByDescending(r => r.Cell.Value("work")).ToList();   // less work = higher rate
        Assert.Equal(3, byRate.Count);
        for (int i = 1; i < byRate.Count; i++)
            Assert.True(byRate[i].OverheadPercent > byRate[i - 1].OverheadPercent,
                $"{config}: work {byRate[i].Cell.Value("work")} overhead {byRate[i].OverheadPercent} <= work {byRate[i - 1].Cell.Value("work")} overhead {byRate[i - 1].OverheadPercent}");
        Assert.All(m.Of("syscalls", "nopti"), r => Assert.Equal(0.0, r.OverheadPercent));
    }

    [Fact]
    public void Overhead_of_pti_rises_with_the_working_set_while_it_fits_the_l1_tlb()
    {
        var bySize = m.Of("touch", "pti").OrderBy(r => r.Cell.Value("pages")).ToList();
        Assert.Equal(3, bySize.Count);
        for (int i = 1; i < bySize.Count; i++)
            Assert.True(bySize[i].OverheadPercent > bySize[i - 1].OverheadPercent,
                $"pages {bySize[i].Cell.Value("pages")}: {bySize[i].OverheadPercent} <= pages {bySize[i - 1].Cell.Value("pages")}: {bySize[i - 1].OverheadPercent}");
        // and PCID buys part of it back
        foreach (var p in m.Of("touch", "pti+pcid"))
            Assert.True(p.OverheadPercent < bySize.Single(x => x.Cell.PointKey == p.Cell.PointKey).OverheadPercent);
    }

    [Fact]
    public void Kernel_work_does_not_depend_on_user_work_and_every_yield_switches_process()
    {
        foreach (var config in new[] { "nopti", "pti", "pti+pcid" })
            Assert.Single(m.Of("syscalls", config).Select(r => r.KernelInstructions).Distinct());
        Assert.All(m.Outcome.Results.Where(r => r.Cell.Workload.Name == "pingpong"), r => Assert.Equal(r.Syscalls, r.ContextSwitches));
        Assert.All(m.Outcome.Results.Where(r => r.Cell.Workload.Name != "pingpong"), r => Assert.Equal(0UL, r.ContextSwitches));
    }

    [Fact]
    public void The_same_matrix_gives_the_same_json_and_csv_again_with_two_jobs_and_with_one()
    {
        var two = MeasureCommand.Measure(MeasureOptions.Parse(SmallMatrix.Tiny.Concat(new[] { "--jobs", "2" }).ToArray()), null);
        var one = MeasureCommand.Measure(MeasureOptions.Parse(SmallMatrix.Tiny.Concat(new[] { "--jobs", "1" }).ToArray()), null);
        Assert.Equal(two.Json, one.Json);
        Assert.Equal(two.Csv, one.Csv);
        Assert.Equal(two.Table, one.Table);
        Assert.DoesNotContain("seconds", two.Json);
        // and the cells of the tiny matrix are the same numbers as in the bigger one (each cell is its own machine)
        var big = m.Outcome.Results.Where(r => r.Cell.Config.Name != "pti").Select(r => (r.Cell.Append, r.Cycles, r.TlbMisses)).ToHashSet();
        Assert.All(two.Results.Where(r => r.Cell.Workload.Name == "pingpong" || r.Cell.Value("work") == 0 || r.Cell.Value("work") == 100),
            r => Assert.Contains((r.Cell.Append, r.Cycles, r.TlbMisses), big));
    }

    [Fact]
    public void Json_records_how_to_reproduce_each_cell()
    {
        using var doc = System.Text.Json.JsonDocument.Parse(m.Outcome.Json);
        var cells = doc.RootElement.GetProperty("cells");
        Assert.Equal(m.Outcome.Results.Count, cells.GetArrayLength());
        foreach (var c in cells.EnumerateArray())
        {
            var run = c.GetProperty("run");
            Assert.StartsWith("init=", run.GetProperty("append").GetString());
            Assert.Equal(64, run.GetProperty("kernel_image_sha256").GetString()!.Length);
            Assert.False(string.IsNullOrEmpty(run.GetProperty("emulator_version").GetString()));
            Assert.Equal(1536, run.GetProperty("tlb").GetProperty("Stlb").GetProperty("Entries").GetInt32());
            Assert.True(run.GetProperty("tlb").GetProperty("Cost").GetProperty("Cr3Write").GetDouble() > 0);
            Assert.True(c.GetProperty("results").GetProperty("instructions").GetUInt64() > 0);
        }
        var lines = m.Outcome.Csv.TrimEnd('\n').Split('\n');
        Assert.Equal(m.Outcome.Results.Count + 1, lines.Length);
        Assert.All(lines, l => Assert.Equal(lines[0].Split(',').Length, l.Split(',').Length));
    }

    [Fact]
    public void Both_charts_are_well_formed_svg_with_a_line_and_a_legend_entry_per_configuration()
    {
        foreach (var svg in new[] { m.Outcome.OverheadSvg, m.Outcome.MissesSvg })
        {
            Assert.NotNull(svg);
            var doc = XDocument.Parse(svg!);
            XNamespace ns = "http://www.w3.org/2000/svg";
            Assert.Equal(ns + "svg", doc.Root!.Name);
            var texts = doc.Descendants(ns + "text").Select(t => t.Value).ToList();
            foreach (var c in new[] { "nopti", "pti", "pti+pcid" }) Assert.Contains(c, texts);
            Assert.Equal(3, doc.Descendants(ns + "polyline").Count());
            Assert.NotNull(doc.Root.Element(ns + "title"));
        }
    }

    [SvgRendererFact]
    public void The_charts_render_in_a_browser()
    {
        // Headless Chromium (or librsvg): .ci/run installs chromium-headless-shell; skipped, visibly, where neither is installed.
        string? chromium = SvgRenderer.Chromium, rsvg = SvgRenderer.Rsvg;
        var dir = Directory.CreateTempSubdirectory("emu64-measure-svg");
        try
        {
            foreach (var (name, svg) in new[] { ("a.svg", m.Outcome.OverheadSvg!), ("b.svg", m.Outcome.MissesSvg!) })
            {
                string path = Path.Combine(dir.FullName, name), png = path + ".png";
                File.WriteAllText(path, svg);
                var psi = chromium is not null
                    ? new ProcessStartInfo(chromium, new[] { "--headless", "--no-sandbox", "--disable-gpu", $"--screenshot={png}", "--window-size=820,480", new Uri(path).AbsoluteUri })
                    : new ProcessStartInfo(rsvg!, new[] { path, "-o", png });
                psi.RedirectStandardError = psi.RedirectStandardOutput = true;
                using var p = Process.Start(psi)!;
                p.StandardOutput.ReadToEndAsync();
                p.StandardError.ReadToEndAsync();
                Assert.True(p.WaitForExit(60_000), "renderer hung");
                Assert.Equal(0, p.ExitCode);
                Assert.True(new FileInfo(png).Length > 1000, "empty picture");
            }
        }
        finally { dir.Delete(true); }
    }

}

/// <summary>A program that renders SVG to PNG: headless Chromium or librsvg's rsvg-convert.</summary>
internal static class SvgRenderer
{
    public static readonly string? Chromium = new[] { "chromium", "chromium-headless-shell", "chromium-browser", "google-chrome", "google-chrome-stable" }
        .Select(Which).FirstOrDefault(p => p != null);
    public static readonly string? Rsvg = Which("rsvg-convert");

    private static string? Which(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
}

/// <summary>A fact that needs an SVG renderer: skipped, visibly, when none is installed.</summary>
public sealed class SvgRendererFactAttribute : FactAttribute
{
    public SvgRendererFactAttribute()
    {
        if (SvgRenderer.Chromium is null && SvgRenderer.Rsvg is null) Skip = "no SVG renderer (chromium, chromium-headless-shell or rsvg-convert) is installed";
    }
}

/// <summary>The command line of <c>emu64 measure</c>: bad options are one line and exit status 2.</summary>
[Trait("Category", "Measure")]
public class MeasureOptionTests
{
    [Theory]
    [InlineData("--jobs", "0")]
    [InlineData("--workload", "nosuch")]
    [InlineData("--configs", "pti,fast")]
    [InlineData("--sweep", "work")]
    [InlineData("--sweep", "colour=1,2")]
    [InlineData("--sweep", "syscalls.work=1,x")]
    [InlineData("--sweep", "touch.pages=0")]
    [InlineData("--workload", "pagecache", "--sweep", "directmap=8k")]
    [InlineData("--workload", "pagecache", "--sweep", "bytes=5000")]
    [InlineData("--tlb-config", "stlb.entries=1000")]
    [InlineData("--frobnicate")]
    [InlineData("--out")]
    public void A_bad_option_is_a_usage_error(params string[] args)
    {
        Assert.Equal(ExitStatus.Usage, Cli.Cli.Execute(new[] { "measure" }.Concat(args).ToArray()));
    }

    [Fact]
    public void The_tlb_configuration_reaches_every_cell_and_the_json()
    {
        var o = MeasureCommand.Measure(MeasureOptions.Parse(new[]
        {
            "--workload", "syscalls", "--configs", "pti", "--sweep", "calls=5", "--sweep", "work=0",
            "--tlb-config", "pagingstructurecaches=false,cost.cr3write=7", "--quiet",
        }), null);
        var r = Assert.Single(o.Results);
        Assert.Equal(0UL, r.PscHits);
        Assert.True(r.Walks > 0);
        Assert.True(r.WalkMemRefs >= 2 * r.Walks, $"{r.WalkMemRefs} references for {r.Walks} walks");   // from CR3 down to a 1G, 2M or 4K leaf
        using var doc = System.Text.Json.JsonDocument.Parse(o.Json);
        var tlb = doc.RootElement.GetProperty("cells")[0].GetProperty("run").GetProperty("tlb");
        Assert.False(tlb.GetProperty("PagingStructureCaches").GetBoolean());
        Assert.Equal(7, tlb.GetProperty("Cost").GetProperty("Cr3Write").GetDouble());
        Assert.Contains("--tlb-config \"pagingstructurecaches=false,cost.cr3write=7\"",
            doc.RootElement.GetProperty("cells")[0].GetProperty("run").GetProperty("command").GetString());
    }

    [Fact]
    public void Sweeps_default_per_workload_and_can_be_qualified()
    {
        var o = MeasureOptions.Parse(new[] { "--workload", "syscalls,touch", "--configs", "pti,nopti", "--sweep", "touch.rounds=2", "--sweep", "calls=5,6" });
        var cells = o.Spec.Cells();
        Assert.Equal(new[] { "nopti", "pti" }, o.Spec.Configs.Select(c => c.Name));
        var sys = cells.Where(c => c.Workload.Name == "syscalls").ToList();
        Assert.Equal(Workload.Find("syscalls").DefaultSweep.Count * 2 * 2, sys.Count);       // default work sweep × calls × configs
        Assert.All(cells.Where(c => c.Workload.Name == "touch"), c => Assert.Equal(2, c.Value("rounds")));
        Assert.Equal(Workload.Find("touch").DefaultSweep.Count * 2, cells.Count(c => c.Workload.Name == "touch"));
        Assert.Equal("init=syscalls:5:0 nokaslr pti=off", sys[0].Append);
    }
}

/// <summary>What <c>emu64 measure</c> says at the end of a run about its files, and charts whose series coincide.</summary>
[Trait("Category", "Measure")]
public class MeasureOutputTests
{
    private static readonly string[] OneCell =
        ["measure", "--workload", "syscalls", "--configs", "nopti", "--sweep", "syscalls.calls=5", "--sweep", "syscalls.work=0", "--jobs", "1", "--quiet"];

    [Fact]
    public void Measure_without_out_ends_by_saying_that_no_files_were_written_and_how_to_get_them()
    {
        var r = Support.CliRun.Execute(OneCell);
        Assert.True(r.Status == 0, r.Stderr);
        var last = r.Out.TrimEnd('\n').Split('\n')[^1];
        Assert.Equal("no files written: add --out DIR for results.csv, results.json and the charts (overhead-vs-syscall-rate.svg, tlb-misses-vs-working-set.svg, direct-map-dtlb-misses.svg, direct-map-walks.svg)", last);
    }

    [Fact]
    public void Measure_with_out_ends_by_naming_the_files_and_the_directory()
    {
        using var dir = new Support.CliRun.TempDir();
        string outDir = Path.Combine(dir.Path, "m");
        var r = Support.CliRun.Execute([.. OneCell, "--out", outDir]);
        Assert.True(r.Status == 0, r.Stderr);
        var last = r.Out.TrimEnd('\n').Split('\n')[^1];
        Assert.StartsWith("wrote results.csv, results.json", last);
        Assert.EndsWith(" to " + outDir, last);
        Assert.True(File.Exists(Path.Combine(outDir, "results.csv")));
        Assert.True(File.Exists(Path.Combine(outDir, "results.json")));
    }

    [Fact]
    public void A_series_identical_to_an_earlier_one_is_drawn_a_little_lower_and_named_in_the_legend()
    {
        List<(double, double)> same = [(1, 10), (10, 20), (100, 40)], other = [(1, 5), (10, 6), (100, 7)];
        var chart = new SvgChart { Title = "t", XLabel = "x", YLabel = "y", LogX = true };
        chart.Series.Add(("nopti", other));
        chart.Series.Add(("pti+pcid", same));
        chart.Series.Add(("pti+pcid+invpcid", [.. same]));
        var doc = XDocument.Parse(chart.Render());
        XNamespace ns = "http://www.w3.org/2000/svg";
        var groups = doc.Descendants(ns + "g").Where(g => g.Element(ns + "polyline") is not null).ToList();
        Assert.Equal(3, groups.Count);
        Assert.Null(groups[0].Attribute("transform"));
        Assert.Null(groups[1].Attribute("transform"));
        Assert.Equal($"translate(0 {SvgChart.SameOffset})", groups[2].Attribute("transform")?.Value);
        // the points are the same, only the group is moved: the second line no longer hides the first
        Assert.Equal(groups[1].Element(ns + "polyline")!.Attribute("points")!.Value, groups[2].Element(ns + "polyline")!.Attribute("points")!.Value);
        var texts = doc.Descendants(ns + "text").Select(t => t.Value).ToList();
        Assert.Equal(SvgChart.SameAsNote("pti+pcid", SvgChart.SameOffset).Split('\n'), texts.SkipWhile(t => !t.StartsWith("same as ")).Take(2));
        Assert.Single(texts, t => t.StartsWith("same as "));
        Assert.Equal("same as pti+pcid", texts.Single(t => t.StartsWith("same as ")));
    }
}
