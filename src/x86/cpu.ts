/**
 * The x86 processor: a pure engine. It reaches the world only through the PhysicalMemory and
 * IoPorts it is given, and reports to its owner through exits (like VT-x VM exits).
 *
 * Invariants:
 * - run() never throws. Guest-caused conditions end in an architectural outcome (an exception
 *   delivered through the guest's IDT, or an exit); an internal bug ends in EXIT_INTERNAL.
 * - Inside run(), a guest fault unwinds from wherever it is detected to the run loop by
 *   throwing the preallocated GUEST_FAULT sentinel (the role siglongjmp plays in QEMU); the
 *   fault's details are in `pending*`. Every instruction performs all checks that can fault
 *   before it changes architectural state, so unwinding leaves the state as before it.
 * - TLB entries are a cache of the guest's page tables for the current CR3/CR0/CR4/EFER: a
 *   write tag is present only when a write needs no walk (page writable for that privilege,
 *   dirty bit already set, RAM, no decoded code on it). Anything that changes translation
 *   flushes (CR3, CR0.PG/WP, CR4 paging bits, EFER.NXE, INVLPG).
 * - A decoded block is used only if its linear address, mode key and physical page all still
 *   match; a write to a physical page holding decoded code invalidates every block on it
 *   before the write lands, so self-modifying code sees its own stores.
 * - Machine memory is addressed as physical addresses below ramBytes; nothing else is RAM.
 */
import type { IoPorts, PhysicalMemory } from "./bus.ts";
import { UOP, alu, alu64, compileInsn, lastHigh } from "./compile.ts";
import { FAULT_FETCH, FAULT_NONE, FAULT_TOO_LONG, Insn, decode } from "./decoder.ts";
import { type Compiled, compileBlock } from "./jit.ts";
import { CC_ADD, CC_LOGIC, CC_SUB, getArithFlags, getCF, getZF, setArithFlags, testCond } from "./flags.ts";
import * as U from "./uops.ts";
import * as S from "./state.ts";
import { SystemUnit } from "./system.ts";
import { resetFpState } from "./fp/fxsave.ts";

export const EXIT_NONE = 0;
/** The instruction budget given to run() is spent. */
export const EXIT_BUDGET = 1;
/** HLT executed; the vCPU is halted until an interrupt. */
export const EXIT_HLT = 2;
/** An exception whose vector is set in the exception bitmap; see exitInfo. */
export const EXIT_EXCEPTION = 3;
export const EXIT_TRIPLE_FAULT = 4;
/** The owner (or a device callback) called requestExit(). */
export const EXIT_REQUESTED = 5;
/** INT n with the INT intercept on; RIP is at the INT instruction, exitInfo.vector = n. */
export const EXIT_SOFTWARE_INT = 6;
export const EXIT_CPUID = 7;
export const EXIT_RDMSR = 8;
export const EXIT_WRMSR = 9;
export const EXIT_CR_ACCESS = 10;
export const EXIT_INVLPG = 11;
export const EXIT_RDTSC = 12;
export const EXIT_SYSCALL = 13;
export const EXIT_IO = 14;
/** A bug in the emulator itself; exitInfo.message says what. The guest state is as before it. */
export const EXIT_INTERNAL = 15;

export const EXIT_NAMES = [
  "none", "budget", "hlt", "exception", "triple-fault", "requested", "software-int", "cpuid",
  "rdmsr", "wrmsr", "cr-access", "invlpg", "rdtsc", "syscall", "io", "internal",
];

export interface ExitInfo {
  reason: number;
  vector: number;
  errorCode: number;
  hasErrorCode: boolean;
  /** #PF: the faulting linear address. */
  addressLo: number;
  addressHi: number;
  /** Length of the instruction that caused an instruction exit. */
  instructionLength: number;
  /** CR number, MSR index, port, ... depending on reason. */
  qualification: number;
  message: string;
}

/** VT-x-like exit controls. */
export interface ExitControls {
  /** Bit v set: exception v exits instead of being delivered through the guest's IDT. */
  exceptionBitmap: number;
  interceptSoftwareInt: boolean;
  interceptSyscall: boolean;
  interceptCpuid: boolean;
  interceptMsr: boolean;
  interceptCrWrite: boolean;
  interceptInvlpg: boolean;
  interceptRdtsc: boolean;
  interceptIo: boolean;
}

export interface CpuOptions {
  memory: PhysicalMemory;
  io: IoPorts;
  /** Where the architectural state lives (one 4 KiB frame); a private buffer if omitted. */
  state?: Int32Array;
  /** Time source for RDTSC, in TSC ticks (an integer number). */
  readTsc?: () => number;
  /** Called when an external interrupt can be taken; returns the vector, or -1 if none. */
  acknowledgeInterrupt?: () => number;
  /** Executions after which a block is compiled to JavaScript (default 50); 0 = interpreter only. */
  jitThreshold?: number;
}

/** Thrown inside run() only; never escapes it. */
export const GUEST_FAULT = { guestFault: true };

// 2^18 entries: 5 MiB of tags per privilege level; the top bits of the linear page are folded
// into the index so that the kernel's high half and user space don't alias.
const TLB_BITS = 18;
const TLB_SIZE = 1 << TLB_BITS;
const TLB_MASK = TLB_SIZE - 1;
const TLB_INVALID = 1; // never equals a page-aligned tag
const TLB_LIST_MAX = 1 << 16;
const BLOCK_CACHE_SIZE = 1 << 16;
const MAX_BLOCK_INSNS = 64;

const EMPTY_UOPS = new Int32Array(0);
/** The micro-op kinds runFast() takes (1); the rest go straight to runUops' full switch. */
const FAST_UOPS = new Uint8Array(64);
for (let k = 1; k <= 44; k++) if (k !== 5 && k !== 6) FAST_UOPS[k] = 1; // all but ALU_RR32/RI32 (alu())
const CC_ADD32 = (CC_ADD << 2) | 2;
const CC_SUB32 = (CC_SUB << 2) | 2;
const CC_LOGIC32 = (CC_LOGIC << 2) | 2;
const CC_ADD64 = (CC_ADD << 2) | 3;
const CC_SUB64 = (CC_SUB << 2) | 3;

/** Turns a flag producer followed by the block's final JCC into one fused record (uops.ts). */
function fuseUops(u: Int32Array, n: number): void {
  if (n < 2) return;
  const q = (n - 1) * U.UOP_STRIDE;
  const p = q - U.UOP_STRIDE;
  if (u[q] !== U.U_JCC) return;
  switch (u[p]) {
    case U.U_INCDEC32:
      u[p] = U.U_INCDEC32_JCC;
      break;
    case U.U_INCDEC64:
      u[p] = U.U_INCDEC64_JCC;
      break;
    case U.U_SUB_RR32:
      u[p] = U.U_SUB32_JCC;
      u[p + 4] = 0;
      break;
    case U.U_SUB_RI32:
      u[p] = U.U_SUB32_JCC;
      u[p + 4] = 1;
      break;
    case U.U_LOGIC_RR32:
      u[p] = U.U_LOGIC32_JCC;
      u[p + 5] = 0;
      break;
    case U.U_LOGIC_RI32:
      u[p] = U.U_LOGIC32_JCC;
      u[p + 5] = 1;
      break;
  }
}

export class Block {
  valid = true;
  n = 0;
  readonly fns: (() => number)[] = [];
  /** Micro-op records, UOP_STRIDE words per instruction (uops.ts). */
  uops: Int32Array = EMPTY_UOPS;
  /**
   * offs[i]: instruction i's address minus the block's start (negative or out of order when the
   * block follows a call, see buildBlock); offs[n]: where the block falls through to, likewise.
   */
  offs: Int32Array = new Int32Array(0);
  /** Successors seen last time (block linking), valid while linkGen equals the CPU's tlbGen. */
  succA: Block | null = null;
  succB: Block | null = null;
  linkGen = -1;
  /** Executions so far, until the block compiler takes it (or gives up: -1). */
  heat = 0;
  /** The compiled form (jit.ts), once hot. */
  jit: Compiled | null = null;
  /** Decoded instructions, for the block compiler (of this block and of traces through it). */
  insns: Insn[] | null = [];
  constructor(
    readonly lin: number,
    readonly linHi: number,
    /** RIP at the block start: closures capture RIP values, so a block is bound to it too. */
    readonly eipLo: number,
    readonly eipHi: number,
    readonly mode: number,
    readonly phys: number,
    public phys2: number,
  ) {}
}

/** One TLB: tags per access kind, shared high tag and physical page. */
class Tlb {
  readonly tagR = new Int32Array(TLB_SIZE).fill(TLB_INVALID);
  readonly tagW = new Int32Array(TLB_SIZE).fill(TLB_INVALID);
  readonly tagX = new Int32Array(TLB_SIZE).fill(TLB_INVALID);
  readonly tagHi = new Int32Array(TLB_SIZE);
  readonly phys = new Int32Array(TLB_SIZE);
  readonly global = new Uint8Array(TLB_SIZE);
  readonly used = new Int32Array(TLB_LIST_MAX);
  usedCount = 0;
  overflow = false;

  flush(keepGlobal: boolean): void {
    if (this.overflow) {
      if (keepGlobal) {
        for (let i = 0; i < TLB_SIZE; i++) if (!this.global[i]) this.clear(i);
      } else {
        this.tagR.fill(TLB_INVALID);
        this.tagW.fill(TLB_INVALID);
        this.tagX.fill(TLB_INVALID);
        this.global.fill(0);
      }
      this.overflow = false;
      this.usedCount = 0;
      if (keepGlobal) for (let i = 0; i < TLB_SIZE; i++) if (this.global[i]) this.note(i);
      return;
    }
    let kept = 0;
    for (let k = 0; k < this.usedCount; k++) {
      const i = this.used[k];
      if (keepGlobal && this.global[i] && this.tagR[i] !== TLB_INVALID) this.used[kept++] = i;
      else this.clear(i);
    }
    this.usedCount = kept;
  }

  clear(i: number): void {
    this.tagR[i] = TLB_INVALID;
    this.tagW[i] = TLB_INVALID;
    this.tagX[i] = TLB_INVALID;
    this.global[i] = 0;
  }

  note(i: number): void {
    if (this.usedCount < TLB_LIST_MAX) this.used[this.usedCount++] = i;
    else this.overflow = true;
  }
}

/**
 * Decoded-code bookkeeping shared by every processor on one machine memory, so that a store by
 * one vCPU invalidates what another decoded from the same page (SMP guests, and the hypervisor
 * writing guest memory through one CPU while another runs it).
 */
class CodeTracker {
  private static readonly byMemory = new WeakMap<ArrayBufferLike, CodeTracker>();
  /** 1 for a physical page that holds decoded code. */
  readonly codePages: Uint8Array;
  readonly pageBlocks = new Map<number, Block[]>();
  readonly cpus = new Set<Cpu>();

  private constructor(pages: number) {
    this.codePages = new Uint8Array(pages);
  }

  static of(u8: Uint8Array, ramBytes: number): CodeTracker {
    let t = CodeTracker.byMemory.get(u8.buffer);
    if (t === undefined || t.codePages.length < Math.ceil(ramBytes / 4096)) {
      t = new CodeTracker(Math.ceil(ramBytes / 4096));
      CodeTracker.byMemory.set(u8.buffer, t);
    }
    return t;
  }

  /** A page now holds code: no processor may store to it without the slow path. */
  mark(page: number): void {
    if (this.codePages[page] !== 0) return;
    this.codePages[page] = 1;
    for (const cpu of this.cpus) cpu.dropWriteTags(page << 12);
  }

  /** Every block decoded from the page, by any processor, is invalid from now on. */
  invalidate(page: number): void {
    this.codePages[page] = 0;
    const list = this.pageBlocks.get(page);
    if (list) {
      for (const b of list) {
        b.valid = false;
        b.n = 0; // a block that is running stops after the current instruction
        b.uops.fill(U.U_END); // (the micro-op loop stops at the next record)
      }
      this.pageBlocks.delete(page);
    }
  }

  add(page: number, b: Block): void {
    let list = this.pageBlocks.get(page);
    if (!list) {
      list = [];
      this.pageBlocks.set(page, list);
    }
    list.push(b);
  }
}

export function tlbIndex(lin: number, linHi: number): number {
  return ((lin >>> 12) ^ (lin >>> 26) ^ ((linHi & 0xffff) << 2)) & TLB_MASK;
}

export class Cpu {
  readonly s: Int32Array;
  readonly mem: PhysicalMemory;
  readonly io: IoPorts;
  readonly u8: Uint8Array;
  readonly i32: Int32Array;
  readonly u16: Uint16Array;
  readonly dv: DataView;
  readonly ramBytes: number;
  readonly sys: SystemUnit;
  readTsc: () => number;
  acknowledgeInterrupt: () => number;
  /**
   * Pre-decoded micro-ops for the common instruction forms (uops.ts); false runs every
   * instruction through its closure (tests compare the two).
   */
  microOps = true;
  /** Executions after which a block is compiled to JavaScript; 0 disables the compiler. */
  jitThreshold: number;
  /** Blocks handed to the block compiler, and how many it compiled (statistics). */
  jitAttempts = 0;
  jitCompiled = 0;
  /** Set by compiled blocks before each instruction that can fault. */
  jitIndex = 0;
  /** The retired count at which the current run() stops (compiled loops look at it). */
  runEnd = 0;

  readonly controls: ExitControls = {
    exceptionBitmap: 0,
    interceptSoftwareInt: false,
    interceptSyscall: false,
    interceptCpuid: false,
    interceptMsr: false,
    interceptCrWrite: false,
    interceptInvlpg: false,
    interceptRdtsc: false,
    interceptIo: false,
  };
  readonly exitInfo: ExitInfo = {
    reason: EXIT_NONE, vector: 0, errorCode: 0, hasErrorCode: false, addressLo: 0, addressHi: 0,
    instructionLength: 0, qualification: 0, message: "",
  };

  /** Instructions retired since creation. */
  retired = 0;
  exitReason = EXIT_NONE;

  // Derived mode, recomputed by updateMode() whenever CS, SS, CR0, EFER or CPL change.
  code64 = false;
  /** CS.D: default operand/address size 32 (outside 64-bit mode). */
  csD = true;
  /** SS.B: 32-bit stack pointer. */
  ssB = true;
  lma = false;
  cpl = 0;
  pagingMode = 0; // 0 off, 1 two-level, 2 PAE, 3 four-level
  modeKey = 0;
  /** Per segment: 1 when its accesses need no limit or type check (only the base is added). */
  readonly segFast = new Uint8Array(6);
  /** Segment bases cached as int32 (low word); high words come from the state in 64-bit mode. */
  readonly segBase = new Int32Array(8);

  // The active TLB (user or supervisor), switched with CPL.
  private readonly tlbUser = new Tlb();
  private readonly tlbSup = new Tlb();
  tlb: Tlb = this.tlbSup;

  // Decoded blocks.
  private readonly blockCache: (Block | undefined)[] = new Array(BLOCK_CACHE_SIZE);
  /** Shared with the other processors on the same memory. */
  private readonly code: CodeTracker;
  private readonly codePages: Uint8Array;
  private readonly scratchInsn = new Insn();
  private readonly uopScratch = new Int32Array((MAX_BLOCK_INSNS + 1) * U.UOP_STRIDE);

  // Pending fault (valid while GUEST_FAULT unwinds).
  pendingVector = -1;
  pendingError = 0;
  pendingHasError = false;
  pendingAddrLo = 0;
  pendingAddrHi = 0;

  /** High word of the last 64-bit memory read / of the last computed linear address. */
  hi = 0;
  linHi = 0;

  /** Set by devices or the owner to stop run() at the next block boundary. */
  private exitRequested = false;
  /** True when something must be looked at between blocks (events, single-step, shadow). */
  eventCheck = true;
  private injected: { vector: number; kind: number; error: number; hasError: boolean } | null = null;
  irqLine = false;

  constructor(opts: CpuOptions) {
    this.mem = opts.memory;
    this.io = opts.io;
    this.s = opts.state ?? new Int32Array(S.STATE_WORDS);
    const buf = opts.memory.u8.buffer;
    const off = opts.memory.u8.byteOffset;
    this.u8 = opts.memory.u8;
    this.ramBytes = opts.memory.ramBytes;
    this.i32 = new Int32Array(buf, off, this.ramBytes >>> 2);
    this.u16 = new Uint16Array(buf, off, this.ramBytes >>> 1);
    this.dv = new DataView(buf, off, this.ramBytes);
    this.code = CodeTracker.of(this.u8, this.ramBytes);
    this.code.cpus.add(this);
    this.codePages = this.code.codePages;
    this.readTsc = opts.readTsc ?? (() => this.retired);
    this.acknowledgeInterrupt = opts.acknowledgeInterrupt ?? (() => -1);
    this.jitThreshold = opts.jitThreshold ?? 50;
    this.sys = new SystemUnit(this);
    this.reset();
  }

  // ---------------------------------------------------------------- state helpers

