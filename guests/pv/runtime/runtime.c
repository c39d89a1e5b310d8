/* The C half of the PV test-guest runtime (see pv.h). */
#include "pv.h"
#include <stdarg.h>

start_info_t *start_info;
shared_info_t *shared;
static unsigned checks_passed, checks_failed;
static char shared_page[4096] __attribute__((aligned(4096)));

long hypercall5(long nr, long a1, long a2, long a3, long a4, long a5) {
  long r;
#ifdef __x86_64__
  register long r10 asm("r10") = a4;
  register long r8 asm("r8") = a5;
  asm volatile("syscall"
               : "=a"(r), "+D"(a1), "+S"(a2), "+d"(a3), "+r"(r10), "+r"(r8)
               : "0"(nr)
               : "rcx", "r11", "memory");
#else
  asm volatile("int $0x82"
               : "=a"(r), "+b"(a1), "+c"(a2), "+d"(a3), "+S"(a4), "+D"(a5)
               : "0"(nr)
               : "memory");
#endif
  return r;
}

long hypercall_via_page(long nr, long a1, long a2, long a3) {
  long r;
  void *stub = hypercall_page + nr * 32;
#ifdef __x86_64__
  asm volatile("call *%[stub]"
               : "=a"(r), "+D"(a1), "+S"(a2), "+d"(a3)
               : [stub] "r"(stub)
               : "rcx", "r11", "r8", "r9", "r10", "memory");
#else
  asm volatile("call *%[stub]"
               : "=a"(r), "+b"(a1), "+c"(a2), "+d"(a3)
               : [stub] "r"(stub)
               : "esi", "edi", "memory");
#endif
  return r;
}

void *memset(void *d, int c, size_t n) {
  unsigned char *p = d;
  while (n--) *p++ = (unsigned char)c;
  return d;
}
void *memcpy(void *d, const void *s, size_t n) {
  unsigned char *p = d;
  const unsigned char *q = s;
  while (n--) *p++ = *q++;
  return d;
}
int strncmp(const char *a, const char *b, size_t n) {
  for (; n; n--, a++, b++) {
    if (*a != *b) return (unsigned char)*a - (unsigned char)*b;
    if (!*a) return 0;
  }
  return 0;
}
int strcmp(const char *a, const char *b) { return strncmp(a, b, (size_t)-1); }

static size_t slen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

unsigned long cmdline_ulong(const char *key, unsigned long dflt) {
  const char *line = (const char *)start_info->cmd_line;
  size_t n = slen(key);
  for (const char *s = line; *s; s++) {
    if ((s == line || s[-1] == ' ') && strncmp(s, key, n) == 0 && s[n] == '=') {
      unsigned long v = 0;
      for (s += n + 1; *s >= '0' && *s <= '9'; s++) v = v * 10 + (unsigned long)(*s - '0');
      return v;
    }
  }
  return dflt;
}

void print(const char *s) { HC(__HYPERVISOR_console_io, CONSOLEIO_write, slen(s), s, 0, 0); }

static char obuf[256];
static unsigned opos;
static void oput(char c) {
  if (opos == sizeof obuf) {
    HC(__HYPERVISOR_console_io, CONSOLEIO_write, opos, obuf, 0, 0);
    opos = 0;
  }
  obuf[opos++] = c;
}

void printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  opos = 0;
  for (; *fmt; fmt++) {
    if (*fmt != '%') {
      oput(*fmt);
      continue;
    }
    fmt++;
    int lng = 0;
    while (*fmt == 'l') {
      lng++;
      fmt++;
    }
    unsigned long long v;
    switch (*fmt) {
      case 's': {
        const char *s = va_arg(ap, const char *);
        while (*s) oput(*s++);
        break;
      }
      case 'c':
        oput((char)va_arg(ap, int));
        break;
      case 'd': {
        long long sv = lng >= 2 ? va_arg(ap, long long) : lng ? va_arg(ap, long) : va_arg(ap, int);
        if (sv < 0) {
          oput('-');
          v = (unsigned long long)-sv;
        } else v = (unsigned long long)sv;
        char t[24];
        int n = 0;
        do t[n++] = (char)('0' + v % 10); while (v /= 10);
        while (n) oput(t[--n]);
        break;
      }
      case 'u':
      case 'x': {
        v = lng >= 2 ? va_arg(ap, unsigned long long) : lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
        unsigned base = *fmt == 'x' ? 16 : 10;
        char t[24];
        int n = 0;
        do t[n++] = "0123456789abcdef"[v % base]; while (v /= base);
        while (n) oput(t[--n]);
        break;
      }
      default:
        oput(*fmt);
    }
  }
  if (opos) HC(__HYPERVISOR_console_io, CONSOLEIO_write, opos, obuf, 0, 0);
  opos = 0;
  va_end(ap);
}

void check(int ok, const char *what) {
  if (ok) checks_passed++;
  else checks_failed++;
  printf("%s %u - %s\n", ok ? "ok" : "not ok", checks_passed + checks_failed, what);
}

void shutdown(unsigned reason) {
  struct sched_shutdown s = {.reason = reason};
  HC(__HYPERVISOR_sched_op, SCHEDOP_shutdown, &s, 0, 0, 0);
  for (;;) {}
}

void report(void) { printf("checks: %u passed, %u failed\n", checks_passed, checks_failed); }

void finish(void) {
  report();
  shutdown(checks_failed ? SHUTDOWN_crash : SHUTDOWN_poweroff);
}

unsigned long virt_to_mfn(const void *va) {
  unsigned long pfn = ((unsigned long)va - VIRT_BASE) >> 12;
  return ((unsigned long *)start_info->mfn_list)[pfn];
}

uint64_t make_pte(unsigned long mfn, unsigned long flags) { return ((uint64_t)mfn << 12) | flags; }

long map_page(void *va, unsigned long mfn, unsigned long flags) {
  uint64_t pte = make_pte(mfn, flags);
#ifdef __x86_64__
  return HC(__HYPERVISOR_update_va_mapping, va, pte, UVMF_INVLPG, 0, 0);
#else
  return HC(__HYPERVISOR_update_va_mapping, va, (uint32_t)pte, (uint32_t)(pte >> 32), UVMF_INVLPG, 0);
#endif
}

uint64_t rdtsc(void) {
  uint32_t lo, hi;
  asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}

/* System time from vcpu_time_info with the seqlock protocol. */
unsigned long long now_ns(void) {
  volatile struct vcpu_time_info *t = &shared->vcpu_info[0].time;
  uint32_t ver;
  unsigned long long r;
  do {
    ver = t->version;
    asm volatile("" ::: "memory");
    uint64_t delta = rdtsc() - t->tsc_timestamp;
    if (t->tsc_shift >= 0) delta <<= t->tsc_shift;
    else delta >>= -t->tsc_shift;
    uint64_t mul = t->tsc_to_system_mul;
    r = t->system_time + (((delta & 0xffffffffu) * mul) >> 32) + (delta >> 32) * mul;
    asm volatile("" ::: "memory");
  } while ((ver & 1) || ver != t->version);
  return r;
}

/* ------------------------------------------------------------------ traps */

extern char trap_0[], trap_1[], trap_2[], trap_3[], trap_4[], trap_5[], trap_6[], trap_7[];
extern char trap_8[], trap_9[], trap_10[], trap_11[], trap_12[], trap_13[], trap_14[], trap_15[];
extern char trap_16[], trap_17[], trap_18[], trap_19[], trap_32[], trap_128[], trap_129[], trap_130[];
extern char event_entry[], failsafe_entry[];
static char *const stubs[20] = {trap_0,  trap_1,  trap_2,  trap_3,  trap_4,  trap_5,  trap_6,
                                trap_7,  trap_8,  trap_9,  trap_10, trap_11, trap_12, trap_13,
                                trap_14, trap_15, trap_16, trap_17, trap_18, trap_19};
