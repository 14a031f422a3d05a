using Emu64.Cli;
using Emu64.Cli.Measure;
using Emu64.Debugging;
using Emu64.Loader;
using Emu64.Mmu;

namespace Emu64.Tests.Measure;

/// <summary>
/// The toy kernel's <c>directmap=4k|2m|1g</c> (and Linux's <c>nogbpages</c>): the page tables it builds really map
/// the direct map with the page size asked, read back by walking the guest's own swapper_pg_dir.
/// </summary>
[Trait("Category", "Measure")]
public class DirectMapOptionTests
{
    /// <summary>Boots the toy kernel with <paramref name="options"/> to its power-off; the machine and its console.</summary>
    private static (Machine M, string Console) Boot(string options)
    {
        var output = new MemoryStream();
        var m = new Machine(new MachineOptions { Append = "init=hello " + options, MaxInstructions = 200_000_000, Output = output });
        string path = Cli.Cli.BundledKernelPath();
        m.LoadKernel(File.ReadAllBytes(path), path, Array.Empty<BootModule>());
        var reason = m.Run();
        string console = System.Text.Encoding.Latin1.GetString(output.ToArray());
        Assert.True(reason == StopReason.DebugExit, $"{reason}\n{console}");
        Assert.Contains("hello: Hello from user space", console);
        return (m, console);
    }

    [Theory]
    [InlineData("nokaslr directmap=4k", 4096UL, "4K")]
    [InlineData("nokaslr directmap=2m", 2UL << 20, "2M")]
    [InlineData("nokaslr directmap=1g", 1UL << 30, "1G")]
    [InlineData("nokaslr nogbpages", 2UL << 20, "2M")]
    [InlineData("directmap=4k pti=off la57", 4096UL, "4K")]
    [InlineData("directmap=2m", 2UL << 20, "2M")]
    public void The_direct_map_is_mapped_with_the_page_size_the_command_line_asks_for(string options, ulong pageSize, string printed)
    {
        var (m, console) = Boot(options);
        Assert.Contains($", {printed} pages, NX", console);
        ulong pageOffset = m.KernelInfo.PageOffset ?? throw new Xunit.Sdk.XunitException("no PAGE_OFFSET announced");
        ulong swapper = m.KernelInfo.SwapperPgd ?? throw new Xunit.Sdk.XunitException("no swapper_pg_dir announced");
        ulong ram = new MachineOptions().RamBytes;
        // Frames across RAM: the first page, the kernel image (16 MiB), the middle, the last page below 127 MiB.
        foreach (ulong pa in new ulong[] { 0x1000, 0x1000000 + 0x123, ram / 2 + 0x5008, ram - (2UL << 20) + 0x10 })
        {
            var w = PageWalker.Walk(m, pageOffset + pa, swapper);
            Assert.True(w.Mapped, $"PAGE_OFFSET + 0x{pa:x} is not mapped");
            Assert.Equal(pageSize, w.PageSize);
            Assert.Equal(pa, w.Physical);
            Assert.True(w.Writable && w.NoExec && !w.User, $"PAGE_OFFSET + 0x{pa:x}: not RW, NX, supervisor");
            // The leaf is at the level of the page size: PTE (1), PDE (2) or PDPTE (3), with PS set above the PTE.
            var leaf = w.Steps[^1];
            Assert.Equal(pageSize switch { 4096UL => 1, 2UL << 20 => 2, _ => 3 }, leaf.Level);
            Assert.Equal(leaf.Level > 1, (leaf.Entry & PteFlags.Huge) != 0);
        }
    }

    [Fact]
    public void Without_the_option_the_direct_map_uses_1_GiB_pages_when_the_cpu_has_them()
    {
        var (m, console) = Boot("nokaslr");
        Assert.Contains("1g-pages=1", console);
        var w = PageWalker.Walk(m, m.KernelInfo.PageOffset!.Value + 0x200000, m.KernelInfo.SwapperPgd!.Value);
        Assert.Equal(1UL << 30, w.PageSize);
    }

    [Fact]
    public void An_unknown_page_size_is_said_in_one_line_and_the_default_is_used()
    {
        var (_, console) = Boot("nokaslr directmap=8k");
        Assert.Contains("directmap: unknown page size '8k' (4k, 2m or 1g): the default\n", console);
        Assert.Contains(", 1G pages, NX", console);
    }
}

/// <summary>The pagecache workload swept over working set and direct-map page size, measured once for the class.</summary>
public sealed class DirectMapSweep
{
    public static readonly string[] Args =
    {
        "--workload", "pagecache", "--sweep", "pages=16,256,2048", "--sweep", "bytes=64", "--sweep", "rounds=2", "--quiet",
    };

    public MeasureCommand.Outcome Outcome { get; } = MeasureCommand.Measure(MeasureOptions.Parse(Args.Concat(new[] { "--jobs", "2" }).ToArray()), null);

    public CellResult At(long pages, long directMap) =>
        Outcome.Results.Single(r => r.Cell.Value("pages") == pages && r.Cell.Value(DirectMap.Param) == directMap);
}

[Trait("Category", "Measure")]
public class DirectMapSweepTests(DirectMapSweep s) : IClassFixture<DirectMapSweep>
{
    [Fact]
    public void The_sweep_is_pages_by_page_size_under_nopti_with_the_kernel_option_on_each_command_line()
    {
        Assert.Equal(9, s.Outcome.Results.Count);
        Assert.All(s.Outcome.Results, r => Assert.Equal("nopti", r.Cell.Config.Name));
        Assert.Equal("init=pagecache:256:2:64 nokaslr pti=off directmap=4k", s.At(256, DirectMap.Page4K).Cell.Append);
        Assert.EndsWith(" directmap=1g", s.At(16, DirectMap.Page1G).Cell.Append);
    }

