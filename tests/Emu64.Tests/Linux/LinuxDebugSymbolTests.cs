using Emu64.Debugging;
using Emu64.Loader;
using Xunit.Abstractions;

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
