using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Mmu;

/// <summary>
/// The host-side fast cache in front of the TLB model. It is not a structure of the model: it remembers,
/// per access kind (read/write/fetch × user/supervisor) and 4 KiB linear page (+ PCID), which modeled L1
/// entry (array and way) the model's own lookup found last time, the physical frame it gives, and that
/// the entry's rights allow the access (for either value of EFLAGS.AC, and for a write only with D=1).
/// A hit does exactly what the model's hit does — counts a lookup and a hit in that structure and
/// touches the entry's LRU stamp — without probing sets or checking rights again. (The count is kept in
/// the fast entry and added to the counters when the entry is replaced or the counters are read.)
///
/// Exactness rests on one rule: a fast entry is live only while the model's own lookup for its key would find the
/// same L1 entry with the same answer. Between changes to the L1 arrays that holds (LRU stamps aside, which the hit
/// keeps as the model would), so everything that could break it drops the entries it could break:
/// - every invalidation of TLB entries, every rebuild of the rights table (CR0.WP, CR4.SMEP/SMAP/PKE, PKRU,
///   EFER.LMA), every reconfiguration, and a frame that becomes code advance <see cref="_fastEpoch"/>, which drops all
///   fast entries at once;
/// - a fill of an L1 array drops only what it can change (<see cref="DropFilled"/>): the entries that point at the way
///   it overwrites, and the entries for the page it writes (a lookup for that page might now find the new entry first:
///   in an earlier array — 4 KiB before 2 MiB before 1 GiB — or at a lower way of the same set). For a 4 KiB entry both
///   are fast entries with that page's tag: the way's old entry matched only its own page, in its own PCID or, if
///   global, in any PCID; so the slots of that page for the structure's access kinds (read/write or fetch, user and
///   supervisor) in that PCID — or, for a global entry, in every PCID the fast cache has filled since the last epoch
///   (<see cref="_fastPcids"/>) — are the only ones to look at. A 2 MiB or 1 GiB entry, old or new, covers hundreds of
///   4 KiB pages, and a global one when more PCIDs were filled than the list holds: those advance the epoch as before.
///   Of the overwritten way's slots only those of the kinds filled for the way since its own fill can point at it
///   (<see cref="TlbArray.FastKinds"/>); and every L1 fill follows a lookup for its page in the current PCID that found
///   nothing, or an emptied fast cache, so the written page has fast entries to drop only for a global or a large entry
///   (<see cref="DropFilled"/>).
///   STLB and paging-structure-cache fills never change what an L1 lookup finds.
/// A dropped entry gets epoch 0, which no live epoch equals (it starts at 1 and only grows; compiled code that
/// inlines the test compares with the same value or with Native.NoDirectEpoch, ulong.MaxValue), and keeps its
/// pending <see cref="FastEntry.Hits"/> until it is refilled or the counters are read (<see cref="Fold"/>,
/// <see cref="FoldFastHits"/>), like an entry dropped by the epoch. The slot armed for same-page fetches is a fetch
/// slot: an iTLB fill counts its pending fetches first (FillFrom), a dTLB fill does not touch it.
/// CPL is part of the key (the user/supervisor table), the PCID is part of the tag.
/// Implicit (GDT/IDT/TSS) and probe accesses never use it.
///
/// With the TLB model off (<see cref="TlbConfig.Model"/> = false) the same cache is a plain page cache:
/// a miss walks the tables (A/D set, rights checked, nothing counted, no modeled structure filled) and
/// any CR3 write without NOFLUSH (its tag includes the PCID), CR4/CR0 write, INVLPG, INVPCID, PKRU write or
/// page fault empties it.
/// </summary>
public sealed partial class Mmu
{
    internal struct FastEntry
    {
        /// <summary>Linear page (bits 63:12) | PCID (bits 11:0).</summary>
        public ulong Tag;
        /// <summary>Physical address of the 4 KiB page.</summary>
        public ulong Frame;
        public ulong Epoch;
        /// <summary>
        /// The modeled entry's LRU stamp as this fast entry last saw it. While it equals its set's clock the entry is
        /// still the set's most recent use (stamps come only from advancing that clock), so a hit changes nothing and
        /// need not look at the array's entries.
        /// </summary>
        public ulong Stamp;
        /// <summary>The set of the modeled L1 array holding the entry when it replaces by LRU (the hit refreshes the entry's stamp), else null.</summary>
        public LruSet? Lru;
        public int Way;
        /// <summary>Counter base of the structure and context (<see cref="Ctr.Tlb"/>); -1 with the model off (nothing is counted).</summary>
        public int Counter;
        /// <summary>Hits through this entry not yet added to the counters (each is one lookup and one hit).</summary>
        public ulong Hits;
        /// <summary>
        /// The host address of the frame when a data access may go straight to it (<see cref="HostData"/>): for loads a
        /// RAM frame, for stores a RAM frame without decoded code (a frame that becomes code flushes the fast cache);
        /// 0 otherwise (MMIO, open bus, fetches). With it the entry is 64 bytes: one cache line, indexed by a shift.
        /// </summary>
        public nint Host;
    }

