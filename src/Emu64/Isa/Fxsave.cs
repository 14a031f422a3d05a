using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Isa;

/// <summary>
/// FXSAVE/FXRSTOR (and the REX.W forms FXSAVE64/FXRSTOR64): the 512-byte, 16-byte-aligned image of
/// SDM vol. 1 table 10-2. MXCSR at +24, MXCSR_MASK (0xFFFF) at +28, XMM0..7 at +160 (XMM8..15 too in
/// 64-bit mode). The x87 state: FCW +0, FSW +2, the abridged tag word +4 (one bit per physical register, 1 = not
/// empty), FOP +6, FIP/FCS +8/+12 and FDP/FDS +16/+20 (with REX.W, 64-bit FIP +8 and FDP +16), ST(0)..ST(7) at
/// +32 + 16i (ten bytes each). Bytes 416..511 are not written. Neither instruction checks for pending x87 exceptions. XMM and MXCSR are saved and restored whatever CR4.OSFXSR says (the SDM
/// leaves that implementation-dependent; recent Intel cores do the same). #NM when CR0.TS or CR0.EM is set; #GP(0) when misaligned or when
/// FXRSTOR would set a reserved MXCSR bit. Both instructions check the whole area before changing anything.
/// </summary>
public static unsafe class Fxsave
{
    internal static void Register()
    {
        HandlerTable.Map(&Save, Code.Fxsave_m512byte, Code.Fxsave64_m512byte);
        HandlerTable.Map(&Restore, Code.Fxrstor_m512byte, Code.Fxrstor64_m512byte);
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
        Span<byte> x87 = stackalloc byte[160];
        X87Image(cpu, ref i, x87);
        for (int k = 0; k < 160; k += 8)
            if (k != 24) cpu.WriteLinear(la + (ulong)k, 8, BitConverter.ToUInt64(x87[k..]));
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
        Span<byte> x87 = stackalloc byte[160];
        Span<UInt128> xmm = stackalloc UInt128[16];
        for (int k = 0; k < 160; k += 8) BitConverter.TryWriteBytes(x87[k..], cpu.ReadLinear(la + (ulong)k, 8));
        for (int r = 0; r < n; r++)
            xmm[r] = new UInt128(cpu.ReadLinear(la + 168 + (ulong)(16 * r), 8), cpu.ReadLinear(la + 160 + (ulong)(16 * r), 8));
        // everything is read: commit
        LoadX87(cpu, ref i, x87);
        cpu.Mxcsr = mxcsr;
        for (int r = 0; r < n; r++) cpu.Xmm[r] = xmm[r];
    }

    private static bool Rex64(ref Insn i) => i.Code is Code.Fxsave64_m512byte or Code.Fxrstor64_m512byte;

    /// <summary>Bytes 0..159 of the image from the x87 state.</summary>
    private static void X87Image(CpuCore cpu, ref Insn i, Span<byte> d)
    {
        var f = cpu.Fpu;
        BitConverter.TryWriteBytes(d, f.Fcw);
        BitConverter.TryWriteBytes(d[2..], f.Fsw);
        d[4] = f.Valid;
        BitConverter.TryWriteBytes(d[6..], (ushort)(f.Fop & 0x7FF));
        if (Rex64(ref i))
        {
            BitConverter.TryWriteBytes(d[8..], f.Fip);
            BitConverter.TryWriteBytes(d[16..], f.Fdp);
        }
        else
        {
            BitConverter.TryWriteBytes(d[8..], (uint)f.Fip);
            BitConverter.TryWriteBytes(d[12..], f.Fcs);
            BitConverter.TryWriteBytes(d[16..], (uint)f.Fdp);
            BitConverter.TryWriteBytes(d[20..], f.Fds);
        }
        for (int k = 0; k < 8; k++) X87Control.PutReg(f, k, d[(32 + 16 * k)..]);
    }

    private static void LoadX87(CpuCore cpu, ref Insn i, ReadOnlySpan<byte> s)
    {
        var f = cpu.Fpu;
        f.Fcw = BitConverter.ToUInt16(s);
        f.Fsw = BitConverter.ToUInt16(s[2..]);
        f.Valid = s[4];
        f.Fop = (ushort)(BitConverter.ToUInt16(s[6..]) & 0x7FF);
        if (Rex64(ref i))
        {
            f.Fip = BitConverter.ToUInt64(s[8..]); f.Fdp = BitConverter.ToUInt64(s[16..]);
            f.Fcs = f.Fds = 0;
        }
        else
        {
            f.Fip = BitConverter.ToUInt32(s[8..]); f.Fcs = BitConverter.ToUInt16(s[12..]);
            f.Fdp = BitConverter.ToUInt32(s[16..]); f.Fds = BitConverter.ToUInt16(s[20..]);
        }
        for (int k = 0; k < 8; k++) X87Control.GetReg(f, k, s[(32 + 16 * k)..]);
        f.UpdateSummary();
    }
}
