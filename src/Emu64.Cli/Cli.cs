using System.Diagnostics;
using System.Globalization;
using Emu64;
using Emu64.Loader;

namespace Emu64.Cli;

/// <summary>Exit statuses of the emu64 program (documented in the README).</summary>
public static class ExitStatus
{
    public const int Ok = 0;              // clean shutdown (Bochs port, HLT with IF=0) or help
    public const int Usage = 2;           // bad command line, unreadable or malformed image
    public const int TripleFault = 4;
    public const int InstructionLimit = 6;
    public const int Unsupported = 8;     // guest used a feature Emu64 does not implement
    public const int Reset = 10;          // guest asked for a reset
    public const int InternalError = 12;  // an unexpected exception inside Emu64 (a bug: one line, no stack trace)
    // A guest write of V to isa-debug-exit (port 0xF4) exits with (V << 1) | 1, as QEMU: always odd.

    /// <summary>
    /// The bundled toy kernel ends a clean run with isa-debug-exit value 0, which is status 1 under QEMU's
    /// convention (kept for <c>emu64 run</c>, any kernel): <c>boot</c> (and <c>debug</c> without a KERNEL)
    /// turn that one status into 0 so that <c>emu64 boot &amp;&amp; next</c> works. Its failures (value 1: a
    /// panic, a mistake in init=) stay 3, and every other status is unchanged.
    /// </summary>
    public static int ForBundledKernel(int status) => status == BundledKernelSuccess ? Ok : status;

    /// <summary>isa-debug-exit value 0 under QEMU's (V &lt;&lt; 1) | 1.</summary>
    public const int BundledKernelSuccess = 1;

    /// <summary>The status for the way a run ended (a pause or an unfinished run counts as 0).</summary>
    public static int For(StopReason reason, int exitCode) => reason switch
    {
        StopReason.DebugExit => exitCode,
        StopReason.TripleFault or StopReason.FaultLoop => TripleFault,
        StopReason.InstructionLimit => InstructionLimit,
        StopReason.Reset => Reset,
        StopReason.Unsupported => Unsupported,
        _ => Ok,
    };
}

/// <summary>The emu64 command line: QEMU-like options, one clear line for every error.</summary>
public static class Cli
{
    public const string Usage = """
        usage: emu64 <command> [options]

        commands:
          run KERNEL [options]   boot a kernel as qemu-system-x86_64 -kernel does: a Linux bzImage,
                                 a multiboot kernel, or an ELF vmlinux with a PVH note (docs/LINUX.md)
          boot [options]         boot the bundled toy kernel (firmware/toykernel.elf)
          debug [KERNEL] [options] [--script FILE]
                                 interactive debugger (bundled kernel if none is given); see docs/DEBUGGING.md
          measure [options]      KPTI's cost in TLB misses, walks and cycles, with and without PCID (emu64 measure --help)
          analyze DUMP [--use-cr3]
                                 recover the kernel's layout (PGD, PAGE_OFFSET, KASLR) from a memory dump; see docs/DUMPS.md
          isa-coverage [--all]   list the instruction encodings (Iced Code) not implemented (--all: and those implemented)

        Every command answers -h or --help (emu64 run --help).

        options:
        """ + "\n" + RunOptionsUsage + "\n" + DebugOptions.Usage + "\n" + DumpOnExit.Usage;

