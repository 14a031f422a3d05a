using Emu64.Tests.Sse;
using Xunit.Abstractions;

namespace Emu64.Tests.X87;

/// <summary>
/// The gcc acceptance of issue 17: a freestanding C program using long double (x87 arithmetic as gcc emits it, FSQRT,
/// the transcendentals, FPREM, conversions, and its own "%.*Lf" formatter) built with gcc -O2 prints the same in
/// Emu64 at CPL 3 as natively on the host. Skipped, visibly, without gcc. (A static glibc binary would need the
/// toy kernel to implement far more of Linux than write and exit; the formatter is written out in the program.)
/// </summary>
public class X87UserProgramTests(ITestOutputHelper output)
{
    private static readonly string ProgramDir = Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "X87", "programs");

    [Fact]
    public void A_gcc_O2_program_using_long_double_prints_the_same_in_Emu64_as_on_the_host()
    {
        string src = Path.GetFullPath(Path.Combine(ProgramDir, "longdouble.c"));
        Assert.True(File.Exists(src), $"missing {src}");
        string? gcc = UserProgramTests.FindOnPath("gcc");
        if (gcc == null || !NativeRunner.Supported)
        {
            output.WriteLine("SKIPPED: needs gcc on an x86-64 Linux host");
            return;
        }
        string dir = Directory.CreateTempSubdirectory("emu64-x87-").FullName;
        try
        {
            string exe = Path.Combine(dir, "longdouble");
            var (cc, ccOut) = UserProgramTests.Exec(gcc, $"-O2 -static -nostdlib -ffreestanding -fno-pic -no-pie -fno-math-errno -o {exe} {src}");
            Assert.True(cc == 0, "gcc failed:\n" + ccOut);
            var (nativeStatus, nativeOut) = UserProgramTests.Exec(exe, "");
            var r = UserProgramTests.RunAtCpl3(File.ReadAllBytes(exe));
            output.WriteLine(r.Console);
            Assert.True(r.Reason == Emu64.StopReason.DebugExit, Emu64.Cli.Cli.Describe(r.Machine) + "\nconsole so far:\n" + r.Console);
            Assert.Equal(nativeOut, r.Console);
            Assert.Equal((nativeStatus << 1) | 1, r.ExitCode);
            Assert.Contains("sqrtl(2) 1.414213562373095049", r.Console);
        }
        finally { Directory.Delete(dir, true); }
    }
}
