using Emu64.Tests.Support;

namespace Emu64.Tests.Foundation;

/// <summary>
/// Issue 2's first acceptance item: QEMU-style kernels print the same bytes and exit with the same status
/// in Emu64 as in qemu-system-x86_64 -kernel. Each kernel also has an Emu64-only test against the output
/// computed in C#, so the behaviour stays checked on a machine without QEMU.
/// </summary>
public class QemuComparisonTests
{
    public static TheoryData<string> Names() => new(QemuKernels.All().Select(k => k.Name));

    private static string Expected(QemuKernels.Kernel k, string path) => k.Expected.Replace("{PATH}", path);

    [Theory, MemberData(nameof(Names))]
    public void A_qemu_style_kernel_prints_the_computed_output_and_exit_status_in_Emu64(string name)
    {
        var k = QemuKernels.ByName(name);
        const string path = "/tmp/kernel.bin";
        var r = Run.Image(k.Image, k.Append, path: path);
        Assert.True(r.Reason == StopReason.DebugExit, Emu64.Cli.Cli.Describe(r.Machine) + "\n" + string.Join(",", r.Machine.Stats.Unimplemented.Keys) + "\n" + r.Console);
        Assert.Equal(Expected(k, path), r.Console);
        Assert.Equal(k.ExitStatus, r.ExitCode);
    }

    [QemuTheory, Trait("Category", "Qemu"), MemberData(nameof(Names))]
    public void A_qemu_style_kernel_prints_the_same_bytes_and_exit_status_as_qemu(string name)
    {
        var k = QemuKernels.ByName(name);
        var path = Qemu.TempKernelPath();
        File.WriteAllBytes(path, k.Image);
        try
        {
            var q = Qemu.RunFile(path, k.Append);
            var e = Run.Image(k.Image, k.Append, path: path);
            string qs = System.Text.Encoding.Latin1.GetString(q.Stdout);
            Assert.Equal(qs, e.Console);
            Assert.Equal(q.ExitCode, e.ExitCode);
            Assert.Equal(Expected(k, path), qs);   // and both printed what the kernel computes
        }
        finally { File.Delete(path); }
    }
}
