namespace Emu64.Devices;

/// <summary>
/// The ACPI fixed hardware of QEMU's PIIX4 power-management function, at the I/O base SeaBIOS gives it
/// (0x600), as the FADT describes it (ACPI 6.5 §4.8):
/// <list type="bullet">
/// <item>0x600 PM1a_STS (16 bits, write 1 to clear): TMR_STS (bit 0) is set each time bit 23 of the PM timer
/// changes; RTC_STS (bit 10) when the RTC asserts its interrupt (<see cref="Cmos"/>: an alarm, update or periodic
/// interrupt enabled in its register B); WAK_STS (bit 15) when an enabled wake event ended a sleeping state. There
/// are no power or sleep buttons (the FADT says so).</item>
/// <item>0x602 PM1a_EN: TMR_EN (0), GBL_EN (5), PWRBTN_EN (8), SLPBTN_EN (9), RTC_EN (10). An enabled status
/// bit raises the SCI, IRQ 9, as a level.</item>
/// <item>0x604 PM1a_CNT: SCI_EN (bit 0) reads 1, because the FADT has no SMI command port (the hardware is
/// always in ACPI mode); BM_RLD (1); GBL_RLS (2, write-only); SLP_TYP (12:10); SLP_EN (13, write-only).
/// Writing SLP_EN with SLP_TYP = 0, the DSDT's _S5 value, powers the machine off: the run ends with
/// <see cref="StopReason.Shutdown"/> and exit status 0, as QEMU exits on S5. SLP_TYP = 1, the DSDT's _S3 value,
/// suspends to RAM (<see cref="Machine.EnterS3"/>): the machine sleeps until an enabled wake event — RTC_STS with
/// RTC_EN — and resumes at the FACS waking vector with WAK_STS set. Other sleep types are not offered in the DSDT
/// and are ignored.</item>
/// <item>0x608 PM_TMR: the 24-bit power-management timer, 3.579545 MHz of virtual time (⌊Now × 3579545 /
/// ips⌋ mod 2^24), read-only; bits 31:24 read 0 (FADT TMR_VAL_EXT = 0).</item>
/// </list>
/// Accesses may be of any size; each byte behaves as the byte of its register.
/// </summary>
public sealed class AcpiPm : IIoDevice, ITimedDevice
{
    public const ushort Base = 0x600, Pm1aEvtBlk = Base, Pm1aCntBlk = Base + 4, PmTmrBlk = Base + 8, Length = 12;
    public const ushort SciIrq = 9;
    public const ulong TimerHz = 3_579_545;
    /// <summary>SLP_TYP for S5 (soft off), the value the DSDT's \_S5 package gives, as QEMU's PIIX4.</summary>
    public const int SlpTypS5 = 0;
    /// <summary>SLP_TYP for S3 (suspend to RAM), the value of the DSDT's \_S3 package, as QEMU's PIIX4.</summary>
    public const int SlpTypS3 = 1;

    public const ushort TmrSts = 1 << 0, TmrEn = 1 << 0, SciEn = 1 << 0, SlpEn = 1 << 13;
    public const ushort RtcSts = 1 << 10, RtcEn = 1 << 10, WakSts = 1 << 15;
    /// <summary>The PM1 status bits this hardware latches (write 1 to clear); TMR_STS is derived from the timer.</summary>
    private const ushort StsLatched = RtcSts | WakSts;
    /// <summary>The enables of events that wake the machine from S3 (the fixed RTC event; no buttons exist).</summary>
    private const ushort WakeEvents = RtcEn;
    private const ushort EnWritable = (1 << 0) | (1 << 5) | (1 << 8) | (1 << 9) | (1 << 10);
    private const ushort CntStored = (1 << 1) | (7 << 10);

    private readonly Machine _m;
    private readonly Action<int, bool> _setIrq;
    private ushort _en, _cnt;
    private ulong _tmrEpoch;            // PM timer ticks >> 23 when TMR_STS was last cleared
    private ushort _sts;                // latched status bits (RTC_STS, WAK_STS)
    private bool _sci;

    public AcpiPm(Machine m, Action<int, bool> setIrq) { _m = m; _setIrq = setIrq; }

