using System.Net.Sockets;
using System.Text;
using Emu64.Debugging;
using Emu64.Loader;
using Emu64.Tests.Support;
using Iced.Intel;
using Xunit.Abstractions;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Robustness;

/// <summary>
/// Random input must end in an architectural outcome or a clear error, never a host exception or an
/// unbounded run. The short pass runs in `dotnet test` with a fixed seed; EMU64_FUZZ_SCALE=N runs N
/// times as many cases and EMU64_FUZZ_SEED picks another seed. A failing case is saved as a
/// reproducer file whose path is in the failure message.
/// </summary>
[Trait("Category", "Fuzz")]
public class FuzzTests(ITestOutputHelper output)
{
    private static int Scale => int.TryParse(Environment.GetEnvironmentVariable("EMU64_FUZZ_SCALE"), out var s) && s > 0 ? s : 1;
    private static int Seed => int.TryParse(Environment.GetEnvironmentVariable("EMU64_FUZZ_SEED"), out var s) ? s : 20261122;

    private static string SaveReproducer(string kind, int seed, int index, byte[] bytes, string ext = "bin")
    {
        var dir = Path.Combine(Path.GetTempPath(), "emu64-fuzz");
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, $"{kind}-seed{seed}-case{index}.{ext}");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static string SaveReproducer(string kind, int seed, int index, string text) => SaveReproducer(kind, seed, index, Encoding.UTF8.GetBytes(text), "txt");

    /// <summary>Physical addresses where bounds checks matter: the end of RAM, MMIO windows, the 4 GiB line, MAXPHYADDR, the top of the address space.</summary>
    private static ulong HotPhysical(Random rng, ulong ram)
    {
        ulong[] bases = [ram - 0x1000, ram, ram + 0x1000, 0xFEC00000, 0xFEE00000, 0xFFFFF000, 0x100000000, (1UL << 46) - 0x1000, 0];
        ulong b = bases[rng.Next(bases.Length)];
        return b == 0 ? (ulong)rng.NextInt64() : b + (ulong)rng.Next(-16, 4096 + 16);
    }

    private const ulong Bound = 5_000;

    /// <summary>
    /// A host-level hang guard: the instruction bound ends every guest run, so a case that takes more than
    /// <see cref="HangSeconds"/> of host time is a hang in the emulator itself. The watchdog saves the case
    /// as a reproducer, prints its path, and ends the test process (a hang cannot be unwound from inside).
    /// </summary>
    private sealed class Watchdog : IDisposable
    {
        public const int HangSeconds = 120;
        private readonly string _kind;
        private readonly Timer _timer;
        private int _case = -1;
        private Func<byte[]>? _data;
        private long _since = Environment.TickCount64;

        public Watchdog(string kind)
        {
            _kind = kind;
            _timer = new Timer(_ => Check(), null, 5_000, 5_000);
        }

        public void Case(int k, Func<byte[]> data) { Volatile.Write(ref _since, Environment.TickCount64); _data = data; Volatile.Write(ref _case, k); }

        private void Check()
        {
            int k = Volatile.Read(ref _case);
            if (k < 0 || Environment.TickCount64 - Volatile.Read(ref _since) < HangSeconds * 1000L) return;
            string path = SaveReproducer(_kind + "-hang", Seed, k, _data?.Invoke() ?? []);
            string msg = $"emu64 fuzz: case {k} of {_kind} (seed {Seed}) ran over {HangSeconds} s of host time: a hang (reproducer {path})";
            Console.Error.WriteLine(msg);
            Environment.FailFast(msg);
        }

        public void Dispose() => _timer.Dispose();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Random_bytes_run_as_code_end_in_a_guest_outcome_within_the_bound(bool user)
    {
        int cases = 5_000 * Scale;
        var rng = new Random(Seed + (user ? 1 : 0));
        var outcomes = new Dictionary<StopReason, int>();
        var code = new byte[4096];
        using var dog = new Watchdog(user ? "code-cpl3" : "code-cpl0");
        for (int k = 0; k < cases; k++)
        {
            rng.NextBytes(code);
            dog.Case(k, () => (byte[])code.Clone());
            var m = RawMachine.Create(code, user, Bound, new Random(rng.Next()));
            StopReason r;
            try { r = m.Run(); }
            catch (Exception e)
            {
                var path = SaveReproducer(user ? "code-cpl3" : "code-cpl0", Seed, k, code);
                throw new Xunit.Sdk.XunitException($"host exception on case {k} (reproducer {path}): {e}");
            }
            Assert.True(m.Cpu.Retired <= Bound, $"case {k} ran {m.Cpu.Retired} instructions past the bound");
            Assert.NotEqual(StopReason.None, r);
            outcomes[r] = outcomes.GetValueOrDefault(r) + 1;
        }
        foreach (var (r, n) in outcomes.OrderBy(x => x.Key)) output.WriteLine($"{r}: {n}");
        // Most random programs fault quickly into the IDT stubs, which exit through port 0xF4.
        Assert.True(outcomes.GetValueOrDefault(StopReason.DebugExit) > cases / 2, "most random programs should end in a delivered exception");
    }

