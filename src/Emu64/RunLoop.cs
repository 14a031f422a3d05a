using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Emu64.Cpu;
using Emu64.Mmu;

namespace Emu64;

/// <summary>
/// The run loop: at each block boundary service due device events, take a pending interrupt, then run
/// a decoded block. Guest faults arrive as <see cref="GuestFault"/>, rewind RIP to the faulting
/// instruction and are delivered through the IDT.
/// </summary>
public sealed unsafe partial class Machine
{
    private readonly Insn[] _single = new Insn[1];

    /// <summary>
    /// Timer events a halted CPU may sleep through without taking an interrupt before the run ends
    /// (an interactive front end waiting for typed input raises it).
    /// </summary>
    public int IdleWakeupLimit = 100_000;
    private int _idleWakeups;

    /// <summary>Runs until the guest stops the machine or <paramref name="maxInstructions"/> more retire.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // long-running loop: no tier-0/OSR version
    public StopReason Run(ulong maxInstructions = ulong.MaxValue)
    {
        var cpu = Cpu;
        ulong limit = Options.MaxInstructions;
        ulong stopAt = maxInstructions == ulong.MaxValue ? ulong.MaxValue : cpu.Retired + maxInstructions;
        while (StopReason == StopReason.None)
        {
            if (cpu.Retired >= limit) { Stop(StopReason.InstructionLimit, 6, $"instruction limit {limit} reached"); break; }
            if (cpu.Retired >= stopAt) return StopReason.None;
            try
            {
                if (Now >= NextEventAt) ServiceEvents();
                bool shadow = cpu.InterruptShadow;
                cpu.InterruptShadow = false;
                // An NMI (SDM vol. 3A §6.7.1): not masked by IF, held off by the interrupt shadow and, after one is
                // delivered, until the next IRET. A single-step trap of HLT goes before it (higher priority).
                if (NmiPending && !shadow && !cpu.NmiBlocked)
                {
                    if (cpu.DbAfterHalt != 0) { DeliverHaltStep(cpu); continue; }
                    NmiTaken();
                    _idleWakeups = 0;
                    cpu.InsnRip = cpu.Rip;
                    cpu.DeliverNmi();
                    continue;
                }
                if (InterruptLine && cpu.If && !shadow && InterruptController is { } ic)
                {
                    if (cpu.Halted && cpu.DbAfterHalt != 0) { DeliverHaltStep(cpu); continue; }
                    int v = ic.Acknowledge();
                    if (v >= 0) { _idleWakeups = 0; cpu.InsnRip = cpu.Rip; cpu.DeliverExternal(v); continue; }
                }
                if (cpu.Halted)
                {
                    if (!cpu.If) { Stop(StopReason.Shutdown, 0, "HLT with interrupts disabled"); break; }
                    // Regions compiling in the background are not events a halted CPU waits for: install them now, so that
                    // idle time and the end of a run are those of a run that compiles nothing.
                    if (Compiler is { } bc && bc.NextEventAt != ulong.MaxValue) { bc.OnTime(ulong.MaxValue); RecomputeNextEvent(); }
                    if (NextEventAt == ulong.MaxValue) { Stop(StopReason.HaltedForever, 0, "HLT with no interrupt source left"); break; }
                    if (NextEventAt > Now) _idle += NextEventAt - Now;   // sleep until the next timer event
                    // Timers that keep firing into masked inputs would wake a halted CPU forever without an
                    // instruction retiring (so --max-instructions could not end the run): bound it.
                    if (++_idleWakeups > IdleWakeupLimit)
                    { Stop(StopReason.HaltedForever, 0, $"HLT: {IdleWakeupLimit} timer events passed and none reached the CPU (masked?)"); break; }
                    continue;
                }
                if (shadow || cpu.Tf || DebugStepHook || cpu.DebugArmed) { RunSingle(cpu); continue; }
                RunChain(cpu, Math.Min(limit, stopAt));
            }
            catch (GuestFault f)
            {
                // A faulting instruction completes nothing: no trap-like #DB follows it, and one held by MOV SS is lost.
                cpu.IterateSingly = false;
                cpu.DbHeld = 0;
                DeliverFaultLoop(f);
                if (DebugStepHook) InstructionHook?.AfterInstruction();   // a faulting step ends at the handler
            }
            catch (TripleFaultException t)
            {
                Stop(StopReason.TripleFault, 4, t.Message);
            }
            catch (UnsupportedFeatureException u)
            {
                Stop(StopReason.Unsupported, 8, u.Message);
            }
        }
        Com1.Flush();
        return StopReason;
    }

