using System.Text;

namespace Emu64.Devices;

/// <summary>
/// Writes one ACPI table: the 36-byte system description header (ACPI 6.5 §5.2.6: signature, length,
/// revision, checksum, OEM ID, OEM table ID, OEM revision, creator ID and revision), then little-endian
/// fields; <see cref="Finish"/> fills in the length and the checksum (all bytes sum to 0 mod 256).
/// </summary>
public sealed class AcpiTableBuilder
{
    public const string OemId = "EMU64 ", OemTableId = "EMU64PC ", CreatorId = "EMU6";
    private readonly List<byte> _b = new();

    public AcpiTableBuilder(string signature, byte revision)
    {
        Ascii(signature, 4);
        U32(0);                         // length, set by Finish
        U8(revision);
        U8(0);                          // checksum, set by Finish
        Ascii(OemId, 6);
        Ascii(OemTableId, 8);
        U32(1);                         // OEM revision
        Ascii(CreatorId, 4);
        U32(1);                         // creator revision
    }

    public int Length => _b.Count;

    public AcpiTableBuilder U8(byte v) { _b.Add(v); return this; }
    public AcpiTableBuilder U16(ushort v) { U8((byte)v); return U8((byte)(v >> 8)); }
    public AcpiTableBuilder U32(uint v) { U16((ushort)v); return U16((ushort)(v >> 16)); }
    public AcpiTableBuilder U64(ulong v) { U32((uint)v); return U32((uint)(v >> 32)); }
    public AcpiTableBuilder Bytes(ReadOnlySpan<byte> v) { foreach (var x in v) _b.Add(x); return this; }
    public AcpiTableBuilder Zeros(int n) { for (int i = 0; i < n; i++) _b.Add(0); return this; }

    public AcpiTableBuilder Ascii(string s, int n)
    {
        if (s.Length != n) throw new ArgumentException($"'{s}' is not {n} characters");
        return Bytes(Encoding.ASCII.GetBytes(s));
    }

    /// <summary>A Generic Address Structure (§5.2.3.2): address space, bit width, bit offset, access size, address.</summary>
    public AcpiTableBuilder Gas(byte space, byte bitWidth, byte accessSize, ulong address)
    {
        U8(space); U8(bitWidth); U8(0); U8(accessSize);
        return U64(address);
    }

    public const byte SpaceMemory = 0, SpaceIo = 1;

    public byte[] Finish()
    {
        var t = _b.ToArray();
        BitConverter.TryWriteBytes(t.AsSpan(4), (uint)t.Length);
        t[9] = Checksum(t);
        return t;
    }

    /// <summary>The byte that makes <paramref name="data"/> (with that byte counted as 0) sum to 0 mod 256.</summary>
    public static byte Checksum(ReadOnlySpan<byte> data)
    {
        byte sum = 0;
        foreach (var x in data) sum += x;
        return (byte)-sum;
    }
}
