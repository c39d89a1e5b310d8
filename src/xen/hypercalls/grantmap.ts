// GNTTABOP_map_grant_ref / unmap_grant_ref for PV (v1 grants), as Xen's map_grant_ref and
// unmap_common: host mappings (a linear address in the caller's current page tables, or with
// GNTMAP_contains_pte the machine address of the L1 entry) and device mappings (references
// and dev_bus_addr only). A host mapping is an L1 entry with Xen's _PAGE_GNTTAB (PTE bit 62):
// its references belong to the grant, the guest cannot create one with mmu_update nor remove
// one by a page-table write (mm.ts; the domain is crashed, as Xen does).
//
// Invariants:
// - GM1. Every live maptrack entry holds, on the granted frame, one reference per mapping kind
//   (host, device): a PGT_WRITABLE type reference when writable, a general reference when
//   read-only; unmapping or the mapper's destruction drops exactly those.
// - GM2. The granter's entry has GTF_reading while any mapping of it exists and GTF_writing
//   while a writable one does (Xen's pin counts).

import { FRAME_SIZE, PGT_L1, PGT_WRITABLE, TYPE_CONFLICT } from "../../machine/frames.ts";
import type { Domain } from "../domain.ts";
import { findL1, putL1e, putPageType, PTE_GNTTAB_HI } from "../mm.ts";
import { DOMID_SELF } from "../public.ts";
import { PTE_A, PTE_D, PTE_P, PTE_RW, PTE_US } from "../xenspace.ts";
import type { Call } from "./call.ts";

const GNTMAP_device_map = 1;
const GNTMAP_host_map = 2;
const GNTMAP_readonly = 4;
const GNTMAP_application_map = 8;
const GNTMAP_contains_pte = 16;
const GTF_type_mask = 3;
const GTF_permit_access = 1;
const GTF_readonly = 1 << 2;
const GTF_reading = 1 << 3;
const GTF_writing = 1 << 4;
const GNTST_okay = 0;
const GNTST_general_error = -1;
const GNTST_bad_domain = -2;
const GNTST_bad_gntref = -3;
const GNTST_bad_handle = -4;
const GNTST_no_device_space = -7;
const GNTST_bad_page = -9;
/** Maptrack handles per domain (Xen's default max_maptrack_frames 1024 × 512). */
const MAX_MAPTRACK = 1024 * 512;
const GUEST_KERNEL_HI = 1 << 20;

export interface MapTrack {
  dom: number;
  ref: number;
  /** GNTMAP_* kinds still mapped (host, device) plus readonly. */
  flags: number;
  mfn: number;
  /** Where the host mapping's L1 entry is (frame, index), -1 when none. */
  pteMfn: number;
  pteIdx: number;
}

/** Pin counts of a granter's entry: host/device × read/write (Xen's act->pin). */
interface Pins {
  hw: number;
  hr: number;
  dw: number;
  dr: number;
  mapper: number;
  mfn: number;
}

const pinsOf = new WeakMap<Domain, Map<number, Pins>>();
function pins(rd: Domain): Map<number, Pins> {
  let m = pinsOf.get(rd);
  if (!m) {
    m = new Map();
    pinsOf.set(rd, m);
  }
  return m;
}

const maptracks = new WeakMap<Domain, (MapTrack | null)[]>();
export function maptrack(d: Domain): (MapTrack | null)[] {
  let m = maptracks.get(d);
  if (!m) {
    m = [];
    maptracks.set(d, m);
  }
  return m;
}

function entryAddr(rd: Domain, ref: number): number {
  const frame = rd.grantFrames[ref >>> 9];
  return frame === undefined ? -1 : frame * FRAME_SIZE + (ref & 511) * 8;
}

function setFlags(rd: Domain, at: number, set: number, clear: number): void {
  const dv = new DataView(rd.xen.memory.u8.buffer);
  const f = dv.getUint16(at, true);
  dv.setUint16(at, ((f | set) & ~clear) & 0xffff, true);
}

/** Takes one reference of a mapping kind on the frame (GM1); false when it cannot. */
function take(rd: Domain, mfn: number, writable: boolean): boolean {
  const t = rd.xen.table;
  if (writable) return t.getType(mfn, rd.id, PGT_WRITABLE) !== TYPE_CONFLICT;
  return t.get(mfn, rd.id);
}

