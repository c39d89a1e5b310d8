/**
 * Integer soft-float for the x87 and SSE units: correctly rounded add, subtract, multiply,
 * divide, square root, remainder, round-to-integer and the conversions, for the 80-bit
 * extended format (with precision control 24/53/64) and for IEEE single and double, in all
 * four rounding modes, with the exception flags the x86 reports.
 *
 * Representation (no BigInt, no allocation):
 * - A 64-bit significand is two uint32 words, hi and lo. Inside an operation a value is
 *   (sign, exp, hi, lo) with value = (hi:lo) x 2^(exp - 16383 - 63): `exp` is an extended-
 *   format biased exponent, but unbounded (an int), for every format; finite nonzero values
 *   are normalized (bit 63 set). Results carry a third word `x` below lo (the next 32 bits,
 *   with every further nonzero bit ORed into its lowest bit: a sticky bit).
 * - Operands are unpacked into the module variables A* and B* (unpackExt/unpackF64/unpackF32
 *   return their class); results go to the exported object F: F.se/F.hi/F.lo for extended,
 *   F.hi/F.lo (the IEEE bit pattern) for double, F.lo for single. F.flags collects the
 *   exception flags of the operation (bit layout of both the x87 status word and MXCSR:
 *   IE DE ZE OE UE PE = bits 0..5) and F.up is the x87 C1 "rounded up" bit.
 *
 * The control word `ctl` of an operation: bits 0-1 rounding control (0 nearest, 1 down,
 * 2 up, 3 toward zero), bits 2-3 x87 precision control (0: 24, 2: 53, 3: 64 bits), and the
 * CTL_* bits below. Unmasked overflow/underflow on the x87 deliver the result with its
 * exponent wrapped by 24576 (CTL_X87_WRAP_OE/UE); SSE callers look at F.flags and raise #XM.
 */

export const FE_INVALID = 1;
export const FE_DENORMAL = 2;
export const FE_DIVZERO = 4;
export const FE_OVERFLOW = 8;
export const FE_UNDERFLOW = 16;
export const FE_INEXACT = 32;

export const CTL_UE_UNMASKED = 1 << 4;
export const CTL_OE_UNMASKED = 1 << 5;
export const CTL_FTZ = 1 << 6;
export const CTL_DAZ = 1 << 7;
/** x87: unmasked overflow/underflow wrap the exponent (else the SSE behaviour: flag only). */
export const CTL_X87 = 1 << 8;
/** Tininess is detected before rounding (else after rounding). */
export const CTL_TINY_BEFORE = 1 << 9;

export const FMT_EXT = 0;
export const FMT_F64 = 1;
export const FMT_F32 = 2;

/** Operand classes. */
export const C_ZERO = 0;
export const C_NORMAL = 1; // finite nonzero (denormals normalized, DE noted in the unpack flags)
export const C_INF = 2;
export const C_QNAN = 3;
export const C_SNAN = 4;
export const C_UNSUPPORTED = 5; // x87 unnormals, pseudo-NaN/infinity

const EMIN = [1, 16383 - 1022, 16383 - 126];
const EMAX = [0x7ffe, 16383 + 1023, 16383 + 127];
const WRAP = 24576;

/** Results. */
export const F = { se: 0, hi: 0, lo: 0, flags: 0, up: 0 };

// Unpacked operands (see unpack*).
export let As = 0;
export let Ae = 0;
export let Ah = 0;
export let Al = 0;
export let Ac = 0;
export let Bs = 0;
export let Be = 0;
export let Bh = 0;
export let Bl = 0;
export let Bc = 0;
/** Flags raised while unpacking (DE for denormal operands). */
export let unpackFlags = 0;
/** The raw operand words, for NaN propagation. */
let Araw0 = 0;
let Araw1 = 0;
let Araw2 = 0;
let Braw0 = 0;
let Braw1 = 0;
let Braw2 = 0;

// 96-bit temporaries.
let th = 0;
let tl = 0;
let tx = 0;

// ------------------------------------------------------------------ unpacking

/** Unpacks an extended value into the A (which=0) or B (which=1) operand; returns its class. */
export function unpackExt(which: number, se: number, hi: number, lo: number): number {
  const sign = (se >>> 15) & 1;
  let e = se & 0x7fff;
  let c: number;
  let h = hi | 0;
  let l = lo | 0;
  if (e === 0) {
    if ((h | l) === 0) c = C_ZERO;
    else {
      // Denormal (or pseudo-denormal): value = sig x 2^(1 - 16383 - 63).
      e = 1;
      const n = h !== 0 ? Math.clz32(h) : 32 + Math.clz32(l);
      if (n > 0) {
        if (n >= 32) {
          h = l << (n - 32);
          l = 0;
        } else {
          h = (h << n) | (l >>> (32 - n));
          l <<= n;
        }
        e -= n;
      }
      unpackFlags |= FE_DENORMAL;
      c = C_NORMAL;
    }
  } else if (e === 0x7fff) {
    if (h >= 0) c = C_UNSUPPORTED;
    else if (((h & 0x7fffffff) | l) === 0) c = C_INF;
    else c = (h & 0x40000000) !== 0 ? C_QNAN : C_SNAN;
  } else c = h < 0 ? C_NORMAL : C_UNSUPPORTED;
  if (which === 0) {
    As = sign; Ae = e; Ah = h; Al = l; Ac = c; Araw0 = se & 0xffff; Araw1 = hi | 0; Araw2 = lo | 0;
  } else {
    Bs = sign; Be = e; Bh = h; Bl = l; Bc = c; Braw0 = se & 0xffff; Braw1 = hi | 0; Braw2 = lo | 0;
  }
  return c;
}

/** Unpacks an IEEE double (hi, lo words) into A or B; DAZ treats denormals as zero. */
export function unpackF64(which: number, hi: number, lo: number, daz: boolean): number {
  const sign = hi >>> 31;
  let e = (hi >>> 20) & 0x7ff;
  let h = ((hi & 0xfffff) << 11) | (lo >>> 21);
  let l = lo << 11;
  let c: number;
  if (e === 0) {
    if ((h | l) === 0 || daz) {
      c = C_ZERO;
      h = 0;
      l = 0;
    } else {
      e = 16383 - 1022;
      const n = h !== 0 ? Math.clz32(h) : 32 + Math.clz32(l);
      if (n >= 32) {
        h = l << (n - 32);
        l = 0;
      } else {
        h = (h << n) | (l >>> (32 - n));
        l <<= n;
      }
      e -= n;
      unpackFlags |= FE_DENORMAL;
      c = C_NORMAL;
    }
  } else if (e === 0x7ff) {
    if ((h | l) === 0) c = C_INF;
    else c = (hi & 0x80000) !== 0 ? C_QNAN : C_SNAN;
    e = 0x7fff;
    h |= 0x80000000;
  } else {
    h |= 0x80000000;
    e += 16383 - 1023;
    c = C_NORMAL;
  }
  if (which === 0) {
    As = sign; Ae = e; Ah = h; Al = l; Ac = c; Araw1 = hi | 0; Araw2 = lo | 0;
  } else {
    Bs = sign; Be = e; Bh = h; Bl = l; Bc = c; Braw1 = hi | 0; Braw2 = lo | 0;
  }
  return c;
}

