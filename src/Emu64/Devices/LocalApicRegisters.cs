namespace Emu64.Devices;

/// <summary>
/// The local APIC's register file, shared by the xAPIC MMIO page (32-bit registers at 16-byte
/// offsets) and the x2APIC MSRs (MSR 0x800 + offset ÷ 16). Differences in x2APIC mode, per SDM
/// §11.12: the ID is 32 bits wide, LDR is read-only and derived from the ID, DFR does not exist,
/// ICR is one 64-bit MSR (0x830), and SELF IPI (0x83F) sends a fixed interrupt to this CPU.
/// </summary>
public sealed partial class LocalApic
{
    // ---- xAPIC MMIO ----

    public ulong Read(ulong offset, int size)
    {
        if ((offset & 0xF) != 0 || X2Apic) return 0;
        return ReadRegister((uint)offset, x2: false) ?? 0;
    }

    public void Write(ulong offset, int size, ulong value)
    {
        if ((offset & 0xF) != 0 || X2Apic) return;
        if (offset == 0x310) { _icrHigh = (uint)value & 0xFF000000; return; }
        WriteRegister((uint)offset, (uint)value, x2: false);
    }

    // ---- x2APIC MSRs (and IA32_TSC_DEADLINE) ----

    private (bool, ulong) ReadMsr(uint msr)
    {
        if (msr == Emu64.Cpu.Msr.TscDeadline) return (true, _tscDeadline);
        if (msr < 0x800 || msr > 0x8FF || !X2Apic) return (false, 0);
        uint off = (msr - 0x800) << 4;
        if (off == 0x300) return (true, ((ulong)_icrHigh << 32) | _icrLow);
        // DFR gone, ICR high merged, APR and RRD reserved; EOI and SELF IPI are write-only: all #GP (SDM table 11-6).
        if (off is 0x0E0 or 0x310 or 0x090 or 0x0C0 or 0x0B0 or 0x3F0) return (false, 0);
        var v = ReadRegister(off, x2: true);
        return v is null ? (false, 0) : (true, v.Value);
    }

    private bool WriteMsr(uint msr, ulong v)
    {
        if (msr == Emu64.Cpu.Msr.TscDeadline) { WriteTscDeadline(v); return true; }
        if (msr < 0x800 || msr > 0x8FF || !X2Apic) return false;
        uint off = (msr - 0x800) << 4;
        switch (off)
        {
            case 0x300: _icrHigh = (uint)(v >> 32); SendIpi((uint)v, x2: true); return true;
            case 0x3F0:                                              // SELF IPI
                if ((v >> 8) != 0) return false;
                SendFixed((int)(v & 0xFF));
                return true;
            case 0x0B0: if (v != 0) return false; Eoi(); return true;   // x2APIC EOI must write 0
            case 0x020: case 0x030: case 0x090: case 0x0A0: case 0x0C0: case 0x0D0: case 0x0E0: case 0x310: case 0x390:
                return false;                                        // read-only, reserved or absent in x2APIC mode: #GP
        }
        if (off >= 0x100 && off < 0x280) return false;               // ISR, TMR, IRR are read-only: #GP
        if ((v >> 32) != 0) return false;
        return WriteRegister(off, (uint)v, x2: true);
    }

    // ---- the shared register file ----
    // There is no LVT CMCI register (offset 0x2F0, MSR 0x82F): it exists only on a processor that signals corrected
    // machine-check interrupts (IA32_MCG_CAP.MCG_CMCI_P, bit 10: SDM vol. 3B, machine-check architecture, "CMCI Local APIC Interface"), and this one reports IA32_MCG_CAP = 0
    // and a Max LVT Entry of 5 in the version register (six LVT entries: timer, thermal, performance, LINT0, LINT1,
    // error). Its offset is therefore an illegal register: ESR bit 7 in xAPIC mode, #GP as an MSR in x2APIC mode.

    private uint? ReadRegister(uint off, bool x2)
    {
        switch (off)
        {
            case 0x020: return x2 ? _id : _id << 24;
            case 0x030: return Version;
            case 0x080: return _tpr;
            case 0x090: return 0;                                    // APR: arbitration is trivial with one CPU
            case 0x0A0: return Ppr;
            case 0x0B0: return 0;
            case 0x0C0: return 0;
            case 0x0D0: return x2 ? ((_id >> 4) << 16) | (1u << (int)(_id & 0xF)) : _ldr;
            case 0x0E0: return _dfr;
            case 0x0F0: return _svr;
            case 0x280: return _esr;
            case 0x300: return _icrLow;
            case 0x310: return _icrHigh;
            case 0x320: return _lvtTimer;
            case 0x330: return _lvtThermal;
            case 0x340: return _lvtPerf;
            case 0x350: return _lvtLint0;
            case 0x360: return _lvtLint1;
            case 0x370: return _lvtError;
            case 0x380: return _initialCount;
            case 0x390: return CurrentCount();
            case 0x3E0: return _divide;
        }
        if (off >= 0x100 && off < 0x280)
        {
            int idx = (int)((off - 0x100) >> 4);
            return idx < 8 ? _isr[idx] : idx < 16 ? _tmr[idx - 8] : _irr[idx - 16];
        }
        if (!x2) Error(0x80);                                        // illegal register address
        return null;
    }

