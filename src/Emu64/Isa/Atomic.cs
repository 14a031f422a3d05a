using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Isa;

/// <summary>
/// The read-modify-write instructions that make locks: CMPXCHG, CMPXCHG8B, CMPXCHG16B, XADD (XCHG lives
/// with the moves). One CPU means LOCK needs no bus lock here: each handler translates its memory operand
/// for writing before it reads (<see cref="CpuCore.RmwRef"/>), so the operation is indivisible and a
/// fault leaves everything unchanged. As on hardware, the memory destination is written even when a
/// compare fails (with the value it already had), so a read-only page faults either way.
/// </summary>
public static unsafe class Atomic
{
    internal static void Register()
    {
        HandlerTable.Map(Mnemonic.Cmpxchg, &Cmpxchg);
        HandlerTable.Map(Mnemonic.Xadd, &Xadd);
        HandlerTable.Map(Mnemonic.Cmpxchg8b, &Cmpxchg8b);
        HandlerTable.Map(Mnemonic.Cmpxchg16b, &Cmpxchg16b);
    }

    /// <summary>CMPXCHG r/m, r: flags as CMP accumulator, r/m; equal → r/m = r; else accumulator = r/m.</summary>
    private static void Cmpxchg(CpuCore cpu, ref Insn i)
    {
        int size = i.Size;
        ulong acc = cpu.GetReg(Reg.RAX, size);
        ulong src = cpu.GetReg(i.R1, size);
        if (i.K0 == Opnd.Reg)
        {
            ulong d = cpu.GetReg(i.R0, size);
            Alu.Compute(cpu, Alu.Op.Cmp, acc, d, size);
            if (acc == d) cpu.SetReg(i.R0, size, src);
            else cpu.SetReg(Reg.RAX, size, d);
            return;
        }
        var mr = cpu.RmwRef(cpu.OperandLinear(ref i, size, true), size);
        ulong mv = cpu.Read(mr);
        Alu.Compute(cpu, Alu.Op.Cmp, acc, mv, size);
        if (acc == mv) cpu.Write(mr, src);
        else { cpu.Write(mr, mv); cpu.SetReg(Reg.RAX, size, mv); }
    }

    /// <summary>XADD r/m, r: TEMP = r/m + r; r = r/m; r/m = TEMP (flags as ADD). With one register for both, the sum wins.</summary>
    private static void Xadd(CpuCore cpu, ref Insn i)
    {
        int size = i.Size;
        ulong src = cpu.GetReg(i.R1, size);
        if (i.K0 == Opnd.Reg)
        {
            ulong d = cpu.GetReg(i.R0, size);
            ulong sum = Alu.Compute(cpu, Alu.Op.Add, d, src, size);
            cpu.SetReg(i.R1, size, d);
            cpu.SetReg(i.R0, size, sum);
            return;
        }
        var mr = cpu.RmwRef(cpu.OperandLinear(ref i, size, true), size);
        ulong mv = cpu.Read(mr);
        ulong r = Alu.Compute(cpu, Alu.Op.Add, mv, src, size);
        cpu.Write(mr, r);
        cpu.SetReg(i.R1, size, mv);
    }

    /// <summary>CMPXCHG8B m64: EDX:EAX against m64; equal → m64 = ECX:EBX, ZF=1; else EDX:EAX = m64, ZF=0. Only ZF changes.</summary>
    private static void Cmpxchg8b(CpuCore cpu, ref Insn i)
    {
        var mr = cpu.RmwRef(cpu.OperandLinear(ref i, 8, true), 8);
        ulong mv = cpu.Read(mr);
        ulong cmp = (cpu.GetReg(Reg.RDX, 4) << 32) | cpu.GetReg(Reg.RAX, 4);
        bool eq = mv == cmp;
        if (eq) cpu.Write(mr, (cpu.GetReg(Reg.RCX, 4) << 32) | cpu.GetReg(Reg.RBX, 4));
        else
        {
            cpu.Write(mr, mv);
            cpu.SetReg(Reg.RAX, 4, mv & 0xFFFFFFFF);
            cpu.SetReg(Reg.RDX, 4, mv >> 32);
        }
        cpu.SetFlag(RFlags.ZF, eq);
    }

    /// <summary>CMPXCHG16B m128 (64-bit mode; #GP unless the operand is 16-byte aligned): RDX:RAX against m128, new value RCX:RBX.</summary>
    private static void Cmpxchg16b(CpuCore cpu, ref Insn i)
    {
        ulong ea = cpu.EffectiveAddress(ref i);
        if ((ea & 15) != 0) cpu.Gp();
        ulong la = cpu.Linear(i.Seg, ea, 16, true);
        var lo = cpu.RmwRef(la, 8);          // 16-byte aligned: both halves are in one page
        var hi = cpu.RmwRef(la + 8, 8);
        ulong ml = cpu.Read(lo), mh = cpu.Read(hi);
        bool eq = ml == cpu.R[Reg.RAX] && mh == cpu.R[Reg.RDX];
        if (eq) { cpu.Write(lo, cpu.R[Reg.RBX]); cpu.Write(hi, cpu.R[Reg.RCX]); }
        else
        {
            cpu.Write(lo, ml); cpu.Write(hi, mh);
            cpu.R[Reg.RAX] = ml; cpu.R[Reg.RDX] = mh;
        }
        cpu.SetFlag(RFlags.ZF, eq);
    }
}
