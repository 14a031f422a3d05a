using Emu64.Loader;
using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using static Emu64.Tests.Platform.Guest;

namespace Emu64.Tests.Platform;

/// <summary>The multiboot information structure, field by field, against what QEMU's -kernel loader builds.</summary>
[Trait("Category", "Platform")]
public class MultibootInfoTests
{
    /// <summary>Prints the NUL-terminated string at the 32-bit address in EAX.</summary>
    private static void PrintString(Assembler a)
    {
        var loop = a.CreateLabel();
        var end = a.CreateLabel();
        a.mov(esi, eax);
        a.Label(ref loop);
        a.mov(al, __byte_ptr[rsi]);
        a.test(al, al);
        a.jz(end);
        a.mov(dx, TestKernel.Com1);
        a.@out(dx, al);
        a.inc(rsi);
        a.jmp(loop);
        a.Label(ref end);
        TestKernel.Print(a, "\n");
    }

    private static void Field(Assembler a, int offset, string label, int digits = 8)
    {
        a.mov(rbp, Var(0)); a.mov(rbp, __qword_ptr[rbp]);
        a.mov(eax, __dword_ptr[rbp + offset]);
        Show(a, label, digits);
    }

    public static byte[] InfoKernel() => TestKernel.Build(a =>
    {
        var mods = a.CreateLabel();
        var modsDone = a.CreateLabel();
        var map = a.CreateLabel();
        var mapDone = a.CreateLabel();
        a.mov(eax, esi);
        a.mov(rdi, Var(0)); a.mov(__qword_ptr[rdi], rax);
        Field(a, 0, "flags");
        Field(a, 4, "mem_lower");
        Field(a, 8, "mem_upper");
        Field(a, 12, "boot_device");
        TestKernel.Print(a, "cmdline=");
        a.mov(rbp, Var(0)); a.mov(rbp, __qword_ptr[rbp]); a.mov(eax, __dword_ptr[rbp + 16]); PrintString(a);
        TestKernel.Print(a, "boot loader=");
        a.mov(rbp, Var(0)); a.mov(rbp, __qword_ptr[rbp]); a.mov(eax, __dword_ptr[rbp + 64]); PrintString(a);
        Field(a, 20, "mods_count", 2);
        // modules: start, end, string
        a.mov(rbp, Var(0)); a.mov(rbp, __qword_ptr[rbp]);
        a.mov(ecx, __dword_ptr[rbp + 20]); a.mov(r12d, ecx);
        a.mov(r13d, __dword_ptr[rbp + 24]);
        a.Label(ref mods);
        a.test(r12d, r12d); a.jz(modsDone);
        a.mov(eax, __dword_ptr[r13]); Show(a, "mod start", 8);
        a.mov(eax, __dword_ptr[r13 + 4]); a.sub(eax, __dword_ptr[r13]); Show(a, "mod size", 8);
        TestKernel.Print(a, "mod string=");
        a.mov(eax, __dword_ptr[r13 + 8]); PrintString(a);
        a.add(r13d, 16); a.dec(r12d); a.jmp(mods);
        a.Label(ref modsDone);
        // memory map: size-prefixed entries of base, length, type
        a.mov(rbp, Var(0)); a.mov(rbp, __qword_ptr[rbp]);
        a.mov(r12d, __dword_ptr[rbp + 44]);
        a.mov(r13d, __dword_ptr[rbp + 48]);
        a.add(r12d, r13d);
        a.Label(ref map);
        a.cmp(r13d, r12d); a.jae(mapDone);
        a.mov(rax, __qword_ptr[r13 + 4]); Show(a, "mmap base", 16);
        a.mov(rax, __qword_ptr[r13 + 12]); Show(a, "mmap length", 16);
        a.mov(eax, __dword_ptr[r13 + 20]); Show(a, "mmap type", 2);
        a.mov(eax, __dword_ptr[r13]); a.add(r13d, eax); a.add(r13d, 4);
        a.jmp(map);
        a.Label(ref mapDone);
        TestKernel.Exit(a, 0);
    });

    private static (string Path, string Args)[] Modules(string dir)
    {
        var one = Path.Combine(dir, "one.bin");
        var two = Path.Combine(dir, "two.bin");
        File.WriteAllBytes(one, new byte[5000]);
        File.WriteAllBytes(two, new byte[100]);
        return new[] { (one, one + " first=1"), (two, two) };
    }

    private static string EmuTranscript(string kernelPath, (string Path, string Args)[] mods, string append)
    {
        var output = new MemoryStream();
        var m = new Machine(new MachineOptions { Output = output, Append = append });
        m.LoadKernel(InfoKernel(), kernelPath, mods.Select(x => new BootModule(x.Args, File.ReadAllBytes(x.Path))).ToList());
        var reason = m.Run(50_000_000);
        Assert.True(reason == StopReason.DebugExit, Emu64.Cli.Cli.Describe(m));
        return System.Text.Encoding.Latin1.GetString(output.ToArray());
    }

    [QemuFact]
    public void The_multiboot_information_matches_QEMUs_for_the_same_command_line_and_modules()
    {
        var dir = Directory.CreateTempSubdirectory("emu64-mb").FullName;
        try
        {
            var mods = Modules(dir);
            var kernel = Path.Combine(dir, "kernel.bin");
            File.WriteAllBytes(kernel, InfoKernel());
            var qemu = Qemu.RunFile(kernel, $"-cpu qemu64,vendor=GenuineIntel -append \"console=ttyS0 quiet\" -initrd \"{mods[0].Args},{mods[1].Args}\"");
            Assert.Equal(qemu, EmuTranscript(kernel, mods, "console=ttyS0 quiet"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void The_multiboot_information_has_QEMUs_flags_loader_name_memory_map_and_module_addresses()
    {
        var dir = Directory.CreateTempSubdirectory("emu64-mb").FullName;
        try
        {
            var t = EmuTranscript("k", Modules(dir), "");
            Assert.StartsWith("flags=0000024f\nmem_lower=0000027f\nmem_upper=0001fb80\nboot_device=8000ffff\ncmdline=k \nboot loader=qemu\nmods_count=02\nmod start=00301000\nmod size=00001388\n", t);
            Assert.Contains("mod start=00303000\nmod size=00000064\n", t);
            Assert.Contains("mmap base=0000000007fe0000\nmmap length=0000000000020000\nmmap type=02\n", t);
        }
        finally { Directory.Delete(dir, true); }
    }
}
