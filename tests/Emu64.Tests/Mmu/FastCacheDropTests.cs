using Emu64.Cpu;
using Emu64.Mmu;
using Cr4Bits = Emu64.Cpu.Cr4;

namespace Emu64.Tests.Mmu;

/// <summary>
/// An L1 fill drops only the fast-cache entries it can change (Mmu/FastCache.cs, <c>DropFilled</c>): the entries that point
/// at the way it overwrites and the entries for the page it writes. Each case runs the same accesses on two rigs, one with the
/// fast cache and one where every access takes the model's own lookup, and checks the answer, every counter and every
/// array's entries and LRU stamps after each access, plus the count the model gives for the access that matters. A drop
/// that forgets a case leaves a fast entry live that the model would not hit, and the counts part.
/// </summary>
[Trait("Category", "Mmu")]
public class FastCacheDropTests
{
    private const ulong P = PteFlags.Present | PteFlags.Write, U = PteFlags.User, G = PteFlags.Global;

    /// <summary>Two rigs built alike: <see cref="Fast"/> with the fast cache, <see cref="Model"/> without it.</summary>
    private sealed class Twin
    {
        public readonly MmuRig Fast, Model;

        public Twin(Func<TlbConfig> config)
        {
            Fast = new MmuRig(config());
            Model = new MmuRig(config());
            Model.Mmu.FastCacheDisabled = true;
        }

        public void Both(Action<MmuRig> a) { a(Fast); a(Model); }

        /// <summary>The same access on both; the answers, counters and arrays must agree. Returns the fast rig's counter change.</summary>
        public TlbStats Access(ulong la, Access acc, ulong? expectPa = null)
        {
            var before = Fast.Mmu.Snapshot();
            var a = Fast.Try(la, acc);
            var b = Model.Try(la, acc);
            Assert.Equal(b, a);
            if (expectPa is { } pa) Assert.Equal(pa, a.Pa);
            AssertSame();
            return Fast.Mmu.Snapshot() - before;
        }

        /// <summary>Switches both to a CR3 (PCID in bits 11:0) as a NOFLUSH write would, without counting it.</summary>
        public void Cr3(ulong cr3) => Both(r => r.Cpu.CR3 = cr3);

        public void AssertSame()
        {
            var a = Fast.Mmu.Snapshot();
            var b = Model.Mmu.Snapshot();
            for (int i = 0; i < Ctr.Count; i++) Assert.True(a[i] == b[i], $"counter {i}: fast cache {a[i]}, model only {b[i]}");
            foreach (var level in new[] { TlbLevel.Itlb, TlbLevel.Dtlb, TlbLevel.Stlb })
            {
                var x = Fast.Mmu.Arrays(level);
                var y = Model.Mmu.Arrays(level);
                for (int k = 0; k < x.Count; k++) Assert.Equal(y[k].E, x[k].E);
            }
        }
    }

    private static TlbConfig With(Action<TlbConfig> set) { var c = new TlbConfig(); set(c); return c; }

    [Fact]
    public void A_fast_entry_whose_way_a_fill_overwrote_misses_as_the_model_does()
    {
        var t = new Twin(() => With(c => c.Dtlb4K = new ArrayConfig(1, 1)));
        const ulong a = 0x1000_0000, b = 0x1000_1000;
        t.Both(r => { r.Map4K(a, 0x300000, P); r.Map4K(b, 0x301000, P); });
        t.Access(a, Access.Read);
        ulong fills = t.Fast.Mmu.FastFills;
        Assert.Equal(1UL, t.Access(a, Access.Read).Hits(TlbLevel.Dtlb, false, Ctr.KindRead));
        Assert.Equal(fills, t.Fast.Mmu.FastFills);                                   // that hit came from the fast cache
        t.Access(b, Access.Read);                                                     // the one way now holds b
        var d = t.Access(a, Access.Read, 0x300000);
        Assert.Equal(1UL, d.Misses(TlbLevel.Dtlb, false, Ctr.KindRead));
        Assert.Equal(1UL, d.Hits(TlbLevel.Stlb, false, Ctr.KindRead));
    }

