using Emu64.Tests.Support;
using Iced.Intel;

namespace Emu64.Tests.Foundation;

/// <summary>
/// Runs a <see cref="GuestKit"/> kernel until a recording handler halts, and reads what the CPU pushed:
/// RSP at handler entry points at [error code], RIP, CS, RFLAGS, RSP, SS.
/// </summary>
public sealed class Trap
{
    public readonly Run.Outcome R;
    public readonly GuestKit.Built B;
    public Machine M => R.Machine;
    public Emu64.Cpu.Cpu Cpu => R.Machine.Cpu;

    private Trap(Run.Outcome r, GuestKit.Built b) { R = r; B = b; }

    public static Trap Run(Action<Assembler, GuestKit> body, ulong max = 5_000_000, Action<Machine>? setup = null)
    {
        var b = GuestKit.Build(body);
        var r = Support.Run.Image(b.Image, maxInstructions: max, setup: setup);
        return new Trap(r, b);
    }

    /// <summary>The vector whose recording handler ran (-1 if none).</summary>
    public int Vector => (int)(uint)M.Memory.Read(GuestKit.VectorSlot, 4);
    public ulong At(Label l) => B.At(l);
    public ulong Rsp => Cpu.Rsp;
    public ulong Q(int k) => M.Memory.Read(Cpu.Rsp + 8 * (ulong)k, 8);
    public ulong Mem(ulong pa, int size = 8) => M.Memory.Read(pa, size);

    /// <summary>The frame: error code (if the vector has one), RIP, CS, RFLAGS, RSP, SS.</summary>
    public (ulong Err, ulong Rip, ulong Cs, ulong Rflags, ulong Rsp, ulong Ss) Frame(bool hasError)
    {
        int o = hasError ? 1 : 0;
        return (hasError ? Q(0) : ulong.MaxValue, Q(o), Q(o + 1), Q(o + 2), Q(o + 3), Q(o + 4));
    }

    public string Why => $"{Emu64.Cli.Cli.Describe(M)}\nvector={Vector} unimplemented={string.Join(",", M.Stats.Unimplemented.Keys)}\n{R.Console}";

    /// <summary>Asserts that the handler of <paramref name="vector"/> ran (and the machine stopped in it).</summary>
    public Trap Expect(int vector)
    {
        Assert.True(R.Reason == StopReason.Shutdown && Vector == vector, $"expected vector {vector}: {Why}");
        Assert.Equal(B.Kit.HandlerEnd(B.At, vector), Cpu.Rip);   // just past its HLT
        return this;
    }
}
