using Emu64.Cpu;
using Emu64.Isa;
using Emu64.Mmu;
using Emu64.Tests.Mmu.Legacy;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Tests.Isa;

/// <summary>
/// Hardware task switching in 32-bit protected mode (SDM vol. 3A ch. 8 and the JMP, CALL, IRET and INT pages of
/// vol. 2): what each source (JMP, CALL, IRET with NT, an IDT task gate) does to the busy bits, the previous-task
/// link, EFLAGS.NT, TR, CR0.TS, CR3 (and the TLBs), LDTR and the registers; the checks of table 8-2 with the fault
/// and error code each raises, and whether it is taken in the old task (nothing changed) or the new one; the T bit;
/// and no task switches in IA-32e mode. The machine is the <see cref="LegacyRig"/> (CPL 0, flat segments, paging
/// off unless a test turns it on) with a GDT, two TSSs, an LDT and an IDT written into memory.
/// </summary>
[Trait("Category", "Isa")]
public class TaskSwitchTests
{
    private const ulong GdtAt = 0x10000, TssA = 0x20000, TssB = 0x21000, TssSmall = 0x22000, LdtAt = 0x23000, IdtAt = 0x24000;
    private const ushort CodeSel = 0x08, DataSel = 0x10, ASel = 0x18, BSel = 0x20, GateB = 0x28, LdtSel = 0x30,
                         Code3 = 0x38, Data3 = 0x40, SmallSel = 0x48, AbsentTss = 0x50, GateA = 0x58, AbsentData = 0x60;
    private const uint NewEip = 0x5000, NewEsp = 0x9000, NewFlags = 0x0883;   // CF, bit 1, SF, OF

    private static ulong Desc(uint limit, int access, int flags, uint b = 0) =>
        (limit & 0xFFFF) | ((ulong)(b & 0xFFFFFF) << 16) | ((ulong)(access & 0xFF) << 40)
        | ((ulong)((limit >> 16) & 0xF) << 48) | ((ulong)(flags & 0xF) << 52) | ((ulong)(b >> 24) << 56);

    private static ulong Gate(ushort tss, int dpl) => ((ulong)tss << 16) | ((ulong)(0x85 | dpl << 5) << 40);

    private static readonly ulong[] Gdt =
    [
        0,
        Desc(0xFFFFF, 0x9B, 0xC),                  // 0x08 32-bit code DPL0
        Desc(0xFFFFF, 0x93, 0xC),                  // 0x10 data DPL0
        Desc(0x67, 0x8B, 0, (uint)TssA),           // 0x18 TSS A, busy: the current task
        Desc(0x67, 0x89, 0, (uint)TssB),           // 0x20 TSS B, available
        Gate(BSel, 0),                             // 0x28 task gate to B, DPL0
        Desc(0x0F, 0x82, 0, (uint)LdtAt),          // 0x30 LDT, two entries
        Desc(0xFFFFF, 0xFB, 0xC),                  // 0x38 32-bit code DPL3
        Desc(0xFFFFF, 0xF3, 0xC),                  // 0x40 data DPL3
        Desc(0x66, 0x89, 0, (uint)TssSmall),       // 0x48 TSS with a limit below 67H
        Desc(0x67, 0x09, 0, (uint)TssB),           // 0x50 TSS not present
        Gate(ASel, 0),                             // 0x58 task gate to the busy TSS A
        Desc(0xFFFFF, 0x13, 0xC),                  // 0x60 writable data, not present
    ];

    private static LegacyRig Rig(Action<LegacyRig>? tss = null)
    {
        var rig = new LegacyRig();
        var c = rig.Cpu;
        for (int k = 0; k < Gdt.Length; k++) rig.Write8(GdtAt + (ulong)k * 8, Gdt[k]);
        rig.Write8(LdtAt, Desc(0xFFFFF, 0x93, 0xC));
        c.Gdtr = new TableReg { Base = GdtAt, Limit = (ushort)(Gdt.Length * 8 - 1) };
        c.Idtr = new TableReg { Base = IdtAt, Limit = 0x7FF };
        c.Tr = CpuCore.DescriptorToSegment(ASel, Gdt[ASel >> 3]);
        // Task B: EIP, ESP, EFLAGS, distinct GPRs, flat selectors and the LDT.
        rig.Write4(TssB + 0x20, NewEip);
        rig.Write4(TssB + 0x24, NewFlags);
        for (int r = 0; r < 8; r++) rig.Write4(TssB + 0x28 + 4 * (ulong)r, r == Reg.RSP ? NewEsp : 0x1110u + (uint)r);
        ushort[] sregs = [DataSel, CodeSel, DataSel, DataSel, DataSel, DataSel];
        for (int s = 0; s < 6; s++) rig.Write4(TssB + 0x48 + 4 * (ulong)s, sregs[s]);
        rig.Write4(TssB + 0x60, LdtSel);
        for (int r = 0; r < 8; r++) c.R[r] = 0xA0u + (uint)r;
        c.R[Reg.RSP] = 0x8000;
        tss?.Invoke(rig);
        return rig;
    }

    /// <summary>Runs one instruction as the run loop does (RIP rewound to InsnRip on a fault); the fault, or null.</summary>
    private static unsafe (int Vector, uint Error)? Exec(CpuCore cpu, params byte[] bytes)
    {
        var d = default(Insn);
        DecodeCache.DecodeOne(bytes, 0x1000, cpu.Bitness, ref d);
        cpu.InsnRip = cpu.Rip = 0x1000;
        cpu.Rip += d.Length;
        try { d.Exec(cpu, ref d); return null; }
        catch (GuestFault f) { cpu.Rip = cpu.InsnRip; return (f.Vector, f.ErrorCode); }
    }

    private static byte[] CallFar(ushort sel) => [0x9A, 0xF4, 0xF4, 0xF4, 0xF4, (byte)sel, (byte)(sel >> 8)];
    private static byte[] JmpFar(ushort sel) => [0xEA, 0xF4, 0xF4, 0xF4, 0xF4, (byte)sel, (byte)(sel >> 8)];
    private static readonly byte[] Iretd = [0xCF];

    private static bool Busy(LegacyRig rig, ushort sel) => (rig.Read8(GdtAt + (ulong)(sel & ~7)) >> 41 & 1) != 0;

    private static void AssertInTaskB(LegacyRig rig, uint esp = NewEsp)
    {
        var c = rig.Cpu;
        Assert.Equal(BSel, c.Tr.Selector);
        Assert.Equal(TssB, c.Tr.Base);
        Assert.Equal(NewEip, c.Rip);
        for (int r = 0; r < 8; r++) Assert.Equal(r == Reg.RSP ? esp : 0x1110UL + (ulong)r, c.R[r]);
        Assert.Equal(CodeSel, c.Segs[Seg.CS].Selector);
        Assert.Equal(DataSel, c.Segs[Seg.SS].Selector);
        Assert.Equal(LdtSel, c.Ldtr.Selector);
        Assert.Equal(LdtAt, c.Ldtr.Base);
        Assert.NotEqual(0UL, c.CR0 & Cr0.Ts);                            // a task switch always sets CR0.TS
    }

    private static void AssertOldTaskSaved(LegacyRig rig, uint eip, uint eflags)
    {
        Assert.Equal(eip, (uint)rig.Read4(TssA + 0x20));
        Assert.Equal(eflags, (uint)rig.Read4(TssA + 0x24));
        for (int r = 0; r < 8; r++) Assert.Equal(r == Reg.RSP ? 0x8000UL : 0xA0UL + (ulong)r, rig.Read4(TssA + 0x28 + 4 * (ulong)r));
        Assert.Equal(CodeSel, (ushort)rig.Read4(TssA + 0x4C));
        Assert.Equal(DataSel, (ushort)rig.Read4(TssA + 0x50));
    }

    [Fact]
    public void Call_far_to_a_TSS_saves_the_old_task_links_the_new_one_to_it_and_loads_its_state()
    {
        var rig = Rig();
        rig.Cpu.Rflags = RFlags.Reserved1 | RFlags.ZF;
        Assert.Null(Exec(rig.Cpu, CallFar(BSel)));
        AssertInTaskB(rig);
        Assert.Equal(NewFlags | RFlags.NT, rig.Cpu.Rflags);             // nested: NT set in the loaded EFLAGS
        AssertOldTaskSaved(rig, 0x1007, (uint)(RFlags.Reserved1 | RFlags.ZF));   // EIP after the CALL (the offset is ignored)
        Assert.Equal(ASel, (ushort)rig.Read4(TssB));                    // previous-task link
        Assert.True(Busy(rig, ASel));                                    // the caller stays busy
        Assert.True(Busy(rig, BSel));
        Assert.Equal(0x8000UL, rig.Read4(TssA + 0x38));                  // ESP saved, nothing pushed
    }

    [Fact]
    public void Jmp_far_to_a_TSS_frees_the_old_task_and_leaves_the_link_and_NT_alone()
    {
        var rig = Rig(r => r.Write4(TssB, 0xBEEF));
        Assert.Null(Exec(rig.Cpu, JmpFar(BSel)));
        AssertInTaskB(rig);
        Assert.Equal((ulong)NewFlags, rig.Cpu.Rflags);
        Assert.Equal(0xBEEFUL, rig.Read4(TssB));
        Assert.False(Busy(rig, ASel));
        Assert.True(Busy(rig, BSel));
        AssertOldTaskSaved(rig, 0x1007, (uint)RFlags.Reserved1);
    }

    [Fact]
    public void Call_far_through_a_task_gate_switches_to_the_TSS_the_gate_names()
    {
        var rig = Rig();
        Assert.Null(Exec(rig.Cpu, CallFar(GateB)));
        AssertInTaskB(rig);
        Assert.Equal(ASel, (ushort)rig.Read4(TssB));
    }

    [Fact]
    public void Iret_with_NT_returns_to_the_back_link_frees_the_nested_task_and_saves_it_without_NT()
    {
        var rig = Rig();
        Assert.Null(Exec(rig.Cpu, CallFar(BSel)));
        rig.Cpu.R[Reg.RAX] = 0x77;
        Assert.Null(Exec(rig.Cpu, Iretd));
        var c = rig.Cpu;
        Assert.Equal(ASel, c.Tr.Selector);
        Assert.Equal(0x1007UL, c.Rip);
        Assert.Equal(0xA0UL, c.R[Reg.RAX]);
        Assert.Equal(0x8000UL, c.Rsp);                                   // IRET of a task pops nothing
        Assert.False(Busy(rig, BSel));
        Assert.True(Busy(rig, ASel));
        Assert.Equal(0x1001u, (uint)rig.Read4(TssB + 0x20));             // B resumes after its IRET next time
        Assert.Equal(NewFlags, (uint)rig.Read4(TssB + 0x24));            // saved with NT cleared
        Assert.Equal(0x77u, (uint)rig.Read4(TssB + 0x28));
        Assert.Equal(0UL, c.Rflags & RFlags.NT);
    }

    public static TheoryData<string, ushort, int, uint> FarFaults => new()
    {
        { "a busy TSS", ASel, Vec.GP, ASel },
        { "a DPL 0 TSS through an RPL 3 selector", BSel | 3, Vec.GP, BSel },
        { "a TSS that is not present", AbsentTss, Vec.NP, AbsentTss },
        { "a TSS whose limit is below 67H", SmallSel, Vec.TS, SmallSel },
        { "a task gate naming a busy TSS", GateA, Vec.GP, ASel },
        { "an LDT descriptor", LdtSel, Vec.GP, LdtSel },
    };

    [Theory]
    [MemberData(nameof(FarFaults))]
    public void A_far_call_to_a_bad_task_faults_in_the_old_task_with_nothing_changed(string what, ushort sel, int vector, uint error)
    {
        _ = what;
        var rig = Rig();
        Assert.Equal((vector, error), Exec(rig.Cpu, CallFar(sel)));
        Assert.Equal(ASel, rig.Cpu.Tr.Selector);
        Assert.Equal(0x1000UL, rig.Cpu.Rip);
        Assert.Equal(0xA0UL, rig.Cpu.R[Reg.RAX]);
        Assert.True(Busy(rig, ASel));
        Assert.Equal(0u, (uint)rig.Read4(TssA + 0x20));                 // nothing saved
        Assert.Equal(0UL, rig.Cpu.CR0 & Cr0.Ts);
    }

