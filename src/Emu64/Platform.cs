using Emu64.Devices;

namespace Emu64;

public sealed partial class Machine
{
    /// <summary>The PC platform devices: interrupt controllers, timers, firmware configuration, CMOS.</summary>
    public Platform Platform { get; private set; } = null!;

    partial void AttachPlatformDevices() => Platform = new Platform(this);
}

/// <summary>
/// Wires the PC platform together the way a QEMU "pc" machine is wired (with the firmware state its SeaBIOS
/// leaves: ACPI tables, MTRRs), so kernels written for
/// <c>qemu-system-x86_64 -kernel</c> find their devices where they expect them:
/// <code>
///   ISA IRQ n ──┬── 8259 pair (master 0x20/0x21, slave 0xA0/0xA1, cascade on IRQ2) ── INTR ─┐
///               │                                                     LAPIC LINT0 (ExtINT)─┤─ CPU
///               └── I/O APIC 0xFEC00000 pin n (IRQ0 → pin 2) ── local APIC 0xFEE00000 ─────┘
/// </code>
/// Every ISA interrupt line goes to both controllers; the guest chooses which one to use by masking
/// the other (as on a real PC). The PIC's INTR output reaches the CPU when the local APIC is globally
/// disabled, or through LINT0 programmed as ExtINT (the state firmware leaves it in).
///
/// Devices never run on the per-instruction path: timers publish the virtual time of their next event
/// (<see cref="Machine.NextEventAt"/>), controllers recompute <see cref="Machine.InterruptLine"/> only
/// when their state changes, and the run loop checks just those two values.
/// </summary>
public sealed class Platform : IInterruptController
{
    private readonly Machine _m;
    public readonly Pic8259Pair Pic;
    public readonly Pit8254 Pit;
    public readonly LocalApic Apic;
    public readonly IoApic IoApic;
    public readonly FwCfg FwCfg;
    public readonly Cmos Cmos;
    public readonly SystemPorts Ports;
    public readonly AcpiPm AcpiPm;
    public readonly I8042 I8042;
    public readonly PciHost Pci;
    public readonly PcTestdev Testdev;
    public readonly Hpet Hpet;

    public Platform(Machine m)
    {
        _m = m;
        Pic = new Pic8259Pair(UpdateInterruptLine);
        // The 8254's output reaches IRQ0 only while the HPET is not in LegacyReplacement mode (which takes IRQ0 over).
        Hpet = new Hpet(m, SetIrq, SetGsi);
        Pit = new Pit8254(m, (irq, level) => { if (!Hpet.LegacyReplacement) SetIrq(irq, level); });
        Apic = new LocalApic(m, this);
        IoApic = new IoApic(Apic);
        FwCfg = new FwCfg(m);
        // Likewise the RTC's IRQ8: LegacyReplacement routes HPET timer 1 there instead (the IA-PC HPET specification's LegacyReplacement route).
        Cmos = new Cmos(m, (irq, level) => { if (!Hpet.LegacyReplacement) SetIrq(irq, level); });
        Ports = new SystemPorts(m, Pit);
        AcpiPm = new AcpiPm(m, SetIrq);
        Cmos.Alarm = AcpiPm.RtcEvent;        // the RTC's interrupt is the ACPI fixed RTC event (a wake source)
        I8042 = new I8042(m, SetIrq, () => Ports.A20, Ports.SetA20);
        Pci = PciHost.I440fx(m);
        Testdev = new PcTestdev(SetGsi);

        m.Io.Register(0x20, 2, Pic);
        m.Io.Register(0xA0, 2, Pic);
        m.Io.Register(0x4D0, 2, Pic);
        m.Io.Register(0x40, 4, Pit);
        m.Io.Register(0x510, 2, FwCfg);
        m.Io.Register(FwCfg.DmaPort, 8, FwCfg);
        m.Io.Register(0x70, 2, Cmos);
        Ports.RegisterPorts(m.Io);
        m.Io.Register(AcpiPm.Base, AcpiPm.Length, AcpiPm);
        m.Io.Register(0x60, 1, I8042);
        m.Io.Register(0x64, 1, I8042);
        m.Io.Register(PciHost.AddressPort, 8, Pci);
        m.Memory.AddMmio(IoApic.DefaultBase, 0x1000, IoApic);
        Testdev.Register(m.Io, m.Memory);
        m.Memory.AddMmio(Hpet.DefaultBase, Hpet.Length, Hpet);
        Apic.MapMmio();

        m.AddTimedDevice(Pit);
        m.AddTimedDevice(Apic);
        m.AddTimedDevice(AcpiPm);
        m.AddTimedDevice(Hpet);
        m.AddTimedDevice(Cmos);
        m.Com1.Irq = level => SetIrq(4, level);
        m.InterruptController = this;

        // What PC firmware leaves behind for every guest, as QEMU's SeaBIOS does: the ACPI tables in
        // 0xE0000–0xFFFFF and the MTRRs programmed.
        AcpiTables.Install(m.Memory);
        m.Cpu.SetFirmwareMtrrs();
    }