    /// <summary>
    /// Host-side counters of how the chain ran (profiling: bench's <c>profile-linux</c>, docs/PERFORMANCE.md); not guest
    /// state and not part of any model. <see cref="ChainCounters.CompiledRetired"/> is the part of the retired
    /// instructions that ran inside compiled regions; the exits say why a compiled region returned to the run loop.
    /// </summary>
    public readonly ChainCounters Chain = new();

    /// <summary>Guest time a halted CPU skipped to the next timer event (it cost no host time).</summary>
    public ulong IdleTicks => _idle - _stall;

    /// <summary>When set, the loop runs one instruction per block (debugger stepping, breakpoints).</summary>
    public bool DebugStepHook
    {
        get => (Attention & AttentionStep) != 0;
        set => SetAttention(AttentionStep, value);
    }

    /// <summary>How many exceptions may be delivered in a row without an instruction retiring before the run stops.</summary>
    public const int FaultLoopLimit = 10_000;
    private ulong _faultStreakRetired = ulong.MaxValue;
    private int _faultStreak;

    /// <summary>
    /// Called around every instruction while <see cref="DebugStepHook"/> is set (never otherwise, so the
    /// normal path pays only the one bool test it already had).
    /// </summary>
    public IInstructionHook? InstructionHook;

    /// <summary>One instruction (interrupt shadow, TF, hardware breakpoints, or a debugger/tracer hook), with the hook around it.</summary>
    private void RunSingle(Cpu.Cpu cpu)
    {
        var hook = DebugStepHook ? InstructionHook : null;
        if (hook != null && !hook.BeforeInstruction()) { Stop(StopReason.Break); return; }
        StepOne(cpu);
        if (cpu.DebugArmed) cpu.UpdateDebugArmed();   // RF was cleared, or an IRET loaded it
        hook?.AfterInstruction();
    }

    /// <summary>
    /// One instruction with the debug rules of SDM vol. 3B §18.3 around it. Before it: an enabled instruction breakpoint
    /// at its address raises a fault-like #DB (RIP at the instruction, RF=0 in the frame) unless RFLAGS.RF is set or
    /// the instruction follows MOV SS/POP SS; RF then clears (it suppresses the breakpoints of one instruction). After
    /// it completes: a trap-like #DB for the data and I/O breakpoints its accesses matched and for TF (DR6.BS, not after
    /// a software interrupt or ICEBP, whose delivery cleared TF). MOV SS/POP SS hold such a #DB until the next
    /// instruction completes; after HLT it waits for the wake-up.
    /// </summary>
    private void StepOne(Cpu.Cpu cpu)
    {
        if (cpu.TaskTrapPending)
        {
            // A task switch (by an interrupt or exception) into a TSS with the T bit: #DB before the new task's first instruction.
            cpu.TaskTrapPending = false;
            cpu.ReportDebug(0, Dr6.Bt);
            cpu.InsnRip = cpu.Rip;
            cpu.DeliverTrap(Vec.DB);
            return;
        }
        bool tf = cpu.Tf;
        bool ssShadow = cpu.MovSsShadow;   // this instruction follows MOV SS / POP SS
        cpu.MovSsShadow = false;
        if (cpu.DebugArmed)
        {
            bool rf = (cpu._rflags & RFlags.RF) != 0;
            if (!rf && !ssShadow && (cpu.DR[7] & Dr7.Enables) != 0)
            {
                ulong bp = cpu.InstructionBreakpoints(FetchLinear(cpu), out bool enabled);
                if (enabled)
                {
                    cpu.ReportDebug(bp, 0);
                    cpu.InsnRip = cpu.Rip;
                    cpu.DeliverDebugFault();
                    return;
                }
            }
            if (rf) cpu.SetFlag(RFlags.RF, false);
        }
        cpu.DbHits = 0;
        cpu.DbHitEnabled = false;
        cpu.SoftwareEvent = 0;
        cpu.HostWatchHit = -1;
        cpu.IterateSingly = tf || cpu.WatchData;
        var block = FetchBlock(cpu, out ulong la, out ulong pa);
        if (block is null) RunCrossingInstruction(cpu, la, pa, cpu.Bitness);
        else RunInsns(cpu, block, 1);
        cpu.IterateSingly = false;

        ulong bits = cpu.DbHitEnabled ? cpu.DbHits : 0;
        if (tf && cpu.SoftwareEvent == 0) bits |= Dr6.Bs;
        if (cpu.TaskTrapPending) { cpu.TaskTrapPending = false; bits |= Dr6.Bt; }   // the instruction switched to a task with the T bit
        if (cpu.SoftwareEvent == Emu64.Cpu.Cpu.SoftwareIcebp) cpu.DbHeld = 0;   // ICEBP's own #DB stands for the held one
        if (cpu.MovSsShadow) { cpu.DbHeld |= bits; return; }           // MOV SS / POP SS: wait one more instruction
        bits |= cpu.DbHeld;
        cpu.DbHeld = 0;
        if (bits == 0) return;
        if (cpu.Halted) { cpu.DbAfterHalt = bits; return; }
        cpu.ReportDebug(bits & Dr6.BMask, bits & ~Dr6.BMask);
        cpu.InsnRip = cpu.Rip;
        cpu.DeliverTrap(Vec.DB);
    }

