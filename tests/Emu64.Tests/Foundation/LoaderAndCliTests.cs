using System.Buffers.Binary;
using System.Diagnostics;
using Emu64.Loader;
using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Foundation;

/// <summary>Images the loader must refuse with a clear message, and the emu64 program end to end.</summary>
public class LoaderAndCliTests
{
    /// <summary>A minimal ELF64 with one PT_LOAD segment at <paramref name="addr"/> holding <paramref name="payload"/>.</summary>
    public static byte[] Elf64(byte[] payload, ulong addr = 0x100000, ulong entry = 0x100000)
    {
        var f = new byte[64 + 56 + payload.Length];
        f[0] = 0x7F; f[1] = (byte)'E'; f[2] = (byte)'L'; f[3] = (byte)'F'; f[4] = 2; f[5] = 1; f[6] = 1;
        var s = f.AsSpan();
        BinaryPrimitives.WriteUInt16LittleEndian(s[16..], 2);        // ET_EXEC
        BinaryPrimitives.WriteUInt16LittleEndian(s[18..], 62);       // EM_X86_64
        BinaryPrimitives.WriteUInt32LittleEndian(s[20..], 1);
        BinaryPrimitives.WriteUInt64LittleEndian(s[24..], entry);
        BinaryPrimitives.WriteUInt64LittleEndian(s[32..], 64);       // e_phoff
        BinaryPrimitives.WriteUInt16LittleEndian(s[52..], 64);       // e_ehsize
        BinaryPrimitives.WriteUInt16LittleEndian(s[54..], 56);       // e_phentsize
        BinaryPrimitives.WriteUInt16LittleEndian(s[56..], 1);        // e_phnum
        var p = s[64..];
        BinaryPrimitives.WriteUInt32LittleEndian(p, 1);              // PT_LOAD
        BinaryPrimitives.WriteUInt32LittleEndian(p[4..], 7);
        BinaryPrimitives.WriteUInt64LittleEndian(p[8..], 120);       // p_offset
        BinaryPrimitives.WriteUInt64LittleEndian(p[16..], addr);
        BinaryPrimitives.WriteUInt64LittleEndian(p[24..], addr);
        BinaryPrimitives.WriteUInt64LittleEndian(p[32..], (ulong)payload.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(p[40..], (ulong)payload.Length);
        payload.CopyTo(f, 120);
        return f;
    }

    /// <summary>32-bit code that exits through isa-debug-exit with <paramref name="value"/>.</summary>
    private static byte[] ExitCode32(uint value)
    {
        var a = new Assembler(32);
        a.mov(dx, (ushort)0xF4); a.mov(eax, value); a.@out(dx, eax); a.hlt();
        var w = new MemoryStream();
        a.Assemble(new StreamCodeWriter(w), 0x100000);
        return w.ToArray();
    }

    private static byte[] MultibootHeaderWithoutAddressFields()
    {
        var h = new byte[12];
        BinaryPrimitives.WriteUInt32LittleEndian(h, 0x1BADB002);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(4), 3);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(8), unchecked(0u - 0x1BADB002u - 3));
        return h;
    }

    public static TheoryData<string, byte[], string> BadImages()
    {
        var elf = Elf64(new byte[4096]);
        return new()
        {
            { "truncated ELF64 header", elf[..40], "ELF header is truncated" },
            { "ELF64 whose segment runs past the end of the file", elf[..2000], "lies past the end of the file" },
            { "ELF64 with a multiboot header but no address fields", Elf64(MultibootHeaderWithoutAddressFields().Concat(new byte[64]).ToArray()), "ELF64 kernels need the multiboot address fields" },
            { "ELF64 linked for 4 GiB up without multiboot header or PVH note", Elf64(new byte[16], entry: 0xFFFFFFFF80100000), "ELF64 file has no multiboot header (magic 0x1BADB002 in the first 8 KiB) and no PVH entry note" },
            { "ELF32 without multiboot header or PVH note", Images.Elf(0x100000, false, new Images.Seg(0x100000, new byte[64])), "ELF32 file has no multiboot header" },
            { "no multiboot header", new byte[16384], "no multiboot header" },
            { "a file too small to hold a header", new byte[5], "too small" },
        };
    }

    [Theory, MemberData(nameof(BadImages))]
    public void A_malformed_image_is_refused_with_a_message_naming_the_problem(string what, byte[] image, string message)
    {
        var m = new Machine(new MachineOptions());
        var e = Assert.Throws<ImageException>(() => m.LoadKernel(image, "k", Array.Empty<BootModule>()));
        Assert.Contains(message, e.Message);
        Assert.False(string.IsNullOrWhiteSpace(what));
    }

    [Fact]
    public void An_image_that_does_not_fit_in_RAM_is_refused_naming_the_RAM_size()
    {
        var image = TestKernel.Build(a => TestKernel.Exit(a, 0));
        var e = Assert.Throws<ImageException>(() => Run.Image(image, ramMiB: 2));
        Assert.Contains("does not fit in 2 MiB of RAM", e.Message);
    }

    [Fact]
    public void An_ELF64_without_a_multiboot_header_or_PVH_note_is_refused_and_not_run_as_32_bit_code()
    {
        var m = new Machine(new MachineOptions());
        var e = Assert.Throws<ImageException>(() => m.LoadKernel(Elf64(ExitCode32(5)), "k", Array.Empty<BootModule>()));
        Assert.Equal("ELF64 file has no multiboot header (magic 0x1BADB002 in the first 8 KiB) and no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); it is not a kernel Emu64 can boot", e.Message);
        Assert.Equal(0UL, m.Cpu.Retired);
    }

    [Fact]
    public void The_host_s_bin_ls_is_refused_for_having_no_multiboot_header_rather_than_for_where_its_segments_lie()
    {
        // /bin/ls is a position-independent ELF64 linked at 0: before, its segments were checked (and refused as
        // overlapping the multiboot area) as if it were a kernel. A synthetic stand-in when the host has none.
        byte[] ls = File.Exists("/bin/ls") ? File.ReadAllBytes("/bin/ls")
            : Images.Elf(0x6000, true, new Images.Seg(0, new byte[0x4000]), new Images.Seg(0x4000, new byte[0x1000]));
        var m = new Machine(new MachineOptions());
        var e = Assert.Throws<ImageException>(() => m.LoadKernel(ls, "/bin/ls", Array.Empty<BootModule>()));
        Assert.StartsWith("ELF64 file has no multiboot header", e.Message);
    }

    // ---- the emu64 program -----------------------------------------------------------------

    public sealed record Proc(byte[] Stdout, string Stderr, int Status);

    private static Proc Emu64(params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "emu64.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var so = new MemoryStream();
        var copy = p.StandardOutput.BaseStream.CopyToAsync(so);
        var se = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(60_000)) { p.Kill(true); throw new TimeoutException("emu64 did not exit"); }
        copy.Wait();
        return new Proc(so.ToArray(), se.Result, p.ExitCode);
    }

    private static string WriteTemp(byte[] image)
    {
        var path = Qemu.TempKernelPath();
        File.WriteAllBytes(path, image);
        return path;
    }

    [Fact]
    public void Emu64_run_writes_only_the_serial_bytes_to_stdout_and_exits_with_the_debug_exit_status()
    {
        var k = QemuKernels.Table();
        var path = WriteTemp(k.Image);
        try
        {
            var r = Emu64("run", path);
            Assert.Equal(k.Expected, System.Text.Encoding.Latin1.GetString(r.Stdout));
            Assert.Equal(k.ExitStatus, r.Status);
            Assert.Equal("", r.Stderr);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Emu64_run_with_stats_prints_instructions_seconds_and_mips_to_stderr_only()
    {
        var k = QemuKernels.BootInfo("a b");
        var path = WriteTemp(k.Image);
        try
        {
            var r = Emu64("run", path, "--append", "a b", "-m", "64M", "--stats");
            Assert.Equal(k.Expected.Replace("{PATH}", path).Replace("mem_upper 129920", "mem_upper 64384"), System.Text.Encoding.Latin1.GetString(r.Stdout));
            Assert.Equal(k.ExitStatus, r.Status);
            var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Matches(@"^instructions: [1-9][0-9]*$", lines.Single(l => l.StartsWith("instructions:")));
            Assert.Matches(@"^seconds: [0-9]+\.[0-9]+$", lines.Single(l => l.StartsWith("seconds:")));
            Assert.Matches(@"^mips: [0-9]+\.[0-9]+$", lines.Single(l => l.StartsWith("mips:")));
            Assert.All(lines, l => Assert.Matches(@"^[a-z0-9_.A-Z]+: \S+$", l));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Emu64_run_of_a_triple_faulting_kernel_exits_4_and_reports_the_registers()
    {
        var image = TestKernel.Build(a =>
        {
            TestKernel.Print(a, "before\n");
            a.mov(rax, 0x1000); a.mov(__word_ptr[rax], 0); a.lidt(__[rax]);   // an empty IDT
            a.mov(r15, 0x0123456789ABCDEF);
            a.ud2();
        });
        var path = WriteTemp(image);
        try
        {
            var r = Emu64("run", path);
            Assert.Equal("before\n", System.Text.Encoding.Latin1.GetString(r.Stdout));
            Assert.Equal(4, r.Status);
            Assert.StartsWith("emu64: triple fault", r.Stderr);
            Assert.Contains("rip=", r.Stderr);
            Assert.Contains("cr3=200000", r.Stderr);
            Assert.Contains("r15=0123456789abcdef", r.Stderr);
            Assert.Contains("idtr=0/0", r.Stderr);   // the IDT register loaded from zeroed memory at 0x1000
        }
        finally { File.Delete(path); }
    }

    public static TheoryData<string, byte[]> BadFiles() => new()
    {
        { "truncated ELF", Elf64(new byte[4096])[..40] },
        { "no multiboot header", new byte[9000] },
        { "ELF64 with a multiboot header but no address fields", Elf64(MultibootHeaderWithoutAddressFields().Concat(new byte[64]).ToArray()) },
    };

    [Theory, MemberData(nameof(BadFiles))]
    public void Emu64_run_of_a_bad_image_prints_one_error_line_and_exits_2(string what, byte[] image)
    {
        var path = WriteTemp(image);
        try
        {
            var r = Emu64("run", path);
            Assert.Empty(r.Stdout);
            Assert.Equal(2, r.Status);
            var line = Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith("emu64: ", line);
            Assert.DoesNotContain("   at ", r.Stderr);
            Assert.False(string.IsNullOrEmpty(what));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Emu64_run_of_an_image_too_big_for_the_RAM_size_exits_2_naming_the_size()
    {
        var path = WriteTemp(TestKernel.Build(a => TestKernel.Exit(a, 0)));
        try
        {
            var r = Emu64("run", path, "-m", "2M");
            Assert.Equal(2, r.Status);
            Assert.Equal("emu64: bad kernel image: kernel image [0x100000, 0x300000) does not fit in 2 MiB of RAM (use -m)\n", r.Stderr);
        }
        finally { File.Delete(path); }
    }
}
