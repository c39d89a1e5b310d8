/*
 * The tsxen bare machine as a freestanding kernel sees it, and the tiny runtime our test and
 * benchmark kernels share (built for i386 and for x86-64 from the same sources).
 *
 * Devices: a 16550 UART at 0x3F8 and the debug console at 0xE9, both copied to the host's
 * stdout; isa-debug-exit at 0xF4 (a write of V ends the run with host status (V << 1) | 1);
 * a benchmark marker at 0xE8 (each write makes the host note the retired-instruction count
 * and the time).
 */
#ifndef TSXEN_MACHINE_H
#define TSXEN_MACHINE_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef unsigned long uptr; /* pointer-sized on both i386 and x86-64 */

#define COM1_PORT 0x3f8
#define DEBUGCON_PORT 0xe9
#define DEBUGEXIT_PORT 0xf4
#define MARKER_PORT 0xe8

static inline void outb(u16 port, u8 value) { __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port)); }
static inline void outl(u16 port, u32 value) { __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port)); }
static inline u8 inb(u16 port) {
  u8 value;
  __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
  return value;
}

/* Multiboot 1 information structure (the fields our kernels read). */
struct multiboot_info {
  u32 flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
  u32 syms[4];
  u32 mmap_length, mmap_addr, drives_length, drives_addr, config_table, boot_loader_name;
};
struct multiboot_module {
  u32 mod_start, mod_end, string, reserved;
};
struct multiboot_mmap_entry {
  u32 size;
  u64 addr, len;
  u32 type;
} __attribute__((packed));
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2badb002

/* Console: serial_* go to the UART only, debugcon_* to port 0xE9 only, print* to the UART. */
void serial_init(void);
void serial_putc(char c);
void debugcon_puts(const char *s);
void print(const char *s);
/* printf subset: %s %c %d %u %x %lx %llx %llu with optional 0-padding width, and %%. */
void printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Ends the run: the host exits with status (code << 1) | 1. */
__attribute__((noreturn)) void exit(u32 code);
/* Tells the host to note retired instructions and time (benchmarks bracket their loop). */
static inline void marker(u8 value) { outb(MARKER_PORT, value); }

/* Identity-maps the first 16 MiB with 4 KiB pages and turns paging on (i386 only; the 64-bit
 * entry code already runs with paging). */
void paging_enable_identity(void);

void *memset(void *dst, int value, uptr n);
void *memcpy(void *dst, const void *src, uptr n);
int strncmp(const char *a, const char *b, uptr n);
uptr strlen(const char *s);

/* The kernel's C entry, called by the boot code with the Multiboot registers. Its return value
 * becomes the exit code. */
u32 kmain(u32 magic, struct multiboot_info *info);

#endif
