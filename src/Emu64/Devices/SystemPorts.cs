namespace Emu64.Devices;

/// <summary>
/// The small legacy ports a PC kernel touches on its way up or down:
/// <list type="bullet">
/// <item>0x61, system control port B: bit 0 is the PIT channel 2 gate, bit 1 the speaker data enable
/// (stored), bit 4 the DRAM refresh toggle (flips every 15.085 µs of virtual time, which some delay
/// loops count), bit 5 PIT channel 2's OUT.</item>
/// <item>0x80, the POST diagnostic port (also used as a tiny I/O delay): writes are ignored, reads return 0xFF.</item>
/// <item>0x92, system control port A: bit 1 is the A20 gate (stored and read back; RAM is never
/// wrapped at 1 MiB), bit 0 a fast reset on a 0→1 write.</item>
/// </list>
/// The 8042 keyboard controller (0x60/0x64), which can also reset the machine and gate A20, is <see cref="I8042"/>.
/// A guest reset request stops the run with <see cref="StopReason.Reset"/> (QEMU with -no-reboot does
/// the same: it exits instead of rebooting).
/// </summary>
public sealed class SystemPorts : IIoDevice
{
    private const ulong RefreshNanoseconds = 15_085;

    private readonly Machine _m;
    private readonly Pit8254 _pit;
    private byte _portB, _portA = 0x02;   // A20 enabled, as firmware leaves it

    public SystemPorts(Machine m, Pit8254 pit) { _m = m; _pit = pit; }

    public void RegisterPorts(Devices.IoBus io)
    {
        io.Register(0x61, 1, this);
        io.Register(0x80, 1, this);
        io.Register(0x92, 1, this);
    }

    public bool A20 => (_portA & 2) != 0;

    /// <summary>Sets the A20 gate (the 8042's output port drives the same gate).</summary>
    public void SetA20(bool on) => _portA = (byte)((_portA & ~2) | (on ? 2 : 0));

    public uint In(ushort port, int size)
    {
        switch (port)
        {
            case 0x61:
                {
                    ulong ns = VirtualClock.Nanoseconds(_m.Now, _m.Options.TicksPerSecond);
                    bool refresh = (ns / RefreshNanoseconds & 1) != 0;
                    return (uint)((_portB & 0x03) | (_pit.Gate2 ? 1 : 0) | (refresh ? 0x10 : 0) | (_pit.Out2 ? 0x20 : 0));
                }
            case 0x92: return _portA;
        }
        return 0xFF;
    }

    public void Out(ushort port, int size, uint value)
    {
        byte v = (byte)value;
        switch (port)
        {
            case 0x61:
                _portB = (byte)(v & 0x0F);
                _pit.SetGate2((v & 1) != 0);
                break;
            case 0x92:
                bool reset = (v & 1) != 0 && (_portA & 1) == 0;
                _portA = (byte)(v & 0x03);
                if (reset) _m.Stop(StopReason.Reset, 0, "reset through port 0x92 (fast reset)");
                break;
        }
    }
}
