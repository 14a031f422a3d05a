using Emu64.Memory;

namespace Emu64.Devices;

/// <summary>
/// The High Precision Event Timer (IA-PC HPET specification 1.0a) as QEMU's pc machine has it: one timer block at
/// 0xFED00000 (1 KiB), a 64-bit main counter at 100 MHz (period 10 ns = 10,000,000 fs), three comparators, the
/// LegacyReplacement route, no FSB (MSI) delivery. The values are QEMU's:
/// <list type="bullet">
/// <item>0x000 GCAP_ID = 0x00989680_8086A201: period in fs (63:32), vendor 8086 (31:16), LEG_RT_CAP (15),
/// COUNT_SIZE_CAP 64-bit (13), NUM_TIM_CAP 2 = three timers (12:8), revision 1. Read-only.</item>
/// <item>0x010 GEN_CONF: ENABLE_CNF (0) runs the main counter and allows interrupts; LEG_RT_CNF (1) routes timer 0 to
/// ISA IRQ0 (I/O APIC pin 2) and timer 1 to IRQ8, and disconnects the 8254's output from IRQ0.</item>
/// <item>0x020 GINTR_STA: a level-triggered timer's status bit, set when it fires, cleared by writing 1 (which
/// also drops its line).</item>
/// <item>0x0F0 MAIN_CNT: counts while enabled; writable (meant while halted).</item>
/// <item>0x100 + 0x20·n: Tn_CONF_CAP, Tn_COMPARATOR, Tn_FSB_ROUTE. Tn_CONF: INT_TYPE (1, level), INT_ENB (2),
/// TYPE (3, periodic), VAL_SET (6), 32MODE (8), INT_ROUTE (13:9); PER_INT_CAP and SIZE_CAP (4, 5) read 1 on every
/// timer; INT_ROUTE_CAP (63:32) = 0x4, GSI 2 only, as QEMU's i440FX machine.</item>
/// </list>
/// Time: the counter is not stepped. It is <c>Count0 + (T(now) − T0)</c>, T = virtual ticks × 10^8 / ips, so it
/// comes from retired instructions like every other timer (one count per 10 instructions at the default 1e9 ips).
/// Each enabled comparator's next match is published as a virtual time (<see cref="NextEventAt"/>); the run loop
/// calls <see cref="OnTime"/> then. A periodic timer adds its period to the comparator at each match (the hidden
/// accumulator: in periodic mode a comparator write sets the period, and also the comparator itself when VAL_SET
/// is 1). In 32-bit mode the comparator and period are 32 bits and match the counter's low half; a one-shot 32-bit
/// timer also fires when the low half wraps, as the spec says. Edge-triggered interrupts are a pulse on the line.
/// Accesses may be 4 or 8 bytes (or narrower: each byte behaves as the byte of its register).
/// </summary>
public sealed class Hpet : IMmioDevice, ITimedDevice
{
    public const ulong DefaultBase = 0xFED00000, Length = 0x400;
    public const ulong Hz = 100_000_000;
    public const int Timers = 3;
    /// <summary>GCAP_ID: 10 ns in femtoseconds above QEMU's 0x8086A001 with NUM_TIM_CAP = Timers − 1.</summary>
    public const ulong Capabilities = (10_000_000UL << 32) | 0x8086A001UL | ((Timers - 1) << 8);
    /// <summary>The event-timer block id the ACPI HPET table repeats (GCAP_ID's low half).</summary>
    public const uint BlockId = unchecked((uint)Capabilities);
    /// <summary>Tn_INT_ROUTE_CAP: GSI 2 only (QEMU's pc-i440fx machines).</summary>
    public const uint RouteCap = 0x4;

    public const ulong CfgEnable = 1, CfgLegacy = 2;
    public const ulong TnLevel = 1 << 1, TnIntEnable = 1 << 2, TnPeriodic = 1 << 3, TnPeriodicCap = 1 << 4,
                       TnSizeCap = 1 << 5, TnValSet = 1 << 6, Tn32 = 1 << 8, TnRouteMask = 0x1F << 9;
    private const ulong TnWritable = TnLevel | TnIntEnable | TnPeriodic | TnValSet | Tn32 | TnRouteMask;

    private sealed class Timer
    {
        public ulong Config = TnPeriodicCap | TnSizeCap | ((ulong)RouteCap << 32);
        public ulong Comparator = ulong.MaxValue, Period, Fsb;
        public ulong NextFire = ulong.MaxValue;   // main-counter value of the next interrupt
        public bool Wrap;                         // a 32-bit one-shot timer's next event is the counter's wrap
        public int Line = -1;                     // the GSI this timer holds asserted (level mode), or -1
    }

