using System.Text.RegularExpressions;

namespace Emu64.Tests.Linux;

/// <summary>
/// The documented differences between Linux's console under Emu64 and under <c>qemu-system-x86_64 -cpu max</c>:
/// the table under "## Differences from QEMU's console" in docs/LINUX.md, read by the test so that the list a
/// reader sees and the list the test filters with are one list. A row: <c>| console | `regex` | why |</c>, where
/// console is Emu64, QEMU or both (", sometimes" when the line depends on the host's timing and may be absent), and
/// the regular expression must match a whole console line (printk timestamp removed); <c>\|</c> in the table is a <c>|</c>.
/// </summary>
public static class ConsoleDifferences
{
    public const string Heading = "## Differences from QEMU's console";

    /// <summary>One row: which console the line is dropped from, the pattern, and whether it may be absent (host timing).</summary>
    public sealed record Rule(string Where, string Pattern, bool Sometimes)
    {
        private readonly Regex _re = new("^(?:" + Pattern + ")$", RegexOptions.CultureInvariant);
        public bool Emu64 => Where is "Emu64" or "both";
        public bool Qemu => Where is "QEMU" or "both";
        public bool Matches(string line) => _re.IsMatch(line);
    }

    public static string DocPath()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
        {
            var p = Path.Combine(d.FullName, "docs", "LINUX.md");
            if (File.Exists(p)) return p;
        }
        throw new FileNotFoundException("docs/LINUX.md not found above " + AppContext.BaseDirectory);
    }

    public static List<Rule> Read() => Parse(File.ReadAllLines(DocPath()));

    public static List<Rule> Parse(string[] doc)
    {
        int h = Array.IndexOf(doc, Heading);
        if (h < 0) throw new InvalidDataException($"docs/LINUX.md has no \"{Heading}\" section");
        var rules = new List<Rule>();
        int i = h + 1;
        while (i < doc.Length && !doc[i].StartsWith("| console |")) i++;
        for (i += 2; i < doc.Length && doc[i].StartsWith('|'); i++)
        {
            var cells = Regex.Split(doc[i], @"(?<!\\)\|");
            if (cells.Length != 5) throw new InvalidDataException($"docs/LINUX.md line {i + 1}: a row needs three cells: {doc[i]}");
            string where = cells[1].Trim(), pattern = cells[2].Trim().Replace("\\|", "|");
            bool sometimes = where.EndsWith(", sometimes");
            if (sometimes) where = where[..^", sometimes".Length];
            if (where is not ("Emu64" or "QEMU" or "both")) throw new InvalidDataException($"docs/LINUX.md line {i + 1}: console must be Emu64, QEMU or both, not {where}");
            if (pattern.Length < 3 || pattern[0] != '`' || pattern[^1] != '`') throw new InvalidDataException($"docs/LINUX.md line {i + 1}: the pattern must be in backticks");
            rules.Add(new Rule(where, pattern[1..^1], sometimes));
        }
        if (rules.Count == 0) throw new InvalidDataException("docs/LINUX.md: the differences table is empty");
        return rules;
    }

    /// <summary>
    /// The lines of a longest common subsequence's complement: "- line" only in <paramref name="qemu"/>, "+ line" only
    /// in <paramref name="emu"/>, each with its index, in order. Empty when the two are identical.
    /// </summary>
    public static List<string> Diff(List<string> qemu, List<string> emu)
    {
        int n = qemu.Count, m = emu.Count;
        var lcs = new int[n + 1, m + 1];
        for (int i = n - 1; i >= 0; i--)
            for (int j = m - 1; j >= 0; j--)
                lcs[i, j] = qemu[i] == emu[j] ? lcs[i + 1, j + 1] + 1 : Math.Max(lcs[i + 1, j], lcs[i, j + 1]);
        var d = new List<string>();
        int a = 0, b = 0;
        while (a < n || b < m)
        {
            if (a < n && b < m && qemu[a] == emu[b]) { a++; b++; }
            else if (b < m && (a == n || lcs[a, b + 1] >= lcs[a + 1, b])) { d.Add($"+ Emu64 {b}: {emu[b]}"); b++; }
            else { d.Add($"- QEMU {a}: {qemu[a]}"); a++; }
        }
        return d;
    }

    /// <summary>
    /// The lines of a <see cref="Diff"/> that only moved: the same text taken out at one place and put in at another, as
    /// a line printed by an asynchronous probe does (the keyboard's `input:` line comes from a worker thread whose turn
    /// under QEMU depends on the host's timing). Returns the diff without them, and the moved texts.
    /// </summary>
    public static (List<string> Others, List<string> Moved) SplitMoves(List<string> diff)
    {
        static string Text(string d) => d[(d.IndexOf(": ", StringComparison.Ordinal) + 2)..];
        var removed = diff.Where(d => d[0] == '-').Select(Text).ToList();
        var moved = new List<string>();
        foreach (var d in diff.Where(d => d[0] == '+'))
            if (removed.Remove(Text(d))) moved.Add(Text(d));
        List<string> plus = [.. moved], minus = [.. moved];
        var rest = diff.Where(d => !(d[0] == '+' ? plus : minus).Remove(Text(d))).ToList();
        return (rest, moved);
    }

    /// <summary>The console's lines without carriage returns, printk timestamps and trailing empty lines.</summary>
    public static List<string> Normalize(string console)
    {
        var lines = console.Replace("\r", "").Split('\n').Select(l => Regex.Replace(l, @"^\[ *[0-9]+\.[0-9]+\] ", "")).ToList();
        while (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        return lines;
    }
}
