using System.Buffers.Binary;
using Emu64.Cpu;
using Emu64.Loader;
using Emu64.Tests.Support;
using static Iced.Intel.AssemblerRegisters;
using CpuSeg = Emu64.Cpu.Seg;

namespace Emu64.Tests.Linux;

/// <summary>
/// The bzImage loader on a hand-built image (LinuxImages.BzImage): the entry state of the Linux 32-bit boot
/// protocol (Documentation/arch/x86/boot.rst), boot_params field by field, the initrd's placement as QEMU does
/// it, and the e820 map against the multiboot map.
/// </summary>
[Trait("Category", "Linux")]
public class LinuxBootTests
{
    private static readonly byte[] Hlt = Enumerable.Repeat((byte)0xF4, 4096).ToArray();

    private static Machine Load(byte[] image, string append = "", ulong ramMiB = 512, params byte[][] initrds)
    {
        var m = new Machine(new MachineOptions { RamBytes = ramMiB << 20, Append = append, Output = Stream.Null });
        var kind = m.LoadKernel(image, "vmlinuz", initrds.Select((d, k) => new BootModule($"initrd{k}", d)).ToList());
        Assert.Equal(KernelFormat.BzImage, kind);
        return m;
    }

    private static byte[] Read(Machine m, ulong pa, int n)
    {
        var b = new byte[n];
        m.Memory.ReadBytes(pa, b);
        return b;
    }

    [Fact]
    public void A_bzImage_is_entered_at_1_MiB_in_flat_32_bit_protected_mode_with_ESI_at_boot_params_as_the_32_bit_boot_protocol_says()
    {
        var m = Load(LinuxImages.BzImage(Hlt));
        var c = m.Cpu;
        Assert.Equal(0x100000UL, c.Rip);
        Assert.Equal(CpuMode.Protected32, c.Mode);
        Assert.Equal(Cr0.Pe | Cr0.Et, c.CR0);                  // paging off
        Assert.Equal(0UL, c.CR4);
        Assert.Equal(0UL, c.Rflags & RFlags.IF);                // interrupts disabled
        Assert.Equal((ushort)0x10, c.Segs[CpuSeg.CS].Selector); // __BOOT_CS
        foreach (int s in new[] { CpuSeg.DS, CpuSeg.ES, CpuSeg.SS })
        {
            Assert.Equal((ushort)0x18, c.Segs[s].Selector);     // __BOOT_DS
            Assert.Equal(0UL, c.Segs[s].Base);
            Assert.Equal(0xFFFFFFFFu, c.Segs[s].Limit);
        }
        Assert.Equal(0x10000UL, c.R[Reg.RSI]);
        Assert.Equal(0UL, c.R[Reg.RBP]);
        Assert.Equal(0UL, c.R[Reg.RDI]);
        Assert.Equal(0UL, c.R[Reg.RBX]);
        // The GDT the protocol requires: __BOOT_CS flat execute/read, __BOOT_DS flat read/write, 4 GiB, 32-bit.
        Assert.Equal(0x11000UL, c.Gdtr.Base);
        Assert.Equal((ushort)31, c.Gdtr.Limit);
        var gdt = Read(m, 0x11000, 32);
        Assert.Equal(0x00CF9B000000FFFFUL, BinaryPrimitives.ReadUInt64LittleEndian(gdt.AsSpan(0x10)));
        Assert.Equal(0x00CF93000000FFFFUL, BinaryPrimitives.ReadUInt64LittleEndian(gdt.AsSpan(0x18)));
        // The protected-mode kernel (the file after 1 + setup_sects sectors) is at 1 MiB.
        Assert.Equal(Hlt, Read(m, 0x100000, Hlt.Length));
    }

