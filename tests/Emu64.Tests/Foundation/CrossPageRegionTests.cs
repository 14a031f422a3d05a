using Emu64.Cpu;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Foundation;

/// <summary>
/// Compiled regions whose blocks lie in several code pages (issue #19): at an edge into another page the method does the chain's
/// fetch translation itself (Machine.EnterPage) and goes on only where the chain would have gone on to the same compiled block.
/// A loop in the kernel's page calls a function in a 4 KiB page of the test window; halfway through, the guest remaps that page
/// to another frame, unmaps it, or rewrites the function's code. Every outcome — registers, retired count, how the machine stops,
/// every TLB counter, the boundary events — must be what the interpreter gives with the TLB model's own lookups (fast cache off),
/// compiled at once and after 100 runs, stopped after 1, 7, 104... instructions at a time. (Such regions are opt-in,
/// <see cref="BlockCompiler.CrossPage"/>: each test turns them on, as NativeFormTests turns native forms off; the results are the
/// same either way, so a test running meanwhile sees no difference but in how its regions are cut.)
/// </summary>
[Collection(CompilerSwitchTests.Name)]   // flips BlockCompiler.CrossPage
public sealed class CrossPageRegionTests : IDisposable
{
    private readonly bool _was = BlockCompiler.CrossPage;
    public CrossPageRegionTests() => BlockCompiler.CrossPage = true;
    public void Dispose() => BlockCompiler.CrossPage = _was;

    private const int Iterations = 3000, ChangeAt = 1500;
    /// <summary>The function's page: page 1 of the test window, and the two frames it is mapped to.</summary>
    private const ulong Window = GuestKit.PtBase + 0x1000, Frame1 = 0x800000, Frame2 = 0x801000;

    public enum Change { None, Remap, Unmap, Rewrite }

    /// <summary>
    /// The guest: copies <c>add rbx, 1; ret</c> to <see cref="Frame1"/> and <c>add rbx, 2; ret</c> to <see cref="Frame2"/>, maps
    /// <see cref="Window"/> to Frame1, and calls it <see cref="Iterations"/> times from a loop in its own (2 MiB) page; at
    /// <see cref="ChangeAt"/> calls left it does <paramref name="change"/> (outside the hot loop) and goes on. Then HLT with IF=0.
    /// </summary>
    private static GuestKit.Built Guest(Change change) => GuestKit.Build((a, k) =>
    {
        var f1 = a.CreateLabel(); var f2 = a.CreateLabel();
        var loop = a.CreateLabel(); var done = a.CreateLabel(); var over = a.CreateLabel();
        a.lea(rsi, __[f1]); a.mov(edi, (uint)Frame1); a.mov(ecx, 16u); a.rep.movsb();
        a.lea(rsi, __[f2]); a.mov(edi, (uint)Frame2); a.mov(ecx, 16u); a.rep.movsb();
        k.MapPage(1, Frame1 | 3);
        a.mov(rax, cr3); a.mov(cr3, rax);
        a.xor(ebx, ebx);
        a.mov(r12, (ulong)Iterations);
        a.mov(r13, Window);
        a.Label(ref loop);
        a.call(r13);                 // into the other page, and back by its RET
        a.dec(r12);
        a.jz(done);
        a.cmp(r12, ChangeAt);
        a.jne(loop);
        switch (change)
        {
            case Change.Remap:   // the same linear page, now the other frame's code
                a.mov(rax, Frame2 | 3); a.mov(__qword_ptr[GuestKit.Pt + 8], rax); a.invlpg(__[r13]);
                break;
            case Change.Unmap:   // the next call's fetch faults (#PF, recorded, HLT)
                a.mov(__qword_ptr[GuestKit.Pt + 8], 0); a.invlpg(__[r13]);
                break;
            case Change.Rewrite: // a store into the function's code: add rbx, 5
                a.mov(__byte_ptr[r13 + 3], 5);
                break;
        }
        a.jmp(loop);
        a.Label(ref done);
        a.mov(__qword_ptr[GuestKit.Results + 8], rbx);
        a.hlt();
        a.Label(ref f1);
        a.db(0x48, 0x83, 0xC3, 0x01, 0xC3);   // add rbx, 1; ret
        a.Label(ref f2);
        a.db(0x48, 0x83, 0xC3, 0x02, 0xC3);   // add rbx, 2; ret
        a.Label(ref over);
    });

