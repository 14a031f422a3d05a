using Emu64.Cpu;
using Emu64.Mmu;
using Cr4Bits = Emu64.Cpu.Cr4;

namespace Emu64.Tests.Mmu;

/// <summary>The TLB model driven directly: rights checked per access, D re-walks, 5-level paging, counters, probes, config.</summary>
[Trait("Category", "Mmu")]
public class TlbModelTests
{
    private const ulong P = PteFlags.Present, W = PteFlags.Write, U = PteFlags.User;

    [Fact]
    public void A_supervisor_entry_filled_by_the_kernel_faults_for_a_user_access_without_any_flush()
    {
        var rig = new MmuRig();
        rig.Map4K(0x1000_0000, 0x300000, P | W);
        Assert.Equal(0x300008UL, rig.Try(0x1000_0008, Access.Read).Pa);
        var before = rig.Mmu.Snapshot();
        var r = rig.Try(0x1000_0008, Access.Read | Access.User);
        Assert.Null(r.Pa);
        Assert.Equal(PfErr.P | PfErr.U, r.Err);
        var d = rig.Mmu.Snapshot() - before;
        Assert.Equal(1UL, d.Hits(TlbLevel.Dtlb, true, Ctr.KindRead));       // decided from the TLB entry
        Assert.Equal(0UL, d.Walks);
        Assert.Equal(1UL, d.Flushes(FlushCause.PageFault));                  // and the fault dropped it
        Assert.True(d.DroppedTlb(FlushCause.PageFault) > 0);
    }

    [Fact]
    public void Changing_WP_SMAP_AC_and_PKRU_takes_effect_on_cached_entries_at_once()
    {
        var rig = new MmuRig();
        rig.Map4K(0x2000_0000, 0x300000, P | U | (3UL << PteFlags.PkeyShift));          // read-only user page, key 3
        Assert.NotNull(rig.Try(0x2000_0000, Access.Read).Pa);                            // fill (supervisor read)
        Assert.NotNull(rig.Try(0x2000_0000, Access.Write).Pa);                           // WP=0: supervisor may write
        rig.Cpu.CR0 |= Cr0.Wp; rig.Mmu.OnModeChanged();
        Assert.Equal(PfErr.P | PfErr.W, rig.Try(0x2000_0000, Access.Write).Err);
        Assert.NotNull(rig.Try(0x2000_0000, Access.Read).Pa);
        rig.Cpu.CR4 |= Cr4Bits.Smap; rig.Mmu.OnModeChanged();
        Assert.Equal(PfErr.P, rig.Try(0x2000_0000, Access.Read).Err);                   // SMAP, AC=0
        rig.Cpu.SetFlag(RFlags.AC, true);
        Assert.NotNull(rig.Try(0x2000_0000, Access.Read).Pa);                            // AC=1 allows explicit accesses
        Assert.Equal(PfErr.P, rig.Try(0x2000_0000, Access.Read | Access.Implicit).Err); // never implicit ones
        rig.Cpu.CR4 |= Cr4Bits.Pke; rig.Cpu.Pkru = 1u << 6; rig.Mmu.OnModeChanged();    // AD for key 3
        Assert.Equal(PfErr.P | PfErr.Pk | PfErr.U, rig.Try(0x2000_0000, Access.Read | Access.User).Err);
        rig.Cpu.Pkru = 0; rig.Mmu.OnModeChanged();
        Assert.NotNull(rig.Try(0x2000_0000, Access.Read | Access.User).Pa);
    }

    [Fact]
    public void A_write_through_an_entry_filled_clean_walks_again_and_sets_D()
    {
        var rig = new MmuRig();
        ulong pte = rig.Map4K(0x3000_0000, 0x300000, P | W);
        rig.Try(0x3000_0000, Access.Read);
        Assert.Equal(PteFlags.Accessed, rig.Read(pte) & (PteFlags.Accessed | PteFlags.Dirty));
        var before = rig.Mmu.Snapshot();
        rig.Try(0x3000_0000, Access.Write);
        var d = rig.Mmu.Snapshot() - before;
        Assert.Equal(1UL, d.DirtyRewalks);
        Assert.Equal(1UL, d.Walks);
        Assert.NotEqual(0UL, rig.Read(pte) & PteFlags.Dirty);
        before = rig.Mmu.Snapshot();
        rig.Try(0x3000_0000, Access.Write);                                              // now the entry is dirty
        Assert.Equal(0UL, (rig.Mmu.Snapshot() - before).Walks);
    }

