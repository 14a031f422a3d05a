using System.Runtime.InteropServices;
using Iced.Intel;
using Emu64.Cpu;
using Emu64.Tests.Sse;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.X87;

/// <summary>
/// One x87 case: the 512-byte FXSAVE image that is loaded (FXRSTOR) before the instruction and stored (FXSAVE) after
/// it, a 64-byte memory buffer that [rsi] points at, and RFLAGS (for FCMOVcc/FCOMI).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct X87State
{
    public const int AreaOff = 0, HostOff = 512, MemOff = 1024, FlagsOff = 1088, Size = 1152;
    public fixed byte Bytes[Size];

    public ushort Fcw { get { fixed (byte* p = Bytes) return *(ushort*)p; } set { fixed (byte* p = Bytes) *(ushort*)p = value; } }
    public ushort Fsw { get { fixed (byte* p = Bytes) return *(ushort*)(p + 2); } set { fixed (byte* p = Bytes) *(ushort*)(p + 2) = value; } }
    public byte Ftw { get { fixed (byte* p = Bytes) return p[4]; } set { fixed (byte* p = Bytes) p[4] = value; } }
    public uint Mxcsr { get { fixed (byte* p = Bytes) return *(uint*)(p + 24); } set { fixed (byte* p = Bytes) *(uint*)(p + 24) = value; } }
    public (ulong Sig, ushort Se) St(int i) { fixed (byte* p = Bytes) return (*(ulong*)(p + 32 + 16 * i), *(ushort*)(p + 40 + 16 * i)); }
    public void SetSt(int i, ulong sig, ushort se) { fixed (byte* p = Bytes) { *(ulong*)(p + 32 + 16 * i) = sig; *(ushort*)(p + 40 + 16 * i) = se; *(ushort*)(p + 42 + 16 * i) = 0; *(uint*)(p + 44 + 16 * i) = 0; } }
    public ulong Mem(int k) { fixed (byte* p = Bytes) return *(ulong*)(p + MemOff + 8 * k); }
    public void SetMem(int k, ulong v) { fixed (byte* p = Bytes) *(ulong*)(p + MemOff + 8 * k) = v; }
    public ulong Flags { get { fixed (byte* p = Bytes) return *(ulong*)(p + FlagsOff); } set { fixed (byte* p = Bytes) *(ulong*)(p + FlagsOff) = value; } }
}

/// <summary>
/// Runs x87 bytes natively: the stub saves the host's x87/SSE state (FXSAVE), loads the case's image (FXRSTOR), points
/// RSI at the memory buffer, loads RFLAGS, runs the bytes, stores RFLAGS and the image (FXSAVE does not deliver pending
/// exceptions), and restores the host's state — so an unmasked exception left pending by the case never reaches the
/// test process. The case's own status word must not hold a pending exception on entry (the instruction would fault).
/// </summary>
public sealed unsafe class X87Native
{
    [DllImport("libc", SetLastError = true)]
    private static extern nint mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);

    private static nint _region;
    private static int _used;
    private static readonly object Gate = new();
    private readonly delegate* unmanaged<X87State*, void> _fn;
    private readonly X87State* _block = (X87State*)NativeMemory.AlignedAlloc((nuint)sizeof(X87State), 64);

    public X87Native(byte[] insn)
    {
        var a = new Assembler(64);
        a.push(rbx); a.push(rbp); a.push(r12); a.push(r13); a.push(r14); a.push(r15);
        a.mov(rbp, rdi);
        a.fxsave64(__[rbp + X87State.HostOff]);
        a.fxrstor64(__[rbp + X87State.AreaOff]);
        a.lea(rsi, __[rbp + X87State.MemOff]);
        a.push(__qword_ptr[rbp + X87State.FlagsOff]);
        a.popfq();
        foreach (var b in insn) a.db(b);
        a.pushfq();
        a.pop(__qword_ptr[rbp + X87State.FlagsOff]);
        a.fxsave64(__[rbp + X87State.AreaOff]);
        a.fxrstor64(__[rbp + X87State.HostOff]);
        a.cld();
        a.pop(r15); a.pop(r14); a.pop(r13); a.pop(r12); a.pop(rbp); a.pop(rbx);
        a.ret();
        lock (Gate)
        {
            if (_region == 0)
            {
                _region = mmap(0, 1 << 20, 7, 0x22, -1, 0);
                if (_region == -1) throw new InvalidOperationException("mmap failed");
            }
            if (_used + 4096 > 1 << 20) _used = 0;
            nint at = _region + _used;
            var w = new MemoryStream();
            a.Assemble(new StreamCodeWriter(w), (ulong)at);
            var code = w.ToArray();
            Marshal.Copy(code, 0, at, code.Length);
            _used += (code.Length + 63) & ~63;
            _fn = (delegate* unmanaged<X87State*, void>)at;
        }
    }

    public void Run(ref X87State s)
    {
        *_block = s;
        _fn(_block);
        s = *_block;
    }

    ~X87Native() => NativeMemory.AlignedFree(_block);
}

/// <summary>The same case in the emulator: the image goes in and comes out through the emulator's own FXRSTOR/FXSAVE handlers.</summary>
public sealed unsafe class X87Emu
{
    private readonly EmuRunner _run, _fxrstor, _fxsave;
    public X87Emu(byte[] insn)
    {
        _run = new EmuRunner(insn);
        _fxrstor = new EmuRunner([0x48, 0x0F, 0xAE, 0x0E]);   // fxrstor64 [rsi]
        _fxsave = new EmuRunner([0x48, 0x0F, 0xAE, 0x06]);    // fxsave64 [rsi]
    }

    public Emu64.Cpu.Cpu Cpu => _run.Cpu;

    /// <summary>Runs the case; returns the vector of a guest fault, or -1.</summary>
    public int Run(ref X87State s)
    {
        var m = _run.Machine.Memory;
        const ulong area = 0x30000;
        for (int k = 0; k < 512; k++) m.Write(area + (ulong)k, 1, s.Bytes[k]);
        _fxrstor.RunRaw(area);
        var c = new SseState { Flags = s.Flags | 2 };
        c.Mxcsr = 0x1F80;
        for (int k = 0; k < 8; k++) c.SetMem(k, s.Mem(k));
        int fault = _run.Run(ref c);
        s.Flags = c.Flags;
        for (int k = 0; k < 8; k++) s.SetMem(k, c.Mem(k));
        _fxsave.RunRaw(area);
        for (int k = 0; k < 512; k++) s.Bytes[k] = (byte)m.Read(area + (ulong)k, 1);
        return fault;
    }
}

/// <summary>64-bit code assembled with Iced at address 0: the instruction bytes every x87 test runs.</summary>
public static class X87Asm
{
    public static byte[] Bytes(Action<Assembler> f)
    {
        var a = new Assembler(64);
        f(a);
        var w = new MemoryStream();
        a.Assemble(new StreamCodeWriter(w), 0);
        return w.ToArray();
    }
}
