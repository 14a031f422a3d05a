using System.Text.RegularExpressions;
using Emu64.Tests.Support;

namespace Emu64.Tests.Kernel;

/// <summary>
/// The bundled toy kernel, booted in every combination of PTI × PCID × KASLR × paging depth, checked
/// through the emulator's view of guest memory and its boundary events — not only through the log.
/// </summary>
[Trait("Category", "ToyKernel")]
public class ToyKernelLayoutTests
{
    public const ulong PageOffset4 = 0xffff888000000000, PageOffset5 = 0xff11000000000000;
    public const ulong CpuEntryArea = 0xfffffe0000000000;

    public static IEnumerable<object[]> Combinations()
    {
        foreach (bool pti in new[] { true, false })
            foreach (bool pcid in new[] { true, false })
                foreach (bool kaslr in new[] { true, false })
                    foreach (int levels in new[] { 4, 5 })
                        yield return [pti, pcid, kaslr, levels];
    }

    private static string Append(bool pti, bool pcid, bool kaslr, int levels, string init)
        => $"init={init} pti={(pti ? "on" : "off")}{(pcid ? "" : " nopcid")}{(kaslr ? "" : " nokaslr")}{(levels == 5 ? " la57" : "")}";

    [Theory]
    [MemberData(nameof(Combinations))]
    public void The_kernel_builds_the_linux_layout_and_kpti_as_configured(bool pti, bool pcid, bool kaslr, int levels)
    {
        var k = ToyKernel.Boot(Append(pti, pcid, kaslr, levels, "syscalls:20"));
        var m = k.Machine;
        Assert.True(k.Reason == StopReason.DebugExit && k.ExitValue == 0, $"{k.Reason} {m.StopMessage}\n{k.Console}");

        // The boot log, exactly.
        Assert.Matches(new Regex($"^mm: PAGE_OFFSET=0x[0-9a-f]{{16}} paging={levels}-level$", RegexOptions.Multiline), k.Console);
        Assert.Matches(new Regex("^mm: kernel text at 0x[0-9a-f]{16}$", RegexOptions.Multiline), k.Console);
        Assert.Contains($"\npti: {(pti ? "on" : "off")}\n", k.Console);
        Assert.Contains($"\npcid: {(pcid ? "on (invpcid)" : "off")}\n", k.Console);
        Assert.Contains($"\nkaslr: {(kaslr ? "on" : "off")}\n", k.Console);
        Assert.Contains("syscalls: 20 getpid calls done", k.Console);

        ulong pageOffset = k.PageOffset;
        Assert.Equal(pageOffset, m.KernelInfo.PageOffset);
        ulong baseOffset = levels == 5 ? PageOffset5 : PageOffset4;
        if (!kaslr) Assert.Equal(baseOffset, pageOffset);
        else
        {
            Assert.Equal(0UL, pageOffset & ((1UL << 30) - 1));
            Assert.InRange(pageOffset, baseOffset, CpuEntryArea - 1);
        }

        ulong swapper = m.KernelInfo.SwapperPgd ?? throw new Xunit.Sdk.XunitException("kernel did not announce swapper_pg_dir");
        var kernelMaps = PageTables.Leaves(m, swapper, levels, 256, 511);

        // The direct map covers all RAM at PAGE_OFFSET, NX.
        for (ulong pa = 0; pa < m.Memory.RamSize; pa += 0x1000)
        {
            var mp = PageTables.Find(kernelMaps, pageOffset + pa);
            Assert.True(mp is { } x && x.Physical + (pageOffset + pa - x.Linear) == pa, $"direct map misses physical {pa:x}");
            Assert.True(mp!.Value.NoExec, $"direct map of {pa:x} is executable");
            Assert.True(mp.Value.Writable && !mp.Value.User);
        }

        // The kernel image is W^X: text RX, rodata R NX, data and bss RW NX.
        CheckRange(kernelMaps, k.Symbol("_text"), k.Symbol("_etext"), writable: false, exec: true, "text");
        CheckRange(kernelMaps, k.Symbol("__start_rodata"), k.Symbol("_erodata"), writable: false, exec: false, "rodata");
        CheckRange(kernelMaps, k.Symbol("_sdata"), k.Symbol("_end"), writable: true, exec: false, "data");

        // Every process's PGD has the kernel half of swapper_pg_dir.
        Assert.NotEmpty(m.KernelInfo.Processes);
        for (int e = 256; e < 512; e++)
        {
            ulong want = m.Memory.Read(swapper + (ulong)e * 8, 8);
            foreach (var p in m.KernelInfo.Processes.Values)
                Assert.True(want == m.Memory.Read(p.KernelPgd + (ulong)e * 8, 8), $"pid {p.Pid} PGD entry {e} differs from swapper_pg_dir");
        }

        if (pti)
        {
            // The user PGD (kernel PGD + 4 KiB) maps nothing of the kernel but the cpu_entry_area and the entry text.
            ulong entryStart = k.Symbol("__entry_text_start"), entryEnd = k.Symbol("__entry_text_end");
            foreach (var p in m.KernelInfo.Processes.Values)
            {
                var userKernelHalf = PageTables.Leaves(m, p.KernelPgd + 0x1000, levels, 256, 511);
                Assert.NotEmpty(userKernelHalf);
                foreach (var mp in userKernelHalf)
                {
                    bool cea = mp.Linear >= CpuEntryArea && mp.Linear + mp.Size <= CpuEntryArea + (1UL << 39);
                    bool entry = mp.Linear >= entryStart && mp.Linear + mp.Size <= entryEnd;
                    Assert.True(cea || entry, $"pid {p.Pid} user PGD maps kernel address {mp.Linear:x} (size {mp.Size:x})");
                }
                Assert.NotNull(PageTables.Find(userKernelHalf, entryStart));
            }
        }

        CheckCr3Writes(k, pti, pcid);
    }