    /// <summary>The options of run, boot and debug (without the tracing and debugging ones).</summary>
    public const string RunOptionsUsage = """
          --append ARGS          kernel command line
          -m SIZE                guest RAM (default 128M; suffix K, M or G, plain numbers are MiB)
          --initrd FILE[,FILE]   Linux: the initrd (one file); multiboot: modules ("FILE args" passes args)
          --max-instructions N   stop after N retired instructions (exit status 6)
          --seed N               seed for RDRAND/RDSEED and anything random (default 0)
          --ips N                guest ticks per virtual second (default 1000000000): the
                                 rate at which timers (PIT, APIC, TSC, CMOS clock) see time pass
          --clock KIND           what a tick is: instructions (default; one per retired instruction) or
                                 cycles (the cost model's cycles: TLB misses, walks, CR3 writes and
                                 flushes included; docs/MEASURE.md, "Guest time")
          --stats                print counters to stderr at the end (key: value lines)
          --compile-threshold N  runs of a block before it is compiled to a .NET method (default 50000,
                                 20000 with --background-compile; 0: interpret only); results and
                                 counters do not depend on it
          --background-compile   compile hot regions on another thread while they run interpreted, each
                                 installed at a fixed guest time (the same in every run)
          --cpu [max,]-FEATURE[,...]
                                 turn CPU features off as QEMU's -cpu does (CPUID and behaviour follow):
                                 pcid, invpcid, la57, umip, pku, smep, smap, fsgsbase, rdtscp, rdrand, rdseed
          --tlb-config FILE      TLB geometry and cost model from a JSON file (see docs/MMU.md);
                                 also NAME=VALUE[,NAME=VALUE] (e.g. stlb.entries=2048,cost.cr3write=150),
                                 repeatable, applied in order
          -h, --help             this text
        """;

    public const string RunUsage = """
        usage: emu64 run KERNEL [options]

        Boots KERNEL (a multiboot image: ELF32, ELF64 with multiboot address fields, or a flat binary) as
        qemu-system-x86_64 -kernel KERNEL -device isa-debug-exit does. Standard input goes to COM1.
        Exit status: (V << 1) | 1 when the guest writes V to isa-debug-exit (port 0xF4), 0 on a clean
        shutdown, 4 triple fault, 6 instruction limit, 8 unsupported, 10 reset (docs/ERRORS.md).

        options:
        """ + "\n" + RunOptionsUsage + "\n" + DebugOptions.Usage + "\n" + DumpOnExit.Usage;

    public const string BootUsage = """
        usage: emu64 boot [options]

        Boots the bundled toy kernel (firmware/toykernel.elf; programs with --append init=..., see
        docs/KERNEL.md). Exit status: 0 when the kernel ends cleanly (it writes 0 to isa-debug-exit),
        3 when it fails (a panic, a mistake in init=: it writes 1), else as for run (docs/ERRORS.md).

        options:
        """ + "\n" + RunOptionsUsage + "\n" + DebugOptions.Usage + "\n" + DumpOnExit.Usage;

    public const string DebugUsage = """
        usage: emu64 debug [KERNEL] [options] [--script FILE]

        The interactive debugger (docs/DEBUGGING.md), stopped before the first instruction of KERNEL
        (the bundled toy kernel if none is given). Type help at the (emu64) prompt for its commands;
        numbers are decimal, or hexadecimal after 0x, as in gdb.
          --script FILE          run the debugger commands in FILE (one a line, each echoed after the prompt)

        options:
        """ + "\n" + RunOptionsUsage + "\n" + DebugOptions.Usage + "\n" + DumpOnExit.Usage;

    public const string IsaCoverageUsage = """
        usage: emu64 isa-coverage [--all]

        Lists the instruction encodings (Iced Code values) of the in-scope ISA that Emu64 does not
        implement, grouped by ISA extension, with a summary line.
          --all                  also list the encodings that are implemented
          -h, --help             this text
        """;

    /// <summary>
    /// Runs the command line. With <paramref name="attachStdin"/> (the emu64 program itself) the guest's
    /// COM1 receives standard input: all of it, read before the run, when it is redirected (a file or
    /// a pipe: deterministic), or line by line as typed when it is a terminal.
    /// </summary>
    public static int Execute(string[] args, bool attachStdin = false) => Execute(args, null, null, attachStdin);

