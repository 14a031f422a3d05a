using Emu64.Debugging;
using Emu64.Mmu;

namespace Emu64.Tests.Debugging;

public class DebuggerTests
{
    private static (Machine M, Debugger D, DebuggerCommands C) New()
    {
        var m = SyscallKernel.NewMachine();
        var d = new Debugger(m, SyscallKernel.Symbols);
        return (m, d, new DebuggerCommands(d));
    }

    [Fact]
    public void Stepb_walks_one_system_call_across_the_boundary_event_by_event()
    {
        var (m, _, c) = New();
        Assert.Contains("breakpoint at 0x150000 <user_main>", c.Execute("break user_main"));
        Assert.Contains("breakpoint at 0x150000", c.Execute("continue"));
        Assert.Equal(3, m.Cpu.Cpl);
        string[] expected =
        [
            "[syscall] ", "now cpl=0 cr3=0x205801 pcid=0x801",
            "[cr3] ", "now cpl=0 cr3=0x204001 pcid=0x1",
            "[cr3] ", "now cpl=0 cr3=0x205801 pcid=0x801",
            "[sysret] ", "now cpl=3 cr3=0x205801 pcid=0x801",
        ];
        var outs = Enumerable.Range(0, 4).Select(_ => c.Execute("stepb")).ToArray();
        for (int i = 0; i < 4; i++)
        {
            Assert.StartsWith(expected[2 * i], outs[i]);
            Assert.Contains(expected[2 * i + 1], outs[i]);
        }
        Assert.Contains("cr3 205801 -> 204001 pcid 801 -> 1 noflush", outs[1]);
        Assert.Contains("=> 0000000000140000 <entry_SYSCALL_64>:  0f 01 f8", outs[0]);
        Assert.Contains("=> 0000000000150007 <user_main+0x7>", outs[3]);
        Assert.Equal(42UL, m.Cpu.R[0]);
    }

    [Fact]
    public void Step_counts_instructions_and_stops_on_the_cr3_write()
    {
        var (m, d, c) = New();
        c.Execute("break entry_SYSCALL_64");
        c.Execute("continue");
        ulong before = m.Cpu.Retired;
        string o = c.Execute("step 5");   // swapgs, save rsp, mov rsp,cr3, and, bts
        Assert.Equal(before + 5, m.Cpu.Retired);
        Assert.Equal(SyscallKernel.ToKernelCr3Write, m.Cpu.Rip);
        Assert.Contains("mov     cr3,rsp", o);
        Assert.Equal(SyscallKernel.UserCr3, m.Cpu.CR3);
        c.Execute("step");
        Assert.Equal(SyscallKernel.KernelCr3, m.Cpu.CR3);
        Assert.Contains("until", DebuggerCommands.Help);
        Assert.Contains("[sysret]", c.Execute("until sysret"));
        Assert.Equal(3, m.Cpu.Cpl);
        Assert.False(m.DebugStepHook && d.Breakpoints.Count == 0);
    }

    [Fact]
    public void Breakpoint_does_not_patch_guest_memory_and_fires_under_both_address_spaces()
    {
        var (m, _, c) = New();
        ulong pa = SyscallKernel.EntryAddr;
        ulong before = m.Memory.Read(pa, 8);
        c.Execute("break entry_SYSCALL_64");
        Assert.Equal(before, m.Memory.Read(pa, 8));
        Assert.Contains("breakpoint at 0x140000 <entry_SYSCALL_64>", c.Execute("continue"));
        Assert.Contains("breakpoint at 0x140000", c.Execute("continue"));   // the second getpid
        Assert.Equal(2UL, m.Events.Syscalls);
        c.Execute("delete");
        Assert.Contains("the machine has stopped: DebugExit", c.Execute("continue"));
    }

    [Fact]
    public void Write_watchpoint_on_a_user_address_stops_after_the_store()
    {
        var (m, _, c) = New();
        Assert.Contains("watchpoint 1 (write)", c.Execute($"watch 0x{SyscallKernel.UserVar:x}"));
        string o = c.Execute("continue");
        Assert.Contains("watchpoint (write) 0x180100 hit", o);
        Assert.Equal(42UL, m.Memory.Read(SyscallKernel.UserVar, 8));
        Assert.Equal(3, m.Cpu.Cpl);
    }

