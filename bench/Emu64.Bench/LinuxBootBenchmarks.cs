using System.Text;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using Emu64.Loader;

namespace Emu64.Bench;

/// <summary>
/// Debian's kernel booted in-process to the test initramfs's <c>EMU64-INIT: reached /init</c> (issue #19's "Linux boot to /init
/// within 2x QEMU"; the side-by-side comparison with QEMU is <c>bench/linux-boot.sh</c>): a fresh 512 MiB machine per iteration,
/// <c>console=ttyS0</c>, run in slices of <see cref="Slice"/> instructions until the marker is on the console (slicing changes
/// nothing the guest sees: the run stops and resumes at exact instruction counts). Each boot is a cold start of the guest —
/// blocks decoded and regions compiled on the way — which is what the target measures. Inputs: tests/linux/out from
/// tests/linux/fetch-linux.sh (searched for above the benchmark's directory, or EMU64_LINUX_OUT).
/// </summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 1, iterationCount: 5)]
public class LinuxBootBenchmarks
{
    public const ulong Slice = 10_000_000;
    private byte[] _kernel = null!, _initrd = null!;

    [GlobalSetup]
    public void Setup()
    {
        string dir = InputDir();
        _kernel = File.ReadAllBytes(Path.Combine(dir, "vmlinuz"));
        _initrd = File.ReadAllBytes(Path.Combine(dir, "initrd.gz"));
    }

    /// <summary>EMU64_LINUX_OUT, or tests/linux/out above the running benchmark's directory.</summary>
    public static string InputDir()
    {
        if (Environment.GetEnvironmentVariable("EMU64_LINUX_OUT") is { Length: > 0 } env) return env;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
        {
            var p = Path.Combine(d.FullName, "tests", "linux", "out");
            if (File.Exists(Path.Combine(p, "vmlinuz")) && File.Exists(Path.Combine(p, "initrd.gz"))) return p;
        }
        throw new FileNotFoundException("tests/linux/out/vmlinuz not found: run tests/linux/fetch-linux.sh (or set EMU64_LINUX_OUT)");
    }

    /// <summary>Boots to /init; returns the instructions it took.</summary>
    [Benchmark]
    public ulong BootToInit()
    {
        var console = new MemoryStream();
        using var m = new Machine(new MachineOptions { RamBytes = 512UL << 20, Append = "console=ttyS0", Output = console });
        m.LoadKernel(_kernel, "vmlinuz", [new BootModule("initrd.gz", _initrd)]);
        const string marker = "EMU64-INIT: reached /init";
        int searched = 0;
        while (m.StopReason == StopReason.None)
        {
            m.Run(Slice);
            var text = Encoding.Latin1.GetString(console.GetBuffer(), 0, (int)console.Length);
            if (text.IndexOf(marker, Math.Max(0, searched - marker.Length), StringComparison.Ordinal) >= 0) return m.Cpu.Retired;
            searched = text.Length;
        }
        throw new InvalidOperationException($"the boot stopped before /init: {m.StopReason} {m.StopMessage}");
    }
}
