using BenchmarkDotNet.Attributes;
using Emu64.Cpu;
using Emu64.Mmu;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using CpuCore = Emu64.Cpu.Cpu;
using MmuUnit = Emu64.Mmu.Mmu;

namespace Emu64.Bench;

/// <summary>
/// A machine put directly into 64-bit mode with 4-level paging: PML4 at 0x10000, 4 KiB pages for
/// linear 0x400000.. mapped to the same physical addresses (code at 0x400000, data at 0x500000..).
/// </summary>
internal static class TlbMachine
{
    public const ulong Pml4 = 0x10000, Code = 0x400000, Data = 0x500000;
    public const int DataPages = 1024;

    public static Machine Create(TlbConfig? config = null)
    {
        var m = new Machine(new MachineOptions { RamBytes = 64UL << 20, Tlb = config });
        var c = m.Cpu;
        ulong next = 0x11000;
        void Map(ulong la)
        {
            ulong table = Pml4;
            for (int level = 4; level > 1; level--)
            {
                ulong addr = table + ((la >> (12 + 9 * (level - 1))) & 0x1FF) * 8;
                ulong e = m.Memory.Read(addr, 8);
                if ((e & 1) == 0) { e = next | 7; next += 0x1000; m.Memory.Write(addr, 8, e); }
                table = e & MmuUnit.PhysAddrMask;
            }
            m.Memory.Write(table + ((la >> 12) & 0x1FF) * 8, 8, la | 3);
        }
        for (int p = 0; p < 16; p++) Map(Code + (ulong)p * 0x1000);
        for (int p = 0; p < DataPages; p++) Map(Data + (ulong)p * 0x1000);
        c.CR0 = Cr0.Pe | Cr0.Pg | Cr0.Et | Cr0.Wp;
        c.CR4 = Emu64.Cpu.Cr4.Pae;
        c.EFER = Efer.Lme | Efer.Lma | Efer.Nxe;
        c.CR3 = Pml4;
        c.Mode = CpuMode.Long64;
        c.Cpl = 0;
        c.Mmu.OnModeChanged();
        return m;
    }

    /// <summary>Writes a 64-bit code body at <see cref="Code"/> and points RIP at it.</summary>
    public static void Load(Machine m, Action<Assembler> body)
    {
        var a = new Assembler(64);
        body(a);
        var ms = new MemoryStream();
        a.Assemble(new StreamCodeWriter(ms), Code);
        m.Memory.WriteBytes(Code, ms.ToArray());
        m.Cpu.Rip = Code;
    }
}

/// <summary>Cost of one translation that hits the L1 dTLB, and of a miss that walks all four levels.</summary>
[MemoryDiagnoser]
public class TlbLookupBench
{
    private MmuUnit _hit = null!, _walk = null!;
    private CpuCore _walkCpu = null!;
    private const int Ops = 1024;

    [GlobalSetup]
    public void Setup()
    {
        _hit = TlbMachine.Create().Cpu.Mmu;
        _hit.Translate(TlbMachine.Data, Access.Read);
        // One-entry structures and no paging-structure caches: every translation of a new page walks 4 levels.
        var tiny = new TlbConfig { PagingStructureCaches = false };
        foreach (var (_, a) in tiny.Arrays()) { a.Entries = 1; a.Ways = 1; }
        var m = TlbMachine.Create(tiny);
        _walk = m.Cpu.Mmu;
        _walkCpu = m.Cpu;
    }

    [Benchmark(OperationsPerInvoke = Ops)]
    public ulong L1_dTLB_hit()
    {
        ulong s = 0;
        for (int i = 0; i < Ops; i++) s += _hit.Translate(TlbMachine.Data + (ulong)(i & 0xFF8), Access.Read);
        return s;
    }

    [Benchmark(OperationsPerInvoke = Ops)]
    public ulong Miss_and_4_level_walk()
    {
        ulong s = 0;
        for (int i = 0; i < Ops; i++) s += _walk.Translate(TlbMachine.Data + ((ulong)i << 12), Access.Read);
        return s;
    }

    [Benchmark(OperationsPerInvoke = Ops)]
    public ulong Walker_only_4_levels()
    {
        ulong s = 0;
        for (int i = 0; i < Ops; i++)
        {
            var w = new WalkResult();
            _walk.Walk(TlbMachine.Data + ((ulong)i << 12), 0, _walkCpu.CR3, ref w, WalkMode.Probe);
            s += w.Frame;
        }
        return s;
    }
}

/// <summary>Guest loops through the whole emulator with the TLB model on: a register loop and a load/store loop.</summary>
public class TlbGuestLoopBench
{
    private Machine _reg = null!, _mem = null!;
    private const int Iterations = 100_000;

    [GlobalSetup]
    public void Setup()
    {
        _reg = TlbMachine.Create();
        _mem = TlbMachine.Create();
        TlbMachine.Load(_reg, RegisterLoop);   // once: rewriting the code each invoke would drop its decoded (and compiled) blocks
        TlbMachine.Load(_mem, MemoryLoop);
    }

    private static void RegisterLoop(Assembler a)
    {
        var loop = a.CreateLabel();
        a.mov(rcx, (ulong)Iterations);
        a.Label(ref loop);
        a.add(rax, 3);
        a.dec(rcx);
        a.jnz(loop);
        a.hlt();
    }

    private static void MemoryLoop(Assembler a)
    {
        var loop = a.CreateLabel();
        a.mov(rcx, (ulong)Iterations);
        a.mov(rbx, TlbMachine.Data);
        a.Label(ref loop);
        a.mov(rax, __qword_ptr[rbx]);
        a.add(rax, 1);
        a.mov(__qword_ptr[rbx], rax);
        a.dec(rcx);
        a.jnz(loop);
        a.hlt();
    }

    [Benchmark(OperationsPerInvoke = Iterations * 3)]
    public ulong Register_loop_per_instruction()
    {
        _reg.Cpu.Rip = TlbMachine.Code;   // the loop starts over (its first instruction sets the count)
        _reg.Run(Iterations * 3 + 1);
        return _reg.Cpu.Retired;
    }

    [Benchmark(OperationsPerInvoke = Iterations * 5)]
    public ulong Memory_loop_per_instruction()
    {
        _mem.Cpu.Rip = TlbMachine.Code;
        _mem.Run(Iterations * 5 + 2);
        return _mem.Cpu.Retired;
    }
}
