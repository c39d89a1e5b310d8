/*
 * tsxen differential-testing harness: runs x86 instruction snippets on the host CPU in
 * user mode (32-bit when built with -m32, 64-bit when built with -m64) and reports the
 * final architectural state. The TypeScript side (tests/cpu/difftest/) runs the very same
 * cases on the emulator and compares.
 *
 * ---------------------------------------------------------------------------------------
 * Address space (identical in both modes, all below 4 GiB):
 *   CODE  0x10000000  one page, R+X (not writable). Filled with 0xCC (int3) each case; the
 *                     case's code bytes are placed at CODE, followed by the int3 terminator
 *                     (the rest of the page is int3 too, so a stray jump inside it traps).
 *   DATA  0x20000000  8 KiB (two pages), R+W, not executable. Pages at 0x1FFFF000 and
 *                     0x20002000 are left unmapped (not present) so wild accesses fault.
 *   STACK 0x30000000  one page, R+W. 0x2FFFF000 and 0x30001000 are unmapped.
 *
 * The "region" is DATA (offsets 0..8191) followed by STACK (offsets 8192..12287): 12288
 * bytes. Its initial contents come from fill_seed (see region_fill: word i, little-endian,
 * is fmix32(seed ^ (i * 0x9E3779B9))), then up to 4 patches are applied.
 *
 * ---------------------------------------------------------------------------------------
 * Protocol: stdin carries a stream of CaseIn records, stdout gets one CaseOut record per
 * case, in order. All fields little-endian, no padding beyond what is listed.
 *
 * CaseIn (272 bytes):
 *   0   u32 id            echoed back
 *   4   u32 eflags        initial EFLAGS; only CF PF AF ZF SF DF OF (mask 0xCD5) are used
 *   8   u32 code_len      0..64
 *   12  u32 fill_seed     region contents, see above
 *   16  u64 regs[16]      rax rcx rdx rbx rsp rbp rsi rdi r8..r15 (x86 encoding order);
 *                         in 32-bit mode only the low 32 bits of regs[0..7] are used
 *   144 u8  code[64]
 *   208 patch[4], 16 bytes each:
 *         u16 offset (0xFFFF = unused) into the region, u8 len (1..8), u8 pad[5],
 *         u8 bytes[8]
 *
 * CaseOut (368 bytes):
 *   0   u32 id
 *   4   u32 signo         signal that ended the case (SIGTRAP for the terminator)
 *   8   u32 vector        hardware trap number (REG_TRAPNO); 0x100 = timeout,
 *                         0x101 = a system call was attempted from the snippet (SIGSYS)
 *   12  u32 error_code    REG_ERR
 *   16  u64 address       CR2 for #PF (vector 14), else 0
 *   24  u64 regs[16]      final registers (zero-extended in 32-bit mode)
 *   152 u64 rip           final RIP/EIP (after the int3 for a trap; at the faulting
 *                         instruction for a fault)
 *   160 u32 eflags        final EFLAGS (unmasked)
 *   164 u32 ndiff         number of region bytes that differ from the initial contents
 *   168 u32 diff_hash     FNV-1a over (u16 offset, u8 value) of every differing byte
 *   172 u32 pad
 *   176 diff[48], 4 bytes each: u16 offset, u8 new value, u8 pad (first 48 differences)
 *
 * ---------------------------------------------------------------------------------------
 * How a case runs: enter_case (assembly below) saves the harness's callee-saved registers
 * and stack pointer, pops all general registers and EFLAGS from a frame built from the case,
 * loads the case's stack pointer and jumps to CODE. The snippet runs until its terminator
 * int3 (or a fault); the signal handler (on an alternate signal stack, so any RSP is fine)
 * records the ucontext, and rewrites it to resume at case_return on the harness's stack
 * with the segment registers captured at start-up. The harness's x87/SSE state is saved
 * with fxsave around the case.
 * A 100 ms interval timer ends runaway snippets (vector 0x100), and a seccomp filter turns
 * any system call made from the CODE page into SIGSYS (vector 0x101).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

#define CODE_ADDR 0x10000000u
#define DATA_ADDR 0x20000000u
#define DATA_SIZE 8192u
#define STACK_ADDR 0x30000000u
#define STACK_SIZE 4096u
#define REGION_SIZE (DATA_SIZE + STACK_SIZE)
#define MAX_CODE 64
#define MAX_DIFFS 48
#define VEC_TIMEOUT 0x100u
#define VEC_SYSCALL 0x101u

#pragma pack(push, 1)
struct patch {
  uint16_t offset;
  uint8_t len;
  uint8_t pad[5];
  uint8_t bytes[8];
};
struct case_in {
  uint32_t id, eflags, code_len, fill_seed;
  uint64_t regs[16];
  uint8_t code[MAX_CODE];
  struct patch patches[4];
};
struct diff_entry {
  uint16_t offset;
  uint8_t value, pad;
};
struct case_out {
  uint32_t id, signo, vector, error_code;
  uint64_t address;
  uint64_t regs[16];
  uint64_t rip;
  uint32_t eflags, ndiff, diff_hash, pad;
  struct diff_entry diffs[MAX_DIFFS];
};
#pragma pack(pop)

_Static_assert(sizeof(struct case_in) == 272, "CaseIn size");
_Static_assert(sizeof(struct case_out) == 368, "CaseOut size");

#if defined(__x86_64__)
#define NGREGS 16
/* ucontext greg index for x86 register number 0..15 */
static const int greg_of[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP,
                                REG_RSI, REG_RDI, REG_R8,  REG_R9,  REG_R10, REG_R11,
                                REG_R12, REG_R13, REG_R14, REG_R15};
