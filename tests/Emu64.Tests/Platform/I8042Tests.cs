using Emu64.Devices;
using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using static Emu64.Tests.Platform.Guest;

namespace Emu64.Tests.Platform;

/// <summary>
/// The 8042 keyboard controller answering Linux's i8042 probe (drivers/input/serio/i8042.c: flush, self test,
/// CTR read/write, AUX loop and bit-assignment tests) and the atkbd/psmouse identification, compared with QEMU.
/// </summary>
[Trait("Category", "Platform")]
public class I8042Tests
{
    /// <summary>Waits (bounded) for OBF, then reads port 0x60 into AL; prints "--" if nothing arrives.</summary>
    private static void ReadData(Assembler a, string label)
    {
        var wait = a.CreateLabel(); var got = a.CreateLabel(); var done = a.CreateLabel();
        a.mov(r8d, 1_000_000);
        a.Label(ref wait);
        a.@in(al, 0x64);
        a.test(al, 1);
        a.jnz(got);
        a.dec(r8d);
        a.jnz(wait);
        TestKernel.Print(a, label + "=--\n");
        a.jmp(done);
        a.Label(ref got);
        a.xor(eax, eax);
        a.@in(al, 0x60);
        Show(a, label, 2);
        a.Label(ref done);
    }

    private static void Cmd(Assembler a, byte c) { a.mov(al, c); a.@out(0x64, al); }
    private static void Data(Assembler a, byte d) { a.mov(al, d); a.@out(0x60, al); }
    private static void Status(Assembler a, string label) { a.xor(eax, eax); a.@in(al, 0x64); Show(a, label, 2); }

    public static byte[] ProbeKernel() => TestKernel.Build(a =>
    {
        MaskPic(a);
        Status(a, "status");
        Cmd(a, 0x20); ReadData(a, "ctr");
        Cmd(a, 0xAA); ReadData(a, "self test");
        Status(a, "status after test");
        Cmd(a, 0xAB); ReadData(a, "kbd test");
        Cmd(a, 0xA9); ReadData(a, "aux test");
        Cmd(a, 0x60); Data(a, 0x74);                               // Linux: KBDDIS, no interrupts, translation, AUXDIS
        Cmd(a, 0x20); ReadData(a, "ctr after write");
        Cmd(a, 0xD3); Data(a, 0x5A);                               // AUX loop test
        Status(a, "status loop");
        ReadData(a, "loop");
        Cmd(a, 0xA8); Cmd(a, 0x20); ReadData(a, "ctr aux enabled");
        Cmd(a, 0xA7); Cmd(a, 0x20); ReadData(a, "ctr aux disabled");
        Cmd(a, 0xD2); Data(a, 0x33); ReadData(a, "kbd loop");
        Cmd(a, 0x60); Data(a, 0x47);                               // keyboard enabled, interrupts, translation
        Data(a, 0xF2);                                             // keyboard GET ID
        ReadData(a, "kbd ack"); ReadData(a, "kbd id0"); ReadData(a, "kbd id1");
        Data(a, 0xF5); ReadData(a, "kbd disable");
        Data(a, 0xED); ReadData(a, "kbd leds"); Data(a, 0x00); ReadData(a, "kbd leds arg");
        Data(a, 0xEE); ReadData(a, "kbd echo");
        Cmd(a, 0xD4); Data(a, 0xF2);                               // mouse GET ID
        Status(a, "status aux");
        ReadData(a, "aux ack"); ReadData(a, "aux id");
        Cmd(a, 0xD4); Data(a, 0xE9);                               // mouse status request
        ReadData(a, "aux ack"); ReadData(a, "aux st0"); ReadData(a, "aux st1"); ReadData(a, "aux st2");
        Cmd(a, 0xD4); Data(a, 0xF3); ReadData(a, "aux rate ack"); Cmd(a, 0xD4); Data(a, 40); ReadData(a, "aux rate arg ack");
        Cmd(a, 0xD4); Data(a, 0xE9);
        ReadData(a, "aux ack"); ReadData(a, "aux st0"); ReadData(a, "aux st1"); ReadData(a, "aux st2");
        Cmd(a, 0xD4); Data(a, 0xFF);                               // mouse reset
        ReadData(a, "aux ack"); ReadData(a, "aux bat"); ReadData(a, "aux id");
        Status(a, "status end");
        TestKernel.Exit(a, 0);
    });

    private const string Transcript =
        "status=1c\nctr=61\nself test=55\nstatus after test=1c\nkbd test=00\naux test=00\nctr after write=74\n" +
        "status loop=3d\nloop=5a\nctr aux enabled=54\nctr aux disabled=74\nkbd loop=33\n" +
        "kbd ack=fa\nkbd id0=ab\nkbd id1=41\nkbd disable=fa\nkbd leds=fa\nkbd leds arg=fa\nkbd echo=ee\n" +
        "status aux=3d\naux ack=fa\naux id=00\naux ack=fa\naux st0=00\naux st1=02\naux st2=64\n" +
        "aux rate ack=fa\naux rate arg ack=fa\naux ack=fa\naux st0=00\naux st1=02\naux st2=28\n" +
        "aux ack=fa\naux bat=aa\naux id=00\nstatus end=1c\n";

    [Fact]
    public void The_controller_keyboard_and_mouse_answer_Linuxs_probe_at_once()
    {
        Assert.Equal(Transcript, PlatformRun.Console(ProbeKernel()));
    }

