using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Bench;

/// <summary>
/// Builds the benchmark guests with Iced's Assembler: a multiboot image (header address fields) whose
/// 32-bit stub builds 4-level page tables — the first 1 GiB with 2 MiB pages, and the 64 KiB buffer at
/// 0x400000 with 4 KiB pages through a page table — enters long mode and runs a 64-bit loop forever.
/// </summary>
public static class LoopImage
{
    public const uint Load = 0x100000, Code64 = 0x101000, Pml4 = 0x200000, Pdpt = 0x201000, Pd = 0x202000, Pt = 0x203000;
    private const int GdtrOffset = 0x800;
    public const uint StackTop = 0x300000, Buffer = 0x400000, BufferBytes = 64 << 10;

    /// <summary>add rax, rcx; dec rcx; jnz — the three-instruction register loop.</summary>
    public static byte[] RegisterLoop() => Build(a =>
    {
        var outer = a.CreateLabel(); var inner = a.CreateLabel();
        a.Label(ref outer);
        a.mov(rcx, 1L << 40);
        a.Label(ref inner);
        a.add(rax, rcx);
        a.dec(rcx);
        a.jnz(inner);
        a.jmp(outer);
    });

    /// <summary>Load, add, store and advance over the 64 KiB buffer (4 KiB pages), again and again.</summary>
    public static byte[] MemoryLoop() => Build(a =>
    {
        var outer = a.CreateLabel(); var inner = a.CreateLabel();
        a.Label(ref outer);
        a.mov(esi, Buffer);
        a.mov(ecx, BufferBytes / 8);
        a.Label(ref inner);
        a.mov(rax, __qword_ptr[rsi]);
        a.add(rax, rcx);
        a.mov(__qword_ptr[rsi], rax);
        a.add(rsi, 8);
        a.dec(ecx);
        a.jnz(inner);
        a.jmp(outer);
    });

    /// <summary>
    /// SSE/SSE2 over the 64 KiB buffer (4 KiB pages): an unaligned 16-byte load, integer add, shuffle, xor, a packed
    /// single add, the 16-byte store back, advance (the buffer never settles: each pass adds to it). CR4.OSFXSR/OSXMMEXCPT are set first (without them SSE is #UD).
    /// </summary>
    public static byte[] SseLoop() => Build(a =>
    {
        var outer = a.CreateLabel(); var inner = a.CreateLabel();
        a.mov(rax, cr4); a.or(rax, 0x600); a.mov(cr4, rax);
        a.mov(eax, 0x3F800000); a.movd(xmm4, eax); a.pshufd(xmm4, xmm4, 0);   // 1.0f in every lane
        a.movdqa(xmm1, xmm4);
        a.mov(eax, 0x40000000); a.movd(xmm5, eax);                              // 2.0f in lane 0 only
        a.Label(ref outer);
        a.mov(esi, Buffer);
        a.mov(ecx, BufferBytes / 16);
        a.Label(ref inner);
        a.movdqu(xmm0, __xmmword_ptr[rsi]);
        a.paddq(xmm0, xmm1);
        a.pshufd(xmm2, xmm0, 0x1B);
        a.pxor(xmm2, xmm5);
        a.addps(xmm3, xmm4);
        a.movdqu(__xmmword_ptr[rsi], xmm2);
        a.add(rsi, 16);
        a.dec(ecx);
        a.jnz(inner);
        a.jmp(outer);
    });

    /// <summary>Instructions one pass of <see cref="RepLoop"/> retires (each REP retires once: both stay within one 4,096-iteration chunk).</summary>
    public const int RepLoopInstructions = 9;

    /// <summary>
    /// Linux's clear_page and copy_page with ERMS, again and again: REP STOSQ zeroes the buffer's first 4 KiB page, REP MOVSB
    /// copies it to the second (4 KiB pages, so each REP stays inside one page per operand).
    /// </summary>
    public static byte[] RepLoop() => Build(a =>
    {
        var outer = a.CreateLabel();
        a.Label(ref outer);
        a.mov(edi, Buffer); a.mov(ecx, 512); a.xor(eax, eax); a.rep.stosq();
        a.mov(esi, Buffer); a.mov(edi, Buffer + 0x1000); a.mov(ecx, 4096); a.rep.movsb();
        a.jmp(outer);
    });

