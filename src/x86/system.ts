/**
 * The system half of the processor: paging walks, segmentation and descriptor tables,
 * privilege checks, event delivery (real, protected and long mode, #DF and triple fault),
 * far transfers, task state, control registers, MSRs and the CPUID policy.
 *
 * Everything here is called from the run loop or from instruction closures (compile.ts) and
 * reports guest faults with cpu.fault(...) (which unwinds; see cpu.ts).
 *
 * Invariants:
 * - Check, then commit. Every operation here reads and validates everything that can fault
 *   (descriptors, TSS slots, stack pages, limits) before it changes any architectural state;
 *   the only writes allowed before the last check are the descriptor accessed bits and the
 *   stack frame of an event or far call, whose pages and limits have all been checked first.
 *   So a fault unwinds with the processor as it was before the operation.
 * - System structures (GDT, LDT, IDT, TSS) are read and written with implicit supervisor
 *   accesses (translateAs(..., user=false, fill=false)); stacks are accessed with the
 *   privilege of the CPL that owns them (the new CPL for an inner-privilege switch).
 * - deliverEvent never lets a guest fault escape: a fault raised while delivering an event is
 *   handled right there (serially, as #DF, or as a triple fault), so callers outside the run
 *   loop's try (deliverPendingFault) are safe.
 * - s[S.CPL] is written before a CS/SS cache is loaded, because loading CS/SS recomputes the
 *   derived mode (cpu.updateMode) from it; EFLAGS.VM is written before data segment caches,
 *   because their fast-path flag depends on it.
 * - MOV SS/POP SS set s[S.INTR_SHADOW] = SHADOW_MOV_SS (2), not 1: STI's shadow (1) must not
 *   hold back a single-step trap, MOV SS's must.
 * - No BigInt; 64-bit values are lo/hi int32 pairs; addresses are normalised with >>> 0 before
 *   being handed to the physical accessors.
 *
 * What is not implemented (see docs/x86-system.md): SMAP, PCID, VME/PVI. (Debug breakpoints
 * are matched in cpu.ts.) Task switches by JMP or IRET need the caller to pass the next EIP (the
 * optional `nextLo` of farJump and iret; compile.ts does).
 */
import { EXIT_EXCEPTION, EXIT_TRIPLE_FAULT, GUEST_FAULT } from "./cpu.ts";
import type { Cpu } from "./cpu.ts";
import { getArithFlags, setArithFlags } from "./flags.ts";
import * as S from "./state.ts";
import { CpuidPolicy } from "./system/cpuid.ts";
import {
  D_ACCESSED,
  D_DB,
  D_L,
  SYS_CALL_GATE16,
  SYS_CALL_GATE32,
  SYS_INT_GATE16,
  SYS_INT_GATE32,
  SYS_LDT,
  SYS_TASK_GATE,
  SYS_TRAP_GATE16,
  SYS_TRAP_GATE32,
  SYS_TSS16_AVAIL,
  SYS_TSS16_BUSY,
  SYS_TSS32_AVAIL,
  SYS_TSS32_BUSY,
  descAttr,
  descBase,
  descDpl,
  descLimit,
  descType,
  isCode,
  isConforming,
  isData,
  isPresent,
  isRw,
  nullAttr,
  withinLimit,
} from "./system/descriptors.ts";
import { PageWalker } from "./system/paging.ts";

export { CpuidPolicy } from "./system/cpuid.ts";

/** Event kinds for deliverEvent (VT-x interruption types). */
export const EV_EXTERNAL = 0;
export const EV_NMI = 2;
export const EV_HW_EXCEPTION = 3;
export const EV_SOFT_INT = 4; // INT n: gate DPL checked against CPL
export const EV_PRIV_SOFT_EXCEPTION = 5; // INT1 (ICEBP)
export const EV_SOFT_EXCEPTION = 6; // INT3, INTO: gate DPL checked, vector is an exception

// MSR indices.
export const MSR_TSC = 0x10;
export const MSR_PLATFORM_ID = 0x17;
export const MSR_APIC_BASE = 0x1b;
export const MSR_FEATURE_CONTROL = 0x3a;
export const MSR_BIOS_SIGN_ID = 0x8b;
export const MSR_MTRRCAP = 0xfe;
export const MSR_SYSENTER_CS = 0x174;
export const MSR_SYSENTER_ESP = 0x175;
export const MSR_SYSENTER_EIP = 0x176;
export const MSR_MCG_CAP = 0x179;
export const MSR_MCG_STATUS = 0x17a;
export const MSR_MISC_ENABLE = 0x1a0;
export const MSR_DEBUGCTL = 0x1d9;
export const MSR_PAT = 0x277;
export const MSR_MTRR_DEF_TYPE = 0x2ff;
export const MSR_EFER = 0xc0000080;
export const MSR_STAR = 0xc0000081;
export const MSR_LSTAR = 0xc0000082;
export const MSR_CSTAR = 0xc0000083;
export const MSR_FMASK = 0xc0000084;
export const MSR_FS_BASE = 0xc0000100;
export const MSR_GS_BASE = 0xc0000101;
export const MSR_KERNEL_GS_BASE = 0xc0000102;
export const MSR_TSC_AUX = 0xc0000103;

const TWO_32 = 4294967296;

/**
 * s[S.INTR_SHADOW] values, as VMX's interruptibility state: 1 = blocking by STI, 2 = blocking
 * by MOV SS/POP SS (which also holds back a single-step #DB). Any non-zero value blocks
 * interrupts for one instruction.
 */
export const SHADOW_STI = 1;
export const SHADOW_MOV_SS = 2;

/** What started a task switch (they differ in busy bits, NT and the back link). */
const TASK_JMP = 0;
const TASK_CALL = 1;
const TASK_IRET = 2;
const TASK_INT = 3;

/** CR0 bits a guest may set (ET reads as 1 whatever is written). */
const CR0_WRITABLE =
  S.CR0_PE | S.CR0_MP | S.CR0_EM | S.CR0_TS | S.CR0_ET | S.CR0_NE | S.CR0_WP | S.CR0_AM | S.CR0_NW | S.CR0_CD | S.CR0_PG;
/** CR4 bits we implement (everything else is reserved: #GP). */
const CR4_WRITABLE =
  S.CR4_TSD | S.CR4_DE | S.CR4_PSE | S.CR4_PAE | S.CR4_MCE | S.CR4_PGE | S.CR4_PCE | S.CR4_OSFXSR |
  S.CR4_OSXMMEXCPT | S.CR4_UMIP | S.CR4_SMEP;
/** CR4 bits whose change invalidates every cached translation, global ones included. */
const CR4_PAGING = S.CR4_PSE | S.CR4_PAE | S.CR4_PGE | S.CR4_SMEP;
const EFER_WRITABLE = S.EFER_SCE | S.EFER_LME | S.EFER_NXE;

/** EFLAGS bits POPF/IRET may change at any privilege. */
const FLAGS_ALWAYS = S.F_CF | S.F_PF | S.F_AF | S.F_ZF | S.F_SF | S.F_TF | S.F_DF | S.F_OF | S.F_NT;
/** Flat segment attributes used by SYSCALL/SYSRET/SYSENTER/SYSEXIT. */
const ATTR_CODE64 = 0x9b | S.ATTR_G | S.ATTR_L;
const ATTR_CODE32 = 0x9b | S.ATTR_G | S.ATTR_DB;
const ATTR_DATA32 = 0x93 | S.ATTR_G | S.ATTR_DB;
const ATTR_DPL3 = 3 << S.ATTR_DPL_SHIFT;
/** A segment cache loaded in virtual-8086 mode: present, DPL 3, read/write data, accessed. */
const ATTR_V86 = 0xf3;

function isContributory(vector: number): boolean {
  return vector === S.VEC_DE || (vector >= S.VEC_TS && vector <= S.VEC_GP);
}

function isCanonical(hi: number): boolean {
  return ((hi + 0x8000) & 0xffff0000) === 0;
}

export class SystemUnit {
  readonly pager: PageWalker;
  /** The CPUID table; the owner may replace or edit it. */
  cpuidPolicy: CpuidPolicy = new CpuidPolicy();

  /**
   * The event whose delivery was interrupted by the exception that exited (VT-x's IDT-vectoring
   * information): valid after an EXIT_EXCEPTION (or a triple fault) raised while delivering
   * another event, so the owner can re-inject it.
   */
  readonly vectoring = { valid: false, vector: 0, kind: 0, errorCode: 0, hasErrorCode: false };

  // Scratch: the descriptor last read by readDescriptor (and its linear address).
  private descLo = 0;
  private descHi = 0;
  private descW2 = 0;
  private descW3 = 0;
  private descAddrLo = 0;
  private descAddrHi = 0;
  /** High word of the last linAdd() result. */
  private linHi = 0;
  /** EXT bit (0 or 1) for error codes raised while delivering the current event. */
  private ext = 0;
  /** Values of the TSS stack slot read by tssStack(). */
  private tssSs = 0;
  private tssSpLo = 0;
  private tssSpHi = 0;
  /** A stack frame being built: item k is pushed k-th (item 0 at the highest address). */
  private readonly frameLo = new Int32Array(16);
  private readonly frameHi = new Int32Array(16);
  private frameN = 0;
  /** Result of pushFrame: the new stack pointer. */
  private newSpLo = 0;
  private newSpHi = 0;
  /** A second descriptor (the new SS during a privilege change). */
  private ssLo = 0;
  private ssHi = 0;

  constructor(readonly cpu: Cpu) {
    this.pager = new PageWalker(cpu);
  }

  // ================================================================== paging

  /**
   * Walks the guest page tables for linear address (lin, lh) (lh: high 32 bits, 64-bit mode
   * only). access: 0 read, 1 write, 2 execute; user: a CPL-3 access (not an implicit
   * supervisor access). Sets accessed/dirty bits as hardware does. On success stores the
   * physical page address in cpu.walkPhys and returns permission bits: 1 = writable for this
   * privilege (and the dirty bit is set), 2 = executable, 4 = global. On violation raises #PF
   * (error code and CR2 exactly as hardware).
   */
  walk(lin: number, lh: number, access: number, user: boolean): number {
    return this.pager.walk(lin, lh, access, user);
  }

  /** INVLPG: drops every cached translation of the page holding (lin, lh), whatever its size. */
  invlpg(lin: number, lh: number): void {
    const cpu = this.cpu;
    const shift = this.pager.largestPageShift;
    if (shift === 12) {
      cpu.flushTlbPage(lin, lh);
      return;
    }
    if (shift > 22) {
      this.flushAll();
      return;
    }
    // A large page is cached as 4 KiB fragments: drop every fragment of the region.
    const size = 1 << shift;
    const start = lin & -size;
    for (let off = 0; off < size; off += 4096) cpu.flushTlbPage((start + off) | 0, lh);
  }

  /** Flushes every translation (global ones too) and forgets which page sizes were cached. */
  private flushAll(): void {
    this.cpu.flushTlb(false);
    this.pager.largestPageShift = 12;
  }

  // ================================================================== segmentation checks

  /** Limit and type checks for a non-flat segment (protected/real mode). Faults #GP/#SS. */
  checkSegment(seg: number, off: number, size: number, write: boolean): void {
    const s = this.cpu.s;
    const attr = s[S.segWord(seg, S.SEG_ATTR)];
    const limit = s[S.segWord(seg, S.SEG_LIMIT)];
    const vector = seg === S.SEG_SS ? S.VEC_SS : S.VEC_GP;
    if ((s[S.CR0] & S.CR0_PE) !== 0 && (s[S.FLAGS] & S.F_VM) === 0) {
      if ((attr & S.ATTR_UNUSABLE) !== 0 || (attr & S.ATTR_P) === 0) this.cpu.fault(vector, 0, true);
      if ((attr & S.ATTR_CODE) !== 0) {
        // Code: never writable; readable only with the R bit.
        if (write || (attr & S.ATTR_RW) === 0) this.cpu.fault(vector, 0, true);
      } else if (write && (attr & S.ATTR_RW) === 0) this.cpu.fault(vector, 0, true);
    }
    if (!withinLimit(attr, limit, off, size)) this.cpu.fault(vector, 0, true);
  }

  // ================================================================== event delivery

  /**
   * Delivers an event through the IVT/IDT, or exits if the exception bitmap says so.
   * For software events (kinds 4, 5, 6) RIP is already past the instruction; pass its length
   * so that a fault raised while delivering it is reported at the instruction itself.
   */
  deliverEvent(vector: number, kind: number, errorCode: number, hasErrorCode: boolean, instructionLength = 0): void {
    const cpu = this.cpu;
    let v = vector;
    let k = kind;
    let err = errorCode;
    let hasErr = hasErrorCode;
    let rewind = instructionLength;
    this.vectoring.valid = false;
    for (let attempt = 0; attempt < 4; attempt++) {
      if (this.exitsOnException(v, k)) {
        // As VT-x: a software exception exits with RIP at the instruction and its length given.
        const length = k === EV_HW_EXCEPTION ? 0 : rewind;
        if (length !== 0) this.rewindRip(length);
        this.exceptionExit(v, err, hasErr, length);
        return;
      }
      try {
        this.deliverOnce(v, k, err, hasErr);
        cpu.s[S.INTR_SHADOW] = 0;
        cpu.s[S.HALTED] = 0;
        cpu.eventCheck = true;
        return;
      } catch (e) {
        if (e !== GUEST_FAULT || cpu.pendingVector < 0) throw e;
      }
      // A fault while delivering event v.
      const v2 = cpu.pendingVector;
      const err2 = cpu.pendingError;
      const has2 = cpu.pendingHasError;
      cpu.pendingVector = -1;
      if (rewind !== 0) {
        this.rewindRip(rewind);
        rewind = 0;
      }
      this.vectoring.valid = true;
      this.vectoring.vector = v;
      this.vectoring.kind = k;
      this.vectoring.errorCode = err;
      this.vectoring.hasErrorCode = hasErr;
      if (v === S.VEC_DF && k === EV_HW_EXCEPTION) {
        this.tripleFault();
        return;
      }
      const firstIsPf = k === EV_HW_EXCEPTION && v === S.VEC_PF;
      const firstContributory = k === EV_HW_EXCEPTION && isContributory(v);
      const secondIsPf = v2 === S.VEC_PF;
      const secondContributory = isContributory(v2);
      if ((firstContributory && secondContributory) || (firstIsPf && (secondContributory || secondIsPf))) {
        v = S.VEC_DF;
        err = 0;
        hasErr = true;
      } else {
        v = v2;
        err = err2;
        hasErr = has2;
      }
      k = EV_HW_EXCEPTION;
    }
    this.tripleFault();
  }

  /** After an instruction executed with TF=1: true if a single-step #DB is due. */
  pendingSingleStep(): boolean {
    // MOV SS / POP SS hold the trap until after the next instruction; STI's shadow does not.
    return this.cpu.s[S.INTR_SHADOW] !== SHADOW_MOV_SS;
  }

