using System.Numerics;
using System.Runtime.CompilerServices;

namespace Emu64.Cpu;

/// <summary>RFLAGS bit masks, named as in the SDM.</summary>
public static class RFlags
{
    public const ulong CF = 1 << 0, Reserved1 = 1 << 1, PF = 1 << 2, AF = 1 << 4, ZF = 1 << 6, SF = 1 << 7;
    public const ulong TF = 1 << 8, IF = 1 << 9, DF = 1 << 10, OF = 1 << 11, IOPL = 3 << 12, NT = 1 << 14;
    public const ulong RF = 1 << 16, VM = 1 << 17, AC = 1 << 18, VIF = 1 << 19, VIP = 1 << 20, ID = 1 << 21;
    /// <summary>The six status flags that arithmetic computes.</summary>
    public const ulong Status = CF | PF | AF | ZF | SF | OF;
    /// <summary>
    /// The bits the RFLAGS setter keeps: those POPF can change at CPL 0, and VM, which only IRET and a task switch set
    /// (each caller masks what it may change). VIF and VIP stay 0: there is no CR4.VME/PVI.
    /// </summary>
    public const ulong Writable = Status | TF | IF | DF | IOPL | NT | RF | VM | AC | ID;
}

/// <summary>Which operation last set the status flags; they are computed from it only when read.</summary>
public enum LazyOp : byte { None, Add, Sub, Logic, Inc, Dec }

/// <summary>
/// Lazy status flags. Every flag computation in the emulator lives here: an ALU handler records its
/// operands and result (a few stores), and CF/ZF/SF/OF/AF/PF are derived only when something reads them
/// (Jcc, SETcc, PUSHF, an exception frame). Instructions that are not on the list set flags eagerly
/// through <see cref="Cpu.SetStatus"/>.
/// </summary>
public sealed partial class Cpu
{
    // When LazyOp == None the status bits live in _rflags. Otherwise they are a function of the fields below.
    internal LazyOp _lazyOp;
    internal byte _lazySize;          // operand size in bytes
    internal ulong _lazyA, _lazyB, _lazyRes;   // operands and result, masked to the size
    internal ulong _rflags = RFlags.Reserved1;  // all non-status bits, and status bits when not lazy
    // CF (0 or 1), current in every state: an ADD or SUB computes it at once (one compare), so INC and DEC, which keep CF,
    // need not evaluate the operation before them, and JB/ADC/SETB read one field. While _lazyOp is None it equals _rflags' CF.
    internal ulong _cf;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void SetLazy(LazyOp op, int size, ulong a, ulong b, ulong res)
    {
        // a, b and res are masked to the size: an ADD carried when the sum wrapped below a, a SUB borrowed when a < b.
        _cf = op == LazyOp.Add ? Bit(res < a) : op == LazyOp.Sub ? Bit(a < b) : op == LazyOp.Logic ? 0 : _cf;   // INC/DEC keep CF
        _lazyOp = op; _lazySize = (byte)size; _lazyA = a; _lazyB = b; _lazyRes = res;
    }

    /// <summary>Records INC/DEC: CF is kept (it stays in <see cref="_cf"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void SetLazyIncDec(LazyOp op, int size, ulong a, ulong res)
    {
        _lazyOp = op; _lazySize = (byte)size; _lazyA = a; _lazyB = 1; _lazyRes = res;
    }

    /// <summary>Sets all six status flags at once (eager form): one masked store, no branches, inlined into the handlers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void SetStatus(bool cf, bool pf, bool af, bool zf, bool sf, bool of)
    {
        _lazyOp = LazyOp.None;
        _cf = Bit(cf);
        _rflags = (_rflags & ~RFlags.Status) | Bit(cf) | Bit(pf) << 2 | Bit(af) << 4 | Bit(zf) << 6 | Bit(sf) << 7 | Bit(of) << 11;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Bit(bool b) => b ? 1UL : 0UL;

    /// <summary>Sets CF/PF/ZF/SF from a result, with the given CF, OF and AF (eager form used by shifts and friends).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void SetStatusFromResult(ulong res, int size, bool cf, bool of, bool af = false)
        => SetStatus(cf, Parity(res), af, (res & InsnBuilder.Mask(size)) == 0, ((res >> (size * 8 - 1)) & 1) != 0, of);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Parity(ulong v) => (BitOperations.PopCount((uint)(v & 0xFF)) & 1) == 0;

    private int SignShift => _lazySize * 8 - 1;

    public bool Cf
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _cf != 0;
    }

