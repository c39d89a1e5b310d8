/**
 * x87 transcendental instructions: F2XM1, FYL2X, FPTAN, FPATAN, FYL2XP1, FSINCOS, FSIN, FCOS.
 *
 * The functions are evaluated in double-double arithmetic (about 106 bits, JavaScript
 * doubles only, no BigInt) on the exact 64-bit significand of the operands, with the binary
 * exponent kept apart so that no operand range is lost, and the result is rounded once to
 * the 64-bit significand by softfloat.ts under the rounding control. That is well within the
 * "1 ulp of the host" the differential tester allows (the host's own results are not
 * correctly rounded). Argument reduction for FSIN/FCOS/FSINCOS/FPTAN uses pi/2 rounded to 66
 * bits, as the x87 does (see reduce()).
 */
import type { Cpu } from "../cpu.ts";
import * as SF from "./softfloat.ts";
import { F } from "./softfloat.ts";

export interface X87Ops {
  isEmpty(i: number): boolean;
  underflow(): boolean;
  overflow(): boolean;
  commit(flags: number, up: number): boolean;
  writeST(i: number, se: number, hi: number, lo: number): void;
  pop(): void;
  push(se: number, hi: number, lo: number): void;
  /** Pushes without the stack-overflow check (after a masked stack underflow). */
  pushRaw(se: number, hi: number, lo: number): void;
  stRaw(i: number): [number, number, number];
  setC2(v: boolean): void;
}

const IE = 1;
const DE = 2;
const ZE = 4;

// ------------------------------------------------------------------ double-double

// Results of dd operations: (RH, RL).
let RH = 0;
let RL = 0;

function twoSum(a: number, b: number): void {
  const s = a + b;
  const v = s - a;
  RL = a - (s - v) + (b - v);
  RH = s;
}
function quickTwoSum(a: number, b: number): void {
  const s = a + b;
  RL = b - (s - a);
  RH = s;
}
const SPLITTER = 134217729;
function twoProd(a: number, b: number): void {
  const p = a * b;
  const ca = SPLITTER * a;
  const ah = ca - (ca - a);
  const al = a - ah;
  const cb = SPLITTER * b;
  const bh = cb - (cb - b);
  const bl = b - bh;
  RL = ah * bh - p + ah * bl + al * bh + al * bl;
  RH = p;
}
function ddAdd(ah: number, al: number, bh: number, bl: number): void {
  twoSum(ah, bh);
  const sh = RH;
  let sl = RL;
  twoSum(al, bl);
  const th = RH;
  const tl = RL;
  sl += th;
  quickTwoSum(sh, sl);
  const uh = RH;
  const ul = RL + tl;
  quickTwoSum(uh, ul);
}
function ddMul(ah: number, al: number, bh: number, bl: number): void {
  twoProd(ah, bh);
  const ph = RH;
  const pl = RL + (ah * bl + al * bh);
  quickTwoSum(ph, pl);
}
function ddDiv(ah: number, al: number, bh: number, bl: number): void {
  const q1 = ah / bh;
  ddMul(q1, 0, bh, bl);
  ddAdd(ah, al, -RH, -RL);
  const rh = RH, rl = RL;
  const q2 = rh / bh;
  ddMul(q2, 0, bh, bl);
  ddAdd(rh, rl, -RH, -RL);
  const q3 = RH / bh;
  quickTwoSum(q1, q2);
  ddAdd(RH, RL, q3, 0);
}
function ddSqrt(ah: number, al: number): void {
  if (ah <= 0) {
    RH = 0;
    RL = 0;
    return;
  }
  const x = 1 / Math.sqrt(ah);
  const y = ah * x;
  twoProd(y, y);
  ddAdd(ah, al, -RH, -RL);
  const d = RH * (x * 0.5);
  twoSum(y, d);
}

// Constants as double-doubles.
const PI_H = Math.PI;
const PI_L = 1.2246467991473532e-16;
const PIO2_H = 1.5707963267948966;
const PIO2_L = 6.123233995736766e-17;
const LN2_H = Math.LN2;
const LN2_L = 2.3190468138462996e-17;

// ------------------------------------------------------------------ conversions

/** An extended significand (normalized) as a dd in [1, 2). */

