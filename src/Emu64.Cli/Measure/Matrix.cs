using System.Globalization;

namespace Emu64.Cli.Measure;

/// <summary>
/// A kernel configuration of the matrix: a name, the toy kernel's command-line options and Linux's
/// (Documentation/admin-guide/kernel-parameters.txt: <c>nopti</c>, <c>pti=on</c>, <c>nopcid</c>, <c>noinvpcid</c>).
/// </summary>
public sealed record KernelConfig(string Name, string KernelOptions, string Description, string LinuxOptions)
{
    /// <summary>The configurations <c>--configs</c> accepts, in the order tables and charts show them.</summary>
    public static readonly IReadOnlyList<KernelConfig> All = new KernelConfig[]
    {
        new("nopti", "pti=off", "no KPTI: one page table, kernel pages global (the baseline)", "nopti"),
        new("pti", "pti=on nopcid", "KPTI without PCID: every CR3 write flushes the TLB", "pti=on nopcid"),
        new("pti+pcid", "pti=on noinvpcid", "KPTI with PCID (user/kernel PCIDs, NOFLUSH), no INVPCID", "pti=on noinvpcid"),
        new("pti+pcid+invpcid", "pti=on", "KPTI with PCID and INVPCID (single user-page flushes)", "pti=on"),
        new("nopti+noinvpcid", "pti=off noinvpcid", "no KPTI, PCID without INVPCID (the baseline of pti+pcid's INVPCID comparison)", "nopti noinvpcid"),
    };

    /// <summary>The configurations run when --configs is not given (the fifth only on request).</summary>
    public static IReadOnlyList<KernelConfig> Defaults => All.Take(4).ToList();

    /// <summary>The options of this configuration for the toy kernel or for Linux.</summary>
    public string Options(bool linux) => linux ? LinuxOptions : KernelOptions;

    public const string Baseline = "nopti";

    public static KernelConfig Find(string name) =>
        All.FirstOrDefault(c => c.Name == name)
        ?? throw new CliException($"unknown configuration '{name}' (known: {string.Join(", ", All.Select(c => c.Name))})");
}

/// <summary>
/// One workload parameter: its name, default, allowed range and what it means. <paramref name="Allowed"/>, when
/// given, lists the only values it takes (the direct map's page sizes); <paramref name="Format"/> prints a value.
/// </summary>
public sealed record WorkloadParam(string Name, long Default, long Min, long Max, string Meaning,
    IReadOnlyList<long>? Allowed = null, Func<long, string>? Format = null)
{
    public string Show(long v) => Format?.Invoke(v) ?? v.ToString(CultureInfo.InvariantCulture);
}

/// <summary>The page sizes of the toy kernel's direct map (<c>directmap=4k|2m|1g</c>, firmware/vm.c), in bytes.</summary>
public static class DirectMap
{
    public const long Page4K = 4096, Page2M = 2L << 20, Page1G = 1L << 30;
    public static readonly long[] Sizes = { Page4K, Page2M, Page1G };
    /// <summary>"4k", "2m", "1g": the kernel option's value, also how tables and charts name the size.</summary>
    public static string Name(long bytes) => bytes switch { Page4K => "4k", Page2M => "2m", Page1G => "1g", _ => bytes.ToString(CultureInfo.InvariantCulture) };
    public const string Param = "directmap";

    /// <summary>
    /// Linux's options for a direct-map page size: 1 GiB pages are its default when the CPU has them (Emu64 sets
    /// CPUID.80000001H:EDX.Page1GB) and CONFIG_X86_DIRECT_GBPAGES=y (Debian's); <c>nogbpages</c> leaves 2 MiB pages;
    /// 4 KiB pages also need 2 MiB pages refused: Debian's kernel has no CONFIG_DEBUG_PAGEALLOC (whose
    /// <c>debug_pagealloc=on</c> would do it), so <c>clearcpuid=3</c> hides X86_FEATURE_PSE (word 0, bit 3; not a
    /// required feature on x86-64) from the kernel, and probe_page_size_mask() then allows no 2 MiB mapping.
    /// </summary>
    public static string LinuxOptions(long bytes) => bytes switch { Page4K => "nogbpages clearcpuid=3", Page2M => "nogbpages", _ => "" };
}