    /// <summary>
    /// Runs the command line with the guest's output (and the debugger's) going to <paramref name="stdout"/>
    /// and Emu64's own messages to <paramref name="stderr"/> (null: the process's streams). Every error ends
    /// here as one line on stderr and a documented status (docs/ERRORS.md): a bad command line or file is 2,
    /// and an exception nobody expected is an "internal error" line with status 12, never a stack trace.
    /// </summary>
    public static int Execute(string[] args, Stream? stdout, TextWriter? stderr, bool attachStdin = false)
    {
        var (oldOut, oldErr, oldMachine) = (_stdout, _stderr, _current);
        _stdout = stdout; _stderr = stderr; _current = null;
        try
        {
            _attachStdin = attachStdin;
            return Run(args);
        }
        catch (CliException e)
        {
            Err.WriteLine($"emu64: {OneLine(e.Message)}");
            return ExitStatus.Usage;
        }
        catch (ImageException e)
        {
            Err.WriteLine($"emu64: bad {e.Subject}: {OneLine(e.Message)}");
            return ExitStatus.Usage;
        }
        catch (Exception e)
        {
            // Last resort: whatever escaped is a bug in Emu64, reported in one line with where the guest was.
            string where = _current is { } m ? FormattableString.Invariant($" (guest rip {m.Cpu.Rip:x} after {m.Cpu.Retired} instructions)") : "";
            try { Err.WriteLine($"emu64: internal error: {e.GetType().Name}: {OneLine(e.Message)}{where}; please report it"); }
            catch (Exception) { /* stderr itself is gone: the status still says it */ }
            return ExitStatus.InternalError;
        }
        finally
        {
            try { Err.Flush(); } catch (Exception) { }
            (_stdout, _stderr, _current) = (oldOut, oldErr, oldMachine);
        }
    }

    private static string OneLine(string s)
    {
        int nl = s.IndexOfAny(['\r', '\n']);
        return nl < 0 ? s : s[..nl];
    }

    [ThreadStatic] private static bool _attachStdin;
    [ThreadStatic] private static Stream? _stdout;
    [ThreadStatic] private static TextWriter? _stderr;
    [ThreadStatic] private static Machine? _current;

    /// <summary>Where Emu64's own messages go (stderr unless <see cref="Execute(string[], Stream?, TextWriter?, bool)"/> was given a writer).</summary>
    public static TextWriter Err => _stderr ?? Console.Error;
    /// <summary>True when stderr is redirected to a writer by the caller (tests).</summary>
    internal static bool ErrRedirected => _stderr != null;
    /// <summary>The stream the guest's serial output goes to.</summary>
    public static Stream OpenStdout() => _stdout is { } s ? new NonClosingStream(s) : Console.OpenStandardOutput();
    /// <summary>Text output of the debugger (to the same place as the guest's output).</summary>
    public static TextWriter Out => _stdout is { } s ? new StreamWriter(new NonClosingStream(s)) { AutoFlush = true } : Console.Out;

    /// <summary>Test seam: called at the start of every command on this thread (the internal-error test throws from it).</summary>
    [ThreadStatic] public static Action? FaultInjection;

