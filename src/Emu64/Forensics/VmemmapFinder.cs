using static Emu64.Forensics.LinuxLayout;

namespace Emu64.Forensics;

/// <summary>The struct page array found: its base, mapped size, and what size was expected.</summary>
public sealed record VmemmapInfo(ulong Base, ulong Mapped, ulong ExpectedMin, ulong ExpectedMax, ulong LargestPage);

/// <summary>
/// Step 6: vmemmap, the virtual array of <c>struct page</c> (64 bytes per 4 KiB page frame) that Linux maps
/// at vmemmap_base (1 GiB-aligned; KASLR moves it after the direct map and vmalloc). pfn_to_page(pfn) is
/// vmemmap_base + 64 * pfn, so the array starts at the base itself (pfn 0) and covers RAM section by section
/// (128 MiB of RAM = 2 MiB of struct pages, mapped with 2 MiB pages where the CPU allows). The signature:
/// a mapping that starts exactly at a 1 GiB boundary in the KASLR range, is not the direct map, and is as
/// long as the struct pages of this much RAM: at least RAM/4096*64 rounded up to 2 MiB, at most one 2 MiB
/// block per 128 MiB section.
/// </summary>
public static class VmemmapFinder
{
    public static (VmemmapInfo? Found, ulong ExpectedMin, ulong ExpectedMax, int RunsSeen) Find(GuestPageTables pt, ulong top, ulong pageOffset, ulong directMapSize)
    {
        ulong ramEnd = pt.Image.End();
        ulong min = (ramEnd / 4096 * StructPageSize + Mib2 - 1) & ~(Mib2 - 1);
        ulong max = (ramEnd + SectionSize - 1) / SectionSize * (SectionSize / 4096 * StructPageSize);
        ulong lo = PageOffsetBase(pt.Levels), hi = CpuEntryArea;
        int first = GuestPageTables.Index(lo, pt.Levels), last = GuestPageTables.Index(hi - 1, pt.Levels);
        // Coalesce the kernel-half mappings between the direct-map base and the cpu_entry_area into runs.
        var runs = new List<(ulong Start, ulong End, ulong Largest)>();
        foreach (var (va, t) in pt.Mappings(top, first, last))
        {
            if (va < lo || va >= hi) continue;
            if (va >= pageOffset && va < pageOffset + directMapSize) continue;
            if (runs.Count > 0 && runs[^1].End == va) runs[^1] = (runs[^1].Start, va + t.PageSize, Math.Max(runs[^1].Largest, t.PageSize));
            else runs.Add((va, va + t.PageSize, t.PageSize));
            if (runs.Count > 100_000) break;
        }
        foreach (var (s, e, largest) in runs)
        {
            if ((s & (Gib - 1)) != 0) continue;
            ulong len = e - s;
            if (len >= min && len <= max) return (new VmemmapInfo(s, len, min, max, largest), min, max, runs.Count);
        }
        return (null, min, max, runs.Count);
    }
}
