using Emu64.Cpu;
using Emu64.Tests.Support;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Emu64.Tests.Foundation;

/// <summary>
/// The compiled regions' native forms (Cpu/BlockCompiler.Native.cs) keep guest registers in IL locals, the flags of the last
/// ALU instruction in locals, and take memory accesses' fast path inline. Each program here is run interpreted, compiled at
/// every block's first run, and compiled without native forms: registers, RFLAGS, RIP, the retired count, the data written,
/// how the machine stopped and every TLB counter must be the same.
/// </summary>
[Collection(CompilerSwitchTests.Name)]   // flips BlockCompiler.NativeEnabled
public class NativeFormTests
{
    private const ulong Code = 0x400000, Data = 0x600000, FsBase = 0x700000;

    private sealed record State(ulong[] Gprs, ulong Rflags, ulong Rip, ulong Retired, StopReason Reason, ulong Cr2, byte[] Data,
        List<(string, ulong)> Tlb);

    private static State Run(Action<Assembler> program, int threshold, bool native, ulong steps, Action<RawMachine>? setup = null)
    {
        bool was = BlockCompiler.NativeEnabled;
        BlockCompiler.NativeEnabled = native;
        try
        {
            var m = new RawMachine(compileThreshold: threshold);
            for (ulong p = 0; p < 0x3000; p += 0x1000) m.Map(Data + p);
            m.Map(FsBase);
            m.Map(FsBase + 0x1000);
            m.Cpu.Segs[Seg.FS].Base = FsBase;
            setup?.Invoke(m);
            m.Assemble(Code, program);
            m.Cpu.Rip = Code;
            var reason = m.Machine.Run(steps);
            var gprs = new ulong[16];
            for (int r = 0; r < 16; r++) gprs[r] = m.Cpu.R[r];
            var data = new byte[0x3000];
            m.Read(Data, data);
            return new State(gprs, m.Cpu.Rflags, m.Cpu.Rip, m.Cpu.Retired, reason, m.Cpu.CR2, data,
                m.Cpu.Mmu.Snapshot().Named().Select(x => (x.Key, x.Value)).ToList());
        }
        finally { BlockCompiler.NativeEnabled = was; }
    }

    /// <summary>A TLB counter of a run, by name.</summary>
    private static ulong Counter(State s, string name) => s.Tlb.Single(t => t.Item1 == name).Item2;

    /// <summary>RDI on to the next of <paramref name="count"/> pages <paramref name="stride"/> apart from <paramref name="first"/>, back to the first after the last.</summary>
    private static void NextInTurn(Assembler a, ulong first, ulong stride, int count)
    {
        var keep = a.CreateLabel();
        a.add(rdi, (int)stride);
        a.cmp(rdi, (int)(first + (ulong)count * stride));
        a.jb(keep);
        a.mov(rdi, first);
        a.Label(ref keep);
    }

    private static void AssertSameEverywhere(Action<Assembler> program, ulong steps, Action<State>? check = null, Action<RawMachine>? setup = null)
    {
        var interpreted = Run(program, threshold: 0, native: true, steps, setup);
        long emitted = BlockCompiler.NativeEmitted;
        // (threshold 3: a loop's head is compiled after its blocks have run and linked, so an inner loop lies inside the region of the
        // outer loop's head, entered there by an edge from another block of the method)
        foreach (var (threshold, native) in new[] { (1, true), (1, false), (3, true), (MachineOptions.DefaultCompileThreshold, true) })
        {
            var other = Run(program, threshold, native, steps, setup);
            Assert.Equal(interpreted.Reason, other.Reason);
            Assert.Equal(interpreted.Retired, other.Retired);
            Assert.Equal(interpreted.Rip, other.Rip);
            Assert.Equal(interpreted.Gprs, other.Gprs);
            Assert.Equal(interpreted.Rflags, other.Rflags);
            Assert.Equal(interpreted.Cr2, other.Cr2);
            Assert.Equal(interpreted.Data, other.Data);
            Assert.Equal(interpreted.Tlb, other.Tlb);
        }
        Assert.True(BlockCompiler.NativeEmitted > emitted);   // the compiled runs did use native forms
        check?.Invoke(interpreted);
    }

