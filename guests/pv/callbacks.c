/* Callbacks: callback_op and nmi_op as Xen checks them, virtual NMIs (VCPUOP_send_nmi) with
 * Xen's masking rule, and the failsafe callback (a bad selector on return to the guest). */
#include "runtime/pv.h"
#include <xen/nmi.h>

#define ENOSYS 38
#define EINVAL 22
#define EFAULT 14
#define ENOENT 2

extern char trap_2[], failsafe_test[];
/* Filled by failsafe_test: DS ES FS GS, the CS word (CS | mask << 16/32), count. */
volatile unsigned long fs_seen[5];
volatile unsigned long fs_count;
static volatile unsigned long nmi_count, nmi_mask_seen, resume_at;

#ifdef __x86_64__
asm(".text\n"
    "failsafe_test:\n"
    "  popq %rcx\n"
    "  popq %r11\n"
    "  pushq %rax\n"
    "  movq 8(%rsp), %rax\n  movq %rax, fs_seen(%rip)\n"
    "  movq 16(%rsp), %rax\n  movq %rax, fs_seen+8(%rip)\n"
    "  movq 24(%rsp), %rax\n  movq %rax, fs_seen+16(%rip)\n"
    "  movq 32(%rsp), %rax\n  movq %rax, fs_seen+24(%rip)\n"
    "  movq 48(%rsp), %rax\n  movq %rax, fs_seen+32(%rip)\n"
    "  incq fs_count(%rip)\n"
    "  popq %rax\n"
    "  addq $32, %rsp\n"
    "  orb $3, 8(%rsp)\n"
    "  iretq\n");
#else
asm(".text\n"
    "failsafe_test:\n"
    "  pushl %eax\n"
    "  movl 4(%esp), %eax\n  movl %eax, fs_seen\n"
    "  movl 8(%esp), %eax\n  movl %eax, fs_seen+4\n"
    "  movl 12(%esp), %eax\n  movl %eax, fs_seen+8\n"
    "  movl 16(%esp), %eax\n  movl %eax, fs_seen+12\n"
    "  movl 24(%esp), %eax\n  movl %eax, fs_seen+16\n"
    "  incl fs_count\n"
    "  movl $0xe019, 24(%esp)\n" /* return with the kernel's CS whatever was asked for */
    "  popl %eax\n"
    "  addl $16, %esp\n"
    "  iret\n");
#endif

/* HYPERVISOR_iret back to the next instruction, in kernel mode, with events masked or not. */
static void xen_iret_here(int events_on) {
#ifdef __x86_64__
  unsigned long fl = events_on ? 0x202 : 0x2;
  asm volatile("movq %%rsp, %%rdx\n"
               "pushq $0xe02b\n"
               "pushq %%rdx\n"
               "pushq %0\n"
               "pushq $0xe030\n"
               "leaq 1f(%%rip), %%rdx\n"
               "pushq %%rdx\n"
               "pushq $0\n"
               "pushq %%rcx\n"
               "pushq %%r11\n"
               "pushq %%rax\n"
               "movl $23, %%eax\n"
               "syscall\n"
               "1:" ::"r"(fl)
               : "rax", "rcx", "rdx", "r11", "memory");
#else
  unsigned long fl = events_on ? 0x202 : 0x2;
  asm volatile("pushl %0\n"
               "pushl $0xe019\n"
               "pushl $1f\n"
               "pushl %%eax\n"
               "movl $23, %%eax\n"
               "int $0x82\n"
               "1:" ::"r"(fl)
               : "eax", "memory");
#endif
}

static void nmi_handler(struct regs *r) {
  (void)r;
  nmi_count++;
  nmi_mask_seen = shared->vcpu_info[0].evtchn_upcall_mask;
}

__attribute__((unused)) static void record(struct regs *r) {
  fs_seen[0] = r->vector;
  fs_seen[1] = r->error;
  fs_seen[2] = REG_IP(r);
#ifdef __x86_64__
  r->cs = 0xe030;
#endif
  REG_IP(r) = resume_at;
}

static long send_nmi(unsigned vcpu, void *arg) { return HC(__HYPERVISOR_vcpu_op, VCPUOP_send_nmi, vcpu, arg, 0, 0); }

