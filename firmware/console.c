/* console.c - the console: a 16550 UART at COM1 (0x3F8), polled. */
#include "defs.h"
#include "x86.h"

#define COM1     0x3f8
#define UART_RBR 0      /* receive buffer (read) */
#define UART_THR 0      /* transmit holding register (write) */
#define UART_IER 1
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LSR_DATA_READY 0x01
#define LSR_THR_EMPTY  0x20

void console_init(void)
{
	outb(COM1 + UART_IER, 0x00);    /* no interrupts: we poll */
	outb(COM1 + UART_LCR, 0x80);    /* DLAB: set the divisor ... */
	outb(COM1 + 0, 0x01);           /* ... 115200 baud */
	outb(COM1 + 1, 0x00);
	outb(COM1 + UART_LCR, 0x03);    /* 8 bits, no parity, 1 stop bit */
	/*
	 * No FCR write.  Input can be waiting before we run (a pipe on the host
	 * side is fed as soon as the machine starts), and switching the FIFO on
	 * or resetting it clears the receiver (PC16550D datasheet, FCR bits 0-1;
	 * QEMU does the same), which lost the first piped byte.  A polled
	 * console needs no FIFO: whatever mode the UART is in, LSR.DR and
	 * LSR.THRE work the same.
	 */
	outb(COM1 + UART_MCR, 0x03);    /* DTR, RTS */
}

/* Lines end in a bare "\n" (no "\r"), so logs compare byte for byte. */
void console_putc(char c)
{
	while (!(inb(COM1 + UART_LSR) & LSR_THR_EMPTY))
		;
	outb(COM1 + UART_THR, c);
}

/* One byte of input, or -1 if none is waiting. */
int console_getc(void)
{
	if (!(inb(COM1 + UART_LSR) & LSR_DATA_READY))
		return -1;
	return inb(COM1 + UART_RBR);
}
