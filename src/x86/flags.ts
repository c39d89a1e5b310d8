/**
 * Lazy arithmetic flags.
 *
 * An instruction that sets flags records what it did instead of computing six bits:
 * CC_OP = kind * 4 + size (size 0..3 for 8, 16, 32, 64 bits), CC_DST = the result, CC_SRC (and
 * CC_SRC2) = what the kind needs to rebuild the rest. The flags are computed only when read.
 *
 * Invariants (per kind; "a" is the first operand, "b" the second, "d" the result):
 * - EFLAGS: CC_SRC holds the six flags themselves, in their EFLAGS bit positions.
 * - ADD: d = a + b,        SRC = b.          ADC: d = a + b + c,  SRC = b, SRC2 = c.
 * - SUB: d = a - b,        SRC = b.          SBB: d = a - b - c,  SRC = b, SRC2 = c.
 * - LOGIC: d; CF = OF = 0, AF = 0.
 * - INC/DEC: d; SRC = the carry flag from before (INC and DEC preserve CF).
 * - SHL: SRC = the value shifted by count-1 (its top bit is CF).
 * - SAR (also SHR): SRC = the value shifted by count-1 (its low bit is CF); OF = top(SRC ^ d).
 * - MUL: d = low half of the product, SRC = 1 if the high half is significant (CF = OF).
 * 64-bit values occupy two words (low, high); smaller sizes use the low word only and keep
 * garbage above their size, so every reader masks.
 */
import { CC_DST, CC_OP, CC_SRC, CC_SRC2, F_AF, F_CF, F_OF, F_PF, F_SF, F_ZF } from "./state.ts";

export const CC_EFLAGS = 0;
export const CC_ADD = 1;
export const CC_ADC = 2;
export const CC_SUB = 3;
export const CC_SBB = 4;
export const CC_LOGIC = 5;
export const CC_INC = 6;
export const CC_DEC = 7;
export const CC_SHL = 8;
export const CC_SAR = 9;
export const CC_MUL = 10;

export const SZ8 = 0;
export const SZ16 = 1;
export const SZ32 = 2;
export const SZ64 = 3;

const MASK = [0xff, 0xffff, -1, -1];
const SIGN = [0x80, 0x8000, 0x80000000 | 0, 0x80000000 | 0];

/** PARITY[b] is F_PF when byte b has an even number of set bits. */
export const PARITY = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  let n = 0;
  for (let b = i; b; b >>= 1) n += b & 1;
  PARITY[i] = n & 1 ? 0 : F_PF;
}

function ult64(aLo: number, aHi: number, bLo: number, bHi: number): boolean {
  return aHi >>> 0 < bHi >>> 0 || (aHi === bHi && aLo >>> 0 < bLo >>> 0);
}

export function getCF(s: Int32Array): number {
  const op = s[CC_OP];
  const kind = op >> 2;
  const sz = op & 3;
  const m = MASK[sz];
  switch (kind) {
    case CC_EFLAGS:
      return s[CC_SRC] & 1;
    case CC_ADD:
      if (sz === SZ64) return ult64(s[CC_DST], s[CC_DST + 1], s[CC_SRC], s[CC_SRC + 1]) ? 1 : 0;
      return (s[CC_DST] & m) >>> 0 < (s[CC_SRC] & m) >>> 0 ? 1 : 0;
    case CC_ADC: {
      const c = s[CC_SRC2];
      if (sz === SZ64) {
        const lt = ult64(s[CC_DST], s[CC_DST + 1], s[CC_SRC], s[CC_SRC + 1]);
        const eq = s[CC_DST] === s[CC_SRC] && s[CC_DST + 1] === s[CC_SRC + 1];
        return lt || (c !== 0 && eq) ? 1 : 0;
      }
      const d = (s[CC_DST] & m) >>> 0;
      const b = (s[CC_SRC] & m) >>> 0;
      return c ? (d <= b ? 1 : 0) : d < b ? 1 : 0;
    }
    case CC_SUB:
    case CC_SBB: {
      const c = kind === CC_SBB ? s[CC_SRC2] : 0;
      if (sz === SZ64) {
        // a = d + b + c
        const dLo = s[CC_DST];
        const bLo = s[CC_SRC];
        let lo = (dLo >>> 0) + (bLo >>> 0) + c;
        const carry = lo > 0xffffffff ? 1 : 0;
        lo = lo | 0;
        const hi = (s[CC_DST + 1] + s[CC_SRC + 1] + carry) | 0;
        const lt = ult64(lo, hi, bLo, s[CC_SRC + 1]);
        const eq = lo === bLo && hi === s[CC_SRC + 1];
        return lt || (c !== 0 && eq) ? 1 : 0;
      }
      const b = (s[CC_SRC] & m) >>> 0;
      const a = ((s[CC_DST] + s[CC_SRC] + c) & m) >>> 0;
      return c ? (a <= b ? 1 : 0) : a < b ? 1 : 0;
    }
    case CC_LOGIC:
      return 0;
    case CC_INC:
    case CC_DEC:
      return s[CC_SRC] & 1;
    case CC_SHL:
      return sz === SZ64 ? s[CC_SRC + 1] >>> 31 : (s[CC_SRC] & SIGN[sz]) !== 0 ? 1 : 0;
    case CC_SAR:
      return s[CC_SRC] & 1;
    case CC_MUL:
      return s[CC_SRC] !== 0 ? 1 : 0;
  }
  return 0;
}

