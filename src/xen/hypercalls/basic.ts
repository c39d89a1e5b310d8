// Hypercalls about the vCPU and the domain: traps, callbacks, stacks, FPU, scheduling, time,
// console, version, vm_assist, iret, vcpu_op, segment bases.

import * as S from "../../x86/state.ts";
import { shutdownReasonName } from "../domain.ts";
import { badIret64, failsafeIret32, loadSegment, selectorFault, toggleGuestMode } from "../entry.ts";
import { addr } from "../guestmem.ts";
import {
  CALLBACKF_mask_events,
  CALLBACKOP_register,
  CALLBACKOP_unregister,
  CALLBACKTYPE_event,
  CALLBACKTYPE_failsafe,
  CALLBACKTYPE_nmi,
  CALLBACKTYPE_syscall,
  CALLBACKTYPE_syscall32,
  CALLBACKTYPE_sysenter,
  CONSOLEIO_read,
  CONSOLEIO_write,
  DOMID_SELF,
  E2BIG,
  EEXIST,
  EFAULT,
  SHUTDOWN_poweroff,
  EINVAL,
  ENOENT,
  ENOSYS,
  EPERM,
  ESRCH,
  ETIME,
  HYPERVISOR_COMPAT_VIRT_START,
  SCHEDOP_block,
  SCHEDOP_poll,
  SCHEDOP_remote_shutdown,
  SCHEDOP_shutdown,
  SCHEDOP_shutdown_code,
  SCHEDOP_watchdog,
  SCHEDOP_yield,
  SEGBASE_FS,
  SEGBASE_GS_KERNEL,
  SEGBASE_GS_USER,
  SEGBASE_GS_USER_SEL,
  VCPU_SSHOTTMR_future,
  VCPUOP_down,
  VCPUOP_get_physid,
  VCPUOP_get_runstate_info,
  VCPUOP_initialise,
  VCPUOP_is_up,
  VCPUOP_register_runstate_memory_area,
  VCPUOP_register_vcpu_info,
  VCPUOP_set_periodic_timer,
  VCPUOP_set_singleshot_timer,
  VCPUOP_stop_periodic_timer,
  VCPUOP_stop_singleshot_timer,
  VCPUOP_up,
  VGCF_in_syscall,
  XENNMI_register_callback,
  XENNMI_unregister_callback,
  FLAT_KERNEL_CS64,
  FLAT_RING1_CS,
  TI_MASK_EVENTS,
  VCPUOP_send_nmi,
  VMASST_TYPE_architectural_iopl,
  VMASST_CMD_disable,
  VMASST_CMD_enable,
  VMASST_TYPE_pae_extended_cr3,
  XEN_MAJOR,
  XEN_MINOR,
  XENFEAT_gnttab_map_avail_bits,
  XENFEAT_highmem_assist,
  XENFEAT_mmu_pt_update_preserve_ad,
  XENFEAT_pae_pgdir_above_4gb,
  XENVER_build_id,
  XENVER_capabilities,
  XENVER_changeset,
  XENVER_commandline,
  XENVER_compile_info,
  XENVER_extraversion,
  XENVER_get_features,
  XENVER_guest_handle,
  XENVER_pagesize,
  XENVER_platform_parameters,
  XENVER_version,
} from "../public.ts";
import { RUNSTATE_offline, RUNSTATE_runnable } from "../vcpu.ts";
import { guestContextSize, initialiseVcpu, registerVcpuInfo } from "./vcpuctx.ts";
import { type Call, NO_RESULT } from "./call.ts";

const MAX_CONSOLE_WRITE = 16384;

// ------------------------------------------------------------------ traps and callbacks

