// Seeded generator of differential-test cases, driven by the processor's declarative opcode
// table (src/x86/opcodes.ts): every entry marked userTestable and valid in the mode is
// covered, round robin, with random prefixes, ModRM/SIB forms, immediates and register and
// memory values biased towards the edges.
//
// A case is a pure function of (mode, seed, index): generate(index) reseeds its PRNG from
// those three numbers, so any case can be replayed alone. The entry under test is
// entries[index % entries.length].
import { type OpcodeEntry, OPCODES } from "../../../src/x86/opcodes.ts";
import { CODE_ADDR, DATA_ADDR, DATA_SIZE, FLAGS_MASK, type Mode, type Patch, REGION_SIZE, STACK_ADDR, STACK_SIZE, type TestCase } from "./cases.ts";

/** sfc32: a small, fast, well-tested 32-bit PRNG. */
export class Rng {
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 1;
  constructor(s0 = 0, s1 = 0, s2 = 0) {
    this.reseed(s0, s1, s2);
  }
  reseed(s0: number, s1: number, s2: number): void {
    this.a = s0 >>> 0;
    this.b = s1 >>> 0;
    this.c = s2 >>> 0;
    this.d = 1;
    for (let i = 0; i < 12; i++) this.u32();
  }
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
  /** Uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor((this.u32() / 4294967296) * n);
  }
  chance(p: number): boolean {
    return this.u32() / 4294967296 < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.below(xs.length)]!;
  }
}

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

// Width conversions by masking. (Not BigInt.asUintN/asIntN: Node 20's TurboFan lowers
// asUintN(64, x) to a machine word and can crash on it, "RepresentationChangerError: Phi of
// kRepTagged (UnsignedBigInt64) cannot be changed to kRepWord64", after a few 100k cases.)
const MASK_BY_BITS = new Map<number, bigint>();
for (const b of [8, 16, 32, 64, 128]) MASK_BY_BITS.set(b, (1n << BigInt(b)) - 1n);
function maskOf(bits: number): bigint {
  return MASK_BY_BITS.get(bits) ?? (1n << BigInt(bits)) - 1n;
}
/** v modulo 2^bits, as an unsigned value. */
function uN(bits: number, v: bigint): bigint {
  return v & maskOf(bits);
}
/** v modulo 2^bits, as a signed value. */
function sN(bits: number, v: bigint): bigint {
  const m = maskOf(bits);
  const x = v & m;
  return x > m >> 1n ? x - m - 1n : x;
}

/** A high word that makes a 64-bit address non-canonical. */
function nonCanonicalHigh(r: Rng): number {
  const hi = r.u32();
  return ((hi + 0x8000) & 0xffff0000) === 0 ? (hi ^ 0x100000) >>> 0 : hi;
}

const EDGE32 = [
  0, 1, 2, 3, 0x7f, 0x80, 0x81, 0xff, 0x100, 0x7fff, 0x8000, 0x8001, 0xffff, 0x10000, 0x7fffffff, 0x80000000,
  0x80000001, 0xfffffffe, 0xffffffff, 0x55555555, 0xaaaaaaaa, 0xff, 0xff00, 0xffff0000, 0xf0f0f0f0,
];
const EDGE_HI = [0, 0, 0xffffffff, 0x7fffffff, 0x80000000, 1, 0xffffffff];

/** Mnemonics of near branches whose target the generator aims at an int3 after the snippet. */
const REL_BRANCHES = new Set(["jcc", "jmp", "call", "loop", "loope", "loopne", "jcxz"]);
const STRING_OPS = new Set(["movs", "cmps", "stos", "lods", "scas"]);
const SHIFTS = new Set(["rol", "ror", "rcl", "rcr", "shl", "shr", "sar"]);

/**
 * Entries the generator does not use even though the table marks them userTestable, with the
 * reason. (Kept short: the table is the authority; these are host-specific exceptions.)
 */
export const SKIPPED: Record<string, string> = {};

/** The opcode entries tested in `mode`, in table order. */
export function testableEntries(mode: Mode): OpcodeEntry[] {
  const bit = mode === 64 ? 2 : 1;
  return OPCODES.filter((e) => e.userTestable && (e.modes & bit) !== 0 && SKIPPED[e.mnemonic] === undefined);
}

export function entryLabel(e: OpcodeEntry): string {
  const pfx = e.prefix ? `${e.prefix.toString(16).toUpperCase()} ` : "";
  const map = ["", "0F ", "0F 38 ", "0F 3A "][e.map]!;
  const op = e.opcode.toString(16).toUpperCase().padStart(2, "0");
  const grp = e.group >= 0 ? `/${e.group}` : e.modrmExact >= 0 ? `=${e.modrmExact.toString(16).toUpperCase()}` : "";
  return `${pfx}${map}${op}${grp} ${e.mnemonic} ${e.operands.join(",")}`.trim();
}

/** A coarse family of an entry, used to split the test into readable blocks. */
export function entryFamily(e: OpcodeEntry): string {
  const m = e.mnemonic;
  if (["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp", "test", "inc", "dec", "neg", "not"].includes(m)) return "alu";
  if (SHIFTS.has(m) || m === "shld" || m === "shrd") return "shift";
  if (["mul", "imul", "div", "idiv", "daa", "das", "aaa", "aas", "aam", "aad"].includes(m)) return "muldiv";
  if (STRING_OPS.has(m) || m === "xlat") return "string";
  if (REL_BRANCHES.has(m) || m === "ret") return "branch";
  if (["push", "pop", "pusha", "popa", "pushf", "popf", "enter", "leave"].includes(m)) return "stack";
  if (m.startsWith("bt") || ["bsf", "bsr", "tzcnt", "lzcnt", "popcnt", "bswap", "setcc", "cmovcc"].includes(m)) return "bits";
  return "misc";
}

interface Operand {
  spec: string;
  size: number; // bytes
}

export interface GeneratorOptions {
  mode: Mode;
  seed: number;
  entries?: readonly OpcodeEntry[];
}

export class CaseGenerator {
  readonly mode: Mode;
  readonly seed: number;
  readonly entries: readonly OpcodeEntry[];
  private readonly rng = new Rng();