    [Fact]
    public void Random_and_damaged_multiboot_images_load_or_fail_with_an_image_error()
    {
        int cases = 1_000 * Scale;
        var rng = new Random(Seed + 7);
        var good = TestKernel.Build(a => TestKernel.Exit(a, 0));
        int loaded = 0, rejected = 0;
        using var dog = new Watchdog("image");
        for (int k = 0; k < cases; k++)
        {
            byte[] img = Mutate(good, rng, k);
            dog.Case(k, () => img);
            var m = new Machine(new MachineOptions { RamBytes = 8UL << 20, MaxInstructions = 20_000, Output = Stream.Null });
            try
            {
                m.LoadKernel(img, "fuzz.elf", Array.Empty<BootModule>());
                loaded++;
                m.Run();
                Assert.True(m.Cpu.Retired <= 20_000);
            }
            catch (ImageException e)
            {
                rejected++;
                Assert.False(string.IsNullOrWhiteSpace(e.Message));
                Assert.DoesNotContain("\n", e.Message);
            }
            catch (Exception e)
            {
                var path = SaveReproducer("image", Seed, k, img);
                throw new Xunit.Sdk.XunitException($"host exception on image case {k} (reproducer {path}): {e}");
            }
        }
        output.WriteLine($"loaded {loaded}, rejected {rejected}");
        Assert.True(loaded > 0 && rejected > 0);
    }

    [Fact]
    public void Random_page_tables_control_registers_and_descriptor_tables_end_in_a_guest_outcome()
    {
        int cases = 2_000 * Scale;
        var rng = new Random(Seed + 13);
        // A program that touches memory at random addresses, loads segments, and traps: exercises the walker and delivery.
        byte[] prog =
        [
            0x48, 0x8B, 0x03,             // mov rax, [rbx]
            0x48, 0x89, 0x01,             // mov [rcx], rax
            0x48, 0x8B, 0x42, 0x08,       // mov rax, [rdx+8]
            0x8E, 0xD8,                   // mov ds, eax
            0xFF, 0xE6,                   // jmp rsi
        ];
        using var dog = new Watchdog("tables");
        for (int k = 0; k < cases; k++)
        {
            var m = RawMachine.Create(prog, rng.Next(2) == 0, Bound, new Random(rng.Next()));
            var mem = m.Memory;
            // random entries in the paging structures and descriptor tables
            ulong[] tables = [RawMachine.Pml4, RawMachine.Pdpt, RawMachine.Pd, RawMachine.Gdt, RawMachine.Idt, RawMachine.Tss];
            var log = new StringBuilder($"seed {Seed} case {k}: RawMachine.Create(prog, ...) then\n");
            int writes = rng.Next(1, 12);
            for (int w = 0; w < writes; w++)
            {
                ulong t = tables[rng.Next(tables.Length)];
                ulong at = t + (ulong)rng.Next(0, 64) * 8;
                // a random entry, or a present leaf/table entry whose frame lies at the end of RAM, in an MMIO hole or above
                ulong v = rng.Next(3) == 0 ? (HotPhysical(rng, mem.RamSize) & Emu64.Mmu.Mmu.PhysAddrMask) | (uint)rng.Next(0, 0x200) | 1UL
                                           : (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 40);
                mem.Write(at, 8, v);
                log.AppendLine($"mem[{at:x}] = {v:x}");
            }
            var c = m.Cpu;
            if (rng.Next(3) == 0) c.CR4 ^= 1UL << rng.Next(0, 23) & Emu64.Cpu.Cr4.Supported & ~Emu64.Cpu.Cr4.Pae;
            if (rng.Next(4) == 0) c.EFER ^= Emu64.Cpu.Efer.Nxe;
            if (rng.Next(4) == 0) c.Idtr.Limit = (ushort)rng.Next(0, 0x1000);
            if (rng.Next(4) == 0) c.Gdtr.Limit = (ushort)rng.Next(0, 0x40);
            if (rng.Next(8) == 0) c.CR3 = HotPhysical(rng, mem.RamSize) & Emu64.Mmu.Mmu.PhysAddrMask;   // a root at the end of RAM or beyond
            log.AppendLine($"cr3={c.CR3:x} cr4={c.CR4:x} efer={c.EFER:x} idtr.limit={c.Idtr.Limit:x} gdtr.limit={c.Gdtr.Limit:x}");
            dog.Case(k, () => Encoding.UTF8.GetBytes(log.ToString()));
            try { m.Run(); }
            catch (Exception e)
            {
                var path = SaveReproducer("tables", Seed, k, log.ToString());
                throw new Xunit.Sdk.XunitException($"host exception on table case {k} (seed {Seed}, reproducer {path}): {e}");
            }
            Assert.NotEqual(StopReason.None, m.StopReason);
            Assert.True(c.Retired <= Bound);
        }
    }

