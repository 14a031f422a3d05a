using Emu64.Mmu;
using Emu64.Tests.Support;

namespace Emu64.Tests.Measure;

/// <summary>The toy kernel's workload parameters that <c>emu64 measure</c> sweeps (firmware/uprogs.c, docs/KERNEL.md).</summary>
[Trait("Category", "Measure")]
public class WorkloadArgumentTests
{
    [Fact]
    public void Pingpong_starts_the_number_of_processes_asked_for()
    {
        var k = ToyKernel.Boot("init=pingpong:5:3 nokaslr", record: false);
        Assert.Equal(StopReason.DebugExit, k.Reason);
        Assert.Equal(3, k.Machine.KernelInfo.Processes.Count);
        Assert.Contains("pingpong: ping yielded 5 times\n", k.Console);
        Assert.Equal(2, k.Console.Split("pingpong: pong yielded 5 times\n").Length - 1);
    }

    [Fact]
    public void Mmap_maps_the_pages_asked_for_and_above_33_flushes_the_whole_pcid_instead_of_page_by_page()
    {
        var small = ToyKernel.Boot("init=mmap:2:8 nokaslr pti=on noinvpcid", record: false);
        var large = ToyKernel.Boot("init=mmap:2:40 nokaslr pti=on noinvpcid", record: false);
        Assert.Contains("mmap: 2 map/touch/unmap cycles done\n", small.Console);
        Assert.Contains("mmap: 2 map/touch/unmap cycles done\n", large.Console);
        var s = small.Machine.KernelInfo.Regions.Single(r => r.Name == "mmap").Delta;
        var l = large.Machine.KernelInfo.Regions.Single(r => r.Name == "mmap").Delta;
        Assert.Equal(2UL * 8, s.Tlb.Flushes(FlushCause.Invlpg));
        Assert.Equal(0UL, l.Tlb.Flushes(FlushCause.Invlpg));
        Assert.True(l.Tlb.Misses(TlbLevel.Dtlb, true, Ctr.KindWrite) >= 2 * 40);   // every page written once per cycle
    }

    [Fact]
    public void User_work_between_system_calls_adds_user_instructions_only()
    {
        var a = ToyKernel.Boot("init=syscalls:10:0 nokaslr", record: false).Machine.KernelInfo.Regions.Single().Delta;
        var b = ToyKernel.Boot("init=syscalls:10:50 nokaslr", record: false).Machine.KernelInfo.Regions.Single().Delta;
        Assert.Equal(a.Syscalls, b.Syscalls);
        Assert.Equal(a.Cr3Writes, b.Cr3Writes);
        Assert.True(b.Instructions >= a.Instructions + 10 * 50 * 2, $"{a.Instructions} -> {b.Instructions}");
        var t = ToyKernel.Boot("init=touch:4:3:50 nokaslr", record: false);
        Assert.Contains("touch: 3 rounds over 4 pages done\n", t.Console);
    }
}