  constructor(opts: GeneratorOptions) {
    this.mode = opts.mode;
    this.seed = opts.seed >>> 0;
    this.entries = opts.entries ?? testableEntries(opts.mode);
    if (this.entries.length === 0) throw new Error("no testable opcode entries");
  }

  entryOf(index: number): OpcodeEntry {
    return this.entries[index % this.entries.length]!;
  }

  generate(index: number): TestCase {
    this.rng.reseed(mix32(this.seed ^ 0x5eed0000), mix32(index ^ Math.imul(this.mode, 0x9e3779b9)), mix32(Math.floor(index / 4294967296) + this.seed * 31));
    const e = this.entryOf(index);
    // Runs of 64 consecutive cases share their memory fill (the harness resets incrementally).
    const fillSeed = mix32(this.seed * 0x2545f491 + Math.floor(index / 64) + this.mode);
    const b = new Builder(this.rng, this.mode, e);
    b.build();
    return {
      id: index >>> 0,
      mode: this.mode,
      eflags: b.eflags,
      fillSeed,
      regsLo: b.regsLo,
      regsHi: b.regsHi,
      code: Uint8Array.from(b.bytes),
      patches: b.patches,
      undefinedFlags: e.undefinedFlags | b.extraUndefined,
      label: entryLabel(e),
      seed: this.seed,
      index,
    };
  }
}

function sizeLetterBytes(letter: string, osize: number): number {
  switch (letter) {
    case "b":
      return 1;
    case "w":
      return 2;
    case "d":
      return 4;
    case "q":
      return 8;
    case "v":
      return osize;
    case "z":
      return osize === 2 ? 2 : 4;
    case "y":
      return osize === 8 ? 8 : 4;
    case "a":
      return osize * 2;
    case "p":
      return osize + 2;
    default:
      return osize;
  }
}

interface MemForm {
  modrm: number;
  sib: number; // -1 none
  dispBytes: number;
  disp: bigint;
  ripRelative: boolean;
}

class Builder {
  readonly regsLo = new Uint32Array(16);
  readonly regsHi = new Uint32Array(16);
  readonly patches: Patch[] = [];
  bytes: number[] = [];
  eflags = 0;
  extraUndefined = 0;
  private readonly is64: boolean;
  private osize = 4;
  private asize = 4;
  private rex = 0;
  private hasRex = false;
  private prefixes: number[] = [];
  private ops: Operand[] = [];
  private memOp: Operand | null = null;
  /** E operand location: register number, or -1 for memory. */
  private eReg = -1;
  private gReg = -1;
  private ea = 0n; // target effective address of the memory operand (if any)
  private memInRegion = false;
  private mem: MemForm | null = null;
  private relOffset = -1; // offset of a J immediate in bytes[]
  private relSize = 0;
  private immValues: { offset: number; size: number }[] = [];

  constructor(
    private readonly rng: Rng,
    mode: Mode,
    private readonly e: OpcodeEntry,
  ) {
    this.is64 = mode === 64;
  }

  // ---- values ----

  private randLoHi(): [number, number] {
    const r = this.rng;
    const x = r.below(10);
    let lo: number;
    if (x < 4) lo = r.u32();
    else if (x < 8) lo = (r.pick(EDGE32) + (r.chance(0.2) ? r.below(3) - 1 : 0)) >>> 0;
    else lo = r.chance(0.5) ? r.below(256) : (-1 - r.below(256)) >>> 0;
    let hi = 0;
    if (this.is64) {
      const y = r.below(10);
      if (y < 3) hi = r.u32();
      else if (y < 6) hi = r.pick(EDGE_HI);
      else hi = lo & 0x80000000 ? 0xffffffff : 0;
    }
    return [lo >>> 0, hi >>> 0];
  }

  private setReg(i: number, lo: number, hi = 0): void {
    this.regsLo[i] = lo >>> 0;
    this.regsHi[i] = this.is64 ? hi >>> 0 : 0;
  }

