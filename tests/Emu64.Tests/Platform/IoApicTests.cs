using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using static Emu64.Tests.Platform.Guest;

namespace Emu64.Tests.Platform;

[Trait("Category", "Platform")]
public class IoApicTests
{
    private static void Select(Assembler a, uint reg) => Write32(a, IoApicBase, reg);
    private static void WriteReg(Assembler a, uint reg, uint v) { Select(a, reg); Write32(a, IoApicBase + 0x10, v); }
    private static void ReadReg(Assembler a, uint reg) { Select(a, reg); Read32(a, IoApicBase + 0x10); }

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

    /// <summary>
    /// Routes two ISA interrupts through the I/O APIC with the 8259s masked: the UART's transmitter-empty
    /// interrupt (IRQ4 → pin 4, edge, then level-triggered, where remote IRR is set until the EOI) and
    /// the PIT (IRQ0 → pin 2, QEMU's interrupt source override).
    /// </summary>
    public static byte[] RoutingKernel() => TestKernel.Build(a =>
    {
        var uart = a.CreateLabel();
        var pit = a.CreateLabel();
        MaskPic(a);
        LoadIdt(a);
        Gate(a, 0x44, uart);
        Gate(a, 0x30, pit);
        EnableApic(a);
        ReadReg(a, 1); Show(a, "ioapic version", 8);
        ReadReg(a, 0x18); Show(a, "pin 4 after reset", 8);
        WriteReg(a, 0x19, 0);                          // destination: APIC 0
        WriteReg(a, 0x18, 0x44);                       // fixed, edge, physical, vector 0x44
        ReadReg(a, 0x18); Show(a, "pin 4 programmed", 8);
        Out8(a, 0x3F9, 0x02);                          // UART: enable the THR-empty interrupt
        WaitFor(a, 0, 1);
        a.mov(rax, Var(1)); a.mov(rax, __qword_ptr[rax]); Show(a, "uart interrupt via pin 4, iir", 2);
        Out8(a, 0x3F9, 0x00);
        WriteReg(a, 0x18, 0x8044);                     // level-triggered now
        Out8(a, 0x3F9, 0x02);
        WaitFor(a, 0, 2);
        // Turn the UART interrupt off before printing: every byte printed empties THR and would raise it again.
        Out8(a, 0x3F9, 0x00);
        ReadReg(a, 0x18); a.mov(rdx, Var(4)); a.mov(__qword_ptr[rdx], rax);
        a.mov(rax, Var(2)); a.mov(rax, __qword_ptr[rax]); Show(a, "level: pin 4 in handler", 8);
        a.mov(rax, Var(4)); a.mov(rax, __qword_ptr[rax]); Show(a, "level: pin 4 after eoi", 8);
        WriteReg(a, 0x18, 0x10000);
        // PIT channel 0 at 100 Hz on pin 2.
        WriteReg(a, 0x15, 0);
        WriteReg(a, 0x14, 0x30);
        Out8(a, 0x43, 0x34); Out8(a, 0x40, 11932 & 0xFF); Out8(a, 0x40, 11932 >> 8);
        WaitFor(a, 3, 3);
        WriteReg(a, 0x14, 0x10030);
        a.mov(rax, Var(3)); a.mov(rax, __qword_ptr[rax]); Show(a, "pit ticks via pin 2", 2);
        TestKernel.Exit(a, 0);

        a.Label(ref uart);
        PushAll(a);
        a.mov(rax, Var(0)); a.inc(__qword_ptr[rax]);
        ReadReg(a, 0x18); a.mov(rdx, Var(2)); a.mov(__qword_ptr[rdx], rax);
        In8(a, 0x3FA); a.mov(rdx, Var(1)); a.mov(__qword_ptr[rdx], rax);   // reading IIR clears THRE
        Write32(a, ApicBase + 0xB0, 0);
        PopAll(a);
        a.iretq();

        a.Label(ref pit);
        PushAll(a);
        a.mov(rax, Var(3)); a.inc(__qword_ptr[rax]);
        Write32(a, ApicBase + 0xB0, 0);
        PopAll(a);
        a.iretq();
    }, mapFourGiB: true);

    private const string RoutingTranscript =
        "ioapic version=00170020\npin 4 after reset=00010000\npin 4 programmed=00000044\nuart interrupt via pin 4, iir=02\n" +
        "level: pin 4 in handler=0000c044\nlevel: pin 4 after eoi=00008044\npit ticks via pin 2=03\n";

    [Fact]
    public void ISA_interrupts_reach_the_CPU_through_the_IO_APIC_redirection_table()
    {
        Assert.Equal(RoutingTranscript, PlatformRun.Console(RoutingKernel()));
    }

    [QemuFact]
    public void The_IO_APIC_kernel_prints_the_same_transcript_under_QEMU()
    {
        Assert.Equal(RoutingTranscript, Qemu.Run(RoutingKernel()));
    }

    [Fact]
    public void The_TMR_bit_of_a_level_vector_outlives_its_EOI_until_the_vector_is_accepted_again_edge_triggered()
    {
        // SDM vol. 3A §11.8.4: on acceptance into the IRR the TMR bit is set for level and cleared for edge
        // interrupts; an EOI sends the EOI message to the I/O APIC when the bit is set, and leaves the bit.
        var m = new Machine(new MachineOptions { Output = Stream.Null });
        const ulong apic = 0xFEE00000, tmr41 = apic + 0x180 + 0x10 * (0x41 / 32);
        const uint bit41 = 1u << (0x41 % 32);
        m.Io.Out(0x21, 1, 0xFF); m.Io.Out(0xA1, 1, 0xFF);
        m.Memory.Write(apic + 0xF0, 4, 0x1FF);
        void Redirect(bool level)
        {
            m.Memory.Write(Emu64.Devices.IoApic.DefaultBase, 4, 0x10 + 2 * 17);
            m.Memory.Write(Emu64.Devices.IoApic.DefaultBase + 0x10, 4, 0x41u | (level ? 1u << 15 : 0));
        }
        Redirect(level: true);
        m.Platform.SetGsi(17, true);
        Assert.Equal(0x41, m.Platform.Acknowledge());
        Assert.Equal(bit41, (uint)m.Memory.Read(tmr41, 4) & bit41);
        m.Platform.SetGsi(17, false);
        m.Memory.Write(apic + 0xB0, 4, 0);                      // EOI
        Assert.Equal(bit41, (uint)m.Memory.Read(tmr41, 4) & bit41);
        Redirect(level: false);
        m.Platform.SetGsi(17, true);                            // an edge: accepted, TMR cleared
        Assert.Equal(0x41, m.Platform.Acknowledge());
        Assert.Equal(0u, (uint)m.Memory.Read(tmr41, 4) & bit41);
    }
}
