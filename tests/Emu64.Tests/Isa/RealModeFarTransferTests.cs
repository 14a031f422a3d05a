using Emu64.Cpu;
using Emu64.Tests.Support;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Tests.Isa;

/// <summary>
/// Far JMP, CALL and RET in real-address mode (SDM vol. 2 JMP/CALL/RET, "real-address or virtual-8086
/// mode"): the selector is loaded with base = selector × 16, no descriptor is read, a null selector or an
/// RPL is no fault, and the limit and attributes the CS cache holds stay. This is how a program returns
/// to real mode after clearing CR0.PE (the far jump that follows, SDM vol. 3A §10.9.2).
/// </summary>
[Trait("Category", "Isa")]
public class RealModeFarTransferTests
{
    private static CpuCore RealCpu()
    {
        var cpu = new RawMachine().Cpu;
        cpu.EFER = 0;
        cpu.CR0 = Cr0.Et;
        for (int s = 0; s < 6; s++) cpu.Segs[s] = new Segment { Limit = 0xFFFF, Attr = 0x93 };
        cpu.Segs[Seg.CS].Attr = 0x9B;
        cpu.Gdtr.Limit = 0;                    // any descriptor read would fault
        cpu.UpdateMode();
        cpu.Mmu.FlushHostCache();
        Assert.Equal(CpuMode.Real, cpu.Mode);
        return cpu;
    }

    private static unsafe int Exec(CpuCore cpu, params byte[] bytes)
    {
        var d = default(Insn);
        DecodeCache.DecodeOne(bytes, 0x1000, cpu.Bitness, ref d);
        cpu.InsnRip = cpu.Rip = 0x1000;
        cpu.Rip += d.Length;
        try { d.Exec(cpu, ref d); return -1; }
        catch (GuestFault f) { cpu.Rip = cpu.InsnRip; return f.Vector; }
    }

    [Fact]
    public void A_far_jump_to_selector_0_loads_base_0_without_a_descriptor()
    {
        var cpu = RealCpu();
        cpu.Segs[Seg.CS].Selector = 8; cpu.Segs[Seg.CS].Base = 0;   // what protected mode left in the cache
        Assert.Equal(-1, Exec(cpu, 0xEA, 0x4D, 0x80, 0x00, 0x00)); // jmp far 0000:804D
        Assert.Equal(0x804Dul, cpu.Rip);
        Assert.Equal(0, cpu.Segs[Seg.CS].Selector);
        Assert.Equal(0ul, cpu.Segs[Seg.CS].Base);
        Assert.Equal(0xFFFFu, cpu.Segs[Seg.CS].Limit);
        Assert.Equal(CpuMode.Real, cpu.Mode);
    }

    [Fact]
    public void A_far_call_pushes_CS_and_IP_and_a_far_return_with_RPL_bits_in_the_selector_comes_back()
    {
        var cpu = RealCpu();
        cpu.Segs[Seg.CS].Selector = 0x103; cpu.Segs[Seg.CS].Base = 0x1030;
        cpu.Rsp = 0x8000;
        Assert.Equal(-1, Exec(cpu, 0x9A, 0x34, 0x12, 0x23, 0x01)); // call far 0123:1234
        Assert.Equal(0x1234ul, cpu.Rip);
        Assert.Equal(0x123, cpu.Segs[Seg.CS].Selector);
        Assert.Equal(0x1230ul, cpu.Segs[Seg.CS].Base);
        Assert.Equal(0x7FFCul, cpu.Rsp);
        Assert.Equal(0x1005ul, cpu.Machine.Memory.Read(0x7FFC, 2));   // return IP (SS base 0)
        Assert.Equal(0x103ul, cpu.Machine.Memory.Read(0x7FFE, 2));    // return CS
        Assert.Equal(-1, Exec(cpu, 0xCB));                             // retf
        Assert.Equal(0x1005ul, cpu.Rip);
        Assert.Equal(0x103, cpu.Segs[Seg.CS].Selector);          // RPL 3 means nothing here: no outer-level return
        Assert.Equal(0x1030ul, cpu.Segs[Seg.CS].Base);
        Assert.Equal(0, cpu.Cpl);
        Assert.Equal(0x8000ul, cpu.Rsp);
    }

    [Fact]
    public void A_far_jump_beyond_the_CS_limit_is_GP()
    {
        var cpu = RealCpu();
        cpu.Segs[Seg.CS].Limit = 0x7FFF;
        Assert.Equal(Vec.GP, Exec(cpu, 0xEA, 0x00, 0x90, 0x03, 0x00)); // jmp far 0003:9000
        Assert.Equal(0x1000ul, cpu.Rip);
    }

