using System.Buffers.Binary;
using Emu64.Forensics;
using Emu64.Loader;
using Emu64.Memory;
using static Emu64.Forensics.CoreLayout;

namespace Emu64.Tests.Platform;

/// <summary>
/// Guest RAM beyond 2 GiB (up to <see cref="PhysicalMemory.MaxRamSize"/>, 3 GiB): host memory outside the managed
/// heap, touched lazily, so these 3 GiB machines cost only the pages the tests write. RAM is contiguous from 0; above
/// it lies open bus up to the PCI hole's devices; the firmware's memory map and MTRRs agree; dumps stream.
/// </summary>
public class BigRamTests
{
    private const ulong G3 = 3UL << 30;

    [Fact]
    public void A_3_GiB_machine_reads_and_writes_the_top_of_RAM_and_sees_open_bus_just_above_it()
    {
        using var m = new Machine(new MachineOptions { RamBytes = G3, Output = Stream.Null });
        var mem = m.Memory;
        Assert.Equal(G3, mem.RamSize);
        mem.Write(G3 - 8, 8, 0x1122334455667788);
        mem.Write((2UL << 30) + 0x10, 4, 0xCAFEF00D);   // just above 2 GiB: beyond what an int-indexed array reaches
        Assert.Equal(0x1122334455667788UL, mem.Read(G3 - 8, 8));
        Assert.Equal(0xCAFEF00DUL, mem.Read((2UL << 30) + 0x10, 4));
        Assert.Equal(0x11UL, mem.Read(G3 - 1, 1));
        Assert.Equal(0x1122334455667788UL, BinaryPrimitives.ReadUInt64LittleEndian(mem.RamSpan(G3 - 8, 8)));
        // Untouched RAM reads as zero; above RAM is open bus (ones), writes there are dropped.
        Assert.Equal(0UL, mem.Read(G3 - 0x1000, 8));
        Assert.Equal(ulong.MaxValue, mem.Read(G3, 8));
        mem.Write(G3, 8, 0);
        Assert.Equal(ulong.MaxValue, mem.Read(G3, 8));
        Assert.Equal(0xFFFFFFFF_11223344UL, mem.Read(G3 - 4, 8));   // straddles the end: RAM bytes, then ones
        Assert.True(mem.IsRam(G3 - 8, 8));
        Assert.False(mem.IsRam(G3 - 4, 8));
        Assert.False(mem.WriteBytes(G3 - 1, new byte[2]));
        Assert.Throws<ArgumentOutOfRangeException>(() => mem.RamSpan(G3 - 4, 8));
        // The devices of the PCI hole still answer above RAM: the I/O APIC's version register (IOREGSEL 1).
        mem.Write(0xFEC00000, 4, 1);
        Assert.Equal(0x00170020UL, mem.Read(0xFEC00010, 4));   // 24 entries, version 0x20 (QEMU's)
    }

    [Fact]
    public void RAM_above_3_GiB_is_refused_with_the_maximum_in_the_message()
    {
        var e = Assert.Throws<ArgumentException>(() => new PhysicalMemory(G3 + 0x1000));
        Assert.Equal("RAM size 3072 MiB is above the maximum of 3072 MiB", e.Message);
    }

    [Fact]
    public void The_memory_map_of_3_GiB_is_RAM_up_to_the_BIOS_top_128_KiB_and_nothing_above_4_GiB()
    {
        Assert.Equal(
        [
            new(0, 0x9FC00, E820.Ram), new(0x9FC00, 0x400, E820.Reserved), new(0xF0000, 0x10000, E820.Reserved),
            new(0x100000, G3 - 0x20000 - 0x100000, E820.Ram), new(G3 - 0x20000, 0x20000, E820.Reserved),
            new(0xFFFC0000, 0x40000, E820.Reserved),
        ], E820.Map(G3));
    }

    [Theory]
    [InlineData(128UL << 20, 0x80000000UL)]
    [InlineData(2UL << 30, 0x80000000UL)]
    [InlineData(2560UL << 20, 0xC0000000UL)]
    [InlineData(3UL << 30, 0xC0000000UL)]
    public void Firmware_MTRRs_make_the_PCI_hole_uncacheable_where_SeaBIOS_puts_it_and_never_RAM(ulong ram, ulong hole)
    {
        using var m = new Machine(new MachineOptions { RamBytes = ram, Output = Stream.Null });
        Assert.Equal(hole | 0 /* UC */, m.Cpu.MtrrPhysBase[0]);
        ulong size = 0x100000000UL - hole;
        Assert.Equal((((1UL << 46) - 1) & ~(size - 1)) | 0x800, m.Cpu.MtrrPhysMask[0]);
        Assert.True(hole >= ram, "no RAM may be uncacheable");
    }

