using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Isa;

/// <summary>
/// Shifts and rotates: SHL/SAL SHR SAR ROL ROR RCL RCR SHLD SHRD. The count is masked to 5 bits (6 for
/// 64-bit operands); a masked count of 0 changes no flags. Undefined flags (documented choice, as
/// measured on Intel cores): OF for counts above 1 is computed with the count-1 formula; AF is cleared.
/// </summary>
public static unsafe class Shift
{
    internal static void Register()
    {
        HandlerTable.Map(&Shl, Mnemonic.Shl, Mnemonic.Sal);
        HandlerTable.Map(Mnemonic.Shr, &Shr);
        HandlerTable.Map(Mnemonic.Sar, &Sar);
        HandlerTable.Map(Mnemonic.Rol, &Rol);
        HandlerTable.Map(Mnemonic.Ror, &Ror);
        HandlerTable.Map(Mnemonic.Rcl, &Rcl);
        HandlerTable.Map(Mnemonic.Rcr, &Rcr);
        HandlerTable.Map(Mnemonic.Shld, &Shld);
        HandlerTable.Map(Mnemonic.Shrd, &Shrd);
    }

    private enum Kind { Shl, Shr, Sar, Rol, Ror, Rcl, Rcr }

    /// <summary>The shift count: CL, an immediate, or 1 (the D0/D1 forms have the constant as operand 1).</summary>
    private static int Count(CpuCore cpu, ref Insn i)
    {
        ulong c = i.K1 == Opnd.Reg ? cpu.GetReg(Reg.RCX, 1) : i.K1 == Opnd.Imm ? i.Imm : 1;
        return (int)(c & (i.Size == 8 ? 0x3FUL : 0x1FUL));
    }

    private static void Run(CpuCore cpu, ref Insn i, Kind k)
    {
        int size = i.Size;
        int count = Count(cpu, ref i);
        if (i.K0 == Opnd.Reg)
        {
            ulong a = cpu.GetReg(i.R0, size);
            if (count == 0) return;
            cpu.SetReg(i.R0, size, Compute(cpu, k, a, count, size));
            return;
        }
        var mr = cpu.RmwRef(cpu.OperandLinear(ref i, size, true), size);
        ulong v = cpu.Read(mr);
        if (count == 0) return;
        cpu.Write(mr, Compute(cpu, k, v, count, size));
    }

    private static ulong Compute(CpuCore cpu, Kind k, ulong a, int count, int size)
    {
        int bits = size * 8;
        ulong m = InsnBuilder.Mask(size);
        ulong msb = 1UL << (bits - 1);
        ulong r;
        bool cf, of;
        switch (k)
        {
            case Kind.Shl:
                r = count >= bits ? 0 : (a << count) & m;
                cf = count <= bits && ((a >> (bits - count)) & 1) != 0;
                of = ((r & msb) != 0) ^ cf;
                cpu.SetStatusFromResult(r, size, cf, of);
                return r;
            case Kind.Shr:
                r = count >= bits ? 0 : a >> count;
                cf = count <= bits && ((a >> (count - 1)) & 1) != 0;
                of = count == 1 ? (a & msb) != 0 : (((r << 1) ^ r) & msb) != 0;
                cpu.SetStatusFromResult(r, size, cf, of);
                return r;
            case Kind.Sar:
                {
                    long sa = (long)(a << (64 - bits)) >> (64 - bits);
                    int c = Math.Min(count, bits - 1);
                    r = (ulong)(sa >> c) & m;
                    cf = ((ulong)(sa >> Math.Min(count - 1, 63)) & 1) != 0;
                    cpu.SetStatusFromResult(r, size, cf, false);
                    return r;
                }
            case Kind.Rol:
                {
                    int c = count % bits;
                    r = c == 0 ? a : ((a << c) | (a >> (bits - c))) & m;
                    cf = (r & 1) != 0;
                    of = ((r & msb) != 0) ^ cf;
                    SetCfOf(cpu, cf, of);
                    return r;
                }
            case Kind.Ror:
                {
                    int c = count % bits;
                    r = c == 0 ? a : ((a >> c) | (a << (bits - c))) & m;
                    cf = (r & msb) != 0;
                    of = ((r ^ (r << 1)) & msb) != 0;
                    SetCfOf(cpu, cf, of);
                    return r;
                }
            case Kind.Rcl:
                {
                    int c = size <= 2 ? count % (bits + 1) : count;
                    r = a; cf = cpu.Cf;
                    for (int n = 0; n < c; n++) { bool out_ = (r & msb) != 0; r = ((r << 1) | (cf ? 1UL : 0)) & m; cf = out_; }
                    of = ((r & msb) != 0) ^ cf;
                    SetCfOf(cpu, cf, c == 0 ? cpu.Of : of);
                    return r;
                }
            default:
                {
                    int c = size <= 2 ? count % (bits + 1) : count;
                    r = a; cf = cpu.Cf;
                    bool of0 = (((r & msb) != 0) ^ cf);
                    for (int n = 0; n < c; n++) { bool out_ = (r & 1) != 0; r = (r >> 1) | (cf ? msb : 0); cf = out_; }
                    of = ((r ^ (r << 1)) & msb) != 0;
                    SetCfOf(cpu, cf, c == 0 ? cpu.Of : (c == 1 ? of0 : of));
                    return r;
                }
        }
    }

