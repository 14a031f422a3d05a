using Emu64.Memory;

namespace Emu64.Devices;

/// <summary>
/// The I/O APIC (Intel 82093AA datasheet) at 0xFEC00000 with 24 input pins. Registers are reached
/// indirectly: write the register number to IOREGSEL (offset 0x00), then read or write IOWIN (offset
/// 0x10). Register 0 is the ID, 1 the version (0x20, 24 entries: 0x00170020 as QEMU's), 2 the
/// arbitration ID, and 0x10 + 2n / 0x11 + 2n the low/high halves of redirection entry n:
/// vector 7:0, delivery mode 10:8, destination mode 11, delivery status 12, polarity 13,
/// remote IRR 14, trigger mode 15 (1 = level), mask 16, destination 63:56. Entries start masked.
///
/// ISA IRQ n arrives on pin n, except IRQ0 (the PIT) on pin 2, which is what QEMU's MADT declares
/// with an interrupt source override. Edge-triggered pins send one message per rising edge (an edge
/// while masked is lost, as on hardware). Level-triggered pins send a message while asserted and set
/// remote IRR until the local APIC's EOI for that vector comes back; if the line is still asserted
/// then, the message is sent again. The polarity bit is stored; ISA lines are active-high.
/// The EOI register at 0x40 (version 0x20) clears remote IRR directly.
/// </summary>
public sealed class IoApic : IMmioDevice
{
    public const ulong DefaultBase = 0xFEC00000;
    public const int Pins = 24;
    private const ulong Masked = 1UL << 16, RemoteIrr = 1UL << 14, Level = 1UL << 15;

    private readonly LocalApic _apic;
    private readonly ulong[] _redir = new ulong[Pins];
    private uint _lines;                // current level of each pin
    private uint _select, _id;

    public IoApic(LocalApic apic)
    {
        _apic = apic;
        for (int i = 0; i < Pins; i++) _redir[i] = Masked;
    }

    /// <summary>Power-on state (after ACPI S3): ID 0, every redirection entry masked and cleared. The input levels stay.</summary>
    public void Reset()
    {
        for (int i = 0; i < Pins; i++) _redir[i] = Masked;
        _select = 0; _id = 0;
    }

    public ulong Read(ulong offset, int size) => offset switch
    {
        0x00 => _select,
        0x10 => ReadRegister(_select),
        _ => 0,
    };

    public void Write(ulong offset, int size, ulong value)
    {
        switch (offset)
        {
            case 0x00: _select = (uint)value & 0xFF; break;
            case 0x10: WriteRegister(_select, (uint)value); break;
            case 0x40: EndOfInterrupt((int)(value & 0xFF)); break;
        }
    }

    private uint ReadRegister(uint reg)
    {
        switch (reg)
        {
            case 0: return _id << 24;
            case 1: return ((Pins - 1) << 16) | 0x20;
            case 2: return _id << 24;
        }
        int pin = (int)(reg - 0x10) >> 1;
        if (reg < 0x10 || pin >= Pins) return 0xFFFFFFFF;
        return (reg & 1) == 0 ? (uint)_redir[pin] : (uint)(_redir[pin] >> 32);
    }

    private void WriteRegister(uint reg, uint v)
    {
        if (reg == 0) { _id = (v >> 24) & 0xF; return; }
        int pin = (int)(reg - 0x10) >> 1;
        if (reg < 0x10 || pin >= Pins) return;
        ulong e = _redir[pin];
        if ((reg & 1) == 0)
        {
            // Delivery status (12) and remote IRR (14) are read-only.
            const ulong ro = (1UL << 12) | RemoteIrr;
            e = (e & (0xFFFFFFFF00000000UL | ro)) | (v & ~(uint)ro);
            if ((e & Level) == 0) e &= ~RemoteIrr;
        }
        else e = (e & 0xFFFFFFFFUL) | ((ulong)v << 32);
        _redir[pin] = e;
        // Unmasking a level-triggered pin whose line is asserted delivers it now.
        if ((e & Level) != 0 && (_lines & (1u << pin)) != 0) Service(pin);
    }

    /// <summary>Drives input pin <paramref name="pin"/> to <paramref name="level"/> (true = asserted).</summary>
    public void SetPin(int pin, bool level)
    {
        if (pin >= Pins) return;
        uint bit = 1u << pin;
        bool rising = level && (_lines & bit) == 0;
        if (level) _lines |= bit; else _lines &= ~bit;
        ulong e = _redir[pin];
        if ((e & Level) != 0) { if (level) Service(pin); }
        else if (rising) Service(pin);
    }

    private void Service(int pin)
    {
        ulong e = _redir[pin];
        if ((e & Masked) != 0) return;
        bool level = (e & Level) != 0;
        if (level && (e & RemoteIrr) != 0) return;          // waiting for the EOI of the previous message
        int mode = (int)(e >> 8) & 7;
        if (mode is not (0 or 1)) return;                    // fixed and lowest priority; NMI/SMI/INIT/ExtINT not modelled
        if (!_apic.DestinationIsSelf((uint)(e >> 56), (e & 0x800) != 0, x2: false)) return;
        if (level) _redir[pin] = e | RemoteIrr;
        _apic.Accept((int)(e & 0xFF), level);
    }

    /// <summary>The local APIC's EOI for a level-triggered vector: clear remote IRR and re-check the line.</summary>
    public void EndOfInterrupt(int vector)
    {
        for (int pin = 0; pin < Pins; pin++)
        {
            ulong e = _redir[pin];
            if ((e & RemoteIrr) == 0 || (int)(e & 0xFF) != vector) continue;
            _redir[pin] = e & ~RemoteIrr;
            if ((_lines & (1u << pin)) != 0) Service(pin);
        }
    }
}
