using Emu64.Tests.Support;

namespace Emu64.Tests.Robustness;

/// <summary>
/// What a new user meets first (issue 20): help for every command, the status of a clean boot, a trace
/// limit reached during a boot, and a debugger script that is missing.
/// </summary>
public class FirstRunTests
{
    [Theory]
    [InlineData("run", "--help", "usage: emu64 run KERNEL [options]")]
    [InlineData("run", "-h", "usage: emu64 run KERNEL [options]")]
    [InlineData("boot", "--help", "usage: emu64 boot [options]")]
    [InlineData("boot", "-h", "usage: emu64 boot [options]")]
    [InlineData("debug", "--help", "usage: emu64 debug [KERNEL] [options] [--script FILE]")]
    [InlineData("debug", "-h", "usage: emu64 debug [KERNEL] [options] [--script FILE]")]
    [InlineData("measure", "--help", "usage: emu64 measure [options]")]
    [InlineData("measure", "-h", "usage: emu64 measure [options]")]
    [InlineData("isa-coverage", "--help", "usage: emu64 isa-coverage [--all]")]
    [InlineData("isa-coverage", "-h", "usage: emu64 isa-coverage [--all]")]
    public void Every_command_answers_help_with_its_usage_on_stdout_and_status_0(string command, string help, string firstLine)
    {
        var r = CliRun.Execute(command, help);
        Assert.True(r.Status == 0, $"status {r.Status}: {r.Stderr}");
        Assert.Equal("", r.Stderr);
        Assert.StartsWith(firstLine + "\n", r.Out);
        Assert.Contains(" -h, --help ", r.Out);
        Assert.DoesNotContain("Emu64 toy kernel", r.Out);       // nothing ran
        Assert.DoesNotContain("not implemented", r.Out);        // the coverage report did not run either
    }

    /// <summary>
    /// The bundled kernel's multiboot command line starts with its name, not with where the checkout is: a kernel that
    /// parses and prints its command line would otherwise run a different number of instructions in every directory
    /// (CI's checkout path once moved the README's walkthrough by 336 instructions).
    /// </summary>
    [Theory]
    [InlineData("boot")]
    [InlineData("debug")]
    public void The_bundled_kernel_sees_the_same_command_line_in_any_checkout(string command)
    {
        using var dir = new CliRun.TempDir();
        var r = command == "debug"
            ? CliRun.Execute("debug", "--append", "nokaslr init=hello", "--script", dir.File("go.txt", "continue\n"))
            : CliRun.Execute("boot", "--append", "nokaslr init=hello");
        Assert.Contains("\nCommand line: toykernel.elf nokaslr init=hello\n", r.Out);
    }

    [Fact]
    public void Help_after_other_options_still_answers_and_runs_nothing()
    {
        var r = CliRun.Execute("boot", "--append", "init=hello", "-m", "64", "--trace", "boundary", "--help");
        Assert.Equal(0, r.Status);
        Assert.StartsWith("usage: emu64 boot [options]\n", r.Out);
        Assert.Equal("", r.Stderr);
    }

    [Fact]
    public void Help_as_the_value_of_append_is_the_kernel_command_line_not_a_request_for_help()
    {
        var r = CliRun.Execute("boot", "--append", "--help");
        Assert.Equal(0, r.Status);
        Assert.Contains("Command line: ", r.Out);
        Assert.Contains(" --help\n", r.Out);
    }

    [Fact]
    public void A_clean_boot_of_the_bundled_kernel_exits_0_and_run_of_the_same_kernel_keeps_qemus_1()
    {
        var boot = CliRun.Execute("boot", "--append", "init=syscalls:3");
        Assert.True(boot.Status == 0, $"boot: status {boot.Status}\n{boot.Stderr}");
        Assert.Contains("syscalls: 3 getpid calls done", boot.Out);
        var run = CliRun.Execute("run", Emu64.Cli.Cli.BundledKernelPath(), "--append", "init=syscalls:3");
        Assert.Equal(1, run.Status);                 // (0 << 1) | 1, as qemu-system-x86_64 -device isa-debug-exit
        Assert.Contains("syscalls: 3 getpid calls done", run.Out);
    }

    [Fact]
    public void A_failed_boot_of_the_bundled_kernel_stays_non_zero()
    {
        var r = CliRun.Execute("boot", "--append", "init=syscalls:x");
        Assert.Equal(3, r.Status);                   // the kernel wrote 1: (1 << 1) | 1
        Assert.Contains("init: bad number 'x' in 'syscalls:x'", r.Out);
    }

    [Fact]
    public void Debug_of_the_bundled_kernel_that_runs_to_its_end_exits_0()
    {
        using var dir = new CliRun.TempDir();
        string script = dir.File("run.txt", "continue\nquit\n");
        var r = CliRun.Execute("debug", "--append", "init=hello", "--script", script);
        Assert.True(r.Status == 0, $"status {r.Status}\n{r.Stderr}\n{r.Out}");
        Assert.Contains("hello: Hello from user space", r.Out);
    }

    [Fact]
    public void A_boot_whose_boundary_trace_reaches_its_limit_runs_to_the_end()
    {
        // The tracer stops itself from inside the event it is told about: this ended with exit 12,
        // "InvalidOperationException: Collection was modified".
        var r = CliRun.Execute("boot", "--append", "init=syscalls:3", "--trace", "boundary", "--trace-limit", "5");
        Assert.True(r.Status == 0, $"status {r.Status}\n{r.Stderr}");
        Assert.Contains("syscalls: 3 getpid calls done", r.Out);
        var lines = r.ErrLines;
        Assert.Equal(6, lines.Length);
        Assert.Equal("trace limit 5 reached; tracing stopped", lines[^1]);
        Assert.DoesNotContain("internal error", r.Stderr);
    }

    [Fact]
    public void Debug_with_a_missing_script_prints_the_error_line_alone_and_nothing_on_stdout()
    {
        using var dir = new CliRun.TempDir();
        var r = CliRun.Execute("debug", "--script", dir.Name("nosuch.txt"));
        Assert.Equal(2, r.Status);
        Assert.Equal("", r.Out);
        Assert.Single(r.ErrLines);
        Assert.StartsWith("emu64: cannot read script '", r.ErrLines[0]);
    }
}
