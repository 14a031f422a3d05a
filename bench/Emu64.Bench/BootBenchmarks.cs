using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;

namespace Emu64.Bench;

/// <summary>
/// Boot to exit of the bundled toy kernel with <c>init=hello</c> (what <c>emu64 boot --append init=hello</c> runs:
/// multiboot load, 32-bit start-up, long mode, direct map, KPTI, one user process, about 63,000 guest
/// instructions, isa-debug-exit), in-process:
/// <list type="bullet">
/// <item><b>cold</b>: the first boot in a fresh process (10 processes, one boot each) — everything is JIT-compiled
/// on the way (Iced's decoder tables and OpCodeInfo, the handler table, the loader, the devices, each
/// instruction handler on first use). This is the in-process part of the CLI's startup time, without ReadyToRun
/// (this project references Emu64.Core as IL).</item>
/// <item><b>warm</b>: later boots in the same process, everything compiled: what the machine itself costs
/// (creating the 128 MiB RAM, the TLB arrays and devices, loading the image, running the guest).</item>
/// </list>
/// <see cref="BootProcessBenchmarks"/> times the whole program, process start to exit.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(BootConfig))]
public class BootBenchmarks
{
    private byte[] _kernel = null!;

    [GlobalSetup]
    public void Setup() => _kernel = File.ReadAllBytes(ToyKernelImage.Path);

    [Benchmark]
    public int BootHello() => BootToExit(_kernel, "init=hello");

    /// <summary>Boots <paramref name="kernel"/> with <paramref name="append"/> to its isa-debug-exit; returns the exit status.</summary>
    public static int BootToExit(byte[] kernel, string append)
    {
        var m = new Machine(new MachineOptions { Output = Stream.Null, Append = append, MaxInstructions = 100_000_000 });
        m.LoadKernel(kernel, "toykernel.elf", Array.Empty<Loader.BootModule>());
        var reason = m.Run();
        if (reason != StopReason.DebugExit)
            throw new InvalidOperationException($"the toy kernel did not exit through isa-debug-exit: {reason} {m.StopMessage}");
        return m.ExitCode;
    }
}

public sealed class BootConfig : ManualConfig
{
    public BootConfig()
    {
        AddJob(Job.Default.WithStrategy(RunStrategy.ColdStart).WithLaunchCount(10).WithWarmupCount(0)
            .WithIterationCount(1).WithInvocationCount(1).WithUnrollFactor(1).WithId("cold"));
        AddJob(Job.Default.WithId("warm"));
        WithBuildTimeout(TimeSpan.FromMinutes(10));
    }
}

/// <summary>
/// <c>emu64 boot --append init=hello</c> as a process, start to exit: the startup target (under 1 s on a
/// two-core machine). Runs the Release build of the program (src/Emu64.Cli/bin/Release/net10.0/emu64,
/// built with <c>dotnet build -c Release src/Emu64.Cli</c>, which is ReadyToRun-compiled; see
/// docs/PERFORMANCE.md), or the program named by the EMU64 environment variable.
/// </summary>
[Config(typeof(BootProcessConfig))]
public class BootProcessBenchmarks
{
    private string _program = null!;

    [GlobalSetup]
    public void Setup()
    {
        _program = Environment.GetEnvironmentVariable("EMU64") is { Length: > 0 } p ? p
            : System.IO.Path.Combine(ToyKernelImage.RepoRoot, "src", "Emu64.Cli", "bin", "Release", "net10.0", "emu64");
        if (!File.Exists(_program))
            throw new FileNotFoundException($"{_program} not found: build it first with `dotnet build -c Release src/Emu64.Cli` (or set EMU64)");
    }

    [Benchmark]
    public int EmuBootProcess()
    {
        var psi = new ProcessStartInfo(_program) { RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in new[] { "boot", "--append", "init=hello" }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(60_000)) { p.Kill(true); throw new TimeoutException("emu64 boot did not exit within 60 s"); }
        if (p.ExitCode != 1) throw new InvalidOperationException($"emu64 boot exited with {p.ExitCode}, expected 1 (the toy kernel's power-down)");
        return p.ExitCode;
    }
}

public sealed class BootProcessConfig : ManualConfig
{
    public BootProcessConfig()
    {
        AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(2).WithIterationCount(15).WithInvocationCount(1).WithUnrollFactor(1).WithId("process"));
        WithBuildTimeout(TimeSpan.FromMinutes(10));
    }
}

/// <summary>Finds firmware/toykernel.elf above the benchmark's directory (BenchmarkDotNet runs from a generated folder under bin/).</summary>
public static class ToyKernelImage
{
    public static string RepoRoot
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
                if (File.Exists(System.IO.Path.Combine(d.FullName, "firmware", "toykernel.elf"))) return d.FullName;
            throw new FileNotFoundException("firmware/toykernel.elf not found above " + AppContext.BaseDirectory);
        }
    }

    public static string Path => System.IO.Path.Combine(RepoRoot, "firmware", "toykernel.elf");
}
