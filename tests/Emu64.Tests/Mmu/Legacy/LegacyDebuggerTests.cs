using Emu64.Debugging;
using Emu64.Mmu;
using Cr4Bits = Emu64.Cpu.Cr4;

namespace Emu64.Tests.Mmu.Legacy;

/// <summary>The debugger's walk, ptdump and the MMU's walk trace in 32-bit and PAE paging.</summary>
[Trait("Category", "Mmu")]
public class LegacyDebuggerTests
{
    private const ulong P = PteFlags.Present, W = PteFlags.Write, U = PteFlags.User, PS = PteFlags.Huge, G = PteFlags.Global;

    private static LegacyRig Bits32()
    {
        var rig = new LegacyRig();
        rig.Write4(0x10000 + 0x300 * 4, 0x0840_0000UL | (0x5AUL << 13) | PS | P | W | G);   // 4 MiB at 0x5A_0840_0000
        rig.Write4(0x10000 + 1 * 4, 0x11000 | P | W | U);
        rig.Write4(0x11000 + 2 * 4, 0x0030_0000 | P | U);
        rig.Write4(0x11000 + 3 * 4, 0x0030_1000 | P | U);
        rig.EnablePaging(Cr4Bits.Pse | Cr4Bits.Pge, 0x10000);
        return rig;
    }

    [Fact]
    public void The_debugger_walk_of_a_32_bit_4_MiB_page_reports_the_PSE_36_address_and_one_level()
    {
        var rig = Bits32();
        var w = PageWalker.Walk(rig.Machine, 0xC012_3456);
        Assert.True(w.Mapped);
        Assert.Equal((0x5A_0852_3456UL, 1UL << 22, true, false, true), (w.Physical, w.PageSize, w.Writable, w.User, w.Global));
        var step = Assert.Single(w.Steps);
        Assert.Equal((2, 0x300, 0x10000UL + 0xC00), (step.Level, step.Index, step.EntryAddr));
        string text = MachineInfo.Walk(rig.Machine, 0xC012_3456, null);
        Assert.Contains("32-bit", text);
        Assert.Contains("= physical 0x5a08523456 (4M page, supervisor read-write exec global)", text);
    }

    [Fact]
    public void The_debugger_walk_of_a_32_bit_4_KiB_page_reads_4_byte_entries()
    {
        var rig = Bits32();
        var w = PageWalker.Walk(rig.Machine, 0x0040_2010);
        Assert.Equal((true, 0x0030_0010UL, 4096UL, false, true), (w.Mapped, w.Physical, w.PageSize, w.Writable, w.User));
        Assert.Equal([(2, 0x10004UL), (1, 0x11008UL)], w.Steps.Select(s => (s.Level, s.EntryAddr)));
        Assert.False(PageWalker.Walk(rig.Machine, 0x0040_4000).Mapped);
    }

    [Fact]
    public void Ptdump_of_32_bit_paging_lists_the_4_MiB_page_and_merges_the_two_4_KiB_pages()
    {
        var rig = Bits32();
        var r = PtDump.Ranges(rig.Machine, rig.Cpu.CR3);
        Assert.Equal([(0x0040_2000UL, 0x0040_4000UL, 1, 0x0030_0000UL), (0xC000_0000UL, 0xC040_0000UL, 2, 0x5A_0840_0000UL)],
            r.Select(x => (x.Start, x.End, x.Level, x.FirstPhys)));
        Assert.Contains("(32-bit)", PtDump.Format(rig.Machine, rig.Cpu.CR3));
    }

    [Fact]
    public void In_PAE_paging_the_walk_uses_the_PDPTE_registers_and_ptdump_lists_each_PDPTE_range()
    {
        var rig = new LegacyRig();
        rig.Write8(0x10020 + 3 * 8, 0x20000 | P);
        rig.Write8(0x20000 + 5 * 8, 0x12_3440_0000UL | PS | P | W);   // la 0xC0A0_0000, 2 MiB
        rig.EnablePaging(Cr4Bits.Pae, 0x10020);
        rig.Write8(0x10020 + 3 * 8, 0);                              // memory changes; the register does not
        var w = PageWalker.Walk(rig.Machine, 0xC0A1_2345);
        Assert.Equal((true, 0x12_3441_2345UL, 2UL << 20), (w.Mapped, w.Physical, w.PageSize));
        Assert.Equal([3, 2], w.Steps.Select(s => s.Level));
        Assert.False(PageWalker.Walk(rig.Machine, 0xC0A1_2345, root: 0x10020).Mapped);   // another root is read from memory
        var r = Assert.Single(PtDump.Ranges(rig.Machine, rig.Cpu.CR3));
        Assert.Equal((0xC0A0_0000UL, 0xC0C0_0000UL, 2), (r.Start, r.End, r.Level));
        var t = rig.Mmu.TraceWalk(0xC0A1_2345);
        Assert.Equal((0x12_3441_2345UL, TranslationSource.Memory, (string?)null), (t.Physical, t.FoundIn, t.Problem));
        Assert.Equal(["PDPTE", "PDE"], t.Levels.Select(l => l.Name));
        rig.Try(0xC0A1_2345, Access.Read);
        Assert.Equal(TranslationSource.L1Tlb, rig.Mmu.TraceWalk(0xC0A1_2345).FoundIn);
    }

    [Fact]
    public void The_walk_trace_of_32_bit_paging_names_the_reserved_bit_problem_of_a_4_MiB_PDE()
    {
        var rig = Bits32();
        rig.Write4(0x10000 + 0x301 * 4, 0x0080_0000 | (1UL << 21) | PS | P);
        var t = rig.Mmu.TraceWalk(0xC040_0000);
        Assert.Equal("PDE has reserved bits set", t.Problem);
        Assert.Null(t.Physical);
    }
}
