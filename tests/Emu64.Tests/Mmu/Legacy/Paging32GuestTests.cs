using Emu64.Tests.Platform;
using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Mmu.Legacy;

/// <summary>
/// A multiboot kernel that stays in 32-bit protected mode and turns on 32-bit paging with CR4.PSE and CR4.PGE,
/// the way a hobby kernel does: its own GDT and IDT, a 4 MiB identity page for itself, a page table that maps
/// its first page read-only at 1 GiB, and a global 4 MiB alias at 2 GiB. It reads a message through the
/// mapping, writes through one mapping and reads back through another, prints the paging entries with the A
/// and D bits the walks set, and ends with a supervisor write to the read-only page: its #PF handler prints
/// CR2 and the error code. The transcript is checked exactly, and is the same under QEMU.
/// </summary>
[Trait("Category", "Mmu")]
public class Paging32GuestTests
{
    private const uint Pd = 0x200000, Pt = 0x201000, Idt = 0x202000, Gdtr = 0x203000, Idtr = 0x203010, Gdt = 0x203100, Stack = 0x2F0000;

    public const string Transcript =
        "paging32: hello through 0x40000000\n" +
        "alias=12345678\n" +
        "pde0=000000e3 pde100=00201023 pde200=000001a3 pte0=00100021 pte1=00300063\n" +
        "#PF cr2=40000000 err=00000003\n";

    public static byte[] Kernel() => Images.Flat32(a =>
    {
        // Iced cannot take a label's address in 32-bit code, so the code finds its own addresses: a CALL pushes the
        // address of what follows it (the #PF handler, the message), and a far return reloads CS.
        var flat = a.CreateLabel(); var pfAddr = a.CreateLabel(); var msgAddr = a.CreateLabel();
        a.cli();
        a.mov(esp, Stack);
        // GDT at 0x203100: null, flat 32-bit code 0x08, flat data 0x10; GDTR and IDTR at 0x203000 / 0x203010.
        a.mov(__dword_ptr[Gdt], 0); a.mov(__dword_ptr[Gdt + 4], 0);
        a.mov(__dword_ptr[Gdt + 8], 0x0000FFFF); a.mov(__dword_ptr[Gdt + 12], 0x00CF9A00);
        a.mov(__dword_ptr[Gdt + 16], 0x0000FFFF); a.mov(__dword_ptr[Gdt + 20], 0x00CF9200);
        a.mov(__word_ptr[Gdtr], 23); a.mov(__dword_ptr[Gdtr + 2], Gdt);
        a.mov(__word_ptr[Idtr], 0x7FF); a.mov(__dword_ptr[Idtr + 2], Idt);
        a.lgdt(__fword_ptr[Gdtr]);
        a.push(0x08);
        a.call(flat);            // pushes the address of the ADD below
        a.Label(ref flat);
        var jump = a.CreateLabel();
        a.jmp(jump);
        var reload = a.CreateLabel();
        a.Label(ref reload);
        a.mov(ax, 0x10); a.mov(ds, ax); a.mov(es, ax); a.mov(ss, ax); a.mov(fs, ax); a.mov(gs, ax);
        var flatDone = a.CreateLabel();
        a.jmp(flatDone);
        a.Label(ref jump);
        // [esp] = address of "jmp jump" (2 bytes); the reload code starts right after it.
        a.add(__dword_ptr[esp], 2);
        a.retf();
        a.Label(ref flatDone);
        // Zero the page directory, the page table and the IDT (three pages from 0x200000).
        a.mov(edi, Pd); a.mov(ecx, 3 * 1024); a.xor(eax, eax); a.rep.stosd();
        // IDT entry 14: 32-bit interrupt gate to the #PF handler.
        a.call(pfAddr);
        // ---- the #PF handler ----
        a.mov(eax, cr2); Show(a, "#PF cr2=", " ");
        a.pop(eax); Show(a, "err=", "\n");
        a.mov(dx, TestKernel.ExitPort); a.mov(eax, 0); a.@out(dx, eax);
        a.hlt();
        a.Label(ref pfAddr);
        a.pop(eax);
        a.mov(__word_ptr[Idt + 14 * 8], ax);
        a.mov(__word_ptr[Idt + 14 * 8 + 2], 0x08);
        a.mov(__word_ptr[Idt + 14 * 8 + 4], 0x8E00);
        a.shr(eax, 16);
        a.mov(__word_ptr[Idt + 14 * 8 + 6], ax);
        a.lidt(__fword_ptr[Idtr]);
        // PDE 0: 4 MiB identity (PS|RW|P). PDE 0x100 (1 GiB): the page table. PDE 0x200 (2 GiB): global 4 MiB alias of 0.
        a.mov(__dword_ptr[Pd + 0], 0x83);
        a.mov(__dword_ptr[Pd + 0x100 * 4], Pt | 3);
        a.mov(__dword_ptr[Pd + 0x200 * 4], 0x183);
        a.mov(__dword_ptr[Pt + 0], 0x0010_0001);    // 1 GiB -> the kernel's first page, read-only supervisor
        a.mov(__dword_ptr[Pt + 4], 0x0030_0003);    // 1 GiB + 4 KiB -> 0x300000, read-write
        a.mov(eax, Pd); a.mov(cr3, eax);
        a.mov(eax, cr4); a.or(eax, (1 << 4) | (1 << 7)); a.mov(cr4, eax);              // PSE | PGE
        a.mov(eax, cr0); a.or(eax, unchecked((int)0x8001_0000u)); a.mov(cr0, eax);      // PG | WP
        // The message, read byte by byte through the page at 1 GiB.
        a.call(msgAddr);
        a.db(System.Text.Encoding.ASCII.GetBytes("paging32: hello through 0x40000000\n\0"));
        a.Label(ref msgAddr);
        a.pop(esi);
        a.sub(esi, 0x0010_0000); a.add(esi, 0x4000_0000);
        var loop = a.CreateLabel(); var done = a.CreateLabel();
        a.Label(ref loop);
        a.mov(al, __byte_ptr[esi]);
        a.test(al, al); a.jz(done);
        a.mov(dx, TestKernel.Com1); a.@out(dx, al);
        a.inc(esi); a.jmp(loop);
        a.Label(ref done);
        // Write through 1 GiB + 4 KiB, read back through the 2 GiB alias of physical 0x300000.
        a.mov(__dword_ptr[0x4000_1000u], 0x1234_5678);
        a.mov(eax, __dword_ptr[0x8030_0000u]);
        Show(a, "alias=", "\n");
        a.mov(eax, __dword_ptr[Pd + 0]); Show(a, "pde0=", " ");
        a.mov(eax, __dword_ptr[Pd + 0x100 * 4]); Show(a, "pde100=", " ");
        a.mov(eax, __dword_ptr[Pd + 0x200 * 4]); Show(a, "pde200=", " ");
        a.mov(eax, __dword_ptr[Pt + 0]); Show(a, "pte0=", " ");
        a.mov(eax, __dword_ptr[Pt + 4]); Show(a, "pte1=", "\n");
        a.mov(__dword_ptr[0x4000_0000u], eax);   // read-only page, CR0.WP = 1: #PF
        TestKernel.Print(a, "no fault\n");
    });

