using System.Net.Sockets;
using System.Text;
using Emu64.Debugging;
using Emu64.Tests.Support;
using static Iced.Intel.AssemblerRegisters;
using Debugger = Emu64.Debugging.Debugger;

namespace Emu64.Tests.Debugging;

/// <summary>The stub at the packet level: framing, error replies, Ctrl-C, and a fuzzer.</summary>
public class GdbProtocolTests
{
    /// <summary>A raw protocol client whose reader drains everything the stub sends into a buffer.</summary>
    private sealed class Client : IDisposable
    {
        private readonly TcpClient _tcp = new();
        private readonly StringBuilder _rx = new();
        private readonly Thread _reader;
        public readonly Machine M;
        public readonly GdbStub Stub;
        private readonly Thread _server;

        public Client(Machine m, SymbolTable? symbols = null)
        {
            M = m;
            Stub = new GdbStub(new Debugger(m, symbols ?? SymbolTable.Empty), "127.0.0.1", 0);
            _server = new Thread(() => { try { Stub.Serve(); } catch (Exception e) { lock (_rx) _rx.Append("SERVER-EXCEPTION " + e); } }) { IsBackground = true };
            _server.Start();
            _tcp.Connect("127.0.0.1", Stub.Port);
            _tcp.ReceiveTimeout = 20_000;
            _reader = new Thread(() =>
            {
                var buf = new byte[65536];
                try { int n; while ((n = _tcp.GetStream().Read(buf)) > 0) lock (_rx) _rx.Append(Encoding.Latin1.GetString(buf, 0, n)); }
                catch (IOException) { } catch (ObjectDisposedException) { }
            }) { IsBackground = true };
            _reader.Start();
        }

        public void SendRaw(byte[] b) => _tcp.GetStream().Write(b);
        public void SendRaw(string s) => SendRaw(Encoding.Latin1.GetBytes(s));

        public static string Frame(string payload)
        {
            int sum = 0;
            foreach (char c in payload) sum = (sum + c) & 0xFF;
            return $"${payload}#{sum:x2}";
        }

        public void Clear() { lock (_rx) _rx.Clear(); }
        public string Received { get { lock (_rx) return _rx.ToString(); } }

        /// <summary>Sends a packet and returns the payload of the next reply packet (bounded wait).</summary>
        public string Ask(string payload, int timeoutMs = 10_000)
        {
            Clear();
            SendRaw(Frame(payload));
            return WaitPacket(timeoutMs);
        }

        /// <summary>
        /// The payload of the next packet, which is taken out of what was received: a reply that arrives late (the OK
        /// after a monitor command's output, on a loaded machine) is then read by the next wait, not by the next Ask.
        /// </summary>
        public string WaitPacket(int timeoutMs = 10_000)
        {
            var until = DateTime.UtcNow.AddMilliseconds(timeoutMs);
            while (DateTime.UtcNow < until)
            {
                lock (_rx)
                {
                    string r = _rx.ToString();
                    int s = r.IndexOf('$');
                    int h = s >= 0 ? r.IndexOf('#', s) : -1;
                    if (h >= 0 && r.Length >= h + 3)
                    {
                        _rx.Remove(0, h + 3);
                        return r[(s + 1)..h];
                    }
                }
                Thread.Sleep(2);
            }
            throw new TimeoutException($"no reply; received so far: {Received}");
        }

        public bool ServerFinished(int ms) => _server.Join(ms);

        public void Dispose() { _tcp.Dispose(); Stub.Dispose(); }
    }

    private static Machine LoopingMachine()
    {
        var image = TestKernel.Build(a =>
        {
            var top = a.CreateLabel();
            a.Label(ref top);
            a.inc(rax);
            a.jmp(top);
        });
        var m = new Machine(new MachineOptions { RamBytes = 16UL << 20, Output = new MemoryStream() });
        m.LoadKernel(image, "loop", Array.Empty<Emu64.Loader.BootModule>());
        return m;
    }

