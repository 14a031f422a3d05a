namespace Emu64.Cpu;

/// <summary>
/// CPUID: the truth about what this CPU implements (SPEC §3). A feature bit is set only when the
/// emulator implements the feature; add the bit in the same change that implements it.
/// Model: a Skylake-like family 6 core, vendor GenuineIntel, one logical processor.
/// </summary>
public sealed partial class Cpu
{
    // Leaf 1 ECX / EDX, leaf 7 EBX / ECX, leaf 0x80000001 ECX / EDX.
    public uint Leaf1Ecx = (1u << 13) /* CMPXCHG16B */ | (1u << 17) /* PCID */ | (1u << 21) /* x2APIC */ | (1u << 22) /* MOVBE */
                         | (1u << 23)  /* POPCNT */ | (1u << 24) /* TSC-deadline timer */ | (1u << 30) /* RDRAND */;
    public uint Leaf1Edx = (1u << 0) /* FPU */ | (1u << 2) /* DE: CR4.DE, I/O breakpoints */ | (1u << 3) /* PSE: 4 MiB pages in 32-bit paging */ | (1u << 4) /* TSC */ | (1u << 5) /* MSR */ | (1u << 6) /* PAE */ | (1u << 8) /* CX8 */
                         | (1u << 9) /* APIC */ | (1u << 12) /* MTRR */ | (1u << 13) /* PGE */ | (1u << 15) /* CMOV */ | (1u << 16) /* PAT */ | (1u << 17) /* PSE-36: 4 MiB pages above 4 GiB */ | (1u << 19) /* CLFSH */
                         | (1u << 23) /* MMX */ | (1u << 24) /* FXSR */ | (1u << 25) /* SSE */ | (1u << 26) /* SSE2 */;
    public uint Leaf7Ebx = (1u << 0) /* FSGSBASE */ | (1u << 3) /* BMI1 */ | (1u << 7) /* SMEP */ | (1u << 8) /* BMI2 */
                         | (1u << 10) /* INVPCID */ | (1u << 18) /* RDSEED */ | (1u << 19) /* ADX */ | (1u << 20) /* SMAP */;
    public uint Leaf7Ecx = (1u << 2) /* UMIP */ | (1u << 3) /* PKU */ | (1u << 16) /* LA57 */ | (1u << 22) /* RDPID */;
    /// <summary>
    /// Leaf 6 EAX (thermal and power management): ARAT (bit 2), the APIC timer always runs, whatever C-state the CPU is
    /// in. This CPU's only idle state is HLT (no MWAIT), during which the local APIC timer keeps counting and fires
    /// (LocalApicTimer.cs), so Linux need not fall back to a broadcast timer.
    /// </summary>
    public uint Leaf6Eax = 1u << 2 /* ARAT */;
    public uint Ext1Ecx = (1u << 0) /* LAHF/SAHF in 64-bit mode */ | (1u << 5) /* LZCNT */;
    public uint Ext1Edx = (1u << 11) /* SYSCALL */ | (1u << 20) /* NX */ | (1u << 26) /* 1 GiB pages */
                        | (1u << 27) /* RDTSCP */ | (1u << 29) /* LM */;

    public bool HasFeature7Ebx(int bit) => (Leaf7Ebx & (1u << bit)) != 0;
    public bool HasPcid => (Leaf1Ecx & (1u << 17)) != 0;
    public bool HasInvpcid => (Leaf7Ebx & (1u << 10)) != 0;
    public bool HasLa57 => (Leaf7Ecx & (1u << 16)) != 0;
    public bool HasUmip => (Leaf7Ecx & (1u << 2)) != 0;

    /// <summary>
    /// Canonical for an address loaded into a system register (FS/GS/KERNEL_GS_BASE, LSTAR, CSTAR, SYSENTER_EIP/ESP,
    /// GDTR/IDTR/LDTR/TR bases): on a processor that supports 5-level paging these are checked against 57 bits whatever
    /// CR4.LA57 says (SDM vol. 3A §4.5.1), since the register may be used later under either paging mode.
    /// </summary>
    public bool IsCanonicalSystem(ulong v) => HasLa57 ? (ulong)((long)(v << 7) >> 7) == v : IsCanonical(v);