  reset(): void {
    const s = this.s;
    s.fill(0);
    s[S.RIP_LO] = 0xfff0;
    s[S.FLAGS] = 2;
    setArithFlags(s, 0);
    s[S.CR0] = S.CR0_ET | S.CR0_CD | S.CR0_NW;
    s[S.REG_EDX * 2] = 0x600;
    for (let seg = 0; seg < 6; seg++) this.loadSegmentRaw(seg, 0, 0, 0xffff, 0x93);
    this.loadSegmentRaw(S.SEG_CS, 0xf000, 0xffff0000 | 0, 0xffff, 0x9b);
    this.loadSegmentRaw(S.SEG_LDTR, 0, 0, 0xffff, 0x82);
    this.loadSegmentRaw(S.SEG_TR, 0, 0, 0xffff, 0x8b);
    s[S.GDTR_LIMIT] = 0xffff;
    s[S.IDTR_LIMIT] = 0xffff;
    s[S.DR6] = 0xffff0ff0 | 0;
    s[S.DR7] = 0x400;
    s[S.MSR_PAT_LO] = 0x00070406;
    s[S.MSR_PAT_HI] = 0x00070406;
    s[S.MSR_APIC_BASE_LO] = 0xfee00900 | 0;
    s[S.A20_MASK] = -1;
    resetFpState(s);
    this.retired = 0;
    this.injected = null;
    this.irqLine = false;
    this.updateMode();
    this.flushTlb(false);
  }

  reg32(r: number): number {
    return this.s[r * 2] >>> 0;
  }
  setReg32(r: number, v: number): void {
    this.s[r * 2] = v | 0;
    this.s[r * 2 + 1] = 0;
  }
  setReg64(r: number, lo: number, hi: number): void {
    this.s[r * 2] = lo | 0;
    this.s[r * 2 + 1] = hi | 0;
  }
  get eip(): number {
    return this.s[S.RIP_LO] >>> 0;
  }
  setRip(lo: number, hi = 0): void {
    this.s[S.RIP_LO] = lo | 0;
    this.s[S.RIP_HI] = hi | 0;
  }
  /** The full EFLAGS value, with the lazy arithmetic flags computed. */
  getEflags(): number {
    return (this.s[S.FLAGS] | getArithFlags(this.s)) >>> 0;
  }
  setEflags(v: number): void {
    this.s[S.FLAGS] = (v & ~S.F_ARITH) | 2;
    setArithFlags(this.s, v);
    this.eventCheck = true;
  }

  /** Loads a segment cache directly (as the processor's reset or a loader would). */
  loadSegmentRaw(seg: number, selector: number, base: number, limit: number, attr: number, baseHi = 0): void {
    const s = this.s;
    s[S.segWord(seg, S.SEG_SEL)] = selector & 0xffff;
    s[S.segWord(seg, S.SEG_BASE_LO)] = base | 0;
    s[S.segWord(seg, S.SEG_BASE_HI)] = baseHi | 0;
    s[S.segWord(seg, S.SEG_LIMIT)] = limit | 0;
    s[S.segWord(seg, S.SEG_ATTR)] = attr;
    this.segmentChanged(seg);
  }

  /** Recomputes what depends on a segment cache. */
  segmentChanged(seg: number): void {
    const s = this.s;
    this.segBase[seg] = s[S.segWord(seg, S.SEG_BASE_LO)];
    if (seg < 6) {
      const attr = s[S.segWord(seg, S.SEG_ATTR)];
      const limit = s[S.segWord(seg, S.SEG_LIMIT)];
      const usable = (attr & S.ATTR_UNUSABLE) === 0 && (attr & S.ATTR_P) !== 0;
      const dataRW = (attr & S.ATTR_CODE) === 0 && (attr & S.ATTR_RW) !== 0 && (attr & S.ATTR_DC) === 0;
      const realLike = (s[S.CR0] & S.CR0_PE) === 0 || (s[S.FLAGS] & S.F_VM) !== 0;
      this.segFast[seg] = (usable || realLike) && (dataRW || realLike) && limit === -1 ? 1 : 0;
    }
    if (seg === S.SEG_CS || seg === S.SEG_SS) this.updateMode();
    else this.updateFlatSegs();
  }

  /**
   * Bit n set: segment n (ES, CS, SS, DS) adds nothing and checks nothing but the 4 GiB wrap
   * (64-bit mode, or a flat segment at base 0), so runFast uses the offset as the linear address.
   */
  flatSegs = 0;

  private updateFlatSegs(): void {
    let flat = 0;
    for (let k = 0; k < 4; k++) if (this.code64 || (this.segFast[k] !== 0 && this.segBase[k] === 0)) flat |= 1 << k;
    this.flatSegs = flat;
  }

  /** Recomputes the derived mode after CS, SS, CR0, CR4, EFER, EFLAGS.VM or CPL change. */
  updateMode(): void {
    const s = this.s;
    const csAttr = s[S.segWord(S.SEG_CS, S.SEG_ATTR)];
    const pe = (s[S.CR0] & S.CR0_PE) !== 0;
    const vm = (s[S.FLAGS] & S.F_VM) !== 0;
    this.lma = (s[S.EFER] & S.EFER_LMA) !== 0;
    this.code64 = this.lma && (csAttr & S.ATTR_L) !== 0;
    this.csD = pe && !vm ? (csAttr & S.ATTR_DB) !== 0 : false;
    if (!pe && (csAttr & S.ATTR_DB) !== 0) this.csD = true; // big real mode code is unusual but allowed
    this.ssB = (s[S.segWord(S.SEG_SS, S.SEG_ATTR)] & S.ATTR_DB) !== 0;
    const cpl = !pe ? 0 : vm ? 3 : s[S.CPL] & 3;
    this.setCplInternal(cpl);
    const cr0 = s[S.CR0];
    const cr4 = s[S.CR4];
    this.pagingMode = (cr0 & S.CR0_PG) === 0 ? 0 : this.lma ? 3 : (cr4 & S.CR4_PAE) !== 0 ? 2 : 1;
    this.modeKey = (this.code64 ? 1 : 0) | (this.csD ? 2 : 0) | (this.ssB ? 4 : 0) | (cpl << 3) | (pe ? 32 : 0) | (vm ? 64 : 0);
    if (this.code64) for (let i = 0; i < 6; i++) this.segFast[i] = 1;
    this.updateFlatSegs();
  }

  private setCplInternal(cpl: number): void {
    this.cpl = cpl;
    this.s[S.CPL] = cpl;
    this.tlb = cpl === 3 ? this.tlbUser : this.tlbSup;
  }

  /** Stops run() at the next block boundary with EXIT_REQUESTED. Safe to call from device callbacks. */
  requestExit(): void {
    this.exitRequested = true;
    this.eventCheck = true;
  }

  /** Raises or lowers the external interrupt line (INTR). */
  setIrqLine(level: boolean): void {
    this.irqLine = level;
    this.eventCheck = true;
  }

  /**
   * Injects an event to be delivered before the next instruction (VT-x event injection):
   * kind 0 = external interrupt, 2 = NMI, 3 = hardware exception, 4 = software interrupt.
   */
  injectEvent(vector: number, kind: number, errorCode = 0, hasErrorCode = false): void {
    this.injected = { vector, kind, error: errorCode, hasError: hasErrorCode };
    this.s[S.HALTED] = 0;
    this.eventCheck = true;
  }

  // ---------------------------------------------------------------- faults

  /** Records a fault and unwinds to the run loop. Never returns. */
  fault(vector: number, errorCode = 0, hasErrorCode = false): never {
    this.pendingVector = vector;
    this.pendingError = errorCode;
    this.pendingHasError = hasErrorCode;
    throw GUEST_FAULT;
  }
  gp(err = 0): never {
    return this.fault(S.VEC_GP, err, true);
  }
  ud(): never {
    return this.fault(S.VEC_UD);
  }

  // ---------------------------------------------------------------- linear addresses

  /**
   * Linear address of seg:off (off as lo/hi words), with segment checks. The high word is left
   * in this.linHi (always 0 outside 64-bit mode).
   */
  linear(seg: number, lo: number, hi: number, size: number, write: boolean): number {
    if (this.code64) {
      if (seg >= S.SEG_FS) {
        const s = this.s;
        const b = s[S.segWord(seg, S.SEG_BASE_LO)];
        const sum = (lo >>> 0) + (b >>> 0);
        hi = (hi + s[S.segWord(seg, S.SEG_BASE_HI)] + (sum > 0xffffffff ? 1 : 0)) | 0;
        lo = sum | 0;
      }
      if (((hi + 0x8000) & 0xffff0000) !== 0) this.fault(seg === S.SEG_SS ? S.VEC_SS : S.VEC_GP, 0, true);
      this.linHi = hi;
      return lo;
    }
    // A flat segment still has a limit: an access running past 4 GiB is #GP (#SS for SS).
    if (this.segFast[seg] === 0 || lo >>> 0 > 0x100000000 - size) this.sys.checkSegment(seg, lo, size, write);
    this.linHi = 0;
    return (lo + this.segBase[seg]) | 0;
  }

  // ---------------------------------------------------------------- memory: fast paths

  /**
   * The linear address of an access, high word in linHi: the flat cases inline (no base
   * outside FS/GS in 64-bit mode; a flat segment elsewhere), everything else through linear().
   */
  private accessLinear(seg: number, lo: number, hi: number, size: number, write: boolean): number {
    if (this.code64) {
      if (seg < S.SEG_FS && ((hi + 0x8000) & 0xffff0000) === 0) {
        this.linHi = hi;
        return lo;
      }
      return this.linear(seg, lo, hi, size, write);
    }
    this.linHi = 0;
    return this.segFast[seg] !== 0 && lo >>> 0 <= 0x100000000 - size
      ? (lo + this.segBase[seg]) | 0
      : this.linear(seg, lo, hi, size, write);
  }

  rd8(seg: number, lo: number, hi: number): number {
    const lin = this.accessLinear(seg, lo, hi, 1, false);
    const lh = this.linHi;
    const t = this.tlb;
    const i = tlbIndex(lin, lh);
    if (t.tagR[i] === (lin & ~0xfff) && t.tagHi[i] === lh) return this.u8[t.phys[i] + (lin & 0xfff)];
    return this.readSlow(lin, lh, 1);
  }

  rd16(seg: number, lo: number, hi: number): number {
    const lin = this.accessLinear(seg, lo, hi, 2, false);
    const lh = this.linHi;
    const t = this.tlb;
    const i = tlbIndex(lin, lh);
    if (t.tagR[i] === (lin & ~0xfff) && t.tagHi[i] === lh && (lin & 0xfff) !== 0xfff) {
      const pa = t.phys[i] + (lin & 0xfff);
      return (pa & 1) === 0 ? this.u16[pa >>> 1] : this.u8[pa] | (this.u8[pa + 1] << 8);
    }
    return this.readSlow(lin, lh, 2);
  }

  rd32(seg: number, lo: number, hi: number): number {
    const lin = this.accessLinear(seg, lo, hi, 4, false);
    const lh = this.linHi;
    const t = this.tlb;
    const i = tlbIndex(lin, lh);
    if (t.tagR[i] === (lin & ~0xfff) && t.tagHi[i] === lh && (lin & 0xfff) <= 0xffc) {
      const pa = t.phys[i] + (lin & 0xfff);
      return (pa & 3) === 0 ? this.i32[pa >>> 2] : this.dv.getInt32(pa, true);
    }
    return this.readSlow(lin, lh, 4);
  }

  /** Reads 64 bits: returns the low word, leaves the high word in this.hi. */
  rd64(seg: number, lo: number, hi: number): number {
    const lin = this.accessLinear(seg, lo, hi, 8, false);
    const lh = this.linHi;
    const t = this.tlb;
    const i = tlbIndex(lin, lh);
    if (t.tagR[i] === (lin & ~0xfff) && t.tagHi[i] === lh && (lin & 0xfff) <= 0xff8) {
      const pa = t.phys[i] + (lin & 0xfff);
      if ((pa & 7) === 0) {
        this.hi = this.i32[(pa >>> 2) + 1];
        return this.i32[pa >>> 2];
      }
      this.hi = this.dv.getInt32(pa + 4, true);
      return this.dv.getInt32(pa, true);
    }
    // Two 32-bit reads; both translations are checked before either is used.
    this.translateSpan(lin, lh, 8, 0);
    const lin2 = (lin + 4) | 0;
    const lh2 = lin2 >>> 0 < lin >>> 0 ? (lh + 1) | 0 : lh;
    const low = this.readSlow(lin, lh, 4);
    this.hi = this.readSlow(lin2, lh2, 4);
    return low;
  }

  wr8(seg: number, lo: number, hi: number, v: number): void {
    const lin = this.accessLinear(seg, lo, hi, 1, true);
    const lh = this.linHi;
    const t = this.tlb;
    const i = tlbIndex(lin, lh);
    if (t.tagW[i] === (lin & ~0xfff) && t.tagHi[i] === lh) {
      this.u8[t.phys[i] + (lin & 0xfff)] = v;
      return;
    }
    this.writeSlow(lin, lh, 1, v);
  }

  wr16(seg: number, lo: number, hi: number, v: number): void {
    const lin = this.accessLinear(seg, lo, hi, 2, true);
    const lh = this.linHi;
    const t = this.tlb;
    const i = tlbIndex(lin, lh);
    if (t.tagW[i] === (lin & ~0xfff) && t.tagHi[i] === lh && (lin & 0xfff) !== 0xfff) {
      const pa = t.phys[i] + (lin & 0xfff);
      if ((pa & 1) === 0) this.u16[pa >>> 1] = v;
      else {
        this.u8[pa] = v;
        this.u8[pa + 1] = v >> 8;
      }
      return;
    }
    this.writeSlow(lin, lh, 2, v);
  }

  wr32(seg: number, lo: number, hi: number, v: number): void {
    const lin = this.accessLinear(seg, lo, hi, 4, true);
    const lh = this.linHi;
    const t = this.tlb;
    const i = tlbIndex(lin, lh);
    if (t.tagW[i] === (lin & ~0xfff) && t.tagHi[i] === lh && (lin & 0xfff) <= 0xffc) {
      const pa = t.phys[i] + (lin & 0xfff);
      if ((pa & 3) === 0) this.i32[pa >>> 2] = v;
      else this.dv.setInt32(pa, v, true);
      return;
    }
    this.writeSlow(lin, lh, 4, v);
  }

  wr64(seg: number, lo: number, hi: number, vLo: number, vHi: number): void {
    const lin = this.accessLinear(seg, lo, hi, 8, true);
    const lh = this.linHi;
    const t = this.tlb;
    const i = tlbIndex(lin, lh);
    if (t.tagW[i] === (lin & ~0xfff) && t.tagHi[i] === lh && (lin & 0xfff) <= 0xff8) {
      const pa = t.phys[i] + (lin & 0xfff);
      this.dv.setInt32(pa, vLo, true);
      this.dv.setInt32(pa + 4, vHi, true);
      return;
    }
    const lin2 = (lin + 4) | 0;
    const lh2 = lin2 >>> 0 < lin >>> 0 ? (lh + 1) | 0 : lh;
    this.translateSpan(lin, lh, 8, 1);
    this.writeSlow(lin, lh, 4, vLo);
    this.writeSlow(lin2, lh2, 4, vHi);
  }

  /**
   * Checks, with write intent, that seg:off..off+size-1 can be written (read-modify-write
   * operands fault as writes). One TLB compare when the page is already writable.
   */
  checkWritable(seg: number, lo: number, hi: number, size: number): void {
    if (!this.code64 && this.segFast[seg] !== 0) {
      const lin = (lo + this.segBase[seg]) | 0;
      const i = ((lin >>> 12) ^ (lin >>> 26)) & TLB_MASK;
      if (this.tlb.tagW[i] === (lin & ~0xfff) && this.tlb.tagHi[i] === 0 && (lin & 0xfff) <= 0x1000 - size) return;
    }
    this.probeWrite(seg, lo, hi, size);
  }

  /** Checks that seg:off..off+size-1 is writable (for read-modify-write and multi-part stores). */
  probeWrite(seg: number, lo: number, hi: number, size: number): void {
    const lin = this.linear(seg, lo, hi, size, true);
    if (!this.code64 && lin >>> 0 > 0x100000000 - size) this.gp(0); // past the 4 GiB limit
    this.translateSpan(lin, this.code64 ? this.linHi : 0, size, 1);
  }

  /**
   * Translates every page of lin..lin+size-1 (at most two). A fault on the second page reports
   * that page's first byte, as hardware does.
   */
  translateSpan(lin: number, lh: number, size: number, access: number): void {
    this.translate(lin, lh, access);
    const last = (lin + size - 1) | 0;
    if ((last & ~0xfff) !== (lin & ~0xfff)) {
      this.translate(last & ~0xfff, last >>> 0 < lin >>> 0 ? (lh + 1) | 0 : lh, access);
    }
  }

  // ---------------------------------------------------------------- memory: slow paths

