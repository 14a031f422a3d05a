using Emu64.Cpu;
using Emu64.Tests.Support;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Tests.Isa;

/// <summary>
/// LAR, LSL, VERR and VERW against a crafted GDT and LDT, in 64-bit mode, compatibility mode and
/// 32-bit protected mode (paging off), at CPL 3 and CPL 0: ZF and the exact destination value for each
/// rule of SDM vol. 2A/2B (type tables for legacy and IA-32e mode, privilege, conforming code, null and
/// out-of-range selectors, granularity, operand sizes, memory operands, #UD in real mode).
/// </summary>
[Trait("Category", "Isa")]
public class DescriptorTests
{
    public enum Mode { Long64, Compat32, Protected32 }

    // descriptor helpers: base 0 unless given; access = type | S<<4 | DPL<<5 | P<<7; flags = G D/B L AVL
    private static ulong Desc(uint limit, int access, int flags, uint b = 0) =>
        (limit & 0xFFFF) | ((ulong)(b & 0xFFFFFF) << 16) | ((ulong)(access & 0xFF) << 40)
        | ((ulong)((limit >> 16) & 0xF) << 48) | ((ulong)(flags & 0xF) << 52) | ((ulong)(b >> 24) << 56);

    private const ulong GdtAt = 0x300000, LdtAt = 0x301000, MemAt = 0x302000;
    private static readonly ulong[] Gdt =
    [
        0,
        Desc(0xFFFFF, 0x9B, 0xA),          // 0x08 64-bit code DPL0
        Desc(0xFFFFF, 0x93, 0xC),          // 0x10 data DPL0
        Desc(0xFFFFF, 0xFB, 0xC),          // 0x18 32-bit code DPL3, readable
        Desc(0xFFFFF, 0xFB, 0xA),          // 0x20 64-bit code DPL3
        Desc(0xFFFFF, 0xF3, 0xC),          // 0x28 data DPL3 read/write
        Desc(0x12345, 0xF1, 0x5),          // 0x30 data DPL3 read-only, byte granular, AVL and D/B set
        Desc(0xFFFFF, 0x9E, 0xC),          // 0x38 conforming readable code DPL0
        Desc(0xFFFFF, 0x9C, 0xC),          // 0x40 conforming execute-only code DPL0
        Desc(0xFFFFF, 0xF8, 0xC),          // 0x48 execute-only code DPL3
        Desc(0xFFFFF, 0xD3, 0xC),          // 0x50 data DPL2
        Desc(0x67, 0xE9, 0x0, 0x1000), 0,  // 0x58 available 64-bit (or 32-bit) TSS DPL3, 16 bytes
        Desc(0x0F, 0xE2, 0x0, (uint)LdtAt), 0,   // 0x68 LDT DPL3, two entries
        Desc(0x1234, 0xEC, 0x0, 0x0008),   // 0x78 64-bit (or 32-bit) call gate DPL3
        Desc(0x1234, 0xEE, 0x0, 0x0008),   // 0x80 interrupt gate DPL3
        Desc(0x2B, 0xE3, 0x0),             // 0x88 busy 16-bit TSS DPL3
        Desc(0, 0xE5, 0x0, 0x0058 << 16),  // 0x90 task gate DPL3
        Desc(0x00012, 0xF3, 0x8),          // 0x98 data DPL3, page granular
        Desc(0xFFFFF, 0x73, 0xC),          // 0xA0 not present data DPL3 (LAR/LSL/VERR do not check P)
    ];
    private static readonly ulong[] Ldt = [Desc(0xABC, 0xF3, 0x4), Desc(0xFFFFF, 0x93, 0xC)];   // 0x04/0x07 data DPL3; 0x0C data DPL0

    private static ulong High(int sel) => Gdt[sel >> 3] >> 32;