    [Fact]
    public void A_task_gate_DPL_below_CPL_or_RPL_is_GP_with_the_gate_selector()
    {
        var rig = Rig();
        Assert.Equal((Vec.GP, (uint)GateB), Exec(rig.Cpu, CallFar(GateB | 3)));
    }

    [Theory]
    [InlineData(0x0000, Vec.TS)]          // a null link
    [InlineData(BSel, Vec.TS)]            // an available (not busy) TSS
    [InlineData(LdtSel | 4, Vec.TS)]      // in the LDT
    [InlineData(DataSel, Vec.TS)]         // not a TSS
    public void Iret_with_NT_needs_a_busy_TSS_in_the_GDT_as_the_back_link(ushort link, int vector)
    {
        var rig = Rig();
        rig.Write4(TssA, link);
        rig.Cpu.Rflags = RFlags.Reserved1 | RFlags.NT;
        Assert.Equal((vector, (uint)(link & ~3)), Exec(rig.Cpu, Iretd));
        Assert.Equal(ASel, rig.Cpu.Tr.Selector);
    }

    public static TheoryData<string, ulong, uint, int, uint> NewTaskFaults => new()
    {
        { "CS names a data segment", 0x4C, DataSel, Vec.TS, DataSel },
        { "CS is null", 0x4C, 0, Vec.TS, 0 },
        { "SS has DPL 3 at CPL 0", 0x50, Data3, Vec.TS, Data3 },
        { "SS is not present", 0x50, AbsentData, Vec.SS, AbsentData },
        { "SS is null", 0x50, 0, Vec.TS, 0 },
        { "DS is not present", 0x54, AbsentData, Vec.NP, AbsentData },
        { "DS is a system descriptor", 0x54, SmallSel, Vec.TS, SmallSel },
        { "ES lies past the GDT limit", 0x48, 0x1000, Vec.TS, 0x1000 },
        { "the LDT selector names a data segment", 0x60, DataSel, Vec.TS, DataSel },
        { "the LDT selector is in the LDT", 0x60, LdtSel | 4, Vec.TS, LdtSel | 4 },
    };

    [Theory]
    [MemberData(nameof(NewTaskFaults))]
    public void A_bad_segment_in_the_new_TSS_faults_in_the_new_task_after_the_switch(string what, ulong field, uint value, int vector, uint error)
    {
        _ = what;
        var rig = Rig(r => r.Write4(TssB + field, value));
        Assert.Equal((vector, error), Exec(rig.Cpu, CallFar(BSel)));
        // The switch committed: the fault belongs to task B, at its first instruction.
        Assert.Equal(BSel, rig.Cpu.Tr.Selector);
        Assert.Equal(NewEip, rig.Cpu.Rip);
        Assert.Equal(0x1110UL, rig.Cpu.R[Reg.RAX]);
        Assert.True(Busy(rig, BSel));
        Assert.Equal(ASel, (ushort)rig.Read4(TssB));
        Assert.Equal(0x1007u, (uint)rig.Read4(TssA + 0x20));
    }

    [Fact]
    public void A_conforming_code_segment_may_have_a_DPL_below_the_CS_selector_RPL()
    {
        // As kvm-unit-tests' taskswitch2 does: CS = conforming DPL 0 code with RPL 3, SS and data DPL 3: CPL 3.
        var rig = Rig(r =>
        {
            r.Write8(GdtAt + 0x48, Desc(0xFFFFF, 0x9F, 0xC));
            r.Write4(TssB + 0x4C, 0x48 | 3);
            foreach (ulong f in (ulong[])[0x48, 0x50, 0x54, 0x58, 0x5C]) r.Write4(TssB + f, Data3 | 3);
        });
        Assert.Null(Exec(rig.Cpu, CallFar(BSel)));
        Assert.Equal(3, rig.Cpu.Cpl);
        Assert.Equal((ushort)(Data3 | 3), rig.Cpu.Segs[Seg.SS].Selector);
    }

