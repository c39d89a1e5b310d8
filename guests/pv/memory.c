/* memory_op reservations: decrease_reservation, populate_physmap, increase_reservation with
 * extent orders, the max_pages limit, M2P updates and Xen's "number of extents done" results. */
#include "runtime/pv.h"

#define EFAULT 14

static long memop(int cmd, void *arg) { return HC(__HYPERVISOR_memory_op, cmd, arg, 0, 0, 0); }
static long reserve(int cmd, xen_pfn_t *list, unsigned long n, unsigned order, unsigned flags, domid_t dom) {
  struct xen_memory_reservation r;
  memset(&r, 0, sizeof r);
  set_xen_guest_handle(r.extent_start, list);
  r.nr_extents = n;
  r.extent_order = order;
  r.mem_flags = flags;
  r.domid = dom;
  return memop(cmd, &r);
}
static long current_pages(void) {
  domid_t self = DOMID_SELF;
  return memop(XENMEM_current_reservation, &self);
}

static char window[4096] __attribute__((aligned(4096)));

void test_main(void) {
  unsigned long *p2m = (unsigned long *)start_info->mfn_list;
  unsigned long *m2p = (unsigned long *)(sizeof(long) == 8 ? 0xffff800000000000UL : 0xf5800000UL);
  unsigned long nr = start_info->nr_pages;
  domid_t self = DOMID_SELF;
  long max = memop(XENMEM_maximum_reservation, &self);
  long cur = current_pages();
  check(max == (long)nr && cur >= (long)nr, "maximum_reservation = nr_pages, current_reservation counts every page");
  xen_pfn_t list[4];
  /* At the limit: nothing more. */
  list[0] = nr - 1;
  check(reserve(XENMEM_populate_physmap, list, 1, 0, 0, DOMID_SELF) == 0, "populate_physmap at max_pages: 0 extents");
  check(reserve(XENMEM_increase_reservation, 0, 1, 0, 0, DOMID_SELF) == 0, "increase_reservation at max_pages: 0 extents");
  /* Give the last two pages back. */
  unsigned long m1 = p2m[nr - 1], m2 = p2m[nr - 2];
  list[0] = m1;
  list[1] = m2;
  check(reserve(XENMEM_decrease_reservation, list, 2, 0, 0, DOMID_SELF) == 2, "decrease_reservation of two pages: 2");
  check(m2p[m1] == (unsigned long)-1 && m2p[m2] == (unsigned long)-1, "their M2P entries are invalid");
  check(current_pages() == cur - 2, "current_reservation went down by 2");
  check(reserve(XENMEM_decrease_reservation, list, 1, 0, 0, DOMID_SELF) == 0, "giving back a page that is not ours: 0");
  /* Populate one back at the last PFN. */
  list[0] = nr - 1;
  check(reserve(XENMEM_populate_physmap, list, 1, 0, 0, DOMID_SELF) == 1, "populate_physmap of one page: 1");
  unsigned long nm = list[0];
  check(nm != nr - 1 && m2p[nm] == nr - 1, "the new MFN is written back and its M2P entry is the PFN");
  check(map_page(window, nm, 3) == 0, "the new page can be mapped writable");
  ((volatile char *)window)[5] = 42;
  check(((volatile char *)window)[5] == 42, "and used");
  map_page(window, 0, 0);
  /* An order-1 extent: two contiguous, aligned frames. */
  list[0] = 0;
  check(reserve(XENMEM_increase_reservation, list, 1, 1, 0, DOMID_SELF) == 0, "an order-1 extent over max_pages: 0");
  list[0] = nm;
  check(reserve(XENMEM_decrease_reservation, list, 1, 0, 0, DOMID_SELF) == 1, "give the populated page back");
  list[0] = 0;
  check(reserve(XENMEM_increase_reservation, list, 1, 1, 0, DOMID_SELF) == 1 && list[0] != 0 && (list[0] & 1) == 0,
        "increase_reservation of an order-1 extent: an aligned MFN");
  unsigned long pair = list[0];
  check(m2p[pair] == (unsigned long)-1 && m2p[pair + 1] == (unsigned long)-1, "increase_reservation leaves the M2P unset");
  check(map_page(window, pair + 1, 3) == 0, "the extent's second frame is ours");
  map_page(window, 0, 0);
  check(current_pages() == cur, "back at the limit");
  check(reserve(XENMEM_decrease_reservation, list, 1, 1, 0, DOMID_SELF) == 1 && current_pages() == cur - 2,
        "decrease_reservation of the order-1 extent");
  /* Whole-request refusals: 0 extents. */
  list[0] = nr - 1;
  check(reserve(XENMEM_populate_physmap, list, 1, 10, 0, DOMID_SELF) == 0, "order 10 (over a domU's 9): 0");
  check(reserve(XENMEM_increase_reservation, list, 1, 10, 0, DOMID_SELF) == 0, "increase order 10: 0");
  check(reserve(XENMEM_populate_physmap, list, 1, 0, XENMEMF_address_bits(12), DOMID_SELF) == 0, "address_bits 12: 0");
  check(reserve(XENMEM_populate_physmap, list, 1, 0, XENMEMF_populate_on_demand, DOMID_SELF) == 0, "populate-on-demand on oneself: 0");
  check(reserve(XENMEM_populate_physmap, list, 1, 0, 0, 0x1234) == 0, "another domain id: 0");
  check(reserve(XENMEM_populate_physmap, list, 1, 0, 0, 0) == 0, "dom0: 0");
#ifdef __x86_64__
  check(memop(XENMEM_populate_physmap, (void *)8) == 0, "an unreadable reservation (64-bit): 0");
  check(reserve(XENMEM_populate_physmap, (xen_pfn_t *)0xffff800000000000UL, 1, 0, 0, DOMID_SELF) == 0,
        "an extent list in Xen's range (64-bit): 0");
#else
  check(memop(XENMEM_populate_physmap, (void *)8) == -EFAULT, "an unreadable reservation (compat): -EFAULT");
  check(reserve(XENMEM_populate_physmap, (xen_pfn_t *)0xfffff000UL, 1, 0, 0, DOMID_SELF) == -EFAULT,
        "an extent list in the hypervisor hole (compat): -EFAULT");
#endif
  /* Two at once, with a low address limit that still has room. */
  list[0] = nr - 1;
  list[1] = nr - 2;
  check(reserve(XENMEM_populate_physmap, list, 2, 0, XENMEMF_address_bits(32), DOMID_SELF) == 2 && m2p[list[0]] == nr - 1 &&
            m2p[list[1]] == nr - 2,
        "populate_physmap of two pages below 4 GiB");
  p2m[nr - 1] = list[0];
  p2m[nr - 2] = list[1];
  check(current_pages() == cur, "the domain is whole again");
}
