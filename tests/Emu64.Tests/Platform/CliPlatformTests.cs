using System.Diagnostics;

namespace Emu64.Tests.Platform;

/// <summary>The emu64 program with platform options: stdin to COM1, --ips, and reproducible --stats.</summary>
[Trait("Category", "Platform")]
public class CliPlatformTests
{
    private static (int Code, string Out, string Err) Emu64(string args, string input = "")
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "emu64.dll");
        var psi = new ProcessStartInfo("dotnet", $"\"{dll}\" {args}")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        using var p = Process.Start(psi)!;
        var outTask = p.StandardOutput.ReadToEndAsync();
        var errTask = p.StandardError.ReadToEndAsync();
        p.StandardInput.Write(input);
        p.StandardInput.Close();
        if (!p.WaitForExit(60_000)) { p.Kill(true); throw new TimeoutException("emu64 did not finish"); }
        return (p.ExitCode, outTask.Result, errTask.Result);
    }

    private static string WriteKernel(byte[] image)
    {
        var file = Path.Combine(Path.GetTempPath(), $"emu64-cli-{Guid.NewGuid():N}.bin");
        File.WriteAllBytes(file, image);
        return file;
    }

    [Fact]
    public void Piped_stdin_reaches_the_guest_through_COM1_and_stdout_carries_exactly_the_guest_output()
    {
        var k = WriteKernel(SerialTests.EchoKernel());
        try
        {
            var (code, output, _) = Emu64($"run {k}", "hello, qemu\n");
            Assert.Equal("type a line:\nHELLO, QEMU\nfirst iir=04\nbytes=0c\n", output);
            Assert.Equal(1, code);
        }
        finally { File.Delete(k); }
    }

    [Fact]
    public void Two_runs_with_the_same_options_print_identical_stats_counters()
    {
        var k = WriteKernel(PitPicTests.TickKernel(30, halt: true));
        try
        {
            static string Counters(string err) => string.Join('\n', err.Split('\n').Where(l => !l.StartsWith("seconds:") && !l.StartsWith("mips:")));
            var a = Emu64($"run {k} --stats --ips 10000000");
            var b = Emu64($"run {k} --stats --ips 10000000");
            Assert.Equal(a.Out, b.Out);
            Assert.Contains("interrupts: 30", a.Err);
            Assert.Equal(Counters(a.Err), Counters(b.Err));
        }
        finally { File.Delete(k); }
    }

    [Fact]
    public void The_ips_option_sets_how_many_instructions_a_virtual_second_holds()
    {
        var k = WriteKernel(PitPicTests.TickKernel(20, halt: false));
        try
        {
            static ulong Instructions(string err) => ulong.Parse(err.Split('\n').First(l => l.StartsWith("instructions:"))[13..].Trim());
            ulong slow = Instructions(Emu64($"run {k} --stats --ips 1000000").Err);
            ulong fast = Instructions(Emu64($"run {k} --stats --ips 4000000").Err);
            // 20 ticks of busy waiting at 100 Hz is 0.2 virtual seconds: four times the instructions at 4× the rate.
            Assert.InRange((double)fast / slow, 3.9, 4.1);
            Assert.Equal(2, Emu64($"run {k} --ips 0").Code);
        }
        finally { File.Delete(k); }
    }
}