/** Unpacks an IEEE single into A or B. */
export function unpackF32(which: number, w: number, daz: boolean): number {
  const sign = w >>> 31;
  let e = (w >>> 23) & 0xff;
  let h = (w & 0x7fffff) << 8;
  let c: number;
  if (e === 0) {
    if (h === 0 || daz) {
      c = C_ZERO;
      h = 0;
    } else {
      e = 16383 - 126;
      const n = Math.clz32(h);
      h <<= n;
      e -= n;
      unpackFlags |= FE_DENORMAL;
      c = C_NORMAL;
    }
  } else if (e === 0xff) {
    c = h === 0 ? C_INF : (w & 0x400000) !== 0 ? C_QNAN : C_SNAN;
    e = 0x7fff;
    h |= 0x80000000;
  } else {
    h |= 0x80000000;
    e += 16383 - 127;
    c = C_NORMAL;
  }
  if (which === 0) {
    As = sign; Ae = e; Ah = h; Al = 0; Ac = c; Araw1 = w | 0; Araw2 = 0;
  } else {
    Bs = sign; Be = e; Bh = h; Bl = 0; Bc = c; Braw1 = w | 0; Braw2 = 0;
  }
  return c;
}

export function clearUnpackFlags(): void {
  unpackFlags = 0;
}

/** Swaps the A and B operands. */
export function swapAB(): void {
  let t = As; As = Bs; Bs = t;
  t = Ae; Ae = Be; Be = t;
  t = Ah; Ah = Bh; Bh = t;
  t = Al; Al = Bl; Bl = t;
  t = Ac; Ac = Bc; Bc = t;
  t = Araw0; Araw0 = Braw0; Braw0 = t;
  t = Araw1; Araw1 = Braw1; Braw1 = t;
  t = Araw2; Araw2 = Braw2; Braw2 = t;
}

/** Sets the A operand directly (already normalized or special). */
export function setA(sign: number, exp: number, hi: number, lo: number, cls: number): void {
  As = sign; Ae = exp; Ah = hi | 0; Al = lo | 0; Ac = cls;
}

// ------------------------------------------------------------------ packing specials

/** Packs zero of format fmt with the given sign. */
function packZero(sign: number, fmt: number): void {
  if (fmt === FMT_EXT) {
    F.se = sign << 15; F.hi = 0; F.lo = 0;
  } else if (fmt === FMT_F64) {
    F.hi = sign << 31; F.lo = 0;
  } else {
    F.lo = sign << 31; F.hi = 0;
  }
}

export function packInf(sign: number, fmt: number): void {
  if (fmt === FMT_EXT) {
    F.se = (sign << 15) | 0x7fff; F.hi = 0x80000000 | 0; F.lo = 0;
  } else if (fmt === FMT_F64) {
    F.hi = (sign << 31) | 0x7ff00000; F.lo = 0;
  } else {
    F.lo = (sign << 31) | 0x7f800000; F.hi = 0;
  }
}

/** The default NaN ("real indefinite"): negative, quiet, zero payload. */
export function packDefaultNaN(fmt: number): void {
  if (fmt === FMT_EXT) {
    F.se = 0xffff; F.hi = 0xc0000000 | 0; F.lo = 0;
  } else if (fmt === FMT_F64) {
    F.hi = 0xfff80000 | 0; F.lo = 0;
  } else {
    F.lo = 0xffc00000 | 0; F.hi = 0;
  }
}

/** Packs a normalized finite value exactly (no rounding), format fmt, for values known to fit. */
function packExact(sign: number, exp: number, hi: number, lo: number, fmt: number): void {
  roundPack(sign, exp, hi, lo, 0, fmt, 3 | (3 << 2));
}

/** Quiet version of the A (which=0) or B operand, a NaN, in format fmt. */
function packQuietNaN(which: number, fmt: number): void {
  const r0 = which === 0 ? Araw0 : Braw0;
  const r1 = which === 0 ? Araw1 : Braw1;
  const r2 = which === 0 ? Araw2 : Braw2;
  if (fmt === FMT_EXT) {
    F.se = r0; F.hi = r1 | 0x40000000; F.lo = r2;
  } else if (fmt === FMT_F64) {
    F.hi = r1 | 0x80000; F.lo = r2;
  } else {
    F.lo = r1 | 0x400000; F.hi = 0;
  }
}

/**
 * NaN result of a two-operand operation, following the x86 rules. x87 (extended): the NaN
 * with the larger significand, a QNaN preferred to an SNaN; SSE: the first operand if it is
 * a NaN, else the second. Raises IE for an SNaN.
 */
export function propagateNaN2(fmt: number): void {
  const aNaN = Ac === C_QNAN || Ac === C_SNAN;
  const bNaN = Bc === C_QNAN || Bc === C_SNAN;
  if (Ac === C_SNAN || Bc === C_SNAN) F.flags |= FE_INVALID;
  if (fmt !== FMT_EXT) {
    packQuietNaN(aNaN ? 0 : 1, fmt);
    return;
  }
  if (!aNaN) {
    packQuietNaN(1, fmt);
    return;
  }
  if (!bNaN) {
    packQuietNaN(0, fmt);
    return;
  }
  if (Ac === C_SNAN && Bc === C_QNAN) {
    packQuietNaN(1, fmt);
    return;
  }
  if (Ac === C_QNAN && Bc === C_SNAN) {
    packQuietNaN(0, fmt);
    return;
  }
  // Both of the same kind: the larger significand (quiet bit ignored).
  const ah = (Araw1 | 0x40000000) >>> 0;
  const bh = (Braw1 | 0x40000000) >>> 0;
  if (ah !== bh) {
    packQuietNaN(ah > bh ? 0 : 1, fmt);
    return;
  }
  if (Araw2 !== Braw2) {
    packQuietNaN(Araw2 >>> 0 > Braw2 >>> 0 ? 0 : 1, fmt);
    return;
  }
  packQuietNaN((Araw0 & 0xffff) <= (Braw0 & 0xffff) ? 0 : 1, fmt);
}

