/* printf.c - printk: formatted output to the console, panic, poweroff. */
#include "defs.h"
#include "x86.h"
#include "port.h"

/* Supports %d %i %u %x %X %p %s %c %%, flags '-' and '0', a width, and
 * the length modifiers l, ll, z (all treated as 64-bit). */
int vprintk(const char *fmt, va_list ap)
{
	int count = 0;
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			console_putc(*fmt);
			count++;
			continue;
		}
		fmt++;
		int left = 0, zero = 0, width = 0, is_long = 0;
		for (;; fmt++) {
			if (*fmt == '-')
				left = 1;
			else if (*fmt == '0')
				zero = 1;
			else
				break;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z')
			is_long = 1, fmt++;

		char buf[24], *s = buf + sizeof(buf);
		const char *str = NULL;
		u64 v;
		int neg = 0, base = 10;
		const char *digits = "0123456789abcdef";
		*--s = 0;
		switch (*fmt) {
		case 'd':
		case 'i': {
			s64 sv = is_long ? va_arg(ap, s64) : va_arg(ap, int);
			neg = sv < 0;
			v = neg ? -(u64)sv : (u64)sv;
			goto number;
		}
		case 'p':
			v = (u64)va_arg(ap, void *);
			console_putc('0');
			console_putc('x');
			count += 2;
			base = 16, width = 16, zero = 1;
			goto convert;
		case 'X':
			digits = "0123456789ABCDEF";
			/* fall through */
		case 'x':
			base = 16;
			/* fall through */
		case 'u':
			v = is_long ? va_arg(ap, u64) : va_arg(ap, unsigned int);
		number:
		convert:
			do {
				*--s = digits[v % base];
				v /= base;
			} while (v);
			if (neg)
				*--s = '-';
			str = s;
			break;
		case 's':
			str = va_arg(ap, const char *);
			if (!str)
				str = "(null)";
			zero = 0;
			break;
		case 'c':
			buf[0] = (char)va_arg(ap, int);
			buf[1] = 0;
			str = buf;
			break;
		case '%':
			str = "%";
			break;
		default:
			str = "?";
			if (!*fmt)
				fmt--;
			break;
		}
		int len = strlen(str);
		if (!left)
			for (; len < width; width--, count++)
				console_putc(zero ? '0' : ' ');
		for (const char *p = str; *p; p++, count++)
			console_putc(*p);
		if (left)
			for (; len < width; width--, count++)
				console_putc(' ');
	}
	return count;
}

int printk(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vprintk(fmt, ap);
	va_end(ap);
	return n;
}

/* Leave the machine: isa-debug-exit makes QEMU/emu64 exit with status
 * (code << 1) | 1.  code 0 = success. */
void poweroff(u32 code)
{
	outl(ISA_DEBUG_EXIT_PORT, code);
	for (const char *p = "Shutdown"; *p; p++)   /* Bochs's shutdown port */
		outb(0x8900, *p);
	for (;;) {          /* no exit device: stop here */
		cli();
		hlt();
	}
}

void panic(const char *fmt, ...)
{
	va_list ap;
	cli();
	printk("Kernel panic - not syncing: ");
	va_start(ap, fmt);
	vprintk(fmt, ap);
	va_end(ap);
	printk("\n");
	poweroff(1);
}

/* The emulator port protocol (port.h). */
void emu_announce(u32 op, u32 arg, u64 value)
{
	outl(EMU_PORT_CMD, (arg << 8) | op);
	outl(EMU_PORT_DATA, (u32)value);
	outl(EMU_PORT_DATA, (u32)(value >> 32));
}
