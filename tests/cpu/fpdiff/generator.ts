// Seeded generator of floating-point differential-test cases: x87 (every escape-opcode form,
// register and memory), MMX and SSE..SSE4.2 (the fp lines of src/x86/fp/opcodes.ts). A case
// is the instruction under test (sometimes followed by FWAIT, so a pending unmasked x87
// exception shows as #MF), an initial x87/SSE state (FXSAVE image: control and status words,
// tags, TOP, MXCSR with all rounding modes, FTZ, DAZ, masks), register and memory operands
// drawn toward the edges (values.ts). Cases are a pure function of (mode, seed, index).
import { FP_OPCODE_LINES } from "../../../src/x86/fp/opcodes.ts";
import { OPCODES, type OpcodeEntry } from "../../../src/x86/opcodes.ts";
import { CODE_ADDR, DATA_ADDR, type Mode, type Patch, STACK_ADDR } from "../difftest/cases.ts";
import { Rng } from "../difftest/generator.ts";
import type { FpCase, FpCheck } from "./cases.ts";
import { type F64, type F80, randF32, randF64, randF80, randInt32, relatedF32, relatedF64, relatedF80 } from "./values.ts";

/** One instruction form under test. */
export interface FpEntry {
  label: string;
  family: string;
  /** 1: valid in 32-bit mode, 2: in 64-bit mode. */
  modes: number;
  build(g: CaseBuilder): void;
}

/** Instruction bytes under construction. */
export class Enc {
  pfx: number[] = [];
  rex = 0;
  op: number[] = [];
  modrm = -1;
  sib = -1;
  disp: number[] = [];
  imm: number[] = [];
  bytes(mode: Mode): number[] {
    const out = [...this.pfx];
    if (mode === 64 && this.rex !== 0) out.push(0x40 | this.rex);
    out.push(...this.op);
    if (this.modrm >= 0) out.push(this.modrm);
    if (this.sib >= 0) out.push(this.sib);
    out.push(...this.disp, ...this.imm);
    return out;
  }
}

const MXCSR_MASKABLE = 0x1f80;

export class CaseBuilder {
  readonly fx = new Uint8Array(512);
  readonly dv = new DataView(this.fx.buffer);
  readonly regsLo = new Uint32Array(16);
  readonly regsHi = new Uint32Array(16);
  readonly patches: Patch[] = [];
  code: number[] = [];
  eflags = 0;
  check: FpCheck = {};
  /** Registers used as address bases (not to be overwritten by operand set-up). */
  readonly reserved = new Set<number>();

  constructor(readonly r: Rng, readonly mode: Mode) {}

  get nXmm(): number {
    return this.mode === 64 ? 16 : 8;
  }

  // ---- FP state set-up
  fcw(): number {
    return this.dv.getUint16(0, true);
  }
  setFcw(v: number): void {
    this.dv.setUint16(0, v, true);
  }
  fsw(): number {
    return this.dv.getUint16(2, true);
  }
  setFsw(v: number): void {
    this.dv.setUint16(2, v, true);
  }
  top(): number {
    return (this.fsw() >> 11) & 7;
  }
  /** Sets ST(i) (as FXSAVE stores it) and marks its physical register valid. */
  setST(i: number, v: F80): void {
    const o = 32 + i * 16;
    this.dv.setUint32(o, v[2] >>> 0, true);
    this.dv.setUint32(o + 4, v[1] >>> 0, true);
    this.dv.setUint16(o + 8, v[0] & 0xffff, true);
    this.fx[4] |= 1 << ((this.top() + i) & 7);
  }
  getST(i: number): F80 {
    const o = 32 + i * 16;
    return [this.dv.getUint16(o + 8, true), this.dv.getUint32(o + 4, true), this.dv.getUint32(o, true)];
  }
  setEmpty(i: number): void {
    this.fx[4] &= ~(1 << ((this.top() + i) & 7));
  }
  setMxcsr(v: number): void {
    this.dv.setUint32(24, v >>> 0, true);
  }
  mxcsr(): number {
    return this.dv.getUint32(24, true);
  }
  setXmm32(reg: number, lane: number, v: number): void {
    this.dv.setUint32(160 + reg * 16 + lane * 4, v >>> 0, true);
  }
  setXmm64(reg: number, lane: number, v: F64): void {
    this.dv.setUint32(160 + reg * 16 + lane * 8, v[1] >>> 0, true);
    this.dv.setUint32(160 + reg * 16 + lane * 8 + 4, v[0] >>> 0, true);
  }
  /** MMX register i (= physical register i; TOP is made 0 when MMX registers are set). */
  setMm(i: number, hi: number, lo: number): void {
    // With TOP = 0, ST(i) = R(i) = MMi.
    const o = 32 + i * 16;
    this.dv.setUint32(o, lo >>> 0, true);
    this.dv.setUint32(o + 4, hi >>> 0, true);
    this.dv.setUint16(o + 8, this.r.chance(0.8) ? 0xffff : this.r.u32() & 0xffff, true);
  }