/** NaN result of a one-operand operation on A (a NaN). */
export function propagateNaN1(fmt: number): void {
  if (Ac === C_SNAN) F.flags |= FE_INVALID;
  packQuietNaN(0, fmt);
}

// ------------------------------------------------------------------ rounding

const PC_BITS = [24, 64, 53, 64]; // PC = 01 (reserved) rounds like 64 on the host (AMD)

/** Does rounding hi:lo:x at precision p carry out of 64 bits (unbounded exponent)? */
function carriesOut(sign: number, hi: number, lo: number, x: number, p: number, rc: number): boolean {
  let allOnes: boolean;
  if (p === 64) allOnes = (hi & lo) === -1;
  else if (p === 53) allOnes = hi === -1 && (lo | 0x7ff) === -1;
  else allOnes = (hi | 0xff) === -1;
  if (!allOnes) return false;
  return roundUp(sign, hi, lo, x, p, rc) === 1;
}

/** The rounding decision: 1 to increment, 0 not; sets rInexact. */
let rInexact = false;
function roundUp(sign: number, hi: number, lo: number, x: number, p: number, rc: number): number {
  let cmp: number;
  let lsb: number;
  if (p === 64) {
    rInexact = x !== 0;
    const u = x >>> 0;
    cmp = u > 0x80000000 ? 1 : u === 0x80000000 ? 0 : -1;
    lsb = lo & 1;
  } else if (p === 53) {
    const r = lo & 0x7ff;
    rInexact = r !== 0 || x !== 0;
    cmp = r > 0x400 ? 1 : r === 0x400 ? (x !== 0 ? 1 : 0) : -1;
    lsb = (lo >>> 11) & 1;
  } else {
    const r = hi & 0xff;
    const st = lo !== 0 || x !== 0;
    rInexact = r !== 0 || st;
    cmp = r > 0x80 ? 1 : r === 0x80 ? (st ? 1 : 0) : -1;
    lsb = (hi >>> 8) & 1;
  }
  if (!rInexact) return 0;
  switch (rc) {
    case 0: return cmp > 0 || (cmp === 0 && lsb === 1) ? 1 : 0;
    case 1: return sign;
    case 2: return sign ^ 1;
    default: return 0;
  }
}

/** Shifts hi:lo:x right by n (>= 0) into th:tl:tx, ORing everything shifted out into tx's bit 0. */
function shiftRightJam96(hi: number, lo: number, x: number, n: number): void {
  if (n === 0) {
    th = hi; tl = lo; tx = x;
  } else if (n < 32) {
    const st = x << (32 - n) !== 0 ? 1 : 0;
    tx = (lo << (32 - n)) | (x >>> n) | st;
    tl = (hi << (32 - n)) | (lo >>> n);
    th = hi >>> n;
  } else if (n < 64) {
    const m = n - 32;
    if (m === 0) {
      tx = lo | (x !== 0 ? 1 : 0);
      tl = hi;
    } else {
      const st = x !== 0 || lo << (32 - m) !== 0 ? 1 : 0;
      tx = (hi << (32 - m)) | (lo >>> m) | st;
      tl = hi >>> m;
    }
    th = 0;
  } else if (n < 96) {
    const m = n - 64;
    if (m === 0) tx = hi | (lo !== 0 || x !== 0 ? 1 : 0);
    else tx = (hi >>> m) | (x !== 0 || lo !== 0 || hi << (32 - m) !== 0 ? 1 : 0);
    tl = 0;
    th = 0;
  } else {
    tx = (hi | lo | x) !== 0 ? 1 : 0;
    tl = 0;
    th = 0;
  }
}

/**
 * Rounds and packs sign, exp, hi:lo:x (normalized: bit 63 of hi:lo set, or all zero) to
 * format fmt under ctl. The result goes to F; F.flags gets OE UE PE as raised; F.up the C1 bit.
 */
export function roundPack(sign: number, exp: number, hi: number, lo: number, x: number, fmt: number, ctl: number): void {
  F.up = 0;
  if ((hi | lo | x) === 0) {
    packZero(sign, fmt);
    return;
  }
  const rc = ctl & 3;
  const p = fmt === FMT_EXT ? PC_BITS[(ctl >> 2) & 3] : fmt === FMT_F64 ? 53 : 24;
  const emin = EMIN[fmt];
  const emax = EMAX[fmt];
  if (exp < emin) {
    const tiny = (ctl & CTL_TINY_BEFORE) !== 0 || exp < emin - 1 || !carriesOut(sign, hi, lo, x, p, rc);
    if (tiny) {
      if ((ctl & CTL_UE_UNMASKED) !== 0) {
        F.flags |= FE_UNDERFLOW;
        if ((ctl & CTL_X87) !== 0) {
          if (exp + WRAP >= emin) {
            exp += WRAP;
            roundNormal(sign, exp, hi, lo, x, fmt, ctl, p, rc, emax);
            return;
          }
          // Too tiny even for the wrapped exponent (FSCALE): zero, as the host delivers it.
          F.flags |= FE_INEXACT;
          F.up = 0;
          packZero(sign, fmt);
          return;
        }
        // SSE: #XM follows and nothing is delivered; PE reports whether the result is exact
        // at full precision (unbounded exponent).
        roundNormal(sign, exp, hi, lo, x, fmt, ctl, p, rc, 0x7fffffff);
        return;
      } else if ((ctl & CTL_FTZ) !== 0) {
        F.flags |= FE_UNDERFLOW | FE_INEXACT;
        packZero(sign, fmt);
        return;
      }
    }
    shiftRightJam96(hi, lo, x, emin - exp);
    hi = th; lo = tl; x = tx;
    const inc = roundUp(sign, hi, lo, x, p, rc);
    if (rInexact) {
      F.flags |= FE_INEXACT;
      if (tiny) F.flags |= FE_UNDERFLOW;
    }
    if (inc) {
      F.up = 1;
      const r = increment(hi, lo, p);
      hi = th; lo = tl;
      void r;
    }
    hi = maskHi(hi, p);
    lo = maskLo(lo, p);
    // Rounded up into the normal range?
    const e = hi < 0 ? emin : emin - 1;
    packFields(sign, e, hi, lo, fmt, emin);
    return;
  }
  roundNormal(sign, exp, hi, lo, x, fmt, ctl, p, rc, emax);
}

