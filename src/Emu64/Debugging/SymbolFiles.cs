using System.Globalization;
using Emu64.Loader;

namespace Emu64.Debugging;

/// <summary>
/// What `--symbols FILE` accepts: an ELF file with a symbol table (a vmlinux from a -dbg package), or a
/// text listing of "ADDRESS TYPE NAME [module]" lines, which is both a System.map (link addresses: the
/// KASLR offset is then learned from LSTAR, like an ELF's) and a /proc/kallsyms dump (runtime addresses of
/// that boot: the offset learned is 0).
/// </summary>
public static class SymbolFiles
{
    public static List<ElfSymbol> Read(byte[] data)
    {
        if (data.Length >= 4 && data[0] == 0x7F && data[1] == 'E' && data[2] == 'L' && data[3] == 'F')
            return new ElfImage(data).ReadSymbols();
        return ParseMap(System.Text.Encoding.ASCII.GetString(data));
    }

    /// <summary>System.map / /proc/kallsyms lines; per-CPU and zero addresses (kptr_restrict's) are left out, sizes reach to the next symbol.</summary>
    public static List<ElfSymbol> ParseMap(string text)
    {
        var raw = new List<(ulong Addr, string Name, char Type)>();
        int lineNo = 0;
        foreach (var line in text.Split('\n'))
        {
            lineNo++;
            var f = line.Trim().Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (f.Length == 0) continue;
            if (f.Length < 3 || f[1].Length != 1 || !ulong.TryParse(f[0], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong a))
                throw new ImageException($"line {lineNo} is not 'ADDRESS TYPE NAME' (neither an ELF file nor a System.map or /proc/kallsyms listing)");
            if (f.Length > 3) continue;                       // a module's symbol ([name] follows): not the kernel's
            if (a < 0xFFFF800000000000) continue;
            raw.Add((a, f[2], f[1][0]));
        }
        if (raw.Count == 0) throw new ImageException("it lists no kernel address (a /proc/kallsyms read with kptr_restrict shows only zeros)");
        raw.Sort((x, y) => x.Addr.CompareTo(y.Addr));
        var r = new List<ElfSymbol>(raw.Count);
        for (int i = 0; i < raw.Count; i++)
        {
            ulong next = 0;
            for (int j = i + 1; j < raw.Count; j++) if (raw[j].Addr != raw[i].Addr) { next = raw[j].Addr; break; }
            r.Add(new ElfSymbol(raw[i].Name, raw[i].Addr, next == 0 ? 0 : next - raw[i].Addr, char.ToLowerInvariant(raw[i].Type) is 't' or 'w'));
        }
        return r;
    }
}
