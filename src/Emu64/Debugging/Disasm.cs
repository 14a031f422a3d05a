using Iced.Intel;
using Emu64.Cpu;

namespace Emu64.Debugging;

/// <summary>One disassembled instruction.</summary>
public readonly record struct DisasmLine(ulong Address, byte[] Bytes, string Text, string? Symbol, Instruction Instruction);

/// <summary>
/// Disassembly with Iced's Intel formatter, reading code through the page tables without side
/// effects; branch targets and RIP-relative operands are shown with kernel symbols.
/// </summary>
public sealed class Disassembler
{
    private readonly Machine _m;
    private readonly SymbolTable _syms;
    private readonly Formatter _fmt;
    private readonly StringOutput _out = new();

    public Disassembler(Machine m, SymbolTable syms)
    {
        _m = m;
        _syms = syms;
        _fmt = new IntelFormatter(new Resolver(syms));
        _fmt.Options.FirstOperandCharIndex = 8;
        _fmt.Options.HexPrefix = "0x";
        _fmt.Options.HexSuffix = "";
    }

    private sealed class Resolver(SymbolTable syms) : ISymbolResolver
    {
        public bool TryGetSymbol(in Instruction instruction, int operand, int instructionOperand, ulong address, int addressSize, out SymbolResult symbol)
        {
            var s = syms.Find(address, out ulong off);
            if (s is { } sym && (instruction.IsCallNear || instruction.IsJmpNear || instruction.IsJccShortOrNear || instruction.IsIPRelativeMemoryOperand || off == 0))
            {
                symbol = off == 0 ? new SymbolResult(address, sym.Name) : new SymbolResult(address, $"{sym.Name}+0x{off:x}");
                return true;
            }
            symbol = default;
            return false;
        }
    }

    public SymbolTable Symbols => _syms;

    /// <summary>Decodes up to <paramref name="count"/> instructions at <paramref name="la"/> in the CPU's current mode.</summary>
    public List<DisasmLine> Disassemble(ulong la, int count, ulong? root = null)
    {
        var result = new List<DisasmLine>();
        int bitness = _m.Cpu.Bitness;
        var buf = new byte[count * 15 + 15];
        int n = PageWalker.ReadLinear(_m, la, buf, root);
        if (n == 0) return result;
        var decoder = Decoder.Create(bitness, new ByteArrayCodeReader(buf, 0, n), la);
        while (result.Count < count && decoder.IP < la + (ulong)n)
        {
            decoder.Decode(out var insn);
            if (insn.IsInvalid && decoder.IP - la > (ulong)n) break;   // ran out of bytes
            result.Add(Line(insn, buf.AsSpan((int)(insn.IP - la), insn.Length).ToArray()));
        }
        return result;
    }

    /// <summary>The instruction at <paramref name="la"/>, or null if its bytes cannot be read.</summary>
    public DisasmLine? One(ulong la)
    {
        var l = Disassemble(la, 1);
        return l.Count == 0 ? null : l[0];
    }

    private DisasmLine Line(in Instruction insn, byte[] bytes)
    {
        _out.Reset();
        if (insn.IsInvalid) return new DisasmLine(insn.IP, bytes, "(bad)", _syms.Describe(insn.IP), insn);
        _fmt.Format(insn, _out);
        return new DisasmLine(insn.IP, bytes, _out.ToStringAndReset(), _syms.Describe(insn.IP), insn);
    }

    /// <summary>"ffffffff81000000 &lt;entry_SYSCALL_64+0x3&gt;  0f 01 f8   swapgs".</summary>
    public static string Format(in DisasmLine l)
    {
        string sym = l.Symbol is null ? "" : $" <{l.Symbol}>";
        string hex = string.Join(' ', l.Bytes.Select(b => b.ToString("x2")));
        return $"{l.Address:x16}{sym}:  {hex,-30} {l.Text}";
    }
}

/// <summary>A snapshot of the registers an instruction trace compares (GPRs, RIP, RFLAGS, selectors, bases, CRs).</summary>
public sealed class RegSnapshot
{
    public static readonly string[] Names =
    [
        "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
        "rflags", "cs", "ss", "ds", "es", "fs", "gs", "fs_base", "gs_base", "kernel_gs_base", "cr0", "cr2", "cr3", "cr4", "efer",
    ];
    public readonly ulong[] V = new ulong[Names.Length];

    public void Capture(Emu64.Cpu.Cpu c)
    {
        for (int i = 0; i < 16; i++) V[i] = c.R[i];
        V[16] = c.Rflags;
        V[17] = c.Segs[Seg.CS].Selector; V[18] = c.Segs[Seg.SS].Selector; V[19] = c.Segs[Seg.DS].Selector;
        V[20] = c.Segs[Seg.ES].Selector; V[21] = c.Segs[Seg.FS].Selector; V[22] = c.Segs[Seg.GS].Selector;
        V[23] = c.Segs[Seg.FS].Base; V[24] = c.Segs[Seg.GS].Base; V[25] = c.KernelGsBase;
        V[26] = c.CR0; V[27] = c.CR2; V[28] = c.CR3; V[29] = c.CR4; V[30] = c.EFER;
    }

    /// <summary>Names and new values of the registers that differ from <paramref name="before"/>.</summary>
    public IEnumerable<(string Name, ulong Value)> Changes(RegSnapshot before)
    {
        for (int i = 0; i < V.Length; i++)
            if (V[i] != before.V[i]) yield return (Names[i], V[i]);
    }
}