function maskHi(hi: number, p: number): number {
  return p === 24 ? hi & ~0xff : hi;
}
function maskLo(lo: number, p: number): number {
  return p === 64 ? lo : p === 53 ? lo & ~0x7ff : 0;
}

/** Adds one unit in the last place (precision p) to hi:lo; returns 1 on carry out of 64 bits. */
function increment(hi: number, lo: number, p: number): number {
  if (p === 24) {
    const h = (hi >>> 0) + 0x100;
    th = h | 0;
    tl = 0;
    return h > 0xffffffff ? 1 : 0;
  }
  const unit = p === 64 ? 1 : 0x800;
  const base = p === 64 ? lo >>> 0 : (lo & ~0x7ff) >>> 0;
  const l = base + unit;
  tl = l | 0;
  if (l > 0xffffffff) {
    const h = (hi >>> 0) + 1;
    th = h | 0;
    return h > 0xffffffff ? 1 : 0;
  }
  th = hi;
  return 0;
}

function roundNormal(sign: number, exp: number, hi: number, lo: number, x: number, fmt: number, ctl: number, p: number, rc: number, emax: number): void {
  const inc = roundUp(sign, hi, lo, x, p, rc);
  const inexact = rInexact;
  if (inc) {
    F.up = 1;
    if (increment(hi, lo, p)) {
      hi = 0x80000000 | 0;
      lo = 0;
      exp++;
    } else {
      hi = th;
      lo = tl;
    }
  }
  hi = maskHi(hi, p);
  lo = maskLo(lo, p);
  if (exp > emax) {
    F.flags |= FE_OVERFLOW;
    if ((ctl & CTL_OE_UNMASKED) !== 0 && (ctl & CTL_X87) !== 0 && exp - WRAP > emax) {
      // Too large even for the wrapped exponent (FSCALE): infinity, as the host delivers it.
      F.flags |= FE_INEXACT;
      F.up = 1;
      packInf(sign, fmt);
      return;
    }
    if ((ctl & CTL_OE_UNMASKED) !== 0) {
      if (inexact) F.flags |= FE_INEXACT;
      if ((ctl & CTL_X87) !== 0) exp -= WRAP;
      packFields(sign, exp, hi, lo, fmt, EMIN[fmt]);
      return;
    }
    F.flags |= FE_INEXACT;
    if (rc === 0 || (rc === 1 && sign === 1) || (rc === 2 && sign === 0)) {
      F.up = 1;
      packInf(sign, fmt);
    } else {
      F.up = 0;
      // The largest finite number of the precision.
      const mh = p === 24 ? 0xffffff00 | 0 : -1;
      const ml = p === 64 ? -1 : p === 53 ? 0xfffff800 | 0 : 0;
      packFields(sign, emax, mh, ml, fmt, EMIN[fmt]);
    }
    return;
  }
  if (inexact) F.flags |= FE_INEXACT;
  packFields(sign, exp, hi, lo, fmt, EMIN[fmt]);
}

/** Packs fields: exp is the extended-biased exponent, emin - 1 for denormals (bit 63 clear). */
function packFields(sign: number, exp: number, hi: number, lo: number, fmt: number, emin: number): void {
  if (fmt === FMT_EXT) {
    F.se = (sign << 15) | (exp < emin ? 0 : exp & 0x7fff);
    F.hi = hi;
    F.lo = lo;
  } else if (fmt === FMT_F64) {
    const e = exp < emin ? 0 : exp - (16383 - 1023);
    F.hi = (sign << 31) | (e << 20) | ((hi >>> 11) & 0xfffff);
    F.lo = (hi << 21) | (lo >>> 11);
  } else {
    const e = exp < emin ? 0 : exp - (16383 - 127);
    F.lo = (sign << 31) | (e << 23) | ((hi >>> 8) & 0x7fffff);
    F.hi = 0;
  }
}

/** Normalizes hi:lo:x (nonzero) and rounds/packs. */
function normRoundPack(sign: number, exp: number, hi: number, lo: number, x: number, fmt: number, ctl: number): void {
  if (hi === 0) {
    if (lo === 0) {
      hi = x; lo = 0; x = 0; exp -= 64;
    } else {
      hi = lo; lo = x; x = 0; exp -= 32;
    }
  }
  const n = Math.clz32(hi);
  if (n > 0) {
    hi = (hi << n) | (lo >>> (32 - n));
    lo = (lo << n) | (x >>> (32 - n));
    x <<= n;
    exp -= n;
  }
  roundPack(sign, exp, hi, lo, x, fmt, ctl);
}

// ------------------------------------------------------------------ arithmetic

/**
 * A + B (or A - B when `negB`), operands unpacked; result in F (format fmt).
 * The caller has merged unpackFlags into F.flags and cleared F.flags before.
 */
export function add(negB: number, fmt: number, ctl: number): void {
  let bs = Bs ^ negB;
  const ac = Ac;
  const bc = Bc;
  if (ac >= C_QNAN || bc >= C_QNAN) {
    if (ac === C_UNSUPPORTED || bc === C_UNSUPPORTED) {
      F.flags |= FE_INVALID;
      packDefaultNaN(fmt);
      return;
    }
    propagateNaN2(fmt);
    return;
  }
  if (ac === C_INF || bc === C_INF) {
    if (ac === C_INF && bc === C_INF && As !== bs) {
      F.flags |= FE_INVALID;
      packDefaultNaN(fmt);
      return;
    }
    F.up = 0;
    packInf(ac === C_INF ? As : bs, fmt);
    return;
  }
  if (ac === C_ZERO) {
    if (bc === C_ZERO) {
      F.up = 0;
      // +0 + -0: +0, except -0 when rounding down.
      packZero(As === bs ? As : (ctl & 3) === 1 ? 1 : 0, fmt);
      return;
    }
    roundPack(bs, Be, Bh, Bl, 0, fmt, ctl);
    return;
  }
  if (bc === C_ZERO) {
    roundPack(As, Ae, Ah, Al, 0, fmt, ctl);
    return;
  }

  let sa = As;
  let ea = Ae;
  let ha = Ah;
  let la = Al;
  let eb = Be;
  let hb = Bh;
  let lb = Bl;
  // Make A the larger magnitude.
  if (ea < eb || (ea === eb && (ha >>> 0 < hb >>> 0 || (ha === hb && la >>> 0 < lb >>> 0)))) {
    let t = sa; sa = bs; bs = t;
    t = ea; ea = eb; eb = t;
    t = ha; ha = hb; hb = t;
    t = la; la = lb; lb = t;
  }
  shiftRightJam96(hb, lb, 0, ea - eb);
  hb = th; lb = tl;
  const xb = tx;
  if (sa === bs) {
    const l = (la >>> 0) + (lb >>> 0);
    const h = (ha >>> 0) + (hb >>> 0) + (l > 0xffffffff ? 1 : 0);
    let x = xb;
    let lo = l | 0;
    let hi = h | 0;
    if (h > 0xffffffff) {
      x = (lo << 31) | (x >>> 1) | (x & 1);
      lo = (hi << 31) | (lo >>> 1);
      hi = (hi >>> 1) | 0x80000000;
      ea++;
    }
    roundPack(sa, ea, hi, lo, x, fmt, ctl);
    return;
  }
  // Magnitude subtraction: (ha:la:0) - (hb:lb:xb).
  const x = (0 - (xb >>> 0)) | 0;
  const bx = xb !== 0 ? 1 : 0;
  const l = (la >>> 0) - (lb >>> 0) - bx;
  const bl = l < 0 ? 1 : 0;
  const lo = l | 0;
  const hi = ((ha >>> 0) - (hb >>> 0) - bl) | 0;
  if ((hi | lo | x) === 0) {
    F.up = 0;
    packZero((ctl & 3) === 1 ? 1 : 0, fmt);
    return;
  }
  normRoundPack(sa, ea, hi, lo, x, fmt, ctl);
}

