using System.Runtime.CompilerServices;
using Emu64.Devices;
using Emu64.Memory;

namespace Emu64.Cpu;

/// <summary>
/// Processor operating modes (SDM vol. 3A §2.2). <see cref="Virtual8086"/> is protected mode with EFLAGS.VM=1 (outside
/// IA-32e mode): real-address-mode segments (base = selector × 16, 64 KiB limits) at CPL 3, under paging (SDM vol. 3A ch. 20).
/// </summary>
public enum CpuMode : byte { Real, Protected16, Protected32, Compat16, Compat32, Long64, Virtual8086 }

/// <summary>
/// The architectural state of the one x86-64 processor and the helpers handlers use to reach it.
/// Split into partial files by concern: flags (Flags.cs), memory access (CpuMemory.cs), exceptions
/// and interrupt delivery (Interrupts.cs), segment loads (Segments.cs), control registers (System.cs).
/// </summary>
public sealed partial class Cpu
{
    public GprFile R;
    /// <summary>RIP of the next instruction while a handler runs (the loop advances it before the call).</summary>
    public ulong Rip;
    /// <summary>RIP of the instruction being executed (a fault rewinds to it).</summary>
    public ulong InsnRip;

    public Segment[] Segs = new Segment[6];
    public Segment Ldtr, Tr;
    public TableReg Gdtr, Idtr;

