using System.Globalization;
using Emu64.Loader;

namespace Emu64.Debugging;

/// <summary>
/// The kernel's symbol table for people: address → "name+0x12" for traces and disassembly, and
/// name → address for breakpoints. Built from the ELF symbol table the loader read.
/// </summary>
public sealed class SymbolTable
{
    private ulong[] _addr = [];
    private ElfSymbol[] _sym = [];
    private readonly Dictionary<string, ulong> _byName = new(StringComparer.Ordinal);

    /// <summary>How far past a sized symbol's end, or past an unsized one, an address still gets its name.</summary>
    public const ulong MaxUnsizedOffset = 0x10000;

    public SymbolTable(IEnumerable<ElfSymbol> symbols) => Load(symbols);

    /// <summary>Replaces the table's contents (kallsyms read out of the guest once the kernel has relocated itself).</summary>
    private void Load(IEnumerable<ElfSymbol> symbols)
    {
        _byName.Clear();
        // Keep functions and labels with a non-zero address; on equal addresses prefer functions, then sized symbols.
        var list = symbols.Where(s => s.Value != 0 && s.Name.Length > 0 && !s.Name.StartsWith('$'))
            .OrderBy(s => s.Value).ThenByDescending(s => s.IsFunction).ThenBy(s => IsMarker(s.Name)).ThenByDescending(s => s.Size)
            .ThenBy(s => s.Name, StringComparer.Ordinal)
            .ToList();
        var dedup = new List<ElfSymbol>();
        foreach (var s in list)
        {
            _byName.TryAdd(s.Name, s.Value);
            if (dedup.Count > 0 && dedup[^1].Value == s.Value) continue;
            dedup.Add(s);
        }
        _sym = dedup.ToArray();
        _addr = _sym.Select(s => s.Value).ToArray();
    }

    /// <summary>Section and region markers (__entry_text_start, _etext ...) lose to real names at the same address.</summary>
    private static bool IsMarker(string n) => n.StartsWith("__") || n.EndsWith("_start") || n.EndsWith("_end") || n.StartsWith("_e");

    /// <summary>
    /// The KASLR offset: runtime address − link address of the kernel's symbols. Every lookup applies
    /// it. <see cref="DetectSlide"/> derives it from LSTAR and entry_SYSCALL_64 once the kernel set LSTAR.
    /// </summary>
    public long Slide { get; set; }
    public bool SlideKnown { get; private set; }

    /// <summary>
    /// Learns the KASLR offset from what the kernel tells the machine: the runtime address of _text it
    /// announces on the kernel info port, or else LSTAR (= runtime entry_SYSCALL_64) once it is set.
    /// </summary>
    public bool DetectSlide(Machine m)
    {
        if (SlideKnown) return true;
        if (Count == 0) return TryKallsyms(m);
        if (m.KernelInfo.TextBase is { } text && _byName.TryGetValue("_text", out ulong link))
        {
            Slide = (long)(text - link);
            KaslrOffset = Slide;
            SlideKnown = true;
            return true;
        }
        return DetectSlide(m.Cpu.Lstar);
    }

    /// <summary>Where the names came from: "ELF", or "kallsyms" once read out of the guest's kernel.</summary>
    public string Source { get; private set; } = "ELF";

    /// <summary>KASLR's offset (runtime − link address): <see cref="Slide"/> for a linked symbol file, the runtime _text − <see cref="Kallsyms.LinkText"/> for kallsyms.</summary>
    public long KaslrOffset { get; private set; }

    private bool _kallsymsTried;

    /// <summary>
    /// A kernel without a symbol file (a stock distribution kernel): once it has set LSTAR it runs its own,
    /// relocated, code (the decompressor applied the KASLR relocations before jumping to it), so its kallsyms
    /// tables in RAM hold runtime addresses. Read them once; the table then needs no slide.
    /// </summary>
    public bool TryKallsyms(Machine m)
    {
        if (_kallsymsTried || m.Cpu.Lstar == 0) return false;
        _kallsymsTried = true;
        return UseKallsyms(Kallsyms.Find(m.Memory));
    }

