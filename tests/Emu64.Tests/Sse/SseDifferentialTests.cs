using StringBuilder = System.Text.StringBuilder;
using Iced.Intel;
using Emu64.Cpu;
using Emu64.Isa;
using Xunit.Abstractions;

namespace Emu64.Tests.Sse;

/// <summary>
/// Every SSE/SSE2 instruction form the interpreter implements runs on the host CPU and in the emulator
/// with the same inputs; XMM0..15, the general registers, the status flags, MXCSR and the memory
/// buffer must agree exactly. Register and memory variants, 1,000+ cases each (boundary and seeded
/// random values; SSE_SEED and SSE_CASES environment variables change the seed and count).
/// </summary>
public class SseDifferentialTests(ITestOutputHelper output)
{
    private static readonly int Seed = int.TryParse(Environment.GetEnvironmentVariable("SSE_SEED"), out var s) ? s : 20261122;
    private static readonly int Cases = int.TryParse(Environment.GetEnvironmentVariable("SSE_CASES"), out var c) ? c : 1000;

    /// <summary>Legacy-encoded SSE/SSE2 codes on XMM registers (the MMX-register forms need the x87/MMX unit).</summary>
    public static IEnumerable<Code> SseCodes()
    {
        foreach (var code in Enum.GetValues<Code>())
        {
            if (code == Code.INVALID || code.Encoding() != EncodingKind.Legacy) continue;
            var f = code.CpuidFeatures();
            if (!f.Contains(CpuidFeature.SSE) && !f.Contains(CpuidFeature.SSE2) && !f.Contains(CpuidFeature.FXSR)) continue;
            var op = code.ToOpCode();
            bool mmx = false;
            for (int k = 0; k < op.OpCount; k++) mmx |= op.GetOpKind(k) is OpCodeOperandKind.mm_reg or OpCodeOperandKind.mm_rm or OpCodeOperandKind.mm_or_mem;
            if (mmx) continue;
            yield return code;
        }
    }

    /// <summary>Forms that cannot run in the stub: they need state the block does not hold.</summary>
    private static bool Differential(Code c) => c is not (Code.Fxsave_m512byte or Code.Fxsave64_m512byte
        or Code.Fxrstor_m512byte or Code.Fxrstor64_m512byte);

    public static TheoryData<string> Forms()
    {
        var d = new TheoryData<string>();
        foreach (var c in SseCodes()) if (HandlerTable.IsImplemented(c) && Differential(c)) d.Add(c.ToString());
        return d;
    }

    [Fact]
    public void Every_SSE_and_SSE2_form_on_XMM_registers_is_implemented()
    {
        var missing = SseCodes().Where(c => !HandlerTable.IsImplemented(c)).ToList();
        output.WriteLine($"{SseCodes().Count()} SSE/SSE2 forms, missing: {string.Join(", ", missing)}");
        Assert.True(missing.Count == 0, "not implemented: " + string.Join(", ", missing));
    }

    [Theory]
    [MemberData(nameof(Forms))]
    public void The_form_matches_the_host_CPU_on_boundary_and_random_inputs(string form)
    {
        if (!NativeRunner.Supported) { output.WriteLine("SKIPPED: the host is not x86-64 Linux"); return; }
        var code = Enum.Parse<Code>(form);
        var variants = Variants(code).ToList();
        Assert.NotEmpty(variants);
        int total = 0;
        foreach (var (insns, cases) in variants)
        {
            int per = Math.Max(1, (cases + insns.Count - 1) / insns.Count);
            foreach (var bytes in insns) total += RunCases(code, bytes, per, Seed ^ total ^ bytes.Length * 7919);
        }
        output.WriteLine($"{form}: {variants.Count} variants, {total} cases");
    }

