using Iced.Intel;
using Emu64.Cpu;
using Emu64.Mmu;
using CpuCore = Emu64.Cpu.Cpu;
using Cr0Bits = Emu64.Cpu.Cr0;
using Cr4Bits = Emu64.Cpu.Cr4;
using EferBits = Emu64.Cpu.Efer;

namespace Emu64.Isa;

/// <summary>
/// System instructions: control and debug registers, MSRs, CPUID, descriptor-table registers, TLB
/// maintenance, flags and halting. Privilege transfers (far branches, IRET, INT, SYSCALL) are in
/// Privilege.cs.
/// </summary>
public static unsafe partial class SystemInsns
{
    internal static void Register()
    {
        HandlerTable.Map(&MovFromCr, Code.Mov_r64_cr, Code.Mov_r32_cr);
        HandlerTable.Map(&MovToCr, Code.Mov_cr_r64, Code.Mov_cr_r32);
        HandlerTable.Map(&MovFromDr, Code.Mov_r64_dr, Code.Mov_r32_dr);
        HandlerTable.Map(&MovToDr, Code.Mov_dr_r64, Code.Mov_dr_r32);
        HandlerTable.Map(Mnemonic.Rdmsr, &Rdmsr);
        HandlerTable.Map(Mnemonic.Wrmsr, &Wrmsr);
        HandlerTable.Map(Mnemonic.Cpuid, &CpuidInsn);
        HandlerTable.Map(Mnemonic.Rdtsc, &Rdtsc);
        HandlerTable.Map(Mnemonic.Rdtscp, &Rdtscp);
        HandlerTable.Map(Mnemonic.Rdpid, &Rdpid);
        HandlerTable.Map(Mnemonic.Rdpmc, &Rdpmc);
        HandlerTable.Map(&Lgdt, Mnemonic.Lgdt, Mnemonic.Lidt);
        HandlerTable.Map(&Sgdt, Mnemonic.Sgdt, Mnemonic.Sidt);
        HandlerTable.Map(Mnemonic.Ltr, &Ltr);
        HandlerTable.Map(Mnemonic.Lldt, &Lldt);
        HandlerTable.Map(&Str, Mnemonic.Str, Mnemonic.Sldt);
        HandlerTable.Map(Mnemonic.Hlt, &Hlt);
        HandlerTable.Map(Mnemonic.Cli, &Cli);
        HandlerTable.Map(Mnemonic.Sti, &Sti);
        HandlerTable.Map(&Pushf, Mnemonic.Pushf, Mnemonic.Pushfd, Mnemonic.Pushfq);
        HandlerTable.Map(&Popf, Mnemonic.Popf, Mnemonic.Popfd, Mnemonic.Popfq);
        HandlerTable.Map(Mnemonic.Invlpg, &Invlpg);
        HandlerTable.Map(Mnemonic.Invpcid, &Invpcid);
        HandlerTable.Map(&Privileged0Nop, Mnemonic.Wbinvd, Mnemonic.Invd);
        HandlerTable.Map(&Nop, Mnemonic.Clflush, Mnemonic.Clflushopt);
        HandlerTable.Map(Mnemonic.Clts, &Clts);
        HandlerTable.Map(Mnemonic.Smsw, &Smsw);
        HandlerTable.Map(Mnemonic.Lmsw, &Lmsw);
        HandlerTable.Map(&RdFsGsBase, Mnemonic.Rdfsbase, Mnemonic.Rdgsbase);
        HandlerTable.Map(&WrFsGsBase, Mnemonic.Wrfsbase, Mnemonic.Wrgsbase);
        HandlerTable.Map(Mnemonic.Stac, &Stac);
        HandlerTable.Map(Mnemonic.Clac, &Clac);
        HandlerTable.Map(Mnemonic.Rdpkru, &Rdpkru);
        HandlerTable.Map(Mnemonic.Wrpkru, &Wrpkru);
        HandlerTable.Map(&Rdrand, Mnemonic.Rdrand, Mnemonic.Rdseed);
        HandlerTable.Map(&Ud2, Mnemonic.Ud2, Mnemonic.Ud0, Mnemonic.Ud1);
        RegisterPrivilege();
        RegisterDescriptors();
    }

