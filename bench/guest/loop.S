/*
 * loop.S - the guest that bench/compare.sh runs in QEMU, Bochs and Emu64.
 *
 * A multiboot v1 kernel (ELF32, loaded at 1 MiB) that builds 4-level page tables, enters 64-bit long
 * mode and runs one of two loops a number of times given on its command line, then reports on the
 * debug console (port 0xE9) and exits:
 *
 *   loops=N     iterations (default 1000000)
 *   mode=reg    the three-instruction register loop   add rax,rcx; dec rcx; jnz        (3 N instructions)
 *   mode=mem    loads and stores over a 64 KiB buffer mapped with 4 KiB pages:
 *               mov rax,[rsi]; add rax,rcx; mov [rsi],rax; add rsi,8; dec ecx; jnz    (6 per iteration),
 *               N/8192 passes over the buffer (4 more instructions per pass)
 *
 * and the per-operation modes (bench/ops.sh; the operations of kvm-unit-tests' x86/vmexit.c), each a loop of
 * N iterations of `op; dec r8; jnz` (3 N instructions; cpuid: `xor eax,eax; cpuid; dec r8; jnz`, 4 N):
 *   mode=cpuid  CPUID leaf 0
 *   mode=inpm   IN eax from the ACPI PM timer, the port found the way an OS finds it: the RSDP in the BIOS
 *               area 0xE0000-0xFFFFF, the RSDT, the FADT ("FACP") and its PM_TMR_BLK (both machines answer 0x608)
 *   mode=cr8r   MOV rax, CR8
 *   mode=cr8w   MOV CR8, rax (rax = 0: the task priority stays 0)
 *   mode=pause  PAUSE
 *   mode=tscdl  WRMSR IA32_TSC_DEADLINE (0x6E0) = 2^64-1 with the local APIC enabled and its timer in TSC-deadline
 *               mode (LVT timer vector 0xEF, unmasked; IF is 0), as x86/vmexit.c's wr_tsc_deadline_msr. The guest
 *               checks CPUID.1:ECX[24] (TSC deadline) first; without it, it reports "no tsc-deadline" and no
 *               result line. The APIC page 0xFEE00000 is mapped uncached through a second page directory.
 * The result of an operation mode is the last value the operation left in rax.
 *
 * Report line:  "emu64-bench: mode=reg loops=N insns=I result=0xR" where I is the number of
 * instructions the timed loop executed and R its result (the register loop's is N(N+1)/2 mod 2^64).
 *
 * Exit: isa-debug-exit (port 0xF4, value 0x10, so QEMU and Emu64 exit with status 0x21 = 33), then the
 * Bochs shutdown port (the string "Shutdown" to 0x8900), then cli; hlt.
 *
 * Paging: the first 2 MiB through a 4 KiB page table (the image and its buffer live there), the rest of
 * the first 1 GiB with 2 MiB pages; the multiboot information and command line lie below 1 GiB; the 2 MiB
 * page of the local APIC (0xFEE00000) through a page directory for 3-4 GiB.
 */

        .set MB_MAGIC, 0x1BADB002
        .set MB_FLAGS, 0x00000000
        .set EXIT_VALUE, 0x10
        .set BUF_BYTES, 65536
        .set BUF_QWORDS, BUF_BYTES / 8

        .section .multiboot, "a"
        .align 4
        .long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

        .section .text
        .code32
        .globl _start
_start:
        cli
        mov     $stack_top, %esp
        mov     %ebx, mbi_ptr
        mov     %eax, mb_magic

        /* zero PML4, PDPT, PD, PT and PD_HI (five contiguous pages) */
        mov     $pml4, %edi
        mov     $(5 * 1024), %ecx
        xor     %eax, %eax
        rep stosl

        movl    $(pdpt + 3), pml4
        movl    $(pd + 3), pdpt
        movl    $(pt + 3), pd
        movl    $(pd_hi + 3), pdpt + 3 * 8
        /* PD_HI[503]: the 2 MiB page at 0xFEE00000 (local APIC), PCD PWT: uncached */
        movl    $(0xFEE00000 + 0x9B), pd_hi + 503 * 8
        /* PD[1..511]: 2 MiB pages 2 MiB .. 1 GiB */
        mov     $(pd + 8), %edi
        mov     $(0x200000 + 0x83), %eax
        mov     $511, %ecx
