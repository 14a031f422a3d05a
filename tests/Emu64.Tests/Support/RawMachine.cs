using Emu64.Cpu;
using Iced.Intel;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Tests.Support;

/// <summary>
/// A machine put straight into 64-bit mode at CPL 0 without booting: 4-level page tables written into
/// RAM by <see cref="Map"/>, a flat 64-bit CS, EFER.LME/LMA/NXE, CR0.PG|PE, CR4.PAE. Tests place raw
/// code and data at any linear address (even the host address of a native buffer, so the same
/// instruction bytes address the same memory in both worlds) and run instructions one at a time
/// with <see cref="Step"/>, which reports a fault as its vector instead of delivering it.
/// </summary>
public sealed class RawMachine
{
    public readonly Machine Machine;
    public CpuCore Cpu => Machine.Cpu;
    private ulong _nextFree = 0x1000;          // physical page allocator (page tables and mapped pages)
    private readonly ulong _pml4;
    private readonly Dictionary<ulong, ulong> _pages = new();   // linear page -> physical page
    private readonly Dictionary<(ulong Rip, int Bitness), Insn> _decoded = new();

    public const ulong Pte = 0x7;   // present, writable, user

    /// <param name="compileThreshold">The run loop's compile threshold for <see cref="Machine.Run"/> (null: the default).</param>
    public RawMachine(ulong ramMiB = 8, int? compileThreshold = null)
    {
        var options = new MachineOptions { RamBytes = ramMiB << 20, Output = Stream.Null };
        if (compileThreshold is { } t) options.CompileThreshold = t;
        Machine = new Machine(options);
        _pml4 = AllocPage();
        var cpu = Cpu;
        cpu.CR0 = Cr0.Pe | Cr0.Pg | Cr0.Et | Cr0.Ne | Cr0.Wp | Cr0.Mp;
        cpu.CR4 = Cr4.Pae | Cr4.Osfxsr | Cr4.Osxmmexcpt;
        cpu.EFER = Efer.Lme | Efer.Lma | Efer.Nxe | Efer.Sce;
        cpu.CR3 = _pml4;
        for (int s = 0; s < 6; s++)
            cpu.Segs[s] = new Segment { Selector = (ushort)(s == Seg.CS ? 0x08 : 0x10), Limit = 0xFFFFFFFF,
                                        Attr = (ushort)(s == Seg.CS ? 0xA09B : 0xC093) };
        cpu.Tr = new Segment { Attr = 0x8B, Limit = 0x67 };
        cpu.Ldtr = new Segment { Attr = 0x82, Limit = 0xFFFF };
        cpu.Rflags = RFlags.Reserved1;
        cpu.UpdateMode();
        cpu.Mmu.FlushHostCache();
    }

    /// <summary>Switches CS to a 32-bit code segment: compatibility mode (IA-32e, CS.L=0, CS.D=1).</summary>
    public void EnterCompat32()
    {
        Cpu.Segs[Seg.CS] = new Segment { Selector = 0x18, Limit = 0xFFFFFFFF, Attr = 0xC09B };
        Cpu.UpdateMode();
        _decoded.Clear();
    }

    /// <summary>Places raw code at <paramref name="rip"/>, points RIP at it and forgets older decodes.</summary>
    public void Load(ulong rip, ReadOnlySpan<byte> code)
    {
        Write(rip, code);
        _decoded.Clear();
        Cpu.Rip = rip;
    }

    private ulong AllocPage()
    {
        ulong p = _nextFree;
        _nextFree += 0x1000;
        if (_nextFree > Machine.Memory.RamSize) throw new InvalidOperationException("RawMachine out of RAM");
        Span<byte> zero = stackalloc byte[0x1000];
        zero.Clear();
        Machine.Memory.WriteBytes(p, zero);
        return p;
    }

    /// <summary>
    /// The physical address of the table whose entries map <paramref name="linear"/> at <paramref name="level"/> (1: the page table,
    /// 2: the page directory), the tables above it allocated where missing.
    /// </summary>
    private ulong TableFor(ulong linear, int level)
    {
        ulong table = _pml4;
        for (int l = 3; l >= level; l--)
        {
            ulong slot = table + ((linear >> (12 + 9 * l)) & 511) * 8;
            ulong e = Machine.Memory.Read(slot, 8);
            if ((e & 1) == 0) { e = AllocPage() | Pte; Machine.Memory.Write(slot, 8, e); }
            table = e & 0x000FFFFFFFFFF000UL;
        }
        return table;
    }

