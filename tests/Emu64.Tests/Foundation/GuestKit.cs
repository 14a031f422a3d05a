using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Foundation;

/// <summary>
/// The system structures an exception test needs, on top of <see cref="TestKernel"/>: a GDT with kernel
/// and user segments (Linux-like STAR layout) and a 64-bit TSS, an IDT whose default handler for each
/// vector 0..31 records the vector and halts (HLT with IF=0 stops the machine with every register as
/// the handler found it), user access to the first 2 MiB, and one 4 KiB page table for 0x600000..0x7FFFFF
/// whose entries the test writes.
/// <code>
/// GDT  0x08 kernel code64   0x10 kernel data   0x18 user code32   0x20 user data   0x28 user code64
///      0x30 TSS (16 bytes)  0x40 data, not present; limit 0x47
/// TSS  RSP0 = 0x2F0000, IST1 = 0x2E0000, IST2 = 0x2D0000, no I/O bitmap
/// </code>
/// </summary>
public sealed class GuestKit
{
    public const ulong Gdt = 0x1A0000, Gdtr = 0x1A0100, Idtr = 0x1A0110, Idt = 0x1A1000, Tss = 0x1A2000, Results = 0x1A3000;
    public const ulong Rsp0 = 0x2F0000, Ist1 = 0x2E0000, Ist2 = 0x2D0000, KernelStack = TestKernel.StackTop;
    public const ulong UserStackTop = 0x1F0000;
    public const ulong Pt = 0x204000, PtBase = 0x600000;   // PD[3] → this page table
    public const ushort KCode = 0x08, KData = 0x10, UCode32 = 0x18 | 3, UData = 0x20 | 3, UCode64 = 0x28 | 3, TssSel = 0x30, NotPresentData = 0x40;
    /// <summary>STAR: SYSCALL loads CS 0x08 / SS 0x10; SYSRET loads CS 0x2B (0x1B for 32-bit) / SS 0x23.</summary>
    public const ulong Star = (0x18UL << 48) | (0x08UL << 32);
    /// <summary>Where the default handlers write the vector (0xFFFFFFFF until one runs).</summary>
    public const ulong VectorSlot = Results;

    public Label SetGateFn;
    /// <summary>Recording handlers exist for vectors 0..31 (installed) and for <see cref="ExtraVectors"/> (gates left to the test).</summary>
    public Label[] Handlers = new Label[256];
    /// <summary>The address just past each recording handler's HLT (where RIP stays when it stops).</summary>
    public Label[] HandlerEnds = new Label[256];
    public static readonly int[] ExtraVectors = [0x40, 0x80, 0x81];
    private static IEnumerable<int> Recorded => Enumerable.Range(0, 32).Concat(ExtraVectors);
    private readonly Assembler _a;
    private GuestKit(Assembler a) { _a = a; }

    public static Dictionary<ulong, byte[]> Data()
    {
        var gdt = new ulong[]
        {
            0, 0x00AF9A000000FFFF, 0x00CF92000000FFFF, 0x00CFFA000000FFFF, 0x00CFF2000000FFFF, 0x00AFFA000000FFFF,
            0x67 | ((Tss & 0xFFFFFF) << 16) | (0x89UL << 40) | (((Tss >> 24) & 0xFF) << 56), Tss >> 32,
            0x00CF12000000FFFF,
        };
        var g = new byte[gdt.Length * 8];
        for (int k = 0; k < gdt.Length; k++) BitConverter.GetBytes(gdt[k]).CopyTo(g, 8 * k);
        var gdtr = new byte[10]; BitConverter.GetBytes((ushort)(g.Length - 1)).CopyTo(gdtr, 0); BitConverter.GetBytes(Gdt).CopyTo(gdtr, 2);
        var idtr = new byte[10]; BitConverter.GetBytes((ushort)(256 * 16 - 1)).CopyTo(idtr, 0); BitConverter.GetBytes(Idt).CopyTo(idtr, 2);
        var tss = new byte[0x68];
        BitConverter.GetBytes(Rsp0).CopyTo(tss, 4);
        BitConverter.GetBytes(Ist1).CopyTo(tss, 0x24);
        BitConverter.GetBytes(Ist2).CopyTo(tss, 0x2C);
        BitConverter.GetBytes((ushort)0x68).CopyTo(tss, 0x66);
        return new() { [Gdt] = g, [Gdtr] = gdtr, [Idtr] = idtr, [Tss] = tss };
    }

