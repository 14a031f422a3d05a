using Emu64.Mmu;
using Emu64.Tests.Support;
using static Emu64.Tests.Mmu.Guest;
using static Iced.Intel.AssemblerRegisters;
using Cr4Bits = Emu64.Cpu.Cr4;

namespace Emu64.Tests.Mmu;

/// <summary>TLB behaviour observable from guest code (SDM vol. 3A §4.10).</summary>
[Trait("Category", "Mmu")]
[Trait("Category", "Guest")]
public class TlbSemanticsTests
{
    [Fact]
    public void A_stale_translation_is_used_after_a_PTE_change_until_INVLPG()
    {
        var (r, _) = Guest.Run(a =>
        {
            Show(a, X);
            Remap(a, X, FrameNew);
            Show(a, X);                     // no INVLPG: the TLB still holds the old frame
            a.invlpg(__[X]);
            Show(a, X);
        });
        Assert.Equal(Hex(ValX) + Hex(ValX) + Hex(ValNew), r.Console);
    }

    [Fact]
    public void CR3_writes_with_NOFLUSH_keep_each_PCIDs_entries_and_the_hit_counters_show_it()
    {
        var (r, regions) = Guest.Run(a =>
        {
            SetCr4(a, Cr4Bits.Pcide);
            Cr3(a, 1);                      // body write 1: PCID 1, flushing
            Touch(a, X);
            Cr3(a, 2, noFlush: true);       // body write 2
            Touch(a, X);
            Cr3(a, 1, noFlush: true);       // body write 3
            Touch(a, X);
        });
        var pcid1 = regions.AfterBodyWrite(1);
        var pcid2 = regions.AfterBodyWrite(2);
        var back = regions.AfterBodyWrite(3);
        Assert.Equal(1UL, pcid1.Walk(false, Ctr.KindRead, Ctr.Walks));          // first touch of X in PCID 1 walks
        Assert.Equal(1UL, pcid2.Walk(false, Ctr.KindRead, Ctr.Walks));          // PCID 2 cannot use PCID 1's entry
        Assert.Equal(0UL, back.Walks);                                          // back in PCID 1: no walk at all
        Assert.Equal(1UL, back.Hits(TlbLevel.Dtlb, false, Ctr.KindRead));       // the read hit PCID 1's dTLB entry
        Assert.Equal(0UL, back.Misses(TlbLevel.Dtlb, false, Ctr.KindRead));
        Assert.True(regions.BodyWrite(3).NoFlush);
        Assert.Equal(0, regions.BodyWrite(3).Dropped);
        Assert.Equal(0UL, r.Machine.Cpu.CR3 >> 63);                             // bit 63 is never stored
        Assert.Equal(2UL, r.Machine.Cpu.Mmu.Snapshot().Flushes(FlushCause.Cr3NoFlush));
    }

    [Fact]
    public void A_CR3_write_without_NOFLUSH_drops_the_new_PCIDs_entries()
    {
        var (r, regions) = Guest.Run(a =>
        {
            SetCr4(a, Cr4Bits.Pcide);
            Cr3(a, 1);
            Touch(a, X);
            Cr3(a, 2, noFlush: true);
            Cr3(a, 1);                      // body write 3: flushes PCID 1
            Touch(a, X);
        });
        var back = regions.AfterBodyWrite(3);
        Assert.True(regions.BodyWrite(3).Dropped > 0);
        Assert.Equal(1UL, back.Walk(false, Ctr.KindRead, Ctr.Walks));
        Assert.Equal(0UL, back.Hits(TlbLevel.Dtlb, false, Ctr.KindRead));
        Assert.Equal(3UL, r.Machine.Cpu.Mmu.Snapshot().Flushes(FlushCause.Cr3));   // the stub's, write 1, write 3
    }

    [Theory]
    [InlineData("pge-toggle")]
    [InlineData("invpcid2")]
    public void Global_entries_survive_CR3_writes_and_die_on_a_PGE_toggle_or_INVPCID_type_2(string how)
    {
        var (r, _) = Guest.Run(a =>
        {
            SetCr4(a, Cr4Bits.Pge);
            Touch(a, G);
            Touch(a, X);
            Remap(a, G, FrameNew, global: true);
            Remap(a, X, FrameNew);
            Cr3(a, 0);                      // PCIDE=0: flushes PCID 0's non-global entries only
            Show(a, G);                     // still the old frame: the global entry survived
            Show(a, X);                     // the non-global entry did not
            if (how == "pge-toggle") { SetCr4(a, 0, Cr4Bits.Pge); SetCr4(a, Cr4Bits.Pge); }
            else Invpcid(a, 2, 0, 0);
            Show(a, G);
        });
        Assert.Equal(Hex(ValG) + Hex(ValNew) + Hex(ValNew), r.Console);
    }

