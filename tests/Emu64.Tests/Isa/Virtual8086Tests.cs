using Emu64.Cpu;
using Emu64.Mmu;
using Emu64.Tests.Mmu.Legacy;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Tests.Isa;

/// <summary>
/// Virtual-8086 mode (SDM vol. 3A ch. 20, and the IRET, INT n, CLI/STI, PUSHF/POPF, IN/OUT pages of vol. 2) without
/// CR4.VME: entry by IRETD at CPL 0 and by a task switch; real-address-mode segments (base = selector × 16, 64 KiB
/// limits) at CPL 3 under paging; the IOPL-sensitive instructions; the I/O permission bitmap whatever IOPL is; the
/// instructions that are #UD or #GP there; and interrupts and exceptions leaving through a ring-0 gate with the
/// virtual-8086 frame. Also the 80286's 16-bit TSS in task switches and interrupt stack lookups (vol. 3A §8.6).
/// The machine is the <see cref="LegacyRig"/> (CPL 0, flat 32-bit segments, paging off unless a test turns it on)
/// with a GDT, TSSs and an IDT written into memory; instructions run one at a time as the run loop runs them.
/// </summary>
[Trait("Category", "Isa")]
public class Virtual8086Tests
{
    private const ulong GdtAt = 0x10000, TssA = 0x20000, TssB = 0x21000, TssC = 0x22000, TssD = 0x23000, IdtAt = 0x24000;
    private const ushort CodeSel = 0x08, DataSel = 0x10, ASel = 0x18, BSel = 0x20, Code3 = 0x28, CSel16 = 0x30,
                         Conforming = 0x38, DSel16 = 0x40, Data3 = 0x48;
    private const uint Esp0 = 0x9000, Handler = 0x5000, GpHandler = 0x6000;
    /// <summary>The I/O permission bitmap of TSS A: at 68H, 80H bytes (ports 0-3FFH), then the FFH byte.</summary>
    private const uint IoMapBase = 0x68, TssALimit = IoMapBase + 0x80;

    private static ulong Desc(uint limit, int access, int flags, uint b = 0) =>
        (limit & 0xFFFF) | ((ulong)(b & 0xFFFFFF) << 16) | ((ulong)(access & 0xFF) << 40)
        | ((ulong)((limit >> 16) & 0xF) << 48) | ((ulong)(flags & 0xF) << 52) | ((ulong)(b >> 24) << 56);

    /// <summary>A 32-bit interrupt (8EH) or trap (8FH) gate, or a task gate (85H), with its DPL.</summary>
    private static ulong Gate(int type, ushort sel, uint offset, int dpl) =>
        (offset & 0xFFFF) | ((ulong)sel << 16) | ((ulong)(type | dpl << 5) << 40) | ((ulong)(offset >> 16) << 48);

    private static readonly ulong[] Gdt =
    [
        0,
        Desc(0xFFFFF, 0x9B, 0xC),                  // 0x08 32-bit code DPL0
        Desc(0xFFFFF, 0x93, 0xC),                  // 0x10 data DPL0
        Desc(TssALimit, 0x8B, 0, (uint)TssA),      // 0x18 32-bit TSS A, busy: the current task
        Desc(0x67, 0x89, 0, (uint)TssB),           // 0x20 32-bit TSS B, available
        Desc(0xFFFFF, 0xFB, 0xC),                  // 0x28 32-bit code DPL3
        Desc(0x2B, 0x81, 0, (uint)TssC),           // 0x30 16-bit TSS C, available
        Desc(0xFFFFF, 0x9F, 0xC),                  // 0x38 conforming code DPL0
        Desc(0x2B, 0x83, 0, (uint)TssD),           // 0x40 16-bit TSS D, busy
        Desc(0xFFFFF, 0xF3, 0xC),                  // 0x48 data DPL3
    ];