  /** Reads `size` bytes at a linear address, byte by byte across pages, MMIO included. */
  readSlow(lin: number, lh: number, size: number): number {
    if (this.watchingData) this.noteDataAccess(lin, lh, size, false);
    const end = (lin & 0xfff) + size;
    if (end > 0x1000) {
      if (!this.code64 && lin >>> 0 > 0x100000000 - size) this.gp(0); // past the 4 GiB limit
      // Crosses a page: translate both pages first so a fault leaves nothing half-done.
      const lin2 = (lin + size - 1) | 0;
      const lh2 = lin2 >>> 0 < lin >>> 0 ? (lh + 1) | 0 : lh;
      const pa1 = this.translate(lin, lh, 0);
      const pa2 = this.translate(lin2 & ~0xfff, lh2, 0);
      let v = 0;
      for (let k = 0; k < size; k++) {
        const off = (lin & 0xfff) + k;
        const pa = off < 0x1000 ? pa1 + k : pa2 + (off - 0x1000);
        v |= this.physRead8(pa) << (8 * k);
      }
      return size === 2 ? v & 0xffff : v;
    }
    const pa = this.translate(lin, lh, 0);
    return this.physRead(pa, size);
  }

  writeSlow(lin: number, lh: number, size: number, v: number): void {
    if (this.watchingData) this.noteDataAccess(lin, lh, size, true);
    const end = (lin & 0xfff) + size;
    if (end > 0x1000) {
      if (!this.code64 && lin >>> 0 > 0x100000000 - size) this.gp(0); // past the 4 GiB limit
      const lin2 = (lin + size - 1) | 0;
      const lh2 = lin2 >>> 0 < lin >>> 0 ? (lh + 1) | 0 : lh;
      const pa1 = this.translate(lin, lh, 1);
      const pa2 = this.translate(lin2 & ~0xfff, lh2, 1);
      for (let k = 0; k < size; k++) {
        const off = (lin & 0xfff) + k;
        const pa = off < 0x1000 ? pa1 + k : pa2 + (off - 0x1000);
        this.physWrite8(pa, v >>> (8 * k));
      }
      return;
    }
    const pa = this.translate(lin, lh, 1);
    this.physWrite(pa, size, v);
  }

  physRead8(pa: number): number {
    pa >>>= 0;
    if (pa < this.ramBytes && !(this.mem.isMmio?.(pa & ~0xfff) ?? false)) return this.u8[pa];
    return this.mem.mmioRead(pa >>> 0, 1) & 0xff;
  }

  physRead(pa: number, size: number): number {
    pa >>>= 0;
    if (pa + size <= this.ramBytes && !(this.mem.isMmio?.(pa & ~0xfff) ?? false)) {
      if (size === 1) return this.u8[pa];
      if (size === 2) return this.dv.getUint16(pa, true);
      return this.dv.getInt32(pa, true);
    }
    return this.mem.mmioRead(pa >>> 0, size as 1 | 2 | 4);
  }

  physWrite8(pa: number, v: number): void {
    pa >>>= 0;
    if (this.writeHook?.(pa, 1, v & 0xff)) return;
    if (pa < this.ramBytes && !(this.mem.isMmio?.(pa & ~0xfff) ?? false)) {
      this.noteCodeWrite(pa);
      this.u8[pa] = v;
    } else this.mem.mmioWrite(pa >>> 0, 1, v & 0xff);
  }

  physWrite(pa: number, size: number, v: number): void {
    pa >>>= 0;
    if (this.writeHook?.(pa, size, size === 4 ? v >>> 0 : v & (size === 1 ? 0xff : 0xffff))) return;
    if (pa + size <= this.ramBytes && !(this.mem.isMmio?.(pa & ~0xfff) ?? false)) {
      this.noteCodeWrite(pa);
      if (size === 1) this.u8[pa] = v;
      else if (size === 2) this.dv.setUint16(pa, v, true);
      else this.dv.setInt32(pa, v, true);
    } else this.mem.mmioWrite(pa >>> 0, size as 1 | 2 | 4, size === 4 ? v >>> 0 : v & (size === 1 ? 0xff : 0xffff));
  }

  /** Physical read of 32 bits for the page walker and descriptor tables (RAM only; else all ones). */
  phys32(pa: number): number {
    pa >>>= 0;
    if (pa + 4 <= this.ramBytes) return this.dv.getInt32(pa, true);
    return this.mem.mmioRead(pa >>> 0, 4) | 0;
  }
  setPhys32(pa: number, v: number): void {
    pa >>>= 0;
    if (pa + 4 <= this.ramBytes) {
      this.noteCodeWrite(pa);
      this.dv.setInt32(pa, v, true);
    } else this.mem.mmioWrite(pa >>> 0, 4, v >>> 0);
  }

  /** A store is about to land on physical address pa: drop decoded code on that page first. */
  noteCodeWrite(pa: number): void {
    const page = pa >>> 12;
    if (this.codePages[page] !== 0) this.invalidateCodePage(page);
  }

  /** Invalidate every decoded block on a physical page (called by stores and by the owner). */
  invalidateCodePage(page: number): void {
    this.code.invalidate(page);
  }

  /** This processor is going away: stop tracking it (its blocks die with it). */
  dispose(): void {
    this.code.cpus.delete(this);
  }

  /** The owner changed guest memory behind the processor's back (DMA, loader): forget decoded code. */
  invalidatePhysRange(pa: number, len: number): void {
    const first = pa >>> 12;
    const last = (pa + len - 1) >>> 12;
    for (let p = first; p <= last && p < this.codePages.length; p++) if (this.codePages[p]) this.invalidateCodePage(p);
  }

  // ---------------------------------------------------------------- paging

  /**
   * Translates a linear address for an access by the current privilege: access 0 = read,
   * 1 = write, 2 = execute. Fills the TLB. Returns the physical address or faults with #PF.
   */
  translate(lin: number, lh: number, access: number): number {
    if (access === 1 && this.writeThroughReadOnly) return this.translateAs(lin, lh, 0, this.cpl === 3, false);
    return this.translateAs(lin, lh, access, this.cpl === 3, true);
  }

  /**
   * Walks the page tables. `user`: the access is a user-mode access. `fill`: cache the result
   * in the TLB of that privilege.
   */
  translateAs(lin: number, lh: number, access: number, user: boolean, fill: boolean): number {
    const page = lin & ~0xfff;
    if (this.pagingMode === 0) {
      const pa = page & this.s[S.A20_MASK];
      if (fill) this.fillTlb(lin, lh, pa, true, true, false, user);
      return pa | (lin & 0xfff);
    }
    const r = this.sys.walk(lin, lh, access, user);
    // walk() faults on violation; r encodes the physical page and permissions.
    // Machine memory ends below 4 GiB: a page above it is unbacked, and is sent to the top
    // page of the 32-bit space (never RAM) rather than truncated onto low memory.
    const pa = this.walkPhys > 0xfffff000 ? 0xfffff000 | 0 : this.walkPhys | 0;
    if (fill) this.fillTlb(lin, lh, pa, (r & 1) !== 0, (r & 2) !== 0, (r & 4) !== 0, user);
    return pa | (lin & 0xfff);
  }
  /** Set by SystemUnit.walk(): the physical page of the last successful walk. */
  walkPhys = 0;

  private fillTlb(lin: number, lh: number, pa: number, writable: boolean, executable: boolean, global: boolean, user: boolean): void {
    const t = user ? this.tlbUser : this.tlbSup;
    const i = tlbIndex(lin, lh);
    const ram = pa >= 0 && pa + 4096 <= this.ramBytes && !(this.mem.isMmio?.(pa) ?? false); // pa < 2^31 here (RAM < 2 GiB for the TLB)
    const tag = lin & ~0xfff;
    if (!ram || this.watchingData) {
      t.clear(i);
      return;
    }
    t.tagR[i] = tag;
    t.tagW[i] = writable && this.codePages[pa >>> 12] === 0 && this.writeHook === null ? tag : TLB_INVALID;
    t.tagX[i] = executable ? tag : TLB_INVALID;
    t.tagHi[i] = lh;
    t.phys[i] = pa;
    t.global[i] = global ? 1 : 0;
    t.note(i);
  }

  /** Bumped whenever translations may change; links between blocks are only followed within one generation. */
  tlbGen = 0;

  flushTlb(keepGlobal: boolean): void {
    this.tlbGen++;
    this.tlbUser.flush(keepGlobal);
    this.tlbSup.flush(keepGlobal);
  }

  flushTlbPage(lin: number, lh: number): void {
    this.tlbGen++;
    const i = tlbIndex(lin, lh);
    this.tlbUser.clear(i);
    this.tlbSup.clear(i);
  }

  /** Drops the write tags that map physical page pa (it now holds decoded code). */
  dropWriteTags(pa: number): void {
    for (const t of [this.tlbUser, this.tlbSup]) {
      if (t.overflow) {
        for (let i = 0; i < TLB_SIZE; i++) if (t.phys[i] === pa) t.tagW[i] = TLB_INVALID;
      } else {
        for (let k = 0; k < t.usedCount; k++) {
          const i = t.used[k];
          if (t.phys[i] === pa) t.tagW[i] = TLB_INVALID;
        }
      }
    }
  }

  // ---------------------------------------------------------------- instruction fetch and blocks

  /** Physical address for an instruction fetch at a linear address. */
  private fetchTranslate(lin: number, lh: number): number {
    const t = this.tlb;
    const i = tlbIndex(lin, lh);
    if (t.tagX[i] === (lin & ~0xfff) && t.tagHi[i] === lh) return t.phys[i] + (lin & 0xfff);
    return this.translate(lin, lh, 2);
  }

  private findBlock(): Block {
    const s = this.s;
    let lin: number;
    let lh: number;
    if (this.code64) {
      lin = s[S.RIP_LO];
      lh = s[S.RIP_HI];
      if (((lh + 0x8000) & 0xffff0000) !== 0) this.gp(0);
    } else {
      const eip = s[S.RIP_LO];
      if (eip >>> 0 > s[S.segWord(S.SEG_CS, S.SEG_LIMIT)] >>> 0) this.gp(0);
      lin = (eip + this.segBase[S.SEG_CS]) | 0;
      lh = 0;
    }
    const h = (lin ^ (lin >>> 13) ^ lh) & (BLOCK_CACHE_SIZE - 1);
    const b = this.blockCache[h];
    if (
      b !== undefined &&
      b.lin === lin &&
      b.eipLo === s[S.RIP_LO] &&
      b.linHi === lh &&
      b.mode === this.modeKey &&
      b.valid
    ) {
      const t = this.tlb;
      const i = tlbIndex(lin, lh);
      if (t.tagX[i] === (lin & ~0xfff) && t.tagHi[i] === lh && t.phys[i] === b.phys) return b;
      if ((this.translate(lin, lh, 2) & ~0xfff) === b.phys) return b;
    }
    const nb = this.buildBlock(lin, lh);
    this.blockCache[h] = nb;
    return nb;
  }

  private buildBlock(lin: number, lh: number): Block {
    const s = this.s;
    const pa0 = this.fetchTranslate(lin, lh);
    const block = new Block(lin, lh, s[S.RIP_LO], s[S.RIP_HI], this.modeKey, pa0 & ~0xfff, -1);
    const offs: number[] = [];
    const uops = this.uopScratch;
    let off = 0;
    const d = this.scratchInsn;
    const ripLo = s[S.RIP_LO];
    const ripHi = s[S.RIP_HI];
    const code64 = this.code64;
    const csLimit = s[S.segWord(S.SEG_CS, S.SEG_LIMIT)] >>> 0;
    let curPage = lin & ~0xfff;
    let curPa = pa0 & ~0xfff;
    const fetchAt = (base: number) => (k: number): number => {
      const o = base + k;
      const l = (lin + o) | 0;
      if (!code64 && ((ripLo + o) >>> 0) > csLimit) return -1;
      if ((l & ~0xfff) === curPage) return this.physRead8(curPa + (l & 0xfff));
      // Crossing into the next page: translate it (may fault, which the caller turns into -1;
      // the fault is not delivered, so CR2 must not change).
      const cr2Lo = s[S.CR2_LO];
      const cr2Hi = s[S.CR2_HI];
      try {
        const lh2 = code64 && l >>> 0 < lin >>> 0 ? (lh + 1) | 0 : lh;
        const pa = this.fetchTranslate(l, lh2);
        if (block.phys2 === -1 && (pa & ~0xfff) !== block.phys) block.phys2 = pa & ~0xfff;
        return this.physRead8(pa);
      } catch (e) {
        if (e !== GUEST_FAULT) throw e;
        s[S.CR2_LO] = cr2Lo;
        s[S.CR2_HI] = cr2Hi;
        return -1;
      }
    };
    // With the block compiler off (it traces through calls itself and reads blocks as contiguous
    // code), a direct CALL to the block's own page continues the block at its target, and the
    // callee's RET continues it after the call when it pops what the call pushed (uops.ts
    // U_CALL32_IN, U_RET32_PRED): a loop that calls a small function is one block. One level.
    const followCalls = this.jitThreshold === 0 && !code64;
    let retOff = -1; // inside a followed callee: where the block goes on after its RET
    let retAddr = 0; // and the return address that RET must pop
    let followed = false;
    while (block.fns.length < MAX_BLOCK_INSNS) {
      const first = block.fns.length === 0;
      const savedVec = this.pendingVector;
      decode(fetchAt(off), code64, this.csD, d);
      if (d.fault !== FAULT_NONE) {
        if (!first) break; // end the block before the bad instruction; it faults when reached
        if (d.fault === FAULT_FETCH) {
          // Re-raise the fetch fault at its address.
          const l = (lin + d.faultOffset) | 0;
          if (!code64 && ((ripLo + d.faultOffset) >>> 0) > csLimit) this.gp(0);
          this.pendingVector = savedVec;
          this.fetchTranslate(l, code64 && l >>> 0 < lin >>> 0 ? (lh + 1) | 0 : lh);
          this.gp(0); // unreachable unless the page became valid meanwhile
        }
        if (d.fault === FAULT_TOO_LONG) this.gp(0);
        this.ud();
      }
      const startLo = (ripLo + off) | 0;
      const startHi = code64 && startLo >>> 0 < ripLo >>> 0 ? (ripHi + 1) | 0 : ripHi;
      const nextLo = (startLo + d.len) | 0;
      const nextHi = code64 && nextLo >>> 0 < startLo >>> 0 ? (startHi + 1) | 0 : startHi;
      block.fns.push(compileInsn(this, d, startLo, startHi, nextLo, nextHi));
      if (this.microOps) uops.set(UOP, (block.fns.length - 1) * U.UOP_STRIDE);
      else uops.fill(U.U_CLOSURE, (block.fns.length - 1) * U.UOP_STRIDE, block.fns.length * U.UOP_STRIDE);
      block.insns?.push(Object.assign(new Insn(), d));
      offs.push(off);
      off += d.len;
      let ends = d.entry!.endsBlock;
      if (ends && followCalls) {
        const last = block.fns.length - 1;
        const q = last * U.UOP_STRIDE;
        if (UOP[0] === U.U_CALL32 && retOff < 0 && ((lin + ((UOP[2] - ripLo) | 0)) & ~0xfff) === curPage) {
          const call = block.fns[last];
          block.fns[last] = () => (call() === 1 ? 0 : 1); // it pushed; the block goes on at the target
          if (this.microOps) uops[q] = U.U_CALL32_IN;
          retAddr = UOP[1];
          retOff = off;
          off = (UOP[2] - ripLo) | 0;
          ends = false;
          followed = true;
        } else if (UOP[0] === U.U_RET32 && retOff >= 0) {
          const ret = block.fns[last];
          const expected = retAddr;
          // Returned where the call left off: go on; anywhere else: a branch there.
          block.fns[last] = () => (ret() === 1 && s[S.RIP_LO] === expected ? 0 : 1);
          if (this.microOps) {
            uops[q] = U.U_RET32_PRED;
            uops[q + 1] = expected;
          }
          off = retOff;
          retOff = -1;
          ends = false;
        }
      }
      if (ends) break;
      if (((lin + off) & ~0xfff) !== curPage) break;
    }
    // The block compiler reads blocks as contiguous code: never hand it one that follows a call.
    if (followed) block.insns = null;
    offs.push(off);
    block.n = block.fns.length;
    block.offs = Int32Array.from(offs);
    fuseUops(uops, block.n);
    for (let q = 0; q < block.n * U.UOP_STRIDE; q += U.UOP_STRIDE) {
      const kind = uops[q];
      if ((uops[q + 7] & U.UF_EA64) !== 0) {
        if (kind === U.U_LOADX8 || kind === U.U_LOADX16 || kind === U.U_ALU_M32) uops[q] = U.U_CLOSURE;
        continue;
      }
      if (kind === U.U_LOAD32) uops[q] = U.U_LOAD32_A32;
      else if (kind === U.U_STORE32) uops[q] = U.U_STORE32_A32;
    }
    if (block.n > 0) {
      // The final branch goes back to the block's start: mark it (uops.ts, self-loops).
      const q = (block.n - 1) * U.UOP_STRIDE;
      if (uops[q] === U.U_JCC && uops[q + 2] === block.eipLo && uops[q + 3] === block.eipHi) uops[q + 6] = 1;
      if (uops[q] === U.U_JMP && uops[q + 1] === block.eipLo && (uops[q + 3] === 0 || uops[q + 2] === block.eipHi)) uops[q + 4] = 1;
    }
    uops.fill(0, block.n * U.UOP_STRIDE, (block.n + 1) * U.UOP_STRIDE);
    uops[block.n * U.UOP_STRIDE] = U.U_END;
    block.uops = uops.slice(0, (block.n + 1) * U.UOP_STRIDE);
    curPage = 0;
    curPa = 0;
    void curPage;
    void curPa;
    for (const p of [block.phys, block.phys2]) {
      if (p < 0 || p >= this.ramBytes) continue;
      const pg = p >>> 12;
      this.code.mark(pg);
      this.code.add(pg, block);
    }
    return block;
  }

