using Emu64.Cpu;
using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Foundation;

/// <summary>
/// SYSCALL, SYSRETQ and MOV to CR3 arm the fetch entry of the next instruction for the new privilege level and PCID while a chain
/// runs (Machine.ResyncFetch), so a compiled region goes on after them into the next block of its page (issue #19). Here the
/// user loop and the system-call entry share one 4 KiB page, and the entry switches between two PCIDs with NOFLUSH writes, as
/// the toy kernel's trampoline does: the whole round trip becomes one region that runs on across every one of those
/// instructions. Every counter, the retired count and how the machine stops must be what the TLB model's own lookups give
/// interpreted (the fast cache off), and the last SYSRETQ, which sets TF from R11, must trap after exactly one user instruction.
/// </summary>
public class ResyncChainTests
{
    private const int Calls = 3000;
    private const ulong Counter = GuestKit.Results + 8;

    /// <summary>
    /// The guest: PCIDs on, SYSCALL enabled, <see cref="Calls"/> system calls from user mode (PCID 2); the entry writes CR3 with
    /// PCID 1 (NOFLUSH), counts the call, writes CR3 with PCID 3, sets TF in R11 on the last call, writes CR3 with PCID 2 and
    /// returns with SYSRETQ. Three PCIDs take turns in a two-entry iTLB, so LRU picks the victim of every miss.
    /// <paramref name="pad"/> bytes before the user loop move it (and the entry after it) into one 4 KiB page.
    /// </summary>
    private static (GuestKit.Built Built, Label User, Label AfterStep, Label End) Guest(int pad)
    {
        Label user = default, afterStep = default, end = default;
        var built = GuestKit.Build((a, k) =>
        {
            user = a.CreateLabel(); afterStep = a.CreateLabel(); end = a.CreateLabel();
            var entry = a.CreateLabel(); var skip = a.CreateLabel();
            a.mov(rax, cr4); a.bts(rax, 17); a.mov(cr4, rax);   // CR4.PCIDE (CR3[11:0] is 0 here)
            k.EnableSyscall(entry, sfmask: 0x200);
            a.mov(r12, (ulong)Calls);
            k.EnterUser(user);
            if (pad > 0) a.db(new byte[pad]);
            a.Label(ref user);
            a.syscall();
            a.dec(r12);
            a.Label(ref afterStep);
            a.jnz(user);
            a.ud2();
            a.Label(ref entry);
            a.mov(rax, cr3); a.and(rax, -0x1000); a.or(rax, 1); a.bts(rax, 63);
            a.mov(cr3, rax);                                     // kernel PCID 1, NOFLUSH
            a.add(__qword_ptr[Counter], 1);
            a.mov(rax, cr3); a.and(rax, -0x1000); a.or(rax, 3); a.bts(rax, 63);
            a.mov(cr3, rax);                                     // PCID 3, NOFLUSH
            a.cmp(r12, 1);
            a.jne(skip);
            a.or(r11, 0x100);                                    // the last SYSRETQ sets TF
            a.Label(ref skip);
            a.mov(rax, cr3); a.and(rax, -0x1000); a.or(rax, 2); a.bts(rax, 63);
            a.mov(cr3, rax);                                     // user PCID 2, NOFLUSH
            a.sysretq();
            a.Label(ref end);
        });
        return (built, user, afterStep, end);
    }

    private static (GuestKit.Built Built, Label User, Label AfterStep) OnePageGuest()
    {
        var (b, user, after, end) = Guest(0);
        ulong u = b.At(user);
        if (u >> 12 != (b.At(end) - 1) >> 12) (b, user, after, end) = Guest((int)(0x1000 - (u & 0xFFF)));
        Assert.Equal(b.At(user) >> 12, (b.At(end) - 1) >> 12);   // the loop and the entry in one 4 KiB page
        return (b, user, after);
    }

    private static Machine Start(byte[] image, int threshold, bool fastCache, bool smallItlb)
    {
        var m = new Machine(new MachineOptions
        {
            Output = Stream.Null, CompileThreshold = threshold,
            // Two iTLB entries for 2 MiB pages, one set: the code page under PCIDs 1, 2 and 3 evicts by LRU, so the order of the
            // fetches' uses (not only their number) shows in the misses.
            Tlb = smallItlb ? new Emu64.Mmu.TlbConfig { Itlb2M = new Emu64.Mmu.ArrayConfig { Entries = 2, Ways = 2 } } : new Emu64.Mmu.TlbConfig(),
        });
        m.LoadKernel(image, "kernel", Array.Empty<Loader.BootModule>());
        m.Cpu.Mmu.FastCacheDisabled = !fastCache;
        return m;
    }

