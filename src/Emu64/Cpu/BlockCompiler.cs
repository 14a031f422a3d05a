using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;

namespace Emu64.Cpu;

/// <summary>
/// A hot block compiled to one .NET method with the blocks the chain runs after it in its page (its region; with
/// <see cref="BlockCompiler.CrossPage"/> in other pages too), entered at
/// any of them (<paramref name="entry"/>: the block's index in <see cref="Block.Region"/>, <see cref="Block.Entry"/>): each
/// block's handlers called one after another with direct calls (which the JIT may inline), instead of the
/// interpreter's loop of indirect calls. It goes on from one block of the region to the next while the run loop
/// would do nothing else at that boundary (no event due, no interrupt, a whole block left before
/// <paramref name="stopRetired"/>, a same-page fetch, or a translation of another page that the chain would have made and that
/// gives the next block's frame). Returns the index in <see cref="Block.Region"/> of the block
/// that ran last, or -1 where <c>RunInsns</c> returns false (an instruction ended its block early).
/// </summary>
public delegate int BlockCode(Cpu cpu, ulong stopRetired, int entry);

/// <summary>What a compiled region's method is closed over: its blocks' decoded instructions one after another.</summary>
internal sealed class CompiledRegion(Block[] blocks)
{
    public readonly Insn[] Insns = blocks.SelectMany(b => b.Insns.Take(b.Count)).ToArray();
    /// <summary>The region's blocks (an edge into another page checks that the block there is still valid: Machine.EnterPage).</summary>
    public readonly Block[] Blocks = blocks;
    /// <summary>For each resume point of the method (<see cref="BlockCompiler.ResumeBase"/>), the index in <see cref="Insns"/> of the instruction to run.</summary>
    public int[] Resumes = [];
}

/// <summary>
/// Marks a handler that reads and writes only general registers and status flags: it cannot fault, does not
/// read RIP, RFLAGS bits other than the status flags, or the retired count, and never ends the block. The block
/// compiler runs such an instruction without the per-instruction bookkeeping (RIP, the faulting-instruction
/// RIP, the retired count and the end-of-block test are brought up to date before the next instruction that
/// can observe them).
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class RegisterOnlyAttribute : Attribute { }

/// <summary>
/// Marks a family of handlers (a class) none of which reads RIP other than through a RIP-relative memory operand or
/// changes it: they may fault and may end the block (a store into code sets ExitBlock). The block compiler keeps
/// the faulting-instruction RIP and the retired count exact before such an instruction, and RIP only where it is read.
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
internal sealed class NoRipReadAttribute : Attribute { }

/// <summary>
/// Compiles a decoded block (and its region) into IL that does what the interpreter's per-instruction loop does:
/// <code>
///   for each instruction: InsnRip = Rip; Rip += Length; handler(cpu, ref insn); Retired++; if (ExitBlock) return false;
/// </code>
/// with differences that nothing can observe:
/// <list type="bullet">
/// <item>each handler is a direct call, which the JIT inlines for the small fixed-form ones;</item>
/// <item>RIP, InsnRip and Retired are stored as constants added to the block's starting RIP and count (only the
/// block's last instruction, a branch, changes RIP; any other that does also sets ExitBlock, e.g. REP string steps);</item>
/// <item>a <see cref="RegisterOnlyAttribute"/> instruction gets no bookkeeping at all, and one of a
/// <see cref="NoRipReadAttribute"/> family no RIP store (unless it has a RIP-relative operand): nothing it does reads
/// them, and before any instruction that can fault, InsnRip and Retired are exact;</item>
/// <item>after a block, the method goes on to the next block of the region when the run loop would (<see cref="EmitEdge"/>);
/// a block that branches back to its own start is the one-block region;</item>
/// <item>with native forms, a block the method branches itself (<see cref="DirectBranch"/>) leaves RIP and Retired in its
/// locals across the edge and InsnRip unstored: each reader stores them first (handlers, misses, the edge's exits).</item>
/// </list>
/// Handlers the compiler cannot name (none in practice: a test checks it) are called through the same function
/// pointer the interpreter uses.
/// </summary>
public static unsafe partial class BlockCompiler
{
    internal static readonly FieldInfo RipField = typeof(Cpu).GetField(nameof(Cpu.Rip))!;
    internal static readonly FieldInfo InsnRipField = typeof(Cpu).GetField(nameof(Cpu.InsnRip))!;
    internal static readonly FieldInfo RetiredField = typeof(Cpu).GetField(nameof(Cpu.Retired))!;
    internal static readonly FieldInfo ExitBlockField = typeof(Cpu).GetField(nameof(Cpu.ExitBlock))!;
    private static readonly FieldInfo ExecField = typeof(Insn).GetField(nameof(Insn.Exec))!;
    private static readonly FieldInfo RegionInsnsField = typeof(CompiledRegion).GetField(nameof(CompiledRegion.Insns))!;
    private static readonly FieldInfo MachineField = typeof(Cpu).GetField(nameof(Cpu.Machine))!;
    private static readonly FieldInfo MmuField = typeof(Cpu).GetField(nameof(Cpu.Mmu))!;
    internal static readonly FieldInfo FetchSlotField = typeof(Mmu.Mmu).GetField(nameof(Mmu.Mmu._fetchSlot), BindingFlags.Instance | BindingFlags.NonPublic)!;
    internal static readonly FieldInfo FetchPageField = typeof(Mmu.Mmu).GetField(nameof(Mmu.Mmu._fetchPage), BindingFlags.Instance | BindingFlags.NonPublic)!;
    internal static readonly FieldInfo FetchFrameField = typeof(Mmu.Mmu).GetField(nameof(Mmu.Mmu._fetchFrame), BindingFlags.Instance | BindingFlags.NonPublic)!;
    private static readonly FieldInfo FetchPendingField = typeof(Mmu.Mmu).GetField(nameof(Mmu.Mmu._fetchPending), BindingFlags.Instance | BindingFlags.NonPublic)!;
    // Machine.ChainMustLeave's fields, read inline at each edge.
    internal static readonly FieldInfo IdleField = typeof(Machine).GetField("_idle", BindingFlags.Instance | BindingFlags.NonPublic)!;
    internal static readonly FieldInfo NextEventAtField = typeof(Machine).GetField(nameof(Machine.NextEventAt))!;
    /// <summary>Machine.Attention: InterruptLine and DebugStepHook, tested with one load.</summary>
    internal static readonly FieldInfo AttentionField = typeof(Machine).GetField(nameof(Machine.Attention), BindingFlags.Instance | BindingFlags.NonPublic)!;

    /// <summary>The method's locals for <see cref="Cpu.Mmu"/> and <see cref="Cpu.Machine"/>, loaded once in its prologue.</summary>
    private readonly record struct EdgeLocals(LocalBuilder Mmu, LocalBuilder Machine);
    private static readonly Type[] HandlerArgs = [typeof(Cpu), typeof(Insn).MakeByRefType()];
    /// <summary>The scalar fields of <see cref="Insn"/>, emitted as constants; the other two are copied.</summary>
    private static readonly FieldInfo[] ConstantFields = typeof(Insn).GetFields(BindingFlags.Instance | BindingFlags.Public)
        .Where(f => f.Name is not (nameof(Insn.Exec) or nameof(Insn.I))).ToArray();
    private static readonly FieldInfo[] CopiedFields = [typeof(Insn).GetField(nameof(Insn.Exec))!, typeof(Insn).GetField(nameof(Insn.I))!];

