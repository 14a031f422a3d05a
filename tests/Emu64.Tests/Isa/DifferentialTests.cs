namespace Emu64.Tests.Isa;

/// <summary>
/// Every in-scope instruction form, run natively and in the emulator with the same inputs
/// (1000 cases per form by default; EMU64_DIFF_SCALE multiplies, EMU64_DIFF_SEED reseeds).
/// Referee: the host CPU, on what the SDM defines for every x86-64 processor, so the test holds on
/// Intel and AMD alike. What the SDM leaves undefined or model-specific is checked by
/// <see cref="IntelReferenceTests"/> (against Intel reference vectors, and against the host when it is Intel).
/// </summary>
[Trait("Category", "Differential")]
public class DifferentialTests
{
    public static TheoryData<string> Forms()
    {
        var d = new TheoryData<string>();
        foreach (var f in DiffForms.All) d.Add(f.Name);
        return d;
    }

    [Theory]
    [MemberData(nameof(Forms))]
    public void The_emulator_matches_the_host_cpu_where_the_SDM_defines_the_outcome_for(string form)
    {
        if (!HostCpu.Available) return;   // the native side needs an x86-64 Linux host
        var report = Differential.Check(DiffForms.Get(form), Differential.BaseCases * Differential.Scale);
        Assert.True(report.Length == 0, $"referee: the host CPU ({HostIdentity.Current}), on what the SDM defines\n{report}");
    }

    /// <summary>EMU64_DIFF_DUMP=form1,form2 writes the host's outputs to /tmp/emu64-dump-FORM.txt (a research aid, not a check).</summary>
    [Fact]
    public void Host_outputs_can_be_dumped_for_study()
    {
        var names = Environment.GetEnvironmentVariable("EMU64_DIFF_DUMP");
        if (string.IsNullOrEmpty(names) || !HostCpu.Available) return;
        foreach (var n in names.Split(','))
        {
            using var w = new StreamWriter($"/tmp/emu64-dump-{n.Replace('/', '_')}.txt");
            Differential.DumpHost(DiffForms.Get(n), 20000, w);
        }
    }

    [Fact]
    public void The_suite_has_at_least_300_forms()
        => Assert.True(DiffForms.All.Count >= 300, $"{DiffForms.All.Count} forms");
}
