namespace Emu64.Mmu;

/// <summary>The TLB structures counters are kept for.</summary>
public enum TlbLevel : byte { Itlb = 0, Dtlb = 1, Stlb = 2 }

/// <summary>Why entries were invalidated (SDM vol. 3A §4.10.4.1).</summary>
public enum FlushCause : byte
{
    Cr3 = 0, Cr3NoFlush, Invlpg, Invpcid0, Invpcid1, Invpcid2, Invpcid3, Cr4, Cr0,
    /// <summary>A page fault invalidates the entries for the faulting address in the current PCID.</summary>
    PageFault,
}

/// <summary>
/// Counter layout. Contexts split each counter by who accessed (kernel = supervisor-mode access,
/// user = user-mode access) and how (fetch, read, write). The flat index space lets the hot path
/// increment one array element; <see cref="TlbStats"/> gives names and arithmetic.
/// </summary>
public static class Ctr
{
    public const int Contexts = 6;                    // (user ? 3 : 0) + kind
    public const int KindFetch = 0, KindRead = 1, KindWrite = 2;
    public const int Lookups = 0, Hits = 1, Misses = 2;
    public const int Walks = 0, WalksCompleted = 1, WalksFaulting = 2, WalkMemRefs = 3, DirtyRewalks = 4;
    public const int Causes = 10;

    public const int TlbBase = 0;                                   // [level 3][ctx 6][3]
    public const int WalkBase = TlbBase + 3 * Contexts * 3;         // [ctx 6][5]
    public const int PscHitBase = WalkBase + Contexts * 5;          // [level 2..5] → 4, plus lookups with no hit
    public const int PscMiss = PscHitBase + 4;
    public const int FlushBase = PscMiss + 1;                       // [cause 10][count, tlb entries, psc entries]
    public const int Count = FlushBase + Causes * 3;

    public static int Tlb(TlbLevel l, int ctx, int what) => TlbBase + ((int)l * Contexts + ctx) * 3 + what;
    public static int Walk(int ctx, int what) => WalkBase + ctx * 5 + what;
    public static int PscHit(int level) => PscHitBase + level - 2;
    public static int Flush(FlushCause c, int what) => FlushBase + (int)c * 3 + what;
}

