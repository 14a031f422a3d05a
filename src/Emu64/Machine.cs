using Emu64.Cpu;
using Emu64.Devices;
using Emu64.Memory;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64;

/// <summary>Why a run ended.</summary>
public enum StopReason
{
    None,
    /// <summary>The guest wrote to isa-debug-exit (port 0xF4).</summary>
    DebugExit,
    /// <summary>The guest asked for power-off (Bochs shutdown port, or HLT with interrupts disabled).</summary>
    Shutdown,
    /// <summary>The guest halted with interrupts enabled and nothing left that could wake it.</summary>
    HaltedForever,
    TripleFault,
    /// <summary>Exceptions kept being delivered without a single instruction retiring (a livelock on hardware).</summary>
    FaultLoop,
    /// <summary>The guest asked for a reset (keyboard controller 0xFE, port 0xCF9/0x92).</summary>
    Reset,
    InstructionLimit,
    /// <summary>The guest used a feature the emulator does not implement (a clear message, not a crash).</summary>
    Unsupported,
    /// <summary>A debugger or caller asked the run to pause.</summary>
    Break,
}

/// <summary>Thrown for guest behaviour the emulator cannot model; ends the run with a message.</summary>
public sealed class UnsupportedFeatureException(string message) : Exception(message);

/// <summary>
/// The whole PC: RAM, the I/O and MMIO buses, devices, the CPU and its decoded-instruction cache, and
/// the run loop. Time is virtual: <see cref="Now"/> advances with retired instructions (and jumps ahead
/// while the CPU halts), so the same image and options always give the same run.
/// Disposing a machine gives its guest RAM (host memory outside the managed heap) back at once; a machine dropped
/// without Dispose gives it back when the GC finalizes the RAM's handle.
/// </summary>
public sealed unsafe partial class Machine : IDisposable
{
    public readonly MachineOptions Options;
    public readonly PhysicalMemory Memory;
    public readonly IoBus Io = new();
    public readonly CpuCore Cpu;
    public readonly DecodeCache Cache;
    public readonly MachineEvents Events = new();
    public readonly MachineStats Stats = new();
    public readonly Serial16550 Com1;
    /// <summary>The toy kernel's guest-information port (0xEA/0xEB): region marks, processes, layout.</summary>
    public readonly Introspection.KernelInfoPort KernelInfo;

    public StopReason StopReason { get; private set; }
    public int ExitCode { get; private set; }
    public string StopMessage { get; private set; } = "";

    private ulong _rng;
    /// <summary>Ticks of <see cref="Now"/> that are not retired instructions: time skipped while halted, and under
    /// <see cref="Mmu.GuestClock.Cycles"/> the modeled cycles of TLB misses, walks and flushes (<see cref="StallTicks"/>).
    /// One field, so the run loop's test for a due event stays <c>Retired + _idle</c> whatever the clock.</summary>
    private ulong _idle;
    private ulong _stall;

    /// <summary>
    /// Virtual time in ticks: one tick per retired instruction, plus time skipped while halted, plus (under the cycle
    /// clock, <see cref="MachineOptions.Clock"/>) the modeled cycles the MMU's slow paths add as they happen.
    /// </summary>
    public ulong Now => Cpu.Retired + _idle;

    /// <summary>Guest time not counted in retired instructions (<see cref="_idle"/>: skipped halts and stalls), for compiled code's event test.</summary>
    internal ulong UncountedTicks => _idle;

    /// <summary>Ticks added by the cycle clock (modeled cycles beyond one per instruction); 0 under the instruction clock.</summary>
    public ulong StallTicks => _stall;

    /// <summary>The cycle clock's hook: the MMU charges modeled cycles to guest time (slow paths only).</summary>
    internal void AddStall(ulong cycles) { _idle += cycles; _stall += cycles; }

    /// <summary>Virtual time of the next device event; the run loop services devices when Now reaches it.</summary>
    public ulong NextEventAt = ulong.MaxValue;

    /// <summary>Raised by the interrupt controllers when an unmasked interrupt is waiting.</summary>
    public bool InterruptLine
    {
        get => (Attention & AttentionInterrupt) != 0;
        set => SetAttention(AttentionInterrupt, value);
    }

    /// <summary>
    /// <see cref="InterruptLine"/> (bit 0) and <see cref="DebugStepHook"/> (bit 1) in one word, so that a block boundary — the chain's
    /// <c>ChainMustLeave</c> and every compiled edge — tests both with one load. Each bit is set and cleared atomically: the debugger
    /// sets its bit from its own thread while the run loop's devices change the other.
    /// </summary>
    internal int Attention;
    internal const int AttentionInterrupt = 1, AttentionStep = 2;

