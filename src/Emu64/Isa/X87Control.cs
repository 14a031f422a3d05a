using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;
using static Emu64.Cpu.X87;
using static Emu64.Isa.X87Core;

namespace Emu64.Isa;

/// <summary>
/// x87 control: FNINIT, FNCLEX, FLDCW, FNSTCW, FNSTSW (m16 and AX), FNSTENV/FLDENV and FNSAVE/FRSTOR in their 14/28-byte
/// and 94/108-byte forms (protected-mode and real-mode layouts, SDM vol. 1 figures 8-9..8-12), FNOP, the 8087/287
/// leftovers that are FNOP on a 387 and later (FENI, FDISI, FSETPM), and WAIT/FWAIT. The waiting forms (FINIT,
/// FCLEX, FSTCW, FSTSW, FSTENV, FSAVE, whose 9B prefix Iced decodes with them) deliver a pending #MF first; the
/// FN forms do not. None of them changes FIP/FDP/FOP.
/// </summary>
public static unsafe class X87Control
{
    internal static void Register()
    {
        HandlerTable.Map(&Fninit, Code.Fninit);
        HandlerTable.Map(&Finit, Code.Finit);
        HandlerTable.Map(&Fnclex, Code.Fnclex);
        HandlerTable.Map(&Fclex, Code.Fclex);
        HandlerTable.Map(&Fldcw, Code.Fldcw_m2byte);
        HandlerTable.Map(&Fnstcw, Code.Fnstcw_m2byte);
        HandlerTable.Map(&Fstcw, Code.Fstcw_m2byte);
        HandlerTable.Map(&Fnstsw, Code.Fnstsw_m2byte, Code.Fnstsw_AX);
        HandlerTable.Map(&Fstsw, Code.Fstsw_m2byte, Code.Fstsw_AX);
        HandlerTable.Map(&Fnstenv, Code.Fnstenv_m14byte, Code.Fnstenv_m28byte);
        HandlerTable.Map(&Fstenv, Code.Fstenv_m14byte, Code.Fstenv_m28byte);
        HandlerTable.Map(&Fldenv, Code.Fldenv_m14byte, Code.Fldenv_m28byte);
        HandlerTable.Map(&Fnsave, Code.Fnsave_m94byte, Code.Fnsave_m108byte);
        HandlerTable.Map(&Fsave, Code.Fsave_m94byte, Code.Fsave_m108byte);
        HandlerTable.Map(&Frstor, Code.Frstor_m94byte, Code.Frstor_m108byte);
        HandlerTable.Map(&Fnop, Code.Fnop, Code.Fneni, Code.Feni, Code.Fndisi, Code.Fdisi, Code.Fnsetpm, Code.Fsetpm);
        HandlerTable.Map(Code.Wait, &Fwait);
    }

    private static void Fninit(CpuCore cpu, ref Insn i) => NoWait(cpu).Init();
    private static void Finit(CpuCore cpu, ref Insn i) => Wait(cpu).Init();
    private static void Fnclex(CpuCore cpu, ref Insn i) => Clear(NoWait(cpu));
    private static void Fclex(CpuCore cpu, ref Insn i) => Clear(Wait(cpu));
    /// <summary>FNCLEX: the exception flags, SF, ES and B are cleared; C0..C3 stay (SDM vol. 2 FCLEX).</summary>
    private static void Clear(X87 f) => f.Status &= unchecked((ushort)~(Flags | SF | ES | B));

    /// <summary>FLDCW: a control word that unmasks a set flag makes the exception pending (ES, B).</summary>
    private static void Fldcw(CpuCore cpu, ref Insn i)
    {
        var f = Wait(cpu);
        f.Fcw = (ushort)cpu.ReadOperandMem(ref i, 2);
        f.UpdateSummary();
    }

    private static void Fnstcw(CpuCore cpu, ref Insn i) => cpu.WriteMem(i.Seg, cpu.EffectiveAddress(ref i), 2, NoWait(cpu).Fcw);
    private static void Fstcw(CpuCore cpu, ref Insn i) => cpu.WriteMem(i.Seg, cpu.EffectiveAddress(ref i), 2, Wait(cpu).Fcw);
    private static void Fnstsw(CpuCore cpu, ref Insn i) => StoreSw(cpu, ref i, NoWait(cpu));
    private static void Fstsw(CpuCore cpu, ref Insn i) => StoreSw(cpu, ref i, Wait(cpu));

