using Emu64.Cpu;
using Emu64.Devices;
using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using Seg = Emu64.Cpu.Seg;

namespace Emu64.Tests.Platform;

/// <summary>
/// ACPI S3, suspend to RAM (AcpiSleep.cs): the RTC's interrupts as the fixed RTC wake event (MC146818 register C,
/// IRQ8, PM1_STS.RTC_STS), the sleep on SLP_TYP = 1 with SLP_EN, guest time skipped to the wake event, and the resume
/// at the FACS waking vector from the processor's reset state with WAK_STS set and RAM kept.
/// </summary>
[Trait("Category", "Platform")]
public class AcpiSleepTests
{
    private const ushort Pm1Sts = 0x600, Pm1En = 0x602, Pm1Cnt = 0x604;
    private const ushort SleepS3 = 0x2000 | (AcpiPm.SlpTypS3 << 10);   // SLP_EN | SLP_TYP 1

    private static Machine NewMachine() => new(new MachineOptions { Output = Stream.Null });

    private static byte Rtc(Machine m, byte reg) { m.Io.Out(0x70, 1, reg); return (byte)m.Io.In(0x71, 1); }
    private static void Rtc(Machine m, byte reg, byte v) { m.Io.Out(0x70, 1, reg); m.Io.Out(0x71, 1, v); }

    /// <summary>An RTC alarm at hh:mm:ss = <paramref name="h"/>:<paramref name="min"/>:<paramref name="s"/> (BCD; 0xC0 = any) with AIE, flags cleared.</summary>
    private static void ArmAlarm(Machine m, byte h, byte min, byte s)
    {
        Rtc(m, 0x0C);
        Rtc(m, 0x01, s); Rtc(m, 0x03, min); Rtc(m, 0x05, h);
        Rtc(m, 0x0B, (byte)(Rtc(m, 0x0B) | Cmos.RegB_Aie));
    }

    [Fact]
    public void The_DSDT_offers_S3_with_SLP_TYP_1_before_S5()
    {
        var dsdt = AcpiTables.Dsdt();
        // Name (\_S3_, Package (4) { One, One, Zero, Zero }) then Name (\_S5_, Package (4) { Zero, Zero, Zero, Zero })
        byte[] s3 = [0x08, (byte)'\\', (byte)'_', (byte)'S', (byte)'3', (byte)'_', 0x12, 0x06, 0x04, 0x01, 0x01, 0x00, 0x00];
        byte[] s5 = [0x08, (byte)'\\', (byte)'_', (byte)'S', (byte)'5', (byte)'_', 0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00];
        Assert.Equal([.. s3, .. s5], dsdt[36..(36 + 26)]);
    }

    [Fact]
    public void The_FACS_at_its_fixed_address_has_version_2_no_64_bit_wake_and_zero_waking_vectors()
    {
        var m = NewMachine();
        var f = new byte[64];
        m.Memory.ReadBytes(AcpiTables.FacsAddress, f);
        Assert.Equal("FACS"u8.ToArray(), f[0..4]);
        Assert.Equal(2, f[AcpiTables.FacsVersion]);
        Assert.Equal(0u, BitConverter.ToUInt32(f, AcpiTables.FacsFlags));          // no S4BIOS_F, no 64BIT_WAKE_SUPPORTED_F
        Assert.Equal(0u, BitConverter.ToUInt32(f, AcpiTables.FacsWakingVector));
        Assert.Equal(0UL, BitConverter.ToUInt64(f, AcpiTables.FacsXWakingVector));
        ulong rsdt = m.Memory.Read(AcpiTables.RsdpAddress + 16, 4), fadt = m.Memory.Read(rsdt + 36, 4);   // the RSDT's first entry
        Assert.Equal(AcpiTables.FacsAddress, m.Memory.Read(fadt + 36, 4));        // FIRMWARE_CTRL names it
    }