    /// <summary>
    /// Entries in PCID 1 for X and Y, in PCID 2 for X, and a global G; every PTE then points at the new
    /// frame, INVPCID runs in PCID 2, and the guest reads X and G in PCID 2, then X and Y in PCID 1.
    /// </summary>
    [Theory]
    [InlineData(0, "old old new old")]   // one address (X) in PCID 1, not globals
    [InlineData(1, "old old new new")]   // all of PCID 1, not globals
    [InlineData(2, "new new new new")]   // everything including globals
    [InlineData(3, "new old new new")]   // everything except globals
    public void Each_INVPCID_type_drops_exactly_what_the_SDM_says(int type, string expected)
    {
        var (r, _) = Guest.Run(a =>
        {
            SetCr4(a, Cr4Bits.Pge | Cr4Bits.Pcide);
            Cr3(a, 1);
            Touch(a, X); Touch(a, Y); Touch(a, G);
            Cr3(a, 2, noFlush: true);
            Touch(a, X);
            Remap(a, X, FrameNew); Remap(a, Y, FrameNew); Remap(a, G, FrameNew, global: true);
            Invpcid(a, type, 1, X);
            Show(a, X); Show(a, G);
            Cr3(a, 1, noFlush: true);
            Show(a, X); Show(a, Y);
        });
        var old = new[] { ValX, ValG, ValX, ValY };
        var words = expected.Split(' ');
        string want = "";
        for (int k = 0; k < 4; k++) want += Hex(words[k] == "new" ? ValNew : old[k]);
        Assert.Equal(want, r.Console);
    }

    [Fact]
    public void INVLPG_drops_global_entries_for_that_page_in_every_PCID_but_other_PCIDs_entries_stay()
    {
        var (r, _) = Guest.Run(a =>
        {
            SetCr4(a, Cr4Bits.Pge | Cr4Bits.Pcide);
            Cr3(a, 1);
            Touch(a, G); Touch(a, X);
            Cr3(a, 2, noFlush: true);
            Remap(a, G, FrameNew, global: true);
            Remap(a, X, FrameNew);
            a.invlpg(__[G]);
            a.invlpg(__[X]);                // PCID 2 has no entry for X; PCID 1's stays
            Cr3(a, 1, noFlush: true);
            Show(a, G);
            Show(a, X);
        });
        Assert.Equal(Hex(ValNew) + Hex(ValX), r.Console);
    }

    [Fact]
    public void INVLPG_drops_paging_structure_cache_entries_of_the_current_PCID_only()
    {
        var (_, regions) = Guest.Run(a =>
        {
            SetCr4(a, Cr4Bits.Pcide);
            Cr3(a, 1);
            Touch(a, X);                    // fills PCID 1's paging-structure caches for the region
            Cr3(a, 2, noFlush: true);       // body write 2
            Touch(a, X);                    // and PCID 2's
            a.invlpg(__[Z]);                // drops all of PCID 2's paging-structure-cache entries
            Touch(a, Y);                    // a full walk from CR3
            Cr3(a, 1, noFlush: true);       // body write 3
            Touch(a, Y);                    // PCID 1's PDE cache entry skips to the PTE
        });
        var inPcid2 = regions.AfterBodyWrite(2);
        var inPcid1 = regions.AfterBodyWrite(3);
        // In PCID 2: X walks from the PML4E cached by the first fetch in PCID 2 (3 reads); after INVLPG,
        // Y walks from CR3 (4 reads).
        Assert.Equal(2UL, inPcid2.Walk(false, Ctr.KindRead, Ctr.Walks));
        Assert.Equal(3UL + 4UL, inPcid2.Walk(false, Ctr.KindRead, Ctr.WalkMemRefs));
        Assert.Equal(1UL, inPcid1.Walks);
        Assert.Equal(1UL, inPcid1.WalkMemRefs);
        Assert.Equal(1UL, inPcid1.PscHits(2));
    }
}