    /// <summary>Rotates change only CF and OF.</summary>
    private static void SetCfOf(CpuCore cpu, bool cf, bool of)
    {
        ulong f = cpu.Rflags & ~(RFlags.CF | RFlags.OF);
        if (cf) f |= RFlags.CF;
        if (of) f |= RFlags.OF;
        cpu.Rflags = f;
    }

    private static void Shl(CpuCore cpu, ref Insn i) => Run(cpu, ref i, Kind.Shl);
    private static void Shr(CpuCore cpu, ref Insn i) => Run(cpu, ref i, Kind.Shr);
    private static void Sar(CpuCore cpu, ref Insn i) => Run(cpu, ref i, Kind.Sar);
    private static void Rol(CpuCore cpu, ref Insn i) => Run(cpu, ref i, Kind.Rol);
    private static void Ror(CpuCore cpu, ref Insn i) => Run(cpu, ref i, Kind.Ror);
    private static void Rcl(CpuCore cpu, ref Insn i) => Run(cpu, ref i, Kind.Rcl);
    private static void Rcr(CpuCore cpu, ref Insn i) => Run(cpu, ref i, Kind.Rcr);

    /// <summary>SHLD/SHRD dst, src, count: the count operand is operand 2 (imm8 or CL).</summary>
    private static void DoubleShift(CpuCore cpu, ref Insn i, bool left)
    {
        int size = i.Size;
        int bits = size * 8;
        ulong m = InsnBuilder.Mask(size);
        ulong c = i.K2 == Opnd.Reg ? cpu.GetReg(Reg.RCX, 1) : i.Imm;
        int count = (int)(c & (size == 8 ? 0x3FUL : 0x1FUL));
        ulong src = cpu.GetReg(i.R1, size);
        MemRef mr = default;
        ulong a = i.K0 == Opnd.Reg ? cpu.GetReg(i.R0, size) : cpu.Read(mr = cpu.RmwRef(cpu.OperandLinear(ref i, size, true), size));
        if (count == 0) return;
        ulong r;
        bool cf;
        if (count > bits)
        {
            // undefined result for 16-bit operands with count > 16: computed on the 32-bit concatenation, as Intel does
            UInt128 cat = left ? ((UInt128)a << bits | src) : ((UInt128)src << bits | a);
            int total = bits * 2;
            count %= total;
            cat = left ? (cat << count | cat >> (total - count)) : (cat >> count | cat << (total - count));
            r = left ? (ulong)(cat >> bits) & m : (ulong)cat & m;
            cf = left ? ((a >> (bits - (count % bits == 0 ? bits : count % bits))) & 1) != 0 : false;
        }
        else if (left)
        {
            r = count == bits ? src : ((a << count) | (src >> (bits - count))) & m;
            cf = ((a >> (bits - count)) & 1) != 0;
        }
        else
        {
            r = count == bits ? src : ((a >> count) | (src << (bits - count))) & m;
            cf = ((a >> (count - 1)) & 1) != 0;
        }
        ulong msb = 1UL << (bits - 1);
        bool of = ((r ^ a) & msb) != 0;
        cpu.SetStatusFromResult(r, size, cf, of);
        if (i.K0 == Opnd.Reg) cpu.SetReg(i.R0, size, r); else cpu.Write(mr, r);
    }

    private static void Shld(CpuCore cpu, ref Insn i) => DoubleShift(cpu, ref i, true);
    private static void Shrd(CpuCore cpu, ref Insn i) => DoubleShift(cpu, ref i, false);
}
