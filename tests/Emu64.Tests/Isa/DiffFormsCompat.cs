using Emu64.Cpu;
using Iced.Intel;

namespace Emu64.Tests.Isa;

/// <summary>
/// Compatibility-mode forms (CS = 0x23: CS.L = 0, CS.D = 1) run natively through <see cref="CompatHost"/>:
/// every 32-bit-mode encoding of the in-scope mnemonics at 8-, 16- and 32-bit operand size, a register
/// and a 32-bit-address memory variant ([ebp+0x13]) of each r/m operand, a 16-bit-address variant
/// ([bp+0x13], 67 prefix) for a subset, LOCK variants, the instructions that exist only outside 64-bit
/// mode (DAA DAS AAA AAS AAM AAD, ARPL, PUSHA/POPA, push/pop of 16/32-bit registers and memory,
/// PUSH segment register, ENTER/LEAVE), and the string instructions with 32- and 16-bit addresses.
/// Names start with "c32 ". EBP is the memory base (data page + 0x800), ESP the stack (data page + 0x140).
/// </summary>
public static class DiffFormsCompat
{
    private static readonly HashSet<Mnemonic> Scope =
    [
        Mnemonic.Add, Mnemonic.Or, Mnemonic.Adc, Mnemonic.Sbb, Mnemonic.And, Mnemonic.Sub, Mnemonic.Xor, Mnemonic.Cmp, Mnemonic.Test,
        Mnemonic.Inc, Mnemonic.Dec, Mnemonic.Neg, Mnemonic.Not,
        Mnemonic.Shl, Mnemonic.Sal, Mnemonic.Shr, Mnemonic.Sar, Mnemonic.Rol, Mnemonic.Ror, Mnemonic.Rcl, Mnemonic.Rcr,
        Mnemonic.Shld, Mnemonic.Shrd, Mnemonic.Mul, Mnemonic.Imul, Mnemonic.Div, Mnemonic.Idiv,
        Mnemonic.Bt, Mnemonic.Bts, Mnemonic.Btr, Mnemonic.Btc, Mnemonic.Bsf, Mnemonic.Bsr, Mnemonic.Popcnt, Mnemonic.Lzcnt, Mnemonic.Tzcnt,
        Mnemonic.Mov, Mnemonic.Movzx, Mnemonic.Movsx, Mnemonic.Lea, Mnemonic.Xchg, Mnemonic.Bswap, Mnemonic.Movbe,
        Mnemonic.Cbw, Mnemonic.Cwde, Mnemonic.Cwd, Mnemonic.Cdq, Mnemonic.Lahf, Mnemonic.Sahf,
        Mnemonic.Clc, Mnemonic.Stc, Mnemonic.Cmc, Mnemonic.Cld, Mnemonic.Std,
        Mnemonic.Cmpxchg, Mnemonic.Xadd, Mnemonic.Cmpxchg8b, Mnemonic.Adcx, Mnemonic.Adox,
        Mnemonic.Daa, Mnemonic.Das, Mnemonic.Aaa, Mnemonic.Aas, Mnemonic.Aam, Mnemonic.Aad, Mnemonic.Arpl,
        Mnemonic.Push, Mnemonic.Pop, Mnemonic.Pusha, Mnemonic.Pushad, Mnemonic.Popa, Mnemonic.Popad, Mnemonic.Pushf, Mnemonic.Pushfd,
        Mnemonic.Andn, Mnemonic.Bextr, Mnemonic.Blsi, Mnemonic.Blsmsk, Mnemonic.Blsr, Mnemonic.Bzhi, Mnemonic.Mulx,
        Mnemonic.Pdep, Mnemonic.Pext, Mnemonic.Rorx, Mnemonic.Sarx, Mnemonic.Shlx, Mnemonic.Shrx,
        Mnemonic.Leave, Mnemonic.Lar, Mnemonic.Lsl, Mnemonic.Verr, Mnemonic.Verw,
        Mnemonic.Jo, Mnemonic.Jno, Mnemonic.Jb, Mnemonic.Jae, Mnemonic.Je, Mnemonic.Jne, Mnemonic.Jbe, Mnemonic.Ja,
        Mnemonic.Js, Mnemonic.Jns, Mnemonic.Jp, Mnemonic.Jnp, Mnemonic.Jl, Mnemonic.Jge, Mnemonic.Jle, Mnemonic.Jg,
        Mnemonic.Loop, Mnemonic.Loope, Mnemonic.Loopne, Mnemonic.Jecxz, Mnemonic.Jcxz,
        Mnemonic.Cmovo, Mnemonic.Cmovb, Mnemonic.Cmove, Mnemonic.Cmovbe, Mnemonic.Cmovs, Mnemonic.Cmovp, Mnemonic.Cmovl, Mnemonic.Cmovle,
        Mnemonic.Seto, Mnemonic.Setb, Mnemonic.Sete, Mnemonic.Setbe, Mnemonic.Sets, Mnemonic.Setp, Mnemonic.Setl, Mnemonic.Setle,
    ];

