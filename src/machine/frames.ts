// The frame table: what the hypervisor knows about every machine frame (MFN), and the frame
// allocator that hands frames to domains.
//
// Invariants (this file owns them; the PV MMU in src/xen/ builds its safety on them, as Xen's
// arch/x86/mm.c does on struct page_info):
//
// F1. Every frame is in exactly one of three states:
//       free      owner = OWNER_FREE, count = 0, typeCount = 0, type = PGT_NONE, flags = 0,
//                 and the MFN is on the allocator's free list (exactly once);
//       allocated owner = a domain id (< DOMID_FIRST_RESERVED) or DOMID_XEN, FLAG_ALLOCATED set,
//                 count ≥ 1 (FLAG_ALLOCATED itself holds one general reference);
//       released  FLAG_ALLOCATED clear but count ≥ 1: the owner gave the frame up while someone
//                 still held a reference (a mapping, a grant); it returns to the free list when
//                 the last general reference goes.
// F2. Every type reference is accompanied by a general reference: typeCount ≤ count.
// F3. A frame has one type at a time. The type can change only while typeCount = 0; when
//     typeCount falls to 0 the type reverts to PGT_NONE and FLAG_VALIDATED is cleared. So a
//     frame that is a live page table (L1..L4) or descriptor page (SEG_DESC) cannot at the same
//     time be PGT_WRITABLE, i.e. mapped writable anywhere: that is the PV MMU's central rule.
// F4. FLAG_VALIDATED is set only while typeCount ≥ 1, by the owner of the validation policy
//     (src/xen/) after it checked every entry of the frame for its type.
// F5. FLAG_PINNED holds one type reference (and so, by F2, one general reference); it is set
//     only on page-table types.
// F6. Counts never wrap: a reference that would take a count past COUNT_MAX is refused (the
//     caller reports -EINVAL/-EBUSY to the guest), and dropping a reference that is not held is
//     a hypervisor bug (an Error), never a silent wrap.
// F7. The M2P (machine-to-phys) entry of a frame is INVALID_PFN unless the frame is allocated
//     to a domain and that domain said which PFN it is (builder or MMU_MACHPHYS_UPDATE).
// F8. When the allocator was given the machine memory, a frame's bytes are zeroed as it returns
//     to the free list (Xen scrubs freed pages): no domain ever sees another domain's data.
//
// Frames are handed out from a free list in an order shuffled by a seeded PRNG, so a domain's
// frames are scattered and MFN ≠ PFN (deterministically for a given seed): code that confuses
// the two spaces fails fast instead of working by accident on an identity map.

import type { MachineMemory } from "./memory.ts";

export const FRAME_SHIFT = 12;
export const FRAME_SIZE = 1 << FRAME_SHIFT;

/** Domain ids at and above this are Xen's reserved ids (public/xen.h). */
export const DOMID_FIRST_RESERVED = 0x7ff0;
export const DOMID_SELF = 0x7ff0;
export const DOMID_IO = 0x7ff1;
/** Frames the hypervisor owns (shared_info, the M2P, vCPU state frames). */
export const DOMID_XEN = 0x7ff2;
export const DOMID_INVALID = 0x7ff4;
/** The owner of a free frame. */
export const OWNER_FREE = DOMID_INVALID;

// Page types (Xen's PGT_*), one per frame at a time.
export const PGT_NONE = 0;
export const PGT_WRITABLE = 1;
export const PGT_L1 = 2;
export const PGT_L2 = 3;
export const PGT_L3 = 4;
export const PGT_L4 = 5;
export const PGT_SEG_DESC = 6;
export const PGT_SHARED = 7;
export type PageType = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7;
export const PAGE_TYPE_NAMES = ["none", "writable", "L1", "L2", "L3", "L4", "seg_desc", "shared"] as const;

export const FLAG_ALLOCATED = 1;
export const FLAG_PINNED = 2;
export const FLAG_VALIDATED = 4;
/** Written since the log-dirty bitmap was last read (migration). */
export const FLAG_DIRTY = 8;

export const COUNT_MAX = 0x7fffffff;
/** M2P entry of a frame no domain has described (read as all ones by 32-bit guests). */
export const INVALID_PFN = 0xffffffff;

/** Outcome of taking a type reference (`getType`). */
export const TYPE_OK = 0;
/** The reference was taken and the frame has just become this type: validate it, then call
 * `setValidated` (or `putType` to back out if validation fails). */
export const TYPE_NEEDS_VALIDATION = 1;
/** The frame has another type with live references (or the count is at its maximum). */
export const TYPE_CONFLICT = 2;
export type TypeResult = 0 | 1 | 2;

function isPageTableType(type: number): boolean {
  return type >= PGT_L1 && type <= PGT_L4;
}