  /** High word of the address computed by ea64(). */
  private eaHi = 0;

  /** The 64-bit address of a memory micro-op record (compile.ts makeEA); the high word in eaHi. */
  private ea64(u: Int32Array, p: number): number {
    const s = this.s;
    const bw = u[p + 2];
    const iw = u[p + 3];
    const sc = u[p + 4];
    let bl = 0;
    let bh = 0;
    let il = 0;
    let ih = 0;
    if (bw >= 0) {
      bl = s[bw];
      bh = s[bw + 1];
    }
    if (iw >= 0) {
      il = s[iw];
      ih = sc === 0 ? s[iw + 1] : (s[iw + 1] << sc) | (il >>> (32 - sc));
    }
    const t1 = (bl >>> 0) + ((il << sc) >>> 0);
    const t2 = (t1 >>> 0) + (u[p + 5] >>> 0);
    this.eaHi = (bh + ih + u[p + 6] + (t1 > 0xffffffff ? 1 : 0) + (t2 > 0xffffffff ? 1 : 0)) | 0;
    return t2 | 0;
  }

  /** The instruction index at which runUops() was left by a fault. */
  private uopIndex = 0;
  /** The block runUops() ended in (it follows linked successors). */
  private uopBlock: Block | null = null;

  /**
   * Runs block b's micro-op records (uops.ts) with one switch; U_CLOSURE calls the closure.
   * Returns (index << 2) | code: the closure return code (0 = fell off the end at the
   * index, 1 = near branch by the instruction at the index, 2/3 as closures). A fault leaves
   * the index of the faulting instruction in uopIndex. Kept out of runBlocks: its size and its
   * deoptimisations stay out of the block compiler's path. The record after the last
   * instruction is U_END; a store that invalidates the block turns every record into U_END,
   * so it stops after the current instruction.
   */
  private runUops(b0: Block, end: number, selfLoop: boolean): number {
    const s = this.s;
    let b = b0;
    let i = 0;
    let r = 0;
    {
      let u = b.uops;
      let gen = this.tlbGen;
      run: for (i = 0; ; i++) {
        let p = i << 3 /* i * UOP_STRIDE */;
        if (FAST_UOPS[u[p]] !== 0) {
          // runFast takes the records it can; it hands back the one it cannot finish.
          const v = this.runFast(b, i, end, selfLoop, gen);
          b = this.uopBlock as Block;
          u = b.uops;
          gen = this.uopGen;
          i = v >> 2;
          if ((v & 3) !== 3) {
            r = v & 3;
            break;
          }
          p = i << 3;
        }
        switch (u[p]) {
          case 1 /* U_ADD_RR32 */: {
            const w = u[p + 1];
            const v = s[u[p + 2]];
            const x = (s[w] + v) | 0;
            s[35 /* CC_OP */] = CC_ADD32; s[38 /* CC_SRC */] = v; s[36 /* CC_DST */] = x; s[w] = x; s[w + 1] = 0;
            continue;
          }
          case 2 /* U_ADD_RI32 */: {
            const w = u[p + 1];
            const v = u[p + 2];
            const x = (s[w] + v) | 0;
            s[35 /* CC_OP */] = CC_ADD32; s[38 /* CC_SRC */] = v; s[36 /* CC_DST */] = x; s[w] = x; s[w + 1] = 0;
            continue;
          }
          case 3 /* U_SUB_RR32 */: {
            const w = u[p + 1];
            const v = s[u[p + 2]];
            const x = (s[w] - v) | 0;
            s[35 /* CC_OP */] = CC_SUB32; s[38 /* CC_SRC */] = v; s[36 /* CC_DST */] = x;
            if (u[p + 3] !== 0) { s[w] = x; s[w + 1] = 0; }
            continue;
          }
          case 4 /* U_SUB_RI32 */: {
            const w = u[p + 1];
            const v = u[p + 2];
            const x = (s[w] - v) | 0;
            s[35 /* CC_OP */] = CC_SUB32; s[38 /* CC_SRC */] = v; s[36 /* CC_DST */] = x;
            if (u[p + 3] !== 0) { s[w] = x; s[w + 1] = 0; }
            continue;
          }
          case 5 /* U_ALU_RR32 */: {
            const w = u[p + 1];
            const x = alu(s, u[p + 3], 2, s[w], s[u[p + 2]]);
            if (u[p + 4] !== 0) { s[w] = x; s[w + 1] = 0; }
            continue;
          }
          case 6 /* U_ALU_RI32 */: {
            const w = u[p + 1];
            const x = alu(s, u[p + 3], 2, s[w], u[p + 2]);
            if (u[p + 4] !== 0) { s[w] = x; s[w + 1] = 0; }
            continue;
          }
          case 7 /* U_XOR_ZERO32 */: {
            const w = u[p + 1];
            s[35 /* CC_OP */] = CC_LOGIC32; s[36 /* CC_DST */] = 0; s[w] = 0; s[w + 1] = 0;
            continue;
          }
          case 8 /* U_INCDEC32 */: {
            const w = u[p + 1];
            // getCF, with the common producers inline.
            const op = s[35 /* CC_OP */];
            const c =
              op === CC_ADD32 ? ((s[36 /* CC_DST */] >>> 0) < (s[38 /* CC_SRC */] >>> 0) ? 1 : 0)
              : op === CC_SUB32 ? (((s[36 /* CC_DST */] + s[38 /* CC_SRC */]) >>> 0) < (s[38 /* CC_SRC */] >>> 0) ? 1 : 0)
              : op >> 3 === 3 /* CC_INC, CC_DEC */ ? s[38 /* CC_SRC */] & 1
              : op >> 2 === 5 /* CC_LOGIC */ ? 0
              : getCF(s);
            const x = (s[w] + u[p + 2]) | 0;
            s[38 /* CC_SRC */] = c; s[35 /* CC_OP */] = u[p + 3]; s[36 /* CC_DST */] = x; s[w] = x; s[w + 1] = 0;
            continue;
          }
          case 9 /* U_MOV_RR32 */: {
            const w = u[p + 1];
            s[w] = s[u[p + 2]]; s[w + 1] = 0;
            continue;
          }
          case 10 /* U_MOV_RI32 */: {
            const w = u[p + 1];
            s[w] = u[p + 2]; s[w + 1] = 0;
            continue;
          }
          case 11 /* U_LOAD32 */:
          case 38 /* U_LOAD32_A32 */: {
            // The TLB fast path of rd32 inline (a flat segment, or no base in 64-bit mode).
            // The address (compile.ts makeEA), high word in eah: 32-bit addressing.
            let a: number;
            let eah: number;
            if ((u[p + 7] & 256 /* UF_EA64 */) === 0) {
              const bw = u[p + 2];
              const iw = u[p + 3];
              a = u[p + 5];
              if (bw >= 0) a += s[bw];
              if (iw >= 0) a += s[iw] << u[p + 4];
              a |= 0;
              eah = 0;
            } else {
              a = this.ea64(u, p);
              eah = this.eaHi;
            }
            const sg = u[p + 7] & 0xff;
            let lin = a;
            let lh = eah;
            let ok: boolean;
            if (this.code64) ok = sg < 4 && ((lh + 0x8000) & 0xffff0000) === 0;
            else {
              ok = this.segFast[sg] !== 0 && a >>> 0 <= 0xfffffffc;
              lin = (a + this.segBase[sg]) | 0;
              lh = 0;
            }
            const t = this.tlb;
            const k = ((lin >>> 12) ^ (lin >>> 26) ^ ((lh & 0xffff) << 2)) & TLB_MASK;
            let v: number;
            if (ok && t.tagR[k] === (lin & ~0xfff) && t.tagHi[k] === lh && (lin & 0xfff) <= 0xffc) {
              const pa = t.phys[k] + (lin & 0xfff);
              v = (pa & 3) === 0 ? this.i32[pa >>> 2] : this.dv.getInt32(pa, true);
            } else { this.uopIndex = i; this.uopBlock = b; v = this.rd32(sg, a, eah); }
            const w = u[p + 1];
            s[w] = v; s[w + 1] = 0;
            continue;
          }
          case 12 /* U_STORE32 */:
          case 39 /* U_STORE32_A32 */: {
            // The address (compile.ts makeEA), high word in eah: 32-bit addressing.
            let a: number;
            let eah: number;
            if ((u[p + 7] & 256 /* UF_EA64 */) === 0) {
              const bw = u[p + 2];
              const iw = u[p + 3];
              a = u[p + 5];
              if (bw >= 0) a += s[bw];
              if (iw >= 0) a += s[iw] << u[p + 4];
              a |= 0;
              eah = 0;
            } else {
              a = this.ea64(u, p);
              eah = this.eaHi;
            }
            const sg = u[p + 7] & 0xff;
            const v = s[u[p + 1]];
            let lin = a;
            let lh = eah;
            let ok: boolean;
            if (this.code64) ok = sg < 4 && ((lh + 0x8000) & 0xffff0000) === 0;
            else {
              ok = this.segFast[sg] !== 0 && a >>> 0 <= 0xfffffffc;
              lin = (a + this.segBase[sg]) | 0;
              lh = 0;
            }
            const t = this.tlb;
            const k = ((lin >>> 12) ^ (lin >>> 26) ^ ((lh & 0xffff) << 2)) & TLB_MASK;
            if (ok && t.tagW[k] === (lin & ~0xfff) && t.tagHi[k] === lh && (lin & 0xfff) <= 0xffc) {
              const pa = t.phys[k] + (lin & 0xfff);
              if ((pa & 3) === 0) this.i32[pa >>> 2] = v;
              else this.dv.setInt32(pa, v, true);
            } else { this.uopIndex = i; this.uopBlock = b; this.wr32(sg, a, eah, v); }
            continue;
          }
          case 13 /* U_LEA */: {
            // The address (compile.ts makeEA), high word in eah: 32-bit addressing.
            let a: number;
            let eah: number;
            if ((u[p + 7] & 256 /* UF_EA64 */) === 0) {
              const bw = u[p + 2];
              const iw = u[p + 3];
              a = u[p + 5];
              if (bw >= 0) a += s[bw];
              if (iw >= 0) a += s[iw] << u[p + 4];
              a |= 0;
              eah = 0;
            } else {
              a = this.ea64(u, p);
              eah = this.eaHi;
            }
            const w = u[p + 1];
            s[w] = a; s[w + 1] = (u[p + 7] & 512 /* UF_OS64 */) !== 0 ? eah : 0;
            continue;
          }
          case 14 /* U_PUSH32 */: {
            const n = (s[8] - 4) | 0;
            const v = s[u[p + 1]];
            const lin = (n + this.segBase[2 /* SEG_SS */]) | 0;
            const t = this.tlb;
            const k = ((lin >>> 12) ^ (lin >>> 26)) & TLB_MASK;
            const ok = this.segFast[2 /* SEG_SS */] !== 0 && n >>> 0 <= 0xfffffffc && t.tagHi[k] === 0 && (lin & 0xfff) <= 0xffc;
            if (ok && t.tagW[k] === (lin & ~0xfff)) {
              const pa = t.phys[k] + (lin & 0xfff);
              if ((pa & 3) === 0) this.i32[pa >>> 2] = v;
              else this.dv.setInt32(pa, v, true);
            } else { this.uopIndex = i; this.uopBlock = b; this.wr32(2 /* SEG_SS */, n, 0, v); }
            s[8] = n; s[9] = 0;
            continue;
          }
          case 15 /* U_POP32 */: {
            const n = s[8];
            const lin = (n + this.segBase[2 /* SEG_SS */]) | 0;
            const t = this.tlb;
            const k = ((lin >>> 12) ^ (lin >>> 26)) & TLB_MASK;
            const ok = this.segFast[2 /* SEG_SS */] !== 0 && n >>> 0 <= 0xfffffffc && t.tagHi[k] === 0 && (lin & 0xfff) <= 0xffc;
            let v: number;
            if (ok && t.tagR[k] === (lin & ~0xfff)) {
              const pa = t.phys[k] + (lin & 0xfff);
              v = (pa & 3) === 0 ? this.i32[pa >>> 2] : this.dv.getInt32(pa, true);
            } else { this.uopIndex = i; this.uopBlock = b; v = this.rd32(2 /* SEG_SS */, n, 0); }
            s[8] = (s[8] + 4) | 0; s[9] = 0;
            const w = u[p + 1];
            s[w] = v; s[w + 1] = 0;
            continue;
          }
          case 16 /* U_CALL32 */: {
            const n = (s[8] - 4) | 0;
            const v = u[p + 1];
            const lin = (n + this.segBase[2 /* SEG_SS */]) | 0;
            const t = this.tlb;
            const k = ((lin >>> 12) ^ (lin >>> 26)) & TLB_MASK;
            const ok = this.segFast[2 /* SEG_SS */] !== 0 && n >>> 0 <= 0xfffffffc && t.tagHi[k] === 0 && (lin & 0xfff) <= 0xffc;
            if (ok && t.tagW[k] === (lin & ~0xfff)) {
              const pa = t.phys[k] + (lin & 0xfff);
              if ((pa & 3) === 0) this.i32[pa >>> 2] = v;
              else this.dv.setInt32(pa, v, true);
            } else { this.uopIndex = i; this.uopBlock = b; this.wr32(2 /* SEG_SS */, n, 0, v); }
            s[8] = n; s[9] = 0;
            s[32 /* RIP_LO */] = u[p + 2];
            r = 1;
            break;
          }
          case 17 /* U_RET32 */: {
            const n = s[8];
            const lin = (n + this.segBase[2 /* SEG_SS */]) | 0;
            const t = this.tlb;
            const k = ((lin >>> 12) ^ (lin >>> 26)) & TLB_MASK;
            const ok = this.segFast[2 /* SEG_SS */] !== 0 && n >>> 0 <= 0xfffffffc && t.tagHi[k] === 0 && (lin & 0xfff) <= 0xffc;
            let v: number;
            if (ok && t.tagR[k] === (lin & ~0xfff)) {
              const pa = t.phys[k] + (lin & 0xfff);
              v = (pa & 3) === 0 ? this.i32[pa >>> 2] : this.dv.getInt32(pa, true);
            } else { this.uopIndex = i; this.uopBlock = b; v = this.rd32(2 /* SEG_SS */, n, 0); }
            s[8] = (s[8] + 4) | 0; s[9] = 0;
            s[32 /* RIP_LO */] = v;
            r = 1;
            break;
          }
          case 18 /* U_JCC */: {
            const cc = u[p + 1];
            let taken: boolean;
            if ((cc & 0xe) === 4) {
              // JZ/JNZ: ZF of a 32-bit result inline.
              const op = s[35 /* CC_OP */];
              const zf = op < 4 ? getZF(s) !== 0 : (op & 3) === 2 ? s[36 /* CC_DST */] === 0 : (op & 3) === 3 ? (s[36 /* CC_DST */] | s[37 /* CC_DST + 1 */]) === 0 : getZF(s) !== 0;
              taken = cc === 4 ? zf : !zf;
            } else taken = testCond(s, cc);
            if (taken) {
              s[32 /* RIP_LO */] = u[p + 2]; s[33 /* RIP_HI */] = u[p + 3];
              if (u[p + 6] !== 0 && selfLoop && this.retired + i + 1 < end && !this.eventCheck && this.tlbGen === gen && this.modeKey === b.mode) {
                // Back to the block's own start: the next iteration without leaving the switch.
                this.retired += i + 1;
                i = -1;
                continue run;
              }
            } else { s[32 /* RIP_LO */] = u[p + 4]; s[33 /* RIP_HI */] = u[p + 5]; }
            r = 1;
            break;
          }
          case 19 /* U_JMP */: {
            s[32 /* RIP_LO */] = u[p + 1];
            if (u[p + 3] !== 0) s[33 /* RIP_HI */] = u[p + 2];
            if (u[p + 4] !== 0 && selfLoop && this.retired + i + 1 < end && !this.eventCheck && this.tlbGen === gen && this.modeKey === b.mode) {
                // Back to the block's own start: the next iteration without leaving the switch.
                this.retired += i + 1;
                i = -1;
                continue run;
              }
            r = 1;
            break;
          }
          case 20 /* U_ALU_RR64 */: {
            const w = u[p + 1];
            const bw = u[p + 2];
            const op = u[p + 3];
            if (op === 0 || op === 5 || op === 7) {
              // alu64's ADD and SUB/CMP inline.
              const bl = s[bw];
              const bh = s[bw + 1];
              let lo: number;
              let hi: number;
              if (op === 0) {
                const sum = (s[w] >>> 0) + (bl >>> 0);
                hi = (s[w + 1] + bh + (sum > 0xffffffff ? 1 : 0)) | 0;
                lo = sum | 0;
                s[35 /* CC_OP */] = CC_ADD64;
              } else {
                const dif = (s[w] >>> 0) - (bl >>> 0);
                hi = (s[w + 1] - bh - (dif < 0 ? 1 : 0)) | 0;
                lo = dif | 0;
                s[35 /* CC_OP */] = CC_SUB64;
              }
              s[38 /* CC_SRC */] = bl; s[39 /* CC_SRC + 1 */] = bh; s[36 /* CC_DST */] = lo; s[37 /* CC_DST + 1 */] = hi;
              if (u[p + 4] !== 0) { s[w] = lo; s[w + 1] = hi; }
              continue;
            }
            const x = alu64(s, op, s[w], s[w + 1], s[bw], s[bw + 1]);
            if (u[p + 4] !== 0) { s[w] = x; s[w + 1] = lastHigh(); }
            continue;
          }
          case 21 /* U_ALU_RI64 */: {
            const w = u[p + 1];
            const op = u[p + 4];
            if (op === 0 || op === 5 || op === 7) {
              const bl = u[p + 2];
              const bh = u[p + 3];
              let lo: number;
              let hi: number;
              if (op === 0) {
                const sum = (s[w] >>> 0) + (bl >>> 0);
                hi = (s[w + 1] + bh + (sum > 0xffffffff ? 1 : 0)) | 0;
                lo = sum | 0;
                s[35 /* CC_OP */] = CC_ADD64;
              } else {
                const dif = (s[w] >>> 0) - (bl >>> 0);
                hi = (s[w + 1] - bh - (dif < 0 ? 1 : 0)) | 0;
                lo = dif | 0;
                s[35 /* CC_OP */] = CC_SUB64;
              }
              s[38 /* CC_SRC */] = bl; s[39 /* CC_SRC + 1 */] = bh; s[36 /* CC_DST */] = lo; s[37 /* CC_DST + 1 */] = hi;
              if (u[p + 5] !== 0) { s[w] = lo; s[w + 1] = hi; }
              continue;
            }
            const x = alu64(s, op, s[w], s[w + 1], u[p + 2], u[p + 3]);
            if (u[p + 5] !== 0) { s[w] = x; s[w + 1] = lastHigh(); }
            continue;
          }
          case 22 /* U_INCDEC64 */:
          case 37 /* U_INCDEC64_JCC */: {
            const w = u[p + 1];
            const op = s[35 /* CC_OP */];
            const c =
              op === CC_ADD64 ? (s[37 /* CC_DST + 1 */] >>> 0 < s[39 /* CC_SRC + 1 */] >>> 0 || (s[37 /* CC_DST + 1 */] === s[39 /* CC_SRC + 1 */] && s[36 /* CC_DST */] >>> 0 < s[38 /* CC_SRC */] >>> 0) ? 1 : 0)
              : op === CC_ADD32 ? ((s[36 /* CC_DST */] >>> 0) < (s[38 /* CC_SRC */] >>> 0) ? 1 : 0)
              : op >> 3 === 3 /* CC_INC, CC_DEC */ ? s[38 /* CC_SRC */] & 1
              : op >> 2 === 5 /* CC_LOGIC */ ? 0
              : getCF(s);
            let lo: number;
            let hi = s[w + 1];
            if (u[p + 2] !== 0) {
              lo = (s[w] + 1) | 0;
              if (lo === 0) hi = (hi + 1) | 0;
            } else {
              lo = (s[w] - 1) | 0;
              if (lo === -1) hi = (hi - 1) | 0;
            }
            s[38 /* CC_SRC */] = c; s[35 /* CC_OP */] = u[p + 3]; s[36 /* CC_DST */] = lo; s[37 /* CC_DST + 1 */] = hi;
            s[w] = lo; s[w + 1] = hi;
            if (u[p] === 22) continue;
            // The fused JCC (record i + 1).
            i++;
            const cc = u[p + 9];
            const taken = cc === 5 ? (lo | hi) !== 0 : cc === 4 ? (lo | hi) === 0 : testCond(s, cc);
            if (taken) {
              s[32 /* RIP_LO */] = u[p + 10]; s[33 /* RIP_HI */] = u[p + 11];
              if (u[p + 14] !== 0 && selfLoop && this.retired + i + 1 < end && !this.eventCheck && this.tlbGen === gen && this.modeKey === b.mode) {
                this.retired += i + 1;
                i = -1;
                continue run;
              }
            } else { s[32 /* RIP_LO */] = u[p + 12]; s[33 /* RIP_HI */] = u[p + 13]; }
            r = 1;
            break;
          }
          case 23 /* U_MOV_RR64 */: {
            const w = u[p + 1];
            const v = u[p + 2];
            s[w] = s[v]; s[w + 1] = s[v + 1];
            continue;
          }
          case 24 /* U_MOV_RI64 */: {
            const w = u[p + 1];
            s[w] = u[p + 2]; s[w + 1] = u[p + 3];
            continue;
          }
          case 25 /* U_LOAD64 */: {
            // The address (compile.ts makeEA), high word in eah: 32-bit addressing.
            let a: number;
            let eah: number;
            if ((u[p + 7] & 256 /* UF_EA64 */) === 0) {
              const bw = u[p + 2];
              const iw = u[p + 3];
              a = u[p + 5];
              if (bw >= 0) a += s[bw];
              if (iw >= 0) a += s[iw] << u[p + 4];
              a |= 0;
              eah = 0;
            } else {
              a = this.ea64(u, p);
              eah = this.eaHi;
            }
            const sg = u[p + 7] & 0xff;
            let lin = a;
            let lh = eah;
            let ok: boolean;
            if (this.code64) ok = sg < 4 && ((lh + 0x8000) & 0xffff0000) === 0;
            else {
              ok = this.segFast[sg] !== 0 && a >>> 0 <= 0xfffffff8;
              lin = (a + this.segBase[sg]) | 0;
              lh = 0;
            }
            const t = this.tlb;
            const k = ((lin >>> 12) ^ (lin >>> 26) ^ ((lh & 0xffff) << 2)) & TLB_MASK;
            let v: number;
            let h: number;
            if (ok && t.tagR[k] === (lin & ~0xfff) && t.tagHi[k] === lh && (lin & 0xfff) <= 0xff8) {
              const pa = t.phys[k] + (lin & 0xfff);
              if ((pa & 7) === 0) {
                v = this.i32[pa >>> 2];
                h = this.i32[(pa >>> 2) + 1];
              } else {
                v = this.dv.getInt32(pa, true);
                h = this.dv.getInt32(pa + 4, true);
              }
            } else {
              this.uopIndex = i; this.uopBlock = b; v = this.rd64(sg, a, eah);
              h = this.hi;
            }
            const w = u[p + 1];
            s[w] = v; s[w + 1] = h;
            continue;
          }
          case 26 /* U_STORE64 */: {
            // The address (compile.ts makeEA), high word in eah: 32-bit addressing.
            let a: number;
            let eah: number;
            if ((u[p + 7] & 256 /* UF_EA64 */) === 0) {
              const bw = u[p + 2];
              const iw = u[p + 3];
              a = u[p + 5];
              if (bw >= 0) a += s[bw];
              if (iw >= 0) a += s[iw] << u[p + 4];
              a |= 0;
              eah = 0;
            } else {
              a = this.ea64(u, p);
              eah = this.eaHi;
            }
            const sg = u[p + 7] & 0xff;
            const w = u[p + 1];
            let lin = a;
            let lh = eah;
            let ok: boolean;
            if (this.code64) ok = sg < 4 && ((lh + 0x8000) & 0xffff0000) === 0;
            else {
              ok = this.segFast[sg] !== 0 && a >>> 0 <= 0xfffffff8;
              lin = (a + this.segBase[sg]) | 0;
              lh = 0;
            }
            const t = this.tlb;
            const k = ((lin >>> 12) ^ (lin >>> 26) ^ ((lh & 0xffff) << 2)) & TLB_MASK;
            if (ok && t.tagW[k] === (lin & ~0xfff) && t.tagHi[k] === lh && (lin & 0xfff) <= 0xff8) {
              const pa = t.phys[k] + (lin & 0xfff);
              if ((pa & 7) === 0) {
                this.i32[pa >>> 2] = s[w];
                this.i32[(pa >>> 2) + 1] = s[w + 1];
              } else {
                this.dv.setInt32(pa, s[w], true);
                this.dv.setInt32(pa + 4, s[w + 1], true);
              }
            } else { this.uopIndex = i; this.uopBlock = b; this.wr64(sg, a, eah, s[w], s[w + 1]); }
            continue;
          }
          case 27 /* U_PUSH64 */: {
            // push() (compile.ts) with the TLB fast path of wr64 inline; the stack is 64-bit.
            const w = u[p + 1];
            const spLo = (s[8] - 8) | 0;
            const spHi = spLo >>> 0 > s[8] >>> 0 ? (s[9] - 1) | 0 : s[9];
            const t = this.tlb;
            const k = ((spLo >>> 12) ^ (spLo >>> 26) ^ ((spHi & 0xffff) << 2)) & TLB_MASK;
            const ok = ((spHi + 0x8000) & 0xffff0000) === 0 && t.tagHi[k] === spHi && (spLo & 0xfff) <= 0xff8;
            if (ok && t.tagW[k] === (spLo & ~0xfff)) {
              const pa = t.phys[k] + (spLo & 0xfff);
              if ((pa & 7) === 0) {
                this.i32[pa >>> 2] = s[w];
                this.i32[(pa >>> 2) + 1] = s[w + 1];
              } else {
                this.dv.setInt32(pa, s[w], true);
                this.dv.setInt32(pa + 4, s[w + 1], true);
              }
            } else { this.uopIndex = i; this.uopBlock = b; this.wr64(2 /* SEG_SS */, spLo, spHi, s[w], s[w + 1]); }
            s[8] = spLo; s[9] = spHi;
            continue;
          }
          case 28 /* U_POP64 */: {
            const spLo = s[8];
            const spHi = s[9];
            const t = this.tlb;
            const k = ((spLo >>> 12) ^ (spLo >>> 26) ^ ((spHi & 0xffff) << 2)) & TLB_MASK;
            const ok = ((spHi + 0x8000) & 0xffff0000) === 0 && t.tagHi[k] === spHi && (spLo & 0xfff) <= 0xff8;
            let v: number;
            let h: number;
            if (ok && t.tagR[k] === (spLo & ~0xfff)) {
              const pa = t.phys[k] + (spLo & 0xfff);
              if ((pa & 7) === 0) {
                v = this.i32[pa >>> 2];
                h = this.i32[(pa >>> 2) + 1];
              } else {
                v = this.dv.getInt32(pa, true);
                h = this.dv.getInt32(pa + 4, true);
              }
            } else {
              this.uopIndex = i; this.uopBlock = b; v = this.rd64(2 /* SEG_SS */, spLo, spHi);
              h = this.hi;
            }
            const sp = (s[8] >>> 0) + 8;
            s[9] = (s[9] + (sp > 0xffffffff ? 1 : 0)) | 0;
            s[8] = sp | 0;
            const w = u[p + 1];
            s[w] = v; s[w + 1] = h;
            continue;
          }
          case 29 /* U_CALL64 */: {
            const spLo = (s[8] - 8) | 0;
            const spHi = spLo >>> 0 > s[8] >>> 0 ? (s[9] - 1) | 0 : s[9];
            const t = this.tlb;
            const k = ((spLo >>> 12) ^ (spLo >>> 26) ^ ((spHi & 0xffff) << 2)) & TLB_MASK;
            const ok = ((spHi + 0x8000) & 0xffff0000) === 0 && t.tagHi[k] === spHi && (spLo & 0xfff) <= 0xff8;
            if (ok && t.tagW[k] === (spLo & ~0xfff)) {
              const pa = t.phys[k] + (spLo & 0xfff);
              if ((pa & 7) === 0) {
                this.i32[pa >>> 2] = u[p + 1];
                this.i32[(pa >>> 2) + 1] = u[p + 2];
              } else {
                this.dv.setInt32(pa, u[p + 1], true);
                this.dv.setInt32(pa + 4, u[p + 2], true);
              }
            } else { this.uopIndex = i; this.uopBlock = b; this.wr64(2 /* SEG_SS */, spLo, spHi, u[p + 1], u[p + 2]); }
            s[8] = spLo; s[9] = spHi;
            s[32 /* RIP_LO */] = u[p + 3]; s[33 /* RIP_HI */] = u[p + 4];
            r = 1;
            break;
          }
          case 30 /* U_RET64 */: {
            const sp0 = s[8];
            const sp1 = s[9];
            const t = this.tlb;
            const k = ((sp0 >>> 12) ^ (sp0 >>> 26) ^ ((sp1 & 0xffff) << 2)) & TLB_MASK;
            const ok = ((sp1 + 0x8000) & 0xffff0000) === 0 && t.tagHi[k] === sp1 && (sp0 & 0xfff) <= 0xff8;
            let v: number;
            let h: number;
            if (ok && t.tagR[k] === (sp0 & ~0xfff)) {
              const pa = t.phys[k] + (sp0 & 0xfff);
              if ((pa & 7) === 0) {
                v = this.i32[pa >>> 2];
                h = this.i32[(pa >>> 2) + 1];
              } else {
                v = this.dv.getInt32(pa, true);
                h = this.dv.getInt32(pa + 4, true);
              }
            } else {
              this.uopIndex = i; this.uopBlock = b; v = this.rd64(2 /* SEG_SS */, sp0, sp1);
              h = this.hi;
            }
            if (((h + 0x8000) & 0xffff0000) !== 0) { this.uopIndex = i; this.uopBlock = b; this.gp(0); }
            const spLo = (s[8] + 8) | 0;
            if (spLo >>> 0 < 8) s[9] = (s[9] + 1) | 0;
            s[8] = spLo;
            s[32 /* RIP_LO */] = v; s[33 /* RIP_HI */] = h;
            r = 1;
            break;
          }
          case 32 /* U_LOGIC_RR32 */:
          case 33 /* U_LOGIC_RI32 */: {
            const w = u[p + 1];
            const a = s[w];
            const v = u[p] === 32 ? s[u[p + 2]] : u[p + 2];
            const op = u[p + 3];
            const x = op === 4 ? a & v : op === 1 ? a | v : a ^ v;
            s[35 /* CC_OP */] = CC_LOGIC32; s[36 /* CC_DST */] = x;
            if (u[p + 4] !== 0) { s[w] = x; s[w + 1] = 0; }
            continue;
          }
          case 34 /* U_INCDEC32_JCC */: {
            const w = u[p + 1];
            const op = s[35 /* CC_OP */];
            const c =
              op === CC_ADD32 ? ((s[36 /* CC_DST */] >>> 0) < (s[38 /* CC_SRC */] >>> 0) ? 1 : 0)
              : op === CC_SUB32 ? (((s[36 /* CC_DST */] + s[38 /* CC_SRC */]) >>> 0) < (s[38 /* CC_SRC */] >>> 0) ? 1 : 0)
              : op >> 3 === 3 /* CC_INC, CC_DEC */ ? s[38 /* CC_SRC */] & 1
              : op >> 2 === 5 /* CC_LOGIC */ ? 0
              : getCF(s);
            const x = (s[w] + u[p + 2]) | 0;
            s[38 /* CC_SRC */] = c; s[35 /* CC_OP */] = u[p + 3]; s[36 /* CC_DST */] = x; s[w] = x; s[w + 1] = 0;
            // The JCC (record i + 1).
            i++;
            const cc = u[p + 9];
            const taken = cc === 5 ? x !== 0 : cc === 4 ? x === 0 : testCond(s, cc);
            if (taken) {
              s[32 /* RIP_LO */] = u[p + 10]; s[33 /* RIP_HI */] = u[p + 11];
              if (u[p + 14] !== 0 && selfLoop && this.retired + i + 1 < end && !this.eventCheck && this.tlbGen === gen && this.modeKey === b.mode) {
                // Back to the block's own start: the next iteration without leaving the switch.
                this.retired += i + 1;
                i = -1;
                continue run;
              }
            } else { s[32 /* RIP_LO */] = u[p + 12]; s[33 /* RIP_HI */] = u[p + 13]; }
            r = 1;
            break;
          }
          case 35 /* U_SUB32_JCC */: {
            const w = u[p + 1];
            const v = u[p + 4] !== 0 ? u[p + 2] : s[u[p + 2]];
            const a = s[w];
            const x = (a - v) | 0;
            s[35 /* CC_OP */] = CC_SUB32; s[38 /* CC_SRC */] = v; s[36 /* CC_DST */] = x;
            if (u[p + 3] !== 0) { s[w] = x; s[w + 1] = 0; }
            i++;
            // testCond's CMP fast path: the operands compared directly.
            let taken: boolean;
            switch (u[p + 9]) {
              case 2: taken = a >>> 0 < v >>> 0; break;
              case 3: taken = a >>> 0 >= v >>> 0; break;
              case 4: taken = x === 0; break;
              case 5: taken = x !== 0; break;
              case 6: taken = a >>> 0 <= v >>> 0; break;
              case 7: taken = a >>> 0 > v >>> 0; break;
              case 12: taken = a < v; break;
              case 13: taken = a >= v; break;
              case 14: taken = a <= v; break;
              case 15: taken = a > v; break;
              default: taken = testCond(s, u[p + 9]);
            }
            if (taken) {
              s[32 /* RIP_LO */] = u[p + 10]; s[33 /* RIP_HI */] = u[p + 11];
              if (u[p + 14] !== 0 && selfLoop && this.retired + i + 1 < end && !this.eventCheck && this.tlbGen === gen && this.modeKey === b.mode) {
                // Back to the block's own start: the next iteration without leaving the switch.
                this.retired += i + 1;
                i = -1;
                continue run;
              }
            } else { s[32 /* RIP_LO */] = u[p + 12]; s[33 /* RIP_HI */] = u[p + 13]; }
            r = 1;
            break;
          }
          case 36 /* U_LOGIC32_JCC */: {
            const w = u[p + 1];
            const a = s[w];
            const v = u[p + 5] !== 0 ? u[p + 2] : s[u[p + 2]];
            const op = u[p + 3];
            const x = op === 4 ? a & v : op === 1 ? a | v : a ^ v;
            s[35 /* CC_OP */] = CC_LOGIC32; s[36 /* CC_DST */] = x;
            if (u[p + 4] !== 0) { s[w] = x; s[w + 1] = 0; }
            i++;
            const cc = u[p + 9];
            const taken = cc === 5 ? x !== 0 : cc === 4 ? x === 0 : testCond(s, cc);
            if (taken) {
              s[32 /* RIP_LO */] = u[p + 10]; s[33 /* RIP_HI */] = u[p + 11];
              if (u[p + 14] !== 0 && selfLoop && this.retired + i + 1 < end && !this.eventCheck && this.tlbGen === gen && this.modeKey === b.mode) {
                // Back to the block's own start: the next iteration without leaving the switch.
                this.retired += i + 1;
                i = -1;
                continue run;
              }
            } else { s[32 /* RIP_LO */] = u[p + 12]; s[33 /* RIP_HI */] = u[p + 13]; }
            r = 1;
            break;
          }
          case 31 /* U_END */:
            r = 0;
            break run;
          default:
            this.uopIndex = i; this.uopBlock = b; r = b.fns[i]();
            if (r === 0) continue;
        }
        // A near branch (r = 1): on to the successor linked last time, under the same
        // conditions as runBlocks' linking, without leaving the switch.
        if (r === 1 && selfLoop && this.retired + i + 1 < end && !this.eventCheck) {
          const ripLo = s[32 /* RIP_LO */];
          let nb = b.succA;
          if (nb === null || nb.eipLo !== ripLo) nb = b.succB;
          if (nb !== null && nb.eipLo === ripLo && nb.valid === true && nb.eipHi === s[33 /* RIP_HI */] && b.linkGen === this.tlbGen && nb.mode === this.modeKey) {
            this.retired += i + 1;
            b = nb;
            u = nb.uops;
            gen = this.tlbGen;
            i = -1;
            continue;
          }
        }
        break;
      }
    }
    this.uopBlock = b;
    return (i << 2) | r;
  }

