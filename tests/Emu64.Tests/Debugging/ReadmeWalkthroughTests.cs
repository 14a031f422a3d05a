using Emu64.Tests.Support;

namespace Emu64.Tests.Debugging;

/// <summary>README's "Stepping a system call" shows real output: replaying its commands gives its lines, in order.</summary>
public class ReadmeWalkthroughTests
{
    [Fact]
    public void README_stepping_a_system_call_transcript_is_what_emu64_debug_prints()
    {
        string readme = File.ReadAllText(Path.Combine(Path.GetDirectoryName(ErrorsMd())!, "..", "README.md"));
        int section = readme.IndexOf("## Stepping a system call", StringComparison.Ordinal);
        Assert.True(section >= 0, "README has no 'Stepping a system call' section");
        int start = readme.IndexOf("```\n", section, StringComparison.Ordinal) + 4;
        int end = readme.IndexOf("```", start, StringComparison.Ordinal);
        var expected = readme[start..end].Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var commands = expected.Where(l => l.StartsWith("(emu64) ")).Select(l => l["(emu64) ".Length..]).ToList();
        Assert.Equal(["break entry_SYSCALL_64", "continue", "stepb", "pcid", "stepb", "stepb"], commands);

        using var dir = new CliRun.TempDir();
        var script = dir.File("walk.txt", string.Join('\n', commands) + "\n");
        var r = CliRun.Execute("debug", "--append", "nokaslr init=syscalls:1", "--script", script);
        Assert.Equal(0, r.Status);
        // "#58596" is the instruction count, which depends on the kernel's path (the boot log prints it)
        static string Norm(string l) => System.Text.RegularExpressions.Regex.Replace(l, "#[0-9]+ ", "#N ");
        var actual = r.Out.Replace("\r", "").Split('\n').Select(Norm).ToArray();
        int at = 0;
        foreach (var line in expected.Select(Norm))
        {
            while (at < actual.Length && actual[at] != line) at++;
            Assert.True(at < actual.Length, $"README line not printed (in order): {line}\n--- transcript ---\n{r.Out}");
            at++;
        }
    }

    private static string ErrorsMd() => Emu64.Tests.Robustness.ErrorTableTests.ErrorsMdPath();
}
