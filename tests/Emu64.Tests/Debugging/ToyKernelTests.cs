using System.Diagnostics;
using System.Text.Json;
using Emu64.Tests.Support;

namespace Emu64.Tests.Debugging;

/// <summary>The acceptance scenarios of issue 7 on the bundled toy kernel (PTI on, PCID on, nokaslr for fixed addresses).</summary>
public class ToyKernelTests
{
    private static readonly string Kernel = Emu64.Cli.Cli.BundledKernelPath();

    [Fact]
    public void Trace_of_a_syscalls_10_run_lists_each_getpid_as_syscall_two_noflush_cr3_switches_and_sysret()
    {
        string file = Path.Combine(Path.GetTempPath(), $"emu64-toy-trace-{Environment.ProcessId}.jsonl");
        var r = CliDebugTests.Emu64("boot", "--append", "nokaslr init=syscalls:10", "--trace", "boundary", "--trace-format", "jsonl", "--trace-file", file);
        var docs = File.ReadAllLines(file).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        File.Delete(file);
        Assert.True(r.Out.Contains("syscalls: 10 getpid calls done"), r.Out + r.Err);
        int first = docs.FindIndex(d => d.GetProperty("type").GetString() == "syscall");
        var groups = docs.Skip(first).Chunk(4).TakeWhile(g => g.Length == 4 && g[0].GetProperty("type").GetString() == "syscall").ToList();
        Assert.True(groups.Count >= 10, $"only {groups.Count} system calls with the expected shape");
        foreach (var g in groups.Take(10))
        {
            Assert.Equal(["syscall", "cr3", "cr3", "sysret"], g.Select(d => d.GetProperty("type").GetString()));
            Assert.Equal("entry_SYSCALL_64", g[0].GetProperty("sym").GetString());
            Assert.Equal(0x802, g[1].GetProperty("old_pcid").GetInt32());
            Assert.Equal(0x2, g[1].GetProperty("new_pcid").GetInt32());
            Assert.True(g[1].GetProperty("noflush").GetBoolean());
            Assert.Equal(0x802, g[2].GetProperty("new_pcid").GetInt32());
            Assert.Equal(3, g[3].GetProperty("cpl").GetInt32());
            ulong user = Convert.ToUInt64(g[1].GetProperty("old_cr3").GetString(), 16), kernel = Convert.ToUInt64(g[1].GetProperty("new_cr3").GetString(), 16);
            Assert.Equal(0x1800UL, user - kernel);
        }
    }

    [Fact]
    public void With_kaslr_the_trace_names_the_relocated_entry_code_once_the_kernel_announces_its_text()
    {
        var m = new Machine(new MachineOptions { Append = "init=syscalls:2", MaxInstructions = 5_000_000, Output = new MemoryStream() });
        m.LoadKernel(File.ReadAllBytes(Kernel), Kernel, Array.Empty<Emu64.Loader.BootModule>());
        var syms = new Emu64.Debugging.SymbolTable(m.Symbols);
        var sw = new StringWriter();
        using (new Emu64.Debugging.Tracer(m, Emu64.Debugging.TraceClass.Boundary, Emu64.Debugging.TraceFormat.Text, sw, 0, syms)) m.Run();
        Assert.True(syms.SlideKnown);
        Assert.NotEqual(0, syms.Slide);
        Assert.True(syms.TryResolve("entry_SYSCALL_64", out ulong entry));
        Assert.Equal(m.Cpu.Lstar, entry);
        Assert.Contains($"syscall rip={entry:x} <entry_SYSCALL_64>", sw.ToString());
    }

    [GdbFact]
    public void Stock_gdb_steps_a_toy_kernel_system_call_across_the_cr3_switch_over_emu64_boot_gdb_wait()
    {
        using var p = CliDebugTests.Start("boot", "--append", "nokaslr init=syscalls:3", "--gdb", "127.0.0.1:0", "--wait");
        int port = Gdb.ListeningPort(p);
        _ = p.StandardOutput.ReadToEndAsync();
        string o = Gdb.Script($"""
            set pagination off
            set confirm off
            set architecture i386:x86-64
            symbol-file {Kernel}
            target remote 127.0.0.1:{port}
            break entry_SYSCALL_64
            continue
            set $user_cr3 = $cr3
            while $cr3 == $user_cr3
              stepi
            end
            printf "USER-CR3=%lx KERNEL-CR3=%lx\n", $user_cr3, $cr3
            monitor walk 0x400000
            monitor walk entry_SYSCALL_64
            delete
            watch *(long*)($rsp - 8)
            continue
            detach
            """);
        Assert.Contains("Breakpoint 1, 0xffffffff81001000 in entry_SYSCALL_64 ()", o);
        var m = System.Text.RegularExpressions.Regex.Match(o, "USER-CR3=([0-9a-f]+) KERNEL-CR3=([0-9a-f]+)");
        Assert.True(m.Success, o);
        Assert.Equal(0x1800UL, Convert.ToUInt64(m.Groups[1].Value, 16) - Convert.ToUInt64(m.Groups[2].Value, 16));
        Assert.Contains("walk 0x400000 under CR3", o);
        Assert.Contains("(4K page, user read-only no-exec)", o);   // under the kernel PGD the user half is NX (KPTI)
        Assert.Contains("walk 0xffffffff81001000 under CR3", o);
        Assert.Contains("Watchpoint 2: *(long*)($rsp - 8)", o);
        Assert.Contains("New value", o);
        Assert.Contains("[Inferior 1 (Remote target) detached]", o);
        Assert.True(p.WaitForExit(60_000));
        Assert.Equal(0, p.ExitCode);   // the kernel ran on and exited through isa-debug-exit with 0 (boot: status 0)
    }

    [GdbFact]
    public void Stock_gdb_without_nokaslr_stops_at_a_symbol_breakpoint_relocated_by_the_kaslr_offset()
    {
        using var p = CliDebugTests.Start("boot", "--append", "init=syscalls:3", "--gdb", "127.0.0.1:0", "--wait");
        int port = Gdb.ListeningPort(p);
        string offsetLine = p.StandardError.ReadLine() ?? "";
        Assert.StartsWith("emu64: the kernel's KASLR offset is 0x", offsetLine);
        _ = p.StandardOutput.ReadToEndAsync();
        _ = p.StandardError.ReadToEndAsync();
        string o = Gdb.Script($"""
            set pagination off
            set confirm off
            set architecture i386:x86-64
            symbol-file {Kernel}
            target remote 127.0.0.1:{port}
            break entry_SYSCALL_64
            continue
            printf "LSTAR-PC=%lx\n", $pc
            monitor kaslr
            detach
            """);
        // The slid address: link address of entry_SYSCALL_64 + the offset the kernel chose (not 0: KASLR is on).
        var link = new Emu64.Loader.ElfImage(File.ReadAllBytes(Kernel)).ReadSymbols().First(s => s.Name == "entry_SYSCALL_64").Value;
        ulong slide = Convert.ToUInt64(offsetLine.Split("0x")[1].Split(':')[0], 16);
        Assert.NotEqual(0UL, slide);
        Assert.Contains($"Breakpoint 1, 0x{link + slide:x16} in entry_SYSCALL_64 ()", o);
        Assert.Contains($"LSTAR-PC={link + slide:x}", o);
        Assert.Contains($"symbol-file -o 0x{slide:x} ", o);
        Assert.Contains("[Inferior 1 (Remote target) detached]", o);
        Assert.True(p.WaitForExit(60_000));
        Assert.Equal(0, p.ExitCode);
    }
}
