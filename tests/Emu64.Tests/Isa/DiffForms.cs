using System.Numerics;
using Emu64.Cpu;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Isa;

/// <summary>
/// The instruction forms of the differential suite, generated from Iced's opcode tables: every 64-bit
/// mode encoding (Iced <see cref="Code"/>) of the in-scope mnemonics, with a register variant and a
/// memory variant of each r/m operand, plus string instructions with their REP prefixes.
/// Memory operands are [r14+disp] with R14 pinned inside the harness data page.
/// </summary>
public static class DiffForms
{
    /// <summary>Mnemonics that run at CPL 3, leave RSP alone and are deterministic: compared with the host.</summary>
    private static readonly HashSet<Mnemonic> InScope =
    [
        Mnemonic.Add, Mnemonic.Or, Mnemonic.Adc, Mnemonic.Sbb, Mnemonic.And, Mnemonic.Sub, Mnemonic.Xor, Mnemonic.Cmp, Mnemonic.Test,
        Mnemonic.Inc, Mnemonic.Dec, Mnemonic.Neg, Mnemonic.Not,
        Mnemonic.Shl, Mnemonic.Sal, Mnemonic.Shr, Mnemonic.Sar, Mnemonic.Rol, Mnemonic.Ror, Mnemonic.Rcl, Mnemonic.Rcr,
        Mnemonic.Shld, Mnemonic.Shrd,
        Mnemonic.Mul, Mnemonic.Imul, Mnemonic.Div, Mnemonic.Idiv,
        Mnemonic.Bt, Mnemonic.Bts, Mnemonic.Btr, Mnemonic.Btc, Mnemonic.Bsf, Mnemonic.Bsr, Mnemonic.Popcnt, Mnemonic.Lzcnt, Mnemonic.Tzcnt,
        Mnemonic.Mov, Mnemonic.Movzx, Mnemonic.Movsx, Mnemonic.Movsxd, Mnemonic.Lea, Mnemonic.Xchg, Mnemonic.Bswap,
        Mnemonic.Cbw, Mnemonic.Cwde, Mnemonic.Cdqe, Mnemonic.Cwd, Mnemonic.Cdq, Mnemonic.Cqo,
        Mnemonic.Lahf, Mnemonic.Sahf, Mnemonic.Clc, Mnemonic.Stc, Mnemonic.Cmc, Mnemonic.Cld, Mnemonic.Std, Mnemonic.Xlatb, Mnemonic.Movbe,
        Mnemonic.Nop, Mnemonic.Pause, Mnemonic.Endbr64, Mnemonic.Lar, Mnemonic.Lsl, Mnemonic.Verr, Mnemonic.Verw,
        Mnemonic.Cmpxchg, Mnemonic.Xadd, Mnemonic.Cmpxchg8b, Mnemonic.Cmpxchg16b,
        Mnemonic.Andn, Mnemonic.Bextr, Mnemonic.Blsi, Mnemonic.Blsmsk, Mnemonic.Blsr, Mnemonic.Bzhi, Mnemonic.Mulx,
        Mnemonic.Pdep, Mnemonic.Pext, Mnemonic.Rorx, Mnemonic.Sarx, Mnemonic.Shlx, Mnemonic.Shrx, Mnemonic.Adcx, Mnemonic.Adox,
        Mnemonic.Jo, Mnemonic.Jno, Mnemonic.Jb, Mnemonic.Jae, Mnemonic.Je, Mnemonic.Jne, Mnemonic.Jbe, Mnemonic.Ja,
        Mnemonic.Js, Mnemonic.Jns, Mnemonic.Jp, Mnemonic.Jnp, Mnemonic.Jl, Mnemonic.Jge, Mnemonic.Jle, Mnemonic.Jg,
        Mnemonic.Loop, Mnemonic.Loope, Mnemonic.Loopne, Mnemonic.Jrcxz, Mnemonic.Jecxz, Mnemonic.Jmp,
        Mnemonic.Cmovo, Mnemonic.Cmovno, Mnemonic.Cmovb, Mnemonic.Cmovae, Mnemonic.Cmove, Mnemonic.Cmovne, Mnemonic.Cmovbe, Mnemonic.Cmova,
        Mnemonic.Cmovs, Mnemonic.Cmovns, Mnemonic.Cmovp, Mnemonic.Cmovnp, Mnemonic.Cmovl, Mnemonic.Cmovge, Mnemonic.Cmovle, Mnemonic.Cmovg,
        Mnemonic.Seto, Mnemonic.Setno, Mnemonic.Setb, Mnemonic.Setae, Mnemonic.Sete, Mnemonic.Setne, Mnemonic.Setbe, Mnemonic.Seta,
        Mnemonic.Sets, Mnemonic.Setns, Mnemonic.Setp, Mnemonic.Setnp, Mnemonic.Setl, Mnemonic.Setge, Mnemonic.Setle, Mnemonic.Setg,
    ];