static long cb_register(unsigned type, unsigned flags, void *addr) {
  struct callback_register cb;
  memset(&cb, 0, sizeof cb);
  cb.type = (uint16_t)type;
  cb.flags = (uint16_t)flags;
#ifdef __x86_64__
  cb.address = (unsigned long)addr;
#else
  cb.address.cs = FLAT_KERNEL_CS;
  cb.address.eip = (unsigned long)addr;
#endif
  return HC(__HYPERVISOR_callback_op, CALLBACKOP_register, &cb, 0, 0, 0);
}
static long cb_unregister(unsigned type) {
  struct callback_unregister cb = {.type = (uint16_t)type};
  return HC(__HYPERVISOR_callback_op, CALLBACKOP_unregister, &cb, 0, 0, 0);
}

static char ldtpage[4096] __attribute__((aligned(4096)));
static long update_desc(uint64_t maddr, uint64_t desc) {
#ifdef __x86_64__
  return HC(__HYPERVISOR_update_descriptor, maddr, desc, 0, 0, 0);
#else
  return HC(__HYPERVISOR_update_descriptor, (uint32_t)maddr, (uint32_t)(maddr >> 32), (uint32_t)desc, (uint32_t)(desc >> 32), 0);
#endif
}

void test_main(void) {
  vcpu_info_t *vi = &shared->vcpu_info[0];
  install_traps();
  on_trap(2, nmi_handler);

  /* ---- callback_op and nmi_op: Xen's error numbers. */
  check(cb_register(99, 0, trap_2) == -ENOSYS, "callback_op register of an unknown type: -ENOSYS");
  check(cb_unregister(CALLBACKTYPE_event) == -EINVAL, "callback_op unregister of the event callback: -EINVAL");
  check(cb_unregister(CALLBACKTYPE_failsafe) == -EINVAL, "callback_op unregister of the failsafe callback: -EINVAL");
  check(cb_unregister(99) == -ENOSYS, "callback_op unregister of an unknown type: -ENOSYS");
  check(HC(__HYPERVISOR_callback_op, 7, 0, 0, 0, 0) == -ENOSYS, "callback_op unknown command: -ENOSYS");
  check(HC(__HYPERVISOR_callback_op, CALLBACKOP_register, (void *)8, 0, 0, 0) == -EFAULT, "callback_op from a bad pointer: -EFAULT");
#ifdef __x86_64__
  check(cb_register(CALLBACKTYPE_event, 0, (void *)0x0000800000000000UL) == -EINVAL, "a non-canonical callback address: -EINVAL");
  check(cb_unregister(CALLBACKTYPE_syscall) == -EINVAL, "callback_op unregister of the syscall callback: -EINVAL");
  struct xennmi_callback bad = {.handler_address = 0x0000800000000000UL};
  check(HC(__HYPERVISOR_nmi_op, XENNMI_register_callback, &bad, 0, 0, 0) == -EINVAL, "nmi_op with a non-canonical handler: -EINVAL");
#else
  check(cb_register(CALLBACKTYPE_syscall, 0, trap_2) == -ENOSYS, "callback_op syscall on a 32-bit guest: -ENOSYS");
#endif
  check(HC(__HYPERVISOR_nmi_op, XENNMI_register_callback, (void *)8, 0, 0, 0) == -EFAULT, "nmi_op from a bad pointer: -EFAULT");
  check(HC(__HYPERVISOR_nmi_op, 7, 0, 0, 0, 0) == -ENOSYS, "nmi_op unknown command: -ENOSYS");
  check(send_nmi(0, (void *)(unsigned long)&fs_seen[0]) == -EINVAL, "VCPUOP_send_nmi with an argument: -EINVAL");
  check(send_nmi(7, 0) == -ENOENT, "VCPUOP_send_nmi to a vCPU that does not exist: -ENOENT");

  /* ---- NMIs. */
  struct xennmi_callback cb = {.handler_address = (unsigned long)trap_2};
  check(HC(__HYPERVISOR_nmi_op, XENNMI_register_callback, &cb, 0, 0, 0) == 0, "nmi_op register");
  vi->evtchn_upcall_mask = 0;
  check(send_nmi(0, 0) == 0 && nmi_count == 1, "VCPUOP_send_nmi: the NMI callback runs on the way back");
  check(nmi_mask_seen == 1, "the NMI callback runs with events masked");
  vi->evtchn_upcall_mask = 1;
  send_nmi(0, 0);
  check(nmi_count == 1, "a second NMI before HYPERVISOR_iret: held (NMIs masked)");
  xen_iret_here(0);
  check(nmi_count == 2, "HYPERVISOR_iret ends the NMI: the held one is delivered");
  xen_iret_here(0);
  check(HC(__HYPERVISOR_nmi_op, XENNMI_unregister_callback, 0, 0, 0, 0) == 0, "nmi_op unregister");
  check(send_nmi(0, 0) == 0 && nmi_count == 2, "an NMI with no callback is dropped");
  check(cb_register(CALLBACKTYPE_nmi, 0, trap_2) == 0 && nmi_count == 2, "callback_op registers the NMI callback; the dropped NMI stays dropped");
  send_nmi(0, 0);
  check(nmi_count == 3, "an NMI through the callback_op registration");
  xen_iret_here(0);
  check(cb_unregister(CALLBACKTYPE_nmi) == 0, "callback_op unregister of the NMI callback");

  /* ---- the failsafe callback. */
  check(cb_register(CALLBACKTYPE_failsafe, 0, failsafe_test) == 0, "register the failsafe callback");
#ifdef __x86_64__
  /* A 64-bit HYPERVISOR_iret to a bad CS faults in the guest, at the context asked for. */
  on_trap(13, record);
  unsigned long rax;
  asm volatile("leaq 2f(%%rip), %%rdx\n"
               "movq %%rdx, resume_at(%%rip)\n"
               "movq %%rsp, %%rdx\n"
               "pushq $0xe02b\n"
               "pushq %%rdx\n"
               "pushq $0x2\n"
               "pushq $0x8\n"
               "leaq 1f(%%rip), %%rdx\n"
               "pushq %%rdx\n"
               "pushq $0\n"
               "pushq %%rcx\n"
               "pushq %%r11\n"
               "pushq $0x1234\n"
               "movl $23, %%eax\n"
               "syscall\n"
               "1: nop\n"
               "2:"
               : "=a"(rax)::"rcx", "rdx", "r11", "memory");
  check(fs_seen[0] == 13 && fs_seen[1] == 8 && rax == 0x1234, "64-bit iret to CS 0x8 (no descriptor): #GP(0x8) in the guest, RAX restored");
#else
  /* A compat HYPERVISOR_iret to a CS that cannot be loaded: the failsafe callback. */
  unsigned long eax;
  asm volatile("pushl $0x2\n"
               "pushl $0x9\n"
               "pushl $1f\n"
               "pushl $0x1234\n"
               "movl $23, %%eax\n"
               "int $0x82\n"
               "1:"
               : "=a"(eax)::"memory");
  check(fs_count == 1 && (fs_seen[4] & 0xffff) == 9 && eax == 0x1234,
        "compat iret to CS 0x9 (no descriptor): the failsafe callback with the CS asked for, EAX restored");
  check((fs_seen[4] >> 16) == 1 && fs_seen[0] == 0xe021, "failsafe frame: upcall mask in CS bits 16-23, DS in the lowest slot");
  fs_count = 0;
#endif
  /* A data segment whose descriptor goes away: the failsafe callback on the way back. */
  memset(ldtpage, 0, sizeof ldtpage);
  ((uint64_t *)ldtpage)[1] = 0x00cff2000000ffffULL; /* flat data, DPL 3 */
  unsigned long lmfn = virt_to_mfn(ldtpage);
  check(map_page(ldtpage, lmfn, 1) == 0, "LDT page read-only");
  struct mmuext_op op;
  memset(&op, 0, sizeof op);
  op.cmd = MMUEXT_SET_LDT;
  op.arg1.linear_addr = (unsigned long)ldtpage;
  op.arg2.nr_ents = 2;
  check(HC(__HYPERVISOR_mmuext_op, &op, 1, 0, DOMID_SELF, 0) == 0, "MMUEXT_SET_LDT");
  unsigned sel = 0x0f, fsnow;
  asm volatile("movl %0, %%fs" ::"r"(sel));
  asm volatile("movl %%fs, %0" : "=r"(fsnow));
  check(fsnow == 0x0f, "FS loaded from the LDT");
  check(update_desc(((uint64_t)lmfn << 12) + 8, 0x00cf72000000ffffULL) == 0, "make the descriptor not present");
  asm volatile("movl %%fs, %0" : "=r"(fsnow));
  check(fs_count == 1 && fs_seen[2] == 0x0f, "the failsafe callback ran with FS 0x0f in its frame");
#ifdef __x86_64__
  check(fs_seen[0] == 0 && (fs_seen[4] & 0xffff) == 0xe030 && (fs_seen[4] >> 32) == 1,
        "64-bit failsafe frame: DS ES FS GS, CS with RPL 0 and the upcall mask in bits 32-39");
#else
  check(fs_seen[0] == 0xe021 && (fs_seen[4] & 0xffff) == 0xe019 && (fs_seen[4] >> 16) == 1,
        "32-bit failsafe frame: DS ES FS GS, CS with the upcall mask in bits 16-23");
#endif
  check(fsnow == 0, "the selector that could not be reloaded is null afterwards");
}
