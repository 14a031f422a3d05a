/*
 * cmdline.c - the kernel command line (multiboot "cmdline", QEMU -append).
 *
 *   pti=on|off   KPTI (default on)         nopcid     do not use PCID
 *   nokaslr      no randomisation          noinvpcid  do not use INVPCID
 *   la57         5-level paging if the CPU has it (handled in boot.S)
 *   init=PROG[,PROG...]   programs to start (programs.c); default hello
 *   directmap=4k|2m|1g    page size of the direct map (vm.c); default the
 *                         largest the CPU has (1g with 1 GiB pages, else 2m)
 *   nogbpages    no 1 GiB pages in the direct map (Linux's option): 2m
 */
#include "defs.h"
#include "mmu.h"

#define CMDLINE_MAX 512
char boot_command_line[CMDLINE_MAX];
int opt_pti = 1;
int opt_nopcid, opt_noinvpcid;
u64 opt_directmap_page;     /* 0: the default (vm.c) */

/* Runs before the kernel is relocated and before the direct map
 * exists: the command line is reached through the identity map. */
void cmdline_init(u32 mb_cmdline_pa)
{
	strncpy_z(boot_command_line, (const char *)__va(mb_cmdline_pa), CMDLINE_MAX);
}

/* Find "key" as a whole word or as "key=..." ; return the word start. */
static const char *find_word(const char *key, int with_value)
{
	size_t n = strlen(key);
	const char *p = boot_command_line;
	while (*p) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, key, n)) {
			char next = p[n];
			if (with_value ? next == '=' : (next == ' ' || next == 0))
				return p;
		}
		while (*p && *p != ' ')
			p++;
	}
	return NULL;
}

int cmdline_has(const char *word)
{
	return find_word(word, 0) != NULL;
}

/* Copy the value of "key=value" into buf; 0 if the key is absent. */
int cmdline_get(const char *key, char *buf, size_t n)
{
	const char *p = find_word(key, 1);
	size_t i = 0;
	if (!p)
		return 0;
	for (p += strlen(key) + 1; *p && *p != ' ' && i + 1 < n; p++)
		buf[i++] = *p;
	buf[i] = 0;
	return 1;
}

void parse_early_options(void)
{
	char v[8];
	if (cmdline_get("pti", v, sizeof(v)))
		opt_pti = strcmp(v, "off") != 0;
	opt_nopcid = cmdline_has("nopcid");
	opt_noinvpcid = cmdline_has("noinvpcid");
	if (cmdline_has("nogbpages"))
		opt_directmap_page = PMD_SIZE;
	if (cmdline_get("directmap", v, sizeof(v))) {
		if (!strcmp(v, "4k"))
			opt_directmap_page = PAGE_SIZE;
		else if (!strcmp(v, "2m"))
			opt_directmap_page = PMD_SIZE;
		else if (!strcmp(v, "1g"))
			opt_directmap_page = PUD_SIZE;
		else
			printk("directmap: unknown page size '%s' (4k, 2m or 1g): the default\n", v);
	}
}
