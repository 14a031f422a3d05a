using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using static Emu64.Tests.Platform.Guest;

namespace Emu64.Tests.Platform;

/// <summary>
/// The APIC features QEMU 7.2's TCG does not offer (it reports neither TSC-deadline nor x2APIC), so
/// these transcripts are checked against Emu64 alone; the CPUID lines show what each machine reports.
/// </summary>
[Trait("Category", "Platform")]
public class ApicModeTests
{
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

    private static void Rdmsr(Assembler a, uint msr) { a.mov(ecx, msr); a.rdmsr(); a.shl(rdx, 32); a.or(rax, rdx); }
    private static void Wrmsr(Assembler a, uint msr, ulong v) { a.mov(ecx, msr); a.mov(eax, (uint)v); a.mov(edx, (uint)(v >> 32)); a.wrmsr(); }

    /// <summary>
    /// TSC-deadline: arm IA32_TSC_DEADLINE 200 000 cycles ahead three times, sleeping in HLT each time;
    /// the handler checks that the TSC has passed the deadline, and the MSR reads 0 once it fired.
    /// </summary>
    public static byte[] DeadlineKernel() => TestKernel.Build(a =>
    {
        var handler = a.CreateLabel();
        var again = a.CreateLabel();
        MaskPic(a);
        LoadIdt(a);
        Gate(a, 0x42, handler);
        a.mov(eax, 1); a.cpuid(); a.mov(eax, ecx); a.shr(eax, 24); a.and(eax, 1); Show(a, "cpuid tsc-deadline", 1);
        EnableApic(a);
        Write32(a, ApicBase + 0x320, 0x40042);        // TSC-deadline mode, vector 0x42
        a.Label(ref again);
        a.rdtsc(); a.shl(rdx, 32); a.or(rax, rdx);
        a.add(rax, 200_000);
        a.mov(rdi, Var(1)); a.mov(__qword_ptr[rdi], rax);
        a.mov(rdx, rax); a.shr(rdx, 32);
        a.mov(ecx, 0x6E0); a.wrmsr();
        a.mov(rax, Var(0)); a.mov(rax, __qword_ptr[rax]); a.inc(rax);
        a.mov(rdi, Var(3)); a.mov(__qword_ptr[rdi], rax);
        var wait = a.CreateLabel();
        var woke = a.CreateLabel();
        a.sti();
        a.Label(ref wait);
        a.mov(rax, Var(0)); a.mov(rax, __qword_ptr[rax]);
        a.mov(rdi, Var(3)); a.cmp(rax, __qword_ptr[rdi]);
        a.jae(woke);
        a.hlt();
        a.jmp(wait);
        a.Label(ref woke);
        a.cli();
        a.mov(rax, Var(0)); a.mov(rax, __qword_ptr[rax]); a.cmp(rax, 3); a.jb(again);
        a.mov(rax, Var(0)); a.mov(rax, __qword_ptr[rax]); Show(a, "deadline interrupts", 2);
        a.mov(rax, Var(2)); a.mov(rax, __qword_ptr[rax]); Show(a, "all fired at or after their deadline", 1);
        Rdmsr(a, 0x6E0); Show(a, "deadline msr after firing", 1);
        TestKernel.Exit(a, 0);

        a.Label(ref handler);
        PushAll(a);
        a.mov(rax, Var(0)); a.inc(__qword_ptr[rax]);
        a.rdtsc(); a.shl(rdx, 32); a.or(rax, rdx);
        a.mov(rdi, Var(1)); a.cmp(rax, __qword_ptr[rdi]);
        a.setae(al); a.movzx(eax, al);
        a.mov(rdi, Var(2));
        a.mov(rdx, Var(0)); a.cmp(__qword_ptr[rdx], 1);
        var first = a.CreateLabel();
        a.je(first);
        a.and(rax, __qword_ptr[rdi]);
        a.Label(ref first);
        a.mov(__qword_ptr[rdi], rax);
        Write32(a, ApicBase + 0xB0, 0);
        PopAll(a);
        a.iretq();
    }, mapFourGiB: true);

