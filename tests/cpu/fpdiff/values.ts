// Floating-point operand values drawn toward the edges: signed zeros, denormals, the
// smallest and largest normals, infinities, quiet and signalling NaNs with payloads, values
// one unit in the last place from rounding boundaries and from powers of two, integers at
// the conversion limits, and random values over the whole exponent range. All values are
// raw bit patterns (32-bit words), never JavaScript numbers, so NaN payloads survive.
import type { Rng } from "../difftest/generator.ts";

/** A double as [hi, lo] words. */
export type F64 = [number, number];
/** An extended value as [se (16 bits), hi, lo]. */
export type F80 = [number, number, number];

function rbits(r: Rng, n: number): number {
  return n >= 32 ? r.u32() : r.u32() & ((1 << n) - 1);
}

/** A random 52-bit fraction [hi20, lo32] biased toward special patterns. */
function frac52(r: Rng): [number, number] {
  switch (r.below(10)) {
    case 0: return [0, 0];
    case 1: return [0xfffff, 0xffffffff];
    case 2: return [0, 1];
    case 3: return [0xfffff, 0xfffffffe];
    case 4: return [0x80000, 0]; // half
    case 5: return [rbits(r, 20), (r.u32() & ~0x7ff) | (r.chance(0.5) ? 0x400 : 0x3ff)];
    case 6: return [rbits(r, 20), r.chance(0.5) ? 0x80000000 : 0x7fffffff];
    default: return [rbits(r, 20), r.u32()];
  }
}

function frac23(r: Rng): number {
  switch (r.below(9)) {
    case 0: return 0;
    case 1: return 0x7fffff;
    case 2: return 1;
    case 3: return 0x7ffffe;
    case 4: return 0x400000;
    case 5: return (r.u32() & 0x7ffff00) >>> 4 | 0x80;
    default: return r.u32() & 0x7fffff;
  }
}

export function randF64(r: Rng): F64 {
  const sign = r.chance(0.5) ? 0x80000000 : 0;
  const k = r.below(100);
  let e: number;
  let f: [number, number];
  if (k < 6) return [sign, 0]; // zero
  if (k < 14) { // denormal
    e = 0;
    f = frac52(r);
    if ((f[0] | f[1]) === 0) f = [0, 1];
  } else if (k < 18) { // infinity
    return [(sign | 0x7ff00000) >>> 0, 0];
  } else if (k < 24) { // QNaN
    return [(sign | 0x7ff80000 | rbits(r, r.chance(0.5) ? 0 : 19)) >>> 0, r.chance(0.5) ? 0 : r.u32()];
  } else if (k < 28) { // SNaN
    let hi = rbits(r, 19);
    let lo = r.u32();
    if (r.chance(0.3)) { hi = 0; lo = 1; }
    if ((hi | lo) === 0) lo = 1;
    return [(sign | 0x7ff00000 | hi) >>> 0, lo >>> 0];
  } else if (k < 34) { // near the top and bottom of the normal range
    e = r.chance(0.5) ? r.below(3) + 1 : 0x7fe - r.below(3);
    f = frac52(r);
  } else if (k < 50) { // around 1 (so sums and products round interestingly)
    e = 1023 + r.below(9) - 4;
    f = frac52(r);
  } else if (k < 60) { // integers near conversion limits
    const bounds = [31, 32, 63, 64, 15, 16, 52, 53];
    e = 1023 + r.pick(bounds) - r.below(2);
    f = r.chance(0.5) ? frac52(r) : [0, r.chance(0.5) ? 0 : 0x800];
  } else {
    e = r.below(0x7fe) + 1;
    f = frac52(r);
  }
  return [(sign | (e << 20) | f[0]) >>> 0, f[1] >>> 0];
}

export function randF32(r: Rng): number {
  const sign = r.chance(0.5) ? 0x80000000 : 0;
  const k = r.below(100);
  let e: number;
  let f: number;
  if (k < 6) return sign >>> 0;
  if (k < 14) { e = 0; f = frac23(r) || 1; }
  else if (k < 18) return (sign | 0x7f800000) >>> 0;
  else if (k < 24) return (sign | 0x7fc00000 | (r.chance(0.5) ? 0 : rbits(r, 22))) >>> 0;
  else if (k < 28) return (sign | 0x7f800000 | (rbits(r, 22) || 1)) >>> 0;
  else if (k < 34) { e = r.chance(0.5) ? r.below(3) + 1 : 0xfe - r.below(3); f = frac23(r); }
  else if (k < 50) { e = 127 + r.below(9) - 4; f = frac23(r); }
  else if (k < 60) { e = 127 + r.pick([31, 32, 63, 64, 15, 16, 23, 24]) - r.below(2); f = r.chance(0.5) ? frac23(r) : 0; }
  else { e = r.below(0xfe) + 1; f = frac23(r); }
  return (sign | (e << 23) | f) >>> 0;
}

