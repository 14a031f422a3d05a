using Emu64.Cpu;
using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Foundation;

/// <summary>The system instructions a kernel needs to boot, run from guest code (SDM vol. 2 and 3A).</summary>
public class SystemInstructionTests
{
    private const ulong R = GuestKit.Results;

    [Fact]
    public void SGDT_and_SIDT_store_what_LGDT_and_LIDT_loaded_and_STR_reads_the_TSS_selector()
    {
        var t = Trap.Run((a, k) =>
        {
            a.sgdt(__[R + 0x10]);
            a.sidt(__[R + 0x20]);
            a.str(ax); a.mov(__word_ptr[R + 0x30], ax);
            a.mov(__qword_ptr[R + 0x40], -1); a.str(__word_ptr[R + 0x40]);
            a.ud2();
        }).Expect(Vec.UD);
        Assert.Equal(0x47UL, t.Mem(R + 0x10, 2));
        Assert.Equal(GuestKit.Gdt, t.Mem(R + 0x12));
        Assert.Equal(256UL * 16 - 1, t.Mem(R + 0x20, 2));
        Assert.Equal(GuestKit.Idt, t.Mem(R + 0x22));
        Assert.Equal((ulong)GuestKit.TssSel, t.Mem(R + 0x30, 2));
        Assert.Equal(0xFFFF_FFFF_FFFF_0000UL | GuestKit.TssSel, t.Mem(R + 0x40));   // a memory STR writes 16 bits
        Assert.Equal(0x8BUL, t.Mem(GuestKit.Gdt + GuestKit.TssSel + 5, 1));           // LTR marked the TSS busy
        Assert.Equal(GuestKit.Tss, t.Cpu.Tr.Base);
    }

    [Fact]
    public void LTR_of_a_busy_TSS_raises_GP_with_the_selector()
    {
        var t = Trap.Run((a, k) => { a.mov(ax, GuestKit.TssSel); a.ltr(ax); }).Expect(Vec.GP);
        Assert.Equal((ulong)GuestKit.TssSel, t.Frame(true).Err);
    }

    [Fact]
    public void MOV_to_and_from_control_registers_round_trips_CR2_CR3_CR4_and_CR8()
    {
        var t = Trap.Run((a, k) =>
        {
            a.mov(rax, 0xFFFF_8000_1234_5678UL); a.mov(cr2, rax); a.mov(rbx, cr2); a.mov(__qword_ptr[R + 0x10], rbx);
            a.mov(rax, cr3); a.mov(__qword_ptr[R + 0x18], rax);
            a.mov(rax, cr4); a.or(eax, 1 << 7); a.mov(cr4, rax); a.mov(rbx, cr4); a.mov(__qword_ptr[R + 0x20], rbx);
            a.mov(eax, 9); a.mov(cr8, rax); a.mov(rbx, cr8); a.mov(__qword_ptr[R + 0x28], rbx);
            a.mov(rax, cr0); a.mov(__qword_ptr[R + 0x30], rax);
            a.ud2();
        }).Expect(Vec.UD);
        Assert.Equal(0xFFFF_8000_1234_5678UL, t.Mem(R + 0x10));
        Assert.Equal(TestKernel.Pml4, t.Mem(R + 0x18));
        Assert.Equal(Cr4.Pae | Cr4.Pge, t.Mem(R + 0x20));
        Assert.Equal(9UL, t.Mem(R + 0x28));
        Assert.Equal(Cr0.Pg | Cr0.Pe | Cr0.Et, t.Mem(R + 0x30));
    }

    public static TheoryData<string, ulong> BadControlRegisterWrites() => new()
    {
        { "cr4", 1UL << 13 },                 // VMXE: not supported, reserved here
        { "cr4", 0 },                         // clearing PAE in IA-32e mode
        { "cr8", 16 },
        { "cr0", 0x80000011UL | (1UL << 32) },   // bits 63:32
        { "cr0", 0x00000011UL },              // clearing PG from 64-bit code
        { "cr3", 1UL << 52 },                 // above MAXPHYADDR
    };

