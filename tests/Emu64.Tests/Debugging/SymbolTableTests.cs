using Emu64.Debugging;
using Emu64.Loader;

namespace Emu64.Tests.Debugging;

public class SymbolTableTests
{
    private static SymbolTable Table() => new(new[]
    {
        new ElfSymbol("__entry_text_start", 0xffffffff81001000, 0, false),
        new ElfSymbol("entry_SYSCALL_64", 0xffffffff81001000, 0, false),
        new ElfSymbol("do_syscall_64", 0xffffffff81002000, 0x40, true),
    });

    [Fact]
    public void Addresses_get_the_real_name_rather_than_a_section_marker_at_the_same_address()
    {
        var t = Table();
        Assert.Equal("entry_SYSCALL_64", t.Describe(0xffffffff81001000));
        Assert.Equal("entry_SYSCALL_64+0x34", t.Describe(0xffffffff81001034));
        Assert.Equal("do_syscall_64+0x3f", t.Describe(0xffffffff8100203f));
        Assert.Null(t.Describe(0xffffffff81002040));       // past the end of a sized symbol
        Assert.Null(t.Describe(0x1000));
    }

    [Fact]
    public void The_kaslr_offset_found_from_lstar_moves_every_lookup()
    {
        var t = Table();
        Assert.True(t.DetectSlide(0xffffffff85801000));
        Assert.Equal(0x4800000, t.Slide);
        Assert.Equal("entry_SYSCALL_64+0x34", t.Describe(0xffffffff85801034));
        Assert.True(t.TryResolve("do_syscall_64", out ulong a));
        Assert.Equal(0xffffffff85802000UL, a);
        Assert.True(t.TryParseAddress("do_syscall_64+0x10", out a));
        Assert.Equal(0xffffffff85802010UL, a);
    }

    [Fact]
    public void Numbers_parse_as_gdb_reads_them_decimal_or_hexadecimal_after_0x()
    {
        Assert.True(SymbolTable.TryParseNumber("1000", out ulong v)); Assert.Equal(1000UL, v);
        Assert.True(SymbolTable.TryParseNumber("0x1000", out v)); Assert.Equal(0x1000UL, v);
        Assert.True(SymbolTable.TryParseNumber("0X1f", out v)); Assert.Equal(0x1fUL, v);
        Assert.True(SymbolTable.TryParseNumber("0xffff_8880_0000_0000", out v)); Assert.Equal(0xffff888000000000UL, v);
        Assert.True(SymbolTable.TryParseNumber("010", out v)); Assert.Equal(10UL, v);           // no octal
        Assert.True(SymbolTable.TryParseNumber("42.", out v)); Assert.Equal(42UL, v);
        Assert.True(SymbolTable.TryParseNumber("18446744073709551615", out v)); Assert.Equal(ulong.MaxValue, v);
        Assert.False(SymbolTable.TryParseNumber("ffff", out _));                                 // hex needs 0x
        Assert.False(SymbolTable.TryParseNumber("1f", out _));
        Assert.False(SymbolTable.TryParseNumber("0x", out _));
        Assert.False(SymbolTable.TryParseNumber("0x12345678123456781", out _));
        Assert.False(SymbolTable.TryParseNumber("18446744073709551616", out _));
        Assert.False(SymbolTable.TryParseNumber("-1", out _));
        Assert.False(Table().TryParseAddress("nosuch+4", out _));
        Assert.True(Table().TryParseAddress("do_syscall_64+16", out ulong a));
        Assert.Equal(0xffffffff81002010UL, a);
    }
}