    /// <summary>Emits the prologue: GDT, segments, TR, IDT with recording handlers, user access, the page table.</summary>
    public static GuestKit Emit(Assembler a)
    {
        var k = new GuestKit(a) { SetGateFn = a.CreateLabel() };
        foreach (int v in Recorded) { k.Handlers[v] = a.CreateLabel(); k.HandlerEnds[v] = a.CreateLabel(); }
        var over = a.CreateLabel();
        a.jmp(over);
        // set_gate: edi = vector, rsi = handler, edx = attribute word (P | DPL | type | IST)
        a.Label(ref k.SetGateFn);
        a.push(rax); a.push(rcx);
        a.mov(eax, edi);
        a.shl(eax, 4);
        a.add(eax, (int)Idt);
        a.mov(ecx, esi); a.and(ecx, 0xFFFF); a.or(ecx, KCode << 16);
        a.mov(__dword_ptr[rax], ecx);
        a.mov(ecx, esi); a.and(ecx, unchecked((int)0xFFFF0000)); a.or(ecx, edx);
        a.mov(__dword_ptr[rax + 4], ecx);
        a.mov(rcx, rsi); a.shr(rcx, 32);
        a.mov(__qword_ptr[rax + 8], rcx);
        a.pop(rcx); a.pop(rax);
        a.ret();
        foreach (int v in Recorded)
        {
            a.Label(ref k.Handlers[v]);
            a.mov(__dword_ptr[VectorSlot], v);
            a.hlt();
            a.Label(ref k.HandlerEnds[v]);
            a.int3();   // never reached: the machine stops at the HLT
        }
        a.Label(ref over);
        a.lgdt(__[Gdtr]);
        a.mov(ax, KData); a.mov(ds, ax); a.mov(es, ax); a.mov(ss, ax);
        a.xor(eax, eax); a.mov(fs, ax); a.mov(gs, ax);
        a.mov(ax, TssSel); a.ltr(ax);
        for (int v = 0; v < 32; v++) k.SetGate(v, k.Handlers[v]);
        a.lidt(__[Idtr]);
        a.mov(__dword_ptr[VectorSlot], -1);
        // user access to the first 2 MiB (code, data, user stack); PD[3] → the test's page table
        a.or(__qword_ptr[TestKernel.Pml4], 4);
        a.or(__qword_ptr[TestKernel.Pdpt], 4);
        a.or(__qword_ptr[TestKernel.Pd], 4);
        a.mov(edi, (uint)Pt); a.mov(ecx, 512u); a.xor(eax, eax); a.rep.stosq();
        a.mov(__qword_ptr[TestKernel.Pd + 3 * 8], (int)(Pt | 7));
        a.mov(rax, cr3); a.mov(cr3, rax);
        return k;
    }

    /// <summary>Interrupt-gate attribute word: P=1, type 0xE (0xF for a trap gate), DPL and IST.</summary>
    public static int Attr(int dpl = 0, int ist = 0, bool present = true, bool trap = false)
        => (present ? 0x8000 : 0) | (dpl << 13) | ((trap ? 0xF : 0xE) << 8) | ist;

    /// <summary>Address of the recording handler of a vector (its 10-byte store, then HLT).</summary>
    public ulong HandlerAddress(Func<Label, ulong> at, int vector) => at(Handlers[vector]);
    public ulong HandlerEnd(Func<Label, ulong> at, int vector) => at(HandlerEnds[vector]);

    public void SetGate(int vector, Label handler, int attr = 0x8E00)
    {
        var a = _a;
        a.mov(edi, vector);
        a.lea(rsi, __[handler]);
        a.mov(edx, attr);
        a.call(SetGateFn);
    }

    /// <summary>Maps 4 KiB page n of the test window (linear PtBase + n*4096) with a raw entry value.</summary>
    public void MapPage(int n, ulong entry)
    {
        _a.mov(rax, entry);
        _a.mov(__qword_ptr[Pt + (ulong)(8 * n)], rax);
    }

    /// <summary>IRETQ to 64-bit user code at <paramref name="target"/> with the user stack and RFLAGS.</summary>
    public void EnterUser(Label target, ulong rflags = 0x2, ulong rsp = UserStackTop)
    {
        var a = _a;
        a.push(UData);
        a.mov(rax, rsp); a.push(rax);
        a.push((int)rflags);
        a.push(UCode64);
        a.lea(rax, __[target]); a.push(rax);
        a.iretq();
    }

    public void EnableSyscall(Label lstar, uint sfmask = 0x200)
    {
        var a = _a;
        a.mov(ecx, 0xC0000080u); a.rdmsr(); a.or(eax, 1); a.wrmsr();
        a.mov(ecx, 0xC0000081u); a.mov(eax, (uint)(Star & 0xFFFFFFFF)); a.mov(edx, (uint)(Star >> 32)); a.wrmsr();
        a.mov(ecx, 0xC0000082u); a.lea(rax, __[lstar]); a.mov(rdx, rax); a.shr(rdx, 32); a.wrmsr();
        a.mov(ecx, 0xC0000084u); a.mov(eax, sfmask); a.xor(edx, edx); a.wrmsr();
    }

    /// <summary>Builds a kernel: the prologue, then the body; the body ends with its own exit or fault.</summary>
    public static Built Build(Action<Assembler, GuestKit> body)
    {
        GuestKit? kit = null;
        var image = TestKernel.Build(a => { kit = Emit(a); body(a, kit); }, Data(), out var at);
        return new Built(image, at, kit!);
    }

    public sealed record Built(byte[] Image, Func<Label, ulong> At, GuestKit Kit);
}
