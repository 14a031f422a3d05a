using System.Buffers.Binary;
using System.Text;
using Emu64.Devices;
using Emu64.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Platform;

/// <summary>
/// The ACPI tables (ACPI 6.5 ch. 5) parsed back from guest memory the way Linux finds them, and the
/// power-management block they describe: PM timer, TMR_STS and the SCI, and S5 power-off.
/// </summary>
[Trait("Category", "Platform")]
public class AcpiTests
{
    private static Machine NewMachine(ulong tps = 1_000_000_000) => new(new MachineOptions { Output = Stream.Null, TicksPerSecond = tps });

    private static byte[] Mem(Machine m, ulong pa, int n)
    {
        var b = new byte[n];
        m.Memory.ReadBytes(pa, b);
        return b;
    }

    private static uint U32(byte[] b, int o) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(o));
    private static ulong U64(byte[] b, int o) => BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(o));
    private static ushort U16(byte[] b, int o) => BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(o));
    private static string Ascii(byte[] b, int o, int n) => Encoding.ASCII.GetString(b, o, n);
    private static int Sum(byte[] b, int n) => b.Take(n).Sum(x => x) & 0xFF;

    /// <summary>Linux's scan (acpi_find_root_pointer): 16-byte steps over 0xE0000–0xFFFFF for a signature with a valid checksum.</summary>
    private static ulong FindRsdp(Machine m)
    {
        for (ulong a = 0xE0000; a < 0x100000; a += 16)
        {
            var b = Mem(m, a, 36);
            if (Ascii(b, 0, 8) == "RSD PTR " && Sum(b, 20) == 0) return a;
        }
        return 0;
    }

    /// <summary>Reads a whole table (header length) at <paramref name="pa"/> and checks its checksum and signature.</summary>
    private static byte[] Table(Machine m, ulong pa, string signature)
    {
        uint len = U32(Mem(m, pa + 4, 4), 0);
        var t = Mem(m, pa, (int)len);
        Assert.Equal(signature, Ascii(t, 0, 4));
        Assert.Equal(0, Sum(t, t.Length));
        Assert.Equal("EMU64 ", Ascii(t, 10, 6));
        return t;
    }

    private static (byte[] Rsdp, byte[] Xsdt, Dictionary<string, ulong> Tables) Walk(Machine m)
    {
        ulong rsdp = FindRsdp(m);
        Assert.Equal(AcpiTables.RsdpAddress, rsdp);
        var r = Mem(m, rsdp, 36);
        var xsdt = Table(m, U64(r, 24), "XSDT");
        var tables = new Dictionary<string, ulong>();
        for (int o = 36; o < xsdt.Length; o += 8)
        {
            ulong a = U64(xsdt, o);
            tables.Add(Ascii(Mem(m, a, 4), 0, 4), a);
        }
        return (r, xsdt, tables);
    }

    [Fact]
    public void Linux_finds_a_revision_2_RSDP_with_both_checksums_valid_in_the_BIOS_area()
    {
        var m = NewMachine();
        var (r, _, _) = Walk(m);
        Assert.Equal(0, Sum(r, 20));
        Assert.Equal(0, Sum(r, 36));
        Assert.Equal(2, r[15]);
        Assert.Equal(36u, U32(r, 20));
        Assert.Equal("EMU64 ", Ascii(r, 9, 6));
        Assert.Equal(0UL, AcpiTables.RsdpAddress % 16);
        Assert.InRange(AcpiTables.RsdpAddress, 0xE0000UL, 0xFFFF0UL);
    }

    [Fact]
    public void The_RSDT_and_XSDT_list_the_same_FADT_MADT_and_HPET()
    {
        var m = NewMachine();
        var (r, xsdt, tables) = Walk(m);
        var rsdt = Table(m, U32(r, 16), "RSDT");
        Assert.Equal(1, rsdt[8]);
        Assert.Equal(1, xsdt[8]);
        Assert.Equal(["FACP", "APIC", "HPET"], tables.Keys.ToArray());
        Assert.Equal(36 + 4 * tables.Count, rsdt.Length);
        Assert.Equal(36 + 8 * tables.Count, xsdt.Length);
        for (int i = 0; i < tables.Count; i++) Assert.Equal(tables.Values.ElementAt(i), U32(rsdt, 36 + 4 * i));
        Assert.True(tables.Values.All(a => a >= AcpiTables.Base && a < AcpiTables.End));
    }

    [Fact]
    public void The_FADT_describes_the_PIIX4_PM_block_the_SCI_the_reset_register_FACS_and_DSDT()
    {
        var m = NewMachine();
        var f = Table(m, Walk(m).Tables["FACP"], "FACP");
        Assert.Equal(3, f[8]);                               // revision 3: the ACPI 2.0 layout
        Assert.Equal(244, f.Length);
        uint facs = U32(f, 36), dsdt = U32(f, 40);
        Assert.Equal(0UL, U64(f, 132));                      // X_FIRMWARE_CTRL: zero, FIRMWARE_CTRL is set (ACPI §5.2.9: not both)
        Assert.Equal(dsdt, U64(f, 140));                     // X_DSDT
        Assert.Equal(9, U16(f, 46));                         // SCI_INT
        Assert.Equal(0u, U32(f, 48));                        // no SMI_CMD: always in ACPI mode
        Assert.Equal(0x600u, U32(f, 56));                    // PM1a_EVT_BLK
        Assert.Equal(0x604u, U32(f, 64));                    // PM1a_CNT_BLK
        Assert.Equal(0x608u, U32(f, 76));                    // PM_TMR_BLK
        Assert.Equal(0u, U32(f, 80));                        // no GPE0 block
        Assert.Equal(new byte[] { 4, 2, 0, 4 }, f[88..92]);  // PM1_EVT_LEN, PM1_CNT_LEN, PM2_CNT_LEN, PM_TMR_LEN
        Assert.Equal(0x32, f[108]);                          // CENTURY
        Assert.Equal(3, U16(f, 109));                        // IAPC_BOOT_ARCH: legacy devices, 8042
        uint flags = U32(f, 112);
        Assert.Equal(0x435u, flags);                         // WBINVD, PROC_C1, PWR_BUTTON, SLP_BUTTON, RESET_REG_SUP
        Assert.Equal(0u, flags & (1u << 8));                 // TMR_VAL_EXT clear: 24-bit timer
        Assert.Equal(0u, flags & (1u << 20));                // not hardware-reduced
        Assert.Equal(new byte[] { 1, 8, 0, 1 }, f[116..120]);   // RESET_REG: system I/O, 8 bits, byte access
        Assert.Equal(0xCF9UL, U64(f, 120));
        Assert.Equal(6, f[128]);                             // RESET_VALUE
        Assert.Equal(new byte[] { 1, 32, 0, 0 }, f[148..152]); Assert.Equal(0x600UL, U64(f, 152));   // X_PM1a_EVT_BLK
        Assert.Equal(new byte[] { 1, 16, 0, 0 }, f[172..176]); Assert.Equal(0x604UL, U64(f, 176));   // X_PM1a_CNT_BLK
        Assert.Equal(new byte[] { 1, 32, 0, 0 }, f[208..212]); Assert.Equal(0x608UL, U64(f, 212));   // X_PM_TMR_BLK

        var c = Mem(m, facs, 64);
        Assert.Equal(0UL, facs % 64);
        Assert.Equal("FACS", Ascii(c, 0, 4));
        Assert.Equal(64u, U32(c, 4));
        Table(m, dsdt, "DSDT");
    }

    [Fact]
    public void The_MADT_lists_the_local_APIC_the_IO_APIC_QEMUs_interrupt_overrides_and_the_LINT1_NMI()
    {
        var m = NewMachine();
        var t = Table(m, Walk(m).Tables["APIC"], "APIC");
        Assert.Equal(0xFEE00000u, U32(t, 36));
        Assert.Equal(1u, U32(t, 40));                        // PCAT_COMPAT: 8259s present
        byte[] expected =
        [
            0, 8, 0, 0, 1, 0, 0, 0,                                  // processor local APIC: UID 0, ID 0, enabled
            1, 12, 0, 0, 0x00, 0x00, 0xC0, 0xFE, 0, 0, 0, 0,         // I/O APIC ID 0 at 0xFEC00000, GSI base 0
            2, 10, 0, 0, 2, 0, 0, 0, 0x00, 0x00,                     // ISA IRQ0 → GSI 2
            2, 10, 0, 5, 5, 0, 0, 0, 0x0D, 0x00,                     // IRQ5: level, active high
            2, 10, 0, 9, 9, 0, 0, 0, 0x0D, 0x00,                     // IRQ9 (SCI)
            2, 10, 0, 10, 10, 0, 0, 0, 0x0D, 0x00,
            2, 10, 0, 11, 11, 0, 0, 0, 0x0D, 0x00,
            4, 6, 0xFF, 0, 0, 1,                                     // local APIC NMI: all processors, LINT1
        ];
        Assert.Equal(expected, t[44..]);
    }

    [Fact]
    public void The_DSDT_holds_an_S5_package_with_SLP_TYP_0_after_S3_and_the_PS2_keyboard_and_mouse()
    {
        var m = NewMachine();
        var f = Table(m, Walk(m).Tables["FACP"], "FACP");
        var d = Table(m, U32(f, 40), "DSDT");
        var aml = d[36..];
        // Name (\_S5_, Package (4) { 0, 0, 0, 0 })
        byte[] s5 = [0x08, (byte)'\\', (byte)'_', (byte)'S', (byte)'5', (byte)'_', 0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00];
        Assert.Equal(s5, aml[13..(13 + s5.Length)]);       // after \_S3_ (AcpiSleepTests)
        // _HID EisaId("PNP0303") and EisaId("PNP0F13"): DWords 0x0303D041 and 0x130FD041
        byte[] kbd = [0x08, (byte)'_', (byte)'H', (byte)'I', (byte)'D', 0x0C, 0x41, 0xD0, 0x03, 0x03];
        byte[] mou = [0x08, (byte)'_', (byte)'H', (byte)'I', (byte)'D', 0x0C, 0x41, 0xD0, 0x0F, 0x13];
        Assert.True(aml.AsSpan().IndexOf(kbd) > 0);
        Assert.True(aml.AsSpan().IndexOf(mou) > 0);
    }

    [Fact]
    public void The_HPET_table_gives_QEMUs_block_id_and_the_base_0xFED00000_and_the_DSDT_has_a_PNP0103_device()
    {
        var m = NewMachine();
        var t = Table(m, Walk(m).Tables["HPET"], "HPET");
        Assert.Equal(56, t.Length);
        Assert.Equal(1, t[8]);
        Assert.Equal(0x8086A201u, U32(t, 36));                               // event timer block id (GCAP_ID[31:0])
        Assert.Equal(new byte[] { 0, 0, 0, 0 }, t[40..44]);                  // GAS: system memory
        Assert.Equal(0xFED00000UL, U64(t, 44));
        Assert.Equal(0, t[52]);                                              // HPET number
        Assert.Equal(0, U16(t, 53));                                         // minimum clock tick
        Assert.Equal(0, t[55]);                                              // page protection
        var f = Table(m, Walk(m).Tables["FACP"], "FACP");
        var aml = Table(m, U32(f, 40), "DSDT")[36..];
        byte[] hid = [0x08, (byte)'_', (byte)'H', (byte)'I', (byte)'D', 0x0C, 0x41, 0xD0, 0x01, 0x03];   // EisaId("PNP0103")
        byte[] crs = [0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0xD0, 0xFE, 0x00, 0x04, 0x00, 0x00];         // Memory32Fixed 0xFED00000, 0x400
        Assert.True(aml.AsSpan().IndexOf(hid) > 0);
        Assert.True(aml.AsSpan().IndexOf(crs) > 0);
    }

    [Fact]
    public void AML_package_lengths_use_the_multi_byte_encoding_past_63_bytes()
    {
        Assert.Equal(new byte[] { 0x3F }, AcpiAml.PkgLength(62));
        Assert.Equal(new byte[] { 0x41, 0x04 }, AcpiAml.PkgLength(63));               // 63 + 2 = 0x041
        Assert.Equal(new byte[] { 0x42, 0x04 }, AcpiAml.PkgLength(64));               // 66 = 0x042
        Assert.Equal(new byte[] { 0x82, 0x00, 0x01 }, AcpiAml.PkgLength(0x1000 - 1));   // 0x1002 = 3 bytes
    }

    [Fact]
    public void The_PM_timer_counts_3579545_Hz_of_virtual_time_in_24_bits()
    {
        var m = NewMachine(tps: 1_000_000_000);
        Assert.Equal(0u, m.Io.In(0x608, 4));
        m.Cpu.Retired = 1_000_000_000;                       // one virtual second
        Assert.Equal(3_579_545u, m.Io.In(0x608, 4));
        m.Cpu.Retired = 5_000_000_000;                       // 17 897 725 wraps at 2^24
        Assert.Equal(17_897_725u - (1u << 24), m.Io.In(0x608, 4));
        var slow = NewMachine(tps: 10_000_000);              // --ips 10^7
        slow.Cpu.Retired = 12_345;                           // ⌊12345 × 3579545 / 10^7⌋
        Assert.Equal(4418u, slow.Io.In(0x608, 4));           // 4418.97...
        Assert.Equal(4418u & 0xFF, slow.Io.In(0x608, 1));
    }

    [Fact]
    public void TMR_STS_sets_when_timer_bit_23_changes_and_with_TMR_EN_raises_the_SCI_on_IRQ9()
    {
        const ulong tps = 1_000_000;
        var m = NewMachine(tps);
        foreach (var (port, v) in new (ushort, byte)[] { (0x20, 0x11), (0xA0, 0x11), (0x21, 0x20), (0xA1, 0x28), (0x21, 4), (0xA1, 2), (0x21, 1), (0xA1, 1), (0x21, 0xFB), (0xA1, 0xFD) })
            m.Io.Out(port, 1, v);                            // 8259 pair, only IRQ9 (and the cascade) unmasked
        Assert.Equal(0x0001u, m.Io.In(0x604, 2));            // SCI_EN
        Assert.Equal(0u, m.Io.In(0x600, 2));
        m.Io.Out(0x602, 2, 0x0001);                          // TMR_EN
        ulong carry = (((1UL << 23) * tps) + 3_579_545 - 1) / 3_579_545;   // first tick with timer bit 23 set
        Assert.Equal(carry, m.NextEventAt);
        m.Cpu.Retired = carry - 1;
        Assert.Equal(0u, m.Io.In(0x600, 2));
        m.Cpu.Retired = carry;
        Assert.Equal(1u, m.Io.In(0x600, 2));
        Assert.Equal(0x00010001u, m.Io.In(0x600, 4));        // PM1_STS | PM1_EN << 16
        m.Platform.AcpiPm.OnTime(m.Now);
        Assert.True(m.InterruptLine);
        Assert.Equal(0x29, m.Platform.Acknowledge());        // IRQ9 on the slave
        m.Io.Out(0x600, 2, 0x0001);                          // write 1 to clear
        Assert.Equal(0u, m.Io.In(0x600, 2));
        Assert.Equal(0, m.Platform.Pic.Slave.Irr & 0x02);    // the level dropped
        Assert.Equal((((2UL << 23) * tps) + 3_579_545 - 1) / 3_579_545, m.NextEventAt);
    }

    /// <summary>
    /// A guest that writes <paramref name="pm1Cnt"/> to PM1a_CNT, then prints "alive" and exits with code 1. QEMU acts
    /// on a power-off request in its main loop, after the CPU has run on for a while: <paramref name="spin"/> waits
    /// 2×10⁸ instructions first (Emu64 powers off at the OUT itself).
    /// </summary>
    private static byte[] SleepKernel(ushort pm1Cnt, bool spin = false) => TestKernel.Build(a =>
    {
        a.mov(dx, (ushort)0x604);
        a.mov(ax, (ushort)(pm1Cnt & ~0x2000));               // SLP_TYP first, as ACPICA writes it
        a.@out(dx, ax);
        a.mov(ax, pm1Cnt);
        a.@out(dx, ax);
        if (spin)
        {
            var wait = a.CreateLabel();
            a.mov(ecx, 100_000_000);
            a.Label(ref wait);
            a.dec(ecx);
            a.jnz(wait);
        }
        TestKernel.Print(a, "alive\n");
        TestKernel.Exit(a, 1);
    });

    [Fact]
    public void Writing_SLP_TYP_S5_with_SLP_EN_powers_off_with_exit_status_0()
    {
        var r = PlatformRun.Emu(SleepKernel(0x2000 | (AcpiPm.SlpTypS5 << 10)));
        Assert.Equal(StopReason.Shutdown, r.Reason);
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("", r.Console);
        Assert.Contains("S5", r.Machine.StopMessage);
    }

    [Fact]
    public void A_sleep_type_the_DSDT_does_not_offer_is_ignored()
    {
        var r = PlatformRun.Emu(SleepKernel(0x2000 | (5 << 10)));
        Assert.Equal(StopReason.DebugExit, r.Reason);
        Assert.Equal("alive\n", r.Console);
    }

    [Fact]
    public void emu64_run_exits_with_status_0_when_the_guest_enters_S5()
    {
        using var dir = new CliRun.TempDir();
        var k = dir.File("s5.bin", SleepKernel(0x2000));
        var res = CliRun.Execute("run", k);
        Assert.Equal(0, res.Status);
        Assert.Equal("", res.Out);
    }

    [QemuFact]
    public void QEMU_also_powers_off_on_S5_before_the_guest_prints_anything()
    {
        Assert.Equal("", Qemu.Run(SleepKernel(0x2000, spin: true)));
    }
}
