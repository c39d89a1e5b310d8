// Event-channel, grant-table and physdev hypercalls (xen-pv-abi.md §7.1, §7.2, §4.4).

import { FRAME_SIZE, PGT_WRITABLE } from "../../machine/frames.ts";
import { addr } from "../guestmem.ts";
import {
  DOMID_SELF,
  EFAULT,
  EINVAL,
  ENOSYS,
  EPERM,
  ESRCH,
  EVTCHNOP_alloc_unbound,
  EVTCHNOP_bind_interdomain,
  EVTCHNOP_bind_ipi,
  EVTCHNOP_bind_pirq,
  EVTCHNOP_bind_vcpu,
  EVTCHNOP_bind_virq,
  EVTCHNOP_close,
  EVTCHNOP_reset,
  EVTCHNOP_send,
  EVTCHNOP_status,
  EVTCHNOP_unmask,
  GNTST_bad_domain,
  GNTST_general_error,
  GNTST_okay,
  GNTTABOP_get_version,
  GNTTABOP_query_size,
  GNTTABOP_set_version,
  GNTTABOP_setup_table,
  HYPERVISOR_COMPAT_VIRT_START,
  PHYSDEVOP_eoi,
  PHYSDEVOP_irq_status_query,
  PHYSDEVOP_set_iobitmap,
  PHYSDEVOP_set_iopl,
} from "../public.ts";
import type { Call } from "./call.ts";
import { mapGrantRefs, unmapGrantRefs } from "./grantmap.ts";

/** Size of each EVTCHNOP argument struct (same in both widths). */
const EVTCHN_ARG_SIZE: Record<number, number> = {
  [EVTCHNOP_bind_interdomain]: 12,
  [EVTCHNOP_bind_virq]: 12,
  [EVTCHNOP_bind_pirq]: 12,
  [EVTCHNOP_close]: 4,
  [EVTCHNOP_send]: 4,
  [EVTCHNOP_status]: 24,
  [EVTCHNOP_alloc_unbound]: 8,
  [EVTCHNOP_bind_ipi]: 8,
  [EVTCHNOP_bind_vcpu]: 8,
  [EVTCHNOP_unmask]: 4,
  [EVTCHNOP_reset]: 2,
};

/** Runs one EVTCHNOP on its argument bytes (updated in place); returns the result. */
function evtchnOp(c: Call, cmd: number, b: Uint8Array): number {
  const ev = c.d.evtchn;
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  switch (cmd) {
    case EVTCHNOP_alloc_unbound: {
      const p = ev.allocUnbound(dv.getUint16(0, true), dv.getUint16(2, true));
      if (p < 0) return p;
      dv.setUint32(4, p, true);
      return 0;
    }
    case EVTCHNOP_bind_interdomain: {
      const p = ev.bindInterdomain(dv.getUint16(0, true), dv.getUint32(4, true));
      if (p < 0) return p;
      dv.setUint32(8, p, true);
      return 0;
    }
    case EVTCHNOP_bind_virq: {
      const p = ev.bindVirq(dv.getUint32(0, true), dv.getUint32(4, true));
      if (p < 0) return p;
      dv.setUint32(8, p, true);
      return 0;
    }
    case EVTCHNOP_bind_ipi: {
      const p = ev.bindIpi(dv.getUint32(0, true));
      if (p < 0) return p;
      dv.setUint32(4, p, true);
      return 0;
    }
    case EVTCHNOP_bind_vcpu:
      return ev.bindVcpu(dv.getUint32(0, true), dv.getUint32(4, true));
    case EVTCHNOP_close:
      return ev.close(dv.getUint32(0, true));
    case EVTCHNOP_send:
      return ev.send(dv.getUint32(0, true));
    case EVTCHNOP_unmask:
      return ev.unmask(dv.getUint32(0, true));
    case EVTCHNOP_status: {
      const dom = dv.getUint16(0, true);
      // Xen: no such domain -ESRCH; another domain's channels -EPERM (XSM_TARGET, a domU).
      if (dom !== DOMID_SELF && dom !== c.d.id) return c.d.xen.domains.has(dom) ? -EPERM : -ESRCH;
      const r = ev.status(dv.getUint32(4, true));
      if (typeof r === "number") return r;
      dv.setUint32(8, r[0], true);
      dv.setUint32(12, r[1], true);
      if (r[0] === 1 || r[0] === 2) dv.setUint16(16, r[2], true);
      else dv.setUint32(16, r[2], true);
      dv.setUint32(20, r[3], true);
      return 0;
    }
    case EVTCHNOP_reset: {
      const dom = dv.getUint16(0, true);
      if (dom !== DOMID_SELF && dom !== c.d.id) return -EPERM;
      return ev.reset();
    }
    case EVTCHNOP_bind_pirq:
      return -EPERM;
    default:
      return -ENOSYS;
  }
}

