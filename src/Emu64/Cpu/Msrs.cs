namespace Emu64.Cpu;

/// <summary>
/// MSR numbers of the memory-type, microcode and machine-check registers (SDM vol. 4 table 2-2; vol. 3A
/// §11.11 MTRRs, §11.12 PAT, §9.11 microcode update, §15.3 machine-check MSRs).
/// </summary>
public static partial class Msr
{
    public const uint PlatformId = 0x17, BiosSignId = 0x8B, MtrrCap = 0xFE, McgCap = 0x179, McgStatus = 0x17A;
    public const uint MtrrPhysBase0 = 0x200, MtrrPhysMask7 = 0x20F, MtrrDefType = 0x2FF;
    public const uint MtrrFix64K00000 = 0x250, MtrrFix16K80000 = 0x258, MtrrFix16KA0000 = 0x259;
    public const uint MtrrFix4KC0000 = 0x268, MtrrFix4KF8000 = 0x26F;
    /// <summary>IA32_ARCH_CAPABILITIES: deliberately absent (CPUID.7.EDX[29] = 0), so Linux treats the CPU as Meltdown-affected.</summary>
    public const uint ArchCapabilities = 0x10A;
}

/// <summary>
/// Memory types of MTRRs and the PAT (SDM vol. 3A table 11-8, 11-10). Emu64 has no caches: the registers
/// hold and check their values exactly as the SDM says, and the types change no timing.
/// </summary>
public static class MemType
{
    public const byte Uc = 0, Wc = 1, Wt = 4, Wp = 5, Wb = 6, UcMinus = 7;

    /// <summary>Types an MTRR accepts (UC, WC, WT, WP, WB); anything else in a type field is #GP.</summary>
    public static bool ValidMtrr(ulong t) => t is Uc or Wc or Wt or Wp or Wb;

    /// <summary>Types a PAT entry accepts: the MTRR types plus UC- (7).</summary>
    public static bool ValidPat(ulong t) => ValidMtrr(t) || t == UcMinus;
}

/// <summary>RDMSR/WRMSR: the model-specific registers this CPU has. Unknown MSRs raise #GP, as on hardware.</summary>
public sealed partial class Cpu
{
    /// <summary>The time-stamp counter: virtual cycles (retired instructions plus time skipped while halted).</summary>
    public ulong Tsc => Machine.Now + _tscOffset;
    private ulong _tscOffset;

    /// <summary>
    /// The microcode revision this model reports in IA32_BIOS_SIGN_ID[63:32]: 0xF0, the last update Intel
    /// published for CPUID 0x506E3 (Skylake-S). Linux compares it with its errata tables: below 0xB2 it
    /// disables the TSC-deadline timer ("TSC_DEADLINE disabled due to Errata").
    /// </summary>
    public const uint MicrocodeRevision = 0xF0;

    /// <summary>IA32_PLATFORM_ID (RO): platform ID 1 in bits 52:50; Linux's microcode driver reads it.</summary>
    public const ulong PlatformIdValue = 1UL << 50;

    /// <summary>IA32_MTRRCAP (RO): 8 variable ranges (VCNT), fixed ranges (FIX, bit 8), write-combining (WC, bit 10); no SMRR.</summary>
    public const ulong MtrrCapValue = 8 | (1UL << 8) | (1UL << 10);
    public const int MtrrVariableCount = 8;

    /// <summary>IA32_MTRR_DEF_TYPE bits: type in 7:0, FE (fixed ranges enable) bit 10, E (MTRRs enable) bit 11.</summary>
    public const ulong MtrrDefTypeE = 1UL << 11, MtrrDefTypeFe = 1UL << 10;

    /// <summary>IA32_MTRR_PHYSMASKn bit 11: the range is valid.</summary>
    public const ulong MtrrMaskValid = 1UL << 11;

    /// <summary>
    /// IA32_MISC_ENABLE bits (SDM vol. 4 table 2-2): fast strings (0, R/W), automatic thermal control (3, R/W),
    /// BTS unavailable (11, RO: no branch trace store) and PEBS unavailable (12, RO), limit CPUID maxval
    /// (22, R/W: CPUID.0 reports 2), xTPR message disable (23, R/W), XD bit disable (34, R/W: CPUID and
    /// EFER lose NX). The rest are reserved (#GP) on this model. Bit 16 (Enhanced SpeedStep enable) exists only when
    /// CPUID.1:ECX.EST = 1, and bit 18 (ENABLE MONITOR FSM) decides whether CPUID reports MONITOR; with CPUID.1:ECX.SSE3 = 0
    /// the SDM says software must not alter it and a write may #GP. This model reports neither EST, SSE3 nor MONITOR, so
    /// both fault: KVM accepts them (kvm-unit-tests' `msr` writes them), hardware of this model need not.
    /// </summary>
    public const ulong MiscEnableFastStrings = 1UL << 0, MiscEnableLimitCpuid = 1UL << 22, MiscEnableXdDisable = 1UL << 34;
    public const ulong MiscEnableReadOnly = (1UL << 11) | (1UL << 12);
    public const ulong MiscEnableWritable = MiscEnableFastStrings | (1UL << 3) | MiscEnableLimitCpuid | (1UL << 23) | MiscEnableXdDisable;
    /// <summary>The reset value: fast strings on, BTS and PEBS unavailable.</summary>
    public const ulong MiscEnableReset = MiscEnableFastStrings | MiscEnableReadOnly;