function sigDD(hi: number, lo: number): void {
  // hi:lo is normalized (bit 63 set): value = hi:lo / 2^63.
  const h = hi >>> 0;
  const l = lo >>> 0;
  // Top 53 bits exactly in one double, the remaining 11 bits in another.
  const top = h * 2 ** -31 + (l >>> 11) * 2 ** -63 * 2 ** 11; // bits 63..11
  const bottom = (l & 0x7ff) * 2 ** -63;
  quickTwoSum(top, bottom);
}

/** Rounds (-1)^sign (mh + ml) x 2^e into F (extended) under ctl: one rounding by softfloat. */
function ddToExt(sign: number, mh: number, ml: number, e: number, ctl: number): void {
  if (mh === 0 && ml === 0) {
    F.se = sign << 15;
    F.hi = 0;
    F.lo = 0;
    F.up = 0;
    return;
  }
  setFromDouble(0, sign ? -mh : mh, e);
  setFromDouble(1, sign ? -ml : ml, e);
  SF.add(0, SF.FMT_EXT, ctl);
  // The function value is never exactly the double-double: a denormal result is inexact,
  // hence an underflow, even when the rounding above happened to be exact.
  if ((F.se & 0x7fff) === 0 && (F.hi | F.lo) !== 0) F.flags |= SF.FE_UNDERFLOW | SF.FE_INEXACT;
}

const DV = new DataView(new ArrayBuffer(8));
/** Loads the double x (times 2^e) as softfloat operand A or B. */
function setFromDouble(which: number, x: number, e: number): void {
  if (x === 0) {
    if (which === 0) SF.setA(0, 0, 0, 0, SF.C_ZERO);
    else {
      SF.swapAB();
      SF.setA(0, 0, 0, 0, SF.C_ZERO);
      SF.swapAB();
    }
    return;
  }
  DV.setFloat64(0, x, true);
  const hiW = DV.getUint32(4, true);
  const loW = DV.getUint32(0, true);
  const sign = hiW >>> 31;
  let ex = (hiW >>> 20) & 0x7ff;
  let sh = ((hiW & 0xfffff) << 11) | (loW >>> 21);
  let sl = loW << 11;
  if (ex === 0) {
    // Denormal double: normalize.
    const n = sh !== 0 ? Math.clz32(sh) : 32 + Math.clz32(sl);
    if (n >= 32) {
      sh = sl << (n - 32);
      sl = 0;
    } else {
      sh = (sh << n) | (sl >>> (32 - n));
      sl <<= n;
    }
    ex = 1 - n;
  } else sh |= 0x80000000;
  // value = sig x 2^(ex - 1023 - 63); as extended biased exponent (unbounded):
  const be = ex - 1023 + 16383 + e;
  if (which === 0) SF.setA(sign, be, sh, sl, SF.C_NORMAL);
  else setB(sign, be, sh, sl);
}

function setB(sign: number, exp: number, hi: number, lo: number): void {
  // softfloat has no setB: unpack through swap.
  SF.swapAB();
  SF.setA(sign, exp, hi, lo, SF.C_NORMAL);
  SF.swapAB();
}

// ------------------------------------------------------------------ kernels (dd in, dd out)

/** sin and cos of r (|r| <= pi/4 as dd): results in SINH/SINL, COSH/COSL. */
let SINH = 0, SINL = 0, COSH = 0, COSL = 0;
function sinCosKernel(rh: number, rl: number): void {
  ddMul(rh, rl, rh, rl);
  const x2h = RH, x2l = RL;
  // sin = r * (1 - x2/3! + x2^2/5! - ...), cos = 1 - x2/2! + x2^2/4! - ...
  let sh = 1, sl = 0; // running sin series (divided by r)
  let ch = 1, cl = 0;
  let th = 1, tl = 0; // x2^k / (2k)!  / (2k+1)! terms
  let uh = 1, ul = 0;
  for (let k = 1; k <= 16; k++) {
    // cos term: t *= x2 / ((2k-1)(2k))
    ddMul(th, tl, x2h, x2l);
    ddDiv(RH, RL, (2 * k - 1) * (2 * k), 0);
    th = RH; tl = RL;
    if (k & 1) ddAdd(ch, cl, -th, -tl);
    else ddAdd(ch, cl, th, tl);
    ch = RH; cl = RL;
    // sin term: u *= x2 / ((2k)(2k+1))
    ddMul(uh, ul, x2h, x2l);
    ddDiv(RH, RL, 2 * k * (2 * k + 1), 0);
    uh = RH; ul = RL;
    if (k & 1) ddAdd(sh, sl, -uh, -ul);
    else ddAdd(sh, sl, uh, ul);
    sh = RH; sl = RL;
    if (Math.abs(th) < 1e-36 && Math.abs(uh) < 1e-36) break;
  }
  ddMul(sh, sl, rh, rl);
  SINH = RH; SINL = RL;
  COSH = ch; COSL = cl;
}