/** set_trap_table(trap_info[]): only the listed vectors change; NULL clears all (pitfall 15). */
export function setTrapTable(c: Call): number {
  const v = c.v;
  if (c.isNull(0)) {
    v.trapCs.fill(0);
    v.trapFlags.fill(0);
    v.trapLo.fill(0);
    v.trapHi.fill(0);
    return 0;
  }
  const size = c.is64 ? 16 : 8;
  let [lo, hi] = [c.lo(0), c.hi(0)];
  for (let k = 0; k < 256; k++) {
    const b = c.mem.bytes(lo, hi, size);
    const dv = new DataView(b.buffer);
    const vector = b[0];
    const flags = b[1];
    const cs = dv.getUint16(2, true);
    const aLo = dv.getUint32(c.is64 ? 8 : 4, true);
    const aHi = c.is64 ? dv.getUint32(12, true) : 0;
    if (aLo === 0 && aHi === 0) break;
    const ring = c.is64 ? 3 : 1;
    v.trapCs[vector] = (cs & 3) === 0 && (cs & 0xfffc) !== 0 ? cs | ring : cs;
    v.trapFlags[vector] = flags;
    v.trapLo[vector] = aLo | 0;
    v.trapHi[vector] = aHi | 0;
    [lo, hi] = addr(lo, hi, size);
  }
  return 0;
}

/** stack_switch(ss, sp): the kernel stack for user → kernel transitions. */
export function stackSwitch(c: Call): number {
  const v = c.v;
  const ss = c.u(0) & 0xffff;
  if (c.d.is32) {
    // Xen's fixup_guest_stack_selector: RPL 0 becomes 1; the stack must be a ring-1 selector.
    const fixed = (ss & 3) === 0 ? ss | 1 : ss;
    if ((fixed & 3) !== 1) return -EPERM;
    v.kernelSs = fixed;
  } else v.kernelSs = ss;
  v.kernelSpLo = c.lo(1) | 0;
  v.kernelSpHi = c.hi(1) | 0;
  return 0;
}

/** A 64-bit address is canonical (bits 63..47 all equal). */
function canonical(lo: number, hi: number): boolean {
  void lo;
  return ((hi + 0x8000) & 0xffff0000) === 0;
}

/** Xen's fixup_guest_code_selector: a 32-bit guest's RPL-0 selector becomes RPL 1. */
function fixCs(c: Call, cs: number): number {
  return c.d.is32 && (cs & 3) === 0 ? (cs | 1) & 0xffff : cs & 0xffff;
}

/**
 * register_guest_nmi_callback: the NMI callback is trap-table vector 2 with events masked
 * (FLAT_KERNEL_CS / FLAT_COMPAT_KERNEL_CS). An NMI reason already latched in shared_info
 * re-asserts the edge on vCPU 0.
 */
function registerNmi(c: Call, lo: number, hi: number): number {
  const v = c.v;
  if (c.is64 && !canonical(lo, hi)) return -EINVAL;
  v.trapCs[2] = c.is64 ? FLAT_KERNEL_CS64 : FLAT_RING1_CS;
  v.trapFlags[2] = TI_MASK_EVENTS;
  v.trapLo[2] = lo | 0;
  v.trapHi[2] = c.is64 ? hi | 0 : 0;
  const reason = c.d.xen.memory.u8[c.d.sharedInfo + (c.is64 ? 3104 : 2324)];
  if (v.id === 0 && reason !== 0) v.nmiPending = true;
  return 0;
}

function unregisterNmi(c: Call): number {
  const v = c.v;
  v.trapCs[2] = 0;
  v.trapFlags[2] = 0;
  v.trapLo[2] = 0;
  v.trapHi[2] = 0;
  return 0;
}

/** Xen's register_guest_callback / compat_register_guest_callback. */
function setCb(c: Call, type: number, cs: number, lo: number, hi: number, flags: number): number {
  const v = c.v;
  if (c.is64 && !canonical(lo, hi)) return -EINVAL;
  const cb = { cs: fixCs(c, cs), lo: lo | 0, hi: c.is64 ? hi | 0 : 0 };
  const mask = (flags & CALLBACKF_mask_events) !== 0;
  switch (type) {
    case CALLBACKTYPE_event:
      v.eventCallback = cb;
      return 0;
    case CALLBACKTYPE_failsafe:
      v.failsafeCallback = cb;
      v.failsafeDisablesEvents = mask;
      return 0;
    case CALLBACKTYPE_syscall:
      if (!c.is64) return -ENOSYS;
      v.syscallCallback = cb;
      v.syscallDisablesEvents = mask;
      return 0;
    case CALLBACKTYPE_syscall32:
      v.syscall32Callback = cb;
      v.syscall32DisablesEvents = mask;
      return 0;
    case CALLBACKTYPE_sysenter:
      v.sysenterCallback = cb;
      v.sysenterDisablesEvents = mask;
      return 0;
    case CALLBACKTYPE_nmi:
      return registerNmi(c, lo, hi);
    default:
      return -ENOSYS;
  }
}