    /// <summary>Every handler method of the assembly by its entry point (the value a <c>&amp;Method</c> load gives).</summary>
    private static readonly Dictionary<nint, MethodInfo> Handlers = FindHandlers();

    /// <summary>The handler method at entry point <paramref name="exec"/>, or null.</summary>
    private static MethodInfo? HandlerOf(nint exec) => Handlers.TryGetValue(exec, out var m) ? m : null;

    /// <summary>
    /// Whether regions use the native forms (BlockCompiler.Native.cs). On by default; EMU64_NATIVE=0 turns them off, to compare
    /// (the counters and the guest's results are the same either way).
    /// </summary>
    public static bool NativeEnabled = Environment.GetEnvironmentVariable("EMU64_NATIVE") != "0";
    /// <summary>
    /// Which regions call their handlers directly with the decoded form as constants, so that the JIT inlines those marked
    /// AggressiveInlining: regions of at most <see cref="SmallRegion"/> instructions (a tight loop around one operation, where
    /// the call is a large part of the time and the JIT's cost is small), all of them with EMU64_INLINE=1, none with 0. In larger
    /// regions the JIT took tens of milliseconds per region to inline, which only code run millions of times pays back; without
    /// it a region costs little enough to compile code that runs 50,000 times (the native forms are IL of their own either way).
    /// docs/PERFORMANCE.md, "No calls in native regions, and cheap regions" (session 11).
    /// </summary>
    public static int? InlineHandlers = Environment.GetEnvironmentVariable("EMU64_INLINE") switch { "1" => int.MaxValue, "0" => 0, _ => null };

    /// <summary>The largest region (in instructions) whose handlers are inlined by default.</summary>
    public const int SmallRegion = 16;

    /// <summary>Instructions emitted in a native form so far, process-wide (diagnostics, tests).</summary>
    public static long NativeEmitted => Interlocked.Read(ref NativeRegion.Emitted);

    /// <summary>
    /// Methods compiled, handler calls emitted direct or through the pointer, calls of handlers not found by their entry point, and
    /// PUSH/POP runs (diagnostics, tests).
    /// </summary>
    public static long Compiled, DirectCalls, PointerCalls, UnknownHandlers, Runs;
    private static readonly MethodInfo PushRunMethod = typeof(Isa.Stack).GetMethod(nameof(Isa.Stack.PushRun), BindingFlags.Static | BindingFlags.NonPublic)!;
    private static readonly MethodInfo PopRunMethod = typeof(Isa.Stack).GetMethod(nameof(Isa.Stack.PopRun), BindingFlags.Static | BindingFlags.NonPublic)!;

    /// <summary>
    /// Whether instruction k begins or lies in a run of two or more PUSH r64 or POP r64 (<see cref="StackRunLength"/>): such a run stays
    /// one call (Stack.PushRun/PopRun, one translation for the run) instead of native forms, and its registers stay out of the region's
    /// locals. Measured on the toy kernel's system-call loop, whose entry code saves and restores pt_regs in such runs: its regions
    /// are short and entered four times a system call, and each register in locals is a load at every entry and a store at every exit.
    /// </summary>
    internal static bool InStackRun(Block block, int k, MethodInfo? mi)
    {
        if (mi is null || mi.DeclaringType != typeof(Isa.Stack)) return false;
        for (int j = k; j >= 0 && j > k - Isa.Stack.MaxRun; j--)
        {
            // a run that starts at j and reaches k (runs are cut at MaxRun, as EmitBlock cuts them)
            if (!Handlers.TryGetValue((nint)block.Insns[j].Exec, out var m) || m != mi) break;
            int n = StackRunLength(block, j, mi);
            if (n >= 2 && j + n > k) return true;
        }
        return false;
    }

    /// <summary>
    /// How many instructions from <paramref name="k"/> on are PUSH r64 (or POP r64 other than POP RSP), the same handler
    /// as instruction k, at most <see cref="Isa.Stack.MaxRun"/>; 0 if instruction k is neither.
    /// </summary>
    private static int StackRunLength(Block block, int k, MethodInfo mi)
    {
        if (mi.DeclaringType != typeof(Isa.Stack) || mi.Name is not ("PushR64" or "PopR64")) return 0;
        bool pop = mi.Name == "PopR64";
        int n = 0;
        while (k + n < block.Count && n < Isa.Stack.MaxRun)
        {
            ref Insn d = ref block.Insns[k + n];
            if (!Handlers.TryGetValue((nint)d.Exec, out var m) || m != mi || (pop && d.R0 == Reg.RSP) || d.Length > 15) break;
            n++;
        }
        return n;
    }

    private static Dictionary<nint, MethodInfo> FindHandlers()
    {
        var map = new Dictionary<nint, MethodInfo>();
        foreach (var t in typeof(Cpu).Assembly.GetTypes())
            foreach (var m in t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                if (m.ReturnType != typeof(void) || m.IsGenericMethodDefinition) continue;
                var p = m.GetParameters();
                if (p.Length != 2 || p[0].ParameterType != typeof(Cpu) || p[1].ParameterType != HandlerArgs[1]) continue;
                map.TryAdd(m.MethodHandle.GetFunctionPointer(), m);
            }
        return map;
    }

    /// <summary>How much of the per-instruction bookkeeping an instruction needs (see the class remarks).</summary>
    private enum Kind : byte
    {
        /// <summary><see cref="RegisterOnlyAttribute"/>: none.</summary>
        RegisterOnly,
        /// <summary>A handler of a <see cref="NoRipReadAttribute"/> family without a RIP-relative operand: InsnRip and Retired (it may fault), RIP only if it ends the block.</summary>
        NoRip,
        /// <summary>Anything else: InsnRip, RIP and Retired before the call.</summary>
        Full,
    }

    private static Kind Classify(ref Insn d, MethodInfo? mi)
    {
        if (mi == null) return Kind.Full;
        if (mi.IsDefined(typeof(RegisterOnlyAttribute))) return Kind.RegisterOnly;
        bool ripOperand = (d.K0 == Opnd.Mem || d.K1 == Opnd.Mem || d.K2 == Opnd.Mem) && d.Base == Reg.Rip;
        if (!ripOperand && mi.DeclaringType!.IsDefined(typeof(NoRipReadAttribute))) return Kind.NoRip;
        return Kind.Full;
    }

    /// <summary>Blocks in one compiled region at most, and instructions (the JIT's time and code quality grow with the method).</summary>
    public const int MaxRegionBlocks = 8, MaxRegionInsns = 128;

    /// <summary>
    /// Blocks in one region at most when regions cross pages (<see cref="CrossPage"/>): the toy kernel's system-call round trip is 15
    /// blocks and 103 instructions in four pages.
    /// </summary>
    public const int MaxCrossPageRegionBlocks = 16;