export function getZF(s: Int32Array): number {
  const op = s[CC_OP];
  if (op >> 2 === CC_EFLAGS) return (s[CC_SRC] >> 6) & 1;
  const sz = op & 3;
  if (sz === SZ64) return (s[CC_DST] | s[CC_DST + 1]) === 0 ? 1 : 0;
  return (s[CC_DST] & MASK[sz]) === 0 ? 1 : 0;
}

export function getSF(s: Int32Array): number {
  const op = s[CC_OP];
  if (op >> 2 === CC_EFLAGS) return (s[CC_SRC] >> 7) & 1;
  const sz = op & 3;
  if (sz === SZ64) return s[CC_DST + 1] >>> 31;
  return (s[CC_DST] & SIGN[sz]) !== 0 ? 1 : 0;
}

export function getOF(s: Int32Array): number {
  const op = s[CC_OP];
  const kind = op >> 2;
  const sz = op & 3;
  const hi = sz === SZ64 ? 1 : 0;
  const sign = SIGN[sz];
  const d = s[CC_DST + hi];
  const b = s[CC_SRC + hi];
  switch (kind) {
    case CC_EFLAGS:
      return (s[CC_SRC] >> 11) & 1;
    case CC_ADD:
    case CC_ADC: {
      // a = d - b - c: only the sign of a matters, computed on the word holding the sign bit.
      const a = addendSign(s, sz, -1, kind === CC_ADC ? s[CC_SRC2] : 0);
      return ((a ^ d) & (b ^ d) & sign) !== 0 ? 1 : 0;
    }
    case CC_SUB:
    case CC_SBB: {
      const a = addendSign(s, sz, 1, kind === CC_SBB ? s[CC_SRC2] : 0);
      return ((a ^ b) & (a ^ d) & sign) !== 0 ? 1 : 0;
    }
    case CC_LOGIC:
      return 0;
    case CC_INC:
      return sz === SZ64 ? (s[CC_DST + 1] === (0x80000000 | 0) && s[CC_DST] === 0 ? 1 : 0) : (s[CC_DST] & MASK[sz]) === (sign & MASK[sz]) ? 1 : 0;
    case CC_DEC:
      return sz === SZ64
        ? s[CC_DST + 1] === 0x7fffffff && s[CC_DST] === -1
          ? 1
          : 0
        : (s[CC_DST] & MASK[sz]) === ((sign - 1) & MASK[sz])
          ? 1
          : 0;
    case CC_SHL:
      return ((d & sign) !== 0 ? 1 : 0) ^ getCF(s);
    case CC_SAR:
      return ((b ^ d) & sign) !== 0 ? 1 : 0;
    case CC_MUL:
      return s[CC_SRC] !== 0 ? 1 : 0;
  }
  return 0;
}

/**
 * The word holding the sign bit of the first operand "a", rebuilt from d and b:
 * a = d + dir*(b + c). Exact for every size because the carry into the sign word is included.
 */
