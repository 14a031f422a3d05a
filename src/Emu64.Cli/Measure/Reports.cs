using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json;
using Emu64.Mmu;

namespace Emu64.Cli.Measure;

/// <summary>One number of a cell: its CSV/JSON key, what it means, and how to get it.</summary>
public sealed record Metric(string Key, string Meaning, Func<CellResult, double?> Get, bool Integer = true);

/// <summary>The table, CSV and JSON of a measurement.</summary>
public static class Reports
{
    private static double? U(ulong v) => v;

    /// <summary>Every number of a cell, in CSV column / JSON key order (docs/MEASURE.md explains each).</summary>
    public static readonly IReadOnlyList<Metric> Metrics = new Metric[]
    {
        new("instructions", "guest instructions retired in the measured region", r => U(r.Instructions)),
        new("user_instructions", "of which in user mode (CPL 3)", r => U(r.UserInstructions)),
        new("kernel_instructions", "of which in kernel mode", r => U(r.KernelInstructions)),
        new("syscalls", "SYSCALL instructions", r => U(r.Syscalls)),
        new("context_switches", "CR3 writes that move to another process's page tables", r => U(r.ContextSwitches)),
        new("interrupts", "external interrupts (the timer)", r => U(r.Region.Interrupts)),
        new("cr3_writes", "MOV to CR3", r => U(r.Cr3Writes)),
        new("cr3_flushing", "CR3 writes that flush (no PCID, or bit 63 clear)", r => U(r.Cr3Flushing)),
        new("cr3_noflush", "CR3 writes with NOFLUSH (bit 63, PCID on)", r => U(r.Cr3NoFlush)),
        new("entry_cr3_writes", "KPTI kernel-entry CR3 writes (user PGD to kernel PGD)", r => U(r.EntryCr3Writes)),
        new("entry_cr3_noflush", "of which with NOFLUSH", r => U(r.EntryCr3NoFlush)),
        new("invlpg", "INVLPG instructions", r => U(r.Invlpg)),
        new("invpcid", "INVPCID instructions (all types)", r => U(r.Invpcid)),
        new("itlb_misses_user", "L1 iTLB misses, user fetches", r => U(r.Misses(TlbLevel.Itlb, true))),
        new("itlb_misses_kernel", "L1 iTLB misses, kernel fetches", r => U(r.Misses(TlbLevel.Itlb, false))),
        new("dtlb_misses_user", "L1 dTLB misses, user reads and writes", r => U(r.Misses(TlbLevel.Dtlb, true))),
        new("dtlb_misses_kernel", "L1 dTLB misses, kernel reads and writes", r => U(r.Misses(TlbLevel.Dtlb, false))),
        new("stlb_misses_user", "STLB misses (page walks started), user accesses", r => U(r.Misses(TlbLevel.Stlb, true))),
        new("stlb_misses_kernel", "STLB misses, kernel accesses", r => U(r.Misses(TlbLevel.Stlb, false))),
        new("stlb_misses_fetch", "STLB misses, instruction fetches", r => U(r.StlbFetchMisses)),
        new("stlb_misses_data", "STLB misses, data accesses", r => U(r.StlbDataMisses)),
        new("l1_tlb_misses", "L1 TLB misses (iTLB + dTLB), each looked up in the STLB", r => U(r.L1Misses)),
        new("tlb_misses", "TLB misses: STLB misses, each starting a page walk (perf's iTLB/dTLB-load-misses on Intel)", r => U(r.TlbMisses)),
        new("walks", "page walks", r => U(r.Walks)),
        new("walk_memrefs", "paging-structure entries the walks read from memory", r => U(r.WalkMemRefs)),
        new("psc_hits", "walks that started below CR3 thanks to a paging-structure cache", r => U(r.PscHits)),
        new("psc_hits_pde", "of which from the PDE cache", r => U(r.Tlb.PscHits(2))),
        new("psc_hits_pdpte", "of which from the PDPTE cache", r => U(r.Tlb.PscHits(3))),
        new("psc_hits_pml4e", "of which from the PML4E cache", r => U(r.Tlb.PscHits(4))),
        new("modeled_cycles", "cycles of the cost model (docs/MMU.md)", r => Math.Round(r.Cycles, 3), Integer: false),
        new("cycles_per_syscall", "modeled cycles / system calls", r => Round(r.PerSyscall(r.Cycles)), Integer: false),
        new("tlb_misses_per_syscall", "TLB (STLB) misses / system calls", r => Round(r.PerSyscall(r.TlbMisses)), Integer: false),
        new("l1_tlb_misses_per_syscall", "L1 TLB misses / system calls", r => Round(r.PerSyscall(r.L1Misses)), Integer: false),
        new("walks_per_syscall", "page walks / system calls", r => Round(r.PerSyscall(r.Walks)), Integer: false),
        new("overhead_percent", "modeled cycles against nopti at the same parameters, in percent", r => Round(r.OverheadPercent), Integer: false),
        new("dtlb_misses_kernel_per_syscall", "L1 dTLB misses of kernel accesses / system calls", r => Round(r.PerSyscall(r.Misses(TlbLevel.Dtlb, false))), Integer: false),
        new("vs_1g_direct_map_percent", "modeled cycles against the same cell with a 1 GiB direct map, in percent (pagecache)", r => Round(r.VsGigaDirectMapPercent), Integer: false),
    };