function drop(rd: Domain, mfn: number, writable: boolean): void {
  if (writable) putPageType(rd, mfn);
  else rd.xen.allocator.put(mfn);
}

/** The L1 frame and index a host address names, or null. */
function hostPte(c: Call, hostLo: number, hostHi: number, containsPte: boolean): [number, number] | null {
  const d = c.d;
  const t = d.xen.table;
  if (containsPte) {
    if (hostHi !== 0) return null;
    const l1 = hostLo >>> 12;
    if (!t.isValid(l1) || t.owner[l1] !== d.id || t.type[l1] !== PGT_L1 || t.typeCount[l1] === 0) return null;
    return [l1, (hostLo & 0xfff) >>> 3];
  }
  if (d.is32 && hostHi !== 0) return null;
  const top = d.is64 && !c.v.kernelMode ? c.v.guestTableUser : c.v.guestTable;
  return top ? findL1(d, top, hostLo, hostHi) : null;
}

function flushAll(d: Domain): void {
  for (const v of d.vcpus) v.cpu.flushTlb(false);
}

/** One map op (32 bytes: host_addr u64, flags u32, ref u32, dom u16, status i16, handle u32, dev_bus_addr u64). */
function mapOne(c: Call, op: DataView): number {
  const d = c.d;
  const t = d.xen.table;
  const hostLo = op.getUint32(0, true);
  const hostHi = op.getUint32(4, true);
  const flags = op.getUint32(8, true);
  const ref = op.getUint32(12, true);
  const dom = op.getUint16(16, true);
  const ro = (flags & GNTMAP_readonly) !== 0;
  if ((flags & (GNTMAP_device_map | GNTMAP_host_map)) === 0) return (GNTST_bad_gntref);
  const rd = dom === DOMID_SELF || dom === d.id ? d : d.xen.domains.get(dom);
  if (!rd) return (GNTST_bad_domain);
  const mt = maptrack(d);
  let handle = mt.indexOf(null);
  if (handle < 0) handle = mt.length;
  if (handle >= MAX_MAPTRACK) return (GNTST_no_device_space);
  if (ref >= Math.max(1, rd.grantFrames.length) * 512) return (GNTST_bad_gntref);
  const at = entryAddr(rd, ref);
  const pm = pins(rd);
  const act = pm.get(ref);
  const dv = new DataView(d.xen.memory.u8.buffer);
  const pinned = act !== undefined && act.hw + act.hr + act.dw + act.dr > 0;
  if (pinned && act.mapper !== d.id) return (GNTST_general_error);
  let mfn: number;
  if (!pinned || (!ro && act.hw + act.dw === 0)) {
    // _set_status_v1: the entry must grant us access (writable unless we map read-only).
    if (at < 0) return (GNTST_general_error);
    const ef = dv.getUint16(at, true);
    if (!pinned && ((ef & GTF_type_mask) !== GTF_permit_access || dv.getUint16(at + 2, true) !== d.id))
      return (GNTST_general_error);
    if (!ro && (ef & GTF_readonly) !== 0) return (GNTST_general_error);
    mfn = pinned ? act.mfn : dv.getUint32(at + 4, true);
    if (!pinned && (!t.isValid(mfn) || t.owner[mfn] !== rd.id || t.count[mfn] === 0)) return (GNTST_bad_page);
  } else mfn = act.mfn;
  // References (GM1), then the host mapping.
  const taken: boolean[] = [];
  const undo = (): void => {
    for (const w of taken) drop(rd, mfn, w);
  };
  if ((flags & GNTMAP_device_map) !== 0) {
    if (!take(rd, mfn, !ro)) return (GNTST_general_error);
    taken.push(!ro);
  }
  let pteMfn = -1;
  let pteIdx = 0;
  if ((flags & GNTMAP_host_map) !== 0) {
    if (!take(rd, mfn, !ro)) {
      undo();
      return (GNTST_general_error);
    }
    taken.push(!ro);
    const loc = hostPte(c, hostLo, hostHi, (flags & GNTMAP_contains_pte) !== 0);
    if (!loc) {
      undo();
      return (GNTST_general_error);
    }
    const [l1, idx] = loc;
    pteMfn = l1;
    pteIdx = idx;
    const pa = l1 * FRAME_SIZE + idx * 8;
    const oldLo = dv.getUint32(pa, true);
    const oldHi = dv.getUint32(pa + 4, true);
    let lo = ((mfn << 12) | PTE_P | PTE_A | PTE_D | (ro ? 0 : PTE_RW) | ((flags & GNTMAP_application_map) !== 0 ? PTE_US : 0)) >>> 0;
    let hi = PTE_GNTTAB_HI;
    if (d.is64 && (lo & PTE_US) === 0) {
      lo = (lo | PTE_US) >>> 0;
      hi |= GUEST_KERNEL_HI;
    }
    dv.setUint32(pa, lo, true);
    dv.setUint32(pa + 4, hi >>> 0, true);
    putL1e(d, oldLo, oldHi);
    flushAll(d);
  }
  // Pins and the granter's status flags (GM2).
  const p = act ?? { hw: 0, hr: 0, dw: 0, dr: 0, mapper: d.id, mfn };
  p.mapper = d.id;
  p.mfn = mfn;
  if ((flags & GNTMAP_device_map) !== 0) ro ? p.dr++ : p.dw++;
  if ((flags & GNTMAP_host_map) !== 0) ro ? p.hr++ : p.hw++;
  pm.set(ref, p);
  if (at >= 0) setFlags(rd, at, GTF_reading | (ro ? 0 : GTF_writing), 0);
  mt[handle] = {
    dom: rd.id,
    ref,
    flags: flags & (GNTMAP_device_map | GNTMAP_host_map | GNTMAP_readonly | GNTMAP_contains_pte),
    mfn,
    pteMfn,
    pteIdx,
  };
  op.setUint32(20, handle, true);
  op.setUint32(24, (mfn << 12) >>> 0, true);
  op.setUint32(28, mfn >>> 20, true);
  return GNTST_okay;
}

