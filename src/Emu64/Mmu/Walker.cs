using System.Runtime.CompilerServices;
using Emu64.Cpu;

namespace Emu64.Mmu;

/// <summary>Five 64-bit slots, one per paging level (no allocation).</summary>
[InlineArray(5)]
public struct LevelSlots { private ulong _e; }

/// <summary>
/// The outcome of a page walk. Entries are listed top level first: <c>EntryAddr[k]</c> and
/// <c>EntryValue[k]</c> for k in [0, Count), at paging level <c>TopLevel - k</c>. The first
/// <see cref="FirstFromMemory"/> of them came from a paging-structure cache (only the deepest one's
/// content is known then) and the rest were read from memory.
/// </summary>
public struct WalkResult
{
    public LevelSlots EntryAddr, EntryValue;
    public int Count, FirstFromMemory, TopLevel;
    /// <summary>Paging level of the paging-structure-cache entry the walk started from (2 = PDE … 5 = PML5E), 0 if none.</summary>
    public int PscLevel;
    public int MemRefs;
    /// <summary>Rights combined over the levels the paging-structure-cache entry stands for.</summary>
    public byte PscRights;
    public ulong Frame;
    public PageSize Size;
    /// <summary>R/W, U/S, XD combined over the levels, D and the protection key of the leaf (<see cref="global::Emu64.Mmu.Rights"/>).</summary>
    public byte Rights;
    public bool Global;
    /// <summary>The paging structures hold 4-byte entries (32-bit paging): A/D are written back 4 bytes wide.</summary>
    public bool Narrow;
    /// <summary>
    /// The leaf is a 4 MiB page (32-bit paging with CR4.PSE): <see cref="Size"/> is then 2 MiB and <see cref="Frame"/> the
    /// 2 MiB half of the page that holds the address, which is how the TLB model caches it (docs/MMU.md).
    /// </summary>
    public bool Frag4M;
    /// <summary>True when the walk itself faulted (not present or reserved bit); FaultCode then holds P/RSVD only.</summary>
    public bool Fault;
    public uint FaultCode;

    public readonly ulong PageBytes => 1UL << TlbArray.Shift(Size);
    public readonly ulong Physical(ulong la) => Frame | (la & (PageBytes - 1));
    public readonly bool Writable => (Rights & global::Emu64.Mmu.Rights.W) != 0;
    public readonly bool User => (Rights & global::Emu64.Mmu.Rights.U) != 0;
    public readonly bool NoExec => (Rights & global::Emu64.Mmu.Rights.Xd) != 0;
    public readonly bool Dirty => (Rights & global::Emu64.Mmu.Rights.D) != 0;
    public readonly int Pkey => Rights >> global::Emu64.Mmu.Rights.PkeyShift;
}

/// <summary>What a walk may change: fill the paging-structure caches (a CPU access), nothing but count (NoFill), or nothing at all (Probe).</summary>
public enum WalkMode : byte { Fill, NoFill, Probe }

