using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Emu64.Debugging;
using Emu64.Tests.Debugging;
using Emu64.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Robustness;

/// <summary>The stop report after a triple fault or fault loop, resource bounds, the tlb trace's fills and evictions, and determinism.</summary>
public class RobustnessCliTests
{
    // ---- the stop report ----------------------------------------------------------------------------

    [Fact]
    public void Triple_fault_stops_with_a_one_screen_report_of_registers_boundary_events_and_the_faulting_instruction()
    {
        using var dir = new CliRun.TempDir();
        var r = CliRun.Execute("run", dir.File("triple.elf", Images.TripleFault()));
        Assert.Equal(4, r.Status);
        Assert.Equal("before\n", r.Out);
        var lines = r.ErrLines;
        Assert.True(lines.Length <= 24, $"the report should fit one screen:\n{r.Stderr}");
        Assert.Equal("emu64: triple fault: #GP while delivering #DF; machine stopped (exit status 4)", lines[0]);
        // registers: GPRs, RIP, RFLAGS, CS/SS, CPL, control registers, EFER
        Assert.Matches(@"^  rip=[0-9a-f]{16} rflags=[0-9a-f]+ cpl=0 mode=Long64 instructions=[0-9]+$", lines[1]);
        Assert.Matches(@"^  cr0=80000011 cr2=0 cr3=200000 cr4=20 efer=500$", lines[2]);
        Assert.StartsWith("  cs=0008 ss=0010 ", lines[3]);
        Assert.Contains("idtr=0/0", lines[3]);   // the IDT register loaded from zeroed memory
        Assert.Contains(lines, l => l.Contains("r15=0123456789abcdef"));
        Assert.Contains(lines, l => l.StartsWith("  rax=") && l.Contains("rbx="));
        // the faulting instruction, read without side effects
        Assert.Contains("  instruction at rip: 0f 0b  ud2", lines);
        // the last boundary events, oldest first: the CR3 load of the entry stub, then #UD, #GP and #DF
        int head = Array.FindIndex(lines, l => l.StartsWith("  last ") && l.EndsWith("boundary events (oldest first):"));
        Assert.True(head > 0, r.Stderr);
        var events = lines[(head + 1)..];
        Assert.Contains("cr3 ", events[0]);
        Assert.Matches(@"cpl=0 exception #UD vector=6 rip=", events[^3]);
        Assert.Matches(@"cpl=0 exception #GP vector=13 error=32 rip=", events[^2]);   // IDT entry 6, IDT bit set
        Assert.Matches(@"cpl=0 exception #DF vector=8 error=0 rip=", events[^1]);
    }

    [Fact]
    public void A_fault_loop_stops_with_the_same_report_and_status_4()
    {
        using var dir = new CliRun.TempDir();
        var r = CliRun.Execute("run", dir.File("loop.elf", Images.FaultLoop()));
        Assert.Equal(4, r.Status);
        var lines = r.ErrLines;
        Assert.StartsWith("emu64: fault loop: 10000 exceptions delivered without retiring an instruction (last #UD at rip 190000)", lines[0]);
        Assert.Contains("  instruction at rip: 0f 0b  ud2", lines);
        Assert.Equal(8, lines.Count(l => l.Contains("exception #UD vector=6 rip=190000")));
        Assert.True(lines.Length <= 24, r.Stderr);
    }

    [Fact]
    public void The_report_says_so_when_the_faulting_instruction_cannot_be_read()
    {
        using var dir = new CliRun.TempDir();
        // jump to a canonical address above the 1 GiB identity map with an empty IDT: #PF on the fetch (no I/D bit: NXE is off), then a triple fault
        var image = TestKernel.Build(a => { a.mov(rax, 0x1000); a.mov(__word_ptr[rax], 0); a.lidt(__[rax]); a.mov(rax, 0x4000000000UL); a.jmp(rax); });
        var r = CliRun.Execute("run", dir.File("nx.elf", image));
        Assert.Equal(4, r.Status);
        Assert.True(r.ErrLines.Contains("  instruction at rip: unreadable (linear 4000000000 is not mapped to RAM)"), r.Stderr);
        Assert.True(r.ErrLines.Any(l => l.Contains("exception #PF vector=14 error=0 cr2=4000000000")), r.Stderr);
    }

    [Fact]
    public void The_machine_keeps_the_last_boundary_events_in_a_ring_oldest_first()
    {
        var m = SyscallKernel.NewMachine();
        m.Run();
        var all = m.Events.Recent(MachineEvents.RecentCapacity);
        Assert.Equal(14, all.Length);   // 3 setup CR3 writes and a SYSRET, two round trips of 4, SYSCALL and CR3 of the exit call
        Assert.Equal(BoundaryKind.Cr3Write, all[^1].Kind);
        Assert.Equal(BoundaryKind.Syscall, all[^2].Kind);
        var last3 = m.Events.Recent(3);
        Assert.Equal(all[^3..], last3);
        Assert.True(all.Zip(all.Skip(1)).All(p => p.First.Instructions <= p.Second.Instructions));
    }