    [Fact]
    public void An_exception_through_an_IDT_task_gate_switches_tasks_and_pushes_its_error_code_on_the_new_stack()
    {
        var rig = Rig();
        rig.Write8(IdtAt + 13 * 8, Gate(BSel, 0));
        var c = rig.Cpu;
        c.InsnRip = c.Rip = 0x1234;                                       // the faulting instruction
        c.DeliverFault(new GuestFault { Vector = Vec.GP, ErrorCode = 0x1238, HasErrorCode = true });
        AssertInTaskB(rig, NewEsp - 4);
        Assert.Equal(NewEsp - 4, c.Rsp);
        Assert.Equal(0x1238UL, rig.Read4(NewEsp - 4));
        Assert.Equal(ASel, (ushort)rig.Read4(TssB));
        Assert.NotEqual(0UL, c.Rflags & RFlags.NT);
        Assert.Equal(0x1234u, (uint)rig.Read4(TssA + 0x20));            // the old task resumes at the faulting instruction
    }

    [Fact]
    public void INT_n_through_a_task_gate_saves_EIP_after_the_instruction_and_checks_the_gate_DPL()
    {
        var rig = Rig();
        rig.Write8(IdtAt + 0x40 * 8, Gate(BSel, 0));
        Assert.Null(Exec(rig.Cpu, 0xCD, 0x40));
        AssertInTaskB(rig);
        Assert.Equal(NewEsp, rig.Cpu.Rsp);                                // no error code
        Assert.Equal(0x1002u, (uint)rig.Read4(TssA + 0x20));

        // At CPL 3 a DPL 0 task gate is #GP(vector × 8 + 2).
        var user = Rig();
        user.Write8(IdtAt + 0x40 * 8, Gate(BSel, 0));
        user.Cpu.Segs[Seg.CS] = CpuCore.DescriptorToSegment(Code3 | 3, Gdt[Code3 >> 3]);
        user.Cpu.UpdateMode();
        Assert.Equal((Vec.GP, 0x40u * 8 + 2), Exec(user.Cpu, 0xCD, 0x40));
    }

    [Fact]
    public void An_external_interrupt_through_a_task_gate_to_a_busy_TSS_is_GP_with_the_EXT_bit()
    {
        var rig = Rig();
        rig.Write8(IdtAt + 0x30 * 8, Gate(ASel, 0));                      // names the running (busy) task
        rig.Write8(IdtAt + 13 * 8, Gate(BSel, 0));                        // the #GP goes to task B
        var c = rig.Cpu;
        c.InsnRip = c.Rip = 0x1000;
        c.DeliverExternal(0x30);
        AssertInTaskB(rig, NewEsp - 4);
        Assert.Equal((uint)ASel | 1, (uint)rig.Read4(NewEsp - 4));       // #GP(selector | EXT)
    }

    [Fact]
    public void A_TSS_with_the_T_bit_raises_a_debug_trap_with_DR6_BT_before_the_new_tasks_first_instruction()
    {
        const ulong handler = 0x6000;
        var rig = Rig(r =>
        {
            r.Write4(TssB + 0x64, 1);                                     // T
            r.Write8(IdtAt + 1 * 8, (handler & 0xFFFF) | ((ulong)CodeSel << 16) | (0x8EUL << 40) | ((handler >> 16) << 48));
            r.Machine.Memory.Write(0x1000, 7, BitConverter.ToUInt64([.. CallFar(BSel), 0]));
            r.Machine.Memory.Write(NewEip, 1, 0x90);
            r.Machine.Memory.Write(handler, 2, 0x9090);
        });
        var c = rig.Cpu;
        c.Rip = 0x1000;
        rig.Machine.Run(1);
        Assert.Equal(NewEip, c.Rip);
        rig.Machine.Run(1);                                               // the #DB, then the handler's first NOP
        Assert.Equal(handler + 1, c.Rip);
        Assert.NotEqual(0UL, c.DR[6] & Dr6.Bt);
        Assert.Equal(0UL, c.DR[6] & Dr6.Bs);
        Assert.Equal(NewEip, rig.Read4(c.Rsp));                            // the trap's frame: task B's first instruction
        Assert.Equal(BSel, c.Tr.Selector);

        var quiet = Rig(r =>
        {
            r.Machine.Memory.Write(0x1000, 7, BitConverter.ToUInt64([.. CallFar(BSel), 0]));
            r.Machine.Memory.Write(NewEip, 2, 0x9090);
        });
        quiet.Cpu.Rip = 0x1000;
        quiet.Machine.Run(2);
        Assert.Equal(NewEip + 1, quiet.Cpu.Rip);                           // no T bit: no #DB
        Assert.Equal(0UL, quiet.Cpu.DR[6] & Dr6.Bt);
    }