    [Fact]
    public void A_write_that_hits_an_STLB_entry_filled_with_D_clear_walks_again_to_set_D()
    {
        // The STLB-hit path enters the fast cache at the L1 way it refilled only when the entry allows the access outright;
        // a write through an entry with D = 0 must still re-walk (SDM §4.8) and set D in memory.
        var t = new Twin(() => With(c => c.Dtlb4K = new ArrayConfig(1, 1)));
        const ulong a = 0x1000_0000, b = 0x1000_1000;
        ulong pte = 0;
        t.Both(r => { pte = r.Map4K(a, 0x300000, P); r.Map4K(b, 0x301000, P); });
        t.Access(a, Access.Read);                                                     // fills the STLB and L1 with D = 0
        t.Access(b, Access.Read);                                                     // evicts a from L1; the STLB keeps it
        var d = t.Access(a, Access.Write, 0x300000);
        Assert.Equal(1UL, d.Hits(TlbLevel.Stlb, false, Ctr.KindWrite));
        Assert.Equal(1UL, d.DirtyRewalks);
        t.Both(r => Assert.NotEqual(0UL, r.Read(pte) & PteFlags.Dirty));
        Assert.Equal(0UL, t.Access(a, Access.Write, 0x300000).DirtyRewalks);          // D is in the entry now
    }

    [Fact]
    public void A_user_access_that_hits_a_supervisor_STLB_entry_faults_from_the_entry()
    {
        var t = new Twin(() => With(c => c.Dtlb4K = new ArrayConfig(1, 1)));
        const ulong a = 0x1000_0000, b = 0x1000_1000;
        t.Both(r => { r.Map4K(a, 0x300000, P); r.Map4K(b, 0x301000, P | U); });
        t.Access(a, Access.Read);                                                     // a supervisor read fills the STLB
        t.Access(b, Access.Read | Access.User);                                       // evicts a from L1
        var before = t.Fast.Mmu.Snapshot();
        var results = new List<(ulong? Pa, uint Err, ulong Cr2)>();
        t.Both(r => results.Add(r.Try(a, Access.Read | Access.User)));              // an STLB hit whose rights forbid it
        var d = t.Fast.Mmu.Snapshot() - before;
        Assert.Equal(1UL, d.Hits(TlbLevel.Stlb, true, Ctr.KindRead));
        foreach (var x in results)
        {
            Assert.Null(x.Pa);
            Assert.Equal(PfErr.P | PfErr.U, x.Err);
        }
        t.AssertSame();
    }

    [Fact]
    public void Read_and_write_entries_of_every_CPL_for_an_evicted_page_all_miss()
    {
        var t = new Twin(() => With(c => c.Dtlb4K = new ArrayConfig(1, 1)));
        const ulong a = 0x1000_0000, b = 0x1000_1000;
        t.Both(r => { r.Map4K(a, 0x300000, P | U | PteFlags.Dirty); r.Map4K(b, 0x301000, P | U); });
        foreach (var acc in new[] { Access.Read, Access.Write, Access.Read | Access.User, Access.Write | Access.User }) t.Access(a, acc);
        t.Access(b, Access.Read);
        foreach (var acc in new[] { Access.Read, Access.Write, Access.Read | Access.User, Access.Write | Access.User })
        {
            var d = t.Access(a, acc);
            Assert.Equal(1UL, d.TotalMisses(TlbLevel.Dtlb));
            t.Access(b, Access.Read);                                                 // evict a again
        }
    }

    [Fact]
    public void A_global_4K_entry_filled_in_another_PCID_is_found_before_the_2M_entry_a_fast_entry_remembered()
    {
        // PCID 1 maps the page inside a 2 MiB page; PCID 2's tables map it as a global 4 KiB page elsewhere. Once the global
        // entry is in the dTLB's 4 KiB array, a lookup in PCID 1 finds it first (4 KiB before 2 MiB; a global entry serves
        // every PCID, SDM vol. 3A §4.10.2.4), so the fast entry that pointed at the 2 MiB entry must go.
        var t = new Twin(() => new TlbConfig());
        const ulong la = 0x4000_5000;
        ulong pml4b = 0;
        t.Both(r =>
        {
            r.Map(la, 0x400000, 2, P);                                                // 2 MiB page at 0x400000 (PCID 1's tables)
            pml4b = r.NewTable();
            r.Map(la, 0x600000, 1, P | G, pml4b);                                     // global 4 KiB page (PCID 2's tables)
            r.Cpu.CR4 |= Cr4Bits.Pge | Cr4Bits.Pcide;
            r.Cpu.CR3 = MmuRig.Pml4 | 1;
        });
        t.Access(la, Access.Read, 0x405000);
        t.Access(la, Access.Read, 0x405000);
        t.Cr3(pml4b | 2);
        t.Access(la, Access.Read, 0x600000);                                          // walk: the global 4 KiB entry
        t.Cr3(MmuRig.Pml4 | 1);
        var d = t.Access(la, Access.Read, 0x600000);                                  // the model's lookup finds the global entry
        Assert.Equal(1UL, d.Hits(TlbLevel.Dtlb, false, Ctr.KindRead));
        Assert.Equal(0UL, d.Walks);
    }

