using static Emu64.Forensics.LinuxLayout;

namespace Emu64.Forensics;

/// <summary>A run of the kernel image with one set of permissions (text RX, rodata R NX, data RW NX).</summary>
public readonly record struct ImageSection(ulong Start, ulong End, bool Writable, bool Executable)
{
    public string Perms => (Writable ? "RW" : "R") + (Executable ? "X" : " NX");
}

/// <summary>The kernel image as mapped at __START_KERNEL_map: where its text starts, where it is in RAM, its sections.</summary>
public sealed record KernelImageInfo(ulong Text, Translation TextWalk, ulong End, long Slide, ulong PhysBase, ulong TextPhys,
    List<ImageSection> Sections, int Pages, int PagesOffDelta);

/// <summary>
/// Step 4: the kernel image. Linux maps only the image itself (from _text to _end) in the 1 GiB window at
/// __START_KERNEL_map — early boot maps the whole window and <c>cleanup_highmap</c> removes the rest — so the
/// first mapped address there is <c>_text</c>, and the last mapped page ends the image (<c>_end</c>, rounded up to a page or a 2 MiB page). KASLR moves the image in 2 MiB steps; the slide is the distance
/// from where it is linked (__START_KERNEL, 0xffffffff81000000). Every page of the image obeys
/// <c>__pa(x) = x - __START_KERNEL_map + phys_base</c>, so <c>phys_base</c> is read off the walk of <c>_text</c>
/// and confirmed by every other page of the image.
/// </summary>
public static class KernelImage
{
    public static KernelImageInfo? Find(GuestPageTables pt, ulong top)
    {
        var (firstVa, first) = CandidateCheck.FirstKernelImageMapping(pt, top);
        if (firstVa is not { } text || first is not { } t) return null;
        ulong physBase = t.Phys - (text - StartKernelMap);
        var sections = new List<ImageSection>();
        ulong end = text, va = text;
        int pages = 0, off = 0;
        // Follow the image page by page to the end of the window. Linux frees parts of it once booted (the gap between
        // text and rodata, the init sections: "Freeing unused kernel image ... memory"), so it has holes; a 2 MiB
        // stretch with no page directory entry is skipped whole.
        while (va < StartKernelMap + KernelImageSize && va >= StartKernelMap)
        {
            if ((va & (Mib2 - 1)) == 0 && CandidateCheck.WalkTo(pt, top, va, 2) is null) { va += Mib2; continue; }
            if (pt.Translate(top, va) is not { } m) { va += 0x1000; continue; }
            bool w = m.Writable, x = !m.NoExecute;
            if (sections.Count > 0 && sections[^1].Writable == w && sections[^1].Executable == x && sections[^1].End == va)
                sections[^1] = sections[^1] with { End = va + 0x1000 };
            else sections.Add(new ImageSection(va, va + 0x1000, w, x));
            if (m.Phys - (va - StartKernelMap) != physBase) off++;
            pages++;
            va += 0x1000;
            end = va;
        }
        return new KernelImageInfo(text, t, end, (long)(text - StartKernel), physBase, t.Phys, sections, pages, off);
    }
}
