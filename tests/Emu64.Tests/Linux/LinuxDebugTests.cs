using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Emu64.Debugging;
using Emu64.Tests.Support;
using Xunit.Abstractions;
using Debugger = Emu64.Debugging.Debugger;

namespace Emu64.Tests.Linux;

/// <summary>
/// One boot of Debian's kernel (KASLR on, <c>--seed 1</c>) under the debugger, shared by the tests below: the
/// script docs/linux-syscall.txt runs on it exactly as <c>emu64 debug --script</c> runs it (same machine, same
/// commands), then a stock gdb attaches to the running kernel through the stub with the kallsyms-derived symbol
/// file, then the machine runs on to its power-off. The guest's /init prints the three symbols from its
/// /proc/kallsyms before it runs the getpid program the script stops in.
/// </summary>
public sealed class LinuxDebugBoot : IDisposable
{
    public const ulong Seed = 1;
    public static readonly string[] RunArgs = ["--initrd", "tests/linux/out/initrd.gz", "--append", "console=ttyS0", "-m", "512", "--seed", "1"];
    public static string Invocation => "$ emu64 debug tests/linux/out/vmlinuz " + string.Join(' ', RunArgs.Select(a => a.Contains(' ') ? $"\"{a}\"" : a)) + " --script docs/linux-syscall.txt";

    public static string Root => Path.GetFullPath(Path.Combine(DebianKernel.Dir!, "..", "..", ".."));
    public static string ScriptPath => Path.Combine(Root, "docs", "linux-syscall.txt");

    public readonly List<(string Command, string Output)> Transcript = [];
    public string Console = "";
    public string Gdb = "";
    public string? GdbSkipped;
    public long KaslrOffset;
    public readonly Dictionary<string, ulong> Named = [];
    public StopReason Reason;
    public Exception? StubError;

    public LinuxDebugBoot()
    {
        if (DebianKernel.SkipReason() != null) return;
        var args = RunArgs.Select(a => a.StartsWith("tests/linux/out/") ? Path.Combine(DebianKernel.Dir!, a["tests/linux/out/".Length..]) : a).ToArray();
        var ro = Emu64.Cli.Cli.ParseRunOptions(args, needKernel: false) with { Kernel = DebianKernel.Vmlinuz };
        var console = new MemoryStream();
        var m = Emu64.Cli.Cli.CreateMachine(ro, console, current: false);
        var syms = new SymbolTable(m.Symbols);
        var dbg = new Debugger(m, syms);
        dbg.UpdateHook();
        var cmds = new DebuggerCommands(dbg);
        foreach (var line in File.ReadAllLines(ScriptPath).Where(l => l.Trim().Length > 0))
        {
            if (line.Trim() == "quit") break;
            Transcript.Add((line, cmds.Execute(line)));
        }
        KaslrOffset = syms.KaslrOffset;
        foreach (var n in new[] { "entry_SYSCALL_64", "startup_64", "init_top_pgt", "_text" })
            if (syms.TryResolve(n, out ulong a)) Named[n] = a;
        if (!Support.Gdb.Available) GdbSkipped = $"{Support.Gdb.Program} is not installed";
        else Gdb = RunGdb(m, dbg);
        if (m.StopReason is StopReason.None or StopReason.Break) { m.ClearBreak(); dbg.Breakpoints.Clear(); dbg.UpdateHook(); m.Run(); }
        Reason = m.StopReason;
        Console = Encoding.Latin1.GetString(console.ToArray());
    }

    /// <summary>gdb, given only the symbol file Emu64 writes from the guest's kallsyms, breaks on entry_SYSCALL_64 of the running kernel.</summary>
    private string RunGdb(Machine m, Debugger dbg)
    {
        string elf = Path.Combine(Path.GetTempPath(), $"emu64-kallsyms-{Environment.ProcessId}.elf");
        File.WriteAllBytes(elf, SymbolElf.Write(Kallsyms.Find(m.Memory)!.Symbols()));
        using var stub = new GdbStub(dbg, "127.0.0.1", 0);
        var t = new Thread(() => { try { stub.Serve(); } catch (Exception e) { StubError = e; } }) { IsBackground = true };
        t.Start();
        var psi = new ProcessStartInfo(Support.Gdb.Path_) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "--batch", "-nx", "-ex", "set pagination off", "-ex", "set confirm off", "-ex", $"symbol-file {elf}",
                                  "-ex", $"target remote 127.0.0.1:{stub.Port}", "-ex", "break entry_SYSCALL_64", "-ex", "continue",
                                  "-ex", "printf \"PC=%lx RAX=%ld CR3=%lx\\n\", $pc, $rax, $cr3", "-ex", "x/2i $pc", "-ex", "monitor pcid", "-ex", "detach" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(300_000)) { p.Kill(true); p.WaitForExit(); }
        t.Join(60_000);
        File.Delete(elf);
        return output.Result + err.Result;
    }

    public void Dispose() { }
}

