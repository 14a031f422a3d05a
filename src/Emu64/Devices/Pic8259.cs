namespace Emu64.Devices;

/// <summary>
/// One Intel 8259A programmable interrupt controller (datasheet 231468). Eight request inputs feed the
/// interrupt request register (IRR); the interrupt mask register (IMR) hides some; the in-service
/// register (ISR) remembers what the CPU is handling, and in the default fully nested mode an
/// in-service request blocks requests of equal or lower priority until an EOI clears it.
/// Priority: IR0 highest … IR7 lowest, unless rotated by OCW2.
/// </summary>
public sealed class Pic8259
{
    public byte Irr, Imr, Isr;
    /// <summary>Edge/level control (the PC's ELCR, ports 0x4D0/0x4D1): a set bit makes that input level-sensitive.</summary>
    public byte Elcr;
    public byte VectorBase;
    private byte _lines;            // current level of each input, for edge detection
    private int _highest;           // the input with the highest priority (0 unless rotated)
    private int _initStep;          // 0 = operational, 2..4 = expecting ICW2..ICW4
    private bool _single, _needIcw4, _autoEoi, _readIsr, _poll, _rotateOnAutoEoi;
    public readonly byte ElcrMask;

    public Pic8259(byte vectorBase, byte elcrMask) { VectorBase = vectorBase; ElcrMask = elcrMask; }

    /// <summary>Returns to a given programmed state (nothing requested or in service, fully nested, not initialising).</summary>
    public void Reset(byte vectorBase, byte imr, byte elcr)
    {
        VectorBase = vectorBase; Imr = imr; Elcr = elcr;
        Irr = Isr = 0;
        _highest = _initStep = 0;
        _single = _needIcw4 = _autoEoi = _readIsr = _poll = _rotateOnAutoEoi = false;
    }

    private int Rank(int irq) => (irq - _highest) & 7;

    /// <summary>The highest-priority input set in <paramref name="bits"/>, or -1.</summary>
    private int HighestIn(byte bits)
    {
        if (bits == 0) return -1;
        for (int i = 0; i < 8; i++) { int irq = (_highest + i) & 7; if ((bits & (1 << irq)) != 0) return irq; }
        return -1;
    }

    /// <summary>The request this chip would present on INTR now, or -1 (masked, or blocked by a higher in-service one).</summary>
    public int Pending()
    {
        int irq = HighestIn((byte)(Irr & ~Imr));
        if (irq < 0) return -1;
        int busy = HighestIn(Isr);
        if (busy >= 0 && Rank(busy) <= Rank(irq)) return -1;
        return irq;
    }

    public void SetIrq(int irq, bool level)
    {
        byte bit = (byte)(1 << irq);
        if ((Elcr & bit) != 0)
        {
            // Level-sensitive: the request follows the line.
            if (level) Irr |= bit; else Irr &= (byte)~bit;
        }
        else if (level && (_lines & bit) == 0) Irr |= bit;   // edge: latch a low-to-high transition
        if (level) _lines |= bit; else _lines &= (byte)~bit;
    }

    /// <summary>INTA for input <paramref name="irq"/>: move the request into service (unless auto-EOI).</summary>
    public void Ack(int irq)
    {
        byte bit = (byte)(1 << irq);
        if ((Elcr & bit) == 0) Irr &= (byte)~bit;
        if (_autoEoi) { if (_rotateOnAutoEoi) _highest = (irq + 1) & 7; }
        else Isr |= bit;
    }

    public void WriteCommand(byte v)
    {
        if ((v & 0x10) != 0)
        {
            // ICW1: starts initialisation. Clears IMR and ISR, resets the edge latches and priority.
            _initStep = 2;
            _single = (v & 2) != 0;
            _needIcw4 = (v & 1) != 0;
            Imr = 0; Isr = 0; Irr = 0; _highest = 0; _autoEoi = false; _readIsr = false; _poll = false;
            return;
        }
        if ((v & 0x08) != 0)
        {
            // OCW3: register read select and poll command.
            if ((v & 0x04) != 0) _poll = true;
            if ((v & 0x02) != 0) _readIsr = (v & 0x01) != 0;
            return;
        }
        // OCW2: end of interrupt and priority rotation. Bits 7:5 = R, SL, EOI; bits 2:0 = level.
        int level = v & 7;
        switch (v >> 5)
        {
            case 0b001: EndOfInterrupt(HighestIn(Isr), rotate: false); break;        // non-specific EOI
            case 0b011: EndOfInterrupt(level, rotate: false); break;                 // specific EOI
            case 0b101: EndOfInterrupt(HighestIn(Isr), rotate: true); break;         // rotate on non-specific EOI
            case 0b111: EndOfInterrupt(level, rotate: true); break;                  // rotate on specific EOI
            case 0b100: _rotateOnAutoEoi = true; break;
            case 0b000: _rotateOnAutoEoi = false; break;
            case 0b110: _highest = (level + 1) & 7; break;                           // set priority: level becomes lowest
        }
    }

    private void EndOfInterrupt(int irq, bool rotate)
    {
        if (irq < 0) return;
        Isr &= (byte)~(1 << irq);
        if (rotate) _highest = (irq + 1) & 7;
    }

    public void WriteData(byte v)
    {
        switch (_initStep)
        {
            case 2: VectorBase = (byte)(v & 0xF8); _initStep = _single ? (_needIcw4 ? 4 : 0) : 3; return;
            case 3: _initStep = _needIcw4 ? 4 : 0; return;          // ICW3: cascade wiring, fixed on a PC
            case 4: _autoEoi = (v & 2) != 0; _initStep = 0; return; // ICW4: 8086 mode, auto-EOI
            default: Imr = v; return;                                // OCW1
        }
    }

    /// <summary>Reads the command port: IRR or ISR as selected by OCW3, or the poll word.</summary>
    public byte ReadCommand(out bool polled)
    {
        polled = _poll;
        if (_poll) { _poll = false; return 0; }
        return _readIsr ? Isr : Irr;
    }
}
