/* Hypercall ABI checks: results and error numbers for good and bad arguments. */
#include "runtime/pv.h"

#define ENOSYS 38
#define EINVAL 22
#define EFAULT 14
#define EPERM 1
#define ESRCH 3

void test_main(void) {
  check(HC(__HYPERVISOR_xen_version, XENVER_version, 0, 0, 0, 0) == ((4 << 16) | 17), "xen_version reports 4.17");
  xen_feature_info_t fi = {.submap_idx = 0};
  check(HC(__HYPERVISOR_xen_version, XENVER_get_features, &fi, 0, 0, 0) == 0 &&
            !(fi.submap & (1 << XENFEAT_writable_page_tables)) && !(fi.submap & (1 << XENFEAT_auto_translated_physmap)),
        "get_features: a PV domU's features (no writable_page_tables, no auto_translated_physmap)");
  char caps[1024];
  check(HC(__HYPERVISOR_xen_version, XENVER_capabilities, caps, 0, 0, 0) == 0 &&
            strcmp(caps, "xen-3.0-x86_64 xen-3.0-x86_32p") == 0,
        "capabilities");
  xen_platform_parameters_t pp;
  check(HC(__HYPERVISOR_xen_version, XENVER_platform_parameters, &pp, 0, 0, 0) == 0 &&
#ifdef __x86_64__
            pp.virt_start == 0xffff800000000000UL,
#else
            pp.virt_start == 0xf5800000UL,
#endif
        "platform_parameters: the hypervisor's virtual start");
  check(HC(__HYPERVISOR_xen_version, XENVER_pagesize, 0, 0, 0, 0) == 4096, "pagesize");
  check(HC(__HYPERVISOR_xen_version, 99, 0, 0, 0, 0) == -ENOSYS, "unknown xen_version command: -ENOSYS");
  check(HC(__HYPERVISOR_xen_version, XENVER_capabilities, (void *)16, 0, 0, 0) == -EFAULT, "bad buffer: -EFAULT");
  check(HC(200, 0, 0, 0, 0, 0) == -ENOSYS, "hypercall 200: -ENOSYS");
  check(HC(11, 0, 0, 0, 0, 0) == -ENOSYS, "hypercall 11 (unused): -ENOSYS");
  check(HC(__HYPERVISOR_platform_op, 0, 0, 0, 0, 0) == -ENOSYS, "platform_op from a domU: -ENOSYS");
#ifdef __x86_64__
  check(HC(__HYPERVISOR_set_segment_base, 99, 0, 0, 0, 0) == -EINVAL, "set_segment_base bad selector: -EINVAL");
#else
  check(HC(__HYPERVISOR_set_segment_base, 0, 0, 0, 0, 0) == -ENOSYS, "set_segment_base is 64-bit only: -ENOSYS");
#endif
  check(HC(__HYPERVISOR_console_io, 7, 0, 0, 0, 0) == -ENOSYS, "console_io unknown command: -ENOSYS");
  check(HC(__HYPERVISOR_console_io, CONSOLEIO_write, 5, (void *)8, 0, 0) == -EFAULT, "console_io from NULL: -EFAULT");
  check(HC(__HYPERVISOR_vm_assist, VMASST_CMD_enable, 9, 0, 0, 0) == -EINVAL, "vm_assist unknown type: -EINVAL");
  check(HC(__HYPERVISOR_vm_assist, 5, 0, 0, 0, 0) == -ENOSYS, "vm_assist unknown command: -ENOSYS");
  check(HC(__HYPERVISOR_vm_assist, VMASST_CMD_enable, VMASST_TYPE_4gb_segments, 0, 0, 0) == 0, "vm_assist 4gb_segments");
  check(HC(__HYPERVISOR_sched_op, SCHEDOP_shutdown, (void *)4, 0, 0, 0) == -EFAULT, "sched_op shutdown with a bad pointer: -EFAULT");
  check(HC(__HYPERVISOR_sched_op, 99, 0, 0, 0, 0) == -ENOSYS, "sched_op unknown: -ENOSYS");
  check(HC(__HYPERVISOR_sched_op, SCHEDOP_yield, 0, 0, 0, 0) == 0, "sched_op yield");
  check(HC(__HYPERVISOR_sched_op_compat, SCHEDOP_yield, 0, 0, 0, 0) == 0, "sched_op_compat yield");
  struct sched_remote_shutdown rs = {.domain_id = 0x1234, .reason = 0};
  check(HC(__HYPERVISOR_sched_op, SCHEDOP_remote_shutdown, &rs, 0, 0, 0) == -ESRCH, "remote_shutdown of no domain: -ESRCH");
  check(HC(__HYPERVISOR_set_gdt, 0, 7169, 0, 0, 0) == -EINVAL, "set_gdt over 7168 entries: -EINVAL");
  check(HC(__HYPERVISOR_vcpu_op, VCPUOP_is_up, 0, 0, 0, 0) == 1, "vcpu_op is_up(0) = 1");
  check(HC(__HYPERVISOR_vcpu_op, VCPUOP_is_up, 5, 0, 0, 0) == -2, "vcpu_op is_up(5): -ENOENT");
  check(HC(__HYPERVISOR_event_channel_op, EVTCHNOP_init_control, 0, 0, 0, 0) == -ENOSYS, "FIFO event channels: -ENOSYS");
  struct evtchn_send snd = {.port = 0};
  check(HC(__HYPERVISOR_event_channel_op, EVTCHNOP_send, &snd, 0, 0, 0) == -EINVAL, "send on port 0: -EINVAL");
  struct evtchn_bind_virq bv = {.virq = 99, .vcpu = 0};
  check(HC(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_virq, &bv, 0, 0, 0) == -EINVAL, "bind_virq 99: -EINVAL");
  gnttab_set_version_t sv = {.version = 1};
  check(HC(__HYPERVISOR_grant_table_op, GNTTABOP_set_version, &sv, 1, 0, 0) == 0, "grant set_version 1");
  sv.version = 2;
  check(HC(__HYPERVISOR_grant_table_op, GNTTABOP_set_version, &sv, 1, 0, 0) == -ENOSYS && sv.version == 1,
        "grant set_version 2: -ENOSYS, version 1 written back");
  struct gnttab_query_size qs = {.dom = DOMID_SELF};
  check(HC(__HYPERVISOR_grant_table_op, GNTTABOP_query_size, &qs, 1, 0, 0) == 0 && qs.status == GNTST_okay && qs.max_nr_frames >= 1,
        "grant query_size");
  xen_pfn_t frames[1] = {0};
  struct gnttab_setup_table st = {.dom = DOMID_SELF, .nr_frames = 1};
  set_xen_guest_handle(st.frame_list, frames);
  check(HC(__HYPERVISOR_grant_table_op, GNTTABOP_setup_table, &st, 1, 0, 0) == 0 && st.status == GNTST_okay && frames[0] != 0,
        "grant setup_table gives a frame");
  check(HC(__HYPERVISOR_grant_table_op, GNTTABOP_setup_table, &st, 2, 0, 0) == -EINVAL, "grant setup_table with count 2: -EINVAL");
  check(HC(__HYPERVISOR_grant_table_op, GNTTABOP_setup_table | (1 << 12), &st, 1, 0, 0) == -EINVAL,
        "grant_table_op with continuation bits: -EINVAL");
  st.dom = 0x1234;
  check(HC(__HYPERVISOR_grant_table_op, GNTTABOP_setup_table, &st, 1, 0, 0) == 0 && st.status == GNTST_bad_domain,
        "grant setup_table of no domain: GNTST_bad_domain");
  st.dom = DOMID_SELF;
  st.nr_frames = 65;
  check(HC(__HYPERVISOR_grant_table_op, GNTTABOP_setup_table, &st, 1, 0, 0) == 0 && st.status == GNTST_general_error,
        "grant setup_table beyond max_grant_frames (64): GNTST_general_error");
  st.nr_frames = 1;
  set_xen_guest_handle(st.frame_list, (xen_pfn_t *)8);
  check(HC(__HYPERVISOR_grant_table_op, GNTTABOP_setup_table, &st, 1, 0, 0) == 0 && st.status == GNTST_bad_virt_addr,
        "grant setup_table with an unwritable frame list: GNTST_bad_virt_addr");
  check(qs.max_nr_frames == 64 && qs.nr_frames >= 1, "grant query_size: max 64 frames");
  sv.version = 3;
  check(HC(__HYPERVISOR_grant_table_op, GNTTABOP_set_version, &sv, 0, 0, 0) == -EINVAL && sv.version == 1,
        "grant set_version 3: -EINVAL, the current version written back (count ignored)");
  struct gnttab_get_version gv = {.dom = DOMID_SELF};
  check(HC(__HYPERVISOR_grant_table_op, GNTTABOP_get_version, &gv, 0, 0, 0) == 0 && gv.version == 1, "grant get_version");
  gv.dom = 0x1234;
  check(HC(__HYPERVISOR_grant_table_op, GNTTABOP_get_version, &gv, 1, 0, 0) == -ESRCH, "grant get_version of no domain: -ESRCH");
  gv.dom = 0;
  check(HC(__HYPERVISOR_grant_table_op, GNTTABOP_get_version, &gv, 1, 0, 0) == -EPERM, "grant get_version of dom0: -EPERM");
  check(HC(__HYPERVISOR_grant_table_op, GNTTABOP_transfer, &gv, 1, 0, 0) == -ENOSYS, "grant transfer: -ENOSYS");
  static char grant_page[4096] __attribute__((aligned(4096)));
  check(map_page(grant_page, frames[0], 7) == 0, "the grant frame can be mapped");
  struct xen_machphys_mapping mm;
  check(HC(__HYPERVISOR_memory_op, XENMEM_machphys_mapping, &mm, 0, 0, 0) == 0 &&
#ifdef __x86_64__
            mm.v_start == 0xffff800000000000UL,
#else
            mm.v_start == 0xf5800000UL,
#endif
        "machphys_mapping");
  /* The M2P at its fixed address says which PFN our start_info page is. */
  unsigned long si_mfn = virt_to_mfn(start_info);
  unsigned long *m2p = (unsigned long *)mm.v_start;
  check(m2p[si_mfn] == (((unsigned long)start_info - VIRT_BASE) >> 12), "the M2P is readable and agrees with the p2m");
  domid_t self = DOMID_SELF;
  check(HC(__HYPERVISOR_memory_op, XENMEM_maximum_reservation, &self, 0, 0, 0) == (long)start_info->nr_pages,
        "maximum_reservation");
  check(HC(__HYPERVISOR_memory_op, 63, 0, 0, 0, 0) == -ENOSYS, "memory_op unknown: -ENOSYS");
  /* The builder's hypercall page (32-byte stubs). */
  check(hypercall_via_page(__HYPERVISOR_xen_version, XENVER_version, 0, 0) == ((4 << 16) | 17), "hypercall page stub");
  /* multicall: results per entry. */
  multicall_entry_t mc[3];
  memset(mc, 0, sizeof mc);
  mc[0].op = __HYPERVISOR_xen_version;
  mc[0].args[0] = XENVER_version;
  mc[1].op = 250;
  mc[2].op = __HYPERVISOR_multicall;
  check(HC(__HYPERVISOR_multicall, mc, 3, 0, 0, 0) == 0 && mc[0].result == ((4 << 16) | 17) &&
            (long)mc[1].result == -ENOSYS && (long)mc[2].result == -EINVAL,
        "multicall: each entry's result, nested multicall refused");
  struct physdev_set_iopl io = {.iopl = 4};
  check(HC(__HYPERVISOR_physdev_op, PHYSDEVOP_set_iopl, &io, 0, 0, 0) == -EINVAL, "set_iopl 4: -EINVAL");
  check(HC(__HYPERVISOR_set_debugreg, 4, 0, 0, 0, 0) == -EINVAL, "set_debugreg 4: -EINVAL");
  check(HC(__HYPERVISOR_stack_switch, FLAT_KERNEL_SS, 0x1000, 0, 0, 0) == 0, "stack_switch");
  /* Time: valid from the first instruction, monotonic. */
  unsigned long long t0 = now_ns();
  for (volatile int i = 0; i < 10000; i++) {}
  unsigned long long t1 = now_ns();
  check(shared->vcpu_info[0].time.tsc_to_system_mul != 0 && t1 > t0, "vcpu_time_info: time moves forward");
  check(shared->wc_sec > 1600000000u, "wallclock in shared_info");
}