export class FrameTable {
  readonly frames: number;
  /** Owning domain of each frame (OWNER_FREE when free). */
  readonly owner: Uint16Array;
  /** PGT_* of each frame. */
  readonly type: Uint8Array;
  /** Type references (Xen's type_info count). */
  readonly typeCount: Uint32Array;
  /** General references (Xen's count_info). */
  readonly count: Uint32Array;
  /** FLAG_* bits. */
  readonly flags: Uint8Array;
  /** Machine-to-phys: the PFN each frame has in its owner's pseudo-physical space (F7). */
  readonly m2p: Uint32Array;

  static forMemory(memory: MachineMemory): FrameTable {
    return new FrameTable(memory.frames);
  }

  constructor(frames: number) {
    if (!Number.isInteger(frames) || frames <= 0 || frames > 0x100000) {
      throw new RangeError(`frame table: ${frames} frames is outside 1..1048576 (4 GiB)`);
    }
    this.frames = frames;
    this.owner = new Uint16Array(frames).fill(OWNER_FREE);
    this.type = new Uint8Array(frames);
    this.typeCount = new Uint32Array(frames);
    this.count = new Uint32Array(frames);
    this.flags = new Uint8Array(frames);
    this.m2p = new Uint32Array(frames).fill(INVALID_PFN);
  }

  /** True when `mfn` is a frame of this machine (integer in range). */
  isValid(mfn: number): boolean {
    return Number.isInteger(mfn) && mfn >= 0 && mfn < this.frames;
  }

  isFree(mfn: number): boolean {
    return this.owner[mfn] === OWNER_FREE;
  }

  // ---- general references -------------------------------------------------------------------

  /** Takes a general reference if the frame is allocated to `domid`; false otherwise (F1, F6). */
  get(mfn: number, domid: number): boolean {
    if (!this.isValid(mfn)) return false;
    if (this.owner[mfn] !== domid || (this.flags[mfn] & FLAG_ALLOCATED) === 0) return false;
    const c = this.count[mfn];
    if (c >= COUNT_MAX) return false;
    this.count[mfn] = c + 1;
    return true;
  }

  /** Drops a general reference; returns true when it was the last one (the frame must then be
   * handed back with `FrameAllocator.reclaim`, which the allocator's own `put` does). */
  put(mfn: number): boolean {
    const c = this.count[mfn];
    if (c === 0) throw new Error(`frame table: put of frame 0x${mfn.toString(16)} with no reference (F6)`);
    if (this.typeCount[mfn] > c - 1) {
      throw new Error(
        `frame table: put of frame 0x${mfn.toString(16)} would leave type references without general ones (F2)`,
      );
    }
    this.count[mfn] = c - 1;
    return c === 1;
  }

  // ---- type references ----------------------------------------------------------------------

  /**
   * Takes a type reference (and a general one, F2) on a frame owned by `domid`. The caller
   * validates the frame when told TYPE_NEEDS_VALIDATION; on TYPE_CONFLICT nothing was taken.
   */
  getType(mfn: number, domid: number, type: PageType): TypeResult {
    if (type === PGT_NONE) throw new Error("frame table: getType of PGT_NONE");
    if (!this.get(mfn, domid)) return TYPE_CONFLICT;
    const tc = this.typeCount[mfn];
    if (tc === 0) {
      this.type[mfn] = type;
      this.typeCount[mfn] = 1;
      this.flags[mfn] &= ~FLAG_VALIDATED;
      if (type === PGT_WRITABLE || type === PGT_SHARED) {
        this.flags[mfn] |= FLAG_VALIDATED; // nothing to check in a data page
        return TYPE_OK;
      }
      return TYPE_NEEDS_VALIDATION;
    }
    if (this.type[mfn] !== type || tc >= COUNT_MAX) {
      this.count[mfn]--;
      return TYPE_CONFLICT;
    }
    this.typeCount[mfn] = tc + 1;
    return TYPE_OK;
  }

  /** Marks a frame whose type was just taken as checked (F4). */
  setValidated(mfn: number): void {
    if (this.typeCount[mfn] === 0) {
      throw new Error(`frame table: validating frame 0x${mfn.toString(16)} that has no type reference (F4)`);
    }
    this.flags[mfn] |= FLAG_VALIDATED;
  }

  /**
   * Drops a type reference and its general reference. Returns the type that was released when
   * this was the last type reference (the PV MMU must then drop the references the table's
   * entries held), or PGT_NONE while references remain.
   */
  putType(mfn: number): PageType {
    const tc = this.typeCount[mfn];
    if (tc === 0)
      throw new Error(`frame table: putType of frame 0x${mfn.toString(16)} with no type reference (F6)`);
    const type = this.type[mfn] as PageType;
    if (tc === 1 && (this.flags[mfn] & FLAG_PINNED) !== 0) {
      throw new Error(`frame table: last type reference of pinned frame 0x${mfn.toString(16)} dropped (F5)`);
    }
    this.typeCount[mfn] = tc - 1;
    let released: PageType = PGT_NONE;
    if (tc === 1) {
      this.type[mfn] = PGT_NONE;
      this.flags[mfn] &= ~FLAG_VALIDATED;
      released = type;
    }
    this.count[mfn]--;
    return released;
  }

