using System.Runtime.CompilerServices;

namespace Emu64.Cpu;

/// <summary>
/// The x87 FPU's architectural state (SDM vol. 1 §8.1): eight physical 80-bit data registers R0..R7,
/// the stack top TOP (ST(i) is R[(TOP+i) mod 8]), one valid bit per physical register (the tag word
/// proper — 00/01/10 — is computed from the contents whenever it is stored, SDM §8.1.7), the control
/// word, the status word (its TOP field kept apart in <see cref="Top"/>), and the last-instruction
/// pointers FOP, FIP/FCS and FDP/FDS. MMX registers MM0..MM7 are the significands of R0..R7 (§9.5).
/// </summary>
public sealed class X87
{
    // status word bits (SDM vol. 1 figure 8-4)
    public const ushort IE = 1, DE = 2, ZE = 4, OE = 8, UE = 16, PE = 32, SF = 64, ES = 0x80;
    public const ushort C0 = 0x100, C1 = 0x200, C2 = 0x400, C3 = 0x4000, B = 0x8000;
    public const ushort Flags = 0x3F, CcMask = C0 | C1 | C2 | C3;

    /// <summary>Significands of R0..R7 (bit 63 is the explicit integer bit J).</summary>
    public readonly ulong[] Sig = new ulong[8];
    /// <summary>Sign (bit 15) and biased 15-bit exponent of R0..R7.</summary>
    public readonly ushort[] Se = new ushort[8];
    /// <summary>Bit r set: physical register r is not empty (the FXSAVE abridged tag word).</summary>
    public byte Valid;
    public int Top;
    /// <summary>Control word; bits 6 and 13..15 are reserved (bit 6 reads as 1 after FNINIT only because 0x37F sets it).</summary>
    public ushort Fcw = 0x37F;
    /// <summary>Status word without TOP (bits 13..11 are always 0 here; <see cref="Fsw"/> merges TOP in).</summary>
    public ushort Status;
    public ushort Fop, Fcs, Fds;
    public ulong Fip, Fdp;

    /// <summary>The architectural status word, TOP in bits 13..11.</summary>
    public ushort Fsw
    {
        get => (ushort)((Status & ~0x3800) | (Top << 11));
        set { Status = (ushort)(value & ~0x3800); Top = (value >> 11) & 7; }
    }

    /// <summary>Physical register number of ST(i).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Phys(int i) => (Top + i) & 7;

    public bool IsEmpty(int st) => (Valid & (1 << Phys(st))) == 0;

    /// <summary>FNINIT (and reset): FCW 0x37F, FSW 0, all empty, pointers 0 (SDM vol. 1 table 8-1). The registers keep their bits.</summary>
    public void Init()
    {
        Fcw = 0x37F; Status = 0; Top = 0; Valid = 0;
        Fop = Fcs = Fds = 0; Fip = Fdp = 0;
    }

    /// <summary>
    /// Recomputes ES and B from the exception flags and masks: an unmasked flag that is set is a pending exception,
    /// reported by #MF at the next waiting x87 instruction (SDM vol. 1 §8.6). Call after FCW or FSW change.
    /// </summary>
    public void UpdateSummary()
    {
        if ((Status & ~Fcw & Flags) != 0) Status |= ES | B;
        else Status &= unchecked((ushort)~(ES | B));
    }

    /// <summary>The 2-bit tag of physical register r from its contents (SDM vol. 1 §8.1.7): 00 valid, 01 zero, 10 special, 11 empty.</summary>
    public int Tag(int r)
    {
        if ((Valid & (1 << r)) == 0) return 3;
        int e = Se[r] & 0x7FFF;
        ulong s = Sig[r];
        if (e == 0x7FFF) return 2;
        if (e == 0) return s == 0 ? 1 : 2;
        return (s >> 63) != 0 ? 0 : 2;   // unnormal: special
    }

    /// <summary>The full tag word (FNSTENV/FNSAVE), physical register r in bits 2r+1..2r.</summary>
    public ushort TagWord()
    {
        int w = 0;
        for (int r = 0; r < 8; r++) w |= Tag(r) << (2 * r);
        return (ushort)w;
    }

    /// <summary>Loads a full tag word (FLDENV/FRSTOR): only "empty" (11) or not matters; the rest is recomputed from contents.</summary>
    public void SetTagWord(ushort w)
    {
        Valid = 0;
        for (int r = 0; r < 8; r++) if (((w >> (2 * r)) & 3) != 3) Valid |= (byte)(1 << r);
    }
}
