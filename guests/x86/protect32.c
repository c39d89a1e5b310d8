/*
 * protect32: segmentation, privilege and event delivery in 32-bit protected mode, checked
 * against the Intel SDM vol. 3 (ch. 5 protection, ch. 6 interrupts) and vol. 2 (INT n, IRET,
 * CALL/RET far, LAR/LSL/VERR/VERW, POPF, IN/OUT, SYSENTER/SYSEXIT).
 */
#include "harness.h"

/* Extra descriptors in the free GDT slots. */
#define SEL_LIMITED 0x40     /* data DPL 0, base 0, limit 0xfff (byte granular) */
#define SEL_NOTPRESENT 0x48  /* data DPL 3, not present */
#define SEL_EXPDOWN 0x50     /* expand-down data DPL 0, limit 0xfff, B=1 */
#define SEL_READONLY 0x58    /* read-only data DPL 0 */
#define SEL_XONLY 0x60       /* execute-only code DPL 0 */
#define SEL_CONFORMING 0x68  /* conforming readable code DPL 0 */
#define SEL_CALLGATE 0x70    /* 32-bit call gate DPL 3 -> KCODE:gate_target, 2 parameters */
#define SEL_SYSENTER 0x78    /* 0x78 code0, 0x80 data0, 0x88 code3, 0x90 data3 (SYSENTER layout) */

/* ------------------------------------------------------------------ probes */

extern char ud2_insn[], int3_next[], int80_next[];
__asm__(
    ".text\n"
    "probe_ud2: ud2_insn: ud2\n"
    "probe_int3: int3\n int3_next: ret\n"
    "probe_int80: int $0x80\n int80_next: ret\n"
    "probe_int40: int40_insn: int $0x40\n ret\n");
extern char int40_insn[];
void probe_int40(uptr);
void probe_ud2(uptr);
void probe_int3(uptr);
void probe_int80(uptr);

static void do_div0(uptr a) {
  u32 q, d = (u32)a;
  __asm__ volatile("xor %%edx, %%edx; divl %2" : "=a"(q) : "a"(1), "r"(d) : "edx");
}
static void do_cli(uptr a) { (void)a; __asm__ volatile("cli"); }
static void do_hlt(uptr a) { (void)a; __asm__ volatile("hlt"); }
static void do_int(uptr v) {
  if (v == 0x40) __asm__ volatile("int $0x40");
  else __asm__ volatile("int $0x80");
}
static void do_load_ds(uptr sel) { __asm__ volatile("mov %0, %%ds; mov %1, %%ds" : : "r"((u16)sel), "r"((u16)UDATA)); }
static void do_load_ss(uptr sel) {
  __asm__ volatile("mov %%ss, %%cx; mov %0, %%ss; mov %%cx, %%ss" : : "r"((u16)sel) : "ecx");
}
static void do_read_fs(uptr off) {
  u32 v;
  __asm__ volatile("mov %1, %%fs; movl %%fs:(%2), %0; mov %3, %%fs" : "=r"(v) : "r"((u16)SEL_LIMITED), "r"(off), "r"((u16)UDATA));
}
static void do_read_expdown(uptr off) {
  u32 v;
  __asm__ volatile("mov %1, %%fs; movl %%fs:(%2), %0; mov %3, %%fs" : "=r"(v) : "r"((u16)SEL_EXPDOWN), "r"(off), "r"((u16)UDATA));
}
static void do_write_readonly(uptr off) {
  __asm__ volatile("mov %0, %%fs; movl $1, %%fs:(%1); mov %2, %%fs" : : "r"((u16)SEL_READONLY), "r"(off), "r"((u16)UDATA) : "memory");
}
static void do_read_xonly(uptr off) {
  u32 v;
  __asm__ volatile("mov %1, %%fs; movl %%fs:(%2), %0; mov %3, %%fs" : "=r"(v) : "r"((u16)SEL_XONLY), "r"(off), "r"((u16)UDATA));
}
static volatile u8 port_value;
static void do_inb(uptr port) { port_value = inb((u16)port); }
static void do_outb(uptr port) { outb((u16)port, 'x'); }

/* ------------------------------------------------------------------ call gate target (CPL 0) */

static volatile u32 gate_seen[6]; /* cs, param0, param1, ss, old cs, old ss */
extern char gate_target[];
__asm__(
    ".text\n"
    "gate_target:\n"
    "  mov %cs, %eax\n  mov %eax, gate_seen\n"
    "  mov 8(%esp), %eax\n  mov %eax, gate_seen+4\n"   /* param 0 (old ESP pointed at it) */
    "  mov 12(%esp), %eax\n  mov %eax, gate_seen+8\n"  /* param 1 */
    "  mov %ss, %eax\n  mov %eax, gate_seen+12\n"
    "  mov 4(%esp), %eax\n  mov %eax, gate_seen+16\n"  /* caller's CS */
    "  mov 20(%esp), %eax\n  mov %eax, gate_seen+20\n" /* caller's SS */
    "  lret $8\n");

