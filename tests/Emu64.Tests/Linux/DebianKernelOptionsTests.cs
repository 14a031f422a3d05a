using System.Text.RegularExpressions;
using Emu64.Loader;
using Xunit.Abstractions;

namespace Emu64.Tests.Linux;

/// <summary>
/// One boot of Debian's kernel with <c>console=ttyS0 no5lvl pti=off nopcid</c> to the end of /init, with every CR3
/// write watched: each option's documented effect is independent of the others (Documentation/admin-guide/
/// kernel-parameters.txt: no5lvl "Disable 5-level paging mode. Forces kernel to use 4-level paging instead.";
/// pti=off "Control Page Table Isolation of user and kernel address spaces ... off - unconditionally disable";
/// nopcid "Disable the PCID cpu feature"), so one boot checks all three against the default boot (DebianBoot).
/// </summary>
public sealed class DebianOptionsBoot
{
    public const string Append = "console=ttyS0 no5lvl pti=off nopcid";
    public string Console { get; } = "";
    public ulong Cr4 { get; }
    public ulong Syscalls { get; }
    public Cr3Watch Cr3 { get; } = new();

    public DebianOptionsBoot()
    {
        if (DebianKernel.SkipReason() != null) return;
        var console = new GuestConsole();
        var m = new Machine(new MachineOptions { RamBytes = 512UL << 20, Append = Append, MaxInstructions = DebianBoot.MaxInstructions, Output = console });
        console.Machine = m;
        console.StopWhen = l => l == DebianKernel.DoneMarker;   // all /init prints is there: skip the power-off
        m.Events.Subscribe(Cr3);
        m.LoadKernel(File.ReadAllBytes(DebianKernel.Vmlinuz), DebianKernel.Vmlinuz, [new BootModule(DebianKernel.Initrd, File.ReadAllBytes(DebianKernel.Initrd))]);
        m.Run();
        Console = console.Text;
        Cr4 = m.Cpu.CR4;
        Syscalls = m.Events.Syscalls;
    }
}

[Trait("Category", "LinuxBoot")]
public class DebianKernelOptionsTests(DebianOptionsBoot boot, ITestOutputHelper output) : IClassFixture<DebianOptionsBoot>
{
    private List<string> Lines => boot.Console.Replace("\r", "").Split('\n').Select(l => Regex.Replace(l, @"^\[ *[0-9]+\.[0-9]+\] ", "")).ToList();
    private string[] Flags => Lines.Single(l => l.StartsWith("flags\t")).Split(':', 2)[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);

    [DebianKernelFact]
    public void With_no5lvl_Linux_pages_with_4_levels_although_CPUID_has_LA57()
    {
        output.WriteLine($"CR4 {boot.Cr4:X}");
        Assert.Contains(DebianKernel.DoneMarker, boot.Console);
        Assert.Equal(0UL, boot.Cr4 & Emu64.Cpu.Cr4.La57);
        Assert.NotEqual(0UL, boot.Cr4 & Emu64.Cpu.Cr4.Pae);
        // MAX_PHYSMEM_BITS is 46 with 4-level paging (52 with 5): max_arch_pfn = 2^(46-12).
        Assert.Contains(Lines, l => l == "last_pfn = 0x1ffe0 max_arch_pfn = 0x400000000");
        Assert.DoesNotContain("la57", Flags);
    }

    [DebianKernelFact]
    public void With_pti_off_there_is_no_page_table_isolation_and_no_user_kernel_CR3_switch()
    {
        var c = boot.Cr3;
        output.WriteLine($"{c.Writes} CR3 writes; {c.Syscalls} SYSCALLs, {c.EntrySwitches} followed by a CR3 write; {c.Sysrets} SYSRETs, {c.ExitSwitches} just after one");
        Assert.Contains("Kernel/User page tables isolation: disabled on command line.", Lines);
        Assert.DoesNotContain("Kernel/User page tables isolation: enabled", Lines);
        Assert.Contains("meltdown: Vulnerable", Lines);
        Assert.DoesNotContain("pti", Flags);
        Assert.True(c.Syscalls > 100 && c.Sysrets > 100, "userspace ran");
        Assert.Equal(0UL, c.EntrySwitches);
        Assert.Equal(0UL, c.ExitSwitches);
    }

    [DebianKernelFact]
    public void With_nopcid_CR4_PCIDE_stays_clear_and_no_CR3_write_uses_a_PCID_or_NOFLUSH()
    {
        output.WriteLine($"CR4 {boot.Cr4:X}; {boot.Cr3.Writes} CR3 writes, {boot.Cr3.NoFlushWrites} NOFLUSH, {boot.Cr3.WritesWithPcid} with low bits set");
        Assert.Equal(0UL, boot.Cr4 & Emu64.Cpu.Cr4.Pcide);
        Assert.DoesNotContain("pcid", Flags);
        Assert.DoesNotContain("invpcid_single", Flags);
        Assert.NotEqual(0UL, boot.Cr3.Writes);
        Assert.Equal(0UL, boot.Cr3.NoFlushWrites);
        Assert.Equal(0UL, boot.Cr3.WritesWithPcid);
    }
}
