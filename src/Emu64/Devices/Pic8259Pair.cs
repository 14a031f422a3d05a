namespace Emu64.Devices;

/// <summary>
/// The PC/AT's two cascaded 8259s: the master at 0x20/0x21 takes IRQ0–7, the slave at 0xA0/0xA1 takes
/// IRQ8–15 and drives the master's IR2. The edge/level control registers (ELCR) at 0x4D0/0x4D1 choose
/// the trigger mode per IRQ; IRQ0, 1, 2, 8 and 13 are always edge-triggered (masks 0xF8 and 0xDE).
///
/// The pair starts as the firmware leaves it before a multiboot kernel runs: vector bases 0x08 and
/// 0x70 (the BIOS mapping), all inputs masked except the cascade, nothing pending.
///
/// Spurious interrupts: if the CPU acknowledges while no unmasked request remains, the 8259 answers
/// with its IR7 vector without setting an ISR bit (IRQ7 on the master, IRQ15 on the slave, in which
/// case the master's IR2 is in service and needs its own EOI), as the datasheet describes.
/// </summary>
public sealed class Pic8259Pair : IIoDevice
{
    public readonly Pic8259 Master = new(0x08, 0xF8) { Imr = 0xFB };
    public readonly Pic8259 Slave = new(0x70, 0xDE) { Imr = 0xFF };
    private readonly Action _changed;

    private readonly (byte Base, byte Imr, byte Elcr) _master0, _slave0;

    public Pic8259Pair(Action changed)
    {
        _changed = changed;
        _master0 = (Master.VectorBase, Master.Imr, Master.Elcr);
        _slave0 = (Slave.VectorBase, Slave.Imr, Slave.Elcr);
    }

    /// <summary>
    /// Back to the state the pair starts in (after ACPI S3, whose resume loses the chipset's context and where the
    /// firmware's resume path programs the 8259s as at boot).
    /// </summary>
    public void Reset()
    {
        Master.Reset(_master0.Base, _master0.Imr, _master0.Elcr);
        Slave.Reset(_slave0.Base, _slave0.Imr, _slave0.Elcr);
        Cascade();
        _changed();
    }

    /// <summary>True when the master presents a request on INTR.</summary>
    public bool Output => Master.Pending() >= 0;

    public void SetIrq(int irq, bool level)
    {
        if (irq < 8) Master.SetIrq(irq, level);
        else { Slave.SetIrq(irq - 8, level); Cascade(); }
    }

    /// <summary>The slave's INTR output is the master's IR2 input.</summary>
    private void Cascade() => Master.SetIrq(2, Slave.Pending() >= 0);

    /// <summary>The INTA cycle: returns the vector and puts the request in service.</summary>
    public int Acknowledge()
    {
        int irq = Master.Pending();
        int vector;
        if (irq < 0) vector = Master.VectorBase + 7;                 // spurious IRQ7
        else
        {
            Master.Ack(irq);
            if (irq == 2)
            {
                int s = Slave.Pending();
                if (s < 0) vector = Slave.VectorBase + 7;            // spurious IRQ15
                else { Slave.Ack(s); vector = Slave.VectorBase + s; }
                Cascade();
            }
            else vector = Master.VectorBase + irq;
        }
        _changed();
        return vector;
    }

    public uint In(ushort port, int size)
    {
        switch (port)
        {
            case 0x20: return ReadCommand(Master, 0);
            case 0x21: return Master.Imr;
            case 0xA0: return ReadCommand(Slave, 8);
            case 0xA1: return Slave.Imr;
            case 0x4D0: return Master.Elcr;
            case 0x4D1: return Slave.Elcr;
        }
        return 0xFF;
    }

    private uint ReadCommand(Pic8259 chip, int irqBase)
    {
        byte v = chip.ReadCommand(out bool polled);
        if (!polled) return v;
        // Poll command: the read acknowledges like an INTA and returns 0x80 | level (0 if none).
        int irq = chip.Pending();
        if (irq < 0) return 0;
        chip.Ack(irq);
        if (irqBase == 8) Cascade();
        _changed();
        return 0x80u | (uint)irq;
    }

    public void Out(ushort port, int size, uint value)
    {
        byte v = (byte)value;
        switch (port)
        {
            case 0x20: Master.WriteCommand(v); break;
            case 0x21: Master.WriteData(v); break;
            case 0xA0: Slave.WriteCommand(v); Cascade(); break;
            case 0xA1: Slave.WriteData(v); Cascade(); break;
            case 0x4D0: Master.Elcr = (byte)(v & Master.ElcrMask); break;
            case 0x4D1: Slave.Elcr = (byte)(v & Slave.ElcrMask); break;
            default: return;
        }
        _changed();
    }
}