    /// <summary>Every condition code after every flag-setting native form, both by a direct branch and by SETcc (a handler).</summary>
    [Fact]
    public void Every_condition_after_every_native_alu_form_is_what_the_interpreter_computes()
    {
        var producers = new Action<Assembler>[]
        {
            a => a.add(rdx, rbx), a => a.sub(rdx, rbx), a => a.cmp(rdx, rbx), a => a.cmp(edx, ebx), a => a.and(rdx, rbx),
            a => a.or(edx, ebx), a => a.xor(rdx, rbx), a => a.test(rdx, rbx), a => a.inc(rdx), a => a.dec(edx),
            a => a.add(edx, 0x7FFFFFF0), a => a.cmp(rdx, -1),
            // byte and word operands (CMP/TEST only) and memory operands
            a => a.cmp(dl, bl), a => a.cmp(dx, bx), a => a.test(dx, 0x8001),
            a => { a.mov(__qword_ptr[rsi], rbx); a.cmp(__byte_ptr[rsi], dl); },
            a => { a.mov(__qword_ptr[rsi], rbx); a.sub(rdx, __qword_ptr[rsi]); },
            a => { a.mov(__qword_ptr[rsi], rdx); a.cmp(__word_ptr[rsi], 0x7FF0); },
            // INC and DEC keep the CF of the ADD or SUB before them
            a => { a.add(rdx, rbx); a.inc(rdx); }, a => { a.sub(edx, ebx); a.dec(r9d); },
            // shifts by an immediate (eager flags: CF and OF of their own, AF clear), a count of 0 (no flags at all)
            a => a.shl(rdx, 1), a => a.shl(rdx, 63), a => a.shl(edx, 7), a => a.shr(rdx, 1), a => a.shr(edx, 31),
            a => a.sar(rdx, 5), a => a.sar(edx, 1), a => a.shl(edx, 0), a => a.sar(rdx, 64 + 3),
            // IMUL r, r[, imm] (CF = OF = overflow, ZF clear)
            a => a.imul(rdx, rbx), a => a.imul(edx, ebx), a => a.imul(rdx, rbx, 0x12345), a => a.imul(edx, ebx, -3),
            a => { a.shr(rdx, 40); a.imul(edx, edx); }, a => { a.shl(rdx, 32); a.imul(rdx, rdx); },   // a zero product: ZF still clear
            // ADC and SBB with the carry in from a compare, from a shift and from themselves; INC/DEC after eager flags
            a => { a.cmp(rbx, rdx); a.adc(rdx, rbx); }, a => { a.cmp(edx, ebx); a.sbb(edx, ebx); },
            a => { a.sub(rdx, rbx); a.adc(rdx, 5); }, a => { a.mov(r9, rbx); a.shr(r9, 1); a.sbb(rdx, r9); },
            a => { a.cmp(rdx, rbx); a.sbb(rdx, rdx); }, a => { a.cmp(rbx, rdx); a.adc(edx, -1); a.adc(rdx, rbx); },
            a => { a.shr(rdx, 3); a.inc(rdx); }, a => { a.imul(rdx, rbx); a.dec(rdx); },
            // SBB's ZF and orders are not its operands' (a = b + 1 with a borrow in is zero; a = b with one is not)
            a => { a.lea(r9, __[rdx - 1]); a.stc(); a.sbb(rdx, r9); }, a => { a.mov(r9, rdx); a.stc(); a.sbb(rdx, r9); },
        };
        void Program(Assembler a)
        {
            var top = a.CreateLabel();
            a.mov(r15, 200);
            a.mov(rsp, Data + 0x2000);
            a.mov(rsi, Data);
            a.mov(rax, 0x0123456789ABCDEFUL);
            a.mov(r12, 6364136223846793005UL);
            a.Label(ref top);
            a.imul(rax, r12);
            a.add(rax, 0x5851F42D);
            a.mov(rbx, rax);
            a.ror(rbx, 17);
            var keep = a.CreateLabel();
            var keep2 = a.CreateLabel();
            a.test(al, 12);                 // one iteration in four: equal operands
            a.jnz(keep);
            a.mov(rbx, rax);
            a.Label(ref keep);
            a.test(al, 48);                 // and one in four: operands one apart
            a.jnz(keep2);
            a.lea(rbx, __[rax + 1]);
            a.Label(ref keep2);
            int k = 0;
            foreach (var produce in producers)
                for (int cc = 0; cc < 16; cc++, k++)
                {
                    var skip = a.CreateLabel();
                    a.mov(rdx, rax);
                    produce(a);
                    Jcc(a, cc, skip);                 // a direct branch: the condition from the producer's operands in locals
                    a.add(r10, k + 1);
                    a.Label(ref skip);
                    a.mov(rdx, rax);
                    produce(a);
                    Setcc(a, cc);                     // native: from the locals as well
                    Cmovcc(a, cc);
                    a.pushfq();                       // a handler: all of RFLAGS (AF included) as the interpreter stores it
                    a.pop(r13);
                    a.add(r11, rcx);
                    a.xor(r11, r13);
                    a.add(r11, r14);
                    a.rol(r11, 1);
                }
            a.dec(r15);
            a.jnz(top);
            a.hlt();
        }
        AssertSameEverywhere(Program, 400_000);
    }

    /// <summary>Loads and stores of each native form: base, index and scale, RIP-relative, FS-relative, 32-bit, across a page end.</summary>
    [Fact]
    public void Native_memory_forms_read_and_write_what_the_interpreter_does_and_count_the_same_tlb_hits()
    {
        void Program(Assembler a)
        {
            var top = a.CreateLabel();
            var cell = a.CreateLabel();
            a.mov(rsi, Data);
            a.mov(rdi, Data + 0x2800);
            a.mov(ecx, 600);
            a.Label(ref top);
            a.add(rdi, 16);
            a.mov(r14, __qword_ptr[rdi]);            // at the 128th iteration: the unmapped page after the data, a page fault
                                                     // from a native load with RDI (just written) only in a local
            a.mov(rax, __qword_ptr[rsi]);
            a.add(rax, rcx);
            a.mov(__qword_ptr[rsi + 8], rax);
            a.mov(edx, __dword_ptr[rsi + rcx * 4 + 0x800]);
            a.lea(rdx, __[rdx + rax * 2 + 3]);
            a.mov(__dword_ptr[rsi + rcx * 4 + 0x800], edx);
            a.mov(r8, __qword_ptr[cell]);            // RIP-relative
            a.add(r8, 1);
            a.mov(__qword_ptr[rsi + 0x18], r8);
            a.mov(r9, __qword_ptr.fs[rcx * 8]);
            a.xor(r9, rax);
            a.mov(__qword_ptr.fs[rcx * 8 + 8], r9);
            // immediates of each size into memory, zero and sign extension from registers and memory, ALU with memory operands
            a.mov(__byte_ptr[rsi + 0x20], 0x81);
            a.mov(__word_ptr[rsi + 0x22], 0x8001);
            a.mov(__dword_ptr[rsi + 0x24], -5);
            a.mov(__qword_ptr[rsi + 0x28], -7);
            a.movzx(r10d, __byte_ptr[rsi + 0x20]);
            a.movsx(r11, __word_ptr[rsi + 0x22]);
            a.movsxd(r12, __dword_ptr[rsi + 0x24]);
            a.movzx(r15, r9b);
            a.movsx(r15d, r9w);
            a.add(r10, __qword_ptr[rsi + 0x28]);
            a.xor(r11d, __dword_ptr[rsi + 0x24]);
            a.test(__byte_ptr[rsi + 0x20], r9b);
            a.adc(r15, 0);                           // CF from the native TEST, stored as the handler stores it
            a.cmp(__dword_ptr[rsi + 0x24], r12d);
            a.setl(r12b);
            a.movsx(r8d, __byte_ptr[rsi + 0x20]);
            a.add(r15, r8);
            // byte and word MOV between a register and memory (the rest of the register kept), NOPs, a segment register store
            a.mov(__byte_ptr[rsi + 0x30], r9b);
            a.mov(__word_ptr[rsi + 0x32], r9w);
            a.mov(__byte_ptr[rsi + 0x34], sil);
            a.mov(dl, __byte_ptr[rsi + 0x22]);
            a.mov(r11w, __word_ptr[rsi + 0x20]);
            a.mov(dil, __byte_ptr[rsi + 0x24]);      // (RDI is the loop's pointer: its low byte replaced ...
            a.add(r15, rdi);
            a.lea(rdi, __[rsi + 0x2810]);            // ... and restored: RDI = RSI + 0x2800 + 16 here)
            a.nop(__dword_ptr[rax + rax]);
            a.pause();
            a.mov(__word_ptr[rsi + 0x36], ds);       // Iced says DS: not the GPR numbered like it (RBX)
            a.mov(rbx, Data + 0x1FFC);
            a.mov(__qword_ptr[rbx], rax);            // across the page end: the out-of-line path
            a.mov(r13, __qword_ptr[rbx]);
            a.add(rsi, 16);
            a.dec(ecx);
            a.jnz(top);
            a.hlt();
            a.Label(ref cell);
            a.dq(0);
        }
        AssertSameEverywhere(Program, 200_000, s =>
        {
            Assert.Equal(Data + 0x3000, s.Cr2);            // the loop's load faulted (no IDT: the machine stops)
            Assert.Equal(Data + 0x3000, s.Gprs[Reg.RDI]);
            Assert.Equal(600UL - 127, s.Gprs[Reg.RCX]);
        });
    }