  private exitsOnException(vector: number, kind: number): boolean {
    if (kind !== EV_HW_EXCEPTION && kind !== EV_SOFT_EXCEPTION && kind !== EV_PRIV_SOFT_EXCEPTION) return false;
    return vector < 32 && ((this.cpu.controls.exceptionBitmap >>> vector) & 1) !== 0;
  }

  private exceptionExit(vector: number, errorCode: number, hasErrorCode: boolean, length: number): void {
    const cpu = this.cpu;
    const info = cpu.exitInfo;
    cpu.exitReason = EXIT_EXCEPTION;
    info.reason = EXIT_EXCEPTION;
    info.vector = vector;
    info.errorCode = hasErrorCode ? errorCode : 0;
    info.hasErrorCode = hasErrorCode;
    info.addressLo = vector === S.VEC_PF ? cpu.s[S.CR2_LO] : 0;
    info.addressHi = vector === S.VEC_PF ? cpu.s[S.CR2_HI] : 0;
    info.instructionLength = length;
    cpu.s[S.HALTED] = 0;
  }

  private tripleFault(): void {
    const cpu = this.cpu;
    cpu.exitReason = EXIT_TRIPLE_FAULT;
    cpu.exitInfo.reason = EXIT_TRIPLE_FAULT;
    cpu.exitInfo.vector = S.VEC_DF;
  }

  private rewindRip(length: number): void {
    const s = this.cpu.s;
    const lo = s[S.RIP_LO];
    const nlo = (lo - length) | 0;
    if (this.cpu.code64) {
      if (nlo >>> 0 > lo >>> 0) s[S.RIP_HI] = (s[S.RIP_HI] - 1) | 0;
      s[S.RIP_LO] = nlo;
    } else s[S.RIP_LO] = this.cpu.csD ? nlo : nlo & 0xffff;
  }

  private deliverOnce(vector: number, kind: number, err: number, hasErr: boolean): void {
    const s = this.cpu.s;
    this.ext = kind === EV_SOFT_INT || kind === EV_SOFT_EXCEPTION ? 0 : 1;
    if ((s[S.CR0] & S.CR0_PE) === 0) this.deliverReal(vector);
    else if (this.cpu.lma) this.deliverLong(vector, kind, err, hasErr);
    else this.deliverProtected(vector, kind, err, hasErr);
  }

  /** Real mode: through the IVT; pushes FLAGS, CS, IP; no error code. */
  private deliverReal(vector: number): void {
    const cpu = this.cpu;
    const s = cpu.s;
    if ((vector << 2) + 3 > s[S.IDTR_LIMIT] >>> 0) cpu.gp(0);
    const entry = (s[S.IDTR_BASE_LO] + (vector << 2)) | 0;
    const ip = this.readLin(entry, 0, 2, false);
    const cs = this.readLin((entry + 2) | 0, 0, 2, false);
    const eflags = cpu.getEflags();
    this.frameN = 0;
    this.frameItem(eflags & 0xffff, 0);
    this.frameItem(s[S.segWord(S.SEG_CS, S.SEG_SEL)], 0);
    this.frameItem(s[S.RIP_LO] & 0xffff, 0);
    this.pushOnCurrentStack(2, false, 0);
    s[S.FLAGS] &= ~(S.F_IF | S.F_TF | S.F_AC | S.F_RF);
    this.setStackPointer(cpu.ssB ? 32 : 16);
    this.loadRealSegment(S.SEG_CS, cs);
    cpu.setRip(ip, 0);
    cpu.eventCheck = true;
  }

  /** Protected mode (not long mode): 8-byte IDT gates, 16/32-bit frames, stack switch via the TSS. */
  private deliverProtected(vector: number, kind: number, err: number, hasErr: boolean): void {
    const cpu = this.cpu;
    const s = cpu.s;
    const ext = this.ext;
    const idtErr = (vector << 3) | 2 | ext;
    const vm = (s[S.FLAGS] & S.F_VM) !== 0;
    if (vm && kind === EV_SOFT_INT && (s[S.FLAGS] & S.F_IOPL) !== S.F_IOPL) cpu.gp(0);
    if ((vector << 3) + 7 > s[S.IDTR_LIMIT] >>> 0) cpu.gp(idtErr);
    const gateLin = (s[S.IDTR_BASE_LO] + (vector << 3)) | 0;
    const lo = this.readLin(gateLin, 0, 4, false);
    const hi = this.readLin((gateLin + 4) | 0, 0, 4, false);
    const type = descType(hi);
    if (type !== SYS_TASK_GATE && type !== SYS_INT_GATE16 && type !== SYS_TRAP_GATE16 && type !== SYS_INT_GATE32 && type !== SYS_TRAP_GATE32) {
      cpu.gp(idtErr);
    }
    const soft = kind === EV_SOFT_INT || kind === EV_SOFT_EXCEPTION;
    if (soft && descDpl(hi) < cpu.cpl) cpu.gp(idtErr);
    if (!isPresent(hi)) cpu.fault(S.VEC_NP, idtErr, true);
    if (type === SYS_TASK_GATE) {
      this.taskSwitch(lo >>> 16, TASK_INT, s[S.RIP_LO], err, hasErr, ext);
      return;
    }
    const gate32 = (type & 8) !== 0;
    const sel = lo >>> 16;
    const offset = gate32 ? (lo & 0xffff) | (hi & 0xffff0000) : lo & 0xffff;
    this.checkTargetCode(sel, ext);
    const csLo = this.descLo;
    const csHi = this.descHi;
    const dpl = descDpl(csHi);
    const oldCpl = cpu.cpl;
    const inner = !isConforming(csHi) && dpl < oldCpl;
    if (vm && (!inner || dpl !== 0)) cpu.gp((sel & 0xfffc) | ext);
    const newCpl = inner ? dpl : oldCpl;
    if (offset >>> 0 > descLimit(csLo, csHi) >>> 0) cpu.gp(ext);

    const eflags = cpu.getEflags();
    const size = gate32 ? 4 : 2;
    const mask = gate32 ? -1 : 0xffff;
    this.frameN = 0;
    if (inner) {
      this.tssStack(newCpl);
      const newSs = this.tssSs;
      const newSp = this.tssSpLo;
      this.checkNewStack(newSs, newCpl, ext);
      if (vm) {
        this.frameItem(s[S.segWord(S.SEG_GS, S.SEG_SEL)], 0);
        this.frameItem(s[S.segWord(S.SEG_FS, S.SEG_SEL)], 0);
        this.frameItem(s[S.segWord(S.SEG_DS, S.SEG_SEL)], 0);
        this.frameItem(s[S.segWord(S.SEG_ES, S.SEG_SEL)], 0);
      }
      this.frameItem(s[S.segWord(S.SEG_SS, S.SEG_SEL)], 0);
      this.frameItem(s[S.REG_ESP * 2] & mask, 0);
      this.frameItem(eflags & mask, 0);
      this.frameItem(s[S.segWord(S.SEG_CS, S.SEG_SEL)], 0);
      this.frameItem(s[S.RIP_LO] & mask, 0);
      if (hasErr) this.frameItem(err & mask, 0);
      const ssAttr = descAttr(this.ssHi);
      const stackWidth = (ssAttr & S.ATTR_DB) !== 0 ? 32 : 16;
      this.pushFrame(size, newSp, 0, stackWidth, descBase(this.ssLo, this.ssHi), ssAttr, descLimit(this.ssLo, this.ssHi), newCpl === 3, (newSs & 0xfffc) | ext);
      this.setAccessed(csHi);
      this.setAccessedAt(this.ssAddrLo, this.ssAddrHi, this.ssHi);
      // Commit.
      s[S.CPL] = newCpl;
      s[S.FLAGS] &= ~(S.F_TF | S.F_NT | S.F_RF | S.F_VM | (type & 1 ? 0 : S.F_IF));
      if (vm) {
        this.loadNull(S.SEG_ES, 0, 0);
        this.loadNull(S.SEG_DS, 0, 0);
        this.loadNull(S.SEG_FS, 0, 0);
        this.loadNull(S.SEG_GS, 0, 0);
      }
      this.loadCache(S.SEG_SS, newSs, this.ssLo, this.ssHi, 0);
      this.setStackPointerTo(stackWidth, newSp);
    } else {
      this.frameItem(eflags & mask, 0);
      this.frameItem(s[S.segWord(S.SEG_CS, S.SEG_SEL)], 0);
      this.frameItem(s[S.RIP_LO] & mask, 0);
      if (hasErr) this.frameItem(err & mask, 0);
      this.pushOnCurrentStack(size, oldCpl === 3, ext);
      this.setAccessed(csHi);
      s[S.FLAGS] &= ~(S.F_TF | S.F_NT | S.F_RF | S.F_VM | (type & 1 ? 0 : S.F_IF));
      this.setStackPointer(cpu.ssB ? 32 : 16);
    }
    this.loadCache(S.SEG_CS, (sel & 0xfffc) | newCpl, csLo, csHi, 0);
    cpu.setRip(offset, 0);
    cpu.updateMode();
    cpu.eventCheck = true;
  }

  /** Long mode (64-bit and compatibility): 16-byte gates, IST, 64-bit frames, 16-byte aligned. */
  private deliverLong(vector: number, kind: number, err: number, hasErr: boolean): void {
    const cpu = this.cpu;
    const s = cpu.s;
    const ext = this.ext;
    const idtErr = (vector << 3) | 2 | ext;
    if ((vector << 4) + 15 > s[S.IDTR_LIMIT] >>> 0) cpu.gp(idtErr);
    const gateLo = this.linAdd(s[S.IDTR_BASE_LO], s[S.IDTR_BASE_HI], vector << 4);
    const gateHi = this.linHi;
    const w0 = this.readAt(gateLo, gateHi, 0, 4);
    const w1 = this.readAt(gateLo, gateHi, 4, 4);
    const w2 = this.readAt(gateLo, gateHi, 8, 4);
    const type = descType(w1);
    if (type !== SYS_INT_GATE32 && type !== SYS_TRAP_GATE32) cpu.gp(idtErr);
    const soft = kind === EV_SOFT_INT || kind === EV_SOFT_EXCEPTION;
    if (soft && descDpl(w1) < cpu.cpl) cpu.gp(idtErr);
    if (!isPresent(w1)) cpu.fault(S.VEC_NP, idtErr, true);
    const sel = w0 >>> 16;
    const ripLo = (w0 & 0xffff) | (w1 & 0xffff0000);
    const ripHi = w2;
    this.checkTargetCode(sel, ext);
    const csLo = this.descLo;
    const csHi = this.descHi;
    if ((csHi & D_L) === 0 || (csHi & D_DB) !== 0) cpu.gp((sel & 0xfffc) | ext);
    const dpl = descDpl(csHi);
    const oldCpl = cpu.cpl;
    const newCpl = isConforming(csHi) ? oldCpl : dpl;
    if (!isCanonical(ripHi)) cpu.gp(ext);
    const ist = w1 & 7;
    let rspLo = s[S.REG_ESP * 2];
    let rspHi = s[S.REG_ESP * 2 + 1];
    if (ist !== 0 || newCpl < oldCpl) {
      this.tss64Slot(ist !== 0 ? 36 + (ist - 1) * 8 : 4 + newCpl * 8, ext);
      rspLo = this.tssSpLo;
      rspHi = this.tssSpHi;
      if (!isCanonical(rspHi)) cpu.fault(S.VEC_SS, ext, true);
    }
    rspLo &= ~0xf;
    this.frameN = 0;
    this.frameItem(s[S.segWord(S.SEG_SS, S.SEG_SEL)], 0);
    this.frameItem(s[S.REG_ESP * 2], s[S.REG_ESP * 2 + 1]);
    this.frameItem(cpu.getEflags(), 0);
    this.frameItem(s[S.segWord(S.SEG_CS, S.SEG_SEL)], 0);
    this.frameItem(s[S.RIP_LO], cpu.code64 ? s[S.RIP_HI] : 0);
    if (hasErr) this.frameItem(err, 0);
    this.pushFrame(8, rspLo, rspHi, 64, 0, 0, 0, newCpl === 3, ext);
    this.setAccessed(csHi);
    // Commit.
    s[S.CPL] = newCpl;
    s[S.FLAGS] &= ~(S.F_TF | S.F_NT | S.F_RF | S.F_VM | (type & 1 ? 0 : S.F_IF));
    if (newCpl !== oldCpl) this.loadNull(S.SEG_SS, newCpl, newCpl);
    s[S.REG_ESP * 2] = this.newSpLo;
    s[S.REG_ESP * 2 + 1] = this.newSpHi;
    this.loadCache(S.SEG_CS, (sel & 0xfffc) | newCpl, csLo, csHi, 0);
    cpu.setRip(ripLo, ripHi);
    cpu.updateMode();
    cpu.eventCheck = true;
  }

  /**
   * Reads and checks the code segment an IDT gate (or call gate) points at: #GP(EXT) if null,
   * #GP(sel) if outside the table, not code, or DPL > CPL; #NP(sel) if not present.
   * The descriptor is left in descLo/descHi.
   */
  private checkTargetCode(sel: number, ext: number): void {
    const cpu = this.cpu;
    if ((sel & 0xfffc) === 0) cpu.gp(ext);
    const selErr = (sel & 0xfffc) | ext;
    if (!this.readDescriptor(sel)) cpu.gp(selErr);
    if (!isCode(this.descHi) || descDpl(this.descHi) > cpu.cpl) cpu.gp(selErr);
    if (!isPresent(this.descHi)) cpu.fault(S.VEC_NP, selErr, true);
  }

  /** Reads SS:ESP for privilege `cpl` from the current (16- or 32-bit) TSS into tssSs/tssSpLo. */
  private tssStack(cpl: number): void {
    const cpu = this.cpu;
    const s = cpu.s;
    const trType = s[S.segWord(S.SEG_TR, S.SEG_ATTR)] & 0xf;
    const trErr = (s[S.segWord(S.SEG_TR, S.SEG_SEL)] & 0xfffc) | this.ext;
    const limit = s[S.segWord(S.SEG_TR, S.SEG_LIMIT)] >>> 0;
    const base = s[S.segWord(S.SEG_TR, S.SEG_BASE_LO)];
    if (trType === SYS_TSS32_BUSY || trType === SYS_TSS32_AVAIL) {
      const at = 4 + cpl * 8;
      if (at + 5 > limit) cpu.fault(S.VEC_TS, trErr, true);
      this.tssSpLo = this.readLin((base + at) | 0, 0, 4, false);
      this.tssSs = this.readLin((base + at + 4) | 0, 0, 2, false);
    } else {
      const at = 2 + cpl * 4;
      if (at + 3 > limit) cpu.fault(S.VEC_TS, trErr, true);
      this.tssSpLo = this.readLin((base + at) | 0, 0, 2, false);
      this.tssSs = this.readLin((base + at + 2) | 0, 0, 2, false);
    }
    this.tssSpHi = 0;
  }