  /** Random initial x87 state: control word with all rounding and precision controls. */
  initX87(unmaskChance = 0.15): void {
    const r = this.r;
    const pc = r.chance(0.6) ? 3 : r.pick([0, 2, 3, 1]);
    const rc = r.below(4);
    let masks = 0x3f;
    if (r.chance(unmaskChance)) masks = r.u32() & 0x3f;
    this.setFcw(0x40 | masks | (pc << 8) | (rc << 10));
    const top = r.below(8);
    // Status: sticky flags only among the masked ones (no exception pending), random CCs.
    const flags = r.chance(0.5) ? 0 : r.u32() & masks & 0x3f;
    const cc = r.u32() & 0x4700;
    this.setFsw(flags | cc | (top << 11));
    this.fx[4] = 0;
    // Stack depth: ST(0)..ST(k-1) valid.
    const k = r.chance(0.03) ? 0 : r.chance(0.05) ? 1 : r.chance(0.25) ? 8 : 2 + r.below(6);
    for (let i = 0; i < 8; i++) {
      const v = randF80(r);
      if (i < k) this.setST(i, i > 0 && r.chance(0.3) ? relatedF80(r, this.getST(0)) : v);
      else {
        const o = 32 + i * 16;
        this.dv.setUint32(o, r.u32(), true);
        this.dv.setUint32(o + 4, r.u32(), true);
        this.dv.setUint16(o + 8, r.u32() & 0xffff, true);
      }
    }
    if (r.chance(0.05)) this.fx[4] ^= 1 << r.below(8);
    // Sometimes "double mode" (FCW 027Fh, as Windows and FreeBSD run the x87) with register
    // values that are doubles: the emulator's fast path for it.
    if (r.chance(0.12)) {
      this.setFcw(r.chance(0.8) ? 0x027f : 0x027f | (r.below(4) << 10));
      for (let i = 0; i < 8; i++) {
        const v = this.getST(i);
        if ((v[0] & 0x7fff) !== 0x7fff && r.chance(0.8)) this.dv.setUint32(32 + i * 16, (v[2] & ~0x7ff) >>> 0, true);
      }
      this.setFsw(this.fsw() & ~0x3f);
    }
  }

  initSse(unmaskChance = 0.1): void {
    const r = this.r;
    let m = MXCSR_MASKABLE;
    if (r.chance(unmaskChance)) m = (r.u32() & 0x1f80) >>> 0;
    const rc = r.chance(0.5) ? 0 : r.below(4);
    const ftz = r.chance(0.15) ? 0x8000 : 0;
    const daz = r.chance(0.15) ? 0x40 : 0;
    const flags = r.chance(0.5) ? 0 : r.u32() & 0x3f & (m >>> 7);
    this.setMxcsr(m | (rc << 13) | ftz | daz | flags);
    for (let i = 0; i < 16; i++) this.randomXmm(i, r.below(4));
  }

  /** kind: 0 singles, 1 doubles, 2 integers, 3 mixed random bits. */
  randomXmm(reg: number, kind: number): void {
    const r = this.r;
    if (kind === 0) for (let l = 0; l < 4; l++) this.setXmm32(reg, l, randF32(r));
    else if (kind === 1) for (let l = 0; l < 2; l++) this.setXmm64(reg, l, randF64(r));
    else for (let l = 0; l < 4; l++) this.setXmm32(reg, l, kind === 2 ? randInt32(r) : r.u32());
  }

  // ---- memory operands
  /**
   * Encodes a memory operand for `e` (reg field `regField`) of `size` bytes and returns the
   * region offset the generator may patch. `align`: the alignment most cases get.
   */
  mem(e: Enc, regField: number, size: number, align = 1): number {
    const r = this.r;
    let off: number;
    const k = r.below(100);
    if (k < 88) {
      off = r.below(Math.max(1, 8192 - size));
      if (align > 1 && r.chance(0.9)) off &= ~(align - 1);
    } else if (k < 94) off = 4096 - r.below(size) - 1; // crosses the DATA page boundary (both mapped)
    else off = 8192 - r.below(size); // runs into the unmapped page after DATA
    const addr = DATA_ADDR + off;
    const rf = regField & 7;
    if (regField & 8) e.rex |= 4;
    // Base register (not ESP, not one already used).
    const choices = [0, 1, 2, 3, 5, 6, 7].filter((x) => !this.reserved.has(x));
    const base = r.pick(choices.length ? choices : [3]);
    const useHigh = this.mode === 64 && r.chance(0.25);
    const b = useHigh ? base + 8 : base;
    const form = r.below(this.mode === 64 ? 5 : 4);
    if (form === 3 && this.mode === 32 && r.chance(0.5)) {
      // [disp32]
      e.modrm = (0 << 6) | (rf << 3) | 5;
      e.disp = le32(addr);
      return off;
    }
    if (form === 4) {
      // RIP-relative: disp = addr - (end of instruction), fixed up in finishRipRel.
      e.modrm = (0 << 6) | (rf << 3) | 5;
      e.disp = [0, 0, 0, 0];
      this.ripRel = { target: addr, enc: e };
      return off;
    }
    this.reserved.add(b);
    if (useHigh) e.rex |= 1;
    let disp = 0;
    const mod = form === 0 ? (base === 5 ? 1 : 0) : form === 1 ? 1 : 2;
    if (mod === 1) disp = r.below(256) - 128;
    else if (mod === 2) disp = (r.u32() | 0) % 0x100000;
    const baseVal = (addr - disp) >>> 0;
    this.regsLo[b] = baseVal;
    this.regsHi[b] = 0;
    if (form === 3) {
      // SIB with an index register (scale 1..8) holding 0 or a small value.
      const idxChoices = [0, 1, 2, 3, 5, 6, 7].filter((x) => x !== base && !this.reserved.has(x));
      const idx = r.pick(idxChoices.length ? idxChoices : [base === 6 ? 7 : 6]);
      this.reserved.add(idx);
      const sc = r.below(4);
      const iv = r.below(16) << 2;
      this.regsLo[idx] = iv;
      this.regsHi[idx] = 0;
      this.regsLo[b] = (baseVal - (iv << sc)) >>> 0;
      e.modrm = (mod << 6) | (rf << 3) | 4;
      e.sib = (sc << 6) | (idx << 3) | (b & 7);
    } else if ((b & 7) === 4) {
      e.modrm = (mod << 6) | (rf << 3) | 4;
      e.sib = (4 << 3) | 4;
    } else e.modrm = (mod << 6) | (rf << 3) | (b & 7);
    if (mod === 1) e.disp = [disp & 0xff];
    else if (mod === 2) e.disp = le32(disp);
    return off;
  }

