using System.Text;
using Emu64.Mmu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Debugging;

/// <summary>One level of a debugger page walk.</summary>
public readonly record struct WalkStep(int Level, ulong TableAddr, int Index, ulong EntryAddr, ulong Entry, bool Leaf);

/// <summary>A debugger page walk: every level read, and the translation if the address is mapped.</summary>
public sealed record DebugWalk(ulong Linear, ulong Root, List<WalkStep> Steps, bool Mapped, ulong Physical, ulong PageSize, bool Writable, bool User, bool NoExec, bool Global);

/// <summary>
/// Page walks for the debugger, tracer and gdb stub. Reads the paging structures straight from physical
/// memory with any root: no A/D bit is set, no TLB or counter changes, no fault is raised, and the
/// permissions are reported rather than enforced (a debugger reads what the page tables map).
/// </summary>
public static class PageWalker
{
    public static string LevelName(int level) => level switch { 5 => "PML5E", 4 => "PML4E", 3 => "PDPTE", 2 => "PDE", _ => "PTE" };

    /// <summary>Paging levels of the current mode: 5 or 4 in IA-32e mode, 3 with PAE paging (PDPTE, PDE, PTE), 2 with 32-bit paging.</summary>
    public static int Levels(CpuCore cpu)
    {
        if (!cpu.LongMode) return (cpu.CR4 & Emu64.Cpu.Cr4.Pae) != 0 ? 3 : 2;
        return (cpu.CR4 & Emu64.Cpu.Cr4.La57) != 0 ? 5 : 4;
    }

    /// <summary>The name of the current paging mode, as the walk and ptdump headers print it.</summary>
    public static string ModeName(CpuCore cpu) => Levels(cpu) switch { 2 => "32-bit", 3 => "PAE", int n => $"{n}-level" };

    /// <summary>
    /// The four PDPTEs of PAE paging under <paramref name="root"/>: the CPU's PDPTE registers for the current CR3
    /// (what the CPU uses, even if memory changed since MOV CR3), else read from memory at CR3[31:5].
    /// </summary>
    public static ulong[] Pdptes(Machine m, ulong? root)
    {
        var e = new ulong[4];
        if (root is null && m.Cpu.PagingOn) { m.Cpu.Mmu.PdpteRegisters.CopyTo(e); return e; }
        ulong cr3 = root ?? m.Cpu.CR3;
        for (int i = 0; i < 4; i++)
        {
            ulong a = Emu64.Mmu.Mmu.PdpteAddress(cr3, i);
            e[i] = m.Memory.IsRam(a, 8) ? m.Memory.Read(a, 8) : 0;
        }
        return e;
    }

    /// <summary>Walks <paramref name="la"/> from <paramref name="root"/> (a CR3 value; PCID and flags are ignored).</summary>
    public static DebugWalk Walk(Machine m, ulong la, ulong? root = null)
    {
        var cpu = m.Cpu;
        ulong cr3 = root ?? cpu.CR3;
        var steps = new List<WalkStep>();
        if (!cpu.PagingOn && root is null)
            return new DebugWalk(la, cr3, steps, true, la & (cpu.LongMode ? ulong.MaxValue : 0xFFFFFFFF), 4096, true, true, false, false);
        if (!cpu.LongMode) return WalkLegacy(m, la & 0xFFFFFFFF, cr3, root);
        int levels = Levels(cpu);
        ulong table = cr3 & Emu64.Mmu.Mmu.PhysAddrMask;
        bool nxe = (cpu.EFER & Emu64.Cpu.Efer.Nxe) != 0;
        bool w = true, u = true, nx = false;
        for (int level = levels; level >= 1; level--)
        {
            int shift = 12 + 9 * (level - 1);
            int index = (int)((la >> shift) & 0x1FF);
            ulong ea = table + (ulong)index * 8;
            if (!m.Memory.IsRam(ea, 8)) { steps.Add(new WalkStep(level, table, index, ea, 0, false)); break; }
            ulong e = m.Memory.Read(ea, 8);
            bool leaf = (e & PteFlags.Present) != 0 && (level == 1 || (level <= 3 && (e & PteFlags.Huge) != 0));
            steps.Add(new WalkStep(level, table, index, ea, e, leaf));
            if ((e & PteFlags.Present) == 0) break;
            w &= (e & PteFlags.Write) != 0;
            u &= (e & PteFlags.User) != 0;
            nx |= nxe && (e & PteFlags.Nx) != 0;
            if (leaf)
            {
                ulong size = 1UL << shift;
                ulong page = e & Emu64.Mmu.Mmu.PhysAddrMask & ~(size - 1);
                bool g = (e & PteFlags.Global) != 0;
                return new DebugWalk(la, cr3, steps, true, page | (la & (size - 1)), size, w, u, nx, g);
            }
            table = e & Emu64.Mmu.Mmu.PhysAddrMask;
        }
        return new DebugWalk(la, cr3, steps, false, 0, 0, false, false, false, false);
    }

