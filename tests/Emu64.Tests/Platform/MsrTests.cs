using Emu64.Cpu;
using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using static Emu64.Tests.Platform.Guest;

namespace Emu64.Tests.Platform;

/// <summary>
/// The MSRs Linux reads at boot (SDM vol. 4 table 2-2; vol. 3A §9.11 microcode, §11.11 MTRRs, §11.12 PAT,
/// §15.3 machine check), executed as RDMSR/WRMSR/CPUID instructions: exact values, and #GP where the SDM
/// puts one.
/// </summary>
[Trait("Category", "Platform")]
public class MsrTests
{
    private const int NoFault = -1;

    /// <summary>Runs one RDMSR of <paramref name="msr"/> at CPL 0; returns the fault vector and EDX:EAX.</summary>
    private static (int Fault, ulong Value) Rdmsr(RawMachine r, uint msr)
    {
        r.Cpu.R[Reg.RCX] = msr;
        r.Load(0x40_0000, [0x0F, 0x32]);
        int f = r.Step();
        return (f, (r.Cpu.R[Reg.RDX] << 32) | (r.Cpu.R[Reg.RAX] & 0xFFFFFFFF));
    }

    private static int Wrmsr(RawMachine r, uint msr, ulong v)
    {
        r.Cpu.R[Reg.RCX] = msr;
        r.Cpu.R[Reg.RAX] = v & 0xFFFFFFFF;
        r.Cpu.R[Reg.RDX] = v >> 32;
        r.Load(0x40_0000, [0x0F, 0x30]);
        return r.Step();
    }

    private static (uint A, uint B, uint C, uint D) Cpuid(RawMachine r, uint leaf, uint sub = 0)
    {
        r.Cpu.R[Reg.RAX] = leaf; r.Cpu.R[Reg.RCX] = sub;
        r.Load(0x40_0000, [0x0F, 0xA2]);
        Assert.Equal(NoFault, r.Step());
        return ((uint)r.Cpu.R[Reg.RAX], (uint)r.Cpu.R[Reg.RBX], (uint)r.Cpu.R[Reg.RCX], (uint)r.Cpu.R[Reg.RDX]);
    }

    private static RawMachine New()
    {
        var r = new RawMachine();
        r.Map(0x40_0000);
        return r;
    }

    [Fact]
    public void The_microcode_revision_reads_0xF0_and_writing_0_then_CPUID_1_loads_it_again()
    {
        var r = New();
        Assert.Equal((NoFault, 0xF0UL << 32), Rdmsr(r, 0x8B));
        Assert.Equal(NoFault, Wrmsr(r, 0x8B, 0));
        Assert.Equal((NoFault, 0UL), Rdmsr(r, 0x8B));                // no CPUID yet: still the preloaded zero
        Cpuid(r, 1);
        Assert.Equal((NoFault, 0xF0UL << 32), Rdmsr(r, 0x8B));
    }

    [Fact]
    public void IA32_PLATFORM_ID_reports_platform_1_and_is_read_only()
    {
        var r = New();
        Assert.Equal((NoFault, 1UL << 50), Rdmsr(r, 0x17));
        Assert.Equal(Vec.GP, Wrmsr(r, 0x17, 1UL << 50));
    }

    [Fact]
    public void MTRRcap_reports_8_variable_ranges_fixed_ranges_and_WC_and_CPUID_reports_MTRR()
    {
        var r = New();
        Assert.Equal((NoFault, 0x508UL), Rdmsr(r, 0xFE));
        Assert.Equal(Vec.GP, Wrmsr(r, 0xFE, 0x508));
        Assert.NotEqual(0u, Cpuid(r, 1).D & (1u << 12));
    }

    [Fact]
    public void MTRRdefType_holds_type_FE_and_E_and_faults_on_invalid_types_and_reserved_bits()
    {
        var r = New();
        Assert.Equal(NoFault, Wrmsr(r, 0x2FF, 0));
        Assert.Equal((NoFault, 0UL), Rdmsr(r, 0x2FF));
        foreach (ulong t in new ulong[] { 0, 1, 4, 5, 6 })
        {
            Assert.Equal(NoFault, Wrmsr(r, 0x2FF, 0xC00 | t));
            Assert.Equal((NoFault, 0xC00 | t), Rdmsr(r, 0x2FF));
        }
        foreach (ulong bad in new ulong[] { 2, 3, 7, 8, 0xFF, 0x100 | 6, 0x200 | 6, 0x1000 | 6, 1UL << 63 })
            Assert.Equal(Vec.GP, Wrmsr(r, 0x2FF, bad));
        Assert.Equal((NoFault, 0xC06UL), Rdmsr(r, 0x2FF));               // a refused write changed nothing
    }

