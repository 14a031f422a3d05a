using Emu64.Devices;

namespace Emu64.Tests.Platform;

/// <summary>
/// The HPET (IA-PC HPET 1.0a) with QEMU's register values: capabilities, the 100 MHz main counter from guest time
/// (virtual ticks from retired instructions), one-shot and periodic comparators in 64- and 32-bit mode, edge and
/// level interrupts on the routed GSI, the LegacyReplacement route (IRQ0/IRQ8, with the PIT cut off from IRQ0), and
/// the MMIO window on the platform. Device-level tests drive a standalone <see cref="Hpet"/> whose lines are recorded;
/// time moves by setting the retired-instruction count (1 instruction = 1 ns at the default rate: 10 per count).
/// </summary>
[Trait("Category", "Platform")]
public class HpetTests
{
    private sealed class Rig
    {
        public readonly Machine M = new(new MachineOptions { Output = Stream.Null });
        public readonly Hpet H;
        public readonly List<string> Lines = [];
        public Rig() => H = new Hpet(M, (irq, l) => Lines.Add($"isa{irq}{(l ? '+' : '-')}"), (gsi, l) => Lines.Add($"gsi{gsi}{(l ? '+' : '-')}"));

        /// <summary>Moves guest time to instruction <paramref name="retired"/>, running the HPET's events on the way as the run loop does.</summary>
        public void RunTo(ulong retired)
        {
            while (H.NextEventAt <= retired)
            {
                M.Cpu.Retired = H.NextEventAt;
                H.OnTime(M.Now);
            }
            M.Cpu.Retired = retired;
        }

        public ulong R(ulong off) => H.Read(off, 8);
        public void W(ulong off, ulong v) => H.Write(off, 8, v);
    }

    [Fact]
    public void The_registers_read_QEMU_values_after_reset()
    {
        var r = new Rig();
        Assert.Equal(0x0098_9680_8086_A201UL, r.R(0x000));               // 10 ns period, 8086, LEG_RT, 64-bit, 3 timers, rev 1
        Assert.Equal(0x8086_A201UL, r.H.Read(0x000, 4));
        Assert.Equal(0x0098_9680UL, r.H.Read(0x004, 4));
        Assert.Equal(0UL, r.R(0x010));
        Assert.Equal(0UL, r.R(0x020));
        Assert.Equal(0UL, r.R(0x0F0));
        for (ulong n = 0; n < 3; n++)
        {
            Assert.Equal(0x0000_0004_0000_0030UL, r.R(0x100 + 0x20 * n)); // route cap GSI 2; periodic and 64-bit capable
            Assert.Equal(ulong.MaxValue, r.R(0x108 + 0x20 * n));
        }
        r.W(0x000, 0);                                                     // read-only
        Assert.Equal(Hpet.Capabilities, r.R(0x000));
    }

    [Fact]
    public void The_main_counter_runs_at_100_MHz_of_guest_time_only_while_enabled()
    {
        var r = new Rig();
        r.RunTo(1000);
        Assert.Equal(0UL, r.R(0xF0));                                      // halted
        r.W(0x10, Hpet.CfgEnable);
        r.RunTo(1000 + 12_345);
        Assert.Equal(1234UL, r.R(0xF0));                                   // ⌊12345 ns / 10 ns⌋ (1 instruction = 1 ns)
        Assert.Equal(1234UL, r.H.Read(0xF0, 4));
        r.W(0x10, 0);
        r.RunTo(100_000);
        Assert.Equal(1234UL, r.R(0xF0));                                   // frozen
        r.W(0xF0, 0x1_0000_0000);                                          // writable while halted
        r.W(0x10, Hpet.CfgEnable);
        r.RunTo(100_000 + 50);
        Assert.Equal(0x1_0000_0005UL, r.R(0xF0));
    }

    [Fact]
    public void A_one_shot_comparator_fires_once_as_an_edge_on_its_routed_GSI()
    {
        var r = new Rig();
        r.W(0x100, Hpet.TnIntEnable | (2 << 9));                           // edge, route GSI 2
        r.W(0x108, 500);
        r.W(0x10, Hpet.CfgEnable);
        r.RunTo(4990);
        Assert.Empty(r.Lines);                                             // count 499
        r.RunTo(5000);
        Assert.Equal(["gsi2+", "gsi2-"], r.Lines);                          // count 500: the match
        r.RunTo(1_000_000);
        Assert.Equal(2, r.Lines.Count);                                    // once
        Assert.Equal(0UL, r.R(0x20));                                      // edge mode sets no status
    }