/** set_callbacks: 32-bit (ev_cs, ev_eip, fs_cs, fs_eip); 64-bit (event, failsafe, syscall). */
export function setCallbacks(c: Call): number {
  if (c.is64) {
    setCb(c, CALLBACKTYPE_event, 0, c.lo(0), c.hi(0), 0);
    setCb(c, CALLBACKTYPE_failsafe, 0, c.lo(1), c.hi(1), 0);
    setCb(c, CALLBACKTYPE_syscall, 0, c.lo(2), c.hi(2), 0);
    return 0;
  }
  setCb(c, CALLBACKTYPE_event, c.u(0), c.u(1), 0, 0);
  setCb(c, CALLBACKTYPE_failsafe, c.u(2), c.u(3), 0, 0);
  return 0;
}

/**
 * callback_op(register, {u16 type, u16 flags, address}) / (unregister, {u16 type}): as Xen,
 * unknown types -ENOSYS (syscall is 64-bit only), only the NMI callback can be unregistered
 * (the others -EINVAL).
 */
export function callbackOp(c: Call): number {
  const cmd = c.u(0);
  if (cmd === CALLBACKOP_register) {
    const b = c.mem.bytes(c.lo(1), c.hi(1), c.is64 ? 16 : 12);
    const dv = new DataView(b.buffer);
    const type = dv.getUint16(0, true);
    const flags = dv.getUint16(2, true);
    if (c.is64) return setCb(c, type, 0, dv.getUint32(8, true), dv.getUint32(12, true), flags);
    return setCb(c, type, dv.getUint32(4, true), dv.getUint32(8, true), 0, flags);
  }
  if (cmd === CALLBACKOP_unregister) {
    const type = c.mem.u16(c.lo(1), c.hi(1));
    switch (type) {
      case CALLBACKTYPE_event:
      case CALLBACKTYPE_failsafe:
      case CALLBACKTYPE_syscall32:
      case CALLBACKTYPE_sysenter:
        return -EINVAL;
      case CALLBACKTYPE_syscall:
        return c.is64 ? -EINVAL : -ENOSYS;
      case CALLBACKTYPE_nmi:
        return unregisterNmi(c);
      default:
        return -ENOSYS;
    }
  }
  return -ENOSYS;
}

/** nmi_op(XENNMI_register_callback, {ulong handler_address, ulong pad}) / (unregister). */
export function nmiOp(c: Call): number {
  const cmd = c.u(0);
  if (cmd === XENNMI_register_callback) {
    const [lo, hi] = c.mem.ulong(c.lo(1), c.hi(1));
    c.mem.ulong(...addr(c.lo(1), c.hi(1), c.ulongBytes)); // the whole struct is copied in
    return registerNmi(c, lo, hi);
  }
  if (cmd === XENNMI_unregister_callback) return unregisterNmi(c);
  return -ENOSYS;
}

export function fpuTaskswitch(c: Call): number {
  c.v.virtualTs = c.u(0) !== 0;
  c.v.syncTs();
  return 0;
}

export function setDebugreg(c: Call): number {
  const reg = c.u(0);
  if (reg > 7 || reg === 4 || reg === 5) return -EINVAL;
  c.v.debugRegs[reg] = c.u(1);
  return 0;
}
export function getDebugreg(c: Call): number {
  const reg = c.u(0);
  if (reg > 7 || reg === 4 || reg === 5) return -EINVAL;
  return c.v.debugRegs[reg] >>> 0;
}

// ------------------------------------------------------------------ console and version

export function consoleIo(c: Call): number {
  const cmd = c.u(0);
  const count = c.u(1);
  if (cmd === CONSOLEIO_write) {
    if (count > MAX_CONSOLE_WRITE) return -E2BIG;
    const b = c.mem.bytes(c.lo(2), c.hi(2), count);
    c.d.xen.consoleWrite(c.d, new TextDecoder("latin1").decode(b));
    return 0;
  }
  if (cmd === CONSOLEIO_read) {
    const n = Math.min(count, c.d.consoleIn.length);
    if (n === 0) return 0;
    const data = Uint8Array.from(c.d.consoleIn.slice(0, n));
    c.mem.write(c.lo(2), c.hi(2), data);
    c.d.consoleIn.splice(0, n);
    return n;
  }
  return -ENOSYS;
}

