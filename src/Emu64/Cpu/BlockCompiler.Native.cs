using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;

namespace Emu64.Cpu;

/// <summary>
/// The compiled region's native forms: the commonest 64-bit-mode instructions — MOV, ADD, SUB, CMP, AND, OR, XOR and
/// TEST between 32/64-bit registers and immediates, INC, DEC, LEA, and MOV between a 32/64-bit register and memory —
/// emitted as IL of their own instead of a call to their handler, with the guest's general registers held in IL
/// locals across the whole region and the status flags of the last such instruction kept in locals until something
/// can observe them.
///
/// Why: a handler reads and writes guest registers and the lazy-flag fields in the <see cref="Cpu"/> object, and the
/// JIT must keep every one of those loads and stores (any store through a <c>ref</c> may alias them), so the register
/// loop's <c>add rax,rcx; dec rcx; jnz</c> was ~50 host instructions an iteration, mostly memory traffic. In locals the
/// JIT keeps them in host registers.
///
/// The invariant, per register r of the region's set (every register a native form names):
/// <list type="bullet">
/// <item>at every block start, edge and exit of the method the local holds r's value (cpu.R[r] may be older);</item>
/// <item>before anything that is not a native form runs — a handler, a PUSH/POP run, the out-of-line path of a native
/// memory access (a page walk, MMIO, a fault) — every local newer than cpu.R[r] is written back, and the pending
/// flags are stored into the lazy-flag fields exactly as the handler would have stored them; after a handler the
/// locals are stale and are reloaded where next used, and at the block's end;</item>
/// <item>the method's exits to the run loop write every register the region writes back (a fault from a handler or an
/// out-of-line path leaves with the registers already written back).</item>
/// </list>
/// A native memory access takes the same inline fast path as the handlers (<see cref="Mmu.Mmu.HostData"/>'s: canonical,
/// within a page, the fast cache's live entry with a host frame, its hit counted as the TLB model counts it); a miss first calls
/// the model's miss path (<see cref="Native.DataMiss"/>: the translation the handler would make, and the host address when the
/// access goes to RAM) and goes on in place; everything else goes out of line through the handlers' own slow path with InsnRip,
/// RIP and the retired count exact (reusing a translation the call made), so faults, MMIO, watchpoints and stores into code behave
/// as interpreted; every counter stays the same.
/// </summary>
internal sealed unsafe class NativeRegion
{
    private static readonly FieldInfo CfField = typeof(Cpu).GetField(nameof(Cpu._cf), BindingFlags.Instance | BindingFlags.NonPublic)!;
    private static readonly FieldInfo LazyOpField = typeof(Cpu).GetField(nameof(Cpu._lazyOp), BindingFlags.Instance | BindingFlags.NonPublic)!;
    private static readonly FieldInfo LazySizeField = typeof(Cpu).GetField(nameof(Cpu._lazySize), BindingFlags.Instance | BindingFlags.NonPublic)!;
    private static readonly FieldInfo LazyAField = typeof(Cpu).GetField(nameof(Cpu._lazyA), BindingFlags.Instance | BindingFlags.NonPublic)!;
    private static readonly FieldInfo LazyBField = typeof(Cpu).GetField(nameof(Cpu._lazyB), BindingFlags.Instance | BindingFlags.NonPublic)!;
    private static readonly FieldInfo LazyResField = typeof(Cpu).GetField(nameof(Cpu._lazyRes), BindingFlags.Instance | BindingFlags.NonPublic)!;
    private static readonly MethodInfo SegBaseMethod = typeof(Native).GetMethod(nameof(Native.SegBase))!;
    private static readonly MethodInfo NativeConditionMethod = typeof(Native).GetMethod(nameof(Native.Condition))!;

    /// <summary>Instructions emitted in native form (diagnostics, tests).</summary>
    public static long Emitted;

    private enum Form : byte
    {
        None, MovRR, MovRI, Alu, AluImm, IncDec, Lea, Load, Store, StoreImm, Extend, AluMem,
        /// <summary>SHL/SHR/SAR r32/r64, imm8 (Shape.Shift), IMUL r, r[, imm] (Alt: with the immediate), ADC/SBB r, r/imm.</summary>
        Shift, Imul, Carry,
        /// <summary>SETcc r8, CMOVcc r, r: read the flags, keep them.</summary>
        Setcc, Cmov,
        /// <summary>PUSH r64 and POP r64: a stack access through the same inline path as a load or store.</summary>
        Push, Pop,
        /// <summary>NOP (any form, PAUSE, ENDBR64, LFENCE: DataMove.Nop's mnemonics): nothing at all.</summary>
        Nop,
    }

    private enum ShiftKind : byte { Shl, Shr, Sar }

    /// <summary>
    /// A native form, by its handler's name: its ALU operation and operand size where they are fixed, Alt (INC not DEC, MOVSX not
    /// MOVZX, IMUL with an immediate), and a shift's kind.
    /// </summary>
    private readonly record struct Shape(Form Form, Isa.Alu.Op Op, int Size, bool Alt = false, ShiftKind Shift = default);

    /// <summary>The handler classes whose methods have native forms (a name is looked up only in these).</summary>
    private static readonly HashSet<Type> NativeClasses = [typeof(Isa.Alu), typeof(Isa.DataMove), typeof(Isa.Shift), typeof(Isa.MulDiv), typeof(Isa.Stack)];

    private static readonly Dictionary<string, Shape> Shapes = BuildShapes();

    private static Dictionary<string, Shape> BuildShapes()
    {
        var s = new Dictionary<string, Shape>
        {
            ["MovRR64"] = new(Form.MovRR, default, 8), ["MovRR32"] = new(Form.MovRR, default, 4),
            ["MovRI64"] = new(Form.MovRI, default, 8), ["MovRI32"] = new(Form.MovRI, default, 4),
            ["MovRM64"] = new(Form.Load, default, 8), ["MovRM32"] = new(Form.Load, default, 4),
            ["MovMR64"] = new(Form.Store, default, 8), ["MovMR32"] = new(Form.Store, default, 4),
            ["IncR64"] = new(Form.IncDec, default, 8, true), ["IncR32"] = new(Form.IncDec, default, 4, true),
            ["DecR64"] = new(Form.IncDec, default, 8), ["DecR32"] = new(Form.IncDec, default, 4),
            ["Lea"] = new(Form.Lea, default, 0),
            ["Mov"] = new(Form.StoreImm, default, 0),
            ["Movzx"] = new(Form.Extend, default, 0), ["Movsx"] = new(Form.Extend, default, 0, Alt: true),
            ["ShlRI64"] = new(Form.Shift, default, 8, Shift: ShiftKind.Shl), ["ShlRI32"] = new(Form.Shift, default, 4, Shift: ShiftKind.Shl),
            ["ShrRI64"] = new(Form.Shift, default, 8, Shift: ShiftKind.Shr), ["ShrRI32"] = new(Form.Shift, default, 4, Shift: ShiftKind.Shr),
            ["SarRI64"] = new(Form.Shift, default, 8, Shift: ShiftKind.Sar), ["SarRI32"] = new(Form.Shift, default, 4, Shift: ShiftKind.Sar),
            ["ImulRR64"] = new(Form.Imul, default, 8), ["ImulRR32"] = new(Form.Imul, default, 4),
            ["ImulRRI64"] = new(Form.Imul, default, 8, Alt: true), ["ImulRRI32"] = new(Form.Imul, default, 4, Alt: true),
            ["Adc"] = new(Form.Carry, Isa.Alu.Op.Adc, 0), ["Sbb"] = new(Form.Carry, Isa.Alu.Op.Sbb, 0),
            ["Setcc"] = new(Form.Setcc, default, 1), ["Cmov"] = new(Form.Cmov, default, 0),
            ["PushR64"] = new(Form.Push, default, 8), ["PopR64"] = new(Form.Pop, default, 8),
            ["Nop"] = new(Form.Nop, default, 0),
        };
        // the generic two-operand handlers (Alu.Binary) with a memory operand or a byte/word register: Shape.Size from the instruction
        foreach (var op in new[] { Isa.Alu.Op.Add, Isa.Alu.Op.Sub, Isa.Alu.Op.Cmp, Isa.Alu.Op.And, Isa.Alu.Op.Or, Isa.Alu.Op.Xor, Isa.Alu.Op.Test })
            s[op.ToString()] = new(Form.AluMem, op, 0);
        foreach (var op in new[] { Isa.Alu.Op.Add, Isa.Alu.Op.Sub, Isa.Alu.Op.Cmp, Isa.Alu.Op.And, Isa.Alu.Op.Or, Isa.Alu.Op.Xor, Isa.Alu.Op.Test })
            foreach (int size in new[] { 8, 4 })
            {
                s[$"{op}RR{size * 8}"] = new(Form.Alu, op, size);
                s[$"{op}RI{size * 8}"] = new(Form.AluImm, op, size);
            }
        return s;
    }

    /// <summary>The native form of instruction <paramref name="d"/> run by handler <paramref name="mi"/>, if it has one.</summary>
    private static Shape ShapeOf(ref Insn d, MethodInfo? mi)
    {
        if (mi == null || !Shapes.TryGetValue(mi.Name, out var s)) return default;
        if (!NativeClasses.Contains(mi.DeclaringType!)) return default;
        if (d.Prefix != 0) return default;
        bool gpr0 = d.K0 == Opnd.Reg && d.R0 < 16, gpr1 = d.K1 == Opnd.Reg && d.R1 < 16;
        switch (s.Form)
        {
            case Form.Shift or Form.Imul or Form.Push or Form.Pop:
                // the fast forms' handlers (chosen at decode for exactly these operands: a general register, 32/64-bit)
                return gpr0 && (s.Form != Form.Imul || gpr1) ? s : default;
            case Form.Carry:
                // ADC/SBB r32/r64, r/imm (the generic handler: anything else, memory or 8/16-bit, stays a handler)
                if (!gpr0 || d.Size is not (4 or 8) || d.K2 != Opnd.None || !(gpr1 && d.Size1 == d.Size || d.K1 == Opnd.Imm)) return default;
                return s with { Size = d.Size };
            case Form.Setcc:
                return gpr0 && d.Size == 1 && d.K1 == Opnd.None ? s : default;
            case Form.Cmov:
                return gpr0 && gpr1 && d.Size is 4 or 8 && d.Size1 == d.Size && d.K2 == Opnd.None ? s with { Size = d.Size } : default;
            case Form.Nop:
                return mi.DeclaringType == typeof(Isa.DataMove) ? s : default;   // (the other classes' Nop may mean something else)
            case Form.StoreImm:
                // the generic MOV: MOV m, imm; MOV m, r8/r16 and MOV r8/r16, m with a low register (the fast forms have the 32/64-bit ones)
                if (d.K2 != Opnd.None || d.Size is not (1 or 2 or 4 or 8)) return default;
                if (d.K0 == Opnd.Mem && d.K1 == Opnd.Imm && PlainMem(ref d)) return s with { Size = d.Size };
                // (a register operand numbered below 16 may be a segment or control register: Iced's kind decides)
                if (d.K0 == Opnd.Mem && gpr1 && Iced.Intel.RegisterExtensions.IsGPR(d.I.Op1Register) && d.Size is 1 or 2 && d.Size1 == d.Size && PlainMem(ref d))
                    return new(Form.Store, default, d.Size);
                if (gpr0 && Iced.Intel.RegisterExtensions.IsGPR(d.I.Op0Register) && d.K1 == Opnd.Mem && d.Size is 1 or 2 && d.Size1 == d.Size && PlainMem(ref d))
                    return new(Form.Load, default, d.Size);
                return default;
            case Form.Extend:
                // MOVZX/MOVSX/MOVSXD into a 32/64-bit register from a low register or memory
                if (!gpr0 || d.Size is not (4 or 8) || d.Size1 is not (1 or 2 or 4) || d.K2 != Opnd.None) return default;
                if (!(gpr1 || d.K1 == Opnd.Mem && PlainMem(ref d))) return default;
                return s with { Size = d.Size };
            case Form.AluMem:
            {
                // op r, r/m/imm at any size for CMP/TEST, 32/64-bit for the others (8/16-bit writes merge); CMP/TEST m, r/imm
                if (d.K2 != Opnd.None || d.Size is not (1 or 2 or 4 or 8) || d.Size1 != d.Size && d.K1 != Opnd.Imm) return default;
                bool reads = s.Op is Isa.Alu.Op.Cmp or Isa.Alu.Op.Test;
                bool mem = d.K0 == Opnd.Mem || d.K1 == Opnd.Mem;
                if (mem && !PlainMem(ref d)) return default;
                if (gpr0 && (gpr1 || d.K1 is Opnd.Imm or Opnd.Mem) && (reads || d.Size is 4 or 8)) return s with { Size = d.Size };
                if (d.K0 == Opnd.Mem && reads && (gpr1 || d.K1 == Opnd.Imm)) return s with { Size = d.Size };
                return default;
            }
            case Form.Lea:
                if (d.K0 != Opnd.Reg || d.R0 >= 16 || d.Size is not (4 or 8) || d.AddrSize is not (4 or 8) || !PlainMem(ref d)) return default;
                return s with { Size = d.Size };
            case Form.Load or Form.Store:
                return PlainMem(ref d) ? s : default;
            default:
                return s;
        }
    }

    /// <summary>
    /// The native form instruction <paramref name="k"/> of <paramref name="b"/> is emitted in, or <see cref="Form.None"/> where its handler runs
    /// it (no native form, or part of a run of PUSH/POP: EmitBlock's choice).
    /// </summary>
    private static Shape EmittedShape(Block b, int k, Func<nint, MethodInfo?> handler)
    {
        var mi = handler((nint)b.Insns[k].Exec);
        var s = ShapeOf(ref b.Insns[k], mi);
        return s.Form == Form.None || BlockCompiler.InStackRun(b, k, mi) ? default : s;
    }

    /// <summary>A memory operand the native forms address: base and index general registers (or RIP, or none), a 32/64-bit address.</summary>
    private static bool PlainMem(ref Insn d)
        => (d.Base == Reg.None || d.Base == Reg.Rip || d.Base < 16) && (d.Index == Reg.None || d.Index < 16) && d.AddrSize is 4 or 8 && d.Seg < 6;

