using Emu64.Cpu;
using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Isa;

/// <summary>Architectural behaviour the host harness cannot show: faults, stack, modes, REP chunking, CPUID.</summary>
[Trait("Category", "Isa")]
public class BehaviourTests
{
    private const ulong Code = 0x400000, Data = 0x500000;

    private static RawMachine Machine(Action<Assembler> body, bool compat = false)
    {
        var m = new RawMachine();
        m.Map(Data); m.Map(Data + 0x1000);
        m.Map(0x7000);
        if (compat) m.EnterCompat32();
        var a = new Assembler(compat ? 32 : 64);
        body(a);
        var w = new MemoryStream();
        a.Assemble(new StreamCodeWriter(w), Code);
        m.Load(Code, w.ToArray());
        m.Cpu.R[Reg.RSP] = 0x8000;
        return m;
    }

    private static (ulong[] Regs, ulong Flags) Snapshot(Emu64.Cpu.Cpu c)
    {
        var r = new ulong[16];
        for (int k = 0; k < 16; k++) r[k] = c.R[k];
        return (r, c.Rflags);
    }

    [Theory]
    [InlineData(new byte[] { 0x48, 0xF7, 0xF3 }, 0x10UL, 0UL, 0UL)]                       // div rbx, rbx = 0
    [InlineData(new byte[] { 0x48, 0xF7, 0xF3 }, 0UL, 1UL, 1UL)]                          // div rbx: quotient 2^64 does not fit
    [InlineData(new byte[] { 0x48, 0xF7, 0xFB }, 0x8000000000000000UL, 0xFFFFFFFFFFFFFFFFUL, 0xFFFFFFFFFFFFFFFFUL)] // idiv: MIN / -1
    [InlineData(new byte[] { 0xF6, 0xF3 }, 0xFFFFUL, 0UL, 1UL)]                           // div bl: 0xFFFF / 1 overflows AL
    public void Division_that_cannot_be_represented_raises_DE_and_changes_nothing(byte[] code, ulong rax, ulong rdx, ulong rbx)
    {
        var m = new RawMachine();
        m.Load(Code, code);
        m.Cpu.R[Reg.RAX] = rax; m.Cpu.R[Reg.RDX] = rdx; m.Cpu.R[Reg.RBX] = rbx;
        m.Cpu.Rflags = RFlags.Reserved1 | RFlags.ZF | RFlags.CF;
        var before = Snapshot(m.Cpu);
        Assert.Equal(Vec.DE, m.Step());
        Assert.Equal(Code, m.Cpu.Rip);
        Assert.Equal(before.Regs, Snapshot(m.Cpu).Regs);
        Assert.Equal(before.Flags, m.Cpu.Rflags);
    }

    [Fact]
    public void Cmpxchg16b_on_an_address_not_16_byte_aligned_raises_GP()
    {
        var m = Machine(a => a.cmpxchg16b(__[rsi + 8]));
        m.Cpu.R[Reg.RSI] = Data;
        Assert.Equal(Vec.GP, m.Step());
    }

    [Fact]
    public void Cmpxchg16b_swaps_when_rdx_rax_matches_and_loads_memory_when_not()
    {
        var m = Machine(a => { a.@lock.cmpxchg16b(__[rsi]); a.@lock.cmpxchg16b(__[rsi]); });
        m.Cpu.R[Reg.RSI] = Data;
        m.Write(Data, BitConverter.GetBytes(0x1111UL).Concat(BitConverter.GetBytes(0x2222UL)).ToArray());
        m.Cpu.R[Reg.RAX] = 0x1111; m.Cpu.R[Reg.RDX] = 0x2222; m.Cpu.R[Reg.RBX] = 0x3333; m.Cpu.R[Reg.RCX] = 0x4444;
        Assert.Equal(-1, m.Step());
        Assert.True(m.Cpu.Zf);
        Assert.Equal(-1, m.Step());   // now memory holds 3333:4444, RDX:RAX still 2222:1111
        Assert.False(m.Cpu.Zf);
        Assert.Equal(0x3333UL, m.Cpu.R[Reg.RAX]);
        Assert.Equal(0x4444UL, m.Cpu.R[Reg.RDX]);
    }

