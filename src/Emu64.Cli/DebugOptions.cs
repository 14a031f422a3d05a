using Emu64.Debugging;

namespace Emu64.Cli;

/// <summary>
/// The tracing and debugging options of run/boot/debug: --trace CLASSES, --trace-file PATH,
/// --trace-format text|jsonl, --trace-limit N, --gdb [HOST:]PORT, --wait, and (debug only) --script FILE.
/// They are taken out of the argument list before the run options are parsed.
/// </summary>
public sealed class DebugOptions
{
    public TraceClass Trace;
    public string? TraceFile;
    public TraceFormat TraceFormat = TraceFormat.Text;
    /// <summary>Trace records before tracing stops (0 = no limit).</summary>
    public ulong TraceLimit = 1_000_000;
    /// <summary>Trace bytes before tracing stops (--trace-max-bytes; default 1 GiB).</summary>
    public ulong TraceMaxBytes = 1UL << 30;
    public string? GdbHost;
    public int GdbPort = -1;
    public bool Wait;
    public string? Script;
    /// <summary>An extra ELF file whose symbol table names addresses (for kernels loaded as flat binaries).</summary>
    public string? SymbolsFile;
    /// <summary>--gdb-symbols FILE: write the kallsyms of a kernel without symbols as an ELF symbol file for gdb.</summary>
    public string? GdbSymbols;

    public bool Any => Trace != TraceClass.None || GdbPort >= 0;

    public const string Usage = """
          --trace CLASSES        trace boundary, insn and/or tlb events (comma-separated, or all)
          --trace-file PATH      write the trace to PATH (default: stderr)
          --trace-format F       text (default) or jsonl (one JSON object per line)
          --trace-limit N        stop tracing after N records (default 1000000, 0 = no limit)
          --trace-max-bytes SIZE stop tracing after SIZE bytes (default 1G; suffix K, M or G, plain numbers are bytes)
          --gdb [HOST:]PORT      gdb remote stub (127.0.0.1 unless HOST is given; one client)
          --wait                 with --gdb: wait for gdb before the first instruction
          --gdb-symbols FILE     with --gdb, for a kernel without symbols (a stock distribution kernel): read its kallsyms
                                 (a scratch run to where it sets LSTAR) and write them to FILE as an ELF at their runtime,
                                 KASLR, addresses; in gdb: symbol-file FILE, then break entry_SYSCALL_64 needs no offset
          --symbols FILE         take symbols for traces, the debugger and the stop report from FILE as well as from the kernel:
                                 an ELF with a symbol table, a System.map or a /proc/kallsyms dump (without one, a kernel
                                 without symbols is named from its own kallsyms tables once it has relocated itself)
        """;

    /// <summary>Removes the debugging options from <paramref name="args"/> and returns them with the rest.</summary>
    public static (DebugOptions Options, string[] Remaining) Extract(string[] args, bool allowScript)
    {
        var o = new DebugOptions();
        var rest = new List<string>();
        bool traceFormatGiven = false, traceFileGiven = false, limitGiven = false;
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string Value()
            {
                if (i + 1 >= args.Length) throw new CliException($"option {a} needs a value");
                return args[++i];
            }
            switch (a)
            {
                case "--trace":
                    try { o.Trace |= Tracer.ParseClasses(Value()); }
                    catch (ArgumentException e) { throw new CliException(e.Message); }
                    break;
                case "--trace-file": o.TraceFile = Value(); traceFileGiven = true; break;
                case "--trace-format":
                    o.TraceFormat = Value() switch
                    {
                        "text" => TraceFormat.Text,
                        "jsonl" or "json" => TraceFormat.Jsonl,
                        var f => throw new CliException($"unknown trace format '{f}' (text or jsonl)"),
                    };
                    traceFormatGiven = true;
                    break;
                case "--trace-limit":
                    {
                        string v = Value();
                        if (!ulong.TryParse(v, out o.TraceLimit)) throw new CliException($"option --trace-limit needs a non-negative number, not '{v}'");
                        limitGiven = true;
                        break;
                    }
                case "--trace-max-bytes":
                    o.TraceMaxBytes = ParseBytes(Value());
                    limitGiven = true;
                    break;
                case "--gdb":
                    try { (o.GdbHost, o.GdbPort) = GdbStub.ParseEndpoint(Value()); }
                    catch (FormatException e) { throw new CliException(e.Message); }
                    break;
                case "--wait": o.Wait = true; break;
                case "--gdb-symbols": o.GdbSymbols = Value(); break;
                case "--symbols": o.SymbolsFile = Value(); break;
                case "--script" when allowScript: o.Script = Value(); break;
                default: rest.Add(a); break;
            }
        }
        if (o.Trace == TraceClass.None && (traceFormatGiven || traceFileGiven || limitGiven))
            throw new CliException("--trace-file, --trace-format, --trace-limit and --trace-max-bytes need --trace CLASSES");
        if (o.Wait && o.GdbPort < 0) throw new CliException("--wait needs --gdb PORT");
        if (o.GdbSymbols != null && o.GdbPort < 0) throw new CliException("--gdb-symbols needs --gdb PORT");
        return (o, rest.ToArray());
    }

    /// <summary>A byte count with an optional K, M or G suffix (at least 1 byte).</summary>
    private static ulong ParseBytes(string s)
    {
        string t = s.Trim().ToUpperInvariant();
        ulong mult = 1;
        if (t.EndsWith('K')) { mult = 1UL << 10; t = t[..^1]; }
        else if (t.EndsWith('M')) { mult = 1UL << 20; t = t[..^1]; }
        else if (t.EndsWith('G')) { mult = 1UL << 30; t = t[..^1]; }
        if (!ulong.TryParse(t, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out ulong n) || n == 0 || n > ulong.MaxValue / mult)
            throw new CliException($"option --trace-max-bytes needs a size such as 1000000, 64K, 100M or 2G, not '{s}'");
        return n * mult;
    }

    /// <summary>
    /// The kernel's symbols plus those of --symbols, which are added to the machine's own the first time (so that the
    /// stop report names addresses with them too, with or without --trace and --gdb).
    /// </summary>
    public SymbolTable Symbols(Machine m)
    {
        if (SymbolsFile is not null && _symbolsAdded != m)
        {
            try
            {
                m.Symbols.AddRange(SymbolFiles.Read(File.ReadAllBytes(SymbolsFile)));
                _symbolsAdded = m;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or Emu64.Loader.ImageException)
            { throw new CliException($"cannot read symbols from '{SymbolsFile}': {e.Message}"); }
        }
        return new SymbolTable(m.Symbols);
    }
    private Machine? _symbolsAdded;

    /// <summary>Creates the tracer for a machine (null without --trace).</summary>
    public Tracer? CreateTracer(Machine m, SymbolTable syms)
    {
        if (Trace == TraceClass.None) return null;
        TextWriter w;
        bool owns = TraceFile != null;
        if (TraceFile != null)
        {
            try { w = new StreamWriter(TraceFile, append: false) { AutoFlush = false }; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            { throw new CliException($"cannot write trace file '{TraceFile}': {e.Message}"); }
        }
        else if (Cli.ErrRedirected) w = Cli.Err;
        else w = new StreamWriter(Console.OpenStandardError()) { AutoFlush = false };
        return new Tracer(m, Trace, TraceFormat, w, TraceLimit, syms, ownsWriter: owns) { MaxBytes = TraceMaxBytes };
    }
}
