/*
 * swtch(u64 *save_rsp, u64 new_rsp) - switch kernel stacks.
 * Save the callee-saved registers on the current kernel stack, store
 * RSP in *save_rsp, load new_rsp and pop the other process's registers.
 * "ret" then returns into the other process's call to swtch (or into
 * ret_from_fork for a new one).  CR3 was switched before, by switch_mm.
 */
	.text
	.globl swtch
swtch:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, (%rdi)
	movq %rsi, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret
