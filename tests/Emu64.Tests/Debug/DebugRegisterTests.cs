using Emu64.Cpu;
using Emu64.Tests.Foundation;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Debug;

/// <summary>
/// Hardware breakpoints, single-step and RF (SDM vol. 3B chapter 18, vol. 3A §6.9 and table 6-2), run through the real
/// run loop on a small 64-bit kernel: every #DB the guest takes is logged by its handler with the pushed RIP and
/// RFLAGS and the DR6 it read, and the tests check the exact values, counts and order.
/// </summary>
public class DebugRegisterTests
{
    private const ulong Dr6Fixed = 0xFFFF0FF0, Bs = 1 << 14, Rf = 1 << 16, Tf = 1 << 8;
    private const ulong Data = Emu64.Tests.Support.TestKernel.Data;

    private static Trap RunToUd(Action<Assembler, GuestKit> body, params int[] logged)
    {
        var t = Trap.Run((a, k) =>
        {
            DbLog.Install(a, k, logged.Length == 0 ? [Vec.DB] : logged);
            body(a, k);
            a.ud2();
        });
        return t.Expect(Vec.UD);
    }

    /// <summary>Sets TF with POPF (which itself is not single-stepped: TF was clear when it began).</summary>
    private static void SetTf(Assembler a)
    {
        a.pushfq(); a.pop(rax); a.or(rax, (int)Tf); a.push(rax); a.popfq();
    }

    [Fact]
    public void An_instruction_breakpoint_faults_before_the_instruction_with_B0_and_RF_clear_in_the_frame()
    {
        Label bp = default;
        var t = RunToUd((a, k) =>
        {
            bp = a.CreateLabel();
            a.lea(rax, __[bp]); a.mov(dr0, rax);
            a.mov(eax, 0x402); a.mov(dr7, rax);          // G0, execute, LEN 1
            a.xor(ecx, ecx);
            a.Label(ref bp);
            a.inc(ecx);
        });
        var log = DbLog.Read(t);
        Assert.Single(log);
        Assert.Equal((Vec.DB, t.At(bp), Dr6Fixed | 1), (log[0].Vector, log[0].Rip, log[0].Dr6));
        Assert.Equal(0UL, log[0].Rflags & Rf);
        Assert.Equal(1UL, t.Cpu.R[Reg.RCX]);                 // resumed with RF=1: the INC ran exactly once
    }

    [Fact]
    public void RF_suppresses_the_breakpoint_for_one_instruction_only_so_a_loop_stops_on_every_pass()
    {
        Label bp = default;
        var t = RunToUd((a, k) =>
        {
            bp = a.CreateLabel();
            a.lea(rax, __[bp]); a.mov(dr0, rax);
            a.mov(eax, 0x401); a.mov(dr7, rax);          // L0
            a.xor(ecx, ecx);
            a.Label(ref bp);
            a.inc(ecx);
            a.cmp(ecx, 3);
            a.jb(bp);
        });
        var log = DbLog.Read(t);
        Assert.Equal(3, log.Length);
        Assert.All(log, e => Assert.Equal((t.At(bp), Dr6Fixed | 1), (e.Rip, e.Dr6)));
        Assert.Equal(3UL, t.Cpu.R[Reg.RCX]);
    }

    [Fact]
    public void A_data_write_breakpoint_covers_its_aligned_unit_and_traps_after_the_store_only()
    {
        Label after = default;
        var t = RunToUd((a, k) =>
        {
            after = a.CreateLabel();
            a.mov(rax, Data + 0x41); a.mov(dr1, rax);     // LEN 4 masks the address to Data+0x40..0x43
            a.mov(eax, 0x00D00408); a.mov(dr7, rax);      // G1, R/W1 = 01 (write), LEN1 = 11 (4 bytes)
            a.mov(eax, __dword_ptr[Data + 0x40]);          // a read: not a write breakpoint's business
            a.mov(__byte_ptr[Data + 0x44], 1);             // the next unit: no match
            a.mov(__byte_ptr[Data + 0x43], 1);             // the last byte of the unit: match
            a.Label(ref after);
            a.nop();
        });
        var log = DbLog.Read(t);
        Assert.Single(log);
        Assert.Equal((t.At(after), Dr6Fixed | 2), (log[0].Rip, log[0].Dr6));
        Assert.Equal(1UL, t.Mem(Data + 0x43, 1));           // trap-like: the store happened
    }

