using System.Diagnostics;

namespace Emu64.Tests.Support;

/// <summary>
/// The GNU debugger, for the tests that drive emu64's gdb stub with a stock gdb. Found on PATH like
/// <see cref="Qemu"/>; .ci/run installs it, and without it those tests skip with the reason instead of
/// failing with "No such file or directory".
/// </summary>
public static class Gdb
{
    public const string Program = "gdb";

    private static readonly Lazy<string?> Found = new(() =>
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var p = Path.Combine(dir, Program);
            if (File.Exists(p)) return p;
        }
        return null;
    });

    /// <summary>Full path of gdb (throws when it is not installed: guard the test with <see cref="GdbFactAttribute"/>).</summary>
    public static string Path_ => Found.Value ?? throw new InvalidOperationException("gdb is not installed");
    public static bool Available => Found.Value != null;

    /// <summary>
    /// <c>gdb --batch -nx</c> with each command given by <c>-ex</c>, in order; its standard output then its standard
    /// error. Bounded: a gdb that has not finished within a minute is killed and the test fails saying so.
    /// </summary>
    public static string Batch(params string[] commands) => Run(commands.SelectMany(c => new[] { "-ex", c }));

    /// <summary>A gdb script (multi-line commands such as <c>while</c> need a file) run with <c>gdb --batch -nx -x</c>.</summary>
    public static string Script(string text)
    {
        string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"emu64-{Guid.NewGuid():N}.gdb");
        File.WriteAllText(path, text);
        try { return Run(["-x", path]); }
        finally { File.Delete(path); }
    }

    private static string Run(IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(Path_) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        psi.ArgumentList.Add("--batch");
        psi.ArgumentList.Add("-nx");
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(60_000)) { p.Kill(true); throw new TimeoutException("gdb did not finish within 60 s"); }
        return output.Result + err.Result;
    }

    /// <summary>
    /// The port an <c>emu64 ... --gdb 127.0.0.1:0 --wait</c> process listens on, from its "listening on" line on
    /// standard error (read within 30 s); the lines before it are in the failure message if it never comes.
    /// </summary>
    public static int ListeningPort(Process emu64)
    {
        var before = new System.Text.StringBuilder();
        var until = DateTime.UtcNow.AddSeconds(30);
        string? line;
        while (DateTime.UtcNow < until && (line = emu64.StandardError.ReadLine()) != null)
        {
            if (line.Contains("listening on 127.0.0.1:")) return int.Parse(line.Split("127.0.0.1:")[1].Split(' ')[0]);
            before.AppendLine(line);
        }
        throw new Xunit.Sdk.XunitException("emu64 never said which port it listens on:\n" + before);
    }
}

/// <summary>A fact that needs gdb: skipped, visibly, when it is not installed.</summary>
public sealed class GdbFactAttribute : FactAttribute
{
    public GdbFactAttribute()
    {
        if (!Gdb.Available) Skip = $"{Gdb.Program} is not installed";
    }
}
