// The PV MMU (xen-pv-abi.md §6): page types and references over the frame table, recursive
// validation of page tables, pinning, base pointers, mmu_update, update_va_mapping,
// mmuext_op, and trap-and-emulate of guest writes to L1 tables.
//
// Invariants (on top of the frame table's F1..F8):
// - M1. A frame is an Lk table (type PGT_Lk, validated) only while every present entry in it
//   holds a reference on its target: an L1 entry a general reference (and a PGT_WRITABLE type
//   reference when it maps RW) on a frame the domain owns or was given (shared_info, grant
//   frames); an Lk entry (k > 1) a PGT_L(k-1) type reference. When the last type reference of
//   a table goes, the references of all its entries go with it.
// - M2. No present entry has a disallowed bit: L1: PWT PCD PAT; L2/L3/L4: PWT PCD PSE G; compat
//   L3: all but P RW US A D AVAIL (and entries 4..511 are zero). An RW mapping of a page-table
//   or descriptor frame is impossible (its writable type reference would conflict, F3).
// - M3. Xen's slots are Xen's: L4 slots 256..271 of 64-bit tables, compat L2 slots 428..511 of
//   the L2 under L3[3] (a "pae_xen_l2", which cannot be used in any other slot) and compat L3
//   slot 3 cannot be changed by mmu_update; validation (re)writes Xen's entries there.
// - M4. Stored entries are adjusted as Xen does: 64-bit L1 entries without US get US and the
//   guest-kernel bit 52; 64-bit L2..L4 entries get US (L4 also A); compat L3 entries US|RW|A.
// - M5. When a PGT_WRITABLE reference is dropped, every vCPU of the domain has its TLB flushed
//   before the hypercall returns, so no stale write permission survives into a page that may
//   become a page table.

import {
  DOMID_XEN,
  FRAME_SIZE,
  type PageType,
  PGT_L1,
  PGT_L2,
  PGT_L3,
  PGT_L4,
  PGT_NONE,
  PGT_SEG_DESC,
  PGT_WRITABLE,
  TYPE_CONFLICT,
  TYPE_NEEDS_VALIDATION,
} from "../machine/frames.ts";
import type { Domain } from "./domain.ts";
import { EBUSY, EINVAL, EPERM, VMASST_TYPE_writable_pagetables } from "./public.ts";
import type { Vcpu } from "./vcpu.ts";
import {
  COMPAT_L2_XEN_FIRST,
  L4_XEN_FIRST,
  L4_XEN_LAST,
  PTE_A,
  PTE_D,
  PTE_P,
  PTE_RW,
  PTE_US,
} from "./xenspace.ts";

const L1_DISALLOW = 0x98; // PWT PCD PAT
const BASE_DISALLOW = 0x198; // PWT PCD PSE G
const COMPAT_L3_DISALLOW_LO = 0x198;
const GUEST_KERNEL_HI = 1 << 20; // PTE bit 52 in the high word
/** PTE bit 62 (Xen's _PAGE_GNTTAB): the entry is a grant mapping; guests cannot set it. */
export const PTE_GNTTAB_HI = 1 << 30;
/** High-word bits of an entry that address frames (bits 32..51). */
const MFN_HI_MASK = 0xfffff;

/** Per-frame state the MMU keeps besides the frame table: "this L2 is a pae_xen_l2". */
const xenL2Flags = new WeakMap<object, Uint8Array>();
function xenL2(d: Domain): Uint8Array {
  let f = xenL2Flags.get(d.xen);
  if (!f) {
    f = new Uint8Array(d.xen.table.frames);
    xenL2Flags.set(d.xen, f);
  }
  return f;
}

function dv(d: Domain): DataView {
  const u8 = d.xen.memory.u8;
  return new DataView(u8.buffer, u8.byteOffset);
}

/** Owner to charge references to for `mfn` when domain d maps it, or -1 (M1). */
function mappingOwner(d: Domain, mfn: number, writable: boolean): number {
  const t = d.xen.table;
  if (mfn < 0 || mfn >= t.frames) return -1;
  if (t.owner[mfn] === d.id) return d.id;
  const shared = d.sharedFrames.get(mfn);
  if (shared !== undefined && t.owner[mfn] === DOMID_XEN && (shared || !writable)) return DOMID_XEN;
  return -1;
}

