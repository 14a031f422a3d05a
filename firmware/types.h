/* types.h - fixed-width integer types for a freestanding kernel. */
#ifndef TYPES_H
#define TYPES_H

typedef unsigned char      u8;
typedef unsigned short     u16;
typedef unsigned int       u32;
typedef unsigned long      u64;
typedef signed char        s8;
typedef short              s16;
typedef int                s32;
typedef long               s64;
typedef unsigned long      size_t;
typedef u64                pte_t;   /* one page-table entry, any level */

#define NULL ((void *)0)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define BIT(n) (1UL << (n))

#endif
