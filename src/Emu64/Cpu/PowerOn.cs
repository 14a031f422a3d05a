namespace Emu64.Cpu;

public sealed partial class Cpu
{
    /// <summary>
    /// The processor state after RESET (SDM vol. 3A, "Processor State After Reset", table "IA-32 and Intel 64 Processor
    /// States Following Power-up, Reset, or INIT"), then the far jump firmware makes to real-address mode
    /// <paramref name="cs"/>:<paramref name="ip"/> (CS base = <paramref name="cs"/> × 16). What the table gives:
    /// RFLAGS 2, CR0 0x60000010 (CD, NW, ET), CR2/CR3/CR4 0, EFER 0, EDX the processor signature (CPUID.1:EAX) and the
    /// other general registers 0, data segments selector 0 base 0 limit 0xFFFF (present, read/write, accessed), GDTR and
    /// IDTR base 0 limit 0xFFFF, LDTR and TR selector 0 base 0 limit 0xFFFF, DR0–DR3 0, DR6 0xFFFF0FF0, DR7 0x400,
    /// MXCSR 0x1F80 and XMM 0, PAT 0x0007040600070406, IA32_APIC_BASE 0xFEE00900 (xAPIC enabled, BSP), IA32_MISC_ENABLE
    /// its reset value, the SYSCALL/SYSENTER MSRs, KERNEL_GS_BASE, TSC_AUX, SPEC_CTRL and PKRU 0, no NMI blocking.
    /// The x87 is left in the FNINIT state and the MTRRs as firmware programs them at boot (<see cref="SetFirmwareMtrrs"/>),
    /// since firmware runs between the reset and the jump. The TSC keeps counting: it is guest time (<see cref="Tsc"/>).
    /// The TLBs and paging-structure caches are emptied. Used on the resume from ACPI S3 (<see cref="Machine.EnterS3"/>).
    /// </summary>
    public void ResetToRealMode(ushort cs, ushort ip)
    {
        ulong oldCr0 = CR0, oldCr4 = CR4;
        for (int r = 0; r < 16; r++) R[r] = 0;
        Cpuid(1, 0, out uint signature, out _, out _, out _);
        R[Reg.RDX] = signature;
        EFER = 0;
        CR0 = Emu64.Cpu.Cr0.Cd | Emu64.Cpu.Cr0.Nw | Emu64.Cpu.Cr0.Et;
        CR2 = 0; CR3 = 0; CR4 = 0; CR8 = 0;
        for (int s = 0; s < 6; s++)
            Segs[s] = new Segment { Selector = 0, Base = 0, Limit = 0xFFFF, Attr = (ushort)(s == Emu64.Cpu.Seg.CS ? 0x9B : 0x93) };
        Segs[Emu64.Cpu.Seg.CS].Selector = cs;
        Segs[Emu64.Cpu.Seg.CS].Base = (ulong)cs << 4;
        Gdtr = new TableReg { Base = 0, Limit = 0xFFFF };
        Idtr = new TableReg { Base = 0, Limit = 0xFFFF };
        Ldtr = new Segment { Attr = 0x82, Limit = 0xFFFF };
        Tr = new Segment { Attr = 0x8B, Limit = 0xFFFF };
        Array.Clear(DR);
        DR[6] = 0xFFFF0FF0;
        DR[7] = 0x400;
        Array.Clear(Xmm);
        Mxcsr = 0x1F80;
        Fpu.Init();
        Pkru = 0;
        Star = Lstar = Cstar = Sfmask = KernelGsBase = TscAux = SpecCtrl = 0;
        SysenterCs = SysenterEsp = SysenterEip = 0;
        Pat = 0x0007040600070406UL;
        MiscEnable = MiscEnableReset;
        McgStatus = 0;
        ApicBase = 0xFEE00900UL;
        SetFirmwareMtrrs();
        Rflags = RFlags.Reserved1;
        Rip = ip;
        InterruptShadow = false;
        Halted = false;
        NmiBlocked = false;
        MovSsShadow = false;
        DbHeld = 0;
        DbAfterHalt = 0;
        IterateSingly = false;
        TaskTrapPending = false;
        UpdateDebugArmed();
        // Power was off: no translation survives (counted as the flush a CR0.PG 1 → 0 write makes).
        Mmu.OnCr4Write(oldCr4, 0);
        Mmu.OnCr0Write(oldCr0 | Emu64.Cpu.Cr0.Pg, CR0);
        UpdateMode();
        ExitBlock = true;
    }
}
