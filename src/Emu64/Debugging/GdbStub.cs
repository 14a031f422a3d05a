using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Emu64.Debugging;

/// <summary>
/// A gdb remote-protocol stub for the stock gdb. It listens on 127.0.0.1 unless given a host, accepts
/// one client, and runs the machine on the calling thread in slices of <see cref="SliceInstructions"/>
/// while gdb waits, checking for Ctrl-C between slices (so a run stays deterministic). Packets it does
/// not know get the empty reply the protocol asks for; malformed ones get an error reply.
/// </summary>
public sealed class GdbStub : IDisposable
{
    public const ulong SliceInstructions = 100_000;
    private readonly Debugger _d;
    private readonly DebuggerCommands _monitor;
    private readonly TcpListener _listener;
    private GdbConnection? _conn;
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
    /// <summary>Why the session ended: "detach", "kill", "closed", or "exited".</summary>
    public string EndedBy { get; private set; } = "";
    public TextWriter Log { get; set; } = TextWriter.Null;

    public GdbStub(Debugger d, string host, int port)
    {
        _d = d;
        _monitor = new DebuggerCommands(d);
        var addr = host is "" or "localhost" ? IPAddress.Loopback : IPAddress.Parse(host);
        _listener = new TcpListener(addr, port);
        _listener.Start(1);
    }

    /// <summary>Parses "[HOST:]PORT" (default host 127.0.0.1).</summary>
    public static (string Host, int Port) ParseEndpoint(string s)
    {
        string host = "127.0.0.1", port = s;
        int colon = s.LastIndexOf(':');
        if (colon >= 0) { host = s[..colon]; port = s[(colon + 1)..]; }
        if (host.StartsWith('[') && host.EndsWith(']')) host = host[1..^1];
        if (!int.TryParse(port, out int p) || p is < 0 or > 65535) throw new FormatException($"bad gdb port '{port}' (expected [HOST:]PORT)");
        if (host != "localhost" && !IPAddress.TryParse(host, out _)) throw new FormatException($"bad gdb host '{host}' (an IP address or localhost)");
        return (host, p);
    }

    /// <summary>True when a gdb client is waiting to be accepted (checked between run slices when not started with --wait).</summary>
    public bool ClientWaiting => _listener.Pending();

