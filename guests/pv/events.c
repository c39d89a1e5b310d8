/* Event channels: masked events are not delivered and not lost; poll; timers. */
#include "runtime/pv.h"

static volatile unsigned hits[64];
static void handler(unsigned port) {
  if (port < 64) hits[port]++;
}

static int send(unsigned port) {
  struct evtchn_send s = {.port = port};
  return (int)HC(__HYPERVISOR_event_channel_op, EVTCHNOP_send, &s, 0, 0, 0);
}
static int pending(unsigned p) { return (shared->evtchn_pending[p / (sizeof(xen_ulong_t) * 8)] >> (p % (sizeof(xen_ulong_t) * 8))) & 1; }
static void set_mask(unsigned p, int on) {
  xen_ulong_t bit = (xen_ulong_t)1 << (p % (sizeof(xen_ulong_t) * 8));
  if (on) __atomic_or_fetch(&shared->evtchn_mask[p / (sizeof(xen_ulong_t) * 8)], bit, __ATOMIC_SEQ_CST);
  else __atomic_and_fetch(&shared->evtchn_mask[p / (sizeof(xen_ulong_t) * 8)], ~bit, __ATOMIC_SEQ_CST);
}
static void clear_pending(unsigned p) {
  xen_ulong_t bit = (xen_ulong_t)1 << (p % (sizeof(xen_ulong_t) * 8));
  __atomic_and_fetch(&shared->evtchn_pending[p / (sizeof(xen_ulong_t) * 8)], ~bit, __ATOMIC_SEQ_CST);
}

void test_main(void) {
  vcpu_info_t *vi = &shared->vcpu_info[0];
  install_traps();
  install_events(handler);
  check(vi->evtchn_upcall_mask == 1, "events start masked");
  struct evtchn_alloc_unbound au = {.dom = DOMID_SELF, .remote_dom = DOMID_SELF};
  check(HC(__HYPERVISOR_event_channel_op, EVTCHNOP_alloc_unbound, &au, 0, 0, 0) == 0 && au.port > 0, "alloc_unbound");
  struct evtchn_bind_interdomain bi = {.remote_dom = DOMID_SELF, .remote_port = au.port};
  check(HC(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_interdomain, &bi, 0, 0, 0) == 0 && bi.local_port != au.port,
        "bind_interdomain to our own unbound port (a loopback channel)");
  unsigned a = au.port, b = bi.local_port;
  clear_pending(b);
  /* 1: port masked. */
  set_mask(b, 1);
  vi->evtchn_upcall_mask = 0;
  send(a);
  check(hits[b] == 0 && pending(b), "a masked port: not delivered, but pending");
  struct evtchn_unmask um = {.port = b};
  HC(__HYPERVISOR_event_channel_op, EVTCHNOP_unmask, &um, 0, 0, 0);
  check(hits[b] == 1 && !pending(b), "EVTCHNOP_unmask: the event is delivered (not lost)");
  /* 2: upcalls masked (the virtual IF). */
  vi->evtchn_upcall_mask = 1;
  send(a);
  HC(__HYPERVISOR_xen_version, 0, 0, 0, 0, 0);
  check(hits[b] == 1 && vi->evtchn_upcall_pending, "upcall_mask set: not delivered on hypercall return");
  vi->evtchn_upcall_mask = 0;
  HC(__HYPERVISOR_xen_version, 0, 0, 0, 0, 0);
  check(hits[b] == 2, "upcall_mask cleared: delivered on the next hypercall return");
  /* 3: poll works with events masked. */
  vi->evtchn_upcall_mask = 1;
  send(a);
  evtchn_port_t ports[1] = {b};
  struct sched_poll sp = {.nr_ports = 1, .timeout = 0};
  set_xen_guest_handle(sp.ports, ports);
  check(HC(__HYPERVISOR_sched_op, SCHEDOP_poll, &sp, 0, 0, 0) == 0 && pending(b) && hits[b] == 2, "poll returns at once for a pending port, masked");
  clear_pending(b);
  vi->evtchn_upcall_pending = 0;
  unsigned long long t0 = now_ns();
  sp.timeout = t0 + 2000000;
  check(HC(__HYPERVISOR_sched_op, SCHEDOP_poll, &sp, 0, 0, 0) == 0 && now_ns() >= t0 + 2000000, "poll with a timeout waits until it passes");
  /* 4: single-shot timer and block. */
  struct evtchn_bind_virq bv = {.virq = VIRQ_TIMER, .vcpu = 0};
  check(HC(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_virq, &bv, 0, 0, 0) == 0, "bind VIRQ_TIMER");
  check(HC(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_virq, &bv, 0, 0, 0) == -17, "bind VIRQ_TIMER twice: -EEXIST");
  unsigned tp = bv.port;
  HC(__HYPERVISOR_vcpu_op, VCPUOP_stop_periodic_timer, 0, 0, 0, 0);
  hits[tp] = 0;
  t0 = now_ns();
  uint64_t when = t0 + 5000000;
#ifdef __x86_64__
  HC(__HYPERVISOR_set_timer_op, when, 0, 0, 0, 0);
#else
  HC(__HYPERVISOR_set_timer_op, (uint32_t)when, (uint32_t)(when >> 32), 0, 0, 0);
#endif
  HC(__HYPERVISOR_sched_op, SCHEDOP_block, 0, 0, 0, 0);
  check(hits[tp] == 1 && now_ns() >= when, "set_timer_op + block: VIRQ_TIMER wakes us after the deadline");
  struct evtchn_close cl = {.port = a};
  check(HC(__HYPERVISOR_event_channel_op, EVTCHNOP_close, &cl, 0, 0, 0) == 0, "close");
  check(send(a) == -22, "send on a closed port: -EINVAL");
  check(send(b) == 0, "send on the other end (now unbound): dropped");
  struct evtchn_status es = {.dom = DOMID_SELF, .port = b};
  check(HC(__HYPERVISOR_event_channel_op, EVTCHNOP_status, &es, 0, 0, 0) == 0 && es.status == EVTCHNSTAT_unbound, "status: unbound");
}
