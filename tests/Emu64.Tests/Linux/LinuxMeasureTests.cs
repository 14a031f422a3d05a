using Emu64.Cli;
using Emu64.Cli.Measure;
using Emu64.Mmu;
using Xunit.Abstractions;

namespace Emu64.Tests.Linux;

/// <summary>
/// <c>emu64 measure --kernel --initrd</c> on Debian's kernel: a small matrix (system calls, a working set, a pipe ring;
/// nopti, pti, pti+pcid) with <c>--jobs 2</c>, three boots, then its pti boot again alone with <c>--jobs 1</c>: four
/// Linux boots for the whole class. The workloads are small (tens of thousands of instructions), so a boot costs what a
/// boot to /init costs.
/// </summary>
public sealed class LinuxMatrix
{
    public static string[] Args(string configs, int jobs) =>
    [
        "--kernel", DebianKernel.Vmlinuz, "--initrd", DebianKernel.Initrd,
        "--workload", "syscalls,touch,pingpong", "--configs", configs,
        "--sweep", "syscalls.calls=20", "--sweep", "syscalls.work=0",
        "--sweep", "touch.pages=16", "--sweep", "touch.rounds=4", "--sweep", "touch.work=100",
        "--sweep", "pingpong.yields=10", "--sweep", "pingpong.procs=2",
        "--jobs", jobs.ToString(), "--quiet",
    ];

    public MeasureCommand.Outcome? Two { get; }
    public MeasureCommand.Outcome? One { get; }

    public LinuxMatrix()
    {
        if (DebianKernel.SkipReason() != null) return;
        Two = MeasureCommand.Measure(MeasureOptions.Parse(Args("nopti,pti,pti+pcid", 2)), null);
        One = MeasureCommand.Measure(MeasureOptions.Parse(Args("pti", 1)), null);
    }

    public CellResult Of(string workload, string config) =>
        Two!.Results.Single(r => r.Cell.Workload.Name == workload && r.Cell.Config.Name == config);
}

[Trait("Category", "LinuxBoot")]
public class LinuxMeasureTests(LinuxMatrix m, ITestOutputHelper output) : IClassFixture<LinuxMatrix>
{
    [DebianKernelFact]
    public void Under_PTI_without_PCID_every_boundary_crossing_writes_CR3_with_a_flush()
    {
        output.WriteLine(m.Two!.Table);
        var pti = m.Of("syscalls", "pti");
        Assert.Equal(20UL, pti.Syscalls);
        // SWITCH_TO_KERNEL_CR3 at entry and SWITCH_TO_USER_CR3 at exit, neither with NOFLUSH (bit 63) under nopcid.
        Assert.Equal(2 * pti.Syscalls, pti.Cr3Flushing);
        Assert.Equal(0UL, pti.Cr3NoFlush);
        Assert.Equal(pti.Syscalls, pti.EntryCr3Writes);
        Assert.Equal(0UL, pti.EntryCr3NoFlush);
        Assert.Equal(0UL, m.Of("syscalls", "nopti").Cr3Writes);
    }

    [DebianKernelFact]
    public void Under_PTI_with_PCID_both_CR3_writes_of_a_crossing_keep_the_TLB()
    {
        var pcid = m.Of("syscalls", "pti+pcid");
        Assert.Equal(2 * pcid.Syscalls, pcid.Cr3NoFlush);
        Assert.Equal(0UL, pcid.Cr3Flushing);
        Assert.Equal(pcid.Syscalls, pcid.EntryCr3NoFlush);
    }

    [DebianKernelFact]
    public void The_user_working_set_misses_again_every_round_under_PTI_and_survives_with_PCID()
    {
        const ulong pages = 16, rounds = 4;
        ulong UserStlbMisses(string config) => m.Of("touch", config).Misses(TlbLevel.Stlb, user: true);
        Assert.True(UserStlbMisses("pti") >= pages * rounds, $"pti: {UserStlbMisses("pti")} user STLB misses");
        Assert.True(UserStlbMisses("pti+pcid") < pages, $"pti+pcid: {UserStlbMisses("pti+pcid")} user STLB misses");
        Assert.True(UserStlbMisses("nopti") < pages, $"nopti: {UserStlbMisses("nopti")} user STLB misses");
    }

    [DebianKernelFact]
    public void Modeled_cycles_order_nopti_below_pti_with_PCID_below_pti_without()
    {
        foreach (var w in new[] { "syscalls", "touch", "pingpong" })
        {
            double nopti = m.Of(w, "nopti").Cycles, pcid = m.Of(w, "pti+pcid").Cycles, pti = m.Of(w, "pti").Cycles;
            Assert.True(nopti < pcid && pcid < pti, $"{w}: nopti {nopti}, pti+pcid {pcid}, pti {pti}");
        }
    }

    [DebianKernelFact]
    public void The_pipe_ring_switches_address_space_at_every_pass()
    {
        foreach (var c in new[] { "nopti", "pti", "pti+pcid" })
        {
            var r = m.Of("pingpong", c);
            // 10 passes of process 0 and 10 of process 1: each blocks the sender and runs the other.
            Assert.True(r.ContextSwitches >= 20, $"{c}: {r.ContextSwitches} context switches");
            Assert.Equal(40UL, r.Syscalls);   // a write and a read per pass, by each process
        }
    }

