/*
 * timer.c - the 8254 PIT on IRQ 0 through the 8259 PIC pair.
 * The PICs are remapped so that IRQ 0..15 arrive as vectors 0x20..0x2f,
 * clear of the CPU exceptions (0..31).  Only IRQ 0 is unmasked.
 */
#include "defs.h"
#include "x86.h"

#define PIC1_CMD  0x20
#define PIC1_DATA 0x21
#define PIC2_CMD  0xa0
#define PIC2_DATA 0xa1
#define PIC_EOI   0x20
#define PIT_CH0   0x40
#define PIT_CMD   0x43
#define PIT_HZ    1193182
#define HZ        100

u64 jiffies;

void timer_init(void)
{
	outb(PIC1_CMD, 0x11);           /* ICW1: init, ICW4 follows */
	outb(PIC2_CMD, 0x11);
	outb(PIC1_DATA, 0x20);          /* ICW2: vector base */
	outb(PIC2_DATA, 0x28);
	outb(PIC1_DATA, 0x04);          /* ICW3: slave on IRQ 2 */
	outb(PIC2_DATA, 0x02);
	outb(PIC1_DATA, 0x01);          /* ICW4: 8086 mode */
	outb(PIC2_DATA, 0x01);
	outb(PIC1_DATA, 0xfe);          /* mask all but IRQ 0 */
	outb(PIC2_DATA, 0xff);

	u32 div = (PIT_HZ + HZ / 2) / HZ;
	outb(PIT_CMD, 0x34);            /* channel 0, lo/hi byte, rate generator */
	outb(PIT_CH0, div & 0xff);
	outb(PIT_CH0, div >> 8);
	printk("timer: PIT at %d Hz on IRQ 0 (vector 0x20)\n", HZ);
}

void timer_interrupt(void)
{
	jiffies++;
	outb(PIC1_CMD, PIC_EOI);
}