static void user_call_gate(uptr a) {
  (void)a;
  __asm__ volatile(
      "push $0x2222\n\t"
      "push $0x1111\n\t"
      "lcall $0x73, $0\n\t" /* the offset is ignored for a call gate */
      :
      :
      : "memory");
}

/* ------------------------------------------------------------------ user-mode bodies */

static volatile u32 user_results[4];
static void user_popf(uptr a) {
  (void)a;
  u32 before, after;
  __asm__ volatile("pushf; pop %0" : "=r"(before));
  /* Try to set IOPL 3 and clear IF: at CPL 3 with IOPL 0 both are silently ignored. */
  __asm__ volatile("pushf; pop %%eax; or $0x3000, %%eax; and $~0x200, %%eax; push %%eax; popf; pushf; pop %0"
                   : "=r"(after)
                   :
                   : "eax", "cc");
  user_results[0] = before;
  user_results[1] = after;
}
static void user_lar(uptr a) {
  (void)a;
  u32 v, zf;
  __asm__ volatile("lar %2, %0; setz %b1; movzbl %b1, %1" : "=r"(v), "=q"(zf) : "r"((u32)UCODE));
  user_results[0] = v;
  user_results[1] = zf;
  __asm__ volatile("mov $0x5a5a5a5a, %0; lar %2, %0; setz %b1; movzbl %b1, %1" : "=r"(v), "=q"(zf) : "r"((u32)KCODE));
  user_results[2] = v; /* unchanged: LAR of a DPL-0 segment from CPL 3 fails */
  user_results[3] = zf;
}

/* ------------------------------------------------------------------ virtual-8086 mode */

/* 16-bit code copied to linear 0x8000 (CS = 0x0800): mov ax, 0x1234; int 0x30 ... ; at 0x10: cli */
static const u8 v86_code[] = {0xb8, 0x34, 0x12, 0xcd, 0x30, 0xf4};
static volatile u32 v86_eflags, v86_eip;
void enter_v86(uptr);
__asm__(
    ".text\n"
    "enter_v86:\n" /* iret from CPL 0 into virtual-8086 mode */
    "  pushl $0\n  pushl $0\n" /* GS, FS */
    "  pushl $0x0900\n  pushl $0x0a00\n" /* DS, ES */
    "  pushl $0x0900\n  pushl $0x0ff0\n" /* SS, ESP */
    "  pushl v86_eflags\n"
    "  pushl $0x0800\n"
    "  pushl v86_eip\n"
    "  iret\n");

/* ------------------------------------------------------------------ SYSENTER/SYSEXIT */

static volatile u32 sysenter_cs, sysenter_ss;
extern char sysenter_entry[], sysexit_back[];
__asm__(
    ".text\n"
    "sysenter_entry:\n"
    "  mov %cs, %eax\n  mov %eax, sysenter_cs\n"
    "  mov %ss, %eax\n  mov %eax, sysenter_ss\n"
    "  mov $sysexit_back, %edx\n"
    "  sysexit\n");
static void user_sysenter(uptr a) {
  (void)a;
  __asm__ volatile(
      "mov %%esp, %%ecx\n\t"
      "sysenter\n"
      "sysexit_back:\n\t"
      "mov %%cs, %%eax\n\t"
      "mov %%eax, user_results\n\t"
      :
      :
      : "eax", "ecx", "edx", "memory");
}

