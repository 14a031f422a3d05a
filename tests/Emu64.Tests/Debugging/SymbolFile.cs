using System.Text;

namespace Emu64.Tests.Debugging;

/// <summary>
/// Writes a small ELF64 file that holds only symbols (a .text section header covering them, .symtab,
/// .strtab): what gdb's symbol-file and the emulator's symbol reader need to name addresses of a
/// TestKernel image, which is a flat multiboot binary without a symbol table.
/// </summary>
public static class SymbolFile
{
    public static byte[] Build(ulong textAddr, ulong textSize, IEnumerable<(string Name, ulong Addr)> symbols)
    {
        var syms = symbols.ToList();
        var strtab = new MemoryStream();
        strtab.WriteByte(0);
        var nameOff = new List<int>();
        foreach (var (name, _) in syms) { nameOff.Add((int)strtab.Length); strtab.Write(Encoding.ASCII.GetBytes(name + "\0")); }
        var shstr = Encoding.ASCII.GetBytes("\0.text\0.symtab\0.strtab\0.shstrtab\0");
        int[] shName = [0, 1, 7, 15, 23];

        var symtab = new MemoryStream();
        symtab.Write(new byte[24]);                                     // the null symbol
        for (int i = 0; i < syms.Count; i++)
        {
            var w = new BinaryWriter(symtab);
            w.Write((uint)nameOff[i]); w.Write((byte)0x12); w.Write((byte)0); w.Write((ushort)1);   // GLOBAL FUNC, .text
            w.Write(syms[i].Addr); w.Write(0UL);
        }

        const int ehsize = 64, phsize = 56;
        int textOff = ehsize + phsize;
        int symOff = textOff + (int)textSize;
        int strOff = symOff + (int)symtab.Length;
        int shstrOff = strOff + (int)strtab.Length;
        int shOff = (shstrOff + shstr.Length + 7) & ~7;

        var o = new MemoryStream();
        var b = new BinaryWriter(o);
        b.Write(new byte[] { 0x7F, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0 });
        b.Write((ushort)2); b.Write((ushort)62); b.Write(1u);         // ET_EXEC, EM_X86_64
        b.Write(textAddr); b.Write((ulong)ehsize); b.Write((ulong)shOff);
        b.Write(0u); b.Write((ushort)ehsize); b.Write((ushort)phsize); b.Write((ushort)1);
        b.Write((ushort)64); b.Write((ushort)5); b.Write((ushort)4);
        // PT_LOAD for .text (R+X)
        b.Write(1u); b.Write(5u); b.Write((ulong)textOff); b.Write(textAddr); b.Write(textAddr);
        b.Write(textSize); b.Write(textSize); b.Write(0x1000UL);
        b.Write(new byte[textSize]);
        b.Write(symtab.ToArray());
        b.Write(strtab.ToArray());
        b.Write(shstr);
        while (o.Length < shOff) b.Write((byte)0);
        void Sh(int name, uint type, ulong flags, ulong addr, ulong off, ulong size, uint link, uint info, ulong align, ulong entsize)
        {
            b.Write((uint)name); b.Write(type); b.Write(flags); b.Write(addr); b.Write(off); b.Write(size);
            b.Write(link); b.Write(info); b.Write(align); b.Write(entsize);
        }
        Sh(0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        Sh(shName[1], 1, 6, textAddr, (ulong)textOff, textSize, 0, 0, 16, 0);                  // .text PROGBITS AX
        Sh(shName[2], 2, 0, 0, (ulong)symOff, (ulong)symtab.Length, 3, 1, 8, 24);               // .symtab, link .strtab
        Sh(shName[3], 3, 0, 0, (ulong)strOff, (ulong)strtab.Length, 0, 0, 1, 0);
        Sh(shName[4], 3, 0, 0, (ulong)shstrOff, (ulong)shstr.Length, 0, 0, 1, 0);
        return o.ToArray();
    }
}
