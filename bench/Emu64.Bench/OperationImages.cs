using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Bench;

/// <summary>
/// The guests of <see cref="OperationBenchmarks"/> (also run by the tests, Foundation/ChainedSystemInstructionTests.cs): each
/// enters long mode (<see cref="LoopImage"/>), does its setup and then loops over one operation forever.
/// </summary>
public static class OperationImages
{
    /// <summary>Setup, then <c>body; dec r8; jnz</c> forever (r8 reloaded every 2^40 iterations).</summary>
    private static byte[] OperationLoop(Action<Assembler> setup, Action<Assembler> body) => LoopImage.Build(a =>
    {
        setup(a);
        var outer = a.CreateLabel(); var inner = a.CreateLabel();
        a.Label(ref outer);
        a.mov(r8, 1L << 40);
        a.Label(ref inner);
        body(a);
        a.dec(r8);
        a.jnz(inner);
        a.jmp(outer);
    });

    private static void None(Assembler a) { }

    public static byte[] Cpuid() => OperationLoop(None, a => { a.xor(eax, eax); a.cpuid(); });

    /// <summary>The PM timer at the port the FADT gives (PM_TMR_BLK, AcpiTables.cs), 32-bit reads.</summary>
    public static byte[] InPmTimer() => OperationLoop(a => a.mov(edx, (uint)Devices.AcpiPm.PmTmrBlk), a => a.@in(eax, dx));

    public static byte[] Cr8Read() => OperationLoop(None, a => a.mov(rax, cr8));

    /// <summary>MOV CR8, 0: the task priority stays 0 (nothing is pending, nothing unmasks).</summary>
    public static byte[] Cr8Write() => OperationLoop(a => a.xor(eax, eax), a => a.mov(cr8, rax));

    public static byte[] Pause() => OperationLoop(None, a => a.pause());

    /// <summary>
    /// x2APIC on (IA32_APIC_BASE bits 11 and 10), SVR software-enabled, the LVT timer in TSC-deadline mode (bits 18:17 = 10,
    /// vector 0xEF, unmasked; IF stays 0), then IA32_TSC_DEADLINE = 2^64-1 again and again, as x86/vmexit.c's wr_tsc_deadline_msr.
    /// </summary>
    public static byte[] TscDeadline() => OperationLoop(a =>
    {
        a.mov(ecx, 0x1B); a.rdmsr(); a.or(eax, 0xC00); a.wrmsr();
        a.mov(ecx, 0x80F); a.mov(eax, 0x1FF); a.xor(edx, edx); a.wrmsr();
        a.mov(ecx, 0x832); a.mov(eax, 0x400EF); a.wrmsr();
        a.mov(ecx, 0x6E0); a.mov(eax, 0xFFFFFFFF); a.mov(edx, 0xFFFFFFFF);
    }, a => a.wrmsr());
}
