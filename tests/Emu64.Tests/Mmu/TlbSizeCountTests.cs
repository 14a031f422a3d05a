using System.Reflection;
using Emu64.Mmu;

namespace Emu64.Tests.Mmu;

/// <summary>
/// TlbArray.Find answers "not found" without reading a set that holds no valid entry of the size asked for (its per-set, per-size
/// counts). A count that is too low would make a lookup miss an entry the set holds; one that is too high only costs a scan. Both
/// are checked: every lookup against a scan of the whole array, and every count against the entries, through random fills of
/// 4 KiB, 2 MiB and 4 MiB-fragment entries (global or not, several PCIDs) over one another and random invalidations of every kind.
/// </summary>
[Trait("Category", "Mmu")]
public class TlbSizeCountTests
{
    private static readonly FieldInfo Counts = typeof(TlbArray).GetField("_sizeCounts", BindingFlags.NonPublic | BindingFlags.Instance)!;

    [Theory]
    [InlineData(Replacement.Lru)]
    [InlineData(Replacement.Fifo)]
    [InlineData(Replacement.Random)]
    public void Lookups_find_what_a_scan_finds_and_the_counts_match_the_entries(Replacement policy)
    {
        var a = new TlbArray("stlb", 48, 12, policy, 1 << (int)PageSize.Size4K | 1 << (int)PageSize.Size2M);
        var rng = new Random(21);
        int found = 0;
        for (int step = 0; step < 20000; step++)
        {
            var size = rng.Next(0, 3) == 0 ? PageSize.Size2M : PageSize.Size4K;
            ulong la = ((ulong)rng.Next(0, 40) << TlbArray.Shift(size)) | ((ulong)rng.Next(0, 4) << 12);   // 160 4 KiB pages, 40 2 MiB ones
            ushort pcid = (ushort)rng.Next(0, 3);
            switch (rng.Next(0, 40))
            {
                case 0: a.Invalidate(TlbArray.Select.Page, pcid, la, pageGlobalsToo: rng.Next(0, 2) == 0); break;
                case 1: a.Invalidate(TlbArray.Select.PcidNonGlobal, pcid); break;
                case 2 when rng.Next(0, 10) == 0: a.Invalidate(TlbArray.Select.AllNonGlobal); break;
                case 3 when rng.Next(0, 20) == 0: a.Invalidate(TlbArray.Select.All); break;
                default:
                    int i = a.Find(la, pcid, size, touch: true);
                    Assert.Equal(Scan(a, la, pcid, size), i);
                    if (i >= 0) { found++; break; }
                    byte flags = EntryFlags.Make(size, rng.Next(0, 8) == 0);
                    if (size == PageSize.Size2M && rng.Next(0, 4) == 0) flags |= EntryFlags.Frag4M;
                    a.Fill(new TlbEntry { Vpn = la >> TlbArray.Shift(size), Frame = (ulong)step << 21, Pcid = pcid, Rights = Rights.W, Flags = flags });
                    break;
            }
            var counts = (int[])Counts.GetValue(a)!;
            for (int set = 0; set < a.Sets; set++)
                for (int s = 0; s < 3; s++)
                    Assert.Equal(a.E.Skip(set * a.Ways).Take(a.Ways).Count(x => x.Valid && (int)x.Size == s), counts[set * 3 + s]);
        }
        Assert.True(found > 2000, $"only {found} hits");
    }

    /// <summary>Find's answer by reading every entry of the array.</summary>
    private static int Scan(TlbArray a, ulong la, ushort pcid, PageSize size)
    {
        int set = (int)(la >> TlbArray.Shift(size)) & (a.Sets - 1);
        for (int k = 0; k < a.Ways; k++)
        {
            var x = a.E[set * a.Ways + k];
            if (x.Valid && x.Size == size && x.Vpn == la >> TlbArray.Shift(size) && (x.Pcid == pcid || x.Global)) return set * a.Ways + k;
        }
        return -1;
    }
}