    [Fact]
    public void The_TSC_deadline_timer_fires_once_per_armed_deadline_and_never_early()
    {
        Assert.Equal("cpuid tsc-deadline=1\ndeadline interrupts=03\nall fired at or after their deadline=1\ndeadline msr after firing=0\n", PlatformRun.Console(DeadlineKernel()));
    }

    /// <summary>
    /// x2APIC: set IA32_APIC_BASE.EXTD, read ID/version/LDR through MSRs, send a SELF IPI (MSR 0x83F)
    /// and an ICR self-IPI (MSR 0x830), run the periodic timer through MSRs 0x832/0x83E/0x838.
    /// </summary>
    public static byte[] X2ApicKernel() => TestKernel.Build(a =>
    {
        var ipi = a.CreateLabel();
        var tick = a.CreateLabel();
        MaskPic(a);
        LoadIdt(a);
        Gate(a, 0x60, ipi);
        Gate(a, 0x40, tick);
        a.mov(eax, 1); a.cpuid(); a.mov(eax, ecx); a.shr(eax, 21); a.and(eax, 1); Show(a, "cpuid x2apic", 1);
        Rdmsr(a, 0x1B); a.or(rax, 0xC00); a.mov(rdx, rax); a.shr(rdx, 32); a.mov(ecx, 0x1B); a.wrmsr();
        Rdmsr(a, 0x1B); Show(a, "apic base", 8);
        Wrmsr(a, 0x80F, 0x1FF);                       // SVR: enabled
        Rdmsr(a, 0x802); Show(a, "x2apic id", 8);
        Rdmsr(a, 0x803); Show(a, "version", 8);
        Rdmsr(a, 0x80D); Show(a, "ldr", 8);
        a.sti();
        Wrmsr(a, 0x83F, 0x60);                        // SELF IPI
        Wrmsr(a, 0x830, 0x40060);                     // ICR, shorthand self
        a.cli();
        Wrmsr(a, 0x83E, 0xB);
        Wrmsr(a, 0x832, 0x20040);
        Wrmsr(a, 0x838, 500_000);
        WaitFor(a, 1, 4);
        Wrmsr(a, 0x838, 0);
        a.mov(rax, Var(0)); a.mov(rax, __qword_ptr[rax]); Show(a, "self ipis", 2);
        a.mov(rax, Var(1)); a.mov(rax, __qword_ptr[rax]); Show(a, "timer ticks", 2);
        TestKernel.Exit(a, 0);

        a.Label(ref ipi);
        PushAll(a);
        a.mov(rax, Var(0)); a.inc(__qword_ptr[rax]);
        Wrmsr(a, 0x80B, 0);
        PopAll(a);
        a.iretq();

        a.Label(ref tick);
        PushAll(a);
        a.mov(rax, Var(1)); a.inc(__qword_ptr[rax]);
        Wrmsr(a, 0x80B, 0);
        PopAll(a);
        a.iretq();
    }, mapFourGiB: true);

    [Fact]
    public void In_x2APIC_mode_the_registers_self_IPIs_and_timer_work_through_MSRs()
    {
        Assert.Equal("cpuid x2apic=1\napic base=fee00d00\nx2apic id=00000000\nversion=00050014\nldr=00000001\nself ipis=02\ntimer ticks=04\n", PlatformRun.Console(X2ApicKernel()));
    }

    [Fact]
    public void Writing_the_xAPIC_page_does_nothing_in_x2APIC_mode_and_the_page_moves_with_IA32_APIC_BASE()
    {
        var m = new Machine(new MachineOptions { Output = Stream.Null });
        Assert.Equal(0x00050014UL, m.Memory.Read(0xFEE00030, 4));
        m.Cpu.WriteMsr(0x1B, 0xFEB00900);                 // relocate (clear of the HPET at 0xFED00000)
        Assert.Equal(0x00050014UL, m.Memory.Read(0xFEB00030, 4));
        Assert.Equal(0xFFFFFFFFUL, m.Memory.Read(0xFEE00030, 4));
        m.Cpu.WriteMsr(0x1B, 0xFEB00D00);                 // x2APIC: the page is gone
        Assert.Equal(0xFFFFFFFFUL, m.Memory.Read(0xFEB00030, 4));
        Assert.True(m.Cpu.ReadMsr(0x803, out ulong ver));
        Assert.Equal(0x00050014UL, ver);
    }
}