    /// <summary>Loads a kallsyms table found elsewhere (a scratch copy of the machine, run until the kernel had relocated itself).</summary>
    public bool UseKallsyms(Kallsyms.Table? t)
    {
        if (t is null) return false;
        Load(t.Symbols());
        Source = "kallsyms";
        Slide = 0;
        KaslrOffset = t.KaslrOffset;
        SlideKnown = true;
        return true;
    }

    /// <summary>The symbols of the machine's kernel file, or, for a kernel without any, its kallsyms once it has relocated itself.</summary>
    public static SymbolTable ForMachine(Machine m)
    {
        var t = new SymbolTable(m.Symbols);
        t.DetectSlide(m);
        return t;
    }

    /// <summary>Takes a KASLR offset found elsewhere (e.g. by running a scratch copy of the machine to the kernel's announcement).</summary>
    public void LearnSlide(long slide)
    {
        Slide = slide;
        KaslrOffset = slide;
        SlideKnown = true;
    }

    /// <summary>Sets <see cref="Slide"/> from LSTAR = runtime entry_SYSCALL_64, if the kernel has that symbol and LSTAR is set.</summary>
    public bool DetectSlide(ulong lstar)
    {
        if (SlideKnown || lstar == 0 || !_byName.TryGetValue("entry_SYSCALL_64", out ulong link)) return SlideKnown;
        Slide = (long)(lstar - link);
        KaslrOffset = Slide;
        SlideKnown = true;
        return true;
    }

    public static readonly SymbolTable Empty = new(Array.Empty<ElfSymbol>());

    public int Count => _sym.Length;

    /// <summary>The symbol at or below <paramref name="addr"/> that covers it, or null.</summary>
    public ElfSymbol? Find(ulong addr, out ulong offset)
    {
        offset = 0;
        addr = (ulong)((long)addr - Slide);
        int i = Array.BinarySearch(_addr, addr);
        if (i < 0) i = ~i - 1;
        if (i < 0) return null;
        var s = _sym[i];
        offset = addr - s.Value;
        ulong reach = s.Size != 0 ? s.Size : MaxUnsizedOffset;
        if (offset >= reach) return null;
        return s;
    }

    /// <summary>"name" or "name+0x1a", or null when no symbol covers the address.</summary>
    public string? Describe(ulong addr)
    {
        var s = Find(addr, out ulong off);
        if (s is null) return null;
        return off == 0 ? s.Value.Name : $"{s.Value.Name}+0x{off:x}";
    }

    public bool TryResolve(string name, out ulong addr)
    {
        if (!_byName.TryGetValue(name, out addr)) return false;
        addr = (ulong)((long)addr + Slide);
        return true;
    }

    /// <summary>
    /// Parses what a person types for an address: a symbol, "symbol+off", or a number as gdb reads it
    /// (<see cref="TryParseNumber"/>); $rip-style register names are handled by the caller. Returns false when it is none of these.
    /// </summary>
    public bool TryParseAddress(string text, out ulong addr)
    {
        addr = 0;
        string t = text.Trim();
        if (t.StartsWith('*')) t = t[1..];
        ulong extra = 0;
        int plus = t.LastIndexOf('+');
        if (plus > 0)
        {
            if (!TryParseNumber(t[(plus + 1)..], out extra)) return false;
            t = t[..plus];
        }
        if (TryResolve(t, out addr)) { addr += extra; return true; }
        if (TryParseNumber(t, out addr)) { addr += extra; return true; }
        return false;
    }

    /// <summary>
    /// Numbers as gdb reads them: decimal, or hexadecimal after 0x (no octal: a leading 0 is still decimal).
    /// A trailing '.' (gdb's explicit decimal) is accepted; '_' and '`' may group digits. "1000" is one
    /// thousand, "0x1000" 4,096, and a bare "ffff" is not a number (it may be a symbol).
    /// </summary>
    public static bool TryParseNumber(string s, out ulong v)
    {
        s = s.Trim().Replace("_", "").Replace("`", "");
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            s = s[2..];
            v = 0;
            return s.Length is > 0 and <= 16 && s.All(char.IsAsciiHexDigit)
                && ulong.TryParse(s, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out v);
        }
        if (s.EndsWith('.')) s = s[..^1];
        return ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out v);
    }

    /// <summary>What <see cref="TryParseNumber"/> takes, for messages.</summary>
    public const string NumberSyntax = "numbers are decimal, or hexadecimal after 0x";
}