    private static LegacyRig Rig()
    {
        var rig = new LegacyRig();
        var c = rig.Cpu;
        for (int k = 0; k < Gdt.Length; k++) rig.Write8(GdtAt + (ulong)k * 8, Gdt[k]);
        c.Gdtr = new TableReg { Base = GdtAt, Limit = (ushort)(Gdt.Length * 8 - 1) };
        c.Idtr = new TableReg { Base = IdtAt, Limit = 0x7FF };
        c.Tr = CpuCore.DescriptorToSegment(ASel, Gdt[ASel >> 3]);
        rig.Write4(TssA + 4, Esp0);                                        // ESP0
        rig.Write4(TssA + 8, DataSel);                                     // SS0
        rig.Write4(TssA + 0x64, IoMapBase << 16);                          // I/O map base
        rig.Machine.Memory.Write(TssA + IoMapBase + 0x80, 1, 0xFF);
        rig.Machine.Memory.Write(TssA + IoMapBase + 0x10, 1, 0x01);       // port 80H denied
        rig.Write8(IdtAt + Vec.GP * 8, Gate(0x8E, CodeSel, GpHandler, 0));
        rig.Write8(IdtAt + Vec.PF * 8, Gate(0x8E, CodeSel, GpHandler, 0));
        rig.Write8(IdtAt + Vec.BP * 8, Gate(0x8E, CodeSel, Handler, 0));   // INT3 through a DPL 0 gate
        rig.Write8(IdtAt + 0x40 * 8, Gate(0x8E, CodeSel, Handler, 3));
        rig.Write8(IdtAt + 0x41 * 8, Gate(0x8F, CodeSel, Handler, 3));
        rig.Write8(IdtAt + 0x42 * 8, Gate(0x8E, Code3, Handler, 3));      // a ring-3 handler
        rig.Write8(IdtAt + 0x43 * 8, Gate(0x8E, Conforming, Handler, 3)); // a conforming handler
        rig.Write8(IdtAt + 0x50 * 8, Gate(0x85, ASel, 0, 3));             // a task gate to TSS A
        rig.Write8(IdtAt + 0x44 * 8, Gate(0x86, CodeSel, Handler, 3));    // a 16-bit interrupt gate
        rig.Write8(IdtAt + 0x45 * 8, Gate(0x87, CodeSel, Handler | 0xABCD0000, 3)); // a 16-bit trap gate (high offset ignored)
        return rig;
    }

    /// <summary>Runs one instruction as the run loop does (RIP rewound on a fault, which is then delivered); the fault, or null.</summary>
    private static unsafe (int Vector, uint Error)? Exec(CpuCore cpu, params byte[] bytes) => Run(cpu, deliver: false, bytes);
    private static (int Vector, uint Error)? ExecAndDeliver(CpuCore cpu, params byte[] bytes) => Run(cpu, deliver: true, bytes);

    private static unsafe (int Vector, uint Error)? Run(CpuCore cpu, bool deliver, byte[] bytes)
    {
        var d = default(Insn);
        DecodeCache.DecodeOne(bytes, 0x1000, cpu.Bitness, ref d);
        cpu.InsnRip = cpu.Rip = 0x1000;
        cpu.Rip += d.Length;
        try { d.Exec(cpu, ref d); return null; }
        catch (GuestFault f)
        {
            cpu.Rip = cpu.InsnRip;
            var r = (f.Vector, f.ErrorCode);
            if (deliver) cpu.DeliverFault(f);
            return r;
        }
    }

    private const uint VmFlags = 0x23202;                                 // VM, IOPL 3, IF, bit 1
    private static readonly ushort[] V86Sel = [0x4000, 0x2000, 0x3000, 0x5000, 0x6000, 0x7000];   // ES CS SS DS FS GS

    /// <summary>Enters virtual-8086 mode from CPL 0 by IRETD with the nine-doubleword frame at ESP 8000H.</summary>
    private static void EnterVm86(LegacyRig rig, uint eflags = VmFlags, uint eip = 0x0100, uint esp = 0xFFF0)
    {
        var c = rig.Cpu;
        uint[] frame = [eip, V86Sel[Seg.CS], eflags, esp, V86Sel[Seg.SS], V86Sel[Seg.ES], V86Sel[Seg.DS], V86Sel[Seg.FS], V86Sel[Seg.GS]];
        for (int k = 0; k < frame.Length; k++) rig.Write4(0x8000 + 4 * (ulong)k, 0xABCD0000u | frame[k]);
        rig.Write4(0x8000, eip);
        rig.Write4(0x8008, eflags);
        rig.Write4(0x800C, esp);
        c.Rsp = 0x8000;
        Assert.Null(Exec(c, 0xCF));                                        // iretd
    }

    [Fact]
    public void Iretd_at_CPL_0_that_pops_VM_enters_virtual_8086_mode_with_every_segment_based_at_selector_times_16()
    {
        var rig = Rig();
        var c = rig.Cpu;
        EnterVm86(rig);
        Assert.Equal(CpuMode.Virtual8086, c.Mode);
        Assert.Equal(3, c.Cpl);
        Assert.Equal(16, c.Bitness);
        Assert.Equal(0x100UL, c.Rip);
        Assert.Equal(0xFFF0UL, c.Rsp);
        Assert.Equal((ulong)VmFlags, c.Rflags);                            // the whole image, IOPL and VM included
        for (int s = 0; s < 6; s++)
        {
            Assert.Equal(V86Sel[s], c.Segs[s].Selector);                   // the low word of each doubleword
            Assert.Equal((ulong)V86Sel[s] << 4, c.Segs[s].Base);
            Assert.Equal(0xFFFFu, c.Segs[s].Limit);
            Assert.Equal(3, c.Segs[s].Dpl);
        }
    }

