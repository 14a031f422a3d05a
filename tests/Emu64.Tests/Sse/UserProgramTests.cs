using System.Diagnostics;
using Iced.Intel;
using Emu64.Tests.Support;
using Xunit.Abstractions;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Sse;

/// <summary>
/// The gcc acceptance of issue 4: a C program compiled with plain gcc -O2 (SSE2 on) prints the same
/// text and exits with the same status in Emu64 at CPL 3 as natively on the host. The program's one
/// binary runs in both places: it only uses the Linux system calls write (1) and exit (60), which the
/// test kernel below implements behind SYSCALL.
/// </summary>
public class UserProgramTests(ITestOutputHelper output)
{
    private static readonly string ProgramDir = Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "Sse", "programs");

    [Theory]
    [InlineData("acceptance.c")]
    [InlineData("numeric.c")]
    public void A_gcc_O2_user_program_using_SSE2_prints_the_same_in_Emu64_at_CPL3_as_on_the_host(string program)
    {
        string src = Path.GetFullPath(Path.Combine(ProgramDir, program));
        Assert.True(File.Exists(src), $"missing {src}");
        string? gcc = FindOnPath("gcc");
        if (gcc == null || !NativeRunner.Supported)
        {
            output.WriteLine("SKIPPED: needs gcc on an x86-64 Linux host");
            return;
        }
        string dir = Directory.CreateTempSubdirectory("emu64-sse-").FullName;
        try
        {
            string exe = Path.Combine(dir, "acceptance");
            var (cc, ccOut) = Exec(gcc, $"-O2 -static -nostdlib -ffreestanding -fno-pic -no-pie -fno-math-errno -o {exe} {src}");
            Assert.True(cc == 0, "gcc failed:\n" + ccOut);

            var (nativeStatus, nativeOut) = Exec(exe, "");
            var elf = File.ReadAllBytes(exe);
            var r = RunAtCpl3(elf);
            output.WriteLine(r.Console);
            Assert.True(r.Reason == StopReason.DebugExit, Emu64.Cli.Cli.Describe(r.Machine) + "\n" + FirstException.Describe(r.Machine)
                + "\nconsole so far:\n" + r.Console);
            Assert.Equal(nativeOut, r.Console);
            Assert.Equal((nativeStatus << 1) | 1, r.ExitCode);
            Assert.True(r.Console.Length > 100, "the program printed too little");
        }
        finally { Directory.Delete(dir, true); }
    }

    // ---- the test kernel -----------------------------------------------------------------------

    private const ulong Gdt = 0x181000, Gdtr = 0x181100, Scratch = 0x181200;
    private const ulong KernelSyscallStack = 0x2F8000, UserStackTop = 0x7FF000;
    private const ushort KernelCs = 0x08, UserBase = 0x18;   // user SS = 0x23, user CS = 0x2B

    /// <summary>
    /// Loads the ELF's PT_LOAD segments at their (identity-mapped) addresses and runs a kernel that makes
    /// the low 1 GiB user-accessible, enables SSE (CR0.EM=0, CR0.MP=1, CR4.OSFXSR/OSXMMEXCPT), installs
    /// a GDT with user segments, programs EFER.SCE/STAR/LSTAR/SFMASK and SYSRETs to the entry point.
    /// Its SYSCALL handler switches to a kernel stack (the user's red zone stays intact), writes fd 1/2
    /// to COM1, exits through isa-debug-exit on exit/exit_group, and returns -ENOSYS otherwise.
    /// </summary>
    public static Run.Outcome RunAtCpl3(byte[] elf, ulong maxInstructions = 200_000_000)
    {
        ulong entry = BitConverter.ToUInt64(elf, 0x18);
        var gdt = new byte[6 * 8];
        ulong[] desc = [0, 0x00AF9A000000FFFF, 0x00CF92000000FFFF, 0x00CFFA000000FFFF, 0x00CFF2000000FFFF, 0x00AFFA000000FFFF];
        for (int k = 0; k < desc.Length; k++) BitConverter.GetBytes(desc[k]).CopyTo(gdt, 8 * k);
        var gdtr = new byte[10];
        BitConverter.GetBytes((ushort)(gdt.Length - 1)).CopyTo(gdtr, 0);
        BitConverter.GetBytes(Gdt).CopyTo(gdtr, 2);

        var image = TestKernel.Build(a =>
        {
            var fill = a.CreateLabel();
            var syscall = a.CreateLabel();
            a.mov(rax, TestKernel.Pml4); a.or(__qword_ptr[rax], 4);
            a.mov(rax, TestKernel.Pdpt); a.or(__qword_ptr[rax], 4);
            a.mov(rdi, TestKernel.Pd); a.mov(ecx, 512);
            a.Label(ref fill);
            a.or(__qword_ptr[rdi], 4); a.add(rdi, 8); a.dec(ecx); a.jnz(fill);
            a.mov(rax, cr3); a.mov(cr3, rax);
            a.mov(rax, cr0); a.and(rax, ~4); a.or(rax, 2); a.mov(cr0, rax);
            a.mov(rax, cr4); a.or(rax, 0x600); a.mov(cr4, rax);
            a.mov(rax, Gdtr); a.lgdt(__[rax]);
            a.mov(ax, 0x10); a.mov(ds, ax); a.mov(es, ax); a.mov(ss, ax);
            a.mov(ecx, 0xC0000080); a.rdmsr(); a.or(eax, 1); a.wrmsr();
            a.mov(ecx, 0xC0000081); a.xor(eax, eax); a.mov(edx, ((uint)UserBase << 16) | KernelCs); a.wrmsr();
            a.mov(ecx, 0xC0000082); a.lea(rax, __[syscall]); a.mov(rdx, rax); a.shr(rdx, 32); a.wrmsr();
            a.mov(ecx, 0xC0000084); a.mov(eax, 0x700); a.xor(edx, edx); a.wrmsr();
            a.mov(rcx, entry); a.mov(r11d, 2); a.mov(rsp, UserStackTop);
            a.xor(eax, eax); a.xor(edx, edx); a.xor(edi, edi); a.xor(esi, esi);
            a.sysretq();

            // SYSCALL entry: RCX = user RIP, R11 = user RFLAGS, RSP = user stack.
            var notWrite = a.CreateLabel();
            var notExit = a.CreateLabel();
            var ret = a.CreateLabel();
            var loop = a.CreateLabel();
            var done = a.CreateLabel();
            a.Label(ref syscall);
            a.mov(__qword_ptr[Scratch], rsp);
            a.mov(rsp, KernelSyscallStack);
            a.push(rcx); a.push(r11); a.push(rsi); a.push(rdx); a.push(rdi);
            a.cmp(rax, 1); a.jne(notWrite);
            a.mov(rcx, rdx);
            a.test(rcx, rcx); a.jz(done);
            a.Label(ref loop);
            a.mov(al, __byte_ptr[rsi]); a.mov(dx, TestKernel.Com1); a.@out(dx, al);
            a.inc(rsi); a.dec(rcx); a.jnz(loop);
            a.Label(ref done);
            a.mov(rax, __qword_ptr[rsp + 8]);   // the saved RDX: bytes written
            a.jmp(ret);
            a.Label(ref notWrite);
            a.cmp(rax, 60); a.je(notExit);
            a.cmp(rax, 231); a.je(notExit);
            a.mov(rax, unchecked((ulong)-38L));
            a.jmp(ret);
            a.Label(ref notExit);             // exit / exit_group
            a.mov(eax, edi); a.mov(dx, TestKernel.ExitPort); a.@out(dx, eax);
            a.hlt();
            a.Label(ref ret);
            a.pop(rdi); a.pop(rdx); a.pop(rsi); a.pop(r11); a.pop(rcx);
            a.mov(rsp, __qword_ptr[Scratch]);
            a.sysretq();
        }, new Dictionary<ulong, byte[]> { [Gdt] = gdt, [Gdtr] = gdtr });

        return Run.Image(image, maxInstructions: maxInstructions, setup: m => { LoadElf(m, elf); m.Events.Subscribe(new FirstException()); });
    }

    /// <summary>Remembers the first exception, so a failure names the instruction that started it.</summary>
    private sealed class FirstException : IBoundaryListener
    {
        private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Machine, string> Seen = new();
        private Machine? _m;
        public void OnEvent(in BoundaryEvent e)
        {
            if (e.Kind != BoundaryKind.Exception || _m != null) return;
            _m = Emu64.Tests.Sse.UserProgramTests.Current;
            Last = $"first exception: vector {e.Vector} error {e.ErrorCode:x} at rip {e.Rip:x} cpl {e.Cpl} after {e.Instructions} instructions";
        }
        public static string Last = "no exception";
        public static string Describe(Machine m)
            => Last + "; unimplemented: " + string.Join(", ", m.Stats.Unimplemented.Select(kv => $"{kv.Key} x{kv.Value}"));
    }

    private static Machine? Current => null;

    private static void LoadElf(Machine m, byte[] elf)
    {
        ulong phoff = BitConverter.ToUInt64(elf, 0x20);
        int phentsize = BitConverter.ToUInt16(elf, 0x36), phnum = BitConverter.ToUInt16(elf, 0x38);
        for (int k = 0; k < phnum; k++)
        {
            int p = (int)phoff + k * phentsize;
            if (BitConverter.ToUInt32(elf, p) != 1) continue;   // PT_LOAD
            ulong off = BitConverter.ToUInt64(elf, p + 8), vaddr = BitConverter.ToUInt64(elf, p + 16);
            ulong filesz = BitConverter.ToUInt64(elf, p + 32), memsz = BitConverter.ToUInt64(elf, p + 40);
            m.Memory.WriteBytes(vaddr, elf.AsSpan((int)off, (int)filesz));
            for (ulong b = filesz; b < memsz; b++) m.Memory.Write(vaddr + b, 1, 0);
        }
    }

    internal static string? FindOnPath(string name)
    {
        foreach (var d in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
        {
            var p = Path.Combine(d, name);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    internal static (int Status, string Output) Exec(string file, string args)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(60_000)) { p.Kill(); throw new TimeoutException(file); }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}