    /// <summary>Drives ISA interrupt line <paramref name="irq"/> (0–15) to both interrupt controllers.</summary>
    public void SetIrq(int irq, bool level)
    {
        Pic.SetIrq(irq, level);
        // QEMU's MADT declares the interrupt source override ISA IRQ0 → GSI 2; the other ISA IRQs are identity.
        IoApic.SetPin(irq == 0 ? 2 : irq, level);
        UpdateInterruptLine();
    }

    /// <summary>
    /// Drives global system interrupt <paramref name="gsi"/> (an I/O APIC input, as the HPET's Tn_INT_ROUTE names
    /// one, or pc-testdev's lines 0x2000+N). GSIs below 16 are the ISA lines and reach the 8259s too, as QEMU's gsi_handler does; GSI 2 is the
    /// master's cascade input there, so only the I/O APIC sees it.
    /// </summary>
    public void SetGsi(int gsi, bool level)
    {
        if (gsi < 16 && gsi != 2) { SetIrq(gsi, level); return; }
        IoApic.SetPin(gsi, level);
        UpdateInterruptLine();
    }

    /// <summary>True when the 8259's INTR output reaches the CPU (APIC off, or LINT0 unmasked ExtINT).</summary>
    private bool PicRoutedToCpu => !Apic.GloballyEnabled || Apic.Lint0AcceptsExtInt;

    /// <summary>Recomputes the CPU's interrupt request line; ends the current block when it rises.</summary>
    public void UpdateInterruptLine()
    {
        bool line = Apic.HasDeliverable || (PicRoutedToCpu && Pic.Output);
        _m.InterruptLine = line;
        if (line) _m.Cpu.ExitBlock = true;
    }

    /// <summary>
    /// The CPU's interrupt-acknowledge cycle: the local APIC's highest deliverable vector first, then
    /// the 8259 (which answers the INTA itself when routed through ExtINT).
    /// </summary>
    public int Acknowledge()
    {
        int v = Apic.Acknowledge();
        if (v < 0 && PicRoutedToCpu && Pic.Output) v = Pic.Acknowledge();
        UpdateInterruptLine();
        return v;
    }
}

/// <summary>
/// Converts between virtual time (machine ticks, <see cref="MachineOptions.TicksPerSecond"/> per virtual
/// second) and a device clock of <c>hz</c> ticks per virtual second. 128-bit intermediates keep it exact
/// for runs of any length; used only when a device is programmed or an event fires.
/// </summary>
public static class VirtualClock
{
    /// <summary>Device ticks elapsed at virtual tick <paramref name="ticks"/> (rounded down).</summary>
    public static ulong ToDevice(ulong ticks, ulong hz, ulong tps) => (ulong)((UInt128)ticks * hz / tps);

    /// <summary>The first virtual tick at which the device clock has reached <paramref name="deviceTicks"/>.</summary>
    public static ulong ToTicks(ulong deviceTicks, ulong hz, ulong tps)
    {
        UInt128 t = ((UInt128)deviceTicks * tps + hz - 1) / hz;
        return t > ulong.MaxValue - 1 ? ulong.MaxValue - 1 : (ulong)t;
    }

    /// <summary>Nanoseconds of virtual time at virtual tick <paramref name="ticks"/>.</summary>
    public static ulong Nanoseconds(ulong ticks, ulong tps) => ToDevice(ticks, 1_000_000_000, tps);
}
