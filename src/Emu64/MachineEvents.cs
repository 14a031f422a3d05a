using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Iced.Intel;

namespace Emu64;

/// <summary>A listener for boundary events (tracing, the debugger, measurements).</summary>
public interface IBoundaryListener
{
    void OnEvent(in BoundaryEvent e);
}

public enum BoundaryKind : byte { Syscall, Sysret, Interrupt, SoftwareInterrupt, Exception, Iret, Cr3Write }

/// <summary>One user/kernel boundary event with the state around it.</summary>
public readonly record struct BoundaryEvent(
    BoundaryKind Kind, ulong Instructions, int Cpl, int Vector, uint ErrorCode, bool HasErrorCode, ulong Cr2,
    ulong OldCr3, ulong NewCr3, bool NoFlush, int Dropped, ulong Rip);

/// <summary>
/// Counts boundary events, keeps the last <see cref="RecentCapacity"/> in a ring (for the report after
/// a triple fault), and passes them to listeners. The CPU calls it only at boundaries (system calls,
/// interrupts, exceptions, IRET, CR3 writes), never on the per-instruction path.
/// </summary>
public sealed class MachineEvents
{
    internal Machine? Owner;
    // Copy on write: Subscribe and Unsubscribe (rare) replace the array, Emit walks the array it read, so a
    // listener may unsubscribe itself, or another, from inside OnEvent (the tracer does at its limit), and
    // the event path allocates nothing.
    private IBoundaryListener[] _listeners = [];
    public ulong Syscalls, Sysrets, Interrupts, SoftwareInterrupts, Exceptions, Irets, Cr3Writes, Cr3NoFlushWrites;

    /// <summary>How many of the latest boundary events are kept for the stop report (<see cref="Recent"/>).</summary>
    public const int RecentCapacity = 16;   // a power of two (the ring's index is a mask)
    private readonly BoundaryEvent[] _recent = new BoundaryEvent[RecentCapacity];
    private ulong _recentCount;

    /// <summary>The last <paramref name="n"/> (at most <see cref="RecentCapacity"/>) boundary events, oldest first.</summary>
    public BoundaryEvent[] Recent(int n = RecentCapacity)
    {
        int k = (int)Math.Min((ulong)Math.Min(n, RecentCapacity), _recentCount);
        var r = new BoundaryEvent[k];
        for (int i = 0; i < k; i++) r[i] = _recent[(int)((_recentCount - (ulong)k + (ulong)i) % RecentCapacity)];
        return r;
    }

    public void Subscribe(IBoundaryListener l) => _listeners = [.. _listeners, l];

    /// <summary>Removes <paramref name="l"/> (its first subscription); safe from inside <see cref="IBoundaryListener.OnEvent"/>.</summary>
    public void Unsubscribe(IBoundaryListener l)
    {
        int i = Array.IndexOf(_listeners, l);
        if (i < 0) return;
        _listeners = [.. _listeners.AsSpan(0, i), .. _listeners.AsSpan(i + 1)];
    }

    // Inlined into each On* method with its constants: the toy kernel's system-call loop records four events per system call
    // (SYSCALL, two CR3 writes, SYSRET), and the general call with eight arguments was 3-4% of its host time (issue #19).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Emit(BoundaryKind k, int vector = -1, uint err = 0, bool hasErr = false, ulong oldCr3 = 0, ulong newCr3 = 0,
        bool noFlush = false, int dropped = 0)
    {
        var owner = Owner;
        if (owner is null) return;
        var cpu = owner.Cpu;
        // Boundary events are rare next to instructions: keeping the last few in a ring costs one store each.
        ref var e = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_recent), (int)(_recentCount++ & (RecentCapacity - 1)));
        e = new BoundaryEvent(k, cpu.Retired, cpu.Cpl, vector, err, hasErr, cpu.CR2, oldCr3, newCr3, noFlush, dropped, cpu.Rip);
        var listeners = _listeners;
        if (listeners.Length != 0) Notify(listeners, e);
    }

    /// <summary>Passes an event to the listeners (a copy: a listener may cause another event, which reuses the ring's slot).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Notify(IBoundaryListener[] listeners, BoundaryEvent copy)
    {
        foreach (var l in listeners) l.OnEvent(in copy);
    }

    internal void OnSyscall(int fromCpl) { Syscalls++; Emit(BoundaryKind.Syscall); }
    internal void OnSysret() { Sysrets++; Emit(BoundaryKind.Sysret); }
    internal void OnInterrupt(int vector) { Interrupts++; Emit(BoundaryKind.Interrupt, vector); }
    internal void OnSoftwareInterrupt(int vector) { SoftwareInterrupts++; Emit(BoundaryKind.SoftwareInterrupt, vector); }
    internal void OnException(int vector, uint err, bool hasErr) { Exceptions++; Emit(BoundaryKind.Exception, vector, err, hasErr); }
    internal void OnIret(int fromCpl, int toCpl) { Irets++; Emit(BoundaryKind.Iret); }
    internal void OnCr3Write(ulong oldCr3, ulong newCr3, bool noFlush, int dropped)
    {
        Cr3Writes++;
        if (noFlush) Cr3NoFlushWrites++;
        Emit(BoundaryKind.Cr3Write, oldCr3: oldCr3, newCr3: newCr3, noFlush: noFlush, dropped: dropped);
    }
}

/// <summary>Run statistics that are not TLB counters.</summary>
public sealed class MachineStats
{
    public ulong Faults;
    public readonly Dictionary<Code, ulong> Unimplemented = new();
    public ulong UnimplementedTotal;

    public void CountUnimplemented(Code c)
    {
        UnimplementedTotal++;
        Unimplemented[c] = Unimplemented.TryGetValue(c, out var n) ? n + 1 : 1;
    }
}