    private static double? Round(double? v) => v is null ? null : Math.Round(v.Value, 4);

    private static string Num(double? v) => v is null ? "" : v.Value.ToString("0.####", CultureInfo.InvariantCulture);

    public static string EmulatorVersion =>
        typeof(Machine).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(Machine).Assembly.GetName().Version?.ToString() ?? "unknown";

    // ---------------------------------------------------------------- CSV

    public static string Csv(IReadOnlyList<CellResult> results)
    {
        var paramNames = results.SelectMany(r => r.Cell.Workload.Params.Select(p => p.Name)).Distinct().ToList();
        var sb = new StringBuilder();
        sb.Append("workload,config,kernel_options");
        foreach (var p in paramNames) sb.Append(',').Append(p);
        foreach (var m in Metrics) sb.Append(',').Append(m.Key);
        sb.Append('\n');
        foreach (var r in results)
        {
            var c = r.Cell;
            sb.Append(c.Workload.Name).Append(',').Append(c.Config.Name).Append(',').Append(c.KernelOptions);
            foreach (var p in paramNames)
            {
                int k = c.Workload.ParamIndex(p);
                sb.Append(',').Append(k >= 0 ? c.Values[k].ToString(CultureInfo.InvariantCulture) : "");
            }
            foreach (var m in Metrics) sb.Append(',').Append(Num(m.Get(r)));
            sb.Append('\n');
        }
        return sb.ToString();
    }

    // ---------------------------------------------------------------- JSON

