using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Emu64.Debugging;
using Emu64.Loader;
using Debugger = Emu64.Debugging.Debugger;
using Emu64.Tests.Support;

namespace Emu64.Tests.Debugging;

public class GdbStubTests
{
    private sealed class Session : IDisposable
    {
        public readonly Machine M = SyscallKernel.NewMachine();
        public readonly Debugger D;
        public readonly GdbStub Stub;
        public readonly Thread Thread;
        public Exception? Error;

        public Session()
        {
            D = new Debugger(M, SyscallKernel.Symbols);
            Stub = new GdbStub(D, "127.0.0.1", 0);
            Thread = new Thread(() =>
            {
                try
                {
                    Stub.Serve();
                    if (M.StopReason is StopReason.None or StopReason.Break) { M.ClearBreak(); M.Run(); }   // detached: run on
                }
                catch (Exception e) { Error = e; }
            }) { IsBackground = true };
            Thread.Start();
        }

        public void Dispose() => Stub.Dispose();
    }

    private static string SymbolFilePath()
    {
        string path = Path.Combine(Path.GetTempPath(), $"emu64-syms-{Environment.ProcessId}.elf");
        var syms = SyscallKernel.Symbols;
        File.WriteAllBytes(path, SymbolFile.Build(SyscallKernel.EntryAddr, 0x20000,
            [("entry_SYSCALL_64", SyscallKernel.EntryAddr), ("do_getpid", SyscallKernel.HandlerAddr), ("user_main", SyscallKernel.UserAddr)]));
        return path;
    }

    private static string RunGdb(int port, string symbolFile, params string[] commands)
        => Gdb.Batch(["set pagination off", "set confirm off", $"symbol-file {symbolFile}", $"target remote 127.0.0.1:{port}", .. commands]);

    [GdbFact]
    public void Stock_gdb_breaks_at_the_syscall_entry_steps_across_the_cr3_switch_walks_and_watches()
    {
        using var s = new Session();
        string syms = SymbolFilePath();
        string o = RunGdb(s.Stub.Port, syms,
            "break entry_SYSCALL_64",
            "continue",
            "stepi 5",
            "printf \"CR3-BEFORE=%lx\\n\", $cr3",
            "x/i $pc",
            "stepi",
            "printf \"CR3-AFTER=%lx\\n\", $cr3",
            "printf \"RIP=%lx CS=%x FSBASE=%lx EFER=%lx\\n\", $rip, $cs, $fs_base, $efer",
            "monitor walk 0x150000",
            "monitor walk 0xffffffff80180300",
            "delete",
            $"watch *(long*)0x{SyscallKernel.UserVar:x}",
            "continue",
            "printf \"VALUE=%ld\\n\", *(long*)0x180100",
            "detach");
        File.Delete(syms);
        Assert.True(s.Thread.Join(30_000), "emulator thread did not finish after detach:\n" + o);
        Assert.Null(s.Error);
        Assert.Contains("Breakpoint 1, 0x0000000000140000 in entry_SYSCALL_64", o);
        Assert.Contains("=> 0x14001a <entry_SYSCALL_64+26>:\tmov    %rsp,%cr3", o);
        Assert.Contains("CR3-BEFORE=205801", o);
        Assert.Contains("CR3-AFTER=204001", o);
        Assert.Equal(0x1800UL, 0x205801UL - 0x204001UL);
        Assert.Contains($"RIP={SyscallKernel.ToKernelCr3Write + 3:x} CS=8 FSBASE=0 EFER=501", o);   // SCE LME LMA
        Assert.Contains("walk 0x150000 under CR3 0x204001 (pcid 0x1)", o);
        Assert.Contains("= physical 0x150000 (2M page, user read-write exec)", o);
        Assert.Contains("= physical 0x180300 (2M page, supervisor read-write exec)", o);
        Assert.Contains("Hardware watchpoint 2: *(long*)0x180100", o);
        Assert.Contains("New value = 42", o);
        Assert.Contains("VALUE=42", o);
        Assert.Contains("[Inferior 1 (Remote target) detached]", o);
        Assert.Equal("detach", s.Stub.EndedBy);
        Assert.Equal(StopReason.DebugExit, s.M.StopReason);   // the machine ran on to its exit after detach
    }
}
