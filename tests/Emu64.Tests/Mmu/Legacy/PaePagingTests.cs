using Emu64.Cpu;
using Emu64.Mmu;
using Cr0Bits = Emu64.Cpu.Cr0;
using Cr4Bits = Emu64.Cpu.Cr4;

namespace Emu64.Tests.Mmu.Legacy;

using PagingMode = Emu64.Mmu.PagingMode;

/// <summary>
/// PAE paging outside IA-32e mode (CR0.PG = 1, CR4.PAE = 1, IA32_EFER.LME = 0, SDM vol. 3A §4.4): the four PDPTE
/// registers and their load-time #GP, 2 MiB and 4 KiB pages, XD with NXE, reserved bits, and switching between
/// 32-bit and PAE paging with paging on.
/// </summary>
[Trait("Category", "Mmu")]
public class PaePagingTests
{
    private const ulong P = PteFlags.Present, W = PteFlags.Write, U = PteFlags.User, A = PteFlags.Accessed, D = PteFlags.Dirty;
    private const ulong PS = PteFlags.Huge, Nx = PteFlags.Nx;
    private const ulong Pdpt = 0x10020;              // 32-byte aligned, not page aligned: CR3[31:5]
    private const ulong Pd0 = 0x20000, Pd3 = 0x23000, Pt = 0x30000;

    /// <summary>PDPTE 0 and 3 present; PD0[2] (la 0x0040_0000) references <see cref="Pt"/>.</summary>
    private static LegacyRig Rig(ulong cr4 = Cr4Bits.Pae, bool nxe = false, bool enable = true)
    {
        var rig = new LegacyRig();
        rig.Write8(Pdpt + 0, Pd0 | P);
        rig.Write8(Pdpt + 24, Pd3 | P);
        rig.Write8(Pd0 + 2 * 8, Pt | P | W | U);
        if (enable)
        {
            rig.EnablePaging(cr4, Pdpt, nxe: nxe);
            Assert.Equal(PagingMode.Pae, rig.Mmu.Mode);
        }
        return rig;
    }

    [Fact]
    public void A_4_KiB_page_translates_through_the_PDPTE_register_the_PD_and_the_PT_with_9_bit_indices()
    {
        var rig = Rig();
        rig.Write8(Pt + 0x1F * 8, 0x0012_3000 | P | W);
        Assert.Equal(0x0012_3ABCUL, rig.Try(0x0041_FABC, Access.Write).Pa);
        Assert.Equal(Pt | P | W | U | A, rig.Read8(Pd0 + 2 * 8));
        Assert.Equal(0x0012_3000 | P | W | A | D, rig.Read8(Pt + 0x1F * 8));
        Assert.Equal(Pd0 | P, rig.Read8(Pdpt));   // PDPTEs are registers: no A bit is written to them
    }

    [Fact]
    public void A_2_MiB_page_maps_above_4_GiB_and_its_PAT_bit_12_is_not_an_address_bit()
    {
        var rig = Rig();
        rig.Write8(Pd3 + 5 * 8, 0x12_3440_0000UL | PteFlags.PatLarge | PS | P | W);   // la 0xC0A0_0000
        Assert.Equal(0x12_3440_0000UL + 0x1_2345, rig.Try(0xC0A1_2345, Access.Read).Pa);
    }

    [Theory]
    [InlineData(1UL << 13)]                 // bits 20:13 of a 2 MiB PDE
    [InlineData(1UL << 46)]                 // MAXPHYADDR (46) and up
    [InlineData(1UL << 62)]                 // bits 62:52 are reserved with PAE paging (ignored in IA-32e mode)
    [InlineData(Nx)]                        // XD without IA32_EFER.NXE
    public void Reserved_bits_of_a_PDE_fault_with_RSVD(ulong bit)
    {
        var rig = Rig();
        rig.Write8(Pd3 + 5 * 8, 0x0040_0000UL | bit | PS | P | W);
        var r = rig.Try(0xC0A0_0010, Access.Read | Access.User);
        Assert.Equal((null, 0xDu, 0xC0A0_0010UL), (r.Pa, r.Err, r.Cr2));
    }

