using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Emu64.Cpu;

/// <summary>
/// A guest exception in flight. Handlers throw it (through <see cref="Cpu.Fault"/>) from anywhere in an
/// instruction; the run loop catches it, rewinds RIP to the faulting instruction and delivers it through
/// the IDT. One instance is reused, so raising a fault allocates nothing.
/// </summary>
public sealed class GuestFault : Exception
{
    public int Vector;
    public uint ErrorCode;
    public bool HasErrorCode;
    public GuestFault() : base("guest fault") { }
    public override string Message => $"{Vec.Name(Vector)}{(HasErrorCode ? $" error {ErrorCode:x}" : "")}";
}

/// <summary>The run stops because the guest shut the machine down with a triple fault.</summary>
public sealed class TripleFaultException(string reason) : Exception(reason);

public sealed partial class Cpu
{
    private readonly GuestFault _fault;
    private int _delivering = -1;      // vector being delivered, for #DF / triple-fault escalation

    /// <summary>Raises exception <paramref name="vector"/>; never returns.</summary>
    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public void Fault(int vector, uint errorCode = 0)
    {
        _fault.Vector = vector;
        _fault.ErrorCode = errorCode;
        _fault.HasErrorCode = Vec.HasErrorCode(vector);
        throw _fault;
    }

    [DoesNotReturn] public void Ud() => Fault(Vec.UD);
    [DoesNotReturn] public void Gp(uint err = 0) => Fault(Vec.GP, err);

    /// <summary>Raises a page fault at linear address <paramref name="la"/>; CR2 is written when delivered.</summary>
    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public void PageFault(ulong la, uint errorCode)
    {
        _pfAddr = la;
        Fault(Vec.PF, errorCode);
    }
    private ulong _pfAddr;

    private static bool Contributory(int v) => v is Vec.DE or Vec.TS or Vec.NP or Vec.SS or Vec.GP;

    /// <summary>
    /// Delivers a fault caught by the run loop: RIP has already been rewound. Applies the double-fault
    /// rules of SDM vol. 3A table 6-5 when a fault happens while delivering another.
    /// </summary>
    public void DeliverFault(GuestFault f)
    {
        int vec = f.Vector;
        uint err = f.ErrorCode;
        bool hasErr = f.HasErrorCode;
        if (_delivering >= 0)
        {
            int first = _delivering;
            _delivering = -1;
            if (first == Vec.DF)
                throw new TripleFaultException($"triple fault: {Vec.Name(vec)} while delivering #DF");
            bool df = (Contributory(first) && Contributory(vec)) || (first == Vec.PF && (Contributory(vec) || vec == Vec.PF));
            if (df) { vec = Vec.DF; err = 0; hasErr = true; }
        }
        if (vec == Vec.PF) CR2 = _pfAddr;
        Machine.Events.OnException(vec, err, hasErr);
        // Fault-class exceptions push RF=1 (SDM vol. 3A §18.3.1.1), so that the IRET back to the faulting instruction
        // does not stop again on an instruction breakpoint there. (#DF is an abort; the rule is harmless for it.)
        Deliver(vec, hasErr, err, software: false, external: false, rfInFrame: true);
    }

    /// <summary>
    /// The fault-like #DB of an instruction breakpoint (DR6 already written): RIP at the instruction, and — the one
    /// fault that does so — RF as it is (0) in the pushed RFLAGS; the handler sets it to go on.
    /// </summary>
    public void DeliverDebugFault()
    {
        Machine.Events.OnException(Vec.DB, 0, false);
        DeliverGuarded(Vec.DB, false, 0, software: false, external: false);
    }

    /// <summary>NMIs are blocked from the delivery of one until the next IRET (SDM vol. 3A §6.7.1).</summary>
    public bool NmiBlocked;

    /// <summary>A non-maskable interrupt (vector 2) at an instruction boundary; blocks further NMIs until IRET.</summary>
    public void DeliverNmi()
    {
        Halted = false;
        Machine.Events.OnInterrupt(Vec.NMI);
        DeliverGuarded(Vec.NMI, false, 0, software: false, external: true);
        NmiBlocked = true;
    }

    /// <summary><see cref="SoftwareEvent"/> values: INT n/INT3/INTO, and ICEBP (INT1).</summary>
    internal const int SoftwareInt = 1, SoftwareIcebp = 2;

    /// <summary>An external interrupt (from the PIC or APIC) at an instruction boundary.</summary>
    public void DeliverExternal(int vector)
    {
        Halted = false;
        Machine.Events.OnInterrupt(vector);
        DeliverGuarded(vector, false, 0, software: false, external: true);
    }

