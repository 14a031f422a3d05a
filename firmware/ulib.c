/* ulib.c - user-space helpers: build a line, write it with one system call. */
#include "ulib.h"

void put_str(struct line *l, const char *s)
{
	while (*s && l->n < (int)sizeof(l->buf))
		l->buf[l->n++] = *s++;
}

void put_num(struct line *l, u64 v)
{
	char tmp[24];
	int i = 0;
	do
		tmp[i++] = '0' + v % 10;
	while (v /= 10);
	while (i && l->n < (int)sizeof(l->buf))
		l->buf[l->n++] = tmp[--i];
}

void put_hex(struct line *l, u64 v)
{
	put_str(l, "0x");
	for (int s = 60; s >= 0; s -= 4)
		if (l->n < (int)sizeof(l->buf))
			l->buf[l->n++] = "0123456789abcdef"[(v >> s) & 15];
}

void put_line(struct line *l)
{
	write(1, l->buf, l->n);
	l->n = 0;
}
