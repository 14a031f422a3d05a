namespace Emu64.Devices;

/// <summary>A device on the I/O-port bus. Size is 1, 2 or 4 bytes.</summary>
public interface IIoDevice
{
    uint In(ushort port, int size);
    void Out(ushort port, int size, uint value);
}

/// <summary>
/// The 64 Ki I/O ports. Each port names the device that answers it; unknown ports read all ones and
/// ignore writes, as on a PC (and as QEMU does).
/// </summary>
public sealed class IoBus
{
    private readonly IIoDevice?[] _ports = new IIoDevice?[65536];

    public void Register(ushort first, int count, IIoDevice dev)
    {
        for (int i = 0; i < count; i++)
        {
            int p = first + i;
            if (_ports[p] is { } other && other != dev)
                throw new InvalidOperationException($"I/O port {p:x} claimed by {other.GetType().Name} and {dev.GetType().Name}");
            _ports[p] = dev;
        }
    }

    public IIoDevice? DeviceAt(ushort port) => _ports[port];

    public uint In(ushort port, int size)
    {
        var d = _ports[port];
        if (d is null) return size == 4 ? 0xFFFFFFFF : (1u << (size * 8)) - 1;
        return d.In(port, size);
    }

    public void Out(ushort port, int size, uint value) => _ports[port]?.Out(port, size, value);
}