    private static Machine Start(byte[] image, int threshold, bool fastCache)
    {
        var m = new Machine(new MachineOptions { Output = Stream.Null, CompileThreshold = threshold });
        m.LoadKernel(image, "kernel", Array.Empty<Loader.BootModule>());
        m.Cpu.Mmu.FastCacheDisabled = !fastCache;
        return m;
    }

    [Theory]
    [InlineData(Change.None, 1)]
    [InlineData(Change.None, 100)]
    [InlineData(Change.Remap, 1)]
    [InlineData(Change.Remap, 100)]
    [InlineData(Change.Unmap, 1)]
    [InlineData(Change.Unmap, 100)]
    [InlineData(Change.Rewrite, 1)]
    [InlineData(Change.Rewrite, 100)]
    public void A_region_that_calls_into_another_page_behaves_as_interpreted_when_that_page_is_remapped_unmapped_or_rewritten(Change change, int threshold)
    {
        var b = Guest(change);
        var reference = Start(b.Image, threshold: 0, fastCache: false);
        var m = Start(b.Image, threshold, fastCache: true);
        BlockCompilerTests.RunInLockstep(reference, m);
        Assert.Equal(StopReason.Shutdown, m.StopReason);
        ulong expected = change switch
        {
            Change.None => Iterations,
            Change.Remap => (Iterations - ChangeAt) + 2UL * ChangeAt,
            Change.Rewrite => (Iterations - ChangeAt) + 5UL * ChangeAt,
            _ => 0,
        };
        if (change == Change.Unmap) Assert.Equal((ulong)Vec.PF, m.Memory.Read(GuestKit.VectorSlot, 4));
        else Assert.Equal(expected, m.Memory.Read(GuestKit.Results + 8, 8));
        Assert.True(m.Chain.CompiledRetired > (ulong)Iterations, "the loop ran compiled");
    }

    /// <summary>A timed device that records the retired count at which the run loop serviced each of its events (every <paramref name="period"/> ticks).</summary>
    private sealed class Ticker(Machine m, ulong period) : ITimedDevice
    {
        public readonly List<ulong> ServicedAt = [];
        public ulong NextEventAt { get; private set; } = period;
        public void OnTime(ulong now) { ServicedAt.Add(m.Cpu.Retired); NextEventAt = now + period; }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(100)]
    public void A_device_event_that_falls_due_inside_the_region_is_serviced_at_the_boundary_where_the_interpreter_services_it(int threshold)
    {
        // Events every 13 instructions: the edges into the function's page and back must leave for each, as the chain would.
        var b = Guest(Change.None);
        var reference = Start(b.Image, threshold: 0, fastCache: false);
        var m = Start(b.Image, threshold, fastCache: true);
        var (tr, tm) = (new Ticker(reference, 13), new Ticker(m, 13));
        reference.AddTimedDevice(tr);
        m.AddTimedDevice(tm);
        reference.Run(30_000);
        m.Run(30_000);
        Assert.True(tm.ServicedAt.Count > 1000);
        Assert.Equal(tr.ServicedAt, tm.ServicedAt);
        BlockCompilerTests.AssertSame(BlockCompilerTests.Capture(reference, "", []), BlockCompilerTests.Capture(m, "", []));
        Assert.True(m.Chain.CompiledRetired > 10_000, "the loop ran compiled");
    }