    /// <summary>The registers instruction <paramref name="d"/> reads or writes (bit r) in its native form, and those it writes.</summary>
    private static int Uses(ref Insn d, Shape s, out int writes)
    {
        int use = 0;
        writes = 0;
        if (s.Form == Form.Nop) return 0;   // (a NOP's memory operand is never read)
        switch (s.Form)
        {
            case Form.MovRR: use = 1 << d.R0 | 1 << d.R1; writes = 1 << d.R0; break;
            case Form.MovRI: use = writes = 1 << d.R0; break;
            case Form.Alu: use = 1 << d.R0 | 1 << d.R1; writes = s.Op is Isa.Alu.Op.Cmp or Isa.Alu.Op.Test ? 0 : 1 << d.R0; break;
            case Form.AluImm: use = 1 << d.R0; writes = s.Op is Isa.Alu.Op.Cmp or Isa.Alu.Op.Test ? 0 : 1 << d.R0; break;
            case Form.IncDec: use = writes = 1 << d.R0; break;
            case Form.Lea: case Form.Load: use = writes = 1 << d.R0; break;
            case Form.Store: use = 1 << d.R1; break;
            case Form.StoreImm: break;
            case Form.Extend: use = writes = 1 << d.R0; if (d.K1 == Opnd.Reg) use |= 1 << d.R1; break;
            case Form.Shift: case Form.Setcc: use = writes = 1 << d.R0; break;
            case Form.Imul: case Form.Carry: case Form.Cmov:
                use = writes = 1 << d.R0;
                if (d.K1 == Opnd.Reg) use |= 1 << d.R1;
                break;
            case Form.Push: use = 1 << d.R0 | 1 << Reg.RSP; writes = 1 << Reg.RSP; break;
            case Form.Pop: use = writes = 1 << d.R0 | 1 << Reg.RSP; break;
            case Form.AluMem:
                if (d.K0 == Opnd.Reg) { use |= 1 << d.R0; if (s.Op is not (Isa.Alu.Op.Cmp or Isa.Alu.Op.Test)) writes = 1 << d.R0; }
                if (d.K1 == Opnd.Reg) use |= 1 << d.R1;
                break;
        }
        if (d.K0 == Opnd.Mem || d.K1 == Opnd.Mem)
        {
            if (d.Base < 16) use |= 1 << d.Base;
            if (d.Index < 16) use |= 1 << d.Index;
        }
        return use;
    }

    // ---- the region's state -------------------------------------------------------------------------------------

    private readonly ILGenerator _il;
    private readonly LocalBuilder _rip0, _ret0, _mmu, _ptr, _ea;
    private readonly LocalBuilder?[] _reg = new LocalBuilder?[16];
    private readonly int _set, _written;
    private readonly Label _retNull;
    /// <summary>Registers whose local is older than cpu.R (a handler ran since), and whose cpu.R is older than the local.</summary>
    private int _stale, _dirty;

    /// <summary>The status flags of the last native flag-setting instruction, not yet stored into the lazy-flag fields.</summary>
    internal struct Pending
    {
        public bool Live;
        public LazyOp Op;
        public int Size;
        /// <summary>
        /// Where CF is: to be derived from the operands' locals (ADD/SUB, <see cref="EmitCf"/>: no work unless something reads it),
        /// its own local (INC/DEC after an ADD/SUB), 0 (logic), or still in cpu._cf (INC/DEC after a handler).
        /// </summary>
        public CfAt Cf;
        /// <summary>
        /// Flags no lazy operation describes (<see cref="Cpu.SetStatus"/>'s eager form): Op is None, the result in _fres (for ZF,
        /// SF and PF only), CF in _fcf and OF in _fof, as the shift and multiply handlers set them.
        /// </summary>
        public Eager Eager;
        /// <summary>ADC/SBB: Op is Add/Sub for OF, AF, ZF, SF and PF, but CF (in _fcf) took the carry in, so the operands do not order like a compare's.</summary>
        public bool NoOrder;
        /// <summary>
        /// How the operands and result follow from register locals as they are now (the instruction that set the flags, while none of
        /// its registers was written since), or none: what a self-looping block's back edge needs to leave the flags unstored
        /// (<see cref="SelfFlags"/>).
        /// </summary>
        public FlagSource Src;

        /// <summary>The start of a self-looping block: the flags of <paramref name="f"/> if entered by the back edge, else in cpu.</summary>
        public static Pending Of(FlagSource f) => new()
        {
            Live = true, Maybe = true, Src = f, Size = f.Size, Op = LazyOpOf(f.Op), Cf = CfOf(LazyOpOf(f.Op)),
        };
        /// <summary>
        /// At the start of a self-looping block (<see cref="SelfFlags"/>): the flags are <see cref="Src"/> of the register locals when the
        /// block was entered by its own back edge (the runtime local _fromRegs is 1), else already in cpu's lazy-flag fields. Nothing
        /// reads them in that state without settling them first (<see cref="Settle"/>).
        /// </summary>
        public bool Maybe;
    }

    /// <summary>
    /// CMP or TEST of register <see cref="Ra"/> with register <see cref="Rb"/> (or <see cref="Imm"/> when it is -1), or SUB/ADD into
    /// <see cref="Ra"/> (which then holds the result) of <see cref="Rb"/> or <see cref="Imm"/>, at <see cref="Size"/> bytes: flags whose lazy
    /// operands and result are computed again from the registers, while neither register has been written since.
    /// </summary>
    internal readonly record struct FlagSource(Isa.Alu.Op Op, int Size, int Ra, int Rb, ulong Imm)
    {
        public bool Valid => Size != 0;
        public int Registers => 1 << Ra | (Rb >= 0 ? 1 << Rb : 0);
    }
    internal enum CfAt : byte { Cpu, Local, Zero, Operands }

    /// <summary>The lazy operation the flags of a native ALU operation are kept as (Cpu.SetLazy's): ADD, SUB and CMP, or logic.</summary>
    private static LazyOp LazyOpOf(Isa.Alu.Op op) => op switch
    {
        Isa.Alu.Op.Add => LazyOp.Add,
        Isa.Alu.Op.Sub or Isa.Alu.Op.Cmp => LazyOp.Sub,
        _ => LazyOp.Logic,
    };

    /// <summary>Where such flags' CF is: from the operands for ADD and SUB when something needs it (<see cref="EmitCf"/>), 0 after logic.</summary>
    private static CfAt CfOf(LazyOp op) => op == LazyOp.Logic ? CfAt.Zero : CfAt.Operands;
    /// <summary>The eager flag rules: a shift's (ZF from the result, AF clear) and IMUL's (CF = OF = overflow, ZF and AF clear).</summary>
    internal enum Eager : byte { None, Shift, Mul }
    private Pending _flags;
    private readonly LocalBuilder _fa, _fb, _fres, _fcf, _fof;
    /// <summary>1 when the running block was entered by its own back edge with its flags left in registers (<see cref="Pending.Maybe"/>), else 0.</summary>
    private readonly LocalBuilder _fromRegs, _spare;
    /// <summary>Out-of-line paths, emitted after the region's blocks so that the hot path falls straight through.</summary>
    private readonly List<Action> _cold = [];
    /// <summary>The resume points (<see cref="BlockCompiler.ResumeBase"/>): the region's index of the instruction the run loop runs, and where the method goes on.</summary>
    private readonly List<(int Insn, Label At)> _resumes = [];
    private readonly Label _resumeDispatch;

    /// <summary>
    /// What a native memory access reads from the CPU and the MMU (<see cref="EmitAddress"/>), in locals: only a handler or an
    /// out-of-line path can change it, so it is reloaded after those. Declared when the region has a native memory access.
    /// </summary>
    private readonly LocalBuilder? _table, _keyR, _pcid, _epoch, _entry, _la, _lru;

    /// <summary>
    /// The page memo: the access site (a number from <see cref="_sites"/>, 0 for none) whose inline hit was the last data access made,
    /// with that hit's page (<see cref="_mpage"/>), host frame (<see cref="_mhost"/>) and fast entry (<see cref="_mentry"/>). While the
    /// site in <see cref="_msite"/> is the last to have used the data TLB, its modeled entry is still its set's most recent use and its
    /// fast entry still live (only a miss, a handler or an exit can change either, and each leaves <see cref="_msite"/> 0 or another
    /// site's), so the site's next access within that page is the same hit again: counted on the same fast entry, with no slot, tag,
    /// epoch or LRU test. A loop whose one access walks through a page (a sieve's store, a fill) runs the hit in four host instructions.
    /// </summary>
    private readonly LocalBuilder? _msite, _mpage, _mhost, _mentry;
    private int _sites;
    /// <summary>Whether a handler ran since the locals above were loaded.</summary>
    private bool _mmuStale;

    /// <summary>
    /// Where the method's entry starts loading its state from cpu (after the warm-up test): a direct resume point
    /// (<see cref="Native.DataMiss"/>'s host address) is entered by a branch there with the entry argument set to the point, as the
    /// run loop would enter it (BlockCompiler.Resume runs nothing first for it), without leaving the method.
    /// </summary>
    internal Label? Reenter;

    /// <summary>
    /// The edges' view of the run loop (<see cref="Machine.ChainMustLeave"/>, the armed same-page fetch), in one local: the retired
    /// count from which an edge must look closer (<see cref="EmitEdgeLimit"/>), 0 when the fetch entry is not armed for the region's
    /// page and frame. Only a handler or an out-of-line path changes what it comes from, so it is reloaded after those.
    /// </summary>
    private readonly LocalBuilder _lim, _machine;
    private readonly ulong _headPhys;
    private bool _edgeStale;
    /// <summary>The block being emitted: its offset from the head (rip0 plus it is its RIP) and its page's frame (<see cref="BlockStart"/>).</summary>
    private ulong _pageStart, _pageFrame;

    private readonly LocalBuilder _insns;
    private Func<nint, MethodInfo?> _handler = _ => null;

    private NativeRegion(ILGenerator il, int set, int written, bool memory, LocalBuilder rip0, LocalBuilder ret0, LocalBuilder mmu,
        LocalBuilder machine, LocalBuilder insns, ulong headPhys, Label retNull)
    {
        _insns = insns;
        _machine = machine;
        _headPhys = headPhys;
        _pageFrame = headPhys & ~0xFFFUL;
        _lim = il.DeclareLocal(typeof(ulong));
        if (memory)
        {
            _table = il.DeclareLocal(typeof(Mmu.Mmu.FastEntry).MakeByRefType());
            _keyR = il.DeclareLocal(typeof(int));
            _pcid = il.DeclareLocal(typeof(ulong));
            _epoch = il.DeclareLocal(typeof(ulong));
            _lru = il.DeclareLocal(typeof(Mmu.LruSet));
            _entry = il.DeclareLocal(typeof(Mmu.Mmu.FastEntry).MakeByRefType());
            _la = il.DeclareLocal(typeof(ulong));
            _msite = il.DeclareLocal(typeof(int));
            _mpage = il.DeclareLocal(typeof(ulong));
            _mhost = il.DeclareLocal(typeof(byte*));
            _mentry = il.DeclareLocal(typeof(Mmu.Mmu.FastEntry).MakeByRefType());
        }
        _resumeDispatch = il.DefineLabel();
        _il = il; _set = set; _written = written; _rip0 = rip0; _ret0 = ret0; _mmu = mmu; _retNull = retNull;
        for (int r = 0; r < 16; r++)
            if ((set >> r & 1) != 0) _reg[r] = il.DeclareLocal(typeof(ulong));
        _ptr = il.DeclareLocal(typeof(byte*));
        _ea = il.DeclareLocal(typeof(ulong));   // the effective address of the access whose out-of-line path runs (read right after it)
        _fa = il.DeclareLocal(typeof(ulong));
        _fb = il.DeclareLocal(typeof(ulong));
        _fres = il.DeclareLocal(typeof(ulong));
        _fcf = il.DeclareLocal(typeof(ulong));
        _fof = il.DeclareLocal(typeof(ulong));
        _fromRegs = il.DeclareLocal(typeof(int));
        _spare = il.DeclareLocal(typeof(ulong));
    }

    /// <summary>The native state of a region whose blocks are 64-bit (null otherwise: such a region is one block, emitted as before).</summary>
    internal static NativeRegion? For(ILGenerator il, Block[] region, Func<nint, MethodInfo?> handler, LocalBuilder rip0, LocalBuilder ret0,
        LocalBuilder mmu, LocalBuilder machine, LocalBuilder insns, Label retNull)
    {
        int set = 0, written = 0;
        bool memory = false;
        foreach (var b in region)
        {
            if (b.Bitness != 64) return null;
            for (int k = 0; k < b.Count; k++)
            {
                var s = EmittedShape(b, k, handler);
                if (s.Form == Form.None) continue;   // only what is emitted counts
                set |= Uses(ref b.Insns[k], s, out int w);
                written |= w;
                memory |= (b.Insns[k].K0 == Opnd.Mem || b.Insns[k].K1 == Opnd.Mem && s.Form != Form.Lea) && s.Form != Form.Nop || s.Form is Form.Push or Form.Pop;
            }
        }
        return new NativeRegion(il, set, written, memory, rip0, ret0, mmu, machine, insns, region[0].Phys, retNull) { _handler = handler };
    }

    /// <summary>The method's prologue (before it branches to its entry block): every register of the set into its local.</summary>
    internal void Prologue()
    {
        for (int r = 0; r < 16; r++)
            if (_reg[r] != null) { LoadCpuReg(r); _il.Emit(OpCodes.Stloc, _reg[r]!); }
        _stale = _dirty = 0;
        _flags = default;
        LoadMmuState();
        ForgetPage();
        _il.Emit(OpCodes.Ldc_I4_0);
        _il.Emit(OpCodes.Stloc, _fromRegs);
        // For the page of RIP now (rip0 is RIP here) and the head's frame: an entry at a block of another frame, or a resume point in
        // one, finds it unarmed (0: the edges take the exact tests) until an entry stub or an edge loads it for its own page.
        LoadEdgeState(0, _headPhys & ~0xFFFUL);
    }

    /// <summary>
    /// The edges' local (<see cref="_lim"/>) from the machine and the MMU now, for the block at <paramref name="pageStart"/> from the
    /// head in frame <paramref name="frame"/>.
    /// </summary>
    private void LoadEdgeState(ulong pageStart, ulong frame)
    {
        _edgeStale = false;
        var il = _il;
        var unarmed = il.DefineLabel();
        var done = il.DefineLabel();
        EmitUnlessArmed(pageStart, frame, unarmed);
        EmitEdgeLimit();
        il.Emit(OpCodes.Br, done);
        il.MarkLabel(unarmed);
        il.Emit(OpCodes.Ldc_I8, 0L);
        il.Emit(OpCodes.Stloc, _lim);
        il.MarkLabel(done);
    }

    // The edges' reads of the machine and the MMU are IL field loads, not calls of Native's helpers: every call the JIT inlines spends
    // its inlining budget and adds its temporaries, and a region of a hundred instructions across pages ran out of both (docs/PERFORMANCE.md,
    // "Regions across code pages"): the handlers' PUSH/POP runs and the register accessors were then called instead of inlined.
    private static readonly FieldInfo NextEventAtField = BlockCompiler.NextEventAtField, IdleField = BlockCompiler.IdleField;

