using Emu64.Isa;
using Emu64.Mmu;

namespace Emu64.Cpu;

/// <summary>What started a hardware task switch: the busy-bit, back-link and NT rules differ (SDM vol. 3A §8.3, table 8-2).</summary>
public enum TaskSource : byte { Jmp, Call, Iret, Interrupt }

/// <summary>
/// Hardware task switching in legacy protected mode (SDM vol. 3A ch. 8, "Task Management"): JMP/CALL far to a TSS
/// descriptor or a task gate, an interrupt or exception whose IDT entry is a task gate, and IRET with EFLAGS.NT=1
/// back to the task named by the current TSS's previous-task link. Both TSS formats: the 32-bit TSS (types 9/BH), and
/// the 80286's 16-bit TSS (types 1/3H: no CR3, FS, GS, T bit or I/O map; SDM vol. 3A §8.6). A 32-bit task whose
/// EFLAGS.VM=1 runs in virtual-8086 mode: its segment registers are loaded as that mode loads them (base = selector
/// × 16), with no descriptor checks, at CPL 3. In IA-32e mode there are no task switches: JMP/CALL to a TSS
/// is #GP(selector), IRET with NT=1 is #GP(0), and a task gate is not a valid 64-bit IDT entry.
///
/// The switch runs in the SDM's order. Everything that can fail in the old task's context is checked before
/// anything changes: the new TSS descriptor (type, busy bit, presence, limit ≥ 67H), the old TSS limit, and that
/// both TSSs can be read and written (a #PF here is taken in the old task). Then the old task's state is saved,
/// busy bits and the back link are updated, TR, CR0.TS, CR3, LDTR, EFLAGS, EIP and the registers are loaded: the
/// switch has committed, and the checks of the new segment descriptors fault in the context of the new task
/// (#TS/#NP/#SS with the selector as error code, EXT when an external event started the switch).
/// </summary>
public sealed partial class Cpu
{
    /// <summary>Field offsets of the 32-bit TSS (SDM vol. 3A figure 8-2).</summary>
    internal static class Tss32
    {
        public const int Link = 0x00, Cr3 = 0x1C, Eip = 0x20, Eflags = 0x24, Eax = 0x28, Es = 0x48, Ldt = 0x60, Trap = 0x64;
        /// <summary>The smallest limit of a 32-bit TSS a task switch accepts (104 bytes).</summary>
        public const uint MinLimit = 0x67;
        /// <summary>The old TSS must hold everything the switch writes into it (through GS at 5CH).</summary>
        public const uint OldMinLimit = 0x5F;
    }

    /// <summary>
    /// Field offsets of the 16-bit TSS (SDM vol. 3A figure 8-10): the link, SP0-SP2/SS0-SS2 from 2, then IP, FLAGS,
    /// AX CX DX BX SP BP SI DI, ES CS SS DS and the LDT selector, a word each.
    /// </summary>
    internal static class Tss16
    {
        public const int Link = 0x00, Ip = 0x0E, Flags = 0x10, Ax = 0x12, Es = 0x22, Ldt = 0x2A;
        /// <summary>The smallest limit of a 16-bit TSS a task switch accepts (44 bytes).</summary>
        public const uint MinLimit = 0x2B;
        /// <summary>The old 16-bit TSS must hold the dynamic fields the switch writes (through DS at 28H).</summary>
        public const uint OldMinLimit = 0x29;
    }

    /// <summary>The run stops with this (exit status 8) at a far JMP or CALL through a call gate.</summary>
    public const string CallGateUnsupported = "call gates (a far JMP or CALL through a call gate) are not implemented";

    /// <summary>Set by a switch into a TSS whose T bit is 1: a #DB trap (DR6.BT) before the new task's first instruction.</summary>
    internal bool TaskTrapPending;