    /// <summary>
    /// Whether a region may hold blocks of other code pages than its head's (<see cref="Region"/>; an edge into another page does
    /// the chain's fetch itself, <see cref="Edges.EmitPage"/>). Off by default: measured, the regions it makes ran no faster than
    /// the chain going from region to region (docs/PERFORMANCE.md, "Regions across code pages"); EMU64_CROSSPAGE=1 turns it on
    /// (the counters and the guest's results are the same either way).
    /// </summary>
    public static bool CrossPage = Environment.GetEnvironmentVariable("EMU64_CROSSPAGE") == "1";

    /// <summary>
    /// The region compiled for <paramref name="head"/>: the head, then every block reachable from it through the links
    /// the chain recorded (<see cref="Successors"/>) in the head's mode, in any code page (in the head's page only without
    /// <see cref="CrossPage"/>), that has run at least half as many times as the head (the compile threshold's worth: cold paths
    /// stay out, and with them JIT time), breadth first, up to <see cref="MaxRegionBlocks"/> (<see cref="MaxCrossPageRegionBlocks"/>)
    /// and <see cref="MaxRegionInsns"/>.
    /// Only in 64-bit mode. A block that ends at a resync (a CR3 write, SYSCALL, SYSRET) may go on to the next block: the
    /// instruction armed the fetch entry for the new PCID and privilege level (Machine.ResyncFetch), and the edge goes on only
    /// when that entry maps the next block's page to its frame.
    /// </summary>
    internal static List<Block> Region(Block head)
    {
        var region = new List<Block> { head };
        if (head.Bitness != 64) return region;
        int insns = head.Count;
        int minHeat = (head.Heat + 1) / 2;   // only blocks that ran about as often as the head: its hot paths, not every path it has
        for (int i = 0; i < region.Count; i++)
            foreach (var next in Successors(region[i], head))
            {
                if (region.Contains(next) || next.Heat < minHeat) continue;
                if (region.Count == (CrossPage ? MaxCrossPageRegionBlocks : MaxRegionBlocks) || insns + next.Count > MaxRegionInsns) return region;
                region.Add(next);
                insns += next.Count;
            }
        return region;
    }

    /// <summary>
    /// The blocks that may follow <paramref name="b"/> inside <paramref name="head"/>'s region (see <see cref="Region"/>): the ones
    /// its links recorded (the chain ran them after it), and the head itself when <paramref name="b"/> is the head and
    /// branches back to its own start (a loop compiled at its first run has no links yet).
    /// </summary>
    private static IEnumerable<Block> Successors(Block b, Block head)
    {
        if (!b.Chainable) yield break;
        bool selfLoop = b == head && BranchesToItsStart(b);
        if (selfLoop) yield return head;
        foreach (var y in new[] { b.Next0, b.Next1 })
            if (y != null && y.Valid && !(selfLoop && y == head) && y.Bitness == head.Bitness && (CrossPage || SameFrame(y, b)))
                yield return y;
    }

    /// <summary>Whether two blocks lie in one physical page (then one fetch entry, armed for it, serves both).</summary>
    private static bool SameFrame(Block a, Block b) => (a.Phys & ~0xFFFUL) == (b.Phys & ~0xFFFUL);

    /// <summary>A block whose last instruction is a near jump (conditional or not) with its own first byte as the target.</summary>
    private static bool BranchesToItsStart(Block block)
    {
        ulong bytes = 0;
        for (int k = 0; k < block.Count; k++) bytes += block.Insns[k].Length;
        ref Insn last = ref block.Insns[block.Count - 1];
        var fc = last.I.FlowControl;
        if (fc is not (Iced.Intel.FlowControl.ConditionalBranch or Iced.Intel.FlowControl.UnconditionalBranch)) return false;
        if (last.K0 != Opnd.Imm || last.I.IsJmpFar) return false;
        return last.Imm == unchecked(0UL - bytes);   // the target, relative to the next instruction, is the block's start
    }

    /// <summary>
    /// A region chosen on the run loop's thread (<see cref="Region"/>) with each block's successors as the links were then, so
    /// that emitting and JIT-compiling it (<see cref="Emit"/>) reads nothing the run loop changes and can happen on another thread.
    /// </summary>
    internal sealed class RegionPlan
    {
        public readonly Block[] Blocks;
        public readonly Block[][] Successors;
        public RegionPlan(Block head)
        {
            Blocks = [.. Region(head)];
            Successors = Blocks.Select(b => BlockCompiler.Successors(b, head).ToArray()).ToArray();
        }
        public Block Head => Blocks[0];
    }

    /// <summary>
    /// Compiles <paramref name="block"/> and the rest of its <see cref="Region"/> into one method, now, on this thread, which
    /// becomes the <see cref="Block.Code"/> of the block and of every block of the region not compiled yet (each entering it at
    /// itself: a block is compiled once, not once per region it lies in). The method returns the index in
    /// <see cref="Block.Region"/> of the block it ran last, whose end the run loop then treats as it would have (links,
    /// resync, the next fetch), or -1 where the interpreter's loop returns false (an instruction ended the block early).
    /// </summary>
    public static void Compile(Block block)
    {
        var plan = new RegionPlan(block);
        Install(plan, Emit(plan));
    }

    /// <summary>
    /// Makes <paramref name="code"/> the compiled form of the plan's blocks that have none yet (a block is compiled once). Always on
    /// the run loop's thread, also for regions compiled in the background (BackgroundCompiler installs them at a fixed guest time).
    /// </summary>
    internal static void Install(RegionPlan plan, BlockCode code)
    {
        var blocks = plan.Blocks;
        for (int i = 0; i < blocks.Length; i++)
            if (blocks[i].Code is null)
            {
                blocks[i].Code = code;
                blocks[i].Region = blocks;
                blocks[i].Entry = i;
            }
        Interlocked.Increment(ref Compiled);   // process-wide: machines may run on several threads (measure --jobs)
    }

