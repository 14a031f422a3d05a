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
/// RAM lives outside the managed heap (<see cref="RamBlock"/>: lazily zeroed host memory, so untouched guest RAM costs
/// nothing) and is reached through one raw pointer; <see cref="Dispose"/> gives it back at once, the block's finalizer
/// otherwise.
/// </summary>
public sealed unsafe class PhysicalMemory : IDisposable
{
    /// <summary>
    /// The most RAM a machine has: 3 GiB, contiguous from 0. Above it, up to 4 GiB, lies the 32-bit PCI hole: the
    /// local APIC, I/O APIC, HPET, BIOS flash and test devices (QEMU's "pc" machine keeps RAM below 3.5 GiB, and with
    /// gigabyte alignment below 3 GiB once the rest moves above 4 GiB). 3 GiB is enough for Linux to map a whole,
    /// aligned GiB of its direct map with a 1 GiB page ([1 GiB, 2 GiB)).
    /// </summary>
    public const ulong MaxRamSize = 3UL << 30;

    private readonly RamBlock _block;
    private readonly byte* _base;
    private readonly ulong[] _codeBits;          // one bit per RAM frame that holds cached decodes
    private (ulong Start, ulong End, IMmioDevice Dev)[] _mmio = [];

    public ulong RamSize { get; }

    /// <summary>Called with the frame number when a store hits a frame marked as holding code.</summary>
    public Action<ulong>? CodeWritten;

    public PhysicalMemory(ulong ramSize)
    {
        if (ramSize == 0 || (ramSize & 0xFFF) != 0) throw new ArgumentException("RAM size must be a non-zero multiple of 4 KiB");
        if (ramSize > MaxRamSize) throw new ArgumentException($"RAM size {ramSize >> 20} MiB is above the maximum of {MaxRamSize >> 20} MiB");
        RamSize = ramSize;
        _block = new RamBlock(ramSize);
        _base = _block.Pointer;
        _codeBits = new ulong[(ramSize >> 12) / 64 + 1];
    }

    /// <summary>
    /// Gives the host memory of RAM back now (otherwise the finalizer does). The machine must not run, nor RAM be
    /// read, afterwards.
    /// </summary>
    public void Dispose() => _block.Dispose();

    /// <summary>
    /// <paramref name="length"/> bytes of RAM from physical address <paramref name="pa"/>, as a span (for loaders,
    /// debuggers, dumps and tests; RAM above 2 GiB does not fit in one span, so large readers go range by range).
    /// Writes through it bypass the self-modifying-code check: use <see cref="WriteBytes"/> once code may run from there.
    /// </summary>
    public Span<byte> RamSpan(ulong pa, int length)
    {
        if (length < 0 || pa > RamSize || (ulong)length > RamSize - pa)
            throw new ArgumentOutOfRangeException(nameof(pa), $"[0x{pa:x}, +0x{length:x}) is not inside RAM (0x{RamSize:x} bytes)");
        return new Span<byte>(_base + pa, length);
    }

    /// <summary>A host pointer to RAM at physical address pa. Caller guarantees pa is inside RAM (every other access here is bounds-checked, wrap-around included).</summary>
    internal byte* HostPointer(ulong pa) => _base + pa;

    /// <summary>
    /// The host address of a whole 4 KiB frame of RAM that holds no decoded code (so a store to it needs no
    /// invalidation), or null. For runs of stack stores and loads (Isa/StackRuns.cs); the answer holds until
    /// code is decoded from the frame.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
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

    /// <summary>
    /// A hint that a store or load to RAM at <paramref name="pa"/> is coming (the TLB model's miss path gives it as soon as a walk has
    /// found the frame, so that the host's cache and TLB miss on a new guest page overlaps the fills that follow). Changes nothing.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Prefetch(ulong pa)
    {
        if (pa < RamSize && System.Runtime.Intrinsics.X86.Sse.IsSupported) System.Runtime.Intrinsics.X86.Sse.Prefetch0(_base + pa);
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
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
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