    [Fact]
    public void Five_level_paging_walks_five_levels_and_uses_the_PML5E_cache()
    {
        var rig = new MmuRig(la57: true);
        ulong la = 0xFF11_0000_0000_0000UL | 0x5000;                                     // PML5 index 0x122
        rig.Map4K(la, 0x300000, P | W);
        rig.Map4K(0xFF11_0080_0000_0000UL, 0x301000, P | W);                             // same PML5E, other PML4E
        var before = rig.Mmu.Snapshot();
        Assert.Equal(0x300000UL, rig.Try(la, Access.Read).Pa);
        Assert.Equal(5UL, (rig.Mmu.Snapshot() - before).WalkMemRefs);
        before = rig.Mmu.Snapshot();
        Assert.Equal(0x301000UL, rig.Try(0xFF11_0080_0000_0000UL, Access.Read).Pa);
        var d = rig.Mmu.Snapshot() - before;
        Assert.Equal(1UL, d.PscHits(5));
        Assert.Equal(4UL, d.WalkMemRefs);
        Assert.True(rig.Cpu.IsCanonical(0xFF00_0000_0000_0000UL));
        Assert.False(rig.Cpu.IsCanonical(0xFE00_0000_0000_0000UL));
        var trace = rig.Mmu.TraceWalk(la);
        Assert.Equal(new[] { 5, 4, 3, 2, 1 }, trace.Levels.Select(l => l.Level));
    }

    [Fact]
    public void Counters_are_split_by_user_and_kernel_and_by_fetch_read_and_write()
    {
        var rig = new MmuRig();
        rig.Map4K(0x4000_0000, 0x300000, P | W | U);
        rig.Try(0x4000_0000, Access.Fetch | Access.User);
        rig.Try(0x4000_0000, Access.Read | Access.User);
        rig.Try(0x4000_0000, Access.Read | Access.User);
        rig.Try(0x4000_0000, Access.Write);
        var s = rig.Mmu.Snapshot();
        Assert.Equal(1UL, s.Lookups(TlbLevel.Itlb, true, Ctr.KindFetch));
        Assert.Equal(1UL, s.Misses(TlbLevel.Itlb, true, Ctr.KindFetch));
        Assert.Equal(2UL, s.Lookups(TlbLevel.Dtlb, true, Ctr.KindRead));
        Assert.Equal(1UL, s.Misses(TlbLevel.Dtlb, true, Ctr.KindRead));               // the STLB had it from the fetch
        Assert.Equal(1UL, s.Hits(TlbLevel.Stlb, true, Ctr.KindRead));
        Assert.Equal(1UL, s.Hits(TlbLevel.Dtlb, true, Ctr.KindRead));
        Assert.Equal(1UL, s.Hits(TlbLevel.Dtlb, false, Ctr.KindWrite));               // a hit on a clean entry…
        Assert.Equal(1UL, s.Walk(false, Ctr.KindWrite, Ctr.DirtyRewalks));           // …that walks again to set D
        Assert.Equal(1UL, s.Walk(true, Ctr.KindFetch, Ctr.Walks));
        Assert.Equal(4UL, s.Walk(true, Ctr.KindFetch, Ctr.WalkMemRefs));
        Assert.Contains(s.Named(), kv => kv.Key == "tlb.dtlb.user.read.hits" && kv.Value == 1);
        double cycles = s.ModeledCycles(10, new CostModel());
        Assert.Equal(10 * 1.0 + 12 * 1 + 12 * s.Walks + 5 * s.WalkMemRefs, cycles);
    }

    [Fact]
    public void Probe_translations_do_not_fault_set_AD_or_count()
    {
        var rig = new MmuRig();
        ulong pte = rig.Map4K(0x5000_0000, 0x300000, P);
        var before = rig.Mmu.Snapshot();
        Assert.True(rig.Mmu.TryProbe(0x5000_0010, Access.Read, out ulong pa));
        Assert.Equal(0x300010UL, pa);
        Assert.False(rig.Mmu.TryProbe(0x5000_0010, Access.Write | Access.User, out _));
        Assert.False(rig.Mmu.TryProbe(0x6000_0000, Access.Read, out _));
        Assert.Equal(0UL, rig.Read(pte) & PteFlags.Accessed);
        var d = rig.Mmu.Snapshot() - before;
        foreach (var (key, value) in d.Named()) Assert.True(value == 0, key);
        Assert.Empty(rig.Mmu.Entries(TlbLevel.Dtlb));
    }

