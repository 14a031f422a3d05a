using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Support;

/// <summary>
/// Builds multiboot kernels of the kind people write for qemu-system-x86_64 -kernel: a 32-bit entry
/// stub at 1 MiB (multiboot header with address fields) that identity-maps the first 1 GiB with 2 MiB
/// pages, enables PAE, EFER.LME and paging, far-jumps to 64-bit code, and runs a body the test writes
/// with Iced's Assembler. Helpers print over COM1 and exit through isa-debug-exit.
/// </summary>
public sealed class TestKernel
{
    public const ulong LoadAddr = 0x100000;
    public const ulong Pml4 = 0x200000, Pdpt = 0x201000, Pd = 0x202000;
    public const ulong Code64 = 0x110000;
    public const ulong StackTop = 0x300000;
    public const ulong Data = 0x180000;   // scratch data area the body may use
    public const ushort ExitPort = 0xF4, Com1 = 0x3F8;

    /// <summary>
    /// Builds the image. body emits 64-bit code; it should end by calling <see cref="Exit"/>.
    /// With <paramref name="mapFourGiB"/> the identity map covers 4 GiB (four page directories at
    /// <see cref="Pd"/>), so the body can reach the I/O APIC and local APIC pages below 4 GiB.
    /// </summary>
    public static byte[] Build(Action<Assembler> body, IReadOnlyDictionary<ulong, byte[]>? data = null, bool mapFourGiB = false)
        => Build(body, data, out _, mapFourGiB);

    /// <summary>As <see cref="Build(Action{Assembler}, IReadOnlyDictionary{ulong, byte[]}?, bool)"/>, and returns the
    /// address of every label the body placed (so a test can name the faulting instruction or a handler).</summary>
    public static byte[] Build(Action<Assembler> body, IReadOnlyDictionary<ulong, byte[]>? data, out Func<Label, ulong> addressOf, bool mapFourGiB = false)
    {
        int pds = mapFourGiB ? 4 : 1;
        // ---- 32-bit entry stub ----
        var a32 = new Assembler(32);
        var start = a32.CreateLabel();
        var fill = a32.CreateLabel();
        // multiboot header (flags: page align, mem info, address fields)
        uint flags = 1 | 2 | (1 << 16);
        foreach (var w in new uint[] { 0x1BADB002u, flags, unchecked(0u - 0x1BADB002u - flags) }) a32.dd(w);
        foreach (var w in new uint[] { (uint)LoadAddr, (uint)LoadAddr, 0u, 0x300000u, 0u }) a32.dd(w);   // header, load, load_end(0 = whole file), bss_end, entry (patched)
        a32.Label(ref start);
        a32.cli();
        a32.mov(esp, (uint)StackTop);
        a32.mov(esi, ebx);   // keep the multiboot info pointer
        // zero PML4, PDPT, PD(s)
        a32.mov(edi, (uint)Pml4);
        a32.mov(ecx, (uint)(2 + pds) * 1024u);
        a32.xor(eax, eax);
        a32.rep.stosd();
        a32.mov(__dword_ptr[(uint)Pml4], (uint)Pdpt | 3);
        for (int k = 0; k < pds; k++) a32.mov(__dword_ptr[(uint)Pdpt + 8 * (uint)k], (uint)(Pd + 0x1000 * (ulong)k) | 3);
        // 512 PDEs per directory: 2 MiB pages, present+write+PS (the directories are contiguous)
        a32.mov(edi, (uint)Pd);
        a32.mov(eax, 0x83u);
        a32.mov(ecx, 512u * (uint)pds);
        a32.Label(ref fill);
        a32.mov(__dword_ptr[edi], eax);
        a32.add(eax, 0x200000u);
        a32.add(edi, 8u);
        a32.dec(ecx);
        a32.jnz(fill);
        a32.mov(eax, (uint)Pml4);
        a32.mov(cr3, eax);
        a32.mov(eax, cr4);
        a32.or(eax, 1u << 5);          // PAE
        a32.mov(cr4, eax);
        a32.mov(ecx, 0xC0000080u);     // EFER
        a32.rdmsr();
        a32.or(eax, 1u << 8);          // LME
        a32.wrmsr();
        a32.mov(eax, cr0);
        a32.or(eax, 0x80000001u);      // PG | PE
        a32.mov(cr0, eax);
        a32.lgdt(__fword_ptr[(uint)(LoadAddr + 0x800)]);
        a32.jmp(0x08, (uint)Code64);
        var stub = Assemble(a32, LoadAddr);
        int entryOff = LabelOffset(stub, start);
        var image = new byte[Code64 - LoadAddr + 0x10000];
        Array.Copy(stub.Bytes, image, stub.Bytes.Length);
        BitConverter.GetBytes((uint)(LoadAddr + (ulong)entryOff)).CopyTo(image, 28);
        // GDT at +0x900: null, 64-bit code (0x08), data (0x10); GDTR at +0x800
        var gdt = new ulong[] { 0, 0x00AF9A000000FFFF, 0x00CF92000000FFFF };
        for (int k = 0; k < gdt.Length; k++) BitConverter.GetBytes(gdt[k]).CopyTo(image, 0x900 + 8 * k);
        BitConverter.GetBytes((ushort)(gdt.Length * 8 - 1)).CopyTo(image, 0x800);
        BitConverter.GetBytes((uint)(LoadAddr + 0x900)).CopyTo(image, 0x802);

        // ---- 64-bit body ----
        var a64 = new Assembler(64);
        a64.mov(ax, 0x10);
        a64.mov(ds, ax);
        a64.mov(es, ax);
        a64.mov(ss, ax);
        a64.mov(rsp, StackTop);
        body(a64);
        a64.hlt();
        var assembled = Assemble(a64, Code64);
        var code = assembled.Bytes;
        addressOf = l => assembled.Result.GetLabelRIP(l);
        if (code.Length > 0x10000) throw new InvalidOperationException("test body too large");
        Array.Copy(code, 0, image, (int)(Code64 - LoadAddr), code.Length);
        if (data != null)
            foreach (var (addr, bytes) in data)
            {
                long off = (long)(addr - LoadAddr);
                if (off + bytes.Length > image.Length) Array.Resize(ref image, (int)(off + bytes.Length));
                Array.Copy(bytes, 0, image, off, bytes.Length);
            }
        return image;
    }

