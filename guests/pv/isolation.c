/* Isolation between two domains, seen from the guests (tests/pv/isolation.test.ts).
 *
 * role=b peer=A (built and run first): offers event channel ports (alloc_unbound) to A, to
 *   itself and to dom0, sets up a grant table whose only entry (ref 8) grants its secret page to
 *   a domain that is not A, fills that page with "B-SECRET", prints "B ready ..." and blocks.
 *   Each event it gets is counted by port; when the one on the port offered to A comes, it checks
 *   its secret, prints "B: ..." and powers off.
 * role=a peer=B ok=P self=P dom0=P con=P secret=MFN top=MFN shinfo=MFN grant=MFN: the facts about
 *   B that the test read from the hypervisor. A tries to reach B every way it can, checks each is
 *   refused (printing the errno) and that nothing of B became visible, then binds the port B
 *   offered it, sends one event, and powers off ("checks: N passed, 0 failed"). */
#include "runtime/pv.h"

#define EPERM 1
#define ESRCH 3
#define EINVAL 22
#define EBUSY 16

static char page[4096] __attribute__((aligned(4096)));   /* A: the window / B: the secret */
static char gtab[4096] __attribute__((aligned(4096)));   /* B: where its grant frame is mapped */
static char buf[4096] __attribute__((aligned(4096)));    /* A: grant copy destination */

static long evtchn(int cmd, void *op) { return HC(__HYPERVISOR_event_channel_op, cmd, op, 0, 0, 0); }

/* ------------------------------------------------------------------ B */

static volatile unsigned long events_on[4096];

static void b_handler(unsigned port) {
  if (port < 4096) events_on[port]++;
}

static void role_b(void) {
  domid_t peer = (domid_t)cmdline_ulong("peer", 0);
  install_traps();
  install_events(b_handler);
  for (int i = 0; i < 4096; i++) page[i] = "B-SECRET"[i % 8];
  struct evtchn_alloc_unbound ok = {.dom = DOMID_SELF, .remote_dom = peer};
  struct evtchn_alloc_unbound self = {.dom = DOMID_SELF, .remote_dom = DOMID_SELF};
  struct evtchn_alloc_unbound dom0 = {.dom = DOMID_SELF, .remote_dom = 0};
  if (evtchn(EVTCHNOP_alloc_unbound, &ok) || evtchn(EVTCHNOP_alloc_unbound, &self) ||
      evtchn(EVTCHNOP_alloc_unbound, &dom0)) {
    print("B: alloc_unbound failed\n");
    shutdown(SHUTDOWN_crash);
  }
  /* One grant frame; ref 8 grants the secret page to a domain that is not A. */
  xen_pfn_t frame = 0;
  struct gnttab_setup_table st = {.dom = DOMID_SELF, .nr_frames = 1};
  set_xen_guest_handle(st.frame_list, &frame);
  if (HC(__HYPERVISOR_grant_table_op, GNTTABOP_setup_table, &st, 1, 0, 0) || st.status || map_page(gtab, frame, 3)) {
    print("B: grant table setup failed\n");
    shutdown(SHUTDOWN_crash);
  }
  grant_entry_v1_t *gt = (grant_entry_v1_t *)gtab;
  gt[8].frame = (uint32_t)virt_to_mfn(page);
  gt[8].domid = (domid_t)(peer + 7);
  __asm__ volatile("" ::: "memory");
  gt[8].flags = GTF_permit_access;
  printf("B ready ok=%u self=%u dom0=%u con=%u grant=%lu\n", ok.port, self.port, dom0.port,
         start_info->console.domU.evtchn, (unsigned long)frame);
  while (events_on[ok.port] == 0) HC(__HYPERVISOR_sched_op, SCHEDOP_block, 0, 0, 0, 0);
  shared->vcpu_info[0].evtchn_upcall_mask = 1;
  unsigned long other = 0;
  for (unsigned p = 0; p < 4096; p++)
    if (p != ok.port) other += events_on[p];
  int intact = 1;
  for (int i = 0; i < 4096; i++) intact &= page[i] == "B-SECRET"[i % 8];
  printf("B: event on the port offered to A: %lu; events on other ports: %lu; secret %s\n", events_on[ok.port], other,
         intact ? "intact" : "CHANGED");
  shutdown(SHUTDOWN_poweroff);
}

/* ------------------------------------------------------------------ A */

/* Machine address of the L1 entry that maps `va` (a walk of our own tables, read-only). */
static uint64_t pte_maddr(const void *va) {
  unsigned long *m2p = (unsigned long *)(sizeof(long) == 8 ? 0xffff800000000000UL : 0xf5800000UL);
  unsigned long v = (unsigned long)va;
  uint64_t *table = (uint64_t *)start_info->pt_base;
#ifdef __x86_64__
  int shifts[] = {39, 30, 21, 12};
  int levels = 4;
#else
  int shifts[] = {30, 21, 12};
  int levels = 3;
#endif
  for (int l = 0; l < levels - 1; l++) {
    unsigned idx = (unsigned)((v >> shifts[l]) & (l == 0 && levels == 3 ? 3 : 511));
    unsigned long mfn = (unsigned long)((table[idx] & 0x000ffffffffff000ULL) >> 12);
    table = (uint64_t *)(VIRT_BASE + (m2p[mfn] << 12));
  }
  unsigned long l1 = virt_to_mfn(table);
  return ((uint64_t)l1 << 12) + ((v >> 12) & 511) * 8;
}

