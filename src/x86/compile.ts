/**
 * Instruction semantics, compiled once per decoded instruction into a closure.
 *
 * A closure returns 0 to go on with the next instruction of its block, 1 when it has set RIP
 * itself as a near branch (the block may be linked to its successor), 2 when the block must
 * end after it with RIP at the next instruction (mode changes, I/O, HLT, STI...), or 3 when it
 * has set RIP itself through a far transfer or an event (no linking: CS may have changed).
 * Faults unwind with cpu.fault().
 *
 * Invariants:
 * - A closure performs every check and every memory access that can fault before it writes
 *   a register or the flags; stores come before register write-back.
 * - Decode-time facts (operand size, registers, displacement, immediates, RIP values, CPL,
 *   stack width) are captured as constants; nothing here allocates when a closure runs.
 * - 32-bit register writes clear the high word (as 64-bit mode requires; harmless elsewhere).
 */
import type { Cpu } from "./cpu.ts";
import { EXIT_CPUID, EXIT_CR_ACCESS, EXIT_INVLPG, EXIT_IO, EXIT_RDMSR, EXIT_RDTSC, EXIT_SOFTWARE_INT, EXIT_SYSCALL, EXIT_WRMSR } from "./cpu.ts";
import { BASE_RIP, type Insn } from "./decoder.ts";
import {
  CC_ADC, CC_ADD, CC_DEC, CC_INC, CC_LOGIC, CC_MUL, CC_SAR, CC_SBB, CC_SHL, CC_SUB,
  PARITY, getArithFlags, getCF, getZF, setArithFlags, testCond,
} from "./flags.ts";
import * as S from "./state.ts";
import { compileFloatingPoint } from "./fp/compile.ts";
import { EV_PRIV_SOFT_EXCEPTION, EV_SOFT_EXCEPTION, EV_SOFT_INT } from "./system.ts";
import * as U from "./uops.ts";

type Fn = () => number;

const { CC_OP, CC_DST, CC_SRC, CC_SRC2, RIP_LO, RIP_HI, FLAGS } = S;

/** High word produced by the last effective-address computation or 64-bit helper. */
let EAH = 0;

/** The high word of the address computed by the last makeEA() function call. */
export function eaHigh(): number {
  return EAH;
}
/** High word of the last 64-bit result of a helper. */
let RH = 0;

/** The high word left by the last 64-bit helper (for the block compiler). */
export function lastHigh(): number {
  return RH;
}

/**
 * The micro-op record (uops.ts) of the instruction compileInsn() compiled last: U_CLOSURE
 * unless the closure chosen was one of the fast paths that have a micro-op twin.
 */
export const UOP = new Int32Array(U.UOP_STRIDE);

function uop(op: number, a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0): void {
  UOP[0] = op; UOP[1] = a; UOP[2] = b; UOP[3] = c; UOP[4] = d; UOP[5] = e; UOP[6] = f; UOP[7] = g;
}

/** A memory micro-op with register word `w`: false (no record) for 16-bit addressing. */
function uopMem(op: number, w: number, cpu: Cpu, d: Insn, nextLo: number, nextHi: number, flags = 0): boolean {
  const disp = d.disp | 0;
  const seg = d.seg;
  if (d.asize === 2) return false;
  if (d.asize === 4) {
    if (cpu.code64 && d.base === BASE_RIP) uop(op, w, -1, -1, 0, (nextLo + disp) | 0, 0, seg | flags);
    else uop(op, w, d.base >= 0 ? d.base * 2 : -1, d.index >= 0 ? d.index * 2 : -1, d.scale, disp, 0, seg | flags);
    return true;
  }
  const dispHi = d.dispHi | 0;
  if (d.base === BASE_RIP) {
    // A constant address (makeEA's RIP-relative case).
    const t = (nextLo >>> 0) + (disp >>> 0);
    uop(op, w, -1, -1, 0, t | 0, (nextHi + dispHi + (t > 0xffffffff ? 1 : 0)) | 0, seg | flags | U.UF_EA64);
    return true;
  }
  uop(op, w, d.base >= 0 ? d.base * 2 : -1, d.index >= 0 ? d.index * 2 : -1, d.scale, disp, dispHi, seg | flags | U.UF_EA64);
  return true;
}

const SZ_OF: Record<number, number> = { 1: 0, 2: 1, 4: 2, 8: 3 };
const MASKS = [0xff, 0xffff, -1, -1];

// ------------------------------------------------------------------ effective addresses

/** Builds the effective-address function of a memory operand; it returns the low word and sets EAH. */
export function makeEA(cpu: Cpu, d: Insn, nextLo: number, nextHi: number): () => number {
  const s = cpu.s;
  const disp = d.disp | 0;
  const b2 = d.base * 2;
  const i2 = d.index * 2;
  const sc = d.scale;
  if (d.asize === 2) {
    const dp = disp & 0xffff;
    if (d.base >= 0 && d.index >= 0) return () => ((s[b2] + s[i2] + dp) & 0xffff);
    if (d.base >= 0) return () => ((s[b2] + dp) & 0xffff);
    return () => dp;
  }
  if (d.asize === 4) {
    if (cpu.code64) {
      if (d.base === BASE_RIP) {
        // 67h with RIP-relative: the address is EIP-relative, truncated to 32 bits.
        const a = (nextLo + disp) | 0;
        return () => { EAH = 0; return a; };
      }
      if (d.base >= 0 && d.index >= 0) return () => { EAH = 0; return (s[b2] + (s[i2] << sc) + disp) | 0; };
      if (d.base >= 0) return () => { EAH = 0; return (s[b2] + disp) | 0; };
      if (d.index >= 0) return () => { EAH = 0; return ((s[i2] << sc) + disp) | 0; };
      return () => { EAH = 0; return disp; };
    }
    if (d.base >= 0 && d.index >= 0) return () => (s[b2] + (s[i2] << sc) + disp) | 0;
    if (d.base >= 0) return () => (s[b2] + disp) | 0;
    if (d.index >= 0) return () => ((s[i2] << sc) + disp) | 0;
    return () => disp;
  }
  // 64-bit addressing.
  const dispHi = d.dispHi | 0;
  if (d.base === BASE_RIP) {
    const t = (nextLo >>> 0) + (disp >>> 0);
    const lo = t | 0;
    const hi = (nextHi + dispHi + (t > 0xffffffff ? 1 : 0)) | 0;
    return () => { EAH = hi; return lo; };
  }
  if (d.base >= 0 && d.index >= 0) {
    return () => {
      const il = s[i2];
      const ih = sc === 0 ? s[i2 + 1] : (s[i2 + 1] << sc) | (il >>> (32 - sc));
      const t1 = (s[b2] >>> 0) + ((il << sc) >>> 0);
      const t2 = (t1 >>> 0) + (disp >>> 0);
      EAH = (s[b2 + 1] + ih + dispHi + (t1 > 0xffffffff ? 1 : 0) + (t2 > 0xffffffff ? 1 : 0)) | 0;
      return t2 | 0;
    };
  }
  if (d.base >= 0) {
    return () => {
      const t = (s[b2] >>> 0) + (disp >>> 0);
      EAH = (s[b2 + 1] + dispHi + (t > 0xffffffff ? 1 : 0)) | 0;
      return t | 0;
    };
  }
  if (d.index >= 0) {
    return () => {
      const il = s[i2];
      const ih = sc === 0 ? s[i2 + 1] : (s[i2 + 1] << sc) | (il >>> (32 - sc));
      const t = ((il << sc) >>> 0) + (disp >>> 0);
      EAH = (ih + dispHi + (t > 0xffffffff ? 1 : 0)) | 0;
      return t | 0;
    };
  }
  return () => { EAH = dispHi; return disp; };
}

// ------------------------------------------------------------------ generic operands

/** An operand location resolved at decode time; read/write closures do the work at run time. */
export interface Loc {
  read: () => number; // low word (value masked to size for sizes < 4)
  /** Writes the value; for memory, to the address computed by the last read() or prepare(). */
  write: (v: number, hi: number) => void;
  /** Computes the address (memory) without reading. */
  prepare: () => void;
  isMem: boolean;
}

export function regLoc(cpu: Cpu, reg: number, size: number, highByte: boolean): Loc {
  const s = cpu.s;
  if (size === 1) {
    const hb = highByte && reg >= 4 && reg < 8;
    const w = (hb ? reg - 4 : reg) * 2;
    const sh = hb ? 8 : 0;
    const keep = ~(0xff << sh);
    return {
      read: () => (s[w] >> sh) & 0xff,
      write: (v) => { s[w] = (s[w] & keep) | ((v & 0xff) << sh); },
      prepare: () => {},
      isMem: false,
    };
  }
  const w = reg * 2;
  if (size === 2)
    return {
      read: () => s[w] & 0xffff,
      write: (v) => { s[w] = (s[w] & 0xffff0000) | (v & 0xffff); },
      prepare: () => {},
      isMem: false,
    };
  if (size === 4)
    return {
      read: () => s[w],
      write: (v) => { s[w] = v; s[w + 1] = 0; },
      prepare: () => {},
      isMem: false,
    };
  return {
    read: () => { RH = s[w + 1]; return s[w]; },
    write: (v, hi) => { s[w] = v; s[w + 1] = hi; },
    prepare: () => {},
    isMem: false,
  };
}

/**
 * A memory operand. `rmw`: the instruction reads and then writes it, so the access is checked
 * for writing before the read (a fault then reports a write, as on hardware).
 */
export function memLoc(cpu: Cpu, d: Insn, size: number, ea: () => number, rmw = false): Loc {
  const seg = d.seg;
  let lo = 0;
  let hi = 0;
  const prepare = rmw
    ? () => { lo = ea(); hi = EAH; cpu.checkWritable(seg, lo, hi, size); }
    : () => { lo = ea(); hi = EAH; };
  if (size === 1) return { read: () => { prepare(); return cpu.rd8(seg, lo, hi); }, write: (v) => cpu.wr8(seg, lo, hi, v), prepare, isMem: true };
  if (size === 2) return { read: () => { prepare(); return cpu.rd16(seg, lo, hi); }, write: (v) => cpu.wr16(seg, lo, hi, v), prepare, isMem: true };
  if (size === 4) return { read: () => { prepare(); return cpu.rd32(seg, lo, hi); }, write: (v) => cpu.wr32(seg, lo, hi, v), prepare, isMem: true };
  return {
    read: () => { prepare(); const v = cpu.rd64(seg, lo, hi); RH = cpu.hi; return v; },
    write: (v, vh) => cpu.wr64(seg, lo, hi, v, vh),
    prepare,
    isMem: true,
  };
}

/** The r/m operand (`rmw`: read, then written back). */
export function eLoc(cpu: Cpu, d: Insn, size: number, nextLo: number, nextHi: number, rmw = false): Loc {
  if (d.mod === 3) return regLoc(cpu, d.rm, size, d.highByteRegs);
  return memLoc(cpu, d, size, makeEA(cpu, d, nextLo, nextHi), rmw);
}

// ------------------------------------------------------------------ ALU helpers

/** 8/16/32-bit ALU op (0 add, 1 or, 2 adc, 3 sbb, 4 and, 5 sub, 6 xor, 7 cmp); returns the masked result. */
export function alu(s: Int32Array, op: number, sz: number, a: number, b: number): number {
  const m = MASKS[sz];
  let r: number;
  switch (op) {
    case 0: r = a + b; s[CC_OP] = (CC_ADD << 2) | sz; s[CC_SRC] = b; break;
    case 1: r = a | b; s[CC_OP] = (CC_LOGIC << 2) | sz; break;
    case 2: { const c = getCF(s); r = a + b + c; s[CC_SRC2] = c; s[CC_OP] = (CC_ADC << 2) | sz; s[CC_SRC] = b; break; }
    case 3: { const c = getCF(s); r = a - b - c; s[CC_SRC2] = c; s[CC_OP] = (CC_SBB << 2) | sz; s[CC_SRC] = b; break; }
    case 4: r = a & b; s[CC_OP] = (CC_LOGIC << 2) | sz; break;
    case 6: r = a ^ b; s[CC_OP] = (CC_LOGIC << 2) | sz; break;
    default: r = a - b; s[CC_OP] = (CC_SUB << 2) | sz; s[CC_SRC] = b; break;
  }
  r = sz === 2 ? r | 0 : r & m;
  s[CC_DST] = r;
  return r;
}

function add64(aLo: number, aHi: number, bLo: number, bHi: number, c: number): number {
  const t = (aLo >>> 0) + (bLo >>> 0) + c;
  RH = (aHi + bHi + (t > 0xffffffff ? 1 : 0)) | 0;
  return t | 0;
}
function sub64(aLo: number, aHi: number, bLo: number, bHi: number, c: number): number {
  const t = (aLo >>> 0) - (bLo >>> 0) - c;
  RH = (aHi - bHi - (t < 0 ? 1 : 0)) | 0;
  return t | 0;
}

/** 64-bit ALU op; returns the low word, high word in RH. */
export function alu64(s: Int32Array, op: number, aLo: number, aHi: number, bLo: number, bHi: number): number {
  let lo: number;
  let hi: number;
  switch (op) {
    case 0: lo = add64(aLo, aHi, bLo, bHi, 0); hi = RH; s[CC_OP] = (CC_ADD << 2) | 3; break;
    case 1: lo = aLo | bLo; hi = aHi | bHi; s[CC_OP] = (CC_LOGIC << 2) | 3; break;
    case 2: { const c = getCF(s); lo = add64(aLo, aHi, bLo, bHi, c); hi = RH; s[CC_SRC2] = c; s[CC_OP] = (CC_ADC << 2) | 3; break; }
    case 3: { const c = getCF(s); lo = sub64(aLo, aHi, bLo, bHi, c); hi = RH; s[CC_SRC2] = c; s[CC_OP] = (CC_SBB << 2) | 3; break; }
    case 4: lo = aLo & bLo; hi = aHi & bHi; s[CC_OP] = (CC_LOGIC << 2) | 3; break;
    case 6: lo = aLo ^ bLo; hi = aHi ^ bHi; s[CC_OP] = (CC_LOGIC << 2) | 3; break;
    default: lo = sub64(aLo, aHi, bLo, bHi, 0); hi = RH; s[CC_OP] = (CC_SUB << 2) | 3; break;
  }
  s[CC_SRC] = bLo;
  s[CC_SRC + 1] = bHi;
  s[CC_DST] = lo;
  s[CC_DST + 1] = hi;
  RH = hi;
  return lo;
}

