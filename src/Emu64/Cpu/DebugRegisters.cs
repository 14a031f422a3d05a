using System.Runtime.CompilerServices;

namespace Emu64.Cpu;

/// <summary>DR6 bits (SDM vol. 3B §18.2.3).</summary>
public static class Dr6
{
    /// <summary>B0-B3: breakpoint condition n was met.</summary>
    public const ulong B0 = 1, BMask = 0xF;
    /// <summary>BD: the next instruction accesses a debug register while DR7.GD = 1.</summary>
    public const ulong Bd = 1 << 13;
    /// <summary>BS: single step (TF).</summary>
    public const ulong Bs = 1 << 14;
    /// <summary>BT: task switch to a TSS with the T bit set.</summary>
    public const ulong Bt = 1 << 15;
    /// <summary>
    /// Bits that read as 1: 4-11 and 16-31. Bit 11 (BLD, bus-lock detection) and bit 16 (RTM) are "active low" bits
    /// that read 1 on a processor without those features, which this one is (no CPUID bit for either).
    /// </summary>
    public const ulong Fixed1 = 0xFFFF0FF0;
    /// <summary>The bits software can write: B0-B3, BD, BS, BT.</summary>
    public const ulong Writable = BMask | Bd | Bs | Bt;
}

/// <summary>DR7 bits (SDM vol. 3B §18.2.4).</summary>
public static class Dr7
{
    /// <summary>L0/G0..L3/G3: bits 0-7 (bit 2n local, 2n+1 global).</summary>
    public const ulong Enables = 0xFF;
    public const ulong Le = 1 << 8, Ge = 1 << 9;
    /// <summary>Bit 10 reads as 1.</summary>
    public const ulong Fixed1 = 1 << 10;
    /// <summary>RTM (bit 11): reserved 0 without RTM.</summary>
    public const ulong Gd = 1 << 13;
    /// <summary>Bits software can set: enables, LE/GE, GD, R/W and LEN fields (16-31). Bits 11, 12, 14, 15 read 0.</summary>
    public const ulong Writable = Enables | Le | Ge | Gd | 0xFFFF0000UL;
}

/// <summary>
/// Hardware breakpoints (SDM vol. 3B chapter 18): DR0-DR3 hold linear addresses, DR7 enables them and gives each a
/// kind (R/W: 00 execute, 01 data write, 10 I/O with CR4.DE, 11 data read or write) and a length (LEN: 1, 2, 8, 4
/// bytes; the address is masked to it, so a breakpoint covers its aligned unit), DR6 reports what happened.
///
/// Nothing here runs while no breakpoint is armed. <see cref="DebugArmed"/> (any DR7 enable, RF=1, or a debugger
/// watchpoint) sends the run loop to its one-instruction path, which checks instruction breakpoints before the
/// instruction and delivers the trap-like #DB after it; <see cref="WatchData"/> turns off the straight-to-RAM data
/// path (<see cref="DirectData"/>) so that every data access reaches the out-of-line paths, where
/// <see cref="WatchAccess"/> compares it with the breakpoints. Compiled blocks and chains never run while armed.
/// </summary>
public sealed partial class Cpu
{
    /// <summary>Something needs the per-instruction debug path: a DR7 enable, RF set, a debugger watchpoint.</summary>
    public bool DebugArmed;
    /// <summary>Data accesses are compared with the breakpoints (a data breakpoint or a debugger watchpoint is armed).</summary>
    internal bool WatchData;
    /// <summary>I/O accesses are compared with the breakpoints (CR4.DE and an enabled R/W=10 breakpoint).</summary>
    internal bool WatchIo;
    /// <summary>Data accesses may go straight to RAM through the fast cache: paging on and no data breakpoint armed.</summary>
    internal bool DirectData;
    /// <summary>While set (TF or data breakpoints), a REP string instruction does one iteration per execution.</summary>
    internal bool IterateSingly;

    /// <summary>DR6 B0-B3 of the breakpoints the current instruction's accesses matched, enabled or not.</summary>
    internal ulong DbHits;
    /// <summary>One of the matches was an enabled breakpoint: a #DB trap follows the instruction.</summary>
    internal bool DbHitEnabled;
    /// <summary>MOV SS / POP SS held off a trap #DB (DR6 bits) until the next instruction completes.</summary>
    internal ulong DbHeld;
    /// <summary>A single-step trap of HLT waits for the wake-up (DR6 bits; delivered before the waking event).</summary>
    internal ulong DbAfterHalt;
    /// <summary>Set by MOV SS / POP SS with <see cref="InterruptShadow"/>: debug exceptions wait one instruction too.</summary>
    public bool MovSsShadow;
    /// <summary>The instruction delivered a software interrupt (INT n, INT3, INTO) or ICEBP: no single-step trap follows it.</summary>
    internal int SoftwareEvent;

    /// <summary>The debugger's watchpoints (linear ranges), checked by the same access path as DR0-DR3.</summary>
    internal HostWatch[] HostWatches = [];
    /// <summary>The first debugger watchpoint the current instruction hit (index into <see cref="HostWatches"/>), or -1.</summary>
    public int HostWatchHit = -1;