    [Fact]
    public void A_32_bit_IRET_pops_EIP_CS_and_EFLAGS_as_doublewords_and_masks_EFLAGS_with_257FD5H()
    {
        var cpu = RealCpu();
        cpu.Rsp = 0x8000;
        var mem = cpu.Machine.Memory;
        mem.Write(0x8000, 4, 0x2345);          // EIP
        mem.Write(0x8004, 4, 0x0200);          // CS
        mem.Write(0x8008, 4, 0xFFC1_8AD7);     // EFLAGS with VM, VIF, VIP, ID and reserved bits set
        Assert.Equal(-1, Exec(cpu, 0x66, 0xCF));                       // iretd
        Assert.Equal(0x2345ul, cpu.Rip);
        Assert.Equal(0x200, cpu.Segs[Seg.CS].Selector);
        Assert.Equal(0x2000ul, cpu.Segs[Seg.CS].Base);
        Assert.Equal(0x800Cul, cpu.Rsp);
        Assert.Equal((0xFFC1_8AD7ul & 0x257FD5) | 2, cpu.Rflags);    // VM/VIF/VIP kept clear, bit 1 set
    }

    [Fact]
    public void A_16_bit_IRET_pops_three_words()
    {
        var cpu = RealCpu();
        cpu.Rsp = 0x8000;
        var mem = cpu.Machine.Memory;
        mem.Write(0x8000, 2, 0x1234); mem.Write(0x8002, 2, 0x0010); mem.Write(0x8004, 2, 0x0246);
        Assert.Equal(-1, Exec(cpu, 0xCF));                             // iret
        Assert.Equal(0x1234ul, cpu.Rip);
        Assert.Equal(0x100ul, cpu.Segs[Seg.CS].Base);
        Assert.Equal(0x8006ul, cpu.Rsp);
        Assert.Equal(0x246ul, cpu.Rflags & 0xFFFF);
    }

    [Fact]
    public void Push_and_pop_FS_with_a_32_bit_operand_size_move_the_stack_by_four_bytes_and_mov_to_a_32_bit_register_zero_extends()
    {
        // kvm-unit-tests realmode "push/pop 6": pushl %fs; pushl %eax; popl %fs; mov %fs, %ebx; popl %fs.
        var cpu = RealCpu();
        cpu.Rsp = 0x8000;
        cpu.Segs[Seg.FS].Selector = 0x1111; cpu.Segs[Seg.FS].Base = 0x11110;
        cpu.R[Reg.RAX] = 0xABCD2222;
        cpu.R[Reg.RBX] = 0xFFFFFFFF;
        Assert.Equal(-1, Exec(cpu, 0x66, 0x0F, 0xA0));             // pushd fs
        Assert.Equal(0x7FFCul, cpu.Rsp);
        Assert.Equal(-1, Exec(cpu, 0x66, 0x50));                   // push eax
        Assert.Equal(0x7FF8ul, cpu.Rsp);
        Assert.Equal(-1, Exec(cpu, 0x66, 0x0F, 0xA1));             // popd fs: the low word of a doubleword slot
        Assert.Equal(0x7FFCul, cpu.Rsp);
        Assert.Equal(0x2222, cpu.Segs[Seg.FS].Selector);
        Assert.Equal(0x22220ul, cpu.Segs[Seg.FS].Base);
        Assert.Equal(-1, Exec(cpu, 0x66, 0x8C, 0xE3));             // mov ebx, fs: the selector zero-extended
        Assert.Equal(0x2222ul, cpu.R[Reg.RBX]);
        Assert.Equal(-1, Exec(cpu, 0x66, 0x0F, 0xA1));             // popd fs: the first push comes back
        Assert.Equal(0x8000ul, cpu.Rsp);
        Assert.Equal(0x1111, cpu.Segs[Seg.FS].Selector);
        Assert.Equal(-1, Exec(cpu, 0x0F, 0xA0));                   // pushw fs: a word
        Assert.Equal(0x7FFEul, cpu.Rsp);
        Assert.Equal(-1, Exec(cpu, 0x0F, 0xA1));                   // popw fs
        Assert.Equal(0x8000ul, cpu.Rsp);
    }

    [Fact]
    public void ARPL_is_not_recognized_in_real_address_mode()
    {
        var cpu = RealCpu();
        Assert.Equal(Vec.UD, Exec(cpu, 0x63, 0xC8));               // arpl ax, cx
    }
}
