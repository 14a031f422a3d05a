using Emu64.Loader;
using Emu64.Tests.Support;
using Xunit.Abstractions;

namespace Emu64.Tests.Linux;

/// <summary>
/// Two runs of <c>emu64 run vmlinuz --initrd initrd.gz --append console=ttyS0 -m 512 --seed 7 --stats</c>, each stopped
/// by <c>--max-instructions</c> at <see cref="Instructions"/> (about two thirds of the boot to /init: past the console's
/// start, the CPU and memory setup, ACPI, the device probes and the initramfs's unpacking, hundreds of console lines
/// with their printk timestamps), and two short in-process boots with seeds 7 and 8, stopped when the first console
/// line is written, to see where KASLR put the kernel.
/// </summary>
public sealed class DebianSeedRuns
{
    public const ulong Instructions = 1_000_000_000;
    public const ulong Seed = 7, OtherSeed = 8;
    public CliRun.Result? First { get; }
    public CliRun.Result? Second { get; }
    public (ulong Virtual, ulong Physical) Kaslr { get; }
    public (ulong Virtual, ulong Physical) OtherKaslr { get; }

    public DebianSeedRuns()
    {
        if (DebianKernel.SkipReason() != null) return;
        string[] args = ["run", DebianKernel.Vmlinuz, "--initrd", DebianKernel.Initrd, "--append", DebianBoot.Append, "-m", "512",
                         "--seed", $"{Seed}", "--max-instructions", $"{Instructions}", "--stats"];
        var a = Task.Run(() => CliRun.Execute(args));
        var b = Task.Run(() => CliRun.Execute(args));
        Kaslr = KernelPlacement(Seed);
        OtherKaslr = KernelPlacement(OtherSeed);
        First = a.Result;
        Second = b.Result;
    }

    /// <summary>
    /// Where the running kernel's text is: the first 2 MiB page mapped in the kernel-image area [0xFFFFFFFF80000000,
    /// 0xFFFFFFFFC0000000) (Linux's __startup_64 clears the entries below _text, cleanup_highmap those past _end),
    /// as its offset from the link address 0xFFFFFFFF81000000 (CONFIG_PHYSICAL_START 16 MiB), and its physical address.
    /// </summary>
    public static (ulong Virtual, ulong Physical) KernelPlacement(ulong seed)
    {
        var console = new GuestConsole();
        var m = new Machine(new MachineOptions { RamBytes = 512UL << 20, Append = DebianBoot.Append, Seed = seed, MaxInstructions = 1_500_000_000, Output = console });
        console.Machine = m;
        (ulong, ulong) found = (ulong.MaxValue, ulong.MaxValue);
        console.StopWhen = _ => true;
        console.AtStop = mm =>
        {
            for (ulong va = 0xFFFF_FFFF_8000_0000; va < 0xFFFF_FFFF_C000_0000; va += 2UL << 20)
                if (mm.Cpu.Mmu.TraceWalk(va).Physical is ulong pa) { found = (va - 0xFFFF_FFFF_8100_0000, pa); break; }
        };
        m.LoadKernel(File.ReadAllBytes(DebianKernel.Vmlinuz), DebianKernel.Vmlinuz, [new BootModule(DebianKernel.Initrd, File.ReadAllBytes(DebianKernel.Initrd))]);
        m.Run();
        return found;
    }
}

/// <summary>Item 5 of issue #16: the same inputs and --seed give the same run; another seed moves the kernel (KASLR).</summary>
[Trait("Category", "LinuxBoot")]
public class DebianDeterminismTests(DebianSeedRuns runs, ITestOutputHelper output) : IClassFixture<DebianSeedRuns>
{
    private static readonly string[] WallClock = ["seconds", "mips"];

    [DebianKernelFact]
    public void Two_runs_with_the_same_seed_write_byte_identical_serial_output_timestamps_included()
    {
        var a = runs.First!; var b = runs.Second!;
        var lines = a.Out.Split('\n');
        output.WriteLine($"{a.Stdout.Length} bytes, {lines.Length} lines; the last: {lines[^2]}");
        Assert.Equal(a.Stdout, b.Stdout);
        // A substantial part of the boot, printk timestamps that move: past the initramfs's unpacking.
        Assert.Contains("Trying to unpack rootfs image as initramfs...", a.Out);
        Assert.True(lines.Length > 150);
        Assert.Matches(@"\[    0\.[0-9]*[1-9][0-9]*\] ", a.Out);
    }

    [DebianKernelFact]
    public void Two_runs_with_the_same_seed_end_with_identical_stats()
    {
        var a = runs.First!; var b = runs.Second!;
        // --stats: key: value lines; all but the wall-clock ones (seconds, mips) must be equal.
        static List<string> Counters(CliRun.Result r) => r.ErrLines.Where(l => l.Contains(": ") && !WallClock.Contains(l.Split(": ")[0])).ToList();
        var ca = Counters(a);
        output.WriteLine(string.Join("\n", ca.Take(12)));
        Assert.Contains($"instructions: {DebianSeedRuns.Instructions}", ca);
        Assert.Contains(ca, l => l.StartsWith("cr3_writes: ") && l != "cr3_writes: 0");
        Assert.True(ca.Count > 50);
        Assert.Equal(ca, Counters(b));
        Assert.Equal(6, a.Status);              // stopped by --max-instructions (exit status 6), both
        Assert.Equal(a.Status, b.Status);
    }

    [DebianKernelFact]
    public void A_different_seed_gives_a_different_KASLR_offset()
    {
        var (v, p) = runs.Kaslr; var (v2, p2) = runs.OtherKaslr;
        output.WriteLine($"seed {DebianSeedRuns.Seed}: kernel text at virtual offset 0x{v:X}, physical 0x{p:X}; seed {DebianSeedRuns.OtherSeed}: 0x{v2:X}, 0x{p2:X}");
        Assert.NotEqual(ulong.MaxValue, p);
        Assert.NotEqual(ulong.MaxValue, p2);
        // KASLR moves the kernel in 2 MiB steps (CONFIG_PHYSICAL_ALIGN), virtually within the 1 GiB image area and physically in RAM.
        Assert.Equal(0UL, v % (2UL << 20));
        Assert.Equal(0UL, p % (2UL << 20));
        Assert.True(p < 512UL << 20 && p2 < 512UL << 20);
        Assert.NotEqual((v, p), (v2, p2));
        Assert.NotEqual(v, v2);
    }
}