/// <summary>
/// Real Linux in the debugger (docs/LINUX.md, "Stepping a system call on Linux"; docs/DEBUGGING.md): names from the
/// kernel's own kallsyms under KASLR, a system call stepped across PTI's CR3 switches, and stock gdb breaking on
/// entry_SYSCALL_64 without an offset. Trait LinuxBoot: one full boot, and one to where the kernel sets LSTAR.
/// </summary>
[Trait("Category", "LinuxBoot")]
public class LinuxDebugTests(LinuxDebugBoot boot, ITestOutputHelper output) : IClassFixture<LinuxDebugBoot>
{
    /// <summary>"EMU64-KALLSYMS: ffffffffa3000080 T entry_SYSCALL_64" lines, the guest's /proc/kallsyms.</summary>
    private static Dictionary<string, ulong> GuestKallsyms(string console) =>
        Regex.Matches(console, @"EMU64-KALLSYMS: ([0-9a-f]{16}) . (\S+)").ToDictionary(x => x.Groups[2].Value, x => Convert.ToUInt64(x.Groups[1].Value, 16));

    [DebianKernelFact]
    public void The_debugger_names_entry_SYSCALL_64_startup_64_and_init_top_pgt_where_the_guest_s_proc_kallsyms_puts_them()
    {
        var guest = GuestKallsyms(boot.Console);
        output.WriteLine(string.Join("\n", guest.Select(kv => $"{kv.Key} guest 0x{kv.Value:x} emu64 0x{boot.Named.GetValueOrDefault(kv.Key):x}")));
        // swapper_pg_dir is x86-64's name for init_top_pgt (a #define in pgtable_64.h), so kallsyms lists init_top_pgt.
        Assert.Equal(["entry_SYSCALL_64", "init_top_pgt", "startup_64"], guest.Keys.Order());
        foreach (var (name, addr) in guest) Assert.Equal(addr, boot.Named[name]);
        // The script's own lookups say the same.
        Assert.Contains(boot.Transcript, t => t.Command == "sym entry_SYSCALL_64" && t.Output == $"entry_SYSCALL_64 = 0x{guest["entry_SYSCALL_64"]:x}\n");
        // KASLR moved the kernel (CONFIG_RANDOMIZE_BASE) by a multiple of CONFIG_PHYSICAL_ALIGN (2 MiB).
        Assert.NotEqual(0L, boot.KaslrOffset);
        Assert.Equal(0L, boot.KaslrOffset % 0x200000);
        Assert.Equal(Kallsyms.LinkText + (ulong)boot.KaslrOffset, boot.Named["_text"]);
    }

    [DebianKernelTranscriptFact]
    public void The_stepping_walkthrough_in_LINUX_md_is_the_real_output_of_docs_linux_syscall_txt()
    {
        string doc = Path.Combine(LinuxDebugBoot.Root, "docs", "LINUX.md");
        var sb = new StringBuilder();
        sb.Append("```\n").Append(LinuxDebugBoot.Invocation).Append('\n');
        foreach (var (c, o) in boot.Transcript) sb.Append(Emu64.Cli.DebugCommand.Prompt).Append(c).Append('\n').Append(o);
        sb.Append("```\n");
        string block = sb.ToString();
        string text = File.ReadAllText(doc);
        const string Begin = "<!-- linux-syscall transcript: begin -->\n", End = "<!-- linux-syscall transcript: end -->";
        int b = text.IndexOf(Begin, StringComparison.Ordinal), e = text.IndexOf(End, StringComparison.Ordinal);
        Assert.True(b >= 0 && e > b, "docs/LINUX.md has no linux-syscall transcript markers");
        string current = text[(b + Begin.Length)..e];
        if (Environment.GetEnvironmentVariable("EMU64_UPDATE_WALKTHROUGH") == "1" && current != block)
            File.WriteAllText(doc, text[..(b + Begin.Length)] + block + text[e..]);
        else Assert.Equal(current, block);
    }