    /// <summary>
    /// Two accesses to the same operand in a row take the first one's address and fast-cache slot (NativeRegion.SameAccess): a load
    /// then a store back, a store then a load, two loads; after the first missed and resumed (a new page every 16 iterations), across
    /// a page end (both out of line), after the address's register changed in between or was the load's destination (no reuse), and
    /// a store after a load from a read-only page (the store's own slot is not live: the write faults as the interpreter's does).
    /// </summary>
    [Fact]
    public void An_access_to_the_same_address_as_the_one_before_it_reads_writes_and_faults_as_the_interpreters()
    {
        void Program(Assembler a)
        {
            var top = a.CreateLabel();
            a.mov(rsi, Data);
            a.mov(rbx, Data + 0x1FFC);               // a qword across the page end
            a.mov(rax, Data + 0x1000);
            a.mov(__qword_ptr[Data + 0x2F00], rax);  // a pointer for the last pair below
            a.mov(ecx, 500);
            a.Label(ref top);
            a.mov(rax, __qword_ptr[rsi + 0x40]);     // load, then a store back to the same place
            a.add(rax, rcx);
            a.mov(__qword_ptr[rsi + 0x40], rax);
            a.mov(__dword_ptr[rsi + 0x48], eax);     // store, then a load of the same dword
            a.mov(edx, __dword_ptr[rsi + 0x48]);
            a.add(rdx, __qword_ptr[rsi + 0x40]);     // two loads of the same qword (ADD r, m; then MOV)
            a.mov(r8, __qword_ptr[rsi + 0x40]);
            a.mov(r9, __qword_ptr[rbx]);             // across the page end: out of line, and so is the store after it
            a.add(r9, rdx);
            a.mov(__qword_ptr[rbx], r9);
            a.mov(r10, __qword_ptr[rsi + 0x50]);     // the address's register changes in between: no reuse
            a.add(rsi, 8);
            a.mov(__qword_ptr[rsi + 0x50], rax);
            a.add(rax, r10);
            a.mov(r11, Data + 0x2F00);
            a.mov(r11, __qword_ptr[r11]);            // the load's destination is the address's register: no reuse
            a.mov(__qword_ptr[r11], r8);             // a store through the pointer just loaded (Data + 0x1000)
            a.dec(ecx);
            a.jnz(top);
            a.hlt();
        }
        AssertSameEverywhere(Program, 200_000, s =>
        {
            Assert.Equal(StopReason.Shutdown, s.Reason);   // HLT with interrupts off: all 500 iterations ran
            Assert.Equal(s.Gprs[Reg.R8], BitConverter.ToUInt64(s.Data, 0x1000));
        });
        void ReadOnly(Assembler a)
        {
            var top = a.CreateLabel();
            a.mov(rdi, Data + 0x5000);
            a.mov(ecx, 300);
            a.Label(ref top);
            a.mov(rax, __qword_ptr[rdi]);            // a read hit through the read-only page
            a.add(rax, rcx);
            a.dec(ecx);
            a.jnz(top);
            a.mov(rax, __qword_ptr[rdi]);
            a.mov(__qword_ptr[rdi], rax);            // the same address, written: #PF (protection), CR2 = RDI
            a.hlt();
        }
        AssertSameEverywhere(ReadOnly, 100_000, s => Assert.Equal(Data + 0x5000, s.Cr2), m => m.Map(Data + 0x5000, 0x5));
    }

