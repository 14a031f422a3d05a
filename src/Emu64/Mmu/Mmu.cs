using System.Runtime.CompilerServices;
using Emu64.Memory;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Mmu;

/// <summary>The outcome of a page walk: where the page is and what the paging structures allow.</summary>
public struct WalkResult
{
    public ulong PhysPage;       // physical address of the page (aligned to its size)
    public ulong PageSize;       // 4 KiB, 2 MiB or 1 GiB
    public ulong Physical;       // translated physical address of the byte asked about
    public bool Writable, User, NoExec, Global, Dirty;
    public int Pkey;
    public int Levels;           // entries read
    public uint FaultCode;       // #PF error code when Fault
    public bool Fault;
}

/// <summary>
/// Linear → physical translation: the one place that knows paging. <see cref="Translate"/> is the
/// interface the CPU calls for every access; a miss in the host-side cache walks the paging
/// structures (<see cref="Walk"/>), checks permissions and sets A/D bits as hardware does.
/// </summary>
public sealed partial class Mmu
{
    private readonly CpuCore _cpu;
    private readonly PhysicalMemory _mem;

    /// <summary>MAXPHYADDR reported in CPUID leaf 0x80000008 (bits above it in an entry are reserved).</summary>
    public const int MaxPhysAddr = 46;
    public const ulong PhysAddrMask = ((1UL << MaxPhysAddr) - 1) & ~0xFFFUL;

    public Mmu(CpuCore cpu, PhysicalMemory mem)
    {
        _cpu = cpu;
        _mem = mem;
        FlushAll();
    }

    // Host-side translation cache: direct-mapped, one array per (access kind, user). It holds only
    // translations that passed the permission check for that kind, and is flushed whenever anything
    // that affects translation changes (CR0/CR3/CR4/EFER writes, INVLPG, INVPCID, PKRU).
    private const int CacheBits = 8, CacheSize = 1 << CacheBits;
    private readonly ulong[] _tag = new ulong[6 * CacheSize];
    private readonly ulong[] _frame = new ulong[6 * CacheSize];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Slot(ulong la, Access acc)
        => ((((int)acc & 3) << 1 | ((int)acc >> 2 & 1)) << CacheBits) | (int)((la >> 12) & (CacheSize - 1));

