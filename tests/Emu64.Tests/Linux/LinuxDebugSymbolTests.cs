using Emu64.Debugging;
using Emu64.Loader;
using Xunit.Abstractions;
using Emu64;

namespace Emu64.Tests.Linux;

/// <summary>
/// Linux's kallsyms tables read by their shape (docs/DEBUGGING.md, "Symbols of a stock Linux kernel"), here out of
/// the uncompressed vmlinux tests/linux/fetch-linux.sh extracts from Debian's bzImage: Debian ships no System.map and
/// that vmlinux has no ELF symbol table, so kallsyms is the only source of names. No boot: a second or two.
/// </summary>
public class LinuxDebugSymbolTests(ITestOutputHelper output)
{
    private static Kallsyms.Table Table()
    {
        var t = Kallsyms.Find(File.ReadAllBytes(DebianKernel.Vmlinux));
        Assert.NotNull(t);
        return t!;
    }

    [DebianKernelFileFact]
    public void The_kallsyms_of_Debian_s_vmlinux_put_text_and_startup_64_at_the_link_address_the_ELF_entry_point_names()
    {
        var t = Table();
        var elf = new ElfImage(File.ReadAllBytes(DebianKernel.Vmlinux));
        output.WriteLine($"{t.Entries.Length} symbols, relative base 0x{t.RelativeBase:x}");
        ulong Addr(string n) => t.Entries.First(e => e.Name == n).Address;
        // The ELF entry is startup_64's physical address; __START_KERNEL_map (0xffffffff80000000) maps it.
        Assert.Equal(0xFFFFFFFF80000000 + elf.Entry, Addr("startup_64"));
        Assert.Equal(Kallsyms.LinkText, Addr("_text"));
        Assert.Equal(0L, t.KaslrOffset);
        Assert.Equal('T', t.Entries.First(e => e.Name == "entry_SYSCALL_64").Type);
    }
}

/// <summary>A fact that needs only the fetched files of tests/linux/out (no boot).</summary>
public sealed class DebianKernelFileFactAttribute : FactAttribute
{
    public DebianKernelFileFactAttribute() { if (DebianKernel.Dir is null || !File.Exists(Path.Combine(DebianKernel.Dir, "vmlinux"))) Skip = "Debian's kernel is not fetched: run tests/linux/fetch-linux.sh (it fills tests/linux/out/)"; }
}

/// <summary>
/// Other KASLR offsets than the shared boot's (<see cref="LinuxDebugBoot"/>, seed 1): a run of Debian's kernel to the
/// point where it sets LSTAR (syscall_init, early in start_kernel), where Emu64 reads kallsyms out of RAM. The kernel's
/// own registers referee: LSTAR holds entry_SYSCALL_64, and CR3 holds the physical address of init_top_pgt (x86-64's
/// swapper_pg_dir), which setup_arch loaded before.
/// </summary>
[Trait("Category", "LinuxBoot")]
public class LinuxDebugKaslrTests(ITestOutputHelper output)
{
    [DebianKernelFact]
    public void On_seeds_2_and_3_kallsyms_from_RAM_put_entry_SYSCALL_64_in_LSTAR_and_init_top_pgt_in_CR3()
    {
        var offsets = new HashSet<long>();
        foreach (ulong seed in new ulong[] { 2, 3 })
        {
            var ro = Emu64.Cli.Cli.ParseRunOptions(["--initrd", DebianKernel.Initrd, "--append", "console=ttyS0", "-m", "512", "--seed", seed.ToString()], needKernel: false)
                     with { Kernel = DebianKernel.Vmlinuz };
            var m = Emu64.Cli.Cli.CreateMachine(ro with { MaxInstructions = Emu64.Cli.DebugRun.KallsymsProbeLimit }, Stream.Null, current: false);
            while (m.StopReason == StopReason.None && m.Cpu.Lstar == 0) m.Run(1_000_000);
            Assert.NotEqual(0UL, m.Cpu.Lstar);
            var syms = SymbolTable.ForMachine(m);
            Assert.Equal("kallsyms", syms.Source);
            Assert.True(syms.TryResolve("entry_SYSCALL_64", out ulong entry));
            Assert.True(syms.TryResolve("init_top_pgt", out ulong pgd));
            Assert.True(syms.TryResolve("startup_64", out ulong startup));
            output.WriteLine($"seed {seed}: LSTAR at instruction {m.Cpu.Retired}, KASLR offset 0x{(ulong)syms.KaslrOffset:x}, entry_SYSCALL_64 0x{entry:x}, init_top_pgt 0x{pgd:x}, CR3 0x{m.Cpu.CR3:x}");
            Assert.Equal(m.Cpu.Lstar, entry);
            Assert.Equal(Kallsyms.LinkText + (ulong)syms.KaslrOffset, startup);
            var w = PageWalker.Walk(m, pgd);
            Assert.True(w.Mapped);
            Assert.Equal(m.Cpu.CR3 & 0x000F_FFFF_FFFF_F000, w.Physical);
            Assert.Equal("entry_SYSCALL_64+0x3", syms.Describe(entry + 3));
            offsets.Add(syms.KaslrOffset);
        }
        Assert.Equal(2, offsets.Count);     // each seed, its own layout
    }
}
