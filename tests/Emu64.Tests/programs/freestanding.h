/*
 * What the freestanding test programs (Sse/programs/numeric.c, X87/programs/longdouble.c) share: a raw
 * system call (the only two used are write (1) and exit (60)), the memcpy and memset gcc may call for
 * copies, and an output buffer written once at the end, so Emu64 and the host see the same single write.
 * OUT_SIZE is the buffer's size (define it before including this file).
 */
typedef unsigned long size_t;

static long sys3(long n, long a, long b, long c)
{
    long r;
    __asm__ volatile ("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}
void *memcpy(void *d, const void *s, size_t n) { unsigned char *p = d; const unsigned char *q = s; while (n--) *p++ = *q++; return d; }
void *memset(void *d, int c, size_t n) { unsigned char *p = d; while (n--) *p++ = (unsigned char)c; return d; }

static char buf[OUT_SIZE];
static size_t len;
static void out(const char *s) { while (*s) buf[len++] = *s++; }
static void out_u(unsigned long v) { char b[24]; int i = 23; b[i] = 0; do { b[--i] = (char)('0' + v % 10); v /= 10; } while (v); out(b + i); }
