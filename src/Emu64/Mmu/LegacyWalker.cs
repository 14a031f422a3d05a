using Emu64.Cpu;

namespace Emu64.Mmu;

/// <summary>The paging mode the processor is in (SDM vol. 3A §4.1.1, table 4-1).</summary>
public enum PagingMode : byte
{
    /// <summary>CR0.PG = 0: linear addresses are physical.</summary>
    None,
    /// <summary>CR0.PG = 1, CR4.PAE = 0: two levels of 4-byte entries, 4 KiB pages and with CR4.PSE 4 MiB pages.</summary>
    Bits32,
    /// <summary>CR0.PG = 1, CR4.PAE = 1, IA32_EFER.LME = 0: four PDPTE registers, then two levels of 8-byte entries.</summary>
    Pae,
    /// <summary>IA-32e mode: 4-level paging.</summary>
    Level4,
    /// <summary>IA-32e mode with CR4.LA57: 5-level paging.</summary>
    Level5,
}

/// <summary>
/// Paging outside IA-32e mode (SDM vol. 3A §4.3 32-bit paging, §4.4 PAE paging). The walk fills the same
/// TLB model, paging-structure caches and counters as the IA-32e walk in Walker.cs; <see cref="Walk"/> hands
/// it the address when IA32_EFER.LMA = 0, so the IA-32e paths keep no test for these modes.
/// <list type="bullet">
/// <item>32-bit paging: CR3[31:12] locates a page directory of 1024 4-byte PDEs (linear bits 31:22), each
/// a page table of 1024 PTEs (bits 21:12) or, with CR4.PSE and PS=1, a 4 MiB page whose physical bits 39:32
/// come from PDE bits 20:13 (PSE-36) and bits 31:22 from PDE bits 31:22; bit 12 is its PAT bit. The only
/// reserved bit is bit 21 of a 4 MiB PDE (21:(M−19) with M = min(MAXPHYADDR, 40) = 40). No XD bit exists.</item>
/// <item>PAE paging: CR3[31:5] locates four PDPTEs (linear bits 31:30), held in registers loaded by MOV CR3
/// and by the MOV CR0/CR4 that enter or change PAE paging (<see cref="LoadPdptes"/>); each locates a page
/// directory of 512 8-byte PDEs (bits 29:21) mapping 2 MiB pages or page tables of 512 PTEs (bits 20:12).
/// Bits 62:MAXPHYADDR of a PDE/PTE are reserved, bit 63 is XD with IA32_EFER.NXE and reserved without it.</item>
/// </list>
/// The paging-structure caches hold PDEs only (the PDPTE registers are the PDPTE cache): keyed by linear bits
/// 31:21, so a 32-bit PDE, which covers 4 MiB, is cached once per 2 MiB half it was used for.
/// </summary>
public sealed partial class Mmu
{
    /// <summary>The four PDPTE registers of PAE paging (SDM §4.4.1), as last loaded.</summary>
    private readonly ulong[] _pdpte = new ulong[4];

    /// <summary>The PDPTE registers (PAE paging), for debuggers and tests.</summary>
    public ReadOnlySpan<ulong> PdpteRegisters => _pdpte;

    /// <summary>Bits of a PDPTE that must be 0 when it is present (SDM table 4-8): 2:1, 8:5 and 63:MAXPHYADDR.</summary>
    public const ulong PdpteReserved = 0x6UL | 0x1E0UL | ~((1UL << MaxPhysAddr) - 1);

    /// <summary>PDE/PTE bits 62:MAXPHYADDR, reserved with PAE paging (SDM tables 4-10 to 4-12).</summary>
    private const ulong PaeHighReserved = (~0UL >> 1) & ~((1UL << MaxPhysAddr) - 1);

