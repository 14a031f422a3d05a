using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Foundation;

/// <summary>
/// Guest subroutines a QEMU-style kernel body uses, emitted once at the start of a body: putc (AL,
/// waiting for the 16550's THR-empty bit as a real driver does), puts (RSI, NUL-terminated), print_hex
/// (RAX, 16 digits) and print_dec (RAX, unsigned). All preserve every register except flags.
/// </summary>
public sealed class GuestLib
{
    public Label Putc, Puts, PrintHex, PrintDec;
    private readonly Assembler _a;

    private GuestLib(Assembler a) { _a = a; }

    public static GuestLib Emit(Assembler a)
    {
        var g = new GuestLib(a)
        {
            Putc = a.CreateLabel(), Puts = a.CreateLabel(), PrintHex = a.CreateLabel(), PrintDec = a.CreateLabel(),
        };
        var over = a.CreateLabel();
        a.jmp(over);

        a.Label(ref g.Putc);
        var wait = a.CreateLabel();
        a.push(rdx); a.push(rax);
        a.mov(dx, (ushort)0x3FD);
        a.Label(ref wait);
        a.@in(al, dx);
        a.test(al, 0x20);
        a.jz(wait);
        a.pop(rax);
        a.mov(dx, (ushort)0x3F8);
        a.@out(dx, al);
        a.pop(rdx);
        a.ret();

        a.Label(ref g.Puts);
        var ploop = a.CreateLabel(); var pdone = a.CreateLabel();
        a.push(rax); a.push(rsi);
        a.Label(ref ploop);
        a.mov(al, __byte_ptr[rsi]);
        a.test(al, al);
        a.jz(pdone);
        a.call(g.Putc);
        a.inc(rsi);
        a.jmp(ploop);
        a.Label(ref pdone);
        a.pop(rsi); a.pop(rax);
        a.ret();

        a.Label(ref g.PrintHex);
        var hloop = a.CreateLabel(); var hdig = a.CreateLabel();
        a.push(rax); a.push(rbx); a.push(rcx);
        a.mov(rbx, rax);
        a.mov(ecx, 16);
        a.Label(ref hloop);
        a.rol(rbx, 4);
        a.mov(eax, ebx);
        a.and(eax, 15);
        a.cmp(eax, 10);
        a.jb(hdig);
        a.add(eax, 'a' - 10 - '0');
        a.Label(ref hdig);
        a.add(eax, '0');
        a.call(g.Putc);
        a.dec(ecx);
        a.jnz(hloop);
        a.pop(rcx); a.pop(rbx); a.pop(rax);
        a.ret();

        a.Label(ref g.PrintDec);
        var d1 = a.CreateLabel(); var d2 = a.CreateLabel();
        a.push(rax); a.push(rbx); a.push(rcx); a.push(rdx);
        a.mov(ebx, 10);
        a.xor(ecx, ecx);
        a.Label(ref d1);
        a.xor(edx, edx);
        a.div(rbx);
        a.push(rdx);
        a.inc(ecx);
        a.test(rax, rax);
        a.jnz(d1);
        a.Label(ref d2);
        a.pop(rax);
        a.add(al, (byte)'0');
        a.call(g.Putc);
        a.dec(ecx);
        a.jnz(d2);
        a.pop(rdx); a.pop(rcx); a.pop(rbx); a.pop(rax);
        a.ret();

        a.Label(ref over);
        return g;
    }

    /// <summary>Prints a literal string (the bytes live inline, jumped over).</summary>
    public void Str(string s)
    {
        var a = _a;
        var text = a.CreateLabel(); var after = a.CreateLabel();
        a.jmp(after);
        a.Label(ref text);
        a.db(System.Text.Encoding.Latin1.GetBytes(s + "\0"));
        a.Label(ref after);
        a.push(rsi);
        a.lea(rsi, __[text]);
        a.call(Puts);
        a.pop(rsi);
    }

    public void Hex(AssemblerRegister64 r) { if (r != rax) { _a.push(rax); _a.mov(rax, r); _a.call(PrintHex); _a.pop(rax); } else _a.call(PrintHex); }
    public void Dec(AssemblerRegister64 r) { if (r != rax) { _a.push(rax); _a.mov(rax, r); _a.call(PrintDec); _a.pop(rax); } else _a.call(PrintDec); }
}
