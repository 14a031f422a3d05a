using static Emu64.Forensics.LinuxLayout;

namespace Emu64.Forensics;

/// <summary>A user PGD found 4 KiB above a kernel PGD, and what its kernel half maps.</summary>
public sealed record UserPgd(ulong Kernel, ulong User, int UserEntries, List<(ulong Start, ulong End)> KernelHalfMaps, ulong CeaPhys);

/// <summary>
/// Step 5: KPTI. With page-table isolation Linux allocates each PGD as an 8 KiB-aligned pair (order-1 page):
/// the kernel PGD, and at +4 KiB the user PGD that CR3 holds while user code runs (CR3 bit 12 picks it).
/// The user PGD is recognised by three facts, each a comparison with its kernel twin:
/// <list type="bullet">
/// <item>its user half is the kernel PGD's user half, entry for entry, except NX: the kernel's copy of each
/// user entry has NX set so that the kernel can never execute user memory;</item>
/// <item>its kernel half maps the cpu_entry_area (CPU_ENTRY_AREA_BASE translates to the same physical page as
/// through the kernel PGD: the entry trampoline's stack, GDT, IDT and TSS must be reachable before CR3 changes);</item>
/// <item>its kernel half does not map the direct map (PAGE_OFFSET does not translate): the secrets stay unmapped,
/// which is the point of PTI.</item>
/// </list>
/// </summary>
public static class PtiPairs
{
    public static UserPgd? Find(GuestPageTables pt, ulong kernelPgd, ulong pageOffset)
    {
        if ((kernelPgd & 0x1FFF) != 0) return null;           // the pair is 8 KiB aligned
        ulong u = kernelPgd + 0x1000;
        if (!pt.Image.Contains(u, 0x1000)) return null;
        int userEntries = 0, kernelEntries = 0;
        for (int i = 0; i < 512; i++)
        {
            ulong ue = pt.Entry(u, i), ke = pt.Entry(kernelPgd, i);
            if (!pt.EntryPlausible(ue, pt.Levels)) return null;
            if (i < 256)
            {
                if ((ue & ~Pte.Nx) != (ke & ~Pte.Nx)) return null;
                if ((ue & Pte.P) != 0) userEntries++;
            }
            else if ((ue & Pte.P) != 0) kernelEntries++;
        }
        if (kernelEntries == 0) return null;
        var ceaK = pt.Translate(kernelPgd, CpuEntryArea);
        var ceaU = pt.Translate(u, CpuEntryArea);
        if (ceaK is not { } ck || ceaU is not { } cu || ck.Phys != cu.Phys) return null;
        if (pt.Translate(u, pageOffset) is not null) return null;
        // What the user PGD's kernel half maps, as address ranges (a handful of pages).
        var maps = new List<(ulong Start, ulong End)>();
        foreach (var (va, t) in pt.Mappings(u, 256, 511))
        {
            if (maps.Count > 0 && maps[^1].End == va) maps[^1] = (maps[^1].Start, va + t.PageSize);
            else maps.Add((va, va + t.PageSize));
            if (maps.Count > 64) break;
        }
        return new UserPgd(kernelPgd, u, userEntries, maps, cu.Phys);
    }
}
