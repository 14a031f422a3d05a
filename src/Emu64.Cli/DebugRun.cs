using Emu64.Debugging;

namespace Emu64.Cli;

/// <summary>Runs a loaded machine under the tracer and/or the gdb stub (emu64 run/boot with --trace or --gdb).</summary>
public static class DebugRun
{
    public static StopReason Run(Machine m, DebugOptions o)
    {
        var syms = o.Symbols(m);
        using var tracer = o.CreateTracer(m, syms);
        if (o.GdbPort < 0)
        {
            tracer?.AttachAlone();
            return m.Run();
        }
        var dbg = new Debugger(m, syms) { Trace = tracer };
        dbg.UpdateHook();
        GdbStub stub;
        try { stub = new GdbStub(dbg, o.GdbHost ?? "127.0.0.1", o.GdbPort); }
        catch (System.Net.Sockets.SocketException e) { throw new CliException($"cannot listen for gdb on {o.GdbHost}:{o.GdbPort}: {e.Message}"); }
        using (stub)
        {
            stub.Log = Console.Error;
            Console.Error.WriteLine($"emu64: gdb stub listening on {o.GdbHost}:{stub.Port}" + (o.Wait ? " (waiting for gdb before the first instruction)" : ""));
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
