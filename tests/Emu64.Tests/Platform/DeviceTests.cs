using Emu64.Tests.Support;
using static Iced.Intel.AssemblerRegisters;
using static Emu64.Tests.Platform.Guest;

namespace Emu64.Tests.Platform;

/// <summary>Register-level behaviour of the 8259 pair and the 8254, driven through the I/O bus.</summary>
[Trait("Category", "Platform")]
public class DeviceTests
{
    private static Machine NewMachine(ulong tps = 1_000_000_000) => new(new MachineOptions { Output = Stream.Null, TicksPerSecond = tps });

    private static void InitPicPorts(Machine m, byte masterMask, byte slaveMask, byte icw4 = 0x01)
    {
        foreach (var (port, v) in new (ushort, byte)[] { (0x20, 0x11), (0xA0, 0x11), (0x21, 0x20), (0xA1, 0x28), (0x21, 4), (0xA1, 2), (0x21, icw4), (0xA1, icw4), (0x21, masterMask), (0xA1, slaveMask) })
            m.Io.Out(port, 1, v);
    }

    [Fact]
    public void The_8259_delivers_by_priority_holds_lower_requests_until_EOI_and_honours_the_mask()
    {
        var m = NewMachine();
        InitPicPorts(m, 0x00, 0x00);
        var p = m.Platform;
        p.SetIrq(3, true); p.SetIrq(1, true);
        Assert.True(m.InterruptLine);
        Assert.Equal(0x21, p.Acknowledge());              // IRQ1 beats IRQ3
        Assert.False(m.InterruptLine);                     // IRQ3 waits behind IRQ1 in service
        m.Io.Out(0x20, 1, 0x20);                          // EOI
        Assert.Equal(0x23, p.Acknowledge());
        m.Io.Out(0x20, 1, 0x63);                          // specific EOI for IRQ3
        p.SetIrq(5, true);
        m.Io.Out(0x21, 1, 0x20);                          // mask IRQ5
        Assert.False(m.InterruptLine);
        m.Io.Out(0x21, 1, 0x00);
        Assert.True(m.InterruptLine);
        m.Io.Out(0x20, 1, 0x0A);                          // OCW3: read IRR
        Assert.Equal(0x20u, m.Io.In(0x20, 1));            // acknowledged edge requests left the IRR
    }

    [Fact]
    public void Slave_interrupts_cascade_through_IRQ2_and_a_vanished_request_gives_the_spurious_vector()
    {
        var m = NewMachine();
        InitPicPorts(m, 0x00, 0x00);
        var p = m.Platform;
        p.SetIrq(12, true);
        Assert.Equal(0x2C, p.Acknowledge());
        m.Io.Out(0x20, 1, 0x0B);
        Assert.Equal(0x04u, m.Io.In(0x20, 1));            // master ISR: IR2 (the cascade)
        m.Io.Out(0xA0, 1, 0x20); m.Io.Out(0x20, 1, 0x20);
        // An INTA with nothing left to deliver: IRQ7's vector, and no ISR bit set.
        Assert.Equal(0x27, p.Pic.Acknowledge());
        Assert.Equal(0, p.Pic.Master.Isr);
        // Level-triggered IRQ10 (ELCR 0x4D1 bit 2) that drops before the INTA: IRQ15's vector, IR2 in service.
        m.Io.Out(0x4D1, 1, 0x04);
        Assert.Equal(0x04u, m.Io.In(0x4D1, 1));
        p.SetIrq(10, true);
        Assert.True(m.InterruptLine);
        p.Pic.Slave.Irr = 0;                               // the line fell between INTR and INTA
        Assert.Equal(0x2F, p.Pic.Acknowledge());
        Assert.Equal(0x04, p.Pic.Master.Isr);
        Assert.Equal(0, p.Pic.Slave.Isr);
    }

    [Fact]
    public void Level_triggered_inputs_follow_the_line_and_ELCR_keeps_the_fixed_edge_inputs()
    {
        var m = NewMachine();
        InitPicPorts(m, 0x00, 0x00);
        m.Io.Out(0x4D0, 1, 0xFF);
        Assert.Equal(0xF8u, m.Io.In(0x4D0, 1));           // IRQ0-2 are always edge-triggered
        var p = m.Platform;
        p.SetIrq(5, true);
        Assert.Equal(0x25, p.Acknowledge());
        m.Io.Out(0x20, 1, 0x20);
        Assert.True(m.InterruptLine);                      // still asserted: requested again after EOI
        p.SetIrq(5, false);
        Assert.False(m.InterruptLine);
    }

    [Fact]
    public void Auto_EOI_mode_leaves_nothing_in_service()
    {
        var m = NewMachine();
        InitPicPorts(m, 0x00, 0x00, icw4: 0x03);
        m.Platform.SetIrq(4, true);
        Assert.Equal(0x24, m.Platform.Acknowledge());
        Assert.Equal(0, m.Platform.Pic.Master.Isr);
    }

