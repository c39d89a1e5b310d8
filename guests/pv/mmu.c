/* The PV MMU's rules, seen from a guest: what must be refused is refused, the rest works. */
#include "runtime/pv.h"

#define EINVAL 22
#define EBUSY 16 /* Xen's get_page_from_l1e: a frame it cannot take for the mapping */
#define EPERM 1
#define ESRCH 3
static char scratch[4096] __attribute__((aligned(4096)));
static char table[4096] __attribute__((aligned(4096)));
static char gdtpage[4096] __attribute__((aligned(4096)));
static char window[4096] __attribute__((aligned(4096)));

static long mmu_update1(uint64_t ptr, uint64_t val) {
  mmu_update_t u = {.ptr = ptr, .val = val};
  unsigned done = 0;
  return HC(__HYPERVISOR_mmu_update, &u, 1, &done, DOMID_SELF, 0);
}
static long mmuext1(unsigned cmd, unsigned long mfn) {
  struct mmuext_op op;
  memset(&op, 0, sizeof op);
  op.cmd = cmd;
  op.arg1.mfn = mfn;
  return HC(__HYPERVISOR_mmuext_op, &op, 1, 0, DOMID_SELF, 0);
}
static long update_desc(uint64_t maddr, uint64_t desc) {
#ifdef __x86_64__
  return HC(__HYPERVISOR_update_descriptor, maddr, desc, 0, 0, 0);
#else
  return HC(__HYPERVISOR_update_descriptor, (uint32_t)maddr, (uint32_t)(maddr >> 32), (uint32_t)desc, (uint32_t)(desc >> 32), 0);
#endif
}

