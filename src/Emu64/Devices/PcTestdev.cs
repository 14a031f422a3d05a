using Emu64.Memory;

namespace Emu64.Devices;

/// <summary>
/// QEMU's <c>pc-testdev</c>, the ISA device kvm-unit-tests' x86 tests are run with
/// (<c>-device pc-testdev -device isa-debug-exit,iobase=0xf4,iosize=0x4</c>). It gives a test program
/// places where an access certainly leaves the CPU, so the test exercises the emulation of I/O and
/// MMIO accesses rather than plain RAM:
/// <list type="bullet">
/// <item>Ports 0xE0–0xE3: a 32-bit data register. An access of N bytes at port 0xE0 + k reads or writes
/// bytes k … k+N-1 of it (bytes past the fourth are dropped), so <c>out %ax, $0xe2</c> then
/// <c>in $0xe0, %eax</c> shows the word in the upper half.</item>
/// <item>Ports 0xE8–0xEB: the same register, taken one byte at a time (QEMU splits wider accesses into
/// byte accesses; the result is the same bytes). In Emu64 only an access that starts at 0xE8 reaches it:
/// 0xE9 is the debug console every Emu64 machine has (QEMU's -debugcon port) and 0xEA/0xEB the bundled
/// kernel's information port. kvm-unit-tests uses none of 0xE8–0xEB.</item>
/// <item>Ports 0xE4–0xE7: "flush page": a 32-bit write names a guest physical page that QEMU briefly
/// unmaps from its own address space, to make a KVM host fault on it. Nothing about the page changes
/// for the guest, and Emu64 has no host mapping to drop, so the write has no effect.</item>
/// <item>Ports 0x2000–0x2017: one byte-wide port per interrupt line; writing a non-zero byte raises
/// line N (0x2000 + N), zero lowers it; a wider write is one byte write per port, as QEMU splits it. Lines 0–15 are the ISA lines (both the 8259 and the I/O APIC,
/// as every ISA device), 16–23 the I/O APIC's other pins.</item>
/// <item>Physical 0xFF000000–0xFF00FFFF: 64 KiB of device memory that keeps what is written, a page a
/// test maps to make every instruction's memory operand an MMIO access.</item>
/// </list>
/// Reads of the write-only ports (flush, interrupt lines) return all ones, as an unclaimed port.
/// Emu64 always plugs the device in (as it always has isa-debug-exit); a PC guest does not look there.
/// Source of the facts: QEMU hw/misc/pc-testdev.c (registers only; no code carried over).
/// </summary>
public sealed class PcTestdev : IIoDevice, IMmioDevice
{
    public const ushort DataPort = 0xE0;
    public const ushort FlushPort = 0xE4;
    public const ushort DataBytePort = 0xE8;
    public const ushort IrqPortBase = 0x2000;
    public const int IrqLines = 24;
    public const ulong IomemBase = 0xFF00_0000;
    public const int IomemLength = 0x10000;

    private readonly Action<int, bool> _setLine;
    private readonly byte[] _iomem = new byte[IomemLength];
    private uint _data;

    /// <param name="setLine">Drives interrupt line N (0–23) high or low.</param>
    public PcTestdev(Action<int, bool> setLine) => _setLine = setLine;

    /// <summary>The data register (ports 0xE0–0xE3 and 0xE8–0xEB).</summary>
    public uint Data => _data;

    public void Register(IoBus io, PhysicalMemory memory)
    {
        io.Register(DataPort, 4, this);
        io.Register(FlushPort, 4, this);
        // 0xE9 stays Emu64's debug console (QEMU's -debugcon port) and 0xEA/0xEB the bundled kernel's
        // information port (Introspection/KernelInfoPort.cs): only 0xE8 itself is the device's.
        io.Register(DataBytePort, 1, this);
        io.Register(IrqPortBase, IrqLines, this);
        memory.AddMmio(IomemBase, IomemLength, this);
    }

    public uint In(ushort port, int size)
    {
        if (port is >= DataPort and < DataPort + 4) return ReadData(port - DataPort, size);
        if (port is >= DataBytePort and < DataBytePort + 4)
        {
            uint v = 0;
            for (int i = 0; i < size && port - DataBytePort + i < 4; i++)
                v |= ReadData(port - DataBytePort + i, 1) << (8 * i);
            // Bytes past 0xEB belong to no device: they read as ones.
            for (int i = 4 - (port - DataBytePort); i < size; i++) v |= 0xFFu << (8 * i);
            return v;
        }
        return size == 4 ? 0xFFFF_FFFF : (1u << (8 * size)) - 1;
    }

    public void Out(ushort port, int size, uint value)
    {
        if (port is >= DataPort and < DataPort + 4) { WriteData(port - DataPort, size, value); return; }
        if (port is >= DataBytePort and < DataBytePort + 4)
        {
            for (int i = 0; i < size && port - DataBytePort + i < 4; i++)
                WriteData(port - DataBytePort + i, 1, value >> (8 * i));
            return;
        }
        if (port is >= IrqPortBase and < IrqPortBase + IrqLines)
        {
            // The ports are a byte wide: QEMU splits a wider access into byte accesses to consecutive ports,
            // so `outl %eax, $0x200b` with EAX = 1 raises line 11 and lowers lines 12-14.
            for (int k = 0; k < size && port - IrqPortBase + k < IrqLines; k++)
                _setLine(port - IrqPortBase + k, (byte)(value >> (8 * k)) != 0);
            return;
        }
        // FlushPort: a guest-invisible host operation (see the class comment).
    }

    private uint ReadData(int offset, int size)
    {
        uint mask = size == 4 ? 0xFFFF_FFFF : (1u << (8 * size)) - 1;
        return (_data >> (8 * offset)) & mask;
    }

    private void WriteData(int offset, int size, uint value)
    {
        uint mask = (size == 4 ? 0xFFFF_FFFF : (1u << (8 * size)) - 1) << (8 * offset);
        _data = (_data & ~mask) | ((value << (8 * offset)) & mask);
    }

    public ulong Read(ulong offset, int size)
    {
        ulong v = 0;
        for (int i = size - 1; i >= 0; i--)
            v = (v << 8) | (offset + (ulong)i < IomemLength ? _iomem[offset + (ulong)i] : 0xFFUL);
        return v;
    }

    public void Write(ulong offset, int size, ulong value)
    {
        for (int i = 0; i < size && offset + (ulong)i < IomemLength; i++)
            _iomem[offset + (ulong)i] = (byte)(value >> (8 * i));
    }
}
