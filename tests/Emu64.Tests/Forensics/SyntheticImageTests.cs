using System.Buffers.Binary;
using Emu64.Forensics;

namespace Emu64.Tests.Forensics;

/// <summary>
/// The analysis on physical images built by hand, for what the toy kernel does not have (a vmemmap, Linux's
/// 2 MiB-page image mapping) and for what must not be found (noise, a table that maps nothing like a kernel).
/// </summary>
public class SyntheticImageTests
{
    /// <summary>RAM as a byte array with a 4-level page-table builder (tables allocated from 1 MiB up).</summary>
    private sealed class Image(ulong size) : IPhysicalImage
    {
        public readonly byte[] Ram = new byte[size];
        private ulong _next = 0x100000;
        public IReadOnlyList<PhysRange> Ranges { get; } = [new PhysRange(0, size)];
        public bool TryRead64(ulong pa, out ulong v)
        {
            v = 0;
            if (pa + 8 > (ulong)Ram.Length) return false;
            v = BinaryPrimitives.ReadUInt64LittleEndian(Ram.AsSpan((int)pa));
            return true;
        }
        public int Read(ulong pa, Span<byte> dest)
        {
            int n = (int)Math.Min((ulong)dest.Length, pa >= (ulong)Ram.Length ? 0 : (ulong)Ram.Length - pa);
            Ram.AsSpan((int)pa, n).CopyTo(dest);
            return n;
        }
        public ulong Table() { ulong t = _next; _next += 0x1000; return t; }
        private ulong Get(ulong pa) => BinaryPrimitives.ReadUInt64LittleEndian(Ram.AsSpan((int)pa));
        private void Set(ulong pa, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(Ram.AsSpan((int)pa), v);

        /// <summary>Maps [va, va+len) to pa with pages of <paramref name="page"/> bytes (4K, 2M or 1G) and leaf flags.</summary>
        public void Map(ulong pgd, ulong va, ulong pa, ulong len, ulong page, ulong flags)
        {
            int leafLevel = page == 1UL << 30 ? 3 : page == 2UL << 20 ? 2 : 1;
            for (ulong off = 0; off < len; off += page)
            {
                ulong table = pgd, v = va + off;
                for (int level = 4; level > leafLevel; level--)
                {
                    ulong slot = table + 8UL * (ulong)GuestPageTables.Index(v, level);
                    if ((Get(slot) & 1) == 0) Set(slot, Table() | 0x63 | (v < 0x800000000000 ? 4UL : 0));
                    table = Get(slot) & Pte.AddrMask;
                }
                Set(table + 8UL * (ulong)GuestPageTables.Index(v, leafLevel), (pa + off) | flags | (leafLevel > 1 ? Pte.Ps : 0));
            }
        }
    }

    private const ulong RW_NX = 0x63 | Pte.Nx, RX = 0x61, R_NX = 0x61 | Pte.Nx;

    /// <summary>A Linux-like layout: direct map with 2 MiB pages, the image with 2 MiB pages at a slide, a vmemmap, and a process PGD.</summary>
    private static (Image Img, ulong Pgd, ulong PageOffset, ulong Text, ulong Vmemmap) Linuxish(bool withVmemmap)
    {
        const ulong ram = 64UL << 20;
        var img = new Image(ram);
        ulong pgd = img.Table();
        ulong pageOffset = 0xffff888000000000 + (37UL << 30);       // a KASLR'd direct map
        ulong text = 0xffffffff81000000 + (9UL << 21);               // slide 18 MiB
        const ulong vmemmap = 0xffffea0000000000 + (5UL << 30);
        img.Map(pgd, pageOffset, 0, ram, 2UL << 20, RW_NX);
        img.Map(pgd, text, 0x1000000, 2UL << 20, 2UL << 20, RX);     // _text.._etext
        img.Map(pgd, text + (2UL << 20), 0x1200000, 2UL << 20, 2UL << 20, R_NX);
        img.Map(pgd, text + (4UL << 20), 0x1400000, 2UL << 20, 2UL << 20, RW_NX);
        if (withVmemmap) img.Map(pgd, vmemmap, 0x2000000, 2UL << 20, 2UL << 20, RW_NX);   // 64 MiB of struct pages fit in 1 MiB
        img.Map(pgd, 0xfffffe0000000000, 0x1600000, 0x3000, 0x1000, RW_NX);               // cpu_entry_area
        return (img, pgd, pageOffset, text, vmemmap);
    }

