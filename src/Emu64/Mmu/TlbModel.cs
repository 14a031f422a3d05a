using System.Runtime.CompilerServices;

namespace Emu64.Mmu;

/// <summary>
/// The structures of the TLB model and how entries move between them. A walk fills the STLB and the
/// L1 structure of the access (iTLB for fetches, dTLB for data); an STLB hit refills the L1 structure.
/// Arrays are per page size in L1; the STLB shares one array between 4 KiB and 2 MiB pages. A page
/// size an L1 structure has no array for (1 GiB in the iTLB) is cached as the 2 MiB fragment that
/// holds the address. A 4 MiB page of 32-bit paging is cached the same way, as the 2 MiB half that holds the
/// address, marked <see cref="EntryFlags.Frag4M"/> so that invalidating the page drops both halves.
/// </summary>
public sealed partial class Mmu
{
    internal TlbArray[] _itlb = [], _dtlb = [], _stlb = [];
    /// <summary>Paging-structure caches by the level of the entry they hold: [2] PDE, [3] PDPTE, [4] PML4E, [5] PML5E.</summary>
    internal TlbArray[] _psc = new TlbArray[6];
    private bool _pscEnabled;

    public TlbConfig Config { get; private set; } = new();

    /// <summary>Rebuilds every structure from a configuration (all entries are lost; counters are kept).</summary>
    public void Configure(TlbConfig config)
    {
        config.Validate();
        if (_cycleClock && CycleClockProblem(config.Cost) is { } problem) throw new ArgumentException(problem);
        Config = config;
        static TlbArray A(string n, ArrayConfig c, params PageSize[] sizes)
        {
            int mask = 0;
            foreach (var s in sizes) mask |= 1 << (int)s;
            return new TlbArray(n, c.Entries, c.Ways, c.Replacement, mask);
        }
        _dtlb = [A("dtlb4k", config.Dtlb4K, PageSize.Size4K), A("dtlb2m", config.Dtlb2M, PageSize.Size2M), A("dtlb1g", config.Dtlb1G, PageSize.Size1G)];
        _itlb = [A("itlb4k", config.Itlb4K, PageSize.Size4K), A("itlb2m", config.Itlb2M, PageSize.Size2M)];
        _stlb = [A("stlb", config.Stlb, PageSize.Size4K, PageSize.Size2M), A("stlb1g", config.Stlb1G, PageSize.Size1G)];
        _psc[2] = new TlbArray("psc_pde", config.PscPde.Entries, config.PscPde.Ways, config.PscPde.Replacement, 0, 21);
        _psc[3] = new TlbArray("psc_pdpte", config.PscPdpte.Entries, config.PscPdpte.Ways, config.PscPdpte.Replacement, 0, 30);
        _psc[4] = new TlbArray("psc_pml4e", config.PscPml4e.Entries, config.PscPml4e.Ways, config.PscPml4e.Replacement, 0, 39);
        _psc[5] = new TlbArray("psc_pml5e", config.PscPml5e.Entries, config.PscPml5e.Ways, config.PscPml5e.Replacement, 0, 48);
        _model = config.Model;
        _pscEnabled = config.PagingStructureCaches && config.Model;
        _permKey = ulong.MaxValue;
        LoadClockCosts();
        FlushFast();
        ApplyListener();
        OnModeChanged();
    }

    /// <summary>The TLB arrays by structure (L1 iTLB, L1 dTLB, STLB).</summary>
    public IReadOnlyList<TlbArray> Arrays(TlbLevel level)
    {
        FlushFetch();   // whoever looks at the entries sees the LRU stamps of every fetch so far
        return level switch
        {
            TlbLevel.Itlb => _itlb,
            TlbLevel.Dtlb => _dtlb,
            _ => _stlb,
        };
    }

    /// <summary>The paging-structure cache for entries of one level (2 = PDE … 5 = PML5E).</summary>
    public TlbArray PagingStructureCache(int level) => _psc[level];