    /// <summary>
    /// _lim = min(stopRetired + 1 (unless the largest value), NextEventAt - idle (0 below idle)): the retired count from which a compiled
    /// edge tests the stop and the next event exactly (<see cref="EmitEdgeTest(ulong, ulong, Label)"/>). An edge whose <c>ret0 + count +
    /// nextCount</c> is below it has the whole next block before the stop (<c>&lt;= stopRetired</c>) and no event due at its end
    /// (<c>ret0 + count + idle &lt; NextEventAt</c>, <see cref="Machine.ChainMustLeave"/>'s test).
    /// </summary>
    private void EmitEdgeLimit()
    {
        var il = _il;
        var positive = il.DefineLabel();
        var done = il.DefineLabel();
        // lim = NextEventAt >= idle ? NextEventAt - idle : 0   (the retired count at which the next event is due)
        il.Emit(OpCodes.Ldloc, _machine);
        il.Emit(OpCodes.Ldfld, NextEventAtField);
        il.Emit(OpCodes.Ldloc, _machine);
        il.Emit(OpCodes.Ldfld, IdleField);
        il.Emit(OpCodes.Sub);
        il.Emit(OpCodes.Stloc, _lim);
        il.Emit(OpCodes.Ldloc, _machine);
        il.Emit(OpCodes.Ldfld, NextEventAtField);
        il.Emit(OpCodes.Ldloc, _machine);
        il.Emit(OpCodes.Ldfld, IdleField);
        il.Emit(OpCodes.Bge_Un, positive);
        il.Emit(OpCodes.Ldc_I8, 0L);
        il.Emit(OpCodes.Stloc, _lim);
        il.MarkLabel(positive);
        // if (stopRetired != ulong.MaxValue && stopRetired + 1 < lim) lim = stopRetired + 1
        il.Emit(OpCodes.Ldarg_2);
        il.Emit(OpCodes.Ldc_I8, -1L);
        il.Emit(OpCodes.Beq, done);
        il.Emit(OpCodes.Ldarg_2);
        il.Emit(OpCodes.Ldc_I8, 1L);
        il.Emit(OpCodes.Add);
        il.Emit(OpCodes.Ldloc, _lim);
        il.Emit(OpCodes.Bge_Un, done);
        il.Emit(OpCodes.Ldarg_2);
        il.Emit(OpCodes.Ldc_I8, 1L);
        il.Emit(OpCodes.Add);
        il.Emit(OpCodes.Stloc, _lim);
        il.MarkLabel(done);
    }

    private void EmitUnlessArmed(ulong pageStart, ulong frame, Label unarmed) => BlockCompiler.EmitUnlessArmed(_il, _mmu, _rip0, pageStart, frame, unarmed);

    /// <summary>The method entered at a block in another frame than the head's (its entry stub, rip0 set): the edges' local for its page.</summary>
    internal void EnterAt(ulong pageStart, ulong frame) => LoadEdgeState(pageStart, frame);

    /// <summary>
    /// After an edge into another page (BlockCompiler's Edges.EmitPage): Machine.EnterPage armed the fetch entry for the new page and
    /// the block's frame, so the edges' local is the limit itself.
    /// </summary>
    internal void PageEntered() => EmitEdgeLimit();

    /// <summary>
    /// An edge's test of the run loop's conditions, for a block of <paramref name="count"/> instructions ending before
    /// <paramref name="next"/>'s <paramref name="nextCount"/> (BlockCompiler.EmitEdgeChecks): jumps to <paramref name="exit"/> when the run
    /// loop would do anything but fetch the next block of the page. Inline, one comparison with <see cref="_lim"/> stands for the
    /// stop, the next event and the armed fetch: it never passes where one of those would exit (see <see cref="EmitEdgeLimit"/>);
    /// where it does not pass, the exact tests run out of line and may come back.
    /// </summary>
    internal void EmitEdgeTest(ulong count, ulong nextCount, Label exit) => EmitEdgeTest(count, nextCount, exit, _pageStart, _pageFrame);

    /// <summary>
    /// <see cref="EmitEdgeTest(ulong, ulong, Label)"/> for an edge into the page of the block at <paramref name="pageStart"/> from the
    /// head in <paramref name="frame"/> (after <see cref="EnterAt"/> loaded the edges' local for it).
    /// </summary>
    internal void EmitEdgeTest(ulong count, ulong nextCount, Label exit, ulong pageStart, ulong frame)
    {
        var il = _il;
        var closer = il.DefineLabel();
        var back = il.DefineLabel();
        // if (ret0 + count + nextCount >= lim) look closer
        il.Emit(OpCodes.Ldloc, _ret0);
        il.Emit(OpCodes.Ldc_I8, (long)(count + nextCount));
        il.Emit(OpCodes.Add);
        il.Emit(OpCodes.Ldloc, _lim);
        il.Emit(OpCodes.Bge_Un, closer);
        il.MarkLabel(back);
        // if (machine.InterruptLine || machine.DebugStepHook) exit: read at every edge (a debugger may ask from its own thread), one word
        il.Emit(OpCodes.Ldloc, _machine);
        il.Emit(OpCodes.Ldfld, BlockCompiler.AttentionField);   // InterruptLine and DebugStepHook in one word
        il.Emit(OpCodes.Brtrue, exit);
        _cold.Add(() =>
        {
            il.MarkLabel(closer);
            BlockCompiler.EmitStopTest(il, _ret0, count + nextCount, exit);
            // if (ret0 + count + idle >= NextEventAt) exit   (Machine.ChainMustLeave: Retired + idle >= NextEventAt)
            BlockCompiler.EmitEventTest(il, _ret0, count, _machine, exit);
            EmitUnlessArmed(pageStart, frame, exit);
            il.Emit(OpCodes.Br, back);
        });
    }

    /// <summary>The locals of <see cref="EmitAddress"/>'s CPU and MMU part, from cpu and mmu now.</summary>
    /// <remarks>
    /// As plain field loads, not calls of helpers the JIT would inline: each inlined call costs the JIT time and spends its per-method
    /// inlining budget, and this runs in the prologue and after every handler that precedes a native access. The fast-cache index of
    /// a read's page is <c>((la &gt;&gt; 12) &amp; 255) ^ key</c>: the key is the access kind's index base (a multiple of 256) with the
    /// PCID's hash (below 256) in its low byte (<see cref="Mmu.Mmu.FastSlotAt"/>).
    /// </remarks>
    private void LoadMmuState()
    {
        _mmuStale = false;
        if (_table == null) return;
        var il = _il;
        // table = ref mmu._fast[0]
        il.Emit(OpCodes.Ldloc, _mmu);
        il.Emit(OpCodes.Ldfld, FastArrayField);
        il.Emit(OpCodes.Ldc_I4_0);
        il.Emit(OpCodes.Ldelema, typeof(Mmu.Mmu.FastEntry));
        il.Emit(OpCodes.Stloc, _table);
        // keyR = cpu.FastReadBase | cpu.PcidHash
        il.Emit(OpCodes.Ldarg_1);
        il.Emit(OpCodes.Ldfld, FastReadBaseField);
        il.Emit(OpCodes.Ldarg_1);
        il.Emit(OpCodes.Ldfld, PcidHashField);
        il.Emit(OpCodes.Or);
        il.Emit(OpCodes.Stloc, _keyR!);
        // pcid = cpu.CurrentPcid
        il.Emit(OpCodes.Ldarg_1);
        il.Emit(OpCodes.Ldfld, CurrentPcidField);
        il.Emit(OpCodes.Conv_U8);
        il.Emit(OpCodes.Stloc, _pcid!);
        // epoch = cpu.DirectData ? mmu._fastEpoch : NoDirectEpoch
        var direct = il.DefineLabel();
        var done = il.DefineLabel();
        il.Emit(OpCodes.Ldarg_1);
        il.Emit(OpCodes.Ldfld, DirectDataField);
        il.Emit(OpCodes.Brtrue, direct);
        il.Emit(OpCodes.Ldc_I8, unchecked((long)Native.NoDirectEpoch));
        il.Emit(OpCodes.Br, done);
        il.MarkLabel(direct);
        il.Emit(OpCodes.Ldloc, _mmu);
        il.Emit(OpCodes.Ldfld, FastEpochField);
        il.MarkLabel(done);
        il.Emit(OpCodes.Stloc, _epoch!);
    }

    /// <summary>No site's page memo holds (<see cref="_msite"/> = 0): at the method's entry and after anything that may use the data TLB.</summary>
    private void ForgetPage()
    {
        if (_msite == null) return;
        _il.Emit(OpCodes.Ldc_I4_0);
        _il.Emit(OpCodes.Stloc, _msite);
    }

