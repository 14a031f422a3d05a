using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Isa;

/// <summary>
/// LAR, LSL, VERR, VERW: descriptor checks that report through ZF instead of faulting (SDM vol. 2A
/// LAR, LSL; vol. 2B VERR/VERW). A selector that is null, names a missing LDT or lies past its
/// table's limit, or a descriptor whose type is not valid for the instruction or that is not visible at
/// max(CPL, RPL) (conforming code segments excepted), clears ZF and leaves the destination untouched
/// (all 64 bits, also for a 32-bit destination). Only the memory operand and the descriptor read itself
/// can fault. #UD in real-address and virtual-8086 mode. The accessed bit is never set.
/// </summary>
public static unsafe partial class SystemInsns
{
    private static void RegisterDescriptors()
    {
        HandlerTable.Map(Mnemonic.Lar, &Lar);
        HandlerTable.Map(Mnemonic.Lsl, &Lsl);
        HandlerTable.Map(Mnemonic.Verr, &Verr);
        HandlerTable.Map(Mnemonic.Verw, &Verw);
    }

    /// <summary>LAR/LSL: system types valid in legacy protected mode (bit n = type n).</summary>
    private const ushort LarLegacyTypes = 1 << 1 | 1 << 2 | 1 << 3 | 1 << 4 | 1 << 5 | 1 << 9 | 1 << 0xB | 1 << 0xC,
                         LslLegacyTypes = 1 << 1 | 1 << 2 | 1 << 3 | 1 << 9 | 1 << 0xB;

    /// <summary>In IA-32e mode (64-bit and compatibility): LDT, 64-bit TSS (available, busy), and for LAR the 64-bit call gate.</summary>
    private const ushort LarLongTypes = 1 << 2 | 1 << 9 | 1 << 0xB | 1 << 0xC,
                         LslLongTypes = 1 << 2 | 1 << 9 | 1 << 0xB;

    private static void Lar(CpuCore cpu, ref Insn i)
    {
        ushort sel = SourceSelector(cpu, ref i, 1);
        bool ok = Visible(cpu, sel, cpu.LongMode ? LarLongTypes : LarLegacyTypes, out ulong d);
        if (ok)
        {
            uint high = (uint)(d >> 32);
            // 16-bit: type, S, DPL, P; 32/64-bit: also limit 19:16, AVL, L, D/B, G (the host keeps the limit bits)
            cpu.SetReg(i.R0, i.Size, i.Size == 2 ? high & 0xFF00 : high & 0x00FFFF00);
        }
        SetZf(cpu, ok);
    }

    private static void Lsl(CpuCore cpu, ref Insn i)
    {
        ushort sel = SourceSelector(cpu, ref i, 1);
        bool ok = Visible(cpu, sel, cpu.LongMode ? LslLongTypes : LslLegacyTypes, out ulong d);
        if (ok)
        {
            uint limit = CpuCore.DescriptorToSegment(sel, d).Limit;   // byte-granular: scaled when G = 1
            cpu.SetReg(i.R0, i.Size, i.Size == 2 ? limit & 0xFFFF : limit);
        }
        SetZf(cpu, ok);
    }

    /// <summary>VERR: a code or data segment readable at max(CPL, RPL); readable conforming code needs no privilege check.</summary>
    private static void Verr(CpuCore cpu, ref Insn i)
    {
        ushort sel = SourceSelector(cpu, ref i, 0);
        bool ok = false;
        if (ReadDescriptorOrFail(cpu, sel, out ulong d))
        {
            var s = CpuCore.DescriptorToSegment(sel, d);
            if (!s.IsSystem)
            {
                bool readable = !s.IsCode || (s.Type & 2) != 0;
                bool conforming = s.IsCode && (s.Type & 4) != 0;
                ok = readable && (conforming || PrivilegeOk(cpu, sel, s.Dpl));
            }
        }
        SetZf(cpu, ok);
    }

    /// <summary>VERW: a writable data segment at max(CPL, RPL) (code segments are never writable).</summary>
    private static void Verw(CpuCore cpu, ref Insn i)
    {
        ushort sel = SourceSelector(cpu, ref i, 0);
        bool ok = false;
        if (ReadDescriptorOrFail(cpu, sel, out ulong d))
        {
            var s = CpuCore.DescriptorToSegment(sel, d);
            ok = !s.IsSystem && !s.IsCode && (s.Type & 2) != 0 && PrivilegeOk(cpu, sel, s.Dpl);
        }
        SetZf(cpu, ok);
    }

    /// <summary>The selector operand (the low 16 bits of a register, or a 16-bit memory word); #UD outside protected mode.</summary>
    private static ushort SourceSelector(CpuCore cpu, ref Insn i, int operand)
    {
        if (cpu.Mode == CpuMode.Real || (cpu.Rflags & RFlags.VM) != 0) cpu.Ud();
        var kind = operand == 0 ? i.K0 : i.K1;
        int reg = operand == 0 ? i.R0 : i.R1;
        return (ushort)(kind == Opnd.Reg ? cpu.GetReg(reg, 2) : cpu.ReadOperandMem(ref i, 2));
    }

    /// <summary>LAR/LSL's check: code and data segments, the system types in <paramref name="systemTypes"/>, visible at max(CPL, RPL) unless conforming code.</summary>
    private static bool Visible(CpuCore cpu, ushort sel, ushort systemTypes, out ulong d)
    {
        if (!ReadDescriptorOrFail(cpu, sel, out d)) return false;
        var s = CpuCore.DescriptorToSegment(sel, d);
        if (s.IsSystem && (systemTypes & (1 << s.Type)) == 0) return false;
        bool conforming = s.IsCode && (s.Type & 4) != 0;
        return conforming || PrivilegeOk(cpu, sel, s.Dpl);
    }

    private static bool PrivilegeOk(CpuCore cpu, ushort sel, int dpl) => dpl >= cpu.Cpl && dpl >= (sel & 3);

    /// <summary>
    /// Reads the descriptor a selector names, or returns false where <see cref="CpuCore.ReadDescriptor"/>
    /// would raise #GP: a null selector, an LDT selector with no LDT loaded, an index past the limit.
    /// A page fault on the table itself is still raised.
    /// </summary>
    private static bool ReadDescriptorOrFail(CpuCore cpu, ushort sel, out ulong d)
    {
        d = 0;
        if ((sel & ~3) == 0) return false;
        bool ldt = (sel & 4) != 0;
        if (ldt && (cpu.Ldtr.Selector & ~3) == 0) return false;
        uint limit = ldt ? cpu.Ldtr.Limit : cpu.Gdtr.Limit;
        uint index = (uint)(sel & ~7);
        if (index + 7 > limit) return false;
        d = cpu.ReadImplicit((ldt ? cpu.Ldtr.Base : cpu.Gdtr.Base) + index, 8);
        return true;
    }

    private static void SetZf(CpuCore cpu, bool on) => cpu.SetFlag(RFlags.ZF, on);
}
