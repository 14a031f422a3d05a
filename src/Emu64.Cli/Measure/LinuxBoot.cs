using System.Globalization;
using System.Security.Cryptography;
using Emu64.Introspection;
using Emu64.Loader;

namespace Emu64.Cli.Measure;

/// <summary>
/// <c>emu64 measure --kernel vmlinuz --initrd initrd.gz</c>: the matrix on Linux (docs/MEASURE.md, "On Linux"). The
/// initramfs of tests/linux/fetch-linux.sh has the workloads as static programs (tests/linux/initramfs/measure-*.c),
/// each marking its region with the user-mode marker (emu64.h); its /init runs the ones the kernel command line names
/// in <c>emu64_measure=NAME:P1:P2,...</c>, in order, and powers off. So one boot runs every cell of a configuration
/// (the cells that need the same kernel command line), and the k-th region with a workload's id is its k-th cell.
/// </summary>
public sealed class LinuxBoot
{
    /// <summary>Guest RAM of a measure boot unless -m says otherwise (512 MiB, as the Linux boot tests use).</summary>
    public const ulong DefaultRam = 512UL << 20;
    /// <summary>
    /// The guest RAM from which <c>emu64 measure</c> offers Linux's default direct map (no <c>nogbpages</c>) as a
    /// 1 GiB cell: 2560 MiB. split_mem_range() (arch/x86/mm/init.c) gives a 1 GiB page only to a whole, aligned GiB of
    /// RAM, never the first; [1 GiB, 2 GiB) is whole usable RAM once RAM passes 2 GiB + 128 KiB (the BIOS keeps the top
    /// 128 KiB). Measured on Debian's kernel: 2 GiB gives DirectMap1G 0 kB, 2560 MiB and 3 GiB give 1048576 kB (sizes in
    /// between are not tried; the boot's DirectMap check would refuse a cell that got none).
    /// </summary>
    public const ulong MinRamFor1G = 2560UL << 20;
    /// <summary>Bound on one boot (a boot to /init is about 1.4e9 instructions with <c>quiet</c>).</summary>
    public const ulong MaxInstructions = 20_000_000_000;
    public const string DoneMarker = "EMU64-MEASURE: done";

    public string KernelPath { get; }
    public string InitrdPath { get; }
    public ulong RamBytes { get; init; } = DefaultRam;
    private readonly byte[] _kernel, _initrd;
    public string KernelSha256 { get; }
    public string InitrdSha256 { get; }

    public LinuxBoot(string kernel, string initrd)
    {
        KernelPath = kernel;
        InitrdPath = initrd;
        _kernel = Cli.ReadFile(kernel, "kernel");
        _initrd = Cli.ReadFile(initrd, "initrd");
        KernelSha256 = Convert.ToHexStringLower(SHA256.HashData(_kernel));
        InitrdSha256 = Convert.ToHexStringLower(SHA256.HashData(_initrd));
    }

    /// <summary>
    /// The command line of a boot running <paramref name="cells"/> in order: the serial console, <c>quiet</c> (the boot
    /// log costs instructions, not the regions), the configuration's options, and the workloads for /init.
    /// </summary>
    public static string Append(string kernelOptions, IEnumerable<Cell> cells) =>
        $"console=ttyS0 quiet {kernelOptions}".TrimEnd() + " emu64_measure=" + string.Join(",", cells.Select(c => c.Workload.LinuxSpec(c.Values)));

    /// <summary>The command that repeats one boot with <c>emu64 run</c> (for the JSON).</summary>
    public string Command(string append, ulong seed, IReadOnlyList<string> tlbArgs) =>
        $"emu64 run {KernelPath} --initrd {InitrdPath} -m {RamBytes >> 20}M --append \"{append}\" --seed {seed} --stats" +
        (tlbArgs.Count > 0 ? " " + string.Join(" ", tlbArgs.Select(a => $"--tlb-config \"{a}\"")) : "") +
        (Clock == Emu64.Mmu.GuestClock.Cycles ? " --clock cycles" : "");

