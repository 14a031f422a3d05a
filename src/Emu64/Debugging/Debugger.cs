using Iced.Intel;
using Emu64.Cpu;

namespace Emu64.Debugging;

public enum StopKind { None, Step, Breakpoint, HardwareBreakpoint, Watchpoint, Boundary, Interrupted, Exited }

public enum WatchKind { Write, Read, Access }

/// <summary>A data watchpoint on linear addresses [Address, Address+Length).</summary>
public readonly record struct Watchpoint(ulong Address, ulong Length, WatchKind Kind);

/// <summary>Why the debugger has the machine stopped.</summary>
public sealed record StopInfo(StopKind Kind, ulong Rip, ulong WatchAddress = 0, WatchKind WatchKind = WatchKind.Write, BoundaryEvent? Event = null);

/// <summary>
/// Run control shared by the gdb stub and `emu64 debug`: breakpoints and watchpoints on linear
/// addresses (they never patch guest memory and keep working across CR3 switches, because they are
/// compared with RIP and with the linear addresses an instruction accesses), single-stepping, and
/// running to the next boundary event. While any of these is armed the machine runs one instruction
/// per block with this object as its instruction hook; otherwise the machine runs at full speed.
/// </summary>
public sealed class Debugger : IInstructionHook, IBoundaryListener
{
    public readonly Machine M;
    public readonly SymbolTable Symbols;
    public readonly Disassembler Disasm;
    public Tracer? Trace { get; set; }

    public readonly SortedSet<ulong> Breakpoints = new(), HardwareBreakpoints = new();
    public readonly List<Watchpoint> Watchpoints = new();
    /// <summary>The most recent boundary events (newest last), for display.</summary>
    public readonly List<BoundaryEvent> RecentEvents = new();

    public StopInfo LastStop { get; private set; }

    private ulong _stepsLeft;
    private Func<BoundaryEvent, bool>? _stopOnEvent;
    private ulong? _skipBreakAt;
    private ulong _retiredBefore;
    private bool _eventSeen;
    private (ulong Addr, WatchKind Kind)? _watchHit;
    private readonly InstructionInfoFactory _info = new();

    public Debugger(Machine m, SymbolTable symbols)
    {
        M = m;
        Symbols = symbols;
        Disasm = new Disassembler(m, symbols);
        m.Events.Subscribe(this);
        LastStop = new StopInfo(StopKind.None, m.Cpu.Rip);
    }

    public ulong Rip => M.Cpu.Is64 ? M.Cpu.Rip : (M.Cpu.Segs[Seg.CS].Base + M.Cpu.Rip) & 0xFFFFFFFF;

    public bool CanRun => M.StopReason is StopReason.None or StopReason.Break;

    /// <summary>Keeps one-instruction blocks on exactly while something needs them.</summary>
    public void UpdateHook()
    {
        bool on = _stepsLeft > 0 || Breakpoints.Count > 0 || HardwareBreakpoints.Count > 0 || Watchpoints.Count > 0
                  || (Trace?.WantsInstructions ?? false);
        M.DebugStepHook = on;
        M.InstructionHook = on ? this : null;
    }

    // ---- run control ---------------------------------------------------------------------------

    /// <summary>Executes <paramref name="n"/> instructions (an exception or interrupt delivery counts as the step that caused it).</summary>
    public StopInfo Step(ulong n = 1) => Resume(steps: Math.Max(1, n), stopOn: null, budget: ulong.MaxValue);

    /// <summary>Runs until a breakpoint, watchpoint, a boundary event matching <paramref name="stopOn"/>, the end of the run, or <paramref name="budget"/> instructions.</summary>
    public StopInfo Continue(Func<BoundaryEvent, bool>? stopOn = null, ulong budget = ulong.MaxValue) => Resume(0, stopOn, budget);

    /// <summary>Continues the current run for up to <paramref name="budget"/> instructions without re-arming anything (the gdb stub's time slices).</summary>
    public StopInfo? RunSlice(ulong budget)
    {
        if (!CanRun) return Exited();
        M.ClearBreak();
        LastStop = new StopInfo(StopKind.None, Rip);
        var r = M.Run(budget);
        if (r == StopReason.None) return null;
        return Finish(r);
    }

    private StopInfo Resume(ulong steps, Func<BoundaryEvent, bool>? stopOn, ulong budget)
    {
        if (!CanRun) return Exited();
        _stepsLeft = steps;
        _stopOnEvent = stopOn;
        _skipBreakAt = Rip;          // resuming from a breakpoint must not stop on it again
        _watchHit = null;
        UpdateHook();
        M.ClearBreak();
        LastStop = new StopInfo(StopKind.None, Rip);
        var r = M.Run(budget);
        if (r == StopReason.None) { Disarm(); return LastStop = new StopInfo(StopKind.Interrupted, Rip); }
        return Finish(r);
    }

    private StopInfo Finish(StopReason r)
    {
        if (r != StopReason.Break) { Disarm(); return Exited(); }
        if (LastStop.Kind == StopKind.None) LastStop = new StopInfo(StopKind.Interrupted, Rip);
        Disarm();
        return LastStop;
    }

    /// <summary>The gdb stub's Ctrl-C: marks the stop as an interrupt (the machine is already between slices).</summary>
    public StopInfo Interrupt() { Disarm(); return LastStop = new StopInfo(StopKind.Interrupted, Rip); }