    private void SetAttention(int bit, bool on)
    {
        if (on) Interlocked.Or(ref Attention, bit);
        else Interlocked.And(ref Attention, ~bit);
    }

    /// <summary>An NMI is waiting (one at most: NMIs that arrive while one waits merge into it).</summary>
    public bool NmiPending { get; private set; }

    /// <summary>
    /// Signals an NMI to the CPU (the local APIC's LINT1 in NMI mode, an NMI IPI, the debugger). It is taken at the
    /// next instruction boundary the run loop sees, unless an earlier NMI's handler has not yet executed IRET: then
    /// it waits, and further ones are lost. Making the next event due now ends a running chain at its next block.
    /// </summary>
    public void RaiseNmi()
    {
        NmiPending = true;
        NextEventAt = 0;
        Cpu.ExitBlock = true;
    }

    internal void NmiTaken() => NmiPending = false;
    public IInterruptController? InterruptController;
    private readonly List<ITimedDevice> _timed = new();

    public Machine(MachineOptions options)
    {
        Options = options;
        Memory = new PhysicalMemory(options.RamBytes);
        Cpu = new CpuCore(this, Memory, Io);
        if (options.Tlb != null) Cpu.Mmu.Configure(options.Tlb);
        Emu64.Cpu.CpuFeatures.Apply(Cpu, options.CpuFeaturesOff);
        Cpu.Mmu.CycleClock = options.Clock == Mmu.GuestClock.Cycles;
        Cache = new DecodeCache(Memory);
        Events.Owner = this;
        Memory.CodeWritten += frame => { Cache.Invalidate(frame); Cpu.ExitBlock = true; };
        _rng = options.Seed ^ 0x9E3779B97F4A7C15UL;
        Com1 = new Serial16550(options.Output ?? Stream.Null);
        Io.Register(0x3F8, 8, Com1);
        Io.Register(0xE9, 1, new DebugConsole(options.Output ?? Stream.Null));
        Io.Register(0xF4, 4, new DebugExitDevice(this));
        Io.Register(0x8900, 1, new BochsShutdownPort(this));
        KernelInfo = new Introspection.KernelInfoPort(this);
        Io.Register(Introspection.KernelInfoPort.OpPort, 2, KernelInfo);
        AttachPlatformDevices();
    }

    /// <summary>Frees guest RAM now (<see cref="PhysicalMemory.Dispose"/>); the machine must not run afterwards.</summary>
    public void Dispose() => Memory.Dispose();

    /// <summary>Hook for the platform devices (PIC, PIT, APIC, fw_cfg, CMOS ...), filled in by Platform.cs.</summary>
    partial void AttachPlatformDevices();

    public void AddTimedDevice(ITimedDevice d) { _timed.Add(d); RecomputeNextEvent(); }

    public void RecomputeNextEvent()
    {
        ulong next = ulong.MaxValue;
        foreach (var d in _timed) next = Math.Min(next, d.NextEventAt);
        NextEventAt = next;
    }

    /// <summary>
    /// A timed device moved its next event from <paramref name="oldAt"/> to <paramref name="newAt"/>: the same result as
    /// <see cref="RecomputeNextEvent"/>, without walking every device when the answer is plain — an earlier event is the new
    /// minimum; a later one changes nothing unless this device held the minimum. (A guest that re-arms its TSC deadline in a
    /// loop, as kvm-unit-tests' vmexit does, paid an interface call per timed device per WRMSR.)
    /// </summary>
    public void Reschedule(ulong oldAt, ulong newAt)
    {
        if (newAt <= NextEventAt) NextEventAt = newAt;
        else if (oldAt <= NextEventAt) RecomputeNextEvent();
    }

    private void ServiceEvents()
    {
        ulong now = Now;
        foreach (var d in _timed) if (d.NextEventAt <= now) d.OnTime(now);
        RecomputeNextEvent();
    }

    /// <summary>Ends the run at the next instruction boundary.</summary>
    public void Stop(StopReason reason, int exitCode = 0, string message = "")
    {
        if (StopReason != StopReason.None) return;
        StopReason = reason;
        ExitCode = exitCode;
        StopMessage = message;
        Cpu.ExitBlock = true;
    }

    /// <summary>Clears a <see cref="StopReason.Break"/> so the run can continue.</summary>
    public void ClearBreak() { if (StopReason == StopReason.Break) StopReason = StopReason.None; }

