namespace Emu64.Cpu;

/// <summary>CR0 bits (SDM vol. 3A §2.5).</summary>
public static class Cr0
{
    public const ulong Pe = 1UL << 0, Mp = 1UL << 1, Em = 1UL << 2, Ts = 1UL << 3, Et = 1UL << 4, Ne = 1UL << 5;
    public const ulong Wp = 1UL << 16, Am = 1UL << 18, Nw = 1UL << 29, Cd = 1UL << 30, Pg = 1UL << 31;
    public const ulong Writable = Pe | Mp | Em | Ts | Et | Ne | Wp | Am | Nw | Cd | Pg;
}

/// <summary>CR3 fields: the PCID in bits 11:0 when CR4.PCIDE=1, bit 63 NOFLUSH on writes.</summary>
public static class Cr3
{
    public const ulong PcidMask = 0xFFF;
    public const ulong NoFlush = 1UL << 63;
    public const ulong Pwt = 1UL << 3, Pcd = 1UL << 4;
}

/// <summary>CR4 bits (SDM vol. 3A §2.5).</summary>
public static class Cr4
{
    public const ulong Vme = 1UL << 0, Pvi = 1UL << 1, Tsd = 1UL << 2, De = 1UL << 3, Pse = 1UL << 4, Pae = 1UL << 5;
    public const ulong Mce = 1UL << 6, Pge = 1UL << 7, Pce = 1UL << 8, Osfxsr = 1UL << 9, Osxmmexcpt = 1UL << 10;
    public const ulong Umip = 1UL << 11, La57 = 1UL << 12, Fsgsbase = 1UL << 16, Pcide = 1UL << 17, Osxsave = 1UL << 18;
    public const ulong Smep = 1UL << 20, Smap = 1UL << 21, Pke = 1UL << 22;
    /// <summary>
    /// Bits this CPU lets software set; the rest are reserved (#GP). Not VME or PVI: virtual-8086 mode runs without the
    /// virtual-interrupt extensions, and CPUID.1:EDX.VME is 0.
    /// </summary>
    public const ulong Supported = Tsd | De | Pse | Pae | Mce | Pge | Pce | Osfxsr | Osxmmexcpt | Umip | La57
        | Fsgsbase | Pcide | Smep | Smap | Pke;
}

/// <summary>IA32_EFER bits.</summary>
public static class Efer
{
    public const ulong Sce = 1UL << 0, Lme = 1UL << 8, Lma = 1UL << 10, Nxe = 1UL << 11;
    public const ulong Writable = Sce | Lme | Nxe;
}

/// <summary>Model-specific register numbers a kernel uses (more in Msrs.cs).</summary>
public static partial class Msr
{
    public const uint Tsc = 0x10, ApicBase = 0x1B, SpecCtrl = 0x48, MiscEnable = 0x1A0, Pat = 0x277, TscDeadline = 0x6E0;
    public const uint SysenterCs = 0x174, SysenterEsp = 0x175, SysenterEip = 0x176;
    public const uint Efer = 0xC0000080, Star = 0xC0000081, Lstar = 0xC0000082, Cstar = 0xC0000083, Sfmask = 0xC0000084;
    public const uint FsBase = 0xC0000100, GsBase = 0xC0000101, KernelGsBase = 0xC0000102, TscAux = 0xC0000103;
}

/// <summary>Exception vectors (SDM vol. 3A §6.15).</summary>
public static class Vec
{
    public const int DE = 0, DB = 1, NMI = 2, BP = 3, OF = 4, BR = 5, UD = 6, NM = 7, DF = 8;
    public const int TS = 10, NP = 11, SS = 12, GP = 13, PF = 14, MF = 16, AC = 17, MC = 18, XM = 19;

    public static string Name(int v) => v switch
    {
        DE => "#DE", DB => "#DB", NMI => "NMI", BP => "#BP", OF => "#OF", BR => "#BR", UD => "#UD", NM => "#NM", DF => "#DF",
        TS => "#TS", NP => "#NP", SS => "#SS", GP => "#GP", PF => "#PF", MF => "#MF", AC => "#AC", MC => "#MC", XM => "#XM",
        _ => $"vector {v}",
    };

    /// <summary>Exceptions that push an error code.</summary>
    public static bool HasErrorCode(int v) => v is DF or TS or NP or SS or GP or PF or AC;
}

/// <summary>#PF error-code bits (SDM vol. 3A §4.7).</summary>
public static class PfErr
{
    public const uint P = 1 << 0, W = 1 << 1, U = 1 << 2, Rsvd = 1 << 3, I = 1 << 4, Pk = 1 << 5, Ss = 1 << 6;
}
