using Emu64.Forensics;

namespace Emu64.Cli;

/// <summary>
/// --dump-on-exit FILE for run/boot: when the run ends, however it ends, the guest's memory and CPU state
/// are written to FILE as an ELF core (QEMU's dump-guest-memory layout; docs/DEBUGGING.md).
/// </summary>
public static class DumpOnExit
{
    public const string Usage = "  --dump-on-exit FILE    when the run ends, write guest memory and CPU state to FILE (ELF core, as QEMU's dump-guest-memory)";

    /// <summary>Removes --dump-on-exit FILE from <paramref name="args"/>; returns the file (or null) and the rest.</summary>
    public static (string? File, string[] Remaining) Extract(string[] args)
    {
        string? file = null;
        var rest = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] != "--dump-on-exit") { rest.Add(args[i]); continue; }
            if (i + 1 >= args.Length) throw new CliException("option --dump-on-exit needs a value");
            file = args[++i];
            if (string.IsNullOrWhiteSpace(file)) throw new CliException("option --dump-on-exit needs a file name");
            string? dir = Path.GetDirectoryName(Path.GetFullPath(file));
            if (dir != null && !Directory.Exists(dir)) throw new CliException($"option --dump-on-exit: directory '{dir}' does not exist");
            if (Directory.Exists(file)) throw new CliException($"option --dump-on-exit: '{file}' is a directory");
        }
        return (file, rest.ToArray());
    }

    /// <summary>Writes the dump; a file that cannot be written is one line on stderr (the run's own status is kept).</summary>
    public static bool Write(Machine m, string file)
    {
        try
        {
            long n = CoreDumpWriter.WriteFile(m, file);
            Cli.Err.WriteLine($"emu64: guest memory dumped to {file} ({n} bytes)");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            Cli.Err.WriteLine($"emu64: cannot write dump '{file}': {e.Message}");
            return false;
        }
    }
}
