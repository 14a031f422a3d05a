using System.Runtime.InteropServices;
using Iced.Intel;
using Emu64.Cpu;
using Emu64.Isa;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Sse;

/// <summary>
/// The architectural state one differential case reads and writes: XMM0..15, the general registers,
/// RFLAGS, MXCSR and a 64-byte memory buffer that [rsi] points at. The same layout is the input/output
/// block of the native stub.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct SseState
{
    public const int XmmOff = 0, GprOff = 256, FlagsOff = 384, MxcsrOff = 392, MemOff = 400, MemSize = 64, Size = 464;
    public fixed byte Bytes[Size];

    public UInt128 Xmm(int n) { fixed (byte* p = Bytes) return *(UInt128*)(p + XmmOff + 16 * n); }
    public void SetXmm(int n, UInt128 v) { fixed (byte* p = Bytes) *(UInt128*)(p + XmmOff + 16 * n) = v; }
    public ulong Gpr(int n) { fixed (byte* p = Bytes) return *(ulong*)(p + GprOff + 8 * n); }
    public void SetGpr(int n, ulong v) { fixed (byte* p = Bytes) *(ulong*)(p + GprOff + 8 * n) = v; }
    public ulong Flags { get { fixed (byte* p = Bytes) return *(ulong*)(p + FlagsOff); } set { fixed (byte* p = Bytes) *(ulong*)(p + FlagsOff) = value; } }
    public uint Mxcsr { get { fixed (byte* p = Bytes) return *(uint*)(p + MxcsrOff); } set { fixed (byte* p = Bytes) *(uint*)(p + MxcsrOff) = value; } }
    public ulong Mem(int k) { fixed (byte* p = Bytes) return *(ulong*)(p + MemOff + 8 * k); }
    public void SetMem(int k, ulong v) { fixed (byte* p = Bytes) *(ulong*)(p + MemOff + 8 * k) = v; }
}

/// <summary>
/// Runs instruction bytes on the host CPU: a stub that Iced's Assembler generates loads the state
/// block (pointer in RDI, System V ABI), executes the bytes, stores the state back and restores the
/// host's MXCSR and callee-saved registers. The code lives in an RWX page mapped through libc.
/// RBP holds the block pointer and RSP the stack, so the instruction under test must not use them.
/// </summary>
public sealed unsafe class NativeRunner
{
    [DllImport("libc", SetLastError = true)]
    private static extern nint mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);

    private const int RegionSize = 1 << 20;
    private static nint _region;
    private static int _used;
    private static readonly object Lock = new();

    public static bool Supported => OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64;

    private readonly delegate* unmanaged<SseState*, void> _fn;

    /// <summary>Builds the stub around <paramref name="insn"/> (the encoded instruction under test).</summary>
    public NativeRunner(byte[] insn)
    {
        var a = new Assembler(64);
        a.push(rbx); a.push(rbp); a.push(r12); a.push(r13); a.push(r14); a.push(r15);
        a.sub(rsp, 16);
        a.stmxcsr(__dword_ptr[rsp]);
        a.mov(rbp, rdi);
        a.ldmxcsr(__dword_ptr[rbp + SseState.MxcsrOff]);
        var xmms = new[] { xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7, xmm8, xmm9, xmm10, xmm11, xmm12, xmm13, xmm14, xmm15 };
        for (int k = 0; k < 16; k++) a.movdqu(xmms[k], __xmmword_ptr[rbp + SseState.XmmOff + 16 * k]);
        a.push(__qword_ptr[rbp + SseState.FlagsOff]);
        a.popfq();
        var gprs = new AssemblerRegister64[] { rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15 };
        for (int k = 0; k < 16; k++)
            if (k != Reg.RSP && k != Reg.RBP) a.mov(gprs[k], __qword_ptr[rbp + SseState.GprOff + 8 * k]);
        foreach (var b in insn) a.db(b);
        a.pushfq();
        a.pop(__qword_ptr[rbp + SseState.FlagsOff]);
        for (int k = 0; k < 16; k++)
            if (k != Reg.RSP && k != Reg.RBP) a.mov(__qword_ptr[rbp + SseState.GprOff + 8 * k], gprs[k]);
        for (int k = 0; k < 16; k++) a.movdqu(__xmmword_ptr[rbp + SseState.XmmOff + 16 * k], xmms[k]);
        a.stmxcsr(__dword_ptr[rbp + SseState.MxcsrOff]);
        a.ldmxcsr(__dword_ptr[rsp]);
        a.add(rsp, 16);
        a.pop(r15); a.pop(r14); a.pop(r13); a.pop(r12); a.pop(rbp); a.pop(rbx);
        a.ret();
        lock (Lock)
        {
            if (_region == 0)
            {
                _region = mmap(0, RegionSize, 7 /* RWX */, 0x22 /* MAP_PRIVATE|MAP_ANONYMOUS */, -1, 0);
                if (_region == -1) throw new InvalidOperationException($"mmap failed: {Marshal.GetLastPInvokeError()}");
            }
            if (_used + 4096 > RegionSize) _used = 0;   // reuse: older stubs are no longer called
            nint at = _region + _used;
            var w = new MemoryStream();
            a.Assemble(new StreamCodeWriter(w), (ulong)at);
            var code = w.ToArray();
            Marshal.Copy(code, 0, at, code.Length);
            _used += (code.Length + 63) & ~63;
            _fn = (delegate* unmanaged<SseState*, void>)at;
        }
    }

    // The block the stub works on: 64-byte aligned, so [rsi] is 16-byte aligned for the aligned forms.
    private readonly SseState* _block = (SseState*)NativeMemory.AlignedAlloc((nuint)sizeof(SseState), 64);

    /// <summary>Runs the case in place; [rsi] and [rdi] point at the block's memory buffer.</summary>
    public void Run(ref SseState s)
    {
        *_block = s;
        _block->SetGpr(Reg.RSI, (ulong)((byte*)_block + SseState.MemOff));
        _block->SetGpr(Reg.RDI, (ulong)((byte*)_block + SseState.MemOff));
        _fn(_block);
        s = *_block;
    }

    ~NativeRunner() => NativeMemory.AlignedFree(_block);
}

