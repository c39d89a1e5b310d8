/*
 * long64: long mode, checked against the Intel SDM vol. 3 (6.14 64-bit interrupt delivery:
 * IST, 16-byte stack alignment, SS:RSP always pushed; 4.5 4-level paging and 4.7 error codes;
 * 5.8.8 64-bit call gates) and vol. 2 (SYSCALL/SYSRET, SWAPGS, IRETQ, WRMSR).
 */
#include "harness.h"

#define P 0x1ull
#define W 0x2ull
#define U 0x4ull
#define A 0x20ull
#define PS 0x80ull
#define NX (1ull << 63)
#define HIGH 0xffff800000000000ull /* PML4[256] */

static u64 pml4[512] __attribute__((aligned(4096)));
static u64 pdpt_low[512] __attribute__((aligned(4096)));
static u64 pd_low[512] __attribute__((aligned(4096)));
static u64 pdpt_high[512] __attribute__((aligned(4096)));
static u64 pd_high[512] __attribute__((aligned(4096)));
static u64 pt_high[512] __attribute__((aligned(4096)));
static u8 frames[2][4096] __attribute__((aligned(4096)));

extern u8 ist1_stack_top[];
#define SEL_CALLGATE 0x40 /* 16-byte 64-bit call gate, DPL 3 */

static volatile u64 sink;
static volatile u64 results[8];
static void read64(uptr a) { sink = *(volatile u64 *)a; }
static void write64(uptr a) { *(volatile u64 *)a = 0x1122334455667788ull; }
static void exec_at(uptr a) { ((void (*)(void))a)(); }

extern char ud2_insn[], int3_next[];
__asm__(
    ".text\n"
    "probe_ud2: ud2_insn: ud2\n"
    "probe_int3: int3\n int3_next: ret\n"
    "probe_int82: int $0x82\n ret\n");
void probe_ud2(uptr);
void probe_int3(uptr);
void probe_int82(uptr);

static void do_int(uptr v) {
  if (v == 0x40) __asm__ volatile("int $0x40");
  else __asm__ volatile("int $0x80");
}
static void do_mov_cr3(uptr a) { (void)a; write_cr3(read_cr3()); }
static void do_push_bad_rsp(uptr a) {
  (void)a;
  __asm__ volatile("mov %%rsp, %%rbx; mov %0, %%rsp; push %%rax; mov %%rbx, %%rsp" : : "r"(0x0000800000000010ull) : "rbx", "memory");
}
static void do_wrmsr_fsbase(uptr v) { wrmsr(0xc0000100, v); }

/* ------------------------------------------------------------------ SYSCALL/SYSRET */

static volatile u64 sc_rcx, sc_r11, sc_cs, sc_ss, sc_flags;
extern char syscall_entry[], after_syscall[];
__asm__(
    ".text\n"
    "syscall_entry:\n"
    "  mov %rcx, sc_rcx(%rip)\n"
    "  mov %r11, sc_r11(%rip)\n"
    "  mov %cs, %eax\n  mov %rax, sc_cs(%rip)\n"
    "  mov %ss, %eax\n  mov %rax, sc_ss(%rip)\n"
    "  pushfq\n  popq sc_flags(%rip)\n"
    "  sysretq\n");
static void user_syscall(uptr a) {
  (void)a;
  u64 cs, flags;
  __asm__ volatile("std\n\tsyscall\n after_syscall:\n\tpushfq\n\tpop %1\n\tcld\n\tmov %%cs, %0" : "=r"(cs), "=r"(flags) : : "rax", "rcx", "r11", "memory");
  results[0] = cs;
  results[1] = flags;
}

/* ------------------------------------------------------------------ compatibility mode */

extern char compat_code[], compat_after_int[];
__asm__(
    ".text\n"
    ".code32\n"
    "compat_code:\n"
    "  mov $0xc0de, %eax\n"
    "  int $0x81\n"
    "compat_after_int:\n"
    "  ud2\n"
    ".code64\n"
    "enter_compat:\n" /* (CPL 0) iretq to compat_code at CPL 3 in 32-bit compatibility mode */
    "  lea user_stack_top(%rip), %rdx\n"
    "  pushq $0x23\n"
    "  pushq %rdx\n"
    "  pushfq\n"
    "  pushq $0x1b\n"
    "  lea compat_code(%rip), %rcx\n"
    "  pushq %rcx\n"
    "  iretq\n");
void enter_compat(uptr);

/* ------------------------------------------------------------------ 64-bit call gate */

static volatile u64 gate_cs, gate_old_cs, gate_old_ss;
extern char gate_target[];
__asm__(
    ".text\n"
    "gate_target:\n"
    "  mov %cs, %eax\n  mov %rax, gate_cs(%rip)\n"
    "  mov 8(%rsp), %rax\n  mov %rax, gate_old_cs(%rip)\n"
    "  mov 24(%rsp), %rax\n  mov %rax, gate_old_ss(%rip)\n"
    "  lretq\n");
