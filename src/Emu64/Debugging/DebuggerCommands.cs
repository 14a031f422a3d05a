using System.Text;
using Emu64.Cpu;

namespace Emu64.Debugging;

/// <summary>
/// The command language of `emu64 debug` (and the gdb stub's `monitor` commands): each command line
/// in, text out. Nothing here reads the console, so a script file drives it as well as a person.
/// </summary>
public sealed class DebuggerCommands
{
    private readonly Debugger _d;
    private Dictionary<string, ulong> _mark = new();
    private ulong _markAt;
    private int _nextWatch = 1;
    public bool QuitRequested { get; private set; }

    public DebuggerCommands(Debugger d)
    {
        _d = d;
        Mark();
    }

    private Machine M => _d.M;

    public const string Help = """
        step [N]                 execute N instructions (default 1)
        stepb                    run to the next boundary event (SYSCALL/SYSRET, interrupt, exception, IRET, CR3 write)
        until syscall|sysret|iret|cr3|exception|interrupt
                                 run to the next event of that kind
        until syscall NR [ADDR]  run to the next SYSCALL whose RAX (the system call number) is NR [made by the
                                 SYSCALL instruction at the user address ADDR]
        continue                 run until a breakpoint, watchpoint or the end of the run
        break ADDR|SYMBOL        breakpoint on a linear address (no guest memory is patched)
        hbreak ADDR|SYMBOL       hardware-style breakpoint (the same check; reported as hwbreak to gdb)
        watch|rwatch|awatch ADDR [LEN]
                                 data watchpoint (write / read / access) on linear addresses
        delete [ADDR|SYMBOL]     delete one breakpoint/watchpoint, or all of them
        info                     list breakpoints and watchpoints
        dr                       the guest's debug registers DR0-DR3, DR6, DR7, decoded
        nmi                      pulse LINT1 (the NMI line): an NMI if LVT LINT1 is in NMI mode or the APIC is off
        regs                     general registers, RIP, RFLAGS, segments
        cr                       control registers and EFER, decoded
        msr NAME|NUM             read an MSR (efer, star, lstar, kernel_gs_base, ...)
        x[/Nf] ADDR              memory at a linear address through the current page tables (f: b h w g, x d,
                                 or i for instructions; N units; default /8g), without side effects
        xp[/Nf] ADDR             physical memory
        disas [ADDR] [N]         disassemble N instructions (default: 8 at RIP)
        walk ADDR [CR3]          page walk: each level's table, entry, flags, and where the translation is found
        ptdump [CR3]             mapped ranges with flags, like Linux's ptdump
        tlb | tlb stats          TLB contents per structure (PCID, global) / TLB counters
        pcid                     the current PCID and which PCIDs have live entries
        stats                    counters since start and since the last mark
        mark                     start a new measurement interval for stats
        events [N]               the last N boundary events
        dump FILE                write guest memory and CPU state to FILE as an ELF core (QEMU's dump-guest-memory
                                 layout; also dump-guest-memory FILE); read it with emu64 analyze, crash, volatility3
        kaslr [OFFSET]           show or set the KASLR offset applied to symbols (learned from the kernel's _text
                                 announcement or from LSTAR; for a kernel without a symbol file, from its own kallsyms)
        sym NAME|ADDR            a symbol's address, or the symbol that covers an address
        help                     this text
        quit                     leave the debugger
        Numbers are read as gdb reads them: decimal, or hexadecimal after 0x (step 1000 runs 1000
        instructions, step 0x1000 runs 4096). ADDR is a number (0xffffffff81000000), SYMBOL, SYMBOL+OFF
        (entry_SYSCALL_64+0x10), or $reg ($rip, $rsp, $cr3 ...).
        """;

