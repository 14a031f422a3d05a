using System.Buffers.Binary;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Support;

/// <summary>Runs the emu64 command line in-process with its stdout and stderr captured (no console is touched).</summary>
public static class CliRun
{
    public sealed record Result(byte[] Stdout, string Stderr, int Status)
    {
        public string Out => System.Text.Encoding.Latin1.GetString(Stdout);
        public string[] ErrLines => Stderr.Replace("\r", "").Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    public static Result Execute(params string[] args)
    {
        var so = new MemoryStream();
        var se = new StringWriter();
        int status = Emu64.Cli.Cli.Execute(args, so, se);
        return new Result(so.ToArray(), se.ToString(), status);
    }

    /// <summary>A file in a fresh temporary directory (deleted by <see cref="TempDir.Dispose"/>).</summary>
    public sealed class TempDir : IDisposable
    {
        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"emu64-t-{Guid.NewGuid():N}");
        public TempDir() => Directory.CreateDirectory(Path);
        public string File(string name, byte[] content)
        {
            var p = System.IO.Path.Combine(Path, name);
            System.IO.File.WriteAllBytes(p, content);
            return p;
        }
        public string File(string name, string content) => File(name, System.Text.Encoding.UTF8.GetBytes(content));
        public string Name(string name) => System.IO.Path.Combine(Path, name);
        public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
    }
}

/// <summary>Small hand-built images: ELF files with chosen segments, raw multiboot headers, 32-bit code.</summary>
public static class Images
{
    public readonly record struct Seg(ulong Addr, byte[] Bytes, ulong MemSize = 0);

    /// <summary>An ELF64 (or ELF32) executable with the given PT_LOAD segments.</summary>
    public static byte[] Elf(ulong entry, bool is64, params Seg[] segs) => ElfWithNote(entry, is64, null, segs);

