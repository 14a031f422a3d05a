using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Emu64.Loader;
using Emu64.Tests.Support;
using Xunit.Abstractions;

namespace Emu64.Tests.Linux;

/// <summary>
/// Where tests/linux/fetch-linux.sh leaves Debian 12's kernel and the test initramfs, and whether this build
/// can boot them; the tests below skip, saying why, when it cannot.
/// </summary>
public static class DebianKernel
{
    public static readonly string? Dir = FindOut();
    public static string Vmlinuz => Path.Combine(Dir!, "vmlinuz");
    public static string Vmlinux => Path.Combine(Dir!, "vmlinux");
    public static string Initrd => Path.Combine(Dir!, "initrd.gz");

    private static string? FindOut()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
        {
            var p = Path.Combine(d.FullName, "tests", "linux", "out");
            if (File.Exists(Path.Combine(p, "vmlinuz")) && File.Exists(Path.Combine(p, "initrd.gz"))) return p;
        }
        return null;
    }

    /// <summary>Why the boot tests cannot run here, or null.</summary>
    public static string? SkipReason()
    {
        if (Dir is null) return "Debian's kernel is not fetched: run tests/linux/fetch-linux.sh (it fills tests/linux/out/)";
        // Linux's verify_cpu halts the decompressor at once when CPUID.1:EDX.FPU is clear.
        var m = new Machine(new MachineOptions { RamBytes = 2UL << 20, Output = Stream.Null });
        if ((m.Cpu.Leaf1Edx & 1) == 0) return "Linux needs an x87 FPU (CPUID.1:EDX.FPU is clear: the x87 is not implemented yet), so it stops in verify_cpu";
        return null;
    }

    /// <summary>The marker lines of tests/linux/initramfs/init.</summary>
    public const string InitMarker = "EMU64-INIT: reached /init", DoneMarker = "EMU64-INIT: done";
}

/// <summary>A fact that boots the fetched Debian kernel: skipped, visibly, when it is absent or cannot boot here.</summary>
public sealed class DebianKernelFactAttribute : FactAttribute
{
    public DebianKernelFactAttribute() { if (DebianKernel.SkipReason() is { } r) Skip = r; }
}

/// <summary>A fact that compares the Debian kernel's boot under Emu64 with QEMU's: skipped, visibly, without either.</summary>
/// <summary>A fact that boots the fetched Debian kernel and drives it with gdb: skipped, visibly, without either.</summary>
public sealed class DebianKernelGdbFactAttribute : FactAttribute
{
    public DebianKernelGdbFactAttribute()
    {
        if (DebianKernel.SkipReason() is { } r) Skip = r;
        else if (!Gdb.Available) Skip = $"{Gdb.Program} is not installed";
    }
}

/// <summary>
/// A fact that compares a transcript recorded in the docs with a run of the fetched kernel: the addresses in it depend
/// on the exact kernel package (KASLR's choices, symbol addresses), so with another package than the one recorded it
/// skips, saying how to record the transcript again.
/// </summary>
public sealed class DebianKernelTranscriptFactAttribute : FactAttribute
{
    /// <summary>The package the committed transcripts were recorded with (tests/linux/out/debs).</summary>
    public const string RecordedWith = "linux-image-6.1.0-57-cloud-amd64_6.1.192-3_amd64.deb";

    public DebianKernelTranscriptFactAttribute()
    {
        if (DebianKernel.SkipReason() is { } r) { Skip = r; return; }
        var debs = Path.Combine(DebianKernel.Dir!, "debs");
        string? have = Directory.Exists(debs) ? Directory.GetFiles(debs, "linux-image-*.deb").Select(Path.GetFileName).FirstOrDefault() : null;
        if (have != RecordedWith)
            Skip = $"the transcript was recorded with {RecordedWith}, tests/linux/fetch-linux.sh fetched {have ?? "no kernel package"}: " +
                   "record it again with EMU64_UPDATE_WALKTHROUGH=1 dotnet test --filter LinuxDebugTests and update RecordedWith";
    }
}

public sealed class DebianKernelQemuFactAttribute : FactAttribute
{
    public DebianKernelQemuFactAttribute()
    {
        if (DebianKernel.SkipReason() is { } r) Skip = r;
        else if (!Qemu.Available) Skip = $"{Qemu.Program} is not installed: nothing to compare Linux's console with";
    }
}

/// <summary>
/// One boot of Debian's kernel (bzImage, the test initramfs, <c>console=ttyS0</c>, 512 MiB) under Emu64 and,
/// when QEMU is installed, one under <c>qemu-system-x86_64 -cpu max</c>, started together and shared by every
/// test of the class: the boot is the expensive part, the assertions are cheap.
/// </summary>
public sealed class DebianBoot : IDisposable
{
    public const string Append = "console=ttyS0";
    public const ulong MaxInstructions = 8_000_000_000;
    public string Console { get; } = "";
    public StopReason Reason { get; }
    public ulong Retired { get; }
    /// <summary>Retired instructions when the kernel had printed "Run /init as init process", and when /init had printed its first line.</summary>
    public ulong RetiredAtRunInit { get; }
    public ulong RetiredAtInit { get; }
    public double Seconds { get; }
    public string? QemuConsole { get; }
    public double QemuSeconds { get; }
    /// <summary>CR3 writes seen during the boot, and CR4 and the system-call count when it ended.</summary>
    public Cr3Watch Cr3 { get; } = new();
    public ulong Cr4 { get; }
    public ulong Syscalls { get; }