    private static FieldInfo Field(Type t, string name)
        => t.GetField(name, BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
           ?? throw new InvalidOperationException($"NativeRegion reads {t.Name}.{name}, which is gone: update LoadMmuState");
    private static readonly FieldInfo FastArrayField = Field(typeof(Mmu.Mmu), "_fast");
    private static readonly FieldInfo FastEpochField = Field(typeof(Mmu.Mmu), "_fastEpoch");
    private static readonly FieldInfo DirectDataField = Field(typeof(Cpu), nameof(Cpu.DirectData));
    // the auto-properties' backing fields (C#'s <Name>k__BackingField)
    private static readonly FieldInfo FastReadBaseField = Field(typeof(Cpu), $"<{nameof(Cpu.FastReadBase)}>k__BackingField");
    private static readonly FieldInfo PcidHashField = Field(typeof(Cpu), $"<{nameof(Cpu.PcidHash)}>k__BackingField");
    private static readonly FieldInfo CurrentPcidField = Field(typeof(Cpu), $"<{nameof(Cpu.CurrentPcid)}>k__BackingField");

    /// <summary>
    /// At a block's start (reached from the prologue or an edge), <paramref name="pageStart"/> bytes from the head in frame
    /// <paramref name="frame"/>: the locals hold every register, and may be newer than cpu.R.
    /// </summary>
    internal void BlockStart(ulong pageStart, ulong frame, FlagSource self = default, bool pageMemo = false)
    {
        _pageStart = pageStart;
        _pageFrame = frame;
        _stale = 0;
        _dirty = _written;
        _flags = self.Valid ? Pending.Of(self) : default;
        _memo = null;
        _pageMemo = pageMemo && _msite != null;
    }

    /// <summary>Whether the block being emitted gives its memory access a page memo (<see cref="PageMemoFor"/>).</summary>
    private bool _pageMemo;

    /// <summary>
    /// Whether block <paramref name="b"/>, which ends in a branch the method makes itself, can find its memory access's page memo
    /// still held when it runs again: every instruction before the branch a native form (a handler would forget it) and one memory
    /// operand among them — one instruction, or two alike in operand and size (a load and the store back, the second taking the
    /// first's slot), no PUSH or POP. A block with two different accesses makes each forget the other's, so the memo would cost
    /// every access its upkeep and never answer one; there the accesses only forget any other block's.
    /// </summary>
    internal bool PageMemoFor(Block b)
    {
        (int Base, int Index, int Scale, long Disp, int AddrSize, int Seg, int Size)? operand = null;
        int accesses = 0;
        for (int k = 0; k < b.Count - 1; k++)
        {
            ref Insn d = ref b.Insns[k];
            var s = EmittedShape(b, k, _handler);
            if (s.Form is Form.None or Form.Push or Form.Pop) return false;
            if (s.Form is Form.Lea or Form.Nop || d.K0 != Opnd.Mem && d.K1 != Opnd.Mem) continue;
            var o = (d.Base, d.Index, (int)d.Scale, d.Disp, d.AddrSize, (int)d.Seg, s.Form == Form.Extend ? d.Size1 : s.Form == Form.AluMem ? d.Size : s.Size);
            if (++accesses > 2 || operand is { } first && first != o) return false;
            operand = o;
        }
        return accesses > 0;
    }

    /// <summary>
    /// The flags a block leaves in registers for its own next iteration, if it loops to itself: those of its last flag-setting
    /// instruction when that is a native CMP, TEST, SUB or ADD of registers (or a register and an immediate) whose registers nothing
    /// after it in the block writes, and the block does not set all six flags before it could read them (then nothing need be kept:
    /// <see cref="FlagsDeadAtStart"/>). A guess from the instructions alone: the back edge keeps the flags in registers only if its
    /// emitted flags are exactly these (<see cref="EndsWith"/>), and otherwise stores them, which the block's start also expects.
    /// </summary>
    internal FlagSource SelfFlags(Block b)
    {
        if (FlagsDeadAtStart(b)) return default;
        FlagSource f = default;
        for (int k = 0; k < b.Count - 1; k++)   // (the last instruction is the back edge's branch)
        {
            ref Insn d = ref b.Insns[k];
            var s = EmittedShape(b, k, _handler);
            if (s.Form == Form.None) { f = default; continue; }
            Uses(ref d, s, out int writes);
            switch (s.Form)
            {
                case Form.Alu or Form.AluImm:
                case Form.AluMem when d.K0 != Opnd.Mem && d.K1 != Opnd.Mem:
                    f = SourceOf(ref d, s);
                    continue;
                case Form.IncDec or Form.Shift or Form.Imul or Form.Carry or Form.AluMem:
                    f = default;
                    continue;
            }
            if (f.Valid && (writes & f.Registers) != 0) f = default;
        }
        return f;
    }

    /// <summary>The <see cref="FlagSource"/> of a native ALU instruction on registers and immediates (none for the others).</summary>
    private static FlagSource SourceOf(ref Insn d, Shape s)
    {
        int size = s.Form == Form.AluMem ? d.Size : s.Size;
        bool imm = s.Form == Form.AluImm || s.Form == Form.AluMem && d.K1 == Opnd.Imm;
        int rb = imm ? -1 : d.R1;
        ulong value = imm ? d.Imm & Isa.Alu.Mask(size) : 0;
        return s.Op switch
        {
            Isa.Alu.Op.Cmp or Isa.Alu.Op.Test => new(s.Op, size, d.R0, rb, value),
            // the result replaces Ra, so the operand it replaced is computed back from it (only at 32/64 bits: narrower writes merge)
            Isa.Alu.Op.Sub or Isa.Alu.Op.Add when size >= 4 && rb != d.R0 => new(s.Op, size, d.R0, rb, value),
            _ => default,
        };
    }

    /// <summary>Whether the flags pending now are exactly <paramref name="f"/>'s, in their locals (the back edge may leave them in registers).</summary>
    internal bool EndsWith(FlagSource f) => f.Valid && _flags.Live && !_flags.Maybe && _flags.Src == f;

    /// <summary>
    /// An edge from the block being ended to a block of the region: _fromRegs = 1 on a self-looping block's back edge that left its flags
    /// in registers (<paramref name="keptInRegisters"/>), else 0, so that no other entry finds it set.
    /// </summary>
    internal void EdgeFlags(bool keptInRegisters)
    {
        _il.Emit(keptInRegisters ? OpCodes.Ldc_I4_1 : OpCodes.Ldc_I4_0);
        _il.Emit(OpCodes.Stloc, _fromRegs);
    }

    /// <summary>Before a handler or anything else that reads or writes cpu's registers and flags.</summary>
    internal void BeforeHandler()
    {
        _memo = null;
        StoreFlags();
        _flags = default;
        WriteBack(_dirty);
        _dirty = 0;
    }

    /// <summary>After a handler returned: it may have changed any register, so the locals are stale.</summary>
    internal void AfterHandler()
    {
        _memo = null;
        ForgetPage();
        _stale = _set;
        _mmuStale = _table != null;
        _edgeStale = true;
    }

    /// <summary>
    /// At a block's end: the pending flags stored and every stale local reloaded (the state of a block start). Returns the flags
    /// that were pending, for a direct branch's condition (<see cref="EmitCondition"/>).
    /// </summary>
    internal Pending BlockEnd(bool storeFlags = true)
    {
        var f = _flags;
        if (!storeFlags && f.Maybe) throw new InvalidOperationException("NativeRegion: flags kept across an edge that were never in locals");
        if (storeFlags) StoreFlags();
        else _flags = default;   // still in their locals: the block's exit stores them (ExitFlags), its successors overwrite them
        for (int r = 0; r < 16; r++)
            if ((_stale >> r & 1) != 0) { LoadCpuReg(r); _il.Emit(OpCodes.Stloc, _reg[r]!); }
        _stale = 0;
        if (_mmuStale) LoadMmuState();
        if (_edgeStale) LoadEdgeState(_pageStart, _pageFrame);
        return f;
    }

    /// <summary>At a block's exit to the run loop, when its end kept the flags pending (<see cref="BlockEnd"/>): stores them.</summary>
    internal void ExitFlags(Pending f)
    {
        _flags = f;
        StoreFlags();
        _flags = default;
    }

    /// <summary>
    /// Whether block <paramref name="b"/> sets all six status flags natively before anything could read them: before any handler
    /// (which reads or stores them), native memory access (its out-of-line path spills them, and a fault's frame holds RFLAGS),
    /// flag reader (INC/DEC and ADC/SBB read CF, SETcc/CMOVcc/Jcc the rest) or the block's end. An edge into such a block need not
    /// store the flags pending at the end of the block before it.
    /// </summary>
    internal bool FlagsDeadAtStart(Block b)
    {
        for (int k = 0; k < b.Count; k++)
        {
            ref Insn d = ref b.Insns[k];
            var s = EmittedShape(b, k, _handler);
            if (s.Form == Form.None) return false;
            switch (s.Form)
            {
                case Form.MovRR or Form.MovRI or Form.Lea or Form.Nop:
                case Form.Extend when d.K1 == Opnd.Reg:
                    continue;
                case Form.Shift when (d.Imm & (s.Size == 8 ? 0x3FUL : 0x1FUL)) == 0:
                    continue;
                case Form.Alu or Form.AluImm or Form.Imul or Form.Shift:
                case Form.AluMem when d.K0 != Opnd.Mem && d.K1 != Opnd.Mem:
                    return true;
                default:
                    return false;
            }
        }
        return false;
    }

    /// <summary>At an exit to the run loop from a block's end: every register the region writes, back into cpu.R.</summary>
    internal void AtExit() => WriteBack(_written);

    /// <summary>Adds code to emit after the region's blocks (<see cref="EmitCold"/>): paths the method rarely takes, out of the hot layout.</summary>
    internal void AddCold(Action emit) => _cold.Add(emit);

    /// <summary>
    /// Pushes whether condition <paramref name="cc"/> holds, from the flags <see cref="BlockEnd"/> returned when they were pending (the
    /// producing instruction's operands still in locals), else from the lazy-flag fields.
    /// </summary>
    internal void EmitCondition(int cc, Pending f)
    {
        if (f.Maybe)
        {
            // in registers or in cpu: into cpu (unless BlockEnd stored them already), then read there
            if (_flags.Maybe) Settle();
            f = default;
        }
        if (!f.Live)
        {
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldc_I4, cc);
            _il.Emit(OpCodes.Call, BlockCompiler.ConditionMethod);
            return;
        }
        if (f.Eager != Eager.None)
        {
            _il.Emit(OpCodes.Ldc_I4, cc);
            _il.Emit(f.Eager == Eager.Mul ? OpCodes.Ldc_I4_1 : OpCodes.Ldc_I4_0);
            _il.Emit(OpCodes.Ldc_I4, f.Size);
            _il.Emit(OpCodes.Ldloc, _fres);
            _il.Emit(OpCodes.Ldloc, _fcf);
            _il.Emit(OpCodes.Ldloc, _fof);
            _il.Emit(OpCodes.Call, typeof(Native).GetMethod(nameof(Native.EagerCondition))!);
            return;
        }
        if (f.Cf == CfAt.Local && (cc >> 1) == 1)
        {
            // B/AE: CF itself
            _il.Emit(OpCodes.Ldloc, _fcf);
            _il.Emit(OpCodes.Ldc_I8, 0L);
            _il.Emit((cc & 1) != 0 ? OpCodes.Ceq : OpCodes.Cgt_Un);
            return;
        }
        if (EmitCompare(cc, f)) return;
        _il.Emit(OpCodes.Ldc_I4, cc);
        _il.Emit(OpCodes.Ldc_I4, (int)f.Op);
        _il.Emit(OpCodes.Ldc_I4, f.Size);
        _il.Emit(OpCodes.Ldloc, _fa);
        _il.Emit(OpCodes.Ldloc, _fb);
        _il.Emit(OpCodes.Ldloc, _fres);
        EmitCf(f);
        _il.Emit(OpCodes.Call, f.NoOrder ? typeof(Native).GetMethod(nameof(Native.FlagCondition))! : NativeConditionMethod);
    }

    /// <summary>
    /// The commonest conditions as one IL comparison (which the JIT fuses with the branch into a compare and a jump): ZF after any
    /// operation (the result is zero), and after a SUB or CMP each order of its two operands (<see cref="Native.Condition"/>'s rule).
    /// False, emitting nothing, for the others.
    /// </summary>
    private bool EmitCompare(int cc, Pending f)
    {
        var il = _il;
        bool negate = (cc & 1) != 0;
        switch (cc >> 1)
        {
            case 2 when f.Op != LazyOp.Sub || f.NoOrder:   // E/NE: res == 0
                il.Emit(OpCodes.Ldloc, _fres);
                il.Emit(OpCodes.Ldc_I8, 0L);
                il.Emit(OpCodes.Ceq);
                break;
            case 1 or 2 or 3 or 6 or 7 when f.Op == LazyOp.Sub && !f.NoOrder:
            {
                bool signed = (cc >> 1) >= 6;
                PushOperand(_fa, f.Size, signed);
                PushOperand(_fb, f.Size, signed);
                switch (cc >> 1)
                {
                    case 1: il.Emit(OpCodes.Clt_Un); break;                                   // B: a < b
                    case 2: il.Emit(OpCodes.Ceq); break;                                      // E: a == b
                    case 3: il.Emit(OpCodes.Cgt_Un); negate = !negate; break;                 // BE: !(a > b)
                    case 6: il.Emit(OpCodes.Clt); break;                                      // L: a < b signed
                    default: il.Emit(OpCodes.Cgt); negate = !negate; break;                   // LE: !(a > b) signed
                }
                break;
            }
            default:
                return false;
        }
        if (negate)
        {
            il.Emit(OpCodes.Ldc_I4_0);
            il.Emit(OpCodes.Ceq);
        }
        return true;
    }

    /// <summary>
    /// Pushes an operand of <paramref name="size"/> bytes, for a signed order sign-extended to 32 bits when it is narrower than 8 (both
    /// operands of a compare are pushed alike: two int32 compare as the 32-bit compare they are, with no extension to 64 bits).
    /// </summary>
    private void PushOperand(LocalBuilder v, int size, bool signed)
    {
        _il.Emit(OpCodes.Ldloc, v);
        if (!signed || size == 8) return;
        _il.Emit(size switch { 1 => OpCodes.Conv_I1, 2 => OpCodes.Conv_I2, _ => OpCodes.Conv_I4 });
    }

    /// <summary>After <see cref="Prologue"/>: an entry at or above <see cref="BlockCompiler.ResumeBase"/> goes to its resume point.</summary>
    internal void EmitResumeTest()
    {
        _il.Emit(OpCodes.Ldarg_3);
        _il.Emit(OpCodes.Ldc_I4, BlockCompiler.ResumeBase);
        _il.Emit(OpCodes.Bge, _resumeDispatch);
    }

    /// <summary>
    /// Emits the cold paths and the resume points' dispatch; call once, after the region's blocks. Returns the region's instruction
    /// index of each resume point (<see cref="CompiledRegion.Resumes"/>).
    /// </summary>
    internal int[] EmitCold()
    {
        foreach (var a in _cold) a();
        _cold.Clear();
        _il.MarkLabel(_resumeDispatch);
        if (_resumes.Count > 0)
        {
            _il.Emit(OpCodes.Ldarg_3);
            _il.Emit(OpCodes.Ldc_I4, BlockCompiler.ResumeBase);
            _il.Emit(OpCodes.Sub);
            _il.Emit(OpCodes.Switch, _resumes.Select(x => x.At).ToArray());
        }
        _il.Emit(OpCodes.Br, _retNull);   // (not reached: the run loop passes only the resume points the method returned)
        return _resumes.Select(x => x.Insn).ToArray();
    }

    // ---- one instruction ------------------------------------------------------------------------------------------

    /// <summary>
    /// Emits instruction <paramref name="d"/> (the <paramref name="k"/>th of its block, at <paramref name="off"/> bytes from the head,
    /// the next at <paramref name="next"/>) in native form and returns true, or returns false if it has none.
    /// </summary>
    internal bool TryEmit(ref Insn d, MethodInfo? mi, int k, ulong off, ulong next, int index)
    {
        var s = ShapeOf(ref d, mi);
        if (s.Form == Form.None) return false;
        Interlocked.Increment(ref Emitted);
        var il = _il;
        ulong m = s.Size == 8 ? ulong.MaxValue : 0xFFFFFFFF;
        switch (s.Form)
        {
            case Form.MovRR:
                LoadReg(d.R1);
                if (s.Size == 4) Mask32();
                StoreReg(d.R0);
                break;
            case Form.MovRI:
                il.Emit(OpCodes.Ldc_I8, (long)(d.Imm & m));
                StoreReg(d.R0);
                break;
            case Form.Alu:
            case Form.AluImm:
                EmitAlu(ref d, s, m);
                break;
            case Form.IncDec:
                EmitIncDec(ref d, s, m);
                break;
            case Form.Lea:
                EmitEa(ref d, next);
                if (s.Size == 4) Mask32();
                StoreReg(d.R0);
                break;
            case Form.Extend when d.K1 == Opnd.Reg:
                LoadMasked(d.R1, d.Size1);
                EmitExtend(ref d, s);
                break;
            case Form.Nop:
                break;
            case Form.Shift:
                EmitShift(ref d, s);
                break;
            case Form.Imul:
                EmitImul(ref d, s);
                break;
            case Form.Carry:
                EmitCarry(ref d, s);
                break;
            case Form.Setcc:
                // the low byte of R0 = the condition (the flags stay as they are: pending or in cpu)
                LoadReg(d.R0);
                il.Emit(OpCodes.Ldc_I8, ~0xFFL);
                il.Emit(OpCodes.And);
                EmitCondition(d.Cc, _flags);
                il.Emit(OpCodes.Conv_U8);
                il.Emit(OpCodes.Or);
                StoreReg(d.R0);
                break;
            case Form.Cmov:
            {
                // R0 = cc ? R1 : R0, zero-extended at 32 bits either way (Isa.DataMove.Cmov)
                var keep = il.DefineLabel();
                var done = il.DefineLabel();
                EmitCondition(d.Cc, _flags);
                il.Emit(OpCodes.Brfalse, keep);
                LoadReg(d.R1);
                il.Emit(OpCodes.Br, done);
                il.MarkLabel(keep);
                LoadReg(d.R0);
                il.MarkLabel(done);
                if (s.Size == 4) Mask32();
                StoreReg(d.R0);
                break;
            }
            case Form.AluMem when d.K0 != Opnd.Mem && d.K1 != Opnd.Mem:
            {
                var c = d;   // (lambdas cannot capture a ref)
                EmitAluOp(s.Op, c.Size, () => LoadMasked(c.R0, c.Size),
                    () => { if (c.K1 == Opnd.Imm) il.Emit(OpCodes.Ldc_I8, (long)(c.Imm & Isa.Alu.Mask(c.Size))); else LoadMasked(c.R1, c.Size); },
                    c.R0);
                _flags.Src = SourceOf(ref d, s);
                break;
            }
            default:
                EmitMem(ref d, s, k, off, next, index);
                break;
        }
        return true;
    }

    private void EmitAlu(ref Insn d, Shape s, ulong m)
    {
        int r0 = d.R0, r1 = d.R1, size = s.Size;
        ulong imm = d.Imm & m;
        bool reg = s.Form == Form.Alu;
        EmitAluOp(s.Op, size, () => LoadMasked(r0, size),
            () => { if (reg) LoadMasked(r1, size); else _il.Emit(OpCodes.Ldc_I8, (long)imm); }, r0);
        _flags.Src = SourceOf(ref d, s);   // (after the result's store, which would have cleared it)
    }

    /// <summary>
    /// a op b at <paramref name="size"/> bytes (each pushed masked to the size by its emitter) as <see cref="Isa.Alu.Compute"/> does: the
    /// result into register <paramref name="dest"/> (unless CMP/TEST, or -1), the flags pending in locals.
    /// </summary>
    private void EmitAluOp(Isa.Alu.Op aluOp, int size, Action loadA, Action loadB, int dest)
    {
        var il = _il;
        loadA();
        il.Emit(OpCodes.Stloc, _fa);
        loadB();
        il.Emit(OpCodes.Stloc, _fb);
        il.Emit(OpCodes.Ldloc, _fa);
        il.Emit(OpCodes.Ldloc, _fb);
        il.Emit(aluOp switch
        {
            Isa.Alu.Op.Add => OpCodes.Add,
            Isa.Alu.Op.Sub or Isa.Alu.Op.Cmp => OpCodes.Sub,
            Isa.Alu.Op.And or Isa.Alu.Op.Test => OpCodes.And,
            Isa.Alu.Op.Or => OpCodes.Or,
            _ => OpCodes.Xor,
        });
        var op = LazyOpOf(aluOp);
        if (size != 8 && op != LazyOp.Logic)
        {
            il.Emit(OpCodes.Ldc_I8, (long)Isa.Alu.Mask(size));
            il.Emit(OpCodes.And);
        }
        il.Emit(OpCodes.Stloc, _fres);
        _flags = new Pending { Live = true, Op = op, Size = size, Cf = CfOf(op) };
        if (dest >= 0 && aluOp is not (Isa.Alu.Op.Cmp or Isa.Alu.Op.Test))
        {
            il.Emit(OpCodes.Ldloc, _fres);
            StoreReg(dest);
        }
    }

