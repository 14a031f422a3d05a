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
        // Watchpoints are compared with the linear addresses the instructions really access, by the same path as the
        // guest's data breakpoints (Cpu.WatchAccess): every iteration of a string instruction, pushes and pops too.
        var w = new Emu64.Cpu.Cpu.HostWatch[Watchpoints.Count];
        for (int k = 0; k < w.Length; k++)
        {
            var p = Watchpoints[k];
            w[k] = new(p.Address, p.Length, p.Kind != WatchKind.Write, p.Kind != WatchKind.Read);
        }
        if (w.Length != 0 || M.Cpu.HostWatches.Length != 0) { M.Cpu.SetHostWatches(w); _armedWatches = Watchpoints.ToArray(); }
    }

    private Watchpoint[] _armedWatches = [];

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
        Trace?.BeforeInstruction();
        return true;
    }

    public void AfterInstruction()
    {
        Trace?.AfterInstruction();
        bool retired = M.Cpu.Retired != _retiredBefore;
        int hit = M.Cpu.HostWatchHit;
        M.Cpu.HostWatchHit = -1;
        if (hit >= 0 && hit < _armedWatches.Length) _watchHit = (_armedWatches[hit].Address, _armedWatches[hit].Kind);
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
}
