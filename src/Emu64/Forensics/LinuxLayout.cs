namespace Emu64.Forensics;

/// <summary>
/// The fixed points of the x86-64 Linux kernel address space that an analysis without symbols leans on
/// (Documentation/arch/x86/x86_64/mm.rst; the toy kernel keeps the same layout, docs/KERNEL.md).
/// KASLR moves the direct map, vmalloc and vmemmap bases in 1 GiB steps between <see cref="PageOffsetBase"/>
/// and the cpu_entry_area, and the kernel image in 2 MiB steps inside the 1 GiB at
/// <see cref="StartKernelMap"/>; these constants do not move.
/// </summary>
public static class LinuxLayout
{
    /// <summary>__START_KERNEL_map: the kernel image's 1 GiB window (KERNEL_IMAGE_SIZE with KASLR).</summary>
    public const ulong StartKernelMap = 0xffffffff80000000;
    public const ulong KernelImageSize = 1UL << 30;
    /// <summary>__START_KERNEL: where _text is linked (CONFIG_PHYSICAL_START = 16 MiB above __START_KERNEL_map).</summary>
    public const ulong StartKernel = 0xffffffff81000000;
    /// <summary>CPU_ENTRY_AREA_BASE: the same with 4- and 5-level paging; the top of the direct-map KASLR range.</summary>
    public const ulong CpuEntryArea = 0xfffffe0000000000;
    /// <summary>__PAGE_OFFSET_BASE_L4 / _L5: the lowest (and, without KASLR, the only) direct-map base.</summary>
    public const ulong PageOffsetL4 = 0xffff888000000000, PageOffsetL5 = 0xff11000000000000;
    /// <summary>VMEMMAP_START without KASLR.</summary>
    public const ulong VmemmapL4 = 0xffffea0000000000, VmemmapL5 = 0xffd4000000000000;
    /// <summary>sizeof(struct page) on x86-64, and the memory a vmemmap section covers (SECTION_SIZE_BITS 27).</summary>
    public const ulong StructPageSize = 64, SectionSize = 128UL << 20;
    public const ulong Gib = 1UL << 30, Mib2 = 2UL << 20;

    public static ulong PageOffsetBase(int levels) => levels == 5 ? PageOffsetL5 : PageOffsetL4;
}