/** Drops a mapping kind's pin and reference and updates the granter's flags (GM1, GM2). */
function release(rd: Domain, m: MapTrack, kind: number): void {
  const ro = (m.flags & GNTMAP_readonly) !== 0;
  drop(rd, m.mfn, !ro);
  const p = pins(rd).get(m.ref);
  if (p) {
    if (kind === GNTMAP_device_map) ro ? p.dr-- : p.dw--;
    else ro ? p.hr-- : p.hw--;
    const at = entryAddr(rd, m.ref);
    let clear = 0;
    if (p.hw + p.dw === 0) clear |= GTF_writing;
    if (p.hw + p.hr + p.dw + p.dr === 0) {
      clear |= GTF_reading;
      pins(rd).delete(m.ref);
    }
    if (at >= 0 && clear) setFlags(rd, at, 0, clear);
  }
  m.flags &= ~kind;
}

/** One unmap op (24 bytes: host_addr u64, dev_bus_addr u64, handle u32, status i16). */
function unmapOne(c: Call, op: DataView): number {
  const d = c.d;
  const hostLo = op.getUint32(0, true);
  const hostHi = op.getUint32(4, true);
  const busLo = op.getUint32(8, true);
  const busHi = op.getUint32(12, true);
  const handle = op.getUint32(16, true);
  const mt = maptrack(d);
  const m = handle < mt.length ? mt[handle] : null;
  if (!m || (m.flags & (GNTMAP_host_map | GNTMAP_device_map)) === 0) return (GNTST_bad_handle);
  const rd = m.dom === d.id ? d : d.xen.domains.get(m.dom);
  if (!rd) {
    d.crash("grant unmap: the granting domain is gone");
    return op.getInt16(20, true);
  }
  const bus = busHi * 4294967296 + busLo;
  if (bus !== 0 && bus !== m.mfn * FRAME_SIZE) return (GNTST_general_error);
  if ((hostLo !== 0 || hostHi !== 0) && (m.flags & GNTMAP_host_map) !== 0) {
    const loc = hostPte(c, hostLo, hostHi, (m.flags & GNTMAP_contains_pte) !== 0);
    if (!loc) return (GNTST_general_error);
    const dv = new DataView(d.xen.memory.u8.buffer);
    const pa = loc[0] * FRAME_SIZE + loc[1] * 8;
    const lo = dv.getUint32(pa, true);
    const hi = dv.getUint32(pa + 4, true);
    if ((lo & PTE_P) === 0 || lo >>> 12 !== m.mfn || (hi & 0xfffff) !== 0 || (hi & PTE_GNTTAB_HI) === 0)
      return (GNTST_general_error); // "PTE entry doesn't match grant frame"
    dv.setUint32(pa, 0, true);
    dv.setUint32(pa + 4, 0, true);
    flushAll(d);
    release(rd, m, GNTMAP_host_map);
  }
  if (bus !== 0 && (m.flags & GNTMAP_device_map) !== 0) release(rd, m, GNTMAP_device_map);
  if ((m.flags & (GNTMAP_host_map | GNTMAP_device_map)) === 0) mt[handle] = null;
  return GNTST_okay;
}