    public DebianBoot()
    {
        if (DebianKernel.SkipReason() != null) return;
        Task<(string, double)>? qemu = Qemu.Available ? Task.Run(RunQemu) : null;
        var watch = new GuestConsole();
        var m = new Machine(new MachineOptions { RamBytes = 512UL << 20, Append = Append, MaxInstructions = MaxInstructions, Output = watch });
        watch.Machine = m;
        m.Events.Subscribe(Cr3);
        m.LoadKernel(File.ReadAllBytes(DebianKernel.Vmlinuz), DebianKernel.Vmlinuz, [new BootModule(DebianKernel.Initrd, File.ReadAllBytes(DebianKernel.Initrd))]);
        var sw = Stopwatch.StartNew();
        Reason = m.Run();
        Seconds = sw.Elapsed.TotalSeconds;
        Retired = m.Cpu.Retired;
        Cr4 = m.Cpu.CR4;
        Syscalls = m.Events.Syscalls;
        Console = watch.Text;
        RetiredAtRunInit = watch.At("Run /init as init process");
        RetiredAtInit = watch.At(DebianKernel.InitMarker);
        if (qemu != null) (QemuConsole, QemuSeconds) = qemu.Result;
    }

    private static (string, double) RunQemu()
    {
        var psi = new ProcessStartInfo(Qemu.Path_!) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in new[] { "-cpu", "max", "-m", "512", "-kernel", DebianKernel.Vmlinuz, "-initrd", DebianKernel.Initrd, "-append", Append,
                                   "-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot" })
            psi.ArgumentList.Add(a);
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(600_000)) { p.Kill(true); p.WaitForExit(); }
        return (output.Result, sw.Elapsed.TotalSeconds);
    }

    public void Dispose() { }
}

/// <summary>
/// Debian 12's kernel (linux-image-6.1.*-cloud-amd64) booted through the Linux boot protocol to the test
/// initramfs's /init (docs/LINUX.md). Trait LinuxBoot: one boot of a couple of billion instructions.
/// </summary>
[Trait("Category", "LinuxBoot")]
public class DebianKernelTests(DebianBoot boot, ITestOutputHelper output) : IClassFixture<DebianBoot>
{
    private static string[] Lines(string console) => console.Replace("\r", "").Split('\n');

    /// <summary>A console line without its printk timestamp.</summary>
    private static string Bare(string line) => Regex.Replace(line, @"^\[ *[0-9]+\.[0-9]+\] ", "");

    [DebianKernelFact]
    public void Debian_s_kernel_boots_from_the_bzImage_to_init_and_runs_it_to_the_end()
    {
        output.WriteLine($"Emu64: {boot.Retired} instructions, {boot.Seconds:F1} s, stop {boot.Reason}; 'Run /init' at {boot.RetiredAtRunInit}, /init's first line at {boot.RetiredAtInit}");
        if (boot.QemuConsole != null) output.WriteLine($"QEMU: {boot.QemuSeconds:F1} s");
        Assert.Contains("Linux version 6.1.", boot.Console);
        Assert.Contains(DebianKernel.InitMarker, boot.Console);
        Assert.Contains(DebianKernel.DoneMarker, boot.Console);
        Assert.True(boot.RetiredAtInit > boot.RetiredAtRunInit && boot.RetiredAtRunInit > 0);
    }

