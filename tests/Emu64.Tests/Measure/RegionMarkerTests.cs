using Emu64.Cpu;
using Emu64.Introspection;
using Emu64.Isa;
using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Measure;

/// <summary>
/// The user-mode region marker (Isa/RegionMarker.cs, docs/MEASURE.md): <c>nopl MAGIC(%rax)</c> begins and ends a
/// measured region as the kernel-information port does, counted the same by the interpreter and compiled code, and
/// every other NOP stays a NOP.
/// </summary>
public class RegionMarkerTests
{
    private const ulong Code = 0x40_0000, Data = 0x80_0000;
    private const int Pages = 8, Iterations = 40;

    /// <summary>
    /// A loop: region 1 marked through port 0xEA (<c>mov rax, imm64; out 0xEA, eax</c>: 12 bytes, 2 instructions) around
    /// a store to each of 8 pages, then region 2 marked by the NOP marker (<c>mov eax, imm32; nopl MAGIC(%rax)</c>: also
    /// 12 bytes and 2 instructions) around the same stores; HLT with interrupts off ends the run.
    /// </summary>
    private static RawMachine Build(int? compileThreshold)
    {
        var r = new RawMachine(ramMiB: 16, compileThreshold);
        for (int p = 0; p < Pages; p++) r.Map(Data + (ulong)p * 4096);
        r.Assemble(Code, a =>
        {
            var loop = a.CreateLabel();
            a.mov(ecx, Iterations);
            a.mov(rbx, (long)Data);
            a.Label(ref loop);
            a.mov(rax, (long)((1 << 8) | KernelInfoPort.OpRegionBegin) | (1L << 40));   // imm64 form: 10 bytes
            a.@out(0xEA, eax);
            for (int p = 0; p < Pages; p++) a.mov(__dword_ptr[rbx + p * 4096], ecx);
            a.mov(rax, (long)((1 << 8) | KernelInfoPort.OpRegionEnd) | (1L << 40));
            a.@out(0xEA, eax);
            a.mov(eax, 0);
            a.db(RegionMarker.Encode(2, RegionMarker.OpBegin));
            for (int p = 0; p < Pages; p++) a.mov(__dword_ptr[rbx + p * 4096], ecx);
            a.mov(eax, 0);
            a.db(RegionMarker.Encode(2, RegionMarker.OpEnd));
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
        });
        r.Cpu.Rip = Code;
        return r;
    }

    /// <summary>Every counter of a region's delta, named.</summary>
    private static List<(string, ulong)> Counters(Region region)
    {
        var d = region.Delta;
        var list = new List<(string, ulong)>
        {
            ("instructions", d.Instructions), ("syscalls", d.Syscalls), ("interrupts", d.Interrupts), ("exceptions", d.Exceptions),
            ("cr3_writes", d.Cr3Writes), ("now", d.Now),
        };
        list.AddRange(d.Tlb.Named());
        return list;
    }

    private static List<Region> Run(int? compileThreshold)
    {
        var r = Build(compileThreshold);
        Assert.Equal(StopReason.Shutdown, r.Machine.Run());
        return r.Machine.KernelInfo.Regions;
    }

    [Fact]
    public void A_region_marked_with_the_NOP_marker_has_exactly_the_counters_of_the_same_code_marked_through_the_port()
    {
        var regions = Run(compileThreshold: 0);
        var port = regions.Where(x => x.Id == 1).ToList();
        var nop = regions.Where(x => x.Id == 2).ToList();
        Assert.Equal(Iterations, port.Count);
        Assert.Equal(Iterations, nop.Count);
        // The first port region takes the 8 data pages' TLB misses; from the second on both see the same warm TLB.
        Assert.True(port[0].Delta.Tlb.Walks >= Pages);
        for (int k = 1; k < Iterations; k++)
            Assert.Equal(Counters(port[k]), Counters(nop[k]));
        // Between the two snapshots: the marker itself, 8 stores and the MOV before the end marker.
        Assert.Equal(1UL + Pages + 1, nop[1].Delta.Instructions);
    }

    [Fact]
    public void The_interpreter_and_compiled_blocks_count_marked_regions_identically()
    {
        var interpreted = Run(compileThreshold: 0).Select(Counters).ToList();
        long compiledBefore = BlockCompiler.Compiled;
        var compiled = Run(compileThreshold: 1).Select(Counters).ToList();
        Assert.True(BlockCompiler.Compiled > compiledBefore, "the loop was compiled");
        Assert.Equal(interpreted, compiled);
    }

    /// <summary>Decodes <paramref name="bytes"/> and says whether the decoder chose the marker's handler.</summary>
    private static unsafe bool IsMarker(byte[] bytes, int bitness = 64)
    {
        var d = new Insn();
        DecodeCache.DecodeOne(bytes, Code, bitness, ref d);
        Assert.Equal(Mnemonic.Nop, d.I.Mnemonic);
        return !HandlerTable.Is(d.Exec, Iced.Intel.Code.Nop_rm32);
    }

    [Fact]
    public void Only_the_exact_marker_encoding_is_a_marker_and_every_other_NOP_keeps_the_plain_handler()
    {
        Assert.True(IsMarker(RegionMarker.Encode(5, RegionMarker.OpBegin)));
        Assert.True(IsMarker(RegionMarker.Encode(RegionMarker.MaxId, RegionMarker.OpEnd)));
        Assert.True(IsMarker(RegionMarker.Encode(7, RegionMarker.OpEnd), bitness: 32));
        Assert.False(IsMarker([0x0F, 0x1F, 0x80, 0, 0, 0, 0]));                        // nopl 0x0(%rax): compilers' padding
        Assert.False(IsMarker([0x0F, 0x1F, 0x44, 0x00, 0x00]));                         // nopl 0x0(%rax,%rax,1)
        Assert.False(IsMarker([0x66, 0x0F, 0x1F, 0x84, 0, 0, 0, 0, 0]));               // nopw 0x0(%rax,%rax,1)
        var m = RegionMarker.Encode(5, RegionMarker.OpBegin);
        Assert.False(IsMarker([0x0F, 0x1F, 0x83, .. m[3..]]));                           // base RBX, not RAX
        Assert.False(IsMarker([0x48, .. m]));                                            // a REX prefix: 8 bytes
        Assert.False(IsMarker([0x0F, 0x1F, 0x80, 0x03, 0x05, 0x40, 0xE6]));             // op 3: reserved
        Assert.False(IsMarker([0x0F, 0x1F, 0x80, 0x01, 0x05, 0x40, 0xE7]));             // not the magic
    }

    [Fact]
    public void Plain_NOPs_in_a_run_mark_no_region()
    {
        var r = new RawMachine(compileThreshold: 1);
        r.Assemble(Code, a =>
        {
            a.mov(ecx, 100);
            var loop = a.CreateLabel();
            a.Label(ref loop);
            a.db(0x0F, 0x1F, 0x80, 0, 0, 0, 0);
            a.db(0x0F, 0x1F, 0x80, 0x03, 0x05, 0x40, 0xE6);
            a.db(0x0F, 0x1F, 0x83, 0x01, 0x05, 0x40, 0xE6);
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
        });
        r.Cpu.Rip = Code;
        Assert.Equal(StopReason.Shutdown, r.Machine.Run());
        Assert.Empty(r.Machine.KernelInfo.Regions);
        Assert.InRange(r.Cpu.Retired, 2 + 100 * 5UL, 3 + 100 * 5UL);   // every NOP retired (HLT may count)
    }
}