    /// <summary>The single-step trap of a HLT, delivered when the CPU wakes (RIP after the HLT).</summary>
    private static void DeliverHaltStep(Cpu.Cpu cpu)
    {
        ulong bits = cpu.DbAfterHalt;
        cpu.DbAfterHalt = 0;
        cpu.Halted = false;
        cpu.ReportDebug(bits & Dr6.BMask, bits & ~Dr6.BMask);
        cpu.InsnRip = cpu.Rip;
        cpu.DeliverTrap(Vec.DB);
    }

    private void DeliverFaultLoop(GuestFault f)
    {
        var cpu = Cpu;
        cpu.Rip = cpu.InsnRip;
        cpu.Halted = false;
        Stats.Faults++;
        if (cpu.Retired != _faultStreakRetired) { _faultStreakRetired = cpu.Retired; _faultStreak = 0; }
        if (++_faultStreak > FaultLoopLimit)
        {
            Stop(StopReason.FaultLoop, 4, $"fault loop: {FaultLoopLimit} exceptions delivered without retiring an instruction (last {f.Message} at rip {cpu.Rip:x})");
            return;
        }
        for (int tries = 0; ; tries++)
        {
            try { cpu.DeliverFault(f); return; }
            catch (GuestFault again) { f = again; cpu.Rip = cpu.InsnRip; }
            catch (TripleFaultException t) { Stop(StopReason.TripleFault, 4, t.Message); return; }
            if (tries > 4) { Stop(StopReason.TripleFault, 4, "triple fault: repeated faults during delivery"); return; }
        }
    }

    /// <summary>Linear address of RIP (CS base applies outside 64-bit mode).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong FetchLinear(Cpu.Cpu cpu)
        => cpu.Is64 ? cpu.Rip : (cpu.Segs[Emu64.Cpu.Seg.CS].Base + cpu.Rip) & 0xFFFFFFFF;

    /// <summary>Looks up (or decodes) the block at RIP, counting the fetch's iTLB lookup; null for a page-crossing instruction.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Block? FetchBlock(Cpu.Cpu cpu, out ulong la, out ulong pa)
    {
        cpu.InsnRip = cpu.Rip;
        la = FetchLinear(cpu);
        if (cpu.Is64) { if (!cpu.IsCanonical(la)) cpu.Gp(); }
        else if (cpu.Rip > cpu.Segs[Emu64.Cpu.Seg.CS].Limit) cpu.Gp();
        pa = cpu.Mmu.Translate(la, cpu.Cpl == 3 ? Access.Fetch | Access.User : Access.Fetch);
        int bitness = cpu.Bitness;
        return Cache.Lookup(pa, bitness) ?? Cache.Decode(pa, la, bitness);
    }

