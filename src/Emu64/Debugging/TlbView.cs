namespace Emu64.Debugging;

/// <summary>One TLB or paging-structure-cache entry as the debugger shows it.</summary>
public readonly record struct TlbEntryView(string Structure, ulong Linear, ulong Physical, ulong PageSize, int Pcid, bool Global, bool Writable, bool User, bool NoExec);

/// <summary>
/// What the debugger, the gdb stub's monitor commands and the tlb trace see of the TLB: the machine's
/// PCID-tagged model (<see cref="MmuTlbView"/>). Kept as an interface so a test can show a fixed view.
/// </summary>
public interface ITlbView
{
    /// <summary>All valid entries, per structure (names such as "L1I-4K", "L1D-2M", "STLB", "PDE-cache").</summary>
    IEnumerable<TlbEntryView> Entries();
    /// <summary>Where a lookup of <paramref name="la"/> under <paramref name="pcid"/> would be satisfied, without changing counters or LRU state: "L1D", "STLB", "PDE cache", or "memory".</summary>
    string WhereFound(ulong la, int pcid, bool fetch);
    /// <summary>Counters as name/value pairs (lookups, hits, misses, walks, flushes by cause ...).</summary>
    IEnumerable<KeyValuePair<string, ulong>> Counters();
}

/// <summary>Finds the TLB view for a machine (the seam's single point of contact).</summary>
public static class TlbViews
{
    /// <summary>Makes the view of a machine; tests may replace it.</summary>
    public static Func<Machine, ITlbView?>? Provider = m => new MmuTlbView(m);

    /// <summary>The machine's TLB view, or null when it runs with the model off (<c>--tlb-config model=off</c>).</summary>
    public static ITlbView? For(Machine m) => m.Cpu.Mmu.ModelOn ? Provider?.Invoke(m) : null;

    public const string NotModeled = "the TLB model is off (--tlb-config model=off): no modeled structures, every miss is a page walk in memory";
}

public enum TlbEventKind : byte { Fill, Evict, Invalidate, Flush }

/// <summary>
/// A TLB event for the trace: a fill or an eviction of one entry (structure, linear page, PCID, frame, page
/// size, global), an invalidation by an instruction or a page fault, or a flush by a CR3 write (with its
/// cause and how many entries it dropped). For a paging-structure cache the frame is the next table and
/// the page size the span one entry covers.
/// </summary>
public readonly record struct TlbEvent(TlbEventKind Kind, string Structure, ulong Linear, int Pcid, bool Global, string Cause, int Dropped,
    ulong Frame = 0, ulong PageSize = 0, int PscDropped = 0);

/// <summary>The TLB view backed by the machine's PCID-tagged TLB model (Mmu.Entries, TraceWalk, Snapshot).</summary>
public sealed class MmuTlbView(Machine m) : ITlbView
{
    public IEnumerable<TlbEntryView> Entries()
    {
        var mmu = m.Cpu.Mmu;
        foreach (var level in new[] { Emu64.Mmu.TlbLevel.Itlb, Emu64.Mmu.TlbLevel.Dtlb, Emu64.Mmu.TlbLevel.Stlb })
            foreach (var e in mmu.Entries(level)) yield return Convert(e);
        for (int l = 2; l <= 5; l++)
            foreach (var e in mmu.PagingStructureCacheEntries(l)) yield return Convert(e);
    }

    private static TlbEntryView Convert(Emu64.Mmu.TlbEntryView e)
        => new(e.Array, e.LinearBase, e.PhysicalBase, e.Size switch { Emu64.Mmu.PageSize.Size4K => 4096UL, Emu64.Mmu.PageSize.Size2M => 2UL << 20, _ => 1UL << 30 },
               e.Pcid, e.Global, e.Writable, e.User, e.NoExec);

    public string WhereFound(ulong la, int pcid, bool fetch) => m.Cpu.Mmu.TraceWalk(la, null, fetch).FoundIn switch
    {
        Emu64.Mmu.TranslationSource.L1Tlb => fetch ? "L1 ITLB" : "L1 DTLB",
        Emu64.Mmu.TranslationSource.Stlb => "STLB (L2 TLB)",
        Emu64.Mmu.TranslationSource.PscPde => "paging-structure cache (PDE): walk starts at the PT",
        Emu64.Mmu.TranslationSource.PscPdpte => "paging-structure cache (PDPTE): walk starts at the PD",
        Emu64.Mmu.TranslationSource.PscPml4e => "paging-structure cache (PML4E): walk starts at the PDPT",
        Emu64.Mmu.TranslationSource.PscPml5e => "paging-structure cache (PML5E): walk starts at the PML4",
        Emu64.Mmu.TranslationSource.NotMapped => "not mapped",
        _ => "memory (full page walk)",
    };

    public IEnumerable<KeyValuePair<string, ulong>> Counters()
    {
        foreach (var (k, v) in m.Cpu.Mmu.Snapshot().Named()) yield return new(k, v);
    }
}