    [Fact]
    public void A_read_write_breakpoint_fires_on_a_read_and_on_the_implicit_stack_write_of_a_push()
    {
        Label afterRead = default, afterPush = default;
        var t = RunToUd((a, k) =>
        {
            afterRead = a.CreateLabel(); afterPush = a.CreateLabel();
            a.mov(rax, Data + 0x80); a.mov(dr2, rax);
            a.mov(rax, GuestKit.KernelStack - 8); a.mov(dr3, rax);
            a.mov(eax, 0xBB0004F0); a.mov(dr7, rax);      // G2, G3; R/W2 = R/W3 = 11, LEN 8
            a.mov(rsp, GuestKit.KernelStack);
            a.mov(rbx, __qword_ptr[Data + 0x84]);         // reads bytes 0x84..0x8B: overlaps the unit 0x80..0x87
            a.Label(ref afterRead);
            a.push(rbx);                                   // writes KernelStack-8..-1
            a.Label(ref afterPush);
            a.pop(rbx);                                    // reads it back: a second match
        });
        var log = DbLog.Read(t);
        Assert.Equal(3, log.Length);
        Assert.Equal((t.At(afterRead), Dr6Fixed | 4), (log[0].Rip, log[0].Dr6));
        Assert.Equal((t.At(afterPush), Dr6Fixed | 8), (log[1].Rip, log[1].Dr6));
        Assert.Equal(Dr6Fixed | 8, log[2].Dr6);
    }

    [Fact]
    public void A_data_breakpoint_inside_REP_MOVSB_traps_after_that_iteration_with_RIP_on_the_instruction()
    {
        Label movs = default;
        var t = RunToUd((a, k) =>
        {
            movs = a.CreateLabel();
            a.mov(rax, Data + 0x205); a.mov(dr0, rax);
            a.mov(eax, 0x00010402); a.mov(dr7, rax);      // G0, R/W0 = 01 (write), LEN 1
            a.mov(rsi, Data + 0x100); a.mov(rdi, Data + 0x200); a.mov(ecx, 16);
            a.cld();
            a.Label(ref movs);
            a.rep.movsb();
        });
        var log = DbLog.Read(t);
        Assert.Single(log);
        Assert.Equal((t.At(movs), Dr6Fixed | 1), (log[0].Rip, log[0].Dr6));
        Assert.Equal(10UL, log[0].Rcx);                      // bytes 0..5 copied, 10 left
        Assert.Equal(0UL, t.Cpu.R[Reg.RCX]);                 // and the copy then finished
    }

    [Fact]
    public void B_bits_report_every_matching_breakpoint_even_a_disabled_one_when_an_enabled_one_fires()
    {
        Label after = default;
        var t = RunToUd((a, k) =>
        {
            after = a.CreateLabel();
            a.mov(rax, Data + 0x300); a.mov(dr0, rax); a.mov(dr1, rax);
            a.mov(eax, 0x00110402); a.mov(dr7, rax);      // G0 enabled, DR1 the same write breakpoint but disabled
            a.mov(__byte_ptr[Data + 0x300], 7);
            a.Label(ref after);
        });
        var log = DbLog.Read(t);
        Assert.Single(log);
        Assert.Equal((t.At(after), Dr6Fixed | 3), (log[0].Rip, log[0].Dr6));
    }

    [Fact]
    public void DR7_GD_makes_a_debug_register_access_fault_with_BD_and_delivery_clears_GD()
    {
        Label mov = default;
        var t = RunToUd((a, k) =>
        {
            mov = a.CreateLabel();
            a.mov(eax, 0x2400); a.mov(dr7, rax);          // GD
            a.Label(ref mov);
            a.mov(rbx, dr0);                               // #DB (fault), then re-executed after the handler
            a.mov(rdx, dr7);
        });
        var log = DbLog.Read(t);
        Assert.Single(log);
        Assert.Equal((t.At(mov), Dr6Fixed | (1 << 13)), (log[0].Rip, log[0].Dr6));
        Assert.Equal(Rf, log[0].Rflags & Rf);                // a fault-class #DB pushes RF=1
        Assert.Equal(0x400UL, t.Cpu.R[Reg.RDX]);             // GD was cleared by the delivery
    }

