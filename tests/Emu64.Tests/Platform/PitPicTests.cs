using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using static Emu64.Tests.Platform.Guest;

namespace Emu64.Tests.Platform;

[Trait("Category", "Platform")]
public class PitPicTests
{
    /// <summary>
    /// Programs the 8259 pair (vectors 0x20/0x28, only IRQ0 unmasked) and PIT channel 0 as a 100 Hz
    /// rate generator, waits for <paramref name="ticks"/> IRQ0s (sleeping in HLT, or spinning), and
    /// prints what it saw: the tick count, the ISR read inside the handler, the read-back status of
    /// channel 0, and channel 2's OUT on port 0x61 after its terminal count.
    /// </summary>
    public static byte[] TickKernel(int ticks, bool halt) => TestKernel.Build(a =>
    {
        var tick = a.CreateLabel();
        var wait = a.CreateLabel();
        var poll = a.CreateLabel();
        LoadIdt(a);
        Gate(a, 0x20, tick);
        InitPic(a, 0xFE, 0xFF);
        Out8(a, 0x43, 0x34);                   // channel 0, LSB then MSB, mode 2
        Out8(a, 0x40, 11932 & 0xFF);
        Out8(a, 0x40, 11932 >> 8);             // 1193182 / 11932 ≈ 100 Hz
        a.sti();
        a.Label(ref wait);
        if (halt) a.hlt(); else a.nop();
        a.mov(rax, Var(0));
        a.cmp(__qword_ptr[rax], ticks);
        a.jb(wait);
        a.cli();
        a.mov(rax, Var(0)); a.mov(rax, __qword_ptr[rax]); Show(a, "irq0 ticks", 2);
        a.mov(rax, Var(1)); a.mov(rax, __qword_ptr[rax]); Show(a, "isr in handler", 2);
        Out8(a, 0x43, 0xE2);                   // read-back: status only, channel 0
        In8(a, 0x40);
        a.and(al, 0x7F);                       // OUT (bit 7) is left out: QEMU's mode-2 OUT reads low between edges
        Show(a, "channel 0 status", 2);
        // Channel 2: mode 0, count 100, gate on through port 0x61; poll OUT2 (bit 5) until it rises.
        Out8(a, 0x61, 0x00);
        Out8(a, 0x43, 0xB0);
        Out8(a, 0x42, 100);
        Out8(a, 0x42, 0);
        Out8(a, 0x61, 0x01);
        a.Label(ref poll);
        In8(a, 0x61);
        a.test(al, 0x20);
        a.jz(poll);
        TestKernel.Print(a, "channel 2 out high after terminal count\n");
        TestKernel.Exit(a, 0);

        a.Label(ref tick);
        a.push(rax); a.push(rdx);
        a.mov(rax, Var(0)); a.inc(__qword_ptr[rax]);
        Out8(a, 0x20, 0x0B);                   // OCW3: read ISR
        In8(a, 0x20);
        a.mov(rdx, Var(1)); a.mov(__qword_ptr[rdx], rax);
        Out8(a, 0x20, 0x20);                   // non-specific EOI
        a.pop(rdx); a.pop(rax);
        a.iretq();
    });

    private const string TickTranscript =
        "irq0 ticks=0a\nisr in handler=01\nchannel 0 status=34\nchannel 2 out high after terminal count\n";

    [Fact]
    public void A_kernel_programming_the_PIT_counts_ten_IRQ0_ticks_through_the_8259()
    {
        var r = PlatformRun.Emu(TickKernel(10, halt: true));
        Assert.True(r.Reason == StopReason.DebugExit, Emu64.Cli.Cli.Describe(r.Machine));
        Assert.Equal(TickTranscript, r.Console);
        Assert.Equal(10UL, r.Machine.Events.Interrupts);
    }

    [QemuFact]
    public void The_PIT_kernel_prints_the_same_transcript_under_QEMU()
    {
        Assert.Equal(TickTranscript, Qemu.Run(TickKernel(10, halt: true)));
    }

    [Fact]
    public void Ten_ticks_at_100_Hz_take_a_tenth_of_a_virtual_second()
    {
        var r = PlatformRun.Emu(TickKernel(10, halt: true));
        // The tenth IRQ0 comes 10 × 11932 PIT clocks after the count was loaded: 0.1000 s of virtual time.
        double seconds = r.Machine.Now / 1e9;
        Assert.InRange(seconds, 10 * 11932 / 1193182.0, 10 * 11932 / 1193182.0 + 0.0001);
    }

    private sealed class InterruptTimes(Machine m) : IBoundaryListener
    {
        public readonly List<ulong> Now = new();
        public ulong RetiredAtLast;
        public void OnEvent(in BoundaryEvent e) { if (e.Kind == BoundaryKind.Interrupt) { Now.Add(m.Now); RetiredAtLast = e.Instructions; } }
    }

    [Fact]
    public void A_halted_CPU_takes_each_PIT_interrupt_at_the_exact_tick_of_the_output_edge()
    {
        InterruptTimes? times = null;
        var r = PlatformRun.Emu(TickKernel(10, halt: true), setup: m => m.Events.Subscribe(times = new InterruptTimes(m)));
        Assert.Equal(TickTranscript, r.Console);
        ulong Pit(ulong now) => VirtualClock.ToDevice(now, Emu64.Devices.Pit8254.Hz, 1_000_000_000);
        Assert.Equal(10, times!.Now.Count);
        for (int k = 0; k < 10; k++)
        {
            ulong now = times.Now[k];
            Assert.Equal(Pit(times.Now[0]) + (ulong)k * 11932, Pit(now));   // one period apart, in PIT clocks
            Assert.Equal(Pit(now) - 1, Pit(now - 1));                        // and taken at the first tick of the edge
        }
        // 0.1 s of waiting, yet only the boot stub (~2600) and a few handlers ran by the tenth interrupt.
        Assert.True(times.RetiredAtLast < 5000, $"{times.RetiredAtLast} instructions by the tenth interrupt");
    }

    [Fact]
    public void Waiting_in_HLT_for_100_ticks_retires_far_fewer_instructions_than_busy_waiting()
    {
        // --ips 2M: a 100 Hz tick is 20 000 instructions of busy waiting, 100 ticks 2 million.
        var halted = PlatformRun.Emu(TickKernel(100, halt: true), ticksPerSecond: 2_000_000);
        var busy = PlatformRun.Emu(TickKernel(100, halt: false), ticksPerSecond: 2_000_000);
        Assert.Equal(TickTranscript.Replace("=0a", "=64"), halted.Console);
        Assert.Equal(halted.Console, busy.Console);
        ulong h = halted.Machine.Cpu.Retired, b = busy.Machine.Cpu.Retired;
        Assert.True(h * 100 < b, $"HLT: {h} instructions, busy wait: {b}");
        // Both waited the same virtual time: HLT skipped it instead of executing it.
        Assert.InRange((double)halted.Machine.Now / busy.Machine.Now, 0.999, 1.001);
    }

    [Fact]
    public void Two_runs_of_the_PIT_kernel_give_identical_output_and_counters()
    {
        var a = PlatformRun.Emu(TickKernel(20, halt: true));
        var b = PlatformRun.Emu(TickKernel(20, halt: true));
        Assert.Equal(a.Console, b.Console);
        Assert.Equal(a.Machine.Cpu.Retired, b.Machine.Cpu.Retired);
        Assert.Equal(a.Machine.Now, b.Machine.Now);
        Assert.Equal(a.Machine.Events.Interrupts, b.Machine.Events.Interrupts);
    }
}
