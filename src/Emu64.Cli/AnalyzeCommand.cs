using Emu64.Forensics;

namespace Emu64.Cli;

/// <summary>
/// `emu64 analyze DUMP [--use-cr3]`: recovers the kernel's layout from a guest memory dump (docs/DUMPS.md).
/// Without --use-cr3 the CPU note's CR3 is not used to find anything, only cross-checked at the end.
/// </summary>
public static class AnalyzeCommand
{
    public const string Usage = "usage: emu64 analyze DUMP [--use-cr3]";

    public static int Run(string[] args)
    {
        string? path = null;
        bool useCr3 = false;
        foreach (var a in args)
        {
            if (a == "--use-cr3") useCr3 = true;
            else if (a is "-h" or "--help") { Cli.Out.WriteLine(Usage); return ExitStatus.Ok; }
            else if (a.StartsWith('-')) throw new CliException($"unknown option {a}");
            else if (path != null) throw new CliException($"unexpected argument '{a}'");
            else path = a;
        }
        if (path is null) throw new CliException($"no dump given ({Usage})");
        if (Directory.Exists(path)) throw new CliException($"dump '{path}' is a directory");
        if (!File.Exists(path)) throw new CliException($"dump '{path}' does not exist");
        CoreFile dump;
        try { dump = new CoreFile(path); }
        catch (DumpFormatException e) { throw new CliException($"bad dump '{path}': {e.Message}"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new CliException($"cannot read dump '{path}': {e.Message}"); }
        using (dump)
        {
            (ulong, ulong)? regs = null;
            if (useCr3)
            {
                if (dump.CpuState is not { } cpu) throw new CliException($"--use-cr3: dump '{path}' has no QEMU CPU-state note");
                regs = (cpu.Cr(3), cpu.Cr(4));
            }
            var result = DumpAnalysis.Run(dump, regs);
            var w = Cli.Out;
            w.Write(AnalysisReport.Format(dump, result));
            w.Flush();
            return ExitStatus.Ok;
        }
    }
}