    [Fact]
    public void Once_compiled_the_loop_and_the_function_in_another_page_run_as_one_region()
    {
        var b = Guest(Change.None);
        var m = Start(b.Image, threshold: 100, fastCache: true);
        m.Run(1000 * 5);   // past the threshold, with the links the interpreter recorded
        ulong entries = m.Chain.CompiledEntries, retired = m.Chain.CompiledRetired, r0 = m.Cpu.Retired;
        m.Run(1000 * 5);
        ulong calls = (m.Cpu.Retired - r0) / 5;
        Assert.True(m.Chain.CompiledRetired - retired >= m.Cpu.Retired - r0 - 10, "the loop ran compiled");
        // A region that ended at the call and at the return was entered twice per call.
        Assert.True(m.Chain.CompiledEntries - entries < calls / 20, $"{m.Chain.CompiledEntries - entries} region entries for {calls} calls");
        Assert.Contains(m.Cache.Blocks, x => x.Code != null && x.Region!.Select(y => y.Phys >> 12).Distinct().Count() == 2);
    }

    /// <summary>
    /// ResyncChainTests' guest with the SYSCALL entry in the page after the user loop: SYSCALL and SYSRETQ are edges into another
    /// page, armed for the new privilege level and PCID by the instructions themselves (Machine.ResyncFetch). Three PCIDs take
    /// turns with NOFLUSH writes; the last SYSRETQ sets TF from R11 and must trap after exactly one user instruction.
    /// </summary>
    private static (GuestKit.Built Built, Label AfterStep) SyscallGuest(int pad, bool rewrite = false)
    {
        Label afterStep = default, entry = default, addInsn = default;
        var built = GuestKit.Build((a, k) =>
        {
            var user = a.CreateLabel(); afterStep = a.CreateLabel(); entry = a.CreateLabel(); addInsn = a.CreateLabel();
            var skip = a.CreateLabel(); var same = a.CreateLabel();
            a.mov(rax, cr4); a.bts(rax, 17); a.mov(cr4, rax);   // CR4.PCIDE
            k.EnableSyscall(entry, sfmask: 0x200);
            a.mov(r12, 3000UL);
            k.EnterUser(user);
            a.Label(ref user);
            a.syscall();
            a.dec(r12);
            a.Label(ref afterStep);
            a.jnz(user);
            a.ud2();
            if (pad > 0) a.db(new byte[pad]);
            a.Label(ref entry);
            a.mov(rax, cr3); a.and(rax, -0x1000); a.or(rax, 1); a.bts(rax, 63);
            a.mov(cr3, rax);                                     // kernel PCID 1, NOFLUSH
            a.Label(ref addInsn);
            uint counter = (uint)(GuestKit.Results + 8);
            a.db(0x48, 0x83, 0x04, 0x25, (byte)counter, (byte)(counter >> 8), (byte)(counter >> 16), (byte)(counter >> 24), 0x01);   // add qword [counter], 1
            if (rewrite)
            {
                // at call 1000 the entry rewrites its own ADD to add 3: a store into the page the next SYSCALL enters
                a.cmp(r12, 1000);
                a.jne(same);
                a.lea(rax, __[addInsn]);
                a.mov(__byte_ptr[rax + 8], 3);
                a.Label(ref same);
            }
            a.mov(rax, cr3); a.and(rax, -0x1000); a.or(rax, 3); a.bts(rax, 63);
            a.mov(cr3, rax);                                     // PCID 3, NOFLUSH
            a.cmp(r12, 1);
            a.jne(skip);
            a.or(r11, 0x100);                                    // the last SYSRETQ sets TF
            a.Label(ref skip);
            a.mov(rax, cr3); a.and(rax, -0x1000); a.or(rax, 2); a.bts(rax, 63);
            a.mov(cr3, rax);                                     // user PCID 2, NOFLUSH
            a.sysretq();
        });
        if (pad == 0)
        {
            ulong e = built.At(entry);
            return SyscallGuest((int)(0x1000 - (e & 0xFFF)), rewrite);   // the entry at the start of the next page
        }
        Assert.Equal(0UL, built.At(entry) & 0xFFF);
        return (built, afterStep);
    }

