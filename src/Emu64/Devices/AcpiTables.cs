using Emu64.Memory;
using static Emu64.Devices.AcpiAml;

namespace Emu64.Devices;

/// <summary>
/// The ACPI tables Emu64's firmware role provides (ACPI 6.5 ch. 5), built here and written into guest RAM
/// at [<see cref="Base"/>, <see cref="End"/>) for every guest, as QEMU's firmware always provides them:
/// <code>
///   RSDP (rev 2) ──► RSDT ──┬─► FADT (rev 3) ──► FACS, DSDT (_S3_, _S5_, PS/2 keyboard and mouse)
///            └────► XSDT ──┴─► MADT (local APIC, I/O APIC, interrupt overrides, LINT1 NMI), HPET
/// </code>
/// Linux finds the RSDP by scanning 0xE0000–0xFFFFF on 16-byte boundaries (or through
/// boot_params.acpi_rsdp_addr). The tables sit in the system BIOS segment [0xF0000, 0x100000), which every
/// memory map Emu64 gives (e820 for Linux and PVH, the multiboot map) reports as reserved. The values describe
/// the devices Platform.cs wires: the PIIX4-style power-management block <see cref="AcpiPm"/> at
/// 0x600 (SCI on IRQ 9), the local APIC at 0xFEE00000, the I/O APIC (ID 0) at 0xFEC00000 with the
/// interrupt source overrides QEMU's pc machine reports, the reset register 0xCF9, the HPET at 0xFED00000
/// (<see cref="Hpet"/>: its table, and a PNP0103 device in the DSDT, as QEMU's).
/// </summary>
public static class AcpiTables
{
    /// <summary>The first byte of the table area; the RSDP is its first structure (16-byte aligned).</summary>
    public const ulong Base = 0xF0000;
    public const ulong End = 0x100000;
    /// <summary>Where the RSDP is (boot_params.acpi_rsdp_addr for a Linux guest).</summary>
    public const ulong RsdpAddress = Base;
    /// <summary>Where the FACS is (64-byte aligned, right after the RSDP): the firmware reads its waking vectors on resume.</summary>
    public const ulong FacsAddress = Base + 64;
    /// <summary>FACS field offsets (ACPI §5.2.10): Firmware_Waking_Vector, Flags, X_Firmware_Waking_Vector, Version, OSPM Flags.</summary>
    public const int FacsWakingVector = 12, FacsFlags = 20, FacsXWakingVector = 24, FacsVersion = 32, FacsOspmFlags = 36;

    /// <summary>ISA interrupt source overrides (MADT type 2) as QEMU's pc machine reports them: (IRQ, GSI, MPS INTI flags).</summary>
    public static readonly (byte Irq, uint Gsi, ushort Flags)[] InterruptOverrides =
    [
        (0, 2, 0x0000),                 // the PIT on I/O APIC pin 2, conforming polarity and trigger
        (5, 5, 0x000D), (9, 9, 0x000D), (10, 10, 0x000D), (11, 11, 0x000D),   // PCI INTx and the SCI: level, active high
    ];

    /// <summary>FADT boot-architecture flags (IAPC_BOOT_ARCH): LEGACY_DEVICES (bit 0) and 8042 (bit 1).</summary>
    public const ushort IapcBootArch = 0x0003;

    /// <summary>
    /// FADT fixed-feature flags: WBINVD (0), PROC_C1 (2), PWR_BUTTON (4: no fixed power button), SLP_BUTTON
    /// (5: no fixed sleep button), RESET_REG_SUP (10). TMR_VAL_EXT (8) stays clear: the PM timer is 24 bits.
    /// </summary>
    public const uint FadtFlags = (1u << 0) | (1u << 2) | (1u << 4) | (1u << 5) | (1u << 10);

    /// <summary>The reset register (FADT RESET_REG): I/O port 0xCF9, value 0x06 (system and CPU reset).</summary>
    public const ushort ResetPort = 0xCF9;
    public const byte ResetValue = 0x06;

    /// <summary>Writes the tables into RAM (when RAM reaches 1 MiB).</summary>
    public static void Install(PhysicalMemory mem)
    {
        if (mem.RamSize < End) return;
        mem.WriteBytes(Base, Build());
    }

    /// <summary>The image of [Base, End): every table at its address, the rest zero.</summary>
    public static byte[] Build()
    {
        var image = new byte[End - Base];
        int next = 0;
        uint Place(byte[] table, int align = 16)
        {
            next = (next + align - 1) & -align;
            table.CopyTo(image, next);
            uint at = (uint)(Base + (ulong)next);
            next += table.Length;
            return at;
        }

        next = (int)(FacsAddress - Base);                   // the RSDP goes at offset 0
        uint facs = Place(Facs(), 64);
        uint dsdt = Place(Dsdt());
        uint fadt = Place(Fadt(facs, dsdt));
        uint madt = Place(Madt());
        uint hpet = Place(HpetTable());
        var tables = new List<uint> { fadt, madt, hpet };
        uint rsdt = Place(Rsdt(tables));
        uint xsdt = Place(Xsdt(tables));
        Rsdp(rsdt, xsdt).CopyTo(image, 0);
        return image;
    }

