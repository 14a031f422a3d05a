using System.Runtime.InteropServices;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Isa;

/// <summary>
/// Runs instruction bytes natively on the host CPU. A harness function, generated once with Iced's
/// Assembler in an RWX page obtained from mmap, loads RAX..R15 (not RSP) and RFLAGS from a
/// <see cref="HostState"/>, falls into a 64-byte test slot holding the bytes under test followed by a
/// JMP to the epilogue, then stores every GPR and RFLAGS back, clears DF (the ABI requires it) and
/// returns. Callee-saved registers and RSP are preserved. A second mmap'd page is the data buffer that
/// memory operands point into; tests pin a base register to an address inside it.
///
/// How to use it (also from the SSE tests): <c>if (!HostCpu.Available) return;</c>
/// <c>var h = HostCpu.Shared; lock (h.Lock) { h.Load(bytes); var s = new HostState(); s.Gpr[0] = ...;
/// s.Xmm[1] = ...; s.Mxcsr = 0x1F80; h.Run(ref s); /* s now holds the outputs */ }</c>
/// For whole families, describe forms as <see cref="DiffForm"/>s and call <see cref="Differential.Check"/>
/// (GPRs, flags and memory are compared; XMM comparison is for the SSE engine to add on the same state).
/// The slot address (<see cref="SlotAddress"/>) and data page (<see cref="Data"/>) are real host
/// addresses: map the same linear addresses in the emulator (see <see cref="Support.RawMachine"/>) and the
/// same bytes address the same memory in both worlds. The bytes must not fault, change RSP, or jump
/// outside the slot (a branch may only skip forward within it).
/// </summary>
public sealed unsafe class HostCpu
{
    public const int SlotOffset = 0x200, SlotSize = 64, EpilogueOffset = 0x300;

    /// <summary>True on an x86-64 Linux host (where the native side can run).</summary>
    public static bool Available => RuntimeInformation.ProcessArchitecture == Architecture.X64
                                    && RuntimeInformation.IsOSPlatform(OSPlatform.Linux);

    private static HostCpu? _shared;
    private static readonly object Gate = new();
    /// <summary>The one harness of the process (tests that use it must not run it concurrently: lock <see cref="Lock"/>).</summary>
    public static HostCpu Shared { get { lock (Gate) return _shared ??= new HostCpu(); } }
    public readonly object Lock = new();

    public readonly ulong CodePage;
    /// <summary>A 4 KiB data page owned by the harness; memory operands point into it.</summary>
    public readonly ulong Data;

    /// <summary>
    /// Where the pages are asked for: fixed, so the addresses pinned into registers (and encoded as
    /// moffs) are the same in every run and on every host, and the inputs of a seed are reproducible
    /// (the Intel reference vectors hash them). If the range is taken, any address below 2 GiB is used.
    /// </summary>
    public const ulong FixedCodePage = 0x7E000000, FixedData = 0x7E002000;
    /// <summary>Whether the pages are at <see cref="FixedCodePage"/> and <see cref="FixedData"/>.</summary>
    public readonly bool AtFixedAddresses;
    public ulong SlotAddress => CodePage + SlotOffset;
    private readonly delegate* unmanaged<HostState*, void> _fn;

    private HostCpu()
    {
        CodePage = Mmap(FixedCodePage, 0x1000, ProtRead | ProtWrite | ProtExec);
        Data = Mmap(FixedData, 0x1000, ProtRead | ProtWrite);
        AtFixedAddresses = CodePage == FixedCodePage && Data == FixedData;
        var a = new Assembler(64);
        a.push(rbx); a.push(rbp); a.push(r12); a.push(r13); a.push(r14); a.push(r15);
        a.sub(rsp, 8);
        a.stmxcsr(__dword_ptr[rsp]);               // MXCSR's control bits are callee-saved in the SysV ABI
        a.push(rdi);
        a.ldmxcsr(__dword_ptr[rdi + HostState.MxcsrOffset]);
        var xin = new[] { xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7, xmm8, xmm9, xmm10, xmm11, xmm12, xmm13, xmm14, xmm15 };
        for (int k = 0; k < 16; k++) a.movdqu(xin[k], __xmmword_ptr[rdi + HostState.XmmOffset + 16 * k]);
        a.push(__qword_ptr[rdi + 8 * 16]);
        a.popfq();
        var regs = new[] { rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15 };
        for (int k = 0; k < 16; k++)
            if (k != 4 && k != 7) a.mov(regs[k], __qword_ptr[rdi + 8 * k]);
        a.mov(rdi, __qword_ptr[rdi + 8 * 7]);
        a.jmp(SlotAddress);
        Emit(a, CodePage, 0);

        var e = new Assembler(64);
        var xmms = new[] { xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7, xmm8, xmm9, xmm10, xmm11, xmm12, xmm13, xmm14, xmm15 };
        e.pushfq();
        e.push(rdi);
        e.mov(rdi, __qword_ptr[rsp + 16]);
        for (int k = 0; k < 16; k++)
            if (k != 4 && k != 7) e.mov(__qword_ptr[rdi + 8 * k], regs[k]);
        e.pop(rax); e.mov(__qword_ptr[rdi + 8 * 7], rax);
        e.pop(rax); e.mov(__qword_ptr[rdi + 8 * 16], rax);
        e.stmxcsr(__dword_ptr[rdi + HostState.MxcsrOffset]);
        for (int k = 0; k < 16; k++) e.movdqu(__xmmword_ptr[rdi + HostState.XmmOffset + 16 * k], xmms[k]);
        e.add(rsp, 8);
        e.ldmxcsr(__dword_ptr[rsp]);
        e.add(rsp, 8);
        e.cld();
        e.pop(r15); e.pop(r14); e.pop(r13); e.pop(r12); e.pop(rbp); e.pop(rbx);
        e.ret();
        Emit(e, CodePage + EpilogueOffset, EpilogueOffset);
        Load(ReadOnlySpan<byte>.Empty);
        _fn = (delegate* unmanaged<HostState*, void>)CodePage;
    }

