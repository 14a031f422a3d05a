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
 * Report line:  "emu64-bench: mode=reg loops=N insns=I result=0xR" where I is the number of
 * instructions the timed loop executed and R its result (the register loop's is N(N+1)/2 mod 2^64).
 *
 * Exit: isa-debug-exit (port 0xF4, value 0x10, so QEMU and Emu64 exit with status 0x21 = 33), then the
 * Bochs shutdown port (the string "Shutdown" to 0x8900), then cli; hlt.
 *
 * Paging: the first 2 MiB through a 4 KiB page table (the image and its buffer live there), the rest of
 * the first 1 GiB with 2 MiB pages; the multiboot information and command line lie below 1 GiB.
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

        /* zero PML4, PDPT, PD and PT (four contiguous pages) */
        mov     $pml4, %edi
        mov     $(4 * 1024), %ecx
        xor     %eax, %eax
        rep stosl

        movl    $(pdpt + 3), pml4
        movl    $(pd + 3), pdpt
        movl    $(pt + 3), pd
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
        xor     %r13d, %r13d                    /* mode: 0 reg, 1 mem */
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

        test    %r13d, %r13d
        jnz     mem_mode

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

report:
        lea     msg_mode(%rip), %rsi
        call    puts
        lea     str_reg(%rip), %rsi
        lea     str_mem(%rip), %rax
        test    %r13d, %r13d
        cmovnz  %rax, %rsi
        call    puts
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

/* parse_cmdline(rsi = NUL-terminated string): loops=N -> r12, mode=mem -> r13 = 1 */
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
5:      lea     key_mem(%rip), %rdi
        call    match
        jnz     7f
        mov     $1, %r13d
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
str_reg:    .asciz "reg"
str_mem:    .asciz "mem"
key_loops:  .asciz "loops="
key_mem:    .asciz "mode=mem"
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
buffer: .space BUF_BYTES
        .space 16384
stack_top:
