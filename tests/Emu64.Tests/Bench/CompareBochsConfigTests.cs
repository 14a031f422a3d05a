using System.Diagnostics;

namespace Emu64.Tests.Bench;

/// <summary>
/// The Bochs configuration bench/compare.sh runs with: its sound layer is the dummy driver. With Bochs's
/// default (ALSA) the sound plugin is opened even with the speaker off, and on a machine whose ALSA has
/// no default device Bochs 2.7 died at once ("*** buffer overflow detected ***"; the Bochs rows said failed).
/// </summary>
[Trait("Category", "Bench")]
public class CompareBochsConfigTests
{
    private static string Script => Path.Combine(Emu64.Tests.Robustness.ErrorTableTests.ErrorsMdPath(), "..", "..", "bench", "compare.sh");

    private static string BochsRc(string iso, string log)
    {
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.GetFullPath(Script), "--print-bochsrc", iso, log }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string o = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(30_000), "compare.sh --print-bochsrc hung");
        Assert.True(p.ExitCode == 0, err.Result);
        return o;
    }

    [Fact]
    public void Compare_sh_gives_bochs_the_dummy_sound_driver_and_no_speaker()
    {
        var lines = BochsRc("/tmp/x.iso", "/tmp/x.log").Split('\n');
        Assert.Contains("sound: driver=dummy", lines);
        Assert.Contains("speaker: enabled=0", lines);
        Assert.Contains("ata0-master: type=cdrom, path=/tmp/x.iso, status=inserted", lines);
        Assert.Contains("log: /tmp/x.log", lines);
    }

    [BochsFact]
    public void Bochs_started_with_the_compare_sh_configuration_loads_the_dummy_sound_driver_not_alsa()
    {
        using var dir = new Support.CliRun.TempDir();
        string log = dir.Name("bochs.log"), rc = dir.File("bochsrc", BochsRc(dir.Name("none.iso"), log));
        var psi = new ProcessStartInfo("bochs") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-q", "-f", rc }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.StandardInput.Write("c\nquit\n");      // Debian's Bochs stops in its debugger before the first instruction
        p.StandardInput.Close();
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000)) { p.Kill(true); Assert.Fail("bochs did not stop within 120 s"); }
        string text = File.ReadAllText(log);
        Assert.DoesNotContain("buffer overflow", o.Result + e.Result);
        Assert.Contains("loaded plugin libbx_sounddummy.so", text);
        Assert.DoesNotContain("libbx_soundalsa", text);
        Assert.Contains("No bootable device", text);   // it ran on to the BIOS (there is no ISO to boot)
    }
}

/// <summary>A fact that needs Bochs (bench/compare.sh installs it): skipped, visibly, when it is not installed.</summary>
public sealed class BochsFactAttribute : FactAttribute
{
    public BochsFactAttribute()
    {
        bool have = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator).Any(d => File.Exists(Path.Combine(d, "bochs")))
                    && File.Exists("/usr/share/bochs/BIOS-bochs-latest") && File.Exists("/usr/share/vgabios/vgabios.bin");
        if (!have) Skip = "bochs (with bochsbios and vgabios) is not installed";
    }
}
