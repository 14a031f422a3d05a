using System.Buffers.Binary;
using System.Text;
using Emu64.Memory;

namespace Emu64.Loader;

/// <summary>
/// Boots an ELF kernel through its PVH entry, as <c>qemu-system-x86_64 -kernel vmlinux</c> does: the kernel
/// names a 32-bit physical entry point in an ELF note (name "Xen", type XEN_ELFNOTE_PHYS32_ENTRY = 18; Linux
/// emits it with CONFIG_PVH, arch/x86/platform/pvh/head.S). The loader puts the PT_LOAD segments at their
/// physical addresses, builds <c>struct hvm_start_info</c> (Xen's public arch-x86/hvm/start_info.h, version 1:
/// command line, module list with the initrd, memory map, RSDP) and starts the CPU as the PVH ABI says
/// (Xen's docs/misc/pvh.pandoc): 32-bit protected mode, paging off, CR4 = 0, flat 4 GiB code and data
/// segments, a 32-bit TSS with base 0 and limit 0x67, IF = TF = VM = 0, EBX = the start info.
/// <code>
///   0x10000  hvm_start_info (56 bytes)
///   0x10040  hvm_modlist_entry[1]  (the initrd: paddr, size, cmdline_paddr 0)
///   0x10080  hvm_memmap_table_entry[] (the e820 map, <see cref="E820"/>)
///   0x20000  the command line (QEMU's cmdline_addr)
/// </code>
/// </summary>
public static class Pvh
{
    public const uint NoteType = 18;   // XEN_ELFNOTE_PHYS32_ENTRY
    public const string NoteName = "Xen";
    public const uint StartInfoMagic = 0x336EC578;   // XEN_HVM_START_MAGIC_VALUE
    public const uint StartInfoVersion = 1;

    public const uint StartInfoAddress = 0x10000, ModListAddress = 0x10040, MemMapAddress = 0x10080, CmdLineAddress = 0x20000;
    /// <summary>The area the loader writes (start info, lists, command line up to the longest --append): no segment may lie there.</summary>
    public const ulong InfoStart = 0x10000, InfoEnd = 0x31000;
    /// <summary>QEMU's initrd_max for a kernel without a Linux setup header (protocol "0"): 0x37FFFFFF.</summary>
    public const ulong InitrdAddrMax = 0x37FFFFFF;

    /// <summary>Offsets in struct hvm_start_info.</summary>
    public static class Si
    {
        public const int Magic = 0, Version = 4, Flags = 8, NrModules = 12, ModlistPaddr = 16, CmdlinePaddr = 24, RsdpPaddr = 32,
            MemmapPaddr = 40, MemmapEntries = 48, Reserved = 52, Size = 56;
    }

    public sealed record Result(uint Entry, uint StartInfo, ulong KernelEnd, ulong RamdiskImage, ulong RamdiskSize, ElfImage Elf);

    /// <summary>The PVH entry point from the note, or null when the file has none. A malformed note is refused.</summary>
    public static uint? FindEntry(ElfImage elf)
    {
        var desc = elf.FindNote(NoteName, NoteType);
        if (desc is null) return null;
        ulong entry = desc.Length switch
        {
            4 => BinaryPrimitives.ReadUInt32LittleEndian(desc),
            8 => BinaryPrimitives.ReadUInt64LittleEndian(desc),
            _ => throw new ImageException($"PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) has a {desc.Length}-byte value, not 4 or 8"),
        };
        if (entry > uint.MaxValue) throw new ImageException($"PVH entry point 0x{entry:x} is above 4 GiB");
        return (uint)entry;
    }