    [Fact]
    public void Evicting_a_2M_entry_drops_the_fast_entries_of_every_4K_page_inside_it()
    {
        var t = new Twin(() => With(c => c.Dtlb2M = new ArrayConfig(1, 1)));
        const ulong r1 = 0x4000_0000, r2 = 0x4020_0000;
        t.Both(r => { r.Map(r1, 0x400000, 2, P); r.Map(r2, 0x600000, 2, P); });
        t.Access(r1 + 0x3000, Access.Read);
        t.Access(r1 + 0x7000, Access.Read);                                           // a second 4 KiB page, same 2 MiB entry
        t.Access(r1 + 0x7000, Access.Read);
        t.Access(r2, Access.Read);                                                    // evicts r1's entry
        foreach (ulong off in new ulong[] { 0x3000, 0x7000 })
        {
            var d = t.Access(r1 + off, Access.Read, 0x400000 + off);
            Assert.Equal(1UL, d.Misses(TlbLevel.Dtlb, false, Ctr.KindRead));
            t.Access(r2, Access.Read);
        }
    }

    [Fact]
    public void A_fill_that_replaces_a_4K_entry_with_a_2M_one_drops_the_4K_pages_fast_entry()
    {
        // The victim of a 4 KiB fill in one array and a fill of a 2 MiB entry in another (the same page remapped large after an
        // INVLPG-less change and an eviction): the lookup order 4 KiB, 2 MiB decides, and both rigs must agree throughout.
        var t = new Twin(() => With(c => { c.Dtlb4K = new ArrayConfig(1, 1); c.Stlb = new ArrayConfig(2, 1); c.PagingStructureCaches = false; }));
        const ulong la = 0x4000_3000, other = 0x5000_1000;                            // other: the same STLB set as la
        t.Both(r => { r.Map4K(la, 0x300000, P); r.Map4K(other, 0x301000, P); });
        t.Access(la, Access.Read, 0x300000);
        t.Access(la, Access.Read, 0x300000);
        t.Both(r => r.Map(la, 0x800000, 2, P));                                        // the page tables now say 2 MiB (no flush)
        t.Access(la, Access.Read, 0x300000);                                          // stale 4 KiB entry still answers
        t.Access(other, Access.Read);                                                 // evicts it from the 4 KiB array and the STLB
        var d = t.Access(la, Access.Read, 0x803000);                                  // now a walk finds the 2 MiB page
        Assert.Equal(1UL, d.Walks);
        t.Access(la + 0x1000, Access.Read, 0x804000);
    }

    [Fact]
    public void The_evicted_entrys_own_PCID_is_dropped_not_the_current_one()
    {
        var t = new Twin(() => With(c => c.Dtlb4K = new ArrayConfig(1, 1)));
        const ulong a = 0x1000_0000, b = 0x1000_1000;
        t.Both(r =>
        {
            r.Map4K(a, 0x300000, P); r.Map4K(b, 0x301000, P);
            r.Cpu.CR4 |= Cr4Bits.Pcide;
            r.Cpu.CR3 = MmuRig.Pml4 | 2;
        });
        t.Access(a, Access.Read);
        t.Access(a, Access.Read);
        t.Cr3(MmuRig.Pml4 | 1);
        t.Access(b, Access.Read);                                                     // fills in PCID 1 over a's PCID-2 entry
        t.Cr3(MmuRig.Pml4 | 2);
        Assert.Equal(1UL, t.Access(a, Access.Read).Misses(TlbLevel.Dtlb, false, Ctr.KindRead));
    }

    [Theory]
    [InlineData(2)]
    [InlineData(8)]
    [InlineData(9)]    // more PCIDs than the fast cache lists: the eviction advances the epoch
    public void Evicting_a_global_entry_drops_its_fast_entries_in_every_PCID(int pcids)
    {
        var t = new Twin(() => With(c => c.Dtlb4K = new ArrayConfig(1, 1)));
        const ulong g = 0x1000_0000, b = 0x1000_1000;
        t.Both(r =>
        {
            r.Map4K(g, 0x300000, P | G); r.Map4K(b, 0x301000, P);
            r.Cpu.CR4 |= Cr4Bits.Pge | Cr4Bits.Pcide;
        });
        for (int p = 1; p <= pcids; p++)
        {
            t.Cr3(MmuRig.Pml4 | (ulong)p);
            t.Access(g, Access.Read);                                                 // PCID 1 fills; the others hit the global entry
            Assert.Equal(1UL, t.Access(g, Access.Read).Hits(TlbLevel.Dtlb, false, Ctr.KindRead));
        }
        t.Access(b, Access.Read);                                                     // evicts the global entry
        for (int p = 1; p <= pcids; p++)
        {
            t.Cr3(MmuRig.Pml4 | (ulong)p);
            Assert.Equal(1UL, t.Access(g, Access.Read).Misses(TlbLevel.Dtlb, false, Ctr.KindRead));
            t.Access(b, Access.Read);
        }
    }

    [Fact]
    public void A_global_entry_filled_over_a_lower_way_is_found_first_by_other_PCIDs()
    {
        // One set of two ways. PCID 1 has the page non-global in way 1; a global entry for it is filled into way 0 (freed by an
        // INVLPG of another page); the model's lookup in PCID 1 now finds way 0 first.
        var t = new Twin(() => With(c => c.Dtlb4K = new ArrayConfig(2, 2)));
        const ulong la = 0x1000_0000, x = 0x2000_0000;
        ulong pml4b = 0;
        t.Both(r =>
        {
            r.Map4K(x, 0x200000, P); r.Map4K(la, 0x300000, P);
            pml4b = r.NewTable();
            r.Map(la, 0x500000, 1, P | G, pml4b);
            r.Cpu.CR4 |= Cr4Bits.Pge | Cr4Bits.Pcide;
            r.Cpu.CR3 = MmuRig.Pml4 | 1;
        });
        t.Access(x, Access.Read);                                                     // way 0
        t.Access(la, Access.Read, 0x300000);                                          // way 1
        t.Access(la, Access.Read, 0x300000);
        t.Both(r => r.Mmu.Invlpg(x));                                                 // frees way 0 (and advances the epoch)
        t.Access(la, Access.Read, 0x300000);                                          // a fast entry again, for way 1
        t.Cr3(pml4b | 2);
        t.Access(la, Access.Read, 0x500000);                                          // global entry into way 0
        t.Cr3(MmuRig.Pml4 | 1);
        Assert.Equal(1UL, t.Access(la, Access.Read, 0x500000).Hits(TlbLevel.Dtlb, false, Ctr.KindRead));
    }

    [Fact]
    public void A_data_miss_leaves_the_armed_fetch_armed_and_the_counts_come_out_as_separate_fetches()
    {
        // The run loop arms the fast entry of the code page and counts further fetches from it as pending hits. A store that
        // misses every TLB (walk, STLB and dTLB fills) touches no iTLB entry, so it leaves the fetch armed; the pending hits are
        // counted later, and every counter and LRU stamp is what fetching one by one in the same order gives.
        var t = new Twin(() => With(c => { c.Itlb4K = new ArrayConfig(2, 2); c.Dtlb4K = new ArrayConfig(1, 1); }));
        const ulong c1 = 0x7000_0000, c2 = 0x7000_1000, c3 = 0x7000_2000, d1 = 0x1000_0000, d2 = 0x1000_1000;
        t.Both(r =>
        {
            foreach (var (la, pa) in new[] { (c1, 0x300000UL), (c2, 0x301000UL), (c3, 0x302000UL), (d1, 0x400000UL), (d2, 0x401000UL) })
                r.Map4K(la, pa, P);
        });
        var fast = t.Fast.Mmu;
        var model = t.Model.Mmu;
        void Fetch(ulong la, int times)
        {
            fast.TranslateAndArm(la, Access.Fetch);
            Assert.True(fast._fetchSlot >= 0, "the fetch entry is armed");
            fast._fetchPending += (ulong)(times - 1);
            for (int k = 0; k < times; k++) model.Translate(la, Access.Fetch);
        }
        void Data(ulong la)
        {
            fast.Translate(la, Access.Write);
            model.Translate(la, Access.Write);
        }
        Fetch(c1, 3);
        Fetch(c2, 2);
        Data(d1);
        Data(d2);                                                                     // a dTLB eviction
        Assert.True(fast._fetchSlot >= 0 && fast._fetchPage == c2 >> 12, "a data miss left the fetch armed");
        fast._fetchPending += 4;                                                      // c2 again, four times
        for (int k = 0; k < 4; k++) model.Translate(c2, Access.Fetch);
        Fetch(c1, 1);                                                                 // c1 now more recent than c2
        Fetch(c3, 2);                                                                 // evicts c2 (least recently used)
        Fetch(c2, 1);                                                                 // a miss: evicts c1
        t.AssertSame();
        var s = fast.Snapshot();
        Assert.Equal(4UL, s.Misses(TlbLevel.Itlb, false, Ctr.KindFetch));            // c1, c2, c3, and c2 again after its eviction
        Assert.Equal(3UL + 2 + 4 + 1 + 2 + 1, s.Lookups(TlbLevel.Itlb, false, Ctr.KindFetch));
    }

