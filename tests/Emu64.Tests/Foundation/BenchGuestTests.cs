using Emu64.Bench;
using Emu64.Cpu;

namespace Emu64.Tests.Foundation;

/// <summary>The benchmark guests (bench/Emu64.Bench/LoopImage.cs) boot into their loops and run without faults or allocation.</summary>
public class BenchGuestTests
{
    private static Machine Boot(byte[] image)
    {
        var m = new Machine(new MachineOptions { Output = Stream.Null });
        m.LoadKernel(image, "bench", Array.Empty<Loader.BootModule>());
        Assert.Equal(StopReason.None, m.Run(200_000));
        Assert.Equal(CpuMode.Long64, m.Cpu.Mode);
        return m;
    }

    [Fact]
    public void The_register_loop_guest_runs_exactly_the_requested_instructions_in_long_mode()
    {
        var m = Boot(LoopImage.RegisterLoop());
        ulong before = m.Cpu.Retired, rax = m.Cpu.R[Reg.RAX];
        Assert.Equal(StopReason.None, m.Run(1_000_000));
        Assert.Equal(before + 1_000_000, m.Cpu.Retired);
        Assert.NotEqual(rax, m.Cpu.R[Reg.RAX]);
        Assert.Equal(0UL, m.Stats.Faults);
    }

    [Fact]
    public void The_memory_loop_guest_updates_its_buffer_through_4_KiB_pages()
    {
        var m = Boot(LoopImage.MemoryLoop());
        Assert.Equal(StopReason.None, m.Run(1_000_000));
        Assert.Equal(0UL, m.Stats.Faults);
        Assert.NotEqual(0UL, m.Memory.Read(LoopImage.Buffer, 8));
        Assert.NotEqual(0UL, m.Memory.Read(LoopImage.Buffer + LoopImage.BufferBytes - 8, 8));
        Assert.Equal(LoopImage.Pt | 0x23UL, m.Memory.Read(LoopImage.Pd + 8 * (LoopImage.Buffer >> 21), 8));   // P W A: a 4 KiB table was walked
    }

    [Fact]
    public void The_SSE_loop_guest_runs_its_packed_operations_without_faults()
    {
        var m = Boot(LoopImage.SseLoop());
        ulong before = m.Cpu.Retired;
        Assert.Equal(StopReason.None, m.Run(1_000_000));
        Assert.Equal(before + 1_000_000, m.Cpu.Retired);
        Assert.Equal(0UL, m.Stats.Faults);
        Assert.Equal(0UL, m.Stats.UnimplementedTotal);
        Assert.Equal(0x600UL, m.Cpu.CR4 & 0x600);   // CR4.OSFXSR and CR4.OSXMMEXCPT set
        Assert.NotEqual(0UL, m.Memory.Read(LoopImage.Buffer, 8) | m.Memory.Read(LoopImage.Buffer + 8, 8));
    }

    [Fact]
    public void A_hot_loop_allocates_nothing_per_guest_instruction()
    {
        foreach (var image in new[] { LoopImage.RegisterLoop(), LoopImage.MemoryLoop(), LoopImage.SseLoop() })
        {
            var m = Boot(image);
            long before = GC.GetAllocatedBytesForCurrentThread();
            m.Run(1_000_000);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            // One byte per instruction would be 1 MB here; a few KB per run call is not on the per-instruction path.
            Assert.True(allocated < 32 * 1024, $"{allocated} bytes allocated while running 1,000,000 guest instructions");
        }
    }
}
