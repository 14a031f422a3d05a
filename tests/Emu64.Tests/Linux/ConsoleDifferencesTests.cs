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

    [Fact]
    public void Identical_consoles_have_no_difference_and_no_move()
    {
        var (others, moved) = ConsoleDifferences.SplitMoves(ConsoleDifferences.Diff(["x", "y"], ["x", "y"]));
        Assert.Empty(others);
        Assert.Empty(moved);
    }
}
