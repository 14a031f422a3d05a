using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Emu64.Memory;

/// <summary>A device that answers physical addresses outside RAM (memory-mapped I/O).</summary>
public interface IMmioDevice
{
    ulong Read(ulong offset, int size);
    void Write(ulong offset, int size, ulong value);
}

/// <summary>
/// Guest physical memory: RAM from address 0 up to <see cref="RamSize"/>, MMIO windows that devices plug
/// into, and open bus (all ones, writes ignored) elsewhere. It also tracks which 4 KiB frames hold decoded
/// code, so a store into such a frame can drop the cached decodes (self-modifying code).
/// </summary>
public sealed unsafe class PhysicalMemory
{
    private readonly byte[] _ram;
    private readonly byte* _base;
    private readonly ulong[] _codeBits;          // one bit per RAM frame that holds cached decodes
    private (ulong Start, ulong End, IMmioDevice Dev)[] _mmio = [];

    public ulong RamSize { get; }

    /// <summary>Called with the frame number when a store hits a frame marked as holding code.</summary>
    public Action<ulong>? CodeWritten;

    public PhysicalMemory(ulong ramSize)
    {
        if (ramSize == 0 || (ramSize & 0xFFF) != 0) throw new ArgumentException("RAM size must be a non-zero multiple of 4 KiB");
        RamSize = ramSize;
        _ram = GC.AllocateArray<byte>(checked((int)Math.Min(ramSize, int.MaxValue)), pinned: true);
        if ((ulong)_ram.LongLength != ramSize) throw new ArgumentException("RAM size above 2 GiB is not supported");
        _base = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_ram));
        _codeBits = new ulong[(ramSize >> 12) / 64 + 1];
    }

    /// <summary>The whole of RAM as a span (for loaders, debuggers and tests).</summary>
    public Span<byte> Ram => _ram;

    /// <summary>A host pointer to RAM at physical address pa. Caller guarantees pa is inside RAM (every other access here is bounds-checked, wrap-around included).</summary>
    internal byte* HostPointer(ulong pa) => _base + pa;

    /// <summary>
    /// The host address of a whole 4 KiB frame of RAM that holds no decoded code (so a store to it needs no
    /// invalidation), or null. For runs of stack stores and loads (Isa/StackRuns.cs); the answer holds until
    /// code is decoded from the frame.
    /// </summary>
    internal byte* PlainRamFrame(ulong frame)
    {
        if ((frame & 0xFFF) != 0 || frame > RamSize - 0x1000 || IsCode(frame >> 12)) return null;
        return _base + frame;
    }

    /// <summary>The host address of a whole 4 KiB frame of RAM (code or not), or null (MMIO, open bus): for loads.</summary>
    internal byte* RamFrame(ulong frame)
    {
        if ((frame & 0xFFF) != 0 || frame > RamSize - 0x1000) return null;
        return _base + frame;
    }

    public void AddMmio(ulong start, ulong length, IMmioDevice dev)
    {
        if (start < RamSize) throw new ArgumentException($"MMIO window at {start:x} overlaps RAM");
        _mmio = [.. _mmio, (start, start + length, dev)];
    }

    /// <summary>Unplugs a device's MMIO windows (a relocated local APIC, for one).</summary>
    public void RemoveMmio(IMmioDevice dev) => _mmio = _mmio.Where(w => w.Dev != dev).ToArray();

    public bool IsRam(ulong pa, int size) => pa + (ulong)size <= RamSize && pa + (ulong)size >= pa;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong Read(ulong pa, int size)
    {
        if (pa <= RamSize - (ulong)size)   // never wraps: RAM is at least 4 KiB, size at most 8
            return Load(_base + pa, size);
        return ReadSlow(pa, size);
    }

    /// <summary>The little-endian value of <paramref name="size"/> (1, 2, 4 or 8) bytes at a host address in RAM.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Load(byte* p, int size) => size switch
    {
        1 => *p,
        2 => Unsafe.ReadUnaligned<ushort>(p),
        4 => Unsafe.ReadUnaligned<uint>(p),
        _ => Unsafe.ReadUnaligned<ulong>(p),
    };

    /// <summary>Stores the low <paramref name="size"/> (1, 2, 4 or 8) bytes of <paramref name="value"/> at a host address in RAM.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Store(byte* p, int size, ulong value)
    {
        switch (size)
        {
            case 1: *p = (byte)value; break;
            case 2: Unsafe.WriteUnaligned(p, (ushort)value); break;
            case 4: Unsafe.WriteUnaligned(p, (uint)value); break;
            default: Unsafe.WriteUnaligned(p, value); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Write(ulong pa, int size, ulong value)
    {
        if (pa <= RamSize - (ulong)size)   // never wraps: RAM is at least 4 KiB, size at most 8
        {
            Store(_base + pa, size, value);
            // Both frames the store touches (a physical store may straddle two): in range, since pa and pa + size - 1 are
            // in RAM and the bitmap has a bit for every RAM frame (no bounds check on the hot path).
            ulong frame = pa >> 12, last = (pa + (ulong)size - 1) >> 12;
            ref ulong bits = ref MemoryMarshal.GetArrayDataReference(_codeBits);
            if (((Unsafe.Add(ref bits, (nint)(frame >> 6)) >> (int)frame | Unsafe.Add(ref bits, (nint)(last >> 6)) >> (int)last) & 1) != 0)
                CodeStore(frame, last);
            return;
        }
        WriteSlow(pa, size, value);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void CodeStore(ulong frame, ulong last)
    {
        for (ulong f = frame; f <= last; f++)
            if (IsCode(f)) { ClearCode(f); CodeWritten?.Invoke(f); }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private ulong ReadSlow(ulong pa, int size)
    {
        foreach (var (start, end, dev) in _mmio)
            if (pa >= start && pa < end) return dev.Read(pa - start, size);
        if (pa < RamSize) // straddles the end of RAM: the bytes past it read as ones
        {
            ulong v = 0;
            for (int i = size - 1; i >= 0; i--) v = (v << 8) | (pa + (ulong)i < RamSize ? _base[pa + (ulong)i] : 0xFFUL);
            return v;
        }
        return size == 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void WriteSlow(ulong pa, int size, ulong value)
    {
        foreach (var (start, end, dev) in _mmio)
            if (pa >= start && pa < end) { dev.Write(pa - start, size, value); return; }
        for (int i = 0; i < size; i++)
            if (pa + (ulong)i < RamSize && pa + (ulong)i >= pa) Write(pa + (ulong)i, 1, value >> (8 * i));
    }

    /// <summary>Marks a frame as holding decoded code; the first time, tells <see cref="CodeMarked"/>.</summary>
    public void MarkCode(ulong frame)
    {
        if (frame >= RamSize >> 12 || IsCode(frame)) return;
        _codeBits[frame >> 6] |= 1UL << (int)frame;
        CodeMarked?.Invoke();
    }

    /// <summary>
    /// Called when a frame becomes a code frame: whoever holds host pointers for stores that skip the code test
    /// (the MMU's fast cache) must drop them.
    /// </summary>
    internal Action? CodeMarked;
    public bool IsCode(ulong frame) => frame < RamSize >> 12 && (_codeBits[frame >> 6] & (1UL << (int)frame)) != 0;
    private void ClearCode(ulong frame) => _codeBits[frame >> 6] &= ~(1UL << (int)frame);

    /// <summary>Copies bytes out of physical memory (debugger/loader use; MMIO reads as open bus).</summary>
    public void ReadBytes(ulong pa, Span<byte> dest)
    {
        for (int i = 0; i < dest.Length; i++)
        {
            ulong a = pa + (ulong)i;
            dest[i] = a < RamSize && a >= pa ? _base[a] : (byte)0xFF;
        }
    }

    /// <summary>Copies bytes into RAM; returns false if any byte falls outside RAM.</summary>
    public bool WriteBytes(ulong pa, ReadOnlySpan<byte> src)
    {
        if (pa > RamSize || (ulong)src.Length > RamSize - pa) return false;
        for (int i = 0; i < src.Length; i++) Write(pa + (ulong)i, 1, src[i]);
        return true;
    }
}