    /// <summary>
    /// JMP/CALL far whose selector names a system descriptor (<paramref name="desc"/>): a TSS or a task gate starts a
    /// task switch; a call gate stops the run as unsupported; anything else (LDT, interrupt and trap gates) is
    /// #GP(selector). <paramref name="sel"/>'s RPL takes part in the
    /// privilege check: max(CPL, RPL) ≤ DPL of the TSS descriptor or gate.
    /// </summary>
    public void FarTransferToSystem(ushort sel, ulong desc, bool call)
    {
        uint err = (uint)(sel & ~3);
        var s = DescriptorToSegment(sel, desc);
        if (s.Type is 4 or 0xC) throw new UnsupportedFeatureException(CallGateUnsupported);
        if (LongMode) Gp(err);                                            // no task switches in IA-32e mode
        if (s.Type == 5)
        {
            // Task gate: its DPL is checked, then the TSS it names (which must be in the GDT).
            if (s.Dpl < Cpl || s.Dpl < (sel & 3)) Gp(err);
            if (!s.Present) Fault(Vec.NP, err);
            ushort tssSel = (ushort)(desc >> 16);
            if ((tssSel & 4) != 0) Gp((uint)(tssSel & ~3));
            ulong tssDesc = ReadDescriptor(tssSel);
            int t = (int)(tssDesc >> 40) & 0x1F;                           // S=0 and the type: 01H/09H available TSS
            if (t != 0x01 && t != 0x09) Gp((uint)(tssSel & ~3));
            if ((tssDesc & (1UL << 47)) == 0) Fault(Vec.NP, (uint)(tssSel & ~3));
            SwitchTask(tssSel, tssDesc, call ? TaskSource.Call : TaskSource.Jmp, 0);
            if (Rip > Segs[Seg.CS].Limit) Gp(0);                          // in the new task
            return;
        }
        if (s.Type is not (1 or 9 or 3 or 0xB)) Gp(err);                 // LDT, interrupt and trap gates are never valid
        // A TSS descriptor: DPL ≥ max(CPL, RPL), and it must not be busy (a task cannot be re-entered).
        if (s.Dpl < Cpl || s.Dpl < (sel & 3) || (s.Type & 2) != 0) Gp(err);
        if (!s.Present) Fault(Vec.NP, err);
        SwitchTask(sel, desc, call ? TaskSource.Call : TaskSource.Jmp, 0);
        if (Rip > Segs[Seg.CS].Limit) Gp(0);
    }

    /// <summary>
    /// IRET with EFLAGS.NT=1 (outside IA-32e mode): a switch back to the task named by the current TSS's link field,
    /// which must be a busy TSS in the GDT (#TS(link) otherwise, #NP(link) if not present).
    /// </summary>
    public void TaskReturn()
    {
        if (LongMode) Gp(0);
        ushort link = (ushort)ReadImplicit((Tr.Base + Tss32.Link) & 0xFFFFFFFF, 2);
        uint err = (uint)(link & ~3);
        if ((link & 4) != 0 || (link & ~7) + 7 > Gdtr.Limit || (link & ~3) == 0) Fault(Vec.TS, err);
        ulong desc = ReadImplicit(Gdtr.Base + (uint)(link & ~7), 8);
        int t = (int)(desc >> 40) & 0x1F;
        if (t != 0x03 && t != 0x0B) Fault(Vec.TS, err);                  // not a TSS, or not busy
        if ((desc & (1UL << 47)) == 0) Fault(Vec.NP, err);
        SwitchTask(link, desc, TaskSource.Iret, 0);
        if (Rip > Segs[Seg.CS].Limit) Gp(0);
    }

    /// <summary>
    /// An interrupt or exception whose IDT entry is a task gate (the gate's DPL and presence already checked). The
    /// TSS must be in the GDT and available; after the switch an exception's error code is pushed on the new task's
    /// stack, and EIP must lie within the new CS limit. <paramref name="ext"/> is the EXT bit of error codes.
    /// </summary>
    private void DeliverThroughTaskGate(ulong gate, bool hasErr, uint errorCode, uint ext)
    {
        ushort tssSel = (ushort)(gate >> 16);
        uint err = (uint)(tssSel & ~3) | ext;
        if ((tssSel & 4) != 0 || (tssSel & ~7) + 7 > Gdtr.Limit) Gp(err);
        ulong desc = ReadImplicit(Gdtr.Base + (uint)(tssSel & ~7), 8);
        int t = (int)(desc >> 40) & 0x1F;
        if (t != 0x01 && t != 0x09) Gp(err);                              // busy, or not a TSS
        if ((desc & (1UL << 47)) == 0) Fault(Vec.NP, err);
        SwitchTask(tssSel, desc, TaskSource.Interrupt, ext);
        if (hasErr)
        {
            try { Push(errorCode, (Tr.Type & 8) != 0 ? 4 : 2); }          // a doubleword on a 32-bit task's stack, a word on a 16-bit one's
            catch (GuestFault f) when (f.Vector != Vec.PF) { Fault(Vec.SS, ext); }
        }
        if (Rip > Segs[Seg.CS].Limit) Gp(ext);
    }

