using System.Security.Cryptography;
using Emu64.Introspection;
using Emu64.Loader;
using Emu64.Mmu;

namespace Emu64.Cli.Measure;

/// <summary>The counters of one cell, inside the workload's measured region only.</summary>
public sealed class CellResult
{
    public required Cell Cell { get; init; }
    public required CounterSnapshot Region { get; init; }
    public ulong UserInstructions { get; init; }
    public ulong ContextSwitches { get; init; }
    /// <summary>CR3 writes from a user PGD to a kernel PGD (KPTI's SWITCH_TO_KERNEL_CR3) and how many of them had NOFLUSH.</summary>
    public ulong EntryCr3Writes { get; init; }
    public ulong EntryCr3NoFlush { get; init; }
    /// <summary>Modeled cycles of the region (cost model of the cell's TLB configuration).</summary>
    public double Cycles { get; init; }
    /// <summary>Overhead against the baseline (nopti) at the same parameters, in percent; null without a baseline.</summary>
    public double? OverheadPercent { get; set; }
    /// <summary>
    /// For a workload with a direct-map page size (pagecache): modeled cycles against the same cell with the direct
    /// map in 1 GiB pages, in percent; null without that cell.
    /// </summary>
    public double? VsGigaDirectMapPercent { get; set; }
    /// <summary>On Linux: the direct map's page sizes as /proc/meminfo gave them at the end of the boot ("DirectMap4k: 8192 kB; ...").</summary>
    public string? DirectMapReport { get; set; }
    /// <summary>On Linux: the command line of the boot that ran this cell (with the other cells of its configuration).</summary>
    public string? BootAppend { get; set; }

    public TlbStats Tlb => Region.Tlb;
    public ulong Instructions => Region.Instructions;
    public ulong KernelInstructions => Instructions - UserInstructions;
    public ulong Syscalls => Region.Syscalls;
    public ulong Cr3Writes => Region.Cr3Writes;
    public ulong Cr3NoFlush => Region.Cr3NoFlushWrites;
    public ulong Cr3Flushing => Region.Cr3Writes - Region.Cr3NoFlushWrites;
    public ulong Invlpg => Tlb.Flushes(FlushCause.Invlpg);
    public ulong Invpcid => Tlb.Flushes(FlushCause.Invpcid0) + Tlb.Flushes(FlushCause.Invpcid1) + Tlb.Flushes(FlushCause.Invpcid2) + Tlb.Flushes(FlushCause.Invpcid3);

    /// <summary>Misses of one TLB structure, by user/kernel access; <paramref name="kind"/> -1 sums fetch/read/write.</summary>
    public ulong Misses(TlbLevel level, bool user, int kind = -1)
    {
        if (kind >= 0) return Tlb.Misses(level, user, kind);
        return Tlb.Misses(level, user, Ctr.KindFetch) + Tlb.Misses(level, user, Ctr.KindRead) + Tlb.Misses(level, user, Ctr.KindWrite);
    }

    /// <summary>STLB misses of fetches / of data accesses (user and kernel).</summary>
    public ulong StlbFetchMisses => Misses(TlbLevel.Stlb, false, Ctr.KindFetch) + Misses(TlbLevel.Stlb, true, Ctr.KindFetch);
    public ulong StlbDataMisses => Tlb.TotalMisses(TlbLevel.Stlb) - StlbFetchMisses;

    /// <summary>L1 TLB misses (iTLB + dTLB); each goes on to the STLB.</summary>
    public ulong L1Misses => Tlb.TotalMisses(TlbLevel.Itlb) + Tlb.TotalMisses(TlbLevel.Dtlb);
    /// <summary>
    /// TLB misses: translations found in no TLB level (STLB misses), each starting a page walk. This is what Linux
    /// perf's dTLB-load-misses / iTLB-load-misses count on Intel (the MISS_CAUSES_A_WALK events).
    /// </summary>
    public ulong TlbMisses => Tlb.TotalMisses(TlbLevel.Stlb);
    public ulong Walks => Tlb.Walks;
    public ulong WalkMemRefs => Tlb.WalkMemRefs;
    public ulong PscHits => Tlb.PscHits(2) + Tlb.PscHits(3) + Tlb.PscHits(4) + Tlb.PscHits(5);

    public double? PerSyscall(double v) => Syscalls == 0 ? null : v / Syscalls;
}

/// <summary>
/// Follows the user/kernel boundary events of a run: when the CPU was in user mode (to split the
/// retired instructions), which process each CR3 belongs to (context switches), and KPTI's entry CR3 writes.
/// </summary>
internal sealed class ModeTracker(Machine m) : IBoundaryListener
{
    /// <summary>Mode changes: from instruction count <c>At</c> on, the CPU is in user mode or not.</summary>
    private readonly List<(ulong At, bool User)> _modes = new();
    private readonly List<ulong> _switches = new(), _entries = new(), _entriesNoFlush = new();