    [Fact]
    public void Boot_params_is_the_setup_header_copied_from_the_file_with_loader_type_command_line_initrd_and_e820_filled_in()
    {
        var image = LinuxImages.BzImage(Hlt);
        var initrd = Enumerable.Range(0, 10000).Select(k => (byte)k).ToArray();
        var m = Load(image, "console=ttyS0 quiet", 512, initrd);
        var bp = Read(m, 0x10000, 4096);
        uint U32(int o) => BinaryPrimitives.ReadUInt32LittleEndian(bp.AsSpan(o));
        ulong U64(int o) => BinaryPrimitives.ReadUInt64LittleEndian(bp.AsSpan(o));

        // Loader-written fields.
        Assert.Equal(0xB0, bp[0x210]);                          // type_of_loader: QEMU
        Assert.Equal(0x100000u, U32(0x214));                    // code32_start
        Assert.Equal(0x20000u, U32(0x228));                     // cmd_line_ptr
        Assert.Equal("console=ttyS0 quiet\0", System.Text.Encoding.ASCII.GetString(Read(m, 0x20000, 20)));
        // The initrd at the top of usable RAM (512 MiB - 128 KiB), page-aligned: (0x1FFE0000 - 10000) & ~0xFFF.
        Assert.Equal(0x1FFDD000u, U32(0x218));                  // ramdisk_image
        Assert.Equal(10000u, U32(0x21C));                       // ramdisk_size
        Assert.Equal(initrd, Read(m, 0x1FFDD000, initrd.Length));
        Assert.Equal(0u, U32(0x23C));                           // hardware_subarch: X86_SUBARCH_PC
        Assert.Equal(0xF0000UL, U64(0x070));                    // acpi_rsdp_addr: the platform's RSDP, in the reserved BIOS segment
        Assert.Equal(0x1FFE0000u / 1024 - 1024, U32(0x1E0));    // alt_mem_k
        Assert.Equal(0, bp[0x1EF]);                             // sentinel clear: Linux keeps every field
        Assert.Equal(0u, U32(0x0C0) | U32(0x0C4) | U32(0x0C8)); // ext_ramdisk_image/size, ext_cmd_line_ptr
        Assert.True(bp.AsSpan(0, 0x40).IndexOfAnyExcept((byte)0) < 0, "screen_info stays zero: no display");

        // Everything else in the header is the file's, byte for byte, up to its end (0x202 + the jump's offset byte).
        var loaderFields = new HashSet<int>();
        foreach (var (o, n) in new[] { (0x210, 1), (0x214, 4), (0x218, 4), (0x21C, 4), (0x228, 4) }) for (int k = 0; k < n; k++) loaderFields.Add(o + k);
        for (int o = 0x1F1; o < 0x26C; o++)
            if (!loaderFields.Contains(o)) Assert.True(image[o] == bp[o], $"boot_params byte 0x{o:x} is 0x{bp[o]:x2}, the file's is 0x{image[o]:x2}");
        Assert.Equal(0, bp[0x26C]);                             // past the header: not copied
        Assert.Equal(0x53726448u, U32(0x202));
        Assert.Equal((ushort)0x020F, BinaryPrimitives.ReadUInt16LittleEndian(bp.AsSpan(0x206)));

        // e820: the QEMU "pc" map for 512 MiB.
        Assert.Equal(6, bp[0x1E8]);
        var expected = new (ulong, ulong, uint)[]
        {
            (0, 0x9FC00, 1), (0x9FC00, 0x400, 2), (0xF0000, 0x10000, 2), (0x100000, 0x1FEE0000, 1), (0x1FFE0000, 0x20000, 2), (0xFFFC0000, 0x40000, 2),
        };
        for (int k = 0; k < expected.Length; k++)
            Assert.Equal(expected[k], (U64(0x2D0 + 20 * k), U64(0x2D8 + 20 * k), U32(0x2E0 + 20 * k)));
        Assert.Equal(0UL, U64(0x2D0 + 20 * 6));
    }

    [Fact]
    public void The_initrd_ends_below_initrd_addr_max_when_that_is_lower_than_the_top_of_RAM()
    {
        var m = Load(LinuxImages.BzImage(Hlt, new() { InitrdAddrMax = 0x0FFFFFFF }), "", 512, new byte[5000]);
        var bp = Read(m, 0x10000, 4096);
        Assert.Equal((0x10000000u - 5000) & ~0xFFFu, BinaryPrimitives.ReadUInt32LittleEndian(bp.AsSpan(0x218)));
    }

