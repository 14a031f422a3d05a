namespace Emu64.Forensics;

/// <summary>A range of guest physical memory present in an image.</summary>
public readonly record struct PhysRange(ulong Start, ulong Length)
{
    public ulong End => Start + Length;
    public bool Contains(ulong pa, ulong len = 1) => pa >= Start && len <= Length && pa - Start <= Length - len;
}

/// <summary>
/// Guest physical memory as an analysis sees it: some ranges are present, everything else is not (a dump
/// holds RAM, not MMIO). <see cref="CoreFile"/> reads a dump; tests build images by hand.
/// </summary>
public interface IPhysicalImage
{
    IReadOnlyList<PhysRange> Ranges { get; }
    /// <summary>The little-endian 8 bytes at <paramref name="pa"/> (8-aligned), or false outside the image.</summary>
    bool TryRead64(ulong pa, out ulong value);
    /// <summary>Copies bytes at <paramref name="pa"/>; returns how many were present (stops at the first absent byte).</summary>
    int Read(ulong pa, Span<byte> dest);
}

public static class PhysicalImageExtensions
{
    public static bool Contains(this IPhysicalImage img, ulong pa, ulong len = 1)
    {
        foreach (var r in img.Ranges) if (r.Contains(pa, len)) return true;
        return false;
    }

    /// <summary>One past the highest present physical address.</summary>
    public static ulong End(this IPhysicalImage img) => img.Ranges.Count == 0 ? 0 : img.Ranges.Max(r => r.End);

    /// <summary>Bytes present in the image.</summary>
    public static ulong Size(this IPhysicalImage img) => img.Ranges.Aggregate(0UL, (s, r) => s + r.Length);
}