    [Fact]
    public void The_RTC_update_interrupt_raises_IRQ8_at_the_second_and_reading_register_C_clears_it()
    {
        var m = NewMachine();
        Rtc(m, 0x0C);
        Assert.Equal(ulong.MaxValue, m.Platform.Cmos.NextEventAt);                 // no enable bit: no event
        m.Cpu.Retired = 300_000_000;                                               // 00:00:00.3
        Rtc(m, 0x0B, (byte)(Rtc(m, 0x0B) | Cmos.RegB_Uie));
        Assert.Equal(1_000_000_000UL, m.Platform.Cmos.NextEventAt);                // the update that ends second 0
        m.Cpu.Retired = 1_000_000_000;
        m.Platform.Cmos.OnTime(m.Now);
        Assert.Equal(1, m.Platform.Pic.Slave.Irr & 1);                             // IRQ8's edge latched (masked or not)
        // PF too: register A's rate (RS = 6, 1024 Hz) sets it whatever PIE says; IRQF follows UF and UIE only.
        Assert.Equal(Cmos.RegC_Irqf | Cmos.RegC_Pf | Cmos.RegC_Uf, Rtc(m, 0x0C));
        Assert.Equal(0, Rtc(m, 0x0C));                                             // read clears
        Assert.Equal(2_000_000_000UL, m.Platform.Cmos.NextEventAt);
        Assert.Equal(AcpiPm.RtcSts, (ushort)(m.Io.In(Pm1Sts, 2) & AcpiPm.RtcSts)); // the RTC's interrupt is the fixed RTC event
    }

    [Fact]
    public void An_alarm_sets_AF_at_the_matching_second_and_the_RTC_interrupt_sets_PM1_RTC_STS()
    {
        var m = NewMachine();
        ArmAlarm(m, 0x00, 0x01, 0x30);                                            // 00:01:30
        Assert.Equal(90_000_000_000UL, m.Platform.Cmos.NextEventAt);
        m.Cpu.Retired = 89_999_999_999;
        Assert.Equal(Cmos.RegC_Pf | Cmos.RegC_Uf, Rtc(m, 0x0C));                   // updates and periodic ticks, no alarm yet
        m.Cpu.Retired = 90_000_000_000;
        m.Platform.Cmos.OnTime(m.Now);
        Assert.Equal(AcpiPm.RtcSts, (ushort)(m.Io.In(Pm1Sts, 2) & AcpiPm.RtcSts));
        Assert.Equal(Cmos.RegC_Irqf | Cmos.RegC_Af | Cmos.RegC_Uf, Rtc(m, 0x0C));   // 1 ns after the last read: no periodic tick
        m.Io.Out(Pm1Sts, 2, AcpiPm.RtcSts);                                        // write 1 to clear
        Assert.Equal(0u, m.Io.In(Pm1Sts, 2) & AcpiPm.RtcSts);
        Assert.Equal(90_000_000_000UL + 86_400_000_000_000UL, m.Platform.Cmos.NextEventAt);   // the same time tomorrow
    }

    [Fact]
    public void S3_sleeps_until_the_RTC_alarm_then_resumes_in_real_mode_at_the_waking_vector_with_WAK_STS_and_RAM_kept()
    {
        var m = NewMachine();
        m.Memory.Write(0x7200, 2, 0xBEEF);
        m.Memory.Write(AcpiTables.FacsAddress + AcpiTables.FacsWakingVector, 4, 0x12345);
        m.Cpu.Retired = 1_500_000_000;                                             // 00:00:01.5
        ArmAlarm(m, 0xC0, 0xC0, 0x05);                                             // at second 5 of any minute
        m.Io.Out(Pm1En, 2, AcpiPm.RtcEn);
        m.Io.Out(Pm1Cnt, 2, SleepS3);
        Assert.Equal(StopReason.None, m.StopReason);
        Assert.Equal(5_000_000_000UL, m.Now);                                      // woke exactly at 00:00:05
        Assert.Equal(1UL, m.SleepCount);
        Assert.Equal(3_500_000_000UL, m.SleptTicks);
        // WAK_STS and RTC_STS; TMR_STS too, as the PM timer's bit 23 changed (at 2.34 s) and nobody cleared it.
        Assert.Equal(AcpiPm.WakSts | AcpiPm.RtcSts | AcpiPm.TmrSts, (ushort)m.Io.In(Pm1Sts, 2));
        var cpu = m.Cpu;
        Assert.Equal(CpuMode.Real, cpu.Mode);
        Assert.Equal((ushort)0x1234, cpu.Segs[Seg.CS].Selector);                   // ACPI: 0x12345 → 1234:0005
        Assert.Equal(0x12340UL, cpu.Segs[Seg.CS].Base);
        Assert.Equal(0x5UL, cpu.Rip);
        Assert.Equal(0x60000010UL, cpu.CR0);                                       // the reset state: CD, NW, ET
        Assert.Equal(0UL, cpu.EFER);
        Assert.Equal(2UL, cpu.Rflags);
        Assert.Equal(0x000506E3UL, cpu.R[Reg.RDX]);                                // the processor signature
        Assert.Equal(0xFEE00900UL, cpu.ApicBase);
        Assert.True(m.Platform.Ports.A20);
        Assert.Equal(0xBEEFUL, m.Memory.Read(0x7200, 2));                          // RAM kept
        Assert.Equal("real mode at 1234:0005", m.LastWakeEntry);
    }

