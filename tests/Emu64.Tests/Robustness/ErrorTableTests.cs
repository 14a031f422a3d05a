using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Emu64.Tests.Support;
using static Emu64.Tests.Support.Images;

namespace Emu64.Tests.Robustness;

/// <summary>
/// docs/ERRORS.md, row by row: each row's id is a case here, run through <c>Cli.Execute</c> in-process;
/// the test checks the status and that stderr's first line matches the row's message pattern (and, for
/// errors, that it is the only line and has no stack trace). A second test keeps the document and the
/// cases identical, so a row without a test (or a test without a row) fails.
/// </summary>
public class ErrorTableTests : IClassFixture<ErrorTableTests.Files>
{
    private readonly Files _f;
    public ErrorTableTests(Files f) => _f = f;

    /// <summary>The files the cases point at, built once.</summary>
    public sealed class Files : IDisposable
    {
        public readonly CliRun.TempDir Dir = new();
        public readonly string Good, Dir_, Missing, Empty, Tiny, NoHeader, TruncElf, TruncBody, OutOfRam, Overlap, Hole, InfoArea, NoSegs,
            MbTrunc, MbClaims, MbLoadAbove, Elf64NoAddr, NoAddrNotElf, Big2M, Small, Program,
            BzTrunc, BzOld, BzZImage, Bz32, BzNoKernel, BzSyssize, BzBig, BzGood, BzAlign, BzShortCmd, Big8M, PvhNoteSize, PvhHigh, PvhOutside, PvhOverInfo, TlbBadJson, TlbNullArray, Triple, Loop, Unsupp, Reset_, Spin_, Halt;

