using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;
using EferBits = Emu64.Cpu.Efer;

namespace Emu64.Isa;

/// <summary>
/// Transfers that load segments or change privilege: MOV/POP to segment registers, far JMP/CALL/RET,
/// IRET, INT n/INT3/INTO, SYSCALL/SYSRET, SWAPGS (SDM vol. 2 and vol. 3A §5.8, §6.14).
/// A far JMP/CALL through a call gate stops the run as unsupported (docs/ERRORS.md R5). A far JMP/CALL to a TSS or
/// task gate, and IRET with EFLAGS.NT=1, are hardware task switches (Cpu/TaskSwitch.cs). In virtual-8086 mode the
/// segment loads and far transfers are those of real-address mode, and IRET follows the IOPL rule (IretInVm86).
/// </summary>
public static unsafe partial class SystemInsns
{
    private static void RegisterPrivilege()
    {
        HandlerTable.Map(&IretInsn, Mnemonic.Iret, Mnemonic.Iretd, Mnemonic.Iretq);
        HandlerTable.Map(Code.Int_imm8, &IntN);
        HandlerTable.Map(Code.Int3, &Int3);
        HandlerTable.Map(Code.Into, &Into);
        HandlerTable.Map(Code.Int1, &Int1);
        HandlerTable.Map(Mnemonic.Syscall, &Syscall);
        HandlerTable.Map(&Sysret, Mnemonic.Sysret, Mnemonic.Sysretq);
        HandlerTable.Map(Mnemonic.Swapgs, &Swapgs);
        HandlerTable.Map(&LoadFarPointer, Mnemonic.Lss, Mnemonic.Lfs, Mnemonic.Lgs, Mnemonic.Les, Mnemonic.Lds);
    }

    internal static void MovToSreg(CpuCore cpu, ref Insn i)
    {
        ushort sel = (ushort)(i.K1 == Opnd.Reg ? cpu.GetReg(i.R1, 2) : cpu.ReadOperandMem(ref i, 2));
        if (i.R0 == Seg.CS) cpu.Ud();
        LoadDataSegment(cpu, i.R0, sel);
        if (i.R0 == Seg.SS) { cpu.InterruptShadow = cpu.MovSsShadow = true; cpu.ExitBlock = true; }
    }

    internal static void LoadDataSegment(CpuCore cpu, int seg, ushort sel) => cpu.LoadSegment(seg, sel);

    private static void LoadFarPointer(CpuCore cpu, ref Insn i)
    {
        int size = i.Size;
        ulong ea = cpu.EffectiveAddress(ref i);
        ulong off = cpu.ReadMem(i.Seg, ea, size);
        ushort sel = (ushort)cpu.ReadMem(i.Seg, ea + (ulong)size, 2);
        int seg = i.I.Mnemonic switch { Mnemonic.Lss => Seg.SS, Mnemonic.Lfs => Seg.FS, Mnemonic.Lgs => Seg.GS, Mnemonic.Les => Seg.ES, _ => Seg.DS };
        cpu.LoadSegment(seg, sel);
        cpu.SetReg(i.R0, size, off);
    }

    /// <summary>Reads the target of a far JMP/CALL: an immediate ptr16:16/32 or a memory m16:16/32/64.</summary>
    private static (ushort Sel, ulong Off, int Size) FarTarget(CpuCore cpu, ref Insn i)
    {
        if (i.K0 != Opnd.Mem)
        {
            bool p32 = i.Code is Code.Jmp_ptr1632 or Code.Call_ptr1632;
            return (i.I.FarBranchSelector, p32 ? i.I.FarBranch32 : i.I.FarBranch16, p32 ? 4 : 2);
        }
        int size = i.Code switch { Code.Jmp_m1616 or Code.Call_m1616 => 2, Code.Jmp_m1632 or Code.Call_m1632 => 4, _ => 8 };
        ulong ea = cpu.EffectiveAddress(ref i);
        ulong off = cpu.ReadMem(i.Seg, ea, size);
        ushort sel = (ushort)cpu.ReadMem(i.Seg, ea + (ulong)size, 2);
        return (sel, off, size);
    }

    /// <summary>
    /// A far JMP/CALL whose selector names a system descriptor (S=0) outside real mode: a task switch through a TSS
    /// descriptor or task gate, or #GP(selector). Returns false for a code segment (or a null selector, which the
    /// code-segment path faults).
    /// </summary>
    private static bool FarToSystem(CpuCore cpu, ushort sel, bool call)
    {
        if ((sel & ~3) == 0 || cpu.RealSegments) return false;
        ulong d = cpu.ReadDescriptor(sel);
        if ((d & (1UL << 44)) != 0) return false;
        cpu.FarTransferToSystem(sel, d, call);
        return true;
    }

