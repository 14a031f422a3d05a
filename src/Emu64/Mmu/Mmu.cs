using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Emu64.Memory;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Mmu;

/// <summary>
/// Linear → physical translation: the one place that knows paging. <see cref="Translate"/> is the
/// interface the CPU calls for every access. It is a model of the hardware: an L1 iTLB and an L1 dTLB
/// (an array per page size), a unified STLB, and paging-structure caches that let a walk skip levels,
/// all tagged with the 12-bit PCID (TlbModel.cs). The hit path is small and inlined: probe the L1
/// 4 KiB array, check the entry's stored rights against the current mode with one table load
/// (Permissions.cs), count, return. Everything else is out of line.
/// </summary>
public sealed partial class Mmu
{
    private readonly CpuCore _cpu;
    private readonly PhysicalMemory _mem;

    /// <summary>MAXPHYADDR reported in CPUID leaf 0x80000008 (bits above it in an entry are reserved).</summary>
    public const int MaxPhysAddr = 46;
    public const ulong PhysAddrMask = ((1UL << MaxPhysAddr) - 1) & ~0xFFFUL;

    /// <summary>Counters (layout in <see cref="Ctr"/>); read them through <see cref="Snapshot"/>.</summary>
    internal readonly ulong[] _ctr = new ulong[Ctr.Count];

    public Mmu(CpuCore cpu, PhysicalMemory mem, TlbConfig? config = null)
    {
        _cpu = cpu;
        _mem = mem;
        mem.CodeMarked += FlushFast;   // fast entries for stores hold host pointers only to frames without code
        Configure(config ?? new TlbConfig());
    }

    /// <summary>A copy of every counter now; subtract two snapshots to measure a region.</summary>
    public TlbStats Snapshot()
    {
        FoldFastHits();
        return new((ulong[])_ctr.Clone());
    }

    public void ResetCounters()
    {
        FoldFastHits();
        Array.Clear(_ctr);
    }

    // Access kind of the counters for Access bits 1:0 (Read=0, Write=1, Fetch=2).
    private static ReadOnlySpan<byte> KindOf => [Ctr.KindRead, Ctr.KindWrite, Ctr.KindFetch, Ctr.KindFetch];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Context(Access acc) => ((acc & Access.User) != 0 ? 3 : 0) + KindOf[(int)acc & 3];

    /// <summary>
    /// Translates <paramref name="la"/> for an access, raising #PF on failure. An <see cref="Access.Probe"/>
    /// translation never faults, sets no A/D bit and counts nothing: it returns <see cref="NoTranslation"/>
    /// when the access would fault. The inlined part is the host-side fast cache (FastCache.cs): a hit there
    /// is a hit in the modeled L1 entry it remembers, counted and LRU-touched as such.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong Translate(ulong la, Access acc)
    {
        var cpu = _cpu;
        if (!cpu.PagingOn) return la & (cpu.LongMode ? ulong.MaxValue : 0xFFFFFFFF);
        if ((acc & (Access.Probe | Access.Implicit)) == 0)
        {
            uint pcid = cpu.CurrentPcid;
            ref FastEntry f = ref FastSlotHashed(la, acc, cpu.PcidHash);
            if (Live(ref f, la, pcid))
            {
                f.Hits++;              // a lookup and a hit in the entry's structure, added to the counters by FoldFastHits
                Touch(ref f);          // the entry's LRU use, as its own lookup would record it
                return f.Frame | (la & 0xFFF);
            }
            return TranslateMiss(la, acc);
        }
        return TranslateModel(la, acc);
    }

    /// <summary>The model's lookup (L1 4 KiB array, then <see cref="TranslateSlow"/>); no fast cache.</summary>
    private ulong TranslateModel(ulong la, Access acc)
    {
        // Pending same-page fetches are counted before any other fetch translation, so the iTLB sees its uses in order. A data
        // access's path touches no iTLB entry and reads no counter (anything that does — an invalidation, a rights-table rebuild,
        // Snapshot — flushes them itself), so it leaves the armed fetch armed: a loop whose stores miss stays in its compiled code.
        if (_fetchSlot >= 0 && (acc & Access.Fetch) != 0) FlushFetch();
        if ((acc & Access.Probe) != 0) return ProbeTranslate(la, acc);
        if (!_model) return TranslatePlain(la, acc);
        return ModelLookup(la, acc, fastFill: false);
    }