    private static void Nop(CpuCore cpu, ref Insn i) { }

    /// <summary>UD0/UD1/UD2 are implemented: their job is #UD (not counted as unimplemented encodings).</summary>
    private static void Ud2(CpuCore cpu, ref Insn i) => cpu.Ud();

    internal static void RequireCpl0(CpuCore cpu) { if (cpu.Cpl != 0) cpu.Gp(); }

    private static void Privileged0Nop(CpuCore cpu, ref Insn i) => RequireCpl0(cpu);

    // ---- control registers (SDM vol. 3A §2.5, MOV—Move to/from Control Registers) ------------

    private static void MovFromCr(CpuCore cpu, ref Insn i)
    {
        RequireCpl0(cpu);
        ulong v = i.R1 switch
        {
            0 => cpu.CR0, 2 => cpu.CR2, 3 => cpu.CR3, 4 => cpu.CR4, 8 => cpu.CR8,
            _ => Ud(cpu),
        };
        cpu.SetReg(i.R0, i.Size, v);
    }

    private static ulong Ud(CpuCore cpu) { cpu.Ud(); return 0; }

    private static void MovToCr(CpuCore cpu, ref Insn i)
    {
        RequireCpl0(cpu);
        ulong v = cpu.GetReg(i.R1, i.Size);
        switch (i.R0)
        {
            case 0: WriteCr0(cpu, v); break;
            case 2: cpu.CR2 = v; break;
            case 3: WriteCr3(cpu, v); cpu.Machine.ResyncFetch(cpu); break;   // the chain goes on after it (Block.Resync)
            case 4: WriteCr4(cpu, v); break;
            case 8: if ((v & ~0xFUL) != 0) cpu.Gp(); cpu.CR8 = v; cpu.Machine.OnTprWrite(v); break;
            default: cpu.Ud(); break;
        }
        // MOV to CR3 ends its block (DecodeCache.EndsBlock) and the chain may go on after it (Block.Resync), as after MOV
        // to CR8 (DecodeCache.ContinuesChain): a lower task priority that lets a pending interrupt through raises the
        // interrupt line, which ends the block and the chain right after this instruction. CR0 and CR4 can change the
        // mode or paging: back to the outer loop.
        if (i.R0 is not (3 or 8)) cpu.ExitBlock = true;
    }

    public static void WriteCr0(CpuCore cpu, ulong v)
    {
        if ((v >> 32) != 0 && cpu.Is64) cpu.Gp();
        v &= 0xFFFFFFFF;
        ulong old = cpu.CR0;
        bool pg = (v & Cr0Bits.Pg) != 0, pe = (v & Cr0Bits.Pe) != 0;
        if (pg && !pe) cpu.Gp();
        if ((v & Cr0Bits.Nw) != 0 && (v & Cr0Bits.Cd) == 0) cpu.Gp();
        bool wasPg = (old & Cr0Bits.Pg) != 0;
        if (pg && !wasPg && (cpu.EFER & EferBits.Lme) != 0)
        {
            // Activating IA-32e mode: requires PAE, and CS must not be a 64-bit segment yet.
            if ((cpu.CR4 & Cr4Bits.Pae) == 0) cpu.Gp();
        }
        if (!pg && wasPg)
        {
            if ((cpu.CR4 & Cr4Bits.Pcide) != 0) cpu.Gp();      // clearing PG with PCIDE=1 (SDM §4.10.1)
            if (cpu.Is64) cpu.Gp();                             // cannot leave paging from 64-bit code
        }
        // PAE paging after the write (PG=1, CR4.PAE=1, LME=0): setting PG, or changing CD or NW, loads the PDPTE
        // registers from CR3; a present PDPTE with a reserved bit set is #GP(0) and nothing changes (SDM §4.4.1).
        if (pg && (cpu.EFER & EferBits.Lme) == 0 && (cpu.CR4 & Cr4Bits.Pae) != 0
            && (!wasPg || ((old ^ v) & (Cr0Bits.Cd | Cr0Bits.Nw)) != 0) && !cpu.Mmu.LoadPdptes(cpu.CR3))
            cpu.Gp();
        cpu.CR0 = v | Cr0Bits.Et;
        if (pg && !wasPg && (cpu.EFER & EferBits.Lme) != 0) cpu.EFER |= EferBits.Lma;
        if (!pg && wasPg) cpu.EFER &= ~EferBits.Lma;
        cpu.Mmu.OnCr0Write(old, cpu.CR0);
        cpu.UpdateMode();
        cpu.ExitBlock = true;
    }

