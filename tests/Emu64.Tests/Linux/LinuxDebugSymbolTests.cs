using Emu64.Debugging;
using Emu64.Loader;
using Xunit.Abstractions;
using Emu64;
using Emu64.Tests.Support;

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

/// <summary>--symbols' text formats and the ELF symbol file written for gdb (no boot, no fetched files).</summary>
public class SymbolFilesTests
{
    private const string Map = """
        ffffffff81000000 T _text
        ffffffff81000000 T startup_64
        ffffffff81c00080 T entry_SYSCALL_64
        ffffffff81c00100 T entry_SYSCALL_64_safe_stack
        ffffffff82a10000 D init_top_pgt
        0000000000000000 A fixed_percpu_data
        ffffffffc0000000 t e1000_probe	[e1000]
        """;

    [Fact]
    public void A_System_map_names_kernel_addresses_and_leaves_out_per_cpu_values_and_module_symbols()
    {
        var syms = SymbolFiles.ParseMap(Map);
        Assert.Equal(["_text", "startup_64", "entry_SYSCALL_64", "entry_SYSCALL_64_safe_stack", "init_top_pgt"], syms.Select(s => s.Name));
        var t = new SymbolTable(syms);
        Assert.Equal("entry_SYSCALL_64+0x3", t.Describe(0xffffffff81c00083));
        // A System.map holds link addresses: LSTAR (runtime entry_SYSCALL_64) gives the KASLR offset.
        Assert.True(t.DetectSlide(0xffffffff9fc00080));
        Assert.Equal(0x1e000000L, t.KaslrOffset);
        Assert.True(t.TryResolve("init_top_pgt", out ulong pgd));
        Assert.Equal(0xffffffffa0a10000UL, pgd);
    }

    [Fact]
    public void A_line_that_is_not_address_type_name_is_refused_with_its_number()
    {
        var e = Assert.Throws<ImageException>(() => SymbolFiles.ParseMap("ffffffff81000000 T _text\nhello world\n"));
        Assert.Equal("line 2 is not 'ADDRESS TYPE NAME' (neither an ELF file nor a System.map or /proc/kallsyms listing)", e.Message);
        Assert.Throws<ImageException>(() => SymbolFiles.ParseMap("0000000000000000 T _text\n"));   // kptr_restrict's zeros
    }

    [GdbFact]
    public void Stock_gdb_reads_the_symbol_file_written_from_kallsyms_at_the_runtime_addresses()
    {
        string path = Path.Combine(Path.GetTempPath(), $"emu64-symelf-{Environment.ProcessId}.elf");
        File.WriteAllBytes(path, SymbolElf.Write(SymbolFiles.ParseMap(Map)));
        var psi = new System.Diagnostics.ProcessStartInfo(Gdb.Path_) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "--batch", "-nx", "-ex", "info address entry_SYSCALL_64", "-ex", "info symbol 0xffffffff81c00083", "-ex", "info address init_top_pgt", path })
            psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string o = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(60_000));
        File.Delete(path);
        o += err.Result;
        Assert.Contains("Symbol \"entry_SYSCALL_64\" is at 0xffffffff81c00080 in a file compiled without debugging.", o);
        Assert.Contains("entry_SYSCALL_64 + 3 in section .text", o);
        Assert.Contains("Symbol \"init_top_pgt\" is at 0xffffffff82a10000 in a file compiled without debugging.", o);
    }
}
