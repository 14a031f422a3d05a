using Emu64.Mmu;

namespace Emu64.Tests.Mmu;

/// <summary>
/// The STLB's miss path chooses the way a walk's 4 KiB entry will overwrite while its lookup scans the set
/// (TlbArray.FindOrChoose) and writes there after the walk (ChosenWay, WriteWay) instead of scanning again in Fill. The two must leave
/// exactly what a lookup and a Fill leave: every entry, stamp and the clock, for each replacement policy, with free ways,
/// global entries and other PCIDs in the sets.
/// </summary>
[Trait("Category", "Mmu")]
public class TlbFillChoiceTests
{
    [Theory]
    [InlineData(Replacement.Lru)]
    [InlineData(Replacement.Fifo)]
    [InlineData(Replacement.Random)]
    public void Choosing_the_way_during_the_lookup_fills_as_Fill_does(Replacement policy)
    {
        var chosen = new TlbArray("stlb", 48, 12, policy, 1 << (int)PageSize.Size4K | 1 << (int)PageSize.Size2M);
        var plain = new TlbArray("stlb", 48, 12, policy, 1 << (int)PageSize.Size4K | 1 << (int)PageSize.Size2M);
        var rng = new Random(19);
        int misses = 0;
        for (int step = 0; step < 20000; step++)
        {
            ulong la = (ulong)rng.Next(0, 160) << 12;   // 160 pages over 4 sets of 12 ways: hits, misses, evictions
            ushort pcid = (ushort)rng.Next(0, 3);
            if (rng.Next(0, 50) == 0)
            {
                // an invalidation now and then leaves free ways in the middle of sets
                chosen.Invalidate(TlbArray.Select.Page, pcid, la, pageGlobalsToo: true);
                plain.Invalidate(TlbArray.Select.Page, pcid, la, pageGlobalsToo: true);
                continue;
            }
            int a = chosen.FindOrChoose(la, pcid, PageSize.Size4K, out int free, out int oldest);
            int b = plain.Find(la, pcid, PageSize.Size4K, touch: true);
            Assert.Equal(b, a);
            if (a < 0)
            {
                misses++;
                bool global = rng.Next(0, 8) == 0;
                var e = new TlbEntry
                {
                    Vpn = la >> 12, Frame = (ulong)step << 12, Pcid = pcid, Rights = Rights.W,
                    Flags = EntryFlags.Make(PageSize.Size4K, global),
                };
                int wx = chosen.ChosenWay(e.Vpn, free, oldest);
                var x = chosen.E[wx];
                chosen.WriteWay(wx, in e);
                var y = plain.Fill(e, out int wy);
                Assert.Equal(wy, wx);
                Assert.Equal(y, x);
            }
            Assert.Equal(plain.LruSets.Select(s => s.Clock), chosen.LruSets.Select(s => s.Clock));
            Assert.Equal(plain.E, chosen.E);
        }
        Assert.True(misses > 1000, $"only {misses} misses");
    }

    /// <summary>
    /// A large associative array (the STLB: 12 ways) answers a 4 KiB lookup of a page none of its 4 KiB entries has without reading
    /// the set: from its count of entries by page number, the set's valid ways and their recency order (TlbArray.TracksOrder). That
    /// answer — no match, the first free way, and when none is free the least recent way — must be the scan's, whatever happened to
    /// the set: fills at 4 KiB and 2 MiB, global entries, other PCIDs, pages whose numbers share a count (2^14 pages apart), hits,
    /// and each kind of invalidation.
    /// </summary>
    [Theory]
    [InlineData(Replacement.Lru)]
    [InlineData(Replacement.Fifo)]
    public void A_lookup_that_reads_no_entry_answers_what_a_scan_of_the_set_answers(Replacement policy)
    {
        var t = new TlbArray("stlb", 96, 12, policy, 1 << (int)PageSize.Size4K | 1 << (int)PageSize.Size2M);
        Assert.True(t.TracksOrder);
        var rng = new Random(23);
        int shortcuts = 0, compared = 0;
        for (int step = 0; step < 40000; step++)
        {
            // 120 pages, each also 2^14 and 2^15 pages on (the same count bucket, the same set)
            ulong la = ((ulong)rng.Next(0, 120) + ((ulong)rng.Next(0, 3) << 14)) << 12;
            ushort pcid = (ushort)rng.Next(0, 3);
            int op = rng.Next(0, 200);
            if (op < 4)
            {
                var what = (TlbArray.Select)rng.Next(0, 4);
                t.Invalidate(what, pcid, la, pageGlobalsToo: rng.Next(0, 2) == 0);
                continue;
            }
            if (op < 20)
            {
                // a 2 MiB entry in the shared array
                t.Fill(new TlbEntry { Vpn = la >> 21, Frame = (ulong)step << 21, Pcid = pcid, Flags = EntryFlags.Make(PageSize.Size2M, op < 6) });
                continue;
            }
            int set = (int)(la >> 12) % t.Sets, b = set * t.Ways;
            bool anyOfPage = Enumerable.Range(b, t.Ways).Any(w => t.E[w].Valid && t.E[w].Size == PageSize.Size4K && t.E[w].Vpn == la >> 12);
            int a = t.FindOrChoose(la, pcid, PageSize.Size4K, out int free, out int oldest);
            int s = t.ScanOrChoose(la, pcid, PageSize.Size4K, out int free2, out int oldest2);   // (a hit's second touch changes nothing)
            Assert.Equal(s, a);
            compared++;
            if (a >= 0) continue;
            if (!anyOfPage) shortcuts++;
            Assert.Equal(free2, free);
            if (free < 0) Assert.Equal(oldest2, oldest);
            var e = new TlbEntry
            {
                Vpn = la >> 12, Frame = (ulong)step << 12, Pcid = pcid, Rights = Rights.W,
                Flags = EntryFlags.Make(PageSize.Size4K, rng.Next(0, 10) == 0),
            };
            t.WriteWay(t.ChosenWay(e.Vpn, free, oldest), in e);
        }
        Assert.True(shortcuts > 5000, $"only {shortcuts} of {compared} lookups could skip the set");
    }
}
