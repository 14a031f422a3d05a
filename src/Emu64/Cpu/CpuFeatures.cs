namespace Emu64.Cpu;

/// <summary>
/// The <c>--cpu</c> option, spelt as QEMU's <c>-cpu</c>: an optional model (Emu64 has one, <c>max</c>:
/// everything it implements) and a comma-separated list of <c>-feature</c>, <c>+feature</c>,
/// <c>feature=off</c> or <c>feature=on</c> items. A feature can only be taken away: <c>+feature</c> of a
/// feature Emu64 implements changes nothing (it is already there), and no item can add what is not
/// implemented. Each switchable feature names its CPUID bit (the QEMU name) and the CPU then behaves as a
/// processor without it, because every instruction and control-register check asks CPUID's fields:
/// <list type="bullet">
/// <item>pcid: CR4.PCIDE ← 1 is #GP (SDM vol. 3A §2.5); invpcid: INVPCID is #UD.</item>
/// <item>la57: CR4.LA57 ← 1 is #GP; system addresses are checked against 48 bits; 0x80000008 reports 48.</item>
/// <item>umip, pku, smep, smap, fsgsbase: setting the CR4 bit is #GP (STAC/CLAC #UD without smap).</item>
/// <item>rdtscp, rdpid, rdrand, rdseed: the instruction is #UD.</item>
/// <item>arat: CPUID.6:EAX[2] reads 0 (the APIC timer still runs while halted; a guest then treats it as one that may stop).</item>
/// </list>
/// </summary>
public static class CpuFeatures
{
    public enum Reg { Leaf1Ecx, Leaf6Eax, Leaf7Ebx, Leaf7Ecx, Ext1Edx }

    public readonly record struct Feature(string Name, Reg Register, int Bit);

    /// <summary>The features <c>--cpu</c> can turn off, with their CPUID bits.</summary>
    public static readonly Feature[] Switchable =
    [
        new("pcid", Reg.Leaf1Ecx, 17),
        new("arat", Reg.Leaf6Eax, 2),
        new("rdrand", Reg.Leaf1Ecx, 30),
        new("fsgsbase", Reg.Leaf7Ebx, 0),
        new("smep", Reg.Leaf7Ebx, 7),
        new("invpcid", Reg.Leaf7Ebx, 10),
        new("rdseed", Reg.Leaf7Ebx, 18),
        new("smap", Reg.Leaf7Ebx, 20),
        new("umip", Reg.Leaf7Ecx, 2),
        new("pku", Reg.Leaf7Ecx, 3),
        new("la57", Reg.Leaf7Ecx, 16),
        new("rdpid", Reg.Leaf7Ecx, 22),
        new("rdtscp", Reg.Ext1Edx, 27),
    ];

    /// <summary>The names <c>--cpu</c> accepts, for messages.</summary>
    public static string Names => string.Join(", ", Switchable.Select(f => f.Name));

    /// <summary>
    /// The features <paramref name="spec"/> turns off, in the order given; <see cref="ArgumentException"/> with a
    /// one-line message for an unknown model or feature name or a malformed item.
    /// </summary>
    public static IReadOnlyList<Feature> Parse(string spec)
    {
        var off = new List<Feature>();
        var items = spec.Split(',', StringSplitOptions.TrimEntries);
        for (int k = 0; k < items.Length; k++)
        {
            string item = items[k];
            if (item.Length == 0) throw new ArgumentException($"empty item in '{spec}'");
            bool? enable = null;
            string name = item;
            if (item[0] is '+' or '-') { enable = item[0] == '+'; name = item[1..]; }
            else if (item.EndsWith("=on", StringComparison.Ordinal)) { enable = true; name = item[..^3]; }
            else if (item.EndsWith("=off", StringComparison.Ordinal)) { enable = false; name = item[..^4]; }
            if (enable is null)
            {
                if (k == 0 && item == "max") continue;
                if (k == 0) throw new ArgumentException($"unknown CPU model '{item}' (Emu64 has one model, max)");
                throw new ArgumentException($"'{item}' is neither -FEATURE, +FEATURE, FEATURE=on nor FEATURE=off");
            }
            Feature? f = null;
            foreach (var s in Switchable) if (s.Name == name) f = s;
            if (f is null) throw new ArgumentException($"unknown CPU feature '{name}' (features Emu64 can turn off: {Names})");
            off.RemoveAll(x => x.Name == name);
            if (enable == false) off.Add(f.Value);
        }
        return off;
    }

    /// <summary>Clears the CPUID bits of <paramref name="off"/> in <paramref name="cpu"/> (before the guest runs).</summary>
    public static void Apply(Cpu cpu, IEnumerable<Feature> off)
    {
        foreach (var f in off)
        {
            uint mask = ~(1u << f.Bit);
            switch (f.Register)
            {
                case Reg.Leaf1Ecx: cpu.Leaf1Ecx &= mask; break;
                case Reg.Leaf6Eax: cpu.Leaf6Eax &= mask; break;
                case Reg.Leaf7Ebx: cpu.Leaf7Ebx &= mask; break;
                case Reg.Leaf7Ecx: cpu.Leaf7Ecx &= mask; break;
                case Reg.Ext1Edx: cpu.Ext1Edx &= mask; break;
            }
        }
    }
}
