using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Isa;

/// <summary>
/// What every SSE/SSE2 handler shares: the availability checks of SDM vol. 3A §13.1 / vol. 2 "Exceptions
/// Type 4/5" (CR0.EM=1 or CR4.OSFXSR=0 → #UD, then CR0.TS=1 → #NM), operand access for XMM registers
/// and 16-byte memory, and the MXCSR bookkeeping that decides between a masked response and #XM/#UD.
/// </summary>
public static class Sse
{
    // MXCSR fields (SDM vol. 1 §10.2.3).
    public const uint IE = 1, DE = 2, ZE = 4, OE = 8, UE = 16, PE = 32, FlagsMask = 0x3F;
    public const uint Daz = 1 << 6, Ftz = 1 << 15, MaskShift = 7, RcShift = 13;
    /// <summary>The bits LDMXCSR/FXRSTOR accept (MXCSR_MASK as FXSAVE reports it); others #GP.</summary>
    public const uint MxcsrMask = 0xFFFF;

    /// <summary>#UD when CR0.EM=1 or CR4.OSFXSR=0, then #NM when CR0.TS=1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Check(CpuCore cpu)
    {
        if (((cpu.CR0 & (Cr0.Em | Cr0.Ts)) | (~cpu.CR4 & Cr4.Osfxsr)) != 0) CheckSlow(cpu);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void CheckSlow(CpuCore cpu)
    {
        if ((cpu.CR0 & Cr0.Em) != 0 || (cpu.CR4 & Cr4.Osfxsr) == 0) cpu.Ud();
        if ((cpu.CR0 & Cr0.Ts) != 0) cpu.Fault(Vec.NM);
    }

    // ---- XMM registers -----------------------------------------------------------------------

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ref UInt128 X(CpuCore cpu, int n) => ref cpu.Xmm[n];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ref ulong Lo(CpuCore cpu, int n) => ref Unsafe.As<UInt128, ulong>(ref cpu.Xmm[n]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ref ulong Hi(CpuCore cpu, int n) => ref Unsafe.Add(ref Unsafe.As<UInt128, ulong>(ref cpu.Xmm[n]), 1);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ref uint Dw(CpuCore cpu, int n, int k) => ref Unsafe.Add(ref Unsafe.As<UInt128, uint>(ref cpu.Xmm[n]), k);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> V(UInt128 v) => Unsafe.BitCast<UInt128, Vector128<byte>>(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static UInt128 U<T>(Vector128<T> v) => Unsafe.BitCast<Vector128<T>, UInt128>(v);

    /// <summary>Operand 1 as 128 bits: an XMM register, or 16 bytes of memory (aligned forms check alignment).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static UInt128 Src(CpuCore cpu, ref Insn i, bool aligned = true)
        => i.K1 == Opnd.Reg ? cpu.Xmm[i.R1] : cpu.Read128(ref i, aligned);

    /// <summary>The low <paramref name="size"/> bytes of operand 1 (scalar forms): register low lane or memory.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong SrcScalar(CpuCore cpu, ref Insn i, int size)
    {
        if (i.K1 == Opnd.Reg) return size == 8 ? Lo(cpu, i.R1) : Lo(cpu, i.R1) & 0xFFFFFFFF;
        return cpu.ReadOperandMem(ref i, size);
    }

    // ---- SIMD floating-point exceptions ------------------------------------------------------

    /// <summary>
    /// Ends a floating-point instruction whose lanes reported <paramref name="pre"/> (IE/DE/ZE, found before
    /// computing) and <paramref name="post"/> (OE/UE/PE) flags. Unmasked pre-computation exceptions fault
    /// with only those flags recorded; otherwise unmasked post-computation ones fault with all flags
    /// recorded (SDM vol. 1 §11.5.2). Returns normally when the result may be written.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Finish(CpuCore cpu, uint pre, uint post)
    {
        uint all = pre | post;
        if (all == 0) return;
        uint unmasked = all & ~(cpu.Mxcsr >> (int)MaskShift) & FlagsMask;
        if (unmasked != 0) Raise(cpu, pre, post);
        cpu.Mxcsr |= all;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Raise(CpuCore cpu, uint pre, uint post)
    {
        uint masks = cpu.Mxcsr >> (int)MaskShift;
        if ((pre & ~masks & FlagsMask) != 0) cpu.Mxcsr |= pre;
        else cpu.Mxcsr |= pre | post;
        if ((cpu.CR4 & Cr4.Osxmmexcpt) != 0) cpu.Fault(Vec.XM);
        cpu.Ud();
    }
}
