using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Foundation;

/// <summary>
/// Kernels of the kind people write for <c>qemu-system-x86_64 -kernel</c>: 32-bit multiboot entry, own
/// page tables, long mode, a COM1 driver that polls the line status register, exit through isa-debug-exit.
/// Each prints only what both machines must agree on.
/// </summary>
public static class QemuKernels
{
    public sealed record Kernel(string Name, byte[] Image, string Append, string Expected, int ExitStatus);

    public static IEnumerable<Kernel> All() => [Table(), Exceptions(), BootInfo(""), BootInfo("console=ttyS0 quiet"), Recursion(), MemoryMap(), UserMode()];

    /// <summary>
    /// CPL 3: IRETQ to user code, SYSCALL/SYSRET for a write system call, #PF from user mode (error codes 7
    /// and 5), #GP for CLI at CPL 3, and INT 0x80 through a DPL 3 gate, each handler printing the frame.
    /// </summary>
    public static Kernel UserMode()
    {
        const ulong Next = 0x1A9000;          // where a fault handler continues (the next stage)
        Label afterSys = default, f1 = default, f2 = default, f3 = default;
        var image = TestKernel.Build(a =>
        {
            var k = GuestKit.Emit(a);
            var g = GuestLib.Emit(a);
            var sys = a.CreateLabel(); var pf = a.CreateLabel(); var gp = a.CreateLabel(); var i80 = a.CreateLabel();
            var u1 = a.CreateLabel(); var u2 = a.CreateLabel(); var u3 = a.CreateLabel(); var u4 = a.CreateLabel();
            var s2 = a.CreateLabel(); var s3 = a.CreateLabel(); var s4 = a.CreateLabel(); var over = a.CreateLabel();
            var text = a.CreateLabel();
            a.jmp(over);
            // SYSCALL entry: rax=1 write(rsi, rdx); rax=60 exit(rdi)
            a.Label(ref sys);
            var notWrite = a.CreateLabel();
            a.cmp(eax, 1); a.jne(notWrite);
            g.Str("sys_write from rip "); g.Hex(rcx); g.Str(" rflags "); g.Hex(r11); g.Str(": ");
            a.call(g.Puts);
            a.sysretq();
            a.Label(ref notWrite);
            g.Str("sys_exit "); g.Dec(rdi); g.Str("\n");
            a.mov(eax, edi); a.mov(dx, TestKernel.ExitPort); a.@out(dx, eax);
            // #PF and #GP: print error code, RIP, CS, SS and (for #PF) CR2, then continue at [Next] on a fresh stack
            foreach (var (l0, name) in new[] { (pf, "#PF"), (gp, "#GP") })
            {
                var l = l0;
                a.Label(ref l);
                g.Str($"{name} error "); a.mov(rax, __qword_ptr[rsp]); g.Hex(rax);
                g.Str(" rip "); a.mov(rax, __qword_ptr[rsp + 8]); g.Hex(rax);
                g.Str(" cs "); a.mov(rax, __qword_ptr[rsp + 16]); g.Hex(rax);
                g.Str(" ss "); a.mov(rax, __qword_ptr[rsp + 40]); g.Hex(rax);
                if (name == "#PF") { g.Str(" cr2 "); a.mov(rax, cr2); g.Hex(rax); }
                g.Str(" stack "); a.mov(rax, rsp); g.Hex(rax); g.Str("\n");
                a.mov(rsp, GuestKit.KernelStack);
                a.jmp(__qword_ptr[Next]);
            }
            a.Label(ref i80);
            g.Str("int 0x80 from cs "); a.mov(rax, __qword_ptr[rsp + 8]); g.Hex(rax);
            g.Str(" rsp "); a.mov(rax, __qword_ptr[rsp + 24]); g.Hex(rax); g.Str("\n");
            a.iretq();
            a.Label(ref text);
            a.db(System.Text.Encoding.ASCII.GetBytes("hello from ring 3\n\0"));
            a.Label(ref over);

            k.MapPage(0, GuestKit.PtBase | 5);             // user, read-only
            k.MapPage(1, (GuestKit.PtBase + 0x1000) | 3);  // supervisor, writable
            k.SetGate(14, pf); k.SetGate(13, gp); k.SetGate(0x80, i80, GuestKit.Attr(dpl: 3));
            k.EnableSyscall(sys, sfmask: 0x200);
            void Stage(Label next) { a.lea(rax, __[next]); a.mov(__qword_ptr[Next], rax); }
            Stage(s2);
            k.EnterUser(u1);
            a.Label(ref u1);                                 // ring 3
            a.mov(eax, 1); a.lea(rsi, __[text]); a.syscall();
            afterSys = a.CreateLabel(); a.Label(ref afterSys);
            a.mov(eax, __dword_ptr[GuestKit.PtBase]);        // fine: user may read
            f1 = a.CreateLabel(); a.Label(ref f1);
            a.mov(__dword_ptr[GuestKit.PtBase + 8], eax);    // #PF error 7
            a.Label(ref s2);
            Stage(s3);
            k.EnterUser(u2);
            a.Label(ref u2);
            a.nop();
            f2 = a.CreateLabel(); a.Label(ref f2);
            a.mov(eax, __dword_ptr[GuestKit.PtBase + 0x1010]);   // #PF error 5
            a.Label(ref s3);
            Stage(s4);
            k.EnterUser(u3);
            a.Label(ref u3);
            a.nop();
            f3 = a.CreateLabel(); a.Label(ref f3);
            a.cli();                                         // #GP(0): IOPL 0
            a.Label(ref s4);
            k.EnterUser(u4);
            a.Label(ref u4);
            a.@int(0x80);
            a.mov(eax, 60); a.mov(edi, 9); a.syscall();
        }, GuestKit.Data(), out var at);
        string H(ulong v) => v.ToString("x16");
        string frame = $" cs {H(GuestKit.UCode64)} ss {H(GuestKit.UData)}";
        string stack = $" stack {H(GuestKit.Rsp0 - 48)}\n";
        var expected = $"sys_write from rip {H(at(afterSys))} rflags {H(2)}: hello from ring 3\n"
            + $"#PF error {H(7)} rip {H(at(f1))}{frame} cr2 {H(GuestKit.PtBase + 8)}{stack}"
            + $"#PF error {H(5)} rip {H(at(f2))}{frame} cr2 {H(GuestKit.PtBase + 0x1010)}{stack}"
            + $"#GP error {H(0)} rip {H(at(f3))}{frame}{stack}"
            + $"int 0x80 from cs {H(GuestKit.UCode64)} rsp {H(GuestKit.UserStackTop)}\nsys_exit 9\n";
        return new Kernel("usermode", image, "", expected, (9 << 1) | 1);
    }