    private void Emit(Assembler a, ulong rip, int offset)
    {
        var w = new MemoryStream();
        a.Assemble(new StreamCodeWriter(w), rip);
        var bytes = w.ToArray();
        bytes.CopyTo(new Span<byte>((void*)(CodePage + (ulong)offset), bytes.Length));
    }

    /// <summary>Places the bytes under test in the slot, followed by a JMP to the epilogue.</summary>
    public void Load(ReadOnlySpan<byte> test)
    {
        if (test.Length > SlotSize - 5) throw new ArgumentException("test bytes too long");
        var slot = new Span<byte>((void*)SlotAddress, SlotSize);
        test.CopyTo(slot);
        int j = test.Length;
        slot[j] = 0xE9;
        int rel = (int)((long)(CodePage + EpilogueOffset) - (long)(SlotAddress + (ulong)j + 5));
        BitConverter.TryWriteBytes(slot[(j + 1)..], rel);
    }

    /// <summary>The data page as a span.</summary>
    public Span<byte> DataSpan => new((void*)Data, 0x1000);

    /// <summary>
    /// Runs the loaded bytes with the registers, flags, XMM registers and MXCSR of <paramref name="s"/>,
    /// which receives the results. An MXCSR of 0 means the reset value 0x1F80 (all exceptions masked):
    /// an unmasked SIMD exception would kill the test process.
    /// </summary>
    public void Run(ref HostState s)
    {
        if (s.Mxcsr == 0) s.Mxcsr = 0x1F80;
        fixed (HostState* p = &s) _fn(p);
    }

    private const int ProtRead = 1, ProtWrite = 2, ProtExec = 4, MapPrivate = 2, MapAnonymous = 0x20, Map32Bit = 0x40, MapFixedNoReplace = 0x100000;

    [DllImport("libc", SetLastError = true)]
    private static extern nint mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);

    [DllImport("libc")]
    private static extern int munmap(nint addr, nuint length);

    private static ulong Mmap(ulong at, int size, int prot)
    {
        nint fixedPage = mmap((nint)at, (nuint)size, prot, MapPrivate | MapAnonymous | MapFixedNoReplace, -1, 0);
        if (fixedPage == (nint)at) return at;
        if (fixedPage != -1 && fixedPage != 0) munmap(fixedPage, (nuint)size);   // an old kernel took it as a hint
        // MAP_32BIT: below 2 GiB, so forms with a 32-bit address size (0x67) can reach the pages too
        nint p = mmap(0, (nuint)size, prot, MapPrivate | MapAnonymous | Map32Bit, -1, 0);
        if (p == -1 || p == 0) throw new InvalidOperationException($"mmap failed: errno {Marshal.GetLastPInvokeError()}");
        return (ulong)p;
    }
}

/// <summary>
/// Inputs and outputs of one native run: RAX..R15 in encoding order (RSP ignored), RFLAGS (status flags
/// and DF are loaded; TF/AC must stay clear), MXCSR, and XMM0..XMM15.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct HostState
{
    public const int MxcsrOffset = 136, XmmOffset = 144;
    public Emu64.Cpu.GprFile Gpr;
    public ulong Rflags;
    public uint Mxcsr;
    private uint _pad;
    public XmmFile Xmm;
}

/// <summary>Sixteen 128-bit XMM registers.</summary>
[System.Runtime.CompilerServices.InlineArray(16)]
public struct XmmFile { private UInt128 _e; }
