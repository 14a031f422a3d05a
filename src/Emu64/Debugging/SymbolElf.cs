using System.Buffers.Binary;
using System.Text;
using Emu64.Loader;

namespace Emu64.Debugging;

/// <summary>
/// Writes symbols as a minimal ELF64 relocatable-free "symbol file" that stock gdb loads with
/// <c>symbol-file FILE</c>: one SHT_NOBITS section per kind (.text for functions, .data for the rest) that
/// spans the symbols at their runtime addresses, a .symtab and a .strtab. gdb reads the bytes from the
/// target, so the sections hold none. This is how the gdb stub serves the names it read out of a stock
/// kernel's kallsyms (which ships no vmlinux with symbols): the addresses are already KASLR's, so gdb needs
/// no offset.
/// </summary>
public static class SymbolElf
{
    public static byte[] Write(IReadOnlyList<ElfSymbol> symbols)
    {
        var funcs = symbols.Where(s => s.IsFunction).ToList();
        var data = symbols.Where(s => !s.IsFunction).ToList();
        (ulong Lo, ulong Hi) Span(List<ElfSymbol> l) => l.Count == 0 ? (0, 0) : (l.Min(s => s.Value), l.Max(s => s.Value + Math.Max(1, s.Size)));
        var (tLo, tHi) = Span(funcs);
        var (dLo, dHi) = Span(data);

        var strtab = new MemoryStream();
        strtab.WriteByte(0);
        var symtab = new MemoryStream();
        symtab.Write(new byte[24]);                                   // symbol 0: undefined
        void Sym(ElfSymbol s, ushort shndx, byte type)
        {
            var e = new byte[24];
            BinaryPrimitives.WriteUInt32LittleEndian(e, (uint)strtab.Position);
            e[4] = (byte)((1 << 4) | type);                           // STB_GLOBAL, STT_FUNC (2) or STT_OBJECT (1)
            BinaryPrimitives.WriteUInt16LittleEndian(e.AsSpan(6), shndx);
            BinaryPrimitives.WriteUInt64LittleEndian(e.AsSpan(8), s.Value);
            BinaryPrimitives.WriteUInt64LittleEndian(e.AsSpan(16), s.Size);
            symtab.Write(e);
            strtab.Write(Encoding.ASCII.GetBytes(s.Name));
            strtab.WriteByte(0);
        }
        foreach (var s in funcs) Sym(s, 1, 2);
        foreach (var s in data) Sym(s, 2, 1);

        byte[] shstr = Encoding.ASCII.GetBytes("\0.text\0.data\0.symtab\0.strtab\0.shstrtab\0");
        const int ehsize = 64;
        long symOff = ehsize, strOff = symOff + symtab.Length, shstrOff = strOff + strtab.Length;
        long shOff = (shstrOff + shstr.Length + 7) & ~7L;
        var f = new byte[shOff + 6 * 64];
        var h = f.AsSpan();
        h[0] = 0x7F; h[1] = (byte)'E'; h[2] = (byte)'L'; h[3] = (byte)'F';
        h[4] = 2; h[5] = 1; h[6] = 1;                                 // ELFCLASS64, little-endian, version 1
        BinaryPrimitives.WriteUInt16LittleEndian(h[16..], 2);         // ET_EXEC
        BinaryPrimitives.WriteUInt16LittleEndian(h[18..], 62);        // EM_X86_64
        BinaryPrimitives.WriteUInt32LittleEndian(h[20..], 1);
        BinaryPrimitives.WriteUInt64LittleEndian(h[40..], (ulong)shOff);
        BinaryPrimitives.WriteUInt16LittleEndian(h[52..], ehsize);
        BinaryPrimitives.WriteUInt16LittleEndian(h[58..], 64);        // e_shentsize
        BinaryPrimitives.WriteUInt16LittleEndian(h[60..], 6);         // e_shnum
        BinaryPrimitives.WriteUInt16LittleEndian(h[62..], 5);         // e_shstrndx
        symtab.ToArray().CopyTo(f, symOff);
        strtab.ToArray().CopyTo(f, strOff);
        shstr.CopyTo(f, shstrOff);
        void Sh(int i, uint name, uint type, ulong flags, ulong addr, long off, long size, uint link, uint info, ulong align, ulong entsize)
        {
            var s = f.AsSpan((int)(shOff + 64 * i));
            BinaryPrimitives.WriteUInt32LittleEndian(s, name);
            BinaryPrimitives.WriteUInt32LittleEndian(s[4..], type);
            BinaryPrimitives.WriteUInt64LittleEndian(s[8..], flags);
            BinaryPrimitives.WriteUInt64LittleEndian(s[16..], addr);
            BinaryPrimitives.WriteUInt64LittleEndian(s[24..], (ulong)off);
            BinaryPrimitives.WriteUInt64LittleEndian(s[32..], (ulong)size);
            BinaryPrimitives.WriteUInt32LittleEndian(s[40..], link);
            BinaryPrimitives.WriteUInt32LittleEndian(s[44..], info);
            BinaryPrimitives.WriteUInt64LittleEndian(s[48..], align);
            BinaryPrimitives.WriteUInt64LittleEndian(s[56..], entsize);
        }
        Sh(1, 1, 8, 0x6, tLo, shOff, (long)(tHi - tLo), 0, 0, 1, 0);          // .text: NOBITS, ALLOC|EXECINSTR
        Sh(2, 7, 8, 0x3, dLo, shOff, (long)(dHi - dLo), 0, 0, 1, 0);          // .data: NOBITS, ALLOC|WRITE
        Sh(3, 13, 2, 0, 0, symOff, symtab.Length, 4, 1, 8, 24);                // .symtab (first global: 1)
        Sh(4, 21, 3, 0, 0, strOff, strtab.Length, 0, 0, 1, 0);
        Sh(5, 29, 3, 0, 0, shstrOff, shstr.Length, 0, 0, 1, 0);
        return f;
    }
}
