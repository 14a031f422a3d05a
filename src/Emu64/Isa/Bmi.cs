using System.Numerics;
using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Isa;

/// <summary>
/// Bit-manipulation extensions: BMI1 (ANDN BEXTR BLSI BLSMSK BLSR), BMI2 (BZHI MULX PDEP PEXT RORX SARX
/// SHLX SHRX) and ADX (ADCX ADOX). The BMI forms are VEX-encoded with 32- or 64-bit operands (VEX.W);
/// the three-operand forms take their second source from VEX.vvvv. BMI2 instructions and MULX leave the
/// flags alone; ADCX/ADOX change only CF or OF, so two carry chains can run interleaved.
/// </summary>
public static unsafe class Bmi
{
    internal static void Register()
    {
        HandlerTable.Map(&Andn, Code.VEX_Andn_r32_r32_rm32, Code.VEX_Andn_r64_r64_rm64);
        HandlerTable.Map(&Bextr, Code.VEX_Bextr_r32_rm32_r32, Code.VEX_Bextr_r64_rm64_r64);
        HandlerTable.Map(&Blsi, Code.VEX_Blsi_r32_rm32, Code.VEX_Blsi_r64_rm64);
        HandlerTable.Map(&Blsmsk, Code.VEX_Blsmsk_r32_rm32, Code.VEX_Blsmsk_r64_rm64);
        HandlerTable.Map(&Blsr, Code.VEX_Blsr_r32_rm32, Code.VEX_Blsr_r64_rm64);
        HandlerTable.Map(&Bzhi, Code.VEX_Bzhi_r32_rm32_r32, Code.VEX_Bzhi_r64_rm64_r64);
        HandlerTable.Map(&Mulx, Code.VEX_Mulx_r32_r32_rm32, Code.VEX_Mulx_r64_r64_rm64);
        HandlerTable.Map(&Pdep, Code.VEX_Pdep_r32_r32_rm32, Code.VEX_Pdep_r64_r64_rm64);
        HandlerTable.Map(&Pext, Code.VEX_Pext_r32_r32_rm32, Code.VEX_Pext_r64_r64_rm64);
        HandlerTable.Map(&Rorx, Code.VEX_Rorx_r32_rm32_imm8, Code.VEX_Rorx_r64_rm64_imm8);
        HandlerTable.Map(&Sarx, Code.VEX_Sarx_r32_rm32_r32, Code.VEX_Sarx_r64_rm64_r64);
        HandlerTable.Map(&Shlx, Code.VEX_Shlx_r32_rm32_r32, Code.VEX_Shlx_r64_rm64_r64);
        HandlerTable.Map(&Shrx, Code.VEX_Shrx_r32_rm32_r32, Code.VEX_Shrx_r64_rm64_r64);
        HandlerTable.Map(Mnemonic.Adcx, &Adcx);
        HandlerTable.Map(Mnemonic.Adox, &Adox);
    }

    /// <summary>Operand 1 or 2 (register or the one memory operand), at the instruction's size.</summary>
    private static ulong Src(CpuCore cpu, ref Insn i, int n)
    {
        var k = n == 1 ? i.K1 : i.K2;
        int size = i.Size;
        if (k == Opnd.Reg) return cpu.GetReg(n == 1 ? i.R1 : i.R2, size);
        return cpu.ReadOperandMem(ref i, size);
    }

    private static bool Sign(ulong v, int size) => ((v >> (size * 8 - 1)) & 1) != 0;

    /// <summary>BMI1 flags: ZF/SF from the result, OF=0, the given CF; AF and PF (undefined) cleared as the host does.</summary>
    private static void SetBmiFlags(CpuCore cpu, ulong r, int size, bool cf)
        => cpu.SetStatus(cf, false, false, r == 0, Sign(r, size), false);

    private static void Andn(CpuCore cpu, ref Insn i)
    {
        ulong r = ~Src(cpu, ref i, 1) & Src(cpu, ref i, 2) & InsnBuilder.Mask(i.Size);
        cpu.SetReg(i.R0, i.Size, r);
        SetBmiFlags(cpu, r, i.Size, false);
    }

    private static void Bextr(CpuCore cpu, ref Insn i)
    {
        int bits = i.Size * 8;
        ulong src = Src(cpu, ref i, 1), ctl = Src(cpu, ref i, 2);
        int start = (int)(ctl & 0xFF), len = (int)((ctl >> 8) & 0xFF);
        ulong r = start >= bits ? 0 : src >> start;
        if (len < 64) r &= (1UL << len) - 1;
        cpu.SetReg(i.R0, i.Size, r);
        SetBmiFlags(cpu, r, i.Size, false);
        cpu.SetFlag(RFlags.SF, false);
    }

    private static void Blsi(CpuCore cpu, ref Insn i)
    {
        ulong s = Src(cpu, ref i, 1);
        ulong r = (0 - s) & s;
        cpu.SetReg(i.R0, i.Size, r);
        SetBmiFlags(cpu, r, i.Size, s != 0);
    }

