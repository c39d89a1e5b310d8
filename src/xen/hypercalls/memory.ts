// Memory hypercalls: mmu_update, update_va_mapping, mmuext_op, set_gdt, update_descriptor,
// memory_op (xen-pv-abi.md §6, §4.4).

import {
  FRAME_SIZE,
  type PageType,
  PGT_L1,
  PGT_L2,
  PGT_L3,
  PGT_L4,
  PGT_SEG_DESC,
  PGT_WRITABLE,
  TYPE_CONFLICT,
  FLAG_ALLOCATED,
} from "../../machine/frames.ts";
import * as S from "../../x86/state.ts";
import { addr } from "../guestmem.ts";
import {
  checkDescriptor,
  findL1,
  getPageType,
  invalidateCode,
  modEntry,
  newBaseptr,
  newUserBaseptr,
  pinTable,
  putPageType,
  unpinTable,
} from "../mm.ts";
import {
  DOMID_SELF,
  EACCES,
  EFAULT,
  EINVAL,
  ENXIO,
  DOMID_IO,
  DOMID_XEN,
  ENOSYS,
  EOPNOTSUPP,
  EPERM,
  ESRCH,
  FIRST_RESERVED_GDT_ENTRY,
  MACH2PHYS_COMPAT_VIRT_END,
  MACH2PHYS_COMPAT_VIRT_START,
  MMU_MACHPHYS_UPDATE,
  MMU_NORMAL_PT_UPDATE,
  MMU_PT_UPDATE_NO_TRANSLATE,
  MMU_PT_UPDATE_PRESERVE_AD,
  MMUEXT_CLEAR_PAGE,
  MMUEXT_COPY_PAGE,
  MMUEXT_FLUSH_CACHE,
  MMUEXT_FLUSH_CACHE_GLOBAL,
  MMUEXT_INVLPG_ALL,
  MMUEXT_INVLPG_LOCAL,
  MMUEXT_INVLPG_MULTI,
  MMUEXT_MARK_SUPER,
  MMUEXT_NEW_BASEPTR,
  MMUEXT_NEW_USER_BASEPTR,
  MMUEXT_PIN_L1_TABLE,
  MMUEXT_PIN_L2_TABLE,
  MMUEXT_PIN_L3_TABLE,
  MMUEXT_PIN_L4_TABLE,
  MMUEXT_SET_LDT,
  MMUEXT_TLB_FLUSH_ALL,
  MMUEXT_TLB_FLUSH_LOCAL,
  MMUEXT_TLB_FLUSH_MULTI,
  MMUEXT_UNMARK_SUPER,
  MMUEXT_UNPIN_TABLE,
  UVMF_FLUSHTYPE_MASK,
  UVMF_INVLPG,
  UVMF_TLB_FLUSH,
  XENMEM_current_reservation,
  XENMEM_decrease_reservation,
  XENMEM_increase_reservation,
  XENMEM_machphys_mapping,
  XENMEM_maximum_gpfn,
  XENMEM_maximum_ram_page,
  XENMEM_maximum_reservation,
  XENMEM_memory_map,
  XENMEM_populate_physmap,
} from "../public.ts";
import type { Vcpu } from "../vcpu.ts";
import { PERDOMAIN_HI, PerDomainArea } from "../xenspace.ts";
import type { Call } from "./call.ts";

const MAX_BATCH = 1 << 20;

function writeDone(c: Call, argIndex: number, done: number): void {
  if (!c.isNull(argIndex)) c.mem.setU32(c.lo(argIndex), c.hi(argIndex), done);
}

/** mmuext_op's foreigndom: DOMID_SELF (or 0 meaning none, as guests pass it) only. */
function checkForeign(c: Call, argIndex: number): number {
  const fd = c.u(argIndex) & 0xffff;
  if (fd !== DOMID_SELF && fd !== c.d.id && fd !== 0) return -ESRCH;
  return 0;
}

/** The page owner of an mmu_update: "self", "io" (DOMID_IO), "other" (an existing domain,
 * which only a privileged domain may name: -EPERM per request), or -ESRCH. */
type PgOwner = "self" | "io" | "other";

