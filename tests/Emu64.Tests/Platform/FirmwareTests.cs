using System.Buffers.Binary;
using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using static Emu64.Tests.Platform.Guest;

namespace Emu64.Tests.Platform;

/// <summary>fw_cfg and the CMOS: what a kernel reads about the machine it booted on.</summary>
[Trait("Category", "Platform")]
public class FirmwareTests
{
    /// <summary>Selects fw_cfg item <paramref name="key"/> and reads <paramref name="bytes"/> bytes (little-endian) into RAX.</summary>
    private static void FwCfgRead(Assembler a, ushort key, int bytes)
    {
        a.mov(dx, 0x510);
        a.mov(ax, key);
        a.@out(dx, ax);
        a.xor(esi, esi);
        a.mov(dx, 0x511);
        for (int i = 0; i < bytes; i++)
        {
            a.@in(al, dx);
            a.movzx(eax, al);
            if (i > 0) a.shl(rax, (byte)(8 * i));
            a.or(rsi, rax);
        }
        a.mov(rax, rsi);
    }

    /// <summary>Prints the bytes of RAX as characters, lowest first.</summary>
    private static void PrintChars(Assembler a, int n)
    {
        a.mov(rsi, rax);
        for (int i = 0; i < n; i++)
        {
            a.mov(rax, rsi);
            a.shr(rax, (byte)(8 * i));
            a.mov(dx, TestKernel.Com1);
            a.@out(dx, al);
        }
    }

    /// <summary>
    /// fw_cfg through the I/O ports (signature, feature ID, CPU count, maximum CPUs, RAM size) and the
    /// signature again through the DMA interface.
    /// </summary>
    public static byte[] FwCfgKernel() => TestKernel.Build(a =>
    {
        TestKernel.Print(a, "signature=");
        FwCfgRead(a, 0x00, 4); PrintChars(a, 4); TestKernel.Print(a, "\n");
        FwCfgRead(a, 0x01, 4); Show(a, "id", 8);
        FwCfgRead(a, 0x05, 2); Show(a, "cpus", 4);
        FwCfgRead(a, 0x0F, 2); Show(a, "max cpus", 4);
        FwCfgRead(a, 0x03, 8); Show(a, "ram", 16);
        // DMA: control = select key 0 | read, length 4, destination Guest.Buffer + 0x100; all big-endian.
        a.mov(rdi, Guest.Buffer);
        a.mov(__dword_ptr[rdi], BinaryPrimitives.ReverseEndianness(0x0000000Au));
        a.mov(__dword_ptr[rdi + 4], BinaryPrimitives.ReverseEndianness(4u));
        a.mov(__dword_ptr[rdi + 8], 0);
        a.mov(__dword_ptr[rdi + 12], BinaryPrimitives.ReverseEndianness((uint)Guest.Buffer + 0x100));
        a.mov(dx, 0x514); a.mov(eax, 0); a.@out(dx, eax);
        a.mov(dx, 0x518); a.mov(eax, BinaryPrimitives.ReverseEndianness((uint)Guest.Buffer)); a.@out(dx, eax);
        TestKernel.Print(a, "dma signature=");
        a.mov(rdi, Guest.Buffer + 0x100); a.mov(eax, __dword_ptr[rdi]); PrintChars(a, 4); TestKernel.Print(a, "\n");
        a.mov(rdi, Guest.Buffer); a.mov(eax, __dword_ptr[rdi]); Show(a, "dma control after", 8);
        TestKernel.Exit(a, 0);
    });

    private const string FwCfgTranscript =
        "signature=QEMU\nid=00000003\ncpus=0001\nmax cpus=0001\nram=0000000008000000\ndma signature=QEMU\ndma control after=00000000\n";

    [Fact]
    public void A_kernel_reads_the_fw_cfg_signature_CPU_count_and_RAM_size()
    {
        Assert.Equal(FwCfgTranscript, PlatformRun.Console(FwCfgKernel()));
    }

