using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Isa;

/// <summary>
/// A multiboot kernel that calls a task whose TSS is the 80286's 16-bit format (SDM vol. 3A §8.6, figure 8-10) and
/// comes back by IRET: the 16-bit task stores the registers it starts with (the words of its TSS under the upper halves
/// the registers had, EFLAGS with NT, FS and GS null), changes two, and returns; the kernel then prints what
/// it stored, the words the switch back saved into the 16-bit TSS, the link and both busy bits. The transcript is
/// checked exactly, and is the same under QEMU.
/// </summary>
[Trait("Category", "Isa")]
public class Tss16GuestTests
{
    private const uint Gdtr = 0x203000, Gdt = 0x203100, TssA = 0x204000, TssB = 0x205000, Stored = 0x6000, TaskCode = 0x7000, Stack0 = 0x2F0000;

    /// <summary>The 16-bit task (32-bit code at 7000H, below 64 KiB since a 16-bit TSS holds only IP).</summary>
    private static byte[] TaskB()
    {
        var a = new Assembler(32);
        AssemblerRegister32[] regs = [eax, ecx, edx, ebx, esp, ebp, esi, edi];
        for (int r = 0; r < 8; r++) a.mov(__dword_ptr[Stored + 4 * (uint)r], regs[r]);
        a.pushfd(); a.pop(eax); a.mov(__dword_ptr[Stored + 0x20], eax);
        a.mov(eax, fs); a.mov(__dword_ptr[Stored + 0x24], eax);
        a.mov(eax, gs); a.mov(__dword_ptr[Stored + 0x28], eax);
        a.mov(eax, 0x12345678); a.mov(esi, 0xAAAA5555);
        a.iretd();                                                         // NT=1: back to the calling task
        var w = new MemoryStream();
        a.Assemble(new StreamCodeWriter(w), TaskCode);
        return w.ToArray();
    }

    public const string Transcript =
        "eax=a0001100 ecx=a1001111 edx=a2001122 ebx=a3001133 esp=002fff00 ebp=a5001155 esi=a6001166 edi=a7001177 fl=00004803 fs=00000000 gs=00000000\n" +
        "ip=0000704f fl=00000803 ax=00005678 cx=00001111 dx=00001122 bx=00001133 sp=0000ff00 bp=00001155 si=00005555 di=00001177 es=00000018 cs=00000010 ss=00000030 ds=00000018 link=00000020\n" +
        "busy a=0000008b b=00000081\n";

