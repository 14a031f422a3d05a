using Emu64.Loader;

namespace Emu64.Tests.Support;

/// <summary>Runs an image in a fresh machine and captures the console.</summary>
public static class Run
{
    public sealed record Outcome(Machine Machine, string Console, StopReason Reason, int ExitCode);

    public static Outcome Image(byte[] image, string append = "", ulong maxInstructions = 50_000_000, ulong ramMiB = 128, Action<Machine>? setup = null, string path = "kernel", byte[]? initrd = null)
    {
        var output = new MemoryStream();
        var m = new Machine(new MachineOptions { RamBytes = ramMiB << 20, Append = append, MaxInstructions = maxInstructions, Output = output });
        m.LoadKernel(image, path, initrd is null ? Array.Empty<BootModule>() : [new BootModule("initrd", initrd)]);
        setup?.Invoke(m);
        var reason = m.Run();
        return new Outcome(m, System.Text.Encoding.Latin1.GetString(output.ToArray()), reason, m.ExitCode);
    }
}