    /// <summary>Adds a fast entry's pending hits to the model's counters.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Fold(ref FastEntry f)
    {
        ulong h = f.Hits;
        if (h == 0 || f.Counter < 0) { f.Hits = 0; return; }   // with the model off nothing is counted
        _ctr[f.Counter + Ctr.Lookups] += h;
        _ctr[f.Counter + Ctr.Hits] += h;
        f.Hits = 0;
    }

    /// <summary>
    /// Adds every fast entry's pending hits to the counters (before anything reads them: <see cref="Snapshot"/>,
    /// <see cref="ResetCounters"/>). Entries dropped by the epoch keep their pending hits until folded, so none is lost.
    /// </summary>
    private void FoldFastHits()
    {
        FlushFetch();
        var fast = _fast;
        for (int i = 0; i < fast.Length; i++) Fold(ref fast[i]);
    }

    private const int FastBits = 8, FastSets = 1 << FastBits;
    // index: (acc & 7) << FastBits | linear page & (FastSets - 1); acc & 7 = kind (R 0, W 1, F 2) | user 4
    private readonly FastEntry[] _fast = new FastEntry[8 * FastSets];
    private ulong _fastEpoch = 1;
    private bool _model = true;

    /// <summary>Hits and fills of the fast cache (host-side diagnostics, not part of the model's counters).</summary>
    public ulong FastFills;

    /// <summary>Drops every fast-cache entry (after applying pending fetch hits: every change to the arrays but an L1 fill comes through here first).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void FlushFast()
    {
        if (_fetchSlot >= 0) FlushFetch();
        _fastEpoch++;
        _fastPcidCount = 0;
        _fastPcidOverflow = false;
    }

    /// <summary>
    /// The PCIDs of the fast entries filled since the epoch last advanced (the first <see cref="_fastPcidCount"/>), so that
    /// a fill or eviction of a global 4 KiB entry can find every fast entry for its page; when more PCIDs were filled than
    /// this holds, <see cref="_fastPcidOverflow"/> is set and such a fill advances the epoch instead.
    /// </summary>
    private readonly ushort[] _fastPcids = new ushort[8];
    private int _fastPcidCount;
    private bool _fastPcidOverflow;

    /// <summary>Records that a fast entry of <paramref name="pcid"/> is being filled (<see cref="_fastPcids"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void NotePcid(ushort pcid)
    {
        var list = _fastPcids;
        for (int k = 0; k < _fastPcidCount; k++) if (list[k] == pcid) return;
        if (_fastPcidCount < list.Length) list[_fastPcidCount++] = pcid;
        else _fastPcidOverflow = true;
    }

    /// <summary>
    /// For an L1 fill of <paramref name="filled"/> over <paramref name="replaced"/> in the iTLB (<paramref name="fetch"/>) or the
    /// dTLB: drops the fast entries the fill can change (the class comment says why these are all). Called just before the
    /// write (Mmu.FillFrom), so that the replaced entry is read in place: the drops touch only the fast cache, and what they may
    /// flush first (the armed fetch, FlushFetch) is an iTLB use, already counted before an iTLB fill and in another array than a
    /// dTLB fill's, so the order of the two changes nothing.
    /// <paramref name="replacedKinds"/> is the overwritten way's <see cref="TlbArray.FastKinds"/>: the access kinds of every fast
    /// entry filled for that way since the way itself was filled, so the only slots that can point at it.
    /// </summary>
    private void DropFilled(bool fetch, in TlbEntry replaced, byte replacedKinds, in TlbEntry filled)
    {
        // the epoch advanced: nothing is left to drop
        if (replaced.Valid && replacedKinds != 0 && !DropEntry(in replaced, replacedKinds)) return;
        // The written page: every L1 fill follows a lookup of the same structure for that page in the current PCID that found
        // nothing (a walk's fill, an STLB hit's refill), or an emptied fast cache (a D re-walk drops the page first). So no fast
        // entry of the current PCID for the page is live, and a non-global 4 KiB entry — of the current PCID, as a walk gives it
        // or as it matched the STLB lookup — can change the lookup of no other: only a global entry, which every PCID's lookup
        // finds, or a larger page, has fast entries to drop, of any of the structure's kinds (they point at other ways).
        // (A sieve over 4 KiB pages fills the dTLB on nearly every store.)
        if (filled.Global || filled.Size != PageSize.Size4K) DropEntry(in filled, fetch ? FetchKinds : DataKinds);
    }