    /// <summary>
    /// Writes an entry into the array of a structure that holds its size, splintering a page too large for the structure.
    /// An L1 fill tells the fast cache what it replaced and what it wrote (<see cref="DropFilled"/>); an STLB fill cannot
    /// change what an L1 lookup finds.
    /// </summary>
    /// <returns>The index in <paramref name="array"/>'s entries of the way written.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int FillFrom(TlbArray[] structure, in TlbEntry entry, ulong la, out TlbArray array)
    {
        bool l1 = structure != _stlb;
        bool fetch = structure == _itlb;
        if (fetch && _fetchSlot >= 0) FlushFetch();   // the armed fetch's pending hits land before the iTLB changes
        var size = entry.Size;
        foreach (var a in structure)
            if (a.Holds(size))
            {
                int way = a.ChooseWay(in entry);
                if (l1) DropFilled(fetch, in a.E[way], a.TakeFastKinds(way), in entry);   // before the write: the old entry read in place
                a.WriteWay(way, in entry);
                array = a;
                return way;
            }
        return FillFragment(structure, in entry, la, l1, fetch, out array);
    }

    /// <summary><see cref="FillFrom"/> of a page larger than every array of the structure holds: the fragment that holds the address.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private int FillFragment(TlbArray[] structure, in TlbEntry entry, ulong la, bool l1, bool fetch, out TlbArray array)
    {
        var size = entry.Size;
        for (int s = (int)size - 1; s >= 0; s--)
        {
            foreach (var a in structure)
            {
                if (!a.Holds((PageSize)s)) continue;
                int shift = TlbArray.Shift((PageSize)s);
                var frag = entry;
                frag.Vpn = la >> shift;
                frag.Frame = entry.Frame | (la & ((1UL << TlbArray.Shift(size)) - 1) & ~((1UL << shift) - 1));
                frag.Flags = EntryFlags.Make((PageSize)s, entry.Global);
                int way = a.ChooseWay(in frag);
                if (l1) DropFilled(fetch, in a.E[way], a.TakeFastKinds(way), in frag);
                a.WriteWay(way, in frag);
                array = a;
                return way;
            }
        }
        throw new InvalidOperationException($"no array of the structure holds a page of {size} or smaller");
    }

    /// <summary>Drops the TLB entries for a page in a PCID (and global ones for it), with no architectural cause.</summary>
    private int DropPage(ulong la, ushort pcid)
    {
        FlushFast();
        int n = 0;
        foreach (var a in _itlb) n += a.Invalidate(TlbArray.Select.Page, pcid, la, pageGlobalsToo: true);
        foreach (var a in _dtlb) n += a.Invalidate(TlbArray.Select.Page, pcid, la, pageGlobalsToo: true);
        foreach (var a in _stlb) n += a.Invalidate(TlbArray.Select.Page, pcid, la, pageGlobalsToo: true);
        return n;
    }

    /// <summary>
    /// A page fault invalidates the TLB entries for the faulting page in the current PCID and the
    /// paging-structure-cache entries that would be used for the address (SDM vol. 3A §4.10.4.1).
    /// </summary>
    private void InvalidateForFault(ulong la, ushort pcid)
    {
        int tlb = DropPage(la, pcid);
        int psc = 0;
        for (int l = 2; l <= 5; l++) psc += _psc[l].Invalidate(TlbArray.Select.Page, pcid, la);
        Count(FlushCause.PageFault, tlb, psc);
    }

    private void Count(FlushCause c, int tlb, int psc)
    {
        _ctr[Ctr.Flush(c, 0)]++;
        _ctr[Ctr.Flush(c, 1)] += (ulong)tlb;
        _ctr[Ctr.Flush(c, 2)] += (ulong)psc;
        if (_cycleClock) Stall(_costFlush[(int)c]);
        _listener?.OnInvalidate(c, tlb, psc);
    }

    /// <summary>Applies one selection to every TLB array; returns entries dropped.</summary>
    private int InvalidateTlb(TlbArray.Select what, ushort pcid = 0, ulong la = 0, bool pageGlobalsToo = false)
    {
        FlushFast();
        int n = 0;
        foreach (var a in _itlb) n += a.Invalidate(what, pcid, la, pageGlobalsToo);
        foreach (var a in _dtlb) n += a.Invalidate(what, pcid, la, pageGlobalsToo);
        foreach (var a in _stlb) n += a.Invalidate(what, pcid, la, pageGlobalsToo);
        return n;
    }

    /// <summary>Applies one selection to every paging-structure cache (which never hold globals).</summary>
    private int InvalidatePsc(TlbArray.Select what, ushort pcid = 0, ulong la = 0)
    {
        int n = 0;
        for (int l = 2; l <= 5; l++) n += _psc[l].Invalidate(what, pcid, la);
        return n;
    }
}
