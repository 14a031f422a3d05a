/*
 * pagecache.c - one file held in the page cache, read and written through
 * the direct map, the way Linux's read()/write() of a cached file are.
 *
 * File descriptor 3 of every process is this file (Linux: a tmpfs file,
 * whose only storage is the page cache).  Its pages are page frames, found
 * by page index in a two-level table (Linux: the file's xarray).  pread64()
 * and pwrite64() copy between the user buffer and the frame through the
 * direct map: copy_to_user(buf, __va(pfn << 12) + offset, n).  Linux does
 * the same: copy_page_to_iter() reaches the page with kmap_local_page(),
 * which on x86-64 is page_address(), an address in the direct map.  So the
 * kernel's TLB footprint of a read is one direct-map translation per page
 * frame with 4 KiB direct-map pages, one per 2 MiB or 1 GiB of RAM with
 * huge pages (vm.c, `directmap=`).
 *
 * fallocate(3, 0, 0, len) gives the file all its frames at once, spread
 * across free RAM (kalloc.c: alloc_pages_spread), as the page cache of a
 * system that has run for a while is scattered over memory.  A write to a
 * page the file does not have yet takes a frame from alloc_pages().
 */
#include "defs.h"
#include "mmu.h"
#include "proc.h"

#define PC_FD       3
#define PC_NODES    64                      /* 64 x 512 pages: 128 MiB */
#define PC_MAX      ((u64)PC_NODES * 512 * PAGE_SIZE)
#define EBADF       9
#define ENOMEM      12
#define EFAULT      14
#define EFBIG       27
#define EINVAL      22
#define EOPNOTSUPP  95

static u64 *pc_node[PC_NODES];  /* each: 512 frame addresses (0 = no page), in the direct map */
static u64 pc_size;             /* file size in bytes (i_size) */

/* The slot of page `index`; allocates the table page when asked. */
static u64 *frame_slot(u64 index, int alloc)
{
	u64 **node = &pc_node[index >> 9];
	if (!*node) {
		if (!alloc || !(*node = alloc_page_zeroed()))
			return NULL;
	}
	return &(*node)[index & 511];
}

static void take_frame(u64 pa, void *arg)
{
	u64 *next = arg;
	while (*frame_slot(*next, 1))   /* already has one: the next index */
		(*next)++;
	memset(__va(pa), 0, PAGE_SIZE);
	*frame_slot((*next)++, 1) = pa;
}

s64 sys_fallocate(u64 fd, u64 mode, u64 offset, u64 len)
{
	if (fd != PC_FD)
		return -EBADF;
	if (mode)
		return -EOPNOTSUPP;
	if (!len || offset >= PC_MAX || len > PC_MAX - offset)
		return len ? -EFBIG : -EINVAL;
	u64 first = offset >> 12, last = (offset + len - 1) >> 12, missing = 0;
	for (u64 i = first; i <= last; i++) {
		u64 *s = frame_slot(i, 1);
		if (!s)
			return -ENOMEM;
		missing += !*s;
	}
	/* Frames for the missing pages, in index order, highest address first. */
	u64 next = first;
	missing -= alloc_pages_spread(missing, take_frame, &next);
	for (u64 i = first; missing && i <= last; i++) {
		u64 *s = frame_slot(i, 1);
		if (*s)
			continue;
		void *page = alloc_page_zeroed();
		if (!page)
			return -ENOMEM;
		*s = __pa(page);
		missing--;
	}
	if (offset + len > pc_size)
		pc_size = offset + len;
	return 0;
}

/* pread64 (write = 0) and pwrite64 (write = 1) on the page-cache file. */
s64 sys_pagecache_rw(u64 fd, u64 buf, u64 count, u64 pos, int write)
{
	if (fd != PC_FD)
		return -EBADF;
	if ((s64)pos < 0)
		return -EINVAL;
	if (!user_access_ok(&current->mm, buf, count, !write))
		return -EFAULT;
	if (write) {
		if (count && pos >= PC_MAX)
			return -EFBIG;
		if (count > PC_MAX - pos)
			count = PC_MAX - pos;
	} else {
		if (pos >= pc_size)
			return 0;               /* end of file */
		if (count > pc_size - pos)
			count = pc_size - pos;
	}
	u64 done = 0;
	while (done < count) {
		u64 at = pos + done, off = at & (PAGE_SIZE - 1);
		u64 n = PAGE_SIZE - off < count - done ? PAGE_SIZE - off : count - done;
		u64 *slot = frame_slot(at >> 12, write);
		char *user = (char *)(buf + done);
		if (!write && (!slot || !*slot)) {
			memset(user, 0, n);     /* a hole reads as zeros */
		} else {
			if (!slot)
				return done ? (s64)done : -ENOMEM;
			if (!*slot) {
				void *page = alloc_page_zeroed();
				if (!page)
					return done ? (s64)done : -ENOMEM;
				*slot = __pa(page);
			}
			char *kaddr = (char *)__va(*slot) + off;   /* the direct map */
			if (write)
				memcpy(kaddr, user, n);
			else
				memcpy(user, kaddr, n);
		}
		done += n;
	}
	if (write && pos + done > pc_size)
		pc_size = pos + done;
	return done;
}
