using System.Text;
using Emu64.Mmu;

namespace Emu64.Debugging;

/// <summary>One run of mappings with the same flags, as Linux's ptdump prints it.</summary>
public readonly record struct PtRange(ulong Start, ulong End, int Level, ulong Flags, ulong FirstPhys);

/// <summary>
/// A dump of the page tables under a CR3 in the style of Linux's ptdump
/// (/sys/kernel/debug/page_tables): consecutive leaf mappings with the same level and flags form one
/// range. Reads memory only; nothing in the machine changes.
/// </summary>
public static class PtDump
{
    private const ulong FlagMask = PteFlags.Present | PteFlags.Write | PteFlags.User | PteFlags.Pwt | PteFlags.Pcd
                                   | PteFlags.Huge | PteFlags.Global | PteFlags.Nx;
    /// <summary>Upper bound on ranges reported, so a hostile page table cannot make a dump unbounded.</summary>
    public const int MaxRanges = 100_000;

    public static List<PtRange> Ranges(Machine m, ulong cr3)
    {
        var list = new List<PtRange>();
        int levels = PageWalker.Levels(m.Cpu);
        Recurse(m, cr3 & Emu64.Mmu.Mmu.PhysAddrMask, levels, levels, 0, list);
        return list;
    }

    private static void Recurse(Machine m, ulong table, int level, int levels, ulong prefix, List<PtRange> list)
    {
        if (!m.Memory.IsRam(table, 4096)) return;
        int shift = 12 + 9 * (level - 1);
        for (int i = 0; i < 512; i++)
        {
            if (list.Count >= MaxRanges) return;
            ulong e = m.Memory.Read(table + (ulong)i * 8, 8);
            if ((e & PteFlags.Present) == 0) continue;
            ulong va = prefix | ((ulong)i << shift);
            bool leaf = level == 1 || (level <= 3 && (e & PteFlags.Huge) != 0);
            if (!leaf) { Recurse(m, e & Emu64.Mmu.Mmu.PhysAddrMask, level - 1, levels, va, list); continue; }
            ulong size = 1UL << shift;
            ulong start = PageWalker.Canonical(va, levels);
            ulong flags = e & FlagMask;
            ulong phys = e & Emu64.Mmu.Mmu.PhysAddrMask & ~(size - 1);
            if (list.Count > 0 && list[^1].End == start && list[^1].Level == level && list[^1].Flags == flags)
                list[^1] = list[^1] with { End = start + size };
            else
                list.Add(new PtRange(start, start + size, level, flags, phys));
        }
    }

    public static string SizeText(ulong bytes)
    {
        if (bytes % (1UL << 30) == 0) return $"{bytes >> 30}G";
        if (bytes % (1UL << 20) == 0) return $"{bytes >> 20}M";
        return $"{bytes >> 10}K";
    }

    private static string LevelShort(int level, int levels) => level switch
    {
        1 => "pte", 2 => "pmd", 3 => "pud", 4 => levels == 5 ? "p4d" : "pgd", _ => "pgd",
    };

    /// <summary>The dump as text, one line per range.</summary>
    public static string Format(Machine m, ulong cr3)
    {
        var sb = new StringBuilder();
        int levels = PageWalker.Levels(m.Cpu);
        sb.Append($"---[ page tables at CR3 0x{cr3 & Emu64.Mmu.Mmu.PhysAddrMask:x} ({levels}-level) ]---\n");
        var ranges = Ranges(m, cr3);
        foreach (var r in ranges)
        {
            string flags = PageWalker.Flags(r.Flags, r.Level);
            sb.Append($"0x{r.Start:x16}-0x{r.End:x16} {SizeText(r.End - r.Start),9}  {flags,-36} {LevelShort(r.Level, levels)}  -> 0x{r.FirstPhys:x}\n");
        }
        if (ranges.Count == 0) sb.Append("(nothing mapped)\n");
        if (ranges.Count >= MaxRanges) sb.Append($"(stopped after {MaxRanges} ranges)\n");
        return sb.ToString();
    }
}