  ripRel: { target: number; enc: Enc } | null = null;

  /** Writes bytes into memory at region offset off (up to 8 per patch, at most 4 patches). */
  poke(off: number, bytes: number[]): void {
    for (let i = 0; i < bytes.length; i += 8) {
      if (this.patches.length >= 4) return;
      const chunk = bytes.slice(i, i + 8);
      if (off + i < 0 || off + i >= 12288) continue;
      this.patches.push({ offset: off + i, bytes: chunk });
    }
  }

  emit(e: Enc): void {
    this.code.push(...e.bytes(this.mode));
  }
}

export function le32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}
function le16(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff];
}
function f80bytes(v: F80): number[] {
  return [...le32(v[2]), ...le32(v[1]), ...le16(v[0])];
}
export function f64bytes(v: F64): number[] {
  return [...le32(v[1]), ...le32(v[0])];
}

// ------------------------------------------------------------------ x87 entries

/** Memory-operand kinds of the x87 arithmetic forms by escape byte. */
const ARITH_MEM: Record<number, string> = { 216: "m32", 220: "m64", 218: "i32", 222: "i16" };
const X87_ARITH = ["fadd", "fmul", "fcom", "fcomp", "fsub", "fsubr", "fdiv", "fdivr"];

function x87Entries(): FpEntry[] {
  const out: FpEntry[] = [];
  const add = (label: string, family: string, build: (g: CaseBuilder) => void) => out.push({ label, family, modes: 3, build });
  const memOp = (esc: number, reg: number, size: number, fill: (g: CaseBuilder, off: number) => void) => (g: CaseBuilder) => {
    g.initX87();
    const e = new Enc();
    // 66h selects the 16-bit environment layouts (FLDENV FNSTENV FRSTOR FNSAVE); elsewhere the
    // x87 ignores it.
    if (g.r.chance(0.25)) e.pfx.push(0x66);
    if (g.r.chance(0.02)) e.pfx.push(0xf0); // LOCK: #UD
    e.op = [esc];
    const off = g.mem(e, reg, size);
    fill(g, off);
    g.emit(e);
  };
  const fillKind = (kind: string) => (g: CaseBuilder, off: number) => {
    const r = g.r;
    if (kind === "m32") g.poke(off, le32(r.chance(0.3) ? relatedF32(r, randF32(r)) : randF32(r)));
    else if (kind === "m64") g.poke(off, f64bytes(r.chance(0.3) ? relatedF64(r, randF64(r)) : randF64(r)));
    else if (kind === "m80") g.poke(off, f80bytes(r.chance(0.3) ? relatedF80(r, g.getST(0)) : randF80(r)));
    else if (kind === "i16") g.poke(off, le16(randInt32(r)));
    else if (kind === "i32") g.poke(off, le32(randInt32(r)));
    else if (kind === "i64") g.poke(off, [...le32(randInt32(r)), ...le32(randInt32(r))]);
    else if (kind === "bcd") {
      const bytes: number[] = [];
      for (let i = 0; i < 9; i++) {
        const lo = r.chance(0.95) ? r.below(10) : r.below(16);
        const hi = r.chance(0.95) ? r.below(10) : r.below(16);
        bytes.push(lo | (hi << 4));
      }
      bytes.push(r.chance(0.5) ? 0x80 : r.chance(0.9) ? 0 : r.u32() & 0xff);
      g.poke(off, bytes);
    }
  };
  for (const esc of [0xd8, 0xdc, 0xda, 0xde]) {
    const kind = ARITH_MEM[esc]!;
    const size = kind === "m64" ? 8 : kind === "i16" ? 2 : 4;
    for (let reg = 0; reg < 8; reg++) {
      add(`${esc.toString(16).toUpperCase()} /${reg} ${X87_ARITH[reg]} ${kind}`, "x87-arith", memOp(esc, reg, size, fillKind(kind)));
    }
  }
  // Register forms of the arithmetic escapes.
  const regForm = (esc: number, base: number, label: string, family = "x87-arith") =>
    add(`${esc.toString(16).toUpperCase()} ${base.toString(16).toUpperCase()}+i ${label}`, family, (g) => {
      g.initX87();
      const i = g.r.below(8);
      const e = new Enc();
      e.op = [esc, base + i];
      g.emit(e);
    });
  for (let reg = 0; reg < 8; reg++) regForm(0xd8, 0xc0 + reg * 8, `${X87_ARITH[reg]} st0,st(i)`);
  const DC_REG = ["fadd", "fmul", "fcom2", "fcomp3", "fsubr", "fsub", "fdivr", "fdiv"];
  for (let reg = 0; reg < 8; reg++) regForm(0xdc, 0xc0 + reg * 8, `${DC_REG[reg]} st(i),st0`);
  const DE_REG: [number, string][] = [[0, "faddp"], [1, "fmulp"], [2, "fcomp5"], [4, "fsubrp"], [5, "fsubp"], [6, "fdivrp"], [7, "fdivp"]];
  for (const [reg, name] of DE_REG) regForm(0xde, 0xc0 + reg * 8, name);
  const exact = (bytes: number[], label: string, family: string, setup?: (g: CaseBuilder) => void) =>
    add(`${bytes.map((b) => b.toString(16).toUpperCase().padStart(2, "0")).join(" ")} ${label}`, family, (g) => {
      g.initX87();
      setup?.(g);
      const e = new Enc();
      e.op = bytes;
      g.emit(e);
    });
  exact([0xde, 0xd9], "fcompp", "x87-arith");
  exact([0xda, 0xe9], "fucompp", "x87-arith");
  for (let reg = 0; reg < 4; reg++) {
    regForm(0xda, 0xc0 + reg * 8, ["fcmovb", "fcmove", "fcmovbe", "fcmovu"][reg]!, "x87-misc");
    regForm(0xdb, 0xc0 + reg * 8, ["fcmovnb", "fcmovne", "fcmovnbe", "fcmovnu"][reg]!, "x87-misc");
  }
  regForm(0xdb, 0xe8, "fucomi", "x87-arith");
  regForm(0xdb, 0xf0, "fcomi", "x87-arith");
  regForm(0xdf, 0xe8, "fucomip", "x87-arith");
  regForm(0xdf, 0xf0, "fcomip", "x87-arith");
  regForm(0xdd, 0xe0, "fucom", "x87-arith");
  regForm(0xdd, 0xe8, "fucomp", "x87-arith");
  regForm(0xd9, 0xc0, "fld st(i)", "x87-ldst");
  regForm(0xd9, 0xc8, "fxch", "x87-misc");
  regForm(0xd9, 0xd8, "fstp1", "x87-ldst");
  regForm(0xdd, 0xc0, "ffree", "x87-misc");
  regForm(0xdd, 0xc8, "fxch4", "x87-misc");
  regForm(0xdd, 0xd0, "fst st(i)", "x87-ldst");
  regForm(0xdd, 0xd8, "fstp st(i)", "x87-ldst");
  regForm(0xdf, 0xc0, "ffreep", "x87-misc");
  regForm(0xdf, 0xc8, "fxch7", "x87-misc");
  regForm(0xdf, 0xd0, "fstp8", "x87-ldst");
  regForm(0xdf, 0xd8, "fstp9", "x87-ldst");
  const D9: [number, string, string][] = [
    [0xd0, "fnop", "x87-misc"], [0xe0, "fchs", "x87-misc"], [0xe1, "fabs", "x87-misc"], [0xe4, "ftst", "x87-arith"],
    [0xe5, "fxam", "x87-misc"], [0xe8, "fld1", "x87-ldst"], [0xe9, "fldl2t", "x87-ldst"], [0xea, "fldl2e", "x87-ldst"],
    [0xeb, "fldpi", "x87-ldst"], [0xec, "fldlg2", "x87-ldst"], [0xed, "fldln2", "x87-ldst"], [0xee, "fldz", "x87-ldst"],
    [0xf4, "fxtract", "x87-misc"], [0xf5, "fprem1", "x87-arith"], [0xf6, "fdecstp", "x87-misc"], [0xf7, "fincstp", "x87-misc"],
    [0xf8, "fprem", "x87-arith"], [0xfa, "fsqrt", "x87-arith"], [0xfc, "frndint", "x87-arith"], [0xfd, "fscale", "x87-arith"],
  ];
  for (const [m, name, fam] of D9) exact([0xd9, m], name, fam);
  // Transcendentals: results within 1 ulp of the host (C1, the rounding direction, follows).
  const around = (g: CaseBuilder, maxExp: number, minExp: number): F80 => {
    const r = g.r;
    const e = minExp + r.below(maxExp - minExp + 1);
    return [(r.chance(0.5) ? 0x8000 : 0) | (16383 + e), (0x80000000 | r.u32()) >>> 0, r.u32() >>> 0];
  };
  const TRANS: [number, string, (g: CaseBuilder) => void][] = [
    // F2XM1 is defined for |x| <= 1 and FYL2XP1 for |x| < 1 - sqrt(2)/2 only.
    [0xf0, "f2xm1", (g) => { const v = g.getST(0); if (g.r.chance(0.9) || ((v[0] & 0x7fff) >= 16383 && (v[0] & 0x7fff) < 0x7fff)) g.setST(0, g.r.chance(0.05) ? [g.r.chance(0.5) ? 0xbfff : 0x3fff, 0x80000000, 0] : around(g, -1, -70)); }],
    [0xf1, "fyl2x", (g) => { if (g.r.chance(0.6)) g.setST(0, around(g, 40, -40).map((v, i) => (i === 0 ? v & 0x7fff : v)) as F80); }],
    [0xf2, "fptan", (g) => { if (g.r.chance(0.8)) g.setST(0, around(g, 20, -70)); if (g.r.chance(0.7)) g.setEmpty(7); }],
    [0xf3, "fpatan", (g) => { if (g.r.chance(0.6)) { g.setST(0, around(g, 20, -20)); g.setST(1, around(g, 20, -20)); } }],
    [0xf9, "fyl2xp1", (g) => { const v = g.getST(0); if (g.r.chance(0.9) || ((v[0] & 0x7fff) >= 16381 && (v[0] & 0x7fff) < 0x7fff)) g.setST(0, around(g, -3, -70)); }],
    [0xfb, "fsincos", (g) => { if (g.r.chance(0.8)) g.setST(0, around(g, 20, -70)); if (g.r.chance(0.7)) g.setEmpty(7); }],
    [0xfe, "fsin", (g) => { if (g.r.chance(0.8)) g.setST(0, around(g, 20, -70)); }],
    [0xff, "fcos", (g) => { if (g.r.chance(0.8)) g.setST(0, around(g, 20, -70)); }],
  ];
  for (const [m, name, setup] of TRANS) {
    exact([0xd9, m], name, "x87-trans", (g) => {
      setup(g);
      g.check.ulps = 1;
      g.check.swMask = 0x200;
    });
  }
  exact([0xdb, 0xe2], "fnclex", "x87-ctl");
  exact([0xdb, 0xe3], "fninit", "x87-ctl");
  exact([0xdf, 0xe0], "fnstsw ax", "x87-ctl");
  exact([0x9b], "fwait", "x87-ctl", (g) => {
    // Sometimes a pending exception: an unmasked flag with ES set.
    if (g.r.chance(0.5)) {
      const cw = g.fcw() & ~(1 << g.r.below(6));
      g.setFcw(cw);
      g.setFsw(g.fsw() | (~cw & 0x3f) | 0x8080);
    }
  });
  // Memory forms of D9 DB DD DF.
  const m = (esc: number, reg: number, size: number, label: string, family: string, kind?: string) =>
    add(`${esc.toString(16).toUpperCase()} /${reg} ${label}`, family, memOp(esc, reg, size, kind ? fillKind(kind) : () => {}));
  m(0xd9, 0, 4, "fld m32", "x87-ldst", "m32");
  m(0xd9, 2, 4, "fst m32", "x87-ldst");
  m(0xd9, 3, 4, "fstp m32", "x87-ldst");
  m(0xd9, 4, 28, "fldenv", "x87-ctl");

  m(0xd9, 5, 2, "fldcw", "x87-ctl", "i16");
  m(0xd9, 6, 28, "fnstenv", "x87-ctl");
  m(0xd9, 7, 2, "fnstcw", "x87-ctl");
  m(0xdb, 0, 4, "fild m32", "x87-ldst", "i32");
  m(0xdb, 1, 4, "fisttp m32", "x87-ldst");
  m(0xdb, 2, 4, "fist m32", "x87-ldst");
  m(0xdb, 3, 4, "fistp m32", "x87-ldst");
  m(0xdb, 5, 10, "fld m80", "x87-ldst", "m80");
  m(0xdb, 7, 10, "fstp m80", "x87-ldst");
  m(0xdd, 0, 8, "fld m64", "x87-ldst", "m64");
  m(0xdd, 1, 8, "fisttp m64", "x87-ldst");
  m(0xdd, 2, 8, "fst m64", "x87-ldst");
  m(0xdd, 3, 8, "fstp m64", "x87-ldst");
  m(0xdd, 4, 108, "frstor", "x87-ctl");
  m(0xdd, 6, 108, "fnsave", "x87-ctl");
  m(0xdd, 7, 2, "fnstsw m16", "x87-ctl");
  m(0xdf, 0, 2, "fild m16", "x87-ldst", "i16");
  m(0xdf, 1, 2, "fisttp m16", "x87-ldst");
  m(0xdf, 2, 2, "fist m16", "x87-ldst");
  m(0xdf, 3, 2, "fistp m16", "x87-ldst");
  m(0xdf, 4, 10, "fbld", "x87-ldst", "bcd");
  m(0xdf, 5, 8, "fild m64", "x87-ldst", "i64");
  m(0xdf, 6, 10, "fbstp", "x87-ldst");
  m(0xdf, 7, 8, "fistp m64", "x87-ldst");
  return out;
}

