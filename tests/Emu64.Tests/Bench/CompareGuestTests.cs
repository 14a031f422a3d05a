using System.Diagnostics;
using System.Numerics;
using System.Text.RegularExpressions;
using Emu64.Tests.Support;

namespace Emu64.Tests.Bench;

/// <summary>
/// The guest bench/compare.sh times in Emu64, QEMU and Bochs (bench/guest/loop.S) builds with the machine's
/// gcc and GNU ld and does what the script relies on: reads loops=N and mode= from the multiboot command line,
/// runs the loop in 64-bit mode, prints its report line on port 0xE9 with the right instruction count and result,
/// and exits through isa-debug-exit with status 33. Not a timing test: only the script and BenchmarkDotNet time.
/// </summary>
[Trait("Category", "Bench")]
public class CompareGuestTests
{
    private static readonly Regex Report = new(@"emu64-bench: mode=(\w+) loops=(\d+) insns=(\d+) result=0x([0-9a-f]{16})\n");

    [GuestToolchainTheory]
    [InlineData(1UL)]
    [InlineData(1000UL)]
    [InlineData(123457UL)]
    public void The_register_loop_guest_runs_in_Emu64_and_exits_33_with_the_sum(ulong loops)
    {
        var r = Run.Image(CompareGuest.Image, $"loops={loops}", maxInstructions: 10_000_000);
        Assert.True(r.Reason == StopReason.DebugExit, $"{r.Reason}: {r.Machine.StopMessage}\n{r.Console}");
        Assert.Equal(33, r.ExitCode);
        var m = Report.Match(r.Console);
        Assert.True(m.Success, "no report line:\n" + r.Console);
        Assert.Equal("reg", m.Groups[1].Value);
        Assert.Equal(loops, ulong.Parse(m.Groups[2].Value));
        Assert.Equal(3 * loops, ulong.Parse(m.Groups[3].Value));
        ulong sum = (ulong)((BigInteger)loops * (loops + 1) / 2 % (BigInteger.One << 64));
        Assert.Equal(sum.ToString("x16"), m.Groups[4].Value);
        // The loop is what ran: the whole run is the loop plus a small fixed boot and report.
        ulong retired = r.Machine.Cpu.Retired;
        Assert.InRange(retired, 3 * loops, 3 * loops + 20_000);
    }

    [GuestToolchainFact]
    public void The_memory_loop_guest_passes_over_its_buffer_and_exits_33()
    {
        const ulong loops = 3 * 8192 + 100;   // three passes (the remainder is dropped)
        var r = Run.Image(CompareGuest.Image, $"/boot/loop.elf loops={loops} mode=mem", maxInstructions: 10_000_000);
        Assert.True(r.Reason == StopReason.DebugExit, $"{r.Reason}: {r.Machine.StopMessage}\n{r.Console}");
        Assert.Equal(33, r.ExitCode);
        var m = Report.Match(r.Console);
        Assert.True(m.Success, "no report line:\n" + r.Console);
        Assert.Equal("mem", m.Groups[1].Value);
        Assert.Equal(3UL * 8192, ulong.Parse(m.Groups[2].Value));
        Assert.Equal(3UL * (6 * 8192 + 4), ulong.Parse(m.Groups[3].Value));
        // Each pass adds the countdown value 8192 - i to qword i; the first qword gets 8192 per pass.
        Assert.Equal((3UL * 8192).ToString("x16"), m.Groups[4].Value);
        Assert.Equal(0UL, r.Machine.Stats.Faults);
    }

    [GuestToolchainFact]
    public void Without_a_command_line_the_guest_runs_a_million_iterations()
    {
        var r = Run.Image(CompareGuest.Image, "", maxInstructions: 10_000_000);
        Assert.Equal(33, r.ExitCode);
        Assert.Contains("mode=reg loops=1000000 insns=3000000 result=0x000000746a5a2920\n", r.Console);
    }

