/**
 * The page walker: linear to physical translation through the guest's own page tables, in the
 * three paging modes (two-level with PSE, PAE, four-level), with the permission rules, the
 * accessed/dirty updates and the #PF error codes of the Intel SDM vol. 3 ch. 4.
 *
 * Invariants:
 * - walk() either returns (the access is allowed; accessed bits are set on every entry used and
 *   the dirty bit on the leaf for a write) or raises #PF through cpu.fault() having written CR2
 *   and changed nothing else: no A/D bit is set by a walk that faults.
 * - The returned bits describe what the TLB may cache for this privilege: WALK_WRITABLE only
 *   when a write would succeed now *and* needs no further A/D update (dirty already set, or
 *   set by this very write walk), WALK_EXECUTABLE when an instruction fetch would succeed,
 *   WALK_GLOBAL when the leaf is global and CR4.PGE is on.
 * - MAXPHYADDR is 36: entry bits 51..36 (PAE: 62..36) are reserved, bit 63 too unless
 *   EFER.NXE. Physical addresses are JS numbers (exact up to 2^53); tables beyond 4 GiB read as
 *   all ones (nothing is there), which every mode reports as a reserved-bit fault.
 * - PAE PDPTEs are read from memory on every walk (AMD style) instead of being cached at CR3
 *   load (Intel style); MOV CR3 still validates them (#GP), see SystemUnit.writeCr. The only
 *   visible difference is for a guest that edits its PDPT without reloading CR3.
 * - No allocation: the entries walked are kept in preallocated fields.
 */
import type { Cpu } from "../cpu.ts";
import * as S from "../state.ts";

export const WALK_WRITABLE = 1;
export const WALK_EXECUTABLE = 2;
export const WALK_GLOBAL = 4;

/** #PF error code bits. */
export const PF_P = 1;
export const PF_W = 2;
export const PF_U = 4;
export const PF_RSVD = 8;
export const PF_ID = 16;

const PTE_P = 1;
const PTE_RW = 2;
const PTE_US = 4;
const PTE_A = 0x20;
const PTE_D = 0x40;
const PTE_PS = 0x80;
const PTE_G = 0x100;

const TWO_32 = 4294967296;
/** PAE entries: bits 62..36 of the high word are reserved (MAXPHYADDR 36). */
const PAE_RSVD_HI = 0x7ffffff0;
/** Four-level entries: bits 51..36 reserved; 62..52 are ignored (available to software). */
const LONG_RSVD_HI = 0x000ffff0;

export class PageWalker {
  /** Physical addresses and low words of the entries used by the current walk (leaf last). */
  private entryAddr0 = 0;
  private entryAddr1 = 0;
  private entryAddr2 = 0;
  private entryAddr3 = 0;
  private entryLo0 = 0;
  private entryLo1 = 0;
  private entryLo2 = 0;
  private entryLo3 = 0;
  private entries = 0;
  /**
   * log2 of the largest page size cached in the TLB since the last full flush by this unit
   * (12 when only 4 KiB pages): INVLPG must drop every 4 KiB fragment of a large page.
   */
  largestPageShift = 12;

  constructor(private readonly cpu: Cpu) {}

  walk(lin: number, lh: number, access: number, user: boolean): number {
    const mode = this.cpu.pagingMode;
    if (mode === 3) return this.walkLong(lin, lh, access, user);
    if (mode === 2) return this.walkPae(lin, lh, access, user);
    return this.walkTwoLevel(lin, lh, access, user);
  }

  // ------------------------------------------------------------------ modes

