using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Isa;

/// <summary>
/// FXSAVE/FXRSTOR (and the REX.W forms FXSAVE64/FXRSTOR64): the 512-byte, 16-byte-aligned image of
/// SDM vol. 1 table 10-2. MXCSR at +24, MXCSR_MASK (0xFFFF) at +28, XMM0..7 at +160 (XMM8..15 too in
/// 64-bit mode). The x87/MMX fields (bytes 0..23 and 32..159) belong to a unit this CPU does not
/// implement: they hold the FNINIT state at reset and whatever the last FXRSTOR loaded, byte for byte.
/// Bytes 416..511 are not written. XMM and MXCSR are saved and restored whatever CR4.OSFXSR says (the SDM
/// leaves that implementation-dependent; recent Intel cores do the same). #NM when CR0.TS or CR0.EM is set; #GP(0) when misaligned or when
/// FXRSTOR would set a reserved MXCSR bit. Both instructions check the whole area before changing anything.
/// </summary>
public static unsafe class Fxsave
{
    internal static void Register()
    {
        HandlerTable.Map(&Save, Code.Fxsave_m512byte, Code.Fxsave64_m512byte);
        HandlerTable.Map(&Restore, Code.Fxrstor_m512byte, Code.Fxrstor64_m512byte);
        HandlerTable.Map(Code.Wait, &Wait);
    }

    /// <summary>
    /// WAIT/FWAIT: #NM when CR0.MP and CR0.TS are both set (SDM vol. 3A table 2-2); otherwise it would
    /// deliver pending unmasked x87 exceptions, and with no x87 unit there never are any.
    /// </summary>
    private static void Wait(CpuCore cpu, ref Insn i)
    {
        if ((cpu.CR0 & (Cr0.Mp | Cr0.Ts)) == (Cr0.Mp | Cr0.Ts)) cpu.Fault(Vec.NM);
    }

    private static ulong Area(CpuCore cpu, ref Insn i, bool write)
    {
        if ((cpu.CR0 & (Cr0.Ts | Cr0.Em)) != 0) cpu.Fault(Vec.NM);
        ulong la = cpu.OperandLinear(ref i, 512, write);
        if ((la & 15) != 0) cpu.Gp();
        return la;
    }

    private static int XmmCount(CpuCore cpu) => cpu.Is64 ? 16 : 8;

    private static void Save(CpuCore cpu, ref Insn i)
    {
        ulong la = Area(cpu, ref i, true);
        int end = 160 + 16 * XmmCount(cpu);
        // translate every page of the area for writing first: no partial image on a fault
        for (ulong off = 0; off < (ulong)end; off = ((la + off) | 0xFFF) + 1 - la) cpu.RmwRef(la + off, 1);
        cpu.RmwRef(la + (ulong)end - 1, 1);
        for (int k = 0; k < 160; k += 8)
            cpu.WriteLinear(la + (ulong)k, 8, BitConverter.ToUInt64(cpu.FxX87, k));
        cpu.WriteLinear(la + 24, 4, cpu.Mxcsr);
        cpu.WriteLinear(la + 28, 4, Sse.MxcsrMask);
        for (int r = 0; r < XmmCount(cpu); r++)
        {
            cpu.WriteLinear(la + 160 + (ulong)(16 * r), 8, (ulong)cpu.Xmm[r]);
            cpu.WriteLinear(la + 168 + (ulong)(16 * r), 8, (ulong)(cpu.Xmm[r] >> 64));
        }
    }

    private static void Restore(CpuCore cpu, ref Insn i)
    {
        ulong la = Area(cpu, ref i, false);
        uint mxcsr = (uint)cpu.ReadLinear(la + 24, 4);
        if ((mxcsr & ~Sse.MxcsrMask) != 0) cpu.Gp();
        int n = XmmCount(cpu);
        Span<ulong> x87 = stackalloc ulong[20];
        Span<UInt128> xmm = stackalloc UInt128[16];
        for (int k = 0; k < 20; k++) x87[k] = cpu.ReadLinear(la + (ulong)(8 * k), 8);
        for (int r = 0; r < n; r++)
            xmm[r] = new UInt128(cpu.ReadLinear(la + 168 + (ulong)(16 * r), 8), cpu.ReadLinear(la + 160 + (ulong)(16 * r), 8));
        // everything is read: commit
        for (int k = 0; k < 20; k++)
            if (k != 3) BitConverter.TryWriteBytes(cpu.FxX87.AsSpan(8 * k), x87[k]);
        cpu.Mxcsr = mxcsr;
        for (int r = 0; r < n; r++) cpu.Xmm[r] = xmm[r];
    }
}
