using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Isa;

/// <summary>
/// The handler table: one entry per Iced <see cref="Code"/>, built once from the rows each family file
/// declares in its <c>Register</c> method. A code with no row raises #UD in the guest and is counted.
/// </summary>
public static unsafe class HandlerTable
{
    private static readonly int CodeCount = Enum.GetValues<Code>().Length;
    private static readonly nint[] Table = new nint[CodeCount];
    private static readonly Dictionary<Mnemonic, List<Code>> LegacyByMnemonic = new();

    static HandlerTable()
    {
        for (int c = 0; c < CodeCount; c++)
        {
            var code = (Code)c;
            if (code.Encoding() != EncodingKind.Legacy || code == Code.INVALID) continue;
            var m = code.Mnemonic();
            if (!LegacyByMnemonic.TryGetValue(m, out var l)) LegacyByMnemonic[m] = l = new List<Code>();
            l.Add(code);
        }
        // The families, each in its own file (Isa/*.cs).
        Alu.Register();
        DataMove.Register();
        Stack.Register();
        Flow.Register();
        Shift.Register();
        MulDiv.Register();
        Bits.Register();
        Atomic.Register();
        Bmi.Register();
        Legacy.Register();
        Strings.Register();
        SystemInsns.Register();
        Io.Register();
        SseMove.Register();
        SseInteger.Register();
        SseShuffle.Register();
        SseArith.Register();
        SseCompare.Register();
        SseConvert.Register();
        Fxsave.Register();
        X87Load.Register();
        X87Arith.Register();
        X87Compare.Register();
        X87Control.Register();
        X87Transcendental.Register();
        Mmx.Register();
    }

    /// <summary>Every legacy-encoded code of a mnemonic gets handler h (codes mapped later by <see cref="Map(Code, delegate*{CpuCore, ref Insn, void})"/> override).</summary>
    internal static void Map(Mnemonic m, delegate*<CpuCore, ref Insn, void> h)
    {
        if (!LegacyByMnemonic.TryGetValue(m, out var codes)) throw new InvalidOperationException($"no legacy codes for {m}");
        foreach (var c in codes) Table[(int)c] = (nint)h;
    }

    internal static void Map(Code c, delegate*<CpuCore, ref Insn, void> h) => Table[(int)c] = (nint)h;

    internal static void Map(delegate*<CpuCore, ref Insn, void> h, params Mnemonic[] ms)
    {
        foreach (var m in ms) Map(m, h);
    }

    internal static void Map(delegate*<CpuCore, ref Insn, void> h, params Code[] cs)
    {
        foreach (var c in cs) Map(c, h);
    }

    /// <summary>
    /// Whether a decoded instruction's handler is the one registered for code <paramref name="representative"/> (for
    /// picking fast forms: "is this the generic ADD handler?"). It compares with the table entry, i.e. the very value
    /// the registration stored, never with a second <c>&amp;Method</c> (two function-pointer loads of one method need not be equal).
    /// </summary>
    internal static bool Is(delegate*<CpuCore, ref Insn, void> h, Code representative) => (nint)h == Table[(int)representative];

    public static bool IsImplemented(Code c) => Table[(int)c] != 0;

    public static IEnumerable<Code> LegacyCodes => LegacyByMnemonic.Values.SelectMany(x => x);

    public static void Bind(ref Insn d)
    {
        nint h = Table[d.CodeId];
        d.Exec = h != 0 ? (delegate*<CpuCore, ref Insn, void>)h : &Unimplemented;
        if (h == 0) return;
        // Fixed-form fast handlers for the commonest register/immediate/memory shapes (same semantics).
        Alu.Specialize(ref d);
        Flow.Specialize(ref d);
        DataMove.Specialize(ref d);
        Stack.Specialize(ref d);
        Shift.Specialize(ref d);
        MulDiv.Specialize(ref d);
        RegionMarker.Specialize(ref d);   // nopl MAGIC(%rax): a measured region's begin or end
    }

    /// <summary>An encoding the interpreter does not implement (or an invalid one): #UD, counted by code.</summary>
    private static void Unimplemented(CpuCore cpu, ref Insn i)
    {
        cpu.Machine.Stats.CountUnimplemented(i.Code);
        cpu.Ud();
    }
}
