using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Emu64.Mmu;

/// <summary>Page sizes a TLB entry can map (SDM vol. 3A §4.5).</summary>
public enum PageSize : byte { Size4K = 0, Size2M = 1, Size1G = 2 }

/// <summary>
/// One TLB or paging-structure-cache entry: the translation and the rights exactly as the paging
/// structures gave them when the entry was filled. Nothing re-reads memory while the entry is valid,
/// so a stale entry keeps translating as it did (SDM vol. 3A §4.10.2).
/// </summary>
public struct TlbEntry
{
    /// <summary>Linear page number at the entry's size (la &gt;&gt; 12, 21 or 30); for a paging-structure cache, la &gt;&gt; the bits the cached entry covers.</summary>
    public ulong Vpn;
    /// <summary>Physical base of the page, or of the next paging structure for a paging-structure-cache entry.</summary>
    public ulong Frame;
    /// <summary>Replacement stamp (last use for LRU, fill time for FIFO).</summary>
    public ulong Stamp;
    public ushort Pcid;
    /// <summary><see cref="Rights"/> bits: W, U, XD combined over the levels, D of the leaf, and the protection key in bits 7:4.</summary>
    public byte Rights;
    /// <summary><see cref="EntryFlags"/>: valid, global, page size.</summary>
    public byte Flags;

    public readonly bool Valid => (Flags & EntryFlags.Valid) != 0;
    public readonly bool Global => (Flags & EntryFlags.Global) != 0;
    public readonly PageSize Size => (PageSize)((Flags >> EntryFlags.SizeShift) & 3);
}

/// <summary>Bits of <see cref="TlbEntry.Rights"/>.</summary>
public static class Rights
{
    public const byte W = 1, U = 2, Xd = 4, D = 8;
    public const int PkeyShift = 4;
}

/// <summary>Bits of <see cref="TlbEntry.Flags"/>.</summary>
public static class EntryFlags
{
    public const byte Valid = 1, Global = 2;
    public const int SizeShift = 2;
    /// <summary>
    /// A 2 MiB entry that is one half of a 4 MiB page (32-bit paging with CR4.PSE). Lookups ignore it; an invalidation
    /// of one page matches it by the 4 MiB page number, so INVLPG of any address in the page drops both halves.
    /// </summary>
    public const byte Frag4M = 16;
    public static byte Make(PageSize size, bool global) => (byte)(Valid | (global ? Global : 0) | ((int)size << SizeShift));
}

/// <summary>
/// One set's replacement clock (<see cref="TlbArray.LruSets"/>): the stamp of the set's most recent use or fill. An object of its own
/// so that a fast-cache entry reaches its set's clock with one load, as it reached the whole array's clock before the clocks were
/// per set (Mmu.Touch): a use of another set's entry no longer makes the entry's next hit look like a change of order.
/// </summary>
public sealed class LruSet(TlbArray array, int first, bool tracksOrder)
{
    internal ulong Clock;
    internal readonly TlbArray Array = array;
    /// <summary>The index in <see cref="TlbArray.E"/> of the set's first way.</summary>
    internal readonly int First = first;
    /// <summary>Whether <see cref="Order"/> and <see cref="Valid"/> are kept (<see cref="TlbArray.TracksOrder"/>).</summary>
    internal readonly bool TracksOrder = tracksOrder;
    /// <summary>
    /// The set's ways from its most recent fill or use (bits 3:0) to its least recent (the highest nibble), four bits each: a
    /// permutation of the ways, moved to the front wherever a stamp is set (<see cref="TlbArray.Use(LruSet, int)"/>,
    /// <see cref="TlbArray.WriteWay"/>), so that among the valid ways it lists the stamps from the highest down.
    /// </summary>
    internal ulong Order = 0xFEDCBA9876543210UL;
    /// <summary>Bit w set while way w holds a valid entry.</summary>
    internal int Valid;
}

/// <summary>How a set picks its victim.</summary>
public enum Replacement : byte { Lru, Fifo, Random }