/** Drops a general reference, freeing the frame if it was the last one of a released frame. */
function dropGeneral(d: Domain, mfn: number): void {
  d.xen.allocator.put(mfn);
}

/** Marks that a writable reference went: flush before returning to any vCPU (M5). */
function noteWritableDropped(d: Domain): void {
  d.needTlbFlush = true;
}

export function flushDomainTlbs(d: Domain): void {
  for (const v of d.vcpus) v.cpu.flushTlb(false);
  d.needTlbFlush = false;
}

/** The code in the domain's processors for page `mfn` may be stale: forget decoded blocks. */
export function invalidateCode(d: Domain, mfn: number): void {
  for (const v of d.vcpus) v.cpu.invalidatePhysRange(mfn * FRAME_SIZE, FRAME_SIZE);
}

// ------------------------------------------------------------------ type references

/** Takes a type reference of `type` on mfn (validating it if it just became that type). */
export function getPageType(d: Domain, mfn: number, type: PageType, paeXenL2 = false): number {
  const t = d.xen.table;
  const isTable = type >= PGT_L1 && type <= PGT_L4;
  const owner =
    isTable || type === PGT_SEG_DESC ? (t.owner[mfn] === d.id ? d.id : -1) : mappingOwner(d, mfn, true);
  if (owner < 0 || !t.isValid(mfn)) return -EINVAL;
  if (
    type === PGT_L2 &&
    t.typeCount[mfn] > 0 &&
    t.type[mfn] === PGT_L2 &&
    (xenL2(d)[mfn] === 1) !== paeXenL2
  ) {
    return -EINVAL; // a pae_xen_l2 in another slot, or the other way round (M3)
  }
  const r = t.getType(mfn, owner, type);
  if (r === TYPE_CONFLICT) return -EINVAL;
  if (r === TYPE_NEEDS_VALIDATION) {
    xenL2(d)[mfn] = paeXenL2 ? 1 : 0;
    const rc = validate(d, mfn, type);
    if (rc !== 0) {
      t.putType(mfn);
      xenL2(d)[mfn] = 0;
      return rc;
    }
    t.setValidated(mfn);
  }
  return 0;
}

/** Drops a type reference; a table whose last one goes drops its entries' references (M1). */
export function putPageType(d: Domain, mfn: number): void {
  const t = d.xen.table;
  const released = t.putType(mfn);
  if (released >= PGT_L1 && released <= PGT_L4) releaseEntries(d, mfn, released);
  if (released === PGT_WRITABLE) noteWritableDropped(d);
  if (released !== PGT_NONE) xenL2(d)[mfn] = 0;
  if (t.count[mfn] === 0 && t.owner[mfn] !== 0x7ff4) {
    // The owner gave the frame up while we held it: free it now (F1 "released").
    t.count[mfn] = 1;
    d.xen.allocator.put(mfn);
  }
}

// ------------------------------------------------------------------ entries

function entryLo(d: Domain, mfn: number, i: number): number {
  return dv(d).getUint32(mfn * FRAME_SIZE + i * 8, true);
}
function entryHi(d: Domain, mfn: number, i: number): number {
  return dv(d).getUint32(mfn * FRAME_SIZE + i * 8 + 4, true);
}
function setEntry(d: Domain, mfn: number, i: number, lo: number, hi: number): void {
  const view = dv(d);
  view.setUint32(mfn * FRAME_SIZE + i * 8, lo >>> 0, true);
  view.setUint32(mfn * FRAME_SIZE + i * 8 + 4, hi >>> 0, true);
}

function entryMfn(lo: number, hi: number): number {
  return (hi & MFN_HI_MASK) !== 0 ? -1 : lo >>> 12;
}

/**
 * Takes the references a present L1 entry needs (M1, M2). 0 or -errno, Xen's errnos
 * (get_page_from_l1e): disallowed flags -EINVAL; no such RAM -EPERM (MMIO a domU may not map);
 * a frame the domain may not map (another domain's, a free one, Xen's own) or a writable
 * mapping of a typed frame (page table, descriptor page) -EBUSY ("could_not_pin").
 */