    /// <summary>Arms a continue for the gdb stub's slices: breakpoints stay armed, stepping off.</summary>
    public void ArmContinue(ulong steps)
    {
        _stepsLeft = steps;
        _stopOnEvent = null;
        _skipBreakAt = Rip;
        _watchHit = null;
        UpdateHook();
    }

    private void Disarm()
    {
        _stepsLeft = 0;
        _stopOnEvent = null;
        _skipBreakAt = null;
        UpdateHook();
    }

    private StopInfo Exited() => LastStop = new StopInfo(StopKind.Exited, Rip);

    // ---- the instruction hook ------------------------------------------------------------------

    public bool BeforeInstruction()
    {
        ulong rip = Rip;
        bool skip = _skipBreakAt == rip;
        _skipBreakAt = null;
        if (!skip)
        {
            if (Breakpoints.Contains(rip)) { LastStop = new StopInfo(StopKind.Breakpoint, rip); return false; }
            if (HardwareBreakpoints.Contains(rip)) { LastStop = new StopInfo(StopKind.HardwareBreakpoint, rip); return false; }
        }
        _retiredBefore = M.Cpu.Retired;
        _eventSeen = false;
        _watchHit = Watchpoints.Count > 0 ? CheckWatches(rip) : null;
        Trace?.BeforeInstruction();
        return true;
    }

    public void AfterInstruction()
    {
        Trace?.AfterInstruction();
        bool retired = M.Cpu.Retired != _retiredBefore;
        if (retired && _watchHit is { } w && LastStop.Kind == StopKind.None)
        {
            LastStop = new StopInfo(StopKind.Watchpoint, Rip, w.Addr, w.Kind);
            M.Stop(StopReason.Break);
        }
        _watchHit = null;
        if (_stepsLeft > 0 && (retired || _eventSeen))
        {
            _eventSeen = false;
            _retiredBefore = M.Cpu.Retired;
            if (--_stepsLeft == 0 && LastStop.Kind == StopKind.None)
            {
                LastStop = new StopInfo(StopKind.Step, Rip);
                M.Stop(StopReason.Break);
            }
        }
    }

    /// <summary>Every PCID seen in a CR3 value written while CR4.PCIDE=1.</summary>
    public readonly SortedSet<int> PcidsSeen = new();

    public void OnEvent(in BoundaryEvent e)
    {
        _eventSeen = true;
        if (!Symbols.SlideKnown) Symbols.DetectSlide(M);
        if (e.Kind == BoundaryKind.Cr3Write && M.Cpu.PcidOn) { PcidsSeen.Add((int)(e.OldCr3 & 0xFFF)); PcidsSeen.Add((int)(e.NewCr3 & 0xFFF)); }
        RecentEvents.Add(e);
        if (RecentEvents.Count > 256) RecentEvents.RemoveRange(0, 128);
        if (_stopOnEvent is { } f && f(e) && LastStop.Kind == StopKind.None)
        {
            LastStop = new StopInfo(StopKind.Boundary, Rip, Event: e);
            M.Stop(StopReason.Break);
        }
    }

    /// <summary>
    /// The linear addresses the instruction at RIP will access (Iced's instruction info with the
    /// current register values), checked against the watchpoints. String instructions are checked at
    /// their first element; implicit accesses of exception delivery are not watched.
    /// </summary>
    private (ulong, WatchKind)? CheckWatches(ulong rip)
    {
        if (Disasm.One(rip) is not { } line) return null;
        var insn = line.Instruction;
        var c = M.Cpu;
        var info = _info.GetInfo(insn);
        foreach (var mem in info.GetUsedMemory())
        {
            ulong next = insn.NextIP;
            if (!mem.TryGetVirtualAddress(0, out ulong la, (Register reg, int _, int _, out ulong value) => RegValue(c, next, reg, out value)))
                continue;
            ulong size = (ulong)Math.Max(1, mem.MemorySize.GetSize());
            bool reads = mem.Access is OpAccess.Read or OpAccess.CondRead or OpAccess.ReadWrite or OpAccess.ReadCondWrite;
            bool writes = mem.Access is OpAccess.Write or OpAccess.CondWrite or OpAccess.ReadWrite or OpAccess.ReadCondWrite;
            foreach (var w in Watchpoints)
            {
                if (la >= w.Address + w.Length || la + size <= w.Address) continue;
                bool hit = w.Kind switch { WatchKind.Write => writes, WatchKind.Read => reads, _ => reads || writes };
                if (hit) return (w.Address, w.Kind);
            }
        }
        return null;
    }

    private static bool RegValue(Emu64.Cpu.Cpu c, ulong nextIp, Register reg, out ulong value)
    {
        value = 0;
        if (reg.IsSegmentRegister())
        {
            int s = reg switch { Register.ES => Seg.ES, Register.CS => Seg.CS, Register.SS => Seg.SS, Register.DS => Seg.DS, Register.FS => Seg.FS, _ => Seg.GS };
            value = c.Is64 && s < Seg.FS ? 0 : c.Segs[s].Base;
            return true;
        }
        if (reg is Register.RIP or Register.EIP) { value = nextIp; return true; }
        if (!reg.IsGPR()) return false;
        int num = reg.GetFullRegister() - Register.RAX;
        if (num < 0 || num > 15) return false;
        value = c.R[num];
        int size = reg.GetSize();
        if (size < 8) value &= (1UL << (size * 8)) - 1;
        return true;
    }
}
