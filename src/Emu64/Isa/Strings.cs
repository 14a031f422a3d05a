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
    private static void Repeat(CpuCore cpu, ref Insn i, delegate*<CpuCore, ref Insn, int, bool> body, bool conditional, int pointers = 0,
        delegate*<CpuCore, ref Insn, int, ulong, ulong> run = null)
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
        if (chunk == 1 || !cpu.DirectData || !cpu.Is64 || a != 8 || !FastRuns) run = null;   // see MovsRun
        for (int n = 0; n < chunk; n++)
        {
            ulong c = cpu.GetReg(Reg.RCX, a);
            if (c == 0) return;
            if (run != null)
            {
                ulong k = run(cpu, ref i, size, Math.Min(c, (ulong)(chunk - n)));
                if (k != 0)
                {
                    cpu.SetReg(Reg.RCX, 8, c - k);
                    n += (int)k - 1;
                    continue;
                }
            }
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

    // ---- REP MOVS / REP STOS at memory speed ------------------------------------------------------------------
    // In 64-bit mode with a 64-bit address size, paging on and no data breakpoints (cpu.DirectData), the iterations of a
    // repeated MOVS or STOS whose elements all lie in one page (per operand) and whose fast-cache entries are live with
    // host frames (RAM; for stores RAM without decoded code) would each hit those entries and go straight to RAM: none
    // can fault, end the block or reach a device. Such a run of k iterations is done at once — the hits counted as the
    // k iterations count them (Mmu.HostData with k hits, Mmu.CopyRun), then one copy or fill, RSI/RDI/RCX advanced by k —
    // and leaves the state the k iterations leave. A run of fewer than two, or where an entry is not live (a miss, MMIO,
    // a code frame), or an element that crosses a page, goes through the ordinary body, which translates (and may fault,
    // or fill the fast entry that lets the next run go fast). The chunk (one retired instruction per 4,096 iterations)
    // is unchanged, so interrupts and instruction counts are as before.

    /// <summary>Whether REP MOVS/STOS may run in-page stretches at once (host-side switch: benchmarks compare both ways).</summary>
    internal static bool FastRuns = true;

    /// <summary>How many elements of <paramref name="size"/> bytes from <paramref name="la"/> on, in the direction of DF, lie in its page.</summary>
    private static ulong InPage(ulong la, int size, bool down)
    {
        ulong off = la & 0xFFF;
        if (off + (ulong)size > 0x1000) return 0;
        return down ? off / (ulong)size + 1 : (0x1000 - off) / (ulong)size;
    }

    /// <summary>Up to <paramref name="max"/> iterations of REP MOVS at memory speed, or 0 (see above).</summary>
    private static ulong MovsRun(CpuCore cpu, ref Insn i, int size, ulong max)
    {
        ulong si = cpu.GetReg(Reg.RSI, 8), di = cpu.GetReg(Reg.RDI, 8);
        ulong srcLa = cpu.Linear(i.Seg, si, size, false);   // source first: its fault comes first, as in the body
        ulong dstLa = cpu.Linear(Seg.ES, di, size, true);
        bool down = cpu.Df;
        ulong k = Math.Min(max, Math.Min(InPage(srcLa, size, down), InPage(dstLa, size, down)));
        if (k < 2) return 0;
        if (!cpu.Mmu.CopyRun(srcLa, dstLa, cpu.FastReadBase, cpu.FastWriteBase, cpu.PcidHash, cpu.CurrentPcid, k, out byte* src, out byte* dst)) return 0;
        long step = down ? -size : size;
        ulong bytes = k * (ulong)size;
        // The run's bytes: [p, p + bytes) going up, [p - bytes + size, p + size) going down.
        byte* s0 = down ? src - bytes + (ulong)size : src, d0 = down ? dst - bytes + (ulong)size : dst;
        if (d0 + bytes <= s0 || s0 + bytes <= d0) Buffer.MemoryCopy(s0, d0, bytes, bytes);
        else
        {
            // Overlapping: element by element in the iterations' order (a forward copy onto itself replicates a pattern).
            for (ulong n = 0; n < k; n++, src += step, dst += step)
                Emu64.Memory.PhysicalMemory.Store(dst, size, Emu64.Memory.PhysicalMemory.Load(src, size));
        }
        cpu.SetReg(Reg.RSI, 8, si + (ulong)(step * (long)k));
        cpu.SetReg(Reg.RDI, 8, di + (ulong)(step * (long)k));
        return k;
    }

    /// <summary>Up to <paramref name="max"/> iterations of REP STOS at memory speed, or 0 (see above).</summary>
    private static ulong StosRun(CpuCore cpu, ref Insn i, int size, ulong max)
    {
        ulong di = cpu.GetReg(Reg.RDI, 8);
        ulong dstLa = cpu.Linear(Seg.ES, di, size, true);
        bool down = cpu.Df;
        ulong k = Math.Min(max, InPage(dstLa, size, down));
        if (k < 2) return 0;
        byte* dst = cpu.Mmu.HostData(dstLa, cpu.FastWriteBase, cpu.PcidHash, cpu.CurrentPcid, k);   // k hits in a row on one entry
        if (dst == null) return 0;
        ulong bytes = k * (ulong)size;
        byte* d0 = down ? dst - bytes + (ulong)size : dst;
        ulong v = cpu.GetReg(Reg.RAX, size);
        switch (size)
        {
            case 1: new Span<byte>(d0, (int)bytes).Fill((byte)v); break;
            case 2: new Span<ushort>(d0, (int)k).Fill((ushort)v); break;
            case 4: new Span<uint>(d0, (int)k).Fill((uint)v); break;
            default: new Span<ulong>(d0, (int)k).Fill(v); break;
        }
        long step = down ? -size : size;
        cpu.SetReg(Reg.RDI, 8, di + (ulong)(step * (long)k));
        return k;
    }

    private static void Movs(CpuCore cpu, ref Insn i) => Repeat(cpu, ref i, &MovsBody, false, 1 << Reg.RSI | 1 << Reg.RDI, &MovsRun);
    private static void Stos(CpuCore cpu, ref Insn i) => Repeat(cpu, ref i, &StosBody, false, 1 << Reg.RDI, &StosRun);
    private static void Lods(CpuCore cpu, ref Insn i) => Repeat(cpu, ref i, &LodsBody, false);
    private static void Cmps(CpuCore cpu, ref Insn i) => Repeat(cpu, ref i, &CmpsBody, true);
    private static void Scas(CpuCore cpu, ref Insn i) => Repeat(cpu, ref i, &ScasBody, true);
    private static void Ins(CpuCore cpu, ref Insn i) => Repeat(cpu, ref i, &InsBody, false);
    private static void Outs(CpuCore cpu, ref Insn i) => Repeat(cpu, ref i, &OutsBody, false);
}
