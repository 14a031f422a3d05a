using System.Buffers.Binary;

namespace Emu64.Loader;

/// <summary>A loadable segment of an ELF file.</summary>
public readonly record struct ElfSegment(ulong PhysAddr, ulong VirtAddr, long FileOffset, ulong FileSize, ulong MemSize, uint Flags);

/// <summary>A symbol from the ELF symbol table (for the debugger and tracer).</summary>
public readonly record struct ElfSymbol(string Name, ulong Value, ulong Size, bool IsFunction);

/// <summary>Minimal ELF32/ELF64 reader: program headers for loading, the symbol table for names. Every offset is bounds-checked.</summary>
public sealed class ElfImage
{
    public bool Is64 { get; }
    public ulong Entry { get; }
    public ushort Machine { get; }
    public IReadOnlyList<ElfSegment> Segments { get; }
    private readonly byte[] _data;

    public static bool IsElf(ReadOnlySpan<byte> d) => d.Length >= 4 && d[0] == 0x7F && d[1] == (byte)'E' && d[2] == (byte)'L' && d[3] == (byte)'F';

    public ElfImage(byte[] data)
    {
        _data = data;
        if (!IsElf(data)) throw new ImageException("not an ELF file");
        if (data.Length < 52) throw new ImageException("ELF header is truncated");
        Is64 = data[4] == 2;
        if (data[4] != 1 && data[4] != 2) throw new ImageException($"ELF class {data[4]} is neither ELF32 nor ELF64");
        if (data[5] != 1) throw new ImageException("ELF file is not little-endian");
        if (Is64 && data.Length < 64) throw new ImageException("ELF64 header is truncated");
        var d = data.AsSpan();
        Machine = U16(d, 18);
        Entry = Is64 ? U64(d, 24) : U32(d, 24);
        ulong phoff = Is64 ? U64(d, 32) : U32(d, 28);
        int phentsize = U16(d, Is64 ? 54 : 42);
        int phnum = U16(d, Is64 ? 56 : 44);
        var segs = new List<ElfSegment>();
        if (phnum > 0 && phentsize < (Is64 ? 56 : 32)) throw new ImageException($"ELF program header size {phentsize} is too small");
        for (int k = 0; k < phnum; k++)
        {
            ulong off = phoff + (ulong)k * (ulong)phentsize;
            if (phoff > (ulong)data.Length || off < phoff || off + (ulong)phentsize > (ulong)data.Length) throw new ImageException($"ELF program header {k} lies past the end of the file");
            var p = d.Slice((int)off, phentsize);
            uint type = U32(p, 0);
            if (type != 1) continue;  // PT_LOAD
            ElfSegment s = Is64
                ? new ElfSegment(U64(p, 24), U64(p, 16), (long)U64(p, 8), U64(p, 32), U64(p, 40), U32(p, 4))
                : new ElfSegment(U32(p, 12), U32(p, 8), U32(p, 4), U32(p, 16), U32(p, 20), U32(p, 24));
            if (s.FileSize > s.MemSize) throw new ImageException($"ELF segment {k}: file size 0x{s.FileSize:x} exceeds memory size 0x{s.MemSize:x}");
            if (s.FileOffset < 0 || (ulong)s.FileOffset > (ulong)data.Length || s.FileSize > (ulong)data.Length - (ulong)s.FileOffset)
                throw new ImageException($"ELF segment {k} (offset 0x{s.FileOffset:x}, size 0x{s.FileSize:x}) lies past the end of the file ({data.Length} bytes)");
            segs.Add(s);
        }
        if (segs.Count == 0) throw new ImageException("ELF file has no loadable segment");
        Segments = segs;
    }

