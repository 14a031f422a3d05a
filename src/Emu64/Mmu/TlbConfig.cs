using System.Globalization;
using System.Text.Json;

namespace Emu64.Mmu;

/// <summary>Geometry of one array: entries, ways, replacement.</summary>
public sealed class ArrayConfig
{
    public int Entries { get; set; }
    public int Ways { get; set; }
    public Replacement Replacement { get; set; } = Replacement.Lru;

    public ArrayConfig() { }
    public ArrayConfig(int entries, int ways) { Entries = entries; Ways = ways; }
}

/// <summary>
/// Modeled cycle costs. The model is additive: cycles = instructions × BaseCpi + the events below ×
/// their latency. An L1 TLB hit costs nothing extra (its latency is part of the load pipeline).
/// </summary>
public sealed class CostModel
{
    /// <summary>Cycles per retired instruction. Source: assumption of one instruction per cycle for simple integer code on a 4-wide core.</summary>
    public double BaseCpi { get; set; } = 1.0;
    /// <summary>L1 TLB hit. Source: Intel optimization manual — the L1 DTLB is looked up in parallel with the (VIPT) L1D, so a hit adds no latency.</summary>
    public double L1Hit { get; set; } = 0;
    /// <summary>L1 TLB miss that hits the STLB. Source: REFERENCE (Haswell: L2 TLB hit about 12 cycles); 7-cpu.com lists 9 for Skylake.</summary>
    public double StlbHit { get; set; } = 12;
    /// <summary>Fixed cost of a page walk (a miss in both TLB levels): the STLB lookup that missed, before the walker starts.
    /// Source: REFERENCE (Haswell: an L2 TLB hit is about 12 cycles, a walk with the page tables in cache about 20 cycles
    /// *more*), so an STLB miss costs the STLB latency plus the walk's references. Without it a walk shortened by a
    /// paging-structure cache (one reference, 5 cycles) would cost less than an STLB hit.</summary>
    public double WalkStart { get; set; } = 12;
    /// <summary>Each paging-structure entry the walker reads from memory. Source: REFERENCE (a walk with page tables in cache is about 20 cycles more = 4 references × 5, Skylake L1D load-to-use 5 cycles, Intel optimization manual).</summary>
    public double WalkMemRef { get; set; } = 5;
    /// <summary>MOV to CR3. Source: Linux Documentation/arch/x86/pti.rst ("on the order of a hundred cycles").</summary>
    public double Cr3Write { get; set; } = 100;
    /// <summary>INVLPG. Source: Linux arch/x86/mm/tlb.c (tlb_single_page_flush_ceiling: "each single flush is about 100 ns", ≈ 250 cycles at 2.5 GHz).</summary>
    public double Invlpg { get; set; } = 250;
    /// <summary>INVPCID (any type). Source: assumption, same order as INVLPG (Linux uses it for single user-page flushes in place of INVLPG).</summary>
    public double Invpcid { get; set; } = 250;
    /// <summary>A write to CR4 that flushes the TLB. Source: assumption, like a flushing CR3 write.</summary>
    public double Cr4Flush { get; set; } = 100;
}

