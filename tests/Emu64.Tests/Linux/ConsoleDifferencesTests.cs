namespace Emu64.Tests.Linux;

/// <summary>The console comparison's own parts, without a boot.</summary>
public class ConsoleDifferencesTests
{
    [Fact]
    public void A_line_printed_at_another_point_is_a_move_and_a_changed_line_is_a_difference()
    {
        List<string> qemu = ["a", "b", "input: keyboard", "c", "d old"];
        List<string> emu = ["a", "input: keyboard", "b", "c", "d new"];
        var diff = ConsoleDifferences.Diff(qemu, emu);
        var (others, moved) = ConsoleDifferences.SplitMoves(diff);
        Assert.Equal(["input: keyboard"], moved);
        Assert.Equal(["- QEMU 4: d old", "+ Emu64 4: d new"], others.OrderBy(o => o[0] == '+').ToList());
    }

    /// <summary>A QEMU line that only a loaded host produces (kernel/time/clocksource.c's watchdog) is one docs/LINUX.md's table drops.</summary>
    [Fact]
    public void QEMUs_long_readout_interval_warning_under_host_load_is_a_documented_timing_difference()
    {
        const string line = "clocksource: Long readout interval, skipping watchdog check: cs_nsec: 1370499158 wd_nsec: 1370498904";
        var rule = Assert.Single(ConsoleDifferences.Read(), r => r.Matches(line));
        Assert.True(rule.Qemu && !rule.Emu64 && rule.Sometimes);
        // only that line: the Emu64 side's own clocksource lines are still compared
        Assert.DoesNotContain(ConsoleDifferences.Read(), r => r.Qemu && !r.Emu64 && r.Matches("clocksource: Switched to clocksource tsc"));
    }

    [Fact]
    public void Identical_consoles_have_no_difference_and_no_move()
    {
        var (others, moved) = ConsoleDifferences.SplitMoves(ConsoleDifferences.Diff(["x", "y"], ["x", "y"]));
        Assert.Empty(others);
        Assert.Empty(moved);
    }
}
