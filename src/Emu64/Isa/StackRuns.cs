using System.Runtime.CompilerServices;
using Emu64.Cpu;
using Emu64.Mmu;
using CpuCore = Emu64.Cpu.Cpu;

namespace Emu64.Isa;

/// <summary>
/// Runs of PUSH r64 or POP r64 in a compiled block (an entry path saving every register, its exit restoring them),
/// done as the same number of separate instructions would be, with less work per instruction. When all the slots lie
/// in one page whose fast-cache entry for the access is live with a host frame (Mmu.HostData: RAM, and for stores no
/// decoded code), every instruction would hit that entry and none can fault or end the block: the run counts that many
/// hits and stores or loads straight into the page. Otherwise the first runs the ordinary way: it translates its slot (counting a lookup, walking and filling on a miss, faulting if it must).
/// When the other slots lie in the same page and the fast cache holds the entry that answered (Mmu.RepeatHits),
/// each of them is that entry's hit again — counted as one, and the stamp of the array's most recent use left as it
/// is, which is all a hit does — so they are plain stores or loads of RAM. Otherwise each runs the ordinary way.
/// InsnRip and Retired are those of the run's first instruction on entry and are kept exact wherever something
/// could see them: before each ordinary instruction (it may fault) and when a store into code ends the block
/// (the method then also sets RIP after that instruction and returns false).
/// Registers and instruction lengths are packed 4 bits each, first instruction in the low bits (count ≤ 16).
/// </summary>
public static unsafe partial class Stack
{
    public const int MaxRun = 16;

    /// <summary>
    /// The host page holding all <paramref name="count"/> stack slots from <paramref name="low"/> up, when they lie in one
    /// canonical page whose fast-cache entry for the access (<paramref name="kindBase"/>: read or write at the current
    /// CPL) is live with a host frame: the <paramref name="count"/> hits are counted. Otherwise null, nothing counted.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte* HostSlots(CpuCore cpu, ulong low, int count, int kindBase)
    {
        ulong end = low + 8UL * (ulong)count;
        if (!cpu.Is64 || !cpu.PagingOn || end <= low || (low >> 12) != ((end - 1) >> 12) || !cpu.IsCanonical(low)) return null;
        byte* p = cpu.Mmu.HostData(low, kindBase, cpu.PcidHash, cpu.CurrentPcid, (ulong)count);
        return p == null ? null : p - (low & 0xFFF);
    }

