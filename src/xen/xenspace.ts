// Xen's own part of every PV address space (xen-pv-abi.md §3.4, §5.1, §6.6), built from
// hypervisor-owned frames of machine memory.
//
// The processor walks the guest's page tables directly, so whatever the hardware must reach
// while a guest runs (the GDT, the LDT) and whatever guests may read at fixed addresses (the
// M2P) is mapped by page tables of ours, linked into guest tables as Xen links its own:
//
//   64-bit linear address            what                                   guest access
//   0xFFFF800000000000 (L4 slot 256) the M2P, one u64 per machine frame      read (user)
//   0xFFFF820000000000 (L4 slot 260) per-domain area: per vCPU v, at         none (supervisor
//                                    +v*0x20000 the GDT (16 pages: the        pages, and the
//                                    guest's frames, Xen's reserved page),    64-bit kernel
//                                    at +0x10000 the LDT (16 pages)           runs at CPL 3)
//   0xF5800000 (compat L2 slots      the compat M2P, one u32 per frame        read (ring 1 only)
//   428.. of the L2 under L3[3])
//
// A 32-bit PV guest runs in compatibility mode under long mode, as on a 64-bit Xen: each of
// its vCPUs has a hypervisor-owned L4 whose slot 0 points at the guest's PAE L3 (so L3
// entries are long-mode entries, which is why compat L3 entries may carry RW/US/A/D), and
// whose slots 256 and 260 are the ones above. The guest's 32-bit addresses cannot reach
// anything but slot 0.
//
// Invariants:
// - X1. Every frame used here is owned by DOMID_XEN; none is ever in a domain's p2m, so no
//   guest page-table entry validated by mm.ts can map one (except the frames a domain is
//   explicitly given: shared_info and grant-table frames, see mm.ts).
// - X2. The M2P mirrors (u64 and u32) equal FrameTable.m2p for every frame after syncM2P:
//   whoever changes FrameTable.m2p calls syncM2P for that frame (mm.ts, domain build and
//   teardown). Invalid entries read as all ones.
// - X3. Xen's entries are written with supervisor-only permissions except the 64-bit M2P,
//   which is user-readable and read-only at every level where it matters (the leaf).

import {
  DOMID_XEN,
  FRAME_SIZE,
  type FrameAllocator,
  type FrameTable,
  INVALID_PFN,
} from "../machine/frames.ts";
import type { MachineMemory } from "../machine/memory.ts";

export const PTE_P = 0x1;
export const PTE_RW = 0x2;
export const PTE_US = 0x4;
export const PTE_PWT = 0x8;
export const PTE_PCD = 0x10;
export const PTE_A = 0x20;
export const PTE_D = 0x40;
export const PTE_PSE = 0x80;
export const PTE_G = 0x100;

export const L4_SLOT_M2P = 256;
export const L4_SLOT_PERDOMAIN = 260;
export const L4_XEN_FIRST = 256;
export const L4_XEN_LAST = 271;
/** Linear address (high word) of the per-domain area: 0xFFFF820000000000. */
export const PERDOMAIN_HI = 0xffff8200 | 0;
/** Bytes of per-domain area per vCPU: 16 GDT pages, 16 LDT pages. */
export const PERVCPU_AREA = 0x20000;
export const LDT_OFFSET = 0x10000;
export const MAX_VCPUS = 32;
/** First compat L2 slot (of the L2 under L3[3]) belonging to Xen: (0xF5800000 >> 21) & 511. */
export const COMPAT_L2_XEN_FIRST = 428;

/** Xen's reserved GDT entries for 64-bit guests (selector >> 3 - 7168 → descriptor). */
const GDT64: [number, number, number][] = [
  [0xe008, 0x0000ffff, 0x00af9b00], // Xen CS64 DPL0
  [0xe010, 0x0000ffff, 0x00cf9300], // Xen DS DPL0
  [0xe020, 0x0000ffff, 0x00cffb00], // FLAT_RING3_CS32
  [0xe028, 0x0000ffff, 0x00cff300], // FLAT_RING3_DS32 / SS
  [0xe030, 0x0000ffff, 0x00affb00], // FLAT_RING3_CS64
];
/** ... and for compat (32-bit PAE) guests. */
const GDT32: [number, number, number][] = [
  [0xe008, 0x0000ffff, 0x00af9b00],
  [0xe010, 0x0000ffff, 0x00cf9300],
  [0xe018, 0x0000ffff, 0x00cfbb00], // FLAT_RING1_CS
  [0xe020, 0x0000ffff, 0x00cfb300], // FLAT_RING1_DS
  [0xe028, 0x0000ffff, 0x00cffb00], // FLAT_RING3_CS
  [0xe030, 0x0000ffff, 0x00cff300], // FLAT_RING3_DS
];