// ------------------------------------------------------------------ the generator

export function fpEntries(mode: Mode): FpEntry[] {
  const bit = mode === 64 ? 2 : 1;
  return [...x87Entries(), ...sseEntries()].filter((e) => (e.modes & bit) !== 0);
}

/** SSE/MMX entries from the fp lines of the opcode table (added as the units land). */
function sseEntries(): FpEntry[] {
  const out: FpEntry[] = [];
  // The fp lines are merged last into the table.
  const n = FP_OPCODE_LINES.split("\n").filter((l) => l.trim() !== "").length;
  for (const e of OPCODES.slice(OPCODES.length - n)) {
    const b = sseBuilder(e);
    if (b) out.push(b);
  }
  return out;
}

const FLOAT_MN = /^(add|sub|mul|div|min|max|sqrt|rcp|rsqrt|cmp|u?comi|cvt|round|dp|hadd|hsub|addsub|blendv?p|and|andn|or|xor)(ss|sd|ps|pd|s|)/;

function entryLabel(e: OpcodeEntry): string {
  const pfx = e.prefix ? `${e.prefix.toString(16).toUpperCase()} ` : "";
  const map = ["", "0F ", "0F 38 ", "0F 3A "][e.map]!;
  const op = e.opcode.toString(16).toUpperCase().padStart(2, "0");
  const grp = e.group >= 0 ? `/${e.group}` : e.modrmExact >= 0 ? `=${e.modrmExact.toString(16).toUpperCase()}` : "";
  return `${pfx}${map}${op}${grp} ${e.mnemonic} ${e.operands.join(",")}`.trim();
}