    /// <summary>
    /// The model's lookup of a counted access: the L1 4 KiB array inline, the rest in <see cref="TranslateSlow"/>. With
    /// <paramref name="fastFill"/> (the fast cache's miss path, <see cref="TranslateMiss"/>) a successful translation also enters
    /// the L1 entry that gave it into the fast cache.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong ModelLookup(ulong la, Access acc, bool fastFill)
    {
        var cpu = _cpu;
        ushort pcid = cpu.CurrentPcid;
        int ctx = Context(acc);
        TlbLevel level = (acc & Access.Fetch) != 0 ? TlbLevel.Itlb : TlbLevel.Dtlb;
        int ci = Ctr.Tlb(level, ctx, 0);
        _ctr[ci + Ctr.Lookups]++;
        TlbArray a = (acc & Access.Fetch) != 0 ? _itlb[0] : _dtlb[0];
        int i = a.Find(la, pcid, PageSize.Size4K, true);
        if (i >= 0)
        {
            _ctr[ci + Ctr.Hits]++;
            ref TlbEntry e = ref a.E[i];
            if (_perm[PermIndex(e.Rights, acc, cpu.Ac)] == 0)
            {
                ulong pa = e.Frame | (la & 0xFFF);
                if (fastFill) FastFillEntry(a, i, la, acc, pa, pcid);   // the entry the lookup found: the first match
                return pa;
            }
            return UseEntry(a, i, la, acc, pcid, ctx, fastFill);
        }
        return TranslateSlow(la, acc, pcid, ctx, fastFill);
    }

    /// <summary>Returned by a probe translation that would fault.</summary>
    public const ulong NoTranslation = ulong.MaxValue;

    /// <summary>
    /// The L1 arrays after the 4 KiB one, then the STLB, then a walk, in one frame (the walk's fills inlined): a loop that misses
    /// the TLB on every store (kvm-unit-tests `sieve`) spends its time here. <paramref name="fastFill"/>: as for <see cref="ModelLookup"/>.
    /// </summary>
    // SkipLocalsInit: the inlined walk and fills leave this frame with ~400 bytes of struct locals (WalkResult, TlbEntry copies),
    // which the JIT would otherwise zero in the prologue of every miss, STLB hits included; each is assigned before it is read
    // (the walk's WalkResult by its `new`, as before).
    [MethodImpl(MethodImplOptions.NoInlining), SkipLocalsInit]
    private ulong TranslateSlow(ulong la, Access acc, ushort pcid, int ctx, bool fastFill)
    {
        if (PermKey() != _permKey) OnModeChanged();
        bool fetch = (acc & Access.Fetch) != 0;
        TlbLevel level = fetch ? TlbLevel.Itlb : TlbLevel.Dtlb;
        var l1 = fetch ? _itlb : _dtlb;
        ulong pa;
        for (int k = 1; k < l1.Length; k++)
        {
            int i = l1[k].Find(la, pcid, l1[k].OnlySize, true);
            if (i >= 0)
            {
                _ctr[Ctr.Tlb(level, ctx, Ctr.Hits)]++;
                return UseEntry(l1[k], i, la, acc, pcid, ctx, fastFill);
            }
        }
        _ctr[Ctr.Tlb(level, ctx, Ctr.Misses)]++;
        _ctr[Ctr.Tlb(TlbLevel.Stlb, ctx, Ctr.Lookups)]++;
        // The STLB: its shared array at 4 KiB then 2 MiB, then its 1 GiB array (TlbArray.FindAny's order over Configure's _stlb).
        var s = _stlb[0];
        int si = s.FindOrChoose(la, pcid, PageSize.Size4K, out int free4K, out int oldest4K);   // a miss chooses the walk's 4 KiB way
        if (si < 0) si = s.Find(la, pcid, PageSize.Size2M, true);
        if (si < 0) { s = _stlb[1]; si = s.Find(la, pcid, PageSize.Size1G, true); }
        if (si >= 0)
        {
            _ctr[Ctr.Tlb(TlbLevel.Stlb, ctx, Ctr.Hits)]++;
            if (_cycleClock) Stall(_costStlbHit);
            ref TlbEntry se = ref s.E[si];
            pa = se.Frame | (la & ((1UL << TlbArray.Shift(se.Size)) - 1));
            _mem.Prefetch(pa);   // the access follows the fill (see WalkAndFill)
            int way = FillFrom(l1, in se, la, out var filled);
            if (_perm[PermIndex(se.Rights, acc, _cpu.Ac)] == 0)
            {
                // UseEntry's allowed case (the rights table is current: checked above): the L1 way just filled, the only L1
                // entry that matches, is what the next lookup finds.
                if (fastFill) FastFillCurrent(filled, way, la, acc, pa, pcid);
                return pa;
            }
            return UseEntry(s, si, la, acc, pcid, ctx, fastFill);   // a fault, or a D re-walk that fills again
        }
        _ctr[Ctr.Tlb(TlbLevel.Stlb, ctx, Ctr.Misses)]++;
        return WalkAndFill(la, acc, pcid, ctx, fastFill, free4K, oldest4K);
    }