u32 kmain(u32 magic, struct multiboot_info *info) {
  (void)magic;
  (void)info;
  harness_init();

  gdt_set(SEL_LIMITED, seg_desc(0, 0xfff, 0x92, 0x4));
  gdt_set(SEL_NOTPRESENT, seg_desc(0, 0xfffff, 0x72, 0xc));
  gdt_set(SEL_EXPDOWN, seg_desc(0, 0xfff, 0x96, 0x4));
  gdt_set(SEL_READONLY, seg_desc(0, 0xfffff, 0x90, 0xc));
  gdt_set(SEL_XONLY, seg_desc(0, 0xfffff, 0x98, 0xc));
  gdt_set(SEL_CONFORMING, seg_desc(0, 0xfffff, 0x9e, 0xc));
  uptr gt = (uptr)gate_target;
  gdt_set(SEL_CALLGATE, (gt & 0xffff) | ((u64)KCODE << 16) | ((u64)(0xec00 | 2) << 32) | ((u64)(gt >> 16) << 48));
  gdt_set(SEL_SYSENTER, seg_desc(0, 0xfffff, 0x9a, 0xc));
  gdt_set(SEL_SYSENTER + 8, seg_desc(0, 0xfffff, 0x92, 0xc));
  gdt_set(SEL_SYSENTER + 16, seg_desc(0, 0xfffff, 0xfa, 0xc));
  gdt_set(SEL_SYSENTER + 24, seg_desc(0, 0xfffff, 0xf2, 0xc));

  /* Exceptions and their saved EIP: faults point at the instruction, traps after it. */
  EQ("#UD vector", try_call(probe_ud2, 0), 6);
  EQ("#UD saves the faulting EIP", trap.ip, (uptr)ud2_insn);
  EQ("INT3 vector", try_call(probe_int3, 0), 3);
  EQ("INT3 saves the next EIP", trap.ip, (uptr)int3_next);
  expect_trap("#DE on divide by zero", do_div0, 0, 0, ~0u);
  EQ("INT 0x80 at CPL 0", try_call(probe_int80, 0), 0x80);
  EQ("INT 0x80 saves the next EIP", trap.ip, (uptr)int80_next);
  EQ("INT 0x80 trap gate keeps IF as it was", trap.flags & 0x200, read_flags() & 0x200);

  /* Ring 3. */
  EQ("INT 0x80 from CPL 3", try_user(do_int, 0x80), 0x80);
  EQ("  frame CS is the user selector", trap.cs, UCODE);
  EQ("  frame SS is the user selector", trap.ss, UDATA);
  CHECK("  frame ESP is on the user stack", trap.sp > 0 && trap.sp != 0);
  expect_user_trap("INT 0x40 (DPL 0 gate) from CPL 3: #GP(0x40*8+2)", do_int, 0x40, 13, 0x40 * 8 + 2);
  EQ("  the #GP reports the INT instruction (a fault)", (try_user(probe_int40, 0), trap.ip), (uptr)int40_insn);
  expect_user_trap("CLI at CPL 3, IOPL 0: #GP(0)", do_cli, 0, 13, 0);
  expect_user_trap("HLT at CPL 3: #GP(0)", do_hlt, 0, 13, 0);
  expect_user_trap("MOV DS, DPL-0 data at CPL 3: #GP(sel)", do_load_ds, KDATA, 13, KDATA);
  expect_user_trap("MOV DS, not-present: #NP(sel)", do_load_ds, SEL_NOTPRESENT | 3, 11, SEL_NOTPRESENT);
  expect_user_trap("MOV DS, beyond the GDT limit: #GP(sel)", do_load_ds, 0xfff8 | 3, 13, 0xfff8);
  expect_user_trap("IN from a port the bitmap denies: #GP(0)", do_inb, 0x80, 13, 0);
  EQ("OUT to a port the bitmap allows", try_user(do_outb, 0x70), NO_TRAP);
  EQ("POPF at CPL 3 runs", try_user(user_popf, 0), NO_TRAP);
  EQ("  cannot change IOPL", user_results[1] & 0x3000, user_results[0] & 0x3000);
  EQ("  cannot change IF", user_results[1] & 0x200, user_results[0] & 0x200);
  EQ("LAR at CPL 3 runs", try_user(user_lar, 0), NO_TRAP);
  /* Bits 19:16 (limit) are undefined per the SDM; the accessed bit is set since CS was loaded. */
  EQ("  LAR of user code: access rights", user_results[0] & 0x00f0ff00, 0x00c0fb00);
  EQ("  ZF=1", user_results[1], 1);
  EQ("  LAR of DPL-0 code leaves the destination", user_results[2], 0x5a5a5a5a);
  EQ("  ZF=0", user_results[3], 0);

  /* Call gate with parameter copy. */
  EQ("far call through a call gate from CPL 3", try_user(user_call_gate, 0), NO_TRAP);
  EQ("  handler runs at CPL 0", gate_seen[0], KCODE);
  EQ("  parameter 0 copied", gate_seen[1], 0x1111);
  EQ("  parameter 1 copied", gate_seen[2], 0x2222);
  EQ("  stack switched to SS0", gate_seen[3], KDATA);
  EQ("  caller's CS pushed", gate_seen[4], UCODE);
  EQ("  caller's SS pushed", gate_seen[5], UDATA);

  /* Segment limits and types (CPL 0). */
  CHECK("read at the limit", try_call(do_read_fs, 0xffc) == NO_TRAP);
  expect_trap("read past the limit: #GP(0)", do_read_fs, 0xffd, 13, 0);
  CHECK("expand-down: read above the limit", try_call(do_read_expdown, 0x1000) == NO_TRAP);
  expect_trap("expand-down: read at the limit: #GP(0)", do_read_expdown, 0xffc, 13, 0);
  expect_trap("write to read-only data: #GP(0)", do_write_readonly, 0x100000, 13, 0);
  expect_trap("MOV FS, execute-only code: #GP(sel)", do_read_xonly, 0x100000, 13, SEL_XONLY);
  expect_trap("MOV SS, read-only data: #GP(sel)", do_load_ss, SEL_READONLY, 13, SEL_READONLY);
  {
    u32 limit, zf;
    __asm__ volatile("lsl %2, %0; setz %b1; movzbl %b1, %1" : "=r"(limit), "=q"(zf) : "r"((u32)SEL_LIMITED));
    EQ("LSL of a byte-granular segment", limit, 0xfff);
    __asm__ volatile("lsl %2, %0; setz %b1; movzbl %b1, %1" : "=r"(limit), "=q"(zf) : "r"((u32)KDATA));
    EQ("LSL of a page-granular segment", limit, 0xffffffff);
    u32 r;
    __asm__ volatile("verr %1; setz %b0; movzbl %b0, %0" : "=q"(r) : "r"((u16)SEL_XONLY));
    EQ("VERR of execute-only code: ZF=0", r, 0);
    __asm__ volatile("verr %1; setz %b0; movzbl %b0, %0" : "=q"(r) : "r"((u16)SEL_CONFORMING));
    EQ("VERR of readable conforming code: ZF=1", r, 1);
    __asm__ volatile("verw %1; setz %b0; movzbl %b0, %0" : "=q"(r) : "r"((u16)SEL_READONLY));
    EQ("VERW of read-only data: ZF=0", r, 0);
    __asm__ volatile("verw %1; setz %b0; movzbl %b0, %0" : "=q"(r) : "r"((u16)KDATA));
    EQ("VERW of writable data: ZF=1", r, 1);
  }

  /* #DF: a #GP whose gate is not present raises #NP while delivering it (contributory twice). */
  {
    struct __attribute__((packed)) { u16 limit; u32 base; } idtr;
    __asm__ volatile("sidt %0" : "=m"(idtr));
    volatile u32 *gate = (volatile u32 *)(uptr)(idtr.base + 13 * 8 + 4);
    *gate &= ~0x8000u;
    u32 v = try_call(do_load_ds, KDATA + 0x1000);
    *gate |= 0x8000u;
    EQ("#GP through a not-present gate becomes #DF", v, 8);
    EQ("  #DF error code is 0", trap.error, 0);
  }

  /* Virtual-8086 mode (SDM ch. 20): entered by IRET at CPL 0, left through a DPL-0 gate. */
  memcpy((void *)0x8000, v86_code, sizeof v86_code);
  *(u8 *)0x8010 = 0xfa; /* cli */
  idt_set(0x30, trap_stubs[0x30], KCODE, 0xe, 3, 0);
  v86_eflags = 0x20000 | 0x3000 | 0x2; /* VM, IOPL 3 */
  v86_eip = 0;
  EQ("v86: INT 0x30 at IOPL 3 leaves through the IDT", try_call(enter_v86, 0), 0x30);
  EQ("  the 16-bit code ran (AX)", trap.ax & 0xffff, 0x1234);
  EQ("  frame CS:IP", (trap.cs << 16) | trap.ip, (0x0800u << 16) | 5);
  EQ("  frame EFLAGS has VM", trap.flags & 0x20000, 0x20000);
  EQ("  frame SS:SP", (trap.ss << 16) | trap.sp, (0x0900u << 16) | 0x0ff0);
  EQ("  frame DS and ES (pushed for v86 only)", (trap.v86_ds << 16) | trap.v86_es, (0x0900u << 16) | 0x0a00);
  v86_eflags = 0x20000 | 0x2; /* VM, IOPL 0 */
  v86_eip = 0x10;
  EQ("v86: CLI at IOPL 0 is #GP", try_call(enter_v86, 0), 13);
  EQ("  error code 0", trap.error, 0);
  EQ("  at the CLI", (trap.cs << 16) | trap.ip, (0x0800u << 16) | 0x10);
  idt_reset(0x30);

  /* SYSENTER/SYSEXIT (flat segments at SYSENTER_CS and the three following it). */
  wrmsr(0x174, SEL_SYSENTER);
  wrmsr(0x175, (uptr)kernel_trap_stack_top);
  wrmsr(0x176, (uptr)sysenter_entry);
  EQ("SYSENTER from CPL 3 and SYSEXIT back", try_user(user_sysenter, 0), NO_TRAP);
  EQ("  SYSENTER loads CS = SYSENTER_CS", sysenter_cs, SEL_SYSENTER);
  EQ("  and SS = SYSENTER_CS + 8", sysenter_ss, SEL_SYSENTER + 8);
  EQ("  SYSEXIT loads CS = SYSENTER_CS + 16, RPL 3", user_results[0], (SEL_SYSENTER + 16) | 3);
  return finish();
}
