using Emu64.Mmu;
using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Mmu;

/// <summary>
/// Guest-side scaffolding for TLB tests built on <see cref="TestKernel"/>. It adds a 4 KiB-page region
/// at linear 1 GiB (PDPT[1] → PD at 0x204000 → PT at 0x205000) whose pages X, Y, G (G has the global
/// bit) map frames holding 0x1111…, 0x2222…, 0x3333…; frame 0x209000 holds 0x9999… for remapping.
/// A host listener snapshots the MMU counters at every CR3 write, so a test can look at the region
/// between two CR3 writes.
/// </summary>
public static class Guest
{
    public const ulong Region = 0x40000000, X = Region, Y = Region + 0x1000, G = Region + 0x2000, Z = Region + 0x3000;
    public const ulong Pd2 = 0x204000, Pt = 0x205000, FrameX = 0x206000, FrameY = 0x207000, FrameG = 0x208000, FrameNew = 0x209000;
    public const ulong ValX = 0x1111111111111111, ValY = 0x2222222222222222, ValG = 0x3333333333333333, ValNew = 0x9999999999999999;
    public const ulong Pml4Base = TestKernel.Pml4;
    public const ulong Desc = TestKernel.Data;   // INVPCID descriptor scratch

    public static Dictionary<ulong, byte[]> Data()
    {
        var pd = new byte[0x1000];
        BitConverter.GetBytes(Pt | 3).CopyTo(pd, 0);
        var pt = new byte[0x1000];
        BitConverter.GetBytes(FrameX | 3).CopyTo(pt, 0);
        BitConverter.GetBytes(FrameY | 3).CopyTo(pt, 8);
        BitConverter.GetBytes(FrameG | 3 | PteFlags.Global).CopyTo(pt, 16);
        return new()
        {
            [Pd2] = pd, [Pt] = pt,
            [FrameX] = Fill(ValX), [FrameY] = Fill(ValY), [FrameG] = Fill(ValG), [FrameNew] = Fill(ValNew),
        };
    }

    private static byte[] Fill(ulong v)
    {
        var b = new byte[0x1000];
        for (int i = 0; i < b.Length; i += 8) BitConverter.GetBytes(v).CopyTo(b, i);
        return b;
    }

    /// <summary>Hooks the region into PDPT[1] (it was not present, so nothing can be cached for it).</summary>
    public static void MapRegion(Assembler a)
    {
        a.mov(rax, Pd2 | 3);
        a.mov(__qword_ptr[TestKernel.Pdpt + 8], rax);
    }

    /// <summary>Points the PTE of page <paramref name="la"/> at <paramref name="frame"/> (flags P|RW, plus G if asked) without any invalidation.</summary>
    public static void Remap(Assembler a, ulong la, ulong frame, bool global = false)
    {
        a.mov(rax, frame | 3 | (global ? PteFlags.Global : 0));
        a.mov(__qword_ptr[Pt + ((la - Region) >> 12) * 8], rax);
    }

    /// <summary>Reads the first qword of <paramref name="la"/> and prints it in hex and a newline.</summary>
    public static void Show(Assembler a, ulong la)
    {
        a.mov(rax, __qword_ptr[la]);
        TestKernel.PrintHex(a);
        TestKernel.Print(a, "\n");
    }

    /// <summary>Reads <paramref name="la"/> without printing.</summary>
    public static void Touch(Assembler a, ulong la) => a.mov(rax, __qword_ptr[la]);

    public static void SetCr4(Assembler a, ulong set, ulong clear = 0)
    {
        a.mov(rax, cr4);
        if (set != 0) { a.mov(rcx, set); a.or(rax, rcx); }
        if (clear != 0) { a.mov(rcx, ~clear); a.and(rax, rcx); }
        a.mov(cr4, rax);
    }

    /// <summary>MOV CR3 with the kernel's PML4, a PCID and optionally NOFLUSH (bit 63).</summary>
    public static void Cr3(Assembler a, int pcid, bool noFlush = false)
    {
        a.mov(rax, Pml4Base | (uint)pcid | (noFlush ? 1UL << 63 : 0));
        a.mov(cr3, rax);
    }

    public static void Invpcid(Assembler a, int type, int pcid, ulong la)
    {
        a.mov(rax, (ulong)pcid);
        a.mov(__qword_ptr[Desc], rax);
        a.mov(rax, la);
        a.mov(__qword_ptr[Desc + 8], rax);
        a.mov(rax, (ulong)type);
        a.mov(rbx, Desc);
        a.invpcid(rax, __[rbx]);
    }

    public static string Hex(ulong v) => v.ToString("x16") + "\n";

    /// <summary>Runs a kernel body with the region's data and a CR3 listener.</summary>
    public static (Run.Outcome R, Cr3Regions Regions) Run(Action<Assembler> body)
    {
        var regions = new Cr3Regions();
        var image = TestKernel.Build(a => { MapRegion(a); body(a); TestKernel.Exit(a, 0); }, Data());
        var r = Support.Run.Image(image, setup: m => regions.Attach(m));
        regions.Finish();
        Assert.True(r.Reason == StopReason.DebugExit, Emu64.Cli.Cli.Describe(r.Machine) + "\n" + r.Console);
        return (r, regions);
    }
}

/// <summary>MMU counters between CR3 writes: Region(k) is what happened after the k-th CR3 write of the run (0 = before any).</summary>
public sealed class Cr3Regions : IBoundaryListener
{
    private Machine? _m;
    private readonly List<TlbStats> _marks = new();
    public readonly List<BoundaryEvent> Writes = new();

    public void Attach(Machine m) { _m = m; m.Events.Subscribe(this); _marks.Add(m.Cpu.Mmu.Snapshot()); }

    public void OnEvent(in BoundaryEvent e)
    {
        if (e.Kind != BoundaryKind.Cr3Write) return;
        Writes.Add(e);
        _marks.Add(_m!.Cpu.Mmu.Snapshot());
    }

    public void Finish() => _marks.Add(_m!.Cpu.Mmu.Snapshot());

    /// <summary>Counters from the k-th CR3 write (counted from 1 for the first write in the body) to the next.</summary>
    public TlbStats After(int k) => _marks[k + 1] - _marks[k];

    /// <summary>CR3 writes done by the TestKernel stub before the body runs.</summary>
    public const int StubWrites = 1;

    /// <summary>Counters from the body's j-th CR3 write (1-based) to the next CR3 write or the end of the run.</summary>
    public TlbStats AfterBodyWrite(int j) => After(j + StubWrites);

    public BoundaryEvent BodyWrite(int j) => Writes[j - 1 + StubWrites];
}
