using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using Emu64.Cpu;

namespace Emu64.Tests;

public class SmokeTests
{
    [Fact]
    public void A_multiboot_kernel_reaches_long_mode_prints_and_exits_through_debug_exit()
    {
        var image = TestKernel.Build(a =>
        {
            TestKernel.Print(a, "hello from long mode\n");
            a.mov(rax, 0x123456789abcdef0);
            TestKernel.PrintHex(a);
            TestKernel.Print(a, "\n");
            TestKernel.Exit(a, 0x21);
        });
        var r = Run.Image(image);
        Assert.True(r.Reason == StopReason.DebugExit, Emu64.Cli.Cli.Describe(r.Machine));
        Assert.Equal("hello from long mode\n123456789abcdef0\n", r.Console);
        Assert.Equal((0x21 << 1) | 1, r.ExitCode);
        Assert.Equal(CpuMode.Long64, r.Machine.Cpu.Mode);
    }
}