    [Fact]
    public void In_virtual_8086_mode_segment_loads_read_no_descriptor_and_an_access_past_64_KiB_is_GP_or_SS()
    {
        var rig = Rig();
        var c = rig.Cpu;
        EnterVm86(rig);
        c.R[Reg.RAX] = 0x1234;
        Assert.Null(Exec(c, 0x8E, 0xD8));                                  // mov ds, ax: no GDT entry 1234H needed
        Assert.Equal(0x12340UL, c.Segs[Seg.DS].Base);
        Assert.Equal(CpuMode.Virtual8086, c.Mode);
        rig.Machine.Memory.Write(0x12340 + 0xFFFF, 1, 0x5A);
        c.R[Reg.RBX] = 0xFFFF;
        Assert.Null(Exec(c, 0x67, 0x8A, 0x03));                            // mov al, [ebx]: the last byte of the segment
        Assert.Equal(0x5AUL, c.R[Reg.RAX] & 0xFF);
        c.R[Reg.RBX] = 0x10000;
        Assert.Equal((Vec.GP, 0u), Exec(c, 0x67, 0x8A, 0x03));            // one past the limit
        Assert.Equal((Vec.GP, 0u), Exec(c, 0x67, 0x8B, 0x43, 0xFF));      // mov ax, [ebx-1]: a word across FFFFH
        c.Rsp = 0x10000;
        Assert.Equal((Vec.SS, 0u), Exec(c, 0x67, 0x8A, 0x04, 0x24));      // mov al, [esp]: the stack segment
    }

    [Fact]
    public void Virtual_8086_mode_runs_at_CPL_3_so_a_supervisor_page_is_a_user_mode_page_fault()
    {
        var rig = Rig();
        var c = rig.Cpu;
        const ulong pd = 0x30000, pt = 0x31000;
        rig.Write4(pd, pt | 0x7);
        for (ulong p = 0; p < 1024; p++) rig.Write4(pt + 4 * p, (p << 12) | 0x7);   // the first 4 MiB, user read/write
        rig.Write4(pt + 4 * 0x50, 0x50000 | 0x3);                          // 50000H: supervisor only
        rig.EnablePaging(cr4: 0, cr3: pd);
        EnterVm86(rig);
        c.Segs[Seg.DS] = CpuCore.Vm86Segment(0x4FF0);                       // DS:0100H is linear 50000H
        c.R[Reg.RBX] = 0x100;
        Assert.Equal((Vec.PF, 0x5u), ExecAndDeliver(c, 0x8A, 0x07));       // mov al, [bx]: present, read, user
        Assert.Equal(0x50000UL, c.CR2);
        Assert.Equal(CpuMode.Protected32, c.Mode);
        Assert.Equal(0x5UL, rig.Read4(Esp0 - 40));                         // the error code on the ring-0 stack
    }

    [Fact]
    public void An_interrupt_gate_from_virtual_8086_mode_pushes_GS_FS_DS_ES_then_the_usual_frame_and_nulls_the_data_segments()
    {
        var rig = Rig();
        var c = rig.Cpu;
        EnterVm86(rig);
        Assert.Null(Exec(c, 0xCD, 0x40));                                  // int 40h (IOPL 3: through the IDT)
        uint[] frame = [0x1002, V86Sel[Seg.CS], VmFlags, 0xFFF0, V86Sel[Seg.SS], V86Sel[Seg.ES], V86Sel[Seg.DS], V86Sel[Seg.FS], V86Sel[Seg.GS]];
        for (int k = 0; k < frame.Length; k++) Assert.Equal(frame[k], (uint)rig.Read4(Esp0 - 36 + 4 * (ulong)k));
        Assert.Equal(CpuMode.Protected32, c.Mode);
        Assert.Equal(0, c.Cpl);
        Assert.Equal((ulong)Handler, c.Rip);
        Assert.Equal((ulong)(Esp0 - 36), c.Rsp);
        Assert.Equal(CodeSel, c.Segs[Seg.CS].Selector);
        Assert.Equal(DataSel, c.Segs[Seg.SS].Selector);
        foreach (int s in new[] { Seg.ES, Seg.DS, Seg.FS, Seg.GS }) Assert.Equal(0, c.Segs[s].Selector);
        Assert.Equal(0x3002UL, c.Rflags);                                  // VM, IF, TF, NT, RF clear; IOPL stays 3

        Assert.Null(Exec(c, 0xCF));                                        // iretd: back to the interrupted program
        Assert.Equal(CpuMode.Virtual8086, c.Mode);
        Assert.Equal(0x1002UL, c.Rip);
        for (int s = 0; s < 6; s++) Assert.Equal((ulong)V86Sel[s] << 4, c.Segs[s].Base);
        Assert.Equal((ulong)VmFlags, c.Rflags);
    }

