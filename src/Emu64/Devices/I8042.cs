namespace Emu64.Devices;

/// <summary>
/// The 8042 keyboard controller at 0x60 (data) and 0x64 (status/command), with a <see cref="Ps2Keyboard"/>
/// on its first port (IRQ 1) and a <see cref="Ps2Mouse"/> on the auxiliary port (IRQ 12). Commands are
/// carried out at once (the input buffer is never full), so Linux's i8042 probe gets its answers without
/// polling. Facts from the 8042 and the commands QEMU's pckbd implements:
/// <list type="bullet">
/// <item>Status (read 0x64): OBF (0), SYS (2, set by the self test; firmware ran it), CMD/DATA (3), keyboard not
/// inhibited (4), AUX OBF (5: the byte came from the auxiliary port). On an 8042 bit 3 tells whether the last
/// write went to 0x64; QEMU keeps it set, and so does Emu64 (no driver looks at it).</item>
/// <item>Controller configuration byte (CTR), read with 0x20 and written with 0x60: KBDINT (0), AUXINT (1),
/// SYS (2), KBDDIS (4), AUXDIS (5), XLATE (6); firmware leaves <see cref="FirmwareCtr"/>.</item>
/// <item>0xAA self test → 0x55; 0xAB keyboard interface test → 0x00; 0xA9 auxiliary interface test → 0x00;
/// 0xA7/0xA8 disable/enable the auxiliary port and 0xAD/0xAE the keyboard (CTR bits 5 and 4); 0xC0 input port
/// → 0x80; 0xD0 output port (bit 1 is A20, as port 0x92 shows), 0xD1 writes it; 0xD2/0xD3 put the next data byte in
/// the output buffer as if from the keyboard/auxiliary device (Linux's AUX loop test); 0xD4 sends it to the mouse;
/// 0xE0 test inputs → 0x00; 0xF0–0xFF pulse output-port lines low: bit 0 is the CPU reset line, so 0xFE (and
/// any even value) resets, which ends the run with <see cref="StopReason.Reset"/>, as QEMU with -no-reboot.</item>
/// <item>A data byte written with no command pending goes to the keyboard; writing to a device re-enables its
/// port. The output buffer is filled from the controller's own answers first, then from the keyboard, then
/// from the mouse, each only while its port is enabled.</item>
/// <item>IRQ 1 is raised while the output buffer holds a keyboard byte and KBDINT is set, IRQ 12 while it holds an
/// auxiliary byte and AUXINT is set. With XLATE the keyboard's ID 0xAB 0x83 reads 0xAB 0x41 (set 2 to set 1).</item>
/// </list>
/// </summary>
public sealed class I8042 : IIoDevice
{
    public const byte KbdInt = 1 << 0, AuxInt = 1 << 1, SysFlag = 1 << 2, KbdDis = 1 << 4, AuxDis = 1 << 5, Xlate = 1 << 6;
    public const byte StObf = 1 << 0, StSys = 1 << 2, StCmd = 1 << 3, StUnlocked = 1 << 4, StAuxObf = 1 << 5;

    /// <summary>
    /// The CTR firmware leaves (0x61, SeaBIOS under QEMU 7.2, measured): keyboard interrupt on, auxiliary port
    /// disabled, translation on.
    /// </summary>
    public const byte FirmwareCtr = KbdInt | AuxDis | Xlate;

    private readonly Machine _m;
    private readonly Action<int, bool> _setIrq;
    private readonly Func<bool> _a20;
    private readonly Action<bool> _setA20;
    public readonly Ps2Keyboard Keyboard = new();
    public readonly Ps2Mouse Mouse = new();

    private readonly Queue<(byte Value, bool Aux)> _controllerOut = new();
    private byte _ctr = FirmwareCtr, _status = StSys | StCmd | StUnlocked;
    private byte _data;                 // the output buffer
    private bool _full, _fromAux;
    private byte _pendingCommand;       // a command waiting for its data byte (0x60, 0xD1-0xD4), or 0
    private bool _irq1, _irq12;

    public I8042(Machine m, Action<int, bool> setIrq, Func<bool> a20, Action<bool> setA20)
    {
        _m = m; _setIrq = setIrq; _a20 = a20; _setA20 = setA20;
    }

    public byte Ctr => _ctr;

    public byte Status => (byte)((_status & ~(StObf | StAuxObf)) | (_full ? StObf : 0) | (_full && _fromAux ? StAuxObf : 0));