    /// <summary>
    /// Prints the multiboot memory map below 4 GiB (base, length, type of each entry), as a kernel's allocator
    /// reads it. Entries above 4 GiB are skipped: QEMU's default CPU model (qemu64) is an AMD one, for which
    /// QEMU reserves the HyperTransport window at 0xfd00000000; Emu64 is an Intel CPU and has none.
    /// </summary>
    public static Kernel MemoryMap()
    {
        var image = TestKernel.Build(a =>
        {
            var g = GuestLib.Emit(a);
            var next = a.CreateLabel(); var done = a.CreateLabel();
            a.mov(r15d, esi);
            a.mov(r12d, __dword_ptr[r15 + 48]);               // mmap_addr
            a.mov(r13d, __dword_ptr[r15 + 44]);               // mmap_length
            a.add(r13, r12);
            a.Label(ref next);
            var skip = a.CreateLabel();
            a.cmp(r12, r13); a.jae(done);
            a.cmp(__dword_ptr[r12 + 8], 0); a.jne(skip);       // base >= 4 GiB
            g.Str("mmap "); a.mov(rax, __qword_ptr[r12 + 4]); g.Hex(rax);
            g.Str(" "); a.mov(rax, __qword_ptr[r12 + 12]); g.Hex(rax);
            g.Str(" "); a.mov(eax, __dword_ptr[r12 + 20]); g.Dec(rax); g.Str("\n");
            a.Label(ref skip);
            a.mov(eax, __dword_ptr[r12]); a.lea(r12, __[r12 + rax + 4]);
            a.jmp(next);
            a.Label(ref done);
            TestKernel.Exit(a, 0x4D);
        });
        string E(ulong b, ulong l, int t) => $"mmap {b:x16} {l:x16} {t}\n";
        var expected = E(0, 0x9FC00, 1) + E(0x9FC00, 0x400, 2) + E(0xF0000, 0x10000, 2) + E(0x100000, 0x7EE0000, 1)
                       + E(0x7FE0000, 0x20000, 2) + E(0xFFFC0000, 0x40000, 2);
        return new Kernel("mmap", image, "", expected, (0x4D << 1) | 1);
    }

    public static Kernel ByName(string name) => All().First(k => k.Name == name);

