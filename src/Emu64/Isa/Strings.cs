using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Isa;

/// <summary>
/// String instructions MOVS STOS LODS CMPS SCAS INS OUTS, with REP/REPE/REPNE. A repeated instruction
/// runs at most <see cref="Chunk"/> iterations per execution and then re-executes itself (RIP stays on
/// it), so interrupts are taken between chunks and a huge RCX cannot stall the machine. Each chunk counts
/// as one retired instruction. Every iteration commits RSI/RDI/RCX, so a fault mid-way is precise.
/// </summary>
public static unsafe class Strings
{
    public const int Chunk = 4096;

    internal static void Register()
    {
        HandlerTable.Map(&Movs, Code.Movsb_m8_m8, Code.Movsw_m16_m16, Code.Movsd_m32_m32, Code.Movsq_m64_m64);
        HandlerTable.Map(&Stos, Mnemonic.Stosb, Mnemonic.Stosw, Mnemonic.Stosd, Mnemonic.Stosq);
        HandlerTable.Map(&Lods, Mnemonic.Lodsb, Mnemonic.Lodsw, Mnemonic.Lodsd, Mnemonic.Lodsq);
        HandlerTable.Map(&Cmps, Code.Cmpsb_m8_m8, Code.Cmpsw_m16_m16, Code.Cmpsd_m32_m32, Code.Cmpsq_m64_m64);
        HandlerTable.Map(&Scas, Mnemonic.Scasb, Mnemonic.Scasw, Mnemonic.Scasd, Mnemonic.Scasq);
        HandlerTable.Map(&Ins, Mnemonic.Insb, Mnemonic.Insw, Mnemonic.Insd);
        HandlerTable.Map(&Outs, Mnemonic.Outsb, Mnemonic.Outsw, Mnemonic.Outsd);
        // MOVSD/CMPSD with operands are the SSE2 forms; the string forms are the ones without ModRM.
    }


    /// <summary>
    /// Runs body once, or repeatedly under REP. body returns false to stop (REPE/REPNE condition).
    /// With a 32-bit address size in 64-bit mode, a REP whose ECX is already 0 still writes ECX (and,
    /// for MOVS/STOS, the pointer registers in <paramref name="pointers"/>) as 32-bit registers, which
    /// clears their upper halves — what the host does, found by the differential suite.
    /// </summary>
    private static void Repeat(CpuCore cpu, ref Insn i, delegate*<CpuCore, ref Insn, int, bool> body, bool conditional, int pointers = 0)
    {
        int size = StringSize(ref i);
        if ((i.Prefix & (Insn.PrefixRep | Insn.PrefixRepne)) == 0) { body(cpu, ref i, size); return; }
        int a = i.AddrSize;
        ulong m = InsnBuilder.Mask(a);
        if (a == 4 && cpu.GetReg(Reg.RCX, 4) == 0)
        {
            cpu.SetReg(Reg.RCX, 4, 0);
            if ((pointers & (1 << Reg.RSI)) != 0) cpu.SetReg(Reg.RSI, 4, cpu.GetReg(Reg.RSI, 4));
            if ((pointers & (1 << Reg.RDI)) != 0) cpu.SetReg(Reg.RDI, 4, cpu.GetReg(Reg.RDI, 4));
            return;
        }
        // One iteration per execution while single-stepping or watching data (cpu.IterateSingly): TF traps and data
        // breakpoints are reported after the iteration that caused them, RIP still on the instruction if it goes on.
        int chunk = cpu.IterateSingly ? 1 : Chunk;
        for (int n = 0; n < chunk; n++)
        {
            ulong c = cpu.GetReg(Reg.RCX, a);
            if (c == 0) return;
            bool go = body(cpu, ref i, size);
            cpu.SetReg(Reg.RCX, a, (c - 1) & m);
            if (conditional)
            {
                bool zf = cpu.Zf;
                if (i.HasRepne ? zf : !zf) return;
            }
            if (!go) return;
        }
        if (cpu.GetReg(Reg.RCX, a) != 0) { cpu.Rip = cpu.InsnRip; cpu.ExitBlock = true; }
    }

    private static int StringSize(ref Insn i) => i.Size;

    private static void Advance(CpuCore cpu, ref Insn i, int reg, int size)
    {
        int a = i.AddrSize;
        ulong v = cpu.GetReg(reg, a);
        v = cpu.Df ? v - (ulong)size : v + (ulong)size;
        cpu.SetReg(reg, a, v & InsnBuilder.Mask(a));
    }