function putString(c: Call, text: string, size: number): number {
  const b = new Uint8Array(size);
  b.set(new TextEncoder().encode(text).subarray(0, size - 1));
  c.mem.write(c.lo(1), c.hi(1), b);
  return 0;
}

export function xenVersion(c: Call): number {
  const cmd = c.u(0);
  switch (cmd) {
    case XENVER_version:
      return (XEN_MAJOR << 16) | XEN_MINOR;
    case XENVER_extraversion:
      return putString(c, ".0-tsxen", 16);
    case XENVER_compile_info: {
      const b = new Uint8Array(64 + 16 + 32 + 32);
      const enc = new TextEncoder();
      b.set(enc.encode("tsc"), 0);
      b.set(enc.encode("tsxen"), 64);
      b.set(enc.encode("tsxen"), 80);
      b.set(enc.encode("2024"), 112);
      c.mem.write(c.lo(1), c.hi(1), b);
      return 0;
    }
    case XENVER_capabilities:
      return putString(c, "xen-3.0-x86_64 xen-3.0-x86_32p", 1024);
    case XENVER_changeset:
      return putString(c, "tsxen", 64);
    case XENVER_platform_parameters: {
      if (c.is64) {
        c.mem.setU64(c.lo(1), c.hi(1), 0, 0xffff8000 | 0);
      } else c.mem.setU32(c.lo(1), c.hi(1), HYPERVISOR_COMPAT_VIRT_START);
      return 0;
    }
    case XENVER_get_features: {
      const idx = c.mem.u32(c.lo(1), c.hi(1));
      let map = 0;
      if (idx === 0) {
        map =
          (1 << XENFEAT_mmu_pt_update_preserve_ad) |
          (1 << XENFEAT_highmem_assist) |
          (1 << XENFEAT_gnttab_map_avail_bits);
        if (c.d.is32 && (c.d.vmAssist & (1 << VMASST_TYPE_pae_extended_cr3)) !== 0)
          map |= 1 << XENFEAT_pae_pgdir_above_4gb;
      }
      const [lo, hi] = addr(c.lo(1), c.hi(1), 4);
      c.mem.setU32(lo, hi, map);
      return 0;
    }
    case XENVER_pagesize:
      return 4096;
    case XENVER_guest_handle:
      c.mem.write(c.lo(1), c.hi(1), new Uint8Array(16));
      return 0;
    case XENVER_commandline:
      return putString(c, "", 1024);
    case XENVER_build_id:
      return -EPERM;
    default:
      return -ENOSYS;
  }
}

// ------------------------------------------------------------------ vm_assist

/** Types PV guests may enable: 32-bit {0..5}, 64-bit also m2p_strict (32). */
export function vmAssist(c: Call): number {
  const cmd = c.u(0);
  const type = c.u(1);
  const valid32 = 0x3f;
  if (cmd !== VMASST_CMD_enable && cmd !== VMASST_CMD_disable) return -ENOSYS;
  const ok = type < 32 ? ((valid32 >>> type) & 1) !== 0 : c.is64 && type === 32;
  if (!ok) return -EINVAL;
  if (type === 32) return 0; // m2p_strict: accepted (our M2P is always strict)
  if (cmd === VMASST_CMD_enable) c.d.vmAssist |= 1 << type;
  else c.d.vmAssist &= ~(1 << type);
  return 0;
}

// ------------------------------------------------------------------ scheduling

function shutdown(c: Call, reason: number): number {
  c.d.shutdown(reason, reason === 3 ? "the guest asked for SHUTDOWN_crash" : undefined);
  return 0;
}

function yieldNow(c: Call): number {
  c.d.pollBackends();
  c.d.xen.scheduler.yieldRequested = true;
  return 0;
}

