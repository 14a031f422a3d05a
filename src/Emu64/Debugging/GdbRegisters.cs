using System.Text;
using Emu64.Cpu;

namespace Emu64.Debugging;

/// <summary>
/// The register file gdb sees: always the i386:x86-64 layout (as QEMU does, whatever mode the CPU is
/// in), then the segment bases and a system feature with the control registers and EFER. The order
/// here is the remote register number order of the g packet and of target.xml.
/// </summary>
public static class GdbRegisters
{
    public readonly record struct Def(string Name, int Size, string Type, string Feature, string Group = "");

    private const string Core = "org.gnu.gdb.i386.core", Sse = "org.gnu.gdb.i386.sse", Segs = "org.gnu.gdb.i386.segments", Sys = "org.emu64.gdb.x86-64.system";

    // gdb's amd64 order of the first 16 registers differs from the encoding order.
    private static readonly int[] GprOrder = [Reg.RAX, Reg.RBX, Reg.RCX, Reg.RDX, Reg.RSI, Reg.RDI, Reg.RBP, Reg.RSP, 8, 9, 10, 11, 12, 13, 14, 15];
    private static readonly int[] SegOrder = [Seg.CS, Seg.SS, Seg.DS, Seg.ES, Seg.FS, Seg.GS];

    public static readonly Def[] Defs = BuildDefs();

    public const int Rip = 16, Eflags = 17, FirstSeg = 18, FirstSt = 24, FirstFpCtl = 32, FirstXmm = 40, Mxcsr = 56;
    public const int FsBase = 57, GsBase = 58, KGsBase = 59, Cr0 = 60, Cr2 = 61, Cr3 = 62, Cr4 = 63, Cr8 = 64, EferReg = 65;

    private static Def[] BuildDefs()
    {
        var d = new List<Def>();
        foreach (int r in GprOrder) d.Add(new(Reg.Names64[r], 8, r is Reg.RSP or Reg.RBP ? "data_ptr" : "int64", Core));
        d.Add(new("rip", 8, "code_ptr", Core));
        d.Add(new("eflags", 4, "i386_eflags", Core));
        foreach (int s in SegOrder) d.Add(new(Seg.Names[s], 4, "int32", Core));
        for (int i = 0; i < 8; i++) d.Add(new($"st{i}", 10, "i387_ext", Core));
        foreach (var n in new[] { "fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop" }) d.Add(new(n, 4, "int", Core, "float"));
        for (int i = 0; i < 16; i++) d.Add(new($"xmm{i}", 16, "vec128", Sse));
        d.Add(new("mxcsr", 4, "i386_mxcsr", Sse, "vector"));
        d.Add(new("fs_base", 8, "int", Segs));
        d.Add(new("gs_base", 8, "int", Segs));
        foreach (var n in new[] { "k_gs_base", "cr0", "cr2", "cr3", "cr4", "cr8", "efer" }) d.Add(new(n, 8, "int64", Sys, "system"));
        return d.ToArray();
    }

    public static readonly string TargetXml = BuildXml();

    private static string BuildXml()
    {
        var sb = new StringBuilder();
        sb.Append("<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n<target version=\"1.0\">\n");
        sb.Append("<architecture>i386:x86-64</architecture>\n");
        string? feature = null;
        for (int n = 0; n < Defs.Length; n++)
        {
            var r = Defs[n];
            if (r.Feature != feature)
            {
                if (feature != null) sb.Append("</feature>\n");
                feature = r.Feature;
                sb.Append($"<feature name=\"{feature}\">\n");
                if (feature == Core)
                {
                    sb.Append("<flags id=\"i386_eflags\" size=\"4\">");
                    foreach (var (bit, name) in new[] { (0, "CF"), (2, "PF"), (4, "AF"), (6, "ZF"), (7, "SF"), (8, "TF"), (9, "IF"), (10, "DF"), (11, "OF"), (14, "NT"), (16, "RF"), (17, "VM"), (18, "AC"), (19, "VIF"), (20, "VIP"), (21, "ID") })
                        sb.Append($"<field name=\"{name}\" start=\"{bit}\" end=\"{bit}\"/>");
                    sb.Append("</flags>\n");
                }
                if (feature == Sse)
                {
                    sb.Append("<vector id=\"v4f\" type=\"ieee_single\" count=\"4\"/><vector id=\"v2d\" type=\"ieee_double\" count=\"2\"/>");
                    sb.Append("<vector id=\"v16i8\" type=\"int8\" count=\"16\"/><vector id=\"v8i16\" type=\"int16\" count=\"8\"/>");
                    sb.Append("<vector id=\"v4i32\" type=\"int32\" count=\"4\"/><vector id=\"v2i64\" type=\"int64\" count=\"2\"/>\n");
                    sb.Append("<union id=\"vec128\"><field name=\"v4_float\" type=\"v4f\"/><field name=\"v2_double\" type=\"v2d\"/><field name=\"v16_int8\" type=\"v16i8\"/>");
                    sb.Append("<field name=\"v8_int16\" type=\"v8i16\"/><field name=\"v4_int32\" type=\"v4i32\"/><field name=\"v2_int64\" type=\"v2i64\"/><field name=\"uint128\" type=\"uint128\"/></union>\n");
                    sb.Append("<flags id=\"i386_mxcsr\" size=\"4\">");
                    string[] mx = ["IE", "DE", "ZE", "OE", "UE", "PE", "DAZ", "IM", "DM", "ZM", "OM", "UM", "PM", "FZ"];
                    for (int b = 0; b < mx.Length; b++) sb.Append($"<field name=\"{mx[b]}\" start=\"{(b == 13 ? 15 : b)}\" end=\"{(b == 13 ? 15 : b)}\"/>");
                    sb.Append("</flags>\n");
                }
            }
            string group = r.Group != "" ? $" group=\"{r.Group}\"" : "";
            sb.Append($"<reg name=\"{r.Name}\" bitsize=\"{r.Size * 8}\" type=\"{r.Type}\" regnum=\"{n}\"{group}/>\n");
        }
        sb.Append("</feature>\n</target>\n");
        return sb.ToString();
    }