    public const int MemDisp = 0x13;   // unaligned on purpose
    public const ulong R14Offset = 0x800;

    private static readonly Lazy<List<DiffForm>> _all = new(Build);
    public static IReadOnlyList<DiffForm> All => _all.Value;
    public static DiffForm Get(string name) => All.First(f => f.Name == name);

    private static List<DiffForm> Build()
    {
        var forms = new List<DiffForm>();
        foreach (Code code in Enum.GetValues<Code>())
        {
            if (code == Code.INVALID || !InScope.Contains(code.Mnemonic()) || code.Mnemonic() == Mnemonic.Xlatb) continue;
            if (code.ToString().Contains("_KNC_")) continue;   // Knights Corner encodings: not on this host
            var op = code.ToOpCode();
            if (!op.Mode64 || op.Encoding is not (EncodingKind.Legacy or EncodingKind.VEX)) continue;
            if (code.Mnemonic() == Mnemonic.Jmp && op.GetOpKind(0) is not (OpCodeOperandKind.br64_1 or OpCodeOperandKind.br64_4)) continue;
            if (code is Code.Mov_r64_cr or Code.Mov_cr_r64 or Code.Mov_r64_dr or Code.Mov_dr_r64 or Code.Mov_r32_cr or Code.Mov_cr_r32
                or Code.Mov_r32_dr or Code.Mov_dr_r32 or Code.Mov_rm16_Sreg or Code.Mov_r32m16_Sreg or Code.Mov_r64m16_Sreg
                or Code.Mov_Sreg_rm16 or Code.Mov_Sreg_r32m16 or Code.Mov_Sreg_r64m16 or Code.Mov_r32_tr or Code.Mov_tr_r32) continue;
            bool hasRm = false;
            for (int k = 0; k < op.OpCount; k++)
                if (op.GetOpKind(k) is OpCodeOperandKind.r8_or_mem or OpCodeOperandKind.r16_or_mem or OpCodeOperandKind.r32_or_mem
                    or OpCodeOperandKind.r64_or_mem) hasRm = true;
            if (hasRm)
            {
                Add(forms, code, op, mem: false, hi: false);
                Add(forms, code, op, mem: true, hi: false);
                if (op.CanUseLockPrefix) Add(forms, code, op, mem: true, hi: false, locked: true);
                if (A32Mnemonics.Contains(code.Mnemonic())) Add(forms, code, op, mem: true, hi: false, a32: true);
            }
            else if (code.Mnemonic() == Mnemonic.Lea) Add(forms, code, op, mem: true, hi: false, a32: true);
            else Add(forms, code, op, mem: op.OpCount > 0 && Enumerable.Range(0, op.OpCount).Any(k => op.GetOpKind(k) is OpCodeOperandKind.mem or OpCodeOperandKind.mem_offs), hi: false);
            if (Enumerable.Range(0, op.OpCount).Any(k => op.GetOpKind(k) is OpCodeOperandKind.r8_reg or OpCodeOperandKind.r8_or_mem)
                && op.Encoding == EncodingKind.Legacy
                && Enumerable.Range(0, op.OpCount).All(k => SizeOf(op.GetOpKind(k)) == 1 || op.GetOpKind(k) is not (OpCodeOperandKind.r16_reg
                    or OpCodeOperandKind.r32_reg or OpCodeOperandKind.r64_reg or OpCodeOperandKind.r16_or_mem or OpCodeOperandKind.r32_or_mem or OpCodeOperandKind.r64_or_mem)))
                Add(forms, code, op, mem: false, hi: true);
        }
        AddStrings(forms);
        DiffFormsCompat.AddTo(forms);
        return forms;
    }