    public bool Zf
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _lazyOp == LazyOp.None ? (_rflags & RFlags.ZF) != 0 : _lazyRes == 0;
    }

    public bool Sf
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _lazyOp == LazyOp.None ? (_rflags & RFlags.SF) != 0 : ((_lazyRes >> SignShift) & 1) != 0;
    }

    public bool Pf
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _lazyOp == LazyOp.None ? (_rflags & RFlags.PF) != 0 : Parity(_lazyRes);
    }

    public bool Af => _lazyOp switch
    {
        LazyOp.None => (_rflags & RFlags.AF) != 0,
        LazyOp.Logic => false,
        _ => (((_lazyA ^ _lazyB ^ _lazyRes) >> 4) & 1) != 0,
    };

    public bool Of
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _lazyOp switch
        {
            LazyOp.None => (_rflags & RFlags.OF) != 0,
            LazyOp.Add or LazyOp.Inc => ((((_lazyA ^ _lazyRes) & (_lazyB ^ _lazyRes)) >> SignShift) & 1) != 0,
            LazyOp.Sub or LazyOp.Dec => ((((_lazyA ^ _lazyB) & (_lazyA ^ _lazyRes)) >> SignShift) & 1) != 0,
            _ => false,
        };
    }

    public bool Df => (_rflags & RFlags.DF) != 0;
    public bool If => (_rflags & RFlags.IF) != 0;
    public bool Tf => (_rflags & RFlags.TF) != 0;
    public bool Ac
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (_rflags & RFlags.AC) != 0;
    }
    public int Iopl => (int)((_rflags >> 12) & 3);

    /// <summary>The architectural RFLAGS value.</summary>
    public ulong Rflags
    {
        get
        {
            LazyOp op = _lazyOp;
            if (op == LazyOp.None) return _rflags;
            // The six flags of the recorded operation at once, as Cf..Of give them one by one (SYSCALL, PUSHF and every
            // exception or interrupt frame read RFLAGS): one test of the operation instead of one per flag.
            ulong a = _lazyA, b = _lazyB, res = _lazyRes;
            int sign = SignShift;
            ulong f = (_rflags & ~RFlags.Status) | Bit(_cf != 0);
            if (Parity(res)) f |= RFlags.PF;
            if (op != LazyOp.Logic) f |= (a ^ b ^ res) & RFlags.AF;   // the carry out of bit 3 (INC/DEC record b = 1)
            if (res == 0) f |= RFlags.ZF;
            f |= ((res >> sign) & 1) << 7;                                // SF
            ulong o = op is LazyOp.Add or LazyOp.Inc ? (a ^ res) & (b ^ res)
                    : op is LazyOp.Sub or LazyOp.Dec ? (a ^ b) & (a ^ res) : 0;
            f |= ((o >> sign) & 1) << 11;                                 // OF
            return f;
        }
        set
        {
            _lazyOp = LazyOp.None;
            _rflags = (value & RFlags.Writable) | RFlags.Reserved1;
            _cf = value & RFlags.CF;
        }
    }

    /// <summary>Sets or clears one non-status flag (IF, DF, AC, TF, ...).</summary>
    public void SetFlag(ulong mask, bool on)
    {
        if (mask == RFlags.CF)
        {
            // CF alone (BT/BTS/BTR/BTC, CLC/STC/CMC): it lives in _cf in every state, so the lazy operation need not be
            // evaluated for the other five, which stay what it gives (the entry trampoline's BTS/BT on every system call).
            _cf = Bit(on);
            if (_lazyOp == LazyOp.None) _rflags = (_rflags & ~RFlags.CF) | _cf;
            return;
        }
        if ((mask & RFlags.Status) != 0) Materialize();
        _rflags = on ? _rflags | mask : _rflags & ~mask;
        _cf = _rflags & RFlags.CF;
    }

    public void Materialize()
    {
        if (_lazyOp == LazyOp.None) return;
        ulong f = Rflags;
        _lazyOp = LazyOp.None;
        _rflags = f;
    }

    /// <summary>Evaluates condition code cc (the low nibble of Jcc/SETcc/CMOVcc opcodes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Condition(int cc)
    {
        bool r = (cc >> 1) switch
        {
            0 => Of,
            1 => Cf,
            2 => Zf,
            3 => Cf || Zf,
            4 => Sf,
            5 => Pf,
            6 => Sf != Of,
            _ => Zf || (Sf != Of),
        };
        return r ^ ((cc & 1) != 0);
    }
}
