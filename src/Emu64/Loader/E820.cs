namespace Emu64.Loader;

/// <summary>One range of the BIOS memory map (INT 15h AX=E820h): base, length, type.</summary>
public readonly record struct E820Entry(ulong Base, ulong Length, uint Type)
{
    public ulong End => Base + Length;
}

/// <summary>
/// The machine's physical memory map, as QEMU's firmware (SeaBIOS) reports it for a "pc" machine, and
/// the one map every boot path hands over: the multiboot <c>mmap</c>, Linux's <c>boot_params.e820_table</c>
/// and PVH's <c>hvm_start_info</c> memmap all list exactly these entries, so a kernel sees the same machine
/// whichever way it is booted.
/// <code>
///   [0,          0x9FC00)      usable     conventional memory
///   [0x9FC00,    0xA0000)      reserved   the EBDA (the BIOS's extended data area)
///   (0xA0000,    0xF0000)      absent     VGA window and option ROMs: not RAM to the guest
///   [0xF0000,    0x100000)     reserved   the system BIOS segment
///   [1 MiB,      RAM - 128K)   usable
///   [RAM - 128K, RAM)          reserved   kept by SeaBIOS for its own tables (QEMU's ACPI tables live there)
///   [0xFFFC0000, 4 GiB)        reserved   the BIOS flash mapping below 4 GiB
///   [4 GiB,      ...)          usable     RAM above the 32-bit PCI hole (never, with at most 2047 MiB)
/// </code>
/// The RAM of the reserved ranges exists (the loaders and the platform put firmware data there); the
/// map only tells the kernel not to use it as ordinary memory.
/// </summary>
public static class E820
{
    public const uint Ram = 1, Reserved = 2, Acpi = 3, Nvs = 4;

    /// <summary>End of conventional memory: the EBDA starts here (639 KiB, QEMU's mem_lower).</summary>
    public const ulong LowEnd = 0x9FC00;

    /// <summary>The system BIOS segment, reserved in the map.</summary>
    public const ulong BiosStart = 0xF0000;

    /// <summary>RAM at the top of low memory that QEMU's BIOS keeps for itself (reported reserved).</summary>
    public const ulong BiosReserved = 128 << 10;

    /// <summary>Where the 32-bit PCI hole starts on a QEMU "pc" machine: RAM above it is remapped above 4 GiB.</summary>
    public const ulong LowRamLimit = 0xC0000000UL;

    /// <summary>The top of the usable RAM below 4 GiB (the start of the 128 KiB the BIOS keeps).</summary>
    public static ulong UsableTop(ulong ramSize) => Math.Min(ramSize, LowRamLimit) - BiosReserved;

    /// <summary>The map for a machine with <paramref name="ramSize"/> bytes of RAM, in ascending order.</summary>
    public static E820Entry[] Map(ulong ramSize)
    {
        ulong usableTop = UsableTop(ramSize);
        var map = new List<E820Entry>
        {
            new(0, LowEnd, Ram),
            new(LowEnd, 0xA0000 - LowEnd, Reserved),
            new(BiosStart, 0x100000 - BiosStart, Reserved),
            new(0x100000, usableTop - 0x100000, Ram),
            new(usableTop, BiosReserved, Reserved),
            new(0xFFFC0000, 0x40000, Reserved),
        };
        if (ramSize > LowRamLimit) map.Add(new(0x100000000UL, ramSize - LowRamLimit, Ram));
        return map.ToArray();
    }
}
