using Emu64.Debugging;
using Emu64.Loader;
using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using Debugger = Emu64.Debugging.Debugger;

namespace Emu64.Tests.Debugging;

/// <summary>Exceptions as the tracer and the debugger see them: a load from an unmapped page raises #PF.</summary>
public class FaultTests
{
    private const ulong Handler = 0x160000, Idt = 0x181000, Idtr = 0x180F00, Unmapped = 0x40000000;

    private static Machine PageFaultMachine()
    {
        var h = new Assembler(64);
        TestKernel.Exit(h, 3);
        h.hlt();
        var w = new MemoryStream();
        h.Assemble(new StreamCodeWriter(w), Handler);
        var gate = new byte[16];
        BitConverter.GetBytes((ushort)(Handler & 0xFFFF)).CopyTo(gate, 0);
        BitConverter.GetBytes((ushort)0x08).CopyTo(gate, 2);
        gate[5] = 0x8E;                                            // present, DPL 0, 64-bit interrupt gate
        BitConverter.GetBytes((ushort)((Handler >> 16) & 0xFFFF)).CopyTo(gate, 6);
        var idt = new byte[256];
        gate.CopyTo(idt, 14 * 16);
        var idtr = new byte[10];
        BitConverter.GetBytes((ushort)(idt.Length - 1)).CopyTo(idtr, 0);
        BitConverter.GetBytes(Idt).CopyTo(idtr, 2);
        var image = TestKernel.Build(a =>
        {
            a.lidt(__fword_ptr[(long)Idtr]);
            a.mov(rax, Unmapped);
            a.mov(rbx, __qword_ptr[rax]);                          // #PF: the identity map ends at 1 GiB
        }, new Dictionary<ulong, byte[]> { [Handler] = w.ToArray(), [Idt] = idt, [Idtr] = idtr });
        var m = new Machine(new MachineOptions { RamBytes = 16UL << 20, MaxInstructions = 1_000_000, Output = new MemoryStream() });
        m.LoadKernel(image, "pf", Array.Empty<BootModule>());
        return m;
    }

    [Fact]
    public void Boundary_trace_reports_a_page_fault_with_vector_error_code_and_cr2()
    {
        var m = PageFaultMachine();
        var sw = new StringWriter();
        using (var t = new Tracer(m, TraceClass.Boundary, TraceFormat.Text, sw, 0, SymbolTable.Empty)) m.Run();
        Assert.Equal(7, m.ExitCode);
        Assert.Contains("cpl=0 exception #PF vector=14 error=0 cr2=40000000", sw.ToString());
    }

    [Fact]
    public void Stepping_a_faulting_instruction_stops_at_the_first_instruction_of_the_handler()
    {
        var m = PageFaultMachine();
        var d = new Debugger(m, SymbolTable.Empty);
        var c = new DebuggerCommands(d);
        Assert.Contains("[exception]", c.Execute("until exception"));
        Assert.Equal(Handler, m.Cpu.Rip);

        var m2 = PageFaultMachine();
        var d2 = new Debugger(m2, SymbolTable.Empty);
        d2.Continue(e => e.Kind == BoundaryKind.Cr3Write);      // into long mode
        while (m2.Cpu.R[0] != Unmapped) d2.Step();                // to the faulting load
        ulong retired = m2.Cpu.Retired;
        var s = d2.Step();
        Assert.Equal(StopKind.Step, s.Kind);
        Assert.Equal(Handler, m2.Cpu.Rip);
        Assert.Equal(retired, m2.Cpu.Retired);                   // the load did not retire
        Assert.Equal(Unmapped, m2.Cpu.CR2);
    }
}