    /// <summary>Prints <paramref name="label"/>, EAX as 8 hex digits, and <paramref name="end"/> (clobbers eax, ebx, ecx, edx).</summary>
    private static void Show(Assembler a, string label, string end)
    {
        a.push(eax);
        TestKernel.Print(a, label);
        a.pop(eax);
        var loop = a.CreateLabel(); var digit = a.CreateLabel();
        a.mov(ebx, eax); a.mov(ecx, 8);
        a.Label(ref loop);
        a.rol(ebx, 4); a.mov(eax, ebx); a.and(eax, 0xF); a.add(eax, '0'); a.cmp(eax, '9'); a.jbe(digit); a.add(eax, 'a' - '9' - 1);
        a.Label(ref digit);
        a.mov(dx, TestKernel.Com1); a.@out(dx, al);
        a.dec(ecx); a.jnz(loop);
        TestKernel.Print(a, end);
    }

    [Fact]
    public void A_32_bit_kernel_with_PSE_and_global_pages_prints_its_transcript_and_takes_the_page_fault_it_expects()
    {
        var r = Run.Image(Kernel(), maxInstructions: 1_000_000);
        Assert.Equal(Transcript, r.Console);
    }

    [Emu64.Tests.Platform.QemuFact]
    public void The_32_bit_paging_kernel_prints_the_same_transcript_under_QEMU()
    {
        Assert.Equal(Transcript, Emu64.Tests.Platform.Qemu.Run(Kernel()));
    }
}
