using System.Text;
using Emu64.Cpu;
using Emu64.Tests.Support;
using Iced.Intel;

namespace Emu64.Tests.Isa;

/// <summary>SplitMix64: a fast deterministic generator (System.Random with a seed is too slow for a million cases).</summary>
public sealed class DiffRng(ulong seed)
{
    private ulong _s = seed;
    public ulong NextU64()
    {
        ulong z = _s += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
    public long NextInt64() => (long)(NextU64() >> 1);
    public int Next() => (int)(NextU64() >> 33);
    public int Next(int n) => (int)((NextU64() >> 32) * (ulong)n >> 32);
    public void NextBytes(byte[] b) => NextBytes(b.AsSpan());
    public void NextBytes(Span<byte> b)
    {
        var u = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(b);
        for (int k = 0; k < u.Length; k++) u[k] = NextU64();
    }
}

/// <summary>One register/flag input set of a differential case.</summary>
public sealed class DiffCase
{
    public readonly ulong[] Gpr = new ulong[16];
    public ulong Flags;
}

/// <summary>
/// An instruction form under differential test. <see cref="Encode"/> returns the bytes for the
/// instruction at <c>rip</c> with immediate <c>imm</c> (ignored by forms without one). Forms that
/// address memory pin their base register with <see cref="Pin"/>; forms whose inputs would fault
/// natively (DIV by zero) say which vector the emulator must raise with <see cref="ExpectFault"/>
/// and those cases are not run on the host.
/// </summary>
public sealed class DiffForm
{
    public required string Name;
    public required Func<ulong, long, byte[]> Encode;
    public long[]? Imms;
    /// <summary>RFLAGS bits compared: the status flags and DF, less the flags this form leaves undefined and the host does not define reproducibly.</summary>
    public ulong FlagMask = RFlags.Status | RFlags.DF;
    public Action<DiffCase, HostCpu>? Pin;
    public Func<DiffCase, byte[], int>? ExpectFault;
    /// <summary>Branches: a CMC follows the instruction and the branch target skips it, so "taken" shows in CF.</summary>
    public bool Branch;
    /// <summary>Runs in compatibility mode (CS 0x23) through <see cref="CompatHost"/>: ESP and the low 32 bits of EAX..EDI are compared, memory is <see cref="CompatHost.Data"/>.</summary>
    public bool Compat;
    /// <summary>Sets memory inputs after the data page is randomised (e.g. a selector word).</summary>
    public Action<DiffCase, byte[]>? PinMemory;
    public override string ToString() => Name;
}

/// <summary>
/// The differential engine: runs a form's cases natively (<see cref="HostCpu"/>) and in the emulator
/// (<see cref="RawMachine"/> with the host's slot and data pages mapped at the same linear addresses),
/// then compares every GPR but RSP, the masked RFLAGS and the whole data page.
/// Seed and size: EMU64_DIFF_SEED (default 1) and EMU64_DIFF_SCALE (cases = 1000 × scale).
/// </summary>
public static class Differential
{
    public static int Seed => int.TryParse(Environment.GetEnvironmentVariable("EMU64_DIFF_SEED"), out var s) ? s : 1;
    public static int Scale => int.TryParse(Environment.GetEnvironmentVariable("EMU64_DIFF_SCALE"), out var s) && s > 0 ? s : 1;
    public const int BaseCases = 1000;

    /// <summary>
    /// The parts of the data page a form can read: XLAT's table (0x100), the string source (0x400 ± 15
    /// elements), and everything from the lowest bit-string offset to the string destination (memory
    /// operands at 0x813, BT offsets ±500 bytes, 0xA00 ± 15 elements). They get fresh random bytes for
    /// every case; the rest of the page is randomised once per form variant (no form reads it, and the
    /// whole page is still compared after every case, so a stray write anywhere is caught). Filling all
    /// 4 KiB per case was three quarters of the cost of a case.
    /// </summary>
    public static readonly (int Start, int Length)[] ReadWindows = [(0x100, 0x100), (0x380, 0x110), (0x600, 0x490)];

    private static RawMachine? _raw;