/** atan of t (|t| <= 1, dd) into RH/RL. */
function atanKernel(th: number, tl: number): void {
  // Halve the angle twice: t' = t / (1 + sqrt(1 + t^2)).
  let xh = th, xl = tl;
  for (let k = 0; k < 3; k++) {
    ddMul(xh, xl, xh, xl);
    ddAdd(RH, RL, 1, 0);
    ddSqrt(RH, RL);
    ddAdd(RH, RL, 1, 0);
    ddDiv(xh, xl, RH, RL);
    xh = RH; xl = RL;
  }
  // Series: x - x^3/3 + x^5/5 ...
  ddMul(xh, xl, xh, xl);
  const x2h = RH, x2l = RL;
  let sh = xh, sl = xl;
  let ph = xh, pl = xl;
  for (let n = 1; n <= 40; n++) {
    ddMul(ph, pl, x2h, x2l);
    ph = RH; pl = RL;
    ddDiv(ph, pl, 2 * n + 1, 0);
    if (n & 1) ddAdd(sh, sl, -RH, -RL);
    else ddAdd(sh, sl, RH, RL);
    sh = RH; sl = RL;
    if (Math.abs(ph) < 1e-36) break;
  }
  // Undo the halvings: x 8.
  RH = sh * 8;
  RL = sl * 8;
}

/** ln(m) for a dd m near 1 (m in [0.7, 1.42]) via 2 atanh((m-1)/(m+1)), into RH/RL. */
function lnKernel(mh: number, ml: number): void {
  ddAdd(mh, ml, -1, 0);
  const nh = RH, nl = RL;
  ddAdd(mh, ml, 1, 0);
  ddDiv(nh, nl, RH, RL);
  lnAtanh(RH, RL);
}
/** 2 atanh(t) into RH/RL. */
function lnAtanh(th: number, tl: number): void {
  ddMul(th, tl, th, tl);
  const t2h = RH, t2l = RL;
  let sh = th, sl = tl;
  let ph = th, pl = tl;
  for (let n = 1; n <= 60; n++) {
    ddMul(ph, pl, t2h, t2l);
    ph = RH; pl = RL;
    ddDiv(ph, pl, 2 * n + 1, 0);
    ddAdd(sh, sl, RH, RL);
    sh = RH; sl = RL;
    if (Math.abs(ph) < 1e-36 * Math.abs(sh) || ph === 0) break;
  }
  RH = sh * 2;
  RL = sl * 2;
}

/** e^y - 1 for a dd |y| <= 0.75, into RH/RL. */
function expm1Kernel(yh: number, yl: number): void {
  let sh = yh, sl = yl;
  let th = yh, tl = yl;
  for (let n = 2; n <= 40; n++) {
    ddMul(th, tl, yh, yl);
    ddDiv(RH, RL, n, 0);
    th = RH; tl = RL;
    ddAdd(sh, sl, th, tl);
    sh = RH; sl = RL;
    if (Math.abs(th) < 1e-36 * Math.abs(sh) || th === 0) break;
  }
  RH = sh;
  RL = sl;
}

// ------------------------------------------------------------------ instructions

function ctlOf(cw: number): number {
  let c = ((cw >> 10) & 3) | (3 << 2) | SF.CTL_X87;
  if ((cw & 0x10) === 0) c |= SF.CTL_UE_UNMASKED;
  if ((cw & 0x08) === 0) c |= SF.CTL_OE_UNMASKED;
  return c;
}

const INDEF: [number, number, number] = [0xffff, 0xc0000000 | 0, 0];

