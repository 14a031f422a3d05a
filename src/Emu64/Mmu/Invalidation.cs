using Emu64.Cpu;
using Sel = Emu64.Mmu.TlbArray.Select;

namespace Emu64.Mmu;

/// <summary>
/// What changes of paging state do to the TLBs and paging-structure caches, exactly as SDM vol. 3A
/// §4.10.4.1 lists it, and never more. Each hook counts the event under its cause with the TLB and
/// paging-structure-cache entries it dropped.
/// </summary>
public sealed partial class Mmu
{
    /// <summary>EFER.NXE changed: no architectural invalidation; the rights table is rebuilt if needed.</summary>
    public void FlushHostCache() => OnModeChanged();

    /// <summary>
    /// MOV to CR3. PCIDE=0: the non-global entries of PCID 0 and its paging-structure-cache entries.
    /// PCIDE=1: those of the PCID in the new CR3[11:0], unless bit 63 (NOFLUSH) was set, when nothing is
    /// invalidated. Returns how many TLB and paging-structure-cache entries were dropped.
    /// </summary>
    public int OnCr3Write(ulong oldCr3, ulong newCr3, bool noFlush)
    {
        FlushFetch();   // the PCID may change: no fetch may count against the old one's entry
        if (!_model) { if (!noFlush) FlushFast(); return 0; }   // model off: a plain PCID-tagged page cache, emptied by a flushing CR3 write
        if (noFlush) { Count(FlushCause.Cr3NoFlush, 0, 0); return 0; }
        ushort pcid = (_cpu.CR4 & Emu64.Cpu.Cr4.Pcide) != 0 ? (ushort)(newCr3 & Emu64.Cpu.Cr3.PcidMask) : (ushort)0;
        int tlb = InvalidateTlb(Sel.PcidNonGlobal, pcid);
        int psc = InvalidatePsc(Sel.PcidNonGlobal, pcid);
        Count(FlushCause.Cr3, tlb, psc);
        return tlb + psc;
    }

    /// <summary>
    /// MOV to CR4. Changing PGE, or clearing PCIDE, invalidates everything including globals, for all PCIDs.
    /// Changing PAE, or setting SMEP, invalidates the current PCID's entries. Other bits invalidate nothing.
    /// </summary>
    public void OnCr4Write(ulong oldCr4, ulong newCr4)
    {
        ulong changed = oldCr4 ^ newCr4;
        if (!_model) { FlushFast(); OnModeChanged(); return; }
        if ((changed & Emu64.Cpu.Cr4.Pge) != 0 || ((oldCr4 & ~newCr4) & Emu64.Cpu.Cr4.Pcide) != 0)
            Count(FlushCause.Cr4, InvalidateTlb(Sel.All), InvalidatePsc(Sel.All));
        else if ((changed & Emu64.Cpu.Cr4.Pae) != 0 || ((~oldCr4 & newCr4) & Emu64.Cpu.Cr4.Smep) != 0)
        {
            ushort pcid = _cpu.CurrentPcid;
            Count(FlushCause.Cr4, InvalidateTlb(Sel.PcidNonGlobal, pcid), InvalidatePsc(Sel.PcidNonGlobal, pcid));
        }
        OnModeChanged();
    }

    /// <summary>MOV to CR0: clearing PG invalidates everything, globals and all PCIDs included.</summary>
    public void OnCr0Write(ulong oldCr0, ulong newCr0)
    {
        if (!_model) { FlushFast(); OnModeChanged(); return; }
        if ((oldCr0 & ~newCr0 & Emu64.Cpu.Cr0.Pg) != 0)
            Count(FlushCause.Cr0, InvalidateTlb(Sel.All), InvalidatePsc(Sel.All));
        OnModeChanged();
    }

    /// <summary>
    /// INVLPG: the entries for the page of <paramref name="la"/> in the current PCID, global entries for that
    /// page whatever their PCID, and every paging-structure-cache entry of the current PCID.
    /// </summary>
    public void Invlpg(ulong la)
    {
        if (!_model) { FlushFast(); return; }
        ushort pcid = _cpu.CurrentPcid;
        Count(FlushCause.Invlpg, InvalidateTlb(Sel.Page, pcid, la, pageGlobalsToo: true), InvalidatePsc(Sel.PcidNonGlobal, pcid));
    }

    /// <summary>
    /// INVPCID (operands already checked by the instruction): type 0 one address in one PCID (not globals) and
    /// that PCID's paging-structure-cache entries; type 1 one PCID's non-global entries; type 2 everything
    /// including globals; type 3 everything except globals.
    /// </summary>
    public void Invpcid(int type, ushort pcid, ulong la)
    {
        if (!_model) { if (type is < 0 or > 3) throw new ArgumentOutOfRangeException(nameof(type)); FlushFast(); return; }
        switch (type)
        {
            case 0: Count(FlushCause.Invpcid0, InvalidateTlb(Sel.Page, pcid, la), InvalidatePsc(Sel.PcidNonGlobal, pcid)); break;
            case 1: Count(FlushCause.Invpcid1, InvalidateTlb(Sel.PcidNonGlobal, pcid), InvalidatePsc(Sel.PcidNonGlobal, pcid)); break;
            case 2: Count(FlushCause.Invpcid2, InvalidateTlb(Sel.All), InvalidatePsc(Sel.All)); break;
            case 3: Count(FlushCause.Invpcid3, InvalidateTlb(Sel.AllNonGlobal), InvalidatePsc(Sel.All)); break;
            default: throw new ArgumentOutOfRangeException(nameof(type));
        }
    }

    /// <summary>WRPKRU: rights are checked at each access, so nothing is invalidated.</summary>
    public void OnPkruWrite() { if (!_model) FlushFast(); OnModeChanged(); }
}