  private walkTwoLevel(lin: number, lh: number, access: number, user: boolean): number {
    const cpu = this.cpu;
    const s = cpu.s;
    this.entries = 0;
    const pdeAt = ((s[S.CR3_LO] & 0xfffff000) >>> 0) + ((lin >>> 22) << 2);
    const pde = cpu.phys32(pdeAt);
    if ((pde & PTE_P) === 0) this.pageFault(lin, lh, access, user, 0);
    this.note(pdeAt, pde);
    if ((pde & PTE_PS) !== 0 && (s[S.CR4] & S.CR4_PSE) !== 0) {
      // 4 MiB page. PSE-36: bits 16..13 are physical bits 35..32; 21..17 are reserved.
      if ((pde & 0x003e0000) !== 0) this.pageFault(lin, lh, access, user, PF_P | PF_RSVD);
      const phys = ((pde & 0xffc00000) >>> 0) + ((pde >>> 13) & 0xf) * TWO_32 + (lin & 0x003ff000);
      if (this.largestPageShift < 22) this.largestPageShift = 22;
      return this.finish(lin, lh, access, user, pde, pde, false, phys);
    }
    const pteAt = ((pde & 0xfffff000) >>> 0) + (((lin >>> 12) & 0x3ff) << 2);
    const pte = cpu.phys32(pteAt);
    if ((pte & PTE_P) === 0) this.pageFault(lin, lh, access, user, 0);
    this.note(pteAt, pte);
    return this.finish(lin, lh, access, user, pde & pte, pte, false, (pte & 0xfffff000) >>> 0);
  }

  private walkPae(lin: number, lh: number, access: number, user: boolean): number {
    const cpu = this.cpu;
    const s = cpu.s;
    this.entries = 0;
    const rsvdHi = (s[S.EFER] & S.EFER_NXE) !== 0 ? PAE_RSVD_HI : PAE_RSVD_HI | 0x80000000;
    // PDPTE: no R/W, U/S or A bits (bits 2..1 and 8..5 are reserved, so is bit 63).
    const pdpteAt = ((s[S.CR3_LO] & 0xffffffe0) >>> 0) + ((lin >>> 30) << 3);
    const pdpte = cpu.phys32(pdpteAt);
    const pdpteHi = cpu.phys32(pdpteAt + 4);
    if ((pdpte & PTE_P) === 0) this.pageFault(lin, lh, access, user, 0);
    if ((pdpte & 0x1e6) !== 0 || (pdpteHi & 0xfffffff0) !== 0) this.pageFault(lin, lh, access, user, PF_P | PF_RSVD);
    const pdeAt = ((pdpte & 0xfffff000) >>> 0) + (pdpteHi & 0xf) * TWO_32 + (((lin >>> 21) & 0x1ff) << 3);
    const pde = this.read(pdeAt);
    const pdeHi = this.readHi(pdeAt);
    if ((pde & PTE_P) === 0) this.pageFault(lin, lh, access, user, 0);
    if ((pdeHi & rsvdHi) !== 0) this.pageFault(lin, lh, access, user, PF_P | PF_RSVD);
    this.note(pdeAt, pde);
    if ((pde & PTE_PS) !== 0) {
      if ((pde & 0x001fe000) !== 0) this.pageFault(lin, lh, access, user, PF_P | PF_RSVD);
      const phys = ((pde & 0xffe00000) >>> 0) + (pdeHi & 0xf) * TWO_32 + (lin & 0x001ff000);
      if (this.largestPageShift < 21) this.largestPageShift = 21;
      return this.finish(lin, lh, access, user, pde, pde, pdeHi < 0, phys);
    }
    const pteAt = ((pde & 0xfffff000) >>> 0) + (pdeHi & 0xf) * TWO_32 + (((lin >>> 12) & 0x1ff) << 3);
    const pte = this.read(pteAt);
    const pteHi = this.readHi(pteAt);
    if ((pte & PTE_P) === 0) this.pageFault(lin, lh, access, user, 0);
    if ((pteHi & rsvdHi) !== 0) this.pageFault(lin, lh, access, user, PF_P | PF_RSVD);
    this.note(pteAt, pte);
    const phys = ((pte & 0xfffff000) >>> 0) + (pteHi & 0xf) * TWO_32;
    return this.finish(lin, lh, access, user, pde & pte, pte, (pdeHi | pteHi) < 0, phys);
  }

