using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Isa;

/// <summary>
/// MMX, and the SSE/SSE2 forms on MMX registers. MM0..MM7 are the significands of the x87's physical registers
/// R0..R7 (SDM vol. 1 §9.5): every MMX instruction but EMMS sets TOP to 0 and marks all eight registers valid, a
/// write sets the register's sign/exponent bits to all ones, EMMS marks all eight empty. Checks (SDM vol. 3A table
/// 22-7): CR0.EM → #UD, CR0.TS → #NM, then a pending x87 exception → #MF. The lane arithmetic is the SSE2 functions'
/// (SseInteger, SseShuffle) applied to the 64-bit operands zero-extended — or, for the packs and high unpacks, placed
/// where the 128-bit function takes its lanes from — so there is one implementation of each operation.
/// </summary>
public static unsafe class Mmx
{
    private enum Shape : byte { Lanes, Pack, UnpackHigh }
    private static readonly nint[] Funcs = new nint[Enum.GetValues<Code>().Length];
    private static readonly Shape[] Shapes = new Shape[Enum.GetValues<Code>().Length];

    internal static void Register()
    {
        foreach (Code c in Enum.GetValues<Code>())
        {
            string n = c.ToString();
            if (n.EndsWith("_mm_mmm64") || n.EndsWith("_mm_mmm32"))
            {
                string x = n[..n.IndexOf("_mm_", StringComparison.Ordinal)] + "_xmm_xmmm128";
                if (!Enum.TryParse<Code>(x, out var xc)) continue;
                nint f = SseInteger.Func(xc);
                if (f == 0) f = SseShuffle.Func(xc);
                if (f == 0) continue;
                Funcs[(int)c] = f;
                Shapes[(int)c] = n.StartsWith("Pack") ? Shape.Pack : n.StartsWith("Punpckh") ? Shape.UnpackHigh : Shape.Lanes;
                HandlerTable.Map(c, &Binary);
            }
            else if (n.EndsWith("_mm_imm8") && Enum.TryParse<Code>(n.Replace("_mm_imm8", "_xmm_imm8"), out var xi) && SseShuffle.Func(xi) != 0)
            {
                Funcs[(int)c] = SseShuffle.Func(xi);
                HandlerTable.Map(c, &ShiftImm);
            }
        }
        HandlerTable.Map(Code.Emms, &Emms);
        HandlerTable.Map(&MovToMm, Code.Movd_mm_rm32, Code.Movq_mm_rm64, Code.Movq_mm_mmm64);
        HandlerTable.Map(&MovFromMm, Code.Movd_rm32_mm, Code.Movq_rm64_mm, Code.Movq_mmm64_mm, Code.Movntq_m64_mm);
        HandlerTable.Map(Code.Pshufw_mm_mmm64_imm8, &Pshufw);
        HandlerTable.Map(&Pinsrw, Code.Pinsrw_mm_r32m16_imm8, Code.Pinsrw_mm_r64m16_imm8);
        HandlerTable.Map(&Pextrw, Code.Pextrw_r32_mm_imm8, Code.Pextrw_r64_mm_imm8);
        HandlerTable.Map(&Pmovmskb, Code.Pmovmskb_r32_mm, Code.Pmovmskb_r64_mm);
        HandlerTable.Map(Code.Maskmovq_rDI_mm_mm, &Maskmovq);
        HandlerTable.Map(Code.Movq2dq_xmm_mm, &Movq2dq);
        HandlerTable.Map(Code.Movdq2q_mm_xmm, &Movdq2q);
        HandlerTable.Map(Code.Cvtpi2ps_xmm_mmm64, &Cvtpi2ps);
        HandlerTable.Map(Code.Cvtpi2pd_xmm_mmm64, &Cvtpi2pd);
        HandlerTable.Map(&Cvtps2pi, Code.Cvtps2pi_mm_xmmm64, Code.Cvttps2pi_mm_xmmm64);
        HandlerTable.Map(&Cvtpd2pi, Code.Cvtpd2pi_mm_xmmm128, Code.Cvttpd2pi_mm_xmmm128);
    }

    /// <summary>The MMX checks and the transition into MMX state (TOP=0, all registers valid).</summary>
    private static X87 Enter(CpuCore cpu)
    {
        X87 f = Check(cpu);
        f.Top = 0;
        f.Valid = 0xFF;
        return f;
    }

    private static X87 Check(CpuCore cpu)
    {
        ulong cr0 = cpu.CR0;
        if ((cr0 & Cr0.Em) != 0) cpu.Ud();
        if ((cr0 & Cr0.Ts) != 0) cpu.Fault(Vec.NM);
        var f = cpu.Fpu;
        if ((f.Status & X87.ES) != 0 && (cr0 & Cr0.Ne) != 0) cpu.Fault(Vec.MF);
        return f;
    }

