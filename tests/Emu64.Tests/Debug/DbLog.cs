using Emu64.Cpu;
using Emu64.Tests.Foundation;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Debug;

/// <summary>
/// A guest-side log of delivered events for the debug tests: a #DB handler (and optional handlers for other vectors)
/// that appends {vector, pushed RIP, DR6, pushed RFLAGS, RCX} to a table, then returns with IRETQ. Like the handlers of the
/// SDM's examples and of real debuggers it sets RF in the frame after an instruction breakpoint (DR6.B0-B3 set and
/// an execute breakpoint hit), and after <see cref="Limit"/> records it clears TF and DR7 so a wrong run cannot loop.
/// </summary>
public static class DbLog
{
    public const ulong Count = GuestKit.Results + 0x3F0, Table = GuestKit.Results + 0x400;
    public const int Limit = 16;

    public readonly record struct Entry(int Vector, ulong Rip, ulong Dr6, ulong Rflags, ulong Rcx);

    /// <summary>Emits a jump over the handlers, the handlers, and the gates; the returned labels are the handlers.</summary>
    public static void Install(Assembler a, GuestKit k, params int[] vectors)
    {
        var over = a.CreateLabel();
        a.jmp(over);
        var handlers = new Label[vectors.Length];
        for (int n = 0; n < vectors.Length; n++)
        {
            handlers[n] = a.CreateLabel();
            a.Label(ref handlers[n]);
            EmitHandler(a, vectors[n]);
        }
        a.Label(ref over);
        a.mov(__qword_ptr[Count], 0);
        // #DB runs on IST1, so that its frame never lands on the stack a test watches (and a #DB delivered at the first
        // instruction of another handler does not overwrite that handler's frame); the others use the current stack.
        for (int n = 0; n < vectors.Length; n++) k.SetGate(vectors[n], handlers[n], GuestKit.Attr(ist: vectors[n] == Vec.DB ? 1 : 0));
    }

    private static void EmitHandler(Assembler a, int vector)
    {
        var noRf = a.CreateLabel();
        var underLimit = a.CreateLabel();
        a.push(rax); a.push(rbx); a.push(rcx); a.push(rdx);
        a.mov(rbx, __qword_ptr[Count]);
        a.shl(rbx, 6);
        a.mov(__qword_ptr[rbx + (int)Table], vector);
        a.mov(rax, __qword_ptr[rsp + 32]); a.mov(__qword_ptr[rbx + (int)Table + 8], rax);     // RIP
        a.mov(rax, dr6); a.mov(__qword_ptr[rbx + (int)Table + 16], rax);                        // DR6
        a.mov(rax, __qword_ptr[rsp + 48]); a.mov(__qword_ptr[rbx + (int)Table + 24], rax);    // RFLAGS
        a.mov(__qword_ptr[rbx + (int)Table + 32], rcx);                                         // RCX
        a.inc(__qword_ptr[Count]);
        if (vector == Vec.DB)
        {
            a.mov(rax, dr6);
            a.test(al, 0xF);
            a.jz(noRf);
            a.bts(__qword_ptr[rsp + 48], 16);                                                  // resume past the breakpoint
            a.Label(ref noRf);
            a.xor(eax, eax);
            a.mov(dr6, rax);
        }
        else a.Label(ref noRf);
        a.cmp(__qword_ptr[Count], Limit);
        a.jb(underLimit);
        a.btr(__qword_ptr[rsp + 48], 8);
        a.xor(eax, eax); a.mov(dr7, rax);
        a.Label(ref underLimit);
        if (vector is >= 32 and < 0xFF) { a.mov(ecx, 0x80Bu); a.xor(eax, eax); a.xor(edx, edx); a.wrmsr(); }  // x2APIC EOI
        a.pop(rdx); a.pop(rcx); a.pop(rbx); a.pop(rax);
        a.iretq();
    }

    public static Entry[] Read(Trap t)
    {
        int n = (int)t.Mem(Count);
        var e = new Entry[Math.Min(n, Limit)];
        for (int k = 0; k < e.Length; k++)
        {
            ulong b = Table + 64 * (ulong)k;
            e[k] = new((int)t.Mem(b), t.Mem(b + 8), t.Mem(b + 16), t.Mem(b + 24), t.Mem(b + 32));
        }
        return e;
    }
}
