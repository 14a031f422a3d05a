/*
 * programs.c - start the user programs named by init=.
 *
 *   init=hello,syscalls:1000     several programs, run concurrently
 *   init=touch:64:10:500         arguments: up to three numbers
 *
 * The programs live in one user image (uprogs.c), which starts with a
 * table of {name, entry point}.  Arguments after ':' are numbers (up to
 * three), passed to the program in RDI, RSI and RDX.
 */
#include "defs.h"
#include "mmu.h"

struct uprog { char name[16]; u64 entry; };
extern char __user_image_start[];

static u64 find_program(const char *name)
{
	for (struct uprog *p = (struct uprog *)__user_image_start; p->name[0]; p++)
		if (!strcmp(p->name, name))
			return p->entry;
	return 0;
}

static void spawn_one(char *spec)
{
	char *colon = spec;
	u64 arg[3] = { 0, 0, 0 };
	int nargs = 0;
	while (*colon && *colon != ':')
		colon++;
	for (const char *p = colon; *p == ':' && nargs < 3;)
		arg[nargs++] = parse_u64(p + 1, &p);
	*colon = 0;

	u64 entry = find_program(spec);
	if (!entry) {
		printk("init: unknown program '%s'\n", spec);
		poweroff(1);
	}
	if (!strcmp(spec, "syscalls") && nargs < 1)
		arg[0] = 1000;
	if (!strcmp(spec, "touch")) {
		if (nargs < 1)
			arg[0] = 64;
		if (nargs < 2)
			arg[1] = 10;
	}
	if ((!strcmp(spec, "pingpong") || !strcmp(spec, "mmap")) && nargs < 1)
		arg[0] = !strcmp(spec, "mmap") ? 50 : 100;
	if (!strcmp(spec, "mmap") && nargs < 2)
		arg[1] = 4;                 /* pages per mmap */
	if (!strcmp(spec, "probe"))
		arg[0] = page_offset_base;  /* tell it what to read: the direct map */
	if (!strcmp(spec, "pingpong")) {    /* ping (1), then PROCS-1 pongs (0) */
		u64 procs = nargs < 2 ? 2 : arg[1];
		if (procs < 2)
			procs = 2;
		proc_create(spec, entry, arg[0], 1, 0);
		for (u64 i = 1; i < procs; i++)
			proc_create(spec, entry, arg[0], 0, 0);
		return;
	}
	proc_create(spec, entry, arg[0], arg[1], arg[2]);
}

void spawn_init_programs(void)
{
	char init[256];
	if (!cmdline_get("init", init, sizeof(init)))
		strncpy_z(init, "hello", sizeof(init));
	char *p = init;
	while (*p) {
		char *q = p;
		while (*q && *q != ',')
			q++;
		int last = !*q;
		*q = 0;
		if (*p)
			spawn_one(p);
		if (last)
			break;
		p = q + 1;
	}
}
