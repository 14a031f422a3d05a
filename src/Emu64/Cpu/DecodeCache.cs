using Iced.Intel;
using Emu64.Memory;

namespace Emu64.Cpu;

/// <summary>A run of decoded instructions from one physical page, ending at a branch or a serializing instruction.</summary>
public sealed class Block
{
    public readonly Insn[] Insns;
    public readonly int Count;
    public readonly ulong Phys;
    public readonly int Bitness;
    /// <summary>False once a store hit the page; a block that is running finishes its current instruction only.</summary>
    public bool Valid = true;
    /// <summary>
    /// The run loop may go on to the next block without leaving its inner loop: the block ends at a near
    /// branch, call or return, at the end of its page or at the instruction limit, or at one of the few system
    /// instructions after which the run loop would only re-check events and interrupts (IN, MOV to CR8, WRMSR:
    /// <see cref="DecodeCache.ContinuesChain"/>) — never at an instruction that changes mode, privilege, paging or
    /// the interrupt flag.
    /// </summary>
    public readonly bool Chainable;
    /// <summary>
    /// The block ends at an instruction after which the chain may go on once it has re-read the privilege level
    /// and mode and checked TF (SYSCALL, SYSRET, MOV to CR3): those change what a fetch is, not how the outer loop acts.
    /// </summary>
    public readonly bool Resync;
    /// <summary>Successors seen so far (fall-through and taken target), checked by physical address and <see cref="Valid"/> before use.</summary>
    public Block? Next0, Next1;
    /// <summary>The block compiled to a .NET method once it ran <see cref="MachineOptions.CompileThreshold"/> times (BlockCompiler.cs).</summary>
    public BlockCode? Code;
    /// <summary>The blocks <see cref="Code"/> runs (BlockCompiler.Region), this one at <see cref="Entry"/>; it returns an index into them.</summary>
    public Block[]? Region;
    public int Entry;
    /// <summary>Whole-block runs so far, counted until the block is compiled.</summary>
    public int Heat;

    public Block(Insn[] insns, int count, ulong phys, int bitness, bool chainable = false, bool resync = false)
    {
        Insns = insns; Count = count; Phys = phys; Bitness = bitness; Chainable = chainable || resync; Resync = resync;
    }
}

/// <summary>
/// Decoded-instruction cache keyed by physical address and mode, so hot code is decoded once however
/// many linear aliases it has. A store to a frame that holds cached code drops that frame's blocks
/// (<see cref="PhysicalMemory.CodeWritten"/>), which makes self-modifying code work.
/// </summary>
public sealed class DecodeCache
{
    public const int MaxBlockInsns = 64;
    private readonly Dictionary<ulong, Block> _blocks = new();
    private readonly Dictionary<ulong, List<ulong>> _byFrame = new();
    private readonly PhysicalMemory _mem;
    private readonly byte[] _bytes = new byte[4096 + 16];
    public ulong Decodes, Invalidations;
    /// <summary>Blocks compiled to .NET methods (BlockCompiler.cs), counted by the run loop.</summary>
    public ulong Compiled;

    public DecodeCache(PhysicalMemory mem)
    {
        _mem = mem;
        _reader = new WindowReader(_bytes);
    }

    private static ulong Key(ulong phys, int bitness) => phys | ((ulong)bitness << 56);

    // A direct-mapped memo in front of the dictionary for blocks entered from the outer run loop (after
    // SYSCALL, IRET, interrupts...), where no block link applies. Entries are checked by address, mode and Valid.
    private readonly Block?[] _recent = new Block?[1024];

    public Block? Lookup(ulong phys, int bitness)
    {
        ref Block? r = ref _recent[(int)(phys ^ (phys >> 10)) & 1023];
        var b = r;
        if (b != null && b.Phys == phys && b.Bitness == bitness && b.Valid) return b;
        if (!_blocks.TryGetValue(Key(phys, bitness), out b)) return null;
        r = b;
        return b;
    }

    /// <summary>Every valid cached block (tests, diagnostics).</summary>
    internal IEnumerable<Block> Blocks => _blocks.Values;

    public void Invalidate(ulong frame)
    {
        if (!_byFrame.Remove(frame, out var keys)) return;
        foreach (var k in keys)
            if (_blocks.Remove(k, out var b)) b.Valid = false;
        Invalidations++;
    }

    public void Clear()
    {
        foreach (var b in _blocks.Values) b.Valid = false;
        _blocks.Clear();
        _byFrame.Clear();
    }

    /// <summary>Bytes read for a block's first decoding attempt (<see cref="Decode"/>).</summary>
    private const int FirstWindow = 256;

    /// <summary>
    /// <see cref="Decode"/>'s decoders, one per bitness, reading <see cref="_bytes"/> through <see cref="_reader"/>: made once, not per
    /// block (an Iced decoder per block was the largest allocation of a Linux boot, over half of its 195 MB).
    /// </summary>
    private readonly Decoder?[] _decoders = new Decoder?[3];
    private readonly WindowReader _reader;

    private Decoder DecoderFor(int bitness)
        => _decoders[bitness >> 5] ??= Decoder.Create(bitness, _reader, 0, DecoderOptions.None);   // 16, 32, 64 -> 0, 1, 2

    /// <summary>The first <c>End</c> bytes of a buffer, as an Iced code reader that can start again (-1 past the end: NoMoreBytes).</summary>
    private sealed class WindowReader(byte[] data) : CodeReader
    {
        private int _pos, _end;
        public void Reset(int end) { _pos = 0; _end = end; }
        public override int ReadByte() => _pos < _end ? data[_pos++] : -1;
    }

    /// <summary>
    /// Where <see cref="Decode"/> builds a block before copying it into an array of its own size: a new array of
    /// <see cref="MaxBlockInsns"/> per block (5.6 KB, zeroed, then resized) was 450 MB of garbage in the Debian boot's 80,000 decodes.
    /// </summary>
    private readonly Insn[] _scratch = new Insn[MaxBlockInsns];

    /// <summary>
    /// Decodes a block starting at physical address <paramref name="phys"/> (linear <paramref name="rip"/>).
    /// Stops before an instruction that would cross into the next page; returns null if the very first
    /// instruction does (the caller decodes that one on its own with both pages' bytes).
    /// </summary>
    public Block? Decode(ulong phys, ulong rip, int bitness)
    {
        int off = (int)(phys & 0xFFF);
        int avail = 4096 - off;
        if (!_mem.IsRam(phys, avail)) return null;
        // Most blocks are a few dozen bytes: read a window first, and the rest of the page only for a block that runs past it.
        int window = Math.Min(avail, FirstWindow);
    again:
        _mem.ReadBytes(phys, _bytes.AsSpan(0, window));
        _reader.Reset(window);
        var dec = DecoderFor(bitness);
        dec.IP = rip;
        var list = _scratch;
        int n = 0;
        int pos = 0;
        bool chainable = true, resync = false;
        while (n < MaxBlockInsns)
        {
            dec.Decode(out var ins);
            if (ins.Code == Code.INVALID && dec.LastError == DecoderError.NoMoreBytes)
            {
                if (window < avail) { window = avail; goto again; }   // the window ended, not the page
                break;                                                 // crosses the page
            }
            list[n] = default;   // the scratch array is reused: each instruction starts from zero, as in a new array
            Prepare(in ins, ref list[n], bitness, _bytes.AsSpan(pos, ins.Length));
            pos += ins.Length;
            n++;
            if (EndsBlock(in ins)) { chainable = IsNearBranch(in ins) || ContinuesChain(in ins); resync = ChainsAfterResync(in ins); break; }
        }
        if (n == 0) return null;
        var block = new Block(list.AsSpan(0, n).ToArray(), n, phys, bitness, chainable, resync);
        _blocks[Key(phys, bitness)] = block;
        ulong frame = phys >> 12;
        if (!_byFrame.TryGetValue(frame, out var keys)) _byFrame[frame] = keys = new List<ulong>();
        keys.Add(Key(phys, bitness));
        _mem.MarkCode(frame);
        Decodes++;
        return block;
    }

