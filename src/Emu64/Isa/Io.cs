using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Isa;

/// <summary>IN and OUT, with the protected-mode I/O permission check (IOPL, then the TSS I/O bitmap).</summary>
public static unsafe class Io
{
    internal static void Register()
    {
        HandlerTable.Map(Mnemonic.In, &In);
        HandlerTable.Map(Mnemonic.Out, &Out);
    }

    /// <summary>
    /// SDM vol. 1 §19.5: when CPL > IOPL every port bit in the TSS I/O bitmap must be clear. In virtual-8086 mode the
    /// bitmap is checked whatever IOPL is (§19.5.2, vol. 3A §20.2.8.1). The bitmap exists only in a 32-bit (or 64-bit)
    /// TSS: with a 16-bit TSS a checked access is #GP(0).
    /// </summary>
    public static void CheckIoPermission(CpuCore cpu, ushort port, int size)
    {
        if (cpu.WatchIo) cpu.WatchIoPort(port, size);   // I/O breakpoints (CR4.DE, R/W=10): a #DB trap after the instruction
        if (cpu.Mode == CpuMode.Real || (cpu.Cpl <= cpu.Iopl && cpu.Mode != CpuMode.Virtual8086)) return;
        var tr = cpu.Tr;
        if (tr.Limit < 0x67 || (tr.Type & 8) == 0) cpu.Gp();
        ulong mapBase = cpu.ReadImplicit(tr.Base + 0x66, 2);
        ulong byteOff = mapBase + (ulong)(port >> 3);
        if (byteOff + 1 > tr.Limit) cpu.Gp();
        ulong bits = cpu.ReadImplicit(tr.Base + byteOff, 2);
        ulong mask = ((1UL << size) - 1) << (port & 7);
        if ((bits & mask) != 0) cpu.Gp();
    }

    private static ushort Port(CpuCore cpu, ref Insn i, int op)
        => (op == 0 ? i.K0 : i.K1) == Opnd.Imm ? (ushort)(i.Imm & 0xFF) : (ushort)cpu.GetReg(Reg.RDX, 2);

    private static void In(CpuCore cpu, ref Insn i)
    {
        int size = i.Size;
        ushort port = Port(cpu, ref i, 1);
        CheckIoPermission(cpu, port, size);
        cpu.SetReg(Reg.RAX, size, cpu.Io.In(port, size));
    }

    private static void Out(CpuCore cpu, ref Insn i)
    {
        int size = i.Size1;
        ushort port = Port(cpu, ref i, 0);
        CheckIoPermission(cpu, port, size);
        cpu.Io.Out(port, size, (uint)cpu.GetReg(Reg.RAX, size));
    }
}
