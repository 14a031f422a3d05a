using Emu64.Cpu;
using Emu64.Mmu;
using static Iced.Intel.AssemblerRegisters;
using Cr4Bits = Emu64.Cpu.Cr4;

namespace Emu64.Tests.Mmu;

/// <summary>Every #GP/#UD rule of MOV CR0/CR3/CR4, INVLPG and INVPCID that concerns paging (SDM vol. 2 and vol. 3A §4.10).</summary>
[Trait("Category", "Mmu")]
[Trait("Category", "Faults")]
public class PagingFaultTests
{
    private const ulong DescLa = 0x5000;

    private static MmuRig Rig(int cpl = 0)
    {
        var rig = new MmuRig();
        rig.Map4K(DescLa, 0x5000);
        rig.Map4K(0x7000, 0x7000);
        rig.Long64(cpl);
        return rig;
    }

    private static (int, uint)? Invpcid(MmuRig rig, ulong type, ulong lo, ulong hi)
    {
        rig.Machine.Memory.Write(0x5000, 8, lo);
        rig.Machine.Memory.Write(0x5008, 8, hi);
        rig.Cpu.R[Reg.RAX] = type;
        rig.Cpu.R[Reg.RBX] = DescLa;
        return rig.Exec(a => a.invpcid(rax, __[rbx]));
    }

    private static readonly (int, uint) Gp0 = (Vec.GP, 0), Ud = (Vec.UD, 0);

    [Fact]
    public void Setting_PCIDE_with_nonzero_CR3_bits_11_0_raises_GP()
    {
        var rig = Rig();
        rig.Cpu.CR3 = MmuRig.Pml4 | 0x001;
        rig.Cpu.R[Reg.RAX] = rig.Cpu.CR4 | Cr4Bits.Pcide;
        Assert.Equal(Gp0, rig.Exec(a => a.mov(cr4, rax)));
        Assert.Equal(0UL, rig.Cpu.CR4 & Cr4Bits.Pcide);
        rig.Cpu.CR3 = MmuRig.Pml4;
        Assert.Null(rig.Exec(a => a.mov(cr4, rax)));
        Assert.NotEqual(0UL, rig.Cpu.CR4 & Cr4Bits.Pcide);
    }

    [Fact]
    public void Setting_PCIDE_outside_IA32e_mode_raises_GP()
    {
        var rig = new MmuRig();
        rig.Cpu.CR0 = Cr0.Pe | Cr0.Et;
        rig.Cpu.EFER = 0;
        rig.Cpu.CR3 = 0;
        rig.Cpu.Mode = CpuMode.Protected32;
        rig.Cpu.R[Reg.RAX] = Cr4Bits.Pae | Cr4Bits.Pcide;
        Assert.Equal(Gp0, rig.Exec(a => a.mov(cr4, eax)));
    }

    [Fact]
    public void Setting_PCIDE_without_CPUID_PCID_raises_GP()
    {
        var rig = Rig();
        rig.Cpu.Leaf1Ecx &= ~(1u << 17);
        rig.Cpu.R[Reg.RAX] = rig.Cpu.CR4 | Cr4Bits.Pcide;
        Assert.Equal(Gp0, rig.Exec(a => a.mov(cr4, rax)));
    }

    [Fact]
    public void Clearing_PG_while_PCIDE_is_set_raises_GP_even_in_compatibility_mode()
    {
        var rig = new MmuRig();
        rig.Cpu.Mode = CpuMode.Compat32;
        rig.Cpu.CR4 |= Cr4Bits.Pcide;
        rig.Cpu.R[Reg.RAX] = Cr0.Pe | Cr0.Et;
        Assert.Equal(Gp0, rig.Exec(a => a.mov(cr0, eax)));
        rig.Cpu.CR4 &= ~Cr4Bits.Pcide;                       // the same write is legal without PCIDE
        Assert.Null(rig.Exec(a => a.mov(cr0, eax)));
        Assert.Equal(0UL, rig.Cpu.CR0 & Cr0.Pg);
    }

    [Fact]
    public void Changing_LA57_with_paging_on_raises_GP_and_CPUID_reports_LA57()
    {
        var rig = Rig();
        rig.Cpu.R[Reg.RAX] = rig.Cpu.CR4 | Cr4Bits.La57;
        Assert.Equal(Gp0, rig.Exec(a => a.mov(cr4, rax)));
        rig.Cpu.Cpuid(7, 0, out _, out _, out uint ecx, out _);
        Assert.NotEqual(0u, ecx & (1u << 16));
        rig.Cpu.Cpuid(0x80000008, 0, out uint eax, out _, out _, out _);
        Assert.Equal(57u, (eax >> 8) & 0xFF);
    }