    private static void CheckRange(List<Mapping> maps, ulong start, ulong end, bool writable, bool exec, string what)
    {
        Assert.True(end > start, what);
        for (ulong a = start; a < end; a += 0x1000)
        {
            var mp = PageTables.Find(maps, a) ?? throw new Xunit.Sdk.XunitException($"{what} page {a:x} is not mapped");
            Assert.True(mp.Writable == writable, $"{what} page {a:x}: writable={mp.Writable}");
            Assert.True(mp.NoExec == !exec, $"{what} page {a:x}: NX={mp.NoExec}");
        }
    }

    /// <summary>CR3 values and PCIDs follow Linux's scheme; each system call under PTI writes CR3 exactly twice.</summary>
    private static void CheckCr3Writes(ToyKernel k, bool pti, bool pcid)
    {
        var ev = k.Events;
        int first = ev.FindIndex(e => e.Kind == BoundaryKind.Syscall);
        Assert.True(first >= 0, "no system call seen");
        int syscalls = 0;
        for (int i = first; i < ev.Count; i++)
        {
            var e = ev[i];
            if (e.Kind == BoundaryKind.Cr3Write)
            {
                ulong v = e.NewCr3;
                ulong low = v & 0xFFF;
                bool userPgd = (v & 0x1000) != 0;
                Assert.True(pti || !userPgd, $"CR3 {v:x} selects a user PGD with PTI off");
                if (!pcid) Assert.Equal(0UL, low);
                else if (userPgd) Assert.InRange(low, 2049UL, 2054UL);
                else Assert.InRange(low, 1UL, 6UL);
            }
            if (e.Kind != BoundaryKind.Syscall) continue;
            syscalls++;
            // Count CR3 writes up to the matching SYSRET.
            int j = i + 1, writes = 0;
            BoundaryEvent? entryWrite = null;
            for (; j < ev.Count && ev[j].Kind != BoundaryKind.Sysret; j++)
                if (ev[j].Kind == BoundaryKind.Cr3Write) { writes++; entryWrite ??= ev[j]; }
            if (j == ev.Count) break;   // the last system call (exit) does not return
            Assert.True(writes == (pti ? 2 : 0), $"system call at event {i} wrote CR3 {writes} times");
            if (pti)
            {
                var w = entryWrite!.Value;
                // user CR3 = kernel CR3 | 0x1800 with PCID (| 0x1000 without): the same PGD pair
                Assert.Equal(pcid ? 0x1800UL : 0x1000UL, w.OldCr3 ^ w.NewCr3);
                Assert.Equal(0UL, w.NewCr3 & 0x1000);
                if (pcid) Assert.True(w.NoFlush, "kernel entry must write CR3 with NOFLUSH under PCID");
            }
        }
        Assert.True(syscalls >= 20);
    }

    [Theory]
    [InlineData("on", 4)]
    [InlineData("off", 5)]
    public void A_user_read_of_the_direct_map_is_killed_with_the_linux_segfault_line(string pti, int error)
    {
        var k = ToyKernel.Boot($"init=probe pti={pti} nokaslr");
        Assert.Matches(new Regex($@"^probe\[\d+\]: segfault at ffff888000000000 ip [0-9a-f]{{16}} sp [0-9a-f]{{16}} error {error}\b", RegexOptions.Multiline), k.Console);
        Assert.Equal(StopReason.DebugExit, k.Reason);
    }

    [Fact]
    public void Kaslr_moves_the_direct_map_in_1_GiB_steps_chosen_by_the_seed()
    {
        var a = ToyKernel.Boot("init=hello", seed: 1, record: false);
        var b = ToyKernel.Boot("init=hello", seed: 2, record: false);
        var a2 = ToyKernel.Boot("init=hello", seed: 1, record: false);
        Assert.Equal(a.PageOffset, a2.PageOffset);
        Assert.Equal(a.Console, a2.Console);
        Assert.NotEqual(a.PageOffset, b.PageOffset);
        foreach (var k in new[] { a, b })
        {
            Assert.Equal(0UL, k.PageOffset & ((1UL << 30) - 1));
            Assert.InRange(k.PageOffset, PageOffset4, CpuEntryArea - 1);
        }
    }
}
