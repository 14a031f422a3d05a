using System.Buffers.Binary;
using Emu64.Loader;
using Emu64.Memory;
using static Emu64.Tests.Support.Images;

namespace Emu64.Tests.Platform;

/// <summary>
/// Where the multiboot loader writes its information structure: at 0x9000 (QEMU's place) when the image
/// leaves it free, else in a free page below 640 KiB; never over a byte of the image or of a module.
/// </summary>
[Trait("Category", "Platform")]
public class MultibootPlacementTests
{
    private static uint U32(PhysicalMemory m, ulong a) => (uint)m.Read(a, 4);

    /// <summary>An ELF32 multiboot image with one segment at <paramref name="addr"/>: header, then a recognisable pattern.</summary>
    private static byte[] Image(uint addr, int fileBytes, ulong memSize = 0)
    {
        var tail = new byte[fileBytes - 12];
        for (int k = 0; k < tail.Length; k++) tail[k] = (byte)(k * 7 + 1);
        return Elf(addr, false, new Seg(addr, Multiboot(null, tail), memSize));
    }

    private static void AssertInfoOutside(PhysicalMemory mem, uint info, ulong start, ulong end)
    {
        uint mmap = U32(mem, info + 48), mmapLen = U32(mem, info + 44), cmdline = U32(mem, info + 16), loader = U32(mem, info + 64);
        foreach (var (a, n) in new (ulong, ulong)[] { (info, 116), (mmap, mmapLen), (cmdline, 1), (loader, 5) })
            Assert.True(a + n <= start || a >= end, $"multiboot data at 0x{a:x} (+{n}) lies inside the image [0x{start:x}, 0x{end:x})");
    }

    [Fact]
    public void The_information_is_at_0x9000_when_the_image_leaves_that_place_free()
    {
        var mem = new PhysicalMemory(16 << 20);
        var r = Emu64.Loader.Multiboot.Load(mem, Image(0x100000, 0x1000), "k", "", []);
        Assert.Equal(0x9000u, r.InfoAddress);
        Assert.Equal(0x24Fu, U32(mem, 0x9000));
    }

    [Fact]
    public void An_image_loaded_over_0x9000_keeps_every_byte_and_the_information_moves_to_the_first_free_page_below_640_KiB()
    {
        // A real-mode program linked at 0x8000 and running to 0xA86C, as kvm-unit-tests' realmode.flat.
        var mem = new PhysicalMemory(16 << 20);
        var image = Image(0x8000, 0x286C);
        var r = Emu64.Loader.Multiboot.Load(mem, image, "k", "arg", []);

        Assert.Equal(0x1000u, r.InfoAddress);                   // the first page at or above 0x1000 with room
        Assert.Equal(0x24Fu, U32(mem, r.InfoAddress));          // flags: mem, boot device, cmdline, mods, mmap, loader name
        AssertInfoOutside(mem, r.InfoAddress, 0x8000, 0xA86C);
        var loaded = new byte[0x286C];
        for (int k = 0; k < loaded.Length; k++) loaded[k] = (byte)mem.Read(0x8000 + (ulong)k, 1);
        Assert.Equal(ElfSegmentBytes(image), loaded);
        Assert.Equal(0x2BADB002u, Emu64.Loader.Multiboot.BootMagic);
    }

    [Fact]
    public void An_image_over_0x9000_with_a_module_gets_the_information_in_the_staging_page_clear_of_both()
    {
        var mem = new PhysicalMemory(16 << 20);
        // The image covers [0x1000, 0x9800) (bss included). As QEMU, the module goes after the kernel and
        // one staging page: [0xB000, 0xE000); the staging page 0xA000 is the first free one.
        var r = Emu64.Loader.Multiboot.Load(mem, Image(0x1000, 0x1000, 0x8800), "k", "",
            [new BootModule("mod", new byte[0x3000])]);
        uint mods = U32(mem, r.InfoAddress + 24);
        Assert.Equal(0xB000u, U32(mem, mods));
        Assert.Equal(0xE000u, U32(mem, mods + 4));
        Assert.Equal(0xA000u, r.InfoAddress);
        AssertInfoOutside(mem, r.InfoAddress, 0x1000, 0x9800);
        AssertInfoOutside(mem, r.InfoAddress, 0xB000, 0xE000);
    }

    [Fact]
    public void The_information_skips_pages_a_module_occupies()
    {
        // [0x1000, 0xA000) is the image and [0xA000, 0xC000) a module: the first free page is 0xC000.
        Assert.Equal(0xC000u, Emu64.Loader.Multiboot.PlaceInfo(0x300, [(0x1000, 0xA000), (0xA000, 0xC000)]));
        // A range that would cross into the module is not free either.
        Assert.Equal(0xD000u, Emu64.Loader.Multiboot.PlaceInfo(0x300, [(0x1000, 0xA000), (0xA000, 0xC000), (0xC100, 0xD000)]));
    }

    [Fact]
    public void An_image_filling_low_memory_leaves_no_room_and_is_refused_with_one_line()
    {
        var mem = new PhysicalMemory(16 << 20);
        var e = Assert.Throws<ImageException>(() => Emu64.Loader.Multiboot.Load(mem, Image(0x1000, 0x1000, 0x9E000), "k", "", []));
        Assert.Equal("no room for the multiboot information below 0x9f000 clear of the kernel image and modules", e.Message);
    }

    /// <summary>The file bytes of the first segment of an image built by <see cref="Image"/> (it is the whole tail after the headers).</summary>
    private static byte[] ElfSegmentBytes(byte[] elf)
    {
        uint phoff = BinaryPrimitives.ReadUInt32LittleEndian(elf.AsSpan(28));
        uint off = BinaryPrimitives.ReadUInt32LittleEndian(elf.AsSpan((int)phoff + 4));
        uint filesz = BinaryPrimitives.ReadUInt32LittleEndian(elf.AsSpan((int)phoff + 16));
        return elf.AsSpan((int)off, (int)filesz).ToArray();
    }
}