  /** The TLB generation runFast() left its block under (the one runUops compares for self-loops). */
  private uopGen = 0;

  /**
   * The fast micro-op loop: only the record kinds marked in FAST_UOPS, each only on its fast
   * path (TLB hit, aligned, flat segment, common flag producers), and no calls at all, so that
   * V8 keeps more of the loop's few live values in registers (in a loop with calls, `perf
   * annotate` shows them spilled to the stack at every definition). A record it cannot finish
   * on its fast path it leaves untouched for runUops' full switch. Starts at record i0 of b0
   * and follows self-loops and linked successors under runUops' conditions. Returns
   * (index << 2) | code: 0 = the U_END at the index, 1 = a near branch by the instruction at
   * the index (RIP set, not followed), 3 = the record at the index is for the full switch
   * (nothing of it done). The block it ended in is in uopBlock and the TLB generation to check
   * self-loops against in uopGen; this.retired counts the blocks it finished. Never throws.
   */
  private runFast(b0: Block, i0: number, end: number, selfLoop: boolean, gen0: number): number {
    const s = this.s;
    const i32 = this.i32;
    const u8 = this.u8;
    const u16 = this.u16;
    const tlb = this.tlb;
    const tagR = tlb.tagR;
    const tagW = tlb.tagW;
    const tagHi = tlb.tagHi;
    const phys = tlb.phys;
    // The segments whose offset is the linear address; accesses through others go to the full
    // switch (the 4 GiB wrap is one an aligned access cannot cross).
    const flat = this.flatSegs;
    // The budget as a small integer (retired counts and `end` outgrow int32; a loop that stops
    // after 2^30 instructions is simply re-entered). Nothing in this loop changes events,
    // translations or the mode, so the self-loop and linking conditions reduce to the budget,
    // checked once here: a limit of -1 turns them off.
    const room = end - this.retired;
    const budget = room <= 0 ? 0 : room < 0x3fffffff ? room | 0 : 0x3fffffff;
    const linkLim = selfLoop === true && this.eventCheck === false ? budget : -1;
    let b = b0;
    let lim = this.tlbGen === gen0 && this.modeKey === b.mode ? linkLim : -1;
    this.uopGen = gen0;
    let retired = 0; // by this call
    let i = i0 | 0;
    let code: number;
    // The outer loop moves between blocks; the inner one runs one block's records, so that the
    // record array is a constant there.
    block: for (;;) {
      const u = b.uops;
      run: for (;; i++) {
        const p = i << 3 /* i * UOP_STRIDE */;
        switch (u[p]) {
          case 1 /* U_ADD_RR32 */: {
            const w = u[p + 1];
            const v = s[u[p + 2]];
            const x = (s[w] + v) | 0;
            s[35 /* CC_OP */] = CC_ADD32; s[38 /* CC_SRC */] = v; s[36 /* CC_DST */] = x; s[w] = x; s[w + 1] = 0;
            continue;
          }
          case 2 /* U_ADD_RI32 */: {
            const w = u[p + 1];
            const v = u[p + 2];
            const x = (s[w] + v) | 0;
            s[35 /* CC_OP */] = CC_ADD32; s[38 /* CC_SRC */] = v; s[36 /* CC_DST */] = x; s[w] = x; s[w + 1] = 0;
            continue;
          }
          case 3 /* U_SUB_RR32 */:
          case 4 /* U_SUB_RI32 */: {
            const w = u[p + 1];
            const v = u[p] === 3 ? s[u[p + 2]] : u[p + 2];
            const x = (s[w] - v) | 0;
            s[35 /* CC_OP */] = CC_SUB32; s[38 /* CC_SRC */] = v; s[36 /* CC_DST */] = x;
            if (u[p + 3] !== 0) { s[w] = x; s[w + 1] = 0; }
            continue;
          }
          case 7 /* U_XOR_ZERO32 */: {
            const w = u[p + 1];
            s[35 /* CC_OP */] = CC_LOGIC32; s[36 /* CC_DST */] = 0; s[w] = 0; s[w + 1] = 0;
            continue;
          }
          case 8 /* U_INCDEC32 */:
          case 34 /* U_INCDEC32_JCC */: {
            // CF survives INC/DEC: taken from the common producers, else the full switch.
            const op = s[35 /* CC_OP */];
            let c: number;
            if (op === CC_ADD32) c = (s[36 /* CC_DST */] >>> 0) < (s[38 /* CC_SRC */] >>> 0) ? 1 : 0;
            else if (op === CC_SUB32) c = ((s[36 /* CC_DST */] + s[38 /* CC_SRC */]) >>> 0) < (s[38 /* CC_SRC */] >>> 0) ? 1 : 0;
            else if (op >> 3 === 3 /* CC_INC, CC_DEC */) c = s[38 /* CC_SRC */] & 1;
            else if (op >> 2 === 5 /* CC_LOGIC */) c = 0;
            else { code = 3; break block; }
            const fused = u[p] === 34;
            const cc = u[p + 9];
            if (fused && cc !== 4 && cc !== 5) { code = 3; break block; }
            const w = u[p + 1];
            const x = (s[w] + u[p + 2]) | 0;
            s[38 /* CC_SRC */] = c; s[35 /* CC_OP */] = u[p + 3]; s[36 /* CC_DST */] = x; s[w] = x; s[w + 1] = 0;
            if (!fused) continue;
            // The fused JCC (record i + 1): JZ or JNZ.
            i++;
            if ((cc === 5) === (x !== 0)) {
              // Back to the block's start: RIP is written only when the loop is left.
              if (u[p + 14] !== 0 && retired + i + 1 < lim) {
                retired += i + 1;
                i = -1;
                continue run;
              }
              s[32 /* RIP_LO */] = u[p + 10]; s[33 /* RIP_HI */] = u[p + 11];
            } else { s[32 /* RIP_LO */] = u[p + 12]; s[33 /* RIP_HI */] = u[p + 13]; }
            break;
          }
          case 9 /* U_MOV_RR32 */: {
            const w = u[p + 1];
            s[w] = s[u[p + 2]]; s[w + 1] = 0;
            continue;
          }
          case 10 /* U_MOV_RI32 */: {
            const w = u[p + 1];
            s[w] = u[p + 2]; s[w + 1] = 0;
            continue;
          }
          case 40 /* U_LOADX8 */:
          case 41 /* U_LOADX16 */: {
            // MOVZX/MOVSX from memory: 32-bit addressing, a flat segment, a TLB hit.
            const g = u[p + 7];
            const bw = u[p + 2];
            const iw = u[p + 3];
            let a = u[p + 5];
            if (bw >= 0) a = (a + s[bw]) | 0;
            if (iw >= 0) a = (a + (s[iw] << u[p + 4])) | 0;
            const byte = u[p] === 40;
            if (((flat >> (g & 0xff)) & 1) === 0 || (!byte && (a & 1) !== 0)) { code = 3; break block; }
            const k = ((a >>> 12) ^ (a >>> 26)) & TLB_MASK;
            if (tagR[k] !== (a & ~0xfff) || tagHi[k] !== 0) { code = 3; break block; }
            const pa = phys[k] + (a & 0xfff);
            let v = byte ? u8[pa] : u16[pa >>> 1];
            if ((g & 1024 /* UF_SIGNED */) !== 0) v = byte ? (v << 24) >> 24 : (v << 16) >> 16;
            const w = u[p + 1];
            s[w] = v; s[w + 1] = (g & 512 /* UF_OS64 */) !== 0 ? v >> 31 : 0;
            continue;
          }
          case 42 /* U_ALU_M32 */: {
            // ADD/SUB/CMP/AND/OR/XOR/TEST of a register and a 32-bit memory operand.
            const g = u[p + 7];
            const op = (g >> 12) & 15;
            const bw = u[p + 2];
            const iw = u[p + 3];
            let a = u[p + 5];
            if (bw >= 0) a = (a + s[bw]) | 0;
            if (iw >= 0) a = (a + (s[iw] << u[p + 4])) | 0;
            if (((flat >> (g & 0xff)) & 1) === 0 || (a & 3) !== 0) { code = 3; break block; }
            const k = ((a >>> 12) ^ (a >>> 26)) & TLB_MASK;
            const tag = a & ~0xfff;
            const memDst = (g & 65536 /* UF_MEMDST */) !== 0;
            const write = (g & 131072 /* UF_WRITE */) !== 0;
            if (tagR[k] !== tag || tagHi[k] !== 0 || (memDst && write && tagW[k] !== tag)) { code = 3; break block; }
            const q = (phys[k] + (a & 0xfff)) >>> 2;
            const w = u[p + 1];
            const x0 = memDst ? i32[q] : s[w];
            const x1 = memDst ? s[w] : i32[q];
            let x: number;
            if (op === 0) {
              x = (x0 + x1) | 0;
              s[35 /* CC_OP */] = CC_ADD32; s[38 /* CC_SRC */] = x1; s[36 /* CC_DST */] = x;
            } else if (op === 5 || op === 7) {
              x = (x0 - x1) | 0;
              s[35 /* CC_OP */] = CC_SUB32; s[38 /* CC_SRC */] = x1; s[36 /* CC_DST */] = x;
            } else {
              x = op === 4 ? x0 & x1 : op === 1 ? x0 | x1 : x0 ^ x1;
              s[35 /* CC_OP */] = CC_LOGIC32; s[36 /* CC_DST */] = x;
            }
            if (write) {
              if (memDst) i32[q] = x;
              else { s[w] = x; s[w + 1] = 0; }
            }
            continue;
          }
          case 38 /* U_LOAD32_A32 */:
          case 39 /* U_STORE32_A32 */: {
            // The common form: 32-bit addressing, a flat segment, aligned, a TLB hit.
            const bw = u[p + 2];
            const iw = u[p + 3];
            let a = u[p + 5];
            if (bw >= 0) a = (a + s[bw]) | 0;
            if (iw >= 0) a = (a + (s[iw] << u[p + 4])) | 0;
            if (((flat >> (u[p + 7] & 0xff)) & 1) === 0 || (a & 3) !== 0) { code = 3; break block; }
            const k = ((a >>> 12) ^ (a >>> 26)) & TLB_MASK;
            const w = u[p + 1];
            if (u[p] === 38) {
              if (tagR[k] !== (a & ~0xfff) || tagHi[k] !== 0) { code = 3; break block; }
              s[w] = i32[(phys[k] + (a & 0xfff)) >>> 2]; s[w + 1] = 0;
            } else {
              if (tagW[k] !== (a & ~0xfff) || tagHi[k] !== 0) { code = 3; break block; }
              i32[(phys[k] + (a & 0xfff)) >>> 2] = s[w];
            }
            continue;
          }
          case 11 /* U_LOAD32 */:
          case 12 /* U_STORE32 */:
          case 13 /* U_LEA */:
          case 25 /* U_LOAD64 */:
          case 26 /* U_STORE64 */: {
            // The address (compile.ts makeEA), the high word in ah.
            const g = u[p + 7];
            const bw = u[p + 2];
            const iw = u[p + 3];
            let a: number;
            let ah = 0;
            if ((g & 256 /* UF_EA64 */) === 0) {
              a = u[p + 5];
              if (bw >= 0) a += s[bw];
              if (iw >= 0) a += s[iw] << u[p + 4];
              a |= 0;
            } else {
              const sc = u[p + 4];
              let bl = 0;
              let bh = 0;
              let il = 0;
              let ih = 0;
              if (bw >= 0) {
                bl = s[bw];
                bh = s[bw + 1];
              }
              if (iw >= 0) {
                il = s[iw];
                ih = sc === 0 ? s[iw + 1] : (s[iw + 1] << sc) | (il >>> (32 - sc));
              }
              const t1 = (bl >>> 0) + ((il << sc) >>> 0);
              const t2 = (t1 >>> 0) + (u[p + 5] >>> 0);
              ah = (bh + ih + u[p + 6] + (t1 > 0xffffffff ? 1 : 0) + (t2 > 0xffffffff ? 1 : 0)) | 0;
              a = t2 | 0;
            }
            const w = u[p + 1];
            const kind = u[p];
            if (kind === 13) {
              s[w] = a; s[w + 1] = (g & 512 /* UF_OS64 */) !== 0 ? ah : 0;
              continue;
            }
            // A flat segment (the linear address is the offset), canonical, aligned (so that the
            // access stays in its page): else the full switch.
            const wide = kind >= 25;
            if (((flat >> (g & 0xff)) & 1) === 0 || (a & (wide ? 7 : 3)) !== 0 || ((ah + 0x8000) & 0xffff0000) !== 0) { code = 3; break block; }
            const k = ((a >>> 12) ^ (a >>> 26) ^ ((ah & 0xffff) << 2)) & TLB_MASK;
            if (tagHi[k] !== ah) { code = 3; break block; }
            if (kind === 11 || kind === 25) {
              if (tagR[k] !== (a & ~0xfff)) { code = 3; break block; }
              const q = (phys[k] + (a & 0xfff)) >>> 2;
              s[w] = i32[q]; s[w + 1] = wide ? i32[q + 1] : 0;
            } else {
              if (tagW[k] !== (a & ~0xfff)) { code = 3; break block; }
              const q = (phys[k] + (a & 0xfff)) >>> 2;
              i32[q] = s[w];
              if (wide) i32[q + 1] = s[w + 1];
            }
            continue;
          }
          case 14 /* U_PUSH32 */:
          case 16 /* U_CALL32 */: {
            const n = (s[8] - 4) | 0;
            const k = ((n >>> 12) ^ (n >>> 26)) & TLB_MASK;
            if ((flat & (1 << 2) /* bit SEG_SS */) === 0 || (n & 3) !== 0 || tagHi[k] !== 0 || tagW[k] !== (n & ~0xfff)) { code = 3; break block; }
            const q = (phys[k] + (n & 0xfff)) >>> 2;
            if (u[p] === 14) {
              i32[q] = s[u[p + 1]];
              s[8] = n; s[9] = 0;
              continue;
            }
            i32[q] = u[p + 1];
            s[8] = n; s[9] = 0;
            s[32 /* RIP_LO */] = u[p + 2];
            break;
          }
          case 15 /* U_POP32 */:
          case 17 /* U_RET32 */: {
            const n = s[8];
            const k = ((n >>> 12) ^ (n >>> 26)) & TLB_MASK;
            if ((flat & (1 << 2) /* bit SEG_SS */) === 0 || (n & 3) !== 0 || tagHi[k] !== 0 || tagR[k] !== (n & ~0xfff)) { code = 3; break block; }
            const v = i32[(phys[k] + (n & 0xfff)) >>> 2];
            s[8] = (n + 4) | 0; s[9] = 0;
            if (u[p] === 15) {
              const w = u[p + 1];
              s[w] = v; s[w + 1] = 0;
              continue;
            }
            s[32 /* RIP_LO */] = v;
            break;
          }
          case 18 /* U_JCC */: {
            const cc = u[p + 1];
            // testCond for the common producers: every condition but parity after a 32-bit
            // SUB/CMP or logic operation, JZ/JNZ after any 32- or 64-bit one; else the full switch.
            const op = s[35 /* CC_OP */];
            const x = s[36 /* CC_DST */];
            let taken: boolean;
            if (op === CC_SUB32) {
              const v = s[38 /* CC_SRC */];
              const a = (x + v) | 0;
              switch (cc) {
                case 0: taken = ((a ^ v) & (a ^ x)) < 0; break;
                case 1: taken = ((a ^ v) & (a ^ x)) >= 0; break;
                case 2: taken = a >>> 0 < v >>> 0; break;
                case 3: taken = a >>> 0 >= v >>> 0; break;
                case 4: taken = x === 0; break;
                case 5: taken = x !== 0; break;
                case 6: taken = a >>> 0 <= v >>> 0; break;
                case 7: taken = a >>> 0 > v >>> 0; break;
                case 8: taken = x < 0; break;
                case 9: taken = x >= 0; break;
                case 12: taken = a < v; break;
                case 13: taken = a >= v; break;
                case 14: taken = a <= v; break;
                case 15: taken = a > v; break;
                default: code = 3; break block;
              }
            } else if (op === CC_LOGIC32) {
              // CF = OF = 0.
              switch (cc) {
                case 0: case 2: taken = false; break;
                case 1: case 3: taken = true; break;
                case 4: case 6: taken = x === 0; break;
                case 5: case 7: taken = x !== 0; break;
                case 8: case 12: taken = x < 0; break;
                case 9: case 13: taken = x >= 0; break;
                case 14: taken = x <= 0; break;
                case 15: taken = x > 0; break;
                default: code = 3; break block;
              }
            } else if ((cc & 0xe) === 4 && op >= 4 && (op & 3) >= 2) {
              const zf = (op & 3) === 2 ? x === 0 : (x | s[37 /* CC_DST + 1 */]) === 0;
              taken = zf === (cc === 4);
            } else { code = 3; break block; }
            if (taken) {
              // Back to the block's start: RIP is written only when the loop is left.
              if (u[p + 6] !== 0 && retired + i + 1 < lim) {
                retired += i + 1;
                i = -1;
                continue run;
              }
              s[32 /* RIP_LO */] = u[p + 2]; s[33 /* RIP_HI */] = u[p + 3];
            } else { s[32 /* RIP_LO */] = u[p + 4]; s[33 /* RIP_HI */] = u[p + 5]; }
            break;
          }
          case 19 /* U_JMP */: {
            if (u[p + 4] !== 0 && retired + i + 1 < lim) {
              retired += i + 1;
              i = -1;
              continue run;
            }
            s[32 /* RIP_LO */] = u[p + 1];
            if (u[p + 3] !== 0) s[33 /* RIP_HI */] = u[p + 2];
            break;
          }
          case 20 /* U_ALU_RR64 */:
          case 21 /* U_ALU_RI64 */: {
            // ADD, SUB and CMP (alu64's inline forms); the other operations go to the full switch.
            const rr = u[p] === 20;
            const op = rr ? u[p + 3] : u[p + 4];
            if (op !== 0 && op !== 5 && op !== 7) { code = 3; break block; }
            const w = u[p + 1];
            let bl: number;
            let bh: number;
            if (rr) {
              const bw = u[p + 2];
              bl = s[bw];
              bh = s[bw + 1];
            } else {
              bl = u[p + 2];
              bh = u[p + 3];
            }
            let lo: number;
            let hi: number;
            if (op === 0) {
              const sum = (s[w] >>> 0) + (bl >>> 0);
              hi = (s[w + 1] + bh + (sum > 0xffffffff ? 1 : 0)) | 0;
              lo = sum | 0;
              s[35 /* CC_OP */] = CC_ADD64;
            } else {
              const dif = (s[w] >>> 0) - (bl >>> 0);
              hi = (s[w + 1] - bh - (dif < 0 ? 1 : 0)) | 0;
              lo = dif | 0;
              s[35 /* CC_OP */] = CC_SUB64;
            }
            s[38 /* CC_SRC */] = bl; s[39 /* CC_SRC + 1 */] = bh; s[36 /* CC_DST */] = lo; s[37 /* CC_DST + 1 */] = hi;
            if ((rr ? u[p + 4] : u[p + 5]) !== 0) { s[w] = lo; s[w + 1] = hi; }
            continue;
          }
          case 22 /* U_INCDEC64 */:
          case 37 /* U_INCDEC64_JCC */: {
            const op = s[35 /* CC_OP */];
            let c: number;
            if (op === CC_ADD64) c = s[37 /* CC_DST + 1 */] >>> 0 < s[39 /* CC_SRC + 1 */] >>> 0 || (s[37 /* CC_DST + 1 */] === s[39 /* CC_SRC + 1 */] && s[36 /* CC_DST */] >>> 0 < s[38 /* CC_SRC */] >>> 0) ? 1 : 0;
            else if (op === CC_ADD32) c = (s[36 /* CC_DST */] >>> 0) < (s[38 /* CC_SRC */] >>> 0) ? 1 : 0;
            else if (op >> 3 === 3 /* CC_INC, CC_DEC */) c = s[38 /* CC_SRC */] & 1;
            else if (op >> 2 === 5 /* CC_LOGIC */) c = 0;
            else { code = 3; break block; }
            const fused = u[p] === 37;
            const cc = u[p + 9];
            if (fused && cc !== 4 && cc !== 5) { code = 3; break block; }
            const w = u[p + 1];
            let lo: number;
            let hi = s[w + 1];
            if (u[p + 2] !== 0) {
              lo = (s[w] + 1) | 0;
              if (lo === 0) hi = (hi + 1) | 0;
            } else {
              lo = (s[w] - 1) | 0;
              if (lo === -1) hi = (hi - 1) | 0;
            }
            s[38 /* CC_SRC */] = c; s[35 /* CC_OP */] = u[p + 3]; s[36 /* CC_DST */] = lo; s[37 /* CC_DST + 1 */] = hi;
            s[w] = lo; s[w + 1] = hi;
            if (!fused) continue;
            i++;
            if ((cc === 5) === ((lo | hi) !== 0)) {
              // Back to the block's start: RIP is written only when the loop is left.
              if (u[p + 14] !== 0 && retired + i + 1 < lim) {
                retired += i + 1;
                i = -1;
                continue run;
              }
              s[32 /* RIP_LO */] = u[p + 10]; s[33 /* RIP_HI */] = u[p + 11];
            } else { s[32 /* RIP_LO */] = u[p + 12]; s[33 /* RIP_HI */] = u[p + 13]; }
            break;
          }
          case 23 /* U_MOV_RR64 */: {
            const w = u[p + 1];
            const v = u[p + 2];
            s[w] = s[v]; s[w + 1] = s[v + 1];
            continue;
          }
          case 24 /* U_MOV_RI64 */: {
            const w = u[p + 1];
            s[w] = u[p + 2]; s[w + 1] = u[p + 3];
            continue;
          }
          case 27 /* U_PUSH64 */:
          case 29 /* U_CALL64 */: {
            const spLo = (s[8] - 8) | 0;
            const spHi = spLo >>> 0 > s[8] >>> 0 ? (s[9] - 1) | 0 : s[9];
            const k = ((spLo >>> 12) ^ (spLo >>> 26) ^ ((spHi & 0xffff) << 2)) & TLB_MASK;
            if ((spLo & 7) !== 0 || ((spHi + 0x8000) & 0xffff0000) !== 0 || tagHi[k] !== spHi || tagW[k] !== (spLo & ~0xfff)) { code = 3; break block; }
            const q = (phys[k] + (spLo & 0xfff)) >>> 2;
            if (u[p] === 27) {
              const w = u[p + 1];
              i32[q] = s[w];
              i32[q + 1] = s[w + 1];
              s[8] = spLo; s[9] = spHi;
              continue;
            }
            i32[q] = u[p + 1];
            i32[q + 1] = u[p + 2];
            s[8] = spLo; s[9] = spHi;
            s[32 /* RIP_LO */] = u[p + 3]; s[33 /* RIP_HI */] = u[p + 4];
            break;
          }
          case 28 /* U_POP64 */:
          case 30 /* U_RET64 */: {
            const spLo = s[8];
            const spHi = s[9];
            const k = ((spLo >>> 12) ^ (spLo >>> 26) ^ ((spHi & 0xffff) << 2)) & TLB_MASK;
            if ((spLo & 7) !== 0 || ((spHi + 0x8000) & 0xffff0000) !== 0 || tagHi[k] !== spHi || tagR[k] !== (spLo & ~0xfff)) { code = 3; break block; }
            const q = (phys[k] + (spLo & 0xfff)) >>> 2;
            const v = i32[q];
            const h = i32[q + 1];
            // RET to a non-canonical address: #GP, from the full switch.
            if (u[p] === 30 && ((h + 0x8000) & 0xffff0000) !== 0) { code = 3; break block; }
            const sp = (spLo >>> 0) + 8;
            s[9] = (spHi + (sp > 0xffffffff ? 1 : 0)) | 0;
            s[8] = sp | 0;
            if (u[p] === 28) {
              const w = u[p + 1];
              s[w] = v; s[w + 1] = h;
              continue;
            }
            s[32 /* RIP_LO */] = v; s[33 /* RIP_HI */] = h;
            break;
          }
          case 43 /* U_CALL32_IN */: {
            // U_CALL32's push; the block goes on at the target (the next record).
            const n = (s[8] - 4) | 0;
            const k = ((n >>> 12) ^ (n >>> 26)) & TLB_MASK;
            if ((flat & (1 << 2) /* bit SEG_SS */) === 0 || (n & 3) !== 0 || tagHi[k] !== 0 || tagW[k] !== (n & ~0xfff)) { code = 3; break block; }
            i32[(phys[k] + (n & 0xfff)) >>> 2] = u[p + 1];
            s[8] = n; s[9] = 0;
            continue;
          }
          case 44 /* U_RET32_PRED */: {
            // U_RET32; when it pops the address the followed call pushed, the block goes on.
            const n = s[8];
            const k = ((n >>> 12) ^ (n >>> 26)) & TLB_MASK;
            if ((flat & (1 << 2) /* bit SEG_SS */) === 0 || (n & 3) !== 0 || tagHi[k] !== 0 || tagR[k] !== (n & ~0xfff)) { code = 3; break block; }
            const v = i32[(phys[k] + (n & 0xfff)) >>> 2];
            s[8] = (n + 4) | 0; s[9] = 0;
            if (v === u[p + 1]) continue;
            s[32 /* RIP_LO */] = v;
            break;
          }
          case 31 /* U_END */:
            code = 0;
            break block;
          case 32 /* U_LOGIC_RR32 */:
          case 33 /* U_LOGIC_RI32 */: {
            const w = u[p + 1];
            const a = s[w];
            const v = u[p] === 32 ? s[u[p + 2]] : u[p + 2];
            const op = u[p + 3];
            const x = op === 4 ? a & v : op === 1 ? a | v : a ^ v;
            s[35 /* CC_OP */] = CC_LOGIC32; s[36 /* CC_DST */] = x;
            if (u[p + 4] !== 0) { s[w] = x; s[w + 1] = 0; }
            continue;
          }
          case 35 /* U_SUB32_JCC */: {
            const w = u[p + 1];
            const v = u[p + 4] !== 0 ? u[p + 2] : s[u[p + 2]];
            const a = s[w];
            const x = (a - v) | 0;
            // The CMP/SUB fast path of testCond: the operands compared directly.
            let taken: boolean;
            switch (u[p + 9]) {
              case 2: taken = a >>> 0 < v >>> 0; break;
              case 3: taken = a >>> 0 >= v >>> 0; break;
              case 4: taken = x === 0; break;
              case 5: taken = x !== 0; break;
              case 6: taken = a >>> 0 <= v >>> 0; break;
              case 7: taken = a >>> 0 > v >>> 0; break;
              case 12: taken = a < v; break;
              case 13: taken = a >= v; break;
              case 14: taken = a <= v; break;
              case 15: taken = a > v; break;
              default: code = 3; break block;
            }
            s[35 /* CC_OP */] = CC_SUB32; s[38 /* CC_SRC */] = v; s[36 /* CC_DST */] = x;
            if (u[p + 3] !== 0) { s[w] = x; s[w + 1] = 0; }
            i++;
            if (taken) {
              // Back to the block's start: RIP is written only when the loop is left.
              if (u[p + 14] !== 0 && retired + i + 1 < lim) {
                retired += i + 1;
                i = -1;
                continue run;
              }
              s[32 /* RIP_LO */] = u[p + 10]; s[33 /* RIP_HI */] = u[p + 11];
            } else { s[32 /* RIP_LO */] = u[p + 12]; s[33 /* RIP_HI */] = u[p + 13]; }
            break;
          }
          case 36 /* U_LOGIC32_JCC */: {
            const cc = u[p + 9];
            if (cc !== 4 && cc !== 5) { code = 3; break block; }
            const w = u[p + 1];
            const a = s[w];
            const v = u[p + 5] !== 0 ? u[p + 2] : s[u[p + 2]];
            const op = u[p + 3];
            const x = op === 4 ? a & v : op === 1 ? a | v : a ^ v;
            s[35 /* CC_OP */] = CC_LOGIC32; s[36 /* CC_DST */] = x;
            if (u[p + 4] !== 0) { s[w] = x; s[w + 1] = 0; }
            i++;
            if ((cc === 5) === (x !== 0)) {
              // Back to the block's start: RIP is written only when the loop is left.
              if (u[p + 14] !== 0 && retired + i + 1 < lim) {
                retired += i + 1;
                i = -1;
                continue run;
              }
              s[32 /* RIP_LO */] = u[p + 10]; s[33 /* RIP_HI */] = u[p + 11];
            } else { s[32 /* RIP_LO */] = u[p + 12]; s[33 /* RIP_HI */] = u[p + 13]; }
            break;
          }
          default:
            code = 3;
            break block;
        }
        // A near branch by instruction i: on to the successor linked last time (runUops' rule).
        if (retired + i + 1 < linkLim) {
          const ripLo = s[32 /* RIP_LO */];
          let nb = b.succA;
          if (nb === null || nb.eipLo !== ripLo) nb = b.succB;
          if (nb !== null && nb.eipLo === ripLo && nb.valid === true && nb.eipHi === s[33 /* RIP_HI */] && b.linkGen === this.tlbGen && nb.mode === this.modeKey) {
            retired += i + 1;
            b = nb;
            this.uopGen = this.tlbGen;
            lim = linkLim;
            i = 0;
            continue block;
          }
        }
        code = 1;
        break block;
      }
    }
    this.retired += retired;
    this.uopBlock = b;
    return (i << 2) | code;
  }

