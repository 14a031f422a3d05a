using Emu64.Cpu;
using Emu64.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Debug;

/// <summary>
/// The register-level rules next to the debug work: MOV to/from DRn (SDM vol. 2 "MOV—Move to/from Debug Registers",
/// vol. 3B §18.2), RDPMC's #GP, LTR/LLDT and the 57-bit canonical check of system addresses when 5-level paging is
/// supported (vol. 3A §4.5.1), IA32_APIC_BASE and the x2APIC MSR faults (vol. 3A §11.4.4, §11.12), the LVT timer mode.
/// </summary>
public class SystemRegisterRuleTests
{
    private const ulong Code = 0x400000;

    private static int Run(RawMachine r, Action<Iced.Intel.Assembler> body)
    {
        r.Assemble(Code, body);
        r.Cpu.Rip = Code;
        return r.Step();
    }

    [Fact]
    public void DR6_and_DR7_read_with_their_fixed_bits_whatever_is_written()
    {
        var r = new RawMachine();
        r.Cpu.R[Reg.RAX] = 0;
        Assert.Equal(-1, Run(r, a => a.mov(dr6, rax)));
        Assert.Equal(-1, Run(r, a => a.mov(rbx, dr6)));
        Assert.Equal(0xFFFF0FF0UL, r.Cpu.R[Reg.RBX]);
        r.Cpu.R[Reg.RAX] = 0xFFFFFFFF;
        Run(r, a => a.mov(dr6, rax)); Run(r, a => a.mov(rbx, dr6));
        Assert.Equal(0xFFFFEFFFUL, r.Cpu.R[Reg.RBX]);          // bit 12 reads 0; B0-B3, BD, BS, BT as written
        r.Cpu.R[Reg.RAX] = 0;
        Run(r, a => a.mov(dr7, rax)); Run(r, a => a.mov(rbx, dr7));
        Assert.Equal(0x400UL, r.Cpu.R[Reg.RBX]);
    }

    [Fact]
    public void DR4_and_DR5_alias_DR6_and_DR7_unless_CR4_DE_makes_them_UD()
    {
        var r = new RawMachine();
        r.Cpu.R[Reg.RAX] = 0x4001;                             // BS | B0
        Assert.Equal(-1, Run(r, a => a.mov(dr4, rax)));
        Run(r, a => a.mov(rbx, dr6));
        Assert.Equal(0xFFFF4FF1UL, r.Cpu.R[Reg.RBX]);
        r.Cpu.CR4 |= Cr4.De;
        Assert.Equal(Vec.UD, Run(r, a => a.mov(rbx, dr4)));
        Assert.Equal(Vec.UD, Run(r, a => a.mov(dr5, rax)));
    }

    [Fact]
    public void Writing_a_one_above_bit_31_of_DR6_or_DR7_is_GP_but_DR0_takes_a_64_bit_address()
    {
        var r = new RawMachine();
        r.Cpu.R[Reg.RAX] = 1UL << 32;
        Assert.Equal(Vec.GP, Run(r, a => a.mov(dr7, rax)));
        Assert.Equal(Vec.GP, Run(r, a => a.mov(dr6, rax)));
        r.Cpu.R[Reg.RAX] = 0xFFFF_8000_0000_1000;
        Assert.Equal(-1, Run(r, a => a.mov(dr0, rax)));
        Assert.Equal(0xFFFF_8000_0000_1000UL, r.Cpu.DR[0]);
    }

    [Fact]
    public void Debug_registers_that_enable_nothing_leave_the_fast_paths_on_and_an_enable_routes_around_them()
    {
        var r = new RawMachine();
        var c = r.Cpu;
        c.R[Reg.RAX] = 0x5000;
        Run(r, a => a.mov(dr0, rax));
        c.R[Reg.RAX] = 0x000D0000;                              // R/W0 = 01, LEN0 = 11, but neither L0 nor G0
        Run(r, a => a.mov(dr7, rax));
        Assert.False(c.DebugArmed);
        Assert.True(c.DirectData);                               // data accesses go straight to RAM
        c.R[Reg.RAX] = 0x000D0001;                               // L0: a data write breakpoint
        Run(r, a => a.mov(dr7, rax));
        Assert.True(c.DebugArmed);
        Assert.True(c.WatchData);
        Assert.False(c.DirectData);
        c.R[Reg.RAX] = 0x00000001;                               // L0 as an execute breakpoint: no data watch
        Run(r, a => a.mov(dr7, rax));
        Assert.True(c.DebugArmed);
        Assert.True(c.DirectData);
        c.R[Reg.RAX] = 0;
        Run(r, a => a.mov(dr7, rax));
        Assert.False(c.DebugArmed);
    }