    [Theory, MemberData(nameof(BadControlRegisterWrites))]
    public void A_bad_control_register_write_raises_GP_0_and_changes_nothing(string reg, ulong value)
    {
        Label fault = default;
        ulong cr4Before = 0, cr0Before = 0;
        var t = Trap.Run((a, k) =>
        {
            a.mov(rax, value);
            fault = a.CreateLabel(); a.Label(ref fault);
            switch (reg)
            {
                case "cr0": a.mov(cr0, rax); break;
                case "cr3": a.mov(cr3, rax); break;
                case "cr4": a.mov(cr4, rax); break;
                case "cr8": a.mov(cr8, rax); break;
            }
        }, setup: m => { cr4Before = 0; }).Expect(Vec.GP);
        Assert.Equal(t.At(fault), t.Frame(true).Rip);
        Assert.Equal(0UL, t.Frame(true).Err);
        Assert.Equal(Cr4.Pae, t.Cpu.CR4);
        Assert.Equal(Cr0.Pg | Cr0.Pe | Cr0.Et, t.Cpu.CR0);
        Assert.Equal(TestKernel.Pml4, t.Cpu.CR3);
        Assert.Equal(0UL, t.Cpu.CR8);
        _ = cr4Before + cr0Before;
    }

    [Fact]
    public void RDMSR_and_WRMSR_round_trip_STAR_and_EFER_reads_LME_and_LMA()
    {
        var t = Trap.Run((a, k) =>
        {
            a.mov(ecx, 0xC0000081u); a.mov(eax, 0x11223344u); a.mov(edx, 0x00180008u); a.wrmsr();
            a.xor(eax, eax); a.xor(edx, edx); a.rdmsr();
            a.mov(__dword_ptr[R + 0x10], eax); a.mov(__dword_ptr[R + 0x14], edx);
            a.mov(ecx, 0xC0000080u); a.rdmsr(); a.mov(__dword_ptr[R + 0x18], eax); a.mov(__dword_ptr[R + 0x1C], edx);
            a.ud2();
        }).Expect(Vec.UD);
        Assert.Equal(0x00180008_11223344UL, t.Mem(R + 0x10));
        Assert.Equal(Efer.Lme | Efer.Lma, t.Mem(R + 0x18));
    }

    [Theory]
    [InlineData(0x12345u, false)]
    [InlineData(0xC0000105u, false)]
    [InlineData(0x12345u, true)]
    [InlineData(0xC0000080u, true)]    // EFER with a reserved bit (bit 1) set
    public void An_unknown_MSR_or_a_reserved_value_raises_GP_0_and_leaves_EDX_EAX_alone(uint msr, bool write)
    {
        Label fault = default;
        var t = Trap.Run((a, k) =>
        {
            a.mov(ecx, msr); a.mov(eax, 0x902u); a.mov(edx, 0xDDDDu);
            fault = a.CreateLabel(); a.Label(ref fault);
            if (write) a.wrmsr(); else a.rdmsr();
        }).Expect(Vec.GP);
        Assert.Equal(t.At(fault), t.Frame(true).Rip);
        Assert.Equal(0x902UL, t.Cpu.R[Reg.RAX]);
        Assert.Equal(0xDDDDUL, t.Cpu.R[Reg.RDX]);
        Assert.Equal(Efer.Lme | Efer.Lma, t.Cpu.EFER);
    }