function block(c: Call): number {
  const v = c.v;
  v.upcallMask = 0; // SCHEDOP_block enables events
  c.d.pollBackends();
  if (v.upcallPending !== 0) return 0; // already an event: no lost wake-up
  c.d.xen.scheduler.block(v);
  return 0;
}

function poll(c: Call): number {
  const v = c.v;
  const is64 = c.is64;
  const b = c.mem.bytes(c.lo(1), c.hi(1), is64 ? 24 : 16);
  const dv = new DataView(b.buffer);
  const pLo = dv.getUint32(0, true);
  const pHi = is64 ? dv.getUint32(4, true) : 0;
  const n = dv.getUint32(is64 ? 8 : 4, true);
  const tLo = dv.getUint32(is64 ? 16 : 8, true);
  const tHi = dv.getUint32(is64 ? 20 : 12, true);
  if (n > 128) return -EINVAL;
  const ports: number[] = [];
  let [lo, hi] = [pLo, pHi];
  for (let k = 0; k < n; k++) {
    const p = c.mem.u32(lo, hi);
    if (!c.d.evtchn.valid(p)) return -EINVAL;
    ports.push(p);
    [lo, hi] = addr(lo, hi, 4);
  }
  c.d.pollBackends();
  if (c.d.evtchn.anyPending(ports)) return 0;
  const timeout = tHi * 4294967296 + tLo;
  if (timeout !== 0 && timeout <= c.d.xen.clock.now()) return 0;
  v.pollPorts = ports;
  v.pollTimeout = timeout === 0 ? -1 : timeout;
  c.d.xen.scheduler.block(v);
  return 0;
}

export function schedOp(c: Call): number {
  const cmd = c.u(0);
  switch (cmd) {
    case SCHEDOP_yield:
      return yieldNow(c);
    case SCHEDOP_block:
      return block(c);
    case SCHEDOP_shutdown:
      return shutdown(c, c.mem.u32(c.lo(1), c.hi(1)));
    case SCHEDOP_poll:
      return poll(c);
    case SCHEDOP_remote_shutdown: {
      const b = c.mem.bytes(c.lo(1), c.hi(1), 8);
      const dv = new DataView(b.buffer);
      const domid = dv.getUint16(0, true);
      const reason = dv.getUint32(4, true);
      const target = domid === DOMID_SELF ? c.d : c.d.xen.domains.get(domid);
      if (!target) return -ESRCH;
      if (target !== c.d) return -EPERM; // only the control domain may shut others down
      target.shutdown(reason);
      return 0;
    }
    case SCHEDOP_shutdown_code:
      c.d.xen.log(`domain ${c.d.id}: shutdown code ${shutdownReasonName(c.mem.u32(c.lo(1), c.hi(1)))}`);
      return 0;
    case SCHEDOP_watchdog:
      return -ENOSYS;
    default:
      return -ENOSYS;
  }
}

/** sched_op_compat(cmd, arg): like sched_op but SCHEDOP_shutdown's reason is by value. */
export function schedOpCompat(c: Call): number {
  const cmd = c.u(0);
  switch (cmd) {
    case SCHEDOP_yield:
      return yieldNow(c);
    case SCHEDOP_block:
      return block(c);
    case SCHEDOP_shutdown:
      return shutdown(c, c.u(1) & 0xff); // Xen keeps (u8)arg (pitfall 18)
    default:
      return -ENOSYS;
  }
}

// ------------------------------------------------------------------ time

/** set_timer_op(abs_ns): one-shot timer; 0 cancels. 32-bit: (lo, hi). */
export function setTimerOp(c: Call): number {
  const lo = c.lo(0);
  const hi = c.is64 ? c.hi(0) : c.u(1);
  const t = hi * 4294967296 + lo;
  if (hi >= 0x80000000) {
    // A negative deadline (Linux's "far future" trick sets the top bit): treat as far future.
    c.v.singleshot = -1;
    return 0;
  }
  c.v.singleshot = t === 0 ? -1 : t;
  return 0;
}

// ------------------------------------------------------------------ vcpu_op

/**
 * vcpu_op(cmd, vcpuid, arg), as Xen's do_vcpu_op: -ENOENT for a vCPU that does not exist.
 * initialise (once: -EEXIST after), up (-EINVAL before initialise), down (the last vCPU going
 * down shuts the domain down, poweroff), is_up, runstate info and area, timers,
 * register_vcpu_info, send_nmi; others -ENOSYS.
 */
