using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Isa;

/// <summary>
/// Integer instructions that exist only outside 64-bit mode (the decoder reports them invalid there):
/// the decimal adjusts DAA DAS AAA AAS AAM AAD, SALC, BOUND, ARPL; plus WAIT, the reserved and hint
/// NOP space (0F 0D, 0F 18..0F 1F), and the deliberately undefined UD0/UD1/UD2, which raise #UD
/// without being counted as unimplemented. The 64-bit differential harness cannot run the 32-bit-only
/// ones natively; their undefined flags are a documented choice (docs/UNDEFINED-FLAGS.md).
/// </summary>
public static unsafe class Legacy
{
    internal static void Register()
    {
        HandlerTable.Map(Mnemonic.Daa, &Daa);
        HandlerTable.Map(Mnemonic.Das, &Das);
        HandlerTable.Map(Mnemonic.Aaa, &Aaa);
        HandlerTable.Map(Mnemonic.Aas, &Aas);
        HandlerTable.Map(Mnemonic.Aam, &Aam);
        HandlerTable.Map(Mnemonic.Aad, &Aad);
        HandlerTable.Map(Mnemonic.Salc, &Salc);
        HandlerTable.Map(Mnemonic.Bound, &Bound);
        HandlerTable.Map(Mnemonic.Arpl, &Arpl);
        HandlerTable.Map(Mnemonic.Wait, &Wait);
        HandlerTable.Map(&Hint, Mnemonic.Reservednop, Mnemonic.Prefetch);
        HandlerTable.Map(&Hint, Code.Prefetchreserved4_m8, Code.Prefetchreserved5_m8,
            Code.Prefetchreserved6_m8, Code.Prefetchreserved7_m8);
        HandlerTable.Map(&Undefined, Mnemonic.Ud0, Mnemonic.Ud1, Mnemonic.Ud2);
    }

    private static ulong Al(CpuCore cpu) => cpu.GetReg(Reg.RAX, 1);

    /// <summary>SF, ZF, PF from AL; the given CF and AF; OF (undefined) cleared.</summary>
    private static void SetFromAl(CpuCore cpu, bool cf, bool af)
    {
        ulong al = Al(cpu);
        cpu.SetStatus(cf, CpuCore.Parity(al), af, al == 0, (al & 0x80) != 0, false);
    }

    /// <summary>DAA: decimal adjust AL after a packed-BCD addition (SDM pseudo-code).</summary>
    private static void Daa(CpuCore cpu, ref Insn i)
    {
        ulong al = Al(cpu), oldAl = al;
        bool oldCf = cpu.Cf, cf = false, af = false;
        if ((al & 0xF) > 9 || cpu.Af) { cf = oldCf || al + 6 > 0xFF; al = (al + 6) & 0xFF; af = true; }
        if (oldAl > 0x99 || oldCf) { al = (al + 0x60) & 0xFF; cf = true; }
        cpu.SetReg(Reg.RAX, 1, al);
        SetFromAl(cpu, cf, af);
    }

    /// <summary>DAS: decimal adjust AL after a packed-BCD subtraction.</summary>
    private static void Das(CpuCore cpu, ref Insn i)
    {
        ulong al = Al(cpu), oldAl = al;
        bool oldCf = cpu.Cf, cf = false, af = false;
        if ((al & 0xF) > 9 || cpu.Af) { cf = oldCf || al < 6; al = (al - 6) & 0xFF; af = true; }
        if (oldAl > 0x99 || oldCf) { al = (al - 0x60) & 0xFF; cf = true; }
        cpu.SetReg(Reg.RAX, 1, al);
        SetFromAl(cpu, cf, af);
    }

    /// <summary>AAA: ASCII adjust after addition; CF = AF = the adjustment was made.</summary>
    private static void Aaa(CpuCore cpu, ref Insn i)
    {
        ulong ax = cpu.GetReg(Reg.RAX, 2);
        bool adj = (ax & 0xF) > 9 || cpu.Af;
        if (adj) ax = (ax + 0x106) & 0xFFFF;
        cpu.SetReg(Reg.RAX, 2, ax & 0xFF0F);
        SetFromAl(cpu, adj, adj);
    }