    /// <summary>A computed table: i, i², i³ by a call, fib(i) by a loop, i! by a loop, in decimal and hex.</summary>
    public static Kernel Table()
    {
        var image = TestKernel.Build(a =>
        {
            var g = GuestLib.Emit(a);
            var cube = a.CreateLabel(); var fib = a.CreateLabel(); var fact = a.CreateLabel(); var row = a.CreateLabel();
            var overFns = a.CreateLabel();
            a.jmp(overFns);
            a.Label(ref cube);          // rax = rdi^3
            a.mov(rax, rdi); a.imul(rax, rdi); a.imul(rax, rdi); a.ret();
            a.Label(ref fib);           // rax = fib(rdi), iterative
            var fl = a.CreateLabel(); var fd = a.CreateLabel();
            a.push(rcx); a.push(rdx);
            a.xor(eax, eax); a.mov(edx, 1); a.mov(rcx, rdi);
            a.test(rcx, rcx); a.jz(fd);
            a.Label(ref fl);
            a.add(rax, rdx);            // (a, b) = (b, a + b)
            a.xchg(rax, rdx);
            a.loop(fl);
            a.Label(ref fd);
            a.pop(rdx); a.pop(rcx); a.ret();
            a.Label(ref fact);          // rax = rdi!
            var ffl = a.CreateLabel();
            a.push(rcx);
            a.mov(eax, 1); a.mov(rcx, rdi);
            a.Label(ref ffl);
            a.imul(rax, rcx);
            a.loop(ffl);
            a.pop(rcx); a.ret();
            a.Label(ref overFns);

            g.Str("n  n^2  n^3  fib  n!  (hex n! , n!/7 rem)\n");
            a.mov(r12d, 1);
            a.Label(ref row);
            a.mov(rax, r12); g.Dec(rax); g.Str(" ");
            a.mov(rax, r12); a.mul(r12); g.Dec(rax); g.Str(" ");
            a.mov(rdi, r12); a.call(cube); g.Dec(rax); g.Str(" ");
            a.call(fib); g.Dec(rax); g.Str(" ");
            a.call(fact); g.Dec(rax); g.Str(" 0x"); g.Hex(rax); g.Str(" ");
            a.xor(edx, edx); a.mov(ecx, 7); a.div(rcx); g.Dec(rax); g.Str(" r"); g.Dec(rdx);
            // signed arithmetic, shifts and flags: (-(n*1000) sar 3) and setcc/cmov
            a.mov(rax, r12); a.imul(rax, rax, -1000); a.sar(rax, 3); g.Str(" "); g.Hex(rax);
            a.cmp(r12, 10); a.setae(bl); a.movzx(ebx, bl); a.mov(ecx, 0x77); a.cmovae(ebx, ecx); g.Str(" "); g.Dec(rbx);
            g.Str("\n");
            a.inc(r12);
            a.cmp(r12, 20);
            a.jbe(row);
            TestKernel.Exit(a, 0x10);
        });
        var expected = new System.Text.StringBuilder("n  n^2  n^3  fib  n!  (hex n! , n!/7 rem)\n");
        ulong fa = 0, fb = 1, f = 1;
        for (ulong n = 1; n <= 20; n++)
        {
            (fa, fb) = (fb, fa + fb);
            f *= n;
            long s = (-(long)(n * 1000)) >> 3;
            expected.Append($"{n} {n * n} {n * n * n} {fa} {f} 0x{f:x16} {f / 7} r{f % 7} {(ulong)s:x16} {(n >= 10 ? 0x77 : 0)}\n");
        }
        return new Kernel("table", image, "", expected.ToString(), (0x10 << 1) | 1);
    }

