namespace Emu64.Tests.Isa;

/// <summary>
/// What the SDM leaves undefined or model-specific (undefined flags of shifts, MUL/DIV, BSF/BSR, BMI,
/// DAA..., 16-bit SHLD/SHRD counts above 16, REP strings with a 32-bit address size and ECX = 0, the
/// upper bytes of a 32-bit PUSH of a segment register, LAR's limit bits; see docs/UNDEFINED-FLAGS.md):
/// Emu64 gives Intel's values. Referees: the committed Intel reference vectors (Data/undefined.vec), on
/// any host; and the host itself when it is a GenuineIntel family-6 CPU (skipped, with the reason, on any
/// other).
/// </summary>
[Trait("Category", "Differential")]
public class IntelReferenceTests
{
    /// <summary>The forms with a part the SDM leaves undefined, and any form the vector file names.</summary>
    public static TheoryData<string> Forms()
    {
        var names = new SortedSet<string>(StringComparer.Ordinal);
        if (File.Exists(IntelVectors.PathInOutput)) names.UnionWith(IntelVectors.All.Keys);
        if (HostCpu.Available) foreach (var f in DiffForms.All) if (IntelVectors.Covers(f)) names.Add(f.Name);
        var d = new TheoryData<string>();
        foreach (var n in names) d.Add(n);
        return d;
    }

    [Theory]
    [MemberData(nameof(Forms))]
    public void The_emulator_matches_the_Intel_reference_vectors_where_the_SDM_leaves_the_outcome_undefined_for(string form)
    {
        if (!HostCpu.Available) return;   // the emulator side maps the harness pages (x86-64 Linux)
        var f = DiffForms.All.FirstOrDefault(x => x.Name == form);
        Assert.True(f != null, $"{IntelVectors.FileName} has vectors for '{form}', which is no longer a form of the suite: re-capture");
        Assert.True(IntelVectors.Covers(f), $"{IntelVectors.FileName} has vectors for '{form}', which the SDM fully defines (SdmUndefined): re-capture");
        Assert.True(IntelVectors.All.TryGetValue(form, out var v),
            $"'{form}' has parts the SDM leaves undefined but no Intel reference vectors: capture them on an Intel host (docs/UNDEFINED-FLAGS.md)");
        var report = Differential.Run(f, IntelVectors.Cases, IntelVectors.Seed, Differential.Referee.IntelVectors, v, null);
        if (report.Length > 0 && !HostCpu.Shared.AtFixedAddresses)
            report += $"(the harness pages are not at {HostCpu.FixedCodePage:x}/{HostCpu.FixedData:x}, so pinned addresses differ from the recorded inputs)\n";
        Assert.True(report.Length == 0, $"referee: the Intel reference vectors ({IntelVectors.FileName}, seed {IntelVectors.Seed})\n{report}");
    }

    [IntelHostTheory]
    [MemberData(nameof(Forms))]
    public void The_emulator_matches_this_Intel_host_even_where_the_SDM_leaves_the_outcome_undefined_for(string form)
    {
        var report = Differential.Check(DiffForms.Get(form), Differential.BaseCases * Differential.Scale, undefinedToo: true);
        Assert.True(report.Length == 0, $"referee: the host CPU ({HostIdentity.Current}), on everything\n{report}");
    }

    /// <summary>
    /// The capture tool: EMU64_CAPTURE_VECTORS=PATH writes the vector file from the host CPU. It refuses
    /// to run on anything but a GenuineIntel family-6 host: the file is Intel's outcome by definition.
    /// </summary>
    [Fact]
    public void Intel_reference_vectors_are_captured_from_the_host_only_on_an_Intel_host()
    {
        var path = Environment.GetEnvironmentVariable("EMU64_CAPTURE_VECTORS");
        if (string.IsNullOrEmpty(path)) return;
        var id = HostIdentity.Current;
        Assert.True(id is { IsModeledFamily: true }, $"EMU64_CAPTURE_VECTORS: refusing to capture Intel reference vectors on {id?.ToString() ?? "a host that cannot run the harness"}");
        Assert.True(HostCpu.Shared.AtFixedAddresses, "the harness pages are not at their fixed addresses: the inputs would not be reproducible");
        IntelVectors.Write(path, fromHost: true,
        [
            $"Intel reference vectors for what the SDM leaves undefined (format: tests/Emu64.Tests/Isa/IntelVectors.cs).",
            $"Captured from the host CPU: {id}, on {DateTime.UtcNow:yyyy-MM-dd}, by EMU64_CAPTURE_VECTORS with the differential",
            $"suite's inputs at seed {IntelVectors.Seed}, {IntelVectors.Cases} cases per form.",
        ]);
    }

    /// <summary>
    /// EMU64_CAPTURE_VECTORS_FROM_EMULATOR=PATH (with EMU64_VECTORS_EMULATOR_COMMIT=the commit built) writes
    /// the same file from the emulator instead. Only for reproducing the bootstrap file (see its header and
    /// docs/UNDEFINED-FLAGS.md): the emulator's outputs are Intel's only at a commit whose full
    /// differential suite passed on an Intel host for these same inputs.
    /// </summary>
    [Fact]
    public void The_bootstrap_vectors_can_be_reproduced_from_the_emulator_when_asked()
    {
        var path = Environment.GetEnvironmentVariable("EMU64_CAPTURE_VECTORS_FROM_EMULATOR");
        if (string.IsNullOrEmpty(path) || !HostCpu.Available) return;
        var commit = Environment.GetEnvironmentVariable("EMU64_VECTORS_EMULATOR_COMMIT");
        Assert.False(string.IsNullOrEmpty(commit), "EMU64_VECTORS_EMULATOR_COMMIT must name the commit whose emulator is recording");
        Assert.True(HostCpu.Shared.AtFixedAddresses, "the harness pages are not at their fixed addresses: the inputs would not be reproducible");
        IntelVectors.Write(path, fromHost: false,
        [
            "Intel reference vectors for what the SDM leaves undefined (format: tests/Emu64.Tests/Isa/IntelVectors.cs).",
            $"BOOTSTRAP, not a capture: outputs of the Emu64 emulator at commit {commit}, recorded with",
            $"EMU64_CAPTURE_VECTORS_FROM_EMULATOR for the differential suite's inputs at seed {IntelVectors.Seed}, {IntelVectors.Cases} cases per form.",
            $"That commit's CI run passed the whole differential suite (seed {IntelVectors.Seed}, every status flag, every GPR and",
            "the data page compared) on an Intel Xeon Processor @ 2.50GHz (Cascade Lake, family 6) host, so for these",
            "inputs these outputs were checked equal to that Intel CPU's. The random inputs are the ones that run used;",
            "only addresses pinned into registers (harness pages, now at fixed addresses) differ, and no undefined part",
            "depends on them. A capture on an Intel family-6 host (EMU64_CAPTURE_VECTORS) supersedes this file.",
        ]);
    }
}
