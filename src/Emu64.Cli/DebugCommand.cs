using Emu64.Debugging;
using Emu64.Loader;

namespace Emu64.Cli;

/// <summary>
/// `emu64 debug [KERNEL] [run options] [--script FILE]`: the interactive debugger. Commands come from
/// the terminal (an empty line repeats the last step/stepb/until/continue; `help` lists them all), or
/// from a script file, each echoed after a "(emu64) " prompt so a transcript reads like a session.
/// </summary>
public static class DebugCommand
{
    public const string Prompt = "(emu64) ";

    public static int Run(string[] args)
    {
        var (dopts, rest) = DebugOptions.Extract(args, allowScript: true);
        if (dopts.GdbPort >= 0) throw new CliException("debug does not take --gdb (use run or boot --gdb PORT --wait)");
        string? kernel = null;
        if (rest.Length > 0 && !rest[0].StartsWith('-')) { kernel = rest[0]; rest = rest[1..]; }
        var ro = Cli.ParseRunOptions(rest, needKernel: false) with { Kernel = kernel ?? Cli.BundledKernelPath(), GuestKernelName = kernel is null ? Cli.BundledKernelName : null };
        // The script is read before anything is printed: a missing one is the error line alone.
        string[]? script = null;
        if (dopts.Script != null)
        {
            try { script = File.ReadAllLines(dopts.Script); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new CliException($"cannot read script '{dopts.Script}': {e.Message}"); }
        }
        var m = Cli.CreateMachine(ro, Cli.OpenStdout());
        var syms = dopts.Symbols(m);
        // A stock Linux kernel has no symbol file: read its kallsyms now (a scratch run to where it sets LSTAR), so that
        // `break entry_SYSCALL_64` typed before the kernel has relocated itself already names where it will run.
        DebugRun.LearnKallsyms(syms, dopts, ro);
        using var tracer = dopts.CreateTracer(m, syms);
        var dbg = new Debugger(m, syms) { Trace = tracer };
        dbg.UpdateHook();
        var cmds = new DebuggerCommands(dbg);
        var output = Cli.Out;

        output.WriteLine($"emu64 debugger: {ro.Kernel} ({syms.Count} symbols); stopped before the first instruction at 0x{dbg.Rip:x}. Type help for commands.");
        if (script != null)
        {
            foreach (var line in script)
            {
                if (line.Trim().Length == 0) continue;
                output.Write(Prompt + line + "\n");
                output.Write(Execute(cmds, line));
                output.Flush();
                if (cmds.QuitRequested) break;
            }
        }
        else
        {
            // Ctrl-C stops a running `continue` at the next instruction boundary instead of ending the program.
            Console.CancelKeyPress += (_, e) => { e.Cancel = true; m.Stop(StopReason.Break); };
            string last = "";
            while (!cmds.QuitRequested)
            {
                output.Write(Prompt);
                output.Flush();
                string? line = Console.ReadLine();
                if (line is null) break;                       // end of input
                if (line.Trim().Length == 0) line = last;       // gdb's habit: Enter repeats a run command
                else if (IsRepeatable(line)) last = line;
                else last = "";
                output.Write(Execute(cmds, line));
            }
        }
        output.Flush();
        int status = ExitStatus.For(m.StopReason, m.ExitCode);
        return kernel is null ? ExitStatus.ForBundledKernel(status) : status;
    }

    private static bool IsRepeatable(string line)
    {
        string w = line.Trim().Split(' ')[0];
        return w is "step" or "s" or "si" or "stepi" or "stepb" or "until" or "continue" or "c" or "x" or "disas";
    }

    private static string Execute(DebuggerCommands cmds, string line)
    {
        try { return cmds.Execute(line); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A debugger command must never take the session down.
            return $"error: {e.Message}\n";
        }
    }
}

/// <summary>Runs a loaded machine under the tracer and/or the gdb stub (emu64 run/boot with --trace or --gdb).</summary>
public static class DebugRun
{
    /// <summary>Instructions a scratch machine may run to find the KASLR offset (the toy kernel announces it within 100,000).</summary>
    public const ulong KaslrProbeLimit = 20_000_000;

    /// <summary>
    /// The KASLR offset the kernel of <paramref name="o"/> will choose: a scratch machine with the same
    /// options (no output, no input) runs until the kernel announces its _text or sets LSTAR, at most
    /// <see cref="KaslrProbeLimit"/> instructions. Null when it does neither, or has no such symbols.
    /// </summary>
    public static long? ProbeKaslrSlide(Cli.RunOptions o)
    {
        using var probe = Cli.CreateMachine(o with { MaxInstructions = Math.Min(o.MaxInstructions, KaslrProbeLimit) }, Stream.Null, current: false);
        var syms = new SymbolTable(probe.Symbols);
        while (probe.StopReason == StopReason.None)
        {
            if (syms.DetectSlide(probe)) return syms.Slide;
            probe.Run(GdbStub.SliceInstructions);
        }
        return syms.DetectSlide(probe) ? syms.Slide : null;
    }

    /// <summary>Instructions a scratch machine may run for a kernel without symbols to set LSTAR (Debian's 6.1 does after about 134 million).</summary>
    public const ulong KallsymsProbeLimit = 3_000_000_000;

