using System.Text.RegularExpressions;
using Emu64.Loader;

namespace Emu64.Tests.Support;

/// <summary>Boots the bundled toy kernel (firmware/toykernel.elf) and exposes what it printed and built.</summary>
public sealed class ToyKernel
{
    public static string ImagePath
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            {
                var p = Path.Combine(d.FullName, "firmware", "toykernel.elf");
                if (File.Exists(p)) return p;
            }
            throw new FileNotFoundException("firmware/toykernel.elf not found above " + AppContext.BaseDirectory);
        }
    }

    public required Machine Machine { get; init; }
    public required string Console { get; init; }
    public required List<BoundaryEvent> Events { get; init; }
    public StopReason Reason => Machine.StopReason;
    /// <summary>The guest's isa-debug-exit value (the kernel writes 0 when the last process exits).</summary>
    public int ExitValue => Machine.ExitCode >> 1;

    public int Levels => Console.Contains("paging=5-level") ? 5 : 4;

    public ulong PageOffset => Hex(@"mm: PAGE_OFFSET=0x([0-9a-f]{16}) paging=[45]-level");
    public ulong KernelText => Hex(@"mm: kernel text at 0x([0-9a-f]{16})");

    public ulong Hex(string pattern)
    {
        var mt = Regex.Match(Console, pattern, RegexOptions.Multiline);
        if (!mt.Success) throw new Xunit.Sdk.XunitException($"no line matching /{pattern}/ in:\n{Console}");
        return Convert.ToUInt64(mt.Groups[1].Value, 16);
    }

    /// <summary>Runtime address of a kernel symbol (KASLR moves the image; the kernel announces its _text).</summary>
    public ulong Symbol(string name)
    {
        var syms = Machine.Symbols;
        ulong elfText = syms.First(s => s.Name == "_text").Value;
        ulong runText = Machine.KernelInfo.TextBase ?? elfText;
        return syms.First(s => s.Name == name).Value - elfText + runText;
    }

    private sealed class Recorder(List<BoundaryEvent> list) : IBoundaryListener
    {
        public void OnEvent(in BoundaryEvent e) { if (list.Count < 2_000_000) list.Add(e); }
    }

    public static ToyKernel Boot(string append, ulong seed = 0, ulong maxInstructions = 200_000_000, bool record = true, string kernelName = "toykernel.elf", ulong ips = 0,
        int compileThreshold = -1, string? input = null, Emu64.Mmu.GuestClock clock = Emu64.Mmu.GuestClock.Instructions, ulong ramBytes = 0)
    {
        var output = new MemoryStream();
        var opts = new MachineOptions { Append = append, Seed = seed, MaxInstructions = maxInstructions, Output = output, Clock = clock };
        if (ramBytes != 0) opts.RamBytes = ramBytes;
        if (compileThreshold >= 0) opts.CompileThreshold = compileThreshold;
        if (ips != 0) opts.TicksPerSecond = ips;
        var m = new Machine(opts);
        var path = ImagePath;
        m.LoadKernel(File.ReadAllBytes(path), kernelName, Array.Empty<BootModule>());
        var events = new List<BoundaryEvent>();
        if (record) m.Events.Subscribe(new Recorder(events));
        // Piped standard input as emu64 gives it: all of it on COM1's line before the first instruction.
        if (input is not null) m.Com1.Receive(System.Text.Encoding.Latin1.GetBytes(input));
        m.Run();
        return new ToyKernel { Machine = m, Console = System.Text.Encoding.Latin1.GetString(output.ToArray()), Events = events };
    }
}
