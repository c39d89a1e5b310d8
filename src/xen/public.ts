// Numbers of the Xen public ABI (xen/include/public, as in xen-pv-abi.md §4.3, §4.4): errno
// values, hypercall numbers, sub-ops, selectors, structure offsets that several files share.

// ---- errno (returned negated) --------------------------------------------------------------
export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EINTR = 4;
export const EIO = 5;
export const E2BIG = 7;
export const EBADF = 9;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENXIO = 6;
export const ENODEV = 19;
export const EINVAL = 22;
export const ENOSPC = 28;
export const ERANGE = 34;
export const ENOSYS = 38;
export const ETIME = 62;
export const EOPNOTSUPP = 95;

// ---- hypercall numbers -----------------------------------------------------------------------
export const HYPERVISOR_set_trap_table = 0;
export const HYPERVISOR_mmu_update = 1;
export const HYPERVISOR_set_gdt = 2;
export const HYPERVISOR_stack_switch = 3;
export const HYPERVISOR_set_callbacks = 4;
export const HYPERVISOR_fpu_taskswitch = 5;
export const HYPERVISOR_sched_op_compat = 6;
export const HYPERVISOR_platform_op = 7;
export const HYPERVISOR_set_debugreg = 8;
export const HYPERVISOR_get_debugreg = 9;
export const HYPERVISOR_update_descriptor = 10;
export const HYPERVISOR_memory_op = 12;
export const HYPERVISOR_multicall = 13;
export const HYPERVISOR_update_va_mapping = 14;
export const HYPERVISOR_set_timer_op = 15;
export const HYPERVISOR_event_channel_op_compat = 16;
export const HYPERVISOR_xen_version = 17;
export const HYPERVISOR_console_io = 18;
export const HYPERVISOR_physdev_op_compat = 19;
export const HYPERVISOR_grant_table_op = 20;
export const HYPERVISOR_vm_assist = 21;
export const HYPERVISOR_update_va_mapping_otherdomain = 22;
export const HYPERVISOR_iret = 23;
export const HYPERVISOR_vcpu_op = 24;
export const HYPERVISOR_set_segment_base = 25;
export const HYPERVISOR_mmuext_op = 26;
export const HYPERVISOR_xsm_op = 27;
export const HYPERVISOR_nmi_op = 28;
export const HYPERVISOR_sched_op = 29;
export const HYPERVISOR_callback_op = 30;
export const HYPERVISOR_event_channel_op = 32;
export const HYPERVISOR_physdev_op = 33;

// ---- shutdown reasons (sched.h) ----------------------------------------------------------------
export const SHUTDOWN_poweroff = 0;
export const SHUTDOWN_reboot = 1;
export const SHUTDOWN_suspend = 2;
export const SHUTDOWN_crash = 3;
export const SHUTDOWN_watchdog = 4;
export const SHUTDOWN_soft_reset = 5;
export const SHUTDOWN_NAMES = ["poweroff", "reboot", "suspend", "crash", "watchdog", "soft_reset"] as const;

// ---- sched_op -----------------------------------------------------------------------------------
export const SCHEDOP_yield = 0;
export const SCHEDOP_block = 1;
export const SCHEDOP_shutdown = 2;
export const SCHEDOP_poll = 3;
export const SCHEDOP_remote_shutdown = 4;
export const SCHEDOP_shutdown_code = 5;
export const SCHEDOP_watchdog = 6;

// ---- console_io ---------------------------------------------------------------------------------
export const CONSOLEIO_write = 0;
export const CONSOLEIO_read = 1;

// ---- xen_version --------------------------------------------------------------------------------
export const XENVER_version = 0;
export const XENVER_extraversion = 1;
export const XENVER_compile_info = 2;
export const XENVER_capabilities = 3;
export const XENVER_changeset = 4;
export const XENVER_platform_parameters = 5;
export const XENVER_get_features = 6;
export const XENVER_pagesize = 7;
export const XENVER_guest_handle = 8;
export const XENVER_commandline = 9;
export const XENVER_build_id = 10;
/** The Xen version tsxen reports: 4.17 (Debian 12's). */
export const XEN_MAJOR = 4;
export const XEN_MINOR = 17;

