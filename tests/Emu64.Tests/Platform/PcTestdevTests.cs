using Emu64.Devices;
using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using static Emu64.Tests.Platform.Guest;

namespace Emu64.Tests.Platform;

/// <summary>
/// QEMU's pc-testdev: the byte-addressed data register at 0xE0 (and byte-wise at 0xE8), the interrupt-line
/// ports at 0x2000, and 64 KiB of device memory at 0xFF000000 that instructions reach as MMIO.
/// </summary>
[Trait("Category", "Platform")]
public class PcTestdevTests
{
    private static Machine NewMachine() => new(new MachineOptions { Output = Stream.Null });

    [Fact]
    public void The_data_register_keeps_the_bytes_an_access_of_any_width_writes_at_its_offset()
    {
        var m = NewMachine();
        m.Io.Out(0xE0, 4, 0x11223344);
        Assert.Equal(0x11223344u, m.Io.In(0xE0, 4));
        m.Io.Out(0xE2, 2, 0xBEEF);                        // bytes 2-3
        Assert.Equal(0xBEEF3344u, m.Io.In(0xE0, 4));
        Assert.Equal(0xBEu, m.Io.In(0xE3, 1));
        Assert.Equal(0xEF33u, m.Io.In(0xE1, 2));
        m.Io.Out(0xE3, 4, 0xAABBCCDD);                    // only byte 3 is inside the register
        Assert.Equal(0xDDEF3344u, m.Io.In(0xE0, 4));
        Assert.Equal(0xDDu, m.Io.In(0xE3, 4));
    }

    [Fact]
    public void Port_0xE8_is_the_same_register_taken_byte_by_byte()
    {
        var m = NewMachine();
        m.Io.Out(0xE8, 4, 0x01020304);
        Assert.Equal(0x01020304u, m.Io.In(0xE0, 4));
        m.Io.Out(0xE8, 1, 0x7F);
        Assert.Equal(0x0102037Fu, m.Io.In(0xE8, 4));
        Assert.Equal(0x037Fu, m.Io.In(0xE8, 2));
        Assert.IsNotType<PcTestdev>(m.Io.DeviceAt(0xE9));  // the debug console
    }

    [Fact]
    public void The_flush_port_changes_nothing_the_guest_can_see()
    {
        var m = NewMachine();
        m.Memory.Write(0x5000, 8, 0x0123456789ABCDEF);
        m.Io.Out(0xE0, 4, 0xCAFE);
        m.Io.Out(0xE4, 4, 0x5000);
        Assert.Equal(0x0123456789ABCDEFul, m.Memory.Read(0x5000, 8));
        Assert.Equal(0xCAFEu, m.Io.In(0xE0, 4));
    }

    [Fact]
    public void A_write_to_0x2000_plus_N_drives_ISA_line_N_into_the_8259()
    {
        var m = NewMachine();
        foreach (var (port, v) in new (ushort, byte)[] { (0x20, 0x11), (0xA0, 0x11), (0x21, 0x20), (0xA1, 0x28), (0x21, 4), (0xA1, 2), (0x21, 1), (0xA1, 1), (0x21, 0), (0xA1, 0) })
            m.Io.Out(port, 1, v);
        m.Io.Out(0x2005, 1, 1);
        Assert.True(m.InterruptLine);
        Assert.Equal(0x25, m.Platform.Acknowledge());
        m.Io.Out(0x2005, 1, 0);
        m.Io.Out(0x20, 1, 0x20);
        m.Io.Out(0x200E, 1, 0x80);                        // any non-zero value raises the line
        Assert.Equal(0x2E, m.Platform.Acknowledge());     // IRQ14 on the slave: vector 0x28 + 6
        m.Io.Out(0xA0, 1, 0x20); m.Io.Out(0x20, 1, 0x20);
        m.Io.Out(0x200B, 4, 0x00000001);                  // one byte per port: line 11 up, lines 12-14 down
        Assert.Equal(0x2B, m.Platform.Acknowledge());
        m.Io.Out(0xA0, 1, 0x20); m.Io.Out(0x20, 1, 0x20);
        m.Io.Out(0x200E, 1, 1);                           // line 14 was lowered by the wide write: a new edge
        Assert.Equal(0x2E, m.Platform.Acknowledge());
    }

    [Fact]
    public void Lines_16_to_23_reach_the_IO_APIC_only()
    {
        var m = NewMachine();
        m.Io.Out(0x21, 1, 0xFF); m.Io.Out(0xA1, 1, 0xFF);
        m.Memory.Write(0xFEE000F0, 4, 0x1FF);                       // APIC software-enabled
        m.Memory.Write(IoApic.DefaultBase, 4, 0x10 + 2 * 17);      // redirection entry 17, low half
        m.Memory.Write(IoApic.DefaultBase + 0x10, 4, 0x41);        // vector 0x41, fixed, edge, unmasked
        m.Io.Out(0x2011, 1, 1);
        Assert.True(m.InterruptLine);
        Assert.Equal(0x41, m.Platform.Acknowledge());
    }