/** GNTTABOP_map_grant_ref(ops[], count): status and handle per op; 0, or -EFAULT. */
export function mapGrantRefs(c: Call, count: number): number {
  return eachOp(c, count, 32, (cc, op) => op.setInt16(18, mapOne(cc, op), true));
}

/** GNTTABOP_unmap_grant_ref(ops[], count): status per op; 0, or -EFAULT. */
export function unmapGrantRefs(c: Call, count: number): number {
  return eachOp(c, count, 24, (cc, op) => op.setInt16(20, unmapOne(cc, op), true));
}

function eachOp(c: Call, count: number, size: number, fn: (c: Call, op: DataView) => void): number {
  let lo = c.lo(1);
  let hi = c.hi(1);
  for (let i = 0; i < count; i++) {
    const b = c.mem.bytes(lo, hi, size);
    fn(c, new DataView(b.buffer));
    c.mem.write(lo, hi, b);
    const next = (lo >>> 0) + size;
    if (next > 0xffffffff) {
      lo = next - 4294967296;
      hi = (hi + 1) | 0;
    } else lo = next;
    if (c.d.state !== "running" && c.d.state !== "paused") break;
  }
  return 0;
}

/**
 * A domain going away gives up its mappings of other domains' grants (GM1, GM2); mappings of
 * its own frames go with them.
 */
export function releaseMaptrack(d: Domain): void {
  const mt = maptrack(d);
  for (const m of mt) {
    if (!m) continue;
    const rd = d.xen.domains.get(m.dom);
    if (!rd || rd === d) continue;
    if ((m.flags & GNTMAP_host_map) !== 0) release(rd, m, GNTMAP_host_map);
    if ((m.flags & GNTMAP_device_map) !== 0) release(rd, m, GNTMAP_device_map);
  }
  mt.length = 0;
}

/**
 * A granting domain is destroyed while others map its frames: Xen keeps it as a zombie until
 * they unmap; tsxen revokes the mappings instead (their L1 entries cleared, TLBs flushed, the
 * handles dead), so no frame of a dead domain stays reachable.
 */
export function revokeGrantsOf(rd: Domain): void {
  const dv = new DataView(rd.xen.memory.u8.buffer);
  for (const x of rd.xen.domains.values()) {
    if (x === rd) continue;
    const mt = maptrack(x);
    let touched = false;
    for (let h = 0; h < mt.length; h++) {
      const m = mt[h];
      if (!m || m.dom !== rd.id) continue;
      if ((m.flags & GNTMAP_host_map) !== 0 && m.pteMfn >= 0) {
        const pa = m.pteMfn * FRAME_SIZE + m.pteIdx * 8;
        const hi = dv.getUint32(pa + 4, true);
        if ((hi & PTE_GNTTAB_HI) !== 0 && dv.getUint32(pa, true) >>> 12 === m.mfn) {
          dv.setUint32(pa, 0, true);
          dv.setUint32(pa + 4, 0, true);
          touched = true;
        }
      }
      mt[h] = null;
    }
    if (touched) flushAll(x);
  }
}