    [Fact]
    public void A_trap_gate_from_virtual_8086_mode_keeps_IF_and_an_exception_pushes_its_error_code_last()
    {
        var rig = Rig();
        var c = rig.Cpu;
        EnterVm86(rig);
        Assert.Null(Exec(c, 0xCD, 0x41));                                  // int 41h: trap gate
        Assert.Equal(0x3202UL, c.Rflags);

        rig = Rig();
        c = rig.Cpu;
        EnterVm86(rig, eflags: 0x20202);                                   // IOPL 0
        Assert.Equal((Vec.GP, 0u), ExecAndDeliver(c, 0xFA));               // cli: the trap to the monitor
        Assert.Equal((ulong)GpHandler, c.Rip);
        Assert.Equal((ulong)(Esp0 - 40), c.Rsp);
        Assert.Equal(0u, (uint)rig.Read4(Esp0 - 40));                      // error code 0
        Assert.Equal(0x1000u, (uint)rig.Read4(Esp0 - 36));                 // EIP of the CLI itself
        Assert.Equal(0x30202u, (uint)rig.Read4(Esp0 - 28));                // EFLAGS with VM, and RF as every fault pushes it
        Assert.Equal(V86Sel[Seg.GS], (ushort)rig.Read4(Esp0 - 4));
    }

    [Fact]
    public void With_IOPL_below_3_CLI_STI_PUSHF_POPF_INT_n_and_IRET_are_GP_0_in_virtual_8086_mode()
    {
        var rig = Rig();
        var c = rig.Cpu;
        EnterVm86(rig, eflags: 0x21202);                                   // IOPL 1
        foreach (byte[] insn in new[] { new byte[] { 0xFA }, [0xFB], [0x9C], [0x9D], [0x66, 0x9C], [0xCD, 0x40], [0xCF], [0x66, 0xCF] })
        {
            Assert.Equal((Vec.GP, 0u), Exec(c, insn));
            Assert.Equal(CpuMode.Virtual8086, c.Mode);
            Assert.Equal(0xFFF0UL, c.Rsp);
        }
        // INT3 and INTO are not IOPL-sensitive: the gate's DPL decides (DPL 0 < CPL 3: #GP(vector × 8 + 2)).
        Assert.Equal((Vec.GP, Vec.BP * 8u + 2), Exec(c, 0xCC));
    }

    [Fact]
    public void With_IOPL_3_the_flag_instructions_work_on_the_virtual_8086_stack_but_never_change_IOPL_or_VM()
    {
        var rig = Rig();
        var c = rig.Cpu;
        EnterVm86(rig);
        Assert.Null(Exec(c, 0xFA));                                        // cli
        Assert.Equal(0x23002UL, c.Rflags);
        Assert.Null(Exec(c, 0x66, 0x9C));                                  // pushfd: VM and RF read as 0 in the image
        Assert.Equal(0x3002UL, rig.Read4(0x30000 + 0xFFEC));
        rig.Write4(0x30000 + 0xFFEC, 0x40000 | 0x0200 | 0x0001);           // AC, IF, CF; IOPL 0, VM 0
        Assert.Null(Exec(c, 0x66, 0x9D));                                  // popfd
        Assert.Equal(0x63203UL, c.Rflags);                                 // IOPL and VM kept
        Assert.Equal(CpuMode.Virtual8086, c.Mode);

        // IRET (16-bit) pops IP, CS and FLAGS as in real-address mode; the FLAGS image's IOPL is ignored.
        c.Rsp = 0xFF00;
        rig.Machine.Memory.Write(0x30000 + 0xFF00, 2, 0x0456);
        rig.Machine.Memory.Write(0x30000 + 0xFF02, 2, 0x0789);
        rig.Machine.Memory.Write(0x30000 + 0xFF04, 2, 0x0002);             // IF 0, IOPL 0
        Assert.Null(Exec(c, 0xCF));
        Assert.Equal(0x456UL, c.Rip);
        Assert.Equal(0x7890UL, c.Segs[Seg.CS].Base);
        Assert.Equal(0xFF06UL, c.Rsp);
        Assert.Equal(0x43002UL | RFlags.VM, c.Rflags);
    }