    /// <summary>INT n / INT3 / INTO: RIP already points after the instruction.</summary>
    public void DeliverSoftware(int vector, bool isInt3OrInto = false)
    {
        Machine.Events.OnSoftwareInterrupt(vector);
        try
        {
            Deliver(vector, false, 0, software: !isInt3OrInto, external: false, isInt3OrInto);
        }
        catch (GuestFault)
        {
            // A fault raised by INT n itself (gate DPL, not-present gate, bad stack): the saved RIP points at
            // the INT instruction (SDM vol. 3A §6.12.1.1), and it is not a double-fault candidate.
            _delivering = -1;
            Rip = InsnRip;
            throw;
        }
    }

    /// <summary>A trap (such as single-step #DB) taken after an instruction completed.</summary>
    public void DeliverTrap(int vector)
    {
        Machine.Events.OnException(vector, 0, false);
        DeliverGuarded(vector, false, 0, software: false, external: false);
    }

    private void DeliverGuarded(int vector, bool hasErr, uint err, bool software, bool external, bool int3 = false)
    {
        try
        {
            Deliver(vector, hasErr, err, software, external, int3);
        }
        catch (GuestFault f)
        {
            // A fault while delivering: the saved RIP stays at the interrupted instruction.
            Rip = InsnRip = _deliverRip;
            DeliverFault(f);
        }
    }

    private ulong _deliverRip;