function sseFamily(e: OpcodeEntry): string {
  const m = e.mnemonic;
  const mmxOnly = e.operands.some((o) => /^[PQN]/.test(o)) && !e.operands.some((o) => /^[VWU]/.test(o));
  if (m === "fxsave" || m === "fxrstor" || m === "ldmxcsr" || m === "stmxcsr" || m === "emms") return "sse-ctl";
  if (m.startsWith("pcmp") && m.includes("str")) return "sse-str";
  if (m === "crc32") return "sse-str";
  if (/^(mov|lddqu|maskmov)/.test(m) && !m.startsWith("movmsk")) return mmxOnly ? "mmx" : "sse-move";
  if (/^cvt/.test(m)) return "sse-cvt";
  if (FLOAT_MN.test(m) && !/^(pcmp|pand|por|pxor)/.test(m)) return "sse-float";
  return mmxOnly ? "mmx" : "sse-int";
}

/** Bytes of a memory operand spec (W/Q/E/M + size letter). */
function memBytes(spec: string, rexW: boolean, e: OpcodeEntry): number {
  const sz = spec.slice(1);
  if (e.mnemonic === "fxsave" || e.mnemonic === "fxrstor") return 512;
  switch (sz) {
    case "x": case "u": return 16;
    case "q": return 8;
    case "d": return 4;
    case "w": return 2;
    case "b": return 1;
    case "y": return rexW ? 8 : 4;
    default: return 4;
  }
}

