using System.Text;
using System.Text.Json;
using Emu64.Cpu;

namespace Emu64.Debugging;

[Flags]
public enum TraceClass { None = 0, Boundary = 1, Insn = 2, Tlb = 4 }

public enum TraceFormat { Text, Jsonl }

/// <summary>
/// The --trace output: boundary events (SYSCALL/SYSRET, interrupts, exceptions with vector, error code
/// and CR2, IRET, CR3 writes with old/new PCID, NOFLUSH and entries dropped), every instruction with
/// symbol, disassembly and changed registers, and TLB events (fills and evictions from the model's
/// listener, invalidations by cause, flushing CR3 writes). Each record carries the retired
/// instruction count and the CPL. Output stops after <see cref="Limit"/> records or <see cref="MaxBytes"/>
/// bytes, whichever comes first, with a last line saying so. Instruction tracing runs the machine one instruction per block; the other classes cost
/// nothing on the instruction path.
/// </summary>
public sealed class Tracer : IBoundaryListener, IInstructionHook, IDisposable
{
    private readonly Machine _m;
    private readonly TextWriter _w;
    private readonly bool _ownsWriter;
    private readonly Disassembler _dis;
    private readonly RegSnapshot _before = new(), _after = new();
    private ulong _retiredBefore, _ripBefore;
    private DisasmLine? _line;
    private int _cplBefore;
    public TraceClass Classes { get; }
    public TraceFormat Format { get; }
    public ulong Limit { get; }
    public ulong Records { get; private set; }
    public bool LimitReached { get; private set; }

    /// <summary>Bytes of trace output before tracing stops (ulong.MaxValue: no cap).</summary>
    public ulong MaxBytes { get; init; } = ulong.MaxValue;
    /// <summary>Bytes written so far (records and their newlines; the text is ASCII).</summary>
    public ulong Bytes { get; private set; }

    public Tracer(Machine m, TraceClass classes, TraceFormat format, TextWriter w, ulong limit, SymbolTable syms, bool ownsWriter = false)
    {
        _m = m; _w = w; _ownsWriter = ownsWriter;
        Classes = classes; Format = format; Limit = limit == 0 ? ulong.MaxValue : limit;
        _dis = new Disassembler(m, syms);
        if ((classes & (TraceClass.Boundary | TraceClass.Tlb)) != 0) m.Events.Subscribe(this);
        if ((classes & TraceClass.Tlb) != 0)
            m.Cpu.Mmu.Listener = _tlbListener = new TlbListener(this);
    }

    private readonly TlbListener? _tlbListener;

    /// <summary>Turns the TLB model's fills, evictions and invalidations into trace events (the model's flushes by CR3 come from the boundary path, with their PCIDs).</summary>
    private sealed class TlbListener(Tracer t) : Emu64.Mmu.ITlbListener
    {
        public void OnFill(Emu64.Mmu.TlbArray a, in Emu64.Mmu.TlbEntry entry, in Emu64.Mmu.TlbEntry replaced)
        {
            if (replaced.Valid && !(replaced.Vpn == entry.Vpn && replaced.Flags == entry.Flags && replaced.Pcid == entry.Pcid))
                t.OnTlbEvent(Describe(TlbEventKind.Evict, a, replaced));
            t.OnTlbEvent(Describe(TlbEventKind.Fill, a, entry));
        }

        private TlbEvent Describe(TlbEventKind kind, Emu64.Mmu.TlbArray a, in Emu64.Mmu.TlbEntry e)
        {
            int shift = a.KeyShift != 0 ? a.KeyShift : Emu64.Mmu.TlbArray.Shift(e.Size);
            ulong la = e.Vpn << shift;
            int top = (t._m.Cpu.CR4 & Emu64.Cpu.Cr4.La57) != 0 ? 56 : 47;
            if ((la & (1UL << top)) != 0) la |= ~0UL << top;   // the canonical form (4- or 5-level)
            return new TlbEvent(kind, a.Name, la, e.Pcid, e.Global, kind == TlbEventKind.Fill ? "fill" : "replaced", 0, e.Frame, 1UL << shift);
        }

