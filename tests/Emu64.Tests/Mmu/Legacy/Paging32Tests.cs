using Emu64.Cpu;
using Emu64.Mmu;
using Cr4Bits = Emu64.Cpu.Cr4;

namespace Emu64.Tests.Mmu.Legacy;

using PagingMode = Emu64.Mmu.PagingMode;

/// <summary>
/// 32-bit paging (CR0.PG = 1, CR4.PAE = 0, SDM vol. 3A §4.3) with hand-built 4-byte page tables: translations,
/// A/D write-back, 4 MiB pages with PSE-36, rights and every fault's error code and CR2, global pages, the TLB.
/// </summary>
[Trait("Category", "Mmu")]
public class Paging32Tests
{
    private const ulong P = PteFlags.Present, W = PteFlags.Write, U = PteFlags.User, A = PteFlags.Accessed, D = PteFlags.Dirty;
    private const ulong PS = PteFlags.Huge, G = PteFlags.Global;
    private const ulong Pd = 0x10000, Pt = 0x11000;

    /// <summary>A rig with 32-bit paging on: the page directory at <see cref="Pd"/>, and PDE[la] pointing at the page table <see cref="Pt"/>.</summary>
    private static LegacyRig With4K(ulong la, ulong pte, ulong pdeFlags = P | W | U, ulong cr4 = Cr4Bits.Pse, bool wp = true)
    {
        var rig = new LegacyRig();
        rig.Write4(Pd + (la >> 22) * 4, Pt | pdeFlags);
        rig.Write4(Pt + ((la >> 12) & 0x3FF) * 4, pte);
        rig.EnablePaging(cr4, Pd, wp);
        Assert.Equal(PagingMode.Bits32, rig.Mmu.Mode);
        return rig;
    }

    [Fact]
    public void Outside_IA32e_mode_CR4_LA57_may_change_with_paging_on_and_32_bit_paging_ignores_it()
    {
        var rig = With4K(0x8040_3123, 0x0078_9000 | P | W);
        Assert.Null(rig.Mov(4, rig.Cpu.CR4 | Cr4Bits.La57));                // only IA-32e mode forbids the change
        Assert.Equal(PagingMode.Bits32, rig.Mmu.Mode);
        Assert.Equal(0x0078_9123UL, rig.Try(0x8040_3123, Access.Read).Pa);
        Assert.Null(rig.Mov(4, rig.Cpu.CR4 & ~Cr4Bits.La57));
    }

    [Fact]
    public void A_4_KiB_page_translates_through_the_directory_and_table_indexed_by_10_bits_each()
    {
        // la 0x8040_3123: PDE index 0x201, PTE index 0x003, offset 0x123.
        var rig = With4K(0x8040_3123, 0x0078_9000 | P | W);
        Assert.Equal(0x0078_9123UL, rig.Try(0x8040_3123, Access.Read).Pa);
        Assert.Equal(Pt | P | W | U | A, rig.Read4(Pd + 0x201 * 4));
        Assert.Equal(0x0078_9000 | P | W | A, rig.Read4(Pt + 3 * 4));
    }

    [Fact]
    public void A_write_sets_D_in_the_4_byte_PTE_only_and_leaves_the_neighbouring_entry_untouched()
    {
        var rig = With4K(0x0040_3000, 0x0078_9000 | P | W);
        rig.Write4(Pt + 4 * 4, 0xDEAD_B000);   // the next PTE: an 8-byte write-back would clobber it
        Assert.Equal(0x0078_9010UL, rig.Try(0x0040_3010, Access.Write).Pa);
        Assert.Equal(0x0078_9000 | P | W | A | D, rig.Read4(Pt + 3 * 4));
        Assert.Equal(0xDEAD_B000UL, rig.Read4(Pt + 4 * 4));
        Assert.Equal(Pt | P | W | U | A, rig.Read4(Pd + 1 * 4));   // D is not set in a PDE that references a table
    }

