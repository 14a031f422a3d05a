using Emu64.Cpu;
using Emu64.Mmu;

namespace Emu64.Tests.Mmu;

/// <summary>
/// Every combination of P/RW/US/XD at each level, page size, CR0.WP, EFER.NXE, CR4.SMEP, CR4.SMAP,
/// EFLAGS.AC, CR4.PKE with the key's rights, CPL and access type, run through the MMU's real
/// translation path (TLB miss → walk → rights → A/D → fill, then a TLB hit) and compared with
/// <see cref="SdmReference"/>: fault or not, the exact error code, CR2, the physical address and the
/// A/D bits left in memory.
/// </summary>
[Trait("Category", "Mmu")]
public class PermissionExhaustiveTests
{
    private const ulong La = (255UL << 39) | (1UL << 30) | (2UL << 21) | (1UL << 12) | 0x123;
    private const int Key = 1;

    // Entry codes: 0 = not present; 1..8 = present with RW, US, XD from bits 0, 1, 2 of (code - 1).
    private static EntryBits Bits(int code) => code == 0 ? default
        : new EntryBits(true, ((code - 1) & 1) != 0, ((code - 1) & 2) != 0, ((code - 1) & 4) != 0);

    private static readonly AccessKind[] Accesses =
    {
        new(false, false, false, false), new(true, false, false, false), new(false, true, false, false),   // CPL 0
        new(false, false, true, false), new(true, false, true, false), new(false, true, true, false),      // CPL 3
        new(false, false, false, true), new(true, false, false, true),                                      // implicit (any CPL)
    };