    [Theory]
    [InlineData(0, false)]
    [InlineData(1, false)]
    [InlineData(100, false)]
    [InlineData(0, true)]
    [InlineData(1, true)]
    [InlineData(100, true)]
    public void A_round_trip_through_SYSCALL_three_PCID_switches_and_SYSRETQ_in_one_page_counts_what_the_model_counts(int threshold, bool smallItlb)
    {
        var (b, _, afterStep) = OnePageGuest();
        var reference = Start(b.Image, threshold: 0, fastCache: false, smallItlb);
        var m = Start(b.Image, threshold, fastCache: true, smallItlb);
        BlockCompilerTests.RunInLockstep(reference, m);
        // Every call ran, and the last SYSRETQ's TF trapped after the one user instruction that followed it (DEC).
        Assert.Equal((ulong)Calls, m.Memory.Read(Counter, 8));
        Assert.Equal(StopReason.Shutdown, m.StopReason);
        Assert.Equal((ulong)Vec.DB, m.Memory.Read(GuestKit.VectorSlot, 4));
        Assert.Equal(b.At(afterStep), m.Memory.Read(m.Cpu.Rsp, 8));   // the #DB frame's RIP
        if (smallItlb)
            Assert.True(m.Cpu.Mmu.Snapshot().Named().Any(c => c.Key == "tlb.itlb.misses" && c.Value > Calls),
                "the small iTLB misses on every round trip (LRU order matters)");
    }

    [Fact]
    public void Once_compiled_the_round_trip_runs_inside_one_region_without_returning_to_the_run_loop()
    {
        var (b, _, _) = OnePageGuest();
        var m = Start(b.Image, threshold: 100, fastCache: true, smallItlb: false);
        m.Run(1000 * 20);   // past the threshold: compiled, with the links the interpreter recorded
        ulong calls = m.Events.Syscalls, entries = m.Chain.CompiledEntries, retired = m.Chain.CompiledRetired;
        m.Run(1000 * 20);
        ulong ran = m.Events.Syscalls - calls;
        Assert.True(ran > 500, $"{ran} system calls");
        Assert.True(m.Chain.CompiledRetired - retired > 10_000, "the loop ran compiled");
        // A region that ended at each SYSCALL, CR3 write and SYSRETQ was entered four times per system call.
        Assert.True(m.Chain.CompiledEntries - entries < ran / 10,
            $"{m.Chain.CompiledEntries - entries} region entries for {ran} system calls");
    }

    private sealed class StepEverything : IInstructionHook
    {
        public int Steps;
        public bool BeforeInstruction() { Steps++; return true; }
        public void AfterInstruction() { }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    public void Stepped_one_instruction_at_a_time_SYSCALL_SYSRETQ_and_the_CR3_writes_leave_no_fetch_entry_armed(int threshold)
    {
        // Outside a chain nothing may stay armed: the next chain would count its first same-page fetch against an entry armed
        // for whatever privilege level and PCID the CPU had then (an interrupt or IRET in between changes them without a resync).
        var (b, _, _) = OnePageGuest();
        var reference = Start(b.Image, threshold: 0, fastCache: false, smallItlb: false);
        var m = Start(b.Image, threshold, fastCache: true, smallItlb: false);
        reference.Run(5_000);
        m.Run(5_000);   // compiled at 100, when the threshold is 100
        var hook = new StepEverything();
        m.InstructionHook = hook;
        m.DebugStepHook = true;
        reference.InstructionHook = new StepEverything();   // stepping fetches once per instruction: the reference steps too
        reference.DebugStepHook = true;
        reference.Run(200);
        reference.DebugStepHook = false;
        for (int k = 0; k < 200; k++)
        {
            m.Run(1);
            Assert.True(m.Cpu.Mmu._fetchSlot < 0, $"a fetch entry is armed after step {k} (rip {m.Cpu.Rip:x})");
        }
        Assert.Equal(200, hook.Steps);
        m.DebugStepHook = false;
        reference.Run(10_000);
        m.Run(10_000);
        BlockCompilerTests.AssertSame(BlockCompilerTests.Capture(reference, "", []), BlockCompilerTests.Capture(m, "", []));
        Assert.Equal(reference.Events.Recent(), m.Events.Recent());
    }
}