    /// <summary>Mnemonics also tested with a 32-bit address size ([r14d+disp], R14's upper half random).</summary>
    private static readonly HashSet<Mnemonic> A32Mnemonics =
        [Mnemonic.Add, Mnemonic.Adc, Mnemonic.Sub, Mnemonic.Cmp, Mnemonic.Mov, Mnemonic.Bt, Mnemonic.Bts, Mnemonic.Xchg,
         Mnemonic.Cmpxchg, Mnemonic.Xadd, Mnemonic.Shl, Mnemonic.Rcr, Mnemonic.Imul, Mnemonic.Movzx];

    private static void Add(List<DiffForm> forms, Code code, OpCodeInfo op, bool mem, bool hi, bool locked = false, bool a32 = false)
    {
        string name = code + (mem ? "/m" : "") + (hi ? "/hi" : "") + (locked ? "/lock" : "") + (a32 ? "/a32" : "");
        // registers: destination-like operands rbx/rdx, sources rsi/rdi; high-byte variant uses ah/ch
        Register[] pick8 = hi ? [Register.AH, Register.CH, Register.DH] : [Register.BL, Register.SIL, Register.DIL];
        Register Reg(int size, int nth) => size switch
        {
            1 => pick8[nth],
            2 => new[] { Register.BX, Register.SI, Register.DI }[nth],
            4 => new[] { Register.EBX, Register.ESI, Register.EDI }[nth],
            _ => new[] { Register.RBX, Register.RSI, Register.RDI }[nth],
        };
        bool hasImm = false, isBranch = false;
        var immKinds = new List<OpCodeOperandKind>();
        for (int k = 0; k < op.OpCount; k++)
        {
            var kind = op.GetOpKind(k);
            if (kind is OpCodeOperandKind.imm8 or OpCodeOperandKind.imm8sex16 or OpCodeOperandKind.imm8sex32 or OpCodeOperandKind.imm8sex64
                or OpCodeOperandKind.imm16 or OpCodeOperandKind.imm32 or OpCodeOperandKind.imm32sex64 or OpCodeOperandKind.imm64)
            { hasImm = true; immKinds.Add(kind); }
            if (kind is OpCodeOperandKind.br16_1 or OpCodeOperandKind.br32_1 or OpCodeOperandKind.br64_1 or OpCodeOperandKind.br16_2
                or OpCodeOperandKind.br32_4 or OpCodeOperandKind.br64_4) isBranch = true;
        }
        if (isBranch && op.OperandSize == 16) return;   // 16-bit branches truncate RIP: not runnable natively

        byte[] Encode(ulong rip, long imm)
        {
            var ins = Create(code, op, mem, Reg, imm, rip, new MemoryOperand(a32 ? Register.R14D : Register.R14, MemDisp),
                             HostCpu.Shared.Data + R14Offset + MemDisp, 64);
            var w = new CodeWriterImpl();
            var enc = Encoder.Create(64, w);
            enc.Encode(ins, rip);
            return w.ToArray();
        }

        var mnem = code.Mnemonic();
        var form = new DiffForm { Name = name, Encode = Encode, Branch = isBranch };
        if (hasImm) form.Imms = Imms(immKinds[0], mnem);
        bool usesMem = mem || op.OpCount > 0 && Enumerable.Range(0, op.OpCount).Any(k => op.GetOpKind(k) is OpCodeOperandKind.mem or OpCodeOperandKind.mem_offs);
        var pins = new List<Action<DiffCase, HostCpu>>();
        if (usesMem && !a32) pins.Add((c, h) => c.Gpr[14] = h.Data + R14Offset);
        if (a32) pins.Add((c, h) => c.Gpr[14] = (c.Gpr[14] & 0xFFFFFFFF00000000UL) | (h.Data + R14Offset));
        if (mnem is Mnemonic.Bt or Mnemonic.Bts or Mnemonic.Btr or Mnemonic.Btc && mem && !hasImm)
            pins.Add((c, h) => { c.Gpr[3] = (ulong)((long)c.Gpr[3] % 4000); });   // bit offsets within ±500 bytes
        if (mnem == Mnemonic.Xlatb) pins.Add((c, h) => c.Gpr[3] = h.Data + 0x100);
        if (mnem is Mnemonic.Lar or Mnemonic.Lsl or Mnemonic.Verr or Mnemonic.Verw)
        {
            // selectors of the host's GDT (mirrored by LinuxGdt in the emulator): in RBX/RSI/RDI and the memory word
            pins.Add((c, h) => { foreach (int r in (ReadOnlySpan<int>)[3, 6, 7]) c.Gpr[r] = (c.Gpr[r] & ~0xFFFFUL) | Selectors.Pick(c.Gpr[r], mnem); });
            form.PinMemory = (c, data) => BitConverter.TryWriteBytes(data.AsSpan((int)R14Offset + MemDisp), Selectors.Pick(c.Gpr[12], mnem));
        }
        if (mnem is Mnemonic.Div or Mnemonic.Idiv)
        {
            bool signed = mnem == Mnemonic.Idiv;
            form.ExpectFault = (c, data) => DivFaults(c, data, op, mem, hi, signed) ? Vec.DE : -1;
            // most random dividends overflow: often make the high half a zero/sign extension so the quotient fits
            pins.Add((c, h) =>
            {
                if ((c.Gpr[11] & 3) == 0) return;
                c.Gpr[2] = signed ? 0 - (c.Gpr[0] >> 63) : 0;
                if (SizeOf(op.GetOpKind(0)) == 1 && !hi) c.Gpr[0] = (c.Gpr[0] & ~0xFF00UL) | (signed && (c.Gpr[0] & 0x80) != 0 ? 0xFF00UL : 0);
            });
        }
        if (pins.Count > 0) form.Pin = (c, h) => { foreach (var p in pins) p(c, h); };
        forms.Add(form);
    }

