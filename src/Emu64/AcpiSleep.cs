using Emu64.Devices;

namespace Emu64;

/// <summary>
/// ACPI S3, suspend to RAM (ACPI 6.5 §16.1.3, "System \_S3 State"; §4.8.3 the PM1 registers; §5.2.10 the FACS), entered
/// when the guest writes SLP_TYP = 1 (the DSDT's \_S3 value) with SLP_EN to PM1a_CNT (<see cref="AcpiPm"/>):
/// <list type="number">
/// <item>The OUT completes and the machine sleeps: the processor and chipset lose their context, RAM keeps its. Emu64
/// resets them on entry, so nothing of theirs runs while asleep: the CPU, its local APIC, the 8259s, the 8254, the
/// I/O APIC and the HPET go back to the state this machine starts in. The RTC and CMOS (battery-powered) and the ACPI
/// PM1 registers stay; so do the serial port and the keyboard controller, whose state an OS restores itself.</item>
/// <item>Guest time skips to the first enabled wake event, as a halted CPU skips to its next timer event: the RTC
/// raising its interrupt (an alarm, update or periodic interrupt enabled in its register B) while PM1_EN.RTC_EN is
/// set, which sets PM1_STS.RTC_STS. With no wake event enabled the machine would sleep forever, and the run ends
/// (<see cref="StopReason.HaltedForever"/>); an enabled event already pending wakes it at once.</item>
/// <item>On the wake, PM1_STS.WAK_STS is set and the firmware's resume path (here, Emu64's) enables A20 and jumps to
/// the FACS waking vector: X_Firmware_Waking_Vector when nonzero, entered in 32-bit protected mode with paging off
/// (flat CS and data segments, interrupts disabled; the FACS does not offer the 64-bit environment), otherwise
/// Firmware_Waking_Vector in real-address mode at CS:IP = vector >> 4 : vector &amp; 0xF, from the processor's
/// reset state (<see cref="Cpu.Cpu.ResetToRealMode"/>). Both zero: firmware would boot afresh, which Emu64 reports
/// as a reset (<see cref="StopReason.Reset"/>).</item>
/// </list>
/// </summary>
public sealed partial class Machine
{
    /// <summary>How many times the machine entered S3.</summary>
    public ulong SleepCount { get; private set; }

    /// <summary>Guest ticks spent in S3 (also part of <see cref="IdleTicks"/>: time skipped, not executed).</summary>
    public ulong SleptTicks { get; private set; }

    /// <summary>The virtual time of the last wake from S3, and where it resumed (CS:IP in real mode, or a 32-bit address).</summary>
    public ulong LastWakeAt { get; private set; }
    public string LastWakeEntry { get; private set; } = "";

    /// <summary>Enters S3 and, once an enabled wake event arrives, resumes at the FACS waking vector (see the class summary).</summary>
    internal void EnterS3()
    {
        var p = Platform;
        SleepCount++;
        ulong from = Now;
        // The processor and chipset lose their context.
        Cpu.ResetToRealMode(0xF000, 0xFFF0);
        p.Apic.PowerOnReset();
        p.Pic.Reset();
        p.Pit.Reset();
        p.IoApic.Reset();
        p.Hpet.Reset();
        p.UpdateInterruptLine();
        // Asleep until the first enabled wake event.
        var pm = p.AcpiPm;
        if (!pm.WakePending)
        {
            ulong wake = pm.WakeEnabled ? p.Cmos.NextIrqAt : ulong.MaxValue;
            if (wake == ulong.MaxValue)
            {
                Stop(StopReason.HaltedForever, 0, "ACPI S3 (suspend to RAM) with no wake event that can arrive: PM1_EN.RTC_EN "
                    + (pm.WakeEnabled ? "is set but no RTC interrupt (alarm, update or periodic) is enabled in register B" : "is clear"));
                return;
            }
            if (wake > Now) _idle += wake - Now;
            ServiceEvents();                     // the RTC's interrupt: RTC_STS
        }
        SleptTicks += Now - from;
        LastWakeAt = Now;
        pm.Woke();
        Resume(p);
    }

    /// <summary>The firmware's resume path: A20 on, then the FACS waking vector.</summary>
    private void Resume(Platform p)
    {
        p.Ports.SetA20(true);
        ulong facs = AcpiTables.FacsAddress;
        ulong x = Memory.Read(facs + (ulong)AcpiTables.FacsXWakingVector, 8);
        uint v = (uint)Memory.Read(facs + (ulong)AcpiTables.FacsWakingVector, 4);
        if (x != 0 && Memory.Read(facs + (ulong)AcpiTables.FacsVersion, 1) >= 1)
        {
            if (x > uint.MaxValue)
            {
                Stop(StopReason.Unsupported, 8, $"ACPI S3 resume: X_Firmware_Waking_Vector 0x{x:x} is above 4 GiB, out of reach of the 32-bit protected-mode entry (the FACS offers no 64-bit wake)");
                return;
            }
            Cpu.ResetToFlat32((uint)x);
            LastWakeEntry = $"32-bit protected mode at 0x{x:x}";
            return;
        }
        if (v == 0)
        {
            Stop(StopReason.Reset, 0, "ACPI S3 resume with no waking vector in the FACS: firmware would boot afresh");
            return;
        }
        Cpu.ResetToRealMode((ushort)(v >> 4), (ushort)(v & 0xF));
        LastWakeEntry = $"real mode at {v >> 4:x4}:{v & 0xF:x4}";
    }
}