const ALU_OPS: Record<string, number> = { add: 0, or: 1, adc: 2, sbb: 3, and: 4, sub: 5, xor: 6, cmp: 7, test: 4 };

// ------------------------------------------------------------------ stack helpers

/** Stack pointer width in bytes for the current mode. */
function stackWidth(cpu: Cpu): number {
  return cpu.code64 ? 8 : cpu.ssB ? 4 : 2;
}

/** Pushes a value of `size` bytes (2, 4 or 8; hi for 8). */
export function push(cpu: Cpu, sw: number, size: number, v: number, hi: number): void {
  const s = cpu.s;
  const spLo = s[S.REG_ESP * 2];
  if (sw === 8) {
    const nlo = (spLo - size) | 0;
    const nhi = (nlo >>> 0) > (spLo >>> 0) ? (s[9] - 1) | 0 : s[9];
    if (size === 8) cpu.wr64(S.SEG_SS, nlo, nhi, v, hi);
    else cpu.wr16(S.SEG_SS, nlo, nhi, v);
    s[8] = nlo;
    s[9] = nhi;
    return;
  }
  if (sw === 4) {
    const n = (spLo - size) | 0;
    if (size === 4) cpu.wr32(S.SEG_SS, n, 0, v);
    else cpu.wr16(S.SEG_SS, n, 0, v);
    s[8] = n;
    s[9] = 0;
    return;
  }
  const n = (spLo - size) & 0xffff;
  if (size === 4) cpu.wr32(S.SEG_SS, n, 0, v);
  else cpu.wr16(S.SEG_SS, n, 0, v);
  s[8] = (spLo & 0xffff0000) | n;
}

/** Reads the value at the top of the stack (offset `skip` bytes above it) without popping; hi in RH. */
export function peek(cpu: Cpu, sw: number, size: number, skip: number): number {
  const s = cpu.s;
  let lo = s[8];
  let hi = 0;
  if (sw === 8) {
    hi = s[9];
    const t = (lo >>> 0) + skip;
    if (t > 0xffffffff) hi = (hi + 1) | 0;
    lo = t | 0;
  } else if (sw === 4) lo = (lo + skip) | 0;
  else lo = (lo + skip) & 0xffff;
  if (size === 8) {
    const v = cpu.rd64(S.SEG_SS, lo, hi);
    RH = cpu.hi;
    return v;
  }
  RH = 0;
  return size === 4 ? cpu.rd32(S.SEG_SS, lo, hi) : cpu.rd16(S.SEG_SS, lo, hi);
}

/** Adds n to the stack pointer (respecting its width). */
export function adjustSp(cpu: Cpu, sw: number, n: number): void {
  const s = cpu.s;
  const lo = s[8];
  if (sw === 8) {
    const t = (lo >>> 0) + n;
    s[9] = (s[9] + (t > 0xffffffff ? 1 : t < 0 ? -1 : 0)) | 0;
    s[8] = t | 0;
  } else if (sw === 4) {
    s[8] = (lo + n) | 0;
    s[9] = 0;
  } else s[8] = (lo & 0xffff0000) | ((lo + n) & 0xffff);
}

export function pop(cpu: Cpu, sw: number, size: number): number {
  const v = peek(cpu, sw, size, 0);
  const h = RH;
  adjustSp(cpu, sw, size);
  RH = h;
  return v;
}

// ------------------------------------------------------------------ the compiler

/** Returns a closure raising a fault (for encodings that are invalid in context). */
function faulting(cpu: Cpu, vector: number, err = 0, hasErr = false): Fn {
  return () => cpu.fault(vector, err, hasErr);
}

export function compileInsn(cpu: Cpu, d: Insn, eipLo: number, eipHi: number, nextLo: number, nextHi: number): Fn {
  const e = d.entry!;
  UOP.fill(0);
  if (d.lock && (!e.lock || d.mod === 3)) return faulting(cpu, S.VEC_UD);
  if (e.privileged && cpu.cpl !== 0) return faulting(cpu, S.VEC_GP, 0, true);
  const f = compileBody(cpu, d, eipLo, eipHi, nextLo, nextHi);
  return f ?? faulting(cpu, S.VEC_UD);
}