    [Fact]
    public void A_nonzero_X_waking_vector_is_entered_in_flat_32_bit_protected_mode_with_paging_off()
    {
        var m = NewMachine();
        m.Memory.Write(AcpiTables.FacsAddress + AcpiTables.FacsWakingVector, 4, 0x9000);
        m.Memory.Write(AcpiTables.FacsAddress + AcpiTables.FacsXWakingVector, 8, 0x0020_0000);
        ArmAlarm(m, 0xC0, 0xC0, 0xC0);
        m.Io.Out(Pm1En, 2, AcpiPm.RtcEn);
        m.Io.Out(Pm1Cnt, 2, SleepS3);
        Assert.Equal(1_000_000_000UL, m.Now);                                      // "any" matches at the next update
        Assert.Equal(CpuMode.Protected32, m.Cpu.Mode);
        Assert.Equal(0x0020_0000UL, m.Cpu.Rip);
        Assert.Equal(0UL, m.Cpu.Segs[Seg.CS].Base);
        Assert.Equal(0xFFFFFFFFu, m.Cpu.Segs[Seg.CS].Limit);
        Assert.False(m.Cpu.PagingOn);
        Assert.False(m.Cpu.If);
    }

    [Fact]
    public void S3_with_no_enabled_wake_event_ends_the_run_with_a_message()
    {
        var m = NewMachine();
        ArmAlarm(m, 0xC0, 0xC0, 0xC0);                                            // an alarm, but RTC_EN is clear
        m.Io.Out(Pm1Cnt, 2, SleepS3);
        Assert.Equal(StopReason.HaltedForever, m.StopReason);
        Assert.Contains("RTC_EN is clear", m.StopMessage);
        Assert.Equal(0UL, m.Now);
    }

    [Fact]
    public void An_enabled_wake_event_already_pending_ends_the_sleep_at_once()
    {
        var m = NewMachine();
        m.Memory.Write(AcpiTables.FacsAddress + AcpiTables.FacsWakingVector, 4, 0x7000);
        ArmAlarm(m, 0xC0, 0xC0, 0xC0);
        m.Cpu.Retired = 1_000_000_000;
        m.Platform.Cmos.OnTime(m.Now);                                             // the alarm: RTC_STS, not cleared
        m.Cpu.Retired = 1_200_000_000;
        m.Io.Out(Pm1En, 2, AcpiPm.RtcEn);
        m.Io.Out(Pm1Cnt, 2, SleepS3);
        Assert.Equal(1_200_000_000UL, m.Now);
        Assert.Equal(0UL, m.SleptTicks);
        Assert.Equal(1UL, m.SleepCount);
        Assert.Equal((ushort)0x0700, m.Cpu.Segs[Seg.CS].Selector);
    }

    [Fact]
    public void A_wake_without_any_waking_vector_is_reported_as_a_reset()
    {
        var m = NewMachine();
        ArmAlarm(m, 0xC0, 0xC0, 0xC0);
        m.Io.Out(Pm1En, 2, AcpiPm.RtcEn);
        m.Io.Out(Pm1Cnt, 2, SleepS3);
        Assert.Equal(StopReason.Reset, m.StopReason);
        Assert.Contains("no waking vector", m.StopMessage);
    }

