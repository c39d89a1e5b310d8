/* A data selector that cannot be reloaded and no failsafe callback: the domain is crashed. */
#include "runtime/pv.h"
static char ldtpage[4096] __attribute__((aligned(4096)));
void test_main(void) {
  memset(ldtpage, 0, sizeof ldtpage);
  ((uint64_t *)ldtpage)[1] = 0x00cff2000000ffffULL;
  unsigned long lmfn = virt_to_mfn(ldtpage);
  map_page(ldtpage, lmfn, 1);
  struct mmuext_op op;
  memset(&op, 0, sizeof op);
  op.cmd = MMUEXT_SET_LDT;
  op.arg1.linear_addr = (unsigned long)ldtpage;
  op.arg2.nr_ents = 2;
  HC(__HYPERVISOR_mmuext_op, &op, 1, 0, DOMID_SELF, 0);
  asm volatile("movl %0, %%fs" ::"r"(0x0f));
  print("about to break FS\n");
#ifdef __x86_64__
  HC(__HYPERVISOR_update_descriptor, ((uint64_t)lmfn << 12) + 8, 0x00cf72000000ffffULL, 0, 0, 0);
#else
  HC(__HYPERVISOR_update_descriptor, (lmfn << 12) + 8, 0, 0x0000ffff, 0x00cf7200, 0);
#endif
  print("still running\n");
}