    private static RawMachine Raw(HostCpu h)
    {
        if (_raw != null) return _raw;
        var r = new RawMachine(4);
        r.Map(h.CodePage);
        r.Map(h.Data);
        if (CompatHost.Shared is { } ch) { r.Map(ch.CodePage); r.Map(CompatHost.Data); }
        LinuxGdt.Install(r);
        return _raw = r;
    }

    /// <summary>Values chosen to sit on every carry, sign and count boundary of 8/16/32/64-bit operands.</summary>
    public static readonly ulong[] Boundary =
    [
        0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 0x7F, 0x80, 0x81, 0xFF, 0x100, 0x7FFF, 0x8000, 0x8001,
        0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0x80000001, 0xFFFFFFFF, 0x100000000, 0x7FFFFFFFFFFFFFFF,
        0x8000000000000000, 0x8000000000000001, 0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFE, 0xAAAAAAAAAAAAAAAA, 0x5555555555555555,
    ];

    public static ulong Value(DiffRng rng)
    {
        int w = rng.Next(4);
        ulong mask = w switch { 0 => 0xFF, 1 => 0xFFFF, 2 => 0xFFFFFFFF, _ => ulong.MaxValue };
        ulong rnd = (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 63);
        switch (rng.Next(6))
        {
            case 0: return Boundary[rng.Next(Boundary.Length)];
            case 1: case 2:
                ulong b = Boundary[rng.Next(Boundary.Length)];
                if (rng.Next(2) == 0) b = 0 - b;
                return (rnd & ~mask) | (b & mask);
            case 3: return (ulong)rng.Next(70);
            default: return rnd;
        }
    }

    /// <summary>FNV-1a of the name: a per-form seed stable across runs (string.GetHashCode is randomised).</summary>
    private static int StableHash(string s)
    {
        uint h = 2166136261;
        foreach (char c in s) { h ^= c; h *= 16777619; }
        return (int)h;
    }

    /// <summary>What a run of a form's cases compares the emulator with, or records.</summary>
    public enum Referee
    {
        /// <summary>The host CPU, on what the SDM defines for every x86-64 processor (any vendor).</summary>
        HostDefined,
        /// <summary>The host CPU, on everything: only meaningful on the modeled family (GenuineIntel family 6).</summary>
        HostEverything,
        /// <summary>The committed Intel reference vectors, on what the SDM leaves undefined (the emulator runs alone).</summary>
        IntelVectors,
        /// <summary>Runs the host only and records its outputs as reference vectors (the capture tool, on an Intel host).</summary>
        RecordHost,
        /// <summary>Runs the emulator only and records its outputs in the vector format (how the bootstrap file was made).</summary>
        RecordEmulator,
    }

    /// <summary>The data-page offset of every form's memory operand ([r14+13h], [ebp+13h], [bp+13h]).</summary>
    public const int MemOperandAt = (int)(DiffForms.R14Offset + DiffForms.MemDisp);

    /// <summary>Runs <paramref name="cases"/> cases of the form against the host; returns a report of the first mismatches (empty when all agree).</summary>
    public static string Check(DiffForm form, int cases, bool undefinedToo = false)
        => Run(form, cases, Seed, undefinedToo ? Referee.HostEverything : Referee.HostDefined, null, null);