    public uint In(ushort port, int size)
    {
        if (port == 0x64) return Status;
        byte v = _data;
        _full = false;
        // Reading the output buffer drops IRQ 1/12; the next byte, moving in, raises it again. The ISA inputs are
        // edge-triggered and Linux's i8042_interrupt reads one byte per interrupt, so without the drop a reply of
        // several bytes (the keyboard's ACK, 0xAB, 0x83 to GET ID) would give one interrupt and leave the rest unread
        // (QEMU's pckbd lowers and raises its line the same way).
        if (_irq1) { _irq1 = false; _setIrq(1, false); }
        if (_irq12) { _irq12 = false; _setIrq(12, false); }
        Fill();
        return v;
    }

    public void Out(ushort port, int size, uint value)
    {
        byte v = (byte)value;
        if (port == 0x64) Command(v);
        else Data(v);
        Fill();
    }

    private void Reply(byte v, bool aux = false) => _controllerOut.Enqueue((v, aux));

    private void Command(byte c)
    {
        _pendingCommand = 0;
        switch (c)
        {
            case 0x20: Reply(_ctr); break;
            case 0x60: case 0xD1: case 0xD2: case 0xD3: case 0xD4: _pendingCommand = c; break;
            case 0xA7: _ctr |= AuxDis; break;
            case 0xA8: _ctr &= unchecked((byte)~AuxDis); break;
            case 0xA9: Reply(0x00); break;
            case 0xAA: _status |= StSys; Reply(0x55); break;
            case 0xAB: Reply(0x00); break;
            case 0xAD: _ctr |= KbdDis; break;
            case 0xAE: _ctr &= unchecked((byte)~KbdDis); break;
            case 0xC0: Reply(0x80); break;
            case 0xD0: Reply((byte)(0x01 | (_a20() ? 0x02 : 0) | (_full && !_fromAux ? 0x10 : 0) | (_full && _fromAux ? 0x20 : 0))); break;
            case 0xE0: Reply(0x00); break;
            case >= 0xF0:
                if ((c & 1) == 0) _m.Stop(StopReason.Reset, 0, "reset through the keyboard controller (command 0xFE to port 0x64)");
                break;
        }
    }

    private void Data(byte v)
    {
        byte cmd = _pendingCommand;
        _pendingCommand = 0;
        switch (cmd)
        {
            case 0x60:
                _ctr = (byte)(v & 0x77);
                if ((v & SysFlag) != 0) _status |= StSys; else _status &= unchecked((byte)~StSys);
                break;
            case 0xD1:
                _setA20((v & 2) != 0);
                if ((v & 1) == 0) _m.Stop(StopReason.Reset, 0, "reset through the keyboard controller output port (command 0xD1)");
                break;
            case 0xD2: Reply(v); break;
            case 0xD3: Reply(v, aux: true); break;
            case 0xD4: _ctr &= unchecked((byte)~AuxDis); Mouse.Write(v); break;
            default: _ctr &= unchecked((byte)~KbdDis); Keyboard.Write(v); break;
        }
    }

    /// <summary>Moves the next byte into an empty output buffer and recomputes IRQ 1 and IRQ 12.</summary>
    private void Fill()
    {
        if (!_full)
        {
            if (_controllerOut.Count > 0) { (_data, _fromAux) = _controllerOut.Dequeue(); _full = true; }
            else if ((_ctr & KbdDis) == 0 && Keyboard.HasOutput) { _data = Translate(Keyboard.Take()); _fromAux = false; _full = true; }
            else if ((_ctr & AuxDis) == 0 && Mouse.HasOutput) { _data = Mouse.Take(); _fromAux = true; _full = true; }
        }
        bool irq1 = _full && !_fromAux && (_ctr & KbdInt) != 0;
        bool irq12 = _full && _fromAux && (_ctr & AuxInt) != 0;
        if (irq1 != _irq1) { _irq1 = irq1; _setIrq(1, irq1); }
        if (irq12 != _irq12) { _irq12 = irq12; _setIrq(12, irq12); }
    }

    /// <summary>Set 2 → set 1 translation for the one set-2 code the keyboard ever sends besides replies: its ID byte 0x83.</summary>
    private byte Translate(byte b) => (_ctr & Xlate) != 0 && b == 0x83 ? (byte)0x41 : b;
}