    [Fact]
    public void A_task_switch_that_changes_CR3_drops_the_non_global_TLB_entries_and_one_that_keeps_it_drops_none()
    {
        const ulong pd = 0x30000, pd2 = 0x31000;
        var rig = Rig();
        foreach (ulong at in (ulong[])[pd, pd2])
        {
            rig.Write4(at, 0x83);                                          // 4 MiB identity, non-global
            rig.Write4(at + 4, 0x400183);                                  // 4-8 MiB, global
        }
        rig.Write4(TssB + 0x1C, (uint)pd2);
        rig.EnablePaging(Cr4.Pse | Cr4.Pge, pd);
        Assert.NotNull(rig.Try(0x1000, Access.Read).Pa);
        Assert.NotNull(rig.Try(0x401000, Access.Read).Pa);
        ulong before = rig.Mmu.Snapshot().Flushes(FlushCause.Cr3);
        Assert.Null(Exec(rig.Cpu, CallFar(BSel)));
        Assert.Equal(pd2, rig.Cpu.CR3);
        var s = rig.Mmu.Snapshot();
        Assert.Equal(before + 1, s.Flushes(FlushCause.Cr3));
        Assert.True(s.DroppedTlb(FlushCause.Cr3) >= 1);
        ulong dropped = s.DroppedTlb(FlushCause.Cr3);
        Assert.Equal(0u, (uint)rig.Read4(TssA + 0x1C));                  // CR3 is static: never written to the old TSS

        // Back with IRET to task A, whose TSS holds the same CR3 B runs with: CR3 does not change, nothing is dropped.
        rig.Write4(TssA + 0x1C, (uint)pd2);
        Assert.Null(Exec(rig.Cpu, Iretd));
        Assert.Equal(before + 1, rig.Mmu.Snapshot().Flushes(FlushCause.Cr3));
        Assert.Equal(dropped, rig.Mmu.Snapshot().DroppedTlb(FlushCause.Cr3));
    }

    [Fact]
    public void Under_PAE_paging_a_task_switch_loads_the_PDPTEs_and_a_bad_one_is_GP_0_in_the_new_task()
    {
        const ulong pdpt = 0x30000, pd = 0x31000, badPdpt = 0x32000;
        var rig = Rig();
        rig.Write8(pdpt, pd | 1);
        rig.Write8(pd, 0x83);                                              // 2 MiB identity
        rig.Write8(badPdpt, pd | 1 | 1 << 5);                              // a reserved bit in a present PDPTE
        rig.Write8(badPdpt + 8, 0);
        rig.Write4(TssB + 0x1C, (uint)badPdpt);
        rig.EnablePaging(Cr4.Pae, pdpt);
        Assert.Equal((Vec.GP, 0u), Exec(rig.Cpu, CallFar(BSel)));
        Assert.Equal(BSel, rig.Cpu.Tr.Selector);
        Assert.Equal(pdpt, rig.Cpu.CR3);
    }

    [Fact]
    public void In_IA32e_mode_there_are_no_task_switches()
    {
        var rig = Rig();
        rig.Write8(IdtAt + 0x40 * 16, Gate(BSel, 0));
        var c = rig.Cpu;
        c.EFER |= Efer.Lme | Efer.Lma;                                     // compatibility mode: 32-bit code, IA-32e
        c.UpdateMode();
        Assert.Equal(CpuMode.Compat32, c.Mode);
        Assert.Equal((Vec.GP, (uint)BSel), Exec(c, JmpFar(BSel)));
        Assert.Equal((Vec.GP, (uint)GateB), Exec(c, CallFar(GateB)));
        c.Rflags = RFlags.Reserved1 | RFlags.NT;
        Assert.Equal((Vec.GP, 0u), Exec(c, Iretd));
        Assert.Equal((Vec.GP, 0x40u * 8 + 2), Exec(c, 0xCD, 0x40)); // a task gate is no 64-bit IDT entry
        Assert.Equal(ASel, c.Tr.Selector);
    }
}