  private setRegBig(i: number, v: bigint): void {
    const u = uN(64, v);
    this.setReg(i, Number(u & 0xffffffffn), Number(u >> 32n));
  }

  private regBig(i: number): bigint {
    return (BigInt(this.regsHi[i]!) << 32n) | BigInt(this.regsLo[i]!);
  }

  /** Writes the low `size` bytes of a register operand as the instruction would see them. */
  private setRegOperand(r: number, size: number, v: bigint): void {
    if (size === 1 && !this.hasRex && r >= 4 && r < 8) {
      const i = r - 4;
      const lo = (this.regsLo[i]! & ~0xff00) | (Number(uN(8, v)) << 8);
      this.regsLo[i] = lo >>> 0;
      return;
    }
    const bits = BigInt(size * 8);
    const mask = (1n << bits) - 1n;
    this.setRegBig(r, (this.regBig(r) & ~mask) | (uN(size * 8, v) & mask));
  }

  private regOperandValue(r: number, size: number): bigint {
    if (size === 1 && !this.hasRex && r >= 4 && r < 8) return BigInt((this.regsLo[r - 4]! >>> 8) & 0xff);
    return uN(size * 8, this.regBig(r));
  }

  private addPatch(addr: bigint, bytes: number[]): boolean {
    if (this.patches.length >= 4 || bytes.length === 0 || bytes.length > 8) return false;
    const a = Number(addr);
    let off = -1;
    if (addr >= BigInt(DATA_ADDR) && a + bytes.length <= DATA_ADDR + DATA_SIZE) off = a - DATA_ADDR;
    else if (addr >= BigInt(STACK_ADDR) && a + bytes.length <= STACK_ADDR + STACK_SIZE) off = a - STACK_ADDR + DATA_SIZE;
    if (off < 0 || off + bytes.length > REGION_SIZE) return false;
    this.patches.push({ offset: off, bytes });
    return true;
  }

  private patchValue(addr: bigint, size: number, v: bigint): boolean {
    const bytes: number[] = [];
    const u = uN(64, v);
    for (let k = 0; k < size; k++) bytes.push(Number((u >> BigInt(8 * k)) & 0xffn));
    if (size <= 8) return this.addPatch(addr, bytes);
    return false;
  }

  private edgeOfSize(size: number): bigint {
    const [lo, hi] = this.randLoHi();
    let v = (BigInt(hi) << 32n) | BigInt(lo);
    if (this.rng.chance(0.4)) {
      const bits = BigInt(size * 8);
      v = this.rng.pick([0n, 1n, (1n << (bits - 1n)) - 1n, 1n << (bits - 1n), (1n << bits) - 1n, (1n << bits) - 2n]);
    }
    return uN(size * 8, v);
  }

  // ---- the build ----

  build(): void {
    const r = this.rng;
    const e = this.e;
    for (let i = 0; i < (this.is64 ? 16 : 8); i++) {
      const [lo, hi] = this.randLoHi();
      this.setReg(i, lo, hi);
    }
    this.setReg(4, this.pickStackPointer(), 0);
    this.eflags = r.u32() & FLAGS_MASK & (r.chance(0.3) ? FLAGS_MASK : ~0x400);

    const m = e.mnemonic;
    const isBranch = REL_BRANCHES.has(m) || m === "ret" || (e.map === 0 && e.opcode === 0xff && (e.group === 2 || e.group === 4));
    const hasMem = e.hasModrm || e.operands.some((o) => /^[OXY]/.test(o)) || m === "xlat";

    // Operand size prefix. Not on near branches in 64-bit mode (Intel ignores it, AMD honours
    // it: the manuals disagree) nor on bswap (16-bit form undefined).
    let use66 = r.chance(0.2);
    if ((this.is64 && isBranch) || m === "bswap" || e.prefix === 0x66 || e.modrmExact >= 0) use66 = false;
    let use67 = false;
    if (hasMem) use67 = r.chance(m === "lea" ? 0.2 : this.is64 ? 0.1 : 0.04);
    if (m === "loop" || m === "loope" || m === "loopne" || m === "jcxz") use67 = r.chance(0.15);

    // REX
    if (this.is64 && r.chance(0.65)) {
      this.hasRex = true;
      this.rex = 0x40 | r.below(16);
      if (m === "bswap" && r.chance(0.3)) this.rex &= ~8;
    }

    if (this.is64) {
      if (e.f64) this.osize = 8;
      else if (this.rex & 8) this.osize = 8;
      else if (use66) this.osize = 2;
      else this.osize = e.d64 ? 8 : 4;
      this.asize = use67 ? 4 : 8;
    } else {
      this.osize = use66 ? 2 : 4;
      this.asize = use67 ? 2 : 4;
    }

    // Legacy prefixes (random order), then the mandatory prefix, REX, opcode.
    const legacy: number[] = [];
    if (use66) legacy.push(0x66);
    if (use67) legacy.push(0x67);
    if (hasMem && r.chance(0.08)) legacy.push(this.is64 ? r.pick([0x26, 0x2e, 0x36, 0x3e]) : r.pick([0x26, 0x36, 0x3e]));
    const memForm = e.hasModrm && e.modrmExact < 0;
    let lock = false;
    if (e.lock && memForm) lock = r.chance(0.3);
    else lock = r.chance(0.015);
    if (lock) legacy.push(0xf0);
    if (STRING_OPS.has(m) && r.chance(0.6)) legacy.push(r.chance(0.5) ? 0xf3 : 0xf2);
    // F2/F3 on a non-string instruction is reserved; hosts ignore it, except LOOPcc/JrCXZ
    // (E0-E3), which an AMD host executes with the condition inverted: not tested.
    else if (e.map === 0 && e.prefix === 0 && e.opcode !== 0x90 && (e.opcode & 0xfc) !== 0xe0 && r.chance(0.02))
      legacy.push(r.pick([0xf2, 0xf3]));
    for (let i = legacy.length - 1; i > 0; i--) {
      const j = r.below(i + 1);
      [legacy[i], legacy[j]] = [legacy[j]!, legacy[i]!];
    }
    this.prefixes = legacy;
    if (e.prefix) this.prefixes.push(e.prefix);
    this.bytes.push(...this.prefixes);
    if (this.hasRex) {
      // Rarely, a REX followed by a legacy prefix: the REX is then ignored.
      if (r.chance(0.02)) {
        this.bytes.push(this.rex, r.pick([0x3e, 0x26]));
        this.hasRex = false;
        this.rex = 0;
        this.osize = this.is64 ? (e.f64 || e.d64 ? 8 : use66 ? 2 : 4) : this.osize;
      } else this.bytes.push(this.rex);
    }
    if (e.map >= 1) this.bytes.push(0x0f);
    if (e.map === 2) this.bytes.push(0x38);
    if (e.map === 3) this.bytes.push(0x3a);
    this.bytes.push(e.opcode);

    this.ops = e.operands.map((spec) => ({ spec, size: this.operandSize(spec) }));

    if (e.hasModrm) this.buildModrm();
    this.buildImmediates();
    this.semantics();
    this.finishRelocations();
  }