export class XenSpace {
  readonly memory: MachineMemory;
  readonly table: FrameTable;
  readonly allocator: FrameAllocator;
  /** Frames holding the u64 M2P and the u32 (compat) M2P, in order. */
  readonly m2p64: Int32Array;
  readonly m2p32: Int32Array;
  /** Tables of the 64-bit M2P under L4 slot 256: L3, L2, then L1s. */
  readonly m2pL3: number;
  readonly m2pL2: number;
  readonly m2pL1: Int32Array;
  /** L1 tables of the compat M2P (linked from compat L2 slots 428..). */
  readonly m2pCompatL1: Int32Array;
  /** A frame of zeros, read-only wherever mapped (unused GDT pages). */
  readonly zeroFrame: number;
  /** Xen's reserved GDT page (entries 7168..7679) for 64-bit and compat guests. */
  readonly gdtXen64: number;
  readonly gdtXen32: number;

  constructor(memory: MachineMemory, table: FrameTable, allocator: FrameAllocator) {
    this.memory = memory;
    this.table = table;
    this.allocator = allocator;
    const frames = table.frames;
    const n64 = Math.ceil((frames * 8) / FRAME_SIZE);
    const n32 = Math.ceil((frames * 4) / FRAME_SIZE);
    this.m2p64 = this.alloc(n64);
    this.m2p32 = this.alloc(n32);
    this.m2pL3 = this.alloc(1)[0];
    this.m2pL2 = this.alloc(1)[0];
    this.m2pL1 = this.alloc(Math.ceil(n64 / 512));
    this.m2pCompatL1 = this.alloc(Math.ceil(n32 / 512));
    if (this.m2pL1.length > 512 || this.m2pCompatL1.length > 512 - COMPAT_L2_XEN_FIRST) {
      throw new Error("xen: machine too large for the M2P area");
    }
    this.zeroFrame = this.alloc(1)[0];
    this.gdtXen64 = this.alloc(1)[0];
    this.gdtXen32 = this.alloc(1)[0];
    // 64-bit M2P: L3[0] → L2, L2[i] → L1 i, L1 entries → M2P frames, read-only and user.
    this.pte(this.m2pL3, 0, this.m2pL2, PTE_P | PTE_RW | PTE_US | PTE_A);
    for (let i = 0; i < this.m2pL1.length; i++) {
      this.pte(this.m2pL2, i, this.m2pL1[i], PTE_P | PTE_RW | PTE_US | PTE_A);
      for (let k = 0; k < 512 && i * 512 + k < n64; k++) {
        this.pte(this.m2pL1[i], k, this.m2p64[i * 512 + k], PTE_P | PTE_US | PTE_A);
      }
    }
    for (let i = 0; i < this.m2pCompatL1.length; i++) {
      for (let k = 0; k < 512 && i * 512 + k < n32; k++) {
        this.pte(this.m2pCompatL1[i], k, this.m2p32[i * 512 + k], PTE_P | PTE_A);
      }
    }
    for (let mfn = 0; mfn < frames; mfn++) this.syncM2P(mfn);
    for (const [sel, lo, hi] of GDT64) this.writeDesc(this.gdtXen64, sel, lo, hi);
    for (const [sel, lo, hi] of GDT32) this.writeDesc(this.gdtXen32, sel, lo, hi);
  }

  /** Allocates zeroed Xen frames. */
  alloc(count: number): Int32Array {
    const mfns = this.allocator.allocate(DOMID_XEN, count);
    for (const mfn of mfns) this.memory.u8.fill(0, mfn * FRAME_SIZE, (mfn + 1) * FRAME_SIZE);
    return mfns;
  }

  /** Writes a page-table entry (mfn, flags) at `index` of table frame `table`. */
  pte(table: number, index: number, mfn: number, flags: number, hi = 0): void {
    const a = table * FRAME_SIZE + index * 8;
    this.memory.writeU32(a, ((mfn << 12) | flags) >>> 0);
    this.memory.writeU32(a + 4, (hi | (mfn >>> 20)) >>> 0);
  }

  private writeDesc(frame: number, sel: number, lo: number, hi: number): void {
    const a = frame * FRAME_SIZE + (sel & 0xff8);
    this.memory.writeU32(a, lo >>> 0);
    this.memory.writeU32(a + 4, hi >>> 0);
  }

