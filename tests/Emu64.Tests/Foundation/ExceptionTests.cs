using Emu64.Cpu;
using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Foundation;

/// <summary>
/// Exceptions delivered through the 64-bit IDT (SDM vol. 3A ch. 6): the pushed frame, the error code, CR2,
/// and precision — the faulting instruction changed nothing and the saved RIP points at it.
/// </summary>
public class ExceptionTests
{
    private const ulong Sentinel = 0x5EE5_1234_ABCD_0001;
    private const ulong KernelRsp = GuestKit.KernelStack;   // RSP when the body starts (16-byte aligned)
    private const ulong Cr2Before = 0xC2C2C2C2;

    public enum Kind { Read, Write, Fetch }

    public sealed record PfCase(string Name, ulong Entry, Kind Access, bool User, bool Nxe, bool Wp, uint Error)
    {
        public override string ToString() => Name;
    }

    private const ulong P = 1, W = 2, U = 4, Nx = 1UL << 63, Rsvd51 = 1UL << 51, Page = GuestKit.PtBase;

    public static TheoryData<PfCase> PageFaults() => new(
        new PfCase("kernel read of a not-present page", 0, Kind.Read, false, false, false, 0),
        new PfCase("kernel write to a not-present page", 0, Kind.Write, false, false, false, PfErr.W),
        new PfCase("kernel write to a read-only page with CR0.WP", Page | P, Kind.Write, false, false, true, PfErr.P | PfErr.W),
        new PfCase("user read of a not-present page", 0, Kind.Read, true, false, false, PfErr.U),
        new PfCase("user read of a supervisor page", Page | P | W, Kind.Read, true, false, false, PfErr.P | PfErr.U),
        new PfCase("user write to a read-only user page", Page | P | U, Kind.Write, true, false, false, PfErr.P | PfErr.W | PfErr.U),
        new PfCase("kernel read of an entry with a bit above MAXPHYADDR", Page | P | W | Rsvd51, Kind.Read, false, false, false, PfErr.P | PfErr.Rsvd),
        new PfCase("user write to an entry with a bit above MAXPHYADDR", Page | P | W | U | Rsvd51, Kind.Write, true, false, false, PfErr.P | PfErr.W | PfErr.U | PfErr.Rsvd),
        new PfCase("kernel read of an XD entry while EFER.NXE is clear", Page | P | W | Nx, Kind.Read, false, false, false, PfErr.P | PfErr.Rsvd),
        new PfCase("kernel fetch from an XD page with NXE", Page | P | W | Nx, Kind.Fetch, false, true, false, PfErr.P | PfErr.I),
        new PfCase("kernel fetch from a not-present page with NXE", 0, Kind.Fetch, false, true, false, PfErr.I),
        new PfCase("user fetch from an XD user page with NXE", Page | P | W | U | Nx, Kind.Fetch, true, true, false, PfErr.P | PfErr.U | PfErr.I));