static void user_call_gate(uptr a) {
  (void)a;
  /* m16:32 form: the offset is ignored for a call gate, and a 64-bit gate pushes 8-byte slots. */
  static struct __attribute__((packed)) { u32 offset; u16 sel; } far = {0, SEL_CALLGATE | 3};
  __asm__ volatile("lcall *%0" : : "m"(far) : "memory");
  u64 cs;
  __asm__ volatile("mov %%cs, %0" : "=r"(cs));
  results[2] = cs;
}

static void paging(void) {
  for (u32 i = 0; i < 8; i++) pd_low[i] = ((u64)i << 21) | PS | P | W | U;
  pdpt_low[0] = (uptr)pd_low | P | W | U;
  pml4[0] = (uptr)pdpt_low | P | W | U;
  pt_high[0] = (uptr)frames[0] | P | W | U;
  pd_high[0] = (uptr)pt_high | P | W | U;
  pdpt_high[0] = (uptr)pd_high | P | W | U;
  pdpt_high[1] = 0 | PS | P | W; /* 1 GiB page: HIGH + 1 GiB -> physical 0 */
  pml4[256] = (uptr)pdpt_high | P | W | U;
  wrmsr(0xc0000080, rdmsr(0xc0000080) | 0x800); /* NXE */
  write_cr3((uptr)pml4);
  write_cr0(read_cr0() | 0x10000); /* WP */
}