    /// <summary>Mnemonics also run with a 16-bit address ([bp+0x13]).</summary>
    private static readonly HashSet<Mnemonic> A16 =
        [Mnemonic.Add, Mnemonic.Sbb, Mnemonic.Xor, Mnemonic.Cmp, Mnemonic.Mov, Mnemonic.Bt, Mnemonic.Btc, Mnemonic.Xchg, Mnemonic.Cmpxchg,
         Mnemonic.Xadd, Mnemonic.Shr, Mnemonic.Rcl, Mnemonic.Imul, Mnemonic.Div, Mnemonic.Movsx, Mnemonic.Push, Mnemonic.Pop, Mnemonic.Lea];

    public const ulong BaseOffset = 0x800;

    public static void AddTo(List<DiffForm> forms)
    {
        foreach (Code code in Enum.GetValues<Code>())
        {
            if (code == Code.INVALID || !Scope.Contains(code.Mnemonic())) continue;
            var op = code.ToOpCode();
            if (!op.Mode32 || op.Encoding is not (EncodingKind.Legacy or EncodingKind.VEX) || code.ToString().Contains("_KNC_") || code.ToString().Contains("486")) continue;
            if (op.OperandSize == 64 || op.AddressSize == 64) continue;
            bool skip = false, hasRm = false, branch = false;
            for (int k = 0; k < op.OpCount; k++)
            {
                var kind = op.GetOpKind(k);
                if (kind is OpCodeOperandKind.r64_or_mem or OpCodeOperandKind.r64_reg or OpCodeOperandKind.r64_opcode or OpCodeOperandKind.r64_rm
                    or OpCodeOperandKind.cr_reg or OpCodeOperandKind.dr_reg or OpCodeOperandKind.tr_reg or OpCodeOperandKind.seg_reg
                    or OpCodeOperandKind.imm64) skip = true;
                if (kind is OpCodeOperandKind.r8_or_mem or OpCodeOperandKind.r16_or_mem or OpCodeOperandKind.r32_or_mem) hasRm = true;
                if (kind is OpCodeOperandKind.br16_1 or OpCodeOperandKind.br32_1 or OpCodeOperandKind.br16_2 or OpCodeOperandKind.br32_4) branch = true;
            }
            if (code.Mnemonic() == Mnemonic.Pop && op.GetOpKind(0) is OpCodeOperandKind.es or OpCodeOperandKind.cs or OpCodeOperandKind.ss or OpCodeOperandKind.ds
                or OpCodeOperandKind.fs or OpCodeOperandKind.gs) skip = true;   // would load a random selector
            if (skip || branch && op.OperandSize == 16) continue;                 // 16-bit branches truncate EIP
            if (hasRm)
            {
                Add(forms, code, op, Variant.Reg);
                Add(forms, code, op, Variant.Mem32);
                if (op.CanUseLockPrefix) Add(forms, code, op, Variant.Mem32, locked: true);
                if (A16.Contains(code.Mnemonic())) Add(forms, code, op, Variant.Mem16);
            }
            else if (code.Mnemonic() == Mnemonic.Lea) { Add(forms, code, op, Variant.Mem32); Add(forms, code, op, Variant.Mem16); }
            else Add(forms, code, op, Enumerable.Range(0, op.OpCount).Any(k => op.GetOpKind(k) is OpCodeOperandKind.mem) ? Variant.Mem32 : Variant.Reg);
        }
        AddRaw(forms);
    }

    private enum Variant { Reg, Mem32, Mem16 }