function sseBuilder(e: OpcodeEntry): FpEntry | null {
  const ops = e.operands;
  const family = sseFamily(e);
  const m = e.mnemonic;
  const usesMmx = ops.some((o) => /^[PQN]/.test(o)) || m === "emms" || m === "movq2dq" || m === "movdq2q";
  const isDouble = /(sd|pd)$|2sd|2pd|^cvt(sd|pd)|dppd/.test(m);
  const isFloat = family === "sse-float" || family === "sse-cvt";
  const regRole = ops.find((o) => /^[VPG]/.test(o));
  const rmRole = ops.find((o) => /^[WQUNEM]/.test(o));
  return {
    label: entryLabel(e),
    family,
    modes: e.modes,
    build(g: CaseBuilder): void {
      const r = g.r;
      if (usesMmx) {
        g.initX87(0);
        for (let i = 0; i < 8; i++) g.setMm(i, r.u32(), r.u32());
        if (r.chance(0.2)) {
          // Some MMX values with edge integers.
          const i = r.below(8);
          g.setMm(i, randInt32(r), randInt32(r));
        }
      }
      const kind = isFloat ? (isDouble ? 1 : 0) : 2;
      for (let i = 0; i < 16; i++) g.randomXmm(i, r.chance(0.85) ? kind : r.below(4));
      const enc = new Enc();
      if (e.prefix) enc.pfx.push(e.prefix);
      if (r.chance(0.05)) enc.pfx.unshift(0x3e); // a no-op segment prefix
      if (r.chance(0.02)) enc.pfx.unshift(0xf0); // LOCK: #UD on every SSE/MMX form
      const rexW = g.mode === 64 && r.chance(ops.some((o) => o.endsWith("y")) ? 0.5 : 0.1);
      if (rexW) enc.rex |= 8;
      enc.op = e.map === 1 ? [0x0f, e.opcode] : e.map === 2 ? [0x0f, 0x38, e.opcode] : e.map === 3 ? [0x0f, 0x3a, e.opcode] : [e.opcode];
      const nreg = g.mode === 64 ? 16 : 8;
      // ModRM reg field.
      let regField: number;
      if (e.group >= 0) regField = e.group;
      else if (regRole && regRole[0] === "G") regField = [0, 1, 2, 3, 5, 6, 7][r.below(7)]!;
      else regField = regRole && regRole[0] === "P" ? r.below(8) : r.below(nreg);
      // Related float operands: the source often near the destination.
      const rmIsMem = rmRole !== undefined && (rmRole[0] === "M" || (/^[WQE]/.test(rmRole) && r.chance(0.4)));
      if (rmRole === undefined) {
        g.emit(enc);
        return;
      }
      if (rmIsMem) {
        const size = memBytes(rmRole, rexW, e);
        // EAX and EDX hold the explicit lengths of PCMPESTRx: not address registers then.
        if (m === "pcmpestri" || m === "pcmpestrm") {
          g.reserved.add(0);
          g.reserved.add(2);
        }
        const align = /^[WM]x$/.test(rmRole) || m === "fxsave" || m === "fxrstor" ? 16 : size >= 8 ? 8 : 1;
        // Sometimes a base register that is also a general operand: avoid it.
        if (regRole && regRole[0] === "G") g.reserved.add(regField & 7);
        const off = g.mem(enc, regField, Math.min(size, 512), align);
        fillMemory(g, off, size, kind, e, regField);
        if (m === "fxsave") {
          // FOP, FIP, FDP (AMD saves them only with an exception pending) and MXCSR_MASK (the
          // host has AMD's misaligned-SSE bit) are not compared.
          const ign: number[] = [];
          for (let k = 6; k < 24; k++) ign.push(off + k);
          for (let k = 28; k < 32; k++) ign.push(off + k);
          g.check.memIgnore = ign;
        }
      } else {
        let rmReg = rmRole[0] === "E" ? r.below(nreg) : rmRole[0] === "Q" || rmRole[0] === "N" ? r.below(8) : r.below(nreg);
        if (rmRole[0] === "E" && rmReg === 4) rmReg = 0;
        if (regField & 8) enc.rex |= 4;
        if (rmReg & 8) enc.rex |= 1;
        enc.modrm = 0xc0 | ((regField & 7) << 3) | (rmReg & 7);
        if (isFloat && r.chance(0.35) && rmRole[0] === "W") {
          // The source lanes near the destination's.
          for (let l = 0; l < 4; l++) {
            const o = 160 + (regField & 15) * 16;
            const so = 160 + (rmReg & 15) * 16;
            if (isDouble && l < 2) {
              const v = relatedF64(r, [g.dv.getUint32(o + l * 8 + 4, true), g.dv.getUint32(o + l * 8, true)]);
              g.dv.setUint32(so + l * 8, v[1], true);
              g.dv.setUint32(so + l * 8 + 4, v[0], true);
            } else if (!isDouble) g.dv.setUint32(so + l * 4, relatedF32(r, g.dv.getUint32(o + l * 4, true)), true);
          }
        }
      }
      // Immediate.
      if (ops.includes("Ib")) enc.imm = [immFor(g, m)];
      // Instruction-specific set-ups.
      // AMD is off by up to 2^-11 (e.g. 1/2^k), beyond the 1.5 x 2^-12 the manuals give.
      if (/^(rcp|rsqrt)/.test(m)) g.check.relErr = 2 ** -10;
      if (m === "pcmpestri" || m === "pcmpestrm") {
        g.regsLo[0] = (r.below(41) - 20) >>> 0;
        g.regsLo[2] = (r.below(41) - 20) >>> 0;
        g.regsHi[0] = g.mode === 64 && (g.regsLo[0]! & 0x80000000) ? 0xffffffff : 0;
        g.regsHi[2] = g.mode === 64 && (g.regsLo[2]! & 0x80000000) ? 0xffffffff : 0;
      }
      if (m.startsWith("pcmp") && m.includes("str")) {
        // Strings with NULs and repeated characters.
        for (const x of [regField & 15, 0]) {
          const o = 160 + x * 16;
          for (let k = 0; k < 16; k++) g.fx[o + k] = r.chance(0.1) ? 0 : 0x61 + r.below(4);
        }
      }
      if (m === "maskmovq" || m === "maskmovdqu") {
        g.regsLo[7] = (DATA_ADDR + r.below(8192)) >>> 0;
        g.regsHi[7] = 0;
        if (g.mode === 64 && enc.pfx.length) enc.pfx = enc.pfx.filter((b) => b !== 0x3e);
      }
      g.emit(enc);
    },
  };
}