    /// <summary>The <see cref="TlbArray.FastKinds"/> bit of a fast entry for access kind <paramref name="acc"/>: 1 &lt;&lt; (acc &amp; 7), as the table's index.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static byte KindBit(Access acc) => (byte)(1 << ((int)acc & 7));

    /// <summary>The kinds whose fast entries the dTLB answers (read, write; supervisor, user) and the iTLB's (fetch; supervisor, user).</summary>
    private const byte DataKinds = 1 << 0 | 1 << 1 | 1 << 4 | 1 << 5, FetchKinds = 1 << 2 | 1 << 6;

    /// <summary>
    /// Drops every fast entry of the access kinds in <paramref name="kinds"/> that can point at <paramref name="e"/> or answer for
    /// its page; false when that took advancing the epoch.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool DropEntry(in TlbEntry e, byte kinds)
    {
        if (e.Size != PageSize.Size4K) { FlushFast(); return false; }   // 512 or more 4 KiB pages: not worth finding
        ulong page = e.Vpn << 12;
        if (!e.Global) { DropFastPage(page, e.Pcid, kinds); return true; }
        if (_fastPcidOverflow) { FlushFast(); return false; }
        for (int k = 0; k < _fastPcidCount; k++) DropFastPage(page, _fastPcids[k], kinds);
        return true;
    }

    /// <summary>Drops the fast entries for <paramref name="page"/> in <paramref name="pcid"/> of each access kind in <paramref name="kinds"/> (<see cref="KindBit"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void DropFastPage(ulong page, ushort pcid, byte kinds)
    {
        int h = HashPcid(pcid);
        ulong tag = page | pcid;
        for (uint k = kinds; k != 0; k &= k - 1)
            DropSlot(ref FastSlotAt(System.Numerics.BitOperations.TrailingZeroCount(k) << FastBits, page, h), tag);
    }

    /// <summary>Drops one fast entry if it has <paramref name="tag"/> (epoch 0: never live again; its pending hits stay until folded).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void DropSlot(ref FastEntry f, ulong tag)
    {
        if (f.Tag == tag) f.Epoch = 0;
    }

    // ---- same-page fetches in a block chain -------------------------------------------------------------
    // The run loop translates RIP once per block. While a chain of blocks stays in one code page, each of
    // those fetches would hit the same fast entry: same counters, and the same LRU stamp advanced again. The
    // chain instead arms that entry (ArmFetch) and counts the repeats in _fetchPending; FlushFetch applies them
    // as that many hits (Hits += k, and the entry stamped as the array's most recent use) — the state k separate
    // hits leave, since nothing else touches an iTLB array in between: only fetches do, and the chain flushes
    // before any other fetch translation. Every path that changes or reads the arrays (FlushFast, the slow
    // paths, the invalidation hooks, the counters) flushes first, so no one can see the difference.

    /// <summary>The fast slot armed for same-page fetches (-1: none) and the fetches through it not yet counted.</summary>
    internal int _fetchSlot = -1;
    internal ulong _fetchPending;
    /// <summary>The armed entry's linear page (la &gt;&gt; 12) and physical frame, valid while <see cref="_fetchSlot"/> &gt;= 0.</summary>
    internal ulong _fetchPage, _fetchFrame;

    /// <summary>Counts the pending same-page fetches as hits through the armed entry and disarms it.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal void FlushFetch()
    {
        int s = _fetchSlot;
        if (s < 0) return;
        _fetchSlot = -1;
        ulong k = _fetchPending;
        _fetchPending = 0;
        if (k == 0) return;
        ref FastEntry f = ref _fast[s];
        f.Hits += k;
        Touch(ref f);   // k uses in a row leave what one leaves
    }

