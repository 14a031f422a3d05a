using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Isa;

/// <summary>
/// A multiboot kernel that is its own virtual-8086 monitor, as a DOS extender or an old kernel's VM86 support is:
/// its GDT (code 10H, data 18H as the multiboot loader left them, a TSS at 20H with an I/O permission bitmap that
/// allows COM1 and denies port 80H), an IDT with a ring-0 #GP handler and an INT 21H interrupt gate of DPL 3, and
/// an IRETD into 16-bit code at 2000:0000 with IOPL 0. That code prints through COM1 itself (the bitmap allows it),
/// then runs IN from port 80H, INT 21H and CLI: each is #GP(0), and the monitor prints the error code and the
/// virtual-8086 frame (EIP, CS, EFLAGS, ESP, SS, ES, DS, FS, GS) and the DS it was entered with, and steps over the
/// instruction; at the CLI it raises the frame's IOPL to 3. Then INT 21H goes through the IDT to its handler, CLI is
/// allowed, IN from port 80H still faults (the bitmap is checked whatever IOPL is), and HLT ends the run. The
/// transcript is checked exactly, and is the same under QEMU.
/// </summary>
[Trait("Category", "Isa")]
public class Virtual8086GuestTests
{
    private const uint Idt = 0x202000, Gdtr = 0x203000, Idtr = 0x203010, Gdt = 0x203100, Tss = 0x204000, Stack0 = 0x2F0000;
    private const uint V86Code = 0x20000;

    /// <summary>The 16-bit program (its offsets are the EIPs the transcript shows).</summary>
    private static byte[] V86Program()
    {
        var a = new Assembler(16);
        a.mov(dx, 0x3F8);
        foreach (char ch in "v86\n") { a.mov(al, (byte)ch); a.@out(dx, al); }
        a.@in(al, 0x80);                                                   // #GP: the bitmap denies port 80H
        a.@int(0x21);                                                      // #GP: IOPL 0
        a.cli();                                                           // #GP: IOPL 0; the monitor sets IOPL 3
        a.@int(0x21);                                                      // through the IDT now
        a.cli();                                                           // allowed
        a.@in(al, 0x80);                                                   // #GP: still the bitmap
        a.hlt();                                                           // #GP: the monitor ends the run
        var w = new MemoryStream();
        a.Assemble(new StreamCodeWriter(w), 0);
        return w.ToArray();
    }

    public const string Transcript =
        "v86\n" +
        "#GP err=00000000 eip=0000000f cs=00002000 fl=00030002 sp=00001000 ss=00003000 es=00004000 ds=00005000 fs=00000000 gs=00000000 ds0=00000000\n" +
        "#GP err=00000000 eip=00000011 cs=00002000 fl=00030002 sp=00001000 ss=00003000 es=00004000 ds=00005000 fs=00000000 gs=00000000 ds0=00000000\n" +
        "#GP err=00000000 eip=00000013 cs=00002000 fl=00030002 sp=00001000 ss=00003000 es=00004000 ds=00005000 fs=00000000 gs=00000000 ds0=00000000\n" +
        "INT21 eip=00000016 cs=00002000 fl=00023002 sp=00001000 ss=00003000 es=00004000 ds=00005000 fs=00000000 gs=00000000 ds0=00000000\n" +
        "#GP err=00000000 eip=00000017 cs=00002000 fl=00033002 sp=00001000 ss=00003000 es=00004000 ds=00005000 fs=00000000 gs=00000000 ds0=00000000\n" +
        "#GP err=00000000 eip=00000019 cs=00002000 fl=00033002 sp=00001000 ss=00003000 es=00004000 ds=00005000 fs=00000000 gs=00000000 ds0=00000000\n" +
        "end\n";