    /// <summary>Delivers through the IDT (SDM vol. 3A §6.12 and §6.14).</summary>
    private void Deliver(int vector, bool hasErr, uint err, bool software, bool external, bool int3 = false, bool rfInFrame = false)
    {
        _deliverRip = Rip;
        _delivering = vector;
        uint ext = external ? 1u : 0u;
        uint idtErr = (uint)(vector * 8 + 2) | ext;
        if (Mode == CpuMode.Real) { DeliverReal(vector); _delivering = -1; return; }
        bool lm = LongMode;
        int gateSize = lm ? 16 : 8;
        if ((ulong)(vector * gateSize + gateSize - 1) > Idtr.Limit) Gp(idtErr);
        ulong lo = ReadImplicit(Idtr.Base + (ulong)(vector * gateSize), 8);
        ulong hi = lm ? ReadImplicit(Idtr.Base + (ulong)(vector * gateSize) + 8, 8) : 0;
        int type = (int)(lo >> 40) & 0xF;
        int gateDpl = (int)(lo >> 45) & 3;
        bool present = ((lo >> 47) & 1) != 0;
        // Interrupt and trap gates (32-bit, 64-bit in IA-32e mode); outside IA-32e mode also the 80286's 16-bit
        // interrupt and trap gates (types 6, 7: a frame of words, a 16-bit IP) and task gates.
        bool taskGate = type == 0x5 && !lm;
        bool gate16 = !lm && type is 6 or 7;
        if (type != 0xE && type != 0xF && !taskGate && !gate16) Gp(idtErr);
        bool trapGate = type is 0xF or 7;
        if ((software || int3) && gateDpl < Cpl) Gp(idtErr);
        if (!present) Fault(Vec.NP, idtErr);
        if (taskGate)
        {
            // A task switch to the TSS the gate names (SDM vol. 3A §6.12.2); the error code goes on the new task's stack.
            DeliverThroughTaskGate(lo, hasErr, err, software || int3 ? 0u : 1u);   // EXT: a hardware event started the switch
            InterruptShadow = false;
            MovSsShadow = false;
            if (vector == Vec.DB && !software) DR[7] &= ~Dr7.Gd;
            _delivering = -1;
            return;
        }
        ushort sel = (ushort)(lo >> 16);
        ulong target = (lo & 0xFFFF) | (gate16 ? 0 : (lo >> 32) & 0xFFFF0000UL) | (lm ? (hi & 0xFFFFFFFF) << 32 : 0);
        int ist = lm ? (int)(lo >> 32) & 7 : 0;

        if ((sel & ~3) == 0) Gp(ext);
        ulong desc = ReadDescriptor(sel, ext);
        var cs = DescriptorToSegment(sel, desc);
        if (!cs.IsCode || cs.Dpl > Cpl) Gp((uint)(sel & ~3) | ext);
        if (!cs.Present) Fault(Vec.NP, (uint)(sel & ~3) | ext);
        if (lm && (!cs.Long || cs.Db)) Gp((uint)(sel & ~3) | ext);
        bool conforming = (cs.Type & 4) != 0;
        int newCpl = conforming ? Cpl : cs.Dpl;
        // From virtual-8086 mode only a ring-0 non-conforming handler can be entered (SDM vol. 3A §20.3.1.1).
        bool fromVm86 = Mode == CpuMode.Virtual8086;
        if (fromVm86 && (conforming || cs.Dpl != 0)) Gp((uint)(sel & ~3) | ext);
        if (!lm && (target & 0xFFFFFFFF) > cs.Limit) Gp(ext);
        ulong rflags = Rflags;
        if (rfInFrame) rflags |= RFlags.RF;
        ulong oldRsp = Rsp;
        var oldSs = Segs[Emu64.Cpu.Seg.SS];
        var oldCs = Segs[Emu64.Cpu.Seg.CS];

        if (lm)
        {
            ulong rsp = Rsp;
            if (ist != 0) rsp = ReadImplicit(TssBase() + 0x24 + 8 * (ulong)(ist - 1), 8);
            else if (newCpl < Cpl) rsp = ReadImplicit(TssBase() + 4 + 8 * (ulong)newCpl, 8);
            rsp &= ~0xFUL;   // the 64-bit frame is always 16-byte aligned, stack switch or not
            if (!IsCanonical(rsp)) Fault(Vec.SS, ext);
            // Build the frame with supervisor writes at the new privilege level.
            int savedCpl = Cpl;
            Cpl = newCpl;
            try
            {
                rsp -= 8; WriteStackImplicit(rsp, oldSs.Selector);
                rsp -= 8; WriteStackImplicit(rsp, oldRsp);
                rsp -= 8; WriteStackImplicit(rsp, rflags);
                rsp -= 8; WriteStackImplicit(rsp, oldCs.Selector);
                rsp -= 8; WriteStackImplicit(rsp, Rip);
                if (hasErr) { rsp -= 8; WriteStackImplicit(rsp, err); }
            }
            catch { Cpl = savedCpl; throw; }
            if (newCpl < savedCpl)
                Segs[Emu64.Cpu.Seg.SS] = new Segment { Selector = (ushort)newCpl, Attr = (ushort)(0x0093 | (newCpl << 5)), Limit = 0xFFFFFFFF };
            Rsp = rsp;
        }
        else
        {
            // A 32-bit or 16-bit gate outside IA-32e mode: doublewords or words, on a stack whose B flag says whether
            // ESP or only SP moves.
            ulong esp = Rsp & 0xFFFFFFFF;
            Segment newSs = oldSs;
            bool change = newCpl < Cpl;
            if (change)
            {
                ushort ssSel = TssStack(newCpl, ext, out esp);
                newSs = InnerStackSegment(ssSel, newCpl, ext);
            }
            int ps = gate16 ? 2 : 4;
            ulong m = newSs.Db ? 0xFFFFFFFFUL : 0xFFFFUL;
            int savedCpl = Cpl;
            Cpl = newCpl;
            try
            {
                ulong b = newSs.Base;
                if (fromVm86)
                {
                    // The virtual-8086 data segments go first (in a 32-bit frame each selector zero-extended).
                    PushLegacy(b, ref esp, m, ps, Segs[Emu64.Cpu.Seg.GS].Selector);
                    PushLegacy(b, ref esp, m, ps, Segs[Emu64.Cpu.Seg.FS].Selector);
                    PushLegacy(b, ref esp, m, ps, Segs[Emu64.Cpu.Seg.DS].Selector);
                    PushLegacy(b, ref esp, m, ps, Segs[Emu64.Cpu.Seg.ES].Selector);
                }
                if (change)
                {
                    PushLegacy(b, ref esp, m, ps, oldSs.Selector);
                    PushLegacy(b, ref esp, m, ps, oldRsp);
                }
                PushLegacy(b, ref esp, m, ps, rflags);
                PushLegacy(b, ref esp, m, ps, oldCs.Selector);
                PushLegacy(b, ref esp, m, ps, Rip);
                if (hasErr) PushLegacy(b, ref esp, m, ps, err);
            }
            catch { Cpl = savedCpl; throw; }
            if (change) Segs[Emu64.Cpu.Seg.SS] = newSs;
            Rsp = (Rsp & ~0xFFFFFFFFUL) | (esp & 0xFFFFFFFF);
            if (fromVm86)
                foreach (int s in (ReadOnlySpan<int>)[Emu64.Cpu.Seg.ES, Emu64.Cpu.Seg.DS, Emu64.Cpu.Seg.FS, Emu64.Cpu.Seg.GS])
                    Segs[s] = default;                                     // null selectors: the handler loads its own
        }

        cs.Selector = (ushort)((sel & ~3) | newCpl);
        Segs[Emu64.Cpu.Seg.CS] = cs;
        ulong f = Rflags & ~(RFlags.TF | RFlags.NT | RFlags.RF | RFlags.VM);
        if (!trapGate) f &= ~RFlags.IF;
        Rflags = f;
        Rip = lm ? target : target & 0xFFFFFFFF;
        UpdateMode();
        InterruptShadow = false;
        MovSsShadow = false;
        if (vector == Vec.DB && !software) DR[7] &= ~Dr7.Gd;   // entering a #DB handler clears DR7.GD (SDM §18.2.4)
        ExitBlock = true;
        _delivering = -1;
    }