    /// <summary>Emits the plan's region as one method (see <see cref="Compile"/>); reads only the plan and the blocks' decoded instructions.</summary>
    internal static BlockCode Emit(RegionPlan plan)
    {
        var region = plan.Blocks;
        bool inline = region.Sum(b => b.Count) <= (InlineHandlers ?? SmallRegion);
        var block = plan.Head;
        var dm = new DynamicMethod($"block_{block.Phys:x}_{block.Bitness}", typeof(int), [typeof(CompiledRegion), typeof(Cpu), typeof(ulong), typeof(int)],
            typeof(Cpu).Module, skipVisibility: true);
        dm.InitLocals = false;   // every local is written before it is read (each Insn copy field by field)
        var il = dm.GetILGenerator();
        var insnsLocal = il.DeclareLocal(typeof(Insn).MakeByRefType());   // ref Insns[0] of the region: element k is at k * sizeof(Insn)
        var rip0 = il.DeclareLocal(typeof(ulong));   // RIP of the head's first instruction (the region's blocks are at fixed offsets from it)
        var ret0 = il.DeclareLocal(typeof(ulong));   // Retired when the running block started
        var el = new EdgeLocals(il.DeclareLocal(typeof(Mmu.Mmu)), il.DeclareLocal(typeof(Machine)));
        // if (entry < 0) return WarmUp: a call that only makes the JIT compile the method (BackgroundCompiler), touching nothing.
        var enter = il.DefineLabel();
        il.Emit(OpCodes.Ldarg_3);
        il.Emit(OpCodes.Ldc_I4_0);
        il.Emit(OpCodes.Bge, enter);
        il.Emit(OpCodes.Ldc_I4, WarmUp);
        il.Emit(OpCodes.Ret);
        il.MarkLabel(enter);
        il.Emit(OpCodes.Ldarg_0);
        il.Emit(OpCodes.Ldfld, RegionInsnsField);
        il.Emit(OpCodes.Ldc_I4_0);
        il.Emit(OpCodes.Ldelema, typeof(Insn));   // the one bounds check (a block has at least one instruction)
        il.Emit(OpCodes.Stloc, insnsLocal);
        var reenter = il.DefineLabel();
        il.MarkLabel(reenter);
        il.Emit(OpCodes.Ldarg_1);
        il.Emit(OpCodes.Ldfld, RipField);
        il.Emit(OpCodes.Stloc, rip0);
        il.Emit(OpCodes.Ldarg_1);
        il.Emit(OpCodes.Ldfld, RetiredField);
        il.Emit(OpCodes.Stloc, ret0);
        il.Emit(OpCodes.Ldarg_1);
        il.Emit(OpCodes.Ldfld, MmuField);
        il.Emit(OpCodes.Stloc, el.Mmu);
        il.Emit(OpCodes.Ldarg_1);
        il.Emit(OpCodes.Ldfld, MachineField);
        il.Emit(OpCodes.Stloc, el.Machine);
        // cpu.ExitBlock = false, as the interpreter starts a block: once, since the method returns as soon as an instruction sets it.
        il.Emit(OpCodes.Ldarg_1);
        il.Emit(OpCodes.Ldc_I4_0);
        il.Emit(OpCodes.Stfld, ExitBlockField);
        var retNull = il.DefineLabel();
        // Guest registers the native forms name, into IL locals for the whole method (BlockCompiler.Native.cs).
        var nat = NativeEnabled ? NativeRegion.For(il, region, HandlerOf, rip0, ret0, el.Mmu, el.Machine, insnsLocal, retNull) : null;
        if (nat != null) nat.Reenter = reenter;
        nat?.Prologue();
        nat?.EmitResumeTest();
        var exitIndex = nat is null ? null : il.DeclareLocal(typeof(int));
        var commonExit = il.DefineLabel();
        var starts = new Label[region.Length];
        for (int i = 0; i < region.Length; i++) starts[i] = il.DefineLabel();
        if (region.Length > 1)
        {
            // switch (entry): rip0 = RIP - the entry block's offset from the head; goto its start (default: the head).
            var entries = new Label[region.Length];
            for (int i = 0; i < region.Length; i++) entries[i] = il.DefineLabel();
            il.Emit(OpCodes.Ldarg_3);
            il.Emit(OpCodes.Switch, entries);
            il.Emit(OpCodes.Br, starts[0]);
            for (int i = 1; i < region.Length; i++)
            {
                il.MarkLabel(entries[i]);
                il.Emit(OpCodes.Ldloc, rip0);
                il.Emit(OpCodes.Ldc_I8, (long)(region[i].Phys - block.Phys));
                il.Emit(OpCodes.Sub);
                il.Emit(OpCodes.Stloc, rip0);
                // the prologue's view of the armed fetch entry was for the head's frame: this block's page has its own
                if (!SameFrame(region[i], block)) nat?.EnterAt(region[i].Phys - block.Phys, region[i].Phys & ~0xFFFUL);
                il.Emit(OpCodes.Br, starts[i]);
            }
            il.MarkLabel(entries[0]);
        }
        int first = 0;   // index of the block's first instruction in CompiledRegion.Insns
        for (int i = 0; i < region.Length; i++)
        {
            var b = region[i];
            il.MarkLabel(starts[i]);
            ulong start = b.Phys - block.Phys;
            bool direct = DirectBranch(b, start, out int cc, out ulong fallOff, out ulong takenOff);
            // A block that loops to itself and needs the flags at its start may find them in registers there (NativeRegion.SelfFlags):
            // its back edge then stores nothing (a sieve's `mov [rbx+rax],0; add rax,rdx; cmp r12d,eax; jg`).
            var self = nat != null && direct && plan.Successors[i].Contains(b) ? nat.SelfFlags(b) : default;
            nat?.BlockStart(start, b.Phys & ~0xFFFUL, self, direct && nat.PageMemoFor(b));
            var exit = il.DefineLabel();
            // The flags pending at the block's end stay in their locals when every successor in the region sets them all before
            // reading them (a loop's ADD ... DEC; JNZ stores nothing per iteration); the exit to the run loop stores them.
            bool keepFlags = nat != null && plan.Successors[i].Where(x => Array.IndexOf(region, x) >= 0).All(nat.FlagsDeadAtStart);
            NativeRegion.Pending endFlags = default;
            var edges = new Edges(il, region, plan.Successors[i], b, block.Phys, rip0, ret0, el, starts, exit, nat);
            if (direct)
            {
                // The block's last instruction is a near branch whose target lies in its own page: the method branches itself
                // (see DirectBranch) instead of calling the handler and then comparing RIP with each successor's start.
                EmitBlock(il, b, first, start, insnsLocal, rip0, ret0, retNull, b.Count - 1, nat, inline);
                if (self.Valid)
                {
                    // the back edge leaves the flags in registers if they are what the block's start expects there and every other
                    // successor in the region sets them before reading them; either way each edge says which (Edges.SelfFlags)
                    bool inRegs = nat!.EndsWith(self)
                        && plan.Successors[i].Where(x => x != b && Array.IndexOf(region, x) >= 0).All(nat.FlagsDeadAtStart);
                    edges.SelfFlags = inRegs;
                    keepFlags |= inRegs;
                }
                var flags = nat?.BlockEnd(!keepFlags) ?? default;
                if (keepFlags) endFlags = flags;
                // With native forms the retired count and RIP stay in ret0 and rip0 across the edge: whatever reads them stores them
                // first (a handler call, a native access's miss, the exits: Edges.EmitKnown), so a loop stores neither per iteration.
                if (nat is null) EmitStore(il, RetiredField, ret0, (ulong)b.Count);
                var taken = il.DefineLabel();
                if (cc >= 0)
                {
                    if (nat != null) nat.EmitCondition(cc, flags);   // from the flag-setting instruction's operands when it was native
                    else
                    {
                        il.Emit(OpCodes.Ldarg_1);
                        il.Emit(OpCodes.Ldc_I4, cc);
                        il.Emit(OpCodes.Call, ConditionMethod);
                    }
                    il.Emit(OpCodes.Brtrue, taken);
                    edges.EmitKnown(fallOff);
                }
                il.MarkLabel(taken);
                edges.EmitKnown(takenOff);
            }
            else
            {
                EmitBlock(il, b, first, start, insnsLocal, rip0, ret0, retNull, b.Count, nat, inline);
                var flags = nat?.BlockEnd(!keepFlags) ?? default;
                if (keepFlags) endFlags = flags;
                // After the block ran to its end: on to a successor in the region when the run loop would do just that (those in
                // the block's page first: their test is the cheaper one).
                foreach (var next in plan.Successors[i].OrderBy(n => SameFrame(n, b) ? 0 : 1))
                    if (Array.IndexOf(region, next) >= 0) edges.Emit(next);
            }
            first += b.Count;
            il.MarkLabel(exit);
            if (endFlags.Live) nat!.ExitFlags(endFlags);
            il.Emit(OpCodes.Ldc_I4, i);   // an index, not the block: the region argument is dead after the prologue (one register more)
            if (nat is null) il.Emit(OpCodes.Ret);
            else
            {
                // every exit writes back the same registers (all locals are current at a block's end): one copy of that code, so
                // that the IL, and the JIT's time, does not grow with blocks times registers
                il.Emit(OpCodes.Stloc, exitIndex!);
                il.Emit(OpCodes.Br, commonExit);
            }
        }
        if (nat is not null)
        {
            il.MarkLabel(commonExit);
            nat.AtExit();
            il.Emit(OpCodes.Ldloc, exitIndex!);
            il.Emit(OpCodes.Ret);
        }
        var resumes = nat?.EmitCold() ?? [];
        il.MarkLabel(retNull);
        il.Emit(OpCodes.Ldc_I4_M1);
        il.Emit(OpCodes.Ret);
        return (BlockCode)dm.CreateDelegate(typeof(BlockCode), new CompiledRegion(region) { Resumes = resumes });
    }