    public string Execute(string line)
    {
        string t = line.Trim();
        if (t.Length == 0 || t.StartsWith('#')) return "";
        var parts = t.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        string cmd = parts[0].ToLowerInvariant();
        var args = parts.Skip(1).ToArray();
        try
        {
            string fmt = "";
            if (cmd.Contains('/')) { fmt = cmd[(cmd.IndexOf('/') + 1)..]; cmd = cmd[..cmd.IndexOf('/')]; }
            return cmd switch
            {
                "help" or "h" or "?" => Help + "\n",
                "step" or "s" or "si" or "stepi" => Stopped(_d.Step(args.Length > 0 ? Number(args[0]) : 1)),
                "stepb" => Stopped(_d.Continue(_ => true)),
                "until" => Until(args),
                "continue" or "c" or "cont" => Stopped(_d.Continue()),
                "break" or "b" => Break(args),
                "hbreak" => HBreak(args),
                "dr" => MachineInfo.DebugRegs(M),
                "nmi" => Nmi(),
                "watch" => Watch(args, WatchKind.Write),
                "rwatch" => Watch(args, WatchKind.Read),
                "awatch" => Watch(args, WatchKind.Access),
                "delete" or "d" => Delete(args),
                "info" => Info(),
                "regs" or "r" => MachineInfo.Regs(M),
                "cr" => MachineInfo.ControlRegs(M),
                "msr" => args.Length == 1 ? MachineInfo.ReadMsr(M, args[0]) + "\n" : "usage: msr NAME|NUM\n",
                "x" => Examine(fmt, args, physical: false),
                "xp" => Examine(fmt, args, physical: true),
                "disas" or "u" => Disas(args),
                "walk" => args.Length is 1 or 2 ? MachineInfo.Walk(M, Addr(args[0]), args.Length == 2 ? Addr(args[1]) : null) : "usage: walk ADDR [CR3]\n",
                "ptdump" => PtDump.Format(M, args.Length > 0 ? Addr(args[0]) : M.Cpu.CR3),
                "tlb" => MachineInfo.Tlb(M, args.Length > 0 && args[0] == "stats"),
                "pcid" => MachineInfo.Pcid(M, _d.PcidsSeen),
                "stats" => Stats(),
                "mark" => Mark(),
                "kaslr" => Kaslr(args),
                "sym" => Sym(args),
                "dump" or "dump-guest-memory" => DumpCommand.Execute(M, args),
                "events" => Events(args.Length > 0 ? (int)Number(args[0]) : 10),
                "quit" or "q" or "exit" => Quit(),
                _ => $"unknown command '{cmd}' (try help)\n",
            };
        }
        catch (FormatException e) { return e.Message + "\n"; }
    }

    private string Quit() { QuitRequested = true; return ""; }

    // ---- values --------------------------------------------------------------------------------

    private static ulong Number(string s)
        => SymbolTable.TryParseNumber(s, out ulong v) ? v : throw new FormatException($"'{s}' is not a number ({SymbolTable.NumberSyntax})");

    /// <summary>A linear address: number, symbol[+off], or $register.</summary>
    public ulong Addr(string s)
    {
        if (s.StartsWith('$'))
        {
            string r = s[1..].ToLowerInvariant();
            var c = M.Cpu;
            int gpr = Array.IndexOf(Reg.Names64, r);
            if (gpr >= 0) return c.R[gpr];
            return r switch
            {
                "rip" or "pc" => c.Rip, "cr0" => c.CR0, "cr2" => c.CR2, "cr3" => c.CR3, "cr4" => c.CR4,
                "fs_base" => c.Segs[Seg.FS].Base, "gs_base" => c.Segs[Seg.GS].Base,
                _ => throw new FormatException($"unknown register '{s}'"),
            };
        }
        if (_d.Symbols.TryParseAddress(s, out ulong a)) return a;
        throw new FormatException($"'{s}' is neither an address nor a known symbol ({SymbolTable.NumberSyntax})");
    }

    // ---- run control ---------------------------------------------------------------------------