function immFor(g: CaseBuilder, m: string): number {
  const r = g.r;
  if (/^cmp(ss|sd|ps|pd)$/.test(m)) return r.chance(0.95) ? r.below(8) : r.below(256);
  if (/^round/.test(m)) return r.below(16);
  if (/^ps(rl|ra|ll)[wdq]$/.test(m)) return r.pick([0, 1, 7, 8, 15, 16, 31, 32, 63, 64, 255, r.below(256)]);
  if (/^ps(rl|ll)dq$/.test(m)) return r.pick([0, 1, 7, 8, 15, 16, 17, r.below(256)]);
  if (m === "palignr") return r.pick([0, 1, 7, 8, 15, 16, 17, 31, 32, r.below(256)]);
  return r.u32() & 0xff;
}

function fillMemory(g: CaseBuilder, off: number, size: number, kind: number, e: OpcodeEntry, regField: number): void {
  const r = g.r;
  const m = e.mnemonic;
  if (m === "fxrstor") {
    // A valid MXCSR (and its mask word) at offset 24; everything else is the random fill.
    const mx = (r.u32() & 0xffbf) >>> 0;
    g.poke(off + 24, [...le32(mx), ...le32(0xffff)]);
    g.poke(off, [...le16(0x37f | (r.u32() & 0x0c00)), ...le16(r.u32() & 0x3800), r.u32() & 0xff, 0, 0, 0]);
    return;
  }
  if (m === "ldmxcsr") {
    g.poke(off, le32(r.chance(0.9) ? (r.u32() & 0xffff) >>> 0 : r.u32()));
    return;
  }
  const words = Math.max(1, Math.ceil(Math.min(size, 16) / 4));
  const bytes: number[] = [];
  if (kind === 1) {
    const base: F64 = [g.dv.getUint32(160 + (regField & 15) * 16 + 4, true), g.dv.getUint32(160 + (regField & 15) * 16, true)];
    for (let k = 0; k < Math.ceil(words / 2); k++) bytes.push(...f64bytes(r.chance(0.35) ? relatedF64(r, base) : randF64(r)));
  } else if (kind === 0) {
    const base = g.dv.getUint32(160 + (regField & 15) * 16, true);
    for (let k = 0; k < words; k++) bytes.push(...le32(r.chance(0.35) ? relatedF32(r, base) : randF32(r)));
  } else for (let k = 0; k < words; k++) bytes.push(...le32(randInt32(r)));
  g.poke(off, bytes.slice(0, Math.min(size, 16)));
}

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

