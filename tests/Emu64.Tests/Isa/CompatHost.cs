using System.Runtime.InteropServices;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Isa;

/// <summary>
/// Runs instruction bytes natively in compatibility mode. Linux gives every 64-bit process the 32-bit
/// user code segment __USER32_CS (0x23) next to its 64-bit one (0x33), so user code can far-jump into
/// 32-bit code placed below 4 GiB and far-jump back. The 64-bit prologue (Iced-generated) saves RSP,
/// DS and ES, loads DS = ES = __USER_DS (0x2B: a null DS faults in compatibility mode), RFLAGS and every
/// GPR including ESP from a <see cref="HostState"/>, then JMP FAR m16:32 to 0x23:slot. The slot holds the
/// bytes under test followed by JMP FAR ptr16:32 to 0x33:epilogue, which stores ESP, switches back to
/// the saved 64-bit stack, stores every GPR and RFLAGS and restores DS and ES.
///
/// Memory is the page at <see cref="Data"/> = 0xF000, below 64 KiB so 16-bit addressing reaches it
/// too; the seven pages below it are headroom for a signal frame the kernel might push while ESP points
/// into the data page (the stack of push/pop forms is at Data + <see cref="StackOffset"/>).
/// Share <see cref="HostCpu.Lock"/> with the 64-bit harness.
/// </summary>
public sealed unsafe class CompatHost
{
    public const ushort User32Cs = 0x23, UserDs = 0x2B, UserCs = 0x33;
    public const int SlotOffset = 0x200, SlotSize = 64, EpilogueOffset = 0x300, VarsOffset = 0x800;
    public const ulong Data = 0xF000, StackOffset = 0x140;
    private const ulong Region = 0x8000;

    private static CompatHost? _shared;
    private static bool _failed;
    private static readonly object Gate = new();

    /// <summary>The harness, or null when the low pages cannot be mapped (then compatibility forms are skipped).</summary>
    public static CompatHost? Shared
    {
        get
        {
            lock (Gate)
            {
                if (_shared != null || _failed || !HostCpu.Available) return _shared;
                try { _shared = new CompatHost(); } catch (InvalidOperationException) { _failed = true; }
                return _shared;
            }
        }
    }

    public readonly ulong CodePage;
    public ulong SlotAddress => CodePage + SlotOffset;
    private ulong Vars => CodePage + VarsOffset;   // +0 saved RSP, +8 DS, +10 ES, +16 far pointer, +24 ESP out
    private readonly delegate* unmanaged<HostState*, void> _fn;

    private CompatHost()
    {
        nint low = mmap((nint)Region, (nuint)(Data + 0x1000 - Region), 3, 0x22 | MapFixedNoReplace, -1, 0);
        if (low != (nint)Region) throw new InvalidOperationException($"mmap at {Region:x} failed");
        nint code = mmap(0, 0x1000, 7, 0x22 | 0x40, -1, 0);
        if (code == -1 || code == 0) throw new InvalidOperationException("mmap of the code page failed");
        CodePage = (ulong)code;
        var regs = new[] { rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15 };

        var a = new Assembler(64);
        a.push(rbx); a.push(rbp); a.push(r12); a.push(r13); a.push(r14); a.push(r15);
        a.push(rdi);                                    // the state pointer, found again at [rsp+16] by the epilogue
        a.mov(rax, Vars); a.mov(__qword_ptr[rax], rsp);
        a.mov(cx, ds); a.mov(__word_ptr[rax + 8], cx);
        a.mov(cx, es); a.mov(__word_ptr[rax + 10], cx);
        a.mov(ecx, UserDs); a.mov(ds, cx); a.mov(es, cx);
        a.push(__qword_ptr[rdi + 8 * 16]);
        a.popfq();
        for (int k = 0; k < 16; k++)
            if (k != 4 && k != 7) a.mov(regs[k], __qword_ptr[rdi + 8 * k]);
        a.mov(rsp, __qword_ptr[rdi + 8 * 4]);
        a.mov(rdi, __qword_ptr[rdi + 8 * 7]);
        a.db(0xFF, 0x2C, 0x25); a.dd((uint)(Vars + 16));   // jmp far dword [Vars+16]: m16:32 = 0x23:slot
        Emit(a, 0);
        *(uint*)(Vars + 16) = (uint)SlotAddress;
        *(ushort*)(Vars + 20) = User32Cs;

        var e = new Assembler(64);
        e.db(0x48, 0x89, 0x24, 0x25); e.dd((uint)(Vars + 24));   // mov [Vars+24], rsp
        e.db(0x48, 0x8B, 0x24, 0x25); e.dd((uint)Vars);          // mov rsp, [Vars]
        e.pushfq();
        e.push(rdi);
        e.mov(rdi, __qword_ptr[rsp + 16]);
        for (int k = 0; k < 16; k++)
            if (k != 4 && k != 7) e.mov(__qword_ptr[rdi + 8 * k], regs[k]);
        e.pop(rax); e.mov(__qword_ptr[rdi + 8 * 7], rax);
        e.pop(rax); e.mov(__qword_ptr[rdi + 8 * 16], rax);
        e.mov(rax, Vars);
        e.mov(rcx, __qword_ptr[rax + 24]); e.mov(__qword_ptr[rdi + 8 * 4], rcx);
        e.mov(cx, __word_ptr[rax + 8]); e.mov(ds, cx);
        e.mov(cx, __word_ptr[rax + 10]); e.mov(es, cx);
        e.add(rsp, 8);
        e.cld();
        e.pop(r15); e.pop(r14); e.pop(r13); e.pop(r12); e.pop(rbp); e.pop(rbx);
        e.ret();
        Emit(e, EpilogueOffset);
        Load(ReadOnlySpan<byte>.Empty);
        _fn = (delegate* unmanaged<HostState*, void>)CodePage;
    }

    private void Emit(Assembler a, int offset)
    {
        var w = new MemoryStream();
        a.Assemble(new StreamCodeWriter(w), CodePage + (ulong)offset);
        var bytes = w.ToArray();
        bytes.CopyTo(new Span<byte>((void*)(CodePage + (ulong)offset), bytes.Length));
    }

    /// <summary>Places 32-bit code in the slot, followed by JMP FAR 0x33:epilogue.</summary>
    public void Load(ReadOnlySpan<byte> test)
    {
        if (test.Length > SlotSize - 7) throw new ArgumentException("test bytes too long");
        var slot = new Span<byte>((void*)SlotAddress, SlotSize);
        test.CopyTo(slot);
        int j = test.Length;
        slot[j] = 0xEA;
        BitConverter.TryWriteBytes(slot[(j + 1)..], (uint)(CodePage + EpilogueOffset));
        BitConverter.TryWriteBytes(slot[(j + 5)..], UserCs);
    }

    public Span<byte> DataSpan => new((void*)Data, 0x1000);

    /// <summary>Runs the loaded bytes with the GPRs (ESP too) and RFLAGS of <paramref name="s"/> (status flags and DF only), which receives the results.</summary>
    public void Run(ref HostState s)
    {
        fixed (HostState* p = &s) _fn(p);
    }

    private const int MapFixedNoReplace = 0x100000;

    [DllImport("libc", SetLastError = true)]
    private static extern nint mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);
}
