using System.Runtime.CompilerServices;
using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Isa;

/// <summary>Near control transfer: JMP, Jcc, CALL, RET, LOOPcc, JrCXZ. (Far forms live in SystemInsns.)</summary>
public static unsafe class Flow
{
    internal static void Register()
    {
        HandlerTable.Map(&Jcc, Mnemonic.Jo, Mnemonic.Jno, Mnemonic.Jb, Mnemonic.Jae, Mnemonic.Je, Mnemonic.Jne, Mnemonic.Jbe,
            Mnemonic.Ja, Mnemonic.Js, Mnemonic.Jns, Mnemonic.Jp, Mnemonic.Jnp, Mnemonic.Jl, Mnemonic.Jge, Mnemonic.Jle, Mnemonic.Jg);
        HandlerTable.Map(Mnemonic.Jmp, &Jmp);
        HandlerTable.Map(Mnemonic.Call, &Call);
        HandlerTable.Map(Mnemonic.Ret, &Ret);
        HandlerTable.Map(Mnemonic.Loop, &Loop);
        HandlerTable.Map(Mnemonic.Loope, &Loope);
        HandlerTable.Map(Mnemonic.Loopne, &Loopne);
        HandlerTable.Map(&Jrcxz, Mnemonic.Jcxz, Mnemonic.Jecxz, Mnemonic.Jrcxz);
        // far forms of JMP/CALL/RET are the system family's (segment loads)
        HandlerTable.Map(&SystemInsns.JmpFar, Code.Jmp_ptr1616, Code.Jmp_ptr1632, Code.Jmp_m1616, Code.Jmp_m1632, Code.Jmp_m1664);
        HandlerTable.Map(&SystemInsns.CallFar, Code.Call_ptr1616, Code.Call_ptr1632, Code.Call_m1616, Code.Call_m1632, Code.Call_m1664);
        HandlerTable.Map(&SystemInsns.RetFar, Code.Retfw, Code.Retfd, Code.Retfq, Code.Retfw_imm16, Code.Retfd_imm16, Code.Retfq_imm16);
    }

    /// <summary>Sets RIP to a branch target of the given operand size; #GP if not canonical (RIP unchanged).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Branch(CpuCore cpu, ulong target, int size)
    {
        if (size == 8) { if (!cpu.IsCanonical(target)) cpu.Gp(); }
        else
        {
            target &= InsnBuilder.Mask(size);
            if (!cpu.Is64 && target > cpu.Segs[Seg.CS].Limit) cpu.Gp();
        }
        cpu.Rip = target;
    }

    // ---- fast forms (64-bit mode): a Jcc per condition, JMP rel -----------------------------------

