namespace Emu64.Mmu;

/// <summary>
/// The guest's clock: what one tick of <see cref="Machine.Now"/> (and so the TSC, the APIC timer, the PIT, the
/// ACPI PM timer, the CMOS clock) stands for.
/// </summary>
public enum GuestClock
{
    /// <summary>One tick per retired instruction (the default): a TLB miss or a CR3 write costs the guest's clock nothing.</summary>
    Instructions,
    /// <summary>
    /// One tick per modeled cycle: each retired instruction is one cycle (the cost model's BaseCpi), and every event
    /// the cost model charges — an STLB hit, a page walk and each paging-structure entry it reads, a CR3 write,
    /// INVLPG, INVPCID, a flushing CR4 write — adds its cost the moment it happens. So the guest's TSC over any stretch
    /// with no halt equals <see cref="TlbStats.ModeledCycles"/> of that stretch, and a program that times itself sees
    /// what the model says PTI costs.
    /// </summary>
    Cycles,
}

/// <summary>The cycle clock's side of the MMU: the costs it adds to the machine's time at the model's slow paths.</summary>
public sealed partial class Mmu
{
    private bool _cycleClock;
    private ulong _costStlbHit, _costWalkStart, _costWalkMemRef;
    private readonly ulong[] _costFlush = new ulong[Ctr.Causes];

    /// <summary>
    /// True when guest time follows modeled cycles (<see cref="GuestClock.Cycles"/>). The costs are read from the cost
    /// model now and at every <see cref="Configure"/>; they must be whole cycles, with BaseCpi 1 and L1Hit 0 (an L1 hit
    /// is on the hot path, which the clock leaves alone: <see cref="CycleClockProblem"/>).
    /// </summary>
    public bool CycleClock
    {
        get => _cycleClock;
        set { _cycleClock = value; LoadClockCosts(); }
    }

    /// <summary>Why <paramref name="m"/> cannot drive the cycle clock, or null when it can.</summary>
    public static string? CycleClockProblem(CostModel m)
    {
        if (m.BaseCpi != 1) return $"cost.basecpi is {m.BaseCpi}; --clock cycles counts one cycle per instruction (cost.basecpi=1)";
        if (m.L1Hit != 0) return $"cost.l1hit is {m.L1Hit}; --clock cycles needs cost.l1hit=0 (an L1 TLB hit adds no latency)";
        foreach (var (name, v) in new[] { ("stlbhit", m.StlbHit), ("walkstart", m.WalkStart), ("walkmemref", m.WalkMemRef), ("cr3write", m.Cr3Write),
                                          ("invlpg", m.Invlpg), ("invpcid", m.Invpcid), ("cr4flush", m.Cr4Flush) })
            if (v < 0 || v != Math.Floor(v) || v > uint.MaxValue)
                return $"cost.{name} is {v}; --clock cycles needs whole numbers of cycles (0 to {uint.MaxValue})";
        return null;
    }

    private void LoadClockCosts()
    {
        Array.Clear(_costFlush);
        _costStlbHit = _costWalkStart = _costWalkMemRef = 0;
        if (!_cycleClock) return;
        var m = Config.Cost;
        if (CycleClockProblem(m) is { } problem) throw new ArgumentException(problem);
        _costStlbHit = (ulong)m.StlbHit;
        _costWalkStart = (ulong)m.WalkStart;
        _costWalkMemRef = (ulong)m.WalkMemRef;
        // The same causes TlbStats.ModeledCycles charges (CR0 and page-fault invalidations cost nothing there).
        _costFlush[(int)FlushCause.Cr3] = _costFlush[(int)FlushCause.Cr3NoFlush] = (ulong)m.Cr3Write;
        _costFlush[(int)FlushCause.Invlpg] = (ulong)m.Invlpg;
        _costFlush[(int)FlushCause.Invpcid0] = _costFlush[(int)FlushCause.Invpcid1] =
            _costFlush[(int)FlushCause.Invpcid2] = _costFlush[(int)FlushCause.Invpcid3] = (ulong)m.Invpcid;
        _costFlush[(int)FlushCause.Cr4] = (ulong)m.Cr4Flush;
    }

    /// <summary>Adds modeled cycles to guest time (slow paths only, and only under the cycle clock).</summary>
    private void Stall(ulong cycles) => _cpu.Machine.AddStall(cycles);
}
