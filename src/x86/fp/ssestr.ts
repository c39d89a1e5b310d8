/**
 * SSE4.2 string comparison (PCMPESTRI, PCMPESTRM, PCMPISTRI, PCMPISTRM) and CRC32.
 */
import * as S from "../state.ts";
import { setArithFlags } from "../flags.ts";
import { views } from "./fpstate.ts";
import { type Ctx, type Fn, SCR, xmmWord } from "./sse.ts";

const CRC_TABLE = new Int32Array(256);
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
  CRC_TABLE[i] = c;
}

const A = new Int32Array(16);
const B = new Int32Array(16);

export function compileSseStr(c: Ctx): Fn | null {
  const { s } = c;
  const mn = c.mn;
  if (mn === "crc32") {
    const byteSrc = c.ops[1] === "Eb";
    const size = byteSrc ? 1 : c.rexW ? 8 : c.d.osize === 2 ? 2 : 4;
    const g = c.reg * 2;
    const r = c.rm * 2;
    const isMem = c.isMem;
    const highByte = byteSrc && c.d.highByteRegs && c.rm >= 4 && c.rm < 8;
    return () => {
      let lo: number, hi = 0;
      if (isMem) {
        c.load(size, false);
        lo = s[SCR];
        hi = s[SCR + 1];
      } else if (highByte) lo = s[(c.rm - 4) * 2] >>> 8;
      else {
        lo = s[r];
        hi = s[r + 1];
      }
      let crc = s[g];
      const bytes = size;
      for (let k = 0; k < bytes; k++) {
        const b = k < 4 ? (lo >>> (8 * k)) & 0xff : (hi >>> (8 * (k - 4))) & 0xff;
        crc = CRC_TABLE[(crc ^ b) & 0xff]! ^ (crc >>> 8);
      }
      s[g] = crc;
      s[g + 1] = 0;
      return 0;
    };
  }
  if (!mn.startsWith("pcmp") || !mn.includes("str")) return null;
  const explicit = mn[4] === "e";
  const index = mn.endsWith("i");
  const imm = c.imm;
  const words = (imm & 1) !== 0;
  const signed = (imm & 2) !== 0;
  const agg = (imm >> 2) & 3;
  const pol = (imm >> 4) & 3;
  const msb = (imm & 0x40) !== 0;
  const n = words ? 8 : 16;
  const xr = xmmWord(c.reg);
  const isMem = c.isMem;
  const sw = isMem ? SCR : xmmWord(c.rm);
  const w64 = c.rexW;
  const v = views(s);
  return () => {
    c.sse();
    if (isMem) c.load(16, false);
    const ab = xr * 4;
    const bb = sw * 4;
    for (let k = 0; k < n; k++) {
      if (words) {
        A[k] = signed ? v.i16[(ab >> 1) + k]! : v.u16[(ab >> 1) + k]!;
        B[k] = signed ? v.i16[(bb >> 1) + k]! : v.u16[(bb >> 1) + k]!;
      } else {
        A[k] = signed ? v.i8[ab + k]! : v.u8[ab + k]!;
        B[k] = signed ? v.i8[bb + k]! : v.u8[bb + k]!;
      }
    }
    let la: number, lb: number;
    if (explicit) {
      la = lengthOf(s, S.REG_EAX, w64, n);
      lb = lengthOf(s, S.REG_EDX, w64, n);
    } else {
      la = n;
      for (let k = 0; k < n; k++) if (A[k] === 0) { la = k; break; }
      lb = n;
      for (let k = 0; k < n; k++) if (B[k] === 0) { lb = k; break; }
    }
    // BoolRes(i, j): A[i] against B[j] with the validity overrides.
    const boolRes = (i: number, j: number, ranges: number): boolean => {
      const va = i < la;
      const vb = j < lb;
      if (!va && !vb) return agg === 2 || agg === 3;
      if (!va) return agg === 3;
      if (!vb) return false;
      if (ranges === 1) return B[j]! >= A[i]!;
      if (ranges === 2) return B[j]! <= A[i]!;
      return A[i] === B[j];
    };
    let res1 = 0;
    for (let j = 0; j < n; j++) {
      let r = false;
      switch (agg) {
        case 0:
          for (let i = 0; i < n && !r; i++) r = boolRes(i, j, 0);
          break;
        case 1:
          for (let i = 0; i + 1 < n && !r; i += 2) r = boolRes(i, j, 1) && boolRes(i + 1, j, 2);
          break;
        case 2:
          r = boolRes(j, j, 0);
          break;
        default:
          r = true;
          for (let i = 0; i < n - j && r; i++) r = boolRes(i, j + i, 0);
      }
      if (r) res1 |= 1 << j;
    }
    const all = (1 << n) - 1;
    let res2 = res1;
    if (pol === 1) res2 = ~res1 & all;
    else if (pol === 3) res2 = (res1 ^ ((1 << lb) - 1)) & all;
    if (index) {
      let idx = n;
      if (res2 !== 0) idx = msb ? 31 - Math.clz32(res2) : 31 - Math.clz32(res2 & -res2);
      s[S.REG_ECX * 2] = idx;
      s[S.REG_ECX * 2 + 1] = 0;
    } else {
      const x0 = xmmWord(0);
      if (!msb) {
        s[x0] = res2;
        s[x0 + 1] = 0;
        s[x0 + 2] = 0;
        s[x0 + 3] = 0;
      } else {
        for (let k = 0; k < n; k++) {
          const m = (res2 >> k) & 1 ? -1 : 0;
          if (words) v.i16[((x0 * 4) >> 1) + k] = m;
          else v.i8[x0 * 4 + k] = m;
        }
      }
    }
    let f = 0;
    if (res2 !== 0) f |= S.F_CF;
    if (lb < n) f |= S.F_ZF;
    if (la < n) f |= S.F_SF;
    if (res2 & 1) f |= S.F_OF;
    setArithFlags(s, f);
    return 0;
  };
}

/** |register| saturated to n (explicit-length forms). */
function lengthOf(s: Int32Array, r: number, w64: boolean, n: number): number {
  const lo = s[r * 2];
  if (w64) {
    const hi = s[r * 2 + 1];
    if (hi < 0) {
      // negative 64-bit: |x| = -x
      if (hi !== -1 || lo >= 0 || -lo > n) return n;
      return -lo;
    }
    if (hi !== 0 || lo >>> 0 > n) return n;
    return lo;
  }
  const x = lo < 0 ? -lo : lo;
  if (x >>> 0 > n || x < 0) return n;
  return x;
}
