using Emu64.Tests.Support;

namespace Emu64.Tests.Debugging;

/// <summary>
/// The walkthrough of one system call in README.md ("Stepping a system call") and docs/DEBUGGING.md
/// ("Walkthrough") is the real output of one script, docs/walkthrough.txt. Each code block is a run of
/// whole commands: "(emu64) COMMAND" and everything the debugger printed for it (the guest's boot log
/// left out), exactly, numbers included. To produce the blocks again after a change to the kernel or
/// the debugger: <c>EMU64_UPDATE_WALKTHROUGH=1 dotnet test --filter WalkthroughTests</c> rewrites them.
/// </summary>
public class WalkthroughTests
{
    public const string Append = "nokaslr init=syscalls:1";
    public const string Invocation = "$ emu64 debug --append \"" + Append + "\" --script docs/walkthrough.txt";

    private static string Root => Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Emu64.Tests.Robustness.ErrorTableTests.ErrorsMdPath())!, ".."));

    /// <summary>Each command with the lines it printed, in order, from one run of the script (guest console lines removed).</summary>
    private static List<(string Command, string[] Output)> Transcript()
    {
        string script = Path.Combine(Root, "docs", "walkthrough.txt");
        var r = CliRun.Execute("debug", "--append", Append, "--script", script);
        Assert.True(r.Status == 0, $"status {r.Status}\n{r.Stderr}");
        // What the guest printed (the same deterministic run without the debugger) is not the debugger's.
        var guest = CliRun.Execute("boot", "--append", Append).Out.Replace("\r", "").Split('\n').Where(l => l.Length > 0).ToHashSet();
        var units = new List<(string, string[])>();
        string? cmd = null;
        var body = new List<string>();
        foreach (var line in r.Out.Replace("\r", "").Split('\n'))
        {
            if (line.StartsWith(DebugPrompt))
            {
                if (cmd != null) units.Add((cmd, [.. body]));
                cmd = line[DebugPrompt.Length..];
                body.Clear();
            }
            else if (cmd != null && line.Length > 0 && !guest.Contains(line)) body.Add(line);
        }
        if (cmd != null) units.Add((cmd, [.. body]));
        Assert.Equal(File.ReadAllLines(script).Where(l => l.Trim().Length > 0), units.Select(u => u.Item1));
        return units;
    }

    private const string DebugPrompt = Emu64.Cli.DebugCommand.Prompt;

    /// <summary>The code blocks of a document between a heading and the next heading of level 2.</summary>
    private static List<(int Start, int End)> Blocks(string text, string heading)
    {
        int section = text.IndexOf(heading, StringComparison.Ordinal);
        Assert.True(section >= 0, $"no '{heading}' section");
        int sectionEnd = text.IndexOf("\n## ", section + heading.Length, StringComparison.Ordinal);
        if (sectionEnd < 0) sectionEnd = text.Length;
        var blocks = new List<(int, int)>();
        for (int at = section; ;)
        {
            int open = text.IndexOf("\n```\n", at, StringComparison.Ordinal);
            if (open < 0 || open >= sectionEnd) break;
            int start = open + 5;
            int end = text.IndexOf("```\n", start, StringComparison.Ordinal);
            blocks.Add((start, end));
            at = end + 3;
        }
        return blocks;
    }

    /// <summary>
    /// A block as it should read: the invocation line if it has one, then its commands with their real output.
    /// Commands are matched in order from <paramref name="next"/> (a document may leave a command out).
    /// </summary>
    private static string Expected(string block, List<(string Command, string[] Output)> units, ref int next)
    {
        var lines = block.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var sb = new System.Text.StringBuilder();
        foreach (var l in lines)
        {
            if (l.StartsWith("$ ")) sb.Append(Invocation).Append('\n');
            else if (l.StartsWith(DebugPrompt))
            {
                string cmd = l[DebugPrompt.Length..];
                while (next < units.Count && units[next].Command != cmd) next++;
                Assert.True(next < units.Count, $"'{cmd}' is not in docs/walkthrough.txt (in this order)");
                sb.Append(l).Append('\n');
                foreach (var o in units[next].Output) sb.Append(o).Append('\n');
                next++;
            }
        }
        return sb.ToString();
    }

    [Theory]
    [InlineData("README.md", "## Stepping a system call")]
    [InlineData("docs/DEBUGGING.md", "### Walkthrough")]
    public void The_walkthrough_blocks_are_the_real_output_of_docs_walkthrough_txt(string doc, string heading)
    {
        string path = Path.Combine(Root, doc);
        string text = File.ReadAllText(path).Replace("\r", "");
        var units = Transcript();
        var blocks = Blocks(text, heading);
        Assert.NotEmpty(blocks);
        bool update = Environment.GetEnvironmentVariable("EMU64_UPDATE_WALKTHROUGH") == "1";
        var fixedText = text;
        int next = 0;
        var expected = new List<string>();
        foreach (var (start, end) in blocks)
        {
            string block = text[start..end];
            Assert.Contains(DebugPrompt, block);
            expected.Add(Expected(block, units, ref next));
        }
        for (int i = blocks.Count - 1; i >= 0; i--)
        {
            var (start, end) = blocks[i];
            string block = text[start..end];
            if (update) fixedText = fixedText[..start] + expected[i] + fixedText[end..];
            else Assert.True(block == expected[i], $"{doc}: a walkthrough block differs from the real output.\n--- in {doc} ---\n{block}--- real ---\n{expected[i]}");
        }
        if (update) File.WriteAllText(path, fixedText);
    }

    [Fact]
    public void The_walkthrough_script_walks_one_system_call_from_user_mode_into_the_kernel_and_back()
    {
        var u = Transcript();
        Assert.StartsWith("breakpoint at 0xffffffff81001000 <entry_SYSCALL_64>", u[1].Output[0]);
        Assert.Equal(["[cr3]", "[cr3]", "[sysret]"], new[] { 2, 4, 5 }.Select(i => u[i].Output[0].Split(' ')[0]));
        Assert.Contains("pcid 802 -> 2 noflush", u[2].Output[0]);
        Assert.StartsWith("  now cpl=3 ", u[5].Output[1]);
    }
}
