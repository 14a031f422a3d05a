using Iced.Intel;

namespace Emu64.Isa;

/// <summary>
/// Which Iced <see cref="Code"/> values the interpreter implements, from the handler table, grouped the
/// way issue 4 scopes the instruction set: general-purpose and system instructions (the integer ISA of
/// 8086..x86-64 plus CMOV, CX8/CX16, MOVBE, POPCNT/LZCNT, BMI1/BMI2, ADX, RDRAND/RDSEED, RDPID,
/// FSGSBASE, INVPCID, SMAP, PKU, ...), SSE/SSE2 (the x86-64 ABI baseline) on XMM registers with FXSAVE/FXRSTOR, the
/// x87 FPU, and MMX (with the SSE/SSE2 forms on MMX registers). Everything else (SSE3 and later, AVX, virtualisation,
/// vendor oddities, FISTTP which is SSE3) is out of scope and only counted.
/// Codes valid only in 16-bit code are left out: Emu64 runs 32-bit protected, compatibility and 64-bit code.
/// </summary>
public static class Coverage
{
    public enum Group { GeneralPurpose, SseSse2, X87, Mmx, OutOfScope }

    private static readonly HashSet<CpuidFeature> GeneralFeatures =
    [
        CpuidFeature.INTEL8086, CpuidFeature.INTEL186, CpuidFeature.INTEL286, CpuidFeature.INTEL386, CpuidFeature.INTEL486,
        CpuidFeature.X64, CpuidFeature.CMOV, CpuidFeature.CX8, CpuidFeature.CMPXCHG16B, CpuidFeature.MOVBE, CpuidFeature.POPCNT,
        CpuidFeature.LZCNT, CpuidFeature.BMI1, CpuidFeature.BMI2, CpuidFeature.ADX, CpuidFeature.RDRAND, CpuidFeature.RDSEED,
        CpuidFeature.RDPID, CpuidFeature.RDTSCP, CpuidFeature.TSC, CpuidFeature.MSR, CpuidFeature.CPUID, CpuidFeature.FSGSBASE,
        CpuidFeature.INVPCID, CpuidFeature.SMAP, CpuidFeature.PKU, CpuidFeature.SYSCALL, CpuidFeature.CLFSH, CpuidFeature.CLFLUSHOPT,
        CpuidFeature.PAUSE, CpuidFeature.CET_IBT, CpuidFeature.MULTIBYTENOP, CpuidFeature.PREFETCHW,
    ];

    public static Group Classify(Code code)
    {
        var enc = code.Encoding();
        if (code == Code.INVALID || enc is not (EncodingKind.Legacy or EncodingKind.VEX)) return Group.OutOfScope;
        var op = code.ToOpCode();
        if (!op.Mode64 && !op.Mode32) return Group.OutOfScope;
        var f = code.CpuidFeatures();
        // FXSAVE/FXRSTOR (CPUID FXSR) save and restore the SSE state with the x87 one: they belong with SSE.
        if (enc == EncodingKind.Legacy && f.Length == 1 && f[0] is CpuidFeature.SSE or CpuidFeature.SSE2 or CpuidFeature.FXSR)
            return UsesMmxRegisters(op) ? Group.Mmx : Group.SseSse2;   // SSE/SSE2 forms on MMX registers belong with MMX
        if (enc == EncodingKind.Legacy && f.Length == 1 && f[0] == CpuidFeature.MMX) return Group.Mmx;
        // the x87 of a 387 and later (FCMOV/FCOMI come with CMOV); 287XL/387SL-only and Cyrix forms stay out of scope
        if (enc == EncodingKind.Legacy && f.Length >= 1 && f.All(x => x is CpuidFeature.FPU or CpuidFeature.FPU287 or CpuidFeature.FPU387 or CpuidFeature.CMOV)
            && f.Any(x => x is CpuidFeature.FPU or CpuidFeature.FPU287 or CpuidFeature.FPU387)) return Group.X87;
        foreach (var x in f) if (!GeneralFeatures.Contains(x)) return Group.OutOfScope;
        if (op.IsInstruction == false) return Group.OutOfScope;
        return Group.GeneralPurpose;
    }

    /// <summary>SSE/SSE2 forms on MMX registers (PADDQ mm, CVTPI2PS, MOVQ2DQ, ...) need the x87/MMX register file.</summary>
    private static bool UsesMmxRegisters(OpCodeInfo op)
    {
        for (int i = 0; i < op.OpCount; i++)
            if (op.GetOpKind(i).ToString().StartsWith("mm_", StringComparison.Ordinal)) return true;
        return false;
    }

    public sealed record Line(Code Code, bool Implemented);

    /// <summary>All in-scope codes of a group, with whether the handler table has a row for them.</summary>
    public static List<Line> List(Group g)
    {
        var l = new List<Line>();
        foreach (Code c in Enum.GetValues<Code>())
            if (Classify(c) == g) l.Add(new Line(c, HandlerTable.IsImplemented(c)));
        return l;
    }

    /// <summary>Prints the report: per group a summary line, the missing codes and (with <paramref name="all"/>) the implemented ones.</summary>
    public static int Write(TextWriter w, bool all)
    {
        int missingTotal = 0;
        foreach (var (g, title) in new[] { (Group.GeneralPurpose, "general-purpose and system"), (Group.SseSse2, "SSE/SSE2"), (Group.X87, "x87"), (Group.Mmx, "MMX") })
        {
            var l = List(g);
            int impl = l.Count(x => x.Implemented);
            missingTotal += l.Count - impl;
            w.WriteLine($"{title}: {impl} of {l.Count} codes implemented, {l.Count - impl} missing");
            foreach (var x in l.Where(x => !x.Implemented)) w.WriteLine($"  missing      {x.Code,-40} {Describe(x.Code)}");
            if (all) foreach (var x in l.Where(x => x.Implemented)) w.WriteLine($"  implemented  {x.Code,-40} {Describe(x.Code)}");
        }
        int other = Enum.GetValues<Code>().Count(c => Classify(c) == Group.OutOfScope);
        w.WriteLine($"out of scope (SSE3+, AVX, virtualisation, 287XL/387SL-only, ...): {other} codes, not implemented by design");
        return missingTotal;
    }

    private static string Describe(Code c)
    {
        var op = c.ToOpCode();
        string modes = (op.Mode64 ? "64" : "") + (op.Mode32 ? (op.Mode64 ? "/32" : "32") : "");
        return $"{op.ToOpCodeString(),-28} {op.ToInstructionString(),-36} [{modes}]";
    }
}