/** Xen's get_pg_owner (domid 0 is the in-process control domain: it exists). */
function pgOwner(c: Call, domid: number): PgOwner | number {
  if (domid === DOMID_SELF) return "self";
  if (domid === c.d.id) return -ESRCH; // "Cannot specify itself as foreign domain"
  if (domid === DOMID_IO) return "io";
  if (domid === DOMID_XEN) return -ESRCH;
  return domid === 0 || c.d.xen.domains.has(domid) ? "other" : -ESRCH;
}

/**
 * mmu_update(reqs[], count, *done, foreigndom), as Xen's do_mmu_update: foreigndom's low 16
 * bits name the owner of the mapped pages (DOMID_SELF; DOMID_IO for I/O memory; another domain
 * only for a privileged caller: -EPERM at the first request), the high 16 bits the page-table
 * owner + 1 (a missing domain -ESRCH before anything is done). `count | MMU_UPDATE_PREEMPTED`
 * continues a preempted batch (done accumulates from *done).
 */
export function mmuUpdate(c: Call): number {
  const d = c.d;
  const raw = c.u(1);
  const count = raw & 0x7fffffff;
  let done = 0;
  if ((raw & 0x80000000) !== 0 && !c.isNull(2)) {
    try {
      done = c.mem.u32(c.lo(2), c.hi(2));
    } catch {
      done = 0;
    }
  }
  const base = done;
  if (count > MAX_BATCH || !c.handleOkay(c.lo(0), c.hi(0), count * 16)) return -EFAULT;
  const fd = c.u(3);
  const ptDom = fd >>> 16;
  let ptOther = false;
  if (ptDom !== 0) {
    const id = ptDom - 1;
    if (id !== d.id) {
      if (!(id === 0 || d.xen.domains.has(id))) return -ESRCH;
      ptOther = true;
    }
  }
  const owner = pgOwner(c, fd & 0xffff);
  if (typeof owner === "number") return owner;
  let [lo, hi] = [c.lo(0), c.hi(0)];
  let i = 0;
  let rc = 0;
  const t = d.xen.table;
  for (; i < count; i++) {
    const b = c.mem.bytes(lo, hi, 16);
    const dv = new DataView(b.buffer);
    const pLo = dv.getUint32(0, true);
    const pHi = dv.getUint32(4, true);
    const vLo = dv.getUint32(8, true);
    const vHi = dv.getUint32(12, true);
    const cmd = pLo & 7;
    const mfn = pHi !== 0 ? -1 : pLo >>> 12;
    if (
      cmd === MMU_NORMAL_PT_UPDATE ||
      cmd === MMU_PT_UPDATE_PRESERVE_AD ||
      cmd === MMU_PT_UPDATE_NO_TRANSLATE
    ) {
      if (owner === "other" || ptOther) {
        rc = -EPERM;
        break;
      }
      if (mfn < 0 || !t.isValid(mfn) || t.owner[mfn] !== d.id) {
        rc = -EINVAL;
        break;
      }
      if (owner === "io") {
        // The mapped frame must be I/O memory the caller may map; a domU may map none.
        const type = t.type[mfn];
        const isTable = t.typeCount[mfn] > 0 && type >= PGT_L1 && type <= PGT_L4;
        if (isTable && type !== PGT_L1) {
          rc = -EINVAL; // pg_owner != pt_owner for an upper-level table
          break;
        }
        if (isTable && (vLo & 1) !== 0) {
          const target = (vHi & 0xfffff) !== 0 ? -1 : vLo >>> 12;
          rc = target >= 0 && t.isValid(target) ? -EINVAL : -EPERM;
          break;
        }
      }
      rc = modEntry(d, mfn, (pLo & 0xfff) >>> 3, vLo, vHi, cmd === MMU_PT_UPDATE_PRESERVE_AD);
      if (rc !== 0) break;
    } else if (cmd === MMU_MACHPHYS_UPDATE) {
      if (owner === "other") {
        rc = -EPERM;
        break;
      }
      if (owner === "io" || mfn < 0 || !t.isValid(mfn) || t.owner[mfn] !== d.id) {
        rc = -EINVAL;
        break;
      }
      t.m2p[mfn] = vLo >>> 0;
      d.xen.space.syncM2P(mfn);
    } else {
      rc = -ENOSYS;
      break;
    }
    [lo, hi] = addr(lo, hi, 16);
  }
  writeDone(c, 2, base + i);
  return rc;
}

