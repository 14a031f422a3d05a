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
/// D = 0x80 (valid RAM and time).
///
/// Interrupts (MC146818 datasheet): the update cycle ends at each whole virtual second and sets UF (register C
/// bit 4); it sets AF (bit 5) when the new time matches the alarm registers 1, 3 and 5 (seconds, minutes, hours,
/// each compared in the current BCD/binary and 12/24-hour format; a value 0xC0–0xFF matches any); the periodic
/// divider (register A rate RS, 256 Hz to 2 Hz, none for RS = 0) sets PF (bit 6). IRQF (bit 7) is set while a flag
/// and its enable in register B (UIE 4, AIE 5, PIE 6) are both set, and drives IRQ8; reading C returns the flags and
/// clears them all, which releases IRQ8. The flags are computed from virtual time when C is read, so the RTC costs
/// nothing while no enable bit is set; with one set, the next flag is a timed event. Each rising edge of IRQ8 is also
/// reported to <see cref="Alarm"/> (the ACPI fixed RTC event, PM1_STS.RTC_STS, which can wake the machine from S3).
///
/// Memory-size bytes as QEMU's PC firmware tables: 0x15/0x16 base memory in KiB (640), 0x17/0x18 and
/// 0x30/0x31 extended memory above 1 MiB in KiB (at most 65535), 0x34/0x35 memory above 16 MiB in
/// 64 KiB blocks, 0x5B–0x5D memory above 4 GiB in 64 KiB blocks, 0x5F the CPU count minus one.
/// </summary>
public sealed class Cmos : IIoDevice, ITimedDevice
{
    public static readonly DateTime Epoch = new(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc);
    private const ulong UipNanoseconds = 244_000;
    private const ulong NsPerSecond = 1_000_000_000;
    public const byte RegB_Pie = 0x40, RegB_Aie = 0x20, RegB_Uie = 0x10;
    public const byte RegC_Irqf = 0x80, RegC_Pf = 0x40, RegC_Af = 0x20, RegC_Uf = 0x10;

    private readonly Machine _m;
    private readonly Action<int, bool> _setIrq;
    private readonly byte[] _ram = new byte[128];
    private byte _index;
    private long _offsetSeconds;          // guest adjustment to the virtual clock
    private ulong _cReadNs;               // virtual nanoseconds at the last read of register C (flags count from there)
    private bool _irq8;                   // the IRQ8 output (IRQF)

    /// <summary>Called on each rising edge of IRQ8 (the ACPI RTC_STS event).</summary>
    public Action? Alarm;

    public ulong NextEventAt { get; private set; } = ulong.MaxValue;