    /// <summary>An ELF note (namesz, descsz, type, name and descriptor padded to 4 bytes).</summary>
    public static byte[] Note(string name, uint type, byte[] desc)
    {
        var n = System.Text.Encoding.ASCII.GetBytes(name + "\0");
        int nPad = (n.Length + 3) & ~3, dPad = (desc.Length + 3) & ~3;
        var b = new byte[12 + nPad + dPad];
        BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)n.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), (uint)desc.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(8), type);
        n.CopyTo(b, 12);
        desc.CopyTo(b, 12 + nPad);
        return b;
    }

    /// <summary>The PVH entry note Linux emits (name "Xen", type 18 XEN_ELFNOTE_PHYS32_ENTRY), with a value of <paramref name="size"/> bytes.</summary>
    public static byte[] PvhNote(ulong entry, int size = 8)
    {
        var d = new byte[size];
        for (int k = 0; k < size && k < 8; k++) d[k] = (byte)(entry >> (8 * k));
        return Note("Xen", 18, d);
    }

    /// <summary>An ELF file with PT_LOAD segments and, when <paramref name="note"/> is given, a PT_NOTE segment holding it (after the loads).</summary>
    public static byte[] ElfWithNote(ulong entry, bool is64, byte[]? note, params Seg[] segs)
    {
        int eh = is64 ? 64 : 52, ph = is64 ? 56 : 32;
        int nph = segs.Length + (note != null ? 1 : 0);
        int dataOff = eh + ph * nph;
        var f = new byte[dataOff + segs.Sum(s => s.Bytes.Length) + (note?.Length ?? 0)];
        f[0] = 0x7F; f[1] = (byte)'E'; f[2] = (byte)'L'; f[3] = (byte)'F'; f[4] = (byte)(is64 ? 2 : 1); f[5] = 1; f[6] = 1;
        var s = f.AsSpan();
        BinaryPrimitives.WriteUInt16LittleEndian(s[16..], 2);
        BinaryPrimitives.WriteUInt16LittleEndian(s[18..], (ushort)(is64 ? 62 : 3));
        BinaryPrimitives.WriteUInt32LittleEndian(s[20..], 1);
        if (is64)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(s[24..], entry);
            BinaryPrimitives.WriteUInt64LittleEndian(s[32..], (ulong)eh);
            BinaryPrimitives.WriteUInt16LittleEndian(s[52..], (ushort)eh);
            BinaryPrimitives.WriteUInt16LittleEndian(s[54..], (ushort)ph);
            BinaryPrimitives.WriteUInt16LittleEndian(s[56..], (ushort)nph);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(s[24..], (uint)entry);
            BinaryPrimitives.WriteUInt32LittleEndian(s[28..], (uint)eh);
            BinaryPrimitives.WriteUInt16LittleEndian(s[40..], (ushort)eh);
            BinaryPrimitives.WriteUInt16LittleEndian(s[42..], (ushort)ph);
            BinaryPrimitives.WriteUInt16LittleEndian(s[44..], (ushort)nph);
        }
        int off = dataOff;
        for (int k = 0; k < segs.Length; k++)
        {
            var g = segs[k];
            ulong mem = Math.Max(g.MemSize, (ulong)g.Bytes.Length);
            var p = s[(eh + ph * k)..];
            BinaryPrimitives.WriteUInt32LittleEndian(p, 1);
            if (is64)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(p[4..], 7);
                BinaryPrimitives.WriteUInt64LittleEndian(p[8..], (ulong)off);
                BinaryPrimitives.WriteUInt64LittleEndian(p[16..], g.Addr);
                BinaryPrimitives.WriteUInt64LittleEndian(p[24..], g.Addr);
                BinaryPrimitives.WriteUInt64LittleEndian(p[32..], (ulong)g.Bytes.Length);
                BinaryPrimitives.WriteUInt64LittleEndian(p[40..], mem);
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(p[4..], (uint)off);
                BinaryPrimitives.WriteUInt32LittleEndian(p[8..], (uint)g.Addr);
                BinaryPrimitives.WriteUInt32LittleEndian(p[12..], (uint)g.Addr);
                BinaryPrimitives.WriteUInt32LittleEndian(p[16..], (uint)g.Bytes.Length);
                BinaryPrimitives.WriteUInt32LittleEndian(p[20..], (uint)mem);
                BinaryPrimitives.WriteUInt32LittleEndian(p[24..], 7);
            }
            g.Bytes.CopyTo(f, off);
            off += g.Bytes.Length;
        }
        if (note != null)
        {
            var p = s[(eh + ph * segs.Length)..];
            BinaryPrimitives.WriteUInt32LittleEndian(p, 4);   // PT_NOTE
            if (is64)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(p[8..], (ulong)off);
                BinaryPrimitives.WriteUInt64LittleEndian(p[32..], (ulong)note.Length);
                BinaryPrimitives.WriteUInt64LittleEndian(p[40..], (ulong)note.Length);
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(p[4..], (uint)off);
                BinaryPrimitives.WriteUInt32LittleEndian(p[16..], (uint)note.Length);
                BinaryPrimitives.WriteUInt32LittleEndian(p[20..], (uint)note.Length);
            }
            note.CopyTo(f, off);
        }
        return f;
    }

    /// <summary>A multiboot header (with the address fields when <paramref name="addresses"/> is given) followed by <paramref name="tail"/>.</summary>
    public static byte[] Multiboot(uint[]? addresses, byte[] tail, uint extraFlags = 0)
    {
        uint flags = (addresses != null ? 1u << 16 : 0) | extraFlags;
        var words = new List<uint> { 0x1BADB002, flags, unchecked(0u - 0x1BADB002u - flags) };
        if (addresses != null) words.AddRange(addresses);
        var b = new byte[words.Count * 4 + tail.Length];
        for (int k = 0; k < words.Count; k++) BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4 * k), words[k]);
        tail.CopyTo(b, words.Count * 4);
        return b;
    }

    /// <summary>A flat multiboot kernel at 1 MiB whose 32-bit body <paramref name="body"/> runs right after the header.</summary>
    public static byte[] Flat32(Action<Assembler> body)
    {
        const uint load = 0x100000, entry = load + 32;
        var a = new Assembler(32);
        body(a);
        a.hlt();
        var w = new MemoryStream();
        a.Assemble(new StreamCodeWriter(w), entry);
        return Multiboot([load, load, 0, 0, entry], w.ToArray());
    }

    /// <summary>32-bit code at CPL 0 that calls through a call gate (which Emu64 does not implement: status 8).</summary>
    public static byte[] UnsupportedCallGate() => Flat32(a =>
    {
        // A GDT at 80000H: null, 08H a 32-bit call gate (DPL 3, to 10H:0), 10H flat code, 18H flat data.
        a.mov(__dword_ptr[0x80000], 0); a.mov(__dword_ptr[0x80004], 0);
        a.mov(__dword_ptr[0x80008], 0x00100000); a.mov(__dword_ptr[0x8000C], 0x0000EC00);
        a.mov(__dword_ptr[0x80010], 0x0000FFFF); a.mov(__dword_ptr[0x80014], 0x00CF9B00);
        a.mov(__dword_ptr[0x80018], 0x0000FFFF); a.mov(__dword_ptr[0x8001C], 0x00CF9300);
        a.mov(__word_ptr[0x80100], 0x1F); a.mov(__dword_ptr[0x80102], 0x80000);
        a.lgdt(__[0x80100]);
        a.call(0x08, 0);                                   // far CALL 08H:0 — the gate
    });

    /// <summary>32-bit code that asks for a reset through port 0x92 (status 10).</summary>
    public static byte[] Reset() => Flat32(a => { a.mov(al, 1); a.@out(0x92, al); });

    /// <summary>32-bit code that spins forever (for --max-instructions).</summary>
    public static byte[] Spin() => Flat32(a => { var l = a.CreateLabel(); a.Label(ref l); a.jmp(l); });

    /// <summary>A 64-bit test kernel whose #UD handler is a UD2 of its own: exceptions forever, nothing retires (a fault loop).</summary>
    public static byte[] FaultLoop()
    {
        const ulong idt = 0x180000, idtr = 0x181000, handler = 0x190000;
        var gate = new byte[16];
        ulong lo = (handler & 0xFFFF) | (0x08UL << 16) | (0x8EUL << 40) | ((handler >> 16 & 0xFFFF) << 48);
        BinaryPrimitives.WriteUInt64LittleEndian(gate, lo);
        var idtBytes = new byte[16 * 7];
        gate.CopyTo(idtBytes, 16 * 6);
        var idtrBytes = new byte[10];
        BinaryPrimitives.WriteUInt16LittleEndian(idtrBytes, 16 * 7 - 1);
        BinaryPrimitives.WriteUInt64LittleEndian(idtrBytes.AsSpan(2), idt);
        var data = new Dictionary<ulong, byte[]> { [idt] = idtBytes, [idtr] = idtrBytes, [handler] = [0x0F, 0x0B] };
        return TestKernel.Build(a => { a.lidt(__[idtr]); a.ud2(); }, data);
    }

    /// <summary>A 64-bit test kernel that loads an empty IDT and executes UD2: #UD, #GP, #DF, then a triple fault.</summary>
    public static byte[] TripleFault() => TestKernel.Build(a =>
    {
        TestKernel.Print(a, "before\n");
        a.mov(rax, 0x1000); a.mov(__word_ptr[rax], 0); a.lidt(__[rax]);
        a.mov(r15, 0x0123456789ABCDEF);
        a.ud2();
    });
}