    [DebianKernelFact]
    public void The_guest_s_cpu_flags_show_pti_pcid_invpcid_and_invpcid_single()
    {
        var flags = Lines(boot.Console).Single(l => l.StartsWith("flags\t")).Split(':', 2)[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("pti", flags);
        Assert.Contains("pcid", flags);
        Assert.Contains("invpcid", flags);
        Assert.Contains("invpcid_single", flags);
    }

    [DebianKernelFact]
    public void Meltdown_is_mitigated_by_PTI_and_dmesg_says_page_table_isolation_is_enabled()
    {
        Assert.Contains("meltdown: Mitigation: PTI", Lines(boot.Console));
        Assert.Contains(Lines(boot.Console), l => Bare(l) == "Kernel/User page tables isolation: enabled");
    }

    [DebianKernelFact]
    public void Linux_lists_the_e820_map_of_the_loader_and_the_command_line_it_was_given()
    {
        var e820 = Lines(boot.Console).Select(Bare).Where(l => l.StartsWith("BIOS-e820: ")).ToList();
        Assert.Equal(
        [
            "BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable",
            "BIOS-e820: [mem 0x000000000009fc00-0x000000000009ffff] reserved",
            "BIOS-e820: [mem 0x00000000000f0000-0x00000000000fffff] reserved",
            "BIOS-e820: [mem 0x0000000000100000-0x000000001ffdffff] usable",
            "BIOS-e820: [mem 0x000000001ffe0000-0x000000001fffffff] reserved",
            "BIOS-e820: [mem 0x00000000fffc0000-0x00000000ffffffff] reserved",
        ], e820);
        Assert.Contains(Lines(boot.Console), l => Bare(l) == "Command line: " + DebianBoot.Append);
    }

    [DebianKernelQemuFact]
    public void The_memory_map_and_the_kernel_banner_match_QEMU_s_line_for_line()
    {
        Assert.NotNull(boot.QemuConsole);
        // QEMU 7.1+ also reserves the HyperTransport hole below 1 TiB when the CPU is AMD's (-cpu max on an AMD
        // host); Emu64's CPU is GenuineIntel. docs/LINUX.md lists every difference.
        static List<string> Pick(string c) => Lines(c).Select(Bare)
            .Where(l => (l.StartsWith("BIOS-e820: ") && !l.Contains("0x000000fd00000000-0x000000ffffffffff")) || l.StartsWith("Linux version ") || l.StartsWith("Command line: "))
            .ToList();
        Assert.Equal(Pick(boot.QemuConsole!), Pick(boot.Console));
        Assert.Contains(DebianKernel.InitMarker, boot.QemuConsole);
    }

    [DebianKernelQemuFact]
    public void The_whole_console_matches_QEMU_s_in_order_but_for_the_differences_docs_LINUX_md_lists()
    {
        var rules = ConsoleDifferences.Read();
        output.WriteLine($"{rules.Count} documented differences (docs/LINUX.md)");
        var emu = ConsoleDifferences.Normalize(boot.Console);
        var qemu = ConsoleDifferences.Normalize(boot.QemuConsole!);
        // Every documented difference still happens: the list in the doc holds nothing stale.
        foreach (var r in rules.Where(r => !r.Sometimes))
            Assert.True((r.Emu64 && emu.Any(r.Matches)) || (r.Qemu && qemu.Any(r.Matches)),
                $"docs/LINUX.md lists `{r.Pattern}` ({r.Where}) but no such line is on that console any more");
        var keptEmu = emu.Where(l => !rules.Any(r => r.Emu64 && r.Matches(l))).ToList();
        var keptQemu = qemu.Where(l => !rules.Any(r => r.Qemu && r.Matches(l))).ToList();
        // A line of an asynchronous probe may come earlier or later under QEMU (host timing): the same text moved by a few
        // places is reported, not failed, as long as few lines move; every other line must be equal and in order.
        var (diff, moved) = ConsoleDifferences.SplitMoves(ConsoleDifferences.Diff(keptQemu, keptEmu));
        foreach (var t in moved) output.WriteLine($"moved (printed at another point under QEMU): {t}");
        Assert.True(moved.Count <= 3, $"{moved.Count} lines are in another order:\n" + string.Join("\n", moved));
        Assert.True(diff.Count == 0, $"{diff.Count} lines differ ({keptEmu.Count} Emu64 lines and {keptQemu.Count} QEMU lines compared) and docs/LINUX.md does not list them:\n"
            + string.Join("\n", diff.Take(40)));
        output.WriteLine($"{keptEmu.Count} lines identical in order ({emu.Count} on Emu64's console, {qemu.Count} on QEMU's)");
        Assert.True(keptEmu.Count > 200, "the comparison covers the boot");
    }

    [DebianKernelFact]
    public void With_PTI_and_PCID_the_guest_switches_CR3_between_user_and_kernel_page_tables_with_PCIDs()
    {
        // The default boot: CR4.LA57 (5-level paging, CPUID has LA57), CR4.PCIDE, and the PTI entry code's CR3
        // flips at every user/kernel crossing, using PCIDs and NOFLUSH: the contrast for DebianKernelOptionsTests.
        var c = boot.Cr3;
        output.WriteLine($"CR4 {boot.Cr4:X}; {c.Writes} CR3 writes, {c.NoFlushWrites} NOFLUSH, {c.WritesWithPcid} with a PCID; {c.Syscalls} SYSCALLs, {c.EntrySwitches} followed by a CR3 write; {c.Sysrets} SYSRETs, {c.ExitSwitches} just after one");
        Assert.NotEqual(0UL, boot.Cr4 & Emu64.Cpu.Cr4.La57);
        Assert.NotEqual(0UL, boot.Cr4 & Emu64.Cpu.Cr4.Pcide);
        Assert.True(c.Syscalls > 100 && c.Sysrets > 100, "userspace ran");
        Assert.Equal(c.Syscalls, c.EntrySwitches);
        Assert.Equal(c.Sysrets, c.ExitSwitches);
        Assert.NotEqual(0UL, boot.Cr3.NoFlushWrites);
        Assert.NotEqual(0UL, boot.Cr3.WritesWithPcid);
        Assert.Contains(Lines(boot.Console), l => Bare(l).StartsWith("last_pfn = ") && l.EndsWith("max_arch_pfn = 0x10000000000"));
    }
}
