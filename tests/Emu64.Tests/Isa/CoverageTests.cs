using System.Diagnostics;
using Emu64.Isa;
using Iced.Intel;
using Xunit.Abstractions;

namespace Emu64.Tests.Isa;

[Trait("Category", "Isa")]
public class CoverageTests(ITestOutputHelper output)
{
    /// <summary>
    /// General-purpose codes known to be missing, each with its reason. Shrink this list, never grow it
    /// without one: the test fails if any other general-purpose code lacks a handler.
    /// </summary>
    private static readonly Dictionary<Code, string> KnownMissing = new()
    {
    };

    [Fact]
    public void Every_general_purpose_code_has_a_handler_except_the_documented_gaps()
    {
        var missing = Coverage.List(Coverage.Group.GeneralPurpose).Where(l => !l.Implemented && !KnownMissing.ContainsKey(l.Code)).ToList();
        Assert.True(missing.Count == 0, "missing: " + string.Join(", ", missing.Select(m => m.Code)));
    }

    [Fact]
    public void Every_SSE_and_SSE2_code_on_XMM_registers_has_a_handler()
    {
        var missing = Coverage.List(Coverage.Group.SseSse2).Where(l => !l.Implemented).ToList();
        Assert.True(missing.Count == 0, "missing: " + string.Join(", ", missing.Select(m => m.Code)));
    }

    [Fact]
    public void Every_x87_code_has_a_handler()
    {
        var l = Coverage.List(Coverage.Group.X87);
        Assert.True(l.Count > 150, $"only {l.Count} x87 codes");
        var missing = l.Where(x => !x.Implemented).ToList();
        Assert.True(missing.Count == 0, "missing: " + string.Join(", ", missing.Select(m => m.Code)));
    }

    [Fact]
    public void Every_MMX_code_and_every_SSE_form_on_MMX_registers_has_a_handler()
    {
        var l = Coverage.List(Coverage.Group.Mmx);
        Assert.True(l.Count > 80, $"only {l.Count} MMX codes");
        var missing = l.Where(x => !x.Implemented).ToList();
        Assert.True(missing.Count == 0, "missing: " + string.Join(", ", missing.Select(m => m.Code)));
    }

    [Fact]
    public void The_coverage_report_lists_missing_codes_by_group()
    {
        var w = new StringWriter();
        Coverage.Write(w, all: false);
        var text = w.ToString();
        Assert.Contains("general-purpose and system:", text);
        Assert.Contains("SSE/SSE2:", text);
        foreach (var c in KnownMissing.Keys.Where(c => !HandlerTable.IsImplemented(c))) Assert.Contains(c.ToString(), text);
        Assert.DoesNotContain("missing      " + Code.Add_rm64_r64 + " ", text);
    }

    [Fact]
    public void The_full_coverage_report_lists_fxsave_and_fxrstor_as_implemented()
    {
        var w = new StringWriter();
        Coverage.Write(w, all: true);
        var lines = w.ToString().Split('\n');
        foreach (var c in new[] { Code.Fxsave_m512byte, Code.Fxsave64_m512byte, Code.Fxrstor_m512byte, Code.Fxrstor64_m512byte })
            Assert.Contains(lines, l => l.StartsWith($"  implemented  {c} "));
    }