export function transcendental(cpu: Cpu, s: Int32Array, modrm: number, x: X87Ops): void {
  void cpu;
  const cw = s[256] & 0xffff;
  const ctl = ctlOf(cw);
  switch (modrm) {
    case 0xfe: case 0xff: case 0xfb: case 0xf2:
      trig(modrm, x, cw, ctl);
      return;
    case 0xf0:
      f2xm1(x, cw, ctl);
      return;
    case 0xf1: case 0xf9:
      fyl2x(modrm === 0xf9, x, cw, ctl);
      return;
    case 0xf3:
      fpatan(x, cw, ctl);
  }
}

/** Classifies ST(i) into the softfloat A operand; returns its class (flags DE in unpackFlags). */
function loadA(x: X87Ops, i: number): number {
  const [se, hi, lo] = x.stRaw(i);
  return SF.unpackExt(0, se, hi, lo);
}

/**
 * Reduces the A operand (finite, |x| < 2^63) modulo pi/2 the way the x87 does: with pi/2
 * rounded to 66 bits (0x3243F6A8885A308D3 x 2^-65), which the host's results show (the
 * error grows with |x|, exactly as that constant predicts). The remainder is exact
 * (integer arithmetic: BigInt, only on this path); quadrant in QUAD, remainder dd in RH/RL.
 */
let QUAD = 0;
const PIO2_66 = 0x3243f6a8885a308d3n;
function reduce(): void {
  sigDD(SF.Ah, SF.Al);
  const E = SF.Ae - 16383;
  let xh = RH * 2 ** E;
  let xl = RL * 2 ** E;
  if (SF.As) {
    xh = -xh;
    xl = -xl;
  }
  if (Math.abs(xh) < 0.78) {
    QUAD = 0;
    RH = xh;
    RL = xl;
    return;
  }
  // |x| x 2^65 = M x 2^(E + 2) with M the 64-bit significand (E >= -1 here).
  const M = (BigInt(SF.Ah >>> 0) << 32n) | BigInt(SF.Al >>> 0);
  const X = M << BigInt(E + 2);
  const k = (X + (PIO2_66 >> 1n)) / PIO2_66;
  const r = X - k * PIO2_66; // |r| <= pio2/2 (scaled by 2^65)
  let q = Number(k & 3n);
  const rh = Number(r);
  const rl = Number(r - BigInt(rh));
  let h = rh * 2 ** -65;
  let l = rl * 2 ** -65;
  if (SF.As) {
    h = -h;
    l = -l;
    q = (4 - q) & 3;
  }
  QUAD = q;
  RH = h;
  RL = l;
}