    public static void WriteCr3(CpuCore cpu, ulong v)
    {
        bool pcide = (cpu.CR4 & Cr4Bits.Pcide) != 0;
        bool noFlush = pcide && (v & Emu64.Cpu.Cr3.NoFlush) != 0;
        // Bit 63 is NOFLUSH only with PCIDE=1 and is never stored; otherwise it is a reserved bit like
        // the others above MAXPHYADDR (SDM vol. 3A §4.10.4.1, §2.5).
        ulong stored = pcide ? v & ~Emu64.Cpu.Cr3.NoFlush : v;
        if (cpu.LongMode && (stored & ~(Mmu.Mmu.PhysAddrMask | 0xFFF)) != 0) cpu.Gp();   // reserved bits
        // PAE paging: MOV CR3 loads the four PDPTE registers; a bad present PDPTE is #GP(0), CR3 unchanged (SDM §4.4.1).
        if (cpu.PagingOn && !cpu.LongMode && (cpu.CR4 & Cr4Bits.Pae) != 0 && !cpu.Mmu.LoadPdptes(stored)) cpu.Gp();
        cpu.LoadCr3(stored, noFlush);
    }

    public static void WriteCr4(CpuCore cpu, ulong v)
    {
        ulong old = cpu.CR4;
        if ((v & ~Cr4Bits.Supported) != 0) cpu.Gp();
        if ((v & Cr4Bits.Pcide) != 0 && !cpu.HasPcid) cpu.Gp();
        if ((v & Cr4Bits.La57) != 0 && !cpu.HasLa57) cpu.Gp();
        if ((v & Cr4Bits.Umip) != 0 && !cpu.HasUmip) cpu.Gp();
        if ((v & Cr4Bits.Pke) != 0 && (cpu.Leaf7Ecx & (1u << 3)) == 0) cpu.Gp();
        if ((v & (Cr4Bits.Smep)) != 0 && !cpu.HasFeature7Ebx(7)) cpu.Gp();
        if ((v & (Cr4Bits.Smap)) != 0 && !cpu.HasFeature7Ebx(20)) cpu.Gp();
        if ((v & Cr4Bits.Fsgsbase) != 0 && !cpu.HasFeature7Ebx(0)) cpu.Gp();
        // Setting PCIDE requires IA-32e mode and CR3[11:0] = 0 (SDM §4.10.1).
        if ((v & Cr4Bits.Pcide) != 0 && (old & Cr4Bits.Pcide) == 0 && (!cpu.LongMode || (cpu.CR3 & 0xFFF) != 0)) cpu.Gp();
        // PAE cannot be cleared and LA57 cannot change in IA-32e mode (SDM vol. 3A §2.5, CR4.LA57: "cannot be modified in
        // IA-32e mode"). Outside it LA57 may change, with paging on or off: 32-bit and PAE paging ignore it.
        if (cpu.LongMode && (v & Cr4Bits.Pae) == 0) cpu.Gp();
        if (((v ^ old) & Cr4Bits.La57) != 0 && cpu.LongMode) cpu.Gp();
        // Outside IA-32e mode PAE may change with paging on (32-bit <-> PAE paging). A write that leaves PAE paging on
        // and changes PAE, PGE, PSE or SMEP loads the PDPTE registers from CR3 (#GP(0) on a bad one, SDM §4.4.1).
        if (cpu.PagingOn && !cpu.LongMode && (v & Cr4Bits.Pae) != 0
            && ((v ^ old) & (Cr4Bits.Pae | Cr4Bits.Pge | Cr4Bits.Pse | Cr4Bits.Smep)) != 0 && !cpu.Mmu.LoadPdptes(cpu.CR3))
            cpu.Gp();
        cpu.CR4 = v;
        cpu.Mmu.OnCr4Write(old, v);
        if (((v ^ old) & Cr4Bits.De) != 0) cpu.UpdateDebugArmed();   // I/O breakpoints exist only with CR4.DE
    }