    private void EmitIncDec(ref Insn d, Shape s, ulong m)
    {
        var il = _il;
        // INC and DEC keep CF: wherever the flags before them had it (from the operands this instruction replaces: into its local first)
        Settle();
        var cf = _flags.Live ? _flags.Cf : CfAt.Cpu;
        if (cf == CfAt.Operands)
        {
            EmitCf(_flags);
            il.Emit(OpCodes.Stloc, _fcf);
            cf = CfAt.Local;
        }
        LoadReg(d.R0);
        if (s.Size == 4) Mask32();
        il.Emit(OpCodes.Stloc, _fa);
        il.Emit(OpCodes.Ldc_I8, 1L);
        il.Emit(OpCodes.Stloc, _fb);
        il.Emit(OpCodes.Ldloc, _fa);
        il.Emit(OpCodes.Ldc_I8, 1L);
        il.Emit(s.Alt ? OpCodes.Add : OpCodes.Sub);
        if (s.Size == 4) Mask32();
        il.Emit(OpCodes.Stloc, _fres);
        _flags = new Pending { Live = true, Op = s.Alt ? LazyOp.Inc : LazyOp.Dec, Size = s.Size, Cf = cf };
        il.Emit(OpCodes.Ldloc, _fres);
        StoreReg(d.R0);
    }

    /// <summary>
    /// SHL/SHR/SAR r, imm8 as Isa.Shift.ShiftRI/ShiftBy: a masked count of 0 only zero-extends a 32-bit register and keeps the flags;
    /// else the result into R0 and the flags pending in their eager form (the count is a constant: each rule is a few IL operations).
    /// </summary>
    private void EmitShift(ref Insn d, Shape s)
    {
        var il = _il;
        int size = s.Size, bits = size * 8;
        int count = (int)(d.Imm & (size == 8 ? 0x3FUL : 0x1FUL));
        LoadReg(d.R0);
        if (size == 4) Mask32();
        if (count == 0) { StoreReg(d.R0); return; }
        il.Emit(OpCodes.Stloc, _fa);
        if (s.Shift == ShiftKind.Sar)
        {
            // sa = a sign-extended from the size; r = (sa >> count) & m; CF = sa's bit count-1; OF = 0
            il.Emit(OpCodes.Ldloc, _fa);
            if (size == 4) { il.Emit(OpCodes.Conv_I4); il.Emit(OpCodes.Conv_I8); }
            il.Emit(OpCodes.Stloc, _fb);
            il.Emit(OpCodes.Ldloc, _fb);
            il.Emit(OpCodes.Ldc_I4, count);
            il.Emit(OpCodes.Shr);
            if (size == 4) Mask32();
            il.Emit(OpCodes.Stloc, _fres);
            il.Emit(OpCodes.Ldloc, _fb);
            il.Emit(OpCodes.Ldc_I4, count - 1);
            il.Emit(OpCodes.Shr_Un);
            il.Emit(OpCodes.Ldc_I8, 1L);
            il.Emit(OpCodes.And);
            il.Emit(OpCodes.Stloc, _fcf);
            il.Emit(OpCodes.Ldc_I8, 0L);
            il.Emit(OpCodes.Stloc, _fof);
        }
        else
        {
            bool shl = s.Shift == ShiftKind.Shl;
            // SHL: r = (a << count) & m, CF = a's bit bits-count, OF = a's top bit ^ the bit below it (the first 1-bit step's)
            // SHR: r = a >> count, CF = a's bit count-1, OF = a's top bit
            il.Emit(OpCodes.Ldloc, _fa);
            il.Emit(OpCodes.Ldc_I4, count);
            il.Emit(shl ? OpCodes.Shl : OpCodes.Shr_Un);
            if (shl && size == 4) Mask32();
            il.Emit(OpCodes.Stloc, _fres);
            il.Emit(OpCodes.Ldloc, _fa);
            il.Emit(OpCodes.Ldc_I4, shl ? bits - count : count - 1);
            il.Emit(OpCodes.Shr_Un);
            il.Emit(OpCodes.Ldc_I8, 1L);
            il.Emit(OpCodes.And);
            il.Emit(OpCodes.Stloc, _fcf);
            il.Emit(OpCodes.Ldloc, _fa);
            if (shl)
            {
                il.Emit(OpCodes.Ldloc, _fa);
                il.Emit(OpCodes.Ldc_I4_1);
                il.Emit(OpCodes.Shl);
                il.Emit(OpCodes.Xor);
            }
            il.Emit(OpCodes.Ldc_I4, bits - 1);
            il.Emit(OpCodes.Shr_Un);
            il.Emit(OpCodes.Ldc_I8, 1L);
            il.Emit(OpCodes.And);
            il.Emit(OpCodes.Stloc, _fof);
        }
        _flags = new Pending { Live = true, Op = LazyOp.None, Size = size, Cf = CfAt.Local, Eager = Eager.Shift };
        il.Emit(OpCodes.Ldloc, _fres);
        StoreReg(d.R0);
    }

    /// <summary>IMUL r, r[, imm] as Isa.MulDiv.Multiply: the low half into R0, CF = OF = whether the signed product did not fit.</summary>
    private void EmitImul(ref Insn d, Shape s)
    {
        var il = _il;
        int size = s.Size;
        // x and y: the operands as signed values of the size (R0 and R1, or R1 and the immediate)
        void Operand(bool reg, int r, ulong imm)
        {
            if (reg) LoadReg(r); else il.Emit(OpCodes.Ldc_I8, (long)imm);
            if (size == 4) { il.Emit(OpCodes.Conv_I4); il.Emit(OpCodes.Conv_I8); }
        }
        if (s.Alt) { Operand(true, d.R1, 0); Operand(false, 0, d.Imm); }
        else { Operand(true, d.R0, 0); Operand(true, d.R1, 0); }
        il.Emit(OpCodes.Stloc, _fb);
        il.Emit(OpCodes.Stloc, _fa);
        il.Emit(OpCodes.Ldloc, _fa);
        il.Emit(OpCodes.Ldloc, _fb);
        il.Emit(OpCodes.Call, typeof(Native).GetMethod(size == 8 ? nameof(Native.ImulOverflow64) : nameof(Native.ImulOverflow32))!);
        il.Emit(OpCodes.Stloc, _fcf);
        il.Emit(OpCodes.Ldloc, _fcf);
        il.Emit(OpCodes.Stloc, _fof);
        il.Emit(OpCodes.Ldloc, _fa);
        il.Emit(OpCodes.Ldloc, _fb);
        il.Emit(OpCodes.Mul);
        if (size == 4) Mask32();
        il.Emit(OpCodes.Stloc, _fres);
        _flags = new Pending { Live = true, Op = LazyOp.None, Size = size, Cf = CfAt.Local, Eager = Eager.Mul };
        il.Emit(OpCodes.Ldloc, _fres);
        StoreReg(d.R0);
    }

    /// <summary>
    /// ADC/SBB r, r/imm as Isa.Alu.AddWithCarry/SubWithBorrow: the result with the carry in, CF into _fcf, and the flags pending as
    /// ADD's/SUB's of the same operands and result (OF, AF, ZF, SF and PF follow from those alone, with the carry in or not).
    /// </summary>
    private void EmitCarry(ref Insn d, Shape s)
    {
        var il = _il;
        int size = s.Size;
        bool adc = s.Op == Isa.Alu.Op.Adc;
        // the carry in, taken first (the pending flags' CF may live in _fa/_fb/_fres, which this overwrites)
        Settle();
        if (_flags.Live) EmitCf(_flags); else { il.Emit(OpCodes.Ldarg_1); il.Emit(OpCodes.Ldfld, CfField); }
        var c = _fof;   // the carry in, for the carry-out rule (_fof is free: these flags have no eager OF)
        il.Emit(OpCodes.Stloc, c);
        LoadMasked(d.R0, size);
        il.Emit(OpCodes.Stloc, _fa);
        if (d.K1 == Opnd.Imm) il.Emit(OpCodes.Ldc_I8, (long)(d.Imm & Isa.Alu.Mask(size))); else LoadMasked(d.R1, size);
        il.Emit(OpCodes.Stloc, _fb);
        il.Emit(OpCodes.Ldloc, _fa);
        il.Emit(OpCodes.Ldloc, _fb);
        il.Emit(adc ? OpCodes.Add : OpCodes.Sub);
        il.Emit(OpCodes.Ldloc, c);
        il.Emit(adc ? OpCodes.Add : OpCodes.Sub);
        if (size == 4) Mask32();
        il.Emit(OpCodes.Stloc, _fres);
        // ADC: CF = r < a || (c != 0 && r == a);  SBB: CF = a < b || (c != 0 && a == b)
        il.Emit(OpCodes.Ldloc, adc ? _fres : _fa);
        il.Emit(OpCodes.Ldloc, adc ? _fa : _fb);
        il.Emit(OpCodes.Clt_Un);
        il.Emit(OpCodes.Ldloc, adc ? _fres : _fa);
        il.Emit(OpCodes.Ldloc, adc ? _fa : _fb);
        il.Emit(OpCodes.Ceq);
        il.Emit(OpCodes.Conv_U8);
        il.Emit(OpCodes.Ldloc, c);
        il.Emit(OpCodes.And);
        il.Emit(OpCodes.Conv_U4);
        il.Emit(OpCodes.Or);
        il.Emit(OpCodes.Conv_U8);
        il.Emit(OpCodes.Stloc, _fcf);
        _flags = new Pending { Live = true, Op = adc ? LazyOp.Add : LazyOp.Sub, Size = size, Cf = CfAt.Local, NoOrder = true };
        il.Emit(OpCodes.Ldloc, _fres);
        StoreReg(d.R0);
    }

    /// <summary>Pushes the effective address of <paramref name="d"/>'s memory operand (RIP-relative: from the next instruction's RIP).</summary>
    private void EmitEa(ref Insn d, ulong next)
    {
        var il = _il;
        il.Emit(OpCodes.Ldc_I8, d.Disp);
        if (d.Base == Reg.Rip)
        {
            il.Emit(OpCodes.Ldloc, _rip0);
            il.Emit(OpCodes.Add);
            if (next != 0) { il.Emit(OpCodes.Ldc_I8, (long)next); il.Emit(OpCodes.Add); }
        }
        else if (d.Base != Reg.None) { LoadReg(d.Base); il.Emit(OpCodes.Add); }
        if (d.Index != Reg.None)
        {
            LoadReg(d.Index);
            if (d.Scale != 0) { il.Emit(OpCodes.Ldc_I4, (int)d.Scale); il.Emit(OpCodes.Shl); }
            il.Emit(OpCodes.Add);
        }
        if (d.AddrSize == 4) Mask32();
    }

    /// <summary>
    /// A native access's operand (base, index, scale, displacement, address size), its size and kind (<see cref="_memo"/>). Two accesses
    /// with equal operands and sizes, with no write to the operand's registers between them, are to the same linear address (no
    /// RIP-relative or FS/GS operand is remembered) and pass or fail the page-crossing test alike; their fast-cache slots are the same
    /// (same kind) or <see cref="Native.WriteSlots"/> apart. So the second takes the first's address and slot from their locals
    /// instead of computing them again: a load and a store back to the same place (<c>mov rax,[rsi] ... mov [rsi],rax</c>) look up
    /// one index. Everything else about the hit is tested again: the slot's tag, epoch and host frame, the hit counted and the
    /// modeled entry touched as for any access.
    /// </summary>
    private readonly record struct SameAccess(int Base, int Index, int Scale, long Disp, int AddrSize, int Size, bool Write)
    {
        public int Registers => (Base < 16 ? 1 << Base : 0) | (Index < 16 ? 1 << Index : 0);
    }

    /// <summary>
    /// The access whose address and slot the locals _ea and _entry hold on every path to this point where the slot can be live (the
    /// out-of-line path's resume parks _entry at <see cref="Native.NeverLive"/>, whose test fails whatever _ea holds), or null: cleared by anything that
    /// could change them or the fast cache (a handler, a block start, a write to the operand's registers, any other access).
    /// </summary>
    private SameAccess? _memo;

    private static readonly FieldInfo TagField = typeof(Mmu.Mmu.FastEntry).GetField(nameof(Mmu.Mmu.FastEntry.Tag))!;
    private static readonly FieldInfo EpochField = typeof(Mmu.Mmu.FastEntry).GetField(nameof(Mmu.Mmu.FastEntry.Epoch))!;
    private static readonly FieldInfo HostField = typeof(Mmu.Mmu.FastEntry).GetField(nameof(Mmu.Mmu.FastEntry.Host))!;
    private static readonly FieldInfo HitsField = typeof(Mmu.Mmu.FastEntry).GetField(nameof(Mmu.Mmu.FastEntry.Hits))!;
    private static readonly FieldInfo LruField = typeof(Mmu.Mmu.FastEntry).GetField(nameof(Mmu.Mmu.FastEntry.Lru))!;
    private static readonly FieldInfo StampField = typeof(Mmu.Mmu.FastEntry).GetField(nameof(Mmu.Mmu.FastEntry.Stamp))!;
    private static readonly FieldInfo ClockField = typeof(Mmu.LruSet).GetField(nameof(Mmu.LruSet.Clock), BindingFlags.Instance | BindingFlags.NonPublic)!;
    private static readonly MethodInfo TouchArrayMethod = typeof(Mmu.Mmu).GetMethod(nameof(Mmu.Mmu.TouchArray), BindingFlags.Static | BindingFlags.NonPublic)!;

