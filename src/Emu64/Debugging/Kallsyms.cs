using System.Buffers.Binary;
using System.Text;
using Emu64.Loader;

namespace Emu64.Debugging;

/// <summary>
/// Linux's own symbol table, read out of the kernel image in guest RAM (or a file), so that a stock
/// distribution kernel, which ships no System.map, still gets names. Linux 6.1 built with
/// CONFIG_KALLSYMS_BASE_RELATIVE and CONFIG_KALLSYMS_ABSOLUTE_PERCPU (every x86-64 SMP kernel) keeps, in
/// .rodata, in this order and each label aligned to 8 bytes (scripts/kallsyms.c):
/// <list type="bullet">
/// <item>kallsyms_offsets: one s32 per symbol. A value ≥ 0 is an absolute (per-CPU) value; a negative one
/// means the address relative_base − 1 − value.</item>
/// <item>kallsyms_relative_base: a u64, the lowest symbol address, relocated with the kernel (KASLR included).</item>
/// <item>kallsyms_num_syms: a u32.</item>
/// <item>kallsyms_names: per symbol a length (one byte, or two when the first has bit 7 set: low 7 bits, then
/// the next byte × 128) and that many token numbers; the expansion's first character is the type letter.</item>
/// <item>kallsyms_markers: a u32 per 256 symbols, the offset of symbol 256·k in kallsyms_names.</item>
/// <item>kallsyms_token_table: 256 NUL-terminated strings; kallsyms_token_index: 256 u16 offsets into it.</item>
/// </list>
/// The tables are found by their shape: a token index (0, then 255 increasing offsets, each just past a NUL of
/// the printable token table in front of it), the markers before the token table, and the symbol count and
/// relative base before the names, whose decoding must land exactly on the markers.
/// </summary>
public static class Kallsyms
{
    /// <summary>x86-64's link address of _text: __START_KERNEL_map (0xffffffff80000000) + CONFIG_PHYSICAL_START (16 MiB, Debian's).</summary>
    public const ulong LinkText = 0xFFFFFFFF81000000;

    /// <summary>One kallsyms entry: its (runtime) address, name and type letter (t/T text, d/D data, b/B bss, r/R read-only, ...).</summary>
    public readonly record struct Entry(ulong Address, string Name, char Type);

    /// <summary>The decoded table and where it was found (offsets into the scanned bytes).</summary>
    public sealed record Table(Entry[] Entries, ulong RelativeBase, long NamesOffset, long TokenTableOffset)
    {
        /// <summary>runtime − link address: KASLR's offset, from the runtime _text.</summary>
        public long KaslrOffset => Entries.FirstOrDefault(e => e.Name == "_text") is { Name: not null } t ? (long)(t.Address - LinkText) : 0;

        /// <summary>The entries as symbols for <see cref="SymbolTable"/>: per-CPU values left out, sizes up to the next address.</summary>
        public List<ElfSymbol> Symbols()
        {
            var list = Entries.Where(e => e.Address >= 0xFFFF800000000000).OrderBy(e => e.Address).ToArray();
            var r = new List<ElfSymbol>(list.Length);
            for (int i = 0; i < list.Length; i++)
            {
                ulong next = 0;
                for (int j = i + 1; j < list.Length; j++) if (list[j].Address != list[i].Address) { next = list[j].Address; break; }
                ulong size = next == 0 ? 0 : next - list[i].Address;
                r.Add(new ElfSymbol(list[i].Name, list[i].Address, size, char.ToLowerInvariant(list[i].Type) is 't' or 'w'));
            }
            return r;
        }
    }

    /// <summary>
    /// Finds and decodes the tables in guest RAM; null when there are none. RAM up to 2 GiB is scanned as one span;
    /// larger RAM in 1 GiB windows that overlap by <see cref="WindowOverlap"/>, more than the tables reach back from
    /// their token index (<see cref="MaxTablesBytes"/> of names and 4 bytes of offset per symbol), so tables that
    /// straddle a window's end are found whole in the next window. The table's offsets are physical addresses.
    /// </summary>
    public static Table? Find(Memory.PhysicalMemory ram)
    {
        if (ram.RamSize <= int.MaxValue) return Find(ram.RamSpan(0, (int)ram.RamSize));
        for (ulong start = 0; ; start += Window - WindowOverlap)
        {
            int len = (int)Math.Min(Window, ram.RamSize - start);
            if (Find(ram.RamSpan(start, len)) is { } t)
                return t with { NamesOffset = t.NamesOffset + (long)start, TokenTableOffset = t.TokenTableOffset + (long)start };
            if (start + (ulong)len == ram.RamSize) return null;
        }
    }

    private const ulong Window = 1UL << 30, WindowOverlap = 64UL << 20;

    /// <summary>Finds and decodes the tables in <paramref name="mem"/> (guest RAM or an image); null when there are none.</summary>
    public static Table? Find(ReadOnlySpan<byte> mem)
    {
        for (long p = 0; p + 512 <= mem.Length; p += 8)
        {
            if (mem[(int)p + 2] == 0 && mem[(int)p + 3] == 0)
            {
                // token_index[1] = 0 is no token index. Most of a guest's RAM is zero: skip the run (vectorized) to the
                // first 8-aligned p whose bytes 2..3 reach the next non-zero byte, q bytes past p + 2 (q >= 2 here).
                int q = mem[(int)(p + 2)..].IndexOfAnyExcept((byte)0);
                if (q < 0) break;
                p = ((p + q - 1 + 7) & ~7L) - 8;
                continue;
            }
            // Cheap first filter: token_index[0] = 0 and the next offsets a short token apart.
            if (mem[(int)p] != 0 || mem[(int)p + 1] != 0) continue;
            ushort i1 = BinaryPrimitives.ReadUInt16LittleEndian(mem[(int)(p + 2)..]);
            if (i1 < 2 || i1 > 64) continue;
            if (TryAt(mem, p) is { } t) return t;
        }
        return null;
    }