    public static byte[] Build(Action<Assembler> loop)
    {
        var a32 = new Assembler(32);
        var start = a32.CreateLabel(); var fill = a32.CreateLabel(); var fillPt = a32.CreateLabel();
        uint flags = 1 | 2 | (1 << 16);
        foreach (var w in new uint[] { 0x1BADB002u, flags, unchecked(0u - 0x1BADB002u - flags), Load, Load, 0, StackTop, 0 }) a32.dd(w);
        a32.Label(ref start);
        a32.mov(esp, StackTop);
        a32.mov(edi, Pml4); a32.mov(ecx, 4 * 1024u); a32.xor(eax, eax); a32.rep.stosd();
        a32.mov(__dword_ptr[Pml4], Pdpt | 3);
        a32.mov(__dword_ptr[Pdpt], Pd | 3);
        a32.mov(edi, Pd); a32.mov(eax, 0x83u); a32.mov(ecx, 512u);
        a32.Label(ref fill);
        a32.mov(__dword_ptr[edi], eax); a32.add(eax, 0x200000u); a32.add(edi, 8u); a32.dec(ecx); a32.jnz(fill);
        // the buffer's 2 MiB region through a 4 KiB page table
        a32.mov(__dword_ptr[Pd + 8 * (Buffer >> 21)], Pt | 3);
        a32.mov(edi, Pt); a32.mov(eax, (Buffer & ~0x1FFFFFu) | 3); a32.mov(ecx, 512u);
        a32.Label(ref fillPt);
        a32.mov(__dword_ptr[edi], eax); a32.add(eax, 0x1000u); a32.add(edi, 8u); a32.dec(ecx); a32.jnz(fillPt);
        a32.mov(eax, Pml4); a32.mov(cr3, eax);
        a32.mov(eax, cr4); a32.or(eax, 1u << 5); a32.mov(cr4, eax);
        a32.mov(ecx, 0xC0000080u); a32.rdmsr(); a32.or(eax, 1u << 8); a32.wrmsr();
        a32.mov(eax, cr0); a32.or(eax, 0x80000001u); a32.mov(cr0, eax);
        a32.lgdt(__fword_ptr[Load + GdtrOffset]);
        a32.jmp(0x08, Code64);
        var stub = Assemble(a32, Load);
        var image = new byte[Code64 - Load + 0x1000];
        if (stub.Bytes.Length > GdtrOffset) throw new InvalidOperationException("stub too large");
        stub.Bytes.CopyTo(image, 0);
        BitConverter.GetBytes((uint)stub.Result.GetLabelRIP(start)).CopyTo(image, 28);   // multiboot entry_addr
        // GDTR at +0x800, GDT at +0x808: null, 64-bit code 0x08, data 0x10
        BitConverter.GetBytes((ushort)23).CopyTo(image, GdtrOffset);
        BitConverter.GetBytes(Load + GdtrOffset + 8).CopyTo(image, GdtrOffset + 2);
        BitConverter.GetBytes(0x00AF9A000000FFFFUL).CopyTo(image, GdtrOffset + 16);
        BitConverter.GetBytes(0x00CF92000000FFFFUL).CopyTo(image, GdtrOffset + 24);

        var a64 = new Assembler(64);
        a64.mov(ax, 0x10); a64.mov(ds, ax); a64.mov(es, ax); a64.mov(ss, ax);
        a64.mov(rsp, StackTop);
        loop(a64);
        var code = Assemble(a64, Code64).Bytes;
        code.CopyTo(image, (int)(Code64 - Load));
        return image;
    }

    private sealed record Assembled(byte[] Bytes, AssemblerResult Result);

    private static Assembled Assemble(Assembler a, ulong rip)
    {
        var w = new MemoryStream();
        var r = a.Assemble(new StreamCodeWriter(w), rip, BlockEncoderOptions.ReturnNewInstructionOffsets);
        return new Assembled(w.ToArray(), r);
    }
}
