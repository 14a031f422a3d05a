namespace Emu64.Mmu;

/// <summary>Paging-structure entry bits (SDM vol. 3A §4.5, tables 4-15 to 4-20).</summary>
public static class PteFlags
{
    public const ulong Present = 1UL << 0, Write = 1UL << 1, User = 1UL << 2, Pwt = 1UL << 3, Pcd = 1UL << 4;
    public const ulong Accessed = 1UL << 5, Dirty = 1UL << 6, Huge = 1UL << 7, Global = 1UL << 8;
    public const ulong PatLarge = 1UL << 12;   // PAT bit of 2 MiB / 1 GiB leaf entries
    public const ulong Nx = 1UL << 63;
    public const int PkeyShift = 59;
    public const ulong PkeyMask = 0xFUL << PkeyShift;
}

/// <summary>The kind of a memory access, as the MMU sees it.</summary>
[Flags]
public enum Access : byte
{
    Read = 0,
    Write = 1,
    Fetch = 2,
    /// <summary>A user-mode access (CPL 3 and not implicit).</summary>
    User = 4,
    /// <summary>An implicit supervisor access to a system structure (GDT/LDT/IDT/TSS): never a user access, SMAP ignores AC.</summary>
    Implicit = 8,
    /// <summary>A debugger access: no fault is raised, no A/D bit or counter changes.</summary>
    Probe = 16,
}