    [Theory]
    [InlineData(new byte[] { 0xF0, 0x01, 0xD8 })]            // lock add eax, ebx: register destination
    [InlineData(new byte[] { 0xF0, 0x89, 0x03 })]            // lock mov [rbx], eax: MOV is not lockable
    [InlineData(new byte[] { 0x0F, 0x0B })]                  // ud2
    [InlineData(new byte[] { 0x27 })]                        // daa does not exist in 64-bit mode
    public void Invalid_encodings_raise_UD(byte[] code)
    {
        var m = new RawMachine();
        m.Map(Data);
        m.Load(Code, code);
        m.Cpu.R[Reg.RBX] = Data;
        Assert.Equal(Vec.UD, m.Step());
    }

    [Fact]
    public void Rep_stosb_with_a_huge_count_runs_in_chunks_and_reexecutes_itself()
    {
        var m = Machine(a => a.rep.stosb());
        m.Map(Data + 0x2000); m.Map(Data + 0x3000);
        m.Cpu.R[Reg.RDI] = Data; m.Cpu.R[Reg.RCX] = 10000; m.Cpu.R[Reg.RAX] = 0xAB;
        Assert.Equal(-1, m.Step());
        Assert.Equal(Code, m.Cpu.Rip);                              // not finished: RIP stays on the instruction
        Assert.Equal(10000UL - (ulong)Emu64.Isa.Strings.Chunk, m.Cpu.R[Reg.RCX]);
        Assert.Equal(-1, m.RunRange(Code, Code + 2));
        Assert.Equal(0UL, m.Cpu.R[Reg.RCX]);
        Assert.Equal(Data + 10000, m.Cpu.R[Reg.RDI]);
        var b = new byte[1]; m.Read(Data + 9999, b);
        Assert.Equal(0xAB, b[0]);
    }

    [Fact]
    public void A_32_bit_address_size_string_instruction_uses_esi_edi_and_ecx()
    {
        var m = Machine(a => { a.db(0x67, 0xF3, 0xA4); });   // rep movsb with 32-bit addresses
        m.Write(Data, [1, 2, 3, 4]);
        m.Cpu.R[Reg.RSI] = 0xFFFFFFFF00000000UL | Data;
        m.Cpu.R[Reg.RDI] = 0xFFFFFFFF00000000UL | (Data + 0x100);
        m.Cpu.R[Reg.RCX] = 0xFFFFFFFF00000003UL;
        Assert.Equal(-1, m.RunRange(Code, Code + 3));
        var b = new byte[4]; m.Read(Data + 0x100, b);
        Assert.Equal(new byte[] { 1, 2, 3, 0 }, b);
        Assert.Equal(Data + 3, m.Cpu.R[Reg.RSI] & 0xFFFFFFFF);
        Assert.Equal(0UL, m.Cpu.R[Reg.RCX] & 0xFFFFFFFF);
    }