export function getL1e(d: Domain, lo: number, hi: number): number {
  if ((lo & PTE_P) === 0) return 0;
  if ((lo & L1_DISALLOW) !== 0 || (hi & PTE_GNTTAB_HI) !== 0) return -EINVAL;
  const mfn = entryMfn(lo, hi);
  const t = d.xen.table;
  if (mfn < 0 || mfn >= t.frames) return -EPERM;
  const rw = (lo & PTE_RW) !== 0;
  const owner = mappingOwner(d, mfn, rw);
  if (owner < 0) return -EBUSY;
  if (rw) {
    if (t.getType(mfn, owner, PGT_WRITABLE) === TYPE_CONFLICT) return -EBUSY;
  } else if (!t.get(mfn, owner)) return -EBUSY;
  return 0;
}

export function putL1e(d: Domain, lo: number, hi: number): void {
  if ((lo & PTE_P) === 0) return;
  if ((hi & PTE_GNTTAB_HI) !== 0) {
    // A grant mapping holds its references through the grant (hypercalls/grantmap.ts); the
    // guest may not drop it with a page-table write (Xen's put_page_from_l1e crashes it).
    if (d.state === "running" || d.state === "paused") d.crash("Attempt to implicitly unmap a granted PTE");
    return;
  }
  const mfn = entryMfn(lo, hi);
  if (mfn < 0) return;
  if ((lo & PTE_RW) !== 0) putPageType(d, mfn);
  else dropGeneral(d, mfn);
}

/** Level of the tables an entry of a level-`level` table points to. */
function lowerType(level: PageType): PageType {
  return (level - 1) as PageType;
}

/** Takes the reference a present upper-level entry needs. */
function getUpper(
  d: Domain,
  level: PageType,
  slot: number,
  lo: number,
  hi: number,
  xenSlotL3 = false,
): number {
  if ((lo & PTE_P) === 0) return 0;
  const disallow = d.is32 && level === PGT_L3 ? COMPAT_L3_DISALLOW_LO : BASE_DISALLOW;
  if ((lo & disallow) !== 0) return -EINVAL;
  if (d.is32 && level === PGT_L3 && (hi & 0xfff00000) !== 0) return -EINVAL;
  const mfn = entryMfn(lo, hi);
  if (mfn < 0) return -EINVAL;
  void slot;
  return getPageType(d, mfn, lowerType(level), xenSlotL3);
}

function putUpper(d: Domain, lo: number, hi: number): void {
  if ((lo & PTE_P) === 0) return;
  const mfn = entryMfn(lo, hi);
  if (mfn >= 0) putPageType(d, mfn);
}

/** Is slot i of a level-`level` table (frame mfn) one the guest controls? (M3) */
function guestSlot(d: Domain, level: PageType, mfn: number, i: number): boolean {
  if (d.is64 && level === PGT_L4) return i < L4_XEN_FIRST || i > L4_XEN_LAST;
  if (d.is32 && level === PGT_L2 && xenL2(d)[mfn] === 1) return i < COMPAT_L2_XEN_FIRST;
  if (d.is32 && level === PGT_L3) return i < 4;
  return true;
}

/** Xen's stored form of a new entry (M4). */
function adjust(d: Domain, level: PageType, lo: number, hi: number): [number, number] {
  if ((lo & PTE_P) === 0) return [lo, hi];
  if (d.is64) {
    if (level === PGT_L1) {
      if ((lo & PTE_US) === 0) return [(lo | PTE_US) >>> 0, (hi | GUEST_KERNEL_HI) >>> 0];
      return [lo, hi];
    }
    if (level === PGT_L4) return [(lo | PTE_US | PTE_A) >>> 0, hi];
    return [(lo | PTE_US) >>> 0, hi];
  }
  if (level === PGT_L3) return [(lo | PTE_US | PTE_RW | PTE_A) >>> 0, hi];
  return [lo, hi];
}

