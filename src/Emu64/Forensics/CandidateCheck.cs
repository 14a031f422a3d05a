using static Emu64.Forensics.LinuxLayout;

namespace Emu64.Forensics;

/// <summary>The direct map found through one top-level table: its base and the walk that proved it.</summary>
/// <summary>
/// <paramref name="Covered"/>: bytes of the dump's RAM the map covers (all of it but the holes); <paramref name="Samples"/>: points
/// checked (every 2 MiB and the last page of each range); <paramref name="Holes"/>: the physical addresses of the points not mapped.
/// </summary>
public sealed record DirectMap(ulong PageOffset, Translation First, ulong Covered, ulong LargestPage, bool Nx, bool Writable, bool User, bool Global,
    int Samples = 0, List<ulong>? Holes = null, int ReadOnly = 0);

/// <summary>What one candidate top-level table is, read with a given number of levels.</summary>
public sealed record Candidate(ulong Top, int Levels, DirectMap? DirectMap, Translation? SelfMap, ulong? ImageStart, Translation? ImageFirst, string? Rejected)
{
    public bool Valid => Rejected is null;
}

/// <summary>
/// Step 2: read a candidate as a PML4 (4-level) and as a PML5 (5-level) and keep the readings under which it
/// behaves as a Linux kernel's PGD. Three signatures, each one a walk through the candidate:
/// <list type="number">
/// <item><b>The direct map.</b> Somewhere in the direct-map KASLR range (a 1 GiB-aligned address between
/// __PAGE_OFFSET_BASE and the cpu_entry_area) a virtual address translates to physical 0, and every further
/// 2 MiB of the image translates to the same offset: all RAM, mapped linearly. Linux needs this map to reach
/// any physical page (page tables included) by adding PAGE_OFFSET.</item>
/// <item><b>The table maps itself.</b> PAGE_OFFSET + (the candidate's own physical address) translates back to
/// the candidate: the kernel edits its page tables through the direct map, so its PGD must be in it. A
/// lower-level table read as a top-level one fails here even when its entries look fine.</item>
/// <item><b>The kernel image.</b> Something is mapped in the 1 GiB window at __START_KERNEL_map
/// (0xffffffff80000000): the kernel's text.</item>
/// </list>
/// Reading with the wrong number of levels fails the first check: a 4-level PGD read as a PML5 reaches 2 MiB
/// page entries at the PUD level, whose addresses are not 1 GiB-aligned (reserved bits set), and a PML5 read
/// as a PML4 has no direct map in the 4-level range.
/// </summary>
public static class CandidateCheck
{
    public static Candidate Evaluate(IPhysicalImage image, ulong top, int levels)
    {
        var pt = new GuestPageTables(image, levels);
        var dm = FindDirectMap(pt, top);
        if (dm is null) return new Candidate(top, levels, null, null, null, null, "no linear map of all RAM in the direct-map range");
        var self = pt.Translate(top, dm.PageOffset + top);
        if (self is not { } s || s.Phys != top)
            return new Candidate(top, levels, dm, self, null, null, $"PAGE_OFFSET + 0x{top:x} does not translate back to the table");
        var (va, t) = FirstKernelImageMapping(pt, top);
        if (t is null) return new Candidate(top, levels, dm, self, null, null, "nothing mapped at __START_KERNEL_map");
        return new Candidate(top, levels, dm, self, va, t, null);
    }

    /// <summary>The lowest 1 GiB-aligned address in [__PAGE_OFFSET_BASE, cpu_entry_area) that maps all of the image's RAM linearly from 0.</summary>
    public static DirectMap? FindDirectMap(GuestPageTables pt, ulong top)
    {
        ulong lo = PageOffsetBase(pt.Levels), hi = CpuEntryArea;
        foreach (ulong va in GibSlots(pt, top, pt.Levels, 0, lo, hi))
        {
            var t = pt.Translate(top, va);
            if (t is not { Phys: 0 } first) continue;
            if (Linear(pt, top, va, out ulong covered, out var agg, out int samples, out var holes))
                return new DirectMap(va, first, covered, agg.Largest, agg.Nx, agg.Ro * 16 <= samples, agg.Us, agg.G, samples, holes, agg.Ro);
        }
        return null;
    }