    /// <summary>Translates <paramref name="la"/> for an access, raising #PF on failure.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong Translate(ulong la, Access acc)
    {
        if (!_cpu.PagingOn) return la & (_cpu.LongMode ? ulong.MaxValue : 0xFFFFFFFF);
        if ((acc & Access.Implicit) == 0)
        {
            int s = Slot(la, acc);
            if (_tag[s] == (la >> 12 | 1UL << 63)) return _frame[s] | (la & 0xFFF);
        }
        return TranslateSlow(la, acc);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private ulong TranslateSlow(ulong la, Access acc)
    {
        var w = Walk(la, acc, setAccessed: true);
        if (w.Fault) _cpu.PageFault(la, w.FaultCode);
        // Supervisor data accesses to user pages depend on EFLAGS.AC under SMAP: never cached.
        bool cacheable = (acc & Access.Implicit) == 0 && !(w.User && (acc & (Access.User | Access.Fetch)) == 0
                                                            && (_cpu.CR4 & Emu64.Cpu.Cr4.Smap) != 0);
        if (cacheable)
        {
            int s = Slot(la, acc);
            _tag[s] = la >> 12 | 1UL << 63;
            _frame[s] = w.Physical & ~0xFFFUL;
        }
        return w.Physical;
    }

    public void FlushAll() => Array.Clear(_tag);

    public void FlushPage(ulong la)
    {
        for (int k = 0; k < 6; k++)
        {
            int s = (k << CacheBits) | (int)((la >> 12) & (CacheSize - 1));
            _tag[s] = 0;
        }
        // Large pages cover many slots: drop everything (the cache is only a host-side shortcut).
        FlushAll();
    }

    /// <summary>
    /// Walks the paging structures for <paramref name="la"/> and checks the access. With 4-level paging
    /// the linear address splits as
    /// <code>
    ///  63      48 47    39 38    30 29    21 20    12 11       0
    /// | sign ext | PML4  |  PDPT  |   PD   |   PT   |  offset  |
    /// </code>
    /// and 5-level paging (CR4.LA57) adds a PML5 index in bits 56:48. Each level's 9-bit index picks an
    /// 8-byte entry in a 4 KiB table; PS=1 in a PDPTE or PDE ends the walk at a 1 GiB or 2 MiB page.
    /// </summary>
    public WalkResult Walk(ulong la, Access acc, bool setAccessed)
    {
        var cpu = _cpu;
        var r = new WalkResult { Writable = true, User = true };
        int levels = (cpu.CR4 & Emu64.Cpu.Cr4.La57) != 0 ? 5 : 4;
        ulong table = cpu.CR3 & PhysAddrMask;
        bool nxe = (cpu.EFER & Emu64.Cpu.Efer.Nxe) != 0;
        Span<ulong> entryAddr = stackalloc ulong[5];
        int used = 0;
        ulong pte = 0;
        int level;
        for (level = levels; level >= 1; level--)
        {
            int shift = 12 + 9 * (level - 1);
            ulong addr = table + ((la >> shift) & 0x1FF) * 8;
            pte = _mem.Read(addr, 8);
            entryAddr[used++] = addr;
            r.Levels++;
            if ((pte & PteFlags.Present) == 0) { r.FaultCode = ErrorBits(acc); r.Fault = true; return r; }
            if (ReservedBitsSet(pte, level, nxe)) { r.FaultCode = ErrorBits(acc) | PfErr.P | PfErr.Rsvd; r.Fault = true; return r; }
            r.Writable &= (pte & PteFlags.Write) != 0;
            r.User &= (pte & PteFlags.User) != 0;
            r.NoExec |= nxe && (pte & PteFlags.Nx) != 0;
            bool leaf = level == 1 || (pte & PteFlags.Huge) != 0;
            if (leaf)
            {
                r.PageSize = 1UL << shift;
                r.PhysPage = pte & PhysAddrMask & ~(r.PageSize - 1);
                r.Physical = r.PhysPage | (la & (r.PageSize - 1));
                r.Global = (pte & PteFlags.Global) != 0 && (cpu.CR4 & Emu64.Cpu.Cr4.Pge) != 0;
                r.Dirty = (pte & PteFlags.Dirty) != 0;
                r.Pkey = (int)((pte & PteFlags.PkeyMask) >> PteFlags.PkeyShift);
                break;
            }
            table = pte & PhysAddrMask;
        }

        uint fault = CheckPermissions(ref r, acc);
        if (fault != 0) { r.FaultCode = fault; r.Fault = true; return r; }

        // The access is allowed: set A in every entry used, and D in the leaf for a write (SDM §4.8).
        if (setAccessed && (acc & Access.Probe) == 0)
        {
            for (int k = 0; k < used; k++)
            {
                ulong e = _mem.Read(entryAddr[k], 8);
                ulong ne = e | PteFlags.Accessed;
                if (k == used - 1 && (acc & Access.Write) != 0) ne |= PteFlags.Dirty;
                if (ne != e) _mem.Write(entryAddr[k], 8, ne);
            }
            if ((acc & Access.Write) != 0) r.Dirty = true;
        }
        return r;
    }

    /// <summary>Reserved bits of an entry at a level (SDM §4.5): above MAXPHYADDR, XD without NXE, PS where it may not be set, the low bits of a large page's address.</summary>
    private static bool ReservedBitsSet(ulong pte, int level, bool nxe)
    {
        const ulong aboveMaxPhys = ((1UL << 52) - 1) & ~((1UL << MaxPhysAddr) - 1);
        if ((pte & aboveMaxPhys) != 0) return true;
        if (!nxe && (pte & PteFlags.Nx) != 0) return true;
        bool ps = (pte & PteFlags.Huge) != 0;
        if (level >= 4 && ps) return true;                         // PML4E / PML5E: PS reserved
        if (level == 3 && ps && (pte & 0x3FFFE000UL) != 0) return true;   // 1 GiB: bits 29:13
        if (level == 2 && ps && (pte & 0x1FE000UL) != 0) return true;     // 2 MiB: bits 20:13
        return false;
    }

    private uint ErrorBits(Access acc)
    {
        uint e = 0;
        if ((acc & Access.Write) != 0) e |= PfErr.W;
        if ((acc & Access.User) != 0) e |= PfErr.U;
        if ((acc & Access.Fetch) != 0 && ((_cpu.EFER & Emu64.Cpu.Efer.Nxe) != 0 || (_cpu.CR4 & Emu64.Cpu.Cr4.Smep) != 0)) e |= PfErr.I;
        return e;
    }

    /// <summary>
    /// The access rights of SDM vol. 3A §4.6 applied to the combined rights of a translation. Returns 0
    /// when the access is allowed, else the #PF error code. Used at fill time and on TLB hits alike.
    /// </summary>
    public uint CheckPermissions(ref WalkResult r, Access acc)
    {
        var cpu = _cpu;
        bool user = (acc & Access.User) != 0;
        bool write = (acc & Access.Write) != 0;
        bool fetch = (acc & Access.Fetch) != 0;
        uint err = ErrorBits(acc) | PfErr.P;
        if (user)
        {
            if (!r.User) return err;
            if (write && !r.Writable) return err;
            if (fetch && r.NoExec) return err;
        }
        else
        {
            bool wp = (cpu.CR0 & Emu64.Cpu.Cr0.Wp) != 0;
            if (fetch)
            {
                if (r.NoExec) return err;
                if (r.User && (cpu.CR4 & Emu64.Cpu.Cr4.Smep) != 0) return err;
            }
            else
            {
                if (r.User && (cpu.CR4 & Emu64.Cpu.Cr4.Smap) != 0 && ((acc & Access.Implicit) != 0 || !cpu.Ac)) return err;
                if (write && !r.Writable && wp) return err;
            }
        }
        // Protection keys apply to data accesses to user pages (SDM §4.6.2).
        if (!fetch && r.User && (cpu.CR4 & Emu64.Cpu.Cr4.Pke) != 0 && cpu.LongMode)
        {
            uint bits = cpu.Pkru >> (2 * r.Pkey);
            bool ad = (bits & 1) != 0, wd = (bits & 2) != 0;
            if (ad) return err | PfErr.Pk;
            if (write && wd && (user || (cpu.CR0 & Emu64.Cpu.Cr0.Wp) != 0)) return err | PfErr.Pk;
        }
        return 0;
    }
}