    /// <summary>
    /// Native accesses make the modeled entry their set's most recent use, as the interpreter's do: a page read (and written back,
    /// the second access of the pair taking the first's slot) every iteration stays in a 4-way dTLB set while five other pages of
    /// that set take turns in the other ways. Were a hit not counted as a use, that page would age out and miss: more misses
    /// and walks than the interpreter's.
    /// </summary>
    [Fact]
    public void A_page_used_every_iteration_stays_in_its_tlb_set_while_others_of_the_set_take_turns()
    {
        const ulong Stride = 0x10000;   // 16 pages: the same set of the 64-entry, 4-way dTLB
        void Program(Assembler a)
        {
            var top = a.CreateLabel();
            a.mov(rdi, Data + 2 * Stride);
            a.mov(ecx, 400);
            a.Label(ref top);
            a.mov(rax, __qword_ptr[Data + Stride]);   // the hot page
            a.add(rax, rcx);
            a.mov(__qword_ptr[Data + Stride], rax);   // the same address: the store takes the load's slot
            a.mov(rbx, __qword_ptr[rdi]);             // one of five pages of the same set, in turn
            NextInTurn(a, Data + 2 * Stride, Stride, 5);
            a.dec(ecx);
            a.jnz(top);
            a.hlt();
        }
        AssertSameEverywhere(Program, 100_000, s =>
        {
            Assert.Equal(StopReason.Shutdown, s.Reason);
            // the five pages miss on each turn (400), the hot page once, the code page and the stack not at all after the start
            Assert.InRange(Counter(s, "tlb.dtlb.misses"), 400UL, 420UL);
        }, m => { for (ulong k = 1; k <= 6; k++) m.Map(Data + k * Stride); });
    }

    // ---- a native access's miss, taken by a call from the compiled method (Native.DataMiss) ----------------------------------------

    private const ulong Far = 0x10000000, FarStride = 0x80000;   // 128 pages apart: one set of the 4-way dTLB and of the 12-way STLB

    /// <summary>
    /// Sixteen pages of one dTLB set and one STLB set, used in turn: every native access to a new page misses both, walks and fills
    /// through the method's call into the miss path, and goes on with its registers and pending flags in place (a compare before the
    /// store, read after it by ADC and SETcc; a load of the same address after the store, and of another address in the page).
    /// </summary>
    [Fact]
    public void Native_accesses_that_miss_the_tlb_every_time_walk_fill_and_count_as_the_interpreters()
    {
        void Program(Assembler a)
        {
            var top = a.CreateLabel();
            a.mov(rdi, Far);
            a.mov(ecx, 16 * 25);
            a.Label(ref top);
            a.cmp(ecx, 200);                          // CF and ZF pending in locals across the store's miss
            a.mov(__byte_ptr[rdi + rcx], cl);         // a new page: misses the dTLB and the STLB
            a.adc(r8, 0);
            a.setb(r9b);
            a.add(r10, r9);
            a.movzx(eax, __byte_ptr[rdi + rcx]);      // the same address: the write's slot, read
            a.add(r8, rax);
            a.add(r8, __qword_ptr[rdi + 0x800]);      // another address of the page: a hit
            a.mov(__dword_ptr[rdi + 0xFF0], ecx);
            NextInTurn(a, Far, FarStride, 16);
            a.dec(ecx);
            a.jnz(top);
            a.hlt();
        }
        AssertSameEverywhere(Program, 100_000, s =>
        {
            Assert.Equal(StopReason.Shutdown, s.Reason);
            Assert.True(Counter(s, "tlb.stlb.kernel.write.misses") >= 16 * 25);   // every store walked
        }, m => { for (ulong k = 0; k < 16; k++) m.Map(Far + k * FarStride); });
    }

    /// <summary>
    /// Loads and stores through a page mapped beyond RAM (open bus: reads give ones, writes go nowhere), whose fast entries never get
    /// a host frame: the method's call translates, finds no RAM, and the instruction's handler makes the access with that translation
    /// (Mmu.TakePretranslated), not a second one: the counters are the interpreter's, one lookup per access.
    /// </summary>
    [Fact]
    public void Native_accesses_to_a_page_that_is_not_ram_are_translated_once_and_made_by_the_handler()
    {
        const ulong Bus = 0x20000000;
        void Program(Assembler a)
        {
            var top = a.CreateLabel();
            a.mov(rsi, Bus);
            a.mov(rdi, Data);
            a.mov(ecx, 300);
            a.Label(ref top);
            a.mov(rax, __qword_ptr[rsi + rcx * 8]);
            a.add(r8, rax);
            a.mov(__dword_ptr[rsi + 0x10], ecx);
            a.movzx(edx, __byte_ptr[rsi + 0x10]);
            a.add(r9, rdx);
            a.mov(rax, __qword_ptr[rdi + 0x100]);     // a RAM page between them
            a.add(rax, rcx);
            a.mov(__qword_ptr[rdi + 0x100], rax);
            a.dec(ecx);
            a.jnz(top);
            a.hlt();
        }
        AssertSameEverywhere(Program, 100_000, s =>
        {
            Assert.Equal(StopReason.Shutdown, s.Reason);
            Assert.Equal(300UL * 0xFF, s.Gprs[Reg.R9]);   // each byte read back is open bus
        }, m => m.MapTo(Bus, 0x40000000));
    }

    /// <summary>
    /// A loop that stores into the page of its own code (a cell after it): each store's translation finds a frame of decoded code,
    /// the handler makes the store with it, the decoded code is dropped and the block ends, as the interpreter's store does.
    /// </summary>
    [Fact]
    public void A_native_store_into_the_page_of_its_own_code_is_made_by_the_handler_and_ends_the_block()
    {
        void Program(Assembler a)
        {
            var top = a.CreateLabel();
            var cell = a.CreateLabel();
            a.mov(ecx, 200);
            a.mov(rdi, Data);
            a.Label(ref top);
            a.mov(rax, __qword_ptr[rdi + 0x200]);
            a.add(rax, rcx);
            a.mov(__qword_ptr[rdi + 0x200], rax);
            a.mov(__qword_ptr[cell], rax);            // RIP-relative, into the code's frame
            a.add(r8, __qword_ptr[cell]);
            a.dec(ecx);
            a.jnz(top);
            a.hlt();
            a.Label(ref cell);
            a.dq(0);
        }
        AssertSameEverywhere(Program, 100_000, s =>
        {
            Assert.Equal(StopReason.Shutdown, s.Reason);
            Assert.Equal(BitConverter.ToUInt64(s.Data, 0x200), s.Gprs[Reg.RAX]);
        });
    }