    [Theory]
    [InlineData(Code.Add_rm64_r64, Coverage.Group.GeneralPurpose)]
    [InlineData(Code.VEX_Pdep_r64_r64_rm64, Coverage.Group.GeneralPurpose)]
    [InlineData(Code.Cmpxchg16b_m128, Coverage.Group.GeneralPurpose)]
    [InlineData(Code.Daa, Coverage.Group.GeneralPurpose)]
    [InlineData(Code.Paddd_xmm_xmmm128, Coverage.Group.SseSse2)]
    [InlineData(Code.Paddq_mm_mmm64, Coverage.Group.Mmx)]       // SSE2, but on an MMX register: counted with MMX
    [InlineData(Code.Cvtpi2ps_xmm_mmm64, Coverage.Group.Mmx)]
    [InlineData(Code.Paddb_mm_mmm64, Coverage.Group.Mmx)]
    [InlineData(Code.Emms, Coverage.Group.Mmx)]
    [InlineData(Code.Fcmovb_st0_sti, Coverage.Group.X87)]
    [InlineData(Code.Fprem1, Coverage.Group.X87)]
    [InlineData(Code.Fisttp_m32int, Coverage.Group.OutOfScope)]      // SSE3
    [InlineData(Code.Addps_xmm_xmmm128, Coverage.Group.SseSse2)]
    [InlineData(Code.Fxsave_m512byte, Coverage.Group.SseSse2)]        // CPUID FXSR: the SSE state's save and restore
    [InlineData(Code.Fxsave64_m512byte, Coverage.Group.SseSse2)]
    [InlineData(Code.Fxrstor_m512byte, Coverage.Group.SseSse2)]
    [InlineData(Code.Fxrstor64_m512byte, Coverage.Group.SseSse2)]
    [InlineData(Code.Fadd_m32fp, Coverage.Group.X87)]
    [InlineData(Code.Pshufb_xmm_xmmm128, Coverage.Group.OutOfScope)]
    [InlineData(Code.VEX_Vaddps_xmm_xmm_xmmm128, Coverage.Group.OutOfScope)]
    public void Codes_are_grouped_as_issue_4_scopes_them(Code code, Coverage.Group group)
        => Assert.Equal(group, Coverage.Classify(code));

    /// <summary>
    /// Compiles tests/Emu64.Tests/Isa/Data/userprog.c with plain gcc -O2 -static -nostdlib and decodes its
    /// .text: every instruction must be implemented or be SSE/SSE2 (that family is built separately).
    /// Skipped, with a message, when gcc or objcopy is not installed.
    /// </summary>
    [Theory]
    [InlineData("-O2")]
    [InlineData("-O2 -mpopcnt -mlzcnt -mbmi -mbmi2 -mmovbe -madx")]
    [InlineData("-Os -mgeneral-regs-only")]
    public void Every_instruction_gcc_emits_for_a_freestanding_program_is_implemented(string options)
    {
        var text = CompileText(output, options);
        if (text is null) return;
        var bad = new SortedSet<string>();
        var sse = new SortedSet<string>();
        var dec = Decoder.Create(64, text);
        int n = 0;
        while (dec.IP < (ulong)text.Length)
        {
            dec.Decode(out var ins);
            n++;
            if (HandlerTable.IsImplemented(ins.Code)) continue;
            if (Coverage.Classify(ins.Code) == Coverage.Group.SseSse2) sse.Add(ins.Code.ToString());
            else bad.Add($"{ins.Code} ({ins})");
        }
        output.WriteLine($"{n} instructions; SSE/SSE2 codes used and not yet implemented: {string.Join(", ", sse)}");
        Assert.True(n > 100, $"only {n} instructions decoded");
        Assert.True(bad.Count == 0, "not implemented: " + string.Join(", ", bad));
    }

    internal static byte[]? CompileText(ITestOutputHelper output, string opt)
    {
        string src = Path.Combine(AppContext.BaseDirectory, "Isa", "Data", "userprog.c");
        string dir = Path.Combine(Path.GetTempPath(), $"emu64-gcc-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        string elf = Path.Combine(dir, "prog.elf"), bin = Path.Combine(dir, "text.bin");
        if (!Exec("gcc", $"{opt} -static -nostdlib -ffreestanding -fno-stack-protector -fno-pie -no-pie -o {elf} {src} -lgcc", output)
            || !Exec("objcopy", $"-O binary --only-section=.text {elf} {bin}", output))
        {
            output.WriteLine("SKIPPED: gcc/objcopy not available on this machine");
            return null;
        }
        return File.ReadAllBytes(bin);
    }

    private static bool Exec(string file, string args, ITestOutputHelper output)
    {
        try
        {
            var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            string err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) { output.WriteLine($"{file} failed: {err}"); throw new InvalidOperationException($"{file} {args}: {err}"); }
            return true;
        }
        catch (System.ComponentModel.Win32Exception) { return false; }
    }
}
