/* SMP bring-up: VCPUOP_initialise / up / down / is_up on a second vCPU (vcpu_guest_context in
 * the guest's layout), register_vcpu_info, runstate info and area. Booted with 2 vCPUs. */
#include "runtime/pv.h"

#define ENOENT 2
#define EFAULT 14
#define EEXIST 17
#define EINVAL 22

static struct vcpu_guest_context ctxt;
static char ap_stack[8192] __attribute__((aligned(16)));
volatile unsigned long ap_sp;
static volatile unsigned long ap_ran, ap_back, ap_isup, ap_pending;
static char vipage[4096] __attribute__((aligned(4096)));
static char scratch[4096] __attribute__((aligned(4096)));
static struct vcpu_runstate_info rs;

static long vcpu_op(int cmd, unsigned id, void *arg) { return HC(__HYPERVISOR_vcpu_op, cmd, id, arg, 0, 0); }

void ap_main(void);
extern char ap_entry[];
#ifdef __x86_64__
asm(".text\n.globl ap_entry\nap_entry:\n  movq %rsp, ap_sp(%rip)\n  call ap_main\n1: jmp 1b\n");
#else
asm(".text\n.globl ap_entry\nap_entry:\n  movl %esp, ap_sp\n  call ap_main\n1: jmp 1b\n");
#endif

void ap_main(void) {
  ap_isup = (unsigned long)vcpu_op(VCPUOP_is_up, 1, 0);
  ap_ran = 1;
  vcpu_op(VCPUOP_down, 1, 0);
  /* Up again: the vcpu_info was moved while we were down. */
  ap_pending = ((volatile vcpu_info_t *)(vipage + 128))->evtchn_upcall_pending;
  ap_back = 1;
  vcpu_op(VCPUOP_down, 1, 0);
  for (;;) HC(__HYPERVISOR_sched_op, SCHEDOP_yield, 0, 0, 0, 0);
}

static void good_context(void) {
  unsigned long cr3;
  asm volatile("mov %%cr3, %0" : "=r"(cr3));
  memset(&ctxt, 0, sizeof ctxt);
  ctxt.flags = VGCF_in_kernel;
  ctxt.ctrlreg[3] = cr3;
  ctxt.kernel_sp = (unsigned long)ap_stack + sizeof ap_stack;
#ifdef __x86_64__
  ctxt.user_regs.rip = (unsigned long)ap_entry;
  ctxt.user_regs.rsp = (unsigned long)ap_stack + sizeof ap_stack;
  ctxt.user_regs.cs = FLAT_KERNEL_CS;
  ctxt.user_regs.ss = FLAT_KERNEL_SS;
  ctxt.user_regs.rflags = 0x202;
  ctxt.kernel_ss = FLAT_KERNEL_SS;
#else
  ctxt.user_regs.eip = (unsigned long)ap_entry;
  ctxt.user_regs.esp = (unsigned long)ap_stack + sizeof ap_stack;
  ctxt.user_regs.cs = FLAT_KERNEL_CS;
  ctxt.user_regs.ss = FLAT_KERNEL_SS;
  ctxt.user_regs.ds = FLAT_KERNEL_DS;
  ctxt.user_regs.es = FLAT_KERNEL_DS;
  ctxt.user_regs.eflags = 0x202;
  ctxt.kernel_ss = FLAT_KERNEL_SS;
#endif
}

static int wait_for(volatile unsigned long *flag) {
  for (int i = 0; i < 1000 && !*flag; i++) HC(__HYPERVISOR_sched_op, SCHEDOP_yield, 0, 0, 0, 0);
  return *flag != 0;
}

