using System.Runtime.CompilerServices;
using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Isa;

/// <summary>
/// Shifts and rotates: SHL/SAL SHR SAR ROL ROR RCL RCR SHLD SHRD. The count is masked to 5 bits (6 for
/// 64-bit operands); a masked count of 0 changes no flags. Undefined flags follow the host (an Intel
/// Cascade Lake core), measured by the differential suite: see docs/UNDEFINED-FLAGS.md.
/// </summary>
[NoRipRead]
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
            // a masked count of 0 changes no flags, but a 32-bit destination is still written (zero-extended)
            cpu.SetReg(i.R0, size, count == 0 ? a : Compute(cpu, k, a, count, size, i.K1 == Opnd.Imm));
            return;
        }
        var mr = cpu.RmwRef(cpu.OperandLinear(ref i, size, true), size);
        ulong v = cpu.Read(mr);
        if (count == 0) return;
        cpu.Write(mr, Compute(cpu, k, v, count, size, false));
    }

    /// <summary>
    /// The shift or rotate of <paramref name="a"/> by a masked count of 1..63. OF is defined for 1-bit
    /// shifts only; for larger counts the host (Intel) reports the OF of the first 1-bit step, which is
    /// what every branch below computes (docs/UNDEFINED-FLAGS.md) — except ROL/ROR of a register by an
    /// immediate count above 1, which leave OF unchanged (<paramref name="immediate"/>). AF is cleared by shifts and left alone by rotates.
    /// </summary>
    private static ulong Compute(CpuCore cpu, Kind k, ulong a, int count, int size, bool immediate)
    {
        int bits = size * 8;
        ulong m = InsnBuilder.Mask(size);
        ulong msb = 1UL << (bits - 1);
        bool aTop = (a & msb) != 0, aNext = (a & (msb >> 1)) != 0;
        ulong r;
        bool cf;
        switch (k)
        {
            case Kind.Shl or Kind.Shr or Kind.Sar:
                if (count < bits) return ShiftBy(cpu, k, a, count, size);
                // 8- and 16-bit operands only (a masked count is below 32 or 64): every bit is shifted out. CF is the last bit
                // shifted out when the count equals the width (SHL: bit 0, SHR: the top bit) and 0 beyond it; SAR fills with
                // the sign, which is also its CF.
                r = k == Kind.Sar && aTop ? m : 0;
                cf = k switch { Kind.Shl => count == bits && (a & 1) != 0, Kind.Shr => count == bits && aTop, _ => aTop };
                cpu.SetStatusFromResult(r, size, cf, k switch { Kind.Shl => aTop ^ aNext, Kind.Shr => aTop, _ => false });
                return r;
            case Kind.Rol:
                {
                    int c = count % bits;
                    r = c == 0 ? a : ((a << c) | (a >> (bits - c))) & m;
                    SetCfOf(cpu, (r & 1) != 0, immediate && count > 1 ? cpu.Of : aTop ^ aNext);
                    return r;
                }
            case Kind.Ror:
                {
                    int c = count % bits;
                    r = c == 0 ? a : ((a >> c) | (a << (bits - c))) & m;
                    SetCfOf(cpu, (r & msb) != 0, immediate && count > 1 ? cpu.Of : aTop ^ ((a & 1) != 0));
                    return r;
                }
            case Kind.Rcl:
                {
                    // rotate through CF: a (bits+1)-bit rotation; 8/16-bit counts wrap modulo 9/17
                    int c = size <= 2 ? count % (bits + 1) : count;
                    if (c == 0) return a;   // nothing moves and no flag changes
                    bool cin = cpu.Cf;
                    UInt128 cat = ((UInt128)(cin ? 1UL : 0) << bits) | a;
                    cat = (cat << c | cat >> (bits + 1 - c)) & (((UInt128)1 << (bits + 1)) - 1);
                    r = (ulong)cat & m;
                    SetCfOf(cpu, ((cat >> bits) & 1) != 0, aTop ^ aNext);
                    return r;
                }
            default:
                {
                    int c = size <= 2 ? count % (bits + 1) : count;
                    if (c == 0) return a;
                    bool cin = cpu.Cf;
                    UInt128 cat = ((UInt128)(cin ? 1UL : 0) << bits) | a;
                    cat = (cat >> c | cat << (bits + 1 - c)) & (((UInt128)1 << (bits + 1)) - 1);
                    r = (ulong)cat & m;
                    SetCfOf(cpu, ((cat >> bits) & 1) != 0, aTop ^ cin);
                    return r;
                }
        }
    }

    /// <summary>Rotates change only CF and OF.</summary>
    private static void SetCfOf(CpuCore cpu, bool cf, bool of)
    {
        cpu.Materialize();
        cpu.SetFlag(RFlags.CF, cf);
        cpu.SetFlag(RFlags.OF, of);
    }

    // ---- fast forms (chosen once at decode): SHL/SHR/SAR of a 32- or 64-bit register by an immediate count ----
    // ShiftBy (Compute's SHL/SHR/SAR) with the kind and size fixed; an immediate count on a register cannot fault.

    internal static void Specialize(ref Insn d)
    {
        if (d.Prefix != 0 || d.K0 != Opnd.Reg || d.R0 >= 16 || d.K1 != Opnd.Imm || d.Size is not (4 or 8)) return;
        bool q = d.Size == 8;
        if (HandlerTable.Is(d.Exec, Code.Shl_rm64_imm8)) d.Exec = q ? &ShlRI64 : &ShlRI32;
        else if (HandlerTable.Is(d.Exec, Code.Shr_rm64_imm8)) d.Exec = q ? &ShrRI64 : &ShrRI32;
        else if (HandlerTable.Is(d.Exec, Code.Sar_rm64_imm8)) d.Exec = q ? &SarRI64 : &SarRI32;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ShiftRI(CpuCore cpu, ref Insn i, Kind k, int size)
    {
        int count = (int)(i.Imm & (size == 8 ? 0x3FUL : 0x1FUL));
        ulong a = size == 8 ? cpu.R[i.R0] : (uint)cpu.R[i.R0];
        // a masked count of 0 changes no flags, but a 32-bit destination is still written (zero-extended)
        cpu.R[i.R0] = count == 0 ? a : ShiftBy(cpu, k, a, count, size);
    }

    /// <summary>
    /// SHL/SHR/SAR by a count of 1..bits-1 (for 32- and 64-bit operands every masked count; <see cref="Compute"/> handles the
    /// rest), small enough to inline where the kind and size are constants: the bignum and hashing loops of real code run
    /// these by the million. OF is the first 1-bit step's, as in <see cref="Compute"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong ShiftBy(CpuCore cpu, Kind k, ulong a, int count, int size)
    {
        int bits = size * 8;
        ulong m = InsnBuilder.Mask(size);
        bool aTop = ((a >> (bits - 1)) & 1) != 0;
        ulong r;
        if (k == Kind.Shl)
        {
            r = (a << count) & m;
            cpu.SetStatusFromResult(r, size, ((a >> (bits - count)) & 1) != 0, aTop ^ (((a >> (bits - 2)) & 1) != 0));
        }
        else if (k == Kind.Shr)
        {
            r = a >> count;
            cpu.SetStatusFromResult(r, size, ((a >> (count - 1)) & 1) != 0, aTop);
        }
        else
        {
            long sa = (long)(a << (64 - bits)) >> (64 - bits);
            r = (ulong)(sa >> count) & m;
            cpu.SetStatusFromResult(r, size, ((sa >> (count - 1)) & 1) != 0, false);
        }
        return r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining), RegisterOnly] private static void ShlRI64(CpuCore cpu, ref Insn i) => ShiftRI(cpu, ref i, Kind.Shl, 8);
    [MethodImpl(MethodImplOptions.AggressiveInlining), RegisterOnly] private static void ShlRI32(CpuCore cpu, ref Insn i) => ShiftRI(cpu, ref i, Kind.Shl, 4);
    [MethodImpl(MethodImplOptions.AggressiveInlining), RegisterOnly] private static void ShrRI64(CpuCore cpu, ref Insn i) => ShiftRI(cpu, ref i, Kind.Shr, 8);
    [MethodImpl(MethodImplOptions.AggressiveInlining), RegisterOnly] private static void ShrRI32(CpuCore cpu, ref Insn i) => ShiftRI(cpu, ref i, Kind.Shr, 4);
    [MethodImpl(MethodImplOptions.AggressiveInlining), RegisterOnly] private static void SarRI64(CpuCore cpu, ref Insn i) => ShiftRI(cpu, ref i, Kind.Sar, 8);
    [MethodImpl(MethodImplOptions.AggressiveInlining), RegisterOnly] private static void SarRI32(CpuCore cpu, ref Insn i) => ShiftRI(cpu, ref i, Kind.Sar, 4);

    private static void Shl(CpuCore cpu, ref Insn i) => Run(cpu, ref i, Kind.Shl);
    private static void Shr(CpuCore cpu, ref Insn i) => Run(cpu, ref i, Kind.Shr);
    private static void Sar(CpuCore cpu, ref Insn i) => Run(cpu, ref i, Kind.Sar);
    private static void Rol(CpuCore cpu, ref Insn i) => Run(cpu, ref i, Kind.Rol);
    private static void Ror(CpuCore cpu, ref Insn i) => Run(cpu, ref i, Kind.Ror);
    private static void Rcl(CpuCore cpu, ref Insn i) => Run(cpu, ref i, Kind.Rcl);
    private static void Rcr(CpuCore cpu, ref Insn i) => Run(cpu, ref i, Kind.Rcr);

    /// <summary>
    /// SHLD/SHRD dst, src, count (imm8 or CL, masked to 5 or 6 bits). For 16-bit operands a count of
    /// 17..31 is undefined; Intel shifts the 48-bit string dst:src:dst, which is what this computes.
    /// OF is that of the first 1-bit step; AF is cleared.
    /// </summary>
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
        if (count == 0)
        {
            if (i.K0 == Opnd.Reg) cpu.SetReg(i.R0, size, a);   // a 32-bit destination is zero-extended
            return;
        }
        ulong r;
        bool cf, of;
        ulong msb = 1UL << (bits - 1);
        if (size == 2)
        {
            ulong cat = (a << 32) | (src << 16) | a;             // 48 bits: dst:src:dst
            if (left) { r = ((cat << count) >> 32) & m; cf = ((cat >> (48 - count)) & 1) != 0; }
            else { r = (cat >> count) & m; cf = ((cat >> (count - 1)) & 1) != 0; }
        }
        else if (left)
        {
            r = ((a << count) | (src >> (bits - count))) & m;
            cf = ((a >> (bits - count)) & 1) != 0;
        }
        else
        {
            r = ((a >> count) | (src << (bits - count))) & m;
            cf = ((a >> (count - 1)) & 1) != 0;
        }
        of = left ? ((a & msb) != 0) ^ ((a & (msb >> 1)) != 0) : ((a & msb) != 0) ^ ((src & 1) != 0);
        cpu.SetStatusFromResult(r, size, cf, of);
        if (i.K0 == Opnd.Reg) cpu.SetReg(i.R0, size, r); else cpu.Write(mr, r);
    }

    private static void Shld(CpuCore cpu, ref Insn i) => DoubleShift(cpu, ref i, true);
    private static void Shrd(CpuCore cpu, ref Insn i) => DoubleShift(cpu, ref i, false);
}
