/* User mode and back: into ring 3 (32-bit: native iret; 64-bit: HYPERVISOR_iret with a user
 * page table), back through a DPL-3 software interrupt, a user SYSCALL (64-bit), and a #GP for
 * an interrupt the guest did not open to user mode. */
#include "runtime/pv.h"

static char ucode[4096] __attribute__((aligned(4096)));
static char ustack[4096] __attribute__((aligned(4096)));
static char kstack[8192] __attribute__((aligned(16)));
static volatile int stage;

#ifdef __x86_64__
#define USER_CS 0xe033
#define USER_SS 0xe02b
/* mov $0x1234,%eax; syscall; int $0x80; int $0x81; jmp . */
static const unsigned char code[] = {0xb8, 0x34, 0x12, 0, 0, 0x0f, 0x05, 0xcd, 0x80, 0xcd, 0x81, 0xeb, 0xfe};
#else
#define USER_CS 0xe02b
#define USER_SS 0xe033
/* mov $0x1234,%eax; int $0x80; int $0x81; jmp . */
static const unsigned char code[] = {0xb8, 0x34, 0x12, 0, 0, 0xcd, 0x80, 0xcd, 0x81, 0xeb, 0xfe};
#endif

static void from_user(struct regs *r, const char *what) {
  check((r->cs & 0xffff) == USER_CS && (r->ss & 0xffff) == USER_SS, what);
}

__attribute__((unused)) static void sys(struct regs *r) {
  from_user(r, "user SYSCALL reaches the syscall callback with the user CS/SS in the frame");
  check(REG_AX(r) == 0x1234 && stage == 0, "user registers preserved");
  stage = 1;
}
static void int80(struct regs *r) {
  from_user(r, "int $0x80 (DPL 3) from user mode enters the kernel");
  check(REG_AX(r) == 0x1234, "with the user's registers");
  check(REG_SP(r) == (unsigned long)ustack + 4096, "and the user stack pointer in the frame");
  stage = 2;
}
static void gp(struct regs *r) {
  from_user(r, "int $0x81 (not open to user mode) from user: #GP from user");
  check(r->error == ((0x81 << 3) | 2) && stage == 2, "error code (0x81<<3)|2");
  finish();
}

void test_main(void) {
  install_traps();
  set_soft_int(0x80, 3, int80);
  set_soft_int(0x81, 0, 0);
  on_trap(13, gp);
  memcpy(ucode, code, sizeof code);
  check(map_page(ucode, virt_to_mfn(ucode), 7) == 0 && map_page(ustack, virt_to_mfn(ustack), 7) == 0,
        "user pages mapped with US");
  check(HC(__HYPERVISOR_stack_switch, FLAT_KERNEL_SS, kstack + sizeof kstack, 0, 0, 0) == 0, "stack_switch");
#ifdef __x86_64__
  extern char syscall_entry[];
  struct callback_register cb = {.type = CALLBACKTYPE_syscall, .address = (unsigned long)syscall_entry};
  check(HC(__HYPERVISOR_callback_op, CALLBACKOP_register, &cb, 0, 0, 0) == 0, "register the syscall callback");
  syscall_handler = sys;
  struct mmuext_op op;
  memset(&op, 0, sizeof op);
  op.cmd = MMUEXT_NEW_USER_BASEPTR;
  op.arg1.mfn = virt_to_mfn((void *)start_info->pt_base);
  check(HC(__HYPERVISOR_mmuext_op, &op, 1, 0, DOMID_SELF, 0) == 0, "NEW_USER_BASEPTR");
  unsigned long usp = (unsigned long)ustack + 4096, uip = (unsigned long)ucode;
  asm volatile(
      "pushq $0xe02b; pushq %0; pushq $0x202; pushq $0xe033; pushq %1; pushq $0; pushq $0; pushq $0; pushq $0;"
      "movl $23, %%eax; syscall" ::"r"(usp),
      "r"(uip)
      : "memory");
#else
  stage = 1;
  unsigned long usp = (unsigned long)ustack + 4096, uip = (unsigned long)ucode;
  asm volatile("pushl $0xe033; pushl %0; pushl $0x202; pushl $0xe02b; pushl %1; iret" ::"r"(usp), "r"(uip) : "memory");
#endif
  check(0, "not reached");
}