    private readonly Machine _m;
    private readonly Action<int, bool> _setIsaIrq;
    private readonly Action<int, bool> _setGsi;
    private readonly Timer[] _t = [new(), new(), new()];
    private ulong _config, _isr;
    private ulong _count0, _t0;                   // counter value and device tick at the last enable (or write)

    /// <param name="setIsaIrq">Drives an ISA line to both interrupt controllers (the legacy route).</param>
    /// <param name="setGsi">Drives an I/O APIC input (Tn_INT_ROUTE).</param>
    public Hpet(Machine m, Action<int, bool> setIsaIrq, Action<int, bool> setGsi)
    {
        _m = m;
        _setIsaIrq = setIsaIrq;
        _setGsi = setGsi;
    }

    /// <summary>
    /// Power-on state (after ACPI S3, whose resume loses the chipset's context): disabled, not in LegacyReplacement
    /// mode, main counter 0, every timer at its reset configuration with its comparator all ones; lines it held are released.
    /// </summary>
    public void Reset()
    {
        for (int n = 0; n < _t.Length; n++) { Lower(n); _t[n] = new Timer(); }
        _config = 0; _isr = 0; _count0 = 0; _t0 = DeviceNow;
        Schedule();
    }

    /// <summary>LEG_RT_CNF: while set, the 8254's output does not reach IRQ0 (Platform gates it).</summary>
    public bool LegacyReplacement => (_config & CfgLegacy) != 0;
    public bool Enabled => (_config & CfgEnable) != 0;

    public ulong NextEventAt { get; private set; } = ulong.MaxValue;

    private ulong DeviceNow => VirtualClock.ToDevice(_m.Now, Hz, _m.Options.TicksPerSecond);

    /// <summary>The main counter now.</summary>
    public ulong Counter => Enabled ? _count0 + (DeviceNow - _t0) : _count0;

    public ulong Read(ulong offset, int size)
    {
        ulong reg = ReadRegister(offset & ~7UL);
        int shift = (int)(offset & 7) * 8;
        ulong v = reg >> shift;
        return size >= 8 ? v : v & ((1UL << (size * 8)) - 1);
    }

    private ulong ReadRegister(ulong off)
    {
        if (off >= 0x100)
        {
            int n = (int)((off - 0x100) / 0x20);
            if (n >= Timers) return 0;
            var t = _t[n];
            return ((off - 0x100) % 0x20) switch { 0 => t.Config, 8 => t.Comparator, 0x10 => t.Fsb, _ => 0 };
        }
        return off switch { 0x00 => Capabilities, 0x10 => _config, 0x20 => _isr, 0xF0 => Counter, _ => 0 };
    }

    public void Write(ulong offset, int size, ulong value)
    {
        ulong off = offset & ~7UL;
        int shift = (int)(offset & 7) * 8;
        ulong mask = (size >= 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1) << shift;
        ulong old = ReadRegister(off);
        ulong v = (old & ~mask) | ((value << shift) & mask);
        if (off >= 0x100) { WriteTimer((int)((off - 0x100) / 0x20), (off - 0x100) % 0x20, v, mask); return; }
        switch (off)
        {
            case 0x10: WriteConfig(v); break;
            case 0x20:
                // Write 1 to clear a level-triggered timer's status (and release its line).
                ulong clear = (value << shift) & mask & _isr;
                for (int n = 0; n < Timers; n++) if ((clear & (1UL << n)) != 0) Lower(n);
                break;
            case 0xF0:
                ulong now = DeviceNow;
                _count0 = v;
                _t0 = now;
                for (int n = 0; n < Timers; n++) Arm(n);
                Schedule();
                break;
        }
    }

    private void WriteConfig(ulong v)
    {
        ulong old = _config;
        ulong now = DeviceNow;
        if ((old & CfgEnable) != 0 && (v & CfgEnable) == 0) { _count0 += now - _t0; }   // halt: freeze the count
        if ((old & CfgEnable) == 0 && (v & CfgEnable) != 0) _t0 = now;                  // run from the frozen count
        _config = v & (CfgEnable | CfgLegacy);
        if (((old ^ _config) & CfgLegacy) != 0)
        {
            // Moving timers 0 and 1 between routes: drop whatever they held on the old one.
            for (int n = 0; n < 2; n++) Lower(n);
        }
        if (!Enabled) for (int n = 0; n < Timers; n++) Lower(n);
        for (int n = 0; n < Timers; n++) Arm(n);
        Schedule();
    }