void test_main(void) {
  check(vcpu_op(VCPUOP_is_up, 0, 0) == 1 && vcpu_op(VCPUOP_is_up, 1, 0) == 0, "is_up: vCPU 0 up, vCPU 1 down");
  check(vcpu_op(VCPUOP_is_up, 2, 0) == -ENOENT, "is_up of vCPU 2 (the domain has 2): -ENOENT");
  check(vcpu_op(VCPUOP_up, 1, 0) == -EINVAL, "up before initialise: -EINVAL");
  check(vcpu_op(VCPUOP_down, 1, 0) == 0, "down of a vCPU that is down: 0");
  check(vcpu_op(VCPUOP_initialise, 1, (void *)8) == -EFAULT, "initialise from a bad pointer: -EFAULT");
  good_context();
  ctxt.gdt_ents = 7169;
  check(vcpu_op(VCPUOP_initialise, 1, &ctxt) == -EINVAL, "initialise with 7169 GDT entries: -EINVAL");
  good_context();
  ctxt.ctrlreg[3] = (unsigned long)virt_to_mfn(scratch) << 12;
#ifndef __x86_64__
  ctxt.ctrlreg[3] = xen_pfn_to_cr3(virt_to_mfn(scratch));
#endif
  check(vcpu_op(VCPUOP_initialise, 1, &ctxt) == -EINVAL, "initialise with a data page as CR3: -EINVAL");
  good_context();
  ctxt.ldt_base = 0x123;
  ctxt.ldt_ents = 1;
  check(vcpu_op(VCPUOP_initialise, 1, &ctxt) == -EINVAL, "initialise with an unaligned LDT: -EINVAL");
#ifdef __x86_64__
  good_context();
  ctxt.user_regs.rip = 0x0000800000000000UL;
  check(vcpu_op(VCPUOP_initialise, 1, &ctxt) == -EINVAL, "initialise with a non-canonical RIP: -EINVAL");
  good_context();
  ctxt.flags = 0;
  check(vcpu_op(VCPUOP_initialise, 1, &ctxt) == -EINVAL, "64-bit user-mode context without a user page table: -EINVAL");
#endif
  good_context();
  check(vcpu_op(VCPUOP_initialise, 0, &ctxt) == -EEXIST, "initialise of vCPU 0 (running): -EEXIST");
  check(vcpu_op(VCPUOP_initialise, 5, &ctxt) == -ENOENT, "initialise of vCPU 5: -ENOENT");
  check(vcpu_op(VCPUOP_initialise, 1, &ctxt) == 0, "initialise vCPU 1");
  check(vcpu_op(VCPUOP_initialise, 1, &ctxt) == -EEXIST, "initialise it twice: -EEXIST");
  check(vcpu_op(VCPUOP_is_up, 1, 0) == 0, "initialised without VGCF_online: still down");
  check(vcpu_op(VCPUOP_up, 1, 0) == 0 && vcpu_op(VCPUOP_is_up, 1, 0) == 1, "up: vCPU 1 is up");
  check(wait_for(&ap_ran), "vCPU 1 runs from its context");
  check(ap_sp == (unsigned long)ap_stack + sizeof ap_stack && ap_isup == 1,
        "on the stack it was given, and sees itself up");
  check(vcpu_op(VCPUOP_is_up, 1, 0) == 0, "it took itself down");

  struct vcpu_runstate_info ri;
  check(vcpu_op(VCPUOP_get_runstate_info, 1, &ri) == 0 && ri.state == RUNSTATE_offline && ri.time[RUNSTATE_running] > 0 &&
            ri.time[RUNSTATE_offline] > 0,
        "runstate info of vCPU 1: offline, time spent running and offline");
  check(vcpu_op(VCPUOP_get_runstate_info, 0, &ri) == 0 && ri.state == RUNSTATE_running, "runstate info of vCPU 0: running");

  /* register_vcpu_info. */
  struct vcpu_register_vcpu_info vi = {.mfn = virt_to_mfn(vipage), .offset = 4033};
  check(vcpu_op(VCPUOP_register_vcpu_info, 0, &vi) == -EINVAL, "register_vcpu_info past the page end: -EINVAL");
  vi.offset = 0;
  vi.mfn = virt_to_mfn((void *)start_info->pt_base);
  check(vcpu_op(VCPUOP_register_vcpu_info, 0, &vi) == -EINVAL, "register_vcpu_info on a page table: -EINVAL");
  vi.mfn = virt_to_mfn(vipage);
  vi.offset = 128;
  check(vcpu_op(VCPUOP_register_vcpu_info, 1, &vi) == 0, "register_vcpu_info for vCPU 1 (down)");
  vi.offset = 64;
  volatile vcpu_info_t *old0 = &shared->vcpu_info[0];
  volatile vcpu_info_t *new0 = (volatile vcpu_info_t *)(vipage + 64);
  old0->evtchn_upcall_pending = 0;
  check(vcpu_op(VCPUOP_register_vcpu_info, 0, &vi) == 0, "register_vcpu_info for vCPU 0");
  check(new0->evtchn_upcall_mask == 1 && new0->evtchn_upcall_pending == 1 && new0->evtchn_pending_sel == (xen_ulong_t)-1,
        "the new vcpu_info: contents copied, every selector bit and upcall_pending set");
  check(new0->time.version % 2 == 0 && new0->time.tsc_to_system_mul != 0, "and its time info is kept there");
  check(vcpu_op(VCPUOP_register_vcpu_info, 0, &vi) == -EINVAL, "a second register_vcpu_info: -EINVAL");
  HC(__HYPERVISOR_sched_op, SCHEDOP_block, 0, 0, 0, 0);
  check(new0->evtchn_upcall_mask == 0 && old0->evtchn_upcall_mask == 1,
        "SCHEDOP_block unmasks in the new vcpu_info (returns at once: upcall_pending there)");
  new0->evtchn_upcall_mask = 1;
  check(map_page(vipage, virt_to_mfn(vipage), 3) == 0, "the vcpu_info page stays mappable writable");

  /* The runstate area of vCPU 0, updated as it is switched in and out. */
  check(HC(__HYPERVISOR_vm_assist, VMASST_CMD_enable, VMASST_TYPE_runstate_update_flag, 0, 0, 0) == 0, "vm_assist runstate_update_flag");
  struct vcpu_register_runstate_memory_area ra;
  memset(&ra, 0, sizeof ra);
  ra.addr.v = &rs;
  check(vcpu_op(VCPUOP_register_runstate_memory_area, 0, &ra) == 0 && rs.state == RUNSTATE_running, "runstate area: written at once");
  uint64_t t0 = rs.state_entry_time;
  /* vCPU 1 again: it resumes after its VCPUOP_down and finds its vcpu_info moved. */
  check(vcpu_op(VCPUOP_up, 1, 0) == 0 && wait_for(&ap_back), "up again: vCPU 1 resumes where it went down");
  check(ap_pending == 1, "it sees upcall_pending in its moved vcpu_info");
  check(rs.state == RUNSTATE_running && rs.state_entry_time > t0 && !(rs.state_entry_time >> 63) && rs.time[RUNSTATE_runnable] > 0,
        "runstate area rewritten at the switches (no XEN_RUNSTATE_UPDATE left), time spent runnable");
#ifdef __x86_64__
  ra.addr.v = (void *)0xffff800000000000UL;
  check(vcpu_op(VCPUOP_register_runstate_memory_area, 0, &ra) == -EFAULT, "a runstate area in Xen's range: -EFAULT");
#else
  ra.addr.v = (void *)0xfffff000UL;
  check(vcpu_op(VCPUOP_register_runstate_memory_area, 0, &ra) == -EFAULT, "a runstate area in the hypervisor hole: -EFAULT");
#endif
  ra.addr.v = (void *)16;
  check(vcpu_op(VCPUOP_register_runstate_memory_area, 0, &ra) == 0, "an unmapped runstate area: accepted (copies fail quietly)");
  ra.addr.v = 0;
  vcpu_op(VCPUOP_register_runstate_memory_area, 0, &ra);
  /* The last vCPU going down shuts the domain down (poweroff). */
  report();
  vcpu_op(VCPUOP_down, 0, 0);
  print("not ok - still running after the last vCPU went down\n");
}