    private sealed record Assembled(byte[] Bytes, AssemblerResult Result);

    private static Assembled Assemble(Assembler a, ulong rip)
    {
        var w = new MemoryStream();
        var r = a.Assemble(new StreamCodeWriter(w), rip, BlockEncoderOptions.ReturnNewInstructionOffsets);
        return new Assembled(w.ToArray(), r);
    }

    private static int LabelOffset(Assembled a, Label l) => (int)(a.Result.GetLabelRIP(l) - LoadAddr);

    // ---- helpers for bodies ----

    /// <summary>Writes a string to COM1 (one OUT per byte, waiting for THR empty).</summary>
    public static void Print(Assembler a, string s)
    {
        foreach (char ch in s)
        {
            a.mov(dx, (ushort)Com1);
            a.mov(al, (byte)ch);
            a.@out(dx, al);
        }
    }

    /// <summary>Prints RAX as 16 hex digits (clobbers rax, rbx, rcx, rdx).</summary>
    public static void PrintHex(Assembler a)
    {
        var loop = a.CreateLabel();
        var digit = a.CreateLabel();
        a.mov(rbx, rax);
        a.mov(ecx, 16);
        a.Label(ref loop);
        a.rol(rbx, 4);
        a.mov(eax, ebx);
        a.and(eax, 0xF);
        a.add(eax, '0');
        a.cmp(eax, '9');
        a.jbe(digit);
        a.add(eax, 'a' - '9' - 1);
        a.Label(ref digit);
        a.mov(dx, (ushort)Com1);
        a.@out(dx, al);
        a.dec(ecx);
        a.jnz(loop);
    }

    /// <summary>Prints EAX as 8 hex digits with 32-bit registers only, for 16/32-bit guests (clobbers eax, ebx, ecx, edx).</summary>
    public static void PrintHex32(Assembler a)
    {
        var loop = a.CreateLabel(); var digit = a.CreateLabel();
        a.mov(ebx, eax); a.mov(ecx, 8);
        a.Label(ref loop);
        a.rol(ebx, 4); a.mov(eax, ebx); a.and(eax, 0xF); a.add(eax, '0'); a.cmp(eax, '9'); a.jbe(digit); a.add(eax, 'a' - '9' - 1);
        a.Label(ref digit);
        a.mov(dx, (ushort)Com1); a.@out(dx, al);
        a.dec(ecx); a.jnz(loop);
    }

    /// <summary>Exits through isa-debug-exit: the emulator (and QEMU) exit with (code &lt;&lt; 1) | 1.</summary>
    public static void Exit(Assembler a, uint code)
    {
        a.mov(dx, ExitPort);
        a.mov(eax, code);
        a.@out(dx, eax);
    }
}