  /** Reads a 64-bit stack pointer from the 64-bit TSS at byte offset `at` into tssSpLo/Hi. */
  private tss64Slot(at: number, ext: number): void {
    const cpu = this.cpu;
    const s = cpu.s;
    const trErr = (s[S.segWord(S.SEG_TR, S.SEG_SEL)] & 0xfffc) | ext;
    if (at + 7 > s[S.segWord(S.SEG_TR, S.SEG_LIMIT)] >>> 0) cpu.fault(S.VEC_TS, trErr, true);
    const lo = this.linAdd(s[S.segWord(S.SEG_TR, S.SEG_BASE_LO)], s[S.segWord(S.SEG_TR, S.SEG_BASE_HI)], at);
    const hi = this.linHi;
    this.tssSpLo = this.readAt(lo, hi, 0, 4);
    this.tssSpHi = this.readAt(lo, hi, 4, 4);
  }

  /** Linear address of the SS descriptor read by checkNewStack (for its accessed bit). */
  private ssAddrLo = 0;
  private ssAddrHi = 0;

  /**
   * The checks on a stack segment taken from the TSS (interrupt or call-gate privilege change):
   * #TS(EXT) for null, #TS(sel) for a bad selector/descriptor, #SS(sel) if not present.
   * Leaves the descriptor in ssLo/ssHi.
   */
  private checkNewStack(ss: number, cpl: number, ext: number): void {
    const cpu = this.cpu;
    const err = (ss & 0xfffc) | ext;
    if ((ss & 0xfffc) === 0) cpu.fault(S.VEC_TS, ext, true);
    if (!this.readDescriptor(ss)) cpu.fault(S.VEC_TS, err, true);
    const hi = this.descHi;
    if ((ss & 3) !== cpl || descDpl(hi) !== cpl || !isData(hi) || !isRw(hi)) cpu.fault(S.VEC_TS, err, true);
    if (!isPresent(hi)) cpu.fault(S.VEC_SS, err, true);
    this.ssLo = this.descLo;
    this.ssHi = hi;
    this.ssAddrLo = this.descAddrLo;
    this.ssAddrHi = this.descAddrHi;
  }

  // ================================================================== stack frames

  private frameItem(lo: number, hi: number): void {
    this.frameLo[this.frameN] = lo;
    this.frameHi[this.frameN] = hi;
    this.frameN++;
  }

  /** Pushes the frame on the current SS:(E/R)SP with the current stack width. */
  private pushOnCurrentStack(size: number, user: boolean, ssErr: number): void {
    const cpu = this.cpu;
    const s = cpu.s;
    const width = cpu.code64 ? 64 : cpu.ssB ? 32 : 16;
    this.pushFrame(size, s[S.REG_ESP * 2], s[S.REG_ESP * 2 + 1], width, cpu.segBase[S.SEG_SS], s[S.segWord(S.SEG_SS, S.SEG_ATTR)],
      s[S.segWord(S.SEG_SS, S.SEG_LIMIT)], user, ssErr);
  }