    /// <summary>Replaces the generic Jcc/JMP handler of a 64-bit relative branch by its fixed form (chosen once at decode).</summary>
    internal static void Specialize(ref Insn d)
    {
        if (d.Size != 8) return;
        if (HandlerTable.Is(d.Exec, Code.Retnq) && d.K0 == Opnd.None) { d.Exec = &Ret64; return; }
        if (d.K0 != Opnd.Imm) return;
        if (HandlerTable.Is(d.Exec, Code.Jne_rel32_64)) d.Exec = JccFast[d.Cc];
        else if (HandlerTable.Is(d.Exec, Code.Jmp_rel32_64)) d.Exec = &JmpRel64;
        else if (HandlerTable.Is(d.Exec, Code.Call_rel32_64)) d.Exec = &CallRel64;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void CallRel64(CpuCore cpu, ref Insn i)
    {
        ulong t = cpu.Rip + i.Imm;
        if (!cpu.IsCanonical(t)) cpu.Gp();
        Stack.Push64(cpu, cpu.Rip);
        cpu.Rip = t;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Ret64(CpuCore cpu, ref Insn i)
    {
        ulong sp = cpu.Rsp;
        ulong t = cpu.ReadLinear(cpu.Linear(Seg.SS, sp, 8, false), 8);
        if (!cpu.IsCanonical(t)) cpu.Gp();
        cpu.Rip = t;
        cpu.Rsp = sp + 8;
    }

    private static readonly delegate*<CpuCore, ref Insn, void>[] JccFast =
    [
        &Jo, &Jno, &Jb, &Jae, &Je, &Jne, &Jbe, &Ja, &Js, &Jns, &Jp, &Jnp, &Jl, &Jge, &Jle, &Jg,
    ];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Taken64(CpuCore cpu, ref Insn i)
    {
        ulong t = cpu.Rip + i.Imm;
        if (!cpu.IsCanonical(t)) cpu.Gp();
        cpu.Rip = t;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Jo(CpuCore cpu, ref Insn i) { if (cpu.Condition(0)) Taken64(cpu, ref i); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Jno(CpuCore cpu, ref Insn i) { if (cpu.Condition(1)) Taken64(cpu, ref i); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Jb(CpuCore cpu, ref Insn i) { if (cpu.Condition(2)) Taken64(cpu, ref i); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Jae(CpuCore cpu, ref Insn i) { if (cpu.Condition(3)) Taken64(cpu, ref i); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Je(CpuCore cpu, ref Insn i) { if (cpu.Condition(4)) Taken64(cpu, ref i); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Jne(CpuCore cpu, ref Insn i) { if (cpu.Condition(5)) Taken64(cpu, ref i); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Jbe(CpuCore cpu, ref Insn i) { if (cpu.Condition(6)) Taken64(cpu, ref i); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Ja(CpuCore cpu, ref Insn i) { if (cpu.Condition(7)) Taken64(cpu, ref i); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Js(CpuCore cpu, ref Insn i) { if (cpu.Condition(8)) Taken64(cpu, ref i); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Jns(CpuCore cpu, ref Insn i) { if (cpu.Condition(9)) Taken64(cpu, ref i); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Jp(CpuCore cpu, ref Insn i) { if (cpu.Condition(10)) Taken64(cpu, ref i); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Jnp(CpuCore cpu, ref Insn i) { if (cpu.Condition(11)) Taken64(cpu, ref i); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Jl(CpuCore cpu, ref Insn i) { if (cpu.Condition(12)) Taken64(cpu, ref i); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Jge(CpuCore cpu, ref Insn i) { if (cpu.Condition(13)) Taken64(cpu, ref i); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Jle(CpuCore cpu, ref Insn i) { if (cpu.Condition(14)) Taken64(cpu, ref i); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Jg(CpuCore cpu, ref Insn i) { if (cpu.Condition(15)) Taken64(cpu, ref i); }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void JmpRel64(CpuCore cpu, ref Insn i) => Taken64(cpu, ref i);

    private static void Jcc(CpuCore cpu, ref Insn i)
    {
        if (cpu.Condition(i.Cc)) Branch(cpu, cpu.Rip + i.Imm, i.Size);
    }

    private static void Jmp(CpuCore cpu, ref Insn i)
    {
        if (i.K0 == Opnd.Imm) Branch(cpu, cpu.Rip + i.Imm, i.Size);
        else Branch(cpu, cpu.ReadOp0(ref i), i.Size);
    }

    private static void Call(CpuCore cpu, ref Insn i)
    {
        int size = i.Size;
        ulong target = i.K0 == Opnd.Imm ? cpu.Rip + i.Imm : cpu.ReadOp0(ref i);
        if (size == 8 && !cpu.IsCanonical(target)) cpu.Gp();
        cpu.Push(cpu.Rip, size);
        Branch(cpu, target, size);
    }

    private static void Ret(CpuCore cpu, ref Insn i)
    {
        int size = i.Size;
        ulong target = cpu.PeekStack(size);
        Branch(cpu, target, size);
        cpu.AdjustStack(size + (i.K0 == Opnd.Imm ? (long)(i.Imm & 0xFFFF) : 0));
    }

    /// <summary>LOOP and JrCXZ count with the address size (RCX, ECX or CX).</summary>
    private static bool DecCount(CpuCore cpu, ref Insn i)
    {
        int a = i.AddrSize;
        ulong c = (cpu.GetReg(Reg.RCX, a) - 1) & InsnBuilder.Mask(a);
        cpu.SetReg(Reg.RCX, a, c);
        return c != 0;
    }

    private static void Loop(CpuCore cpu, ref Insn i) { if (DecCount(cpu, ref i)) Branch(cpu, cpu.Rip + i.Imm, i.Size); }
    private static void Loope(CpuCore cpu, ref Insn i) { if (DecCount(cpu, ref i) && cpu.Zf) Branch(cpu, cpu.Rip + i.Imm, i.Size); }
    private static void Loopne(CpuCore cpu, ref Insn i) { if (DecCount(cpu, ref i) && !cpu.Zf) Branch(cpu, cpu.Rip + i.Imm, i.Size); }

    private static void Jrcxz(CpuCore cpu, ref Insn i)
    {
        if (cpu.GetReg(Reg.RCX, i.AddrSize) == 0) Branch(cpu, cpu.Rip + i.Imm, i.Size);
    }
}