    private string Until(string[] args)
    {
        if (args.Length is 2 or 3 && args[0].Equals("syscall", StringComparison.OrdinalIgnoreCase))
        {
            // At the Syscall event the CPU is at the kernel's entry, RAX still holds the number the program asked for
            // and RCX the address after its SYSCALL (0f 05, two bytes).
            ulong nr = Number(args[1]);
            ulong? at = args.Length == 3 ? Addr(args[2]) : null;
            return Stopped(_d.Continue(e => e.Kind == BoundaryKind.Syscall && M.Cpu.R[0] == nr && (at is null || M.Cpu.R[1] == at + 2)));
        }
        if (args.Length != 1) return "usage: until syscall [NR [ADDR]]|sysret|iret|cr3|exception|interrupt\n";
        BoundaryKind[] kinds = args[0].ToLowerInvariant() switch
        {
            "syscall" => [BoundaryKind.Syscall], "sysret" => [BoundaryKind.Sysret], "iret" => [BoundaryKind.Iret],
            "cr3" => [BoundaryKind.Cr3Write], "exception" => [BoundaryKind.Exception],
            "interrupt" => [BoundaryKind.Interrupt, BoundaryKind.SoftwareInterrupt],
            _ => throw new FormatException($"until: unknown event '{args[0]}' (syscall, sysret, iret, cr3, exception, interrupt)"),
        };
        return Stopped(_d.Continue(e => kinds.Contains(e.Kind)));
    }

    /// <summary>What happened and where the machine now is: the event or stop reason, CPL, CR3, PCID, and the next instruction.</summary>
    public string Stopped(StopInfo s)
    {
        var c = M.Cpu;
        var sb = new StringBuilder();
        string where = $"cpl={c.Cpl} cr3=0x{c.CR3:x} pcid=0x{c.CurrentPcid:x} rsp=0x{c.Rsp:x}";
        switch (s.Kind)
        {
            case StopKind.Boundary when s.Event is { } e:
                sb.Append($"[{Tracer.KindName(e.Kind)}] #{e.Instructions} {Tracer.Describe(e, c.PcidOn, _d.Symbols)}\n  now {where}\n");
                break;
            case StopKind.Breakpoint or StopKind.HardwareBreakpoint:
                sb.Append($"breakpoint at 0x{s.Rip:x}{Sym(s.Rip)}  {where}\n");
                break;
            case StopKind.Watchpoint:
                sb.Append($"watchpoint ({s.WatchKind.ToString().ToLowerInvariant()}) 0x{s.WatchAddress:x} hit; now at 0x{s.Rip:x}{Sym(s.Rip)}  {where}\n");
                break;
            case StopKind.Exited:
                if (M.StopReason is StopReason.TripleFault or StopReason.FaultLoop or StopReason.Unsupported)
                    // the same one-screen report as emu64 run: registers, the instruction at RIP, the last boundary events
                    sb.Append(StopReport.Format(M, $"the machine has stopped: {M.StopReason}: {M.StopMessage}", withEvents: true)).Append('\n');
                else
                    sb.Append($"the machine has stopped: {M.StopReason} {M.StopMessage} (exit code {M.ExitCode})\n");
                return sb.ToString();
            case StopKind.Step:
                sb.Append($"#{c.Retired} {where}\n");
                break;
            default:
                sb.Append($"stopped ({s.Kind}) {where}\n");
                break;
        }
        if (_d.Disasm.One(_d.Rip) is { } l) sb.Append("=> ").Append(Disassembler.Format(l)).Append('\n');
        return sb.ToString();
    }

    private string Sym(ulong a) => _d.Symbols.Describe(a) is { } n ? $" <{n}>" : "";

    private string Break(string[] args)
    {
        if (args.Length != 1) return "usage: break ADDR|SYMBOL\n";
        ulong a = Addr(args[0]);
        _d.Breakpoints.Add(a);
        return $"breakpoint at 0x{a:x}{Sym(a)}\n";
    }

    private string HBreak(string[] args)
    {
        if (args.Length != 1) return "usage: hbreak ADDR|SYMBOL\n";
        ulong a = Addr(args[0]);
        _d.HardwareBreakpoints.Add(a);
        return $"hardware breakpoint at 0x{a:x}{Sym(a)}\n";
    }