/** event_channel_op(cmd, arg*). */
export function eventChannelOp(c: Call): number {
  const cmd = c.u(0);
  const size = EVTCHN_ARG_SIZE[cmd];
  if (size === undefined) return -ENOSYS;
  const b = c.mem.bytes(c.lo(1), c.hi(1), size);
  const r = evtchnOp(c, cmd, b);
  if (r === 0) c.mem.write(c.lo(1), c.hi(1), b);
  return r;
}

/** event_channel_op_compat(evtchn_op*): {u32 cmd; union} (GNU Mach uses it). */
export function eventChannelOpCompat(c: Call): number {
  const cmd = c.mem.u32(c.lo(0), c.hi(0));
  const size = EVTCHN_ARG_SIZE[cmd];
  if (size === undefined) return -ENOSYS;
  const [ulo, uhi] = addr(c.lo(0), c.hi(0), 4);
  const b = c.mem.bytes(ulo, uhi, size);
  const r = evtchnOp(c, cmd, b);
  if (r === 0) c.mem.write(ulo, uhi, b);
  return r;
}

// ------------------------------------------------------------------ grant tables

/** Grant-table frames a domain may have (Xen 4.17's default max_grant_frames). */
export const MAX_GRANT_FRAMES = 64;
const GNTST_permission_denied = -8;
const GNTST_bad_virt_addr = -5;

/** Xen's rcu_lock_domain_by_any_id + xsm XSM_TARGET: 0 self, -1 no such domain, -2 another. */
function grantTarget(c: Call, dom: number): number {
  if (dom === DOMID_SELF || dom === c.d.id) return 0;
  return dom === 0 || c.d.xen.domains.has(dom) ? -2 : -1;
}

/**
 * grant_table_op(cmd, uop, count) for the table-management ops, as Xen's
 * do_grant_table_op: the command's upper bits (a continuation) must be 0, count < 2^31;
 * setup_table and query_size take exactly one op; set_version and get_version ignore count;
 * map/unmap/copy/transfer and the rest are not implemented (-ENOSYS).
 */