    [Fact]
    public void Random_accesses_over_small_arrays_count_the_same_with_and_without_the_fast_cache()
    {
        // Two address spaces (PCIDs 1 and 2) over 4 KiB, 2 MiB and global pages, user and supervisor reads, writes and fetches,
        // clean pages (D re-walks), INVLPG now and then, through arrays small enough that almost every fill evicts.
        static TlbConfig Small() => With(c =>
        {
            c.Dtlb4K = new ArrayConfig(4, 2); c.Dtlb2M = new ArrayConfig(2, 2); c.Dtlb1G = new ArrayConfig(1, 1);
            c.Itlb4K = new ArrayConfig(4, 2); c.Itlb2M = new ArrayConfig(2, 1);
            c.Stlb = new ArrayConfig(8, 2); c.Stlb1G = new ArrayConfig(2, 1);
        });
        var t = new Twin(Small);
        ulong pml4b = 0;
        var pages = new List<ulong>();
        t.Both(r =>
        {
            pml4b = r.NewTable();
            for (int k = 0; k < 12; k++)
            {
                ulong la = 0x1000_0000 + (ulong)k * 0x1000;
                ulong flags = P | U | (k % 4 == 0 ? G : 0) | (k % 3 == 0 ? PteFlags.Dirty : 0);
                r.Map(la, 0x300000 + (ulong)k * 0x1000, 1, flags);
                r.Map(la, 0x380000 + (ulong)k * 0x1000, 1, flags & ~G, pml4b);        // PCID 2: other frames, no globals
            }
            r.Map(0x4000_0000, 0x400000, 2, P | U);
            r.Map(0x4000_0000, 0x600000, 2, P | U | G, pml4b);
            r.Map(0x4020_0000, 0x800000, 2, P | U);
            r.Map(0x4020_0000, 0x800000, 2, P | U, pml4b);
            r.Cpu.CR4 |= Cr4Bits.Pge | Cr4Bits.Pcide;
            r.Cpu.CR3 = MmuRig.Pml4 | 1;
        });
        for (int k = 0; k < 12; k++) pages.Add(0x1000_0000 + (ulong)k * 0x1000);
        for (int k = 0; k < 6; k++) { pages.Add(0x4000_0000 + (ulong)k * 0x11000); pages.Add(0x4020_0000 + (ulong)k * 0x13000); }
        var rng = new Random(19);
        Access[] kinds = [Access.Read, Access.Write, Access.Fetch, Access.Read | Access.User, Access.Write | Access.User, Access.Fetch | Access.User];
        for (int step = 0; step < 4000; step++)
        {
            int op = rng.Next(100);
            if (op < 4) t.Cr3(rng.Next(2) == 0 ? MmuRig.Pml4 | 1 : pml4b | 2);
            else if (op < 6) { ulong la = pages[rng.Next(pages.Count)]; t.Both(r => r.Mmu.Invlpg(la)); }
            else t.Access(pages[rng.Next(pages.Count)] + (ulong)rng.Next(0x1000), kinds[rng.Next(kinds.Length)]);
        }
        Assert.True(t.Fast.Mmu.FastFills > 500, $"the fast cache was hardly used ({t.Fast.Mmu.FastFills} fills)");
        var s = t.Fast.Mmu.Snapshot();
        Assert.True(s.TotalHits(TlbLevel.Dtlb) > 500 && s.TotalMisses(TlbLevel.Dtlb) > 500, "the arrays both hit and missed");
    }
}