  /**
   * Writes frame items below the stack pointer (item 0 at the highest address), `size` bytes
   * each, after checking every item's limit (#SS(ssErr)) and pages (#PF) so nothing is written
   * unless all of it can be. width: 16, 32 (offsets in SS, base/attr/limit of SS) or 64 (linear).
   * Leaves the new stack pointer in newSpLo/newSpHi (16-bit: the upper half of ESP kept).
   */
  private pushFrame(size: number, spLo: number, spHi: number, width: number, base: number, attr: number, limit: number, user: boolean, ssErr: number): void {
    const cpu = this.cpu;
    const n = this.frameN;
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < n; k++) {
        const delta = (k + 1) * size;
        let lin: number;
        let lh = 0;
        if (width === 64) {
          lin = (spLo - delta) | 0;
          lh = lin >>> 0 > spLo >>> 0 ? (spHi - 1) | 0 : spHi;
          if (!isCanonical(lh)) cpu.fault(S.VEC_SS, ssErr, true);
        } else {
          const off = width === 32 ? (spLo - delta) | 0 : (spLo - delta) & 0xffff;
          if (pass === 0 && !withinLimit(attr, limit, off, size)) cpu.fault(S.VEC_SS, ssErr, true);
          lin = (base + off) | 0;
        }
        if (pass === 0) {
          cpu.translateAs(lin, lh, 1, user, false);
          const last = (lin + size - 1) | 0;
          if ((last & ~0xfff) !== (lin & ~0xfff)) cpu.translateAs(last, last >>> 0 < lin >>> 0 ? (lh + 1) | 0 : lh, 1, user, false);
        } else if (size === 8) {
          this.writeLin(lin, lh, 4, this.frameLo[k], user);
          const l2 = (lin + 4) | 0;
          this.writeLin(l2, l2 >>> 0 < lin >>> 0 ? (lh + 1) | 0 : lh, 4, this.frameHi[k], user);
        } else this.writeLin(lin, lh, size, this.frameLo[k], user);
      }
    }
    const total = n * size;
    if (width === 64) {
      this.newSpLo = (spLo - total) | 0;
      this.newSpHi = this.newSpLo >>> 0 > spLo >>> 0 ? (spHi - 1) | 0 : spHi;
    } else if (width === 32) {
      this.newSpLo = (spLo - total) | 0;
      this.newSpHi = 0;
    } else {
      this.newSpLo = (spLo & ~0xffff) | ((spLo - total) & 0xffff);
      this.newSpHi = 0;
    }
  }

  /** RSP := the pushFrame result (for a stack whose width is already the current one). */
  private setStackPointer(width: number): void {
    const s = this.cpu.s;
    s[S.REG_ESP * 2] = this.newSpLo;
    if (width !== 64) s[S.REG_ESP * 2 + 1] = 0;
    else s[S.REG_ESP * 2 + 1] = this.newSpHi;
  }

  /** RSP := pushFrame result for a new 16/32-bit stack whose pointer came from the TSS. */
  private setStackPointerTo(width: number, fromTss: number): void {
    const s = this.cpu.s;
    s[S.REG_ESP * 2] = width === 16 ? (fromTss & ~0xffff) | (this.newSpLo & 0xffff) : this.newSpLo;
    s[S.REG_ESP * 2 + 1] = 0;
  }

  /** Adds `delta` to the stack pointer with the current stack width. */
  private adjustStackPointer(delta: number): void {
    const cpu = this.cpu;
    const s = cpu.s;
    const lo = s[S.REG_ESP * 2];
    if (cpu.code64) {
      const sum = (lo >>> 0) + delta;
      s[S.REG_ESP * 2] = sum | 0;
      if (sum > 0xffffffff) s[S.REG_ESP * 2 + 1] = (s[S.REG_ESP * 2 + 1] + 1) | 0;
    } else if (cpu.ssB) {
      s[S.REG_ESP * 2] = (lo + delta) | 0;
      s[S.REG_ESP * 2 + 1] = 0;
    } else s[S.REG_ESP * 2] = (lo & ~0xffff) | ((lo + delta) & 0xffff);
  }

  /**
   * Reads `size` bytes (2, 4 or 8) at SS:(SP + k) with the current stack width and privilege;
   * 8 bytes: the low word is returned, the high word is left in cpu.hi.
   */
  private stackRead(k: number, size: number): number {
    const cpu = this.cpu;
    const s = cpu.s;
    const lo = s[S.REG_ESP * 2];
    let off: number;
    let hi = 0;
    if (cpu.code64) {
      const sum = (lo >>> 0) + k;
      off = sum | 0;
      hi = (s[S.REG_ESP * 2 + 1] + (sum > 0xffffffff ? 1 : 0)) | 0;
    } else off = cpu.ssB ? (lo + k) | 0 : (lo + k) & 0xffff;
    if (size === 2) return cpu.rd16(S.SEG_SS, off, hi);
    if (size === 4) return cpu.rd32(S.SEG_SS, off, hi);
    return cpu.rd64(S.SEG_SS, off, hi);
  }

  // ================================================================== linear memory helpers

  /** base + off as a linear address (64-bit in long mode, 32-bit wrap otherwise); high word in linHi. */
  private linAdd(baseLo: number, baseHi: number, off: number): number {
    const sum = (baseLo >>> 0) + off;
    this.linHi = this.cpu.lma ? (baseHi + (sum > 0xffffffff ? 1 : 0)) | 0 : 0;
    return sum | 0;
  }

  /** Reads `size` bytes at (lin, lh) + off as an implicit supervisor access. */
  private readAt(lin: number, lh: number, off: number, size: number): number {
    const l = (lin + off) | 0;
    return this.readLin(l, this.cpu.lma && l >>> 0 < lin >>> 0 ? (lh + 1) | 0 : lh, size, false);
  }

  /** Reads 1, 2 or 4 bytes at a linear address with the given privilege; may cross a page. */
  readLin(lin: number, lh: number, size: number, user: boolean): number {
    const cpu = this.cpu;
    if ((lin & 0xfff) + size <= 0x1000) {
      const pa = cpu.translateAs(lin, lh, 0, user, false) >>> 0;
      return cpu.physRead(pa, size);
    }
    const last = (lin + size - 1) | 0;
    const lh2 = last >>> 0 < lin >>> 0 ? (lh + 1) | 0 : lh;
    const pa1 = cpu.translateAs(lin, lh, 0, user, false) >>> 0;
    const pa2 = cpu.translateAs(last & ~0xfff, lh2, 0, user, false) >>> 0;
    let v = 0;
    for (let k = 0; k < size; k++) {
      const off = (lin & 0xfff) + k;
      v |= cpu.physRead8(off < 0x1000 ? pa1 + k : pa2 + (off - 0x1000)) << (8 * k);
    }
    return size === 2 ? v & 0xffff : v;
  }

  /** Writes 1, 2 or 4 bytes at a linear address with the given privilege; both pages checked first. */
  writeLin(lin: number, lh: number, size: number, v: number, user: boolean): void {
    const cpu = this.cpu;
    if ((lin & 0xfff) + size <= 0x1000) {
      cpu.physWrite(cpu.translateAs(lin, lh, 1, user, false) >>> 0, size, v);
      return;
    }
    const last = (lin + size - 1) | 0;
    const lh2 = last >>> 0 < lin >>> 0 ? (lh + 1) | 0 : lh;
    const pa1 = cpu.translateAs(lin, lh, 1, user, false) >>> 0;
    const pa2 = cpu.translateAs(last & ~0xfff, lh2, 1, user, false) >>> 0;
    for (let k = 0; k < size; k++) {
      const off = (lin & 0xfff) + k;
      cpu.physWrite8(off < 0x1000 ? pa1 + k : pa2 + (off - 0x1000), v >>> (8 * k));
    }
  }

  // ================================================================== descriptors

  /**
   * Reads the 8-byte descriptor a selector names into descLo/descHi (and its linear address
   * into descAddrLo/Hi). False when the selector is beyond its table's limit or names the LDT
   * while none is loaded. The null selector reads GDT entry 0 (callers check null first).
   */
  private readDescriptor(sel: number): boolean {
    const s = this.cpu.s;
    const index = sel & 0xfff8;
    let baseLo: number;
    let baseHi: number;
    let limit: number;
    if ((sel & 4) !== 0) {
      if ((s[S.segWord(S.SEG_LDTR, S.SEG_ATTR)] & S.ATTR_UNUSABLE) !== 0) return false;
      baseLo = s[S.segWord(S.SEG_LDTR, S.SEG_BASE_LO)];
      baseHi = s[S.segWord(S.SEG_LDTR, S.SEG_BASE_HI)];
      limit = s[S.segWord(S.SEG_LDTR, S.SEG_LIMIT)];
    } else {
      baseLo = s[S.GDTR_BASE_LO];
      baseHi = s[S.GDTR_BASE_HI];
      limit = s[S.GDTR_LIMIT];
    }
    if (index + 7 > limit >>> 0) return false;
    const lin = this.linAdd(baseLo, baseHi, index);
    const lh = this.linHi;
    this.descAddrLo = lin;
    this.descAddrHi = lh;
    this.descLo = this.readAt(lin, lh, 0, 4);
    this.descHi = this.readAt(lin, lh, 4, 4);
    return true;
  }

  /** The upper half of a 16-byte long-mode system descriptor (after readDescriptor). */
  private readDescriptorUpper(sel: number): boolean {
    const s = this.cpu.s;
    const limit = (sel & 4) !== 0 ? s[S.segWord(S.SEG_LDTR, S.SEG_LIMIT)] : s[S.GDTR_LIMIT];
    if ((sel & 0xfff8) + 15 > limit >>> 0) return false;
    this.descW2 = this.readAt(this.descAddrLo, this.descAddrHi, 8, 4);
    this.descW3 = this.readAt(this.descAddrLo, this.descAddrHi, 12, 4);
    return true;
  }

  /** Sets the accessed bit of the descriptor last read (if clear), as hardware does on a load. */
  private setAccessed(hi: number): void {
    this.setAccessedAt(this.descAddrLo, this.descAddrHi, hi);
  }

  private setAccessedAt(lin: number, lh: number, hi: number): void {
    if ((hi & D_ACCESSED) !== 0) return;
    const l = (lin + 5) | 0;
    this.writeLin(l, this.cpu.lma && l >>> 0 < lin >>> 0 ? (lh + 1) | 0 : lh, 1, ((hi >>> 8) & 0xff) | 1, false);
  }

  /** Loads a segment cache from a descriptor. */
  private loadCache(seg: number, sel: number, lo: number, hi: number, baseHi: number): void {
    const s = this.cpu.s;
    s[S.segWord(seg, S.SEG_SEL)] = sel & 0xffff;
    s[S.segWord(seg, S.SEG_BASE_LO)] = descBase(lo, hi);
    s[S.segWord(seg, S.SEG_BASE_HI)] = baseHi;
    s[S.segWord(seg, S.SEG_LIMIT)] = descLimit(lo, hi);
    s[S.segWord(seg, S.SEG_ATTR)] = descAttr(hi | D_ACCESSED);
    this.cpu.segmentChanged(seg);
  }

  /** Loads a null selector: the cache becomes unusable (base 0, as Intel does for FS/GS too). */
  private loadNull(seg: number, sel: number, dpl: number): void {
    const s = this.cpu.s;
    s[S.segWord(seg, S.SEG_SEL)] = sel & 0xffff;
    s[S.segWord(seg, S.SEG_BASE_LO)] = 0;
    s[S.segWord(seg, S.SEG_BASE_HI)] = 0;
    s[S.segWord(seg, S.SEG_LIMIT)] = 0;
    s[S.segWord(seg, S.SEG_ATTR)] = nullAttr(dpl);
    this.cpu.segmentChanged(seg);
  }

  /** Real and virtual-8086 mode segment load: base = selector << 4. */
  private loadRealSegment(seg: number, sel: number): void {
    const s = this.cpu.s;
    sel &= 0xffff;
    s[S.segWord(seg, S.SEG_SEL)] = sel;
    s[S.segWord(seg, S.SEG_BASE_LO)] = sel << 4;
    s[S.segWord(seg, S.SEG_BASE_HI)] = 0;
    if ((s[S.FLAGS] & S.F_VM) !== 0) {
      s[S.segWord(seg, S.SEG_LIMIT)] = 0xffff;
      s[S.segWord(seg, S.SEG_ATTR)] = ATTR_V86;
    } else {
      // Real mode keeps the cached limit and attributes (so "unreal" mode works).
      s[S.segWord(seg, S.SEG_ATTR)] = (s[S.segWord(seg, S.SEG_ATTR)] & ~S.ATTR_UNUSABLE) | S.ATTR_P;
    }
    this.cpu.segmentChanged(seg);
  }

  /** Null-loads ES/DS/FS/GS that the new (outer) CPL may not use (RET/IRET to an outer level). */
  private dropInaccessibleDataSegments(newCpl: number): void {
    const s = this.cpu.s;
    for (let seg = S.SEG_ES; seg <= S.SEG_GS; seg++) {
      if (seg === S.SEG_CS || seg === S.SEG_SS) continue;
      const attr = s[S.segWord(seg, S.SEG_ATTR)];
      if ((attr & S.ATTR_UNUSABLE) !== 0) continue;
      const dpl = (attr >> S.ATTR_DPL_SHIFT) & 3;
      const conformingCode = (attr & (S.ATTR_CODE | S.ATTR_DC)) === (S.ATTR_CODE | S.ATTR_DC);
      if (!conformingCode && dpl < newCpl) this.loadNull(seg, 0, 0);
    }
  }

  // ================================================================== segment loads

  /**
   * MOV/POP to a segment register (ES, SS, DS, FS, GS) in every mode. MOV/POP SS also opens
   * the one-instruction interrupt shadow.
   */
  loadSegment(seg: number, selector: number): void {
    const cpu = this.cpu;
    const s = cpu.s;
    selector &= 0xffff;
    if ((s[S.CR0] & S.CR0_PE) === 0 || (s[S.FLAGS] & S.F_VM) !== 0) {
      this.loadRealSegment(seg, selector);
    } else {
      const cpl = cpu.cpl;
      const rpl = selector & 3;
      const err = selector & 0xfffc;
      if (err === 0 && (selector & 4) === 0) {
        if (seg === S.SEG_SS && !(cpu.code64 && cpl < 3 && rpl === cpl)) cpu.gp(0);
        this.loadNull(seg, selector, seg === S.SEG_SS ? cpl : 0);
      } else {
        if (!this.readDescriptor(selector)) cpu.gp(err);
        const hi = this.descHi;
        const dpl = descDpl(hi);
        if (seg === S.SEG_SS) {
          if (rpl !== cpl || dpl !== cpl || !isData(hi) || !isRw(hi)) cpu.gp(err);
          if (!isPresent(hi)) cpu.fault(S.VEC_SS, err, true);
        } else {
          if (!isData(hi) && !(isCode(hi) && isRw(hi))) cpu.gp(err);
          if (!isConforming(hi) && (rpl > dpl || cpl > dpl)) cpu.gp(err);
          if (!isPresent(hi)) cpu.fault(S.VEC_NP, err, true);
        }
        this.setAccessed(hi);
        this.loadCache(seg, selector, this.descLo, hi, 0);
      }
    }
    if (seg === S.SEG_SS) {
      s[S.INTR_SHADOW] = SHADOW_MOV_SS;
      cpu.eventCheck = true;
    }
  }

  // ================================================================== far transfers

  /**
   * JMP ptr16:16/32 and JMP m16:16/32/64. Sets CS and RIP. nextLo: the EIP of the next
   * instruction, which a task switch (JMP to a TSS or task gate) saves in the old TSS; without
   * it such a jump raises #GP(selector).
   */
  farJump(selector: number, offLo: number, offHi: number, osize: number, nextLo?: number): void {
    const cpu = this.cpu;
    const s = cpu.s;
    selector &= 0xffff;
    if (osize !== 8) offHi = 0;
    if (osize === 2) offLo &= 0xffff;
    if ((s[S.CR0] & S.CR0_PE) === 0 || (s[S.FLAGS] & S.F_VM) !== 0) {
      if (offLo >>> 0 > s[S.segWord(S.SEG_CS, S.SEG_LIMIT)] >>> 0) cpu.gp(0);
      this.loadRealSegment(S.SEG_CS, selector);
      cpu.setRip(offLo, 0);
      return;
    }
    this.ext = 0;
    const cpl = cpu.cpl;
    const err = selector & 0xfffc;
    if (err === 0 && (selector & 4) === 0) cpu.gp(0);
    if (!this.readDescriptor(selector)) cpu.gp(err);
    const lo = this.descLo;
    const hi = this.descHi;
    if (isCode(hi)) {
      this.checkDirectCode(selector, hi);
      this.checkTargetOffset(lo, hi, offLo, offHi);
      this.setAccessed(hi);
      this.loadCache(S.SEG_CS, (selector & 0xfffc) | cpl, lo, hi, 0);
      cpu.setRip(offLo, offHi);
      cpu.updateMode();
      return;
    }
    if (this.isTaskTarget(hi)) {
      if (nextLo === undefined) {
        cpu.gp(err);
        return;
      }
      this.farTaskSwitch(selector, TASK_JMP, nextLo);
      return;
    }
    this.readCallGate(selector);
    if (descDpl(this.descHi) !== cpl) cpu.gp(this.gateTargetSel & 0xfffc); // JMP never changes privilege
    const tLo = this.descLo;
    const tHi = this.descHi;
    this.checkTargetOffset(tLo, tHi, this.gateOffLo, this.gateOffHi);
    this.setAccessed(tHi);
    this.loadCache(S.SEG_CS, (this.gateTargetSel & 0xfffc) | cpl, tLo, tHi, 0);
    cpu.setRip(this.gateOffLo, this.gateOffHi);
    cpu.updateMode();
  }

  /**
   * CALL ptr16:16/32 and CALL m16:16/32/64, including call gates (16/32/64-bit, with a stack
   * switch and parameter copy for an inner privilege). ret: the next instruction's address.
   */
  farCall(selector: number, offLo: number, offHi: number, osize: number, retLo: number, retHi: number): void {
    const cpu = this.cpu;
    const s = cpu.s;
    selector &= 0xffff;
    if (osize !== 8) {
      offHi = 0;
      retHi = 0;
    }
    if (osize === 2) {
      offLo &= 0xffff;
      retLo &= 0xffff;
    }
    const oldCs = s[S.segWord(S.SEG_CS, S.SEG_SEL)];
    if ((s[S.CR0] & S.CR0_PE) === 0 || (s[S.FLAGS] & S.F_VM) !== 0) {
      if (offLo >>> 0 > s[S.segWord(S.SEG_CS, S.SEG_LIMIT)] >>> 0) cpu.gp(0);
      this.frameN = 0;
      this.frameItem(oldCs, 0);
      this.frameItem(retLo, 0);
      this.pushOnCurrentStack(osize, cpu.cpl === 3, 0);
      this.setStackPointer(cpu.ssB ? 32 : 16);
      this.loadRealSegment(S.SEG_CS, selector);
      cpu.setRip(offLo, 0);
      return;
    }
    this.ext = 0;
    const cpl = cpu.cpl;
    const err = selector & 0xfffc;
    if (err === 0 && (selector & 4) === 0) cpu.gp(0);
    if (!this.readDescriptor(selector)) cpu.gp(err);
    const lo = this.descLo;
    const hi = this.descHi;
    if (isCode(hi)) {
      this.checkDirectCode(selector, hi);
      this.checkTargetOffset(lo, hi, offLo, offHi);
      this.frameN = 0;
      this.frameItem(oldCs, 0);
      this.frameItem(retLo, retHi);
      this.pushOnCurrentStack(osize, cpl === 3, 0);
      this.setAccessed(hi);
      this.setStackPointer(cpu.code64 ? 64 : cpu.ssB ? 32 : 16);
      this.loadCache(S.SEG_CS, (selector & 0xfffc) | cpl, lo, hi, 0);
      cpu.setRip(offLo, offHi);
      cpu.updateMode();
      return;
    }
    if (this.isTaskTarget(hi)) {
      this.farTaskSwitch(selector, TASK_CALL, retLo);
      return;
    }
    this.readCallGate(selector);
    const tSel = this.gateTargetSel;
    const tLo = this.descLo;
    const tHi = this.descHi;
    const dpl = descDpl(tHi);
    const gateSize = this.gateSize;
    const mask = gateSize === 2 ? 0xffff : -1;
    const tOffLo = this.gateOffLo;
    const tOffHi = this.gateOffHi;
    this.checkTargetOffset(tLo, tHi, tOffLo, tOffHi);
    if (!isConforming(tHi) && dpl < cpl) {
      // Inner privilege: new stack from the TSS, old SS:ESP (and parameters) copied there.
      this.frameN = 0;
      if (cpu.lma) {
        this.tss64Slot(4 + dpl * 8, 0);
        if (!isCanonical(this.tssSpHi)) cpu.fault(S.VEC_SS, 0, true);
        this.frameItem(s[S.segWord(S.SEG_SS, S.SEG_SEL)], 0);
        this.frameItem(s[S.REG_ESP * 2], s[S.REG_ESP * 2 + 1]);
        this.frameItem(oldCs, 0);
        this.frameItem(retLo, cpu.code64 ? retHi : 0);
        this.pushFrame(8, this.tssSpLo, this.tssSpHi, 64, 0, 0, 0, false, 0);
        this.setAccessed(tHi);
        s[S.CPL] = dpl;
        this.loadNull(S.SEG_SS, dpl, dpl);
        s[S.REG_ESP * 2] = this.newSpLo;
        s[S.REG_ESP * 2 + 1] = this.newSpHi;
      } else {
        this.tssStack(dpl);
        const newSs = this.tssSs;
        const newSp = this.tssSpLo;
        this.checkNewStack(newSs, dpl, 0);
        const params = this.gateParams;
        this.frameItem(s[S.segWord(S.SEG_SS, S.SEG_SEL)], 0);
        this.frameItem(s[S.REG_ESP * 2] & mask, 0);
        for (let i = params - 1; i >= 0; i--) this.frameItem(this.stackRead(i * gateSize, gateSize), 0);
        this.frameItem(oldCs, 0);
        this.frameItem(retLo & mask, 0);
        const ssAttr = descAttr(this.ssHi);
        const width = (ssAttr & S.ATTR_DB) !== 0 ? 32 : 16;
        this.pushFrame(gateSize, newSp, 0, width, descBase(this.ssLo, this.ssHi), ssAttr, descLimit(this.ssLo, this.ssHi), false, newSs & 0xfffc);
        this.setAccessed(tHi);
        this.setAccessedAt(this.ssAddrLo, this.ssAddrHi, this.ssHi);
        s[S.CPL] = dpl;
        this.loadCache(S.SEG_SS, newSs, this.ssLo, this.ssHi, 0);
        this.setStackPointerTo(width, newSp);
      }
      this.loadCache(S.SEG_CS, (tSel & 0xfffc) | dpl, tLo, tHi, 0);
    } else {
      this.frameN = 0;
      this.frameItem(oldCs, 0);
      this.frameItem(retLo & mask, gateSize === 8 && cpu.code64 ? retHi : 0);
      this.pushOnCurrentStack(gateSize, cpl === 3, 0);
      this.setAccessed(tHi);
      this.setStackPointer(cpu.code64 ? 64 : cpu.ssB ? 32 : 16);
      this.loadCache(S.SEG_CS, (tSel & 0xfffc) | cpl, tLo, tHi, 0);
    }
    cpu.setRip(tOffLo, tOffHi);
    cpu.updateMode();
  }

  /** Privilege and presence rules for a direct far JMP/CALL to a code segment. */
  private checkDirectCode(selector: number, hi: number): void {
    const cpu = this.cpu;
    const err = selector & 0xfffc;
    const dpl = descDpl(hi);
    if (isConforming(hi)) {
      if (dpl > cpu.cpl) cpu.gp(err);
    } else if ((selector & 3) > cpu.cpl || dpl !== cpu.cpl) cpu.gp(err);
    if (!isPresent(hi)) cpu.fault(S.VEC_NP, err, true);
    if (cpu.lma && (hi & D_L) !== 0 && (hi & D_DB) !== 0) cpu.gp(err);
  }

  /** The new RIP must be canonical (64-bit target) or within the target's limit: #GP(0). */
  private checkTargetOffset(lo: number, hi: number, offLo: number, offHi: number): void {
    const cpu = this.cpu;
    if (cpu.lma && (hi & D_L) !== 0) {
      if (!isCanonical(offHi)) cpu.gp(0);
    } else if (offHi !== 0 || offLo >>> 0 > descLimit(lo, hi) >>> 0) cpu.gp(0);
  }

  // Results of readCallGate.
  private gateTargetSel = 0;
  private gateOffLo = 0;
  private gateOffHi = 0;
  private gateSize = 4;
  private gateParams = 0;

  /**
   * The descriptor just read (descLo/descHi) is a system descriptor named by a far JMP/CALL:
   * accept only a call gate (16/32-bit in legacy mode, 64-bit in long mode), check it and its
   * target code segment; leaves the target's descriptor in descLo/descHi. (TSS descriptors and
   * task gates never get here: farJump/farCall hand them to the task switch first.)
   */
  private readCallGate(selector: number): void {
    const cpu = this.cpu;
    const err = selector & 0xfffc;
    const lo = this.descLo;
    const hi = this.descHi;
    const type = descType(hi);
    const legacyGate = !cpu.lma && (type === SYS_CALL_GATE16 || type === SYS_CALL_GATE32);
    const longGate = cpu.lma && type === SYS_CALL_GATE32;
    if (!legacyGate && !longGate) cpu.gp(err);
    if (longGate) {
      if (!this.readDescriptorUpper(selector)) cpu.gp(err);
      if (descType(this.descW3) !== 0) cpu.gp(err);
    }
    const gateDpl = descDpl(hi);
    if (gateDpl < cpu.cpl || (selector & 3) > gateDpl) cpu.gp(err);
    if (!isPresent(hi)) cpu.fault(S.VEC_NP, err, true);
    this.gateTargetSel = lo >>> 16;
    this.gateSize = longGate ? 8 : type === SYS_CALL_GATE16 ? 2 : 4;
    this.gateOffLo = this.gateSize === 2 ? lo & 0xffff : (lo & 0xffff) | (hi & 0xffff0000);
    this.gateOffHi = longGate ? this.descW2 : 0;
    this.gateParams = longGate ? 0 : hi & 0x1f;
    const tSel = this.gateTargetSel;
    if ((tSel & 0xfffc) === 0 && (tSel & 4) === 0) cpu.gp(0);
    const tErr = tSel & 0xfffc;
    if (!this.readDescriptor(tSel)) cpu.gp(tErr);
    const tHi = this.descHi;
    if (!isCode(tHi) || descDpl(tHi) > cpu.cpl) cpu.gp(tErr);
    if (longGate && ((tHi & D_L) === 0 || (tHi & D_DB) !== 0)) cpu.gp(tErr);
    if (!isPresent(tHi)) cpu.fault(S.VEC_NP, tErr, true);
  }

  /** RETF [imm16]: same privilege, or to an outer privilege (SS:ESP popped too). */
  farReturn(osize: number, popBytes: number): void {
    const cpu = this.cpu;
    const s = cpu.s;
    const ripLo = this.stackRead(0, osize);
    const ripHi = osize === 8 ? cpu.hi : 0;
    const csSel = this.stackRead(osize, osize) & 0xffff;
    const eip = osize === 2 ? ripLo & 0xffff : ripLo;
    if ((s[S.CR0] & S.CR0_PE) === 0 || (s[S.FLAGS] & S.F_VM) !== 0) {
      if (eip >>> 0 > s[S.segWord(S.SEG_CS, S.SEG_LIMIT)] >>> 0) cpu.gp(0);
      this.adjustStackPointer(2 * osize + popBytes);
      this.loadRealSegment(S.SEG_CS, csSel);
      cpu.setRip(eip, 0);
      return;
    }
    this.ext = 0;
    const cpl = cpu.cpl;
    const rpl = csSel & 3;
    this.checkReturnCode(csSel);
    const lo = this.descLo;
    const hi = this.descHi;
    this.checkTargetOffset(lo, hi, eip, ripHi);
    const to64 = cpu.lma && (hi & D_L) !== 0;
    if (rpl > cpl) {
      const at = 2 * osize + popBytes;
      const spLo = this.stackRead(at, osize);
      const spHi = osize === 8 ? cpu.hi : 0;
      const ssSel = this.stackRead(at + osize, osize) & 0xffff;
      const nullSs = this.checkReturnStack(ssSel, rpl, to64);
      const ssLo = this.descLo;
      const ssHi = this.descHi;
      const ssAddrLo = this.descAddrLo;
      const ssAddrHi = this.descAddrHi;
      this.readDescriptor(csSel); // re-read for the accessed bit's address
      this.setAccessed(hi);
      if (!nullSs) this.setAccessedAt(ssAddrLo, ssAddrHi, ssHi);
      s[S.CPL] = rpl;
      this.loadCache(S.SEG_CS, csSel, lo, hi, 0);
      if (nullSs) this.loadNull(S.SEG_SS, ssSel, rpl);
      else this.loadCache(S.SEG_SS, ssSel, ssLo, ssHi, 0);
      s[S.REG_ESP * 2] = osize === 2 ? spLo & 0xffff : spLo;
      s[S.REG_ESP * 2 + 1] = to64 ? spHi : 0;
      cpu.updateMode();
      this.adjustStackPointer(popBytes);
      this.dropInaccessibleDataSegments(rpl);
    } else {
      this.setAccessed(hi);
      this.adjustStackPointer(2 * osize + popBytes);
      this.loadCache(S.SEG_CS, csSel, lo, hi, 0);
    }
    cpu.setRip(eip, to64 ? ripHi : 0);
    cpu.updateMode();
  }

  /** The checks on the CS selector popped by RETF/IRET (protected mode). */
  private checkReturnCode(csSel: number): void {
    const cpu = this.cpu;
    const err = csSel & 0xfffc;
    if (err === 0 && (csSel & 4) === 0) cpu.gp(0);
    if (!this.readDescriptor(csSel)) cpu.gp(err);
    const hi = this.descHi;
    const rpl = csSel & 3;
    if (!isCode(hi) || rpl < cpu.cpl) cpu.gp(err);
    const dpl = descDpl(hi);
    if (isConforming(hi) ? dpl > rpl : dpl !== rpl) cpu.gp(err);
    if (!isPresent(hi)) cpu.fault(S.VEC_NP, err, true);
    if (cpu.lma && (hi & D_L) !== 0 && (hi & D_DB) !== 0) cpu.gp(err);
  }

  /**
   * The checks on the SS selector popped by RETF/IRET to an outer privilege (or by IRET in
   * 64-bit mode). Returns true for a null SS (allowed only when returning to 64-bit code at
   * CPL < 3); otherwise the descriptor is left in descLo/descHi.
   */
  private checkReturnStack(ssSel: number, rpl: number, to64: boolean): boolean {
    const cpu = this.cpu;
    const err = ssSel & 0xfffc;
    if (err === 0 && (ssSel & 4) === 0) {
      if (to64 && rpl < 3) return true;
      cpu.gp(0);
    }
    if (!this.readDescriptor(ssSel)) cpu.gp(err);
    const hi = this.descHi;
    if ((ssSel & 3) !== rpl || descDpl(hi) !== rpl || !isData(hi) || !isRw(hi)) cpu.gp(err);
    if (!isPresent(hi)) cpu.fault(S.VEC_SS, err, true);
    return false;
  }

  /**
   * IRET/IRETD/IRETQ: real mode, virtual-8086 (IOPL 3 only), protected mode to the same or an
   * outer privilege, to virtual-8086 mode (from CPL 0), long mode (IRETQ always pops SS:RSP in
   * 64-bit mode). NT=1 outside long mode is a task return to the TSS's back link; nextLo is
   * the EIP of the next instruction (saved in the old TSS); without it a task return raises
   * #GP(0). In long mode NT=1 is #GP(0).
   */
  iret(osize: number, nextLo?: number): void {
    const cpu = this.cpu;
    const s = cpu.s;
    const pe = (s[S.CR0] & S.CR0_PE) !== 0;
    const vm = (s[S.FLAGS] & S.F_VM) !== 0;
    if (vm && (s[S.FLAGS] & S.F_IOPL) !== S.F_IOPL) cpu.gp(0);
    if (pe && !vm && (s[S.FLAGS] & S.F_NT) !== 0) {
      if (cpu.lma || nextLo === undefined) {
        cpu.gp(0);
        return;
      }
      this.ext = 0;
      const link = this.readLin(s[S.segWord(S.SEG_TR, S.SEG_BASE_LO)], 0, 2, false);
      this.taskSwitch(link, TASK_IRET, nextLo, 0, false, 0);
      return;
    }
    const ripLo = this.stackRead(0, osize);
    const ripHi = osize === 8 ? cpu.hi : 0;
    const csSel = this.stackRead(osize, osize) & 0xffff;
    const flags = this.stackRead(2 * osize, osize);
    const eip = osize === 2 ? ripLo & 0xffff : ripLo;
    if (!pe || vm) {
      if (eip >>> 0 > s[S.segWord(S.SEG_CS, S.SEG_LIMIT)] >>> 0) cpu.gp(0);
      this.adjustStackPointer(3 * osize);
      this.loadRealSegment(S.SEG_CS, csSel);
      cpu.setRip(eip, 0);
      this.applyFlags(flags, osize, true);
      return;
    }
    const cpl = cpu.cpl;
    if (!cpu.lma && (flags & S.F_VM) !== 0 && cpl === 0 && osize === 4) {
      this.iretToV86(eip, csSel, flags);
      return;
    }
    this.ext = 0;
    const rpl = csSel & 3;
    this.checkReturnCode(csSel);
    const lo = this.descLo;
    const hi = this.descHi;
    const csAddrLo = this.descAddrLo;
    const csAddrHi = this.descAddrHi;
    this.checkTargetOffset(lo, hi, eip, ripHi);
    const to64 = cpu.lma && (hi & D_L) !== 0;
    const popSs = rpl > cpl || cpu.code64;
    let spLo = 0;
    let spHi = 0;
    let ssSel = 0;
    let nullSs = false;
    let ssLo = 0;
    let ssHi = 0;
    let ssAddrLo = 0;
    let ssAddrHi = 0;
    if (popSs) {
      spLo = this.stackRead(3 * osize, osize);
      spHi = osize === 8 ? cpu.hi : 0;
      ssSel = this.stackRead(4 * osize, osize) & 0xffff;
      nullSs = this.checkReturnStack(ssSel, rpl, to64);
      ssLo = this.descLo;
      ssHi = this.descHi;
      ssAddrLo = this.descAddrLo;
      ssAddrHi = this.descAddrHi;
    }
    this.setAccessedAt(csAddrLo, csAddrHi, hi);
    if (popSs && !nullSs) this.setAccessedAt(ssAddrLo, ssAddrHi, ssHi);
    // Commit: flags at the old CPL's rules, then CS (new CPL), then the stack.
    this.applyFlags(flags, osize, true);
    s[S.CPL] = rpl;
    this.loadCache(S.SEG_CS, csSel, lo, hi, 0);
    if (popSs) {
      if (nullSs) this.loadNull(S.SEG_SS, ssSel, rpl);
      else this.loadCache(S.SEG_SS, ssSel, ssLo, ssHi, 0);
      s[S.REG_ESP * 2] = osize === 2 ? spLo & 0xffff : spLo;
      s[S.REG_ESP * 2 + 1] = to64 ? spHi : 0;
    } else this.adjustStackPointer(3 * osize);
    cpu.setRip(eip, to64 ? ripHi : 0);
    if (rpl > cpl) this.dropInaccessibleDataSegments(rpl);
    cpu.updateMode();
    cpu.eventCheck = true;
  }

  /** IRETD at CPL 0 with VM set in the popped EFLAGS: enter virtual-8086 mode. */
  private iretToV86(eip: number, csSel: number, flags: number): void {
    const cpu = this.cpu;
    const s = cpu.s;
    const esp = this.stackRead(12, 4);
    const ss = this.stackRead(16, 4) & 0xffff;
    const es = this.stackRead(20, 4) & 0xffff;
    const ds = this.stackRead(24, 4) & 0xffff;
    const fs = this.stackRead(28, 4) & 0xffff;
    const gs = this.stackRead(32, 4) & 0xffff;
    cpu.setEflags(flags & 0x003f7fd7); // every flag, VM included (RF kept, reserved bits clear)
    s[S.CPL] = 3;
    this.loadRealSegment(S.SEG_CS, csSel);
    this.loadRealSegment(S.SEG_SS, ss);
    this.loadRealSegment(S.SEG_ES, es);
    this.loadRealSegment(S.SEG_DS, ds);
    this.loadRealSegment(S.SEG_FS, fs);
    this.loadRealSegment(S.SEG_GS, gs);
    s[S.REG_ESP * 2] = esp;
    s[S.REG_ESP * 2 + 1] = 0;
    cpu.setRip(eip & 0xffff, 0);
    cpu.updateMode();
    cpu.eventCheck = true;
  }

  // ================================================================== hardware task switching

  /** A far JMP/CALL names a TSS or a task gate (legacy protected mode only). */
  private isTaskTarget(hi: number): boolean {
    if (this.cpu.lma || (hi & (1 << 12)) !== 0) return false;
    const type = descType(hi);
    return type === SYS_TASK_GATE || type === SYS_TSS16_AVAIL || type === SYS_TSS32_AVAIL || type === SYS_TSS16_BUSY || type === SYS_TSS32_BUSY;
  }

  /** JMP/CALL to a TSS descriptor or through a task gate (descriptor in descLo/descHi). */
  private farTaskSwitch(selector: number, reason: number, nextEip: number): void {
    const cpu = this.cpu;
    const err = selector & 0xfffc;
    const hi = this.descHi;
    const dpl = descDpl(hi);
    if (dpl < cpu.cpl || dpl < (selector & 3)) cpu.gp(err);
    if (!isPresent(hi)) cpu.fault(S.VEC_NP, err, true);
    const tss = descType(hi) === SYS_TASK_GATE ? this.descLo >>> 16 : selector;
    this.ext = 0;
    this.taskSwitch(tss, reason, nextEip, 0, false, 0);
  }

  /**
   * A hardware task switch (SDM vol. 3 §7.3) to the TSS named by `sel`. Everything that can
   * fault in the old task's context (the new TSS descriptor, its contents, the pages of both
   * TSSs) is checked first. Past the commit point, faults belong to the new task (§7.3 step 13):
   * they are delivered right here, so this never throws after changing state.
   */
  private taskSwitch(sel: number, reason: number, nextEip: number, errorCode: number, hasErrorCode: boolean, ext: number): void {
    const cpu = this.cpu;
    const s = cpu.s;
    const selErr = (sel & 0xfffc) | ext;
    const badSelector = reason === TASK_IRET ? S.VEC_TS : S.VEC_GP;
    if ((sel & 4) !== 0 || (sel & 0xfffc) === 0 || !this.readDescriptor(sel)) cpu.fault(badSelector, selErr, true);
    const lo = this.descLo;
    const hi = this.descHi;
    const newDescLo = this.descAddrLo;
    const type = descType(hi);
    if (reason === TASK_IRET) {
      if (type !== SYS_TSS16_BUSY && type !== SYS_TSS32_BUSY) cpu.fault(S.VEC_TS, selErr, true);
    } else if (type !== SYS_TSS16_AVAIL && type !== SYS_TSS32_AVAIL) cpu.gp(selErr);
    if (!isPresent(hi)) cpu.fault(S.VEC_NP, selErr, true);
    const new32 = (type & 8) !== 0;
    const newBase = descBase(lo, hi);
    if (descLimit(lo, hi) >>> 0 < (new32 ? 0x67 : 0x2b)) cpu.fault(S.VEC_TS, selErr, true);
    const oldSel = s[S.segWord(S.SEG_TR, S.SEG_SEL)] & 0xffff;
    const oldBase = s[S.segWord(S.SEG_TR, S.SEG_BASE_LO)];
    const old32 = (s[S.segWord(S.SEG_TR, S.SEG_ATTR)] & 8) !== 0;
    if (s[S.segWord(S.SEG_TR, S.SEG_LIMIT)] >>> 0 < (old32 ? 0x67 : 0x2b)) cpu.fault(S.VEC_TS, (oldSel & 0xfffc) | ext, true);

    // The new task's state (reads may #PF; nothing has changed yet).
    const st = this.taskState;
    const rd = (off: number, size: number) => this.readLin((newBase + off) | 0, 0, size, false);
    if (new32) {
      st[0] = rd(0x1c, 4); // CR3
      st[1] = rd(0x20, 4); // EIP
      st[2] = rd(0x24, 4); // EFLAGS
      for (let r = 0; r < 8; r++) st[3 + r] = rd(0x28 + 4 * r, 4);
      for (let k = 0; k < 6; k++) st[11 + k] = rd(0x48 + 4 * k, 2); // ES CS SS DS FS GS
      st[17] = rd(0x60, 2); // LDT
    } else {
      st[1] = rd(0x0e, 2);
      st[2] = (cpu.getEflags() & ~0xffff) | rd(0x10, 2);
      for (let r = 0; r < 8; r++) st[3 + r] = (s[r * 2] & ~0xffff) | rd(0x12 + 2 * r, 2);
      for (let k = 0; k < 4; k++) st[11 + k] = rd(0x22 + 2 * k, 2); // ES CS SS DS
      st[15] = s[S.segWord(S.SEG_FS, S.SEG_SEL)];
      st[16] = s[S.segWord(S.SEG_GS, S.SEG_SEL)];
      st[17] = rd(0x2a, 2);
    }
    // Every page the commit writes must be writable now.
    const saveFirst = old32 ? 0x20 : 0x0e;
    const saveLast = old32 ? 0x5f : 0x29;
    cpu.translateAs((oldBase + saveFirst) | 0, 0, 1, false, false);
    cpu.translateAs((oldBase + saveLast) | 0, 0, 1, false, false);
    if (reason === TASK_CALL || reason === TASK_INT) cpu.translateAs(newBase, 0, 1, false, false);
    cpu.translateAs((newDescLo + 5) | 0, 0, 1, false, false);

    // ---- commit: from here on, faults belong to the new task.
    let eflags = cpu.getEflags();
    if (reason === TASK_JMP || reason === TASK_IRET) {
      if (this.readDescriptor(oldSel)) this.writeLin((this.descAddrLo + 5) | 0, 0, 1, (this.descHi >>> 8) & 0xfd, false);
      if (reason === TASK_IRET) eflags &= ~S.F_NT;
    }
    const wr = (off: number, size: number, v: number) => this.writeLin((oldBase + off) | 0, 0, size, v, false);
    if (old32) {
      wr(0x20, 4, nextEip);
      wr(0x24, 4, eflags);
      for (let r = 0; r < 8; r++) wr(0x28 + 4 * r, 4, s[r * 2]);
      for (let k = 0; k < 6; k++) wr(0x48 + 4 * k, 2, s[S.segWord(k, S.SEG_SEL)]);
    } else {
      wr(0x0e, 2, nextEip);
      wr(0x10, 2, eflags);
      for (let r = 0; r < 8; r++) wr(0x12 + 2 * r, 2, s[r * 2]);
      for (let k = 0; k < 4; k++) wr(0x22 + 2 * k, 2, s[S.segWord(k, S.SEG_SEL)]);
    }
    let newFlags = st[2];
    if (reason === TASK_CALL || reason === TASK_INT) {
      newFlags |= S.F_NT;
      this.writeLin(newBase, 0, 2, oldSel, false);
    }
    const busyHi = hi | (2 << 8);
    if (reason !== TASK_IRET) this.writeLin((newDescLo + 5) | 0, 0, 1, (busyHi >>> 8) & 0xff, false);
    s[S.segWord(S.SEG_TR, S.SEG_SEL)] = sel & 0xffff;
    s[S.segWord(S.SEG_TR, S.SEG_BASE_LO)] = newBase;
    s[S.segWord(S.SEG_TR, S.SEG_BASE_HI)] = 0;
    s[S.segWord(S.SEG_TR, S.SEG_LIMIT)] = descLimit(lo, hi);
    s[S.segWord(S.SEG_TR, S.SEG_ATTR)] = descAttr(busyHi);
    cpu.segmentChanged(S.SEG_TR);
    s[S.CR0] |= S.CR0_TS;
    if (new32 && (s[S.CR0] & S.CR0_PG) !== 0 && s[S.CR3_LO] !== st[0]) {
      s[S.CR3_LO] = st[0];
      cpu.flushTlb(true);
    }
    for (let r = 0; r < 8; r++) {
      s[r * 2] = st[3 + r];
      s[r * 2 + 1] = 0;
    }
    const vm = new32 && (newFlags & S.F_VM) !== 0;
    cpu.setEflags(new32 ? newFlags : (newFlags & 0xffff) | (eflags & ~0xffff & ~S.F_NT) | (newFlags & S.F_NT));
    cpu.setRip(new32 ? st[1] : st[1] & 0xffff, 0);
    const cpl = vm ? 3 : st[12] & 3;
    s[S.CPL] = cpl;
    // Selectors first (so a fault below leaves them visible), then the qualified caches.
    for (let k = 0; k < 6; k++) s[S.segWord(k, S.SEG_SEL)] = st[11 + k];
    try {
      this.loadTaskLdt(st[17], ext);
      if (vm) {
        for (let k = 0; k < 6; k++) this.loadRealSegment(k, st[11 + k]);
      } else {
        this.loadTaskSegment(S.SEG_CS, st[12], cpl, ext);
        this.loadTaskSegment(S.SEG_SS, st[13], cpl, ext);
        this.loadTaskSegment(S.SEG_DS, st[14], cpl, ext);
        this.loadTaskSegment(S.SEG_ES, st[11], cpl, ext);
        this.loadTaskSegment(S.SEG_FS, st[15], cpl, ext);
        this.loadTaskSegment(S.SEG_GS, st[16], cpl, ext);
      }
      cpu.updateMode();
      if (hasErrorCode) {
        this.frameN = 0;
        this.frameItem(errorCode, 0);
        this.pushOnCurrentStack(new32 ? 4 : 2, cpl === 3, ext);
        this.setStackPointer(cpu.ssB ? 32 : 16);
      }
    } catch (e) {
      if (e !== GUEST_FAULT || cpu.pendingVector < 0) throw e;
      const v = cpu.pendingVector;
      cpu.pendingVector = -1;
      cpu.updateMode();
      this.deliverEvent(v, EV_HW_EXCEPTION, cpu.pendingError, cpu.pendingHasError);
    }
    cpu.updateMode();
    cpu.eventCheck = true;
  }

  /** The new task's registers, read before the commit (CR3, EIP, EFLAGS, 8 GPRs, 6 selectors, LDT). */
  private readonly taskState = new Int32Array(18);

  /** Loads LDTR for a task switch: null is allowed; otherwise an LDT in the GDT (#TS(sel)). */
  private loadTaskLdt(sel: number, ext: number): void {
    const cpu = this.cpu;
    const err = (sel & 0xfffc) | ext;
    if ((sel & 0xfffc) === 0) {
      this.loadNull(S.SEG_LDTR, sel, 0);
      return;
    }
    if ((sel & 4) !== 0 || !this.readDescriptor(sel)) cpu.fault(S.VEC_TS, err, true);
    const hi = this.descHi;
    if (descType(hi) !== SYS_LDT || !isPresent(hi)) cpu.fault(S.VEC_TS, err, true);
    this.loadCache(S.SEG_LDTR, sel, this.descLo, hi, 0);
    cpu.s[S.segWord(S.SEG_LDTR, S.SEG_ATTR)] = descAttr(hi);
  }

  /** Qualifies a segment register of the new task: #TS(sel) for a bad descriptor, #NP/#SS(sel) if not present. */
  private loadTaskSegment(seg: number, sel: number, cpl: number, ext: number): void {
    const cpu = this.cpu;
    const err = (sel & 0xfffc) | ext;
    const isNull = (sel & 0xfffc) === 0 && (sel & 4) === 0;
    if (isNull) {
      if (seg === S.SEG_CS || seg === S.SEG_SS) cpu.fault(S.VEC_TS, err, true);
      this.loadNull(seg, sel, 0);
      return;
    }
    if (!this.readDescriptor(sel)) cpu.fault(S.VEC_TS, err, true);
    const hi = this.descHi;
    const dpl = descDpl(hi);
    const rpl = sel & 3;
    if (seg === S.SEG_CS) {
      if (!isCode(hi) || (isConforming(hi) ? dpl > rpl : dpl !== rpl)) cpu.fault(S.VEC_TS, err, true);
      if (!isPresent(hi)) cpu.fault(S.VEC_NP, err, true);
    } else if (seg === S.SEG_SS) {
      if (rpl !== cpl || dpl !== cpl || !isData(hi) || !isRw(hi)) cpu.fault(S.VEC_TS, err, true);
      if (!isPresent(hi)) cpu.fault(S.VEC_SS, err, true);
    } else {
      if (!isData(hi) && !(isCode(hi) && isRw(hi))) cpu.fault(S.VEC_TS, err, true);
      if (!isConforming(hi) && (dpl < cpl || dpl < rpl)) cpu.fault(S.VEC_TS, err, true);
      if (!isPresent(hi)) cpu.fault(S.VEC_NP, err, true);
    }
    this.setAccessed(hi);
    this.loadCache(seg, sel, this.descLo, hi, 0);
  }

  // ================================================================== EFLAGS

  /** POPF: the flag rules by privilege (IOPL only at CPL 0, IF only when CPL <= IOPL). */
  writeEflagsFromPopf(value: number, osize: number): void {
    const s = this.cpu.s;
    if ((s[S.FLAGS] & S.F_VM) !== 0 && (s[S.FLAGS] & S.F_IOPL) !== S.F_IOPL) this.cpu.gp(0);
    this.applyFlags(value, osize, false);
  }

  /**
   * Writes EFLAGS from a POPF/IRET image with the rules of the current privilege. VM is never
   * changed here (IRET to v86 is iretToV86); RF, VIF, VIP only by IRET.
   */
  private applyFlags(value: number, osize: number, iret: boolean): void {
    const cpu = this.cpu;
    const s = cpu.s;
    const pe = (s[S.CR0] & S.CR0_PE) !== 0;
    const vm = (s[S.FLAGS] & S.F_VM) !== 0;
    const cpl = cpu.cpl;
    const iopl = (s[S.FLAGS] >>> 12) & 3;
    let mask = FLAGS_ALWAYS;
    if (osize >= 4) mask |= S.F_AC | S.F_ID | (iret ? S.F_RF : 0);
    if (cpl <= iopl) mask |= S.F_IF;
    if (cpl === 0 && !vm) {
      mask |= S.F_IOPL;
      if (iret && pe && osize >= 4) mask |= S.F_VIF | S.F_VIP;
    }
    if (osize === 2) mask &= 0xffff;
    const old = cpu.getEflags();
    cpu.setEflags((old & ~mask) | (value & mask));
  }

  // ================================================================== I/O permission

  /** IN/OUT/INS/OUTS: when CPL > IOPL (or in virtual-8086 mode), the TSS I/O bitmap decides. */
  checkIoPermission(port: number, size: number): void {
    const cpu = this.cpu;
    const s = cpu.s;
    if ((s[S.CR0] & S.CR0_PE) === 0) return;
    const vm = (s[S.FLAGS] & S.F_VM) !== 0;
    if (!vm && cpu.cpl <= ((s[S.FLAGS] >>> 12) & 3)) return;
    const trType = s[S.segWord(S.SEG_TR, S.SEG_ATTR)] & 0xf;
    if (trType !== SYS_TSS32_BUSY && trType !== SYS_TSS32_AVAIL) cpu.gp(0);
    const limit = s[S.segWord(S.SEG_TR, S.SEG_LIMIT)] >>> 0;
    if (limit < 103) cpu.gp(0);
    const baseLo = s[S.segWord(S.SEG_TR, S.SEG_BASE_LO)];
    const baseHi = s[S.segWord(S.SEG_TR, S.SEG_BASE_HI)];
    const tssLin = this.linAdd(baseLo, baseHi, 0);
    const tssHi = this.linHi;
    const bitmap = this.readAt(tssLin, tssHi, 102, 2);
    const at = bitmap + ((port & 0xffff) >>> 3);
    if (at + 1 > limit) cpu.gp(0);
    const bits = this.readAt(tssLin, tssHi, at, 2);
    const want = ((1 << size) - 1) << (port & 7);
    if ((bits & want) !== 0) cpu.gp(0);
  }

  // ================================================================== control and debug registers

  /** MOV CRn, reg. lo/hi: the value (hi only in 64-bit mode). */
  writeCr(n: number, lo: number, hi: number): void {
    const cpu = this.cpu;
    const s = cpu.s;
    switch (n) {
      case 0: {
        if (hi !== 0 || (lo & ~CR0_WRITABLE) !== 0) cpu.gp(0);
        const v = lo | S.CR0_ET;
        if ((v & S.CR0_PG) !== 0 && (v & S.CR0_PE) === 0) cpu.gp(0);
        if ((v & S.CR0_NW) !== 0 && (v & S.CR0_CD) === 0) cpu.gp(0);
        const old = s[S.CR0];
        const pagingOn = (v & S.CR0_PG) !== 0 && (old & S.CR0_PG) === 0;
        const pagingOff = (v & S.CR0_PG) === 0 && (old & S.CR0_PG) !== 0;
        let efer = s[S.EFER];
        if (pagingOn && (efer & S.EFER_LME) !== 0) {
          // Long mode activation: needs PAE, and CS must not be a 64-bit segment.
          if ((s[S.CR4] & S.CR4_PAE) === 0) cpu.gp(0);
          if ((s[S.segWord(S.SEG_CS, S.SEG_ATTR)] & S.ATTR_L) !== 0) cpu.gp(0);
          efer |= S.EFER_LMA;
        } else if (pagingOn && (s[S.CR4] & S.CR4_PAE) !== 0) {
          this.checkPdptes(s[S.CR3_LO]);
        }
        if (pagingOff && (efer & S.EFER_LMA) !== 0) {
          if (cpu.code64) cpu.gp(0);
          efer &= ~S.EFER_LMA;
        }
        s[S.CR0] = v;
        s[S.EFER] = efer;
        if (((old ^ v) & (S.CR0_PG | S.CR0_WP | S.CR0_PE)) !== 0) this.flushAll();
        if (((old ^ v) & S.CR0_PE) !== 0) this.refreshSegments();
        cpu.updateMode();
        cpu.eventCheck = true;
        return;
      }
      case 2:
        s[S.CR2_LO] = lo;
        s[S.CR2_HI] = cpu.lma ? hi : 0;
        return;
      case 3: {
        if (cpu.lma) {
          if ((hi & ~0xf) !== 0) cpu.gp(0); // bits 63..36: MAXPHYADDR is 36
        } else hi = 0;
        if (cpu.pagingMode === 2) this.checkPdptes(lo);
        s[S.CR3_LO] = lo;
        s[S.CR3_HI] = hi;
        cpu.flushTlb(true);
        return;
      }
      case 4: {
        if (hi !== 0 || (lo & ~CR4_WRITABLE) !== 0) cpu.gp(0);
        const old = s[S.CR4];
        if (cpu.lma && (lo & S.CR4_PAE) === 0) cpu.gp(0);
        if ((s[S.CR0] & S.CR0_PG) !== 0 && !cpu.lma && (lo & S.CR4_PAE) !== 0 && (old & S.CR4_PAE) === 0) this.checkPdptes(s[S.CR3_LO]);
        s[S.CR4] = lo;
        if (((old ^ lo) & CR4_PAGING) !== 0) this.flushAll();
        cpu.updateMode();
        return;
      }
      case 8:
        if (hi !== 0 || (lo & ~0xf) !== 0) cpu.gp(0);
        s[S.CR8] = lo;
        cpu.eventCheck = true;
        return;
    }
    cpu.ud();
  }

  /** MOV reg, CRn: the low word; the high word is left in cpu.hi. */
  readCr(n: number): number {
    const cpu = this.cpu;
    const s = cpu.s;
    cpu.hi = 0;
    switch (n) {
      case 0:
        return s[S.CR0];
      case 2:
        cpu.hi = s[S.CR2_HI];
        return s[S.CR2_LO];
      case 3:
        cpu.hi = s[S.CR3_HI];
        return s[S.CR3_LO];
      case 4:
        return s[S.CR4];
      case 8:
        return s[S.CR8] & 0xf;
    }
    return cpu.ud();
  }

  /** PAE: the four PDPTEs CR3 points at must have no reserved bit set (#GP(0)), as on Intel. */
  private checkPdptes(cr3: number): void {
    const cpu = this.cpu;
    const base = (cr3 & 0xffffffe0) >>> 0;
    for (let i = 0; i < 4; i++) {
      const lo = cpu.phys32(base + i * 8);
      const hi = cpu.phys32(base + i * 8 + 4);
      if ((lo & 1) !== 0 && ((lo & 0x1e6) !== 0 || (hi & 0xfffffff0) !== 0)) cpu.gp(0);
    }
  }

  /** Segment fast-path flags depend on CR0.PE: recompute them all. */
  private refreshSegments(): void {
    for (let seg = 0; seg < 6; seg++) this.cpu.segmentChanged(seg);
  }

  /** MOV DRn, reg. DR4/DR5 alias DR6/DR7 unless CR4.DE (then #UD). Breakpoints are not armed. */
  writeDr(n: number, lo: number, hi: number): void {
    const cpu = this.cpu;
    const s = cpu.s;
    if (!cpu.code64) hi = 0;
    if (n === 4 || n === 5) {
      if ((s[S.CR4] & S.CR4_DE) !== 0) cpu.ud();
      n += 2;
    }
    if (n < 4) {
      s[S.DR0 + n * 2] = lo;
      s[S.DR0 + n * 2 + 1] = hi;
      return;
    }
    if (n === 6) {
      if (hi !== 0) cpu.gp(0);
      s[S.DR6] = (lo & 0xe00f) | (0xffff0ff0 | 0);
      return;
    }
    if (n === 7) {
      if (hi !== 0) cpu.gp(0);
      s[S.DR7] = (lo & ~0xd800) | 0x400;
      return;
    }
    cpu.ud();
  }

  /** MOV reg, DRn: the low word; the high word in cpu.hi. */
  readDr(n: number): number {
    const cpu = this.cpu;
    const s = cpu.s;
    cpu.hi = 0;
    if (n === 4 || n === 5) {
      if ((s[S.CR4] & S.CR4_DE) !== 0) cpu.ud();
      n += 2;
    }
    if (n < 4) {
      cpu.hi = s[S.DR0 + n * 2 + 1];
      return s[S.DR0 + n * 2];
    }
    if (n === 6) return s[S.DR6];
    if (n === 7) return s[S.DR7];
    return cpu.ud();
  }

  /** CLTS: clears CR0.TS. */
  clts(): void {
    this.cpu.s[S.CR0] &= ~S.CR0_TS;
  }

  /** LMSW: loads CR0 bits 0..3; PE can be set but not cleared. */
  lmsw(v: number): void {
    const s = this.cpu.s;
    const old = s[S.CR0];
    const bits = (v & 0xf) | (old & S.CR0_PE);
    this.writeCr(0, (old & ~0xf) | bits, 0);
  }

  /** SMSW: CR0 (the caller stores 16 bits to memory, or the register width). #GP under UMIP at CPL > 0. */
  smsw(): number {
    this.checkUmip();
    return this.cpu.s[S.CR0];
  }

  private checkUmip(): void {
    const cpu = this.cpu;
    if ((cpu.s[S.CR4] & S.CR4_UMIP) !== 0 && cpu.cpl > 0) cpu.gp(0);
  }

  // ================================================================== descriptor-table instructions

  /** LGDT m: limit (16 bits) then base (24/32 bits, 64 in 64-bit mode) at seg:off. */
  lgdt(seg: number, offLo: number, offHi: number, osize: number): void {
    this.loadTableRegister(seg, offLo, offHi, osize, S.GDTR_BASE_LO, S.GDTR_BASE_HI, S.GDTR_LIMIT);
  }

  lidt(seg: number, offLo: number, offHi: number, osize: number): void {
    this.loadTableRegister(seg, offLo, offHi, osize, S.IDTR_BASE_LO, S.IDTR_BASE_HI, S.IDTR_LIMIT);
  }

  sgdt(seg: number, offLo: number, offHi: number, osize: number): void {
    this.storeTableRegister(seg, offLo, offHi, osize, S.GDTR_BASE_LO, S.GDTR_BASE_HI, S.GDTR_LIMIT);
  }

  sidt(seg: number, offLo: number, offHi: number, osize: number): void {
    this.storeTableRegister(seg, offLo, offHi, osize, S.IDTR_BASE_LO, S.IDTR_BASE_HI, S.IDTR_LIMIT);
  }

  private loadTableRegister(seg: number, offLo: number, offHi: number, osize: number, baseLoW: number, baseHiW: number, limitW: number): void {
    const cpu = this.cpu;
    const s = cpu.s;
    const limit = cpu.rd16(seg, offLo, offHi);
    const o2 = this.offsetPlus(offLo, offHi, 2);
    const o2Hi = this.linHi;
    let base = cpu.rd32(seg, o2, o2Hi);
    let baseHi = 0;
    if (cpu.code64) {
      const o6 = this.offsetPlus(offLo, offHi, 6);
      baseHi = cpu.rd32(seg, o6, this.linHi);
    } else if (osize === 2) base &= 0x00ffffff;
    s[limitW] = limit;
    s[baseLoW] = base;
    s[baseHiW] = baseHi;
  }

  private storeTableRegister(seg: number, offLo: number, offHi: number, osize: number, baseLoW: number, baseHiW: number, limitW: number): void {
    const cpu = this.cpu;
    const s = cpu.s;
    void osize; // current processors store the whole 32-bit base even with a 16-bit operand size
    this.checkUmip();
    const size = cpu.code64 ? 10 : 6;
    cpu.probeWrite(seg, offLo, offHi, size);
    cpu.wr16(seg, offLo, offHi, s[limitW]);
    const o2 = this.offsetPlus(offLo, offHi, 2);
    cpu.wr32(seg, o2, this.linHi, s[baseLoW]);
    if (cpu.code64) {
      const o6 = this.offsetPlus(offLo, offHi, 6);
      cpu.wr32(seg, o6, this.linHi, s[baseHiW]);
    }
  }

  /** Effective-address arithmetic: off + k with the address width of the mode (64-bit carry or 32-bit wrap). */
  private offsetPlus(offLo: number, offHi: number, k: number): number {
    const sum = (offLo >>> 0) + k;
    this.linHi = this.cpu.code64 ? (offHi + (sum > 0xffffffff ? 1 : 0)) | 0 : 0;
    return sum | 0;
  }

  /** LLDT: null leaves LDTR unusable; otherwise a present LDT descriptor in the GDT. */
  lldt(selector: number): void {
    const cpu = this.cpu;
    selector &= 0xffff;
    const err = selector & 0xfffc;
    if (err === 0) {
      this.loadNull(S.SEG_LDTR, selector, 0);
      return;
    }
    if ((selector & 4) !== 0 || !this.readDescriptor(selector)) cpu.gp(err);
    const lo = this.descLo;
    const hi = this.descHi;
    if (descType(hi) !== SYS_LDT) cpu.gp(err);
    let baseHi = 0;
    if (cpu.lma) {
      if (!this.readDescriptorUpper(selector)) cpu.gp(err);
      if (descType(this.descW3) !== 0 || !isCanonical(this.descW2)) cpu.gp(err);
      baseHi = this.descW2;
    }
    if (!isPresent(hi)) cpu.fault(S.VEC_NP, err, true);
    this.loadCache(S.SEG_LDTR, selector, lo, hi & ~D_ACCESSED, baseHi);
    this.cpu.s[S.segWord(S.SEG_LDTR, S.SEG_ATTR)] = descAttr(hi);
  }

  /** LTR: an available TSS in the GDT; marks it busy. */
  ltr(selector: number): void {
    const cpu = this.cpu;
    selector &= 0xffff;
    const err = selector & 0xfffc;
    if (err === 0) cpu.gp(0);
    if ((selector & 4) !== 0 || !this.readDescriptor(selector)) cpu.gp(err);
    const lo = this.descLo;
    const hi = this.descHi;
    const type = descType(hi);
    if (type !== SYS_TSS32_AVAIL && (cpu.lma || type !== SYS_TSS16_AVAIL)) cpu.gp(err);
    let baseHi = 0;
    if (cpu.lma) {
      if (!this.readDescriptorUpper(selector)) cpu.gp(err);
      if (descType(this.descW3) !== 0 || !isCanonical(this.descW2)) cpu.gp(err);
      baseHi = this.descW2;
    }
    if (!isPresent(hi)) cpu.fault(S.VEC_NP, err, true);
    const busyHi = hi | (2 << 8);
    const l = (this.descAddrLo + 5) | 0;
    this.writeLin(l, this.cpu.lma && l >>> 0 < this.descAddrLo >>> 0 ? (this.descAddrHi + 1) | 0 : this.descAddrHi, 1, (busyHi >>> 8) & 0xff, false);
    const s = cpu.s;
    s[S.segWord(S.SEG_TR, S.SEG_SEL)] = selector;
    s[S.segWord(S.SEG_TR, S.SEG_BASE_LO)] = descBase(lo, hi);
    s[S.segWord(S.SEG_TR, S.SEG_BASE_HI)] = baseHi;
    s[S.segWord(S.SEG_TR, S.SEG_LIMIT)] = descLimit(lo, hi);
    s[S.segWord(S.SEG_TR, S.SEG_ATTR)] = descAttr(busyHi);
    cpu.segmentChanged(S.SEG_TR);
  }

  /** SLDT: the LDTR selector (#GP under UMIP at CPL > 0). */
  sldt(): number {
    this.checkUmip();
    return this.cpu.s[S.segWord(S.SEG_LDTR, S.SEG_SEL)] & 0xffff;
  }

  /** STR: the TR selector (#GP under UMIP at CPL > 0). */
  str(): number {
    this.checkUmip();
    return this.cpu.s[S.segWord(S.SEG_TR, S.SEG_SEL)] & 0xffff;
  }

  /** Result of the last LAR/LSL/VERR/VERW: the selector passed (ZF was set). */
  lastDescriptorValid = false;

  /**
   * LAR: the access rights (descriptor bytes 5..7 masked 0x00f0ff00, as a uint32) and ZF=1, or
   * -1 and ZF=0 when the selector is not visible at this privilege or names a type LAR rejects.
   * The caller writes the destination only when the result is not -1.
   */
  lar(selector: number): number {
    const ok = this.probeSelector(selector, true);
    this.lastDescriptorValid = ok;
    this.setZf(ok);
    return ok ? (this.descHi & 0x00f0ff00) >>> 0 : -1;
  }

  /** LSL: the byte-granular limit (uint32) and ZF=1, or -1 and ZF=0. */
  lsl(selector: number): number {
    const ok = this.probeSelector(selector, false);
    this.lastDescriptorValid = ok;
    this.setZf(ok);
    return ok ? descLimit(this.descLo, this.descHi) >>> 0 : -1;
  }

  /** VERR: ZF=1 if the segment is readable at this privilege. */
  verr(selector: number): void {
    this.lastDescriptorValid = this.verify(selector, false);
    this.setZf(this.lastDescriptorValid);
  }

  /** VERW: ZF=1 if the segment is writable at this privilege. */
  verw(selector: number): void {
    this.lastDescriptorValid = this.verify(selector, true);
    this.setZf(this.lastDescriptorValid);
  }

  private probeSelector(selector: number, lar: boolean): boolean {
    const cpu = this.cpu;
    this.requireProtectedMode();
    selector &= 0xffff;
    if ((selector & 0xfffc) === 0 && (selector & 4) === 0) return false;
    if (!this.readDescriptor(selector)) return false;
    const hi = this.descHi;
    if ((hi & (1 << 12)) === 0) {
      const type = descType(hi);
      let valid: boolean;
      if (cpu.lma) valid = type === SYS_LDT || type === SYS_TSS32_AVAIL || type === SYS_TSS32_BUSY || (lar && type === SYS_CALL_GATE32);
      else {
        valid = type === SYS_TSS16_AVAIL || type === SYS_LDT || type === SYS_TSS16_BUSY || type === SYS_TSS32_AVAIL || type === SYS_TSS32_BUSY;
        if (lar) valid = valid || type === SYS_CALL_GATE16 || type === SYS_TASK_GATE || type === SYS_CALL_GATE32;
      }
      if (!valid) return false;
    }
    if (isConforming(hi)) return true;
    const dpl = descDpl(hi);
    return dpl >= cpu.cpl && dpl >= (selector & 3);
  }

  private verify(selector: number, write: boolean): boolean {
    const cpu = this.cpu;
    this.requireProtectedMode();
    selector &= 0xffff;
    if ((selector & 0xfffc) === 0 && (selector & 4) === 0) return false;
    if (!this.readDescriptor(selector)) return false;
    const hi = this.descHi;
    if (write) {
      if (!isData(hi) || !isRw(hi)) return false;
    } else if (!isData(hi) && !(isCode(hi) && isRw(hi))) return false;
    if (isConforming(hi)) return true;
    const dpl = descDpl(hi);
    return dpl >= cpu.cpl && dpl >= (selector & 3);
  }

  /** LAR/LSL/VERR/VERW are #UD in real and virtual-8086 mode. */
  private requireProtectedMode(): void {
    const s = this.cpu.s;
    if ((s[S.CR0] & S.CR0_PE) === 0 || (s[S.FLAGS] & S.F_VM) !== 0) this.cpu.ud();
  }

  private setZf(on: boolean): void {
    const s = this.cpu.s;
    const f = getArithFlags(s);
    setArithFlags(s, on ? f | S.F_ZF : f & ~S.F_ZF);
  }

  // ================================================================== fast system calls

  /** SYSCALL (Intel semantics: 64-bit mode only). nextLo/Hi: the address of the next instruction. */
  syscall(nextLo: number, nextHi: number): void {
    const cpu = this.cpu;
    const s = cpu.s;
    if (!cpu.code64 || (s[S.EFER] & S.EFER_SCE) === 0) cpu.ud();
    const eflags = cpu.getEflags();
    cpu.setReg64(S.REG_ECX, nextLo, nextHi);
    cpu.setReg64(11, eflags & ~S.F_RF, 0);
    const sel = (s[S.MSR_STAR_HI] & 0xffff) >>> 0;
    cpu.setEflags(eflags & ~s[S.MSR_FMASK] & ~S.F_RF);
    s[S.CPL] = 0;
    cpu.loadSegmentRaw(S.SEG_CS, sel & 0xfffc, 0, -1, ATTR_CODE64);
    cpu.loadSegmentRaw(S.SEG_SS, (sel + 8) & 0xfffc, 0, -1, ATTR_DATA32);
    cpu.setRip(s[S.MSR_LSTAR_LO], s[S.MSR_LSTAR_HI]);
    cpu.updateMode();
  }

  /** SYSRET (osize 8: to 64-bit mode; 4: to compatibility mode). */
  sysret(osize: number): void {
    const cpu = this.cpu;
    const s = cpu.s;
    if (!cpu.code64 || (s[S.EFER] & S.EFER_SCE) === 0) cpu.ud();
    if (cpu.cpl !== 0) cpu.gp(0);
    const rcxLo = s[S.REG_ECX * 2];
    const rcxHi = s[S.REG_ECX * 2 + 1];
    if (osize === 8 && !isCanonical(rcxHi)) cpu.gp(0);
    const base = (s[S.MSR_STAR_HI] >>> 16) & 0xffff;
    const r11 = s[11 * 2];
    cpu.setEflags((r11 & 0x3c7fd7) | 2);
    s[S.CPL] = 3;
    if (osize === 8) cpu.loadSegmentRaw(S.SEG_CS, ((base + 16) & 0xffff) | 3, 0, -1, ATTR_CODE64 | ATTR_DPL3);
    else cpu.loadSegmentRaw(S.SEG_CS, base | 3, 0, -1, ATTR_CODE32 | ATTR_DPL3);
    // SS: only the selector changes architecturally; the cache becomes flat DPL-3 data.
    cpu.loadSegmentRaw(S.SEG_SS, ((base + 8) & 0xffff) | 3, 0, -1, ATTR_DATA32 | ATTR_DPL3);
    if (osize === 8) cpu.setRip(rcxLo, rcxHi);
    else cpu.setRip(rcxLo, 0);
    cpu.updateMode();
    cpu.eventCheck = true;
  }

  /** SYSENTER: to CPL 0 through the SYSENTER MSRs (64-bit code in long mode). */
  sysenter(): void {
    const cpu = this.cpu;
    const s = cpu.s;
    const cs = s[S.MSR_SYSENTER_CS] & 0xffff;
    if ((s[S.CR0] & S.CR0_PE) === 0 || (cs & 0xfffc) === 0) cpu.gp(0);
    const long = cpu.lma;
    s[S.FLAGS] &= ~(S.F_VM | S.F_IF | S.F_RF);
    s[S.CPL] = 0;
    cpu.loadSegmentRaw(S.SEG_CS, cs & 0xfffc, 0, -1, long ? ATTR_CODE64 : ATTR_CODE32);
    cpu.loadSegmentRaw(S.SEG_SS, ((cs & 0xfffc) + 8) & 0xffff, 0, -1, ATTR_DATA32);
    cpu.setReg64(S.REG_ESP, s[S.MSR_SYSENTER_ESP_LO], long ? s[S.MSR_SYSENTER_ESP_HI] : 0);
    cpu.setRip(s[S.MSR_SYSENTER_EIP_LO], long ? s[S.MSR_SYSENTER_EIP_HI] : 0);
    this.refreshSegments();
    cpu.updateMode();
    cpu.eventCheck = true;
  }

  /** SYSEXIT (osize 8: to 64-bit mode, RIP = RDX, RSP = RCX; 4: to 32-bit code). */
  sysexit(osize: number): void {
    const cpu = this.cpu;
    const s = cpu.s;
    const cs = s[S.MSR_SYSENTER_CS] & 0xffff;
    if ((s[S.CR0] & S.CR0_PE) === 0 || (s[S.FLAGS] & S.F_VM) !== 0 || (cs & 0xfffc) === 0 || cpu.cpl !== 0) cpu.gp(0);
    const rdxLo = s[S.REG_EDX * 2];
    const rdxHi = s[S.REG_EDX * 2 + 1];
    const rcxLo = s[S.REG_ECX * 2];
    const rcxHi = s[S.REG_ECX * 2 + 1];
    if (osize === 8 && (!isCanonical(rdxHi) || !isCanonical(rcxHi))) cpu.gp(0);
    s[S.CPL] = 3;
    if (osize === 8) {
      cpu.loadSegmentRaw(S.SEG_CS, ((cs + 32) & 0xfffc) | 3, 0, -1, ATTR_CODE64 | ATTR_DPL3);
      cpu.loadSegmentRaw(S.SEG_SS, ((cs + 40) & 0xfffc) | 3, 0, -1, ATTR_DATA32 | ATTR_DPL3);
      cpu.setReg64(S.REG_ESP, rcxLo, rcxHi);
      cpu.setRip(rdxLo, rdxHi);
    } else {
      cpu.loadSegmentRaw(S.SEG_CS, ((cs + 16) & 0xfffc) | 3, 0, -1, ATTR_CODE32 | ATTR_DPL3);
      cpu.loadSegmentRaw(S.SEG_SS, ((cs + 24) & 0xfffc) | 3, 0, -1, ATTR_DATA32 | ATTR_DPL3);
      cpu.setReg64(S.REG_ESP, rcxLo, 0);
      cpu.setRip(rdxLo, 0);
    }
    cpu.updateMode();
    cpu.eventCheck = true;
  }

  /** SWAPGS: exchanges GS.base with IA32_KERNEL_GS_BASE (64-bit mode, CPL 0: checked by the caller). */
  swapgs(): void {
    const cpu = this.cpu;
    const s = cpu.s;
    if (!cpu.code64) cpu.ud();
    if (cpu.cpl !== 0) cpu.gp(0);
    const lo = s[S.segWord(S.SEG_GS, S.SEG_BASE_LO)];
    const hi = s[S.segWord(S.SEG_GS, S.SEG_BASE_HI)];
    s[S.segWord(S.SEG_GS, S.SEG_BASE_LO)] = s[S.MSR_KGSBASE_LO];
    s[S.segWord(S.SEG_GS, S.SEG_BASE_HI)] = s[S.MSR_KGSBASE_HI];
    s[S.MSR_KGSBASE_LO] = lo;
    s[S.MSR_KGSBASE_HI] = hi;
    cpu.segmentChanged(S.SEG_GS);
  }

  // ================================================================== MSRs

  /** RDMSR: the low word; the high word in cpu.hi. Unknown MSRs: #GP(0). */
  rdmsr(index: number): number {
    const cpu = this.cpu;
    const s = cpu.s;
    cpu.hi = 0;
    switch (index >>> 0) {
      case MSR_TSC:
        return this.rdtsc();
      case MSR_PLATFORM_ID:
      case MSR_DEBUGCTL:
      case MSR_BIOS_SIGN_ID:
      case MSR_MCG_CAP:
      case MSR_MCG_STATUS:
      case MSR_MTRRCAP:
        return 0;
      case MSR_FEATURE_CONTROL:
        return 1; // locked, VMX off
      case MSR_APIC_BASE:
        cpu.hi = s[S.MSR_APIC_BASE_HI];
        return s[S.MSR_APIC_BASE_LO];
      case MSR_SYSENTER_CS:
        return s[S.MSR_SYSENTER_CS];
      case MSR_SYSENTER_ESP:
        cpu.hi = s[S.MSR_SYSENTER_ESP_HI];
        return s[S.MSR_SYSENTER_ESP_LO];
      case MSR_SYSENTER_EIP:
        cpu.hi = s[S.MSR_SYSENTER_EIP_HI];
        return s[S.MSR_SYSENTER_EIP_LO];
      case MSR_MISC_ENABLE:
        return s[S.MSR_MISC_ENABLE];
      case MSR_PAT:
        cpu.hi = s[S.MSR_PAT_HI];
        return s[S.MSR_PAT_LO];
      case MSR_MTRR_DEF_TYPE:
        return 0x806; // MTRRs enabled, default type write-back, no ranges
      case MSR_EFER:
        return s[S.EFER];
      case MSR_STAR:
        cpu.hi = s[S.MSR_STAR_HI];
        return s[S.MSR_STAR_LO];
      case MSR_LSTAR:
        cpu.hi = s[S.MSR_LSTAR_HI];
        return s[S.MSR_LSTAR_LO];
      case MSR_CSTAR:
        cpu.hi = s[S.MSR_CSTAR_HI];
        return s[S.MSR_CSTAR_LO];
      case MSR_FMASK:
        return s[S.MSR_FMASK];
      case MSR_FS_BASE:
        cpu.hi = s[S.segWord(S.SEG_FS, S.SEG_BASE_HI)];
        return s[S.segWord(S.SEG_FS, S.SEG_BASE_LO)];
      case MSR_GS_BASE:
        cpu.hi = s[S.segWord(S.SEG_GS, S.SEG_BASE_HI)];
        return s[S.segWord(S.SEG_GS, S.SEG_BASE_LO)];
      case MSR_KERNEL_GS_BASE:
        cpu.hi = s[S.MSR_KGSBASE_HI];
        return s[S.MSR_KGSBASE_LO];
      case MSR_TSC_AUX:
        return s[S.MSR_TSC_AUX];
    }
    return cpu.gp(0);
  }

  /** WRMSR. Reserved bits and non-canonical addresses: #GP(0). Unknown MSRs: #GP(0). */
  wrmsr(index: number, lo: number, hi: number): void {
    const cpu = this.cpu;
    const s = cpu.s;
    switch (index >>> 0) {
      case MSR_TSC: {
        // Keep TSC_OFFSET such that readTsc() + offset = the value written.
        const t = cpu.readTsc();
        const tLo = t % TWO_32;
        const tHi = Math.floor(t / TWO_32);
        const dLo = (lo >>> 0) - tLo;
        s[S.TSC_OFFSET_LO] = dLo | 0;
        s[S.TSC_OFFSET_HI] = (hi - tHi - (dLo < 0 ? 1 : 0)) | 0;
        return;
      }
      case MSR_BIOS_SIGN_ID:
        return; // microcode revision probe: writes are ignored
      case MSR_MCG_STATUS:
      case MSR_DEBUGCTL: // no branch tracing or LBRs: only 0 is accepted
        if (lo !== 0 || hi !== 0) cpu.gp(0);
        return;
      case MSR_APIC_BASE:
        // Bits 7..0, 9, 10 (x2APIC: not offered) and 63..36 reserved; BSP (bit 8) is read-only.
        if ((lo & 0x6ff) !== 0 || (hi & ~0xf) !== 0) cpu.gp(0);
        s[S.MSR_APIC_BASE_LO] = (lo & ~0x100) | (s[S.MSR_APIC_BASE_LO] & 0x100);
        s[S.MSR_APIC_BASE_HI] = hi;
        return;
      case MSR_SYSENTER_CS:
        s[S.MSR_SYSENTER_CS] = lo;
        return;
      case MSR_SYSENTER_ESP:
        if (!isCanonical(hi)) cpu.gp(0);
        s[S.MSR_SYSENTER_ESP_LO] = lo;
        s[S.MSR_SYSENTER_ESP_HI] = hi;
        return;
      case MSR_SYSENTER_EIP:
        if (!isCanonical(hi)) cpu.gp(0);
        s[S.MSR_SYSENTER_EIP_LO] = lo;
        s[S.MSR_SYSENTER_EIP_HI] = hi;
        return;
      case MSR_MISC_ENABLE:
        s[S.MSR_MISC_ENABLE] = lo;
        return;
      case MSR_PAT: {
        for (let i = 0; i < 8; i++) {
          const t = ((i < 4 ? lo : hi) >>> ((i & 3) * 8)) & 0xff;
          if (t !== 0 && t !== 1 && t !== 4 && t !== 5 && t !== 6 && t !== 7) cpu.gp(0);
        }
        s[S.MSR_PAT_LO] = lo;
        s[S.MSR_PAT_HI] = hi;
        return;
      }
      case MSR_MTRR_DEF_TYPE:
        if ((lo & ~0xcff) !== 0 || hi !== 0) cpu.gp(0);
        return; // accepted and ignored: memory types do not matter to the emulator
      case MSR_EFER: {
        if (hi !== 0 || (lo & ~(EFER_WRITABLE | S.EFER_LMA)) !== 0) cpu.gp(0);
        const old = s[S.EFER];
        if (((old ^ lo) & S.EFER_LME) !== 0 && (s[S.CR0] & S.CR0_PG) !== 0) cpu.gp(0);
        const v = (lo & EFER_WRITABLE) | (old & S.EFER_LMA);
        s[S.EFER] = v;
        if (((old ^ v) & S.EFER_NXE) !== 0) this.flushAll();
        cpu.updateMode();
        return;
      }
      case MSR_STAR:
        s[S.MSR_STAR_LO] = lo;
        s[S.MSR_STAR_HI] = hi;
        return;
      case MSR_LSTAR:
        if (!isCanonical(hi)) cpu.gp(0);
        s[S.MSR_LSTAR_LO] = lo;
        s[S.MSR_LSTAR_HI] = hi;
        return;
      case MSR_CSTAR:
        if (!isCanonical(hi)) cpu.gp(0);
        s[S.MSR_CSTAR_LO] = lo;
        s[S.MSR_CSTAR_HI] = hi;
        return;
      case MSR_FMASK:
        if (hi !== 0) cpu.gp(0);
        s[S.MSR_FMASK] = lo;
        return;
      case MSR_FS_BASE:
      case MSR_GS_BASE: {
        if (!isCanonical(hi)) cpu.gp(0);
        const seg = (index >>> 0) === MSR_FS_BASE ? S.SEG_FS : S.SEG_GS;
        s[S.segWord(seg, S.SEG_BASE_LO)] = lo;
        s[S.segWord(seg, S.SEG_BASE_HI)] = hi;
        cpu.segmentChanged(seg);
        return;
      }
      case MSR_KERNEL_GS_BASE:
        if (!isCanonical(hi)) cpu.gp(0);
        s[S.MSR_KGSBASE_LO] = lo;
        s[S.MSR_KGSBASE_HI] = hi;
        return;
      case MSR_TSC_AUX:
        if (hi !== 0) cpu.gp(0);
        s[S.MSR_TSC_AUX] = lo;
        return;
    }
    cpu.gp(0);
  }

  /** The guest's TSC (readTsc() + TSC_OFFSET): the low word; the high word in cpu.hi. For RDTSC/RDTSCP. */
  rdtsc(): number {
    const cpu = this.cpu;
    const s = cpu.s;
    const t = cpu.readTsc();
    const tLo = t % TWO_32;
    const tHi = Math.floor(t / TWO_32);
    const sum = tLo + (s[S.TSC_OFFSET_LO] >>> 0);
    cpu.hi = (tHi + s[S.TSC_OFFSET_HI] + (sum > 0xffffffff ? 1 : 0)) | 0;
    return sum | 0;
  }

  // ================================================================== CPUID

  /** CPUID: writes EAX, EBX, ECX, EDX from the policy (zeros for an absent leaf). */
  cpuid(leaf: number, subleaf: number): void {
    const cpu = this.cpu;
    const r = this.cpuidPolicy.lookup(leaf, subleaf);
    cpu.setReg32(S.REG_EAX, r ? r.eax : 0);
    cpu.setReg32(S.REG_EBX, r ? r.ebx : 0);
    cpu.setReg32(S.REG_ECX, r ? r.ecx : 0);
    cpu.setReg32(S.REG_EDX, r ? r.edx : 0);
  }
}