    [Fact]
    public void IN_and_OUT_in_virtual_8086_mode_check_the_TSS_IO_bitmap_even_with_IOPL_3()
    {
        var rig = Rig();
        var c = rig.Cpu;
        EnterVm86(rig);
        Assert.Equal((Vec.GP, 0u), Exec(c, 0xE4, 0x80));                   // in al, 80h: its bit is set
        Assert.Equal((Vec.GP, 0u), Exec(c, 0xE6, 0x80));                   // out 80h, al
        c.R[Reg.RDX] = 0x7F;
        Assert.Equal((Vec.GP, 0u), Exec(c, 0xED));                         // in ax, dx: 7FH-80H, the second bit is set
        Assert.Null(Exec(c, 0xE4, 0x81));                                  // in al, 81h: allowed
        c.R[Reg.RDX] = 0x400;
        Assert.Equal((Vec.GP, 0u), Exec(c, 0xEC));                         // beyond the bitmap (the TSS limit): denied

        // The same instruction at CPL 0 in protected mode with IOPL 0 is not checked against the bitmap.
        var p = Rig().Cpu;
        Assert.Null(Exec(p, 0xE4, 0x80));
    }

    [Fact]
    public void In_virtual_8086_mode_the_descriptor_instructions_are_UD_and_the_privileged_ones_GP_0()
    {
        var rig = Rig();
        var c = rig.Cpu;
        EnterVm86(rig);
        byte[][] ud =
        [
            [0x0F, 0x02, 0xC1], [0x0F, 0x03, 0xC1],                       // lar, lsl
            [0x0F, 0x00, 0xE1], [0x0F, 0x00, 0xE9],                       // verr, verw
            [0x63, 0xC8],                                                  // arpl
            [0x0F, 0x00, 0xD1], [0x0F, 0x00, 0xD9],                       // lldt, ltr
            [0x0F, 0x00, 0xC0], [0x0F, 0x00, 0xC8],                       // sldt, str
        ];
        foreach (var insn in ud) Assert.Equal((Vec.UD, 0u), Exec(c, insn));
        byte[][] gp =
        [
            [0x0F, 0x20, 0xC0], [0x0F, 0x22, 0xC0],                       // mov eax, cr0 / mov cr0, eax
            [0x0F, 0x21, 0xF8], [0x0F, 0x23, 0xF8],                       // mov eax, dr7 / mov dr7, eax
            [0xF4], [0x0F, 0x06], [0x0F, 0x01, 0x17], [0x0F, 0x01, 0x1F], // hlt, clts, lgdt, lidt
            [0x0F, 0x01, 0x3F], [0x0F, 0x32], [0x0F, 0x30], [0x0F, 0x09], // invlpg, rdmsr, wrmsr, wbinvd
            [0x0F, 0x01, 0xF0],                                            // lmsw ax
        ];
        foreach (var insn in gp) Assert.Equal((Vec.GP, 0u), Exec(c, insn));
        c.R[Reg.RBX] = 0x200;
        Assert.Null(Exec(c, 0x0F, 0x01, 0x07));                            // sgdt [bx]: allowed (no UMIP)
        Assert.Null(Exec(c, 0x0F, 0x01, 0xE0));                            // smsw ax: allowed
        Assert.Equal(CpuMode.Virtual8086, c.Mode);
    }

    [Fact]
    public void An_interrupt_from_virtual_8086_mode_to_a_handler_not_at_ring_0_is_GP_with_its_code_selector()
    {
        var rig = Rig();
        var c = rig.Cpu;
        EnterVm86(rig);
        Assert.Equal((Vec.GP, (uint)Code3), Exec(c, 0xCD, 0x42));         // a DPL 3 handler
        Assert.Equal((Vec.GP, (uint)Conforming), Exec(c, 0xCD, 0x43));    // a conforming handler
        Assert.Equal(CpuMode.Virtual8086, c.Mode);
        Assert.Equal(0x1000UL, c.Rip);                                     // the fault is the INT's
    }

    [Fact]
    public void A_far_call_and_return_in_virtual_8086_mode_load_CS_as_selector_times_16()
    {
        var rig = Rig();
        var c = rig.Cpu;
        EnterVm86(rig);
        Assert.Null(Exec(c, 0x9A, 0x34, 0x12, 0x00, 0x08));                // call far 0800:1234
        Assert.Equal(0x1234UL, c.Rip);
        Assert.Equal(0x8000UL, c.Segs[Seg.CS].Base);
        Assert.Equal(CpuMode.Virtual8086, c.Mode);
        Assert.Equal(0xFFECUL, c.Rsp);
        Assert.Equal((ulong)V86Sel[Seg.CS], rig.Machine.Memory.Read(0x30000 + 0xFFEE, 2));
        Assert.Null(Exec(c, 0xCB));                                        // retf
        Assert.Equal(0x1005UL, c.Rip);
        Assert.Equal(0x20000UL, c.Segs[Seg.CS].Base);
        Assert.Equal(3, c.Cpl);
    }