public sealed partial class Mmu
{
    /// <summary>
    /// Walks the paging structures for <paramref name="la"/> under <paramref name="cr3"/>. With 4-level paging
    /// the linear address splits as
    /// <code>
    ///  63      48 47    39 38    30 29    21 20    12 11       0
    /// | sign ext | PML4  |  PDPT  |   PD   |   PT   |  offset  |
    /// </code>
    /// and 5-level paging (CR4.LA57) adds a PML5 index in bits 56:48. Each level's 9-bit index picks an
    /// 8-byte entry in a 4 KiB table; PS=1 in a PDPTE or PDE ends the walk at a 1 GiB or 2 MiB page.
    /// The walk first looks for the deepest paging-structure-cache entry for the address and PCID and
    /// starts below it. It checks presence and reserved bits only; access rights are the caller's.
    /// </summary>
    public void Walk(ulong la, ushort pcid, ulong cr3, ref WalkResult r, WalkMode mode)
    {
        var cpu = _cpu;
        // Paging outside IA-32e mode (32-bit or PAE paging) has its own walker (LegacyWalker.cs): one test on the
        // walk path, none on the TLB-hit paths.
        if (!cpu.LongMode) { WalkLegacy(la, pcid, cr3, ref r, mode); return; }
        int top = (cpu.CR4 & Emu64.Cpu.Cr4.La57) != 0 ? 5 : 4;
        bool nxe = (cpu.EFER & Emu64.Cpu.Efer.Nxe) != 0;
        r.TopLevel = top;
        ulong table = cr3 & PhysAddrMask;
        int rights = Rights.W | Rights.U;
        int level = top;
        if (_pscEnabled)
        {
            for (int l = 2; l <= top; l++)
            {
                int i = _psc[l].FindKey(la, pcid, touch: mode != WalkMode.Probe);
                if (i < 0) continue;
                ref TlbEntry p = ref _psc[l].E[i];
                table = p.Frame;
                rights = p.Rights;
                r.PscRights = p.Rights;
                level = l - 1;
                r.PscLevel = l;
                // The cached entry stands for every level above it: report only its slot.
                r.Count = top - l + 1;
                r.EntryAddr[r.Count - 1] = ulong.MaxValue;
                r.EntryValue[r.Count - 1] = p.Frame | PteFlags.Present;
                if (mode != WalkMode.Probe) _ctr[Ctr.PscHit(l)]++;
                break;
            }
            if (r.PscLevel == 0 && mode != WalkMode.Probe) _ctr[Ctr.PscMiss]++;
        }
        r.FirstFromMemory = r.Count;
        for (; level >= 1; level--)
        {
            int shift = 12 + 9 * (level - 1);
            ulong addr = table + ((la >> shift) & 0x1FF) * 8;
            ulong pte = _mem.Read(addr, 8);
            r.EntryAddr[r.Count] = addr;
            r.EntryValue[r.Count] = pte;
            r.Count++;
            r.MemRefs++;
            if ((pte & PteFlags.Present) == 0) { r.Fault = true; r.FaultCode = 0; return; }
            if (ReservedBitsSet(pte, level, nxe)) { r.Fault = true; r.FaultCode = PfErr.P | PfErr.Rsvd; return; }
            if ((pte & PteFlags.Write) == 0) rights &= ~Rights.W;
            if ((pte & PteFlags.User) == 0) rights &= ~Rights.U;
            if ((pte & PteFlags.Nx) != 0) rights |= Rights.Xd;
            if (level == 1 || (pte & PteFlags.Huge) != 0)
            {
                r.Size = (PageSize)(level - 1);
                r.Frame = pte & PhysAddrMask & ~((1UL << shift) - 1);
                r.Global = (pte & PteFlags.Global) != 0 && (cpu.CR4 & Emu64.Cpu.Cr4.Pge) != 0;
                if ((pte & PteFlags.Dirty) != 0) rights |= Rights.D;
                rights |= (int)((pte & PteFlags.PkeyMask) >> PteFlags.PkeyShift) << Rights.PkeyShift;
                r.Rights = (byte)rights;
                return;
            }
            table = pte & PhysAddrMask;
        }
    }

    /// <summary>
    /// After a successful walk: cache every non-leaf entry read from memory, tagged with the PCID. The caller skips the call when the
    /// caches are off or the walk read no non-leaf entry from memory.
    /// </summary>
    private void FillPsc(ref WalkResult w, ulong la, ushort pcid)
    {
        int rights = w.PscLevel != 0 ? w.PscRights : Rights.W | Rights.U;
        for (int k = w.FirstFromMemory; k < w.Count - 1; k++)
        {
            ulong pte = w.EntryValue[k];
            if ((pte & PteFlags.Write) == 0) rights &= ~Rights.W;
            if ((pte & PteFlags.User) == 0) rights &= ~Rights.U;
            if ((pte & PteFlags.Nx) != 0) rights |= Rights.Xd;
            int level = w.TopLevel - k;
            var a = _psc[level];
            var e = new TlbEntry
            {
                Vpn = la >> a.KeyShift,
                Frame = pte & PhysAddrMask,
                Pcid = pcid,
                Rights = (byte)rights,
                Flags = EntryFlags.Valid,
            };
            a.WriteWay(a.ChooseWay(in e), in e);   // Fill, without the copy of what it replaces
        }
    }

    /// <summary>Reserved bits of a present entry at a level (SDM §4.5): above MAXPHYADDR, XD without NXE, PS where it may not be set, the low bits of a large page's address.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool ReservedBitsSet(ulong pte, int level, bool nxe)
    {
        const ulong aboveMaxPhys = ((1UL << 52) - 1) & ~((1UL << MaxPhysAddr) - 1);
        if ((pte & aboveMaxPhys) != 0) return true;
        if (!nxe && (pte & PteFlags.Nx) != 0) return true;
        bool ps = (pte & PteFlags.Huge) != 0;
        if (level >= 4 && ps) return true;                                  // PML4E / PML5E: PS reserved
        if (level == 3 && ps && (pte & 0x3FFFE000UL) != 0) return true;     // 1 GiB: bits 29:13
        if (level == 2 && ps && (pte & 0x1FE000UL) != 0) return true;       // 2 MiB: bits 20:13
        return false;
    }
}