    [Fact]
    public void A_4_MiB_page_with_PSE_36_takes_physical_bits_39_to_32_from_PDE_bits_20_to_13_and_ignores_its_PAT_bit()
    {
        var rig = new LegacyRig();
        // PDE for la 0xC000_0000 (index 0x300): 4 MiB page at physical 0x5A_0840_0000, PAT (bit 12) set.
        ulong pde = 0x0840_0000UL | (0x5AUL << 13) | PteFlags.PatLarge | PS | P | W;
        rig.Write4(Pd + 0x300 * 4, pde);
        rig.EnablePaging(Cr4Bits.Pse, Pd);
        Assert.Equal(0x5A_0840_0000UL + 0x12345, rig.Try(0xC001_2345, Access.Read).Pa);
        Assert.Equal(0x5A_0840_0000UL + 0x3F_F00F, rig.Try(0xC03F_F00F, Access.Write).Pa);   // the upper 2 MiB half
        Assert.Equal(pde | A | D, rig.Read4(Pd + 0x300 * 4));
    }

    [Fact]
    public void Without_CR4_PSE_the_PS_bit_of_a_PDE_is_ignored_and_the_PDE_references_a_page_table()
    {
        var rig = new LegacyRig();
        rig.Write4(Pd + 0, Pt | PS | (1UL << 21) | P | W);   // bit 21 is an address bit here: Pt | 0x200000
        rig.Write4(Pt + 0x200000 + 5 * 4, 0x0030_0000 | P);
        rig.EnablePaging(0, Pd);
        Assert.Equal(0x0030_0042UL, rig.Try(0x0000_5042, Access.Read).Pa);
    }

    [Theory]
    [InlineData(Access.Read, 0x9u)]
    [InlineData(Access.Write, 0xBu)]
    [InlineData(Access.Read | Access.User, 0xDu)]
    [InlineData(Access.Fetch, 0x9u)]   // no I/D bit: 32-bit paging has no XD, NXE alone does not set it
    public void Bit_21_of_a_4_MiB_PDE_is_reserved_and_faults_with_RSVD(Access acc, uint err)
    {
        var rig = new LegacyRig();
        rig.Write4(Pd + 1 * 4, 0x0080_0000 | (1UL << 21) | PS | P | W | U);
        rig.EnablePaging(Cr4Bits.Pse, Pd, nxe: true);
        var r = rig.Try(0x0050_0000, acc);
        Assert.Null(r.Pa);
        Assert.Equal(err, r.Err);
        Assert.Equal(0x0050_0000UL, r.Cr2);
        Assert.Equal(0UL, rig.Read4(Pd + 1 * 4) & A);   // a faulting walk sets no A bit
    }

    [Theory]
    [InlineData(0UL, Access.Read, 0x0u)]
    [InlineData(0UL, Access.Write, 0x2u)]
    [InlineData(0UL, Access.Write | Access.User, 0x6u)]
    [InlineData(0UL, Access.Fetch | Access.User, 0x4u)]
    [InlineData(P | W, Access.Read | Access.User, 0x5u)]           // supervisor page, user read
    [InlineData(P | U, Access.Write | Access.User, 0x7u)]          // read-only page, user write
    [InlineData(P | U, Access.Write, 0x3u)]                        // read-only page, supervisor write with CR0.WP = 1
    public void Every_fault_has_the_error_code_of_the_SDM_and_CR2_is_the_linear_address(ulong pte, Access acc, uint err)
    {
        var rig = With4K(0x0804_8ABC, pte == 0 ? 0 : 0x0030_0000 | pte);
        var r = rig.Try(0x0804_8ABC, acc);
        Assert.Null(r.Pa);
        Assert.Equal(err, r.Err);
        Assert.Equal(0x0804_8ABCUL, r.Cr2);
    }

    [Fact]
    public void A_not_present_PDE_faults_with_P_clear_at_the_directory_level()
    {
        var rig = new LegacyRig();
        rig.EnablePaging(Cr4Bits.Pse, Pd);
        var r = rig.Try(0xFFFF_F004, Access.Write | Access.User);
        Assert.Equal((null, 6u, 0xFFFF_F004UL), (r.Pa, r.Err, r.Cr2));
    }