  // ---- pinning -------------------------------------------------------------------------------

  /** Records a pin; the caller has already taken the type reference the pin holds (F5). */
  setPinned(mfn: number): boolean {
    if ((this.flags[mfn] & FLAG_PINNED) !== 0) return false;
    if (!isPageTableType(this.type[mfn]) || this.typeCount[mfn] === 0) {
      throw new Error(`frame table: pin of frame 0x${mfn.toString(16)} that is not a typed page table (F5)`);
    }
    this.flags[mfn] |= FLAG_PINNED;
    return true;
  }

  /** Clears a pin; the caller then drops the type reference it held. False if not pinned. */
  clearPinned(mfn: number): boolean {
    if ((this.flags[mfn] & FLAG_PINNED) === 0) return false;
    this.flags[mfn] &= ~FLAG_PINNED;
    return true;
  }

  isPinned(mfn: number): boolean {
    return (this.flags[mfn] & FLAG_PINNED) !== 0;
  }

  /** Checks F1–F5 for one frame; returns the broken invariant's description or undefined. */
  check(mfn: number): string | undefined {
    const owner = this.owner[mfn];
    const count = this.count[mfn];
    const tc = this.typeCount[mfn];
    const flags = this.flags[mfn];
    const at = `frame 0x${mfn.toString(16)}`;
    if (owner === OWNER_FREE) {
      if (count || tc || this.type[mfn] || flags) return `${at}: free but has counts, type or flags (F1)`;
      return undefined;
    }
    if (count === 0) return `${at}: owned by ${owner} with no reference (F1)`;
    if (tc > count) return `${at}: ${tc} type references but ${count} general (F2)`;
    if (tc === 0 && (this.type[mfn] !== PGT_NONE || flags & FLAG_VALIDATED)) {
      return `${at}: typed or validated with no type reference (F3, F4)`;
    }
    if (flags & FLAG_PINNED && (!isPageTableType(this.type[mfn]) || tc === 0)) {
      return `${at}: pinned but not a typed page table (F5)`;
    }
    return undefined;
  }
}

