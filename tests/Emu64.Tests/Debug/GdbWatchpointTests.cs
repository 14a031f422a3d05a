using System.Diagnostics;
using Emu64.Debugging;
using Emu64.Tests.Debugging;
using Emu64.Tests.Support;
using Debugger = Emu64.Debugging.Debugger;

namespace Emu64.Tests.Debug;

/// <summary>
/// Stock gdb against the stub on the system-call kernel: access (Z4) and read (Z3) watchpoints stop at the instructions
/// that really touch the word — here the entry code's save of the user RSP and its reload — with the value gdb then
/// reads; a hardware breakpoint (Z1) stops before its instruction; `monitor dr` and `monitor nmi` answer.
/// </summary>
public class GdbWatchpointTests
{
    private static string RunGdb(int port, params string[] commands)
        => Gdb.Batch(["set pagination off", "set confirm off", "set architecture i386:x86-64", $"target remote 127.0.0.1:{port}", .. commands]);

    [GdbFact]
    public void Gdb_access_and_read_watchpoints_stop_after_the_instructions_that_touch_the_word()
    {
        var m = SyscallKernel.NewMachine();
        var d = new Debugger(m, SyscallKernel.Symbols);
        using var stub = new GdbStub(d, "127.0.0.1", 0);
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try { stub.Serve(); if (m.StopReason is StopReason.None or StopReason.Break) { m.ClearBreak(); m.Run(); } }
            catch (Exception e) { error = e; }
        }) { IsBackground = true };
        thread.Start();
        ulong scratch = SyscallKernel.Scratch;
        string o = RunGdb(stub.Port,
            $"hbreak *0x{SyscallKernel.HandlerAddr:x}",
            "continue",
            "printf \"HB-RIP=%lx\\n\", $rip",
            "delete",
            $"awatch *(long*)0x{scratch:x}",
            "continue",
            "printf \"AW1-RIP=%lx\\n\", $rip",
            "continue",
            "printf \"AW2-RIP=%lx\\n\", $rip",
            "delete",
            $"rwatch *(long*)0x{scratch:x}",
            "continue",
            "printf \"RW-RIP=%lx RSP=%lx\\n\", $rip, $rsp",
            "delete",
            "monitor dr",
            "monitor nmi",
            "detach");
        Assert.True(thread.Join(30_000), "emulator thread did not finish after detach:\n" + o);
        Assert.Null(error);
        // The first getpid: the hardware breakpoint stops before the handler's first instruction.
        Assert.Contains($"HB-RIP={SyscallKernel.HandlerAddr:x}", o);
        // The access watchpoint stops after the first getpid's reload of the user RSP (mov rsp, [Scratch], just
        // before SWAPGS and SYSRET), then after the second getpid's store of it (mov [Scratch], rsp after SWAPGS).
        Assert.Contains($"Hardware access (read/write) watchpoint 2: *(long*)0x{scratch:x}", o);
        Assert.Contains($"AW1-RIP={SyscallKernel.SysretAddr - 3:x}", o);
        Assert.Contains($"AW2-RIP={SyscallKernel.EntryAddr + 3 + 8:x}", o);
        // The read watchpoint stops only at the second getpid's reload.
        Assert.Contains($"Hardware read watchpoint 3: *(long*)0x{scratch:x}", o);
        Assert.Contains($"RW-RIP={SyscallKernel.SysretAddr - 3:x} RSP={SyscallKernel.UserStack:x}", o);
        Assert.Contains("dr7  0000000000000400", o);
        Assert.Contains("LINT1 pulsed, no NMI: LVT LINT1 = 0x10000 (masked)", o);
        Assert.Equal(StopReason.DebugExit, m.StopReason);
    }
}