        public Files()
        {
            Good = Dir.File("good.elf", TestKernel.Build(a => TestKernel.Exit(a, 0)));
            Dir_ = Dir.Path;
            Missing = Dir.Name("missing.elf");
            Empty = Dir.File("empty.bin", Array.Empty<byte>());
            Tiny = Dir.File("tiny.bin", new byte[3]);
            NoHeader = Dir.File("noheader.bin", new byte[9000]);
            var code = new byte[4096];
            TruncElf = Dir.File("trunc.elf", Elf(0x100000, true, new Seg(0x100000, code))[..40]);
            TruncBody = Dir.File("truncbody.elf", Elf(0x100000, true, new Seg(0x100000, code))[..300]);
            // Multiboot ELF32 kernels (the header without address fields at the start of the first segment).
            var mbCode = Multiboot(null, new byte[4096 - 12]);
            OutOfRam = Dir.File("outofram.elf", Elf(0x10000000, false, new Seg(0x10000000, mbCode)));
            Overlap = Dir.File("overlap.elf", Elf(0x100000, false, new Seg(0x100000, mbCode), new Seg(0x100800, mbCode)));
            Hole = Dir.File("hole.elf", Elf(0xA0000, false, new Seg(0xA0000, mbCode)));
            // An image that fills low memory from 0x1000 to 0x9F000 leaves the loader no place for the multiboot information.
            InfoArea = Dir.File("infoarea.elf", Elf(0x1000, false, new Seg(0x1000, mbCode, 0x9E000)));
            NoSegs = Dir.File("nosegs.elf", Elf(0x100000, true));
            // A program, not a kernel: a position-independent ELF64 linked at 0 (as /bin/ls).
            Program = Dir.File("program.elf", Elf(0x1040, true, new Seg(0, code), new Seg(0x1000, code)));
            // bzImages (LinuxImages.BzImage: a protocol 2.15 setup header) with one thing wrong each.
            var hlt = new byte[4096]; Array.Fill(hlt, (byte)0xF4);
            BzGood = Dir.File("bzgood", LinuxImages.BzImage(hlt));
            BzTrunc = Dir.File("bztrunc", LinuxImages.BzImage(hlt)[..0x240]);
            BzOld = Dir.File("bzold", LinuxImages.BzImage(hlt, new() { Version = 0x020B }));
            BzZImage = Dir.File("bzzimage", LinuxImages.BzImage(hlt, new() { LoadFlags = 0 }));
            Bz32 = Dir.File("bz32", LinuxImages.BzImage(hlt, new() { XLoadFlags = 0 }));
            BzNoKernel = Dir.File("bznokernel", LinuxImages.BzImage(hlt)[..2560]);
            BzSyssize = Dir.File("bzsyssize", LinuxImages.BzImage(hlt, new() { Syssize = 0x10000 }));
            BzBig = Dir.File("bzbig", LinuxImages.BzImage(new byte[3 << 20]));
            BzAlign = Dir.File("bzalign", LinuxImages.BzImage(hlt, new() { KernelAlignment = 0x300000 }));
            BzShortCmd = Dir.File("bzshortcmd", LinuxImages.BzImage(hlt, new() { CmdlineSize = 16 }));
            Big8M = Dir.File("big8m.bin", new byte[8 << 20]);
            // PVH kernels (an ELF64 with the "Xen" note type 18), one thing wrong each.
            PvhNoteSize = Dir.File("pvhnotesize.elf", ElfWithNote(0, true, PvhNote(0x1000000, 2), new Seg(0x1000000, hlt)));
            PvhHigh = Dir.File("pvhhigh.elf", ElfWithNote(0, true, PvhNote(0x100000000), new Seg(0x1000000, hlt)));
            PvhOutside = Dir.File("pvhoutside.elf", ElfWithNote(0, true, PvhNote(0x2000000), new Seg(0x1000000, hlt)));
            PvhOverInfo = Dir.File("pvhoverinfo.elf", ElfWithNote(0, true, PvhNote(0x10000), new Seg(0x10000, hlt)));
            MbTrunc = Dir.File("mbtrunc.bin", Multiboot([0x100000], []));
            MbClaims = Dir.File("mbclaims.bin", Multiboot([0x100000, 0x100000, 0x200000, 0, 0x100020], new byte[32]));
            MbLoadAbove = Dir.File("mbloadabove.bin", Multiboot([0x100000, 0x200000, 0, 0, 0x200020], new byte[32]));
            Elf64NoAddr = Dir.File("elf64noaddr.elf", Elf(0x100000, true, new Seg(0x100000, Multiboot(null, new byte[64]))));
            NoAddrNotElf = Dir.File("noaddr.bin", Multiboot(null, new byte[64]));
            Big2M = Dir.File("big2m.bin", new byte[2 << 20]);
            Small = Dir.File("small.bin", new byte[16]);
            TlbBadJson = Dir.File("bad.json", "{ \"Stlb\": { \"Entries\": ");
            TlbNullArray = Dir.File("null.json", "{ \"Stlb\": null }");
            Triple = Dir.File("triple.elf", TripleFault());
            Loop = Dir.File("faultloop.elf", FaultLoop());
            Unsupp = Dir.File("unsupported.bin", UnsupportedCallGate());
            Reset_ = Dir.File("reset.bin", Reset());
            Spin_ = Dir.File("spin.bin", Spin());
            Halt = Dir.File("halt.bin", Flat32(a => a.cli()));
        }

        public void Dispose() => Dir.Dispose();
    }

    /// <summary>One row of docs/ERRORS.md: what goes wrong, the message (placeholders in braces), the status, and how to provoke it.</summary>
    public sealed record Case(string Id, string What, string Message, int Status, Func<Files, string[]> Args, bool OneLine = true);