    /// <summary>The paging mode the processor's control registers select now.</summary>
    public PagingMode Mode
    {
        get
        {
            var c = _cpu;
            if (!c.PagingOn) return PagingMode.None;
            if (c.LongMode) return (c.CR4 & Emu64.Cpu.Cr4.La57) != 0 ? PagingMode.Level5 : PagingMode.Level4;
            return (c.CR4 & Emu64.Cpu.Cr4.Pae) != 0 ? PagingMode.Pae : PagingMode.Bits32;
        }
    }

    /// <summary>The physical address of the PDPTE for linear bits 31:30 = <paramref name="index"/> under <paramref name="cr3"/> (CR3[31:5]).</summary>
    public static ulong PdpteAddress(ulong cr3, int index) => (cr3 & 0xFFFFFFE0UL) + (ulong)index * 8;

    /// <summary>Whether a PDPTE would be refused on load: present with a reserved bit set.</summary>
    public static bool PdpteInvalid(ulong pdpte) => (pdpte & PteFlags.Present) != 0 && (pdpte & PdpteReserved) != 0;

    /// <summary>
    /// Loads the four PDPTE registers from the table CR3 locates, as MOV CR3 in PAE paging, and MOV CR0/CR4 that
    /// enter PAE paging or change CR0.CD/NW or CR4.PAE/PGE/PSE/SMEP in it, do (SDM §4.4.1). Returns false, loading
    /// nothing, when a present PDPTE has a reserved bit set: the instruction then raises #GP(0) and changes nothing.
    /// </summary>
    public bool LoadPdptes(ulong cr3)
    {
        Span<ulong> e = stackalloc ulong[4];
        for (int i = 0; i < 4; i++)
        {
            e[i] = _mem.Read(PdpteAddress(cr3, i), 8);
            if (PdpteInvalid(e[i])) return false;
        }
        e.CopyTo(_pdpte);
        return true;
    }

    /// <summary>Reserved bits of a present 32-bit-paging entry (SDM §4.3): only bit 21 of a 4 MiB PDE, with CR4.PSE.</summary>
    internal static bool ReservedBits32(ulong pte, int level, bool pse)
        => level == 2 && pse && (pte & PteFlags.Huge) != 0 && (pte & (1UL << 21)) != 0;

    /// <summary>Reserved bits of a present PAE-paging PDE or PTE (SDM §4.4.2): 62:MAXPHYADDR, XD without NXE, 20:13 of a 2 MiB PDE.</summary>
    internal static bool ReservedBitsPae(ulong pte, int level, bool nxe)
    {
        if ((pte & PaeHighReserved) != 0) return true;
        if (!nxe && (pte & PteFlags.Nx) != 0) return true;
        return level == 2 && (pte & PteFlags.Huge) != 0 && (pte & 0x1FE000UL) != 0;
    }

    /// <summary>The physical base of the 4 MiB page a 32-bit PDE with PS=1 maps: bits 31:22 from the PDE's 31:22, 39:32 from its 20:13 (PSE-36).</summary>
    public static ulong Frame4M(ulong pde) => (pde & 0xFFC00000UL) | ((pde >> 13) & 0xFF) << 32;

