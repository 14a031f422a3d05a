using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using static Emu64.Tests.Platform.Guest;

namespace Emu64.Tests.Platform;

[Trait("Category", "Platform")]
public class SerialTests
{
    /// <summary>
    /// An interrupt-driven echo: COM1's received-data interrupt on IRQ4 through the 8259 (vector 0x24).
    /// The handler drains the receiver while LSR.DR is set and echoes each byte in upper case; the main
    /// loop sleeps in HLT until a newline has been echoed. The first IIR seen in the handler is printed.
    /// </summary>
    public static byte[] EchoKernel() => TestKernel.Build(a =>
    {
        var handler = a.CreateLabel();
        var drain = a.CreateLabel();
        var done = a.CreateLabel();
        var lower = a.CreateLabel();
        var wait = a.CreateLabel();
        var woke = a.CreateLabel();
        LoadIdt(a);
        Gate(a, 0x24, handler);
        InitPic(a, 0xEF, 0xFF);                         // only IRQ4
        Out8(a, 0x3FB, 0x03);                           // 8N1
        Out8(a, 0x3FA, 0x00);                           // no FIFO: one holding byte
        TestKernel.Print(a, "type a line:\n");
        Out8(a, 0x3F9, 0x01);                           // received-data interrupt on
        a.sti();
        a.Label(ref wait);
        a.mov(rax, Var(0));
        a.cmp(__qword_ptr[rax], 0);
        a.jne(woke);
        a.hlt();
        a.jmp(wait);
        a.Label(ref woke);
        a.cli();
        a.mov(rax, Var(1)); a.mov(rax, __qword_ptr[rax]); Show(a, "first iir", 2);
        a.mov(rax, Var(2)); a.mov(rax, __qword_ptr[rax]); Show(a, "bytes", 2);
        TestKernel.Exit(a, 0);

        a.Label(ref handler);
        PushAll(a);
        a.mov(rdi, Var(1));
        a.cmp(__qword_ptr[rdi], 0);
        var seen = a.CreateLabel();
        a.jne(seen);
        In8(a, 0x3FA);
        a.mov(rdi, Var(1)); a.mov(__qword_ptr[rdi], rax);
        a.Label(ref seen);
        a.nop();
        a.Label(ref drain);
        In8(a, 0x3FD);
        a.test(al, 1);
        a.jz(done);
        In8(a, 0x3F8);
        a.mov(rdi, Var(2)); a.inc(__qword_ptr[rdi]);
        a.cmp(al, (byte)'a'); a.jb(lower);
        a.cmp(al, (byte)'z'); a.ja(lower);
        a.sub(al, 0x20);
        a.Label(ref lower);
        a.mov(dx, TestKernel.Com1);
        a.@out(dx, al);
        a.cmp(al, (byte)'\n');
        a.jne(drain);
        a.mov(rdi, Var(0)); a.mov(__qword_ptr[rdi], 1);
        a.jmp(drain);
        a.Label(ref done);
        Out8(a, 0x20, 0x20);
        PopAll(a);
        a.iretq();
    });

    private const string Input = "hello, qemu\n";
    private const string EchoTranscript = "type a line:\nHELLO, QEMU\nfirst iir=04\nbytes=0c\n";

    [Fact]
    public void An_interrupt_driven_kernel_echoes_serial_input()
    {
        Assert.Equal(EchoTranscript, PlatformRun.Console(EchoKernel(), input: Input));
    }

    [QemuFact]
    public void The_echo_kernel_prints_the_same_transcript_under_QEMU_with_the_same_input()
    {
        Assert.Equal(EchoTranscript, Qemu.Run(EchoKernel(), input: Input));
    }

    [Fact]
    public void Without_input_the_echo_kernel_sleeps_until_nothing_can_wake_it()
    {
        var r = PlatformRun.Emu(EchoKernel());
        Assert.Equal(StopReason.HaltedForever, r.Reason);
        Assert.Equal("type a line:\n", r.Console);
    }

    [Fact]
    public void The_UART_reports_THR_empty_once_per_transmit_and_its_FIFO_holds_sixteen_bytes()
    {
        var m = new Machine(new MachineOptions { Output = Stream.Null });
        var u = m.Com1;
        u.Out(0x3F9, 1, 0x02);
        Assert.Equal(0x02u, u.In(0x3FA, 1));               // THRE pending
        Assert.Equal(0x01u, u.In(0x3FA, 1));               // reading IIR acknowledged it
        u.Out(0x3F8, 1, (byte)'x');
        Assert.Equal(0x02u, u.In(0x3FA, 1));
        u.Out(0x3F9, 1, 0x01);
        u.Out(0x3FA, 1, 0xC1);                              // FIFO on, trigger level 14
        u.Receive(new byte[20]);
        Assert.Equal(0xC4u, u.In(0x3FA, 1));               // 16 bytes ≥ 14: received data available
        for (int i = 0; i < 20; i++) { Assert.Equal(1u, u.In(0x3FD, 1) & 1); u.In(0x3F8, 1); }
        Assert.Equal(0u, u.In(0x3FD, 1) & 1);
        Assert.Equal(0xC1u, u.In(0x3FA, 1));
    }
}