  /** RIP of instruction i of a block. */
  private setRipAt(b: Block, i: number): void {
    const s = this.s;
    const base = b.eipLo;
    const lo = (base + b.offs[i]) | 0;
    if ((b.mode & 1) !== 0) {
      s[S.RIP_HI] = lo >>> 0 < base >>> 0 ? (b.eipHi + 1) | 0 : b.eipHi;
      s[S.RIP_LO] = lo;
    } else s[S.RIP_LO] = (b.mode & 2) !== 0 ? lo : lo & 0xffff;
  }

  // ---------------------------------------------------------------- the run loop

  run(budget: number): number {
    this.exitReason = EXIT_NONE;
    const end = this.retired + budget;
    this.runEnd = end;
    for (;;) {
      try {
        if (this.exitReason !== EXIT_NONE) break;
        if (this.eventCheck && this.checkEvents()) break;
        if (this.retired >= end) {
          this.exitReason = EXIT_BUDGET;
          break;
        }
        if (this.forceStep || this.s[S.INTR_SHADOW] !== 0 || (this.s[S.FLAGS] & (S.F_TF | S.F_RF)) !== 0 || (this.s[S.DR7] & 0xff) !== 0) {
          this.stepOne();
          if (this.forceStep) {
            this.exitReason = this.exitReason === EXIT_NONE ? EXIT_BUDGET : this.exitReason;
            break;
          }
        } else this.runBlocks(end);
      } catch (e) {
        if (e === GUEST_FAULT) {
          this.deliverPendingFault();
          continue;
        }
        this.exitReason = EXIT_INTERNAL;
        this.exitInfo.reason = EXIT_INTERNAL;
        this.exitInfo.message = e instanceof Error ? `${e.message}\n${e.stack}` : String(e);
        break;
      }
    }
    this.exitInfo.reason = this.exitReason;
    return this.exitReason;
  }