    [Fact]
    public void MOV_DR_at_CPL_3_is_GP()
    {
        var r = new RawMachine();
        r.Assemble(Code, a => a.mov(rbx, dr7));
        r.Map(Code, RawMachine.Pte);
        r.Cpu.Rip = Code;
        r.Cpu.Cpl = 3;
        Assert.Equal(Vec.GP, r.Step());
    }

    [Fact]
    public void RDPMC_is_GP_for_every_counter_index_because_this_CPU_has_none()
    {
        var r = new RawMachine();
        foreach (ulong ecx in new ulong[] { 0, 1, 0x40000000 })
        {
            r.Cpu.R[Reg.RCX] = ecx;
            Assert.Equal(Vec.GP, Run(r, a => a.rdpmc()));
        }
    }

    [Fact]
    public void LTR_and_LLDT_with_a_non_canonical_base_in_the_descriptor_are_GP()
    {
        var r = new RawMachine();
        const ulong gdt = 0x500000;
        // 0x08: TSS (available, type 9) with base[63:32] = 0x01000000 (bit 56 set, bits 63:57 clear: not canonical even
        // in 57 bits, the width these are checked against on a CPU with 5-level paging)
        // 0x18: LDT (type 2), the same base
        ulong Low(int type) => 0x67 | ((ulong)type << 40) | (1UL << 47);
        var bytes = new byte[0x28];
        BitConverter.GetBytes(Low(9)).CopyTo(bytes, 0x08); BitConverter.GetBytes(0x01000000UL).CopyTo(bytes, 0x10);
        BitConverter.GetBytes(Low(2)).CopyTo(bytes, 0x18); BitConverter.GetBytes(0x01000000UL).CopyTo(bytes, 0x20);
        r.Write(gdt, bytes);
        r.Cpu.Gdtr = new TableReg { Base = gdt, Limit = 0x27 };
        r.Cpu.R[Reg.RAX] = 0x08;
        Assert.Equal(Vec.GP, Run(r, a => a.ltr(ax)));
        r.Cpu.R[Reg.RAX] = 0x18;
        Assert.Equal(Vec.GP, Run(r, a => a.lldt(ax)));
        // The same descriptors with a canonical base load.
        BitConverter.GetBytes(0xFFFF8000UL).CopyTo(bytes, 0x10); BitConverter.GetBytes(0xFFFF8000UL).CopyTo(bytes, 0x20);
        r.Write(gdt, bytes);
        Assert.Equal(-1, Run(r, a => a.lldt(ax)));
        r.Cpu.R[Reg.RAX] = 0x08;
        Assert.Equal(-1, Run(r, a => a.ltr(ax)));
        Assert.Equal(0xFFFF8000_00000000UL, r.Cpu.Tr.Base);
    }

    [Fact]
    public void With_5_level_paging_supported_system_addresses_are_checked_against_57_bits_even_with_CR4_LA57_clear()
    {
        var r = new RawMachine();
        var c = r.Cpu;
        Assert.True(c.HasLa57);
        Assert.Equal(0UL, c.CR4 & Cr4.La57);
        const ulong canonical57 = 0xFFAA_AAAA_AAAA_AAAA, notCanonical57 = 0x0100_0000_0000_0000;
        foreach (uint msr in new[] { Msr.FsBase, Msr.GsBase, Msr.KernelGsBase, Msr.Lstar, Msr.Cstar })
        {
            Assert.True(c.WriteMsr(msr, canonical57), $"MSR {msr:x}");
            Assert.False(c.WriteMsr(msr, notCanonical57), $"MSR {msr:x}");
        }
        Assert.Equal(canonical57, c.Segs[Seg.FS].Base);
        c.CR4 |= Cr4.Fsgsbase;
        c.R[Reg.RAX] = canonical57;
        Assert.Equal(-1, Run(r, a => a.wrgsbase(rax)));
        Assert.Equal(canonical57, c.Segs[Seg.GS].Base);
        // Without LA57 support the same value is non-canonical (48 bits).
        c.Leaf7Ecx &= ~(1u << 16);
        Assert.False(c.WriteMsr(Msr.FsBase, canonical57));
        Assert.Equal(Vec.GP, Run(r, a => a.wrgsbase(rax)));
    }