    private int RunCases(Code code, byte[] bytes, int count, int seed)
    {
        var native = new NativeRunner(bytes);
        var emu = new EmuRunner(bytes);
        Assert.Equal(code, emu.Code);
        var gen = new SseInputs(seed);
        var lane = PreferredLane(code);
        for (int n = 0; n < count; n++)
        {
            var input = new SseState();
            for (int k = 0; k < 16; k++) input.SetXmm(k, gen.X(lane));
            for (int k = 0; k < 16; k++) input.SetGpr(k, gen.Int64());
            for (int k = 0; k < SseState.MemSize / 16; k++)
            {
                var v = gen.X(lane);
                input.SetMem(2 * k, (ulong)v);
                input.SetMem(2 * k + 1, (ulong)(v >> 64));
            }
            input.Mxcsr = gen.Mxcsr();
            input.Flags = gen.Flags();
            if (code == Code.Ldmxcsr_m32) input.SetMem(0, gen.Mxcsr() | ((ulong)gen.Mxcsr() << 32));   // [rsi] and [rsi+4]
            var hw = input;
            var em = input;
            native.Run(ref hw);
            int fault = emu.Run(ref em);
            if (IsApproximation(code)) AcceptWithinBound(code, bytes, input, hw, ref em);
            string? diff = fault >= 0 ? $"emulator raised {Vec.Name(fault)}" : Compare(hw, em);
            if (diff != null)
                Assert.Fail($"{Disasm(bytes)} case {n}: {diff}\ninput:\n{Dump(input)}\nhost:\n{Dump(hw)}\nemulator:\n{Dump(em)}");
        }
        return count;
    }

    private static bool IsApproximation(Code c) => c is Code.Rcpps_xmm_xmmm128 or Code.Rcpss_xmm_xmmm32
        or Code.Rsqrtps_xmm_xmmm128 or Code.Rsqrtss_xmm_xmmm32;

    /// <summary>
    /// RCP/RSQRT bits are implementation-specific (the SDM bounds the relative error by 1.5·2^-12): a
    /// result lane that differs from the host's is accepted only when both are normal numbers within
    /// that bound of the exact value; special cases, other lanes and MXCSR must still match exactly.
    /// </summary>
    private static void AcceptWithinBound(Code code, byte[] bytes, in SseState input, in SseState hw, ref SseState em)
    {
        bool scalar = code is Code.Rcpss_xmm_xmmm32 or Code.Rsqrtss_xmm_xmmm32;
        bool rsqrt = code is Code.Rsqrtps_xmm_xmmm128 or Code.Rsqrtss_xmm_xmmm32;
        Decoder.Create(64, bytes).Decode(out var ins);
        int dst = ins.Op0Register - Register.XMM0;
        UInt128 src;
        if (ins.Op1Kind == OpKind.Register) src = input.Xmm(ins.Op1Register - Register.XMM0);
        else
        {
            int disp = (int)ins.MemoryDisplacement64;
            src = 0;
            for (int b = 15; b >= 0; b--) src = (src << 8) | ((input.Mem((disp + b) / 8) >> (8 * ((disp + b) % 8))) & 0xFF);
        }
        UInt128 h = hw.Xmm(dst), e = em.Xmm(dst);
        for (int k = 0; k < (scalar ? 1 : 4); k++)
        {
            uint hv = (uint)(h >> (32 * k)), ev = (uint)(e >> (32 * k)), x = (uint)(src >> (32 * k));
            if (hv == ev || !Normal(hv) || !Normal(ev) || !Normal(x)) continue;
            double xv = BitConverter.UInt32BitsToSingle(x);
            double exact = rsqrt ? 1 / Math.Sqrt(xv) : 1 / xv;
            double bound = 1.5 * Math.Pow(2, -12);
            if (Math.Abs(BitConverter.UInt32BitsToSingle(hv) - exact) <= bound * Math.Abs(exact)
                && Math.Abs(BitConverter.UInt32BitsToSingle(ev) - exact) <= bound * Math.Abs(exact))
            {
                UInt128 mask = (UInt128)0xFFFFFFFFu << (32 * k);
                e = (e & ~mask) | (h & mask);
            }
        }
        em.SetXmm(dst, e);
    }

    private static bool Normal(uint f) => ((f >> 23) & 0xFF) is > 0 and < 0xFF;