function addendSign(s: Int32Array, sz: number, dir: number, c: number): number {
  if (sz !== SZ64) return (s[CC_DST] + dir * (s[CC_SRC] + c)) | 0;
  const dLo = s[CC_DST] >>> 0;
  const bLo = (s[CC_SRC] >>> 0) + c;
  if (dir > 0) {
    const lo = dLo + bLo;
    return (s[CC_DST + 1] + s[CC_SRC + 1] + (lo > 0xffffffff ? 1 : 0)) | 0;
  }
  const borrow = dLo < bLo ? 1 : 0;
  return (s[CC_DST + 1] - s[CC_SRC + 1] - borrow) | 0;
}

export function getPF(s: Int32Array): number {
  if (s[CC_OP] >> 2 === CC_EFLAGS) return s[CC_SRC] & F_PF;
  return PARITY[s[CC_DST] & 0xff];
}

export function getAF(s: Int32Array): number {
  const op = s[CC_OP];
  const kind = op >> 2;
  switch (kind) {
    case CC_EFLAGS:
      return s[CC_SRC] & F_AF;
    case CC_ADD:
    case CC_ADC: {
      const a = (s[CC_DST] - s[CC_SRC] - (kind === CC_ADC ? s[CC_SRC2] : 0)) | 0;
      return (a ^ s[CC_SRC] ^ s[CC_DST]) & F_AF;
    }
    case CC_SUB:
    case CC_SBB: {
      const a = (s[CC_DST] + s[CC_SRC] + (kind === CC_SBB ? s[CC_SRC2] : 0)) | 0;
      return (a ^ s[CC_SRC] ^ s[CC_DST]) & F_AF;
    }
    case CC_INC:
      return (s[CC_DST] & 0xf) === 0 ? F_AF : 0;
    case CC_DEC:
      return (s[CC_DST] & 0xf) === 0xf ? F_AF : 0;
  }
  return 0;
}

/** The six arithmetic flags in their EFLAGS positions. */
export function getArithFlags(s: Int32Array): number {
  if (s[CC_OP] >> 2 === CC_EFLAGS) return s[CC_SRC] & (F_CF | F_PF | F_AF | F_ZF | F_SF | F_OF);
  return (
    getCF(s) |
    getPF(s) |
    getAF(s) |
    (getZF(s) << 6) |
    (getSF(s) << 7) |
    (getOF(s) << 11)
  );
}

/** Replaces the lazy state with explicit flags (only the six arithmetic bits are kept). */
export function setArithFlags(s: Int32Array, flags: number): void {
  s[CC_OP] = CC_EFLAGS << 2;
  s[CC_SRC] = flags & (F_CF | F_PF | F_AF | F_ZF | F_SF | F_OF);
}

/** Evaluates condition code cc (0..15, as in Jcc/SETcc/CMOVcc). */
export function testCond(s: Int32Array, cc: number): boolean {
  const op = s[CC_OP];
  // cmp/sub of 32-bit values followed by a signed or unsigned test: compare the operands directly.
  if (op === ((CC_SUB << 2) | SZ32)) {
    const b = s[CC_SRC];
    const d = s[CC_DST];
    const a = (d + b) | 0;
    switch (cc) {
      case 2: return a >>> 0 < b >>> 0;
      case 3: return a >>> 0 >= b >>> 0;
      case 4: return d === 0;
      case 5: return d !== 0;
      case 6: return a >>> 0 <= b >>> 0;
      case 7: return a >>> 0 > b >>> 0;
      case 12: return a < b;
      case 13: return a >= b;
      case 14: return a <= b;
      case 15: return a > b;
    }
  }
  let r: boolean;
  switch (cc >> 1) {
    case 0: r = getOF(s) !== 0; break;
    case 1: r = getCF(s) !== 0; break;
    case 2: r = getZF(s) !== 0; break;
    case 3: r = (getCF(s) | getZF(s)) !== 0; break;
    case 4: r = getSF(s) !== 0; break;
    case 5: r = getPF(s) !== 0; break;
    case 6: r = getSF(s) !== getOF(s); break;
    default: r = getZF(s) !== 0 || getSF(s) !== getOF(s); break;
  }
  return (cc & 1) !== 0 ? !r : r;
}
