/* cpu.c - what the CPU can do (CPUID), read once at boot. */
#include "defs.h"
#include "cpu.h"
#include "x86.h"

struct cpu_features boot_cpu;
int use_pcid, use_invpcid;

void cpu_detect(void)
{
	u32 a, b, c, d, max, maxext;
	cpuid(0, 0, &max, &b, &c, &d);
	cpuid(1, 0, &a, &b, &c, &d);
	boot_cpu.pcid = (c >> 17) & 1;          /* CPUID.1:ECX[17] */
	boot_cpu.rdrand = (c >> 30) & 1;        /* CPUID.1:ECX[30] */
	boot_cpu.pge = (d >> 13) & 1;           /* CPUID.1:EDX[13] */
	if (max >= 7) {
		cpuid(7, 0, &a, &b, &c, &d);
		boot_cpu.invpcid = (b >> 10) & 1;   /* CPUID.7:EBX[10] */
		boot_cpu.smep = (b >> 7) & 1;       /* CPUID.7:EBX[7] */
		boot_cpu.la57 = (c >> 16) & 1;      /* CPUID.7:ECX[16] */
	}
	cpuid(0x80000000, 0, &maxext, &b, &c, &d);
	if (maxext >= 0x80000001) {
		cpuid(0x80000001, 0, &a, &b, &c, &d);
		boot_cpu.nx = (d >> 20) & 1;        /* CPUID.80000001:EDX[20] */
		boot_cpu.gbpages = (d >> 26) & 1;   /* CPUID.80000001:EDX[26] */
	}
}
