namespace Emu64.Devices;

/// <summary>
/// A standard PS/2 mouse (device ID 0x00) on the i8042's auxiliary port, answering the commands Linux's
/// psmouse driver sends while probing (IBM PS/2 mouse protocol): every command is acknowledged with 0xFA;
/// RESET (0xFF) adds 0xAA 0x00 (self-test passed, ID 0); GET ID (0xF2) adds 0x00; STATUS REQUEST (0xE9)
/// adds three bytes (flags, resolution, sample rate); SET SAMPLE RATE (0xF3) and SET RESOLUTION (0xE8)
/// acknowledge their parameter too. It never reports movement. It does not take up the IntelliMouse
/// extensions (ID 3/4), so Linux finds a generic PS/2 mouse where QEMU's mouse is an Explorer mouse.
/// </summary>
public sealed class Ps2Mouse
{
    private readonly Queue<byte> _out = new();
    private byte _pending;
    private byte _rate = 100, _resolution = 2, _flags;

    public bool HasOutput => _out.Count > 0;
    public byte Take() => _out.Dequeue();

    public void Write(byte b)
    {
        const byte ack = Ps2Keyboard.Ack;
        if (_pending != 0)
        {
            if (_pending == 0xF3) _rate = b; else if (_pending == 0xE8) _resolution = (byte)(b & 3);
            _pending = 0;
            _out.Enqueue(ack);
            return;
        }
        switch (b)
        {
            case 0xF3: case 0xE8: _pending = b; _out.Enqueue(ack); break;
            case 0xF2: _out.Enqueue(ack); _out.Enqueue(0x00); break;
            case 0xE9: _out.Enqueue(ack); _out.Enqueue(_flags); _out.Enqueue(_resolution); _out.Enqueue(_rate); break;
            case 0xF4: _flags |= 0x20; _out.Enqueue(ack); break;          // data reporting on
            case 0xF5: _flags &= 0xDF; _out.Enqueue(ack); break;
            case 0xE6: _flags &= 0xEF; _out.Enqueue(ack); break;          // scaling 1:1
            case 0xE7: _flags |= 0x10; _out.Enqueue(ack); break;          // scaling 2:1
            case 0xF6: _rate = 100; _resolution = 2; _flags = 0; _out.Enqueue(ack); break;
            case 0xFF:
                _out.Clear(); _rate = 100; _resolution = 2; _flags = 0;
                _out.Enqueue(ack); _out.Enqueue(Ps2Keyboard.SelfTestPassed); _out.Enqueue(0x00);
                break;
            case 0xEA: case 0xEC: case 0xF0: _out.Enqueue(ack); break;   // stream mode, reset wrap mode, remote mode
            default: _out.Enqueue(Ps2Keyboard.Resend); break;
        }
    }
}
