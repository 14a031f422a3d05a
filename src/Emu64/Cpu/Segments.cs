namespace Emu64.Cpu;

/// <summary>Segment descriptors: reading them from the GDT/LDT and loading segment registers with their checks (SDM vol. 3A §3.4, §5).</summary>
public sealed partial class Cpu
{
    /// <summary>Reads the 8-byte descriptor a selector names; #GP(selector) past the table limit.</summary>
    public ulong ReadDescriptor(ushort sel, uint ext = 0)
    {
        bool ldt = (sel & 4) != 0;
        ulong tableBase = ldt ? Ldtr.Base : Gdtr.Base;
        uint limit = ldt ? Ldtr.Limit : Gdtr.Limit;
        if (ldt && (Ldtr.Selector & ~3) == 0) Gp((uint)(sel & ~3) | ext);
        uint index = (uint)(sel & ~7);
        if (index + 7 > limit) Gp((uint)(sel & ~3) | ext);
        return ReadImplicit(tableBase + index, 8);
    }

    /// <summary>The upper 8 bytes of a 16-byte system descriptor (TSS/LDT in long mode).</summary>
    public ulong ReadDescriptorHigh(ushort sel)
    {
        uint index = (uint)(sel & ~7) + 8;
        if (index + 7 > Gdtr.Limit) Gp((uint)(sel & ~3));
        return ReadImplicit(Gdtr.Base + index, 8);
    }

    public static Segment DescriptorToSegment(ushort sel, ulong d)
    {
        uint limit = (uint)(d & 0xFFFF) | (uint)((d >> 32) & 0xF0000);
        ushort attr = (ushort)((d >> 40) & 0xF0FF);   // access byte, and AVL L D/B G in bits 12..15
        if ((attr & 0x8000) != 0) limit = (limit << 12) | 0xFFF;
        ulong b = ((d >> 16) & 0xFFFFFF) | ((d >> 32) & 0xFF000000);
        return new Segment { Selector = sel, Base = b, Limit = limit, Attr = attr };
    }

    /// <summary>Sets the accessed bit of a descriptor if it is clear (an implicit supervisor write).</summary>
    private void MarkAccessed(ushort sel, ulong desc)
    {
        if ((desc & (1UL << 40)) != 0) return;
        ulong tableBase = (sel & 4) != 0 ? Ldtr.Base : Gdtr.Base;
        WriteImplicitLinear(tableBase + (uint)(sel & ~7) + 5, 1, (desc >> 40) | 1);
    }

    /// <summary>MOV/POP to DS, ES, FS, GS or SS with the protected-mode checks.</summary>
    public void LoadSegment(int seg, ushort sel)
    {
        if (Mode == CpuMode.Real)
        {
            Segs[seg].Selector = sel;
            Segs[seg].Base = (ulong)sel << 4;
            return;
        }
        if (Mode == CpuMode.Virtual8086) { Segs[seg] = Vm86Segment(sel); return; }
        int rpl = sel & 3;
        if ((sel & ~3) == 0)
        {
            // A null selector: allowed for data segments; for SS only in 64-bit mode at CPL < 3.
            if (seg == Seg.SS && !(Is64 && Cpl != 3 && rpl == Cpl)) Gp(0);
            Segs[seg] = new Segment { Selector = sel, Attr = seg == Seg.SS ? (ushort)(Cpl << 5) : (ushort)0 };
            if (seg == Seg.SS) { Segs[seg].Attr |= 0x93; Segs[seg].Limit = 0xFFFFFFFF; }
            return;
        }
        ulong d = ReadDescriptor(sel);
        var s = DescriptorToSegment(sel, d);
        uint err = (uint)(sel & ~3);
        if (s.IsSystem) Gp(err);
        if (seg == Seg.SS)
        {
            if (rpl != Cpl || s.Dpl != Cpl || s.IsCode || (s.Type & 2) == 0) Gp(err);
            if (!s.Present) Fault(Vec.SS, err);
        }
        else
        {
            bool readableCode = s.IsCode && (s.Type & 2) != 0;
            if (s.IsCode && !readableCode) Gp(err);
            bool conformingCode = s.IsCode && (s.Type & 4) != 0;
            if (!conformingCode && (rpl > s.Dpl || Cpl > s.Dpl)) Gp(err);
            if (!s.Present) Fault(Vec.NP, err);
        }
        MarkAccessed(sel, d);
        Segs[seg] = s;
    }

    /// <summary>Loads CS for a far transfer to a code segment (no call gates). Returns the checked segment.</summary>
    public Segment CheckCodeSegment(ushort sel, int newCpl)
    {
        if (Mode == CpuMode.Virtual8086) return Vm86Segment(sel);
        if (Mode == CpuMode.Real)
        {
            // Real-address mode: a far transfer loads the selector and base = selector × 16, nothing
            // else; limit and attributes stay what the descriptor cache holds (SDM vol. 3A §20.1.1).
            var real = Segs[Seg.CS];
            real.Selector = sel;
            real.Base = (ulong)sel << 4;
            return real;
        }
        uint err = (uint)(sel & ~3);
        if ((sel & ~3) == 0) Gp(0);
        ulong d = ReadDescriptor(sel);
        var s = DescriptorToSegment(sel, d);
        if (!s.IsCode) Gp(err);
        bool conforming = (s.Type & 4) != 0;
        if (conforming ? s.Dpl > newCpl : s.Dpl != newCpl) Gp(err);
        if (!s.Present) Fault(Vec.NP, err);
        if (LongMode && s.Long && s.Db) Gp(err);
        MarkAccessed(sel, d);
        s.Selector = (ushort)((sel & ~3) | newCpl);
        return s;
    }

    /// <summary>
    /// A segment register loaded in virtual-8086 mode (or by the entry into it): base = selector × 16, limit FFFFH, and
    /// the attributes of a present, accessed, read/write DPL 3 data segment with 16-bit default size — CS included, as
    /// the SDM gives them for every segment of a virtual-8086 guest (vol. 3C §26.3.1.2, access rights F3H).
    /// </summary>
    public static Segment Vm86Segment(ushort sel) => new() { Selector = sel, Base = (ulong)sel << 4, Limit = 0xFFFF, Attr = 0xF3 };

    public void SetCs(Segment cs)
    {
        Segs[Seg.CS] = cs;
        UpdateMode();
        ExitBlock = true;
    }
}
