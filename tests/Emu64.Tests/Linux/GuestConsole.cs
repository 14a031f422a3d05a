using System.Text;

namespace Emu64.Tests.Linux;

/// <summary>
/// A guest's COM1 output as the Linux tests read it: the text, the retired-instruction count at which each line
/// ended (its newline was written), and an optional stop: when a finished line satisfies <see cref="StopWhen"/>,
/// the machine stops at the next instruction boundary (<see cref="StopReason.Break"/>), so a test that needs an
/// early line does not pay for the whole boot.
/// </summary>
public sealed class GuestConsole : Stream
{
    public Machine? Machine;
    public Func<string, bool>? StopWhen;
    /// <summary>Called with the machine when the stop line has ended, before the machine stops (state at that line).</summary>
    public Action<Machine>? AtStop;
    private readonly StringBuilder _text = new();
    private readonly StringBuilder _line = new();
    private readonly List<(int Offset, ulong Retired)> _lineEnds = [];
    public string Text => _text.ToString();

    /// <summary>Retired instructions when the line holding <paramref name="marker"/> ended, or 0.</summary>
    public ulong At(string marker)
    {
        int i = _text.ToString().IndexOf(marker, StringComparison.Ordinal);
        if (i < 0) return 0;
        foreach (var (offset, retired) in _lineEnds) if (offset > i) return retired;
        return 0;
    }

    public override void Write(byte[] buffer, int offset, int count)
    {
        foreach (byte b in buffer.AsSpan(offset, count))
        {
            if (b == '\n')
            {
                _lineEnds.Add((_text.Length, Machine?.Cpu.Retired ?? 0));
                if (StopWhen != null && Machine != null && StopWhen(_line.ToString().TrimEnd('\r')))
                {
                    StopWhen = null;
                    AtStop?.Invoke(Machine);
                    Machine.Stop(StopReason.Break, 0, "the line the test waited for");
                }
                _line.Clear();
            }
            else _line.Append((char)b);
            _text.Append((char)b);
        }
    }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => _text.Length;
    public override long Position { get => _text.Length; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}

/// <summary>
/// Watches CR3 writes for Linux's page-table isolation. With PTI the entry code switches CR3 to the kernel's page
/// tables a few instructions after SYSCALL (SWITCH_TO_KERNEL_CR3 in entry_SYSCALL_64) and back to the user's a few
/// instructions before SYSRET (SWITCH_TO_USER_CR3 in syscall_return_via_sysret); without PTI CR3 changes only when
/// the scheduler switches address spaces, deep inside schedule(), never next to a system call's entry or exit.
/// So: a CR3 write within <see cref="Window"/> instructions after a SYSCALL is an entry switch, a SYSRET within
/// <see cref="Window"/> instructions after a CR3 write is an exit switch. Also counted: NOFLUSH writes (bit 63) and
/// writes that name a PCID (CR3[11:0] nonzero; Linux leaves PWT/PCD, the same bits without PCIDE, zero).
/// </summary>
public sealed class Cr3Watch : IBoundaryListener
{
    public const ulong Window = 64;
    public ulong Writes, NoFlushWrites, WritesWithPcid, Syscalls, Sysrets, EntrySwitches, ExitSwitches;
    private ulong _lastSyscall = ulong.MaxValue, _lastWrite = ulong.MaxValue;

    public void OnEvent(in BoundaryEvent e)
    {
        switch (e.Kind)
        {
            case BoundaryKind.Syscall:
                Syscalls++;
                _lastSyscall = e.Instructions;
                break;
            case BoundaryKind.Sysret:
                Sysrets++;
                if (_lastWrite != ulong.MaxValue && e.Instructions - _lastWrite <= Window) ExitSwitches++;
                break;
            case BoundaryKind.Cr3Write:
                Writes++;
                if (e.NoFlush) NoFlushWrites++;
                if ((e.NewCr3 & 0xFFF) != 0) WritesWithPcid++;
                if (_lastSyscall != ulong.MaxValue && e.Instructions - _lastSyscall <= Window) { EntrySwitches++; _lastSyscall = ulong.MaxValue; }
                _lastWrite = e.Instructions;
                break;
        }
    }
}