    [Theory]
    [InlineData(1, false)]
    [InlineData(100, false)]
    [InlineData(1, true)]
    [InlineData(100, true)]
    public void SYSCALL_and_SYSRETQ_into_another_page_go_on_inside_the_region_and_count_what_the_model_counts(int threshold, bool rewrite)
    {
        var (b, afterStep) = SyscallGuest(0, rewrite);
        var reference = Start(b.Image, threshold: 0, fastCache: false);
        var m = Start(b.Image, threshold, fastCache: true);
        BlockCompilerTests.RunInLockstep(reference, m);
        // 3000 calls; rewritten at call 1000 (counting down), the last 999 add 3
        Assert.Equal(rewrite ? 2001UL + 3 * 999 : 3000UL, m.Memory.Read(GuestKit.Results + 8, 8));
        Assert.Equal(StopReason.Shutdown, m.StopReason);
        Assert.Equal((ulong)Vec.DB, m.Memory.Read(GuestKit.VectorSlot, 4));
        Assert.Equal(b.At(afterStep), m.Memory.Read(m.Cpu.Rsp, 8));   // the #DB frame's RIP: one user instruction after the SYSRETQ
        // compiled at the first run a block has no links yet, so its region is itself; after 100 runs the round trip is one region
        if (threshold == 100) Assert.Contains(m.Cache.Blocks, x => x.Code != null && x.Region!.Select(y => y.Phys >> 12).Distinct().Count() == 2);
    }

    [Theory]
    [InlineData(37UL)]
    [InlineData(1009UL)]
    public void The_toy_kernels_system_call_loop_under_PTI_runs_as_one_region_and_stops_where_the_interpreter_does(ulong n)
    {
        // User page, trampoline, C dispatcher and back (supervisor-only kernel pages, two PCIDs): one region of 15 blocks in four
        // pages, left at every stop and event. After a stop inside the kernel the chain's next fetch must be a supervisor fetch.
        Machine Boot(int threshold)
        {
            var m = new Machine(new MachineOptions { Append = "init=syscalls:100000000 pti=on nokaslr", Output = Stream.Null, CompileThreshold = threshold });
            m.LoadKernel(File.ReadAllBytes(Support.ToyKernel.ImagePath), "toykernel.elf", Array.Empty<Loader.BootModule>());
            Assert.Equal(StopReason.None, m.Run(3_000_000));
            return m;
        }
        var compiled = Boot(10);
        var interpreted = Boot(0);
        for (int round = 0; round < 200; round++)
        {
            Assert.Equal(StopReason.None, compiled.Run(n));
            Assert.Equal(StopReason.None, interpreted.Run(n));
            if (round % 20 == 0) BlockCompilerTests.AssertSame(BlockCompilerTests.Capture(interpreted, "", []), BlockCompilerTests.Capture(compiled, "", []));
        }
        BlockCompilerTests.AssertSame(BlockCompilerTests.Capture(interpreted, "", []), BlockCompilerTests.Capture(compiled, "", []));
        Assert.Equal(interpreted.Events.Recent(), compiled.Events.Recent());
        Assert.Contains(compiled.Cache.Blocks, x => x.Code != null && x.Region!.Select(y => y.Phys >> 12).Distinct().Count() >= 3);
        // Long runs: the timer's interrupts arrive inside the region, which must leave at the boundary where each became due.
        ulong interrupts = compiled.Events.Interrupts;
        for (int round = 0; round < 10; round++)
        {
            compiled.Run(2_000_000);
            interpreted.Run(2_000_000);
            BlockCompilerTests.AssertSame(BlockCompilerTests.Capture(interpreted, "", []), BlockCompilerTests.Capture(compiled, "", []));
            Assert.Equal(interpreted.Events.Recent(), compiled.Events.Recent());
        }
        Assert.True(compiled.Events.Interrupts > interrupts, "timer interrupts arrived");
    }

    [Fact]
    public void The_system_call_round_trip_across_two_pages_runs_inside_one_region()
    {
        var (b, _) = SyscallGuest(0);
        var m = Start(b.Image, threshold: 100, fastCache: true);
        m.Run(1000 * 20);
        ulong calls = m.Events.Syscalls, entries = m.Chain.CompiledEntries;
        m.Run(1000 * 20);
        ulong ran = m.Events.Syscalls - calls;
        Assert.True(ran > 500, $"{ran} system calls");
        Assert.True(m.Chain.CompiledEntries - entries < ran / 10, $"{m.Chain.CompiledEntries - entries} region entries for {ran} system calls");
    }
}
