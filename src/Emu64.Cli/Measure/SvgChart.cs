using Emu64.Mmu;
using System.Globalization;
using System.Text;

namespace Emu64.Cli.Measure;

/// <summary>
/// A line chart written as a self-contained SVG file (no scripts, no external fonts or styles): axes with
/// ticks and labels, a title, one line with markers per series, and a legend. Opens in any browser.
/// </summary>
public sealed class SvgChart
{
    public required string Title { get; init; }
    public string? Subtitle { get; init; }
    public required string XLabel { get; init; }
    public required string YLabel { get; init; }
    public bool LogX { get; init; }
    /// <summary>Logarithmic y axis (points at or below zero are left out).</summary>
    public bool LogY { get; init; }
    public List<(string Name, List<(double X, double Y)> Points)> Series { get; } = new();

    private const int W = 820, H = 480, Left = 80, Right = 210, Top = 64, Bottom = 64;
    private static readonly string[] Colors = { "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf" };
    private static readonly string[] Markers = { "circle", "square", "diamond", "triangle", "circle", "square", "diamond", "triangle" };

    private static string F(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);

    public static string Escape(string s) => s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&quot;");

    public string Render()
    {
        var pts = Series.SelectMany(s => s.Points).Where(Shown).ToList();
        double x0, x1;
        List<double> xTicks;
        if (pts.Count == 0) { x0 = 0; x1 = 1; xTicks = new() { 0, 1 }; }
        else if (LogX)
        {
            (x0, x1) = LogBounds(pts.Min(p => p.X), pts.Max(p => p.X));
            xTicks = LogTicks(x0, x1);
        }
        else
        {
            (x0, x1, xTicks) = NiceRange(pts.Min(p => p.X), pts.Max(p => p.X));
        }
        double y0, y1;
        List<double> yTicks;
        if (LogY)
        {
            (y0, y1) = pts.Count == 0 ? (0, 1) : LogBounds(pts.Min(p => p.Y), pts.Max(p => p.Y));
            yTicks = LogTicks(y0, y1).Select(e => Math.Pow(10, e)).ToList();
        }
        else
        {
            double yMin = pts.Count == 0 ? 0 : Math.Min(0, pts.Min(p => p.Y));
            double yMax = pts.Count == 0 ? 1 : Math.Max(pts.Max(p => p.Y), yMin + 1e-9);
            (y0, y1, yTicks) = NiceRange(yMin, yMax);
        }

        double pw = W - Left - Right, ph = H - Top - Bottom;
        double Sx(double x) => Left + ((LogX ? Math.Log10(x) : x) - x0) / (x1 - x0) * pw;
        double Sy(double y) => Top + ph - ((LogY ? Math.Log10(y) : y) - y0) / (y1 - y0) * ph;

        var sb = new StringBuilder();
        sb.Append($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n");
        sb.Append($"  <title>{Escape(Title)}</title>\n");
        sb.Append($"  <rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#ffffff\"/>\n");
        sb.Append($"  <text x=\"{W / 2}\" y=\"24\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">{Escape(Title)}</text>\n");
        if (Subtitle is not null)
            sb.Append($"  <text x=\"{W / 2}\" y=\"44\" text-anchor=\"middle\" fill=\"#555555\">{Escape(Subtitle)}</text>\n");

        // grid and ticks
        sb.Append("  <g stroke=\"#e0e0e0\" stroke-width=\"1\">\n");
        foreach (var t in yTicks) sb.Append($"    <line x1=\"{Left}\" y1=\"{F(Sy(t))}\" x2=\"{F(Left + pw)}\" y2=\"{F(Sy(t))}\"/>\n");
        foreach (var t in xTicks)
        {
            double x = LogX ? Left + (t - x0) / (x1 - x0) * pw : Sx(t);
            sb.Append($"    <line x1=\"{F(x)}\" y1=\"{Top}\" x2=\"{F(x)}\" y2=\"{F(Top + ph)}\"/>\n");
        }
        sb.Append("  </g>\n");
        sb.Append($"  <rect x=\"{Left}\" y=\"{Top}\" width=\"{F(pw)}\" height=\"{F(ph)}\" fill=\"none\" stroke=\"#000000\"/>\n");
        sb.Append("  <g text-anchor=\"end\">\n");
        foreach (var t in yTicks) sb.Append($"    <text x=\"{Left - 6}\" y=\"{F(Sy(t) + 4)}\">{Escape(TickLabel(t))}</text>\n");
        sb.Append("  </g>\n  <g text-anchor=\"middle\">\n");
        foreach (var t in xTicks)
        {
            double x = LogX ? Left + (t - x0) / (x1 - x0) * pw : Sx(t);
            string label = LogX ? TickLabel(Math.Pow(10, t)) : TickLabel(t);
            sb.Append($"    <text x=\"{F(x)}\" y=\"{F(Top + ph + 18)}\">{Escape(label)}</text>\n");
        }
        sb.Append("  </g>\n");
        sb.Append($"  <text x=\"{F(Left + pw / 2)}\" y=\"{H - 18}\" text-anchor=\"middle\" font-size=\"13\">{Escape(XLabel)}</text>\n");
        sb.Append($"  <text transform=\"translate(20 {F(Top + ph / 2)}) rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">{Escape(YLabel)}</text>\n");
        if (!LogY && y0 < 0 && y1 > 0)
            sb.Append($"  <line x1=\"{Left}\" y1=\"{F(Sy(0))}\" x2=\"{F(Left + pw)}\" y2=\"{F(Sy(0))}\" stroke=\"#888888\"/>\n");

        // series: one drawn exactly where an earlier one is (identical results, e.g. pti+pcid and
        // pti+pcid+invpcid when nothing calls INVPCID) is moved down by a few pixels per copy and says so in
        // the legend, so that every series stays visible.
        var shown = Series.Select(x => x.Points.Where(Shown).OrderBy(q => q.X).ToList()).ToList();
        var drawn = shown.Select(p => string.Join(" ", p.Select(q => $"{F(Sx(q.X))},{F(Sy(q.Y))}"))).ToList();
        var sameAs = new int[Series.Count];
        var shift = new int[Series.Count];
        for (int s = 0; s < Series.Count; s++)
        {
            sameAs[s] = -1;
            for (int r = 0; r < s && sameAs[s] < 0; r++)
                if (sameAs[r] < 0 && drawn[r].Length > 0 && drawn[r] == drawn[s]) sameAs[s] = r;
            if (sameAs[s] >= 0) shift[s] = SameOffset * (1 + Enumerable.Range(0, s).Count(r => sameAs[r] == sameAs[s]));
        }
        for (int s = 0; s < Series.Count; s++)
        {
            var p = shown[s];
            string color = Colors[s % Colors.Length];
            string move = shift[s] != 0 ? $" transform=\"translate(0 {shift[s]})\"" : "";
            sb.Append($"  <g fill=\"{color}\" stroke=\"{color}\"{move}>\n");
            if (p.Count > 1)
                sb.Append($"    <polyline fill=\"none\" stroke-width=\"2\"{Dash(s)} points=\"{string.Join(" ", p.Select(q => $"{F(Sx(q.X))},{F(Sy(q.Y))}"))}\"/>\n");
            foreach (var q in p) sb.Append("    ").Append(Marker(Markers[s % Markers.Length], Sx(q.X), Sy(q.Y))).Append('\n');
            sb.Append("  </g>\n");
        }

        // legend
        double lx = Left + pw + 16, ly = Top + 8;
        sb.Append($"  <g font-size=\"12\">\n");
        double y = ly;
        for (int s = 0; s < Series.Count; s++)
        {
            string color = Colors[s % Colors.Length];
            sb.Append($"    <line x1=\"{F(lx)}\" y1=\"{F(y)}\" x2=\"{F(lx + 24)}\" y2=\"{F(y)}\" stroke=\"{color}\" stroke-width=\"2\"{Dash(s)}/>\n");
            sb.Append($"    <g fill=\"{color}\" stroke=\"{color}\">{Marker(Markers[s % Markers.Length], lx + 12, y)}</g>\n");
            sb.Append($"    <text x=\"{F(lx + 32)}\" y=\"{F(y + 4)}\">{Escape(Series[s].Name)}</text>\n");
            if (sameAs[s] >= 0)
                foreach (var note in SameAsNote(Series[sameAs[s]].Name, shift[s]).Split('\n'))
                {
                    y += 13;
                    sb.Append($"    <text x=\"{F(lx + 32)}\" y=\"{F(y + 4)}\" font-size=\"10\" fill=\"#555555\">{Escape(note)}</text>\n");
                }
            y += 22;
        }
        sb.Append("  </g>\n</svg>\n");
        return sb.ToString();
    }

    /// <summary>Pixels by which a series identical to an earlier one is moved down (per copy).</summary>
    public const int SameOffset = 3;

    /// <summary>The legend's note under a series that coincides with an earlier one (two lines, to fit the legend).</summary>
    public static string SameAsNote(string earlier, int pixels) => $"same as {earlier}\n(drawn {pixels} px lower)";

    /// <summary>Dashes for the later series, so a line that lies on another one still shows.</summary>
    private static string Dash(int s) => (s % 4) switch { 2 => " stroke-dasharray=\"8 4\"", 3 => " stroke-dasharray=\"3 3\"", _ => "" };

    private bool Shown((double X, double Y) p) => (!LogX || p.X > 0) && (!LogY || p.Y > 0);

    private static string Marker(string kind, double x, double y) => kind switch
    {
        "square" => $"<rect x=\"{F(x - 3.5)}\" y=\"{F(y - 3.5)}\" width=\"7\" height=\"7\"/>",
        "diamond" => $"<polygon points=\"{F(x)},{F(y - 5)} {F(x + 5)},{F(y)} {F(x)},{F(y + 5)} {F(x - 5)},{F(y)}\"/>",
        "triangle" => $"<polygon points=\"{F(x)},{F(y - 5)} {F(x + 5)},{F(y + 4)} {F(x - 5)},{F(y + 4)}\"/>",
        _ => $"<circle cx=\"{F(x)}\" cy=\"{F(y)}\" r=\"4\"/>",
    };

    private static string TickLabel(double v)
    {
        var ci = CultureInfo.InvariantCulture;
        double a = Math.Abs(v);
        if (a >= 1e6) return (v / 1e6).ToString("0.##", ci) + "M";
        if (a >= 1e3) return (v / 1e3).ToString("0.##", ci) + "k";
        return v.ToString(a < 1 && a > 0 ? "0.###" : "0.##", ci);
    }

    /// <summary>log10 bounds around [lo, hi], rounded out to 1, 2 or 5 × 10^k.</summary>
    private static (double, double) LogBounds(double lo, double hi)
    {
        static double Down(double v) { double m = Math.Pow(10, Math.Floor(Math.Log10(v))); return new[] { 5, 2, 1 }.Select(f => f * m).First(x => x <= v * (1 + 1e-9)); }
        static double Up(double v) { double m = Math.Pow(10, Math.Floor(Math.Log10(v))); return new[] { 1, 2, 5, 10 }.Select(f => f * m).First(x => x >= v * (1 - 1e-9)); }
        double a = Math.Log10(Down(lo)), b = Math.Log10(Up(hi));
        return b - a < 1e-9 ? (a, a + 1) : (a, b);
    }

    /// <summary>Tick exponents for a log axis: the bounds, every power of ten between them, and 2 and 5 × 10^k when there are few decades.</summary>
    private static List<double> LogTicks(double a, double b)
    {
        var t = new SortedSet<double>();
        bool fine = b - a <= 3;
        for (double e = Math.Floor(a); e <= Math.Ceiling(b) + 1e-9; e++)
            foreach (var f in fine ? new[] { 1.0, 2, 5 } : new[] { 1.0 })
            {
                double v = Math.Round(e + Math.Log10(f), 9);
                if (v >= a - 1e-9 && v <= b + 1e-9) t.Add(v);
            }
        foreach (var end in new[] { Math.Round(a, 9), Math.Round(b, 9) })
            if (t.Count == 0 || t.Min(x => Math.Abs(x - end)) > 0.35) t.Add(end);   // the axis ends, unless a tick sits close by
        return t.ToList();
    }

    /// <summary>A range from lo to hi rounded out to 1/2/5 × 10^k steps, with the ticks.</summary>
    private static (double Lo, double Hi, List<double> Ticks) NiceRange(double lo, double hi)
    {
        if (hi <= lo) hi = lo + 1;
        double raw = (hi - lo) / 6;
        double mag = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double step = new[] { 1, 2, 2.5, 5, 10 }.Select(f => f * mag).First(s => s >= raw);
        double a = Math.Floor(lo / step) * step, b = Math.Ceiling(hi / step) * step;
        var ticks = new List<double>();
        for (double t = a; t <= b + step / 1e6; t += step) ticks.Add(Math.Round(t, 10));
        return (a, b, ticks);
    }
}

/// <summary>The two charts of a measurement.</summary>
public static class Charts
{
    /// <summary>Overhead against system-call rate (the syscalls workload), one line per configuration.</summary>
    public static SvgChart? OverheadVsRate(IReadOnlyList<CellResult> results)
    {
        var rows = results.Where(r => r.Cell.Workload.Name == "syscalls" && r.OverheadPercent is not null).ToList();
        if (rows.Count == 0) return null;
        var baseline = rows.Where(r => r.Cell.Config.Name == KernelConfig.Baseline).ToDictionary(r => r.Cell.PointKey);
        var chart = new SvgChart
        {
            Title = "KPTI overhead against system-call rate (syscalls workload)",
            Subtitle = "modeled cycles of the measured region against nopti; getpid() with user work between calls",
            XLabel = "system-call rate: thousand calls per second at 1 GHz (= calls per million nopti cycles), log scale",
            YLabel = "overhead against nopti (%)",
            LogX = true,
        };
        foreach (var g in rows.GroupBy(r => r.Cell.Config.Name))
            chart.Series.Add((g.Key, g.Select(r => (X: r.Syscalls / baseline[r.Cell.PointKey].Cycles * 1e6, Y: r.OverheadPercent!.Value)).ToList()));
        return chart;
    }

    /// <summary>L1 TLB misses per system call against working-set size (the touch workload), one line per configuration.</summary>
    public static SvgChart? MissesVsWorkingSet(IReadOnlyList<CellResult> results)
    {
        var rows = results.Where(r => r.Cell.Workload.Name == "touch" && r.Syscalls > 0).ToList();
        if (rows.Count == 0) return null;
        var chart = new SvgChart
        {
            Title = "TLB misses per system call against working-set size (touch workload)",
            Subtitle = "STLB misses (page walks) in the measured region / getpid() calls; one call per round over the working set",
            XLabel = "working set (4 KiB pages written between system calls), log scale",
            YLabel = "TLB misses per system call, log scale",
            LogX = true,
            LogY = true,
        };
        foreach (var g in rows.GroupBy(r => r.Cell.Config.Name))
            chart.Series.Add((g.Key, g.Select(r => (X: (double)r.Cell.Value("pages"), Y: (double)r.TlbMisses / r.Syscalls)).ToList()));
        return chart;
    }

    /// <summary>
    /// The pagecache workload against the working set, one line per direct-map page size (and configuration, when
    /// there are several): kernel L1 dTLB misses per system call, or (<paramref name="walks"/>) kernel STLB misses,
    /// each a page walk, per system call.
    /// </summary>
    public static SvgChart? DirectMapPageSize(IReadOnlyList<CellResult> results, bool walks = false)
    {
        var rows = results.Where(r => r.Cell.Workload.Name == "pagecache" && r.Syscalls > 0).ToList();
        if (rows.Count == 0) return null;
        bool manyConfigs = rows.Select(r => r.Cell.Config.Name).Distinct().Count() > 1;
        var chart = new SvgChart
        {
            Title = walks ? "Direct-map page size: kernel page walks per read/write (pagecache workload)"
                : "Direct-map page size: kernel dTLB misses per read/write (pagecache workload)",
            Subtitle = walks ? "pread64()/pwrite64() of a page-cache file, its frames spread across RAM; kernel STLB misses (walks) / calls"
                : "pread64()/pwrite64() of a page-cache file, its frames spread across RAM; L1 dTLB misses of kernel accesses / calls",
            XLabel = "working set (page-cache pages read and written each round), log scale",
            YLabel = walks ? "kernel page walks (STLB misses) per system call" : "kernel dTLB misses per system call",
            LogX = true,
        };
        foreach (var g in rows.GroupBy(r => (Dm: r.Cell.Value(DirectMap.Param), r.Cell.Config.Name)).OrderBy(g => g.Key.Dm))
            chart.Series.Add(($"directmap={DirectMap.Name(g.Key.Dm)}" + (manyConfigs ? " " + g.Key.Name : ""),
                g.Select(r => (X: (double)r.Cell.Value("pages"),
                    Y: (double)r.Misses(walks ? TlbLevel.Stlb : TlbLevel.Dtlb, false) / r.Syscalls)).ToList()));
        return chart;
    }
}
