using Emu64.Cpu;
using Emu64.Isa;
using Emu64.Mmu;
using CpuCore = Emu64.Cpu.Cpu;
using MmuUnit = Emu64.Mmu.Mmu;

namespace Emu64.Tests.Mmu.Legacy;

using PagingMode = Emu64.Mmu.PagingMode;

/// <summary>
/// A machine in 32-bit protected mode (flat 32-bit segments, CPL 0, IA32_EFER.LME = 0) whose paging is turned on
/// through the real MOV CR0/CR3/CR4 paths (<see cref="SystemInsns.WriteCr0"/> and friends), so the PDPTE loads and
/// their #GP checks run as they do for a guest. Page tables are written into physical memory by the test.
/// </summary>
public sealed class LegacyRig
{
    public readonly Machine Machine;
    public CpuCore Cpu => Machine.Cpu;
    public MmuUnit Mmu => Machine.Cpu.Mmu;

    public LegacyRig(TlbConfig? config = null)
    {
        Machine = new Machine(new MachineOptions { RamBytes = 16UL << 20, Tlb = config, Output = Stream.Null });
        var c = Cpu;
        c.CR0 = Cr0.Pe | Cr0.Et;
        for (int s = 0; s < 6; s++)
            c.Segs[s] = new Segment { Selector = (ushort)(s == Seg.CS ? 0x08 : 0x10), Limit = 0xFFFFFFFF,
                                      Attr = (ushort)(s == Seg.CS ? 0xC09B : 0xC093) };
        c.Rflags = RFlags.Reserved1;
        c.UpdateMode();
        Mmu.OnModeChanged();
    }

    public ulong Read4(ulong pa) => Machine.Memory.Read(pa, 4);
    public void Write4(ulong pa, ulong v) => Machine.Memory.Write(pa, 4, v);
    public ulong Read8(ulong pa) => Machine.Memory.Read(pa, 8);
    public void Write8(ulong pa, ulong v) => Machine.Memory.Write(pa, 8, v);

    /// <summary>Runs one control-register write as MOV CRn does; returns the fault it raised, or null.</summary>
    public (int Vector, uint Error)? Mov(int cr, ulong value)
    {
        try
        {
            switch (cr)
            {
                case 0: SystemInsns.WriteCr0(Cpu, value); break;
                case 3: SystemInsns.WriteCr3(Cpu, value); break;
                case 4: SystemInsns.WriteCr4(Cpu, value); break;
                default: throw new ArgumentOutOfRangeException(nameof(cr));
            }
        }
        catch (GuestFault f) { return (f.Vector, f.ErrorCode); }
        return null;
    }

    /// <summary>Sets CR4 and CR3, then CR0.PG (and CR0.WP when asked), asserting none of them faults.</summary>
    public void EnablePaging(ulong cr4, ulong cr3, bool wp = true, bool nxe = false)
    {
        if (nxe) Cpu.EFER |= Efer.Nxe;
        Assert.Null(Mov(4, cr4));
        Assert.Null(Mov(3, cr3));
        Assert.Null(Mov(0, Cpu.CR0 | Cr0.Pg | (wp ? Cr0.Wp : 0)));
        Assert.Equal(cr4 & Cr4.Pae, 0UL + (Mmu.Mode == PagingMode.Pae ? Cr4.Pae : 0));
        Assert.NotEqual(PagingMode.None, Mmu.Mode);
    }

    /// <summary>Translates with faults captured: the physical address, or null with the error code and CR2.</summary>
    public (ulong? Pa, uint Err, ulong Cr2) Try(ulong la, Access acc)
    {
        Mmu.CaptureFaults = true;
        Mmu.LastFault = null;
        ulong pa = Mmu.Translate(la, acc);
        Mmu.CaptureFaults = false;
        if (Mmu.LastFault is { } f) return (null, f.ErrorCode, f.Cr2);
        return (pa, 0, 0);
    }
}