    [Theory, MemberData(nameof(PageFaults))]
    public void A_page_fault_pushes_the_exact_error_code_CR2_and_a_frame_pointing_at_the_faulting_instruction(PfCase c)
    {
        const ulong addr = Page + 0x128;
        ulong target = c.Access == Kind.Fetch ? Page : addr;
        Label fault = default;
        var t = Trap.Run((a, k) =>
        {
            var user = a.CreateLabel();
            k.MapPage(0, c.Entry);
            if (c.Nxe) { a.mov(ecx, 0xC0000080u); a.rdmsr(); a.or(eax, 1 << 11); a.wrmsr(); }
            if (c.Wp) { a.mov(rax, cr0); a.or(eax, 1 << 16); a.mov(cr0, rax); }
            a.mov(rax, Cr2Before); a.mov(cr2, rax);
            if (c.User) k.EnterUser(user);
            a.Label(ref user);
            a.mov(rbx, target);
            a.mov(rax, Sentinel);
            a.mov(rcx, 0x77);
            fault = a.CreateLabel();
            a.Label(ref fault);
            switch (c.Access)
            {
                case Kind.Read: a.mov(rax, __qword_ptr[rbx]); break;
                case Kind.Write: a.mov(__qword_ptr[rbx], rcx); break;
                case Kind.Fetch: a.jmp(rbx); break;
            }
            a.ud2();
        }).Expect(Vec.PF);
        var f = t.Frame(hasError: true);
        Assert.Equal(c.Error, (uint)f.Err);
        Assert.Equal(target, t.Cpu.CR2);
        Assert.Equal(c.Access == Kind.Fetch ? target : t.At(fault), f.Rip);
        Assert.Equal(Sentinel, t.Cpu.R[Reg.RAX]);                       // the load did not happen
        Assert.Equal(c.User ? GuestKit.UCode64 : GuestKit.KCode, f.Cs);
        Assert.Equal(c.User ? GuestKit.UData : (ulong)GuestKit.KData, f.Ss);
        Assert.Equal(c.User ? GuestKit.UserStackTop : KernelRsp, f.Rsp);
        Assert.Equal((c.User ? GuestKit.Rsp0 : KernelRsp) - 48, t.Rsp);   // 16-byte aligned frame + error code
        Assert.Equal(0, t.Cpu.Cpl);
        if (c.Access == Kind.Write && c.Entry != 0) Assert.Equal(0UL, t.Mem(addr));   // the store did not happen
    }

    [Fact]
    public void A_kernel_write_to_a_read_only_page_succeeds_while_CR0_WP_is_clear()
    {
        var t = Trap.Run((a, k) =>
        {
            k.MapPage(0, Page | P);
            a.mov(rbx, Page + 8); a.mov(rcx, 0x1122334455667788);
            a.mov(__qword_ptr[rbx], rcx);
            a.ud2();
        }).Expect(Vec.UD);
        Assert.Equal(0x1122334455667788UL, t.Mem(Page + 8));
    }

    // ---- #GP -------------------------------------------------------------------------------

    [Fact]
    public void A_load_from_a_non_canonical_address_raises_GP_0_and_leaves_CR2_alone()
    {
        Label fault = default;
        var t = Trap.Run((a, k) =>
        {
            a.mov(rax, Cr2Before); a.mov(cr2, rax);
            a.mov(rbx, 0x0000_8000_0000_0000UL); a.mov(rax, Sentinel);
            fault = a.CreateLabel(); a.Label(ref fault);
            a.mov(rax, __qword_ptr[rbx]);
        }).Expect(Vec.GP);
        var f = t.Frame(true);
        Assert.Equal(0UL, f.Err);
        Assert.Equal(t.At(fault), f.Rip);
        Assert.Equal(Cr2Before, t.Cpu.CR2);
        Assert.Equal(Sentinel, t.Cpu.R[Reg.RAX]);
    }

    // An access is canonical only if every byte of it is (SDM vol. 1 §3.3.7.1): near the ends of the two halves the
    // size decides between #GP(0) and the page fault an unmapped canonical address raises (CR2 = the address).
    [Theory]
    [InlineData(0x0000_7FFF_FFFF_FFF8UL, 8, Vec.PF)]   // the last 8 bytes of the lower half
    [InlineData(0x0000_7FFF_FFFF_FFFCUL, 4, Vec.PF)]
    [InlineData(0x0000_7FFF_FFFF_FFFCUL, 8, Vec.GP)]   // its last 4 bytes lie past the lower half
    [InlineData(0x0000_7FFF_FFFF_FFFFUL, 2, Vec.GP)]
    [InlineData(0xFFFF_7FFF_FFFF_FFFCUL, 8, Vec.GP)]   // starts below the upper half, ends in it
    [InlineData(0xFFFF_8000_0000_0000UL, 8, Vec.PF)]   // the first 8 bytes of the upper half
    [InlineData(0xFFFF_FFFF_FFFF_FFF8UL, 8, Vec.PF)]   // the last 8 bytes of the address space
    public void A_load_is_canonical_only_if_its_first_and_last_byte_are(ulong address, int size, int vector)
    {
        var t = Trap.Run((a, k) =>
        {
            a.mov(rbx, address);
            if (size == 8) a.mov(rax, __qword_ptr[rbx]);
            else if (size == 4) a.mov(eax, __dword_ptr[rbx]);
            else a.mov(ax, __word_ptr[rbx]);
        }).Expect(vector);
        if (vector == Vec.PF) Assert.Equal(address, t.Cpu.CR2);
        else Assert.Equal(0UL, t.Frame(true).Err);
    }