    [Fact]
    public void Without_an_initrd_ramdisk_image_and_size_are_zero()
    {
        var bp = Read(Load(LinuxImages.BzImage(Hlt)), 0x10000, 4096);
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(bp.AsSpan(0x218)));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(bp.AsSpan(0x21C)));
    }

    [Theory]
    [InlineData(0x020E, 0xF5A40UL)]   // protocol 2.14 added acpi_rsdp_addr
    [InlineData(0x020D, 0UL)]         // older kernels do not read it: left zero
    public void Acpi_rsdp_addr_carries_the_platform_s_RSDP_from_protocol_2_14(int version, ulong expected)
    {
        var mem = new Emu64.Memory.PhysicalMemory(512UL << 20);
        var r = LinuxBoot.Load(mem, LinuxImages.BzImage(Hlt, new() { Version = (ushort)version }), "", [], 0xF5A40);
        var b = new byte[8];
        mem.ReadBytes(r.BootParams + 0x70, b);
        Assert.Equal(expected, BinaryPrimitives.ReadUInt64LittleEndian(b));
    }

    [Fact]
    public void The_decompression_buffer_starts_at_pref_address_or_at_the_load_address_aligned_up_if_higher()
    {
        var mem = new Emu64.Memory.PhysicalMemory(512UL << 20);
        var r = LinuxBoot.Load(mem, LinuxImages.BzImage(Hlt), "", [], 0);
        Assert.Equal((0x1000000UL, 0x1800000UL), (r.DecompressStart, r.DecompressEnd));
        r = LinuxBoot.Load(mem, LinuxImages.BzImage(Hlt, new() { PrefAddress = 0x100000, KernelAlignment = 0x400000 }), "", [], 0);
        Assert.Equal(0x400000UL, r.DecompressStart);
        r = LinuxBoot.Load(mem, LinuxImages.BzImage(Hlt, new() { Relocatable = 0 }), "", [], 0);
        Assert.Equal(0x1000000UL, r.DecompressStart);
    }

    [Fact]
    public void The_Linux_e820_map_lists_exactly_the_entries_of_the_multiboot_memory_map()
    {
        foreach (ulong mib in new ulong[] { 64, 512, 2047 })
        {
            // Multiboot: size-prefixed entries at mmap_addr.
            var mb = new Machine(new MachineOptions { RamBytes = mib << 20, Output = Stream.Null });
            mb.LoadKernel(TestKernel.Build(a => TestKernel.Exit(a, 0)), "k", []);
            var info = Read(mb, mb.Cpu.R[Reg.RBX], 116);
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(info.AsSpan(44)), at = BinaryPrimitives.ReadUInt32LittleEndian(info.AsSpan(48));
            var mmap = Read(mb, at, (int)len);
            var mbMap = new List<(ulong, ulong, uint)>();
            for (int o = 0; o < mmap.Length; o += 24)
                mbMap.Add((BinaryPrimitives.ReadUInt64LittleEndian(mmap.AsSpan(o + 4)), BinaryPrimitives.ReadUInt64LittleEndian(mmap.AsSpan(o + 12)), BinaryPrimitives.ReadUInt32LittleEndian(mmap.AsSpan(o + 20))));
            // Linux: boot_params.e820_table.
            var bp = Read(Load(LinuxImages.BzImage(Hlt), "", mib), 0x10000, 4096);
            var lxMap = Enumerable.Range(0, bp[0x1E8]).Select(k => (BinaryPrimitives.ReadUInt64LittleEndian(bp.AsSpan(0x2D0 + 20 * k)),
                BinaryPrimitives.ReadUInt64LittleEndian(bp.AsSpan(0x2D8 + 20 * k)), BinaryPrimitives.ReadUInt32LittleEndian(bp.AsSpan(0x2E0 + 20 * k)))).ToList();
            Assert.Equal(mbMap, lxMap);
            Assert.Equal(E820.Map(mib << 20).Select(e => (e.Base, e.Length, e.Type)), lxMap);
        }
    }

    [Fact]
    public void A_bzImage_payload_runs_reloads_its_segments_from_the_loader_s_GDT_and_reads_boot_params_through_ESI()
    {
        // The payload does what startup_32 relies on: far-jumps through __BOOT_CS, loads __BOOT_DS, follows
        // boot_params.cmd_line_ptr and prints the command line, prints ramdisk_size, then exits.
        var payload = LinuxImages.Code32(0x100000, a =>
        {
            var reloaded = a.CreateLabel();
            a.jmp(0x10, 0x100007);                              // 7 bytes: lands right after itself
            a.mov(eax, 0x18); a.mov(ds, ax); a.mov(es, ax); a.mov(ss, ax);
            a.mov(esp, 0x90000);                                // the protocols give no stack
            a.mov(edi, __dword_ptr[esi + 0x228]);
            LinuxImages.PrintString(a, edi);
            a.mov(eax, __dword_ptr[esi + 0x21C]);
            LinuxImages.Hex32(a);
            a.mov(eax, __dword_ptr[esi + 0x210]);               // type_of_loader, loadflags, setup_move_size
            a.and(eax, 0xFF);
            LinuxImages.Hex32(a);
            LinuxImages.Exit(a, 0x21);
        });
        var r = Run.Image(LinuxImages.BzImage(payload), append: "root=/dev/ram0 console=ttyS0", initrd: new byte[0x1234]);
        Assert.Equal(StopReason.DebugExit, r.Reason);
        Assert.Equal((0x21 << 1) | 1, r.ExitCode);
        Assert.Equal("root=/dev/ram0 console=ttyS0\n00001234\n000000b0\n", r.Console);
    }

    /// <summary>Damaged setup headers (random bytes over the header, random lengths): each loads or is refused with one line.</summary>
    [Fact]
    public void Random_damage_to_the_setup_header_loads_or_is_refused_with_a_one_line_image_error()
    {
        var rng = new Random(16);
        int loaded = 0, refused = 0;
        for (int k = 0; k < 400; k++)
        {
            var img = LinuxImages.BzImage(new byte[rng.Next(1, 3) * 4096], new() { PrefAddress = 0x200000, InitSize = 0x200000 });
            for (int n = rng.Next(1, 6); n > 0; n--) img[rng.Next(0x1F1, 0x270)] = (byte)rng.Next(256);
            if (rng.Next(4) == 0) img = img[..rng.Next(0x206, img.Length)];
            var m = new Machine(new MachineOptions { RamBytes = 8UL << 20, Append = new string('x', rng.Next(0, 40)), MaxInstructions = 1000, Output = Stream.Null });
            var initrd = rng.Next(3) == 0 ? [new BootModule("i", new byte[rng.Next(0, 3 << 20)])] : Array.Empty<BootModule>();
            try { m.LoadKernel(img, "vmlinuz", initrd); loaded++; m.Run(); }
            catch (ImageException e) { refused++; Assert.DoesNotContain("\n", e.Message); }
        }
        Assert.True(loaded > 0 && refused > 0, $"loaded {loaded}, refused {refused}");
    }
}
