using BenchmarkDotNet.Attributes;

namespace Emu64.Bench;

/// <summary>
/// Guest instructions per host second in kvm-unit-tests' x86/sieve (issue #19's "sieve no slower than QEMU"; the side-by-side
/// comparison with QEMU is <c>bench/sieve.sh</c>): byte stores over large arrays with paging off, then mapped, then a 100 M-entry
/// virtual array — a run of TLB misses, page walks and fills in the TLB model. Each invoke starts a fresh machine (256 MiB, as
/// the comparison runs it) and runs the first <see cref="InstructionsPerInvoke"/> instructions, so the time is per guest
/// instruction of that prefix (MIPS column as in <see cref="LoopBenchmarks"/>). The image is not in the repository: build
/// kvm-unit-tests (docs/ARCHITECTURE.md, "An external referee") and set KVM_UNIT_TESTS to its directory, or leave it beside
/// the repository as ../kvm-unit-tests.
/// </summary>
[Config(typeof(MipsConfig))]
public class SieveBenchmarks
{
    public const int InstructionsPerInvoke = 300_000_000;
    private byte[] _image = null!;
    private Machine _m = null!;

    [GlobalSetup]
    public void Setup() => _image = File.ReadAllBytes(ImagePath());

    /// <summary>x86/sieve.flat of the kvm-unit-tests build KVM_UNIT_TESTS names, or of ../kvm-unit-tests above the benchmark.</summary>
    public static string ImagePath()
    {
        if (Environment.GetEnvironmentVariable("KVM_UNIT_TESTS") is { Length: > 0 } dir)
        {
            var p = Path.Combine(dir, "x86", "sieve.flat");
            return File.Exists(p) ? p : throw new FileNotFoundException($"KVM_UNIT_TESTS={dir} has no x86/sieve.flat (build kvm-unit-tests)");
        }
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
        {
            var p = Path.Combine(d.FullName, "kvm-unit-tests", "x86", "sieve.flat");
            if (File.Exists(p)) return p;
        }
        throw new FileNotFoundException("x86/sieve.flat not found: build kvm-unit-tests (docs/ARCHITECTURE.md) and set KVM_UNIT_TESTS to its directory");
    }

    [IterationSetup]
    public void NewMachine()
    {
        _m = new Machine(new MachineOptions { RamBytes = 256UL << 20, Output = Stream.Null });
        _m.LoadKernel(_image, "sieve.flat", Array.Empty<Loader.BootModule>());
    }

    [Benchmark(OperationsPerInvoke = InstructionsPerInvoke)]
    public ulong SievePrefix()
    {
        var reason = _m.Run(InstructionsPerInvoke);
        if (reason != StopReason.None) throw new InvalidOperationException($"sieve stopped before {InstructionsPerInvoke} instructions: {reason} {_m.StopMessage}");
        return _m.Cpu.Retired;
    }
}