    [Theory]
    [InlineData(1)]   // 4 KiB: PML4E, PDPTE, PDE, PTE
    [InlineData(2)]   // 2 MiB: PML4E, PDPTE, PDE(PS)
    [InlineData(3)]   // 1 GiB: PML4E, PDPTE(PS)
    public void Every_rights_combination_matches_the_SDM_rules(int pageLevel)
    {
        var rig = new MmuRig(MmuRig.Tiny());
        var cpu = rig.Cpu;
        var mmu = rig.Mmu;
        int levels = 5 - pageLevel;                       // entries used by the walk, top first
        ulong[] addr = new ulong[levels];
        ulong[] next = { 0x20000, 0x21000, 0x22000 };
        ulong table = MmuRig.Pml4;
        for (int k = 0; k < levels; k++) { addr[k] = MmuRig.EntryAddr(table, La, 4 - k); if (k < levels - 1) table = next[k]; }
        ulong frame = pageLevel == 1 ? 0x300000UL : pageLevel == 2 ? 0x400000UL : 0x40000000UL;
        ulong pageMask = (1UL << (12 + 9 * (pageLevel - 1))) - 1;
        int combos = 1;
        for (int k = 0; k < levels; k++) combos *= 9;
        Span<EntryBits> bits = stackalloc EntryBits[levels];
        int[] codes = new int[levels];
        long checkedCases = 0, walked = 0;

        for (int modeBits = 0; modeBits < 128; modeBits++)
        {
            int pkeSetting = modeBits >> 5;                   // 0: PKE off; 1: on, key allows all; 2: WD; 3: AD
            var m = new PagingMode((modeBits & 1) != 0, (modeBits & 2) != 0, (modeBits & 4) != 0, (modeBits & 8) != 0,
                (modeBits & 16) != 0, pkeSetting != 0, pkeSetting == 3, pkeSetting == 2);
            cpu.CR0 = Cr0.Pe | Cr0.Pg | Cr0.Et | (m.Wp ? Cr0.Wp : 0);
            cpu.EFER = Efer.Lme | Efer.Lma | (m.Nxe ? Efer.Nxe : 0);
            cpu.CR4 = Emu64.Cpu.Cr4.Pae | (m.Smep ? Emu64.Cpu.Cr4.Smep : 0) | (m.Smap ? Emu64.Cpu.Cr4.Smap : 0) | (m.Pke ? Emu64.Cpu.Cr4.Pke : 0);
            cpu.SetFlag(RFlags.AC, m.Ac);
            // Key 0 forbids everything, so a walker reading the wrong key is caught.
            cpu.Pkru = 3u | (m.KeyAd ? 1u << (2 * Key) : 0) | (m.KeyWd ? 2u << (2 * Key) : 0);
            mmu.OnModeChanged();

            for (int combo = 0; combo < combos; combo++)
            {
                for (int k = 0, c = combo; k < levels; k++, c /= 9) { codes[k] = c % 9; bits[k] = Bits(codes[k]); }
                // Entries below a not-present one are never read: one combination of them stands for all.
                if (BelowNotPresent(codes)) continue;
                walked++;
                foreach (var a in Accesses)
                {
                    // Fresh tables (A/D clear) and an empty TLB for every case.
                    for (int k = 0; k < levels; k++)
                    {
                        var b = bits[k];
                        ulong e = (b.P ? PteFlags.Present : 0) | (b.Rw ? PteFlags.Write : 0) | (b.Us ? PteFlags.User : 0) | (b.Xd ? PteFlags.Nx : 0);
                        e |= k < levels - 1 ? next[k] : frame | (pageLevel > 1 ? PteFlags.Huge : 0) | ((ulong)Key << PteFlags.PkeyShift);
                        rig.Write(addr[k], e);
                    }
                    mmu.Invpcid(2, 0, 0);
                    cpu.Cpl = a.User ? 3 : 0;
                    var acc = (a.Write ? Access.Write : a.Fetch ? Access.Fetch : Access.Read) | (a.User ? Access.User : 0) | (a.Implicit ? Access.Implicit : 0);
                    var want = SdmReference.Expect(bits, m, a);
                    var got = rig.Try(La, acc);
                    checkedCases++;
                    if (want.Fault != (got.Pa is null) || (want.Fault && (got.Err != want.ErrorCode || got.Cr2 != La)))
                        Assert.Fail($"{Describe(codes, pageLevel, m, a)}: expected {(want.Fault ? $"#PF {want.ErrorCode:x}" : "success")}, got {(got.Pa is null ? $"#PF {got.Err:x} CR2={got.Cr2:x}" : "success")}");
                    for (int k = 0; k < levels; k++)
                    {
                        ulong e = rig.Read(addr[k]);
                        bool accessed = (e & PteFlags.Accessed) != 0, dirty = (e & PteFlags.Dirty) != 0;
                        bool wantD = k == levels - 1 && want.SetsDirty;
                        if (accessed != want.SetsAccessed || dirty != wantD)
                            Assert.Fail($"{Describe(codes, pageLevel, m, a)}: level {4 - k} A={accessed} D={dirty}, expected A={want.SetsAccessed} D={wantD}");
                    }
                    if (want.Fault) continue;
                    if (got.Pa!.Value != (frame | (La & pageMask)))
                        Assert.Fail($"{Describe(codes, pageLevel, m, a)}: translated to {got.Pa:x}, expected {frame | (La & pageMask):x}");
                    // The same access again hits the entry just filled and must give the same answer.
                    var again = rig.Try(La, acc);
                    if (again.Pa != got.Pa) Assert.Fail($"{Describe(codes, pageLevel, m, a)}: TLB hit gave {again.Pa:x}/#PF {again.Err:x}");
                }
            }
        }
        Assert.Equal(walked * Accesses.Length, checkedCases);
        long distinct = 0;
        for (int p = 0, n = 1; p <= levels; p++, n *= 8) distinct += n;   // 8^levels present + each first-not-present depth
        Assert.Equal(128L * distinct, walked);
    }

    private static bool BelowNotPresent(int[] codes)
    {
        for (int k = 0; k < codes.Length; k++)
            if (codes[k] == 0)
                for (int j = k + 1; j < codes.Length; j++) if (codes[j] != 0) return true;
        return false;
    }

    private static string Describe(int[] codes, int pageLevel, PagingMode m, AccessKind a)
    {
        var parts = new List<string>();
        for (int k = 0; k < codes.Length; k++)
        {
            var b = Bits(codes[k]);
            parts.Add(b.P ? $"L{4 - k}:P{(b.Rw ? " RW" : "")}{(b.Us ? " US" : "")}{(b.Xd ? " XD" : "")}" : $"L{4 - k}:not-present");
        }
        return $"{(pageLevel == 1 ? "4K" : pageLevel == 2 ? "2M" : "1G")} [{string.Join(", ", parts)}] {m} {a}";
    }
}