export function grantTableOp(c: Call): number {
  const d = c.d;
  const raw = c.u(0);
  const cmd = raw & 0xfff;
  const count = c.u(2);
  if (raw >>> 12 !== 0 && cmd !== 12 /* cache_flush */) return -EINVAL;
  if (count > 0x7fffffff) return -EINVAL;
  const [lo, hi] = [c.lo(1), c.hi(1)];
  switch (cmd) {
    case GNTTABOP_setup_table: {
      // {u16 dom, u32 nr_frames @4, i16 status @8, handle frame_list @12/@16}
      if (count !== 1) return -EINVAL;
      const b = c.mem.bytes(lo, hi, c.is64 ? 24 : 16);
      const dv = new DataView(b.buffer);
      const dom = dv.getUint16(0, true);
      const nr = dv.getUint32(4, true);
      const flLo = dv.getUint32(c.is64 ? 16 : 12, true);
      const flHi = c.is64 ? dv.getUint32(20, true) : 0;
      if (!handleOkay(c, flLo, flHi, nr * c.ulongBytes)) return -EFAULT;
      let status = GNTST_okay;
      const who = grantTarget(c, dom);
      if (who === -1) status = GNTST_bad_domain;
      else if (who === -2) status = GNTST_permission_denied;
      else if (nr > MAX_GRANT_FRAMES) status = GNTST_general_error;
      else {
        while (d.grantFrames.length < nr) {
          const mfn = d.xen.space.alloc(1)[0];
          d.grantFrames.push(mfn);
          d.sharedFrames.set(mfn, true);
        }
        let [fLo, fHi] = [flLo, flHi];
        try {
          for (let i = 0; i < nr; i++) {
            if (c.is64) c.mem.setU64(fLo, fHi, d.grantFrames[i], 0);
            else c.mem.setU32(fLo, fHi, d.grantFrames[i]);
            [fLo, fHi] = addr(fLo, fHi, c.ulongBytes);
          }
        } catch {
          status = GNTST_bad_virt_addr;
        }
      }
      c.mem.setU16(...addr(lo, hi, 8), status & 0xffff);
      return 0;
    }
    case GNTTABOP_query_size: {
      // {u16 dom, u32 nr_frames @4, u32 max_nr_frames @8, i16 status @12}
      if (count !== 1) return -EINVAL;
      const b = c.mem.bytes(lo, hi, 16);
      const dv = new DataView(b.buffer);
      const who = grantTarget(c, dv.getUint16(0, true));
      if (who === -1) dv.setInt16(12, GNTST_bad_domain, true);
      else if (who === -2) dv.setInt16(12, GNTST_permission_denied, true);
      else {
        dv.setUint32(4, Math.max(1, d.grantFrames.length), true);
        dv.setUint32(8, MAX_GRANT_FRAMES, true);
        dv.setInt16(12, GNTST_okay, true);
      }
      c.mem.write(lo, hi, b);
      return 0;
    }
    case GNTTABOP_set_version: {
      // {u32 version}: 1 (or staying at 1) succeeds; 2 is -ENOSYS (this Xen's max_version is
      // 1, "behave as before set_version was introduced"); anything else -EINVAL. The current
      // version is written back whatever the result.
      const version = c.mem.u32(lo, hi);
      let rc = 0;
      if (version !== 1 && version !== 2) rc = -EINVAL;
      else if (version === 2) rc = -ENOSYS;
      c.mem.setU32(lo, hi, d.grantVersion);
      return rc;
    }
    case GNTTABOP_get_version: {
      // {u16 dom, u16 pad, u32 version}
      const dom = c.mem.u16(lo, hi);
      const who = grantTarget(c, dom);
      if (who === -1) return -ESRCH;
      if (who === -2) return -EPERM;
      c.mem.setU32(...addr(lo, hi, 4), d.grantVersion);
      return 0;
    }
    case GNTTABOP_copy:
      return grantCopy(c, count);
    case GNTTABOP_map_grant_ref:
      return mapGrantRefs(c, count);
    case GNTTABOP_unmap_grant_ref:
      return unmapGrantRefs(c, count);
    default:
      return -ENOSYS;
  }
}

const GNTTABOP_copy = 5;
const GNTTABOP_map_grant_ref = 0;
const GNTTABOP_unmap_grant_ref = 1;
const GNTCOPY_source_gref = 1;
const GNTCOPY_dest_gref = 2;
const GNTST_bad_gntref = -3;
const GNTST_bad_page = -9;
const GNTST_bad_copy_arg = -10;
const GTF_type_mask = 3;
const GTF_permit_access = 1;
const GTF_readonly = 1 << 2;

/**
 * One side of a GNTTABOP_copy resolved to a frame (Xen's gnttab_copy_lock_domain +
 * gnttab_copy_claim_buf): a frame of the caller (DOMID_SELF only), or a grant reference of
 * `domid` whose entry grants the caller access (read-only grants only as the source).
 * Returns the MFN or a GNTST_* status.
 */
