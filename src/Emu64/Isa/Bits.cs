using System.Runtime.CompilerServices;
using System.Numerics;
using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Isa;

/// <summary>Bit tests and scans: BT BTS BTR BTC, BSF BSR, POPCNT LZCNT TZCNT.</summary>
[NoRipRead]
public static unsafe class Bits
{
    internal static void Register()
    {
        HandlerTable.Map(Mnemonic.Bt, &Bt);
        HandlerTable.Map(Mnemonic.Bts, &Bts);
        HandlerTable.Map(Mnemonic.Btr, &Btr);
        HandlerTable.Map(Mnemonic.Btc, &Btc);
        HandlerTable.Map(Mnemonic.Bsf, &Bsf);
        HandlerTable.Map(Mnemonic.Bsr, &Bsr);
        HandlerTable.Map(Mnemonic.Popcnt, &Popcnt);
        HandlerTable.Map(Mnemonic.Lzcnt, &Lzcnt);
        HandlerTable.Map(Mnemonic.Tzcnt, &Tzcnt);
    }

    /// <summary>Sets only CF (BT*: the other flags are left as they were).</summary>
    private static void SetCf(CpuCore cpu, bool cf) => cpu.SetFlag(RFlags.CF, cf);

    private enum BtOp { Test, Set, Reset, Complement }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void BitOp(CpuCore cpu, ref Insn i, BtOp op)
    {
        int size = i.Size;
        int bits = size * 8;
        ulong off = i.K1 == Opnd.Imm ? i.Imm & (ulong)(bits - 1) : cpu.GetReg(i.R1, size);
        if (i.K0 == Opnd.Reg)
        {
            int b = (int)(off & (ulong)(bits - 1));
            ulong v = cpu.GetReg(i.R0, size);
            bool cf = ((v >> b) & 1) != 0;
            if (op != BtOp.Test) cpu.SetReg(i.R0, size, Apply(v, b, op));
            SetCf(cpu, cf);
            return;
        }
        // memory with a register offset addresses any bit relative to the operand (signed)
        ulong ea = cpu.EffectiveAddress(ref i);
        int bit;
        if (i.K1 == Opnd.Reg)
        {
            long s = (long)(off << (64 - bits)) >> (64 - bits);
            ea += (ulong)((s >> BitOperations.Log2((uint)bits)) * size);
            ea &= InsnBuilder.Mask(i.AddrSize);
            bit = (int)(s & (bits - 1));
        }
        else bit = (int)off;
        if (op == BtOp.Test)
        {
            ulong v = cpu.ReadMem(i.Seg, ea, size);
            SetCf(cpu, ((v >> bit) & 1) != 0);
            return;
        }
        var mr = cpu.RmwRef(cpu.Linear(i.Seg, ea, size, true), size);
        ulong mv = cpu.Read(mr);
        cpu.Write(mr, Apply(mv, bit, op));
        SetCf(cpu, ((mv >> bit) & 1) != 0);
    }

    private static ulong Apply(ulong v, int b, BtOp op) => op switch
    {
        BtOp.Set => v | (1UL << b),
        BtOp.Reset => v & ~(1UL << b),
        BtOp.Complement => v ^ (1UL << b),
        _ => v,
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Bt(CpuCore cpu, ref Insn i) => BitOp(cpu, ref i, BtOp.Test);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Bts(CpuCore cpu, ref Insn i) => BitOp(cpu, ref i, BtOp.Set);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Btr(CpuCore cpu, ref Insn i) => BitOp(cpu, ref i, BtOp.Reset);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Btc(CpuCore cpu, ref Insn i) => BitOp(cpu, ref i, BtOp.Complement);

    private static void Bsf(CpuCore cpu, ref Insn i)
    {
        ulong v = cpu.ReadOp1(ref i);
        if (v == 0) { cpu.SetStatus(false, true, false, true, false, false); return; }  // destination unchanged
        int r = BitOperations.TrailingZeroCount(v);
        cpu.SetReg(i.R0, i.Size, (ulong)r);
        cpu.SetStatus(false, CpuCore.Parity((ulong)r), false, false, false, false);
    }

    private static void Bsr(CpuCore cpu, ref Insn i)
    {
        ulong v = cpu.ReadOp1(ref i);
        if (v == 0) { cpu.SetStatus(false, true, false, true, false, false); return; }
        int r = 63 - BitOperations.LeadingZeroCount(v);
        cpu.SetReg(i.R0, i.Size, (ulong)r);
        cpu.SetStatus(false, CpuCore.Parity((ulong)r), false, false, false, false);
    }

    private static void Popcnt(CpuCore cpu, ref Insn i)
    {
        ulong v = cpu.ReadOp1(ref i);
        cpu.SetReg(i.R0, i.Size, (ulong)BitOperations.PopCount(v));
        cpu.SetStatus(false, false, false, v == 0, false, false);
    }

    private static void Lzcnt(CpuCore cpu, ref Insn i)
    {
        int bits = i.Size * 8;
        ulong v = cpu.ReadOp1(ref i);
        int r = v == 0 ? bits : BitOperations.LeadingZeroCount(v) - (64 - bits);
        cpu.SetReg(i.R0, i.Size, (ulong)r);
        cpu.SetStatus(v == 0, false, false, r == 0, false, false);
    }

    private static void Tzcnt(CpuCore cpu, ref Insn i)
    {
        int bits = i.Size * 8;
        ulong v = cpu.ReadOp1(ref i);
        int r = v == 0 ? bits : BitOperations.TrailingZeroCount(v);
        cpu.SetReg(i.R0, i.Size, (ulong)r);
        cpu.SetStatus(v == 0, false, false, r == 0, false, false);
    }
}