    internal static void JmpFar(CpuCore cpu, ref Insn i)
    {
        var (sel, off, size) = FarTarget(cpu, ref i);
        if (FarToSystem(cpu, sel, call: false)) return;
        if ((sel & 3) > cpu.Cpl && !cpu.RealSegments) cpu.Gp((uint)(sel & ~3));
        var cs = cpu.CheckCodeSegment(sel, cpu.Cpl);
        ulong target = cs.Long && cpu.LongMode ? off : off & InsnBuilder.Mask(size);
        if (cs.Long && cpu.LongMode ? !cpu.IsCanonical(target) : target > cs.Limit) cpu.Gp();
        cpu.SetCs(cs);
        cpu.Rip = target;
    }

    internal static void CallFar(CpuCore cpu, ref Insn i)
    {
        var (sel, off, size) = FarTarget(cpu, ref i);
        if (FarToSystem(cpu, sel, call: true)) return;
        if ((sel & 3) > cpu.Cpl && !cpu.RealSegments) cpu.Gp((uint)(sel & ~3));
        var cs = cpu.CheckCodeSegment(sel, cpu.Cpl);
        ulong target = cs.Long && cpu.LongMode ? off : off & InsnBuilder.Mask(size);
        if (cs.Long && cpu.LongMode ? !cpu.IsCanonical(target) : target > cs.Limit) cpu.Gp();
        ulong save = cpu.Rsp;
        try
        {
            cpu.Push(cpu.Segs[Seg.CS].Selector, size);
            cpu.Push(cpu.Rip, size);
        }
        catch (GuestFault) { cpu.Rsp = save; throw; }
        cpu.SetCs(cs);
        cpu.Rip = target;
    }

    internal static void RetFar(CpuCore cpu, ref Insn i)
    {
        int size = i.Size;
        ulong off = cpu.PeekStack(size);
        ushort sel = (ushort)cpu.PeekStack(2, size);
        ulong extra = i.K0 == Opnd.Imm ? i.Imm & 0xFFFF : 0;
        int rpl = cpu.RealSegments ? cpu.Cpl : sel & 3;   // real-address and virtual-8086 mode: no privilege change
        if (rpl < cpu.Cpl) cpu.Gp((uint)(sel & ~3));
        var cs = cpu.CheckCodeSegment(sel, rpl);
        if (rpl > cpu.Cpl)
        {
            // return to an outer level: pop SS:RSP after the immediate adjustment
            ulong rsp = cpu.PeekStack(size, 2 * size + (int)extra);
            ushort ss = (ushort)cpu.PeekStack(2, 3 * size + (int)extra);
            cpu.SetCs(cs);
            cpu.LoadSegment(Seg.SS, ss);
            cpu.Rsp = rsp + extra;
        }
        else
        {
            cpu.SetCs(cs);
            cpu.AdjustStack(2 * size + (long)extra);
        }
        cpu.Rip = cs.Long && cpu.LongMode ? off : off & InsnBuilder.Mask(size);
    }

