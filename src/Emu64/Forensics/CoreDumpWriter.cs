using System.Buffers.Binary;
using Emu64.Cpu;
using static Emu64.Forensics.CoreLayout;

namespace Emu64.Forensics;

/// <summary>
/// Writes a stopped machine's RAM and CPU state as an ELF core file in QEMU's <c>dump-guest-memory</c>
/// layout (<see cref="CoreLayout"/>). Nothing in the file depends on the host or on time: the same machine
/// state gives the same bytes, so two dumps of the same run compare equal with cmp.
/// </summary>
public static class CoreDumpWriter
{
    /// <summary>A contiguous range of guest RAM: one PT_LOAD.</summary>
    public readonly record struct RamRange(ulong Start, ulong Length);

    /// <summary>Emu64's RAM is one range from physical 0 (MMIO windows lie above it and are not dumped, as in QEMU).</summary>
    public static IReadOnlyList<RamRange> RamRanges(Machine m) => [new RamRange(0, m.Memory.RamSize)];

    /// <summary>Writes the dump to <paramref name="path"/> (replaced if it exists). Returns the file size.</summary>
    public static long WriteFile(Machine m, string path)
    {
        using var f = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        Write(m, f);
        return f.Length;
    }

    public static void Write(Machine m, Stream output)
    {
        var ranges = RamRanges(m);
        byte[] notes = Notes(m.Cpu);
        int phnum = 1 + ranges.Count;
        long noteOffset = EhdrSize + (long)PhdrSize * phnum;
        long memOffset = noteOffset + notes.Length;

        var head = new byte[noteOffset];
        var h = head.AsSpan();
        // e_ident: magic, ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_NONE, padding
        h[0] = 0x7F; h[1] = (byte)'E'; h[2] = (byte)'L'; h[3] = (byte)'F'; h[4] = 2; h[5] = 1; h[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(h[16..], EtCore);
        BinaryPrimitives.WriteUInt16LittleEndian(h[18..], EmX86_64);
        BinaryPrimitives.WriteUInt32LittleEndian(h[20..], 1);                // e_version
        BinaryPrimitives.WriteUInt64LittleEndian(h[32..], EhdrSize);         // e_phoff
        BinaryPrimitives.WriteUInt16LittleEndian(h[52..], EhdrSize);         // e_ehsize
        BinaryPrimitives.WriteUInt16LittleEndian(h[54..], PhdrSize);         // e_phentsize
        BinaryPrimitives.WriteUInt16LittleEndian(h[56..], (ushort)phnum);    // e_phnum (no section headers)

        var note = h[EhdrSize..];
        BinaryPrimitives.WriteUInt32LittleEndian(note, PtNote);
        BinaryPrimitives.WriteUInt64LittleEndian(note[8..], (ulong)noteOffset);   // p_offset; p_vaddr = p_paddr = 0
        BinaryPrimitives.WriteUInt64LittleEndian(note[32..], (ulong)notes.Length); // p_filesz
        BinaryPrimitives.WriteUInt64LittleEndian(note[40..], (ulong)notes.Length); // p_memsz

        long off = memOffset;
        for (int i = 0; i < ranges.Count; i++)
        {
            var p = h[(EhdrSize + PhdrSize * (i + 1))..];
            var r = ranges[i];
            BinaryPrimitives.WriteUInt32LittleEndian(p, PtLoad);
            BinaryPrimitives.WriteUInt64LittleEndian(p[8..], (ulong)off);     // p_offset
            BinaryPrimitives.WriteUInt64LittleEndian(p[16..], r.Start);       // p_vaddr (= p_paddr, as QEMU without paging)
            BinaryPrimitives.WriteUInt64LittleEndian(p[24..], r.Start);       // p_paddr
            BinaryPrimitives.WriteUInt64LittleEndian(p[32..], r.Length);      // p_filesz
            BinaryPrimitives.WriteUInt64LittleEndian(p[40..], r.Length);      // p_memsz
            off += (long)r.Length;
        }

        output.Write(head);
        output.Write(notes);
        foreach (var r in ranges)
        {
            // Streamed in 1 MiB pieces straight from guest RAM: a 3 GiB dump needs no 3 GiB buffer (and no span that long).
            for (ulong k = 0; k < r.Length; k += 1 << 20)
                output.Write(m.Memory.RamSpan(r.Start + k, (int)Math.Min(1UL << 20, r.Length - k)));
        }
        output.Flush();
    }

    /// <summary>The note segment: NT_PRSTATUS "CORE", then the "QEMU" CPU state (one CPU).</summary>
    public static byte[] Notes(Cpu.Cpu c)
    {
        var buf = new byte[NoteSize(5, PrstatusSize) + NoteSize(5, QemuCpuStateSize)];
        int o = WriteNote(buf, 0, "CORE", NtPrstatus, PrstatusSize, d => Prstatus(c, d));
        WriteNote(buf, o, "QEMU", NtQemu, QemuCpuStateSize, d => QemuCpuState(c, d));
        return buf;
    }

    private static int WriteNote(byte[] buf, int at, string name, uint type, int descSize, SpanAction fill)
    {
        var s = buf.AsSpan(at);
        BinaryPrimitives.WriteUInt32LittleEndian(s, (uint)name.Length + 1);   // n_namesz counts the NUL
        BinaryPrimitives.WriteUInt32LittleEndian(s[4..], (uint)descSize);
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], type);
        System.Text.Encoding.ASCII.GetBytes(name, s[NhdrSize..]);
        int desc = NhdrSize + Align4(name.Length + 1);
        fill(s.Slice(desc, descSize));
        return at + desc + Align4(descSize);
    }

    private delegate void SpanAction(Span<byte> s);

    /// <summary>
    /// struct elf_prstatus with pr_pid = CPU index + 1 (QEMU's numbering) and pr_reg filled as a user_regs_struct
    /// (orig_rax 0: a machine has no system call in progress to restart; segment registers as selectors).
    /// </summary>
    private static void Prstatus(Cpu.Cpu c, Span<byte> d)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(d[PrPid..], 1);
        for (int i = 0; i < UserRegs.Length; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(d[(PrReg + 8 * i)..], UserReg(c, UserRegs[i]));
    }

    public static ulong UserReg(Cpu.Cpu c, string name)
    {
        int gpr = Array.IndexOf(Reg.Names64, name);
        if (gpr >= 0) return c.R[gpr];
        return name switch
        {
            "orig_rax" => 0,
            "rip" => c.Rip,
            "eflags" or "rflags" => c.Rflags,
            "cs" => c.Segs[Seg.CS].Selector, "ss" => c.Segs[Seg.SS].Selector, "ds" => c.Segs[Seg.DS].Selector,
            "es" => c.Segs[Seg.ES].Selector, "fs" => c.Segs[Seg.FS].Selector, "gs" => c.Segs[Seg.GS].Selector,
            "fs_base" => c.Segs[Seg.FS].Base, "gs_base" => c.Segs[Seg.GS].Base,
            _ => throw new ArgumentException($"no register {name}"),
        };
    }

    private static void QemuCpuState(Cpu.Cpu c, Span<byte> d)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(d, QemuCpuStateVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(d[4..], QemuCpuStateSize);
        for (int i = 0; i < QemuRegNames.Length; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(d[(QemuRegs + 8 * i)..], UserReg(c, QemuRegNames[i]));
        Segment[] segs =
        [
            c.Segs[Seg.CS], c.Segs[Seg.DS], c.Segs[Seg.ES], c.Segs[Seg.FS], c.Segs[Seg.GS], c.Segs[Seg.SS], c.Ldtr, c.Tr,
            new Segment { Base = c.Gdtr.Base, Limit = c.Gdtr.Limit }, new Segment { Base = c.Idtr.Base, Limit = c.Idtr.Limit },
        ];
        for (int i = 0; i < segs.Length; i++)
        {
            var s = d[(QemuSegs + QemuSegSize * i)..];
            BinaryPrimitives.WriteUInt32LittleEndian(s, segs[i].Selector);
            BinaryPrimitives.WriteUInt32LittleEndian(s[4..], segs[i].Limit);
            // Emu64 keeps descriptor bits 40..55; QEMU keeps the second dword's bits 8..23: the same bits, 8 higher.
            BinaryPrimitives.WriteUInt32LittleEndian(s[8..], (uint)segs[i].Attr << 8);
            BinaryPrimitives.WriteUInt64LittleEndian(s[16..], segs[i].Base);
        }
        ulong[] cr = [c.CR0, 0, c.CR2, c.CR3, c.CR4];
        for (int i = 0; i < 5; i++) BinaryPrimitives.WriteUInt64LittleEndian(d[(QemuCr + 8 * i)..], cr[i]);
        BinaryPrimitives.WriteUInt64LittleEndian(d[QemuKernelGsBase..], c.KernelGsBase);
    }
}