    private static void Add(List<DiffForm> forms, Code code, OpCodeInfo op, Variant v, bool locked = false)
    {
        string name = "c32 " + code + v switch { Variant.Mem32 => "/m", Variant.Mem16 => "/m16", _ => "" } + (locked ? "/lock" : "");
        var mnem = code.Mnemonic();
        Register Reg(int size, int nth) => size switch
        {
            1 => new[] { Register.BL, Register.DH, Register.CH }[nth],
            2 => new[] { Register.BX, Register.SI, Register.DI }[nth],
            _ => new[] { Register.EBX, Register.ESI, Register.EDI }[nth],
        };
        var memOp = v == Variant.Mem16 ? new MemoryOperand(Register.BP, DiffForms.MemDisp) : new MemoryOperand(Register.EBP, DiffForms.MemDisp);
        byte[] Encode(ulong rip, long imm)
        {
            var ins = DiffForms.Create(code, op, v != Variant.Reg, Reg, imm, rip, memOp, CompatHost.Data + BaseOffset + DiffForms.MemDisp, 32);
            if (locked) ins.HasLockPrefix = true;
            var w = new DiffForms.CodeWriterImpl();
            Encoder.Create(32, w).Encode(ins, rip);
            return w.ToArray();
        }
        bool branch = false;
        OpCodeOperandKind? immKind = null;
        for (int k = 0; k < op.OpCount; k++)
        {
            var kind = op.GetOpKind(k);
            if (kind is OpCodeOperandKind.imm8 or OpCodeOperandKind.imm8sex16 or OpCodeOperandKind.imm8sex32 or OpCodeOperandKind.imm16
                or OpCodeOperandKind.imm32) immKind ??= kind;
            if (kind is OpCodeOperandKind.br32_1 or OpCodeOperandKind.br32_4 or OpCodeOperandKind.br16_1) branch = true;
        }
        var form = new DiffForm { Name = name, Encode = Encode, Branch = branch, Compat = true };
        if (immKind is { } ik) form.Imms = mnem is Mnemonic.Aam or Mnemonic.Aad ? [10, 16, 1, 7, 0xFF, 0x80] : DiffForms.Imms(ik, mnem);
        var pins = new List<Action<DiffCase>> { c => Common(c, v) };
        if (mnem is Mnemonic.Bt or Mnemonic.Bts or Mnemonic.Btr or Mnemonic.Btc && v != Variant.Reg && immKind is null)
            pins.Add(c => c.Gpr[Reg32.Ebx] = (ulong)((long)c.Gpr[Reg32.Ebx] % 4000));
        if (mnem is Mnemonic.Div or Mnemonic.Idiv)
        {
            bool signed = mnem == Mnemonic.Idiv;
            int size = DiffForms.SizeOf(op.GetOpKind(0));
            form.ExpectFault = (c, data) => DivFaults(c, data, size, v != Variant.Reg, signed) ? Vec.DE : -1;
            pins.Add(c =>
            {
                if ((c.Gpr[11] & 3) == 0) return;
                c.Gpr[2] = signed ? 0 - ((c.Gpr[0] >> (size == 4 ? 31 : 63)) & 1) : 0;
                if (size == 1) c.Gpr[0] = (c.Gpr[0] & ~0xFF00UL) | (signed && (c.Gpr[0] & 0x80) != 0 ? 0xFF00UL : 0);
                if (size == 2) c.Gpr[2] = signed && (c.Gpr[0] & 0x8000) != 0 ? 0xFFFFUL : 0UL;
            });
        }
        if (mnem is Mnemonic.Lar or Mnemonic.Lsl or Mnemonic.Verr or Mnemonic.Verw)
        {
            pins.Add(c => { foreach (int r in (ReadOnlySpan<int>)[3, 6, 7]) c.Gpr[r] = (c.Gpr[r] & ~0xFFFFUL) | Selectors.Pick(c.Gpr[r], mnem); });
            form.PinMemory = (c, data) => BitConverter.TryWriteBytes(data.AsSpan((int)(BaseOffset + DiffForms.MemDisp)),
                                                                     Selectors.Pick(c.Gpr[12], mnem));
        }
        form.Pin = (c, h) => { foreach (var p in pins) p(c); };
        forms.Add(form);
    }

    private static class Reg32 { public const int Ebx = 3; }

