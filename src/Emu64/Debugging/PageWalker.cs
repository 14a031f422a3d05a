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

    public static int Levels(CpuCore cpu) => (cpu.CR4 & Emu64.Cpu.Cr4.La57) != 0 ? 5 : 4;

    /// <summary>Walks <paramref name="la"/> from <paramref name="root"/> (a CR3 value; PCID and flags are ignored).</summary>
    public static DebugWalk Walk(Machine m, ulong la, ulong? root = null)
    {
        var cpu = m.Cpu;
        ulong cr3 = root ?? cpu.CR3;
        var steps = new List<WalkStep>();
        if (!cpu.PagingOn && root is null)
            return new DebugWalk(la, cr3, steps, true, la & (cpu.LongMode ? ulong.MaxValue : 0xFFFFFFFF), 4096, true, true, false, false);
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
        Recurse(m, cr3 & Emu64.Mmu.Mmu.PhysAddrMask, levels, levels, 0, list);
        return list;
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
        1 => "pte", 2 => "pmd", 3 => "pud", 4 => levels == 5 ? "p4d" : "pgd", _ => "pgd",
    };

    /// <summary>The dump as text, one line per range.</summary>
    public static string Format(Machine m, ulong cr3)
    {
        var sb = new StringBuilder();
        int levels = PageWalker.Levels(m.Cpu);
        sb.Append($"---[ page tables at CR3 0x{cr3 & Emu64.Mmu.Mmu.PhysAddrMask:x} ({levels}-level) ]---\n");
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
