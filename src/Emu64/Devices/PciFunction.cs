namespace Emu64.Devices;

/// <summary>
/// The 256-byte configuration space of one PCI function (PCI Local Bus Specification 3.0 §6.1): a type-0
/// header whose identification fields (vendor, device, revision, class, header type, interrupt pin) are
/// read-only, with writable bytes given by a mask: the command register's I/O, memory and bus-master
/// enables, the latency timer, the interrupt line, and the device-specific registers from 0x40 on. These
/// functions have no base address registers, so Linux's BAR sizing (write all ones, read back) reads 0.
/// Device-specific registers hold what is written without changing any routing (e.g. the PIIX4 PMBASE:
/// the ACPI block stays at 0x600).
/// </summary>
public sealed class PciFunction
{
    /// <summary>The subsystem IDs QEMU gives its chipset functions (Red Hat 0x1AF4, QEMU 0x1100).</summary>
    public const ushort SubsystemVendor = 0x1AF4, SubsystemId = 0x1100;

    public readonly byte Device, Function;
    private readonly byte[] _config = new byte[256];
    private readonly byte[] _writable = new byte[256];

    public PciFunction(byte device, byte function, ushort vendor, ushort deviceId, byte revision, uint classCode,
        bool multiFunction = false, byte interruptPin = 0)
    {
        Device = device; Function = function;
        Set16(0x00, vendor);
        Set16(0x02, deviceId);
        _config[0x08] = revision;
        _config[0x09] = (byte)classCode; _config[0x0A] = (byte)(classCode >> 8); _config[0x0B] = (byte)(classCode >> 16);
        _config[0x0E] = (byte)(multiFunction ? 0x80 : 0x00);
        _config[0x3D] = interruptPin;
        Set16(0x2C, SubsystemVendor);
        Set16(0x2E, SubsystemId);
        _writable[0x04] = 0x07;                             // I/O space, memory space, bus master
        _writable[0x0D] = 0xFF;                             // latency timer
        _writable[0x3C] = 0xFF;                             // interrupt line
        for (int i = 0x40; i < 256; i++) _writable[i] = 0xFF;
    }

    public void Set8(int reg, byte v) => _config[reg] = v;
    public void Set16(int reg, ushort v) { _config[reg] = (byte)v; _config[reg + 1] = (byte)(v >> 8); }
    public void Set32(int reg, uint v) { Set16(reg, (ushort)v); Set16(reg + 2, (ushort)(v >> 16)); }
    /// <summary>Makes <paramref name="count"/> bytes from <paramref name="reg"/> read-only (their value stays what was set).</summary>
    public void ReadOnly(int reg, int count) { for (int i = 0; i < count; i++) _writable[reg + i] = 0; }

    public uint Read(int reg, int size)
    {
        uint v = 0;
        for (int i = size - 1; i >= 0; i--) v = (v << 8) | _config[(reg + i) & 0xFF];
        return v;
    }

    public void Write(int reg, int size, uint value)
    {
        for (int i = 0; i < size; i++)
        {
            int r = (reg + i) & 0xFF;
            byte m = _writable[r];
            _config[r] = (byte)((_config[r] & ~m) | ((byte)(value >> (8 * i)) & m));
        }
    }
}
