/**
 * Packed-integer instructions of MMX, SSE2, SSSE3 and SSE4.1 (64-bit MMX and 128-bit XMM
 * forms share one implementation: element loops over typed-array views of the state frame).
 * Results are built in the TMP words and copied to the destination at the end, so a source
 * that is also the destination reads its old value.
 */
import * as S from "../state.ts";
import { setArithFlags } from "../flags.ts";
import { views } from "./fpstate.ts";
import { type Ctx, type Fn, SCR, TMP, mmWord, mmWritten, xmmWord } from "./sse.ts";

const sat8 = (v: number) => (v > 127 ? 127 : Math.max(v , -128));
const sat16 = (v: number) => (v > 32767 ? 32767 : Math.max(v , -32768));
const usat8 = (v: number) => (v > 255 ? 255 : Math.max(v , 0));
const usat16 = (v: number) => (v > 65535 ? 65535 : Math.max(v , 0));

/** Element-wise binary operations: [element bytes, signed view, fn(a, b)]. */
const ELEMENTWISE: Record<string, [number, boolean, (a: number, b: number) => number]> = {
  paddb: [1, false, (a, b) => a + b], paddw: [2, false, (a, b) => a + b], paddd: [4, false, (a, b) => (a + b) | 0],
  psubb: [1, false, (a, b) => a - b], psubw: [2, false, (a, b) => a - b], psubd: [4, false, (a, b) => (a - b) | 0],
  paddsb: [1, true, (a, b) => sat8(a + b)], paddsw: [2, true, (a, b) => sat16(a + b)],
  paddusb: [1, false, (a, b) => usat8(a + b)], paddusw: [2, false, (a, b) => usat16(a + b)],
  psubsb: [1, true, (a, b) => sat8(a - b)], psubsw: [2, true, (a, b) => sat16(a - b)],
  psubusb: [1, false, (a, b) => usat8(a - b)], psubusw: [2, false, (a, b) => usat16(a - b)],
  pmullw: [2, true, (a, b) => Math.imul(a, b)], pmulhw: [2, true, (a, b) => (a * b) >> 16],
  pmulhuw: [2, false, (a, b) => Math.floor((a * b) / 65536)], pmulld: [4, true, (a, b) => Math.imul(a, b)],
  pmulhrsw: [2, true, (a, b) => ((a * b) >> 14) + 1 >> 1],
  pavgb: [1, false, (a, b) => (a + b + 1) >> 1], pavgw: [2, false, (a, b) => (a + b + 1) >> 1],
  pminub: [1, false, Math.min], pmaxub: [1, false, Math.max], pminsw: [2, true, Math.min], pmaxsw: [2, true, Math.max],
  pminsb: [1, true, Math.min], pmaxsb: [1, true, Math.max], pminsd: [4, true, Math.min], pmaxsd: [4, true, Math.max],
  pminuw: [2, false, Math.min], pmaxuw: [2, false, Math.max], pminud: [4, false, Math.min], pmaxud: [4, false, Math.max],
  pcmpeqb: [1, false, (a, b) => (a === b ? -1 : 0)], pcmpeqw: [2, false, (a, b) => (a === b ? -1 : 0)],
  pcmpeqd: [4, false, (a, b) => (a === b ? -1 : 0)], pcmpgtb: [1, true, (a, b) => (a > b ? -1 : 0)],
  pcmpgtw: [2, true, (a, b) => (a > b ? -1 : 0)], pcmpgtd: [4, true, (a, b) => (a > b ? -1 : 0)],
  pand: [4, false, (a, b) => a & b], pandn: [4, false, (a, b) => ~a & b], por: [4, false, (a, b) => a | b],
  pxor: [4, false, (a, b) => a ^ b],
  psignb: [1, true, (a, b) => (b < 0 ? -a : b === 0 ? 0 : a)], psignw: [2, true, (a, b) => (b < 0 ? -a : b === 0 ? 0 : a)],
  psignd: [4, true, (a, b) => (b < 0 ? -a | 0 : b === 0 ? 0 : a)],
  pabsb: [1, true, (_a, b) => Math.abs(b)], pabsw: [2, true, (_a, b) => Math.abs(b)], pabsd: [4, true, (_a, b) => Math.abs(b) | 0],
};

