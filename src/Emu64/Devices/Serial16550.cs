namespace Emu64.Devices;

/// <summary>
/// A 16550A UART (COM1 at 0x3F8, IRQ 4; National Semiconductor PC16550D datasheet). Registers by
/// offset: 0 RBR/THR (DLL when LCR.DLAB), 1 IER (DLM), 2 IIR (read) / FCR (write), 3 LCR, 4 MCR,
/// 5 LSR, 6 MSR, 7 SCR.
///
/// Transmit: a byte written to THR goes to the console stream at once, so the transmitter is always
/// empty again by the next instruction (LSR.THRE and TEMT read 1).
///
/// Receive: bytes given to <see cref="Receive"/> (stdin, tests) wait on the "line" and enter the
/// receiver as it has room — one holding byte, or a 16-byte FIFO once FCR bit 0 enables it — so no
/// input is ever lost to overrun, like QEMU's flow-controlled character backends. The order and
/// content of what the guest receives therefore never depend on host timing.
///
/// Interrupts (IIR, highest priority first): receiver line status 0x06 (IER bit 2), received data
/// 0x04 (IER bit 0; with the FIFO, when the trigger level is reached, else reported as a character
/// timeout 0x0C), transmitter holding register empty 0x02 (IER bit 1; cleared by reading IIR or
/// writing THR), modem status 0x00 (IER bit 3); 0x01 when none. IIR bits 7:6 read 11 with FIFOs on.
/// The interrupt output drives ISA IRQ 4 directly (as QEMU does, MCR.OUT2 does not gate it).
/// </summary>
public sealed class Serial16550 : IIoDevice
{
    private readonly Stream _out;
    private byte _ier, _lcr, _mcr, _scr, _dll = 1, _dlm, _fcr, _lsrErrors;
    private bool _thrInterrupt, _irqLevel, _msrDelta;
    private readonly Queue<byte> _line = new();     // bytes sent to us but not yet in the receiver
    private readonly Queue<byte> _rx = new();       // the holding register or the receive FIFO

    public const byte LsrDataReady = 0x01, LsrOverrun = 0x02, LsrThrEmpty = 0x20, LsrTxEmpty = 0x40;

    /// <summary>Raised when the UART's interrupt output changes (wired to IRQ 4 by the platform).</summary>
    public Action<bool>? Irq;

    public Serial16550(Stream output) { _out = output; }

    public void Flush() => _out.Flush();

    private bool Fifo => (_fcr & 1) != 0;
    private int Capacity => Fifo ? 16 : 1;
    private int TriggerLevel => (_fcr >> 6) switch { 0 => 1, 1 => 4, 2 => 8, _ => 14 };

    /// <summary>Bytes still waiting on the line (not yet taken by the receiver).</summary>
    public int PendingInput => _line.Count + _rx.Count;

    /// <summary>Queues bytes as if they arrived on the line (stdin, tests).</summary>
    public void Receive(ReadOnlySpan<byte> data)
    {
        foreach (var b in data) _line.Enqueue(b);
        Refill();
        UpdateIrq();
    }

    private void Refill()
    {
        while (_rx.Count < Capacity && _line.Count > 0) _rx.Enqueue(_line.Dequeue());
    }

    private bool Dlab => (_lcr & 0x80) != 0;
    private bool Loopback => (_mcr & 0x10) != 0;

    private byte Lsr => (byte)(LsrThrEmpty | LsrTxEmpty | _lsrErrors | (_rx.Count > 0 ? LsrDataReady : 0));

    /// <summary>The interrupt identification, without the FIFO bits.</summary>
    private byte Identify()
    {
        if ((_ier & 4) != 0 && _lsrErrors != 0) return 0x06;
        if ((_ier & 1) != 0 && _rx.Count > 0) return !Fifo || _rx.Count >= TriggerLevel ? (byte)0x04 : (byte)0x0C;
        if ((_ier & 2) != 0 && _thrInterrupt) return 0x02;
        if ((_ier & 8) != 0 && _msrDelta) return 0x00;
        return 0x01;
    }

    public uint In(ushort port, int size)
    {
        switch (port & 7)
        {
            case 0:
                {
                    if (Dlab) return _dll;
                    if (_rx.Count == 0) return 0;
                    byte b = _rx.Dequeue();
                    Refill();
                    UpdateIrq();
                    return b;
                }
            case 1: return Dlab ? _dlm : _ier;
            case 2:
                {
                    byte id = Identify();
                    if (id == 0x02) { _thrInterrupt = false; UpdateIrq(); }   // reading IIR acknowledges THRE
                    return (uint)(id | (Fifo ? 0xC0 : 0));
                }
            case 3: return _lcr;
            case 4: return _mcr;
            case 5:
                {
                    byte lsr = Lsr;
                    if (_lsrErrors != 0) { _lsrErrors = 0; UpdateIrq(); }
                    return lsr;
                }
            case 6:
                {
                    _msrDelta = false;
                    UpdateIrq();
                    if (!Loopback) return 0xB0;                    // DCD, DSR, CTS asserted
                    // Loopback: DTR→DSR, RTS→CTS, OUT1→RI, OUT2→DCD.
                    return (uint)(((_mcr & 1) << 5) | ((_mcr & 2) << 3) | ((_mcr & 4) << 4) | ((_mcr & 8) << 4));
                }
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
                if (Loopback) { _line.Enqueue(v); Refill(); }
                else
                {
                    _out.WriteByte(v);
                    if (v == '\n') _out.Flush();
                }
                _thrInterrupt = true;                              // transmitted at once: THR empty again
                UpdateIrq();
                return;
            case 1:
                if (Dlab) { _dlm = v; return; }
                // Enabling the THRE interrupt while THR is empty raises it (as the 16550 and QEMU do).
                if ((v & 2) != 0 && (_ier & 2) == 0) _thrInterrupt = true;
                _ier = (byte)(v & 0x0F);
                UpdateIrq();
                return;
            case 2:
                if (((v ^ _fcr) & 1) != 0 || (v & 2) != 0) _rx.Clear();   // enabling/disabling or resetting clears the FIFO
                _fcr = (byte)(v & 0xC9);
                Refill();
                UpdateIrq();
                return;
            case 3: _lcr = v; return;
            case 4: _mcr = (byte)(v & 0x1F); _msrDelta = true; UpdateIrq(); return;
            case 7: _scr = v; return;
        }
    }

    private void UpdateIrq()
    {
        bool level = Identify() != 0x01;
        if (level == _irqLevel) return;
        _irqLevel = level;
        Irq?.Invoke(level);
    }
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