    /// <summary>RSDP (§5.2.5.3), revision 2: checksum over the first 20 bytes, extended checksum over all 36.</summary>
    public static byte[] Rsdp(uint rsdt, ulong xsdt)
    {
        var r = new byte[36];
        "RSD PTR "u8.CopyTo(r);
        System.Text.Encoding.ASCII.GetBytes(AcpiTableBuilder.OemId).CopyTo(r, 9);
        r[15] = 2;                                          // revision: ACPI 2.0 and later (XSDT present)
        BitConverter.TryWriteBytes(r.AsSpan(16), rsdt);
        BitConverter.TryWriteBytes(r.AsSpan(20), 36u);
        BitConverter.TryWriteBytes(r.AsSpan(24), xsdt);
        r[8] = AcpiTableBuilder.Checksum(r.AsSpan(0, 20));
        r[32] = AcpiTableBuilder.Checksum(r);
        return r;
    }

    private static byte[] Rsdt(List<uint> tables)
    {
        var t = new AcpiTableBuilder("RSDT", 1);
        foreach (var a in tables) t.U32(a);
        return t.Finish();
    }

    private static byte[] Xsdt(List<uint> tables)
    {
        var t = new AcpiTableBuilder("XSDT", 1);
        foreach (var a in tables) t.U64(a);
        return t.Finish();
    }

    /// <summary>
    /// FACS (§5.2.10): 64 bytes, no checksum; version 2; hardware signature 0; no global lock; flags 0: no S4BIOS_REQ,
    /// and 64BIT_WAKE_SUPPORTED_F clear, so a nonzero X_Firmware_Waking_Vector is entered in 32-bit protected mode. The
    /// waking vectors start at 0; the guest writes them before it sleeps (Machine.EnterS3 reads them on resume).
    /// </summary>
    private static byte[] Facs()
    {
        var f = new byte[64];
        "FACS"u8.CopyTo(f);
        BitConverter.TryWriteBytes(f.AsSpan(4), 64u);
        f[FacsVersion] = 2;
        return f;
    }

    /// <summary>
    /// FADT (§5.2.9), revision 3 (ACPI 2.0 layout, 244 bytes, as QEMU's pc machine): PM1a event block 0x600
    /// (4 bytes), PM1a control block 0x604 (2), PM timer 0x608 (4), SCI on IRQ 9, no SMI command port (the
    /// hardware is always in ACPI mode: SCI_EN reads 1), no GPE blocks, C2/C3 not supported, RTC century
    /// in CMOS 0x32, the reset register, and 64-bit X_ copies of every block but the FACS: ACPI 4.0 and later
    /// (§5.2.9) allow only one of FIRMWARE_CTRL and X_FIRMWARE_CTRL to be nonzero (the FACS is below 4 GiB, so
    /// the 32-bit one); with both set Linux's ACPICA installs the FACS twice and lists it twice at boot.
    /// </summary>
    private static byte[] Fadt(uint facs, uint dsdt)
    {
        var t = new AcpiTableBuilder("FACP", 3);
        t.U32(facs).U32(dsdt);
        t.U8(1);                                            // INT_MODEL (ACPI 1.0; reserved since): multiple APIC
        t.U8(0);                                            // preferred PM profile: unspecified
        t.U16(AcpiPm.SciIrq);
        t.U32(0).U8(0).U8(0).U8(0).U8(0);                   // SMI_CMD, ACPI_ENABLE, ACPI_DISABLE, S4BIOS_REQ, PSTATE_CNT
        t.U32(AcpiPm.Pm1aEvtBlk).U32(0);                    // PM1a/PM1b event blocks
        t.U32(AcpiPm.Pm1aCntBlk).U32(0);                    // PM1a/PM1b control blocks
        t.U32(0);                                           // PM2 control block
        t.U32(AcpiPm.PmTmrBlk);
        t.U32(0).U32(0);                                    // GPE0, GPE1 blocks
        t.U8(4).U8(2).U8(0).U8(4);                          // PM1_EVT_LEN, PM1_CNT_LEN, PM2_CNT_LEN, PM_TMR_LEN
        t.U8(0).U8(0).U8(0).U8(0);                          // GPE0_BLK_LEN, GPE1_BLK_LEN, GPE1_BASE, CST_CNT
        t.U16(0xFFF).U16(0xFFF);                            // P_LVL2_LAT > 100, P_LVL3_LAT > 1000: no C2, no C3
        t.U16(0).U16(0).U8(0).U8(0);                        // FLUSH_SIZE, FLUSH_STRIDE, DUTY_OFFSET, DUTY_WIDTH
        t.U8(0).U8(0).U8(0x32);                             // DAY_ALRM, MON_ALRM, CENTURY
        t.U16(IapcBootArch).U8(0);
        t.U32(FadtFlags);
        t.Gas(AcpiTableBuilder.SpaceIo, 8, 1, ResetPort);   // RESET_REG: byte access
        t.U8(ResetValue).Zeros(3);
        t.U64(0).U64(dsdt);                                 // X_FIRMWARE_CTRL (0: FIRMWARE_CTRL is set), X_DSDT
        t.Gas(AcpiTableBuilder.SpaceIo, 32, 0, AcpiPm.Pm1aEvtBlk);
        t.Gas(0, 0, 0, 0);                                  // X_PM1b_EVT_BLK
        t.Gas(AcpiTableBuilder.SpaceIo, 16, 0, AcpiPm.Pm1aCntBlk);
        t.Gas(0, 0, 0, 0).Gas(0, 0, 0, 0);                  // X_PM1b_CNT_BLK, X_PM2_CNT_BLK
        t.Gas(AcpiTableBuilder.SpaceIo, 32, 0, AcpiPm.PmTmrBlk);
        t.Gas(0, 0, 0, 0).Gas(0, 0, 0, 0);                  // X_GPE0_BLK, X_GPE1_BLK
        return t.Finish();
    }