function flushAfter(v: Vcpu, flags: number, vaLo: number, vaHi: number): void {
  const type = flags & UVMF_FLUSHTYPE_MASK;
  if (type === 0) return;
  const all = (flags & ~UVMF_FLUSHTYPE_MASK) !== 0;
  const targets = all ? v.domain.vcpus : [v];
  for (const t of targets) {
    if (type === UVMF_INVLPG) t.cpu.flushTlbPage(vaLo | 0, vaHi | 0);
    else if (type === UVMF_TLB_FLUSH) t.cpu.flushTlb(false);
  }
}

/** update_va_mapping(va, pte, flags); 32-bit: (va, lo, hi, flags). */
export function updateVaMapping(c: Call): number {
  const v = c.v;
  const d = c.d;
  const vaLo = c.lo(0);
  const vaHi = c.is64 ? c.hi(0) : 0;
  const [pLo, pHi] = c.is64 ? [c.lo(1), c.hi(1)] : [c.u(1), c.u(2)];
  const flags = c.is64 ? c.u(2) : c.u(3);
  if (c.is64 && vaHi >>> 0 >= 0xffff8000 && vaHi >>> 0 < 0xffff8800) return -EINVAL;
  const top = c.is64 && !v.kernelMode ? v.guestTableUser : v.guestTable;
  if (!top) return -EINVAL;
  const loc = findL1(d, top, vaLo, vaHi);
  if (!loc) return -EINVAL;
  if (d.is32 && vaLo >>> 0 >= MACH2PHYS_COMPAT_VIRT_START && vaLo >>> 0 < 0xffffffff) {
    // Inside the hypervisor hole: findL1 only reaches it through a pae_xen_l2's Xen slots.
  }
  const rc = modEntry(d, loc[0], loc[1], pLo, pHi);
  if (rc !== 0) return rc;
  flushAfter(v, flags, vaLo, vaHi);
  return 0;
}

function pinType(cmd: number): PageType {
  return (PGT_L1 + (cmd - MMUEXT_PIN_L1_TABLE)) as PageType;
}

/** The frames backing an LDT at a guest linear base, mapped into the vCPU's LDT window. */
export function setLdt(v: Vcpu, baseLo: number, baseHi: number, ents: number): number {
  const d = v.domain;
  if ((baseLo & 0xfff) !== 0 || ents > 8192) return -EINVAL;
  if (d.is64 && baseHi >>> 0 >= 0xffff8000 && baseHi >>> 0 < 0xffff8800) return -EINVAL;
  // Drop the old LDT frames' types.
  for (const mfn of v.ldtFrames) putPageType(d, mfn);
  v.ldtFrames = [];
  v.ldtBaseLo = baseLo;
  v.ldtEntries = ents;
  const frames: number[] = [];
  const pages = Math.ceil((ents * 8) / FRAME_SIZE);
  const top = d.is64 && !v.kernelMode ? v.guestTableUser : v.guestTable;
  for (let p = 0; p < pages; p++) {
    const [lo, hi] = addr(baseLo, baseHi, p * FRAME_SIZE);
    const loc = top ? findL1(d, top, lo, hi) : null;
    let mfn = -1;
    if (loc) {
      const dv = new DataView(d.xen.memory.u8.buffer);
      const e = dv.getUint32(loc[0] * FRAME_SIZE + loc[1] * 8, true);
      // The high word may carry Xen's guest-kernel bit (52) and NX: only bits 32..51 address.
      if ((e & 1) !== 0 && (dv.getUint32(loc[0] * FRAME_SIZE + loc[1] * 8 + 4, true) & 0xfffff) === 0) mfn = e >>> 12;
    }
    if (mfn >= 0 && getPageType(d, mfn, PGT_SEG_DESC) === 0) {
      frames.push(mfn);
      v.ldtFrames.push(mfn);
    } else frames.push(d.xen.space.zeroFrame);
  }
  d.perDomain.mapLdt(v.id, frames);
  const s = v.s;
  if (ents === 0) v.cpu.loadSegmentRaw(S.SEG_LDTR, 0, 0, 0, S.ATTR_UNUSABLE);
  else {
    v.cpu.loadSegmentRaw(S.SEG_LDTR, 0, PerDomainArea.ldtLo(v.id), ents * 8 - 1, 0x82);
    s[S.segWord(S.SEG_LDTR, S.SEG_BASE_HI)] = PERDOMAIN_HI;
  }
  v.cpu.flushTlb(false);
  v.reloadSegments = true;
  return 0;
}