    [Fact]
    public void A_linux_like_layout_with_2M_image_pages_and_a_vmemmap_is_recovered_entry_by_entry()
    {
        var (img, pgd, pageOffset, text, vmemmap) = Linuxish(withVmemmap: true);
        var r = DumpAnalysis.Run(img);
        Assert.Equal(4, r.Levels);
        Assert.Equal(pgd, r.TopTable);
        Assert.Equal(pageOffset, r.PageOffset);
        Assert.Equal(2UL << 20, r.DirectMap!.LargestPage);
        Assert.Equal(text, r.Image!.Text);
        Assert.Equal(18L << 20, r.Image.Slide);
        Assert.Equal(0x1000000 - (text - 0xffffffff80000000), r.Image.PhysBase);
        Assert.Equal(["RX", "R NX", "RW NX"], r.Image.Sections.Select(s => s.Perms));
        Assert.Equal(vmemmap, r.Vmemmap!.Base);
        Assert.Equal(2UL << 20, r.Vmemmap.Mapped);
        Assert.Null(r.Pti);   // no process: PTI cannot be told
    }

    [Fact]
    public void A_mapping_at_a_1G_boundary_the_wrong_size_for_struct_pages_is_not_taken_for_vmemmap()
    {
        var (img, pgd, _, _, vmemmap) = Linuxish(withVmemmap: false);
        img.Map(pgd, vmemmap, 0x2000000, 8UL << 20, 2UL << 20, RW_NX);   // 8 MiB: far more than 64 MiB of RAM needs
        var r = DumpAnalysis.Run(img);
        Assert.NotNull(r.PageOffset);
        Assert.Null(r.Vmemmap);
    }

    [Fact]
    public void A_process_pgd_pair_under_PTI_is_found_and_a_user_twin_that_maps_the_direct_map_is_not()
    {
        var (img, swapper, pageOffset, _, _) = Linuxish(withVmemmap: false);
        // A process: kernel PGD at an 8 KiB-aligned address, user PGD at +4 KiB.
        ulong k = 0x200000, u = 0x201000;
        Array.Copy(img.Ram, (int)swapper + 2048, img.Ram, (int)k + 2048, 2048);   // the kernel half, copied
        ulong userPud = 0x202000;
        BinaryPrimitives.WriteUInt64LittleEndian(img.Ram.AsSpan((int)k), userPud | 0x67 | Pte.Nx);   // kernel copy: NX
        BinaryPrimitives.WriteUInt64LittleEndian(img.Ram.AsSpan((int)u), userPud | 0x67);
        // the user PGD's kernel half: the cpu_entry_area's PGD entry only
        int cea = GuestPageTables.Index(0xfffffe0000000000, 4);
        Array.Copy(img.Ram, (int)swapper + 8 * cea, img.Ram, (int)u + 8 * cea, 8);
        var r = DumpAnalysis.Run(img);
        Assert.True(r.Pti);
        var p = Assert.Single(r.Processes);
        Assert.Equal((k, (ulong?)u, 1), (p.Kernel, p.User, p.UserEntries));
        Assert.Equal(swapper, r.TopTable);

        // The same twin but with the direct map's entry too: not a PTI user PGD (it would expose all memory).
        int dm = GuestPageTables.Index(pageOffset, 4);
        Array.Copy(img.Ram, (int)swapper + 8 * dm, img.Ram, (int)u + 8 * dm, 8);
        var r2 = DumpAnalysis.Run(img);
        Assert.False(r2.Pti);
        Assert.Null(Assert.Single(r2.Processes).User);
    }

    [Fact]
    public void Noise_and_an_identity_mapped_table_yield_no_kernel_and_a_not_found_finding()
    {
        var img = new Image(16UL << 20);
        new Random(1234).NextBytes(img.Ram);
        // an early-boot style table: identity map and __START_KERNEL_map, but no direct map in the kernel half
        ulong pgd = img.Table();
        Array.Clear(img.Ram, 0x100000, 0x10000);
        img.Map(pgd, 0, 0, 16UL << 20, 2UL << 20, 0x63);
        img.Map(pgd, 0xffffffff81000000, 0x1000000, 2UL << 20, 2UL << 20, RX);
        img.Map(pgd, 0xffffc90000000000, 0x300000, 0x1000, 0x1000, RW_NX);   // a vmalloc page: a second kernel-half entry
        var r = DumpAnalysis.Run(img);
        Assert.Null(r.TopTable);
        Assert.Null(r.PageOffset);
        var f = Assert.Single(r.Findings);
        Assert.Equal(("kernel page tables", "not found", Confidence.None), (f.Name, f.Value, f.Confidence));
        Assert.Contains("rejected: 2 reading(s) as a PML4 or a PML5: no linear map of all RAM in the direct-map range", f.How);
    }
}
