using System.Runtime.CompilerServices;
using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Isa;

/// <summary>Moves, extensions, conditional moves and sets, exchanges, flag moves and simple flag instructions.</summary>
[NoRipRead]
public static unsafe class DataMove
{
    internal static void Register()
    {
        HandlerTable.Map(Mnemonic.Mov, &Mov);
        HandlerTable.Map(&SystemInsns.MovToSreg, Code.Mov_Sreg_rm16, Code.Mov_Sreg_r32m16, Code.Mov_Sreg_r64m16);
        HandlerTable.Map(&MovFromSreg, Code.Mov_rm16_Sreg, Code.Mov_r32m16_Sreg, Code.Mov_r64m16_Sreg);
        HandlerTable.Map(&Movzx, Mnemonic.Movzx);
        HandlerTable.Map(&Movsx, Mnemonic.Movsx, Mnemonic.Movsxd);
        HandlerTable.Map(Mnemonic.Lea, &Lea);
        HandlerTable.Map(Mnemonic.Xchg, &Xchg);
        HandlerTable.Map(&Cmov, Mnemonic.Cmovo, Mnemonic.Cmovno, Mnemonic.Cmovb, Mnemonic.Cmovae, Mnemonic.Cmove, Mnemonic.Cmovne,
            Mnemonic.Cmovbe, Mnemonic.Cmova, Mnemonic.Cmovs, Mnemonic.Cmovns, Mnemonic.Cmovp, Mnemonic.Cmovnp, Mnemonic.Cmovl,
            Mnemonic.Cmovge, Mnemonic.Cmovle, Mnemonic.Cmovg);
        HandlerTable.Map(&Setcc, Mnemonic.Seto, Mnemonic.Setno, Mnemonic.Setb, Mnemonic.Setae, Mnemonic.Sete, Mnemonic.Setne,
            Mnemonic.Setbe, Mnemonic.Seta, Mnemonic.Sets, Mnemonic.Setns, Mnemonic.Setp, Mnemonic.Setnp, Mnemonic.Setl,
            Mnemonic.Setge, Mnemonic.Setle, Mnemonic.Setg);
        HandlerTable.Map(Mnemonic.Bswap, &Bswap);
        HandlerTable.Map(&Cbw, Mnemonic.Cbw, Mnemonic.Cwde, Mnemonic.Cdqe);
        HandlerTable.Map(&Cwd, Mnemonic.Cwd, Mnemonic.Cdq, Mnemonic.Cqo);
        HandlerTable.Map(&Nop, Mnemonic.Nop, Mnemonic.Pause, Mnemonic.Endbr64, Mnemonic.Endbr32, Mnemonic.Lfence,
            Mnemonic.Sfence, Mnemonic.Mfence, Mnemonic.Prefetchnta, Mnemonic.Prefetcht0, Mnemonic.Prefetcht1,
            Mnemonic.Prefetcht2, Mnemonic.Prefetchw);
        HandlerTable.Map(Mnemonic.Lahf, &Lahf);
        HandlerTable.Map(Mnemonic.Sahf, &Sahf);
        HandlerTable.Map(Mnemonic.Clc, &Clc);
        HandlerTable.Map(Mnemonic.Stc, &Stc);
        HandlerTable.Map(Mnemonic.Cmc, &Cmc);
        HandlerTable.Map(Mnemonic.Cld, &Cld);
        HandlerTable.Map(Mnemonic.Std, &Std);
        HandlerTable.Map(Mnemonic.Xlatb, &Xlat);
        HandlerTable.Map(Mnemonic.Movbe, &Movbe);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Mov(CpuCore cpu, ref Insn i) => cpu.WriteOp0(ref i, cpu.ReadOp1(ref i));

    // ---- fast forms of MOV: 32/64-bit general registers, immediates and memory, chosen once at decode ----

    internal static void Specialize(ref Insn d)
    {
        if (!HandlerTable.Is(d.Exec, Code.Mov_rm64_r64) || d.Prefix != 0 || d.Size is not (4 or 8) || d.Size1 != d.Size) return;
        bool q = d.Size == 8;
        if (d.K0 == Opnd.Reg && d.R0 < 16)
        {
            if (d.K1 == Opnd.Reg && d.R1 < 16) d.Exec = q ? &MovRR64 : &MovRR32;
            else if (d.K1 == Opnd.Imm) d.Exec = q ? &MovRI64 : &MovRI32;
            else if (d.K1 == Opnd.Mem) d.Exec = q ? &MovRM64 : &MovRM32;
        }
        else if (d.K0 == Opnd.Mem && d.K1 == Opnd.Reg && d.R1 < 16) d.Exec = q ? &MovMR64 : &MovMR32;
    }

    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void MovRR64(CpuCore cpu, ref Insn i) => cpu.Gpr(i.R0) = cpu.Gpr(i.R1);
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void MovRR32(CpuCore cpu, ref Insn i) => cpu.Gpr(i.R0) = cpu.Gpr(i.R1) & 0xFFFFFFFF;
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void MovRI64(CpuCore cpu, ref Insn i) => cpu.Gpr(i.R0) = i.Imm;
    [RegisterOnly] [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void MovRI32(CpuCore cpu, ref Insn i) => cpu.Gpr(i.R0) = i.Imm & 0xFFFFFFFF;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void MovRM64(CpuCore cpu, ref Insn i) => cpu.Gpr(i.R0) = cpu.ReadOperandMem(ref i, 8);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void MovRM32(CpuCore cpu, ref Insn i) => cpu.Gpr(i.R0) = cpu.ReadOperandMem(ref i, 4);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void MovMR64(CpuCore cpu, ref Insn i) => cpu.WriteLinear(cpu.OperandLinear(ref i, 8, true), 8, cpu.Gpr(i.R1));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void MovMR32(CpuCore cpu, ref Insn i) => cpu.WriteLinear(cpu.OperandLinear(ref i, 4, true), 4, cpu.Gpr(i.R1) & 0xFFFFFFFF);

    private static void MovFromSreg(CpuCore cpu, ref Insn i)
    {
        ulong sel = cpu.Segs[i.R1].Selector;
        if (i.K0 == Opnd.Reg) cpu.SetReg(i.R0, i.Size, sel);   // zero-extended to 32/64 bits
        else cpu.WriteLinear(cpu.OperandLinear(ref i, 2, true), 2, sel);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Movzx(CpuCore cpu, ref Insn i) => cpu.SetReg(i.R0, i.Size, cpu.ReadOp1(ref i));

    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Movsx(CpuCore cpu, ref Insn i)
    {
        ulong v = cpu.ReadOp1(ref i);
        int sh = 64 - i.Size1 * 8;
        cpu.SetReg(i.R0, i.Size, (ulong)((long)(v << sh) >> sh));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Lea(CpuCore cpu, ref Insn i) => cpu.SetReg(i.R0, i.Size, cpu.EffectiveAddress(ref i));

    private static void Xchg(CpuCore cpu, ref Insn i)
    {
        int size = i.Size;
        if (i.K0 == Opnd.Reg && i.K1 == Opnd.Reg)
        {
            ulong a = cpu.GetReg(i.R0, size), b = cpu.GetReg(i.R1, size);
            cpu.SetReg(i.R0, size, b);
            cpu.SetReg(i.R1, size, a);
            return;
        }
        // xchg with memory: operand order may be r/m, r or r, r/m
        int reg = i.K0 == Opnd.Reg ? i.R0 : i.R1;
        var mr = cpu.RmwRef(cpu.OperandLinear(ref i, size, true), size);
        ulong mv = cpu.Read(mr);
        cpu.Write(mr, cpu.GetReg(reg, size));
        cpu.SetReg(reg, size, mv);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Cmov(CpuCore cpu, ref Insn i)
    {
        ulong v = cpu.ReadOp1(ref i);   // the source is read (and may fault) whatever the condition
        if (cpu.Condition(i.Cc)) cpu.SetReg(i.R0, i.Size, v);
        else if (i.Size == 4) cpu.SetReg(i.R0, 4, cpu.GetReg(i.R0, 4));  // 32-bit CMOV zero-extends even when false
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static void Setcc(CpuCore cpu, ref Insn i) => cpu.WriteOp0(ref i, cpu.Condition(i.Cc) ? 1UL : 0UL);

    private static void Bswap(CpuCore cpu, ref Insn i)
    {
        ulong v = cpu.GetReg(i.R0, i.Size);
        ulong r = i.Size == 8 ? System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(v)
            : i.Size == 4 ? System.Buffers.Binary.BinaryPrimitives.ReverseEndianness((uint)v)
            : 0;  // BSWAP r16 is undefined; Intel cores leave 0 in the low word
        if (i.Size == 2) { cpu.SetReg(i.R0, 2, 0); return; }
        cpu.SetReg(i.R0, i.Size, r);
    }

    private static void Cbw(CpuCore cpu, ref Insn i)
    {
        int half = i.Size / 2;
        ulong v = cpu.GetReg(Reg.RAX, half);
        int sh = 64 - half * 8;
        cpu.SetReg(Reg.RAX, i.Size, (ulong)((long)(v << sh) >> sh));
    }

    private static void Cwd(CpuCore cpu, ref Insn i)
    {
        ulong v = cpu.GetReg(Reg.RAX, i.Size);
        bool neg = ((v >> (i.Size * 8 - 1)) & 1) != 0;
        cpu.SetReg(Reg.RDX, i.Size, neg ? ulong.MaxValue : 0);
    }

    private static void Nop(CpuCore cpu, ref Insn i) { }

    private static void Lahf(CpuCore cpu, ref Insn i) => cpu.SetReg(Reg.HighByte + 0, 1, cpu.Rflags & 0xD5 | 2);

    private static void Sahf(CpuCore cpu, ref Insn i)
    {
        ulong ah = cpu.GetReg(Reg.HighByte + 0, 1);
        ulong f = cpu.Rflags;
        cpu.Rflags = (f & ~0xD5UL) | (ah & 0xD5);
    }

    private static void Clc(CpuCore cpu, ref Insn i) => cpu.SetFlag(RFlags.CF, false);
    private static void Stc(CpuCore cpu, ref Insn i) => cpu.SetFlag(RFlags.CF, true);
    private static void Cmc(CpuCore cpu, ref Insn i) => cpu.SetFlag(RFlags.CF, !cpu.Cf);
    private static void Cld(CpuCore cpu, ref Insn i) => cpu.SetFlag(RFlags.DF, false);
    private static void Std(CpuCore cpu, ref Insn i) => cpu.SetFlag(RFlags.DF, true);

    private static void Xlat(CpuCore cpu, ref Insn i)
    {
        ulong ea = (cpu.GetReg(Reg.RBX, i.AddrSize) + cpu.GetReg(Reg.RAX, 1)) & InsnBuilder.Mask(i.AddrSize);
        cpu.SetReg(Reg.RAX, 1, cpu.ReadMem(i.Seg, ea, 1));
    }

    private static void Movbe(CpuCore cpu, ref Insn i)
    {
        int size = i.Size;
        ulong v = cpu.ReadOp1(ref i);
        ulong r = size switch
        {
            2 => System.Buffers.Binary.BinaryPrimitives.ReverseEndianness((ushort)v),
            4 => System.Buffers.Binary.BinaryPrimitives.ReverseEndianness((uint)v),
            _ => System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(v),
        };
        cpu.WriteOp0(ref i, r);
    }
}
