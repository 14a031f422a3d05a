using Emu64.Loader;
using Emu64.Tests.Support;
using Xunit.Abstractions;

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

    private static string SaveReproducer(string kind, int seed, int index, byte[] bytes)
    {
        var dir = Path.Combine(Path.GetTempPath(), "emu64-fuzz");
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, $"{kind}-seed{seed}-case{index}.bin");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private const ulong Bound = 5_000;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Random_bytes_run_as_code_end_in_a_guest_outcome_within_the_bound(bool user)
    {
        int cases = 5_000 * Scale;
        var rng = new Random(Seed + (user ? 1 : 0));
        var outcomes = new Dictionary<StopReason, int>();
        var code = new byte[4096];
        for (int k = 0; k < cases; k++)
        {
            rng.NextBytes(code);
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
        for (int k = 0; k < cases; k++)
        {
            byte[] img = Mutate(good, rng, k);
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
        for (int k = 0; k < cases; k++)
        {
            var m = RawMachine.Create(prog, rng.Next(2) == 0, Bound, new Random(rng.Next()));
            var mem = m.Memory;
            // random entries in the paging structures and descriptor tables
            ulong[] tables = [RawMachine.Pml4, RawMachine.Pdpt, RawMachine.Pd, RawMachine.Gdt, RawMachine.Idt, RawMachine.Tss];
            int writes = rng.Next(1, 12);
            for (int w = 0; w < writes; w++)
            {
                ulong t = tables[rng.Next(tables.Length)];
                mem.Write(t + (ulong)rng.Next(0, 64) * 8, 8, (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 40));
            }
            var c = m.Cpu;
            if (rng.Next(3) == 0) c.CR4 ^= 1UL << rng.Next(0, 23) & Emu64.Cpu.Cr4.Supported & ~Emu64.Cpu.Cr4.Pae;
            if (rng.Next(4) == 0) c.EFER ^= Emu64.Cpu.Efer.Nxe;
            if (rng.Next(4) == 0) c.Idtr.Limit = (ushort)rng.Next(0, 0x1000);
            if (rng.Next(4) == 0) c.Gdtr.Limit = (ushort)rng.Next(0, 0x40);
            try { m.Run(); }
            catch (Exception e)
            {
                var path = SaveReproducer("tables", Seed, k, BitConverter.GetBytes(k));
                throw new Xunit.Sdk.XunitException($"host exception on table case {k} (seed {Seed}, reproducer {path}): {e}");
            }
            Assert.NotEqual(StopReason.None, m.StopReason);
            Assert.True(c.Retired <= Bound);
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