    /// <summary>
    /// A hit's use of the fast entry's modeled entry under LRU: <see cref="TlbArray.Use(LruSet, int)"/>, skipped without touching
    /// the array while <see cref="FastEntry.Stamp"/> is its set's clock (the entry is the set's most recent use already).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Touch(ref FastEntry f)
    {
        var lru = f.Lru;
        if (lru == null || f.Stamp == lru.Clock) return;
        TouchArray(ref f, lru);
    }

    /// <summary>
    /// <see cref="Touch"/>'s rarer half, out of line: the entry is not its set's most recent use as this fast entry last saw it.
    /// (A run of accesses to one page finds <c>Stamp == Clock</c> after the first, so the inlined part is two loads and a compare;
    /// so does code that alternates between pages of different sets, such as a kernel's stack and its data: with one clock per
    /// array every such alternation came here, 50 million times in the Debian boot to 1.42 x 10^9 instructions.)
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void TouchArray(ref FastEntry f, LruSet lru) => f.Stamp = lru.Array.Use(lru, f.Way);

    /// <summary>
    /// Whether the fast cache holds the translation of <paramref name="la"/>'s page for <paramref name="acc"/> (a data
    /// access) — what a translation of any address in the page would use now — and if so counts
    /// <paramref name="count"/> more hits through it, exactly as that many translations would (Hits, and the entry
    /// made the array's most recent use), and gives the physical page. For runs of stack instructions (StackRuns.cs).
    /// </summary>
    internal bool RepeatHits(ulong la, Access acc, ulong count, out ulong frame)
    {
        frame = 0;
        var cpu = _cpu;
        if (!cpu.PagingOn || (acc & (Access.Fetch | Access.Probe | Access.Implicit)) != 0) return false;
        ref FastEntry f = ref FastSlotHashed(la, acc, cpu.PcidHash);
        if (!Live(ref f, la, cpu.CurrentPcid)) return false;
        f.Hits += count;
        Touch(ref f);
        frame = f.Frame;
        return true;
    }