    [Fact]
    public void CPUID_reports_GenuineIntel_and_exactly_the_documented_feature_bits()
    {
        var t = Trap.Run((a, k) =>
        {
            ulong o = R + 0x10;
            foreach (uint leaf in new uint[] { 0, 1, 7, 0x80000000, 0x80000001, 0x80000008, 6 })
            {
                a.mov(eax, leaf); a.xor(ecx, ecx); a.cpuid();
                a.mov(__dword_ptr[o], eax); a.mov(__dword_ptr[o + 4], ebx); a.mov(__dword_ptr[o + 8], ecx); a.mov(__dword_ptr[o + 12], edx);
                o += 16;
            }
            a.ud2();
        }).Expect(Vec.UD);
        uint D(int leafIndex, int reg) => (uint)t.Mem(R + 0x10 + (ulong)(16 * leafIndex + 4 * reg), 4);
        static uint Bits(params int[] b) => b.Aggregate(0u, (acc, x) => acc | (1u << x));
        var vendor = System.Text.Encoding.ASCII.GetString(BitConverter.GetBytes(D(0, 1)).Concat(BitConverter.GetBytes(D(0, 3))).Concat(BitConverter.GetBytes(D(0, 2))).ToArray());
        Assert.Equal("GenuineIntel", vendor);
        Assert.Equal(7u, D(0, 0));
        Assert.Equal(Bits(13, 17, 21, 22, 23, 24, 30), D(1, 2));          // CX16 PCID x2APIC MOVBE POPCNT TSC-deadline RDRAND
        Assert.Equal(Bits(0, 2, 3, 4, 5, 6, 8, 9, 12, 13, 15, 16, 17, 19, 23, 24, 25, 26), D(1, 3));   // FPU DE PSE TSC MSR PAE CX8 APIC MTRR PGE CMOV PAT PSE-36 CLFSH MMX FXSR SSE SSE2
        Assert.Equal(Bits(0, 3, 7, 8, 10, 18, 19, 20), D(2, 1));          // FSGSBASE BMI1 SMEP BMI2 INVPCID RDSEED ADX SMAP
        Assert.Equal(Bits(2, 3, 16, 22), D(2, 2));                        // UMIP PKU LA57 RDPID (OSPKE clear: CR4.PKE=0)
        Assert.Equal(0x80000008u, D(3, 0));
        Assert.Equal(Bits(0, 5), D(4, 2));                                // LAHF-SAHF LZCNT
        Assert.Equal(Bits(11, 20, 26, 27, 29), D(4, 3));                  // SYSCALL NX 1GB-pages RDTSCP LM
        Assert.Equal(46u | (57u << 8), D(5, 0));                          // MAXPHYADDR 46, linear 57 (LA57 reported)
        Assert.Equal(Bits(2), D(6, 0));                                   // leaf 6: ARAT (the APIC timer runs while halted)
        Assert.Equal(0u, D(6, 1) | D(6, 2) | D(6, 3));
    }

    [Fact]
    public void REP_OUTSB_writes_a_string_to_COM1_and_INSB_reads_the_line_status()
    {
        var t = Trap.Run((a, k) =>
        {
            var text = a.CreateLabel(); var over = a.CreateLabel();
            a.jmp(over); a.Label(ref text); a.db(System.Text.Encoding.ASCII.GetBytes("string out\n")); a.Label(ref over);
            a.lea(rsi, __[text]); a.mov(ecx, 11); a.mov(dx, 0x3F8); a.rep.outsb();
            a.mov(__qword_ptr[R + 0x18], rcx); a.mov(__qword_ptr[R + 0x20], rsi);
            a.mov(edi, (uint)(R + 0x10)); a.mov(dx, 0x3FD); a.insb();
            a.mov(dx, 0x1234); a.@in(eax, dx); a.mov(__dword_ptr[R + 0x28], eax);
            a.@in(ax, dx); a.mov(__dword_ptr[R + 0x30], eax);
            a.mov(al, (byte)'!'); a.@out(0xE9, al);
            a.ud2();
        }).Expect(Vec.UD);
        Assert.Equal("string out\n!", t.R.Console);
        Assert.Equal(0UL, t.Mem(R + 0x18));                                  // RCX counted down
        Assert.Equal(0x60UL, t.Mem(R + 0x10, 1) & 0x60);                     // THRE and TEMT
        Assert.Equal(R + 0x11, t.Cpu.R[Reg.RDI]);
        Assert.Equal(0xFFFFFFFFUL, t.Mem(R + 0x28, 4));                      // an unknown port reads all ones
        Assert.Equal(0xFFFFUL, t.Mem(R + 0x30, 4) & 0xFFFF);
    }

    [Fact]
    public void HLT_with_interrupts_disabled_shuts_the_machine_down()
    {
        var r = Run.Image(TestKernel.Build(a => { a.cli(); a.hlt(); a.ud2(); }));
        Assert.Equal(StopReason.Shutdown, r.Reason);
        Assert.True(r.Machine.Cpu.Halted);
    }