// The 128-bit product, high word first (uint32 values), and 32x32 helper results.
let p3 = 0;
let p2 = 0;
let p1 = 0;
let p0 = 0;
let MH = 0;
let ML = 0;

/** 32x32 -> 64-bit unsigned product into MH:ML (no division, no BigInt). */
function mulU32(x: number, y: number): void {
  const xl = x & 0xffff;
  const xh = x >>> 16;
  const yl = y & 0xffff;
  const yh = y >>> 16;
  const ll = xl * yl;
  const lh = xl * yh;
  const hl = xh * yl;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  ML = ((mid << 16) | (ll & 0xffff)) >>> 0;
  MH = xh * yh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16);
}

const TWO_M32 = 2 ** -32;

/** 64x64 -> 128-bit product of ha:la and hb:lb into p3:p2:p1:p0 (uint32 words, high first). */
export function mul64(ha: number, la: number, hb: number, lb: number): void {
  mulU32(la, lb);
  p0 = ML;
  const c0 = MH;
  mulU32(la, hb);
  const m1l = ML;
  const m1h = MH;
  mulU32(ha, lb);
  const m2l = ML;
  const m2h = MH;
  mulU32(ha, hb);
  let t = c0 + m1l + m2l;
  p1 = t >>> 0;
  let carry = (t - p1) * TWO_M32;
  t = m1h + m2h + ML + carry;
  p2 = t >>> 0;
  carry = (t - p2) * TWO_M32;
  p3 = (MH + carry) >>> 0;
  p0 |= 0;
  p1 |= 0;
  p2 |= 0;
  p3 |= 0;
}

/** A x B. */
export function mul(fmt: number, ctl: number): void {
  const sign = As ^ Bs;
  const ac = Ac;
  const bc = Bc;
  if (ac >= C_QNAN || bc >= C_QNAN) {
    if (ac === C_UNSUPPORTED || bc === C_UNSUPPORTED) {
      F.flags |= FE_INVALID;
      packDefaultNaN(fmt);
      return;
    }
    propagateNaN2(fmt);
    return;
  }
  if (ac === C_INF || bc === C_INF) {
    if (ac === C_ZERO || bc === C_ZERO) {
      F.flags |= FE_INVALID;
      packDefaultNaN(fmt);
      return;
    }
    F.up = 0;
    packInf(sign, fmt);
    return;
  }
  if (ac === C_ZERO || bc === C_ZERO) {
    F.up = 0;
    packZero(sign, fmt);
    return;
  }
  mul64(Ah, Al, Bh, Bl);
  let e = Ae + Be - 16383 + 1;
  let hi = p3, lo = p2, x = p1 | (p0 !== 0 ? 1 : 0);
  if (hi >= 0) {
    hi = (hi << 1) | (lo >>> 31);
    lo = (lo << 1) | (p1 >>> 31);
    x = (p1 << 1) | (p0 !== 0 ? 1 : 0);
    e--;
  }
  roundPack(sign, e, hi, lo, x, fmt, ctl);
}

/** A / B. */
export function div(fmt: number, ctl: number): void {
  const sign = As ^ Bs;
  const ac = Ac;
  const bc = Bc;
  if (ac >= C_QNAN || bc >= C_QNAN) {
    if (ac === C_UNSUPPORTED || bc === C_UNSUPPORTED) {
      F.flags |= FE_INVALID;
      packDefaultNaN(fmt);
      return;
    }
    propagateNaN2(fmt);
    return;
  }
  F.up = 0;
  if (ac === C_INF) {
    if (bc === C_INF) {
      F.flags |= FE_INVALID;
      packDefaultNaN(fmt);
      return;
    }
    packInf(sign, fmt);
    return;
  }
  if (bc === C_INF) {
    packZero(sign, fmt);
    return;
  }
  if (bc === C_ZERO) {
    if (ac === C_ZERO) {
      F.flags |= FE_INVALID;
      packDefaultNaN(fmt);
      return;
    }
    F.flags |= FE_DIVZERO;
    packInf(sign, fmt);
    return;
  }
  if (ac === C_ZERO) {
    packZero(sign, fmt);
    return;
  }
  const hb = Bh >>> 0;
  const lb = Bl >>> 0;
  let rh = Ah >>> 0;
  let rl = Al >>> 0;
  let rc = 0;
  let e = Ae - Be + 16383;
  if (rh < hb || (rh === hb && rl < lb)) {
    rc = rh >>> 31;
    rh = ((rh << 1) | (rl >>> 31)) >>> 0;
    rl = (rl << 1) >>> 0;
    e--;
  }
  let qh = 0, ql = 0, qx = 0;
  for (let i = 0; i < 66; i++) {
    let bit = 0;
    if (rc !== 0 || rh > hb || (rh === hb && rl >= lb)) {
      bit = 1;
      const l = rl - lb;
      rl = l >>> 0;
      rh = (rh - hb - (l < 0 ? 1 : 0)) >>> 0;
      rc = 0;
    }
    if (i < 32) qh |= bit << (31 - i);
    else if (i < 64) ql |= bit << (63 - i);
    else qx |= bit << (95 - i);
    rc = rh >>> 31;
    rh = ((rh << 1) | (rl >>> 31)) >>> 0;
    rl = (rl << 1) >>> 0;
  }
  if ((rc | rh | rl) !== 0) qx |= 1;
  roundPack(sign, e, qh, ql, qx, fmt, ctl);
}