1:      mov     %eax, (%edi)
        add     $0x200000, %eax
        add     $8, %edi
        dec     %ecx
        jnz     1b
        /* PT: 4 KiB pages for 0 .. 2 MiB */
        mov     $pt, %edi
        mov     $3, %eax
        mov     $512, %ecx
2:      mov     %eax, (%edi)
        add     $0x1000, %eax
        add     $8, %edi
        dec     %ecx
        jnz     2b

        mov     $pml4, %eax
        mov     %eax, %cr3
        mov     %cr4, %eax
        or      $0x20, %eax                     /* PAE */
        mov     %eax, %cr4
        mov     $0xC0000080, %ecx               /* EFER.LME */
        rdmsr
        or      $0x100, %eax
        wrmsr
        mov     %cr0, %eax
        or      $0x80000001, %eax               /* PG, PE */
        mov     %eax, %cr0
        lgdt    gdtr
        ljmp    $0x08, $long_entry

        .code64
long_entry:
        mov     $0x10, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        mov     $stack_top, %rsp

        mov     $1000000, %r12                  /* loops */
        xor     %r13d, %r13d                    /* mode: an index into mode_names (0 reg, 1 mem, 2 cpuid ...) */
        cmpl    $0x2BADB002, mb_magic(%rip)
        jne     no_cmdline
        mov     mbi_ptr(%rip), %ebx
        testl   $4, (%rbx)                      /* flags.cmdline */
        jz      no_cmdline
        mov     16(%rbx), %esi
        call    parse_cmdline
no_cmdline:
        lea     msg_start(%rip), %rsi
        call    puts

        cmp     $1, %r13d
        je      mem_mode
        ja      op_mode

        /* ---- the timed register loop: 3 instructions per iteration ---- */
        mov     %r12, %rcx
        xor     %eax, %eax
        test    %rcx, %rcx
        jz      reg_done
        .p2align 4
reg_loop:
        add     %rcx, %rax
        dec     %rcx
        jnz     reg_loop
reg_done:
        mov     %rax, %r14                      /* result */
        lea     (%r12, %r12, 2), %r15           /* insns = 3 N */
        jmp     report

mem_mode:
        /* ---- the timed memory loop: N / 8192 passes over the 64 KiB buffer ---- */
        mov     %r12, %r8
        shr     $13, %r8                        /* passes */
        mov     %r8, %r15
        imul    $(6 * BUF_QWORDS + 4), %r15     /* insns */
        test    %r8, %r8
        jz      mem_done
        .p2align 4
mem_outer:
        mov     $buffer, %esi
        mov     $BUF_QWORDS, %ecx
mem_inner:
        mov     (%rsi), %rax
        add     %rcx, %rax
        mov     %rax, (%rsi)
        add     $8, %rsi
        dec     %ecx
        jnz     mem_inner
        dec     %r8
        jnz     mem_outer
mem_done:
        mov     buffer(%rip), %r14              /* result: the first qword */
        and     $-8192, %r12                    /* report the loops actually run (whole passes) */
        jmp     report

        /* ---- the operation loops: N iterations of one operation ---- */
op_mode:
        lea     (%r12, %r12, 2), %r15           /* insns = 3 N (cpuid: 4 N, below) */
        mov     %r12, %r8
        xor     %eax, %eax
        cmp     $2, %r13d
        je      op_cpuid
        cmp     $3, %r13d
        je      op_inpm
        cmp     $4, %r13d
        je      op_cr8r
        cmp     $5, %r13d
        je      op_cr8w
        cmp     $6, %r13d
        je      op_pause
        jmp     op_tscdl

op_cpuid:
        add     %r12, %r15
        test    %r8, %r8
        jz      op_done
        .p2align 4
1:      xor     %eax, %eax
        cpuid
        dec     %r8
        jnz     1b
        jmp     op_done

op_inpm:
        call    find_pm_timer                   /* -> edx = PM_TMR_BLK, or exits with a message */
        test    %r8, %r8
        jz      op_done
        .p2align 4
1:      in      (%dx), %eax
        dec     %r8
        jnz     1b
        jmp     op_done

op_cr8r:
        test    %r8, %r8
        jz      op_done
        .p2align 4
1:      mov     %cr8, %rax
        dec     %r8
        jnz     1b
        jmp     op_done

op_cr8w:
        test    %r8, %r8
        jz      op_done
        .p2align 4
