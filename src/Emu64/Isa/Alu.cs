using System.Runtime.CompilerServices;
using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Isa;

/// <summary>
/// Two-operand arithmetic and logic (ADD OR ADC SBB AND SUB XOR CMP TEST) and the one-operand group
/// (INC DEC NEG NOT). One body per operation; operand width comes from the decoded form.
/// Flags: ADD/SUB/CMP/logic/INC/DEC record lazily; ADC/SBB/NEG compute eagerly.
/// Undefined flag choice: AF after AND/OR/XOR/TEST is 0 (as Intel cores leave it).
/// </summary>
[NoRipRead]
public static unsafe class Alu
{
    internal static void Register()
    {
        HandlerTable.Map(Mnemonic.Add, &Add);
        HandlerTable.Map(Mnemonic.Or, &Or);
        HandlerTable.Map(Mnemonic.Adc, &Adc);
        HandlerTable.Map(Mnemonic.Sbb, &Sbb);
        HandlerTable.Map(Mnemonic.And, &And);
        HandlerTable.Map(Mnemonic.Sub, &Sub);
        HandlerTable.Map(Mnemonic.Xor, &Xor);
        HandlerTable.Map(Mnemonic.Cmp, &Cmp);
        HandlerTable.Map(Mnemonic.Test, &Test);
        HandlerTable.Map(Mnemonic.Inc, &Inc);
        HandlerTable.Map(Mnemonic.Dec, &Dec);
        HandlerTable.Map(Mnemonic.Neg, &Neg);
        HandlerTable.Map(Mnemonic.Not, &Not);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Mask(int size) => InsnBuilder.Mask(size);

    public enum Op { Add, Or, Adc, Sbb, And, Sub, Xor, Cmp, Test }

    /// <summary>dst = dst op src with flags; the shared body of every two-operand ALU instruction.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Binary(CpuCore cpu, ref Insn i, Op op)
    {
        int size = i.Size;
        ulong m = Mask(size);
        // operand 1 may be an immediate of a smaller encoded size, already sign-extended by the decoder
        ulong b = i.K1 == Opnd.Imm ? i.Imm & m : i.K1 == Opnd.Reg ? cpu.GetReg(i.R1, size) : cpu.ReadOperandMem(ref i, size);
        if (i.K0 == Opnd.Reg)
        {
            ulong a = cpu.GetReg(i.R0, size);
            ulong r = Compute(cpu, op, a, b, size);
            if (op != Op.Cmp && op != Op.Test) cpu.SetReg(i.R0, size, r);
            return;
        }
        if (op == Op.Cmp || op == Op.Test)
        {
            Compute(cpu, op, cpu.ReadOperandMem(ref i, size), b, size);
            return;
        }
        var mr = cpu.RmwRef(cpu.OperandLinear(ref i, size, true), size);
        ulong av = cpu.Read(mr);
        ulong rv = Compute(cpu, op, av, b, size);
        cpu.Write(mr, rv);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Compute(CpuCore cpu, Op op, ulong a, ulong b, int size)
    {
        ulong m = Mask(size);
        ulong r;
        switch (op)
        {
            case Op.Add: r = (a + b) & m; cpu.SetLazy(LazyOp.Add, size, a, b, r); return r;
            case Op.Sub: case Op.Cmp: r = (a - b) & m; cpu.SetLazy(LazyOp.Sub, size, a, b, r); return r;
            case Op.And: case Op.Test: r = a & b; cpu.SetLazy(LazyOp.Logic, size, a, b, r); return r;
            case Op.Or: r = a | b; cpu.SetLazy(LazyOp.Logic, size, a, b, r); return r;
            case Op.Xor: r = a ^ b; cpu.SetLazy(LazyOp.Logic, size, a, b, r); return r;
            case Op.Adc: return AddWithCarry(cpu, a, b, cpu.Cf ? 1UL : 0, size);
            default: return SubWithBorrow(cpu, a, b, cpu.Cf ? 1UL : 0, size);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong AddWithCarry(CpuCore cpu, ulong a, ulong b, ulong c, int size)
    {
        ulong m = Mask(size);
        ulong r = (a + b + c) & m;
        int sh = size * 8 - 1;
        bool cf = size == 8 ? (r < a || (c != 0 && r == a)) : ((a + b + c) >> (size * 8)) != 0;
        bool of = ((((a ^ r) & (b ^ r)) >> sh) & 1) != 0;
        cpu.SetStatus(cf, CpuCore.Parity(r), (((a ^ b ^ r) >> 4) & 1) != 0, r == 0, ((r >> sh) & 1) != 0, of);
        return r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong SubWithBorrow(CpuCore cpu, ulong a, ulong b, ulong c, int size)
    {
        ulong m = Mask(size);
        ulong r = (a - b - c) & m;
        int sh = size * 8 - 1;
        bool cf = a < b || (c != 0 && a == b);
        bool of = ((((a ^ b) & (a ^ r)) >> sh) & 1) != 0;
        cpu.SetStatus(cf, CpuCore.Parity(r), (((a ^ b ^ r) >> 4) & 1) != 0, r == 0, ((r >> sh) & 1) != 0, of);
        return r;
    }

    // ---- fast forms: a 32- or 64-bit general register destination, a register or immediate source ----------
    // Chosen once at decode (Specialize); the same bodies as above with the operand kinds and size fixed.

    /// <summary>Replaces the generic handler of a register-form instruction by its fixed-size fast form.</summary>
    internal static void Specialize(ref Insn d)
    {
        if (d.Prefix != 0 || d.K0 != Opnd.Reg || d.R0 >= 16 || d.Size is not (4 or 8) || d.K2 != Opnd.None) return;
        var h = d.Exec;
        bool q = d.Size == 8;
        if (d.K1 == Opnd.Reg && d.R1 < 16 && d.Size1 == d.Size)
        {
            if (HandlerTable.Is(h, Code.Add_rm64_r64)) d.Exec = q ? &AddRR64 : &AddRR32;
            else if (HandlerTable.Is(h, Code.Sub_rm64_r64)) d.Exec = q ? &SubRR64 : &SubRR32;
            else if (HandlerTable.Is(h, Code.Cmp_rm64_r64)) d.Exec = q ? &CmpRR64 : &CmpRR32;
            else if (HandlerTable.Is(h, Code.And_rm64_r64)) d.Exec = q ? &AndRR64 : &AndRR32;
            else if (HandlerTable.Is(h, Code.Or_rm64_r64)) d.Exec = q ? &OrRR64 : &OrRR32;
            else if (HandlerTable.Is(h, Code.Xor_rm64_r64)) d.Exec = q ? &XorRR64 : &XorRR32;
            else if (HandlerTable.Is(h, Code.Test_rm64_r64)) d.Exec = q ? &TestRR64 : &TestRR32;
        }
        else if (d.K1 == Opnd.Imm)
        {
            if (HandlerTable.Is(h, Code.Add_rm64_r64)) d.Exec = q ? &AddRI64 : &AddRI32;
            else if (HandlerTable.Is(h, Code.Sub_rm64_r64)) d.Exec = q ? &SubRI64 : &SubRI32;
            else if (HandlerTable.Is(h, Code.Cmp_rm64_r64)) d.Exec = q ? &CmpRI64 : &CmpRI32;
            else if (HandlerTable.Is(h, Code.And_rm64_r64)) d.Exec = q ? &AndRI64 : &AndRI32;
            else if (HandlerTable.Is(h, Code.Or_rm64_r64)) d.Exec = q ? &OrRI64 : &OrRI32;
            else if (HandlerTable.Is(h, Code.Xor_rm64_r64)) d.Exec = q ? &XorRI64 : &XorRI32;
            else if (HandlerTable.Is(h, Code.Test_rm64_r64)) d.Exec = q ? &TestRI64 : &TestRI32;
        }
        else if (d.K1 == Opnd.None)
        {
            if (HandlerTable.Is(h, Code.Inc_rm64)) d.Exec = q ? &IncR64 : &IncR32;
            else if (HandlerTable.Is(h, Code.Dec_rm64)) d.Exec = q ? &DecR64 : &DecR32;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RegReg(CpuCore cpu, ref Insn i, Op op, int size)
    {
        ulong m = Mask(size);
        ref ulong dst = ref cpu.Gpr(i.R0);
        ulong r = Compute(cpu, op, dst & m, cpu.Gpr(i.R1) & m, size);
        if (op != Op.Cmp && op != Op.Test) dst = r;   // r is masked: a 32-bit result zero-extends
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RegImm(CpuCore cpu, ref Insn i, Op op, int size)
    {
        ulong m = Mask(size);
        ref ulong dst = ref cpu.Gpr(i.R0);
        ulong r = Compute(cpu, op, dst & m, i.Imm & m, size);
        if (op != Op.Cmp && op != Op.Test) dst = r;
    }

    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void AddRR64(CpuCore cpu, ref Insn i) => RegReg(cpu, ref i, Op.Add, 8);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void AddRR32(CpuCore cpu, ref Insn i) => RegReg(cpu, ref i, Op.Add, 4);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void SubRR64(CpuCore cpu, ref Insn i) => RegReg(cpu, ref i, Op.Sub, 8);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void SubRR32(CpuCore cpu, ref Insn i) => RegReg(cpu, ref i, Op.Sub, 4);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void CmpRR64(CpuCore cpu, ref Insn i) => RegReg(cpu, ref i, Op.Cmp, 8);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void CmpRR32(CpuCore cpu, ref Insn i) => RegReg(cpu, ref i, Op.Cmp, 4);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void AndRR64(CpuCore cpu, ref Insn i) => RegReg(cpu, ref i, Op.And, 8);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void AndRR32(CpuCore cpu, ref Insn i) => RegReg(cpu, ref i, Op.And, 4);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void OrRR64(CpuCore cpu, ref Insn i) => RegReg(cpu, ref i, Op.Or, 8);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void OrRR32(CpuCore cpu, ref Insn i) => RegReg(cpu, ref i, Op.Or, 4);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void XorRR64(CpuCore cpu, ref Insn i) => RegReg(cpu, ref i, Op.Xor, 8);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void XorRR32(CpuCore cpu, ref Insn i) => RegReg(cpu, ref i, Op.Xor, 4);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void TestRR64(CpuCore cpu, ref Insn i) => RegReg(cpu, ref i, Op.Test, 8);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void TestRR32(CpuCore cpu, ref Insn i) => RegReg(cpu, ref i, Op.Test, 4);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void AddRI64(CpuCore cpu, ref Insn i) => RegImm(cpu, ref i, Op.Add, 8);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void AddRI32(CpuCore cpu, ref Insn i) => RegImm(cpu, ref i, Op.Add, 4);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void SubRI64(CpuCore cpu, ref Insn i) => RegImm(cpu, ref i, Op.Sub, 8);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void SubRI32(CpuCore cpu, ref Insn i) => RegImm(cpu, ref i, Op.Sub, 4);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void CmpRI64(CpuCore cpu, ref Insn i) => RegImm(cpu, ref i, Op.Cmp, 8);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void CmpRI32(CpuCore cpu, ref Insn i) => RegImm(cpu, ref i, Op.Cmp, 4);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void AndRI64(CpuCore cpu, ref Insn i) => RegImm(cpu, ref i, Op.And, 8);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void AndRI32(CpuCore cpu, ref Insn i) => RegImm(cpu, ref i, Op.And, 4);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void OrRI64(CpuCore cpu, ref Insn i) => RegImm(cpu, ref i, Op.Or, 8);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void OrRI32(CpuCore cpu, ref Insn i) => RegImm(cpu, ref i, Op.Or, 4);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void XorRI64(CpuCore cpu, ref Insn i) => RegImm(cpu, ref i, Op.Xor, 8);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void XorRI32(CpuCore cpu, ref Insn i) => RegImm(cpu, ref i, Op.Xor, 4);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void TestRI64(CpuCore cpu, ref Insn i) => RegImm(cpu, ref i, Op.Test, 8);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void TestRI32(CpuCore cpu, ref Insn i) => RegImm(cpu, ref i, Op.Test, 4);

    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void IncR64(CpuCore cpu, ref Insn i) { ref ulong r = ref cpu.Gpr(i.R0); r = IncBody(cpu, r, 8); }
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void IncR32(CpuCore cpu, ref Insn i) { ref ulong r = ref cpu.Gpr(i.R0); r = IncBody(cpu, r & 0xFFFFFFFF, 4); }
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void DecR64(CpuCore cpu, ref Insn i) { ref ulong r = ref cpu.Gpr(i.R0); r = DecBody(cpu, r, 8); }
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void DecR32(CpuCore cpu, ref Insn i) { ref ulong r = ref cpu.Gpr(i.R0); r = DecBody(cpu, r & 0xFFFFFFFF, 4); }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Add(CpuCore cpu, ref Insn i) => Binary(cpu, ref i, Op.Add);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Or(CpuCore cpu, ref Insn i) => Binary(cpu, ref i, Op.Or);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Adc(CpuCore cpu, ref Insn i) => Binary(cpu, ref i, Op.Adc);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Sbb(CpuCore cpu, ref Insn i) => Binary(cpu, ref i, Op.Sbb);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void And(CpuCore cpu, ref Insn i) => Binary(cpu, ref i, Op.And);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Sub(CpuCore cpu, ref Insn i) => Binary(cpu, ref i, Op.Sub);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Xor(CpuCore cpu, ref Insn i) => Binary(cpu, ref i, Op.Xor);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Cmp(CpuCore cpu, ref Insn i) => Binary(cpu, ref i, Op.Cmp);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Test(CpuCore cpu, ref Insn i) => Binary(cpu, ref i, Op.Test);

    /// <summary>Applies a one-operand read-modify-write body to operand 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Unary(CpuCore cpu, ref Insn i, delegate*<CpuCore, ulong, int, ulong> f)
    {
        int size = i.Size;
        if (i.K0 == Opnd.Reg) { cpu.SetReg(i.R0, size, f(cpu, cpu.GetReg(i.R0, size), size)); return; }
        var mr = cpu.RmwRef(cpu.OperandLinear(ref i, size, true), size);
        cpu.Write(mr, f(cpu, cpu.Read(mr), size));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong IncBody(CpuCore cpu, ulong a, int size) { ulong r = (a + 1) & Mask(size); cpu.SetLazyIncDec(LazyOp.Inc, size, a, r); return r; }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong DecBody(CpuCore cpu, ulong a, int size) { ulong r = (a - 1) & Mask(size); cpu.SetLazyIncDec(LazyOp.Dec, size, a, r); return r; }
    private static ulong NegBody(CpuCore cpu, ulong a, int size)
    {
        ulong r = (0 - a) & Mask(size);
        cpu.SetLazy(LazyOp.Sub, size, 0, a, r);  // NEG is 0 - a: CF = (a != 0), OF, AF as subtraction
        return r;
    }
    private static ulong NotBody(CpuCore cpu, ulong a, int size) => ~a & Mask(size);

    private static void Inc(CpuCore cpu, ref Insn i) => Unary(cpu, ref i, &IncBody);
    private static void Dec(CpuCore cpu, ref Insn i) => Unary(cpu, ref i, &DecBody);
    private static void Neg(CpuCore cpu, ref Insn i) => Unary(cpu, ref i, &NegBody);
    private static void Not(CpuCore cpu, ref Insn i) => Unary(cpu, ref i, &NotBody);
}
