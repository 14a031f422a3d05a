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
}

/// <summary>A fact that needs gdb: skipped, visibly, when it is not installed.</summary>
public sealed class GdbFactAttribute : FactAttribute
{
    public GdbFactAttribute()
    {
        if (!Gdb.Available) Skip = $"{Gdb.Program} is not installed";
    }
}