/// <summary>
/// A toy-kernel workload (firmware/uprogs.c): the program's <c>init=</c> spec built from its parameters,
/// the measured region it marks, and the sweep the default matrix runs.
/// </summary>
public sealed record Workload(string Name, int RegionId, IReadOnlyList<WorkloadParam> Params, Func<IReadOnlyList<long>, string> Init,
    string SweepParam, IReadOnlyList<long> DefaultSweep, string Description,
    Func<IReadOnlyList<long>, string>? KernelOptions = null,
    IReadOnlyList<(string Param, long[] Values)>? MoreSweeps = null,
    IReadOnlyList<string>? DefaultConfigs = null)
{
    /// <summary>Linux's workload (tests/linux/initramfs/measure-NAME.c) at these parameters, as /init's emu64_measure= takes it.</summary>
    public string LinuxSpec(IReadOnlyList<long> p) => Name + ":" + string.Join(":", Linux(p).Select(v => v.ToString(CultureInfo.InvariantCulture)));

    /// <summary>The parameters the Linux program takes (the direct-map page size is a kernel option there, not a program argument).</summary>
    private IEnumerable<long> Linux(IReadOnlyList<long> p) => p.Where((_, i) => Params[i].Name != DirectMap.Param);

    /// <summary>Linux's kernel options for this workload at these parameters ("" if none).</summary>
    public string LinuxKernelOptions(IReadOnlyList<long> p) => ParamIndex(DirectMap.Param) is int k and >= 0 ? DirectMap.LinuxOptions(p[k]) : "";

    public static readonly IReadOnlyList<Workload> All = new Workload[]
    {
        new("syscalls", 1,
            new WorkloadParam[]
            {
                new("calls", 200, 1, 1_000_000, "getpid() calls in the measured region"),
                new("work", 0, 0, 1_000_000, "iterations of user-mode register work before each call (2 instructions each): lower = higher system-call rate"),
            },
            p => $"syscalls:{p[0]}:{p[1]}", "work", new long[] { 0, 10, 30, 100, 300, 1000, 3000 },
            "getpid() in a loop with user work between calls: the cost of crossing the boundary against the system-call rate"),
        new("touch", 2,
            new WorkloadParam[]
            {
                new("pages", 64, 1, 16384, "working set: distinct 4 KiB pages written each round"),
                new("rounds", 10, 1, 100_000, "rounds of (write every page once, user work, one getpid())"),
                new("work", 1000, 0, 1_000_000, "iterations of user register work each round (2 instructions each), so the system-call rate stays about the same as pages varies"),
            },
            p => $"touch:{p[0]}:{p[1]}:{p[2]}", "pages", new long[] { 4, 16, 64, 256, 1024 },
            "a working set written between system calls at about the same rate: what the flushes cost in TLB refills"),
        new("pingpong", 3,
            new WorkloadParam[]
            {
                new("yields", 100, 1, 100_000, "sched_yield() calls of each process"),
                new("procs", 2, 2, 32, "processes yielding to each other (more than 6 run out of PCIDs); on Linux a ring of processes passing a byte through pipes"),
            },
            p => $"pingpong:{p[0]}:{p[1]}", "procs", new long[] { 2, 4, 8 },
            "processes yielding to each other: context switches (CR3 and PCID changes)"),
        new("mmap", 4,
            new WorkloadParam[]
            {
                new("cycles", 10, 1, 100_000, "mmap/touch/munmap cycles"),
                new("pages", 4, 1, 4096, "pages per mmap (above 33 the kernel flushes the whole PCID)"),
            },
            p => $"mmap:{p[0]}:{p[1]}", "pages", new long[] { 1, 4, 16, 64 },
            "map, touch and unmap: the kernel's TLB shootdowns (INVLPG, INVPCID, deferred flushes)"),
        new("pagecache", 5,
            new WorkloadParam[]
            {
                new("pages", 256, 1, 16384, "working set: pages of a file in the page cache, their frames spread across RAM, each read and written once a round"),
                new("rounds", 2, 1, 100_000, "rounds of (pread64() every page into a user buffer, then pwrite64() it back to every page)"),
                new("bytes", 4096, 1, 4096, "bytes each pread64()/pwrite64() copies through the direct map"),
                new(DirectMap.Param, DirectMap.Page1G, DirectMap.Page4K, DirectMap.Page1G, "page size of the kernel's direct map (directmap=4k|2m|1g)",
                    DirectMap.Sizes, DirectMap.Name),
            },
            p => $"pagecache:{p[0]}:{p[1]}:{p[2]}", "pages", new long[] { 16, 64, 256, 1024, 4096 },
            "read and write of a file in the page cache: the kernel copies through the direct map, mapped with 4 KiB, 2 MiB or 1 GiB pages",
            KernelOptions: p => $"directmap={DirectMap.Name(p[3])}",
            MoreSweeps: new[] { (DirectMap.Param, DirectMap.Sizes) },
            DefaultConfigs: new[] { "nopti" }),
    };

    /// <summary>What <c>emu64 measure</c> runs without --workload: the KPTI/PCID workloads (pagecache is asked for by name).</summary>
    public static IReadOnlyList<Workload> Defaults => All.Where(w => w.Name != "pagecache").ToList();

    public static Workload Find(string name) =>
        All.FirstOrDefault(w => w.Name == name)
        ?? throw new CliException($"unknown workload '{name}' (known: {string.Join(", ", All.Select(w => w.Name))})");

    public int ParamIndex(string name) => Params.ToList().FindIndex(p => p.Name == name);
}

