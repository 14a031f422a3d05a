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

/* A mistake in init= ends the boot (status 3 from isa-debug-exit) with one
 * line that says what is wrong and what would be right. */
static void __attribute__((noreturn)) bad_init(void)
{
	poweroff(1);
}

static void list_programs(void)
{
	const char *sep = "";
	for (struct uprog *p = (struct uprog *)__user_image_start; p->name[0]; p++) {
		printk("%s%s", sep, p->name);
		sep = ", ";
	}
}

/* Start the program of one init= item; with check_only, only look for
 * mistakes (every item is checked before the first one starts). */
static void spawn_one(char *spec, int check_only)
{
	char *colon = spec;
	u64 arg[3] = { 0, 0, 0 };
	int nargs = 0;
	while (*colon && *colon != ':')
		colon++;
	/* Each argument is a whole number: decimal, or hexadecimal after 0x.
	 * "syscalls:x" or "touch:10k" used to run with 0 silently. */
	for (const char *p = colon; *p == ':';) {
		const char *start = p + 1, *end;
		u64 v = parse_u64(start, &end);
		int digits = end - start - ((start[0] == '0' && (start[1] == 'x' || start[1] == 'X')) ? 2 : 0);
		if (digits <= 0 || (*end && *end != ':')) {
			const char *stop = start;
			while (*stop && *stop != ':')
				stop++;
			printk("init: bad number '");
			for (const char *c = start; c < stop; c++)
				console_putc(*c);
			printk("' in '%s' (a decimal number, or hexadecimal after 0x)\n", spec);
			bad_init();
		}
		if (nargs == 3) {
			printk("init: '%s' has more than 3 arguments\n", spec);
			bad_init();
		}
		arg[nargs++] = v;
		p = end;
	}
	char sep = *colon;
	*colon = 0;

	u64 entry = find_program(spec);
	if (!entry) {
		printk("init: unknown program '%s' (programs: ", spec);
		list_programs();
		printk(")\n");
		bad_init();
	}
	if (check_only) {
		*colon = sep;
		return;
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
	if (!strcmp(spec, "pagecache")) {
		if (nargs < 1)
			arg[0] = 256;           /* pages */
		if (nargs < 2)
			arg[1] = 2;             /* rounds */
		if (nargs < 3)
			arg[2] = 4096;          /* bytes per call */
	}
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

static void for_each_init_item(char *init, int check_only)
{
	char *p = init;
	while (*p) {
		char *q = p;
		while (*q && *q != ',')
			q++;
		int last = !*q;
		*q = 0;
		if (*p)
			spawn_one(p, check_only);
		if (last)
			break;
		p = q + 1;
	}
}

void spawn_init_programs(void)
{
	char init[256], check[256];
	if (!cmdline_get("init", init, sizeof(init)))
		strncpy_z(init, "hello", sizeof(init));
	strncpy_z(check, init, sizeof(check));
	for_each_init_item(check, 1);
	for_each_init_item(init, 0);
}