#define GREG_IP REG_RIP
#define GREG_FL REG_EFL
#define GET_CR2(uc) ((uint64_t)(uc)->uc_mcontext.gregs[REG_CR2])
typedef greg_t ureg;
#else
#define NGREGS 8
static const int greg_of[8] = {REG_EAX, REG_ECX, REG_EDX, REG_EBX,
                               REG_ESP, REG_EBP, REG_ESI, REG_EDI};
#define GREG_IP REG_EIP
#define GREG_FL REG_EFL
#define GET_CR2(uc) ((uint64_t)(uint32_t)(uc)->uc_mcontext.cr2)
typedef greg_t ureg;
#endif

enum { ST_IDLE, ST_ENTER, ST_RUN };
static volatile int state = ST_IDLE;
static volatile uint32_t run_serial, tick_serial;
static gregset_t saved_gregs; /* the harness's registers, captured once (segments etc.) */

/*
 * Entering a case without a signal: enter_case() saves the callee-saved registers and the
 * stack pointer, pops every general register and EFLAGS from case_frame, loads the case's
 * stack pointer and jumps to CODE. The exit (a signal) resumes at case_return with the stack
 * pointer saved here, which restores the callee-saved registers and returns from enter_case.
 */
#if defined(__x86_64__)
/* r15 r14 r13 r12 r11 r10 r9 r8 rdi rsi rbp rbx rdx rcx rax rflags */
uint64_t case_frame[16];
uint64_t case_sp, case_ip = CODE_ADDR, host_sp;
__asm__(".text\n"
        ".globl enter_case\n"
        "enter_case:\n"
        "  push %rbx\n  push %rbp\n  push %r12\n  push %r13\n  push %r14\n  push %r15\n"
        "  mov %rsp, host_sp(%rip)\n"
        "  lea case_frame(%rip), %rsp\n"
        "  pop %r15\n  pop %r14\n  pop %r13\n  pop %r12\n  pop %r11\n  pop %r10\n  pop %r9\n  pop %r8\n"
        "  pop %rdi\n  pop %rsi\n  pop %rbp\n  pop %rbx\n  pop %rdx\n  pop %rcx\n  pop %rax\n"
        "  popfq\n"
        "  mov case_sp(%rip), %rsp\n"
        "  jmp *case_ip(%rip)\n"
        ".globl case_return\n"
        "case_return:\n"
        "  mov host_sp(%rip), %rsp\n"
        "  pop %r15\n  pop %r14\n  pop %r13\n  pop %r12\n  pop %rbp\n  pop %rbx\n"
        "  ret\n");