        public void OnInvalidate(Emu64.Mmu.FlushCause cause, int tlb, int psc)
        {
            if (cause is Emu64.Mmu.FlushCause.Cr3 or Emu64.Mmu.FlushCause.Cr3NoFlush) return;
            string name = cause switch
            {
                Emu64.Mmu.FlushCause.PageFault => "pagefault", Emu64.Mmu.FlushCause.Invlpg => "invlpg",
                _ => cause.ToString().ToLowerInvariant(),
            };
            t.OnTlbEvent(new TlbEvent(TlbEventKind.Invalidate, "all", 0, t._m.Cpu.CurrentPcid, false, name, tlb, PscDropped: psc));
        }
    }

    /// <summary>True while instruction records are wanted (the owner keeps <see cref="Machine.DebugStepHook"/> set).</summary>
    public bool WantsInstructions => (Classes & TraceClass.Insn) != 0 && !LimitReached;

    /// <summary>Installs this tracer as the machine's instruction hook (when no debugger is attached).</summary>
    public void AttachAlone()
    {
        if (!WantsInstructions) return;
        _m.InstructionHook = this;
        _m.DebugStepHook = true;
    }

    public static TraceClass ParseClasses(string s)
    {
        var c = TraceClass.None;
        foreach (var part in s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            c |= part switch
            {
                "boundary" => TraceClass.Boundary,
                "insn" or "instructions" => TraceClass.Insn,
                "tlb" => TraceClass.Tlb,
                "all" => TraceClass.Boundary | TraceClass.Insn | TraceClass.Tlb,
                _ => throw new ArgumentException($"unknown trace class '{part}' (boundary, insn, tlb, all)"),
            };
        if (c == TraceClass.None) throw new ArgumentException("--trace needs at least one class (boundary, insn, tlb)");
        return c;
    }

    // ---- instructions --------------------------------------------------------------------------

    public bool BeforeInstruction()
    {
        if (!WantsInstructions) return true;
        var c = _m.Cpu;
        _retiredBefore = c.Retired;
        _ripBefore = c.Rip;
        _cplBefore = c.Cpl;
        _before.Capture(c);
        _line = _dis.One(c.Is64 ? c.Rip : (c.Segs[Seg.CS].Base + c.Rip) & 0xFFFFFFFF);
        return true;
    }

    public void AfterInstruction()
    {
        if (!WantsInstructions || _m.Cpu.Retired == _retiredBefore) return;
        _after.Capture(_m.Cpu);
        var changes = _after.Changes(_before).ToList();
        string text = _line?.Text ?? "(unreadable)";
        string? sym = _dis.Symbols.Describe(_ripBefore);
        if (Format == TraceFormat.Text)
        {
            var sb = new StringBuilder();
            sb.Append($"{_retiredBefore,10} cpl={_cplBefore} insn {_ripBefore:x16}");
            if (sym != null) sb.Append($" <{sym}>");
            sb.Append($"  {text}");
            foreach (var (n, v) in changes) if (n != "rip") sb.Append($"  {n}={v:x}");
            Emit(sb.ToString());
        }
        else
        {
            var regs = new Dictionary<string, string>();
            foreach (var (n, v) in changes) regs[n] = $"0x{v:x}";
            EmitJson(new Dictionary<string, object?>
            {
                ["n"] = _retiredBefore, ["cpl"] = _cplBefore, ["type"] = "insn", ["rip"] = $"0x{_ripBefore:x}",
                ["sym"] = sym, ["asm"] = text, ["bytes"] = _line is { } l ? Convert.ToHexString(l.Bytes).ToLowerInvariant() : null,
                ["changed"] = regs,
            });
        }
    }

    // ---- boundary events -----------------------------------------------------------------------

    public void OnEvent(in BoundaryEvent e)
    {
        if (!_dis.Symbols.SlideKnown) _dis.Symbols.DetectSlide(_m);
        if (e.Kind == BoundaryKind.Cr3Write && (Classes & TraceClass.Tlb) != 0)
        {
            // A flushing CR3 write, reported from here with its PCID (fills, evictions and other invalidations come from the model).
            bool pcide = _m.Cpu.PcidOn;
            var ev = new TlbEvent(TlbEventKind.Flush, "all", 0, pcide ? (int)(e.NewCr3 & 0xFFF) : 0, false,
                e.NoFlush ? "cr3-noflush" : "cr3", e.Dropped);
            if (!e.NoFlush) OnTlbEvent(in ev);
        }
        if ((Classes & TraceClass.Boundary) == 0) return;
        if (Format == TraceFormat.Text) Emit($"{e.Instructions,10} cpl={e.Cpl} {Describe(e, _m.Cpu.PcidOn, _dis.Symbols)}");
        else EmitJson(ToJson(e, _m.Cpu.PcidOn, _dis.Symbols));
    }

    public static string KindName(BoundaryKind k) => k switch
    {
        BoundaryKind.Syscall => "syscall", BoundaryKind.Sysret => "sysret", BoundaryKind.Interrupt => "interrupt",
        BoundaryKind.SoftwareInterrupt => "int", BoundaryKind.Exception => "exception", BoundaryKind.Iret => "iret",
        _ => "cr3",
    };

    /// <summary>One line describing a boundary event (shared by the trace and the debugger).</summary>
    public static string Describe(in BoundaryEvent e, bool pcide, SymbolTable syms)
    {
        string sym = syms.Describe(e.Rip) is { } s ? $" <{s}>" : "";
        return e.Kind switch
        {
            BoundaryKind.Cr3Write => $"cr3 {e.OldCr3:x} -> {e.NewCr3:x}" + (pcide ? $" pcid {e.OldCr3 & 0xFFF:x} -> {e.NewCr3 & 0xFFF:x}" : "")
                                     + (e.NoFlush ? " noflush" : " flush") + $" dropped={e.Dropped} rip={e.Rip:x}{sym}",
            BoundaryKind.Exception => $"exception {Vec.Name(e.Vector)} vector={e.Vector}" + (e.HasErrorCode ? $" error={e.ErrorCode:x}" : "")
                                      + (e.Vector == Vec.PF ? $" cr2={e.Cr2:x}" : "") + $" rip={e.Rip:x}{sym}",
            BoundaryKind.Interrupt or BoundaryKind.SoftwareInterrupt => $"{KindName(e.Kind)} vector={e.Vector} rip={e.Rip:x}{sym}",
            _ => $"{KindName(e.Kind)} rip={e.Rip:x}{sym}",
        };
    }

    public static Dictionary<string, object?> ToJson(in BoundaryEvent e, bool pcide, SymbolTable syms)
    {
        var d = new Dictionary<string, object?>
        {
            ["n"] = e.Instructions, ["cpl"] = e.Cpl, ["type"] = KindName(e.Kind), ["rip"] = $"0x{e.Rip:x}", ["sym"] = syms.Describe(e.Rip),
        };
        if (e.Kind is BoundaryKind.Exception or BoundaryKind.Interrupt or BoundaryKind.SoftwareInterrupt) d["vector"] = e.Vector;
        if (e.Kind == BoundaryKind.Exception)
        {
            if (e.HasErrorCode) d["error"] = e.ErrorCode;
            if (e.Vector == Vec.PF) d["cr2"] = $"0x{e.Cr2:x}";
        }
        if (e.Kind == BoundaryKind.Cr3Write)
        {
            d["old_cr3"] = $"0x{e.OldCr3:x}"; d["new_cr3"] = $"0x{e.NewCr3:x}";
            if (pcide) { d["old_pcid"] = (int)(e.OldCr3 & 0xFFF); d["new_pcid"] = (int)(e.NewCr3 & 0xFFF); }
            d["noflush"] = e.NoFlush; d["dropped"] = e.Dropped;
        }
        return d;
    }

    // ---- TLB events ----------------------------------------------------------------------------

    private void OnTlbEvent(in TlbEvent e)
    {
        if ((Classes & TraceClass.Tlb) == 0) return;
        string kind = e.Kind.ToString().ToLowerInvariant();
        bool entry = e.Kind is TlbEventKind.Fill or TlbEventKind.Evict;
        if (Format == TraceFormat.Text)
        {
            string head = $"{_m.Cpu.Retired,10} cpl={_m.Cpu.Cpl} tlb {kind} {e.Structure}";
            if (entry)
                Emit($"{head} la={e.Linear:x} pcid={e.Pcid:x} frame={e.Frame:x} size={SizeName(e.PageSize)}{(e.Global ? " global" : "")}");
            else if (e.Kind == TlbEventKind.Invalidate)
                Emit($"{head} pcid={e.Pcid:x} cause={e.Cause} dropped={e.Dropped} psc_dropped={e.PscDropped}");
            else
                Emit($"{head} la={e.Linear:x} pcid={e.Pcid:x}{(e.Global ? " global" : "")} cause={e.Cause} dropped={e.Dropped}");
        }
        else
        {
            var d = new Dictionary<string, object?>
            {
                ["n"] = _m.Cpu.Retired, ["cpl"] = _m.Cpu.Cpl, ["type"] = "tlb", ["event"] = kind, ["structure"] = e.Structure, ["pcid"] = e.Pcid,
            };
            if (entry)
            {
                d["la"] = $"0x{e.Linear:x}"; d["frame"] = $"0x{e.Frame:x}"; d["page_size"] = e.PageSize; d["global"] = e.Global;
            }
            else
            {
                if (e.Kind == TlbEventKind.Flush) { d["la"] = $"0x{e.Linear:x}"; d["global"] = e.Global; }
                d["cause"] = e.Cause; d["dropped"] = e.Dropped;
                if (e.Kind == TlbEventKind.Invalidate) d["psc_dropped"] = e.PscDropped;
            }
            EmitJson(d);
        }
    }

    private static string SizeName(ulong size) => size switch
    {
        0x1000 => "4k", 0x200000 => "2m", 0x40000000 => "1g",
        _ => size >= 1UL << 30 ? $"{size >> 30}g" : $"{size >> 10}k",
    };

    // ---- output --------------------------------------------------------------------------------

    /// <summary>Plain ASCII where possible ("name+0x10", not "name\u002B0x10"); still valid JSON.</summary>
    private static readonly JsonSerializerOptions JsonOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private void EmitJson(Dictionary<string, object?> d) => Emit(JsonSerializer.Serialize(d, JsonOptions));

    private void Emit(string line)
    {
        if (LimitReached) return;
        bool bytesHit = Bytes + (ulong)line.Length + 1 > MaxBytes;
        if (Records >= Limit || bytesHit)
        {
            LimitReached = true;
            if (bytesHit)
                _w.WriteLine(Format == TraceFormat.Text ? $"trace size limit {MaxBytes} bytes reached; tracing stopped" : JsonSerializer.Serialize(new { type = "limit", max_bytes = MaxBytes }));
            else
                _w.WriteLine(Format == TraceFormat.Text ? $"trace limit {Limit} reached; tracing stopped" : JsonSerializer.Serialize(new { type = "limit", limit = Limit }));
            _m.Events.Unsubscribe(this);
            DetachTlbListener();
            if (ReferenceEquals(_m.InstructionHook, this)) { _m.DebugStepHook = false; _m.InstructionHook = null; }
            return;
        }
        Records++;
        Bytes += (ulong)line.Length + 1;
        _w.WriteLine(line);
    }

    public void Dispose()
    {
        _w.Flush();
        _m.Events.Unsubscribe(this);
        DetachTlbListener();
        if (_ownsWriter) _w.Dispose();
    }

    private void DetachTlbListener()
    {
        if (_tlbListener != null && ReferenceEquals(_m.Cpu.Mmu.Listener, _tlbListener)) _m.Cpu.Mmu.Listener = null;
    }
}
