namespace Emu64.Devices;

/// <summary>
/// PCI configuration mechanism #1 (PCI Local Bus Specification 3.0 §3.2.2.3.2) and the PIIX reset control
/// register, on the ports QEMU's i440FX/PIIX3 "pc" machine uses:
/// <list type="bullet">
/// <item>0xCF8 (32-bit accesses only): CONFIG_ADDRESS. Bit 31 enables, bits 23:16 bus, 15:11 device, 10:8
/// function, 7:2 register; bits 30:24 and 1:0 read 0. Byte and word accesses do not reach it.</item>
/// <item>0xCFC–0xCFF: CONFIG_DATA, any size at offset (register + port − 0xCFC). A function that is not there
/// (any bus but 0, any device or function not listed) reads all ones and ignores writes; so does any access
/// while bit 31 is clear.</item>
/// <item>0xCF9 (byte accesses): the reset control register. Bits 1 (SYS_RST) and 3 (full reset) are kept;
/// writing bit 2 (RST_CPU) set resets the machine, which ends the run with <see cref="StopReason.Reset"/>
/// (QEMU with -no-reboot exits the same way). The FADT names it as the ACPI reset register, value 0x06.</item>
/// </list>
/// </summary>
public sealed class PciHost : IIoDevice
{
    public const ushort AddressPort = 0xCF8, DataPort = 0xCFC, ResetControlPort = 0xCF9;

    private readonly Machine _m;
    private readonly PciFunction?[] _functions = new PciFunction?[256];   // bus 0: device × 8 + function
    private uint _address;
    private byte _resetControl;

    public PciHost(Machine m) { _m = m; }

    public void Add(PciFunction f) => _functions[f.Device * 8 + f.Function] = f;

    /// <summary>The function CONFIG_ADDRESS selects, or null.</summary>
    private PciFunction? Selected =>
        (_address & 0x80000000) != 0 && ((_address >> 16) & 0xFF) == 0 ? _functions[(_address >> 8) & 0xFF] : null;

    public uint In(ushort port, int size)
    {
        if (port == ResetControlPort && size == 1) return _resetControl;
        if (port == AddressPort && size == 4) return _address;
        if (port >= DataPort && Selected is { } f) return f.Read((int)(_address & 0xFC) + port - DataPort, size);
        return size == 4 ? 0xFFFFFFFF : (1u << (8 * size)) - 1;
    }

    public void Out(ushort port, int size, uint value)
    {
        if (port == ResetControlPort && size == 1)
        {
            _resetControl = (byte)(value & 0x0A);
            if ((value & 0x04) != 0) _m.Stop(StopReason.Reset, 0, $"reset through port 0xCF9 (reset control 0x{value & 0xFF:x2})");
            return;
        }
        if (port == AddressPort && size == 4) { _address = value & 0x80FFFFFC; return; }
        if (port >= DataPort && Selected is { } f) f.Write((int)(_address & 0xFC) + port - DataPort, size, value);
    }

    /// <summary>
    /// The functions QEMU's pc machine has on bus 0 that describe Emu64's chipset (values read under QEMU 7.2):
    /// 00:00.0 the i440FX host bridge (8086:1237 rev 02, class 0x060000), 00:01.0 the PIIX3 ISA bridge
    /// (8086:7000, class 0x060100, multi-function), 00:01.3 the PIIX4 power management function (8086:7113
    /// rev 03, class 0x068000, PMBASE 0x601 at 0x40 and its I/O space enabled at 0x80, SCI on IRQ 9, pin INTA);
    /// every one with QEMU's subsystem ID 1AF4:1100.
    /// QEMU's IDE, VGA and network functions are absent: Emu64 has no such devices.
    /// </summary>
    public static PciHost I440fx(Machine m)
    {
        var host = new PciHost(m);
        host.Add(new PciFunction(0, 0, 0x8086, 0x1237, 0x02, 0x060000));
        host.Add(new PciFunction(1, 0, 0x8086, 0x7000, 0x00, 0x060100, multiFunction: true));
        var pm = new PciFunction(1, 3, 0x8086, 0x7113, 0x03, 0x068000, interruptPin: 1);
        pm.Set32(0x40, AcpiPm.Base | 1u);                   // PMBASE, I/O space indicator
        pm.Set8(0x80, 0x01);                                // PMIOSE: the PM I/O block is enabled
        pm.Set8(0x3C, (byte)AcpiPm.SciIrq);
        host.Add(pm);
        return host;
    }
}