    public Cmos(Machine m, Action<int, bool> setIrq)
    {
        _m = m;
        _setIrq = setIrq;
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
        if (_index == 0x0A)
        {
            // Polled in tight loops (waiting for an update to begin or end): no calendar arithmetic here.
            bool uip = Nanoseconds % NsPerSecond >= NsPerSecond - UipNanoseconds;
            return (uint)((_ram[0x0A] & 0x7F) | (uip ? 0x80 : 0));
        }
        if (_index is not (0x00 or 0x02 or 0x04 or 0x06 or 0x07 or 0x08 or 0x09 or 0x32 or 0x0C)) return _ram[_index];
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
            case 0x0C:
                {
                    ulong ns = Nanoseconds;
                    byte c = Flags(ns);
                    _cReadNs = ns;        // reading C clears every flag
                    Update();
                    return c;
                }
        }
        return _ram[_index];
    }

    // ---- interrupt flags ----

    /// <summary>Whole update cycles (virtual seconds) completed by virtual nanosecond <paramref name="ns"/>.</summary>
    private static ulong Updates(ulong ns) => ns / NsPerSecond;

    /// <summary>The periodic interrupt's period in nanoseconds for register A's rate (0: RS = 0, no periodic flag).</summary>
    private ulong PeriodNs
    {
        get
        {
            int rs = _ram[0x0A] & 0xF;
            if (rs == 0) return 0;
            int shift = rs <= 2 ? rs + 7 : rs;          // RS 1, 2 give the rates of RS 8, 9 (32.768 kHz time base)
            return (ulong)(((UInt128)NsPerSecond << shift) / 65536);   // 65536 >> RS Hz (3.90625 ms … 500 ms)
        }
    }

    private bool Match(byte alarm, byte value) => alarm >= 0xC0 || alarm == value;

    /// <summary>Does the time shown after update <paramref name="n"/> match the alarm registers?</summary>
    private bool AlarmMatches(ulong n)
    {
        long sod = ((long)n + _offsetSeconds) % 86400;      // the epoch is a midnight: seconds of the day shown
        if (sod < 0) sod += 86400;
        return Match(_ram[0x01], Encode((int)(sod % 60))) && Match(_ram[0x03], Encode((int)(sod / 60 % 60)))
            && Match(_ram[0x05], EncodeHour((int)(sod / 3600)));
    }

    // No update in (_alarmAfter, _alarmNext) matches the alarm; valid until the alarm, the format or the time is written.
    private ulong _alarmAfter = ulong.MaxValue, _alarmNext;

    /// <summary>
    /// The first update after <paramref name="after"/> whose time matches the alarm, or ulong.MaxValue. Every combination
    /// of seconds, minutes and hours recurs within a day, so a day of updates is searched at most (once per alarm event).
    /// </summary>
    private ulong NextAlarmUpdate(ulong after)
    {
        // Fast forms: "don't care" in every field fires at each update; a fixed second with wildcards each minute.
        if (_ram[0x01] >= 0xC0 && _ram[0x03] >= 0xC0 && _ram[0x05] >= 0xC0) return after + 1;
        if (_alarmAfter != ulong.MaxValue && after >= _alarmAfter && after < _alarmNext) return _alarmNext;
        ulong next = ulong.MaxValue;
        for (ulong n = after + 1; n <= after + 86400; n++) if (AlarmMatches(n)) { next = n; break; }
        _alarmAfter = next == ulong.MaxValue ? 0 : after;      // none in a day: none ever (the fields repeat daily)
        _alarmNext = next;
        return next;
    }

    /// <summary>Register C at virtual nanosecond <paramref name="ns"/>: the flags set since it was last read.</summary>
    private byte Flags(ulong ns)
    {
        ulong from = Updates(_cReadNs), to = Updates(ns);
        byte c = 0;
        if (to > from)
        {
            c |= RegC_Uf;
            if (NextAlarmUpdate(from) <= to) c |= RegC_Af;
        }
        ulong p = PeriodNs;
        if (p != 0 && ns / p > _cReadNs / p) c |= RegC_Pf;
        if ((c & _ram[0x0B] & (RegB_Pie | RegB_Aie | RegB_Uie)) != 0) c |= RegC_Irqf;
        return c;
    }

    /// <summary>Drives IRQ8 from IRQF and schedules the virtual time at which it would next rise.</summary>
    private void Update()
    {
        ulong ns = Nanoseconds;
        bool irq = (Flags(ns) & RegC_Irqf) != 0;
        if (irq != _irq8)
        {
            _irq8 = irq;
            _setIrq(8, irq);
            if (irq) Alarm?.Invoke();
        }
        ulong next = ulong.MaxValue;            // in nanoseconds
        byte b = _ram[0x0B];
        if (!irq)
        {
            ulong now = Updates(ns);
            if ((b & RegB_Uie) != 0) next = Math.Min(next, (now + 1) * NsPerSecond);
            if ((b & RegB_Aie) != 0)
            {
                ulong a = NextAlarmUpdate(now);
                if (a != ulong.MaxValue) next = Math.Min(next, a * NsPerSecond);
            }
            ulong p = PeriodNs;
            if ((b & RegB_Pie) != 0 && p != 0) next = Math.Min(next, (ns / p + 1) * p);
        }
        NextEventAt = next == ulong.MaxValue ? ulong.MaxValue : VirtualClock.ToTicks(next, NsPerSecond, _m.Options.TicksPerSecond);
        _m.RecomputeNextEvent();
    }

    public void OnTime(ulong now) => Update();

    /// <summary>The virtual time at which IRQ8 will next rise, with nothing else changing (ulong.MaxValue: never).</summary>
    public ulong NextIrqAt => NextEventAt;

    public void Out(ushort port, int size, uint value)
    {
        byte v = (byte)value;
        if (port == 0x70) { _index = (byte)(v & 0x7F); return; }
        switch (_index)
        {
            case 0x00: case 0x02: case 0x04: case 0x06: case 0x07: case 0x08: case 0x09: case 0x32:
                SetTimeField(_index, v);
                return;
            case 0x0A: _ram[0x0A] = (byte)(v & 0x7F); Update(); return;
            case 0x0C: case 0x0D: return; // read-only
        }
        _ram[_index] = v;
        if (_index is 0x01 or 0x03 or 0x05 or 0x0B) { _alarmAfter = ulong.MaxValue; Update(); }
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
        _alarmAfter = ulong.MaxValue;
        Update();
    }
}