    private static ulong Src(CpuCore cpu, ref Insn i) => cpu.GetReg(Reg.RSI, i.AddrSize);
    private static ulong Dst(CpuCore cpu, ref Insn i) => cpu.GetReg(Reg.RDI, i.AddrSize);

    private static bool MovsBody(CpuCore cpu, ref Insn i, int size)
    {
        ulong v = cpu.ReadMem(i.Seg, Src(cpu, ref i), size);
        cpu.WriteMem(Seg.ES, Dst(cpu, ref i), size, v);
        Advance(cpu, ref i, Reg.RSI, size);
        Advance(cpu, ref i, Reg.RDI, size);
        return true;
    }

    private static bool StosBody(CpuCore cpu, ref Insn i, int size)
    {
        cpu.WriteMem(Seg.ES, Dst(cpu, ref i), size, cpu.GetReg(Reg.RAX, size));
        Advance(cpu, ref i, Reg.RDI, size);
        return true;
    }

    private static bool LodsBody(CpuCore cpu, ref Insn i, int size)
    {
        cpu.SetReg(Reg.RAX, size, cpu.ReadMem(i.Seg, Src(cpu, ref i), size));
        Advance(cpu, ref i, Reg.RSI, size);
        return true;
    }

    private static bool CmpsBody(CpuCore cpu, ref Insn i, int size)
    {
        ulong a = cpu.ReadMem(i.Seg, Src(cpu, ref i), size);
        ulong b = cpu.ReadMem(Seg.ES, Dst(cpu, ref i), size);
        Alu.Compute(cpu, Alu.Op.Cmp, a, b, size);
        Advance(cpu, ref i, Reg.RSI, size);
        Advance(cpu, ref i, Reg.RDI, size);
        return true;
    }

    private static bool ScasBody(CpuCore cpu, ref Insn i, int size)
    {
        ulong b = cpu.ReadMem(Seg.ES, Dst(cpu, ref i), size);
        Alu.Compute(cpu, Alu.Op.Cmp, cpu.GetReg(Reg.RAX, size), b, size);
        Advance(cpu, ref i, Reg.RDI, size);
        return true;
    }

    private static bool InsBody(CpuCore cpu, ref Insn i, int size)
    {
        ushort port = (ushort)cpu.GetReg(Reg.RDX, 2);
        Io.CheckIoPermission(cpu, port, size);
        ulong la = cpu.Linear(Seg.ES, Dst(cpu, ref i), size, true);
        cpu.Mmu.Translate(la, Emu64.Mmu.Access.Write | (cpu.Cpl == 3 ? Emu64.Mmu.Access.User : 0)); // fault before the port read
        uint v = cpu.Io.In(port, size);
        cpu.WriteLinear(la, size, v);
        Advance(cpu, ref i, Reg.RDI, size);
        return true;
    }

    private static bool OutsBody(CpuCore cpu, ref Insn i, int size)
    {
        ushort port = (ushort)cpu.GetReg(Reg.RDX, 2);
        Io.CheckIoPermission(cpu, port, size);
        ulong v = cpu.ReadMem(i.Seg, Src(cpu, ref i), size);
        cpu.Io.Out(port, size, (uint)v);
        Advance(cpu, ref i, Reg.RSI, size);
        return true;
    }

    private static void Movs(CpuCore cpu, ref Insn i) => Repeat(cpu, ref i, &MovsBody, false, 1 << Reg.RSI | 1 << Reg.RDI);
    private static void Stos(CpuCore cpu, ref Insn i) => Repeat(cpu, ref i, &StosBody, false, 1 << Reg.RDI);
    private static void Lods(CpuCore cpu, ref Insn i) => Repeat(cpu, ref i, &LodsBody, false);
    private static void Cmps(CpuCore cpu, ref Insn i) => Repeat(cpu, ref i, &CmpsBody, true);
    private static void Scas(CpuCore cpu, ref Insn i) => Repeat(cpu, ref i, &ScasBody, true);
    private static void Ins(CpuCore cpu, ref Insn i) => Repeat(cpu, ref i, &InsBody, false);
    private static void Outs(CpuCore cpu, ref Insn i) => Repeat(cpu, ref i, &OutsBody, false);
}
