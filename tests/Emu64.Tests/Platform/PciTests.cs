using Emu64.Devices;
using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using static Emu64.Tests.Platform.Guest;

namespace Emu64.Tests.Platform;

/// <summary>PCI configuration mechanism #1 with the i440FX host bridge, the PIIX3 ISA bridge and the PIIX4 PM function, compared with QEMU.</summary>
[Trait("Category", "Platform")]
public class PciTests
{
    private static uint Address(int bus, int dev, int fn, int reg) => 0x80000000u | (uint)(bus << 16 | dev << 11 | fn << 8 | reg);

    private static void ConfigRead(Assembler a, uint address, string label)
    {
        a.mov(dx, PciHost.AddressPort); a.mov(eax, address); a.@out(dx, eax);
        a.mov(dx, PciHost.DataPort); a.@in(eax, dx);
        Show(a, label, 8);
    }

    public static byte[] ConfigKernel() => TestKernel.Build(a =>
    {
        // Linux's pci_check_type1: a byte write to 0xCFB, then CONFIG_ADDRESS must read back what was written.
        a.mov(dx, (ushort)0xCFB); a.mov(al, 1); a.@out(dx, al);
        a.mov(dx, PciHost.AddressPort); a.mov(eax, 0x80000000u); a.@out(dx, eax); a.@in(eax, dx);
        Show(a, "cf8", 8);
        foreach (var (d, f) in new[] { (0, 0), (1, 0), (1, 3) })
            foreach (int reg in new[] { 0x00, 0x08, 0x0C, 0x2C, 0x3C })
                ConfigRead(a, Address(0, d, f, reg), $"{d:x2}.{f} {reg:x2}");
        ConfigRead(a, Address(0, 1, 3, 0x40), "00.1.3 40");
        ConfigRead(a, Address(0, 1, 3, 0x80), "00.1.3 80");
        ConfigRead(a, Address(0, 0x1F, 0, 0), "00:1f.0");
        ConfigRead(a, Address(1, 0, 0, 0), "01:00.0");
        // BAR sizing of the host bridge: write all ones, read back
        a.mov(dx, PciHost.AddressPort); a.mov(eax, Address(0, 0, 0, 0x10)); a.@out(dx, eax);
        a.mov(dx, PciHost.DataPort); a.mov(eax, 0xFFFFFFFFu); a.@out(dx, eax); a.@in(eax, dx);
        Show(a, "bar0 sized", 8);
        // a word read at an odd data port offset: the device ID of 00:01.0 through 0xCFE
        a.mov(dx, PciHost.AddressPort); a.mov(eax, Address(0, 1, 0, 0)); a.@out(dx, eax);
        a.mov(dx, (ushort)0xCFE); a.xor(eax, eax); a.@in(ax, dx);
        Show(a, "cfe", 4);
        TestKernel.Exit(a, 0);
    });

    private const string Transcript =
        "cf8=80000000\n" +
        "00.0 00=12378086\n00.0 08=06000002\n00.0 0c=00000000\n00.0 2c=11001af4\n00.0 3c=00000000\n" +
        "01.0 00=70008086\n01.0 08=06010000\n01.0 0c=00800000\n01.0 2c=11001af4\n01.0 3c=00000000\n" +
        "01.3 00=71138086\n01.3 08=06800003\n01.3 0c=00000000\n01.3 2c=11001af4\n01.3 3c=00000109\n" +
        "00.1.3 40=00000601\n00.1.3 80=00000001\n00:1f.0=ffffffff\n01:00.0=ffffffff\n" +
        "bar0 sized=00000000\ncfe=7000\n";

    [Fact]
    public void A_kernel_reads_the_host_bridge_ISA_bridge_and_PM_function_through_0xCF8_and_0xCFC()
    {
        Assert.Equal(Transcript, PlatformRun.Console(ConfigKernel()));
    }

    [QemuFact]
    public void The_PCI_configuration_kernel_prints_the_same_transcript_under_QEMU()
    {
        Assert.Equal(Transcript, Qemu.Run(ConfigKernel()));
    }

    [Fact]
    public void Identification_fields_are_read_only_and_the_command_register_keeps_its_enable_bits()
    {
        var m = new Machine(new MachineOptions { Output = Stream.Null });
        m.Io.Out(0xCF8, 4, Address(0, 0, 0, 0));
        m.Io.Out(0xCFC, 4, 0);
        Assert.Equal(0x12378086u, m.Io.In(0xCFC, 4));
        m.Io.Out(0xCF8, 4, Address(0, 0, 0, 4));
        m.Io.Out(0xCFC, 2, 0xFFFF);
        Assert.Equal(0x0007u, m.Io.In(0xCFC, 2));
        m.Io.Out(0xCF8, 4, 0x7FFFFFFF);                          // enable clear, reserved bits dropped
        Assert.Equal(0x00FFFFFCu, m.Io.In(0xCF8, 4));
        Assert.Equal(0xFFFFFFFFu, m.Io.In(0xCFC, 4));
    }

    [Fact]
    public void Writing_RST_CPU_to_0xCF9_resets_and_the_other_bits_are_kept()
    {
        var m = new Machine(new MachineOptions { Output = Stream.Null });
        m.Io.Out(0xCF9, 1, 0x02);
        Assert.Equal(0x02u, m.Io.In(0xCF9, 1));
        Assert.Equal(StopReason.None, m.StopReason);
        m.Io.Out(0xCF9, 1, AcpiTables.ResetValue);
        Assert.Equal(StopReason.Reset, m.StopReason);
        Assert.Contains("0xCF9", m.StopMessage);
    }
}