    [Fact]
    public void A_task_switch_to_a_TSS_whose_EFLAGS_has_VM_runs_the_task_in_virtual_8086_mode_and_an_interrupt_task_gate_leaves_it()
    {
        var rig = Rig();
        var c = rig.Cpu;
        rig.Write4(TssB + 0x20, 0x0100);                                   // EIP
        rig.Write4(TssB + 0x24, VmFlags);                                  // EFLAGS with VM
        rig.Write4(TssB + 0x38, 0xFFF0);                                   // ESP
        for (int s = 0; s < 6; s++) rig.Write4(TssB + 0x48 + 4 * (ulong)s, V86Sel[s]);
        Assert.Null(Exec(c, 0xEA, 0, 0, 0, 0, (byte)BSel, 0));             // jmp far TSS B
        Assert.Equal(CpuMode.Virtual8086, c.Mode);
        Assert.Equal(3, c.Cpl);
        Assert.Equal(BSel, c.Tr.Selector);
        Assert.Equal(0x100UL, c.Rip);
        for (int s = 0; s < 6; s++) Assert.Equal((ulong)V86Sel[s] << 4, c.Segs[s].Base);

        // INT 50h through a task gate back to A (available since the JMP): B's state is saved with VM set.
        rig.Write4(TssA + 0x20, 0x7000);
        rig.Write4(TssA + 0x24, 0x2);
        rig.Write4(TssA + 0x38, 0x8800);
        ushort[] flat = [DataSel, CodeSel, DataSel, DataSel, DataSel, DataSel];
        for (int s = 0; s < 6; s++) rig.Write4(TssA + 0x48 + 4 * (ulong)s, flat[s]);
        Assert.Null(Exec(c, 0xCD, 0x50));
        Assert.Equal(CpuMode.Protected32, c.Mode);
        Assert.Equal(ASel, c.Tr.Selector);
        Assert.Equal(0x7000UL, c.Rip);
        Assert.Equal(0x1002u, (uint)rig.Read4(TssB + 0x20));
        Assert.Equal(VmFlags, (uint)rig.Read4(TssB + 0x24));
        for (int s = 0; s < 6; s++) Assert.Equal(V86Sel[s], (ushort)rig.Read4(TssB + 0x48 + 4 * (ulong)s));
        Assert.Equal(BSel, (ushort)rig.Read4(TssA));                       // nested: A links back to B
    }

    [Fact]
    public void A_call_to_a_16_bit_TSS_loads_the_words_of_its_layout_and_IRET_saves_them_back()
    {
        var rig = Rig();
        var c = rig.Cpu;
        rig.Machine.Memory.Write(TssC + 0x0E, 2, 0x0200);                  // IP
        rig.Machine.Memory.Write(TssC + 0x10, 2, 0x0883);                  // FLAGS: OF, SF, CF
        for (int r = 0; r < 8; r++) rig.Machine.Memory.Write(TssC + 0x12 + 2 * (ulong)r, 2, 0x1110u + (uint)r);
        ushort[] sregs = [DataSel, CodeSel, DataSel, DataSel];             // ES CS SS DS
        for (int s = 0; s < 4; s++) rig.Machine.Memory.Write(TssC + 0x22 + 2 * (ulong)s, 2, sregs[s]);
        c.Segs[Seg.FS].Selector = DataSel;
        c.CR3 = 0x12345000;
        for (int r = 0; r < 8; r++) c.R[r] = 0xA0A0_0000u + (uint)r;
        Assert.Null(Exec(c, 0x9A, 0, 0, 0, 0, (byte)CSel16, 0));            // call far TSS C
        Assert.Equal(CSel16, c.Tr.Selector);
        Assert.Equal(0x200UL, c.Rip);
        Assert.Equal(0x0883UL | RFlags.NT, c.Rflags);
        for (int r = 0; r < 8; r++) Assert.Equal(0xA0A00000UL | (0x1110UL + (ulong)r), c.R[r]);   // the low words; upper halves kept
        Assert.Equal(0, c.Segs[Seg.FS].Selector);                          // not in a 16-bit TSS: null
        Assert.Equal(0, c.Segs[Seg.GS].Selector);
        Assert.Equal(0x12345000UL, c.CR3);                                 // no CR3 field: unchanged
        Assert.Equal(ASel, (ushort)rig.Machine.Memory.Read(TssC, 2));      // the previous-task link
        Assert.Equal(0x83UL, rig.Machine.Memory.Read(GdtAt + CSel16 + 5, 1)); // type 3: a busy 16-bit TSS

        // IRET with NT back to A: C's dynamic fields are saved as words (NT cleared in the FLAGS image).
        c.R[Reg.RAX] = 0x5555_AAAA;
        Assert.Null(Exec(c, 0xCF));
        Assert.Equal(ASel, c.Tr.Selector);
        Assert.Equal(0x1001UL, rig.Machine.Memory.Read(TssC + 0x0E, 2));
        Assert.Equal(0x0883UL, rig.Machine.Memory.Read(TssC + 0x10, 2));
        Assert.Equal(0xAAAAUL, rig.Machine.Memory.Read(TssC + 0x12, 2));
        Assert.Equal((ulong)CodeSel, rig.Machine.Memory.Read(TssC + 0x24, 2));
        Assert.Equal(0x81UL, rig.Machine.Memory.Read(GdtAt + CSel16 + 5, 1)); // available again
    }