    /// <summary>What a tick of guest time is in the boots (--clock).</summary>
    public Emu64.Mmu.GuestClock Clock { get; init; }

    /// <summary>One boot: every cell of <paramref name="cells"/> (same kernel options) in order; their results in the same order.</summary>
    public List<CellResult> Run(IReadOnlyList<Cell> cells, ulong seed, Mmu.TlbConfig tlb)
    {
        string append = Append(cells[0].LinuxKernelOptions, cells);
        string what = $"Linux boot '{cells[0].LinuxKernelOptions}'";
        var output = new MemoryStream();
        using var m = new Machine(new MachineOptions
        {
            RamBytes = RamBytes, Append = append, Seed = seed, MaxInstructions = MaxInstructions, Output = output, Tlb = tlb, Clock = Clock, CompileInBackground = Cli.DefaultCompileInBackground,
            CompileThreshold = MachineOptions.DefaultCompileThresholdFor(Cli.DefaultCompileInBackground),
        });
        m.LoadKernel(_kernel, Path.GetFileName(KernelPath), [new BootModule(InitrdPath, _initrd)]);
        var tracker = new ModeTracker(m);
        m.Events.Subscribe(tracker);
        var reason = m.Run();
        string console = System.Text.Encoding.Latin1.GetString(output.ToArray());
        if (!console.Contains(DoneMarker))
            throw new MeasureException($"{what}: /init did not finish the workloads ({reason}{(m.StopMessage.Length > 0 ? ": " + m.StopMessage : "")}); " +
                $"last console line: '{CellRunner.LastLine(console)}' (an initramfs without measure-*.c? run tests/linux/fetch-linux.sh)");
        var failed = console.Split('\n').FirstOrDefault(l => l.StartsWith("EMU64-MEASURE:") && l.TrimEnd().EndsWith("failed"));
        if (failed is not null) throw new MeasureException($"{what}: {failed.Trim()}");
        // /init's copy of /proc/meminfo's DirectMap4k/2M/1G lines: the page sizes the kernel really mapped its direct map with.
        var dm = console.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith("EMU64-MEASURE: DirectMap"))
            .Select(l => l["EMU64-MEASURE: ".Length..]).ToList();
        string directMap = string.Join("; ", dm.Select(l => System.Text.RegularExpressions.Regex.Replace(l, @"\s+", " ")));
        foreach (var c in cells.Where(c => c.Workload.ParamIndex(DirectMap.Param) >= 0).Take(1))
        {
            long want = c.Value(DirectMap.Param);
            string key = want switch { DirectMap.Page1G => "DirectMap1G:", DirectMap.Page2M => "DirectMap2M:", _ => "DirectMap4k:" };
            bool has(string k) => dm.Any(l => l.StartsWith(k) && !System.Text.RegularExpressions.Regex.IsMatch(l, @":\s*0 kB"));
            if (!has(key) || (want == DirectMap.Page4K && (has("DirectMap2M:") || has("DirectMap1G:"))) || (want == DirectMap.Page2M && has("DirectMap1G:")))
                throw new MeasureException($"{what}: the direct map is not in {DirectMap.Name(want)} pages ({directMap})" +
                    (want == DirectMap.Page1G ? $": Linux maps RAM with 1 GiB pages only from 1 GiB up, in whole aligned GiBs (-m {MinRamFor1G >> 20}M or more)" : ""));
        }
        var results = new List<CellResult>();
        var seen = new Dictionary<int, int>();
        foreach (var c in cells)
        {
            int id = c.Workload.RegionId, nth = seen[id] = seen.GetValueOrDefault(id) + 1;
            var region = m.KernelInfo.Regions.Where(r => r.Id == id && r.End is not null).Skip(nth - 1).FirstOrDefault()
                ?? throw new MeasureException($"{what}: {c.Workload.Name} {c.ParamText} marked no region {id}");
            var r = CellRunner.Result(c, region, tracker, tlb);
            r.DirectMapReport = directMap;
            r.BootAppend = append;
            results.Add(r);
        }
        return results;
    }
}