function compileBody(cpu: Cpu, d: Insn, eipLo: number, eipHi: number, nextLo: number, nextHi: number): Fn | null {
  const s = cpu.s;
  const e = d.entry!;
  const mn = e.mnemonic;
  const ops = e.operands;
  const byteOp = ops.some((o) => o.endsWith("b") && o !== "Jb" && o !== "Ib") || ops[0] === "AL" || (ops.length === 2 && ops[1] === "AL");
  const os = d.osize;
  const size = byteOp ? 1 : os;
  const sz = SZ_OF[size];
  const code64 = cpu.code64;
  const sw = stackWidth(cpu);
  const len = d.len;
  // Closures must capture values, never `d` (the decoder reuses it).
  const asize = d.asize;
  const dReg = d.reg;
  const dRm = d.rm;
  // RIP after this instruction, masked to the operand size of near branches.
  const jumpTo = (lo: number, hi: number): Fn => {
    if (code64) return () => { s[RIP_LO] = lo; s[RIP_HI] = hi; return 1; };
    const v = os === 2 ? lo & 0xffff : lo;
    return () => { s[RIP_LO] = v; return 1; };
  };
  const relTarget = (): [number, number] => {
    const t = (nextLo >>> 0) + (d.imm >>> 0);
    if (code64) return [t | 0, (nextHi + (d.imm >> 31) + (t > 0xffffffff ? 1 : 0)) | 0];
    return [os === 2 ? t & 0xffff : t | 0, 0];
  };

  switch (mn) {
    // ---------------------------------------------------------- ALU
    case "add": case "or": case "adc": case "sbb": case "and": case "sub": case "xor": case "cmp": case "test": {
      const op = ALU_OPS[mn];
      const write = mn !== "cmp" && mn !== "test";
      let dst: Loc;
      let src: Loc | null = null;
      let imm = d.imm;
      const o0 = ops[0];
      const o1 = ops[1];
      if (o0 === "AL" || o0 === "eAX") dst = regLoc(cpu, 0, size, false);
      else if (o0[0] === "G") dst = regLoc(cpu, d.reg, size, d.highByteRegs);
      else dst = eLoc(cpu, d, size, nextLo, nextHi, write);
      if (o1[0] === "I") imm = size === 1 ? imm & 0xff : size === 2 ? imm & 0xffff : imm;
      else if (o1[0] === "G") src = regLoc(cpu, d.reg, size, d.highByteRegs);
      else src = eLoc(cpu, d, size, nextLo, nextHi);
      if (size === 8 && !dst.isMem && (src === null || !src.isMem)) {
        // 64-bit register forms: the ALU on word pairs, no operand objects.
        const dw = (o0 === "AL" || o0 === "eAX" ? 0 : o0[0] === "G" ? d.reg : d.rm) * 2;
        const bw = src === null ? -1 : (o1[0] === "G" ? d.reg : d.rm) * 2;
        const immHi = imm >> 31;
        if (bw < 0) {
          uop(U.U_ALU_RI64, dw, imm, immHi, op, write ? 1 : 0);
          return () => { const r = alu64(s, op, s[dw], s[dw + 1], imm, immHi); if (write) { s[dw] = r; s[dw + 1] = RH; } return 0; };
        }
        uop(U.U_ALU_RR64, dw, bw, op, write ? 1 : 0);
        return () => { const r = alu64(s, op, s[dw], s[dw + 1], s[bw], s[bw + 1]); if (write) { s[dw] = r; s[dw + 1] = RH; } return 0; };
      }
      if (size === 8) {
        const immHi = imm >> 31;
        if (src === null) return () => { const a = dst.read(); const ah = RH; const r = alu64(s, op, a, ah, imm, immHi); if (write) dst.write(r, RH); return 0; };
        const srcL = src;
        return () => {
          // Memory operand first (it may fault), then the register.
          let a: number, ah: number, b: number, bh: number;
          if (srcL.isMem) { b = srcL.read(); bh = RH; a = dst.read(); ah = RH; }
          else { a = dst.read(); ah = RH; b = srcL.read(); bh = RH; }
          const r = alu64(s, op, a, ah, b, bh);
          if (write) dst.write(r, RH);
          return 0;
        };
      }
      // Fast paths for the common 32-bit register forms.
      if (size === 4 && !dst.isMem && (src === null || !src.isMem)) {
        const dw = (o0 === "AL" || o0 === "eAX" ? 0 : o0[0] === "G" ? d.reg : d.rm) * 2;
        if (src === null) {
          if (op === 0) uop(U.U_ADD_RI32, dw, imm);
          else if (op === 5 || op === 7) uop(U.U_SUB_RI32, dw, imm, write ? 1 : 0);
          else if (op === 1 || op === 4 || op === 6) uop(U.U_LOGIC_RI32, dw, imm, op, write ? 1 : 0);
          else uop(U.U_ALU_RI32, dw, imm, op, write ? 1 : 0);
          if (op === 0) return () => { const b = imm; const r = (s[dw] + b) | 0; s[CC_OP] = (CC_ADD << 2) | 2; s[CC_SRC] = b; s[CC_DST] = r; s[dw] = r; s[dw + 1] = 0; return 0; };
          if (op === 5 || op === 7) return () => { const r = (s[dw] - imm) | 0; s[CC_OP] = (CC_SUB << 2) | 2; s[CC_SRC] = imm; s[CC_DST] = r; if (write) { s[dw] = r; s[dw + 1] = 0; } return 0; };
          return () => { const r = alu(s, op, 2, s[dw], imm); if (write) { s[dw] = r; s[dw + 1] = 0; } return 0; };
        }
        const sw2 = (o1[0] === "G" ? d.reg : d.rm) * 2;
        if (op === 0) uop(U.U_ADD_RR32, dw, sw2);
        else if (op === 5 || op === 7) uop(U.U_SUB_RR32, dw, sw2, write ? 1 : 0);
        else if (op === 6 && sw2 === dw) uop(U.U_XOR_ZERO32, dw);
        else if (op === 1 || op === 4 || op === 6) uop(U.U_LOGIC_RR32, dw, sw2, op, write ? 1 : 0);
        else uop(U.U_ALU_RR32, dw, sw2, op, write ? 1 : 0);
        if (op === 0) return () => { const b = s[sw2]; const r = (s[dw] + b) | 0; s[CC_OP] = (CC_ADD << 2) | 2; s[CC_SRC] = b; s[CC_DST] = r; s[dw] = r; s[dw + 1] = 0; return 0; };
        if (op === 5 || op === 7) return () => { const b = s[sw2]; const r = (s[dw] - b) | 0; s[CC_OP] = (CC_SUB << 2) | 2; s[CC_SRC] = b; s[CC_DST] = r; if (write) { s[dw] = r; s[dw + 1] = 0; } return 0; };
        if (op === 6 && sw2 === dw) return () => { s[CC_OP] = (CC_LOGIC << 2) | 2; s[CC_DST] = 0; s[dw] = 0; s[dw + 1] = 0; return 0; };
        return () => { const r = alu(s, op, 2, s[dw], s[sw2]); if (write) { s[dw] = r; s[dw + 1] = 0; } return 0; };
      }
      if (src === null) return () => { const r = alu(s, op, sz, dst.read(), imm); if (write) dst.write(r, 0); return 0; };
      if (size === 4 && dst.isMem !== src.isMem && op !== 2 && op !== 3) {
        // A register (d.reg) and a 32-bit memory operand, ADD/SUB/CMP/AND/OR/XOR/TEST: the fast
        // loop's record; the closure below stays the reference.
        uopMem(U.U_ALU_M32, d.reg * 2, cpu, d, nextLo, nextHi, (op << 12) | (dst.isMem ? U.UF_MEMDST : 0) | (write ? U.UF_WRITE : 0));
      }
      const srcL = src;
      return () => {
        let a: number, b: number;
        if (srcL.isMem) { b = srcL.read(); a = dst.read(); }
        else { a = dst.read(); b = srcL.read(); }
        const r = alu(s, op, sz, a, b);
        if (write) dst.write(r, 0);
        return 0;
      };
    }
    case "inc": case "dec": {
      const isInc = mn === "inc";
      const loc = ops[0] === "Zv" ? regLoc(cpu, (d.opcode & 7), size, false) : eLoc(cpu, d, size, nextLo, nextHi, true);
      const kind = ((isInc ? CC_INC : CC_DEC) << 2) | sz;
      if (size === 4 && !loc.isMem) {
        const w = (ops[0] === "Zv" ? d.opcode & 7 : d.rm) * 2;
        const delta = isInc ? 1 : -1;
        uop(U.U_INCDEC32, w, delta, kind);
        return () => {
          const c = getCF(s);
          const r = (s[w] + delta) | 0;
          s[CC_SRC] = c; s[CC_OP] = kind; s[CC_DST] = r;
          s[w] = r; s[w + 1] = 0;
          return 0;
        };
      }
      if (size === 8 && !loc.isMem) {
        const w = d.rm * 2;
        const delta = isInc ? 1 : -1;
        uop(U.U_INCDEC64, w, isInc ? 1 : 0, kind);
        return () => {
          const c = getCF(s);
          const lo = (s[w] + delta) | 0;
          const hi = isInc ? (lo === 0 ? (s[w + 1] + 1) | 0 : s[w + 1]) : lo === -1 ? (s[w + 1] - 1) | 0 : s[w + 1];
          s[CC_SRC] = c; s[CC_OP] = kind; s[CC_DST] = lo; s[CC_DST + 1] = hi;
          s[w] = lo; s[w + 1] = hi;
          return 0;
        };
      }
      if (size === 8) {
        return () => {
          const a = loc.read(); const ah = RH;
          const r = isInc ? add64(a, ah, 1, 0, 0) : sub64(a, ah, 1, 0, 0);
          const rh = RH;
          loc.write(r, rh);
          s[CC_SRC] = getCF(s); s[CC_OP] = kind; s[CC_DST] = r; s[CC_DST + 1] = rh;
          return 0;
        };
      }
      const m = MASKS[sz];
      return () => {
        const a = loc.read();
        const r = (isInc ? a + 1 : a - 1) & m;
        loc.write(r, 0);
        const c = getCF(s);
        s[CC_SRC] = c; s[CC_OP] = kind; s[CC_DST] = r;
        return 0;
      };
    }
    case "not": {
      const loc = eLoc(cpu, d, size, nextLo, nextHi, true);
      return () => { const a = loc.read(); const ah = RH; loc.write(~a, ~ah); return 0; };
    }
    case "neg": {
      const loc = eLoc(cpu, d, size, nextLo, nextHi, true);
      if (size === 8) return () => { const a = loc.read(); const ah = RH; const r = alu64(s, 5, 0, 0, a, ah); loc.write(r, RH); return 0; };
      return () => { const a = loc.read(); const r = alu(s, 5, sz, 0, a); loc.write(r, 0); return 0; };
    }

    // ---------------------------------------------------------- moves
    case "mov": {
      const o0 = ops[0];
      const o1 = ops[1];
      if (o0 === "Sw") {
        const seg = d.reg & 7;
        if (seg === S.SEG_CS || seg > 5) return null;
        const src = eLoc(cpu, d, 2, nextLo, nextHi);
        return () => { const v = src.read() & 0xffff; cpu.sys.loadSegment(seg, v); return 2; };
      }
      if (o1 === "Sw") {
        const seg = d.reg & 7;
        if (seg > 5) return null;
        const w = S.segWord(seg, S.SEG_SEL);
        // To memory: always 16 bits. To a register: zero-extended to the operand size.
        const dst = d.mod === 3 ? regLoc(cpu, d.rm, os, false) : eLoc(cpu, d, 2, nextLo, nextHi);
        return () => { dst.prepare(); dst.write(s[w] & 0xffff, 0); return 0; };
      }
      if (o0 === "Zb" || o0 === "Zv") {
        const r = (d.opcode & 7) | ((d.rex & 1) << 3);
        const dst = regLoc(cpu, r, size, d.highByteRegs);
        const v = d.imm;
        const vh = d.immHi;
        if (size === 4) { const w = r * 2; uop(U.U_MOV_RI32, w, v); return () => { s[w] = v; s[w + 1] = 0; return 0; }; }
        if (size === 8) uop(U.U_MOV_RI64, r * 2, v, vh);
        return () => { dst.write(v, vh); return 0; };
      }
      if (o1 === "Ob" || o1 === "Ov" || o0 === "Ob" || o0 === "Ov") {
        const acc = regLoc(cpu, 0, size, false);
        const dlo = d.asize === 2 ? d.disp & 0xffff : d.disp;
        const dhi = d.asize === 8 ? d.dispHi : 0;
        const mem = memLoc(cpu, d, size, () => { EAH = dhi; return dlo; });
        if (o0 === "AL" || o0 === "eAX") return () => { const v = mem.read(); acc.write(v, RH); return 0; };
        return () => { const v = acc.read(); const h = RH; mem.prepare(); mem.write(v, h); return 0; };
      }
      if (o1[0] === "I") {
        const dst = eLoc(cpu, d, size, nextLo, nextHi);
        const v = d.imm;
        const vh = d.immHi;
        return () => { dst.prepare(); dst.write(v, vh); return 0; };
      }
      // E,G or G,E
      const toReg = o0[0] === "G";
      const reg = regLoc(cpu, d.reg, size, d.highByteRegs);
      if (d.mod === 3) {
        const other = regLoc(cpu, d.rm, size, d.highByteRegs);
        if (size === 4) {
          const a = (toReg ? d.reg : d.rm) * 2;
          const b = (toReg ? d.rm : d.reg) * 2;
          uop(U.U_MOV_RR32, a, b);
          return () => { s[a] = s[b]; s[a + 1] = 0; return 0; };
        }
        if (size === 8) uop(U.U_MOV_RR64, (toReg ? d.reg : d.rm) * 2, (toReg ? d.rm : d.reg) * 2);
        if (toReg) return () => { const v = other.read(); reg.write(v, RH); return 0; };
        return () => { const v = reg.read(); other.write(v, RH); return 0; };
      }
      const ea = makeEA(cpu, d, nextLo, nextHi);
      const seg = d.seg;
      if (size === 4) {
        const w = d.reg * 2;
        uopMem(toReg ? U.U_LOAD32 : U.U_STORE32, w, cpu, d, nextLo, nextHi);
        if (toReg) return () => { const a = ea(); const v = cpu.rd32(seg, a, EAH); s[w] = v; s[w + 1] = 0; return 0; };
        return () => { const a = ea(); cpu.wr32(seg, a, EAH, s[w]); return 0; };
      }
      const mem = memLoc(cpu, d, size, ea);
      if (size === 8) uopMem(toReg ? U.U_LOAD64 : U.U_STORE64, d.reg * 2, cpu, d, nextLo, nextHi);
      if (toReg) return () => { const v = mem.read(); reg.write(v, RH); return 0; };
      return () => { const v = reg.read(); const h = RH; mem.prepare(); mem.write(v, h); return 0; };
    }
    case "movzx": case "movsx": {
      const srcSize = ops[1] === "Eb" ? 1 : 2;
      const src = eLoc(cpu, d, srcSize, nextLo, nextHi);
      const dst = regLoc(cpu, d.reg, os, false);
      const signed = mn === "movsx";
      if (src.isMem && os !== 2) {
        uopMem(srcSize === 1 ? U.U_LOADX8 : U.U_LOADX16, d.reg * 2, cpu, d, nextLo, nextHi, (signed ? U.UF_SIGNED : 0) | (os === 8 ? U.UF_OS64 : 0));
      }
      return () => {
        let v = src.read();
        if (signed) v = srcSize === 1 ? (v << 24) >> 24 : (v << 16) >> 16;
        dst.write(v, v >> 31);
        return 0;
      };
    }
    case "movsxd": {
      const src = eLoc(cpu, d, 4, nextLo, nextHi);
      const dst = regLoc(cpu, d.reg, os, false);
      return () => { const v = src.read(); dst.write(v, os === 8 ? v >> 31 : 0); return 0; };
    }
    case "lea": {
      const ea = makeEA(cpu, d, nextLo, nextHi);
      const dst = regLoc(cpu, d.reg, os, false);
      if (os !== 2) uopMem(U.U_LEA, d.reg * 2, cpu, d, nextLo, nextHi, os === 8 ? U.UF_OS64 : 0);
      if (os === 4 && !code64) { const w = d.reg * 2; return () => { s[w] = ea(); s[w + 1] = 0; return 0; }; }
      return () => { const v = ea(); dst.write(v, asize === 8 ? EAH : 0); return 0; };
    }
    case "xchg": {
      if (ops[0] === "Zv") {
        const r = (d.opcode & 7) | ((d.rex & 1) << 3);
        const a = regLoc(cpu, r, os, false);
        const b = regLoc(cpu, 0, os, false);
        return () => { const x = a.read(); const xh = RH; const y = b.read(); const yh = RH; a.write(y, yh); b.write(x, xh); return 0; };
      }
      const a = eLoc(cpu, d, size, nextLo, nextHi, true);
      const b = regLoc(cpu, d.reg, size, d.highByteRegs);
      return () => { const x = a.read(); const xh = RH; const y = b.read(); const yh = RH; a.write(y, yh); b.write(x, xh); return 0; };
    }
    case "nop": {
      if (e.opcode === 0x90 && e.map === 0 && (d.rex & 1) !== 0) {
        // REX.B 90 is xchg r8, rax
        const a = regLoc(cpu, 8, os, false);
        const b = regLoc(cpu, 0, os, false);
        return () => { const x = a.read(); const xh = RH; const y = b.read(); const yh = RH; a.write(y, yh); b.write(x, xh); return 0; };
      }
      return () => 0;
    }
    case "pause":
      if ((d.rex & 1) !== 0) {
        const a = regLoc(cpu, 8, os, false);
        const b = regLoc(cpu, 0, os, false);
        return () => { const x = a.read(); const xh = RH; const y = b.read(); const yh = RH; a.write(y, yh); b.write(x, xh); return 0; };
      }
      return () => 0;
    case "lfence": case "mfence": case "sfence":
      return () => 0;
    case "clflush": {
      const m = eLoc(cpu, d, 1, nextLo, nextHi);
      return () => { m.read(); return 0; };
    }
    case "cbw": {
      if (os === 2) return () => { s[0] = (s[0] & 0xffff0000) | (((s[0] << 24) >> 24) & 0xffff); return 0; };
      if (os === 4) return () => { s[0] = (s[0] << 16) >> 16; s[1] = 0; return 0; };
      return () => { s[1] = s[0] >> 31; return 0; };
    }
    case "cwd": {
      if (os === 2) return () => { s[4] = (s[4] & 0xffff0000) | ((s[0] << 16) >> 31 & 0xffff); return 0; };
      if (os === 4) return () => { s[4] = s[0] >> 31; s[5] = 0; return 0; };
      return () => { s[4] = s[1] >> 31; s[5] = s[4]; return 0; };
    }
    case "cmovcc": {
      const cc = d.opcode & 15;
      const src = eLoc(cpu, d, os, nextLo, nextHi);
      const dst = regLoc(cpu, d.reg, os, false);
      return () => {
        const v = src.read(); // the source is read (and may fault) whatever the condition
        const h = RH;
        if (testCond(s, cc)) dst.write(v, h);
        else if (os === 4) s[dReg * 2 + 1] = 0;
        return 0;
      };
    }
    case "setcc": {
      const cc = d.opcode & 15;
      const dst = eLoc(cpu, d, 1, nextLo, nextHi);
      return () => { dst.prepare(); dst.write(testCond(s, cc) ? 1 : 0, 0); return 0; };
    }
    case "bswap": {
      const r = (d.opcode & 7) | ((d.rex & 1) << 3);
      const w = r * 2;
      const bs = (v: number) => ((v >>> 24) | ((v >> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24)) | 0;
      if (os === 8) return () => { const lo = s[w]; s[w] = bs(s[w + 1]); s[w + 1] = bs(lo); return 0; };
      if (os === 4) return () => { s[w] = bs(s[w]); s[w + 1] = 0; return 0; };
      return () => { s[w] = s[w] & 0xffff0000; return 0; }; // 16-bit BSWAP: undefined; hardware gives 0
    }
    case "movbe": {
      const toReg = ops[0][0] === "G";
      const mem = eLoc(cpu, d, os, nextLo, nextHi);
      const reg = regLoc(cpu, d.reg, os, false);
      const bs = (v: number) => ((v >>> 24) | ((v >> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24)) | 0;
      if (os === 2) {
        if (toReg) return () => { const v = mem.read(); reg.write(((v & 0xff) << 8) | ((v >> 8) & 0xff), 0); return 0; };
        return () => { const v = reg.read(); mem.prepare(); mem.write(((v & 0xff) << 8) | ((v >> 8) & 0xff), 0); return 0; };
      }
      if (os === 4) {
        if (toReg) return () => { reg.write(bs(mem.read()), 0); return 0; };
        return () => { const v = reg.read(); mem.prepare(); mem.write(bs(v), 0); return 0; };
      }
      if (toReg) return () => { const lo = mem.read(); const hi = RH; reg.write(bs(hi), bs(lo)); return 0; };
      return () => { const lo = reg.read(); const hi = RH; mem.prepare(); mem.write(bs(hi), bs(lo)); return 0; };
    }

    // ---------------------------------------------------------- stack
    case "push": {
      const o0 = ops[0];
      const psize = os; // 2, 4 or 8
      if (o0 === "ES" || o0 === "CS" || o0 === "SS" || o0 === "DS" || o0 === "FS" || o0 === "GS") {
        const seg = ["ES", "CS", "SS", "DS", "FS", "GS"].indexOf(o0);
        const w = S.segWord(seg, S.SEG_SEL);
        // A 32/64-bit push of a segment register writes 16 bits on current processors.
        return () => { pushSeg(cpu, sw, psize, s[w] & 0xffff); return 0; };
      }
      if (o0 === "Zv") {
        const r = (d.opcode & 7) | ((d.rex & 1) << 3);
        const w = r * 2;
        if (sw === 8 && psize === 8) uop(U.U_PUSH64, w);
        if (sw === 4 && psize === 4) {
          uop(U.U_PUSH32, w);
          return () => {
            const n = (s[8] - 4) | 0;
            cpu.wr32(S.SEG_SS, n, 0, s[w]);
            s[8] = n; s[9] = 0;
            return 0;
          };
        }
        return () => { push(cpu, sw, psize, s[w], s[w + 1]); return 0; };
      }
      if (o0 === "Iz" || o0 === "Ib") {
        const v = d.imm;
        const vh = d.imm >> 31;
        return () => { push(cpu, sw, psize, v, vh); return 0; };
      }
      const src = eLoc(cpu, d, psize, nextLo, nextHi);
      return () => { const v = src.read(); push(cpu, sw, psize, v, RH); return 0; };
    }
    case "pop": {
      const o0 = ops[0];
      const psize = os;
      if (o0 === "ES" || o0 === "SS" || o0 === "DS" || o0 === "FS" || o0 === "GS") {
        const seg = ["ES", "CS", "SS", "DS", "FS", "GS"].indexOf(o0);
        return () => { const v = peek(cpu, sw, psize, 0); cpu.sys.loadSegment(seg, v & 0xffff); adjustSp(cpu, sw, psize); return 2; };
      }
      if (o0 === "Zv") {
        const r = (d.opcode & 7) | ((d.rex & 1) << 3);
        const w = r * 2;
        if (sw === 4 && psize === 4) {
          uop(U.U_POP32, w);
          return () => { const v = cpu.rd32(S.SEG_SS, s[8], 0); s[8] = (s[8] + 4) | 0; s[9] = 0; s[w] = v; s[w + 1] = 0; return 0; };
        }
        if (sw === 8 && psize === 8) uop(U.U_POP64, w);
        const dst = regLoc(cpu, r, psize, false);
        return () => { const v = peek(cpu, sw, psize, 0); const h = RH; adjustSp(cpu, sw, psize); dst.write(v, h); return 0; };
      }
      // pop Ev: the address is computed with the stack pointer already incremented.
      const dst = eLoc(cpu, d, psize, nextLo, nextHi);
      return () => {
        const v = peek(cpu, sw, psize, 0);
        const h = RH;
        const oldLo = s[8];
        const oldHi = s[9];
        adjustSp(cpu, sw, psize);
        try {
          dst.prepare();
          dst.write(v, h);
        } catch (err) {
          s[8] = oldLo;
          s[9] = oldHi;
          throw err;
        }
        return 0;
      };
    }
    case "pusha": {
      const n = os;
      return () => {
        const sp = s[8];
        for (let r = 0; r < 8; r++) {
          const v = r === 4 ? sp : s[r * 2];
          const off = -(r + 1) * n;
          writeStackAt(cpu, sw, n, sp, off, v);
        }
        adjustSp(cpu, sw, -8 * n);
        return 0;
      };
    }
    case "popa": {
      const n = os;
      return () => {
        const vals = POPA_TMP;
        for (let r = 0; r < 8; r++) vals[7 - r] = peek(cpu, sw, n, r * n);
        for (let r = 0; r < 8; r++) {
          if (r === 4) continue;
          if (n === 4) { s[r * 2] = vals[r]; s[r * 2 + 1] = 0; }
          else s[r * 2] = (s[r * 2] & 0xffff0000) | (vals[r] & 0xffff);
        }
        adjustSp(cpu, sw, 8 * n);
        return 0;
      };
    }
    case "enter": {
      const alloc = d.imm & 0xffff;
      const level = d.imm2 & 31;
      return () => { enter(cpu, sw, os, alloc, level); return 0; };
    }
    case "leave": {
      return () => {
        // SP = BP (by stack width), then pop BP.
        const oldLo = s[8];
        const oldHi = s[9];
        if (sw === 8) { s[8] = s[10]; s[9] = s[11]; }
        else if (sw === 4) { s[8] = s[10]; s[9] = 0; }
        else s[8] = (s[8] & 0xffff0000) | (s[10] & 0xffff);
        try {
          const v = pop(cpu, sw, os);
          const h = RH;
          regLoc(cpu, 5, os, false).write(v, h);
        } catch (err) {
          s[8] = oldLo;
          s[9] = oldHi;
          throw err;
        }
        return 0;
      };
    }
    case "pushf": {
      return () => {
        if ((s[FLAGS] & S.F_VM) !== 0 && ((s[FLAGS] >> 12) & 3) !== 3) cpu.gp(0);
        const f = cpu.getEflags() & ~(S.F_VM | S.F_RF);
        push(cpu, sw, os, f, 0);
        return 0;
      };
    }
    case "popf": {
      return () => {
        if ((s[FLAGS] & S.F_VM) !== 0 && ((s[FLAGS] >> 12) & 3) !== 3) cpu.gp(0);
        const v = peek(cpu, sw, os, 0);
        adjustSp(cpu, sw, os);
        cpu.sys.writeEflagsFromPopf(v, os);
        return 2;
      };
    }
    case "sahf": {
      return () => {
        const f = (getArithFlags(s) & S.F_OF) | ((s[0] >> 8) & (S.F_SF | S.F_ZF | S.F_AF | S.F_PF | S.F_CF));
        setArithFlags(s, f);
        return 0;
      };
    }
    case "lahf": {
      return () => {
        const f = (getArithFlags(s) & 0xd5) | 2;
        s[0] = (s[0] & ~0xff00) | (f << 8);
        return 0;
      };
    }
    case "clc": return () => { setArithFlags(s, getArithFlags(s) & ~S.F_CF); return 0; };
    case "stc": return () => { setArithFlags(s, getArithFlags(s) | S.F_CF); return 0; };
    case "cmc": return () => { setArithFlags(s, getArithFlags(s) ^ S.F_CF); return 0; };
    case "cld": return () => { s[FLAGS] &= ~S.F_DF; return 0; };
    case "std": return () => { s[FLAGS] |= S.F_DF; return 0; };
    case "cli":
      return () => {
        if (iopl_denied(cpu)) cpu.gp(0);
        s[FLAGS] &= ~S.F_IF;
        return 2;
      };
    case "sti":
      return () => {
        if (iopl_denied(cpu)) cpu.gp(0);
        if ((s[FLAGS] & S.F_IF) === 0) s[S.INTR_SHADOW] = 1;
        s[FLAGS] |= S.F_IF;
        return 2;
      };
    case "salc": return () => { s[0] = (s[0] & ~0xff) | (getCF(s) ? 0xff : 0); return 0; };
    case "xlat": {
      const seg = d.segOverride >= 0 ? d.segOverride : S.SEG_DS;
      const as = d.asize;
      return () => {
        const al = s[0] & 0xff;
        let lo: number;
        let hi = 0;
        if (as === 8) { lo = add64(s[6], s[7], al, 0, 0); hi = RH; }
        else if (as === 4) lo = (s[6] + al) | 0;
        else lo = (s[6] + al) & 0xffff;
        const v = cpu.rd8(seg, lo, hi);
        s[0] = (s[0] & ~0xff) | v;
        return 0;
      };
    }

    // ---------------------------------------------------------- branches
    case "jmp": {
      if (ops[0] === "Jb" || ops[0] === "Jz") {
        const [lo, hi] = relTarget();
        uop(U.U_JMP, code64 ? lo : os === 2 ? lo & 0xffff : lo, hi, code64 ? 1 : 0);
        return jumpTo(lo, hi);
      }
      const src = eLoc(cpu, d, code64 ? 8 : os, nextLo, nextHi);
      if (code64) return () => { const v = src.read(); const h = RH; if (!canonical(h)) cpu.gp(0); s[RIP_LO] = v; s[RIP_HI] = h; return 1; };
      return () => { const v = src.read(); s[RIP_LO] = v; return 1; };
    }
    case "jcc": {
      const cc = d.opcode & 15;
      const [lo, hi] = relTarget();
      const nl = nextLo;
      uop(U.U_JCC, cc, lo, hi, nl, nextHi);
      if (cc === 5) return () => { if (getZF(s) === 0) { s[RIP_LO] = lo; s[RIP_HI] = hi; } else { s[RIP_LO] = nl; s[RIP_HI] = nextHi; } return 1; };
      if (cc === 4) return () => { if (getZF(s) !== 0) { s[RIP_LO] = lo; s[RIP_HI] = hi; } else { s[RIP_LO] = nl; s[RIP_HI] = nextHi; } return 1; };
      return () => { if (testCond(s, cc)) { s[RIP_LO] = lo; s[RIP_HI] = hi; } else { s[RIP_LO] = nl; s[RIP_HI] = nextHi; } return 1; };
    }
    case "loop": case "loope": case "loopne": case "jcxz": {
      const [lo, hi] = relTarget();
      const as = d.asize;
      const nl = nextLo;
      const kind = mn;
      return () => {
        let zero: boolean;
        if (kind === "jcxz") zero = as === 8 ? (s[2] | s[3]) === 0 : as === 4 ? s[2] === 0 : (s[2] & 0xffff) === 0;
        else {
          if (as === 8) { const l = (s[2] - 1) | 0; if (l === -1) s[3] = (s[3] - 1) | 0; s[2] = l; zero = (s[2] | s[3]) === 0; }
          else if (as === 4) { s[2] = (s[2] - 1) | 0; if (code64) s[3] = 0; zero = s[2] === 0; }
          else { s[2] = (s[2] & 0xffff0000) | ((s[2] - 1) & 0xffff); zero = (s[2] & 0xffff) === 0; }
        }
        let take: boolean;
        if (kind === "jcxz") take = zero;
        else if (kind === "loop") take = !zero;
        else if (kind === "loope") take = !zero && getZF(s) !== 0;
        else take = !zero && getZF(s) === 0;
        if (take) { s[RIP_LO] = lo; s[RIP_HI] = hi; } else { s[RIP_LO] = nl; s[RIP_HI] = nextHi; }
        return 1;
      };
    }
    case "call": {
      const psize = code64 ? 8 : os;
      const retLo = code64 ? nextLo : os === 2 ? nextLo & 0xffff : nextLo;
      if (ops[0] === "Jz") {
        const [lo, hi] = relTarget();
        if (sw === 4 && psize === 4) {
          uop(U.U_CALL32, retLo, lo);
          return () => {
            const n = (s[8] - 4) | 0;
            cpu.wr32(S.SEG_SS, n, 0, retLo);
            s[8] = n; s[9] = 0;
            s[RIP_LO] = lo;
            return 1;
          };
        }
        if (sw === 8) {
          uop(U.U_CALL64, retLo, nextHi, lo, hi);
          return () => {
            const spLo = (s[8] - 8) | 0;
            const spHi = spLo >>> 0 > s[8] >>> 0 ? (s[9] - 1) | 0 : s[9];
            cpu.wr64(S.SEG_SS, spLo, spHi, retLo, nextHi);
            s[8] = spLo; s[9] = spHi;
            s[RIP_LO] = lo; s[RIP_HI] = hi;
            return 1;
          };
        }
        return () => { push(cpu, sw, psize, retLo, nextHi); s[RIP_LO] = lo; s[RIP_HI] = hi; return 1; };
      }
      const src = eLoc(cpu, d, psize, nextLo, nextHi);
      return () => {
        const v = src.read();
        const h = psize === 8 ? RH : 0;
        if (psize === 8 && !canonical(h)) cpu.gp(0);
        push(cpu, sw, psize, retLo, nextHi);
        s[RIP_LO] = v;
        s[RIP_HI] = h;
        return 1;
      };
    }
    case "ret": {
      const psize = code64 ? 8 : os;
      const extra = ops.length ? d.imm & 0xffff : 0;
      if (sw === 4 && psize === 4 && extra === 0) {
        uop(U.U_RET32);
        return () => { const v = cpu.rd32(S.SEG_SS, s[8], 0); s[8] = (s[8] + 4) | 0; s[9] = 0; s[RIP_LO] = v; return 1; };
      }
      if (sw === 8 && extra === 0) {
        uop(U.U_RET64);
        return () => {
          const v = cpu.rd64(S.SEG_SS, s[8], s[9]);
          const h = cpu.hi;
          if (!canonical(h)) cpu.gp(0);
          const spLo = (s[8] + 8) | 0;
          if (spLo >>> 0 < 8) s[9] = (s[9] + 1) | 0;
          s[8] = spLo;
          s[RIP_LO] = v; s[RIP_HI] = h;
          return 1;
        };
      }
      return () => {
        const v = peek(cpu, sw, psize, 0);
        const h = RH;
        if (psize === 8 && !canonical(h)) cpu.gp(0);
        adjustSp(cpu, sw, psize + extra);
        s[RIP_LO] = psize === 2 ? v & 0xffff : v;
        s[RIP_HI] = psize === 8 ? h : 0;
        return 1;
      };
    }
    case "jmpf": case "callf": {
      const isCall = mn === "callf";
      if (ops[0] === "Ap") {
        const sel = d.imm2 & 0xffff;
        const off = os === 2 ? d.imm & 0xffff : d.imm;
        return () => {
          if (isCall) cpu.sys.farCall(sel, off, 0, os, nextLo, nextHi);
          else cpu.sys.farJump(sel, off, 0, os, nextLo);
          return 3;
        };
      }
      const ea = makeEA(cpu, d, nextLo, nextHi);
      const seg = d.seg;
      return () => {
        const a = ea();
        const ah = EAH;
        let off: number;
        let offHi = 0;
        let selOff: number;
        if (os === 8) { off = cpu.rd64(seg, a, ah); offHi = cpu.hi; selOff = 8; }
        else if (os === 4) { off = cpu.rd32(seg, a, ah); selOff = 4; }
        else { off = cpu.rd16(seg, a, ah); selOff = 2; }
        const sa = add64(a, ah, selOff, 0, 0);
        const sel = cpu.rd16(seg, asize === 2 ? sa & 0xffff : sa, asize === 8 ? RH : 0);
        if (isCall) cpu.sys.farCall(sel, off, offHi, os, nextLo, nextHi);
        else cpu.sys.farJump(sel, off, offHi, os, nextLo);
        return 3;
      };
    }
    case "retf": {
      const extra = ops.length ? d.imm & 0xffff : 0;
      return () => { cpu.sys.farReturn(os, extra); return 3; };
    }
    case "iret":
      return () => { cpu.sys.iret(os, nextLo); return 3; };
    case "int3": case "int": case "into": case "int1": {
      const vector = mn === "int3" ? 3 : mn === "int" ? d.imm & 0xff : mn === "into" ? 4 : 1;
      const kind = mn === "int" ? EV_SOFT_INT : mn === "int1" ? EV_PRIV_SOFT_EXCEPTION : EV_SOFT_EXCEPTION;
      return () => {
        if (mn === "into" && (getArithFlags(s) & S.F_OF) === 0) { s[RIP_LO] = nextLo; s[RIP_HI] = nextHi; return 1; }
        if (kind === EV_SOFT_INT && cpu.controls.interceptSoftwareInt) cpu.exitBefore(EXIT_SOFTWARE_INT, vector, len);
        if (kind === EV_SOFT_INT && (s[FLAGS] & S.F_VM) !== 0 && ((s[FLAGS] >> 12) & 3) !== 3) cpu.gp(0);
        s[RIP_LO] = nextLo;
        s[RIP_HI] = nextHi;
        cpu.sys.deliverEvent(vector, kind, 0, false, len);
        return 3;
      };
    }

    // ---------------------------------------------------------- multiply and divide
    case "mul": case "imul": {
      if (ops.length === 1) return compileMulDiv1(cpu, d, mn, size, nextLo, nextHi);
      const src = eLoc(cpu, d, os, nextLo, nextHi);
      const dst = regLoc(cpu, d.reg, os, false);
      const hasImm = ops.length === 3;
      const imm = d.imm;
      return () => {
        const a = src.read();
        const ah = RH;
        const b = hasImm ? imm : dst.read();
        const bh = hasImm ? imm >> 31 : RH;
        imulTruncating(s, os, a, ah, b, bh);
        dst.write(MUL_LO, MUL_HI);
        return 0;
      };
    }
    case "div": case "idiv":
      return compileMulDiv1(cpu, d, mn, size, nextLo, nextHi);

    // ---------------------------------------------------------- shifts and rotates
    case "rol": case "ror": case "rcl": case "rcr": case "shl": case "shr": case "sar": {
      const loc = eLoc(cpu, d, size, nextLo, nextHi, true);
      const src = ops[1];
      const immCount = src === "1" ? 1 : d.imm & 0xff;
      const byCl = src === "CL";
      const kind = ["rol", "ror", "rcl", "rcr", "shl", "shr", "sal", "sar"].indexOf(mn);
      const cmask = size === 8 ? 63 : 31;
      return () => {
        const count = (byCl ? s[2] : immCount) & cmask;
        const v = loc.read();
        const vh = RH;
        if (size === 8) {
          const r = shift64(s, kind, v, vh, count);
          loc.write(r, RH);
        } else {
          const r = shift(s, kind, sz, v, count);
          loc.write(r, 0);
        }
        return 0;
      };
    }
    case "shld": case "shrd": {
      const loc = eLoc(cpu, d, os, nextLo, nextHi, true);
      const reg = regLoc(cpu, d.reg, os, false);
      const byCl = ops[2] === "CL";
      const immCount = d.imm & 0xff;
      const left = mn === "shld";
      return () => {
        const count = (byCl ? s[2] : immCount) & (os === 8 ? 63 : 31);
        const v = loc.read();
        const vh = RH;
        const f = reg.read();
        const fh = RH;
        const r = doubleShift(s, os, left, v, vh, f, fh, count);
        loc.write(r, RH);
        return 0;
      };
    }

    // ---------------------------------------------------------- bit operations
    case "bt": case "bts": case "btr": case "btc": {
      const op = ["bt", "bts", "btr", "btc"].indexOf(mn);
      const byImm = ops[1] === "Ib";
      const bits = os * 8;
      if (d.mod === 3 || byImm) {
        const loc = eLoc(cpu, d, os, nextLo, nextHi, op !== 0);
        const reg = byImm ? null : regLoc(cpu, d.reg, os, false);
        const immBit = d.imm & (bits - 1);
        return () => {
          const bit = reg ? reg.read() & (bits - 1) : immBit;
          const v = loc.read();
          let vh = RH;
          let lo = v;
          let cf: number;
          if (bit >= 32) {
            cf = (vh >>> (bit - 32)) & 1;
            if (op === 1) vh |= 1 << (bit - 32);
            else if (op === 2) vh &= ~(1 << (bit - 32));
            else if (op === 3) vh ^= 1 << (bit - 32);
          } else {
            cf = (v >>> bit) & 1;
            if (op === 1) lo |= 1 << bit;
            else if (op === 2) lo &= ~(1 << bit);
            else if (op === 3) lo ^= 1 << bit;
          }
          if (op !== 0) loc.write(os === 2 ? lo & 0xffff : lo, vh);
          setArithFlags(s, (getArithFlags(s) & ~S.F_CF) | cf);
          return 0;
        };
      }
      // Memory with a register bit offset: the offset is signed and reaches beyond the operand.
      // The operand-size word holding the bit is accessed, at EA + size * (offset >> log2(bits)),
      // as the manuals describe (and as the hardware faults).
      const ea = makeEA(cpu, d, nextLo, nextHi);
      const reg = regLoc(cpu, d.reg, os, false);
      const seg = d.seg;
      const as = d.asize;
      return () => {
        let off = ea();
        let offh = EAH;
        const r = reg.read();
        const rh = RH;
        // Word displacement (offset >> log) * size, computed in 64 bits with the sign.
        let wl: number;
        let wh: number;
        if (os === 8) { wl = (r >>> 6) | (rh << 26); wh = rh >> 6; }
        else if (os === 4) { wl = r >> 5; wh = r >> 31; }
        else { const r16 = (r << 16) >> 16; wl = r16 >> 4; wh = r16 >> 31; }
        const dispLo = os === 8 ? (wl << 3) | 0 : (wl * os) | 0;
        const dispHi = os === 8 ? (wh << 3) | (wl >>> 29) : (os === 4 ? (wl >> 29) : wh);
        off = add64(off, offh, dispLo, dispHi, 0);
        offh = RH;
        if (as === 4) offh = 0;
        if (as === 2) { off &= 0xffff; offh = 0; }
        const bit = r & (os * 8 - 1);
        if (op !== 0) cpu.checkWritable(seg, off, offh, os);
        let v: number;
        let vh = 0;
        if (os === 2) v = cpu.rd16(seg, off, offh);
        else if (os === 4) v = cpu.rd32(seg, off, offh);
        else { v = cpu.rd64(seg, off, offh); vh = cpu.hi; }
        const inHi = bit >= 32;
        const b = inHi ? bit - 32 : bit;
        const word = inHi ? vh : v;
        const cf = (word >>> b) & 1;
        if (op !== 0) {
          const nw = op === 1 ? word | (1 << b) : op === 2 ? word & ~(1 << b) : word ^ (1 << b);
          if (os === 2) cpu.wr16(seg, off, offh, nw);
          else if (os === 4) cpu.wr32(seg, off, offh, nw);
          else cpu.wr64(seg, off, offh, inHi ? v : nw, inHi ? nw : vh);
        }
        setArithFlags(s, (getArithFlags(s) & ~S.F_CF) | cf);
        return 0;
      };
    }
    case "bsf": case "bsr": case "tzcnt": case "lzcnt": case "popcnt": {
      const src = eLoc(cpu, d, os, nextLo, nextHi);
      const dst = regLoc(cpu, d.reg, os, false);
      const bits = os * 8;
      return () => {
        let lo = src.read();
        const hi = os === 8 ? RH : 0;
        if (os === 2) lo &= 0xffff;
        const zero = lo === 0 && hi === 0;
        const f = getArithFlags(s);
        if (mn === "popcnt") {
          const n = popcount(lo) + popcount(hi);
          dst.write(n, 0);
          setArithFlags(s, zero ? S.F_ZF : 0);
          return 0;
        }
        if (mn === "bsf" || mn === "bsr") {
          if (zero) {
            setArithFlags(s, (f & ~S.F_ZF) | S.F_ZF);
            return 0;
          }
          let n: number;
          if (mn === "bsf") n = lo !== 0 ? 31 - Math.clz32(lo & -lo) : 32 + 31 - Math.clz32(hi & -hi);
          else n = hi !== 0 ? 63 - Math.clz32(hi) : 31 - Math.clz32(lo);
          dst.write(n, 0);
          setArithFlags(s, f & ~S.F_ZF);
          return 0;
        }
        let n: number;
        if (mn === "tzcnt") n = zero ? bits : lo !== 0 ? 31 - Math.clz32(lo & -lo) : 32 + 31 - Math.clz32(hi & -hi);
        else {
          if (os === 8) n = hi !== 0 ? Math.clz32(hi) : 32 + Math.clz32(lo);
          else n = Math.clz32(lo) - (32 - bits);
        }
        dst.write(n, 0);
        setArithFlags(s, (f & ~(S.F_CF | S.F_ZF)) | (zero ? S.F_CF : 0) | (n === 0 ? S.F_ZF : 0));
        return 0;
      };
    }

    // ---------------------------------------------------------- exchange and compare
    case "xadd": {
      const loc = eLoc(cpu, d, size, nextLo, nextHi, true);
      const reg = regLoc(cpu, d.reg, size, d.highByteRegs);
      return () => {
        const a = loc.read();
        const ah = RH;
        const b = reg.read();
        const bh = RH;
        const r = size === 8 ? alu64(s, 0, a, ah, b, bh) : alu(s, 0, sz, a, b);
        const rh = RH;
        // The destination is written last (it wins when both are the same register); a memory
        // destination is stored first so that a faulting store changes no register.
        if (loc.isMem) {
          loc.write(r, rh);
          reg.write(a, ah);
        } else {
          reg.write(a, ah);
          loc.write(r, rh);
        }
        return 0;
      };
    }
    case "cmpxchg": {
      const loc = eLoc(cpu, d, size, nextLo, nextHi, true);
      const reg = regLoc(cpu, d.reg, size, d.highByteRegs);
      const acc = regLoc(cpu, 0, size, false);
      return () => {
        const dv = loc.read();
        const dh = RH;
        const av = acc.read();
        const ah = RH;
        let equal: boolean;
        if (size === 8) { alu64(s, 7, av, ah, dv, dh); equal = av === dv && ah === dh; }
        else { alu(s, 7, sz, av, dv); equal = (av & MASKS[sz]) === (dv & MASKS[sz]); }
        if (equal) {
          const v = reg.read();
          loc.write(v, RH);
        } else {
          // A memory destination is written back with its own value (so it must be writable);
          // a register destination is left alone.
          if (loc.isMem) loc.write(dv, dh);
          acc.write(dv, dh);
        }
        return 0;
      };
    }
    case "cmpxchg8b": {
      const ea = makeEA(cpu, d, nextLo, nextHi);
      const seg = d.seg;
      const wide = (d.rex & 8) !== 0;
      return () => {
        const a = ea();
        const ah = EAH;
        if (wide) {
          if ((a & 15) !== 0) cpu.gp(0);
          cpu.checkWritable(seg, a, ah, 16);
          const l0 = cpu.rd64(seg, a, ah); const h0 = cpu.hi;
          const a8 = add64(a, ah, 8, 0, 0); const a8h = RH;
          const l1 = cpu.rd64(seg, a8, a8h); const h1 = cpu.hi;
          const eq = l0 === s[0] && h0 === s[1] && l1 === s[4] && h1 === s[5];
          if (eq) { cpu.probeWrite(seg, a, ah, 16); cpu.wr64(seg, a, ah, s[6], s[7]); cpu.wr64(seg, a8, a8h, s[2], s[3]); }
          else { cpu.probeWrite(seg, a, ah, 16); cpu.wr64(seg, a, ah, l0, h0); cpu.wr64(seg, a8, a8h, l1, h1); s[0] = l0; s[1] = h0; s[4] = l1; s[5] = h1; }
          const f = getArithFlags(s);
          setArithFlags(s, eq ? f | S.F_ZF : f & ~S.F_ZF);
          return 0;
        }
        cpu.checkWritable(seg, a, ah, 8);
        const lo = cpu.rd64(seg, a, ah);
        const hi = cpu.hi;
        const eq = lo === s[0] && hi === s[4];
        if (eq) cpu.wr64(seg, a, ah, s[6], s[2]);
        else {
          cpu.wr64(seg, a, ah, lo, hi);
          s[0] = lo; s[1] = 0; s[4] = hi; s[5] = 0;
        }
        const f = getArithFlags(s);
        setArithFlags(s, eq ? f | S.F_ZF : f & ~S.F_ZF);
        return 0;
      };
    }

    // ---------------------------------------------------------- strings
    case "movs": case "cmps": case "stos": case "lods": case "scas": case "ins": case "outs":
      return compileString(cpu, d, mn, size, len);

    // ---------------------------------------------------------- BCD
    case "daa": case "das": case "aaa": case "aas":
      return () => { bcd(s, mn); return 0; };
    case "aam": {
      const base = d.imm & 0xff;
      return () => {
        if (base === 0) cpu.fault(S.VEC_DE);
        const al = s[0] & 0xff;
        const ah = (al / base) | 0;
        const nal = al % base;
        s[0] = (s[0] & ~0xffff) | (ah << 8) | nal;
        s[CC_OP] = (CC_LOGIC << 2); s[CC_DST] = nal;
        return 0;
      };
    }
    case "aad": {
      const base = d.imm & 0xff;
      return () => {
        const al = ((s[0] & 0xff) + ((s[0] >> 8) & 0xff) * base) & 0xff;
        s[0] = (s[0] & ~0xffff) | al;
        s[CC_OP] = (CC_LOGIC << 2); s[CC_DST] = al;
        return 0;
      };
    }

    // ---------------------------------------------------------- I/O
    case "in": case "out": {
      const isIn = mn === "in";
      const ioSize = size === 1 ? 1 : os === 2 ? 2 : 4;
      const fixedPort = ops.includes("Ib") ? d.imm & 0xff : -1;
      return () => {
        const port = fixedPort >= 0 ? fixedPort : s[4] & 0xffff;
        if (ioDenied(cpu)) cpu.sys.checkIoPermission(port, ioSize);
        if (cpu.controls.interceptIo) cpu.exitBefore(EXIT_IO, port | (ioSize << 16) | (isIn ? 1 << 24 : 0), len);
        if (cpu.watchingIo) cpu.noteIoAccess(port, ioSize);
        if (isIn) {
          const v = cpu.io.in(port, ioSize as 1 | 2 | 4);
          if (ioSize === 1) s[0] = (s[0] & ~0xff) | (v & 0xff);
          else if (ioSize === 2) s[0] = (s[0] & ~0xffff) | (v & 0xffff);
          else { s[0] = v | 0; s[1] = 0; }
        } else {
          const v = ioSize === 1 ? s[0] & 0xff : ioSize === 2 ? s[0] & 0xffff : s[0] >>> 0;
          cpu.io.out(port, ioSize as 1 | 2 | 4, v);
        }
        return 2;
      };
    }

    // ---------------------------------------------------------- system
    case "hlt":
      return () => { s[S.HALTED] = 1; return 2; };
    case "cpuid":
      return () => {
        if (cpu.controls.interceptCpuid) cpu.exitBefore(EXIT_CPUID, s[0], len);
        cpu.sys.cpuid(s[0], s[2]);
        return 2;
      };
    case "rdtsc": case "rdtscp":
      return () => {
        if ((s[S.CR4] & S.CR4_TSD) !== 0 && cpu.cpl !== 0) cpu.gp(0);
        if (cpu.controls.interceptRdtsc) cpu.exitBefore(EXIT_RDTSC, mn === "rdtscp" ? 1 : 0, len);
        const t = cpu.readTsc();
        const offLo = s[S.TSC_OFFSET_LO] >>> 0;
        const offHi = s[S.TSC_OFFSET_HI];
        const tLo = t % 4294967296;
        const tHi = (t - tLo) / 4294967296;
        const lo = tLo + offLo;
        s[0] = lo | 0; s[1] = 0;
        s[4] = (tHi + offHi + (lo > 0xffffffff ? 1 : 0)) | 0; s[5] = 0;
        if (mn === "rdtscp") { s[2] = s[S.MSR_TSC_AUX]; s[3] = 0; }
        return 0;
      };
    case "rdpid":
      return () => { const r = dRm * 2; s[r] = s[S.MSR_TSC_AUX]; s[r + 1] = 0; return 0; };
    case "rdmsr":
      return () => {
        if (cpu.controls.interceptMsr) cpu.exitBefore(EXIT_RDMSR, s[2], len);
        const lo = cpu.sys.rdmsr(s[2] >>> 0);
        s[0] = lo; s[1] = 0; s[4] = cpu.hi; s[5] = 0;
        return 0;
      };
    case "wrmsr":
      return () => {
        if (cpu.controls.interceptMsr) cpu.exitBefore(EXIT_WRMSR, s[2], len);
        cpu.sys.wrmsr(s[2] >>> 0, s[0], s[4]);
        return 2;
      };
    case "movcr": case "movdr": {
      const toCr = ops[0][0] === "C" || ops[0][0] === "D";
      const n = d.reg;
      const r = d.rm * 2;
      const isCr = mn === "movcr";
      if (isCr && (n === 1 || (n > 4 && n !== 8))) return null;
      if (!isCr && n > 7) return null;
      return () => {
        if (toCr) {
          if (isCr && cpu.controls.interceptCrWrite) cpu.exitBefore(EXIT_CR_ACCESS, n, len);
          if (isCr) cpu.sys.writeCr(n, s[r], code64 ? s[r + 1] : 0);
          else cpu.sys.writeDr(n, s[r], code64 ? s[r + 1] : 0);
          return 2;
        }
        const lo = isCr ? cpu.sys.readCr(n) : cpu.sys.readDr(n);
        s[r] = lo;
        s[r + 1] = code64 ? cpu.hi : 0;
        return 0;
      };
    }
    case "invlpg": {
      const ea = makeEA(cpu, d, nextLo, nextHi);
      const seg = d.seg;
      return () => {
        const a = ea();
        const ah = EAH;
        if (cpu.controls.interceptInvlpg) cpu.exitBefore(EXIT_INVLPG, a, len);
        const lin = cpu.code64 ? cpu.linear(seg, a, ah, 1, false) : (a + cpu.segBase[seg]) | 0;
        cpu.sys.invlpg(lin, cpu.code64 ? cpu.linHi : 0);
        return 2;
      };
    }
    case "syscall":
      return () => {
        if (cpu.controls.interceptSyscall) cpu.exitBefore(EXIT_SYSCALL, 0, len);
        cpu.sys.syscall(nextLo, nextHi);
        return 3;
      };
    case "sysret": return () => { cpu.sys.sysret(os); return 3; };
    case "sysenter": return () => { cpu.sys.sysenter(); return 3; };
    case "sysexit": return () => { cpu.sys.sysexit(os); return 3; };
    case "swapgs": return () => { cpu.sys.swapgs(); return 0; };
    case "clts": return () => { cpu.sys.clts(); return 0; };
    case "invd": case "wbinvd": return () => 0;
    case "lgdt": case "lidt": case "sgdt": case "sidt": {
      const ea = makeEA(cpu, d, nextLo, nextHi);
      const seg = d.seg;
      return () => {
        const a = ea();
        const ah = EAH;
        if (mn === "lgdt") cpu.sys.lgdt(seg, a, ah, os);
        else if (mn === "lidt") cpu.sys.lidt(seg, a, ah, os);
        else if (mn === "sgdt") cpu.sys.sgdt(seg, a, ah, os);
        else cpu.sys.sidt(seg, a, ah, os);
        return mn[0] === "l" ? 2 : 0;
      };
    }
    case "lldt": case "ltr": case "verr": case "verw": case "lmsw": {
      const src = eLoc(cpu, d, 2, nextLo, nextHi);
      return () => {
        const v = src.read() & 0xffff;
        if (mn === "lldt") cpu.sys.lldt(v);
        else if (mn === "ltr") cpu.sys.ltr(v);
        else if (mn === "verr") cpu.sys.verr(v);
        else if (mn === "verw") cpu.sys.verw(v);
        else cpu.sys.lmsw(v);
        return mn === "lmsw" ? 2 : 0;
      };
    }
    case "sldt": case "str": case "smsw": {
      const dst = d.mod === 3 ? regLoc(cpu, d.rm, os, false) : eLoc(cpu, d, 2, nextLo, nextHi);
      return () => {
        const v = mn === "sldt" ? cpu.sys.sldt() : mn === "str" ? cpu.sys.str() : cpu.sys.smsw();
        dst.prepare();
        dst.write(v, 0);
        return 0;
      };
    }
    case "lar": case "lsl": {
      const src = eLoc(cpu, d, 2, nextLo, nextHi);
      const dst = regLoc(cpu, d.reg, os, false);
      return () => {
        const sel = src.read() & 0xffff;
        const v = mn === "lar" ? cpu.sys.lar(sel) : cpu.sys.lsl(sel);
        if (cpu.sys.lastDescriptorValid) dst.write(os === 2 ? v & 0xffff : v, 0);
        return 0;
      };
    }
    case "les": case "lds": case "lss": case "lfs": case "lgs": {
      const seg = ["les", "", "lss", "lds", "lfs", "lgs"].indexOf(mn);
      const ea = makeEA(cpu, d, nextLo, nextHi);
      const dst = regLoc(cpu, d.reg, os, false);
      const mseg = d.seg;
      return () => {
        const a = ea();
        const ah = EAH;
        const off = os === 2 ? cpu.rd16(mseg, a, ah) : os === 4 ? cpu.rd32(mseg, a, ah) : cpu.rd64(mseg, a, ah);
        const offh = os === 8 ? cpu.hi : 0;
        const sa = add64(a, ah, os, 0, 0);
        const sel = cpu.rd16(mseg, asize === 2 ? sa & 0xffff : sa, asize === 8 ? RH : 0);
        cpu.sys.loadSegment(seg, sel);
        dst.write(off, offh);
        return 2;
      };
    }
    case "ud2": case "ud0": case "ud1": case "monitor": case "mwait": case "xgetbv":
      return null;
    case "bound": {
      const ea = makeEA(cpu, d, nextLo, nextHi);
      const reg = regLoc(cpu, d.reg, os, false);
      const seg = d.seg;
      return () => {
        const a = ea();
        let lo: number;
        let hi: number;
        let v = reg.read();
        if (os === 2) { lo = (cpu.rd16(seg, a, 0) << 16) >> 16; hi = (cpu.rd16(seg, (a + 2) & (asize === 2 ? 0xffff : -1), 0) << 16) >> 16; v = (v << 16) >> 16; }
        else { lo = cpu.rd32(seg, a, 0); hi = cpu.rd32(seg, (a + 4) | 0, 0); }
        if (v < lo || v > hi) cpu.fault(S.VEC_BR);
        return 0;
      };
    }
    case "arpl": {
      const dst = eLoc(cpu, d, 2, nextLo, nextHi);
      const src = regLoc(cpu, d.reg, 2, false);
      return () => {
        if ((s[S.CR0] & S.CR0_PE) === 0 || (s[FLAGS] & S.F_VM) !== 0) cpu.ud();
        const v = dst.read();
        const r = src.read();
        const f = getArithFlags(s);
        if ((v & 3) < (r & 3)) { dst.write((v & ~3) | (r & 3), 0); setArithFlags(s, f | S.F_ZF); }
        else setArithFlags(s, f & ~S.F_ZF);
        return 0;
      };
    }
  }
  // x87, MMX and SSE live in their own unit.
  return compileFloatingPoint(cpu, d, eipLo, eipHi, nextLo, nextHi);
}

// ------------------------------------------------------------------ helpers used by closures

const POPA_TMP = new Int32Array(8);

/** A 64-bit address is canonical when bits 63..47 are all equal (hi is bits 63..32). */
function canonical(hi: number): boolean {
  return ((hi + 0x8000) & 0xffff0000) === 0;
}

function iopl_denied(cpu: Cpu): boolean {
  const s = cpu.s;
  if ((s[S.CR0] & S.CR0_PE) === 0) return false;
  const iopl = (s[FLAGS] >> 12) & 3;
  if ((s[FLAGS] & S.F_VM) !== 0) return iopl !== 3;
  return cpu.cpl > iopl;
}

/** I/O instructions consult the TSS bitmap in virtual-8086 mode whatever IOPL is, else when CPL > IOPL. */
function ioDenied(cpu: Cpu): boolean {
  const s = cpu.s;
  if ((s[S.CR0] & S.CR0_PE) === 0) return false;
  if ((s[FLAGS] & S.F_VM) !== 0) return true;
  return cpu.cpl > ((s[FLAGS] >> 12) & 3);
}

function pushSeg(cpu: Cpu, sw: number, size: number, sel: number): void {
  const s = cpu.s;
  // Decrement by the operand size but store only 16 bits (as current processors do).
  const oldLo = s[8];
  const oldHi = s[9];
  adjustSp(cpu, sw, -size);
  try {
    cpu.wr16(S.SEG_SS, sw === 2 ? s[8] & 0xffff : s[8], sw === 8 ? s[9] : 0, sel);
  } catch (err) {
    s[8] = oldLo;
    s[9] = oldHi;
    throw err;
  }
}

function writeStackAt(cpu: Cpu, sw: number, size: number, sp: number, off: number, v: number): void {
  const a = sw === 2 ? (sp + off) & 0xffff : (sp + off) | 0;
  if (size === 4) cpu.wr32(S.SEG_SS, a, 0, v);
  else cpu.wr16(S.SEG_SS, a, 0, v);
}

function enter(cpu: Cpu, sw: number, os: number, alloc: number, level: number): void {
  const s = cpu.s;
  const oldSp = s[8];
  const oldSpHi = s[9];
  const oldBp = s[10];
  const oldBpHi = s[11];
  try {
    push(cpu, sw, os, s[10], s[11]);
    const frameLo = s[8];
    const frameHi = s[9];
    if (level > 0) {
      let bpLo = oldBp;
      let bpHi = oldBpHi;
      for (let i = 1; i < level; i++) {
        const t = sub64(bpLo, bpHi, os, 0, 0);
        bpLo = sw === 2 ? (bpLo & ~0xffff) | (t & 0xffff) : t;
        bpHi = sw === 8 ? RH : 0;
        const a = sw === 2 ? bpLo & 0xffff : bpLo;
        const v = os === 8 ? cpu.rd64(S.SEG_SS, a, bpHi) : os === 4 ? cpu.rd32(S.SEG_SS, a, bpHi) : cpu.rd16(S.SEG_SS, a, bpHi);
        push(cpu, sw, os, v, os === 8 ? cpu.hi : 0);
      }
      push(cpu, sw, os, frameLo, frameHi);
    }
    // Check that the allocation is writable (the last byte of the new frame).
    adjustSp(cpu, sw, -alloc);
    if (alloc > 0) cpu.probeWrite(S.SEG_SS, sw === 2 ? s[8] & 0xffff : s[8], sw === 8 ? s[9] : 0, 1);
    if (os === 2) s[10] = (s[10] & ~0xffff) | (frameLo & 0xffff);
    else { s[10] = frameLo; s[11] = os === 8 ? frameHi : 0; }
  } catch (err) {
    s[8] = oldSp;
    s[9] = oldSpHi;
    s[10] = oldBp;
    s[11] = oldBpHi;
    throw err;
  }
}

function popcount(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

/** Unsigned 32x32 → 64: low word returned, high word in RH. */
function mulU32(a: number, b: number): number {
  const aL = a & 0xffff;
  const aH = a >>> 16;
  const bL = b & 0xffff;
  const bH = b >>> 16;
  const ll = aL * bL;
  const lh = aL * bH;
  const hl = aH * bL;
  const hh = aH * bH;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  RH = (hh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) | 0;
  return Math.imul(a, b);
}

let MUL_LO = 0;
let MUL_HI = 0;

/** The 128-bit product of the last mul64(), as four words from low to high. */
const PROD = new Int32Array(4);

/**
 * 64 x 64 -> 128-bit multiply on word pairs into PROD, signed or unsigned, by 32-bit halves
 * (each partial product exact through mulU32): no BigInt.
 */
function mul64(aLo: number, aHi: number, bLo: number, bHi: number, signed: boolean): void {
  const p0l = mulU32(aLo, bLo) >>> 0;
  const p0h = RH >>> 0;
  const p1l = mulU32(aLo, bHi) >>> 0;
  const p1h = RH >>> 0;
  const p2l = mulU32(aHi, bLo) >>> 0;
  const p2h = RH >>> 0;
  const p3l = mulU32(aHi, bHi) >>> 0;
  const p3h = RH >>> 0;
  // word1 = p0h + p1l + p2l; word2 = p1h + p2h + p3l + carry; word3 = p3h + carry
  let t = p0h + p1l + p2l;
  const w1 = t >>> 0;
  let carry = Math.floor(t / 4294967296);
  t = p1h + p2h + p3l + carry;
  let w2 = t >>> 0;
  carry = Math.floor(t / 4294967296);
  let w3 = (p3h + carry) >>> 0;
  if (signed) {
    // Two's complement: subtract b << 64 when a < 0, and a << 64 when b < 0.
    if (aHi < 0) {
      const d = w2 - (bLo >>> 0);
      w3 = (w3 - (bHi >>> 0) - (d < 0 ? 1 : 0)) >>> 0;
      w2 = d >>> 0;
    }
    if (bHi < 0) {
      const d = w2 - (aLo >>> 0);
      w3 = (w3 - (aHi >>> 0) - (d < 0 ? 1 : 0)) >>> 0;
      w2 = d >>> 0;
    }
  }
  PROD[0] = p0l;
  PROD[1] = w1;
  PROD[2] = w2;
  PROD[3] = w3;
}

/** Two- and three-operand IMUL: truncated product in MUL_LO/MUL_HI, flags CF=OF=overflow. */
function imulTruncating(s: Int32Array, os: number, a: number, ah: number, b: number, bh: number): void {
  let ovf: boolean;
  if (os === 2) {
    const p = ((a << 16) >> 16) * ((b << 16) >> 16);
    MUL_LO = p & 0xffff;
    ovf = p !== (p << 16) >> 16;
    s[CC_DST] = MUL_LO;
  } else if (os === 4) {
    const lo = Math.imul(a, b);
    // The double product is exact below 2^53, and above it can't equal an int32: no BigInt.
    ovf = (a | 0) * (b | 0) !== lo;
    MUL_LO = lo;
    MUL_HI = 0;
    s[CC_DST] = lo;
  } else {
    mul64(a, ah, b, bh, true);
    MUL_LO = PROD[0];
    MUL_HI = PROD[1];
    // The signed product fits in 64 bits when the high half is the sign extension of the low.
    const ext = MUL_HI >> 31;
    ovf = PROD[2] !== ext || PROD[3] !== ext;
    s[CC_DST] = MUL_LO;
    s[CC_DST + 1] = MUL_HI;
  }
  s[CC_SRC] = ovf ? 1 : 0;
  s[CC_OP] = (CC_MUL << 2) | SZ_OF[os];
}

function compileMulDiv1(cpu: Cpu, d: Insn, mn: string, size: number, nextLo: number, nextHi: number): Fn {
  const s = cpu.s;
  const src = eLoc(cpu, d, size, nextLo, nextHi);
  const signed = mn === "imul" || mn === "idiv";
  if (mn === "mul" || mn === "imul") return () => { const v = src.read(); mulAcc(s, size, v, RH, signed); return 0; };
  return () => { const v = src.read(); divAcc(cpu, size, v, RH, signed); return 0; };
}

function mulAcc(s: Int32Array, size: number, v: number, vh: number, signed: boolean): void {
  let ovf: boolean;
  if (size === 1) {
    const a = s[0] & 0xff;
    const p = signed ? ((a << 24) >> 24) * ((v << 24) >> 24) : a * (v & 0xff);
    s[0] = (s[0] & ~0xffff) | (p & 0xffff);
    ovf = signed ? p !== (p << 24) >> 24 : (p & 0xff00) !== 0;
    s[CC_DST] = p & 0xff;
  } else if (size === 2) {
    const a = s[0] & 0xffff;
    const p = signed ? ((a << 16) >> 16) * ((v << 16) >> 16) : a * (v & 0xffff);
    s[0] = (s[0] & ~0xffff) | (p & 0xffff);
    s[4] = (s[4] & ~0xffff) | ((p >> 16) & 0xffff);
    ovf = signed ? p !== (p << 16) >> 16 : (p & 0xffff0000) !== 0;
    s[CC_DST] = p & 0xffff;
  } else if (size === 4) {
    let lo = mulU32(s[0], v);
    let hi = RH;
    if (signed) {
      if (s[0] < 0) hi = (hi - v) | 0;
      if (v < 0) hi = (hi - s[0]) | 0;
      ovf = hi !== lo >> 31;
    } else ovf = hi !== 0;
    lo |= 0;
    s[0] = lo; s[1] = 0; s[4] = hi; s[5] = 0;
    s[CC_DST] = lo;
  } else {
    mul64(s[0], s[1], v, vh, signed);
    s[0] = PROD[0]; s[1] = PROD[1]; s[4] = PROD[2]; s[5] = PROD[3];
    if (signed) {
      const ext = PROD[1] >> 31;
      ovf = PROD[2] !== ext || PROD[3] !== ext;
    } else ovf = (PROD[2] | PROD[3]) !== 0;
    s[CC_DST] = s[0]; s[CC_DST + 1] = s[1];
  }
  s[CC_SRC] = ovf ? 1 : 0;
  s[CC_OP] = (CC_MUL << 2) | SZ_OF[size];
}

function divAcc(cpu: Cpu, size: number, v: number, vh: number, signed: boolean): void {
  const s = cpu.s;
  if (size === 1) {
    const a = s[0] & 0xffff;
    const dv = signed ? (v << 24) >> 24 : v & 0xff;
    if (dv === 0) cpu.fault(S.VEC_DE);
    const n = signed ? (a << 16) >> 16 : a;
    const q = Math.trunc(n / dv);
    const r = n - q * dv;
    if (signed ? q > 127 || q < -128 : q > 255) cpu.fault(S.VEC_DE);
    s[0] = (s[0] & ~0xffff) | ((r & 0xff) << 8) | (q & 0xff);
  } else if (size === 2) {
    const dv = signed ? (v << 16) >> 16 : v & 0xffff;
    if (dv === 0) cpu.fault(S.VEC_DE);
    const raw = ((s[4] & 0xffff) << 16) | (s[0] & 0xffff);
    const n = signed ? raw : raw >>> 0;
    const q = Math.trunc(n / dv);
    const r = n - q * dv;
    if (signed ? q > 32767 || q < -32768 : q > 65535) cpu.fault(S.VEC_DE);
    s[0] = (s[0] & ~0xffff) | (q & 0xffff);
    s[4] = (s[4] & ~0xffff) | (r & 0xffff);
  } else if (size === 4) {
    if (v === 0) cpu.fault(S.VEC_DE);
    let hi = s[4];
    let lo = s[0];
    let neg = false;
    let dneg = false;
    let dv = v >>> 0;
    if (signed) {
      if (hi < 0) { neg = true; lo = (~lo + 1) | 0; hi = (~hi + (lo === 0 ? 1 : 0)) | 0; }
      if (v < 0) { dneg = true; dv = (-v) >>> 0; }
    }
    const uhi = hi >>> 0;
    const ulo = lo >>> 0;
    if (uhi >= dv) cpu.fault(S.VEC_DE);
    // Long division in 16-bit digits keeps every intermediate below 2^53.
    let t = uhi * 65536 + (ulo >>> 16);
    const q1 = Math.floor(t / dv);
    let rem = t - q1 * dv;
    t = rem * 65536 + (ulo & 0xffff);
    const q2 = Math.floor(t / dv);
    rem = t - q2 * dv;
    const q = q1 * 65536 + q2;
    let qs = q;
    let rs = rem;
    if (signed) {
      if (neg !== dneg) qs = -q;
      if (neg) rs = -rem;
      if (qs > 0x7fffffff || qs < -0x80000000) cpu.fault(S.VEC_DE);
    } else if (q > 0xffffffff) cpu.fault(S.VEC_DE);
    s[0] = qs | 0; s[1] = 0; s[4] = rs | 0; s[5] = 0;
  } else {
    divide128(cpu, v, vh, signed);
  }
}

/** Two's complement negation of a word pair (low word returned, high in RH). */
function neg64(lo: number, hi: number): number {
  const nlo = (~lo + 1) | 0;
  RH = (~hi + (nlo === 0 ? 1 : 0)) | 0;
  return nlo;
}

const TWO32 = 4294967296n;

/**
 * 128/64-bit DIV and IDIV of RDX:RAX (rare enough for BigInt). Signs are handled on word pairs
 * and the BigInts stay non-negative, built and split with multiplication and division only:
 * Node 20's optimizing compiler aborts the process on merges of 64-bit-truncated BigInt values
 * (asUintN/asIntN or 64-bit masks), so none are used.
 */
function divide128(cpu: Cpu, v: number, vh: number, signed: boolean): void {
  const s = cpu.s;
  let dLo = v;
  let dHi = vh;
  let w0 = s[0];
  let w1 = s[1];
  let w2 = s[4];
  let w3 = s[5];
  let negQ = false;
  let negR = false;
  if (signed) {
    if (dHi < 0) {
      dLo = neg64(dLo, dHi);
      dHi = RH;
      negQ = true;
    }
    if (w3 < 0) {
      // 128-bit negation: invert and add one with carry through the four words.
      w0 = ~w0; w1 = ~w1; w2 = ~w2; w3 = ~w3;
      w0 = (w0 + 1) | 0;
      if (w0 === 0) { w1 = (w1 + 1) | 0; if (w1 === 0) { w2 = (w2 + 1) | 0; if (w2 === 0) w3 = (w3 + 1) | 0; } }
      negQ = !negQ;
      negR = true;
    }
  }
  const divisor = BigInt(dHi >>> 0) * TWO32 + BigInt(dLo >>> 0);
  if (divisor === 0n) cpu.fault(S.VEC_DE);
  const dividend = ((BigInt(w3 >>> 0) * TWO32 + BigInt(w2 >>> 0)) * TWO32 + BigInt(w1 >>> 0)) * TWO32 + BigInt(w0 >>> 0);
  const q = dividend / divisor;
  const r = dividend % divisor;
  // Unsigned: the quotient must fit 64 bits; signed: its magnitude 2^63 (negative) or 2^63 - 1.
  const limit = signed ? (negQ ? 9223372036854775808n : 9223372036854775807n) : 18446744073709551615n;
  if (q > limit) cpu.fault(S.VEC_DE);
  const qHi = q / TWO32;
  let qLo = Number(q - qHi * TWO32) | 0;
  let qH = Number(qHi) | 0;
  const rHi = r / TWO32;
  let rLo = Number(r - rHi * TWO32) | 0;
  let rH = Number(rHi) | 0;
  if (negQ) { qLo = neg64(qLo, qH); qH = RH; }
  if (negR) { rLo = neg64(rLo, rH); rH = RH; }
  s[0] = qLo; s[1] = qH; s[4] = rLo; s[5] = rH;
}

/** 8/16/32-bit shifts and rotates (kind: 0 rol 1 ror 2 rcl 3 rcr 4 shl 5 shr 6 sal 7 sar). */
function shift(s: Int32Array, kind: number, sz: number, v: number, count: number): number {
  const bits = 8 << sz;
  const m = MASKS[sz];
  const sign = 1 << (bits - 1);
  v &= m;
  if (count === 0) return v;
  switch (kind) {
    case 0: case 1: { // rol, ror
      const c = count & (bits - 1);
      let r = v;
      if (c !== 0) r = kind === 0 ? ((v << c) | (v >>> (bits - c))) & m : ((v >>> c) | (v << (bits - c))) & m;
      const f = getArithFlags(s) & ~(S.F_CF | S.F_OF);
      let cf: number;
      let of: number;
      if (kind === 0) { cf = r & 1; of = ((r & sign) !== 0 ? 1 : 0) ^ cf; }
      else { cf = (r & sign) !== 0 ? 1 : 0; of = cf ^ ((r & (sign >>> 1)) !== 0 ? 1 : 0); }
      setArithFlags(s, f | cf | (of ? S.F_OF : 0));
      return sz === 2 ? r | 0 : r;
    }
    case 2: case 3: { // rcl, rcr through carry: rotate a (bits+1)-bit quantity
      const c = sz === 2 ? count : count % (bits + 1);
      const f0 = getArithFlags(s);
      let cf = f0 & 1;
      let r = v;
      for (let i = 0; i < c; i++) {
        if (kind === 2) { const out = (r & sign) !== 0 ? 1 : 0; r = ((r << 1) | cf) & m; cf = out; }
        else { const out = r & 1; r = ((r >>> 1) | (cf ? sign : 0)) & m; cf = out; }
      }
      let of: number;
      if (kind === 2) of = ((r & sign) !== 0 ? 1 : 0) ^ cf;
      else of = ((r & sign) !== 0 ? 1 : 0) ^ ((r & (sign >>> 1)) !== 0 ? 1 : 0);
      if (c !== 0) setArithFlags(s, (f0 & ~(S.F_CF | S.F_OF)) | cf | (of ? S.F_OF : 0));
      return sz === 2 ? r | 0 : r;
    }
    case 4: case 6: { // shl
      const src = count === 1 ? v : count - 1 >= 32 ? 0 : (v << (count - 1)) & (bits === 32 ? -1 : 0xffffffff);
      const r = count >= 32 ? 0 : (v << count) & m;
      s[CC_OP] = (CC_SHL << 2) | sz;
      s[CC_SRC] = bits < 32 && count - 1 >= bits ? 0 : src;
      s[CC_DST] = r;
      return sz === 2 ? r | 0 : r;
    }
    case 5: { // shr
      const src = v >>> (count - 1);
      const r = count >= 32 ? 0 : v >>> count;
      s[CC_OP] = (CC_SAR << 2) | sz;
      s[CC_SRC] = src;
      s[CC_DST] = r;
      return sz === 2 ? r | 0 : r;
    }
    default: { // sar
      const vs = (v << (32 - bits)) >> (32 - bits);
      const src = vs >> Math.min(count - 1, 31);
      const r = (vs >> Math.min(count, 31)) & m;
      s[CC_OP] = (CC_SAR << 2) | sz;
      s[CC_SRC] = src;
      s[CC_DST] = r;
      return sz === 2 ? r | 0 : r;
    }
  }
}

/** 64-bit shifts and rotates; low word returned, high in RH. */
/** 64-bit shifts on word pairs: the low word returned, the high word in RH. No allocation. */
function shl64(l: number, h: number, c: number): number {
  if (c === 0) { RH = h; return l; }
  if (c >= 32) { RH = l << (c - 32); return 0; }
  RH = (h << c) | (l >>> (32 - c));
  return l << c;
}
function shr64(l: number, h: number, c: number): number {
  if (c === 0) { RH = h; return l; }
  if (c >= 32) { RH = 0; return h >>> (c - 32); }
  RH = h >>> c;
  return (l >>> c) | (h << (32 - c));
}
function sar64(l: number, h: number, c: number): number {
  if (c === 0) { RH = h; return l; }
  if (c >= 32) { RH = h >> 31; return h >> (c - 32); }
  RH = h >> c;
  return (l >>> c) | (h << (32 - c));
}

/** 64-bit shifts and rotates; low word returned, high in RH. */
function shift64(s: Int32Array, kind: number, lo: number, hi: number, count: number): number {
  if (count === 0) { RH = hi; return lo; }
  switch (kind) {
    case 0: case 1: {
      const a = kind === 0 ? shl64(lo, hi, count) : shr64(lo, hi, count);
      const b = RH;
      const c2 = kind === 0 ? shr64(lo, hi, 64 - count) : shl64(lo, hi, 64 - count);
      const rl = a | c2;
      const rh = b | RH;
      const f = getArithFlags(s) & ~(S.F_CF | S.F_OF);
      let cf: number;
      let of: number;
      if (kind === 0) { cf = rl & 1; of = (rh >>> 31) ^ cf; }
      else { cf = rh >>> 31; of = cf ^ ((rh >>> 30) & 1); }
      setArithFlags(s, f | cf | (of ? S.F_OF : 0));
      RH = rh;
      return rl;
    }
    case 2: case 3: {
      const f0 = getArithFlags(s);
      let cf = f0 & 1;
      let l = lo;
      let h = hi;
      for (let i = 0; i < count; i++) {
        if (kind === 2) { const out = h >>> 31; h = (h << 1) | (l >>> 31); l = (l << 1) | cf; cf = out; }
        else { const out = l & 1; l = (l >>> 1) | (h << 31); h = (h >>> 1) | (cf << 31); cf = out; }
      }
      const of = kind === 2 ? (h >>> 31) ^ cf : (h >>> 31) ^ ((h >>> 30) & 1);
      setArithFlags(s, (f0 & ~(S.F_CF | S.F_OF)) | cf | (of ? S.F_OF : 0));
      RH = h;
      return l;
    }
  }
  const by = kind === 5 ? shr64 : kind === 7 ? sar64 : shl64;
  const sl = by(lo, hi, count - 1);
  const sh = RH;
  const rl = by(lo, hi, count);
  const rh = RH;
  s[CC_OP] = ((kind === 4 || kind === 6 ? CC_SHL : CC_SAR) << 2) | 3;
  s[CC_SRC] = sl;
  s[CC_SRC + 1] = sh;
  s[CC_DST] = rl;
  s[CC_DST + 1] = rh;
  RH = rh;
  return rl;
}

/** SHLD/SHRD. Returns the low word, high in RH. */
function doubleShift(s: Int32Array, os: number, left: boolean, v: number, vh: number, f: number, fh: number, count: number): number {
  if (count === 0) { RH = os === 8 ? vh : 0; return os === 2 ? v & 0xffff : v; }
  const sz = SZ_OF[os];
  if (os === 8) {
    // Word pairs, no BigInt: count is 1..63 here.
    let rl: number;
    let rh: number;
    let sl: number;
    let sh: number;
    if (left) {
      rl = shl64(v, vh, count);
      rh = RH;
      rl |= shr64(f, fh, 64 - count);
      rh |= RH;
      if (count === 1) { sl = v; sh = vh; }
      else {
        sl = shl64(v, vh, count - 1);
        sh = RH;
        sl |= shr64(f, fh, 65 - count);
        sh |= RH;
      }
    } else {
      rl = shr64(v, vh, count);
      rh = RH;
      rl |= shl64(f, fh, 64 - count);
      rh |= RH;
      if (count === 1) { sl = v; sh = vh; }
      else {
        sl = shr64(v, vh, count - 1);
        sh = RH;
        sl |= shl64(f, fh, 65 - count);
        sh |= RH;
      }
    }
    s[CC_OP] = ((left ? CC_SHL : CC_SAR) << 2) | 3;
    s[CC_SRC] = sl;
    s[CC_SRC + 1] = sh;
    s[CC_DST] = rl;
    s[CC_DST + 1] = rh;
    RH = rh;
    return rl;
  }
  let r: number;
  let src: number;
  if (os === 4) {
    if (left) {
      r = (v << count) | (count === 0 ? 0 : f >>> (32 - count));
      src = count === 1 ? v : (v << (count - 1)) | (f >>> (33 - count));
    } else {
      r = (v >>> count) | (f << (32 - count));
      src = count === 1 ? v : (v >>> (count - 1)) | (f << (33 - count));
    }
  } else {
    // 16-bit: shift the 32-bit pair (dest:src); counts above 16 are undefined.
    const pair = left ? ((v & 0xffff) << 16) | (f & 0xffff) : ((f & 0xffff) << 16) | (v & 0xffff);
    if (left) {
      r = ((pair << count) | ((f & 0xffff) << (count > 16 ? count - 16 : 0) >>> 16)) >>> 16;
      src = (pair << (count - 1)) >>> 16;
    } else {
      r = (pair >>> count) & 0xffff;
      src = (pair >>> (count - 1)) & 0xffff;
    }
    r &= 0xffff;
  }
  s[CC_OP] = ((left ? CC_SHL : CC_SAR) << 2) | sz;
  s[CC_SRC] = src;
  s[CC_DST] = r | 0;
  RH = 0;
  return r | 0;
}

function bcd(s: Int32Array, mn: string): void {
  const f = getArithFlags(s);
  let al = s[0] & 0xff;
  let ah = (s[0] >> 8) & 0xff;
  let cf = f & S.F_CF;
  let af = f & S.F_AF;
  switch (mn) {
    case "daa": {
      const oldAl = al;
      const oldCf = cf;
      cf = 0;
      if ((al & 0xf) > 9 || af) { al = (al + 6) & 0xff; cf = oldCf || oldAl + 6 > 0xff ? 1 : 0; af = S.F_AF; } else af = 0;
      if (oldAl > 0x99 || oldCf) { al = (al + 0x60) & 0xff; cf = 1; }
      break;
    }
    case "das": {
      const oldAl = al;
      const oldCf = cf;
      cf = 0;
      if ((al & 0xf) > 9 || af) { al = (al - 6) & 0xff; cf = oldCf || oldAl < 6 ? 1 : 0; af = S.F_AF; } else af = 0;
      if (oldAl > 0x99 || oldCf) { al = (al - 0x60) & 0xff; cf = 1; }
      break;
    }
    case "aaa": // current processors add 0x106 to AX as a whole
      if ((al & 0xf) > 9 || af) {
        const ax = (((ah << 8) | al) + 0x106) & 0xffff;
        al = ax & 0xff;
        ah = ax >> 8;
        af = S.F_AF;
        cf = 1;
      } else { af = 0; cf = 0; }
      al &= 0xf;
      break;
    default: // aas: AX - 6, then AH - 1
      if ((al & 0xf) > 9 || af) {
        const ax = (((ah << 8) | al) - 6) & 0xffff;
        al = ax & 0xff;
        ah = ((ax >> 8) - 1) & 0xff;
        af = S.F_AF;
        cf = 1;
      } else { af = 0; cf = 0; }
      al &= 0xf;
      break;
  }
  s[0] = (s[0] & ~0xffff) | (ah << 8) | al;
  const zf = al === 0 ? S.F_ZF : 0;
  const sf = al & 0x80 ? S.F_SF : 0;
  setArithFlags(s, (f & S.F_OF) | cf | af | PARITY[al] | zf | sf);
}

// ------------------------------------------------------------------ string instructions

function compileString(cpu: Cpu, d: Insn, mn: string, size: number, len: number): Fn {
  const s = cpu.s;
  const as = d.asize;
  const rep = d.rep;
  const srcSeg = d.segOverride >= 0 ? d.segOverride : S.SEG_DS;
  const isRep = rep !== 0;
  const sz = SZ_OF[size];
  const cmpLike = mn === "cmps" || mn === "scas";
  const io = mn === "ins" || mn === "outs";
  // Index registers: 6 = rSI, 7 = rDI, 2 = rCX.
  const readIdx = (r: number): number => { if (as === 8) { EAH = s[r * 2 + 1]; return s[r * 2]; } EAH = 0; return as === 4 ? s[r * 2] : s[r * 2] & 0xffff; };
  const advance = (r: number, delta: number): void => {
    const w = r * 2;
    if (as === 8) { const t = (s[w] >>> 0) + delta; s[w + 1] = (s[w + 1] + (t > 0xffffffff ? 1 : t < 0 ? -1 : 0)) | 0; s[w] = t | 0; }
    else if (as === 4) { s[w] = (s[w] + delta) | 0; if (cpu.code64) s[w + 1] = 0; }
    else s[w] = (s[w] & ~0xffff) | ((s[w] + delta) & 0xffff);
  };
  const countZero = (): boolean => as === 8 ? (s[2] | s[3]) === 0 : as === 4 ? s[2] === 0 : (s[2] & 0xffff) === 0;
  const rd = (seg: number, lo: number, hi: number): number => {
    if (size === 1) return cpu.rd8(seg, lo, hi);
    if (size === 2) return cpu.rd16(seg, lo, hi);
    if (size === 4) return cpu.rd32(seg, lo, hi);
    const v = cpu.rd64(seg, lo, hi); RH = cpu.hi; return v;
  };
  const wr = (seg: number, lo: number, hi: number, v: number, vh: number): void => {
    if (size === 1) cpu.wr8(seg, lo, hi, v);
    else if (size === 2) cpu.wr16(seg, lo, hi, v);
    else if (size === 4) cpu.wr32(seg, lo, hi, v);
    else cpu.wr64(seg, lo, hi, v, vh);
  };
  const acc = regLoc(cpu, 0, size, false);
  const one = (): boolean => {
    // Returns false when a REPE/REPNE comparison ends the repetition.
    const delta = (s[FLAGS] & S.F_DF) !== 0 ? -size : size;
    switch (mn) {
      case "movs": {
        const sl = readIdx(6); const sh = EAH;
        const v = rd(srcSeg, sl, sh); const vh = RH;
        const dl = readIdx(7); const dh = EAH;
        wr(S.SEG_ES, dl, dh, v, vh);
        advance(6, delta); advance(7, delta);
        return true;
      }
      case "stos": {
        const v = acc.read(); const vh = RH;
        const dl = readIdx(7); const dh = EAH;
        wr(S.SEG_ES, dl, dh, v, vh);
        advance(7, delta);
        return true;
      }
      case "lods": {
        const sl = readIdx(6); const sh = EAH;
        const v = rd(srcSeg, sl, sh);
        acc.write(v, RH);
        advance(6, delta);
        return true;
      }
      case "cmps": {
        const dl = readIdx(7); const dh = EAH;
        const b = rd(S.SEG_ES, dl, dh); const bh = RH;
        const sl = readIdx(6); const sh = EAH;
        const a = rd(srcSeg, sl, sh); const ah = RH;
        if (size === 8) alu64(s, 7, a, ah, b, bh); else alu(s, 7, sz, a, b);
        advance(6, delta); advance(7, delta);
        return true;
      }
      case "scas": {
        const a = acc.read(); const ah = RH;
        const dl = readIdx(7); const dh = EAH;
        const b = rd(S.SEG_ES, dl, dh); const bh = RH;
        if (size === 8) alu64(s, 7, a, ah, b, bh); else alu(s, 7, sz, a, b);
        advance(7, delta);
        return true;
      }
      case "ins": {
        const port = s[4] & 0xffff;
        const dl = readIdx(7); const dh = EAH;
        cpu.probeWrite(S.SEG_ES, dl, dh, size);
        const v = cpu.io.in(port, size as 1 | 2 | 4);
        wr(S.SEG_ES, dl, dh, v, 0);
        advance(7, delta);
        return true;
      }
      default: { // outs
        const port = s[4] & 0xffff;
        const sl = readIdx(6); const sh = EAH;
        const v = rd(srcSeg, sl, sh);
        cpu.io.out(port, size as 1 | 2 | 4, size === 4 ? v >>> 0 : v);
        advance(6, delta);
        return true;
      }
    }
  };
  return () => {
    if (io) {
      if (ioDenied(cpu)) cpu.sys.checkIoPermission(s[4] & 0xffff, size);
      if (cpu.controls.interceptIo) cpu.exitBefore(EXIT_IO, (s[4] & 0xffff) | (size << 16) | (mn === "ins" ? 1 << 24 : 0) | (1 << 25), len);
      if (cpu.watchingIo && (!isRep || !countZero())) cpu.noteIoAccess(s[4] & 0xffff, size);
    }
    if (!isRep) {
      one();
      return io ? 2 : 0;
    }
    while (!countZero()) {
      one();
      advance(1, -1);
      if (cmpLike) {
        const zf = getZF(s);
        if (rep === 0xf3 ? zf === 0 : zf !== 0) break;
      }
    }
    return io ? 2 : 0;
  };
}