    private sealed class OneShotInterrupt(Machine m, int vector) : IInterruptController
    {
        public int Acknowledge() { m.InterruptLine = false; return vector; }
    }

    [Fact]
    public void STI_delays_a_pending_interrupt_until_after_the_next_instruction()
    {
        Label after = default;
        var t = Trap.Run((a, k) =>
        {
            k.SetGate(0x40, k.Handlers[0x40]);
            a.mov(eax, 0);
            a.nop(); a.nop();               // the interrupt is pending all along, but IF=0
            a.sti();
            a.mov(eax, 1);                  // runs in the STI shadow
            after = a.CreateLabel(); a.Label(ref after);
            a.mov(eax, 2);
            a.ud2();
        }, setup: m => { m.InterruptController = new OneShotInterrupt(m, 0x40); m.InterruptLine = true; }).Expect(0x40);
        Assert.Equal(t.At(after), t.Frame(false).Rip);
        Assert.Equal(1UL, t.Cpu.R[Reg.RAX]);
        Assert.Equal(0x202UL, t.Frame(false).Rflags & 0x202);
    }

    [Fact]
    public void With_IOPL_3_user_code_may_use_CLI_POPF_IF_and_IN_and_PUSHF_shows_the_result()
    {
        var t = Trap.Run((a, k) =>
        {
            var user = a.CreateLabel();
            k.EnterUser(user, rflags: 0x3202);
            a.Label(ref user);
            a.cli();
            a.pushfq(); a.pop(rbx);
            a.push(0x202); a.popfq();       // IF back on; IOPL cannot change at CPL 3
            a.pushfq(); a.pop(rcx);
            a.mov(dx, 0x3FD); a.@in(al, dx);
            a.ud2();
        }).Expect(Vec.UD);
        Assert.Equal(0x3000UL, t.Cpu.R[Reg.RBX] & 0x3200);
        Assert.Equal(0x3200UL, t.Cpu.R[Reg.RCX] & 0x3200);
        Assert.Equal(0x60UL, t.Cpu.R[Reg.RAX] & 0x60);
        Assert.Equal((ulong)GuestKit.UCode64, t.Frame(false).Cs);
    }

    [Fact]
    public void IRETQ_goes_to_CPL_3_and_an_interrupt_handler_returns_there_with_IRETQ()
    {
        Label back = default, ud = default;
        var t = Trap.Run((a, k) =>
        {
            var handler = a.CreateLabel(); var user = a.CreateLabel(); var over = a.CreateLabel();
            a.jmp(over);
            a.Label(ref handler);                   // runs at CPL 0 on RSP0, returns to CPL 3
            a.mov(r8, __qword_ptr[rsp + 8]);        // CS pushed by the INT
            a.mov(r9, rsp);
            a.mov(r10, cs);
            a.iretq();
            a.Label(ref over);
            k.SetGate(0x80, handler, GuestKit.Attr(dpl: 3));
            k.EnterUser(user, rflags: 0x202);
            a.Label(ref user);
            a.mov(r11, cs);
            a.@int(0x80);
            back = a.CreateLabel(); a.Label(ref back);
            a.mov(r12, cs); a.mov(r13, ss); a.mov(r14, rsp);
            ud = a.CreateLabel(); a.Label(ref ud);
            a.ud2();
        }).Expect(Vec.UD);
        var c = t.Cpu;
        Assert.Equal((ulong)GuestKit.UCode64, c.R[Reg.R11]);
        Assert.Equal((ulong)GuestKit.UCode64, c.R[Reg.R8]);
        Assert.Equal(GuestKit.Rsp0 - 40, c.R[Reg.R9]);
        Assert.Equal((ulong)GuestKit.KCode, c.R[Reg.R10]);
        Assert.Equal((ulong)GuestKit.UCode64, c.R[Reg.R12]);
        Assert.Equal((ulong)GuestKit.UData, c.R[Reg.R13]);
        Assert.Equal(GuestKit.UserStackTop, c.R[Reg.R14]);
        Assert.Equal(t.At(ud), t.Frame(false).Rip);
        Assert.True(t.At(back) < t.At(ud));
    }

