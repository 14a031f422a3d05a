using Emu64.Cpu;

namespace Emu64.Tests.Foundation;

/// <summary>
/// The RFLAGS getter computes all six status flags of the recorded (lazy) operation at once (Cpu/Flags.cs); each flag's
/// own getter (Cf..Of) computes it alone. Both must agree for every operation, operand size and the operands that make
/// each flag flip, and with the SDM's definitions computed here independently.
/// </summary>
public class LazyRflagsTests
{
    private static readonly ulong[] Values =
    [
        0, 1, 2, 7, 8, 0xF, 0x10, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF,
        0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, 0xFFFF_FFFF_FFFF_FFFF, 0x1234_5678_9ABC_DEF0,
    ];

    [Fact]
    public void RFLAGS_of_every_lazy_operation_has_the_flags_each_getter_and_the_SDM_give()
    {
        var cpu = new Machine(new MachineOptions { Output = Stream.Null }).Cpu;
        int checkedCases = 0;
        foreach (int size in new[] { 1, 2, 4, 8 })
        {
            ulong mask = size == 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1;
            int sign = size * 8 - 1;
            foreach (ulong x in Values)
            foreach (ulong y in Values)
            foreach (var op in new[] { LazyOp.Add, LazyOp.Sub, LazyOp.Logic, LazyOp.Inc, LazyOp.Dec })
            {
                ulong a = x & mask, b = op is LazyOp.Inc or LazyOp.Dec ? 1 : y & mask;
                ulong res = op switch
                {
                    LazyOp.Add or LazyOp.Inc => (a + b) & mask,
                    LazyOp.Sub or LazyOp.Dec => (a - b) & mask,
                    _ => a & b,
                };
                cpu.Rflags = RFlags.IF | RFlags.DF | (y & 1);   // non-status bits kept; CF=y&1 survives INC/DEC
                ulong cfBefore = y & 1;
                if (op is LazyOp.Inc or LazyOp.Dec) cpu.SetLazyIncDec(op, size, a, res);
                else cpu.SetLazy(op, size, a, b, res);

                bool cf = op switch { LazyOp.Add => res < a, LazyOp.Sub => a < b, LazyOp.Logic => false, _ => cfBefore != 0 };
                bool of = op switch
                {
                    LazyOp.Add or LazyOp.Inc => (((a ^ res) & (b ^ res)) >> sign & 1) != 0,
                    LazyOp.Sub or LazyOp.Dec => (((a ^ b) & (a ^ res)) >> sign & 1) != 0,
                    _ => false,
                };
                bool af = op != LazyOp.Logic && ((a ^ b ^ res) & 0x10) != 0;
                bool pf = (System.Numerics.BitOperations.PopCount((uint)(res & 0xFF)) & 1) == 0;
                ulong expected = RFlags.Reserved1 | RFlags.IF | RFlags.DF
                                 | (cf ? RFlags.CF : 0) | (pf ? RFlags.PF : 0) | (af ? RFlags.AF : 0)
                                 | (res == 0 ? RFlags.ZF : 0) | ((res >> sign & 1) != 0 ? RFlags.SF : 0) | (of ? RFlags.OF : 0);

                Assert.Equal((cf, pf, af, res == 0, (res >> sign & 1) != 0, of), (cpu.Cf, cpu.Pf, cpu.Af, cpu.Zf, cpu.Sf, cpu.Of));
                Assert.Equal(expected, cpu.Rflags);

                // Setting CF alone (BT*, STC/CLC/CMC) keeps the other five as the operation gave them, lazy or not.
                bool newCf = ((x ^ y) & 2) != 0;
                if (((x + y) & 4) != 0) cpu.Materialize();
                cpu.SetFlag(RFlags.CF, newCf);
                Assert.Equal((expected & ~RFlags.CF) | (newCf ? RFlags.CF : 0), cpu.Rflags);
                Assert.Equal(newCf, cpu.Cf);
                checkedCases++;
            }
        }
        Assert.Equal(4 * Values.Length * Values.Length * 5, checkedCases);
    }
}
