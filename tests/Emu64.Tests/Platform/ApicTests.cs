using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using static Emu64.Tests.Platform.Guest;

namespace Emu64.Tests.Platform;

[Trait("Category", "Platform")]
public class ApicTests
{
    /// <summary>Waits (HLT with interrupts on) until variable <paramref name="var"/> reaches <paramref name="count"/>.</summary>
    private static void WaitFor(Assembler a, int var, int count)
    {
        var wait = a.CreateLabel();
        var done = a.CreateLabel();
        a.sti();
        a.Label(ref wait);
        a.mov(rax, Var(var));
        a.cmp(__qword_ptr[rax], count);
        a.jae(done);
        a.hlt();
        a.jmp(wait);
        a.Label(ref done);
        a.cli();
    }

    private static void ShowVar(Assembler a, int var, string label, int digits)
    {
        a.mov(rax, Var(var));
        a.mov(rax, __qword_ptr[rax]);
        Show(a, label, digits);
    }

    /// <summary>The xAPIC timer: periodic at vector 0x40 (five ticks), then one-shot at 0x41 (fires once).</summary>
    public static byte[] TimerKernel() => TestKernel.Build(a =>
    {
        var periodic = a.CreateLabel();
        var oneShot = a.CreateLabel();
        var spin = a.CreateLabel();
        MaskPic(a);
        LoadIdt(a);
        Gate(a, 0x40, periodic);
        Gate(a, 0x41, oneShot);
        EnableApic(a);
        Read32(a, ApicBase + 0x30); Show(a, "version", 8);
        Read32(a, ApicBase + 0x20); Show(a, "id", 8);
        Write32(a, ApicBase + 0x3E0, 0xB);            // divide by 1
        Write32(a, ApicBase + 0x320, 0x20040);        // periodic, vector 0x40
        Write32(a, ApicBase + 0x380, 1_000_000);
        WaitFor(a, 0, 5);
        Write32(a, ApicBase + 0x380, 0);              // stop
        ShowVar(a, 0, "periodic ticks", 2);
        ShowVar(a, 1, "ppr in handler", 2);
        ShowVar(a, 2, "isr 0x40-0x5f in handler", 8);
        Read32(a, ApicBase + 0xA0); Show(a, "ppr after eoi", 2);
        Write32(a, ApicBase + 0x3E0, 0x3);            // divide by 16
        Write32(a, ApicBase + 0x320, 0x41);           // one-shot, vector 0x41
        Write32(a, ApicBase + 0x380, 5000);
        WaitFor(a, 3, 1);
        a.mov(ecx, 200_000);                          // long enough for several more periods: none come
        a.Label(ref spin);
        a.dec(ecx);
        a.jnz(spin);
        ShowVar(a, 3, "one-shot interrupts", 2);
        Read32(a, ApicBase + 0x390); Show(a, "current count", 8);
        Read32(a, ApicBase + 0x380); Show(a, "initial count", 8);
        TestKernel.Exit(a, 0);

        a.Label(ref periodic);
        PushAll(a);
        a.mov(rax, Var(0)); a.inc(__qword_ptr[rax]);
        Read32(a, ApicBase + 0xA0); a.mov(rdx, Var(1)); a.mov(__qword_ptr[rdx], rax);
        Read32(a, ApicBase + 0x120); a.mov(rdx, Var(2)); a.mov(__qword_ptr[rdx], rax);
        Write32(a, ApicBase + 0xB0, 0);
        PopAll(a);
        a.iretq();

        a.Label(ref oneShot);
        PushAll(a);
        a.mov(rax, Var(3)); a.inc(__qword_ptr[rax]);
        Write32(a, ApicBase + 0xB0, 0);
        PopAll(a);
        a.iretq();
    }, mapFourGiB: true);

    private const string TimerTranscript =
        "version=00050014\nid=00000000\nperiodic ticks=05\nppr in handler=40\nisr 0x40-0x5f in handler=00000001\nppr after eoi=00\n" +
        "one-shot interrupts=01\ncurrent count=00000000\ninitial count=00001388\n";

