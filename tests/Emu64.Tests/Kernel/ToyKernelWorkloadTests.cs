using Emu64.Tests.Support;

namespace Emu64.Tests.Kernel;

/// <summary>The toy kernel's programs run in Emu64 as they do under QEMU, preempted by the PIT, deterministically.</summary>
[Trait("Category", "ToyKernel")]
public class ToyKernelWorkloadTests
{
    private const string All = "init=hello,syscalls:10,touch:16:4,pingpong:50,mmap:20 nokaslr";

    [Theory]
    [InlineData("pti=on")]
    [InlineData("pti=on nopcid")]
    [InlineData("pti=on noinvpcid")]
    [InlineData("pti=off")]
    public void Every_workload_runs_to_completion_as_concurrent_processes_preempted_by_the_timer(string options)
    {
        // 10 M instructions per virtual second: a 100 Hz tick every 100,000 instructions, so the processes are preempted.
        var k = ToyKernel.Boot($"{All} {options}", ips: 10_000_000, record: false);
        Assert.True(k.Reason == StopReason.DebugExit && k.ExitValue == 0, $"{k.Reason} {k.Machine.StopMessage}\n{k.Console}");
        foreach (var line in new[]
        {
            "hello: Hello from user space, I am pid 1",
            "syscalls: 10 getpid calls done",
            "touch: 4 rounds over 16 pages done",
            "mmap: 20 map/touch/unmap cycles done",
            "pingpong: ping yielded 50 times",
            "pingpong: pong yielded 50 times",
        })
            Assert.Contains(line + "\n", k.Console);
        Assert.True(k.Machine.Events.Interrupts > 0, "the PIT never interrupted");
        Assert.Equal(6, k.Machine.KernelInfo.Processes.Count);
        Assert.All(k.Machine.KernelInfo.Processes.Values, p => Assert.True(p.Exited, $"pid {p.Pid} did not exit"));
        Assert.Contains(k.Machine.KernelInfo.Regions, r => r.Name == "touch");
    }

    [Fact]
    public void Two_runs_with_the_same_options_give_the_same_console_and_the_same_counters()
    {
        var a = ToyKernel.Boot(All, seed: 5, ips: 10_000_000, record: false);
        var b = ToyKernel.Boot(All, seed: 5, ips: 10_000_000, record: false);
        Assert.Equal(a.Console, b.Console);
        Assert.Equal(a.Machine.Cpu.Retired, b.Machine.Cpu.Retired);
        Assert.Equal(a.Machine.Events.Interrupts, b.Machine.Events.Interrupts);
        Assert.Equal(a.Machine.Events.Cr3Writes, b.Machine.Events.Cr3Writes);
        Assert.Equal(a.Machine.Cpu.Mmu.Snapshot().Named().ToList(), b.Machine.Cpu.Mmu.Snapshot().Named().ToList());
    }

    [Fact]
    public void Ptdump_prints_both_pgds_of_a_process_in_the_style_of_linux()
    {
        var k = ToyKernel.Boot("init=ptdump nokaslr", record: false);
        Assert.Equal(StopReason.DebugExit, k.Reason);
        Assert.Contains("---[ User Space ]---", k.Console);
        Assert.Contains("---[ Kernel Space ]---", k.Console);
        Assert.Contains("---[ CPU entry Area ]---", k.Console);
        // as in Linux, no run spans the non-canonical hole: the user half ends at 0x0000800000000000
        Assert.Contains("0x00007ffffffff000-0x0000800000000000           4K", k.Console);
        Assert.DoesNotMatch(@"\d{7,}[KMGT] ", k.Console);
        // the direct map: 1 GiB pages here (CPUID has them), 2 MiB pages where it does not
        Assert.Matches(@"0xffff888000000000-0xffff8880[0-9a-f]{8} +\d+[MG] +RW +PSE +NX (pud|pmd)", k.Console);
    }

    [Fact]
    public void Echo_reads_every_byte_of_piped_input_including_the_first()
    {
        // The input is on the line before the kernel sets up the UART; switching the FIFO on would clear the
        // byte already in the receiver (it printed "echo: i there").
        var k = ToyKernel.Boot("init=echo nokaslr", record: false, input: "hi there\nsecond line\n");
        Assert.True(k.Reason == StopReason.DebugExit && k.ExitValue == 0, $"{k.Reason} {k.Machine.StopMessage}\n{k.Console}");
        Assert.Contains("echo: hi there\n", k.Console);
    }

    [Theory]
    [InlineData("init=helo", "init: unknown program 'helo' (programs: hello, syscalls, touch, pingpong, mmap, probe, ptdump, echo, pagecache)")]
    [InlineData("init=syscalls:x", "init: bad number 'x' in 'syscalls:x' (a decimal number, or hexadecimal after 0x)")]
    [InlineData("init=touch:10k", "init: bad number '10k' in 'touch:10k' (a decimal number, or hexadecimal after 0x)")]
    [InlineData("init=syscalls:0x", "init: bad number '0x' in 'syscalls:0x' (a decimal number, or hexadecimal after 0x)")]
    [InlineData("init=hello,touch::4", "init: bad number '' in 'touch::4' (a decimal number, or hexadecimal after 0x)")]
    [InlineData("init=touch:1:2:3:4", "init: 'touch:1:2:3:4' has more than 3 arguments")]
    public void A_mistake_in_init_is_one_console_line_and_a_failed_boot_before_any_program_runs(string append, string line)
    {
        var k = ToyKernel.Boot(append + " nokaslr", record: false);
        Assert.True(k.Reason == StopReason.DebugExit && k.ExitValue == 1, $"{k.Reason} exit {k.ExitValue}\n{k.Console}");
        Assert.EndsWith("\n" + line + "\n", k.Console);
        Assert.DoesNotContain("exec: pid", k.Console);
    }

    [Theory]
    [InlineData("init=syscalls:0x10", "syscalls: 16 getpid calls done")]
    [InlineData("init=syscalls:12", "syscalls: 12 getpid calls done")]
    [InlineData("init=touch:0X3:2", "touch: 2 rounds over 3 pages done")]
    public void Init_arguments_are_decimal_or_hexadecimal_after_0x(string append, string line)
    {
        var k = ToyKernel.Boot(append + " nokaslr", record: false);
        Assert.True(k.Reason == StopReason.DebugExit && k.ExitValue == 0, $"{k.Reason} {k.Machine.StopMessage}\n{k.Console}");
        Assert.Contains(line + "\n", k.Console);
    }
}