    /// <summary>A deterministic random stream seeded by --seed (RDRAND, RDSEED, anything random).</summary>
    public ulong NextRandom()
    {
        // splitmix64
        ulong z = _rng += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    // Device hooks the CPU calls; the platform fills them in.
    public Func<uint, (bool Ok, ulong Value)>? MsrReadHook;
    public Func<uint, ulong, bool>? MsrWriteHook;
    public Action<ulong>? ApicBaseWritten;
    public Action<ulong>? TprWritten;
    public Action? DebugRegistersChanged;

    internal bool ReadDeviceMsr(uint msr, out ulong v)
    {
        v = 0;
        if (MsrReadHook is null) return false;
        var (ok, value) = MsrReadHook(msr);
        v = value;
        return ok;
    }

    internal bool WriteDeviceMsr(uint msr, ulong v) => MsrWriteHook?.Invoke(msr, v) ?? false;
    internal void OnApicBaseWrite(ulong v) => ApicBaseWritten?.Invoke(v);
    internal void OnTprWrite(ulong v) => TprWritten?.Invoke(v);
    internal void OnDebugRegistersChanged() => DebugRegistersChanged?.Invoke();
}

/// <summary>Options of one machine (what the command line sets).</summary>
public sealed class MachineOptions
{
    public ulong RamBytes = 128UL << 20;
    public string Append = "";
    public ulong Seed;
    public ulong MaxInstructions = ulong.MaxValue;
    public Stream? Output;
    /// <summary>Guest ticks per second of virtual time (the documented default: 1 GHz, one instruction per ns).</summary>
    public ulong TicksPerSecond = 1_000_000_000;
    /// <summary>
    /// What a tick of guest time is: a retired instruction (the default) or a modeled cycle (the cost model's, TLB
    /// misses, walks and flushes included; Mmu/CycleClock.cs). Either way time is virtual and runs are deterministic.
    /// </summary>
    public Mmu.GuestClock Clock = Mmu.GuestClock.Instructions;
    /// <summary>TLB geometry and cost model (null: the documented Skylake-like defaults).</summary>
    public Mmu.TlbConfig? Tlb;
    /// <summary>CPU features turned off (--cpu -pcid,...: <see cref="Emu64.Cpu.CpuFeatures"/>); CPUID and behaviour follow.</summary>
    public IReadOnlyList<Emu64.Cpu.CpuFeatures.Feature> CpuFeaturesOff = [];
    /// <summary>
    /// Whole runs of a block after which it is compiled to a .NET method (BlockCompiler.cs); 0 never compiles.
    /// Compiled and interpreted blocks give the same results, counters and output. Compiling a region costs tens of
    /// milliseconds of JIT time on the Linux boot (2,000 regions at a threshold of 1000 doubled its host time:
    /// docs/PERFORMANCE.md, "Where a Linux boot spends its time"), which a region saves back only after some hundreds
    /// of thousands of runs: the default (1,000,000) compiles the loops that run for long and leaves the rest to the
    /// interpreter.
    /// </summary>
    public int CompileThreshold = DefaultCompileThreshold;
    /// <summary>
    /// Compile hot regions on a background thread (Cpu/BackgroundCompiler.cs) while the block goes on running interpreted,
    /// instead of stopping the guest for the JIT. Results, output and every counter are the same either way; which blocks ran
    /// compiled, and so host time, then depend on the host. Off by default here (tests check that code is compiled at once);
    /// the command line turns it on.
    /// </summary>
    public bool CompileInBackground;
    /// <summary>
    /// When a region compiled in the background is installed: this many guest ticks after its block turned hot, and at least
    /// <see cref="BackgroundCompileSpacing"/> after the previous one (Cpu/BackgroundCompiler.cs: fixed guest times, so that every
    /// run installs the same code at the same instruction).
    /// </summary>
    public ulong BackgroundCompileLead = Emu64.Cpu.BackgroundCompiler.DefaultLead, BackgroundCompileSpacing = Emu64.Cpu.BackgroundCompiler.DefaultSpacing;
    /// <summary>
    /// Runs of a block before it is compiled: regions are cheap to compile since handlers are called, not inlined
    /// (BlockCompiler.InlineHandlers), so code that runs tens of thousands of times pays the JIT back (docs/PERFORMANCE.md).
    /// </summary>
    public static readonly int DefaultCompileThreshold = EnvCompileThreshold ?? 50_000;
    /// <summary>
    /// The threshold when compiling in the background (<see cref="CompileInBackground"/>): the JIT no longer delays the guest, so
    /// code that runs tens of thousands of times is worth compiling; lower, the compiler thread falls behind on the Linux boot
    /// (docs/PERFORMANCE.md, "Compiling in the background").
    /// </summary>
    public static readonly int DefaultBackgroundCompileThreshold = EnvCompileThreshold ?? 20_000;
    /// <summary>The default threshold for the one compilation mode or the other.</summary>
    public static int DefaultCompileThresholdFor(bool background) => background ? DefaultBackgroundCompileThreshold : DefaultCompileThreshold;
    /// <summary>EMU64_COMPILE_THRESHOLD, which overrides both defaults (the test suite's second pass sets it to 1).</summary>
    public static int? EnvCompileThreshold =>
        int.TryParse(Environment.GetEnvironmentVariable("EMU64_COMPILE_THRESHOLD"), out int t) && t >= 0 ? t : null;
}

/// <summary>A device with timed events (PIT, APIC timer, RTC).</summary>
public interface ITimedDevice
{
    ulong NextEventAt { get; }
    void OnTime(ulong now);
}

/// <summary>The source of external interrupts (the 8259 pair, or the local APIC).</summary>
public interface IInterruptController
{
    /// <summary>Returns the vector of the highest-priority pending interrupt and marks it in service, or -1.</summary>
    int Acknowledge();
}

public sealed partial class Machine
{
    /// <summary>Symbols of the loaded kernel (empty if it has none).</summary>
    public List<Loader.ElfSymbol> Symbols { get; private set; } = new();