    [Fact]
    public void INVPCID_checks_its_descriptor_address_against_57_bits_when_5_level_paging_is_supported()
    {
        var r = new RawMachine();
        var c = r.Cpu;
        const ulong desc = 0x7000_0000;
        r.Map(desc);
        void Address(ulong la) { var b = new byte[16]; BitConverter.TryWriteBytes(b.AsSpan(8), la); r.Write(desc, b); }
        c.R[Reg.RBX] = desc;
        c.R[Reg.RAX] = 0;                                        // type 0: one address, PCID 0
        Address(0xFFAA_AAAA_AAAA_AAAA);                          // canonical in 57 bits, not in 48
        Assert.Equal(-1, Run(r, a => a.invpcid(rax, __[rbx])));
        Address(0x0100_0000_0000_0000);                          // canonical in neither
        Assert.Equal(Vec.GP, Run(r, a => a.invpcid(rax, __[rbx])));
        c.Leaf7Ecx &= ~(1u << 16);                               // a CPU without LA57: 48 bits
        Address(0xFFAA_AAAA_AAAA_AAAA);
        Assert.Equal(Vec.GP, Run(r, a => a.invpcid(rax, __[rbx])));
    }

    [Fact]
    public void IA32_APIC_BASE_refuses_reserved_bits_and_illegal_mode_transitions_and_CPUID_APIC_follows_EN()
    {
        var r = new RawMachine();
        var c = r.Cpu;
        const ulong bsp = 1 << 8, extd = 1 << 10, en = 1 << 11, bas = 0xFEE00000;
        Assert.False(c.WriteMsr(Msr.ApicBase, bas | en | bsp | 1));           // bit 0 reserved
        Assert.False(c.WriteMsr(Msr.ApicBase, bas | en | bsp | (1 << 9)));    // bit 9 reserved
        Assert.False(c.WriteMsr(Msr.ApicBase, bas | en | bsp | (1UL << 46))); // at MAXPHYADDR
        Assert.False(c.WriteMsr(Msr.ApicBase, bas | extd | bsp));             // EXTD without EN
        Assert.True(c.WriteMsr(Msr.ApicBase, bas | en | extd));               // xAPIC -> x2APIC (BSP kept: read-only)
        Assert.Equal(bas | en | extd | bsp, c.ApicBase);
        Assert.False(c.WriteMsr(Msr.ApicBase, bas | en | bsp));               // x2APIC -> xAPIC
        Assert.True(c.WriteMsr(Msr.ApicBase, bas | bsp));                     // -> disabled
        c.Cpuid(1, 0, out _, out _, out _, out uint d);
        Assert.Equal(0u, d & (1u << 9));
        Assert.False(c.WriteMsr(Msr.ApicBase, bas | en | extd | bsp));        // disabled -> x2APIC
        Assert.True(c.WriteMsr(Msr.ApicBase, bas | en | bsp));                // disabled -> xAPIC
        c.Cpuid(1, 0, out _, out _, out _, out d);
        Assert.Equal(1u << 9, d & (1u << 9));
        Assert.Equal(1u << 2, d & (1u << 2));                                  // DE: CR4.DE and I/O breakpoints
    }

    [Fact]
    public void Reserved_and_read_only_x2APIC_MSRs_fault_on_write_and_write_only_ones_on_read()
    {
        var r = new RawMachine();
        var c = r.Cpu;
        Assert.True(c.WriteMsr(Msr.ApicBase, 0xFEE00000 | (1 << 11) | (1 << 10)));
        Assert.True(c.WriteMsr(0x80F, 0x1FF));
        foreach (uint ro in new uint[] { 0x802, 0x803, 0x809, 0x80A, 0x80C, 0x80D, 0x810, 0x817, 0x818, 0x820, 0x827, 0x839 })
            Assert.False(c.WriteMsr(ro, 0), $"write {ro:x}");
        foreach (uint wo in new uint[] { 0x80B, 0x83F, 0x809, 0x80C, 0x80E, 0x831 })
            Assert.False(c.ReadMsr(wo, out _), $"read {wo:x}");
        Assert.True(c.ReadMsr(0x802, out _));
        Assert.True(c.ReadMsr(0x80D, out _));
    }

    [Fact]
    public void Switching_the_LVT_timer_between_one_shot_and_periodic_keeps_TMICT_and_TSC_deadline_mode_clears_it()
    {
        var r = new RawMachine();
        var c = r.Cpu;
        Assert.True(c.WriteMsr(Msr.ApicBase, 0xFEE00000 | (1 << 11) | (1 << 10)));
        Assert.True(c.WriteMsr(0x80F, 0x1FF));
        Assert.True(c.WriteMsr(0x832, 0x40));                  // one-shot
        Assert.True(c.WriteMsr(0x838, 100_000));
        Assert.True(c.WriteMsr(0x832, 0x20040));               // periodic
        Assert.True(c.ReadMsr(0x838, out ulong tmict));
        Assert.Equal(100_000UL, tmict);
        Assert.True(c.ReadMsr(0x839, out ulong tmcct));
        Assert.NotEqual(0UL, tmcct);
        Assert.True(c.WriteMsr(0x832, 0x40040));               // TSC-deadline: disarms
        c.ReadMsr(0x838, out tmict);
        Assert.Equal(0UL, tmict);
    }
}