    /// <summary>
    /// MADT (§5.2.12), revision 1: local APIC address 0xFEE00000, PCAT_COMPAT (8259s present); processor
    /// local APIC (UID 0, APIC ID 0, enabled); I/O APIC ID 0 at 0xFEC00000, GSI base 0; the interrupt source
    /// overrides; local APIC NMI on LINT1 for all processors (UID 0xFF), as QEMU.
    /// </summary>
    private static byte[] Madt()
    {
        var t = new AcpiTableBuilder("APIC", 1);
        t.U32((uint)LocalApic.DefaultBase).U32(1);
        t.U8(0).U8(8).U8(0).U8(0).U32(1);                   // type 0: UID 0, APIC ID 0, enabled
        t.U8(1).U8(12).U8(0).U8(0).U32((uint)IoApic.DefaultBase).U32(0);   // type 1: I/O APIC ID 0, GSI base 0
        foreach (var (irq, gsi, flags) in InterruptOverrides)
            t.U8(2).U8(10).U8(0).U8(irq).U32(gsi).U16(flags);   // type 2: bus 0 (ISA)
        t.U8(4).U8(6).U8(0xFF).U16(0).U8(1);                // type 4: all processors, flags 0, LINT1
        return t.Finish();
    }

    /// <summary>
    /// The HPET description table (IA-PC HPET spec 1.0a §3.2.4), as QEMU builds it: the event-timer block id
    /// (GCAP_ID's low half), the base address as a system-memory GAS, HPET number 0, no minimum periodic tick,
    /// no page protection.
    /// </summary>
    private static byte[] HpetTable()
    {
        var t = new AcpiTableBuilder("HPET", 1);
        t.U32(Hpet.BlockId);
        t.Gas(0, 0, 0, Hpet.DefaultBase);
        t.U8(0).U16(0).U8(0);
        return t.Finish();
    }

    /// <summary>
    /// DSDT (§5.2.11.1), revision 1 (32-bit AML integers): the S3 and S5 sleep packages (SLP_TYP 1 and 0 for PM1a
    /// and PM1b, as QEMU's PIIX4; §7.4.2 "\_Sx (System States)"), and in \_SB the PS/2 keyboard and mouse (PNP0303, PNP0F13 with their ports
    /// and IRQs, which Linux's i8042 driver finds through PNP) and the HPET (PNP0103 with its 1 KiB window, which
    /// Linux's hpet character driver binds to).
    /// </summary>
    public static byte[] Dsdt()
    {
        var sb = new List<byte[]>
        {
            Device("KBD", Name("_HID", EisaId("PNP0303")), Name("_STA", Integer(0xF)),
                Name("_CRS", ResourceTemplate(IoPort(0x60, 1), IoPort(0x64, 1), IrqNoFlags(1)))),
            Device("MOU", Name("_HID", EisaId("PNP0F13")), Name("_STA", Integer(0xF)),
                Name("_CRS", ResourceTemplate(IrqNoFlags(12)))),
            Device("HPET", Name("_HID", EisaId("PNP0103")), Name("_UID", Integer(0)), Name("_STA", Integer(0xF)),
                Name("_CRS", ResourceTemplate(Memory32Fixed((uint)Hpet.DefaultBase, (uint)Hpet.Length)))),
        };
        var t = new AcpiTableBuilder("DSDT", 1);
        t.Bytes(Name("\\_S3", Package(Integer(AcpiPm.SlpTypS3), Integer(AcpiPm.SlpTypS3), Integer(0), Integer(0))));
        t.Bytes(Name("\\_S5", Package(Integer(AcpiPm.SlpTypS5), Integer(AcpiPm.SlpTypS5), Integer(0), Integer(0))));
        t.Bytes(Scope("\\_SB", [.. sb]));
        return t.Finish();
    }
}