    /// <summary>
    /// <see cref="DecodeOne"/> for the run loop's page-crossing instructions (never cached: they run from two pages), with this
    /// cache's decoders and buffer instead of a new decoder, reader and array at every execution.
    /// </summary>
    public void DecodeCrossing(ReadOnlySpan<byte> bytes, ulong rip, int bitness, ref Insn d)
    {
        bytes.CopyTo(_bytes);   // (Decode's buffer: it holds nothing between calls)
        _reader.Reset(bytes.Length);
        var dec = DecoderFor(bitness);
        dec.IP = rip;
        dec.Decode(out var ins);
        d = default;
        Prepare(in ins, ref d, bitness, _bytes.AsSpan(0, bytes.Length));
    }

    /// <summary>Decodes one instruction from raw bytes (test rigs that step one instruction; the run loop uses <see cref="DecodeCrossing"/>).</summary>
    public static void DecodeOne(ReadOnlySpan<byte> bytes, ulong rip, int bitness, ref Insn d)
    {
        var arr = bytes.ToArray();
        var dec = Decoder.Create(bitness, new ByteArrayCodeReader(arr), rip, DecoderOptions.None);
        dec.Decode(out var ins);
        Prepare(in ins, ref d, bitness, arr);
    }

    private static void Prepare(in Instruction ins, ref Insn d, int bitness, ReadOnlySpan<byte> raw)
    {
        InsnBuilder.Build(in ins, ref d, bitness, HasAddressSizePrefix(raw, bitness));
        X87Opcode(raw, ref d);
        Emu64.Isa.HandlerTable.Bind(ref d);
    }

    /// <summary>
    /// x87 instructions (escape opcodes D8..DF, which take no immediate) keep their FOP in <see cref="Insn.Imm"/>: the low
    /// three bits of the escape byte and the ModR/M byte (SDM vol. 1 §8.1.9), as FNSTENV/FXSAVE report it.
    /// </summary>
    private static void X87Opcode(ReadOnlySpan<byte> raw, ref Insn d)
    {
        for (int k = 0; k + 1 < raw.Length; k++)
        {
            byte b = raw[k];
            if (b is >= 0xD8 and <= 0xDF) { d.Imm = (ulong)(((b & 7) << 8) | raw[k + 1]); return; }
            bool prefix = b is 0x9B or 0x66 or 0x67 or 0xF0 or 0xF2 or 0xF3 or 0x2E or 0x36 or 0x3E or 0x26 or 0x64 or 0x65 or (>= 0x40 and <= 0x4F);
            if (!prefix) return;
        }
    }

    /// <summary>Scans the legacy prefixes for 0x67 (Iced does not expose the address size).</summary>
    private static bool HasAddressSizePrefix(ReadOnlySpan<byte> raw, int bitness)
    {
        foreach (byte b in raw)
        {
            if (b == 0x67) return true;
            bool prefix = b is 0x66 or 0xF0 or 0xF2 or 0xF3 or 0x2E or 0x36 or 0x3E or 0x26 or 0x64 or 0x65
                          || (bitness == 64 && b >= 0x40 && b <= 0x4F);
            if (!prefix) return false;
        }
        return false;
    }

    /// <summary>A near JMP/Jcc/CALL/RET/LOOPcc/JrCXZ: a block ending with it may chain to its successor.</summary>
    private static bool IsNearBranch(in Instruction ins)
    {
        switch (ins.FlowControl)
        {
            case FlowControl.ConditionalBranch:
                return !ins.IsJmpFar && !ins.IsCallFar;
            case FlowControl.UnconditionalBranch: case FlowControl.IndirectBranch:
                return ins.Mnemonic == Mnemonic.Jmp && !ins.IsJmpFar && !ins.IsJmpFarIndirect;
            case FlowControl.Call: case FlowControl.IndirectCall:
                return ins.Mnemonic == Mnemonic.Call && !ins.IsCallFar && !ins.IsCallFarIndirect;
            case FlowControl.Return:
                return ins.Mnemonic == Mnemonic.Ret;
            default:
                return false;
        }
    }