    /// <summary>IA32_BIOS_SIGN_ID as last loaded: CPUID leaf 1 loads the revision into bits 63:32.</summary>
    public ulong BiosSignId = (ulong)MicrocodeRevision << 32;

    /// <summary>IA32_MCG_STATUS: RIPV, EIPV, MCIP (bits 2:0); no machine check is ever signalled.</summary>
    public ulong McgStatus;

    /// <summary>IA32_MTRR_DEF_TYPE, the 11 fixed-range MTRRs (0x250, 0x258, 0x259, 0x268–0x26F) and the 8 variable pairs.</summary>
    public ulong MtrrDefType;
    public readonly ulong[] MtrrFixed = new ulong[11];
    public readonly ulong[] MtrrPhysBase = new ulong[MtrrVariableCount], MtrrPhysMask = new ulong[MtrrVariableCount];

    /// <summary>Bits of a physical address this CPU has, above bit 11 (the address fields of MTRR base and mask).</summary>
    private const ulong MtrrAddrMask = Emu64.Mmu.Mmu.PhysAddrMask;

    /// <summary>Index into <see cref="MtrrFixed"/> of a fixed-range MTRR, or -1.</summary>
    private static int FixedIndex(uint msr) => msr switch
    {
        Emu64.Cpu.Msr.MtrrFix64K00000 => 0,
        Emu64.Cpu.Msr.MtrrFix16K80000 => 1,
        Emu64.Cpu.Msr.MtrrFix16KA0000 => 2,
        >= Emu64.Cpu.Msr.MtrrFix4KC0000 and <= Emu64.Cpu.Msr.MtrrFix4KF8000 => 3 + (int)(msr - Emu64.Cpu.Msr.MtrrFix4KC0000),
        _ => -1,
    };