    public static TheoryData<string> PrivilegedAtCpl3() => new(
        "mov rax, cr0", "mov cr3, rax", "mov rax, dr7", "hlt", "cli", "sti", "rdmsr", "wrmsr", "lgdt", "lidt", "ltr", "lldt",
        "invlpg", "in al, dx", "out dx, al", "insb", "outsb", "swapgs", "clts", "wbinvd", "popf-iopl-ignored-then-cli");

    [Theory, MemberData(nameof(PrivilegedAtCpl3))]
    public void A_privileged_instruction_at_CPL_3_raises_GP_0_with_RIP_at_it(string insn)
    {
        Label fault = default;
        var t = Trap.Run((a, k) =>
        {
            var user = a.CreateLabel();
            k.EnterUser(user, rflags: insn.StartsWith("popf") ? 0x202UL : 0x2UL);
            a.Label(ref user);
            a.mov(edx, 0x3F8); a.mov(eax, 0x41); a.mov(rsi, 0x180000); a.mov(rdi, 0x180000); a.mov(ecx, 0x10);
            if (insn.StartsWith("popf")) { a.push(0x3002); a.popfq(); }   // IOPL 3 and IF 0: both ignored at CPL 3 with IOPL 0
            fault = a.CreateLabel(); a.Label(ref fault);
            switch (insn)
            {
                case "mov rax, cr0": a.mov(rax, cr0); break;
                case "mov cr3, rax": a.mov(cr3, rax); break;
                case "mov rax, dr7": a.mov(rax, dr7); break;
                case "hlt": a.hlt(); break;
                case "cli": case "popf-iopl-ignored-then-cli": a.cli(); break;
                case "sti": a.sti(); break;
                case "rdmsr": a.rdmsr(); break;
                case "wrmsr": a.wrmsr(); break;
                case "lgdt": a.lgdt(__[rsi]); break;
                case "lidt": a.lidt(__[rsi]); break;
                case "ltr": a.ltr(cx); break;
                case "lldt": a.lldt(cx); break;
                case "invlpg": a.invlpg(__[rsi]); break;
                case "in al, dx": a.@in(al, dx); break;
                case "out dx, al": a.@out(dx, al); break;
                case "insb": a.insb(); break;
                case "outsb": a.outsb(); break;
                case "swapgs": a.swapgs(); break;
                case "clts": a.clts(); break;
                case "wbinvd": a.wbinvd(); break;
            }
            a.ud2();
        }).Expect(Vec.GP);
        var f = t.Frame(true);
        Assert.Equal(0UL, f.Err);
        Assert.Equal(t.At(fault), f.Rip);
        Assert.Equal((ulong)GuestKit.UCode64, f.Cs);
        Assert.Equal(0x41UL, t.Cpu.R[Reg.RAX] & 0xFF);       // IN did not load AL
        if (insn.StartsWith("popf")) Assert.Equal(0x200UL, f.Rflags & 0x3200);   // IF stayed 1, IOPL stayed 0
    }

    public sealed record SelCase(string Name, ushort Selector, string Reg, bool User, int Vector, uint Error)
    {
        public override string ToString() => Name;
    }

