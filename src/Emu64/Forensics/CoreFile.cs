using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using static Emu64.Forensics.CoreLayout;

namespace Emu64.Forensics;

/// <summary>A malformed or unsupported dump file; the message says what is wrong.</summary>
public sealed class DumpFormatException(string message) : Exception(message);

/// <summary>One ELF note: its name, type and descriptor bytes.</summary>
public sealed record CoreNote(string Name, uint Type, byte[] Desc);

/// <summary>
/// Reads an ELF64 x86-64 core file of guest memory (QEMU's <c>dump-guest-memory</c> layout, or Emu64's, which
/// is the same): PT_LOAD segments give physical ranges (<c>p_paddr</c>), PT_NOTE the CPU state. The file is
/// memory-mapped, so a dump of any size is read on demand. Every header field is checked against the file
/// size before it is used.
/// </summary>
public sealed unsafe class CoreFile : IPhysicalImage, IDisposable
{
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly byte* _base;
    private readonly long _length;
    private readonly (PhysRange Range, long Offset, ulong FileSize)[] _loads;

    public IReadOnlyList<PhysRange> Ranges { get; }
    public IReadOnlyList<CoreNote> Notes { get; }
    public string Path { get; }
    public long FileLength => _length;

    public CoreFile(string path)
    {
        Path = path;
        _length = new FileInfo(path).Length;
        if (_length < EhdrSize) throw new DumpFormatException($"{_length} bytes is too short for an ELF header");
        _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + _view.PointerOffset;
        try
        {
            (_loads, Notes) = Parse();
            Ranges = _loads.Select(l => l.Range).ToArray();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private ReadOnlySpan<byte> Bytes(long offset, long count)
    {
        if (offset < 0 || count < 0 || offset > _length || count > _length - offset)
            throw new DumpFormatException($"bytes 0x{offset:x}..0x{offset + count:x} lie past the end of the file ({_length} bytes)");
        return new ReadOnlySpan<byte>(_base + offset, (int)count);
    }

    private ((PhysRange, long, ulong)[], List<CoreNote>) Parse()
    {
        var h = Bytes(0, EhdrSize);
        if (h[0] != 0x7F || h[1] != 'E' || h[2] != 'L' || h[3] != 'F') throw new DumpFormatException("not an ELF file");
        if (h[4] != 2) throw new DumpFormatException("not an ELF64 file (ELF class " + h[4] + ")");
        if (h[5] != 1) throw new DumpFormatException("not a little-endian ELF file");
        ushort type = BinaryPrimitives.ReadUInt16LittleEndian(h[16..]), machine = BinaryPrimitives.ReadUInt16LittleEndian(h[18..]);
        if (type != EtCore) throw new DumpFormatException($"not a core file (ELF type {type}, a core file is {EtCore})");
        if (machine != EmX86_64) throw new DumpFormatException($"not an x86-64 core file (ELF machine {machine})");
        long phoff = (long)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(h[32..]), long.MaxValue);
        int phentsize = BinaryPrimitives.ReadUInt16LittleEndian(h[54..]), phnum = BinaryPrimitives.ReadUInt16LittleEndian(h[56..]);
        if (phnum == 0) throw new DumpFormatException("the core file has no program headers");
        if (phentsize < PhdrSize) throw new DumpFormatException($"program header size {phentsize} is too small");
        var loads = new List<(PhysRange, long, ulong)>();
        var notes = new List<CoreNote>();
        for (int k = 0; k < phnum; k++)
        {
            var p = Bytes(phoff + (long)k * phentsize, PhdrSize);
            uint ptype = BinaryPrimitives.ReadUInt32LittleEndian(p);
            ulong off = BinaryPrimitives.ReadUInt64LittleEndian(p[8..]), paddr = BinaryPrimitives.ReadUInt64LittleEndian(p[24..]);
            ulong filesz = BinaryPrimitives.ReadUInt64LittleEndian(p[32..]), memsz = BinaryPrimitives.ReadUInt64LittleEndian(p[40..]);
            if (off > (ulong)_length || filesz > (ulong)_length - off)
                throw new DumpFormatException($"segment {k} (offset 0x{off:x}, size 0x{filesz:x}) lies past the end of the file ({_length} bytes)");
            if (ptype == PtNote) notes.AddRange(ParseNotes(Bytes((long)off, (long)filesz)));
            else if (ptype == PtLoad)
            {
                if (filesz > memsz) throw new DumpFormatException($"segment {k}: file size 0x{filesz:x} exceeds memory size 0x{memsz:x}");
                if (paddr + memsz < paddr) throw new DumpFormatException($"segment {k}: physical range wraps around");
                if (memsz > 0) loads.Add((new PhysRange(paddr, memsz), (long)off, filesz));
            }
        }
        if (loads.Count == 0) throw new DumpFormatException("the core file has no PT_LOAD segment (no memory)");
        loads.Sort((a, b) => a.Item1.Start.CompareTo(b.Item1.Start));
        return (loads.ToArray(), notes);
    }

    private static List<CoreNote> ParseNotes(ReadOnlySpan<byte> s)
    {
        var list = new List<CoreNote>();
        int o = 0;
        while (o + NhdrSize <= s.Length)
        {
            uint namesz = BinaryPrimitives.ReadUInt32LittleEndian(s[o..]), descsz = BinaryPrimitives.ReadUInt32LittleEndian(s[(o + 4)..]);
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(s[(o + 8)..]);
            long nameAt = o + NhdrSize, descAt = nameAt + ((namesz + 3L) & ~3L), end = descAt + ((descsz + 3L) & ~3L);
            if (descAt + descsz > s.Length) throw new DumpFormatException($"note at 0x{o:x} in the note segment runs past its end");
            string name = System.Text.Encoding.ASCII.GetString(s.Slice((int)nameAt, (int)namesz)).TrimEnd('\0');
            list.Add(new CoreNote(name, type, s.Slice((int)descAt, (int)descsz).ToArray()));
            o = (int)Math.Min(end, s.Length);
        }
        return list;
    }

    public bool TryRead64(ulong pa, out ulong value)
    {
        foreach (var (r, off, filesz) in _loads)
        {
            if (!r.Contains(pa, 8)) continue;
            ulong rel = pa - r.Start;
            value = rel + 8 <= filesz ? *(ulong*)(_base + off + (long)rel) : rel >= filesz ? 0 : ReadSplit(off, rel, filesz);
            return true;
        }
        value = 0;
        return false;
    }

    private ulong ReadSplit(long off, ulong rel, ulong filesz)
    {
        ulong v = 0;
        for (ulong i = 0; i < 8; i++) v |= (rel + i < filesz ? (ulong)_base[off + (long)(rel + i)] : 0) << (int)(8 * i);
        return v;
    }

    public int Read(ulong pa, Span<byte> dest)
    {
        int n = 0;
        while (n < dest.Length)
        {
            ulong a = pa + (ulong)n;
            var hit = _loads.FirstOrDefault(l => l.Range.Contains(a));
            if (hit.Range.Length == 0) break;
            ulong rel = a - hit.Range.Start;
            int chunk = (int)Math.Min((ulong)(dest.Length - n), hit.Range.Length - rel);
            for (int i = 0; i < chunk; i++)
            {
                ulong r = rel + (ulong)i;
                dest[n + i] = r < hit.FileSize ? _base[hit.Offset + (long)r] : (byte)0;
            }
            n += chunk;
        }
        return n;
    }

    /// <summary>The "QEMU" note's CPU state, if the dump has one.</summary>
    public QemuCpuState? CpuState => Notes.FirstOrDefault(n => n.Name == "QEMU" && n.Type == NtQemu && n.Desc.Length >= QemuCr + 40) is { } n
        ? new QemuCpuState(n.Desc) : null;

    public void Dispose()
    {
        if (_view != null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _map?.Dispose();
    }
}

/// <summary>The fields of QEMU's QEMUCPUState note an analysis uses.</summary>
public sealed class QemuCpuState(byte[] d)
{
    public uint Version => BinaryPrimitives.ReadUInt32LittleEndian(d);
    public uint Size => BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(4));
    public ulong Reg(string name) => BinaryPrimitives.ReadUInt64LittleEndian(d.AsSpan(QemuRegs + 8 * Array.IndexOf(QemuRegNames, name)));
    public ulong Cr(int n) => BinaryPrimitives.ReadUInt64LittleEndian(d.AsSpan(QemuCr + 8 * n));
    public (uint Selector, uint Limit, uint Flags, ulong Base) Segment(string name)
    {
        var s = d.AsSpan(QemuSegs + QemuSegSize * Array.IndexOf(QemuSegNames, name));
        return (BinaryPrimitives.ReadUInt32LittleEndian(s), BinaryPrimitives.ReadUInt32LittleEndian(s[4..]),
                BinaryPrimitives.ReadUInt32LittleEndian(s[8..]), BinaryPrimitives.ReadUInt64LittleEndian(s[16..]));
    }
    public ulong? KernelGsBase => d.Length >= QemuKernelGsBase + 8 ? BinaryPrimitives.ReadUInt64LittleEndian(d.AsSpan(QemuKernelGsBase)) : null;
}
