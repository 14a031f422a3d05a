using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Emu64.Cpu;
using Emu64.Debugging;
using Emu64.Forensics;
using Emu64.Tests.Support;
using Debugger = Emu64.Debugging.Debugger;

namespace Emu64.Tests.Forensics;

/// <summary>A fact that needs binutils' readelf: skipped, visibly, when it is not installed.</summary>
public sealed class ReadelfFactAttribute : FactAttribute
{
    public static readonly bool Available = File.Exists("/usr/bin/readelf") || (Environment.GetEnvironmentVariable("PATH") ?? "")
        .Split(':').Any(d => d.Length > 0 && File.Exists(Path.Combine(d, "readelf")));
    public ReadelfFactAttribute() { if (!Available) Skip = "readelf (binutils) is not installed"; }

    /// <summary>`readelf -h -l -n -W FILE`: its output (stdout and stderr), checked to have exited 0 without a warning.</summary>
    public static string HeadersOf(string file)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("readelf") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-h", "-l", "-n", "-W", file }) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        string o = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(30_000));
        Assert.Equal(0, p.ExitCode);
        Assert.DoesNotContain("Warning", o);
        return o;
    }
}

/// <summary>A fact that needs gdb: skipped, visibly, when it is not installed.</summary>
public sealed class GdbFactAttribute : FactAttribute
{
    public static readonly bool Available = (Environment.GetEnvironmentVariable("PATH") ?? "")
        .Split(':').Any(d => d.Length > 0 && File.Exists(Path.Combine(d, "gdb")));
    public GdbFactAttribute() { if (!Available) Skip = "gdb is not installed"; }
}

/// <summary>Guest memory dumps: QEMU's dump-guest-memory ELF layout, the notes, the pages, determinism, and every way to ask for one.</summary>
public class CoreDumpTests
{
    private const string Append = "init=echo";
    private const ulong Stop = 4_000_000;

    private static byte[] Dump(Machine m)
    {
        var ms = new MemoryStream();
        CoreDumpWriter.Write(m, ms);
        return ms.ToArray();
    }

    [Fact]
    public void A_dump_of_a_stopped_machine_is_byte_identical_on_every_run_and_every_time()
    {
        var a = ToyKernel.Boot(Append, seed: 5, maxInstructions: Stop, record: false);
        var b = ToyKernel.Boot(Append, seed: 5, maxInstructions: Stop, record: false);
        byte[] da = Dump(a.Machine), again = Dump(a.Machine), db = Dump(b.Machine);
        Assert.Equal(SHA256.HashData(da), SHA256.HashData(again));
        Assert.Equal(SHA256.HashData(da), SHA256.HashData(db));
        // and a different seed is a different machine (KASLR moved), so the test can fail
        var c = ToyKernel.Boot(Append, seed: 6, maxInstructions: Stop, record: false);
        Assert.NotEqual(SHA256.HashData(da), SHA256.HashData(Dump(c.Machine)));
    }

