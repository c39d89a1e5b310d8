/* GNTTABOP_copy between frames and grant references (the domain grants itself: its id comes
 * on the command line, "domid=N"), with Xen's per-op status codes. */
#include "runtime/pv.h"

#define EFAULT 14
static char gtab[4096] __attribute__((aligned(4096)));
static unsigned char srcpage[4096] __attribute__((aligned(4096)));
static unsigned char dstpage[4096] __attribute__((aligned(4096)));
static volatile unsigned char window[4096] __attribute__((aligned(4096)));

static void map_init(struct gnttab_map_grant_ref *m, void *host, unsigned flags, unsigned ref, domid_t dom) {
  memset(m, 0, sizeof *m);
  m->host_addr = (unsigned long)host;
  m->flags = flags;
  m->ref = ref;
  m->dom = dom;
  m->status = 99;
}
static long gmap(struct gnttab_map_grant_ref *m) { return HC(__HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref, m, 1, 0, 0); }
static long gunmap(struct gnttab_unmap_grant_ref *u) { return HC(__HYPERVISOR_grant_table_op, GNTTABOP_unmap_grant_ref, u, 1, 0, 0); }

static long copy(struct gnttab_copy *op, unsigned n) { return HC(__HYPERVISOR_grant_table_op, GNTTABOP_copy, op, n, 0, 0); }
static void grant(unsigned ref, unsigned long mfn, domid_t dom, uint16_t flags) {
  volatile grant_entry_v1_t *e = (volatile grant_entry_v1_t *)gtab + ref;
  e->frame = (uint32_t)mfn;
  e->domid = dom;
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  e->flags = flags;
}
static void op_init(struct gnttab_copy *op, unsigned long src, domid_t sd, unsigned long dst, domid_t dd, uint16_t flags) {
  memset(op, 0, sizeof *op);
  op->source.u.gmfn = src;
  op->source.domid = sd;
  op->source.offset = 100;
  op->dest.u.gmfn = dst;
  op->dest.domid = dd;
  op->dest.offset = 200;
  op->len = 50;
  op->flags = flags;
  op->status = 99;
}