  private walkLong(lin: number, lh: number, access: number, user: boolean): number {
    const cpu = this.cpu;
    const s = cpu.s;
    this.entries = 0;
    const rsvdHi = (s[S.EFER] & S.EFER_NXE) !== 0 ? LONG_RSVD_HI : LONG_RSVD_HI | 0x80000000;
    const fault = PF_P | PF_RSVD;
    // PML4E: index = linear bits 47..39 = high-word bits 15..7.
    const pml4At = ((s[S.CR3_LO] & 0xfffff000) >>> 0) + (s[S.CR3_HI] & 0xf) * TWO_32 + (((lh >>> 7) & 0x1ff) << 3);
    const pml4e = this.read(pml4At);
    const pml4eHi = this.readHi(pml4At);
    if ((pml4e & PTE_P) === 0) this.pageFault(lin, lh, access, user, 0);
    if ((pml4eHi & rsvdHi) !== 0 || (pml4e & PTE_PS) !== 0) this.pageFault(lin, lh, access, user, fault);
    this.note(pml4At, pml4e);
    // PDPTE: index = linear bits 38..30.
    const pdptAt = ((pml4e & 0xfffff000) >>> 0) + (pml4eHi & 0xf) * TWO_32 + ((((lh & 0x7f) << 2) | (lin >>> 30)) << 3);
    const pdpte = this.read(pdptAt);
    const pdpteHi = this.readHi(pdptAt);
    if ((pdpte & PTE_P) === 0) this.pageFault(lin, lh, access, user, 0);
    if ((pdpteHi & rsvdHi) !== 0) this.pageFault(lin, lh, access, user, fault);
    this.note(pdptAt, pdpte);
    let allowed = pml4e & pdpte;
    let nx = (pml4eHi | pdpteHi) < 0;
    if ((pdpte & PTE_PS) !== 0) {
      // 1 GiB page: bits 29..13 reserved.
      if ((pdpte & 0x3fffe000) !== 0) this.pageFault(lin, lh, access, user, fault);
      const phys = ((pdpte & 0xc0000000) >>> 0) + (pdpteHi & 0xf) * TWO_32 + (lin & 0x3ffff000);
      this.largestPageShift = 30;
      return this.finish(lin, lh, access, user, allowed, pdpte, nx, phys);
    }
    const pdeAt = ((pdpte & 0xfffff000) >>> 0) + (pdpteHi & 0xf) * TWO_32 + (((lin >>> 21) & 0x1ff) << 3);
    const pde = this.read(pdeAt);
    const pdeHi = this.readHi(pdeAt);
    if ((pde & PTE_P) === 0) this.pageFault(lin, lh, access, user, 0);
    if ((pdeHi & rsvdHi) !== 0) this.pageFault(lin, lh, access, user, fault);
    this.note(pdeAt, pde);
    allowed &= pde;
    nx = nx || pdeHi < 0;
    if ((pde & PTE_PS) !== 0) {
      if ((pde & 0x001fe000) !== 0) this.pageFault(lin, lh, access, user, fault);
      const phys = ((pde & 0xffe00000) >>> 0) + (pdeHi & 0xf) * TWO_32 + (lin & 0x001ff000);
      if (this.largestPageShift < 21) this.largestPageShift = 21;
      return this.finish(lin, lh, access, user, allowed, pde, nx, phys);
    }
    const pteAt = ((pde & 0xfffff000) >>> 0) + (pdeHi & 0xf) * TWO_32 + (((lin >>> 12) & 0x1ff) << 3);
    const pte = this.read(pteAt);
    const pteHi = this.readHi(pteAt);
    if ((pte & PTE_P) === 0) this.pageFault(lin, lh, access, user, 0);
    if ((pteHi & rsvdHi) !== 0) this.pageFault(lin, lh, access, user, fault);
    this.note(pteAt, pte);
    const phys = ((pte & 0xfffff000) >>> 0) + (pteHi & 0xf) * TWO_32;
    return this.finish(lin, lh, access, user, allowed & pte, pte, nx || pteHi < 0, phys);
  }

  // ------------------------------------------------------------------ common tail

