using Emu64.Cpu;
using Emu64.Debugging;
using Emu64.Loader;
using Emu64.Tests.Foundation;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Debug;

/// <summary>
/// The debugger's watchpoints and hardware breakpoints on top of the access-checking path of the debug registers:
/// a watchpoint sees the iteration of a string instruction that touches the word, and the guest's own DR0-DR7 are left
/// to the guest.
/// </summary>
public class DebuggerWatchTests
{
    private const ulong Data = Emu64.Tests.Support.TestKernel.Data;

    private static (Machine M, DebuggerCommands C, Func<Label, ulong> At, Label Rep) Boot()
    {
        Label rep = default;
        var b = GuestKit.Build((a, k) =>
        {
            rep = a.CreateLabel();
            a.mov(rdi, Data + 0x100); a.mov(ecx, 64); a.mov(al, 0x55); a.cld();
            a.Label(ref rep);
            a.rep.stosb();
            a.ud2();
        });
        var m = new Machine(new MachineOptions { RamBytes = 128UL << 20, Output = Stream.Null, MaxInstructions = 2_000_000 });
        m.LoadKernel(b.Image, "kernel", Array.Empty<BootModule>());
        return (m, new DebuggerCommands(new Debugger(m, SymbolTable.Empty)), b.At, rep);
    }

    [Fact]
    public void A_write_watchpoint_stops_after_the_REP_STOSB_iteration_that_writes_the_watched_byte()
    {
        var (m, c, at, rep) = Boot();
        Assert.StartsWith("watchpoint 1 (write) on 0x180120..0x180121", c.Execute($"watch 0x{Data + 0x120:x} 1"));
        string o = c.Execute("continue");
        Assert.StartsWith($"watchpoint (write) 0x{Data + 0x120:x} hit; now at 0x{at(rep):x}", o);
        Assert.Equal(64UL - 0x21, m.Cpu.R[Reg.RCX]);               // 0x21 bytes stored, RIP still on the instruction
        Assert.Equal(0x55UL, m.Memory.Read(Data + 0x120, 1));
        Assert.Equal(0UL, m.Memory.Read(Data + 0x121, 1));
        Assert.Equal(0x400UL, m.Cpu.Dr7Value);                     // the guest's DR7 was not used for it
        c.Execute("delete");
        c.Execute("continue");
        Assert.Equal(0x55UL, m.Memory.Read(Data + 0x13F, 1));      // and the store then ran to the end
    }

    [Fact]
    public void Hbreak_stops_before_the_instruction_and_dr_shows_the_guest_registers()
    {
        var (m, c, at, rep) = Boot();
        Assert.Equal($"hardware breakpoint at 0x{at(rep):x}\n", c.Execute($"hbreak 0x{at(rep):x}"));
        Assert.StartsWith($"breakpoint at 0x{at(rep):x}", c.Execute("continue"));
        Assert.Equal(64UL, m.Cpu.R[Reg.RCX]);
        Assert.Contains($"hardware breakpoint 0x{at(rep):x}", c.Execute("info"));
        string dr = c.Execute("dr");
        Assert.Contains("dr0  0000000000000000 [off exec len 1]", dr);
        Assert.Contains("dr6  00000000ffff0ff0 []", dr);
        Assert.Contains("dr7  0000000000000400 []", dr);
    }
}
