using Emu64.Cpu;

namespace Emu64.Mmu;

/// <summary>One valid TLB or paging-structure-cache entry, as a debugger shows it.</summary>
public readonly record struct TlbEntryView(
    string Array, int Set, int Way, ulong LinearBase, ulong PhysicalBase, PageSize Size, ushort Pcid, bool Global,
    bool Writable, bool User, bool NoExec, bool Dirty, int Pkey)
{
    public override string ToString()
        => $"{Array,-9} set {Set,4} way {Way,2}  {LinearBase:x16} -> {PhysicalBase:x12} {SizeName(Size)} pcid {Pcid,4} "
         + $"{(Global ? "G" : "-")}{(Writable ? "W" : "-")}{(User ? "U" : "-")}{(NoExec ? "X" : "-")}{(Dirty ? "D" : "-")} key {Pkey}";

    public static string SizeName(PageSize s) => s switch { PageSize.Size4K => "4K", PageSize.Size2M => "2M", _ => "1G" };
}

/// <summary>Where a translation was found.</summary>
public enum TranslationSource : byte { NotMapped, Memory, PscPde, PscPdpte, PscPml4e, PscPml5e, Stlb, L1Tlb }

/// <summary>One level of a page walk as read from memory.</summary>
public readonly record struct WalkLevel(int Level, string Name, ulong EntryAddress, ulong Value)
{
    public bool Present => (Value & PteFlags.Present) != 0;
    public bool LargePage => Level is 2 or 3 && (Value & PteFlags.Huge) != 0;

    /// <summary>The entry's flags in ptdump style: RW USR PWT PCD A D PSE GLB NX, and the key of a leaf.</summary>
    public string Flags
    {
        get
        {
            if (!Present) return "not present";
            var f = new List<string> { (Value & PteFlags.Write) != 0 ? "RW" : "ro", (Value & PteFlags.User) != 0 ? "USR" : "   " };
            if ((Value & PteFlags.Pwt) != 0) f.Add("PWT");
            if ((Value & PteFlags.Pcd) != 0) f.Add("PCD");
            if ((Value & PteFlags.Accessed) != 0) f.Add("A");
            bool leaf = Level == 1 || LargePage;
            if (leaf && (Value & PteFlags.Dirty) != 0) f.Add("D");
            if (LargePage) f.Add("PSE");
            if (leaf && (Value & PteFlags.Global) != 0) f.Add("GLB");
            if ((Value & PteFlags.Nx) != 0) f.Add("NX");
            if (leaf) f.Add($"key={(Value & PteFlags.PkeyMask) >> PteFlags.PkeyShift}");
            return string.Join(' ', f);
        }
    }

    public override string ToString() => $"{Name,-6} @ {EntryAddress:x12} = {Value:x16}  {Flags}";
}

/// <summary>A side-effect-free page walk of one address under one CR3, with where the CPU would find it.</summary>
public sealed record WalkTrace(
    ulong LinearAddress, ulong Cr3, ushort Pcid, IReadOnlyList<WalkLevel> Levels, TranslationSource FoundIn,
    ulong? Physical, PageSize Size, string? Problem);

/// <summary>
/// The debugger-facing view of the MMU (used by the gdb stub's monitor commands and <c>emu64 debug</c>).
/// Nothing here changes the guest, the TLB (no LRU update), A/D bits or counters.
/// </summary>
public sealed partial class Mmu
{
    private static readonly string[] LevelNames = { "", "PTE", "PDE", "PDPTE", "PML4E", "PML5E" };

    /// <summary>Every valid entry of one TLB structure.</summary>
    public List<TlbEntryView> Entries(TlbLevel level)
    {
        FlushFetch();
        var list = new List<TlbEntryView>();
        foreach (var a in Arrays(level)) AddEntries(a, list);
        return list;
    }

    /// <summary>Every valid entry of the paging-structure cache of a level (2 = PDE … 5 = PML5E); LinearBase is the first address it covers.</summary>
    public List<TlbEntryView> PagingStructureCacheEntries(int level)
    {
        var list = new List<TlbEntryView>();
        AddEntries(_psc[level], list);
        return list;
    }