/** Square root of A. */
export function sqrt(fmt: number, ctl: number): void {
  const ac = Ac;
  if (ac >= C_QNAN) {
    if (ac === C_UNSUPPORTED) {
      F.flags |= FE_INVALID;
      packDefaultNaN(fmt);
      return;
    }
    propagateNaN1(fmt);
    return;
  }
  F.up = 0;
  if (ac === C_ZERO) {
    packZero(As, fmt);
    return;
  }
  if (As === 1) {
    F.flags |= FE_INVALID;
    packDefaultNaN(fmt);
    return;
  }
  if (ac === C_INF) {
    packInf(0, fmt);
    return;
  }
  const E = Ae - 16383;
  const odd = E & 1;
  // N = M << (67 + odd): 132 bits processed two at a time from the top (bit 131).
  const shift = 67 + odd;
  const mh = Ah >>> 0;
  const ml = Al >>> 0;
  // Root: up to 66 bits in (r2, r1, r0) as 22-bit limbs; remainder likewise (up to 68 bits).
  // Use three uint32 words for both with explicit carries.
  let q2 = 0, q1 = 0, q0 = 0; // root, words high..low
  let m2 = 0, m1 = 0, m0 = 0; // remainder
  for (let i = 65; i >= 0; i--) {
    // Next pair of N: bits 2i+1 and 2i, i.e. bits (2i+1-shift) and (2i-shift) of M.
    const b1 = bitOf(mh, ml, 2 * i + 1 - shift);
    const b0 = bitOf(mh, ml, 2 * i - shift);
    // rem = rem << 2 | pair
    m2 = ((m2 << 2) | (m1 >>> 30)) >>> 0;
    m1 = ((m1 << 2) | (m0 >>> 30)) >>> 0;
    m0 = ((m0 << 2) | (b1 << 1) | b0) >>> 0;
    // trial = root << 2 | 1
    const t2 = ((q2 << 2) | (q1 >>> 30)) >>> 0;
    const t1 = ((q1 << 2) | (q0 >>> 30)) >>> 0;
    const t0 = ((q0 << 2) | 1) >>> 0;
    const ge = m2 > t2 || (m2 === t2 && (m1 > t1 || (m1 === t1 && m0 >= t0)));
    q2 = ((q2 << 1) | (q1 >>> 31)) >>> 0;
    q1 = ((q1 << 1) | (q0 >>> 31)) >>> 0;
    q0 = ((q0 << 1) | (ge ? 1 : 0)) >>> 0;
    if (ge) {
      let d = m0 - t0;
      m0 = d >>> 0;
      let br = d < 0 ? 1 : 0;
      d = m1 - t1 - br;
      m1 = d >>> 0;
      br = d < 0 ? 1 : 0;
      m2 = (m2 - t2 - br) >>> 0;
    }
  }
  // root = q2:q1:q0, 66 bits, top bit at bit 65 (q2 bit 1).
  const hi = (q2 << 30) | (q1 >>> 2);
  const lo = (q1 << 30) | (q0 >>> 2);
  const x = (q0 << 30) | ((m2 | m1 | m0) !== 0 ? 1 : 0);
  roundPack(0, ((E - odd) >> 1) + 16383, hi, lo, x, fmt, ctl);
}

function bitOf(hi: number, lo: number, pos: number): number {
  if (pos < 0 || pos > 63) return 0;
  return pos >= 32 ? (hi >>> (pos - 32)) & 1 : (lo >>> pos) & 1;
}

// ------------------------------------------------------------------ integers

/** Integer result words of roundToIntMag. */
export let IH = 0;
export let IL = 0;
/** Set by roundToIntMag when the magnitude does not fit 64 bits. */
export let IBig = false;

/**
 * Rounds |A| (finite, normalized or zero) to an integer magnitude IH:IL under rc; sets
 * rInexact-based F.flags PE (unless noPE) and F.up. IBig when it doesn't fit 64 bits.
 */
export function roundToIntMag(rc: number, sign: number): void {
  IBig = false;
  F.up = 0;
  if (Ac === C_ZERO) {
    IH = 0; IL = 0;
    return;
  }
  const E = Ae - 16383; // value = 1.f x 2^E
  if (E >= 64) {
    IBig = true;
    return;
  }
  let ih: number, il: number, fh: number, fl: number, fx: number;
  // Integer part: sig >> (63 - E); fraction: the bits shifted out (as a 96-bit left-aligned).
  if (E < 0) {
    ih = 0; il = 0;
    // Fraction = sig x 2^E: shift right by -E as a left-aligned fraction.
    shiftRightJam96(Ah, Al, 0, Math.max(-E - 1 , 0));
    // Make it a 96-bit fraction aligned at bit 95 = 2^-1: for E = -1, the fraction is sig itself.
    fh = th; fl = tl; fx = tx;
  } else {
    const sh = 63 - E;
    shiftRightJam96(Ah, Al, 0, sh);
    ih = th; il = tl;
    // Fraction bits: the low `sh` bits of the significand, left-aligned.
    if (sh === 0) {
      fh = 0; fl = 0; fx = 0;
    } else if (sh < 32) {
      fh = Al << (32 - sh); fl = 0; fx = 0;
    } else if (sh === 32) {
      fh = Al; fl = 0; fx = 0;
    } else {
      fh = (Ah << (64 - sh)) | (Al >>> (sh - 32)); fl = Al << (64 - sh); fx = 0;
    }
  }
  const inexact = (fh | fl | fx) !== 0;
  let inc = 0;
  if (inexact) {
    const u = fh >>> 0;
    const cmp = u > 0x80000000 ? 1 : u === 0x80000000 ? ((fl | fx) !== 0 ? 1 : 0) : -1;
    switch (rc) {
      case 0: inc = cmp > 0 || (cmp === 0 && (il & 1) === 1) ? 1 : 0; break;
      case 1: inc = sign; break;
      case 2: inc = sign ^ 1; break;
      default: inc = 0;
    }
    F.flags |= FE_INEXACT;
  }
  if (inc) {
    F.up = 1;
    const l = (il >>> 0) + 1;
    il = l | 0;
    if (l > 0xffffffff) {
      const h = (ih >>> 0) + 1;
      ih = h | 0;
      if (h > 0xffffffff) IBig = true;
    }
  }
  IH = ih;
  IL = il;
}

/**
 * Converts A to a signed integer of `bits` (16, 32, 64) with rounding rc. Returns the low
 * word (IH holds the high word for 64); on invalid (NaN, infinity, out of range) F.flags IE
 * and the integer indefinite (0x8000...).
 */