    [Fact]
    public void Clearing_PAE_in_IA32e_mode_raises_GP()
    {
        var rig = Rig();
        rig.Cpu.R[Reg.RAX] = rig.Cpu.CR4 & ~Cr4Bits.Pae;
        Assert.Equal(Gp0, rig.Exec(a => a.mov(cr4, rax)));
    }

    [Fact]
    public void MOV_CR3_with_bits_above_MAXPHYADDR_raises_GP_and_bit_63_is_reserved_without_PCIDE()
    {
        var rig = Rig();
        rig.Cpu.R[Reg.RAX] = 1UL << 50 | MmuRig.Pml4;
        Assert.Equal(Gp0, rig.Exec(a => a.mov(cr3, rax)));
        rig.Cpu.R[Reg.RAX] = 1UL << 63 | MmuRig.Pml4;
        Assert.Equal(Gp0, rig.Exec(a => a.mov(cr3, rax)));
        rig.Cpu.CR4 |= Cr4Bits.Pcide;
        Assert.Null(rig.Exec(a => a.mov(cr3, rax)));
        Assert.Equal(MmuRig.Pml4, rig.Cpu.CR3);             // NOFLUSH is not stored
    }

    [Fact]
    public void MOV_CR3_INVLPG_and_INVPCID_at_CPL3_raise_GP()
    {
        var rig = Rig(cpl: 3);
        rig.Cpu.R[Reg.RAX] = MmuRig.Pml4;
        Assert.Equal(Gp0, rig.Exec(a => a.mov(cr3, rax)));
        Assert.Equal(Gp0, rig.Exec(a => a.invlpg(__[rax])));
        Assert.Equal(Gp0, Invpcid(rig, 2, 0, 0));
    }

    [Fact]
    public void INVPCID_without_CPUID_support_raises_UD_even_at_CPL3()
    {
        var rig = Rig(cpl: 3);
        rig.Cpu.Leaf7Ebx &= ~(1u << 10);
        Assert.Equal(Ud, Invpcid(rig, 2, 0, 0));
    }

    [Theory]
    [InlineData(4UL, 0UL, 0UL)]                                    // type above 3
    [InlineData(0xFFFFFFFF_FFFFFFFFUL, 0UL, 0UL)]                  // type far above 3
    [InlineData(2UL, 0x1000UL, 0UL)]                               // descriptor bits 63:12 not zero
    [InlineData(3UL, 1UL << 40, 0UL)]
    [InlineData(0UL, 0UL, 0x0100_0000_0000_0000UL)]                // type 0, an address not canonical even in 57 bits (5-level paging is supported, so INVPCID checks 57)
    [InlineData(0UL, 5UL, 0x1000UL)]                               // PCIDE=0 and PCID ≠ 0, type 0
    [InlineData(1UL, 5UL, 0UL)]                                    // PCIDE=0 and PCID ≠ 0, type 1
    public void Bad_INVPCID_operands_raise_GP(ulong type, ulong lo, ulong hi)
    {
        var rig = Rig();
        Assert.Equal(Gp0, Invpcid(rig, type, lo, hi));
    }

    [Theory]
    [InlineData(2UL, 5UL, 0UL)]                                    // types 2 and 3 ignore the PCID field
    [InlineData(3UL, 5UL, 0UL)]
    [InlineData(1UL, 0UL, 0x0000_8000_0000_0000UL)]                // only type 0 checks the address
    [InlineData(0UL, 0UL, 0xFFFF_8000_0000_0000UL)]
    public void Valid_INVPCID_operands_do_not_fault(ulong type, ulong lo, ulong hi)
    {
        var rig = Rig();
        Assert.Null(Invpcid(rig, type, lo, hi));
        Assert.Equal(1UL, rig.Mmu.Snapshot().Flushes((FlushCause)((int)FlushCause.Invpcid0 + (int)type)));
    }

    [Fact]
    public void INVPCID_types_0_and_1_accept_a_nonzero_PCID_with_PCIDE_set()
    {
        var rig = Rig();
        rig.Cpu.CR4 |= Cr4Bits.Pcide;
        Assert.Null(Invpcid(rig, 0, 5, 0x1000));
        Assert.Null(Invpcid(rig, 1, 0xFFF, 0));
    }

    [Fact]
    public void INVLPG_of_a_noncanonical_address_is_a_no_op()
    {
        var rig = Rig();
        rig.Cpu.R[Reg.RAX] = 0x0000_8000_0000_0000UL;
        Assert.Null(rig.Exec(a => a.invlpg(__[rax])));
        Assert.Equal(0UL, rig.Mmu.Snapshot().Flushes(FlushCause.Invlpg));
    }
}