export function compileSseInt(c: Ctx): Fn | null {
  const { s } = c;
  const mn = c.mn;
  const ops = c.ops;
  const mmx = ops.some((o) => o[0] === "P" || o[0] === "N" || o[0] === "Q");
  const isMem = c.isMem;
  const n = mmx ? 8 : 16; // operand bytes
  const dw = mmx ? mmWord(c.reg) : xmmWord(c.reg);
  const sw = isMem ? SCR : mmx ? mmWord(c.rm) : xmmWord(c.rm);
  const v = views(s);
  const check = mmx ? c.mmx : c.sse;
  /** Reads the source (memory into scratch), runs body, writes TMP back to the destination. */
  const wrap = (body: () => void, srcBytes = n, aligned = !mmx): Fn => {
    return () => {
      check();
      if (isMem) c.load(srcBytes, aligned && srcBytes === 16);
      if (mmx) c.enterMmx();
      body();
      for (let k = 0; k < n / 4; k++) s[dw + k] = s[TMP + k];
      if (mmx) mmWritten(s, c.reg);
      return 0;
    };
  };
  const ew = ELEMENTWISE[mn];
  if (ew) {
    const [size, signed, fn] = ew;
    const cnt = n / size;
    const arr = size === 1 ? (signed ? v.i8 : v.u8) : size === 2 ? (signed ? v.i16 : v.u16) : signed ? v.i32 : v.u32;
    const sh = size === 1 ? 0 : size === 2 ? 1 : 2;
    const dI = (dw * 4) >> sh;
    const sI = (sw * 4) >> sh;
    const tI = (TMP * 4) >> sh;
    return wrap(() => {
      for (let k = 0; k < cnt; k++) arr[tI + k] = fn(arr[dI + k]!, arr[sI + k]!);
    });
  }
  const u8 = v.u8, i8 = v.i8, u16 = v.u16, i16 = v.i16, i32 = v.i32, u32 = v.u32;
  const dB = dw * 4;
  const sB = sw * 4;
  const tB = TMP * 4;
  switch (mn) {
    case "paddq": case "psubq":
      return wrap(() => {
        for (let k = 0; k < n / 8; k++) {
          const a = dw + k * 2, b = sw + k * 2, t = TMP + k * 2;
          const al = s[a] >>> 0, bl = s[b] >>> 0;
          if (mn === "paddq") {
            const l = al + bl;
            s[t] = l | 0;
            s[t + 1] = (s[a + 1] + s[b + 1] + (l > 0xffffffff ? 1 : 0)) | 0;
          } else {
            const l = al - bl;
            s[t] = l | 0;
            s[t + 1] = (s[a + 1] - s[b + 1] - (l < 0 ? 1 : 0)) | 0;
          }
        }
      });
    case "pcmpeqq": case "pcmpgtq":
      return wrap(() => {
        for (let k = 0; k < 2; k++) {
          const a = dw + k * 2, b = sw + k * 2, t = TMP + k * 2;
          let r: boolean;
          if (mn === "pcmpeqq") r = s[a] === s[b] && s[a + 1] === s[b + 1];
          else r = s[a + 1] > s[b + 1] || (s[a + 1] === s[b + 1] && s[a] >>> 0 > s[b] >>> 0);
          s[t] = r ? -1 : 0;
          s[t + 1] = r ? -1 : 0;
        }
      });
    case "pmuludq": case "pmuldq":
      return wrap(() => {
        for (let k = 0; k < n / 8; k++) {
          const a = s[dw + k * 2], b = s[sw + k * 2];
          mul32(a, b, mn === "pmuldq");
          s[TMP + k * 2] = MLO;
          s[TMP + k * 2 + 1] = MHI;
        }
      });
    case "pmaddwd":
      return wrap(() => {
        for (let k = 0; k < n / 4; k++) {
          const a0 = i16[(dB >> 1) + 2 * k]!, a1 = i16[(dB >> 1) + 2 * k + 1]!;
          const b0 = i16[(sB >> 1) + 2 * k]!, b1 = i16[(sB >> 1) + 2 * k + 1]!;
          s[TMP + k] = (a0 * b0 + a1 * b1) | 0;
        }
      });
    case "pmaddubsw":
      return wrap(() => {
        for (let k = 0; k < n / 2; k++) {
          const r = u8[dB + 2 * k]! * i8[sB + 2 * k]! + u8[dB + 2 * k + 1]! * i8[sB + 2 * k + 1]!;
          i16[(tB >> 1) + k] = sat16(r);
        }
      });
    case "psadbw":
      return wrap(() => {
        for (let q = 0; q < n / 8; q++) {
          let sum = 0;
          for (let k = 0; k < 8; k++) sum += Math.abs(u8[dB + q * 8 + k]! - u8[sB + q * 8 + k]!);
          s[TMP + q * 2] = sum;
          s[TMP + q * 2 + 1] = 0;
        }
      });
    case "phaddw": case "phsubw": case "phaddsw": case "phsubsw": case "phaddd": case "phsubd": {
      const dword = mn.endsWith("d");
      const sub = mn.startsWith("phsub");
      const sat = mn.endsWith("sw");
      const per = n / (dword ? 8 : 4); // results per operand
      return wrap(() => {
        for (let half = 0; half < 2; half++) {
          const base = half === 0 ? dB : sB;
          for (let k = 0; k < per; k++) {
            if (dword) {
              const a = i32[(base >> 2) + 2 * k]!, b = i32[(base >> 2) + 2 * k + 1]!;
              i32[(tB >> 2) + half * per + k] = sub ? a - b : a + b;
            } else {
              const a = i16[(base >> 1) + 2 * k]!, b = i16[(base >> 1) + 2 * k + 1]!;
              const r = sub ? a - b : a + b;
              i16[(tB >> 1) + half * per + k] = sat ? sat16(r) : r;
            }
          }
        }
      });
    }
    case "packsswb": case "packuswb": case "packssdw": case "packusdw": {
      const fromD = mn.endsWith("dw");
      const uns = mn[4] === "u";
      const per = n / (fromD ? 4 : 2); // elements per operand
      return wrap(() => {
        for (let half = 0; half < 2; half++) {
          const base = half === 0 ? dB : sB;
          for (let k = 0; k < per; k++) {
            if (fromD) {
              const x = i32[(base >> 2) + k]!;
              i16[(tB >> 1) + half * per + k] = uns ? usat16(x) : sat16(x);
            } else {
              const x = i16[(base >> 1) + k]!;
              u8[tB + half * per + k] = uns ? usat8(x) : sat8(x) & 0xff;
            }
          }
        }
      });
    }
    case "punpcklbw": case "punpcklwd": case "punpckldq": case "punpcklqdq":
    case "punpckhbw": case "punpckhwd": case "punpckhdq": case "punpckhqdq": {
      const size = mn.endsWith("qdq") ? 8 : mn.endsWith("dq") ? 4 : mn.endsWith("wd") ? 2 : 1;
      const high = mn[6] === "h";
      const cnt = n / size / 2; // elements taken from each
      // MMX low unpacks read only 32 bits of a memory source.
      const srcBytes = mmx && !high ? 4 : n;
      return wrap(() => {
        const off = high ? cnt * size : 0;
        for (let k = 0; k < cnt; k++) {
          for (let b = 0; b < size; b++) {
            u8[tB + 2 * k * size + b] = u8[dB + off + k * size + b]!;
            u8[tB + (2 * k + 1) * size + b] = u8[sB + off + k * size + b]!;
          }
        }
      }, srcBytes, !(mmx && !high));
    }
    case "pshufb":
      return wrap(() => {
        for (let k = 0; k < n; k++) {
          const m = u8[sB + k]!;
          u8[tB + k] = m & 0x80 ? 0 : u8[dB + (m & (n - 1))]!;
        }
      });
    case "pshufd": case "pshufhw": case "pshuflw": case "pshufw": {
      const imm = c.imm;
      return wrap(() => {
        if (mn === "pshufd") {
          for (let k = 0; k < 4; k++) s[TMP + k] = s[sw + ((imm >> (2 * k)) & 3)];
        } else if (mn === "pshufw") {
          for (let k = 0; k < 4; k++) u16[(tB >> 1) + k] = u16[(sB >> 1) + ((imm >> (2 * k)) & 3)]!;
        } else {
          const hi = mn === "pshufhw" ? 4 : 0;
          for (let k = 0; k < 8; k++) u16[(tB >> 1) + k] = u16[(sB >> 1) + k]!;
          for (let k = 0; k < 4; k++) u16[(tB >> 1) + hi + k] = u16[(sB >> 1) + hi + ((imm >> (2 * k)) & 3)]!;
        }
      });
    }
    case "palignr": {
      const imm = c.imm;
      return wrap(() => {
        // (dst:src) >> imm bytes
        for (let k = 0; k < n; k++) {
          const i = k + imm;
          u8[tB + k] = i < n ? u8[sB + i]! : i < 2 * n ? u8[dB + i - n]! : 0;
        }
      });
    }
    case "pblendw": {
      const imm = c.imm;
      return wrap(() => {
        for (let k = 0; k < 8; k++) u16[(tB >> 1) + k] = (imm >> k) & 1 ? u16[(sB >> 1) + k]! : u16[(dB >> 1) + k]!;
      });
    }
    case "pblendvb": {
      const x0 = xmmWord(0) * 4;
      return wrap(() => {
        for (let k = 0; k < 16; k++) u8[tB + k] = u8[x0 + k]! & 0x80 ? u8[sB + k]! : u8[dB + k]!;
      });
    }
    case "mpsadbw": {
      const imm = c.imm;
      return wrap(() => {
        const aOff = ((imm >> 2) & 1) * 4;
        const bOff = (imm & 3) * 4;
        for (let k = 0; k < 8; k++) {
          let sum = 0;
          for (let j = 0; j < 4; j++) sum += Math.abs(u8[dB + aOff + k + j]! - u8[sB + bOff + j]!);
          u16[(tB >> 1) + k] = sum;
        }
      });
    }
    case "phminposuw":
      return wrap(() => {
        let best = 0;
        for (let k = 1; k < 8; k++) if (u16[(sB >> 1) + k]! < u16[(sB >> 1) + best]!) best = k;
        s[TMP] = u16[(sB >> 1) + best]! | (best << 16);
        s[TMP + 1] = 0;
        s[TMP + 2] = 0;
        s[TMP + 3] = 0;
      });
    case "pmovsxbw": case "pmovsxbd": case "pmovsxbq": case "pmovsxwd": case "pmovsxwq": case "pmovsxdq":
    case "pmovzxbw": case "pmovzxbd": case "pmovzxbq": case "pmovzxwd": case "pmovzxwq": case "pmovzxdq": {
      const sx = mn[4] === "s";
      const from = mn[6] === "b" ? 1 : mn[6] === "w" ? 2 : 4;
      const to = mn[7] === "w" ? 2 : mn[7] === "d" ? 4 : 8;
      const cnt = 16 / to;
      return wrap(() => {
        for (let k = 0; k < cnt; k++) {
          let x = from === 1 ? (sx ? i8[sB + k]! : u8[sB + k]!) : from === 2 ? (sx ? i16[(sB >> 1) + k]! : u16[(sB >> 1) + k]!) : sx ? i32[(sB >> 2) + k]! : u32[(sB >> 2) + k]!;
          if (to === 2) i16[(tB >> 1) + k] = x;
          else if (to === 4) i32[(tB >> 2) + k] = x;
          else {
            x = x | 0;
            s[TMP + 2 * k] = x;
            s[TMP + 2 * k + 1] = sx ? x >> 31 : 0;
          }
        }
      }, (16 / to) * from, false);
    }
    case "ptest":
      return () => {
        c.sse();
        if (isMem) c.load(16, true);
        let zf = true;
        let cf = true;
        for (let k = 0; k < 4; k++) {
          if ((s[dw + k] & s[sw + k]) !== 0) zf = false;
          if ((~s[dw + k] & s[sw + k]) !== 0) cf = false;
        }
        setArithFlags(s, (zf ? S.F_ZF : 0) | (cf ? S.F_CF : 0));
        return 0;
      };
    // ---- shifts
    case "psrlw": case "psraw": case "psllw": case "psrld": case "psrad": case "pslld": case "psrlq": case "psllq": {
      const size = mn[4] === "w" ? 2 : mn[4] === "d" ? 4 : 8;
      const kind = mn[2] === "l" ? 0 : mn[3] === "a" ? 2 : 1; // 0 left, 1 logical right, 2 arithmetic right
      const byImm = ops[1] === "Ib";
      if (byImm && isMem) return null;
      const target = byImm ? (mmx ? mmWord(c.rm) : xmmWord(c.rm)) : dw;
      const tgtReg = byImm ? c.rm : c.reg;
      const immCount = c.imm;
      return () => {
        check();
        let count: number;
        if (byImm) count = immCount;
        else {
          if (isMem) c.load(n, !mmx);
          count = s[sw + 1] !== 0 || s[sw] >>> 0 > 255 ? 255 : s[sw];
        }
        if (mmx) c.enterMmx();
        shiftLanes(s, target, n, size, kind, count);
        if (mmx) mmWritten(s, tgtReg);
        return 0;
      };
    }
    case "psrldq": case "pslldq": {
      if (isMem) return null;
      const t = xmmWord(c.rm);
      const cnt = c.imm;
      const left = mn === "pslldq";
      return () => {
        c.sse();
        const b = t * 4;
        for (let k = 0; k < 16; k++) {
          const i = left ? k - cnt : k + cnt;
          u8[tB + k] = i >= 0 && i < 16 ? u8[b + i]! : 0;
        }
        for (let k = 0; k < 4; k++) s[t + k] = s[TMP + k];
        return 0;
      };
    }
    // ---- element insert/extract
    case "pinsrw": case "pinsrb": case "pinsrd": {
      const size = mn === "pinsrb" ? 1 : mn === "pinsrw" ? 2 : c.rexW ? 8 : 4;
      const lanes = n / size;
      const idx = c.imm & (lanes - 1);
      const g = c.rm * 2;
      return () => {
        check();
        let lo: number, hi = 0;
        if (isMem) {
          c.load(size, false);
          lo = s[SCR];
          hi = s[SCR + 1];
        } else {
          lo = s[g];
          hi = s[g + 1];
        }
        if (mmx) c.enterMmx();
        if (size === 1) u8[dB + idx] = lo;
        else if (size === 2) u16[(dB >> 1) + idx] = lo;
        else if (size === 4) s[dw + idx] = lo;
        else { s[dw + idx * 2] = lo; s[dw + idx * 2 + 1] = hi; }
        if (mmx) mmWritten(s, c.reg);
        return 0;
      };
    }
    case "pextrw": case "pextrb": case "pextrd": {
      // 0F C5 / 66 0F C5: Gd,Nq/Ux (register only); 66 0F 3A 14/15/16: Ed,Vx (register or memory)
      const legacy = ops[0] === "Gd";
      const size = mn === "pextrb" ? 1 : mn === "pextrw" ? 2 : c.rexW ? 8 : 4;
      if (legacy && isMem) return null;
      const srcW = legacy ? (mmx ? mmWord(c.rm) : xmmWord(c.rm)) : xmmWord(c.reg);
      const lanes = n / size;
      const idx = c.imm & (lanes - 1);
      const g = (legacy ? c.reg : c.rm) * 2;
      const sb = srcW * 4;
      return () => {
        check();
        let lo: number, hi = 0;
        if (size === 1) lo = u8[sb + idx]!;
        else if (size === 2) lo = u16[(sb >> 1) + idx]!;
        else if (size === 4) lo = s[srcW + idx];
        else { lo = s[srcW + idx * 2]; hi = s[srcW + idx * 2 + 1]; }
        if (!legacy && isMem) {
          s[SCR] = lo;
          s[SCR + 1] = hi;
          c.store(size, SCR, false);
          return 0;
        }
        if (mmx) c.enterMmx();
        s[g] = lo;
        s[g + 1] = hi;
        return 0;
      };
    }
    case "pmovmskb": {
      if (isMem) return null;
      const g = c.reg * 2;
      const src = (mmx ? mmWord(c.rm) : xmmWord(c.rm)) * 4;
      return () => {
        check();
        if (mmx) c.enterMmx();
        let m = 0;
        for (let k = 0; k < n; k++) m |= (u8[src + k]! >> 7) << k;
        s[g] = m;
        s[g + 1] = 0;
        return 0;
      };
    }
  }
  return null;
}