/** mmuext_op(ops[], count, *done, foreigndom). */
export function mmuextOp(c: Call): number {
  const v = c.v;
  const d = c.d;
  const count = c.u(1) & 0x7fffffff;
  if (count > MAX_BATCH) return -EINVAL;
  const rc0 = checkForeign(c, 3);
  if (rc0 !== 0) return rc0;
  const size = c.is64 ? 24 : 12;
  let [lo, hi] = [c.lo(0), c.hi(0)];
  let done = 0;
  let rc = 0;
  const t = d.xen.table;
  for (; done < count && rc === 0; done++) {
    const b = c.mem.bytes(lo, hi, size);
    const dv = new DataView(b.buffer);
    const cmd = dv.getUint32(0, true);
    const a1Lo = dv.getUint32(c.is64 ? 8 : 4, true);
    const a1Hi = c.is64 ? dv.getUint32(12, true) : 0;
    const a2Lo = dv.getUint32(c.is64 ? 16 : 8, true);
    const a2Hi = c.is64 ? dv.getUint32(20, true) : 0;
    const mfn = a1Hi !== 0 ? -1 : a1Lo;
    switch (cmd) {
      case MMUEXT_PIN_L1_TABLE:
      case MMUEXT_PIN_L2_TABLE:
      case MMUEXT_PIN_L3_TABLE:
      case MMUEXT_PIN_L4_TABLE:
        rc = mfn < 0 ? -EINVAL : pinTable(d, mfn, pinType(cmd));
        break;
      case MMUEXT_UNPIN_TABLE:
        rc = mfn < 0 ? -EINVAL : unpinTable(d, mfn);
        break;
      case MMUEXT_NEW_BASEPTR:
        rc = mfn < 0 ? -EINVAL : newBaseptr(v, mfn);
        break;
      case MMUEXT_NEW_USER_BASEPTR:
        rc = !c.is64 || mfn < 0 ? -EINVAL : newUserBaseptr(v, mfn);
        break;
      case MMUEXT_TLB_FLUSH_LOCAL:
        v.cpu.flushTlb(false);
        break;
      case MMUEXT_TLB_FLUSH_MULTI:
      case MMUEXT_TLB_FLUSH_ALL:
        for (const x of d.vcpus) x.cpu.flushTlb(false);
        break;
      case MMUEXT_INVLPG_LOCAL:
        v.cpu.flushTlbPage(a1Lo | 0, a1Hi | 0);
        break;
      case MMUEXT_INVLPG_MULTI:
      case MMUEXT_INVLPG_ALL:
        for (const x of d.vcpus) x.cpu.flushTlbPage(a1Lo | 0, a1Hi | 0);
        break;
      case MMUEXT_FLUSH_CACHE:
      case MMUEXT_FLUSH_CACHE_GLOBAL:
        rc = -EACCES;
        break;
      case MMUEXT_SET_LDT:
        rc = setLdt(v, a1Lo, a1Hi, a2Lo);
        break;
      case MMUEXT_CLEAR_PAGE:
        if (
          mfn < 0 ||
          !t.isValid(mfn) ||
          t.owner[mfn] !== d.id ||
          t.getType(mfn, d.id, PGT_WRITABLE) === TYPE_CONFLICT
        ) {
          rc = -EINVAL;
          break;
        }
        d.xen.memory.u8.fill(0, mfn * FRAME_SIZE, (mfn + 1) * FRAME_SIZE);
        invalidateCode(d, mfn);
        putPageType(d, mfn);
        break;
      case MMUEXT_COPY_PAGE: {
        const src = a2Hi !== 0 ? -1 : a2Lo;
        if (
          mfn < 0 ||
          src < 0 ||
          !t.isValid(mfn) ||
          !t.isValid(src) ||
          t.owner[src] !== d.id ||
          t.owner[mfn] !== d.id
        ) {
          rc = -EINVAL;
          break;
        }
        if (t.getType(mfn, d.id, PGT_WRITABLE) === TYPE_CONFLICT) {
          rc = -EINVAL;
          break;
        }
        d.xen.memory.u8.copyWithin(mfn * FRAME_SIZE, src * FRAME_SIZE, (src + 1) * FRAME_SIZE);
        invalidateCode(d, mfn);
        putPageType(d, mfn);
        break;
      }
      case MMUEXT_MARK_SUPER:
      case MMUEXT_UNMARK_SUPER:
        rc = -EOPNOTSUPP;
        break;
      default:
        rc = -ENOSYS;
    }
    if (rc !== 0) break;
    [lo, hi] = addr(lo, hi, size);
  }
  writeDone(c, 2, done);
  return rc;
}