function copySide(c: Call, ref: number, domid: number, viaGref: boolean, write: boolean): number {
  const d = c.d;
  if (domid !== DOMID_SELF && !viaGref) return GNTST_permission_denied;
  const rd = domid === DOMID_SELF || domid === d.id ? d : d.xen.domains.get(domid);
  if (!rd) return GNTST_bad_domain;
  const t = d.xen.table;
  let mfn: number;
  if (viaGref) {
    const frames = Math.max(1, rd.grantFrames.length);
    if (ref >= frames * 512) return GNTST_bad_gntref;
    const frame = rd.grantFrames[ref >>> 9];
    if (frame === undefined) return GNTST_general_error; // an entry never set up reads as invalid
    const at = frame * FRAME_SIZE + (ref & 511) * 8;
    const dv = new DataView(d.xen.memory.u8.buffer);
    const flags = dv.getUint16(at, true);
    if ((flags & GTF_type_mask) !== GTF_permit_access || dv.getUint16(at + 2, true) !== d.id)
      return GNTST_general_error;
    if (write && (flags & GTF_readonly) !== 0) return GNTST_general_error;
    mfn = dv.getUint32(at + 4, true);
    if (!t.isValid(mfn) || t.owner[mfn] !== rd.id) return GNTST_bad_page;
  } else {
    mfn = ref;
    if (!t.isValid(mfn) || t.owner[mfn] !== rd.id || t.count[mfn] === 0) return GNTST_bad_page;
  }
  // The destination must be able to be writable (not a page table or descriptor page).
  if (write && t.typeCount[mfn] > 0 && t.type[mfn] !== PGT_WRITABLE) return GNTST_general_error;
  return mfn;
}

/**
 * GNTTABOP_copy {source, dest: {union ref/gmfn, u16 domid, u16 offset}, u16 len, u16 flags,
 * i16 status} × count, as Xen's gnttab_copy for v1 grants: each op's status is written back
 * (permission_denied for another domain's frame named by number, bad_domain, bad_gntref,
 * general_error for an entry that does not grant the caller access or is read-only as the
 * destination, bad_page, bad_copy_arg when offset + len passes the page end); the call
 * returns 0, -EFAULT when an op cannot be read.
 */
function grantCopy(c: Call, count: number): number {
  const w = c.ulongBytes;
  const ptr = 2 * w; // size of a gnttab_copy_ptr: ulong + domid + offset, aligned
  const size = 2 * ptr + (c.is64 ? 8 : 8);
  let [lo, hi] = [c.lo(1), c.hi(1)];
  const u8 = c.d.xen.memory.u8;
  for (let k = 0; k < count; k++) {
    const b = c.mem.bytes(lo, hi, size);
    const dv = new DataView(b.buffer);
    const side = (o: number): [number, number, number] => [
      w === 8 && dv.getUint32(o + 4, true) !== 0 ? 0xffffffff : dv.getUint32(o, true),
      dv.getUint16(o + w, true),
      dv.getUint16(o + w + 2, true),
    ];
    const [sRef, sDom, sOff] = side(0);
    const [dRef, dDom, dOff] = side(ptr);
    const len = dv.getUint16(2 * ptr, true);
    const flags = dv.getUint16(2 * ptr + 2, true);
    let status = GNTST_okay;
    // gnttab_copy_lock_domains: both domains first, then the buffers.
    const lock = (dom: number, viaGref: boolean): number =>
      dom !== DOMID_SELF && !viaGref
        ? GNTST_permission_denied
        : dom === DOMID_SELF || dom === c.d.id || c.d.xen.domains.has(dom)
          ? 0
          : GNTST_bad_domain;
    const locked = lock(sDom, (flags & GNTCOPY_source_gref) !== 0) || lock(dDom, (flags & GNTCOPY_dest_gref) !== 0);
    const src = locked !== 0 ? locked : copySide(c, sRef, sDom, (flags & GNTCOPY_source_gref) !== 0, false);
    const dst = src < 0 ? src : copySide(c, dRef, dDom, (flags & GNTCOPY_dest_gref) !== 0, true);
    if (src < 0) status = src;
    else if (dst < 0) status = dst;
    else if (sOff + len > FRAME_SIZE || dOff + len > FRAME_SIZE) status = GNTST_bad_copy_arg;
    else {
      u8.copyWithin(dst * FRAME_SIZE + dOff, src * FRAME_SIZE + sOff, src * FRAME_SIZE + sOff + len);
      const owner = c.d.xen.domains.get(c.d.xen.table.owner[dst]);
      for (const v of owner?.vcpus ?? []) v.cpu.invalidatePhysRange(dst * FRAME_SIZE, FRAME_SIZE);
    }
    c.mem.setU16(...addr(lo, hi, 2 * ptr + 4), status & 0xffff);
    [lo, hi] = addr(lo, hi, size);
  }
  return 0;
}