export function vcpuOp(c: Call): number {
  const cmd = c.u(0);
  const id = c.u(1);
  const target = c.d.vcpus[id];
  if (!target) return -ENOENT;
  const now = c.d.xen.now();
  switch (cmd) {
    case VCPUOP_is_up:
      return target.online ? 1 : 0;
    case VCPUOP_up:
      if (!target.initialised) return -EINVAL;
      if (!target.online) {
        target.online = true;
        target.runstate = RUNSTATE_runnable;
      }
      return 0;
    case VCPUOP_down: {
      if (!c.d.vcpus.some((x) => x !== target && x.online)) {
        c.d.shutdown(SHUTDOWN_poweroff);
        return 0;
      }
      if (target.online) {
        target.online = false;
        target.blocked = false;
        target.pollPorts = null;
        target.runstate = RUNSTATE_offline;
        target.writeRunstateArea();
        target.cpu.requestExit();
      }
      if (target === c.v) c.d.xen.scheduler.yieldRequested = true;
      return 0;
    }
    case VCPUOP_initialise: {
      const b = c.mem.bytes(c.lo(2), c.hi(2), guestContextSize(c.is64));
      if (target.initialised) return -EEXIST;
      return initialiseVcpu(c, target, b);
    }
    case VCPUOP_get_runstate_info:
      c.mem.write(c.lo(2), c.hi(2), target.runstateInfo(now));
      return 0;
    case VCPUOP_register_runstate_memory_area: {
      // {u64 addr}: guest_handle_okay (-EFAULT), then written now and at every switch in and
      // out; a copy that faults is ignored, as Xen.
      const [aLo, aHi] = c.mem.u64(c.lo(2), c.hi(2));
      const hi = c.is64 ? aHi : 0;
      if (!c.handleOkay(aLo, hi, c.is64 ? 48 : 44)) return -EFAULT;
      target.runstateAreaLo = aLo | 0;
      target.runstateAreaHi = hi | 0;
      if (aLo !== 0 || hi !== 0) {
        try {
          c.mem.write(aLo, hi, target.runstateInfo(target === c.v ? target.runstateEntry : now));
        } catch {
          // ignored
        }
      }
      return 0;
    }
    case VCPUOP_set_periodic_timer: {
      const [plo, phi] = c.mem.u64(c.lo(2), c.hi(2));
      const period = phi * 4294967296 + plo;
      if (period < 1_000_000) return -EINVAL; // Xen's minimum: 1 ms
      target.periodPeriod = period;
      target.periodNext = now + period;
      return 0;
    }
    case VCPUOP_stop_periodic_timer:
      target.periodPeriod = 0;
      target.periodNext = -1;
      return 0;
    case VCPUOP_set_singleshot_timer: {
      if (target !== c.v) return -EINVAL;
      const b = c.mem.bytes(c.lo(2), c.hi(2), 12);
      const dv = new DataView(b.buffer);
      const t = dv.getUint32(4, true) * 4294967296 + dv.getUint32(0, true);
      const flags = dv.getUint32(8, true);
      if ((flags & VCPU_SSHOTTMR_future) !== 0 && t < now) return -ETIME;
      target.singleshot = t;
      return 0;
    }
    case VCPUOP_stop_singleshot_timer:
      if (target !== c.v) return -EINVAL;
      target.singleshot = -1;
      return 0;
    case VCPUOP_register_vcpu_info:
      return registerVcpuInfo(c, target);
    case VCPUOP_get_physid:
      return -EINVAL;
    case VCPUOP_send_nmi:
      if (!c.isNull(2)) return -EINVAL;
      if (!target.nmiPending) {
        target.nmiPending = true;
        if (target !== c.v) target.cpu.requestExit();
      }
      return 0;
    default:
      return -ENOSYS;
  }
}

// ------------------------------------------------------------------ segment bases