    /// <summary>
    /// An IDT with #DE, #UD, #GP and #PF handlers that print the vector, error code, faulting RIP and CR2 and
    /// recover: #DE/#UD/#GP resume at an address the kernel stored beforehand; #PF maps the missing 2 MiB
    /// page and retries the instruction.
    /// </summary>
    public static Kernel Exceptions()
    {
        const ulong Resume = 0x1A8000;
        Label divz = default, ud = default, gpNc = default, gpSel = default, pfW = default, pfR = default;
        var image = TestKernel.Build(a =>
        {
            var g = GuestLib.Emit(a);
            var idt = 0x1A4000UL;
            var common = a.CreateLabel(); var pfh = a.CreateLabel();
            var h = new Dictionary<int, Label> { [0] = a.CreateLabel(), [6] = a.CreateLabel(), [13] = a.CreateLabel() };
            var over = a.CreateLabel();
            a.jmp(over);
            // handlers without error code push a zero one, then the vector
            foreach (var (v, l0) in h)
            {
                var l = l0;
                a.Label(ref l);
                if (v != 13) a.push(0);
                a.push(v);
                a.jmp(common);
            }
            a.Label(ref common);                       // [rsp]=vector [rsp+8]=error [rsp+16]=rip
            g.Str("vector "); a.mov(rax, __qword_ptr[rsp]); g.Dec(rax);
            g.Str(" error "); a.mov(rax, __qword_ptr[rsp + 8]); g.Hex(rax);
            g.Str(" rip "); a.mov(rax, __qword_ptr[rsp + 16]); g.Hex(rax);
            g.Str("\n");
            a.mov(rax, __qword_ptr[Resume]);
            a.mov(__qword_ptr[rsp + 16], rax);
            a.add(rsp, 16);
            a.iretq();
            a.Label(ref pfh);
            a.push(rax);
            g.Str("vector 14 error "); a.mov(rax, __qword_ptr[rsp + 8]); g.Hex(rax);
            g.Str(" rip "); a.mov(rax, __qword_ptr[rsp + 16]); g.Hex(rax);
            g.Str(" cr2 "); a.mov(rax, cr2); g.Hex(rax); g.Str("\n");
            a.mov(rax, cr2); a.shr(rax, 21); a.and(eax, 511);             // map the 2 MiB page back
            a.push(rbx); a.mov(rbx, rax); a.shl(rbx, 21); a.or(rbx, 0x83);
            a.mov(__qword_ptr[rax * 8 + (long)TestKernel.Pd], rbx);
            a.mov(rax, cr2); a.invlpg(__[rax]);
            a.pop(rbx); a.pop(rax);
            a.add(rsp, 8);
            a.iretq();
            a.Label(ref over);
            // build the IDT (interrupt gates, selector 0x08)
            foreach (var (v, l) in h.Append(new(14, pfh)))
            {
                a.lea(rax, __[l]);
                a.mov(__word_ptr[idt + (ulong)v * 16], ax);
                a.mov(__word_ptr[idt + (ulong)v * 16 + 2], 0x08);
                a.mov(__word_ptr[idt + (ulong)v * 16 + 4], 0x8E00);
                a.shr(rax, 16);
                a.mov(__word_ptr[idt + (ulong)v * 16 + 6], ax);
                a.mov(__qword_ptr[idt + (ulong)v * 16 + 8], 0);
            }
            a.mov(__word_ptr[0x1A3FF0], 0xFFF);
            a.mov(rax, idt); a.mov(__qword_ptr[0x1A3FF2], rax);
            a.lidt(__[0x1A3FF0]);
            g.Str("idt loaded\n");

            void Recover(Label after) { a.lea(rax, __[after]); a.mov(__qword_ptr[Resume], rax); }
            // #DE
            var a1 = a.CreateLabel(); Recover(a1);
            a.mov(eax, 1234); a.xor(ecx, ecx); a.xor(edx, edx);
            divz = a.CreateLabel(); a.Label(ref divz); a.div(ecx);
            a.Label(ref a1); g.Str("after #DE\n");
            // #UD
            var a2 = a.CreateLabel(); Recover(a2);
            ud = a.CreateLabel(); a.Label(ref ud); a.ud2();
            a.Label(ref a2); g.Str("after #UD\n");
            // #GP: non-canonical address
            var a3 = a.CreateLabel(); Recover(a3);
            a.mov(rbx, 0x0000800000000010UL);
            gpNc = a.CreateLabel(); a.Label(ref gpNc); a.mov(rax, __qword_ptr[rbx]);
            a.Label(ref a3); g.Str("after #GP\n");
            // #GP: a selector past the GDT limit (error code = selector)
            var a4 = a.CreateLabel(); Recover(a4);
            a.mov(eax, 0x48);
            gpSel = a.CreateLabel(); a.Label(ref gpSel); a.mov(ds, ax);
            a.Label(ref a4); g.Str("after #GP selector\n");
            // #PF: unmap the 2 MiB page at 0x2000000 (32 MiB), write to it, then read from another one
            a.mov(__qword_ptr[TestKernel.Pd + 16 * 8], 0);
            a.mov(__qword_ptr[TestKernel.Pd + 17 * 8], 0);
            a.mov(rax, cr3); a.mov(cr3, rax);
            a.mov(rbx, 0x2000123UL); a.mov(ecx, 0x5A5A);
            pfW = a.CreateLabel(); a.Label(ref pfW); a.mov(__dword_ptr[rbx], ecx);
            a.mov(eax, __dword_ptr[rbx]); g.Str("read back "); g.Hex(rax); g.Str("\n");
            a.mov(rbx, 0x2200ff8UL);
            pfR = a.CreateLabel(); a.Label(ref pfR); a.mov(rax, __qword_ptr[rbx]);
            g.Str("read "); g.Hex(rax); g.Str("\n");
            TestKernel.Exit(a, 3);
        }, null, out var at);
        string H(ulong v) => v.ToString("x16");
        string expected =
            "idt loaded\n" +
            $"vector 0 error {H(0)} rip {H(at(divz))}\nafter #DE\n" +
            $"vector 6 error {H(0)} rip {H(at(ud))}\nafter #UD\n" +
            $"vector 13 error {H(0)} rip {H(at(gpNc))}\nafter #GP\n" +
            $"vector 13 error {H(0x48)} rip {H(at(gpSel))}\nafter #GP selector\n" +
            $"vector 14 error {H(2)} rip {H(at(pfW))} cr2 {H(0x2000123)}\nread back {H(0x5A5A)}\n" +
            $"vector 14 error {H(0)} rip {H(at(pfR))} cr2 {H(0x2200ff8)}\nread {H(0)}\n";
        return new Kernel("exceptions", image, "", expected, 7);
    }