    /// <summary>
    /// A load whose walk sets the accessed bit in a page table that shares its frame with the code after the load: the PTEs of two
    /// pages are the 64-bit immediates of two MOVs there (present, user, frame 0x700000), so a walk's write changes an instruction.
    /// The loop's first pass walks the first page (interpreted, as the block is compiled), its second uses it again (a TLB hit), its
    /// third walks the second page from the compiled method: the write must end the block and drop the decoded code, as the
    /// interpreter's handler does, and the second MOV run as it reads now (A set), not as it was compiled.
    /// </summary>
    [Fact]
    public void A_walk_that_writes_into_the_code_after_its_load_ends_the_block_and_the_new_code_runs()
    {
        const ulong Tables = 0x30000000, Pte1 = 0x700005, Pte2 = 0x700007;
        void Body(Assembler a, ulong first, ulong second, int pad1, int pad2)
        {
            var top = a.CreateLabel();
            a.mov(ecx, 3);
            a.mov(r12, first);
            a.mov(r13, second);
            a.Label(ref top);
            a.mov(rsi, r12);
            a.cmp(ecx, 1);
            a.cmove(rsi, r13);                        // the last pass: the second page
            a.mov(rax, __qword_ptr[rsi + 0x18]);      // a walk reads a PTE below and sets its A bit
            for (int k = 0; k < pad1; k++) a.nop();
            a.db(0x49, 0xB9);                         // MOV R9, imm64: the first page's PTE
            a.dq(Pte1);
            for (int k = 0; k < pad2; k++) a.nop();
            a.db(0x49, 0xBB);                         // MOV R11, imm64: the second page's PTE
            a.dq(Pte2);
            a.add(r10, r9);
            a.add(r10, r11);
            a.dec(ecx);
            a.jnz(top);
            a.hlt();
        }
        int Offset(int pad1, int pad2, ulong pte)
        {
            var a = new Assembler(64);
            Body(a, Tables, Tables, pad1, pad2);
            var w = new MemoryStream();
            a.Assemble(new StreamCodeWriter(w), Code);
            return w.ToArray().AsSpan().IndexOf(BitConverter.GetBytes(pte));
        }
        // each immediate 8-aligned in the code's frame: at offset o it is PTE o / 8 of the table, for the page Tables + o / 8 * 4 KiB
        int pad1 = (8 - Offset(0, 0, Pte1) % 8) % 8;
        int pad2 = (8 - Offset(pad1, 0, Pte2) % 8) % 8;
        ulong first = Tables + (ulong)Offset(pad1, pad2, Pte1) / 8 * 0x1000, second = Tables + (ulong)Offset(pad1, pad2, Pte2) / 8 * 0x1000;
        AssertSameEverywhere(a => Body(a, first, second, pad1, pad2), 1000, s =>
        {
            Assert.Equal(StopReason.Shutdown, s.Reason);
            Assert.Equal(Pte2 | 0x20, s.Gprs[Reg.R11]);
        }, m => m.MapTable(Tables, m.Map(Code)));
    }

    /// <summary>
    /// Five 2 MiB pages of one set of the 4-way 2 MiB dTLB, used in turn: every fill of a 2 MiB entry drops all fast entries (it
    /// advances their epoch), and the method's call that made it must not leave the method comparing with the old epoch. Here the
    /// first page is used, then a load across a page end leaves and re-enters the method (its locals loaded again), four other pages
    /// fill the set (the last one's fill replaces the first page's entry), and the first page is used again: with the old epoch its
    /// dropped fast entry would still look live, a hit the model does not make.
    /// </summary>
    [Fact]
    public void A_fill_that_drops_every_fast_entry_inside_a_compiled_method_is_seen_by_its_later_accesses()
    {
        const ulong Big = 0x40000000, BigStride = 0x1000000;   // 8 x 2 MiB apart: one set of the 2 MiB dTLB
        void Program(Assembler a)
        {
            var top = a.CreateLabel();
            a.mov(ecx, 200);
            a.mov(rbx, Data + 0x1FFC);                // a qword across a page end: always the handler, then the method again
            a.mov(r12, Big);                          // (a base register: MOV RAX, moffs64 is not a native form)
            a.Label(ref top);
            a.mov(rax, __qword_ptr[r12]);
            a.mov(r10, __qword_ptr[rbx]);
            a.mov(rdx, __qword_ptr[r12 + (int)(BigStride + 0x1000)]);       // (each in a 4 KiB page of its own fast slot)
            a.mov(rsi, __qword_ptr[r12 + (int)(2 * BigStride + 0x2000)]);
            a.mov(rdi, __qword_ptr[r12 + (int)(3 * BigStride + 0x3000)]);
            a.mov(r8, __qword_ptr[r12 + (int)(4 * BigStride + 0x4000)]);
            a.mov(r9, __qword_ptr[r12 + 8]);         // the first page again: replaced by the last fill
            a.add(r11, r9);
            a.dec(ecx);
            a.jnz(top);
            a.hlt();
        }
        AssertSameEverywhere(Program, 100_000, s =>
        {
            Assert.Equal(StopReason.Shutdown, s.Reason);
            Assert.True(Counter(s, "tlb.dtlb.kernel.read.misses") >= 200 * 5);   // the first page is missed when used again
        }, m => { for (ulong k = 0; k < 5; k++) m.MapTo(Big + k * BigStride, 0x600000, large: true); });
    }