    private void WriteTimer(int n, ulong reg, ulong v, ulong mask)
    {
        if (n >= Timers) return;
        var t = _t[n];
        switch (reg)
        {
            case 0:
                ulong oldCfg = t.Config;
                t.Config = (t.Config & ~TnWritable) | (v & TnWritable);
                if ((t.Config & Tn32) != 0) { t.Comparator &= 0xFFFFFFFF; t.Period &= 0xFFFFFFFF; }
                // Disabling the interrupt, or moving the route or type, drops a held level.
                if (((oldCfg ^ t.Config) & (TnIntEnable | TnRouteMask | TnLevel)) != 0) Lower(n);
                break;
            case 8:
                if ((t.Config & Tn32) != 0) v &= 0xFFFFFFFF;
                bool periodic = (t.Config & TnPeriodic) != 0;
                // One-shot: the comparator. Periodic: the period, and the comparator too when VAL_SET was written first.
                if (!periodic || (t.Config & TnValSet) != 0) t.Comparator = (t.Comparator & ~mask) | (v & mask);
                if (periodic) t.Period = (t.Period & ~mask) | (v & mask);
                t.Config &= ~TnValSet;
                break;
            case 0x10:
                t.Fsb = v;
                return;
            default:
                return;
        }
        Arm(n);
        Schedule();
    }

    /// <summary>Computes timer n's next interrupt as a main-counter value (none when disabled).</summary>
    private void Arm(int n)
    {
        var t = _t[n];
        t.NextFire = ulong.MaxValue;
        t.Wrap = false;
        if (!Enabled || (t.Config & TnIntEnable) == 0) return;
        ulong now = Counter;
        if ((t.Config & Tn32) != 0)
        {
            // The comparator matches the low half; the next match is at most 2^32 counts away.
            ulong lo = now & 0xFFFFFFFF, cmp = t.Comparator & 0xFFFFFFFF;
            ulong delta = cmp > lo ? cmp - lo : cmp + 0x1_0000_0000UL - lo;
            if ((t.Config & TnPeriodic) == 0)
            {
                ulong toWrap = 0x1_0000_0000UL - lo;
                if (toWrap < delta) { delta = toWrap; t.Wrap = true; }
            }
            t.NextFire = now + delta;
            return;
        }
        // 64-bit: a comparator not ahead of the counter fires at once (the next count), as QEMU does.
        t.NextFire = t.Comparator > now ? t.Comparator : now + 1;
    }

    private void Schedule()
    {
        ulong next = ulong.MaxValue;
        if (Enabled)
            foreach (var t in _t) next = Math.Min(next, t.NextFire);
        NextEventAt = next == ulong.MaxValue ? ulong.MaxValue
            : VirtualClock.ToTicks(_t0 + (next - _count0), Hz, _m.Options.TicksPerSecond);
        _m.RecomputeNextEvent();
    }

    public void OnTime(ulong now)
    {
        if (!Enabled) { Schedule(); return; }
        ulong count = Counter;
        for (int n = 0; n < Timers; n++)
        {
            var t = _t[n];
            if (t.NextFire > count) continue;
            bool wrap = t.Wrap;
            bool repeat = (t.Config & TnPeriodic) != 0 && t.Period != 0;
            if (repeat)
            {
                // The accumulator: the comparator advances by whole periods until it is ahead of the counter.
                if ((t.Config & Tn32) != 0)
                {
                    uint behind = (uint)count - (uint)t.Comparator;
                    if (behind < 0x8000_0000u) t.Comparator = (uint)(t.Comparator + (behind / t.Period + 1) * t.Period);
                }
                else if (t.Comparator <= count) t.Comparator += ((count - t.Comparator) / t.Period + 1) * t.Period;
            }
            Fire(n);
            // Periodic: the next period. A 32-bit one-shot that fired at the wrap: now its match. Otherwise done.
            if (repeat || wrap) Arm(n); else t.NextFire = ulong.MaxValue;
        }
        Schedule();
    }

    /// <summary>Where timer n's interrupt goes: ISA IRQ0/IRQ8 for timers 0/1 under LegacyReplacement, else its GSI.</summary>
    private (bool Isa, int Line) Route(int n)
    {
        if (n < 2 && LegacyReplacement) return (true, n == 0 ? 0 : 8);
        return (false, (int)((_t[n].Config & TnRouteMask) >> 9));
    }

    private void Fire(int n)
    {
        var t = _t[n];
        var (isa, line) = Route(n);
        var set = isa ? _setIsaIrq : _setGsi;
        if ((t.Config & TnLevel) != 0)
        {
            _isr |= 1UL << n;
            t.Line = isa ? line | 0x100 : line;
            set(line, true);
        }
        else
        {
            _isr &= ~(1UL << n);
            set(line, true);
            set(line, false);
        }
    }

    /// <summary>Clears timer n's status bit and releases a line it holds.</summary>
    private void Lower(int n)
    {
        var t = _t[n];
        _isr &= ~(1UL << n);
        if (t.Line < 0) return;
        if ((t.Line & 0x100) != 0) _setIsaIrq(t.Line & 0xFF, false); else _setGsi(t.Line, false);
        t.Line = -1;
    }
}
