/* Exceptions and their bounce frames, the forced-emulation CPUID, privileged instructions. */
#include "runtime/pv.h"

volatile unsigned long seen_vec, seen_err, seen_cr2, seen_ip, resume_at, pt_target;

static void record(struct regs *r) {
  seen_vec = r->vector;
  seen_err = r->error;
  seen_ip = REG_IP(r);
  REG_IP(r) = resume_at;
}
static void pf(struct regs *r) {
#ifdef __x86_64__
  seen_cr2 = shared->vcpu_info[0].arch.cr2;
#else
  seen_cr2 = shared->vcpu_info[0].arch.cr2;
#endif
  record(r);
}

/* Runs one instruction that should trap; the handler resumes after it (label 9). */
#ifdef __x86_64__
#define SETRESUME "leaq 9f(%%rip), %%r11; movq %%r11, resume_at(%%rip);"
#define XCLOB "r11", "memory"
#else
#define SETRESUME "movl $9f, resume_at;"
#define XCLOB "memory"
#endif
#define EXPECT(insn, ...)                                   \
  do {                                                      \
    seen_vec = 999;                                         \
    asm volatile(SETRESUME insn "\n9:" ::: __VA_ARGS__);    \
  } while (0)

void test_main(void) {
  install_traps();
  for (int v = 0; v < 20; v++) on_trap(v, record);
  on_trap(14, pf);

  EXPECT("movl 0, %%eax", "eax", XCLOB);
  check(seen_vec == 14 && seen_cr2 == 0 && seen_err == 0, "NULL read: #PF, cr2 0 in vcpu_info, error code 0 (kernel, read, not present)");
  EXPECT("movl $1, 0", XCLOB);
  check(seen_vec == 14 && seen_cr2 == 0 && seen_err == 2, "NULL write: #PF with error code 2");
  pt_target = start_info->pt_base;
#ifdef __x86_64__
  EXPECT("movq pt_target(%%rip), %%rax; movl $1, (%%rax)", "rax", XCLOB);
#else
  EXPECT("movl pt_target, %%eax; movl $1, (%%eax)", "eax", XCLOB);
#endif
  check(seen_vec == 14 && seen_cr2 == start_info->pt_base && seen_err == 3, "write to a page table: #PF (present, write)");
  EXPECT("int3", XCLOB);
  check(seen_vec == 3, "int3: #BP");
  EXPECT("ud2", XCLOB);
  check(seen_vec == 6, "ud2: #UD");
  EXPECT("xorl %%edx, %%edx; divl %%edx", "eax", "edx", XCLOB);
  check(seen_vec == 0, "divide by zero: #DE");
  EXPECT("cli", XCLOB);
  check(seen_vec == 13 && seen_err == 0, "cli at virtual IOPL 0: #GP(0)");
  EXPECT("hlt", XCLOB);
  check(seen_vec == 13, "hlt: #GP");
  EXPECT("int $0x40", XCLOB);
  check(seen_vec == 13 && seen_err == ((0x40 << 3) | 2), "int $0x40 with no gate: #GP((0x40<<3)|2)");
  EXPECT("inb $0x80, %%al", "eax", XCLOB);
  check(seen_vec == 13, "in at virtual IOPL 0: #GP");

  struct physdev_set_iopl io = {.iopl = 1};
  check(HC(__HYPERVISOR_physdev_op, PHYSDEVOP_set_iopl, &io, 0, 0, 0) == 0, "set_iopl 1");
  seen_vec = 999;
  asm volatile("cli; sti");
  unsigned char in;
  asm volatile("inb $0x80, %0" : "=a"(in));
  check(seen_vec == 999 && in == 0xff, "cli/sti and in under virtual IOPL 1: emulated, port reads all ones");

  unsigned long cr0, cr3;
  asm volatile("mov %%cr0, %0" : "=r"(cr0));
  asm volatile("mov %%cr3, %0" : "=r"(cr3));
  check((cr0 & 0x80000001) == 0x80000001, "mov from cr0 emulated (PG|PE)");
#ifdef __x86_64__
  check(cr3 >> 12 == virt_to_mfn((void *)start_info->pt_base), "mov from cr3: the top table's MFN");
#else
  check(((cr3 >> 12) | (cr3 << 20)) == virt_to_mfn((void *)start_info->pt_base), "mov from cr3: the top table's MFN (extended format)");
#endif
  HC(__HYPERVISOR_fpu_taskswitch, 1, 0, 0, 0, 0);
  asm volatile("mov %%cr0, %0" : "=r"(cr0));
  check(cr0 & 8, "fpu_taskswitch(1) sets the virtual CR0.TS");
  asm volatile("clts");
  asm volatile("mov %%cr0, %0" : "=r"(cr0));
  check(!(cr0 & 8), "clts clears it");

  uint32_t a = 0, b, c = 0, d;
  asm volatile("ud2; .ascii \"xen\"; cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
  uint32_t a2 = 0, b2, c2 = 0, d2;
  asm volatile("cpuid" : "+a"(a2), "=b"(b2), "+c"(c2), "=d"(d2));
  check(seen_vec == 999 && b == b2 && c == c2 && d == d2 && a == a2, "ud2;\"xen\";cpuid: emulated, same as plain CPUID");
  uint32_t lo, hi;
  EXPECT("movl $0x1234, %%ecx; rdmsr", "eax", "ecx", "edx", XCLOB);
  check(seen_vec == 13, "rdmsr of an unknown MSR: #GP");
  seen_vec = 999;
  asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(0x277));
  check(seen_vec == 999 && lo == 0x00070406 && hi == 0x00000501, "rdmsr PAT: Xen's PAT");
#ifdef __x86_64__
  asm volatile("wrmsr" ::"c"(0xc0000100), "a"(0x5000), "d"(0));
  asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(0xc0000100));
  check(lo == 0x5000, "wrmsr/rdmsr FS_BASE");
#endif
}