    /// <summary>Shift and multiply flags (eager, not lazy) pending in locals when a load misses and the method resumes after it.</summary>
    [Fact]
    public void Eager_flags_pending_across_a_load_that_leaves_and_resumes_read_as_the_interpreters()
    {
        var producers = new Action<Assembler>[]
        {
            a => a.shl(rdx, 1), a => a.shr(rdx, 63), a => a.sar(edx, 31), a => a.shr(edx, 4),
            a => a.imul(rdx, rbx), a => a.imul(edx, ebx, 3), a => { a.cmp(rdx, rbx); a.adc(rdx, rbx); },
        };
        void Program(Assembler a)
        {
            var top = a.CreateLabel();
            a.mov(r15, 100);
            a.mov(rsp, Data + 0x1000);
            a.mov(rsi, Data + 0x1FFC);               // a qword across the page end: always the out-of-line path
            a.mov(rax, 0x0123456789ABCDEFUL);
            a.mov(r12, 6364136223846793005UL);
            a.Label(ref top);
            a.imul(rax, r12);
            a.add(rax, 0x5851F42D);
            a.mov(rbx, rax);
            a.ror(rbx, 29);
            foreach (var produce in producers)
                for (int cc = 0; cc < 16; cc++)
                {
                    var skip = a.CreateLabel();
                    a.mov(rdx, rax);
                    produce(a);
                    a.mov(r8, __qword_ptr[rsi]);     // leaves the method, the handler loads, the method resumes after it
                    Setcc(a, cc);
                    Cmovcc(a, cc);
                    Jcc(a, cc, skip);
                    a.inc(r10);
                    a.Label(ref skip);
                    a.mov(rdx, rax);
                    produce(a);
                    a.mov(r8, __qword_ptr[rsi]);
                    a.pushfq();
                    a.pop(r13);
                    a.add(r11, r13);
                    a.add(r11, rcx);
                    a.add(r11, r14);
                    a.rol(r11, 3);
                }
            a.dec(r15);
            a.jnz(top);
            a.hlt();
        }
        AssertSameEverywhere(Program, 300_000);
    }

    /// <summary>
    /// A loop whose edge keeps the flags pending only where the next block sets them all first: here the block starts with a load,
    /// which may fault, so the flags of the DEC before the edge must be in RFLAGS when the load faults.
    /// </summary>
    [Fact]
    public void Flags_pending_at_an_edge_are_in_rflags_when_the_next_blocks_first_load_faults()
    {
        void Program(Assembler a)
        {
            var top = a.CreateLabel();
            a.mov(rdi, Data + 0x3000 - 0x100 * 40);   // the 41st load is past the mapped data: a page fault
            a.mov(ecx, 1000);
            a.mov(r9, 0x7FFFFFFFFFFFFFF0UL);
            a.Label(ref top);
            a.mov(r8, __qword_ptr[rdi]);
            a.add(r9, 3);                             // OF, SF, AF and PF change as r9 passes 2^63
            a.add(rdi, 0x100);
            a.dec(ecx);
            a.jnz(top);
            a.hlt();
        }
        AssertSameEverywhere(Program, 100_000, s => Assert.Equal(Data + 0x3000, s.Cr2));
    }

    /// <summary>PUSH and POP of registers: PUSH RSP, POP RSP, across a page end, and into an unmapped page (a fault, RSP unchanged).</summary>
    [Fact]
    public void Native_push_and_pop_move_rsp_and_memory_as_the_interpreter_does()
    {
        void Program(Assembler a)
        {
            var top = a.CreateLabel();
            a.mov(rcx, 1100);
            a.mov(rsp, Data + 0x2000);
            a.mov(rax, 0x1111);
            // each PUSH and POP alone (a run of them stays one call, Stack.PushRun/PopRun)
            a.Label(ref top);
            a.push(rax);
            a.inc(r13);
            a.push(rsp);                             // the value RSP had before the push
            a.inc(r13);
            a.push(rcx);
            a.inc(r13);
            a.push(r13);
            a.inc(r13);
            a.pop(rdx);
            a.add(rax, rdx);
            a.pop(rbx);
            a.add(rax, rbx);
            a.pop(r8);
            a.add(rax, r8);
            a.pop(r9);
            a.add(rax, r9);
            a.lea(r10, __[rsp - 0x40]);
            a.push(r10);
            a.pop(rsp);                              // RSP = the value read (not RSP + 8)
            a.add(rsp, 0x40);
            a.mov(r11, rsp);
            a.mov(rsp, Data + 0x1004);               // a push across the page end: the out-of-line path
            a.push(rax);
            a.pop(r12);
            a.add(rax, r12);
            a.mov(rsp, r11);
            a.sub(rsp, 8);                           // the stack grows down a qword an iteration: after 1024 pushes it reaches
            a.dec(rcx);                              // the unmapped page below Data, and the push faults
            a.jnz(top);
            a.hlt();
        }
        AssertSameEverywhere(Program, 100_000, s =>
        {
            Assert.Equal(Data - 8, s.Cr2);                 // the push below Data faulted (no IDT: the machine stops) ...
            Assert.Equal(Data, s.Gprs[Reg.RSP]);           // ... and left RSP where it was
        });
    }

    // ---- the page memo: a site's next access within the page of its last hit, with nothing in between -------------------------------

    /// <summary>
    /// One 8-byte store stepping 4 bytes at a time through three pages: its accesses within a page after the first are the page
    /// memo's (the same hit again: counted, no LRU touch), and the one that crosses a page end is not (two translations, made by the
    /// handler). The dTLB's lookups and hits must be the interpreter's one for one.
    /// </summary>
    [Fact]
    public void A_store_that_walks_through_pages_counts_each_hit_and_crosses_each_page_end_as_the_interpreter()
    {
        void Program(Assembler a)
        {
            var top = a.CreateLabel();
            a.mov(rdi, Data + 0x10);
            a.mov(ecx, (0x3000 - 0x20) / 4);
            a.Label(ref top);
            a.mov(__qword_ptr[rdi], rcx);             // at 0x...FFC and 0x...FF8+4: across the page end
            a.add(rdi, 4);
            a.dec(ecx);
            a.jnz(top);
            a.hlt();
        }
        AssertSameEverywhere(Program, 100_000, s =>
        {
            Assert.Equal(StopReason.Shutdown, s.Reason);
            Assert.True(Counter(s, "tlb.dtlb.kernel.write.hits") > 3000);
        });
    }