    /// <summary>A debugger watchpoint: [Address, Address+Length), on writes, reads or both.</summary>
    public readonly record struct HostWatch(ulong Address, ulong Length, bool Reads, bool Writes);

    public ulong Dr6Value => (DR[6] & Dr6.Writable) | Dr6.Fixed1;
    public ulong Dr7Value => (DR[7] & Dr7.Writable) | Dr7.Fixed1;

    /// <summary>Sets the debugger's watchpoints (empty to remove them).</summary>
    public void SetHostWatches(HostWatch[] watches) { HostWatches = watches; UpdateDebugArmed(); }

    /// <summary>Recomputes the debug routing flags from DR7, CR4.DE, RF and the debugger's watchpoints.</summary>
    public void UpdateDebugArmed()
    {
        ulong dr7 = DR[7];
        bool data = false, io = false;
        for (int n = 0; n < 4; n++)
        {
            if (((dr7 >> (2 * n)) & 3) == 0) continue;
            int rw = (int)(dr7 >> (16 + 4 * n)) & 3;
            if (rw is 1 or 3) data = true;
            if (rw == 2 && (CR4 & Emu64.Cpu.Cr4.De) != 0) io = true;
        }
        WatchData = data || HostWatches.Length > 0;
        WatchIo = io;
        DirectData = PagingOn && !WatchData;
        DebugArmed = (dr7 & Dr7.Enables) != 0 || (_rflags & RFlags.RF) != 0 || HostWatches.Length > 0 || TaskTrapPending;
    }

    /// <summary>The linear address and length mask of breakpoint n (LEN 00=1, 01=2, 10=8, 11=4 bytes).</summary>
    private ulong BreakpointMask(int n)
    {
        int len = (int)(DR[7] >> (18 + 4 * n)) & 3;
        return len switch { 0 => 0, 1 => 1, 2 => 7, _ => 3 };
    }

    /// <summary>
    /// Instruction breakpoints at the linear address of RIP (fault-like: before the instruction). Returns the B0-B3
    /// bits of every R/W=00 breakpoint at that address, and whether one of them is enabled.
    /// </summary>
    internal ulong InstructionBreakpoints(ulong la, out bool enabled)
    {
        ulong dr7 = DR[7], hits = 0;
        enabled = false;
        for (int n = 0; n < 4; n++)
        {
            if (((dr7 >> (16 + 4 * n)) & 3) != 0) continue;           // not an execute breakpoint
            if (la != DR[n]) continue;                                  // LEN must be 00 for these: exact address
            hits |= 1UL << n;
            if (((dr7 >> (2 * n)) & 3) != 0) enabled = true;
        }
        return hits;
    }

    /// <summary>
    /// A data access of <paramref name="size"/> bytes at <paramref name="la"/> (called from the out-of-line access
    /// paths while <see cref="WatchData"/> is set): records DR6 B0-B3 for the breakpoints whose aligned unit it
    /// touches, and the first debugger watchpoint it hits. Accesses made while delivering an event are not compared.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal void WatchAccess(ulong la, int size, bool write)
    {
        if (_delivering >= 0) return;
        ulong last = la + (ulong)size - 1, dr7 = DR[7];
        for (int n = 0; n < 4; n++)
        {
            int rw = (int)(dr7 >> (16 + 4 * n)) & 3;
            if (rw == 0 || rw == 2 || (rw == 1 && !write)) continue;
            ulong start = DR[n] & ~BreakpointMask(n), end = start + BreakpointMask(n);
            if (last < start || la > end) continue;
            DbHits |= 1UL << n;
            if (((dr7 >> (2 * n)) & 3) != 0) DbHitEnabled = true;
        }
        if (HostWatchHit < 0)
        {
            var w = HostWatches;
            for (int k = 0; k < w.Length; k++)
            {
                if (write ? !w[k].Writes : !w[k].Reads) continue;
                if (last < w[k].Address || la >= w[k].Address + w[k].Length) continue;
                HostWatchHit = k;
                break;
            }
        }
    }

    /// <summary>An I/O access to <paramref name="port"/> (R/W=10 breakpoints with CR4.DE; the port is in DRn's low 16 bits).</summary>
    internal void WatchIoPort(ushort port, int size)
    {
        ulong last = (ulong)port + (ulong)size - 1, dr7 = DR[7];
        for (int n = 0; n < 4; n++)
        {
            if (((dr7 >> (16 + 4 * n)) & 3) != 2) continue;
            ulong start = DR[n] & 0xFFFF & ~BreakpointMask(n), end = start + BreakpointMask(n);
            if (last < start || port > end) continue;
            DbHits |= 1UL << n;
            if (((dr7 >> (2 * n)) & 3) != 0) DbHitEnabled = true;
        }
    }

    /// <summary>
    /// Writes the status of a #DB into DR6: B0-B3 are replaced by <paramref name="hits"/> when a breakpoint matched
    /// (the processor reports exactly the matches of this exception), the other bits are only ever set.
    /// </summary>
    internal void ReportDebug(ulong hits, ulong other)
    {
        ulong d = DR[6];
        if (hits != 0) d = (d & ~Dr6.BMask) | hits;
        DR[6] = d | other;
    }
}
