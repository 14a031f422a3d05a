using System.Runtime.CompilerServices;

namespace Emu64.Mmu;

public sealed partial class Mmu
{
    // A host-side hint, not part of any model: nothing observable depends on it (no counter, no TLB or paging-structure-cache
    // state, no A/D bit, no device access), so a run gives the same output and counters with it or without it.
    //
    // Why: a loop that strides through memory a page or more at a time (kvm-unit-tests' sieve marking the multiples of a large
    // prime) misses the modeled TLB on every access, and every access goes to a host cache line not touched for long. The walk's
    // own prefetch of that line (WalkAndFill) comes a few instructions before the store; issued one iteration earlier, the line's
    // fetch overlaps the whole of the next miss path instead.

    /// <summary>The linear address of the last data walk of a 4 KiB page, and how far it was from the one before.</summary>
    private ulong _strideLa;
    private long _strideDelta;

    /// <summary>
    /// After a data walk of <paramref name="la"/> that ended at the 4 KiB PTE at <paramref name="pteAddr"/>: when the last three walks
    /// were equally far apart by a page or more (up to 4 MiB), the PTE of the next address in the stride — in the same page table,
    /// read straight from RAM, nothing set — and, if present, a prefetch of that address's host line.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private unsafe void StridePrefetch(ulong la, ulong pteAddr)
    {
        long delta = (long)(la - _strideLa);
        _strideLa = la;
        if (delta != _strideDelta) { _strideDelta = delta; return; }
        if ((ulong)(delta - 0x1000) > (4UL << 20) - 0x1000) return;   // 4 KiB <= delta <= 4 MiB
        ulong next = la + (ulong)delta;
        ulong pte = pteAddr + (((next >> 12) - (la >> 12)) << 3);
        if (((pte ^ pteAddr) & ~0xFFFUL) != 0 || pte > _mem.RamSize - 8) return;   // another page table, or not in RAM
        ulong e = *(ulong*)_mem.HostPointer(pte);
        if ((e & PteFlags.Present) != 0) _mem.Prefetch((e & 0x000F_FFFF_FFFF_F000UL) | (next & 0xFFF));   // (Prefetch ignores what is not RAM)
    }
}