    [DebianKernelFact]
    public void Stepping_getpid_shows_the_kernel_PCID_switch_with_NOFLUSH_the_user_PCID_and_SYSRET()
    {
        string all = string.Concat(boot.Transcript.Select(t => t.Output));
        output.WriteLine(all);
        // The first stop: the getpid program's SYSCALL (number 39), at entry_SYSCALL_64 = LSTAR.
        Assert.StartsWith("[syscall]", boot.Transcript[0].Output);
        Assert.Contains("entry_SYSCALL_64", boot.Transcript[0].Output);
        Assert.Contains(boot.Transcript, t => t.Command == "continue" && t.Output.StartsWith($"breakpoint at 0x{boot.Named["entry_SYSCALL_64"]:x} <entry_SYSCALL_64>"));
        Assert.Contains("[sysret]", all);
        // SWITCH_TO_KERNEL_CR3: user PCID (bit 11 set) to the kernel PCID, NOFLUSH; the kernel PGD is 4 KiB below the user PGD.
        var toKernel = Regex.Match(all, @"\[cr3\] #\d+ cr3 ([0-9a-f]+) -> ([0-9a-f]+) pcid 8([0-9a-f]{2}) -> ([0-9a-f]+) noflush dropped=0 rip=\S+ <entry_SYSCALL_64\+0x20>");
        Assert.True(toKernel.Success, all);
        Assert.Equal(Convert.ToUInt64(toKernel.Groups[1].Value, 16) - 0x1000 - 0x800, Convert.ToUInt64(toKernel.Groups[2].Value, 16));
        Assert.Equal(toKernel.Groups[3].Value.TrimStart('0'), toKernel.Groups[4].Value);
        // SWITCH_TO_USER_CR3 after getpid keeps the user PCID's entries (NOFLUSH) ...
        Assert.Matches(@"\[cr3\] #\d+ cr3 [0-9a-f]+ -> [0-9a-f]+ pcid [0-9a-f]+ -> 8[0-9a-f]{2} noflush dropped=0 rip=\S+ <syscall_return_via_sysret\+0x88>", all);
        // ... and after the munmap of 64 pages it takes the deferred-flush path: no NOFLUSH, the user PCID's entries dropped.
        var deferred = boot.Transcript.SkipWhile(t => t.Command != "until syscall 11").Select(t => t.Output).ToList();
        Assert.Contains(deferred, o => Regex.IsMatch(o, @"pcid [0-9a-f]+ -> 8[0-9a-f]{2} flush dropped=[1-9][0-9]* rip=\S+ <syscall_return_via_sysret\+0x88>"));
        Assert.Contains(boot.Transcript, t => t.Command == "walk entry_SYSCALL_64" && t.Output.Contains("5-level") && t.Output.Contains("supervisor read-only exec global"));
        Assert.Contains(boot.Transcript, t => t.Command == "walk 0x401000" && t.Output.Contains("(4K page, user read-only exec)"));
    }

    [DebianKernelGdbFact]
    public void Stock_gdb_breaks_on_entry_SYSCALL_64_of_the_KASLR_kernel_with_the_symbol_file_from_kallsyms()
    {
        output.WriteLine(boot.Gdb);
        Assert.Null(boot.StubError);
        ulong entry = boot.Named["entry_SYSCALL_64"];
        Assert.Contains($"Breakpoint 1, 0x{entry:x16} in entry_SYSCALL_64", boot.Gdb);
        Assert.Contains($"PC={entry:x} RAX=1 ", boot.Gdb);        // the getpid program's next system call after the script: write (1)
        Assert.Contains("[Inferior 1 (Remote target) detached]", boot.Gdb);
        Assert.Contains(DebianKernel.DoneMarker, boot.Console);
        Assert.Equal(StopReason.Shutdown, boot.Reason);
    }
}
