using System.Diagnostics;

namespace Emu64.Tests.Support;

/// <summary>
/// Runs a kernel image in qemu-system-x86_64 the way people test hobby kernels:
/// <c>-kernel K -serial stdio -display none -device isa-debug-exit,iobase=0xf4,iosize=4 -no-reboot</c>.
/// </summary>
public static class Qemu
{
    public const string Program = "qemu-system-x86_64";

    private static readonly Lazy<string?> Found = new(() =>
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var p = Path.Combine(dir, Program);
            if (File.Exists(p)) return p;
        }
        return null;
    });

    /// <summary>Full path of qemu-system-x86_64, or null when it is not installed.</summary>
    public static string? Path_ => Found.Value;
    public static bool Available => Found.Value != null;

    public sealed record Outcome(byte[] Stdout, int ExitCode, string Stderr);

    /// <summary>Runs the kernel file at <paramref name="kernelPath"/>; kills QEMU after <paramref name="timeoutMs"/>.</summary>
    public static Outcome RunFile(string kernelPath, string append = "", int memMiB = 128, int timeoutMs = 20_000)
    {
        var psi = new ProcessStartInfo(Found.Value ?? throw new InvalidOperationException("QEMU is not installed"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "-kernel", kernelPath, "-serial", "stdio", "-display", "none", "-monitor", "none",
                                   "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-no-reboot", "-m", $"{memMiB}M" })
            psi.ArgumentList.Add(a);
        if (append.Length > 0) { psi.ArgumentList.Add("-append"); psi.ArgumentList.Add(append); }
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = new MemoryStream();
        var copy = p.StandardOutput.BaseStream.CopyToAsync(stdout);
        var err = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutMs))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            throw new TimeoutException($"QEMU did not exit within {timeoutMs} ms; output so far: {System.Text.Encoding.Latin1.GetString(stdout.ToArray())}");
        }
        copy.Wait();
        return new Outcome(stdout.ToArray(), p.ExitCode, err.Result);
    }

    /// <summary>Writes the image to a temporary file, runs it in QEMU, deletes the file.</summary>
    public static Outcome RunImage(byte[] image, string append = "", int memMiB = 128)
    {
        var path = TempKernelPath();
        File.WriteAllBytes(path, image);
        try { return RunFile(path, append, memMiB); }
        finally { File.Delete(path); }
    }

    public static string TempKernelPath() => System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"emu64-k-{Guid.NewGuid():N}.bin");
}

/// <summary>A fact that needs qemu-system-x86_64: skipped, visibly, when it is not installed.</summary>
public sealed class QemuFactAttribute : FactAttribute
{
    public QemuFactAttribute()
    {
        if (!Qemu.Available) Skip = $"{Qemu.Program} is not installed";
    }
}

/// <summary>A theory that needs qemu-system-x86_64: skipped, visibly, when it is not installed.</summary>
public sealed class QemuTheoryAttribute : TheoryAttribute
{
    public QemuTheoryAttribute()
    {
        if (!Qemu.Available) Skip = $"{Qemu.Program} is not installed";
    }
}