    [Fact]
    public void SYSCALL_saves_RIP_in_RCX_and_RFLAGS_in_R11_applies_SFMASK_and_SYSRET_returns_to_CPL_3()
    {
        Label afterSyscall = default, userUd = default;
        var t = Trap.Run((a, k) =>
        {
            var entry = a.CreateLabel(); var user = a.CreateLabel(); var over = a.CreateLabel();
            a.jmp(over);
            a.Label(ref entry);
            a.mov(__qword_ptr[R + 0x10], rcx);
            a.mov(__qword_ptr[R + 0x18], r11);
            a.pushfq(); a.pop(rax); a.mov(__qword_ptr[R + 0x20], rax);
            a.mov(ax, cs); a.mov(__word_ptr[R + 0x28], ax);
            a.mov(ax, ss); a.mov(__word_ptr[R + 0x2A], ax);
            a.mov(__qword_ptr[R + 0x30], rsp);
            a.sysretq();
            a.Label(ref over);
            k.EnableSyscall(entry, sfmask: 0x201);    // clear IF and CF on entry
            k.EnterUser(user, rflags: 0x203);
            a.Label(ref user);
            a.syscall();
            afterSyscall = a.CreateLabel(); a.Label(ref afterSyscall);
            a.mov(r12, cs); a.mov(r13, ss);
            userUd = a.CreateLabel(); a.Label(ref userUd);
            a.ud2();
        }).Expect(Vec.UD);
        Assert.Equal(t.At(afterSyscall), t.Mem(R + 0x10));
        Assert.Equal(0x203UL, t.Mem(R + 0x18));
        Assert.Equal(0x2UL, t.Mem(R + 0x20));
        Assert.Equal((ulong)GuestKit.KCode, t.Mem(R + 0x28, 2));
        Assert.Equal((ulong)GuestKit.KData, t.Mem(R + 0x2A, 2));
        Assert.Equal(GuestKit.UserStackTop, t.Mem(R + 0x30));          // SYSCALL does not switch stacks
        var f = t.Frame(false);
        Assert.Equal(t.At(userUd), f.Rip);
        Assert.Equal((ulong)GuestKit.UCode64, f.Cs);
        Assert.Equal(0x10203UL, f.Rflags);                               // #UD is a fault: RF=1 in the pushed RFLAGS
        Assert.Equal((ulong)GuestKit.UCode64, t.Cpu.R[Reg.R12]);
        Assert.Equal((ulong)GuestKit.UData, t.Cpu.R[Reg.R13]);
    }

    [Fact]
    public void SYSCALL_with_EFER_SCE_clear_raises_UD()
    {
        Label fault = default;
        var t = Trap.Run((a, k) => { fault = a.CreateLabel(); a.Label(ref fault); a.syscall(); }).Expect(Vec.UD);
        Assert.Equal(t.At(fault), t.Frame(false).Rip);
    }

    [Fact]
    public void SYSRET_to_a_non_canonical_RCX_raises_GP_0_at_CPL_0()
    {
        Label fault = default;
        var t = Trap.Run((a, k) =>
        {
            var entry = a.CreateLabel();
            k.EnableSyscall(entry);
            a.Label(ref entry);
            a.mov(rcx, 0x0000_8000_0000_0000UL); a.mov(r11d, 0x202);
            fault = a.CreateLabel(); a.Label(ref fault);
            a.sysretq();
        }).Expect(Vec.GP);
        var f = t.Frame(true);
        Assert.Equal(0UL, f.Err);
        Assert.Equal(t.At(fault), f.Rip);
        Assert.Equal((ulong)GuestKit.KCode, f.Cs);
        Assert.Equal(GuestKit.KernelStack - 48, t.Rsp);
    }

