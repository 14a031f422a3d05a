namespace Emu64.Forensics;

/// <summary>
/// Step 1 of an analysis: find the pages that could be a kernel's top-level page table (PGD: a PML4, or a PML5
/// with la57), by reading every page of the image as if it were one. A table of the *kernel* qualifies
/// cheaply: its last entry (511, which maps __START_KERNEL_map and the cpu_entry_area in either paging mode)
/// is present, it has at least one other kernel-half entry (the direct map), and every present entry obeys
/// the paging rules (no PS bit at the top level, next table inside the image). Ordinary data rarely has 512
/// words that all look like that; lower-level tables sometimes do, and the checks of
/// <see cref="CandidateCheck"/> throw those out.
/// </summary>
public static class TopTableScan
{
    public sealed record Result(List<ulong> Candidates, ulong PagesScanned);

    public static Result Scan(IPhysicalImage image)
    {
        var found = new List<ulong>();
        ulong pages = 0;
        var pt = new GuestPageTables(image, 4);   // the top-level rules are the same for PML4 and PML5
        foreach (var r in image.Ranges)
        {
            ulong start = (r.Start + 0xFFF) & ~0xFFFUL;
            for (ulong page = start; page + 0x1000 <= r.End && page >= start; page += 0x1000)
            {
                pages++;
                if (LooksLikeKernelTop(pt, page)) found.Add(page);
            }
        }
        return new Result(found, pages);
    }

    public static bool LooksLikeKernelTop(GuestPageTables pt, ulong page)
    {
        ulong last = pt.Entry(page, 511);
        if ((last & Pte.P) == 0 || !pt.EntryPlausible(last, 4)) return false;
        int kernel = 0;
        for (int i = 0; i < 512; i++)
        {
            ulong e = pt.Entry(page, i);
            if ((e & Pte.P) == 0) continue;
            if (!pt.EntryPlausible(e, 4)) return false;
            if (i >= 256) kernel++;
        }
        return kernel >= 2;
    }
}