    [Fact]
    public void The_local_APIC_timer_runs_periodic_then_one_shot_and_reports_priority_in_the_handler()
    {
        Assert.Equal(TimerTranscript, PlatformRun.Console(TimerKernel()));
    }

    [QemuFact]
    public void The_APIC_timer_kernel_prints_the_same_transcript_under_QEMU()
    {
        Assert.Equal(TimerTranscript, Qemu.Run(TimerKernel()));
    }

    /// <summary>
    /// Self-IPIs through the ICR: shorthand self, all-including-self, physical destination 0,
    /// all-excluding-self (nobody), INIT and SIPI to the others (ignored); then three IPIs held by
    /// IF=0 show up in the IRR and are delivered by priority, the low two only after TPR drops.
    /// </summary>
    public static byte[] IpiKernel() => TestKernel.Build(a =>
    {
        MaskPic(a);
        LoadIdt(a);
        foreach (int v in new[] { 0x50, 0x51, 0x52, 0x53, 0x55, 0x61, 0x92 })
        {
            var h = a.CreateLabel();
            var skip = a.CreateLabel();
            a.jmp(skip);
            a.Label(ref h);
            PushAll(a);
            a.mov(eax, v);
            Show(a, "ipi", 2);
            Write32(a, ApicBase + 0xB0, 0);
            PopAll(a);
            a.iretq();
            a.Label(ref skip);
            Gate(a, v, h);
        }
        EnableApic(a);
        a.sti();
        Write32(a, ApicBase + 0x310, 0);
        Write32(a, ApicBase + 0x300, 0x40050); Settle(a);        // self
        Write32(a, ApicBase + 0x300, 0x80051); Settle(a);        // all including self
        Write32(a, ApicBase + 0x300, 0x00052); Settle(a);        // physical destination 0 = this APIC
        Write32(a, ApicBase + 0x300, 0xC0053); Settle(a);        // all excluding self: no one
        Write32(a, ApicBase + 0x300, 0xC4500); Settle(a);        // INIT to the others
        Write32(a, ApicBase + 0x300, 0xC4608); Settle(a);        // SIPI to the others
        a.cli();
        Write32(a, ApicBase + 0x300, 0x40061);
        Write32(a, ApicBase + 0x300, 0x40092);
        Write32(a, ApicBase + 0x300, 0x40055);
        Read32(a, ApicBase + 0x220); Show(a, "irr 0x40-0x5f", 8);
        Read32(a, ApicBase + 0x230); Show(a, "irr 0x60-0x7f", 8);
        Read32(a, ApicBase + 0x240); Show(a, "irr 0x80-0x9f", 8);
        Write32(a, ApicBase + 0x80, 0x70);            // TPR: block classes 7 and below
        a.sti();
        Settle(a);
        a.cli();
        TestKernel.Print(a, "tpr lowered\n");
        Write32(a, ApicBase + 0x80, 0);
        a.sti();
        Settle(a);
        a.cli();
        Read32(a, ApicBase + 0x300); Show(a, "icr", 8);
        TestKernel.Exit(a, 0);
    }, mapFourGiB: true);

    private const string IpiTranscript =
        "ipi=50\nipi=51\nipi=52\nirr 0x40-0x5f=00200000\nirr 0x60-0x7f=00000002\nirr 0x80-0x9f=00040000\n" +
        "ipi=92\ntpr lowered\nipi=61\nipi=55\nicr=00040055\n";

    [Fact]
    public void Self_IPIs_follow_the_shorthands_and_pending_ones_are_delivered_by_priority_above_TPR()
    {
        Assert.Equal(IpiTranscript, PlatformRun.Console(IpiKernel()));
    }

    [QemuFact]
    public void The_IPI_kernel_prints_the_same_transcript_under_QEMU()
    {
        Assert.Equal(IpiTranscript, Qemu.Run(IpiKernel()));
    }
}
