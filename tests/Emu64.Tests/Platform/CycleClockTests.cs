using Emu64.Loader;
using Emu64.Mmu;
using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using static Emu64.Tests.Platform.Guest;

namespace Emu64.Tests.Platform;

/// <summary>
/// <c>--clock cycles</c> (Mmu/CycleClock.cs, docs/MEASURE.md "Guest time"): guest time advances by the cost model's
/// cycles, so the TSC across a stretch of code is its instructions plus what the model charges for the stretch's
/// TLB misses, walks and CR3 writes; under the default clock it is the instructions alone.
/// </summary>
[Trait("Category", "Platform")]
public class CycleClockTests
{
    /// <summary>
    /// Three times: RDTSC; reload CR3 (CR4.PCIDE clear: a flush of every non-global TLB and paging-structure-cache
    /// entry); load from a 2 MiB page the code has not touched; RDTSC. Prints each TSC difference.
    /// </summary>
    private static byte[] FlushAndWalkKernel() => TestKernel.Build(a =>
    {
        var again = a.CreateLabel();
        a.mov(r12, 3);
        a.Label(ref again);
        a.rdtsc(); a.shl(rdx, 32); a.or(rax, rdx); a.mov(r8, rax);        // the first RDTSC reads T; 4 instructions
        a.mov(rax, cr3); a.mov(cr3, rax);                                   // 2 instructions, one flushing CR3 write
        a.mov(rbx, __qword_ptr[0x20000000]);                                // 1 instruction: a data walk (the page at 512 MiB)
        a.rdtsc(); a.shl(rdx, 32); a.or(rax, rdx);                          // reads T + 7 instructions + the stalls
        a.sub(rax, r8);
        Show(a, "tsc delta", 4);
        a.dec(r12);
        a.jnz(again);
        TestKernel.Exit(a, 0);
    });

