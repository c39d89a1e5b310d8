/* A guest whose trap bounce lands on an unmapped kernel stack: Xen cannot write the exception
 * frame, so it crashes the domain (with the reason logged) and nothing else is disturbed.
 *
 * Default: a trap table is registered, stack_switch points the kernel stack at an unmapped
 * address, the guest drops to user mode and executes ud2; the #UD must be bounced onto the
 * kernel stack from stack_switch.
 * where=kernel: the same #UD in kernel mode with the stack pointer itself on the unmapped page
 * (the bounce frame goes on the current stack). */
#include "runtime/pv.h"

static char ucode[4096] __attribute__((aligned(4096)));
static char ustack[4096] __attribute__((aligned(4096)));
/* Far above the domain's few MiB: never mapped. */
#define UNMAPPED (VIRT_BASE + 0x1800000UL)

static void reached(struct regs *r) {
  printf("not reached: trap %lu was delivered\n", (unsigned long)r->vector);
  shutdown(SHUTDOWN_poweroff);
}

void test_main(void) {
  install_traps();
  for (int v = 0; v < 20; v++) on_trap(v, reached);
  if (strncmp((const char *)start_info->cmd_line, "where=kernel", 12) == 0) {
    print("ud2 in kernel mode with the stack on an unmapped page\n");
#ifdef __x86_64__
    asm volatile("movq %0, %%rsp; ud2" ::"r"(UNMAPPED) : "memory");
#else
    asm volatile("movl %0, %%esp; ud2" ::"r"(UNMAPPED) : "memory");
#endif
    print("not reached\n");
    return;
  }
  static const unsigned char code[] = {0x0f, 0x0b, 0xeb, 0xfe}; /* ud2; jmp . */
  memcpy(ucode, code, sizeof code);
  if (map_page(ucode, virt_to_mfn(ucode), 7) || map_page(ustack, virt_to_mfn(ustack), 7)) {
    print("mapping the user pages failed\n");
    shutdown(SHUTDOWN_poweroff);
  }
  if (HC(__HYPERVISOR_stack_switch, FLAT_KERNEL_SS, UNMAPPED, 0, 0, 0) != 0) {
    print("stack_switch failed\n");
    shutdown(SHUTDOWN_poweroff);
  }
  print("ud2 in user mode with the kernel stack (stack_switch) on an unmapped page\n");
  unsigned long usp = (unsigned long)ustack + 4096, uip = (unsigned long)ucode;
#ifdef __x86_64__
  struct mmuext_op op;
  memset(&op, 0, sizeof op);
  op.cmd = MMUEXT_NEW_USER_BASEPTR;
  op.arg1.mfn = virt_to_mfn((void *)start_info->pt_base);
  HC(__HYPERVISOR_mmuext_op, &op, 1, 0, DOMID_SELF, 0);
  /* HYPERVISOR_iret to user mode: {rax, r11, rcx, flags, rip, cs, rflags, rsp, ss}. */
  asm volatile(
      "pushq $0xe02b; pushq %0; pushq $0x202; pushq $0xe033; pushq %1; pushq $0; pushq $0; pushq $0; pushq $0;"
      "movl $23, %%eax; syscall" ::"r"(usp),
      "r"(uip)
      : "memory");
#else
  asm volatile("pushl $0xe033; pushl %0; pushl $0x202; pushl $0xe02b; pushl %1; iret" ::"r"(usp), "r"(uip) : "memory");
#endif
  print("not reached\n");
}