/// <summary>
/// A set-associative array of entries (sets × ways, sets a power of two). One array may hold several
/// page sizes (the STLB shares its array between 4 KiB and 2 MiB pages): the set is chosen from the
/// page number at the entry's size, and a lookup probes each size the array holds.
/// </summary>
public sealed class TlbArray
{
    public readonly string Name;
    public readonly int Sets, Ways;
    public readonly Replacement Policy;
    /// <summary>Bit mask of the <see cref="PageSize"/> values this array holds.</summary>
    public readonly int SizeMask;
    internal readonly TlbEntry[] E;
    private readonly int _setMask;
    /// <summary>
    /// Per set and page size (index set * 3 + <see cref="PageSize"/>): how many valid entries of that size the set holds, kept by
    /// <see cref="WriteWay"/> and <see cref="Invalidate"/>, the only writers of entries. <see cref="Find"/> of a size the set holds
    /// none of answers "not found" without reading the set: a 4 KiB miss goes on to probe the 2 MiB and 1 GiB arrays and the STLB
    /// at 2 MiB and 1 GiB (<see cref="FindAny"/>'s order), whose sets are mostly empty where a guest maps its data with 4 KiB pages, and
    /// each probe of a 12-way STLB set would read seven host cache lines.
    /// </summary>
    private readonly int[] _sizeCounts;
    private ulong _rng = 0x2545F4914F6CDD1DUL;
    /// <summary>
    /// The LRU clocks, one per set (<see cref="LruSet"/>): replacement compares stamps only within a set, so each set orders its own
    /// uses. A use of the entry that already holds its set's latest stamp changes nothing: it is the most recently used entry of its
    /// set, so a new stamp would change no order, and replacement depends only on the order within the set.
    /// </summary>
    internal readonly LruSet[] LruSets;

    /// <summary>
    /// A use of entry <paramref name="w"/> of set <paramref name="set"/> under LRU (a lookup's hit): the entry becomes its set's
    /// most recent use.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Use(int set, int w) => Use(Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(LruSets), set), w);