    /// <summary>
    /// The one driver of a form's cases: inputs from the seed (the same stream whatever the referee, so
    /// vectors recorded on one host line up with cases generated on another), then the emulator, the host,
    /// or both, depending on <paramref name="referee"/>. <paramref name="vectors"/> is the expected line for
    /// <see cref="Referee.IntelVectors"/>; <paramref name="record"/> receives the line when recording.
    /// </summary>
    public static string Run(DiffForm form, int cases, int seed, Referee referee, IntelVectors.FormVectors? vectors, IntelVectors.Recorder? record)
    {
        var h = HostCpu.Shared;
        lock (h.Lock)
        {
            var ch = form.Compat ? CompatHost.Shared : null;
            if (form.Compat && ch is null) return "";   // the low pages could not be mapped: skipped
            bool runEmu = referee != Referee.RecordHost, runHost = referee is Referee.HostDefined or Referee.HostEverything or Referee.RecordHost;
            var raw = Raw(h);
            var cpu = raw.Cpu;
            LinuxGdt.UserMode(cpu, form.Compat);
            ulong slot = ch?.SlotAddress ?? h.SlotAddress;
            ulong dataAddr = form.Compat ? CompatHost.Data : h.Data;
            var hostData = form.Compat ? ch!.DataSpan : h.DataSpan;
            int bitness = form.Compat ? 32 : 64;
            int stackAt = form.Compat ? (int)CompatHost.StackOffset : -1;
            var rng = new DiffRng((ulong)StableHash(form.Name) ^ (ulong)seed);
            var report = new StringBuilder();
            int mismatches = 0, index = 0;
            bool hashing = referee is Referee.IntelVectors or Referee.RecordHost or Referee.RecordEmulator;
            ulong inputHash = IntelVectors.HashStart;
            var input = new byte[0x1000];
            var c = new DiffCase();
            var u = new UndefinedParts();
            var emuData = raw.Machine.Memory.RamSpan(raw.Phys(dataAddr), 0x1000);
            int variants = form.Imms?.Length ?? 1;
            for (int v = 0; v < variants; v++)
            {
                long imm = form.Imms?[v] ?? 0;
                byte[] bytes = form.Encode(slot, imm);
                if (form.Branch) bytes = [.. bytes, 0xF5];
                if (runHost) { if (ch != null) ch.Load(bytes); else h.Load(bytes); }
                if (runEmu) { raw.Write(slot, bytes); raw.InvalidateCode(); }
                if (hashing) inputHash = IntelVectors.Hash(inputHash, bytes);
                ulong end = slot + (ulong)bytes.Length;
                var dec = Iced.Intel.Decoder.Create(bitness, bytes, slot);
                dec.Decode(out var ins);
                bool mayUndefined = SdmUndefined.MayApply(ins, bitness);
                int n = cases / variants + (v < cases % variants ? 1 : 0);
                rng.NextBytes(input);
                for (int k = 0; k < n; k++, index++)
                {
                    for (int r = 0; r < 16; r++) c.Gpr[r] = Value(rng);
                    c.Flags = (ulong)rng.NextInt64() & (RFlags.Status | RFlags.DF);
                    if (rng.Next(4) != 0) c.Flags &= ~RFlags.DF;
                    form.Pin?.Invoke(c, h);
                    foreach (var (start, length) in ReadWindows) rng.NextBytes(input.AsSpan(start, length));
                    form.PinMemory?.Invoke(c, input);
                    if (hashing) inputHash = IntelVectors.Hash(inputHash, c, input);
                    int expect = form.ExpectFault?.Invoke(c, input) ?? -1;

                    // emulator
                    if (runEmu)
                    {
                        input.CopyTo(emuData);
                        for (int r = 0; r < 16; r++) if (r != Reg.RSP || form.Compat) cpu.R[r] = c.Gpr[r];
                        if (!form.Compat) cpu.R[Reg.RSP] = 0x1000;
                        cpu.Rflags = c.Flags | RFlags.Reserved1 | RFlags.IF;
                        cpu.Rip = slot;
                        int vec = raw.RunRange(slot, end);
                        if (expect >= 0 || vec >= 0)
                        {
                            if (vec != expect || cpu.Rip != slot)
                                Mismatch(report, ref mismatches, form, bytes, c,
                                    $"expected {(expect < 0 ? "no fault" : Vec.Name(expect))}, emulator raised {(vec < 0 ? "nothing" : Vec.Name(vec))} at rip {cpu.Rip:x}");
                            else if (!emuData.SequenceEqual(input) || !RegsEqual(cpu, c.Gpr, form.Compat) || (cpu.Rflags & form.FlagMask) != (c.Flags & form.FlagMask))
                                Mismatch(report, ref mismatches, form, bytes, c, "faulting instruction changed state");
                            record?.Fault();
                            if (referee == Referee.IntelVectors && !vectors!.IsFault(index))
                                Mismatch(report, ref mismatches, form, bytes, c, $"case {index}: the emulator raised {Vec.Name(expect)}, the Intel vectors have a result");
                            continue;
                        }
                    }
                    else if (expect >= 0) { record?.Fault(); continue; }

                    if (referee == Referee.IntelVectors)
                    {
                        if (!mayUndefined) continue;
                        SdmUndefined.Find(ins, bitness, c.Gpr, cpu.Rflags, MemOperandAt, stackAt, u);
                        string got = IntelVectors.Outcome(u, cpu.Rflags, cpu.R, emuData, form.Compat);
                        if (index >= vectors!.Count) { Mismatch(report, ref mismatches, form, bytes, c, $"case {index}: no Intel vector (only {vectors.Count})", bitness); continue; }
                        string want = vectors!.At(index);
                        if (got != want)
                            Mismatch(report, ref mismatches, form, bytes, c,
                                $"case {index}: Intel {IntelVectors.Explain(want)}, emulator {IntelVectors.Explain(got)} (undefined here: {u.Describe()})", bitness);
                        continue;
                    }
                    if (referee == Referee.RecordEmulator)
                    {
                        if (mayUndefined) SdmUndefined.Find(ins, bitness, c.Gpr, cpu.Rflags, MemOperandAt, stackAt, u); else u.Clear();
                        record!.Outcome(IntelVectors.Outcome(u, cpu.Rflags, cpu.R, emuData, form.Compat));
                        continue;
                    }

                    // host
                    var s = new HostState();
                    for (int r = 0; r < 16; r++) s.Gpr[r] = c.Gpr[r];
                    s.Rflags = c.Flags | RFlags.Reserved1;
                    input.CopyTo(hostData);
                    if (ch != null) ch.Run(ref s); else h.Run(ref s);
                    if (referee == Referee.RecordHost)
                    {
                        if (mayUndefined) SdmUndefined.Find(ins, bitness, c.Gpr, s.Rflags, MemOperandAt, stackAt, u); else u.Clear();
                        record!.Outcome(IntelVectors.Outcome(u, s.Rflags, s.Gpr, hostData, form.Compat));
                        continue;
                    }

                    // what is compared: everything, or (HostDefined) what the SDM defines for these inputs
                    u.Clear();
                    if (referee == Referee.HostDefined && mayUndefined) SdmUndefined.Find(ins, bitness, c.Gpr, cpu.Rflags, MemOperandAt, stackAt, u);
                    var diff = new StringBuilder();
                    for (int r = 0; r < (form.Compat ? 8 : 16); r++)
                    {
                        if (r == Reg.RSP && !form.Compat) continue;
                        ulong m = (form.Compat ? 0xFFFFFFFFUL : ulong.MaxValue) & ~u.Gpr[r];
                        if ((s.Gpr[r] & m) != (cpu.R[r] & m))
                            diff.Append($" {Reg.Names64[r]}: host {s.Gpr[r] & m:x} emu {cpu.R[r] & m:x}{(m != ulong.MaxValue && !form.Compat ? $" (bits {m:x})" : "")};");
                    }
                    ulong fm = form.FlagMask & ~u.Flags;
                    ulong hf = s.Rflags & fm, ef = cpu.Rflags & fm;
                    if (hf != ef) diff.Append($" flags: host {FlagNames(hf)} emu {FlagNames(ef)} (in {FlagNames(c.Flags)}{(u.Flags != 0 ? $"; {FlagNames(u.Flags)} undefined, not compared" : "")});");
                    if (!emuData.SequenceEqual(hostData))
                    {
                        for (int at = 0; at < 0x1000; at++)
                        {
                            if (emuData[at] == hostData[at] || u.MemoryMasked(at)) continue;
                            diff.Append($" memory at data+{at:x}: host {hostData[at]:x2} emu {emuData[at]:x2};");
                            break;
                        }
                    }
                    if (diff.Length > 0) Mismatch(report, ref mismatches, form, bytes, c, diff.ToString(), bitness);
                }
            }
            record?.Finish(inputHash);
            if (referee == Referee.IntelVectors && vectors!.InputHash != inputHash)
                return $"{form.Name}: the inputs generated for seed {seed} (hash {inputHash:x16}) are not the ones the Intel vectors were " +
                       $"recorded for (hash {vectors.InputHash:x16}): the input generator or the form changed; re-capture on an Intel host " +
                       $"(docs/UNDEFINED-FLAGS.md)\n" + report;
            if (mismatches > 0) report.Insert(0, $"{form.Name}: {mismatches} mismatches of {cases}{(referee == Referee.IntelVectors ? " against the Intel reference vectors" : "")}\n");
            return report.ToString();
        }
    }