    [Fact]
    public void Faults_push_RF_set_in_the_saved_RFLAGS()
    {
        var ud = Trap.Run((a, k) => a.ud2()).Expect(Vec.UD);
        Assert.Equal(Rf, ud.Frame(hasError: false).Rflags & Rf);
        var gp = Trap.Run((a, k) => { a.mov(rax, 0x8000_0000_0000_0000UL); a.mov(rbx, __qword_ptr[rax]); }).Expect(Vec.GP);
        Assert.Equal(Rf, gp.Frame(hasError: true).Rflags & Rf);
    }

    [Fact]
    public void Single_step_traps_after_each_instruction_begun_with_TF_set_with_BS_and_RF_clear()
    {
        Label a1 = default, a2 = default, a3 = default;
        var t = RunToUd((a, k) =>
        {
            a1 = a.CreateLabel(); a2 = a.CreateLabel(); a3 = a.CreateLabel();
            SetTf(a);
            a.and(rax, ~(int)Tf);
            a.Label(ref a1);
            a.push(rax);
            a.Label(ref a2);
            a.popfq();                                     // clears TF, but TF was set when it began
            a.Label(ref a3);
            a.nop();
        });
        var log = DbLog.Read(t);
        Assert.Equal([t.At(a1), t.At(a2), t.At(a3)], log.Select(e => e.Rip).ToArray());
        Assert.All(log, e => Assert.Equal((Dr6Fixed | Bs, 0UL), (e.Dr6, e.Rflags & Rf)));
    }

    [Fact]
    public void MOV_SS_holds_the_single_step_trap_until_the_next_instruction_completes()
    {
        Label a1 = default, a2 = default, a3 = default;
        var t = RunToUd((a, k) =>
        {
            a1 = a.CreateLabel(); a2 = a.CreateLabel(); a3 = a.CreateLabel();
            a.mov(bx, ss);
            SetTf(a);
            a.mov(ss, bx);                                 // TF set: its trap waits for the AND
            a.and(rax, ~(int)Tf);
            a.Label(ref a1);
            a.push(rax);
            a.Label(ref a2);
            a.popfq();
            a.Label(ref a3);
        });
        var log = DbLog.Read(t);
        Assert.Equal([t.At(a1), t.At(a2), t.At(a3)], log.Select(e => e.Rip).ToArray());
        Assert.All(log, e => Assert.Equal(Dr6Fixed | Bs, e.Dr6));
    }

    [Fact]
    public void ICEBP_is_a_trap_DB_with_DR6_unchanged_and_no_single_step_trap_at_the_handler()
    {
        Label after = default, a1 = default, a2 = default, a3 = default;
        var t = RunToUd((a, k) =>
        {
            after = a.CreateLabel(); a1 = a.CreateLabel(); a2 = a.CreateLabel(); a3 = a.CreateLabel();
            a.mov(bx, ss);
            SetTf(a);
            a.mov(ss, bx);                                 // held single-step: ICEBP's #DB stands for it
            a.db(0xF1);
            a.Label(ref after);
            a.and(rax, ~(int)Tf);
            a.Label(ref a1);
            a.push(rax);
            a.Label(ref a2);
            a.popfq();
            a.Label(ref a3);
        });
        var log = DbLog.Read(t);
        Assert.Equal([t.At(after), t.At(a1), t.At(a2), t.At(a3)], log.Select(e => e.Rip).ToArray());
        Assert.Equal([Dr6Fixed, Dr6Fixed | Bs, Dr6Fixed | Bs, Dr6Fixed | Bs], log.Select(e => e.Dr6).ToArray());
    }