    // PushRun and PopRun are small (the whole run through one live host entry) so that a call from compiled code pays no
    // large frame; anything else goes to the out-of-line rest (PushRunSlow, PopRunSlow).
    internal static bool PushRun(CpuCore cpu, ulong regs, ulong lengths, int count)
    {
        // The whole run through one live host entry (RAM without code): plain stores, none can fault or end the block.
        byte* host = HostSlots(cpu, cpu.Rsp - 8UL * (ulong)count, count, cpu.FastWriteBase);
        if (host == null) return PushRunSlow(cpu, regs, lengths, count);
        PushToPage(cpu, host, regs, 0, count);
        return true;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static bool PushRunSlow(CpuCore cpu, ulong regs, ulong lengths, int count)
    {
        ulong rip = cpu.InsnRip, retired = cpu.Retired;
        int done = 0;
        ulong first = cpu.Rsp - 8;
        Push64(cpu, cpu.Gpr((int)(regs & 15)));
        if (Next(cpu, ref rip, ref retired, lengths, ref done)) return false;
        ulong last = first - 8UL * (ulong)(count - 1);   // the slots are last .. first + 7
        if (cpu.Is64 && (last >> 12) == ((first + 7) >> 12) && last < first
            && cpu.Mmu.RepeatHits(first, Access.Write | cpu.DataAccess, (ulong)(count - 1), out ulong frame))
        {
            byte* page = cpu.Mem.PlainRamFrame(frame);
            if (page != null)
            {
                PushToPage(cpu, page, regs, 1, count);   // RAM without code: the stores cannot end the block (nothing to invalidate, no device)
                return true;
            }
            for (; done < count;)
            {
                ulong sp = cpu.Rsp - 8;
                cpu.Mem.Write(frame | (sp & 0xFFF), 8, cpu.Gpr((int)((regs >> (4 * done)) & 15)));
                cpu.Rsp = sp;
                if (Next(cpu, ref rip, ref retired, lengths, ref done)) return false;
            }
            return true;
        }
        for (; done < count;)
        {
            cpu.InsnRip = rip; cpu.Retired = retired;
            Push64(cpu, cpu.Gpr((int)((regs >> (4 * done)) & 15)));
            if (Next(cpu, ref rip, ref retired, lengths, ref done)) return false;
        }
        return true;
    }

    /// <summary>As <see cref="PushRun"/> for POP r64 (never POP RSP: the compiler does not put it in a run).</summary>
    internal static bool PopRun(CpuCore cpu, ulong regs, ulong lengths, int count)
    {
        byte* host = HostSlots(cpu, cpu.Rsp, count, cpu.FastReadBase);   // as in PushRun
        if (host == null) return PopRunSlow(cpu, regs, lengths, count);
        PopFromPage(cpu, host, regs, 0, count);
        return true;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static bool PopRunSlow(CpuCore cpu, ulong regs, ulong lengths, int count)
    {
        ulong rip = cpu.InsnRip, retired = cpu.Retired;
        int done = 0;
        ulong first = cpu.Rsp;
        cpu.Gpr((int)(regs & 15)) = Pop64(cpu);
        if (Next(cpu, ref rip, ref retired, lengths, ref done)) return false;
        ulong lastByte = first + 8UL * (ulong)count - 1;
        if (cpu.Is64 && (lastByte >> 12) == (first >> 12) && lastByte > first
            && cpu.Mmu.RepeatHits(first, Access.Read | cpu.DataAccess, (ulong)(count - 1), out ulong frame))
        {
            byte* page = cpu.Mem.PlainRamFrame(frame);
            if (page != null)
            {
                PopFromPage(cpu, page, regs, 1, count);
                return true;
            }
            for (; done < count;)
            {
                ulong sp = cpu.Rsp;
                ulong v = cpu.Mem.Read(frame | (sp & 0xFFF), 8);
                cpu.Rsp = sp + 8;
                cpu.Gpr((int)((regs >> (4 * done)) & 15)) = v;
                if (Next(cpu, ref rip, ref retired, lengths, ref done)) return false;
            }
            return true;
        }
        for (; done < count;)
        {
            cpu.InsnRip = rip; cpu.Retired = retired;
            cpu.Gpr((int)((regs >> (4 * done)) & 15)) = Pop64(cpu);
            if (Next(cpu, ref rip, ref retired, lengths, ref done)) return false;
        }
        return true;
    }

    /// <summary>
    /// PUSH instructions <paramref name="from"/> to <paramref name="count"/> - 1 of a run as plain stores into a host page
    /// of RAM without code (nothing can fault or end the block): RSP and memory as each PUSH leaves them (PUSH RSP
    /// pushes RSP as it is before that instruction). Nothing in the run can see RSP between them, so it is stored once.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PushToPage(CpuCore cpu, byte* page, ulong regs, int from, int count)
    {
        ref ulong r = ref cpu.Gpr(0);
        ulong sp = cpu.Rsp;
        for (int j = from; j < count; j++)
        {
            int reg = (int)((regs >> (4 * j)) & 15);
            ulong v = reg == Reg.RSP ? sp : Unsafe.Add(ref r, reg);
            sp -= 8;
            Unsafe.WriteUnaligned(page + (sp & 0xFFF), v);
        }
        cpu.Rsp = sp;
    }

    /// <summary>
    /// POP instructions <paramref name="from"/> to <paramref name="count"/> - 1 of a run as plain loads from a host page of RAM,
    /// RSP stored once at the end. Never POP RSP (BlockCompiler.StackRunLength keeps it out of runs): it loads RSP.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PopFromPage(CpuCore cpu, byte* page, ulong regs, int from, int count)
    {
        ref ulong r = ref cpu.Gpr(0);
        ulong sp = cpu.Rsp;
        for (int j = from; j < count; j++)
        {
            ulong v = Unsafe.ReadUnaligned<ulong>(page + (sp & 0xFFF));
            sp += 8;
            int reg = (int)((regs >> (4 * j)) & 15);
            System.Diagnostics.Debug.Assert(reg != Reg.RSP);
            Unsafe.Add(ref r, reg) = v;
        }
        cpu.Rsp = sp;
    }

    /// <summary>One instruction of the run retired: advance to the next; true (with RIP and Retired set after it) if it ended the block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Next(CpuCore cpu, ref ulong rip, ref ulong retired, ulong lengths, ref int done)
    {
        rip += (lengths >> (4 * done)) & 15;
        retired++;
        done++;
        if (!cpu.ExitBlock) return false;
        cpu.InsnRip = rip - ((lengths >> (4 * (done - 1))) & 15);
        cpu.Rip = rip;
        cpu.Retired = retired;
        return true;
    }
}