static const int frame_reg[16] = {15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 3, 2, 1, 0, -1};
#else
/* edi esi ebp ebx edx ecx eax eflags */
uint32_t case_frame[8];
uint32_t case_sp, case_ip = CODE_ADDR, host_sp;
__asm__(".text\n"
        ".globl enter_case\n"
        "enter_case:\n"
        "  push %ebx\n  push %esi\n  push %edi\n  push %ebp\n"
        "  mov %esp, host_sp\n"
        "  mov $case_frame, %esp\n"
        "  pop %edi\n  pop %esi\n  pop %ebp\n  pop %ebx\n  pop %edx\n  pop %ecx\n  pop %eax\n"
        "  popfl\n"
        "  mov case_sp, %esp\n"
        "  jmp *case_ip\n"
        ".globl case_return\n"
        "case_return:\n"
        "  mov host_sp, %esp\n"
        "  pop %ebp\n  pop %edi\n  pop %esi\n  pop %ebx\n"
        "  ret\n");
static const int frame_reg[8] = {7, 6, 5, 3, 2, 1, 0, -1};
#endif
extern void enter_case(void);
extern char case_return[];
static const struct case_in *cur_in;
static struct case_out *cur_out;

static uint8_t *code_alias; /* writable view of the CODE page */
static uint8_t init_region[REGION_SIZE] __attribute__((aligned(64)));

static void die(const char *msg) {
  fprintf(stderr, "harness: %s: %s\n", msg, strerror(errno));
  exit(2);
}

static uint32_t fmix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x85EBCA6Bu;
  x ^= x >> 13;
  x *= 0xC2B2AE35u;
  x ^= x >> 16;
  return x;
}

static void region_fill(uint8_t *dst, const struct case_in *c) {
  uint32_t *w = (uint32_t *)dst;
  for (uint32_t i = 0; i < REGION_SIZE / 4; i++) w[i] = fmix32(c->fill_seed ^ (i * 0x9E3779B9u));
  for (int p = 0; p < 4; p++) {
    const struct patch *pt = &c->patches[p];
    if (pt->offset == 0xFFFF) continue;
    for (uint32_t k = 0; k < pt->len && k < 8; k++) {
      uint32_t off = (uint32_t)pt->offset + k;
      if (off < REGION_SIZE) dst[off] = pt->bytes[k];
    }
  }
}

static void record(ucontext_t *uc, int signo, uint32_t vector) {
  struct case_out *o = cur_out;
  greg_t *g = uc->uc_mcontext.gregs;
  o->signo = (uint32_t)signo;
  o->vector = vector;
  o->error_code = vector >= 0x100 ? 0 : (uint32_t)g[REG_ERR];
  o->address = vector == 14 ? GET_CR2(uc) : 0;
  for (int i = 0; i < 16; i++) o->regs[i] = 0;
  for (int i = 0; i < NGREGS; i++) {
#if defined(__x86_64__)
    o->regs[i] = (uint64_t)g[greg_of[i]];
#else
    o->regs[i] = (uint64_t)(uint32_t)g[greg_of[i]];
#endif
  }
#if defined(__x86_64__)
  o->rip = (uint64_t)g[GREG_IP];
#else
  o->rip = (uint64_t)(uint32_t)g[GREG_IP];
#endif
  o->eflags = (uint32_t)g[GREG_FL];
}

static void leave_case(ucontext_t *uc) {
  greg_t *g = uc->uc_mcontext.gregs;
  memcpy(g, saved_gregs, sizeof(gregset_t));
  g[GREG_IP] = (greg_t)(uintptr_t)case_return;
#if defined(__x86_64__)
  g[REG_RSP] = (greg_t)host_sp;
#else
  g[REG_ESP] = (greg_t)host_sp;
  g[REG_UESP] = (greg_t)host_sp;
#endif
  g[GREG_FL] = 0x202;
  state = ST_IDLE;
}