/// <summary>
/// A snapshot of the MMU counters. Subtract two snapshots to measure a region:
/// <c>var d = mmu.Snapshot() - before;</c>.
/// </summary>
public readonly struct TlbStats
{
    private readonly ulong[] _c;

    public TlbStats(ulong[] counters) { _c = counters; }

    public ulong this[int index] => _c is null ? 0 : _c[index];

    public static TlbStats operator -(TlbStats a, TlbStats b)
    {
        var r = new ulong[Ctr.Count];
        for (int i = 0; i < r.Length; i++) r[i] = a[i] - b[i];
        return new TlbStats(r);
    }

    private static int Ctx(bool user, int kind) => (user ? 3 : 0) + kind;

    public ulong Lookups(TlbLevel l, bool user, int kind) => this[Ctr.Tlb(l, Ctx(user, kind), Ctr.Lookups)];
    public ulong Hits(TlbLevel l, bool user, int kind) => this[Ctr.Tlb(l, Ctx(user, kind), Ctr.Hits)];
    public ulong Misses(TlbLevel l, bool user, int kind) => this[Ctr.Tlb(l, Ctx(user, kind), Ctr.Misses)];

    private ulong SumTlb(TlbLevel l, int what) { ulong s = 0; for (int c = 0; c < Ctr.Contexts; c++) s += this[Ctr.Tlb(l, c, what)]; return s; }
    private ulong SumWalk(int what) { ulong s = 0; for (int c = 0; c < Ctr.Contexts; c++) s += this[Ctr.Walk(c, what)]; return s; }

    public ulong TotalLookups(TlbLevel l) => SumTlb(l, Ctr.Lookups);
    public ulong TotalHits(TlbLevel l) => SumTlb(l, Ctr.Hits);
    public ulong TotalMisses(TlbLevel l) => SumTlb(l, Ctr.Misses);
    public ulong Walks => SumWalk(Ctr.Walks);
    public ulong WalksCompleted => SumWalk(Ctr.WalksCompleted);
    public ulong WalksFaulting => SumWalk(Ctr.WalksFaulting);
    public ulong WalkMemRefs => SumWalk(Ctr.WalkMemRefs);
    public ulong DirtyRewalks => SumWalk(Ctr.DirtyRewalks);
    public ulong Walk(bool user, int kind, int what) => this[Ctr.Walk(Ctx(user, kind), what)];
    /// <summary>Paging-structure-cache hits by the level of the cached entry (2 = PDE … 5 = PML5E).</summary>
    public ulong PscHits(int level) => this[Ctr.PscHit(level)];
    public ulong PscMisses => this[Ctr.PscMiss];
    public ulong Flushes(FlushCause c) => this[Ctr.Flush(c, 0)];
    public ulong DroppedTlb(FlushCause c) => this[Ctr.Flush(c, 1)];
    public ulong DroppedPsc(FlushCause c) => this[Ctr.Flush(c, 2)];

    /// <summary>Modeled cycles for a region that retired <paramref name="instructions"/>.</summary>
    public double ModeledCycles(ulong instructions, CostModel m)
    {
        ulong invpcid = Flushes(FlushCause.Invpcid0) + Flushes(FlushCause.Invpcid1) + Flushes(FlushCause.Invpcid2) + Flushes(FlushCause.Invpcid3);
        return instructions * m.BaseCpi
             + (TotalHits(TlbLevel.Itlb) + TotalHits(TlbLevel.Dtlb)) * m.L1Hit
             + TotalHits(TlbLevel.Stlb) * m.StlbHit
             + Walks * m.WalkStart + WalkMemRefs * m.WalkMemRef
             + (Flushes(FlushCause.Cr3) + Flushes(FlushCause.Cr3NoFlush)) * m.Cr3Write
             + Flushes(FlushCause.Invlpg) * m.Invlpg + invpcid * m.Invpcid
             + Flushes(FlushCause.Cr4) * m.Cr4Flush;
    }

    private static readonly string[] LevelNames = { "itlb", "dtlb", "stlb" };
    private static readonly string[] CtxNames = { "kernel.fetch", "kernel.read", "kernel.write", "user.fetch", "user.read", "user.write" };
    private static readonly string[] CauseNames = { "cr3", "cr3_noflush", "invlpg", "invpcid0", "invpcid1", "invpcid2", "invpcid3", "cr4", "cr0", "page_fault" };
    private static readonly string[] PscNames = { "pde", "pdpte", "pml4e", "pml5e" };

    /// <summary>Every counter as a (key, value) pair, in a fixed order (the <c>--stats</c> lines).</summary>
    public IEnumerable<(string Key, ulong Value)> Named()
    {
        for (int l = 0; l < 3; l++)
        {
            yield return ($"tlb.{LevelNames[l]}.lookups", TotalLookups((TlbLevel)l));
            yield return ($"tlb.{LevelNames[l]}.hits", TotalHits((TlbLevel)l));
            yield return ($"tlb.{LevelNames[l]}.misses", TotalMisses((TlbLevel)l));
            for (int c = 0; c < Ctr.Contexts; c++)
            {
                if (l == 0 && c % 3 != 0) continue;       // the iTLB sees fetches only
                if (l == 1 && c % 3 == 0) continue;       // the dTLB sees data accesses only
                yield return ($"tlb.{LevelNames[l]}.{CtxNames[c]}.lookups", this[Ctr.Tlb((TlbLevel)l, c, Ctr.Lookups)]);
                yield return ($"tlb.{LevelNames[l]}.{CtxNames[c]}.hits", this[Ctr.Tlb((TlbLevel)l, c, Ctr.Hits)]);
                yield return ($"tlb.{LevelNames[l]}.{CtxNames[c]}.misses", this[Ctr.Tlb((TlbLevel)l, c, Ctr.Misses)]);
            }
        }
        yield return ("walk.count", Walks);
        yield return ("walk.completed", WalksCompleted);
        yield return ("walk.faulting", WalksFaulting);
        yield return ("walk.memrefs", WalkMemRefs);
        yield return ("walk.dirty_rewalks", DirtyRewalks);
        for (int c = 0; c < Ctr.Contexts; c++)
        {
            yield return ($"walk.{CtxNames[c]}.count", this[Ctr.Walk(c, Ctr.Walks)]);
            yield return ($"walk.{CtxNames[c]}.memrefs", this[Ctr.Walk(c, Ctr.WalkMemRefs)]);
        }
        for (int lv = 2; lv <= 5; lv++) yield return ($"psc.{PscNames[lv - 2]}.hits", PscHits(lv));
        yield return ("psc.misses", PscMisses);
        for (int c = 0; c < Ctr.Causes; c++)
        {
            yield return ($"flush.{CauseNames[c]}.count", this[Ctr.Flush((FlushCause)c, 0)]);
            yield return ($"flush.{CauseNames[c]}.tlb_entries", this[Ctr.Flush((FlushCause)c, 1)]);
            yield return ($"flush.{CauseNames[c]}.psc_entries", this[Ctr.Flush((FlushCause)c, 2)]);
        }
        // "other": the causes that are not CR3/INVLPG/INVPCID/CR4 (CR0.PG clear, page faults).
        for (int w = 0; w < 3; w++)
            yield return ($"flush.other.{(w == 0 ? "count" : w == 1 ? "tlb_entries" : "psc_entries")}",
                this[Ctr.Flush(FlushCause.Cr0, w)] + this[Ctr.Flush(FlushCause.PageFault, w)]);
    }
}