    /// <summary>The 1 GiB-aligned virtual addresses in [lo, hi) below which something is present, in address order.</summary>
    private static IEnumerable<ulong> GibSlots(GuestPageTables pt, ulong table, int level, ulong prefix, ulong lo, ulong hi)
    {
        int shift = 12 + 9 * (level - 1);
        for (int i = 0; i < 512; i++)
        {
            ulong va = pt.Canonical(prefix | ((ulong)i << shift));
            ulong size = 1UL << shift;
            if (va + (size - 1) < lo || va >= hi) continue;
            ulong e = pt.Entry(table, i);
            if ((e & Pte.P) == 0 || !pt.EntryPlausible(e, level)) continue;
            if (level == 3) { yield return va; continue; }
            if ((e & Pte.Ps) != 0) continue;
            foreach (var x in GibSlots(pt, e & Pte.AddrMask, level - 1, prefix | ((ulong)i << shift), lo, hi)) yield return x;
        }
    }

    private record struct Agg(ulong Largest, bool Nx, int Ro, bool Us, bool G);

    /// <summary>
    /// Every 2 MiB of every RAM range of the dump (and the last page of each) translates from <paramref name="baseVa"/> + pa
    /// to pa, or is a hole: not mapped at all. The dump holds all of the machine's RAM, but the kernel maps only what its
    /// memory map calls usable: Linux leaves the ranges the firmware reserves unmapped (on Emu64 and QEMU's "pc" machine,
    /// the last 128 KiB below the end of the first RAM range: the e820 map's reserved 0x...fe0000 range). So holes are
    /// allowed, as long as they are few (at most 1 in 16 sample points) and no point translates anywhere else.
    /// </summary>
    private static bool Linear(GuestPageTables pt, ulong top, ulong baseVa, out ulong covered, out Agg agg, out int samples, out List<ulong> holes)
    {
        covered = 0;
        samples = 0;
        holes = new();
        agg = new Agg(0, true, 0, false, true);
        int mapped = 0;
        foreach (var r in pt.Image.Ranges)
        {
            for (ulong pa = r.Start & ~(Mib2 - 1); ; pa += Mib2)
            {
                ulong p = Math.Max(pa, r.Start);
                if (p >= r.End) p = r.End - 0x1000;
                samples++;
                var t = pt.Translate(top, baseVa + p);
                if (t is not { } tt) holes.Add(p);
                else if (tt.Phys != p) return false;
                else
                {
                    mapped++;
                    agg = new Agg(Math.Max(agg.Largest, tt.PageSize), agg.Nx && tt.NoExecute, agg.Ro + (tt.Writable ? 0 : 1), agg.Us || tt.User, agg.G && tt.Global);
                }
                if (p == r.End - 0x1000) break;
            }
            covered += r.Length;
        }
        return mapped > 0 && (samples - mapped) * 16 <= samples;
    }

    /// <summary>The first mapped address in __START_KERNEL_map's 1 GiB window, found 2 MiB at a time, then 4 KiB.</summary>
    public static (ulong? Va, Translation? T) FirstKernelImageMapping(GuestPageTables pt, ulong top)
    {
        for (ulong va = StartKernelMap; va >= StartKernelMap && va < StartKernelMap + KernelImageSize; va += Mib2)
        {
            var pmdWalk = WalkTo(pt, top, va, 2);
            if (pmdWalk is not { } e) continue;
            if ((e & Pte.Ps) != 0) return (va, pt.Translate(top, va));
            for (ulong p = va; p < va + Mib2; p += 0x1000)
                if (pt.Translate(top, p) is { } t) return (p, t);
        }
        return (null, null);
    }

    /// <summary>The present, plausible entry at <paramref name="level"/> on the way to <paramref name="va"/>, or null.</summary>
    public static ulong? WalkTo(GuestPageTables pt, ulong top, ulong va, int level)
    {
        ulong table = top;
        for (int l = pt.Levels; l >= level; l--)
        {
            ulong e = pt.Entry(table, GuestPageTables.Index(va, l));
            if ((e & Pte.P) == 0 || !pt.EntryPlausible(e, l)) return null;
            if (l == level) return e;
            if ((e & Pte.Ps) != 0) return null;
            table = e & Pte.AddrMask;
        }
        return null;
    }
}