    [QemuFact]
    public void The_fw_cfg_kernel_prints_the_same_transcript_under_QEMU()
    {
        Assert.Equal(FwCfgTranscript, Qemu.Run(FwCfgKernel()));
    }

    /// <summary>
    /// The CMOS: status registers A (without UIP), B, D; the memory-size bytes; and the date and time
    /// (BCD, printed as hex), read after waiting for UIP to clear.
    /// </summary>
    public static byte[] CmosKernel() => TestKernel.Build(a =>
    {
        void Reg(byte r) { Out8(a, 0x70, r); In8(a, 0x71); }
        Reg(0x0A); a.and(al, 0x7F); Show(a, "status a", 2);
        Reg(0x0B); Show(a, "status b", 2);
        Reg(0x0D); Show(a, "status d", 2);
        foreach (byte r in new byte[] { 0x15, 0x16, 0x17, 0x18, 0x30, 0x31, 0x34, 0x35, 0x5B, 0x5C, 0x5D })
        {
            Reg(r); Show(a, $"cmos {r:x2}", 2);
        }
        var uip = a.CreateLabel();
        a.Label(ref uip);
        Reg(0x0A); a.test(al, 0x80); a.jnz(uip);
        TestKernel.Print(a, "date=");
        foreach (byte r in new byte[] { 0x32, 0x09, 0x08, 0x07 }) { Reg(r); PrintHex(a, 2); }
        TestKernel.Print(a, " ");
        Reg(0x04); PrintHex(a, 2);
        TestKernel.Print(a, ":");
        Reg(0x02); PrintHex(a, 2);
        TestKernel.Print(a, "\n");
        Reg(0x06); Show(a, "weekday", 2);
        TestKernel.Exit(a, 0);
    });

    private const string CmosTranscript =
        "status a=26\nstatus b=02\nstatus d=80\ncmos 15=80\ncmos 16=02\ncmos 17=ff\ncmos 18=ff\ncmos 30=ff\ncmos 31=ff\n" +
        "cmos 34=00\ncmos 35=07\ncmos 5b=00\ncmos 5c=00\ncmos 5d=00\ndate=20000101 00:00\nweekday=07\n";

    [Fact]
    public void A_kernel_reads_the_CMOS_clock_from_the_fixed_virtual_epoch_and_the_memory_size_bytes()
    {
        Assert.Equal(CmosTranscript, PlatformRun.Console(CmosKernel()));
    }

    [QemuFact]
    public void The_CMOS_kernel_prints_the_same_transcript_under_QEMU_started_at_the_same_instant()
    {
        Assert.Equal(CmosTranscript, Qemu.Run(CmosKernel(), "-rtc base=2000-01-01T00:00:00"));
    }

    [Fact]
    public void The_CMOS_clock_advances_with_virtual_time_and_keeps_a_time_the_guest_sets()
    {
        var m = new Machine(new MachineOptions { Output = Stream.Null, TicksPerSecond = 1000 });
        var cmos = m.Platform.Cmos;
        Assert.Equal(Emu64.Devices.Cmos.Epoch, cmos.Time);
        m.Cpu.Retired = 61_500;                           // 61.5 virtual seconds at 1000 ticks per second
        Assert.Equal(Emu64.Devices.Cmos.Epoch.AddSeconds(61), cmos.Time);
        cmos.Out(0x70, 1, 0x09); cmos.Out(0x71, 1, 0x26);  // year 26 (BCD)
        cmos.Out(0x70, 1, 0x04); cmos.Out(0x71, 1, 0x13);  // 13 hours
        Assert.Equal(new DateTime(2026, 1, 1, 13, 1, 1, DateTimeKind.Utc), cmos.Time);
        cmos.Out(0x70, 1, 0x00);
        Assert.Equal(0x01u, cmos.In(0x71, 1));
    }
}
