using Emu64.Forensics;
using Emu64.Tests.Support;

namespace Emu64.Tests.Forensics;

/// <summary>
/// emu64 analyze against the truth: the toy kernel, booted with KASLR on over many seeds, 4- and 5-level, PTI on
/// and off, is stopped shortly after its boot log, dumped to a file, and analysed from the file alone. Its answers
/// must equal what the guest printed (PAGE_OFFSET, kernel text, phys_base, swapper_pg_dir), what it announced on
/// its information port (each process's PGD), and what the CPU's CR3 holds.
/// </summary>
public class DumpAnalysisTests
{
    private const ulong Stop = 4_000_000;   // the boot log and both processes' exec are done by then

    public static IEnumerable<object[]> Configurations()
    {
        foreach (ulong seed in new ulong[] { 1, 2, 3, 5, 8, 13 })
            foreach (bool la57 in new[] { false, true })
                foreach (bool pti in new[] { true, false })
                    yield return [seed, la57, pti];
    }

    private static (ToyKernel K, AnalysisResult R, AnalysisResult WithCr3) BootDumpAnalyze(ulong seed, bool la57, bool pti)
    {
        string append = (la57 ? "la57 " : "") + (pti ? "pti=on" : "pti=off") + " init=echo,echo";
        var k = ToyKernel.Boot(append, seed, Stop, record: false);
        Assert.Equal(StopReason.InstructionLimit, k.Reason);
        using var dir = new CliRun.TempDir();
        string path = dir.Name("guest.core");
        CoreDumpWriter.WriteFile(k.Machine, path);
        using var dump = new CoreFile(path);
        var cpu = dump.CpuState!;
        return (k, DumpAnalysis.Run(dump), DumpAnalysis.Run(dump, (cpu.Cr(3), cpu.Cr(4))));
    }

    [Theory]
    [MemberData(nameof(Configurations))]
    public void Analyze_recovers_the_layout_the_kernel_printed_from_the_dump_alone(ulong seed, bool la57, bool pti)
    {
        var (k, r, withCr3) = BootDumpAnalyze(seed, la57, pti);
        var m = k.Machine;
        Assert.Contains("kaslr: on", k.Console);
        Assert.Equal(la57 ? 5 : 4, k.Levels);

        Assert.Equal(k.Levels, r.Levels);
        Assert.Equal(k.PageOffset, r.PageOffset);
        Assert.Equal(k.KernelText, r.Image!.Text);
        Assert.Equal((long)(k.KernelText - 0xffffffff81000000), r.Image.Slide);
        Assert.Equal(k.Hex(@"mm: phys_base=0x([0-9a-f]{16})"), r.Image.PhysBase);
        Assert.Equal(0, r.Image.PagesOffDelta);
        Assert.Equal(k.Hex(@"swapper_pg_dir at phys 0x([0-9a-f]+)"), r.TopTable);
        Assert.Equal(m.KernelInfo.SwapperPgd, r.TopTable);
        Assert.Null(r.Vmemmap);   // the toy kernel has no struct page array
        Assert.All(r.Findings, f => Assert.Equal(Confidence.High, f.Confidence));

        // Every live process's PGD, as the kernel announced it, and under PTI its user twin.
        var live = m.KernelInfo.Processes.Values.Where(p => !p.Exited).ToList();
        Assert.Equal(2, live.Count);
        foreach (var p in live)
        {
            var found = Assert.Single(r.Processes, x => x.Kernel == p.KernelPgd);
            Assert.Equal(pti ? p.KernelPgd + 0x1000 : null, found.User);
        }
        Assert.Equal(pti, r.Pti);
        Assert.Equal(pti ? r.Processes.Count : 0, r.UserPgds.Count);

        // The CPU's CR3 (not used by the scan) names one of the tables found: a process's kernel or user PGD.
        ulong cr3 = m.Cpu.CR3 & 0x000F_FFFF_FFFF_F000;
        Assert.Contains(cr3, r.Processes.SelectMany(p => p.User is { } u ? new[] { p.Kernel, u } : new[] { p.Kernel }).Append(r.TopTable!.Value));

        // Starting from CR3 (--use-cr3) finds the same layout from that process's PGD.
        Assert.Equal(r.Levels, withCr3.Levels);
        Assert.Equal(r.PageOffset, withCr3.PageOffset);
        Assert.Equal(r.Image.Text, withCr3.Image!.Text);
        Assert.Equal(r.Image.PhysBase, withCr3.Image.PhysBase);
        Assert.Equal(cr3 & ~0x1000UL | (pti ? 0 : cr3 & 0x1000), withCr3.TopTable);
        Assert.StartsWith($"CR3=0x{m.Cpu.CR3:x} from the dump's QEMU note", withCr3.StartedFrom);
    }

    [Fact]
    public void Without_KASLR_analyze_finds_Linuxs_fixed_bases_and_a_zero_slide()
    {
        var k = ToyKernel.Boot("nokaslr init=echo", 0, Stop, record: false);
        using var dir = new CliRun.TempDir();
        string path = dir.Name("guest.core");
        CoreDumpWriter.WriteFile(k.Machine, path);
        using var dump = new CoreFile(path);
        var r = DumpAnalysis.Run(dump);
        Assert.Equal(0xffff888000000000UL, r.PageOffset);
        Assert.Equal(0xffffffff81000000UL, r.Image!.Text);
        Assert.Equal(0L, r.Image.Slide);
        Assert.Equal(0UL, r.Image.PhysBase);
    }

    [Fact]
    public void The_analyze_command_prints_each_finding_with_how_it_was_found_and_its_confidence()
    {
        var k = ToyKernel.Boot("la57 init=echo", 21, Stop, record: false);
        using var dir = new CliRun.TempDir();
        string path = dir.Name("guest.core");
        CoreDumpWriter.WriteFile(k.Machine, path);
        var o = CliRun.Execute("analyze", path);
        Assert.Equal(0, o.Status);
        string text = o.Out;
        Assert.Contains("started from: a scan of physical memory (no CR3, no symbols)", text);
        Assert.Contains("paging mode: 5-level   [confidence: high]", text);
        Assert.Contains($"PAGE_OFFSET (direct map base): 0x{k.PageOffset:x}   [confidence: high]", text);
        Assert.Contains($"kernel text (_text): 0x{k.KernelText:x}   [confidence: high]", text);
        Assert.Contains($"KASLR slide: 0x{k.KernelText - 0xffffffff81000000:x}   [confidence: high]", text);
        Assert.Matches(@"- the lowest 1 GiB-aligned address in \[0xff11000000000000, 0xfffffe0000000000\) that translates to physical 0: pgd\[\d+\]@0x100000=0x[0-9a-f]+ -> p4d\[\d+\]@0x[0-9a-f]+=0x[0-9a-f]+ -> pud\[\d+\]@0x[0-9a-f]+=0x[0-9a-f]+", text);
        Assert.Contains("self-map: PAGE_OFFSET + 0x100000 -> ", text);
        Assert.Contains("it starts executable and no page is both writable and executable (W^X)", text);
        Assert.Contains("PTI (user PGDs): on: 1 user PGD(s)   [confidence: high]", text);
        var u = CliRun.Execute("analyze", path, "--use-cr3");
        Assert.Contains($"started from: CR3=0x{k.Machine.Cpu.CR3:x} from the dump's QEMU note (CR4.LA57=1)", u.Out);
        Assert.Contains($"PAGE_OFFSET (direct map base): 0x{k.PageOffset:x}", u.Out);
    }
}
