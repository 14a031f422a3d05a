using System.Runtime.CompilerServices;
using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Isa;

/// <summary>
/// MUL, IMUL (one, two and three operands), DIV, IDIV. CF=OF report a significant upper half; of the
/// undefined flags Intel leaves SF and PF from the low half and clears ZF and AF. DIV/IDIV leave every
/// flag unchanged (all undefined; the host keeps them) and raise #DE on a zero divisor or a quotient
/// that does not fit, leaving all state unchanged.
/// </summary>
[NoRipRead]
public static unsafe class MulDiv
{
    internal static void Register()
    {
        HandlerTable.Map(Mnemonic.Mul, &Mul);
        HandlerTable.Map(Mnemonic.Imul, &Imul);
        HandlerTable.Map(Mnemonic.Div, &Div);
        HandlerTable.Map(Mnemonic.Idiv, &Idiv);
    }

    private static long SignExtend(ulong v, int size) => (long)(v << (64 - size * 8)) >> (64 - size * 8);

    /// <summary>CF = OF = a significant upper half. Undefined: Intel leaves SF and PF from the low half, ZF and AF clear.</summary>
    private static void SetMulFlags(CpuCore cpu, ulong low, int size, bool overflow)
        => cpu.SetStatus(overflow, CpuCore.Parity(low), false, false, ((low >> (size * 8 - 1)) & 1) != 0, overflow);

    private static void Mul(CpuCore cpu, ref Insn i)
    {
        int size = i.Size;
        ulong src = cpu.ReadOp0(ref i);
        ulong a = cpu.GetReg(Reg.RAX, size);
        if (size == 8)
        {
            ulong hi = Math.BigMul(a, src, out ulong lo);
            cpu.R[Reg.RAX] = lo; cpu.R[Reg.RDX] = hi;
            SetMulFlags(cpu, lo, 8, hi != 0);
            return;
        }
        ulong p = a * src;
        int bits = size * 8;
        ulong lowv = p & InsnBuilder.Mask(size), highv = p >> bits;
        if (size == 1) cpu.SetReg(Reg.RAX, 2, p);
        else { cpu.SetReg(Reg.RAX, size, lowv); cpu.SetReg(Reg.RDX, size, highv); }
        SetMulFlags(cpu, lowv, size, highv != 0);
    }

    private static void Imul(CpuCore cpu, ref Insn i)
    {
        int size = i.Size;
        if (i.K1 == Opnd.None)
        {
            long src = SignExtend(cpu.ReadOp0(ref i), size);
            long a = SignExtend(cpu.GetReg(Reg.RAX, size), size);
            if (size == 8)
            {
                long hi = Math.BigMul(a, src, out long lo);
                cpu.R[Reg.RAX] = (ulong)lo; cpu.R[Reg.RDX] = (ulong)hi;
                SetMulFlags(cpu, (ulong)lo, 8, hi != (lo >> 63));
                return;
            }
            long p = a * src;
            ulong low = (ulong)p & InsnBuilder.Mask(size);
            bool ovf = SignExtend(low, size) != p;
            if (size == 1) cpu.SetReg(Reg.RAX, 2, (ulong)p);
            else { cpu.SetReg(Reg.RAX, size, low); cpu.SetReg(Reg.RDX, size, (ulong)(p >> (size * 8))); }
            SetMulFlags(cpu, low, size, ovf);
            return;
        }
        // two-operand: r = r * r/m;  three-operand: r = r/m * imm
        if (i.K2 == Opnd.Imm) cpu.SetReg(i.R0, size, Multiply(cpu, SignExtend(cpu.ReadOp1(ref i), size), SignExtend(i.Imm, size), size));
        else cpu.SetReg(i.R0, size, Multiply(cpu, SignExtend(cpu.GetReg(i.R0, size), size), SignExtend(cpu.ReadOp1(ref i), size), size));
    }

    /// <summary>The low <paramref name="size"/> bytes of x * y for the two- and three-operand IMUL, with their flags.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Multiply(CpuCore cpu, long x, long y, int size)
    {
        long rlo;
        bool overflow;
        if (size == 8)
        {
            long hi = Math.BigMul(x, y, out rlo);
            overflow = hi != (rlo >> 63);
        }
        else
        {
            long p = x * y;
            rlo = p;
            overflow = SignExtend((ulong)p & InsnBuilder.Mask(size), size) != p;
        }
        ulong res = (ulong)rlo & InsnBuilder.Mask(size);
        SetMulFlags(cpu, res, size, overflow);
        return res;
    }

