using Emu64.Cpu;

namespace Emu64.Tests.Robustness;

/// <summary>
/// A machine put straight into 64-bit mode without booting, for running arbitrary code cheaply:
/// identity map of the first 4 MiB (2 MiB pages, user-accessible), a GDT with kernel and user
/// segments and a TSS, and an IDT whose every vector leads to a stub that exits through
/// isa-debug-exit with the vector number (so any exception ends the run with status 2*vector+1).
/// </summary>
public static class RawMachine
{
    public const ulong Pml4 = 0x1000, Pdpt = 0x2000, Pd = 0x3000, Gdt = 0x4000, Tss = 0x5000, Idt = 0x6000;
    public const ulong Stubs = 0x8000, Code = 0x10000, Stack = 0x70000, Rsp0 = 0x7F000, Ist1 = 0x7E000;
    public const ushort KCode = 0x08, KData = 0x10, UCode = 0x2B, UData = 0x23, TssSel = 0x30;

    public static Machine Create(ReadOnlySpan<byte> code, bool user, ulong maxInstructions, Random? regs = null)
    {
        var m = new Machine(new MachineOptions { RamBytes = 4UL << 20, MaxInstructions = maxInstructions, Output = Stream.Null });
        var mem = m.Memory;
        void Q(ulong a, ulong v) => mem.Write(a, 8, v);
        Q(Pml4, Pdpt | 7);
        Q(Pdpt, Pd | 7);
        Q(Pd, 0x000000 | 0x87);
        Q(Pd + 8, 0x200000 | 0x87);
        // GDT: null, kernel code 64, kernel data, (unused 0x18), user data, user code 64, TSS (16 bytes)
        Q(Gdt + 0x08, 0x00AF9A000000FFFF);
        Q(Gdt + 0x10, 0x00CF92000000FFFF);
        Q(Gdt + 0x18, 0x00CFFA000000FFFF);
        Q(Gdt + 0x20, 0x00CFF2000000FFFF);
        Q(Gdt + 0x28, 0x00AFFA000000FFFF);
        ulong tssLimit = 0x67;
        Q(Gdt + 0x30, tssLimit | ((Tss & 0xFFFFFF) << 16) | (0x89UL << 40) | ((Tss >> 24) << 56));
        Q(Gdt + 0x38, Tss >> 32);
        Q(Tss + 4, Rsp0);
        Q(Tss + 0x24, Ist1);
        mem.Write(Tss + 0x66, 2, 0x68);   // no I/O bitmap
        for (int v = 0; v < 256; v++)
        {
            ulong h = Stubs + (ulong)v * 16;
            // mov eax, v ; out 0xf4, eax ; hlt ; jmp $-1
            byte[] stub = [0xB8, (byte)v, 0, 0, 0, 0xE7, 0xF4, 0xF4, 0xEB, 0xFD];
            mem.WriteBytes(h, stub);
            ulong lo = (h & 0xFFFF) | ((ulong)KCode << 16) | (0x8EUL << 40) | ((h >> 16 & 0xFFFF) << 48);
            if (v == 8) lo |= 1UL << 32;   // #DF on IST1
            Q(Idt + (ulong)v * 16, lo);
            Q(Idt + (ulong)v * 16 + 8, h >> 32);
        }
        mem.WriteBytes(Code, code);

        var c = m.Cpu;
        c.Gdtr = new TableReg { Base = Gdt, Limit = 0x3F };
        c.Idtr = new TableReg { Base = Idt, Limit = 0xFFF };
        c.Tr = new Segment { Selector = TssSel, Base = Tss, Limit = (uint)tssLimit, Attr = 0x8B };
        c.CR3 = Pml4;
        c.CR4 = Emu64.Cpu.Cr4.Pae | Emu64.Cpu.Cr4.Pge | Emu64.Cpu.Cr4.Osfxsr;
        c.EFER = Emu64.Cpu.Efer.Lme | Emu64.Cpu.Efer.Lma | Emu64.Cpu.Efer.Nxe | Emu64.Cpu.Efer.Sce;
        c.CR0 = Emu64.Cpu.Cr0.Pe | Emu64.Cpu.Cr0.Pg | Emu64.Cpu.Cr0.Wp | Emu64.Cpu.Cr0.Et | Emu64.Cpu.Cr0.Ne;
        c.Star = ((ulong)0x18 << 48) | ((ulong)KCode << 32);
        c.Lstar = Stubs;   // SYSCALL lands on the vector-0 stub
        var cs = new Segment { Selector = user ? UCode : KCode, Limit = 0xFFFFFFFF, Attr = (ushort)(user ? 0xA0FB : 0xA09B) };
        var ds = new Segment { Selector = user ? UData : KData, Limit = 0xFFFFFFFF, Attr = (ushort)(user ? 0xC0F3 : 0xC093) };
        for (int s = 0; s < 6; s++) c.Segs[s] = s == Seg.CS ? cs : ds;
        if (regs != null)
            for (int r = 0; r < 16; r++) c.R[r] = regs.Next(4) == 0 ? (ulong)regs.NextInt64() : (ulong)regs.Next(0x10000, 0x3F0000);
        c.Rsp = Stack;
        c.Rip = Code;
        c.Rflags = RFlags.Reserved1 | RFlags.IF;
        c.UpdateMode();
        return m;
    }
}