    [Fact]
    public void SWAPGS_exchanges_GS_base_with_KERNEL_GS_BASE()
    {
        var t = Trap.Run((a, k) =>
        {
            a.mov(ecx, 0xC0000101u); a.mov(eax, (uint)R); a.xor(edx, edx); a.wrmsr();             // GS.base
            a.mov(ecx, 0xC0000102u); a.mov(eax, (uint)(R + 0x100)); a.wrmsr();                  // KERNEL_GS_BASE
            a.mov(__qword_ptr[R + 0x108], 0x6B);                                               // kernel per-cpu word
            a.mov(__qword_ptr[R + 0x8], 0x75);                                                 // user word
            a.mov(rax, __qword_ptr.gs[8]); a.mov(rbx, rax);
            a.swapgs();
            a.mov(rax, __qword_ptr.gs[8]); a.mov(rsi, rax);
            a.mov(ecx, 0xC0000102u); a.rdmsr(); a.shl(rdx, 32); a.or(rax, rdx); a.mov(rdi, rax);
            a.ud2();
        }).Expect(Vec.UD);
        Assert.Equal(0x75UL, t.Cpu.R[Reg.RBX]);
        Assert.Equal(0x6BUL, t.Cpu.R[Reg.RSI]);
        Assert.Equal(R, t.Cpu.R[Reg.RDI]);
        Assert.Equal(R + 0x100, t.Cpu.Segs[Seg.GS].Base);
    }

    // ---- self-modifying code and the decoded-instruction cache -------------------------------

    [Fact]
    public void A_store_into_an_instruction_of_the_running_block_changes_what_runs_next()
    {
        var t = Trap.Run((a, k) =>
        {
            var again = a.CreateLabel(); var patch = a.CreateLabel();
            a.mov(ecx, 3);
            a.Label(ref again);
            a.nop();
            a.Label(ref patch);
            a.mov(eax, 0x11111111u);                        // B8 imm32: the immediate is at patch + 1
            a.mov(__dword_ptr[rcx * 4 + (long)R + 0x10], eax);
            a.lea(rdx, __[patch]);
            a.add(__dword_ptr[rdx + 1], 0x11111111);       // next time round, the immediate is bigger
            a.dec(ecx);
            a.jnz(again);
            a.ud2();
        }).Expect(Vec.UD);
        Assert.Equal(0x33333333UL, t.Mem(R + 0x10 + 4, 4));
        Assert.Equal(0x22222222UL, t.Mem(R + 0x10 + 8, 4));
        Assert.Equal(0x11111111UL, t.Mem(R + 0x10 + 12, 4));
        Assert.True(t.M.Cache.Invalidations >= 3);
    }

    [Fact]
    public void Rewriting_an_already_executed_function_on_another_page_changes_its_result()
    {
        var image = TestKernel.Build(a =>
        {
            const ulong fn = 0x190000;                                      // its own page, written by the guest
            a.mov(rdi, fn);
            a.mov(__dword_ptr[rdi], 0x000001B8); a.mov(__dword_ptr[rdi + 4], 0xC300);   // mov eax,1 ; ret
            a.mov(rax, fn); a.call(rax); a.mov(rbx, rax);
            a.mov(__byte_ptr[rdi + 1], 2);                                   // mov eax,2
            a.mov(rax, fn); a.call(rax); a.mov(rcx, rax);
            a.cli(); a.hlt();
        });
        var r = Run.Image(image);
        Assert.Equal(StopReason.Shutdown, r.Reason);
        Assert.Equal(1UL, r.Machine.Cpu.R[Reg.RBX]);
        Assert.Equal(2UL, r.Machine.Cpu.R[Reg.RCX]);
    }