    [Fact]
    public void An_interrupt_from_ring_3_under_a_16_bit_TSS_takes_its_stack_from_SP0_and_SS0_at_offsets_2_and_4()
    {
        var rig = Rig();
        var c = rig.Cpu;
        c.Tr = CpuCore.DescriptorToSegment(DSel16, Gdt[DSel16 >> 3]);
        rig.Machine.Memory.Write(TssD + 2, 2, 0x7000);                     // SP0
        rig.Machine.Memory.Write(TssD + 4, 2, DataSel);                    // SS0
        c.Segs[Seg.CS] = CpuCore.DescriptorToSegment(Code3 | 3, Gdt[Code3 >> 3]);
        c.Segs[Seg.SS] = CpuCore.DescriptorToSegment(Data3 | 3, Gdt[Data3 >> 3]);
        c.UpdateMode();
        Assert.Equal(3, c.Cpl);
        c.Rsp = 0x4444;
        Assert.Null(Exec(c, 0xCD, 0x40));
        Assert.Equal((ulong)(0x7000 - 20), c.Rsp);
        Assert.Equal(DataSel, c.Segs[Seg.SS].Selector);
        Assert.Equal(0x4444u, (uint)rig.Read4(0x7000 - 8));                // the old ESP
        Assert.Equal((uint)(Data3 | 3), (uint)rig.Read4(0x7000 - 4));      // the old SS

        // A 16-bit TSS has no I/O bitmap: an I/O access checked against it is #GP(0).
        c.Segs[Seg.CS] = CpuCore.DescriptorToSegment(Code3 | 3, Gdt[Code3 >> 3]);
        c.UpdateMode();
        Assert.Equal((Vec.GP, 0u), Exec(c, 0xE4, 0x81));
    }

    [Fact]
    public void A_16_bit_TSS_with_a_limit_below_2BH_is_TS_with_its_selector_before_anything_changes()
    {
        var rig = Rig();
        var c = rig.Cpu;
        rig.Write8(GdtAt + CSel16, Desc(0x2A, 0x81, 0, (uint)TssC));
        Assert.Equal((Vec.TS, (uint)CSel16), Exec(c, 0xEA, 0, 0, 0, 0, (byte)CSel16, 0));
        Assert.Equal(ASel, c.Tr.Selector);
        Assert.Equal(0x81UL, rig.Machine.Memory.Read(GdtAt + CSel16 + 5, 1));
    }

    [Fact]
    public void CPUID_does_not_report_VME_and_CR4_VME_and_PVI_are_reserved()
    {
        var rig = Rig();
        Assert.Equal(0u, rig.Cpu.Leaf1Edx & (1u << 1));                   // CPUID.1:EDX.VME
        Assert.Equal((Vec.GP, 0u), rig.Mov(4, Cr4.Vme));
        Assert.Equal((Vec.GP, 0u), rig.Mov(4, Cr4.Pvi));
        Assert.Equal(0UL, rig.Cpu.CR4);
    }