    /// <summary>
    /// A store to a hot page every iteration, between handlers' accesses (XADD, which has no native form) that use another page of
    /// the same dTLB set (a hit) and then one of five more pages of the set in turn (a miss, made inside the handler: the compiled
    /// method goes on). The hot page stays in the set only if each store touches its entry again: the page memo must not answer a
    /// store after a handler ran, though the store is to the page of its last hit. Were it to, the hot page would age out, and the
    /// store would go on counting hits on a fast entry the model had dropped, and the load after the loop would miss.
    /// </summary>
    [Fact]
    public void A_handlers_access_between_two_stores_to_one_page_makes_the_second_touch_its_tlb_entry()
    {
        const ulong Stride = 0x10000;   // 16 pages: the same set of the 64-entry, 4-way dTLB
        void Program(Assembler a)
        {
            var top = a.CreateLabel();
            a.mov(rdi, Data + 3 * Stride);
            a.mov(r11, Data + 3 * Stride);
            a.mov(ecx, 400);
            var next = a.CreateLabel();
            a.Label(ref top);
            a.mov(__byte_ptr[Data + Stride + 8], cl); // the hot page, alone in its block (which has a page memo)
            a.jmp(next);
            a.Label(ref next);                             // (at threshold 3 both blocks are one method, looping in itself)
            a.xadd(__qword_ptr[Data + 2 * Stride], rbx);   // a handler: another page of the set, a hit after the first
            a.xadd(__qword_ptr[rdi], rdx);                 // a handler: one of five more pages of the set in turn, a miss
            a.add(rdi, (int)Stride);
            a.cmp(rdi, (int)(Data + 8 * Stride));
            a.cmovae(rdi, r11);
            a.dec(ecx);
            a.jnz(top);
            a.mov(al, __byte_ptr[Data + Stride]);          // a load of the hot page: a hit only if its entry stayed
            a.hlt();
        }
        AssertSameEverywhere(Program, 100_000, s =>
        {
            Assert.Equal(StopReason.Shutdown, s.Reason);
            Assert.InRange(Counter(s, "tlb.dtlb.misses"), 400UL, 420UL);   // the five pages on each turn; the other two once
        }, m => { for (ulong k = 1; k <= 7; k++) m.Map(Data + k * Stride); });
    }

    /// <summary>
    /// A block with two different accesses (no page memo of its own: each would forget the other's) between two runs of a store to a
    /// hot page in a block of its own (with a page memo), all hits: its accesses must still forget the store's memo, or the store's
    /// next run would skip making the hot page its dTLB set's most recent use. Two misses in the set after the loop then evict the
    /// least recent page, and a load of the hot page hits only if it was not that one.
    /// </summary>
    [Fact]
    public void Accesses_in_a_block_without_a_page_memo_make_the_next_store_touch_its_tlb_entry()
    {
        const ulong Stride = 0x10000;   // 16 pages: the same set of the 64-entry, 4-way dTLB
        void Program(Assembler a)
        {
            var b = a.CreateLabel();
            var hot = a.CreateLabel();
            a.mov(ecx, 400);
            a.Label(ref b);
            a.mov(rax, __qword_ptr[Data + 2 * Stride]);   // two pages of the hot page's set: hits after the first
            a.mov(rbx, __qword_ptr[Data + 3 * Stride]);
            a.jmp(hot);
            a.Label(ref hot);
            a.mov(__byte_ptr[Data + Stride + 8], cl);     // the hot page, alone in its block: the most recent of the three
            a.dec(ecx);
            a.jnz(b);
            a.mov(rdx, __qword_ptr[Data + 4 * Stride]);   // two more pages of the set: the second evicts the least recent
            a.mov(rdx, __qword_ptr[Data + 5 * Stride]);
            a.mov(al, __byte_ptr[Data + Stride]);          // a hit: the hot page was the most recent
            a.hlt();
        }
        AssertSameEverywhere(Program, 100_000, s => Assert.Equal(StopReason.Shutdown, s.Reason),
            m => { for (ulong k = 1; k <= 5; k++) m.Map(Data + k * Stride); });
    }

    // ---- flags a self-looping block leaves in registers for its next iteration (NativeRegion.SelfFlags) -----------------------------

    /// <summary>
    /// Loops that end in CMP, TEST, SUB or ADD of registers or an immediate and branch back to a store, whose back edge leaves the
    /// flags in the registers: the store walks into an unmapped page and faults, and RFLAGS at the fault must be the last flag
    /// instruction's (computed back from the registers: the compare's operands, the subtrahend added back to SUB's result, the
    /// addend taken from ADD's). On the way the store misses the TLB at each new page (the miss path spills the flags too).
    /// </summary>
    [Fact]
    public void Flags_a_loop_leaves_in_registers_are_in_rflags_when_its_first_store_faults()
    {
        foreach (int variant in new[] { 0, 1, 2, 3, 4, 5 })
        {
            void Program(Assembler a)
            {
                var top = a.CreateLabel();
                a.mov(rbx, Data);
                a.xor(eax, eax);
                a.mov(edx, 0x37);                     // the stride: every 0x37 bytes, into the unmapped page at Data + 0x3000
                a.mov(r12d, 0x7FFF_0000);
                a.mov(r13, 0x8000_0000_0000_0010UL);
                a.mov(r14, -1L);
                a.Label(ref top);
                a.mov(__byte_ptr[rbx + rax], dl);
                a.add(rax, rdx);
                switch (variant)
                {
                    case 0: a.cmp(r12d, eax); a.jg(top); break;                   // CMP r32, r32 (the sieve's)
                    case 1: a.cmp(rax, 0x5000); a.jb(top); break;                 // CMP r64, imm
                    case 2: a.test(eax, r14d); a.jnz(top); break;                 // TEST r32, r32
                    case 3: a.sub(r13, rdx); a.jns(top); break;                   // SUB r64, r64: OF as r13 passes -2^63
                    case 4: a.sub(r12d, 0x37); a.jnz(top); break;                 // SUB r32, imm
                    default: a.add(r13, rdx); a.jno(top); break;                  // ADD r64, r64
                }
                a.hlt();
            }
            AssertSameEverywhere(Program, 200_000, s =>
            {
                Assert.Equal(StopReason.TripleFault, s.Reason);   // (no IDT: the #PF stops the machine)
                Assert.InRange(s.Cr2, Data + 0x3000, Data + 0x3036);
            });
        }
    }