/** Validates every entry of a frame that has just become `type` (M1..M4). */
function validate(d: Domain, mfn: number, type: PageType): number {
  if (type === PGT_SEG_DESC) return validateDescriptorPage(d, mfn);
  const level = type;
  // Compat L3: entries 4..511 are cleared; slot 3 must be present (it hosts Xen's L2).
  if (d.is32 && level === PGT_L3) {
    for (let i = 4; i < 512; i++) setEntry(d, mfn, i, 0, 0);
    if ((entryLo(d, mfn, 3) & PTE_P) === 0) return -EINVAL;
  }
  if (d.is32 && level === PGT_L4) return -EINVAL;
  let i = 0;
  let rc = 0;
  for (; i < 512; i++) {
    if (!guestSlot(d, level, mfn, i)) continue;
    const lo = entryLo(d, mfn, i);
    const hi = entryHi(d, mfn, i);
    rc =
      level === PGT_L1
        ? getL1e(d, lo, hi)
        : getUpper(d, level, i, lo, hi, d.is32 && level === PGT_L3 && i === 3);
    if (rc !== 0) break;
  }
  if (rc !== 0) {
    for (let j = i - 1; j >= 0; j--) {
      if (!guestSlot(d, level, mfn, j)) continue;
      const lo = entryLo(d, mfn, j);
      const hi = entryHi(d, mfn, j);
      if (level === PGT_L1) putL1e(d, lo, hi);
      else putUpper(d, lo, hi);
    }
    return rc;
  }
  for (let j = 0; j < 512; j++) {
    if (!guestSlot(d, level, mfn, j)) continue;
    const [lo, hi] = adjust(d, level, entryLo(d, mfn, j), entryHi(d, mfn, j));
    setEntry(d, mfn, j, lo, hi);
  }
  if (d.is64 && level === PGT_L4) d.xen.space.writeXenL4Slots(mfn, d.perDomain.l3);
  if (d.is32 && level === PGT_L2 && xenL2(d)[mfn] === 1) d.xen.space.writeCompatL2Slots(mfn);
  invalidateCode(d, mfn);
  return 0;
}

function releaseEntries(d: Domain, mfn: number, level: PageType): void {
  for (let i = 0; i < 512; i++) {
    if (!guestSlot(d, level, mfn, i)) continue;
    const lo = entryLo(d, mfn, i);
    const hi = entryHi(d, mfn, i);
    if (level === PGT_L1) putL1e(d, lo, hi);
    else putUpper(d, lo, hi);
  }
}

// ------------------------------------------------------------------ descriptors

/**
 * Checks (and fixes up) one descriptor as Xen's check_descriptor does: not present → fine;
 * DPL raised to the guest kernel ring; code/data only (32-bit guests may not set L); call
 * gates and system descriptors refused. Returns the stored [lo, hi] or null when refused.
 */
export function checkDescriptor(d: Domain, lo: number, hi: number): [number, number] | null {
  if ((hi & (1 << 15)) === 0) return [lo, hi]; // not present: anything goes
  if ((hi & (1 << 12)) === 0) return null; // system descriptor / gate
  const ring = d.is64 ? 3 : 1;
  let dpl = (hi >>> 13) & 3;
  if (dpl < ring) dpl = ring;
  let nhi = (hi & ~(3 << 13)) | (dpl << 13);
  if (d.is32 && (nhi & (1 << 11)) !== 0 && (nhi & (1 << 21)) !== 0) return null; // L on a 32-bit guest
  if (d.is64 && (nhi & (1 << 11)) === 0) {
    // fine
  }
  nhi |= 1 << 8; // accessed, so the processor never writes the page
  return [lo >>> 0, nhi >>> 0];
}

function validateDescriptorPage(d: Domain, mfn: number): number {
  for (let i = 0; i < 512; i++) {
    const lo = entryLo(d, mfn, i);
    const hi = entryHi(d, mfn, i);
    const r = checkDescriptor(d, lo, hi);
    if (!r) return -EINVAL;
  }
  for (let i = 0; i < 512; i++) {
    const r = checkDescriptor(d, entryLo(d, mfn, i), entryHi(d, mfn, i))!;
    setEntry(d, mfn, i, r[0], r[1]);
  }
  return 0;
}

// ------------------------------------------------------------------ modifying entries

/**
 * Writes entry `index` of table frame `mfn` (of validated type `level`) with (lo, hi) after
 * checking it like Xen's mod_lN_entry; drops the old entry's references. 0 or -errno.
 */