    [Fact]
    public void The_walk_trace_reports_each_level_and_where_the_translation_is_found()
    {
        var rig = new MmuRig();
        ulong la = 0x7000_1000;
        rig.Map4K(la, 0x300000, P | W);
        var t = rig.Mmu.TraceWalk(la);
        Assert.Equal(TranslationSource.Memory, t.FoundIn);
        Assert.Equal(new[] { "PML4E", "PDPTE", "PDE", "PTE" }, t.Levels.Select(l => l.Name));
        Assert.Equal(0x300000UL, t.Physical);
        Assert.Equal(MmuRig.EntryAddr(MmuRig.Pml4, la, 4), t.Levels[0].EntryAddress);
        rig.Try(la, Access.Read);
        Assert.Equal(TranslationSource.L1Tlb, rig.Mmu.TraceWalk(la).FoundIn);
        var views = rig.Mmu.Entries(TlbLevel.Dtlb);
        Assert.Single(views);
        Assert.Equal((la, 0x300000UL, (ushort)0, false, true), (views[0].LinearBase, views[0].PhysicalBase, views[0].Pcid, views[0].Global, views[0].Writable));
        Assert.Contains("A", rig.Mmu.TraceWalk(la).Levels[3].Flags.Split(' '));
        rig.Mmu.Invlpg(la);                                                              // drops the TLB and PCID 0's PSC entries
        Assert.Equal(TranslationSource.Memory, rig.Mmu.TraceWalk(la).FoundIn);
        rig.Try(la + 0x1000, Access.Read);                                               // not mapped: fault, nothing cached for la
        rig.Map4K(la + 0x2000, 0x301000, P);
        rig.Try(la + 0x2000, Access.Read);
        Assert.Equal(TranslationSource.PscPde, rig.Mmu.TraceWalk(la).FoundIn);
        Assert.Equal("PTE not present", rig.Mmu.TraceWalk(la + 0x1000).Problem);
    }

    [Fact]
    public void TLB_geometry_and_costs_load_from_JSON_and_from_name_value_settings()
    {
        var c = TlbConfig.FromJson("""{ "stlb": { "entries": 2048, "ways": 16 }, "cost": { "cr3Write": 150 } }""");
        Assert.Equal((2048, 16), (c.Stlb.Entries, c.Stlb.Ways));
        Assert.Equal(150, c.Cost.Cr3Write);
        Assert.Equal(64, c.Dtlb4K.Entries);                                              // defaults kept
        c.Set("dtlb4k.replacement=fifo");
        Assert.Equal(Replacement.Fifo, c.Dtlb4K.Replacement);
        Assert.Throws<FormatException>(() => c.Set("stlb.entries=1000"));               // 1000/16 is not whole
        Assert.Throws<FormatException>(() => c.Set("nosuch=1"));
        Assert.Throws<FormatException>(() => TlbConfig.FromJson("{ not json"));
        var rig = new MmuRig(TlbConfig.FromJson("""{ "dtlb4k": { "entries": 8, "ways": 2 } }"""));
        Assert.Equal((4, 2), (rig.Mmu.Arrays(TlbLevel.Dtlb)[0].Sets, rig.Mmu.Arrays(TlbLevel.Dtlb)[0].Ways));
    }

    [Fact]
    public void LRU_evicts_the_least_recently_used_way_of_a_set()
    {
        var a = new TlbArray("t", 2, 2, Replacement.Lru, 1);
        TlbEntry E(ulong vpn) => new() { Vpn = vpn, Frame = vpn << 12, Flags = EntryFlags.Make(PageSize.Size4K, false) };
        a.Fill(E(1)); a.Fill(E(2));
        Assert.True(a.Find(1UL << 12, 0, PageSize.Size4K, touch: true) >= 0);          // 1 is now the most recent
        a.Fill(E(3));
        Assert.True(a.Find(1UL << 12, 0, PageSize.Size4K, false) >= 0);
        Assert.True(a.Find(2UL << 12, 0, PageSize.Size4K, false) < 0);
        Assert.True(a.Find(3UL << 12, 0, PageSize.Size4K, false) >= 0);
    }
    [Fact]
    public void LRU_victims_match_a_reference_LRU_of_each_set_whatever_the_other_sets_do()
    {
        // 4 sets of 3 ways, pages chosen so that uses in one set interleave with uses in the others: every fill's victim and
        // every lookup's result must be what a plain most-recently-used list per set gives (each set has a clock of its own)
        const int sets = 4, ways = 3;
        var a = new TlbArray("t", sets * ways, ways, Replacement.Lru, 1);
        var lists = Enumerable.Range(0, sets).Select(_ => new List<ulong>()).ToArray();   // per set, most recent first
        TlbEntry E(ulong vpn) => new() { Vpn = vpn, Frame = vpn << 12, Flags = EntryFlags.Make(PageSize.Size4K, false) };
        var rng = new Random(1234);
        int evictions = 0, hits = 0;
        for (int step = 0; step < 20_000; step++)
        {
            ulong vpn = (ulong)rng.Next(0, 6 * sets);   // six pages per set for three ways
            var list = lists[(int)(vpn % sets)];
            bool found = a.Find(vpn << 12, 0, PageSize.Size4K, touch: true) >= 0;
            Assert.Equal(list.Contains(vpn), found);
            if (found) { hits++; list.Remove(vpn); list.Insert(0, vpn); continue; }
            var replaced = a.Fill(E(vpn));
            if (list.Count == ways)
            {
                evictions++;
                Assert.True(replaced.Valid);
                Assert.Equal(list[^1], replaced.Vpn);   // the least recently used page of this set
                list.RemoveAt(ways - 1);
            }
            else Assert.False(replaced.Valid);
            list.Insert(0, vpn);
        }
        Assert.True(evictions > 5000 && hits > 5000, $"{evictions} evictions, {hits} hits");
    }
}