    private bool WriteRegister(uint off, uint v, bool x2)
    {
        // LVT writes keep the mask bit set while the APIC is software-disabled (SDM §11.4.7.2).
        uint Lvt(uint value, uint writable) => (value & writable) | (SoftwareEnabled ? 0 : Masked);
        switch (off)
        {
            case 0x020: _id = v >> 24; break;
            case 0x080: _tpr = v & 0xFF; break;
            case 0x0B0: Eoi(); return true;
            case 0x0D0: _ldr = v & 0xFF000000; break;
            case 0x0E0: _dfr = v | 0x0FFFFFFF; break;
            case 0x0F0:
                _svr = v & 0x11FF;
                if (!SoftwareEnabled)
                {
                    _lvtTimer |= Masked; _lvtThermal |= Masked; _lvtPerf |= Masked; _lvtLint0 |= Masked;
                    _lvtLint1 |= Masked; _lvtError |= Masked;
                }
                break;
            case 0x280: _esr = _esrPending; _esrPending = 0; return true;   // a write latches the errors seen so far
            case 0x300: SendIpi(v, x2); return true;
            case 0x320:
                {
                    uint old = _lvtTimer;
                    _lvtTimer = Lvt(v, 0x700FF);
                    // Only a change into or out of TSC-deadline mode (bit 18) disarms the timer (SDM §11.5.4.1);
                    // switching between one-shot and periodic keeps TMICT and the count running.
                    if (((old ^ _lvtTimer) >> 18 & 1) != 0) { _initialCount = 0; _tscDeadline = 0; }
                    ScheduleTimer();
                    break;
                }
            case 0x330: _lvtThermal = Lvt(v, 0x107FF); break;
            case 0x340: _lvtPerf = Lvt(v, 0x107FF); break;
            case 0x350: _lvtLint0 = Lvt(v, 0x1A7FF); break;
            case 0x360: _lvtLint1 = Lvt(v, 0x1A7FF); break;
            case 0x370: _lvtError = Lvt(v, 0x100FF); break;
            case 0x380: LoadInitialCount(v); return true;
            case 0x3E0: SetDivide(v & 0xB); return true;
            case 0x030: case 0x090: case 0x0A0: case 0x0C0: case 0x390: return true;   // read-only
            default:
                if (off >= 0x100 && off < 0x280) return true;        // ISR/TMR/IRR are read-only
                if (!x2) Error(0x80);
                return false;
        }
        Changed();
        return true;
    }

    // ---- interprocessor interrupts ----

    /// <summary>
    /// ICR: vector 7:0, delivery mode 10:8, destination mode 11, level 14, trigger 15, shorthand 19:18,
    /// destination 63:56 (xAPIC) or 63:32 (x2APIC). With one CPU only self-directed fixed interrupts
    /// do anything; INIT and SIPI are accepted and ignored, as are messages for other APIC IDs.
    /// </summary>
    private void SendIpi(uint low, bool x2)
    {
        _icrLow = low & ~(1u << 12);                                 // delivery status: always idle
        int vector = (int)(low & 0xFF), mode = (int)(low >> 8) & 7, shorthand = (int)(low >> 18) & 3;
        bool toSelf = shorthand switch
        {
            1 => true,                                               // self
            2 => true,                                               // all including self
            3 => false,                                              // all excluding self: nobody else exists
            _ => DestinationIsSelf(x2 ? _icrHigh : _icrHigh >> 24, (low & 0x800) != 0, x2),
        };
        if (!toSelf) return;
        if (mode == 4) { _m.RaiseNmi(); return; }                    // NMI: the vector field is ignored
        if (mode is not (0 or 1)) return;                            // INIT, SIPI, SMI: ignored
        SendFixed(vector);
    }

    private void SendFixed(int vector)
    {
        if (vector < 16) { Error(0x20); return; }                      // send illegal vector: nothing is sent
        Accept(vector, false);
    }

    /// <summary>Does a destination field name this APIC? Physical: the ID or broadcast; logical: flat model match.</summary>
    public bool DestinationIsSelf(uint dest, bool logical, bool x2)
    {
        if (!logical) return dest == _id || dest == (x2 ? 0xFFFFFFFFu : 0xFFu);
        if (x2) return (dest >> 16) == (_id >> 4) && (dest & 0xFFFF & (1u << (int)(_id & 0xF))) != 0;
        return ((dest & 0xFF) & (_ldr >> 24)) != 0 || dest == 0xFF;
    }
}