    /// <summary>
    /// The walk of 32-bit paging (4-byte entries, 10-bit indices, 4 MiB pages with CR4.PSE and PSE-36) or PAE paging
    /// (a PDPTE, then 8-byte PDEs and PTEs with 9-bit indices). Levels are numbered as in IA-32e mode: 3 PDPTE, 2 PDE, 1 PTE.
    /// </summary>
    private static DebugWalk WalkLegacy(Machine m, ulong la, ulong cr3, ulong? root)
    {
        var cpu = m.Cpu;
        bool pae = (cpu.CR4 & Emu64.Cpu.Cr4.Pae) != 0, pse = (cpu.CR4 & Emu64.Cpu.Cr4.Pse) != 0;
        bool nxe = pae && (cpu.EFER & Emu64.Cpu.Efer.Nxe) != 0;
        var steps = new List<WalkStep>();
        ulong table;
        if (pae)
        {
            int i = (int)(la >> 30);
            ulong pdpte = Pdptes(m, root)[i];
            steps.Add(new WalkStep(3, cr3 & 0xFFFFFFE0UL, i, Emu64.Mmu.Mmu.PdpteAddress(cr3, i), pdpte, false));
            if ((pdpte & PteFlags.Present) == 0) return new DebugWalk(la, cr3, steps, false, 0, 0, false, false, false, false);
            table = pdpte & Emu64.Mmu.Mmu.PhysAddrMask;
        }
        else table = cr3 & 0xFFFFF000UL;
        bool w = true, u = true, nx = false;
        for (int level = 2; level >= 1; level--)
        {
            int bits = pae ? 9 : 10, size = pae ? 8 : 4;
            int index = (int)((la >> (12 + bits * (level - 1))) & ((1UL << bits) - 1));
            ulong ea = table + (ulong)(index * size);
            if (!m.Memory.IsRam(ea, size)) { steps.Add(new WalkStep(level, table, index, ea, 0, false)); break; }
            ulong e = m.Memory.Read(ea, size);
            bool leaf = (e & PteFlags.Present) != 0 && (level == 1 || ((e & PteFlags.Huge) != 0 && (pae || pse)));
            steps.Add(new WalkStep(level, table, index, ea, e, leaf));
            if ((e & PteFlags.Present) == 0) break;
            w &= (e & PteFlags.Write) != 0;
            u &= (e & PteFlags.User) != 0;
            nx |= nxe && (e & PteFlags.Nx) != 0;
            if (leaf)
            {
                ulong bytes = level == 1 ? 0x1000UL : pae ? 0x200000UL : 0x400000UL;
                ulong page = level == 2 && !pae ? Emu64.Mmu.Mmu.Frame4M(e) : e & Emu64.Mmu.Mmu.PhysAddrMask & ~(bytes - 1);
                return new DebugWalk(la, cr3, steps, true, page | (la & (bytes - 1)), bytes, w, u, nx, (e & PteFlags.Global) != 0);
            }
            table = e & (pae ? Emu64.Mmu.Mmu.PhysAddrMask : 0xFFFFF000UL);
        }
        return new DebugWalk(la, cr3, steps, false, 0, 0, false, false, false, false);
    }

    /// <summary>Decoded entry flags in the order Linux's ptdump prints them.</summary>
    public static string Flags(ulong e, int level)
    {
        if ((e & PteFlags.Present) == 0) return "not present";
        var sb = new StringBuilder();
        sb.Append((e & PteFlags.User) != 0 ? "USR " : "    ");
        sb.Append((e & PteFlags.Write) != 0 ? "RW " : "ro ");
        sb.Append((e & PteFlags.Pwt) != 0 ? "PWT " : "    ");
        sb.Append((e & PteFlags.Pcd) != 0 ? "PCD " : "    ");
        bool large = level is 2 or 3 && (e & PteFlags.Huge) != 0;
        sb.Append(large ? "PSE " : "    ");
        sb.Append((e & PteFlags.Global) != 0 && (large || level == 1) ? "GLB " : "    ");
        sb.Append((e & PteFlags.Nx) != 0 ? "NX " : "x  ");
        sb.Append((e & PteFlags.Accessed) != 0 ? "A " : "  ");
        sb.Append((e & PteFlags.Dirty) != 0 && (large || level == 1) ? "D" : " ");
        return sb.ToString().TrimEnd();
    }

