using System.Buffers.Binary;
using System.Diagnostics;
using System.Text.RegularExpressions;
using Emu64.Cpu;
using Emu64.Forensics;
using Emu64.Loader;
using Emu64.Mmu;
using Emu64.Tests.Forensics;
using Emu64.Tests.Support;
using Xunit.Abstractions;

namespace Emu64.Tests.Linux;

/// <summary>
/// One boot of Debian's kernel (as <see cref="DebianBoot"/>: bzImage, the test initramfs, <c>console=ttyS0</c>, 512 MiB,
/// the default PTI with PCID, 5-level paging) under <c>--clock cycles</c>, stopped once /init has printed its layout lines,
/// and a memory dump of the running machine written then. Two things share it: the user program that times its own
/// system calls (tests/linux/initramfs/tsc_getpid.c) and <c>emu64 analyze</c> on a real kernel's dump.
/// </summary>
public sealed class DebianCycleBoot : IDisposable
{
    public string Console { get; } = "";
    public Machine? Machine { get; }
    public string DumpPath { get; } = "";
    /// <summary>Every SYSCALL: its number (RAX), the instructions retired and the guest time (ticks) when it was made.</summary>
    public List<(ulong Nr, ulong Instructions, ulong Now)> Syscalls { get; } = new();
    private readonly CliRun.TempDir? _dir;

    private sealed class SyscallRecorder(DebianCycleBoot boot) : IBoundaryListener
    {
        public Machine? M;
        public void OnEvent(in BoundaryEvent e)
        {
            if (e.Kind == BoundaryKind.Syscall && boot.Syscalls.Count < 1_000_000) boot.Syscalls.Add((M!.Cpu.R[Reg.RAX], e.Instructions, M.Now));
        }
    }

    public DebianCycleBoot()
    {
        if (DebianKernel.SkipReason() != null) return;
        var watch = new GuestConsole { StopWhen = l => l.StartsWith("flags\t", StringComparison.Ordinal) };
        var m = new Machine(new MachineOptions { RamBytes = 512UL << 20, Append = DebianBoot.Append, MaxInstructions = DebianBoot.MaxInstructions, Output = watch, Clock = GuestClock.Cycles });
        watch.Machine = m;
        var rec = new SyscallRecorder(this) { M = m };
        m.Events.Subscribe(rec);
        m.LoadKernel(File.ReadAllBytes(DebianKernel.Vmlinuz), DebianKernel.Vmlinuz, [new BootModule(DebianKernel.Initrd, File.ReadAllBytes(DebianKernel.Initrd))]);
        m.Run();
        Machine = m;
        Console = watch.Text;
        _dir = new CliRun.TempDir();
        DumpPath = _dir.Name("debian.core");
        CoreDumpWriter.WriteFile(m, DumpPath);
    }

    public void Dispose() => _dir?.Dispose();
}

/// <summary>
/// The cycle clock on real Linux (docs/MEASURE.md, "Guest time") and memory dumps of Debian's kernel analysed from the dump
/// alone (docs/DUMPS.md, "Debian's kernel"), checked against what the guest itself printed: /proc/kallsyms, /proc/iomem,
/// and the kernel's own layout variables read at the addresses /proc/kallsyms gives.
/// </summary>
[Trait("Category", "LinuxBoot")]
public class DebianCycleDumpTests(DebianCycleBoot boot, ITestOutputHelper output) : IClassFixture<DebianCycleBoot>
{
    /// <summary>
    /// Kernel symbols at run time: the three /init prints from /proc/kallsyms (EMU64-KALLSYMS lines), and the rest from the
    /// kernel's own kallsyms tables in guest RAM (Debugging/Kallsyms.cs, the debugger's reader), which must agree with
    /// every printed line. /init greps /proc/kallsyms once (each read costs the boot about a billion instructions).
    /// </summary>
    private Dictionary<string, ulong> Kallsyms()
    {
        var printed = Regex.Matches(boot.Console, @"EMU64-KALLSYMS: ([0-9a-f]{16}) . (\S+)").ToDictionary(x => x.Groups[2].Value, x => Convert.ToUInt64(x.Groups[1].Value, 16));
        Assert.Equal(3, printed.Count);
        var table = Emu64.Debugging.Kallsyms.Find(boot.Machine!.Memory) ?? throw new Xunit.Sdk.XunitException("no kallsyms tables in guest RAM");
        var all = new Dictionary<string, ulong>();
        foreach (var e in table.Entries) all.TryAdd(e.Name, e.Address);
        foreach (var (name, addr) in printed) Assert.Equal(addr, all[name]);
        return all;
    }