    [Fact]
    public void With_CR0_WP_clear_the_supervisor_may_write_a_read_only_page_and_D_is_set()
    {
        var rig = With4K(0x0040_0000, 0x0030_0000 | P | U, wp: false);
        Assert.Equal(0x0030_0008UL, rig.Try(0x0040_0008, Access.Write).Pa);
        Assert.Equal(0x0030_0000 | P | U | A | D, rig.Read4(Pt));
    }

    [Fact]
    public void The_PDE_and_PTE_rights_combine_a_read_only_PDE_makes_a_writable_PTE_read_only_for_the_user()
    {
        var rig = With4K(0x0040_0000, 0x0030_0000 | P | W | U, pdeFlags: P | U);
        Assert.Equal(0x7u, rig.Try(0x0040_0000, Access.Write | Access.User).Err);
        Assert.Equal(0x0030_0000UL, rig.Try(0x0040_0000, Access.Read | Access.User).Pa);
    }

    [Fact]
    public void With_SMEP_a_supervisor_fetch_from_a_user_page_faults_with_the_I_D_bit()
    {
        var rig = With4K(0x0040_0000, 0x0030_0000 | P | W | U, cr4: Cr4Bits.Pse | Cr4Bits.Smep);
        Assert.Equal(0x11u, rig.Try(0x0040_0000, Access.Fetch).Err);
    }

    [Fact]
    public void A_global_page_survives_a_CR3_write_and_a_non_global_one_does_not_until_PGE_is_toggled()
    {
        var rig = new LegacyRig();
        rig.Write4(Pd, Pt | P | W);
        rig.Write4(Pt + 1 * 4, 0x0030_0000 | P | W | G);   // la 0x1000, global
        rig.Write4(Pt + 2 * 4, 0x0031_0000 | P | W);       // la 0x2000
        rig.EnablePaging(Cr4Bits.Pse | Cr4Bits.Pge, Pd);
        Assert.Equal(0x0030_0000UL, rig.Try(0x1000, Access.Read).Pa);
        Assert.Equal(0x0031_0000UL, rig.Try(0x2000, Access.Read).Pa);
        rig.Write4(Pt + 1 * 4, 0x0040_0000 | P | W | G);
        rig.Write4(Pt + 2 * 4, 0x0041_0000 | P | W);
        Assert.Null(rig.Mov(3, Pd));
        Assert.Equal(0x0030_0000UL, rig.Try(0x1000, Access.Read).Pa);   // the stale global entry
        Assert.Equal(0x0041_0000UL, rig.Try(0x2000, Access.Read).Pa);
        Assert.Null(rig.Mov(4, Cr4Bits.Pse));                             // clearing PGE flushes globals too
        Assert.Equal(0x0040_0000UL, rig.Try(0x1000, Access.Read).Pa);
    }

    [Fact]
    public void The_G_bit_means_nothing_without_CR4_PGE()
    {
        var rig = With4K(0x1000, 0x0030_0000 | P | W | G);
        Assert.Equal(0x0030_0000UL, rig.Try(0x1000, Access.Read).Pa);
        rig.Write4(Pt + 1 * 4, 0x0040_0000 | P | W | G);
        Assert.Null(rig.Mov(3, Pd));
        Assert.Equal(0x0040_0000UL, rig.Try(0x1000, Access.Read).Pa);
    }