    /// <summary>
    /// The switch itself (SDM vol. 3A §8.3 steps 3–14) to the TSS whose descriptor is <paramref name="desc"/>, 32-bit or
    /// 16-bit; the old task's state is saved in the format of its own TSS.
    /// </summary>
    internal void SwitchTask(ushort sel, ulong desc, TaskSource source, uint ext)
    {
        var nt = DescriptorToSegment(sel, desc);
        uint err = (uint)(sel & ~3) | ext;
        bool new32 = (nt.Type & 8) != 0;
        if (nt.Limit < (new32 ? Tss32.MinLimit : Tss16.MinLimit)) Fault(Vec.TS, err);
        var ot = Tr;
        bool old32 = (ot.Type & 8) != 0;
        if (ot.Limit < (old32 ? Tss32.OldMinLimit : Tss16.OldMinLimit)) Fault(Vec.TS, (uint)(ot.Selector & ~3) | ext);
        ulong ob = ot.Base & 0xFFFFFFFF, nb = nt.Base & 0xFFFFFFFF;

        // Read the whole new task's state first: a #PF on the new TSS is taken in the old task, nothing changed.
        uint cr3 = 0, eip, eflags;
        Span<uint> gpr = stackalloc uint[8];
        Span<ushort> sregs = stackalloc ushort[6];                         // ES CS SS DS FS GS, the Seg order
        ushort ldt;
        bool trap = false;
        if (new32)
        {
            cr3 = (uint)ReadImplicit(nb + Tss32.Cr3, 4);
            eip = (uint)ReadImplicit(nb + Tss32.Eip, 4);
            eflags = (uint)ReadImplicit(nb + Tss32.Eflags, 4);
            for (int r = 0; r < 8; r++) gpr[r] = (uint)ReadImplicit(nb + Tss32.Eax + 4 * (ulong)r, 4);
            for (int s = 0; s < 6; s++) sregs[s] = (ushort)ReadImplicit(nb + Tss32.Es + 4 * (ulong)s, 2);
            ldt = (ushort)ReadImplicit(nb + Tss32.Ldt, 2);
            trap = (ReadImplicit(nb + Tss32.Trap, 2) & 1) != 0;
        }
        else
        {
            // A 16-bit task: IP and FLAGS zero-extended (the upper halves of EIP and EFLAGS are lost, so no VM, RF or AC),
            // the paging structures of the old task kept (no CR3), FS and GS null. The upper halves of the general
            // registers are "modified and not maintained" (SDM vol. 3A §8.6), a value the SDM leaves open: Emu64 loads
            // the low words only and keeps the upper halves, as QEMU does (Tss16GuestTests compares the two).
            eip = (uint)ReadImplicit(nb + Tss16.Ip, 2);
            eflags = (uint)ReadImplicit(nb + Tss16.Flags, 2);
            for (int r = 0; r < 8; r++) gpr[r] = ((uint)R[r] & 0xFFFF0000u) | (uint)ReadImplicit(nb + Tss16.Ax + 2 * (ulong)r, 2);
            for (int s = 0; s < 4; s++) sregs[s] = (ushort)ReadImplicit(nb + Tss16.Es + 2 * (ulong)s, 2);
            ldt = (ushort)ReadImplicit(nb + Tss16.Ldt, 2);
        }
        // ... and make sure the writes below cannot fault half-way: the old TSS's dynamic fields, the new TSS's link.
        if (old32) ProbeImplicitWrite(ob + Tss32.Eip, Tss32.OldMinLimit + 1 - Tss32.Eip);
        else ProbeImplicitWrite(ob + Tss16.Ip, Tss16.OldMinLimit + 1 - Tss16.Ip);
        if (source is TaskSource.Call or TaskSource.Interrupt) ProbeImplicitWrite(nb + Tss32.Link, 2);

        // JMP and IRET leave the old task: its descriptor becomes available. CALL and interrupts nest: it stays busy.
        if (source is TaskSource.Jmp or TaskSource.Iret) SetTssBusy(ot.Selector, false);
        ulong oldFlags = Rflags;
        if (source == TaskSource.Iret) oldFlags &= ~RFlags.NT;            // the returning task is no longer nested
        if (old32)
        {
            WriteImplicitLinear(ob + Tss32.Eip, 4, (uint)Rip);
            WriteImplicitLinear(ob + Tss32.Eflags, 4, (uint)oldFlags);
            for (int r = 0; r < 8; r++) WriteImplicitLinear(ob + Tss32.Eax + 4 * (ulong)r, 4, (uint)R[r]);
            for (int s = 0; s < 6; s++) WriteImplicitLinear(ob + Tss32.Es + 4 * (ulong)s, 2, Segs[s].Selector);
        }
        else
        {
            WriteImplicitLinear(ob + Tss16.Ip, 2, (ushort)Rip);
            WriteImplicitLinear(ob + Tss16.Flags, 2, (ushort)oldFlags);
            for (int r = 0; r < 8; r++) WriteImplicitLinear(ob + Tss16.Ax + 2 * (ulong)r, 2, (ushort)R[r]);
            for (int s = 0; s < 4; s++) WriteImplicitLinear(ob + Tss16.Es + 2 * (ulong)s, 2, Segs[s].Selector);
        }

        // CALL and interrupts: the new task is nested in the old one (link, NT). All but IRET mark the new TSS busy.
        if (source is TaskSource.Call or TaskSource.Interrupt)
        {
            WriteImplicitLinear(nb + Tss32.Link, 2, ot.Selector);
            eflags |= (uint)RFlags.NT;
        }
        if (source != TaskSource.Iret) SetTssBusy(sel, true);
        nt.Attr |= 2;
        Tr = nt;
        CR0 |= Cr0.Ts;                                                     // the x87/SSE state belongs to the old task

        // Committed: from here a fault is taken in the new task, at its EIP.
        Rip = InsnRip = _deliverRip = eip;
        Rflags = eflags;
        for (int r = 0; r < 8; r++) R[r] = gpr[r];
        if (PagingOn && new32) LoadTaskCr3(cr3);
        TaskTrapPending = trap;
        if (trap) DebugArmed = true;                                       // routes the next step through RunSingle
        else if ((eflags & RFlags.RF) != 0) DebugArmed = true;
        NmiBlocked &= source != TaskSource.Iret;                           // IRET unblocks NMIs, task return or not

        // Selectors first (the registers hold the new task's selectors even if a check below faults), then each
        // descriptor checked and loaded: LDTR, then CS (it sets the CPL the others are checked against), SS, data.
        for (int s = 0; s < 6; s++) Segs[s] = new Segment { Selector = sregs[s] };
        Ldtr = new Segment { Selector = ldt };
        LoadTaskLdt(ldt, ext);
        if ((eflags & RFlags.VM) != 0)
        {
            // A virtual-8086 task (SDM vol. 3A §20.2.5): its selectors are real-address-mode segment bases, not checked.
            for (int s = 0; s < 6; s++) Segs[s] = Vm86Segment(sregs[s]);
            UpdateMode();                                                  // virtual-8086 mode, CPL 3
            ExitBlock = true;
            return;
        }
        LoadTaskCs(sregs[Seg.CS], ext);
        LoadTaskSs(sregs[Seg.SS], ext);
        foreach (int s in (ReadOnlySpan<int>)[Seg.ES, Seg.DS, Seg.FS, Seg.GS]) LoadTaskData(s, sregs[s], ext);
        ExitBlock = true;
    }