/// <summary>One cell of the matrix: a workload at given parameters under one kernel configuration, on the toy kernel or on Linux.</summary>
public sealed record Cell(int Index, Workload Workload, IReadOnlyList<long> Values, KernelConfig Config, bool Linux = false)
{
    /// <summary>The kernel command line this cell boots with (for Linux: that of a boot running this cell alone).</summary>
    public string Append => Linux ? LinuxBoot.Append(LinuxKernelOptions, new[] { this })
        : $"init={Workload.Init(Values)} nokaslr {Config.KernelOptions}" + (Workload.KernelOptions is null ? "" : " " + Workload.KernelOptions(Values));

    /// <summary>Linux's kernel options of this cell: the configuration's and the workload's (the direct map's page size).</summary>
    public string LinuxKernelOptions => (Config.LinuxOptions + " " + Workload.LinuxKernelOptions(Values)).Trim();

    /// <summary>The kernel options of the configuration as the report shows them.</summary>
    public string KernelOptions => Linux ? LinuxKernelOptions : Config.KernelOptions;

    /// <summary>"work=100 calls=200": the parameters, for tables and progress lines.</summary>
    public string ParamText => string.Join(" ", Workload.Params.Select((p, i) => $"{p.Name}={p.Show(Values[i])}"));

    /// <summary>Identifies the parameter point (same for every configuration at those parameters).</summary>
    public string PointKey => Workload.Name + ":" + string.Join(":", Values.Select(v => v.ToString(CultureInfo.InvariantCulture)));

    public long Value(string param) => Values[Workload.ParamIndex(param)];
}

/// <summary>What to run: workloads, configurations, sweeps (parsed from the command line).</summary>
public sealed class MatrixSpec
{
    public List<Workload> Workloads = new();
    public List<KernelConfig> Configs = new();
    /// <summary>Cells boot Linux (--kernel) instead of the toy kernel.</summary>
    public bool Linux;
    /// <summary>Guest RAM of the Linux boots (-m): whether Linux has a 1 GiB page to give its direct map.</summary>
    public ulong LinuxRamBytes = LinuxBoot.DefaultRam;
    /// <summary>False when --configs was not given: a workload with its own default configurations uses those.</summary>
    public bool ConfigsGiven;
    /// <summary>
    /// Sweeps in the order given: parameter (PARAM for every selected workload that has it, or WORKLOAD.PARAM)
    /// and its values. A workload whose default sweep parameter is not swept here keeps its default sweep.
    /// </summary>
    public List<(string Param, List<long> Values)> Sweeps = new();

    /// <summary>The parameter of workload <paramref name="w"/> a sweep applies to, or null.</summary>
    public static string? Target(Workload w, string sweepParam)
    {
        int dot = sweepParam.IndexOf('.');
        if (dot >= 0 && sweepParam[..dot] != w.Name) return null;
        string p = dot >= 0 ? sweepParam[(dot + 1)..] : sweepParam;
        return w.ParamIndex(p) >= 0 ? p : null;
    }

    /// <summary>The cells, in a fixed order: workload, parameter point (sweeps nested in the order given), configuration.</summary>
    public List<Cell> Cells()
    {
        var cells = new List<Cell>();
        foreach (var w in Workloads)
        {
            var sweeps = Sweeps.Where(s => Target(w, s.Param) is not null).Select(s => (Param: Target(w, s.Param)!, s.Values)).ToList();
            if (!sweeps.Any(s => s.Param == w.SweepParam)) sweeps.Insert(0, (w.SweepParam, w.DefaultSweep.ToList()));
            foreach (var (param, values) in w.MoreSweeps ?? Array.Empty<(string, long[])>())
                if (!sweeps.Any(s => s.Param == param))
                    // Linux maps RAM with 1 GiB pages only for whole aligned GiBs from 1 GiB up (LinuxBoot.MinRamFor1G):
                    // with less RAM the default direct-map sweep on Linux is 4k, 2m (asking for 1g is refused, saying why).
                    sweeps.Add((param, values.Where(v => !(Linux && LinuxRamBytes < LinuxBoot.MinRamFor1G && param == DirectMap.Param && v == DirectMap.Page1G)).ToList()));
            var configs = ConfigsGiven || w.DefaultConfigs is null ? Configs : Configs.Where(c => w.DefaultConfigs.Contains(c.Name)).ToList();
            var points = new List<long[]> { w.Params.Select(p => p.Default).ToArray() };
            foreach (var (param, values) in sweeps)
            {
                int k = w.ParamIndex(param);
                var next = new List<long[]>();
                foreach (var pt in points)
                    foreach (var v in values)
                    {
                        var copy = (long[])pt.Clone();
                        copy[k] = v;
                        next.Add(copy);
                    }
                points = next;
            }
            foreach (var pt in points)
                foreach (var c in configs)
                    cells.Add(new Cell(cells.Count, w, pt, c, Linux));
        }
        return cells;
    }
}