    /// <summary>
    /// The guest itself writes random values to CR0, CR3, CR4, CR8 and EFER (roots at the end of RAM, in MMIO
    /// holes or above MAXPHYADDR, PCIDs with and without NOFLUSH, every CR4 bit), then touches memory: each
    /// write is either refused with #GP or takes effect, and the run ends in a guest outcome within the bound.
    /// </summary>
    [Fact]
    public void Random_control_register_and_EFER_writes_by_the_guest_end_in_a_guest_outcome()
    {
        int cases = 1_000 * Scale;
        var rng = new Random(Seed + 17);
        var outcomes = new Dictionary<StopReason, int>();
        using var dog = new Watchdog("cregs");
        for (int k = 0; k < cases; k++)
        {
            var a = new Assembler(64);
            var log = new StringBuilder();
            int n = rng.Next(1, 6);
            for (int w = 0; w < n; w++)
            {
                int which = rng.Next(5);
                ulong v = which switch
                {
                    0 => (Emu64.Cpu.Cr0.Pe | Emu64.Cpu.Cr0.Pg | Emu64.Cpu.Cr0.Et | Emu64.Cpu.Cr0.Ne) ^ (rng.Next(2) == 0 ? 1UL << rng.Next(0, 32) : (ulong)rng.NextInt64()),
                    1 => rng.Next(3) switch
                    {
                        0 => RawMachine.Pml4 | (ulong)rng.Next(0, 0x1000) | (rng.Next(2) == 0 ? Emu64.Cpu.Cr3.NoFlush : 0),
                        1 => HotPhysical(rng, 4UL << 20) & ~0xFFFUL,
                        _ => (ulong)rng.NextInt64(),
                    },
                    2 => Emu64.Cpu.Cr4.Pae | ((ulong)rng.NextInt64() & (rng.Next(2) == 0 ? Emu64.Cpu.Cr4.Supported : ulong.MaxValue)),
                    3 => (ulong)rng.Next(0, 32),
                    _ => (Emu64.Cpu.Efer.Lme | Emu64.Cpu.Efer.Lma) ^ (1UL << rng.Next(0, 16)),
                };
                a.mov(rax, v);
                switch (which)
                {
                    case 0: a.mov(cr0, rax); break;
                    case 1: a.mov(cr3, rax); break;
                    case 2: a.mov(cr4, rax); break;
                    case 3: a.mov(cr8, rax); break;
                    default: a.mov(ecx, 0xC0000080u); a.mov(rdx, rax); a.shr(rdx, 32); a.wrmsr(); break;
                }
                log.AppendLine($"{(which switch { 0 => "cr0", 1 => "cr3", 2 => "cr4", 3 => "cr8", _ => "efer" })} <- {v:x}");
                if (rng.Next(2) == 0) { a.mov(rax, __qword_ptr[rbx]); a.mov(__qword_ptr[rcx], rax); }
            }
            a.int3();
            var ms = new MemoryStream();
            a.Assemble(new StreamCodeWriter(ms), RawMachine.Code);
            var code = ms.ToArray();
            var m = RawMachine.Create(code, user: false, Bound, new Random(rng.Next()));
            dog.Case(k, () => Encoding.UTF8.GetBytes(log + "code: " + Convert.ToHexString(code)));
            try { m.Run(); }
            catch (Exception e)
            {
                var path = SaveReproducer("cregs", Seed, k, log + "code: " + Convert.ToHexString(code));
                throw new Xunit.Sdk.XunitException($"host exception on control-register case {k} (reproducer {path}): {e}");
            }
            Assert.NotEqual(StopReason.None, m.StopReason);
            Assert.True(m.Cpu.Retired <= Bound);
            outcomes[m.StopReason] = outcomes.GetValueOrDefault(m.StopReason) + 1;
        }
        foreach (var (r, c) in outcomes.OrderBy(x => x.Key)) output.WriteLine($"{r}: {c}");
    }