    private static CpuCore Machine(Mode mode, int cpl, bool withLdt = true, ulong gdtAt = GdtAt)
    {
        var raw = new RawMachine();
        var cpu = raw.Cpu;
        void Put(ulong at, ulong[] table)
        {
            for (int k = 0; k < table.Length; k++)
                if (mode == Mode.Protected32) raw.Machine.Memory.Write(at + (ulong)k * 8, 8, table[k]);
                else raw.Write(at + (ulong)k * 8, BitConverter.GetBytes(table[k]));
        }
        if (mode == Mode.Protected32)
        {
            cpu.EFER = 0;
            cpu.CR0 = Cr0.Pe | Cr0.Et | Cr0.Ne;
        }
        else raw.Map(MemAt);
        Put(gdtAt, Gdt);
        Put(LdtAt, Ldt);
        cpu.Gdtr = new TableReg { Base = gdtAt, Limit = (ushort)(Gdt.Length * 8 - 1) };
        cpu.Ldtr = withLdt ? new Segment { Selector = 0x68, Base = LdtAt, Limit = 0x0F, Attr = 0xE2 } : new Segment { Attr = 0x82 };
        ushort csSel = (ushort)((mode == Mode.Long64 ? 0x20 : 0x18) | cpl);
        ushort attr = (ushort)((mode == Mode.Long64 ? 0xA09B : 0xC09B) | (cpl << 5));
        cpu.Segs[Seg.CS] = new Segment { Selector = csSel, Limit = 0xFFFFFFFF, Attr = attr };
        cpu.Segs[Seg.DS] = new Segment { Selector = (ushort)(0x28 | cpl), Limit = 0xFFFFFFFF, Attr = 0xC0F3 };
        cpu.Segs[Seg.SS] = cpu.Segs[Seg.DS];
        cpu.UpdateMode();
        cpu.Mmu.FlushHostCache();
        Assert.Equal(cpl, cpu.Cpl);
        return cpu;
    }

    /// <summary>Runs one instruction from bytes (not fetched from memory); returns the fault vector or -1.</summary>
    private static unsafe int Exec(CpuCore cpu, params byte[] bytes)
    {
        var d = default(Insn);
        DecodeCache.DecodeOne(bytes, 0x1000, cpu.Bitness, ref d);
        cpu.InsnRip = cpu.Rip = 0x1000;
        cpu.Rip += d.Length;
        try { d.Exec(cpu, ref d); return -1; }
        catch (GuestFault f) { cpu.Rip = cpu.InsnRip; return f.Vector; }
    }

    private const ulong Junk = 0x1111_2222_3333_4444;

    /// <summary>LAR eax/ax/rax ← bx (0F 02 C3) with ZF preset to the opposite of the expectation; returns (ZF, RAX).</summary>
    private static (bool Zf, ulong Rax) Run(CpuCore cpu, byte[] bytes, ushort sel)
    {
        cpu.R[Reg.RAX] = Junk;
        cpu.R[Reg.RBX] = 0xABCD_0000_0000_0000UL | sel;    // only the low 16 bits are the selector
        cpu.Rflags = RFlags.Reserved1 | RFlags.ZF;
        Assert.Equal(-1, Exec(cpu, bytes));
        bool z1 = cpu.Zf;
        ulong r1 = cpu.R[Reg.RAX];
        cpu.R[Reg.RAX] = Junk;
        cpu.Rflags = RFlags.Reserved1;
        Assert.Equal(-1, Exec(cpu, bytes));
        Assert.Equal(z1, cpu.Zf);                           // ZF is written either way
        Assert.Equal(r1, cpu.R[Reg.RAX]);
        return (z1, r1);
    }

    private static readonly byte[] Lar32 = [0x0F, 0x02, 0xC3], Lar16 = [0x66, 0x0F, 0x02, 0xC3], Lar64 = [0x48, 0x0F, 0x02, 0xC3];
    private static readonly byte[] Lsl32 = [0x0F, 0x03, 0xC3], Lsl16 = [0x66, 0x0F, 0x03, 0xC3], Lsl64 = [0x48, 0x0F, 0x03, 0xC3];
    private static readonly byte[] VerrBx = [0x0F, 0x00, 0xE3], VerwBx = [0x0F, 0x00, 0xEB];

    /// <summary>A successful 32-bit destination write zero-extends (in compatibility and legacy mode too, as the host does).</summary>
    private static ulong Zx32(ulong v, Mode m) => v & 0xFFFFFFFF;

