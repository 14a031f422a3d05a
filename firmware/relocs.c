/*
 * relocs.c - HOST tool: list the places in the kernel that hold absolute
 * addresses, so that boot code can move the kernel (text KASLR).
 *
 *   relocs kernel-with-emit-relocs.elf table.bin
 *
 * The kernel is linked with --emit-relocs, which keeps the linker's
 * relocation records in the output.  A record of type R_X86_64_64 or
 * R_X86_64_32S against a symbol inside the image means "this field holds
 * the address of something in the kernel": when the kernel moves by D,
 * the field must grow by D.  PC-relative references need nothing.
 * R_X86_64_32 is only legal in the 32-bit boot code (.head.text), where
 * it names physical addresses, which do not move.
 *
 * Output: little-endian u32 per field, sorted: (field - _text), with bit
 * 31 set for a 64-bit field.  head64.S:relocate_kernel consumes it.
 */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char *img;
static Elf64_Ehdr *eh;
static Elf64_Shdr *sh;

static void die(const char *m, unsigned long v)
{
	fprintf(stderr, "relocs: %s (0x%lx)\n", m, v);
	exit(1);
}

static unsigned long symval(const char *name)
{
	for (int i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type != SHT_SYMTAB)
			continue;
		Elf64_Sym *s = (Elf64_Sym *)(img + sh[i].sh_offset);
		const char *str = (char *)img + sh[sh[i].sh_link].sh_offset;
		for (unsigned long j = 0; j < sh[i].sh_size / sizeof(*s); j++)
			if (!strcmp(str + s[j].st_name, name))
				return s[j].st_value;
	}
	die("symbol not found", 0);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	unsigned int x = *(const unsigned int *)a & 0x7fffffff;
	unsigned int y = *(const unsigned int *)b & 0x7fffffff;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		die("usage: relocs IN.elf OUT.bin", 0);
	FILE *f = fopen(argv[1], "rb");
	if (!f)
		die("cannot open input", 0);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	img = malloc(n);
	if (fread(img, 1, n, f) != (size_t)n)
		die("short read", 0);
	fclose(f);
	eh = (Elf64_Ehdr *)img;
	sh = (Elf64_Shdr *)(img + eh->e_shoff);

	unsigned long text = symval("_text"), edata = symval("_edata");
	unsigned long boot_end = symval("__entry_text_start");
	unsigned int *out = NULL;
	unsigned long count = 0, cap = 0;

	for (int i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type != SHT_RELA || !(sh[sh[i].sh_info].sh_flags & SHF_ALLOC))
			continue;
		Elf64_Rela *r = (Elf64_Rela *)(img + sh[i].sh_offset);
		Elf64_Sym *syms = (Elf64_Sym *)(img + sh[sh[i].sh_link].sh_offset);
		for (unsigned long j = 0; j < sh[i].sh_size / sizeof(*r); j++) {
			unsigned long type = ELF64_R_TYPE(r[j].r_info), site = r[j].r_offset;
			Elf64_Sym *s = &syms[ELF64_R_SYM(r[j].r_info)];
			int abs = s->st_shndx == SHN_ABS;
			unsigned int is64 = 0;
			switch (type) {
			case R_X86_64_NONE:
				continue;
			case R_X86_64_PC32:
			case R_X86_64_PLT32:
				if (abs && s->st_value)
					die("PC-relative reference to an absolute symbol at", site);
				continue;
			case R_X86_64_32:
				if (!abs && !(site >= text && site < boot_end))
					die("32-bit absolute reference outside the boot code", site);
				continue;
			case R_X86_64_64:
				is64 = 0x80000000u;
				/* fall through */
			case R_X86_64_32S:
				if (abs)
					continue;
				if (s->st_shndx == SHN_UNDEF)
					die("undefined symbol referenced at", site);
				break;
			default:
				die("unexpected relocation type at", site);
			}
			if (site < text || site >= edata)
				die("relocation outside the image at", site);
			if (count == cap)
				out = realloc(out, (cap = cap ? cap * 2 : 1024) * sizeof(*out));
			out[count++] = (unsigned int)(site - text) | is64;
		}
	}
	qsort(out, count, sizeof(*out), cmp);
	f = fopen(argv[2], "wb");
	if (!f || fwrite(out, sizeof(*out), count, f) != count)
		die("cannot write output", 0);
	fclose(f);
	return 0;
}