    /// <summary>
    /// What a compiled method returns, plus r, when its native access r missed the fast cache (or crossed a page, or met MMIO or
    /// code): the state is spilled as the interpreter has it before that instruction. <see cref="Resume"/> runs it and enters
    /// the method again with the same value, at the point after it. Above any block index.
    /// </summary>
    internal const int ResumeBase = 1 << 20;

    /// <summary>
    /// The run loop's half of a miss (<see cref="ResumeBase"/>): runs the instruction's own handler, as the interpreter's loop would
    /// (RIP already at the next instruction, the retired count at the instruction's), then enters <paramref name="code"/> at the
    /// resume point, until the method returns a block index (or -1). Nothing else happens in between: the guest sees one block.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static int Resume(BlockCode code, Cpu cpu, ulong stopRetired, int last)
    {
        var region = (CompiledRegion)code.Target!;
        do
        {
            int at = region.Resumes[last - ResumeBase];
            if (at >= 0)
            {
                ref Insn d = ref region.Insns[at];
                d.Exec(cpu, ref d);
                // an instruction that ended its block (ExitBlock, as the interpreter's loop tests after every instruction): it ends here
                if (cpu.ExitBlock) { cpu.Retired++; return -1; }
            }
            // (at -1 would be a direct resume point, where the method makes the access with the host address Native.DataMiss gave:
            // the method enters those itself without returning, NativeRegion.Reenter, so only a handler's point comes back here)
            last = code(cpu, stopRetired, last);
        } while (last >= ResumeBase);
        return last;
    }

    /// <summary>What a compiled method returns when called with a negative entry: it only got compiled by the JIT.</summary>
    internal const int WarmUp = -2;

    /// <summary>
    /// One block's instructions, from <paramref name="first"/> on in the region's instructions, at <paramref name="start"/> bytes from the
    /// head: leaves RIP and Retired as the interpreter's loop leaves them at the block's end, or jumps to
    /// <paramref name="retNull"/> where that loop would return false.
    /// </summary>
    private static void EmitBlock(ILGenerator il, Block block, int first, ulong start, LocalBuilder insnsLocal, LocalBuilder rip0,
        LocalBuilder ret0, Label retNull, int count, NativeRegion? nat, bool inline)
    {
        var insns = block.Insns;
        bool whole = count == block.Count;   // else the caller emits the last instruction (a direct branch) and the block's end
        ulong off = start;                        // offset of instruction k from the head's start
        bool ripSetByLast = false;
        for (int k = 0; k < count; k++)
        {
            ref Insn d = ref insns[k];
            Handlers.TryGetValue((nint)d.Exec, out var mi);
            var kind = Classify(ref d, mi);
            ulong next = off + d.Length;
            if (nat != null && !InStackRun(block, k, mi) && nat.TryEmit(ref d, mi, k, off, next, first + k))
            {
                off = next;
                continue;
            }
            nat?.BeforeHandler();
            if (kind == Kind.RegisterOnly)
            {
                EmitCall(il, insnsLocal, first + k, mi, in d, inline);
                nat?.AfterHandler();
                off = next;
                continue;
            }
            int run = kind == Kind.NoRip ? Math.Min(StackRunLength(block, k, mi!), count - k) : 0;
            if (run >= 2)
            {
                // PUSH/POP r64 × run: Stack.PushRun/PopRun, with InsnRip and Retired of the first; false if a store ended the block.
                ulong regs = 0, lengths = 0, bytes = 0;
                for (int j = 0; j < run; j++)
                {
                    regs |= (ulong)insns[k + j].R0 << (4 * j);
                    lengths |= (ulong)insns[k + j].Length << (4 * j);
                    bytes += insns[k + j].Length;
                }
                EmitStore(il, InsnRipField, rip0, off);
                EmitStore(il, RetiredField, ret0, (ulong)k);
                il.Emit(OpCodes.Ldarg_1);
                il.Emit(OpCodes.Ldc_I8, (long)regs);
                il.Emit(OpCodes.Ldc_I8, (long)lengths);
                il.Emit(OpCodes.Ldc_I4, run);
                il.Emit(OpCodes.Call, mi!.Name == "PushR64" ? PushRunMethod : PopRunMethod);
                nat?.AfterHandler();
                il.Emit(OpCodes.Brfalse, retNull);
                Interlocked.Increment(ref Runs);
                off += bytes;
                k += run - 1;
                if (k == block.Count - 1) ripSetByLast = false;
                continue;
            }
            // cpu.InsnRip = rip0 + off; [cpu.Rip = rip0 + next;] cpu.Retired = ret0 + k — as the interpreter has them.
            // (Only the block's last instruction may change RIP other than together with ExitBlock: blocks end at branches.)
            EmitStore(il, InsnRipField, rip0, off);
            if (kind == Kind.Full) EmitStore(il, RipField, rip0, next);
            EmitStore(il, RetiredField, ret0, (ulong)k);
            EmitCall(il, insnsLocal, first + k, mi, in d, inline);
            nat?.AfterHandler();
            bool last = k == block.Count - 1;
            if (last) ripSetByLast = kind == Kind.Full;
            // if (cpu.ExitBlock) { [cpu.Rip = rip0 + next;] cpu.Retired = ret0 + k + 1; return null; }
            var go = il.DefineLabel();
            il.Emit(OpCodes.Ldarg_1);
            il.Emit(OpCodes.Ldfld, ExitBlockField);
            il.Emit(OpCodes.Brfalse, go);
            if (kind != Kind.Full) EmitStore(il, RipField, rip0, next);
            EmitStore(il, RetiredField, ret0, (ulong)k + 1);
            il.Emit(OpCodes.Br, retNull);
            il.MarkLabel(go);
            off = next;
        }
        if (!whole) return;
        if (!ripSetByLast) EmitStore(il, RipField, rip0, off);
        EmitStore(il, RetiredField, ret0, (ulong)block.Count);
    }