export function setSegmentBase(c: Call): number {
  const v = c.v;
  const s = v.s;
  const which = c.u(0);
  const lo = c.lo(1) | 0;
  const hi = c.hi(1) | 0;
  if (((hi + 0x8000) & 0xffff0000) !== 0 && which !== SEGBASE_GS_USER_SEL) return -EINVAL;
  switch (which) {
    case SEGBASE_FS:
      s[S.segWord(S.SEG_FS, S.SEG_BASE_LO)] = lo;
      s[S.segWord(S.SEG_FS, S.SEG_BASE_HI)] = hi;
      v.cpu.segmentChanged(S.SEG_FS);
      return 0;
    case SEGBASE_GS_USER:
      s[S.MSR_KGSBASE_LO] = lo;
      s[S.MSR_KGSBASE_HI] = hi;
      return 0;
    case SEGBASE_GS_KERNEL:
      s[S.segWord(S.SEG_GS, S.SEG_BASE_LO)] = lo;
      s[S.segWord(S.SEG_GS, S.SEG_BASE_HI)] = hi;
      v.cpu.segmentChanged(S.SEG_GS);
      return 0;
    case SEGBASE_GS_USER_SEL: {
      // swapgs; mov %gs, sel; swapgs: GS gets the selector, the user base its descriptor's.
      const kLo = s[S.segWord(S.SEG_GS, S.SEG_BASE_LO)];
      const kHi = s[S.segWord(S.SEG_GS, S.SEG_BASE_HI)];
      if (!loadSegment(v, S.SEG_GS, c.u(1) & 0xffff, 3)) {
        if (!loadSegment(v, S.SEG_GS, 0, 3)) return -EINVAL;
      }
      s[S.MSR_KGSBASE_LO] = s[S.segWord(S.SEG_GS, S.SEG_BASE_LO)];
      s[S.MSR_KGSBASE_HI] = 0;
      s[S.segWord(S.SEG_GS, S.SEG_BASE_LO)] = kLo;
      s[S.segWord(S.SEG_GS, S.SEG_BASE_HI)] = kHi;
      v.cpu.segmentChanged(S.SEG_GS);
      return 0;
    }
    default:
      return -EINVAL;
  }
}

// ------------------------------------------------------------------ iret

/**
 * HYPERVISOR_iret. 64-bit: {rax, r11, rcx, flags, rip, cs, rflags, rsp, ss} at RSP
 * (xen-pv-abi.md §5.3). 32-bit (compat): {eax, eip, cs, eflags, [esp, ss]} at ESP.
 * Both end NMI masking (Xen's async_exception_cleanup). A frame that cannot be read, a return
 * to ring 0, or a 64-bit return to user mode with no user page table crash the domain; CS/SS
 * that cannot be loaded go to the failsafe callback (32-bit) or fault in the guest at the
 * context it asked for (64-bit), as Xen's exit path does.
 */