  private pickStackPointer(): number {
    const r = this.rng;
    const x = r.below(20);
    if (x === 0) return STACK_ADDR + r.below(24); // pushes fault below the page
    if (x === 1) return STACK_ADDR + STACK_SIZE - r.below(24); // pops fault above it
    const align = this.is64 ? 8 : 4;
    let sp = STACK_ADDR + 0x200 + r.below(STACK_SIZE - 0x400);
    if (r.chance(0.9)) sp -= sp % align;
    return sp;
  }

  private operandSize(spec: string): number {
    if (spec === "1") return 1;
    if (/^(AL|CL)$/.test(spec)) return 1;
    if (spec === "DX") return 2;
    if (spec === "eAX") return this.osize;
    const letter = spec.slice(1);
    if (spec === "M") return 1;
    if (spec[0] === "M" && letter === "q" && this.e.mnemonic === "cmpxchg8b") return this.rex & 8 ? 16 : 8;
    return sizeLetterBytes(letter, this.osize);
  }

  private buildModrm(): void {
    const e = this.e;
    const r = this.rng;
    if (e.modrmExact >= 0) {
      this.bytes.push(e.modrmExact);
      return;
    }
    const eOp = this.ops.find((o) => /^[EMR]/.test(o.spec)) ?? null;
    const gOp = this.ops.find((o) => /^[GS]/.test(o.spec)) ?? null;
    let reg = e.group >= 0 ? e.group : r.below(8);
    if (gOp?.spec[0] === "S") reg = r.chance(0.9) ? r.below(6) : 6 + r.below(2);
    if (gOp && gOp.spec[0] === "G") this.gReg = reg | (this.rex & 4 ? 8 : 0);
    let useMem: boolean;
    if (e.registerOnly) useMem = false;
    else if (e.memoryOnly) useMem = r.chance(0.97);
    else if (e.map === 1 && e.opcode === 0x0d) useMem = true; // AMD: 0F 0D with a register operand is #UD
    else useMem = r.chance(0.6);
    if (!useMem) {
      const rm = r.below(8);
      this.eReg = rm | (this.rex & 1 ? 8 : 0);
      this.bytes.push(0xc0 | (reg << 3) | rm);
      return;
    }
    this.memOp = eOp ?? { spec: "M", size: 1 };
    const m = e.mnemonic;
    if (m === "div" || m === "idiv") this.avoidAddr = new Set([0, 2]);
    if (this.ops.some((o) => o.spec === "CL")) this.avoidAddr = new Set([1]);
    this.buildMemOperand(reg, this.memOp.size);
  }