    /// <summary>The value of register n as little-endian hex of its size.</summary>
    public static string Read(Emu64.Cpu.Cpu c, int n)
    {
        if (n < 0 || n >= Defs.Length) return "";
        int size = Defs[n].Size;
        if (n is >= FirstXmm and < FirstXmm + 16)
        {
            UInt128 x = c.Xmm[n - FirstXmm];
            return GdbConnection.LeHex((ulong)x, 8) + GdbConnection.LeHex((ulong)(x >> 64), 8);
        }
        if (n is >= FirstSt and < FirstFpCtl)
        {
            int p = c.Fpu.Phys(n - FirstSt);   // st0..st7 in stack order, as gdb numbers them
            return GdbConnection.LeHex(c.Fpu.Sig[p], 8) + GdbConnection.LeHex(c.Fpu.Se[p], 2);
        }
        return GdbConnection.LeHex(Value(c, n), size);
    }

    private static ulong Value(Emu64.Cpu.Cpu c, int n) => n switch
    {
        < 16 => c.R[GprOrder[n]],
        Rip => c.Rip,
        Eflags => c.Rflags,
        < FirstSt => c.Segs[SegOrder[n - FirstSeg]].Selector,
        < FirstFpCtl => 0,
        FirstFpCtl => c.Fpu.Fcw,
        FirstFpCtl + 1 => c.Fpu.Fsw,
        FirstFpCtl + 2 => c.Fpu.TagWord(),
        FirstFpCtl + 3 => c.Fpu.Fcs,
        FirstFpCtl + 4 => c.Fpu.Fip,
        FirstFpCtl + 5 => c.Fpu.Fds,
        FirstFpCtl + 6 => c.Fpu.Fdp,
        FirstFpCtl + 7 => c.Fpu.Fop,
        Mxcsr => c.Mxcsr,
        FsBase => c.Segs[Seg.FS].Base,
        GsBase => c.Segs[Seg.GS].Base,
        KGsBase => c.KernelGsBase,
        Cr0 => c.CR0, Cr2 => c.CR2, Cr3 => c.CR3, Cr4 => c.CR4, Cr8 => c.CR8, EferReg => c.EFER,
        _ => 0,
    };

    /// <summary>
    /// Writes register n. General registers, RIP, RFLAGS, XMM, MXCSR, the FS/GS bases, CR2 and CR8 can
    /// be written; writes that would need architectural side effects (selectors, CR0/CR3/CR4, EFER)
    /// are refused unless they leave the value unchanged.
    /// </summary>
    public static bool Write(Emu64.Cpu.Cpu c, int n, byte[] bytes)
    {
        if (n < 0 || n >= Defs.Length || bytes.Length != Defs[n].Size) return false;
        ulong v = 0;
        for (int i = Math.Min(8, bytes.Length) - 1; i >= 0; i--) v = v << 8 | bytes[i];
        switch (n)
        {
            case < 16: c.R[GprOrder[n]] = v; return true;
            case Rip: c.Rip = v; return true;
            case Eflags: c.Rflags = (v & 0x3D7FD7) | 2; return true;   // not VM: a debugger cannot switch to virtual-8086 mode
            case >= FirstXmm and < FirstXmm + 16:
                ulong hi = 0;
                for (int i = 15; i >= 8; i--) hi = hi << 8 | bytes[i];
                c.Xmm[n - FirstXmm] = ((UInt128)hi << 64) | v;
                return true;
            case Mxcsr: c.Mxcsr = (uint)v & 0xFFFF; return true;
            case FsBase: c.Segs[Seg.FS].Base = v; return true;
            case GsBase: c.Segs[Seg.GS].Base = v; return true;
            case KGsBase: c.KernelGsBase = v; return true;
            case Cr2: c.CR2 = v; return true;
            case Cr8: c.CR8 = v & 0xF; return true;
            case >= FirstSt and < FirstFpCtl:
                int p = c.Fpu.Phys(n - FirstSt);
                c.Fpu.Sig[p] = v;
                c.Fpu.Se[p] = (ushort)(bytes[8] | bytes[9] << 8);
                return true;
            case FirstFpCtl: c.Fpu.Fcw = (ushort)v; c.Fpu.UpdateSummary(); return true;
            case FirstFpCtl + 1: c.Fpu.Fsw = (ushort)v; c.Fpu.UpdateSummary(); return true;
            case FirstFpCtl + 2: c.Fpu.SetTagWord((ushort)v); return true;
            case FirstFpCtl + 3: c.Fpu.Fcs = (ushort)v; return true;
            case FirstFpCtl + 4: c.Fpu.Fip = v; return true;
            case FirstFpCtl + 5: c.Fpu.Fds = (ushort)v; return true;
            case FirstFpCtl + 6: c.Fpu.Fdp = v; return true;
            case FirstFpCtl + 7: c.Fpu.Fop = (ushort)(v & 0x7FF); return true;
            default: return Value(c, n) == v;
        }
    }
}
