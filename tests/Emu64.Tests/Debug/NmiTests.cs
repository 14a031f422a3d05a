using Emu64.Cpu;
using Emu64.Debugging;
using Emu64.Loader;
using Emu64.Tests.Foundation;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Debug;

/// <summary>
/// NMI (SDM vol. 3A §6.7.1, §11.5.1, §11.6.1): delivery through the local APIC — LINT1 in NMI mode and a self-IPI with
/// delivery mode NMI — as vector 2 whatever IF says, blocking from its delivery to the next IRET, one NMI kept pending
/// while blocked (more are lost), and the debugger's `nmi` command that pulses LINT1.
/// </summary>
public class NmiTests
{
    private const ulong NmiCount = GuestKit.Results + 0x800, SeenInside = GuestKit.Results + 0x808;
    private const uint SelfNmi = (1u << 18) | (4u << 8);   // ICR: shorthand self, delivery mode NMI, vector 0

    /// <summary>
    /// An NMI handler that counts, and on its first run sends two more self-NMIs, then records the count it sees
    /// (still 1 if neither interrupted it) before its IRET.
    /// </summary>
    private static void NmiHandler(Assembler a, GuestKit k)
    {
        var handler = a.CreateLabel();
        var done = a.CreateLabel();
        var over = a.CreateLabel();
        a.jmp(over);
        a.Label(ref handler);
        a.push(rax); a.push(rcx); a.push(rdx);
        a.inc(__qword_ptr[NmiCount]);
        a.cmp(__qword_ptr[NmiCount], 1);
        a.jne(done);
        X2Apic.Write(a, 0x830, SelfNmi);
        X2Apic.Write(a, 0x830, SelfNmi);
        a.mov(rax, __qword_ptr[NmiCount]);
        a.mov(__qword_ptr[SeenInside], rax);
        a.Label(ref done);
        a.pop(rdx); a.pop(rcx); a.pop(rax);
        a.iretq();
        a.Label(ref over);
        a.mov(__qword_ptr[NmiCount], 0);
        k.SetGate(Vec.NMI, handler);
    }

    [Fact]
    public void A_self_NMI_IPI_is_taken_with_IF_clear_and_NMIs_sent_inside_its_handler_wait_for_IRET_as_one()
    {
        Label after = default;
        var t = Trap.Run((a, k) =>
        {
            after = a.CreateLabel();
            NmiHandler(a, k);
            a.cli();
            X2Apic.Enable(a);
            X2Apic.Write(a, 0x830, SelfNmi);
            a.Label(ref after);
            a.nop();
            a.ud2();
        }).Expect(Vec.UD);
        Assert.Equal(1UL, t.Mem(SeenInside));      // blocked inside the handler
        Assert.Equal(2UL, t.Mem(NmiCount));        // the two sent while blocked became one, taken after IRET
        Assert.False(t.M.NmiPending);
        Assert.Equal(2, t.M.Events.Recent(16).Count(e => e.Kind == BoundaryKind.Interrupt && e.Vector == Vec.NMI));
    }

    private static (Machine M, Label Spin, Func<Label, ulong> At) Spinning(bool programLint1)
    {
        Label spin = default;
        var b = GuestKit.Build((a, k) =>
        {
            spin = a.CreateLabel();
            NmiHandler(a, k);
            X2Apic.Enable(a);
            if (programLint1) X2Apic.Write(a, 0x836, 4u << 8);   // LVT LINT1: NMI, unmasked
            a.cli();
            a.Label(ref spin);
            a.cmp(__qword_ptr[NmiCount], 0);
            a.je(spin);
            a.ud2();
        });
        var m = new Machine(new MachineOptions { RamBytes = 128UL << 20, Output = Stream.Null, MaxInstructions = 2_000_000 });
        m.LoadKernel(b.Image, "kernel", Array.Empty<BootModule>());
        return (m, spin, b.At);
    }

    [Fact]
    public void LINT1_in_NMI_mode_delivers_an_NMI_at_the_next_boundary_and_a_masked_LINT1_drops_it()
    {
        var (m, _, _) = Spinning(programLint1: true);
        Assert.Equal(StopReason.None, m.Run(20_000));
        Assert.Equal(0UL, m.Memory.Read(NmiCount, 8));
        m.Platform.Apic.Lint1();
        Assert.True(m.NmiPending);
        m.Run();
        Assert.Equal(1UL, m.Memory.Read(SeenInside, 8));
        Assert.Equal(2UL, m.Memory.Read(NmiCount, 8));          // the LINT1 NMI, then the one its handler sent
        Assert.Equal(StopReason.Shutdown, m.StopReason);         // the loop saw the NMI and reached UD2

        var (m2, _, _) = Spinning(programLint1: false);
        Assert.Equal(StopReason.None, m2.Run(20_000));
        m2.Platform.Apic.Lint1();                               // LVT LINT1 still masked (reset value 0x10000)
        Assert.False(m2.NmiPending);
        Assert.Equal(StopReason.None, m2.Run(20_000));
        Assert.Equal(0UL, m2.Memory.Read(NmiCount, 8));
    }

    [Fact]
    public void The_debugger_nmi_command_pulses_LINT1_and_says_what_became_of_it()
    {
        var (m, _, _) = Spinning(programLint1: true);
        var c = new DebuggerCommands(new Debugger(m, SymbolTable.Empty));
        Assert.Contains("#", c.Execute("step 20000"));
        Assert.Equal("NMI pending: it is taken at the next instruction boundary\n", c.Execute("nmi"));
        Assert.Equal("an NMI was already pending (NMIs do not queue beyond one)\n", c.Execute("nmi"));
        c.Execute("step 60");
        Assert.Equal(1UL, m.Memory.Read(SeenInside, 8));
        Assert.Equal(2UL, m.Memory.Read(NmiCount, 8));          // the debugger's NMI, then the one its handler sent

        var (m2, _, _) = Spinning(programLint1: false);
        var c2 = new DebuggerCommands(new Debugger(m2, SymbolTable.Empty));
        c2.Execute("step 20000");
        Assert.Equal("LINT1 pulsed, no NMI: LVT LINT1 = 0x10000 (masked)\n", c2.Execute("nmi"));
    }
}