    /// <summary>Maps the 4 KiB page holding <paramref name="linear"/> (allocating a physical page) and returns its physical address.</summary>
    public ulong Map(ulong linear, ulong flags = Pte)
    {
        ulong page = linear & ~0xFFFUL;
        if (_pages.TryGetValue(page, out var pa)) return pa;
        ulong table = TableFor(page, 1);
        pa = AllocPage();
        Machine.Memory.Write(table + ((page >> 12) & 511) * 8, 8, pa | flags);
        _pages[page] = pa;
        Cpu.Mmu.FlushHostCache();
        return pa;
    }

    /// <summary>
    /// Maps the 4 KiB page holding <paramref name="linear"/> to <paramref name="physical"/> (any frame: RAM already in use, or an
    /// address beyond RAM), or, with <paramref name="large"/>, the 2 MiB page holding it to the 2 MiB frame at <paramref name="physical"/>
    /// (a PDE with PS). Reads and writes through the mapping are not tracked by <see cref="Read"/> and <see cref="Write"/>.
    /// </summary>
    public void MapTo(ulong linear, ulong physical, ulong flags = Pte, bool large = false)
    {
        ulong table = TableFor(linear, large ? 2 : 1);
        if (large) Machine.Memory.Write(table + ((linear >> 21) & 511) * 8, 8, (physical & ~0x1FFFFFUL) | flags | 0x80);
        else Machine.Memory.Write(table + ((linear >> 12) & 511) * 8, 8, (physical & ~0xFFFUL) | flags);
        Cpu.Mmu.FlushHostCache();
    }

    /// <summary>Points the PDE of the 2 MiB region holding <paramref name="linear"/> at the page table <paramref name="table"/> (any frame).</summary>
    public void MapTable(ulong linear, ulong table)
    {
        Machine.Memory.Write(TableFor(linear, 2) + ((linear >> 21) & 511) * 8, 8, (table & ~0xFFFUL) | Pte);
        Cpu.Mmu.FlushHostCache();
    }

    /// <summary>Physical address of a mapped linear address.</summary>
    public ulong Phys(ulong linear) => _pages[linear & ~0xFFFUL] | (linear & 0xFFF);

    /// <summary>Writes bytes at a linear address, mapping pages as needed.</summary>
    public void Write(ulong linear, ReadOnlySpan<byte> bytes)
    {
        for (int k = 0; k < bytes.Length; k++) { Map(linear + (ulong)k); Machine.Memory.Write(Phys(linear + (ulong)k), 1, bytes[k]); }
    }

    public void Read(ulong linear, Span<byte> into)
    {
        for (int k = 0; k < into.Length; k++) into[k] = (byte)Machine.Memory.Read(Phys(linear + (ulong)k), 1);
    }

    /// <summary>Assembles 64-bit code with Iced at <paramref name="rip"/>, writes it there and returns its bytes.</summary>
    public byte[] Assemble(ulong rip, Action<Assembler> body)
    {
        var a = new Assembler(64);
        body(a);
        var w = new MemoryStream();
        a.Assemble(new StreamCodeWriter(w), rip);
        var bytes = w.ToArray();
        Write(rip, bytes);
        _decoded.Clear();
        return bytes;
    }

    /// <summary>Forgets decoded instructions (call after rewriting code bytes).</summary>
    public void InvalidateCode() => _decoded.Clear();

    /// <summary>
    /// Executes the instruction at RIP the way the run loop does (RIP advanced before the handler,
    /// rewound on a fault). Returns -1, or the vector of the fault it raised (not delivered).
    /// </summary>
    public unsafe int Step()
    {
        var cpu = Cpu;
        int bitness = cpu.Bitness;
        if (!_decoded.TryGetValue((cpu.Rip, bitness), out var d))
        {
            Span<byte> bytes = stackalloc byte[15];
            for (int k = 0; k < 15; k++)
            {
                ulong la = cpu.Rip + (ulong)k;
                bytes[k] = _pages.ContainsKey(la & ~0xFFFUL) ? (byte)Machine.Memory.Read(Phys(la), 1) : (byte)0;
            }
            DecodeCache.DecodeOne(bytes, cpu.Rip, bitness, ref d);
            _decoded[(cpu.Rip, bitness)] = d;
        }
        cpu.InsnRip = cpu.Rip;
        cpu.Rip += d.Length;
        try { d.Exec(cpu, ref d); cpu.Retired++; return -1; }
        catch (GuestFault f) { cpu.Rip = cpu.InsnRip; return f.Vector; }
    }

    /// <summary>Steps until RIP leaves [start, end) or a fault; returns the fault vector or -1.</summary>
    public int RunRange(ulong start, ulong end, int maxSteps = 100_000)
    {
        for (int n = 0; n < maxSteps; n++)
        {
            if (Cpu.Rip < start || Cpu.Rip >= end) return -1;
            int v = Step();
            if (v >= 0) return v;
        }
        throw new InvalidOperationException("RunRange: step limit reached");
    }
}
