using System.Runtime.CompilerServices;
using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Isa;

/// <summary>PUSH, POP, PUSHA/POPA, ENTER, LEAVE. The stack pointer changes only after the memory access succeeds.</summary>
[NoRipRead]
public static unsafe partial class Stack
{
    internal static void Register()
    {
        HandlerTable.Map(Mnemonic.Push, &Push);
        HandlerTable.Map(Mnemonic.Pop, &Pop);
        HandlerTable.Map(&Pusha, Mnemonic.Pusha, Mnemonic.Pushad);
        HandlerTable.Map(&Popa, Mnemonic.Popa, Mnemonic.Popad);
        HandlerTable.Map(Mnemonic.Leave, &Leave);
        HandlerTable.Map(Mnemonic.Enter, &Enter);
    }

    // ---- fast forms (64-bit mode, where the stack address size is always 8): PUSH/POP r64, PUSH imm ----

    internal static void Specialize(ref Insn d)
    {
        if (d.Size != 8 || d.Prefix != 0) return;
        if (HandlerTable.Is(d.Exec, Code.Push_r64))
        {
            if (d.K0 == Opnd.Reg && d.R0 < 16 && !d.I.Op0Register.IsSegmentRegister()) d.Exec = &PushR64;
            else if (d.K0 == Opnd.Imm) d.Exec = &PushI64;
            else if (d.K0 == Opnd.Mem) d.Exec = &PushM64;
        }
        else if (HandlerTable.Is(d.Exec, Code.Pop_r64) && d.K0 == Opnd.Reg && d.R0 < 16 && !d.I.Op0Register.IsSegmentRegister())
            d.Exec = &PopR64;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void PushR64(CpuCore cpu, ref Insn i) => Push64(cpu, cpu.Gpr(i.R0));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void PushI64(CpuCore cpu, ref Insn i) => Push64(cpu, i.Imm);
    /// <summary>PUSH m64: the operand is read (its address formed with the old RSP) before the stack moves.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void PushM64(CpuCore cpu, ref Insn i) => Push64(cpu, cpu.ReadOperandMem(ref i, 8));

    /// <summary>PUSH in 64-bit mode: RSP changes only after the store succeeded.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    internal static void Push64(CpuCore cpu, ulong v)
    {
        ulong sp = cpu.Rsp - 8;
        cpu.WriteLinear(cpu.Linear(Seg.SS, sp, 8, true), 8, v);
        cpu.Rsp = sp;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void PopR64(CpuCore cpu, ref Insn i)
        => cpu.Gpr(i.R0) = Pop64(cpu);   // after RSP moved: POP RSP loads the value read

    /// <summary>POP in 64-bit mode: the value at RSP; RSP moves only after the load succeeded.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Pop64(CpuCore cpu)
    {
        ulong sp = cpu.Rsp;
        ulong v = cpu.ReadLinear(cpu.Linear(Seg.SS, sp, 8, false), 8);
        cpu.Rsp = sp + 8;
        return v;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Push(CpuCore cpu, ref Insn i)
    {
        int size = i.Size;
        ulong v;
        switch (i.K0)
        {
            case Opnd.Reg when i.I.Op0Register.IsSegmentRegister():
                PushSelector(cpu, cpu.Segs[i.R0].Selector, i.I.Code.ToOpCode().OperandSize / 8);
                return;
            case Opnd.Reg: v = cpu.GetReg(i.R0, size); break;
            case Opnd.Imm: v = i.Imm; break;
            default: v = cpu.ReadOperandMem(ref i, size); break;
        }
        cpu.Push(v & InsnBuilder.Mask(size), size);
    }

    /// <summary>
    /// PUSH Sreg: the stack slot has the operand size (2, 4 or 8 bytes) but, as on recent Intel cores
    /// (SDM PUSH, host-measured), only the 16-bit selector is written; the rest of the slot is unchanged.
    /// </summary>
    private static void PushSelector(CpuCore cpu, ushort sel, int slot)
    {
        int sas = cpu.StackAddrSize;
        ulong m = sas == 8 ? ulong.MaxValue : sas == 4 ? 0xFFFFFFFFUL : 0xFFFFUL;
        ulong sp = (cpu.Rsp - (ulong)slot) & m;
        cpu.WriteLinear(cpu.Linear(Seg.SS, sp, slot, true), 2, sel);
        cpu.Rsp = (cpu.Rsp & ~m) | sp;
    }

    private static void Pop(CpuCore cpu, ref Insn i)
    {
        int size = i.Size;
        if (i.K0 == Opnd.Reg && i.I.Op0Register.IsSegmentRegister())
        {
            // POP Sreg reads the selector from the low word of a slot of the operand size (POPD FS with a 66H prefix in
            // 16-bit code takes 4 bytes off the stack): i.Size is the register's 2, not the operand size.
            int slot = i.I.Code.ToOpCode().OperandSize / 8;
            ulong sel = cpu.PeekStack(2);
            SystemInsns.LoadDataSegment(cpu, i.R0, (ushort)sel);
            cpu.AdjustStack(slot);
            if (i.R0 == Seg.SS) { cpu.InterruptShadow = cpu.MovSsShadow = true; cpu.ExitBlock = true; }
            return;
        }
        ulong v = cpu.PeekStack(size);
        if (i.K0 == Opnd.Reg)
        {
            cpu.AdjustStack(size);
            cpu.SetReg(i.R0, size, v);
            return;
        }
        // POP r/m: the address is computed with RSP already incremented (SDM: POP)
        cpu.AdjustStack(size);
        try { cpu.WriteLinear(cpu.OperandLinear(ref i, size, true), size, v); }
        catch (GuestFault) { cpu.AdjustStack(-size); throw; }
    }

    private static void Pusha(CpuCore cpu, ref Insn i)
    {
        int size = i.Size;
        ulong sp = cpu.GetReg(Reg.RSP, size);
        ulong save = cpu.Rsp;
        try
        {
            for (int r = 0; r < 8; r++) cpu.Push(r == Reg.RSP ? sp : cpu.GetReg(r, size), size);
        }
        catch (GuestFault) { cpu.Rsp = save; throw; }
    }

    private static void Popa(CpuCore cpu, ref Insn i)
    {
        int size = i.Size;
        Span<ulong> v = stackalloc ulong[8];
        for (int r = 7; r >= 0; r--) v[r] = cpu.PeekStack(size, (7 - r) * size);
        for (int r = 7; r >= 0; r--) if (r != Reg.RSP) cpu.SetReg(r, size, v[r]);
        cpu.AdjustStack(8 * size);
    }

    private static void Leave(CpuCore cpu, ref Insn i)
    {
        int size = i.Size;
        int sas = cpu.StackAddrSize;
        ulong save = cpu.Rsp;
        cpu.SetReg(Reg.RSP, sas, cpu.GetReg(Reg.RBP, sas));
        try
        {
            ulong v = cpu.PeekStack(size);
            cpu.AdjustStack(size);
            cpu.SetReg(Reg.RBP, size, v);
        }
        catch (GuestFault) { cpu.Rsp = save; throw; }
    }

    private static void Enter(CpuCore cpu, ref Insn i)
    {
        int size = i.Size;
        ulong alloc = i.I.Immediate16;
        int level = i.I.Immediate8_2nd & 31;
        ulong save = cpu.Rsp, saveBp = cpu.R[Reg.RBP];
        int sas = cpu.StackAddrSize;
        try
        {
            cpu.Push(cpu.GetReg(Reg.RBP, size), size);
            ulong frame = cpu.GetReg(Reg.RSP, sas);
            if (level > 0)
            {
                ulong bp = cpu.GetReg(Reg.RBP, sas);
                for (int k = 1; k < level; k++)
                {
                    bp = (bp - (ulong)size) & InsnBuilder.Mask(sas);
                    cpu.Push(cpu.ReadMem(Seg.SS, bp, size), size);
                }
                cpu.Push(frame, size);
            }
            // the final stack pointer must be writable (checked by touching it)
            ulong newSp = (cpu.GetReg(Reg.RSP, sas) - alloc) & InsnBuilder.Mask(sas);
            if (alloc != 0) cpu.Linear(Seg.SS, newSp, 1, true);
            cpu.SetReg(Reg.RBP, size, frame);
            cpu.AdjustStack(-(long)alloc);
        }
        catch (GuestFault) { cpu.Rsp = save; cpu.R[Reg.RBP] = saveBp; throw; }
    }
}