    [Fact]
    public void The_device_memory_keeps_what_is_written_at_every_width()
    {
        var m = NewMachine();
        m.Memory.Write(PcTestdev.IomemBase + 8, 8, 0x1122334455667788);
        Assert.Equal(0x55667788ul, m.Memory.Read(PcTestdev.IomemBase + 8, 4));
        Assert.Equal(0x4455ul, m.Memory.Read(PcTestdev.IomemBase + 11, 2));
        m.Memory.Write(PcTestdev.IomemBase + 0xFFFF, 1, 0x5A);
        Assert.Equal(0x5Aul, m.Memory.Read(PcTestdev.IomemBase + 0xFFFF, 1));
        Assert.Equal(0xFFFFFFFFFFFFFFFFul, m.Memory.Read(PcTestdev.IomemBase + 0x10000, 8));   // past the device: open bus
    }

    private const ulong Mmio = PcTestdev.IomemBase;

    /// <summary>
    /// Instructions with a memory operand in the device page: read-modify-write ALU, string compare, BT*,
    /// SSE loads, and port I/O of every width and with OUTS. The results are what the same instructions
    /// give on RAM (SDM vol. 2), which QEMU with -device pc-testdev prints too.
    /// </summary>
    public static byte[] MmioKernel() => TestKernel.Build(a =>
    {
        a.mov(rax, cr4); a.or(rax, 0x600); a.mov(cr4, rax);   // CR4.OSFXSR/OSXMMEXCPT: SSE allowed
        a.mov(rsi, Mmio);
        a.mov(rax, 0x0123456789ABCDEF);
        a.mov(__qword_ptr[rsi], rax);
        a.mov(rax, __qword_ptr[rsi]); Show(a, "mov", 16);
        a.mov(__dword_ptr[rsi + 8], 0x1234);
        a.mov(ecx, 0x8001); a.or(__dword_ptr[rsi + 8], ecx);
        a.add(__dword_ptr[rsi + 8], 2);
        a.mov(eax, __dword_ptr[rsi + 8]); Show(a, "or+add", 8);
        a.inc(__byte_ptr[rsi + 8]); a.neg(__word_ptr[rsi + 10]);
        a.mov(eax, __dword_ptr[rsi + 8]); Show(a, "inc+neg", 8);
        a.bts(__dword_ptr[rsi + 8], 31); a.setc(al); a.movzx(eax, al); Show(a, "bts cf", 1);
        a.mov(eax, __dword_ptr[rsi + 8]); Show(a, "bts", 8);
        a.mov(eax, 7); a.xchg(__dword_ptr[rsi + 12], eax);
        a.mov(eax, __dword_ptr[rsi + 12]); Show(a, "xchg", 8);
        a.mov(eax, 7); a.mov(ecx, 9); a.cmpxchg(__dword_ptr[rsi + 12], ecx);
        a.mov(eax, __dword_ptr[rsi + 12]); Show(a, "cmpxchg", 8);
        a.imul(eax, __dword_ptr[rsi + 12], 3); Show(a, "imul", 8);
        a.movups(xmm0, __xmmword_ptr[rsi]); a.movq(rax, xmm0); Show(a, "movups", 16);
        // REPE CMPSB between RAM (the variable page) and the device page: stops at the first difference.
        a.mov(rdi, Var(0)); a.mov(rax, 0x0123456789ABCDEF); a.mov(__qword_ptr[rdi], rax); a.mov(__byte_ptr[rdi + 5], 0);
        a.mov(rsi, Mmio); a.mov(ecx, 8); a.cld(); a.repe.cmpsb();
        a.mov(eax, ecx); Show(a, "repe cmpsb rcx", 2);
        // Port I/O through the data register.
        a.mov(eax, 0xA1B2C3D4); a.@out(0xE0, eax);
        a.mov(ax, 0x5566); a.@out(0xE2, ax);
        a.@in(eax, 0xE0); Show(a, "in 0xe0", 8);
        a.@in(al, 0xE3); a.movzx(eax, al); Show(a, "in 0xe3", 2);
        a.mov(rsi, Var(0)); a.mov(dx, 0xE0); a.mov(ecx, 3); a.rep.outsb();   // the last byte written stays in byte 0
        a.@in(eax, 0xE0); Show(a, "outsb", 8);
        TestKernel.Exit(a, 0);
    }, mapFourGiB: true);

    private const string MmioTranscript =
        "mov=0123456789abcdef\n" +
        "or+add=00009237\n" +
        "inc+neg=00009238\n" +
        "bts cf=0\n" +
        "bts=80009238\n" +
        "xchg=00000007\n" +
        "cmpxchg=00000009\n" +
        "imul=0000001b\n" +
        "movups=0123456789abcdef\n" +
        "repe cmpsb rcx=02\n" +
        "in 0xe0=5566c3d4\n" +
        "in 0xe3=55\n" +
        "outsb=5566c3ab\n";

    [Fact]
    public void Instructions_with_operands_in_the_device_memory_and_ports_give_the_results_they_give_on_RAM()
    {
        Assert.Equal(MmioTranscript, PlatformRun.Console(MmioKernel()));
    }

    [QemuFact]
    public void The_pc_testdev_kernel_prints_the_same_transcript_under_QEMU()
    {
        Assert.Equal(MmioTranscript, Qemu.Run(MmioKernel(), "-device pc-testdev"));
    }
}