    [QemuFact]
    public void The_i8042_probe_prints_the_same_transcript_under_QEMU()
    {
        // QEMU's mouse reports resolution 0 and sample rate 0 before they are set; a PS/2 mouse powers up (and
        // resets) to 4 counts/mm (2) and 100 samples/s, which Emu64's reports.
        var qemuMouse = Transcript.Replace("aux st1=02\naux st2=64\n", "aux st1=00\naux st2=00\n").Replace("aux st1=02\naux st2=28\n", "aux st1=00\naux st2=28\n");
        Assert.Equal(qemuMouse, Qemu.Run(ProbeKernel()));
    }

    [Fact]
    public void A_byte_from_the_aux_port_raises_IRQ12_only_with_AUXINT_and_keyboard_bytes_raise_IRQ1_with_KBDINT()
    {
        var m = new Machine(new MachineOptions { Output = Stream.Null });
        foreach (var (port, v) in new (ushort, byte)[] { (0x20, 0x11), (0xA0, 0x11), (0x21, 0x20), (0xA1, 0x28), (0x21, 4), (0xA1, 2), (0x21, 1), (0xA1, 1), (0x21, 0xF9), (0xA1, 0xEF) })
            m.Io.Out(port, 1, v);                                  // only IRQ1, IRQ12 and the cascade unmasked
        m.Io.Out(0x64, 1, 0x60); m.Io.Out(0x60, 1, 0x00);          // no interrupts
        m.Io.Out(0x64, 1, 0xD3); m.Io.Out(0x60, 1, 0xA5);
        Assert.False(m.InterruptLine);
        Assert.Equal(0xA5u, m.Io.In(0x60, 1));
        m.Io.Out(0x64, 1, 0x60); m.Io.Out(0x60, 1, I8042.AuxInt);
        m.Io.Out(0x64, 1, 0xD3); m.Io.Out(0x60, 1, 0xA5);          // Linux's AUX IRQ delivery test
        Assert.True(m.InterruptLine);
        Assert.Equal(0x2C, m.Platform.Acknowledge());              // IRQ12 on the slave (vector base 0x28)
        Assert.Equal(0xA5u, m.Io.In(0x60, 1));
        m.Io.Out(0xA0, 1, 0x20); m.Io.Out(0x20, 1, 0x20);
        m.Io.Out(0x64, 1, 0x60); m.Io.Out(0x60, 1, I8042.KbdInt);
        m.Io.Out(0x60, 1, 0xF4);                                   // keyboard enable → ACK
        Assert.Equal(0x21, m.Platform.Acknowledge());              // IRQ1
        Assert.Equal(0xFAu, m.Io.In(0x60, 1));
    }

    [Fact]
    public void Every_byte_of_the_keyboard_s_three_byte_GET_ID_reply_raises_its_own_IRQ1_edge()
    {
        // Linux's i8042_interrupt reads one byte per interrupt from an edge-triggered ISA input: reading port 0x60
        // must drop IRQ1 so that the next byte of a reply (ACK, 0xAB, 0x41 translated) raises it again.
        var m = new Machine(new MachineOptions { Output = Stream.Null });
        foreach (var (port, v) in new (ushort, byte)[] { (0x20, 0x11), (0xA0, 0x11), (0x21, 0x20), (0xA1, 0x28), (0x21, 4), (0xA1, 2), (0x21, 1), (0xA1, 1), (0x21, 0xF9), (0xA1, 0xEF) })
            m.Io.Out(port, 1, v);                                  // edge-triggered 8259s, only IRQ1, IRQ12 and the cascade unmasked
        m.Io.Out(0x64, 1, 0x60); m.Io.Out(0x60, 1, I8042.KbdInt | I8042.Xlate);
        m.Io.Out(0x60, 1, 0xF2);                                   // GET ID
        foreach (byte expected in new byte[] { 0xFA, 0xAB, 0x41 })
        {
            Assert.Equal(0x21, m.Platform.Acknowledge());          // IRQ1, once per byte
            Assert.Equal(expected, (byte)m.Io.In(0x60, 1));
            m.Io.Out(0x20, 1, 0x20);                               // EOI
        }
        Assert.Equal(-1, m.Platform.Acknowledge());
    }

    [Fact]
    public void Command_0xFE_pulses_the_reset_line_and_ends_the_run_as_a_reset()
    {
        var m = new Machine(new MachineOptions { Output = Stream.Null });
        m.Io.Out(0x64, 1, 0xFF);                                   // pulse nothing
        Assert.Equal(StopReason.None, m.StopReason);
        m.Io.Out(0x64, 1, 0xFE);
        Assert.Equal(StopReason.Reset, m.StopReason);
        Assert.Contains("0xFE", m.StopMessage);
    }

    [Fact]
    public void The_output_port_drives_A20_like_port_0x92()
    {
        var m = new Machine(new MachineOptions { Output = Stream.Null });
        Assert.True(m.Platform.Ports.A20);
        m.Io.Out(0x64, 1, 0xD1); m.Io.Out(0x60, 1, 0x01);        // reset line high, A20 off
        Assert.False(m.Platform.Ports.A20);
        Assert.Equal(0x00u, m.Io.In(0x92, 1) & 2);
        m.Io.Out(0x64, 1, 0xD0);
        Assert.Equal(0x01u, m.Io.In(0x60, 1));
        m.Io.Out(0x64, 1, 0xD1); m.Io.Out(0x60, 1, 0x03);
        Assert.True(m.Platform.Ports.A20);
        Assert.Equal(StopReason.None, m.StopReason);
    }
}