    public static TheoryData<SelCase> BadSelectors() => new(
        new SelCase("DS past the GDT limit", 0x50, "ds", false, Vec.GP, 0x50),
        new SelCase("DS naming the TSS descriptor", GuestKit.TssSel, "ds", false, Vec.GP, 0x30),
        new SelCase("DS naming a not-present segment", GuestKit.NotPresentData, "ds", false, Vec.NP, 0x40),
        new SelCase("SS with RPL 3 at CPL 0", GuestKit.UData, "ss", false, Vec.GP, 0x20),
        new SelCase("SS naming a code segment", GuestKit.KCode, "ss", false, Vec.GP, 0x08),
        new SelCase("ES naming a DPL 0 segment at CPL 3", GuestKit.KData, "es", true, Vec.GP, 0x10),
        new SelCase("SS null at CPL 3", 3, "ss", true, Vec.GP, 0),
        new SelCase("FS from the LDT with no LDT", 0x0C, "fs", false, Vec.GP, 0x0C));

    [Theory, MemberData(nameof(BadSelectors))]
    public void Loading_a_bad_selector_faults_with_the_selector_as_error_code(SelCase c)
    {
        Label fault = default;
        var t = Trap.Run((a, k) =>
        {
            var user = a.CreateLabel();
            if (c.User) k.EnterUser(user);
            a.Label(ref user);
            a.mov(eax, c.Selector);
            fault = a.CreateLabel(); a.Label(ref fault);
            switch (c.Reg)
            {
                case "ds": a.mov(ds, ax); break;
                case "es": a.mov(es, ax); break;
                case "fs": a.mov(fs, ax); break;
                case "ss": a.mov(ss, ax); break;
            }
            a.ud2();
        }).Expect(c.Vector);
        var f = t.Frame(true);
        Assert.Equal(c.Error, (uint)f.Err);
        Assert.Equal(t.At(fault), f.Rip);
    }

    // ---- #SS ---------------------------------------------------------------------------------

    [Fact]
    public void An_RBP_based_access_to_a_non_canonical_address_raises_SS_0()
    {
        Label fault = default;
        var t = Trap.Run((a, k) =>
        {
            a.mov(rbp, 0xFFFF_7000_0000_0000UL); a.mov(rax, Sentinel);
            fault = a.CreateLabel(); a.Label(ref fault);
            a.mov(rax, __qword_ptr[rbp + 8]);
        }).Expect(Vec.SS);
        var f = t.Frame(true);
        Assert.Equal(0UL, f.Err);
        Assert.Equal(t.At(fault), f.Rip);
        Assert.Equal(Sentinel, t.Cpu.R[Reg.RAX]);
    }

    [Fact]
    public void A_push_with_a_non_canonical_RSP_raises_SS_0_on_the_IST_stack_and_RSP_is_unchanged()
    {
        Label fault = default;
        const ulong badRsp = 0x0000_8000_0000_0010UL;
        var t = Trap.Run((a, k) =>
        {
            k.SetGate(Vec.SS, k.Handlers[Vec.SS], GuestKit.Attr(ist: 1));
            a.mov(rsp, badRsp);
            fault = a.CreateLabel(); a.Label(ref fault);
            a.push(rax);
        }).Expect(Vec.SS);
        var f = t.Frame(true);
        Assert.Equal(0UL, f.Err);
        Assert.Equal(t.At(fault), f.Rip);
        Assert.Equal(badRsp, f.Rsp);
        Assert.Equal(GuestKit.Ist1 - 48, t.Rsp);
    }

    // ---- #UD, #DE, #DB, #BP -------------------------------------------------------------------