static void handler(int signo, siginfo_t *si, void *ctx) {
  /* The kernel does not clear AC for a handler; a snippet's popf may have set it, and with
   * CR0.AM an unaligned access here would raise #AC while SIGBUS is blocked. */
#if defined(__x86_64__)
  __asm__ volatile("pushfq; andq $~0x40000, (%%rsp); popfq" ::: "memory", "cc");
#else
  __asm__ volatile("pushfl; andl $~0x40000, (%%esp); popfl" ::: "memory", "cc");
#endif
  ucontext_t *uc = (ucontext_t *)ctx;
  greg_t *g = uc->uc_mcontext.gregs;
  if (signo == SIGALRM) {
    if (state == ST_RUN) {
      if (tick_serial == run_serial) {
        record(uc, signo, VEC_TIMEOUT);
        leave_case(uc);
      } else {
        tick_serial = run_serial;
      }
    }
    return;
  }
  if (state == ST_ENTER && signo == SIGTRAP) { /* once, at start-up: capture segments etc. */
    memcpy(saved_gregs, g, sizeof(gregset_t));
    state = ST_IDLE;
    return;
  }
  if (state == ST_RUN) {
    uint32_t vec = (uint32_t)g[REG_TRAPNO];
    if (signo == SIGSYS) vec = VEC_SYSCALL;
    (void)si;
    record(uc, signo, vec);
    leave_case(uc);
    return;
  }
  /* A signal the harness itself caused: a bug. */
  static const char msg[] = "harness: unexpected signal outside a case\n";
  ssize_t r = write(2, msg, sizeof msg - 1);
  (void)r;
  _exit(3);
}

static void install_seccomp(void) {
  /* Any system call whose instruction pointer lies in the CODE page raises SIGSYS. */
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer) + 4),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer)),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, CODE_ADDR, 0, 2),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, CODE_ADDR + 4096u, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {(unsigned short)(sizeof f / sizeof f[0]), f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return;
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
    fprintf(stderr, "harness: warning: seccomp filter not installed (%s)\n", strerror(errno));
  }
}

static char **harness_argv;

/*
 * CODE, DATA and STACK are fixed mappings (MAP_FIXED_NOREPLACE), and the kernel places even a
 * static binary's heap at random across a range that covers them (once in a CI run: "mmap
 * DATA: File exists"). When one is taken, run again: a fresh exec gets a fresh random layout.
 * Address randomization itself stays on (without it, generated addresses near the top of the
 * 32-bit space reach the harness's stack in about 1 case in 50,000 instead of 1 in 2,500,000,
 * and such cases are not compared; see docs/difftest.md).
 */
static void mapped_or_retry(void *p, uint32_t want, const char *what) {
  if (p == (void *)(uintptr_t)want) return;
  if (p == MAP_FAILED && errno == EEXIST) {
    const char *tries = getenv("TSXEN_HARNESS_TRIES");
    int n = tries ? atoi(tries) : 0;
    if (n < 16) {
      char buf[16];
      snprintf(buf, sizeof buf, "%d", n + 1);
      setenv("TSXEN_HARNESS_TRIES", buf, 1);
      execv("/proc/self/exe", harness_argv);
    }
  }
  die(what);
}

