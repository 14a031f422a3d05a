/*
 * A user program for the SSE/SSE2 acceptance test: built with plain
 *   gcc -O2 -static -nostdlib -ffreestanding -fno-pic -no-pie -fno-math-errno
 * (SSE2 on, as the x86-64 ABI requires) and run twice: natively on the host (Linux system calls)
 * and at CPL 3 in Emu64 under a small test kernel that implements write (1) and exit (60) through
 * SYSCALL. Both runs must print the same text and exit with the same status.
 * It exercises what gcc -O2 turns into SSE2: memcpy/memset and struct copies, vectorised integer
 * loops, double and float arithmetic, conversions, comparisons, sqrt, plus 64-bit division and
 * string functions.
 */
typedef unsigned long size_t;
typedef long ssize_t;

static long sys3(long n, long a, long b, long c)
{
    long r;
    __asm__ volatile ("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

/* ---- the freestanding C library the program needs (gcc may call these for copies) ---- */
void *memcpy(void *d, const void *s, size_t n)
{
    unsigned char *dp = d; const unsigned char *sp = s;
    for (size_t i = 0; i < n; i++) dp[i] = sp[i];
    return d;
}
void *memset(void *d, int c, size_t n)
{
    unsigned char *dp = d;
    for (size_t i = 0; i < n; i++) dp[i] = (unsigned char)c;
    return d;
}
void *memmove(void *d, const void *s, size_t n)
{
    unsigned char *dp = d; const unsigned char *sp = s;
    if (dp < sp) for (size_t i = 0; i < n; i++) dp[i] = sp[i];
    else for (size_t i = n; i > 0; i--) dp[i - 1] = sp[i - 1];
    return d;
}
int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++) if (x[i] != y[i]) return x[i] - y[i];
    return 0;
}
size_t strlen(const char *s) { size_t n = 0; while (s[n]) n++; return n; }
int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b) { a++; b++; }
    return (unsigned char)*a - (unsigned char)*b;
}
char *strcpy(char *d, const char *s) { char *r = d; while ((*d++ = *s++)) ; return r; }
char *strcat(char *d, const char *s) { strcpy(d + strlen(d), s); return d; }
char *strchr(const char *s, int c) { for (; *s; s++) if (*s == (char)c) return (char *)s; return c ? 0 : (char *)s; }

/* ---- output ---- */
static char outbuf[4096];
static size_t outlen;
static void flush(void) { if (outlen) sys3(1, 1, (long)outbuf, (long)outlen); outlen = 0; }
static void puts_(const char *s) { while (*s) { if (outlen == sizeof outbuf) flush(); outbuf[outlen++] = *s++; } }
static void putc_(char c) { char b[2] = { c, 0 }; puts_(b); }