    internal static long[] Imms(OpCodeOperandKind kind, Mnemonic m)
    {
        var list = new List<long>();
        switch (kind)
        {
            case OpCodeOperandKind.imm8:
                list.AddRange([0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 0x7F, 0x80, 0xC1, 0xFF]);
                break;
            case OpCodeOperandKind.imm8sex16: case OpCodeOperandKind.imm8sex32: case OpCodeOperandKind.imm8sex64:
                list.AddRange([0, 1, 2, 0x7F, -1, -2, -0x80, 0x40, 0x0F, -0x10]);
                break;
            case OpCodeOperandKind.imm16:
                list.AddRange([0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x1234]);
                break;
            default:
                list.AddRange([0, 1, -1, 0x7F, 0x80, 0x7FFF, 0x8000, 0x7FFFFFFF, int.MinValue, 0x12345678, -0x10]);
                break;
        }
        return list.ToArray();
    }

    /// <summary>Whether DIV/IDIV faults (#DE) for these inputs: zero divisor or a quotient that does not fit.</summary>
    internal static bool DivFaults(DiffCase c, byte[] data, OpCodeInfo op, bool mem, bool hi, bool signed)
    {
        int size = SizeOf(op.GetOpKind(0));
        int bits = size * 8;
        ulong m = size == 8 ? ulong.MaxValue : (1UL << bits) - 1;
        ulong d = mem ? BitConverter.ToUInt64(data, (int)R14Offset + MemDisp) & m
                : size == 1 && hi ? (c.Gpr[0] >> 8) & 0xFF : c.Gpr[3] & m;
        if (d == 0) return true;
        BigInteger n = size == 1 ? new BigInteger(c.Gpr[0] & 0xFFFF)
            : (new BigInteger(c.Gpr[2] & m) << bits) | new BigInteger(c.Gpr[0] & m);
        BigInteger dv = d;
        if (signed)
        {
            if (n >= BigInteger.One << (2 * bits - 1)) n -= BigInteger.One << (2 * bits);
            if (dv >= BigInteger.One << (bits - 1)) dv -= BigInteger.One << bits;
            var q = BigInteger.Divide(n, dv);
            return q >= BigInteger.One << (bits - 1) || q < -(BigInteger.One << (bits - 1));
        }
        return n / dv > m;
    }