    /// <summary>Reads guest memory at a linear address through the given (or current) page tables. Returns the bytes read before the first unmapped page.</summary>
    public static int ReadLinear(Machine m, ulong la, Span<byte> dest, ulong? root = null)
    {
        int done = 0;
        while (done < dest.Length)
        {
            ulong a = la + (ulong)done;
            var w = Walk(m, a, root);
            if (!w.Mapped) break;
            int chunk = (int)Math.Min((ulong)(dest.Length - done), 0x1000 - (a & 0xFFF));
            if (!m.Memory.IsRam(w.Physical, chunk)) break;
            m.Memory.ReadBytes(w.Physical, dest.Slice(done, chunk));
            done += chunk;
        }
        return done;
    }

    /// <summary>Writes guest memory at a linear address (a debugger write: ignores R/W, sets no A/D bit). Returns the bytes written.</summary>
    public static int WriteLinear(Machine m, ulong la, ReadOnlySpan<byte> src)
    {
        int done = 0;
        while (done < src.Length)
        {
            ulong a = la + (ulong)done;
            var w = Walk(m, a);
            if (!w.Mapped) break;
            int chunk = (int)Math.Min((ulong)(src.Length - done), 0x1000 - (a & 0xFFF));
            if (!m.Memory.IsRam(w.Physical, chunk)) break;
            m.Memory.WriteBytes(w.Physical, src.Slice(done, chunk));
            done += chunk;
        }
        return done;
    }

    /// <summary>Reads physical memory; bytes outside RAM are not read. Returns the bytes read.</summary>
    public static int ReadPhysical(Machine m, ulong pa, Span<byte> dest)
    {
        if (pa >= m.Memory.RamSize) return 0;
        int n = (int)Math.Min((ulong)dest.Length, m.Memory.RamSize - pa);
        m.Memory.ReadBytes(pa, dest[..n]);
        return n;
    }

    /// <summary>Sign-extends a linear address from the paging width (48 or 57 bits).</summary>
    public static ulong Canonical(ulong la, int levels)
    {
        int bits = levels == 5 ? 57 : 48;
        int sh = 64 - bits;
        return (ulong)((long)(la << sh) >> sh);
    }
}

/// <summary>One run of mappings with the same flags, as Linux's ptdump prints it.</summary>
public readonly record struct PtRange(ulong Start, ulong End, int Level, ulong Flags, ulong FirstPhys);

/// <summary>
/// A dump of the page tables under a CR3 in the style of Linux's ptdump
/// (/sys/kernel/debug/page_tables): consecutive leaf mappings with the same level and flags form one
/// range. Reads memory only; nothing in the machine changes.
/// </summary>
public static class PtDump
{
    private const ulong FlagMask = PteFlags.Present | PteFlags.Write | PteFlags.User | PteFlags.Pwt | PteFlags.Pcd
                                   | PteFlags.Huge | PteFlags.Global | PteFlags.Nx;
    /// <summary>Upper bound on ranges reported, so a hostile page table cannot make a dump unbounded.</summary>
    public const int MaxRanges = 100_000;

    public static List<PtRange> Ranges(Machine m, ulong cr3)
    {
        var list = new List<PtRange>();
        int levels = PageWalker.Levels(m.Cpu);
        if (levels == 2) Recurse32(m, cr3 & 0xFFFFF000UL, list);
        else if (levels == 3)
        {
            // PAE paging: the four PDPTEs (the CPU's registers when this is its CR3), each a 1 GiB directory.
            var pdptes = PageWalker.Pdptes(m, cr3 == m.Cpu.CR3 ? null : cr3);
            for (int i = 0; i < 4; i++)
                if ((pdptes[i] & PteFlags.Present) != 0)
                    Recurse(m, pdptes[i] & Emu64.Mmu.Mmu.PhysAddrMask, 2, levels, (ulong)i << 30, list);
        }
        else Recurse(m, cr3 & Emu64.Mmu.Mmu.PhysAddrMask, levels, levels, 0, list);
        return list;
    }

