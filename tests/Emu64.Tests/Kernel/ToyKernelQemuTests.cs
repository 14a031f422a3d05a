using Emu64.Tests.Support;

namespace Emu64.Tests.Kernel;

/// <summary>
/// The bundled image also boots in qemu-system-x86_64 -kernel. QEMU's TCG has no PCID, so there the
/// kernel logs `pcid: off` and falls back; the programs print the same.
/// </summary>
[Trait("Category", "Qemu")]
public class ToyKernelQemuTests
{
    [QemuTheory]
    [InlineData("init=hello nokaslr")]
    [InlineData("init=syscalls:1000 nokaslr")]
    [InlineData("init=syscalls:1000 nokaslr pti=off")]
    public void The_bundled_kernel_runs_the_same_programs_to_the_same_output_under_qemu(string append)
    {
        string path = ToyKernel.ImagePath;
        var q = Qemu.RunFile(path, append, timeoutMs: 60_000);
        string qemu = System.Text.Encoding.Latin1.GetString(q.Stdout);
        var e = ToyKernel.Boot(append, record: false, kernelName: path);

        Assert.Equal(1, q.ExitCode);                                  // the kernel wrote 0 to isa-debug-exit
        Assert.True(e.Reason == StopReason.DebugExit && e.ExitValue == 0, e.Machine.StopMessage);
        Assert.Contains("\npcid: off\n", qemu);
        Assert.Contains("\npcid: on (invpcid)\n", e.Console);
        Assert.Equal(FromExec(qemu), FromExec(e.Console));
        Assert.Equal(Line(qemu, "mm: PAGE_OFFSET="), Line(e.Console, "mm: PAGE_OFFSET="));
        Assert.Equal(Line(qemu, "mm: kernel text at"), Line(e.Console, "mm: kernel text at"));
        Assert.Equal(Line(qemu, "pti:"), Line(e.Console, "pti:"));
    }

    /// <summary>
    /// Everything from the first process onward (the boot lines before it name CPU features). Where a
    /// PGD landed in physical memory depends on how many page-table pages the direct map took (1 GiB
    /// pages here, 2 MiB pages under QEMU), so that address is masked.
    /// </summary>
    private static string FromExec(string console)
    {
        int at = console.IndexOf("\nexec:", StringComparison.Ordinal);
        Assert.True(at >= 0, $"no exec line in:\n{console}");
        return System.Text.RegularExpressions.Regex.Replace(console[(at + 1)..], @"pgd at phys 0x[0-9a-f]+", "pgd at phys ...");
    }

    private static string Line(string console, string prefix)
        => console.Split('\n').First(l => l.StartsWith(prefix, StringComparison.Ordinal));
}