    /// <summary>Fast Jcc rel (64-bit mode) by condition code, and JMP rel (-1): the handlers a direct branch replaces.</summary>
    private static readonly Dictionary<MethodInfo, int> DirectBranchHandlers = typeof(Isa.Flow)
        .GetMethods(BindingFlags.Static | BindingFlags.NonPublic)
        .Select(m => (m, cc: m.Name switch
        {
            "Jo" => 0, "Jno" => 1, "Jb" => 2, "Jae" => 3, "Je" => 4, "Jne" => 5, "Jbe" => 6, "Ja" => 7,
            "Js" => 8, "Jns" => 9, "Jp" => 10, "Jnp" => 11, "Jl" => 12, "Jge" => 13, "Jle" => 14, "Jg" => 15,
            "JmpRel64" => -1, _ => -2,
        }))
        .Where(x => x.cc >= -1 && x.m.GetParameters().Length == 2)
        .ToDictionary(x => x.m, x => x.cc);

    internal static readonly MethodInfo ConditionMethod = typeof(Cpu).GetMethod(nameof(Cpu.Condition))!;

    /// <summary>
    /// Whether <paramref name="b"/> (at <paramref name="start"/> bytes from the head) ends at a 64-bit fast Jcc or JMP rel32 whose
    /// taken target lies in <paramref name="b"/>'s own page; then the offsets from the head's RIP of the fall-through and the target,
    /// and the condition code (-1: JMP). Such a branch cannot fault (a target in the page of RIP is canonical) and reads nothing but
    /// the status flags and RIP, so the method can evaluate the condition and set RIP to a constant offset itself. (The offsets are
    /// from the head's RIP as the method holds it, rip0, which makes the running block's offset its linear address: see
    /// <see cref="Edges.EmitPage"/>.)
    /// </summary>
    internal static bool DirectBranch(Block b, ulong start, out int cc, out ulong fallOff, out ulong takenOff)
    {
        cc = -2; fallOff = takenOff = 0;
        if (b.Bitness != 64) return false;
        ref Insn last = ref b.Insns[b.Count - 1];
        if (!Handlers.TryGetValue((nint)last.Exec, out var mi) || !DirectBranchHandlers.TryGetValue(mi, out cc)) return false;
        ulong bytes = 0;
        for (int k = 0; k < b.Count; k++) bytes += b.Insns[k].Length;
        long target = (long)(b.Phys & 0xFFF) + (long)bytes + (long)last.Imm;   // the target's offset in the block's page
        if (target < 0 || target >= 0x1000) return false;
        fallOff = start + bytes;
        takenOff = fallOff + last.Imm;
        return true;
    }

    /// <summary>cpu.field = local + c.</summary>
    internal static void EmitStore(ILGenerator il, FieldInfo field, LocalBuilder local, ulong c)
    {
        il.Emit(OpCodes.Ldarg_1);
        il.Emit(OpCodes.Ldloc, local);
        AddConstant(il, c);
        il.Emit(OpCodes.Stfld, field);
    }

    private static readonly FieldInfo RegionBlocksField = typeof(CompiledRegion).GetField(nameof(CompiledRegion.Blocks))!;
    private static readonly MethodInfo EnterPageMethod = typeof(Machine).GetMethod(nameof(Machine.EnterPage), BindingFlags.Static | BindingFlags.NonPublic)!;
    private static readonly FieldInfo BlockValidField = typeof(Block).GetField(nameof(Block.Valid))!;

