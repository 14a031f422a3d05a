using System.Text;
using Emu64.Cpu;

namespace Emu64.Debugging;

/// <summary>Text views of the machine state shared by `emu64 debug` and the gdb stub's monitor commands.</summary>
public static class MachineInfo
{
    public static string Regs(Machine m)
    {
        var c = m.Cpu;
        var sb = new StringBuilder();
        for (int i = 0; i < 16; i += 2)
            sb.Append($"{Reg.Names64[i],-6}{c.R[i]:x16}    {Reg.Names64[i + 1],-6}{c.R[i + 1]:x16}\n");
        sb.Append($"rip   {c.Rip:x16}    rflags{c.Rflags:x16} [{FlagNames(c.Rflags)}]\n");
        for (int s = 0; s < 6; s++)
            sb.Append($"{Seg.Names[s]}    {c.Segs[s].Selector:x4} base={c.Segs[s].Base:x16} limit={c.Segs[s].Limit:x8} attr={c.Segs[s].Attr:x4}\n");
        sb.Append($"kernel_gs_base {c.KernelGsBase:x16}\n");
        sb.Append($"cpl={c.Cpl} mode={c.Mode} instructions={c.Retired}\n");
        return sb.ToString();
    }

    public static string FlagNames(ulong f)
    {
        var names = new List<string>();
        (ulong bit, string name)[] bits = [(1, "CF"), (4, "PF"), (0x10, "AF"), (0x40, "ZF"), (0x80, "SF"), (0x100, "TF"), (0x200, "IF"), (0x400, "DF"), (0x800, "OF"), (0x4000, "NT"), (0x10000, "RF"), (0x20000, "VM"), (0x40000, "AC")];
        foreach (var (bit, name) in bits) if ((f & bit) != 0) names.Add(name);
        names.Add($"IOPL={(f >> 12) & 3}");
        return string.Join(' ', names);
    }

    private static string Bits(ulong v, (ulong Bit, string Name)[] names)
        => string.Join(' ', names.Where(n => (v & n.Bit) != 0).Select(n => n.Name));

    public static string ControlRegs(Machine m)
    {
        var c = m.Cpu;
        var sb = new StringBuilder();
        sb.Append($"cr0  {c.CR0:x16} [{Bits(c.CR0, [(Cr0.Pe, "PE"), (Cr0.Mp, "MP"), (Cr0.Em, "EM"), (Cr0.Ts, "TS"), (Cr0.Et, "ET"), (Cr0.Ne, "NE"), (Cr0.Wp, "WP"), (Cr0.Am, "AM"), (Cr0.Nw, "NW"), (Cr0.Cd, "CD"), (Cr0.Pg, "PG")])}]\n");
        sb.Append($"cr2  {c.CR2:x16}\n");
        sb.Append($"cr3  {c.CR3:x16} [pgd={c.CR3 & Emu64.Mmu.Mmu.PhysAddrMask:x}" + (c.PcidOn ? $" pcid=0x{c.CR3 & 0xFFF:x}" : $"{((c.CR3 & Cr3.Pwt) != 0 ? " PWT" : "")}{((c.CR3 & Cr3.Pcd) != 0 ? " PCD" : "")}") + "]\n");
        sb.Append($"cr4  {c.CR4:x16} [{Bits(c.CR4, [(Cr4.Vme, "VME"), (Cr4.Pvi, "PVI"), (Cr4.Tsd, "TSD"), (Cr4.De, "DE"), (Cr4.Pse, "PSE"), (Cr4.Pae, "PAE"), (Cr4.Mce, "MCE"), (Cr4.Pge, "PGE"), (Cr4.Pce, "PCE"), (Cr4.Osfxsr, "OSFXSR"), (Cr4.Osxmmexcpt, "OSXMMEXCPT"), (Cr4.Umip, "UMIP"), (Cr4.La57, "LA57"), (Cr4.Fsgsbase, "FSGSBASE"), (Cr4.Pcide, "PCIDE"), (Cr4.Osxsave, "OSXSAVE"), (Cr4.Smep, "SMEP"), (Cr4.Smap, "SMAP"), (Cr4.Pke, "PKE")])}]\n");
        sb.Append($"cr8  {c.CR8:x16}\n");
        sb.Append($"efer {c.EFER:x16} [{Bits(c.EFER, [(Efer.Sce, "SCE"), (Efer.Lme, "LME"), (Efer.Lma, "LMA"), (Efer.Nxe, "NXE")])}]\n");
        return sb.ToString();
    }