    /// <summary>Runs a form natively only and writes "inputs -> outputs" lines (for finding what the host does with undefined flags).</summary>
    public static void DumpHost(DiffForm form, int cases, TextWriter w)
    {
        var h = HostCpu.Shared;
        lock (h.Lock)
        {
            var ch = form.Compat ? CompatHost.Shared : null;
            if (form.Compat && ch is null) return;
            var hostData = ch != null ? ch.DataSpan : h.DataSpan;
            var rng = new DiffRng((ulong)StableHash(form.Name) ^ (ulong)Seed);
            var c = new DiffCase();
            var input = new byte[0x1000];
            int variants = form.Imms?.Length ?? 1;
            for (int v = 0; v < variants; v++)
            {
                long imm = form.Imms?[v] ?? 0;
                if (ch != null) ch.Load(form.Encode(ch.SlotAddress, imm)); else h.Load(form.Encode(h.SlotAddress, imm));
                for (int k = 0; k < cases / variants; k++)
                {
                    for (int r = 0; r < 16; r++) c.Gpr[r] = Value(rng);
                    c.Flags = (ulong)rng.NextInt64() & RFlags.Status;
                    form.Pin?.Invoke(c, h);
                    rng.NextBytes(input);
                    form.PinMemory?.Invoke(c, input);
                    if ((form.ExpectFault?.Invoke(c, input) ?? -1) >= 0) continue;
                    var s = new HostState();
                    for (int r = 0; r < 16; r++) s.Gpr[r] = c.Gpr[r];
                    s.Rflags = c.Flags | RFlags.Reserved1;
                    input.CopyTo(hostData);
                    if (ch != null) ch.Run(ref s); else h.Run(ref s);
                    w.Write($"imm={imm:x}");
                    for (int r = 0; r < 16; r++) if (r != Reg.RSP) w.Write($" {Reg.Names64[r]}={c.Gpr[r]:x}");
                    w.Write($" fl={c.Flags:x} ->");
                    for (int r = 0; r < 16; r++) if (r != Reg.RSP) w.Write($" {Reg.Names64[r]}={s.Gpr[r]:x}");
                    w.WriteLine($" fl={s.Rflags & 0xFFF:x}");
                }
            }
        }
    }