    /// <summary>The physical address of a kernel-image symbol: its offset from _text, plus where /proc/iomem says "Kernel code" starts.</summary>
    private ulong Phys(string symbol)
    {
        var k = Kallsyms();
        var code = Regex.Match(boot.Console, @"EMU64-IOMEM: +([0-9a-f]+)-[0-9a-f]+ : Kernel code");
        Assert.True(code.Success, "/init printed the kernel's place in /proc/iomem");
        return k[symbol] - k["_text"] + Convert.ToUInt64(code.Groups[1].Value, 16);
    }

    private ulong Variable(string symbol) => BinaryPrimitives.ReadUInt64LittleEndian(boot.Machine!.Memory.RamSpan(Phys(symbol), 8));

    [DebianKernelFact]
    public void A_Linux_program_timing_its_own_getpid_calls_with_RDTSC_sees_the_modeled_cost_of_PTI_under_the_cycle_clock()
    {
        var line = Regex.Match(boot.Console, @"EMU64-TSC: getpid calls 256 ticks (\d+) per-call (\d+)");
        Assert.True(line.Success, "tsc_getpid printed its line");
        ulong ticks = ulong.Parse(line.Groups[1].Value);
        // The program's 16 untimed and 256 timed calls are the boot's one run of 272 getpid calls in a row.
        var s = boot.Syscalls;
        int start = Enumerable.Range(0, s.Count - 271).First(i => Enumerable.Range(i, 272).All(j => s[j].Nr == 39));
        var (first, last) = (s[start + 16], s[start + 271]);
        double insnsPerCall = (double)(last.Instructions - first.Instructions) / 255, ticksPerCall = (double)(last.Now - first.Now) / 255;
        output.WriteLine($"guest: {ticks} ticks for 256 calls ({ticks / 256.0:F1} a call); Emu64 between the calls' SYSCALLs: {ticksPerCall:F1} ticks, {insnsPerCall:F1} instructions a call");
        // What the guest measured is what the machine's clock did between those calls (the loop's own few instructions aside).
        Assert.InRange(ticks / 256.0, ticksPerCall - 2, ticksPerCall + 2);
        // Under PTI with PCID each call writes CR3 twice (100 cycles each in the cost model), and walks after them: the
        // guest's figure exceeds the call's instructions by at least that. Under the instruction clock it would be the
        // instructions alone (CycleClockTests shows the identity on the toy kernel).
        var cost = new CostModel();
        Assert.True(ticksPerCall >= insnsPerCall + 2 * cost.Cr3Write, $"{ticksPerCall:F1} ticks a call, {insnsPerCall:F1} instructions");
        Assert.Equal(boot.Machine!.Cpu.Mmu.Snapshot().ModeledCycles(boot.Machine.Cpu.Retired, cost) + boot.Machine.IdleTicks, (double)boot.Machine.Now);
    }