    /// <summary>
    /// The descriptor of the first ELF note named <paramref name="name"/> with type <paramref name="type"/> in the
    /// file's PT_NOTE segments (where loaders look: QEMU finds the PVH entry there), or null. Notes that run past
    /// their segment or the file end the search of that segment.
    /// </summary>
    public byte[]? FindNote(string name, uint type)
    {
        var d = _data.AsSpan();
        ulong phoff = Is64 ? U64(d, 32) : U32(d, 28);
        int phentsize = U16(d, Is64 ? 54 : 42), phnum = U16(d, Is64 ? 56 : 44);
        var want = System.Text.Encoding.ASCII.GetBytes(name + "\0");
        for (int k = 0; k < phnum; k++)
        {
            ulong at = phoff + (ulong)k * (ulong)phentsize;   // checked against the file by the constructor
            var p = d.Slice((int)at, phentsize);
            if (U32(p, 0) != 4) continue;   // PT_NOTE
            ulong off = Is64 ? U64(p, 8) : U32(p, 4), size = Is64 ? U64(p, 32) : U32(p, 16);
            if (off > (ulong)d.Length || size > (ulong)d.Length - off) continue;
            var seg = d.Slice((int)off, (int)size);
            int o = 0;
            while (o + 12 <= seg.Length)
            {
                uint namesz = U32(seg, o), descsz = U32(seg, o + 4), ntype = U32(seg, o + 8);
                ulong nameAt = (ulong)o + 12, descAt = nameAt + ((namesz + 3UL) & ~3UL), next = descAt + ((descsz + 3UL) & ~3UL);
                if (descAt + descsz > (ulong)seg.Length || next > (ulong)seg.Length + 3) break;
                if (ntype == type && seg.Slice((int)nameAt, (int)namesz).SequenceEqual(want))
                    return seg.Slice((int)descAt, (int)descsz).ToArray();
                o = (int)Math.Min(next, (ulong)seg.Length);
            }
        }
        return null;
    }

    public ReadOnlySpan<byte> SegmentBytes(ElfSegment s) => _data.AsSpan((int)s.FileOffset, (int)s.FileSize);

    /// <summary>The symbol table (SHT_SYMTAB), or empty if stripped.</summary>
    public List<ElfSymbol> ReadSymbols()
    {
        var result = new List<ElfSymbol>();
        var d = _data.AsSpan();
        try
        {
            ulong shoff = Is64 ? U64(d, 40) : U32(d, 32);
            int shentsize = U16(d, Is64 ? 58 : 46), shnum = U16(d, Is64 ? 60 : 48);
            for (int k = 0; k < shnum; k++)
            {
                var sh = d.Slice((int)(shoff + (ulong)(k * shentsize)), shentsize);
                if (U32(sh, 4) != 2) continue;   // SHT_SYMTAB
                ulong off = Is64 ? U64(sh, 24) : U32(sh, 16), size = Is64 ? U64(sh, 32) : U32(sh, 20);
                uint link = U32(sh, Is64 ? 40 : 24);
                ulong entsize = Is64 ? U64(sh, 56) : U32(sh, 36);
                var str = d.Slice((int)(shoff + link * (ulong)shentsize), shentsize);
                ulong stroff = Is64 ? U64(str, 24) : U32(str, 16);
                if (entsize < (Is64 ? 24UL : 16UL) || size > (ulong)d.Length) continue;   // malformed symbol table: skip it
                for (ulong e = 0; e + entsize <= size; e += entsize)
                {
                    var s = d.Slice((int)(off + e), (int)entsize);
                    uint name = U32(s, 0);
                    ulong value = Is64 ? U64(s, 8) : U32(s, 4), ssize = Is64 ? U64(s, 16) : U32(s, 8);
                    byte info = s[Is64 ? 4 : 12];
                    int type = info & 0xF;
                    if (name == 0 || (type != 0 && type != 1 && type != 2)) continue;
                    int n0 = (int)(stroff + name), n1 = n0;
                    while (n1 < d.Length && d[n1] != 0) n1++;
                    result.Add(new ElfSymbol(System.Text.Encoding.ASCII.GetString(d[n0..n1]), value, ssize, type == 2));
                }
            }
        }
        catch (ArgumentOutOfRangeException) { /* malformed section table: no symbols */ }
        catch (IndexOutOfRangeException) { }
        catch (OverflowException) { }
        return result;
    }

    private static ushort U16(ReadOnlySpan<byte> d, int o) => BinaryPrimitives.ReadUInt16LittleEndian(d[o..]);
    private static uint U32(ReadOnlySpan<byte> d, int o) => BinaryPrimitives.ReadUInt32LittleEndian(d[o..]);
    private static ulong U64(ReadOnlySpan<byte> d, int o) => BinaryPrimitives.ReadUInt64LittleEndian(d[o..]);
}