    [Fact]
    public void A_periodic_timer_adds_its_period_to_the_comparator_at_each_match()
    {
        var r = new Rig();
        r.W(0x100, Hpet.TnIntEnable | Hpet.TnPeriodic | Hpet.TnValSet | (2 << 9));
        r.W(0x108, 1000);                                                  // VAL_SET: comparator and period
        r.W(0x108, 300);                                                   // then the period alone
        Assert.Equal(1000UL, r.R(0x108));
        Assert.Equal(0UL, r.R(0x100) & Hpet.TnValSet);                     // VAL_SET clears itself
        r.W(0x10, Hpet.CfgEnable);
        r.RunTo(10_000);
        Assert.Equal(2, r.Lines.Count);                                    // count 1000
        Assert.Equal(1300UL, r.R(0x108));
        r.RunTo(18_990);                                                   // count 1899: matches at 1300 and 1600
        Assert.Equal(6, r.Lines.Count);
        Assert.Equal(1900UL, r.R(0x108));
        r.RunTo(19_000);                                                   // count 1900: the next
        Assert.Equal(8, r.Lines.Count);
        Assert.Equal(2200UL, r.R(0x108));
    }

    [Fact]
    public void A_level_triggered_timer_sets_its_status_bit_and_holds_the_line_until_software_clears_it()
    {
        var r = new Rig();
        r.W(0x140, Hpet.TnIntEnable | Hpet.TnLevel | (2 << 9));            // timer 2
        r.W(0x148, 10);
        r.W(0x10, Hpet.CfgEnable);
        r.RunTo(200);
        Assert.Equal(["gsi2+"], r.Lines);
        Assert.Equal(4UL, r.R(0x20));
        r.W(0x20, 1);                                                      // another bit: nothing
        Assert.Equal(4UL, r.R(0x20));
        r.W(0x20, 4);
        Assert.Equal(0UL, r.R(0x20));
        Assert.Equal(["gsi2+", "gsi2-"], r.Lines);
    }

    [Fact]
    public void A_32_bit_timer_matches_the_low_half_of_the_counter_and_a_one_shot_also_fires_at_the_wrap()
    {
        var r = new Rig();
        r.W(0xF0, 0xFFFF_FF00);
        r.W(0x100, Hpet.TnIntEnable | Hpet.Tn32 | (2 << 9));
        r.W(0x108, 0x1_0000_0010);                                         // truncated to 32 bits
        Assert.Equal(0x10UL, r.R(0x108));
        r.W(0x10, Hpet.CfgEnable);
        r.RunTo(0x100 * 10 - 10);
        Assert.Empty(r.Lines);
        r.RunTo(0x100 * 10);                                               // the counter's low half wraps to 0
        Assert.Equal(2, r.Lines.Count);
        r.RunTo(0x110 * 10);                                               // then the match at low half 0x10
        Assert.Equal(4, r.Lines.Count);
        r.RunTo(0x10000 * 10);
        Assert.Equal(4, r.Lines.Count);
    }

    [Fact]
    public void LegacyReplacement_routes_timer_0_to_IRQ0_and_timer_1_to_IRQ8()
    {
        var r = new Rig();
        r.W(0x100, Hpet.TnIntEnable | (2 << 9));
        r.W(0x108, 10);
        r.W(0x120, Hpet.TnIntEnable | (2 << 9));
        r.W(0x128, 20);
        r.W(0x10, Hpet.CfgEnable | Hpet.CfgLegacy);
        Assert.True(r.H.LegacyReplacement);
        r.RunTo(1000);
        Assert.Equal(["isa0+", "isa0-", "isa8+", "isa8-"], r.Lines);
    }

    [Fact]
    public void On_the_platform_the_HPET_is_at_0xFED00000_and_in_legacy_mode_it_takes_IRQ0_from_the_PIT()
    {
        var m = new Machine(new MachineOptions { Output = Stream.Null });
        Assert.Equal(Hpet.Capabilities, m.Memory.Read(Hpet.DefaultBase, 8));
        var pic = m.Platform.Pic.Master;
        // The PIT's channel 0 in mode 2 with a short count: its edges reach IRQ0 of the 8259.
        m.Io.Out(0x43, 1, 0x34); m.Io.Out(0x40, 1, 100); m.Io.Out(0x40, 1, 0);
        var pit = m.Platform.Pit;
        m.Cpu.Retired = pit.NextEventAt;
        pit.OnTime(m.Now);
        Assert.NotEqual(0, pic.Irr & 1);
        pic.Irr = 0;
        // LegacyReplacement: the PIT's edge no longer reaches IRQ0; the HPET's timer 0 does.
        m.Memory.Write(Hpet.DefaultBase + 0x10, 8, Hpet.CfgLegacy);
        m.Cpu.Retired = pit.NextEventAt;
        pit.OnTime(m.Now);
        Assert.Equal(0, pic.Irr & 1);
        m.Memory.Write(Hpet.DefaultBase + 0x100, 8, Hpet.TnIntEnable);
        ulong count = m.Memory.Read(Hpet.DefaultBase + 0xF0, 8);
        m.Memory.Write(Hpet.DefaultBase + 0x108, 8, count + 5);
        m.Memory.Write(Hpet.DefaultBase + 0x10, 8, Hpet.CfgLegacy | Hpet.CfgEnable);
        var hpet = m.Platform.Hpet;
        m.Cpu.Retired = hpet.NextEventAt;
        hpet.OnTime(m.Now);
        Assert.NotEqual(0, pic.Irr & 1);
    }
}
