using Emu64.Debugging;
using Emu64.Loader;
using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Debugging;

/// <summary>
/// A TestKernel image with the shape of the toy kernel's system-call path under KPTI with PCID: a
/// kernel PGD and a user PGD 4 KiB above it (8 KiB-aligned pair), kernel PCID 1 and user PCID 0x801,
/// so user CR3 = kernel CR3 | 0x1800. entry_SYSCALL_64 does swapgs, saves the user RSP, switches CR3
/// with NOFLUSH, switches stacks, handles getpid (returns 42, storing through the kernel-only alias
/// at 0xffffffff80000000), switches back and SYSRETs. The user program calls getpid twice, stores
/// the result to <see cref="UserVar"/>, then calls exit (60), which leaves through isa-debug-exit.
/// </summary>
public static class SyscallKernel
{
    public const ulong KernelPgd = 0x204000, UserPgd = 0x205000, HighPdpt = 0x206000;
    public const ulong KernelCr3 = KernelPgd | 1, UserCr3 = KernelPgd | 0x1801;
    public const ulong EntryAddr = 0x140000, UserAddr = 0x150000;
    public const ulong Gdtr = 0x180700, Gdt = 0x180800, Scratch = 0x180200, UserVar = 0x180100, KernelVarPhys = 0x180300;
    public const ulong KernelAlias = 0xffffffff80000000, UserStack = 0x1F0000, KernelStack = 0x2F0000;
    public const int Getpid = 39, ExitNr = 60;

    /// <summary>Addresses inside the entry code, filled in when the image is built.</summary>
    public static ulong ToKernelCr3Write, ToUserCr3Write, SysretAddr, HandlerAddr, SetupSysret;

    private static byte[]? _image;

    public static byte[] Image => _image ??= Build();

    public static SymbolTable Symbols => new(new[]
    {
        new ElfSymbol("entry_SYSCALL_64", EntryAddr, 0, true),
        new ElfSymbol("do_getpid", HandlerAddr, 0, true),
        new ElfSymbol("user_main", UserAddr, 0, true),
    });

