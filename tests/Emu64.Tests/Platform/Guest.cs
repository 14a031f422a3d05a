using System.Diagnostics;
using Emu64.Loader;
using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Platform;

/// <summary>
/// Building blocks for the platform test kernels, on top of <see cref="TestKernel"/>: an IDT with
/// 64-bit interrupt gates, port and MMIO accessors, and printing of short hex numbers. Memory the
/// kernels use lies in the multiboot bss (zeroed by both Emu64 and QEMU).
/// </summary>
public static class Guest
{
    public const ulong Idt = 0x190000, Idtr = 0x191000, Vars = 0x192000, Buffer = 0x193000;
    public const ulong ApicBase = 0xFEE00000, IoApicBase = 0xFEC00000;

    /// <summary>The address of 8-byte variable <paramref name="i"/>.</summary>
    public static ulong Var(int i) => Vars + 8 * (ulong)i;

    public static void LoadIdt(Assembler a)
    {
        a.mov(rdi, Idtr);
        a.mov(__word_ptr[rdi], 0xFFF);
        a.mov(rax, Idt);
        a.mov(__qword_ptr[rdi + 2], rax);
        a.lidt(__[rdi]);
    }

    /// <summary>Points IDT entry <paramref name="vector"/> at <paramref name="handler"/> (interrupt gate, DPL 0).</summary>
    public static void Gate(Assembler a, int vector, Label handler)
    {
        a.lea(rax, __[handler]);
        a.mov(rdi, Idt + 16 * (ulong)vector);
        a.mov(__word_ptr[rdi], ax);
        a.mov(__word_ptr[rdi + 2], 0x08);
        a.mov(__word_ptr[rdi + 4], 0x8E00);
        a.shr(rax, 16);
        a.mov(__word_ptr[rdi + 6], ax);
        a.shr(rax, 16);
        a.mov(__dword_ptr[rdi + 8], eax);
        a.mov(__dword_ptr[rdi + 12], 0);
    }

    public static void Out8(Assembler a, ushort port, byte value)
    {
        a.mov(dx, port);
        a.mov(al, value);
        a.@out(dx, al);
    }

    /// <summary>Reads port <paramref name="port"/> into AL (RAX zero-extended).</summary>
    public static void In8(Assembler a, ushort port)
    {
        a.xor(eax, eax);
        a.mov(dx, port);
        a.@in(al, dx);
    }

    public static void Write32(Assembler a, ulong addr, uint value)
    {
        a.mov(rdi, addr);
        a.mov(__dword_ptr[rdi], value);
    }

    /// <summary>Reads the 32-bit register at <paramref name="addr"/> into EAX.</summary>
    public static void Read32(Assembler a, ulong addr)
    {
        a.mov(rdi, addr);
        a.mov(eax, __dword_ptr[rdi]);
    }

    /// <summary>Prints the low <paramref name="digits"/> hex digits of RAX (clobbers rax, rbx, rcx, rdx).</summary>
    public static void PrintHex(Assembler a, int digits)
    {
        var loop = a.CreateLabel();
        var digit = a.CreateLabel();
        a.mov(rbx, rax);
        if (digits < 16) a.shl(rbx, (byte)(64 - 4 * digits));
        a.mov(ecx, digits);
        a.Label(ref loop);
        a.rol(rbx, 4);
        a.mov(eax, ebx);
        a.and(eax, 0xF);
        a.add(eax, '0');
        a.cmp(eax, '9');
        a.jbe(digit);
        a.add(eax, 'a' - '9' - 1);
        a.Label(ref digit);
        a.mov(dx, TestKernel.Com1);
        a.@out(dx, al);
        a.dec(ecx);
        a.jnz(loop);
    }

    /// <summary>Prints "label=XX..\n" for the value in RAX.</summary>
    public static void Show(Assembler a, string label, int digits)
    {
        a.push(rax);
        TestKernel.Print(a, label + "=");
        a.pop(rax);
        PrintHex(a, digits);
        TestKernel.Print(a, "\n");
    }

    /// <summary>
    /// Two jumps: QEMU's TCG looks at pending interrupts only between translation blocks, so after an
    /// instruction that raises one (an ICR write, STI) a guest that wants it taken "now" on both
    /// machines ends the block. Emu64 takes it at the next instruction boundary anyway.
    /// </summary>
    public static void Settle(Assembler a)
    {
        for (int i = 0; i < 2; i++) { var next = a.CreateLabel(); a.jmp(next); a.Label(ref next); }
    }

    public static void PushAll(Assembler a) { foreach (var r in new[] { rax, rbx, rcx, rdx, rsi, rdi }) a.push(r); }
    public static void PopAll(Assembler a) { foreach (var r in new[] { rdi, rsi, rdx, rcx, rbx, rax }) a.pop(r); }

    /// <summary>Masks every 8259 input, so that only the APICs deliver (QEMU's firmware leaves IRQ0 running).</summary>
    public static void MaskPic(Assembler a) { Out8(a, 0x21, 0xFF); Out8(a, 0xA1, 0xFF); }

