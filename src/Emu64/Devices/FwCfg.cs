using System.Buffers.Binary;
using System.Text;

namespace Emu64.Devices;

/// <summary>
/// QEMU's firmware configuration device (docs/specs/fw_cfg.txt in QEMU), I/O-port flavour as on a PC:
/// write a 16-bit selector to 0x510, then read the item's bytes one at a time from 0x511 (reading
/// past the end gives 0; selecting restarts at offset 0). Data-port writes are ignored, as in QEMU
/// since 2.4.
///
/// Items: 0x0000 signature "QEMU"; 0x0001 feature bits (bit 0 traditional interface, bit 1 DMA);
/// 0x0002 UUID (16 zero bytes); 0x0003 RAM size (u64 LE); 0x0004 no-graphic flag; 0x0005 CPU count
/// (u16 = 1); 0x000E boot-menu flag; 0x000F maximum CPU count (u16 = 1); 0x0019 the file directory.
/// Named files are listed in the directory (u32 count, then per file: u32 size, u16 selector,
/// u16 reserved, 56-byte name; all big-endian) with selectors from 0x0020 on, sorted by name as QEMU
/// does: "etc/boot-fail-wait" (u32 LE, 0xFFFFFFFF: never reboot, as QEMU) and "etc/e820" (the RAM
/// map, entries of u64 address, u64 length, u32 type). QEMU fills the command-line items
/// (0x0014/0x0015) only for Linux kernels; a multiboot kernel finds its command line in the multiboot
/// information, and reads 0 there, here as under QEMU. The ACPI and SMBIOS tables QEMU also lists
/// are not provided (Emu64 builds no ACPI tables), so they are not in the directory either.
///
/// DMA interface: the guest writes the physical address of a control block (be32 control, be32
/// length, be64 address) to 0x514 (high half) and 0x518 (low half; this write starts the transfer),
/// both big-endian. Control bits: 0x08 select (selector in bits 31:16), 0x04 skip, 0x02 read,
/// 0x10 write (unsupported: sets the error bit 0x01). On completion the control word becomes 0.
/// </summary>
public sealed class FwCfg : IIoDevice
{
    public const ushort SelectorPort = 0x510, DataPort = 0x511, DmaPort = 0x514;
    public const ushort Signature = 0x00, Id = 0x01, Uuid = 0x02, RamSize = 0x03, NoGraphic = 0x04, NbCpus = 0x05,
        BootMenu = 0x0E, MaxCpus = 0x0F, FileDir = 0x19, FileFirst = 0x20;

    private readonly Machine _m;
    private readonly Dictionary<ushort, byte[]> _items = new();
    private ushort _selector;
    private int _offset;
    private uint _dmaHigh;

    public FwCfg(Machine m)
    {
        _m = m;
        _items[Signature] = "QEMU"u8.ToArray();
        _items[Id] = LE32(3);
        _items[Uuid] = new byte[16];
        _items[RamSize] = LE64(m.Memory.RamSize);
        _items[NoGraphic] = LE16(0);
        _items[NbCpus] = LE16(1);
        _items[BootMenu] = LE16(0);
        _items[MaxCpus] = LE16(1);
        AddFiles(new (string, byte[])[]
        {
            ("etc/e820", E820(m.Memory.RamSize)),
            ("etc/boot-fail-wait", LE32(uint.MaxValue)),
        });
    }

    /// <summary>The e820 table QEMU publishes: entries of u64 address, u64 length, u32 type (1 = RAM).</summary>
    private static byte[] E820(ulong ram)
    {
        var b = new byte[20];
        BinaryPrimitives.WriteUInt64LittleEndian(b, 0);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), ram);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(16), 1);
        return b;
    }

    private void AddFiles((string Name, byte[] Data)[] files)
    {
        var sorted = files.OrderBy(f => f.Name, StringComparer.Ordinal).ToArray();
        var dir = new byte[4 + 64 * sorted.Length];
        BinaryPrimitives.WriteUInt32BigEndian(dir, (uint)sorted.Length);
        for (int i = 0; i < sorted.Length; i++)
        {
            ushort sel = (ushort)(FileFirst + i);
            _items[sel] = sorted[i].Data;
            var e = dir.AsSpan(4 + 64 * i, 64);
            BinaryPrimitives.WriteUInt32BigEndian(e, (uint)sorted[i].Data.Length);
            BinaryPrimitives.WriteUInt16BigEndian(e[4..], sel);
            Encoding.ASCII.GetBytes(sorted[i].Name).CopyTo(e[8..]);
        }
        _items[FileDir] = dir;
    }

    private static byte[] LE16(ushort v) { var b = new byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(b, v); return b; }
    private static byte[] LE32(uint v) { var b = new byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); return b; }
    private static byte[] LE64(ulong v) { var b = new byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, v); return b; }

    private void Select(ushort key) { _selector = key; _offset = 0; }

    private byte NextByte()
    {
        if (!_items.TryGetValue(_selector, out var d) || _offset >= d.Length) return 0;
        return d[_offset++];
    }

    public uint In(ushort port, int size)
    {
        switch (port)
        {
            case DataPort:
                {
                    uint v = 0;
                    for (int i = 0; i < size; i++) v |= (uint)NextByte() << (8 * i);
                    return v;
                }
            // Reading the DMA address register returns the signature "QEMU CFG" (big-endian).
            case DmaPort: return BinaryPrimitives.ReverseEndianness(0x51454D55u);
            case DmaPort + 4: return BinaryPrimitives.ReverseEndianness(0x20434647u);
        }
        return 0;
    }

    public void Out(ushort port, int size, uint value)
    {
        switch (port)
        {
            case SelectorPort: if (size >= 2) Select((ushort)value); break;
            case DmaPort: _dmaHigh = BinaryPrimitives.ReverseEndianness(value); break;
            case DmaPort + 4: Dma(((ulong)_dmaHigh << 32) | BinaryPrimitives.ReverseEndianness(value)); break;
        }
    }

    private void Dma(ulong block)
    {
        var mem = _m.Memory;
        Span<byte> hdr = stackalloc byte[16];
        if (!mem.IsRam(block, 16)) return;
        mem.ReadBytes(block, hdr);
        uint control = BinaryPrimitives.ReadUInt32BigEndian(hdr);
        uint length = BinaryPrimitives.ReadUInt32BigEndian(hdr[4..]);
        ulong addr = BinaryPrimitives.ReadUInt64BigEndian(hdr[8..]);
        if ((control & 0x08) != 0) Select((ushort)(control >> 16));
        uint result = 0;
        if ((control & 0x10) != 0) result = 1;                   // writes: no writable items
        else if ((control & 0x02) != 0)
        {
            if (!mem.IsRam(addr, (int)Math.Min(length, int.MaxValue))) result = 1;
            else for (uint i = 0; i < length; i++) mem.Write(addr + i, 1, NextByte());
        }
        else if ((control & 0x04) != 0)
        {
            for (uint i = 0; i < length; i++) NextByte();
        }
        Span<byte> done = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(done, result);
        mem.WriteBytes(block, done);
    }
}