    [Fact]
    public void UD2_raises_UD_without_an_error_code()
    {
        Label fault = default;
        var t = Trap.Run((a, k) => { fault = a.CreateLabel(); a.Label(ref fault); a.ud2(); }).Expect(Vec.UD);
        Assert.Equal(KernelRsp - 40, t.Rsp);
        var f = t.Frame(false);
        Assert.Equal(t.At(fault), f.Rip);
        Assert.Equal((ulong)GuestKit.KCode, f.Cs);
        Assert.Equal(KernelRsp, f.Rsp);
        Assert.Equal(0UL, t.M.Stats.UnimplementedTotal);
    }

    [Fact]
    public void An_unimplemented_encoding_raises_UD_in_the_guest_and_is_counted_by_code()
    {
        const Code code = Code.Aesenc_xmm_xmmm128;
        Assert.False(Emu64.Isa.HandlerTable.IsImplemented(code), "pick another unimplemented encoding for this test");
        Label fault = default;
        var t = Trap.Run((a, k) => { fault = a.CreateLabel(); a.Label(ref fault); a.aesenc(xmm0, xmm1); }).Expect(Vec.UD);
        Assert.Equal(t.At(fault), t.Frame(false).Rip);
        Assert.Equal(1UL, t.M.Stats.UnimplementedTotal);
        Assert.Equal(1UL, t.M.Stats.Unimplemented[code]);
    }

    public sealed record DivCase(string Name, ulong Rax, ulong Rdx, ulong Divisor, int Size, bool Signed)
    {
        public override string ToString() => Name;
    }

    public static TheoryData<DivCase> DivideErrors() => new(
        new DivCase("DIV r64 by zero", 1234, 0, 0, 8, false),
        new DivCase("DIV r64 quotient overflow", 0, 1, 1, 8, false),
        new DivCase("DIV r32 quotient overflow", 0, 5, 5, 4, false),
        new DivCase("DIV r8 quotient overflow", 0x1000, 0, 0x10, 1, false),
        new DivCase("IDIV r64 of INT64_MIN by -1", 0x8000_0000_0000_0000, ulong.MaxValue, ulong.MaxValue, 8, true),
        new DivCase("IDIV r32 by zero", 7, 0, 0, 4, true),
        new DivCase("IDIV r16 quotient overflow", 0x0000, 0x4000, 2, 2, true));

    [Theory, MemberData(nameof(DivideErrors))]
    public void A_divide_error_raises_DE_and_leaves_RAX_and_RDX_unchanged(DivCase c)
    {
        Label fault = default;
        var t = Trap.Run((a, k) =>
        {
            a.mov(rax, c.Rax); a.mov(rdx, c.Rdx); a.mov(rcx, c.Divisor);
            fault = a.CreateLabel(); a.Label(ref fault);
            switch (c.Size, c.Signed)
            {
                case (8, false): a.div(rcx); break;
                case (4, false): a.div(ecx); break;
                case (1, false): a.div(cl); break;
                case (8, true): a.idiv(rcx); break;
                case (4, true): a.idiv(ecx); break;
                case (2, true): a.idiv(cx); break;
            }
        }).Expect(Vec.DE);
        Assert.Equal(t.At(fault), t.Frame(false).Rip);
        Assert.Equal(c.Rax, t.Cpu.R[Reg.RAX]);
        Assert.Equal(c.Rdx, t.Cpu.R[Reg.RDX]);
    }

    [Fact]
    public void TF_single_step_traps_after_the_next_instruction_with_DR6_BS_set()
    {
        Label after = default;
        var t = Trap.Run((a, k) =>
        {
            a.mov(eax, 0);
            a.pushfq(); a.or(__qword_ptr[rsp], 0x100); a.popfq();   // TF takes effect after the instruction following POPF
            a.mov(eax, 1);
            after = a.CreateLabel(); a.Label(ref after);
            a.mov(eax, 2);
        }).Expect(Vec.DB);
        var f = t.Frame(false);
        Assert.Equal(t.At(after), f.Rip);
        Assert.Equal(1UL, t.Cpu.R[Reg.RAX]);
        Assert.NotEqual(0UL, f.Rflags & RFlags.TF);                 // the saved RFLAGS still has TF
        Assert.False(t.Cpu.Tf);                                      // the handler runs without it
        Assert.Equal(0x4000UL, t.Cpu.DR[6] & 0x4000);               // DR6.BS
    }