    // ---- debug registers ---------------------------------------------------------------------

    private static int DrIndex(CpuCore cpu, int n)
    {
        if (n is 4 or 5)
        {
            if ((cpu.CR4 & Cr4Bits.De) != 0) cpu.Ud();
            n += 2;   // DR4/DR5 alias DR6/DR7 when CR4.DE = 0
        }
        if (n > 7) cpu.Ud();
        return n;
    }

    /// <summary>
    /// DR7.GD (general detect): any MOV to or from a debug register raises a fault-like #DB with DR6.BD before the
    /// instruction runs; delivering the #DB clears GD so the handler itself can use the debug registers.
    /// </summary>
    private static void GeneralDetect(CpuCore cpu)
    {
        if ((cpu.DR[7] & Dr7.Gd) == 0) return;
        cpu.ReportDebug(0, Dr6.Bd);
        cpu.Fault(Vec.DB);
    }

    private static void MovFromDr(CpuCore cpu, ref Insn i)
    {
        RequireCpl0(cpu);
        int n = DrIndex(cpu, i.R1);
        GeneralDetect(cpu);
        ulong v = n switch { 6 => cpu.Dr6Value, 7 => cpu.Dr7Value, _ => cpu.DR[n] };
        cpu.SetReg(i.R0, i.Size, v);
    }

    private static void MovToDr(CpuCore cpu, ref Insn i)
    {
        RequireCpl0(cpu);
        int n = DrIndex(cpu, i.R0);
        GeneralDetect(cpu);
        ulong v = cpu.GetReg(i.R1, i.Size);
        if (n >= 6 && (v >> 32) != 0) cpu.Gp();            // DR6/DR7 bits 63:32 must be written as 0 (64-bit mode)
        cpu.DR[n] = n == 7 ? v & Dr7.Writable : v;
        cpu.UpdateDebugArmed();
        cpu.ExitBlock = true;                               // a breakpoint may be armed: back to the run loop
        cpu.Machine.OnDebugRegistersChanged();
    }

    // ---- MSRs, CPUID, time --------------------------------------------------------------------

    private static void Rdmsr(CpuCore cpu, ref Insn i)
    {
        RequireCpl0(cpu);
        uint msr = (uint)cpu.R[Reg.RCX];
        if (!cpu.ReadMsr(msr, out ulong v)) cpu.Gp();
        cpu.R[Reg.RAX] = v & 0xFFFFFFFF;
        cpu.R[Reg.RDX] = v >> 32;
    }

    private static void Wrmsr(CpuCore cpu, ref Insn i)
    {
        RequireCpl0(cpu);
        uint msr = (uint)cpu.R[Reg.RCX];
        ulong v = (cpu.R[Reg.RDX] << 32) | (cpu.R[Reg.RAX] & 0xFFFFFFFF);
        if (!cpu.WriteMsr(msr, v)) cpu.Gp();
        // Most MSRs can change the mode, paging or the debug state: back to the outer loop. IA32_TSC_DEADLINE only re-arms
        // the local APIC timer, whose new expiry the chain sees at the block boundary (Machine.NextEventAt): it goes on
        // (DecodeCache.ContinuesChain), as kvm-unit-tests' vmexit tscdeadline test and Linux's clockevents rely on.
        if (msr != Emu64.Cpu.Msr.TscDeadline) cpu.ExitBlock = true;
    }