    [Theory]
    [InlineData(Mode.Long64)]
    [InlineData(Mode.Compat32)]
    [InlineData(Mode.Protected32)]
    public void LAR_loads_the_access_rights_of_visible_code_and_data_segments(Mode mode)
    {
        var cpu = Machine(mode, 3);
        // 32-bit: bytes 5..7 of the descriptor masked by 00FFFF00 (limit 19:16 kept, as the host does)
        Assert.Equal((true, Zx32(High(0x28) & 0x00FFFF00, mode)), Run(cpu, Lar32, 0x2B));
        Assert.Equal((true, Zx32(0x00C0FB00 | 0xF0000, mode)), Run(cpu, Lar32, 0x1B));
        Assert.Equal((true, Zx32(0x0051F100, mode)), Run(cpu, Lar32, 0x33));   // AVL, D/B, limit 1
        Assert.Equal((true, (Junk & ~0xFFFFUL) | 0xF300), Run(cpu, Lar16, 0x2B));  // 16-bit: FF00 mask, upper bits kept
        if (mode == Mode.Long64) Assert.Equal((true, 0x00CFF300UL), Run(cpu, Lar64, 0x2B));
        Assert.Equal((true, Zx32(0x00CF9E00, mode)), Run(cpu, Lar32, 0x3B));   // conforming DPL0: no privilege check
        Assert.Equal((true, Zx32(0x00CF9C00, mode)), Run(cpu, Lar32, 0x43));
        Assert.Equal((true, Zx32(0x00CF7300, mode)), Run(cpu, Lar32, 0xA3));   // not present: still reported
        Assert.Equal((true, Zx32(0x0040F300, mode)), Run(cpu, Lar32, 0x07));   // LDT entry 0
    }

    [Theory]
    [InlineData(Mode.Long64)]
    [InlineData(Mode.Compat32)]
    [InlineData(Mode.Protected32)]
    public void LAR_and_LSL_clear_ZF_and_keep_the_destination_when_the_check_fails(Mode mode)
    {
        var cpu = Machine(mode, 3);
        foreach (ushort sel in new ushort[] { 0, 1, 2, 3, 0x0B, 0x13, 0x53, 0x83, 0xA8, 0xAB, 0xFFFF, 0x0F })
        {
            Assert.Equal((false, Junk), Run(cpu, Lar32, sel));   // null, DPL < CPL, interrupt gate, past the limit, LDT DPL0
            Assert.Equal((false, Junk), Run(cpu, Lsl32, sel));
            if (mode == Mode.Long64) Assert.Equal((false, Junk), Run(cpu, Lar64, sel));   // 48 is DEC EAX outside 64-bit mode
            Assert.Equal((false, Junk), Run(cpu, Lsl16, sel));
        }
        var noLdt = Machine(mode, 3, withLdt: false);
        Assert.Equal((false, Junk), Run(noLdt, Lar32, 0x07));   // no LDT loaded: ZF = 0, not #GP
        Assert.Equal((false, Junk), Run(noLdt, Lsl32, 0x07));
    }

    [Theory]
    [InlineData(Mode.Long64)]
    [InlineData(Mode.Compat32)]
    [InlineData(Mode.Protected32)]
    public void System_descriptor_types_follow_the_legacy_or_IA32e_table(Mode mode)
    {
        var cpu = Machine(mode, 3);
        bool ia32e = mode != Mode.Protected32;
        Assert.Equal((true, Zx32(0x0000E900, mode)), Run(cpu, Lar32, 0x5B));   // available TSS: valid in both
        Assert.Equal((true, Zx32(0x67, mode)), Run(cpu, Lsl32, 0x5B));
        Assert.Equal((true, Zx32(0x0000E200, mode)), Run(cpu, Lar32, 0x6B));   // LDT: valid in both
        Assert.Equal((true, Zx32(0x0F, mode)), Run(cpu, Lsl32, 0x6B));
        Assert.Equal((true, Zx32(0x0000EC00, mode)), Run(cpu, Lar32, 0x7B));   // call gate: LAR only
        Assert.Equal((false, Junk), Run(cpu, Lsl32, 0x7B));
        Assert.Equal(ia32e ? (false, Junk) : (true, Zx32(0x0000E300, mode)), Run(cpu, Lar32, 0x8B));   // busy 16-bit TSS: legacy only
        Assert.Equal(ia32e ? (false, Junk) : (true, Zx32(0x2B, mode)), Run(cpu, Lsl32, 0x8B));
        Assert.Equal(ia32e ? (false, Junk) : (true, Zx32(0x0000E500, mode)), Run(cpu, Lar32, 0x93));   // task gate: LAR, legacy only
        Assert.Equal((false, Junk), Run(cpu, Lsl32, 0x93));
        Assert.Equal((false, Junk), Run(cpu, Lar32, 0x83));   // interrupt gate: never
    }