    /// <summary>
    /// Physical accesses at the end of RAM, across it, in the I/O APIC and local APIC windows, at 4 GiB, at
    /// MAXPHYADDR and at the top of the 64-bit space (wrap-around): reads outside RAM and devices are open bus
    /// (all ones), writes there change nothing, and no access reaches host memory beyond the RAM array.
    /// </summary>
    [Fact]
    public void Physical_accesses_near_and_above_the_end_of_RAM_and_in_MMIO_holes_stay_inside_RAM_and_devices()
    {
        int cases = 20_000 * Scale;
        var rng = new Random(Seed + 19);
        var m = new Machine(new MachineOptions { RamBytes = 4UL << 20, Output = Stream.Null });
        var mem = m.Memory;
        ulong ram = mem.RamSize;
        var pattern = new byte[ram];
        new Random(1).NextBytes(pattern);
        pattern.CopyTo(mem.RamSpan(0, (int)ram));
        int[] sizes = [1, 2, 4, 8];
        for (int k = 0; k < cases; k++)
        {
            ulong pa = rng.Next(4) switch
            {
                0 => ram - (ulong)rng.Next(1, 9),
                1 => ulong.MaxValue - (ulong)rng.Next(0, 9),
                _ => HotPhysical(rng, ram),
            };
            int size = sizes[rng.Next(sizes.Length)];
            bool mmio = pa >= 0xFEC00000 && pa < 0xFEC01000 || pa >= 0xFEE00000 && pa < 0xFEE01000;
            try
            {
                ulong v = mem.Read(pa, size);
                if (!mmio && pa >= ram) Assert.Equal(size == 8 ? ulong.MaxValue : (1UL << (8 * size)) - 1, v);
                if (!mmio && pa < ram && pa + (ulong)size > ram)   // straddles the end: RAM bytes, then ones
                    for (int i = 0; i < size; i++)
                        Assert.Equal(pa + (ulong)i < ram ? pattern[pa + (ulong)i] : (byte)0xFF, (byte)(v >> (8 * i)));
                if (pa >= ram && !mmio) mem.Write(pa, size, (ulong)rng.NextInt64());
                var buf = new byte[rng.Next(1, 64)];
                mem.ReadBytes(pa, buf);
                Assert.False(mem.WriteBytes(pa >= ram ? pa : ram - 1, new byte[2]));   // a copy that would leave RAM is refused whole
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException)
            {
                var path = SaveReproducer("physical", Seed, k, $"read/write size {size} at physical {pa:x} with {ram:x} bytes of RAM");
                throw new Xunit.Sdk.XunitException($"host exception on physical case {k} (reproducer {path}): {e}");
            }
        }
        Assert.True(mem.RamSpan(0, (int)ram).SequenceEqual(pattern), "no write outside RAM may change RAM");
    }