  /** Copies FrameTable.m2p[mfn] into both mirrors (X2). */
  syncM2P(mfn: number): void {
    const pfn = this.table.m2p[mfn];
    const a64 = this.m2p64[mfn >>> 9] * FRAME_SIZE + (mfn & 511) * 8;
    const a32 = this.m2p32[mfn >>> 10] * FRAME_SIZE + (mfn & 1023) * 4;
    if (pfn === INVALID_PFN) {
      this.memory.writeU32(a64, 0xffffffff);
      this.memory.writeU32(a64 + 4, 0xffffffff);
    } else {
      this.memory.writeU32(a64, pfn);
      this.memory.writeU32(a64 + 4, 0);
    }
    this.memory.writeU32(a32, pfn);
  }

  /** Xen's slots of a 64-bit guest L4 (or of a compat vCPU's L4): M2P and per-domain area. */
  writeXenL4Slots(l4: number, perDomainL3: number): void {
    for (let slot = L4_XEN_FIRST; slot <= L4_XEN_LAST; slot++) this.pte(l4, slot, 0, 0);
    this.pte(l4, L4_SLOT_M2P, this.m2pL3, PTE_P | PTE_RW | PTE_US | PTE_A);
    this.pte(l4, L4_SLOT_PERDOMAIN, perDomainL3, PTE_P | PTE_RW | PTE_A);
  }

  /** Xen's slots of the compat L2 under L3[3]: the compat M2P, and nothing above it. */
  writeCompatL2Slots(l2: number): void {
    for (let slot = COMPAT_L2_XEN_FIRST; slot < 512; slot++) {
      const i = slot - COMPAT_L2_XEN_FIRST;
      if (i < this.m2pCompatL1.length) this.pte(l2, slot, this.m2pCompatL1[i], PTE_P | PTE_RW | PTE_A);
      else this.pte(l2, slot, 0, 0);
    }
  }
}

/** A domain's per-domain area (L4 slot 260): GDT and LDT windows of each vCPU. */
export class PerDomainArea {
  readonly l3: number;
  readonly l2: number;
  readonly l1: Int32Array;

  constructor(readonly space: XenSpace) {
    this.l3 = space.alloc(1)[0];
    this.l2 = space.alloc(1)[0];
    // 32 vCPUs × 32 pages = 1024 pages = 2 L1 tables.
    this.l1 = space.alloc((MAX_VCPUS * (PERVCPU_AREA / FRAME_SIZE)) / 512);
    space.pte(this.l3, 0, this.l2, PTE_P | PTE_RW | PTE_A);
    for (let i = 0; i < this.l1.length; i++) space.pte(this.l2, i, this.l1[i], PTE_P | PTE_RW | PTE_A);
  }

  /** Linear address (low word; the high word is PERDOMAIN_HI) of vCPU v's GDT. */
  static gdtLo(vcpu: number): number {
    return (vcpu * PERVCPU_AREA) | 0;
  }
  static ldtLo(vcpu: number): number {
    return (vcpu * PERVCPU_AREA + LDT_OFFSET) | 0;
  }

  private slot(vcpu: number, page: number): [number, number] {
    const n = vcpu * (PERVCPU_AREA / FRAME_SIZE) + page;
    return [this.l1[n >>> 9], n & 511];
  }

  /** Maps the guest's GDT frames (pages 0..13), zeros after them, and Xen's page 14. */
  mapGdt(vcpu: number, frames: readonly number[], xenPage: number): void {
    for (let p = 0; p < 16; p++) {
      const [t, i] = this.slot(vcpu, p);
      if (p < frames.length) this.space.pte(t, i, frames[p], PTE_P | PTE_RW | PTE_A | PTE_D);
      else if (p === 14) this.space.pte(t, i, xenPage, PTE_P | PTE_A);
      else this.space.pte(t, i, this.space.zeroFrame, PTE_P | PTE_A);
    }
  }

  /** Maps LDT frames (pages 16..31 of the vCPU's window); missing pages read as zeros. */
  mapLdt(vcpu: number, frames: readonly number[]): void {
    for (let p = 0; p < 16; p++) {
      const [t, i] = this.slot(vcpu, 16 + p);
      if (p < frames.length) this.space.pte(t, i, frames[p], PTE_P | PTE_RW | PTE_A | PTE_D);
      else this.space.pte(t, i, this.space.zeroFrame, PTE_P | PTE_A);
    }
  }

  free(): void {
    for (const mfn of [this.l3, this.l2, ...this.l1]) this.space.allocator.release(mfn);
  }
}