    [Fact]
    public void With_NXE_an_XD_page_faults_a_fetch_with_the_I_D_bit_and_reads_still_work()
    {
        var rig = Rig(nxe: true);
        rig.Write8(Pt + 3 * 8, 0x0050_0000 | Nx | P | W);
        Assert.Equal(0x11u, rig.Try(0x0040_3000, Access.Fetch).Err);
        Assert.Equal(0x0050_0000UL, rig.Try(0x0040_3000, Access.Read).Pa);
        Assert.Equal(0x10u, rig.Try(0x0040_4000, Access.Fetch).Err);   // not present: I/D with PAE and NXE
    }

    [Fact]
    public void A_not_present_PDPTE_faults_with_P_clear_and_without_a_memory_reference()
    {
        var rig = Rig();
        var s0 = rig.Mmu.Snapshot();
        var r = rig.Try(0x4000_1000, Access.Write);   // PDPTE 1
        Assert.Equal((null, 0x2u, 0x4000_1000UL), (r.Pa, r.Err, r.Cr2));
        Assert.Equal(0UL, (rig.Mmu.Snapshot() - s0).WalkMemRefs);
    }

    [Theory]
    [InlineData(1UL << 1)]     // R/W is reserved in a PAE PDPTE
    [InlineData(1UL << 2)]     // U/S
    [InlineData(1UL << 5)]     // bits 8:5
    [InlineData(1UL << 8)]
    [InlineData(1UL << 46)]    // above MAXPHYADDR
    [InlineData(Nx)]           // bit 63
    public void MOV_CR3_with_a_present_PDPTE_that_sets_a_reserved_bit_is_GP0_and_changes_nothing(ulong bit)
    {
        var rig = Rig();
        const ulong other = 0x18000;
        rig.Write8(other + 8, Pd0 | P | bit);
        var before = rig.Mmu.PdpteRegisters.ToArray();
        Assert.Equal((13, 0u), rig.Mov(3, other));
        Assert.Equal(Pdpt, rig.Cpu.CR3);
        Assert.Equal(before, rig.Mmu.PdpteRegisters.ToArray());
        rig.Write8(other + 8, bit);                 // reserved bits in a not-present PDPTE are fine
        Assert.Null(rig.Mov(3, other));
        Assert.Equal([0UL, bit, 0UL, 0UL], rig.Mmu.PdpteRegisters.ToArray());
    }

    [Fact]
    public void Setting_CR0_PG_loads_the_PDPTEs_and_a_bad_one_is_GP0_with_paging_left_off()
    {
        var rig = Rig(enable: false);
        rig.Write8(Pdpt + 16, Pd0 | P | W);
        Assert.Null(rig.Mov(4, Cr4Bits.Pae));
        Assert.Null(rig.Mov(3, Pdpt));              // paging off: MOV CR3 loads nothing
        Assert.Equal((13, 0u), rig.Mov(0, rig.Cpu.CR0 | Cr0Bits.Pg));
        Assert.Equal(PagingMode.None, rig.Mmu.Mode);
        rig.Write8(Pdpt + 16, Pd0 | P);
        Assert.Null(rig.Mov(0, rig.Cpu.CR0 | Cr0Bits.Pg));
        Assert.Equal([Pd0 | P, 0UL, Pd0 | P, Pd3 | P], rig.Mmu.PdpteRegisters.ToArray());
    }

