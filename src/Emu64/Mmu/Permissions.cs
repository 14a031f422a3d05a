using System.Runtime.CompilerServices;
using Emu64.Cpu;

namespace Emu64.Mmu;

/// <summary>
/// Access rights (SDM vol. 3A §4.6). A TLB entry stores the rights the paging structures gave
/// (<see cref="Rights"/>: R/W, U/S and XD combined over every level, the leaf's D and protection key);
/// the processor state that also decides an access (CR0.WP, CR4.SMEP/SMAP/PKE, EFLAGS.AC, PKRU) is
/// applied at every access, so changing it takes effect without a flush. The MMU folds that state
/// into a table indexed by (entry rights, access kind, AC) which it rebuilds when CR0, CR4 or PKRU
/// change, so the check on a TLB hit is one load.
/// </summary>
public sealed partial class Mmu
{
    /// <summary>Table value bit: the access faults; the low bits are the #PF error code without I/D.</summary>
    internal const ushort PermFault = 0x8000;
    /// <summary>Table value bit: allowed, but a write through an entry filled with D=0 must re-walk to set D.</summary>
    internal const ushort PermDirty = 0x4000;

    // index = rights (8 bits) | (acc & 7) << 8 | implicit << 11 | AC << 12
    private readonly ushort[] _perm = new ushort[1 << 13];
    private ulong _permKey = ulong.MaxValue;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int PermIndex(byte rights, Access acc, bool ac)
        => rights | ((int)acc & 15) << 8 | (ac ? 1 << 12 : 0);

    /// <summary>The processor state the table depends on.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong PermKey()
    {
        var c = _cpu;
        ulong k = (c.CR0 & Emu64.Cpu.Cr0.Wp) | (c.CR4 & (Emu64.Cpu.Cr4.Smep | Emu64.Cpu.Cr4.Smap | Emu64.Cpu.Cr4.Pke));
        if (c.LongMode) k |= 1UL << 23;
        return k | (ulong)c.Pkru << 32;
    }

    /// <summary>
    /// Rebuilds the rights table from CR0.WP, CR4.SMEP/SMAP/PKE, EFER.LMA and PKRU. Called by the CR0/CR4/PKRU
    /// write hooks and checked on every TLB miss; code that pokes those registers directly must call it.
    /// </summary>
    public void OnModeChanged()
    {
        var c = _cpu;
        ulong key = PermKey();
        if (key == _permKey) return;
        _permKey = key;
        FlushFast();
        bool wp = (c.CR0 & Emu64.Cpu.Cr0.Wp) != 0;
        bool smep = (c.CR4 & Emu64.Cpu.Cr4.Smep) != 0, smap = (c.CR4 & Emu64.Cpu.Cr4.Smap) != 0;
        bool pke = (c.CR4 & Emu64.Cpu.Cr4.Pke) != 0 && c.LongMode;
        uint pkru = c.Pkru;
        for (int i = 0; i < _perm.Length; i++)
        {
            var acc = (Access)((i >> 8) & 15);
            if ((acc & Access.Implicit) != 0 && (acc & Access.User) != 0) { _perm[i] = PermFault; continue; }   // never produced
            _perm[i] = Decide((byte)i, acc, (i >> 12) != 0, wp, smep, smap, pke, pkru);
        }
    }

    /// <summary>
    /// The rules of SDM vol. 3A §4.6.1–4.6.2 for one access against combined rights. Returns 0 (allowed),
    /// <see cref="PermDirty"/> (allowed, D must be set), or <see cref="PermFault"/> | error code (P, W/R, U/S, PK; the
    /// caller adds I/D, which depends on EFER.NXE).
    /// </summary>
    internal static ushort Decide(byte rights, Access acc, bool ac, bool wp, bool smep, bool smap, bool pke, uint pkru)
    {
        bool w = (rights & Rights.W) != 0, u = (rights & Rights.U) != 0, xd = (rights & Rights.Xd) != 0, d = (rights & Rights.D) != 0;
        int key = rights >> Rights.PkeyShift;
        bool user = (acc & Access.User) != 0, write = (acc & Access.Write) != 0, fetch = (acc & Access.Fetch) != 0;
        bool implicitAcc = (acc & Access.Implicit) != 0;
        bool ok;
        if (user)
        {
            // User-mode accesses reach only user-mode addresses; writes need R/W=1, fetches XD=0.
            ok = u && (!write || w) && (!fetch || !xd);
        }
        else if (fetch)
        {
            ok = !xd && !(u && smep);
        }
        else
        {
            bool smapBlocks = u && smap && (implicitAcc || !ac);
            ok = !smapBlocks && (!write || w || !wp);
        }
        // Protection keys: data accesses to user-mode addresses (SDM §4.6.2).
        bool pk = false;
        if (pke && !fetch && u)
        {
            bool adk = ((pkru >> (2 * key)) & 1) != 0, wdk = ((pkru >> (2 * key + 1)) & 1) != 0;
            pk = adk || (wdk && write && (user || wp));
        }
        if (ok && !pk) return write && !d ? PermDirty : (ushort)0;
        uint err = PfErr.P | (write ? PfErr.W : 0) | (user ? PfErr.U : 0) | (pk ? PfErr.Pk : 0);
        return (ushort)(PermFault | err);
    }

    /// <summary>
    /// The #PF error code's I/D bit (SDM §4.7): set for fetches when CR4.SMEP = 1, or when CR4.PAE = 1 and IA32_EFER.NXE = 1
    /// (PAE or IA-32e paging: 32-bit paging has no XD bit, so NXE alone does not set it there).
    /// </summary>
    private uint FetchBit(Access acc)
        => (acc & Access.Fetch) != 0 && (((_cpu.EFER & Emu64.Cpu.Efer.Nxe) != 0 && (_cpu.CR4 & Emu64.Cpu.Cr4.Pae) != 0)
            || (_cpu.CR4 & Emu64.Cpu.Cr4.Smep) != 0) ? PfErr.I : 0;

    /// <summary>The error code of a not-present or reserved-bit fault for an access.</summary>
    private uint ErrorBits(Access acc)
        => ((acc & Access.Write) != 0 ? PfErr.W : 0) | ((acc & Access.User) != 0 ? PfErr.U : 0) | FetchBit(acc);
}