    private static void StoreSw(CpuCore cpu, ref Insn i, X87 f)
    {
        if (i.K0 == Opnd.Reg) cpu.SetReg(Reg.RAX, 2, f.Fsw);
        else cpu.WriteMem(i.Seg, cpu.EffectiveAddress(ref i), 2, f.Fsw);
    }

    private static void Fnop(CpuCore cpu, ref Insn i) => Begin(cpu, ref i);

    /// <summary>WAIT/FWAIT: #NM when CR0.MP and CR0.TS are both set (SDM vol. 3A table 2-2), then a pending #MF.</summary>
    private static void Fwait(CpuCore cpu, ref Insn i)
    {
        if ((cpu.CR0 & (Cr0.Mp | Cr0.Ts)) == (Cr0.Mp | Cr0.Ts)) cpu.Fault(Vec.NM);
        if ((cpu.Fpu.Status & ES) != 0 && (cpu.CR0 & Cr0.Ne) != 0) cpu.Fault(Vec.MF);
    }

    // ---- environment and full state ------------------------------------------------------

    private static bool Wide(ref Insn i) => i.Code is Code.Fnstenv_m28byte or Code.Fstenv_m28byte or Code.Fldenv_m28byte
        or Code.Fnsave_m108byte or Code.Fsave_m108byte or Code.Frstor_m108byte;

    private static void Fnstenv(CpuCore cpu, ref Insn i) => StoreEnv(cpu, ref i, NoWait(cpu));
    private static void Fstenv(CpuCore cpu, ref Insn i) => StoreEnv(cpu, ref i, Wait(cpu));
    private static void Fnsave(CpuCore cpu, ref Insn i) => Save(cpu, ref i, NoWait(cpu));
    private static void Fsave(CpuCore cpu, ref Insn i) => Save(cpu, ref i, Wait(cpu));

    /// <summary>FNSTENV: stores the environment, then masks every exception (SDM vol. 2 FSTENV).</summary>
    private static void StoreEnv(CpuCore cpu, ref Insn i, X87 f)
    {
        bool wide = Wide(ref i);
        ulong la = cpu.OperandLinear(ref i, wide ? 28 : 14, true);
        Span<byte> img = stackalloc byte[28];
        EnvImage(cpu, f, wide, img);
        WriteBytes(cpu, la, img[..(wide ? 28 : 14)]);
        f.Fcw |= Flags;
        f.UpdateSummary();
    }

    /// <summary>FNSAVE: environment, then ST(0)..ST(7) (10 bytes each), then FNINIT.</summary>
    private static void Save(CpuCore cpu, ref Insn i, X87 f)
    {
        bool wide = Wide(ref i);
        int env = wide ? 28 : 14;
        ulong la = cpu.OperandLinear(ref i, env + 80, true);
        Span<byte> img = stackalloc byte[108];
        EnvImage(cpu, f, wide, img);
        for (int k = 0; k < 8; k++) PutReg(f, k, img[(env + 10 * k)..]);
        WriteBytes(cpu, la, img[..(env + 80)]);
        f.Init();
    }

    private static void Fldenv(CpuCore cpu, ref Insn i)
    {
        var f = NoWait(cpu);
        bool wide = Wide(ref i);
        ulong la = cpu.OperandLinear(ref i, wide ? 28 : 14, false);
        Span<byte> img = stackalloc byte[28];
        ReadBytes(cpu, la, img[..(wide ? 28 : 14)]);
        LoadEnv(cpu, f, wide, img);
    }

    private static void Frstor(CpuCore cpu, ref Insn i)
    {
        var f = NoWait(cpu);
        bool wide = Wide(ref i);
        int env = wide ? 28 : 14;
        ulong la = cpu.OperandLinear(ref i, env + 80, false);
        Span<byte> img = stackalloc byte[108];
        ReadBytes(cpu, la, img[..(env + 80)]);
        LoadEnv(cpu, f, wide, img);
        for (int k = 0; k < 8; k++) GetReg(f, k, img[(env + 10 * k)..]);
    }

    /// <summary>ST(k) as ten bytes.</summary>
    internal static void PutReg(X87 f, int k, Span<byte> d)
    {
        int p = f.Phys(k);
        BitConverter.TryWriteBytes(d, f.Sig[p]);
        BitConverter.TryWriteBytes(d[8..], f.Se[p]);
    }

