using Emu64.Cpu;
using Emu64.Mmu;
using Cr4Bits = Emu64.Cpu.Cr4;

namespace Emu64.Tests.Mmu;

/// <summary>
/// Each invalidation hook against a TLB holding: page A non-global in PCIDs 1 and 2, page B non-global in
/// PCID 1, page G global (filled from PCID 1), and paging-structure-cache entries for PCIDs 1 and 2.
/// What survives must be exactly what SDM vol. 3A §4.10.4.1 leaves.
/// </summary>
[Trait("Category", "Mmu")]
public class InvalidationTests
{
    private const ulong A = 0x1000_0000, B = 0x1000_1000, G = 0x1000_2000;
    private const ulong P = PteFlags.Present | PteFlags.Write;

    private static MmuRig Filled()
    {
        var rig = new MmuRig();
        rig.Map4K(A, 0x300000, P);
        rig.Map4K(B, 0x301000, P);
        rig.Map4K(G, 0x302000, P | PteFlags.Global);
        rig.Cpu.CR4 |= Cr4Bits.Pge | Cr4Bits.Pcide;
        rig.Cpu.CR3 = MmuRig.Pml4 | 1;
        rig.Try(A, Access.Read); rig.Try(B, Access.Read); rig.Try(G, Access.Read);
        rig.Cpu.CR3 = MmuRig.Pml4 | 2;
        rig.Try(A, Access.Read);
        return rig;
    }

    /// <summary>The (page, PCID or "G") pairs left in the STLB, sorted.</summary>
    private static string Left(MmuRig rig)
        => string.Join(" ", rig.Mmu.Entries(TlbLevel.Stlb)
            .Select(e => (e.LinearBase == A ? "A" : e.LinearBase == B ? "B" : "G") + (e.Global ? "g" : e.Pcid.ToString()))
            .Order());

    private static string PscPcids(MmuRig rig)
        => string.Join(" ", Enumerable.Range(2, 3).SelectMany(l => rig.Mmu.PagingStructureCacheEntries(l)).Select(e => e.Pcid).Distinct().Order());

    [Fact]
    public void The_fixture_holds_both_PCIDs_and_the_global_entry()
    {
        var rig = Filled();
        Assert.Equal("A1 A2 B1 Gg", Left(rig));
        Assert.Equal("1 2", PscPcids(rig));
    }

    [Theory]
    [InlineData(false, 1, "A2 Gg", "2")]        // flushing write to PCID 1
    [InlineData(true, 1, "A1 A2 B1 Gg", "1 2")] // NOFLUSH: nothing
    [InlineData(false, 3, "A1 A2 B1 Gg", "1 2")]// a PCID with no entries
    public void A_CR3_write_drops_the_new_PCIDs_nonglobal_entries_unless_NOFLUSH(bool noFlush, int pcid, string left, string psc)
    {
        var rig = Filled();
        rig.Cpu.CR3 = MmuRig.Pml4 | (ulong)pcid;
        int dropped = rig.Mmu.OnCr3Write(MmuRig.Pml4 | 2, rig.Cpu.CR3, noFlush);
        Assert.Equal(left, Left(rig));
        Assert.Equal(psc, PscPcids(rig));
        Assert.Equal(noFlush || pcid == 3 ? 0 : 4 + 3, dropped);  // A1, B1 in STLB and dTLB; 3 PSC levels
    }

    [Theory]
    [InlineData(Cr4Bits.Pge, 0UL, "", "")]                          // PGE change: everything
    [InlineData(Cr4Bits.Pcide, 0UL, "", "")]                        // PCIDE 1 → 0: everything
    [InlineData(0UL, Cr4Bits.Smep, "A1 B1 Gg", "1")]                // SMEP 0 → 1: the current PCID (2)
    [InlineData(0UL, Cr4Bits.Smap, "A1 A2 B1 Gg", "1 2")]           // SMAP: nothing
    [InlineData(0UL, Cr4Bits.Osfxsr, "A1 A2 B1 Gg", "1 2")]
    public void A_CR4_write_drops_what_the_SDM_lists_for_the_bits_it_changes(ulong clear, ulong set, string left, string psc)
    {
        var rig = Filled();
        ulong old = rig.Cpu.CR4;
        rig.Cpu.CR4 = (old & ~clear) | set;
        rig.Mmu.OnCr4Write(old, rig.Cpu.CR4);
        Assert.Equal(left, Left(rig));
        Assert.Equal(psc, PscPcids(rig));
    }

    [Fact]
    public void Clearing_SMEP_drops_nothing()
    {
        var rig = Filled();
        rig.Cpu.CR4 |= Cr4Bits.Smep;
        ulong old = rig.Cpu.CR4;
        rig.Cpu.CR4 &= ~Cr4Bits.Smep;
        var before = Left(rig);
        rig.Mmu.OnCr4Write(old, rig.Cpu.CR4);
        Assert.Equal(before, Left(rig));
    }

    [Fact]
    public void Clearing_CR0_PG_drops_everything_and_other_CR0_bits_nothing()
    {
        var rig = Filled();
        rig.Mmu.OnCr0Write(rig.Cpu.CR0, rig.Cpu.CR0 & ~Cr0.Wp);
        Assert.Equal("A1 A2 B1 Gg", Left(rig));
        rig.Mmu.OnCr0Write(rig.Cpu.CR0, rig.Cpu.CR0 & ~Cr0.Pg);
        Assert.Equal("", Left(rig));
        Assert.Equal("", PscPcids(rig));
    }

    [Theory]
    [InlineData(A, "A1 B1 Gg", "1")]    // in PCID 2: A for PCID 2, and all PCID 2 PSC entries
    [InlineData(G, "A1 A2 B1", "1")]    // the global entry goes whatever PCID filled it
    [InlineData(B, "A1 A2 B1 Gg", "1")] // PCID 1's B stays
    public void INVLPG_drops_the_page_in_the_current_PCID_its_globals_and_the_current_PCIDs_PSC(ulong la, string left, string psc)
    {
        var rig = Filled();
        rig.Mmu.Invlpg(la);
        Assert.Equal(left, Left(rig));
        Assert.Equal(psc, PscPcids(rig));
    }

    [Theory]
    [InlineData(0, 1, A, "A2 B1 Gg", "2")]
    [InlineData(0, 1, G, "A1 A2 B1 Gg", "2")]   // type 0 never drops globals
    [InlineData(1, 1, 0UL, "A2 Gg", "2")]
    [InlineData(1, 2, 0UL, "A1 B1 Gg", "1")]
    [InlineData(2, 0, 0UL, "", "")]
    [InlineData(3, 0, 0UL, "Gg", "")]
    public void Each_INVPCID_type_drops_exactly_its_selection(int type, int pcid, ulong la, string left, string psc)
    {
        var rig = Filled();
        rig.Mmu.Invpcid(type, (ushort)pcid, la);
        Assert.Equal(left, Left(rig));
        Assert.Equal(psc, PscPcids(rig));
    }
}