    /// <summary>Pulses the local APIC's LINT1 input, where a PC's NMI line arrives (QEMU's `nmi` does the same).</summary>
    private string Nmi()
    {
        bool before = M.NmiPending;
        M.Platform.Apic.Lint1();
        if (M.NmiPending && !before)
            return M.Cpu.NmiBlocked ? "NMI pending (the CPU is in an NMI handler: it is taken after the next IRET)\n"
                                    : "NMI pending: it is taken at the next instruction boundary\n";
        if (before) return "an NMI was already pending (NMIs do not queue beyond one)\n";
        uint lvt = M.Platform.Apic.LvtLint1;
        string why = (lvt & 0x10000) != 0 ? "masked" : "not in NMI mode";
        return $"LINT1 pulsed, no NMI: LVT LINT1 = 0x{lvt:x} ({why})\n";
    }

    private string Watch(string[] args, WatchKind kind)
    {
        if (args.Length is < 1 or > 2) return "usage: watch ADDR [LEN]\n";
        ulong a = Addr(args[0]);
        ulong len = args.Length == 2 ? Number(args[1]) : 8;
        if (len == 0 || len > 4096) return "watchpoint length must be 1..4096\n";
        _d.Watchpoints.Add(new Watchpoint(a, len, kind));
        return $"watchpoint {_nextWatch++} ({kind.ToString().ToLowerInvariant()}) on 0x{a:x}..0x{a + len:x}{Sym(a)}\n";
    }

    private string Delete(string[] args)
    {
        if (args.Length == 0)
        {
            int n = _d.Breakpoints.Count + _d.HardwareBreakpoints.Count + _d.Watchpoints.Count;
            _d.Breakpoints.Clear(); _d.HardwareBreakpoints.Clear(); _d.Watchpoints.Clear();
            return $"deleted {n} breakpoints and watchpoints\n";
        }
        ulong a = Addr(args[0]);
        bool removed = _d.Breakpoints.Remove(a) | _d.HardwareBreakpoints.Remove(a) | _d.Watchpoints.RemoveAll(w => w.Address == a) > 0;
        return removed ? $"deleted 0x{a:x}\n" : $"nothing set at 0x{a:x}\n";
    }

    private string Info()
    {
        var sb = new StringBuilder();
        foreach (var b in _d.Breakpoints) sb.Append($"breakpoint 0x{b:x}{Sym(b)}\n");
        foreach (var b in _d.HardwareBreakpoints) sb.Append($"hardware breakpoint 0x{b:x}{Sym(b)}\n");
        foreach (var w in _d.Watchpoints) sb.Append($"watchpoint ({w.Kind.ToString().ToLowerInvariant()}) 0x{w.Address:x} len {w.Length}\n");
        return sb.Length == 0 ? "no breakpoints or watchpoints\n" : sb.ToString();
    }

    // ---- memory --------------------------------------------------------------------------------

