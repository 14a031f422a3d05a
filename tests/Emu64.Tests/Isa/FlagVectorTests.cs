using Emu64.Cpu;
using Emu64.Tests.Support;
using Iced.Intel;

namespace Emu64.Tests.Isa;

/// <summary>
/// Exact results and flags from Data/flags.vec: each vector runs in the emulator (64-bit, CPL 0) and,
/// when the host can, natively, so a wrong vector is caught as surely as a wrong handler. The host
/// referees what the SDM defines on any vendor, and every flag only on a GenuineIntel family-6 host
/// (the vectors' undefined flags were measured on Cascade Lake).
/// </summary>
[Trait("Category", "Isa")]
public class FlagVectorTests
{
    public sealed record Vector(string Bytes, string Text, Dictionary<int, ulong> In, ulong FlagsIn, Dictionary<int, ulong> Out, ulong FlagsOut)
    {
        public override string ToString() => Text;
    }

    private static readonly Lazy<List<Vector>> Vectors = new(Load);

    public static TheoryData<string> Names()
    {
        var d = new TheoryData<string>();
        foreach (var v in Vectors.Value) d.Add(v.Text);
        return d;
    }

    private static List<Vector> Load()
    {
        var list = new List<Vector>();
        foreach (var raw in File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "Isa", "Data", "flags.vec")))
        {
            if (raw.StartsWith('#') || raw.Trim().Length == 0) continue;
            var p = raw.Split('|').Select(s => s.Trim()).ToArray();
            var (rin, fin) = State(p[2]);
            var (rout, fout) = State(p[3]);
            list.Add(new Vector(p[0], p[1], rin, fin, rout, fout));
        }
        return list;
    }

    private static (Dictionary<int, ulong>, ulong) State(string s)
    {
        var regs = new Dictionary<int, ulong>();
        ulong fl = 0;
        foreach (var kv in s.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var (k, v) = (kv[..kv.IndexOf('=')], kv[(kv.IndexOf('=') + 1)..]);
            if (k == "fl") fl = Flags(v);
            else regs[Array.IndexOf(Reg.Names64, k)] = Convert.ToUInt64(v, 16);
        }
        return (regs, fl);
    }

    private static ulong Flags(string s)
    {
        ulong f = 0;
        foreach (char c in s)
            f |= c switch { 'C' => RFlags.CF, 'P' => RFlags.PF, 'A' => RFlags.AF, 'Z' => RFlags.ZF, 'S' => RFlags.SF, 'O' => RFlags.OF, _ => 0UL };
        return f;
    }

    private static Vector Get(string text) => Vectors.Value.First(v => v.Text == text);

    /// <summary>Referee: the vector (SDM values, and Intel's where the SDM leaves a flag undefined).</summary>
    [Theory]
    [MemberData(nameof(Names))]
    public void The_emulator_gives_the_Intel_reference_result_for(string text)
    {
        var v = Get(text);
        var bytes = Convert.FromHexString(v.Bytes);
        var dec = Iced.Intel.Decoder.Create(64, bytes);
        dec.Decode(out var ins);
        Assert.Equal(v.Text, ins.ToString());
        var m = new RawMachine();
        m.Load(0x400000, bytes);
        for (int r = 0; r < 16; r++) m.Cpu.R[r] = v.In.GetValueOrDefault(r);
        m.Cpu.R[Reg.RSP] = 0x8000;
        m.Cpu.Rflags = v.FlagsIn | RFlags.Reserved1;
        Assert.Equal(-1, m.Step());
        foreach (var (r, want) in v.Out) Assert.True(want == m.Cpu.R[r], $"{Reg.Names64[r]}: want {want:x} got {m.Cpu.R[r]:x}");
        Assert.Equal(Differential.FlagNames(v.FlagsOut), Differential.FlagNames(m.Cpu.Rflags & RFlags.Status));
    }

    /// <summary>Referee: the host CPU, on what the SDM defines (any vendor); the undefined flags of a vector are Intel's and are not asked of it.</summary>
    [Theory]
    [MemberData(nameof(Names))]
    public void The_host_cpu_agrees_with_the_vector_where_the_SDM_defines_the_outcome_for(string text)
    {
        if (!HostCpu.Available) return;
        var (v, s) = RunOnHost(text);
        var dec = Iced.Intel.Decoder.Create(64, Convert.FromHexString(v.Bytes));
        dec.Decode(out var ins);
        var u = new UndefinedParts();
        var gprIn = new ulong[16];
        foreach (var (r, x) in v.In) gprIn[r] = x;
        SdmUndefined.Find(ins, 64, gprIn, s.Rflags, -1, -1, u);
        foreach (var (r, want) in v.Out)
            Assert.True((want & ~u.Gpr[r]) == (s.Gpr[r] & ~u.Gpr[r]), $"{Reg.Names64[r]}: want {want:x} host {s.Gpr[r]:x} (referee: the host CPU, {HostIdentity.Current})");
        ulong defined = RFlags.Status & ~u.Flags;
        Assert.True((v.FlagsOut & defined) == (s.Rflags & defined),
            $"flags {Differential.FlagNames(defined)} (defined here): vector {Differential.FlagNames(v.FlagsOut & defined)}, host {Differential.FlagNames(s.Rflags & defined)} (referee: the host CPU, {HostIdentity.Current})");
    }

    /// <summary>Referee: the host CPU on every flag, undefined ones included: only on a GenuineIntel family-6 host (the vectors' undefined flags are Intel's).</summary>
    [IntelHostTheory]
    [MemberData(nameof(Names))]
    public void This_Intel_host_agrees_with_the_vector_in_every_flag_for(string text)
    {
        var (v, s) = RunOnHost(text);
        foreach (var (r, want) in v.Out) Assert.True(want == s.Gpr[r], $"{Reg.Names64[r]}: want {want:x} host {s.Gpr[r]:x}");
        Assert.Equal(Differential.FlagNames(v.FlagsOut), Differential.FlagNames(s.Rflags & RFlags.Status));
    }

    private static (Vector, HostState) RunOnHost(string text)
    {
        var v = Get(text);
        var h = HostCpu.Shared;
        lock (h.Lock)
        {
            h.Load(Convert.FromHexString(v.Bytes));
            var s = new HostState();
            for (int r = 0; r < 16; r++) s.Gpr[r] = v.In.GetValueOrDefault(r);
            s.Rflags = v.FlagsIn | RFlags.Reserved1;
            h.Run(ref s);
            return (v, s);
        }
    }
}