// ---- vm_assist ----------------------------------------------------------------------------------
export const VMASST_CMD_enable = 0;
export const VMASST_CMD_disable = 1;
export const VMASST_TYPE_4gb_segments = 0;
export const VMASST_TYPE_4gb_segments_notify = 1;
export const VMASST_TYPE_writable_pagetables = 2;
export const VMASST_TYPE_pae_extended_cr3 = 3;
export const VMASST_TYPE_architectural_iopl = 4;
export const VMASST_TYPE_runstate_update_flag = 5;
export const VMASST_TYPE_m2p_strict = 32;

// ---- callbacks ----------------------------------------------------------------------------------
export const CALLBACKTYPE_event = 0;
export const CALLBACKTYPE_failsafe = 1;
export const CALLBACKTYPE_syscall = 2;
export const CALLBACKTYPE_sysenter_deprecated = 3;
export const CALLBACKTYPE_nmi = 4;
export const CALLBACKTYPE_sysenter = 5;
export const CALLBACKTYPE_syscall32 = 7;
export const CALLBACKF_mask_events = 1;
export const CALLBACKOP_register = 0;
export const CALLBACKOP_unregister = 1;

// ---- nmi_op -------------------------------------------------------------------------------------
export const XENNMI_register_callback = 0;
export const XENNMI_unregister_callback = 1;

// ---- vcpu_op ------------------------------------------------------------------------------------
export const VCPUOP_initialise = 0;
export const VCPUOP_up = 1;
export const VCPUOP_down = 2;
export const VCPUOP_is_up = 3;
export const VCPUOP_get_runstate_info = 4;
export const VCPUOP_register_runstate_memory_area = 5;
export const VCPUOP_set_periodic_timer = 6;
export const VCPUOP_stop_periodic_timer = 7;
export const VCPUOP_set_singleshot_timer = 8;
export const VCPUOP_stop_singleshot_timer = 9;
export const VCPUOP_register_vcpu_info = 10;
export const VCPUOP_send_nmi = 11;
export const VCPUOP_get_physid = 12;
export const VCPU_SSHOTTMR_future = 1;

// ---- memory_op ----------------------------------------------------------------------------------
export const XENMEM_increase_reservation = 0;
export const XENMEM_decrease_reservation = 1;
export const XENMEM_maximum_ram_page = 2;
export const XENMEM_current_reservation = 3;
export const XENMEM_maximum_reservation = 4;
export const XENMEM_machphys_mfn_list = 5;
export const XENMEM_populate_physmap = 6;
export const XENMEM_memory_map = 9;
export const XENMEM_machine_memory_map = 10;
export const XENMEM_machphys_mapping = 12;
export const XENMEM_maximum_gpfn = 14;

// ---- mmu_update / mmuext_op / update_va_mapping -------------------------------------------------
export const MMU_NORMAL_PT_UPDATE = 0;
export const MMU_MACHPHYS_UPDATE = 1;
export const MMU_PT_UPDATE_PRESERVE_AD = 2;
export const MMU_PT_UPDATE_NO_TRANSLATE = 3;
export const MMUEXT_PIN_L1_TABLE = 0;
export const MMUEXT_PIN_L2_TABLE = 1;
export const MMUEXT_PIN_L3_TABLE = 2;
export const MMUEXT_PIN_L4_TABLE = 3;
export const MMUEXT_UNPIN_TABLE = 4;
export const MMUEXT_NEW_BASEPTR = 5;
export const MMUEXT_TLB_FLUSH_LOCAL = 6;
export const MMUEXT_INVLPG_LOCAL = 7;
export const MMUEXT_TLB_FLUSH_MULTI = 8;
export const MMUEXT_INVLPG_MULTI = 9;
export const MMUEXT_TLB_FLUSH_ALL = 10;
export const MMUEXT_INVLPG_ALL = 11;
export const MMUEXT_FLUSH_CACHE = 12;
export const MMUEXT_SET_LDT = 13;
export const MMUEXT_NEW_USER_BASEPTR = 15;
export const MMUEXT_CLEAR_PAGE = 16;
export const MMUEXT_COPY_PAGE = 17;
export const MMUEXT_FLUSH_CACHE_GLOBAL = 18;
export const MMUEXT_MARK_SUPER = 19;
export const MMUEXT_UNMARK_SUPER = 20;
export const UVMF_NONE = 0;
export const UVMF_TLB_FLUSH = 1;
export const UVMF_INVLPG = 2;
export const UVMF_FLUSHTYPE_MASK = 3;
export const UVMF_ALL = 4;