    /// <summary>
    /// Everything needed to reproduce each cell (kernel command line, image hash, seed, TLB geometry and cost
    /// model, emulator version) and every counter of its region. No wall times and no timestamps: two runs of
    /// the same matrix give the same bytes, whatever --jobs is.
    /// </summary>
    public static string Json(IReadOnlyList<CellResult> results, CellRunner runner, MatrixSpec spec)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            string tlbJson = runner.TlbConfig.ToJson();
            w.WriteStartObject();
            w.WriteString("tool", "emu64 measure");
            w.WriteString("emulator_version", EmulatorVersion);
            if (runner.Linux is { } linux)
            {
                w.WriteString("kernel_image", Path.GetFileName(linux.KernelPath));
                w.WriteString("kernel_image_sha256", linux.KernelSha256);
                w.WriteString("initrd", Path.GetFileName(linux.InitrdPath));
                w.WriteString("initrd_sha256", linux.InitrdSha256);
            }
            else
            {
                w.WriteString("kernel_image", "firmware/toykernel.elf");
                w.WriteString("kernel_image_sha256", runner.ImageSha256);
            }
            w.WriteNumber("seed", runner.Seed);
            w.WriteStartObject("matrix");
            w.WriteStartArray("workloads");
            foreach (var wl in spec.Workloads) w.WriteStringValue(wl.Name);
            w.WriteEndArray();
            w.WriteStartArray("configs");
            foreach (var c in spec.Configs)
            {
                w.WriteStartObject();
                w.WriteString("name", c.Name);
                w.WriteString("kernel_options", c.Options(spec.Linux));
                w.WriteString("description", c.Description);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("sweeps");
            foreach (var (p, vs) in spec.Sweeps)
            {
                w.WriteStartObject();
                w.WriteString("param", p);
                w.WriteStartArray("values");
                foreach (var v in vs) w.WriteNumberValue(v);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteStartObject("metrics");
            foreach (var m in Metrics) w.WriteString(m.Key, m.Meaning);
            w.WriteEndObject();
            w.WriteStartArray("cells");
            foreach (var r in results)
            {
                var c = r.Cell;
                w.WriteStartObject();
                w.WriteString("workload", c.Workload.Name);
                w.WriteNumber("region", c.Workload.RegionId);
                w.WriteStartObject("params");
                for (int i = 0; i < c.Values.Count; i++) w.WriteNumber(c.Workload.Params[i].Name, c.Values[i]);
                w.WriteEndObject();
                w.WriteString("config", c.Config.Name);
                w.WriteStartObject("run");
                w.WriteString("append", r.BootAppend ?? c.Append);   // on Linux: the boot that ran it, with the other cells of its configuration
                if (runner.Linux is not null)
                {
                    w.WriteString("boot", c.LinuxKernelOptions);   // the cells of one boot share it
                    w.WriteString("direct_map", r.DirectMapReport ?? "");
                }
                w.WriteString("command", runner.Command(r));
                w.WriteNumber("ram_bytes", runner.Linux?.RamBytes ?? new MachineOptions().RamBytes);
                w.WriteNumber("seed", runner.Seed);
                w.WriteNumber("ticks_per_second", new MachineOptions().TicksPerSecond);
                w.WriteString("emulator_version", EmulatorVersion);
                w.WriteString("kernel_image_sha256", runner.Linux?.KernelSha256 ?? runner.ImageSha256);
                w.WritePropertyName("tlb");
                w.WriteRawValue(tlbJson);
                w.WriteEndObject();
                w.WriteStartObject("results");
                foreach (var m in Metrics)
                {
                    var v = m.Get(r);
                    if (v is null) w.WriteNull(m.Key);
                    else if (m.Integer) w.WriteNumber(m.Key, (ulong)v.Value);
                    else w.WriteNumber(m.Key, v.Value);
                }
                w.WriteEndObject();
                w.WriteStartObject("region_counters");
                foreach (var (key, value) in r.Tlb.Named()) w.WriteNumber(key, value);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    // ---------------------------------------------------------------- terminal table

    private sealed record TableColumn(string Header, Func<CellResult, string> Get, bool Left = false);

    private static string N(ulong v) => Compact(v);
    private static string Pair(ulong a, ulong b) => $"{Compact(a)}/{Compact(b)}";

    /// <summary>A count for the table: exact up to 99,999, then k or M with three significant digits (123k, 1.20M, 12.3M).</summary>
    public static string Compact(double v)
    {
        var ci = CultureInfo.InvariantCulture;
        if (v < 100_000) return v == Math.Floor(v) ? v.ToString("0", ci) : v.ToString("0.##", ci);
        if (v < 999_500) return (v / 1e3).ToString("0", ci) + "k";
        return (v / 1e6).ToString(v < 9_995_000 ? "0.00" : v < 99_950_000 ? "0.0" : "0", ci) + "M";
    }

    private static string Ratio(double? v) => v is null ? "-" : v.Value.ToString(v.Value >= 100 ? "0" : v.Value >= 10 ? "0.#" : "0.##", CultureInfo.InvariantCulture);

    private static readonly TableColumn[] Columns =
    {
        new("config", r => r.Cell.Config.Name, Left: true),
        new("insns u/k", r => Pair(r.UserInstructions, r.KernelInstructions)),
        new("sysc", r => N(r.Syscalls)),
        new("ctxsw", r => N(r.ContextSwitches)),
        new("CR3 fl/nf", r => Pair(r.Cr3Flushing, r.Cr3NoFlush)),
        new("invlpg/pcid", r => Pair(r.Invlpg, r.Invpcid)),
        new("iTLB u/k", r => Pair(r.Misses(TlbLevel.Itlb, true), r.Misses(TlbLevel.Itlb, false))),
        new("dTLB u/k", r => Pair(r.Misses(TlbLevel.Dtlb, true), r.Misses(TlbLevel.Dtlb, false))),
        new("STLB u/k", r => Pair(r.Misses(TlbLevel.Stlb, true), r.Misses(TlbLevel.Stlb, false))),
        new("walks", r => N(r.Walks)),
        new("refs", r => N(r.WalkMemRefs)),
        new("PSC", r => N(r.PscHits)),
        new("cycles", r => Compact(Math.Round(r.Cycles))),
        new("cyc/sc", r => Ratio(r.PerSyscall(r.Cycles))),
        new("miss/sc", r => Ratio(r.PerSyscall(r.TlbMisses))),
        new("overhead", r => r.OverheadPercent is null ? "-" : r.OverheadPercent.Value.ToString("+0.0;-0.0;0.0", CultureInfo.InvariantCulture) + "%"),
    };

    /// <summary>One table per workload: a row per (parameters, configuration), the varying parameters first.</summary>
    public static string Table(IReadOnlyList<CellResult> results)
    {
        var sb = new StringBuilder();
        foreach (var group in results.GroupBy(r => r.Cell.Workload))
        {
            var wl = group.Key;
            var rows = group.ToList();
            var varying = wl.Params.Where((p, i) => rows.Select(r => r.Cell.Values[i]).Distinct().Count() > 1).ToList();
            var fixedText = string.Join(" ", wl.Params.Where(p => !varying.Contains(p))
                .Select(p => $"{p.Name}={p.Show(rows[0].Cell.Value(p.Name))}"));
            if (sb.Length > 0) sb.Append('\n');
            sb.Append(wl.Name).Append(": ").Append(wl.Description).Append('\n');
            if (fixedText.Length > 0) sb.Append("  ").Append(fixedText).Append('\n');
            var cols = varying.Select(p => new TableColumn(p.Name, r => p.Show(r.Cell.Value(p.Name))))
                .Concat(Columns).ToList();
            if (wl.ParamIndex(DirectMap.Param) >= 0)
                cols.Add(new TableColumn("vs 1g", r => r.VsGigaDirectMapPercent is null ? "-" : r.VsGigaDirectMapPercent.Value.ToString("+0.0;-0.0;0.0", CultureInfo.InvariantCulture) + "%"));
            var cells = rows.Select(r => cols.Select(c => c.Get(r)).ToArray()).ToList();
            var widths = cols.Select((c, k) => Math.Max(c.Header.Length, cells.Max(x => x[k].Length))).ToArray();
            void Line(IReadOnlyList<string> values)
            {
                for (int k = 0; k < cols.Count; k++)
                {
                    if (k > 0) sb.Append("  ");
                    sb.Append(cols[k].Left ? values[k].PadRight(widths[k]) : values[k].PadLeft(widths[k]));
                }
                sb.Append('\n');
            }
            Line(cols.Select(c => c.Header).ToList());
            sb.Append(string.Join("  ", widths.Select(x => new string('-', x)))).Append('\n');
            // A blank line between groups: where the first varying parameter changes, or with one configuration
            // only, where the point changes (so a table of one configuration is not a blank line a row).
            string? lastPoint = null;
            bool manyConfigs = rows.Select(r => r.Cell.Config).Distinct().Count() > 1;
            string Group(CellResult r) => manyConfigs || varying.Count < 2 ? r.Cell.PointKey : r.Cell.Value(varying[0].Name).ToString(CultureInfo.InvariantCulture);
            for (int i = 0; i < rows.Count; i++)
            {
                if (lastPoint != null && Group(rows[i]) != lastPoint && varying.Count > 0) sb.Append('\n');
                lastPoint = Group(rows[i]);
                Line(cells[i]);
            }
        }
        return sb.ToString();
    }

    /// <summary>
    /// The answer in a few lines: per workload, the range of each configuration's overhead over the parameter points,
    /// and how much of KPTI's overhead PCID gives back (1 − overhead(pti+pcid) / overhead(pti), at each point).
    /// </summary>
    public static string Summary(IReadOnlyList<CellResult> results)
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        if (!results.Any(r => (r.OverheadPercent is not null && r.Cell.Config.Name != KernelConfig.Baseline)
            || (r.VsGigaDirectMapPercent is not null && r.Cell.Value(DirectMap.Param) != DirectMap.Page1G))) return "";
        bool anyDirectMap = results.Any(r => r.VsGigaDirectMapPercent is not null);
        sb.Append("summary: overhead against nopti over each workload's points (min .. max)")
            .Append(anyDirectMap ? "; for the direct map's page size, modeled cycles against a 1 GiB direct map\n" : "\n");
        foreach (var group in results.GroupBy(r => r.Cell.Workload))
        {
            var rows = group.ToList();
            var param = group.Key.Params.FirstOrDefault(p => rows.Select(r => r.Cell.Value(p.Name)).Distinct().Count() > 1);
            var parts = new List<string>();
            foreach (var cfg in rows.Select(r => r.Cell.Config).Distinct().Where(c => c.Name != KernelConfig.Baseline))
            {
                var o = rows.Where(r => r.Cell.Config == cfg && r.OverheadPercent is not null).Select(r => r.OverheadPercent!.Value).ToList();
                if (o.Count == 0) continue;
                parts.Add(o.Count == 1 ? FormattableString.Invariant($"{cfg.Name} {o[0]:+0.0;-0.0}%")
                    : FormattableString.Invariant($"{cfg.Name} {o.Min():+0.0;-0.0}% .. {o.Max():+0.0;-0.0}%"));
            }
            if (group.Key.ParamIndex(DirectMap.Param) >= 0)
                foreach (var cfg in rows.Select(r => r.Cell.Config).Distinct())
                    foreach (var dm in rows.Select(r => r.Cell.Value(DirectMap.Param)).Distinct().Where(v => v != DirectMap.Page1G).OrderBy(v => v))
                    {
                        var o = rows.Where(r => r.Cell.Config == cfg && r.Cell.Value(DirectMap.Param) == dm && r.VsGigaDirectMapPercent is not null)
                            .Select(r => r.VsGigaDirectMapPercent!.Value).ToList();
                        if (o.Count > 0)
                            parts.Add(FormattableString.Invariant($"directmap={DirectMap.Name(dm)} {cfg.Name} {o.Min():+0.0;-0.0;0.0}% .. {o.Max():+0.0;-0.0;0.0}% against 1g"));
                    }
            if (parts.Count == 0) continue;
            sb.Append("  ").Append(group.Key.Name.PadRight(9)).Append(group.Key.Name.Length >= 9 ? " " : "").Append(string.Join(";  ", parts));
            var back = rows.Where(r => r.Cell.Config.Name == "pti" && r.OverheadPercent > 0)
                .Select(p => (p, q: rows.FirstOrDefault(r => r.Cell.Config.Name == "pti+pcid" && r.Cell.PointKey == p.Cell.PointKey)))
                .Where(x => x.q?.OverheadPercent is not null)
                .Select(x => 100 * (1 - x.q!.OverheadPercent!.Value / x.p.OverheadPercent!.Value)).ToList();
            if (back.Count > 0)
                sb.Append(back.Count == 1 || Math.Round(back.Min()) == Math.Round(back.Max())
                    ? FormattableString.Invariant($"\n           PCID gives back {back[0]:0}% of KPTI's overhead")
                    : FormattableString.Invariant($"\n           PCID gives back {back.Min():0}% .. {back.Max():0}% of KPTI's overhead"));
            if (param is not null) sb.Append(" (over ").Append(param.Name).Append(' ')
                .Append(string.Join(",", rows.Select(r => r.Cell.Value(param.Name)).Distinct().Select(v => v.ToString(ci)))).Append(')');
            sb.Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>What the columns of the table mean (printed under it).</summary>
    public const string Legend =
        "insns u/k: instructions in user/kernel mode; sysc: system calls; ctxsw: context switches; CR3 fl/nf: flushing/NOFLUSH CR3 writes;\n" +
        "invlpg/pcid: INVLPG/INVPCID; iTLB, dTLB, STLB u/k: misses by user/kernel accesses; walks, refs: page walks and the entries they read;\n" +
        "PSC: walks shortened by paging-structure caches; cycles: modeled; cyc/sc, miss/sc: modeled cycles and TLB (STLB) misses per system call;\n" +
        "overhead: modeled cycles against nopti at the same parameters; vs 1g: modeled cycles against a 1 GiB direct map at the same parameters.\n" +
        "All counted inside the workload's measured region.";
}
