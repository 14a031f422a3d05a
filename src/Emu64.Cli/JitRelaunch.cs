using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Emu64.Cli;

/// <summary>
/// Runs `emu64 run` and `emu64 measure` in a child process with one JIT setting the runtime reads only from the environment:
/// <c>DOTNET_JitMaxLocalsToTrack</c>.
///
/// Why: a compiled region (Cpu/BlockCompiler.cs) is one method of up to 128 guest instructions, each an inlined handler that
/// inlines the register, flag and memory helpers under it, and every inline takes temporaries. Past 1,024 locals (the
/// default) the JIT stops inlining for the rest of the method ("too many locals"), so in the larger regions of real code
/// (Linux) the later instructions became calls, even MOV between registers. With 8,192 they are inlined; the Linux boot's
/// first 1.6 x 10^9 instructions took 17% less CPU time (docs/PERFORMANCE.md, "Compiling in the background"). The setting
/// cannot be made from inside the process (the JIT reads it once, from the native environment, when it starts), hence the
/// child. Other commands (the bundled kernel's `boot`, `debug`, `analyze`) run short or interactive guests and keep their
/// start-up time. Output, exit status and every counter are the same either way: only host time changes.
/// </summary>
internal static class JitRelaunch
{
    public const string Knob = "DOTNET_JitMaxLocalsToTrack", Value = "0x2000";
    /// <summary>Set to 1 to run in this process whatever the command.</summary>
    public const string OptOut = "EMU64_NO_RELAUNCH";

    /// <summary>The child's exit status, or null when this process should run the command itself.</summary>
    public static int? Run(string[] args)
    {
        if (args.Length == 0 || args[0] is not ("run" or "measure")) return null;
        if (Environment.GetEnvironmentVariable(Knob) is not null || Environment.GetEnvironmentVariable(OptOut) == "1") return null;
        var self = Environment.ProcessPath;
        if (self is null) return null;
        var psi = new ProcessStartInfo(self) { UseShellExecute = false };   // stdin, stdout and stderr are inherited
        // Started as `dotnet emu64.dll ...`: the child needs the assembly again; the apphost `emu64` needs nothing more.
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") psi.ArgumentList.Add(typeof(JitRelaunch).Assembly.Location);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment[Knob] = Value;
        Process child;
        try { child = Process.Start(psi)!; }
        catch (Exception) { return null; }   // cannot start a process here: run in this one, only slower
        using (child)
        {
            // Ctrl-C reaches the child through the terminal's process group; SIGTERM (a CI timeout, kill) is passed on.
            Console.CancelKeyPress += (_, e) => e.Cancel = true;
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
            {
                ctx.Cancel = true;
                try { child.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            });
            child.WaitForExit();
            return child.ExitCode;
        }
    }
}