/// <summary>
/// Runs the same bytes in the emulator: a machine in 64-bit mode with the first 1 GiB identity-mapped
/// by one 1 GiB page, CR4.OSFXSR/OSXMMEXCPT set. The instruction is decoded once and its handler called
/// directly for each case; a guest fault is reported instead of delivered.
/// </summary>
public sealed unsafe class EmuRunner
{
    public const ulong MemAddr = 0x10000, CodeAddr = 0x20000;
    public readonly Machine Machine;
    public Emu64.Cpu.Cpu Cpu => Machine.Cpu;
    private Insn _insn;

    // Building a machine costs more than thousands of cases: each test thread keeps one and resets it.
    [ThreadStatic] private static Machine? _shared;

    public EmuRunner(byte[] insn)
    {
        Machine = _shared ??= new Machine(new MachineOptions { RamBytes = 16UL << 20 });
        var m = Machine.Memory;
        m.Write(0x1000, 8, 0x2000 | 7);          // PML4[0] -> PDPT
        m.Write(0x2000, 8, 0x87);                // PDPT[0]: 1 GiB page at 0, P RW US PS
        var c = Machine.Cpu;
        c.CR3 = 0x1000;
        c.CR4 = Cr4.Pae | Cr4.Osfxsr | Cr4.Osxmmexcpt;
        c.EFER = Efer.Lme | Efer.Lma | Efer.Sce;
        c.CR0 = Cr0.Pe | Cr0.Pg | Cr0.Et | Cr0.Ne | Cr0.Mp;
        for (int s = 0; s < 6; s++)
            c.Segs[s] = new Segment { Selector = (ushort)(s == Seg.CS ? 0x08 : 0x10), Limit = 0xFFFFFFFF, Attr = (ushort)(s == Seg.CS ? 0xA09B : 0xC093) };
        c.UpdateMode();
        c.Mmu.OnCr0Write(Cr0.Pg, 0);   // as if paging had been off: every TLB and paging-structure-cache entry goes
        c.Fpu.Init();
        m.WriteBytes(CodeAddr, insn);
        var d = Decoder.Create(64, new ByteArrayCodeReader(insn), CodeAddr);
        d.Decode(out var instr);
        InsnBuilder.Build(instr, ref _insn, 64, false);
        HandlerTable.Bind(ref _insn);
    }

    public Code Code => _insn.Code;

    /// <summary>Runs the instruction on the machine's current state with RSI set to <paramref name="rsi"/>; the fault vector or -1.</summary>
    public int RunRaw(ulong rsi)
    {
        var c = Cpu;
        c.R[Reg.RSI] = rsi;
        c.InsnRip = CodeAddr;
        c.Rip = CodeAddr + _insn.Length;
        try { _insn.Exec(c, ref _insn); }
        catch (GuestFault f) { return f.Vector; }
        return -1;
    }

    /// <summary>Runs the case in place; returns the vector of a guest fault, or -1.</summary>
    public int Run(ref SseState s)
    {
        var c = Cpu;
        var m = Machine.Memory;
        for (int k = 0; k < 16; k++) c.Xmm[k] = s.Xmm(k);
        for (int k = 0; k < 16; k++) c.R[k] = s.Gpr(k);
        c.R[Reg.RSI] = MemAddr;
        c.R[Reg.RDI] = MemAddr;
        c.Rflags = s.Flags;
        c.Mxcsr = s.Mxcsr;
        for (int k = 0; k < SseState.MemSize / 8; k++) m.Write(MemAddr + (ulong)(8 * k), 8, s.Mem(k));
        c.InsnRip = CodeAddr;
        c.Rip = CodeAddr + _insn.Length;
        int fault = -1;
        try { _insn.Exec(c, ref _insn); }
        catch (GuestFault f) { fault = f.Vector; }
        for (int k = 0; k < 16; k++) s.SetXmm(k, c.Xmm[k]);
        for (int k = 0; k < 16; k++) s.SetGpr(k, c.R[k]);
        s.Flags = c.Rflags;
        s.Mxcsr = c.Mxcsr;
        for (int k = 0; k < SseState.MemSize / 8; k++) s.SetMem(k, m.Read(MemAddr + (ulong)(8 * k), 8));
        return fault;
    }
}