export function iret(c: Call): number {
  const v = c.v;
  const s = v.s;
  const d = c.d;
  const cpu = v.cpu;
  const spLo = s[S.REG_ESP * 2] >>> 0;
  const spHi = d.is64 ? s[S.REG_ESP * 2 + 1] >>> 0 : 0;
  const archIopl = (d.vmAssist & (1 << VMASST_TYPE_architectural_iopl)) !== 0;
  if (d.is64) {
    let b: Uint8Array;
    try {
      b = c.mem.bytes(spLo, spHi, 72);
    } catch {
      d.crash("iret: cannot read the iret frame");
      return NO_RESULT;
    }
    const dv = new DataView(b.buffer);
    const q = (i: number): [number, number] => [dv.getUint32(i * 8, true), dv.getUint32(i * 8 + 4, true)];
    const [raxLo, raxHi] = q(0);
    const [r11Lo, r11Hi] = q(1);
    const [rcxLo, rcxHi] = q(2);
    const [flags] = q(3);
    const [ripLo, ripHi] = q(4);
    const [cs] = q(5);
    const [rfl] = q(6);
    const [rspLo, rspHi] = q(7);
    const [ss] = q(8);
    const toUser = (cs & 3) === 3;
    if (toUser) {
      if (v.guestTableUser === 0) {
        d.crash("iret to user mode without a user page table");
        return NO_RESULT;
      }
      if (v.kernelMode) toggleGuestMode(v);
    }
    if (archIopl) v.iopl = (rfl >>> 12) & 3;
    const csSel = (cs | 3) & 0xffff;
    const ssSel = (ss | 3) & 0xffff;
    if ((flags & VGCF_in_syscall) === 0) {
      s[11 * 2] = r11Lo | 0;
      s[11 * 2 + 1] = r11Hi | 0;
      s[1 * 2] = rcxLo | 0;
      s[1 * 2 + 1] = rcxHi | 0;
    }
    s[0] = raxLo | 0;
    s[1] = raxHi | 0;
    const newFlags = ((rfl & ~(S.F_IOPL | S.F_VM)) | S.F_IF) >>> 0;
    v.upcallMask = (rfl & S.F_IF) === 0 ? 1 : 0;
    v.nmiMasked = false;
    s[S.CPL] = 3;
    const csOk = loadSegment(v, S.SEG_CS, csSel, 3);
    const ssOk = csOk && loadSegment(v, S.SEG_SS, ssSel, 3);
    if (!csOk || !ssOk) {
      const [vec, err] = csOk ? selectorFault(v, ssSel, true) : selectorFault(v, csSel, false);
      cpu.setEflags(newFlags);
      badIret64(v, { cs: csSel, ss: ssSel, ripLo, ripHi, spLo: rspLo, spHi: rspHi, flags: newFlags, fromUser: toUser }, vec, err);
      return NO_RESULT;
    }
    s[S.RIP_LO] = ripLo | 0;
    s[S.RIP_HI] = ripHi | 0;
    s[S.REG_ESP * 2] = rspLo | 0;
    s[S.REG_ESP * 2 + 1] = rspHi | 0;
    cpu.setEflags(newFlags);
    cpu.updateMode();
    return NO_RESULT;
  }
  // compat (Xen's compat_iret)
  let b: Uint8Array;
  try {
    b = c.mem.bytes(spLo, 0, 16);
  } catch {
    d.crash("iret: cannot read the iret frame");
    return NO_RESULT;
  }
  const dv = new DataView(b.buffer);
  const eax = dv.getUint32(0, true);
  const eip = dv.getUint32(4, true);
  const cs = dv.getUint32(8, true) & 0xffff;
  const eflags = dv.getUint32(12, true);
  if ((cs & 3) === 0) {
    d.crash(`iret: return to ring 0 (cs 0x${cs.toString(16)})`);
    return NO_RESULT;
  }
  let esp: number;
  let ss: number;
  if ((cs & 3) === 1) {
    esp = (spLo + 16) >>> 0;
    ss = s[S.segWord(S.SEG_SS, S.SEG_SEL)] & 0xffff;
  } else {
    try {
      const b2 = c.mem.bytes((spLo + 16) >>> 0, 0, 8);
      const dv2 = new DataView(b2.buffer);
      esp = dv2.getUint32(0, true);
      ss = dv2.getUint32(4, true) & 0xffff;
    } catch {
      d.crash("iret: cannot read the iret frame");
      return NO_RESULT;
    }
  }
  if (archIopl) v.iopl = (eflags >>> 12) & 3;
  const newFlags = ((eflags & ~(S.F_IOPL | S.F_VM)) | S.F_IF) >>> 0;
  s[0] = eax | 0;
  s[1] = 0;
  v.upcallMask = (eflags & S.F_IF) === 0 ? 1 : 0;
  v.nmiMasked = false;
  const rpl = cs & 3;
  const prevCpl = s[S.CPL];
  s[S.CPL] = rpl;
  const ok =
    loadSegment(v, S.SEG_CS, cs, rpl) && (rpl === 1 || loadSegment(v, S.SEG_SS, ss, rpl));
  if (!ok) {
    s[S.CPL] = prevCpl;
    cpu.setEflags(newFlags);
    failsafeIret32(
      v,
      { cs, ss, ripLo: eip, ripHi: 0, spLo: esp, spHi: 0, flags: newFlags, fromUser: (cs & 2) !== 0 },
      `cs 0x${cs.toString(16)} / ss 0x${ss.toString(16)} cannot be loaded`,
    );
    return NO_RESULT;
  }
  s[S.REG_ESP * 2] = esp | 0;
  s[S.RIP_LO] = eip | 0;
  s[S.RIP_HI] = 0;
  cpu.setEflags(newFlags);
  cpu.updateMode();
  return NO_RESULT;
}
