using System.Text;

namespace Emu64.Tests.Isa;

/// <summary>
/// Who the host CPU is, read with CPUID run natively through <see cref="HostCpu"/>: the vendor string
/// (leaf 0), the display family and model (leaf 1) and the brand string (leaves 8000_0002..4).
///
/// The host is a referee for what the SDM defines for every x86-64 processor. Undefined flags and
/// model-specific results are Intel's on the CPU Emu64 models (a GenuineIntel family-6 core, measured
/// on Cascade Lake): only a host of that vendor and family is asked about them
/// (<see cref="IsModeledFamily"/>); on any other host they are checked against the committed Intel
/// reference vectors instead (<see cref="IntelVectors"/>).
/// </summary>
public sealed record HostIdentity(string Vendor, int Family, int Model, string Brand)
{
    private static readonly Lazy<HostIdentity?> Found = new(Read);

    /// <summary>The host's identity, or null when the native harness cannot run here (not x86-64 Linux).</summary>
    public static HostIdentity? Current => Found.Value;

    /// <summary>A GenuineIntel family-6 host: its undefined flags are the ones Emu64 models.</summary>
    public bool IsModeledFamily => Vendor == "GenuineIntel" && Family == 6;

    public override string ToString() => $"{Vendor} family {Family:X}h model {Model:X}h ({Brand})";

    /// <summary>
    /// Why the host cannot referee undefined flags and model-specific results (null when it can): the
    /// skip reason of the tests that compare them with the host.
    /// </summary>
    public static string? NotModeledReason()
    {
        var id = Current;
        if (id == null) return "the native harness needs an x86-64 Linux host";
        if (id.IsModeledFamily) return null;
        return $"the host is {id}, not a GenuineIntel family-6 CPU like the one Emu64 models: undefined flags and " +
               "model-specific results are checked against the Intel reference vectors (Isa/Data/undefined.vec) instead";
    }

    private static HostIdentity? Read()
    {
        if (!HostCpu.Available) return null;
        var leaf0 = Cpuid(0);
        var vendor = new StringBuilder();
        foreach (var r in new[] { leaf0.Ebx, leaf0.Edx, leaf0.Ecx })
            for (int k = 0; k < 4; k++) vendor.Append((char)((r >> (8 * k)) & 0xFF));
        uint eax1 = Cpuid(1).Eax;
        // SDM vol. 2 CPUID: the extended family adds to family 0Fh; the extended model extends families 6 and 0Fh
        int baseFamily = (int)(eax1 >> 8) & 0xF, baseModel = (int)(eax1 >> 4) & 0xF;
        int family = baseFamily == 0xF ? baseFamily + (int)((eax1 >> 20) & 0xFF) : baseFamily;
        int model = baseFamily is 6 or 0xF ? ((int)((eax1 >> 16) & 0xF) << 4) + baseModel : baseModel;
        var brand = new StringBuilder();
        if (Cpuid(0x80000000).Eax >= 0x80000004)
            for (uint leaf = 0x80000002; leaf <= 0x80000004; leaf++)
            {
                var b = Cpuid(leaf);
                foreach (var r in new[] { b.Eax, b.Ebx, b.Ecx, b.Edx })
                    for (int k = 0; k < 4; k++) { char c = (char)((r >> (8 * k)) & 0xFF); if (c != 0) brand.Append(c); }
            }
        return new HostIdentity(vendor.ToString(), family, model, brand.ToString().Trim());
    }

    /// <summary>Runs CPUID natively with EAX = <paramref name="leaf"/>, ECX = 0.</summary>
    public static (uint Eax, uint Ebx, uint Ecx, uint Edx) Cpuid(uint leaf)
    {
        var h = HostCpu.Shared;
        lock (h.Lock)
        {
            h.Load([0x0F, 0xA2]);
            var s = new HostState();
            s.Gpr[0] = leaf;
            s.Rflags = Emu64.Cpu.RFlags.Reserved1;
            h.Run(ref s);
            return ((uint)s.Gpr[0], (uint)s.Gpr[3], (uint)s.Gpr[1], (uint)s.Gpr[2]);
        }
    }
}

/// <summary>
/// A theory that compares the emulator with the host on what the SDM leaves undefined or
/// model-specific: it runs only on a GenuineIntel family-6 host and is skipped, visibly and with the
/// reason, on any other.
/// </summary>
public sealed class IntelHostTheoryAttribute : TheoryAttribute
{
    public IntelHostTheoryAttribute()
    {
        if (HostIdentity.NotModeledReason() is { } why) Skip = why;
    }
}