1:      mov     %rax, %cr8
        dec     %r8
        jnz     1b
        jmp     op_done

op_pause:
        test    %r8, %r8
        jz      op_done
        .p2align 4
1:      pause
        dec     %r8
        jnz     1b
        jmp     op_done

op_tscdl:
        mov     $1, %eax
        cpuid
        bt      $24, %ecx                       /* CPUID.1:ECX[24]: TSC-deadline mode of the APIC timer */
        jc      2f
        lea     msg_no_tscdl(%rip), %rsi
        call    puts
        jmp     exit
2:      mov     $0x1B, %ecx                     /* IA32_APIC_BASE: the APIC globally enabled (bit 11) */
        rdmsr
        or      $0x800, %eax
        wrmsr
        mov     $0xFEE00000, %ebx               /* the local APIC's registers */
        movl    $0x1FF, 0xF0(%rbx)              /* SVR: software enabled, spurious vector 0xFF */
        movl    $(0x40000 | 0xEF), 0x320(%rbx)  /* LVT timer: TSC-deadline mode (bits 18:17 = 10), vector 0xEF */
        mov     $0x6E0, %ecx                    /* IA32_TSC_DEADLINE */
        mov     $0xffffffff, %eax
        mov     $0xffffffff, %edx
        test    %r8, %r8
        jz      op_done
        .p2align 4
1:      wrmsr
        dec     %r8
        jnz     1b
        xor     %eax, %eax
        mov     $0x6E0, %ecx                    /* result: the deadline disarmed again (0 stops the timer) */
        xor     %edx, %edx
        wrmsr
        mov     $0xffffffff, %eax

op_done:
        mov     %rax, %r14
        jmp     report

/* find_pm_timer -> edx = the FADT's PM_TMR_BLK (an I/O port); on failure prints why and exits */
find_pm_timer:
        mov     $0xE0000, %esi
        movabs  $0x2052545020445352, %rax       /* "RSD PTR " */
1:      cmp     %rax, (%rsi)
        je      2f
        add     $16, %esi
        cmp     $0x100000, %esi
        jb      1b
        jmp     9f
2:      mov     16(%rsi), %esi                  /* RsdtAddress */
        mov     4(%rsi), %ecx                   /* the RSDT's length */
        lea     (%rsi, %rcx), %rdi              /* its end */
        add     $36, %esi                       /* its entries (32-bit table addresses) after the header */
3:      cmp     %rdi, %rsi
        jae     9f
        mov     (%rsi), %ebx
        cmpl    $0x50434146, (%rbx)             /* "FACP" */
        je      4f
        add     $4, %rsi
        jmp     3b
4:      mov     76(%rbx), %edx                  /* PM_TMR_BLK */
        test    %edx, %edx
        jz      9f
        ret
9:      lea     msg_no_pmtmr(%rip), %rsi
        call    puts
        jmp     exit

report:
        lea     msg_mode(%rip), %rsi
        call    puts
        lea     mode_names(%rip), %rsi          /* the r13-th name of the list */
        mov     %r13d, %ecx
1:      test    %ecx, %ecx
        jz      3f
2:      lodsb
        test    %al, %al
        jnz     2b
        dec     %ecx
        jmp     1b
3:      call    puts
        lea     msg_loops(%rip), %rsi
        call    puts
        mov     %r12, %rax
        call    putdec
        lea     msg_insns(%rip), %rsi
        call    puts
        mov     %r15, %rax
        call    putdec
        lea     msg_result(%rip), %rsi
        call    puts
        mov     %r14, %rax
        call    puthex
        mov     $'\n', %al
        call    putc

exit:
        /* isa-debug-exit (QEMU, Emu64) */
        mov     $0xf4, %dx
        mov     $EXIT_VALUE, %eax
        out     %eax, %dx
        /* Bochs: "Shutdown" to port 0x8900 */
        lea     str_shutdown(%rip), %rsi
        mov     $0x8900, %dx
3:      lodsb
        test    %al, %al
        jz      4f
        out     %al, %dx
        jmp     3b
4:      cli
        hlt
        jmp     4b

/* parse_cmdline(rsi = NUL-terminated string): loops=N -> r12, mode=NAME -> r13 = NAME's index in mode_names */
parse_cmdline:
        movzbl  (%rsi), %eax
        test    %al, %al
        jz      9f
        lea     key_loops(%rip), %rdi
        call    match
        jnz     5f
        xor     %r12d, %r12d
