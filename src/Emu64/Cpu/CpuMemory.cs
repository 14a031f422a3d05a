using System.Runtime.CompilerServices;
using Emu64.Mmu;

namespace Emu64.Cpu;

/// <summary>
/// Memory access for handlers: effective address → segmentation → linear address → paging
/// (<see cref="Mmu.Mmu"/>) → physical memory. An access that crosses a page boundary translates both
/// pages before it writes anything, so a fault leaves memory unchanged.
/// </summary>
public sealed partial class Cpu
{
    /// <summary>The effective address (offset) of the memory operand, wrapped to the address size.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong EffectiveAddress(ref Insn i)
    {
        ulong ea = (ulong)i.Disp;
        if (i.Base != Reg.None) ea += i.Base == Reg.Rip ? Rip : Unsafe.Add(ref R[0], i.Base);
        if (i.Index != Reg.None) ea += Unsafe.Add(ref R[0], i.Index) << i.Scale;
        return i.AddrSize == 8 ? ea : i.AddrSize == 4 ? ea & 0xFFFFFFFF : ea & 0xFFFF;
    }

    /// <summary>Linear address of the memory operand for an access of <paramref name="size"/> bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong OperandLinear(ref Insn i, int size, bool write)
        => Linear(i.Seg, EffectiveAddress(ref i), size, write);

    /// <summary>Applies segmentation: FS/GS bases and canonical checks in 64-bit mode, base and limit otherwise.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong Linear(int seg, ulong offset, int size, bool write)
    {
        if (Mode == CpuMode.Long64)
        {
            ulong la = seg >= Emu64.Cpu.Seg.FS ? offset + Segs[seg].Base : offset;
            // la and la + size - 1 both canonical: with the bias added, la lies in [0, 2^48 - size] (2^57 with LA57).
            // (An access that wraps past 2^64 - 1 passes, as with a test of each end: both ends are canonical.)
            ulong bias = CanonicalBias;
            if (la + bias > (bias << 1) - (ulong)size) NonCanonical(seg);
            return la;
        }
        return LinearLegacy(seg, offset, size, write);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private ulong LinearLegacy(int seg, ulong offset, int size, bool write)
    {
        ref Segment s = ref Segs[seg];
        if (Mode == CpuMode.Virtual8086)
        {
            // Virtual-8086 mode: no descriptor checks, but the 64 KiB limit holds (#GP(0), #SS(0) for the stack).
            if (offset + (ulong)size - 1 > s.Limit) SegFault(seg);
        }
        else if (Mode != CpuMode.Real)
        {
            if (!s.Present || (s.Selector & ~3) == 0 && seg != Emu64.Cpu.Seg.SS)
                SegFault(seg);
            int type = s.Type;
            if (write && (s.IsCode || (type & 2) == 0)) SegFault(seg);       // code or read-only data
            if (!write && s.IsCode && (type & 2) == 0) SegFault(seg);          // execute-only code
            ulong last = offset + (ulong)size - 1;
            if (!s.IsCode && (type & 4) != 0)
            {
                ulong upper = s.Db ? 0xFFFFFFFFUL : 0xFFFFUL;                  // expand-down
                if (offset <= s.Limit || last > upper) SegFault(seg);
            }
            else if (last > s.Limit) SegFault(seg);
        }
        return (s.Base + offset) & 0xFFFFFFFF;
    }

    private void SegFault(int seg) => Fault(seg == Emu64.Cpu.Seg.SS ? Vec.SS : Vec.GP, 0);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void NonCanonical(int seg) => Fault(seg == Emu64.Cpu.Seg.SS ? Vec.SS : Vec.GP, 0);

    /// <summary>Canonical: bits 63..47 (63..56 with LA57) all equal.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsCanonical(ulong la)
    {
        int shift = CanonicalShift;
        return (ulong)((long)(la << shift) >> shift) == la;
    }

    // ---- operand access ----------------------------------------------------------------------

    public ulong ReadMem(int seg, ulong offset, int size) => ReadLinear(Linear(seg, offset, size, false), size);
    public void WriteMem(int seg, ulong offset, int size, ulong v) => WriteLinear(Linear(seg, offset, size, true), size, v);

    /// <summary>Reads the memory operand of i.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong ReadOperandMem(ref Insn i, int size) => ReadLinear(OperandLinear(ref i, size, false), size);

    /// <summary>Value of operand 0 (register or memory) at size i.Size.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong ReadOp0(ref Insn i) => i.K0 == Opnd.Reg ? GetReg(i.R0, i.Size) : ReadOperandMem(ref i, i.Size);

    /// <summary>Value of operand 1: register, memory or immediate, at size i.Size1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong ReadOp1(ref Insn i) => i.K1 switch
    {
        Opnd.Reg => GetReg(i.R1, i.Size1),
        Opnd.Imm => i.Imm & InsnBuilder.Mask(i.Size1),
        _ => ReadOperandMem(ref i, i.Size1),
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteOp0(ref Insn i, ulong v)
    {
        if (i.K0 == Opnd.Reg) SetReg(i.R0, i.Size, v);
        else WriteLinear(OperandLinear(ref i, i.Size, true), i.Size, v);
    }

    // ---- linear access -----------------------------------------------------------------------


    // A data access inside one page whose fast-cache entry holds a host frame goes straight to RAM (Mmu.HostData:
    // the hit counted as the model counts it); anything else — paging off, a miss, MMIO, a store into a code
    // frame, an access that crosses a page — takes the out-of-line path through Mmu.Translate and PhysicalMemory.

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe ulong ReadLinear(ulong la, int size)
    {
        if (((la & 0xFFF) + (ulong)size) <= 0x1000 && DirectData)
        {
            byte* p = Mmu.HostData(la, FastReadBase, PcidHash, CurrentPcid);
            if (p != null) return Emu64.Memory.PhysicalMemory.Load(p, size);
        }
        return ReadLinearSlow(la, size);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe void WriteLinear(ulong la, int size, ulong v)
    {
        if (((la & 0xFFF) + (ulong)size) <= 0x1000 && DirectData)
        {
            byte* p = Mmu.HostData(la, FastWriteBase, PcidHash, CurrentPcid);
            if (p != null)
            {
                Emu64.Memory.PhysicalMemory.Store(p, size, v);
                return;
            }
        }
        WriteLinearSlow(la, size, v);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private ulong ReadLinearSlow(ulong la, int size)
    {
        if (WatchData) WatchAccess(la, size, false);
        if (((la & 0xFFF) + (ulong)size) <= 0x1000)
            return Mem.Read(Mmu.Translate(la, Access.Read | DataAccess), size);
        return ReadSplit(la, size, Access.Read | DataAccess);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void WriteLinearSlow(ulong la, int size, ulong v)
    {
        if (WatchData) WatchAccess(la, size, true);
        if (((la & 0xFFF) + (ulong)size) <= 0x1000)
        {
            Mem.Write(Mmu.Translate(la, Access.Write | DataAccess), size, v);
            return;
        }
        WriteSplit(la, size, v, Access.Write | DataAccess);
    }

    /// <summary>A supervisor-mode implicit read (GDT, LDT, IDT, TSS), whatever the CPL. Table bases are 64-bit in all of IA-32e mode, compatibility mode included.</summary>
    public ulong ReadImplicit(ulong la, int size)
    {
        if (!LongMode) la &= 0xFFFFFFFF;
        if (((la & 0xFFF) + (ulong)size) <= 0x1000) return Mem.Read(Mmu.Translate(la, Access.Read | Access.Implicit), size);
        return ReadSplit(la, size, Access.Read | Access.Implicit);
    }

    public void WriteImplicitLinear(ulong la, int size, ulong v)
    {
        if (((la & 0xFFF) + (ulong)size) <= 0x1000) { Mem.Write(Mmu.Translate(la, Access.Write | Access.Implicit), size, v); return; }
        WriteSplit(la, size, v, Access.Write | Access.Implicit);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private ulong ReadSplit(ulong la, int size, Access acc)
    {
        int first = 0x1000 - (int)(la & 0xFFF);
        ulong pa0 = Mmu.Translate(la, acc);
        ulong pa1 = Mmu.Translate(la + (ulong)first, acc);
        ulong v = 0;
        for (int b = size - 1; b >= 0; b--)
            v = (v << 8) | Mem.Read(b < first ? pa0 + (ulong)b : pa1 + (ulong)(b - first), 1);
        return v;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void WriteSplit(ulong la, int size, ulong v, Access acc)
    {
        int first = 0x1000 - (int)(la & 0xFFF);
        ulong pa0 = Mmu.Translate(la, acc);
        ulong pa1 = Mmu.Translate(la + (ulong)first, acc);
        for (int b = 0; b < size; b++)
            Mem.Write(b < first ? pa0 + (ulong)b : pa1 + (ulong)(b - first), 1, v >> (8 * b));
    }

    /// <summary>
    /// Translates a read-modify-write operand for writing before anything is read, so the read and the
    /// write see one translation and a fault happens before any change.
    /// </summary>
    public MemRef RmwRef(ulong la, int size)
    {
        if (WatchData) WatchAccess(la, size, true);
        var acc = Access.Write | DataAccess;
        ulong pa0 = Mmu.Translate(la, acc);
        int first = 0x1000 - (int)(la & 0xFFF);
        ulong pa1 = first < size ? Mmu.Translate(la + (ulong)first, acc) : 0;
        return new MemRef(pa0, pa1, first < size ? first : size, size);
    }

    public ulong Read(in MemRef m)
    {
        if (m.First == m.Size) return Mem.Read(m.Pa0, m.Size);
        ulong v = 0;
        for (int b = m.Size - 1; b >= 0; b--)
            v = (v << 8) | Mem.Read(b < m.First ? m.Pa0 + (ulong)b : m.Pa1 + (ulong)(b - m.First), 1);
        return v;
    }

    public void Write(in MemRef m, ulong v)
    {
        if (m.First == m.Size) { Mem.Write(m.Pa0, m.Size, v); return; }
        for (int b = 0; b < m.Size; b++)
            Mem.Write(b < m.First ? m.Pa0 + (ulong)b : m.Pa1 + (ulong)(b - m.First), 1, v >> (8 * b));
    }

    // ---- 16-byte (XMM) access ----------------------------------------------------------------

    /// <summary>Reads 16 bytes at the memory operand of i; <paramref name="aligned"/> forms raise #GP(0) unless 16-byte aligned.</summary>
    public UInt128 Read128(ref Insn i, bool aligned)
    {
        ulong la = OperandLinear(ref i, 16, false);
        if (aligned && (la & 15) != 0) Gp();
        if (WatchData) WatchAccess(la, 16, false);
        if ((la & 0xFFF) <= 0xFF0)
        {
            ulong pa = Mmu.Translate(la, Access.Read | DataAccess);
            return new UInt128(Mem.Read(pa + 8, 8), Mem.Read(pa, 8));
        }
        ulong lo = ReadLinear(la, 8), hi = ReadLinear(la + 8, 8);
        return new UInt128(hi, lo);
    }

    /// <summary>Writes 16 bytes at the memory operand of i; both pages are translated before anything is written.</summary>
    public void Write128(ref Insn i, UInt128 v, bool aligned)
    {
        ulong la = OperandLinear(ref i, 16, true);
        if (aligned && (la & 15) != 0) Gp();
        var mr = RmwRef(la, 16);   // (RmwRef compares the access with the breakpoints)
        if (mr.First == 16) { Mem.Write(mr.Pa0, 8, (ulong)v); Mem.Write(mr.Pa0 + 8, 8, (ulong)(v >> 64)); return; }
        for (int b = 0; b < 16; b++)
            Mem.Write(b < mr.First ? mr.Pa0 + (ulong)b : mr.Pa1 + (ulong)(b - mr.First), 1, (ulong)(v >> (8 * b)));
    }

    // ---- stack -------------------------------------------------------------------------------

    /// <summary>Pushes a value of <paramref name="size"/> bytes; RSP changes only if the write succeeds.</summary>
    public void Push(ulong v, int size)
    {
        int sas = StackAddrSize;
        ulong sp = Rsp - (ulong)size;
        if (sas == 8) { WriteLinear(Linear(Emu64.Cpu.Seg.SS, sp, size, true), size, v); Rsp = sp; return; }
        ulong m = sas == 4 ? 0xFFFFFFFFUL : 0xFFFFUL;
        sp &= m;
        WriteLinear(Linear(Emu64.Cpu.Seg.SS, sp, size, true), size, v);
        Rsp = (Rsp & ~m) | sp;
    }

    /// <summary>Reads the value on top of the stack without popping it.</summary>
    public ulong PeekStack(int size, int offset = 0)
    {
        int sas = StackAddrSize;
        ulong sp = Rsp + (ulong)offset;
        if (sas != 8) sp &= sas == 4 ? 0xFFFFFFFFUL : 0xFFFFUL;
        return ReadLinear(Linear(Emu64.Cpu.Seg.SS, sp, size, false), size);
    }

    public ulong Pop(int size)
    {
        ulong v = PeekStack(size);
        AdjustStack(size);
        return v;
    }

    public void AdjustStack(long delta)
    {
        int sas = StackAddrSize;
        if (sas == 8) { Rsp += (ulong)delta; return; }
        ulong m = sas == 4 ? 0xFFFFFFFFUL : 0xFFFFUL;
        Rsp = (Rsp & ~m) | ((Rsp + (ulong)delta) & m);
    }
}

/// <summary>A translated memory operand (one or two physical pieces).</summary>
public readonly record struct MemRef(ulong Pa0, ulong Pa1, int First, int Size);