    /// <summary>
    /// Runs n instructions of a block; false if one of them set <see cref="Cpu.Cpu.ExitBlock"/>. Kept out of line
    /// so that across each handler call only the CPU and two instruction pointers are live (no spills).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static bool RunInsns(Cpu.Cpu cpu, Block block, int n)
    {
        ref Insn d = ref MemoryMarshal.GetArrayDataReference(block.Insns);
        ref Insn end = ref Unsafe.Add(ref d, n);
        cpu.ExitBlock = false;
        // RIP is kept in a register: only a block's last instruction changes it other than together with ExitBlock (a
        // branch ends the block; REP chunks, faults and mode changes set ExitBlock or throw), so it need not be read back.
        ulong rip = cpu.Rip;
        while (Unsafe.IsAddressLessThan(ref d, ref end))
        {
            cpu.InsnRip = rip;
            rip += d.Length;
            cpu.Rip = rip;
            d.Exec(cpu, ref d);
            cpu.Retired++;
            if (cpu.ExitBlock) return false;
            d = ref Unsafe.Add(ref d, 1);
        }
        return true;
    }

    /// <summary>
    /// Runs blocks one after another without returning to <see cref="Run"/> while nothing needs the outer loop:
    /// each block that ends at a near branch (or its page end) finds its successor through its cached
    /// <see cref="Block.Next0"/>/<see cref="Block.Next1"/> links (checked by physical address and validity), after
    /// the same fetch translation (and iTLB lookup) the outer loop would do. It returns at the first block
    /// boundary where an event is due, the interrupt line is up, the CPU halted or the run must stop — the same
    /// boundary at which the outer loop would have acted — so the run is exactly as if every block went through
    /// <see cref="Run"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // entered once per long run: skip tier-0 and OSR
    private void RunChain(Cpu.Cpu cpu, ulong stopRetired)
    {
        Chain.Starts++;
        var block = FetchBlock(cpu, out ulong la, out ulong pa);
        if (block is null) { RunCrossingInstruction(cpu, la, pa, cpu.Bitness); return; }
        int bitness = block.Bitness;
        var fetch = cpu.Cpl == 3 ? Access.Fetch | Access.User : Access.Fetch;
        var mmu = cpu.Mmu;
        int compileAt = Options.CompileThreshold;
        // Same-page fetches are counted through an armed fast entry (Mmu.ArmFetch); armed only by this loop (and, inside it, by
        // ResyncFetch), disarmed (after counting) on the way out and by anything in the MMU that could change or read the TLB arrays.
        InChain = true;
        try
        {
        while (true)
        {
            ulong left = stopRetired - cpu.Retired;
            int n = block.Count;
            if ((ulong)n > left) { RunInsns(cpu, block, (int)left); return; }
            var code = block.Code;
            if (code != null)
            {
                // A compiled region may run on into other blocks of its page: continue from the one it ran last.
                ulong before = cpu.Retired;
                int last = code(cpu, stopRetired, block.Entry);
                if (last >= Emu64.Cpu.BlockCompiler.ResumeBase) last = Emu64.Cpu.BlockCompiler.Resume(code, cpu, stopRetired, last);   // a native access missed
                var cc = Chain;
                cc.CompiledEntries++;
                cc.CompiledRetired += cpu.Retired - before;
                if (last < 0) { cc.ExitEarly++; return; }
                block = block.Region![last];
                if (!block.Chainable) { cc.ExitUnchainable++; return; }
                // The region may have run on past a SYSCALL or SYSRET (a resync inside it) and returned at another block: the next
                // fetch is at the privilege level the CPU has now (the mode cannot have changed: that ends the block).
                fetch = cpu.Cpl == 3 ? Access.Fetch | Access.User : Access.Fetch;
            }
            else
            {
                if (compileAt > 0 && ++block.Heat == compileAt)
                {
                    if (Options.CompileInBackground) BackgroundCompilerOf().Enqueue(block);
                    else { BlockCompiler.Compile(block); Cache.Compiled++; }
                }
                Chain.InterpretedBlocks++;
                if (!RunInsns(cpu, block, n) || !block.Chainable) return;
            }
            if (cpu.Retired >= stopRetired || ChainMustLeave()) { if (code != null) Chain.ExitBoundary++; return; }
            if (block.Resync)
            {
                // After SYSCALL/SYSRET/MOV CR3: the same mode (a change set ExitBlock), maybe another CPL or PCID. The
                // instruction's handler left the fetch entry disarmed or armed for the new CPL and PCID (ResyncFetch).
                if (cpu.Tf || cpu.Bitness != bitness) return;
                fetch = cpu.Cpl == 3 ? Access.Fetch | Access.User : Access.Fetch;
            }
            // The next block: the fetch translation as in FetchBlock, then the links.
            cpu.InsnRip = cpu.Rip;
            if (bitness == 64) { la = cpu.Rip; if (!cpu.IsCanonical(la)) cpu.Gp(); }
            else
            {
                ref var cs = ref cpu.Segs[Emu64.Cpu.Seg.CS];
                if (cpu.Rip > cs.Limit) cpu.Gp();
                la = (cs.Base + cpu.Rip) & 0xFFFFFFFF;
            }
            if (mmu._fetchSlot >= 0 && (la >> 12) == mmu._fetchPage)
            {
                mmu._fetchPending++;   // the same code page again: a hit through the armed entry, counted when flushed
                pa = mmu._fetchFrame | (la & 0xFFF);
            }
            else pa = mmu.TranslateAndArm(la, fetch);   // a new code page: count the pending fetches, translate, arm
            Block? next = block.Next0;
            if (next is null || next.Phys != pa || !next.Valid)
            {
                next = block.Next1;
                if (next is null || next.Phys != pa || !next.Valid)
                {
                    Chain.LinkMisses++;
                    next = Cache.Lookup(pa, bitness) ?? Cache.Decode(pa, la, bitness);
                    if (next is null) { RunCrossingInstruction(cpu, la, pa, bitness); return; }
                    if (block.Next0 is null || !block.Next0.Valid) block.Next0 = next; else block.Next1 = next;
                }
            }
            block = next;
        }
        }
        finally { InChain = false; if (mmu._fetchSlot >= 0) mmu.FlushFetch(); }
    }