    [Fact]
    public void Emu64_debug_shows_the_same_report_when_the_guest_triple_faults()
    {
        using var dir = new CliRun.TempDir();
        var script = dir.File("s.txt", "continue\n");
        var r = CliRun.Execute("debug", dir.File("triple.elf", Images.TripleFault()), "--script", script);
        Assert.Equal(4, r.Status);
        Assert.Contains("the machine has stopped: TripleFault: triple fault: #GP while delivering #DF", r.Out);
        Assert.Contains("  instruction at rip: 0f 0b  ud2", r.Out);
        Assert.Contains("exception #DF vector=8 error=0", r.Out);
    }

    // ---- resource bounds ------------------------------------------------------------------------------

    [Theory]
    [InlineData("3G", 3UL << 30)]
    [InlineData("3072M", 3UL << 30)]
    [InlineData("2560M", 2560UL << 20)]
    [InlineData("2G", 2UL << 30)]
    [InlineData("2047M", 2047UL << 20)]
    [InlineData("1500M", 1500UL << 20)]   // regression: an operator-precedence slip capped -m at 1 GiB
    [InlineData("1G", 1UL << 30)]
    [InlineData("2M", 2UL << 20)]
    public void Guest_RAM_is_capped_at_3_GiB(string arg, ulong bytes)
    {
        Assert.Equal(bytes, Emu64.Cli.Cli.ParseSize(arg));
        Assert.Equal(3UL << 30, Emu64.Cli.Cli.MaxRamBytes);
        Assert.Throws<Emu64.Cli.CliException>(() => Emu64.Cli.Cli.ParseSize("4G"));
        Assert.Throws<Emu64.Cli.CliException>(() => Emu64.Cli.Cli.ParseSize("3145732K"));   // 3 GiB + 4 KiB
    }

    [Fact]
    public void Trace_size_is_capped_in_bytes_with_a_note_in_the_trace()
    {
        var m = SyscallKernel.NewMachine();
        var sw = new StringWriter();
        using (var t = new Tracer(m, TraceClass.Boundary | TraceClass.Insn | TraceClass.Tlb, TraceFormat.Text, sw, 0, SyscallKernel.Symbols) { MaxBytes = 2000 })
        {
            t.AttachAlone();
            m.Run();
            Assert.True(t.LimitReached);
            Assert.True(t.Bytes <= 2000);
        }
        var lines = sw.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("trace size limit 2000 bytes reached; tracing stopped", lines[^1]);
        Assert.True(sw.ToString().Length - lines[^1].Length - 1 <= 2000);
        Assert.Equal(StopReason.DebugExit, m.StopReason);   // the run goes on without the trace
        Assert.False(m.DebugStepHook);
        Assert.Null(m.Cpu.Mmu.Listener);
    }

    [Fact]
    public void Trace_max_bytes_on_the_command_line_caps_the_trace_file()
    {
        using var dir = new CliRun.TempDir();
        string file = dir.Name("t.jsonl");
        var r = CliRun.Execute("boot", "--append", "nokaslr init=syscalls:3", "--trace", "all", "--trace-format", "jsonl", "--trace-file", file, "--trace-max-bytes", "64K");
        Assert.Equal(0, r.Status);   // boot: the bundled kernel ended cleanly
        var lines = File.ReadAllLines(file);
        Assert.True(new FileInfo(file).Length <= 65536 + 200);
        Assert.Equal(65536UL, JsonDocument.Parse(lines[^1]).RootElement.GetProperty("max_bytes").GetUInt64());
        Assert.All(lines, l => JsonDocument.Parse(l));
    }

    [Fact]
    public void The_gdb_stub_binds_loopback_unless_told_and_refuses_a_second_client()
    {
        Assert.Equal(("127.0.0.1", 1234), GdbStub.ParseEndpoint("1234"));
        Assert.Equal(("0.0.0.0", 1234), GdbStub.ParseEndpoint("0.0.0.0:1234"));
        var m = SyscallKernel.NewMachine();
        using var stub = new GdbStub(new Emu64.Debugging.Debugger(m, SymbolTable.Empty), "127.0.0.1", 0);
        var server = new Thread(() => stub.Serve()) { IsBackground = true };
        server.Start();
        using var first = new TcpClient();
        first.Connect(IPAddress.Loopback, stub.Port);
        first.GetStream().Write("$?#3f"u8);
        var buf = new byte[256];
        first.ReceiveTimeout = 10_000;
        string got = "";
        while (!got.Contains('#')) { int n = first.GetStream().Read(buf); Assert.True(n > 0); got += System.Text.Encoding.ASCII.GetString(buf, 0, n); }
        Assert.Matches(@"\$[ST][0-9a-f]{2}", got);   // the first client is served
        // the listener closed when the first client was accepted: a second connection is refused, or closed at once
        bool refused;
        try
        {
            using var second = new TcpClient();
            second.Connect(IPAddress.Loopback, stub.Port);
            second.ReceiveTimeout = 5_000;
            second.GetStream().Write("$?#3f"u8);
            refused = second.GetStream().Read(buf) == 0;
        }
        catch (SocketException) { refused = true; }
        catch (IOException) { refused = true; }
        Assert.True(refused, "a second gdb client must not be served");
        first.GetStream().Write("$D#44"u8);
        Assert.True(server.Join(10_000));
        Assert.Equal("detach", stub.EndedBy);
    }