    [Fact]
    public void Under_paging_a_store_into_a_page_that_became_code_again_still_reaches_the_decoded_code()
    {
        // The MMU fast cache's write entry for a page without code holds a host pointer that skips the code test
        // (Mmu.HostData). Here it is filled after a store dropped the page's code, and the page then becomes code
        // again without any TLB fill (the iTLB still holds it): that must take the pointer away, or the last store
        // would not drop the stale decode.
        const ulong page = GuestKit.PtBase, other = GuestKit.PtBase + 0x1000;
        var t = Trap.Run((a, k) =>
        {
            k.MapPage(0, page | 3);                                                          // present, writable
            k.MapPage(1, other | 3);
            a.mov(rdi, page);
            a.mov(__dword_ptr[rdi], 0x000001B8); a.mov(__dword_ptr[rdi + 4], 0xC300);    // mov eax,1 ; ret
            a.call(rdi); a.mov(rbx, rax);                                                    // code: the frame is marked
            a.mov(__byte_ptr[rdi + 1], 2);                                                   // mov eax,2: the decode is dropped
            a.mov(rax, other); a.mov(rax, __qword_ptr[rax]);                                 // a dTLB fill: fast entries refill
            a.mov(__byte_ptr[rdi + 1], 2);                                                   // the write entry, to a frame without code
            a.call(rdi); a.mov(rcx, rax);                                                    // code again, the iTLB entry as it was
            a.mov(__byte_ptr[rdi + 1], 3);                                                   // mov eax,3
            a.call(rdi); a.mov(rdx, rax);
            a.ud2();
        }).Expect(Vec.UD);
        Assert.True(t.Cpu.PagingOn);
        Assert.Equal(1UL, t.Cpu.R[Reg.RBX]);
        Assert.Equal(2UL, t.Cpu.R[Reg.RCX]);
        Assert.Equal(3UL, t.Cpu.R[Reg.RDX]);
    }

    [Theory]
    [InlineData(0x5000UL - 4)]   // from a frame without code into the code frame
    [InlineData(0x6000UL - 4)]   // from the code frame into the next
    public void A_physical_store_that_straddles_a_code_frame_drops_its_decodes(ulong pa)
    {
        // Only physical stores (devices, loaders, the debugger) can straddle two frames: linear ones split at the page.
        var m = new Machine(new MachineOptions { Output = Stream.Null });
        m.Memory.WriteBytes(0x5000, [0x90, 0xC3]);   // nop ; ret
        var block = m.Cache.Decode(0x5000, 0x5000, 64)!;
        Assert.Same(block, m.Cache.Lookup(0x5000, 64));
        m.Memory.Write(pa, 8, 0);
        Assert.False(block.Valid);
        Assert.Null(m.Cache.Lookup(0x5000, 64));
        Assert.False(m.Memory.IsCode(5));
    }

    [Theory]
    [InlineData(0x5000UL, 60, 60)]          // 600 bytes of straight-line code: past the first 256-byte read, all of it one block
    [InlineData(0x5000UL + 0xE00, 60, 51)]  // 512 bytes left in the page: 51 whole instructions, the 52nd would cross
    public void A_block_longer_than_the_first_read_is_decoded_to_its_end_or_the_page_end(ulong pa, int movs, int expected)
    {
        var m = new Machine(new MachineOptions { Output = Stream.Null });
        var code = new List<byte>();
        for (int k = 0; k < movs; k++) code.AddRange([0x48, 0xB8, (byte)k, 0, 0, 0, 0, 0, 0, 0]);   // mov rax, imm64 (10 bytes)
        code.Add(0xC3);                                                                                  // ret
        m.Memory.WriteBytes(pa, [.. code]);
        var block = m.Cache.Decode(pa, pa, 64)!;
        Assert.Equal(expected + (expected == movs ? 1 : 0), block.Count);
        Assert.Equal((ulong)(expected - 1), block.Insns[expected - 1].Imm);
    }

    [Fact]
    public void A_hot_loop_is_decoded_once_while_it_runs_half_a_million_times()
    {
        var image = TestKernel.Build(a =>
        {
            var loop = a.CreateLabel();
            a.mov(ecx, 500_000);
            a.xor(eax, eax);
            a.Label(ref loop);
            a.add(rax, rcx);
            a.dec(ecx);
            a.jnz(loop);
            a.cli(); a.hlt();
        });
        var r = Run.Image(image);
        Assert.Equal(StopReason.Shutdown, r.Reason);
        Assert.Equal(500_000UL * 500_001 / 2, r.Machine.Cpu.R[Reg.RAX]);
        Assert.True(r.Machine.Cpu.Retired > 1_500_000);
        Assert.InRange(r.Machine.Cache.Decodes, 1UL, 20UL);
    }
}