    [Fact]
    public void The_dump_has_QEMUs_ELF_layout_a_note_segment_first_then_one_load_per_RAM_range_at_its_physical_address()
    {
        var k = ToyKernel.Boot(Append, seed: 1, maxInstructions: Stop, record: false);
        var d = Dump(k.Machine).AsSpan();
        ulong ram = k.Machine.Memory.RamSize;
        Assert.Equal(new byte[] { 0x7F, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1, 0 }, d[..8].ToArray());
        Assert.Equal(4, BinaryPrimitives.ReadUInt16LittleEndian(d[16..]));      // ET_CORE
        Assert.Equal(62, BinaryPrimitives.ReadUInt16LittleEndian(d[18..]));     // EM_X86_64
        Assert.Equal(64UL, BinaryPrimitives.ReadUInt64LittleEndian(d[32..]));   // e_phoff
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(d[40..]));    // no section headers
        Assert.Equal(56, BinaryPrimitives.ReadUInt16LittleEndian(d[54..]));
        Assert.Equal(2, BinaryPrimitives.ReadUInt16LittleEndian(d[56..]));      // PT_NOTE + one PT_LOAD
        var note = d[64..];
        int noteSize = (12 + 8 + 336) + (12 + 8 + 440);                         // CORE prstatus + QEMU QEMUCPUState
        Assert.Equal(4U, BinaryPrimitives.ReadUInt32LittleEndian(note));        // PT_NOTE
        Assert.Equal((ulong)(64 + 2 * 56), BinaryPrimitives.ReadUInt64LittleEndian(note[8..]));
        Assert.Equal((ulong)noteSize, BinaryPrimitives.ReadUInt64LittleEndian(note[32..]));
        var load = d[(64 + 56)..];
        Assert.Equal(1U, BinaryPrimitives.ReadUInt32LittleEndian(load));        // PT_LOAD
        Assert.Equal(0U, BinaryPrimitives.ReadUInt32LittleEndian(load[4..]));   // p_flags 0, as QEMU
        Assert.Equal((ulong)(64 + 2 * 56 + noteSize), BinaryPrimitives.ReadUInt64LittleEndian(load[8..]));
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(load[16..])); // p_vaddr = p_paddr
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(load[24..])); // p_paddr: physical 0
        Assert.Equal(ram, BinaryPrimitives.ReadUInt64LittleEndian(load[32..]));
        Assert.Equal(ram, BinaryPrimitives.ReadUInt64LittleEndian(load[40..]));
        Assert.Equal(64 + 2 * 56 + noteSize + (long)ram, d.Length);
    }

    [Fact]
    public void The_notes_hold_the_registers_in_Linuxs_elf_prstatus_and_QEMUs_QEMUCPUState_with_CR3_and_the_GDT_and_IDT()
    {
        var k = ToyKernel.Boot("la57 init=echo", seed: 2, maxInstructions: Stop, record: false);
        var c = k.Machine.Cpu;
        var notes = CoreDumpWriter.Notes(c).AsSpan();
        // "CORE" NT_PRSTATUS: namesz 5, descsz 336, type 1
        Assert.Equal(5U, BinaryPrimitives.ReadUInt32LittleEndian(notes));
        Assert.Equal(336U, BinaryPrimitives.ReadUInt32LittleEndian(notes[4..]));
        Assert.Equal(1U, BinaryPrimitives.ReadUInt32LittleEndian(notes[8..]));
        Assert.Equal("CORE\0", Encoding.ASCII.GetString(notes.Slice(12, 5)));
        byte[] pr = notes.Slice(20, 336).ToArray();
        Assert.Equal(1U, BinaryPrimitives.ReadUInt32LittleEndian(pr.AsSpan(32)));                // pr_pid: CPU 0 + 1
        ulong PrReg(int i) => BinaryPrimitives.ReadUInt64LittleEndian(pr.AsSpan(112 + 8 * i));  // user_regs_struct
        Assert.Equal(c.R[Reg.R15], PrReg(0));
        Assert.Equal(c.R[Reg.RBP], PrReg(4));
        Assert.Equal(c.R[Reg.RAX], PrReg(10));
        Assert.Equal(c.R[Reg.RDI], PrReg(14));
        Assert.Equal(c.Rip, PrReg(16));
        Assert.Equal((ulong)c.Segs[Seg.CS].Selector, PrReg(17));
        Assert.Equal(c.Rflags, PrReg(18));
        Assert.Equal(c.Rsp, PrReg(19));
        Assert.Equal(c.Segs[Seg.GS].Base, PrReg(22));
        // "QEMU" type 0: QEMUCPUState version 1, 440 bytes
        var q = notes[(20 + 336)..];
        Assert.Equal(5U, BinaryPrimitives.ReadUInt32LittleEndian(q));
        Assert.Equal(440U, BinaryPrimitives.ReadUInt32LittleEndian(q[4..]));
        Assert.Equal(0U, BinaryPrimitives.ReadUInt32LittleEndian(q[8..]));
        Assert.Equal("QEMU\0", Encoding.ASCII.GetString(q.Slice(12, 5)));
        var s = new QemuCpuState(q.Slice(20, 440).ToArray());
        Assert.Equal(1U, s.Version);
        Assert.Equal(440U, s.Size);
        Assert.Equal(c.R[Reg.RBX], s.Reg("rbx"));
        Assert.Equal(c.R[Reg.R15], s.Reg("r15"));
        Assert.Equal(c.Rip, s.Reg("rip"));
        Assert.Equal(c.CR0, s.Cr(0));
        Assert.Equal(0UL, s.Cr(1));
        Assert.Equal(c.CR3, s.Cr(3));
        Assert.Equal(c.CR4, s.Cr(4));
        Assert.NotEqual(0UL, s.Cr(4) & Emu64.Cpu.Cr4.La57);
        Assert.Equal((0U, (uint)c.Gdtr.Limit, 0U, c.Gdtr.Base), s.Segment("gdt"));
        Assert.Equal((0U, (uint)c.Idtr.Limit, 0U, c.Idtr.Base), s.Segment("idt"));
        Assert.Equal(0xfffffe0000001000UL, s.Segment("gdt").Base);   // the toy kernel's GDT lives in the cpu_entry_area
        var cs = s.Segment("cs");
        Assert.Equal(0x10U, cs.Selector);
        Assert.Equal(0x00A09B00U, cs.Flags);            // P DPL0 S code exec/read accessed, L=1, G=1 (descriptor bits 40..55, 8 higher)
        Assert.Equal((uint)c.Tr.Selector, s.Segment("tr").Selector);
        Assert.Equal(c.Tr.Base, s.Segment("tr").Base);
        Assert.Equal(c.KernelGsBase, s.KernelGsBase);
    }

    [Fact]
    public void Pages_read_back_from_the_dump_file_equal_guest_memory()
    {
        var k = ToyKernel.Boot(Append, seed: 3, maxInstructions: Stop, record: false);
        using var dir = new CliRun.TempDir();
        string path = dir.Name("guest.core");
        CoreDumpWriter.WriteFile(k.Machine, path);
        using var f = new CoreFile(path);
        var ram = k.Machine.Memory.RamSpan(0, (int)k.Machine.Memory.RamSize);
        Assert.Equal([new PhysRange(0, (ulong)ram.Length)], f.Ranges);
        var page = new byte[4096];
        // swapper_pg_dir, the kernel image's first pages, and one page in every MiB
        var pages = new List<ulong> { k.Machine.KernelInfo.SwapperPgd!.Value, 0x1000000, 0x1001000 };
        for (ulong pa = 0; pa < (ulong)ram.Length; pa += 1 << 20) pages.Add(pa + 0x3000);
        foreach (ulong pa in pages)
        {
            Assert.Equal(4096, f.Read(pa, page));
            Assert.True(page.AsSpan().SequenceEqual(ram.Slice((int)pa, 4096)), $"page 0x{pa:x} differs");
            Assert.True(f.TryRead64(pa + 8, out ulong v));
            Assert.Equal(BinaryPrimitives.ReadUInt64LittleEndian(ram[(int)(pa + 8)..]), v);
        }
        Assert.False(f.TryRead64((ulong)ram.Length, out _));       // past RAM: not in the dump
        Assert.Equal(0, f.Read((ulong)ram.Length, page));
        Assert.Equal(k.Machine.Cpu.CR3, f.CpuState!.Cr(3));
    }

    [ReadelfFact]
    public void Readelf_reads_the_dump_as_an_x86_64_core_with_a_note_and_a_load_segment_and_both_notes()
    {
        var k = ToyKernel.Boot(Append, seed: 4, maxInstructions: Stop, record: false);
        using var dir = new CliRun.TempDir();
        string path = dir.Name("guest.core");
        CoreDumpWriter.WriteFile(k.Machine, path);
        string o = ReadelfFactAttribute.HeadersOf(path);
        Assert.Matches(@"Type:\s+CORE \(Core file\)", o);
        Assert.Matches(@"Machine:\s+Advanced Micro Devices X86-64", o);
        Assert.Matches(@"Number of program headers:\s+2", o);
        Assert.Matches(@"NOTE\s+0x0000b0 0x0000000000000000 0x0000000000000000 0x000330 0x000330\s+0", o);
        Assert.Matches(@"LOAD\s+0x0003e0 0x0000000000000000 0x0000000000000000 0x8000000 0x8000000\s+0", o);
        Assert.True(o.IndexOf("NOTE", StringComparison.Ordinal) < o.IndexOf("LOAD", StringComparison.Ordinal), "PT_NOTE comes first");
        Assert.Matches(@"CORE\s+0x00000150\s+NT_PRSTATUS", o);
        Assert.Matches(@"QEMU\s+0x000001b8\s+Unknown note type: \(0x00000000\)", o);
    }

    [GdbFact]
    public void Gdb_opens_the_dump_as_a_core_file_with_the_registers_of_NT_PRSTATUS_and_memory_at_physical_addresses()
    {
        var k = ToyKernel.Boot(Append, seed: 10, maxInstructions: Stop, record: false);
        using var dir = new CliRun.TempDir();
        string path = dir.Name("guest.core");
        CoreDumpWriter.WriteFile(k.Machine, path);
        string o = Gdb.Batch("set architecture i386:x86-64", $"core-file {path}",
                             "printf \"RIP=%lx RSP=%lx R15=%lx CS=%x\\n\", $rip, $rsp, $r15, $cs", "x/2gx 0x1000000");
        var c = k.Machine.Cpu;
        Assert.Contains($"RIP={c.Rip:x} RSP={c.Rsp:x} R15={c.R[Reg.R15]:x} CS={c.Segs[Seg.CS].Selector:x}", o);
        // p_vaddr = p_paddr: gdb finds physical 16 MiB (the kernel image's multiboot header) at address 0x1000000
        var ram = k.Machine.Memory.RamSpan(0x1000000, 16);
        ulong w0 = BinaryPrimitives.ReadUInt64LittleEndian(ram), w1 = BinaryPrimitives.ReadUInt64LittleEndian(ram[8..]);
        Assert.Contains($"0x1000000:\t0x{w0:x16}\t0x{w1:x16}", o);
    }

    [Fact]
    public void The_debugger_dump_command_writes_the_same_file_as_the_writer_and_refuses_QEMUs_other_formats()
    {
        var k = ToyKernel.Boot(Append, seed: 7, maxInstructions: Stop, record: false);
        var cmds = new DebuggerCommands(new Debugger(k.Machine, SymbolTable.Empty));
        using var dir = new CliRun.TempDir();
        string a = dir.Name("a.core"), b = dir.Name("b.core");
        Assert.Matches(@"^dumped 128 MiB of guest memory and the CPU state to .*a\.core \(134218720 bytes, ELF core\)\n$", cmds.Execute($"dump {a}"));
        Assert.StartsWith("dumped", cmds.Execute($"dump-guest-memory {b}"));
        Assert.Equal(Dump(k.Machine), File.ReadAllBytes(a));
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
        Assert.Equal("dump: option -p is not supported: Emu64 writes QEMU's ELF format of all RAM, without paging filter\n", cmds.Execute("dump-guest-memory -p x"));
        Assert.Equal("usage: dump FILE (or dump-guest-memory FILE)\n", cmds.Execute("dump"));
        Assert.StartsWith("dump: cannot write '", cmds.Execute($"dump {dir.Path}"));   // a directory
        Assert.Contains("dump FILE ", DebuggerCommands.Help);
    }

    [Fact]
    public void Monitor_dump_guest_memory_through_the_gdb_stub_writes_the_dump()
    {
        var k = ToyKernel.Boot(Append, seed: 8, maxInstructions: Stop, record: false);
        using var dir = new CliRun.TempDir();
        string path = dir.Name("gdb.core");
        var stub = new GdbStub(new Debugger(k.Machine, SymbolTable.Empty), "127.0.0.1", 0);
        var server = new Thread(() => { try { stub.Serve(); } catch (Exception) { } }) { IsBackground = true };
        server.Start();
        string reply;
        using (var tcp = new TcpClient())
        {
            tcp.Connect("127.0.0.1", stub.Port);
            tcp.ReceiveTimeout = 20_000;
            var ns = tcp.GetStream();
            string hex = Convert.ToHexString(Encoding.ASCII.GetBytes($"dump-guest-memory {path}")).ToLowerInvariant();
            reply = Exchange(ns, "qRcmd," + hex);
            Exchange(ns, "D");
        }
        stub.Dispose();
        Assert.Contains("dumped 128 MiB", reply);
        Assert.Equal(Dump(k.Machine), File.ReadAllBytes(path));
    }

    /// <summary>Sends one packet and collects what comes back until the final OK (or an error), acking each packet.</summary>
    private static string Exchange(NetworkStream ns, string payload)
    {
        int sum = 0;
        foreach (char ch in payload) sum = (sum + ch) & 0xFF;
        ns.Write(Encoding.ASCII.GetBytes($"${payload}#{sum:x2}"));
        var all = new StringBuilder();
        var buf = new byte[65536];
        var sw = Stopwatch.StartNew();
        while (sw.ElapsedMilliseconds < 20_000)
        {
            int n = ns.Read(buf);
            if (n <= 0) break;
            all.Append(Encoding.Latin1.GetString(buf, 0, n));
            string s = all.ToString();
            int packets = s.Split('#').Length - 1;
            for (int i = 0; i < packets; i++) ns.WriteByte((byte)'+');
            if (s.Contains("$OK#") || s.Contains("$E")) break;
        }
        // decode the O packets' hex text
        var text = new StringBuilder();
        foreach (var part in all.ToString().Split('$').Skip(1))
        {
            string body = part.Split('#')[0];
            if (body.StartsWith('O') && body != "OK") text.Append(Encoding.UTF8.GetString(Convert.FromHexString(body[1..])));
        }
        return text.ToString();
    }

    [Fact]
    public void Dump_on_exit_writes_the_dump_when_a_boot_ends_and_analyze_reads_it()
    {
        using var dir = new CliRun.TempDir();
        string path = dir.Name("exit.core");
        var r = CliRun.Execute("boot", "--append", "init=echo", "--seed", "9", "--max-instructions", "4000000", "--dump-on-exit", path);
        Assert.Equal(6, r.Status);
        Assert.Contains($"emu64: guest memory dumped to {path} (134218720 bytes)", r.Stderr);
        using (var f = new CoreFile(path)) Assert.Equal(134217728UL, f.Ranges[0].Length);
        var a = CliRun.Execute("analyze", path);
        Assert.Equal(0, a.Status);
        Assert.Contains("paging mode: 4-level   [confidence: high]", a.Out);
        Assert.Contains("kernel top-level page table (PGD): 0x100000   [confidence: high]", a.Out);
        Assert.Contains("cross-check with the CPU note (not used above)", a.Out);
        Assert.Contains("its table is one of the PGDs found, paging mode agrees", a.Out);
        Assert.Contains("--dump-on-exit FILE", CliRun.Execute("--help").Out);
        Assert.Contains("analyze DUMP [--use-cr3]", CliRun.Execute("--help").Out);
    }
}
