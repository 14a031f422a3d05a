using Emu64.Cpu;
using Emu64.Mmu;
using Emu64.Tests.Foundation;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Isa;

/// <summary>
/// REP MOVS and REP STOS run whole in-page stretches at memory speed (Isa/Strings.cs, Mmu.CopyRun) when the fast cache holds
/// both pages. The guest below copies and fills forwards and backwards, across page ends, onto itself (overlapping by one
/// byte, which replicates a pattern) and finally into an unmapped page. Run with the fast cache off (every iteration the
/// model's own lookup), and with it on, interpreted and with every block compiled at its first run: memory, registers,
/// the fault, every TLB counter and every L1/STLB entry with its LRU stamp must come out the same.
/// </summary>
public class RepStringRunTests
{
    private const ulong P = 1, W = 2, Page = GuestKit.PtBase;

    private static void Body(Assembler a, GuestKit k)
    {
        for (int n = 0; n < 4; n++) k.MapPage(n, (Page + 0x1000 * (ulong)n) | P | W);   // page 4 stays unmapped
        k.SetGate(Vec.PF, k.Handlers[Vec.PF], GuestKit.Attr(ist: 1));
        a.cld();
        // page 0: a pattern of quadwords
        a.mov(rax, 0x0807_0605_0403_0201UL); a.mov(rdi, Page); a.mov(ecx, 512); a.rep.stosq();
        // a byte copy from page 0 into pages 1 and 2 (source and destination each cross a page end at different points)
        a.mov(rsi, Page + 0x10); a.mov(rdi, Page + 0x1020); a.mov(ecx, 0x1800); a.rep.movsb();
        // onto itself, one byte ahead: the first byte is replicated over 300 bytes
        a.mov(rsi, Page + 0x3400); a.mov(__byte_ptr[rsi], 0x77); a.mov(rdi, Page + 0x3401); a.mov(ecx, 300); a.rep.movsb();
        // backwards with DF=1, quadwords from page 1 into pages 2 and 3
        a.std(); a.mov(rsi, Page + 0x1FF8); a.mov(rdi, Page + 0x3100); a.mov(ecx, 700); a.rep.movsq();
        // a backward doubleword fill across the page 3/2 boundary, then forward word fill
        a.mov(eax, 0xDEAD_BEEF); a.mov(rdi, Page + 0x3010); a.mov(ecx, 40); a.rep.stosd(); a.cld();
        a.mov(eax, 0x5AA5); a.mov(rdi, Page + 0x3801); a.mov(ecx, 0x300); a.rep.stosw();
        // into the unmapped page 4: a page fault at the first byte past page 3
        a.mov(rsi, Page); a.mov(rdi, Page + 0x4000 - 0x10); a.mov(ecx, 0x100); a.rep.movsb();
        a.ud2();
    }

    private static Trap Run(bool fastCache, int threshold) => Trap.Run(Body, setup: m =>
    {
        m.Cpu.Mmu.FastCacheDisabled = !fastCache;
        m.Options.CompileThreshold = threshold;
    }).Expect(Vec.PF);

    [Fact]
    public void Repeated_moves_and_stores_leave_memory_registers_counters_and_LRU_state_as_single_iterations_do()
    {
        var model = Run(fastCache: false, threshold: 0);
        Assert.Equal(Page + 0x4000, model.Cpu.CR2);
        Assert.Equal(0xF0UL, model.Cpu.R[Reg.RCX]);                  // 0x10 bytes copied before the fault
        Assert.Equal(Page + 0x4000, model.Cpu.R[Reg.RDI]);
        Assert.Equal(0x77UL, model.Mem(Page + 0x3400 + 300, 1));   // the replicated first byte
        Assert.Equal(0x0807_0605_0403_0201UL, model.Mem(Page + 0x3FF0));   // the 16 bytes copied before the fault
        Assert.Equal(0xDEAD_BEEFUL, model.Mem(Page + 0x3010 - 39 * 4, 4));
        foreach (var (fast, threshold) in new[] { (true, 0), (true, 1), (false, 1) })
        {
            var run = Run(fast, threshold);
            Assert.Equal(model.Cpu.Retired, run.Cpu.Retired);
            Assert.Equal(model.Cpu.CR2, run.Cpu.CR2);
            for (int r = 0; r < 16; r++) Assert.Equal(model.Cpu.R[r], run.Cpu.R[r]);
            for (ulong x = Page; x < Page + 4 * 4096; x += 8) Assert.Equal(model.Mem(x), run.Mem(x));
            Assert.Equal(model.Cpu.Mmu.Snapshot().Named(), run.Cpu.Mmu.Snapshot().Named());
            foreach (var level in new[] { TlbLevel.Itlb, TlbLevel.Dtlb, TlbLevel.Stlb })
            {
                var x = run.Cpu.Mmu.Arrays(level);
                var y = model.Cpu.Mmu.Arrays(level);
                for (int i = 0; i < x.Count; i++) Assert.Equal(y[i].E, x[i].E);
            }
        }
    }
}