export function toInt(bits: number, rc: number): number {
  const c = Ac;
  if (c >= C_INF || c === C_UNSUPPORTED) {
    F.flags |= FE_INVALID;
    return indefinite(bits);
  }
  const saved = F.flags;
  roundToIntMag(rc, As);
  let ok = !IBig;
  if (ok) {
    if (bits === 64) ok = IH >= 0 || (As === 1 && IH === (0x80000000 | 0) && IL === 0);
    else if (bits === 32) ok = IH === 0 && (IL >= 0 || (As === 1 && IL === (0x80000000 | 0)));
    else ok = IH === 0 && (IL >>> 0 < 0x8000 || (As === 1 && IL === 0x8000));
  }
  if (!ok) {
    F.flags = saved | FE_INVALID;
    F.up = 0;
    return indefinite(bits);
  }
  if (As === 1) {
    const l = (0 - (IL >>> 0)) | 0;
    IH = (~IH + (IL === 0 ? 1 : 0)) | 0;
    IL = l;
  }
  if (bits === 16) return IL & 0xffff;
  if (bits === 32) IH = 0;
  return IL;
}

function indefinite(bits: number): number {
  if (bits === 64) {
    IH = 0x80000000 | 0;
    return 0;
  }
  IH = 0;
  return bits === 32 ? 0x80000000 | 0 : 0x8000;
}

/** Converts a signed 64-bit integer (hi, lo) to format fmt (rounding when needed). */
export function fromInt64(hi: number, lo: number, fmt: number, ctl: number): void {
  F.up = 0;
  let sign = 0;
  let h = hi | 0;
  let l = lo | 0;
  if (h < 0) {
    sign = 1;
    const nl = (0 - (l >>> 0)) | 0;
    h = (~h + (l === 0 ? 1 : 0)) | 0;
    l = nl;
  }
  if ((h | l) === 0) {
    packZero(0, fmt);
    return;
  }
  normRoundPack(sign, 16383 + 63, h, l, 0, fmt, ctl);
}

/** Converts an unsigned 64-bit magnitude with a sign to format fmt. */
export function fromMag64(sign: number, hi: number, lo: number, fmt: number, ctl: number): void {
  F.up = 0;
  if ((hi | lo) === 0) {
    packZero(sign, fmt);
    return;
  }
  normRoundPack(sign, 16383 + 63, hi, lo, 0, fmt, ctl);
}

// ------------------------------------------------------------------ conversions between formats

/** Converts the unpacked A to format fmt (rounding), NaNs quieted (IE for an SNaN). */
export function convert(fmt: number, ctl: number): void {
  F.up = 0;
  switch (Ac) {
    case C_ZERO: {
      packZero(As, fmt);
      return;
    }
    case C_INF: {
      packInf(As, fmt);
      return;
    }
    case C_QNAN:
    case C_SNAN: {
      if (Ac === C_SNAN) F.flags |= FE_INVALID;
      // Keep the top of the payload.
      const h = Ah | 0x40000000;
      if (fmt === FMT_EXT) {
        F.se = (As << 15) | 0x7fff; F.hi = h | 0x80000000; F.lo = Al;
      } else if (fmt === FMT_F64) {
        F.hi = (As << 31) | 0x7ff00000 | ((h >>> 11) & 0xfffff);
        F.lo = (h << 21) | (Al >>> 11);
      } else {
        F.lo = (As << 31) | 0x7f800000 | ((h >>> 8) & 0x7fffff);
        F.hi = 0;
      }
      return;
    }
    case C_UNSUPPORTED:
      F.flags |= FE_INVALID;
      packDefaultNaN(fmt);
      return;
  }
  roundPack(As, Ae, Ah, Al, 0, fmt, ctl);
}

// ------------------------------------------------------------------ comparison

/** Compares A and B: 0 less, 1 equal, 2 greater, 3 unordered. Flags per `signaling`. */
export function compare(signaling: boolean): number {
  const ac = Ac;
  const bc = Bc;
  if (ac >= C_QNAN || bc >= C_QNAN) {
    if (signaling || ac === C_SNAN || bc === C_SNAN || ac === C_UNSUPPORTED || bc === C_UNSUPPORTED) F.flags |= FE_INVALID;
    return 3;
  }
  if (ac === C_ZERO && bc === C_ZERO) return 1;
  // Sign-magnitude comparison.
  const sa = ac === C_ZERO ? Bs ^ 1 : As;
  const sb = bc === C_ZERO ? As ^ 1 : Bs;
  if (sa !== sb) return sa === 1 ? 0 : 2;
  let c: number; // magnitude comparison of A vs B: -1, 0, 1
  if (ac === C_ZERO) c = -1;
  else if (bc === C_ZERO) c = 1;
  else if (ac === C_INF || bc === C_INF) c = ac === bc ? 0 : ac === C_INF ? 1 : -1;
  else if (Ae !== Be) c = Ae > Be ? 1 : -1;
  else if (Ah !== Bh) c = Ah >>> 0 > Bh >>> 0 ? 1 : -1;
  else if (Al !== Bl) c = Al >>> 0 > Bl >>> 0 ? 1 : -1;
  else c = 0;
  if (c === 0) return 1;
  if (sa === 1) c = -c;
  return c > 0 ? 2 : 0;
}

// ------------------------------------------------------------------ round to integral value

/** Rounds A to an integral value in format fmt (FRNDINT, ROUNDSx). `noPE` suppresses PE. */
export function roundIntegral(fmt: number, ctl: number, rc: number, noPE: boolean): void {
  F.up = 0;
  const c = Ac;
  if (c >= C_QNAN) {
    if (c === C_UNSUPPORTED) {
      F.flags |= FE_INVALID;
      packDefaultNaN(fmt);
      return;
    }
    propagateNaN1(fmt);
    return;
  }
  if (c === C_ZERO) {
    packZero(As, fmt);
    return;
  }
  if (c === C_INF) {
    packInf(As, fmt);
    return;
  }
  const E = Ae - 16383;
  if (E >= 63) {
    roundPack(As, Ae, Ah, Al, 0, fmt, ctl);
    return;
  }
  const before = F.flags;
  roundToIntMag(rc, As);
  if (noPE) F.flags = before | (F.flags & ~FE_INEXACT);
  if ((IH | IL) === 0) {
    F.up = 0;
    packZero(As, fmt);
    return;
  }
  const up = F.up;
  normRoundPack(As, 16383 + 63, IH, IL, 0, fmt, ctl);
  F.up = up;
}