    /// <summary>
    /// <see cref="Use(int, int)"/> with the set's clock in hand (the fast cache's hits, Mmu.TouchArray); returns the entry's stamp
    /// after the use. The one place the LRU rule is written.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong Use(LruSet s, int w)
    {
        ref ulong stamp = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(E), w).Stamp;
        if (stamp != s.Clock)   // (the set's most recent use already: nothing changes)
        {
            stamp = ++s.Clock;
            if (s.TracksOrder) MoveToFront(s, w - s.First);
        }
        return stamp;
    }

    /// <summary>
    /// The set of valid entry <paramref name="w"/> (an index in <see cref="E"/>): the set of its page number, where every fill puts an
    /// entry (<see cref="ChooseWay"/>, <see cref="ChosenWay"/>), without dividing by <see cref="Ways"/> (12 in the STLB, not a power of two).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal int SetOf(int w) => (int)E[w].Vpn & _setMask;

    /// <summary>
    /// Per way of an L1 array: the access kinds (<see cref="Mmu.KindBit"/>) of the fast-cache entries filled to point at the way
    /// since the way was last filled — a superset of the live ones, so a fill over the way need look only at those slots
    /// (Mmu.DropFilled) and, when it is 0, at none. Kept beside <see cref="E"/>, not in it: it is host-side bookkeeping of the
    /// fast cache, not state of the model (the entries compare equal with and without the fast cache).
    /// </summary>
    internal readonly byte[] FastKinds;

    /// <summary>The <see cref="FastKinds"/> of a way that has just been filled, which start again from none.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal byte TakeFastKinds(int way)
    {
        ref byte k = ref FastKinds[way];
        byte kinds = k;
        k = 0;
        return kinds;
    }

    /// <summary>Told of every fill (the `tlb` trace); null when nobody listens.</summary>
    public ITlbListener? Listener;

    /// <summary>For a paging-structure cache: how far the linear address is shifted to form the key (21 for PDEs … 48 for PML5Es); 0 for a TLB.</summary>
    public readonly int KeyShift;

    public TlbArray(string name, int entries, int ways, Replacement policy, int sizeMask, int keyShift = 0)
    {
        KeyShift = keyShift;
        if (entries <= 0 || ways <= 0 || entries % ways != 0)
            throw new ArgumentException($"{name}: {entries} entries cannot be split into {ways} ways");
        Sets = entries / ways;
        if ((Sets & (Sets - 1)) != 0) throw new ArgumentException($"{name}: {Sets} sets is not a power of two");
        Name = name; Ways = ways; Policy = policy; SizeMask = sizeMask;
        E = new TlbEntry[entries];
        _sizeCounts = new int[Sets * 3];
        FastKinds = new byte[entries];
        TracksOrder = keyShift == 0 && (sizeMask & 1) != 0 && ways is >= 8 and <= 15;
        LruSets = new LruSet[Sets];
        for (int i = 0; i < Sets; i++) LruSets[i] = new LruSet(this, i * ways, TracksOrder);
        _setMask = Sets - 1;
        if (TracksOrder)
        {
            // one bucket per page number modulo a multiple of the sets: a bucket's entries are all of one set, so at most Ways of them
            int n = Math.Max(1 << 14, Sets);
            _present4K = new byte[n];
            _presentMask = n - 1;
        }
    }

    /// <summary>
    /// Whether each set keeps its ways' recency order and valid mask (<see cref="LruSet.Order"/>, <see cref="LruSet.Valid"/>) and the
    /// array counts its 4 KiB entries by page number (<see cref="_present4K"/>): a large associative TLB (the STLB, 12 ways), whose
    /// 4 KiB lookup that misses then reads neither the set's entries nor their stamps (<see cref="FindOrChoose"/>).
    /// </summary>
    internal readonly bool TracksOrder;
    /// <summary>
    /// The number of valid 4 KiB entries whose page number is the index modulo the array's length (<see cref="TracksOrder"/>): 0 says
    /// no entry can match a 4 KiB lookup of such a page (whatever its PCID, global or not). Kept by <see cref="WriteWay"/> and
    /// <see cref="Invalidate"/>, the only writers of entries.
    /// </summary>
    private readonly byte[]? _present4K;
    private readonly int _presentMask;

    /// <summary><see cref="_present4K"/>'s count for entry <paramref name="e"/>'s page changed by <paramref name="delta"/> if it is a valid 4 KiB entry.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void CountPresent(in TlbEntry e, int delta)
    {
        if (e.Valid && e.Size == PageSize.Size4K) _present4K![(int)e.Vpn & _presentMask] += (byte)delta;
    }

    /// <summary>Way <paramref name="w"/> of set <paramref name="s"/> (counted from its first) becomes the most recent in <see cref="LruSet.Order"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MoveToFront(LruSet s, int w)
    {
        ulong o = s.Order;
        // the nibble holding w: the lowest zero nibble of o ^ (w in every nibble) (the zero-nibble test's lowest flag is exact)
        ulong x = o ^ (0x1111_1111_1111_1111UL * (uint)w);
        ulong z = (x - 0x1111_1111_1111_1111UL) & ~x & 0x8888_8888_8888_8888UL;
        int at = System.Numerics.BitOperations.TrailingZeroCount(z) & ~3;   // 4 x the nibble's index
        ulong below = (1UL << at) - 1;                                        // the more recent ways
        s.Order = (o & ~below & ~(0xFUL << at)) | ((o & below) << 4) | (uint)w;
    }

    public int Capacity => E.Length;
    /// <summary>The smallest page size this array holds (the only one, for an L1 array).</summary>
    public PageSize OnlySize => (SizeMask & 1) != 0 ? PageSize.Size4K : (SizeMask & 2) != 0 ? PageSize.Size2M : PageSize.Size1G;
    public bool Holds(PageSize s) => (SizeMask & (1 << (int)s)) != 0;

    public static int Shift(PageSize s) => 12 + 9 * (int)s;

    /// <summary>Index of the entry translating <paramref name="la"/> for <paramref name="pcid"/> at one size, or -1. Counts nothing; refreshes LRU when <paramref name="touch"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Find(ulong la, ushort pcid, PageSize size, bool touch)
    {
        ulong vpn = la >> Shift(size);
        int set = (int)vpn & _setMask, b = set * Ways;
        if (Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_sizeCounts), set * 3 + (int)size) == 0) return -1;   // nothing of this size to find
        byte want = (byte)(EntryFlags.Valid | ((int)size << EntryFlags.SizeShift));
        // The set lies inside E (b + Ways <= Sets * Ways): no bounds checks on the miss path's scans.
        ref TlbEntry x = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(E), b);
        for (int k = 0; k < Ways; k++, x = ref Unsafe.Add(ref x, 1))
        {
            if (x.Vpn == vpn && (x.Flags & ~(EntryFlags.Global | EntryFlags.Frag4M)) == want && (x.Pcid == pcid || (x.Flags & EntryFlags.Global) != 0))
            {
                if (touch && Policy == Replacement.Lru) Use(set, b + k);
                return b + k;
            }
        }
        return -1;
    }

    /// <summary>
    /// <see cref="Find"/> with touch, which when it finds nothing also says what <see cref="Fill"/> would overwrite in that set for
    /// an entry of <paramref name="size"/> for this page: the first invalid way (<paramref name="free"/>, -1 if none) and the way
    /// with the lowest stamp (<paramref name="oldest"/>), both counted from the set's first way. Fill looks first for an entry
    /// with the new entry's page, size, PCID and global flag; after this miss there is none for an entry of <paramref name="pcid"/>,
    /// global or not (either would have matched), so while the set does not change, <see cref="ChosenWay"/> is where Fill
    /// would write, without a second pass over the set (the STLB's miss path: the walk between the two touches no STLB entry).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int FindOrChoose(ulong la, ushort pcid, PageSize size, out int free, out int oldest)
    {
        ulong vpn = la >> Shift(size);
        int set = (int)vpn & _setMask, b = set * Ways;
        if (_present4K != null && size == PageSize.Size4K
            && Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_present4K), (int)vpn & _presentMask) == 0)
        {
            // no 4 KiB entry of this page in the set: what the scan below would find without reading it — the first invalid way,
            // and the least recent valid way (the lowest stamp, when every way is valid: the only case Victim reads it)
            var ls = Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(LruSets), set);
            int invalid = ~ls.Valid & ((1 << Ways) - 1);
            free = invalid != 0 ? System.Numerics.BitOperations.TrailingZeroCount(invalid) : -1;
            oldest = (int)(ls.Order >> (4 * (Ways - 1))) & 0xF;
            return -1;
        }
        return ScanOrChoose(vpn, set, b, pcid, size, out free, out oldest);
    }

    /// <summary><see cref="FindOrChoose"/> by reading the set (also the reference its shortcut is tested against).</summary>
    internal int ScanOrChoose(ulong la, ushort pcid, PageSize size, out int free, out int oldest)
    {
        ulong vpn = la >> Shift(size);
        int set = (int)vpn & _setMask;
        return ScanOrChoose(vpn, set, set * Ways, pcid, size, out free, out oldest);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private int ScanOrChoose(ulong vpn, int set, int b, ushort pcid, PageSize size, out int free, out int oldest)
    {
        byte want = (byte)(EntryFlags.Valid | ((int)size << EntryFlags.SizeShift));
        free = -1;
        int old = 0;
        long oldestStamp = long.MaxValue;
        ref TlbEntry x = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(E), b);
        for (int k = 0; k < Ways; k++, x = ref Unsafe.Add(ref x, 1))
        {
            if (!x.Valid) { if (free < 0) free = k; continue; }
            if (x.Vpn == vpn && (x.Flags & ~(EntryFlags.Global | EntryFlags.Frag4M)) == want && (x.Pcid == pcid || (x.Flags & EntryFlags.Global) != 0))
            {
                if (Policy == Replacement.Lru) Use(set, b + k);
                oldest = -1;
                return b + k;
            }
            TakeIfOlder(x.Stamp, k, ref oldestStamp, ref old);
        }
        oldest = old;
        return -1;
    }

    /// <summary>
    /// The way (index in E) that <see cref="Fill"/> of an entry for the page and size a <see cref="FindOrChoose"/> of this set has
    /// just missed would write, from the <paramref name="free"/> and <paramref name="oldest"/> ways that lookup chose (<paramref name="vpn"/>:
    /// the entry's page number); nothing may have changed the set in between. <see cref="WriteWay"/> writes it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal int ChosenWay(ulong vpn, int free, int oldest)
    {
        int set = (int)vpn & _setMask;
        return set * Ways + Victim(free, oldest);
    }

    /// <summary>
    /// The way <see cref="FindKey"/> found last (a paging-structure cache only). At most one entry of a paging-structure cache
    /// matches a key and PCID — it holds no global entries, and <see cref="Fill"/> overwrites an entry with the same key rather
    /// than adding a second — so when this way matches, it is the entry the scan would find, and the scan is skipped. A walk
    /// through a region of memory uses one PDE-cache entry for 512 pages in a row; the PDE cache is 32-way fully associative.
    /// The hint is never trusted: a way that was invalidated or refilled since simply does not match, and the scan runs.
    /// </summary>
    private int _keyHint;

    /// <summary>Paging-structure-cache lookup: the entry whose key is la &gt;&gt; <see cref="KeyShift"/> for this PCID, or -1.</summary>
    public int FindKey(ulong la, ushort pcid, bool touch)
    {
        ulong vpn = la >> KeyShift;
        ref TlbEntry e0 = ref MemoryMarshal.GetArrayDataReference(E);
        int h = _keyHint;
        ref TlbEntry hx = ref Unsafe.Add(ref e0, h);
        if (hx.Vpn == vpn && hx.Flags == EntryFlags.Valid && hx.Pcid == pcid)
        {
            if (touch && Policy == Replacement.Lru) Use(SetOf(h), h);
            return h;
        }
        int set = (int)vpn & _setMask, b = set * Ways;
        ref TlbEntry x = ref Unsafe.Add(ref e0, b);
        for (int k = 0; k < Ways; k++, x = ref Unsafe.Add(ref x, 1))
        {
            if (x.Vpn == vpn && x.Flags == EntryFlags.Valid && x.Pcid == pcid)
            {
                if (touch && Policy == Replacement.Lru) Use(set, b + k);
                return _keyHint = b + k;
            }
        }
        return -1;
    }

    /// <summary>Probes every size this array holds, smallest first.</summary>
    public int FindAny(ulong la, ushort pcid, bool touch)
    {
        for (int s = 0; s < 3; s++)
        {
            if ((SizeMask & (1 << s)) == 0) continue;
            int i = Find(la, pcid, (PageSize)s, touch);
            if (i >= 0) return i;
        }
        return -1;
    }

    /// <summary>
    /// Writes an entry into its set, replacing an entry for the same page and tag if there is one, else an invalid way, else
    /// the victim the policy picks (<see cref="ChooseWay"/>, then <see cref="WriteWay"/>); returns what the way held before
    /// (invalid when it was free).
    /// </summary>
    public TlbEntry Fill(in TlbEntry entry) => Fill(in entry, out _);

    /// <summary><see cref="Fill(in TlbEntry)"/>, also giving the index in <see cref="E"/> of the way it wrote.</summary>
    public TlbEntry Fill(in TlbEntry entry, out int way)
    {
        way = ChooseWay(in entry);
        TlbEntry replaced = E[way];
        WriteWay(way, in entry);
        return replaced;
    }

    /// <summary>
    /// The way (index in E) a fill of <paramref name="entry"/> overwrites: an entry for the same page and tag if there is one, else
    /// the first invalid way, else the victim the policy picks. One pass over the set finds all three candidates. Advances the
    /// Random policy's generator when it picks, so every choice must be followed by its <see cref="WriteWay"/>. The caller may
    /// look at the way's old entry in between (the L1 fills drop the fast entries that point at it, Mmu.DropFilled) without a
    /// copy of it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal int ChooseWay(in TlbEntry entry)
    {
        int set = (int)entry.Vpn & _setMask, b = set * Ways;
        int free = -1, oldest = 0;
        long oldestStamp = long.MaxValue;   // stamps count fills and uses: they never reach 2^63
        ref TlbEntry x = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(E), b);   // the set lies inside E
        for (int k = 0; k < Ways; k++, x = ref Unsafe.Add(ref x, 1))
        {
            if (!x.Valid) { if (free < 0) free = k; continue; }
            if (x.Vpn == entry.Vpn && ((x.Flags ^ entry.Flags) & SameTagFlags) == 0 && x.Pcid == entry.Pcid) return b + k;
            TakeIfOlder(x.Stamp, k, ref oldestStamp, ref oldest);   // (only decides when every way is valid)
        }
        return b + Victim(free, oldest);
    }

    /// <summary>
    /// One step of a set scan's search for its LRU or FIFO victim: way <paramref name="k"/> becomes <paramref name="oldest"/> if its
    /// stamp is lower than the lowest so far (the lowest way on a tie). Written without a branch on the stamps (the JIT makes branches
    /// of conditional moves), which the host's predictor gets wrong a few times per fill: m is all ones when this stamp is lower.
    /// Stamps count fills and uses: they never reach 2^63.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TakeIfOlder(ulong stamp, int k, ref long oldestStamp, ref int oldest)
    {
        long d = (long)stamp - oldestStamp;
        long m = d >> 63;
        oldestStamp += d & m;
        oldest ^= (oldest ^ k) & (int)m;
    }

    /// <summary>
    /// The way of a set a fill writes when no entry has the new entry's tag: <paramref name="free"/> (the first invalid way, or -1),
    /// else the policy's victim (<paramref name="oldest"/>, the lowest stamp, for LRU and FIFO; the next pseudo-random way for Random).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Victim(int free, int oldest)
    {
        if (free >= 0) return free;
        if (Policy != Replacement.Random) return oldest;
        _rng ^= _rng << 13; _rng ^= _rng >> 7; _rng ^= _rng << 17;   // xorshift64: deterministic
        return (int)(_rng % (ulong)Ways);
    }

    /// <summary>
    /// The end of a fill: <paramref name="entry"/> written at <paramref name="way"/> (from <see cref="ChooseWay"/> or <see cref="ChosenWay"/>),
    /// the listener told what it replaces, and the entry stamped as its set's newest fill. Nothing is copied but the entry itself (the
    /// replaced one is read in place: returning it by value cost the miss path two 32-byte copies through the stack).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void WriteWay(int way, in TlbEntry entry)
    {
        ref TlbEntry v = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(E), way);   // a way of entry's set: inside E
        Listener?.OnFill(this, in entry, in v);
        int set = (int)entry.Vpn & _setMask;
        ref int counts = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_sizeCounts), set * 3);
        if (v.Valid) Unsafe.Add(ref counts, (int)v.Size)--;
        if (entry.Valid) Unsafe.Add(ref counts, (int)entry.Size)++;
        var ls = Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(LruSets), set);
        if (TracksOrder)
        {
            CountPresent(in v, -1);
            CountPresent(in entry, +1);
            int w = way - ls.First;
            ls.Valid = entry.Valid ? ls.Valid | 1 << w : ls.Valid & ~(1 << w);
            MoveToFront(ls, w);
        }
        v = entry;
        v.Stamp = ++ls.Clock;
    }

    /// <summary>The <see cref="TlbEntry.Flags"/> bits that, with the page number and PCID, say two entries are for the same page and tag (size, global).</summary>
    private const byte SameTagFlags = EntryFlags.Global | (3 << EntryFlags.SizeShift);

    /// <summary>What an invalidation selects (SDM vol. 3A §4.10.4.1).</summary>
    public enum Select : byte
    {
        /// <summary>Every entry, global or not.</summary>
        All,
        /// <summary>Every non-global entry of any PCID.</summary>
        AllNonGlobal,
        /// <summary>Non-global entries of one PCID.</summary>
        PcidNonGlobal,
        /// <summary>Entries of one PCID for one page (non-global), plus global entries for that page when asked.</summary>
        Page,
    }

    /// <summary>Invalidates the entries selected; returns how many valid entries were dropped.</summary>
    public int Invalidate(Select what, ushort pcid = 0, ulong la = 0, bool pageGlobalsToo = false)
    {
        int n = 0;
        var e = E;
        for (int i = 0; i < e.Length; i++)
        {
            ref TlbEntry x = ref e[i];
            if (!x.Valid) continue;
            bool drop = what switch
            {
                Select.All => true,
                Select.AllNonGlobal => !x.Global,
                Select.PcidNonGlobal => !x.Global && x.Pcid == pcid,
                _ => SamePage(in x, la) && (x.Global ? pageGlobalsToo : x.Pcid == pcid),
            };
            if (drop)
            {
                _sizeCounts[i / Ways * 3 + (int)x.Size]--;
                if (TracksOrder)
                {
                    var ls = LruSets[i / Ways];
                    ls.Valid &= ~(1 << (i - ls.First));
                    CountPresent(in x, -1);
                }
                x.Flags = 0;
                n++;
            }
        }
        return n;
    }

    /// <summary>Whether an entry maps the page of <paramref name="la"/> (for a 4 MiB fragment: the whole 4 MiB page).</summary>
    private bool SamePage(in TlbEntry x, ulong la)
    {
        if (KeyShift != 0) return la >> KeyShift == x.Vpn;
        if ((x.Flags & EntryFlags.Frag4M) != 0) return la >> 22 == x.Vpn >> 1;
        return la >> Shift(x.Size) == x.Vpn;
    }

    /// <summary>Number of valid entries.</summary>
    public int Count()
    {
        int n = 0;
        foreach (ref readonly var x in E.AsSpan()) if (x.Valid) n++;
        return n;
    }
}