/** A random extended value, including the encodings the x87 rejects (rarely). */
export function randF80(r: Rng): F80 {
  const sign = r.chance(0.5) ? 0x8000 : 0;
  const k = r.below(100);
  const sig = (): [number, number] => {
    switch (r.below(10)) {
      case 0: return [0x80000000, 0];
      case 1: return [0xffffffff, 0xffffffff];
      case 2: return [0x80000000, 1];
      case 3: return [0xffffffff, 0xfffffffe];
      case 4: return [(0x80000000 | r.u32()) >>> 0, (r.u32() & ~0x7ff) | (r.chance(0.5) ? 0x400 : 0x3ff)]; // double rounding boundary
      case 5: return [((0x80000000 | r.u32()) & ~0xff | (r.chance(0.5) ? 0x80 : 0x7f)) >>> 0, r.chance(0.5) ? 0 : r.u32()];
      case 6: return [(0x80000000 | r.u32()) >>> 0, r.chance(0.5) ? 0x80000000 : 0x7fffffff];
      case 7: return [(0x80000000 | r.u32()) >>> 0, r.u32() & ~0x7ff]; // a double
      default: return [(0x80000000 | r.u32()) >>> 0, r.u32() >>> 0];
    }
  };
  if (k < 6) return [sign, 0, 0];
  if (k < 10) { // denormal
    const [h, l] = sig();
    const sh = 1 + r.below(63);
    if (sh >= 32) return [sign, 0, ((h >>> (sh - 32)) || 1) >>> 0];
    return [sign, (h >>> sh) >>> 0, ((l >>> sh) | (h << (32 - sh))) >>> 0];
  }
  if (k < 13) return [sign | 0x7fff, 0x80000000, 0];
  if (k < 18) return [sign | 0x7fff, (0xc0000000 | (r.chance(0.5) ? 0 : r.u32())) >>> 0, r.chance(0.5) ? 0 : r.u32() >>> 0];
  if (k < 21) { let h = (0x80000000 | (r.u32() & 0x3fffffff)) >>> 0; const l = r.u32() >>> 0; if (h === 0x80000000 && l === 0) h = 0x80000001; return [sign | 0x7fff, h, l]; }
  if (k < 22) { // pseudo-denormal, unnormal, pseudo-infinity/NaN
    const t = r.below(3);
    const [h, l] = sig();
    if (t === 0) return [sign, h, l];
    if (t === 1) return [sign | (r.below(0x7ffe) + 1), (h & 0x7fffffff) >>> 0, l];
    return [sign | 0x7fff, (h & 0x7fffffff) >>> 0, l];
  }
  const [h, l] = sig();
  let e: number;
  if (k < 30) e = r.chance(0.5) ? r.below(3) + 1 : 0x7ffe - r.below(3);
  else if (k < 38) e = r.chance(0.5) ? 16383 - 1022 + r.below(5) - 2 - r.below(60) * (r.chance(0.3) ? 1 : 0) : 16383 + 1023 + r.below(5) - 2;
  else if (k < 44) e = r.chance(0.5) ? 16383 - 126 + r.below(5) - 2 - r.below(30) * (r.chance(0.3) ? 1 : 0) : 16383 + 127 + r.below(5) - 2;
  else if (k < 62) e = 16383 + r.below(9) - 4;
  else if (k < 72) e = 16383 + r.pick([15, 16, 31, 32, 63, 64, 59, 60]) - r.below(2);
  else e = r.below(0x7ffe) + 1;
  return [sign | e, h, l];
}

/** Derives a second operand from a first one so that results land near rounding boundaries. */
export function relatedF80(r: Rng, a: F80): F80 {
  const [se, h, l] = a;
  switch (r.below(6)) {
    case 0: return [se ^ 0x8000, h, l];
    case 1: return [se, h, (l ^ (1 << r.below(12))) >>> 0];
    case 2: { const d = r.below(70) - 5; const e = (se & 0x7fff) - d; return e > 0 && e < 0x7fff ? [(se & 0x8000) | e, h, r.u32() >>> 0] : a; }
    case 3: return [se ^ (r.chance(0.5) ? 0x8000 : 0), h, (l + (r.chance(0.5) ? 1 : -1)) >>> 0];
    case 4: return [(se & 0x8000) | ((se & 0x7fff) === 0x7fff ? 0x3fff : se & 0x7fff), (0x80000000 | r.u32()) >>> 0, 0];
    default: return a;
  }
}

export function relatedF64(r: Rng, a: F64): F64 {
  const [h, l] = a;
  switch (r.below(6)) {
    case 0: return [(h ^ 0x80000000) >>> 0, l];
    case 1: return [h, (l ^ (1 << r.below(8))) >>> 0];
    case 2: { const e = ((h >>> 20) & 0x7ff) - (r.below(60) - 3); return e > 0 && e < 0x7ff ? [((h & 0x800fffff) | (e << 20)) >>> 0, r.u32() >>> 0] : a; }
    case 3: return [(h ^ (r.chance(0.5) ? 0x80000000 : 0)) >>> 0, (l + (r.chance(0.5) ? 1 : -1)) >>> 0];
    default: return a;
  }
}

export function relatedF32(r: Rng, a: number): number {
  switch (r.below(6)) {
    case 0: return (a ^ 0x80000000) >>> 0;
    case 1: return (a ^ (1 << r.below(6))) >>> 0;
    case 2: { const e = ((a >>> 23) & 0xff) - (r.below(30) - 3); return e > 0 && e < 0xff ? ((a & 0x807fffff) | (e << 23) | (r.u32() & 0x7fffff)) >>> 0 : a; }
    case 3: return (a + (r.chance(0.5) ? 1 : -1)) >>> 0;
    default: return a;
  }
}

const EDGE_INT = [0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0x80000001, 0xffffffff, 0xfffffffe, 0x55555555, 0xaaaaaaaa];

export function randInt32(r: Rng): number {
  return r.chance(0.5) ? r.pick(EDGE_INT) >>> 0 : r.u32() >>> 0;
}