    /// <summary>
    /// Loads a kernel the way <c>qemu-system-x86_64 -kernel</c> tells them apart, and sets the CPU to its entry
    /// state: a Linux setup header ("HdrS" at 0x202) makes it a bzImage (Linux boot protocol, LinuxBoot.cs);
    /// otherwise a multiboot header in the first 8 KiB makes it a multiboot kernel (Multiboot.cs); otherwise an
    /// ELF file with a PVH entry note boots through PVH (Pvh.cs). An ELF file with none of these is refused (it
    /// is a program, not a kernel Emu64 knows how to enter), and anything else gets the multiboot loader's error.
    /// </summary>
    public Loader.KernelFormat LoadKernel(byte[] image, string path, IReadOnlyList<Loader.BootModule> modules)
    {
        if (Loader.LinuxBoot.IsBzImage(image))
        {
            var r = Loader.LinuxBoot.Load(Memory, image, Options.Append, modules, AcpiRsdpAddress());
            Symbols = new();
            Loader.LinuxBoot.Enter(Cpu, r);
            return Loader.KernelFormat.BzImage;
        }
        bool hasHeader;
        try { Loader.Multiboot.FindHeader(image); hasHeader = true; }
        catch (Loader.ImageException) { hasHeader = false; }
        if (!hasHeader && Loader.ElfImage.IsElf(image))
        {
            var elf = new Loader.ElfImage(image);
            uint entry = Loader.Pvh.FindEntry(elf)
                ?? throw new Loader.ImageException($"ELF{(elf.Is64 ? "64" : "32")} file has no multiboot header (magic 0x1BADB002 in the first 8 KiB) and no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); it is not a kernel Emu64 can boot");
            var r = Loader.Pvh.Load(Memory, elf, entry, Options.Append, modules, AcpiRsdpAddress());
            Symbols = elf.ReadSymbols();
            Loader.Pvh.Enter(Cpu, r);
            return Loader.KernelFormat.Pvh;
        }
        var mb = Loader.Multiboot.Load(Memory, image, path, Options.Append, modules);
        Symbols = mb.Elf?.ReadSymbols() ?? new();
        Cpu.ResetToMultibootState(mb.Entry, Loader.Multiboot.BootMagic, mb.InfoAddress);
        return Loader.KernelFormat.Multiboot;
    }

    /// <summary>
    /// The physical address of the ACPI RSDP the platform builds, handed to Linux (boot_params.acpi_rsdp_addr)
    /// and PVH kernels (hvm_start_info.rsdp_paddr); 0 when the machine has no ACPI tables, in which case Linux
    /// scans the BIOS area [0xE0000, 0x100000) itself. The one place the loaders learn it.
    /// </summary>
    public ulong AcpiRsdpAddress() => Memory.RamSize >= Devices.AcpiTables.End ? Devices.AcpiTables.RsdpAddress : 0;
}