    // ---- the tlb trace: fills, evictions, invalidations --------------------------------------------

    [Fact]
    public void Tlb_trace_of_syscalls_3_reports_fills_and_evictions_with_structure_pcid_page_frame_size_and_global()
    {
        using var dir = new CliRun.TempDir();
        string text = dir.Name("tlb.txt"), jsonl = dir.Name("tlb.jsonl");
        var a = CliRun.Execute("boot", "--append", "nokaslr init=syscalls:3", "--trace", "tlb", "--trace-file", text, "--trace-limit", "0");
        var b = CliRun.Execute("boot", "--append", "nokaslr init=syscalls:3", "--trace", "tlb", "--trace-format", "jsonl", "--trace-file", jsonl, "--trace-limit", "0");
        Assert.Equal(0, a.Status);
        Assert.Equal(0, b.Status);
        var lines = File.ReadAllLines(text);
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^ +\d+ cpl=[03] tlb fill dtlb4k la=[0-9a-f]+ pcid=[0-9a-f]+ frame=[0-9a-f]+ size=4k( global)?$"));
        Assert.Contains(lines, l => l.Contains(" tlb fill stlb "));
        Assert.Contains(lines, l => l.Contains(" tlb fill itlb"));
        Assert.Contains(lines, l => l.Contains(" tlb fill psc_pde "));
        Assert.Contains(lines, l => l.Contains(" tlb evict "));
        Assert.Contains(lines, l => l.Contains(" tlb flush all "));
        var events = File.ReadAllLines(jsonl).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(lines.Length, events.Count);
        var fills = events.Where(e => e.GetProperty("event").GetString() == "fill").ToList();
        var evicts = events.Where(e => e.GetProperty("event").GetString() == "evict").ToList();
        Assert.NotEmpty(evicts);
        foreach (var e in fills.Concat(evicts))
        {
            Assert.StartsWith("0x", e.GetProperty("la").GetString());
            Assert.StartsWith("0x", e.GetProperty("frame").GetString());
            Assert.True(e.GetProperty("page_size").GetUInt64() is 4096 or 2097152 or 1073741824 || e.GetProperty("structure").GetString()!.StartsWith("psc_"));
            e.GetProperty("global").GetBoolean();
            e.GetProperty("pcid").GetInt32();
        }
        // user-space fills carry a user PCID (bit 11 with PTI and PCID), kernel fills a kernel PCID; kernel text is global
        Assert.Contains(fills, e => e.GetProperty("cpl").GetInt32() == 3 && (e.GetProperty("pcid").GetInt32() & 0x800) != 0);
        Assert.Contains(fills, e => e.GetProperty("global").GetBoolean());
        Assert.Contains(fills, e => e.GetProperty("structure").GetString() == "stlb");
    }

    // ---- determinism --------------------------------------------------------------------------------

    [Theory]
    [InlineData("text")]
    [InlineData("jsonl")]
    public void The_same_kernel_and_options_twice_give_identical_output_counters_and_traces(string format)
    {
        using var dir = new CliRun.TempDir();
        CliRun.Result Run(string trace) => CliRun.Execute("boot", "--append", "nokaslr init=syscalls:10,touch:16:4,pingpong:5", "--seed", "3", "--ips", "10000000",
            "--stats", "--trace", "boundary,tlb,insn", "--trace-format", format, "--trace-file", trace, "--trace-limit", "150000");
        string t1 = dir.Name("1." + format), t2 = dir.Name("2." + format);
        var a = Run(t1);
        var b = Run(t2);
        Assert.Equal(0, a.Status);
        Assert.Equal(a.Status, b.Status);
        Assert.Equal(a.Out, b.Out);
        // every counter but the host-time ones (seconds, mips)
        static string[] Counters(CliRun.Result r) => r.ErrLines.Where(l => !l.StartsWith("seconds:") && !l.StartsWith("mips:")).ToArray();
        Assert.Contains(Counters(a), l => l.StartsWith("instructions: "));
        Assert.Contains(Counters(a), l => l.StartsWith("syscalls: "));
        Assert.Equal(Counters(a), Counters(b));
        var ta = File.ReadAllBytes(t1);
        Assert.True(ta.Length > 100_000);
        Assert.Equal(ta, File.ReadAllBytes(t2));
        var text = System.Text.Encoding.ASCII.GetString(ta);
        foreach (var kind in format == "text" ? new[] { " insn ", " syscall ", " tlb fill " } : new[] { "\"insn\"", "\"syscall\"", "\"fill\"" })
            Assert.Contains(kind, text);
    }
}
