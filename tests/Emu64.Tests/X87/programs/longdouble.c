/*
 * A gcc -O2 user program for the x87 acceptance test (issue 17): long double arithmetic the way gcc compiles it
 * (x87 loads, stores, FADD/FMUL/FDIV, FSQRT for __builtin_sqrtl, FISTP/FILD conversions, FUCOMI compares, FCMOV)
 * and the transcendentals through inline FSIN/FCOS/FPATAN/FYL2X/F2XM1/FSCALE/FPREM, printed with its own
 * printf("%.*Lf")-style formatter (itself long double arithmetic). Freestanding: only write (1) and exit (60).
 * The output must be the same in Emu64 as natively: exact operations are also printed as raw 80-bit patterns;
 * transcendentals only to 12 decimals, since the SDM lets their last bit differ between processors.
 */
#define OUT_SIZE 16384
#include "../../programs/freestanding.h"
static void out_x(unsigned long v, int digits) { for (int i = digits - 1; i >= 0; i--) { char c[2] = { "0123456789abcdef"[(v >> (4 * i)) & 15], 0 }; out(c); } }

/* the raw 80-bit pattern: sign/exponent, then significand */
static void out_bits(long double v)
{
    unsigned char b[16];
    memcpy(b, &v, 10);
    unsigned long sig; unsigned short se;
    memcpy(&sig, b, 8); memcpy(&se, b + 8, 2);
    out_x(se, 4); out(":"); out_x(sig, 16);
}

static long double rintl_(long double x) { long double r; __asm__("frndint" : "=t"(r) : "0"(x)); return r; }
static long double sinl_(long double x) { long double r; __asm__("fsin" : "=t"(r) : "0"(x)); return r; }
static long double cosl_(long double x) { long double r; __asm__("fcos" : "=t"(r) : "0"(x)); return r; }
static long double atan2l_(long double y, long double x) { long double r; __asm__("fpatan" : "=t"(r) : "0"(x), "u"(y) : "st(1)"); return r; }
static long double log2l_(long double x) { long double r; __asm__("fld1\n\tfxch\n\tfyl2x" : "=t"(r) : "0"(x)); return r; }
static long double fmodl_(long double x, long double y)
{
    long double r;
    __asm__("1:\n\tfprem\n\tfnstsw %%ax\n\ttestb $4, %%ah\n\tjnz 1b" : "=t"(r) : "0"(x), "u"(y) : "ax", "cc");
    return r;
}
static long double exp2l_(long double x)
{
    long double i = rintl_(x), f = x - i, r;
    __asm__("f2xm1" : "=t"(r) : "0"(f));
    r += 1.0L;
    __asm__("fscale" : "=t"(r) : "0"(r), "u"(i));
    return r;
}

/* printf("%.*Lf", prec, v) for |v| < 2^63 / 10^prec: round v·10^prec to an integer, then print the digits */
static void out_Lf(long double v, int prec)
{
    if (v != v) { out("nan"); return; }
    if (v < 0 || (v == 0 && 1.0L / v < 0)) { out("-"); v = -v; }
    if (v > 1e300L) { out("inf"); return; }
    long double scale = 1;
    for (int i = 0; i < prec; i++) scale *= 10;
    long double s = rintl_(v * scale);
    if (s >= 9.2e18L) { out("big"); return; }
    unsigned long q = (unsigned long)(long)s, p10 = 1;
    for (int i = 0; i < prec; i++) p10 *= 10;
    out_u(q / p10);
    if (prec > 0)
    {
        out(".");
        unsigned long f = q % p10;
        char d[24]; for (int i = prec - 1; i >= 0; i--) { d[i] = (char)('0' + f % 10); f /= 10; } d[prec] = 0;
        out(d);
    }
}

static void line(const char *name, long double v, int prec, int bits)
{
    out(name); out(" "); out_Lf(v, prec);
    if (bits) { out(" "); out_bits(v); }
    out("\n");
}

__attribute__((noinline)) static long double harmonic(int n) { long double s = 0; for (int i = 1; i <= n; i++) s += 1.0L / i; return s; }
__attribute__((noinline)) static long double poly(long double x) { return ((3.25L * x - 1.5L) * x + 0.125L) * x - 7.0L; }
__attribute__((noinline)) static long double lmax(long double a, long double b) { return a > b ? a : b; }
__attribute__((noinline)) static long to_long(long double x) { return (long)x; }
__attribute__((noinline)) static long double from_long(long x) { return (long double)x; }
__attribute__((noinline)) static double to_double(long double x) { return (double)x; }
__attribute__((noinline)) static float to_float(long double x) { return (float)x; }

int main(void)
{
    out("long double\n");
    line("harmonic(1000)", harmonic(1000), 15, 1);
    line("sqrtl(2)", __builtin_sqrtl(2.0L), 18, 1);
    line("sqrtl(1e-4000)", __builtin_sqrtl(1e-4000L) * 1e2000L, 10, 1);
    line("1/3", 1.0L / 3, 18, 1);
    line("poly(1.75)", poly(1.75L), 12, 1);
    line("max", lmax(-2.5L, 1.0L / 7), 12, 1);
    out("to_long "); out_u((unsigned long)to_long(123456789.987L)); out("\n");
    line("from_long", from_long(-9223372036854775807L), 0, 1);
    { double d = to_double(1.0L / 3); unsigned long u; memcpy(&u, &d, 8); out("to_double "); out_x(u, 16); out("\n"); }
    { float f = to_float(1.0L / 3); unsigned int u; memcpy(&u, &f, 4); out("to_float "); out_x(u, 8); out("\n"); }
    line("denormal", 1e-4940L * 3.0L, 0, 1);
    line("huge", 1e4000L * 1e900L, 0, 1);
    for (int i = -4; i <= 4; i++)
    {
        long double x = i * 0.7L;
        out("x="); out_Lf(x, 2);
        out(" sinl "); out_Lf(sinl_(x), 12);
        out(" cosl "); out_Lf(cosl_(x), 12);
        out(" atan2l "); out_Lf(atan2l_(x, 1.5L), 12);
        out(" exp2l "); out_Lf(exp2l_(x), 12);
        out("\n");
    }
    line("log2l(10)", log2l_(10.0L), 12, 0);
    line("fmodl(1e10, 7.25)", fmodl_(1e10L, 7.25L), 12, 1);
    line("fmodl(2^100, 3)", fmodl_(1267650600228229401496703205376.0L, 3.0L), 12, 1);
    long double acc = 1;
    for (int i = 1; i <= 25; i++) acc *= i;
    line("25!", acc, 0, 1);
    sys3(1, 1, (long)buf, (long)len);
    return 0;
}

__asm__(".globl _start\n_start:\n  xor %ebp, %ebp\n  and $-16, %rsp\n  call main\n  mov %eax, %edi\n  mov $60, %eax\n  syscall\n  hlt\n");