/** A small deterministic PRNG (xorshift32); the seed 0 is mapped to a fixed non-zero state. */
function xorshift32(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

export interface FrameAllocatorOptions {
  /** When given, frames are zeroed as they are freed (F8). */
  memory?: MachineMemory;
  /** Seed of the shuffle; the same seed gives the same MFNs for the same requests. */
  seed?: number;
  /** Frames below this MFN are never handed out (the hypervisor's own, set up before). */
  firstFrame?: number;
}

/**
 * Hands out free frames in a shuffled order and takes them back. Free MFNs sit in a dense array
 * `free[0..freeCount)`; allocation picks a random slot, swaps the last slot into it and shrinks
 * the array, so every allocation (even after frees) lands somewhere unpredictable, in O(1).
 */
export class FrameAllocator {
  readonly table: FrameTable;
  private readonly free: Int32Array;
  private freeCount = 0;
  private readonly random: () => number;
  private readonly memory: MachineMemory | undefined;

  constructor(table: FrameTable, options: FrameAllocatorOptions = {}) {
    const first = options.firstFrame ?? 0;
    if (!Number.isInteger(first) || first < 0 || first > table.frames) {
      throw new RangeError(`frame allocator: firstFrame ${first} is outside 0..${table.frames}`);
    }
    if (options.memory && options.memory.frames < table.frames) {
      throw new RangeError(
        `frame allocator: ${table.frames} frames but memory holds ${options.memory.frames}`,
      );
    }
    this.table = table;
    this.memory = options.memory;
    this.random = xorshift32(options.seed ?? 1);
    this.free = new Int32Array(table.frames);
    for (let mfn = first; mfn < table.frames; mfn++) {
      if (table.isFree(mfn)) this.free[this.freeCount++] = mfn;
    }
  }

  get freeFrames(): number {
    return this.freeCount;
  }

  /**
   * Allocates `count` frames to `owner` (a domain id or DOMID_XEN) and returns their MFNs in
   * allocation order (the builder uses that order as PFN order), or null when too few are free
   * (nothing is taken then).
   */
  tryAllocate(owner: number, count: number): Int32Array | null {
    if (!Number.isInteger(count) || count < 0)
      throw new RangeError(`frame allocator: bad frame count ${count}`);
    if (!Number.isInteger(owner) || owner < 0 || (owner >= DOMID_FIRST_RESERVED && owner !== DOMID_XEN)) {
      throw new RangeError(`frame allocator: 0x${owner.toString(16)} cannot own frames`);
    }
    if (count > this.freeCount) return null;
    const table = this.table;
    const out = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      const slot = this.random() % this.freeCount;
      const mfn = this.free[slot];
      this.free[slot] = this.free[--this.freeCount];
      table.owner[mfn] = owner;
      table.count[mfn] = 1;
      table.flags[mfn] = FLAG_ALLOCATED;
      out[i] = mfn;
    }
    return out;
  }

  /**
   * Allocates 2^order contiguous frames starting at a multiple of 2^order (a buddy block, as
   * Xen's alloc_domheap_pages hands out), all below `limit` (exclusive, an MFN), to `owner`.
   * The block is the first free one at or after a pseudo-random start. Returns the first MFN,
   * or -1 when no such block is free (nothing is taken then).
   */
  tryAllocateAligned(owner: number, order: number, limit = this.table.frames): number {
    if (!Number.isInteger(order) || order < 0 || order > 20) throw new RangeError(`frame allocator: bad order ${order}`);
    if (!Number.isInteger(owner) || owner < 0 || (owner >= DOMID_FIRST_RESERVED && owner !== DOMID_XEN)) {
      throw new RangeError(`frame allocator: 0x${owner.toString(16)} cannot own frames`);
    }
    const size = 1 << order;
    const top = Math.min(limit, this.table.frames);
    const blocks = Math.floor(top / size);
    if (blocks === 0 || size > this.freeCount) return -1;
    const onList = new Uint8Array(this.table.frames);
    for (let k = 0; k < this.freeCount; k++) onList[this.free[k]] = 1;
    const start = this.random() % blocks;
    for (let b = 0; b < blocks; b++) {
      const first = ((start + b) % blocks) * size;
      let ok = true;
      for (let m = first; m < first + size; m++) {
        if (onList[m] === 0) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      let w = 0;
      for (let k = 0; k < this.freeCount; k++) {
        const mfn = this.free[k];
        if (mfn < first || mfn >= first + size) this.free[w++] = mfn;
      }
      this.freeCount = w;
      const t = this.table;
      for (let m = first; m < first + size; m++) {
        t.owner[m] = owner;
        t.count[m] = 1;
        t.flags[m] = FLAG_ALLOCATED;
      }
      return first;
    }
    return -1;
  }

  /** As `tryAllocate`, but running out of memory is an Error naming the request. */
  allocate(owner: number, count: number): Int32Array {
    const mfns = this.tryAllocate(owner, count);
    if (mfns === null) {
      throw new Error(`out of memory: ${count} frames wanted for domain ${owner}, ${this.freeCount} free`);
    }
    return mfns;
  }

  /**
   * The owner gives a frame up (decrease_reservation, domain teardown): drops the reference
   * FLAG_ALLOCATED held. The frame is free again at once unless others still hold references;
   * then it is freed by the `put` that drops the last one. Returns true if it is free now.
   */
  release(mfn: number): boolean {
    const t = this.table;
    if (!t.isValid(mfn) || (t.flags[mfn] & FLAG_ALLOCATED) === 0) {
      throw new Error(`frame allocator: release of frame 0x${mfn.toString(16)} that is not allocated`);
    }
    t.flags[mfn] &= ~FLAG_ALLOCATED;
    return this.put(mfn);
  }

  /** Drops a general reference and frees the frame if it was the last (F1 "released"). */
  put(mfn: number): boolean {
    if (!this.table.put(mfn)) return false;
    this.reclaim(mfn);
    return true;
  }

  /**
   * Takes back every frame `owner` has, whatever references remain (the domain is dead, so no
   * page table of its own can still be live; references from other domains, such as grant
   * mappings, must have been dropped by the caller first). Returns the number of frames freed.
   */
  reclaimDomain(owner: number): number {
    const t = this.table;
    let n = 0;
    for (let mfn = 0; mfn < t.frames; mfn++) {
      if (t.owner[mfn] === owner) {
        this.reclaim(mfn);
        n++;
      }
    }
    return n;
  }

  private reclaim(mfn: number): void {
    const t = this.table;
    t.owner[mfn] = OWNER_FREE;
    t.count[mfn] = 0;
    t.typeCount[mfn] = 0;
    t.type[mfn] = PGT_NONE;
    t.flags[mfn] = 0;
    t.m2p[mfn] = INVALID_PFN;
    if (this.memory) this.memory.u8.fill(0, mfn * FRAME_SIZE, (mfn + 1) * FRAME_SIZE);
    this.free[this.freeCount++] = mfn;
  }
}