    /// <summary>
    /// The inline path of a data access of <paramref name="size"/> bytes (<see cref="Mmu.Mmu.HostData"/>'s hit, written out so that the
    /// JIT lays the hit out straight and every miss branches to <paramref name="slow"/>): leaves the effective address in <paramref name="ea"/>
    /// and, on a hit, the host address in _ptr, the hit counted as the TLB model counts it. Returns the local that holds the linear address.
    /// </summary>
    private LocalBuilder EmitAddress(ref Insn d, int size, bool write, ulong next, LocalBuilder ea, Label slow, int stack = 0, bool? reuse = null)
    {
        var il = _il;
        if (_mmuStale) LoadMmuState();
        if (reuse is bool wasWrite)
        {
            // the previous access's address is in ea and its slot in _entry (SameAccess): no address, page-crossing test or index
            if (wasWrite != write)
            {
                il.Emit(OpCodes.Ldloc, _entry!);
                il.Emit(OpCodes.Ldc_I4, Native.WriteSlots);
                il.Emit(OpCodes.Conv_I);
                il.Emit(OpCodes.Sizeof, typeof(Mmu.Mmu.FastEntry));
                il.Emit(OpCodes.Mul);
                if (write) il.Emit(OpCodes.Add); else il.Emit(OpCodes.Sub);
                il.Emit(OpCodes.Stloc, _entry!);
            }
            // No LRU touch: the previous access's hit made the modeled entry its set's most recent use, and this slot's modeled entry
            // is that one (a fast entry answers what the model's lookup of its page and PCID finds, one entry whatever the access's
            // kind), so its use would change nothing; after the previous access missed, the parked slot never hits.
            EmitHit(ea, slow, touch: false);
            return ea;
        }
        if (stack != 0)
        {
            // PUSH (-8) or POP (+8): the access is at RSP - 8 or RSP (SS adds no base in 64-bit mode)
            LoadReg(Reg.RSP);
            if (stack < 0) { il.Emit(OpCodes.Ldc_I8, 8L); il.Emit(OpCodes.Sub); }
        }
        else EmitEa(ref d, next);
        il.Emit(OpCodes.Stloc, ea);
        var la = ea;
        if (stack == 0 && d.Seg >= Seg.FS)
        {
            la = _la!;
            il.Emit(OpCodes.Ldloc, ea);
            il.Emit(OpCodes.Ldarg_1);
            il.Emit(OpCodes.Ldc_I4, (int)d.Seg);
            il.Emit(OpCodes.Call, SegBaseMethod);
            il.Emit(OpCodes.Add);
            il.Emit(OpCodes.Stloc, la);
        }
        // No canonical test (Cpu.Linear's): only a translation fills a fast entry, and only after that test passed, so a live entry's tag
        // is a canonical page under the paging mode it was filled in (changing LA57 means leaving IA-32e mode, which empties the fast
        // cache); an access that stays within that page is canonical at both ends. Anything else misses and takes the handlers' path.
        // within one page
        // The page memo (_msite): this site made the last data access, and this one is within the same page as that hit.
        if (!_pageMemo)
        {
            // no memo for this block's accesses (PageMemoFor): the full path, which forgets any other block's
            EmitFullAccess(la, size, write, slow);
            ForgetPage();
            return la;
        }
        int site = ++_sites;
        var full = il.DefineLabel();
        var hit = il.DefineLabel();
        il.Emit(OpCodes.Ldloc, _msite!);
        il.Emit(OpCodes.Ldc_I4, site);
        il.Emit(OpCodes.Bne_Un, full);
        il.Emit(OpCodes.Ldloc, la);
        il.Emit(OpCodes.Ldloc, _mpage!);
        il.Emit(OpCodes.Sub);
        il.Emit(OpCodes.Ldc_I8, 0x1000L - size);
        il.Emit(OpCodes.Bgt_Un, full);
        // the same hit again: counted on the same fast entry (the slot a later SameAccess access starts from); no touch, as the
        // modeled entry is still its set's most recent use
        il.Emit(OpCodes.Ldloc, _mentry!);
        il.Emit(OpCodes.Stloc, _entry!);
        EmitCountHit();
        il.Emit(OpCodes.Ldloc, _mhost!);
        PushOffsetInPage(la);
        il.Emit(OpCodes.Add);
        il.Emit(OpCodes.Stloc, _ptr);
        il.Emit(OpCodes.Br, hit);
        il.MarkLabel(full);
        EmitFullAccess(la, size, write, slow);
        // remember the hit: _mpage = la & ~0xFFF, _mhost = _ptr - (la & 0xFFF), _mentry = _entry, _msite = site
        il.Emit(OpCodes.Ldloc, la);
        il.Emit(OpCodes.Ldc_I8, ~0xFFFL);
        il.Emit(OpCodes.And);
        il.Emit(OpCodes.Stloc, _mpage!);
        il.Emit(OpCodes.Ldloc, _ptr);
        PushOffsetInPage(la);
        il.Emit(OpCodes.Sub);
        il.Emit(OpCodes.Stloc, _mhost!);
        il.Emit(OpCodes.Ldloc, _entry!);
        il.Emit(OpCodes.Stloc, _mentry!);
        il.Emit(OpCodes.Ldc_I4, site);
        il.Emit(OpCodes.Stloc, _msite!);
        il.MarkLabel(hit);
        return la;
    }

    /// <summary>An access's inline hit path without a memo: the page-crossing test, the fast slot, the hit (to <paramref name="slow"/> on a miss).</summary>
    private void EmitFullAccess(LocalBuilder la, int size, bool write, Label slow)
    {
        var il = _il;
        il.Emit(OpCodes.Ldloc, la);
        il.Emit(OpCodes.Conv_U4);
        il.Emit(OpCodes.Ldc_I4, 0xFFF);
        il.Emit(OpCodes.And);
        il.Emit(OpCodes.Ldc_I4, 0x1000 - size);
        il.Emit(OpCodes.Bgt_Un, slow);
        EmitSlot(la, write);
        EmitHit(la, slow);
    }

    /// <summary>Pushes <paramref name="la"/>'s offset in its 4 KiB page as a native integer (to add to a host frame's address).</summary>
    private void PushOffsetInPage(LocalBuilder la)
    {
        _il.Emit(OpCodes.Ldloc, la);
        _il.Emit(OpCodes.Conv_U4);
        _il.Emit(OpCodes.Ldc_I4, 0xFFF);
        _il.Emit(OpCodes.And);
        _il.Emit(OpCodes.Conv_U);
    }

    /// <summary>_entry.Hits++: one lookup and one hit of the modeled entry, added to the counters when the fast entry is folded.</summary>
    private void EmitCountHit()
    {
        var il = _il;
        il.Emit(OpCodes.Ldloc, _entry!);
        il.Emit(OpCodes.Ldloc, _entry!);
        il.Emit(OpCodes.Ldfld, HitsField);
        il.Emit(OpCodes.Ldc_I8, 1L);
        il.Emit(OpCodes.Add);
        il.Emit(OpCodes.Stfld, HitsField);
    }

    /// <summary>_entry = the fast slot of <paramref name="la"/>'s page for a read or a write at the current privilege and PCID.</summary>
    private void EmitSlot(LocalBuilder la, bool write)
    {
        var il = _il;
        // ref f = ref table[((la >> 12) & 255) ^ key]   (key = the kind's index base | the PCID's hash)
        il.Emit(OpCodes.Ldloc, _table!);
        il.Emit(OpCodes.Ldloc, la);
        il.Emit(OpCodes.Ldc_I4, 12);
        il.Emit(OpCodes.Shr_Un);
        il.Emit(OpCodes.Conv_U4);
        il.Emit(OpCodes.Ldc_I4, 255);
        il.Emit(OpCodes.And);
        il.Emit(OpCodes.Ldloc, _keyR!);
        il.Emit(OpCodes.Xor);
        if (write)
        {
            // a write's slot is the read slot's plus Native.WriteSlots (the kinds' bases differ in a bit the read key leaves clear)
            il.Emit(OpCodes.Ldc_I4, Native.WriteSlots);
            il.Emit(OpCodes.Add);
        }
        il.Emit(OpCodes.Conv_I);
        il.Emit(OpCodes.Sizeof, typeof(Mmu.Mmu.FastEntry));
        il.Emit(OpCodes.Mul);
        il.Emit(OpCodes.Add);
        il.Emit(OpCodes.Stloc, _entry!);
    }

    /// <summary>
    /// The rest of <see cref="EmitAddress"/> once _entry is the access's slot: the live test (to <paramref name="slow"/> if it fails), the
    /// hit counted and the modeled entry touched, and the host address of <paramref name="la"/> in _ptr.
    /// </summary>
    private void EmitHit(LocalBuilder la, Label slow, bool touch = true)
    {
        var il = _il;
        // live: f.Tag == (la & ~0xFFF | pcid) && f.Epoch == epoch, with a host frame
        il.Emit(OpCodes.Ldloc, _entry!);
        il.Emit(OpCodes.Ldfld, TagField);
        il.Emit(OpCodes.Ldloc, la);
        il.Emit(OpCodes.Ldc_I8, ~0xFFFL);
        il.Emit(OpCodes.And);
        il.Emit(OpCodes.Ldloc, _pcid!);
        il.Emit(OpCodes.Or);
        il.Emit(OpCodes.Bne_Un, slow);
        il.Emit(OpCodes.Ldloc, _entry!);
        il.Emit(OpCodes.Ldfld, EpochField);
        il.Emit(OpCodes.Ldloc, _epoch!);
        il.Emit(OpCodes.Bne_Un, slow);
        il.Emit(OpCodes.Ldloc, _entry!);
        il.Emit(OpCodes.Ldfld, HostField);
        il.Emit(OpCodes.Stloc, _ptr);
        il.Emit(OpCodes.Ldloc, _ptr);
        il.Emit(OpCodes.Brfalse, slow);
        // the hit: f.Hits++, the modeled entry made its set's most recent use
        EmitCountHit();
        if (touch) EmitTouch();
        il.Emit(OpCodes.Ldloc, _ptr);
        PushOffsetInPage(la);
        il.Emit(OpCodes.Add);
        il.Emit(OpCodes.Stloc, _ptr);
    }

    /// <summary>Mmu.Touch for _entry: nothing to do while the entry's stamp is its set's clock (a run of accesses to the page); else out of line.</summary>
    private void EmitTouch()
    {
        var il = _il;
        var touched = il.DefineLabel();
        var touch = il.DefineLabel();
        il.Emit(OpCodes.Ldloc, _entry!);
        il.Emit(OpCodes.Ldfld, LruField);
        il.Emit(OpCodes.Stloc, _lru!);
        il.Emit(OpCodes.Ldloc, _lru!);
        il.Emit(OpCodes.Brfalse, touched);
        il.Emit(OpCodes.Ldloc, _entry!);
        il.Emit(OpCodes.Ldfld, StampField);
        il.Emit(OpCodes.Ldloc, _lru!);
        il.Emit(OpCodes.Ldfld, ClockField);
        il.Emit(OpCodes.Bne_Un, touch);
        il.MarkLabel(touched);
        _cold.Add(() =>
        {
            il.MarkLabel(touch);
            il.Emit(OpCodes.Ldloc, _entry!);
            il.Emit(OpCodes.Ldloc, _lru!);
            // A call (Mmu.TouchArray, not inlined): inlined, its body kept the entry's stamp and the set's clock alive across the hit
            // path, which the JIT then spilled and reloaded at every access (four stack moves per store in the memory loop); as a
            // call, only the rare path saves what it must.
            il.Emit(OpCodes.Call, TouchArrayMethod);
            il.Emit(OpCodes.Br, touched);
        });
    }