function trig(op: number, x: X87Ops, cw: number, ctl: number): void {
  // op: FE sin, FF cos, FB sincos, F2 tan. C2 is cleared unless the operand is out of range.
  x.setC2(false);
  if (x.isEmpty(0)) {
    if (x.underflow()) {
      x.writeST(0, ...INDEF);
      if (op === 0xfb || op === 0xf2) x.pushRaw(...INDEF);
    }
    return;
  }
  const pushes = op === 0xfb || op === 0xf2;
  if (pushes && !x.isEmpty(7)) {
    if (x.overflow()) {
      x.writeST(0, ...INDEF);
      x.push(...INDEF);
    }
    return;
  }
  SF.clearUnpackFlags();
  F.flags = 0;
  const c = loadA(x, 0);
  const [se0, hi0, lo0] = x.stRaw(0);
  if (c === SF.C_QNAN || c === SF.C_SNAN || c === SF.C_UNSUPPORTED || c === SF.C_INF) {
    let r: [number, number, number];
    let flags = 0;
    if (c === SF.C_QNAN) r = [se0, hi0, lo0];
    else if (c === SF.C_SNAN) {
      r = [se0, hi0 | 0x40000000, lo0];
      flags = IE;
    } else {
      r = INDEF;
      flags = IE;
    }
    x.setC2(false);
    if (!x.commit(flags, 0)) return;
    x.writeST(0, ...r);
    if (pushes) x.push(...r);
    return;
  }
  if (c === SF.C_NORMAL && SF.Ae - 16383 >= 63) {
    // Out of range: C2 = 1, operand unchanged.
    x.setC2(true);
    return;
  }
  x.setC2(false);
  const den = SF.unpackFlags;
  if (den !== 0 && (cw & DE) === 0) {
    x.commit(DE, 0);
    return;
  }
  const sign = SF.As;
  let sH = 0, sL = 0, cH = 1, cL = 0;
  const zero = c === SF.C_ZERO;
  const tiny = !zero && SF.Ae - 16383 < -80;
  if (!zero && !tiny) {
    reduce();
    sinCosKernel(RH, RL);
    const q = QUAD;
    const s0h = SINH, s0l = SINL, c0h = COSH, c0l = COSL;
    switch (q) {
      case 0: sH = s0h; sL = s0l; cH = c0h; cL = c0l; break;
      case 1: sH = c0h; sL = c0l; cH = -s0h; cL = -s0l; break;
      case 2: sH = -s0h; sL = -s0l; cH = -c0h; cL = -c0l; break;
      default: sH = -c0h; sL = -c0l; cH = s0h; cL = s0l; break;
    }
  }
  // Results: sin, cos, tan.
  let flags = den;
  const out: [number, number, number][] = [];
  /** Rounds the dd result h + l (or, for tiny |x|, x itself nudged by `nudge`). */
  const emit = (h: number, l: number, exact0: boolean, nudge: number): void => {
    if (exact0) {
      out.push([se0 & 0x8000, 0, 0]);
      return;
    }
    F.flags = 0;
    if (nudge !== 0) {
      // Tiny |x|: sin x and tan x are x -/+ far less than an ulp: round x's significand with
      // a sticky tail just below (nudge < 0) or above (nudge > 0) it.
      SF.unpackExt(0, se0, hi0, lo0);
      let hi = SF.Ah, lo = SF.Al, tail = 1;
      if (nudge < 0) {
        tail = -1;
        if (lo === 0) hi = (hi - 1) | 0;
        lo = (lo - 1) | 0;
        if (hi >= 0) {
          // 1.000..0 - tiny: renormalize (the value is just below a power of two)
          hi = (hi << 1) | (lo >>> 31);
          lo = (lo << 1) | 1;
          SF.roundPack(SF.As, SF.Ae - 1, hi, lo, tail, SF.FMT_EXT, ctl);
        } else SF.roundPack(SF.As, SF.Ae, hi, lo, tail, SF.FMT_EXT, ctl);
      } else SF.roundPack(SF.As, SF.Ae, hi, lo, tail, SF.FMT_EXT, ctl);
    } else {
      const neg = h < 0 ? 1 : 0;
      ddToExt(neg, Math.abs(h), neg ? -l : l, 0, ctl);
    }
    flags |= F.flags | 0x20;
    out.push([F.se, F.hi, F.lo]);
  };
  let up = 0;
  if (op === 0xfe || op === 0xfb) {
    emit(sH, sL, zero, tiny ? -1 : 0);
    up = F.up;
  }
  if (op === 0xff || op === 0xfb) {
    if (zero) out.push([0x3fff, 0x80000000 | 0, 0]);
    else if (tiny) {
      // cos x = 1 - tiny
      F.flags = 0;
      SF.roundPack(0, 16383 - 1, -1, -1, -1, SF.FMT_EXT, ctl);
      flags |= F.flags | 0x20;
      out.push([F.se, F.hi, F.lo]);
    } else emit(cH, cL, false, 0);
    if (op === 0xff) up = F.up;
  }
  if (op === 0xf2) {
    if (!zero && !tiny) {
      ddDiv(sH, sL, cH, cL);
      emit(RH, RL, false, 0);
    } else emit(0, 0, zero, tiny ? 1 : 0);
    up = F.up;
  }
  void sign;
  if (!x.commit(flags, up)) return;
  if (op === 0xfb) {
    x.writeST(0, ...out[0]!);
    x.push(...out[1]!);
  } else if (op === 0xf2) {
    x.writeST(0, ...out[0]!);
    x.push(0x3fff, 0x80000000 | 0, 0);
  } else x.writeST(0, ...out[0]!);
}