  /** Chooses the target effective address, an addressing form, and register values that produce it. */
  private buildMemOperand(reg: number, size: number): void {
    const r = this.rng;
    const x = r.below(100);
    let ea: bigint;
    if (x < 84) {
      let off = r.below(DATA_SIZE - size + 1);
      if (r.chance(0.1)) off = 4096 - r.below(size + 1); // crossing the page inside DATA
      if (size >= 16 && r.chance(0.7)) off &= ~15;
      ea = BigInt(DATA_ADDR + Math.max(0, Math.min(off, DATA_SIZE - size)));
      this.memInRegion = true;
    } else if (x < 92) {
      ea = BigInt(DATA_ADDR + DATA_SIZE - (size > 1 ? 1 + r.below(size - 1) : 0)); // straddles the end
    } else if (x < 95) {
      ea = BigInt(DATA_ADDR - r.below(size)) ; // below the start
    } else if (x < 98 || !this.is64 || this.asize !== 8) {
      ea = BigInt(this.wildAddress());
    } else {
      ea = (BigInt(nonCanonicalHigh(r)) << 32n) | BigInt(r.u32()); // #GP, or #SS for stack references
    }
    this.ea = ea;
    if (this.asize === 2) {
      this.build16(reg);
      return;
    }
    const abits = this.asize * 8;
    const amask = (1n << BigInt(abits)) - 1n;
    const rexB = this.rex & 1 ? 8 : 0;
    const rexX = this.rex & 2 ? 8 : 0;
    const form = r.below(100);
    const dispEdge = (bytes: number): bigint => {
      if (bytes === 1) return BigInt(r.pick([0, 1, -1, 0x7f, -0x80, r.below(256) - 128]));
      return BigInt(r.pick([0, 1, -1, 0x7fffffff, -0x80000000, r.below(0x10000) - 0x8000, (r.u32() | 0)]));
    };
    let mod: number;
    let rm: number;
    let sib = -1;
    let dispBytes = 0;
    let disp = 0n;
    let ripRel = false;
    if (form < 10) {
      // disp32 alone: mod=00 rm=101 (RIP-relative in 64-bit mode) or SIB without base and index.
      if (this.is64 && r.chance(0.7)) {
        mod = 0;
        rm = 5;
        dispBytes = 4;
        ripRel = true;
      } else if (!this.is64 && r.chance(0.5)) {
        mod = 0;
        rm = 5; // [disp32]
        dispBytes = 4;
        disp = sN(32, ea & 0xffffffffn);
        ea = disp & amask;
      } else {
        mod = 0;
        rm = 4;
        sib = (r.below(4) << 6) | (4 << 3) | 5; // index none (unless REX.X), base none
        dispBytes = 4;
        const idx = 4 | rexX;
        if (idx !== 4) {
          // REX.X makes index 4 mean r12
          const s = BigInt(1 << (sib >> 6));
          const iv = BigInt(r.below(64));
          this.setRegBig(idx, iv);
          disp = sN(32, (ea - iv * s) & 0xffffffffn);
          ea = (iv * s + disp) & amask;
        } else {
          disp = sN(32, ea & 0xffffffffn);
          ea = disp & amask; // sign-extended in 64-bit addressing
        }
      }
    } else if (form < 45) {
      // [base] / [base+disp8] / [base+disp32] without SIB (rm != 4)
      mod = r.below(3);
      rm = r.pick([0, 1, 2, 3, 5, 6, 7]);
      for (let k = 0; k < 8 && this.avoidAddr.has(rm | rexB); k++) rm = r.pick([0, 1, 2, 3, 5, 6, 7]);
      if (mod === 0 && rm === 5) mod = 1;
      dispBytes = mod === 1 ? 1 : mod === 2 ? 4 : 0;
      disp = dispBytes ? dispEdge(dispBytes) : 0n;
      const base = rm | rexB;
      this.setRegBig(base, this.solveHigh(base, (ea - disp) & amask, amask));
    } else {
      // SIB
      mod = r.below(3);
      rm = 4;
      const scale = r.below(4);
      let index = r.below(8);
      let base = r.below(8);
      for (let k = 0; k < 8 && this.avoidAddr.has(index | rexX) && (index | rexX) !== 4; k++) index = r.below(8);
      for (let k = 0; k < 8 && this.avoidAddr.has(base | rexB); k++) base = r.below(8);
      if (mod === 0 && base === 5) dispBytes = 4; // no base
      else dispBytes = mod === 1 ? 1 : mod === 2 ? 4 : 0;
      sib = (scale << 6) | (index << 3) | base;
      disp = dispBytes ? dispEdge(dispBytes) : 0n;
      index |= rexX;
      base |= rexB;
      const hasIndex = index !== 4;
      const hasBase = !(mod === 0 && (base & 7) === 5);
      const s = BigInt(1 << scale);
      let iv = 0n;
      if (hasIndex) {
        iv = BigInt(r.pick([0, 1, 2, r.below(64), -1, -r.below(64), r.below(0x1000)]));
        if (!hasBase) {
          // EA = index*scale + disp32: solve the index; the scale may leave a remainder.
          disp = sN(32, BigInt(r.below(256)) * s);
          ea = (((ea - disp) & amask) / s) * s + disp; // the scale may leave a remainder
          iv = ((ea - disp) & amask) / s;
          this.setRegBig(index, this.solveHigh(index, iv, amask));
        } else if (index !== base) this.setRegBig(index, iv);
      }
      if (hasBase) {
        if (hasIndex && index === base) {
          // base == index: v * (1 + s) = ea - disp
          const v = ((ea - disp) & amask) / (1n + s);
          if (dispBytes === 4) disp = sN(32, (ea - v * (1n + s)) & 0xffffffffn);
          ea = (v * (1n + s) + disp) & amask; // what the encoding really addresses
          this.setRegBig(base, this.solveHigh(base, v, amask));
        } else {
          this.setRegBig(base, this.solveHigh(base, (ea - disp - (hasIndex ? iv * s : 0n)) & amask, amask));
        }
      }
    }
    this.bytes.push((mod << 6) | (reg << 3) | rm);
    if (sib >= 0) this.bytes.push(sib);
    this.mem = { modrm: (mod << 6) | (reg << 3) | rm, sib, dispBytes, disp, ripRelative: ripRel };
    // Patches go where the encoding really points (an indirect branch must never load a
    // random target: it could land in the harness's own code).
    this.ea = ea;
    this.memInRegion = ea >= BigInt(DATA_ADDR) && ea + BigInt(size) <= BigInt(DATA_ADDR + DATA_SIZE);
    if (ripRel) {
      this.relocRip = this.bytes.length;
      for (let k = 0; k < 4; k++) this.bytes.push(0);
    } else {
      for (let k = 0; k < dispBytes; k++) this.bytes.push(Number((uN(32, disp) >> BigInt(8 * k)) & 0xffn));
    }
  }

