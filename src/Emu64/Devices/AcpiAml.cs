using System.Text;

namespace Emu64.Devices;

/// <summary>
/// A small encoder for the ACPI Machine Language that Emu64's DSDT needs (ACPI 6.5 §20.2, "AML
/// Grammar Definition"): named objects, integers, strings, packages, buffers, devices and scopes.
/// Every term returns its bytes; a table is the concatenation of its terms.
/// </summary>
public static class AcpiAml
{
    private const byte ZeroOp = 0x00, OneOp = 0x01, NameOp = 0x08, BytePrefix = 0x0A, WordPrefix = 0x0B, DWordPrefix = 0x0C,
        StringPrefix = 0x0D, QWordPrefix = 0x0E, ScopeOp = 0x10, BufferOp = 0x11, PackageOp = 0x12, ExtOpPrefix = 0x5B, DeviceOp = 0x82;

    /// <summary>A NameSeg: four characters, padded with '_' (§20.2.2). <paramref name="path"/> may start with '\' (root).</summary>
    public static byte[] NameString(string path)
    {
        var b = new List<byte>();
        if (path.StartsWith('\\')) { b.Add((byte)'\\'); path = path[1..]; }
        var segs = path.Length == 0 ? Array.Empty<string>() : path.Split('.');
        if (segs.Length == 2) b.Add(0x2E);                       // DualNamePrefix
        else if (segs.Length > 2) { b.Add(0x2F); b.Add((byte)segs.Length); }   // MultiNamePrefix
        else if (segs.Length == 0) b.Add(0x00);                  // NullName
        foreach (var s in segs)
        {
            if (s.Length is 0 or > 4) throw new ArgumentException($"bad AML name segment '{s}'");
            b.AddRange(Encoding.ASCII.GetBytes(s.PadRight(4, '_')));
        }
        return b.ToArray();
    }

    /// <summary>PkgLength (§20.2.4): the length of itself plus <paramref name="contentLength"/> bytes, in 1–4 bytes.</summary>
    public static byte[] PkgLength(int contentLength)
    {
        for (int n = 1; n <= 4; n++)
        {
            int total = contentLength + n;
            if (n == 1 && total < 0x40) return [(byte)total];
            if (n > 1 && total < 1 << (4 + 8 * (n - 1)))
            {
                var r = new byte[n];
                r[0] = (byte)(((n - 1) << 6) | (total & 0xF));
                for (int i = 1; i < n; i++) r[i] = (byte)(total >> (4 + 8 * (i - 1)));
                return r;
            }
        }
        throw new ArgumentException("AML package too long");
    }

    /// <summary>An integer in the shortest encoding: ZeroOp, OneOp, or a Byte/Word/DWord/QWord constant.</summary>
    public static byte[] Integer(ulong v)
    {
        if (v == 0) return [ZeroOp];
        if (v == 1) return [OneOp];
        if (v <= 0xFF) return [BytePrefix, (byte)v];
        if (v <= 0xFFFF) return [WordPrefix, (byte)v, (byte)(v >> 8)];
        if (v <= 0xFFFFFFFF) return [DWordPrefix, (byte)v, (byte)(v >> 8), (byte)(v >> 16), (byte)(v >> 24)];
        var q = new byte[9];
        q[0] = QWordPrefix;
        BitConverter.TryWriteBytes(q.AsSpan(1), v);
        return q;
    }

    public static byte[] String(string s) => [StringPrefix, .. Encoding.ASCII.GetBytes(s), 0];

    /// <summary>Name(NAME, object).</summary>
    public static byte[] Name(string name, byte[] value) => [NameOp, .. NameString(name), .. value];

    /// <summary>Package(n) { elements } with NumElements = the element count.</summary>
    public static byte[] Package(params byte[][] elements)
    {
        byte[] body = [(byte)elements.Length, .. elements.SelectMany(e => e)];
        return [PackageOp, .. PkgLength(body.Length), .. body];
    }

    /// <summary>Buffer() { bytes }: BufferSize then the bytes.</summary>
    public static byte[] Buffer(byte[] data)
    {
        byte[] body = [.. Integer((ulong)data.Length), .. data];
        return [BufferOp, .. PkgLength(body.Length), .. body];
    }

    /// <summary>Scope(name) { terms }.</summary>
    public static byte[] Scope(string name, params byte[][] terms)
    {
        byte[] body = [.. NameString(name), .. terms.SelectMany(t => t)];
        return [ScopeOp, .. PkgLength(body.Length), .. body];
    }

    /// <summary>Device(name) { terms }.</summary>
    public static byte[] Device(string name, params byte[][] terms)
    {
        byte[] body = [.. NameString(name), .. terms.SelectMany(t => t)];
        return [ExtOpPrefix, DeviceOp, .. PkgLength(body.Length), .. body];
    }

    /// <summary>
    /// EisaId("PNPxxxx") (ASL §19.6.35): three letters compressed to 5 bits each and four hex digits, stored
    /// as a DWord in the byte order that makes it read "PNP0303" on the bus.
    /// </summary>
    public static byte[] EisaId(string id)
    {
        if (id.Length != 7) throw new ArgumentException("EISA id must be 7 characters");
        uint v = (uint)((id[0] - 0x40) << 26 | (id[1] - 0x40) << 21 | (id[2] - 0x40) << 16) | Convert.ToUInt32(id[3..], 16);
        uint swapped = (v >> 24) | ((v >> 8) & 0xFF00) | ((v << 8) & 0xFF0000) | (v << 24);
        return Integer(swapped);
    }

    // ---- resource descriptors (ACPI 6.5 §6.4), for _CRS buffers ----

    /// <summary>IO(Decode16, port, port, 1, length): a small I/O port descriptor (§6.4.2.5).</summary>
    public static byte[] IoPort(ushort port, byte length) =>
        [0x47, 0x01, (byte)port, (byte)(port >> 8), (byte)port, (byte)(port >> 8), 0x01, length];

    /// <summary>IRQNoFlags() { irq }: a two-byte IRQ descriptor (§6.4.2.1), edge-triggered active-high.</summary>
    public static byte[] IrqNoFlags(int irq) => [0x22, (byte)(1 << irq), (byte)((1 << irq) >> 8)];

    /// <summary>Memory32Fixed(ReadWrite, base, length) (§6.4.3.4).</summary>
    public static byte[] Memory32Fixed(uint @base, uint length) =>
        [0x86, 0x09, 0x00, 0x01, .. BitConverter.GetBytes(@base), .. BitConverter.GetBytes(length)];

    /// <summary>ResourceTemplate() { descriptors }: a Buffer ending with the End Tag (§6.4.2.9, checksum 0 = none).</summary>
    public static byte[] ResourceTemplate(params byte[][] descriptors) => Buffer([.. descriptors.SelectMany(d => d), 0x79, 0x00]);
}