    /// <summary>
    /// The instruction for a form: r/m operands become <paramref name="memOp"/> (or the next register),
    /// moffs operands <paramref name="moffs"/>, branches target just past the CMC that follows them.
    /// </summary>
    internal static Instruction Create(Code code, OpCodeInfo op, bool mem, Func<int, int, Register> reg, long imm, ulong rip,
                                       MemoryOperand memOp, ulong moffs, int bitness)
    {
        var args = new List<object>();
        int nthReg = 0;
        for (int k = 0; k < op.OpCount; k++)
        {
            var kind = op.GetOpKind(k);
            switch (kind)
            {
                case OpCodeOperandKind.r8_or_mem: case OpCodeOperandKind.r16_or_mem: case OpCodeOperandKind.r32_or_mem: case OpCodeOperandKind.r64_or_mem:
                    if (mem) args.Add(memOp);
                    else args.Add(reg(SizeOf(kind), nthReg++));
                    break;
                case OpCodeOperandKind.mem:
                    args.Add(code is Code.Cmpxchg16b_m128 ? new MemoryOperand(memOp.Base, 0x10) : memOp);
                    break;
                case OpCodeOperandKind.mem_offs:
                    args.Add(new MemoryOperand(Register.None, (long)moffs, bitness / 8));
                    break;
                case OpCodeOperandKind.r8_reg: case OpCodeOperandKind.r8_opcode: case OpCodeOperandKind.r16_reg: case OpCodeOperandKind.r16_opcode:
                case OpCodeOperandKind.r32_reg: case OpCodeOperandKind.r32_opcode: case OpCodeOperandKind.r64_reg: case OpCodeOperandKind.r64_opcode:
                case OpCodeOperandKind.r16_rm: case OpCodeOperandKind.r32_rm: case OpCodeOperandKind.r64_rm:
                case OpCodeOperandKind.r32_vvvv: case OpCodeOperandKind.r64_vvvv:
                    args.Add(reg(SizeOf(kind), nthReg++));
                    break;
                case OpCodeOperandKind.al: args.Add(Register.AL); break;
                case OpCodeOperandKind.cl: args.Add(Register.CL); break;
                case OpCodeOperandKind.ax: args.Add(Register.AX); break;
                case OpCodeOperandKind.eax: args.Add(Register.EAX); break;
                case OpCodeOperandKind.rax: args.Add(Register.RAX); break;
                case OpCodeOperandKind.dx: args.Add(Register.DX); break;
                case OpCodeOperandKind.es: args.Add(Register.ES); break;
                case OpCodeOperandKind.cs: args.Add(Register.CS); break;
                case OpCodeOperandKind.ss: args.Add(Register.SS); break;
                case OpCodeOperandKind.ds: args.Add(Register.DS); break;
                case OpCodeOperandKind.fs: args.Add(Register.FS); break;
                case OpCodeOperandKind.gs: args.Add(Register.GS); break;
                case OpCodeOperandKind.imm8_const_1: args.Add(1L); break;
                case OpCodeOperandKind.imm8: case OpCodeOperandKind.imm8sex16: case OpCodeOperandKind.imm8sex32: case OpCodeOperandKind.imm8sex64:
                case OpCodeOperandKind.imm16: case OpCodeOperandKind.imm32: case OpCodeOperandKind.imm32sex64: case OpCodeOperandKind.imm64:
                    args.Add(imm);
                    break;
                case OpCodeOperandKind.br16_1: case OpCodeOperandKind.br32_1: case OpCodeOperandKind.br64_1:
                case OpCodeOperandKind.br16_2: case OpCodeOperandKind.br32_4: case OpCodeOperandKind.br64_4:
                    {
                        var probe = Instruction.CreateBranch(code, rip + 2);
                        var w = new CodeWriterImpl();
                        int len = (int)Encoder.Create(bitness, w).Encode(probe, rip);
                        return Instruction.CreateBranch(code, rip + (ulong)len + 1);   // skip the CMC that follows
                    }
                default:
                    throw new NotSupportedException($"{code}: operand kind {kind}");
            }
        }
        return args.Count switch
        {
            0 => Instruction.Create(code),
            1 => args[0] switch
            {
                Register r => Instruction.Create(code, r),
                MemoryOperand m => Instruction.Create(code, m),
                long i => Instruction.Create(code, (int)i),
                _ => throw new NotSupportedException(),
            },
            2 => (args[0], args[1]) switch
            {
                (Register a, Register b) => Instruction.Create(code, a, b),
                (Register a, MemoryOperand b) => Instruction.Create(code, a, b),
                (MemoryOperand a, Register b) => Instruction.Create(code, a, b),
                (Register a, long i) when code is Code.Mov_r64_imm64 => Instruction.Create(code, a, (ulong)i),
                (Register a, long i) => Instruction.Create(code, a, (int)i),
                (MemoryOperand a, long i) => Instruction.Create(code, a, (int)i),
                _ => throw new NotSupportedException(),
            },
            3 => (args[0], args[1], args[2]) switch
            {
                (Register a, Register b, Register c) => Instruction.Create(code, a, b, c),
                (Register a, Register b, MemoryOperand c) => Instruction.Create(code, a, b, c),
                (Register a, MemoryOperand b, Register c) => Instruction.Create(code, a, b, c),
                (MemoryOperand a, Register b, Register c) => Instruction.Create(code, a, b, c),
                (Register a, Register b, long i) => Instruction.Create(code, a, b, (int)i),
                (Register a, MemoryOperand b, long i) => Instruction.Create(code, a, b, (int)i),
                (MemoryOperand a, Register b, long i) => Instruction.Create(code, a, b, (int)i),
                _ => throw new NotSupportedException(),
            },
            _ => throw new NotSupportedException(),
        };
    }