  private relocRip = -1;
  /** Registers that must not form the address: the instruction's set-up gives them values. */
  private avoidAddr = new Set<number>();

  /**
   * An address nothing is mapped at, natively or in the emulator. Random 32-bit addresses
   * are not good enough: they may hit the harness's own text, heap, stack or vDSO (the
   * emulator maps nothing there), so wild accesses go to ranges no process maps.
   */
  private wildAddress(): number {
    const r = this.rng;
    if (r.chance(0.3)) return 0x1000 + r.below(0x3ff000);
    return 0x40000000 + r.below(0x80000000);
  }

  /**
   * With 32-bit addressing in 64-bit mode (0x67) only the low 32 bits of a register count:
   * randomise the high half. With 64-bit addressing the full value matters.
   */
  private solveHigh(_reg: number, v: bigint, amask: bigint): bigint {
    if (this.is64 && this.asize === 4) return (BigInt(this.rng.chance(0.5) ? this.rng.u32() : 0) << 32n) | (v & amask);
    return v & amask;
  }

  /** 16-bit addressing (0x67 in 32-bit mode): addresses below 64 KiB, which fault; tests EA arithmetic. */
  private build16(reg: number): void {
    const r = this.rng;
    const mod = r.below(3);
    const rm = r.below(8);
    this.bytes.push((mod << 6) | (reg << 3) | rm);
    const n = mod === 1 ? 1 : mod === 2 || (mod === 0 && rm === 6) ? 2 : 0;
    for (let k = 0; k < n; k++) this.bytes.push(r.below(256));
    // Sometimes make the low 16 bits of the registers small, to see wrap-around.
    for (const g of [3, 5, 6, 7]) if (r.chance(0.3)) this.regsLo[g] = ((this.regsLo[g]! & 0xffff0000) | r.pick([0, 1, 0xffff, 0x8000, 0xfffe])) >>> 0;
    this.mem = { modrm: 0, sib: -1, dispBytes: n, disp: 0n, ripRelative: false };
  }

  private pushImm(size: number, v: bigint): void {
    this.immValues.push({ offset: this.bytes.length, size });
    const u = uN(64, v);
    for (let k = 0; k < size; k++) this.bytes.push(Number((u >> BigInt(8 * k)) & 0xffn));
  }

  private buildImmediates(): void {
    const e = this.e;
    const r = this.rng;
    for (const op of this.ops) {
      const s = op.spec;
      if (s[0] === "I") {
        let size = sizeLetterBytes(s[1]!, this.osize);
        if (s === "Iv") size = this.osize; // mov r, imm64
        if (s === "Iz") size = this.osize === 2 ? 2 : 4;
        let v = this.edgeOfSize(size);
        if (SHIFTS.has(e.mnemonic) || e.mnemonic === "shld" || e.mnemonic === "shrd") v = BigInt(this.shiftCount());
        if (e.mnemonic === "enter") v = size === 2 ? BigInt(r.pick([0, 8, 16, 0x20, r.below(0x300), 0xffff])) : BigInt(r.chance(0.6) ? r.below(4) : r.below(256));
        if (e.mnemonic === "aam" || e.mnemonic === "aad") v = BigInt(r.pick([10, 10, 0, 1, 16, 0xff, r.below(256)]));
        if (e.mnemonic.startsWith("bt")) v = BigInt(r.chance(0.5) ? r.below(this.osize * 8) : r.below(256));
        if (e.mnemonic === "ret") v = BigInt(r.pick([0, 2, 4, 8, 0x10, r.below(0x100), 0xfffe]));
        this.pushImm(size, v);
      } else if (s[0] === "J") {
        this.relSize = s === "Jb" ? 1 : this.osize === 2 ? 2 : 4;
        this.relOffset = this.bytes.length;
        for (let k = 0; k < this.relSize; k++) this.bytes.push(0);
      } else if (s[0] === "O") {
        // moffs: an absolute address of address size
        const size = this.asize;
        let a = BigInt(DATA_ADDR + r.below(DATA_SIZE - op.size + 1));
        if (r.chance(0.08)) a = BigInt(DATA_ADDR + DATA_SIZE - 1);
        if (size === 8 && r.chance(0.05)) a = (BigInt(nonCanonicalHigh(r)) << 32n) | BigInt(r.u32());
        this.ea = a;
        this.memInRegion = size > 2;
        this.pushImm(size, a);
      }
    }
  }

