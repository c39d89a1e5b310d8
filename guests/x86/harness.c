/*
 * The C half of the test-kernel harness (both architectures): descriptor tables, the trap
 * handler and the check/report functions. See harness.h.
 */
#include "harness.h"

#include <stdarg.h>

volatile struct trap_info trap;
u32 checks_total, checks_failed;

extern uptr try_saved_sp;
__attribute__((noreturn)) void try_unwind(u32 vector);
u32 try_user_raw(void (*fn)(uptr), uptr arg);

/* GDT: 0 null, 0x08 kernel code, 0x10 kernel data, 0x18 user code (32-bit), 0x20 user data,
 * 0x28 user code (64-bit on x86-64), 0x30 TSS (two slots on x86-64), 0x40.. free. */
#define GDT_ENTRIES (GDT_FREE / 8 + GDT_SLOTS)
u64 gdt[GDT_ENTRIES] __attribute__((aligned(16)));

#if defined(__x86_64__)
struct gate { u64 lo, hi; };
#else
struct gate { u64 lo; };
#endif
static struct gate idt[256] __attribute__((aligned(16)));

/* TSS with a full I/O permission bitmap: every port denied except 0x70 (nothing there on the
 * bare machine, so a test write is harmless). */
struct tss_image {
  u8 base[104];
  u8 iomap[8192];
  u8 end; /* the byte of all ones that must follow the bitmap */
} __attribute__((packed, aligned(16)));
static struct tss_image tss;

struct __attribute__((packed)) table_pointer {
  u16 limit;
  uptr base;
};

u64 seg_desc(u32 base, u32 limit, u32 access, u32 flags) {
  return (u64)(limit & 0xffff) | ((u64)(base & 0xffffff) << 16) | ((u64)(access & 0xff) << 40) |
         ((u64)((limit >> 16) & 0xf) << 48) | ((u64)(flags & 0xf) << 52) | ((u64)(base >> 24) << 56);
}

void gdt_set(u32 selector, u64 descriptor) { gdt[selector >> 3] = descriptor; }

void idt_set(u32 vector, uptr handler, u32 selector, u32 type, u32 dpl, u32 ist) {
  u64 lo = (handler & 0xffff) | ((u64)selector << 16) | ((u64)(ist & 7) << 32) | ((u64)type << 40) |
           ((u64)dpl << 45) | (1ull << 47) | ((u64)((handler >> 16) & 0xffff) << 48);
  idt[vector].lo = lo;
#if defined(__x86_64__)
  idt[vector].hi = (u64)handler >> 32;
#endif
}

void idt_reset(u32 vector) {
  u32 dpl = vector == 3 || vector == 4 || vector == 0x80 || vector == USER_DONE ? 3 : 0;
  idt_set(vector, trap_stubs[vector], KCODE, vector == 0x80 ? 0xf : 0xe, dpl, 0);
}

void tss_set_sp0(uptr sp) {
#if defined(__x86_64__)
  *(u64 *)&tss.base[4] = sp;
#else
  *(u32 *)&tss.base[4] = sp;
#endif
}

void harness_init(void) {
  serial_init();
#if defined(__x86_64__)
  gdt[1] = seg_desc(0, 0xfffff, 0x9a, 0xa); /* 64-bit code, DPL 0 */
  gdt[5] = seg_desc(0, 0xfffff, 0xfa, 0xa); /* 64-bit code, DPL 3 */
#else
  gdt[1] = seg_desc(0, 0xfffff, 0x9a, 0xc);
  gdt[5] = seg_desc(0, 0xfffff, 0xfa, 0xc);
#endif
  gdt[2] = seg_desc(0, 0xfffff, 0x92, 0xc);
  gdt[3] = seg_desc(0, 0xfffff, 0xfa, 0xc); /* 32-bit code, DPL 3 */
  gdt[4] = seg_desc(0, 0xfffff, 0xf2, 0xc);
  uptr tss_base = (uptr)&tss;
  gdt[6] = seg_desc((u32)tss_base, sizeof tss - 1, 0x89, 0);
#if defined(__x86_64__)
  gdt[7] = tss_base >> 32;
  extern u8 ist1_stack_top[];
  *(u64 *)&tss.base[4] = (u64)(uptr)kernel_trap_stack_top; /* RSP0 */
  *(u64 *)&tss.base[36] = (u64)(uptr)ist1_stack_top;        /* IST1 */
#else
  *(u32 *)&tss.base[4] = (u32)(uptr)kernel_trap_stack_top; /* ESP0 */
  *(u32 *)&tss.base[8] = KDATA;                            /* SS0 */
#endif
  *(u16 *)&tss.base[102] = 104; /* I/O map base */
  memset(tss.iomap, 0xff, sizeof tss.iomap);
  tss.iomap[0x70 / 8] &= (u8) ~(1u << (0x70 % 8));
  tss.end = 0xff;
  for (u32 v = 0; v < 256; v++) idt_reset(v);

  struct table_pointer g = {sizeof gdt - 1, (uptr)gdt};
  struct table_pointer i = {sizeof idt - 1, (uptr)idt};
  __asm__ volatile("lgdt %0; lidt %1" : : "m"(g), "m"(i) : "memory");
#if defined(__x86_64__)
  __asm__ volatile(
      "pushq $0x08\n\t"
      "lea 1f(%%rip), %%rax\n\t"
      "pushq %%rax\n\t"
      "lretq\n"
      "1: mov $0x10, %%eax\n\t"
      "mov %%eax, %%ss\n\t"
      "mov %%eax, %%ds\n\t"
      "mov %%eax, %%es\n\t"
      "xor %%eax, %%eax\n\t"
      "mov %%eax, %%fs\n\t"
      "mov %%eax, %%gs"
      :
      :
      : "rax", "memory");
#else
  __asm__ volatile(
      "ljmp $0x08, $1f\n"
      "1: mov $0x10, %%eax\n\t"
      "mov %%eax, %%ss\n\t"
      "mov $0x23, %%eax\n\t" /* user data for DS/ES: usable at every CPL, so ring 3 code runs unchanged */
      "mov %%eax, %%ds\n\t"
      "mov %%eax, %%es\n\t"
      "mov %%eax, %%fs\n\t"
      "mov %%eax, %%gs"
      :
      :
      : "eax", "memory");
#endif
  __asm__ volatile("ltr %w0" : : "r"(TSS_SEL));
}

