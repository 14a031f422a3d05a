using Emu64.Mmu;

namespace Emu64.Tests.Mmu;

/// <summary>
/// A paging-structure cache remembers the way its last lookup found (TlbArray.FindKey's hint) and tries it before scanning.
/// That is exact only because at most one entry matches a key and PCID, and only if the hint is checked like any other way:
/// a way that was invalidated, refilled with another key or holds another PCID's entry must not answer, and a hit through
/// the hint must refresh LRU exactly as the scan's hit does.
/// </summary>
[Trait("Category", "Mmu")]
public class PscKeyHintTests
{
    private const int PdeShift = 21;

    private static TlbArray Pde(int entries, int ways) => new("psc_pde", entries, ways, Replacement.Lru, 0, PdeShift);

    private static void Fill(TlbArray a, ulong la, ushort pcid, ulong table)
        => a.Fill(new TlbEntry { Vpn = la >> PdeShift, Frame = table, Pcid = pcid, Rights = Rights.W | Rights.U, Flags = EntryFlags.Valid });

    [Fact]
    public void A_hinted_way_that_was_invalidated_misses()
    {
        var a = Pde(32, 32);
        const ulong la = 0x4020_0000;
        Fill(a, la, 1, 0x5000);
        Assert.True(a.FindKey(la, 1, touch: true) >= 0);   // the hint now points at the entry
        Assert.Equal(1, a.Invalidate(TlbArray.Select.Page, 1, la));
        Assert.Equal(-1, a.FindKey(la, 1, touch: true));
    }

    [Fact]
    public void A_hinted_way_refilled_with_another_key_does_not_answer_for_the_old_key()
    {
        var a = Pde(1, 1);
        const ulong x = 0x4020_0000, y = 0x4060_0000;
        Fill(a, x, 1, 0x5000);
        Assert.Equal(0, a.FindKey(x, 1, touch: true));
        Fill(a, y, 1, 0x6000);                              // the only way now holds y
        Assert.Equal(-1, a.FindKey(x, 1, touch: true));
        Assert.Equal(0, a.FindKey(y, 1, touch: true));
        Assert.Equal(0x6000UL, a.E[0].Frame);
    }

    [Fact]
    public void A_hinted_way_does_not_answer_for_another_PCID()
    {
        var a = Pde(32, 32);
        const ulong la = 0x4020_0000;
        Fill(a, la, 1, 0x5000);
        Assert.True(a.FindKey(la, 1, touch: true) >= 0);
        Assert.Equal(-1, a.FindKey(la, 2, touch: true));
        Fill(a, la, 2, 0x7000);
        int w = a.FindKey(la, 2, touch: true);
        Assert.Equal(0x7000UL, a.E[w].Frame);
        Assert.Equal(0x5000UL, a.E[a.FindKey(la, 1, touch: true)].Frame);
    }

    [Fact]
    public void A_hit_through_the_hint_makes_the_entry_the_most_recent_use_as_the_scan_does()
    {
        var a = Pde(2, 2);
        const ulong x = 0x4020_0000, y = 0x4060_0000, z = 0x40A0_0000;
        Fill(a, x, 1, 0x5000);                              // way 0
        Fill(a, y, 1, 0x6000);                              // way 1
        Assert.Equal(1, a.FindKey(y, 1, touch: true));      // through the scan
        Assert.Equal(0, a.FindKey(x, 1, touch: true));      // through the scan: the hint now points at x
        Fill(a, y, 1, 0x6000);                              // refills y's way in place: y is the most recent use, the hint stays
        Assert.Equal(0, a.FindKey(x, 1, touch: true));      // through the hint: x must become the most recent use
        Fill(a, z, 1, 0x8000);                              // so the LRU victim is y
        Assert.True(a.FindKey(x, 1, touch: false) >= 0);
        Assert.Equal(-1, a.FindKey(y, 1, touch: false));
    }

    [Fact]
    public void A_lookup_without_touch_through_the_hint_changes_no_stamp()
    {
        var a = Pde(2, 2);
        const ulong x = 0x4020_0000, y = 0x4060_0000;
        Fill(a, x, 1, 0x5000);
        Fill(a, y, 1, 0x6000);
        a.FindKey(x, 1, touch: true);
        a.FindKey(y, 1, touch: true);
        var stamps = a.E.Select(e => e.Stamp).ToArray();
        a.FindKey(y, 1, touch: false);                      // the hint (y)
        a.FindKey(x, 1, touch: false);                      // the scan
        a.FindKey(x, 1, touch: false);                      // the hint (x)
        Assert.Equal(stamps, a.E.Select(e => e.Stamp).ToArray());
    }
}