    /// <summary>
    /// Puts the MTRRs in the state PC firmware leaves them in, as QEMU's SeaBIOS does (src/fw/mtrr.c
    /// behaviour, measured under QEMU 7.2): RAM below 640 KiB write-back, the VGA window 0xA0000–0xBFFFF
    /// uncacheable, the ROM area 0xC0000–0xFFFFF write-protect, variable range 0 making the PCI hole up to 4 GiB
    /// uncacheable, default type write-back, fixed and variable ranges enabled. The hole starts where SeaBIOS puts
    /// the 32-bit PCI window on QEMU's i440FX machine (pcimem_start): 2 GiB for RAM up to 2 GiB, 3 GiB for RAM up
    /// to 3 GiB, so no RAM is ever uncacheable.
    /// </summary>
    public void SetFirmwareMtrrs()
    {
        ulong ram = Machine.Memory.RamSize;
        static ulong Bytes(Func<int, bool> wb, byte type)
        {
            ulong v = 0;
            for (int i = 0; i < 8; i++) if (wb(i)) v |= (ulong)type << (8 * i);
            return v;
        }
        MtrrFixed[0] = Bytes(i => ram >= 0x10000UL * (ulong)(i + 1), MemType.Wb);
        MtrrFixed[1] = Bytes(i => ram >= 0x80000 + 0x4000UL * (ulong)(i + 1), MemType.Wb);
        MtrrFixed[2] = 0;
        for (int j = 0; j < 8; j++)
            MtrrFixed[3 + j] = Bytes(i => ram >= 0xC0000 + 0x8000UL * (ulong)j + 0x1000UL * (ulong)(i + 1), MemType.Wp);
        Array.Clear(MtrrPhysBase);
        Array.Clear(MtrrPhysMask);
        ulong holeStart = ram <= 0x80000000UL ? 0x80000000UL : 0xC0000000UL;
        MtrrPhysBase[0] = holeStart | MemType.Uc;
        MtrrPhysMask[0] = (~(0x100000000UL - holeStart - 1) & MtrrAddrMask) | MtrrMaskValid;
        MtrrDefType = MtrrDefTypeE | MtrrDefTypeFe | MemType.Wb;
    }

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
            case Emu64.Cpu.Msr.PlatformId: v = PlatformIdValue; return true;
            case Emu64.Cpu.Msr.BiosSignId: v = BiosSignId; return true;
            case Emu64.Cpu.Msr.MtrrCap: v = MtrrCapValue; return true;
            case Emu64.Cpu.Msr.MtrrDefType: v = MtrrDefType; return true;
            case Emu64.Cpu.Msr.McgCap: v = 0; return true;              // no banks, no IA32_MCG_CTL, no extended state
            case Emu64.Cpu.Msr.McgStatus: v = McgStatus; return true;
            case >= Emu64.Cpu.Msr.MtrrPhysBase0 and <= Emu64.Cpu.Msr.MtrrPhysMask7:
                {
                    int n = (int)(msr - Emu64.Cpu.Msr.MtrrPhysBase0);
                    v = (n & 1) == 0 ? MtrrPhysBase[n >> 1] : MtrrPhysMask[n >> 1];
                    return true;
                }
        }
        int f = FixedIndex(msr);
        if (f >= 0) { v = MtrrFixed[f]; return true; }
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
                    // NXE is reserved while IA32_MISC_ENABLE.XD_DISABLE hides the feature.
                    if ((v & Emu64.Cpu.Efer.Nxe) != 0 && (MiscEnable & MiscEnableXdDisable) != 0) return false;
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
            case Emu64.Cpu.Msr.Pat:
                // Eight entries PA0–PA7, one per byte: type in bits 2:0, bits 7:3 reserved (SDM §11.12.2).
                for (int i = 0; i < 8; i++) if (!MemType.ValidPat((v >> (8 * i)) & 0xFF)) return false;
                Pat = v;
                return true;
            case Emu64.Cpu.Msr.MiscEnable:
                if ((v & ~(MiscEnableWritable | MiscEnableReadOnly)) != 0) return false;
                MiscEnable = (v & MiscEnableWritable) | (MiscEnable & MiscEnableReadOnly);
                return true;
            case Emu64.Cpu.Msr.SysenterCs: SysenterCs = v; return true;
            case Emu64.Cpu.Msr.SysenterEsp: SysenterEsp = v; return true;
            case Emu64.Cpu.Msr.SysenterEip: SysenterEip = v; return true;
            // Software writes 0 here and then runs CPUID(1), which loads the revision (SDM §9.11.7.1).
            case Emu64.Cpu.Msr.BiosSignId: BiosSignId = v; return true;
            case Emu64.Cpu.Msr.McgStatus: if ((v & ~7UL) != 0) return false; McgStatus = v; return true;
            case Emu64.Cpu.Msr.MtrrDefType:
                // Type in 7:0, FE bit 10, E bit 11; bits 9:8 and 63:12 reserved.
                if ((v & ~(0xFFUL | MtrrDefTypeFe | MtrrDefTypeE)) != 0 || !MemType.ValidMtrr(v & 0xFF)) return false;
                MtrrDefType = v;
                return true;
            case >= Emu64.Cpu.Msr.MtrrPhysBase0 and <= Emu64.Cpu.Msr.MtrrPhysMask7:
                {
                    int n = (int)(msr - Emu64.Cpu.Msr.MtrrPhysBase0);
                    if ((n & 1) == 0)
                    {
                        // PHYSBASE: type in 7:0, bits 11:8 and those at and above MAXPHYADDR reserved.
                        if ((v & ~(0xFFUL | MtrrAddrMask)) != 0 || !MemType.ValidMtrr(v & 0xFF)) return false;
                        MtrrPhysBase[n >> 1] = v;
                    }
                    else
                    {
                        // PHYSMASK: V in bit 11, bits 10:0 and those at and above MAXPHYADDR reserved.
                        if ((v & ~(MtrrMaskValid | MtrrAddrMask)) != 0) return false;
                        MtrrPhysMask[n >> 1] = v;
                    }
                    return true;
                }
            // Read-only: IA32_PLATFORM_ID, IA32_MTRRCAP, IA32_MCG_CAP (a write is #GP).
            case Emu64.Cpu.Msr.PlatformId: case Emu64.Cpu.Msr.MtrrCap: case Emu64.Cpu.Msr.McgCap: return false;
        }
        int f = FixedIndex(msr);
        if (f >= 0)
        {
            // Eight 8-bit type fields, each a valid MTRR type.
            for (int i = 0; i < 8; i++) if (!MemType.ValidMtrr((v >> (8 * i)) & 0xFF)) return false;
            MtrrFixed[f] = v;
            return true;
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