    public void OnEvent(in BoundaryEvent e)
    {
        switch (e.Kind)
        {
            // SYSCALL and SYSRET retire after the event (the count does not include them yet): SYSCALL is user
            // work, SYSRET kernel work. IRET likewise. Interrupts and faults arrive between instructions.
            case BoundaryKind.Syscall: _modes.Add((e.Instructions + 1, false)); break;
            case BoundaryKind.Sysret: _modes.Add((e.Instructions + 1, true)); break;
            case BoundaryKind.Iret: _modes.Add((e.Instructions + 1, e.Cpl == 3)); break;
            case BoundaryKind.SoftwareInterrupt: _modes.Add((e.Instructions + 1, false)); break;
            case BoundaryKind.Interrupt:
            case BoundaryKind.Exception: _modes.Add((e.Instructions, false)); break;
            case BoundaryKind.Cr3Write:
                if (Owner(e.OldCr3) != Owner(e.NewCr3)) _switches.Add(e.Instructions);
                if ((e.OldCr3 & 0x1000) != 0 && (e.NewCr3 & 0x1000) == 0 && SamePair(e.OldCr3, e.NewCr3))
                {
                    _entries.Add(e.Instructions);
                    if (e.NoFlush) _entriesNoFlush.Add(e.Instructions);
                }
                break;
        }
    }

    private static ulong Base(ulong cr3) => cr3 & Mmu.Mmu.PhysAddrMask;
    private static bool SamePair(ulong a, ulong b) => (Base(a) & ~0x1FFFUL) == (Base(b) & ~0x1FFFUL);

    /// <summary>
    /// Who a CR3 value belongs to. On the toy kernel: the pid whose PGD (kernel, or user at +4 KiB) it points at, 0 for
    /// anything else (swapper_pg_dir); a live process wins over an exited one whose freed PGD pages it may have been
    /// given. On Linux (no process announced): the 8 KiB-aligned PGD pair itself (a kernel built with PTI allocates
    /// every PGD as two pages, PGD_ALLOCATION_ORDER 1, whether PTI is on or not), so the user/kernel switch of PTI
    /// (bit 12) is no context switch and a change of address space is.
    /// </summary>
    private ulong Owner(ulong cr3)
    {
        ulong b = Base(cr3);
        if (m.KernelInfo.Processes.Count == 0) return b & ~0x1FFFUL;
        ulong found = 0;
        foreach (var p in m.KernelInfo.Processes.Values)
            if (p.KernelPgd == b || p.KernelPgd + 0x1000 == b)
            {
                if (!p.Exited) return (ulong)p.Pid;
                found = (ulong)p.Pid;
            }
        return found;
    }

    /// <summary>User-mode instructions retired in [from, to).</summary>
    public ulong UserInstructions(ulong from, ulong to)
    {
        ulong total = 0;
        bool user = false;
        ulong at = 0;
        foreach (var (when, u) in _modes)
        {
            if (when > at) { if (user) total += Overlap(at, when, from, to); at = when; }
            user = u;
        }
        if (user && to > at) total += Overlap(at, to, from, to);
        return total;
    }

    private static ulong Overlap(ulong a, ulong b, ulong from, ulong to)
    {
        ulong lo = Math.Max(a, from), hi = Math.Min(b, to);
        return hi > lo ? hi - lo : 0;
    }

    private static ulong CountIn(List<ulong> stamps, ulong from, ulong to) => (ulong)stamps.Count(s => s > from && s < to);
    public ulong ContextSwitches(ulong from, ulong to) => CountIn(_switches, from, to);
    public ulong EntryWrites(ulong from, ulong to) => CountIn(_entries, from, to);
    public ulong EntryNoFlush(ulong from, ulong to) => CountIn(_entriesNoFlush, from, to);
}

/// <summary>Runs cells: each one a fresh in-process machine booting the bundled toy kernel.</summary>
public sealed class CellRunner
{
    /// <summary>Bound on one cell's run (no workload of the matrix comes near it).</summary>
    public const ulong MaxInstructionsPerCell = 4_000_000_000;

    private readonly byte[] _image;
    /// <summary>The kernel's file name, which the guest sees on its command line: the same in any checkout.</summary>
    private readonly string _guestName;
    private readonly Func<TlbConfig?> _tlb;

