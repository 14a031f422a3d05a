using Emu64.Cpu;
using Emu64.Isa;
using Emu64.Tests.Support;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Tests.Isa;

/// <summary>
/// --cpu -FEATURE: the CPUID bit is clear and the CPU behaves as one without the feature (SDM: the
/// instruction is #UD, setting the CR4 bit is #GP), as under QEMU's -cpu max,-FEATURE.
/// </summary>
[Trait("Category", "Isa")]
public class CpuOptionTests
{
    private static unsafe int Exec(CpuCore cpu, params byte[] bytes)
    {
        var d = default(Insn);
        DecodeCache.DecodeOne(bytes, 0x1000, cpu.Bitness, ref d);
        cpu.InsnRip = cpu.Rip = 0x1000;
        cpu.Rip += d.Length;
        try { d.Exec(cpu, ref d); return -1; }
        catch (GuestFault f) { cpu.Rip = cpu.InsnRip; return f.Vector; }
    }

    private static int WriteCr4(CpuCore cpu, ulong v)
    {
        try { SystemInsns.WriteCr4(cpu, v); return -1; }
        catch (GuestFault f) { return f.Vector; }
    }

    private static readonly byte[] Rdtscp = [0x0F, 0x01, 0xF9], RdrandEax = [0x0F, 0xC7, 0xF0], RdseedEax = [0x0F, 0xC7, 0xF8];
    private static readonly byte[] InvpcidType2 = [0x66, 0x0F, 0x38, 0x82, 0x00];   // invpcid rax, [rax]

    [Fact]
    public void Turned_off_features_leave_CPUID_and_the_others_stay()
    {
        var m = new Machine(new MachineOptions { Output = Stream.Null, CpuFeaturesOff = CpuFeatures.Parse("max,-pcid,-invpcid,-la57,umip=off,+pku") });
        m.Cpu.Cpuid(1, 0, out _, out _, out uint c1, out _);
        m.Cpu.Cpuid(7, 0, out _, out uint b7, out uint c7, out _);
        m.Cpu.Cpuid(0x80000008, 0, out uint a8, out _, out _, out _);
        Assert.Equal(0u, c1 & (1u << 17));           // PCID
        Assert.Equal(0u, b7 & (1u << 10));           // INVPCID
        Assert.Equal(0u, c7 & (1u << 16));           // LA57
        Assert.Equal(0u, c7 & (1u << 2));            // UMIP
        Assert.NotEqual(0u, c7 & (1u << 3));         // PKU stays (+pku changes nothing)
        Assert.NotEqual(0u, b7 & (1u << 20));        // SMAP untouched
        Assert.Equal(48u, (a8 >> 8) & 0xFF);         // linear-address width without LA57
    }

    [Fact]
    public void Without_pcid_la57_and_umip_setting_their_CR4_bits_is_GP()
    {
        var cpu = new RawMachine().Cpu;
        Assert.Equal(-1, WriteCr4(cpu, cpu.CR4 | Cr4.Umip));
        Assert.Equal(-1, WriteCr4(cpu, cpu.CR4 & ~Cr4.Umip));
        CpuFeatures.Apply(cpu, CpuFeatures.Parse("-pcid,-la57,-umip,-smap"));
        ulong cr4 = cpu.CR4;
        Assert.Equal(Vec.GP, WriteCr4(cpu, cr4 | Cr4.Pcide));
        Assert.Equal(Vec.GP, WriteCr4(cpu, cr4 | Cr4.Umip));
        Assert.Equal(Vec.GP, WriteCr4(cpu, cr4 | Cr4.Smap));
        Assert.Equal(cr4, cpu.CR4);
        // 48-bit canonical checks for system addresses once LA57 is gone: 0xffaa... is not canonical.
        Assert.False(cpu.IsCanonicalSystem(0xFFAA_AAAA_AAAA_AAAA));
    }

    [Fact]
    public void Without_invpcid_rdtscp_rdrand_and_rdseed_the_instructions_are_UD()
    {
        var cpu = new RawMachine().Cpu;
        Assert.Equal(-1, Exec(cpu, Rdtscp));
        Assert.Equal(-1, Exec(cpu, RdrandEax));
        Assert.Equal(-1, Exec(cpu, RdseedEax));
        CpuFeatures.Apply(cpu, CpuFeatures.Parse("-invpcid,-rdtscp,-rdrand,-rdseed"));
        foreach (var insn in new[] { Rdtscp, RdrandEax, RdseedEax, InvpcidType2 })
            Assert.Equal(Vec.UD, Exec(cpu, insn));
    }

    private static readonly byte[] RdpidRax = [0xF3, 0x0F, 0xC7, 0xF8], RdpidR9 = [0xF3, 0x41, 0x0F, 0xC7, 0xF9];

    [Fact]
    public void RDPID_reads_IA32_TSC_AUX_zero_extended_is_reported_in_CPUID_7_and_is_UD_without_it()
    {
        var cpu = new RawMachine().Cpu;
        cpu.Cpuid(7, 0, out _, out _, out uint c7, out _);
        Assert.NotEqual(0u, c7 & (1u << 22));
        Assert.True(cpu.WriteMsr(0xC0000103, 0x8765_4321));                 // IA32_TSC_AUX (bits 63:32 reserved)
        cpu.R[Reg.RAX] = cpu.R[Reg.R9] = 0xFFFF_FFFF_FFFF_FFFF;
        Assert.Equal(-1, Exec(cpu, RdpidRax));
        Assert.Equal(0x8765_4321UL, cpu.R[Reg.RAX]);                         // 64-bit mode: the whole register
        Assert.Equal(-1, Exec(cpu, RdpidR9));
        Assert.Equal(0x8765_4321UL, cpu.R[Reg.R9]);
        cpu.CR4 |= Cr4.Tsd;                                                  // CR4.TSD restricts RDTSC(P), not RDPID
        cpu.Cpl = 3;
        cpu.R[Reg.RAX] = 0;
        Assert.Equal(-1, Exec(cpu, RdpidRax));
        Assert.Equal(0x8765_4321UL, cpu.R[Reg.RAX]);
        CpuFeatures.Apply(cpu, CpuFeatures.Parse("-rdpid"));
        cpu.Cpuid(7, 0, out _, out _, out c7, out _);
        Assert.Equal(0u, c7 & (1u << 22));
        Assert.Equal(Vec.UD, Exec(cpu, RdpidRax));
    }

    [Fact]
    public void ARAT_is_reported_in_CPUID_6_and_minus_arat_clears_it()
    {
        var cpu = new RawMachine().Cpu;
        cpu.Cpuid(6, 0, out uint a6, out _, out _, out _);
        Assert.Equal(1u << 2, a6);                                           // ARAT, nothing else of leaf 6
        CpuFeatures.Apply(cpu, CpuFeatures.Parse("-arat"));
        cpu.Cpuid(6, 0, out a6, out _, out _, out _);
        Assert.Equal(0u, a6);
    }

    [Fact]
    public void A_later_item_overrides_an_earlier_one_for_the_same_feature()
    {
        Assert.Empty(CpuFeatures.Parse("-pcid,+pcid"));
        Assert.Equal(["la57"], CpuFeatures.Parse("la57=on,-la57").Select(f => f.Name));
    }
}
