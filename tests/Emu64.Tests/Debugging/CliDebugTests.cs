using System.Diagnostics;
using System.Text.Json;
using Emu64.Tests.Support;

namespace Emu64.Tests.Debugging;

/// <summary>The emu64 program end to end: debug scripts, --trace files, --gdb with --wait.</summary>
public class CliDebugTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("emu64-cli-debug-").FullName;
    private readonly string _kernel, _symbols;

    public CliDebugTests()
    {
        _kernel = Path.Combine(_dir, "kernel.bin");
        _symbols = Path.Combine(_dir, "kernel.syms");
        File.WriteAllBytes(_kernel, SyscallKernel.Image);
        File.WriteAllBytes(_symbols, SymbolFile.Build(SyscallKernel.EntryAddr, 0x20000,
            [("entry_SYSCALL_64", SyscallKernel.EntryAddr), ("do_getpid", SyscallKernel.HandlerAddr), ("user_main", SyscallKernel.UserAddr)]));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public sealed record Result(int Exit, string Out, string Err);

    public static Process Start(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        psi.ArgumentList.Add(typeof(Emu64.Cli.Cli).Assembly.Location);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    public static Result Emu64(params string[] args)
    {
        using var p = Start(args);
        p.StandardInput.Close();
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(60_000)) { p.Kill(true); throw new TimeoutException("emu64 did not finish within 60 s"); }
        return new Result(p.ExitCode, o.Result, e.Result);
    }

    [Fact]
    public void A_scripted_debug_session_walks_one_system_call_with_stepb_checking_cpl_cr3_and_pcid()
    {
        string script = Path.Combine(_dir, "walk.gdb");
        File.WriteAllLines(script, ["break user_main", "continue", "stepb", "stepb", "stepb", "stepb", "regs", "walk $rip", "quit"]);
        var r = Emu64("debug", _kernel, "--symbols", _symbols, "--script", script, "-m", "64");
        Assert.True(r.Exit == 0, r.Err + r.Out);
        var events = r.Out.Split('\n').Select((l, i) => (l, i)).Where(x => x.l.StartsWith('[')).ToList();
        Assert.Equal(["[syscall]", "[cr3]", "[cr3]", "[sysret]"], events.Select(e => e.l.Split(' ')[0]));
        var lines = r.Out.Split('\n');
        string Now(int k) => lines[events[k].i + 1].Trim();
        Assert.StartsWith("now cpl=0 cr3=0x205801 pcid=0x801", Now(0));
        Assert.Contains("rip=140000 <entry_SYSCALL_64>", events[0].l);
        Assert.StartsWith("now cpl=0 cr3=0x204001 pcid=0x1", Now(1));
        Assert.Contains("pcid 801 -> 1 noflush", events[1].l);
        Assert.StartsWith("now cpl=0 cr3=0x205801 pcid=0x801", Now(2));
        Assert.Contains("pcid 1 -> 801 noflush", events[2].l);
        Assert.StartsWith("now cpl=3 cr3=0x205801 pcid=0x801", Now(3));
        Assert.Contains("(emu64) regs", r.Out);
        Assert.Contains("rax   000000000000002a", r.Out);
        Assert.Contains("walk 0x150007 under CR3 0x205801 (pcid 0x801)", r.Out);
    }

    [Fact]
    public void Run_with_trace_writes_a_jsonl_file_of_boundary_events()
    {
        string file = Path.Combine(_dir, "trace.jsonl");
        var r = Emu64("run", _kernel, "--symbols", _symbols, "--trace", "boundary", "--trace-format", "jsonl", "--trace-file", file);
        Assert.True(r.Exit == 1, r.Err);   // isa-debug-exit 0 → (0 << 1) | 1
        var docs = File.ReadAllLines(file).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(3, docs.Count(d => d.GetProperty("type").GetString() == "syscall"));
        Assert.Equal(3, docs.Count(d => d.GetProperty("type").GetString() == "sysret"));
        Assert.All(docs.Where(d => d.GetProperty("type").GetString() == "syscall"), d => Assert.Equal("entry_SYSCALL_64", d.GetProperty("sym").GetString()));
    }

    [Fact]
    public void The_stop_report_names_the_instruction_with_symbols_from_the_symbols_file()
    {
        // A flat binary has no symbols of its own: without --symbols the report gives the bare instruction. 2650
        // instructions in, the kernel is in its system-call handler, after the switch to the kernel page tables.
        string[] run = ["run", _kernel, "-m", "64", "--max-instructions", "2650"];
        var bare = Emu64(run);
        var named = Emu64([.. run, "--symbols", _symbols]);
        Assert.Equal(6, bare.Exit);
        Assert.Equal(6, named.Exit);
        string At(Result r) => r.Err.Split('\n').Single(l => l.Contains("instruction at rip")).Trim();
        Assert.Equal("instruction at rip: 48 81 cf 00 18 00 00  or      rdi,0x1800", At(bare));
        Assert.Equal("instruction at rip <do_getpid+0x18>: 48 81 cf 00 18 00 00  or      rdi,0x1800", At(named));
        var missing = Emu64("run", _kernel, "--symbols", Path.Combine(_dir, "none"));
        Assert.Equal(2, missing.Exit);
        Assert.StartsWith("emu64: cannot read symbols from", missing.Err);
    }

    [Fact]
    public void Bad_debugging_options_are_clear_errors()
    {
        var r = Emu64("run", _kernel, "--wait");
        Assert.Equal(2, r.Exit);
        Assert.Contains("--wait needs --gdb PORT", r.Err);
        r = Emu64("run", _kernel, "--trace", "bogus");
        Assert.Contains("unknown trace class 'bogus'", r.Err);
        r = Emu64("run", _kernel, "--gdb", "notaport");
        Assert.Contains("bad gdb port", r.Err);
        r = Emu64("run", _kernel, "--trace-format", "jsonl");
        Assert.Contains("need --trace CLASSES", r.Err);
    }

    [GdbFact]
    public void Run_with_gdb_and_wait_stops_before_the_first_instruction_until_gdb_detaches()
    {
        using var p = Start("run", _kernel, "--gdb", "127.0.0.1:0", "--wait");
        int port = Gdb.ListeningPort(p);
        string gout = Gdb.Batch("set architecture i386:x86-64", $"target remote 127.0.0.1:{port}", "printf \"RIP=%lx CR0=%lx\\n\", $rip, $cr0", "detach");
        Assert.Contains("RIP=100020 CR0=11", gout);    // the multiboot entry, protected mode, paging off
        Assert.True(p.WaitForExit(30_000));
        Assert.Equal(1, p.ExitCode);                     // ran on to isa-debug-exit after the detach
    }
}