    [Fact]
    public void A_dump_of_a_3_GiB_machine_streams_one_3_GiB_PT_LOAD_with_the_bytes_at_their_offsets()
    {
        using var m = new Machine(new MachineOptions { RamBytes = G3, Output = Stream.Null });
        ulong[] marks = [0x1000, (2UL << 30) + 0x123, G3 - 8];
        foreach (ulong pa in marks) m.Memory.Write(pa, 8, pa ^ 0x5A5A5A5A5A5A5A5A);
        var s = new ProbeStream();
        CoreDumpWriter.Write(m, s);
        var h = s.Head;
        Assert.Equal(2, BinaryPrimitives.ReadUInt16LittleEndian(h.AsSpan(56)));   // e_phnum: the note and one PT_LOAD
        var load = h.AsSpan(EhdrSize + PhdrSize);
        Assert.Equal(PtLoad, BinaryPrimitives.ReadUInt32LittleEndian(load));
        long offset = (long)BinaryPrimitives.ReadUInt64LittleEndian(load[8..]);
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(load[24..]));   // p_paddr
        Assert.Equal(G3, BinaryPrimitives.ReadUInt64LittleEndian(load[32..]));    // p_filesz
        Assert.Equal(G3, BinaryPrimitives.ReadUInt64LittleEndian(load[40..]));    // p_memsz
        Assert.Equal(offset + (long)G3, s.Length);
        Assert.True(s.LargestWrite <= 1 << 20, $"written in pieces of at most 1 MiB, not {s.LargestWrite}");
        foreach (ulong pa in marks)
            Assert.Equal(pa ^ 0x5A5A5A5A5A5A5A5A, s.Word(offset + (long)pa));
    }

    /// <summary>
    /// A minimal kallsyms image in the layout Debugging/Kallsyms.cs reads (offsets, relative base, count, names,
    /// markers, token table, token index; 1320 bytes from 8-aligned <c>at</c>): two symbols, "_text" and "_te",
    /// at 0xffffffff81000000 and one byte above.
    /// </summary>
    private static byte[] KallsymsImage()
    {
        var b = new byte[1320];
        BinaryPrimitives.WriteInt32LittleEndian(b, -1);                      // offsets: relative base + 0, + 1
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(4), -2);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), 0xFFFFFFFF81000000);   // kallsyms_relative_base
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(16), 2);           // kallsyms_num_syms
        byte[] names = [3, 0, 1, 2, 2, 0, 1];                                // "T" "_" + "te" + "xt", "T_" + "te"
        names.CopyTo(b, 24);
        // markers at 32: symbol 0's name at offset 0; the token table at 40, 256 tokens of two characters.
        for (int t = 0; t < 256; t++)
        {
            string tok = t switch { 0 => "T_", 1 => "te", 2 => "xt", _ => $"{(char)('A' + t / 26 % 26)}{(char)('a' + t % 26)}" };
            b[40 + 3 * t] = (byte)tok[0]; b[41 + 3 * t] = (byte)tok[1];
            BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(808 + 2 * t), (ushort)(3 * t));   // kallsyms_token_index
        }
        return b;
    }

    [Fact]
    public void Kallsyms_tables_straddling_a_scan_window_of_a_3_GiB_guest_are_found_at_their_physical_address()
    {
        // The image alone, as one span: the offsets are into the span.
        var img = KallsymsImage();
        var alone = new byte[8192];
        img.CopyTo(alone, 4096);
        var t0 = Emu64.Debugging.Kallsyms.Find(alone)!;
        Assert.Equal(["_text", "_te"], t0.Entries.Select(e => e.Name));
        Assert.Equal(0xFFFFFFFF81000000UL, t0.Entries[0].Address);
        Assert.Equal(4096 + 24, t0.NamesOffset);
        // In a 3 GiB guest, across the end of the scan window [960 MiB, 1984 MiB): found whole by the next window.
        using var m = new Machine(new MachineOptions { RamBytes = G3, Output = Stream.Null });
        ulong at = (1984UL << 20) - 600;
        Assert.True(m.Memory.WriteBytes(at, img));
        var t = Emu64.Debugging.Kallsyms.Find(m.Memory)!;
        Assert.Equal(t0.Entries, t.Entries);
        Assert.Equal((long)at + 24, t.NamesOffset);
        Assert.Equal((long)at + 40, t.TokenTableOffset);
    }

    /// <summary>Counts what is written and keeps the first 4 KiB and the 8-byte words the test asks for later.</summary>
    private sealed class ProbeStream : Stream
    {
        public readonly byte[] Head = new byte[4096];
        private readonly Dictionary<long, byte> _bytes = new();
        private long _pos;
        public int LargestWrite;
        public ulong Word(long at) { ulong v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | _bytes.GetValueOrDefault(at + i); return v; }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            LargestWrite = Math.Max(LargestWrite, buffer.Length);
            if (_pos < Head.Length) buffer[..(int)Math.Min(buffer.Length, Head.Length - _pos)].CopyTo(Head.AsSpan((int)_pos));
            // Keep the non-zero bytes (the marks and the header): a 3 GiB machine that wrote a few words has few.
            int i = buffer.IndexOfAnyExcept((byte)0);
            while (i >= 0)
            {
                _bytes[_pos + i] = buffer[i];
                int next = buffer[(i + 1)..].IndexOfAnyExcept((byte)0);
                i = next < 0 ? -1 : i + 1 + next;
            }
            _pos += buffer.Length;
        }
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override long Length => _pos;
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Position { get => _pos; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