  private shiftCount(): number {
    const r = this.rng;
    const bits = (this.ops[0]?.size ?? this.osize) * 8;
    let c = r.pick([0, 1, 2, bits - 1, bits, bits + 1, 31, 32, 33, 63, 64, r.below(256), r.below(32)]);
    if ((this.e.mnemonic === "shld" || this.e.mnemonic === "shrd") && bits === 16) c = (c & 31) > 16 ? c & 15 : c;
    // For SHL/SHR/SAR of bytes and words, CF is undefined when the count is >= the width.
    if (["shl", "shr", "sar"].includes(this.e.mnemonic) && bits < 32 && (c & 31) >= bits) this.extraUndefined |= 1;
    return c & 0xff;
  }

  /** Instruction-specific register and memory set-up. */
  private semantics(): void {
    const e = this.e;
    const r = this.rng;
    const m = e.mnemonic;
    const abytes = this.asize;
    const sizeOf = (i: number) => this.ops[i]?.size ?? this.osize;

    // Put an edge value in the memory operand now and then.
    if (this.memOp && this.memInRegion && this.memOp.size <= 8 && r.chance(0.5)) {
      this.patchValue(this.ea, this.memOp.size, this.edgeOfSize(this.memOp.size));
    }

    const setPtr = (reg: number, addr: number) => {
      if (abytes === 8) this.setReg(reg, addr, 0);
      else if (abytes === 4) this.setReg(reg, addr, this.is64 && r.chance(0.5) ? r.u32() : 0);
      else this.regsLo[reg] = ((this.regsLo[reg]! & 0xffff0000) | (addr & 0xffff)) >>> 0;
    };
    const setCount = (reg: number) => {
      const v = r.pick([0, 1, 2, 3, r.below(16), r.below(64), r.below(3000), 0xffffffff]);
      if (abytes === 2) this.regsLo[reg] = ((this.regsLo[reg]! & 0xffff0000) | (v & 0xffff)) >>> 0;
      else this.setReg(reg, v, this.is64 && abytes === 8 ? 0 : r.u32());
    };

    if (STRING_OPS.has(m)) {
      const pick = () => DATA_ADDR + (r.chance(0.2) ? (r.chance(0.5) ? r.below(64) : DATA_SIZE - r.below(64)) : r.below(DATA_SIZE));
      setPtr(6, pick());
      setPtr(7, pick());
      if (this.prefixes.includes(0xf3) || this.prefixes.includes(0xf2)) setCount(1);
      if ((m === "cmps" || m === "scas") && r.chance(0.3)) {
        // make equality likely: same source and destination
        this.regsLo[6] = this.regsLo[7]!;
        this.regsHi[6] = this.regsHi[7]!;
      }
    }
    if (m === "xlat") setPtr(3, DATA_ADDR + r.below(DATA_SIZE - 256));

    if (m === "div" || m === "idiv") this.setupDivide(sizeOf(0));
    if ((SHIFTS.has(m) || m === "shld" || m === "shrd") && this.ops.some((o) => o.spec === "CL") && !this.formsAddress(1)) {
      this.regsLo[1] = ((this.regsLo[1]! & ~0xff) | this.shiftCount()) >>> 0;
    }
    if (m.startsWith("bt") && this.ops[1]?.spec[0] === "G" && this.memOp && this.gReg >= 0) {
      // A small bit offset, unless the register also forms the address.
      if (this.gReg !== this.baseRegOf() && this.gReg !== this.indexRegOf()) this.setRegOperand(this.gReg, this.osize, BigInt(r.below(1024) - 512));
    }
    if ((m === "cmpxchg") && r.chance(0.5)) {
      const size = sizeOf(0);
      const acc = this.regOperandValue(0, size);
      if (this.memOp && this.memInRegion) this.patchValue(this.ea, size, acc);
      else if (this.eReg >= 0 && this.eReg !== 0) this.setRegOperand(this.eReg, size, acc);
    }
    if (m === "cmpxchg8b" && this.memInRegion && r.chance(0.5)) {
      const half = (this.rex & 8) ? 8 : 4;
      this.patchValue(this.ea, half, this.regOperandValue(0, half));
      this.patchValue(this.ea + BigInt(half), half, this.regOperandValue(2, half));
    }
    if (m === "loop" || m === "loope" || m === "loopne" || m === "jcxz") {
      const v = r.pick([0, 1, 2, 0xffffffff, r.u32(), 0x10000, 0x10001]);
      if (this.asize === 2) this.regsLo[1] = ((this.regsLo[1]! & 0xffff0000) | (v & 0xffff)) >>> 0;
      else this.setReg(1, v, this.is64 && r.chance(0.5) ? r.pick([0, 1, 0xffffffff]) : 0);
    }
    if (m === "leave" || m === "enter") {
      const bp = r.chance(0.9) ? STACK_ADDR + 0x100 + r.below(STACK_SIZE - 0x200) : DATA_ADDR + r.below(DATA_SIZE);
      this.setReg(5, bp, 0);
    }

    if (m === "popf") {
      const sp = this.regsLo[4]!;
      let v = BigInt(r.u32());
      if (r.chance(0.98)) v &= ~0x100n; // TF
      this.patchValue(BigInt(sp), this.osize, v);
    }
  }

