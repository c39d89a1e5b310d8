/* A guest that sleeps: it blocks (SCHEDOP_block) on its one-shot timer N times and measures how
 * long after each deadline it runs again, while other domains may be spinning. With the credit
 * scheduler's BOOST the woken vCPU preempts them at once.
 *
 * Command line: n=N (default 10) period=NS (default 3000000) burn=NS (default 0).
 * Prints "wake i: late T ns" per wake-up, then "wakeups N max_late T ns" and powers off.
 * With burn=NS it spins for NS after each wake-up and prints nothing: a vCPU that tries to live
 * on BOOST (wake often, then compute) to get more than its share. */
#include "runtime/pv.h"

static volatile unsigned long fired, spins;
static unsigned timer_port;

static void handler(unsigned port) {
  if (port == timer_port) fired++;
}

static void set_timer(uint64_t when) {
#ifdef __x86_64__
  HC(__HYPERVISOR_set_timer_op, when, 0, 0, 0, 0);
#else
  HC(__HYPERVISOR_set_timer_op, (uint32_t)when, (uint32_t)(when >> 32), 0, 0, 0);
#endif
}

void test_main(void) {
  unsigned long n = cmdline_ulong("n", 10), period = cmdline_ulong("period", 3000000), burn = cmdline_ulong("burn", 0);
  install_traps();
  install_events(handler);
  struct evtchn_bind_virq bv = {.virq = VIRQ_TIMER, .vcpu = 0};
  if (HC(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_virq, &bv, 0, 0, 0) != 0) {
    print("bind_virq failed\n");
    shutdown(SHUTDOWN_crash);
  }
  timer_port = bv.port;
  HC(__HYPERVISOR_vcpu_op, VCPUOP_stop_periodic_timer, 0, 0, 0, 0);
  unsigned long long max_late = 0;
  for (unsigned long i = 1; i <= n; i++) {
    unsigned long before = fired;
    uint64_t deadline = now_ns() + period;
    set_timer(deadline);
    while (fired == before) HC(__HYPERVISOR_sched_op, SCHEDOP_block, 0, 0, 0, 0);
    unsigned long long late = now_ns() - deadline;
    if (burn) {
      while (now_ns() < deadline + late + burn)
        for (int k = 0; k < 200; k++) spins++; /* cheap work between looks at the clock */
      continue;
    }
    /* Events are enabled by SCHEDOP_block; mask them again while we print. */
    shared->vcpu_info[0].evtchn_upcall_mask = 1;
    if (late > max_late) max_late = late;
    printf("wake %lu: late %llu ns\n", i, late);
  }
  printf("wakeups %lu max_late %llu ns\n", n, max_late);
  shutdown(SHUTDOWN_poweroff);
}
