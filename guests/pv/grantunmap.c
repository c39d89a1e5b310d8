/* A grant mapping removed by a page-table write instead of unmap_grant_ref: Xen crashes the
 * domain ("Attempt to implicitly unmap a granted PTE"). Booted with "domid=1". */
#include "runtime/pv.h"
static char gtab[4096] __attribute__((aligned(4096)));
static char page[4096] __attribute__((aligned(4096)));
static char window[4096] __attribute__((aligned(4096)));
void test_main(void) {
  xen_pfn_t frames[1] = {0};
  struct gnttab_setup_table st = {.dom = DOMID_SELF, .nr_frames = 1};
  set_xen_guest_handle(st.frame_list, frames);
  HC(__HYPERVISOR_grant_table_op, GNTTABOP_setup_table, &st, 1, 0, 0);
  map_page(gtab, frames[0], 3);
  grant_entry_v1_t *e = (grant_entry_v1_t *)gtab + 10;
  e->frame = (uint32_t)virt_to_mfn(page);
  e->domid = 1;
  e->flags = GTF_permit_access;
  struct gnttab_map_grant_ref m;
  memset(&m, 0, sizeof m);
  m.host_addr = (unsigned long)window;
  m.flags = GNTMAP_host_map;
  m.ref = 10;
  m.dom = DOMID_SELF;
  HC(__HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref, &m, 1, 0, 0);
  printf("mapped: %d\n", m.status);
  map_page(window, virt_to_mfn(window), 3);
  print("still running\n");
}
