using Emu64.Cpu;

namespace Emu64.Tests.Isa;

/// <summary>
/// The table of what the SDM leaves undefined (<see cref="SdmUndefined"/>), checked row by row: too much
/// there would hide a defined flag from the host, too little would fail the suite on AMD.
/// </summary>
[Trait("Category", "Isa")]
public class SdmUndefinedTests
{
    [Theory]
    [InlineData("01D8", 64, 0UL, false, "nothing")]                      // add eax,ebx: all defined
    [InlineData("21D8", 64, 0UL, false, "flags A")]                      // and: AF
    [InlineData("D1E0", 64, 0UL, false, "flags A")]                      // shl eax,1: OF defined for a 1-bit shift
    [InlineData("D3E0", 64, 0x40UL, false, "nothing")]                   // shl eax,cl with CL = 40h: masked count 0, nothing changes
    [InlineData("D3E0", 64, 0x21UL, false, "flags A")]                   // CL = 21h: masked count 1
    [InlineData("D2E0", 64, 8UL, false, "flags CAO")]                    // shl al,cl by 8: CF too (count >= width)
    [InlineData("D2F8", 64, 9UL, false, "flags AO")]                     // sar al,cl by 9: CF stays defined for SAR
    [InlineData("C0C003", 64, 0UL, false, "flags O")]                    // rol al,3
    [InlineData("66D3D0", 64, 0x11UL, false, "flags O")]                 // rcl ax,cl by 17: CF unchanged (defined), OF not
    [InlineData("660FA5F3", 64, 16UL, false, "flags AO")]                // shld bx,si,cl by 16: result defined
    [InlineData("660FA5F3", 64, 17UL, false, "flags CPAZSO, rbx bits ffff")]   // by 17: result and flags undefined
    [InlineData("F7E3", 64, 0UL, false, "flags PAZS")]                   // mul ebx
    [InlineData("F7F3", 64, 0UL, false, "flags CPAZSO")]                 // div ebx
    [InlineData("0FA3D8", 64, 0UL, false, "flags PASO")]                 // bt eax,ebx: CF and ZF defined
    [InlineData("0FBCC3", 64, 0UL, false, "flags CPASO")]                // bsf eax,ebx, source not 0
    [InlineData("0FBCC3", 64, 0UL, true, "flags CPASO, rax bits ffffffffffffffff")]   // source 0: destination undefined
    [InlineData("F30FB8C3", 64, 0UL, false, "nothing")]                  // popcnt: all defined
    [InlineData("F30FBDC3", 64, 0UL, false, "flags PASO")]               // lzcnt: CF and ZF defined
    [InlineData("C4E278F7C3", 64, 0UL, false, "flags PAS")]              // bextr
    [InlineData("C4E278F3DB", 64, 0UL, false, "flags PA")]               // blsi
    [InlineData("660FC8", 64, 0UL, false, "rax bits ffff")]              // bswap ax
    [InlineData("0F02C3", 64, 0UL, true, "rax bits f0000")]              // lar eax,ebx: limit 19:16
    [InlineData("660F02C3", 64, 0UL, true, "nothing")]                   // lar ax,bx
    [InlineData("67F3A5", 64, 0x500000000UL, false, "rcx bits ffffffff00000000, rsi bits ffffffff00000000, rdi bits ffffffff00000000")]
    [InlineData("67F3AB", 64, 0x500000000UL, false, "rcx bits ffffffff00000000, rdi bits ffffffff00000000")]   // rep stosd a32, ECX = 0
    [InlineData("67F3AB", 64, 3UL, false, "nothing")]                    // ECX != 0: the registers are written
    [InlineData("F3A5", 64, 0UL, false, "nothing")]                      // 64-bit addresses
    [InlineData("1E", 32, 0UL, false, "data+13e..+2")]                   // push ds, 32-bit operand: upper bytes of the slot
    [InlineData("661E", 32, 0UL, false, "nothing")]                      // pushw ds
    [InlineData("27", 32, 0UL, false, "flags O")]                        // daa
    [InlineData("37", 32, 0UL, false, "flags PZSO")]                     // aaa
    [InlineData("D40A", 32, 0UL, false, "flags CAO")]                    // aam
    public void The_SDM_leaves_exactly_these_parts_undefined(string hex, int bitness, ulong rcx, bool zfOut, string undefined)
    {
        var bytes = Convert.FromHexString(hex);
        var dec = Iced.Intel.Decoder.Create(bitness, bytes);
        dec.Decode(out var ins);
        var gpr = new ulong[16];
        gpr[Reg.RCX] = rcx;
        var u = new UndefinedParts();
        SdmUndefined.Find(ins, bitness, gpr, RFlags.Reserved1 | (zfOut ? RFlags.ZF : 0), Differential.MemOperandAt, (int)CompatHost.StackOffset, u);
        Assert.Equal(undefined, u.Describe());
        if (undefined != "nothing") Assert.True(SdmUndefined.MayApply(ins, bitness), "MayApply must admit every instruction with an undefined part");
    }
}
