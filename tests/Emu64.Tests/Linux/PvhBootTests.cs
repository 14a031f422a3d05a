using System.Buffers.Binary;
using Emu64.Cpu;
using Emu64.Loader;
using Emu64.Tests.Support;
using static Iced.Intel.AssemblerRegisters;
using static Emu64.Tests.Support.Images;
using CpuSeg = Emu64.Cpu.Seg;

namespace Emu64.Tests.Linux;

/// <summary>
/// The PVH loader on hand-built ELF files with the "Xen" XEN_ELFNOTE_PHYS32_ENTRY note (as vmlinux has it
/// with CONFIG_PVH): the entry state of Xen's PVH ABI and struct hvm_start_info field by field.
/// </summary>
[Trait("Category", "Linux")]
public class PvhBootTests
{
    private const ulong Load = 0x1000000, Entry = 0x1000010;
    private static readonly byte[] Hlt = Enumerable.Repeat((byte)0xF4, 4096).ToArray();

    /// <summary>A vmlinux-like ELF64: linked at __START_KERNEL_map, loaded at 16 MiB, with the PVH note.</summary>
    private static byte[] Vmlinux(byte[] code, int noteSize = 8, bool is64 = true)
        => ElfWithNote(0xFFFFFFFF81000000, is64, PvhNote(Entry, noteSize), new Images.Seg(Load, code, (ulong)code.Length + 0x3000));

    private static Machine LoadPvh(byte[] image, string append = "", params byte[][] initrds)
    {
        var m = new Machine(new MachineOptions { RamBytes = 256UL << 20, Append = append, Output = Stream.Null });
        Assert.Equal(KernelFormat.Pvh, m.LoadKernel(image, "vmlinux", initrds.Select((d, k) => new BootModule($"initrd{k}", d)).ToList()));
        return m;
    }

    private static byte[] Read(Machine m, ulong pa, int n)
    {
        var b = new byte[n];
        m.Memory.ReadBytes(pa, b);
        return b;
    }

    [Theory]
    [InlineData(8, true)]    // Linux's note: a .quad on x86-64
    [InlineData(4, true)]    // a .long, as the PVH ABI first defined it
    [InlineData(8, false)]   // QEMU also takes the note from an ELF32 file
    public void A_kernel_with_a_PVH_note_is_entered_at_the_note_s_address_in_the_state_the_PVH_ABI_defines(int noteSize, bool is64)
    {
        var m = LoadPvh(Vmlinux(Hlt, noteSize, is64));
        var c = m.Cpu;
        Assert.Equal(Entry, c.Rip);
        Assert.Equal(CpuMode.Protected32, c.Mode);
        Assert.Equal(Cr0.Pe | Cr0.Et, c.CR0);                   // PE; paging and the other writable bits clear (ET is fixed to 1)
        Assert.Equal(0UL, c.CR4);
        Assert.Equal(0UL, c.Rflags & (RFlags.IF | RFlags.TF | RFlags.VM));
        Assert.Equal(0x10000UL, c.R[Reg.RBX]);                  // EBX: hvm_start_info
        var cs = c.Segs[CpuSeg.CS];
        Assert.Equal((0UL, 0xFFFFFFFFu, true), (cs.Base, cs.Limit, cs.Db));
        foreach (int s in new[] { CpuSeg.DS, CpuSeg.ES, CpuSeg.SS })
            Assert.Equal((0UL, 0xFFFFFFFFu, true), (c.Segs[s].Base, c.Segs[s].Limit, c.Segs[s].Db));
        Assert.Equal((0UL, 0x67u, (ushort)0x8B), (c.Tr.Base, c.Tr.Limit, c.Tr.Attr));   // an active 32-bit TSS, base 0, limit 0x67
        Assert.Equal(Hlt, Read(m, Load, Hlt.Length));
        Assert.True(Read(m, Load + 0x1000, 0x3000).AsSpan().IndexOfAnyExcept((byte)0) < 0, "the segment's bss is zero");
    }

