using System.Text.Json;
using Emu64.Debugging;

namespace Emu64.Tests.Debugging;

public class TraceTests
{
    private static (Machine M, string Text) RunTraced(TraceClass classes, TraceFormat format, ulong limit = 0)
    {
        var m = SyscallKernel.NewMachine();
        var sw = new StringWriter();
        using (var t = new Tracer(m, classes, format, sw, limit, SyscallKernel.Symbols))
        {
            t.AttachAlone();
            m.Run();
        }
        return (m, sw.ToString());
    }

    [Fact]
    public void The_syscall_kernel_runs_two_getpids_and_exits_cleanly()
    {
        var m = SyscallKernel.NewMachine();
        var r = m.Run();
        Assert.True(r == StopReason.DebugExit, Emu64.Cli.Cli.Describe(m));
        Assert.Equal(1, m.ExitCode);
        Assert.Equal(3UL, m.Events.Syscalls);
        Assert.Equal(42UL, m.Memory.Read(SyscallKernel.UserVar, 8));
    }

    [Fact]
    public void Boundary_trace_lists_exactly_the_expected_events_in_order()
    {
        var (_, text) = RunTraced(TraceClass.Boundary, TraceFormat.Text);
        var kinds = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[2]).ToList();
        // the entry stub turns paging on (cr3), the body switches to the kernel PGD and then the user PGD
        var expected = new[] { "cr3", "cr3", "cr3", "sysret" }
            .Concat(Enumerable.Repeat(new[] { "syscall", "cr3", "cr3", "sysret" }, 2).SelectMany(x => x))
            .Concat(new[] { "syscall", "cr3" });
        Assert.Equal(expected, kinds);
        Assert.Contains("cpl=0 syscall rip=140000 <entry_SYSCALL_64>", text);
        Assert.Contains("cr3 205801 -> 204001 pcid 801 -> 1 noflush", text);
        Assert.Contains("cpl=3 sysret rip=150000 <user_main>", text);
    }

    [Fact]
    public void Jsonl_boundary_trace_parses_and_carries_pcid_and_noflush()
    {
        var (_, text) = RunTraced(TraceClass.Boundary, TraceFormat.Jsonl);
        var docs = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(14, docs.Count);
        Assert.Contains("\"sym\":\"entry_SYSCALL_64+0x1d\"", text);   // readable, not \u002B
        var toKernel = docs.First(d => d.GetProperty("type").GetString() == "cr3" && d.TryGetProperty("old_pcid", out var p) && p.GetInt32() == 0x801);
        Assert.Equal(1, toKernel.GetProperty("new_pcid").GetInt32());
        Assert.True(toKernel.GetProperty("noflush").GetBoolean());
        Assert.Equal("0x204001", toKernel.GetProperty("new_cr3").GetString());
        var syscall = docs.First(d => d.GetProperty("type").GetString() == "syscall");
        Assert.Equal(0, syscall.GetProperty("cpl").GetInt32());
        Assert.Equal("entry_SYSCALL_64", syscall.GetProperty("sym").GetString());
        Assert.True(syscall.GetProperty("n").GetUInt64() > 0);
    }

    [Fact]
    public void Instruction_trace_shows_symbol_disassembly_and_changed_registers()
    {
        var (_, text) = RunTraced(TraceClass.Insn, TraceFormat.Text);
        var lines = text.Split('\n');
        Assert.Contains(lines, l => l.Contains("cpl=0 insn 0000000000140000 <entry_SYSCALL_64>  swapgs"));
        Assert.Contains(lines, l => l.Contains("<entry_SYSCALL_64+0x") && l.Contains("mov     cr3,rsp") && l.Contains("cr3=204001"));
        Assert.Contains(lines, l => l.Contains("cpl=3 insn 0000000000150000 <user_main>  mov     eax,0x27") && l.Contains("rax=27"));
    }

    [Fact]
    public void Trace_limit_caps_the_number_of_records_and_says_so()
    {
        var (m, text) = RunTraced(TraceClass.Insn | TraceClass.Boundary, TraceFormat.Text, limit: 25);
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(26, lines.Length);
        Assert.Equal("trace limit 25 reached; tracing stopped", lines[^1]);
        Assert.False(m.DebugStepHook);
        Assert.Equal(StopReason.DebugExit, m.StopReason);
    }

    [Fact]
    public void A_boundary_only_trace_that_reaches_its_limit_stops_tracing_and_the_run_goes_on()
    {
        // The tracer unsubscribes from inside its own OnEvent: the run used to die with "Collection was modified".
        var m = SyscallKernel.NewMachine();
        var after = new CountingListener();
        var sw = new StringWriter();
        using (var t = new Tracer(m, TraceClass.Boundary, TraceFormat.Text, sw, 5, SyscallKernel.Symbols))
        {
            t.AttachAlone();
            m.Events.Subscribe(after);
            Assert.Equal(StopReason.DebugExit, m.Run());
        }
        var lines = sw.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(6, lines.Length);
        Assert.Equal("trace limit 5 reached; tracing stopped", lines[^1]);
        Assert.Equal(14, after.Count);    // the listener behind the tracer saw every event, the limit's included
    }

    private sealed class CountingListener : IBoundaryListener
    {
        public int Count;
        public void OnEvent(in BoundaryEvent e) => Count++;
    }

    [Fact]
    public void Tlb_trace_reports_flushing_cr3_writes_with_their_pcid()
    {
        var (_, text) = RunTraced(TraceClass.Tlb, TraceFormat.Text);
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.Contains(" tlb flush ")).ToArray();
        Assert.Equal(3, lines.Length);   // the three setup writes flush; the entry/exit switches use NOFLUSH
        Assert.All(lines, l => Assert.Contains("tlb flush all", l));
        Assert.Contains("pcid=801 cause=cr3", lines[2]);
    }

    [Fact]
    public void Unknown_trace_class_is_a_clear_error()
    {
        var e = Assert.Throws<ArgumentException>(() => Tracer.ParseClasses("boundary,tbl"));
        Assert.Contains("'tbl'", e.Message);
    }
}
