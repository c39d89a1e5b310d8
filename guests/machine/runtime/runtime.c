/* The shared runtime of the tsxen bare-machine kernels: console, exit, paging, libc bits. */
#include "machine.h"

#include <stdarg.h>

void serial_init(void) {
  outb(COM1_PORT + 1, 0x00); /* no interrupts: we poll */
  outb(COM1_PORT + 3, 0x80); /* DLAB on */
  outb(COM1_PORT + 0, 0x01); /* divisor 1: 115200 baud */
  outb(COM1_PORT + 1, 0x00);
  outb(COM1_PORT + 3, 0x03); /* 8 data bits, no parity, 1 stop bit */
  outb(COM1_PORT + 2, 0xc7); /* FIFO on and cleared */
  outb(COM1_PORT + 4, 0x03); /* DTR, RTS */
}

void serial_putc(char c) {
  while (!(inb(COM1_PORT + 5) & 0x20)) { /* wait for THR empty */
  }
  outb(COM1_PORT, (u8)c);
}

void debugcon_puts(const char *s) {
  while (*s) outb(DEBUGCON_PORT, (u8)*s++);
}

void print(const char *s) {
  while (*s) {
    if (*s == '\n') serial_putc('\r');
    serial_putc(*s++);
  }
}

static void print_number(uptr value, unsigned base, int width, char pad) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = "0123456789abcdef"[value % base];
    value /= base;
  } while (value);
  while (width-- > n) serial_putc(pad);
  while (n) serial_putc(digits[--n]);
}

static void print_unsigned(u64 value, unsigned base, int width, char pad) {
#if defined(__i386__)
  /* We link without libgcc, so i386 has no 64-bit division: wide values print in hex. */
  if (value >> 32) {
    print_number((u32)(value >> 32), 16, width > 8 ? width - 8 : 0, pad);
    print_number((u32)value, 16, 8, '0');
    return;
  }
#endif
  print_number((uptr)value, base, width, pad);
}

void printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  for (; *fmt; fmt++) {
    if (*fmt != '%') {
      if (*fmt == '\n') serial_putc('\r');
      serial_putc(*fmt);
      continue;
    }
    fmt++;
    char pad = ' ';
    int width = 0;
    int longs = 0;
    if (*fmt == '0') pad = '0';
    while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
    while (*fmt == 'l') longs++, fmt++;
    switch (*fmt) {
      case 's': {
        const char *s = va_arg(ap, const char *);
        int len = (int)strlen(s);
        while (width-- > len) serial_putc(' ');
        print(s);
        break;
      }
      case 'c': serial_putc((char)va_arg(ap, int)); break;
      case 'd': {
        long long v = longs >= 2 ? va_arg(ap, long long) : longs == 1 ? va_arg(ap, long) : va_arg(ap, int);
        if (v < 0) serial_putc('-'), v = -v;
        print_unsigned((u64)v, 10, width, pad);
        break;
      }
      case 'u':
      case 'x': {
        u64 v = longs >= 2 ? va_arg(ap, u64) : longs == 1 ? va_arg(ap, unsigned long) : va_arg(ap, u32);
        print_unsigned(v, *fmt == 'x' ? 16 : 10, width, pad);
        break;
      }
      case '%': serial_putc('%'); break;
      default: serial_putc('?'); break;
    }
  }
  va_end(ap);
}

void exit(u32 code) {
  outl(DEBUGEXIT_PORT, code);
  for (;;) __asm__ volatile("cli; hlt");
}

#if defined(__i386__)
static u32 page_directory[1024] __attribute__((aligned(4096)));
static u32 page_tables[4][1024] __attribute__((aligned(4096)));

void paging_enable_identity(void) {
  for (u32 t = 0; t < 4; t++) {
    for (u32 i = 0; i < 1024; i++) page_tables[t][i] = ((t * 1024 + i) << 12) | 0x3; /* present, writable */
    page_directory[t] = (u32)(uptr)page_tables[t] | 0x3;
  }
  __asm__ volatile(
      "mov %0, %%cr3\n\t"
      "mov %%cr0, %%eax\n\t"
      "or $0x80000000, %%eax\n\t"
      "mov %%eax, %%cr0\n\t"
      "jmp 1f\n1:"
      :
      : "r"(page_directory)
      : "eax", "memory");
}
#endif

void *memset(void *dst, int value, uptr n) {
  u8 *d = dst;
  while (n--) *d++ = (u8)value;
  return dst;
}

void *memcpy(void *dst, const void *src, uptr n) {
  u8 *d = dst;
  const u8 *s = src;
  while (n--) *d++ = *s++;
  return dst;
}

int strncmp(const char *a, const char *b, uptr n) {
  for (; n; n--, a++, b++) {
    if (*a != *b) return (u8)*a - (u8)*b;
    if (!*a) return 0;
  }
  return 0;
}

uptr strlen(const char *s) {
  uptr n = 0;
  while (s[n]) n++;
  return n;
}