    // ---- fast forms (chosen once at decode): IMUL r32/r64 with a register source, or a register and an immediate ----

    internal static void Specialize(ref Insn d)
    {
        if (d.Prefix != 0 || !HandlerTable.Is(d.Exec, Code.Imul_r64_rm64) || d.K0 != Opnd.Reg || d.R0 >= 16 || d.Size is not (4 or 8)) return;
        if (d.K1 != Opnd.Reg || d.R1 >= 16 || d.Size1 != d.Size) return;
        bool q = d.Size == 8;
        if (d.K2 == Opnd.None) d.Exec = q ? &ImulRR64 : &ImulRR32;
        else if (d.K2 == Opnd.Imm) d.Exec = q ? &ImulRRI64 : &ImulRRI32;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining), RegisterOnly]
    private static void ImulRR64(CpuCore cpu, ref Insn i) => cpu.R[i.R0] = Multiply(cpu, (long)cpu.R[i.R0], (long)cpu.R[i.R1], 8);
    [MethodImpl(MethodImplOptions.AggressiveInlining), RegisterOnly]
    private static void ImulRR32(CpuCore cpu, ref Insn i) => cpu.R[i.R0] = Multiply(cpu, (int)cpu.R[i.R0], (int)cpu.R[i.R1], 4);
    [MethodImpl(MethodImplOptions.AggressiveInlining), RegisterOnly]
    private static void ImulRRI64(CpuCore cpu, ref Insn i) => cpu.R[i.R0] = Multiply(cpu, (long)cpu.R[i.R1], (long)i.Imm, 8);
    [MethodImpl(MethodImplOptions.AggressiveInlining), RegisterOnly]
    private static void ImulRRI32(CpuCore cpu, ref Insn i) => cpu.R[i.R0] = Multiply(cpu, (int)cpu.R[i.R1], (int)i.Imm, 4);

    private static void Div(CpuCore cpu, ref Insn i)
    {
        int size = i.Size;
        ulong d = cpu.ReadOp0(ref i);
        if (d == 0) cpu.Fault(Vec.DE);
        if (size == 8)
        {
            UInt128 n = ((UInt128)cpu.R[Reg.RDX] << 64) | cpu.R[Reg.RAX];
            UInt128 q = n / d;
            if (q > ulong.MaxValue) cpu.Fault(Vec.DE);
            cpu.R[Reg.RAX] = (ulong)q;
            cpu.R[Reg.RDX] = (ulong)(n % d);
            return;
        }
        int bits = size * 8;
        ulong num = size == 1 ? cpu.GetReg(Reg.RAX, 2) : (cpu.GetReg(Reg.RDX, size) << bits) | cpu.GetReg(Reg.RAX, size);
        ulong quo = num / d, rem = num % d;
        if (quo > InsnBuilder.Mask(size)) cpu.Fault(Vec.DE);
        if (size == 1) { cpu.SetReg(Reg.RAX, 1, quo); cpu.SetReg(Reg.HighByte, 1, rem); }
        else { cpu.SetReg(Reg.RAX, size, quo); cpu.SetReg(Reg.RDX, size, rem); }
    }

    private static void Idiv(CpuCore cpu, ref Insn i)
    {
        int size = i.Size;
        long d = SignExtend(cpu.ReadOp0(ref i), size);
        if (d == 0) cpu.Fault(Vec.DE);
        if (size == 8)
        {
            Int128 n = (Int128)(((UInt128)cpu.R[Reg.RDX] << 64) | cpu.R[Reg.RAX]);
            Int128 q = n / d;
            if (q > long.MaxValue || q < long.MinValue) cpu.Fault(Vec.DE);
            cpu.R[Reg.RAX] = (ulong)(long)q;
            cpu.R[Reg.RDX] = (ulong)(long)(n % d);
            return;
        }
        int bits = size * 8;
        long num = size == 1 ? SignExtend(cpu.GetReg(Reg.RAX, 2), 2)
            : SignExtend((cpu.GetReg(Reg.RDX, size) << bits) | cpu.GetReg(Reg.RAX, size), size * 2);
        long quo = num / d, rem = num % d;
        long max = (1L << (bits - 1)) - 1, min = -(1L << (bits - 1));
        if (quo > max || quo < min) cpu.Fault(Vec.DE);
        if (size == 1) { cpu.SetReg(Reg.RAX, 1, (ulong)quo); cpu.SetReg(Reg.HighByte, 1, (ulong)rem); }
        else { cpu.SetReg(Reg.RAX, size, (ulong)quo); cpu.SetReg(Reg.RDX, size, (ulong)rem); }
    }
}