export function modEntry(
  d: Domain,
  mfn: number,
  index: number,
  lo: number,
  hi: number,
  preserveAd = false,
): number {
  const t = d.xen.table;
  const type = t.type[mfn] as PageType;
  const oldLo = entryLo(d, mfn, index);
  const oldHi = entryHi(d, mfn, index);
  if (type >= PGT_L1 && type <= PGT_L4 && t.typeCount[mfn] > 0) {
    // MMU_PT_UPDATE_PRESERVE_AD: the A/D bits already in the entry are ORed into the new one
    // (Xen's update_intpte), for page-table entries only.
    if (preserveAd) lo = (lo | (oldLo & (PTE_A | PTE_D))) >>> 0;
    if (!guestSlot(d, type, mfn, index)) return d.is64 && type === PGT_L4 ? -EINVAL : -EINVAL;
    if (d.is32 && type === PGT_L3 && index >= 3) return -EINVAL;
    const rc = type === PGT_L1 ? getL1e(d, lo, hi) : getUpper(d, type, index, lo, hi);
    if (rc !== 0) return rc;
    const [alo, ahi] = adjust(d, type, lo, hi);
    setEntry(d, mfn, index, alo, ahi);
    if (type === PGT_L1) putL1e(d, oldLo, oldHi);
    else putUpper(d, oldLo, oldHi);
    return 0;
  }
  if (type === PGT_SEG_DESC && t.typeCount[mfn] > 0) return -EINVAL;
  // An ordinary page: write it as data (Linux writes unpinned tables this way).
  if (t.owner[mfn] !== d.id) return -EINVAL;
  if (t.getType(mfn, d.id, PGT_WRITABLE) === TYPE_CONFLICT) return -EINVAL;
  setEntry(d, mfn, index, lo, hi);
  invalidateCode(d, mfn);
  putPageType(d, mfn);
  return 0;
}

// ------------------------------------------------------------------ base pointers and pins

/** Installs a new kernel top-level table (NEW_BASEPTR, MOV CR3). */
export function newBaseptr(v: Vcpu, mfn: number): number {
  const d = v.domain;
  const type = d.is64 ? PGT_L4 : PGT_L3;
  if (!d.xen.table.isValid(mfn)) return -EINVAL;
  const rc = getPageType(d, mfn, type);
  if (rc !== 0) return rc;
  const old = v.guestTable;
  v.guestTable = mfn;
  if (old) putPageType(d, old);
  if (d.is32 || v.kernelMode) v.loadCr3();
  return 0;
}

/** Installs the 64-bit user top-level table (NEW_USER_BASEPTR); mfn 0 drops it. */
export function newUserBaseptr(v: Vcpu, mfn: number): number {
  const d = v.domain;
  if (!d.is64) return -EINVAL;
  if (mfn !== 0) {
    if (!d.xen.table.isValid(mfn)) return -EINVAL;
    const rc = getPageType(d, mfn, PGT_L4);
    if (rc !== 0) return rc;
  }
  const old = v.guestTableUser;
  v.guestTableUser = mfn;
  if (old) putPageType(d, old);
  if (!v.kernelMode) v.loadCr3();
  return 0;
}

export function pinTable(d: Domain, mfn: number, type: PageType): number {
  const t = d.xen.table;
  if (!t.isValid(mfn) || t.owner[mfn] !== d.id) return -EINVAL;
  if (d.is32 && type === PGT_L4) return -EINVAL;
  const rc = getPageType(d, mfn, type);
  if (rc !== 0) return rc;
  if (!t.setPinned(mfn)) {
    putPageType(d, mfn);
    return -EINVAL; // already pinned
  }
  return 0;
}

export function unpinTable(d: Domain, mfn: number): number {
  const t = d.xen.table;
  if (!t.isValid(mfn) || t.owner[mfn] !== d.id) return -EINVAL;
  if (!t.clearPinned(mfn)) return -EINVAL;
  putPageType(d, mfn);
  return 0;
}

// ------------------------------------------------------------------ software walks

/**
 * The L1 table frame and index that map `va` in the tables rooted at `top` (a 64-bit L4 or a
 * compat L3), or null when an upper entry is absent. Only validated tables are followed.
 */
export function findL1(d: Domain, top: number, vaLo: number, vaHi: number): [number, number] | null {
  const t = d.xen.table;
  let table = top;
  const lo = vaLo >>> 0;
  const hi = vaHi >>> 0;
  const idx: number[] = d.is64
    ? [(hi >>> 7) & 511, ((hi & 0x7f) << 2) | (lo >>> 30), (lo >>> 21) & 511]
    : [lo >>> 30, (lo >>> 21) & 511];
  const types: PageType[] = d.is64 ? [PGT_L4, PGT_L3, PGT_L2] : [PGT_L3, PGT_L2];
  for (let k = 0; k < idx.length; k++) {
    if (t.type[table] !== types[k] || t.typeCount[table] === 0) return null;
    const elo = entryLo(d, table, idx[k]);
    const ehi = entryHi(d, table, idx[k]);
    if ((elo & PTE_P) === 0) return null;
    const next = entryMfn(elo, ehi);
    if (next < 0 || !t.isValid(next)) return null;
    table = next;
  }
  if (t.type[table] !== PGT_L1 || t.typeCount[table] === 0) return null;
  return [table, (lo >>> 12) & 511];
}