    /// <summary>
    /// The edges after one block of a region (<see cref="From"/>), to its successors in the region: what the run loop does at that
    /// boundary, emitted so that the method goes on to the successor itself whenever the run loop would do nothing but fetch it.
    /// A successor in <see cref="From"/>'s page is a same-page fetch through the armed entry (<see cref="EmitChecks"/>); one in
    /// another page is the run loop's translation of the new page (<see cref="EmitPage"/>).
    /// </summary>
    private sealed record Edges(ILGenerator Il, Block[] Region, Block[] Successors, Block From, ulong HeadPhys, LocalBuilder Rip0,
        LocalBuilder Ret0, EdgeLocals El, Label[] Starts, Label Exit, NativeRegion? Nat)
    {
        private ulong Count => (ulong)From.Count;
        /// <summary>
        /// For a block that loops to itself with its start expecting flags in registers (NativeRegion.SelfFlags): whether its back edge
        /// left them there (each edge into the region sets the method's _fromRegs accordingly: 1 on that back edge, else 0); null otherwise.
        /// </summary>
        public bool? SelfFlags { get; set; }
        /// <summary>The running block's offset from the head (rip0 + it is the block's RIP), and its page's frame.</summary>
        private ulong PageStart => From.Phys - HeadPhys;
        private ulong Frame => From.Phys & ~0xFFFUL;

        /// <summary>
        /// RIP = rip0 + <paramref name="off"/> (a direct branch's target or fall-through); then, if a region block that may follow this
        /// one starts there, the edge to it (as <see cref="Emit"/> without the RIP test: RIP is known), else the exit to the run loop.
        /// </summary>
        public void EmitKnown(ulong off)
        {
            var exit = Exit;
            if (Nat is null) EmitStore(Il, RipField, Rip0, off);
            else
            {
                // Native forms: RIP and the retired count are stored only where the method leaves from this edge (and before
                // Machine.EnterPage, which reads them). InsnRip is not: at a block boundary nothing reads it before the run loop or the
                // next instruction sets it (the run loop sets it before delivering an interrupt; handlers and misses store their own).
                exit = Il.DefineLabel();
                var il = Il;
                var rip0 = Rip0;
                var ret0 = Ret0;
                var to = Exit;
                ulong count = Count;
                Nat.AddCold(() =>
                {
                    il.MarkLabel(exit);
                    EmitStore(il, RipField, rip0, off);
                    EmitStore(il, RetiredField, ret0, count);
                    il.Emit(OpCodes.Br, to);
                });
            }
            // in this page: the block at that offset from the head; past its end (a fall-through at the page's last byte): any block
            // at that offset in its page (EmitPage checks the frame)
            ulong low = (From.Phys + (off - PageStart)) & 0xFFF;
            bool inPage = off - PageStart + (From.Phys & 0xFFF) < 0x1000;
            foreach (var next in Successors)
            {
                int j = Array.IndexOf(Region, next);
                if (j < 0) continue;
                if (inPage && SameFrame(next, From) && next.Phys - HeadPhys == off) { EmitChecks(next, off, Starts[j], exit); return; }
                if (!inPage && !SameFrame(next, From) && (next.Phys & 0xFFF) == low)
                {
                    if (Nat is not null) { EmitStore(Il, RipField, Rip0, off); EmitStore(Il, RetiredField, Ret0, Count); }
                    EmitPage(next, j);
                    return;
                }
            }
            Il.Emit(OpCodes.Br, exit);
        }

        /// <summary>
        /// After the block ran to its end: if RIP is <paramref name="next"/>'s start and the run loop would do nothing but fetch it, on
        /// to it. Otherwise this falls through to the next candidate (or the caller's exit).
        /// </summary>
        public void Emit(Block next)
        {
            var il = Il;
            var notThis = il.DefineLabel();
            int j = Array.IndexOf(Region, next);
            if (SameFrame(next, From))
            {
                // if (cpu.Rip != rip0 + start) goto notThis;
                il.Emit(OpCodes.Ldarg_1);
                il.Emit(OpCodes.Ldfld, RipField);
                il.Emit(OpCodes.Ldloc, Rip0);
                AddConstant(il, next.Phys - HeadPhys);
                il.Emit(OpCodes.Bne_Un, notThis);
                EmitChecks(next, next.Phys - HeadPhys, Starts[j], Exit);
            }
            else
            {
                // if ((cpu.Rip & 0xFFF) != next's offset in its page) goto notThis;   (the frame is the translation's: EmitPage)
                il.Emit(OpCodes.Ldarg_1);
                il.Emit(OpCodes.Ldfld, RipField);
                il.Emit(OpCodes.Conv_U4);
                il.Emit(OpCodes.Ldc_I4, 0xFFF);
                il.Emit(OpCodes.And);
                il.Emit(OpCodes.Ldc_I4, (int)(next.Phys & 0xFFF));
                il.Emit(OpCodes.Bne_Un, notThis);
                EmitPage(next, j);
            }
            il.MarkLabel(notThis);
        }

        /// <summary>The edge to <paramref name="next"/> in this block's page once RIP is its start: the run loop's tests, the same-page fetch, then on to it.</summary>
        private void EmitChecks(Block next, ulong start, Label target, Label exit)
        {
            var il = Il;
            if (Nat != null) Nat.EmitEdgeTest(Count, (ulong)next.Count, exit);   // the same tests, with what only handlers change in locals
            else EmitRunLoopTest(next, PageStart, Frame);
            EmitArmedFetch(start);
            if (SelfFlags is bool kept) Nat!.EdgeFlags(kept && next == From);
            il.Emit(OpCodes.Br, target);
        }

        /// <summary>The next block's fetch through the armed entry, and the step to it: mmu._fetchPending++; cpu.InsnRip = rip0 + start; ret0 += count.</summary>
        private void EmitArmedFetch(ulong start)
        {
            var il = Il;
            il.Emit(OpCodes.Ldloc, El.Mmu);
            il.Emit(OpCodes.Ldloc, El.Mmu);
            il.Emit(OpCodes.Ldfld, FetchPendingField);
            il.Emit(OpCodes.Ldc_I8, 1L);
            il.Emit(OpCodes.Add);
            il.Emit(OpCodes.Stfld, FetchPendingField);
            if (Nat is null) EmitStore(il, InsnRipField, Rip0, start);   // (native forms: see EmitKnown)
            AdvanceRetired();
        }

        /// <summary>
        /// The edge to region block <paramref name="j"/> (<paramref name="next"/>), in another page than this block, once RIP's offset in
        /// its page is <paramref name="next"/>'s: what the chain does between them when it would go on to <paramref name="next"/>, else
        /// the exit (having changed nothing the chain sees). Then rip0 is such that rip0 plus each block's offset from the head is its RIP
        /// in the new page (the blocks of one page keep their distances, whatever the linear page), and the method goes on at the block.
        /// After SYSCALL, SYSRET or MOV to CR3 the instruction armed the fetch entry for RIP with the new privilege level and PCID when the
        /// fast cache held it (Machine.ResyncFetch), so the edge is the in-page edge's test for the new page: armed for it and mapped to
        /// <paramref name="next"/>'s frame (no call); after anything else the page must be translated, as the chain does, by
        /// <see cref="Machine.EnterPage"/>. Either way the block must still be valid: a store into its page between two entries of the
        /// region dropped it (inside the region such a store ends the block).
        /// </summary>
        public void EmitPage(Block next, int j)
        {
            var il = Il;
            ulong start = next.Phys - HeadPhys, frame = next.Phys & ~0xFFFUL;
            if (From.Resync)
            {
                // rip0 = cpu.Rip - start first: the tests read the new page through it (an exit from here reads neither it nor the edges' local)
                EmitRip0(start);
                if (Nat != null)
                {
                    Nat.EnterAt(start, frame);
                    Nat.EmitEdgeTest(Count, (ulong)next.Count, Exit, start, frame);
                }
                else EmitRunLoopTest(next, start, frame);
                EmitValidTest(j);
                EmitArmedFetch(start);   // cpu.InsnRip = RIP of the new page's block
                if (SelfFlags is not null) Nat!.EdgeFlags(false);   // (another page: never the back edge)
                il.Emit(OpCodes.Br, Starts[j]);
                return;
            }
            // if (!Machine.EnterPage(cpu, region.Blocks[j], stopRetired)) goto exit;   (it tests Valid too, and sets InsnRip)
            il.Emit(OpCodes.Ldarg_1);
            EmitBlockRef(j);
            il.Emit(OpCodes.Ldarg_2);
            il.Emit(OpCodes.Call, EnterPageMethod);
            il.Emit(OpCodes.Brfalse, Exit);
            EmitRip0(start);
            AdvanceRetired();
            Nat?.PageEntered();
            if (SelfFlags is not null) Nat!.EdgeFlags(false);
            il.Emit(OpCodes.Br, Starts[j]);
        }

        /// <summary>rip0 = cpu.Rip - <paramref name="start"/>.</summary>
        private void EmitRip0(ulong start)
        {
            Il.Emit(OpCodes.Ldarg_1);
            Il.Emit(OpCodes.Ldfld, RipField);
            Il.Emit(OpCodes.Ldc_I8, (long)start);
            Il.Emit(OpCodes.Sub);
            Il.Emit(OpCodes.Stloc, Rip0);
        }

        /// <summary>Pushes the region's block <paramref name="j"/> (CompiledRegion.Blocks).</summary>
        private void EmitBlockRef(int j)
        {
            Il.Emit(OpCodes.Ldarg_0);
            Il.Emit(OpCodes.Ldfld, RegionBlocksField);
            Il.Emit(OpCodes.Ldc_I4, j);
            Il.Emit(OpCodes.Ldelem_Ref);
        }

        /// <summary>if (!region.Blocks[j].Valid) goto exit.</summary>
        private void EmitValidTest(int j)
        {
            EmitBlockRef(j);
            Il.Emit(OpCodes.Ldfld, BlockValidField);
            Il.Emit(OpCodes.Brfalse, Exit);
        }
        private void AdvanceRetired()
        {
            Il.Emit(OpCodes.Ldloc, Ret0);
            Il.Emit(OpCodes.Ldc_I8, (long)Count);
            Il.Emit(OpCodes.Add);
            Il.Emit(OpCodes.Stloc, Ret0);
        }

        /// <summary>The run loop's tests at an edge in this block's page, each read from the machine and the MMU (a region without <see cref="NativeRegion"/>).</summary>
        private void EmitRunLoopTest(Block next, ulong pageStart, ulong frame)
        {
            var il = Il;
            var el = El;
            ulong count = Count;
            // cpu.Retired is ret0 + count here (the block's end stored it).
            EmitStopTest(il, Ret0, count + (ulong)next.Count, Exit);
            // if (machine.ChainMustLeave()) goto exit; inline: cpu.Retired + _idle >= NextEventAt || InterruptLine || DebugStepHook
            EmitEventTest(il, Ret0, count, el.Machine, Exit);
            il.Emit(OpCodes.Ldloc, el.Machine);
            il.Emit(OpCodes.Ldfld, AttentionField);
            il.Emit(OpCodes.Brtrue, Exit);
            EmitUnlessArmed(il, el.Mmu, Rip0, pageStart, frame, Exit);
        }
    }

