using static Emu64.Forensics.LinuxLayout;

namespace Emu64.Forensics;

public enum Confidence { None, Low, Medium, High }

/// <summary>One answer of an analysis: the value, how sure it is, and how it was found (signatures, entries).</summary>
public sealed record Finding(string Name, string Value, Confidence Confidence, List<string> How);

/// <summary>A process's page tables: its kernel PGD and, under PTI, its user PGD.</summary>
public sealed record ProcessPgd(ulong Kernel, ulong? User, int UserEntries, List<(ulong Start, ulong End)> UserMaps);

/// <summary>Everything <see cref="DumpAnalysis.Run"/> found.</summary>
public sealed class AnalysisResult
{
    public ulong PagesScanned;
    public int Plausible;
    public List<Candidate> Valid = new();
    public int? Levels;
    public ulong? TopTable;
    public ulong? PageOffset;
    public DirectMap? DirectMap;
    public KernelImageInfo? Image;
    public VmemmapInfo? Vmemmap;
    public bool? Pti;
    public List<ProcessPgd> Processes = new();
    public List<UserPgd> UserPgds = new();
    public List<Finding> Findings = new();
    public string StartedFrom = "";
}

/// <summary>
/// `emu64 analyze`: recovers the kernel's memory layout (paging mode, PGD, PAGE_OFFSET, kernel text and KASLR
/// slide, phys_base, vmemmap, per-process PGDs under PTI) from a physical memory image alone, as a forensic
/// tool must when it has no symbols and cannot trust the register notes. The steps, in order:
/// <see cref="TopTableScan"/> (every page read as a top-level table), <see cref="CandidateCheck"/> (direct map,
/// self-map and kernel-image signatures under 4- and 5-level readings), a vote (all PGDs of one kernel share
/// their kernel half; the one with an empty user half is swapper_pg_dir), <see cref="KernelImage"/>,
/// <see cref="PtiPairs"/> and <see cref="VmemmapFinder"/>. docs/DUMPS.md walks through a run.
/// </summary>
public static class DumpAnalysis
{
    /// <param name="cr3">With <c>--use-cr3</c>: the CR3 and CR4 of the dump's CPU note; the top table is taken from CR3 instead of the vote.</param>
    public static AnalysisResult Run(IPhysicalImage image, (ulong Cr3, ulong Cr4)? cr3 = null)
    {
        var r = new AnalysisResult();
        var scan = TopTableScan.Scan(image);
        r.PagesScanned = scan.PagesScanned;
        r.Plausible = scan.Candidates.Count;
        var rejected = new Dictionary<string, int>();
        var why = new Dictionary<(ulong, int), string>();
        foreach (ulong page in scan.Candidates)
            foreach (int levels in new[] { 4, 5 })
            {
                var c = CandidateCheck.Evaluate(image, page, levels);
                if (c.Valid) r.Valid.Add(c);
                else { rejected[c.Rejected!] = rejected.GetValueOrDefault(c.Rejected!) + 1; why[(page, levels)] = c.Rejected!; }
            }

        // The vote: group valid readings by paging mode, PAGE_OFFSET and kernel half; the largest group is the live kernel.
        var groups = r.Valid.GroupBy(c => (c.Levels, c.DirectMap!.PageOffset, KernelHalf(image, c.Top)))
                            .OrderByDescending(g => g.Count()).ThenBy(g => g.Min(c => c.Top)).ToList();
        Candidate? chosen = null;
        List<Candidate> group = new();
        var how = new List<string>
        {
            $"read each of the {r.PagesScanned} pages of the dump as a top-level table: {r.Plausible} have entry 511 present, another kernel-half entry, and only plausible entries",
        };
        foreach (var (reason, n) in rejected.OrderByDescending(k => k.Value))
            how.Add($"rejected: {n} reading(s) as a PML4 or a PML5: {reason}");
        how.Add($"{r.Valid.Count} reading(s) show a direct map of all RAM, map themselves through it, and map __START_KERNEL_map; {groups.Count} distinct kernel half/halves");

        if (cr3 is { } regs)
        {
            int levels = (regs.Cr4 & (1UL << 12)) != 0 ? 5 : 4;
            ulong top = regs.Cr3 & Pte.AddrMask;
            r.StartedFrom = $"CR3=0x{regs.Cr3:x} from the dump's QEMU note (CR4.LA57={(levels == 5 ? 1 : 0)})";
            var c = CandidateCheck.Evaluate(image, top, levels);
            if (!c.Valid && (top & 0x1000) != 0)
            {
                // Under PTI, CR3 in user mode holds the user PGD (bit 12 set): the kernel PGD is 4 KiB below.
                var k = CandidateCheck.Evaluate(image, top - 0x1000, levels);
                if (k.Valid) { how.Add($"CR3 0x{top:x} is a user PGD (bit 12 set, {c.Rejected}); its kernel twin is at 0x{top - 0x1000:x}"); c = k; }
            }
            if (!c.Valid) how.Add($"CR3's table 0x{top:x} fails as a {levels}-level PGD: {c.Rejected}");
            else
            {
                chosen = c;
                group = groups.FirstOrDefault(g => g.Any(x => x.Top == c.Top && x.Levels == c.Levels))?.ToList() ?? [c];
            }
        }
        else if (groups.Count > 0)
        {
            group = groups[0].ToList();
            // swapper_pg_dir (init_top_pgt) maps no user memory; process PGDs do. Linux also keeps PGDs with an empty user
            // half around (a process between exec and its first mapping, freed ones not yet reused): of those, the one the
            // kernel image maps (at __START_KERNEL_map + pa - phys_base) is init_top_pgt, which is kernel data. Being inside
            // the image's physical extent is not enough: Linux frees the image's init sections and reuses their pages.
            var pt0 = new GuestPageTables(image, group[0].Levels);
            var img0 = KernelImage.Find(pt0, group[0].Top);
            var empty = group.Where(c => UserEntries(image, c.Top) == 0).OrderBy(c => c.Top).ToList();
            bool InImage(Candidate c) => img0 is { } im && pt0.Translate(group[0].Top, c.Top - im.PhysBase + StartKernelMap) is { } t && t.Phys == c.Top;
            var inImage = empty.Where(InImage).ToList();
            chosen = inImage.FirstOrDefault() ?? empty.FirstOrDefault() ?? group.OrderBy(c => c.Top).First();
            if (inImage.Count > 0 && empty.Count > 1)
                how.Add($"{empty.Count} tables have an empty user half; 0x{chosen.Top:x} is the one the kernel image maps (at 0x{chosen.Top - img0!.PhysBase + StartKernelMap:x}): init_top_pgt is kernel data");
            r.StartedFrom = "a scan of physical memory (no CR3, no symbols)";
            if (groups.Count > 1)
                how.Add($"the largest group ({group.Count} table(s)) wins; the other groups hold {r.Valid.Count - group.Count} table(s) (stale copies or early boot tables)");
        }

        if (chosen is null)
        {
            r.Findings.Add(new Finding("kernel page tables", "not found", Confidence.None, how));
            return r;
        }

        var pt = new GuestPageTables(image, chosen.Levels);
        r.Levels = chosen.Levels;
        r.TopTable = chosen.Top;
        r.DirectMap = chosen.DirectMap;
        r.PageOffset = chosen.DirectMap!.PageOffset;
        int users = UserEntries(image, chosen.Top);
        how.Add($"chosen: 0x{chosen.Top:x}, {(users == 0 ? "no user-half entries: swapper_pg_dir (init_top_pgt)" : $"{users} user-half entries")}; {group.Count} table(s) share its kernel half");
        var modeHow = new List<string>
        {
            $"read as a {(chosen.Levels == 5 ? "PML5" : "PML4")}, the table passes all three checks; read as a {(chosen.Levels == 5 ? "PML4" : "PML5")}: " +
                (why.TryGetValue((chosen.Top, 9 - chosen.Levels), out var other) ? other : "it passes too (low confidence)"),
            $"the direct map lies in the {chosen.Levels}-level range (from 0x{PageOffsetBase(chosen.Levels):x}); a {chosen.Levels}-level walk of it takes {chosen.Levels} entries: {chosen.DirectMap.First.Path(chosen.Levels)}",
        };
        bool bothReadings = r.Valid.Any(c => c.Top == chosen.Top && c.Levels != chosen.Levels);
        r.Findings.Add(new Finding("paging mode", $"{chosen.Levels}-level", bothReadings ? Confidence.Low : Confidence.High, modeHow));
        r.Findings.Add(new Finding("kernel top-level page table (PGD)", $"0x{chosen.Top:x}", group.Count > 0 && cr3 is null && groups.Count > 1 ? Confidence.Medium : Confidence.High,
            [.. how, $"self-map: PAGE_OFFSET + 0x{chosen.Top:x} -> {chosen.SelfMap!.Value.Path(chosen.Levels)} = 0x{chosen.SelfMap.Value.Phys:x}"]));

        var dm = chosen.DirectMap;
        r.Findings.Add(new Finding("PAGE_OFFSET (direct map base)", $"0x{dm.PageOffset:x}",
            dm.Nx && dm.Writable && !dm.User ? Confidence.High : Confidence.Medium,
            [
                $"the lowest 1 GiB-aligned address in [0x{PageOffsetBase(chosen.Levels):x}, 0x{CpuEntryArea:x}) that translates to physical 0: {dm.First.Path(chosen.Levels)}",
                (dm.Holes is { Count: > 0 } holes
                    ? $"every 2 MiB of RAM (0x{dm.Covered:x} bytes) translates linearly from it but {holes.Count} of the {dm.Samples} points checked, which are not mapped at all " +
                      $"(memory the kernel leaves out of its map, as firmware-reserved ranges): {string.Join(", ", holes.Take(4).Select(h => $"0x{h:x}"))}{(holes.Count > 4 ? ", ..." : "")}; largest page {Size(dm.LargestPage)}; "
                    : $"every 2 MiB of RAM (0x{dm.Covered:x} bytes) translates linearly from it; largest page {Size(dm.LargestPage)}; ") +
                    $"{(dm.Writable ? "RW" : "RO")}{(dm.ReadOnly > 0 && dm.Writable ? $" ({dm.ReadOnly} of the {dm.Samples} points read-only: the kernel image's own pages, seen through the direct map)" : "")}, {(dm.Nx ? "NX" : "executable")}, {(dm.User ? "user" : "supervisor")}{(dm.Global ? ", global (PTI off: kernel pages may survive CR3 switches)" : "")}",
                $"KASLR offset of the direct map: PAGE_OFFSET - 0x{PageOffsetBase(chosen.Levels):x} = 0x{dm.PageOffset - PageOffsetBase(chosen.Levels):x} ({(dm.PageOffset - PageOffsetBase(chosen.Levels)) >> 30} steps of 1 GiB)",
            ]));

        r.Image = KernelImage.Find(pt, chosen.Top);
        if (r.Image is { } img)
        {
            var imgHow = new List<string>
            {
                $"the first mapping in the 1 GiB window at __START_KERNEL_map 0x{StartKernelMap:x}: {img.TextWalk.Path(chosen.Levels)} -> physical 0x{img.TextPhys:x}",
                $"image mapped 0x{img.Text:x}-0x{img.End:x} ({img.Pages} pages): " + string.Join(", ", img.Sections.Select(s => $"{s.Perms} 0x{s.Start:x}-0x{s.End:x}")),
            };
            bool wx = img.Sections.Count > 0 && img.Sections[0].Executable && img.Sections.All(s => !(s.Writable && s.Executable));
            r.Findings.Add(new Finding("kernel text (_text)", $"0x{img.Text:x}", wx && !img.TextWalk.User ? Confidence.High : Confidence.Medium,
                [.. imgHow, wx ? "it starts executable and no page is both writable and executable (W^X): kernel text, rodata, data" : "its permissions do not look like a kernel image (not W^X, or not starting with text)"]));
            r.Findings.Add(new Finding("KASLR slide", img.Slide >= 0 ? $"0x{img.Slide:x}" : $"-0x{-img.Slide:x}", (img.Slide & (long)(Mib2 - 1)) == 0 ? Confidence.High : Confidence.Low,
                [$"_text - __START_KERNEL (0x{StartKernel:x}, where it is linked) = 0x{img.Text:x} - 0x{StartKernel:x}; a multiple of 2 MiB (CONFIG_PHYSICAL_ALIGN) as KASLR makes it: {((img.Slide & (long)(Mib2 - 1)) == 0 ? "yes" : "no")}"]));
            r.Findings.Add(new Finding("phys_base", $"0x{img.PhysBase:x}", img.PagesOffDelta == 0 ? Confidence.High : Confidence.Low,
                [
                    $"__pa(_text) - (_text - __START_KERNEL_map) = 0x{img.TextPhys:x} - 0x{img.Text - StartKernelMap:x}",
                    img.PagesOffDelta == 0 ? $"all {img.Pages} image pages satisfy __pa(x) = x - __START_KERNEL_map + phys_base"
                                           : $"{img.PagesOffDelta} of {img.Pages} image pages do not satisfy __pa(x) = x - __START_KERNEL_map + phys_base",
                ]));
        }
        else r.Findings.Add(new Finding("kernel text (_text)", "not found", Confidence.None, ["nothing is mapped in the 1 GiB window at __START_KERNEL_map"]));

        ulong dmSize = (image.End() + dm.LargestPage - 1) & ~(dm.LargestPage - 1);
        var (vm, min, max, runs) = VmemmapFinder.Find(pt, chosen.Top, dm.PageOffset, dmSize);
        r.Vmemmap = vm;
        r.Findings.Add(vm is { } v
            ? new Finding("vmemmap base", $"0x{v.Base:x}", v.LargestPage == Mib2 ? Confidence.High : Confidence.Medium,
                [$"a mapping starting at a 1 GiB boundary, outside the direct map, {Size(v.Mapped)} long (struct pages for this RAM: {Size(min)}..{Size(max)}), pages of up to {Size(v.LargestPage)}",
                 $"KASLR offset from VMEMMAP_START 0x{(chosen.Levels == 5 ? VmemmapL5 : VmemmapL4):x}: 0x{v.Base - (chosen.Levels == 5 ? VmemmapL5 : VmemmapL4):x}"])
            : new Finding("vmemmap base", "none (this kernel maps no struct page array)", Confidence.High,
                [$"of {runs} mapped run(s) between the direct-map base and the cpu_entry_area outside the direct map, none starts at a 1 GiB boundary with the size of this RAM's struct pages ({Size(min)}..{Size(max)})"]));

        // Processes and PTI: every table of the group with user entries is a process's kernel PGD.
        foreach (var c in group.OrderBy(c => c.Top))
        {
            var u = PtiPairs.Find(pt, c.Top, dm.PageOffset);
            if (u != null) r.UserPgds.Add(u);
            int ue = UserEntries(image, c.Top);
            if (ue > 0 || u != null) r.Processes.Add(new ProcessPgd(c.Top, u?.User, ue, Ranges(pt.Mappings(u?.User ?? c.Top, 0, 255), 8)));
        }
        var ptiHow = new List<string>();
        if (r.UserPgds.Count > 0)
        {
            r.Pti = true;
            var u0 = r.UserPgds[0];
            ptiHow.Add($"{r.UserPgds.Count} kernel PGD(s) have a user twin at +4 KiB (8 KiB-aligned pairs): same user half (the kernel copy has NX), kernel half maps the cpu_entry_area (0x{CpuEntryArea:x} -> physical 0x{u0.CeaPhys:x} in both) and not PAGE_OFFSET");
            ptiHow.Add($"e.g. user PGD 0x{u0.User:x} maps of the kernel only: " + string.Join(", ", u0.KernelHalfMaps.Select(m => $"0x{m.Start:x}-0x{m.End:x}")));
        }
        else if (r.Processes.Count > 0)
        {
            r.Pti = false;
            ptiHow.Add($"{r.Processes.Count} process PGD(s), none with a user twin at +4 KiB: user mode runs on the kernel PGD");
        }
        else ptiHow.Add("no process PGD (no table with user-half entries): PTI cannot be told from the page tables");
        foreach (var p in r.Processes)
            ptiHow.Add($"process PGD 0x{p.Kernel:x}: {p.UserEntries} user-half entries" + (p.User is { } up ? $", user PGD 0x{up:x}" : "") +
                "; user half maps " + string.Join(", ", p.UserMaps.Select(m => $"0x{m.Start:x}-0x{m.End:x}")));
        r.Findings.Add(new Finding("PTI (user PGDs)", r.Pti switch { true => $"on: {r.UserPgds.Count} user PGD(s)", false => "off", _ => "unknown" },
            r.Pti is null ? Confidence.None : Confidence.High, ptiHow));
        return r;
    }

    /// <summary>Leaf mappings coalesced into address ranges, at most <paramref name="max"/> of them.</summary>
    private static List<(ulong Start, ulong End)> Ranges(IEnumerable<(ulong Va, Translation T)> maps, int max)
    {
        var list = new List<(ulong Start, ulong End)>();
        foreach (var (va, t) in maps)
        {
            if (list.Count > 0 && list[^1].End == va) list[^1] = (list[^1].Start, va + t.PageSize);
            else if (list.Count == max) break;
            else list.Add((va, va + t.PageSize));
        }
        return list;
    }

    private static int UserEntries(IPhysicalImage image, ulong top)
    {
        int n = 0;
        for (int i = 0; i < 256; i++) if (image.TryRead64(top + 8UL * (uint)i, out ulong e) && (e & Pte.P) != 0) n++;
        return n;
    }

    /// <summary>A key for "same kernel half": the 256 kernel-half entries hashed.</summary>
    private static string KernelHalf(IPhysicalImage image, ulong top)
    {
        var h = new HashCode();
        for (int i = 256; i < 512; i++) { image.TryRead64(top + 8UL * (uint)i, out ulong e); h.Add(e); }
        return h.ToHashCode().ToString("x8");
    }

    public static string Size(ulong b) => b >= Gib && b % Gib == 0 ? $"{b >> 30} GiB" : b >= (1UL << 20) && b % (1UL << 20) == 0 ? $"{b >> 20} MiB" : $"{b >> 10} KiB";
}