    /// <summary>ELF files with random program headers and section tables (symbol tables with zero, odd or huge entry sizes and offsets).</summary>
    [Fact]
    public void Random_ELF_program_and_section_headers_load_or_fail_with_an_image_error()
    {
        int cases = 1_000 * Scale;
        var rng = new Random(Seed + 23);
        int loaded = 0, rejected = 0;
        using var dog = new Watchdog("elf");
        for (int k = 0; k < cases; k++)
        {
            bool is64 = rng.Next(2) == 0;
            var segs = Enumerable.Range(0, rng.Next(0, 4)).Select(_ =>
                new Images.Seg(rng.Next(3) == 0 ? HotPhysical(rng, 8UL << 20) & 0xFFFFFFFF : 0x100000 + (ulong)rng.Next(0, 0x200) * 0x1000,
                               new byte[rng.Next(0, 3) * 0x100], (ulong)rng.Next(0, 0x3000))).ToArray();
            // Half carry a PVH entry note (at the first segment, or anywhere) so that some load: an ELF file
            // without a multiboot header or a PVH note is refused as a whole.
            byte[]? note = rng.Next(2) == 0 ? null
                : Images.PvhNote(segs.Length > 0 && rng.Next(4) != 0 ? segs[0].Addr + (ulong)rng.Next(0, 0x10) : (ulong)rng.NextInt64(), new[] { 4, 8, 8, 8, 2 }[rng.Next(5)]);
            var img = Images.ElfWithNote(0x100000 + (ulong)rng.Next(0, 0x1000), is64, note, segs);
            // a section table with a random symbol table and string table after the file's data
            int shOff = img.Length, shent = is64 ? 64 : 40;
            Array.Resize(ref img, img.Length + 3 * shent + 256);
            var span = img.AsSpan();
            void W(int at, ulong v, int width) { for (int b = 0; b < width; b++) if (at + b < img.Length) img[at + b] = (byte)(v >> (8 * b)); }
            W(is64 ? 40 : 32, (ulong)(rng.Next(5) == 0 ? rng.NextInt64() : shOff), is64 ? 8 : 4);
            W(is64 ? 58 : 46, (ulong)(rng.Next(5) == 0 ? rng.Next(0, 100) : shent), 2);
            W(is64 ? 60 : 48, (ulong)rng.Next(0, 4), 2);
            for (int sh = 1; sh < 3; sh++)
            {
                int at = shOff + sh * shent;
                W(at + 4, sh == 1 ? 2u : 3u, 4);                                                       // SHT_SYMTAB, SHT_STRTAB
                W(at + (is64 ? 24 : 16), (ulong)(rng.Next(4) == 0 ? rng.NextInt64() : rng.Next(0, img.Length)), is64 ? 8 : 4);   // offset
                W(at + (is64 ? 32 : 20), (ulong)(rng.Next(4) == 0 ? rng.NextInt64() : rng.Next(0, 512)), is64 ? 8 : 4);          // size
                W(at + (is64 ? 40 : 24), (ulong)rng.Next(0, 4), 4);                                    // link
                W(at + (is64 ? 56 : 36), (ulong)(new[] { 0, 1, 7, 16, 24, 0x7FFFFFFF }[rng.Next(6)]), is64 ? 8 : 4);   // entsize
            }
            for (int f = rng.Next(0, 4); f > 0; f--) img[rng.Next(0, img.Length)] = (byte)rng.Next(256);
            var snapshot = img;
            dog.Case(k, () => snapshot);
            var m = new Machine(new MachineOptions { RamBytes = 8UL << 20, MaxInstructions = 2_000, Output = Stream.Null });
            try
            {
                m.LoadKernel(img, "fuzz.elf", Array.Empty<BootModule>());
                loaded++;
                m.Run();
                Assert.True(m.Cpu.Retired <= 2_000);
            }
            catch (ImageException e)
            {
                rejected++;
                Assert.DoesNotContain("\n", e.Message);
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException)
            {
                var path = SaveReproducer("elf", Seed, k, img);
                throw new Xunit.Sdk.XunitException($"host exception on ELF case {k} (reproducer {path}): {e}");
            }
        }
        output.WriteLine($"loaded {loaded}, rejected {rejected}");
        Assert.True(loaded > 0 && rejected > 0);
    }