// ---- event channels -----------------------------------------------------------------------------
export const EVTCHNOP_bind_interdomain = 0;
export const EVTCHNOP_bind_virq = 1;
export const EVTCHNOP_bind_pirq = 2;
export const EVTCHNOP_close = 3;
export const EVTCHNOP_send = 4;
export const EVTCHNOP_status = 5;
export const EVTCHNOP_alloc_unbound = 6;
export const EVTCHNOP_bind_ipi = 7;
export const EVTCHNOP_bind_vcpu = 8;
export const EVTCHNOP_unmask = 9;
export const EVTCHNOP_reset = 10;
export const EVTCHNOP_init_control = 11;
export const VIRQ_TIMER = 0;
export const VIRQ_DEBUG = 1;
export const VIRQ_CONSOLE = 2;
export const VIRQ_DOM_EXC = 3;
export const NR_VIRQS = 24;

// ---- grant tables ----------------------------------------------------------------------------------
export const GNTTABOP_setup_table = 2;
export const GNTTABOP_query_size = 6;
export const GNTTABOP_set_version = 8;
export const GNTTABOP_get_version = 10;
export const GNTST_okay = 0;
export const GNTST_general_error = -1;
export const GNTST_bad_domain = -2;

// ---- physdev_op ----------------------------------------------------------------------------------
export const PHYSDEVOP_irq_status_query = 5;
export const PHYSDEVOP_set_iopl = 6;
export const PHYSDEVOP_set_iobitmap = 7;
export const PHYSDEVOP_eoi = 12;

// ---- set_segment_base -------------------------------------------------------------------------
export const SEGBASE_FS = 0;
export const SEGBASE_GS_USER = 1;
export const SEGBASE_GS_KERNEL = 2;
export const SEGBASE_GS_USER_SEL = 3;

// ---- domain ids -----------------------------------------------------------------------------------
export const DOMID_SELF = 0x7ff0;
export const DOMID_IO = 0x7ff1;
export const DOMID_XEN = 0x7ff2;

// ---- selectors (xen-pv-abi.md §5.1) ---------------------------------------------------------------
export const FIRST_RESERVED_GDT_ENTRY = 7168;
export const FIRST_RESERVED_GDT_BYTE = FIRST_RESERVED_GDT_ENTRY * 8;
export const FLAT_RING1_CS = 0xe019;
export const FLAT_RING1_DS = 0xe021;
export const FLAT_RING3_CS32 = 0xe02b; // compat guests' user CS
export const FLAT_RING3_DS32 = 0xe033; // compat guests' user DS/SS
export const FLAT_KERNEL_CS64 = 0xe033;
export const FLAT_KERNEL_SS64 = 0xe02b;
export const FLAT_USER_CS32_64 = 0xe023;

// ---- trap_info flags -------------------------------------------------------------------------------
export const TI_DPL_MASK = 3;
export const TI_MASK_EVENTS = 4;

// ---- vcpu_guest_context flags ---------------------------------------------------------------------
export const VGCF_in_syscall = 1 << 8;

/** Features reported by XENVER_get_features(0) to a PV domU (xen-pv-abi.md §4.4). */
export const XENFEAT_mmu_pt_update_preserve_ad = 5;
export const XENFEAT_highmem_assist = 6;
export const XENFEAT_gnttab_map_avail_bits = 7;
export const XENFEAT_pae_pgdir_above_4gb = 4;

// ---- virtual address space of PV guests --------------------------------------------------------------
/** 64-bit: Xen's part of every address space, L4 slots 256..271. */
export const HYPERVISOR_VIRT_START_64 = 0xffff800000000000n;
export const HYPERVISOR_VIRT_END_64 = 0xffff880000000000n;
export const MACH2PHYS_VIRT_START_64 = 0xffff800000000000n;
export const MACH2PHYS_VIRT_END_64 = 0xffff804000000000n;
/** 32-bit PAE (compat): the hypervisor hole starts here by default. */
export const HYPERVISOR_COMPAT_VIRT_START = 0xf5800000;
export const MACH2PHYS_COMPAT_VIRT_START = 0xf5800000;
export const MACH2PHYS_COMPAT_VIRT_END = 0xffe00000;