    public ulong Seed { get; init; }
    /// <summary>What a tick of guest time is in every cell (--clock).</summary>
    public Emu64.Mmu.GuestClock Clock { get; init; }
    /// <summary>The --tlb-config arguments (recorded in the JSON with each cell's full TLB configuration).</summary>
    public IReadOnlyList<string> TlbArgs { get; init; } = Array.Empty<string>();
    public string ImageSha256 { get; }
    /// <summary>The TLB configuration every cell uses (defaults when --tlb-config is not given).</summary>
    public TlbConfig TlbConfig => _tlb() ?? new TlbConfig();

    /// <summary>Set when the cells boot Linux (--kernel/--initrd) rather than the bundled toy kernel.</summary>
    public LinuxBoot? Linux { get; init; }

    /// <summary>Cells with the same key run in one boot: on Linux those with the same kernel options, on the toy kernel each alone.</summary>
    public string BootKey(Cell c) => Linux is null ? c.Index.ToString(System.Globalization.CultureInfo.InvariantCulture) : c.LinuxKernelOptions;

    /// <summary>Runs the cells of one boot (<see cref="BootKey"/>), in order.</summary>
    public List<CellResult> RunBoot(IReadOnlyList<Cell> cells) =>
        Linux is null ? cells.Select(Run).ToList() : Linux.Run(cells, Seed, TlbConfig);

    /// <summary>The command that repeats a cell's run (for the JSON).</summary>
    public string Command(CellResult r) => Linux is not null ? Linux.Command(r.BootAppend ?? r.Cell.Append, Seed, TlbArgs)
        : $"emu64 boot --append \"{r.Cell.Append}\" --seed {Seed} --stats" + (TlbArgs.Count > 0 ? " " + string.Join(" ", TlbArgs.Select(a => $"--tlb-config \"{a}\"")) : "")
          + (Clock == Emu64.Mmu.GuestClock.Cycles ? " --clock cycles" : "");

    public CellRunner(string imagePath, Func<TlbConfig?> tlbConfig)
    {
        _guestName = Path.GetFileName(imagePath);
        _image = File.ReadAllBytes(imagePath);
        _tlb = tlbConfig;
        ImageSha256 = Convert.ToHexStringLower(SHA256.HashData(_image));
    }

    public CellResult Run(Cell cell)
    {
        var output = new MemoryStream();
        var tlb = TlbConfig;
        using var m = new Machine(new MachineOptions
        {
            Append = cell.Append, Seed = Seed, MaxInstructions = MaxInstructionsPerCell, Output = output, Tlb = tlb, Clock = Clock, CompileInBackground = Cli.DefaultCompileInBackground,
            CompileThreshold = MachineOptions.DefaultCompileThresholdFor(Cli.DefaultCompileInBackground),
        });
        m.LoadKernel(_image, _guestName, Array.Empty<BootModule>());
        var tracker = new ModeTracker(m);
        m.Events.Subscribe(tracker);
        var reason = m.Run();
        string console = System.Text.Encoding.Latin1.GetString(output.ToArray());
        if (reason != StopReason.DebugExit || m.ExitCode != 1)
            throw new MeasureException($"cell {cell.Workload.Name} {cell.ParamText} {cell.Config.Name}: the kernel did not finish cleanly " +
                $"({reason}, exit {m.ExitCode >> 1}{(m.StopMessage.Length > 0 ? ": " + m.StopMessage : "")}); last console line: '{LastLine(console)}'");
        var region = m.KernelInfo.Regions.FirstOrDefault(r => r.Id == cell.Workload.RegionId && r.End is not null)
            ?? throw new MeasureException($"cell {cell.Workload.Name} {cell.ParamText} {cell.Config.Name}: the workload marked no region {cell.Workload.RegionId}");
        return Result(cell, region, tracker, tlb);
    }

    /// <summary>A cell's result from its region and the boundary events of its run.</summary>
    internal static CellResult Result(Cell cell, Region region, ModeTracker tracker, TlbConfig tlb)
    {
        var d = region.Delta;
        ulong from = region.Begin.Instructions, to = region.End!.Value.Instructions;
        return new CellResult
        {
            Cell = cell,
            Region = d,
            UserInstructions = tracker.UserInstructions(from, to),
            ContextSwitches = tracker.ContextSwitches(from, to),
            EntryCr3Writes = tracker.EntryWrites(from, to),
            EntryCr3NoFlush = tracker.EntryNoFlush(from, to),
            Cycles = d.Tlb.ModeledCycles(d.Instructions, tlb.Cost),
        };
    }

    internal static string LastLine(string s)
    {
        var lines = s.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return lines.Length == 0 ? "" : lines[^1].Trim();
    }
}

public sealed class MeasureException(string message) : Exception(message);