    /// <summary>Translates every page of [la, la+len) for an implicit write, faulting (with nothing written) if one cannot be written.</summary>
    private void ProbeImplicitWrite(ulong la, uint len)
    {
        if (!PagingOn) return;
        ulong end = la + len - 1;
        for (ulong p = la & ~0xFFFUL; p <= (end & ~0xFFFUL); p += 0x1000)
            Mmu.Translate(Math.Max(p, la) & 0xFFFFFFFF, Access.Write | Access.Implicit);
    }

    /// <summary>Sets or clears the busy bit (type bit 1) of the TSS descriptor <paramref name="sel"/> names in the GDT.</summary>
    private void SetTssBusy(ushort sel, bool busy)
    {
        ulong la = (Gdtr.Base + (uint)(sel & ~7) + 5) & 0xFFFFFFFF;
        ulong access = ReadImplicit(la, 1);
        WriteImplicitLinear(la, 1, busy ? access | 2 : access & ~2UL);
    }

    /// <summary>
    /// CR3 from the new TSS (only with paging on). With PAE paging the PDPTE registers are loaded from it (#GP(0) on
    /// a bad one, in the new task). A changed CR3 invalidates PCID 0's non-global TLB and paging-structure-cache
    /// entries, as MOV to CR3 does (SDM vol. 3A §4.10.4.1, "Task switch"); an unchanged one invalidates nothing.
    /// </summary>
    private void LoadTaskCr3(uint cr3)
    {
        if ((CR4 & Emu64.Cpu.Cr4.Pae) != 0 && !Mmu.LoadPdptes(cr3)) Gp(0);
        if (CR3 == cr3) return;
        LoadCr3(cr3, noFlush: false);
    }

