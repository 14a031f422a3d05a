using Emu64.Tests.Robustness;
using Emu64.Tests.Support;

namespace Emu64.Tests.Forensics;

/// <summary>docs/DUMPS.md shows a real run: replaying its two commands gives its boot lines and, line for line, its analyze output.</summary>
public class DumpsDocTests
{
    [Fact]
    public void DUMPS_md_transcript_is_what_boot_and_analyze_print()
    {
        string doc = File.ReadAllText(Path.Combine(Path.GetDirectoryName(ErrorTableTests.ErrorsMdPath())!, "DUMPS.md")).Replace("\r", "");
        int at = doc.IndexOf("## A run", StringComparison.Ordinal);
        Assert.True(at >= 0, "DUMPS.md has no '## A run' section");
        int start = doc.IndexOf("```\n", at, StringComparison.Ordinal) + 4;
        var block = doc[start..doc.IndexOf("\n```", start, StringComparison.Ordinal)].Split('\n');
        Assert.Equal("$ emu64 boot --seed 7 --append \"init=echo,echo\" --max-instructions 4000000 --dump-on-exit guest.core", block[0]);
        int analyze = Array.IndexOf(block, "$ emu64 analyze guest.core");
        Assert.True(analyze > 0, "no '$ emu64 analyze guest.core' line");

        using var dir = new CliRun.TempDir();
        string path = dir.Name("guest.core");
        var boot = CliRun.Execute("boot", "--seed", "7", "--append", "init=echo,echo", "--max-instructions", "4000000", "--dump-on-exit", path);
        Assert.Equal(6, boot.Status);
        int from = 0;
        foreach (var line in block[1..analyze].Where(l => l != "..."))
        {
            int i = boot.Out.IndexOf(line + "\n", from, StringComparison.Ordinal);
            Assert.True(i >= 0, $"boot did not print (in this order): {line}\n{boot.Out}");
            from = i;
        }
        string expected = string.Join("\n", block[(analyze + 1)..]);
        string actual = CliRun.Execute("analyze", path).Out.Replace(path, "guest.core").TrimEnd('\n');
        Assert.Equal(expected, actual);
    }
}
