namespace Emu64.Mmu;

/// <summary>
/// Observes the TLB model's slow paths for the `tlb` trace: every fill of a TLB or paging-structure-cache
/// array (with the valid entry it replaces, if any: an eviction) and every invalidation by cause. The model
/// calls it through one nullable field, so with no listener (tracing off) it costs a null test on paths
/// that already walk or fill; the hit path never sees it. Formatting lives in Emu64.Debugging.
/// </summary>
public interface ITlbListener
{
    /// <summary><paramref name="entry"/> is written into <paramref name="array"/> over <paramref name="replaced"/> (an eviction when that is valid and for another page).</summary>
    void OnFill(TlbArray array, in TlbEntry entry, in TlbEntry replaced);
    /// <summary>An architectural invalidation dropped <paramref name="tlbDropped"/> TLB and <paramref name="pscDropped"/> paging-structure-cache entries.</summary>
    void OnInvalidate(FlushCause cause, int tlbDropped, int pscDropped);
}

public sealed partial class Mmu
{
    private ITlbListener? _listener;

    /// <summary>The TLB event listener (null: none). Survives <see cref="Configure"/>.</summary>
    public ITlbListener? Listener
    {
        get => _listener;
        set { _listener = value; ApplyListener(); }
    }

    private void ApplyListener()
    {
        foreach (var a in _itlb) a.Listener = _listener;
        foreach (var a in _dtlb) a.Listener = _listener;
        foreach (var a in _stlb) a.Listener = _listener;
        foreach (var a in _psc) if (a != null) a.Listener = _listener;
    }
}