    /// <summary>
    /// A native form with a memory operand: the inline hit path (<see cref="EmitAddress"/>), the instruction's body on the host pointer;
    /// on a miss a call of <see cref="Native.DataMiss"/>, and the body on the host address it returns; and out of line — a page
    /// crossing, MMIO, a store into code, a fault, no direct data path — the instruction's own handler (through the
    /// interpreter's pointer, never inlined) with the state spilled as the interpreter has it, after which the locals are reloaded
    /// from cpu (registers, and the flags the handler recorded, which are the same operands the body would have kept) and the block
    /// goes on, or ends if the handler set ExitBlock.
    /// </summary>
    private void EmitMem(ref Insn d, Shape s, int k, ulong off, ulong next, int index)
    {
        var il = _il;
        var slow = il.DefineLabel();
        var done = il.DefineLabel();
        if (d.K0 == Opnd.Reg) Fresh(d.R0);   // read on the hit path, and current in the locals the spill writes back
        if (d.K1 == Opnd.Reg) Fresh(d.R1);
        bool stack = s.Form is Form.Push or Form.Pop;
        if (stack) Fresh(Reg.RSP);
        var before = Capture();
        bool write = s.Form is Form.Store or Form.StoreImm or Form.Push;
        int size = s.Form == Form.Extend ? d.Size1 : s.Form == Form.AluMem ? d.Size : s.Size;
        // The same address as the previous native access (same operand, same size, its registers unchanged, nothing in between
        // but native register forms): _ea and that access's slot are still in their locals (SameAccess).
        var key = stack || d.Base == Reg.Rip || d.Seg >= Seg.FS ? (SameAccess?)null
            : new SameAccess(d.Base, d.Index, d.Scale, d.Disp, d.AddrSize, size, write);
        bool? reuse = key is { } k0 && _memo is { } m0 && k0 with { Write = m0.Write } == m0 ? m0.Write : null;
        _memo = null;
        var la = EmitAddress(ref d, size, write, next, _ea, slow, s.Form == Form.Push ? -8 : s.Form == Form.Pop ? 8 : 0, reuse);
        var access = il.DefineLabel();
        il.MarkLabel(access);
        switch (s.Form)
        {
            case Form.Push:
                // Isa.Stack.Push64: the store, then RSP (PUSH RSP stores the value it had)
                il.Emit(OpCodes.Ldloc, _ptr);
                LoadReg(d.R0);
                StorePtr(8);
                il.Emit(OpCodes.Ldloc, _ea);
                StoreReg(Reg.RSP);
                break;
            case Form.Pop:
                // Isa.Stack.PopR64: the load, RSP + 8, then the register (POP RSP keeps the value read)
                il.Emit(OpCodes.Ldloc, _ea);
                il.Emit(OpCodes.Ldc_I8, 8L);
                il.Emit(OpCodes.Add);
                StoreReg(Reg.RSP);
                LoadPtr(8);
                StoreReg(d.R0);
                break;
            case Form.Load when size < 4:
                // MOV r8/r16, m: the low byte or word of R0 replaced, the rest kept (Cpu.SetReg)
                LoadReg(d.R0);
                il.Emit(OpCodes.Ldc_I8, ~(long)Isa.Alu.Mask(size));
                il.Emit(OpCodes.And);
                LoadPtr(size);
                il.Emit(OpCodes.Or);
                StoreReg(d.R0);
                break;
            case Form.Load:
                LoadPtr(size);
                StoreReg(d.R0);
                break;
            case Form.Store:
                il.Emit(OpCodes.Ldloc, _ptr);
                LoadReg(d.R1);
                StorePtr(size);
                break;
            case Form.StoreImm:
                il.Emit(OpCodes.Ldloc, _ptr);
                il.Emit(OpCodes.Ldc_I8, (long)(d.Imm & Isa.Alu.Mask(d.Size1)));   // as Cpu.ReadOp1 gives it
                StorePtr(size);
                break;
            case Form.Extend:
                LoadPtr(size);
                EmitExtend(ref d, s);
                break;
            case Form.AluMem:
            {
                var c = d;
                EmitAluOp(s.Op, c.Size,
                    () => { if (c.K0 == Opnd.Mem) LoadPtr(size); else LoadMasked(c.R0, c.Size); },
                    () =>
                    {
                        if (c.K1 == Opnd.Imm) il.Emit(OpCodes.Ldc_I8, (long)(c.Imm & Isa.Alu.Mask(c.Size)));
                        else if (c.K1 == Opnd.Mem) LoadPtr(size);
                        else LoadMasked(c.R1, c.Size);
                    },
                    c.K0 == Opnd.Reg ? c.R0 : -1);
                break;
            }
        }
        il.MarkLabel(done);
        var after = Capture();
        // what the next access may reuse (if the instruction left the address's registers alone: StoreReg forgets it otherwise)
        Uses(ref d, s, out int wrote);
        _memo = key is { } kk && (wrote & kk.Registers) == 0 ? key : null;
        _cold.Add(() =>
        {
            // The miss leaves the method: the state spilled as the interpreter has it before the instruction, the method returns
            // ResumeBase + r, and the run loop runs the instruction's own handler (BlockCompiler.Resume) and enters the method again
            // at resume point r, which goes on after the instruction. No call in the method: the JIT keeps the loop-carried
            // locals in registers instead of spilling them around a call it cannot know to be rare.
            il.MarkLabel(slow);
            // The state spilled as the interpreter has it before the instruction (what the handler, and a fault, need), then the miss
            // path itself as a call (Native.DataMiss): the handler's translation, and the host address when the access goes to RAM.
            // Either way the method returns, to be entered again: with the host address at the direct resume point below, which makes
            // the access as on a hit (not counted again); else at the handler's resume point after the handler ran (with the
            // translation DataMiss made, if it made one: Mmu.TakePretranslated). Returning, nothing the method keeps in a local lives
            // across the call: a call that returned into the method made the JIT spill, in the loop itself, every value live across
            // it (where they are set: it cannot know the call is rare), and the memory loop lost a fifth of its speed.
            Spill(before, off, next, k);
            il.Emit(OpCodes.Ldarg_1);
            il.Emit(OpCodes.Ldloc, la);
            il.Emit(OpCodes.Ldc_I4, size);
            il.Emit(write ? OpCodes.Ldc_I4_1 : OpCodes.Ldc_I4_0);
            il.Emit(OpCodes.Call, Native.DataMissMethod);
            var resume = il.DefineLabel();
            il.Emit(OpCodes.Brfalse, resume);
            // Direct resume point, entered after the prologue loaded every local from cpu: RIP and the retired count as the spill
            // left them, the flags pending before the instruction, the host address and the access's address and slot (for a later
            // access to the same address, SameAccess) from what DataMiss kept.
            ReturnToResumePoint(-1, next, k);
            ReloadFlags(before.Flags);
            LoadField(_mmu, MissHostField, _ptr);
            LoadField(_mmu, MissLaField, _ea);
            EmitSlot(_ea, write);
            il.Emit(OpCodes.Br, access);
            il.MarkLabel(resume);
            // The handler's resume point, entered after the prologue loaded every local from cpu: the handler left RIP at the next
            // instruction and the retired count at the instruction's (Spill), and recorded the same flag operation and operands the
            // body would have kept (Cpu.SetLazy).
            ReturnToResumePoint(index, next, k);
            if (key is not null)
            {
                // A later access to the same address reuses this access's slot (SameAccess); after the miss the method was entered
                // again, so the slot is a dummy here that never hits: the later access takes its own out-of-line path, page crossing
                // included, and never reads _ea (which only a hit uses).
                il.Emit(OpCodes.Ldsfld, Native.NeverLiveField);
                il.Emit(OpCodes.Ldc_I4, write ? Native.WriteSlots : 0);
                il.Emit(OpCodes.Ldelema, typeof(Mmu.Mmu.FastEntry));
                il.Emit(OpCodes.Stloc, _entry!);
                // and the address is one Native.DataMiss turns away before doing anything (not canonical): that later access's own
                // out-of-line path passes _ea, which the method entered again does not hold
                il.Emit(OpCodes.Ldc_I8, unchecked((long)Native.NoAddress));
                il.Emit(OpCodes.Stloc, _ea);
            }
            // the handler (a load or store) kept the flags Spill stored
            ReloadFlags(after.Flags);
            il.Emit(OpCodes.Br, done);
        });
    }

    private static readonly FieldInfo MissLaField = typeof(Mmu.Mmu).GetField(nameof(Mmu.Mmu.MissLa), BindingFlags.Instance | BindingFlags.NonPublic)!;
    private static readonly FieldInfo MissHostField = typeof(Mmu.Mmu).GetField(nameof(Mmu.Mmu.MissHost), BindingFlags.Instance | BindingFlags.NonPublic)!;

    /// <summary>
    /// Returns <see cref="BlockCompiler.ResumeBase"/> + r for a new resume point r (at which the run loop first runs the region's
    /// instruction <paramref name="insn"/>, or nothing for -1) and emits that point's start: rip0 and ret0 from RIP and the retired
    /// count as the spill before the access at <paramref name="next"/>, the <paramref name="k"/>th of its block, left them.
    /// </summary>
    private void ReturnToResumePoint(int insn, ulong next, int k)
    {
        var il = _il;
        int r = _resumes.Count;
        var at = il.DefineLabel();
        _resumes.Add((insn, at));
        il.Emit(OpCodes.Ldc_I4, BlockCompiler.ResumeBase + r);
        if (insn < 0 && Reenter is Label top)
        {
            // nothing for the run loop to do first: the method enters itself again at the point, as BlockCompiler.Resume would
            il.Emit(OpCodes.Starg_S, (byte)3);
            il.Emit(OpCodes.Br, top);
        }
        else il.Emit(OpCodes.Ret);
        il.MarkLabel(at);
        LoadField(BlockCompiler.RipField, _rip0);
        il.Emit(OpCodes.Ldloc, _rip0);
        il.Emit(OpCodes.Ldc_I8, (long)next);
        il.Emit(OpCodes.Sub);
        il.Emit(OpCodes.Stloc, _rip0);
        LoadField(BlockCompiler.RetiredField, _ret0);
        il.Emit(OpCodes.Ldloc, _ret0);
        il.Emit(OpCodes.Ldc_I8, (long)k);
        il.Emit(OpCodes.Sub);
        il.Emit(OpCodes.Stloc, _ret0);
    }

    /// <summary>The flags <paramref name="f"/> says are pending in locals, loaded again from cpu, where a spill of them stored them.</summary>
    private void ReloadFlags(Pending f)
    {
        var il = _il;
        // flags that may be in registers: the spill put them in cpu, and the method entered again has _fromRegs 0 (Prologue), so
        // that is where they are
        if (f.Maybe) return;
        if (f.Live && f.Eager != Eager.None)
        {
            // eager flags were stored as a result with their ZF, SF and PF, and CF and OF
            il.Emit(OpCodes.Ldarg_1);
            il.Emit(OpCodes.Ldc_I4, f.Size);
            il.Emit(OpCodes.Call, typeof(Native).GetMethod(nameof(Native.ResultOfStatus))!);
            il.Emit(OpCodes.Stloc, _fres);
            LoadField(CfField, _fcf);
            il.Emit(OpCodes.Ldarg_1);
            il.Emit(OpCodes.Call, typeof(Native).GetMethod(nameof(Native.OfOfStatus))!);
            il.Emit(OpCodes.Stloc, _fof);
        }
        else if (f.Live)
        {
            LoadField(LazyAField, _fa);
            LoadField(LazyBField, _fb);
            LoadField(LazyResField, _fres);
            if (f.Cf == CfAt.Local) LoadField(CfField, _fcf);
        }
    }

    private void LoadField(FieldInfo f, LocalBuilder into)
    {
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Ldfld, f);
        _il.Emit(OpCodes.Stloc, into);
    }

    /// <summary><paramref name="into"/> = <paramref name="from"/>.<paramref name="f"/> (the MMU's fields, through its local).</summary>
    private void LoadField(LocalBuilder from, FieldInfo f, LocalBuilder into)
    {
        _il.Emit(OpCodes.Ldloc, from);
        _il.Emit(OpCodes.Ldfld, f);
        _il.Emit(OpCodes.Stloc, into);
    }

    /// <summary>Pushes the <paramref name="size"/>-byte value at _ptr, zero-extended to 64 bits.</summary>
    private void LoadPtr(int size)
    {
        _il.Emit(OpCodes.Ldloc, _ptr);
        _il.Emit(size switch { 1 => OpCodes.Ldind_U1, 2 => OpCodes.Ldind_U2, 4 => OpCodes.Ldind_U4, _ => OpCodes.Ldind_I8 });
        if (size != 8) _il.Emit(OpCodes.Conv_U8);
    }

    /// <summary>Stores the low <paramref name="size"/> bytes of the 64-bit value on the stack at the address below it.</summary>
    private void StorePtr(int size)
    {
        if (size != 8) _il.Emit(OpCodes.Conv_U4);
        _il.Emit(size switch { 1 => OpCodes.Stind_I1, 2 => OpCodes.Stind_I2, 4 => OpCodes.Stind_I4, _ => OpCodes.Stind_I8 });
    }

    /// <summary>Pushes register r masked to <paramref name="size"/> bytes (<see cref="Cpu.GetReg"/> of a register below 16).</summary>
    private void LoadMasked(int r, int size)
    {
        LoadReg(r);
        if (size == 8) return;
        _il.Emit(OpCodes.Ldc_I8, (long)Isa.Alu.Mask(size));
        _il.Emit(OpCodes.And);
    }

    /// <summary>MOVZX/MOVSX/MOVSXD: the source value (zero-extended, Size1 bytes) on the stack into R0 at Size (4 or 8).</summary>
    private void EmitExtend(ref Insn d, Shape s)
    {
        var il = _il;
        if (s.Alt)
        {
            il.Emit(d.Size1 switch { 1 => OpCodes.Conv_I1, 2 => OpCodes.Conv_I2, _ => OpCodes.Conv_I4 });
            il.Emit(OpCodes.Conv_I8);
        }
        if (d.Size == 4) Mask32();
        StoreReg(d.R0);
    }

    /// <summary>The compile-time state an out-of-line path starts from.</summary>
    private readonly record struct ColdState(int Dirty, Pending Flags);

    private ColdState Capture() => new(_dirty, _flags);

    /// <summary>
    /// The out-of-line path's entry: the pending flags and every newer local stored into cpu, InsnRip, RIP and the retired count
    /// as the interpreter has them before the instruction (what a fault, a device or a watchpoint sees).
    /// </summary>
    private void Spill(ColdState state, ulong off, ulong next, int k)
    {
        var saved = _flags;
        _flags = state.Flags;
        StoreFlags();
        _flags = saved;
        WriteBack(state.Dirty);
        StoreCpu(BlockCompiler.InsnRipField, _rip0, off);
        StoreCpu(BlockCompiler.RipField, _rip0, next);
        StoreCpu(BlockCompiler.RetiredField, _ret0, (ulong)k);
    }

    // ---- registers and flags ----------------------------------------------------------------------------------------

    private void LoadCpuReg(int r)
    {
        EmitGpr(r);
        _il.Emit(OpCodes.Ldind_I8);
    }

    private static readonly FieldInfo GprFileField = typeof(Cpu).GetField(nameof(Cpu.R))!;
    private static readonly FieldInfo GprElementField = typeof(GprFile).GetField("_e", BindingFlags.Instance | BindingFlags.NonPublic)!;

    /// <summary>
    /// Pushes <c>ref cpu.R[r]</c> (<see cref="Cpu.Gpr"/>) as field addresses, not a call: a region makes hundreds of these (every
    /// write-back and reload around a handler), and each call the JIT inlines spends its inlining budget, which a region of a hundred
    /// instructions exhausted (docs/PERFORMANCE.md, "Regions across code pages").
    /// </summary>
    private void EmitGpr(int r)
    {
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Ldflda, GprFileField);
        _il.Emit(OpCodes.Ldflda, GprElementField);
        if (r != 0) { _il.Emit(OpCodes.Ldc_I4, 8 * r); _il.Emit(OpCodes.Add); }
    }

    /// <summary>Pushes register r's value (from its local, reloaded first if a handler ran since).</summary>
    private void LoadReg(int r)
    {
        Fresh(r);
        _il.Emit(OpCodes.Ldloc, _reg[r]!);
    }

    /// <summary>Reloads register r's local if a handler ran since it was last current.</summary>
    private void Fresh(int r)
    {
        if ((_stale >> r & 1) == 0) return;
        LoadCpuReg(r);
        _il.Emit(OpCodes.Stloc, _reg[r]!);
        _stale &= ~(1 << r);
    }

    /// <summary>Pops a value into register r's local.</summary>
    private void StoreReg(int r)
    {
        if (_memo is { } m && (m.Base == r || m.Index == r)) _memo = null;
        if (_flags.Live && _flags.Src.Valid && (_flags.Src.Registers >> r & 1) != 0)
        {
            if (_flags.Maybe)
            {
                // the flags may be computed from this register's old value: settled first (the new value waits in a spare local)
                _il.Emit(OpCodes.Stloc, _spare);
                Settle();
                _il.Emit(OpCodes.Ldloc, _spare);
            }
            else _flags.Src = default;   // (still in their locals)
        }
        _il.Emit(OpCodes.Stloc, _reg[r]!);
        _stale &= ~(1 << r);
        _dirty |= 1 << r;
    }

    /// <summary>cpu.R[r] = local for each r of <paramref name="mask"/> (never a stale one: a local is dirty only after a store into it).</summary>
    private void WriteBack(int mask)
    {
        for (int r = 0; r < 16; r++)
        {
            if ((mask >> r & 1) == 0 || _reg[r] == null) continue;
            EmitGpr(r);
            _il.Emit(OpCodes.Ldloc, _reg[r]!);
            _il.Emit(OpCodes.Stind_I8);
        }
    }

    /// <summary>Stores the pending flags into the lazy-flag fields as <see cref="Cpu.SetLazy"/>/<see cref="Cpu.SetLazyIncDec"/> would have.</summary>
    private void StoreFlags()
    {
        var f = _flags;
        if (!f.Live) return;
        var il = _il;
        if (f.Maybe)
        {
            // if (_fromRegs) { the operands and result computed from the registers; stored as any pending flags }
            var skip = il.DefineLabel();
            il.Emit(OpCodes.Ldloc, _fromRegs);
            il.Emit(OpCodes.Brfalse, skip);
            FromRegisters(f.Src);
            _flags = f with { Maybe = false };
            StoreFlags();
            il.MarkLabel(skip);
            _flags.Live = false;
            return;
        }
        if (f.Eager != Eager.None)
        {
            // as the handler's SetStatusFromResult / SetMulFlags: _lazyOp None, _cf and the six status bits in _rflags
            il.Emit(OpCodes.Ldarg_1);
            il.Emit(OpCodes.Ldloc, _fres);
            il.Emit(OpCodes.Ldc_I4, f.Size);
            il.Emit(OpCodes.Ldloc, _fcf);
            il.Emit(OpCodes.Ldloc, _fof);
            il.Emit(OpCodes.Call, typeof(Native).GetMethod(f.Eager == Eager.Mul ? nameof(Native.StoreMulFlags) : nameof(Native.StoreShiftFlags))!);
            _flags.Live = false;
            return;
        }
        if (f.Cf != CfAt.Cpu)
        {
            il.Emit(OpCodes.Ldarg_1);
            EmitCf(f);
            il.Emit(OpCodes.Stfld, CfField);
        }
        il.Emit(OpCodes.Ldarg_1);
        il.Emit(OpCodes.Ldc_I4, (int)f.Op);
        il.Emit(OpCodes.Stfld, LazyOpField);
        il.Emit(OpCodes.Ldarg_1);
        il.Emit(OpCodes.Ldc_I4, f.Size);
        il.Emit(OpCodes.Stfld, LazySizeField);
        il.Emit(OpCodes.Ldarg_1);
        il.Emit(OpCodes.Ldloc, _fa);
        il.Emit(OpCodes.Stfld, LazyAField);
        il.Emit(OpCodes.Ldarg_1);
        il.Emit(OpCodes.Ldloc, _fb);
        il.Emit(OpCodes.Stfld, LazyBField);
        il.Emit(OpCodes.Ldarg_1);
        il.Emit(OpCodes.Ldloc, _fres);
        il.Emit(OpCodes.Stfld, LazyResField);
        _flags.Live = false;
    }

    /// <summary>Flags left in registers (<see cref="Pending.Maybe"/>) into cpu's lazy-flag fields where they are in registers; either way in cpu after.</summary>
    private void Settle()
    {
        if (!_flags.Maybe) return;
        StoreFlags();
        _flags = default;
    }

    /// <summary>
    /// _fa, _fb and _fres computed from the register locals as <paramref name="f"/>'s instruction computed them. Read straight from
    /// the locals (no <see cref="Fresh"/>): flags stay in registers only from a block's start, where every local is current, until
    /// a handler (which settles them first) or a write to one of the registers (likewise).
    /// </summary>
    private void FromRegisters(FlagSource f)
    {
        var il = _il;
        ulong mask = Isa.Alu.Mask(f.Size);
        void Masked(int r)
        {
            il.Emit(OpCodes.Ldloc, _reg[r]!);
            if (f.Size != 8) { il.Emit(OpCodes.Ldc_I8, (long)mask); il.Emit(OpCodes.And); }
        }
        if (f.Rb >= 0) Masked(f.Rb); else il.Emit(OpCodes.Ldc_I8, (long)f.Imm);
        il.Emit(OpCodes.Stloc, _fb);
        bool writes = f.Op is Isa.Alu.Op.Sub or Isa.Alu.Op.Add;
        Masked(f.Ra);
        il.Emit(OpCodes.Stloc, writes ? _fres : _fa);
        // CMP: res = a - b; TEST: res = a & b; SUB: a = res + b; ADD: a = res - b (each masked to the size, as EmitAluOp)
        il.Emit(OpCodes.Ldloc, writes ? _fres : _fa);
        il.Emit(OpCodes.Ldloc, _fb);
        il.Emit(f.Op switch { Isa.Alu.Op.Test => OpCodes.And, Isa.Alu.Op.Sub => OpCodes.Add, _ => OpCodes.Sub });
        if (f.Size != 8 && f.Op != Isa.Alu.Op.Test) { il.Emit(OpCodes.Ldc_I8, (long)mask); il.Emit(OpCodes.And); }
        il.Emit(OpCodes.Stloc, writes ? _fa : _fres);
    }

    private void EmitCf(Pending f)
    {
        switch (f.Cf)
        {
            case CfAt.Local: _il.Emit(OpCodes.Ldloc, _fcf); break;
            case CfAt.Operands:
                // ADD carried when the masked sum wrapped below a; SUB borrowed when a < b (Cpu.SetLazy)
                if (f.Op == LazyOp.Add) { _il.Emit(OpCodes.Ldloc, _fres); _il.Emit(OpCodes.Ldloc, _fa); }
                else { _il.Emit(OpCodes.Ldloc, _fa); _il.Emit(OpCodes.Ldloc, _fb); }
                _il.Emit(OpCodes.Clt_Un);
                _il.Emit(OpCodes.Conv_U8);
                break;
            case CfAt.Zero: _il.Emit(OpCodes.Ldc_I8, 0L); break;
            default: _il.Emit(OpCodes.Ldarg_1); _il.Emit(OpCodes.Ldfld, CfField); break;
        }
    }

    private void Mask32()
    {
        _il.Emit(OpCodes.Conv_U4);
        _il.Emit(OpCodes.Conv_U8);
    }

    private void StoreCpu(FieldInfo field, LocalBuilder local, ulong c) => BlockCompiler.EmitStore(_il, field, local, c);
}

