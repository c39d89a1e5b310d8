/*
 * A small harness for the processor's system test kernels (the .c files beside it), for i386 and
 * x86-64: an IDT whose every stub records the trap, a setjmp-style try_call() that any trap
 * unwinds to, ring-3 entry, and CHECK/EQ macros that print one line per check.
 *
 * The expected values in the kernels come from the Intel SDM (vol. 3: ch. 4 paging, ch. 5
 * protection, ch. 6 interrupts; vol. 2: instruction pseudo-code), not from our emulator.
 *
 * Output protocol (tests/x86/system-kernels.test.ts relies on it): one line per check,
 * "ok <name>" or "FAIL <name>: <detail>", then "done <passed>/<total>"; the kernel exits with
 * code 0 when every check passed, 1 otherwise (host status 1 or 3).
 */
#ifndef TSXEN_X86_HARNESS_H
#define TSXEN_X86_HARNESS_H
#include "../machine/runtime/machine.h"

#if defined(__x86_64__)
typedef u64 ureg;
#else
typedef u32 ureg;
#endif

/* Selectors of the harness GDT (both architectures). */
#define KCODE 0x08
#define KDATA 0x10
#define UCODE 0x1b /* 32-bit: flat 32-bit code DPL 3; 64-bit: 32-bit compatibility code DPL 3 */
#define UDATA 0x23
#define UCODE64 0x2b /* 64-bit only: 64-bit code DPL 3 */
#define TSS_SEL 0x30
/* Free GDT slots for the kernels' own descriptors: GDT_FREE .. GDT_FREE + 8*(GDT_SLOTS-1). */
#define GDT_FREE 0x40
#define GDT_SLOTS 24

#define NO_TRAP 0xffffffffu

/* What the last trap saw (valid after try_call returned a vector). */
struct trap_info {
  u32 vector;
  u32 error;
  ureg ip, cs, flags, sp, ss;
  ureg cr2;
  /* The address just above the hardware-pushed frame (x86-64: where RSP was after alignment). */
  ureg frame_top;
  ureg ax;
  /* i386, a trap from virtual-8086 mode: the DS and ES the processor pushed. */
  u32 v86_ds, v86_es;
  u32 count;
};
extern volatile struct trap_info trap;

/* GDT access for the kernels' own descriptors. */
extern u64 gdt[];
void gdt_set(u32 selector, u64 descriptor);
/* A descriptor from base, limit (raw 20 bits), access byte and flags nibble (G, D/B, L, AVL). */
u64 seg_desc(u32 base, u32 limit, u32 access, u32 flags);
/* IDT gates: type 0xE interrupt, 0xF trap; dpl; ist (64-bit only). */
void idt_set(u32 vector, uptr handler, u32 selector, u32 type, u32 dpl, u32 ist);
/* Restores IDT entry `vector` to the harness stub. */
void idt_reset(u32 vector);
extern uptr trap_stubs[256];
/* The ring-0 stack of the TSS (ESP0/RSP0) and the user stack of try_user. */
extern u8 kernel_trap_stack_top[], user_stack_top[];

/* Sets up GDT, TSS (ring-0 stack, IST1 in 64-bit), IDT; loads them. */
void harness_init(void);
/* Changes the TSS ring-0 stack pointer (ESP0/RSP0). */
void tss_set_sp0(uptr sp);

/*
 * Calls fn(arg). Returns NO_TRAP if fn returned, else the vector of the trap that interrupted
 * it (details in `trap`); execution resumes here with the kernel's registers and stack.
 */
u32 try_call(void (*fn)(uptr), uptr arg);
/* Runs fn(arg) at CPL 3 (on a user stack); it returns to ring 0 by returning. Result as try_call. */
u32 try_user(void (*fn)(uptr), uptr arg);
/* The vector a user function ends with (int $USER_DONE from the trampoline). */
#define USER_DONE 0x81

/* Checks. */
extern u32 checks_total, checks_failed;
void check(const char *name, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define CHECK(name, cond) check(name, (cond), "%s", #cond)
#define EQ(name, got, want)                                                                        \
  do {                                                                                             \
    u64 got_ = (u64)(got), want_ = (u64)(want);                                                    \
    check(name, got_ == want_, "got 0x%llx, want 0x%llx", got_, want_);                            \
  } while (0)
/* Expects fn(arg) to trap with `vector` (and error code `err`, unless err is ~0). */
void expect_trap(const char *name, void (*fn)(uptr), uptr arg, u32 vector, u32 err);
void expect_user_trap(const char *name, void (*fn)(uptr), uptr arg, u32 vector, u32 err);
u32 finish(void);

static inline ureg read_cr0(void) { ureg v; __asm__ volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static inline ureg read_cr2(void) { ureg v; __asm__ volatile("mov %%cr2, %0" : "=r"(v)); return v; }
static inline ureg read_cr3(void) { ureg v; __asm__ volatile("mov %%cr3, %0" : "=r"(v)); return v; }
static inline ureg read_cr4(void) { ureg v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static inline void write_cr0(ureg v) { __asm__ volatile("mov %0, %%cr0" : : "r"(v) : "memory"); }
static inline void write_cr3(ureg v) { __asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory"); }
static inline void write_cr4(ureg v) { __asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory"); }
static inline void invlpg(uptr a) { __asm__ volatile("invlpg (%0)" : : "r"(a) : "memory"); }
static inline u64 rdmsr(u32 index) {
  u32 lo, hi;
  __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(index));
  return ((u64)hi << 32) | lo;
}
static inline void wrmsr(u32 index, u64 v) {
  __asm__ volatile("wrmsr" : : "c"(index), "a"((u32)v), "d"((u32)(v >> 32)) : "memory");
}
static inline ureg read_flags(void) { ureg v; __asm__ volatile("pushf; pop %0" : "=r"(v)); return v; }
static inline void cpuid(u32 leaf, u32 sub, u32 *a, u32 *b, u32 *c, u32 *d) {
  __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub));
}

#endif
