namespace Emu64.Devices;

/// <summary>
/// A 16550 UART (COM1 at 0x3F8): transmit goes to the console stream byte for byte; the line status
/// register always reports the transmitter empty. Receive and interrupts are added by the platform.
/// Registers (offset from the base): 0 RBR/THR (DLL when DLAB), 1 IER (DLM), 2 IIR/FCR, 3 LCR, 4 MCR,
/// 5 LSR, 6 MSR, 7 SCR.
/// </summary>
public sealed class Serial16550 : IIoDevice
{
    private readonly Stream _out;
    private byte _ier, _lcr, _mcr, _scr, _dll = 1, _dlm;
    private readonly Queue<byte> _rx = new();

    public const byte LsrDataReady = 0x01, LsrThrEmpty = 0x20, LsrTxEmpty = 0x40;

    /// <summary>Raised when the UART's interrupt output changes (wired to IRQ 4 by the platform).</summary>
    public Action<bool>? Irq;

    public Serial16550(Stream output) { _out = output; }

    public void Flush() => _out.Flush();

    /// <summary>Queues bytes as if they arrived on the line (stdin, tests).</summary>
    public void Receive(ReadOnlySpan<byte> data)
    {
        foreach (var b in data) _rx.Enqueue(b);
        UpdateIrq();
    }

    private bool Dlab => (_lcr & 0x80) != 0;

    public uint In(ushort port, int size)
    {
        switch (port & 7)
        {
            case 0:
                if (Dlab) return _dll;
                if (_rx.Count == 0) return 0;
                byte b = _rx.Dequeue();
                UpdateIrq();
                return b;
            case 1: return Dlab ? _dlm : _ier;
            case 2:
                // IIR: FIFOs enabled (0xC0); 0x04 = received data available, 0x02 = THR empty, 0x01 = none
                if ((_ier & 1) != 0 && _rx.Count > 0) return 0xC4;
                if ((_ier & 2) != 0) return 0xC2;
                return 0xC1;
            case 3: return _lcr;
            case 4: return _mcr;
            case 5: return (uint)(LsrThrEmpty | LsrTxEmpty | (_rx.Count > 0 ? LsrDataReady : 0));
            case 6: return 0xB0;   // CTS, DSR, DCD
            default: return _scr;
        }
    }

    public void Out(ushort port, int size, uint value)
    {
        byte v = (byte)value;
        switch (port & 7)
        {
            case 0:
                if (Dlab) { _dll = v; return; }
                if ((_mcr & 0x10) != 0) { _rx.Enqueue(v); UpdateIrq(); return; }   // loopback mode
                _out.WriteByte(v);
                if (v == '\n') _out.Flush();
                UpdateIrq();
                return;
            case 1: if (Dlab) _dlm = v; else { _ier = (byte)(v & 0x0F); UpdateIrq(); } return;
            case 3: _lcr = v; return;
            case 4: _mcr = v; return;
            case 7: _scr = v; return;
        }
    }

    private void UpdateIrq() => Irq?.Invoke(((_ier & 1) != 0 && _rx.Count > 0) || (_ier & 2) != 0);
}

/// <summary>The Bochs/QEMU debug console at port 0xE9: bytes written go to the console.</summary>
public sealed class DebugConsole(Stream output) : IIoDevice
{
    public uint In(ushort port, int size) => 0xE9;
    public void Out(ushort port, int size, uint value)
    {
        output.WriteByte((byte)value);
        if ((byte)value == '\n') output.Flush();
    }
}

/// <summary>QEMU's isa-debug-exit (iobase 0xF4, iosize 4): a write ends the run with status (value &lt;&lt; 1) | 1.</summary>
public sealed class DebugExitDevice(Machine m) : IIoDevice
{
    public uint In(ushort port, int size) => 0xFFFFFFFF;
    public void Out(ushort port, int size, uint value)
        => m.Stop(StopReason.DebugExit, (int)(((value << 1) | 1) & 0xFF), $"debug-exit value {value:x}");
}

/// <summary>The Bochs shutdown port 0x8900: writing the string "Shutdown" powers off.</summary>
public sealed class BochsShutdownPort(Machine m) : IIoDevice
{
    private int _matched;
    private const string Word = "Shutdown";
    public uint In(ushort port, int size) => 0xFF;
    public void Out(ushort port, int size, uint value)
    {
        char c = (char)(value & 0xFF);
        _matched = c == Word[_matched] ? _matched + 1 : (c == Word[0] ? 1 : 0);
        if (_matched == Word.Length) m.Stop(StopReason.Shutdown, 0, "Bochs shutdown port");
    }
}