    /// <summary>
    /// A self-looping block whose flags wait in registers, read back at its start by ADC (CF), by SETcc, by INC (which keeps CF, read
    /// by the ADC after it), or made stale there by a load into the compare's register before the block's next flag instruction: each
    /// settles them into RFLAGS first — from the registers when the block came round its back edge, from where they are when the outer
    /// loop entered it (whose compare sets CF where the inner one, computed from the registers, would clear it).
    /// </summary>
    [Fact]
    public void Flags_left_in_registers_are_read_back_by_adc_setcc_inc_and_a_write_of_their_register_as_the_interpreters()
    {
        foreach (int variant in new[] { 0, 1, 2, 3 })
        {
            void Program(Assembler a)
            {
                var outer = a.CreateLabel();
                var inner = a.CreateLabel();
                a.mov(rbx, Data);
                a.mov(r12d, 0x2F00);
                a.mov(edx, 1);
                a.Label(ref outer);
                a.mov(eax, edx);
                a.xor(r14, r14);
                a.cmp(r14, 1);                        // the outer loop's flags: CF = 1 (the inner compare's is 0 as it leaves)
                a.jmp(inner);
                a.Label(ref inner);
                a.mov(__byte_ptr[rbx + rax], dl);
                switch (variant)
                {
                    case 0: a.adc(r8, 0); break;                              // CF of the compare below, or of the XOR on entry
                    case 1: a.setb(r9b); a.add(r10, r9); break;
                    case 2: a.mov(r15d, __dword_ptr[rbx + rax]); a.setb(r9b); a.add(r10, r9); break;   // the compare's register
                    default: a.inc(r9); a.adc(r8, 0); break;
                }
                a.add(rax, rdx);
                a.mov(r15d, eax);
                a.cmp(r15d, r12d);
                a.jb(inner);
                a.add(edx, 1);
                a.cmp(edx, 100);
                a.jb(outer);
                a.hlt();
            }
            AssertSameEverywhere(Program, 1_000_000, s => Assert.Equal(StopReason.Shutdown, s.Reason));
        }
    }

    /// <summary>
    /// The sieve's inner loop in an outer loop, stopped after every count of instructions from 1 to 200 past a point inside: wherever
    /// the run stops — at the back edge, in the block, at the edge out — RFLAGS is the interpreter's.
    /// </summary>
    [Fact]
    public void A_run_stopped_anywhere_in_a_loop_that_keeps_its_flags_in_registers_has_the_interpreters_rflags()
    {
        void Program(Assembler a)
        {
            var outer = a.CreateLabel();
            var inner = a.CreateLabel();
            var next = a.CreateLabel();
            a.mov(rbx, Data);
            a.mov(r12d, 0x2F00);
            a.mov(edx, 2);
            a.Label(ref outer);
            a.lea(eax, __[rdx + rdx]);
            a.cmp(r12d, eax);
            a.jle(next);
            a.Label(ref inner);
            a.mov(__byte_ptr[rbx + rax], 0);
            a.add(rax, rdx);
            a.cmp(r12d, eax);
            a.jg(inner);
            a.Label(ref next);
            a.add(rdx, 1);
            a.cmp(rdx, 400);
            a.jne(outer);
            a.hlt();
        }
        for (ulong steps = 20_000; steps < 20_200; steps++) AssertSameEverywhere(Program, steps);
    }

    private static void Cmovcc(Assembler a, int cc)
    {
        switch (cc)
        {
            case 0: a.cmovo(r14, rdx); break; case 1: a.cmovno(r14d, edx); break; case 2: a.cmovb(r14, rdx); break; case 3: a.cmovae(r14d, edx); break;
            case 4: a.cmove(r14, rdx); break; case 5: a.cmovne(r14d, edx); break; case 6: a.cmovbe(r14, rdx); break; case 7: a.cmova(r14d, edx); break;
            case 8: a.cmovs(r14, rdx); break; case 9: a.cmovns(r14d, edx); break; case 10: a.cmovp(r14, rdx); break; case 11: a.cmovnp(r14d, edx); break;
            case 12: a.cmovl(r14, rdx); break; case 13: a.cmovge(r14d, edx); break; case 14: a.cmovle(r14, rdx); break; default: a.cmovg(r14d, edx); break;
        }
    }

    private static void Jcc(Assembler a, int cc, Label l)
    {
        switch (cc)
        {
            case 0: a.jo(l); break; case 1: a.jno(l); break; case 2: a.jb(l); break; case 3: a.jae(l); break;
            case 4: a.je(l); break; case 5: a.jne(l); break; case 6: a.jbe(l); break; case 7: a.ja(l); break;
            case 8: a.js(l); break; case 9: a.jns(l); break; case 10: a.jp(l); break; case 11: a.jnp(l); break;
            case 12: a.jl(l); break; case 13: a.jge(l); break; case 14: a.jle(l); break; default: a.jg(l); break;
        }
    }

    private static void Setcc(Assembler a, int cc)
    {
        switch (cc)
        {
            case 0: a.seto(cl); break; case 1: a.setno(cl); break; case 2: a.setb(cl); break; case 3: a.setae(cl); break;
            case 4: a.sete(cl); break; case 5: a.setne(cl); break; case 6: a.setbe(cl); break; case 7: a.seta(cl); break;
            case 8: a.sets(cl); break; case 9: a.setns(cl); break; case 10: a.setp(cl); break; case 11: a.setnp(cl); break;
            case 12: a.setl(cl); break; case 13: a.setge(cl); break; case 14: a.setle(cl); break; default: a.setg(cl); break;
        }
    }
}