    [Fact]
    public void Walk_shows_every_level_and_the_kernel_alias_only_under_the_kernel_pgd()
    {
        var (m, _, c) = New();
        c.Execute("until sysret");
        string user = c.Execute("walk 0x150000");
        Assert.Contains("walk 0x150000 under CR3 0x205801 (pcid 0x801), 4-level", user);
        Assert.Contains("PML4E  table 0x205000 [  0]", user);
        Assert.Contains("PDE    table 0x202000 [  0]", user);
        Assert.Contains("= physical 0x150000 (2M page, user read-write exec)", user);
        Assert.Contains("found in: STLB (L2 TLB)", user);   // where the TLB model holds this translation at this point of the run
        string kernelUnderUser = c.Execute("walk 0xffffffff80180300");
        Assert.Contains("not mapped", kernelUnderUser);
        string kernel = c.Execute($"walk 0xffffffff80180300 0x{SyscallKernel.KernelCr3:x}");
        Assert.Contains("PML4E  table 0x204000 [511]", kernel);
        Assert.Contains("PDPTE  table 0x206000 [510]", kernel);
        Assert.Contains("= physical 0x180300 (2M page, supervisor read-write exec)", kernel);
    }

    [Fact]
    public void Memory_reads_have_no_side_effects_on_accessed_bits()
    {
        var (m, _, c) = New();
        c.Execute("until sysret");
        c.Execute("until sysret");   // back from the first getpid
        ulong pml4e = SyscallKernel.UserPgd + 511 * 8;
        // Clear the A bit of the user PDE covering 0x180000 and read through it with x: it stays clear.
        ulong pde = m.Memory.Read(TestSupportPd, 8);
        m.Memory.Write(TestSupportPd, 8, pde & ~PteFlags.Accessed);
        string o = c.Execute("x/2g 0x180100");
        Assert.Contains("0000000000180100: 0x", o);
        Assert.Equal(pde & ~PteFlags.Accessed, m.Memory.Read(TestSupportPd, 8));
        Assert.Equal(0UL, m.Memory.Read(pml4e, 8));
        Assert.Contains("(not mapped)", c.Execute("x/1g 0xffffffff80180300"));
        Assert.Contains(": 0x000000000000002a", c.Execute("xp/1g 0x180300"));
    }

    private const ulong TestSupportPd = Emu64.Tests.Support.TestKernel.Pd;

    [Fact]
    public void Ptdump_lists_the_kernel_alias_only_in_the_kernel_pgd()
    {
        var (_, _, c) = New();
        c.Execute("until sysret");
        string user = c.Execute("ptdump");
        string kernel = c.Execute($"ptdump 0x{SyscallKernel.KernelCr3:x}");
        Assert.Contains("0x0000000000000000-0x0000000000200000        2M  USR RW", user);
        Assert.DoesNotContain("0xffffffff80000000", user);
        Assert.Contains("0xffffffff80000000-0xffffffff80200000        2M", kernel);
        Assert.Contains("pmd", kernel);
    }

    [Fact]
    public void Registers_control_registers_and_msrs_are_shown_decoded()
    {
        var (_, _, c) = New();
        c.Execute("break entry_SYSCALL_64");
        c.Execute("continue");
        Assert.Contains("rip   0000000000140000", c.Execute("regs"));
        string cr = c.Execute("cr");
        Assert.Contains("pcid=0x801", cr);
        Assert.Contains("PCIDE", cr);
        Assert.Contains("SCE LME LMA", cr);
        Assert.Contains("msr 0xc0000082 (lstar) = 0x0000000000140000", c.Execute("msr lstar"));
        Assert.Contains("msr 0xc0000081 (star) = 0x001b000800000000", c.Execute("msr 0xc0000081"));
        Assert.Contains("unknown MSR", c.Execute("msr bogus"));
        Assert.Contains("swapgs", c.Execute("disas entry_SYSCALL_64 3"));
        Assert.Contains("mov     [0x180200],rsp", c.Execute("x/2i entry_SYSCALL_64"));
        string pcid = c.Execute("pcid");
        Assert.Contains("CR4.PCIDE=1, current PCID 0x801", pcid);
        Assert.Matches(@"pcid 0x1: \d+ live entries", pcid);      // the kernel PCID's entries survive NOFLUSH switches
        Assert.Matches(@"pcid 0x801: \d+ live entries", pcid);
        Assert.Contains("syscalls", c.Execute("stats"));
        Assert.Contains("unknown command", c.Execute("frobnicate"));
        Assert.Contains("neither an address nor a known symbol", c.Execute("break nosuch"));
    }
}