u32 kmain(u32 magic, struct multiboot_info *info) {
  (void)magic;
  (void)info;
  harness_init();
  paging();
  EQ("EFER.LMA is set", (rdmsr(0xc0000080) >> 10) & 1, 1);

  /* Exceptions. */
  EQ("#UD vector", try_call(probe_ud2, 0), 6);
  EQ("#UD saves the faulting RIP", trap.ip, (uptr)ud2_insn);
  EQ("INT3 saves the next RIP", (try_call(probe_int3, 0), trap.ip), (uptr)int3_next);
  EQ("  SS:RSP pushed even at the same privilege (SS)", trap.ss, KDATA);

  /* Stack switching and alignment. */
  EQ("INT 0x80 from CPL 3", try_user(do_int, 0x80), 0x80);
  EQ("  frame CS", trap.cs, UCODE64);
  EQ("  frame SS", trap.ss, UDATA);
  EQ("  frame on RSP0", trap.frame_top, (uptr)kernel_trap_stack_top);
  tss_set_sp0((uptr)kernel_trap_stack_top - 8);
  try_user(do_int, 0x80);
  EQ("  RSP0 is aligned down to 16 bytes", trap.frame_top, (uptr)kernel_trap_stack_top - 16);
  tss_set_sp0((uptr)kernel_trap_stack_top);
  idt_set(0x82, trap_stubs[0x82], KCODE, 0xe, 0, 1);
  EQ("INT through an IST gate at CPL 0", try_call(probe_int82, 0), 0x82);
  EQ("  frame on IST1 though the privilege did not change", trap.frame_top, (uptr)ist1_stack_top);
  idt_reset(0x82);
  expect_user_trap("INT 0x40 (DPL 0 gate) from CPL 3: #GP(0x40*8+2)", do_int, 0x40, 13, 0x40 * 8 + 2);
  expect_user_trap("MOV CR3 at CPL 3: #GP(0)", do_mov_cr3, 0, 13, 0);

  /* Canonical addresses. */
  expect_trap("read at a non-canonical address: #GP(0)", read64, 0x0000800000000000ull, 13, 0);
  /* The #SS frame cannot go on the broken stack at CPL 0: give #SS its own stack (IST1). */
  idt_set(12, trap_stubs[12], KCODE, 0xe, 0, 1);
  expect_trap("push with a non-canonical RSP: #SS(0)", do_push_bad_rsp, 0, 12, 0);
  idt_reset(12);
  expect_trap("WRMSR FS_BASE non-canonical: #GP(0)", do_wrmsr_fsbase, 0x0000800000000000ull, 13, 0);

  /* 4-level paging at a high address, and its #PF error codes. */
  *(u64 *)frames[0] = 0x600d;
  CHECK("read at 0xffff800000000000", try_call(read64, HIGH) == NO_TRAP && sink == 0x600d);
  EQ("  accessed bit in the PML4E", pml4[256] & A, A);
  expect_trap("read of a not-present page: #PF(0)", read64, HIGH + 0x1000, 14, 0);
  EQ("  CR2 holds all 64 bits", trap.cr2, HIGH + 0x1000);
  pt_high[1] = (uptr)frames[1] | P | U;
  invlpg(HIGH + 0x1000);
  expect_trap("supervisor write to a read-only page, CR0.WP=1: #PF(P|W)", write64, HIGH + 0x1000, 14, 3);
  expect_user_trap("user write to a read-only page: #PF(P|W|U)", write64, HIGH + 0x1000, 14, 7);
  *(u8 *)frames[1] = 0xc3;
  CHECK("fetch from an executable page", try_call(exec_at, HIGH + 0x1000) == NO_TRAP);
  pt_high[1] |= NX;
  invlpg(HIGH + 0x1000);
  expect_trap("fetch from an XD page: #PF(P|I/D)", exec_at, HIGH + 0x1000, 14, 0x11);
  expect_user_trap("user fetch from an XD page: #PF(P|U|I/D)", exec_at, HIGH + 0x1000, 14, 0x15);
  pt_high[2] = (uptr)frames[1] | P | (1ull << 51);
  invlpg(HIGH + 0x2000);
  expect_trap("PTE with bit 51 set: #PF(P|RSVD)", read64, HIGH + 0x2000, 14, 9);
  pt_high[3] = (uptr)frames[1] | P | (0x7ffull << 52); /* bits 62..52 are ignored */
  invlpg(HIGH + 0x3000);
  CHECK("bits 62..52 of a PTE are ignored", try_call(read64, HIGH + 0x3000) == NO_TRAP);
  *(u64 *)frames[1] = 0x1616;
  CHECK("a 1 GiB page", try_call(read64, HIGH + 0x40000000ull + (uptr)frames[1]) == NO_TRAP && sink == 0x1616);
  expect_user_trap("user read of a supervisor 1 GiB page: #PF(P|U)", read64, HIGH + 0x40000000ull, 14, 5);

  /* SYSCALL/SYSRET. */
  wrmsr(0xc0000081, ((u64)0x18 << 48) | ((u64)KCODE << 32)); /* STAR */
  wrmsr(0xc0000082, (uptr)syscall_entry);                     /* LSTAR */
  wrmsr(0xc0000084, 0x400);                                   /* FMASK: DF */
  wrmsr(0xc0000080, rdmsr(0xc0000080) | 1);                   /* SCE */
  EQ("SYSCALL from CPL 3 and SYSRETQ back", try_user(user_syscall, 0), NO_TRAP);
  EQ("  RCX = the next RIP", sc_rcx, (uptr)after_syscall);
  EQ("  R11 = RFLAGS (DF set by the caller)", sc_r11 & 0x400, 0x400);
  EQ("  CS = STAR[47:32]", sc_cs, KCODE);
  EQ("  SS = STAR[47:32] + 8", sc_ss, KDATA);
  EQ("  RFLAGS masked by FMASK", sc_flags & 0x400, 0);
  EQ("  SYSRETQ: CS = STAR[63:48] + 16, RPL 3", results[0], UCODE64);
  EQ("  SYSRETQ: RFLAGS from R11", results[1] & 0x400, 0x400);

  /* Compatibility mode. */
  EQ("IRETQ to compatibility mode, INT back", try_call(enter_compat, 0), USER_DONE);
  EQ("  frame CS is the 32-bit user selector", trap.cs, UCODE);
  EQ("  frame RIP", trap.ip, (uptr)compat_after_int);

  /* 64-bit call gate. */
  uptr gt = (uptr)gate_target;
  gdt_set(SEL_CALLGATE, (gt & 0xffff) | ((u64)KCODE << 16) | ((u64)0xec00 << 32) | ((u64)((gt >> 16) & 0xffff) << 48));
  gdt_set(SEL_CALLGATE + 8, gt >> 32);
  EQ("far call through a 64-bit call gate from CPL 3", try_user(user_call_gate, 0), NO_TRAP);
  EQ("  target runs at CPL 0", gate_cs, KCODE);
  EQ("  caller's CS pushed", gate_old_cs, UCODE64);
  EQ("  caller's SS pushed", gate_old_ss, UDATA);
  EQ("  LRETQ returns to CPL 3", results[2], UCODE64);

  /* FS/GS bases and SWAPGS. */
  static volatile u64 fs_var = 0xf5f5, gs_var = 0x6565;
  wrmsr(0xc0000100, (uptr)&fs_var);
  u64 v;
  __asm__ volatile("mov %%fs:0, %0" : "=r"(v));
  EQ("FS_BASE MSR: %fs:0 reads through the base", v, 0xf5f5);
  wrmsr(0xc0000101, 0);
  wrmsr(0xc0000102, (uptr)&gs_var);
  __asm__ volatile("swapgs; mov %%gs:0, %0; swapgs" : "=r"(v));
  EQ("SWAPGS exchanges GS_BASE and KERNEL_GS_BASE", v, 0x6565);
  EQ("  and swaps back", rdmsr(0xc0000102), (uptr)&gs_var);

  /* CPUID. */
  u32 a, b, c, d;
  cpuid(0x80000001, 0, &a, &b, &c, &d);
  EQ("CPUID: LM, NX and SYSCALL", d & ((1u << 29) | (1u << 20) | (1u << 11)), (1u << 29) | (1u << 20) | (1u << 11));
  cpuid(0x80000008, 0, &a, &b, &c, &d);
  EQ("CPUID: 36 physical and 48 linear address bits", a & 0xffff, 0x3024);
  return finish();
}