    private static void Write(X87 f, int n, ulong v) { f.Sig[n] = v; f.Se[n] = 0xFFFF; }

    /// <summary>Operand 1 as 64 bits: an MMX register or memory (m32 for the low unpacks).</summary>
    private static ulong Src(CpuCore cpu, ref Insn i) => i.K1 == Opnd.Reg ? cpu.Fpu.Sig[i.R1] : cpu.ReadOperandMem(ref i, i.Size1 == 4 ? 4 : 8);

    /// <summary>EMMS: all registers empty (the #UD/#NM/#MF checks as for any MMX instruction).</summary>
    private static void Emms(CpuCore cpu, ref Insn i)
    {
        var f = Check(cpu);
        f.Valid = 0;
        f.Top = 0;   // as measured on the host (AMD); the SDM names only the tag word
    }

    private static void Binary(CpuCore cpu, ref Insn i)
    {
        ulong b = Src(cpu, ref i);
        var f = Enter(cpu);
        ulong a = f.Sig[i.R0];
        var fn = (delegate*<UInt128, UInt128, UInt128>)Funcs[i.CodeId];
        UInt128 r = Shapes[i.CodeId] switch
        {
            Shape.Pack => fn(a | ((UInt128)b << 64), 0),
            Shape.UnpackHigh => fn((UInt128)a << 32, (UInt128)b << 32),
            _ => fn(a, b),
        };
        Write(f, i.R0, (ulong)r);
    }

    private static void ShiftImm(CpuCore cpu, ref Insn i)
    {
        var f = Enter(cpu);
        Write(f, i.R0, (ulong)((delegate*<UInt128, UInt128, UInt128>)Funcs[i.CodeId])(f.Sig[i.R0], (byte)i.Imm));
    }

    /// <summary>MOVD/MOVQ into an MMX register (MOVD zero-extends).</summary>
    private static void MovToMm(CpuCore cpu, ref Insn i)
    {
        ulong v = i.K1 == Opnd.Reg ? (i.Code == Code.Movq_mm_mmm64 ? cpu.Fpu.Sig[i.R1] : cpu.GetReg(i.R1, i.Size1))
                                   : cpu.ReadOperandMem(ref i, i.Size1);
        Write(Enter(cpu), i.R0, v);
    }

    /// <summary>MOVD/MOVQ/MOVNTQ from an MMX register (to a 32-bit register: zero-extended, as any 32-bit write).</summary>
    private static void MovFromMm(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        ulong v = cpu.Fpu.Sig[i.R1];
        if (i.K0 == Opnd.Reg && i.Code == Code.Movq_mmm64_mm) { Write(Enter(cpu), i.R0, v); return; }
        if (i.K0 == Opnd.Reg) cpu.SetReg(i.R0, i.Size, v);
        else cpu.WriteMem(i.Seg, cpu.EffectiveAddress(ref i), i.Size, i.Size == 4 ? (uint)v : v);
        Enter(cpu);
    }

    private static void Pshufw(CpuCore cpu, ref Insn i)
    {
        ulong s = Src(cpu, ref i);
        int imm = (byte)i.Imm;
        ulong r = 0;
        for (int k = 0; k < 4; k++) r |= ((s >> (16 * ((imm >> (2 * k)) & 3))) & 0xFFFF) << (16 * k);
        Write(Enter(cpu), i.R0, r);
    }

    private static void Pinsrw(CpuCore cpu, ref Insn i)
    {
        ulong w = (i.K1 == Opnd.Reg ? cpu.GetReg(i.R1, 4) : cpu.ReadOperandMem(ref i, 2)) & 0xFFFF;
        var f = Enter(cpu);
        int sh = 16 * ((byte)i.Imm & 3);
        Write(f, i.R0, (f.Sig[i.R0] & ~(0xFFFFUL << sh)) | (w << sh));
    }

    private static void Pextrw(CpuCore cpu, ref Insn i)
    {
        var f = Enter(cpu);
        cpu.SetReg(i.R0, i.Size, (f.Sig[i.R1] >> (16 * ((byte)i.Imm & 3))) & 0xFFFF);
    }

    private static void Pmovmskb(CpuCore cpu, ref Insn i)
    {
        var f = Enter(cpu);
        ulong v = f.Sig[i.R1], m = 0;
        for (int k = 0; k < 8; k++) m |= ((v >> (8 * k + 7)) & 1) << k;
        cpu.SetReg(i.R0, i.Size, m);
    }