function f2xm1(x: X87Ops, cw: number, ctl: number): void {
  if (x.isEmpty(0)) {
    if (x.underflow()) x.writeST(0, ...INDEF);
    return;
  }
  SF.clearUnpackFlags();
  F.flags = 0;
  const c = loadA(x, 0);
  const [se0, hi0, lo0] = x.stRaw(0);
  let r: [number, number, number];
  let flags = 0;
  let up = 0;
  if (c === SF.C_QNAN) r = [se0, hi0, lo0];
  else if (c === SF.C_SNAN) {
    r = [se0, hi0 | 0x40000000, lo0];
    flags = IE;
  } else if (c === SF.C_UNSUPPORTED) {
    r = INDEF;
    flags = IE;
  } else if (c === SF.C_ZERO) r = [se0, 0, 0];
  else if (c === SF.C_INF) r = SF.As ? [0xbfff, 0x80000000 | 0, 0] : [se0, hi0, lo0];
  else {
    const den = SF.unpackFlags;
    if (den !== 0 && (cw & DE) === 0) {
      x.commit(DE, 0);
      return;
    }
    flags = den;
    const E = SF.Ae - 16383;
    const sign = SF.As;
    sigDD(SF.Ah, SF.Al);
    let mh = RH, ml = RL;
    if (E < -900) {
      // 2^x - 1 = x ln 2 (to far below an ulp)
      ddMul(mh, ml, LN2_H, LN2_L);
      F.flags = 0;
      ddToExt(sign, RH, RL, E, ctl);
    } else {
      mh *= 2 ** E;
      ml *= 2 ** E;
      if (sign) {
        mh = -mh;
        ml = -ml;
      }
      // y = x ln 2; e^y - 1 (|x| <= 1 is the defined range; larger |x| still computes)
      ddMul(mh, ml, LN2_H, LN2_L);
      let yh = RH, yl = RL;
      let k = 0;
      while (Math.abs(yh) > 0.75) {
        yh /= 2;
        yl /= 2;
        k++;
      }
      expm1Kernel(yh, yl);
      // (e^y - 1) doubled k times: e^(2y) - 1 = (e^y - 1)(e^y + 1)
      for (let i = 0; i < k; i++) {
        const eh = RH, el = RL;
        ddAdd(eh, el, 2, 0);
        ddMul(eh, el, RH, RL);
      }
      const neg = RH < 0 ? 1 : 0;
      F.flags = 0;
      ddToExt(neg, Math.abs(RH), neg ? -RL : RL, 0, ctl);
    }
    flags |= F.flags | 0x20;
    up = F.up;
    r = [F.se, F.hi, F.lo];
  }
  if (!x.commit(flags, up)) return;
  x.writeST(0, ...r);
}

function fyl2x(p1: boolean, x: X87Ops, cw: number, ctl: number): void {
  // ST1 = ST1 * log2(ST0) (p1: log2(ST0 + 1)), pop.
  if (x.isEmpty(0) || x.isEmpty(1)) {
    if (x.underflow()) {
      x.writeST(1, ...INDEF);
      x.pop();
    }
    return;
  }
  SF.clearUnpackFlags();
  F.flags = 0;
  const [xs, xhi, xlo] = x.stRaw(0);
  const [ys, yhi, ylo] = x.stRaw(1);
  const cx = SF.unpackExt(0, xs, xhi, xlo);
  const xSign = SF.As, xE = SF.Ae, xH = SF.Ah, xL = SF.Al;
  const cy = SF.unpackExt(1, ys, yhi, ylo);
  const ySign = SF.Bs, yE = SF.Be, yH = SF.Bh, yL = SF.Bl;
  const den = SF.unpackFlags;
  let r: [number, number, number] | null = null;
  let flags = 0;
  let up = 0;
  const nan = cx >= SF.C_QNAN || cy >= SF.C_QNAN;
  if (nan) {
    if (cx === SF.C_UNSUPPORTED || cy === SF.C_UNSUPPORTED) {
      r = INDEF;
      flags = IE;
    } else {
      // Operand order for the NaN rules: A = ST0, B = ST1.
      F.flags = 0;
      SF.propagateNaN2(SF.FMT_EXT);
      flags = F.flags;
      r = [F.se, F.hi, F.lo];
    }
  } else {
    // log2 argument class: x (FYL2X) or 1 + x (FYL2XP1).
    const xNeg = xSign === 1 && cx !== SF.C_ZERO;
    const invalidArg = p1 ? false : xNeg;
    if (invalidArg) {
      r = INDEF;
      flags = IE;
    } else if (den !== 0 && (cw & DE) === 0 && !(cx === SF.C_ZERO && !p1)) {
      x.commit(DE, 0);
      return;
    } else {
      // log2(0) is a zero divide: no DE then (host behaviour).
      flags = cx === SF.C_ZERO && !p1 ? 0 : den;
      r = log2Times(p1, cx, xSign, xE, xH, xL, cy, ySign, yE, yH, yL, ctl);
      flags |= LFLAGS;
      up = F.up;
      if (r === null) {
        r = INDEF;
        flags = IE;
      }
    }
  }
  if (!x.commit(flags, up)) return;
  x.writeST(1, ...r);
  x.pop();
}