    [Fact]
    public void Walks_count_two_memory_references_for_a_4_KiB_page_one_for_a_4_MiB_page_and_hits_count_none()
    {
        var rig = new LegacyRig();
        rig.Write4(Pd, Pt | P | W);
        rig.Write4(Pt + 1 * 4, 0x0030_0000 | P | W);
        rig.Write4(Pt + 2 * 4, 0x0031_0000 | P | W);
        rig.Write4(Pd + 1 * 4, 0x0080_0000 | PS | P | W);
        rig.EnablePaging(Cr4Bits.Pse, Pd);
        var s0 = rig.Mmu.Snapshot();
        rig.Try(0x1000, Access.Read);
        var d = rig.Mmu.Snapshot() - s0;
        Assert.Equal((1UL, 2UL, 1UL), (d.Walks, d.WalkMemRefs, d.PscMisses));
        s0 = rig.Mmu.Snapshot();
        rig.Try(0x1008, Access.Read);
        d = rig.Mmu.Snapshot() - s0;
        Assert.Equal((0UL, 1UL), (d.Walks, d.TotalHits(TlbLevel.Dtlb)));
        s0 = rig.Mmu.Snapshot();
        rig.Try(0x2000, Access.Read);   // same page table: the PDE comes from the paging-structure cache
        d = rig.Mmu.Snapshot() - s0;
        Assert.Equal((1UL, 1UL, 1UL), (d.Walks, d.WalkMemRefs, d.PscHits(2)));
        s0 = rig.Mmu.Snapshot();
        Assert.Equal(0x0081_0000UL, rig.Try(0x0041_0000, Access.Read).Pa);
        d = rig.Mmu.Snapshot() - s0;
        Assert.Equal((1UL, 1UL), (d.Walks, d.WalkMemRefs));
    }

    [Fact]
    public void A_4_MiB_page_is_cached_as_2_MiB_halves_and_INVLPG_of_either_half_drops_both()
    {
        var rig = new LegacyRig();
        rig.Write4(Pd + 1 * 4, 0x0080_0000 | PS | P | W);
        rig.EnablePaging(Cr4Bits.Pse, Pd);
        Assert.Equal(0x0080_0010UL, rig.Try(0x0040_0010, Access.Read).Pa);
        Assert.Equal(0x00A0_0010UL, rig.Try(0x0060_0010, Access.Read).Pa);
        var halves = rig.Mmu.Entries(TlbLevel.Dtlb).Where(e => e.Size == PageSize.Size2M).Select(e => (e.LinearBase, e.PhysicalBase)).OrderBy(x => x.LinearBase);
        Assert.Equal([(0x0040_0000UL, 0x0080_0000UL), (0x0060_0000UL, 0x00A0_0000UL)], halves);
        rig.Write4(Pd + 1 * 4, 0x00C0_0000 | PS | P | W);
        Assert.Equal(0x0080_0010UL, rig.Try(0x0040_0010, Access.Read).Pa);   // stale until invalidated
        var s0 = rig.Mmu.Snapshot();
        rig.Mmu.Invlpg(0x0070_0000);                                         // an address in the upper half
        Assert.Equal(4UL, (rig.Mmu.Snapshot() - s0).DroppedTlb(FlushCause.Invlpg));   // both halves, in the dTLB and the STLB
        Assert.Equal(0x00C0_0010UL, rig.Try(0x0040_0010, Access.Read).Pa);
    }

    [Fact]
    public void A_page_fault_drops_both_cached_halves_of_a_4_MiB_page()
    {
        var rig = new LegacyRig();
        rig.Write4(Pd + 1 * 4, 0x0080_0000 | PS | P);   // read-only
        rig.EnablePaging(Cr4Bits.Pse, Pd);
        rig.Try(0x0040_0000, Access.Read);
        rig.Try(0x0060_0000, Access.Read);
        rig.Write4(Pd + 1 * 4, 0x00C0_0000 | PS | P | W);
        Assert.Equal(0x3u, rig.Try(0x0060_0000, Access.Write).Err);         // decided from the stale entry
        Assert.Equal(0x00C0_0000UL, rig.Try(0x0040_0000, Access.Read).Pa);  // the other half was dropped too
    }

    [Fact]
    public void Linear_addresses_wrap_at_4_GiB_the_top_PDE_maps_the_last_4_MiB()
    {
        var rig = new LegacyRig();
        rig.Write4(Pd + 1023 * 4, 0x0040_0000 | PS | P | W);
        rig.EnablePaging(Cr4Bits.Pse, Pd);
        Assert.Equal(0x007F_FFFCUL, rig.Try(0xFFFF_FFFC, Access.Read).Pa);
    }
}