    /// <summary>
    /// A compiled region's edge into a block of another code page (BlockCompiler's Edges.EmitPage), after a block ran to its end
    /// with RIP at <paramref name="next"/>'s start or not: what <see cref="RunChain"/> does at that boundary when it would go on to
    /// <paramref name="next"/>, and true; or nothing at all, and false, where it would do anything else — then the region returns and
    /// the chain does it (so nothing may change before the last test). The tests, in RunChain's order: the stop (the whole next block
    /// must fit, as for any compiled edge), <see cref="ChainMustLeave"/>, and the fetch (never after a resync: TF, the privilege level
    /// and the mode are what they were when the chain last read them): the same code page again through the armed entry (one more
    /// pending hit), or a new page whose translation the fast
    /// cache holds (<see cref="Mmu.Mmu.ArmFetchHit"/>: counted and armed as <see cref="Mmu.Mmu.TranslateAndArm"/> counts and arms it);
    /// either must give <paramref name="next"/>'s physical address, and the block must still be valid (its page may have been
    /// written since the region was entered: within a region a store into code ends the block, but not between entries). A
    /// non-canonical RIP matches no armed page and no fast entry, so the chain raises its #GP. Kept small and out of line: it runs
    /// once per page change, where the chain ran a loop iteration and entered another region.
    /// </summary>
    internal static bool EnterPage(Cpu.Cpu cpu, Block next, ulong stopRetired)
    {
        var m = cpu.Machine;
        if (cpu.Retired + (ulong)next.Count > stopRetired || m.ChainMustLeave() || !next.Valid) return false;
        ulong la = cpu.Rip;
        var mmu = cpu.Mmu;
        if (mmu._fetchSlot >= 0 && (la >> 12) == mmu._fetchPage)
        {
            if ((mmu._fetchFrame | (la & 0xFFF)) != next.Phys) return false;
            mmu._fetchPending++;
        }
        else if (!mmu.ArmFetchHit(la, cpu.Cpl == 3 ? Access.Fetch | Access.User : Access.Fetch, next.Phys)) return false;
        cpu.InsnRip = la;
        return true;
    }

    /// <summary>True while <see cref="RunChain"/> runs: the only time the fetch entry may be armed (<see cref="ResyncFetch"/>).</summary>
    internal bool InChain;