    public static byte[] Kernel() => Images.Flat32(a =>
    {
        var hex = a.CreateLabel(); var main = a.CreateLabel();
        a.jmp(main);

        // ---- hex: prints EAX as 8 hex digits (clobbers eax, ebx, ecx, edx) ----
        a.Label(ref hex);
        TestKernel.PrintHex32(a);
        a.ret();

        a.Label(ref main);
        a.cli();
        a.mov(esp, Stack0);
        // GDT: null, null, 10H flat code, 18H flat data, 20H 32-bit TSS A (available; LTR makes it busy), 28H 16-bit
        // TSS B (available), 30H a 16-bit data segment at 80000H for B's stack (B=0: SP moves, not ESP).
        a.mov(__dword_ptr[Gdt], 0); a.mov(__dword_ptr[Gdt + 4], 0);
        a.mov(__dword_ptr[Gdt + 8], 0); a.mov(__dword_ptr[Gdt + 12], 0);
        a.mov(__dword_ptr[Gdt + 16], 0x0000FFFF); a.mov(__dword_ptr[Gdt + 20], 0x00CF9A00);
        a.mov(__dword_ptr[Gdt + 24], 0x0000FFFF); a.mov(__dword_ptr[Gdt + 28], 0x00CF9200);
        a.mov(__dword_ptr[Gdt + 32], (int)(((TssA & 0xFFFF) << 16) | 0x67)); a.mov(__dword_ptr[Gdt + 36], (int)(((TssA >> 16) & 0xFF) | 0x8900));
        a.mov(__dword_ptr[Gdt + 40], (int)(((TssB & 0xFFFF) << 16) | 0x2B)); a.mov(__dword_ptr[Gdt + 44], (int)(((TssB >> 16) & 0xFF) | 0x8100));
        a.mov(__dword_ptr[Gdt + 48], 0x0000FFFF); a.mov(__dword_ptr[Gdt + 52], 0x00009308);
        a.mov(__word_ptr[Gdtr], 55); a.mov(__dword_ptr[Gdtr + 2], Gdt);
        a.lgdt(__fword_ptr[Gdtr]);
        // Reload CS with 10H and the data segments with 18H: the task switch back saves and reloads them (QEMU's
        // multiboot loader leaves CS = 08H, DS = 10H; Emu64's 10H and 18H). The CALL pushes the address of the ADD;
        // ADD moves it past the RETF (a 4-byte ADD and a 1-byte RETF), and RETF loads CS.
        var next = a.CreateLabel();
        a.push(0x10);
        a.call(next);
        a.Label(ref next);
        a.add(__dword_ptr[esp], 5);
        a.retf();
        a.mov(ax, 0x18); a.mov(ds, ax); a.mov(es, ax); a.mov(ss, ax);
        a.mov(ax, 0x20); a.ltr(ax);
        a.mov(ax, 0x18); a.mov(fs, ax); a.mov(gs, ax);
        // TSS B's words: IP, FLAGS (OF, CF), AX..DI (SP = FF00H), ES CS SS DS, no LDT.
        a.mov(__word_ptr[TssB + 0x0E], (int)TaskCode);
        a.mov(__word_ptr[TssB + 0x10], 0x0803);
        for (int r = 0; r < 8; r++) a.mov(__word_ptr[TssB + 0x12 + 2 * (uint)r], r == 4 ? 0xFF00 : 0x1100 + 0x11 * r);
        ushort[] sregs = [0x18, 0x10, 0x30, 0x18];
        for (int s = 0; s < 4; s++) a.mov(__word_ptr[TssB + 0x22 + 2 * (uint)s], sregs[s]);
        a.mov(__word_ptr[TssB + 0x2A], 0);
        byte[] task = TaskB();
        for (int k = 0; k < task.Length; k++) a.mov(__byte_ptr[TaskCode + (uint)k], task[k]);

        // Known upper halves: the 16-bit task loads only the low words of the general registers.
        AssemblerRegister32[] gprs = [eax, ecx, edx, ebx, esp, ebp, esi, edi];
        for (int r = 0; r < 8; r++) if (r != 4) a.mov(gprs[r], unchecked((int)(0xA0000000u + ((uint)r << 24))));
        a.call(0x28, 0);                                                   // call far to TSS B (the offset is ignored)

        string[] names = ["eax=", " ecx=", " edx=", " ebx=", " esp=", " ebp=", " esi=", " edi=", " fl=", " fs=", " gs="];
        for (int k = 0; k < names.Length; k++)
        {
            TestKernel.Print(a, names[k]);
            a.mov(eax, __dword_ptr[Stored + 4 * (uint)k]); a.call(hex);
        }
        TestKernel.Print(a, "\n");
        string[] words = ["ip=", " fl=", " ax=", " cx=", " dx=", " bx=", " sp=", " bp=", " si=", " di=", " es=", " cs=", " ss=", " ds="];
        for (int k = 0; k < words.Length; k++)
        {
            TestKernel.Print(a, words[k]);
            a.movzx(eax, __word_ptr[TssB + 0x0E + 2 * (uint)k]); a.call(hex);
        }
        TestKernel.Print(a, " link=");
        a.movzx(eax, __word_ptr[TssB]); a.call(hex);
        TestKernel.Print(a, "\nbusy a=");
        a.movzx(eax, __byte_ptr[Gdt + 32 + 5]); a.call(hex);
        TestKernel.Print(a, " b=");
        a.movzx(eax, __byte_ptr[Gdt + 40 + 5]); a.call(hex);
        TestKernel.Print(a, "\n");
        a.mov(al, 0); a.@out(0xF4, al);                                    // isa-debug-exit
    });

    [Fact]
    public void A_kernel_that_calls_a_16_bit_task_prints_its_transcript()
    {
        var r = Run.Image(Kernel(), maxInstructions: 1_000_000);
        Assert.Equal(Transcript, r.Console);
    }

    [Emu64.Tests.Platform.QemuFact]
    public void The_16_bit_task_kernel_prints_the_same_transcript_under_QEMU()
    {
        Assert.Equal(Transcript, Emu64.Tests.Platform.Qemu.Run(Kernel()));
    }
}