/** Entries of grant table frame `i`, for backends in this process. */
export function grantFrameAddress(c: Call, i: number): number {
  return c.d.grantFrames[i] * FRAME_SIZE;
}

// ------------------------------------------------------------------ physdev

/** PIRQs a domU has (Xen: nr_static_irqs + extra_domU_pirqs = 24 GSIs of one IOAPIC + 32). */
export const NR_PIRQS = 56;
const XENIRQSTAT_needs_eoi = 1;
/** Bytes of an I/O bitmap (65536 ports). */
const IOBMP_BYTES = 8192;

/** Xen's guest_handle_okay: the range is a guest address (not Xen's). */
function handleOkay(c: Call, lo: number, hi: number, len: number): boolean {
  if (c.is64) {
    const end = addr(lo, hi, len);
    const inXen = (h: number): boolean => h >>> 0 >= 0xffff8000 && h >>> 0 < 0xffff8800;
    return !inXen(hi) && !inXen(end[1]);
  }
  return (lo >>> 0) + len <= HYPERVISOR_COMPAT_VIRT_START;
}

function physdev(c: Call, cmd: number, lo: number, hi: number): number {
  switch (cmd) {
    case PHYSDEVOP_set_iopl: {
      const iopl = c.mem.u32(lo, hi);
      if (iopl > 3) return -EINVAL;
      c.v.iopl = iopl;
      return 0;
    }
    case PHYSDEVOP_set_iobitmap: {
      // {handle bitmap; u32 nr_ports}: the bitmap (IOBMP_BYTES) is read when ports are used.
      const b = c.mem.bytes(lo, hi, c.is64 ? 16 : 8);
      const dv = new DataView(b.buffer);
      const bLo = dv.getUint32(0, true);
      const bHi = c.is64 ? dv.getUint32(4, true) : 0;
      const nr = dv.getUint32(c.is64 ? 8 : 4, true);
      if (!handleOkay(c, bLo, bHi, IOBMP_BYTES) || nr > 65536) return -EINVAL;
      c.v.iobmpLo = bLo;
      c.v.iobmpHi = bHi;
      c.v.iobmpLimit = nr;
      return 0;
    }
    case PHYSDEVOP_irq_status_query: {
      // {u32 irq; u32 flags}: a PIRQ number in range gets XENIRQSTAT_needs_eoi (Xen sets it
      // for every PIRQ of a PV domain; none is shared here).
      const b = c.mem.bytes(lo, hi, 8);
      const dv = new DataView(b.buffer);
      if (dv.getUint32(0, true) >= NR_PIRQS) return -EINVAL;
      dv.setUint32(4, XENIRQSTAT_needs_eoi, true);
      c.mem.write(lo, hi, b);
      return 0;
    }
    case PHYSDEVOP_eoi: {
      // {u32 irq}: a domU has no PIRQ bound, so there is nothing to EOI.
      c.mem.u32(lo, hi);
      return -EINVAL;
    }
    default:
      return -ENOSYS;
  }
}

export function physdevOp(c: Call): number {
  return physdev(c, c.u(0), c.lo(1), c.hi(1));
}

/**
 * physdev_op_compat({u32 cmd; union u}): the union is at offset 8 for 64-bit guests (it holds
 * pointers), 4 for 32-bit ones; the whole struct is read first (-EFAULT). As Xen's
 * do_physdev_op_compat, only irq_status_query, set_iopl and set_iobitmap are forwarded; every
 * other command is -ENOSYS.
 */
export function physdevOpCompat(c: Call): number {
  c.mem.bytes(c.lo(0), c.hi(0), c.is64 ? 24 : 16);
  const cmd = c.mem.u32(c.lo(0), c.hi(0));
  if (cmd !== PHYSDEVOP_irq_status_query && cmd !== PHYSDEVOP_set_iopl && cmd !== PHYSDEVOP_set_iobitmap) return -ENOSYS;
  const [lo, hi] = addr(c.lo(0), c.hi(0), c.is64 ? 8 : 4);
  return physdev(c, cmd, lo, hi);
}
