namespace Emu64.Devices;

/// <summary>
/// The MC146818 real-time clock and its 128 bytes of CMOS RAM: write an index to port 0x70 (bit 7
/// is the NMI-disable bit, stored and otherwise ignored), then read or write port 0x71.
///
/// The clock is virtual, so runs are deterministic: it reads <see cref="Epoch"/> (2000-01-01
/// 00:00:00, a Saturday) plus the virtual seconds elapsed (virtual ticks ÷ TicksPerSecond). The same
/// instant under QEMU is <c>-rtc base=2000-01-01T00:00:00</c>. Guests may set the clock (with
/// register B's SET bit, as firmware does); the change is kept as an offset from the virtual clock.
///
/// Status registers: A = 0x26 (32.768 kHz time base, 1024 Hz rate) with UIP (bit 7) set during the
/// last 244 µs of each virtual second, when a real RTC is updating; B = 0x02 (24-hour, BCD) as the
/// BIOS leaves it, honouring DM (bit 2, binary) and 24/12 (bit 1) when the guest changes them;
/// C = 0 (no RTC interrupts are generated); D = 0x80 (valid RAM and time).
///
/// Memory-size bytes as QEMU's PC firmware tables: 0x15/0x16 base memory in KiB (640), 0x17/0x18 and
/// 0x30/0x31 extended memory above 1 MiB in KiB (at most 65535), 0x34/0x35 memory above 16 MiB in
/// 64 KiB blocks, 0x5B–0x5D memory above 4 GiB in 64 KiB blocks, 0x5F the CPU count minus one.
/// </summary>
public sealed class Cmos : IIoDevice
{
    public static readonly DateTime Epoch = new(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc);
    private const ulong UipNanoseconds = 244_000;

    private readonly Machine _m;
    private readonly byte[] _ram = new byte[128];
    private byte _index;
    private long _offsetSeconds;          // guest adjustment to the virtual clock

    public Cmos(Machine m)
    {
        _m = m;
        _ram[0x0A] = 0x26;
        _ram[0x0B] = 0x02;
        _ram[0x0D] = 0x80;
        ulong ram = m.Memory.RamSize;
        SetWord(0x15, 640);
        ulong ext = Math.Min(ram / 1024 > 1024 ? ram / 1024 - 1024 : 0, 65535);
        SetWord(0x17, (ushort)ext);
        SetWord(0x30, (ushort)ext);
        SetWord(0x34, (ushort)(ram > 16UL << 20 ? Math.Min((ram - (16UL << 20)) >> 16, 65535) : 0));
        _ram[0x5F] = 0;                   // one CPU
    }

    private void SetWord(int at, ushort v) { _ram[at] = (byte)v; _ram[at + 1] = (byte)(v >> 8); }

    private ulong Nanoseconds => VirtualClock.Nanoseconds(_m.Now, _m.Options.TicksPerSecond);

    /// <summary>The time the RTC shows now.</summary>
    public DateTime Time => Epoch.AddSeconds((double)(long)(Nanoseconds / 1_000_000_000) + _offsetSeconds);

    private bool Binary => (_ram[0x0B] & 0x04) != 0;
    private bool Hours24 => (_ram[0x0B] & 0x02) != 0;

    private byte Encode(int v) => Binary ? (byte)v : (byte)(((v / 10) << 4) | (v % 10));
    private int Decode(byte v) => Binary ? v : (v >> 4) * 10 + (v & 0xF);

    private byte EncodeHour(int h)
    {
        if (Hours24) return Encode(h);
        int h12 = h % 12 == 0 ? 12 : h % 12;
        return (byte)(Encode(h12) | (h >= 12 ? 0x80 : 0));
    }

    private int DecodeHour(byte v)
    {
        if (Hours24) return Decode(v);
        int h = Decode((byte)(v & 0x7F)) % 12;
        return (v & 0x80) != 0 ? h + 12 : h;
    }

    public uint In(ushort port, int size)
    {
        if (port == 0x70) return 0xFF;    // the index register is write-only
        var t = Time;
        switch (_index)
        {
            case 0x00: return Encode(t.Second);
            case 0x02: return Encode(t.Minute);
            case 0x04: return EncodeHour(t.Hour);
            case 0x06: return Encode((int)t.DayOfWeek + 1);                 // 1 = Sunday
            case 0x07: return Encode(t.Day);
            case 0x08: return Encode(t.Month);
            case 0x09: return Encode(t.Year % 100);
            case 0x32: return Encode(t.Year / 100);
            case 0x0A:
                {
                    bool uip = Nanoseconds % 1_000_000_000 >= 1_000_000_000 - UipNanoseconds;
                    return (uint)((_ram[0x0A] & 0x7F) | (uip ? 0x80 : 0));
                }
            case 0x0C: return 0;          // no interrupt flags: the RTC raises no IRQ8
        }
        return _ram[_index];
    }

    public void Out(ushort port, int size, uint value)
    {
        byte v = (byte)value;
        if (port == 0x70) { _index = (byte)(v & 0x7F); return; }
        switch (_index)
        {
            case 0x00: case 0x02: case 0x04: case 0x06: case 0x07: case 0x08: case 0x09: case 0x32:
                SetTimeField(_index, v);
                return;
            case 0x0A: _ram[0x0A] = (byte)(v & 0x7F); return;
            case 0x0C: case 0x0D: return; // read-only
        }
        _ram[_index] = v;
    }

    private void SetTimeField(byte reg, byte v)
    {
        var t = Time;
        int year = t.Year, month = t.Month, day = t.Day, hour = t.Hour, min = t.Minute, sec = t.Second;
        switch (reg)
        {
            case 0x00: sec = Decode(v); break;
            case 0x02: min = Decode(v); break;
            case 0x04: hour = DecodeHour(v); break;
            case 0x06: return;            // the day of week follows from the date
            case 0x07: day = Decode(v); break;
            case 0x08: month = Decode(v); break;
            case 0x09: year = year / 100 * 100 + Decode(v); break;
            case 0x32: year = Decode(v) * 100 + year % 100; break;
        }
        if (year < 1 || month is < 1 or > 12 || hour > 23 || min > 59 || sec > 59) return;
        day = Math.Clamp(day, 1, DateTime.DaysInMonth(year, month));
        var wanted = new DateTime(year, month, day, hour, min, sec, DateTimeKind.Utc);
        _offsetSeconds += (long)(wanted - t).TotalSeconds;
    }
}