    /// <summary>PM timer ticks since virtual time 0 (not wrapped).</summary>
    public ulong TimerTicks => VirtualClock.ToDevice(_m.Now, TimerHz, _m.Options.TicksPerSecond);

    /// <summary>The PM_TMR register: the low 24 bits of the timer.</summary>
    public uint Timer => (uint)(TimerTicks & 0xFFFFFF);

    public ushort Status => (ushort)(_sts | ((TimerTicks >> 23) != _tmrEpoch ? TmrSts : 0));

    /// <summary>The RTC asserted its interrupt (the RTC's IRQ8 rose): the fixed RTC event.</summary>
    public void RtcEvent() { _sts |= RtcSts; Update(); }

    /// <summary>An enabled wake event is already pending (a sleep entered now ends at once).</summary>
    public bool WakePending => (_sts & _en & WakeEvents) != 0;

    /// <summary>Whether any wake event is enabled (PM1_EN) at all.</summary>
    public bool WakeEnabled => (_en & WakeEvents) != 0;

    /// <summary>The machine woke from a sleeping state: WAK_STS is set (ACPI, the PM1 status register).</summary>
    public void Woke() { _sts |= WakSts; Update(); }
    public ushort Enable => _en;
    public ushort Control => (ushort)(_cnt | SciEn);

    public ulong NextEventAt { get; private set; } = ulong.MaxValue;

    public uint In(ushort port, int size)
    {
        int off = port - Base;
        uint v = 0;
        if (off >= 8) v = Timer >> (8 * (off - 8));
        else
        {
            uint regs = Status | (uint)_en << 16;
            uint cnt = Control;
            for (int i = size - 1; i >= 0; i--)
            {
                int o = off + i;
                uint b = o < 4 ? (regs >> (8 * o)) & 0xFF : o < 6 ? (cnt >> (8 * (o - 4))) & 0xFF : 0;
                v = (v << 8) | b;
            }
        }
        return size == 4 ? v : v & ((1u << (8 * size)) - 1);
    }

    private bool _sleepRequested;

    public void Out(ushort port, int size, uint value)
    {
        for (int i = 0; i < size; i++) WriteByte(port - Base + i, (byte)(value >> (8 * i)));
        Update();
        if (_sleepRequested) { _sleepRequested = false; _m.EnterS3(); }
    }

    private void WriteByte(int off, byte v)
    {
        switch (off)
        {
            case 0: if ((v & TmrSts) != 0) _tmrEpoch = TimerTicks >> 23; break;   // write 1 to clear
            case 1: _sts &= (ushort)~((v << 8) & StsLatched); break;
            case 2: _en = (ushort)((_en & 0xFF00) | (v & EnWritable & 0xFF)); break;
            case 3: _en = (ushort)((_en & 0x00FF) | ((v << 8) & EnWritable)); break;
            case 4: _cnt = (ushort)((_cnt & 0xFF00) | (v & CntStored & 0xFF)); break;
            case 5:
                _cnt = (ushort)((_cnt & 0x00FF) | ((v << 8) & CntStored));
                if (((v << 8) & SlpEn) == 0) break;
                int slpTyp = (_cnt >> 10) & 7;
                if (slpTyp == SlpTypS5)
                    _m.Stop(StopReason.Shutdown, 0, "ACPI S5 (soft off): SLP_TYP 0 with SLP_EN written to PM1a_CNT (port 0x604)");
                else if (slpTyp == SlpTypS3)
                    _sleepRequested = true;     // entered once the whole write is done (Out)
                break;
        }
    }

    /// <summary>Recomputes the SCI level and the next timer-carry event (only while TMR_EN waits for TMR_STS).</summary>
    private void Update()
    {
        bool sci = (Status & _en) != 0;
        if (sci != _sci) { _sci = sci; _setIrq(SciIrq, sci); }
        NextEventAt = (_en & TmrEn) != 0 && (Status & TmrSts) == 0
            ? VirtualClock.ToTicks((_tmrEpoch + 1) << 23, TimerHz, _m.Options.TicksPerSecond)
            : ulong.MaxValue;
        _m.RecomputeNextEvent();
    }

    public void OnTime(ulong now) => Update();
}