    [Fact]
    public void The_eleven_fixed_range_MTRRs_hold_eight_types_each_and_refuse_an_invalid_type_in_any_byte()
    {
        var r = New();
        uint[] msrs = [0x250, 0x258, 0x259, 0x268, 0x269, 0x26A, 0x26B, 0x26C, 0x26D, 0x26E, 0x26F];
        foreach (var msr in msrs)
        {
            Assert.Equal(NoFault, Wrmsr(r, msr, 0x0006050401000406));
            Assert.Equal((NoFault, 0x0006050401000406UL), Rdmsr(r, msr));
            for (int b = 0; b < 8; b++)
                Assert.Equal(Vec.GP, Wrmsr(r, msr, 0x0606060606060606UL ^ (0x04UL << (8 * b))));   // type 2 in byte b
        }
        foreach (uint absent in new uint[] { 0x251, 0x257, 0x25A, 0x267, 0x270 })
            Assert.Equal(Vec.GP, Rdmsr(r, absent).Fault);
    }

    [Fact]
    public void Variable_MTRRs_hold_base_type_mask_and_valid_and_fault_on_reserved_bits_and_bad_types()
    {
        var r = New();
        for (uint n = 0; n < 8; n++)
        {
            uint b = 0x200 + 2 * n, m = b + 1;
            ulong top = (1UL << 46) - 0x1000;                             // MAXPHYADDR is 46 (CPUID 0x80000008)
            Assert.Equal(NoFault, Wrmsr(r, b, top | 6));
            Assert.Equal((NoFault, top | 6), Rdmsr(r, b));
            Assert.Equal(NoFault, Wrmsr(r, m, top | 0x800));
            Assert.Equal((NoFault, top | 0x800), Rdmsr(r, m));
            Assert.Equal(Vec.GP, Wrmsr(r, b, 0x1000 | 2));                 // type 2
            Assert.Equal(Vec.GP, Wrmsr(r, b, 0x1000 | 0x100 | 6));         // bits 11:8 reserved
            Assert.Equal(Vec.GP, Wrmsr(r, b, (1UL << 46) | 6));            // at MAXPHYADDR
            Assert.Equal(Vec.GP, Wrmsr(r, m, 0x800 | 0x400));              // bits 10:0 reserved
            Assert.Equal(Vec.GP, Wrmsr(r, m, (1UL << 46) | 0x800));
        }
        Assert.Equal(Vec.GP, Rdmsr(r, 0x210).Fault);                       // only VCNT = 8 pairs
    }

    [Fact]
    public void IA32_PAT_resets_to_the_SDM_value_accepts_UC_minus_and_refuses_invalid_entries()
    {
        var r = New();
        Assert.Equal((NoFault, 0x0007040600070406UL), Rdmsr(r, 0x277));
        Assert.Equal(NoFault, Wrmsr(r, 0x277, 0x0007010600070106));       // Linux's PAT: WB WC UC- UC WB WC UC- UC
        Assert.Equal((NoFault, 0x0007010600070106UL), Rdmsr(r, 0x277));
        for (int e = 0; e < 8; e++)
        {
            Assert.Equal(Vec.GP, Wrmsr(r, 0x277, 0x0606060606060606UL ^ (0x04UL << (8 * e))));   // type 2
            Assert.Equal(Vec.GP, Wrmsr(r, 0x277, 0x0606060606060606UL | (0x08UL << (8 * e))));   // bit 3 reserved
        }
        Assert.Equal((NoFault, 0x0007010600070106UL), Rdmsr(r, 0x277));
    }

    [Fact]
    public void IA32_MISC_ENABLE_keeps_its_read_only_bits_limits_CPUID_and_disables_XD_as_the_SDM_says()
    {
        var r = New();
        Assert.Equal((NoFault, 0x1801UL), Rdmsr(r, 0x1A0));                  // fast strings, BTS and PEBS unavailable
        Assert.Equal(NoFault, Wrmsr(r, 0x1A0, 0));
        Assert.Equal((NoFault, 0x1800UL), Rdmsr(r, 0x1A0));                  // the RO bits stay
        // Bit 18 (ENABLE MONITOR FSM): with CPUID.1:ECX.SSE3 = 0 software must not alter it and writing it may #GP;
        // it would make CPUID report MONITOR, which this model does not implement. Bit 16 (Enhanced SpeedStep enable)
        // exists only if CPUID.1:ECX.EST (bit 7) = 1. Both are reserved here, so WRMSR faults (SDM vol. 4 table 2-2).
        Assert.Equal(0u, Cpuid(r, 1).C & ((1u << 0) | (1u << 3) | (1u << 7)));   // no SSE3, MONITOR or EST
        Assert.Equal(Vec.GP, Wrmsr(r, 0x1A0, 0x1801UL | 1UL << 18));
        Assert.Equal(Vec.GP, Wrmsr(r, 0x1A0, 0x1801UL | 1UL << 16));
        Assert.Equal(7u, Cpuid(r, 0).A);
        Assert.Equal(NoFault, Wrmsr(r, 0x1A0, 1UL << 22));                   // limit CPUID maxval
        Assert.Equal(2u, Cpuid(r, 0).A);
        Assert.Equal(NoFault, Wrmsr(r, 0x1A0, 1UL << 34));                   // XD bit disable
        Assert.Equal(0u, Cpuid(r, 0x80000001).D & (1u << 20));
        r.Cpu.EFER &= ~Efer.Nxe;
        Assert.Equal(Vec.GP, Wrmsr(r, 0xC0000080, r.Cpu.EFER | Efer.Nxe));
        Assert.Equal(NoFault, Wrmsr(r, 0x1A0, 1));
        Assert.Equal(7u, Cpuid(r, 0).A);
        Assert.NotEqual(0u, Cpuid(r, 0x80000001).D & (1u << 20));
        Assert.Equal(NoFault, Wrmsr(r, 0xC0000080, r.Cpu.EFER | Efer.Nxe));
    }

