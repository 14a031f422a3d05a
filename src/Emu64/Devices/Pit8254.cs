namespace Emu64.Devices;

/// <summary>
/// The Intel 8254 programmable interval timer (datasheet 23124406) at ports 0x40–0x43, clocked at
/// 1.193182 MHz. Channel 0's output is ISA IRQ0; channel 2's gate and output are bits 0 and 5 of port
/// 0x61 (the PC speaker and the classic TSC calibration loop); channel 1 (DRAM refresh) counts but
/// drives nothing.
///
/// Time: the counters are not stepped. Each channel remembers the PIT tick at which its count was
/// loaded, and its count and output are computed from the virtual clock when read:
/// PIT ticks = virtual ticks × 1193182 / TicksPerSecond. Channel 0's next rising output edge is
/// published as a virtual time, so the run loop calls back exactly when IRQ0 should be raised.
///
/// Modes: 0 (interrupt on terminal count), 1 (hardware one-shot), 2 (rate generator), 3 (square wave),
/// 4 (software strobe), 5 (hardware strobe). Counting is binary (the BCD bit is stored and reported
/// but not applied). Counts are read with the read/write mode programmed (LSB, MSB, LSB then MSB),
/// frozen by the counter-latch command, or with the read-back command (count and/or status).
/// </summary>
public sealed class Pit8254 : IIoDevice, ITimedDevice
{
    public const ulong Hz = 1_193_182;

    private sealed class Channel
    {
        public int Mode, Access = 3;          // access: 1 LSB, 2 MSB, 3 LSB then MSB
        public bool Bcd;
        public uint Reload = 0x10000;         // a programmed count of 0 means 65536
        public ulong Start;                   // PIT tick at which the current count began
        public bool Counting;                 // a count has been written (and, for modes 1/5, triggered)
        public bool Gate = true;
        public ulong Frozen;                  // elapsed ticks at the moment the gate went low (modes 0/4)
        public bool WriteLow, ReadLow;        // LSB/MSB flip-flops for access mode 3
        public byte PendingLow;
        public bool NullCount;
        public int LatchedCount = -1, LatchedStatus = -1;
        public bool LatchLowDone;
        public bool Fired;                    // mode 0/4: the terminal-count edge has been raised
    }

    private readonly Machine _m;
    private readonly Action<int, bool> _irq;
    private readonly Channel[] _ch = { new(), new(), new() };
    private ulong _nextIrq = ulong.MaxValue;  // PIT tick of channel 0's next rising edge

    public Pit8254(Machine m, Action<int, bool> irq)
    {
        _m = m;
        _irq = irq;
        _ch[2].Gate = false;                  // port 0x61 bit 0 starts clear
    }

    public ulong NextEventAt { get; private set; } = ulong.MaxValue;

    /// <summary>
    /// Power-on state (after ACPI S3, whose resume loses the chipset's context): no channel counting, modes and
    /// latches cleared, no IRQ0 edge scheduled. The gates stay as port 0x61 and the wiring drive them.
    /// </summary>
    public void Reset()
    {
        for (int i = 0; i < _ch.Length; i++) _ch[i] = new Channel { Gate = _ch[i].Gate };
        Schedule(PitNow);
    }

    private ulong PitNow => VirtualClock.ToDevice(_m.Now, Hz, _m.Options.TicksPerSecond);

    private ulong Elapsed(Channel c, ulong now)
        => !c.Gate && c.Mode is 0 or 4 ? c.Frozen : now - c.Start;

    /// <summary>The counting element's value now (what a latch would capture).</summary>
    private uint Count(Channel c, ulong now)
    {
        if (!c.Counting) return c.Reload & 0xFFFF;
        ulong d = Elapsed(c, now);
        ulong n = c.Reload;
        return c.Mode switch
        {
            2 => (uint)(n - d % n),
            3 => (uint)(n - (2 * d) % n) & 0xFFFE,
            _ => (uint)((n - d) & 0xFFFF),     // modes 0, 1, 4, 5 wrap through 0xFFFF after terminal count
        };
    }

    /// <summary>The OUT pin now.</summary>
    private bool Out(Channel c, ulong now)
    {
        if (!c.Counting) return c.Mode != 0;
        ulong d = Elapsed(c, now), n = c.Reload;
        return c.Mode switch
        {
            0 => d >= n,                                  // low until terminal count, then high
            1 => d >= n,                                  // low during the one-shot
            2 => !c.Gate || d % n != n - 1,               // one clock low when the count reaches 1
            3 => !c.Gate || d % n < (n + 1) / 2,          // high for the first half period
            _ => d != n,                                  // modes 4/5: one clock low at terminal count
        };
    }

    /// <summary>The PIT tick of channel 0's next rising output edge after <paramref name="now"/>.</summary>
    private ulong NextRisingEdge(ulong now)
    {
        var c = _ch[0];
        if (!c.Counting) return ulong.MaxValue;
        ulong d = now - c.Start, n = c.Reload;
        switch (c.Mode)
        {
            case 0: case 1: return c.Fired ? ulong.MaxValue : c.Start + n;
            case 2: case 3: return c.Start + (d / n + 1) * n;
            default: return c.Fired ? ulong.MaxValue : c.Start + n + 1;
        }
    }

