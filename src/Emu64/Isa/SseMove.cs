using System.Numerics;
using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;
using static Emu64.Isa.Sse;

namespace Emu64.Isa;

/// <summary>
/// SSE/SSE2 data movement: full-register moves (aligned forms raise #GP(0) on a misaligned operand),
/// scalar moves (a load zeroes the rest of the register, a register move merges), half-register
/// moves, MOVD/MOVQ between XMM and general registers, the sign-mask extractions, non-temporal
/// stores (ordinary stores here: there is no cache to bypass), MASKMOVDQU and LDMXCSR/STMXCSR.
/// </summary>
public static unsafe class SseMove
{
    internal static void Register()
    {
        HandlerTable.Map(&LoadAligned, Code.Movaps_xmm_xmmm128, Code.Movapd_xmm_xmmm128, Code.Movdqa_xmm_xmmm128);
        HandlerTable.Map(&LoadUnaligned, Code.Movups_xmm_xmmm128, Code.Movupd_xmm_xmmm128, Code.Movdqu_xmm_xmmm128);
        HandlerTable.Map(&StoreAligned, Code.Movaps_xmmm128_xmm, Code.Movapd_xmmm128_xmm, Code.Movdqa_xmmm128_xmm,
            Code.Movntps_m128_xmm, Code.Movntpd_m128_xmm, Code.Movntdq_m128_xmm);
        HandlerTable.Map(&StoreUnaligned, Code.Movups_xmmm128_xmm, Code.Movupd_xmmm128_xmm, Code.Movdqu_xmmm128_xmm);
        HandlerTable.Map(Code.Movss_xmm_xmmm32, &MovssLoad);
        HandlerTable.Map(Code.Movss_xmmm32_xmm, &MovssStore);
        HandlerTable.Map(Code.Movsd_xmm_xmmm64, &MovsdLoad);
        HandlerTable.Map(Code.Movsd_xmmm64_xmm, &MovsdStore);
        HandlerTable.Map(&MovlLoad, Code.Movlps_xmm_m64, Code.Movlpd_xmm_m64);
        HandlerTable.Map(&MovlStore, Code.Movlps_m64_xmm, Code.Movlpd_m64_xmm);
        HandlerTable.Map(&MovhLoad, Code.Movhps_xmm_m64, Code.Movhpd_xmm_m64);
        HandlerTable.Map(&MovhStore, Code.Movhps_m64_xmm, Code.Movhpd_m64_xmm);
        HandlerTable.Map(Code.Movhlps_xmm_xmm, &Movhlps);
        HandlerTable.Map(Code.Movlhps_xmm_xmm, &Movlhps);
        HandlerTable.Map(&MovdToXmm, Code.Movd_xmm_rm32, Code.Movq_xmm_rm64);
        HandlerTable.Map(&MovdFromXmm, Code.Movd_rm32_xmm, Code.Movq_rm64_xmm);
        HandlerTable.Map(Code.Movq_xmm_xmmm64, &MovqLoad);
        HandlerTable.Map(Code.Movq_xmmm64_xmm, &MovqStore);
        HandlerTable.Map(&Movmskps, Code.Movmskps_r32_xmm, Code.Movmskps_r64_xmm);
        HandlerTable.Map(&Movmskpd, Code.Movmskpd_r32_xmm, Code.Movmskpd_r64_xmm);
        HandlerTable.Map(&Pmovmskb, Code.Pmovmskb_r32_xmm, Code.Pmovmskb_r64_xmm);
        HandlerTable.Map(&Movnti, Code.Movnti_m32_r32, Code.Movnti_m64_r64);
        HandlerTable.Map(&Maskmovdqu, Code.Maskmovdqu_rDI_xmm_xmm);
        HandlerTable.Map(Code.Ldmxcsr_m32, &Ldmxcsr);
        HandlerTable.Map(Code.Stmxcsr_m32, &Stmxcsr);
    }

    private static void LoadAligned(CpuCore cpu, ref Insn i) { Check(cpu); cpu.Xmm[i.R0] = Src(cpu, ref i, true); }
    private static void LoadUnaligned(CpuCore cpu, ref Insn i) { Check(cpu); cpu.Xmm[i.R0] = Src(cpu, ref i, false); }

    private static void StoreAligned(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        if (i.K0 == Opnd.Reg) cpu.Xmm[i.R0] = cpu.Xmm[i.R1];
        else cpu.Write128(ref i, cpu.Xmm[i.R1], true);
    }

    private static void StoreUnaligned(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        if (i.K0 == Opnd.Reg) cpu.Xmm[i.R0] = cpu.Xmm[i.R1];
        else cpu.Write128(ref i, cpu.Xmm[i.R1], false);
    }

    private static void MovssLoad(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        if (i.K1 == Opnd.Reg) Dw(cpu, i.R0, 0) = Dw(cpu, i.R1, 0);
        else cpu.Xmm[i.R0] = cpu.ReadOperandMem(ref i, 4);
    }

    private static void MovssStore(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        if (i.K0 == Opnd.Reg) Dw(cpu, i.R0, 0) = Dw(cpu, i.R1, 0);
        else cpu.WriteLinear(cpu.OperandLinear(ref i, 4, true), 4, Dw(cpu, i.R1, 0));
    }

    private static void MovsdLoad(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        if (i.K1 == Opnd.Reg) Lo(cpu, i.R0) = Lo(cpu, i.R1);
        else cpu.Xmm[i.R0] = cpu.ReadOperandMem(ref i, 8);
    }