// ------------------------------------------------------------------ partial remainder

/** Quotient bits of the last remainder (low 3 bits: Q2 Q1 Q0) and whether it was partial. */
export let remQuot = 0;
export let remPartial = false;

/**
 * FPREM (nearest = false: truncated quotient) and FPREM1 (nearest = true): A rem B into F
 * (extended). Sets remQuot, remPartial. Specials: invalid for B = 0, A = inf, unsupported.
 */
export function remainder(nearest: boolean, ctl: number): void {
  remQuot = 0;
  remPartial = false;
  F.up = 0;
  const ac = Ac;
  const bc = Bc;
  if (ac >= C_QNAN || bc >= C_QNAN) {
    if (ac === C_UNSUPPORTED || bc === C_UNSUPPORTED) {
      F.flags |= FE_INVALID;
      packDefaultNaN(FMT_EXT);
      return;
    }
    propagateNaN2(FMT_EXT);
    return;
  }
  if (ac === C_INF || bc === C_ZERO) {
    F.flags |= FE_INVALID;
    packDefaultNaN(FMT_EXT);
    return;
  }
  if (ac === C_ZERO || bc === C_INF) {
    roundPack(As, Ae, Ah, Al, 0, FMT_EXT, (ctl & ~0xf) | 0xc);
    return;
  }
  let d = Ae - Be;
  if (d < 0) {
    if (nearest && d === -1) {
      // |A| in [|B|/2, |B|): the remainder may be A - B (when |A| > |B|/2).
    } else {
      roundPack(As, Ae, Ah, Al, 0, FMT_EXT, (ctl & ~0xf) | 0xc);
      return;
    }
  }
  let ha = Ah >>> 0;
  let la = Al >>> 0;
  const hb = Bh >>> 0;
  const lb = Bl >>> 0;
  if (d >= 64) {
    // Partial: reduce by B x 2^(d - n) with n = 32 + (d mod 32) as the manuals describe.
    const n = 32 + (d % 32);
    d = n;
    remPartial = true;
  }
  // Long division of A by B' = B x 2^d: quotient bits from the top.
  let rc = 0;
  let q = 0;
  let steps = d + 1;
  if (d < 0) steps = 0;
  // Remainder r = A; we iterate i = d..0, comparing r with B x 2^i, keeping r aligned to B x 2^d.
  // Work with r scaled: r' = r / 2^(Ae - 63 - 16383) i.e. the significand of A, B' = B << (d - i).
  // Implemented as: r starts as sig A; for each step compare with sig B; then r <<= 1.
  let e = Ae;
  for (let i = 0; i < steps; i++) {
    let bit = 0;
    if (rc !== 0 || ha > hb || (ha === hb && la >= lb)) {
      const l = la - lb;
      la = l >>> 0;
      ha = (ha - hb - (l < 0 ? 1 : 0)) >>> 0;
      rc = 0;
      bit = 1;
    }
    q = ((q << 1) | bit) & 0x7;
    if (i < steps - 1) {
      rc = ha >>> 31;
      ha = ((ha << 1) | (la >>> 31)) >>> 0;
      la = (la << 1) >>> 0;
      e--;
    }
  }
  // Now remainder = (ha:la) x 2^(e - 16383 - 63) with e = Ae - d (= Be scale), |r| < |B|.
  e = steps > 0 ? Ae - (steps - 1) : Ae;
  let rs = As;
  let rh = ha;
  let rl = la;
  if (nearest && !remPartial) {
    // Round the quotient to nearest: if r > B/2 (or = B/2 and q odd), r = B - r, q++.
    // Compare 2r with B at the same scale (e vs Be).
    let gt = false;
    let eq = false;
    if (d < 0) {
      // steps = 0: r = A, quotient 0; A in [B/2, B) scale: e = Ae = Be - 1.
      const c = cmp64(ha, la, hb, lb);
      gt = c > 0;
      eq = c === 0;
    } else {
      // 2r vs B at scale Be: 2r = r << 1 (65 bits).
      const top = ha >>> 31;
      const h2 = ((ha << 1) | (la >>> 31)) >>> 0;
      const l2 = (la << 1) >>> 0;
      if (top) gt = true;
      else {
        const c = cmp64(h2, l2, hb, lb);
        gt = c > 0;
        eq = c === 0;
      }
    }
    if (gt || (eq && (q & 1) === 1)) {
      // r = B - r (at B's scale), sign flips, quotient + 1.
      let bh2 = hb;
      let bl2 = lb;
      const rh2 = ha;
      const rl2 = la;
      if (d < 0) {
        // r at scale Be - 1: B' = B << 1 relative: compute 2B - r... use r/2 at B scale instead.
        // B - A with A = r x 2^-1 relative to B: shift B left by 1 (65 bits) and subtract.
        const bt = hb >>> 31;
        bh2 = ((hb << 1) | (lb >>> 31)) >>> 0;
        bl2 = (lb << 1) >>> 0;
        const l = bl2 - rl2;
        rl = l >>> 0;
        rh = (bh2 - rh2 - (l < 0 ? 1 : 0)) >>> 0;
        void bt;
        e = Ae;
      } else {
        const l = bl2 - rl2;
        rl = l >>> 0;
        rh = (bh2 - rh2 - (l < 0 ? 1 : 0)) >>> 0;
      }
      rs ^= 1;
      q = (q + 1) & 7;
    }
  }
  remQuot = q;
  if ((rh | rl) === 0) {
    packZero(As, FMT_EXT);
    return;
  }
  // Normalize and pack exactly (the remainder is exact; may be denormal).
  normRoundPack(rs, e, rh | 0, rl | 0, 0, FMT_EXT, (ctl & ~0xf) | 0xc);
}

function cmp64(ah: number, al: number, bh: number, bl: number): number {
  if (ah !== bh) return ah >>> 0 > bh >>> 0 ? 1 : -1;
  if (al !== bl) return al >>> 0 > bl >>> 0 ? 1 : -1;
  return 0;
}

// ------------------------------------------------------------------ scaling

/** A x 2^n (n an integer, clamped), rounded to fmt. */
export function scale(n: number, fmt: number, ctl: number): void {
  F.up = 0;
  const c = Ac;
  if (c === C_ZERO) {
    packZero(As, fmt);
    return;
  }
  if (c === C_INF) {
    packInf(As, fmt);
    return;
  }
  if (n > 0x10000) n = 0x10000;
  if (n < -0x10000) n = -0x10000;
  roundPack(As, Ae + n, Ah, Al, 0, fmt, ctl);
}

export { packExact };
