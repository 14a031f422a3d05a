namespace Emu64.Forensics;

/// <summary>
/// The byte layout of an x86-64 guest memory dump as QEMU's <c>dump-guest-memory</c> writes it (ELF format,
/// no paging filter), so that tools written for QEMU dumps (crash, volatility3, gdb, drgn) read Emu64's:
/// <code>
///   ELF header            ET_CORE, EM_X86_64, ELFCLASS64, little-endian
///   program headers       PT_NOTE first, then one PT_LOAD per contiguous RAM range
///   notes                 per CPU: "CORE" NT_PRSTATUS, then per CPU: "QEMU" QEMUCPUState
///   memory                the RAM ranges back to back, in PT_LOAD order (no padding)
/// </code>
/// PT_LOAD: p_paddr = guest physical address, p_vaddr = p_paddr (QEMU writes the physical address there too
/// when it does not filter by paging, since 2019, so gdb does not stack every range at 0), p_flags and
/// p_align 0, as QEMU leaves them. Offsets below are from Linux's <c>struct elf_prstatus</c> (x86-64:
/// 336 bytes, <c>pr_pid</c> at 32, <c>pr_reg</c> — a <c>user_regs_struct</c> — at 112) and QEMU's
/// <c>QEMUCPUState</c> (version 1, 440 bytes since kernel_gs_base was added).
/// </summary>
public static class CoreLayout
{
    public const int EhdrSize = 64, PhdrSize = 56, NhdrSize = 12;
    public const ushort EtCore = 4, EmX86_64 = 62;
    public const uint PtLoad = 1, PtNote = 4;
    public const uint NtPrstatus = 1;
    /// <summary>The type QEMU gives its own note (the name "QEMU" tells it apart).</summary>
    public const uint NtQemu = 0;

    // ---- struct elf_prstatus (x86-64) ----
    public const int PrstatusSize = 336;
    public const int PrPid = 32;
    public const int PrReg = 112;
    /// <summary>
    /// <c>struct user_regs_struct</c> (arch/x86/include/asm/user_64.h): 27 eight-byte fields in this order.
    /// The general registers by Emu64's numbering (RAX=0 .. R15=15), or a name for the others.
    /// </summary>
    public static readonly string[] UserRegs =
    [
        "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax",
        "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs",
    ];

    // ---- QEMUCPUState (QEMU target/i386/arch_dump.c) ----
    public const uint QemuCpuStateVersion = 1;
    public const int QemuCpuStateSize = 440;
    /// <summary>rax rbx rcx rdx rsi rdi rsp rbp r8..r15 rip rflags: 18 eight-byte fields from offset 8.</summary>
    public const int QemuRegs = 8;
    public static readonly string[] QemuRegNames =
        ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags"];
    /// <summary>
    /// Ten QEMUCPUSegment records of 24 bytes (u32 selector, u32 limit, u32 flags, u32 pad, u64 base) from offset 152:
    /// cs ds es fs gs ss, then ldt tr gdt idt. flags is the descriptor's second dword with bits 8..23 kept (type, S,
    /// DPL, P, AVL, L, D/B, G), as QEMU's segment cache holds it; the limit is byte-granular.
    /// </summary>
    public const int QemuSegs = 152, QemuSegSize = 24;
    public static readonly string[] QemuSegNames = ["cs", "ds", "es", "fs", "gs", "ss", "ldt", "tr", "gdt", "idt"];
    /// <summary>cr[0..4] (cr1 is 0) from offset 392, then kernel_gs_base at 432.</summary>
    public const int QemuCr = 392, QemuKernelGsBase = 432;

    /// <summary>The size of one note: header, name and descriptor, each padded to 4 bytes.</summary>
    public static int NoteSize(int nameSize, int descSize) => NhdrSize + Align4(nameSize) + Align4(descSize);
    public static int Align4(int n) => (n + 3) & ~3;
}