static void setup(void) {
  int fd = memfd_create("tsxen-code", 0);
  if (fd < 0) die("memfd_create");
  if (ftruncate(fd, 4096) != 0) die("ftruncate");
  code_alias = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (code_alias == MAP_FAILED) die("mmap code alias");
  void *p = mmap((void *)(uintptr_t)CODE_ADDR, 4096, PROT_READ | PROT_EXEC,
                 MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
  mapped_or_retry(p, CODE_ADDR, "mmap CODE");
  p = mmap((void *)(uintptr_t)DATA_ADDR, DATA_SIZE, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  mapped_or_retry(p, DATA_ADDR, "mmap DATA");
  p = mmap((void *)(uintptr_t)STACK_ADDR, STACK_SIZE, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  mapped_or_retry(p, STACK_ADDR, "mmap STACK");
  memset(code_alias, 0xCC, 4096);

  static uint8_t altstack[65536] __attribute__((aligned(64)));
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
  if (sigaltstack(&ss, NULL) != 0) die("sigaltstack");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = handler;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  const int sigs[] = {SIGTRAP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGSYS, SIGALRM};
  for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaddset(&sa.sa_mask, sigs[i]);
  for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    if (sigaction(sigs[i], &sa, NULL) != 0) die("sigaction");
  struct itimerval it = {{0, 100000}, {0, 100000}};
  if (setitimer(ITIMER_REAL, &it, NULL) != 0) die("setitimer");
  state = ST_ENTER;
  __asm__ volatile("int3" ::: "memory");
  install_seccomp();
}

/* Buffered I/O on raw file descriptors; output is flushed before every blocking read. */
static uint8_t inbuf[272 * 1024];
static size_t in_pos, in_len;
static uint8_t outbuf[368 * 512];
static size_t out_len;

static void flush_out(void) {
  size_t done = 0;
  while (done < out_len) {
    ssize_t w = write(1, outbuf + done, out_len - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("write");
    }
    done += (size_t)w;
  }
  out_len = 0;
}

static int read_case(struct case_in *c) {
  size_t need = sizeof *c, got = 0;
  uint8_t *dst = (uint8_t *)c;
  while (got < need) {
    if (in_pos == in_len) {
      flush_out();
      ssize_t r = read(0, inbuf, sizeof inbuf);
      if (r < 0) {
        if (errno == EINTR) continue;
        die("read");
      }
      if (r == 0) {
        if (got != 0) {
          fprintf(stderr, "harness: truncated case record\n");
          exit(2);
        }
        return 0;
      }
      in_pos = 0;
      in_len = (size_t)r;
    }
    size_t n = in_len - in_pos;
    if (n > need - got) n = need - got;
    memcpy(dst + got, inbuf + in_pos, n);
    in_pos += n;
    got += n;
  }
  return 1;
}

static uint8_t fxbuf[512] __attribute__((aligned(64)));
static uint8_t base_region[REGION_SIZE] __attribute__((aligned(64))); /* fill only, no patches */
static uint32_t base_seed;
static int have_base;
static struct case_in prev_in; /* the previous case, for the incremental reset */
static uint32_t prev_ndiff;
static struct diff_entry prev_diffs[MAX_DIFFS];

static uint8_t *live_byte(uint32_t off) {
  return off < DATA_SIZE ? (uint8_t *)(uintptr_t)(DATA_ADDR + off)
                         : (uint8_t *)(uintptr_t)(STACK_ADDR + off - DATA_SIZE);
}

static void apply_patches(uint8_t *dst, const struct case_in *c, const uint8_t *src) {
  /* src == NULL: write the patch bytes; else copy those positions from src */
  for (int p = 0; p < 4; p++) {
    const struct patch *pt = &c->patches[p];
    if (pt->offset == 0xFFFF) continue;
    for (uint32_t k = 0; k < pt->len && k < 8; k++) {
      uint32_t off = (uint32_t)pt->offset + k;
      if (off < REGION_SIZE) dst[off] = src ? src[off] : pt->bytes[k];
    }
  }
}

static void sync_live_patches(const struct case_in *c) {
  for (int p = 0; p < 4; p++) {
    const struct patch *pt = &c->patches[p];
    if (pt->offset == 0xFFFF) continue;
    for (uint32_t k = 0; k < pt->len && k < 8; k++) {
      uint32_t off = (uint32_t)pt->offset + k;
      if (off < REGION_SIZE) *live_byte(off) = init_region[off];
    }
  }
}

/*
 * Puts the region into the case's initial state. Consecutive cases with the same fill_seed
 * (the generator changes it only every few dozen cases) are reset incrementally: only the
 * bytes the previous case wrote or patched are restored.
 */
static void reset_region(const struct case_in *c) {
  if (have_base && c->fill_seed == base_seed && prev_ndiff <= MAX_DIFFS) {
    apply_patches(init_region, &prev_in, base_region); /* undo previous patches */
    apply_patches(init_region, c, NULL);
    for (uint32_t i = 0; i < prev_ndiff; i++) *live_byte(prev_diffs[i].offset) = init_region[prev_diffs[i].offset];
    sync_live_patches(&prev_in);
    sync_live_patches(c);
    return;
  }
  if (!have_base || c->fill_seed != base_seed) {
    struct case_in plain = *c;
    for (int p = 0; p < 4; p++) plain.patches[p].offset = 0xFFFF;
    region_fill(base_region, &plain);
    base_seed = c->fill_seed;
    have_base = 1;
  }
  memcpy(init_region, base_region, REGION_SIZE);
  apply_patches(init_region, c, NULL);
  memcpy((void *)(uintptr_t)DATA_ADDR, init_region, DATA_SIZE);
  memcpy((void *)(uintptr_t)STACK_ADDR, init_region + DATA_SIZE, STACK_SIZE);
}

static void run_case(const struct case_in *c, struct case_out *o) {
  uint32_t len = c->code_len > MAX_CODE ? MAX_CODE : c->code_len;
  memset(code_alias, 0xCC, MAX_CODE + 16);
  memcpy(code_alias, c->code, len);
  reset_region(c);
  memset(o, 0, sizeof *o);
  o->id = c->id;
  cur_in = c;
  cur_out = o;
  run_serial++;
  for (int k = 0; k < (int)(sizeof case_frame / sizeof case_frame[0]); k++) {
    int reg = frame_reg[k];
    case_frame[k] = reg < 0 ? ((c->eflags & 0xCD5u) | 0x202u) : (__typeof__(case_frame[0]))c->regs[reg];
  }
  case_sp = (__typeof__(case_sp))c->regs[4];
  __asm__ volatile("fxsave %0" : "=m"(fxbuf));
  state = ST_RUN;
  enter_case();
  __asm__ volatile("fxrstor %0" ::"m"(fxbuf));
  /* Compare the region with its initial contents. */
  uint32_t ndiff = 0, h = 2166136261u;
  for (uint32_t base = 0; base < REGION_SIZE; base += 256) {
    const uint8_t *live = live_byte(base);
    if (memcmp(live, init_region + base, 256) == 0) continue;
    for (uint32_t k = 0; k < 256; k++) {
      if (live[k] == init_region[base + k]) continue;
      uint32_t off = base + k;
      uint8_t v = live[k];
      if (ndiff < MAX_DIFFS) {
        o->diffs[ndiff].offset = (uint16_t)off;
        o->diffs[ndiff].value = v;
      }
      ndiff++;
      h = (h ^ (off & 0xFF)) * 16777619u;
      h = (h ^ (off >> 8)) * 16777619u;
      h = (h ^ v) * 16777619u;
    }
  }
  o->ndiff = ndiff;
  o->diff_hash = h;
  prev_in = *c;
  prev_ndiff = ndiff;
  memcpy(prev_diffs, o->diffs, sizeof prev_diffs);
}

/* Reports the harness's own mappings on stderr ("hostmap START-END", hex): a snippet that
 * reaches one of them succeeds natively where the emulator, which maps only the case's
 * regions, faults; the runner then does not compare that case (docs/difftest.md). The main
 * stack is reported with the room it may still grow into (RLIMIT_STACK). */
static void report_host_maps(void) {
  static char buf[1 << 16];
  int fd = open("/proc/self/maps", O_RDONLY);
  if (fd < 0) return;
  size_t len = 0;
  ssize_t n;
  while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)n;
  close(fd);
  buf[len] = 0;
  struct rlimit rl;
  unsigned long long grow = 8ull << 20;
  if (getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (64ull << 20)) grow = rl.rlim_cur;
  for (char *line = buf; *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    unsigned long long lo = 0, hi = 0;
    if (sscanf(line, "%llx-%llx", &lo, &hi) == 2) {
      if (strstr(line, "[stack]")) lo = lo > grow ? lo - grow : 0;
      fprintf(stderr, "hostmap %llx-%llx\n", lo, hi);
    }
    if (!nl) break;
    line = nl + 1;
  }
  fflush(stderr);
}

int main(int argc, char **argv) {
  harness_argv = argv;
  setup();
  if (argc > 1) { /* self-check: prints the layout and exits */
    printf("harness %d-bit: CODE=%#x DATA=%#x STACK=%#x in=%u out=%u\n", (int)(sizeof(void *) * 8),
           CODE_ADDR, DATA_ADDR, STACK_ADDR, (unsigned)sizeof(struct case_in),
           (unsigned)sizeof(struct case_out));
    return 0;
  }
  report_host_maps();
  static struct case_in c;
  for (;;) {
    if (!read_case(&c)) break;
    if (out_len + sizeof(struct case_out) > sizeof outbuf) flush_out();
    run_case(&c, (struct case_out *)(outbuf + out_len));
    out_len += sizeof(struct case_out);
  }
  flush_out();
  return 0;
}