    /// <summary>DR0-DR3 with each breakpoint's enables, kind and length, DR6 and DR7 as MOV from DRn reads them.</summary>
    public static string DebugRegs(Machine m)
    {
        var c = m.Cpu;
        ulong dr7 = c.Dr7Value;
        var sb = new StringBuilder();
        for (int n = 0; n < 4; n++)
        {
            int rw = (int)(dr7 >> (16 + 4 * n)) & 3, len = (int)(dr7 >> (18 + 4 * n)) & 3;
            string kind = rw switch { 0 => "exec", 1 => "write", 2 => "io", _ => "rw" };
            string en = ((dr7 >> (2 * n)) & 1) != 0 ? (((dr7 >> (2 * n + 1)) & 1) != 0 ? "L G" : "L") : ((dr7 >> (2 * n + 1)) & 1) != 0 ? "G" : "off";
            sb.Append($"dr{n}  {c.DR[n]:x16} [{en} {kind} len {len switch { 0 => 1, 1 => 2, 2 => 8, _ => 4 }}]\n");
        }
        ulong dr6 = c.Dr6Value;
        sb.Append($"dr6  {dr6:x16} [{Bits(dr6, [(1, "B0"), (2, "B1"), (4, "B2"), (8, "B3"), (Dr6.Bd, "BD"), (Dr6.Bs, "BS"), (Dr6.Bt, "BT")])}]\n");
        sb.Append($"dr7  {dr7:x16} [{Bits(dr7, [(Dr7.Le, "LE"), (Dr7.Ge, "GE"), (Dr7.Gd, "GD")])}]\n");
        return sb.ToString();
    }

    public static readonly (string Name, uint Number)[] MsrNames =
    [
        ("efer", Msr.Efer), ("star", Msr.Star), ("lstar", Msr.Lstar), ("cstar", Msr.Cstar), ("sfmask", Msr.Sfmask), ("fmask", Msr.Sfmask),
        ("fs_base", Msr.FsBase), ("gs_base", Msr.GsBase), ("kernel_gs_base", Msr.KernelGsBase), ("tsc_aux", Msr.TscAux),
        ("pat", Msr.Pat), ("apic_base", Msr.ApicBase), ("tsc", Msr.Tsc), ("misc_enable", Msr.MiscEnable),
        ("sysenter_cs", Msr.SysenterCs), ("sysenter_esp", Msr.SysenterEsp), ("sysenter_eip", Msr.SysenterEip),
    ];

    public static string ReadMsr(Machine m, string nameOrNumber)
    {
        string key = nameOrNumber.Trim().ToLowerInvariant();
        if (key.StartsWith("ia32_")) key = key[5..];
        uint num;
        var named = MsrNames.FirstOrDefault(n => n.Name == key);
        if (named.Name != null) num = named.Number;
        else if (SymbolTable.TryParseNumber(key, out ulong v) && v <= uint.MaxValue) num = (uint)v;
        else return $"unknown MSR '{nameOrNumber}' (names: {string.Join(", ", MsrNames.Select(n => n.Name))}, or a number such as 0xc0000080)";
        // ReadMsr of a device MSR has no side effects on the CPU; TSC reads the virtual counter.
        if (!m.Cpu.ReadMsr(num, out ulong value)) return $"msr 0x{num:x}: not implemented (RDMSR would raise #GP)";
        string name = MsrNames.FirstOrDefault(n => n.Number == num).Name ?? "";
        return $"msr 0x{num:x}{(name != "" ? $" ({name})" : "")} = 0x{value:x16}";
    }