let MLO = 0;
let MHI = 0;
/** 32x32 -> 64-bit product (signed or unsigned) into MHI:MLO. */
function mul32(a: number, b: number, signed: boolean): void {
  let neg = false;
  let x = a >>> 0;
  let y = b >>> 0;
  if (signed) {
    if (a < 0) { x = -a >>> 0; neg = !neg; }
    if (b < 0) { y = -b >>> 0; neg = !neg; }
    if (a === (0x80000000 | 0)) x = 0x80000000;
    if (b === (0x80000000 | 0)) y = 0x80000000;
  }
  const xl = x & 0xffff, xh = x >>> 16, yl = y & 0xffff, yh = y >>> 16;
  const ll = xl * yl;
  const m = xh * yl + xl * yh; // < 2^33
  const hh = xh * yh;
  // total = hh*2^32 + m*2^16 + ll
  const mLow = (m % 65536) * 65536;
  let lo = ll + mLow;
  let hi = hh + Math.floor(m / 65536);
  if (lo >= 4294967296) {
    lo -= 4294967296;
    hi += 1;
  }
  MLO = lo | 0;
  MHI = hi | 0;
  if (neg) {
    const nl = (0 - (MLO >>> 0)) | 0;
    MHI = (~MHI + (MLO === 0 ? 1 : 0)) | 0;
    MLO = nl;
  }
}