    [Fact]
    public void INT3_raises_BP_with_RIP_after_the_instruction()
    {
        Label after = default;
        var t = Trap.Run((a, k) =>
        {
            a.int3();
            after = a.CreateLabel(); a.Label(ref after);
            a.nop();
        }).Expect(Vec.BP);
        Assert.Equal(KernelRsp - 40, t.Rsp);
        Assert.Equal(t.At(after), t.Frame(false).Rip);
    }

    // ---- #DF and triple fault ---------------------------------------------------------------

    [Fact]
    public void A_page_fault_whose_gate_is_not_present_becomes_a_double_fault_on_the_IST_stack()
    {
        Label fault = default;
        var t = Trap.Run((a, k) =>
        {
            k.SetGate(Vec.PF, k.Handlers[Vec.PF], GuestKit.Attr(present: false));
            k.SetGate(Vec.DF, k.Handlers[Vec.DF], GuestKit.Attr(ist: 2));
            a.mov(rbx, Page + 0x10);
            fault = a.CreateLabel(); a.Label(ref fault);
            a.mov(rax, __qword_ptr[rbx]);
        }).Expect(Vec.DF);
        var f = t.Frame(true);
        Assert.Equal(0UL, f.Err);
        Assert.Equal(t.At(fault), f.Rip);
        Assert.Equal(GuestKit.Ist2 - 48, t.Rsp);
        Assert.Equal(KernelRsp, f.Rsp);
        Assert.Equal(Page + 0x10, t.Cpu.CR2);
    }

    [Fact]
    public void A_GP_whose_gate_is_not_present_becomes_a_double_fault()
    {
        var t = Trap.Run((a, k) =>
        {
            k.SetGate(Vec.GP, k.Handlers[Vec.GP], GuestKit.Attr(present: false));
            a.mov(rbx, 0x0000_8000_0000_0000UL);
            a.mov(rax, __qword_ptr[rbx]);
        }).Expect(Vec.DF);
        Assert.Equal(0UL, t.Frame(true).Err);
    }

    [Fact]
    public void A_UD_whose_gate_is_not_present_gives_NP_with_the_IDT_error_code_not_a_double_fault()
    {
        Label fault = default;
        var t = Trap.Run((a, k) =>
        {
            k.SetGate(Vec.UD, k.Handlers[Vec.UD], GuestKit.Attr(present: false));
            fault = a.CreateLabel(); a.Label(ref fault);
            a.ud2();
        }).Expect(Vec.NP);
        var f = t.Frame(true);
        Assert.Equal((ulong)(Vec.UD * 8 + 2), f.Err);     // IDT bit set, EXT clear
        Assert.Equal(t.At(fault), f.Rip);
    }

    [Fact]
    public void A_fault_while_delivering_a_double_fault_stops_the_machine_with_a_triple_fault()
    {
        var t = Trap.Run((a, k) =>
        {
            k.SetGate(Vec.PF, k.Handlers[Vec.PF], GuestKit.Attr(present: false));
            k.SetGate(Vec.DF, k.Handlers[Vec.DF], GuestKit.Attr(present: false));
            a.mov(rbx, Page);
            a.mov(rax, __qword_ptr[rbx]);
        });
        Assert.Equal(StopReason.TripleFault, t.R.Reason);
        Assert.Equal(4, t.R.ExitCode);
        Assert.Contains("triple fault", t.M.StopMessage);
        Assert.Equal(-1, t.Vector);
    }

    // ---- privilege change, IST, INT n ---------------------------------------------------------