  private runBlocks(end: number): void {
    const s = this.s;
    let b = this.findBlock();
    let i = 0;
    const jitOn = this.jitThreshold > 0;
    // A block whose final branch returns to its own start loops inside the switch (not while
    // the block compiler counts executions).
    const selfLoop = !jitOn;
    let compiled: Compiled | null = null;
    // -1 while looking up a block: a fault then belongs to RIP as it stands.
    try {
      for (;;) {
        let r = 0;
        let jb = b.jit;
        if (jb !== null && jb.tlbGen !== -1 && jb.tlbGen !== this.tlbGen) {
          // A trace through other pages, compiled under other translations: recompile later.
          b.jit = jb = null;
          b.heat = 0;
        }
        if (jitOn && jb === null && b.heat >= 0 && ++b.heat >= this.jitThreshold) {
          this.tierUp(b);
          jb = b.jit;
        }
        if (jb !== null) {
          compiled = jb;
          i = -2; // a fault inside compiled code: the index is in jitIndex
          const v = jb.fn();
          r = v & 3;
          i = v >> 2;
          if (r === 1) this.retired += i + 1;
          else if (r === 0) {
            this.retired += i;
            this.setRipCompiled(jb, i);
          } else {
            this.retired += i + 1;
            if (r === 2) this.setRipCompiled(jb, i + 1);
            this.eventCheck = true;
            return;
          }
        } else {
          compiled = null;
          i = -3; // a fault inside runUops: the index is in uopIndex
          const v = this.runUops(b, end, selfLoop);
          b = this.uopBlock as Block;
          r = v & 3;
          i = v >> 2;
          if (r === 1) this.retired += i + 1;
          else if (r === 0) {
            // Fell off the end (or a store at instruction i-1 invalidated the block).
            this.retired += i;
            this.setRipAt(b, i);
          } else {
            this.retired += i + 1;
            if (r === 2) this.setRipAt(b, i + 1);
            this.eventCheck = true;
            return;
          }
        }
        if (this.retired >= end || this.eventCheck) return;
        // Chain to the successor seen last time if nothing that affects translation changed.
        const ripLo = s[32 /* RIP_LO */];
        const next = b.succA !== null && b.succA.eipLo === ripLo ? b.succA : b.succB !== null && b.succB.eipLo === ripLo ? b.succB : null;
        if (next !== null && next.valid === true && next.eipHi === s[33 /* RIP_HI */] && b.linkGen === this.tlbGen && next.mode === this.modeKey) {
          b = next;
          continue;
        }
        i = -1;
        const found = this.findBlock();
        if (b.linkGen !== this.tlbGen) {
          b.succA = null;
          b.succB = null;
          b.linkGen = this.tlbGen;
        }
        if (b.succA === null) b.succA = found;
        else if (b.succA !== found) b.succB = found;
        b = found;
      }
    } catch (e) {
      if (i === -2 && compiled !== null) {
        i = this.jitIndex;
        if (e === GUEST_FAULT) {
          this.retired += i;
          this.setRipCompiled(compiled, i);
        }
        throw e;
      }
      if (i === -3) {
        i = this.uopIndex;
        b = this.uopBlock as Block;
      }
      if (e === GUEST_FAULT && i >= 0) {
        this.retired += i;
        this.setRipAt(b, i);
      }
      throw e;
    }
  }

