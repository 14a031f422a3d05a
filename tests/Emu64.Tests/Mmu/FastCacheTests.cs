using Emu64.Loader;
using Emu64.Mmu;
using Emu64.Tests.Support;

namespace Emu64.Tests.Mmu;

/// <summary>
/// The host-side fast cache in front of the TLB model (docs/MMU.md "The fast cache") changes nothing the guest or the
/// counters can see, and the model can be switched off (issue #3).
/// </summary>
[Trait("Category", "ToyKernel")]
public class FastCacheTests
{
    private const string Workload = "init=hello,syscalls:200,touch:16:4,pingpong:20,mmap:10 nokaslr";

    private static (Machine M, string Console) Boot(string append, TlbConfig? tlb = null, bool fastCache = true)
    {
        var output = new MemoryStream();
        var m = new Machine(new MachineOptions { Append = append, MaxInstructions = 200_000_000, Output = output, TicksPerSecond = 10_000_000, Tlb = tlb });
        m.Cpu.Mmu.FastCacheDisabled = !fastCache;
        m.LoadKernel(File.ReadAllBytes(ToyKernel.ImagePath), "toykernel.elf", Array.Empty<BootModule>());
        m.Run();
        return (m, System.Text.Encoding.Latin1.GetString(output.ToArray()));
    }

    [Theory]
    [InlineData("pti=on")]
    [InlineData("pti=on nopcid")]
    [InlineData("pti=off")]
    public void Every_TLB_counter_is_the_same_with_and_without_the_fast_cache(string options)
    {
        var fast = Boot($"{Workload} {options}");
        var model = Boot($"{Workload} {options}", fastCache: false);
        Assert.True(fast.M.StopReason == StopReason.DebugExit, fast.M.StopMessage + "\n" + fast.Console);
        Assert.Equal(model.Console, fast.Console);
        Assert.Equal(model.M.Cpu.Retired, fast.M.Cpu.Retired);
        var a = fast.M.Cpu.Mmu.Snapshot();
        var b = model.M.Cpu.Mmu.Snapshot();
        for (int i = 0; i < Ctr.Count; i++) Assert.True(a[i] == b[i], $"counter {i}: fast cache {a[i]}, model only {b[i]}");
        Assert.True(a.TotalLookups(TlbLevel.Dtlb) > 100_000, "the workload hardly touched memory");
        Assert.True(fast.M.Cpu.Mmu.FastFills > 0 && model.M.Cpu.Mmu.FastFills == 0);
        // and the replacement state: the same entries with the same LRU stamps
        foreach (var level in new[] { TlbLevel.Itlb, TlbLevel.Dtlb, TlbLevel.Stlb })
        {
            var x = fast.M.Cpu.Mmu.Arrays(level);
            var y = model.M.Cpu.Mmu.Arrays(level);
            for (int k = 0; k < x.Count; k++) Assert.Equal(y[k].E, x[k].E);
        }
    }

    [Theory]
    [InlineData("pti=on")]
    [InlineData("pti=on nopcid")]
    [InlineData("pti=off")]
    public void With_the_model_off_the_kernel_runs_the_same_and_no_TLB_counter_moves(string options)
    {
        var on = Boot($"{Workload} {options}");
        var off = Boot($"{Workload} {options}", new TlbConfig { Model = false });
        Assert.True(off.M.StopReason == StopReason.DebugExit, off.M.StopMessage + "\n" + off.Console);
        Assert.Equal(on.Console, off.Console);
        Assert.Equal(on.M.Cpu.Retired, off.M.Cpu.Retired);
        var s = off.M.Cpu.Mmu.Snapshot();
        Assert.Equal(0UL, s.TotalLookups(TlbLevel.Dtlb) + s.TotalLookups(TlbLevel.Itlb) + s.TotalLookups(TlbLevel.Stlb));
        Assert.False(off.M.Cpu.Mmu.ModelOn);
    }

    [Fact]
    public void The_model_switch_is_a_setting()
    {
        var c = new TlbConfig();
        Assert.True(c.Model);
        c.Set("model=off");
        Assert.False(c.Model);
        c.Set("model=on");
        Assert.True(c.Model);
        Assert.False(TlbConfig.FromJson("{ \"model\": false }").Model);
    }
}