    /// <summary>The walk of 32-bit and PAE paging; the result has the layout of <see cref="Walk"/>'s (levels 2..1, or 3..1 with the PDPTE register first).</summary>
    private void WalkLegacy(ulong la, ushort pcid, ulong cr3, ref WalkResult r, WalkMode mode)
    {
        var cpu = _cpu;
        la &= 0xFFFFFFFF;
        bool pae = (cpu.CR4 & Emu64.Cpu.Cr4.Pae) != 0;
        bool pse = (cpu.CR4 & Emu64.Cpu.Cr4.Pse) != 0;
        bool nxe = (cpu.EFER & Emu64.Cpu.Efer.Nxe) != 0;
        int rights = Rights.W | Rights.U;
        ulong table;
        if (pae)
        {
            // The PDPTE comes from its register, read when it was loaded: no memory reference, no A bit. A PDPTE
            // carries no rights (R/W, U/S and XD are reserved in it).
            int i = (int)(la >> 30);
            ulong pdpte = _pdpte[i];
            r.TopLevel = 3;
            r.EntryAddr[0] = PdpteAddress(cr3, i);
            r.EntryValue[0] = pdpte;
            r.Count = 1;
            r.FirstFromMemory = 1;
            if ((pdpte & PteFlags.Present) == 0) { r.Fault = true; r.FaultCode = 0; return; }
            table = pdpte & PhysAddrMask;
        }
        else
        {
            r.TopLevel = 2;
            r.Narrow = true;
            table = cr3 & 0xFFFFF000UL;
        }
        int level = 2;
        if (_pscEnabled)
        {
            int k = _psc[2].FindKey(la, pcid, touch: mode != WalkMode.Probe);
            if (k >= 0)
            {
                ref TlbEntry p = ref _psc[2].E[k];
                table = p.Frame;
                rights = p.Rights;
                r.PscRights = p.Rights;
                r.PscLevel = 2;
                level = 1;
                r.EntryAddr[r.Count] = ulong.MaxValue;
                r.EntryValue[r.Count] = p.Frame | PteFlags.Present;
                r.Count++;
                if (mode != WalkMode.Probe) _ctr[Ctr.PscHit(2)]++;
            }
            else if (mode != WalkMode.Probe) _ctr[Ctr.PscMiss]++;
        }
        r.FirstFromMemory = r.Count;
        for (; level >= 1; level--)
        {
            ulong addr, pte;
            if (pae)
            {
                addr = table + ((la >> (12 + 9 * (level - 1))) & 0x1FF) * 8;
                pte = _mem.Read(addr, 8);
            }
            else
            {
                addr = table + ((la >> (12 + 10 * (level - 1))) & 0x3FF) * 4;
                pte = _mem.Read(addr, 4);
            }
            r.EntryAddr[r.Count] = addr;
            r.EntryValue[r.Count] = pte;
            r.Count++;
            r.MemRefs++;
            if ((pte & PteFlags.Present) == 0) { r.Fault = true; r.FaultCode = 0; return; }
            if (pae ? ReservedBitsPae(pte, level, nxe) : ReservedBits32(pte, level, pse))
            {
                r.Fault = true; r.FaultCode = PfErr.P | PfErr.Rsvd; return;
            }
            if ((pte & PteFlags.Write) == 0) rights &= ~Rights.W;
            if ((pte & PteFlags.User) == 0) rights &= ~Rights.U;
            if ((pte & PteFlags.Nx) != 0) rights |= Rights.Xd;   // only PAE entries have bit 63 (checked against NXE above)
            // PS in a PDE maps a large page: always with PAE paging, only with CR4.PSE in 32-bit paging (ignored otherwise).
            bool large = level == 2 && (pte & PteFlags.Huge) != 0 && (pae || pse);
            if (level == 1 || large)
            {
                if (!large)
                {
                    r.Size = PageSize.Size4K;
                    r.Frame = pte & (pae ? PhysAddrMask : 0xFFFFF000UL);
                }
                else if (pae)
                {
                    r.Size = PageSize.Size2M;
                    r.Frame = pte & PhysAddrMask & ~0x1FFFFFUL;
                }
                else
                {
                    // A 4 MiB page, cached as its 2 MiB half that holds the address.
                    r.Size = PageSize.Size2M;
                    r.Frame = Frame4M(pte) | (la & 0x200000UL);
                    r.Frag4M = true;
                }
                r.Global = (pte & PteFlags.Global) != 0 && (cpu.CR4 & Emu64.Cpu.Cr4.Pge) != 0;
                if ((pte & PteFlags.Dirty) != 0) rights |= Rights.D;
                r.Rights = (byte)rights;
                return;
            }
            table = pte & (pae ? PhysAddrMask : 0xFFFFF000UL);
        }
    }
}