    [GuestToolchainTheory]
    [InlineData("cpuid", 4UL, "0000000000000007")]     // leaf 0's EAX: the highest basic leaf
    [InlineData("inpm", 3UL, null)]                     // the PM timer's value when the loop ended
    [InlineData("cr8r", 3UL, "0000000000000000")]
    [InlineData("cr8w", 3UL, "0000000000000000")]
    [InlineData("pause", 3UL, "0000000000000000")]
    [InlineData("tscdl", 3UL, "00000000ffffffff")]
    public void An_operation_mode_loops_over_its_operation_and_reports_its_instructions(string mode, ulong perLoop, string? result)
    {
        const ulong loops = 12345;
        var r = Run.Image(CompareGuest.Image, $"loops={loops} mode={mode}", maxInstructions: 10_000_000);
        Assert.True(r.Reason == StopReason.DebugExit, $"{r.Reason}: {r.Machine.StopMessage}\n{r.Console}");
        Assert.Equal(33, r.ExitCode);
        var m = Report.Match(r.Console);
        Assert.True(m.Success, "no report line:\n" + r.Console);
        Assert.Equal(mode, m.Groups[1].Value);
        Assert.Equal(loops, ulong.Parse(m.Groups[2].Value));
        Assert.Equal(perLoop * loops, ulong.Parse(m.Groups[3].Value));
        if (result != null) Assert.Equal(result, m.Groups[4].Value);
        Assert.InRange(r.Machine.Cpu.Retired, perLoop * loops, perLoop * loops + 40_000);   // inpm: the RSDP scan of 0xE0000-0xF0000 first
        Assert.Equal(0UL, r.Machine.Stats.Faults);
    }

    [GuestToolchainFact]
    public void The_PM_timer_mode_finds_the_port_through_the_FADT_and_reads_a_timer_that_advances()
    {
        var a = Run.Image(CompareGuest.Image, "loops=1000 mode=inpm", maxInstructions: 10_000_000);
        var b = Run.Image(CompareGuest.Image, "loops=100000 mode=inpm", maxInstructions: 10_000_000);
        ulong ta = Convert.ToUInt64(Report.Match(a.Console).Groups[4].Value, 16), tb = Convert.ToUInt64(Report.Match(b.Console).Groups[4].Value, 16);
        // 3.579545 MHz at one instruction per nanosecond: about 0.0036 ticks per instruction, 24 bits wide.
        Assert.True(tb > ta && tb < 1UL << 24, $"PM timer {ta:x} then {tb:x}");
    }

    [GuestToolchainFact]
    public void The_TSC_deadline_mode_leaves_the_APIC_timer_in_TSC_deadline_mode_and_disarmed()
    {
        var r = Run.Image(CompareGuest.Image, "loops=1000 mode=tscdl", maxInstructions: 10_000_000);
        Assert.Equal(33, r.ExitCode);
        Assert.True(r.Machine.Cpu.ReadMsr(0x6E0, out ulong deadline));
        Assert.Equal(0UL, deadline);                       // the guest writes 0 after its loop: the timer is disarmed
        Assert.Equal(0UL, r.Machine.Events.Interrupts);
    }

    [GuestToolchainQemuFact, Trait("Category", "Qemu")]
    public void QEMU_runs_the_same_guest_to_the_same_report_and_exit_status()
    {
        string path = Path.Combine(Path.GetTempPath(), $"emu64-compare-{Guid.NewGuid():N}.elf");
        File.WriteAllBytes(path, CompareGuest.Image);
        try
        {
            var psi = new ProcessStartInfo(Qemu.Path_!) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
            foreach (var a in new[] { "-accel", "tcg", "-nodefaults", "-display", "none", "-no-reboot", "-m", "128",
                                       "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-debugcon", "stdio",
                                       "-kernel", path, "-append", "loops=1000 mode=reg" })
                psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            p.StandardInput.Close();
            var so = p.StandardOutput.ReadToEndAsync();
            var se = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(60_000)) { p.Kill(true); p.WaitForExit(); Assert.Fail("QEMU did not exit within 60 s"); }
            Assert.True(p.ExitCode == 33, $"QEMU exit status {p.ExitCode}\n{so.Result}\n{se.Result}");
            var emu = Run.Image(CompareGuest.Image, "loops=1000 mode=reg");
            Assert.Equal(emu.Console, so.Result);
        }
        finally { File.Delete(path); }
    }
}