    private static (string Console, Machine M) Run(byte[] image, GuestClock clock, int compileThreshold)
    {
        var output = new MemoryStream();
        var m = new Machine(new MachineOptions { MaxInstructions = 10_000_000, Output = output, Clock = clock, CompileThreshold = compileThreshold });
        m.LoadKernel(image, "kernel", Array.Empty<BootModule>());
        Assert.Equal(StopReason.DebugExit, m.Run());
        return (System.Text.Encoding.Latin1.GetString(output.ToArray()), m);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Under_the_cycle_clock_the_TSC_across_a_CR3_write_and_two_walks_is_the_instructions_plus_the_modeled_cycles(int compileThreshold)
    {
        // The default cost model (TlbConfig.cs): the 7 instructions, one cycle each; the MOV to CR3, 100; then two page
        // walks, each 12 (the STLB lookup that missed) + 5 per paging-structure entry read. The fetch after the CR3
        // write walks from CR3: PML4E, PDPTE, PDE (a 2 MiB page) = 3 reads. The load walks the same PML4E and PDPTE,
        // which the paging-structure caches now hold (the PDPTE cache keeps the PDPTE, so the walk starts at the PD):
        // 1 read. 7 + 100 + (12 + 15) + (12 + 5) = 151 = 0x97.
        var (console, m) = Run(FlushAndWalkKernel(), GuestClock.Cycles, compileThreshold);
        Assert.Equal("tsc delta=0097\ntsc delta=0097\ntsc delta=0097\n", console);
        Assert.Equal(m.Cpu.Mmu.Snapshot().ModeledCycles(m.Cpu.Retired, m.Cpu.Mmu.Config.Cost), (double)m.Now);
        Assert.Equal(m.Now - m.Cpu.Retired, m.StallTicks);
        Assert.Equal(0UL, m.IdleTicks);
    }

    [Fact]
    public void Under_the_instruction_clock_the_same_stretch_reads_its_seven_instructions()
    {
        var (console, m) = Run(FlushAndWalkKernel(), GuestClock.Instructions, 0);
        Assert.Equal("tsc delta=0007\ntsc delta=0007\ntsc delta=0007\n", console);
        Assert.Equal(m.Cpu.Retired, m.Now);
        Assert.Equal(0UL, m.StallTicks);
    }

    [Fact]
    public void The_cycle_clock_follows_a_changed_cost_model()
    {
        var tlb = new TlbConfig();
        tlb.Set("cost.cr3write=1000");
        tlb.Set("cost.walkmemref=0");
        var output = new MemoryStream();
        var m = new Machine(new MachineOptions { MaxInstructions = 10_000_000, Output = output, Clock = GuestClock.Cycles, Tlb = tlb, CompileThreshold = 0 });
        m.LoadKernel(FlushAndWalkKernel(), "kernel", Array.Empty<BootModule>());
        m.Run();
        // 7 + 1000 + 12 + 12 = 1031 = 0x407.
        Assert.StartsWith("tsc delta=0407\n", System.Text.Encoding.Latin1.GetString(output.ToArray()));
    }

    [Fact]
    public void A_cost_model_that_is_not_whole_cycles_is_refused_by_the_cycle_clock()
    {
        var tlb = new TlbConfig();
        tlb.Set("cost.basecpi=0.5");
        var e = Assert.Throws<ArgumentException>(() => new Machine(new MachineOptions { Clock = GuestClock.Cycles, Tlb = tlb }));
        Assert.Equal("cost.basecpi is 0.5; --clock cycles counts one cycle per instruction (cost.basecpi=1)", e.Message);
        var ok = new Machine(new MachineOptions { Tlb = tlb });   // the instruction clock does not read the costs
        Assert.Equal(0UL, ok.Now);
    }

    private static Emu64.Introspection.CounterSnapshot SyscallRegion(string config, GuestClock clock, int compileThreshold = -1)
    {
        var k = ToyKernel.Boot($"init=syscalls:200:0 nokaslr {config}", record: false, clock: clock, compileThreshold: compileThreshold);
        Assert.Equal(StopReason.DebugExit, k.Reason);
        return k.Machine.KernelInfo.Regions.Single(r => r.Id == 1).Delta;
    }

    [Fact]
    public void On_the_toy_kernel_a_system_call_loop_timed_by_the_guest_shows_PTI_and_PCID_under_the_cycle_clock_only()
    {
        var cost = new CostModel();
        var ticks = new Dictionary<(string, GuestClock), ulong>();
        foreach (var config in new[] { "pti=off", "pti=on nopcid", "pti=on noinvpcid" })
            foreach (var clock in new[] { GuestClock.Instructions, GuestClock.Cycles })
            {
                var d = SyscallRegion(config, clock);
                Assert.Equal(0UL, d.Interrupts);
                // What the guest's clock saw across the region: its instructions, or exactly its modeled cycles.
                Assert.Equal(clock == GuestClock.Cycles ? (ulong)d.Tlb.ModeledCycles(d.Instructions, cost) : d.Instructions, d.Now);
                ticks[(config, clock)] = d.Now;
            }
        ulong I(string c) => ticks[(c, GuestClock.Instructions)];
        ulong C(string c) => ticks[(c, GuestClock.Cycles)];
        // The instruction clock sees PTI's few extra instructions per call (the CR3 switches), under 15%...
        Assert.InRange((double)I("pti=on nopcid") / I("pti=off"), 1.0, 1.15);
        Assert.InRange((double)I("pti=on noinvpcid") / I("pti=off"), 1.0, 1.25);
        // ...the cycle clock sees the flushes: PTI without PCID costs several times the baseline, PCID saves much of it.
        Assert.True(C("pti=on nopcid") > 3 * C("pti=off"), $"pti {C("pti=on nopcid")} vs nopti {C("pti=off")}");
        Assert.True(C("pti=on noinvpcid") < C("pti=on nopcid") * 0.8, $"pti+pcid {C("pti=on noinvpcid")} vs pti {C("pti=on nopcid")}");
        Assert.True(C("pti=on noinvpcid") > C("pti=off"));
    }

    [Fact]
    public void The_cycle_clock_gives_the_same_region_interpreted_and_compiled()
    {
        var interpreted = SyscallRegion("pti=on noinvpcid", GuestClock.Cycles, compileThreshold: 0);
        var compiled = SyscallRegion("pti=on noinvpcid", GuestClock.Cycles, compileThreshold: 1);
        Assert.Equal(interpreted.Now, compiled.Now);
        Assert.Equal(interpreted.Instructions, compiled.Instructions);
    }

    [Fact]
    public void Boot_with_clock_cycles_reports_guest_ticks_equal_to_the_modeled_cycles_in_its_stats()
    {
        var r = CliRun.Execute("boot", "--append", "init=syscalls:50:0 nokaslr pti=on nopcid", "--clock", "cycles", "--stats");
        Assert.Equal(0, r.Status);
        string Stat(string key) => r.Stderr.Split('\n').Single(l => l.StartsWith(key + ": ", StringComparison.Ordinal))[(key.Length + 2)..];
        Assert.Equal("cycles", Stat("clock"));
        Assert.Equal(Stat("region.syscalls.modeled_cycles"), Stat("region.syscalls.guest_ticks"));
        Assert.Equal(Stat("modeled_cycles"), (ulong.Parse(Stat("guest_ticks")) - ulong.Parse(Stat("idle_ticks"))).ToString());
        var plain = CliRun.Execute("boot", "--append", "init=syscalls:50:0 nokaslr pti=on nopcid", "--stats");
        Assert.DoesNotContain("guest_ticks", plain.Stderr);
    }
}
