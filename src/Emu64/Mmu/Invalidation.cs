namespace Emu64.Mmu;

/// <summary>
/// What changes of paging state do to cached translations. The foundation keeps only a host-side
/// cache, so each event drops all of it; the PCID-tagged TLB model replaces these bodies with the
/// exact invalidation rules of SDM vol. 3A §4.10.4.
/// </summary>
public sealed partial class Mmu
{
    /// <summary>Drops the host-side shortcut cache only (no architectural effect).</summary>
    public void FlushHostCache() => FlushAll();

    /// <summary>MOV to CR3. Returns how many cached entries were dropped.</summary>
    public int OnCr3Write(ulong oldCr3, ulong newCr3, bool noFlush) { FlushAll(); return 0; }

    public void OnCr4Write(ulong oldCr4, ulong newCr4) => FlushAll();

    public void OnCr0Write(ulong oldCr0, ulong newCr0) => FlushAll();

    public void Invlpg(ulong la) => FlushPage(la);

    public void Invpcid(int type, ushort pcid, ulong la) => FlushAll();

    public void OnPkruWrite() => FlushAll();
}
