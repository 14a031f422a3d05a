using System.Collections.Concurrent;
using Emu64;

namespace Emu64.Cli;

/// <summary>
/// Standard input as the line into COM1.
///
/// Redirected input (a file or a pipe) is read to its end before the guest starts and queued on the
/// UART's line, which hands bytes to the receiver as it has room: the guest sees exactly the same
/// bytes at the same guest-visible moments on every run, so runs stay deterministic.
///
/// A terminal is interactive: a reader thread collects what is typed (a line at a time, as the
/// terminal delivers it) and a timed device moves it to the UART every millisecond of virtual time.
/// While the guest sleeps in HLT with nothing else due, that device waits briefly on the host for
/// input instead of racing through idle virtual time. Typed input is by nature not reproducible.
/// </summary>
public static class SerialInput
{
    public static void AttachStdin(Machine m)
    {
        if (Console.IsInputRedirected)
        {
            using var stdin = Console.OpenStandardInput();
            var all = new MemoryStream();
            stdin.CopyTo(all);
            if (all.Length > 0) m.Com1.Receive(all.ToArray());
            return;
        }
        m.AddTimedDevice(new TerminalPump(m));
        m.IdleWakeupLimit = int.MaxValue;     // a guest waiting for the keyboard may sleep as long as it likes
    }

    private sealed class TerminalPump : ITimedDevice
    {
        private readonly Machine _m;
        private readonly BlockingCollection<byte[]> _typed = new();
        private readonly ulong _interval;

        public TerminalPump(Machine m)
        {
            _m = m;
            _interval = Math.Max(1, m.Options.TicksPerSecond / 1000);
            NextEventAt = m.Now + _interval;
            var reader = new Thread(() =>
            {
                using var stdin = Console.OpenStandardInput();
                var buf = new byte[256];
                int n;
                while ((n = stdin.Read(buf)) > 0) _typed.Add(buf[..n]);
                _typed.CompleteAdding();
            }) { IsBackground = true, Name = "emu64 stdin" };
            reader.Start();
        }

        public ulong NextEventAt { get; private set; }

        public void OnTime(ulong now)
        {
            // Sleeping guest: wait up to 20 ms of host time for a keystroke rather than spin.
            int wait = _m.Cpu.Halted ? 20 : 0;
            while (_typed.TryTake(out var bytes, wait)) { _m.Com1.Receive(bytes); wait = 0; }
            NextEventAt = _typed.IsCompleted ? ulong.MaxValue : now + _interval;
        }
    }
}