    private static List<(string, ulong)> Counters(CellResult r)
    {
        var list = new List<(string, ulong)>
        {
            ("instructions", r.Instructions), ("user", r.UserInstructions), ("syscalls", r.Syscalls), ("switches", r.ContextSwitches),
            ("cr3", r.Cr3Writes), ("cr3nf", r.Cr3NoFlush), ("entries", r.EntryCr3Writes),
        };
        list.AddRange(r.Tlb.Named());
        return list;
    }

    [DebianKernelFact]
    public void A_configuration_booted_alone_with_one_job_gives_the_counters_it_gave_among_three_with_two_jobs()
    {
        foreach (var w in new[] { "syscalls", "touch", "pingpong" })
            Assert.Equal(Counters(m.Of(w, "pti")), Counters(m.One!.Results.Single(r => r.Cell.Workload.Name == w)));
    }

    [DebianKernelFact]
    public void The_JSON_names_the_Linux_kernel_and_initrd_and_how_to_repeat_each_boot()
    {
        var json = System.Text.Json.JsonDocument.Parse(m.Two!.Json).RootElement;
        Assert.Equal("vmlinuz", json.GetProperty("kernel_image").GetString());
        Assert.Equal(64, json.GetProperty("initrd_sha256").GetString()!.Length);
        var cell = json.GetProperty("cells").EnumerateArray().First(c => c.GetProperty("config").GetString() == "pti");
        string command = cell.GetProperty("run").GetProperty("command").GetString()!;
        Assert.StartsWith("emu64 run ", command);
        Assert.Contains("pti=on nopcid", command);
        Assert.Contains("emu64_measure=syscalls:20:0", command);
    }
}

/// <summary>The Linux side of <c>emu64 measure</c> without a boot: command lines, options and their errors.</summary>
public class LinuxMeasureOptionTests
{
    private static List<Cell> Cells(params string[] args) =>
        MeasureOptions.Parse(["--kernel", "k", "--initrd", "i", .. args]).Spec.Cells();

    [Fact]
    public void One_Linux_boot_runs_every_workload_of_a_configuration_in_order_named_on_the_command_line()
    {
        var cells = Cells("--workload", "syscalls,mmap", "--sweep", "syscalls.work=0,10", "--sweep", "mmap.pages=4", "--configs", "pti+pcid");
        Assert.Equal("console=ttyS0 quiet pti=on noinvpcid emu64_measure=syscalls:200:0,syscalls:200:10,mmap:10:4",
            LinuxBoot.Append(cells[0].LinuxKernelOptions, cells));
        Assert.All(cells, c => Assert.Equal("pti=on noinvpcid", c.LinuxKernelOptions));
    }

    [Fact]
    public void The_direct_map_page_size_of_pagecache_is_a_Linux_kernel_option_not_a_program_argument()
    {
        var cells = Cells("--workload", "pagecache", "--sweep", "pagecache.pages=16");
        // No 1 GiB cell by default on Linux with 512 MiB: its direct map has no whole aligned GiB to give a 1 GiB page.
        Assert.Equal(["nopti nogbpages clearcpuid=3", "nopti nogbpages"], cells.Select(c => c.LinuxKernelOptions));
        Assert.All(cells, c => Assert.Equal("pagecache:16:2:4096", c.Workload.LinuxSpec(c.Values)));
    }

    [Fact]
    public void From_2560_MiB_the_Linux_direct_map_sweep_adds_the_1g_cell_with_Linuxs_default_options()
    {
        var cells = Cells("--workload", "pagecache", "--sweep", "pagecache.pages=16", "-m", "3G");
        Assert.Equal(["nopti nogbpages clearcpuid=3", "nopti nogbpages", "nopti"], cells.Select(c => c.LinuxKernelOptions));
        Assert.Equal(2560UL << 20, LinuxBoot.MinRamFor1G);
        Assert.Equal(3, Cells("--workload", "pagecache", "--sweep", "pagecache.pages=16", "-m", "2560M").Count);
        Assert.Equal(2, Cells("--workload", "pagecache", "--sweep", "pagecache.pages=16", "-m", "2559M").Count);
        Assert.Equal("pagecache:16:2:4096", cells[2].Workload.LinuxSpec(cells[2].Values));
    }

    [Fact]
    public void A_1g_Linux_cell_below_2560_MiB_is_refused_before_any_boot_with_the_reason()
    {
        var e = Assert.Throws<CliException>(() => Cells("--workload", "pagecache", "--sweep", "pagecache.directmap=2m,1g", "-m", "2G"));
        Assert.Equal("measure: a 1g direct map on Linux needs -m 2560M or more, not 2048M (Linux maps only whole, aligned GiBs of RAM from 1 GiB up with 1 GiB pages)", e.Message);
        Assert.Equal("option -m needs 64M to 3G, not '4G'", Assert.Throws<CliException>(() => Cells("-m", "4G")).Message);
    }

    [Fact]
    public void Initrd_without_kernel_and_m_without_kernel_are_refused_with_one_line()
    {
        Assert.Equal("measure: --initrd needs --kernel", Assert.Throws<CliException>(() => MeasureOptions.Parse(["--initrd", "x"])).Message);
        Assert.StartsWith("measure: --kernel needs --initrd", Assert.Throws<CliException>(() => MeasureOptions.Parse(["--kernel", "x"])).Message);
        Assert.Equal("measure: -m applies to Linux boots only (--kernel)", Assert.Throws<CliException>(() => MeasureOptions.Parse(["-m", "1G"])).Message);
    }
}