    public static byte[] Kernel() => Images.Flat32(a =>
    {
        // Iced cannot take a label's address in 32-bit code, so each handler's address comes from the CALL just
        // before it, as in Paging32GuestTests.
        var hex = a.CreateLabel(); var frame = a.CreateLabel(); var gpAddr = a.CreateLabel(); var intAddr = a.CreateLabel();
        var setup = a.CreateLabel();
        a.cli();
        a.mov(esp, Stack0);
        // Zero the IDT and the TSS with its I/O bitmap (all ports allowed).
        a.mov(edi, Idt); a.mov(ecx, 0x800 / 4); a.xor(eax, eax); a.rep.stosd();
        a.mov(edi, Tss); a.mov(ecx, 0x2070 / 4); a.rep.stosd();

        // ---- the #GP handler: the monitor ----
        a.call(gpAddr);
        {
            var one = a.CreateLabel(); var two = a.CreateLabel(); var back = a.CreateLabel();
            a.mov(edi, ds);                                                // null: entering from VM86 cleared it
            a.mov(ax, 0x18); a.mov(ds, ax); a.mov(es, ax);
            TestKernel.Print(a, "#GP err=");
            a.mov(eax, __dword_ptr[esp]); a.call(hex);
            TestKernel.Print(a, " ");
            a.lea(esi, __dword_ptr[esp + 4]); a.call(frame);
            // The faulting opcode at CS × 16 + EIP decides how far to step.
            a.movzx(eax, __word_ptr[esp + 8]); a.shl(eax, 4); a.add(eax, __dword_ptr[esp + 4]);
            a.mov(bl, __byte_ptr[eax]);
            a.cmp(bl, 0xF4); a.jne(one);
            TestKernel.Print(a, "end\n");
            a.mov(al, 0); a.@out(0xF4, al);                                // isa-debug-exit
            a.hlt();
            a.Label(ref one);
            a.cmp(bl, 0xFA); a.jne(two);
            a.or(__dword_ptr[esp + 12], 0x3000);                           // CLI: IOPL 3 from now on
            a.add(__dword_ptr[esp + 4], 1);
            a.jmp(back);
            a.Label(ref two);
            a.add(__dword_ptr[esp + 4], 2);                                // IN AL, imm8 and INT imm8
            a.Label(ref back);
            a.add(esp, 4);                                                 // the error code
            a.iretd();
        }
        a.Label(ref gpAddr);
        a.pop(eax);
        a.mov(__word_ptr[Idt + 13 * 8], ax);                               // gate 13: 32-bit interrupt gate, DPL 0
        a.mov(__word_ptr[Idt + 13 * 8 + 2], 0x10);
        a.mov(__word_ptr[Idt + 13 * 8 + 4], 0x8E00);
        a.shr(eax, 16); a.mov(__word_ptr[Idt + 13 * 8 + 6], ax);

        // ---- INT 21H's handler ----
        a.call(intAddr);
        {
            a.mov(edi, ds);
            a.mov(ax, 0x18); a.mov(ds, ax); a.mov(es, ax);
            TestKernel.Print(a, "INT21 ");
            a.mov(esi, esp); a.call(frame);
            a.iretd();
        }
        a.Label(ref intAddr);
        a.pop(eax);
        a.mov(__word_ptr[Idt + 0x21 * 8], ax);                             // gate 21H: 32-bit interrupt gate, DPL 3
        a.mov(__word_ptr[Idt + 0x21 * 8 + 2], 0x10);
        a.mov(__word_ptr[Idt + 0x21 * 8 + 4], 0xEE00);
        a.shr(eax, 16); a.mov(__word_ptr[Idt + 0x21 * 8 + 6], ax);
        a.jmp(setup);

        // ---- hex: prints EAX as 8 hex digits (clobbers eax, ebx, ecx, edx) ----
        a.Label(ref hex);
        TestKernel.PrintHex32(a);
        a.ret();

        // ---- frame: prints the nine doublewords at [ESI] (EIP..GS) and EDI (the DS the handler was entered with) ----
        a.Label(ref frame);
        {
            string[] names = ["eip=", " cs=", " fl=", " sp=", " ss=", " es=", " ds=", " fs=", " gs="];
            for (int k = 0; k < names.Length; k++)
            {
                TestKernel.Print(a, names[k]);
                a.mov(eax, __dword_ptr[esi + 4 * k]); a.call(hex);
            }
            TestKernel.Print(a, " ds0=");
            a.mov(eax, edi); a.call(hex);
            TestKernel.Print(a, "\n");
            a.ret();
        }

        a.Label(ref setup);
        // GDT: null, null, 10H flat code, 18H flat data (the multiboot selectors), 20H the TSS (limit 2068H: the
        // 68H bytes, then 2000H bytes of bitmap and the FFH byte after it).
        a.mov(__dword_ptr[Gdt], 0); a.mov(__dword_ptr[Gdt + 4], 0);
        a.mov(__dword_ptr[Gdt + 8], 0); a.mov(__dword_ptr[Gdt + 12], 0);
        a.mov(__dword_ptr[Gdt + 16], 0x0000FFFF); a.mov(__dword_ptr[Gdt + 20], 0x00CF9A00);
        a.mov(__dword_ptr[Gdt + 24], 0x0000FFFF); a.mov(__dword_ptr[Gdt + 28], 0x00CF9200);
        a.mov(__dword_ptr[Gdt + 32], (int)(((Tss & 0xFFFF) << 16) | 0x2068)); a.mov(__dword_ptr[Gdt + 36], (int)(((Tss >> 16) & 0xFF) | 0x8900));
        a.mov(__word_ptr[Gdtr], 39); a.mov(__dword_ptr[Gdtr + 2], Gdt);
        a.mov(__word_ptr[Idtr], 0x7FF); a.mov(__dword_ptr[Idtr + 2], Idt);
        a.lgdt(__fword_ptr[Gdtr]);
        a.lidt(__fword_ptr[Idtr]);
        a.mov(__dword_ptr[Tss + 4], Stack0);                               // ESP0
        a.mov(__dword_ptr[Tss + 8], 0x18);                                 // SS0
        a.mov(__word_ptr[Tss + 0x66], 0x68);                               // the I/O map base
        a.mov(__byte_ptr[Tss + 0x68 + 0x80 / 8], 0x01);                    // port 80H denied
        a.mov(__byte_ptr[Tss + 0x68 + 0x2000], 0xFF);
        a.mov(ax, 0x20); a.ltr(ax);
        // The 16-bit program at 2000:0000.
        byte[] prog = V86Program();
        for (int k = 0; k < prog.Length; k++) a.mov(__byte_ptr[V86Code + (uint)k], prog[k]);
        // IRETD into virtual-8086 mode: GS FS DS ES SS ESP EFLAGS (VM, IOPL 0, IF 0) CS EIP.
        a.push(0); a.push(0); a.push(0x5000); a.push(0x4000); a.push(0x3000); a.push(0x1000);
        a.push(0x20002); a.push((int)(V86Code >> 4)); a.push(0);
        a.iretd();
    });

    [Fact]
    public void A_virtual_8086_monitor_kernel_prints_its_transcript()
    {
        var r = Run.Image(Kernel(), maxInstructions: 1_000_000);
        Assert.Equal(Transcript, r.Console);
    }

    /// <summary>
    /// QEMU's TCG (7.2) leaves RF out of the EFLAGS image a fault pushes, where the SDM sets it for every fault-class
    /// exception (vol. 3A §18.3.1.1; Emu64 does): its #GP lines read fl=0002xxxx. Everything else is the same.
    /// </summary>
    [Emu64.Tests.Platform.QemuFact]
    public void The_virtual_8086_monitor_kernel_prints_the_same_transcript_under_QEMU_but_for_RF_in_the_fault_frames()
    {
        Assert.Equal(Transcript.Replace("fl=0003", "fl=0002"), Emu64.Tests.Platform.Qemu.Run(Kernel()));
    }
}