    /// <summary>
    /// The chain's fetch translation on entering a code page: counts the pending same-page fetches, translates
    /// <paramref name="la"/> as <see cref="Translate"/> does and arms the fast entry that answered for the next
    /// same-page fetches (<see cref="ArmFetch"/>) — on a fast hit without looking it up twice.
    /// </summary>
    /// The hit path is inlined into the run loop (it runs at every code-page change and after every SYSCALL, SYSRET and MOV
    /// CR3 of a chain); the rest is <see cref="TranslateAndArmMiss"/>.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong TranslateAndArm(ulong la, Access acc)
    {
        if (_fetchSlot >= 0) FlushFetch();
        var cpu = _cpu;
        if (cpu.PagingOn && (acc & (Access.Probe | Access.Implicit)) == 0)
        {
            int index = FastKindBase(acc) | (((int)(uint)(la >> 12) ^ cpu.PcidHash) & (FastSets - 1));   // FastSlotAt's index
            ref FastEntry f = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_fast), index);
            if (Live(ref f, la, cpu.CurrentPcid))
            {
                f.Hits++;   // Translate's hit
                Touch(ref f);
                _fetchSlot = index;
                _fetchPage = la >> 12;
                _fetchFrame = f.Frame;
                return f.Frame | (la & 0xFFF);
            }
        }
        return TranslateAndArmMiss(la, acc);
    }

    /// <summary>
    /// <see cref="TranslateAndArm"/> when its fast hit gives <paramref name="pa"/>: counts the pending same-page fetches, counts the hit
    /// and arms the entry as it does, and returns true; otherwise (no live fast entry, another physical address) changes nothing and
    /// returns false. For compiled regions' edges into another code page (Machine.EnterPage), which leave everything else to the chain.
    /// </summary>
    internal bool ArmFetchHit(ulong la, Access acc, ulong pa)
    {
        var cpu = _cpu;
        if (!cpu.PagingOn) return false;
        int index = FastKindBase(acc) | (((int)(uint)(la >> 12) ^ cpu.PcidHash) & (FastSets - 1));   // FastSlotAt's index
        ref FastEntry f = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_fast), index);
        if (!Live(ref f, la, cpu.CurrentPcid) || (f.Frame | (la & 0xFFF)) != pa) return false;
        if (_fetchSlot >= 0) FlushFetch();   // (counting the old entry's fetches changes no fast entry's tag or epoch)
        f.Hits++;
        Touch(ref f);
        _fetchSlot = index;
        _fetchPage = la >> 12;
        _fetchFrame = f.Frame;
        return true;
    }

    /// <summary><see cref="TranslateAndArm"/> without a live fast entry: the full translation, then the entry it filled armed.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private ulong TranslateAndArmMiss(ulong la, Access acc)
    {
        ulong pa = Translate(la, acc);
        ArmFetch(la, acc);
        return pa;
    }

    /// <summary>
    /// After a fetch translation of <paramref name="la"/>: arms its fast entry for same-page fetches and returns
    /// true, or returns false if no fast entry serves it (a probe, a disabled fast cache, a page with unusual rights).
    /// </summary>
    internal bool ArmFetch(ulong la, Access acc)
    {
        if (_fetchSlot >= 0) FlushFetch();
        if ((_cpu.CR0 & Emu64.Cpu.Cr0.Pg) == 0) return false;
        uint pcid = _cpu.CurrentPcid;
        ref FastEntry f = ref FastSlot(la, acc, pcid);
        if (!Live(ref f, la, pcid)) return false;
        _fetchSlot = (int)Unsafe.ByteOffset(ref MemoryMarshal.GetArrayDataReference(_fast), ref f) / Unsafe.SizeOf<FastEntry>();
        _fetchPage = la >> 12;
        _fetchFrame = f.Frame;
        return true;
    }

    /// <summary>
    /// The slot of a page in a PCID. The PCID is hashed into the index so that the same page under two PCIDs
    /// (kernel and user CR3 under PTI both map the entry code and its stack) does not evict itself.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref FastEntry FastSlot(ulong la, Access acc, uint pcid)
        => ref FastSlotHashed(la, acc, HashPcid(pcid));

    /// <summary>Whether fast entry <paramref name="f"/> answers for <paramref name="la"/>'s page in <paramref name="pcid"/> now (its tag, and no flush since it was filled).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Live(ref FastEntry f, ulong la, uint pcid) => f.Tag == ((la & ~0xFFFUL) | pcid) && f.Epoch == _fastEpoch;

    /// <summary>The PCID's part of the fast-cache index (the CPU keeps it for the current PCID: <see cref="CpuCore.PcidHash"/>).</summary>
    internal static int HashPcid(uint pcid) => (int)((pcid * 0x9E3779B1u) >> (32 - FastBits));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref FastEntry FastSlotHashed(ulong la, Access acc, int pcidHash) => ref FastSlotAt(FastKindBase(acc), la, pcidHash);

    /// <summary>The slot of a page for the access kind whose index base is <paramref name="kindBase"/> (<see cref="FastKindBase"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref FastEntry FastSlotAt(int kindBase, ulong la, int pcidHash)
        => ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_fast), kindBase | (((int)(uint)(la >> 12) ^ pcidHash) & (FastSets - 1)));

    /// <summary>A fast-cache miss: the model's (or the plain walker's) translation, then a fast entry if the answer may be reused.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private ulong TranslateMiss(ulong la, Access acc)
    {
        if (_pretranslated) return TakePretranslated(la, acc);
        if (_fetchSlot >= 0 && (acc & Access.Fetch) != 0) FlushFetch();   // a data access leaves the iTLB alone (see TranslateModel)
        if (!_model) return TranslatePlain(la, acc);
        return ModelLookup(la, acc, fastFill: true);
    }

    /// <summary>
    /// Compiled code's miss path for a data access of <paramref name="acc"/> (a read or a write with the CPU's
    /// <see cref="CpuCore.DataAccess"/>) inside one page, whose fast slot (<paramref name="kindBase"/>: the CPU's FastReadBase or
    /// FastWriteBase) it found not live or without a host frame: what the instruction's handler would do up to the memory access
    /// itself — the translation <see cref="Translate"/> makes when the slot is not live — and the host address of <paramref name="la"/> when the access goes to RAM
    /// (to RAM without decoded code for a write) and nothing on the way ended the block. Otherwise null, and then the
    /// instruction's handler runs (the method spills and resumes, Cpu/BlockCompiler.Native.cs): for a slot that is live without a
    /// host frame (MMIO, a code frame) nothing was done and the handler's own path follows; after a translation, its answer — the
    /// physical address — is kept (<see cref="_pretranslated"/>) and the handler's translation of the same
    /// access takes it instead of translating again (<see cref="TakePretranslated"/>), so every counter and every LRU stamp is
    /// what the handler's own path leaves. The caller has checked the direct data path (paging on, no data breakpoints), 64-bit
    /// mode, the page and the canonical address, as the handler's way to this point does.
    /// </summary>
    internal unsafe byte* DataMiss(ulong la, Access acc, int kindBase)
    {
        var cpu = _cpu;
        uint pcid = cpu.CurrentPcid;
        // The method's own probe of this slot is HostData's (same slot, same test, with the epoch its prologue read: after each call
        // here the method returns and is entered again): a live slot has no host frame (MMIO, a code frame), and the handler's path
        // is Translate's hit
        ref FastEntry f = ref FastSlotAt(kindBase, la, cpu.PcidHash);
        if (Live(ref f, la, pcid)) return null;
        // TranslateMiss for a data access. A fault it raises leaves through the compiled method, which spilled the state as the
        // interpreter has it before the instruction: the run loop delivers it as it would the handler's, the same translation made once.
        ulong pa = _model ? ModelLookup(la, acc, fastFill: true) : TranslatePlain(la, acc);
        ulong frame = pa & ~0xFFFUL;
        byte* host = (acc & Access.Write) != 0 ? _mem.PlainRamFrame(frame) : _mem.RamFrame(frame);
        if (host != null && !cpu.ExitBlock)
        {
            MissLa = la;
            return MissHost = host + (pa & 0xFFF);
        }
        // MMIO, a store into code, or an A/D write that ended the block: the handler does the access. The slot the translation
        // filled (live, without a host frame, or with one under an ended block) is dropped, so that the handler's probes miss
        // and reach TakePretranslated; a fast entry's absence changes no count (the class comment).
        if (Live(ref f, la, pcid)) f.Epoch = 0;
        Pretranslate(la, acc, pa);
        return null;
    }

    /// <summary>The last access <see cref="DataMiss"/> gave a host address for, and that address (compiled code reads them back after it returned and was entered again).</summary>
    internal ulong MissLa;
    internal unsafe byte* MissHost;

    /// <summary>A translation made ahead of the handler's (<see cref="DataMiss"/>), for its next <see cref="TranslateMiss"/>.</summary>
    private bool _pretranslated;
    private ulong _preLa, _prePa;
    private Access _preAcc;

    private void Pretranslate(ulong la, Access acc, ulong pa)
    {
        _pretranslated = true;
        _preLa = la;
        _preAcc = acc;
        _prePa = pa;
    }

    /// <summary>
    /// The translation <see cref="DataMiss"/> made for the access the handler makes now: its physical address. The handler's first translation is that access (nothing runs in between: the method returns, and BlockCompiler.Resume
    /// runs the handler); anything else is a compiler bug, reported as one rather than answered with another access's translation.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private ulong TakePretranslated(ulong la, Access acc)
    {
        _pretranslated = false;
        if (la != _preLa || acc != _preAcc)
            throw new InvalidOperationException($"compiled code translated {_preLa:x} ({_preAcc}) ahead of its handler, which translates {la:x} ({acc})");
        return _prePa;
    }

    /// <summary>
    /// When set (tests), nothing is entered into the fast cache, so every access takes the model's own lookup; the
    /// counters and replacement state must come out the same either way.
    /// </summary>
    internal bool FastCacheDisabled;

    /// <summary>Records the L1 entry the model's lookup for (la, PCID) now finds, if it allows the access outright.</summary>
    private void FastFill(ulong la, Access acc, ulong pa)
    {
        if (FastCacheDisabled) return;
        ushort pcid = _cpu.CurrentPcid;
        var l1 = (acc & Access.Fetch) != 0 ? _itlb : _dtlb;
        for (int k = 0; k < l1.Length; k++)
        {
            var a = l1[k];
            int i = a.Find(la, pcid, a.OnlySize, touch: false);
            if (i < 0) continue;
            FastFillEntry(a, i, la, acc, pa, pcid);
            return;
        }
    }

    /// <summary>
    /// Records entry <paramref name="i"/> of L1 array <paramref name="a"/> — which the caller knows is the entry the model's lookup
    /// for (la, <paramref name="pcid"/>) finds now (<see cref="FastFill"/> looks it up) — if it allows the access outright.
    /// </summary>
    private void FastFillEntry(TlbArray a, int i, ulong la, Access acc, ulong pa, ushort pcid)
    {
        if (PermKey() != _permKey) return;   // the rights table is stale: let the model path rebuild it first
        FastFillCurrent(a, i, la, acc, pa, pcid);
    }

    /// <summary>
    /// <see cref="FastFillEntry"/> where the rights table is known to be current: in <see cref="TranslateSlow"/>, which brought it up
    /// to date on entry, and nothing on its way (lookups, a walk, A/D writes to guest memory, fills) changes CR0, CR4, EFER or PKRU.
    /// </summary>
    private void FastFillCurrent(TlbArray a, int i, ulong la, Access acc, ulong pa, ushort pcid)
    {
        if (FastCacheDisabled) return;
        ref TlbEntry e = ref a.E[i];
        if ((_perm[PermIndex(e.Rights, acc, false)] | _perm[PermIndex(e.Rights, acc, true)]) != 0) return;
        ulong frame = (e.Frame | (la & ((1UL << TlbArray.Shift(e.Size)) - 1))) & ~0xFFFUL;
        if (frame != (pa & ~0xFFFUL)) return;
        ref FastEntry f = ref FastSlot(la, acc, pcid);
        Fold(ref f);
        NotePcid(pcid);
        a.FastKinds[i] |= KindBit(acc);   // so that a fill over this way finds the slot (DropFilled)
        f.Tag = (la & ~0xFFFUL) | pcid;
        f.Frame = frame;
        f.Epoch = _fastEpoch;
        // The modeled entry's stamp as it is now: the lookup that found it or the fill that wrote it has just made it its set's most
        // recent use, so the first hit through this entry finds Stamp == Clock and has nothing to do unless the set was used since
        // (a stamp below the clock is never the clock again: stamps come only from advancing it)
        f.Stamp = e.Stamp;
        f.Lru = a.Policy == Replacement.Lru ? a.LruSets[a.SetOf(i)] : null;
        f.Way = i;
        f.Counter = Ctr.Tlb((acc & Access.Fetch) != 0 ? TlbLevel.Itlb : TlbLevel.Dtlb, Context(acc), 0);
        f.Host = HostFor(frame, acc);
        FastFills++;
    }

    /// <summary>The host address a fast entry for <paramref name="acc"/> to <paramref name="frame"/> may give (<see cref="FastEntry.Host"/>).</summary>
    private unsafe nint HostFor(ulong frame, Access acc) => (acc & (Access.Read | Access.Write | Access.Fetch)) switch
    {
        Access.Read => (nint)_mem.RamFrame(frame),
        Access.Write => (nint)_mem.PlainRamFrame(frame),
        _ => 0,
    };

    /// <summary>
    /// The fast cache's hit path for a data access that goes straight to RAM, inlined into the memory accesses of
    /// handlers (Cpu.ReadLinear/WriteLinear): when the fast entry of <paramref name="la"/>'s page for this access kind
    /// (<paramref name="kindBase"/>: the index base of read or write at the current CPL), PCID and hash is live and
    /// has a host frame, it counts the hit exactly as <see cref="Translate"/>'s hit path does and returns the host
    /// address of <paramref name="la"/>. Otherwise it counts nothing and returns null: the caller translates.
    /// The caller checks that paging is on and that the access stays in the page. <paramref name="hits"/> &gt; 1: that
    /// many accesses to the page in a row (a run of PUSH or POP, Isa/StackRuns.cs), each of them a hit.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal unsafe byte* HostData(ulong la, int kindBase, int pcidHash, uint pcid, ulong hits = 1)
    {
        ref FastEntry f = ref FastSlotAt(kindBase, la, pcidHash);
        if (!Live(ref f, la, pcid) || f.Host == 0) return null;
        f.Hits += hits;
        Touch(ref f);
        return (byte*)f.Host + (la & 0xFFF);
    }

    /// <summary>The fast cache's first entry, for compiled code that indexes it itself (Cpu/BlockCompiler.Native.cs).</summary>
    internal ref FastEntry FastTable => ref MemoryMarshal.GetArrayDataReference(_fast);

    /// <summary>The epoch a live fast entry carries now (it changes only inside handlers and translations).</summary>
    internal ulong FastEpoch => _fastEpoch;

    /// <summary>
    /// <paramref name="k"/> iterations of REP MOVS at once (Isa/Strings.cs), each a read of the source page then a write of the
    /// destination page, when both fast entries (<paramref name="readBase"/>, <paramref name="writeBase"/>: read and write
    /// at the current CPL) are live with host frames: every one of those 2k accesses would hit them, so this counts them
    /// exactly as they would be counted and returns both host addresses; otherwise it counts nothing and returns false.
    /// The LRU state after the alternating uses: if the two hits use different entries of one LRU set, each use is a new
    /// most-recent use (the set's clock advances 2k times, the source's entry stamped one before the destination's); if they
    /// use one entry, or entries of two sets, each set sees one entry used k times in a row, which leaves what one use
    /// leaves (<see cref="Touch"/>).
    /// </summary>
    internal unsafe bool CopyRun(ulong srcLa, ulong dstLa, int readBase, int writeBase, int pcidHash, uint pcid, ulong k, out byte* src, out byte* dst)
    {
        src = dst = null;
        ref FastEntry a = ref FastSlotAt(readBase, srcLa, pcidHash);
        if (!Live(ref a, srcLa, pcid) || a.Host == 0) return false;
        ref FastEntry b = ref FastSlotAt(writeBase, dstLa, pcidHash);
        if (!Live(ref b, dstLa, pcid) || b.Host == 0) return false;
        a.Hits += k;
        b.Hits += k;
        Touch(ref a);
        Touch(ref b);
        var lru = a.Lru;
        if (k > 1 && lru != null && lru == b.Lru && a.Way != b.Way)
        {
            // After the first pair the source's entry is stamped clock - 1 and the destination's clock; each further pair
            // advances the clock twice and leaves the same order.
            lru.Clock += 2 * (k - 1);
            lru.Array.E[a.Way].Stamp = a.Stamp = lru.Clock - 1;
            lru.Array.E[b.Way].Stamp = b.Stamp = lru.Clock;
        }
        src = (byte*)a.Host + (srcLa & 0xFFF);
        dst = (byte*)b.Host + (dstLa & 0xFFF);
        return true;
    }

    /// <summary>The fast-cache index base of a data access of kind <paramref name="acc"/> (Read or Write | User).</summary>
    internal static int FastKindBase(Access acc) => ((int)acc & 7) << FastBits;

    /// <summary>Translation with the model off: a walk (A/D set, rights checked, nothing counted), cached in the fast cache.</summary>
    private ulong TranslatePlain(ulong la, Access acc)
    {
        var cpu = _cpu;
        var w = new WalkResult();
        Walk(la, 0, cpu.CR3, ref w, WalkMode.NoFill);
        if (w.Fault) { FlushFast(); return RaisePageFault(la, w.FaultCode | ErrorBits(acc)); }
        ushort p = Recheck(w.Rights, acc);
        if ((p & PermFault) != 0) { FlushFast(); return RaisePageFault(la, (uint)(p & 0xFF) | FetchBit(acc)); }
        bool write = (acc & Access.Write) != 0;
        SetAccessedDirty(ref w, write);
        ulong pa = w.Frame | (la & ((1UL << TlbArray.Shift(w.Size)) - 1));
        if ((acc & (Access.Implicit | Access.Probe)) == 0)
        {
            bool wp = (cpu.CR0 & Emu64.Cpu.Cr0.Wp) != 0, smep = (cpu.CR4 & Emu64.Cpu.Cr4.Smep) != 0, smap = (cpu.CR4 & Emu64.Cpu.Cr4.Smap) != 0;
            bool pke = (cpu.CR4 & Emu64.Cpu.Cr4.Pke) != 0 && cpu.LongMode;
            if ((Decide(w.Rights, acc, false, wp, smep, smap, pke, cpu.Pkru) | Decide(w.Rights, acc, true, wp, smep, smap, pke, cpu.Pkru)) == 0)
            {
                uint pcid = cpu.CurrentPcid;
                ref FastEntry f = ref FastSlot(la, acc, pcid);
                Fold(ref f);
                f.Tag = (la & ~0xFFFUL) | pcid;
                f.Frame = pa & ~0xFFFUL;
                f.Epoch = _fastEpoch;
                f.Stamp = ulong.MaxValue;
                f.Lru = null;
                f.Way = 0;
                f.Counter = -1;
                f.Host = HostFor(pa & ~0xFFFUL, acc);
                FastFills++;
            }
        }
        return pa;
    }

    /// <summary>Whether the TLB model is on (<see cref="TlbConfig.Model"/>).</summary>
    public bool ModelOn => _model;
}