    [Fact]
    public void Stub_advertises_features_and_serves_the_x86_64_target_description()
    {
        using var c = new Client(SyscallKernel.NewMachine());
        Assert.Contains("qXfer:features:read+", c.Ask("qSupported:multiprocess+;swbreak+;hwbreak+"));
        string xml = c.Ask("qXfer:features:read:target.xml:0,3fff");
        Assert.StartsWith("l<?xml", xml);
        Assert.Contains("<architecture>i386:x86-64</architecture>", xml);
        Assert.Contains("name=\"fs_base\"", xml);
        Assert.Contains("name=\"cr3\" bitsize=\"64\"", xml);
        Assert.Contains("name=\"efer\"", xml);
        Assert.Equal("E00", c.Ask("qXfer:features:read:other.xml:0,100"));
        Assert.Equal("", c.Ask("vMustReplyEmpty"));
        // 16 GPRs + rip 8 bytes, eflags and 6 selectors 4, 8 st 10, 8 control 4, 16 xmm 16, mxcsr 4, 9 more 8-byte registers
        Assert.Equal(2 * (17 * 8 + 7 * 4 + 8 * 10 + 8 * 4 + 16 * 16 + 4 + 9 * 8), c.Ask("g").Length);
        Assert.Equal(GdbConnection.LeHex(0x100020, 8), c.Ask("p10"));   // rip at the multiboot entry
    }

    [Fact]
    public void QOffsets_gives_the_kaslr_offset_for_text_data_and_bss_once_it_is_known_and_nothing_before()
    {
        var syms = SyscallKernel.Symbols;            // a fresh table
        using var c = new Client(SyscallKernel.NewMachine(), syms);
        Assert.Equal("", c.Ask("qOffsets"));        // LSTAR not set, nothing announced: gdb keeps its addresses
        Assert.Contains("KASLR offset not known yet", Encoding.UTF8.GetString(Convert.FromHexString(MonitorOutput(c, "kaslr"))));
        syms.LearnSlide(0x4800000);
        Assert.Equal("Text=4800000;Data=4800000;Bss=4800000", c.Ask("qOffsets"));
        Assert.Contains("symbol-file -o 0x4800000 KERNEL", Encoding.UTF8.GetString(Convert.FromHexString(MonitorOutput(c, "kaslr"))));
    }

    /// <summary>The hex of the first 'O' packet a monitor command sends.</summary>
    private static string MonitorOutput(Client c, string command)
    {
        string first = c.Ask("qRcmd," + Convert.ToHexString(Encoding.UTF8.GetBytes(command)).ToLowerInvariant());
        Assert.StartsWith("O", first);
        c.WaitPacket();
        return first[1..];
    }

    [Fact]
    public void Malformed_packets_get_error_replies_and_bad_checksums_a_nak()
    {
        using var c = new Client(SyscallKernel.NewMachine());
        Assert.Equal("E01", c.Ask("mzz,4"));
        Assert.Equal("E01", c.Ask("m100000"));
        Assert.Equal("E01", c.Ask("m0,ffffffffffffffff"));
        Assert.Equal("E01", c.Ask("P10=zz"));
        Assert.Equal("E01", c.Ask("p999"));
        Assert.Equal("E01", c.Ask("Z0,notanaddress,1"));
        Assert.Equal("E01", c.Ask("M100000,4:0011"));
        Assert.Equal("E01", c.Ask("qRcmd,zz"));
        Assert.Equal("", c.Ask("Zq,100000,1"));
        Assert.Equal("E01", c.Ask("vCont;x"));
        c.Clear();
        c.SendRaw("$?#00");
        Thread.Sleep(100);
        Assert.Equal("-", c.Received);
        Assert.StartsWith("T", c.Ask("?"));
    }

