using System.Numerics;
using Emu64.Memory;

namespace Emu64.Devices;

/// <summary>
/// The local APIC of the one CPU (Intel SDM vol. 3A chapter 11). Two views of one register file:
/// xAPIC, memory-mapped at the base in IA32_APIC_BASE (0xFEE00000 after reset, relocatable), and
/// x2APIC, through MSRs 0x800 + offset/16 once IA32_APIC_BASE.EXTD is set.
///
/// Interrupts wait in the 256-bit IRR, move to the ISR when the CPU takes them, and leave the ISR on
/// EOI. The processor priority PPR = max(TPR, class of the highest in-service vector); a request is
/// delivered only when its class (vector ÷ 16) is above PPR's. TMR marks level-triggered requests,
/// whose EOI is forwarded to the I/O APIC. CR8 is TPR[7:4].
///
/// The timer counts down at the APIC bus clock divided by the divide configuration register. The bus
/// clock is 1 GHz of virtual time (as QEMU's), so with the default 1 GHz tick rate one bus clock is one
/// tick. TSC-deadline mode fires when the TSC reaches IA32_TSC_DEADLINE (MSR 0x6E0).
///
/// Reset state as QEMU's BSP after firmware: ID 0, version 0x14 with 6 LVT entries, SVR 0xFF (software
/// disabled), LINT0 = ExtINT unmasked (0x700) so the 8259 reaches the CPU, every other LVT masked.
/// </summary>
public sealed partial class LocalApic : IMmioDevice, ITimedDevice
{
    public const ulong DefaultBase = 0xFEE00000;
    public const uint Version = 0x00050014;
    private const uint Masked = 1u << 16;
    private const ulong ApicBusHz = 1_000_000_000;

    private readonly Machine _m;
    private readonly Platform _p;
    private readonly uint[] _irr = new uint[8], _isr = new uint[8], _tmr = new uint[8];
    private uint _id, _tpr, _ldr, _dfr = 0xFFFFFFFF, _svr = 0xFF, _esr, _esrPending, _icrLow, _icrHigh;
    private uint _lvtTimer = Masked, _lvtThermal = Masked, _lvtPerf = Masked, _lvtLint0 = 0x700, _lvtLint1 = Masked, _lvtError = Masked;
    private uint _initialCount, _divide;
    private ulong _timerStart;            // APIC bus clock at which the count was loaded
    private ulong _tscDeadline;
    private ulong _mappedBase = ulong.MaxValue;

    public LocalApic(Machine m, Platform p)
    {
        _m = m;
        _p = p;
        m.ApicBaseWritten = OnApicBaseWritten;
        m.TprWritten = cr8 => { _tpr = (uint)(cr8 & 0xF) << 4; Changed(); };
        m.MsrReadHook = ReadMsr;
        m.MsrWriteHook = WriteMsr;
    }

    private ulong ApicBaseMsr => _m.Cpu.ApicBase;
    public bool GloballyEnabled => (ApicBaseMsr & (1UL << 11)) != 0;
    public bool X2Apic => GloballyEnabled && (ApicBaseMsr & (1UL << 10)) != 0;
    public bool SoftwareEnabled => (_svr & 0x100) != 0;

    /// <summary>LINT0 unmasked in ExtINT mode: the 8259's INTR passes through to the CPU.</summary>
    public bool Lint0AcceptsExtInt => (_lvtLint0 & Masked) == 0 && ((_lvtLint0 >> 8) & 7) == 7;

    /// <summary>
    /// The LINT1 input, which a PC wires to the chipset's NMI line (SDM §11.5.1): with the APIC globally disabled it
    /// is the processor's NMI pin; otherwise LVT LINT1 decides — masked drops it, NMI mode (100b) raises an NMI,
    /// fixed mode (000b) requests its vector. Edge-triggered: one call is one pulse.
    /// </summary>
    /// <summary>LVT LINT1 as the guest programmed it (for the debugger's report).</summary>
    public uint LvtLint1 => _lvtLint1;

    public void Lint1()
    {
        if (!GloballyEnabled) { _m.RaiseNmi(); return; }
        uint lvt = _lvtLint1;
        if ((lvt & Masked) != 0) return;
        switch ((lvt >> 8) & 7)
        {
            case 4: _m.RaiseNmi(); break;
            case 0: Accept((int)(lvt & 0xFF), level: false); break;
        }
    }

    // ---- IRR / ISR / priority -------------------------------------------------------------------

