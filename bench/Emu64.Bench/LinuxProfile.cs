using System.Diagnostics;
using System.Text;
using Emu64.Debugging;
using Emu64.Loader;

namespace Emu64.Bench;

/// <summary>
/// <c>dotnet run -c Release --project bench/Emu64.Bench -- profile-linux [tests/linux/out] [slice] [max-instructions]</c>: boots Debian's kernel
/// (bzImage, the test initramfs, console=ttyS0, 512 MiB, as DebianBoot does) in-process and reports where the boot spends
/// guest instructions and host time (docs/PERFORMANCE.md, "Where a Linux boot spends its time"):
/// <list type="bullet">
/// <item>per console line: the retired count and host time at which each line ended, so phases between two lines have both;</item>
/// <item>guest-instruction samples: the run goes in slices of <c>slice</c> instructions (default 10,000) and the RIP at each
/// slice's end is one sample, so a function's share of the samples is its share of the retired instructions;</item>
/// <item>host-time samples: a second thread reads the CPU's RIP every millisecond, so a function's share of those samples is
/// its share of the wall time (a REP string chunk counts one instruction but may take 4,096 iterations: the two differ);</item>
/// <item>the chain's counters (Machine.Chain): compiled against interpreted instructions, why compiled regions returned,
/// link misses; the decode cache's decodes and compiled regions, and the JIT time.</item>
/// </list>
/// Slicing changes nothing the guest sees: the run stops and resumes at exact instruction counts.
/// </summary>
public static class LinuxProfile
{
    public static void Run(string[] args)
    {
        string dir = args.Length > 1 ? args[1] : "tests/linux/out";
        ulong slice = args.Length > 2 ? ulong.Parse(args[2]) : 10_000;
        ulong max = args.Length > 3 ? ulong.Parse(args[3]) : 8_000_000_000;   // stop early: profile one phase of the boot
        var lines = new LineClock();
        var m = new Machine(new MachineOptions { RamBytes = 512UL << 20, Append = "console=ttyS0", MaxInstructions = max, Output = lines });
        lines.Machine = m;
        string vmlinuz = Path.Combine(dir, "vmlinuz");
        m.LoadKernel(File.ReadAllBytes(vmlinuz), vmlinuz, [new BootModule(Path.Combine(dir, "initrd.gz"), File.ReadAllBytes(Path.Combine(dir, "initrd.gz")))]);

        var insnSamples = new List<ulong>();
        var hostSamples = new List<ulong>();
        bool done = false;
        var cpu = m.Cpu;
        var sampler = new Thread(() =>
        {
            while (!Volatile.Read(ref done))
            {
                ulong rip = cpu.InsnRip;
                lock (hostSamples) hostSamples.Add(rip);
                Thread.Sleep(1);
            }
        }) { IsBackground = true, Priority = ThreadPriority.AboveNormal };
        var jit0 = System.Runtime.JitInfo.GetCompilationTime();
        var sw = Stopwatch.StartNew();
        lines.Watch = sw;
        sampler.Start();
        while (m.StopReason == StopReason.None)
        {
            m.Run(slice);
            insnSamples.Add(cpu.Rip);
        }
        double seconds = sw.Elapsed.TotalSeconds;
        Volatile.Write(ref done, true);
        sampler.Join();
        var jit = System.Runtime.JitInfo.GetCompilationTime() - jit0;

        var elf = new ElfImage(File.ReadAllBytes(Path.Combine(dir, "vmlinux")));
        var syms = new SymbolTable(elf.ReadSymbols());
        // Debian's vmlinux is stripped: name addresses from the kernel's own kallsyms in guest RAM (runtime addresses, KASLR applied).
        if (!syms.TryKallsyms(m)) syms.DetectSlide(m);
        var o = Console.Out;
        ulong n = cpu.Retired;
        o.WriteLine($"stop: {m.StopReason} {m.StopMessage}");
        o.WriteLine(FormattableString.Invariant($"instructions: {n}  host seconds: {seconds:F2}  MIPS: {n / seconds / 1e6:F1}  idle guest ticks skipped (HLT): {m.IdleTicks}"));
        o.WriteLine(FormattableString.Invariant($"JIT time (all methods, incl. compiled regions): {jit.TotalSeconds:F2} s; regions compiled: {m.Cache.Compiled}; blocks decoded: {m.Cache.Decodes}; code-frame invalidations: {m.Cache.Invalidations}"));
        var c = m.Chain;
        o.WriteLine(FormattableString.Invariant($"compiled: {c.CompiledRetired} instructions ({100.0 * c.CompiledRetired / n:F1}%) in {c.CompiledEntries} region entries ({(double)c.CompiledRetired / Math.Max(1, c.CompiledEntries):F1} per entry); interpreted blocks in the chain: {c.InterpretedBlocks}"));
        o.WriteLine($"region returns: early (ExitBlock) {c.ExitEarly}, unchainable last block {c.ExitUnchainable}, run loop must act {c.ExitBoundary}, on through the links {c.CompiledEntries - c.ExitEarly - c.ExitUnchainable - c.ExitBoundary}; link misses: {c.LinkMisses}");
        var tlb = cpu.Mmu.Snapshot();
        o.WriteLine($"fast-cache fills: {cpu.Mmu.FastFills}; itlb lookups {tlb.Named().First(k => k.Key == "tlb.itlb.lookups").Value}, dtlb lookups {tlb.Named().First(k => k.Key == "tlb.dtlb.lookups").Value}");
        o.WriteLine();
        o.WriteLine("console lines (retired at the line's end, host seconds):");
        foreach (var (r, t, text) in lines.Lines) o.WriteLine(FormattableString.Invariant($"{r,14} {t,8:F2}  {text}"));
        o.WriteLine();
        Table(o, "functions by guest instructions (RIP at the end of each slice)", insnSamples, syms);
        List<ulong> hs;
        lock (hostSamples) hs = [.. hostSamples];
        Table(o, "functions by host time (RIP every 1 ms from a second thread)", hs, syms);
        // Without a symbol table (Debian ships System.map only in the -dbg package) the hottest addresses and their instructions.
        var dis = new Disassembler(m, syms);
        foreach (var (title, list) in new[] { ("hottest instruction-sample addresses", insnSamples), ("hottest host-time addresses", hs) })
        {
            o.WriteLine($"{title}:");
            foreach (var g in list.GroupBy(r => r).OrderByDescending(g => g.Count()).Take(25))
            {
                string text;
                try { text = dis.One(g.Key) is { } l ? Disassembler.Format(l) : "?"; } catch (Exception e) { text = "? " + e.GetType().Name; }
                o.WriteLine(FormattableString.Invariant($"  {100.0 * g.Count() / list.Count,6:F2}%  {text}"));
            }
            o.WriteLine();
        }
    }

