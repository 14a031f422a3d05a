/*
 * A second gcc -O2 user program for the SSE/SSE2 acceptance test: float-heavy kernels the way gcc
 * compiles them (matrix multiply, a Mandelbrot escape-time count, an integer histogram, struct
 * arguments passed and returned by value, float/int conversions at their limits). Same rules as
 * acceptance.c: only write (1) and exit (60); output must match the host exactly.
 */
#define OUT_SIZE 8192
#include "../../programs/freestanding.h"
static void out_i(long v) { if (v < 0) { out("-"); out_u(-(unsigned long)v); } else out_u((unsigned long)v); }
static void out_x(unsigned long v) { char b[17]; b[16] = 0; for (int i = 15; i >= 0; i--) { b[i] = "0123456789abcdef"[v & 15]; v >>= 4; } out(b); }
static unsigned long dbits(double d) { unsigned long u; memcpy(&u, &d, 8); return u; }
static unsigned int fbits(float f) { unsigned int u; memcpy(&u, &f, 4); return u; }

#define N 24
static double A[N][N], B[N][N], C[N][N];
static float fa[N * N], fb[N * N];

typedef struct { double x, y, z; } vec3;
__attribute__((noinline)) static vec3 cross(vec3 a, vec3 b)
{
    vec3 r = { a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x };
    return r;
}
__attribute__((noinline)) static double dot(vec3 a, vec3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }

__attribute__((noinline)) static int mandel(double cr, double ci)
{
    double zr = 0, zi = 0;
    int n = 0;
    while (n < 200 && zr * zr + zi * zi <= 4.0) { double t = zr * zr - zi * zi + cr; zi = 2 * zr * zi + ci; zr = t; n++; }
    return n;
}

__attribute__((noinline)) static void hist(const unsigned char *p, int n, unsigned int *h) { for (int i = 0; i < n; i++) h[p[i] >> 4]++; }
__attribute__((noinline)) static void fscale(float *a, int n, float k) { for (int i = 0; i < n; i++) a[i] = a[i] * k - (float)i; }
__attribute__((noinline)) static void i2f(float *d, const int *s, int n) { for (int i = 0; i < n; i++) d[i] = (float)s[i]; }
__attribute__((noinline)) static void f2i(int *d, const float *s, int n) { for (int i = 0; i < n; i++) d[i] = (int)s[i]; }

int main(void)
{
    out("numeric\n");
    for (int i = 0; i < N; i++) for (int j = 0; j < N; j++) { A[i][j] = (i * 7 + j * 3) % 11 - 5.5; B[i][j] = 1.0 / (1 + i + j); }
    for (int i = 0; i < N; i++) for (int j = 0; j < N; j++) { double s = 0; for (int k = 0; k < N; k++) s += A[i][k] * B[k][j]; C[i][j] = s; }
    double trace = 0; for (int i = 0; i < N; i++) trace += C[i][i];
    out("matmul trace bits "); out_x(dbits(trace)); out(" c[3][17] "); out_x(dbits(C[3][17])); out("\n");

    int rows = 0;
    for (int y = -12; y <= 12; y++)
    {
        char line[64]; int k = 0;
        for (int x = -39; x <= 20; x++) { int n = mandel(x / 20.0, y / 10.0); line[k++] = n >= 200 ? '#' : n > 10 ? '+' : n > 4 ? '.' : ' '; rows += n; }
        line[k++] = '\n'; line[k] = 0; out(line);
    }
    out("mandel total "); out_i(rows); out("\n");

    vec3 a = { 1.5, -2.25, 3.0 }, b = { 0.1, 0.2, 0.3 };
    vec3 c = cross(a, b);
    out("cross "); out_x(dbits(c.x)); out(" "); out_x(dbits(c.y)); out(" "); out_x(dbits(c.z)); out(" dot "); out_x(dbits(dot(a, c))); out("\n");

    static unsigned char bytes[4000]; unsigned int h[16] = { 0 };
    unsigned long s = 12345;
    for (int i = 0; i < 4000; i++) { s = s * 6364136223846793005UL + 1442695040888963407UL; bytes[i] = (unsigned char)(s >> 56); }
    hist(bytes, 4000, h);
    out("hist"); for (int i = 0; i < 16; i++) { out(" "); out_u(h[i]); } out("\n");

    static int iv[N * N], back[N * N];
    for (int i = 0; i < N * N; i++) iv[i] = (int)((i * 2654435761u) >> 3) - (1 << 28);
    i2f(fa, iv, N * N);
    fscale(fa, N * N, 0.75f);
    f2i(back, fa, N * N);
    long isum = 0; unsigned int fx = 0;
    for (int i = 0; i < N * N; i++) { isum += back[i]; fx ^= fbits(fa[i]) * (unsigned)(i + 1); }
    out("convert "); out_i(isum); out(" "); out_x(fx); out("\n");

    double vals[] = { 0.5, 1.5, 2.5, -0.5, -1.5, 1e-310, -0.0, 3.0e9, -3.0e9, 123456789.987654321 };
    for (unsigned i = 0; i < sizeof vals / sizeof vals[0]; i++)
    {
        out_i((long)vals[i]); out(" "); out_i((int)(float)vals[i]); out(" "); out_x(fbits((float)vals[i])); out(" ");
        out_x(dbits(vals[i] * vals[i])); out(" "); out_x(dbits(__builtin_sqrt(vals[i] < 0 ? -vals[i] : vals[i]))); out("\n");
    }
    sys3(1, 1, (long)buf, (long)len);
    return 7;
}

__asm__(".globl _start\n_start:\n  xor %ebp, %ebp\n  and $-16, %rsp\n  call main\n  mov %eax, %edi\n  mov $60, %eax\n  syscall\n  hlt\n");