/** Shifts every lane of the register at word w (n bytes) by count. */
function shiftLanes(s: Int32Array, w: number, n: number, size: number, kind: number, count: number): void {
  const v = views(s);
  if (size === 8) {
    for (let k = 0; k < n / 8; k++) {
      const lo = s[w + 2 * k] >>> 0;
      const hi = s[w + 2 * k + 1] >>> 0;
      let rl: number, rh: number;
      if (count >= 64) { rl = 0; rh = 0; }
      else if (count === 0) { rl = lo; rh = hi; }
      else if (kind === 0) {
        if (count >= 32) { rh = lo << (count - 32); rl = 0; }
        else { rh = (hi << count) | (lo >>> (32 - count)); rl = lo << count; }
      } else if (count >= 32) { rl = hi >>> (count - 32); rh = 0; }
      else { rl = (lo >>> count) | (hi << (32 - count)); rh = hi >>> count; }
      s[w + 2 * k] = rl;
      s[w + 2 * k + 1] = rh;
    }
    return;
  }
  const bits = size * 8;
  if (size === 2) {
    const base = (w * 4) >> 1;
    for (let k = 0; k < n / 2; k++) {
      const x = v.i16[base + k]!;
      if (kind === 2) v.i16[base + k] = count >= 16 ? x >> 15 : x >> count;
      else if (count >= bits) v.i16[base + k] = 0;
      else v.i16[base + k] = kind === 0 ? x << count : (x & 0xffff) >>> count;
    }
  } else {
    for (let k = 0; k < n / 4; k++) {
      const x = s[w + k];
      if (kind === 2) s[w + k] = count >= 32 ? x >> 31 : x >> count;
      else if (count >= bits) s[w + k] = 0;
      else s[w + k] = kind === 0 ? x << count : x >>> count;
    }
  }
}