    public static Result Load(PhysicalMemory mem, ElfImage elf, uint entry, string append, IReadOnlyList<BootModule> initrds, ulong rsdp)
    {
        var segs = elf.Segments;
        ulong end = 0;
        bool entryInside = false;
        for (int i = 0; i < segs.Count; i++)
        {
            var s = segs[i];
            Multiboot.CheckRange(mem, s.PhysAddr, s.MemSize, $"ELF segment {i}");
            if (s.MemSize != 0 && s.PhysAddr < InfoEnd && s.PhysAddr + s.MemSize > InfoStart)
                throw new ImageException($"ELF segment {i} [0x{s.PhysAddr:x}, 0x{s.PhysAddr + s.MemSize:x}) overlaps the PVH start info area [0x{InfoStart:x}, 0x{InfoEnd:x})");
            for (int j = 0; j < i; j++)
            {
                var t = segs[j];
                if (s.MemSize != 0 && t.MemSize != 0 && s.PhysAddr < t.PhysAddr + t.MemSize && t.PhysAddr < s.PhysAddr + s.MemSize)
                    throw new ImageException($"ELF segments {j} [0x{t.PhysAddr:x}, 0x{t.PhysAddr + t.MemSize:x}) and {i} [0x{s.PhysAddr:x}, 0x{s.PhysAddr + s.MemSize:x}) overlap");
            }
            if (entry >= s.PhysAddr && entry < s.PhysAddr + s.FileSize) entryInside = true;
            end = Math.Max(end, s.PhysAddr + s.MemSize);
        }
        if (!entryInside) throw new ImageException($"PVH entry point 0x{entry:x} lies in no loadable segment");
        var (rdAddr, rdSize) = LinuxBoot.PlaceInitrd(mem, initrds, InitrdAddrMax, end, "the kernel");

        var si = new byte[Si.Size];
        var b = si.AsSpan();
        W32(b, Si.Magic, StartInfoMagic);
        W32(b, Si.Version, StartInfoVersion);
        W32(b, Si.NrModules, rdSize != 0 ? 1u : 0u);
        W64(b, Si.ModlistPaddr, rdSize != 0 ? ModListAddress : 0);
        W64(b, Si.CmdlinePaddr, CmdLineAddress);
        W64(b, Si.RsdpPaddr, rsdp);
        var map = E820.Map(mem.RamSize);
        W64(b, Si.MemmapPaddr, MemMapAddress);
        W32(b, Si.MemmapEntries, (uint)map.Length);
        var mm = new byte[24 * map.Length];
        for (int k = 0; k < map.Length; k++)
        {
            W64(mm, 24 * k, map[k].Base); W64(mm, 24 * k + 8, map[k].Length); W32(mm, 24 * k + 16, map[k].Type);
        }
        var mod = new byte[32];
        W64(mod, 0, rdAddr); W64(mod, 8, rdSize);

        foreach (var s in segs)
        {
            mem.WriteBytes(s.PhysAddr, elf.SegmentBytes(s));
            if (s.MemSize > s.FileSize) mem.WriteBytes(s.PhysAddr + s.FileSize, new byte[s.MemSize - s.FileSize]);
        }
        mem.WriteBytes(StartInfoAddress, si);
        mem.WriteBytes(MemMapAddress, mm);
        if (rdSize != 0) { mem.WriteBytes(ModListAddress, mod); mem.WriteBytes(rdAddr, initrds[0].Data); }
        mem.WriteBytes(CmdLineAddress, Encoding.UTF8.GetBytes(append + "\0"));
        return new Result(entry, StartInfoAddress, end, rdAddr, rdSize, elf);
    }

    /// <summary>Sets the CPU to the PVH entry state.</summary>
    public static void Enter(Cpu.Cpu cpu, Result r)
    {
        cpu.ResetToFlat32(r.Entry);
        cpu.Tr = new Cpu.Segment { Attr = 0x8B, Limit = 0x67 };   // an active (busy) 32-bit TSS, base 0, limit 0x67
        cpu.R[Cpu.Reg.RBX] = r.StartInfo;
    }

    private static void W32(Span<byte> d, int o, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(d[o..], v);
    private static void W64(Span<byte> d, int o, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(d[o..], v);
}