    private static int Run(string[] args)
    {
        FaultInjection?.Invoke();
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            // emu64 alone is a usage error (the text on stderr, status 2); --help asks for it (stdout, 0).
            if (args.Length == 0) { Err.WriteLine(Usage); return ExitStatus.Usage; }
            var w = Out;
            w.WriteLine(Usage);
            w.Flush();
            return ExitStatus.Ok;
        }
        string cmd = args[0];
        var rest = args.AsSpan(1).ToArray();
        string? usage = cmd switch
        {
            "run" => RunUsage,
            "boot" => BootUsage,
            "debug" => DebugUsage,
            "measure" => Measure.MeasureOptions.Usage,
            "analyze" => AnalyzeCommand.Usage,
            "isa-coverage" => IsaCoverageUsage,
            _ => null,
        };
        if (usage is null) throw new CliException($"unknown command '{cmd}' (try emu64 --help)");
        try
        {
            return cmd switch
            {
                "run" => RunWithDebugOptions(rest, needKernel: true),
                "boot" => RunWithDebugOptions(rest, needKernel: false),
                "debug" => DebugCommand.Run(rest),
                "measure" => Measure.MeasureCommand.Run(rest),
                "analyze" => AnalyzeCommand.Run(rest),
                _ => IsaCoverage(rest),
            };
        }
        catch (HelpRequested)
        {
            // -h/--help where an option may stand (not as the value of --append and the like): usage on stdout, 0.
            var w = Out;
            w.WriteLine(usage);
            w.Flush();
            return ExitStatus.Ok;
        }
    }

    /// <summary>Thrown by the option parsers when -h or --help stands where an option may.</summary>
    internal sealed class HelpRequested : Exception;

    /// <summary>True for -h and --help (the parsers then throw <see cref="HelpRequested"/>).</summary>
    internal static bool IsHelp(string arg) => arg is "-h" or "--help";

    private static int IsaCoverage(string[] args)
    {
        bool all = false;
        foreach (var a in args)
        {
            if (IsHelp(a)) throw new HelpRequested();
            if (a == "--all") all = true;
            else if (a.StartsWith('-')) throw new CliException($"unknown option {a}");
            else throw new CliException($"unexpected argument '{a}'");
        }
        var w = Out;
        Emu64.Isa.Coverage.Write(w, all);
        w.Flush();
        return ExitStatus.Ok;
    }

    private static int RunWithDebugOptions(string[] args, bool needKernel)
    {
        var (dumpFile, args1) = DumpOnExit.Extract(args);
        var (d, rest) = DebugOptions.Extract(args1, allowScript: false);
        var o = ParseRunOptions(rest, needKernel) with { DumpFile = dumpFile };
        if (!needKernel) o = o with { Kernel = BundledKernelPath(), GuestKernelName = BundledKernelName };
        int status = RunKernel(o, d);
        return needKernel ? status : ExitStatus.ForBundledKernel(status);
    }

    public sealed record RunOptions(string? Kernel, string Append, ulong RamBytes, List<string> Initrds, ulong MaxInstructions, ulong Seed, bool Stats)
    {
        /// <summary>--tlb-config arguments in order: JSON file paths or NAME=VALUE lists.</summary>
        public List<string> TlbConfig { get; init; } = new();
        /// <summary>Guest instructions per virtual second (--ips).</summary>
        public ulong Ips { get; init; } = 1_000_000_000;
        /// <summary>Runs of a block before it is compiled (--compile-threshold; 0: interpret only).</summary>
        public int CompileThreshold { get; init; } = MachineOptions.DefaultCompileThresholdFor(DefaultCompileInBackground);
        /// <summary>Compile hot regions on a background thread (--background-compile) instead of the run loop's.</summary>
        public bool CompileInBackground { get; init; } = DefaultCompileInBackground;
        /// <summary>--cpu: the CPU features turned off.</summary>
        public IReadOnlyList<Emu64.Cpu.CpuFeatures.Feature> CpuOff { get; init; } = [];
        /// <summary>What a tick of guest time is (--clock).</summary>
        public Emu64.Mmu.GuestClock Clock { get; init; } = Emu64.Mmu.GuestClock.Instructions;
        /// <summary>--dump-on-exit FILE: where to write the guest memory dump when the run ends.</summary>
        public string? DumpFile { get; init; }
        /// <summary>
        /// The kernel's name as the guest sees it (the multiboot command line starts with it, as under QEMU): the path
        /// as given for <c>run KERNEL</c>, and <see cref="BundledKernelName"/> for the bundled kernel, never where the
        /// checkout happens to be, so a run prints the same and counts the same instructions in any directory.
        /// </summary>
        public string? GuestKernelName { get; init; }
    }

    /// <summary>
    /// The command line compiles hot regions on the run loop's thread unless --background-compile or
    /// EMU64_COMPILE_BACKGROUND=1 (MachineOptions.CompileInBackground; docs/PERFORMANCE.md, "Compiling in the background").
    /// </summary>
    public static readonly bool DefaultCompileInBackground = Environment.GetEnvironmentVariable("EMU64_COMPILE_BACKGROUND") == "1";

    /// <summary>What the bundled kernel is called on its multiboot command line.</summary>
    public const string BundledKernelName = "toykernel.elf";

    public static RunOptions ParseRunOptions(string[] a, bool needKernel)
    {
        string? kernel = null;
        string append = "";
        ulong ram = 128UL << 20, max = ulong.MaxValue, seed = 0, ips = 1_000_000_000;
        int? compileThreshold = null;
        bool compileInBackground = DefaultCompileInBackground;
        var initrds = new List<string>();
        bool stats = false;
        var tlb = new List<string>();
        IReadOnlyList<Emu64.Cpu.CpuFeatures.Feature> cpuOff = [];
        var clock = Emu64.Mmu.GuestClock.Instructions;
        for (int i = 0; i < a.Length; i++)
        {
            string o = a[i];
            string Value()
            {
                if (i + 1 >= a.Length) throw new CliException($"option {o} needs a value");
                return a[++i];
            }
            switch (o)
            {
                case "-h" or "--help": throw new HelpRequested();
                case "--append":
                    append = Value();
                    if (System.Text.Encoding.UTF8.GetByteCount(append) > MaxAppendBytes)
                        throw new CliException($"option --append: the command line is {System.Text.Encoding.UTF8.GetByteCount(append)} bytes long (at most {MaxAppendBytes})");
                    break;
                case "-m": ram = ParseSize(Value()); break;
                case "--initrd":
                    {
                        string v = Value();
                        var files = v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                        if (files.Length == 0) throw new CliException($"option --initrd needs FILE[,FILE...], not '{v}'");
                        initrds.AddRange(files);
                        break;
                    }
                case "--max-instructions": max = ParseCount(o, Value()); break;
                case "--seed": seed = ParseCount(o, Value()); break;
                case "--stats": stats = true; break;
                case "--tlb-config": tlb.Add(Value()); break;
                case "--cpu":
                    try { cpuOff = Emu64.Cpu.CpuFeatures.Parse(Value()); }
                    catch (ArgumentException e) { throw new CliException($"--cpu: {e.Message}"); }
                    break;
                case "--compile-threshold":
                    {
                        ulong t = ParseCount(o, Value());
                        if (t > int.MaxValue) throw new CliException($"option --compile-threshold needs a count of at most {int.MaxValue}");
                        compileThreshold = (int)t;
                        break;
                    }
                case "--background-compile": compileInBackground = true; break;
                case "--clock": clock = ParseClock(Value()); break;
                case "--ips":
                    ips = ParseCount(o, Value());
                    if (ips == 0) throw new CliException("option --ips needs a rate of at least 1 instruction per second");
                    break;
                default:
                    if (o.StartsWith('-')) throw new CliException($"unknown option {o}");
                    if (kernel != null || !needKernel) throw new CliException($"unexpected argument '{o}'");
                    kernel = o;
                    break;
            }
        }
        if (needKernel && kernel is null) throw new CliException("no kernel given (usage: emu64 run KERNEL [options])");
        var result = new RunOptions(kernel, append, ram, initrds, max, seed, stats) { TlbConfig = tlb, Ips = ips, CompileThreshold = compileThreshold ?? MachineOptions.DefaultCompileThresholdFor(compileInBackground),
            CompileInBackground = compileInBackground, CpuOff = cpuOff, Clock = clock };
        CheckClock(clock, BuildTlbConfig(result));   // report a bad configuration before anything runs
        return result;
    }

    /// <summary>--clock's value: instructions or cycles.</summary>
    public static Emu64.Mmu.GuestClock ParseClock(string v) => v.ToLowerInvariant() switch
    {
        "instructions" or "insns" => Emu64.Mmu.GuestClock.Instructions,
        "cycles" => Emu64.Mmu.GuestClock.Cycles,
        _ => throw new CliException($"option --clock needs instructions or cycles, not '{v}'"),
    };

    /// <summary>The cycle clock needs a cost model in whole cycles (Mmu.CycleClockProblem); one line when it is not.</summary>
    public static void CheckClock(Emu64.Mmu.GuestClock clock, Emu64.Mmu.TlbConfig? tlb)
    {
        if (clock == Emu64.Mmu.GuestClock.Cycles && Emu64.Mmu.Mmu.CycleClockProblem((tlb ?? new Emu64.Mmu.TlbConfig()).Cost) is { } problem)
            throw new CliException($"--clock cycles: {problem}");
    }

    /// <summary>The TLB configuration of --tlb-config arguments (null when none were given).</summary>
    public static Emu64.Mmu.TlbConfig? BuildTlbConfig(RunOptions o)
    {
        if (o.TlbConfig.Count == 0) return null;
        var cfg = new Emu64.Mmu.TlbConfig();
        try
        {
            foreach (var arg in o.TlbConfig)
            {
                if (arg.Contains('=') && !File.Exists(arg))
                {
                    foreach (var setting in arg.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                        cfg.Set(setting);
                }
                else
                {
                    var json = System.Text.Encoding.UTF8.GetString(ReadFile(arg, "TLB configuration"));
                    var loaded = Emu64.Mmu.TlbConfig.FromJson(json);
                    cfg = loaded;
                }
            }
        }
        catch (Exception e) when (e is FormatException or ArgumentException or System.Reflection.TargetInvocationException)
        { throw new CliException($"--tlb-config: {e.Message}"); }
        return cfg;
    }

    /// <summary>The guest RAM cap: 3 GiB, contiguous from 0 below the 32-bit PCI hole (<see cref="Emu64.Memory.PhysicalMemory.MaxRamSize"/>).</summary>
    public const ulong MaxRamBytes = Emu64.Memory.PhysicalMemory.MaxRamSize;

    /// <summary>The longest --append accepted (Linux's COMMAND_LINE_SIZE is 2048; the multiboot info area holds far more).</summary>
    public const int MaxAppendBytes = 65536;

    /// <summary>QEMU's -m syntax: a number of MiB, or a number with a K/M/G suffix.</summary>
    public static ulong ParseSize(string s)
    {
        string t = s.Trim().ToUpperInvariant();
        ulong mult = 1UL << 20;
        if (t.EndsWith('B')) t = t[..^1];
        if (t.EndsWith('K')) { mult = 1UL << 10; t = t[..^1]; }
        else if (t.EndsWith('M')) { mult = 1UL << 20; t = t[..^1]; }
        else if (t.EndsWith('G')) { mult = 1UL << 30; t = t[..^1]; }
        if (!ulong.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out ulong n) || n == 0)
            throw new CliException($"bad memory size '{s}' (examples: 128, 256M, 1G)");
        ulong bytes = n * mult;
        if (bytes / mult != n) throw new CliException($"memory size '{s}' is too large");
        if (bytes < 2UL << 20) throw new CliException($"memory size '{s}' is too small (at least 2M)");
        if (bytes > MaxRamBytes) throw new CliException($"memory size '{s}' is too large (at most {MaxRamBytes >> 30}G)");
        if ((bytes & 0xFFF) != 0) throw new CliException($"memory size '{s}' is not a multiple of 4 KiB");
        return bytes;
    }

    private static ulong ParseCount(string opt, string s)
    {
        var st = s.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? NumberStyles.HexNumber : NumberStyles.None;
        if (!ulong.TryParse(st == NumberStyles.HexNumber ? s[2..] : s, st, CultureInfo.InvariantCulture, out ulong v))
            throw new CliException($"option {opt} needs a non-negative number, not '{s}'");
        return v;
    }

    public static string BundledKernelPath()
    {
        foreach (var dir in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var d = new DirectoryInfo(dir); d != null; d = d.Parent)
            {
                var p = Path.Combine(d.FullName, "firmware", "toykernel.elf");
                if (File.Exists(p)) return p;
            }
        }
        throw new CliException("the bundled kernel firmware/toykernel.elf was not found");
    }

    internal static byte[] ReadFile(string path, string what)
    {
        try
        {
            if (string.IsNullOrWhiteSpace(path)) throw new CliException($"{what} file name is empty");
            if (Directory.Exists(path)) throw new CliException($"{what} '{path}' is a directory");
            var info = new FileInfo(path);
            if (!info.Exists) throw new CliException($"{what} '{path}' does not exist");
            if (info.Length > 1L << 30) throw new CliException($"{what} '{path}' is larger than 1 GiB");
            return File.ReadAllBytes(path);
        }
        catch (IOException e) { throw new CliException($"cannot read {what} '{path}': {e.Message}"); }
        catch (UnauthorizedAccessException) { throw new CliException($"cannot read {what} '{path}': permission denied"); }
        catch (Exception e) when (e is ArgumentException or NotSupportedException) { throw new CliException($"cannot read {what} '{path}': {e.Message}"); }
    }

    /// <summary>A machine with the kernel and modules of <paramref name="o"/> loaded.</summary>
    public static Machine CreateMachine(RunOptions o, Stream stdout, bool current = true)
    {
        var image = ReadFile(o.Kernel!, "kernel");
        var modules = o.Initrds.Select(spec =>
        {
            string file = spec.Split(' ', 2)[0];
            return new BootModule(spec, ReadFile(file, "initrd"));
        }).ToList();
        var opts = new MachineOptions
        {
            RamBytes = o.RamBytes, Append = o.Append, Seed = o.Seed, MaxInstructions = o.MaxInstructions, Output = stdout,
            Tlb = BuildTlbConfig(o), TicksPerSecond = o.Ips, CompileThreshold = o.CompileThreshold, CompileInBackground = o.CompileInBackground, CpuFeaturesOff = o.CpuOff, Clock = o.Clock,
        };
        Machine m;
        try { m = new Machine(opts); }
        catch (OutOfMemoryException) { throw new CliException($"cannot allocate {o.RamBytes >> 20} MiB of guest RAM on this host (try a smaller -m)"); }
        if (current) _current = m;          // the machine an internal error names (not a scratch one)
        m.LoadKernel(image, o.GuestKernelName ?? o.Kernel!, modules);
        return m;
    }

    public static int RunKernel(RunOptions o, DebugOptions? debug = null)
    {
        var stdout = OpenStdout();
        var m = CreateMachine(o, stdout);
        if (debug?.SymbolsFile != null) debug.Symbols(m);   // --symbols alone: for the stop report
        if (debug is { Any: false }) debug = null;
        if (_attachStdin && debug is null) SerialInput.AttachStdin(m);
        var sw = Stopwatch.StartNew();
        var reason = debug is null ? m.Run() : DebugRun.Run(m, debug, o);
        sw.Stop();
        stdout.Flush();
        if (o.DumpFile != null) DumpOnExit.Write(m, o.DumpFile);
        if (reason is not (StopReason.DebugExit or StopReason.Shutdown))
            Err.WriteLine($"emu64: {Describe(m)}");
        if (o.Stats) PrintStats(m, sw.Elapsed.TotalSeconds);
        return reason == StopReason.None ? ExitStatus.Unsupported : ExitStatus.For(reason, m.ExitCode);
    }

    /// <summary>
    /// The stop report (docs/ERRORS.md): a headline naming why the run ended and its exit status, the
    /// registers, the instruction at RIP (bytes and disassembly), and after a fault the last boundary events.
    /// </summary>
    public static string Describe(Machine m)
    {
        int status = ExitStatus.For(m.StopReason, m.ExitCode);
        string head = m.StopReason switch
        {
            StopReason.TripleFault or StopReason.FaultLoop => $"{m.StopMessage}; machine stopped (exit status {status})",
            StopReason.InstructionLimit => $"{m.StopMessage} (exit status {status})",
            StopReason.Unsupported => $"unsupported: {m.StopMessage} (exit status {status})",
            StopReason.Reset => $"guest reset: {m.StopMessage} (exit status {status})",
            _ => $"{m.StopReason}: {m.StopMessage}",
        };
        bool fault = m.StopReason is StopReason.TripleFault or StopReason.FaultLoop or StopReason.Unsupported;
        return Emu64.Debugging.StopReport.Format(m, head, withEvents: fault);
    }

    public static void PrintStats(Machine m, double seconds)
    {
        var e = Err;
        ulong n = m.Cpu.Retired;
        e.WriteLine($"instructions: {n}");
        e.WriteLine(FormattableString.Invariant($"seconds: {seconds:F3}"));
        e.WriteLine(FormattableString.Invariant($"mips: {(seconds > 0 ? n / seconds / 1e6 : 0):F2}"));
        e.WriteLine($"syscalls: {m.Events.Syscalls}");
        e.WriteLine($"interrupts: {m.Events.Interrupts}");
        e.WriteLine($"exceptions: {m.Events.Exceptions}");
        e.WriteLine($"cr3_writes: {m.Events.Cr3Writes}");
        e.WriteLine($"cr3_noflush_writes: {m.Events.Cr3NoFlushWrites}");
        e.WriteLine($"decoded_blocks: {m.Cache.Decodes}");
        e.WriteLine($"compiled_blocks: {m.Cache.Compiled}");
        e.WriteLine($"compiled_instructions: {m.Chain.CompiledRetired}");
        e.WriteLine($"unimplemented: {m.Stats.UnimplementedTotal}");
        var seen = new Dictionary<string, int>();
        foreach (var r in m.KernelInfo.Regions)
        {
            var d = r.Delta;
            int nth = seen[r.Name] = seen.GetValueOrDefault(r.Name) + 1;
            string p = nth == 1 ? $"region.{r.Name}" : $"region.{r.Name}.{nth}";
            e.WriteLine($"{p}.instructions: {d.Instructions}");
            e.WriteLine($"{p}.syscalls: {d.Syscalls}");
            e.WriteLine($"{p}.interrupts: {d.Interrupts}");
            e.WriteLine($"{p}.cr3_writes: {d.Cr3Writes}");
            e.WriteLine($"{p}.cr3_noflush_writes: {d.Cr3NoFlushWrites}");
            foreach (var (key, value) in d.Tlb.Named()) e.WriteLine($"{p}.{key}: {value}");
            e.WriteLine(FormattableString.Invariant($"{p}.modeled_cycles: {d.Tlb.ModeledCycles(d.Instructions, m.Cpu.Mmu.Config.Cost):F0}"));
            // Under the cycle clock the guest's own view of the region (what RDTSC would have measured across it).
            if (m.Options.Clock == Emu64.Mmu.GuestClock.Cycles) e.WriteLine($"{p}.guest_ticks: {d.Now}");
        }
        var tlb = m.Cpu.Mmu.Snapshot();
        foreach (var (key, value) in tlb.Named()) e.WriteLine($"{key}: {value}");
        e.WriteLine(FormattableString.Invariant($"walk.memrefs_per_walk: {(tlb.Walks > 0 ? (double)tlb.WalkMemRefs / tlb.Walks : 0):F2}"));
        e.WriteLine(FormattableString.Invariant($"modeled_cycles: {tlb.ModeledCycles(n, m.Cpu.Mmu.Config.Cost):F0}"));
        if (m.Options.Clock == Emu64.Mmu.GuestClock.Cycles)
        {
            e.WriteLine("clock: cycles");
            e.WriteLine($"guest_ticks: {m.Now}");
            e.WriteLine($"stall_ticks: {m.StallTicks}");
            e.WriteLine($"idle_ticks: {m.IdleTicks}");
        }
        if (m.SleepCount > 0)
        {
            // ACPI S3 (AcpiSleep.cs): how often the guest suspended to RAM, the guest time asleep, where it last resumed.
            e.WriteLine($"acpi.s3_sleeps: {m.SleepCount}");
            e.WriteLine($"acpi.s3_slept_ticks: {m.SleptTicks}");
            e.WriteLine($"acpi.s3_last_wake: {m.LastWakeEntry} at tick {m.LastWakeAt}");
        }
        foreach (var (code, count) in m.Stats.Unimplemented.OrderBy(k => k.Key.ToString()))
            e.WriteLine($"unimplemented.{code}: {count}");
    }
}

public sealed class CliException(string message) : Exception(message);

/// <summary>A stream that leaves the caller's stream open when disposed (guest output into a caller's stream).</summary>
internal sealed class NonClosingStream(Stream inner) : Stream
{
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() => inner.Flush();
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) { lock (inner) inner.Write(buffer, offset, count); }
    public override void Write(ReadOnlySpan<byte> buffer) { lock (inner) inner.Write(buffer); }
}