    /// <summary>
    /// The kallsyms of the kernel of <paramref name="o"/> as it will run: a scratch machine with the same options
    /// runs until the kernel has set LSTAR (it then runs relocated, KASLR applied), and its tables are read from RAM.
    /// </summary>
    public static Kallsyms.Table? ProbeKallsyms(Cli.RunOptions o, out ulong retired)
    {
        using var probe = Cli.CreateMachine(o with { MaxInstructions = Math.Min(o.MaxInstructions, KallsymsProbeLimit) }, Stream.Null, current: false);
        while (probe.StopReason == StopReason.None && probe.Cpu.Lstar == 0) probe.Run(GdbStub.SliceInstructions);
        retired = probe.Cpu.Retired;
        return probe.Cpu.Lstar == 0 ? null : Kallsyms.Find(probe.Memory);
    }

    /// <summary>For a kernel without symbols: reads its kallsyms through a scratch run, and with --gdb-symbols writes them as an ELF for gdb.</summary>
    public static void LearnKallsyms(SymbolTable syms, DebugOptions o, Cli.RunOptions run)
    {
        if (syms.Count != 0 || !IsBzImage(run.Kernel)) return;
        var t = ProbeKallsyms(run, out ulong at);
        if (!syms.UseKallsyms(t))
        {
            Cli.Err.WriteLine($"emu64: the kernel has no symbols and no kallsyms tables were found (scratch run to instruction {at}): addresses stay unnamed");
            return;
        }
        Cli.Err.WriteLine($"emu64: {syms.Count} symbols from the kernel's kallsyms (a scratch run to instruction {at}, where it set LSTAR); KASLR offset 0x{(ulong)syms.KaslrOffset:x}");
        if (o.GdbSymbols is { } path)
        {
            try { File.WriteAllBytes(path, SymbolElf.Write(t!.Symbols())); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new CliException($"cannot write '{path}': {e.Message}"); }
            Cli.Err.WriteLine($"emu64: symbols for gdb at their runtime addresses: symbol-file {Path.GetFullPath(path)}");
        }
    }

    /// <summary>A Linux bzImage: "HdrS" at 0x202 (the boot protocol's setup header). Only those are probed for kallsyms.</summary>
    public static bool IsBzImage(string? path)
    {
        if (path is null) return false;
        try
        {
            using var f = File.OpenRead(path);
            var b = new byte[0x206];
            return f.Read(b, 0, b.Length) == b.Length && b[0x202] == 'H' && b[0x203] == 'd' && b[0x204] == 'r' && b[0x205] == 'S';
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    public static StopReason Run(Machine m, DebugOptions o, Cli.RunOptions? run = null)
    {
        var syms = o.Symbols(m);
        using var tracer = o.CreateTracer(m, syms);
        if (o.GdbPort < 0)
        {
            tracer?.AttachAlone();
            return m.Run();
        }
        if (run is not null && o.GdbPort >= 0) LearnKallsyms(syms, o, run);
        var dbg = new Debugger(m, syms) { Trace = tracer };
        dbg.UpdateHook();
        // gdb asks for the KASLR offset (qOffsets) when it connects, before the kernel has chosen it: learn it
        // from a scratch copy of the machine, which chooses the same one (the run is deterministic).
        // (Only for a kernel with the symbols the offset is learned from: any other would run the probe to its limit.)
        if (run is not null && !syms.SlideKnown && (syms.TryResolve("_text", out _) || syms.TryResolve("entry_SYSCALL_64", out _))
            && ProbeKaslrSlide(run) is { } slide)
            syms.LearnSlide(slide);
        GdbStub stub;
        try { stub = new GdbStub(dbg, o.GdbHost ?? "127.0.0.1", o.GdbPort) { KernelPath = run?.Kernel is { } k ? Path.GetFullPath(k) : null }; }
        catch (System.Net.Sockets.SocketException e) { throw new CliException($"cannot listen for gdb on {o.GdbHost}:{o.GdbPort}: {e.Message}"); }
        using (stub)
        {
            stub.Log = Cli.Err;
            Cli.Err.WriteLine($"emu64: gdb stub listening on {o.GdbHost}:{stub.Port}" + (o.Wait ? " (waiting for gdb before the first instruction)" : ""));
            if (syms.SlideKnown && syms.Slide != 0)
                Cli.Err.WriteLine($"emu64: the kernel's KASLR offset is 0x{(ulong)syms.Slide:x}: gdb relocates a symbol-file loaded before target remote by it (qOffsets); else: symbol-file -o 0x{(ulong)syms.Slide:x} {stub.KernelPath}");
            if (o.Wait) stub.Serve();
            else
            {
                // Run in slices and let gdb attach whenever it connects.
                while (m.StopReason == StopReason.None)
                {
                    if (stub.ClientWaiting) { stub.Serve(); break; }
                    m.Run(GdbStub.SliceInstructions);
                }
            }
        }
        if (m.StopReason is StopReason.None or StopReason.Break) { m.ClearBreak(); dbg.UpdateHook(); m.Run(); }
        return m.StopReason;
    }
}