  /**
   * Permission check on the combined entry bits, then the A/D updates, then the result.
   * `allowed`: R/W and U/S ANDed over the levels that carry them; `leaf`: the entry that maps
   * the page; `nx`: XD set at any level (only meaningful with NXE; reserved otherwise).
   */
  private finish(lin: number, lh: number, access: number, user: boolean, allowed: number, leaf: number, nx: boolean, phys: number): number {
    const cpu = this.cpu;
    const s = cpu.s;
    const wp = (s[S.CR0] & S.CR0_WP) !== 0;
    const smep = (s[S.CR4] & S.CR4_SMEP) !== 0;
    const userPage = (allowed & PTE_US) !== 0;
    const rw = (allowed & PTE_RW) !== 0;
    if (user && !userPage) this.pageFault(lin, lh, access, user, PF_P);
    const canWrite = user ? rw : rw || !wp;
    const canExec = !nx && !(!user && smep && userPage);
    if (access === 1 && !canWrite) this.pageFault(lin, lh, access, user, PF_P);
    if (access === 2 && !canExec) this.pageFault(lin, lh, access, user, PF_P);
    // The access is allowed: set accessed bits top-down, and dirty on the leaf for a write.
    const n = this.entries;
    if (n > 0) this.setBits(this.entryAddr0, this.entryLo0, n === 1 && access === 1 ? PTE_A | PTE_D : PTE_A);
    if (n > 1) this.setBits(this.entryAddr1, this.entryLo1, n === 2 && access === 1 ? PTE_A | PTE_D : PTE_A);
    if (n > 2) this.setBits(this.entryAddr2, this.entryLo2, n === 3 && access === 1 ? PTE_A | PTE_D : PTE_A);
    if (n > 3) this.setBits(this.entryAddr3, this.entryLo3, access === 1 ? PTE_A | PTE_D : PTE_A);
    cpu.walkPhys = phys;
    const dirty = access === 1 || (leaf & PTE_D) !== 0;
    let r = 0;
    if (canWrite && dirty) r |= WALK_WRITABLE;
    if (canExec) r |= WALK_EXECUTABLE;
    if ((leaf & PTE_G) !== 0 && (s[S.CR4] & S.CR4_PGE) !== 0) r |= WALK_GLOBAL;
    return r;
  }

  private note(addr: number, lo: number): void {
    switch (this.entries++) {
      case 0: this.entryAddr0 = addr; this.entryLo0 = lo; break;
      case 1: this.entryAddr1 = addr; this.entryLo1 = lo; break;
      case 2: this.entryAddr2 = addr; this.entryLo2 = lo; break;
      default: this.entryAddr3 = addr; this.entryLo3 = lo; break;
    }
  }

  private setBits(addr: number, lo: number, bits: number): void {
    if ((lo & bits) === bits || addr >= TWO_32) return;
    // Re-read: an earlier level may share the entry (self-referencing tables).
    this.cpu.setPhys32(addr, this.cpu.phys32(addr) | bits);
  }

  /** Low word of a 64-bit entry; all ones where no memory can be (at or above 4 GiB). */
  private read(addr: number): number {
    return addr < TWO_32 - 4 ? this.cpu.phys32(addr) : -1;
  }
  private readHi(addr: number): number {
    return addr < TWO_32 - 8 ? this.cpu.phys32(addr + 4) : -1;
  }

  /** Writes CR2 and raises #PF with the error code built from the access and `bits` (P, RSVD). */
  private pageFault(lin: number, lh: number, access: number, user: boolean, bits: number): never {
    const cpu = this.cpu;
    const s = cpu.s;
    let err = bits;
    if (access === 1) err |= PF_W;
    if (user) err |= PF_U;
    if (access === 2 && ((s[S.CR4] & S.CR4_SMEP) !== 0 || (cpu.pagingMode >= 2 && (s[S.EFER] & S.EFER_NXE) !== 0))) err |= PF_ID;
    s[S.CR2_LO] = lin;
    s[S.CR2_HI] = cpu.lma ? lh : 0;
    cpu.pendingAddrLo = lin;
    cpu.pendingAddrHi = cpu.lma ? lh : 0;
    return cpu.fault(S.VEC_PF, err, true);
  }
}