export class FpGenerator {
  readonly entries: FpEntry[];
  readonly mode: Mode;
  readonly seed: number;
  private readonly r = new Rng();
  constructor(opts: { mode: Mode; seed: number }) {
    this.mode = opts.mode;
    this.seed = opts.seed;
    this.entries = fpEntries(opts.mode);
  }

  generate(index: number, entryIndex = index % this.entries.length): FpCase {
    const r = this.r;
    r.reseed(mix32(this.seed ^ 0x5eed), mix32(index ^ (this.mode << 24)), mix32(index * 31 + this.seed));
    const entry = this.entries[entryIndex]!;
    const g = new CaseBuilder(r, this.mode);
    for (let i = 0; i < 16; i++) {
      g.regsLo[i] = randInt32(r);
      g.regsHi[i] = this.mode === 64 ? randInt32(r) : 0;
    }
    g.regsLo[4] = STACK_ADDR + 0x800;
    g.regsHi[4] = 0;
    g.eflags = r.u32() & 0x8d5;
    g.setFcw(0x37f);
    g.setMxcsr(0x1f80);
    g.initSse(0.05);
    entry.build(g);
    if (entry.family.startsWith("x87") && entry.label !== "9B fwait" && (g.fcw() & 0x3f) !== 0x3f ? r.chance(0.7) : r.chance(0.1)) {
      if (entry.family.startsWith("x87")) g.code.push(0x9b);
    }
    if (g.ripRel) {
      // disp32 is relative to the end of the instruction under test (the first instruction).
      const enc = g.ripRel.enc;
      const bytes = enc.bytes(this.mode);
      const end = CODE_ADDR + bytes.length;
      const d = (g.ripRel.target - end) | 0;
      enc.disp = le32(d);
      const fixed = enc.bytes(this.mode);
      g.code.splice(0, fixed.length, ...fixed);
    }
    return {
      id: index >>> 0,
      mode: this.mode,
      eflags: g.eflags,
      fillSeed: mix32(this.seed ^ Math.floor(index / 64)),
      regsLo: g.regsLo,
      regsHi: g.regsHi,
      code: Uint8Array.from(g.code),
      patches: g.patches,
      undefinedFlags: 0,
      label: entry.label,
      seed: this.seed,
      index,
      fx: g.fx,
      check: g.check,
    };
  }
}