    /// <summary>
    /// if (ret0 + <paramref name="count"/> + idle &gt;= NextEventAt) goto exit: <see cref="Machine.ChainMustLeave"/>'s event test at the end of
    /// a block of <paramref name="count"/> instructions (an edge's test).
    /// </summary>
    internal static void EmitEventTest(ILGenerator il, LocalBuilder ret0, ulong count, LocalBuilder machine, Label exit)
    {
        il.Emit(OpCodes.Ldloc, ret0);
        il.Emit(OpCodes.Ldc_I8, (long)count);
        il.Emit(OpCodes.Add);
        il.Emit(OpCodes.Ldloc, machine);
        il.Emit(OpCodes.Ldfld, IdleField);
        il.Emit(OpCodes.Add);
        il.Emit(OpCodes.Ldloc, machine);
        il.Emit(OpCodes.Ldfld, NextEventAtField);
        il.Emit(OpCodes.Bge_Un, exit);
    }

    /// <summary>
    /// Goes to <paramref name="unarmed"/> unless the fetch entry is armed for the page of the block at <paramref name="pageStart"/> from the
    /// head and mapped to <paramref name="frame"/>: mmu._fetchSlot &gt;= 0, mmu._fetchPage == (rip0 +
    /// pageStart) &gt;&gt; 12, mmu._fetchFrame == frame.
    /// </summary>
    internal static void EmitUnlessArmed(ILGenerator il, LocalBuilder mmu, LocalBuilder rip0, ulong pageStart, ulong frame, Label unarmed)
    {
        il.Emit(OpCodes.Ldloc, mmu);
        il.Emit(OpCodes.Ldfld, FetchSlotField);
        il.Emit(OpCodes.Ldc_I4_0);
        il.Emit(OpCodes.Blt, unarmed);
        il.Emit(OpCodes.Ldloc, mmu);
        il.Emit(OpCodes.Ldfld, FetchPageField);
        il.Emit(OpCodes.Ldloc, rip0);
        AddConstant(il, pageStart);
        il.Emit(OpCodes.Ldc_I4, 12);
        il.Emit(OpCodes.Shr_Un);
        il.Emit(OpCodes.Bne_Un, unarmed);
        il.Emit(OpCodes.Ldloc, mmu);
        il.Emit(OpCodes.Ldfld, FetchFrameField);
        il.Emit(OpCodes.Ldc_I8, (long)frame);
        il.Emit(OpCodes.Bne_Un, unarmed);
    }

    /// <summary>if (ret0 + <paramref name="total"/> &gt; stopRetired) goto exit: the whole next block must fit before the stop (an edge's test).</summary>
    internal static void EmitStopTest(ILGenerator il, LocalBuilder ret0, ulong total, Label exit)
    {
        il.Emit(OpCodes.Ldloc, ret0);
        il.Emit(OpCodes.Ldc_I8, (long)total);
        il.Emit(OpCodes.Add);
        il.Emit(OpCodes.Ldarg_2);
        il.Emit(OpCodes.Bgt_Un, exit);
    }
    /// <summary>
    /// handler(cpu, ref insns[k]): through Insn.Exec (which the JIT does not inline), or where the region inlines (<paramref name="inline"/>,
    /// <see cref="InlineHandlers"/>) a direct
    /// call when the method is known.
    /// </summary>
    private static void EmitCall(ILGenerator il, LocalBuilder insns, int k, MethodInfo? mi, in Insn d, bool inline)
    {
        if (mi == null) Interlocked.Increment(ref UnknownHandlers);   // then it cannot be classified either (Classify)
        if (!inline) mi = null;
        if (mi != null && (mi.MethodImplementationFlags & MethodImplAttributes.AggressiveInlining) != 0)
        {
            // A handler the JIT inlines: give it a local copy of the decoded form whose scalar fields are constants,
            // so that the JIT folds the operand decoding (operand kinds, register numbers, displacement, segment,
            // address size) into the code. The handler pointer and the Iced instruction are copied as they are, so
            // the copy is complete whatever the handler reads (stores nobody reads are dropped by the JIT).
            var loc = il.DeclareLocal(typeof(Insn));
            foreach (var f in CopiedFields)
            {
                il.Emit(OpCodes.Ldloca, loc);
                EmitElement(il, insns, k);
                il.Emit(OpCodes.Ldfld, f);
                il.Emit(OpCodes.Stfld, f);
            }
            foreach (var f in ConstantFields)
            {
                object v = f.GetValue(d)!;
                il.Emit(OpCodes.Ldloca, loc);
                if (f.FieldType == typeof(ulong) || f.FieldType == typeof(long)) il.Emit(OpCodes.Ldc_I8, Convert.ToInt64(v is ulong u ? unchecked((long)u) : v));
                else il.Emit(OpCodes.Ldc_I4, Convert.ToInt32(v is Opnd o ? (int)o : v));
                il.Emit(OpCodes.Stfld, f);
            }
            il.Emit(OpCodes.Ldarg_1);
            il.Emit(OpCodes.Ldloca, loc);
            il.Emit(OpCodes.Call, mi);
            Interlocked.Increment(ref DirectCalls);
            return;
        }
        il.Emit(OpCodes.Ldarg_1);
        EmitElement(il, insns, k);
        if (mi != null)
        {
            il.Emit(OpCodes.Call, mi);
            Interlocked.Increment(ref DirectCalls);
            return;
        }
        EmitElement(il, insns, k);
        il.Emit(OpCodes.Ldfld, ExecField);
        il.EmitCalli(OpCodes.Calli, CallingConventions.Standard, typeof(void), HandlerArgs, null);
        Interlocked.Increment(ref PointerCalls);
    }

    /// <summary>ref Insns[k], from the reference to element 0 (no bounds check: k is below the block's count).</summary>
    internal static void EmitElement(ILGenerator il, LocalBuilder insns, int k)
    {
        il.Emit(OpCodes.Ldloc, insns);
        if (k == 0) return;
        il.Emit(OpCodes.Ldc_I4, k);
        il.Emit(OpCodes.Sizeof, typeof(Insn));
        il.Emit(OpCodes.Mul);
        il.Emit(OpCodes.Add);
    }

    private static void AddConstant(ILGenerator il, ulong c)
    {
        if (c == 0) return;
        il.Emit(OpCodes.Ldc_I8, (long)c);
        il.Emit(OpCodes.Add);
    }

}