    [DebianKernelFact]
    public void Analyze_finds_Debian_s_5_level_PGD_PAGE_OFFSET_KASLR_phys_base_and_vmemmap_from_the_dump_alone_as_the_guest_reports_them()
    {
        using var dump = new CoreFile(boot.DumpPath);
        var r = DumpAnalysis.Run(dump);
        var k = Kallsyms();
        output.WriteLine(AnalysisReport.Format(dump, r));
        // Debian's kernel turns on 5-level paging when CPUID offers LA57, as Emu64's does (docs/LINUX.md).
        Assert.NotEqual(0UL, boot.Machine!.Cpu.CR4 & Cr4.La57);
        Assert.Equal(5, r.Levels);
        Assert.Equal(Phys("init_top_pgt"), r.TopTable);
        Assert.Equal(Variable("page_offset_base"), r.PageOffset);
        Assert.Equal(k["_text"], r.Image!.Text);
        Assert.Equal((long)(k["_text"] - LinuxLayout.StartKernel), r.Image.Slide);
        Assert.Equal(Variable("phys_base"), r.Image.PhysBase);
        Assert.Equal(0, r.Image.PagesOffDelta);
        Assert.Equal(Variable("vmemmap_base"), r.Vmemmap!.Base);
        Assert.True(r.Findings.Where(f => f.Name != "paging mode").All(f => f.Confidence == Confidence.High),
            string.Join("\n", r.Findings.Select(f => $"{f.Name}: {f.Confidence}")));
    }

    [DebianKernelFact]
    public void Under_PTI_analyze_pairs_each_process_PGD_with_its_user_PGD_which_maps_the_entry_code_and_not_the_direct_map()
    {
        using var dump = new CoreFile(boot.DumpPath);
        var r = DumpAnalysis.Run(dump);
        Assert.True(r.Pti);
        // The process running when the dump was taken: CR3 holds its kernel PGD (PTI keeps the user one at +4 KiB) and a PCID.
        ulong cr3 = boot.Machine!.Cpu.CR3 & Emu64.Mmu.Mmu.PhysAddrMask;
        ulong kernelPgd = cr3 & ~0x1000UL;
        var p = r.Processes.Single(x => x.Kernel == kernelPgd);
        Assert.Equal(kernelPgd + 0x1000, p.User);
        Assert.True(p.UserEntries > 0 && p.UserMaps.Count > 0, "the running process maps user memory");
        var u = r.UserPgds.Single(x => x.User == p.User);
        ulong entry = Kallsyms()["entry_SYSCALL_64"];
        Assert.Contains(u.KernelHalfMaps, m => m.Start <= entry && entry < m.End);
        Assert.DoesNotContain(u.KernelHalfMaps, m => m.Start <= r.PageOffset && r.PageOffset < m.End);
    }

    [DebianKernelFact]
    public void The_dump_of_the_running_Linux_reads_back_page_for_page_and_readelf_reads_it_as_a_core()
    {
        using var dump = new CoreFile(boot.DumpPath);
        var ram = boot.Machine!.Memory;
        var page = new byte[4096];
        foreach (ulong pa in new[] { 0UL, Phys("init_top_pgt"), Phys("_text"), Phys("entry_SYSCALL_64") & ~0xFFFUL, (512UL << 20) - 4096 })
        {
            Assert.Equal(4096, dump.Read(pa, page));
            Assert.True(page.AsSpan().SequenceEqual(ram.RamSpan(pa, 4096)), $"page 0x{pa:x}");
        }
        Assert.Equal(boot.Machine.Cpu.CR3, dump.CpuState!.Cr(3));
        Assert.Equal(boot.Machine.Cpu.CR4, dump.CpuState.Cr(4));
        if (!ReadelfFactAttribute.Available) { output.WriteLine("readelf (binutils) is not installed: the readelf half is skipped"); return; }
        string o = ReadelfFactAttribute.HeadersOf(boot.DumpPath);
        Assert.Matches(@"Type:\s+CORE \(Core file\)", o);
        Assert.Matches(@"LOAD\s+0x0003e0 0x0000000000000000 0x0000000000000000 0x20000000 0x20000000\s+0", o);
        Assert.Matches(@"CORE\s+0x00000150\s+NT_PRSTATUS", o);
        Assert.Matches(@"QEMU\s+0x000001b8\s+Unknown note type: \(0x00000000\)", o);
    }
}