    /// <summary>A page walk with each level's table, entry, flags, and where the translation would be found.</summary>
    public static string Walk(Machine m, ulong la, ulong? cr3)
    {
        var c = m.Cpu;
        var w = PageWalker.Walk(m, la, cr3);
        var sb = new StringBuilder();
        ulong root = cr3 ?? c.CR3;
        int pcid = c.PcidOn ? (int)(root & 0xFFF) : 0;
        if (!c.PagingOn && cr3 is null) return $"paging is off: linear 0x{la:x} = physical 0x{w.Physical:x}\n";
        sb.Append($"walk 0x{la:x} under CR3 0x{root:x}" + (c.PcidOn ? $" (pcid 0x{pcid:x})" : "") + $", {PageWalker.ModeName(c)}\n");
        foreach (var s in w.Steps)
        {
            string leaf = s.Leaf ? $"  -> {PtDump.SizeText(s.Level == 1 || c.LongMode || (c.CR4 & Cr4.Pae) != 0 ? 1UL << (12 + 9 * (s.Level - 1)) : 1UL << 22)} page" : "";
            // 32-bit paging has 4-byte entries: print them 8 digits wide.
            string entry = !c.LongMode && (c.CR4 & Cr4.Pae) == 0 ? $"0x{s.Entry:x8}" : $"0x{s.Entry:x16}";
            sb.Append($"  {PageWalker.LevelName(s.Level),-6} table 0x{s.TableAddr:x} [{s.Index,3}] @0x{s.EntryAddr:x} = {entry}  {PageWalker.Flags(s.Entry, s.Level)}{leaf}\n");
        }
        if (!w.Mapped) { sb.Append($"  not mapped (walk stops at {PageWalker.LevelName(w.Steps.Count > 0 ? w.Steps[^1].Level : 4)})\n"); return sb.ToString(); }
        string rights = $"{(w.User ? "user" : "supervisor")} {(w.Writable ? "read-write" : "read-only")} {(w.NoExec ? "no-exec" : "exec")}{(w.Global ? " global" : "")}";
        sb.Append($"  = physical 0x{w.Physical:x} ({PtDump.SizeText(w.PageSize)} page, {rights})\n");
        var view = TlbViews.For(m);
        string where = view is null ? "memory (" + TlbViews.NotModeled + ")" : view.WhereFound(la, pcid, fetch: false);
        sb.Append($"  found in: {where}\n");
        return sb.ToString();
    }

    public static string Tlb(Machine m, bool statsOnly)
    {
        var view = TlbViews.For(m);
        if (view is null) return TlbViews.NotModeled + "\n";
        var sb = new StringBuilder();
        if (statsOnly)
        {
            foreach (var (k, v) in view.Counters()) sb.Append($"{k}: {v}\n");
            return sb.ToString();
        }
        foreach (var g in view.Entries().GroupBy(e => e.Structure))
        {
            sb.Append($"{g.Key}: {g.Count()} entries\n");
            foreach (var e in g.OrderBy(e => e.Pcid).ThenBy(e => e.Linear))
                sb.Append($"  pcid {e.Pcid,4:x} {e.Linear:x16} -> {e.Physical:x12} {PtDump.SizeText(e.PageSize),4} {(e.Global ? "G" : "-")}{(e.User ? "U" : "S")}{(e.Writable ? "W" : "R")}{(e.NoExec ? "X" : "-")}\n");
        }
        if (sb.Length == 0) sb.Append("TLB is empty\n");
        return sb.ToString();
    }

    public static string Pcid(Machine m, IEnumerable<int> seen)
    {
        var c = m.Cpu;
        var sb = new StringBuilder();
        sb.Append(c.PcidOn ? $"CR4.PCIDE=1, current PCID 0x{c.CR3 & 0xFFF:x}\n" : "CR4.PCIDE=0 (all translations use PCID 0)\n");
        var view = TlbViews.For(m);
        if (view != null)
            foreach (var g in view.Entries().GroupBy(e => e.Pcid).OrderBy(g => g.Key))
                sb.Append($"  pcid 0x{g.Key:x}: {g.Count()} live entries ({g.Count(e => e.Global)} global)\n");
        else
            sb.Append($"  PCIDs seen in CR3 writes: {string.Join(", ", seen.Select(p => $"0x{p:x}"))}\n  ({TlbViews.NotModeled})\n");
        return sb.ToString();
    }

    /// <summary>Counters as name/value pairs, TLB counters included when the model provides them.</summary>
    public static List<KeyValuePair<string, ulong>> Counters(Machine m)
    {
        var e = m.Events;
        var list = new List<KeyValuePair<string, ulong>>
        {
            new("instructions", m.Cpu.Retired), new("syscalls", e.Syscalls), new("sysrets", e.Sysrets), new("interrupts", e.Interrupts),
            new("software_interrupts", e.SoftwareInterrupts), new("exceptions", e.Exceptions), new("irets", e.Irets),
            new("cr3_writes", e.Cr3Writes), new("cr3_noflush_writes", e.Cr3NoFlushWrites), new("faults", m.Stats.Faults),
            new("decoded_blocks", m.Cache.Decodes),
        };
        // ACPI S3 (AcpiSleep.cs): listed once the guest has slept, so a run that never does keeps its listing.
        if (m.SleepCount > 0) { list.Add(new("acpi_s3_sleeps", m.SleepCount)); list.Add(new("acpi_s3_slept_ticks", m.SleptTicks)); }
        if (TlbViews.For(m) is { } v) list.AddRange(v.Counters());
        return list;
    }
}