/// <summary>Builds bench/guest with its Makefile once per test run (into a temporary directory).</summary>
public static class CompareGuest
{
    public static readonly string[] Tools = { "gcc", "ld", "make" };

    public static string? Missing => Tools.FirstOrDefault(t => FindOnPath(t) == null);

    private static readonly Lazy<byte[]> Built = new(Build);
    public static byte[] Image => Built.Value;

    public static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Emu64.sln"))) return d.FullName;
        throw new InvalidOperationException("cannot find the repository root (Emu64.sln) above " + AppContext.BaseDirectory);
    }

    private static byte[] Build()
    {
        string dir = Directory.CreateTempSubdirectory("emu64-guest-").FullName;
        try
        {
            var psi = new ProcessStartInfo("make") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "-s", "-C", Path.Combine(RepoRoot(), "bench", "guest"), $"O={dir}" }) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            var so = p.StandardOutput.ReadToEndAsync();
            var se = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(120_000)) { p.Kill(true); throw new TimeoutException("make -C bench/guest did not finish"); }
            if (p.ExitCode != 0) throw new InvalidOperationException($"make -C bench/guest failed ({p.ExitCode}):\n{so.Result}{se.Result}");
            return File.ReadAllBytes(Path.Combine(dir, "loop.elf"));
        }
        finally { Directory.Delete(dir, true); }
    }

    public static string? FindOnPath(string name)
    {
        foreach (var d in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var p = Path.Combine(d, name);
            if (File.Exists(p)) return p;
        }
        return null;
    }
}

/// <summary>A fact that builds the compare guest: skipped, visibly, without gcc, ld and make.</summary>
public sealed class GuestToolchainFactAttribute : FactAttribute
{
    public GuestToolchainFactAttribute()
    {
        if (CompareGuest.Missing is { } t) Skip = $"{t} is not installed (needed to build bench/guest)";
    }
}

/// <summary>A theory that builds the compare guest: skipped, visibly, without gcc, ld and make.</summary>
public sealed class GuestToolchainTheoryAttribute : TheoryAttribute
{
    public GuestToolchainTheoryAttribute()
    {
        if (CompareGuest.Missing is { } t) Skip = $"{t} is not installed (needed to build bench/guest)";
    }
}

/// <summary>A fact that builds the compare guest and runs it in QEMU: skipped, visibly, when a tool is missing.</summary>
public sealed class GuestToolchainQemuFactAttribute : FactAttribute
{
    public GuestToolchainQemuFactAttribute()
    {
        if (CompareGuest.Missing is { } t) Skip = $"{t} is not installed (needed to build bench/guest)";
        else if (!Qemu.Available) Skip = $"{Qemu.Program} is not installed";
    }
}

/// <summary>-m accepts every size up to 2047M (RAM is one byte array), as its message says.</summary>
[Trait("Category", "Bench")]
public class RamSizeOptionTests
{
    [Theory]
    [InlineData("128", 128UL << 20)]
    [InlineData("1G", 1UL << 30)]
    [InlineData("1025M", 1025UL << 20)]
    [InlineData("1536M", 1536UL << 20)]
    [InlineData("2047M", 2047UL << 20)]
    [InlineData("2G", 2UL << 30)]
    [InlineData("3G", 3UL << 30)]
    public void Sizes_up_to_3G_are_accepted(string s, ulong bytes) => Assert.Equal(bytes, Emu64.Cli.Cli.ParseSize(s));

    [Theory]
    [InlineData("4G")]
    [InlineData("3073M")]
    public void Sizes_above_3G_are_refused_naming_the_limit(string s)
    {
        var e = Assert.Throws<Emu64.Cli.CliException>(() => Emu64.Cli.Cli.ParseSize(s));
        Assert.Contains("at most 3G", e.Message);
    }
}
