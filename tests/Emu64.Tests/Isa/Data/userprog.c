/* A freestanding user program of the kind users build with plain gcc -O2: memcpy/memset/strlen/strcmp
   loops, 64-bit division and modulo, shifts and rotates, bit counting, a switch, signed compares.
   The coverage test compiles it and checks every instruction gcc emitted is implemented. */
typedef unsigned long u64;
typedef long s64;

void *memcpy(void *d, const void *s, u64 n) { char *dp = d; const char *sp = s; while (n--) *dp++ = *sp++; return d; }
void *memset(void *d, int c, u64 n) { char *dp = d; while (n--) *dp++ = (char)c; return d; }
u64 strlen(const char *s) { u64 n = 0; while (s[n]) n++; return n; }
int strcmp(const char *a, const char *b) { while (*a && *a == *b) { a++; b++; } return (unsigned char)*a - (unsigned char)*b; }

static long sys(long n, long a, long b, long c)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

static char *utoa(u64 v, char *p, unsigned base)
{
    char tmp[32]; int n = 0;
    do { tmp[n++] = "0123456789abcdef"[v % base]; v /= base; } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

struct rec { s64 a, b; char name[24]; };

static u64 rotl(u64 x, int k) { return (x << k) | (x >> (64 - k)); }

u64 mix(u64 x, s64 y, int k)
{
    u64 r = rotl(x, k & 63) ^ (u64)(y / 7) ^ (u64)(y % 13);
    r += (u64)__builtin_popcountl(x) + (u64)__builtin_ctzl(x | 1) + (u64)__builtin_clzl(x | 1);
    switch (k & 7) { case 0: r *= 3; break; case 1: r -= y; break; case 2: r >>= 3; break; case 3: r = (s64)r >> 5; break; default: r ^= 0x5555; }
    return y < 0 ? r : r + (x > (u64)y);
}

void _start(void)
{
    char buf[128];
    struct rec a = { 12345678901LL, -42, "hello" }, b;
    memcpy(&b, &a, sizeof a);
    memset(buf, 0, sizeof buf);
    char *p = buf;
    const char *msg = "user: ";
    memcpy(p, msg, strlen(msg)); p += strlen(msg);
    p = utoa((u64)b.a / 1000u, p, 10); *p++ = ' ';
    p = utoa(mix(0x123456789abcdefULL, b.b, 13), p, 16); *p++ = ' ';
    p = utoa((u64)strcmp(a.name, "help") & 0xff, p, 10); *p++ = '\n';
    sys(1, 1, (long)buf, p - buf);
    sys(60, 0, 0, 0);
    for (;;) { }
}