    [Fact]
    public void Enter_with_a_nesting_level_copies_frame_pointers_and_leave_undoes_it()
    {
        var m = Machine(a => { a.enter(16, 2); a.leave(); });
        m.Cpu.R[Reg.RBP] = 0x7F00;
        m.Write(0x7F00 - 8, BitConverter.GetBytes(0xAAAAUL));
        Assert.Equal(-1, m.Step());
        // pushed: old RBP at 0x7FF8, the copied outer frame pointer at 0x7FF0, the new frame at 0x7FE8
        Assert.Equal(0x7FF8UL, m.Cpu.R[Reg.RBP]);
        Assert.Equal(0x7FE8UL - 16, m.Cpu.R[Reg.RSP]);
        var b = new byte[8];
        m.Read(0x7FF0, b); Assert.Equal(0xAAAAUL, BitConverter.ToUInt64(b));
        m.Read(0x7FE8, b); Assert.Equal(0x7FF8UL, BitConverter.ToUInt64(b));
        Assert.Equal(-1, m.Step());
        Assert.Equal(0x7F00UL, m.Cpu.R[Reg.RBP]);
        Assert.Equal(0x8000UL, m.Cpu.R[Reg.RSP]);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Inc_and_dec_keep_the_carry_of_the_add_or_sub_before_them_and_adc_uses_it(bool carry)
    {
        // SDM vol. 2A INC/DEC: "The CF flag is not affected". The carry comes from the ADD (or SUB) just before, whose flags
        // are recorded lazily; CF is kept current in its own field (Cpu/Flags.cs).
        var m = Machine(a =>
        {
            a.mov(rax, carry ? ulong.MaxValue : 1UL); a.add(rax, 1);   // CF = carry
            a.dec(rcx);                                                 // ZF/SF/OF from DEC, CF kept
            a.inc(rdx);
            a.setb(bl);                                                 // BL = CF
            a.mov(rsi, 10); a.adc(rsi, 0);                              // RSI = 10 + CF
            a.mov(rdi, 0); a.sub(rdi, carry ? 1 : 0); a.dec(r8);       // SUB borrows when carry; DEC keeps it
            a.sbb(r9, 0);                                               // R9 = 0 - CF
        });
        m.Cpu.R[Reg.RCX] = 1; m.Cpu.R[Reg.RDX] = 5; m.Cpu.R[Reg.R8] = 3; m.Cpu.R[Reg.R9] = 0;
        for (int k = 0; k < 11; k++) Assert.Equal(-1, m.Step());
        ulong cf = carry ? 1UL : 0;
        Assert.Equal(cf, m.Cpu.R[Reg.RBX] & 0xFF);
        Assert.Equal(10 + cf, m.Cpu.R[Reg.RSI]);
        Assert.Equal(0UL - cf, m.Cpu.R[Reg.R9]);
        Assert.Equal(cf, m.Cpu.Rflags & RFlags.CF);   // SBB of 0 - 0 - CF borrows exactly when CF was set
    }

    [Fact]
    public void Push_and_pop_of_16_bit_operands_move_rsp_by_two_in_64_bit_mode()
    {
        var m = Machine(a => { a.db(0x66, 0x6A, 0xFF); a.db(0x66, 0x58); });   // push word -1; pop ax
        Assert.Equal(-1, m.Step());
        Assert.Equal(0x7FFEUL, m.Cpu.R[Reg.RSP]);
        Assert.Equal(-1, m.Step());
        Assert.Equal(0xFFFFUL, m.Cpu.R[Reg.RAX]);
        Assert.Equal(0x8000UL, m.Cpu.R[Reg.RSP]);
    }

    [Theory]
    [InlineData(0x79, 0x35, 0x14, RFlags.CF | RFlags.AF | RFlags.PF)]    // SDM DAA example: 79 + 35 = 114 (BCD)
    [InlineData(0x35, 0x47, 0x88, RFlags.CF | RFlags.AF | RFlags.PF | RFlags.SF)]   // SDM DAS example: 35 - 47 = -12 → 88, borrow
    public void Decimal_adjust_gives_the_SDM_example_results_in_32_bit_code(int alIn, int blIn, int result, ulong flags)
    {
        bool add = result == 0x14;
        var m = Machine(a => { if (add) { a.add(al, bl); a.daa(); } else { a.sub(al, bl); a.das(); } }, compat: true);
        m.Cpu.R[Reg.RAX] = (ulong)alIn; m.Cpu.R[Reg.RBX] = (ulong)blIn;
        Assert.Equal(-1, m.Step()); Assert.Equal(-1, m.Step());
        Assert.Equal((ulong)result, m.Cpu.R[Reg.RAX] & 0xFF);
        Assert.Equal(Differential.FlagNames(flags), Differential.FlagNames(m.Cpu.Rflags & (RFlags.Status & ~RFlags.OF)));
    }

    [Fact]
    public void Aam_with_a_zero_base_raises_DE_and_aad_aam_convert_between_binary_and_unpacked_bcd()
    {
        var m = Machine(a => { a.aam(10); a.aad(10); a.db(0xD4, 0x00); }, compat: true);
        m.Cpu.R[Reg.RAX] = 63;
        Assert.Equal(-1, m.Step());
        Assert.Equal(0x0603UL, m.Cpu.R[Reg.RAX] & 0xFFFF);
        Assert.Equal(-1, m.Step());
        Assert.Equal(63UL, m.Cpu.R[Reg.RAX] & 0xFFFF);
        Assert.Equal(Vec.DE, m.Step());
    }

    [Fact]
    public void Bound_raises_BR_when_the_index_is_outside_the_pair()
    {
        var m = Machine(a => { a.bound(eax, __qword_ptr[ebx]); a.bound(eax, __qword_ptr[ebx]); }, compat: true);
        m.Write(Data, BitConverter.GetBytes(-5).Concat(BitConverter.GetBytes(10)).ToArray());
        m.Cpu.R[Reg.RBX] = Data;
        m.Cpu.R[Reg.RAX] = unchecked((uint)-5);
        Assert.Equal(-1, m.Step());
        m.Cpu.R[Reg.RAX] = 11;
        Assert.Equal(Vec.BR, m.Step());
    }

    [Fact]
    public void Pusha_and_popa_round_trip_all_registers_in_32_bit_code()
    {
        var m = Machine(a => { a.pushad(); a.xor(eax, eax); a.xor(edi, edi); a.popad(); }, compat: true);
        for (int r = 0; r < 8; r++) if (r != Reg.RSP) m.Cpu.R[r] = 0x1000u + (uint)r;
        Assert.Equal(-1, m.RunRange(Code, Code + 6));   // pushad, xor, xor, popad: 6 bytes
        for (int r = 0; r < 8; r++) if (r != Reg.RSP) Assert.Equal(0x1000UL + (ulong)r, m.Cpu.R[r]);
        Assert.Equal(0x8000UL, m.Cpu.R[Reg.RSP]);
    }

    [Fact]
    public void Loop_with_a_32_bit_address_size_counts_in_ecx()
    {
        var m = Machine(a => { var top = a.CreateLabel(); a.Label(ref top); a.inc(rax); a.db(0x67); a.loop(top); });
        m.Cpu.R[Reg.RCX] = 0x1_0000_0003UL;
        Assert.Equal(-1, m.RunRange(Code, Code + 6));
        Assert.Equal(3UL, m.Cpu.R[Reg.RAX]);
        Assert.Equal(0UL, m.Cpu.R[Reg.RCX] & 0xFFFFFFFF);
    }

    [Fact]
    public void Rdrand_and_rdseed_are_deterministic_for_a_seed_and_report_success()
    {
        ulong Draw(ulong seed)
        {
            var m = new RawMachine();
            m.Machine.Options.Seed = seed;
            m.Load(Code, [0x48, 0x0F, 0xC7, 0xF0, 0x48, 0x0F, 0xC7, 0xF9]);   // rdrand rax; rdseed rcx
            Assert.Equal(-1, m.Step()); Assert.True(m.Cpu.Cf);
            Assert.Equal(-1, m.Step()); Assert.True(m.Cpu.Cf);
            return m.Cpu.R[Reg.RAX] ^ m.Cpu.R[Reg.RCX];
        }
        Assert.Equal(Draw(7), Draw(7));
    }

    [Theory]
    [InlineData(7u, 1, 3)]       // BMI1 leaf 7 EBX[3]
    [InlineData(7u, 1, 8)]       // BMI2 EBX[8]
    [InlineData(7u, 1, 18)]      // RDSEED EBX[18]
    [InlineData(7u, 1, 19)]      // ADX EBX[19]
    [InlineData(1u, 2, 13)]      // CMPXCHG16B leaf 1 ECX[13]
    [InlineData(1u, 3, 8)]       // CX8 leaf 1 EDX[8]
    [InlineData(1u, 2, 22)]      // MOVBE
    [InlineData(1u, 2, 23)]      // POPCNT
    [InlineData(0x80000001u, 2, 5)]   // LZCNT (ABM)
    public void Cpuid_reports_the_integer_extensions_that_are_implemented(uint leaf, int reg, int bit)
    {
        var m = new RawMachine();
        m.Cpu.Cpuid(leaf, 0, out uint a, out uint b, out uint c, out uint d);
        uint v = reg switch { 0 => a, 1 => b, 2 => c, _ => d };
        Assert.True((v >> bit & 1) != 0, $"leaf {leaf:x} bit {bit}");
    }

    /// <summary>Found by the compatibility-mode differential: the slot is the operand size, only 16 bits are written.</summary>
    [Theory]
    [InlineData(true, new byte[] { 0x1E }, 4)]                 // push ds (32-bit operand size)
    [InlineData(true, new byte[] { 0x66, 0x1E }, 2)]           // pushw ds
    [InlineData(false, new byte[] { 0x0F, 0xA0 }, 8)]          // push fs in 64-bit mode
    public void Push_Sreg_moves_the_stack_by_the_operand_size_and_writes_only_the_selector(bool compat, byte[] code, int slot)
    {
        var m = Machine(_ => { }, compat);
        m.Load(Code, code);
        m.Cpu.R[Reg.RSP] = 0x7100;
        m.Write(0x7100 - 8, BitConverter.GetBytes(0xAAAA_AAAA_AAAA_AAAAUL));
        Assert.Equal(-1, m.Step());
        Assert.Equal(0x7100UL - (ulong)slot, m.Cpu.R[Reg.RSP]);
        var b = new byte[8];
        m.Read(0x7100 - 8, b);
        ulong sel = m.Cpu.Segs[compat ? Seg.DS : Seg.FS].Selector;
        ulong expect = 0xAAAA_AAAA_AAAA_AAAAUL & ~(0xFFFFUL << (8 * (8 - slot))) | sel << (8 * (8 - slot));
        Assert.Equal(expect, BitConverter.ToUInt64(b));
    }

    [Fact]
    public void AAS_subtracts_6_from_AX_so_a_borrow_reaches_AH()
    {
        var m = Machine(a => a.aas(), compat: true);
        m.Cpu.R[Reg.RAX] = 0x0004;
        m.Cpu.Rflags = RFlags.Reserved1 | RFlags.AF;
        Assert.Equal(-1, m.Step());
        Assert.Equal(0xFE0EUL, m.Cpu.R[Reg.RAX] & 0xFFFF);   // the host's answer: AX - 6 = FFFE, AH - 1 = FE
        Assert.True(m.Cpu.Cf && m.Cpu.Af);
    }

    [Fact]
    public void AAD_leaves_the_flags_of_its_8_bit_addition()
    {
        var m = Machine(a => a.aad(10), compat: true);
        m.Cpu.R[Reg.RAX] = 0xF6D7;                            // D7 + low byte of F6 × 10 (9C) = 173
        m.Cpu.Rflags = RFlags.Reserved1;
        Assert.Equal(-1, m.Step());
        Assert.Equal(0x73UL, m.Cpu.R[Reg.RAX] & 0xFFFF);
        Assert.Equal("CAO", Differential.FlagNames(m.Cpu.Rflags & RFlags.Status));
    }
}

/// <summary>Encodings whose meaning depends on the mode: the same bytes in 32-bit and 64-bit code.</summary>
[Trait("Category", "Isa")]
public class ModeTests
{
    private static RawMachine At(byte[] code, bool compat)
    {
        var m = new RawMachine();
        m.Map(0x7000);
        if (compat) m.EnterCompat32();
        m.Load(0x400000, code);
        m.Cpu.R[Reg.RSP] = 0x8000;
        return m;
    }