    private static void Blsmsk(CpuCore cpu, ref Insn i)
    {
        ulong s = Src(cpu, ref i, 1);
        ulong r = ((s - 1) ^ s) & InsnBuilder.Mask(i.Size);
        cpu.SetReg(i.R0, i.Size, r);
        SetBmiFlags(cpu, r, i.Size, s == 0);
    }

    private static void Blsr(CpuCore cpu, ref Insn i)
    {
        ulong s = Src(cpu, ref i, 1);
        ulong r = (s - 1) & s;
        cpu.SetReg(i.R0, i.Size, r);
        SetBmiFlags(cpu, r, i.Size, s == 0);
    }

    private static void Bzhi(CpuCore cpu, ref Insn i)
    {
        int bits = i.Size * 8;
        ulong src = Src(cpu, ref i, 1);
        int n = (int)(Src(cpu, ref i, 2) & 0xFF);
        ulong r = n < bits ? src & ((1UL << n) - 1) : src;
        cpu.SetReg(i.R0, i.Size, r);
        SetBmiFlags(cpu, r, i.Size, n > bits - 1);
    }

    /// <summary>MULX hi, lo, r/m: unsigned EDX/RDX × r/m, no flags. lo is written first, so hi wins when they are one register.</summary>
    private static void Mulx(CpuCore cpu, ref Insn i)
    {
        int size = i.Size;
        ulong a = cpu.GetReg(Reg.RDX, size), b = Src(cpu, ref i, 2);
        ulong hi, lo;
        if (size == 8) hi = Math.BigMul(a, b, out lo);
        else { ulong p = a * b; lo = p & 0xFFFFFFFF; hi = p >> 32; }
        cpu.SetReg(i.R1, size, lo);
        cpu.SetReg(i.R0, size, hi);
    }

    private static void Pdep(CpuCore cpu, ref Insn i)
    {
        ulong src = Src(cpu, ref i, 1), mask = Src(cpu, ref i, 2);
        ulong r = 0;
        for (ulong bit = 1; mask != 0; bit <<= 1)
        {
            ulong low = mask & (0 - mask);
            if ((src & bit) != 0) r |= low;
            mask &= mask - 1;
        }
        cpu.SetReg(i.R0, i.Size, r);
    }

    private static void Pext(CpuCore cpu, ref Insn i)
    {
        ulong src = Src(cpu, ref i, 1), mask = Src(cpu, ref i, 2);
        ulong r = 0;
        for (ulong bit = 1; mask != 0; bit <<= 1)
        {
            ulong low = mask & (0 - mask);
            if ((src & low) != 0) r |= bit;
            mask &= mask - 1;
        }
        cpu.SetReg(i.R0, i.Size, r);
    }

    private static void Rorx(CpuCore cpu, ref Insn i)
    {
        int bits = i.Size * 8;
        ulong s = Src(cpu, ref i, 1);
        int c = (int)(i.Imm & (ulong)(bits - 1));
        ulong r = c == 0 ? s : (s >> c | s << (bits - c)) & InsnBuilder.Mask(i.Size);
        cpu.SetReg(i.R0, i.Size, r);
    }

    private static int XCount(CpuCore cpu, ref Insn i) => (int)(Src(cpu, ref i, 2) & (i.Size == 8 ? 63UL : 31UL));

    private static void Sarx(CpuCore cpu, ref Insn i)
    {
        int sh = 64 - i.Size * 8;
        long s = (long)(Src(cpu, ref i, 1) << sh) >> sh;
        cpu.SetReg(i.R0, i.Size, (ulong)(s >> XCount(cpu, ref i)));
    }

    private static void Shlx(CpuCore cpu, ref Insn i) => cpu.SetReg(i.R0, i.Size, Src(cpu, ref i, 1) << XCount(cpu, ref i));
    private static void Shrx(CpuCore cpu, ref Insn i) => cpu.SetReg(i.R0, i.Size, Src(cpu, ref i, 1) >> XCount(cpu, ref i));

    /// <summary>ADCX/ADOX r, r/m: unsigned add with carry-in and carry-out through CF (ADCX) or OF (ADOX) only.</summary>
    private static void AddCarryFlag(CpuCore cpu, ref Insn i, ulong flag)
    {
        int size = i.Size;
        ulong a = cpu.GetReg(i.R0, size), b = cpu.ReadOp1(ref i);
        cpu.Materialize();
        ulong c = (cpu.Rflags & flag) != 0 ? 1UL : 0;
        ulong r = (a + b + c) & InsnBuilder.Mask(size);
        bool carry = size == 8 ? r < a || (c != 0 && r == a) : ((a + b + c) >> (size * 8)) != 0;
        cpu.SetReg(i.R0, size, r);
        cpu.SetFlag(flag, carry);
    }

    private static void Adcx(CpuCore cpu, ref Insn i) => AddCarryFlag(cpu, ref i, RFlags.CF);
    private static void Adox(CpuCore cpu, ref Insn i) => AddCarryFlag(cpu, ref i, RFlags.OF);
}