    [Fact]
    public void MOV_SS_with_a_watchpoint_then_INT3_delivers_BP_and_then_the_held_DB_once_each_at_the_BP_handler()
    {
        var t = RunToUd((a, k) =>
        {
            a.mov(__word_ptr[Data + 0x400], GuestKit.KData);
            a.mov(rax, Data + 0x400); a.mov(dr1, rax);
            a.mov(eax, 0x00F0040A); a.mov(dr7, rax);      // G0 (DR0 = 0), G1: R/W1 = 11, LEN 4
            a.mov(ss, __word_ptr[Data + 0x400]);           // reads the watched word: its #DB is held
            a.int3();
        }, Vec.DB, Vec.BP);
        var log = DbLog.Read(t);
        // #BP is delivered first; the held #DB then arrives before the #BP handler's first instruction, so its handler
        // logs first, with the #BP handler's address as the pushed RIP.
        Assert.Equal([Vec.DB, Vec.BP], log.Select(e => e.Vector).ToArray());
        Assert.Equal(Dr6Fixed | 2, log[0].Dr6);
        Assert.NotEqual(log[1].Rip, log[0].Rip);
    }

    [Fact]
    public void Single_stepping_HLT_delivers_the_DB_after_the_wake_up_and_before_the_waking_interrupt()
    {
        Label hlt = default, afterHlt = default;
        var t = RunToUd((a, k) =>
        {
            hlt = a.CreateLabel(); afterHlt = a.CreateLabel();
            a.cli();
            X2Apic.Enable(a);
            X2Apic.Write(a, 0x832, 0x40);                   // LVT timer: vector 0x40, one-shot
            X2Apic.Write(a, 0x83E, 0xB);                    // divide by 1
            X2Apic.Write(a, 0x838, 5000);                   // TMICT
            SetTf(a);
            a.sti();                                        // trap after STI (STI blocking does not hold #DB)
            a.Label(ref hlt);
            a.hlt();
            a.Label(ref afterHlt);
            a.and(rax, ~(int)(Tf | 0x200));
            a.push(rax);
            a.popfq();
        }, Vec.DB, 0x40);
        var log = DbLog.Read(t);
        Assert.True(log.Length >= 3, $"{log.Length} events");
        Assert.Equal((Vec.DB, t.At(hlt)), (log[0].Vector, log[0].Rip));
        Assert.Equal((Vec.DB, t.At(afterHlt), Dr6Fixed | Bs), (log[1].Vector, log[1].Rip, log[1].Dr6));
        Assert.Equal((0x40, t.At(afterHlt)), (log[2].Vector, log[2].Rip));
    }

    [Fact]
    public void An_IO_breakpoint_with_CR4_DE_traps_after_the_OUT_to_a_port_in_its_range()
    {
        Label after = default;
        var t = RunToUd((a, k) =>
        {
            after = a.CreateLabel();
            a.mov(rax, cr4); a.or(eax, 1 << 3); a.mov(cr4, rax);   // CR4.DE
            a.mov(eax, 0x80); a.mov(dr2, rax);
            a.mov(eax, 0x02000420); a.mov(dr7, rax);      // G2, R/W2 = 10 (I/O), LEN 1
            a.mov(al, 1);
            a.@out(0x81, al);                              // another port: no match
            a.@out(0x80, al);
            a.Label(ref after);
        });
        var log = DbLog.Read(t);
        Assert.Single(log);
        Assert.Equal((t.At(after), Dr6Fixed | 4), (log[0].Rip, log[0].Dr6));
    }
}

/// <summary>x2APIC access for the guests of these tests (MSR 0x800 + register offset / 16).</summary>
internal static class X2Apic
{
    /// <summary>IA32_APIC_BASE |= EN | EXTD, then SVR = 0x1FF (software-enabled, spurious vector 0xFF).</summary>
    public static void Enable(Assembler a)
    {
        a.mov(ecx, 0x1Bu); a.rdmsr(); a.or(eax, 0xC00); a.wrmsr();
        Write(a, 0x80F, 0x1FF);
    }

    public static void Write(Assembler a, uint msr, uint value)
    {
        a.mov(ecx, msr); a.mov(eax, value); a.xor(edx, edx); a.wrmsr();
    }
}