    /// <summary>Waits for gdb, then serves it until it detaches, kills, or disconnects. The machine is stopped while gdb is not running it.</summary>
    public void Serve()
    {
        var socket = _listener.AcceptSocket();
        _listener.Stop();                                  // one client only
        using var conn = _conn = new GdbConnection(socket);
        Log.WriteLine($"gdb: client connected from {socket.RemoteEndPoint}");
        while (true)
        {
            var input = conn.Read(out var payload);
            if (input == GdbInput.Closed) { EndedBy = "closed"; break; }
            if (input == GdbInput.Interrupt) { conn.Send(StopReply(_d.Interrupt())); continue; }
            string p = Encoding.Latin1.GetString(payload);
            string? reply;
            try { reply = Handle(p, payload); }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A packet we could not make sense of: an error reply, never a crash of the emulator.
                Log.WriteLine($"gdb: packet '{(p.Length > 40 ? p[..40] + "..." : p)}' failed: {e.Message}");
                reply = "E01";
            }
            if (reply != null) conn.Send(reply);
            if (EndedBy != "") break;
        }
        // Detached or gone: the breakpoints go away and the machine runs on by itself.
        _d.Breakpoints.Clear(); _d.HardwareBreakpoints.Clear(); _d.Watchpoints.Clear();
        _d.UpdateHook();
        Log.WriteLine($"gdb: session ended ({EndedBy})");
    }

    private string? Handle(string p, byte[] raw)
    {
        if (p.Length == 0) return "";
        var c = _d.M.Cpu;
        switch (p[0])
        {
            case '?': return StopReply(_d.LastStop.Kind == StopKind.None ? _d.LastStop with { Kind = StopKind.Interrupted } : _d.LastStop);
            case 'g': return string.Concat(Enumerable.Range(0, GdbRegisters.Defs.Length).Select(n => GdbRegisters.Read(c, n)));
            case 'G': return WriteAll(p[1..]);
            case 'p': return GdbConnection.TryHexNumber(p[1..], out ulong rn) && rn < (ulong)GdbRegisters.Defs.Length ? GdbRegisters.Read(c, (int)rn) : "E01";
            case 'P':
                {
                    var kv = p[1..].Split('=');
                    if (kv.Length != 2 || !GdbConnection.TryHexNumber(kv[0], out ulong n) || n >= (ulong)GdbRegisters.Defs.Length
                        || !GdbConnection.TryFromHex(kv[1], out var b)) return "E01";
                    return GdbRegisters.Write(c, (int)n, b) ? "OK" : "E01";
                }
            case 'm': return ReadMem(p[1..]);
            case 'M': return WriteMem(p[1..]);
            case 'X': return WriteBinary(raw);
            case 'Z': case 'z': return Breakpoint(p[0] == 'Z', p[1..]);
            case 's': return StopReply(_d.Step(1));
            case 'S': return StopReply(_d.Step(1));
            case 'c': case 'C': return Continue();
            case 'H': return "OK";
            case 'T': return "OK";
            case 'D': EndedBy = "detach"; return "OK";
            case 'k': EndedBy = "kill"; _d.M.Stop(StopReason.Shutdown, 0, "killed by gdb"); return null;
            case 'v': return V(p);
            case 'q': return Query(p);
            case 'Q': return "";
            default: return "";
        }
    }

    private string V(string p)
    {
        if (p == "vCont?") return "vCont;c;C;s;S";
        if (p.StartsWith("vCont;"))
        {
            // One thread: the first action decides (gdb sends e.g. "vCont;s:1" or "vCont;c").
            string action = p[6..].Split(';')[0].Split(':')[0];
            return action.Length > 0 && action[0] is 's' or 'S' ? StopReply(_d.Step(1))
                 : action.Length > 0 && action[0] is 'c' or 'C' ? Continue() : "E01";
        }
        if (p.StartsWith("vKill")) { EndedBy = "kill"; _d.M.Stop(StopReason.Shutdown, 0, "killed by gdb"); return "OK"; }
        return "";   // vMustReplyEmpty and everything we do not support
    }

    private string Query(string p)
    {
        if (p.StartsWith("qSupported")) return $"PacketSize={GdbConnection.MaxPacket:x};qXfer:features:read+;swbreak+;hwbreak+;vContSupported+";
        if (p == "qAttached") return "1";
        if (p == "qC") return "QC01";
        if (p == "qfThreadInfo") return "m01";
        if (p == "qsThreadInfo") return "l";
        if (p == "qSymbol::") return "OK";
        if (p.StartsWith("qXfer:features:read:"))
        {
            var parts = p["qXfer:features:read:".Length..].Split(':');
            if (parts.Length != 2 || parts[0] != "target.xml") return "E00";
            var ol = parts[1].Split(',');
            if (ol.Length != 2 || !GdbConnection.TryHexNumber(ol[0], out ulong off) || !GdbConnection.TryHexNumber(ol[1], out ulong len)) return "E01";
            string xml = GdbRegisters.TargetXml;
            if (off >= (ulong)xml.Length) return "l";
            int n = (int)Math.Min(len, (ulong)xml.Length - off);
            return (off + (ulong)n >= (ulong)xml.Length ? "l" : "m") + xml.Substring((int)off, n);
        }
        if (p == "qOffsets") return Offsets();
        if (p.StartsWith("qRcmd,")) return Monitor(p[6..]);
        return "";
    }

    /// <summary>
    /// qOffsets: the kernel's KASLR offset for the text, data and bss of the symbol file gdb loaded before
    /// `target remote` (gdb relocates it by these, so `break SYMBOL` works without nokaslr). Known once the
    /// kernel announced its _text or set LSTAR, or beforehand when the caller learned it (emu64 runs a
    /// scratch copy of the machine to the announcement). Empty (gdb keeps its addresses) while unknown.
    /// </summary>
    private string Offsets()
    {
        var s = _d.Symbols;
        if (!s.DetectSlide(_d.M)) return "";
        string o = ((ulong)s.Slide).ToString("x");
        return $"Text={o};Data={o};Bss={o}";
    }

    /// <summary>The file gdb should load the symbols from (named in `monitor kaslr`'s line to paste).</summary>
    public string? KernelPath { get; init; }

    /// <summary>`monitor kaslr`: the offset, and the gdb command that loads the symbols where the kernel runs.</summary>
    private string Kaslr()
    {
        var s = _d.Symbols;
        if (!s.DetectSlide(_d.M))
            return "KASLR offset not known yet (the kernel has not announced its _text or set LSTAR); boot with nokaslr, or ask again later\n";
        if (s.Source == "kallsyms")
            return $"KASLR offset 0x{(ulong)s.KaslrOffset:x} (runtime _text 0x{Kallsyms.LinkText + (ulong)s.KaslrOffset:x}); {s.Count} symbols from the kernel's kallsyms, at their runtime addresses:\n" +
                   "start emu64 with --gdb-symbols FILE and load them with: symbol-file FILE\n";
        string file = KernelPath ?? "KERNEL";
        return $"KASLR offset 0x{(ulong)s.Slide:x} (runtime = link address + offset); load the symbols there with:\n" +
               $"symbol-file -o 0x{(ulong)s.Slide:x} {file}\n";
    }

    // ---- run control ---------------------------------------------------------------------------

    private string Continue()
    {
        var conn = _conn!;
        _d.ArmContinue(0);
        while (true)
        {
            var stop = _d.RunSlice(SliceInstructions);
            if (stop != null) return StopReply(stop);
            if (conn.DataAvailable)
            {
                var input = conn.Read(out _);
                if (input == GdbInput.Closed) { EndedBy = "closed"; return "X09"; }
                if (input == GdbInput.Interrupt) return StopReply(_d.Interrupt());
            }
        }
    }

    private string StopReply(StopInfo s)
    {
        var m = _d.M;
        if (s.Kind == StopKind.Exited)
        {
            int code = m.StopReason == StopReason.DebugExit ? m.ExitCode & 0xFF : m.StopReason == StopReason.Shutdown ? 0 : 1;
            if (EndedBy == "") EndedBy = "exited";
            return $"W{code:x2}";
        }
        return s.Kind switch
        {
            StopKind.Interrupted => "T02thread:01;",
            StopKind.Breakpoint => "T05thread:01;swbreak:;",
            StopKind.HardwareBreakpoint => "T05thread:01;hwbreak:;",
            StopKind.Watchpoint => $"T05thread:01;{s.WatchKind switch { WatchKind.Read => "rwatch", WatchKind.Access => "awatch", _ => "watch" }}:{s.WatchAddress:x};",
            _ => "T05thread:01;",
        };
    }

    /// <summary>G: all registers in g order; registers that cannot change (see <see cref="GdbRegisters.Write"/>) must keep their value.</summary>
    private string WriteAll(string hex)
    {
        if (!GdbConnection.TryFromHex(hex, out var all)) return "E01";
        var c = _d.M.Cpu;
        int off = 0;
        var ok = true;
        for (int n = 0; n < GdbRegisters.Defs.Length && off < all.Length; n++)
        {
            int size = GdbRegisters.Defs[n].Size;
            if (off + size > all.Length) return "E01";
            ok &= GdbRegisters.Write(c, n, all[off..(off + size)]);
            off += size;
        }
        return ok ? "OK" : "E01";
    }

    // ---- memory and breakpoints ----------------------------------------------------------------

    private static bool AddrLen(string s, out ulong addr, out ulong len)
    {
        len = 0;
        var al = s.Split(',');
        return al.Length == 2 & GdbConnection.TryHexNumber(al[0], out addr) && GdbConnection.TryHexNumber(al[1], out len);
    }

    private string ReadMem(string s)
    {
        if (!AddrLen(s, out ulong addr, out ulong len) || len > GdbConnection.MaxPacket / 2) return "E01";
        var buf = new byte[len];
        int n = PageWalker.ReadLinear(_d.M, addr, buf);
        return n == 0 && len > 0 ? "E14" : GdbConnection.ToHex(buf.AsSpan(0, n));
    }

    private string WriteMem(string s)
    {
        int colon = s.IndexOf(':');
        if (colon < 0 || !AddrLen(s[..colon], out ulong addr, out ulong len) || !GdbConnection.TryFromHex(s[(colon + 1)..], out var data)
            || (ulong)data.Length != len) return "E01";
        return PageWalker.WriteLinear(_d.M, addr, data) == data.Length ? "OK" : "E14";
    }

    private string WriteBinary(byte[] raw)
    {
        int colon = Array.IndexOf(raw, (byte)':');
        if (colon < 0 || !AddrLen(Encoding.Latin1.GetString(raw, 1, colon - 1), out ulong addr, out ulong len)) return "E01";
        var data = GdbConnection.Unescape(raw.AsSpan(colon + 1));
        if ((ulong)data.Length != len) return "E01";
        return PageWalker.WriteLinear(_d.M, addr, data) == data.Length ? "OK" : "E14";
    }

    private string Breakpoint(bool insert, string s)
    {
        var f = s.Split(',');
        if (f.Length < 3 || f[0].Length != 1 || !GdbConnection.TryHexNumber(f[1], out ulong addr) || !GdbConnection.TryHexNumber(f[2].Split(';')[0], out ulong kind))
            return "E01";
        switch (f[0][0])
        {
            case '0': if (insert) _d.Breakpoints.Add(addr); else _d.Breakpoints.Remove(addr); return "OK";
            case '1': if (insert) _d.HardwareBreakpoints.Add(addr); else _d.HardwareBreakpoints.Remove(addr); return "OK";
            case '2' or '3' or '4':
                if (kind == 0 || kind > 4096) return "E01";
                var w = new Watchpoint(addr, kind, f[0][0] == '2' ? WatchKind.Write : f[0][0] == '3' ? WatchKind.Read : WatchKind.Access);
                if (insert) { if (!_d.Watchpoints.Contains(w)) _d.Watchpoints.Add(w); } else _d.Watchpoints.Remove(w);
                return "OK";
            default: return "";
        }
    }

    // ---- monitor -------------------------------------------------------------------------------

    private static readonly string[] MonitorCommands = ["tlb", "walk", "ptdump", "stats", "pcid", "mark", "regs", "cr", "dr", "msr", "x", "xp", "disas", "events", "kaslr", "nmi", "dump-guest-memory", "help"];

    private string Monitor(string hex)
    {
        if (!GdbConnection.TryFromHex(hex, out var b)) return "E01";
        string line = Encoding.UTF8.GetString(b).Trim();
        string word = line.Split(' ', 2)[0].Split('/')[0].ToLowerInvariant();
        string output = !MonitorCommands.Contains(word)
            ? $"unknown monitor command '{word}'; available: {string.Join(", ", MonitorCommands)}\n"
            : word == "help" ? "monitor commands: tlb [stats], walk ADDR [CR3], ptdump [CR3], stats, pcid, mark, regs, cr, dr, msr NAME, x[/Nf] ADDR, xp[/Nf] ADDR, disas [ADDR] [N], events [N], kaslr, nmi, dump-guest-memory FILE (numbers: decimal, or hexadecimal after 0x)\n"
            : word == "kaslr" ? Kaslr()
            : _monitor.Execute(line);
        // Output goes to gdb's console in 'O' packets, then the final OK.
        for (int i = 0; i < output.Length; i += 1024)
            _conn!.Send("O" + GdbConnection.ToHex(Encoding.UTF8.GetBytes(output.Substring(i, Math.Min(1024, output.Length - i)))));
        return "OK";
    }

    public void Dispose()
    {
        _listener.Stop();
        _conn?.Dispose();
    }
}