static long mmu_update1(uint64_t ptr, uint64_t val, unsigned foreigndom) {
  mmu_update_t u = {.ptr = ptr, .val = val};
  unsigned done = 0;
  return HC(__HYPERVISOR_mmu_update, &u, 1, &done, foreigndom, 0);
}

static int page_is_ours(void) {
  for (int i = 0; i < 4096; i++)
    if (page[i] != 0x11) return 0;
  return 1;
}

static int buf_untouched(void) {
  for (int i = 0; i < 4096; i++)
    if (buf[i] != 0x22) return 0;
  return 1;
}

static void role_a(void) {
  domid_t b = (domid_t)cmdline_ulong("peer", 0);
  unsigned p_ok = (unsigned)cmdline_ulong("ok", 0), p_self = (unsigned)cmdline_ulong("self", 0), p_dom0 = (unsigned)cmdline_ulong("dom0", 0);
  unsigned p_con = (unsigned)cmdline_ulong("con", 0);
  const char *names[4] = {"B's secret page", "B's top page table", "B's shared_info", "B's grant frame"};
  unsigned long mfns[4] = {cmdline_ulong("secret", 0), cmdline_ulong("top", 0), cmdline_ulong("shinfo", 0), cmdline_ulong("grant", 0)};
  install_traps();
  memset(page, 0x11, sizeof page);
  memset(buf, 0x22, sizeof buf);
  long rc;

  /* Memory: no mapping of any of B's frames, by any path. */
  uint64_t pte = pte_maddr(page);
  for (int i = 0; i < 4; i++) {
    rc = map_page(page, mfns[i], 3);
    printf("update_va_mapping(%s, RW) = %ld\n", names[i], rc);
    check(rc == -EBUSY, "update_va_mapping of a frame of B, writable: -EBUSY (Xen's could_not_pin)");
    rc = map_page(page, mfns[i], 1);
    printf("update_va_mapping(%s, RO) = %ld\n", names[i], rc);
    check(rc == -EBUSY, "update_va_mapping of a frame of B, read-only: -EBUSY");
    rc = mmu_update1(pte, make_pte(mfns[i], 1), DOMID_SELF);
    printf("mmu_update(our L1 entry := %s) = %ld\n", names[i], rc);
    check(rc == -EBUSY, "mmu_update of our own L1 entry to a frame of B: -EBUSY");
    rc = mmu_update1(pte, make_pte(mfns[i], 1), b);
    printf("mmu_update(foreigndom B, %s) = %ld\n", names[i], rc);
    check(rc < 0, "mmu_update naming B as the page owner: refused");
  }
  check(page_is_ours(), "our page still maps our own frame (nothing of B became visible)");
  check(mmu_update1(pte, make_pte(virt_to_mfn(page), 3), DOMID_SELF) == 0, "and the same mmu_update with our own frame works");

  /* Event channels: only the port B offered to A. */
  struct evtchn_bind_interdomain bi = {.remote_dom = b, .remote_port = p_self};
  rc = evtchn(EVTCHNOP_bind_interdomain, &bi);
  printf("bind_interdomain(B, port %u offered to B itself) = %ld\n", p_self, rc);
  check(rc == -EINVAL, "bind_interdomain to a port B offered to itself: -EINVAL");
  bi.remote_port = p_dom0;
  rc = evtchn(EVTCHNOP_bind_interdomain, &bi);
  printf("bind_interdomain(B, port %u offered to dom0) = %ld\n", p_dom0, rc);
  check(rc == -EINVAL, "bind_interdomain to a port B offered to dom0: -EINVAL");
  bi.remote_port = p_con;
  rc = evtchn(EVTCHNOP_bind_interdomain, &bi);
  printf("bind_interdomain(B, console port %u) = %ld\n", p_con, rc);
  check(rc == -EINVAL, "bind_interdomain to B's console port (bound to its backend): -EINVAL");
  bi.remote_port = 1000;
  rc = evtchn(EVTCHNOP_bind_interdomain, &bi);
  check(rc == -EINVAL, "bind_interdomain to a free port of B: -EINVAL");
  struct evtchn_send sd = {.port = p_ok};
  rc = evtchn(EVTCHNOP_send, &sd);
  printf("send(%u) before binding = %ld\n", p_ok, rc);
  check(rc == -EINVAL, "send on B's port number (not a port of ours): -EINVAL");
  struct evtchn_alloc_unbound au = {.dom = b, .remote_dom = DOMID_SELF};
  rc = evtchn(EVTCHNOP_alloc_unbound, &au);
  printf("alloc_unbound(dom B) = %ld\n", rc);
  check(rc == -EPERM, "alloc_unbound in B's table: -EPERM");
  struct evtchn_status es = {.dom = b, .port = p_ok};
  rc = evtchn(EVTCHNOP_status, &es);
  printf("status(dom B, port %u) = %ld\n", p_ok, rc);
  check(rc == -EPERM, "EVTCHNOP_status of B's port: -EPERM");
  es.dom = 0x7000;
  check(evtchn(EVTCHNOP_status, &es) == -ESRCH, "EVTCHNOP_status in a domain that does not exist: -ESRCH");
  struct evtchn_reset rs = {.dom = b};
  rc = evtchn(EVTCHNOP_reset, &rs);
  printf("reset(dom B) = %ld\n", rc);
  check(rc == -EPERM, "EVTCHNOP_reset of B's table: -EPERM");

  /* Grant tables: B's table and memory are out of reach through grant ops. */
  xen_pfn_t fl = 0xdead;
  struct gnttab_setup_table st = {.dom = b, .nr_frames = 1};
  set_xen_guest_handle(st.frame_list, &fl);
  rc = HC(__HYPERVISOR_grant_table_op, GNTTABOP_setup_table, &st, 1, 0, 0);
  printf("setup_table(dom B) = %ld status %d\n", rc, st.status);
  check((rc < 0 || st.status < 0) && fl == 0xdead, "setup_table of B's grant table: refused, no frame handed out");
  struct gnttab_query_size qs = {.dom = b};
  rc = HC(__HYPERVISOR_grant_table_op, GNTTABOP_query_size, &qs, 1, 0, 0);
  printf("query_size(dom B) = %ld status %d\n", rc, qs.status);
  check(rc < 0 || qs.status < 0, "query_size of B's grant table: refused");
  const grant_ref_t refs[3] = {8, 100, 0xffffff};
  const char *why[3] = {"granted to another domain", "an empty entry", "beyond the table"};
  for (int i = 0; i < 3; i++) {
    struct gnttab_map_grant_ref mg = {.host_addr = (unsigned long)page, .flags = GNTMAP_host_map | GNTMAP_readonly, .ref = refs[i], .dom = b};
    rc = HC(__HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref, &mg, 1, 0, 0);
    printf("map_grant_ref(B, ref %u: %s) = %ld status %d\n", refs[i], why[i], rc, mg.status);
    check((rc < 0 || mg.status < 0) && page_is_ours(), "map_grant_ref of a bad ref of B: refused, nothing mapped");
    struct gnttab_copy cp;
    memset(&cp, 0, sizeof cp);
    cp.source.u.ref = refs[i];
    cp.source.domid = b;
    cp.dest.u.gmfn = virt_to_mfn(buf);
    cp.dest.domid = DOMID_SELF;
    cp.len = 64;
    cp.flags = GNTCOPY_source_gref;
    rc = HC(__HYPERVISOR_grant_table_op, GNTTABOP_copy, &cp, 1, 0, 0);
    printf("copy(from B's ref %u: %s) = %ld status %d\n", refs[i], why[i], rc, cp.status);
    check((rc < 0 || cp.status < 0) && buf_untouched(), "grant copy from a bad ref of B: refused, nothing copied");
  }
  struct gnttab_copy cp;
  memset(&cp, 0, sizeof cp);
  cp.source.u.gmfn = mfns[0];
  cp.source.domid = b;
  cp.dest.u.gmfn = virt_to_mfn(buf);
  cp.dest.domid = DOMID_SELF;
  cp.len = 64;
  rc = HC(__HYPERVISOR_grant_table_op, GNTTABOP_copy, &cp, 1, 0, 0);
  printf("copy(from B's secret frame by MFN) = %ld status %d\n", rc, cp.status);
  check((rc < 0 || cp.status < 0) && buf_untouched(), "grant copy from B's frame by MFN: refused, nothing copied");

  /* The one way in: the port B offered to A. */
  bi.remote_port = p_ok;
  rc = evtchn(EVTCHNOP_bind_interdomain, &bi);
  printf("bind_interdomain(B, port %u offered to A) = %ld, local port %u\n", p_ok, rc, bi.local_port);
  check(rc == 0 && bi.local_port > 0, "bind_interdomain to the port B offered to A: works");
  struct evtchn_bind_interdomain again = {.remote_dom = b, .remote_port = p_ok};
  check(evtchn(EVTCHNOP_bind_interdomain, &again) == -EINVAL, "binding it a second time: -EINVAL");
  sd.port = bi.local_port;
  check(evtchn(EVTCHNOP_send, &sd) == 0, "send on our end: an event crosses to B");
}

void test_main(void) {
  if (strncmp((const char *)start_info->cmd_line, "role=b", 6) == 0) role_b();
  role_a();
}