    /// <summary>
    /// The brand string of leaves 0x80000002-4 (48 bytes, little-endian in EAX, EBX, ECX, EDX of each leaf): the name padded
    /// with spaces and NUL-terminated in its last byte.
    /// </summary>
    private static ReadOnlySpan<byte> Brand => "Emu64 virtual x86-64 CPU                       \0"u8;

    /// <summary>CPUID's result for a leaf and sub-leaf (EAX, EBX, ECX, EDX); leaf 1 also loads IA32_BIOS_SIGN_ID[63:32].</summary>
    public void Cpuid(uint leaf, uint sub, out uint a, out uint b, out uint c, out uint d)
    {
        var r = CpuidLeaf(leaf, sub);
        a = r.A; b = r.B; c = r.C; d = r.D;
    }

    /// <summary>
    /// The four registers of a CPUID result, packed two to a 64-bit half: returned in two host registers and built with register
    /// arithmetic (four 32-bit fields were built on the stack and re-read as two 64-bit halves, a store-forwarding stall).
    /// </summary>
    public readonly struct CpuidResult(uint a, uint b, uint c, uint d)
    {
        private readonly ulong _ab = a | (ulong)b << 32, _cd = c | (ulong)d << 32;
        public uint A => (uint)_ab;
        public uint B => (uint)(_ab >> 32);
        public uint C => (uint)_cd;
        public uint D => (uint)(_cd >> 32);
    }

    /// <summary>
    /// CPUID for the instruction (SystemInsns.CpuidInsn) and <see cref="Cpuid"/>: allocation-free and cheap, since guests time
    /// it (kvm-unit-tests' vmexit, issue #19) and Linux issues it often. The rare leaves live in <see cref="CpuidRare"/> so
    /// that this method stays small.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public CpuidResult CpuidLeaf(uint leaf, uint sub)
    {
        switch (leaf)
        {
            case 0:
                // "GenuineIntel"; IA32_MISC_ENABLE bit 22 limits the basic leaves to 2.
                return new((MiscEnable & MiscEnableLimitCpuid) != 0 ? 2u : 7u, 0x756E6547, 0x6C65746E, 0x49656E69);
            case 1:
                BiosSignId = (ulong)MicrocodeRevision << 32;      // CPUID(1) loads IA32_BIOS_SIGN_ID[63:32] (SDM §9.11.7.1)
                // Family 6, model 0x5E, stepping 3; CLFLUSH 64 bytes, 1 logical CPU, APIC ID 0. The APIC bit reports the local
                // APIC as present and enabled: it clears with IA32_APIC_BASE.EN (SDM §11.4.3).
                return new(0x000506E3, (8u << 8) | (1u << 16), Leaf1Ecx | ((CR4 & Emu64.Cpu.Cr4.Osxsave) != 0 ? 1u << 27 : 0),
                    (ApicBase & (1UL << 11)) != 0 ? Leaf1Edx : Leaf1Edx & ~(1u << 9));
            case 6: return new(Leaf6Eax, 0, 0, 0);
            case 7:
                if (sub != 0) return default;
                return new(0, Leaf7Ebx, Leaf7Ecx | ((CR4 & Emu64.Cpu.Cr4.Pke) != 0 ? 1u << 4 : 0), 0);   // OSPKE mirrors CR4.PKE
            default:
                return leaf >= 0x80000000 ? CpuidRare(leaf) : default;
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private CpuidResult CpuidRare(uint leaf)
    {
        switch (leaf)
        {
            case 0x80000000: return new(0x80000008, 0, 0, 0);
            case 0x80000001:
                return new(0, 0, Ext1Ecx, Ext1Edx & ((MiscEnable & MiscEnableXdDisable) != 0 ? ~(1u << 20) : ~0u));   // XD_DISABLE hides NX
            case 0x80000002: case 0x80000003: case 0x80000004:
                {
                    var s = Brand.Slice((int)(leaf - 0x80000002) * 16, 16);
                    return new(Pack(s, 0), Pack(s, 4), Pack(s, 8), Pack(s, 12));
                }
            case 0x80000007: return new(0, 0, 0, 1u << 8);       // invariant TSC
            case 0x80000008: return new((uint)Emu64.Mmu.Mmu.MaxPhysAddr | ((HasLa57 ? 57u : 48u) << 8), 0, 0, 0);
            default: return default;
        }
    }

    private static uint Pack(ReadOnlySpan<byte> s, int o) => System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(s[o..]);

}