  private setRipCompiled(c: Compiled, i: number): void {
    const s = this.s;
    s[S.RIP_LO] = this.code64 || this.csD ? c.ripLo[i] : c.ripLo[i] & 0xffff;
    s[S.RIP_HI] = c.ripHi[i];
  }

  /** Hands a hot block to the block compiler (once; a block it can't take stays interpreted). */
  private tierUp(b: Block): void {
    b.heat = -1;
    if (!b.valid) return;
    const c = compileBlock(this, b);
    this.jitAttempts++;
    if (c !== null) this.jitCompiled++;
    b.jit = c;
    // The head block must die with any block whose code it copied.
    if (c !== null) {
      for (const other of c.spans) {
        for (const p of [other.phys, other.phys2]) {
          if (p < 0 || p >= this.ramBytes) continue;
          if (this.codePages[p >>> 12] !== 0) this.code.add(p >>> 12, b);
        }
      }
    }
  }

  /**
   * Executes exactly one instruction: the path for single-step (TF), the interrupt shadow,
   * RF, debug breakpoints (DR7) and emulateOne(). Breakpoint checks live only here.
   */
  private stepOne(): void {
    const s = this.s;
    const tfBefore = (s[S.FLAGS] & S.F_TF) !== 0;
    const dr7 = s[S.DR7];
    const watchData = this.updateDataWatch(dr7);
    // Instruction breakpoints are faults, checked before the instruction unless RF is set.
    if ((dr7 & 0xff) !== 0 && (s[S.FLAGS] & S.F_RF) === 0) {
      const hits = this.matchBreakpoints(dr7, this.ripLinear(), this.code64 ? this.linHi : 0, 1, 0);
      if (hits !== 0) {
        s[S.DR6] = (s[S.DR6] & ~0xf) | hits;
        this.sys.deliverEvent(S.VEC_DB, 3, 0, false);
        return;
      }
    }
    const b = this.findBlock();
    const shadowWas = s[S.INTR_SHADOW];
    this.dataHits = 0;
    let r = 0;
    try {
      r = b.fns[0]();
    } catch (e) {
      if (e === GUEST_FAULT) this.setRipAt(b, 0);
      throw e;
    }
    if (r === 0 || r === 2) this.setRipAt(b, 1); // 1 and 3 set RIP themselves
    this.retired++;
    s[S.FLAGS] &= ~S.F_RF; // RF lasts one instruction
    if (shadowWas !== 0 && s[S.INTR_SHADOW] === shadowWas) s[S.INTR_SHADOW] = 0;
    this.eventCheck = true;
    if (r === 3 || this.exitReason !== EXIT_NONE) return;
    let dr6 = 0;
    if (watchData && this.dataHits !== 0) dr6 |= this.dataHits;
    if (tfBefore && this.sys.pendingSingleStep()) dr6 |= 1 << 14; // BS
    if (dr6 !== 0) {
      s[S.DR6] = (s[S.DR6] & ~0x400f) | dr6;
      this.sys.deliverEvent(S.VEC_DB, 3, 0, false);
    }
  }

  /** Linear address of RIP (high word in linHi). */
  private ripLinear(): number {
    const s = this.s;
    if (this.code64) {
      this.linHi = s[S.RIP_HI];
      return s[S.RIP_LO];
    }
    this.linHi = 0;
    return (s[S.RIP_LO] + this.segBase[S.SEG_CS]) | 0;
  }

  /**
   * Breakpoints of DR0..DR3 enabled in dr7 whose type is `type` (0 execute, 1 write, 2 I/O port,
   * 3 read or write; a read matches type 3 only) and whose range overlaps lin..lin+size-1.
   * Returns DR6 bits.
   */
  private matchBreakpoints(dr7: number, lin: number, lh: number, size: number, type: number): number {
    const s = this.s;
    let hits = 0;
    for (let i = 0; i < 4; i++) {
      if (((dr7 >> (i * 2)) & 3) === 0) continue;
      const rw = (dr7 >>> (16 + i * 4)) & 3;
      if (type === 0 ? rw !== 0 : type === 1 ? rw !== 1 && rw !== 3 : type === 2 ? rw !== 2 : rw !== 3) continue;
      const lenCode = (dr7 >>> (18 + i * 4)) & 3;
      const len = rw === 0 ? 1 : lenCode === 0 ? 1 : lenCode === 1 ? 2 : lenCode === 3 ? 4 : 8;
      const aLo = s[S.DR0 + i * 2] & ~(len - 1);
      const aHi = this.code64 ? s[S.DR0 + i * 2 + 1] : 0;
      if (aHi !== lh) continue;
      const start = lin >>> 0;
      const bp = aLo >>> 0;
      if (start <= bp + len - 1 && bp <= start + size - 1) hits |= 1 << i;
    }
    return hits;
  }

  /** Data breakpoints hit by the instruction being single-stepped (DR6 bits). */
  private dataHits = 0;
  /** True while data breakpoints are armed: the TLB then caches no page, so every access is checked. */
  private watchingData = false;

  /**
   * True while I/O breakpoints are armed (CR4.DE with an enabled R/W = 10 breakpoint): the I/O
   * instructions then report their port to noteIoAccess. Without CR4.DE, R/W = 10 is undefined
   * in the manuals; we treat it as no breakpoint.
   */
  watchingIo = false;

  /** Arms data and I/O watching from DR7; true when either is armed. */
  private updateDataWatch(dr7: number): boolean {
    let armed = false;
    let io = false;
    const de = (this.s[S.CR4] & S.CR4_DE) !== 0;
    for (let i = 0; i < 4; i++) {
      if (((dr7 >> (i * 2)) & 3) === 0) continue;
      const rw = (dr7 >>> (16 + i * 4)) & 3;
      if (rw % 2 === 1) armed = true;
      else if (rw === 2 && de) io = true;
    }
    this.watchingIo = io;
    if (armed !== this.watchingData) {
      this.watchingData = armed;
      this.flushTlb(false);
    }
    return armed || io;
  }

  /** Called by IN/OUT/INS/OUTS while I/O breakpoints are armed (a trap, like data breakpoints). */
  noteIoAccess(port: number, size: number): void {
    if (this.watchingIo) this.dataHits |= this.matchBreakpoints(this.s[S.DR7], port, 0, size, 2);
  }

  /** Called by the slow paths for every access while data breakpoints are armed. */
  private noteDataAccess(lin: number, lh: number, size: number, write: boolean): void {
    if (this.watchingData) this.dataHits |= this.matchBreakpoints(this.s[S.DR7], lin, lh, size, write ? 1 : 3);
  }

  /** Looks at everything pending between blocks. Returns true when run() must return. */
  private checkEvents(): boolean {
    const s = this.s;
    this.eventCheck = false;
    if (this.exitRequested) {
      this.exitRequested = false;
      this.exitReason = EXIT_REQUESTED;
      return true;
    }
    if (this.injected) {
      const ev = this.injected;
      this.injected = null;
      s[S.HALTED] = 0;
      this.sys.deliverEvent(ev.vector, ev.kind, ev.error, ev.hasError);
      this.eventCheck = true;
      return this.exitReason !== EXIT_NONE;
    }
    const ifSet = (s[S.FLAGS] & S.F_IF) !== 0;
    if (this.irqLine && ifSet && s[S.INTR_SHADOW] === 0) {
      const vector = this.acknowledgeInterrupt();
      if (vector >= 0) {
        s[S.HALTED] = 0;
        this.sys.deliverEvent(vector & 0xff, 0, 0, false);
        this.eventCheck = true;
        return this.exitReason !== EXIT_NONE;
      }
    }
    if (s[S.HALTED] !== 0) {
      this.exitReason = EXIT_HLT;
      this.eventCheck = true;
      return true;
    }
    if (s[S.INTR_SHADOW] !== 0 || (s[S.FLAGS] & S.F_TF) !== 0 || this.irqLine) this.eventCheck = true;
    return false;
  }

  private deliverPendingFault(): void {
    const v = this.pendingVector;
    this.pendingVector = -1;
    this.eventCheck = true;
    if (v === -2) return; // an instruction exit (exitBefore), not a fault
    this.sys.deliverEvent(v, 3, this.pendingError, this.pendingHasError);
  }

  // ---------------------------------------------------------------- services for the hypervisor

  /** When set (only during emulateOne), stores to physical memory are offered to it first. */
  private writeHook: ((pa: number, size: number, value: number) => boolean) | null = null;
  /** Makes run() execute exactly one instruction (emulateOne). */
  private forceStep = false;
  /**
   * emulateOne's option: stores are translated as reads (present and privilege still checked,
   * write protection not), for a hypervisor emulating a guest store to a page it keeps
   * read-only, such as a PV page table. The dirty bit is then left to the hook.
   */
  private writeThroughReadOnly = false;

  /**
   * Executes exactly one instruction at RIP. Every store it makes goes first to `hook(pa, size,
   * value)`, which returns true when it has handled the store itself (the store then does not
   * reach memory): how the hypervisor emulates a guest write to a page-table page. Returns the
   * exit code (EXIT_BUDGET when the instruction simply completed).
   */
  emulateOne(hook: (pa: number, size: number, value: number) => boolean, options: { writeThroughReadOnly?: boolean } = {}): number {
    this.writeHook = hook;
    this.writeThroughReadOnly = options.writeThroughReadOnly === true;
    this.forceStep = true;
    this.flushTlb(false); // no write tag may bypass the hook
    try {
      return this.run(1);
    } finally {
      this.writeHook = null;
      this.writeThroughReadOnly = false;
      this.forceStep = false;
      this.flushTlb(false);
    }
  }

  /** The fault found by the last readGuest/writeGuest that failed. */
  readonly guestFault = { vector: 0, errorCode: 0, addressLo: 0, addressHi: 0 };

  /**
   * Copies guest-virtual memory at (lin, lh) into `out`, with the access rights of `user` (or
   * of an implicit supervisor access). Returns 0, or the vector of the fault that stopped it
   * (details in guestFault); CR2 and the TLB are left as they were. Never throws for a guest cause.
   */
  readGuest(lin: number, lh: number, out: Uint8Array, user = false): number {
    return this.copyGuest(lin, lh, out, user, false);
  }

  /** Copies `data` into guest-virtual memory; all pages are checked before any byte is written. */
  writeGuest(lin: number, lh: number, data: Uint8Array, user = false): number {
    return this.copyGuest(lin, lh, data, user, true);
  }

  private copyGuest(lin: number, lh: number, buf: Uint8Array, user: boolean, write: boolean): number {
    const s = this.s;
    const cr2Lo = s[S.CR2_LO];
    const cr2Hi = s[S.CR2_HI];
    const pages: number[] = [];
    try {
      let l = lin;
      let h = lh;
      for (let done = 0; done < buf.length; ) {
        if (this.lma && ((h + 0x8000) & 0xffff0000) !== 0) this.gp(0);
        pages.push(this.translateAs(l & ~0xfff, h, write ? 1 : 0, user, false) >>> 0);
        const chunk = Math.min(0x1000 - (l & 0xfff), buf.length - done);
        done += chunk;
        const nl = (l + chunk) | 0;
        if (nl >>> 0 < l >>> 0) h = (h + 1) | 0;
        l = nl;
      }
    } catch (e) {
      if (e !== GUEST_FAULT) throw e;
      this.guestFault.vector = this.pendingVector;
      this.guestFault.errorCode = this.pendingError;
      this.guestFault.addressLo = s[S.CR2_LO];
      this.guestFault.addressHi = s[S.CR2_HI];
      this.pendingVector = -1;
      s[S.CR2_LO] = cr2Lo;
      s[S.CR2_HI] = cr2Hi;
      return this.guestFault.vector;
    }
    let off = lin & 0xfff;
    let k = 0;
    for (let p = 0; p < pages.length; p++) {
      for (; off < 0x1000 && k < buf.length; off++, k++) {
        if (write) this.physWrite8(pages[p] + off, buf[k]);
        else buf[k] = this.physRead8(pages[p] + off);
      }
      off = 0;
    }
    return 0;
  }

  /** The whole architectural state as bytes (one frame), with the retired-instruction count. */
  saveState(): Uint8Array {
    const s = this.s;
    s[S.RETIRED_LO] = this.retired % 4294967296;
    s[S.RETIRED_HI] = Math.floor(this.retired / 4294967296);
    return new Uint8Array(s.buffer.slice(s.byteOffset, s.byteOffset + S.STATE_BYTES));
  }

  /** Loads state saved by saveState(); throws on a wrong size (the owner's input, not the guest's). */
  restoreState(bytes: Uint8Array): void {
    if (bytes.length !== S.STATE_BYTES) {
      throw new Error(`vCPU state: expected ${S.STATE_BYTES} bytes, got ${bytes.length}`);
    }
    const s = this.s;
    new Uint8Array(s.buffer, s.byteOffset, S.STATE_BYTES).set(bytes);
    this.retired = (s[S.RETIRED_HI] >>> 0) * 4294967296 + (s[S.RETIRED_LO] >>> 0);
    for (let seg = 0; seg < 8; seg++) this.segmentChanged(seg);
    this.updateMode();
    this.flushTlb(false);
    this.injected = null;
    this.eventCheck = true;
  }

  // ---------------------------------------------------------------- exits from instructions

  /** Ends the current instruction with an exit; RIP stays at the instruction. */
  exitBefore(reason: number, qualification: number, length: number): never {
    this.exitReason = reason;
    this.exitInfo.qualification = qualification;
    this.exitInfo.instructionLength = length;
    this.pendingVector = -2; // marks "exit, not a fault" for deliverPendingFault
    throw GUEST_FAULT;
  }
}