    public static readonly Case[] Cases =
    [
        // ---- command line ---------------------------------------------------------------------------
        new("U0", "--help (usage on stdout)", "", 0, _ => ["--help"], OneLine: false),
        new("U1", "no command", "usage: emu64 <command> [options]", 2, _ => [], OneLine: false),
        new("U2", "unknown command", "emu64: unknown command 'frobnicate' (try emu64 --help)", 2, _ => ["frobnicate"]),
        new("U3", "unknown option", "emu64: unknown option --frob", 2, f => ["run", f.Good, "--frob"]),
        new("U4", "option without its value", "emu64: option -m needs a value", 2, f => ["run", f.Good, "-m"]),
        new("U5", "extra argument", "emu64: unexpected argument 'extra'", 2, f => ["run", f.Good, "extra"]),
        new("U6", "run without a kernel", "emu64: no kernel given (usage: emu64 run KERNEL [options])", 2, _ => ["run"]),
        new("U7", "a command's --help or -h (its usage on stdout)", "", 0, _ => ["run", "--help"], OneLine: false),
        new("U8", "isa-coverage with an unknown option", "emu64: unknown option --bogus", 2, _ => ["isa-coverage", "--bogus"]),
        new("M1", "-m not a size", "emu64: bad memory size 'lots' (examples: 128, 256M, 1G)", 2, f => ["run", f.Good, "-m", "lots"]),
        new("M2", "-m below 2 MiB", "emu64: memory size '1M' is too small (at least 2M)", 2, f => ["run", f.Good, "-m", "1M"]),
        new("M3", "-m above the RAM cap", "emu64: memory size '3073M' is too large (at most 3G)", 2, f => ["run", f.Good, "-m", "3073M"]),
        new("M4", "-m overflows", "emu64: memory size '99999999999G' is too large", 2, f => ["run", f.Good, "-m", "99999999999G"]),
        new("M5", "-m not whole pages", "emu64: memory size '4097K' is not a multiple of 4 KiB", 2, f => ["run", f.Good, "-m", "4097K"]),
        new("M6", "measure -m outside 64M to the RAM cap", "emu64: option -m needs 64M to 3G, not '4G'", 2, f => ["measure", "--kernel", f.Good, "--initrd", f.Good, "-m", "4G"]),
        new("N1", "a count that is not a number", "emu64: option --max-instructions needs a non-negative number, not '-5'", 2, f => ["run", f.Good, "--max-instructions", "-5"]),
        new("N2", "--ips 0", "emu64: option --ips needs a rate of at least 1 instruction per second", 2, f => ["run", f.Good, "--ips", "0"]),
        new("N3", "--compile-threshold not a count", "emu64: option --compile-threshold needs a non-negative number, not 'x'", 2, f => ["run", f.Good, "--compile-threshold", "x"]),
        new("N4", "--compile-threshold too large", "emu64: option --compile-threshold needs a count of at most 2147483647", 2, f => ["run", f.Good, "--compile-threshold", "4294967296"]),
        new("A1", "--append too long", "emu64: option --append: the command line is 70000 bytes long (at most 65536)", 2, f => ["run", f.Good, "--append", new string('a', 70000)]),
        new("I1", "--initrd without a file", "emu64: option --initrd needs FILE[,FILE...], not ','", 2, f => ["run", f.Good, "--initrd", ","]),
        new("T1", "--tlb-config geometry", "emu64: --tlb-config: TLB array stlb: 1000 entries cannot be split into 12 ways", 2, f => ["run", f.Good, "--tlb-config", "stlb.entries=1000"]),
        new("T2", "--tlb-config unknown name", "emu64: --tlb-config: unknown TLB setting 'stlb.size'", 2, f => ["run", f.Good, "--tlb-config", "stlb.size=4"]),
        new("T3", "--tlb-config bad value", "emu64: --tlb-config: bad value 'many' for TLB setting 'stlb.entries'", 2, f => ["run", f.Good, "--tlb-config", "stlb.entries=many"]),
        new("C1", "--cpu unknown feature", "emu64: --cpu: unknown CPU feature 'avx512f' (features Emu64 can turn off: pcid, arat, rdrand, fsgsbase, smep, invpcid, rdseed, smap, umip, pku, la57, rdpid, rdtscp)", 2, f => ["run", f.Good, "--cpu", "-pcid,+avx512f"]),
        new("C2", "--cpu unknown model", "emu64: --cpu: unknown CPU model 'qemu64' (Emu64 has one model, max)", 2, f => ["run", f.Good, "--cpu", "qemu64,-pcid"]),
        new("C3", "--cpu item without a sign", "emu64: --cpu: 'pcid' is neither -FEATURE, +FEATURE, FEATURE=on nor FEATURE=off", 2, f => ["run", f.Good, "--cpu", "max,pcid"]),
        new("T4", "--tlb-config too large", "emu64: --tlb-config: TLB array stlb: 2097152 entries is more than 1048576", 2, f => ["run", f.Good, "--tlb-config", "stlb.entries=2097152"]),
        new("T5", "--tlb-config bad JSON", "emu64: --tlb-config: bad TLB configuration: {DETAIL}", 2, f => ["run", f.Good, "--tlb-config", f.TlbBadJson]),
        new("T6", "--tlb-config JSON with a null array", "emu64: --tlb-config: TLB array stlb has no settings (null)", 2, f => ["run", f.Good, "--tlb-config", f.TlbNullArray]),
        new("T7", "--tlb-config file missing", "emu64: TLB configuration '{PATH}' does not exist", 2, f => ["run", f.Good, "--tlb-config", f.Missing + ".json"]),
        new("K1", "--clock not a clock", "emu64: option --clock needs instructions or cycles, not 'wall'", 2, f => ["run", f.Good, "--clock", "wall"]),
        new("K2", "--clock cycles with a cost that is not whole cycles", "emu64: --clock cycles: cost.cr3write is 1.5; --clock cycles needs whole numbers of cycles (0 to 4294967295)", 2, f => ["run", f.Good, "--clock", "cycles", "--tlb-config", "cost.cr3write=1.5"]),
        // ---- files --------------------------------------------------------------------------------------
        new("F1", "kernel file missing", "emu64: kernel '{PATH}' does not exist", 2, f => ["run", f.Missing]),
        new("F2", "kernel is a directory", "emu64: kernel '{PATH}' is a directory", 2, f => ["run", f.Dir_]),
        new("F3", "kernel name empty", "emu64: kernel file name is empty", 2, _ => ["run", ""]),
        new("F4", "initrd file missing", "emu64: initrd '{PATH}' does not exist", 2, f => ["run", f.Good, "--initrd", f.Missing]),
        new("F5", "script missing", "emu64: cannot read script '{PATH}': {REASON}", 2, f => ["debug", f.Good, "--script", f.Missing]),
        new("F6", "symbols file missing", "emu64: cannot read symbols from '{PATH}': {REASON}", 2, f => ["run", f.Good, "--trace", "boundary", "--symbols", f.Missing]),
        new("F7", "trace file cannot be written", "emu64: cannot write trace file '{PATH}': {REASON}", 2, f => ["run", f.Good, "--trace", "boundary", "--trace-file", Path.Combine(f.Missing, "t.txt")]),
        // ---- kernel images ------------------------------------------------------------------------------
        new("B1", "empty or tiny file", "emu64: bad kernel image: file is too small (3 bytes) to hold a multiboot header", 2, f => ["run", f.Tiny]),
        new("B2", "no multiboot header", "emu64: bad kernel image: no multiboot header (magic 0x1BADB002 with a valid checksum) in the first 8 KiB", 2, f => ["run", f.NoHeader]),
        new("B3", "truncated ELF header", "emu64: bad kernel image: ELF header is truncated", 2, f => ["run", f.TruncElf]),
        new("B4", "truncated ELF segment", "emu64: bad kernel image: ELF segment 0 (offset 0x78, size 0x1000) lies past the end of the file (300 bytes)", 2, f => ["run", f.TruncBody]),
        new("B5", "image larger than RAM (-m)", "emu64: bad kernel image: kernel image [0x100000, 0x300000) does not fit in 2 MiB of RAM (use -m)", 2, f => ["run", f.Good, "-m", "2M"]),
        new("B6", "ELF segment outside RAM", "emu64: bad kernel image: ELF segment 0 [0x10000000, 0x10001000) does not fit in 128 MiB of RAM (use -m)", 2, f => ["run", f.OutOfRam]),
        new("B7", "overlapping ELF segments", "emu64: bad kernel image: ELF segments 0 [0x100000, 0x101000) and 1 [0x100800, 0x101800) overlap", 2, f => ["run", f.Overlap]),
        new("B8", "segment in the legacy hole", "emu64: bad kernel image: ELF segment 0 [0xa0000, 0xa1000) overlaps the legacy hole below 1 MiB", 2, f => ["run", f.Hole]),
        new("B9", "no room for the multiboot info", "emu64: bad kernel image: no room for the multiboot information below 0x9f000 clear of the kernel image and modules", 2, f => ["run", f.InfoArea]),
        new("B10", "ELF without loadable segments", "emu64: bad kernel image: ELF file has no loadable segment", 2, f => ["run", f.NoSegs]),
        new("B11", "ELF without multiboot header or PVH note", "emu64: bad kernel image: ELF64 file has no multiboot header (magic 0x1BADB002 in the first 8 KiB) and no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); it is not a kernel Emu64 can boot", 2, f => ["run", f.Program]),
        new("B12", "multiboot address fields cut off", "emu64: bad kernel image: multiboot header with address fields is truncated", 2, f => ["run", f.MbTrunc]),
        new("B13", "multiboot image longer than the file", "emu64: bad kernel image: multiboot image claims 1048576 bytes but the file has 64 from the load offset", 2, f => ["run", f.MbClaims]),
        new("B14", "multiboot load_addr above header_addr", "emu64: bad kernel image: multiboot load_addr 0x200000 is above header_addr 0x100000", 2, f => ["run", f.MbLoadAbove]),
        new("B15", "ELF64 without multiboot address fields", "emu64: bad kernel image: ELF64 kernels need the multiboot address fields (flag bit 16), as with QEMU; use objcopy -O elf32-i386", 2, f => ["run", f.Elf64NoAddr]),
        new("B16", "no address fields and not ELF", "emu64: bad kernel image: multiboot header has no address fields (flag bit 16) and the file is not ELF", 2, f => ["run", f.NoAddrNotElf]),
        new("B17", "module outside RAM", "emu64: bad initrd module: module 0 ({PATH}) [0x{ADDR}, 0x{ADDR}) does not fit in 4 MiB of RAM (use -m)", 2, f => ["run", f.Good, "-m", "4M", "--initrd", f.Big2M]),
        new("B18", "too many modules", "emu64: bad initrd module: too many modules (40000) for the multiboot information area", 2, f => ["run", f.Good, "--initrd", string.Join(',', Enumerable.Repeat(f.Small, 40000))]),
        new("B19", "module command lines too long", "emu64: bad command line: the command lines of the kernel and modules do not fit in the multiboot information area", 2,
            f => ["run", f.Good, "--initrd", string.Join(',', Enumerable.Repeat(f.Small + " " + new string('x', 60000), 12))]),
        // ---- Linux bzImages and PVH kernels ---------------------------------------------------------------
        new("L1", "Linux setup header cut off", "emu64: bad kernel image: Linux setup header is truncated (the file has 576 bytes)", 2, f => ["run", f.BzTrunc]),
        new("L2", "Linux boot protocol before 2.12", "emu64: bad kernel image: Linux boot protocol 2.11 is older than 2.12, the oldest Emu64 boots", 2, f => ["run", f.BzOld]),
        new("L3", "Linux zImage", "emu64: bad kernel image: Linux kernel is a zImage (loadflags bit 0, LOADED_HIGH, is clear); Emu64 boots bzImages", 2, f => ["run", f.BzZImage]),
        new("L4", "32-bit Linux kernel", "emu64: bad kernel image: Linux kernel is 32-bit (xloadflags bit 0, XLF_KERNEL_64, is clear); Emu64 boots 64-bit kernels", 2, f => ["run", f.Bz32]),
        new("L5", "bzImage without a kernel after the setup code", "emu64: bad kernel image: Linux setup code (4 sectors) leaves no protected-mode kernel in the file (2560 bytes)", 2, f => ["run", f.BzNoKernel]),
        new("L6", "bzImage shorter than syssize", "emu64: bad kernel image: Linux protected-mode kernel is truncated: syssize says 0x100000 bytes, the file has 0x1000 after the setup code", 2, f => ["run", f.BzSyssize]),
        new("L7", "Linux kernel larger than RAM", "emu64: bad kernel image: Linux kernel [0x100000, 0x400000) does not fit in 4 MiB of RAM (use -m)", 2, f => ["run", f.BzBig, "-m", "4M"]),
        new("L8", "Linux init_size beyond RAM", "emu64: bad kernel image: Linux kernel needs init_size 0x800000 bytes from 0x1000000 to decompress, more than 16 MiB of RAM holds (use -m)", 2, f => ["run", f.BzGood, "-m", "16M"]),
        new("L9", "Linux kernel_alignment not a power of two", "emu64: bad kernel image: Linux kernel_alignment 0x300000 is not a power of two", 2, f => ["run", f.BzAlign]),
        new("L10", "command line longer than cmdline_size", "emu64: bad command line: the command line is 17 bytes long; this kernel takes at most 16 (cmdline_size)", 2, f => ["run", f.BzShortCmd, "--append", "console=ttyS0 abc"]),
        new("L11", "more than one initrd for Linux", "emu64: bad initrd module: a Linux kernel takes one --initrd FILE, without arguments (concatenate cpio archives into one file)", 2, f => ["run", f.BzGood, "--initrd", f.Small + "," + f.Small]),
        new("L12", "initrd does not fit above the kernel", "emu64: bad initrd module: initrd of 8388608 bytes does not fit between the kernel's decompression buffer (ends 0x1800000) and 0x1fe0000 (use -m)", 2, f => ["run", f.BzGood, "-m", "32M", "--initrd", f.Big8M]),
        new("P1", "PVH note of the wrong size", "emu64: bad kernel image: PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) has a 2-byte value, not 4 or 8", 2, f => ["run", f.PvhNoteSize]),
        new("P2", "PVH entry above 4 GiB", "emu64: bad kernel image: PVH entry point 0x100000000 is above 4 GiB", 2, f => ["run", f.PvhHigh]),
        new("P3", "PVH entry outside the segments", "emu64: bad kernel image: PVH entry point 0x2000000 lies in no loadable segment", 2, f => ["run", f.PvhOutside]),
        new("P4", "PVH segment over the start info", "emu64: bad kernel image: ELF segment 0 [0x10000, 0x11000) overlaps the PVH start info area [0x10000, 0x31000)", 2, f => ["run", f.PvhOverInfo]),
        // ---- tracing and gdb ----------------------------------------------------------------------------
        new("D1", "unknown trace class", "emu64: unknown trace class 'tbl' (boundary, insn, tlb, all)", 2, f => ["run", f.Good, "--trace", "boundary,tbl"]),
        new("D2", "no trace class", "emu64: --trace needs at least one class (boundary, insn, tlb)", 2, f => ["run", f.Good, "--trace", ","]),
        new("D3", "unknown trace format", "emu64: unknown trace format 'xml' (text or jsonl)", 2, f => ["run", f.Good, "--trace", "boundary", "--trace-format", "xml"]),
        new("D4", "bad --trace-limit", "emu64: option --trace-limit needs a non-negative number, not 'x'", 2, f => ["run", f.Good, "--trace", "boundary", "--trace-limit", "x"]),
        new("D5", "bad --trace-max-bytes", "emu64: option --trace-max-bytes needs a size such as 1000000, 64K, 100M or 2G, not '0'", 2, f => ["run", f.Good, "--trace", "boundary", "--trace-max-bytes", "0"]),
        new("D6", "trace options without --trace", "emu64: --trace-file, --trace-format, --trace-limit and --trace-max-bytes need --trace CLASSES", 2, f => ["run", f.Good, "--trace-limit", "5"]),
        new("G1", "bad gdb port", "emu64: bad gdb port '99999' (expected [HOST:]PORT)", 2, f => ["run", f.Good, "--gdb", "99999"]),
        new("G2", "bad gdb host", "emu64: bad gdb host 'example.com' (an IP address or localhost)", 2, f => ["run", f.Good, "--gdb", "example.com:1234"]),
        new("G3", "--wait without --gdb", "emu64: --wait needs --gdb PORT", 2, f => ["run", f.Good, "--wait"]),
        new("G4", "gdb port in use", "emu64: cannot listen for gdb on 127.0.0.1:{PORT}: {REASON}", 2, f => ["run", f.Good, "--gdb", BusyPort!.Value.ToString()]),
        new("G5", "debug with --gdb", "emu64: debug does not take --gdb (use run or boot --gdb PORT --wait)", 2, f => ["debug", f.Good, "--gdb", "1234"]),
        new("G6", "--gdb-symbols without --gdb", "emu64: --gdb-symbols needs --gdb PORT", 2, f => ["run", f.Good, "--gdb-symbols", "/tmp/x.elf"]),
        // ---- dumps and analyze ----------------------------------------------------------------------------
        new("Y1", "analyze without a dump", "emu64: no dump given (usage: emu64 analyze DUMP [--use-cr3])", 2, _ => ["analyze"]),
        new("Y2", "dump file missing", "emu64: dump '{PATH}' does not exist", 2, f => ["analyze", f.Missing]),
        new("Y3", "dump not an ELF file", "emu64: bad dump '{PATH}': not an ELF file", 2, f => ["analyze", f.NoHeader]),
        new("Y4", "dump an ELF file but not a core", "emu64: bad dump '{PATH}': not a core file (ELF type 2, a core file is 4)", 2,
            f => ["analyze", f.Dir.File("exec.elf", Elf(0x100000, true, new Seg(0x100000, new byte[4096])))]),
        new("Y5", "dump truncated", "emu64: bad dump '{PATH}': segment 0 (offset 0x78, size 0x1000) lies past the end of the file (300 bytes)", 2,
            f => ["analyze", f.Dir.File("trunc.core", Core(Elf(0x100000, true, new Seg(0x100000, new byte[4096])))[..300])]),
        new("Y6", "--use-cr3 without a CPU note", "emu64: --use-cr3: dump '{PATH}' has no QEMU CPU-state note", 2,
            f => ["analyze", f.Dir.File("nonotes.core", Core(Elf(0x100000, true, new Seg(0x100000, new byte[4096])))), "--use-cr3"]),
        new("Y7", "--dump-on-exit into a missing directory", "emu64: option --dump-on-exit: directory '{PATH}' does not exist", 2,
            f => ["run", f.Good, "--dump-on-exit", Path.Combine(f.Missing, "guest.core")]),
        // ---- how runs end -------------------------------------------------------------------------------
        new("R0", "clean shutdown (HLT with interrupts off)", "", 0, f => ["run", f.Halt], OneLine: false),
        new("R1", "the guest exits (isa-debug-exit)", "", 1, f => ["run", f.Good], OneLine: false),
        new("R7", "boot: the bundled kernel ends cleanly (isa-debug-exit 0)", "", 0, _ => ["boot", "--append", "init=hello"], OneLine: false),
        new("R8", "boot: the bundled kernel fails (`init=helo`: isa-debug-exit 1)", "", 3, _ => ["boot", "--append", "init=helo"], OneLine: false),
        new("R2", "triple fault", "emu64: triple fault: {FAULT} while delivering #DF; machine stopped (exit status 4)", 4, f => ["run", f.Triple], OneLine: false),
        new("R3", "fault loop", "emu64: fault loop: 10000 exceptions delivered without retiring an instruction (last #UD at rip {ADDR}); machine stopped (exit status 4)", 4, f => ["run", f.Loop], OneLine: false),
        new("R4", "instruction limit", "emu64: instruction limit 1000 reached (exit status 6)", 6, f => ["run", f.Spin_, "--max-instructions", "1000"], OneLine: false),
        new("R5", "unsupported feature", "emu64: unsupported: call gates (a far JMP or CALL through a call gate) are not implemented (exit status 8)", 8, f => ["run", f.Unsupp], OneLine: false),
        new("R6", "guest reset", "emu64: guest reset: reset through port 0x92 (fast reset) (exit status 10)", 10, f => ["run", f.Reset_], OneLine: false),
        new("X1", "internal error (a bug)", "emu64: internal error: {EXCEPTION}: {MESSAGE}; please report it", 12, f => ["run", f.Good]),
    ];