    /// <summary>Ten bytes into ST(k) (its tag unchanged).</summary>
    internal static void GetReg(X87 f, int k, ReadOnlySpan<byte> s)
    {
        int p = f.Phys(k);
        f.Sig[p] = BitConverter.ToUInt64(s);
        f.Se[p] = BitConverter.ToUInt16(s[8..]);
    }

    private static bool RealLayout(CpuCore cpu) => cpu.Mode == CpuMode.Real || (cpu.Rflags & RFlags.VM) != 0;

    /// <summary>The 14- or 28-byte environment: protected-mode layout (FIP/FDP offsets with selectors, FOP beside FCS) or real-mode layout (20/32-bit linear pointers with FOP).</summary>
    private static void EnvImage(CpuCore cpu, X87 f, bool wide, Span<byte> d)
    {
        var slots = new uint[7];
        void Put(int slot, uint v) => slots[slot] = v;
        Put(0, 0xFFFF0000u | f.Fcw);
        Put(1, 0xFFFF0000u | f.Fsw);
        Put(2, 0xFFFF0000u | f.TagWord());
        if (!RealLayout(cpu))
        {
            Put(3, (uint)f.Fip);
            Put(4, f.Fcs | ((uint)(f.Fop & 0x7FF) << 16));
            Put(5, (uint)f.Fdp);
            Put(6, 0xFFFF0000u | f.Fds);
        }
        else
        {
            uint ip = (uint)(f.Fip + ((ulong)f.Fcs << 4)), dp = (uint)(f.Fdp + ((ulong)f.Fds << 4));
            Put(3, 0xFFFF0000u | (ip & 0xFFFF));
            Put(4, ((ip >> 16) << 12) | (uint)(f.Fop & 0x7FF));
            Put(5, 0xFFFF0000u | (dp & 0xFFFF));
            Put(6, (dp >> 16) << 12);
        }
        for (int k = 0; k < 7; k++)
            if (wide) BitConverter.TryWriteBytes(d[(4 * k)..], slots[k]); else BitConverter.TryWriteBytes(d[(2 * k)..], (ushort)slots[k]);
    }

    private static void LoadEnv(CpuCore cpu, X87 f, bool wide, ReadOnlySpan<byte> s)
    {
        var slots = new uint[7];
        for (int k = 0; k < 7; k++) slots[k] = wide ? BitConverter.ToUInt32(s[(4 * k)..]) : BitConverter.ToUInt16(s[(2 * k)..]);
        uint Get(int slot) => slots[slot];
        f.Fcw = (ushort)Get(0);
        f.Fsw = (ushort)Get(1);
        f.SetTagWord((ushort)Get(2));
        if (!RealLayout(cpu))
        {
            f.Fip = Get(3);
            f.Fcs = (ushort)Get(4);
            f.Fop = wide ? (ushort)((Get(4) >> 16) & 0x7FF) : (ushort)0;
            f.Fdp = Get(5);
            f.Fds = (ushort)Get(6);
        }
        else
        {
            f.Fip = (Get(3) & 0xFFFF) | ((Get(4) >> 12) << 16);
            f.Fop = (ushort)(Get(4) & 0x7FF);
            f.Fdp = (Get(5) & 0xFFFF) | ((Get(6) >> 12) << 16);
            f.Fcs = f.Fds = 0;
        }
        f.UpdateSummary();
    }

    /// <summary>Stores bytes after translating the whole range for writing (no partial image on a fault).</summary>
    internal static void WriteBytes(CpuCore cpu, ulong la, ReadOnlySpan<byte> b)
    {
        for (ulong off = 0; off < (ulong)b.Length; off = ((la + off) | 0xFFF) + 1 - la) cpu.RmwRef(la + off, 1);
        cpu.RmwRef(la + (ulong)b.Length - 1, 1);
        for (int k = 0; k < b.Length; k++) cpu.WriteLinear(la + (ulong)k, 1, b[k]);
    }

    internal static void ReadBytes(CpuCore cpu, ulong la, Span<byte> b)
    {
        for (int k = 0; k < b.Length; k++) b[k] = (byte)cpu.ReadLinear(la + (ulong)k, 1);
    }
}