// ------------------------------------------------------------------ descriptors

/** set_gdt(frames[], entries): the guest's GDT frames, validated as descriptor pages. */
export function setGdt(c: Call): number {
  const v = c.v;
  const d = c.d;
  const entries = c.u(1);
  if (entries > FIRST_RESERVED_GDT_ENTRY) return -EINVAL;
  const nframes = Math.ceil(entries / 512);
  const frames: number[] = [];
  let [lo, hi] = [c.lo(0), c.hi(0)];
  for (let i = 0; i < nframes; i++) {
    const [f, fhi] = c.mem.ulong(lo, hi);
    if (fhi !== 0) return -EINVAL;
    frames.push(f);
    [lo, hi] = addr(lo, hi, c.ulongBytes);
  }
  const taken: number[] = [];
  for (const mfn of frames) {
    const rc = getPageType(d, mfn, PGT_SEG_DESC);
    if (rc !== 0) {
      for (const m of taken) putPageType(d, m);
      return rc;
    }
    taken.push(mfn);
  }
  for (const m of v.gdtFrames) putPageType(d, m);
  v.gdtFrames = taken;
  v.gdtEntries = entries;
  d.xen.mapGdt(v);
  v.reloadSegments = true;
  return 0;
}

/** update_descriptor(maddr, desc); 32-bit: (pa_lo, pa_hi, desc_lo, desc_hi). */
export function updateDescriptor(c: Call): number {
  const d = c.d;
  const [paLo, paHi] = c.is64 ? [c.lo(0), c.hi(0)] : [c.u(0), c.u(1)];
  const [dLo, dHi] = c.is64 ? [c.lo(1), c.hi(1)] : [c.u(2), c.u(3)];
  if (paHi !== 0 || (paLo & 7) !== 0) return -EINVAL;
  const mfn = paLo >>> 12;
  const t = d.xen.table;
  if (!t.isValid(mfn) || t.owner[mfn] !== d.id) return -EINVAL;
  const checked = checkDescriptor(d, dLo, dHi);
  if (!checked) return -EINVAL;
  // The page must be a descriptor page or become writable data for the write.
  let tookWritable = false;
  if (!(t.type[mfn] === PGT_SEG_DESC && t.typeCount[mfn] > 0)) {
    if (t.getType(mfn, d.id, PGT_WRITABLE) === TYPE_CONFLICT) return -EINVAL;
    tookWritable = true;
  }
  const dv = new DataView(d.xen.memory.u8.buffer);
  dv.setUint32(paLo, checked[0], true);
  dv.setUint32(paLo + 4, checked[1], true);
  invalidateCode(d, mfn);
  if (tookWritable) putPageType(d, mfn);
  for (const x of d.vcpus) x.reloadSegments = true;
  return 0;
}

// ------------------------------------------------------------------ memory_op