    [Fact]
    public void INT_n_from_CPL_3_through_a_DPL_3_gate_switches_to_TSS_RSP0()
    {
        Label after = default;
        var t = Trap.Run((a, k) =>
        {
            k.SetGate(0x80, k.Handlers[0x80], GuestKit.Attr(dpl: 3));
            var user = a.CreateLabel();
            k.EnterUser(user, rflags: 0x202);
            a.Label(ref user);
            a.lea(rsp, __[rsp - 24]);
            a.@int(0x80);
            after = a.CreateLabel(); a.Label(ref after);
            a.nop();
        }).Expect(0x80);
        var f = t.Frame(false);
        Assert.Equal(GuestKit.Rsp0 - 40, t.Rsp);
        Assert.Equal(t.At(after), f.Rip);
        Assert.Equal((ulong)GuestKit.UCode64, f.Cs);
        Assert.Equal(0x202UL, f.Rflags);
        Assert.Equal(GuestKit.UserStackTop - 24, f.Rsp);
        Assert.Equal((ulong)GuestKit.UData, f.Ss);
        Assert.Equal(0, t.Cpu.Cpl);
        Assert.Equal(0, t.Cpu.Segs[Seg.SS].Selector);    // SS is the null selector at the new CPL
        Assert.False(t.Cpu.If);                           // interrupt gate
    }

    [Fact]
    public void A_gate_with_an_IST_index_uses_that_stack_even_without_a_privilege_change()
    {
        var t = Trap.Run((a, k) =>
        {
            k.SetGate(Vec.BP, k.Handlers[Vec.BP], GuestKit.Attr(ist: 1));
            a.mov(rsp, KernelRsp - 0x108);
            a.int3();
        }).Expect(Vec.BP);
        Assert.Equal(GuestKit.Ist1 - 40, t.Rsp);
        Assert.Equal(KernelRsp - 0x108, t.Frame(false).Rsp);
    }

    [Fact]
    public void INT_n_from_CPL_3_through_a_DPL_0_gate_raises_GP_with_the_IDT_error_code()
    {
        Label fault = default;
        var t = Trap.Run((a, k) =>
        {
            k.SetGate(0x81, k.Handlers[0x81], GuestKit.Attr(dpl: 0));
            var user = a.CreateLabel();
            k.EnterUser(user);
            a.Label(ref user);
            a.nop();
            fault = a.CreateLabel(); a.Label(ref fault);
            a.@int(0x81);
        }).Expect(Vec.GP);
        var f = t.Frame(true);
        Assert.Equal((ulong)(0x81 * 8 + 2), f.Err);
        Assert.Equal(t.At(fault), f.Rip);
        Assert.Equal(GuestKit.Rsp0 - 48, t.Rsp);
    }

    [Fact]
    public void INT3_from_CPL_3_through_a_DPL_0_gate_raises_GP_too()
    {
        var t = Trap.Run((a, k) =>
        {
            var user = a.CreateLabel();
            k.EnterUser(user);
            a.Label(ref user);
            a.int3();
        }).Expect(Vec.GP);
        Assert.Equal((ulong)(Vec.BP * 8 + 2), t.Frame(true).Err);
    }

    [Fact]
    public void INT_n_at_CPL_0_through_a_DPL_0_gate_is_delivered()
    {
        Label after = default;
        var t = Trap.Run((a, k) =>
        {
            k.SetGate(0x81, k.Handlers[0x81], GuestKit.Attr(dpl: 0, trap: true));
            a.sti();
            a.@int(0x81);
            after = a.CreateLabel(); a.Label(ref after);
        });
        // a trap gate keeps IF=1, so the recording handler's HLT waits forever instead of shutting down
        Assert.Equal(0x81, t.Vector);
        Assert.Equal(StopReason.HaltedForever, t.R.Reason);
        Assert.Equal(t.At(after), t.Q(0));
        Assert.True(t.Cpu.If);
    }
}