    [Fact]
    public void Byte_40_is_inc_eax_in_32_bit_code_and_a_rex_prefix_in_64_bit_code()
    {
        var m32 = At([0x40, 0x90], compat: true);
        m32.Cpu.R[Reg.RAX] = 0x7FFFFFFF;
        Assert.Equal(-1, m32.Step());
        Assert.Equal(0x80000000UL, m32.Cpu.R[Reg.RAX]);
        Assert.True(m32.Cpu.Of);
        var m64 = At([0x40, 0x90], compat: false);     // REX + NOP: one instruction, nothing changes
        m64.Cpu.R[Reg.RAX] = 0x7FFFFFFF;
        Assert.Equal(-1, m64.Step());
        Assert.Equal(0x400002UL, m64.Cpu.Rip);
        Assert.Equal(0x7FFFFFFFUL, m64.Cpu.R[Reg.RAX]);
    }

    [Fact]
    public void Push_and_call_use_four_byte_slots_in_32_bit_code_and_eight_in_64_bit_code()
    {
        var m32 = At([0x6A, 0xFF], compat: true);
        Assert.Equal(-1, m32.Step());
        Assert.Equal(0x7FFCUL, m32.Cpu.R[Reg.RSP]);
        var m64 = At([0x6A, 0xFF], compat: false);
        Assert.Equal(-1, m64.Step());
        Assert.Equal(0x7FF8UL, m64.Cpu.R[Reg.RSP]);
        var b = new byte[8];
        m64.Read(0x7FF8, b);
        Assert.Equal(ulong.MaxValue, BitConverter.ToUInt64(b));   // the imm8 is sign-extended to 64 bits
    }

    [Fact]
    public void Thirty_two_bit_addressing_wraps_at_4_GiB_in_32_bit_code()
    {
        var m = At([0x8B, 0x43, 0x10], compat: true);   // mov eax, [ebx+10h]
        m.Map(0);
        m.Write(0x8, BitConverter.GetBytes(0xCAFEF00Du));
        m.Cpu.R[Reg.RBX] = 0xFFFFFFF8;   // ebx + 10h = 1_0000_0008h, truncated to 8
        Assert.Equal(-1, m.Step());
        Assert.Equal(0xCAFEF00DUL, m.Cpu.R[Reg.RAX]);
    }
}