    /// <summary>
    /// IN (to a register), MOV to CR8 and WRMSR end their block, but what they can change that the run loop must react to
    /// it sees at the block boundary, where the chain checks exactly what the outer loop would (Machine.ChainMustLeave):
    /// a device read, a task-priority write or an APIC timer write that raises the interrupt line sets
    /// <c>Machine.InterruptLine</c> (and ends the block at once through <see cref="Cpu.ExitBlock"/>); one that reschedules a
    /// timer moves <c>Machine.NextEventAt</c>; a device that stops the machine sets ExitBlock. None of them changes the mode,
    /// the privilege level, paging, RFLAGS or the debug state, which the chain caches. WRMSR sets ExitBlock itself for every
    /// MSR except IA32_TSC_DEADLINE (SystemInsns.Wrmsr), so only that write continues the chain. Kept: the block ends at
    /// them, so interrupts are taken at the same instruction boundaries as before (issue #19: these are the instructions
    /// kvm-unit-tests' vmexit times).
    /// </summary>
    internal static bool ContinuesChain(in Instruction ins)
        => ins.Mnemonic is Mnemonic.In or Mnemonic.Wrmsr
           || ins.Mnemonic == Mnemonic.Mov && ins.Op0Kind == OpKind.Register && ins.Op0Register == Register.CR8;

    /// <summary>
    /// SYSCALL, SYSRET and MOV to CR3: the chain may continue after them (<see cref="Block.Resync"/>). Iced names the
    /// REX.W form (back to 64-bit code, the one every 64-bit kernel uses) <c>Sysretq</c>, a mnemonic of its own.
    /// </summary>
    internal static bool ChainsAfterResync(in Instruction ins)
        => ins.Mnemonic is Mnemonic.Syscall or Mnemonic.Sysret or Mnemonic.Sysretq
           || ins.Mnemonic == Mnemonic.Mov && ins.Op0Kind == OpKind.Register && ins.Op0Register == Register.CR3;

    /// <summary>Branches and anything that can change mode, paging, interrupts or code end a block.</summary>
    private static bool EndsBlock(in Instruction ins)
    {
        if (ins.FlowControl != FlowControl.Next) return true;
        switch (ins.Mnemonic)
        {
            case Mnemonic.Mov when ins.Op0Kind == OpKind.Register && (ins.Op0Register.IsCR() || ins.Op0Register.IsDR() || ins.Op0Register == Register.SS):
            case Mnemonic.Pop when ins.Op0Register == Register.SS:
            case Mnemonic.Wrmsr: case Mnemonic.Lgdt: case Mnemonic.Lidt: case Mnemonic.Lldt: case Mnemonic.Ltr:
            case Mnemonic.Invlpg: case Mnemonic.Invpcid: case Mnemonic.Sti: case Mnemonic.Cli: case Mnemonic.Popf:
            case Mnemonic.Out: case Mnemonic.Outsb: case Mnemonic.Outsw: case Mnemonic.Outsd:
            case Mnemonic.In: case Mnemonic.Insb: case Mnemonic.Insw: case Mnemonic.Insd:
            case Mnemonic.Wrpkru: case Mnemonic.Lmsw: case Mnemonic.Clts:
            case Mnemonic.Wbinvd: case Mnemonic.Invd: case Mnemonic.Wrfsbase: case Mnemonic.Wrgsbase:
            case Mnemonic.Stac: case Mnemonic.Clac: case Mnemonic.Fxrstor: case Mnemonic.Ldmxcsr:
            case Mnemonic.Nop when Isa.RegionMarker.Is(in ins):   // a region's begin or end: where the port's OUT would end it
                return true;
        }
        return false;
    }
}
