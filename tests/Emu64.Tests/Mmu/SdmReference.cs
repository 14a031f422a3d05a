namespace Emu64.Tests.Mmu;

/// <summary>The processor state that decides an access (one combination of the exhaustive test).</summary>
public readonly record struct PagingMode(bool Wp, bool Nxe, bool Smep, bool Smap, bool Ac, bool Pke, bool KeyAd, bool KeyWd);

/// <summary>One access: read, write or fetch; user-mode (CPL 3 explicit) or supervisor; implicit (GDT/IDT/TSS).</summary>
public readonly record struct AccessKind(bool Write, bool Fetch, bool User, bool Implicit)
{
    public override string ToString() => $"{(Implicit ? "implicit " : "")}{(User ? "user" : "supervisor")} {(Fetch ? "fetch" : Write ? "write" : "read")}";
}

/// <summary>One paging-structure entry of the test: present, R/W, U/S, XD.</summary>
public readonly record struct EntryBits(bool P, bool Rw, bool Us, bool Xd);

/// <summary>What the SDM says happens: a fault with its error code, or success with A/D bits set.</summary>
public readonly record struct Outcome(bool Fault, uint ErrorCode, bool SetsAccessed, bool SetsDirty);

/// <summary>
/// Intel SDM vol. 3A §4.6 (access rights), §4.6.2 (protection keys), §4.7 (page-fault error code) and
/// §4.8 (accessed and dirty flags), written out rule by rule for 4-level paging and independent of the
/// emulator's implementation.
/// </summary>
public static class SdmReference
{
    public static Outcome Expect(ReadOnlySpan<EntryBits> levels, PagingMode m, AccessKind a)
    {
        // §4.7 error code bits that describe the access, not the translation.
        uint wr = a.Write ? 1u << 1 : 0;                    // W/R
        uint us = a.User ? 1u << 2 : 0;                     // U/S: a user-mode access
        uint id = a.Fetch && (m.Smep || m.Nxe) ? 1u << 4 : 0;   // I/D: fetch, when SMEP or (PAE and NXE)

        // §4.5: a not-present entry ends the walk (P=0 in the error code); with NXE=0 bit 63 is reserved.
        foreach (var e in levels)
        {
            if (!e.P) return new Outcome(true, wr | us | id, false, false);
            if (e.Xd && !m.Nxe) return new Outcome(true, 1u | 1u << 3 | wr | us | id, false, false);
        }

        // §4.6: a user-mode address has U/S=1 in every entry; writes need R/W=1 in every entry;
        // execute-disable applies when any entry has XD=1 (NXE=1 here).
        bool userAddress = true, allWritable = true, anyXd = false;
        foreach (var e in levels) { userAddress &= e.Us; allWritable &= e.Rw; anyXd |= e.Xd; }

        bool allowed;
        if (a.User)
        {
            // User-mode accesses: only to user-mode addresses.
            if (!userAddress) allowed = false;
            else if (a.Fetch) allowed = !anyXd;          // instruction fetch: XD=0 everywhere
            else if (a.Write) allowed = allWritable;     // data write: R/W=1 everywhere
            else allowed = true;                         // data read
        }
        else if (a.Fetch)
        {
            // Supervisor fetch: from a user-mode address only without SMEP; XD forbids it either way.
            allowed = !(userAddress && m.Smep) && !anyXd;
        }
        else
        {
            // Supervisor data access. To a user-mode address with SMAP: only explicit accesses with AC=1.
            bool smapForbids = userAddress && m.Smap && (a.Implicit || !m.Ac);
            // Writes: with WP=1 they need R/W=1 everywhere; with WP=0 any address may be written.
            bool writeForbidden = a.Write && m.Wp && !allWritable;
            allowed = !smapForbids && !writeForbidden;
        }

        // §4.6.2: with PKE (IA-32e), a data access to a user-mode address checks PKRU for the page's key:
        // AD forbids all data access; WD forbids writes by user-mode accesses, and supervisor ones with WP=1.
        bool pk = m.Pke && !a.Fetch && userAddress && (m.KeyAd || (m.KeyWd && a.Write && (a.User || m.Wp)));

        if (!allowed || pk) return new Outcome(true, 1u | wr | us | id | (pk ? 1u << 5 : 0), false, false);
        // §4.8: A in every entry used; D in the entry that maps the page, for a write.
        return new Outcome(false, 0, true, a.Write);
    }
}