    /// <summary>
    /// <see cref="UseEntry(TlbArray, int, ulong, Access, ushort, int)"/>, and with <paramref name="fastFill"/> (the fast cache's miss
    /// path) the translation entered into the fast cache, looked up again: a D re-walk may have filled another way.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong UseEntry(TlbArray a, int i, ulong la, Access acc, ushort pcid, int ctx, bool fastFill)
    {
        ulong pa = UseEntry(a, i, la, acc, pcid, ctx);
        if (fastFill && pa != NoTranslation) FastFill(la, acc, pa);
        return pa;
    }

    /// <summary>An access through a TLB entry: allowed, a fault from the stored rights, or a re-walk to set D.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private ulong UseEntry(TlbArray a, int i, ulong la, Access acc, ushort pcid, int ctx)
    {
        if (PermKey() != _permKey) OnModeChanged();
        TlbEntry e = a.E[i];
        ushort p = _perm[PermIndex(e.Rights, acc, _cpu.Ac)];
        if (p == 0) return e.Frame | (la & ((1UL << TlbArray.Shift(e.Size)) - 1));
        if ((p & PermFault) != 0)
        {
            // The fault is decided from the entry as filled (a stale entry can fault, as on hardware).
            InvalidateForFault(la, pcid);
            return RaisePageFault(la, (uint)(p & 0xFF) | FetchBit(acc));
        }
        // A write through an entry filled with D=0: the processor walks again to set D (SDM §4.8).
        _ctr[Ctr.Walk(ctx, Ctr.DirtyRewalks)]++;
        DropPage(la, pcid);
        return WalkAndFillOutOfLine(la, acc, pcid, ctx);
    }

    /// <summary>
    /// When set (tests and tools), a page fault is recorded in <see cref="LastFault"/> and the translation returns
    /// <see cref="NoTranslation"/> instead of raising #PF in the guest. Everything else (invalidation, counters) is as for a delivered fault.
    /// </summary>
    public bool CaptureFaults;
    public (ulong Cr2, uint ErrorCode)? LastFault;

    private ulong RaisePageFault(ulong la, uint err)
    {
        if (CaptureFaults) { LastFault = (la, err); return NoTranslation; }
        _cpu.PageFault(la, err);
        return NoTranslation;
    }

    /// <summary><see cref="WalkAndFill"/> in a frame of its own (a D re-walk, which is rare).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private ulong WalkAndFillOutOfLine(ulong la, Access acc, ushort pcid, int ctx) => WalkAndFill(la, acc, pcid, ctx, fastFill: false, -1, -1);

    /// <summary>
    /// Misses everywhere: walk, check, set A/D, fill the STLB and the L1 structure; with <paramref name="fastFill"/>, the fast
    /// entry for the L1 way just filled, which is the entry the next lookup finds: the L1 lookup for (la, PCID) found nothing
    /// before, and the fill wrote the one entry that matches. <paramref name="free4K"/>, <paramref name="oldest4K"/>: the STLB way
    /// for a 4 KiB entry that <see cref="TlbArray.FindOrChoose"/> chose while it missed, or both -1 (then the fill looks).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong WalkAndFill(ulong la, Access acc, ushort pcid, int ctx, bool fastFill, int free4K, int oldest4K)
    {
        _ctr[Ctr.Walk(ctx, Ctr.Walks)]++;
        var w = new WalkResult();
        Walk(la, pcid, _cpu.CR3, ref w, WalkMode.Fill);
        _ctr[Ctr.Walk(ctx, Ctr.WalkMemRefs)] += (ulong)w.MemRefs;
        if (_cycleClock) Stall(_costWalkStart + _costWalkMemRef * (ulong)w.MemRefs);
        if (w.Fault)
        {
            _ctr[Ctr.Walk(ctx, Ctr.WalksFaulting)]++;
            InvalidateForFault(la, pcid);
            return RaisePageFault(la, w.FaultCode | ErrorBits(acc));
        }
        ushort p = _perm[PermIndex(w.Rights, acc, _cpu.Ac)];
        if ((p & PermFault) != 0)
        {
            _ctr[Ctr.Walk(ctx, Ctr.WalksFaulting)]++;
            InvalidateForFault(la, pcid);
            return RaisePageFault(la, (uint)(p & 0xFF) | FetchBit(acc));
        }
        _ctr[Ctr.Walk(ctx, Ctr.WalksCompleted)]++;
        ulong pa = w.Frame | (la & ((1UL << TlbArray.Shift(w.Size)) - 1));
        // The access itself comes after the fills below: start bringing its line into the host's cache now, so that a store to a
        // page not touched for long (a sieve's) waits less, and stalls less of what follows it (a hint; it changes nothing).
        _mem.Prefetch(pa);
        if ((acc & Access.Fetch) == 0 && w.Size == PageSize.Size4K && !w.Narrow) StridePrefetch(la, w.EntryAddr[w.Count - 1]);   // and the next one's
        SetAccessedDirty(ref w, (acc & Access.Write) != 0);
        if (_pscEnabled && w.FirstFromMemory < w.Count - 1) FillPsc(ref w, la, pcid);   // (a walk from the PDE cache reads only the PTE)
        var entry = new TlbEntry
        {
            Vpn = la >> TlbArray.Shift(w.Size),
            Frame = w.Frame,
            Pcid = pcid,
            Rights = w.Rights,
            Flags = (byte)(EntryFlags.Make(w.Size, w.Global) | (w.Frag4M ? EntryFlags.Frag4M : 0)),
        };
        // The STLB's set for a 4 KiB page is the one its lookup scanned, and nothing has touched the STLB since (the walk reads
        // memory and fills only the paging-structure caches): write where that scan chose.
        if (w.Size == PageSize.Size4K && oldest4K >= 0) { var s = _stlb[0]; s.WriteWay(s.ChosenWay(entry.Vpn, free4K, oldest4K), in entry); }
        else FillFrom(_stlb, entry, la, out _);
        int way = FillFrom((acc & Access.Fetch) != 0 ? _itlb : _dtlb, entry, la, out var l1);
        if (fastFill) FastFillCurrent(l1, way, la, acc, pa, pcid);   // (WalkAndFill runs inside TranslateSlow when it fills)
        return pa;
    }