    private string Examine(string fmt, string[] args, bool physical)
    {
        if (args.Length != 1) return $"usage: {(physical ? "xp" : "x")}[/Nf] ADDR\n";
        int count = fmt.EndsWith('i') ? 1 : 8, unit = 8;
        bool dec = false;
        string digits = new(fmt.TakeWhile(char.IsDigit).ToArray());
        if (digits.Length > 0) count = Math.Clamp(int.Parse(digits), 1, 4096);
        if (fmt.EndsWith('i') && !physical)   // x/Ni ADDR: N instructions, as in gdb
            return Disas([args[0], count.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        foreach (char ch in fmt[digits.Length..])
            switch (ch)
            {
                case 'b': unit = 1; break; case 'h': unit = 2; break; case 'w': unit = 4; break; case 'g': unit = 8; break;
                case 'x': dec = false; break; case 'd' or 'u': dec = true; break;
                default: return $"unknown format letter '{ch}' (sizes b h w g, formats x d)\n";
            }
        ulong a = Addr(args[0]);
        var buf = new byte[count * unit];
        int n = physical ? PageWalker.ReadPhysical(M, a, buf) : PageWalker.ReadLinear(M, a, buf);
        var sb = new StringBuilder();
        int perLine = Math.Max(1, 16 / unit);
        for (int i = 0; i < count; i++)
        {
            int off = i * unit;
            if (i % perLine == 0) sb.Append(i == 0 ? "" : "\n").Append($"{a + (ulong)off:x16}{(physical ? "" : Sym(a + (ulong)off))}:");
            if (off + unit > n) { sb.Append(physical ? "  (outside RAM)" : "  (not mapped)"); break; }
            ulong v = 0;
            for (int k = unit - 1; k >= 0; k--) v = v << 8 | buf[off + k];
            sb.Append(dec ? $" {v}" : " 0x" + v.ToString("x" + unit * 2));
        }
        return sb.Append('\n').ToString();
    }

    private string Disas(string[] args)
    {
        ulong a = args.Length > 0 ? Addr(args[0]) : _d.Rip;
        int n = args.Length > 1 ? (int)Math.Clamp(Number(args[1]), 1, 1000) : 8;
        var lines = _d.Disasm.Disassemble(a, n);
        if (lines.Count == 0) return $"0x{a:x}: not mapped\n";
        var sb = new StringBuilder();
        foreach (var l in lines) sb.Append(l.Address == _d.Rip ? "=> " : "   ").Append(Disassembler.Format(l)).Append('\n');
        return sb.ToString();
    }

    // ---- counters ------------------------------------------------------------------------------

    private string Mark()
    {
        _mark = MachineInfo.Counters(M).ToDictionary(k => k.Key, k => k.Value);
        _markAt = M.Cpu.Retired;
        return $"mark at instruction {_markAt}\n";
    }

    private string Stats()
    {
        var sb = new StringBuilder($"{"counter",-24}{"total",16}{"since mark",16}\n");
        foreach (var (k, v) in MachineInfo.Counters(M))
            sb.Append($"{k,-24}{v,16}{v - _mark.GetValueOrDefault(k),16}\n");
        if (TlbViews.For(M) is null) sb.Append($"(TLB counters: {TlbViews.NotModeled})\n");
        return sb.ToString();
    }

    private string Sym(string[] args)
    {
        if (args.Length != 1) return "usage: sym NAME|ADDR\n";
        var s = _d.Symbols;
        s.DetectSlide(M);
        if (s.TryResolve(args[0], out ulong a)) return $"{args[0]} = 0x{a:x}\n";
        if (SymbolTable.TryParseNumber(args[0], out a)) return s.Describe(a) is { } d ? $"0x{a:x} = {d}\n" : $"0x{a:x}: no symbol covers it\n";
        return s.Count == 0 ? $"no symbol '{args[0]}': no symbols yet (a kernel without a symbol file is named from its kallsyms once it has set LSTAR)\n"
                            : $"no symbol '{args[0]}'\n";
    }

    private string Kaslr(string[] args)
    {
        var s = _d.Symbols;
        if (args.Length == 1) { s.Slide = (long)Number(args[0]); return $"symbol offset set to 0x{s.Slide:x}\n"; }
        s.DetectSlide(M);
        if (s.Source == "kallsyms")
            return $"KASLR offset 0x{(ulong)s.KaslrOffset:x} (runtime _text 0x{Kallsyms.LinkText + (ulong)s.KaslrOffset:x}); {s.Count} symbols from the kernel's kallsyms, at their runtime addresses\n";
        return s.SlideKnown || s.Slide != 0 ? $"symbol offset 0x{s.Slide:x} (runtime = link address + offset)\n"
                                            : "symbol offset 0 (not known yet: the kernel has not announced _text or set LSTAR; use kaslr OFFSET, or boot with nokaslr)\n";
    }

    private string Events(int n)
    {
        var sb = new StringBuilder();
        foreach (var e in _d.RecentEvents.TakeLast(Math.Clamp(n, 1, 256)))
            sb.Append($"#{e.Instructions} cpl={e.Cpl} {Tracer.Describe(e, M.Cpu.PcidOn, _d.Symbols)}\n");
        return sb.Length == 0 ? "no boundary events yet\n" : sb.ToString();
    }
}