    private void DeliverReal(int vector)
    {
        ulong entry = ReadImplicit(Idtr.Base + (ulong)vector * 4, 4);
        Push16Real((ushort)Rflags);
        Push16Real(Segs[Emu64.Cpu.Seg.CS].Selector);
        Push16Real((ushort)Rip);
        SetFlag(RFlags.IF | RFlags.TF, false);
        ushort sel = (ushort)(entry >> 16);
        Segs[Emu64.Cpu.Seg.CS].Selector = sel;
        Segs[Emu64.Cpu.Seg.CS].Base = (ulong)sel << 4;
        Rip = entry & 0xFFFF;
        ExitBlock = true;
    }

    private void Push16Real(ushort v)
    {
        ulong sp = (Rsp - 2) & 0xFFFF;
        WriteImplicitLinear(Segs[Emu64.Cpu.Seg.SS].Base + sp, 2, v);
        Rsp = (Rsp & ~0xFFFFUL) | sp;
    }

    /// <summary>
    /// The stack for privilege level <paramref name="dpl"/> from the current TSS (SDM vol. 3A §6.12.1, INT n
    /// pseudo-code): ESPn/SSn of a 32-bit TSS at (dpl × 8) + 4, SPn/SSn of a 16-bit TSS at (dpl × 4) + 2; #TS(TSS
    /// selector) when the TSS limit does not cover them. Returns the SS selector.
    /// </summary>
    private ushort TssStack(int dpl, uint ext, out ulong esp)
    {
        ulong tss = TssBase() & 0xFFFFFFFF;
        uint err = (uint)(Tr.Selector & ~3) | ext;
        if ((Tr.Type & 8) != 0)
        {
            uint at = (uint)(dpl << 3) + 4;
            if (at + 5 > Tr.Limit) Fault(Vec.TS, err);
            esp = ReadImplicit(tss + at, 4);
            return (ushort)ReadImplicit(tss + at + 4, 2);
        }
        uint at16 = (uint)(dpl << 2) + 2;
        if (at16 + 3 > Tr.Limit) Fault(Vec.TS, err);
        esp = ReadImplicit(tss + at16, 2);
        return (ushort)ReadImplicit(tss + at16 + 2, 2);
    }

    /// <summary>
    /// The checks of the inner stack an interrupt switches to: a non-null selector (#TS(EXT)) inside its table, with
    /// RPL = the new CPL, naming a writable data segment of DPL = the new CPL (#TS(selector)) that is present (#SS(selector)).
    /// </summary>
    private Segment InnerStackSegment(ushort sel, int cpl, uint ext)
    {
        if ((sel & ~3) == 0) Fault(Vec.TS, ext);
        uint err = (uint)(sel & ~3) | ext;
        ulong d = ReadTaskDescriptor(sel, err);
        var s = DescriptorToSegment(sel, d);
        if ((sel & 3) != cpl || s.IsSystem || s.IsCode || (s.Type & 2) == 0 || s.Dpl != cpl) Fault(Vec.TS, err);
        if (!s.Present) Fault(Vec.SS, err);
        return s;
    }

    private ulong TssBase()
    {
        if (Tr.Selector == 0 && Tr.Base == 0 && Mode != CpuMode.Real) Gp(0);
        return Tr.Base;
    }

    // The frame is written with ordinary supervisor accesses at the new CPL (not implicit ones).
    private void WriteStackImplicit(ulong rsp, ulong v) => WriteLinear(rsp, 8, v);
    /// <summary>One push of an interrupt frame outside IA-32e mode: <paramref name="size"/> bytes below ESP (or SP, <paramref name="mask"/>) on the stack based at <paramref name="ssBase"/>.</summary>
    private void PushLegacy(ulong ssBase, ref ulong esp, ulong mask, int size, ulong v)
    {
        esp = (esp & ~mask) | ((esp - (ulong)size) & mask);
        WriteLinear((ssBase + (esp & mask)) & 0xFFFFFFFF, size, v);
    }
}