    /// <summary>Pins shared by every compatibility form: the memory base, the stack, and (16-bit addresses) BP.</summary>
    private static void Common(DiffCase c, Variant v)
    {
        c.Gpr[Reg.RSP] = CompatHost.Data + CompatHost.StackOffset;
        c.Gpr[Reg.RBP] = (c.Gpr[Reg.RBP] & (v == Variant.Mem16 ? ~0xFFFFUL : 0xFFFFFFFF00000000UL)) | (CompatHost.Data + BaseOffset);
    }

    private static bool DivFaults(DiffCase c, byte[] data, int size, bool mem, bool signed)
    {
        // DiffForms.DivFaults reads the divisor from RBX or the memory operand at the same offset
        var op = (size switch { 1 => Code.Div_rm8, 2 => Code.Div_rm16, _ => Code.Div_rm32 }).ToOpCode();
        return DiffForms.DivFaults(c, data, op, mem, hi: false, signed);
    }

    /// <summary>Instructions built from raw bytes: ENTER, strings with 32- and 16-bit addresses, XLAT, 16-bit-address LOOP/JCXZ.</summary>
    private static void AddRaw(List<DiffForm> forms)
    {
        void Raw(string name, byte[] bytes, bool strings = false, bool a16 = false, bool branch = false, Action<DiffCase, byte[]>? pinMemory = null)
            => forms.Add(new DiffForm
            {
                Name = "c32 " + name, Compat = true, Branch = branch, PinMemory = pinMemory,
                Encode = (_, _) => bytes,
                Pin = (c, _) =>
                {
                    Common(c, a16 ? Variant.Mem16 : Variant.Mem32);
                    if (strings)
                    {
                        ulong keep = a16 ? c.Gpr[12] & 0xFFFF0000UL : 0;   // ignored with 16-bit addresses
                        c.Gpr[Reg.RSI] = keep | (CompatHost.Data + 0x400 + (c.Gpr[8] & 7));
                        c.Gpr[Reg.RDI] = keep | (CompatHost.Data + 0xA00 + (c.Gpr[10] & 7));
                        c.Gpr[Reg.RCX] = ((c.Gpr[9] & 3) == 0 ? 0 : c.Gpr[Reg.RCX] & 15) | (a16 ? c.Gpr[13] & 0xFFFF0000UL : 0);
                    }
                    if (name.StartsWith("xlat")) c.Gpr[Reg.RBX] = (a16 ? c.Gpr[12] & 0xFFFF0000UL : 0) | (CompatHost.Data + 0x100);
                },
            });
        Raw("enter 16,0", [0xC8, 0x10, 0x00, 0x00]);
        Raw("enter 8,1", [0xC8, 0x08, 0x00, 0x01]);
        Raw("enter 4,3", [0xC8, 0x04, 0x00, 0x03]);
        Raw("enterw 6,2", [0x66, 0xC8, 0x06, 0x00, 0x02]);
        // POPF at CPL 3: status flags and DF load, IF/IOPL are ignored; TF, NT and AC are cleared in the
        // popped value (a trap or alignment checking would reach the host process, not the test)
        static void SafeFlags(DiffCase c, byte[] data)
        {
            int at = (int)CompatHost.StackOffset;
            uint v = BitConverter.ToUInt32(data, at) & ~(0x100u | 0x4000u | 0x40000u);
            BitConverter.TryWriteBytes(data.AsSpan(at), v);
        }
        Raw("popfd", [0x9D], pinMemory: SafeFlags);
        Raw("popfw", [0x66, 0x9D], pinMemory: SafeFlags);
        Raw("pushfd; popfd", [0x9C, 0x9D]);
        Raw("xlatb", [0xD7]);
        Raw("xlatb a16", [0x67, 0xD7], a16: true);
        foreach (var (n, b) in new (string, byte)[] { ("movs", 0xA4), ("cmps", 0xA6), ("stos", 0xAA), ("lods", 0xAC), ("scas", 0xAE) })
        {
            foreach (var (sz, pre, inc) in new (string, byte[], int)[] { ("b", [], 0), ("w", [0x66], 1), ("d", [], 1) })
            {
                byte opc = (byte)(b + inc);
                Raw($"{n}{sz}", [.. pre, opc], strings: true);
                Raw($"rep {n}{sz}", [0xF3, .. pre, opc], strings: true);
                if (n is "cmps" or "scas") Raw($"repne {n}{sz}", [0xF2, .. pre, opc], strings: true);
                Raw($"rep {n}{sz} a16", [0x67, 0xF3, .. pre, opc], strings: true, a16: true);
            }
        }
    }
}