    [Theory]
    [InlineData(Mode.Long64)]
    [InlineData(Mode.Compat32)]
    [InlineData(Mode.Protected32)]
    public void LSL_scales_page_granular_limits_and_truncates_to_the_operand_size(Mode mode)
    {
        var cpu = Machine(mode, 3);
        Assert.Equal((true, Zx32(0x12345, mode)), Run(cpu, Lsl32, 0x33));
        Assert.Equal((true, (Junk & ~0xFFFFUL) | 0x2345), Run(cpu, Lsl16, 0x33));
        Assert.Equal((true, Zx32(0x12FFF, mode)), Run(cpu, Lsl32, 0x9B));
        Assert.Equal((true, Zx32(0xFFFFFFFF, mode)), Run(cpu, Lsl32, 0x2B));
        Assert.Equal((true, Zx32(0xFFFFFFFF, mode)), Run(cpu, Lsl32, 0x3B));   // conforming DPL0 code at CPL 3
        Assert.Equal((true, Zx32(0xABC, mode)), Run(cpu, Lsl32, 0x07));
        if (mode == Mode.Long64) Assert.Equal((true, 0xFFFFFFFFUL), Run(cpu, Lsl64, 0x2B));   // zero-extended
    }

    [Theory]
    [InlineData(Mode.Long64)]
    [InlineData(Mode.Compat32)]
    [InlineData(Mode.Protected32)]
    public void VERR_and_VERW_check_readability_writability_and_privilege(Mode mode)
    {
        var cpu = Machine(mode, 3);
        bool V(byte[] b, ushort sel) => Run(cpu, b, sel).Zf;
        Assert.True(V(VerrBx, 0x2B)); Assert.True(V(VerwBx, 0x2B));       // read/write data DPL3
        Assert.True(V(VerrBx, 0x33)); Assert.False(V(VerwBx, 0x33));      // read-only data
        Assert.True(V(VerrBx, 0x1B)); Assert.False(V(VerwBx, 0x1B));      // readable code: never writable
        Assert.True(V(VerrBx, 0x3B)); Assert.False(V(VerwBx, 0x3B));      // conforming readable DPL0: no privilege check
        Assert.False(V(VerrBx, 0x43));                                    // conforming execute-only
        Assert.False(V(VerrBx, 0x4B));                                    // execute-only DPL3
        Assert.False(V(VerrBx, 0x13)); Assert.False(V(VerwBx, 0x13));     // DPL0 data at CPL3
        Assert.False(V(VerrBx, 0x5B)); Assert.False(V(VerwBx, 0x5B));     // system descriptors
        Assert.False(V(VerrBx, 0x6B)); Assert.False(V(VerrBx, 0x7B));
        Assert.False(V(VerrBx, 0)); Assert.False(V(VerwBx, 3)); Assert.False(V(VerrBx, 0xA8));
        Assert.True(V(VerrBx, 0xA3)); Assert.True(V(VerwBx, 0xA3));       // P is not checked
        Assert.True(V(VerwBx, 0x07)); Assert.False(V(VerrBx, 0x0F));      // LDT entries
        Assert.Equal(Junk, cpu.R[Reg.RAX]);
    }

    [Theory]
    [InlineData(Mode.Long64)]
    [InlineData(Mode.Protected32)]
    public void At_CPL0_the_RPL_still_limits_visibility(Mode mode)
    {
        var cpu = Machine(mode, 0);
        Assert.True(Run(cpu, Lar32, 0x10).Zf);
        Assert.False(Run(cpu, Lar32, 0x13).Zf);      // RPL3 > DPL0
        Assert.True(Run(cpu, Lar32, 0x52).Zf);       // DPL2, RPL2
        Assert.False(Run(cpu, Lar32, 0x53).Zf);      // RPL3 > DPL2
        Assert.True(Run(cpu, VerwBx, 0x52).Zf);
        Assert.False(Run(cpu, VerwBx, 0x53).Zf);
        Assert.True(Run(cpu, VerrBx, 0x0C).Zf);
        Assert.False(Run(cpu, VerrBx, 0x0F).Zf);
        Assert.True(Run(cpu, Lsl32, 0x0C).Zf);
    }