    [Fact]
    public void Hvm_start_info_holds_the_magic_version_1_command_line_initrd_module_and_the_e820_memory_map()
    {
        var initrd = Enumerable.Range(0, 7000).Select(k => (byte)(k * 7)).ToArray();
        var m = LoadPvh(Vmlinux(Hlt), "console=ttyS0 earlyprintk", initrd);
        var si = Read(m, 0x10000, 56);
        uint U32(byte[] b, int o) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(o));
        ulong U64(byte[] b, int o) => BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(o));
        Assert.Equal(0x336EC578u, U32(si, 0));                 // magic
        Assert.Equal(1u, U32(si, 4));                          // version
        Assert.Equal(0u, U32(si, 8));                          // flags
        Assert.Equal(1u, U32(si, 12));                         // nr_modules
        Assert.Equal(0x10040UL, U64(si, 16));                  // modlist_paddr
        Assert.Equal(0x20000UL, U64(si, 24));                  // cmdline_paddr
        Assert.Equal(0xF0000UL, U64(si, 32));                  // rsdp_paddr: the platform's RSDP, in the reserved BIOS segment
        Assert.Equal(0x10080UL, U64(si, 40));                  // memmap_paddr
        Assert.Equal(6u, U32(si, 48));                         // memmap_entries
        Assert.Equal(0u, U32(si, 52));                         // reserved
        Assert.Equal("console=ttyS0 earlyprintk\0", System.Text.Encoding.ASCII.GetString(Read(m, 0x20000, 26)));
        // The module: at the top of usable RAM (256 MiB - 128 KiB), page-aligned, as the Linux path places the initrd.
        var mod = Read(m, 0x10040, 32);
        ulong rd = (0xFFE0000UL - 7000) & ~0xFFFUL;
        Assert.Equal((rd, 7000UL, 0UL, 0UL), (U64(mod, 0), U64(mod, 8), U64(mod, 16), U64(mod, 24)));
        Assert.Equal(initrd, Read(m, rd, initrd.Length));
        // The memory map: 24-byte entries (addr, size, type, reserved 0), the e820 map.
        var mm = Read(m, 0x10080, 24 * 6);
        var map = E820.Map(256UL << 20);
        for (int k = 0; k < 6; k++)
            Assert.Equal((map[k].Base, map[k].Length, map[k].Type, 0u), (U64(mm, 24 * k), U64(mm, 24 * k + 8), U32(mm, 24 * k + 16), U32(mm, 24 * k + 20)));
        Assert.Equal((0xFFE0000UL, 0x20000UL, 2u), (map[4].Base, map[4].Length, map[4].Type));
    }

    [Fact]
    public void Without_an_initrd_nr_modules_and_modlist_paddr_are_zero()
    {
        var si = Read(LoadPvh(Vmlinux(Hlt)), 0x10000, 56);
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(si.AsSpan(12)));
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(si.AsSpan(16)));
    }

    [Fact]
    public void A_PVH_kernel_runs_from_its_entry_and_reads_the_command_line_through_EBX()
    {
        var code = LinuxImages.Code32((uint)Load, a =>
        {
            for (int k = 0; k < 16; k++) a.nop();               // the entry is 16 bytes in
            a.mov(esp, 0x90000);                                // the protocols give no stack
            a.mov(esi, __dword_ptr[ebx + 24]);                  // cmdline_paddr (low half)
            LinuxImages.PrintString(a, esi);
            a.mov(eax, __dword_ptr[ebx]);
            LinuxImages.Hex32(a);
            LinuxImages.Exit(a, 3);
        });
        var r = Run.Image(Vmlinux(code), append: "init=/init");
        Assert.Equal(StopReason.DebugExit, r.Reason);
        Assert.Equal(7, r.ExitCode);
        Assert.Equal("init=/init\n336ec578\n", r.Console);
    }

    [Fact]
    public void A_vmlinux_with_both_a_multiboot_header_and_a_PVH_note_boots_through_multiboot_as_QEMU_does()
    {
        var mb = Multiboot(null, new byte[4096 - 12]);
        var image = ElfWithNote(0x100000, false, PvhNote(0x100000), new Images.Seg(0x100000, mb));
        var m = new Machine(new MachineOptions { Output = Stream.Null });
        Assert.Equal(KernelFormat.Multiboot, m.LoadKernel(image, "k", []));
        Assert.Equal(0x2BADB002UL, m.Cpu.R[Reg.RAX]);
    }
}
