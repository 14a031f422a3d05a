namespace Emu64.Forensics;

/// <summary>One step of a walk: the table's physical address, the index in it, and the entry read.</summary>
public readonly record struct WalkStep(int Level, ulong Table, int Index, ulong Entry)
{
    /// <summary>The level's name as Linux calls it (pgd is the top: PML5 with 5 levels, PML4 with 4).</summary>
    public string Name(int levels) => Level switch
    {
        5 => "pgd", 4 => levels == 5 ? "p4d" : "pgd", 3 => "pud", 2 => "pmd", _ => "pte",
    };
    public override string ToString() => $"[{Index}]@0x{Table:x}=0x{Entry:x}";
}

/// <summary>A translation found by a walk: the physical address, the page size, and the entries on the way.</summary>
public readonly record struct Translation(ulong Phys, ulong PageSize, WalkStep[] Steps)
{
    public ulong Leaf => Steps[^1].Entry;
    public bool Writable => Steps.All(s => (s.Entry & Pte.Rw) != 0);
    public bool User => Steps.All(s => (s.Entry & Pte.Us) != 0);
    public bool NoExecute => Steps.Any(s => (s.Entry & Pte.Nx) != 0);
    public bool Global => (Leaf & Pte.G) != 0;
    public string Path(int levels) => string.Join(" -> ", Steps.Select(s => $"{s.Name(levels)}{s}"));
}

/// <summary>x86-64 paging-structure entry bits (SDM vol. 3A §4.5).</summary>
public static class Pte
{
    public const ulong P = 1, Rw = 2, Us = 4, Ps = 0x80, G = 0x100, Nx = 1UL << 63;
    /// <summary>Bits 51:12: the next table or the page frame.</summary>
    public const ulong AddrMask = 0x000F_FFFF_FFFF_F000;
    public static ulong PageSize(int level) => 1UL << (12 + 9 * (level - 1));
}

/// <summary>
/// Page tables read out of a physical image, with the checks a forensic tool makes before it trusts a page
/// as a page table: a present entry that points at a next-level table must point into the image; a large
/// page (PS at the PUD or PMD level) must be aligned to its size (the bits between 12 and the page size are
/// reserved except PAT at bit 12); PS is reserved at the top levels. An entry that breaks a rule makes the
/// whole table implausible.
/// </summary>
public sealed class GuestPageTables(IPhysicalImage image, int levels)
{
    public IPhysicalImage Image => image;
    public int Levels => levels;
    public int VaBits => 12 + 9 * levels;

    public ulong Entry(ulong table, int index) => image.TryRead64(table + 8UL * (uint)index, out ulong v) ? v : 0;

    public static int Index(ulong va, int level) => (int)((va >> (12 + 9 * (level - 1))) & 511);

    /// <summary>The sign-extended (canonical) form of an address built from table indexes.</summary>
    public ulong Canonical(ulong va)
    {
        int shift = 64 - VaBits;
        return (ulong)((long)(va << shift) >> shift);
    }

    /// <summary>True when a present entry at <paramref name="level"/> obeys the rules above (a non-present entry always does).</summary>
    public bool EntryPlausible(ulong e, int level)
    {
        if ((e & Pte.P) == 0) return true;
        ulong addr = e & Pte.AddrMask;
        if ((e & Pte.Ps) != 0 && level is 2 or 3)
        {
            ulong reserved = (Pte.PageSize(level) - 1) & ~0x1FFFUL;   // bits 13..(size-1); bit 12 is PAT
            return (addr & reserved) == 0;
        }
        if ((e & Pte.Ps) != 0 && level > 3) return false;
        if (level == 1) return true;        // a 4 KiB frame may be anything, even MMIO
        return image.Contains(addr, 4096);  // the next table must be in the image
    }

    /// <summary>Walks <paramref name="va"/> from the top table; null when some entry on the way is not present or implausible.</summary>
    public Translation? Translate(ulong top, ulong va)
    {
        var steps = new WalkStep[levels];
        ulong table = top;
        for (int level = levels, k = 0; level >= 1; level--, k++)
        {
            int idx = Index(va, level);
            ulong e = Entry(table, idx);
            steps[k] = new WalkStep(level, table, idx, e);
            if ((e & Pte.P) == 0 || !EntryPlausible(e, level)) return null;
            bool leaf = level == 1 || (level <= 3 && (e & Pte.Ps) != 0);
            if (leaf)
            {
                ulong size = Pte.PageSize(level);
                ulong frame = e & Pte.AddrMask & ~(size - 1);
                return new Translation(frame + (va & (size - 1)), size, steps[..(k + 1)]);
            }
            table = e & Pte.AddrMask;
        }
        return null;
    }

    /// <summary>
    /// Every leaf mapping under the entries <paramref name="first"/>..<paramref name="last"/> of the top table, in
    /// address order: (virtual address, translation). Bounded by the tables' size: at most 512 entries per table.
    /// </summary>
    public IEnumerable<(ulong Va, Translation T)> Mappings(ulong top, int first = 0, int last = 511)
    {
        var path = new WalkStep[levels];
        return Visit(top, levels, 0, first, last, path, 0);
    }

    private IEnumerable<(ulong, Translation)> Visit(ulong table, int level, ulong vaPrefix, int first, int last, WalkStep[] path, int depth)
    {
        for (int i = first; i <= last; i++)
        {
            ulong e = Entry(table, i);
            if ((e & Pte.P) == 0 || !EntryPlausible(e, level)) continue;
            ulong va = vaPrefix | ((ulong)i << (12 + 9 * (level - 1)));
            path[depth] = new WalkStep(level, table, i, e);
            bool leaf = level == 1 || (level <= 3 && (e & Pte.Ps) != 0);
            if (leaf)
            {
                ulong size = Pte.PageSize(level);
                yield return (Canonical(va), new Translation(e & Pte.AddrMask & ~(size - 1), size, path[..(depth + 1)]));
            }
            else
                foreach (var x in Visit(e & Pte.AddrMask, level - 1, va, 0, 511, path, depth + 1)) yield return x;
        }
    }
}