static trap_fn handlers[256];
trap_fn syscall_handler;

#ifdef __x86_64__
#define KERNEL_CS FLAT_KERNEL_CS
#else
#define KERNEL_CS FLAT_KERNEL_CS
#endif

static void set_trap(int vector, int dpl, void *addr) {
  trap_info_t t[2];
  memset(t, 0, sizeof t);
  t[0].vector = (uint8_t)vector;
  t[0].flags = (uint8_t)dpl;
  t[0].cs = KERNEL_CS;
  t[0].address = (unsigned long)addr;
  HC(__HYPERVISOR_set_trap_table, t, 0, 0, 0, 0);
}

void install_traps(void) {
  for (int v = 0; v < 20; v++) set_trap(v, v == 3 || v == 4 ? 3 : 0, stubs[v]);
}

void on_trap(int vector, trap_fn fn) { handlers[vector] = fn; }

void set_soft_int(int vector, int dpl, trap_fn fn) {
  void *stub = vector == 32 ? trap_32 : vector == 128 ? trap_128 : vector == 129 ? trap_129 : trap_130;
  set_trap(vector, dpl, stub);
  handlers[vector] = fn;
}

void trap_dispatch(struct regs *r) {
  int v = (int)(long)r->vector;
  if (v == -3 && syscall_handler) {
    syscall_handler(r);
    return;
  }
  if (v >= 0 && v < 256 && handlers[v]) {
    handlers[v](r);
    return;
  }
  printf("unexpected trap %d error %lx at %lx\n", v, r->error, (unsigned long)REG_IP(r));
  checks_failed++;
  finish();
}

/* ------------------------------------------------------------------ events */

volatile unsigned long events_delivered;
static void (*event_handler)(unsigned port);

void event_dispatch(void) {
  vcpu_info_t *vi = &shared->vcpu_info[0];
  events_delivered++;
  vi->evtchn_upcall_pending = 0;
  xen_ulong_t sel = __atomic_exchange_n(&vi->evtchn_pending_sel, 0, __ATOMIC_SEQ_CST);
  while (sel) {
    unsigned w = (unsigned)__builtin_ctzl(sel);
    sel &= sel - 1;
    xen_ulong_t bits = shared->evtchn_pending[w] & ~shared->evtchn_mask[w];
    while (bits) {
      unsigned b = (unsigned)__builtin_ctzl(bits);
      bits &= bits - 1;
      unsigned port = w * sizeof(xen_ulong_t) * 8 + b;
      __atomic_and_fetch(&shared->evtchn_pending[w], ~((xen_ulong_t)1 << b), __ATOMIC_SEQ_CST);
      if (event_handler) event_handler(port);
    }
  }
  vi->evtchn_upcall_mask = 0; /* we were called with events enabled before the upcall */
}

void install_events(void (*handler)(unsigned port)) {
  event_handler = handler;
#ifdef __x86_64__
  struct callback_register ev = {.type = CALLBACKTYPE_event, .address = (unsigned long)event_entry};
  struct callback_register fs = {.type = CALLBACKTYPE_failsafe, .address = (unsigned long)failsafe_entry};
  HC(__HYPERVISOR_callback_op, CALLBACKOP_register, &ev, 0, 0, 0);
  HC(__HYPERVISOR_callback_op, CALLBACKOP_register, &fs, 0, 0, 0);
#else
  HC(__HYPERVISOR_set_callbacks, FLAT_KERNEL_CS, event_entry, FLAT_KERNEL_CS, failsafe_entry, 0);
#endif
}

/* ------------------------------------------------------------------ start of day */

void pv_start(start_info_t *si) {
  start_info = si;
  /* Map shared_info over our page-aligned buffer (its MFN is a machine address in start_info). */
  map_page(shared_page, si->shared_info >> 12, 7);
  shared = (shared_info_t *)shared_page;
  test_main();
  finish();
}
