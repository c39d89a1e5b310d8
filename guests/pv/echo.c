/* The console-input guest (tsxen run): reads the PV console ring (start_info console.domU),
 * echoes every line back as "echo: LINE" and powers off after a line "quit". It blocks in
 * SCHEDOP_poll on the console port while the ring is empty, so input arriving later wakes it.
 * With a ramdisk it first prints the module's size and first line, and its command line. */
#include "runtime/pv.h"
#include <xen/io/console.h>

static struct xencons_interface *ring;

static void put(const char *s) {
  while (*s) {
    while (ring->out_prod - ring->out_cons >= sizeof(ring->out)) HC(__HYPERVISOR_sched_op, SCHEDOP_yield, 0, 0, 0, 0);
    ring->out[MASK_XENCONS_IDX(ring->out_prod, ring->out)] = *s++;
    __asm__ volatile("" ::: "memory");
    ring->out_prod++;
  }
  struct evtchn_send send = {.port = start_info->console.domU.evtchn};
  HC(__HYPERVISOR_event_channel_op, EVTCHNOP_send, &send, 0, 0, 0);
}

static int get(void) {
  while (ring->in_cons == ring->in_prod) {
    evtchn_port_t port = start_info->console.domU.evtchn;
    struct sched_poll poll = {.nr_ports = 1, .timeout = 0};
    set_xen_guest_handle(poll.ports, &port);
    shared->evtchn_pending[port / (8 * sizeof(long))] &= ~(1UL << (port % (8 * sizeof(long))));
    __asm__ volatile("" ::: "memory");
    if (ring->in_cons != ring->in_prod) break;
    HC(__HYPERVISOR_sched_op, SCHEDOP_poll, &poll, 0, 0, 0);
  }
  int c = (unsigned char)ring->in[MASK_XENCONS_IDX(ring->in_cons, ring->in)];
  __asm__ volatile("" ::: "memory");
  ring->in_cons++;
  return c;
}

void test_main(void) {
  unsigned long *m2p = (unsigned long *)(sizeof(long) == 8 ? 0xffff800000000000UL : 0xf5800000UL);
  ring = (struct xencons_interface *)(VIRT_BASE + (m2p[start_info->console.domU.mfn] << 12));
  if (start_info->cmd_line[0]) {
    put("cmdline: ");
    put((const char *)start_info->cmd_line);
    put("\n");
  }
  if (start_info->mod_len) {
    /* The builder maps the module in the initial mapping; mod_start is its virtual address. */
    const char *mod = (const char *)start_info->mod_start;
    char first[64];
    unsigned n = 0;
    while (n < start_info->mod_len && n < sizeof(first) - 1 && mod[n] != '\n') first[n] = mod[n], n++;
    first[n] = 0;
    printf("module: %lu bytes, first line \"%s\"\n", (unsigned long)start_info->mod_len, first);
  }
  put("echo guest ready\n");
  char line[128];
  for (;;) {
    unsigned n = 0;
    for (;;) {
      int c = get();
      if (c == '\n' || c == '\r') break;
      if (n < sizeof(line) - 1) line[n++] = (char)c;
    }
    line[n] = 0;
    if (n == 0) continue;
    if (strcmp(line, "quit") == 0) break;
    put("echo: ");
    put(line);
    put("\n");
  }
  put("bye\n");
  shutdown(SHUTDOWN_poweroff);
}