    /// <summary>
    /// The end of SYSCALL, SYSRET and MOV to CR3 (the instructions after which a chain resyncs, <see cref="Block.Resync"/>): the
    /// fetch entry armed for the old privilege level and PCID is counted and disarmed, and inside a chain the entry of the next
    /// fetch, at RIP with the new ones, is armed when the fast cache holds it — without counting it: the next block's fetch
    /// counts it as a same-page fetch (one lookup and one hit, the entry made the array's most recent use when the chain flushes),
    /// which is what the chain's own translation would have counted. So a compiled region goes on after a CR3 write into the next
    /// block of its page (the edge's test finds the page armed and mapped to the region's frame), and the chain finds the next
    /// page armed without translating it again. Nothing is armed where the chain stops anyway: TF set (the next instruction is
    /// single-stepped), a mode change (ExitBlock), outside 64-bit mode, outside a chain.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void ResyncFetch(Cpu.Cpu cpu)
    {
        var mmu = cpu.Mmu;
        if (mmu._fetchSlot >= 0) mmu.FlushFetch();
        if (!InChain || cpu.ExitBlock || cpu.Tf || !cpu.Is64) return;
        mmu.ArmFetch(cpu.Rip, cpu.Cpl == 3 ? Access.Fetch | Access.User : Access.Fetch);
    }

    /// <summary>This machine's queue of regions compiling in the background (a timed device: each is installed at a fixed guest time).</summary>
    internal Cpu.BackgroundCompiler? Compiler;

    private Cpu.BackgroundCompiler BackgroundCompilerOf()
    {
        if (Compiler is null) { Compiler = new Cpu.BackgroundCompiler(this); AddTimedDevice(Compiler); }
        return Compiler;
    }

    /// <summary>
    /// At a block boundary inside a chain: an event is due, the interrupt line is up or a debugger steps (the outer loop must act).
    /// Compiled regions emit the same test inline at each edge (BlockCompiler.EmitEdgeChecks): change both together.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool ChainMustLeave() => Cpu.Retired + _idle >= NextEventAt || Attention != 0;   // (InterruptLine || DebugStepHook)

    /// <summary>An instruction whose bytes run into the next page: decoded from both pages, not cached.</summary>
    private void RunCrossingInstruction(Cpu.Cpu cpu, ulong la, ulong pa, int bitness)
    {
        Span<byte> bytes = stackalloc byte[15];
        int first = 0x1000 - (int)(la & 0xFFF);
        Memory.ReadBytes(pa, bytes[..Math.Min(first, 15)]);
        if (first < 15)
        {
            // The same-page fetches of the chain so far are counted before this second fetch: the iTLB then sees its
            // uses in the order they happened (a fast hit on the next page does not flush them, and counting them
            // afterwards made the first page the array's most recent use instead of the second).
            if (cpu.Mmu._fetchSlot >= 0) cpu.Mmu.FlushFetch();
            ulong pa2 = cpu.Mmu.Translate(la + (ulong)first, Access.Fetch | (cpu.Cpl == 3 ? Access.User : 0));
            Memory.ReadBytes(pa2, bytes[first..]);
        }
        ref Insn d = ref _single[0];
        Cache.DecodeCrossing(bytes, la, bitness, ref d);
        cpu.ExitBlock = false;
        cpu.Rip += d.Length;
        d.Exec(cpu, ref d);
        cpu.Retired++;
    }

}

/// <summary>Host-side counters of the block chain (see <see cref="Machine.Chain"/>).</summary>
public sealed class ChainCounters
{
    /// <summary>Chains started by the outer loop (each pass of <see cref="Machine.Run"/> that runs blocks).</summary>
    public ulong Starts;
    /// <summary>Calls into compiled regions, and the instructions retired inside them.</summary>
    public ulong CompiledEntries, CompiledRetired;
    /// <summary>Blocks run by the interpreter's loop inside the chain.</summary>
    public ulong InterpretedBlocks;
    /// <summary>
    /// Why a compiled region returned: an instruction ended its block early (ExitBlock: a REP chunk, a store into code,
    /// a mode change), the last block cannot chain (I/O, system instruction), or the run loop had to act (event due,
    /// interrupt line, stop). Any other return went on to the next block through the links (another region or the interpreter).
    /// </summary>
    public ulong ExitEarly, ExitUnchainable, ExitBoundary;
    /// <summary>Next-block look-ups the two links did not answer (decode-cache dictionary look-ups or decodes).</summary>
    public ulong LinkMisses;
}

/// <summary>A per-instruction observer (debugger, instruction trace), active only while <see cref="Machine.DebugStepHook"/> is set.</summary>
public interface IInstructionHook
{
    /// <summary>Before the instruction at RIP runs. Returning false stops the run (StopReason.Break) with RIP at that instruction.</summary>
    bool BeforeInstruction();
    /// <summary>After the instruction retired, or after the fault it raised was delivered (RIP then at the handler).</summary>
    void AfterInstruction();
}