    private static int Highest(uint[] r)
    {
        for (int w = 7; w >= 0; w--) if (r[w] != 0) return w * 32 + 31 - BitOperations.LeadingZeroCount(r[w]);
        return -1;
    }

    private static void Set(uint[] r, int v, bool on) { if (on) r[v >> 5] |= 1u << (v & 31); else r[v >> 5] &= ~(1u << (v & 31)); }
    private static bool Test(uint[] r, int v) => (r[v >> 5] & (1u << (v & 31))) != 0;

    public uint Ppr
    {
        get
        {
            int isrv = Math.Max(Highest(_isr), 0);
            return (_tpr >> 4) >= ((uint)isrv >> 4) ? _tpr : (uint)isrv & 0xF0;
        }
    }

    /// <summary>A fixed interrupt in the IRR whose priority class beats PPR.</summary>
    public bool HasDeliverable
    {
        get
        {
            if (!GloballyEnabled) return false;
            int v = Highest(_irr);
            return v >= 0 && (uint)(v & 0xF0) > (Ppr & 0xF0);
        }
    }

    /// <summary>The INTA: the highest deliverable vector moves from IRR to ISR; -1 if none.</summary>
    public int Acknowledge()
    {
        if (!HasDeliverable) return -1;
        int v = Highest(_irr);
        Set(_irr, v, false);
        Set(_isr, v, true);
        return v;
    }

    /// <summary>Accepts an interrupt message (I/O APIC, IPI, LVT). Vectors 0–15 are illegal (ESR bit 6).</summary>
    public void Accept(int vector, bool level)
    {
        if (!GloballyEnabled) return;
        if (vector < 16) { Error(0x40); return; }
        Set(_irr, vector, true);
        Set(_tmr, vector, level);
        Changed();
    }

    private void Error(uint bit)
    {
        _esrPending |= bit;
        if ((_lvtError & Masked) == 0 && (_lvtError & 0xFF) >= 16) { Set(_irr, (int)(_lvtError & 0xFF), true); Set(_tmr, (int)(_lvtError & 0xFF), false); }
        Changed();
    }

    private void Eoi()
    {
        int v = Highest(_isr);
        if (v < 0) return;
        Set(_isr, v, false);
        // The TMR bit stays: only the next acceptance of the vector sets or clears it (SDM vol. 3A §11.8.4).
        if (Test(_tmr, v)) _p.IoApic.EndOfInterrupt(v);
        Changed();
    }

    private void Changed()
    {
        _m.Cpu.CR8 = _tpr >> 4;
        _p.UpdateInterruptLine();
    }

    // ---- IA32_APIC_BASE ---------------------------------------------------------------------------

    /// <summary>Maps the xAPIC page at the base in IA32_APIC_BASE while the APIC is on and in xAPIC mode.</summary>
    public void MapMmio()
    {
        ulong want = GloballyEnabled && !X2Apic ? ApicBaseMsr & 0xF_FFFF_F000UL : ulong.MaxValue;
        if (want == _mappedBase) return;
        if (_mappedBase != ulong.MaxValue) _m.Memory.RemoveMmio(this);
        _mappedBase = ulong.MaxValue;
        if (want != ulong.MaxValue && want >= _m.Memory.RamSize) { _m.Memory.AddMmio(want, 0x1000, this); _mappedBase = want; }
    }

    private void OnApicBaseWritten(ulong v)
    {
        if (!GloballyEnabled) Reset();      // disabling the APIC returns it to its power-up state
        MapMmio();
        Changed();
    }

    /// <summary>
    /// The state this machine starts in (after ACPI S3, whose resume resets the processor): the power-up register
    /// values with LINT0 in ExtINT mode as firmware leaves it, ID 0, the timer stopped. IA32_APIC_BASE is the CPU's
    /// (reset with it, <see cref="Cpu.Cpu.ResetToRealMode"/>); the xAPIC page is mapped again at its default base.
    /// </summary>
    public void PowerOnReset()
    {
        Reset();
        _id = 0;
        _lvtLint0 = 0x700;
        MapMmio();
        Changed();
    }

    private void Reset()
    {
        Array.Clear(_irr); Array.Clear(_isr); Array.Clear(_tmr);
        _tpr = 0; _ldr = 0; _dfr = 0xFFFFFFFF; _svr = 0xFF; _esr = _esrPending = 0; _icrLow = _icrHigh = 0;
        _lvtTimer = _lvtThermal = _lvtPerf = _lvtLint0 = _lvtLint1 = _lvtError = Masked;
        _initialCount = 0; _divide = 0; _tscDeadline = 0;
        ScheduleTimer();
    }
}