void test_main(void) {
  unsigned self = (unsigned)cmdline_ulong("domid", 0);
  check(self != 0, "our domain id from the command line");
  xen_pfn_t frames[1] = {0};
  struct gnttab_setup_table st = {.dom = DOMID_SELF, .nr_frames = 1};
  set_xen_guest_handle(st.frame_list, frames);
  check(HC(__HYPERVISOR_grant_table_op, GNTTABOP_setup_table, &st, 1, 0, 0) == 0 && st.status == 0, "setup_table");
  check(map_page(gtab, frames[0], 3) == 0, "grant table mapped");
  for (int i = 0; i < 4096; i++) srcpage[i] = (unsigned char)(i * 7 + 1);
  memset(dstpage, 0, sizeof dstpage);
  unsigned long smfn = virt_to_mfn(srcpage), dmfn = virt_to_mfn(dstpage);
  grant(10, smfn, (domid_t)self, GTF_permit_access);
  grant(11, smfn, (domid_t)(self + 1), GTF_permit_access);
  grant(12, dmfn, (domid_t)self, GTF_permit_access | GTF_readonly);
  grant(13, dmfn, (domid_t)self, GTF_permit_access);

  struct gnttab_copy op[2];
  op_init(&op[0], 10, DOMID_SELF, dmfn, DOMID_SELF, GNTCOPY_source_gref);
  int same = 1;
  check(copy(op, 1) == 0 && op[0].status == GNTST_okay, "copy from a grant reference to a frame: okay");
  for (int i = 0; i < 50; i++) same &= dstpage[200 + i] == srcpage[100 + i];
  check(same && dstpage[199] == 0 && dstpage[250] == 0, "exactly the 50 bytes arrived");
  check(((volatile grant_entry_v1_t *)gtab)[10].flags == GTF_permit_access, "the entry's flags are as before (reading cleared)");
  memset(dstpage, 0, sizeof dstpage);
  op_init(&op[0], smfn, DOMID_SELF, 13, DOMID_SELF, GNTCOPY_dest_gref);
  check(copy(op, 1) == 0 && op[0].status == GNTST_okay && dstpage[200] == srcpage[100], "copy from a frame to a grant reference");
  op_init(&op[0], 12, DOMID_SELF, dmfn, DOMID_SELF, GNTCOPY_source_gref);
  check(copy(op, 1) == 0 && op[0].status == GNTST_okay, "a read-only grant as the source: okay");
  op_init(&op[0], smfn, DOMID_SELF, 12, DOMID_SELF, GNTCOPY_dest_gref);
  check(copy(op, 1) == 0 && op[0].status == GNTST_general_error, "a read-only grant as the destination: GNTST_general_error");
  op_init(&op[0], 11, DOMID_SELF, dmfn, DOMID_SELF, GNTCOPY_source_gref);
  check(copy(op, 1) == 0 && op[0].status == GNTST_general_error, "a grant to another domain: GNTST_general_error");
  op_init(&op[0], 600, DOMID_SELF, dmfn, DOMID_SELF, GNTCOPY_source_gref);
  check(copy(op, 1) == 0 && op[0].status == GNTST_bad_gntref, "a reference past the table: GNTST_bad_gntref");
  op_init(&op[0], 10, 0x1234, dmfn, DOMID_SELF, GNTCOPY_source_gref);
  check(copy(op, 1) == 0 && op[0].status == GNTST_bad_domain, "a granting domain that does not exist: GNTST_bad_domain");
  op_init(&op[0], smfn, 0, dmfn, DOMID_SELF, 0);
  check(copy(op, 1) == 0 && op[0].status == GNTST_permission_denied, "another domain's frame by number: GNTST_permission_denied");
  unsigned long *m2p = (unsigned long *)(sizeof(long) == 8 ? 0xffff800000000000UL : 0xf5800000UL);
  unsigned long foreign = 0;
  for (unsigned long m = 1; m < 0x10000 && !foreign; m++)
    if (m2p[m] == (unsigned long)-1) foreign = m;
  op_init(&op[0], foreign, DOMID_SELF, dmfn, DOMID_SELF, 0);
  check(copy(op, 1) == 0 && op[0].status == GNTST_bad_page, "a frame that is not ours: GNTST_bad_page");
  op_init(&op[0], smfn, DOMID_SELF, virt_to_mfn((void *)start_info->pt_base), DOMID_SELF, 0);
  check(copy(op, 1) == 0 && op[0].status == GNTST_general_error, "a page table as the destination: GNTST_general_error");
  op_init(&op[0], smfn, DOMID_SELF, dmfn, DOMID_SELF, 0);
  op[0].dest.offset = 4000;
  op[0].len = 200;
  op_init(&op[1], smfn, DOMID_SELF, dmfn, DOMID_SELF, 0);
  check(copy(op, 2) == 0 && op[0].status == GNTST_bad_copy_arg && op[1].status == GNTST_okay,
        "two ops: past the page end GNTST_bad_copy_arg, the other okay");
  check(copy((void *)8, 1) == -EFAULT, "an unreadable op: -EFAULT");

  /* map_grant_ref / unmap_grant_ref. */
  volatile grant_entry_v1_t *ge = (volatile grant_entry_v1_t *)gtab;
  unsigned long wmfn = virt_to_mfn((void *)window);
  struct gnttab_map_grant_ref m;
  map_init(&m, (void *)window, GNTMAP_host_map, 10, DOMID_SELF);
  check(gmap(&m) == 0 && m.status == GNTST_okay && m.dev_bus_addr == (uint64_t)smfn << 12, "map_grant_ref (host map): okay, dev_bus_addr");
  check(window[5] == srcpage[5] && window[4000] == srcpage[4000], "the granted frame is mapped at host_addr");
  window[7] = 0x5a;
  asm volatile("" ::: "memory");
  check(((volatile unsigned char *)srcpage)[7] == 0x5a, "writable: a store through it lands in the granted frame");
  check((ge[10].flags & (GTF_reading | GTF_writing)) == (GTF_reading | GTF_writing), "the grant entry shows GTF_reading | GTF_writing");
  grant_handle_t h = m.handle;
  struct gnttab_unmap_grant_ref u;
  memset(&u, 0, sizeof u);
  u.host_addr = (unsigned long)window;
  u.handle = h + 77;
  check(gunmap(&u) == 0 && u.status == GNTST_bad_handle, "unmap with a bad handle: GNTST_bad_handle");
  u.handle = h;
  u.host_addr = (unsigned long)dstpage;
  check(gunmap(&u) == 0 && u.status == GNTST_general_error, "unmap at an address that does not map the grant: GNTST_general_error");
  u.host_addr = (unsigned long)window;
  check(gunmap(&u) == 0 && u.status == GNTST_okay, "unmap_grant_ref: okay");
  check(ge[10].flags == GTF_permit_access, "the grant entry's flags are as before");
  check(gunmap(&u) == 0 && u.status == GNTST_bad_handle, "unmapping it again: GNTST_bad_handle");
  check(map_page((void *)window, wmfn, 3) == 0, "the address can be mapped again");
  map_init(&m, (void *)window, GNTMAP_host_map | GNTMAP_readonly, 12, DOMID_SELF);
  check(gmap(&m) == 0 && m.status == GNTST_okay && window[200] == dstpage[200], "a read-only grant mapped read-only");
  u.handle = m.handle;
  check(gunmap(&u) == 0 && u.status == GNTST_okay, "and unmapped");
  check(map_page((void *)window, wmfn, 3) == 0, "restore the page");
  map_init(&m, (void *)window, GNTMAP_host_map, 12, DOMID_SELF);
  check(gmap(&m) == 0 && m.status == GNTST_general_error, "a read-only grant mapped writable: GNTST_general_error");
  map_init(&m, (void *)window, 0, 10, DOMID_SELF);
  check(gmap(&m) == 0 && m.status == GNTST_bad_gntref, "no host_map or device_map flag: GNTST_bad_gntref");
  map_init(&m, (void *)window, GNTMAP_host_map, 10, 0x1234);
  check(gmap(&m) == 0 && m.status == GNTST_bad_domain, "a domain that does not exist: GNTST_bad_domain");
  map_init(&m, (void *)window, GNTMAP_host_map, 600, DOMID_SELF);
  check(gmap(&m) == 0 && m.status == GNTST_bad_gntref, "a reference past the table: GNTST_bad_gntref");
  map_init(&m, (void *)window, GNTMAP_host_map, 11, DOMID_SELF);
  check(gmap(&m) == 0 && m.status == GNTST_general_error, "a grant to another domain: GNTST_general_error");
  map_init(&m, (void *)0x1000, GNTMAP_host_map, 10, DOMID_SELF);
  check(gmap(&m) == 0 && m.status == GNTST_general_error && ge[10].flags == GTF_permit_access,
        "a host address with no L1 table: GNTST_general_error, nothing left pinned");
  map_init(&m, 0, GNTMAP_device_map, 10, DOMID_SELF);
  check(gmap(&m) == 0 && m.status == GNTST_okay, "a device mapping");
  memset(&u, 0, sizeof u);
  u.handle = m.handle;
  u.dev_bus_addr = (uint64_t)smfn << 12;
  check(gunmap(&u) == 0 && u.status == GNTST_okay && ge[10].flags == GTF_permit_access, "unmapped by its bus address");
  check(HC(__HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref, (void *)8, 1, 0, 0) == -EFAULT, "an unreadable map op: -EFAULT");
}