let LFLAGS = 0;
/** y * log2(x) or y * log2(1 + x) for non-NaN operands; null for invalid combinations. */
function log2Times(p1: boolean, cx: number, xSign: number, xE: number, xH: number, xL: number, cy: number, ySign: number, yE: number, yH: number, yL: number, ctl: number): [number, number, number] | null {
  LFLAGS = 0;
  F.up = 0;
  // L = log2(argument) as dd with an exponent scale LE (L * 2^LE), sign included in the dd.
  let lh: number, ll: number, le = 0;
  let lZero = false;
  let lInf = 0; // +1 / -1 for +-infinity
  if (!p1) {
    if (cx === SF.C_ZERO) lInf = -1;
    else if (cx === SF.C_INF) lInf = 1;
  } else if (cx === SF.C_INF) {
    if (xSign) return null;
    lInf = 1;
  }
  if (lInf === 0) {
    if (p1 && cx === SF.C_ZERO) {
      lZero = true;
      lh = 0;
      ll = 0;
    } else if (!p1) {
      // x = m 2^E with m in [1, 2); use m' in [0.707, 1.414).
      sigDD(xH, xL);
      let mh = RH, ml = RL;
      let E = xE - 16383;
      if (mh > Math.SQRT2) {
        mh /= 2;
        ml /= 2;
        E++;
      }
      lnKernel(mh, ml);
      // log2 = E + ln(m)/ln2
      ddDiv(RH, RL, LN2_H, LN2_L);
      ddAdd(E, 0, RH, RL);
      lh = RH;
      ll = RL;
      lZero = lh === 0 && ll === 0;
    } else {
      // log2(1 + x) = 2 atanh(x / (2 + x)) / ln 2, precise for tiny x.
      sigDD(xH, xL);
      const E = xE - 16383;
      if (E < -900) {
        // log2(1 + x) = x / ln2
        ddDiv(RH, RL, LN2_H, LN2_L);
        lh = xSign ? -RH : RH;
        ll = xSign ? -RL : RL;
        le = E;
      } else {
        let th = RH * 2 ** E, tl = RL * 2 ** E;
        if (xSign) {
          th = -th;
          tl = -tl;
        }
        if (th <= -1) return null;
        ddAdd(th, tl, 2, 0);
        ddDiv(th, tl, RH, RL);
        lnAtanh(RH, RL);
        ddDiv(RH, RL, LN2_H, LN2_L);
        lh = RH;
        ll = RL;
      }
    }
  }
  // Multiply by y.
  if (cy === SF.C_INF) {
    if (lZero || (lInf === 0 && lh! === 0)) return null; // inf * 0
    const lNeg = lInf !== 0 ? lInf < 0 : lh! < 0;
    return [((ySign ^ (lNeg ? 1 : 0)) << 15) | 0x7fff, 0x80000000 | 0, 0];
  }
  if (lInf !== 0) {
    if (cy === SF.C_ZERO) return null; // 0 * inf
    if (lInf < 0 && !p1) LFLAGS |= ZE;
    return [((ySign ^ (lInf < 0 ? 1 : 0)) << 15) | 0x7fff, 0x80000000 | 0, 0];
  }
  // A zero logarithm takes the sign of x for FYL2XP1 (log2(1 + -0) = -0), else +0.
  if (cy === SF.C_ZERO || lZero) return [((ySign ^ (lZero && p1 ? xSign : lh! < 0 ? 1 : 0)) << 15), 0, 0];
  sigDD(yH, yL);
  const yEx = yE - 16383;
  ddMul(RH, RL, lh!, ll!);
  const neg = (RH < 0 ? 1 : 0) ^ ySign;
  F.flags = 0;
  ddToExt(neg, Math.abs(RH), RH < 0 ? -RL : RL, yEx + le, ctl);
  LFLAGS |= F.flags | 0x20;
  return [F.se, F.hi, F.lo];
}

