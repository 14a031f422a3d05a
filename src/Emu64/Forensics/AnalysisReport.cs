using System.Text;

namespace Emu64.Forensics;

/// <summary>The text `emu64 analyze` prints: what the dump holds, then each finding with its confidence and how it was found.</summary>
public static class AnalysisReport
{
    public static string Format(CoreFile dump, AnalysisResult r)
    {
        var sb = new StringBuilder();
        sb.Append($"dump: {dump.Path}: ELF64 core, x86-64, {dump.FileLength} bytes; RAM: ")
          .Append(string.Join(", ", dump.Ranges.Select(x => $"0x{x.Start:x}-0x{x.End:x}"))).Append($" ({DumpAnalysis.Size(dump.Size())})\n");
        sb.Append("notes: ").Append(dump.Notes.Count == 0 ? "none" : string.Join(", ", dump.Notes.Select(NoteName))).Append('\n');
        sb.Append($"started from: {r.StartedFrom}\n");
        foreach (var f in r.Findings)
        {
            sb.Append($"\n{f.Name}: {f.Value}   [confidence: {f.Confidence.ToString().ToLowerInvariant()}]\n");
            foreach (var h in f.How) sb.Append("  - ").Append(h).Append('\n');
        }
        if (dump.CpuState is { } cpu && r.TopTable is { } top)
        {
            ulong cr3 = cpu.Cr(3) & Pte.AddrMask;
            bool known = cr3 == top || r.Processes.Any(p => p.Kernel == cr3 || p.User == cr3);
            sb.Append($"\ncross-check with the CPU note (not used above): CR3=0x{cpu.Cr(3):x} CR4.LA57={(cpu.Cr(4) >> 12) & 1}: ")
              .Append(known ? "its table is one of the PGDs found" : "its table is NOT among the PGDs found")
              .Append((cpu.Cr(4) >> 12 & 1) == (r.Levels == 5 ? 1UL : 0) ? ", paging mode agrees" : ", paging mode DISAGREES")
              .Append($"; GDT at 0x{cpu.Segment("gdt").Base:x}, IDT at 0x{cpu.Segment("idt").Base:x}\n");
        }
        return sb.ToString();
    }

    private static string NoteName(CoreNote n) => n switch
    {
        { Name: "CORE", Type: CoreLayout.NtPrstatus } => $"CORE NT_PRSTATUS ({n.Desc.Length} bytes)",
        { Name: "QEMU" } => $"QEMU QEMUCPUState (version {BitConverter.ToUInt32(n.Desc, 0)}, {n.Desc.Length} bytes)",
        _ => $"{n.Name} type {n.Type} ({n.Desc.Length} bytes)",
    };
}