    [Fact]
    public void The_PDPTE_registers_are_not_reread_by_a_walk_until_the_next_MOV_CR3()
    {
        var rig = Rig();
        rig.Write8(Pt, 0x0050_0000 | P | W);
        const ulong pd1 = 0x21000, pt1 = 0x31000;
        rig.Write8(pd1 + 2 * 8, pt1 | P | W);
        rig.Write8(pt1, 0x0060_0000 | P | W);
        rig.Write8(Pdpt, pd1 | P);                  // rewrite PDPTE 0 in memory
        Assert.Equal(0x0050_0000UL, rig.Try(0x0040_0000, Access.Read).Pa);   // the register still says Pd0
        Assert.Null(rig.Mov(3, Pdpt));
        Assert.Equal(0x0060_0000UL, rig.Try(0x0040_0000, Access.Read).Pa);
    }

    [Fact]
    public void Changing_PGE_reloads_the_PDPTEs_and_faults_on_a_bad_one()
    {
        var rig = Rig();
        rig.Write8(Pdpt + 8, Pd0 | P | (1UL << 7));   // bit 7 is reserved (8:5)
        Assert.Equal((13, 0u), rig.Mov(4, Cr4Bits.Pae | Cr4Bits.Pge));
        Assert.Equal(Cr4Bits.Pae, rig.Cpu.CR4);
        Assert.Null(rig.Mov(4, Cr4Bits.Pae | Cr4Bits.Osfxsr));   // a bit that does not reload the PDPTEs
    }

    [Fact]
    public void CR4_PAE_may_change_with_paging_on_outside_IA_32e_mode_switching_between_32_bit_and_PAE_paging()
    {
        var rig = Rig();
        rig.Write8(Pt, 0x0050_0000 | P | W);
        Assert.Equal(0x0050_0000UL, rig.Try(0x0040_0000, Access.Read).Pa);
        // The same CR3 as a 32-bit page directory: PDE[1] (la 0x0040_0000) is a 4 MiB page.
        ulong pd32 = Pdpt & ~0xFFFUL;
        rig.Write4(pd32 + 4, 0x00C0_0000 | PS | P | W);
        var s0 = rig.Mmu.Snapshot();
        Assert.Null(rig.Mov(4, Cr4Bits.Pse));
        Assert.Equal(PagingMode.Bits32, rig.Mmu.Mode);
        Assert.True((rig.Mmu.Snapshot() - s0).DroppedTlb(FlushCause.Cr4) > 0);
        Assert.Equal(0x00C0_0000UL, rig.Try(0x0040_0000, Access.Read).Pa);
        Assert.Null(rig.Mov(4, Cr4Bits.Pae));
        Assert.Equal(PagingMode.Pae, rig.Mmu.Mode);
        Assert.Equal(0x0050_0000UL, rig.Try(0x0040_0000, Access.Read).Pa);
    }

    [Fact]
    public void Entering_IA_32e_mode_from_32_bit_paging_needs_paging_off_first()
    {
        var rig = new LegacyRig();
        rig.EnablePaging(Cr4Bits.Pse, 0x10000);
        Assert.False(rig.Cpu.WriteMsr(Msr.Efer, Efer.Lme));   // LME cannot change with paging on
        Assert.Null(rig.Mov(0, rig.Cpu.CR0 & ~Cr0Bits.Pg));
        Assert.True(rig.Cpu.WriteMsr(Msr.Efer, Efer.Lme));
        Assert.Equal((13, 0u), rig.Mov(0, rig.Cpu.CR0 | Cr0Bits.Pg));   // IA-32e mode requires CR4.PAE
    }

    [Fact]
    public void A_PDE_is_cached_in_the_paging_structure_cache_and_counted_as_a_hit_on_the_next_walk()
    {
        var rig = Rig();
        rig.Write8(Pt, 0x0050_0000 | P | W);
        rig.Write8(Pt + 8, 0x0051_0000 | P | W);
        var s0 = rig.Mmu.Snapshot();
        rig.Try(0x0040_0000, Access.Read);
        rig.Try(0x0040_1000, Access.Read);
        var d = rig.Mmu.Snapshot() - s0;
        Assert.Equal((2UL, 3UL, 1UL, 1UL), (d.Walks, d.WalkMemRefs, d.PscMisses, d.PscHits(2)));
    }
}