    private static string? Compare(in SseState hw, in SseState em)
    {
        var sb = new StringBuilder();
        for (int k = 0; k < 16; k++) if (hw.Xmm(k) != em.Xmm(k)) sb.Append($"xmm{k} ");
        for (int k = 0; k < 16; k++)
            if (k is not (Reg.RSP or Reg.RBP or Reg.RSI or Reg.RDI) && hw.Gpr(k) != em.Gpr(k)) sb.Append($"{Reg.Names64[k]} ");
        if ((hw.Flags & 0x8D5) != (em.Flags & 0x8D5)) sb.Append("rflags ");
        if (hw.Mxcsr != em.Mxcsr) sb.Append("mxcsr ");
        for (int k = 0; k < SseState.MemSize / 8; k++) if (hw.Mem(k) != em.Mem(k)) sb.Append($"mem+{8 * k} ");
        return sb.Length == 0 ? null : "differs in " + sb.ToString();
    }

    private static string Dump(in SseState s)
    {
        var sb = new StringBuilder();
        for (int k = 0; k < 4; k++) sb.Append($"  xmm{k}={s.Xmm(k):X32}\n");
        sb.Append($"  rax={s.Gpr(0):X16} rcx={s.Gpr(1):X16} flags={s.Flags & 0x8D5:X3} mxcsr={s.Mxcsr:X8}\n");
        sb.Append($"  mem={s.Mem(1):X16}{s.Mem(0):X16}\n");
        return sb.ToString();
    }

    private static string Disasm(byte[] bytes)
    {
        var d = Decoder.Create(64, bytes);
        d.Decode(out var i);
        return $"{i} [{Convert.ToHexString(bytes)}]";
    }

    internal static SseInputs.Lane PreferredLane(Code c)
    {
        string n = c.ToString().ToLowerInvariant().Split('_')[0];
        int ps = Math.Max(n.IndexOf("ps", StringComparison.Ordinal), n.IndexOf("ss", StringComparison.Ordinal));
        int pd = Math.Max(n.IndexOf("pd", StringComparison.Ordinal), n.IndexOf("sd", StringComparison.Ordinal));
        if (n.StartsWith("cvt"))   // the source kind comes first: cvtss2sd, cvtps2pd, cvtsd2ss
        {
            string src = n[3..];
            if (src.StartsWith("ss") || src.StartsWith("ps") || src.StartsWith("tss") || src.StartsWith("tps")) return SseInputs.Lane.F32;
            if (src.StartsWith("sd") || src.StartsWith("pd") || src.StartsWith("tsd") || src.StartsWith("tpd")) return SseInputs.Lane.F64;
            return SseInputs.Lane.Int;
        }
        if (n.StartsWith('p') || n.StartsWith("mov")) return SseInputs.Lane.Int;
        if (pd >= 0) return SseInputs.Lane.F64;
        if (ps >= 0) return SseInputs.Lane.F32;
        return SseInputs.Lane.Int;
    }

    /// <summary>Operand choices of one variant: XMM and GPR registers for the ModRM.reg and ModRM.rm fields, or memory at [rsi+disp].</summary>
    private sealed record Choice(string Name, Register XReg, Register XRm, Register GReg, Register GRm, bool Mem, int Disp, int Share);

    private static readonly Choice[] Choices =
    [
        new("registers", Register.XMM1, Register.XMM2, Register.RAX, Register.RCX, false, 0, 1),
        new("memory", Register.XMM1, Register.XMM2, Register.RAX, Register.RCX, true, 0, 1),
        new("one register", Register.XMM1, Register.XMM1, Register.RCX, Register.RCX, false, 0, 4),
        new("REX registers", Register.XMM9, Register.XMM14, Register.R10, Register.R11, false, 0, 4),
        new("misaligned memory", Register.XMM12, Register.XMM2, Register.R9, Register.RCX, true, 4, 4),
    ];

    /// <summary>Forms whose 16-byte memory operand need not be aligned.</summary>
    private static bool UnalignedOk(Code c) => c is Code.Movups_xmm_xmmm128 or Code.Movups_xmmm128_xmm or Code.Movupd_xmm_xmmm128
        or Code.Movupd_xmmm128_xmm or Code.Movdqu_xmm_xmmm128 or Code.Movdqu_xmmm128_xmm;

