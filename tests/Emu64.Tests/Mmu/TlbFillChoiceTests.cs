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
}