    [Fact]
    public void Ctrl_c_interrupts_a_running_guest_and_memory_writes_do_not_touch_accessed_bits()
    {
        using var c = new Client(LoopingMachine());
        c.Clear();
        c.SendRaw(Client.Frame("c"));
        Thread.Sleep(300);
        Assert.DoesNotContain("$", c.Received);        // still running
        c.SendRaw(new byte[] { 0x03 });
        Assert.Equal("T02thread:01;", c.WaitPacket());
        Assert.True(c.M.Cpu.Retired > 1000);
        ulong pde = c.M.Memory.Read(TestKernel.Pd + 8, 8);   // covers 0x200000..0x3fffff
        Assert.Equal("OK", c.Ask("M280000,4:deadbeef"));
        Assert.Equal("deadbeef", c.Ask("m280000,4"));
        Assert.Equal(pde, c.M.Memory.Read(TestKernel.Pd + 8, 8));
        Assert.Equal("E14", c.Ask("m7fff00000000,8"));
    }

    [Fact]
    public void Hardware_breakpoints_and_read_watchpoints_report_their_kind_in_the_stop_reply()
    {
        using var c = new Client(SyscallKernel.NewMachine());
        Assert.Equal("OK", c.Ask($"Z1,{SyscallKernel.EntryAddr:x},1"));
        Assert.Equal("T05thread:01;hwbreak:;", c.Ask("vCont;c"));
        Assert.Equal(GdbConnection.LeHex(SyscallKernel.EntryAddr, 8), c.Ask("p10"));
        Assert.Equal(GdbConnection.LeHex(SyscallKernel.UserCr3, 8), c.Ask("p3e"));   // cr3, register 62
        Assert.Equal("OK", c.Ask($"z1,{SyscallKernel.EntryAddr:x},1"));
        Assert.Equal("OK", c.Ask($"Z3,{SyscallKernel.Scratch:x},8"));
        // The entry path writes the scratch slot; the exit path reads it back (mov rsp,[scratch]).
        Assert.Equal($"T05thread:01;rwatch:{SyscallKernel.Scratch:x};", c.Ask("c"));
        Assert.Equal(GdbConnection.LeHex(SyscallKernel.UserStack, 8), c.Ask("p7"));   // rsp restored from the slot
        Assert.Equal("OK", c.Ask($"z3,{SyscallKernel.Scratch:x},8"));
        Assert.Equal("W01", c.Ask("c"));                                               // runs to isa-debug-exit
    }

    [Fact]
    public void Fuzzed_and_truncated_packets_never_crash_the_stub_which_still_answers_a_status_query()
    {
        using var c = new Client(LoopingMachine());
        var rng = new Random(7);
        string[] seeds = ["m", "M", "X", "p", "P", "g", "G", "Z0,", "z1,", "Z2,", "Z4,", "qXfer:features:read:target.xml:", "qRcmd,", "H", "T", "vCont;", "q", "Q", "?", "s"];
        for (int i = 0; i < 1500; i++)
        {
            string head = seeds[rng.Next(seeds.Length)];
            var tail = new StringBuilder();
            int n = rng.Next(0, 40);
            const string alphabet = "0123456789abcdefxyz,:;=#$}*-+ \x03\x7f";
            for (int k = 0; k < n; k++) tail.Append(alphabet[rng.Next(alphabet.Length)]);
            string payload = head + tail;
            if (payload.StartsWith("vCont;c") || payload.StartsWith("vCont;C")) continue;   // would run the endless loop
            switch (rng.Next(4))
            {
                case 0: c.SendRaw(Client.Frame(payload)); break;                           // framed garbage
                case 1: c.SendRaw("$" + payload); break;                                   // truncated: no checksum
                case 2: c.SendRaw(Client.Frame(payload)[..^1] + "z"); break;              // corrupt checksum
                default:
                    var junk = new byte[rng.Next(1, 64)];
                    rng.NextBytes(junk);
                    c.SendRaw(junk.Select(b => b == 0x03 ? (byte)0x04 : b).ToArray()); // raw bytes
                    break;
            }
        }
        Thread.Sleep(200);
        string r = c.Ask("?");
        Assert.Matches("^[TSW][0-9a-f]{2}", r);
        Assert.DoesNotContain("SERVER-EXCEPTION", c.Received);
        Assert.False(c.ServerFinished(0));
        Assert.Equal(GdbConnection.LeHex(c.M.Cpu.Rip, 8), c.Ask("p10"));
    }
}
