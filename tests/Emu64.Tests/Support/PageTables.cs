namespace Emu64.Tests.Support;

/// <summary>A leaf mapping found in a page-table tree, with the rights combined over the levels.</summary>
public readonly record struct Mapping(ulong Linear, ulong Physical, ulong Size, bool Writable, bool User, bool NoExec, bool Global, int Level);

/// <summary>
/// Reads 4/5-level page tables straight from guest physical memory, independently of the emulator's
/// MMU, so tests can check what the guest built.
/// </summary>
public static class PageTables
{
    private const ulong AddrMask = 0x000F_FFFF_FFFF_F000;

    /// <summary>All leaf mappings of the PGD at <paramref name="pgdPhys"/> whose top-level index is in [first, last].</summary>
    public static List<Mapping> Leaves(Machine m, ulong pgdPhys, int levels = 4, int first = 0, int last = 511)
    {
        var result = new List<Mapping>();
        Walk(m, pgdPhys, levels, 0, levels, first, last, true, false, false, result);
        return result;
    }

    private static void Walk(Machine m, ulong table, int levels, ulong prefix, int level, int first, int last,
        bool w, bool u, bool nx, List<Mapping> result)
    {
        int shift = 12 + 9 * (level - 1);
        for (int i = first; i <= last; i++)
        {
            ulong e = m.Memory.Read(table + (ulong)i * 8, 8);
            if ((e & 1) == 0) continue;
            ulong la = prefix | ((ulong)i << shift);
            if (level == levels) la = Canonical(la, levels);
            bool cw = w && (e & 2) != 0, cu = (level == levels ? (e & 4) != 0 : u && (e & 4) != 0), cnx = nx || (e >> 63) != 0;
            bool leaf = level == 1 || (level <= 3 && (e & 0x80) != 0);
            if (leaf)
            {
                ulong size = 1UL << shift;
                result.Add(new Mapping(la, e & AddrMask & ~(size - 1), size, cw, cu, cnx, (e & 0x100) != 0, level));
                continue;
            }
            Walk(m, e & AddrMask, levels, la, level - 1, 0, 511, cw, cu, cnx, result);
        }
    }

    private static ulong Canonical(ulong la, int levels)
    {
        int bits = levels == 5 ? 57 : 48;
        return (ulong)((long)(la << (64 - bits)) >> (64 - bits));
    }

    /// <summary>Finds the mapping that covers linear address la, or null.</summary>
    public static Mapping? Find(List<Mapping> maps, ulong la)
    {
        foreach (var mp in maps) if (la >= mp.Linear && la - mp.Linear < mp.Size) return mp;
        return null;
    }
}