    // CR0, CR3 and CR4 are properties so that what every memory access derives from them is computed once, when
    // they are written: whether paging is on, the current PCID, and the shift of the canonical-address check.
    private ulong _cr0 = Emu64.Cpu.Cr0.Et | Emu64.Cpu.Cr0.Cd | Emu64.Cpu.Cr0.Nw, _cr3, _cr4;
    public ulong CR0
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] get => _cr0;
        set { _cr0 = value; PagingOn = (value & Emu64.Cpu.Cr0.Pg) != 0; DirectData = PagingOn && !WatchData; }
    }
    public ulong CR3
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] get => _cr3;
        set { _cr3 = value; UpdatePcid(); }
    }
    public ulong CR4
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] get => _cr4;
        set
        {
            _cr4 = value;
            UpdatePcid();
            CanonicalShift = (value & Emu64.Cpu.Cr4.La57) != 0 ? 7 : 16;
            CanonicalBias = 1UL << (63 - CanonicalShift);
        }
    }
    public ulong CR2, CR8;

    /// <summary>
    /// Loads a checked CR3 value and lets the MMU (TLB invalidation by the PCID rules) and the event listeners know:
    /// the common tail of MOV to CR3 and of a task switch's CR3 load.
    /// </summary>
    internal void LoadCr3(ulong value, bool noFlush)
    {
        ulong old = _cr3;
        CR3 = value;
        int dropped = Mmu.OnCr3Write(old, value, noFlush);
        Machine.Events.OnCr3Write(old, value, noFlush, dropped);
    }

    /// <summary>CR0.PG (derived from CR0 when it is written).</summary>
    public bool PagingOn { get; private set; }
    /// <summary>The PCID in use: CR3[11:0] with CR4.PCIDE=1, else 0 (derived when CR3 or CR4 is written).</summary>
    public ushort CurrentPcid { get; private set; }
    /// <summary>64 minus the linear-address width: 16 with 4-level paging, 7 with CR4.LA57 (derived from CR4).</summary>
    public int CanonicalShift { get; private set; } = 16;
    /// <summary>
    /// Half the canonical space (2^47, or 2^56 with LA57), derived from CR4: adding it maps the canonical addresses onto
    /// [0, 2^48) in order, so that one compare tests both ends of an access (<see cref="Linear"/>).
    /// </summary>
    internal ulong CanonicalBias { get; private set; } = 1UL << 47;

    /// <summary>The current PCID hashed for the MMU's fast-cache index (Mmu.FastSlot), derived with it.</summary>
    internal int PcidHash { get; private set; }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void UpdatePcid()
    {
        CurrentPcid = (_cr4 & Emu64.Cpu.Cr4.Pcide) != 0 ? (ushort)(_cr3 & Emu64.Cpu.Cr3.PcidMask) : (ushort)0;
        PcidHash = Emu64.Mmu.Mmu.HashPcid(CurrentPcid);
    }
    public ulong EFER;
    public ulong[] DR = new ulong[8];
    public uint Pkru;

    public ulong Star, Lstar, Cstar, Sfmask, KernelGsBase, TscAux, Pat = 0x0007040600070406UL;
    public ulong SysenterCs, SysenterEsp, SysenterEip, ApicBase = 0xFEE00900UL, MiscEnable = MiscEnableReset, SpecCtrl;

    /// <summary>Current privilege level (CS.RPL as cached at the last CS load).</summary>
    public int Cpl
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] get => _cpl;
        set
        {
            _cpl = value;
            DataAccess = value == 3 ? Emu64.Mmu.Access.User : 0;
            FastReadBase = Emu64.Mmu.Mmu.FastKindBase(Emu64.Mmu.Access.Read | DataAccess);
            FastWriteBase = Emu64.Mmu.Mmu.FastKindBase(Emu64.Mmu.Access.Write | DataAccess);
        }
    }
    private int _cpl;
    /// <summary>The privilege bit of a data access at the current CPL (Access.User at CPL 3), derived when CPL is set.</summary>
    internal Emu64.Mmu.Access DataAccess { get; private set; }
    /// <summary>The MMU fast cache's index base for a data read and a data write at the current CPL (Mmu.HostData), derived with it.</summary>
    internal int FastReadBase { get; private set; }
    internal int FastWriteBase { get; private set; } = Emu64.Mmu.Mmu.FastKindBase(Emu64.Mmu.Access.Write);
    public CpuMode Mode = CpuMode.Protected32;

    /// <summary>Set by anything that makes the rest of a decoded block invalid (mode, paging, code writes, IF).</summary>
    public bool ExitBlock;
    /// <summary>Interrupts are inhibited for one instruction after STI / MOV SS / POP SS.</summary>
    public bool InterruptShadow;
    public bool Halted;

    /// <summary>Retired instructions since reset; drives virtual time.</summary>
    public ulong Retired;

    public readonly PhysicalMemory Mem;
    public readonly IoBus Io;
    public readonly Mmu.Mmu Mmu;
    public readonly Machine Machine;

    public Cpu(Machine machine, PhysicalMemory mem, IoBus io)
    {
        Machine = machine;
        Mem = mem;
        Io = io;
        Mmu = new Mmu.Mmu(this, mem);
        _fault = new GuestFault();
        Xmm = new UInt128[16];
        Mxcsr = 0x1F80;
    }

    /// <summary>The 16 XMM registers (used by the SSE/SSE2 handlers).</summary>
    public UInt128[] Xmm;
    public uint Mxcsr;
    /// <summary>The x87 FPU and the MMX registers aliased on it (Cpu/X87.cs); FNINIT state at reset.</summary>
    public readonly X87 Fpu = new();

    public bool LongMode { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => (EFER & Emu64.Cpu.Efer.Lma) != 0; }
    public bool Is64 { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => Mode == CpuMode.Long64; }
    /// <summary>
    /// Segment registers hold a selector × 16 base and no descriptor: real-address mode and virtual-8086 mode (a MOV or
    /// POP to a segment register, a far JMP/CALL/RET, LDS and friends load the base only; there is no privilege check).
    /// </summary>
    public bool RealSegments => Mode is CpuMode.Real or CpuMode.Virtual8086;
    public int Bitness
    {
        // Read by the run loop at every chain start and resync (a call there cost more than the switch).
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Mode switch { CpuMode.Long64 => 64, CpuMode.Protected32 or CpuMode.Compat32 => 32, _ => 16 };
    }
    public bool PcidOn => (CR4 & Emu64.Cpu.Cr4.Pcide) != 0;
    /// <summary>Stack address size in bytes: 8 in 64-bit mode, else SS.B ? 4 : 2.</summary>
    public int StackAddrSize => Mode == CpuMode.Long64 ? 8 : Segs[Emu64.Cpu.Seg.SS].Db ? 4 : 2;

    // ---- general registers -------------------------------------------------------------------

    /// <summary>The 64-bit register <paramref name="num"/> (0..15), by reference.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref ulong Gpr(int num) => ref Unsafe.Add(ref R[0], num);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong GetReg(int num, int size)
    {
        if (num >= Reg.HighByte) return (Unsafe.Add(ref R[0], num - Reg.HighByte) >> 8) & 0xFF;
        ulong v = Unsafe.Add(ref R[0], num);
        return size switch { 1 => v & 0xFF, 2 => v & 0xFFFF, 4 => v & 0xFFFFFFFF, _ => v };
    }

    /// <summary>Writes a register with x86-64 rules: 32-bit writes zero-extend, 8/16-bit writes merge.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void SetReg(int num, int size, ulong v)
    {
        if (num >= Reg.HighByte)
        {
            ref ulong h = ref Unsafe.Add(ref R[0], num - Reg.HighByte);
            h = (h & ~0xFF00UL) | ((v & 0xFF) << 8);
            return;
        }
        ref ulong r = ref Unsafe.Add(ref R[0], num);
        r = size switch
        {
            1 => (r & ~0xFFUL) | (v & 0xFF),
            2 => (r & ~0xFFFFUL) | (v & 0xFFFF),
            4 => v & 0xFFFFFFFF,
            _ => v,
        };
    }

    public ulong Rsp { get => R[Reg.RSP]; set => R[Reg.RSP] = value; }

    /// <summary>Recomputes <see cref="Mode"/> and <see cref="Cpl"/> after CS, CR0 or EFER change.</summary>
    public void UpdateMode()
    {
        var cs = Segs[Emu64.Cpu.Seg.CS];
        CpuMode m;
        if ((CR0 & Emu64.Cpu.Cr0.Pe) == 0) m = CpuMode.Real;
        else if ((_rflags & RFlags.VM) != 0 && !LongMode) m = CpuMode.Virtual8086;   // always CPL 3 (SDM vol. 3A §20.2.1)
        else if (LongMode) m = cs.Long ? CpuMode.Long64 : cs.Db ? CpuMode.Compat32 : CpuMode.Compat16;
        else m = cs.Db ? CpuMode.Protected32 : CpuMode.Protected16;
        if (m != Mode) ExitBlock = true;
        Mode = m;
        Cpl = m == CpuMode.Real ? 0 : m == CpuMode.Virtual8086 ? 3 : cs.Selector & 3;
    }

    /// <summary>Loads the flat 32-bit protected-mode state a multiboot loader leaves (multiboot spec §3.2).</summary>
    public void ResetToMultibootState(uint entry, uint magic, uint info)
    {
        ResetToFlat32(entry);
        R[Reg.RAX] = magic;
        R[Reg.RBX] = info;
    }

    /// <summary>
    /// Flat 32-bit protected mode with paging off and interrupts disabled: CS = 0x10 (execute/read), DS, ES,
    /// FS, GS and SS = 0x18 (read/write), base 0 and limit 4 GiB, at <paramref name="entry"/>. This is the entry
    /// state of multiboot, of the Linux 32-bit boot protocol (which names these selectors __BOOT_CS and
    /// __BOOT_DS) and of PVH (which leaves the selectors unspecified). The caller loads a GDT that holds these
    /// descriptors when the protocol asks for one, and the registers the protocol passes.
    /// </summary>
    public void ResetToFlat32(uint entry)
    {
        CR0 = Emu64.Cpu.Cr0.Pe | Emu64.Cpu.Cr0.Et;
        for (int s = 0; s < 6; s++)
        {
            Segs[s] = new Segment
            {
                Selector = (ushort)(s == Emu64.Cpu.Seg.CS ? 0x10 : 0x18),
                Base = 0,
                Limit = 0xFFFFFFFF,
                Attr = (ushort)(s == Emu64.Cpu.Seg.CS ? 0xC09B : 0xC093),
            };
        }
        Tr = new Segment { Attr = 0x8B, Limit = 0xFFFF };
        Ldtr = new Segment { Attr = 0x82, Limit = 0xFFFF };
        Rflags = RFlags.Reserved1;
        Rip = entry;
        UpdateMode();
    }
}