#if defined(__x86_64__)
struct frame {
  u64 r15, r14, r13, r12, r11, r10, r9, r8, rdi, rsi, rbp, rbx, rdx, rcx, rax_or_eax;
  u64 vector, error, ip, cs, flags, sp, ss;
};
#else
struct frame {
  u32 edi, esi, ebp, esp0, ebx, edx, ecx, rax_or_eax;
  u32 vector, error, ip, cs, flags, sp, ss; /* sp, ss only from CPL 3 */
  u32 v86_es, v86_ds, v86_fs, v86_gs;       /* only from virtual-8086 mode */
};
#endif

void trap_handler(struct frame *f) {
  trap.vector = (u32)f->vector;
  trap.error = (u32)f->error;
  trap.ip = f->ip;
  trap.cs = f->cs;
  trap.flags = f->flags;
#if defined(__x86_64__)
  trap.sp = f->sp;
  trap.ss = f->ss;
  trap.frame_top = (uptr)(&f->ss + 1);
#else
  int outer = (f->cs & 3) != 0 || (f->flags & 0x20000) != 0;
  trap.frame_top = (uptr)(outer ? &f->ss + 1 : &f->sp);
  trap.sp = outer ? f->sp : 0;
  trap.ss = outer ? f->ss : 0;
  trap.v86_ds = (f->flags & 0x20000) ? f->v86_ds : 0;
  trap.v86_es = (f->flags & 0x20000) ? f->v86_es : 0;
#endif
  trap.ax = f->rax_or_eax;
  trap.cr2 = read_cr2();
  trap.count++;
  if (try_saved_sp) try_unwind((u32)f->vector);
  printf("unexpected trap %u (error 0x%x) at 0x%lx\n", (u32)f->vector, (u32)f->error, (unsigned long)f->ip);
  exit(100 + (u32)f->vector);
}

u32 try_user(void (*fn)(uptr), uptr arg) {
  u32 v = try_user_raw(fn, arg);
  return v == USER_DONE ? NO_TRAP : v;
}

void check(const char *name, int ok, const char *fmt, ...) {
  checks_total++;
  if (ok) {
    printf("ok %s\n", name);
    return;
  }
  checks_failed++;
  printf("FAIL %s: ", name);
  /* A tiny formatter for the detail: only what EQ and CHECK produce. */
  va_list ap;
  va_start(ap, fmt);
  if (fmt[1] == 's') print(va_arg(ap, const char *));
  else {
    u64 got = va_arg(ap, u64), want = va_arg(ap, u64);
    printf("got 0x%llx, want 0x%llx", got, want);
  }
  va_end(ap);
  print("\n");
}

static void expect(const char *name, u32 v, u32 vector, u32 err) {
  if (v != vector) {
    checks_total++;
    checks_failed++;
    if (v == NO_TRAP) printf("FAIL %s: no trap, want vector %u\n", name, vector);
    else printf("FAIL %s: vector %u error 0x%x at 0x%lx, want vector %u\n", name, v, trap.error, (unsigned long)trap.ip, vector);
    return;
  }
  if (err != ~0u) {
    EQ(name, trap.error, err);
    return;
  }
  check(name, 1, "%s", "");
}

void expect_trap(const char *name, void (*fn)(uptr), uptr arg, u32 vector, u32 err) {
  expect(name, try_call(fn, arg), vector, err);
}

void expect_user_trap(const char *name, void (*fn)(uptr), uptr arg, u32 vector, u32 err) {
  expect(name, try_user(fn, arg), vector, err);
}

u32 finish(void) {
  printf("done %u/%u\n", checks_total - checks_failed, checks_total);
  return checks_failed ? 1 : 0;
}