// ------------------------------------------------------------------ writable page tables

/**
 * #PF from a write to a read-only mapping of one of the domain's L1 tables, with the
 * writable-pagetables assist on: emulate the instruction, validating what it stores into the
 * table like mmu_update (xen-pv-abi.md §6.5). Returns true when handled.
 */
export function ptwrEmulate(v: Vcpu, err: number): boolean {
  const d = v.domain;
  const ptwr = (d.vmAssist & (1 << VMASST_TYPE_writable_pagetables)) !== 0;
  if (!ptwr && !d.emulateL2Writes) return false;
  if ((err & 3) !== 3 || !v.inKernel()) return false; // present + write
  const top = v.domain.is64 && !v.kernelMode ? v.guestTableUser : v.guestTable;
  if (!top) return false;
  const loc = findL1(d, top, v.cr2Lo, v.cr2Hi);
  if (!loc) return false;
  const elo = entryLo(d, loc[0], loc[1]);
  const ehi = entryHi(d, loc[0], loc[1]);
  const target = entryMfn(elo, ehi);
  const t = d.xen.table;
  if (target < 0 || t.owner[target] !== d.id || t.typeCount[target] === 0) return false;
  // Xen emulates writes to L1 tables only (under vm_assist writable_pagetables). A domain
  // configured with emulateL2Writes also gets writes to its L2 tables emulated (GNU Mach
  // 1.8 writes a kernel_page_dir entry directly, see docs/xen.md): a tsxen extension.
  const isL1 = t.type[target] === PGT_L1;
  if (!(isL1 && ptwr) && !(t.type[target] === PGT_L2 && d.emulateL2Writes)) return false;
  // Gather the stores that land in the target table, then validate and apply them.
  const base = target * FRAME_SIZE;
  const writes = new Map<number, [number, number]>();
  let foreign = false;
  const saved = v.cpu.saveState();
  // The processor translates the store before offering it to the hook: let the mapping be
  // writable for this one instruction, then put the guest's entry back.
  setEntry(d, loc[0], loc[1], (elo | PTE_RW) >>> 0, ehi);
  const code = v.cpu.emulateOne((pa, size, value) => {
    if (pa < base || pa >= base + FRAME_SIZE) {
      return false; // not ours: let it land
    }
    const slot = (pa - base) >>> 3;
    const off = (pa - base) & 7;
    if (off + size > 8) {
      foreign = true;
      return true;
    }
    const cur = writes.get(slot) ?? [entryLo(d, target, slot), entryHi(d, target, slot)];
    const buf = new DataView(new ArrayBuffer(8));
    buf.setUint32(0, cur[0], true);
    buf.setUint32(4, cur[1], true);
    if (size === 1) buf.setUint8(off, value);
    else if (size === 2) buf.setUint16(off, value, true);
    else buf.setUint32(off, value >>> 0, true);
    writes.set(slot, [buf.getUint32(0, true), buf.getUint32(4, true)]);
    return true;
  });
  const accessed = entryLo(d, loc[0], loc[1]) & (PTE_A | PTE_D);
  setEntry(d, loc[0], loc[1], (elo | (accessed & PTE_A)) >>> 0, ehi);
  v.cpu.flushTlb(false);
  const restore = (): false => {
    v.cpu.restoreState(saved);
    return false;
  };
  if (foreign || code !== 1 /* EXIT_BUDGET */) return restore();
  for (const [slot, [lo, hi]] of writes) {
    let nlo = lo;
    // A 32-bit guest writing the high half of a PAE entry first: keep it not present.
    if (isL1 && d.is32 && (nlo & PTE_P) !== 0 && getL1eCheck(d, nlo, hi) !== 0) nlo &= ~PTE_P;
    if (modEntry(d, target, slot, nlo, hi) !== 0) return restore();
  }
  if (d.needTlbFlush) flushDomainTlbs(d);
  return true;
}

/** getL1e without taking references: 0 when the entry would validate. */
function getL1eCheck(d: Domain, lo: number, hi: number): number {
  const rc = getL1e(d, lo, hi);
  if (rc === 0) putL1e(d, lo, hi);
  return rc;
}

export { EPERM };