/// <summary>The bodies native forms call, with constant arguments the JIT folds (<see cref="NativeRegion"/>).</summary>
internal static unsafe class Native
{
    /// <summary>An epoch no fast entry carries (epochs count up from 1): what the method holds when the CPU has no direct data path.</summary>
    public const ulong NoDirectEpoch = ulong.MaxValue;

    /// <summary>
    /// How far a write's fast slot is from a read's: the kinds' index bases (<see cref="Mmu.Mmu.FastKindBase"/>) differ by it at either
    /// privilege, and the read key never has its bit, so <c>(page ^ readKey) + WriteSlots</c> is <c>page ^ writeKey</c>.
    /// </summary>
    public static readonly int WriteSlots = WriteSlotDistance();

    /// <summary>
    /// Fast entries that are never live (epoch 0, no host frame): a read's slot at 0 and a write's at <see cref="WriteSlots"/>, where a
    /// native access's resume point parks its slot so that a later access to the same address (NativeRegion.SameAccess) misses too.
    /// </summary>
    public static readonly Mmu.Mmu.FastEntry[] NeverLive = new Mmu.Mmu.FastEntry[WriteSlots + 1];
    internal static readonly FieldInfo NeverLiveField = typeof(Native).GetField(nameof(NeverLive))!;

    private static int WriteSlotDistance()
    {
        int d = Mmu.Mmu.FastKindBase(Mmu.Access.Write) - Mmu.Mmu.FastKindBase(Mmu.Access.Read);
        int du = Mmu.Mmu.FastKindBase(Mmu.Access.Write | Mmu.Access.User) - Mmu.Mmu.FastKindBase(Mmu.Access.Read | Mmu.Access.User);
        if (d != du || (d & (d - 1)) != 0 || (Mmu.Mmu.FastKindBase(Mmu.Access.Read | Mmu.Access.User) & d) != 0 || d < 256)
            throw new InvalidOperationException("fast-cache kind bases changed: NativeRegion's write slot needs its own key again");
        return d;
    }

    /// <summary>
    /// A native access's miss, called from its out-of-line path before it spills: the host address of <paramref name="la"/> when the
    /// handler's path would reach RAM without ending the block (<see cref="Mmu.Mmu.DataMiss"/>, which does that path's counting and
    /// translation), else null. Null without doing anything where the handler's path does more than translate before the access: no
    /// direct data path (paging off, data breakpoints armed), not 64-bit mode, an access across a page end, a non-canonical address.
    /// </summary>
    public static byte* DataMiss(Cpu cpu, ulong la, int size, bool write)
    {
        if (!cpu.DirectData || cpu.Mode != CpuMode.Long64 || (la & 0xFFF) + (ulong)size > 0x1000) return null;
        ulong bias = cpu.CanonicalBias;   // Cpu.Linear's test
        if (la + bias > (bias << 1) - (ulong)size) return null;
        return write
            ? cpu.Mmu.DataMiss(la, Mmu.Access.Write | cpu.DataAccess, cpu.FastWriteBase)
            : cpu.Mmu.DataMiss(la, Mmu.Access.Read | cpu.DataAccess, cpu.FastReadBase);
    }
    internal static readonly MethodInfo DataMissMethod = typeof(Native).GetMethod(nameof(DataMiss))!;

    /// <summary>A linear address that is canonical under no paging mode: where a resume point leaves _ea (see its use).</summary>
    public const ulong NoAddress = 1UL << 63;

    /// <summary>The base of FS or GS (64-bit mode adds no other segment's base).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong SegBase(Cpu cpu, int seg) => cpu.Segs[seg].Base;

    /// <summary>
    /// Condition <paramref name="cc"/> from the operands of the instruction that set the flags (<paramref name="op"/>, <paramref name="size"/>,
    /// a, b, result as <see cref="Cpu.SetLazy"/> records them, CF), as <see cref="Cpu.Condition"/> would evaluate it from the lazy fields.
    /// A compare's signed and unsigned orders are the operands' own.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Condition(int cc, LazyOp op, int size, ulong a, ulong b, ulong res, ulong cf)
    {
        bool r;
        if (op == LazyOp.Sub && (cc >> 1) is 1 or 2 or 3 or 6 or 7)
        {
            long sa = size switch { 1 => (sbyte)a, 2 => (short)a, 4 => (int)a, _ => (long)a };
            long sb = size switch { 1 => (sbyte)b, 2 => (short)b, 4 => (int)b, _ => (long)b };
            r = (cc >> 1) switch
            {
                1 => a < b,
                2 => a == b,
                3 => a <= b,
                6 => sa < sb,
                _ => sa <= sb,
            };
            return r ^ ((cc & 1) != 0);
        }
        return FlagCondition(cc, op, size, a, b, res, cf);
    }

    /// <summary>
    /// <see cref="Condition"/> from the flags alone, never from a compare's operand order: also for ADC/SBB, whose CF took a carry
    /// in (<paramref name="cf"/>) while OF, ZF, SF and PF follow from the operands and result as ADD's/SUB's do.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool FlagCondition(int cc, LazyOp op, int size, ulong a, ulong b, ulong res, ulong cf)
    {
        int sh = size * 8 - 1;
        bool r;
        bool zf = res == 0, sf = ((res >> sh) & 1) != 0, c = cf != 0;
        bool of = op switch
        {
            LazyOp.Add or LazyOp.Inc => ((((a ^ res) & (b ^ res)) >> sh) & 1) != 0,
            LazyOp.Sub or LazyOp.Dec => ((((a ^ b) & (a ^ res)) >> sh) & 1) != 0,
            _ => false,
        };
        r = (cc >> 1) switch
        {
            0 => of,
            1 => c,
            2 => zf,
            3 => c || zf,
            4 => sf,
            5 => Cpu.Parity(res),
            6 => sf != of,
            _ => zf || (sf != of),
        };
        return r ^ ((cc & 1) != 0);
    }

    // ---- the eager flags of the shift and multiply forms (NativeRegion.EmitShift/EmitImul) -------------------------------------

    /// <summary>What Isa.Shift's handlers store: <see cref="Cpu.SetStatusFromResult"/> (AF clear).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreShiftFlags(Cpu cpu, ulong res, int size, ulong cf, ulong of) => cpu.SetStatusFromResult(res, size, cf != 0, of != 0);

    /// <summary>What Isa.MulDiv's SetMulFlags stores: CF = OF = overflow, PF and SF from the low half, ZF and AF clear.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreMulFlags(Cpu cpu, ulong res, int size, ulong cf, ulong of)
        => cpu.SetStatus(cf != 0, Cpu.Parity(res), false, false, ((res >> (size * 8 - 1)) & 1) != 0, of != 0);

    /// <summary>Condition <paramref name="cc"/> from eager flags: a shift's (ZF from the result) or IMUL's (<paramref name="mul"/>: ZF clear).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool EagerCondition(int cc, bool mul, int size, ulong res, ulong cf, ulong of)
    {
        bool zf = !mul && res == 0, sf = ((res >> (size * 8 - 1)) & 1) != 0, c = cf != 0, o = of != 0;
        bool r = (cc >> 1) switch
        {
            0 => o,
            1 => c,
            2 => zf,
            3 => c || zf,
            4 => sf,
            5 => Cpu.Parity(res),
            6 => sf != o,
            _ => zf || (sf != o),
        };
        return r ^ ((cc & 1) != 0);
    }

    /// <summary>
    /// A result of <paramref name="size"/> bytes with the ZF, SF and PF that cpu's eager flags hold (<see cref="StoreShiftFlags"/> or
    /// <see cref="StoreMulFlags"/> stored them before a load's handler ran): what a resume point reloads into the pending result. IMUL's
    /// ZF is clear whatever the result, and a clear ZF gives a non-zero result here, so either rule reads the flags back unchanged.
    /// </summary>
    public static ulong ResultOfStatus(Cpu cpu, int size)
    {
        ulong f = cpu._rflags;
        if ((f & RFlags.ZF) != 0) return 0;
        ulong r = 0x100;                                   // non-zero, with a low byte of its own
        if ((f & RFlags.SF) != 0) r |= 1UL << (size * 8 - 1);
        if ((f & RFlags.PF) == 0) r |= 1;                  // one bit set in the low byte: odd parity
        return r;
    }

    /// <summary>OF of cpu's eager flags, 0 or 1.</summary>
    public static ulong OfOfStatus(Cpu cpu) => (cpu._rflags >> 11) & 1;

    /// <summary>Whether the signed 64-bit product of x and y does not fit in 64 bits (IMUL's CF and OF), 0 or 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong ImulOverflow64(long x, long y)
    {
        long hi = Math.BigMul(x, y, out long lo);
        return hi != (lo >> 63) ? 1UL : 0;
    }

    /// <summary>Whether the signed product of two 32-bit values (sign-extended) does not fit in 32 bits, 0 or 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong ImulOverflow32(long x, long y)
    {
        long p = x * y;
        return (int)p != p ? 1UL : 0;
    }
}