    [Theory]
    [InlineData(16)]
    [InlineData(256)]
    [InlineData(2048)]
    public void The_same_work_is_done_whatever_the_page_size(long pages)
    {
        var cells = DirectMap.Sizes.Select(d => s.At(pages, d)).ToList();
        Assert.Single(cells.Select(r => r.Instructions).Distinct());
        Assert.All(cells, r => Assert.Equal(2UL * 2 * (ulong)pages, r.Syscalls));   // rounds x (pread64 + pwrite64) x pages
    }

    [Theory]
    [InlineData(256)]
    [InlineData(2048)]
    public void A_4k_direct_map_has_more_dtlb_and_stlb_misses_walks_and_cycles_than_2m_and_2m_no_fewer_than_1g(long pages)
    {
        CellResult k4 = s.At(pages, DirectMap.Page4K), m2 = s.At(pages, DirectMap.Page2M), g1 = s.At(pages, DirectMap.Page1G);
        ulong D(CellResult r) => r.Misses(TlbLevel.Dtlb, false);
        ulong S(CellResult r) => r.Misses(TlbLevel.Stlb, false);
        Assert.True(D(k4) > D(m2) && D(m2) >= D(g1), $"kernel dTLB misses 4k {D(k4)}, 2m {D(m2)}, 1g {D(g1)}");
        Assert.True(S(k4) > S(m2) && S(m2) >= S(g1), $"kernel STLB misses 4k {S(k4)}, 2m {S(m2)}, 1g {S(g1)}");
        Assert.True(k4.Walks > m2.Walks && m2.Walks >= g1.Walks, $"walks 4k {k4.Walks}, 2m {m2.Walks}, 1g {g1.Walks}");
        Assert.True(k4.Cycles > m2.Cycles && m2.Cycles >= g1.Cycles, $"cycles 4k {k4.Cycles}, 2m {m2.Cycles}, 1g {g1.Cycles}");
        Assert.True(k4.VsGigaDirectMapPercent > 0, $"4k against 1g: {k4.VsGigaDirectMapPercent}");
        Assert.Equal(0.0, g1.VsGigaDirectMapPercent);
    }

    [Fact]
    public void With_4k_pages_the_kernel_misses_once_per_copy_once_the_working_set_is_past_the_stlb()
    {
        // 2048 frames need 2048 direct-map translations: more than the 1536-entry STLB holds, so (nearly) every
        // copy walks; at 16 frames everything stays in the 64-entry L1 dTLB after the first round.
        var big = s.At(2048, DirectMap.Page4K);
        Assert.True(big.Misses(TlbLevel.Stlb, false) >= big.Syscalls, $"{big.Misses(TlbLevel.Stlb, false)} kernel STLB misses for {big.Syscalls} calls");
        var small = s.At(16, DirectMap.Page4K);
        Assert.True(small.Misses(TlbLevel.Dtlb, false) < (ulong)small.Syscalls, $"{small.Misses(TlbLevel.Dtlb, false)} kernel dTLB misses for {small.Syscalls} calls");
        // A 1 GiB direct map reaches all 128 MiB of RAM with one entry: no kernel walk for the copies at all.
        Assert.Equal(0UL, s.At(2048, DirectMap.Page1G).Misses(TlbLevel.Stlb, false));
    }

    [Fact]
    public void Measuring_again_with_one_job_gives_the_same_csv_rows()
    {
        // Three of the fixture's cells again, one at a time in a fresh matrix: every counter the same, digit for digit.
        var again = MeasureCommand.Measure(MeasureOptions.Parse(new[]
        {
            "--workload", "pagecache", "--sweep", "pages=256", "--sweep", "bytes=64", "--sweep", "rounds=2", "--jobs", "1", "--quiet",
        }), null);
        var rows = s.Outcome.Csv.Split('\n').ToHashSet();
        var fresh = again.Csv.TrimEnd('\n').Split('\n');
        Assert.Equal(s.Outcome.Csv.Split('\n')[0], fresh[0]);
        Assert.Equal(4, fresh.Length);
        Assert.All(fresh, line => Assert.Contains(line, rows));
    }

    [Fact]
    public void The_table_csv_and_chart_show_the_page_size()
    {
        Assert.Contains("directmap", s.Outcome.Table);
        Assert.Contains("vs 1g", s.Outcome.Table);
        Assert.Contains("directmap=4k nopti", s.Outcome.Summary);
        var header = s.Outcome.Csv.Split('\n')[0].Split(',');
        Assert.Contains("directmap", header);
        Assert.Contains("vs_1g_direct_map_percent", header);
        foreach (var svg in new[] { s.Outcome.DirectMapSvg!, s.Outcome.DirectMapWalksSvg! })
        {
            var doc = System.Xml.Linq.XDocument.Parse(svg);
            System.Xml.Linq.XNamespace ns = "http://www.w3.org/2000/svg";
            Assert.Equal(3, doc.Descendants(ns + "polyline").Count());
            var texts = doc.Descendants(ns + "text").Select(t => t.Value).ToList();
            foreach (var d in new[] { "directmap=4k", "directmap=2m", "directmap=1g" }) Assert.Contains(d, texts);
        }
        Assert.Null(s.Outcome.OverheadSvg);
    }
}
