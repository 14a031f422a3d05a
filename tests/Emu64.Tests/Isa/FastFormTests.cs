using Emu64.Cpu;
using Emu64.Isa;

namespace Emu64.Tests.Isa;

/// <summary>
/// The decoder picks the fixed-form fast handlers (docs/ARCHITECTURE.md "Handlers") for the shapes they cover, and only
/// those; what they compute is checked by the differential and behaviour tests, which run through the same decoder.
/// </summary>
public unsafe class FastFormTests
{
    private static Insn Decode(byte[] bytes)
    {
        var d = new Insn();
        DecodeCache.DecodeOne(bytes, 0x1000, 64, ref d);
        return d;
    }

    [Theory]
    [InlineData(new byte[] { 0x48, 0x01, 0xC8 })]          // add rax, rcx
    [InlineData(new byte[] { 0x83, 0xC6, 0x08 })]          // add esi, 8
    [InlineData(new byte[] { 0x48, 0xFF, 0xC9 })]          // dec rcx
    [InlineData(new byte[] { 0x75, 0xF0 })]                // jnz
    [InlineData(new byte[] { 0x48, 0x8B, 0x06 })]          // mov rax, [rsi]
    [InlineData(new byte[] { 0x48, 0x89, 0x06 })]          // mov [rsi], rax
    [InlineData(new byte[] { 0x53 })]                      // push rbx
    [InlineData(new byte[] { 0x5B })]                      // pop rbx
    [InlineData(new byte[] { 0xFF, 0x36 })]                // push qword [rsi]
    [InlineData(new byte[] { 0x65, 0xFF, 0x34, 0x25, 0x10, 0, 0, 0 })]   // push qword gs:[0x10]
    [InlineData(new byte[] { 0xC3 })]                      // ret
    [InlineData(new byte[] { 0xE8, 0, 0, 0, 0 })]          // call rel32
    [InlineData(new byte[] { 0x49, 0xC1, 0xEE, 0x20 })]    // shr r14, 0x20
    [InlineData(new byte[] { 0xC1, 0xE0, 0x05 })]          // shl eax, 5
    [InlineData(new byte[] { 0x48, 0xC1, 0xF8, 0x3F })]    // sar rax, 63
    [InlineData(new byte[] { 0x48, 0x0F, 0xAF, 0xC1 })]    // imul rax, rcx
    [InlineData(new byte[] { 0x6B, 0xC1, 0x0A })]          // imul eax, ecx, 10
    public void Common_shapes_get_a_fast_form(byte[] bytes)
    {
        var d = Decode(bytes);
        Assert.False(HandlerTable.Is(d.Exec, d.Code), $"{d.I} kept the table's handler");
    }

    [Theory]
    [InlineData(new byte[] { 0x48, 0x01, 0x06 })]          // add [rsi], rax: memory destination
    [InlineData(new byte[] { 0x00, 0xC4 })]                // add ah, al: byte registers
    [InlineData(new byte[] { 0x66, 0x01, 0xC8 })]          // add ax, cx: 16-bit
    [InlineData(new byte[] { 0x0F, 0x20, 0xC0 })]          // mov rax, cr0: a system move, never the GPR form
    [InlineData(new byte[] { 0x8E, 0xD8 })]                // mov ds, ax
    [InlineData(new byte[] { 0xF0, 0x48, 0x01, 0x06 })]    // lock add [rsi], rax
    [InlineData(new byte[] { 0xC2, 0x08, 0x00 })]          // ret 8
    [InlineData(new byte[] { 0x0F, 0xA0 })]                // push fs
    [InlineData(new byte[] { 0x48, 0xD3, 0xE8 })]          // shr rax, cl: a count that is not constant
    [InlineData(new byte[] { 0x48, 0xC1, 0x2E, 0x04 })]    // shr qword [rsi], 4: memory destination
    [InlineData(new byte[] { 0x48, 0xC1, 0xC0, 0x04 })]    // rol rax, 4: rotates keep the generic body
    [InlineData(new byte[] { 0x48, 0x0F, 0xAF, 0x06 })]    // imul rax, [rsi]: memory source
    [InlineData(new byte[] { 0x48, 0xF7, 0xE9 })]          // imul rcx: one operand (RDX:RAX)
    public void Other_shapes_keep_the_table_handler(byte[] bytes)
    {
        var d = Decode(bytes);
        Assert.True(HandlerTable.Is(d.Exec, d.Code), $"{d.I} was given a fast form");
    }
}
