using Emu64.Cpu;
using Emu64.Tests.Foundation;
using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Platform;

/// <summary>
/// User-mode instruction prevention (SDM vol. 3A §2.5, CR4.UMIP; vol. 2 SGDT/SIDT/SLDT/SMSW/STR): with
/// CR4.UMIP = 1 the five instructions raise #GP(0) at CPL &gt; 0; with it clear they run at CPL 3. CPUID.7.0:ECX[2]
/// reports the feature, and CR4.UMIP can be set only when it does.
/// </summary>
[Trait("Category", "Platform")]
public class UmipTests
{
    public static TheoryData<string> Instructions() => new() { "sgdt", "sidt", "sldt", "smsw", "str" };

    private static void Emit(Assembler a, string insn)
    {
        const ulong slot = GuestKit.UserStackTop - 0x100;   // user-writable
        switch (insn)
        {
            case "sgdt": a.sgdt(__[slot]); break;
            case "sidt": a.sidt(__[slot]); break;
            case "sldt": a.sldt(__word_ptr[slot]); break;
            case "smsw": a.smsw(eax); break;
            case "str": a.str(__word_ptr[slot]); break;
        }
    }

    private static Trap RunAtCpl3(string insn, bool umip, out ulong faultAt)
    {
        Label user = default;
        var t = Trap.Run((a, k) =>
        {
            user = a.CreateLabel();
            if (umip) { a.mov(rax, cr4); a.or(eax, 1 << 11); a.mov(cr4, rax); }
            k.EnterUser(user);
            a.Label(ref user);
            Emit(a, insn);
            a.ud2();                                        // reached only when the instruction ran
        });
        faultAt = t.At(user);   // the first user instruction
        return t;
    }

    [Theory, MemberData(nameof(Instructions))]
    public void With_CR4_UMIP_set_the_instruction_raises_GP_0_at_CPL_3(string insn)
    {
        var t = RunAtCpl3(insn, umip: true, out ulong at).Expect(Vec.GP);
        var f = t.Frame(hasError: true);
        Assert.Equal(0UL, f.Err);
        Assert.Equal(at, f.Rip);
        Assert.Equal((ulong)GuestKit.UCode64, f.Cs);
    }

    [Theory, MemberData(nameof(Instructions))]
    public void With_CR4_UMIP_clear_the_instruction_runs_at_CPL_3(string insn)
    {
        RunAtCpl3(insn, umip: false, out _).Expect(Vec.UD);
    }

    [Theory, MemberData(nameof(Instructions))]
    public void With_CR4_UMIP_set_the_instruction_still_runs_at_CPL_0(string insn)
    {
        var t = Trap.Run((a, k) =>
        {
            a.mov(rax, cr4); a.or(eax, 1 << 11); a.mov(cr4, rax);
            Emit(a, insn);
            a.ud2();
        });
        t.Expect(Vec.UD);
        Assert.NotEqual(0UL, t.Cpu.CR4 & Cr4.Umip);
    }

    [Fact]
    public void CPUID_reports_UMIP_and_CR4_UMIP_faults_when_CPUID_does_not()
    {
        var r = new RawMachine();
        Assert.True(r.Cpu.HasUmip);
        r.Cpu.Cpuid(7, 0, out _, out _, out uint c, out _);
        Assert.Equal(1u << 2, c & (1u << 2));
        var t = Trap.Run((a, k) => { a.mov(rax, cr4); a.or(eax, 1 << 11); a.mov(cr4, rax); a.ud2(); },
            setup: m => m.Cpu.Leaf7Ecx &= ~(1u << 2));
        t.Expect(Vec.GP);
        Assert.Equal(0UL, t.Cpu.CR4 & Cr4.Umip);
    }
}