    [Fact]
    public void The_chipset_loses_its_programming_in_S3_the_RTC_keeps_its_time()
    {
        var m = NewMachine();
        m.Io.Out(0x43, 1, 0x34); m.Io.Out(0x40, 1, 0x00); m.Io.Out(0x40, 1, 0x10);   // PIT channel 0 periodic
        Assert.NotEqual(ulong.MaxValue, m.Platform.Pit.NextEventAt);
        m.Io.Out(0x21, 1, 0x00);                                                   // unmask the master 8259
        m.Memory.Write(AcpiTables.FacsAddress + AcpiTables.FacsWakingVector, 4, 0x7000);
        ArmAlarm(m, 0xC0, 0xC0, 0x03);
        m.Io.Out(Pm1En, 2, AcpiPm.RtcEn);
        m.Io.Out(Pm1Cnt, 2, SleepS3);
        Assert.Equal(3_000_000_000UL, m.Now);
        Assert.Equal(ulong.MaxValue, m.Platform.Pit.NextEventAt);                  // the 8254 stopped counting
        Assert.Equal(0xFB, m.Platform.Pic.Master.Imr);                             // as the machine starts
        Assert.Equal(0x03, Rtc(m, 0x00));                                          // the RTC ran on: 00:00:03
    }

    /// <summary>
    /// A 64-bit kernel that suspends to RAM the way kvm-unit-tests' s3 test does: real-mode resume code at 0x7003, the
    /// FACS waking vector, PM1_EN.RTC_EN, an RTC alarm at second 2, then SLP_TYP 1 with SLP_EN. The resume code stores
    /// CS, PM1_STS and a word the kernel left in RAM at 0x7100, then exits through isa-debug-exit with 0x21.
    /// </summary>
    private static byte[] SuspendKernel() => TestKernel.Build(a =>
    {
        byte[] resume =
        [
            0x8C, 0xC8,                 // mov ax, cs
            0xA3, 0x00, 0x71,           // mov [0x7100], ax
            0xBA, 0x00, 0x06,           // mov dx, 0x600
            0xED,                       // in ax, dx           (PM1_STS)
            0xA3, 0x02, 0x71,           // mov [0x7102], ax
            0xA1, 0x00, 0x72,           // mov ax, [0x7200]
            0xA3, 0x04, 0x71,           // mov [0x7104], ax
            0xB0, 0x21,                 // mov al, 0x21
            0xE6, 0xF4,                 // out 0xF4, al
            0xF4,                       // hlt
        ];
        for (int i = 0; i < resume.Length; i++) a.mov(__byte_ptr[0x7003 + i], resume[i]);
        a.mov(__word_ptr[0x7200], 0xBEEF);
        a.mov(__dword_ptr[(int)(AcpiTables.FacsAddress + AcpiTables.FacsWakingVector)], 0x7003);
        a.mov(dx, Pm1En); a.mov(ax, AcpiPm.RtcEn); a.@out(dx, ax);
        void Cmos(byte reg, byte v) { a.mov(al, reg); a.@out(0x70, al); a.mov(al, v); a.@out(0x71, al); }
        a.mov(al, 0x0C); a.@out(0x70, al); a.@in(al, 0x71);                       // clear the flags
        Cmos(0x01, 0x02); Cmos(0x03, 0xC0); Cmos(0x05, 0xC0);
        Cmos(0x0B, 0x02 | Cmos_RegB_Aie);
        TestKernel.Print(a, "sleeping\n");
        a.mov(dx, Pm1Cnt); a.mov(ax, SleepS3); a.@out(dx, ax);
        TestKernel.Print(a, "still awake\n");
        TestKernel.Exit(a, 1);
    });

    private const byte Cmos_RegB_Aie = Cmos.RegB_Aie;

    [Fact]
    public void A_guest_suspends_to_RAM_and_its_real_mode_resume_code_runs_at_the_programmed_second()
    {
        var r = PlatformRun.Emu(SuspendKernel());
        Assert.True(r.Reason == StopReason.DebugExit, Emu64.Cli.Cli.Describe(r.Machine));
        Assert.Equal("sleeping\n", r.Console);
        Assert.Equal((0x21 << 1) | 1, r.ExitCode);
        var m = r.Machine;
        Assert.Equal(2_000_000_000UL, m.LastWakeAt);
        Assert.Equal(m.LastWakeAt + 1 + 9, m.Now);                                 // the sleeping OUT retires, then 9 of the resume code
        Assert.Equal(0x0700UL, m.Memory.Read(0x7100, 2));                          // CS = 0x7003 >> 4
        Assert.Equal((ulong)(AcpiPm.WakSts | AcpiPm.RtcSts), m.Memory.Read(0x7102, 2));
        Assert.Equal(0xBEEFUL, m.Memory.Read(0x7104, 2));
        Assert.Equal(CpuMode.Real, m.Cpu.Mode);
    }
}