    [Fact]
    public void The_PIT_counts_down_at_1193182_Hz_of_virtual_time_and_latches_a_count()
    {
        var m = NewMachine(tps: 1_193_182);              // one tick per PIT clock
        m.Io.Out(0x43, 1, 0x30);                          // channel 0, LSB then MSB, mode 0
        m.Io.Out(0x40, 1, 0x00); m.Io.Out(0x40, 1, 0x10); // 0x1000
        m.Cpu.Retired += 0x100;
        m.Io.Out(0x43, 1, 0x00);                          // latch channel 0
        m.Cpu.Retired += 0x50;                            // the latched value does not move
        Assert.Equal(0x00u, m.Io.In(0x40, 1));
        Assert.Equal(0x0Fu, m.Io.In(0x40, 1));
        m.Io.Out(0x43, 1, 0xC2);                          // read-back: count and status of channel 0
        Assert.Equal(0x30u, m.Io.In(0x40, 1));            // OUT low (counting), LSB/MSB, mode 0
        Assert.Equal(0xB0u, m.Io.In(0x40, 1));            // 0x1000 - 0x150 = 0x0EB0
        Assert.Equal(0x0Eu, m.Io.In(0x40, 1));
        Assert.Equal((ulong)0x1000, m.Platform.Pit.NextEventAt);
        m.Cpu.Retired = 0x1000;
        m.Platform.Pit.OnTime(m.Now);                     // what the run loop does when the event is due
        Assert.Equal(0x01, m.Platform.Pic.Master.Irr & 1);
    }

    [Fact]
    public void Channel_2_is_gated_by_port_0x61_and_its_output_appears_in_bit_5()
    {
        var m = NewMachine(tps: 1_193_182);
        m.Io.Out(0x43, 1, 0xB0);                          // channel 2, mode 0
        m.Io.Out(0x42, 1, 100); m.Io.Out(0x42, 1, 0);
        m.Cpu.Retired += 500;
        Assert.Equal(0u, m.Io.In(0x61, 1) & 0x21);       // gate off: not counting, OUT low
        m.Io.Out(0x61, 1, 0x01);
        m.Cpu.Retired += 99;
        Assert.Equal(0x01u, m.Io.In(0x61, 1) & 0x21);
        m.Cpu.Retired += 1;
        Assert.Equal(0x21u, m.Io.In(0x61, 1) & 0x21);    // terminal count: OUT high
    }

    /// <summary>Prints, asks for a reset, and (if still running) says so. QEMU acts on the request at the end of a block.</summary>
    private static byte[] ResetKernel(ushort port, byte value) => TestKernel.Build(a =>
    {
        TestKernel.Print(a, "resetting\n");
        Out8(a, port, value);
        Settle(a);
        TestKernel.Print(a, "still here\n");
        TestKernel.Exit(a, 1);
    });

    [Fact]
    public void Resets_through_the_keyboard_controller_and_port_0x92_stop_the_run_and_say_so()
    {
        foreach (var (port, value) in new (ushort, byte)[] { (0x64, 0xFE), (0x92, 0x01) })
        {
            var r = PlatformRun.Emu(ResetKernel(port, value));
            Assert.Equal(StopReason.Reset, r.Reason);
            Assert.Equal("resetting\n", r.Console);
            Assert.Contains(port == 0x64 ? "keyboard controller" : "port 0x92", r.Machine.StopMessage);
        }
    }

    [Fact]
    public void The_fw_cfg_directory_lists_the_e820_map_and_boot_fail_wait_files_sorted_by_name()
    {
        var m = NewMachine();
        byte[] Read(ushort key, int n)
        {
            m.Io.Out(0x510, 2, key);
            var b = new byte[n];
            for (int i = 0; i < n; i++) b[i] = (byte)m.Io.In(0x511, 1);
            return b;
        }
        var dir = Read(0x19, 4 + 2 * 64);
        Assert.Equal(2, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(dir));
        string Name(int i) => System.Text.Encoding.ASCII.GetString(dir, 4 + 64 * i + 8, 56).TrimEnd('\0');
        Assert.Equal(new[] { "etc/boot-fail-wait", "etc/e820" }, new[] { Name(0), Name(1) });
        ushort e820 = System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(dir.AsSpan(4 + 64 + 4));
        var map = Read(e820, 20);
        Assert.Equal(128UL << 20, BitConverter.ToUInt64(map, 8));
        Assert.Equal(1u, BitConverter.ToUInt32(map, 16));
        Assert.Equal(new byte[] { 0, 0 }, Read(0x19, 4 + 2 * 64 + 2)[^2..]);   // past the end: zeros
    }

    [Fact]
    public void A_self_IPI_with_an_illegal_vector_is_not_sent_and_sets_the_error_status()
    {
        var m = NewMachine();
        m.Memory.Write(0xFEE000F0, 4, 0x1FF);
        m.Memory.Write(0xFEE00370, 4, 0xE0);                 // error LVT: vector 0xE0
        m.Memory.Write(0xFEE00300, 4, 0x40005);              // self IPI, vector 5
        m.Memory.Write(0xFEE00280, 4, 0);                    // latch ESR
        Assert.Equal(0x20UL, m.Memory.Read(0xFEE00280, 4));   // send illegal vector
        Assert.Equal(0xE0, m.Platform.Acknowledge());         // the error interrupt, not vector 5
    }

    [QemuFact]
    public void QEMU_with_no_reboot_also_stops_at_both_reset_requests()
    {
        Assert.Equal("resetting\n", Qemu.Run(ResetKernel(0x64, 0xFE)));
        Assert.Equal("resetting\n", Qemu.Run(ResetKernel(0x92, 0x01)));
    }

    [Fact]
    public void A_halted_CPU_whose_only_timer_is_masked_ends_the_run_instead_of_sleeping_forever()
    {
        var image = TestKernel.Build(a =>
        {
            InitPic(a, 0xFF, 0xFF);
            Out8(a, 0x43, 0x34); Out8(a, 0x40, 0x00); Out8(a, 0x40, 0x01);   // 256-clock rate generator, IRQ0 masked
            a.sti();
            a.hlt();
        });
        var r = PlatformRun.Emu(image);
        Assert.Equal(StopReason.HaltedForever, r.Reason);
        Assert.Contains("none reached the CPU", r.Machine.StopMessage);
    }
}
