using Emu64.Forensics;

namespace Emu64.Debugging;

/// <summary>
/// The debugger's <c>dump FILE</c> and the gdb stub's <c>monitor dump-guest-memory FILE</c>: the stopped
/// machine's RAM and CPU state as an ELF core in QEMU's dump-guest-memory layout (Forensics/CoreLayout.cs).
/// Only that format is written: QEMU's options for other formats (-z, -l, -s, -w, -R, -d) and its paging
/// filter (-p) and ranges are refused with a message.
/// </summary>
public static class DumpCommand
{
    public static string Execute(Machine m, string[] args)
    {
        if (args.FirstOrDefault(a => a.StartsWith('-')) is { } opt)
            return $"dump: option {opt} is not supported: Emu64 writes QEMU's ELF format of all RAM, without paging filter\n";
        if (args.Length != 1) return "usage: dump FILE (or dump-guest-memory FILE)\n";
        string file = args[0];
        try
        {
            long n = CoreDumpWriter.WriteFile(m, file);
            return $"dumped {m.Memory.RamSize >> 20} MiB of guest memory and the CPU state to {file} ({n} bytes, ELF core)\n";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return $"dump: cannot write '{file}': {e.Message}\n";
        }
    }
}