    private static bool RegsEqual(Emu64.Cpu.Cpu cpu, ulong[] g, bool compat)
    {
        for (int r = 0; r < 16; r++) if ((r != Reg.RSP || compat) && cpu.R[r] != g[r]) return false;
        return true;
    }

    private static void Mismatch(StringBuilder sb, ref int count, DiffForm f, byte[] bytes, DiffCase c, string what, int bitness = 0)
    {
        if (count++ >= 6) return;
        if (bitness == 0) bitness = f.Compat ? 32 : 64;
        var dec = Iced.Intel.Decoder.Create(bitness, bytes, f.Compat ? CompatHost.Shared!.SlotAddress : HostCpu.Shared.SlotAddress);
        dec.Decode(out var ins);
        sb.Append($"  {ins} [{Convert.ToHexString(bytes)}] in:");
        for (int r = 0; r < (f.Compat ? 8 : 16); r++) if (r != Reg.RSP || f.Compat) sb.Append($" {Reg.Names64[r]}={c.Gpr[r]:x}");
        sb.Append($" flags={FlagNames(c.Flags)}\n    {what}\n");
    }

    public static string FlagNames(ulong f)
    {
        var sb = new StringBuilder();
        if ((f & RFlags.CF) != 0) sb.Append("C");
        if ((f & RFlags.PF) != 0) sb.Append("P");
        if ((f & RFlags.AF) != 0) sb.Append("A");
        if ((f & RFlags.ZF) != 0) sb.Append("Z");
        if ((f & RFlags.SF) != 0) sb.Append("S");
        if ((f & RFlags.DF) != 0) sb.Append("D");
        if ((f & RFlags.OF) != 0) sb.Append("O");
        return sb.Length == 0 ? "-" : sb.ToString();
    }
}