    /// <summary>The new LDT: null, or an LDT descriptor in the GDT that is present (#TS(selector) for every failure).</summary>
    private void LoadTaskLdt(ushort sel, uint ext)
    {
        if ((sel & ~3) == 0) return;
        uint err = (uint)(sel & ~3) | ext;
        if ((sel & 4) != 0 || (sel & ~7) + 7 > Gdtr.Limit) Fault(Vec.TS, err);
        ulong d = ReadImplicit(Gdtr.Base + (uint)(sel & ~7), 8);
        var s = DescriptorToSegment(sel, d);
        if (!s.IsSystem || s.Type != 2 || !s.Present) Fault(Vec.TS, err);
        Ldtr = s;
    }

    /// <summary>Reads the descriptor for a segment the new task loads; a selector outside its table is #TS(selector).</summary>
    private ulong ReadTaskDescriptor(ushort sel, uint err)
    {
        bool ldt = (sel & 4) != 0;
        if (ldt && (Ldtr.Selector & ~3) == 0) Fault(Vec.TS, err);
        uint limit = ldt ? Ldtr.Limit : Gdtr.Limit;
        if ((uint)(sel & ~7) + 7 > limit) Fault(Vec.TS, err);
        return ReadImplicit((ldt ? Ldtr.Base : Gdtr.Base) + (uint)(sel & ~7), 8);
    }

    /// <summary>CS: a code segment (#TS), DPL = RPL when non-conforming or DPL ≤ RPL when conforming (#TS), present (#NP). The CPL becomes its RPL.</summary>
    private void LoadTaskCs(ushort sel, uint ext)
    {
        uint err = (uint)(sel & ~3) | ext;
        if ((sel & ~3) == 0) Fault(Vec.TS, err);
        ulong d = ReadTaskDescriptor(sel, err);
        var s = DescriptorToSegment(sel, d);
        if (!s.IsCode) Fault(Vec.TS, err);
        bool conforming = (s.Type & 4) != 0;
        if (conforming ? s.Dpl > (sel & 3) : s.Dpl != (sel & 3)) Fault(Vec.TS, err);
        if (!s.Present) Fault(Vec.NP, err);
        MarkAccessed(sel, d);
        SetCs(s);                                                          // CPL = CS.RPL, the mode from CS.D
    }

    /// <summary>SS: a writable data segment (#TS), RPL = DPL = CPL (#TS), present (#SS).</summary>
    private void LoadTaskSs(ushort sel, uint ext)
    {
        uint err = (uint)(sel & ~3) | ext;
        if ((sel & ~3) == 0) Fault(Vec.TS, err);
        ulong d = ReadTaskDescriptor(sel, err);
        var s = DescriptorToSegment(sel, d);
        if (s.IsSystem || s.IsCode || (s.Type & 2) == 0) Fault(Vec.TS, err);
        if ((sel & 3) != Cpl || s.Dpl != Cpl) Fault(Vec.TS, err);
        if (!s.Present) Fault(Vec.SS, err);
        MarkAccessed(sel, d);
        Segs[Seg.SS] = s;
    }

    /// <summary>DS, ES, FS, GS: null, or a data or readable code segment (#TS) visible at max(CPL, RPL) unless conforming code (#TS), present (#NP).</summary>
    private void LoadTaskData(int seg, ushort sel, uint ext)
    {
        if ((sel & ~3) == 0) return;
        uint err = (uint)(sel & ~3) | ext;
        ulong d = ReadTaskDescriptor(sel, err);
        var s = DescriptorToSegment(sel, d);
        if (s.IsSystem || (s.IsCode && (s.Type & 2) == 0)) Fault(Vec.TS, err);
        bool conformingCode = s.IsCode && (s.Type & 4) != 0;
        if (!conformingCode && (s.Dpl < Cpl || s.Dpl < (sel & 3))) Fault(Vec.TS, err);
        if (!s.Present) Fault(Vec.NP, err);
        MarkAccessed(sel, d);
        Segs[seg] = s;
    }
}