static void put_u64(unsigned long v)
{
    char b[24]; int i = 23; b[i] = 0;
    do { b[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    puts_(b + i);
}
static void put_i64(long v) { if (v < 0) { putc_('-'); put_u64(-(unsigned long)v); } else put_u64((unsigned long)v); }
static void put_hex(unsigned long v)
{
    char b[17]; b[16] = 0;
    for (int i = 15; i >= 0; i--) { b[i] = "0123456789abcdef"[v & 15]; v >>= 4; }
    puts_(b);
}
/* doubles printed through integer conversion: sign, integer part, 6 rounded decimals */
static void put_double(double x)
{
    if (x != x) { puts_("nan"); return; }
    if (x < 0) { putc_('-'); x = -x; }
    if (x > 1e18) { puts_("big"); return; }
    unsigned long ip = (unsigned long)x;
    double frac = x - (double)ip;
    unsigned long f = (unsigned long)(frac * 1000000.0 + 0.5);
    if (f >= 1000000) { ip++; f -= 1000000; }
    put_u64(ip); putc_('.');
    char b[7]; for (int i = 5; i >= 0; i--) { b[i] = (char)('0' + f % 10); f /= 10; } b[6] = 0;
    puts_(b);
}
static unsigned long bits(double d) { unsigned long u; memcpy(&u, &d, 8); return u; }
static unsigned int fbits(float f) { unsigned int u; memcpy(&u, &f, 4); return u; }

/* ---- workloads ---- */
struct record { long id; double weight; char name[24]; int tags[6]; };

static unsigned long rng_state = 88172645463325252UL;
static unsigned long rng(void) { rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17; return rng_state; }

static int ints[1024];
static double dbl[256];
static float flt[256];
static unsigned char bytes_a[1000], bytes_b[1000];

__attribute__((noinline)) static long sum_ints(const int *a, int n) { long s = 0; for (int i = 0; i < n; i++) s += a[i]; return s; }
__attribute__((noinline)) static void scale_add(int *a, int n, int k) { for (int i = 0; i < n; i++) a[i] = a[i] * k + (i ^ 5); }
__attribute__((noinline)) static int max_int(const int *a, int n) { int m = a[0]; for (int i = 1; i < n; i++) m = a[i] > m ? a[i] : m; return m; }
__attribute__((noinline)) static void saxpy(float *y, const float *x, float a, int n) { for (int i = 0; i < n; i++) y[i] = a * x[i] + y[i]; }
__attribute__((noinline)) static void daxpy(double *y, double a, int n) { for (int i = 0; i < n; i++) y[i] = a * y[i] + 1.0 / (i + 1); }
__attribute__((noinline)) static int count_eq(const unsigned char *a, const unsigned char *b, int n) { int c = 0; for (int i = 0; i < n; i++) c += a[i] == b[i]; return c; }

static void sort_doubles(double *a, int n)
{
    for (int i = 1; i < n; i++)
    {
        double v = a[i]; int j = i - 1;
        while (j >= 0 && a[j] > v) { a[j + 1] = a[j]; j--; }
        a[j + 1] = v;
    }
}

int main(void)
{
    puts_("emu64 sse acceptance\n");

    /* strings and memory */
    char s[128];
    strcpy(s, "hello");
    strcat(s, ", world");
    puts_(s); puts_(" len="); put_u64(strlen(s));
    puts_(" cmp="); put_i64(strcmp(s, "hello, worle") < 0); puts_(" chr="); puts_(strchr(s, 'w')); putc_('\n');

    struct record r1 = { 7, 2.5, "first record", { 1, 2, 3, 4, 5, 6 } }, r2, recs[8];
    r2 = r1;
    r2.id = 9;
    for (int i = 0; i < 8; i++) { recs[i] = r2; recs[i].tags[i % 6] = i * 11; recs[i].weight = i * 0.75; }
    long tsum = 0;
    for (int i = 0; i < 8; i++) for (int k = 0; k < 6; k++) tsum += recs[i].tags[k];
    puts_("records: "); puts_(recs[3].name); puts_(" id="); put_i64(recs[5].id); puts_(" tags="); put_i64(tsum);
    puts_(" same="); put_i64(memcmp(&recs[0].name, &r1.name, sizeof r1.name) == 0); putc_('\n');

    for (int i = 0; i < 1000; i++) { bytes_a[i] = (unsigned char)rng(); bytes_b[i] = (i % 3) ? bytes_a[i] : (unsigned char)(bytes_a[i] + 1); }
    memmove(bytes_a + 10, bytes_a, 300);
    memmove(bytes_b, bytes_b + 7, 500);
    puts_("bytes equal: "); put_i64(count_eq(bytes_a, bytes_b, 1000)); putc_('\n');

    /* 64-bit division */
    unsigned long u = 0xFEDCBA9876543210UL, acc = 0;
    for (unsigned long d = 3; d < 100000; d = d * 7 + 1) acc += u / d + u % d;
    long sv = -0x123456789ABCDEL, sacc = 0;
    for (long d = -97; d < 1000; d += 89) if (d) sacc += sv / d - sv % d;
    puts_("division: "); put_u64(acc); putc_(' '); put_i64(sacc); putc_(' '); put_hex(u / 10); putc_('\n');

    /* vectorised integer loops */
    for (int i = 0; i < 1024; i++) ints[i] = (int)(rng() % 20001) - 10000;
    scale_add(ints, 1024, 3);
    puts_("ints: sum="); put_i64(sum_ints(ints, 1024)); puts_(" max="); put_i64(max_int(ints, 1024)); putc_('\n');

    /* floating point */
    double pi = 0;
    for (int k = 0; k < 100000; k++) pi += (k & 1 ? -4.0 : 4.0) / (2 * k + 1);
    puts_("pi ~ "); put_double(pi); putc_('\n');
    double x = 2.0;
    for (int i = 0; i < 6; i++) x = 0.5 * (x + 2.0 / x);
    puts_("sqrt2 newton "); put_double(x); puts_(" builtin "); put_double(__builtin_sqrt(2.0));
    puts_(" equal="); put_i64(x == __builtin_sqrt(2.0)); putc_('\n');
    puts_("bits: "); put_hex(bits(pi)); putc_(' '); put_hex(bits(1.0 / 3.0)); putc_(' '); put_hex(fbits(1.0f / 3.0f)); putc_('\n');

    for (int i = 0; i < 256; i++) { dbl[i] = (double)(long)(rng() % 1000000) / 997.0 - 400.0; flt[i] = (float)i * 0.25f - 10.0f; }
    sort_doubles(dbl, 256);
    puts_("sorted: "); put_double(dbl[0]); putc_(' '); put_double(dbl[128]); putc_(' '); put_double(dbl[255]); putc_('\n');
    daxpy(dbl, 0.5, 256);
    float fy[256];
    for (int i = 0; i < 256; i++) fy[i] = 1.0f / (i + 1);
    saxpy(fy, flt, 1.5f, 256);
    double dsum = 0; float fsum = 0;
    for (int i = 0; i < 256; i++) { dsum += dbl[i]; fsum += fy[i]; }
    puts_("axpy: "); put_double(dsum); putc_(' '); put_double(fsum); putc_(' '); put_hex(fbits(fsum)); putc_('\n');

    double big = 1e300, tiny = 1e-300;
    puts_("edges: "); put_hex(bits(big * big)); putc_(' '); put_hex(bits(tiny * tiny)); putc_(' ');
    put_hex(bits(-big * big)); putc_(' '); put_i64((long)-2.5); putc_(' '); put_i64((long)(float)1e10); putc_(' ');
    put_i64((int)3.99f); putc_(' '); put_hex(bits((double)(float)0.1)); putc_(' '); put_u64((unsigned long)1.8e19); putc_('\n');
    int lt = 0;
    for (int i = 0; i < 255; i++) lt += dbl[i] < dbl[i + 1];
    puts_("ordered pairs: "); put_i64(lt); putc_('\n');

    flush();
    return 42;
}

__asm__(
    ".globl _start\n"
    "_start:\n"
    "  xor %ebp, %ebp\n"
    "  and $-16, %rsp\n"
    "  call main\n"
    "  mov %eax, %edi\n"
    "  mov $60, %eax\n"
    "  syscall\n"
    "  hlt\n");