    private static void MovsdStore(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        if (i.K0 == Opnd.Reg) Lo(cpu, i.R0) = Lo(cpu, i.R1);
        else cpu.WriteLinear(cpu.OperandLinear(ref i, 8, true), 8, Lo(cpu, i.R1));
    }

    private static void MovlLoad(CpuCore cpu, ref Insn i) { Check(cpu); Lo(cpu, i.R0) = cpu.ReadOperandMem(ref i, 8); }
    private static void MovhLoad(CpuCore cpu, ref Insn i) { Check(cpu); Hi(cpu, i.R0) = cpu.ReadOperandMem(ref i, 8); }
    private static void MovlStore(CpuCore cpu, ref Insn i) { Check(cpu); cpu.WriteLinear(cpu.OperandLinear(ref i, 8, true), 8, Lo(cpu, i.R1)); }
    private static void MovhStore(CpuCore cpu, ref Insn i) { Check(cpu); cpu.WriteLinear(cpu.OperandLinear(ref i, 8, true), 8, Hi(cpu, i.R1)); }
    private static void Movhlps(CpuCore cpu, ref Insn i) { Check(cpu); Lo(cpu, i.R0) = Hi(cpu, i.R1); }
    private static void Movlhps(CpuCore cpu, ref Insn i) { Check(cpu); Hi(cpu, i.R0) = Lo(cpu, i.R1); }

    /// <summary>MOVD/MOVQ xmm, r/m32|64: zero-extends into the whole register.</summary>
    private static void MovdToXmm(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        int size = i.Size1;
        cpu.Xmm[i.R0] = i.K1 == Opnd.Reg ? cpu.GetReg(i.R1, size) : cpu.ReadOperandMem(ref i, size);
    }

    /// <summary>MOVD/MOVQ r/m32|64, xmm.</summary>
    private static void MovdFromXmm(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        int size = i.Size;
        ulong v = size == 8 ? Lo(cpu, i.R1) : Dw(cpu, i.R1, 0);
        if (i.K0 == Opnd.Reg) cpu.SetReg(i.R0, size, v);
        else cpu.WriteLinear(cpu.OperandLinear(ref i, size, true), size, v);
    }

    /// <summary>MOVQ xmm, xmm/m64 (F3 0F 7E): the low quadword, upper quadword zeroed.</summary>
    private static void MovqLoad(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        cpu.Xmm[i.R0] = SrcScalar(cpu, ref i, 8);
    }

    /// <summary>MOVQ xmm/m64, xmm (66 0F D6): to a register the upper quadword is zeroed.</summary>
    private static void MovqStore(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        if (i.K0 == Opnd.Reg) cpu.Xmm[i.R0] = Lo(cpu, i.R1);
        else cpu.WriteLinear(cpu.OperandLinear(ref i, 8, true), 8, Lo(cpu, i.R1));
    }

    private static void Movmskps(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        UInt128 x = cpu.Xmm[i.R1];
        ulong m = 0;
        for (int k = 0; k < 4; k++) m |= ((ulong)(x >> (32 * k + 31)) & 1UL) << k;
        cpu.SetReg(i.R0, i.Size, m);
    }

    private static void Movmskpd(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        cpu.SetReg(i.R0, i.Size, (Lo(cpu, i.R1) >> 63) | ((Hi(cpu, i.R1) >> 63) << 1));
    }

    private static void Pmovmskb(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        ulong m = 0, lo = Lo(cpu, i.R1), hi = Hi(cpu, i.R1);
        for (int k = 0; k < 8; k++)
        {
            m |= ((lo >> (8 * k + 7)) & 1) << k;
            m |= ((hi >> (8 * k + 7)) & 1) << (k + 8);
        }
        cpu.SetReg(i.R0, i.Size, m);
    }

    /// <summary>MOVNTI m32/m64, r: a plain store (SSE2, not subject to CR4.OSFXSR).</summary>
    private static void Movnti(CpuCore cpu, ref Insn i)
        => cpu.WriteLinear(cpu.OperandLinear(ref i, i.Size, true), i.Size, cpu.GetReg(i.R1, i.Size));

    /// <summary>
    /// MASKMOVDQU: stores the bytes of xmm1 whose mask byte in xmm2 has bit 7 set to DS:[rDI]. The whole
    /// 16-byte range is checked for writing first, so a fault leaves memory unchanged.
    /// </summary>
    private static void Maskmovdqu(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        UInt128 data = cpu.Xmm[i.R1], mask = cpu.Xmm[i.R2];
        ulong di = cpu.R[Reg.RDI] & InsnBuilder.Mask(i.AddrSize);
        var mr = cpu.RmwRef(cpu.Linear(i.Seg, di, 16, true), 16);
        for (int b = 0; b < 16; b++)
            if (((mask >> (8 * b + 7)) & 1) != 0)
                cpu.Mem.Write(b < mr.First ? mr.Pa0 + (ulong)b : mr.Pa1 + (ulong)(b - mr.First), 1, (ulong)(data >> (8 * b)) & 0xFF);
    }

    private static void Ldmxcsr(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        uint v = (uint)cpu.ReadOperandMem(ref i, 4);
        if ((v & ~MxcsrMask) != 0) cpu.Gp();
        cpu.Mxcsr = v;
    }

    private static void Stmxcsr(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        cpu.WriteLinear(cpu.OperandLinear(ref i, 4, true), 4, cpu.Mxcsr);
    }
}