export function memoryOp(c: Call): number {
  const d = c.d;
  const cmd = c.u(0) & 0xf;
  const w = c.ulongBytes;
  switch (cmd) {
    case XENMEM_machphys_mapping: {
      const maxMfn = d.xen.table.frames - 1;
      if (c.is64) {
        const b = new Uint8Array(24);
        const dv = new DataView(b.buffer);
        dv.setUint32(4, 0xffff8000, true);
        dv.setUint32(12, 0xffff8040, true);
        dv.setUint32(16, maxMfn, true);
        c.mem.write(c.lo(1), c.hi(1), b);
      } else {
        const b = new Uint8Array(12);
        const dv = new DataView(b.buffer);
        dv.setUint32(0, MACH2PHYS_COMPAT_VIRT_START, true);
        dv.setUint32(4, MACH2PHYS_COMPAT_VIRT_END, true);
        dv.setUint32(
          8,
          Math.min(maxMfn, (MACH2PHYS_COMPAT_VIRT_END - MACH2PHYS_COMPAT_VIRT_START) / 4 - 1),
          true,
        );
        c.mem.write(c.lo(1), c.hi(1), b);
      }
      return 0;
    }
    case XENMEM_maximum_ram_page:
      return d.xen.table.frames - 1;
    case XENMEM_current_reservation:
    case XENMEM_maximum_reservation: {
      const dom = c.mem.u16(c.lo(1), c.hi(1));
      if (dom !== DOMID_SELF && dom !== d.id) return -ESRCH;
      return cmd === XENMEM_current_reservation ? countOwned(c) : Math.max(d.maxPages, d.nrPages);
    }
    case XENMEM_maximum_gpfn:
      return d.nrPages - 1;
    case XENMEM_memory_map: {
      // {u32 nr_entries, handle buffer}: one RAM entry covering the domain (E820 type 1).
      const mapLo = c.lo(1);
      const mapHi = c.hi(1);
      const nr = c.mem.u32(mapLo, mapHi);
      const [bLo, bHi] = c.mem.ulong(...addr(mapLo, mapHi, w));
      if (nr < 1) return -EINVAL;
      const e = new Uint8Array(20);
      const dv = new DataView(e.buffer);
      const bytes = d.nrPages * FRAME_SIZE;
      dv.setUint32(8, (bytes % 4294967296) >>> 0, true);
      dv.setUint32(12, Math.floor(bytes / 4294967296), true);
      dv.setUint32(16, 1, true);
      c.mem.write(bLo, bHi, e);
      c.mem.setU32(mapLo, mapHi, 1);
      return 0;
    }
    case XENMEM_decrease_reservation:
    case XENMEM_increase_reservation:
    case XENMEM_populate_physmap:
      return reservation(c, cmd);
    default:
      return -ENOSYS;
  }
}

function countOwned(c: Call): number {
  return ownedBy(c.d.xen.table, c.d.id);
}

function ownedBy(t: { frames: number; owner: Uint16Array }, id: number): number {
  let n = 0;
  for (let m = 0; m < t.frames; m++) if (t.owner[m] === id) n++;
  return n;
}

/** Largest extent order a domU may ask for (Xen's domu_max_order; multipage_allocation_permitted). */
const DOMU_MAX_ORDER = 9;
const XENMEMF_populate_on_demand = 1 << 16;
/** Extents beyond this cannot be encoded in a continuation (UINT_MAX >> MEMOP_EXTENT_SHIFT). */
const MAX_EXTENTS = 0xffffffff >>> 6;

/**
 * increase_reservation / decrease_reservation / populate_physmap {extent_start, nr_extents,
 * extent_order, mem_flags, domid}, as Xen's do_memory_op: the result is the number of extents
 * done; anything wrong with the request as a whole gives 0 (a 32-bit guest's unreadable
 * struct or extent list outside its space: -EFAULT, from compat_memory_op). Only the caller's
 * own domain (another domain: 0, as XSM refuses). Extents are 2^order contiguous, aligned
 * frames (order ≤ 9), within max_pages; populate_physmap sets the M2P of each new frame to its
 * GPFN, and every MFN allocated is written back to the extent list.
 */