  private baseRegOf(): number {
    if (!this.mem || this.mem.ripRelative) return -1;
    const rm = this.mem.modrm & 7;
    if (rm === 4 && this.mem.sib >= 0) return (this.mem.sib & 7) | (this.rex & 1 ? 8 : 0);
    return rm | (this.rex & 1 ? 8 : 0);
  }

  private indexRegOf(): number {
    if (!this.mem || this.mem.sib < 0) return -1;
    const idx = ((this.mem.sib >> 3) & 7) | (this.rex & 2 ? 8 : 0);
    return idx === 4 ? -1 : idx;
  }

  /** True when register `reg` is the base or index of the memory operand (its value is taken). */
  private formsAddress(reg: number): boolean {
    if (!this.mem) return false;
    if (this.asize === 2) return true; // 16-bit forms: don't bother
    return this.baseRegOf() === reg || this.indexRegOf() === reg;
  }

  private setupDivide(size: number): void {
    const r = this.rng;
    if (!r.chance(0.6)) return;
    if (this.formsAddress(0) || this.formsAddress(2)) return;
    const signed = this.e.mnemonic === "idiv";
    const bits = BigInt(size * 8);
    // divisor: nonzero, biased to small values and edges
    let d = uN(size * 8, BigInt(r.pick([1, 2, 3, 7, 10, -1, -2, r.below(1000) + 1])));
    if (r.chance(0.3)) d = this.edgeOfSize(size) || 1n;
    // dividend
    const half = this.edgeOfSize(size);
    let high: bigint;
    if (signed) high = sN(size * 8, half) < 0n ? (1n << bits) - 1n : 0n;
    else high = d > 1n ? BigInt(r.u32()) % d : 0n;
    const dividendRegs = size === 1 ? null : [0, 2];
    if (this.eReg >= 0) {
      if (size === 1 ? this.eReg === 0 || (this.eReg === 4 && !this.hasRex) : this.eReg === 0 || this.eReg === 2) return;
      this.setRegOperand(this.eReg, size, d);
    } else if (this.memInRegion) {
      this.patchValue(this.ea, size, d);
    } else return;
    if (dividendRegs) {
      this.setRegOperand(0, size, half);
      this.setRegOperand(2, size, high);
    } else {
      this.regsLo[0] = ((this.regsLo[0]! & 0xffff0000) | (Number(high & 0xffn) << 8) | Number(half & 0xffn)) >>> 0;
    }
  }

  private finishRelocations(): void {
    const r = this.rng;
    const e = this.e;
    const m = e.mnemonic;
    const len = this.bytes.length;
    const end = CODE_ADDR + len;
    // A target on an int3 past the terminator: taken branches end at target+1, others at end+1.
    const target = end + 1 + r.below(7);
    if (this.relOffset >= 0) {
      let rel = target - end;
      if (r.chance(0.03)) rel = -len - 1 - r.below(64); // before CODE: a fetch fault
      for (let k = 0; k < this.relSize; k++) this.bytes[this.relOffset + k] = (rel >> (8 * k)) & 0xff;
    }
    if (this.relocRip >= 0) {
      const disp = Number(sN(32, (this.ea - BigInt(end)) & 0xffffffffn));
      for (let k = 0; k < 4; k++) this.bytes[this.relocRip + k] = (disp >> (8 * k)) & 0xff;
    }
    // Indirect near call/jmp: the target goes into the register or memory operand.
    if (e.map === 0 && e.opcode === 0xff && (e.group === 2 || e.group === 4)) {
      const size = this.osize;
      if (this.eReg >= 0) this.setRegOperand(this.eReg, size, BigInt(target));
      else if (this.memInRegion) this.patchValue(this.ea, size, BigInt(target));
    }
    if (m === "ret") {
      const sp = this.regsLo[4]!;
      this.patchValue(BigInt(sp), this.is64 ? 8 : this.osize, BigInt(target));
    }
  }
}