    /// <summary>
    /// Random, truncated, corrupted and binary gdb packets (steps included; continues left out, since a guest
    /// that runs to its bound exits and ends the session), scaled by EMU64_FUZZ_SCALE. The stub never throws, keeps serving, and still answers a valid "?".
    /// </summary>
    [Fact]
    public void Random_gdb_packets_never_crash_the_stub_which_still_answers_afterwards()
    {
        int cases = 1_000 * Scale;
        var rng = new Random(Seed + 29);
        var sent = new StringBuilder();
        static string Frame(string p) { int sum = 0; foreach (char c in p) sum = (sum + c) & 0xFF; return $"${p}#{sum:x2}"; }
        string[] heads = ["m", "M", "X", "p", "P", "g", "G", "Z0,", "z0,", "Z1,", "Z2,", "Z3,", "Z4,", "qXfer:features:read:target.xml:", "qRcmd,", "qSupported:", "H", "T", "vCont;", "vCont;s", "q", "Q", "?", "s", "S", "vMustReplyEmpty", "qC", "qAttached"];
        const string alphabet = "0123456789abcdefABCDEFxyz,:;=#$}*-+ \x7f";
        var s = new GdbSession();
        int sessions = 1;
        try
        {
            for (int i = 0; i < cases; i++)
            {
                // A continue hidden in the noise runs the bounded guest to its limit; a guest that has exited ends the
                // session, as gdb expects. That is an answer, not a failure: start a new machine and stub and go on.
                if (!s.Server.IsAlive && s.Error is null && s.Stub.EndedBy == "exited")
                {
                    s.Dispose();
                    s = new GdbSession();
                    sessions++;
                    sent.Append("--- new session ---\n");
                }
                var payload = new StringBuilder(heads[rng.Next(heads.Length)]);
                int len = rng.Next(0, rng.Next(2) == 0 ? 24 : 300);
                for (int k = 0; k < len; k++) payload.Append(alphabet[rng.Next(alphabet.Length)]);
                string p = payload.ToString();
                if (p.StartsWith("vCont;c") || p.StartsWith("vCont;C")) p = "vCont;s";
                // qRcmd payloads are hex-encoded monitor commands: send real ones too (walk, ptdump, tlb) with random arguments
                if (p.StartsWith("qRcmd,") && rng.Next(2) == 0)
                    p = "qRcmd," + Convert.ToHexString(Encoding.ASCII.GetBytes(new[] { "walk ", "ptdump ", "tlb", "pcid", "stats", "x/4x ", "xp " }[rng.Next(7)] + $"0x{HotPhysical(rng, 4UL << 20):x}")).ToLowerInvariant();
                byte[] wire = rng.Next(5) switch
                {
                    0 => Encoding.Latin1.GetBytes("$" + p),                                   // no checksum
                    1 => Encoding.Latin1.GetBytes(Frame(p)[..^1] + "z"),                     // bad checksum
                    2 => Enumerable.Range(0, rng.Next(1, 64)).Select(_ => (byte)rng.Next(256)).Select(b => b == 3 ? (byte)4 : b).ToArray(),
                    _ => Encoding.Latin1.GetBytes(Frame(p)),
                };
                sent.Append(Encoding.Latin1.GetString(wire)).Append('\n');
                try { s.Stream.Write(wire); }
                catch (IOException) when (!s.Server.IsAlive) { }   // the session ended under us: the next round restarts it
                if (i % 50 == 0) Thread.Sleep(1);
            }
            Thread.Sleep(300);
            if (!s.Server.IsAlive && s.Error is null && s.Stub.EndedBy == "exited") { s.Dispose(); s = new GdbSession(); sessions++; }
            s.Clear();
            s.Stream.Write(Encoding.ASCII.GetBytes("+" + Frame("?")));
            var until = DateTime.UtcNow.AddSeconds(30);
            string reply = "";
            while (DateTime.UtcNow < until)
            {
                reply = s.Received;
                if (System.Text.RegularExpressions.Regex.IsMatch(reply, @"\$[TSW][0-9a-f]{2}[^#]*#")) break;
                Thread.Sleep(5);
            }
            Assert.Matches(@"\$[TSW][0-9a-f]{2}", reply);
            Assert.Null(s.Error);
            Assert.True(s.Server.IsAlive, $"the stub must keep serving (session ended by {s.Stub.EndedBy}; machine {s.M.StopReason} {s.M.StopMessage})");
            output.WriteLine($"{cases} packets, {sessions} session(s)");
        }
        catch (Exception e)
        {
            var path = SaveReproducer("gdb", Seed, cases, sent.ToString());
            throw new Xunit.Sdk.XunitException($"gdb packet fuzz failed (reproducer {path}, server error: {s.Error}): {e}");
        }
        finally { s.Dispose(); }
    }

    /// <summary>A bounded looping guest, its gdb stub serving on a thread, and a connected client draining replies.</summary>
    private sealed class GdbSession : IDisposable
    {
        public readonly Machine M = RawMachine.Create([0x48, 0xFF, 0xC0, 0xEB, 0xFB], user: false, maxInstructions: 3_000_000);   // inc rax; jmp $-3
        public readonly GdbStub Stub;
        public readonly Thread Server;
        public Exception? Error;
        private readonly TcpClient _tcp = new();
        public readonly NetworkStream Stream;
        private readonly StringBuilder _rx = new();