    /// <summary>IRET/IRETD/IRETQ (SDM vol. 2 IRET: real-address, virtual-8086, protected and IA-32e mode, task return).</summary>
    private static void IretInsn(CpuCore cpu, ref Insn i)
    {
        int size = i.Size;
        if (cpu.Mode == CpuMode.Real)
        {
            // Real-address mode (SDM vol. 2 IRET): IP, CS and FLAGS in the operand size. A 32-bit IRET takes
            // EFLAGS AND 257FD5H from the stack and keeps VM, VIF and VIP (EFLAGS AND 1A0000H).
            ulong ip = cpu.PeekStack(size), rcs = cpu.PeekStack(2, size), fl = cpu.PeekStack(size, 2 * size);
            if (ip > cpu.Segs[Seg.CS].Limit) cpu.Gp();
            cpu.AdjustStack(3 * size);
            cpu.Segs[Seg.CS].Selector = (ushort)rcs;
            cpu.Segs[Seg.CS].Base = (rcs & 0xFFFF) << 4;
            cpu.Rip = ip;
            cpu.Rflags = size == 4 ? (fl & 0x257FD5) | (cpu.Rflags & 0x1A0000) | RFlags.Reserved1
                                   : (cpu.Rflags & ~0xFFFFUL) | fl | RFlags.Reserved1;
            cpu.ExitBlock = true;
            return;
        }
        if (cpu.Mode == CpuMode.Virtual8086) { IretInVm86(cpu, size); return; }
        // NT=1: a return from a nested task, a hardware task switch to the previous-task link (#GP(0) in IA-32e mode).
        if ((cpu.Rflags & RFlags.NT) != 0)
        {
            int fromCpl = cpu.Cpl;
            cpu.TaskReturn();
            cpu.Machine.Events.OnIret(fromCpl, cpu.Cpl);
            return;
        }
        ulong newRip = cpu.PeekStack(size);
        ushort sel = (ushort)cpu.PeekStack(2, size);
        ulong newFlags = cpu.PeekStack(size, 2 * size);
        // A 32-bit IRET at CPL 0 outside IA-32e mode that pops EFLAGS.VM=1 returns to virtual-8086 mode.
        if (size == 4 && !cpu.LongMode && cpu.Cpl == 0 && (newFlags & RFlags.VM) != 0)
        {
            IretToVm86(cpu, newRip, sel, newFlags);
            return;
        }
        int rpl = sel & 3;
        if (rpl < cpu.Cpl) cpu.Gp((uint)(sel & ~3));
        var cs = cpu.CheckCodeSegment(sel, rpl);
        bool popStack = cpu.Is64 || rpl > cpu.Cpl;
        ulong newRsp = 0;
        ushort newSs = 0;
        if (popStack)
        {
            newRsp = cpu.PeekStack(size, 3 * size);
            newSs = (ushort)cpu.PeekStack(2, 4 * size);
        }
        int oldCpl = cpu.Cpl;
        ulong target = cs.Long && cpu.LongMode ? newRip : newRip & InsnBuilder.Mask(size);
        if (cs.Long && cpu.LongMode && !cpu.IsCanonical(target)) cpu.Gp();

        // RFLAGS: IOPL changes only at CPL 0, IF only when CPL <= IOPL; VM/VIF/VIP are not supported.
        ulong old = cpu.Rflags;
        ulong mask = RFlags.Status | RFlags.TF | RFlags.DF | RFlags.NT | RFlags.RF | RFlags.AC | RFlags.ID;
        if (oldCpl == 0) mask |= RFlags.IOPL;
        if (oldCpl <= cpu.Iopl) mask |= RFlags.IF;
        if (size == 2) mask &= 0xFFFF;
        ulong flags = (old & ~mask) | (newFlags & mask);

        var savedSs = cpu.Segs[Seg.SS];
        var savedCs = cpu.Segs[Seg.CS];
        int savedCpl = cpu.Cpl;
        try
        {
            cpu.SetCs(cs);     // CPL becomes RPL of the new CS
            if (popStack)
            {
                if ((newSs & ~3) == 0 && cs.Long && rpl != 3 && cpu.LongMode)
                    cpu.Segs[Seg.SS] = new Segment { Selector = newSs, Attr = (ushort)(0x93 | (rpl << 5)), Limit = 0xFFFFFFFF };
                else cpu.LoadSegment(Seg.SS, newSs);
            }
        }
        catch (GuestFault)
        {
            cpu.Segs[Seg.SS] = savedSs; cpu.Segs[Seg.CS] = savedCs; cpu.UpdateMode(); cpu.Cpl = savedCpl;
            throw;
        }
        if (popStack) cpu.Rsp = cpu.Is64 || cpu.Segs[Seg.SS].Db ? newRsp : (cpu.Rsp & ~0xFFFFUL) | (newRsp & 0xFFFF);
        else cpu.AdjustStack(3 * size);
        cpu.Rflags = flags;
        cpu.Rip = target;
        cpu.NmiBlocked = false;                                  // IRET ends NMI blocking (SDM vol. 3A §6.7.1)
        if ((flags & RFlags.RF) != 0) cpu.DebugArmed = true;     // RF=1 skips the next instruction's breakpoints, then clears
        if (rpl > oldCpl) NullInaccessibleDataSegments(cpu);
        cpu.Machine.Events.OnIret(oldCpl, cpu.Cpl);
        cpu.ExitBlock = true;
    }