    private static Table? TryAt(ReadOnlySpan<byte> mem, long indexAt)
    {
        var idx = new ushort[256];
        for (int i = 0; i < 256; i++)
        {
            idx[i] = BinaryPrimitives.ReadUInt16LittleEndian(mem[(int)(indexAt + 2 * i)..]);
            if (i > 0 && (idx[i] <= idx[i - 1] || idx[i] - idx[i - 1] > 64)) return null;
        }
        // The token table ends with the last token's NUL, at most 7 bytes of padding before the index.
        for (long tt = (indexAt - idx[255] - 2) & ~7L; tt >= 0 && tt > indexAt - idx[255] - 72; tt -= 8)
        {
            if (!TokensAt(mem, tt, idx, indexAt)) continue;
            if (Decode(mem, tt, idx) is { } table) return table;
        }
        return null;
    }

    private static bool TokensAt(ReadOnlySpan<byte> mem, long tt, ushort[] idx, long indexAt)
    {
        for (int i = 0; i < 256; i++)
        {
            long s = tt + idx[i];
            if (i > 0 && mem[(int)(s - 1)] != 0) return false;
            int n = 0;
            while (s + n < indexAt && mem[(int)(s + n)] != 0)
            {
                byte b = mem[(int)(s + n)];
                if (b < 0x20 || b > 0x7E) return false;
                n++;
            }
            if (n == 0 || s + n >= indexAt) return false;
        }
        return true;
    }

    /// <summary>How far in front of the token table the symbol count may be: the names of ~100,000 symbols take ~1.3 MB.</summary>
    private const long MaxTablesBytes = 32L << 20;

    private static Table? Decode(ReadOnlySpan<byte> mem, long tokenTable, ushort[] idx)
    {
        // kallsyms_num_syms: 8-aligned, right after the relocated relative base (a kernel address, ≥ the
        // canonical upper half) and followed by 4 bytes of padding; the names that follow must decode.
        for (long ns = (tokenTable - 16) & ~7L; ns >= 16 && ns > tokenTable - MaxTablesBytes; ns -= 8)
        {
            if (mem[(int)ns - 1] != 0xFF) continue;     // relative base's top byte
            ulong relBase = BinaryPrimitives.ReadUInt64LittleEndian(mem[(int)(ns - 8)..]);
            uint n = BinaryPrimitives.ReadUInt32LittleEndian(mem[(int)ns..]);
            if (relBase < 0xFFFF800000000000 || n == 0 || n > 4_000_000 || BinaryPrimitives.ReadUInt32LittleEndian(mem[(int)(ns + 4)..]) != 0) continue;
            long offs = ns - 8 - (((4L * n) + 7) & ~7L);
            if (offs < 0) continue;
            if (TryNames(mem, ns + 8, n, tokenTable, idx, out var strs, out var types))
            {
                var e = new Entry[n];
                for (int i = 0; i < n; i++)
                {
                    int o = BinaryPrimitives.ReadInt32LittleEndian(mem[(int)(offs + 4L * i)..]);
                    ulong a = o >= 0 ? (ulong)o : relBase - 1 - (ulong)(long)o;
                    e[i] = new Entry(a, strs[i], types[i]);
                }
                return new Table(e, relBase, ns + 8, tokenTable);
            }
        }
        return null;
    }

    /// <summary>
    /// Decodes <paramref name="n"/> names from <paramref name="names"/>; true when the markers follow them (8-aligned,
    /// each the offset of symbol 256·k) and end in front of the token table, either directly or after the 3-byte
    /// kallsyms_seqs_of_names that later kernels (and Debian's 6.1) put there.
    /// </summary>
    private static bool TryNames(ReadOnlySpan<byte> mem, long names, uint n, long tokenTable, ushort[] idx, out string[] strs, out char[] types)
    {
        strs = new string[n];
        types = new char[n];
        long p = names;
        var starts = new long[(n + 255) / 256];
        var sb = new StringBuilder(64);
        for (uint i = 0; i < n; i++)
        {
            if ((i & 255) == 0) starts[i >> 8] = p - names;
            if (p + 2 >= tokenTable) return false;
            int len = mem[(int)p++];
            if ((len & 0x80) != 0) len = (len & 0x7F) | (mem[(int)p++] << 7);
            if (len == 0 || p + len > tokenTable) return false;
            sb.Clear();
            for (int k = 0; k < len; k++)
            {
                long t = tokenTable + idx[mem[(int)p++]];
                while (mem[(int)t] != 0) sb.Append((char)mem[(int)t++]);
            }
            if (sb.Length < 2) return false;
            types[i] = sb[0];
            strs[i] = sb.ToString(1, sb.Length - 1);
        }
        long markers = (p + 7) & ~7L;
        for (int k = 0; k < starts.Length; k++)
            if (markers + 4L * k + 4 > tokenTable || BinaryPrimitives.ReadUInt32LittleEndian(mem[(int)(markers + 4L * k)..]) != starts[k]) return false;
        long end = markers + 4L * starts.Length;
        long gap = tokenTable - end;
        return gap < 8 || (gap >= 3L * n && gap - 3L * n < 16);
    }
}
