using System.Text;
using Emu64.Cpu;

namespace Emu64.Tests.Isa;

/// <summary>
/// Reference vectors for what the SDM leaves undefined or model-specific, recorded on the Intel CPU
/// Emu64 models, for the differential suite's own inputs: Data/undefined.vec.
///
/// Every form with a part the SDM leaves undefined (<see cref="SdmUndefined"/>) has one line: its name,
/// a hash of the inputs of its first <see cref="Cases"/> cases at seed <see cref="Seed"/> (so a changed
/// input generator is reported as such, not as wrong flags), and per case the outcome: one character
/// for the six status flags after the instruction (base64 digit of C | P&lt;&lt;1 | A&lt;&lt;2 | Z&lt;&lt;3 |
/// S&lt;&lt;4 | O&lt;&lt;5; '.' when the inputs fault), and, for cases where bits of a register or bytes of
/// memory are undefined, their values ("index=value,value", registers in encoding order masked to the
/// undefined bits, then the memory bytes). The inputs are not stored: they are regenerated from the seed
/// exactly as the differential suite generates them.
///
/// Any host checks the emulator against this file (no host CPU involved); an Intel family-6 host can
/// re-capture it (EMU64_CAPTURE_VECTORS, see docs/UNDEFINED-FLAGS.md).
/// </summary>
public static class IntelVectors
{
    public const int Seed = 1, Cases = Differential.BaseCases;
    public const string FileName = "undefined.vec";
    private const string Digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    public static string PathInOutput => Path.Combine(AppContext.BaseDirectory, "Isa", "Data", FileName);

    /// <summary>One form's line.</summary>
    public sealed class FormVectors(ulong inputHash, string outcomes, Dictionary<int, string> extras)
    {
        public ulong InputHash => inputHash;
        public int Count => outcomes.Length;
        public bool IsFault(int i) => i < outcomes.Length && outcomes[i] == '.';
        public string At(int i) => extras.TryGetValue(i, out var e) ? $"{outcomes[i]}:{e}" : outcomes[i].ToString();
    }

    private static readonly Lazy<Dictionary<string, FormVectors>> Loaded = new(() => Load(PathInOutput));

    /// <summary>The committed vectors by form name.</summary>
    public static IReadOnlyDictionary<string, FormVectors> All => Loaded.Value;

    public static Dictionary<string, FormVectors> Load(string path)
    {
        var d = new Dictionary<string, FormVectors>();
        foreach (var line in File.ReadLines(path))
        {
            if (line.Length == 0 || line[0] == '#') continue;
            var p = line.Split('\t');
            var extras = new Dictionary<int, string>();
            if (p.Length > 3)
                foreach (var e in p[3].Split(' ', StringSplitOptions.RemoveEmptyEntries))
                {
                    int eq = e.IndexOf('=');
                    extras[int.Parse(e[..eq])] = e[(eq + 1)..];
                }
            d[p[0]] = new FormVectors(Convert.ToUInt64(p[1], 16), p[2], extras);
        }
        return d;
    }

    /// <summary>Whether a form has any part the SDM leaves undefined (and so a line in the file).</summary>
    public static bool Covers(DiffForm form)
    {
        ulong slot = form.Compat ? (CompatHost.Shared?.SlotAddress ?? 0) : HostCpu.Shared.SlotAddress;
        // the variants of a form differ only in the immediate: the first decides
        var bytes = form.Encode(slot, form.Imms?[0] ?? 0);
        var dec = Iced.Intel.Decoder.Create(form.Compat ? 32 : 64, bytes, slot);
        dec.Decode(out var ins);
        return SdmUndefined.MayApply(ins, form.Compat ? 32 : 64);
    }

    /// <summary>The outcome of one case as stored: the status-flags digit, then the undefined register bits and memory bytes.</summary>
    public static string Outcome(UndefinedParts u, ulong rflags, ReadOnlySpan<ulong> gpr, ReadOnlySpan<byte> data, bool compat)
    {
        int f = (int)((rflags & RFlags.CF) | (rflags & RFlags.PF) >> 1 | (rflags & RFlags.AF) >> 2 | (rflags & RFlags.ZF) >> 3
                      | (rflags & RFlags.SF) >> 3 | (rflags & RFlags.OF) >> 6);
        if (!u.HasGpr && u.MemLength == 0) return Digits[f].ToString();
        var sb = new StringBuilder().Append(Digits[f]).Append(':');
        bool first = true;
        for (int r = 0; r < 16; r++)
        {
            ulong m = compat ? u.Gpr[r] & 0xFFFFFFFF : u.Gpr[r];
            if (m == 0) continue;
            if (!first) sb.Append(',');
            sb.Append((gpr[r] & m).ToString("x"));
            first = false;
        }
        if (u.MemLength != 0)
        {
            if (!first) sb.Append(',');
            sb.Append(Convert.ToHexStringLower(data.Slice(u.MemAt, u.MemLength)));
        }
        return sb.ToString();
    }

    /// <summary>An outcome for a person: "flags CPZ" plus the undefined values.</summary>
    public static string Explain(string outcome)
    {
        if (outcome[0] == '.') return "a fault";
        ulong f = (uint)Digits.IndexOf(outcome[0]);
        ulong fl = (f & 1) | (f & 2) << 1 | (f & 4) << 2 | (f & 8) << 3 | (f & 16) << 3 | (f & 32) << 6;
        return $"flags {Differential.FlagNames(fl)}" + (outcome.Length > 2 ? $", values {outcome[2..]}" : "");
    }

    public const ulong HashStart = 0xCBF29CE484222325UL;
    private const ulong Prime = 0x100000001B3UL;

    /// <summary>Hashes the instruction bytes of a variant.</summary>
    public static ulong Hash(ulong h, ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes) h = (h ^ b) * Prime;
        return h;
    }

    /// <summary>Hashes one case's inputs: the GPRs, the flags and the whole data page.</summary>
    public static ulong Hash(ulong h, DiffCase c, ReadOnlySpan<byte> page)
    {
        foreach (ulong g in c.Gpr) h = (h ^ g) * Prime;
        h = (h ^ c.Flags) * Prime;
        foreach (ulong q in System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(page)) h = (h ^ q) * Prime;
        return h;
    }

    /// <summary>Collects one form's line while <see cref="Differential.Run"/> records.</summary>
    public sealed class Recorder
    {
        private readonly StringBuilder _outcomes = new();
        private readonly List<string> _extras = new();
        private ulong _hash;

        public void Fault() => _outcomes.Append('.');

        public void Outcome(string o)
        {
            if (o.Length > 1) _extras.Add($"{_outcomes.Length}={o[2..]}");
            _outcomes.Append(o[0]);
        }

        public void Finish(ulong inputHash) => _hash = inputHash;

        public string Line(string form) => $"{form}\t{_hash:x16}\t{_outcomes}\t{string.Join(' ', _extras)}";
    }

    /// <summary>
    /// Writes the vector file for every covered form: from the host (<paramref name="fromHost"/>, an Intel
    /// family-6 host only) or from the emulator (how the bootstrap file was produced; see its header).
    /// </summary>
    public static void Write(string path, bool fromHost, IEnumerable<string> header)
    {
        using var w = new StreamWriter(path) { NewLine = "\n" };
        foreach (var line in header) w.WriteLine("# " + line);
        foreach (var form in DiffForms.All)
        {
            if (!Covers(form)) continue;
            var rec = new Recorder();
            Differential.Run(form, Cases, Seed, fromHost ? Differential.Referee.RecordHost : Differential.Referee.RecordEmulator, null, rec);
            w.WriteLine(rec.Line(form.Name));
        }
    }
}