/// <summary>
/// TLB geometry and costs. Defaults model an Intel Skylake core. Sources: Intel 64 and IA-32
/// Architectures Optimization Reference Manual, Skylake microarchitecture TLB table (L1 DTLB 64×4-way
/// 4 KiB, 32×4-way 2M/4M, 4 1 GiB; L1 ITLB 128×8-way 4 KiB, 8 2M/4M; STLB 1536×12-way shared
/// 4 KiB/2 MiB, 16×4-way 1 GiB) and CPUID leaf 2/0x18 descriptors of Skylake parts. Paging-structure
/// cache sizes are not documented by Intel; the defaults (PML5E 2, PML4E 4, PDPTE 4, PDE 32, all fully
/// associative) follow published reverse-engineering of Intel MMU caches (Barr, Cox and Rixner,
/// "Translation Caching: Skip, Don't Walk", ISCA 2010) and are an assumption.
/// </summary>
public sealed class TlbConfig
{
    public ArrayConfig Dtlb4K { get; set; } = new(64, 4);
    public ArrayConfig Dtlb2M { get; set; } = new(32, 4);
    public ArrayConfig Dtlb1G { get; set; } = new(4, 4);
    public ArrayConfig Itlb4K { get; set; } = new(128, 8);
    /// <summary>The iTLB has no 1 GiB array: a fetch from a 1 GiB page fills a 2 MiB fragment here.</summary>
    public ArrayConfig Itlb2M { get; set; } = new(8, 8);
    /// <summary>Unified STLB, shared by 4 KiB and 2 MiB pages.</summary>
    public ArrayConfig Stlb { get; set; } = new(1536, 12);
    public ArrayConfig Stlb1G { get; set; } = new(16, 4);
    public ArrayConfig PscPml5e { get; set; } = new(2, 2);
    public ArrayConfig PscPml4e { get; set; } = new(4, 4);
    public ArrayConfig PscPdpte { get; set; } = new(4, 4);
    public ArrayConfig PscPde { get; set; } = new(32, 32);
    /// <summary>False disables the paging-structure caches (every walk starts at CR3).</summary>
    public bool PagingStructureCaches { get; set; } = true;
    /// <summary>
    /// False turns the TLB model off (<c>model=off</c>): translations go through a plain host-side page cache that
    /// a CR3 write without NOFLUSH, a CR4/CR0 write, INVLPG, INVPCID or a page fault empties; no modeled structure is filled and no TLB
    /// counter moves. For measuring what the model costs; the default is on.
    /// </summary>
    public bool Model { get; set; } = true;
    public CostModel Cost { get; set; } = new();

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNameCaseInsensitive = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        WriteIndented = true,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },
    };

    /// <summary>Reads a configuration from JSON (missing fields keep their defaults). Throws <see cref="FormatException"/> with a clear message.</summary>
    public static TlbConfig FromJson(string json)
    {
        TlbConfig? c;
        try { c = JsonSerializer.Deserialize<TlbConfig>(json, Json); }
        catch (JsonException e) { throw new FormatException($"bad TLB configuration: {e.Message}"); }
        if (c is null) throw new FormatException("bad TLB configuration: empty");
        c.Validate();
        return c;
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Sets one field from a command-line assignment such as <c>stlb.entries=2048</c> or <c>cost.cr3write=150</c>.</summary>
    public void Set(string assignment)
    {
        int eq = assignment.IndexOf('=');
        if (eq <= 0) throw new FormatException($"bad TLB setting '{assignment}' (expected name=value)");
        string[] path = assignment[..eq].Trim().Split('.');
        string value = assignment[(eq + 1)..].Trim();
        object target = this;
        for (int k = 0; k < path.Length; k++)
        {
            var prop = target.GetType().GetProperties().FirstOrDefault(p => string.Equals(p.Name, path[k], StringComparison.OrdinalIgnoreCase))
                ?? throw new FormatException($"unknown TLB setting '{assignment[..eq]}'");
            if (k < path.Length - 1) { target = prop.GetValue(target)!; continue; }
            object v;
            var t = prop.PropertyType;
            if (t == typeof(int) && int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int i)) v = i;
            else if (t == typeof(double) && double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double d)) v = d;
            else if (t == typeof(bool) && bool.TryParse(value, out bool b)) v = b;
            else if (t == typeof(bool) && value.ToLowerInvariant() is "on" or "off") v = value.ToLowerInvariant() == "on";
            else if (t == typeof(Replacement) && Enum.TryParse(value, true, out Replacement r)) v = r;
            else throw new FormatException($"bad value '{value}' for TLB setting '{assignment[..eq]}'");
            prop.SetValue(target, v);
        }
        Validate();
    }

    /// <summary>The most entries one array may have (a bound on host memory, far above any real TLB).</summary>
    public const int MaxEntries = 1 << 20;

    /// <summary>Checks every array's geometry (entries a multiple of ways, a power-of-two number of sets).</summary>
    public void Validate()
    {
        if (Cost is null) throw new FormatException("TLB cost model has no settings (null)");
        foreach (var (name, a) in Arrays())
        {
            if (a is null) throw new FormatException($"TLB array {name} has no settings (null)");
            if (a.Entries > MaxEntries) throw new FormatException($"TLB array {name}: {a.Entries} entries is more than {MaxEntries}");
            if (a.Entries <= 0 || a.Ways <= 0 || a.Entries % a.Ways != 0)
                throw new FormatException($"TLB array {name}: {a.Entries} entries cannot be split into {a.Ways} ways");
            int sets = a.Entries / a.Ways;
            if ((sets & (sets - 1)) != 0) throw new FormatException($"TLB array {name}: {sets} sets is not a power of two");
        }
    }

    public IEnumerable<(string Name, ArrayConfig Config)> Arrays()
    {
        yield return ("dtlb4k", Dtlb4K); yield return ("dtlb2m", Dtlb2M); yield return ("dtlb1g", Dtlb1G);
        yield return ("itlb4k", Itlb4K); yield return ("itlb2m", Itlb2M);
        yield return ("stlb", Stlb); yield return ("stlb1g", Stlb1G);
        yield return ("psc_pml5e", PscPml5e); yield return ("psc_pml4e", PscPml4e);
        yield return ("psc_pdpte", PscPdpte); yield return ("psc_pde", PscPde);
    }
}