    [Fact]
    public void Machine_check_capabilities_report_no_banks_and_MCG_STATUS_takes_only_its_three_flags()
    {
        var r = New();
        Assert.Equal((NoFault, 0UL), Rdmsr(r, 0x179));
        Assert.Equal(Vec.GP, Wrmsr(r, 0x179, 0));
        Assert.Equal((NoFault, 0UL), Rdmsr(r, 0x17A));
        Assert.Equal(NoFault, Wrmsr(r, 0x17A, 0));
        Assert.Equal(Vec.GP, Wrmsr(r, 0x17A, 1UL << 3));                     // LMCE_S: no LMCE_P in MCG_CAP
        Assert.Equal(Vec.GP, Rdmsr(r, 0x400).Fault);                          // IA32_MC0_CTL: no bank 0
    }

    [Fact]
    public void Without_CMCI_in_IA32_MCG_CAP_the_x2APIC_LVT_CMCI_MSR_faults_on_read_and_write()
    {
        var r = New();
        Assert.Equal((NoFault, 0UL), Rdmsr(r, 0x179));                       // MCG_CMCI_P (bit 10) = 0
        Assert.Equal(NoFault, Wrmsr(r, 0x1B, 0xFEE00D00));                   // x2APIC mode
        Assert.Equal((NoFault, 0x00050014UL), Rdmsr(r, 0x803));              // Max LVT Entry 5: six LVT registers
        Assert.Equal(Vec.GP, Rdmsr(r, 0x82F).Fault);
        Assert.Equal(Vec.GP, Wrmsr(r, 0x82F, 0x10000));
        Assert.Equal((NoFault, 0x10000UL), Rdmsr(r, 0x837));                 // LVT error, the last one, is there
    }

    [Fact]
    public void No_IA32_ARCH_CAPABILITIES_so_Linux_treats_the_CPU_as_affected_by_Meltdown()
    {
        var r = New();
        Assert.Equal(0u, Cpuid(r, 7).D & (1u << 29));
        Assert.Equal(Vec.GP, Rdmsr(r, 0x10A).Fault);
    }

    /// <summary>Prints IA32_MTRRCAP, the default type, the fixed ranges, the variable pairs and the PAT, as firmware left them.</summary>
    public static byte[] FirmwareMsrKernel() => TestKernel.Build(a =>
    {
        uint[] msrs = [0xFE, 0x2FF, 0x250, 0x258, 0x259, 0x268, 0x269, 0x26A, 0x26B, 0x26C, 0x26D, 0x26E, 0x26F,
            0x200, 0x201, 0x202, 0x203, 0x277];
        foreach (var msr in msrs)
        {
            a.mov(ecx, msr);
            a.rdmsr();
            a.shl(rdx, 32);
            a.or(rax, rdx);
            Show(a, $"msr {msr:x3}", 16);
        }
        TestKernel.Exit(a, 0);
    });

    /// <summary>The state QEMU 7.2's SeaBIOS leaves with -m 128 (VCNT 8; the variable mask follows MAXPHYADDR).</summary>
    private static string FirmwareTranscript(int physBits) =>
        "msr 0fe=0000000000000508\nmsr 2ff=0000000000000c06\n" +
        "msr 250=0606060606060606\nmsr 258=0606060606060606\nmsr 259=0000000000000000\n" +
        string.Concat(Enumerable.Range(0, 8).Select(i => $"msr {0x268 + i:x3}=0505050505050505\n")) +
        $"msr 200=0000000080000000\nmsr 201={(((1UL << physBits) - 1) & ~0x7FFFFFFFUL) | 0x800:x16}\n" +
        "msr 202=0000000000000000\nmsr 203=0000000000000000\nmsr 277=0007040600070406\n";

    [Fact]
    public void A_kernel_finds_the_MTRRs_and_PAT_as_PC_firmware_leaves_them()
    {
        Assert.Equal(FirmwareTranscript(46), PlatformRun.Console(FirmwareMsrKernel()));
    }

    [QemuFact]
    public void The_firmware_MTRR_kernel_prints_the_same_values_under_QEMU_apart_from_MAXPHYADDR()
    {
        // QEMU's -cpu max reports 40 physical address bits (Emu64: 46), which only the variable mask shows.
        Assert.Equal(FirmwareTranscript(40), Qemu.Run(FirmwareMsrKernel(), "-cpu max"));
    }
}