    /// <summary>AAS: ASCII adjust after subtraction.</summary>
    private static void Aas(CpuCore cpu, ref Insn i)
    {
        ulong ax = cpu.GetReg(Reg.RAX, 2);
        bool adj = (ax & 0xF) > 9 || cpu.Af;
        if (adj) { ax = (ax - 6) & 0xFFFF; ax = (((ax >> 8) - 1) & 0xFF) << 8 | (ax & 0xFF); }   // AX - 6 borrows from AH (host-measured)
        cpu.SetReg(Reg.RAX, 2, ax & 0xFF0F);
        SetFromAl(cpu, adj, adj);
    }

    /// <summary>AAM imm8: AH = AL / imm8, AL = AL mod imm8; #DE when imm8 is 0.</summary>
    private static void Aam(CpuCore cpu, ref Insn i)
    {
        ulong b = i.Imm & 0xFF;
        if (b == 0) cpu.Fault(Vec.DE);
        ulong al = Al(cpu);
        cpu.SetReg(Reg.RAX, 2, (al / b) << 8 | (al % b));
        SetFromAl(cpu, false, false);
    }

    /// <summary>
    /// AAD imm8: AL = (AL + AH × imm8) mod 256, AH = 0. The undefined CF, AF and OF are those of the
    /// 8-bit addition AL + low byte of (AH × imm8), as the host leaves them.
    /// </summary>
    private static void Aad(CpuCore cpu, ref Insn i)
    {
        ulong ax = cpu.GetReg(Reg.RAX, 2);
        ulong a = ax & 0xFF, b = ((ax >> 8) * (i.Imm & 0xFF)) & 0xFF, sum = a + b, al = sum & 0xFF;
        cpu.SetReg(Reg.RAX, 2, al);
        bool of = ((a ^ al) & (b ^ al) & 0x80) != 0;
        cpu.SetStatus(sum > 0xFF, CpuCore.Parity(al), ((a ^ b ^ al) & 0x10) != 0, al == 0, (al & 0x80) != 0, of);
    }

    /// <summary>SALC (undocumented, D6): AL = CF ? FF : 00, flags unchanged.</summary>
    private static void Salc(CpuCore cpu, ref Insn i) => cpu.SetReg(Reg.RAX, 1, cpu.Cf ? 0xFFUL : 0);

    /// <summary>BOUND r, m: #BR unless lower ≤ r ≤ upper (signed; the bounds pair is at m).</summary>
    private static void Bound(CpuCore cpu, ref Insn i)
    {
        int size = i.Size;
        int sh = 64 - size * 8;
        ulong ea = cpu.EffectiveAddress(ref i);
        long lower = (long)(cpu.ReadMem(i.Seg, ea, size) << sh) >> sh;
        long upper = (long)(cpu.ReadMem(i.Seg, (ea + (ulong)size) & InsnBuilder.Mask(i.AddrSize), size) << sh) >> sh;
        long v = (long)(cpu.GetReg(i.R0, size) << sh) >> sh;
        if (v < lower || v > upper) cpu.Fault(Vec.BR);
    }

    /// <summary>ARPL r/m16, r16: raise the destination selector's RPL to the source's; ZF says whether it changed.</summary>
    private static void Arpl(CpuCore cpu, ref Insn i)
    {
        if (cpu.RealSegments) cpu.Ud();                          // not recognized in real-address or virtual-8086 mode
        ulong src = cpu.GetReg(i.R1, 2);
        if (i.K0 == Opnd.Reg)
        {
            ulong d = cpu.GetReg(i.R0, 2);
            bool raise = (d & 3) < (src & 3);
            if (raise) cpu.SetReg(i.R0, 2, (d & ~3UL) | (src & 3));
            cpu.SetFlag(RFlags.ZF, raise);
            return;
        }
        var mr = cpu.RmwRef(cpu.OperandLinear(ref i, 2, true), 2);
        ulong mv = cpu.Read(mr);
        bool up = (mv & 3) < (src & 3);
        cpu.Write(mr, up ? (mv & ~3UL) | (src & 3) : mv);
        cpu.SetFlag(RFlags.ZF, up);
    }

    /// <summary>WAIT/FWAIT: #NM when CR0.MP and CR0.TS are both set (there is no x87 to wait for).</summary>
    private static void Wait(CpuCore cpu, ref Insn i)
    {
        if ((cpu.CR0 & (Cr0.Mp | Cr0.Ts)) == (Cr0.Mp | Cr0.Ts)) cpu.Fault(Vec.NM);
    }

    /// <summary>Reserved-NOP and prefetch-hint space: no architectural effect (the memory operand is not accessed).</summary>
    private static void Hint(CpuCore cpu, ref Insn i) { }

    private static void Undefined(CpuCore cpu, ref Insn i) => cpu.Ud();
}
