using Emu64.Devices;

namespace Emu64.Introspection;

/// <summary>Counters at one instant; two of them subtract to a region's cost.</summary>
public readonly record struct CounterSnapshot(
    ulong Instructions, ulong Syscalls, ulong Interrupts, ulong Exceptions, ulong Cr3Writes, ulong Cr3NoFlushWrites, ulong Now,
    Mmu.TlbStats Tlb)
{
    public static CounterSnapshot Take(Machine m) => new(m.Cpu.Retired, m.Events.Syscalls, m.Events.Interrupts,
        m.Events.Exceptions, m.Events.Cr3Writes, m.Events.Cr3NoFlushWrites, m.Now, m.Cpu.Mmu.Snapshot());

    public static CounterSnapshot operator -(CounterSnapshot a, CounterSnapshot b) => new(
        a.Instructions - b.Instructions, a.Syscalls - b.Syscalls, a.Interrupts - b.Interrupts, a.Exceptions - b.Exceptions,
        a.Cr3Writes - b.Cr3Writes, a.Cr3NoFlushWrites - b.Cr3NoFlushWrites, a.Now - b.Now, a.Tlb - b.Tlb);
}

/// <summary>A measured region the guest marked: counters at its begin and end.</summary>
public sealed record Region(int Id, CounterSnapshot Begin, CounterSnapshot? End)
{
    public CounterSnapshot Delta => (End ?? Begin) - Begin;

    /// <summary>Names of the toy kernel's regions (firmware/port.h), also those of the Linux workloads (tests/linux/initramfs/measure-*.c).</summary>
    public string Name => Id switch { 1 => "syscalls", 2 => "touch", 3 => "pingpong", 4 => "mmap", 5 => "pagecache", _ => $"region{Id}" };
}

/// <summary>A process the kernel announced: its pid and the physical address of its kernel PGD (user PGD at +4 KiB with PTI).</summary>
public sealed record GuestProcess(int Pid, ulong KernelPgd, bool Exited);

/// <summary>
/// The guest-information port of the toy kernel (firmware/port.h, docs/KERNEL.md): 32-bit writes to
/// 0xEA carry <c>(arg &lt;&lt; 8) | op</c>; ops 3 and 5 are followed by two writes to 0xEB (low, high
/// dword of a 64-bit value).
/// <list type="bullet">
/// <item>op 1 / 2: measured region <c>arg</c> begins / ends — counters are snapshotted;</item>
/// <item>op 3: process <c>arg</c> created, value = physical address of its kernel PGD;</item>
/// <item>op 4: process <c>arg</c> exited;</item>
/// <item>op 5: announcement <c>arg</c> (0 = runtime _text, 1 = PAGE_OFFSET, 2 = swapper_pg_dir physical).</item>
/// </list>
/// Under QEMU the ports do not exist and the writes are ignored, so the kernel runs there unchanged.
/// </summary>
public sealed class KernelInfoPort(Machine m) : IIoDevice
{
    public const ushort OpPort = 0xEA, ValuePort = 0xEB;
    public const int OpRegionBegin = 1, OpRegionEnd = 2, OpProcess = 3, OpExit = 4, OpAnnounce = 5;
    public const int AnnounceText = 0, AnnouncePageOffset = 1, AnnounceSwapperPgd = 2;

    private int _pendingOp = -1, _pendingArg, _words;
    private ulong _value;
    private readonly Dictionary<int, Region> _open = new();

    public List<Region> Regions { get; } = new();
    public Dictionary<int, GuestProcess> Processes { get; } = new();
    public Dictionary<int, ulong> Announcements { get; } = new();

    public ulong? TextBase => Announcements.TryGetValue(AnnounceText, out var v) ? v : null;
    public ulong? PageOffset => Announcements.TryGetValue(AnnouncePageOffset, out var v) ? v : null;
    public ulong? SwapperPgd => Announcements.TryGetValue(AnnounceSwapperPgd, out var v) ? v : null;

    public uint In(ushort port, int size) => 0xFFFFFFFF;

    public void Out(ushort port, int size, uint value)
    {
        if (port == ValuePort)
        {
            if (_pendingOp < 0) return;
            _value |= (ulong)value << (32 * _words);
            if (++_words == 2) Complete();
            return;
        }
        int op = (int)(value & 0xFF), arg = (int)(value >> 8);
        switch (op)
        {
            case OpRegionBegin:
            case OpRegionEnd:
                MarkRegion(op, arg);
                break;
            case OpExit:
                if (Processes.TryGetValue(arg, out var p)) Processes[arg] = p with { Exited = true };
                break;
            case OpProcess:
            case OpAnnounce:
                _pendingOp = op; _pendingArg = arg; _words = 0; _value = 0;
                break;
        }
    }

    /// <summary>
    /// Begins (<paramref name="op"/> = <see cref="OpRegionBegin"/>) or ends region <paramref name="id"/>: a snapshot of
    /// the counters. The port's op 1/2 and the user-mode marker (Isa/RegionMarker.cs) both come here, so a region
    /// is counted the same whichever marked it. An end without a begin is ignored; a second begin restarts the region.
    /// </summary>
    public void MarkRegion(int op, int id)
    {
        if (op == OpRegionBegin) _open[id] = new Region(id, CounterSnapshot.Take(m), null);
        else if (op == OpRegionEnd && _open.Remove(id, out var r)) Regions.Add(r with { End = CounterSnapshot.Take(m) });
    }

    private void Complete()
    {
        if (_pendingOp == OpProcess) Processes[_pendingArg] = new GuestProcess(_pendingArg, _value, false);
        else Announcements[_pendingArg] = _value;
        _pendingOp = -1;
    }
}
