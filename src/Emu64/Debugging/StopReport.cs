using System.Globalization;
using System.Text;
using Emu64.Cpu;

namespace Emu64.Debugging;

/// <summary>
/// The one-screen report printed when a run ends abnormally (triple fault, fault loop, unsupported
/// feature, instruction limit): why, the registers, the instruction at RIP (bytes and Iced
/// disassembly, read through the page tables without side effects), and for faults the last boundary
/// events the machine kept (<see cref="MachineEvents.Recent"/>). Nothing here changes machine state.
/// </summary>
public static class StopReport
{
    /// <summary>Boundary events shown after a fault.</summary>
    public const int EventCount = 8;

    /// <summary>The report, without a trailing newline; the first line is the headline.</summary>
    public static string Format(Machine m, string headline, bool withEvents)
    {
        var c = m.Cpu;
        var sb = new StringBuilder();
        string I(FormattableString f) => f.ToString(CultureInfo.InvariantCulture);
        sb.Append(headline);
        sb.Append(I($"\n  rip={c.Rip:x16} rflags={c.Rflags:x} cpl={c.Cpl} mode={c.Mode} instructions={c.Retired}"));
        sb.Append(I($"\n  cr0={c.CR0:x} cr2={c.CR2:x} cr3={c.CR3:x} cr4={c.CR4:x} efer={c.EFER:x}"));
        sb.Append(I($"\n  cs={c.Segs[Seg.CS].Selector:x4} ss={c.Segs[Seg.SS].Selector:x4} gdtr={c.Gdtr.Base:x}/{c.Gdtr.Limit:x} idtr={c.Idtr.Base:x}/{c.Idtr.Limit:x} tr={c.Tr.Selector:x4}"));
        for (int r = 0; r < 16; r++)
            sb.Append(r % 4 == 0 ? "\n  " : " ").Append(I($"{Reg.Names64[r],-3}={c.R[r]:x16}"));
        sb.Append("\n  ").Append(Instruction(m));
        if (withEvents)
        {
            var recent = m.Events.Recent(EventCount);
            var syms = SymbolTable.ForMachine(m);
            if (recent.Length == 0) sb.Append("\n  no boundary events before the stop");
            else
            {
                sb.Append(I($"\n  last {recent.Length} boundary events (oldest first):"));
                foreach (var e in recent)
                    sb.Append(I($"\n  {e.Instructions,10} cpl={e.Cpl} ")).Append(Tracer.Describe(e, c.PcidOn, syms));
            }
        }
        return sb.ToString();
    }

    /// <summary>"instruction at rip: 0f 0b  ud2", or why it cannot be shown.</summary>
    public static string Instruction(Machine m)
    {
        var c = m.Cpu;
        ulong la = c.Is64 ? c.Rip : (c.Segs[Seg.CS].Base + c.Rip) & 0xFFFFFFFF;
        if (c.Is64 && !c.IsCanonical(la)) return "instruction at rip: unreadable (non-canonical address)";
        try
        {
            var dis = new Disassembler(m, SymbolTable.ForMachine(m));
            var line = dis.One(la);
            if (line is null) return FormattableString.Invariant($"instruction at rip: unreadable (linear {la:x} is not mapped to RAM)");
            string hex = string.Join(' ', line.Value.Bytes.Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));
            string sym = line.Value.Symbol is { } s ? $" <{s}>" : "";
            return $"instruction at rip{sym}: {hex}  {line.Value.Text}";
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return $"instruction at rip: unreadable ({e.Message})";
        }
    }
}