    /// <summary>
    /// CPUID. It cannot fault (no CPUID faulting is offered), reads neither RIP, the retired count nor RFLAGS, and never ends
    /// the block; besides the general registers it reads only CR4, IA32_MISC_ENABLE and IA32_APIC_BASE, whose writes end a
    /// block, and writes IA32_BIOS_SIGN_ID (leaf 1), which no bookkeeping reads: so the block compiler may run it without
    /// the per-instruction bookkeeping (<see cref="RegisterOnlyAttribute"/>), as a handful of register moves.
    /// </summary>
    [RegisterOnly, System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static void CpuidInsn(CpuCore cpu, ref Insn i)
    {
        var r = cpu.CpuidLeaf((uint)cpu.R[Reg.RAX], (uint)cpu.R[Reg.RCX]);
        cpu.R[Reg.RAX] = r.A; cpu.R[Reg.RBX] = r.B; cpu.R[Reg.RCX] = r.C; cpu.R[Reg.RDX] = r.D;
    }

    private static void Rdtsc(CpuCore cpu, ref Insn i)
    {
        if ((cpu.CR4 & Cr4Bits.Tsd) != 0 && cpu.Cpl != 0) cpu.Gp();
        ulong t = cpu.Tsc;
        cpu.R[Reg.RAX] = t & 0xFFFFFFFF;
        cpu.R[Reg.RDX] = t >> 32;
    }

    private static void Rdtscp(CpuCore cpu, ref Insn i)
    {
        if ((cpu.Ext1Edx & (1u << 27)) == 0) cpu.Ud();      // CPUID.80000001H:EDX.RDTSCP (--cpu -rdtscp)
        Rdtsc(cpu, ref i);
        cpu.R[Reg.RCX] = cpu.TscAux & 0xFFFFFFFF;
    }

    /// <summary>
    /// RDPMC: #GP at CPL > 0 unless CR4.PCE, and #GP for an ECX that names no counter. This CPU reports no
    /// performance-monitoring counters (CPUID leaf 0xA is beyond its highest leaf), so every index is invalid.
    /// </summary>
    private static void Rdpmc(CpuCore cpu, ref Insn i)
    {
        if ((cpu.CR4 & Cr4Bits.Pce) == 0 && cpu.Cpl != 0 && cpu.Mode != CpuMode.Real) cpu.Gp();
        cpu.Gp();
    }

    /// <summary>
    /// RDPID: IA32_TSC_AUX into a 32-bit register (64-bit in 64-bit mode, zero-extended); at any CPL and whatever CR4.TSD
    /// says, as the SDM defines it. #UD when CPUID.(EAX=7,ECX=0):ECX.RDPID (bit 22) is clear (--cpu -rdpid).
    /// </summary>
    private static void Rdpid(CpuCore cpu, ref Insn i)
    {
        if ((cpu.Leaf7Ecx & (1u << 22)) == 0) cpu.Ud();
        cpu.SetReg(i.R0, i.Size, cpu.TscAux & 0xFFFFFFFF);
    }

    private static void Rdrand(CpuCore cpu, ref Insn i)
    {
        // #UD when CPUID does not report the instruction: RDRAND CPUID.01H:ECX[30], RDSEED CPUID.(EAX=07H):EBX[18].
        if (i.I.Mnemonic == Mnemonic.Rdseed ? !cpu.HasFeature7Ebx(18) : (cpu.Leaf1Ecx & (1u << 30)) == 0) cpu.Ud();
        cpu.SetReg(i.R0, i.Size, cpu.Machine.NextRandom());
        cpu.SetStatus(true, false, false, false, false, false);   // CF=1: a value was available
    }

    // ---- descriptor tables ------------------------------------------------------------------

    private static void Lgdt(CpuCore cpu, ref Insn i)
    {
        RequireCpl0(cpu);
        ulong ea = cpu.EffectiveAddress(ref i);
        ushort limit = (ushort)cpu.ReadMem(i.Seg, ea, 2);
        ulong b = cpu.ReadMem(i.Seg, ea + 2, cpu.Is64 ? 8 : 4);
        if (!cpu.Is64 && i.Size == 2) b &= 0xFFFFFF;
        if (cpu.Is64 && !cpu.IsCanonicalSystem(b)) cpu.Gp();
        var t = new TableReg { Base = b, Limit = limit };
        if (i.I.Mnemonic == Mnemonic.Lgdt) cpu.Gdtr = t; else cpu.Idtr = t;
    }

    private static void Sgdt(CpuCore cpu, ref Insn i)
    {
        if ((cpu.CR4 & Cr4Bits.Umip) != 0 && cpu.Cpl > 0) cpu.Gp();
        var t = i.I.Mnemonic == Mnemonic.Sgdt ? cpu.Gdtr : cpu.Idtr;
        ulong ea = cpu.EffectiveAddress(ref i);
        int bsize = cpu.Is64 ? 8 : 4;
        cpu.Linear(i.Seg, ea, 2 + bsize, true);   // check the whole operand before writing
        cpu.WriteMem(i.Seg, ea, 2, t.Limit);
        cpu.WriteMem(i.Seg, ea + 2, bsize, t.Base);
    }

    private static void Ltr(CpuCore cpu, ref Insn i)
    {
        if (cpu.RealSegments) cpu.Ud();                          // not recognized in real-address or virtual-8086 mode
        RequireCpl0(cpu);
        ushort sel = (ushort)(i.K0 == Opnd.Reg ? cpu.GetReg(i.R0, 2) : cpu.ReadOperandMem(ref i, 2));
        if ((sel & ~3) == 0 || (sel & 4) != 0) cpu.Gp((uint)(sel & ~3));
        ulong d = cpu.ReadDescriptor(sel);
        var s = CpuCore.DescriptorToSegment(sel, d);
        if (!s.IsSystem || (s.Type != 9 && s.Type != 1)) cpu.Gp((uint)(sel & ~3));
        if (!s.Present) cpu.Fault(Vec.NP, (uint)(sel & ~3));
        if (cpu.LongMode) s.Base |= (cpu.ReadDescriptorHigh(sel) & 0xFFFFFFFF) << 32;
        if (cpu.LongMode && !cpu.IsCanonicalSystem(s.Base)) cpu.Gp((uint)(sel & ~3));   // a non-canonical TSS base
        // Mark the TSS busy in the GDT (an implicit supervisor write).
        cpu.WriteImplicitLinear(cpu.Gdtr.Base + (uint)(sel & ~7) + 5, 1, ((d >> 40) & 0xFF) | 2);
        s.Attr |= 2;
        cpu.Tr = s;
    }

    private static void Lldt(CpuCore cpu, ref Insn i)
    {
        if (cpu.RealSegments) cpu.Ud();                          // not recognized in real-address or virtual-8086 mode
        RequireCpl0(cpu);
        ushort sel = (ushort)(i.K0 == Opnd.Reg ? cpu.GetReg(i.R0, 2) : cpu.ReadOperandMem(ref i, 2));
        if ((sel & ~3) == 0) { cpu.Ldtr = new Segment { Selector = sel }; return; }
        if ((sel & 4) != 0) cpu.Gp((uint)(sel & ~3));
        ulong d = cpu.ReadDescriptor(sel);
        var s = CpuCore.DescriptorToSegment(sel, d);
        if (!s.IsSystem || s.Type != 2) cpu.Gp((uint)(sel & ~3));
        if (!s.Present) cpu.Fault(Vec.NP, (uint)(sel & ~3));
        if (cpu.LongMode) s.Base |= (cpu.ReadDescriptorHigh(sel) & 0xFFFFFFFF) << 32;
        if (cpu.LongMode && !cpu.IsCanonicalSystem(s.Base)) cpu.Gp((uint)(sel & ~3));   // a non-canonical LDT base
        cpu.Ldtr = s;
    }

    private static void Str(CpuCore cpu, ref Insn i)
    {
        if (cpu.RealSegments) cpu.Ud();                          // STR and SLDT: not in real-address or virtual-8086 mode
        if ((cpu.CR4 & Cr4Bits.Umip) != 0 && cpu.Cpl > 0) cpu.Gp();
        ushort v = i.I.Mnemonic == Mnemonic.Str ? cpu.Tr.Selector : cpu.Ldtr.Selector;
        if (i.K0 == Opnd.Reg) cpu.SetReg(i.R0, i.Size, v);
        else cpu.WriteLinear(cpu.OperandLinear(ref i, 2, true), 2, v);
    }

    // ---- flags, halting --------------------------------------------------------------------

    private static void Hlt(CpuCore cpu, ref Insn i)
    {
        RequireCpl0(cpu);
        cpu.Halted = true;
        cpu.ExitBlock = true;
    }

    /// <summary>CLI/STI: allowed when CPL ≤ IOPL (no VME/PVI support: in virtual-8086 mode, CPL 3, only with IOPL = 3).</summary>
    private static void Cli(CpuCore cpu, ref Insn i)
    {
        if (cpu.Mode != CpuMode.Real && cpu.Cpl > cpu.Iopl) cpu.Gp();
        cpu.SetFlag(RFlags.IF, false);
    }

    private static void Sti(CpuCore cpu, ref Insn i)
    {
        if (cpu.Mode != CpuMode.Real && cpu.Cpl > cpu.Iopl) cpu.Gp();
        if (!cpu.If) cpu.InterruptShadow = true;   // interrupts wait one more instruction
        cpu.SetFlag(RFlags.IF, true);
        cpu.ExitBlock = true;
    }

    /// <summary>PUSHF/POPF are IOPL-sensitive in virtual-8086 mode: #GP(0) unless IOPL = 3 (no CR4.VME).</summary>
    private static void Pushf(CpuCore cpu, ref Insn i)
    {
        if (cpu.Mode == CpuMode.Virtual8086 && cpu.Iopl < 3) cpu.Gp();
        ulong f = cpu.Rflags & ~(RFlags.RF | RFlags.VM);
        cpu.Push(f & InsnBuilder.Mask(i.Size), i.Size);
    }

    private static void Popf(CpuCore cpu, ref Insn i)
    {
        if (cpu.Mode == CpuMode.Virtual8086 && cpu.Iopl < 3) cpu.Gp();
        int size = i.Size;
        ulong v = cpu.PeekStack(size);
        ulong old = cpu.Rflags;
        // CPL 3 in virtual-8086 mode: IOPL (and VM, RF) keep their values; IF changes as IOPL = 3 allows.
        ulong mask = RFlags.Status | RFlags.TF | RFlags.DF | RFlags.NT;
        if (size >= 4) mask |= RFlags.AC | RFlags.ID;
        if (cpu.Cpl == 0) mask |= RFlags.IOPL;
        if (cpu.Cpl <= cpu.Iopl) mask |= RFlags.IF;
        if (size == 2) mask &= 0xFFFF;
        cpu.AdjustStack(size);
        cpu.Rflags = (old & ~mask) | (v & mask);
        cpu.ExitBlock = true;
    }

    // ---- TLB maintenance ----------------------------------------------------------------------

    private static void Invlpg(CpuCore cpu, ref Insn i)
    {
        RequireCpl0(cpu);
        ulong la = cpu.Is64 ? cpu.EffectiveAddress(ref i) + (i.Seg >= Seg.FS ? cpu.Segs[i.Seg].Base : 0)
                            : (cpu.Segs[i.Seg].Base + cpu.EffectiveAddress(ref i)) & 0xFFFFFFFF;
        // INVLPG of a non-canonical address is a no-op (no fault).
        if (!cpu.Is64 || cpu.IsCanonical(la)) cpu.Mmu.Invlpg(la);
    }

    /// <summary>INVPCID (SDM vol. 2): type in a register, 16-byte descriptor in memory.</summary>
    private static void Invpcid(CpuCore cpu, ref Insn i)
    {
        if (!cpu.HasInvpcid) cpu.Ud();
        if (cpu.RealSegments) cpu.Ud();
        RequireCpl0(cpu);
        ulong type = cpu.GetReg(i.R0, cpu.Is64 ? 8 : 4);
        ulong ea = cpu.EffectiveAddress(ref i);
        ulong lo = cpu.ReadMem(i.Seg, ea, 8), la = cpu.ReadMem(i.Seg, ea + 8, 8);
        if (type > 3) cpu.Gp();
        if ((lo >> 12) != 0) cpu.Gp();                      // descriptor bits 63:12 must be zero
        ushort pcid = (ushort)(lo & 0xFFF);
        // The descriptor's address is checked as the other addresses kept for later use: against 57 bits on a
        // processor that supports 5-level paging, whatever CR4.LA57 says (SDM vol. 3A §4.5.1).
        if (type == 0 && !cpu.IsCanonicalSystem(la)) cpu.Gp();
        if (type <= 1 && !cpu.PcidOn && pcid != 0) cpu.Gp();
        cpu.Mmu.Invpcid((int)type, pcid, la);
    }

    private static void Clts(CpuCore cpu, ref Insn i) { RequireCpl0(cpu); cpu.CR0 &= ~Cr0Bits.Ts; }

    private static void Smsw(CpuCore cpu, ref Insn i)
    {
        if ((cpu.CR4 & Cr4Bits.Umip) != 0 && cpu.Cpl > 0) cpu.Gp();
        if (i.K0 == Opnd.Reg) cpu.SetReg(i.R0, i.Size, cpu.CR0 & InsnBuilder.Mask(i.Size));
        else cpu.WriteLinear(cpu.OperandLinear(ref i, 2, true), 2, cpu.CR0 & 0xFFFF);
    }

    private static void Lmsw(CpuCore cpu, ref Insn i)
    {
        RequireCpl0(cpu);
        ulong v = i.K0 == Opnd.Reg ? cpu.GetReg(i.R0, 2) : cpu.ReadOperandMem(ref i, 2);
        ulong nv = (cpu.CR0 & ~0xEUL) | (v & 0xF) | (cpu.CR0 & Cr0Bits.Pe);   // LMSW cannot clear PE
        WriteCr0(cpu, nv);
    }

    private static void RequireFsgsbase(CpuCore cpu)
    {
        if (!cpu.Is64 || (cpu.CR4 & Cr4Bits.Fsgsbase) == 0) cpu.Ud();
    }

    private static void RdFsGsBase(CpuCore cpu, ref Insn i)
    {
        RequireFsgsbase(cpu);
        int seg = i.I.Mnemonic == Mnemonic.Rdfsbase ? Seg.FS : Seg.GS;
        cpu.SetReg(i.R0, i.Size, cpu.Segs[seg].Base & InsnBuilder.Mask(i.Size));
    }

    private static void WrFsGsBase(CpuCore cpu, ref Insn i)
    {
        RequireFsgsbase(cpu);
        int seg = i.I.Mnemonic == Mnemonic.Wrfsbase ? Seg.FS : Seg.GS;
        ulong v = cpu.GetReg(i.R0, i.Size);
        if (!cpu.IsCanonicalSystem(v)) cpu.Gp();
        cpu.Segs[seg].Base = v;
    }

    private static void Stac(CpuCore cpu, ref Insn i)
    {
        if (!cpu.HasFeature7Ebx(20)) cpu.Ud();
        RequireCpl0(cpu);
        cpu.SetFlag(RFlags.AC, true);
    }

    private static void Clac(CpuCore cpu, ref Insn i)
    {
        if (!cpu.HasFeature7Ebx(20)) cpu.Ud();
        RequireCpl0(cpu);
        cpu.SetFlag(RFlags.AC, false);
    }

    private static void Rdpkru(CpuCore cpu, ref Insn i)
    {
        if ((cpu.CR4 & Cr4Bits.Pke) == 0) cpu.Ud();
        if ((uint)cpu.R[Reg.RCX] != 0) cpu.Gp();
        cpu.R[Reg.RAX] = cpu.Pkru;
        cpu.R[Reg.RDX] = 0;
    }

    private static void Wrpkru(CpuCore cpu, ref Insn i)
    {
        if ((cpu.CR4 & Cr4Bits.Pke) == 0) cpu.Ud();
        if ((uint)cpu.R[Reg.RCX] != 0 || (uint)cpu.R[Reg.RDX] != 0) cpu.Gp();
        cpu.Pkru = (uint)cpu.R[Reg.RAX];
        cpu.Mmu.OnPkruWrite();
    }
}