6:      movzbl  (%rsi), %eax
        sub     $'0', %eax
        cmp     $9, %eax
        ja      parse_cmdline
        imul    $10, %r12, %r12
        add     %rax, %r12
        inc     %rsi
        jmp     6b
5:      lea     key_mode(%rip), %rdi
        call    match
        jnz     7f
        lea     mode_names(%rip), %rdi          /* mode=NAME: NAME's index in mode_names, followed by a space or the end */
        xor     %r10d, %r10d
8:      cmpb    $0, (%rdi)
        je      parse_cmdline                   /* an unknown name: the mode stays */
        push    %rsi
        call    match
        jnz     10f
        movzbl  (%rsi), %eax
        cmp     $' ', %al
        jbe     11f
10:     pop     %rsi
12:     cmpb    $0, (%rdi)                      /* on to the next name */
        lea     1(%rdi), %rdi
        jne     12b
        inc     %r10d
        jmp     8b
11:     add     $8, %rsp                        /* matched: rsi stays past the name */
        mov     %r10d, %r13d
        jmp     parse_cmdline
7:      inc     %rsi
        jmp     parse_cmdline
9:      ret

/* match(rsi, rdi = key): ZF=1 and rsi advanced past the key if the string at rsi starts with key */
match:
        mov     %rsi, %r9
1:      movzbl  (%rdi), %eax
        test    %al, %al
        jz      2f
        cmp     (%r9), %al
        jne     3f
        inc     %r9
        inc     %rdi
        jmp     1b
2:      mov     %r9, %rsi                       /* matched: ZF is set by the test above */
3:      ret

putc:   push    %rdx
        mov     $0xe9, %dx
        out     %al, %dx
        pop     %rdx
        ret

puts:   lodsb
        test    %al, %al
        jz      1f
        call    putc
        jmp     puts
1:      ret

/* putdec(rax) */
putdec: lea     numbuf_end(%rip), %rsi
        movb    $0, (%rsi)
        mov     $10, %ecx
1:      xor     %edx, %edx
        div     %rcx
        add     $'0', %dl
        dec     %rsi
        mov     %dl, (%rsi)
        test    %rax, %rax
        jnz     1b
        jmp     puts

/* puthex(rax): 0x and 16 digits */
puthex: mov     %rax, %rdx
        mov     $'0', %al
        call    putc
        mov     $'x', %al
        call    putc
        mov     $16, %ecx
1:      rol     $4, %rdx
        mov     %edx, %eax
        and     $15, %eax
        lea     hexdigits(%rip), %rsi
        movb    (%rsi, %rax), %al
        call    putc
        dec     %ecx
        jnz     1b
        ret

        .section .rodata
        .align 8
gdt:    .quad   0
        .quad   0x00AF9A000000FFFF              /* 0x08: 64-bit code */
        .quad   0x00CF92000000FFFF              /* 0x10: data */
gdtr:   .word   gdtr - gdt - 1
        .long   gdt
msg_start:  .asciz "emu64-bench: start\n"
msg_mode:   .asciz "emu64-bench: mode="
msg_loops:  .asciz " loops="
msg_insns:  .asciz " insns="
msg_result: .asciz " result="
/* the modes, in the order of their numbers in r13, ended by an empty name */
mode_names: .asciz "reg", "mem", "cpuid", "inpm", "cr8r", "cr8w", "pause", "tscdl", ""
key_loops:  .asciz "loops="
key_mode:   .asciz "mode="
msg_no_tscdl: .asciz "emu64-bench: no tsc-deadline (CPUID.1:ECX[24] is 0)\n"
msg_no_pmtmr: .asciz "emu64-bench: no PM timer (no RSDP, RSDT or FADT PM_TMR_BLK found)\n"
str_shutdown: .asciz "Shutdown"
hexdigits:  .ascii "0123456789abcdef"

        .section .data
        .align 4
mbi_ptr:    .long 0
mb_magic:   .long 0
numbuf:     .space 24
numbuf_end: .byte 0

        .section .bss
        .align 4096
pml4:   .space 4096
pdpt:   .space 4096
pd:     .space 4096
pt:     .space 4096
pd_hi:  .space 4096
buffer: .space BUF_BYTES
        .space 16384
stack_top:
