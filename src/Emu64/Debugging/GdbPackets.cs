using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Emu64.Debugging;

/// <summary>What the connection delivered: a packet, a Ctrl-C, or the end of the connection.</summary>
public enum GdbInput { Packet, Interrupt, Closed }

/// <summary>
/// The framing of the gdb remote serial protocol: <c>$payload#cs</c> with a two-hex-digit modulo-256
/// checksum, '+'/'-' acknowledgements, a bare 0x03 byte for Ctrl-C, and '}' escapes (byte XOR 0x20) in
/// binary payloads. Every limit is bounded: a packet longer than <see cref="MaxPacket"/> is dropped and
/// NAKed, garbage between packets is skipped.
/// </summary>
public sealed class GdbConnection : IDisposable
{
    public const int MaxPacket = 0x4000;
    private readonly Socket _s;
    private readonly byte[] _buf = new byte[8192];
    private int _pos, _len;
    private readonly StringBuilder _log;
    public bool Closed { get; private set; }

    public GdbConnection(Socket s, StringBuilder? log = null)
    {
        _s = s;
        _s.NoDelay = true;
        _log = log ?? new StringBuilder();
    }

    /// <summary>True when a byte is waiting (used between run slices to notice Ctrl-C without blocking).</summary>
    public bool DataAvailable
    {
        get
        {
            if (_pos < _len) return true;
            try { return !Closed && _s.Available > 0; }
            catch (ObjectDisposedException) { return false; }
            catch (SocketException) { Closed = true; return false; }
        }
    }

    private int NextByte()
    {
        if (_pos >= _len)
        {
            if (Closed) return -1;
            try { _len = _s.Receive(_buf); }
            catch (SocketException) { _len = 0; }
            catch (ObjectDisposedException) { _len = 0; }
            _pos = 0;
            if (_len <= 0) { Closed = true; _len = 0; return -1; }
        }
        return _buf[_pos++];
    }

    /// <summary>Reads the next packet (acknowledging it) or interrupt. Bad checksums are NAKed and skipped.</summary>
    public GdbInput Read(out byte[] payload)
    {
        payload = Array.Empty<byte>();
        while (true)
        {
            int b = NextByte();
            if (b < 0) return GdbInput.Closed;
            if (b == 0x03) return GdbInput.Interrupt;
            if (b != '$') continue;                  // '+', '-', and noise between packets
            var body = new List<byte>();
            bool tooLong = false;
            while (true)
            {
                b = NextByte();
                if (b < 0) return GdbInput.Closed;
                if (b == '#') break;
                if (b == '$') { body.Clear(); tooLong = false; continue; }   // a new packet starts: drop the broken one
                if (body.Count < MaxPacket) body.Add((byte)b); else tooLong = true;
            }
            int h = NextByte(), l = NextByte();
            if (h < 0 || l < 0) return GdbInput.Closed;
            int sum = 0;
            foreach (var x in body) sum = (sum + x) & 0xFF;
            if (tooLong || !IsHex(h) || !IsHex(l) || HexVal(h) * 16 + HexVal(l) != sum) { SendRaw("-"); continue; }
            SendRaw("+");
            payload = body.ToArray();
            return GdbInput.Packet;
        }
    }

    public void Send(string payload)
    {
        int sum = 0;
        foreach (char ch in payload) sum = (sum + (byte)ch) & 0xFF;
        SendRaw($"${payload}#{sum:x2}");
    }

    private void SendRaw(string s)
    {
        if (Closed) return;
        try { _s.Send(Encoding.Latin1.GetBytes(s)); }
        catch (SocketException) { Closed = true; }
        catch (ObjectDisposedException) { Closed = true; }
    }

    public void Dispose()
    {
        Closed = true;
        try { _s.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
        _s.Dispose();
    }

    // ---- hex helpers ---------------------------------------------------------------------------

    public static bool IsHex(int c) => c is >= '0' and <= '9' or >= 'a' and <= 'f' or >= 'A' and <= 'F';
    public static int HexVal(int c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;

    public static string ToHex(ReadOnlySpan<byte> b) => Convert.ToHexString(b).ToLowerInvariant();

    public static bool TryFromHex(string s, out byte[] bytes)
    {
        bytes = Array.Empty<byte>();
        if (s.Length % 2 != 0 || s.Any(c => !IsHex(c))) return false;
        bytes = Convert.FromHexString(s);
        return true;
    }

    /// <summary>A hex number of at most 16 digits (gdb sends addresses and lengths this way).</summary>
    public static bool TryHexNumber(string s, out ulong v)
    {
        v = 0;
        return s.Length is > 0 and <= 16 && s.All(c => IsHex(c)) && ulong.TryParse(s, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out v);
    }

    /// <summary>Little-endian hex of the low <paramref name="size"/> bytes of v (register values).</summary>
    public static string LeHex(ulong v, int size)
    {
        var sb = new StringBuilder(size * 2);
        for (int i = 0; i < size; i++) sb.Append(i < 8 ? ((v >> (8 * i)) & 0xFF).ToString("x2") : "00");
        return sb.ToString();
    }

    /// <summary>Parses little-endian hex of a register value (up to 8 bytes used).</summary>
    public static bool TryLeHex(string s, out ulong v)
    {
        v = 0;
        if (!TryFromHex(s, out var b) || b.Length == 0) return false;
        for (int i = Math.Min(b.Length, 8) - 1; i >= 0; i--) v = v << 8 | b[i];
        return true;
    }

    /// <summary>Undoes the '}' escaping of binary data (X packets).</summary>
    public static byte[] Unescape(ReadOnlySpan<byte> data)
    {
        var r = new List<byte>(data.Length);
        for (int i = 0; i < data.Length; i++)
            r.Add(data[i] == '}' && i + 1 < data.Length ? (byte)(data[++i] ^ 0x20) : data[i]);
        return r.ToArray();
    }
}
