namespace Emu64.Tests.Support;

/// <summary>Where the GNU debugger is, for the tests that drive the gdb stub with the real client.</summary>
public static class Gdb
{
    public const string Program = "gdb";

    private static readonly Lazy<string?> Found = new(() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(d => Path.Combine(d, Program)).FirstOrDefault(File.Exists));

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