    /// <summary>
    /// IRET in virtual-8086 mode (SDM vol. 2 IRET, RETURN-FROM-VIRTUAL-8086-MODE; no CR4.VME): with IOPL = 3 it pops
    /// IP, CS and FLAGS as in real-address mode, except that VM, IOPL (and VIF, VIP) keep their values; with IOPL &lt; 3
    /// it is #GP(0), the trap to the virtual-8086 monitor.
    /// </summary>
    private static void IretInVm86(CpuCore cpu, int size)
    {
        if (cpu.Iopl < 3) cpu.Gp();
        ulong ip = cpu.PeekStack(size), rcs = cpu.PeekStack(2, size), fl = cpu.PeekStack(size, 2 * size);
        if (ip > cpu.Segs[Seg.CS].Limit) cpu.Gp();
        cpu.AdjustStack(3 * size);
        cpu.Segs[Seg.CS] = CpuCore.Vm86Segment((ushort)rcs);
        cpu.Rip = ip;
        ulong mask = RFlags.Status | RFlags.TF | RFlags.IF | RFlags.DF | RFlags.NT;
        if (size == 4) mask |= RFlags.RF | RFlags.AC | RFlags.ID;
        cpu.Rflags = (cpu.Rflags & ~mask) | (fl & mask);
        cpu.NmiBlocked = false;
        if ((fl & mask & RFlags.RF) != 0) cpu.DebugArmed = true;
        cpu.Machine.Events.OnIret(3, 3);
        cpu.ExitBlock = true;
    }

    /// <summary>
    /// IRETD at CPL 0 whose EFLAGS image has VM=1 (SDM vol. 2 IRET, RETURN-TO-VIRTUAL-8086-MODE): after EIP, CS and
    /// EFLAGS it pops ESP, SS, ES, DS, FS and GS (a doubleword each, the selector in the low word), loads every segment
    /// register as virtual-8086 mode does (base = selector × 16), the whole EFLAGS image, and runs on at CPL 3. All
    /// nine doublewords are read before anything changes, so a fault on the stack leaves the CPU as it was.
    /// </summary>
    private static void IretToVm86(CpuCore cpu, ulong eip, ushort cs, ulong eflags)
    {
        ulong esp = cpu.PeekStack(4, 12);
        Span<ushort> sel = stackalloc ushort[4];                          // SS ES DS FS GS after ESP
        ushort ss = (ushort)cpu.PeekStack(2, 16);
        for (int k = 0; k < 4; k++) sel[k] = (ushort)cpu.PeekStack(2, 20 + 4 * k);
        cpu.Rflags = eflags;                                               // VM, IOPL, IF: everything at CPL 0
        cpu.Segs[Seg.CS] = CpuCore.Vm86Segment(cs);
        cpu.Segs[Seg.SS] = CpuCore.Vm86Segment(ss);
        cpu.Segs[Seg.ES] = CpuCore.Vm86Segment(sel[0]);
        cpu.Segs[Seg.DS] = CpuCore.Vm86Segment(sel[1]);
        cpu.Segs[Seg.FS] = CpuCore.Vm86Segment(sel[2]);
        cpu.Segs[Seg.GS] = CpuCore.Vm86Segment(sel[3]);
        cpu.Rsp = esp & 0xFFFFFFFF;
        cpu.Rip = eip & 0xFFFFFFFF;
        cpu.UpdateMode();                                                  // virtual-8086 mode, CPL 3
        cpu.NmiBlocked = false;
        if ((eflags & RFlags.RF) != 0) cpu.DebugArmed = true;
        cpu.Machine.Events.OnIret(0, 3);
        cpu.ExitBlock = true;
    }

    /// <summary>On a return to an outer level, data segments the new CPL may not use are nulled.</summary>
    private static void NullInaccessibleDataSegments(CpuCore cpu)
    {
        foreach (int s in (ReadOnlySpan<int>)[Seg.ES, Seg.DS, Seg.FS, Seg.GS])
        {
            ref var seg = ref cpu.Segs[s];
            bool conformingCode = seg.IsCode && (seg.Type & 4) != 0;
            if ((seg.Selector & ~3) != 0 && !conformingCode && seg.Dpl < cpu.Cpl)
            {
                ulong b = s >= Seg.FS && cpu.LongMode ? seg.Base : 0;
                seg = new Segment { Selector = 0, Base = b };
            }
        }
    }

    // A software interrupt clears TF as it is delivered, so no single-step trap follows the instruction (SoftwareEvent).
    // INT n in virtual-8086 mode with IOPL < 3 is #GP(0), the trap to the monitor (no CR4.VME); INT3 and INTO are not
    // IOPL-sensitive and go through the gate's DPL check instead (SDM vol. 2 INT n).
    private static void IntN(CpuCore cpu, ref Insn i)
    {
        if (cpu.Mode == CpuMode.Virtual8086 && cpu.Iopl < 3) cpu.Gp();
        cpu.SoftwareEvent = CpuCore.SoftwareInt;
        cpu.DeliverSoftware((int)(i.Imm & 0xFF));
    }
    private static void Int3(CpuCore cpu, ref Insn i) { cpu.SoftwareEvent = CpuCore.SoftwareInt; cpu.DeliverSoftware(Vec.BP, isInt3OrInto: true); }

