namespace Emu64.Devices;

/// <summary>
/// A PS/2 (AT) keyboard on the i8042's first port, answering the commands Linux's atkbd driver sends
/// (IBM PS/2 technical reference; QEMU's ps2 keyboard gives the same answers): every command is
/// acknowledged with 0xFA; RESET (0xFF) adds the self-test result 0xAA; GET ID (0xF2) returns 0xAB 0x83
/// (MF2 keyboard); ECHO (0xEE) answers 0xEE; commands with a parameter (0xED LEDs, 0xF0 scan-code set,
/// 0xF3 typematic) acknowledge the parameter too, and 0xF0 0x00 reports the current set (2). No keys are
/// ever pressed: Emu64 has no keyboard input (the console is the serial port).
/// </summary>
public sealed class Ps2Keyboard
{
    private readonly Queue<byte> _out = new();
    private byte _pending;              // a command waiting for its parameter byte, or 0
    private byte _scanSet = 2;

    public const byte Ack = 0xFA, Resend = 0xFE, SelfTestPassed = 0xAA;

    public bool HasOutput => _out.Count > 0;
    public byte Take() => _out.Dequeue();

    /// <summary>A byte the controller sends to the keyboard (a write to port 0x60).</summary>
    public void Write(byte b)
    {
        if (_pending != 0)
        {
            byte cmd = _pending;
            _pending = 0;
            _out.Enqueue(Ack);
            if (cmd == 0xF0)
            {
                if (b == 0) _out.Enqueue(_scanSet);
                else if (b is >= 1 and <= 3) _scanSet = b;
            }
            return;
        }
        switch (b)
        {
            case 0xED: case 0xF0: case 0xF3: _pending = b; _out.Enqueue(Ack); break;
            case 0xEE: _out.Enqueue(0xEE); break;
            case 0xF2: _out.Enqueue(Ack); _out.Enqueue(0xAB); _out.Enqueue(0x83); break;
            case 0xFF: _out.Clear(); _scanSet = 2; _out.Enqueue(Ack); _out.Enqueue(SelfTestPassed); break;
            case 0xF4: case 0xF5: case 0xF6: case 0xF7: case 0xF8: case 0xF9: case 0xFA: case 0xFB: _out.Enqueue(Ack); break;
            default: _out.Enqueue(Resend); break;
        }
    }
}