    private static void AddEntries(TlbArray a, List<TlbEntryView> list)
    {
        for (int i = 0; i < a.E.Length; i++)
        {
            var e = a.E[i];
            if (!e.Valid) continue;
            int shift = a.KeyShift != 0 ? a.KeyShift : TlbArray.Shift(e.Size);
            ulong lin = e.Vpn << shift;
            if ((lin & (1UL << 56)) != 0 && shift < 48) lin |= 0xFF00_0000_0000_0000UL;       // sign-extend (5-level)
            else if ((lin & (1UL << 47)) != 0) lin |= 0xFFFF_0000_0000_0000UL;               // sign-extend (4-level)
            list.Add(new TlbEntryView(a.Name, i / a.Ways, i % a.Ways, lin, e.Frame, e.Size, e.Pcid, e.Global,
                (e.Rights & Rights.W) != 0, (e.Rights & Rights.U) != 0, (e.Rights & Rights.Xd) != 0,
                (e.Rights & Rights.D) != 0, e.Rights >> Rights.PkeyShift));
        }
    }

    /// <summary>
    /// Walks <paramref name="la"/> under <paramref name="cr3"/> (default: the current CR3) reading memory only:
    /// each level's entry address, value and flags, the physical address, and where the CPU would find the
    /// translation now — an L1 TLB, the STLB, a paging-structure cache (the deepest level it would skip to)
    /// or memory. The PCID is CR3[11:0] when CR4.PCIDE=1.
    /// </summary>
    public WalkTrace TraceWalk(ulong la, ulong? cr3 = null, bool fetch = false)
    {
        var cpu = _cpu;
        ulong root = cr3 ?? cpu.CR3;
        ushort pcid = cpu.PcidOn ? (ushort)(root & Emu64.Cpu.Cr3.PcidMask) : (ushort)0;
        int top = (cpu.CR4 & Emu64.Cpu.Cr4.La57) != 0 ? 5 : 4;
        bool nxe = (cpu.EFER & Emu64.Cpu.Efer.Nxe) != 0;
        var levels = new List<WalkLevel>();
        string? problem = null;
        ulong? phys = null;
        var size = PageSize.Size4K;
        if (!cpu.PagingOn) return new WalkTrace(la, root, pcid, levels, TranslationSource.Memory, la, size, "paging is off");
        ulong table = root & PhysAddrMask;
        if (!cpu.LongMode) { la &= 0xFFFFFFFF; top = 0; TraceLegacy(la, root, cr3 is null, levels, ref problem, ref phys, ref size); }
        for (int level = top; level >= 1; level--)
        {
            int shift = 12 + 9 * (level - 1);
            ulong addr = table + ((la >> shift) & 0x1FF) * 8;
            ulong pte = _mem.IsRam(addr, 8) ? _mem.Read(addr, 8) : 0;
            levels.Add(new WalkLevel(level, LevelNames[level], addr, pte));
            if ((pte & PteFlags.Present) == 0) { problem = $"{LevelNames[level]} not present"; break; }
            if (ReservedBitsSet(pte, level, nxe)) { problem = $"{LevelNames[level]} has reserved bits set"; break; }
            if (level == 1 || (pte & PteFlags.Huge) != 0)
            {
                size = (PageSize)(level - 1);
                phys = (pte & PhysAddrMask & ~((1UL << shift) - 1)) | (la & ((1UL << shift) - 1));
                break;
            }
            table = pte & PhysAddrMask;
        }
        var source = phys is null ? TranslationSource.NotMapped : TranslationSource.Memory;
        // Where the CPU would look first: L1, then STLB, then the deepest paging-structure cache.
        bool onlyCurrent = cr3 is null || (root & PhysAddrMask) == (cpu.CR3 & PhysAddrMask);
        if (FindIn(fetch ? _itlb : _dtlb, la, pcid) is { } l1 && onlyCurrent) { source = TranslationSource.L1Tlb; phys = l1; }
        else if (FindIn(_stlb, la, pcid) is { } l2 && onlyCurrent) { source = TranslationSource.Stlb; phys = l2; }
        else if (_pscEnabled && onlyCurrent)
        {
            for (int l = 2; l <= Math.Max(top, 2); l++)
                if (_psc[l].FindKey(la, pcid, touch: false) >= 0) { source = (TranslationSource)((int)TranslationSource.PscPde + l - 2); break; }
        }
        return new WalkTrace(la, root, pcid, levels, source, phys, size, source is TranslationSource.L1Tlb or TranslationSource.Stlb ? null : problem);
    }