    internal static int SizeOf(OpCodeOperandKind k) => k switch
    {
        OpCodeOperandKind.r8_or_mem or OpCodeOperandKind.r8_reg or OpCodeOperandKind.r8_opcode => 1,
        OpCodeOperandKind.r16_or_mem or OpCodeOperandKind.r16_reg or OpCodeOperandKind.r16_opcode or OpCodeOperandKind.r16_rm => 2,
        OpCodeOperandKind.r32_or_mem or OpCodeOperandKind.r32_reg or OpCodeOperandKind.r32_opcode or OpCodeOperandKind.r32_rm or OpCodeOperandKind.r32_vvvv => 4,
        _ => 8,
    };

    /// <summary>String instructions in every size, plain and with REP/REPE/REPNE; RSI/RDI pinned into the data page, RCX small.</summary>
    private static void AddStrings(List<DiffForm> forms)
    {
        var ops = new (string Name, Action<Assembler> Plain, Action<Assembler> Rep, Action<Assembler>? Repne)[]
        {
            ("movsb", a => a.movsb(), a => a.rep.movsb(), null), ("movsw", a => a.movsw(), a => a.rep.movsw(), null),
            ("movsd", a => a.movsd(), a => a.rep.movsd(), null), ("movsq", a => a.movsq(), a => a.rep.movsq(), null),
            ("stosb", a => a.stosb(), a => a.rep.stosb(), null), ("stosw", a => a.stosw(), a => a.rep.stosw(), null),
            ("stosd", a => a.stosd(), a => a.rep.stosd(), null), ("stosq", a => a.stosq(), a => a.rep.stosq(), null),
            ("lodsb", a => a.lodsb(), a => a.rep.lodsb(), null), ("lodsq", a => a.lodsq(), a => a.rep.lodsq(), null),
            ("cmpsb", a => a.cmpsb(), a => a.repe.cmpsb(), a => a.repne.cmpsb()), ("cmpsw", a => a.cmpsw(), a => a.repe.cmpsw(), a => a.repne.cmpsw()),
            ("cmpsd", a => a.cmpsd(), a => a.repe.cmpsd(), a => a.repne.cmpsd()), ("cmpsq", a => a.cmpsq(), a => a.repe.cmpsq(), a => a.repne.cmpsq()),
            ("scasb", a => a.scasb(), a => a.repe.scasb(), a => a.repne.scasb()), ("scasw", a => a.scasw(), a => a.repe.scasw(), a => a.repne.scasw()),
            ("scasd", a => a.scasd(), a => a.repe.scasd(), a => a.repne.scasd()), ("scasq", a => a.scasq(), a => a.repe.scasq(), a => a.repne.scasq()),
        };
        foreach (var (name, plain, rep, repne) in ops)
        {
            AddAsm(forms, name, plain, strings: true);
            AddAsm(forms, "rep " + name, rep, strings: true);
            if (repne != null) AddAsm(forms, "repne " + name, repne, strings: true);
        }
        // long NOPs of every length the SDM lists (0F 1F /0 forms with SIB and displacement)
        // 32-bit address size (0x67): ESI/EDI/ECX count and wrap; the data page is below 2 GiB
        AddAsm(forms, "movsb a32", a => a.db(0x67, 0xA4), strings: true);
        AddAsm(forms, "rep movsd a32", a => a.db(0x67, 0xF3, 0xA5), strings: true);
        AddAsm(forms, "rep stosq a32", a => a.db(0x67, 0xF3, 0x48, 0xAB), strings: true);
        AddAsm(forms, "repne scasb a32", a => a.db(0x67, 0xF2, 0xAE), strings: true);
        AddAsm(forms, "repe cmpsw a32", a => a.db(0x67, 0xF3, 0x66, 0xA7), strings: true);
        AddAsm(forms, "rep lodsb a32", a => a.db(0x67, 0xF3, 0xAC), strings: true);
        AddAsm(forms, "nop long forms", a => a.db([0x66, 0x0F, 0x1F, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00,
                                                 0x0F, 0x1F, 0x80, 0x00, 0x00, 0x00, 0x00, 0x0F, 0x1F, 0x44, 0x00, 0x00, 0x0F, 0x1F, 0x40, 0x00, 0x0F, 0x1F, 0x00]), strings: false);
        AddAsm(forms, "xlatb", a => a.xlatb(), strings: false, pin: (c, h) => c.Gpr[Emu64.Cpu.Reg.RBX] = h.Data + 0x100);
        AddAsm(forms, "xchg ax,ax / 66 nop", a => a.db(0x66, 0x90), strings: false);
        AddAsm(forms, "xchg eax,r8d", a => a.xchg(eax, r8d), strings: false);
    }