function fpatan(x: X87Ops, cw: number, ctl: number): void {
  // ST1 = atan2(ST1, ST0), pop.
  if (x.isEmpty(0) || x.isEmpty(1)) {
    if (x.underflow()) {
      x.writeST(1, ...INDEF);
      x.pop();
    }
    return;
  }
  SF.clearUnpackFlags();
  F.flags = 0;
  const [xs, xhi, xlo] = x.stRaw(0);
  const [ys, yhi, ylo] = x.stRaw(1);
  const cx = SF.unpackExt(0, xs, xhi, xlo);
  const xSign = SF.As, xE = SF.Ae, xH = SF.Ah, xL = SF.Al;
  const cy = SF.unpackExt(1, ys, yhi, ylo);
  const ySign = SF.Bs, yE = SF.Be, yH = SF.Bh, yL = SF.Bl;
  const den = SF.unpackFlags;
  let r: [number, number, number];
  let flags = 0;
  let up = 0;
  if (cx >= SF.C_QNAN || cy >= SF.C_QNAN) {
    if (cx === SF.C_UNSUPPORTED || cy === SF.C_UNSUPPORTED) {
      r = INDEF;
      flags = IE;
    } else {
      F.flags = 0;
      SF.propagateNaN2(SF.FMT_EXT);
      flags = F.flags;
      r = [F.se, F.hi, F.lo];
    }
  } else {
    if (den !== 0 && (cw & DE) === 0) {
      x.commit(DE, 0);
      return;
    }
    flags = den;
    // Angle as a dd (with sign) — special cases by class.
    let ah: number, al: number;
    let exact0 = false;
    if (cy === SF.C_ZERO) {
      if (xSign) {
        ah = PI_H;
        al = PI_L;
      } else {
        exact0 = true;
        ah = 0;
        al = 0;
      }
    } else if (cx === SF.C_ZERO) {
      ah = PIO2_H;
      al = PIO2_L;
    } else if (cy === SF.C_INF) {
      if (cx === SF.C_INF) {
        if (xSign) {
          ah = 3 * PI_H / 4;
          al = 3 * PI_L / 4;
        } else {
          ah = PI_H / 4;
          al = PI_L / 4;
        }
      } else {
        ah = PIO2_H;
        al = PIO2_L;
      }
    } else if (cx === SF.C_INF) {
      if (xSign) {
        ah = PI_H;
        al = PI_L;
      } else {
        exact0 = true;
        ah = 0;
        al = 0;
      }
    } else {
      // Both finite nonzero: t = |y| / |x| with exponents apart.
      sigDD(yH, yL);
      const ymh = RH, yml = RL;
      sigDD(xH, xL);
      const d = (yE - 16383) - (xE - 16383);
      ddDiv(ymh, yml, RH, RL);
      let th = RH, tl = RL;
      if (d < -900) {
        // Angle = |y|/|x| (tiny), or pi - tiny for x < 0. atan(t) = t - t^3/3 lies just
        // below t: nudge the quotient down by far less than an ulp.
        if (!xSign) {
          F.flags = 0;
          ddToExt(ySign, th, tl - th * 2 ** -120, d, ctl);
          flags |= F.flags | 0x20;
          up = F.up;
          if (!x.commit(flags, up)) return;
          x.writeST(1, F.se, F.hi, F.lo);
          x.pop();
          return;
        }
        ah = PI_H;
        al = PI_L;
      } else if (d > 900) {
        ah = PIO2_H;
        al = PIO2_L;
        if (xSign) {
          // pi/2 + tiny
        }
      } else {
        th *= 2 ** d;
        tl *= 2 ** d;
        let base = 0; // 0: atan(t); 1: pi/2 - atan(1/t)
        if (th > 1) {
          ddDiv(1, 0, th, tl);
          th = RH;
          tl = RL;
          base = 1;
        }
        atanKernel(th, tl);
        ah = RH;
        al = RL;
        if (base) {
          ddAdd(PIO2_H, PIO2_L, -ah, -al);
          ah = RH;
          al = RL;
        }
        if (xSign) {
          ddAdd(PI_H, PI_L, -ah, -al);
          ah = RH;
          al = RL;
        }
      }
    }
    if (exact0) r = [ySign << 15, 0, 0];
    else {
      F.flags = 0;
      ddToExt(ySign, ah, al, 0, ctl);
      flags |= F.flags | 0x20;
      up = F.up;
      r = [F.se, F.hi, F.lo];
    }
  }
  if (!x.commit(flags, up)) return;
  x.writeST(1, ...r);
  x.pop();
}
