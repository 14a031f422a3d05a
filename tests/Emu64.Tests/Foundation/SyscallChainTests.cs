using Emu64.Cpu;
using Emu64.Tests.Support;
using Iced.Intel;

namespace Emu64.Tests.Foundation;

/// <summary>
/// The toy kernel's system-call loop under PTI with PCID (issue #19's <c>SyscallsPtiPcid</c> benchmark): SYSCALL, the two
/// CR3 writes of the entry trampoline and SYSRETQ end their blocks, and the run loop's chain goes on after each of them
/// (<see cref="Block.Resync"/>) instead of returning to the outer loop. Every counter must stay what separate trips
/// through the outer loop and the model's own lookups give.
/// </summary>
[Trait("Category", "Kernel")]
public class SyscallChainTests
{
    private const string Append = "init=syscalls:100000000 pti=on nokaslr";

    private static Machine Boot(int threshold, bool fastCache = true)
    {
        var m = new Machine(new MachineOptions { Append = Append, Output = Stream.Null, CompileThreshold = threshold });
        m.LoadKernel(File.ReadAllBytes(ToyKernel.ImagePath), "toykernel.elf", Array.Empty<Loader.BootModule>());
        m.Cpu.Mmu.FastCacheDisabled = !fastCache;
        Assert.Equal(StopReason.None, m.Run(3_000_000));   // booted, in the loop
        Assert.True(m.Events.Syscalls > 1000, $"the loop is running ({m.Events.Syscalls} system calls)");
        return m;
    }

    [Fact]
    public void A_block_ending_at_SYSRETQ_resyncs_and_links_to_the_user_code_it_returns_to()
    {
        var m = Boot(threshold: 0);
        var sysret = Assert.Single(m.Cache.Blocks, b => b.Insns[b.Count - 1].I.Mnemonic == Mnemonic.Sysretq);
        Assert.True(sysret.Resync);
        Assert.True(sysret.Chainable);
        Assert.NotNull(sysret.Next0);                                    // the chain went on to the block after it,
        Assert.True(sysret.Next0!.Insns[0].I.IP < 0x0000_8000_0000_0000UL);   // the user program's (lower half)
        var syscall = Assert.Single(m.Cache.Blocks, b => b.Insns[b.Count - 1].I.Mnemonic == Mnemonic.Syscall);
        Assert.True(syscall.Resync);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void The_system_call_loop_never_returns_to_the_outer_run_loop_once_warm(int threshold)
    {
        var m = Boot(threshold);
        m.Run(1_000_000);   // warm: every block of the loop decoded and linked (compiled at threshold 1)
        ulong calls = m.Events.Syscalls, starts = m.Chain.Starts, unchainable = m.Chain.ExitUnchainable;
        m.Run(2_000_000);
        Assert.True(m.Events.Syscalls - calls > 10_000, $"{m.Events.Syscalls - calls} system calls");
        // The outer loop starts a chain once per Run call and after anything the chain cannot go on from (an interrupt,
        // a block that cannot chain): here, a timer interrupt now and then, never once per system call.
        Assert.True(m.Chain.Starts - starts < 100, $"{m.Chain.Starts - starts} chains started for {m.Events.Syscalls - calls} system calls");
        Assert.True(m.Chain.ExitUnchainable - unchainable < 100);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void The_system_call_loop_counts_the_same_with_the_fast_cache_off_interpreted_and_compiled(int threshold)
    {
        // The fast cache off: every fetch and data access is the model's own lookup, nothing armed, no batched hits.
        var reference = Boot(threshold: 0, fastCache: false);
        var m = Boot(threshold);
        foreach (ulong n in new ulong[] { 1, 7, 104, 1000, 250_001 })
        {
            reference.Run(n);
            m.Run(n);
            BlockCompilerTests.AssertSame(BlockCompilerTests.Capture(reference, "", []), BlockCompilerTests.Capture(m, "", []));
            Assert.Equal(reference.Now, m.Now);
            Assert.Equal(reference.Events.Syscalls, m.Events.Syscalls);
            Assert.Equal(reference.Events.Cr3Writes, m.Events.Cr3Writes);
            Assert.Equal(reference.Events.Recent(), m.Events.Recent());
        }
        if (threshold == 1) Assert.True(m.Chain.CompiledRetired > 200_000, $"the loop ran compiled ({m.Chain.CompiledRetired} instructions)");
    }

    [Fact]
    public void Compiled_the_trampoline_runs_on_past_its_CR3_writes_in_the_same_region()
    {
        // Per system call the loop's code spans four pages' worth of regions: the user program, the trampoline up to the call into
        // C, the kernel's C code, and the trampoline's return path. Its two CR3 writes no longer end a region (Machine.ResyncFetch):
        // four region entries per system call, where there were six.
        var m = Boot(threshold: 1000);   // regions formed after the links were recorded (at 1 each block is its own region)
        m.Run(1_000_000);   // warm
        ulong calls = m.Events.Syscalls, entries = m.Chain.CompiledEntries;
        m.Run(2_000_000);
        double perCall = (double)(m.Chain.CompiledEntries - entries) / (m.Events.Syscalls - calls);
        Assert.True(perCall < 4.2, $"{perCall:F2} region entries per system call");
    }
}