    private static string Name(SymbolTable syms, ulong rip)
    {
        if (rip < 0xFFFF800000000000UL) return rip < 0x100000 ? "(below 1 MiB: setup/firmware)" : "(identity-mapped: decompressor or head_64)";
        var s = syms.Find(rip, out _);
        return s?.Name ?? $"(unknown {rip >> 20:x}xxxxx)";
    }

    private static void Table(TextWriter o, string title, List<ulong> samples, SymbolTable syms)
    {
        o.WriteLine($"{title}: {samples.Count} samples");
        foreach (var g in samples.GroupBy(r => Name(syms, r)).OrderByDescending(g => g.Count()).Take(45))
            o.WriteLine(FormattableString.Invariant($"  {100.0 * g.Count() / samples.Count,6:F2}%  {g.Key}"));
        o.WriteLine();
    }

    /// <summary>COM1 output: each line with the retired count and host time at which it ended.</summary>
    private sealed class LineClock : Stream
    {
        public Machine? Machine;
        public Stopwatch? Watch;
        public readonly List<(ulong Retired, double Seconds, string Text)> Lines = [];
        private readonly StringBuilder _line = new();
        public override void Write(byte[] buffer, int offset, int count)
        {
            for (int i = 0; i < count; i++)
            {
                char ch = (char)buffer[offset + i];
                if (ch == '\n')
                {
                    Lines.Add((Machine?.Cpu.Retired ?? 0, Watch?.Elapsed.TotalSeconds ?? 0, _line.ToString().TrimEnd('\r')));
                    _line.Clear();
                }
                else _line.Append(ch);
            }
        }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => 0;
        public override long Position { get => 0; set { } }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) { }
    }
}