    /// <summary>Sets A in every entry this walk read from memory, and D in the leaf for a write (SDM §4.8).</summary>
    private void SetAccessedDirty(ref WalkResult w, bool write)
    {
        int width = w.Narrow ? 4 : 8;   // 32-bit paging: 4-byte entries
        for (int k = w.FirstFromMemory; k < w.Count; k++)
        {
            ulong addr = w.EntryAddr[k];
            ulong e = _mem.Read(addr, width);
            ulong ne = e | PteFlags.Accessed;
            if (k == w.Count - 1 && write) ne |= PteFlags.Dirty;
            if (ne != e) _mem.Write(addr, width, ne);
            w.EntryValue[k] = ne;
        }
        if (write) w.Rights |= Rights.D;
    }

    /// <summary>Side-effect-free translation for debuggers: the TLB as the CPU would use it, else a walk.</summary>
    private ulong ProbeTranslate(ulong la, Access acc)
    {
        acc &= ~Access.Probe;
        ushort pcid = _cpu.CurrentPcid;
        ulong pk = PermKey();
        foreach (var group in new[] { (acc & Access.Fetch) != 0 ? _itlb : _dtlb, _stlb })
            foreach (var a in group)
            {
                int i = a.FindAny(la, pcid, touch: false);
                if (i < 0) continue;
                var e = a.E[i];
                ushort p = pk == _permKey ? _perm[PermIndex(e.Rights, acc, _cpu.Ac)] : Recheck(e.Rights, acc);
                return (p & PermFault) != 0 ? NoTranslation : e.Frame | (la & ((1UL << TlbArray.Shift(e.Size)) - 1));
            }
        var w = new WalkResult();
        Walk(la, pcid, _cpu.CR3, ref w, WalkMode.Probe);
        if (w.Fault || (Recheck(w.Rights, acc) & PermFault) != 0) return NoTranslation;
        return w.Frame | (la & ((1UL << TlbArray.Shift(w.Size)) - 1));
    }

    private ushort Recheck(byte rights, Access acc)
    {
        var c = _cpu;
        return Decide(rights, acc, c.Ac, (c.CR0 & Emu64.Cpu.Cr0.Wp) != 0, (c.CR4 & Emu64.Cpu.Cr4.Smep) != 0,
            (c.CR4 & Emu64.Cpu.Cr4.Smap) != 0, (c.CR4 & Emu64.Cpu.Cr4.Pke) != 0 && c.LongMode, c.Pkru);
    }

    /// <summary>Page walk for an access with no TLB involvement (tests and tools): checks rights, sets A/D, fills nothing.</summary>
    public WalkResult WalkForAccess(ulong la, Access acc)
    {
        var w = new WalkResult();
        Walk(la, _cpu.CurrentPcid, _cpu.CR3, ref w, (acc & Access.Probe) != 0 ? WalkMode.Probe : WalkMode.NoFill);
        if (w.Fault) { w.FaultCode |= ErrorBits(acc); return w; }
        ushort p = Recheck(w.Rights, acc & ~Access.Probe);
        if ((p & PermFault) != 0) { w.Fault = true; w.FaultCode = (uint)(p & 0xFF) | FetchBit(acc); return w; }
        if ((acc & Access.Probe) == 0) SetAccessedDirty(ref w, (acc & Access.Write) != 0);
        return w;
    }
}