function reservation(c: Call, cmd: number): number {
  const d = c.d;
  const is64 = c.is64;
  let b: Uint8Array;
  try {
    b = c.mem.bytes(c.lo(1), c.hi(1), is64 ? 32 : 20);
  } catch {
    return is64 ? 0 : -EFAULT;
  }
  const dv = new DataView(b.buffer);
  const hLo = dv.getUint32(0, true);
  const hHi = is64 ? dv.getUint32(4, true) : 0;
  const n = dv.getUint32(is64 ? 8 : 4, true);
  const nHi = is64 ? dv.getUint32(12, true) : 0;
  const order = dv.getUint32(is64 ? 16 : 8, true);
  const memFlags = dv.getUint32(is64 ? 20 : 12, true);
  const domid = dv.getUint16(is64 ? 24 : 16, true);
  const w = c.ulongBytes;
  const nullList = hLo === 0 && hHi === 0;
  if (!is64 && !c.handleOkay(hLo, hHi, n * w)) return -EFAULT;
  if (nHi !== 0 || n > MAX_EXTENTS || n === 0) return 0;
  if (domid !== DOMID_SELF && domid !== d.id) return 0;
  const t = d.xen.table;
  // XENMEMF_address_bits: frames must lie below 2^bits (when that restricts anything).
  const bits = memFlags & 0xff;
  const maxBits = Math.ceil(Math.log2(t.frames)) + 12;
  let limit = t.frames;
  if (bits !== 0 && bits < maxBits) {
    if (bits <= 12) return 0;
    limit = 2 ** (bits - 12);
  }
  if (!(cmd === XENMEM_increase_reservation && nullList) && !c.handleOkay(hLo, hHi, n * w)) return 0;
  if (order > DOMU_MAX_ORDER) return 0;
  const size = 2 ** order;
  let i = 0;
  let [lo, hi] = [hLo, hHi];
  if (cmd === XENMEM_decrease_reservation) {
    for (; i < n; i++) {
      let gmfn: number;
      try {
        const [glo, ghi] = c.mem.ulong(lo, hi);
        gmfn = ghi !== 0 ? -1 : glo;
      } catch {
        break;
      }
      let ok = true;
      for (let j = 0; j < size && ok; j++) ok = removePage(c, gmfn < 0 ? -1 : gmfn + j) === 0;
      if (!ok) break;
      [lo, hi] = addr(lo, hi, w);
    }
    return i;
  }
  for (; i < n; i++) {
    let gpfn = 0;
    if (cmd === XENMEM_populate_physmap) {
      try {
        gpfn = c.mem.ulong(lo, hi)[0];
      } catch {
        break;
      }
      if ((memFlags & XENMEMF_populate_on_demand) !== 0) break; // PoD on oneself: refused
    }
    if (ownedBy(t, d.id) + size > d.maxPages) break; // over max_pages
    const mfn = d.xen.allocator.tryAllocateAligned(d.id, order, limit);
    if (mfn < 0) break;
    if (cmd === XENMEM_populate_physmap) {
      for (let k = 0; k < size; k++) {
        t.m2p[mfn + k] = (gpfn + k) >>> 0;
        d.xen.space.syncM2P(mfn + k);
      }
    }
    if (!nullList || cmd === XENMEM_populate_physmap) {
      try {
        if (is64) c.mem.setU64(lo, hi, mfn, 0);
        else c.mem.setU32(lo, hi, mfn);
      } catch {
        break; // the extent stays the domain's (as Xen)
      }
    }
    [lo, hi] = addr(lo, hi, w);
  }
  return i;
}

/**
 * Xen's guest_remove_page for PV (the GMFN is the MFN): unpin if pinned, drop the allocation
 * reference, invalidate the M2P entry. A frame still referenced (mapped, a table in use) is
 * freed by the put that drops its last reference — GNU Mach gives back frames it still maps
 * (its bootstrap tables) and panics if this fails. 0, -EINVAL (no such frame) or -ENXIO.
 */
function removePage(c: Call, mfn: number): number {
  const d = c.d;
  const t = d.xen.table;
  if (mfn < 0 || !t.isValid(mfn)) return -EINVAL;
  if (t.owner[mfn] !== d.id || t.count[mfn] === 0) return -ENXIO;
  t.count[mfn]++; // get_page
  if (t.isPinned(mfn)) unpinTable(d, mfn);
  if ((t.flags[mfn] & FLAG_ALLOCATED) !== 0) d.xen.allocator.release(mfn);
  t.m2p[mfn] = 0xffffffff;
  d.xen.space.syncM2P(mfn);
  d.xen.allocator.put(mfn); // put_page
  return 0;
}

export { EINVAL, EPERM, PGT_L2, PGT_L3, PGT_L4, S };