void test_main(void) {
  install_traps();
  unsigned long *m2p = (unsigned long *)(sizeof(long) == 8 ? 0xffff800000000000UL : 0xf5800000UL);
  unsigned long foreign = 0;
  for (unsigned long m = 1; m < 0x10000; m++)
    if (m2p[m] == (unsigned long)-1) {
      foreign = m;
      break;
    }
  check(foreign != 0, "found a frame that is not ours through the M2P");
  check(map_page(window, foreign, 3) == -EBUSY, "mapping a frame the domain does not own: -EBUSY");
  unsigned long top = virt_to_mfn((void *)start_info->pt_base);
  check(map_page(window, top, 3) == -EBUSY, "mapping a live page table writable: -EBUSY");
  check(map_page(window, top, 1) == 0, "mapping it read-only: fine");
  check(*(volatile uint64_t *)window == *(volatile uint64_t *)start_info->pt_base, "and it reads the same");
  check(map_page(window, virt_to_mfn(scratch), 3 | 0x10) == -EINVAL, "a PTE with PCD: -EINVAL");

  /* An L1 with a bad entry cannot be pinned; with good entries it can, and is then read-only. */
  unsigned long tmfn = virt_to_mfn(table);
  uint64_t *l1 = (uint64_t *)table;
  memset(table, 0, sizeof table);
  l1[0] = make_pte(foreign, 1);
  check(mmuext1(MMUEXT_PIN_L1_TABLE, tmfn) == -EINVAL, "pinning an L1 that is still mapped writable: -EINVAL");
  check(map_page(table, tmfn, 1) == 0, "make the table read-only");
  check(mmuext1(MMUEXT_PIN_L1_TABLE, tmfn) == -EBUSY, "pinning an L1 that maps a foreign frame: -EBUSY");
  check(map_page(table, tmfn, 3) == 0, "writable again");
  l1[0] = make_pte(virt_to_mfn(scratch), 1);
  l1[1] = make_pte(virt_to_mfn(scratch), 3);
  check(map_page(table, tmfn, 1) == 0, "read-only again");
  check(mmuext1(MMUEXT_PIN_L1_TABLE, tmfn) == 0, "pinning a good L1");
  check(mmuext1(MMUEXT_PIN_L1_TABLE, tmfn) == -EINVAL, "pinning it twice: -EINVAL");
  check(map_page(table, tmfn, 3) == -EBUSY, "a pinned L1 cannot be mapped writable: -EBUSY");
  check(mmu_update1(((uint64_t)tmfn << 12) + 16, make_pte(virt_to_mfn(scratch), 1)) == 0, "mmu_update of a pinned L1 entry");
  check(mmu_update1(((uint64_t)tmfn << 12) + 24, make_pte(foreign, 1)) == -EBUSY, "mmu_update with a foreign frame: -EBUSY");
  check(mmu_update1(((uint64_t)tmfn << 12) + 24, make_pte(tmfn, 3)) == -EBUSY, "mmu_update mapping the L1 itself writable: -EBUSY");
  /* MMU_PT_UPDATE_PRESERVE_AD keeps the accessed/dirty bits already in the entry. */
  check(mmu_update1(((uint64_t)tmfn << 12) + 16, make_pte(virt_to_mfn(scratch), 0x61)) == 0, "an entry with A and D");
  check(mmu_update1((((uint64_t)tmfn << 12) + 16) | MMU_PT_UPDATE_PRESERVE_AD, make_pte(virt_to_mfn(scratch), 1)) == 0 &&
            (((volatile uint64_t *)table)[2] & 0x61) == 0x61,
        "MMU_PT_UPDATE_PRESERVE_AD: A and D kept");
  check(mmu_update1(((uint64_t)tmfn << 12) + 16, make_pte(virt_to_mfn(scratch), 1)) == 0 && (((volatile uint64_t *)table)[2] & 0x60) == 0,
        "a normal update clears them");
  check(mmu_update1((((uint64_t)tmfn << 12) + 16) | 5, 0) == -38, "an mmu_update command 5: -ENOSYS");
  /* Foreign forms (foreigndom = (pt owner + 1) << 16 | page owner). */
  {
    mmu_update_t u = {.ptr = ((uint64_t)tmfn << 12) + 16, .val = make_pte(virt_to_mfn(scratch), 1)};
    unsigned done = 99;
    check(HC(__HYPERVISOR_mmu_update, &u, 1, &done, 0, 0) == -EPERM && done == 0, "mmu_update naming dom0 as page owner: -EPERM, done 0");
    check(HC(__HYPERVISOR_mmu_update, &u, 0, &done, 0, 0) == 0, "the same with count 0: nothing to refuse");
    check(HC(__HYPERVISOR_mmu_update, &u, 1, &done, 0x1234, 0) == -ESRCH, "a page owner that does not exist: -ESRCH");
    check(HC(__HYPERVISOR_mmu_update, &u, 1, &done, DOMID_XEN, 0) == -ESRCH, "DOMID_XEN as page owner: -ESRCH");
    check(HC(__HYPERVISOR_mmu_update, &u, 1, &done, (0x1235u << 16) | DOMID_SELF, 0) == -ESRCH,
          "a page-table owner that does not exist: -ESRCH");
    check(HC(__HYPERVISOR_mmu_update, &u, 1, &done, (1u << 16) | DOMID_SELF, 0) == -EPERM, "dom0's page tables: -EPERM");
    check(HC(__HYPERVISOR_mmu_update, &u, 1, &done, DOMID_IO, 0) == -EINVAL, "DOMID_IO mapping a RAM frame: -EINVAL");
    u.val = make_pte(0xffff0, 1);
    check(HC(__HYPERVISOR_mmu_update, &u, 1, &done, DOMID_IO, 0) == -EPERM, "DOMID_IO mapping I/O memory from a domU: -EPERM");
    u.val = 0;
    check(HC(__HYPERVISOR_mmu_update, &u, 1, &done, DOMID_IO, 0) == 0 && done == 1, "DOMID_IO clearing an entry: fine");
    u.ptr = ((uint64_t)tmfn << 12) | MMU_MACHPHYS_UPDATE;
    u.val = 5;
    check(HC(__HYPERVISOR_mmu_update, &u, 1, &done, 0, 0) == -EPERM, "MACHPHYS_UPDATE for dom0: -EPERM");
    check(HC(__HYPERVISOR_mmu_update, &u, 1, &done, DOMID_IO, 0) == -EINVAL, "MACHPHYS_UPDATE for DOMID_IO: -EINVAL");
    done = 3;
    u.ptr = ((uint64_t)tmfn << 12) + 16;
    u.val = make_pte(virt_to_mfn(scratch), 1);
    check(HC(__HYPERVISOR_mmu_update, &u, 1u | 0x80000000u, &done, DOMID_SELF, 0) == 0 && done == 4,
          "MMU_UPDATE_PREEMPTED: done continues from *done");
  }
  check(mmuext1(MMUEXT_UNPIN_TABLE, tmfn) == 0, "unpin");
  check(map_page(table, tmfn, 3) == 0, "after unpinning, writable again");
  check(mmuext1(MMUEXT_UNPIN_TABLE, tmfn) == -EINVAL, "unpinning what is not pinned: -EINVAL");

  /* Xen's slots. */
#ifdef __x86_64__
  check(mmu_update1(((uint64_t)top << 12) + 256 * 8, make_pte(virt_to_mfn(scratch), 7)) == -EINVAL,
        "writing L4 slot 256 (Xen's): -EINVAL");
  check(mmu_update1(((uint64_t)top << 12) + 300 * 8, make_pte(foreign, 7)) == -EINVAL, "an L4 entry to a foreign frame: -EINVAL");
  check(mmuext1(MMUEXT_PIN_L3_TABLE + 0, top) == -EINVAL, "pinning the L4 as an L3: -EINVAL");
#else
  check(mmu_update1(((uint64_t)top << 12) + 3 * 8, 0) == -EINVAL, "writing L3 slot 3 (Xen's L2): -EINVAL");
  uint64_t l3e3 = ((volatile uint64_t *)start_info->pt_base)[3];
  unsigned long l2x = (unsigned long)(l3e3 >> 12);
  check(mmu_update1(((uint64_t)l2x << 12) + 428 * 8, make_pte(virt_to_mfn(scratch), 1)) == -EINVAL,
        "writing compat L2 slot 428 (the M2P): -EINVAL");
  check(mmuext1(MMUEXT_PIN_L4_TABLE, top) == -EINVAL, "a 32-bit guest pinning an L4: -EINVAL");
#endif
  volatile unsigned long x = m2p[0];
  (void)x;
  check(1, "the M2P stays readable");

  /* Descriptors: DPL raised to the guest kernel ring, system descriptors refused. */
  memset(gdtpage, 0, sizeof gdtpage);
  uint64_t maddr = ((uint64_t)virt_to_mfn(gdtpage) << 12) + 8;
  check(update_desc(maddr, 0x00cf9a000000ffffULL) == 0, "update_descriptor with a DPL-0 code segment: accepted");
  unsigned dpl = (unsigned)((((volatile uint64_t *)gdtpage)[1] >> 45) & 3);
#ifdef __x86_64__
  check(dpl == 3, "stored with DPL 3");
#else
  check(dpl == 1, "stored with DPL 1");
#endif
  check(update_desc(maddr, 0x0000ec0000080000ULL) == -EINVAL, "a call gate: -EINVAL");
  check(update_desc(maddr + 1, 0) == -EINVAL, "a misaligned descriptor address: -EINVAL");
  unsigned long gf[1] = {virt_to_mfn(gdtpage)};
  check(HC(__HYPERVISOR_set_gdt, gf, 512, 0, 0, 0) == -EINVAL, "set_gdt with a frame still mapped writable: -EINVAL");
  check(map_page(gdtpage, gf[0], 1) == 0, "make the GDT page read-only");
  check(HC(__HYPERVISOR_set_gdt, gf, 512, 0, 0, 0) == 0, "set_gdt");
  check(map_page(gdtpage, gf[0], 3) == -EBUSY, "a live GDT page cannot be mapped writable: -EBUSY");
  /* The machine-to-phys table: only our own frames. */
  mmu_update_t mu = {.ptr = ((uint64_t)foreign << 12) | MMU_MACHPHYS_UPDATE, .val = 5};
  check(HC(__HYPERVISOR_mmu_update, &mu, 1, 0, DOMID_SELF, 0) == -EINVAL, "MACHPHYS_UPDATE of a foreign frame: -EINVAL");
}