        public GdbSession()
        {
            Stub = new GdbStub(new Emu64.Debugging.Debugger(M, SymbolTable.Empty), "127.0.0.1", 0);
            Server = new Thread(() => { try { Stub.Serve(); } catch (Exception e) { Error = e; } }) { IsBackground = true };
            Server.Start();
            _tcp.Connect("127.0.0.1", Stub.Port);
            Stream = _tcp.GetStream();
            new Thread(() =>
            {
                var buf = new byte[65536];
                try { int n; while ((n = Stream.Read(buf)) > 0) lock (_rx) _rx.Append(Encoding.Latin1.GetString(buf, 0, n)); }
                catch (IOException) { } catch (ObjectDisposedException) { }
            }) { IsBackground = true }.Start();
        }

        public string Received { get { lock (_rx) return _rx.ToString(); } }
        public void Clear() { lock (_rx) _rx.Clear(); }

        public void Dispose()
        {
            _tcp.Dispose();
            Server.Join(5_000);
            Stub.Dispose();
        }
    }

    [Fact]
    public void A_page_fault_handler_on_an_ist_stack_that_itself_faults_stops_as_a_fault_loop()
    {
        // mov rax, [0x500000] (unmapped: only 4 MiB are mapped); the #PF gate uses IST1 and points at unmapped code.
        byte[] prog = [0x48, 0x8B, 0x04, 0x25, 0x00, 0x00, 0x50, 0x00];
        var m = RawMachine.Create(prog, user: false, maxInstructions: 1_000_000);
        ulong gate = RawMachine.Idt + 14 * 16;
        ulong handler = 0x600000;
        m.Memory.Write(gate, 8, (handler & 0xFFFF) | ((ulong)RawMachine.KCode << 16) | (1UL << 32) | (0x8EUL << 40) | ((handler >> 16 & 0xFFFF) << 48));
        var r = m.Run();
        Assert.Equal(StopReason.FaultLoop, r);
        Assert.Equal(0UL, m.Cpu.Retired);
        Assert.Contains("#PF", m.StopMessage);
        Assert.Equal(0x600000UL, m.Cpu.CR2);
    }

    /// <summary>Damage a good image: flip bytes in the header area, truncate, grow, or replace with noise.</summary>
    private static byte[] Mutate(byte[] good, Random rng, int k)
    {
        switch (k % 4)
        {
            case 0:
                {
                    var b = (byte[])good.Clone();
                    int flips = rng.Next(1, 8);
                    for (int f = 0; f < flips; f++) b[rng.Next(0, 64)] = (byte)rng.Next(256);
                    FixChecksum(b, rng.Next(2) == 0);
                    return b;
                }
            case 1: return good.AsSpan(0, rng.Next(0, Math.Min(good.Length, 4096))).ToArray();
            case 2:
                {
                    var b = new byte[rng.Next(0, 16384)];
                    rng.NextBytes(b);
                    if (b.Length >= 32 && rng.Next(2) == 0)
                    {
                        // a valid magic and checksum with random address fields
                        BitConverter.GetBytes(0x1BADB002u).CopyTo(b, 0);
                        FixChecksum(b, true);
                    }
                    if (b.Length >= 64 && rng.Next(3) == 0) { b[0] = 0x7F; b[1] = (byte)'E'; b[2] = (byte)'L'; b[3] = (byte)'F'; b[4] = (byte)rng.Next(1, 3); b[5] = 1; }
                    return b;
                }
            default:
                {
                    var b = (byte[])good.Clone();
                    // random address fields with a valid header
                    for (int o = 12; o < 32; o += 4) BitConverter.GetBytes((uint)rng.NextInt64(0, 0x10000000)).CopyTo(b, o);
                    return b;
                }
        }
    }

    private static void FixChecksum(byte[] b, bool fix)
    {
        if (!fix || b.Length < 12) return;
        uint magic = BitConverter.ToUInt32(b, 0), flags = BitConverter.ToUInt32(b, 4);
        BitConverter.GetBytes(unchecked(0u - magic - flags)).CopyTo(b, 8);
    }
}