    /// <summary>32-bit paging: 1024 4-byte PDEs, each a 4 MiB page (CR4.PSE and PS=1) or a table of 1024 4-byte PTEs.</summary>
    private static void Recurse32(Machine m, ulong pd, List<PtRange> list)
    {
        if (!m.Memory.IsRam(pd, 4096)) return;
        bool pse = (m.Cpu.CR4 & Emu64.Cpu.Cr4.Pse) != 0;
        for (int i = 0; i < 1024; i++)
        {
            ulong pde = m.Memory.Read(pd + (ulong)i * 4, 4);
            if ((pde & PteFlags.Present) == 0) continue;
            ulong va = (ulong)i << 22;
            if (pse && (pde & PteFlags.Huge) != 0) { Add(list, va, 1UL << 22, 2, pde & FlagMask, Emu64.Mmu.Mmu.Frame4M(pde)); continue; }
            ulong pt = pde & 0xFFFFF000UL;
            if (!m.Memory.IsRam(pt, 4096)) continue;
            for (int j = 0; j < 1024; j++)
            {
                if (list.Count >= MaxRanges) return;
                ulong pte = m.Memory.Read(pt + (ulong)j * 4, 4);
                if ((pte & PteFlags.Present) == 0) continue;
                // Bit 7 of a 4 KiB PTE is its PAT bit, not PS: it is not a flag ptdump shows.
                Add(list, va | ((ulong)j << 12), 0x1000, 1, pte & FlagMask & ~PteFlags.Huge, pte & 0xFFFFF000UL);
            }
        }
    }

    private static void Add(List<PtRange> list, ulong start, ulong size, int level, ulong flags, ulong phys)
    {
        if (list.Count >= MaxRanges) return;
        if (list.Count > 0 && list[^1].End == start && list[^1].Level == level && list[^1].Flags == flags)
            list[^1] = list[^1] with { End = start + size };
        else
            list.Add(new PtRange(start, start + size, level, flags, phys));
    }

    private static void Recurse(Machine m, ulong table, int level, int levels, ulong prefix, List<PtRange> list)
    {
        if (!m.Memory.IsRam(table, 4096)) return;
        int shift = 12 + 9 * (level - 1);
        for (int i = 0; i < 512; i++)
        {
            if (list.Count >= MaxRanges) return;
            ulong e = m.Memory.Read(table + (ulong)i * 8, 8);
            if ((e & PteFlags.Present) == 0) continue;
            ulong va = prefix | ((ulong)i << shift);
            bool leaf = level == 1 || (level <= 3 && (e & PteFlags.Huge) != 0);
            if (!leaf) { Recurse(m, e & Emu64.Mmu.Mmu.PhysAddrMask, level - 1, levels, va, list); continue; }
            ulong size = 1UL << shift;
            ulong start = PageWalker.Canonical(va, levels);
            ulong flags = e & FlagMask;
            ulong phys = e & Emu64.Mmu.Mmu.PhysAddrMask & ~(size - 1);
            if (list.Count > 0 && list[^1].End == start && list[^1].Level == level && list[^1].Flags == flags)
                list[^1] = list[^1] with { End = start + size };
            else
                list.Add(new PtRange(start, start + size, level, flags, phys));
        }
    }

    public static string SizeText(ulong bytes)
    {
        if (bytes % (1UL << 30) == 0) return $"{bytes >> 30}G";
        if (bytes % (1UL << 20) == 0) return $"{bytes >> 20}M";
        return $"{bytes >> 10}K";
    }

    private static string LevelShort(int level, int levels) => level switch
    {
        1 => "pte", 2 => levels == 2 ? "pgd" : "pmd", 3 => "pud", 4 => levels == 5 ? "p4d" : "pgd", _ => "pgd",
    };

    /// <summary>The dump as text, one line per range.</summary>
    public static string Format(Machine m, ulong cr3)
    {
        var sb = new StringBuilder();
        int levels = PageWalker.Levels(m.Cpu);
        ulong root = levels == 3 ? cr3 & 0xFFFFFFE0UL : cr3 & Emu64.Mmu.Mmu.PhysAddrMask;
        sb.Append($"---[ page tables at CR3 0x{root:x} ({PageWalker.ModeName(m.Cpu)}) ]---\n");
        var ranges = Ranges(m, cr3);
        foreach (var r in ranges)
        {
            string flags = PageWalker.Flags(r.Flags, r.Level);
            sb.Append($"0x{r.Start:x16}-0x{r.End:x16} {SizeText(r.End - r.Start),9}  {flags,-36} {LevelShort(r.Level, levels)}  -> 0x{r.FirstPhys:x}\n");
        }
        if (ranges.Count == 0) sb.Append("(nothing mapped)\n");
        if (ranges.Count >= MaxRanges) sb.Append($"(stopped after {MaxRanges} ranges)\n");
        return sb.ToString();
    }
}
