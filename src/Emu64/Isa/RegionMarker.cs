using Iced.Intel;
using Emu64.Cpu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Isa;

/// <summary>
/// The user-mode region marker (docs/MEASURE.md, "Marking a region from a user program"): one multi-byte NOP,
/// <c>0F 1F 80 disp32</c> = <c>nopl disp32(%rax)</c>, whose displacement carries a magic value, begins or ends a
/// measured region exactly as a write to the kernel-information port 0xEA does (<see cref="Introspection.KernelInfoPort"/>).
/// <para>
/// Why a NOP: the SDM defines <c>0F 1F /0</c> (NOP r/m32) as doing nothing on every x86-64 processor. Its memory
/// operand is never accessed, so it cannot fault whatever RAX holds, at any privilege level, under QEMU, KVM or on
/// hardware; an unprivileged program can execute it, unlike OUT (which needs IOPL or the TSS permission map) or
/// Bochs's <c>xchg bx,bx</c> (which changes nothing but is an ordinary, common instruction). Assemblers pad with
/// <c>nopl 0x0(%rax)</c> (displacement 0), never with a nonzero 32-bit displacement, so the magic never appears by chance.
/// </para>
/// <para>
/// The displacement: bits 31..20 are <see cref="Magic"/> (0xE64), bits 19..8 the region id (0..4095), bits 7..0 the
/// operation, 1 = begin and 2 = end, the port's <c>(id &lt;&lt; 8) | op</c> layout. Only this exact encoding counts
/// (7 bytes: no prefix, ModRM 0x80, base RAX or EAX, no index); anything else stays an ordinary NOP.
/// </para>
/// The decision is taken once, when the instruction is decoded (<see cref="Specialize"/>): an ordinary NOP keeps
/// its empty handler and costs nothing more than before, in the interpreter and in compiled blocks alike, and a
/// marker's handler is an ordinary call both of them make with the instruction count and RIP up to date.
/// </summary>
public static unsafe class RegionMarker
{
    public const uint Magic = 0xE64, MagicMask = 0xFFF00000, MagicBits = Magic << 20;
    public const int OpBegin = Introspection.KernelInfoPort.OpRegionBegin, OpEnd = Introspection.KernelInfoPort.OpRegionEnd;
    public const int MaxId = 0xFFF;
    /// <summary>The marker's length: 0F 1F, ModRM 0x80, disp32.</summary>
    public const int Length = 7;

    /// <summary>The displacement of the marker that begins (<paramref name="op"/> 1) or ends (2) region <paramref name="id"/>.</summary>
    public static uint Displacement(int id, int op) => MagicBits | ((uint)id << 8) | (uint)op;

    /// <summary>The marker's bytes: <c>0F 1F 80</c> and the displacement, little-endian.</summary>
    public static byte[] Encode(int id, int op)
    {
        uint d = Displacement(id, op);
        return [0x0F, 0x1F, 0x80, (byte)d, (byte)(d >> 8), (byte)(d >> 16), (byte)(d >> 24)];
    }

    /// <summary>
    /// Whether <paramref name="ins"/> is a marker. Seven bytes with base RAX/EAX and no index can only be 0F 1F, ModRM
    /// 0x80 and a disp32 (a SIB byte or a prefix would make it longer).
    /// </summary>
    public static bool Is(in Instruction ins)
    {
        if (ins.Code != Code.Nop_rm32 || ins.Length != Length || ins.Op0Kind != OpKind.Memory || ins.MemoryIndex != Register.None
            || ins.MemoryBase is not (Register.RAX or Register.EAX)) return false;
        uint disp = (uint)ins.MemoryDisplacement64;
        return (disp & MagicMask) == MagicBits && (disp & 0xFF) is OpBegin or OpEnd;
    }

    /// <summary>
    /// At decode: points a marker's handler at <see cref="Mark"/>; leaves every other instruction alone. The decoder
    /// also ends the block after a marker (DecodeCache.EndsBlock), as it does after the port's OUT, so that a region
    /// has the very counters (instruction fetches included) it would have with the port.
    /// </summary>
    internal static void Specialize(ref Insn d)
    {
        if (d.CodeId == (ushort)Code.Nop_rm32 && Is(in d.I)) d.Exec = &Mark;
    }

    /// <summary>Begins or ends the region: the same snapshot, at the same instruction count, as the port's OUT takes.</summary>
    private static void Mark(CpuCore cpu, ref Insn i)
    {
        uint disp = (uint)i.I.MemoryDisplacement64;
        cpu.Machine.KernelInfo.MarkRegion((int)(disp & 0xFF), (int)((disp >> 8) & MaxId));
    }
}
