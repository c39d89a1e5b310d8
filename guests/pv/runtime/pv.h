/* The freestanding runtime of tsxen's PV test guests: start of day from start_info,
 * hypercall wrappers (int $0x82 for 32-bit PAE, syscall for 64-bit), console via console_io,
 * trap and event entry, and a tiny check/report harness. Built against the Xen public headers
 * of Debian's libxen-dev. */
#ifndef PV_H
#define PV_H
#include <stdint.h>
#include <stddef.h>
#define __XEN_INTERFACE_VERSION__ 0x00040400
#include <xen/xen.h>
#include <xen/sched.h>
#include <xen/event_channel.h>
#include <xen/vcpu.h>
#include <xen/memory.h>
#include <xen/version.h>
#include <xen/callback.h>
#include <xen/physdev.h>
#include <xen/grant_table.h>

#ifdef __x86_64__
#define VIRT_BASE 0x40000000UL
#else
#define VIRT_BASE 0xC0000000UL
#endif
#define PAGE_SIZE 4096UL

extern start_info_t *start_info;
extern shared_info_t *shared;
extern char hypercall_page[];

long hypercall5(long nr, long a1, long a2, long a3, long a4, long a5);
#define HC(nr, a, b, c, d, e) hypercall5((nr), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e))
/* Through the hypercall page the builder wrote (32-byte stubs). */
long hypercall_via_page(long nr, long a1, long a2, long a3);

void print(const char *s);
void printf(const char *fmt, ...);
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

void check(int ok, const char *what);
/* The decimal value of KEY=N in start_info's command line (words separated by spaces), else dflt. */
unsigned long cmdline_ulong(const char *key, unsigned long dflt);
/* Prints the summary and shuts down: poweroff when every check passed, crash otherwise. */
void finish(void) __attribute__((noreturn));
/* Prints the summary line only. */
void report(void);
void shutdown(unsigned reason) __attribute__((noreturn));

/* Frames and addresses. */
unsigned long virt_to_mfn(const void *va);
/* Maps machine frame `mfn` at page-aligned `va` with flags; returns the hypercall result. */
long map_page(void *va, unsigned long mfn, unsigned long flags);
uint64_t make_pte(unsigned long mfn, unsigned long flags);

/* Traps: the saved registers and frame (layout of the entry stubs). */
#ifdef __x86_64__
struct regs {
  unsigned long r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
  unsigned long vector, error;
  unsigned long rip, cs, rflags, rsp, ss;
};
#define REG_IP(r) ((r)->rip)
#define REG_SP(r) ((r)->rsp)
#define REG_AX(r) ((r)->rax)
#else
struct regs {
  unsigned long edi, esi, ebp, esp0, ebx, edx, ecx, eax;
  unsigned long vector, error;
  unsigned long eip, cs, eflags, esp, ss; /* esp, ss only from ring 3 */
};
#define REG_IP(r) ((r)->eip)
#define REG_SP(r) ((r)->esp)
#define REG_AX(r) ((r)->eax)
#endif
typedef void (*trap_fn)(struct regs *r);
/* Installs the runtime's stubs for every exception vector (and `extra` soft vectors with their
 * DPL) in the trap table; C handlers are chosen with on_trap. */
void install_traps(void);
void on_trap(int vector, trap_fn fn);
void set_soft_int(int vector, int dpl, trap_fn fn);
/* 64-bit: the handler of user-mode SYSCALLs (registered with callback_op by the guest). */
extern trap_fn syscall_handler;
/* Event callback; handler(port) runs for each pending unmasked port. */
void install_events(void (*handler)(unsigned port));
extern volatile unsigned long events_delivered;
unsigned long long now_ns(void);
uint64_t rdtsc(void);

/* Supplied by each test guest. */
void test_main(void);
#endif