    [Theory]
    [InlineData(Mode.Long64)]
    [InlineData(Mode.Protected32)]
    public void Memory_operand_forms_read_a_16_bit_selector(Mode mode)
    {
        var cpu = Machine(mode, 3);
        ulong mem = mode == Mode.Protected32 ? 0x304000 : MemAt;
        void PutSel(ushort sel)
        {
            if (mode == Mode.Protected32) cpu.Machine.Memory.Write(mem, 8, 0xFFFF_FFFF_FFFF_0000UL | sel);
            else cpu.WriteLinear(mem, 8, 0xFFFF_FFFF_FFFF_0000UL | sel);
        }
        cpu.R[Reg.RBX] = mem;
        PutSel(0x33);
        cpu.R[Reg.RAX] = Junk;
        Assert.Equal(-1, Exec(cpu, 0x0F, 0x03, 0x03));                    // lsl eax, [rbx]
        Assert.True(cpu.Zf);
        Assert.Equal(Zx32(0x12345, mode), cpu.R[Reg.RAX]);
        Assert.Equal(-1, Exec(cpu, 0x0F, 0x02, 0x03));                    // lar eax, [rbx]
        Assert.Equal(Zx32(0x0051F100, mode), cpu.R[Reg.RAX]);
        Assert.Equal(-1, Exec(cpu, 0x0F, 0x00, 0x2B));                    // verw [rbx]
        Assert.False(cpu.Zf);
        Assert.Equal(-1, Exec(cpu, 0x0F, 0x00, 0x23));                    // verr [rbx]
        Assert.True(cpu.Zf);
        PutSel(0);
        Assert.Equal(-1, Exec(cpu, 0x0F, 0x00, 0x23));
        Assert.False(cpu.Zf);
    }

    [Fact]
    public void They_fault_on_the_memory_operand_but_not_on_the_selector()
    {
        var cpu = Machine(Mode.Long64, 3);
        cpu.R[Reg.RBX] = 0x7FFF_0000_0000;                                 // not mapped: #PF
        Assert.Equal(Vec.PF, Exec(cpu, 0x0F, 0x02, 0x03));
        cpu.R[Reg.RBX] = 0x8000_0000_0000;                                 // non-canonical: #GP
        Assert.Equal(Vec.GP, Exec(cpu, 0x0F, 0x00, 0x23));
        Assert.Equal(0x1000UL, cpu.Rip);
    }

    [Fact]
    public void In_compatibility_mode_the_descriptor_tables_keep_their_64_bit_base()
    {
        // a 64-bit kernel's GDT lives above 4 GiB; compatibility-mode code still reads it through the full base
        var cpu = Machine(Mode.Compat32, 3, gdtAt: 0xFFFF_FE00_0000_0000);
        Assert.Equal((true, 0x00CFF300UL), Run(cpu, Lar32, 0x2B));
        Assert.Equal((true, 0x12345UL), Run(cpu, Lsl32, 0x33));
    }

    [Fact]
    public void A_null_data_segment_faults_when_used_in_compatibility_mode()
    {
        // SDM: outside 64-bit mode a memory reference through a segment register holding a null selector is #GP(0);
        // only 64-bit mode ignores DS/ES null selectors
        var cpu = Machine(Mode.Compat32, 3);
        cpu.R[Reg.RBX] = MemAt;
        Assert.Equal(-1, Exec(cpu, 0x8B, 0x03));                    // mov eax,[ebx] through DS 0x2B
        foreach (int seg in new[] { Seg.DS, Seg.ES, Seg.FS, Seg.GS })
        {
            var data = cpu.Segs[Seg.DS];
            byte[] prefixed = seg switch { Seg.DS => [0x8B, 0x03], Seg.ES => [0x26, 0x8B, 0x03], Seg.FS => [0x64, 0x8B, 0x03], _ => [0x65, 0x8B, 0x03] };
            cpu.Segs[seg] = data;
            Assert.Equal(-1, Exec(cpu, prefixed));
            cpu.Segs[seg] = data with { Selector = 0 };        // a null selector with the old descriptor cache left behind
            Assert.Equal(Vec.GP, Exec(cpu, prefixed));
            cpu.Segs[seg] = data;
        }
    }

    [Fact]
    public void They_raise_UD_in_real_mode()
    {
        var raw = new RawMachine();
        var cpu = raw.Cpu;
        cpu.EFER = 0;
        cpu.CR0 = Cr0.Et;
        for (int s = 0; s < 6; s++) cpu.Segs[s] = new Segment { Limit = 0xFFFF, Attr = 0x93 };
        cpu.UpdateMode();
        cpu.Mmu.FlushHostCache();
        Assert.Equal(CpuMode.Real, cpu.Mode);
        foreach (var b in new[] { Lar32, Lsl32, VerrBx, VerwBx }) Assert.Equal(Vec.UD, Exec(cpu, b));
        // SDM: SLDT, STR, LLDT and LTR are not recognized in real-address mode either
        foreach (var b in new byte[][] { [0x0F, 0x00, 0xC0], [0x0F, 0x00, 0xC8], [0x0F, 0x00, 0xD0], [0x0F, 0x00, 0xD8] })
            Assert.Equal(Vec.UD, Exec(cpu, b));
    }
}