    /// <summary>MASKMOVQ: the bytes of mm1 whose mask byte in mm2 has its top bit set, to DS:rDI (all bytes checked for writing first).</summary>
    private static void Maskmovq(CpuCore cpu, ref Insn i)
    {
        Check(cpu);
        var f = cpu.Fpu;
        ulong v = f.Sig[i.R1], mask = f.Sig[i.R2];   // operand 0 is DS:[rDI]
        ulong di = cpu.GetReg(Reg.RDI, i.AddrSize);
        int seg = i.Seg;
        if ((mask & 0x8080808080808080UL) != 0)
        {
            ulong la = cpu.Linear(seg, di, 8, true);
            cpu.RmwRef(la, 1); cpu.RmwRef(la + 7, 1);
            for (int k = 0; k < 8; k++)
                if (((mask >> (8 * k + 7)) & 1) != 0) cpu.WriteLinear(la + (ulong)k, 1, (v >> (8 * k)) & 0xFF);
        }
        Enter(cpu);
    }

    private static void Movq2dq(CpuCore cpu, ref Insn i)
    {
        Sse.Check(cpu);
        var f = Enter(cpu);
        cpu.Xmm[i.R0] = f.Sig[i.R1];
    }

    private static void Movdq2q(CpuCore cpu, ref Insn i)
    {
        Sse.Check(cpu);
        Write(Enter(cpu), i.R0, (ulong)cpu.Xmm[i.R1]);
    }

    /// <summary>CVTPI2PS xmm, mm/m64: two int32 to binary32 by MXCSR.RC into the low half (the high half kept). A memory source makes no MMX transition.</summary>
    private static void Cvtpi2ps(CpuCore cpu, ref Insn i)
    {
        Sse.Check(cpu);
        ulong s = i.K1 == Opnd.Reg ? Enter(cpu).Sig[i.R1] : (Check(cpu) is var _ ? cpu.ReadOperandMem(ref i, 8) : 0);
        var sf = new SoftFloat(cpu.Mxcsr);
        ulong lo = sf.FromInt((int)(uint)s, false), hi = sf.FromInt((int)(uint)(s >> 32), false);
        Sse.Finish(cpu, sf.Pre, sf.Post);
        Sse.Lo(cpu, i.R0) = (uint)lo | ((ulong)(uint)hi << 32);
    }

    private static void Cvtpi2pd(CpuCore cpu, ref Insn i)
    {
        Sse.Check(cpu);
        ulong s = i.K1 == Opnd.Reg ? Enter(cpu).Sig[i.R1] : (Check(cpu) is var _ ? cpu.ReadOperandMem(ref i, 8) : 0);
        var sf = new SoftFloat(cpu.Mxcsr);
        ulong lo = sf.FromInt((int)(uint)s, true), hi = sf.FromInt((int)(uint)(s >> 32), true);
        cpu.Xmm[i.R0] = new UInt128(hi, lo);
    }

    /// <summary>CVT(T)PS2PI mm, xmm/m64: two binary32 to int32 (indefinite 0x80000000 with IE when out of range).</summary>
    private static void Cvtps2pi(CpuCore cpu, ref Insn i)
    {
        Sse.Check(cpu);
        Check(cpu);
        ulong s = i.K1 == Opnd.Reg ? (ulong)cpu.Xmm[i.R1] : cpu.ReadOperandMem(ref i, 8);
        bool t = i.Code == Code.Cvttps2pi_mm_xmmm64;
        var sf = new SoftFloat(cpu.Mxcsr);
        ulong lo = sf.ToInt((uint)s, false, false, t), hi = sf.ToInt(s >> 32, false, false, t);
        Sse.Finish(cpu, sf.Pre, sf.Post);
        Write(Enter(cpu), i.R0, (uint)lo | ((ulong)(uint)hi << 32));
    }

    /// <summary>CVT(T)PD2PI mm, xmm/m128: two binary64 to int32 (m128 must be 16-byte aligned).</summary>
    private static void Cvtpd2pi(CpuCore cpu, ref Insn i)
    {
        Sse.Check(cpu);
        Check(cpu);
        UInt128 s = Sse.Src(cpu, ref i, true);
        bool t = i.Code == Code.Cvttpd2pi_mm_xmmm128;
        var sf = new SoftFloat(cpu.Mxcsr);
        ulong lo = sf.ToInt((ulong)s, true, false, t), hi = sf.ToInt((ulong)(s >> 64), true, false, t);
        Sse.Finish(cpu, sf.Pre, sf.Post);
        Write(Enter(cpu), i.R0, (uint)lo | ((ulong)(uint)hi << 32));
    }
}