    /// <summary>Prints mem_lower, mem_upper and the command line from the multiboot information structure.</summary>
    public static Kernel BootInfo(string append)
    {
        var image = TestKernel.Build(a =>
        {
            var g = GuestLib.Emit(a);
            var haveCmd = a.CreateLabel(); var done = a.CreateLabel();
            a.mov(r15d, esi);                     // TestKernel keeps EBX (the info pointer) in ESI
            g.Str("magic ok flags&0x5 ");
            a.mov(eax, __dword_ptr[r15]); a.and(eax, 5); g.Hex(rax);
            g.Str("\nmem_lower "); a.mov(eax, __dword_ptr[r15 + 4]); g.Dec(rax);
            g.Str("\nmem_upper "); a.mov(eax, __dword_ptr[r15 + 8]); g.Dec(rax);
            g.Str("\ncmdline [");
            a.test(__dword_ptr[r15], 4);
            a.jnz(haveCmd);
            g.Str("none");
            a.jmp(done);
            a.Label(ref haveCmd);
            a.mov(esi, __dword_ptr[r15 + 16]);
            a.call(g.Puts);
            a.Label(ref done);
            g.Str("]\n");
            TestKernel.Exit(a, 0x42);
        });
        return new Kernel(append == "" ? "bootinfo" : "bootinfo-append", image, append,
            $"magic ok flags&0x5 {5:x16}\nmem_lower 639\nmem_upper {128 * 1024 - 1024 - 128}\ncmdline [{{PATH}}{(append == "" ? " " : " " + append)}]\n", (0x42 << 1) | 1);
    }

    /// <summary>Deep recursion: recursive fib(24) (pushes and calls), and a 10000-deep recursive sum.</summary>
    public static Kernel Recursion()
    {
        var image = TestKernel.Build(a =>
        {
            var g = GuestLib.Emit(a);
            var fib = a.CreateLabel(); var sum = a.CreateLabel(); var over = a.CreateLabel();
            a.jmp(over);
            a.Label(ref fib);                     // rax = fib(rdi), naive recursion
            var small = a.CreateLabel();
            a.cmp(rdi, 2); a.jb(small);
            a.push(rbx); a.push(rdi);
            a.dec(rdi); a.call(fib); a.mov(rbx, rax);
            a.pop(rdi); a.push(rdi);
            a.sub(rdi, 2); a.call(fib); a.add(rax, rbx);
            a.pop(rdi); a.pop(rbx); a.ret();
            a.Label(ref small); a.mov(rax, rdi); a.ret();
            a.Label(ref sum);                     // rax = sum(1..rdi) + depth check, with a frame pointer
            var zero = a.CreateLabel();
            a.push(rbp); a.mov(rbp, rsp); a.sub(rsp, 32);
            a.mov(__qword_ptr[rbp - 8], rdi);
            a.test(rdi, rdi); a.jz(zero);
            a.dec(rdi); a.call(sum);
            a.add(rax, __qword_ptr[rbp - 8]);
            a.leave(); a.ret();
            a.Label(ref zero); a.xor(eax, eax); a.leave(); a.ret();
            a.Label(ref over);
            a.mov(edi, 24); a.call(fib); g.Str("fib(24) = "); g.Dec(rax); g.Str("\n");
            a.mov(rbx, rsp);
            a.mov(edi, 10000); a.call(sum); g.Str("sum(10000) = "); g.Dec(rax); g.Str("\n");
            a.sub(rbx, rsp); g.Str("rsp restored "); g.Dec(rbx); g.Str("\n");
            TestKernel.Exit(a, 0);
        });
        return new Kernel("recursion", image, "", "fib(24) = 46368\nsum(10000) = 50005000\nrsp restored 0\n", 1);
    }
}