    /// <summary>
    /// <see cref="TraceWalk"/> for 32-bit and PAE paging: the PDPTE (from the registers for the current CR3, else from
    /// memory), then the PDE and PTE, 4 or 8 bytes wide.
    /// </summary>
    private void TraceLegacy(ulong la, ulong root, bool current, List<WalkLevel> levels, ref string? problem, ref ulong? phys, ref PageSize size)
    {
        var cpu = _cpu;
        bool pae = (cpu.CR4 & Emu64.Cpu.Cr4.Pae) != 0, pse = (cpu.CR4 & Emu64.Cpu.Cr4.Pse) != 0;
        bool nxe = (cpu.EFER & Emu64.Cpu.Efer.Nxe) != 0;
        ulong table = root & 0xFFFFF000UL;
        if (pae)
        {
            int i = (int)(la >> 30);
            ulong addr = PdpteAddress(root, i);
            ulong pdpte = current ? _pdpte[i] : _mem.IsRam(addr, 8) ? _mem.Read(addr, 8) : 0;
            levels.Add(new WalkLevel(3, "PDPTE", addr, pdpte));
            if ((pdpte & PteFlags.Present) == 0) { problem = "PDPTE not present"; return; }
            if (PdpteInvalid(pdpte)) { problem = "PDPTE has reserved bits set"; return; }
            table = pdpte & PhysAddrMask;
        }
        for (int level = 2; level >= 1; level--)
        {
            int width = pae ? 8 : 4, bits = pae ? 9 : 10;
            ulong addr = table + ((la >> (12 + bits * (level - 1))) & ((1UL << bits) - 1)) * (ulong)width;
            ulong pte = _mem.IsRam(addr, width) ? _mem.Read(addr, width) : 0;
            levels.Add(new WalkLevel(level, LevelNames[level], addr, pte));
            if ((pte & PteFlags.Present) == 0) { problem = $"{LevelNames[level]} not present"; return; }
            if (pae ? ReservedBitsPae(pte, level, nxe) : ReservedBits32(pte, level, pse)) { problem = $"{LevelNames[level]} has reserved bits set"; return; }
            bool large = level == 2 && (pte & PteFlags.Huge) != 0 && (pae || pse);
            if (level == 1 || large)
            {
                size = large ? PageSize.Size2M : PageSize.Size4K;   // a 4 MiB page reports the 2 MiB half the TLB would hold
                ulong frame = !large ? pte & (pae ? PhysAddrMask : 0xFFFFF000UL)
                            : pae ? pte & PhysAddrMask & ~0x1FFFFFUL
                            : Frame4M(pte) | (la & 0x200000UL);
                phys = frame | (la & ((1UL << TlbArray.Shift(size)) - 1));
                return;
            }
            table = pte & (pae ? PhysAddrMask : 0xFFFFF000UL);
        }
    }

    private static ulong? FindIn(TlbArray[] structure, ulong la, ushort pcid)
    {
        foreach (var a in structure)
        {
            int i = a.FindAny(la, pcid, touch: false);
            if (i >= 0) return a.E[i].Frame | (la & ((1UL << TlbArray.Shift(a.E[i].Size)) - 1));
        }
        return null;
    }

    /// <summary>Translates for a debugger: the current TLB view, else a walk; never faults, sets no A/D bit, counts nothing.</summary>
    public bool TryProbe(ulong la, Access acc, out ulong physical)
    {
        physical = Translate(la, acc | Access.Probe);
        return physical != NoTranslation;
    }
}
