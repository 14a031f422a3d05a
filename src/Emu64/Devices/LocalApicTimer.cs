namespace Emu64.Devices;

/// <summary>
/// The local APIC timer (SDM §11.5.4). LVT timer bits 18:17 choose the mode: 00 one-shot, 01
/// periodic, 10 TSC-deadline. In the count modes the current count falls by one every
/// <c>divisor</c> bus clocks from the initial count; reaching zero raises the LVT timer vector, and
/// periodic mode reloads. In TSC-deadline mode the initial count is ignored and the interrupt fires
/// when the TSC reaches IA32_TSC_DEADLINE, which then reads 0; writing 0 disarms it.
///
/// Nothing is stepped: the count is computed from the bus clock at which it was loaded, and the next
/// expiry is published as a virtual time for the run loop.
/// </summary>
public sealed partial class LocalApic
{
    private const uint TimerModeMask = 3u << 17, Periodic = 1u << 17, TscDeadlineMode = 2u << 17;

    public ulong NextEventAt { get; private set; } = ulong.MaxValue;

    private ulong Tps => _m.Options.TicksPerSecond;
    private ulong BusNow => VirtualClock.ToDevice(_m.Now, ApicBusHz, Tps);

    /// <summary>Divide configuration bits 3,1,0: 0b111 divides by 1, otherwise by 2^(value+1).</summary>
    private int DivideShift
    {
        get
        {
            int d = (int)(((_divide >> 1) & 4) | (_divide & 3));
            return d == 7 ? 0 : d + 1;
        }
    }

    private bool CountMode => (_lvtTimer & TimerModeMask) != TscDeadlineMode;

    private void LoadInitialCount(uint v)
    {
        if (!CountMode) return;                                  // ignored in TSC-deadline mode
        _initialCount = v;
        _timerStart = BusNow;
        ScheduleTimer();
    }

    private void SetDivide(uint v)
    {
        // Keep the current count where it is and continue at the new rate.
        uint current = CurrentCount();
        _divide = v;
        if (_initialCount != 0 && current != 0)
        {
            ulong done = (ulong)(_initialCount - current) << DivideShift;
            _timerStart = BusNow - done;
        }
        ScheduleTimer();
    }

    private uint CurrentCount()
    {
        if (!CountMode || _initialCount == 0) return 0;
        ulong elapsed = (BusNow - _timerStart) >> DivideShift;
        if ((_lvtTimer & TimerModeMask) == Periodic) return (uint)(_initialCount - elapsed % _initialCount);
        return elapsed >= _initialCount ? 0 : (uint)(_initialCount - elapsed);
    }

    private void WriteTscDeadline(ulong v)
    {
        if (CountMode) return;                                   // writes are ignored outside TSC-deadline mode
        _tscDeadline = v;
        ScheduleTimer();
    }

    /// <summary>Publishes the virtual time of the next expiry (or never).</summary>
    private void ScheduleTimer()
    {
        ulong next = ulong.MaxValue;
        if (!CountMode)
        {
            if (_tscDeadline != 0)
            {
                ulong tsc = _m.Cpu.Tsc, now = _m.Now;
                // The TSC advances one per virtual tick, so the deadline is (deadline - TSC) ticks away.
                next = _tscDeadline <= tsc ? now : now + (_tscDeadline - tsc);
            }
        }
        else if (_initialCount != 0)
        {
            ulong period = (ulong)_initialCount << DivideShift;
            ulong elapsed = BusNow - _timerStart;
            ulong expiry;
            if ((_lvtTimer & TimerModeMask) == Periodic) expiry = _timerStart + (elapsed / period + 1) * period;
            else expiry = elapsed >= period ? ulong.MaxValue : _timerStart + period;
            if (expiry != ulong.MaxValue) next = VirtualClock.ToTicks(expiry, ApicBusHz, Tps);
        }
        ulong old = NextEventAt;
        NextEventAt = next;
        _m.Reschedule(old, next);
    }

    public void OnTime(ulong now)
    {
        bool fire;
        if (!CountMode)
        {
            fire = _tscDeadline != 0 && _m.Cpu.Tsc >= _tscDeadline;
            if (fire) _tscDeadline = 0;
        }
        else
        {
            ulong period = (ulong)_initialCount << DivideShift;
            ulong elapsed = VirtualClock.ToDevice(now, ApicBusHz, Tps) - _timerStart;
            fire = _initialCount != 0 && elapsed >= period;
        }
        if (fire && (_lvtTimer & Masked) == 0) Accept((int)(_lvtTimer & 0xFF), false);
        ScheduleTimer();
    }
}