    /// <summary>An ELF64 file made a core file (e_type ET_CORE), for the dump rows.</summary>
    private static byte[] Core(byte[] elf) { elf[16] = 4; elf[17] = 0; return elf; }

    /// <summary>A loopback port held open for the test run, so binding the stub to it fails.</summary>
    private static readonly Lazy<int> BusyPort = new(() =>
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        Holder = l;
        return ((IPEndPoint)l.LocalEndpoint).Port;
    });
    private static TcpListener? Holder;

    public static TheoryData<string> Ids() { var d = new TheoryData<string>(); foreach (var c in Cases) d.Add(c.Id); return d; }

    /// <summary>"emu64: kernel '{PATH}' does not exist" → a regex where each {PLACEHOLDER} matches anything.</summary>
    public static Regex PatternRegex(string message)
        => new("^" + Regex.Replace(Regex.Escape(message), @"\\\{[A-Z]+}", ".+") + "$");

    [Theory, MemberData(nameof(Ids))]
    public void ERRORS_md_row_gives_its_message_and_status(string id)
    {
        var c = Cases.Single(x => x.Id == id);
        if (id == "X1") Emu64.Cli.Cli.FaultInjection = () => throw new InvalidOperationException("injected by the test");
        CliRun.Result r;
        try { r = CliRun.Execute(c.Args(_f)); }
        finally { Emu64.Cli.Cli.FaultInjection = null; }
        Assert.True(c.Status == r.Status, $"{id}: status {r.Status}, expected {c.Status}; stderr:\n{r.Stderr}");
        Assert.DoesNotContain("   at ", r.Stderr);
        if (c.Message == "") { Assert.Equal("", r.Stderr); return; }
        var lines = r.ErrLines;
        Assert.NotEmpty(lines);
        Assert.Matches(PatternRegex(c.Message), lines[0]);
        if (c.OneLine) Assert.True(lines.Length == 1, $"{id}: expected one line on stderr, got:\n{r.Stderr}");
    }

    public static string ErrorsMdPath()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
        {
            var p = Path.Combine(d.FullName, "docs", "ERRORS.md");
            if (File.Exists(p)) return p;
        }
        throw new FileNotFoundException("docs/ERRORS.md not found above " + AppContext.BaseDirectory);
    }

    [Fact]
    public void ERRORS_md_lists_exactly_the_tested_cases_with_the_same_message_and_status()
    {
        // Rows look like: | B7 | overlapping ELF segments | `emu64: bad kernel image: ...` | 2 |
        var rows = File.ReadAllLines(ErrorsMdPath())
            .Select(l => Regex.Match(l, @"^\| *([A-Z][0-9]+) *\| *(.*?) *\| *`(.*)` *\| *([0-9]+) *\|"))
            .Where(m => m.Success)
            .ToDictionary(m => m.Groups[1].Value, m => (What: m.Groups[2].Value, Message: m.Groups[3].Value.Replace("\\|", "|"), Status: int.Parse(m.Groups[4].Value)));
        Assert.Equal(Cases.Select(c => c.Id).Order(), rows.Keys.Order());
        foreach (var c in Cases)
        {
            var row = rows[c.Id];
            Assert.True(c.Message == row.Message || (c.Message == "" && row.Message == "(nothing)"), $"{c.Id}: ERRORS.md says `{row.Message}`, the test `{c.Message}`");
            Assert.True(c.Status == row.Status, $"{c.Id}: ERRORS.md says status {row.Status}, the test {c.Status}");
            Assert.True(c.What == row.What, $"{c.Id}: ERRORS.md says '{row.What}', the test '{c.What}'");
        }
    }
}