    private static byte[] Build()
    {
        var entry = new Assembler(64);
        var exit = entry.CreateLabel();
        var toKernel = entry.CreateLabel();
        var handler = entry.CreateLabel();
        var toUser = entry.CreateLabel();
        var sysret = entry.CreateLabel();
        entry.swapgs();
        entry.mov(__qword_ptr[(long)Scratch], rsp);
        entry.mov(rsp, cr3);
        entry.and(rsp, ~0x1800);
        entry.bts(rsp, 63);                       // NOFLUSH
        entry.Label(ref toKernel);
        entry.mov(cr3, rsp);
        entry.mov(rsp, KernelStack);
        entry.push(rcx);
        entry.push(r11);
        entry.cmp(eax, ExitNr);
        entry.je(exit);
        entry.Label(ref handler);
        entry.mov(eax, 42);
        entry.mov(rdx, KernelAlias + KernelVarPhys);
        entry.mov(__qword_ptr[rdx], rax);
        entry.pop(r11);
        entry.pop(rcx);
        entry.mov(rdi, cr3);
        entry.or(rdi, 0x1800);
        entry.bts(rdi, 63);
        entry.Label(ref toUser);
        entry.mov(cr3, rdi);
        entry.mov(rsp, __qword_ptr[(long)Scratch]);
        entry.swapgs();
        entry.Label(ref sysret);
        entry.sysretq();
        entry.Label(ref exit);
        TestKernel.Exit(entry, 0);
        entry.hlt();
        var (entryBytes, er) = Assemble(entry, EntryAddr);
        ToKernelCr3Write = er.GetLabelRIP(toKernel);
        ToUserCr3Write = er.GetLabelRIP(toUser);
        HandlerAddr = er.GetLabelRIP(handler);
        SysretAddr = er.GetLabelRIP(sysret);

        var user = new Assembler(64);
        user.mov(eax, Getpid);
        user.syscall();
        user.mov(eax, Getpid);
        user.syscall();
        user.mov(__qword_ptr[(long)UserVar], rax);
        user.mov(eax, ExitNr);
        user.xor(edi, edi);
        user.syscall();
        user.hlt();
        var (userBytes, _) = Assemble(user, UserAddr);

        var gdt = new ulong[] { 0, 0x00AF9A000000FFFF, 0x00CF92000000FFFF, 0x00CFFA000000FFFF, 0x00CFF2000000FFFF, 0x00AFFA000000FFFF };
        var gdtBytes = gdt.SelectMany(BitConverter.GetBytes).ToArray();
        var gdtr = new byte[10];
        BitConverter.GetBytes((ushort)(gdtBytes.Length - 1)).CopyTo(gdtr, 0);
        BitConverter.GetBytes(Gdt).CopyTo(gdtr, 2);

        var data = new Dictionary<ulong, byte[]> { [EntryAddr] = entryBytes, [UserAddr] = userBytes, [Gdt] = gdtBytes, [Gdtr] = gdtr };
        return TestKernel.Build(a =>
        {
            // Page tables: the low 2 MiB (code, data, user stack) becomes user-accessible; the kernel PGD
            // adds the kernel alias at 0xffffffff80000000 (PML4 511, PDPT 510), which the user PGD lacks.
            a.mov(rax, TestKernel.Pdpt | 7); a.mov(__qword_ptr[(long)KernelPgd], rax); a.mov(__qword_ptr[(long)UserPgd], rax);
            a.mov(rax, TestKernel.Pd | 7); a.mov(__qword_ptr[(long)TestKernel.Pdpt], rax);
            a.mov(rax, __qword_ptr[(long)TestKernel.Pd]); a.or(rax, 4); a.mov(__qword_ptr[(long)TestKernel.Pd], rax);
            a.mov(rax, HighPdpt | 3); a.mov(__qword_ptr[(long)(KernelPgd + 511 * 8)], rax);
            a.mov(rax, TestKernel.Pd | 3); a.mov(__qword_ptr[(long)(HighPdpt + 510 * 8)], rax);
            a.mov(rax, cr4); a.or(eax, 1 << 17); a.mov(cr4, rax);          // CR4.PCIDE
            a.mov(rax, KernelCr3); a.mov(cr3, rax);
            a.lgdt(__fword_ptr[(long)Gdtr]);
            a.mov(ecx, 0xC0000080); a.rdmsr(); a.or(eax, 1); a.wrmsr();     // EFER.SCE
            a.mov(ecx, 0xC0000081); a.xor(eax, eax); a.mov(edx, 0x001B0008); a.wrmsr();   // STAR
            a.mov(ecx, 0xC0000082); a.mov(eax, (uint)EntryAddr); a.xor(edx, edx); a.wrmsr(); // LSTAR
            a.mov(ecx, 0xC0000084); a.mov(eax, 0x700); a.xor(edx, edx); a.wrmsr();           // SFMASK: TF IF DF
            a.mov(rcx, UserAddr);
            a.mov(r11d, 2);
            a.mov(rax, UserCr3); a.mov(cr3, rax);
            a.mov(rsp, UserStack);
            a.sysretq();
        }, data);
    }

    private static (byte[] Bytes, AssemblerResult Result) Assemble(Assembler a, ulong rip)
    {
        var w = new MemoryStream();
        var r = a.Assemble(new StreamCodeWriter(w), rip, BlockEncoderOptions.ReturnNewInstructionOffsets);
        return (w.ToArray(), r);
    }

    /// <summary>A machine with the image loaded, ready to run.</summary>
    public static Machine NewMachine(MemoryStream? console = null)
    {
        var m = new Machine(new MachineOptions { RamBytes = 64UL << 20, MaxInstructions = 10_000_000, Output = console ?? new MemoryStream() });
        m.LoadKernel(Image, "syscall-kernel", Array.Empty<BootModule>());
        return m;
    }
}