    /// <summary>
    /// Encodings of the form for each operand choice; for immediate forms, several immediates including
    /// 0 and every boundary. Each variant is a list of encodings sharing the variant's case budget
    /// (the full budget for the register and [rsi] variants, a quarter for the others).
    /// </summary>
    private static IEnumerable<(List<byte[]> Insns, int Cases)> Variants(Code code)
    {
        var op = code.ToOpCode();
        bool hasImm = false;
        for (int k = 0; k < op.OpCount; k++) hasImm |= op.GetOpKind(k) == OpCodeOperandKind.imm8;
        byte[] imms = hasImm ? [0, 1, 2, 3, 4, 5, 6, 7, 8, 15, 16, 17, 0x1B, 0x4E, 0xB1, 0xE4, 31, 32, 63, 64, 0x80, 0xFF] : [0];
        var seen = new HashSet<string>();
        foreach (var ch in Choices)
        {
            var list = new List<byte[]>();
            foreach (var imm in imms)
            {
                var bytes = Encode(code, ch, imm);
                if (bytes != null && seen.Add(Convert.ToHexString(bytes))) list.Add(bytes);
            }
            if (list.Count > 0) yield return (list, Cases / ch.Share);
        }
    }

    private static byte[]? Encode(Code code, Choice ch, byte imm)
    {
        var op = code.ToOpCode();
        var i = new Instruction { Code = code };
        bool hasRm = false;
        bool mem = ch.Mem;
        Register G32(Register r) => r - Register.RAX + Register.EAX;
        for (int k = 0; k < op.OpCount; k++)
        {
            var kind = op.GetOpKind(k);
            switch (kind)
            {
                case OpCodeOperandKind.xmm_reg: i.SetOpKind(k, OpKind.Register); i.SetOpRegister(k, ch.XReg); break;
                case OpCodeOperandKind.xmm_or_mem: hasRm = true; SetRm(ref i, k, mem, ch.XRm, ch.Disp); break;
                case OpCodeOperandKind.xmm_rm: i.SetOpKind(k, OpKind.Register); i.SetOpRegister(k, ch.XRm); break;
                case OpCodeOperandKind.r32_reg: i.SetOpKind(k, OpKind.Register); i.SetOpRegister(k, G32(ch.GReg)); break;
                case OpCodeOperandKind.r64_reg: i.SetOpKind(k, OpKind.Register); i.SetOpRegister(k, ch.GReg); break;
                case OpCodeOperandKind.r32_or_mem: hasRm = true; SetRm(ref i, k, mem, G32(ch.GRm), ch.Disp); break;
                case OpCodeOperandKind.r64_or_mem: hasRm = true; SetRm(ref i, k, mem, ch.GRm, ch.Disp); break;
                case OpCodeOperandKind.r32_rm: i.SetOpKind(k, OpKind.Register); i.SetOpRegister(k, G32(ch.GRm)); break;
                case OpCodeOperandKind.r64_rm: i.SetOpKind(k, OpKind.Register); i.SetOpRegister(k, ch.GRm); break;
                case OpCodeOperandKind.mem: hasRm = true; if (!mem) return null; SetRm(ref i, k, true, Register.None, ch.Disp); break;
                case OpCodeOperandKind.imm8: i.SetOpKind(k, OpKind.Immediate8); i.Immediate8 = imm; break;
                case OpCodeOperandKind.seg_rDI: if (ch.Mem) return null; i.SetOpKind(k, OpKind.MemorySegRDI); break;
                default: return null;
            }
        }
        if (mem && !hasRm) return null;
        if (mem && ch.Disp % 16 != 0 && i.MemorySize.GetSize() == 16 && !UnalignedOk(code)) return null;
        if (mem && ch.Disp != 0 && code is Code.Fxsave_m512byte or Code.Fxrstor_m512byte) return null;
        var w = new MemoryStream();
        var enc = Encoder.Create(64, new StreamCodeWriter(w));
        if (!enc.TryEncode(i, 0x1000, out _, out _)) return null;
        var bytes = w.ToArray();
        Decoder.Create(64, bytes).Decode(out var back);
        return back.Code == code && back.Length == bytes.Length ? bytes : null;
    }

    private static void SetRm(ref Instruction i, int k, bool mem, Register reg, int disp)
    {
        if (mem)
        {
            i.SetOpKind(k, OpKind.Memory);
            i.MemoryBase = Register.RSI;
            i.MemoryIndexScale = 1;
            i.MemoryDisplacement64 = (ulong)disp;
            i.MemoryDisplSize = disp != 0 ? 1 : 0;
        }
        else { i.SetOpKind(k, OpKind.Register); i.SetOpRegister(k, reg); }
    }
}