    [Fact]
    public void Under_the_run_loop_a_single_step_in_virtual_8086_mode_traps_to_the_ring_0_DB_handler_with_the_virtual_8086_frame()
    {
        var rig = Rig();
        var c = rig.Cpu;
        rig.Write8(IdtAt + Vec.DB * 8, Gate(0x8E, CodeSel, 0x6100, 0));
        rig.Machine.Memory.Write(0x6100, 1, 0xF4);                          // the #DB handler: hlt (IF=0 ends the run)
        byte[] code = [0xB8, 0x34, 0x12, 0x50, 0x90];                       // mov ax, 1234h; push ax; nop
        for (int k = 0; k < code.Length; k++) rig.Machine.Memory.Write(0x20100 + (ulong)k, 1, code[k]);
        EnterVm86(rig, eflags: VmFlags | (uint)RFlags.TF);
        rig.Machine.Run(10);
        Assert.Equal(0x1234UL, c.R[Reg.RAX] & 0xFFFF);                     // the MOV ran, the PUSH did not
        Assert.Equal(0xFFF0UL, rig.Read4(Esp0 - 24));                      // the virtual-8086 SP, not moved
        Assert.Equal(0x103u, (uint)rig.Read4(Esp0 - 36));                  // EIP of the next instruction (a trap)
        Assert.Equal(VmFlags | (uint)RFlags.TF, (uint)rig.Read4(Esp0 - 28));
        Assert.Equal(V86Sel[Seg.GS], (ushort)rig.Read4(Esp0 - 4));
        Assert.NotEqual(0UL, c.DR[6] & (1UL << 14));                       // DR6.BS
        Assert.Equal(CpuMode.Protected32, c.Mode);
        Assert.Equal(0x6101UL, c.Rip);                                     // stopped after the handler's HLT
    }

    [Fact]
    public void A_16_bit_interrupt_gate_pushes_FLAGS_CS_and_IP_as_words_and_enters_at_its_16_bit_offset()
    {
        var rig = Rig();
        var c = rig.Cpu;
        c.Rsp = 0x8000;
        c.Rflags = RFlags.Reserved1 | RFlags.IF | RFlags.CF;
        Assert.Null(Exec(c, 0xCD, 0x44));
        Assert.Equal(0x8000UL - 6, c.Rsp);
        Assert.Equal(0x1002UL, rig.Machine.Memory.Read(0x8000 - 6, 2));   // IP
        Assert.Equal((ulong)CodeSel, rig.Machine.Memory.Read(0x8000 - 4, 2));
        Assert.Equal(0x0203UL, rig.Machine.Memory.Read(0x8000 - 2, 2));    // FLAGS
        Assert.Equal((ulong)Handler, c.Rip);
        Assert.False(c.If);                                                // an interrupt gate clears IF
    }

    [Fact]
    public void A_16_bit_trap_gate_from_virtual_8086_mode_pushes_the_nine_words_and_keeps_IF()
    {
        var rig = Rig();
        var c = rig.Cpu;
        EnterVm86(rig);
        Assert.Null(Exec(c, 0xCD, 0x45));
        ushort[] frame = [0x1002, V86Sel[Seg.CS], unchecked((ushort)VmFlags), 0xFFF0, V86Sel[Seg.SS], V86Sel[Seg.ES], V86Sel[Seg.DS], V86Sel[Seg.FS], V86Sel[Seg.GS]];
        for (int k = 0; k < frame.Length; k++) Assert.Equal(frame[k], (ushort)rig.Machine.Memory.Read(Esp0 - 18 + 2 * (ulong)k, 2));
        Assert.Equal((ulong)(Esp0 - 18), c.Rsp);
        Assert.Equal((ulong)Handler, c.Rip);                               // the 16-bit offset
        Assert.Equal(CpuMode.Protected32, c.Mode);
        Assert.True(c.If);
        foreach (int s in new[] { Seg.ES, Seg.DS, Seg.FS, Seg.GS }) Assert.Equal(0, c.Segs[s].Selector);
    }

    [Fact]
    public void A_bad_ring_0_stack_in_the_TSS_is_TS_when_an_interrupt_leaves_virtual_8086_mode()
    {
        var rig = Rig();
        var c = rig.Cpu;
        EnterVm86(rig);
        rig.Write4(TssA + 8, 0);                                           // SS0 null: #TS(EXT), EXT 0 for INT n
        Assert.Equal((Vec.TS, 0u), Exec(c, 0xCD, 0x40));
        rig.Write4(TssA + 8, Data3);                                       // RPL 0 but DPL 3: #TS(selector)
        Assert.Equal((Vec.TS, (uint)Data3), Exec(c, 0xCD, 0x40));
        rig.Write4(TssA + 8, CodeSel);                                     // not writable data
        Assert.Equal((Vec.TS, (uint)CodeSel), Exec(c, 0xCD, 0x40));
        rig.Write4(TssA + 8, 0x400);                                       // beyond the GDT limit
        Assert.Equal((Vec.TS, 0x400u), Exec(c, 0xCD, 0x40));
        Assert.Equal(CpuMode.Virtual8086, c.Mode);                         // nothing changed
        Assert.Equal(0xFFF0UL, c.Rsp);
        c.Tr.Limit = 0x08;                                                 // the TSS too short for ESP0 and SS0 (bytes 4-9)
        rig.Write4(TssA + 8, DataSel);
        Assert.Equal((Vec.TS, (uint)ASel), Exec(c, 0xCD, 0x40));
    }
}