    /// <summary>Initialises the 8259 pair with vector bases 0x20 and 0x28, every input masked but the given ones.</summary>
    public static void InitPic(Assembler a, byte masterMask, byte slaveMask)
    {
        Out8(a, 0x20, 0x11); Out8(a, 0xA0, 0x11);      // ICW1: edge, cascade, ICW4 needed
        Out8(a, 0x21, 0x20); Out8(a, 0xA1, 0x28);      // ICW2: vector bases
        Out8(a, 0x21, 0x04); Out8(a, 0xA1, 0x02);      // ICW3: slave on IR2
        Out8(a, 0x21, 0x01); Out8(a, 0xA1, 0x01);      // ICW4: 8086 mode
        Out8(a, 0x21, masterMask); Out8(a, 0xA1, slaveMask);
    }

    /// <summary>Sets the APIC spurious-interrupt vector register: software enable, spurious vector 0xFF.</summary>
    public static void EnableApic(Assembler a) => Write32(a, ApicBase + 0xF0, 0x1FF);
}

/// <summary>Runs a test kernel in Emu64 with the options a platform test needs.</summary>
public static class PlatformRun
{
    public static Run.Outcome Emu(byte[] image, ulong ticksPerSecond = 1_000_000_000, string input = "",
        ulong maxInstructions = 50_000_000, string append = "", Action<Machine>? setup = null)
    {
        var output = new MemoryStream();
        var m = new Machine(new MachineOptions
        {
            RamBytes = 128UL << 20, MaxInstructions = maxInstructions, Output = output, TicksPerSecond = ticksPerSecond, Append = append,
        });
        m.LoadKernel(image, "kernel", Array.Empty<BootModule>());
        if (input.Length > 0) m.Com1.Receive(System.Text.Encoding.Latin1.GetBytes(input));
        setup?.Invoke(m);
        var reason = m.Run();
        return new Run.Outcome(m, System.Text.Encoding.Latin1.GetString(output.ToArray()), reason, m.ExitCode);
    }

    /// <summary>What a test kernel printed, once it has ended through the debug-exit port (anything else fails the test).</summary>
    public static string Console(byte[] image, string input = "")
    {
        var r = Emu(image, input: input);
        Assert.True(r.Reason == StopReason.DebugExit, Emu64.Cli.Cli.Describe(r.Machine));
        return r.Console;
    }
}

/// <summary>A fact that needs qemu-system-x86_64; reported as skipped when it is not installed.</summary>
public sealed class QemuFactAttribute : FactAttribute
{
    public QemuFactAttribute()
    {
        if (Qemu.Executable is null) Skip = "qemu-system-x86_64 is not installed";
    }
}

/// <summary>Runs the same image under QEMU the way its users would: -kernel, serial on stdio, isa-debug-exit.</summary>
public static class Qemu
{
    public static readonly string? Executable = Find();

    private static string? Find()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var p = System.IO.Path.Combine(dir, "qemu-system-x86_64");
            if (File.Exists(p)) return p;
        }
        return null;
    }

    public static string Run(byte[] image, string extraArgs = "", string input = "")
    {
        var file = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"emu64-platform-{Guid.NewGuid():N}.bin");
        File.WriteAllBytes(file, image);
        try { return RunFile(file, extraArgs, input); }
        finally { File.Delete(file); }
    }

    /// <summary>
    /// Boots the kernel file under QEMU and returns what it printed on the serial port. QEMU's TCG runs its timers in host
    /// time, and on a loaded machine a run of a timer-driven test kernel has once not finished within 30 s (seen in CI's
    /// second pass, APIC timer kernel); the referee is then asked once more before the test fails.
    /// </summary>
    public static string RunFile(string kernel, string extraArgs = "", string input = "")
    {
        try { return RunFileOnce(kernel, extraArgs, input); }
        catch (TimeoutException) { return RunFileOnce(kernel, extraArgs, input); }
    }

    private static string RunFileOnce(string kernel, string extraArgs, string input)
    {
        var psi = new ProcessStartInfo(Executable!,
            $"-kernel {kernel} -serial stdio -display none -device isa-debug-exit,iobase=0xf4,iosize=4 -no-reboot -m 128 {extraArgs}")
        {
            RedirectStandardOutput = true, RedirectStandardInput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        using var p = Process.Start(psi)!;
        var buf = new MemoryStream();
        var copy = p.StandardOutput.BaseStream.CopyToAsync(buf);
        var err = p.StandardError.ReadToEndAsync();   // drained, not compared
        p.StandardInput.Write(input);
        p.StandardInput.Flush();
        if (!p.WaitForExit(30_000)) { p.Kill(true); throw new TimeoutException("QEMU did not finish within 30 s"); }
        copy.Wait();
        p.StandardInput.Close();
        return System.Text.Encoding.Latin1.GetString(buf.ToArray());
    }
}