    private void Schedule(ulong now)
    {
        _nextIrq = NextRisingEdge(now);
        NextEventAt = _nextIrq == ulong.MaxValue ? ulong.MaxValue : VirtualClock.ToTicks(_nextIrq, Hz, _m.Options.TicksPerSecond);
        _m.RecomputeNextEvent();
    }

    public void OnTime(ulong now)
    {
        ulong pit = VirtualClock.ToDevice(now, Hz, _m.Options.TicksPerSecond);
        if (pit < _nextIrq) { Schedule(pit); return; }
        var c = _ch[0];
        if (c.Mode is 0 or 1 or 4 or 5) c.Fired = true;
        // A rising edge on IRQ0. The 8259 latches edges; a pulse is how an edge reaches it.
        _irq(0, true);
        _irq(0, false);
        Schedule(pit);
    }

    public uint In(ushort port, int size)
    {
        int i = port & 3;
        if (i == 3) return 0xFF;                          // the control word register is write-only
        var c = _ch[i];
        if (c.LatchedStatus >= 0) { uint s = (uint)c.LatchedStatus; c.LatchedStatus = -1; return s; }
        if (c.LatchedCount >= 0)
        {
            uint v = (uint)c.LatchedCount;
            if (c.Access == 3 && !c.LatchLowDone) { c.LatchLowDone = true; return v & 0xFF; }
            c.LatchedCount = -1;
            return c.Access == 1 ? v & 0xFF : (v >> 8) & 0xFF;
        }
        uint count = Count(c, PitNow);
        switch (c.Access)
        {
            case 1: return count & 0xFF;
            case 2: return count >> 8;
            default:
                c.ReadLow = !c.ReadLow;
                return c.ReadLow ? count & 0xFF : count >> 8;
        }
    }

    public void Out(ushort port, int size, uint value)
    {
        byte v = (byte)value;
        ulong now = PitNow;
        int i = port & 3;
        if (i == 3) { Control(v, now); return; }
        var c = _ch[i];
        switch (c.Access)
        {
            case 1: Load(i, v, now); break;
            case 2: Load(i, (uint)v << 8, now); break;
            default:
                if (!c.WriteLow)
                {
                    c.PendingLow = v;
                    c.WriteLow = true;
                    // Mode 0: writing the first byte stops the count until the second arrives.
                    if (c.Mode == 0) { c.Counting = false; c.NullCount = true; if (i == 0) Schedule(now); }
                }
                else { c.WriteLow = false; Load(i, c.PendingLow | ((uint)v << 8), now); }
                break;
        }
    }

    private void Load(int i, uint count, ulong now)
    {
        var c = _ch[i];
        c.Reload = count == 0 ? 0x10000u : count;
        c.NullCount = false;
        c.Fired = false;
        // Modes 1 and 5 wait for a gate trigger; the others start counting at once (if the gate allows).
        if (c.Mode is 1 or 5) { c.Counting = false; }
        else { c.Counting = true; c.Start = now; c.Frozen = 0; }
        if (i == 0) Schedule(now);
    }

    private void Control(byte v, ulong now)
    {
        int sel = v >> 6;
        if (sel == 3) { ReadBack(v, now); return; }
        var c = _ch[sel];
        int access = (v >> 4) & 3;
        if (access == 0) { Latch(c, now); return; }      // counter latch command
        c.Access = access;
        c.Mode = (v >> 1) & 7;
        if (c.Mode > 5) c.Mode -= 4;                      // 6 and 7 are aliases of 2 and 3
        c.Bcd = (v & 1) != 0;
        c.Counting = false;
        c.NullCount = true;
        c.WriteLow = c.ReadLow = false;
        c.LatchedCount = -1; c.LatchedStatus = -1;
        if (sel == 0) Schedule(now);
    }

    private void Latch(Channel c, ulong now)
    {
        if (c.LatchedCount >= 0) return;                  // a second latch before reading is ignored
        c.LatchedCount = (int)Count(c, now);
        c.LatchLowDone = false;
    }

    /// <summary>Read-back (0b11 in the select field): bit 5 clear latches counts, bit 4 clear latches status.</summary>
    private void ReadBack(byte v, ulong now)
    {
        for (int i = 0; i < 3; i++)
        {
            if ((v & (2 << i)) == 0) continue;
            var c = _ch[i];
            if ((v & 0x20) == 0) Latch(c, now);
            if ((v & 0x10) == 0 && c.LatchedStatus < 0)
                c.LatchedStatus = (Out(c, now) ? 0x80 : 0) | (c.NullCount ? 0x40 : 0) | (c.Access << 4) | (c.Mode << 1) | (c.Bcd ? 1 : 0);
        }
    }

    /// <summary>Channel 2's gate (port 0x61 bit 0). A rising edge triggers modes 1 and 5 and restarts 2 and 3.</summary>
    public void SetGate2(bool gate)
    {
        var c = _ch[2];
        if (gate == c.Gate) return;
        ulong now = PitNow;
        if (!gate) { if (c.Mode is 0 or 4) c.Frozen = now - c.Start; c.Gate = false; return; }
        c.Gate = true;
        if (c.Mode is 0 or 4) { c.Start = now - c.Frozen; return; }
        if (c.NullCount && c.Mode is not (1 or 5)) return;
        c.Counting = true; c.Start = now; c.Fired = false;
    }

    public bool Gate2 => _ch[2].Gate;

    /// <summary>Channel 2's OUT pin (port 0x61 bit 5).</summary>
    public bool Out2 => Out(_ch[2], PitNow);
}
