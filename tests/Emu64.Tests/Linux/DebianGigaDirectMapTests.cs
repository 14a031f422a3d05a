using System.Buffers.Binary;
using System.Text.RegularExpressions;
using Emu64.Debugging;
using Emu64.Forensics;
using Emu64.Loader;
using Emu64.Tests.Support;

namespace Emu64.Tests.Linux;

/// <summary>
/// One boot of Debian's kernel with 3 GiB of RAM and its default direct map (no <c>nogbpages</c>): the 1 GiB cell of
/// <c>emu64 measure --workload pagecache -m 3G</c> (docs/MEASURE.md, "The direct map's page size on Linux"), i.e.
/// <c>console=ttyS0 quiet nopti emu64_measure=pagecache:256:2:4096</c>; /init prints /proc/meminfo's DirectMap lines,
/// runs the workload and powers off. The machine is kept for the checks (and given back at the end: 3 GiB of host
/// address space, of which the guest touched a few hundred MiB).
/// </summary>
public sealed class DebianGigaBoot : IDisposable
{
    public const ulong Ram = 3UL << 30;
    public const string Append = "console=ttyS0 quiet nopti emu64_measure=pagecache:256:2:4096";
    public Machine? Machine { get; }
    public string Console { get; } = "";

    public DebianGigaBoot()
    {
        if (DebianKernel.SkipReason() != null) return;
        var watch = new GuestConsole();
        var m = new Machine(new MachineOptions { RamBytes = Ram, Append = Append, MaxInstructions = DebianBoot.MaxInstructions, Output = watch });
        watch.Machine = m;
        m.LoadKernel(File.ReadAllBytes(DebianKernel.Vmlinuz), DebianKernel.Vmlinuz, [new BootModule(DebianKernel.Initrd, File.ReadAllBytes(DebianKernel.Initrd))]);
        m.Run();
        Machine = m;
        Console = watch.Text;
    }

    public void Dispose() => Machine?.Dispose();
}

/// <summary>
/// Linux's direct map with 1 GiB pages, which needs RAM beyond 2 GiB: what the kernel reports in /proc/meminfo, what
/// its page tables hold (read with the debugger's walker), and <c>emu64 analyze</c> on the 3 GiB dump.
/// </summary>
[Trait("Category", "LinuxBoot")]
public class DebianGigaDirectMapTests(DebianGigaBoot boot) : IClassFixture<DebianGigaBoot>
{
    private long Kb(string line)
    {
        var m = Regex.Match(boot.Console, @"EMU64-MEASURE: " + line + @":\s+(\d+) kB");
        Assert.True(m.Success, $"/init printed {line} ({boot.Console.Length} bytes of console)");
        return long.Parse(m.Groups[1].Value);
    }

    [DebianKernelFact]
    public void With_3_GiB_Linux_maps_the_whole_aligned_GiB_from_1_to_2_GiB_with_one_1_GiB_page()
    {
        Assert.Contains("EMU64-MEASURE: done", boot.Console);
        // split_mem_range() gives a 1 GiB page to [1 GiB, 2 GiB) only: the first GiB holds the 4 KiB-mapped first
        // megabyte, and [2 GiB, 3 GiB) ends 128 KiB short (the BIOS's reserved top of RAM).
        Assert.Equal(1L << 20, Kb("DirectMap1G"));
        // The three sizes together map all RAM of the e820 map: 3 GiB less the BIOS's 128 KiB.
        Assert.Equal((long)(E820.UsableTop(DebianGigaBoot.Ram) >> 10), Kb("DirectMap4k") + Kb("DirectMap2M") + Kb("DirectMap1G"));
    }

    [DebianKernelFact]
    public void The_page_tables_map_PAGE_OFFSET_plus_1_GiB_with_a_1_GiB_page_and_the_GiBs_around_it_with_smaller_ones()
    {
        var m = boot.Machine!;
        // page_offset_base (KASLR moves PAGE_OFFSET): found with the kernel's own kallsyms in 3 GiB of RAM (1 GiB windows).
        var table = Kallsyms.Find(m.Memory) ?? throw new Xunit.Sdk.XunitException("no kallsyms tables in guest RAM");
        ulong sym = table.Entries.First(e => e.Name == "page_offset_base").Address;
        var buf = new byte[8];
        Assert.Equal(8, PageWalker.ReadLinear(m, sym, buf));
        ulong pageOffset = BinaryPrimitives.ReadUInt64LittleEndian(buf);
        Assert.Equal(0UL, pageOffset & ((1UL << 30) - 1));

        var giga = PageWalker.Walk(m, pageOffset + (1UL << 30) + 0x12345);
        Assert.True(giga.Mapped);
        Assert.Equal(1UL << 30, giga.PageSize);
        Assert.Equal((1UL << 30) + 0x12345, giga.Physical);
        foreach (ulong pa in new[] { 0x30000000UL, (2UL << 30) + 0x12345, E820.UsableTop(DebianGigaBoot.Ram) - 0x1000 })
        {
            var w = PageWalker.Walk(m, pageOffset + pa);
            Assert.True(w.Mapped, $"PAGE_OFFSET + 0x{pa:x} is mapped");
            Assert.Equal(pa, w.Physical);
            Assert.True(w.PageSize < 1UL << 30, $"PAGE_OFFSET + 0x{pa:x}: page size 0x{w.PageSize:x}");
        }
    }

    [DebianKernelFact]
    public void Analyze_finds_the_kernels_layout_in_the_3_GiB_dump()
    {
        var m = boot.Machine!;
        using var dir = new CliRun.TempDir();
        string path = dir.Name("debian3g.core");
        using (var f = new ZeroSkippingFile(path)) CoreDumpWriter.Write(m, f);
        using var dump = new CoreFile(path);
        Assert.Equal([new PhysRange(0, DebianGigaBoot.Ram)], dump.Ranges);
        var r = DumpAnalysis.Run(dump);
        var table = Kallsyms.Find(m.Memory)!;
        ulong sym = table.Entries.First(e => e.Name == "page_offset_base").Address;
        var buf = new byte[8];
        PageWalker.ReadLinear(m, sym, buf);
        Assert.Equal(BinaryPrimitives.ReadUInt64LittleEndian(buf), r.PageOffset);
        Assert.Equal(table.Entries.First(e => e.Name == "_text").Address, r.Image!.Text);
    }
}