    /// <summary>
    /// ICEBP (INT1, 0xF1): a trap-like #DB delivered as a privileged exception (no gate DPL check, RIP after the
    /// instruction, DR6 unchanged). It stands for any #DB a MOV SS held, and no single-step trap follows it.
    /// </summary>
    private static void Int1(CpuCore cpu, ref Insn i) { cpu.SoftwareEvent = CpuCore.SoftwareIcebp; cpu.DeliverTrap(Vec.DB); }

    private static void Into(CpuCore cpu, ref Insn i)
    {
        if (cpu.Is64) cpu.Ud();
        if (cpu.Of) { cpu.SoftwareEvent = CpuCore.SoftwareInt; cpu.DeliverSoftware(Vec.OF, isInt3OrInto: true); }
    }

    /// <summary>SYSCALL (Intel: 64-bit mode only). RCX ← RIP, R11 ← RFLAGS, CS/SS from STAR[47:32], RIP ← LSTAR.</summary>
    private static void Syscall(CpuCore cpu, ref Insn i)
    {
        if ((cpu.EFER & EferBits.Sce) == 0 || !cpu.Is64) cpu.Ud();
        int oldCpl = cpu.Cpl;
        ulong rflags = cpu.Rflags;   // the lazy flags computed once
        cpu.R[Reg.RCX] = cpu.Rip;
        cpu.R[Reg.R11] = rflags & ~RFlags.RF;
        ushort sel = (ushort)(cpu.Star >> 32);
        cpu.Segs[Seg.CS] = new Segment { Selector = (ushort)(sel & 0xFFFC), Base = 0, Limit = 0xFFFFFFFF, Attr = 0xA09B };
        cpu.Segs[Seg.SS] = new Segment { Selector = (ushort)((sel + 8) & 0xFFFC), Base = 0, Limit = 0xFFFFFFFF, Attr = 0xC093 };
        cpu.Rflags = rflags & ~(cpu.Sfmask | RFlags.RF);
        cpu.Rip = cpu.Lstar;
        // What UpdateMode gives here, without its general case: 64-bit mode already (checked above), and the CS just loaded
        // is a 64-bit code segment (L=1), so the mode stays Long64 (no ExitBlock) and the CPL is its RPL, 0. SYSCALL ends its
        // block; the chain goes on after it (Block.Resync).
        cpu.Cpl = 0;
        cpu.Machine.Events.OnSyscall(oldCpl);
        cpu.Machine.ResyncFetch(cpu);
    }

    /// <summary>SYSRET: back to CPL 3; REX.W returns to 64-bit code (CS = STAR[63:48]+16), else compatibility mode.</summary>
    private static void Sysret(CpuCore cpu, ref Insn i)
    {
        if ((cpu.EFER & EferBits.Sce) == 0 || !cpu.Is64) cpu.Ud();
        RequireCpl0(cpu);
        bool to64 = i.Code == Code.Sysretq;
        if (to64 && !cpu.IsCanonical(cpu.R[Reg.RCX])) cpu.Gp();   // Intel checks RCX at CPL 0
        ushort sel = (ushort)(cpu.Star >> 48);
        cpu.Segs[Seg.CS] = to64
            ? new Segment { Selector = (ushort)((sel + 16) | 3), Limit = 0xFFFFFFFF, Attr = 0xA0FB }
            : new Segment { Selector = (ushort)(sel | 3), Limit = 0xFFFFFFFF, Attr = 0xC0FB };
        cpu.Segs[Seg.SS] = new Segment { Selector = (ushort)((sel + 8) | 3), Limit = 0xFFFFFFFF, Attr = 0xC0F3, Base = 0 };
        cpu.Rflags = (cpu.R[Reg.R11] & 0x3C7FD7) | RFlags.Reserved1;
        cpu.Rip = to64 ? cpu.R[Reg.RCX] : cpu.R[Reg.RCX] & 0xFFFFFFFF;
        // SYSRETQ: from 64-bit mode to a 64-bit CS (L=1), so the mode stays Long64 and the CPL is 3, as UpdateMode would find.
        // SYSRET to compatibility mode changes the mode: UpdateMode sets ExitBlock.
        if (to64) cpu.Cpl = 3;
        else cpu.UpdateMode();
        cpu.Machine.Events.OnSysret();
        cpu.Machine.ResyncFetch(cpu);
    }

    private static void Swapgs(CpuCore cpu, ref Insn i)
    {
        if (!cpu.Is64) cpu.Ud();
        RequireCpl0(cpu);
        (cpu.Segs[Seg.GS].Base, cpu.KernelGsBase) = (cpu.KernelGsBase, cpu.Segs[Seg.GS].Base);
    }
}
