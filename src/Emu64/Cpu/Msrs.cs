namespace Emu64.Cpu;

/// <summary>RDMSR/WRMSR: the model-specific registers this CPU has. Unknown MSRs raise #GP, as on hardware.</summary>
public sealed partial class Cpu
{
    /// <summary>The time-stamp counter: virtual cycles (retired instructions plus time skipped while halted).</summary>
    public ulong Tsc => Machine.Now + _tscOffset;
    private ulong _tscOffset;

    public bool ReadMsr(uint msr, out ulong v)
    {
        v = 0;
        switch (msr)
        {
            case Emu64.Cpu.Msr.Tsc: v = Tsc; return true;
            case Emu64.Cpu.Msr.ApicBase: v = ApicBase; return true;
            case Emu64.Cpu.Msr.Efer: v = EFER; return true;
            case Emu64.Cpu.Msr.Star: v = Star; return true;
            case Emu64.Cpu.Msr.Lstar: v = Lstar; return true;
            case Emu64.Cpu.Msr.Cstar: v = Cstar; return true;
            case Emu64.Cpu.Msr.Sfmask: v = Sfmask; return true;
            case Emu64.Cpu.Msr.FsBase: v = Segs[Emu64.Cpu.Seg.FS].Base; return true;
            case Emu64.Cpu.Msr.GsBase: v = Segs[Emu64.Cpu.Seg.GS].Base; return true;
            case Emu64.Cpu.Msr.KernelGsBase: v = KernelGsBase; return true;
            case Emu64.Cpu.Msr.TscAux: v = TscAux; return true;
            case Emu64.Cpu.Msr.Pat: v = Pat; return true;
            case Emu64.Cpu.Msr.MiscEnable: v = MiscEnable; return true;
            case Emu64.Cpu.Msr.SysenterCs: v = SysenterCs; return true;
            case Emu64.Cpu.Msr.SysenterEsp: v = SysenterEsp; return true;
            case Emu64.Cpu.Msr.SysenterEip: v = SysenterEip; return true;
        }
        return Machine.ReadDeviceMsr(msr, out v);
    }

    public bool WriteMsr(uint msr, ulong v)
    {
        switch (msr)
        {
            case Emu64.Cpu.Msr.Tsc: _tscOffset = v - Machine.Now; return true;
            case Emu64.Cpu.Msr.ApicBase: return WriteApicBase(v);
            case Emu64.Cpu.Msr.Efer:
                {
                    if ((v & ~(Emu64.Cpu.Efer.Writable | Emu64.Cpu.Efer.Lma)) != 0) return false;
                    // LME cannot change while paging is on; LMA is read-only (kept from the current state).
                    if (PagingOn && ((v ^ EFER) & Emu64.Cpu.Efer.Lme) != 0) return false;
                    ulong old = EFER;
                    EFER = (v & Emu64.Cpu.Efer.Writable) | (EFER & Emu64.Cpu.Efer.Lma);
                    if (((old ^ EFER) & Emu64.Cpu.Efer.Nxe) != 0) Mmu.FlushHostCache();
                    return true;
                }
            case Emu64.Cpu.Msr.Star: Star = v; return true;
            case Emu64.Cpu.Msr.Lstar: if (!IsCanonicalSystem(v)) return false; Lstar = v; return true;
            case Emu64.Cpu.Msr.Cstar: if (!IsCanonicalSystem(v)) return false; Cstar = v; return true;
            case Emu64.Cpu.Msr.Sfmask: Sfmask = v & 0xFFFFFFFF; return true;
            case Emu64.Cpu.Msr.FsBase: if (!IsCanonicalSystem(v)) return false; Segs[Emu64.Cpu.Seg.FS].Base = v; return true;
            case Emu64.Cpu.Msr.GsBase: if (!IsCanonicalSystem(v)) return false; Segs[Emu64.Cpu.Seg.GS].Base = v; return true;
            case Emu64.Cpu.Msr.KernelGsBase: if (!IsCanonicalSystem(v)) return false; KernelGsBase = v; return true;
            case Emu64.Cpu.Msr.TscAux: if ((v >> 32) != 0) return false; TscAux = v; return true;
            case Emu64.Cpu.Msr.Pat: Pat = v; return true;
            case Emu64.Cpu.Msr.MiscEnable: MiscEnable = v; return true;
            case Emu64.Cpu.Msr.SysenterCs: SysenterCs = v; return true;
            case Emu64.Cpu.Msr.SysenterEsp: SysenterEsp = v; return true;
            case Emu64.Cpu.Msr.SysenterEip: SysenterEip = v; return true;
        }
        return Machine.WriteDeviceMsr(msr, v);
    }

    /// <summary>
    /// IA32_APIC_BASE (SDM vol. 3A §11.4.4, §11.12.5): bit 8 (BSP) is read-only, bits 0-7, 9 and those at or above
    /// MAXPHYADDR are reserved; EXTD without EN is invalid, and x2APIC mode can be left only by disabling the APIC
    /// (x2APIC → xAPIC is illegal), nor entered straight from disabled. Each of these is #GP.
    /// </summary>
    private bool WriteApicBase(ulong v)
    {
        const ulong Bsp = 1 << 8, Extd = 1 << 10, En = 1 << 11;
        ulong reserved = 0x2FF | ~((1UL << Emu64.Mmu.Mmu.MaxPhysAddr) - 1);
        if ((v & reserved & ~Bsp) != 0) return false;
        bool en = (v & En) != 0, extd = (v & Extd) != 0;
        bool wasEn = (ApicBase & En) != 0, wasExtd = (ApicBase & Extd) != 0;
        if (extd && !en) return false;                                   // invalid state
        if (wasEn && wasExtd && en && !extd) return false;               // x2APIC → xAPIC
        if (!wasEn && en && extd) return false;                          // disabled → x2APIC
        ApicBase = (v & ~Bsp) | (ApicBase & Bsp);
        Machine.OnApicBaseWrite(ApicBase);
        return true;
    }
}
