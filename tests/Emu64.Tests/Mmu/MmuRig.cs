using Emu64.Cpu;
using Emu64.Mmu;
using CpuCore = Emu64.Cpu.Cpu;
using MmuUnit = Emu64.Mmu.Mmu;

namespace Emu64.Tests.Mmu;

/// <summary>
/// A machine put straight into 64-bit mode with paging on (no guest code runs), for tests that drive
/// the MMU directly. Page tables are built in physical memory with <see cref="Map4K"/> and friends.
/// </summary>
public sealed class MmuRig
{
    public readonly Machine Machine;
    public CpuCore Cpu => Machine.Cpu;
    public MmuUnit Mmu => Machine.Cpu.Mmu;
    public const ulong Pml4 = 0x10000;
    private ulong _nextTable = 0x11000;

    public MmuRig(TlbConfig? config = null, ulong ramBytes = 8UL << 20, bool la57 = false)
    {
        Machine = new Machine(new MachineOptions { RamBytes = ramBytes, Tlb = config });
        var c = Cpu;
        c.CR0 = Cr0.Pe | Cr0.Pg | Cr0.Et;
        c.CR4 = Emu64.Cpu.Cr4.Pae | (la57 ? Emu64.Cpu.Cr4.La57 : 0);
        c.EFER = Efer.Lme | Efer.Lma | Efer.Nxe;
        c.CR3 = Pml4;
        c.Cpl = 0;
        Mmu.OnModeChanged();
    }

    public ulong Read(ulong pa) => Machine.Memory.Read(pa, 8);
    public void Write(ulong pa, ulong v) => Machine.Memory.Write(pa, 8, v);

    /// <summary>Address of the entry for <paramref name="la"/> at <paramref name="level"/> in a table.</summary>
    public static ulong EntryAddr(ulong table, ulong la, int level) => table + ((la >> (12 + 9 * (level - 1))) & 0x1FF) * 8;

    /// <summary>Maps <paramref name="la"/> to a page of <paramref name="pageLevel"/> (1 = 4 KiB, 2 = 2 MiB, 3 = 1 GiB) with the leaf flags given; intermediate entries are P|RW|US.</summary>
    public ulong Map(ulong la, ulong frame, int pageLevel, ulong leafFlags, ulong cr3 = Pml4)
    {
        int top = (Cpu.CR4 & Emu64.Cpu.Cr4.La57) != 0 ? 5 : 4;
        ulong table = cr3 & MmuUnit.PhysAddrMask;
        for (int level = top; level > pageLevel; level--)
        {
            ulong addr = EntryAddr(table, la, level);
            ulong e = Read(addr);
            if ((e & PteFlags.Present) == 0)
            {
                e = _nextTable | PteFlags.Present | PteFlags.Write | PteFlags.User;
                _nextTable += 0x1000;
                Write(addr, e);
            }
            table = e & MmuUnit.PhysAddrMask;
        }
        ulong leaf = EntryAddr(table, la, pageLevel);
        Write(leaf, frame | leafFlags | (pageLevel > 1 ? PteFlags.Huge : 0));
        return leaf;
    }

    public ulong Map4K(ulong la, ulong frame, ulong flags = PteFlags.Present | PteFlags.Write) => Map(la, frame, 1, flags);

    /// <summary>A fresh table page (zeroed).</summary>
    public ulong NewTable() { ulong t = _nextTable; _nextTable += 0x1000; return t; }

    /// <summary>Translates with faults captured: returns the physical address or null, and the fault if any.</summary>
    public (ulong? Pa, uint Err, ulong Cr2) Try(ulong la, Access acc)
    {
        Mmu.CaptureFaults = true;
        Mmu.LastFault = null;
        ulong pa = Mmu.Translate(la, acc);
        Mmu.CaptureFaults = false;
        if (Mmu.LastFault is { } f) return (null, f.ErrorCode, f.Cr2);
        return (pa, 0, 0);
    }

    /// <summary>
    /// Decodes and executes one instruction at <paramref name="rip"/> in the current mode and CPL (no fetch
    /// translation); returns the vector and error code of the fault it raised, or null.
    /// </summary>
    public (int Vector, uint Error)? Exec(Action<Iced.Intel.Assembler> emit, ulong rip = 0x7000)
    {
        int bits = Cpu.Mode == CpuMode.Long64 ? 64 : 32;
        var asm = new Iced.Intel.Assembler(bits);
        emit(asm);
        var ms = new MemoryStream();
        asm.Assemble(new Iced.Intel.StreamCodeWriter(ms), rip);
        var insn = new Insn();
        DecodeCache.DecodeOne(ms.ToArray(), rip, bits, ref insn);
        Cpu.Rip = rip + insn.Length;
        try { unsafe { insn.Exec(Cpu, ref insn); } }
        catch (GuestFault f) { return (f.Vector, f.ErrorCode); }
        return null;
    }

    /// <summary>Puts the CPU in 64-bit mode at a CPL (CS as a 64-bit code segment).</summary>
    public void Long64(int cpl = 0)
    {
        Cpu.Mode = CpuMode.Long64;
        Cpu.Cpl = cpl;
    }

    /// <summary>A configuration with tiny structures (one entry each) so per-case invalidation is cheap.</summary>
    public static TlbConfig Tiny()
    {
        var c = new TlbConfig();
        foreach (var (_, a) in c.Arrays()) { a.Entries = 1; a.Ways = 1; }
        return c;
    }
}