    private static void AddAsm(List<DiffForm> forms, string name, Action<Assembler> emit, bool strings, Action<DiffCase, HostCpu>? pin = null)
    {
        forms.Add(new DiffForm
        {
            Name = name,
            Encode = (rip, _) =>
            {
                var a = new Assembler(64);
                emit(a);
                var w = new CodeWriterImpl();
                a.Assemble(w, rip);
                return w.ToArray();
            },
            Pin = strings ? (c, h) =>
            {
                ulong upper = name.EndsWith("a32") ? c.Gpr[12] & 0xFFFFFFFF00000000UL : 0;   // ignored with 32-bit addresses
                c.Gpr[Emu64.Cpu.Reg.RSI] = upper | (h.Data + 0x400 + (c.Gpr[8] & 7));
                c.Gpr[Emu64.Cpu.Reg.RDI] = upper | (h.Data + 0xA00 + (c.Gpr[10] & 7));
                c.Gpr[Emu64.Cpu.Reg.RCX] = upper | ((c.Gpr[9] & 3) == 0 ? 0 : c.Gpr[Emu64.Cpu.Reg.RCX] & 15);   // sometimes a zero count
            } : pin,
        });
    }

    internal sealed class CodeWriterImpl : CodeWriter
    {
        private readonly List<byte> _b = new();
        public override void WriteByte(byte value) => _b.Add(value);
        public byte[] ToArray() => _b.ToArray();
    }
}
