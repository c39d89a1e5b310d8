/**
 * The x87 floating-point unit: closures for the escape opcodes D8-DF and FWAIT.
 *
 * Invariants:
 * - Registers are 80-bit values in the state frame (see fpstate.ts: physical slots, TOP in
 *   FSW); arithmetic goes through softfloat.ts, exact for every precision and rounding
 *   control; nothing here uses JavaScript floating point except the transcendental
 *   functions (transcend.ts).
 * - Every check and memory read that can fault comes first; a store to memory is probed
 *   (probeWrite) before anything is written; registers and the status word change last.
 * - Exceptions: flags go to FSW; masked ones deliver the IEEE default result; an unmasked
 *   IE/DE/ZE leaves the destination alone, an unmasked OE/UE delivers the exponent-wrapped
 *   result (register destinations) or stores nothing (memory); either way ES and B are set
 *   and the next waiting x87/MMX instruction raises #MF (or FERR#, see fpstate.ts).
 */
import type { Cpu } from "../cpu.ts";
import type { Insn } from "../decoder.ts";
import { eaHigh, makeEA } from "../compile.ts";
import { setArithFlags } from "../flags.ts";
import * as S from "../state.ts";
import {
  ADDR_HI, FX, FX_FCS, FX_FDP, FX_FDS, FX_FIP, FX_REGS, FX_TAG_OP, SW_B, SW_C0, SW_C1, SW_C2, SW_C3, SW_ES, SW_SF,
  addrAdd, checkWrap, mathFault,
} from "./fpstate.ts";
import * as SF from "./softfloat.ts";
import { F } from "./softfloat.ts";
import { transcendental } from "./transcend.ts";

type Fn = () => number;

const IE = 1;
const DE = 2;
const ZE = 4;
const OE = 8;
const UE = 16;
const PE = 32;

// ------------------------------------------------------------------ state access

export function fcw(s: Int32Array): number {
  return s[FX] & 0xffff;
}
export function fsw(s: Int32Array): number {
  return s[FX] >>> 16;
}
export function setFsw(s: Int32Array, v: number): void {
  s[FX] = (s[FX] & 0xffff) | ((v & 0xffff) << 16);
}
export function setFcw(s: Int32Array, v: number): void {
  s[FX] = (s[FX] & ~0xffff) | (v & 0xffff);
}
export function getTop(s: Int32Array): number {
  return (s[FX] >>> 27) & 7;
}
function setTop(s: Int32Array, t: number): void {
  s[FX] = (s[FX] & ~(7 << 27)) | ((t & 7) << 27);
}
/** Word index of ST(i). */
function stw(s: Int32Array, i: number): number {
  return FX_REGS + (((s[FX] >>> 27) + i) & 7) * 4;
}
function isEmpty(s: Int32Array, i: number): boolean {
  return ((s[FX_TAG_OP] >>> (((s[FX] >>> 27) + i) & 7)) & 1) === 0;
}
function setTagEmpty(s: Int32Array, phys: number): void {
  s[FX_TAG_OP] &= ~(1 << phys);
}
/** Full 2-bit tag of physical register p (00 valid, 01 zero, 10 special, 11 empty). */
function fullTag(s: Int32Array, p: number): number {
  if (((s[FX_TAG_OP] >>> p) & 1) === 0) return 3;
  const w = FX_REGS + p * 4;
  const e = s[w + 2] & 0x7fff;
  const hi = s[w + 1];
  const lo = s[w];
  if (e === 0x7fff) return 2;
  if (e === 0) return (hi | lo) === 0 ? 1 : 2;
  return hi < 0 ? 0 : 2;
}
export function fullTagWord(s: Int32Array): number {
  let t = 0;
  for (let p = 0; p < 8; p++) t |= fullTag(s, p) << (2 * p);
  return t;
}
/** Abridged tag from a full tag word. */
export function abridgeTag(t: number): number {
  let a = 0;
  for (let p = 0; p < 8; p++) if (((t >>> (2 * p)) & 3) !== 3) a |= 1 << p;
  return a;
}

/** Control bits for softfloat from FCW; `pcOverride` forces 64-bit precision. */
function ctlOf(cw: number, usePc: boolean): number {
  let c = ((cw >> 10) & 3) | (usePc ? ((cw >> 8) & 3) << 2 : 3 << 2) | SF.CTL_X87;
  if ((cw & UE) === 0) c |= SF.CTL_UE_UNMASKED;
  if ((cw & OE) === 0) c |= SF.CTL_OE_UNMASKED;
  return c;
}

/** Re-derives ES and B from the flags and masks (FLDCW, FLDENV, FRSTOR, FXRSTOR, FCLEX). */
export function updateES(s: Int32Array): void {
  const sw = fsw(s);
  const cw = fcw(s);
  if ((sw & ~cw & 0x3f) !== 0) setFsw(s, sw | SW_ES | SW_B);
  else setFsw(s, sw & ~(SW_ES | SW_B));
}

export function fninit(s: Int32Array): void {
  s[FX] = 0x037f; // FSW = 0
  s[FX_TAG_OP] = 0;
  s[FX_FIP] = 0;
  s[FX_FIP + 1] = 0;
  s[FX_FDP] = 0;
  s[FX_FDP + 1] = 0;
  s[FX_FCS] = 0;
  s[FX_FDS] = 0;
}

// ------------------------------------------------------------------ conversions of memory operands

/** Raw extended fields of the last widen*(): */
let Wse = 0;
let Whi = 0;
let Wlo = 0;

/** Widens an IEEE single to extended fields without rounding or quieting; DE for denormals. */
function widenF32(w: number): number {
  const sign = (w >>> 31) << 15;
  const e = (w >>> 23) & 0xff;
  const f = w & 0x7fffff;
  let flags = 0;
  if (e === 0) {
    if (f === 0) {
      Wse = sign; Whi = 0; Wlo = 0;
    } else {
      const n = Math.clz32(f) - 8; // shift to put the top bit at bit 23
      Whi = (f << (8 + n)) | 0;
      Wlo = 0;
      Wse = sign | (16383 - 126 - n);
      flags = DE;
    }
  } else if (e === 0xff) {
    Wse = sign | 0x7fff; Whi = (0x80000000 | (f << 8)) | 0; Wlo = 0;
  } else {
    Wse = sign | (e + 16383 - 127); Whi = (0x80000000 | (f << 8)) | 0; Wlo = 0;
  }
  return flags;
}

function widenF64(hi: number, lo: number): number {
  const sign = (hi >>> 31) << 15;
  const e = (hi >>> 20) & 0x7ff;
  let fh = ((hi & 0xfffff) << 11) | (lo >>> 21);
  let fl = lo << 11;
  let flags = 0;
  if (e === 0) {
    if ((fh | fl) === 0) {
      Wse = sign; Whi = 0; Wlo = 0;
    } else {
      const n = fh !== 0 ? Math.clz32(fh) : 32 + Math.clz32(fl);
      if (n >= 32) {
        fh = fl << (n - 32);
        fl = 0;
      } else {
        fh = (fh << n) | (fl >>> (32 - n));
        fl <<= n;
      }
      Whi = fh; Wlo = fl;
      Wse = sign | (16383 - 1022 - n);
      flags = DE;
    }
  } else if (e === 0x7ff) {
    Wse = sign | 0x7fff; Whi = fh | 0x80000000; Wlo = fl;
  } else {
    Wse = sign | (e + 16383 - 1023); Whi = fh | 0x80000000; Wlo = fl;
  }
  return flags;
}

/** Widens a signed integer (hi, lo as 64 bits) to extended fields (exact). */
function widenInt(hi: number, lo: number): void {
  SF.fromInt64(hi, lo, SF.FMT_EXT, 0xc);
  Wse = F.se; Whi = F.hi; Wlo = F.lo;
}

// ------------------------------------------------------------------ constants

// 64-bit significands rounded to nearest, and whether the true value is above (+1) or below (-1).
const CONSTS: [number, number, number, number][] = [
  // se, hi, lo, direction of the rounding-to-nearest error
  [0x3fff, 0x80000000, 0, 0], // 1
  [0x4000, 0xd49a784b, 0xcd1b8afe, 1], // log2(10): true value above
  [0x3fff, 0xb8aa3b29, 0x5c17f0bc, -1], // log2(e): true value below
  [0x4000, 0xc90fdaa2, 0x2168c235, -1], // pi
  [0x3ffd, 0x9a209a84, 0xfbcff799, -1], // log10(2)
  [0x3ffe, 0xb17217f7, 0xd1cf79ac, -1], // ln(2)
  [0, 0, 0, 0], // +0
];

// ------------------------------------------------------------------ the compiler

export function compileX87(cpu: Cpu, d: Insn, eipLo: number, eipHi: number, nextLo: number, nextHi: number): Fn | null {
  const s = cpu.s;
  const op = d.opcode;
  const modrm = d.modrm;
  const mod = modrm >> 6;
  const reg = (modrm >> 3) & 7;
  const rm = modrm & 7;
  const isMem = mod !== 3;
  const fop = ((op & 7) << 8) | modrm;
  const seg = d.seg;
  const asize = d.asize;
  const osize = d.osize;
  const code64 = cpu.code64;
  const ea = isMem ? makeEA(cpu, d, nextLo, nextHi) : null;
  const csSel = () => s[S.segWord(S.SEG_CS, S.SEG_SEL)] & 0xffff;
  void eipHi;

  // ---- prologue helpers
  /** #NM / pending #MF checks of a waiting instruction. */
  const pre = (): void => {
    if ((s[S.CR0] & (S.CR0_EM | S.CR0_TS)) !== 0) cpu.fault(S.VEC_NM);
    if ((s[FX] & (SW_ES << 16)) !== 0) mathFault(cpu);
  };
  const preNoWait = (): void => {
    if ((s[S.CR0] & (S.CR0_EM | S.CR0_TS)) !== 0) cpu.fault(S.VEC_NM);
  };
  /** Records FIP/FCS/FOP (and FDP/FDS for memory operands) of a non-control instruction. */
  const ripLo = eipLo;
  const ripHi = code64 ? eipHi : 0;
  const noteIp = (): void => {
    s[FX_FIP] = ripLo;
    s[FX_FIP + 1] = ripHi;
    s[FX_FCS] = csSel();
    s[FX_TAG_OP] = (s[FX_TAG_OP] & 0xffff) | (fop << 16);
  };
  const noteDp = (lo: number, hi: number): void => {
    s[FX_FDP] = lo;
    s[FX_FDP + 1] = code64 ? hi : 0;
    s[FX_FDS] = s[S.segWord(seg, S.SEG_SEL)] & 0xffff;
  };

  /**
   * Ends an operation: merges `flags` into FSW, sets C1 from `up` (-1: leaves C1), and
   * ES/B for unmasked exceptions. Returns true if the result may be written (no unmasked
   * IE/DE/ZE).
   */
  const commit = (flags: number, up: number): boolean => {
    const cw = s[FX] & 0xffff;
    let sw = (s[FX] >>> 16) | flags;
    if (up >= 0) sw = (sw & ~SW_C1) | (up ? SW_C1 : 0);
    const unmasked = flags & ~cw & 0x3f;
    if (unmasked !== 0) sw |= SW_ES | SW_B;
    s[FX] = (s[FX] & 0xffff) | (sw << 16);
    return (unmasked & (IE | DE | ZE)) === 0;
  };
  /** Stack underflow (an empty operand): IE|SF, C1 = 0. Returns true if masked (write indefinite). */
  const underflow = (): boolean => {
    const cw = s[FX] & 0xffff;
    let sw = ((s[FX] >>> 16) | IE | SW_SF) & ~SW_C1;
    if ((cw & IE) === 0) sw |= SW_ES | SW_B;
    s[FX] = (s[FX] & 0xffff) | (sw << 16);
    return (cw & IE) !== 0;
  };
  /** Stack overflow (push onto a full register): IE|SF, C1 = 1. Returns true if masked. */
  const overflow = (): boolean => {
    const cw = s[FX] & 0xffff;
    let sw = (s[FX] >>> 16) | IE | SW_SF | SW_C1;
    if ((cw & IE) === 0) sw |= SW_ES | SW_B;
    s[FX] = (s[FX] & 0xffff) | (sw << 16);
    return (cw & IE) !== 0;
  };
  const writeST = (i: number, se: number, hi: number, lo: number): void => {
    const p = ((s[FX] >>> 27) + i) & 7;
    const w = FX_REGS + p * 4;
    s[w] = lo;
    s[w + 1] = hi;
    s[w + 2] = se & 0xffff;
    s[FX_TAG_OP] |= 1 << p;
  };
  const writeIndef = (i: number): void => writeST(i, 0xffff, 0xc0000000 | 0, 0);
  const pop = (): void => {
    const t = (s[FX] >>> 27) & 7;
    s[FX_TAG_OP] &= ~(1 << t);
    s[FX] = (s[FX] & ~(7 << 27)) | (((t + 1) & 7) << 27);
  };
  /** Pushes (TOP-1) with a value; handles stack overflow. */
  const push = (se: number, hi: number, lo: number): void => {
    const t = (((s[FX] >>> 27) & 7) - 1) & 7;
    if (((s[FX_TAG_OP] >>> t) & 1) !== 0) {
      if (!overflow()) return;
      se = 0xffff; hi = 0xc0000000 | 0; lo = 0;
    }
    s[FX] = (s[FX] & ~(7 << 27)) | (t << 27);
    const w = FX_REGS + t * 4;
    s[w] = lo;
    s[w + 1] = hi;
    s[w + 2] = se & 0xffff;
    s[FX_TAG_OP] |= 1 << t;
  };
  const clearC1 = (): void => {
    s[FX] &= ~(SW_C1 << 16);
  };

  // ---- memory operand readers (return raw fields in Wse/Whi/Wlo; flags from widening)
  let mLo = 0;
  let mHi = 0;
  const addr = (): void => {
    mLo = ea!();
    mHi = eaHigh();
  };
  const readM32 = (): number => widenF32(cpu.rd32(seg, mLo, mHi));
  const readM64 = (): number => {
    const lo = cpu.rd64(seg, mLo, mHi);
    return widenF64(cpu.hi, lo);
  };
  const readM80 = (): void => {
    checkWrap(cpu, seg, mLo, 10);
    const lo = cpu.rd64(seg, mLo, mHi);
    const hi = cpu.hi;
    const a = addrAdd(mLo, mHi, 8, asize);
    Wse = cpu.rd16(seg, a, ADDR_HI);
    Whi = hi;
    Wlo = lo;
  };
  const readI32 = (): void => {
    const v = cpu.rd32(seg, mLo, mHi);
    widenInt(v >> 31, v);
  };
  const readI64 = (): void => {
    const lo = cpu.rd64(seg, mLo, mHi);
    widenInt(cpu.hi, lo);
  };
  const readInt16 = (): void => {
    const v = (cpu.rd16(seg, mLo, mHi) << 16) >> 16;
    widenInt(v >> 31, v);
  };

  /** Reads the memory operand of an arithmetic form: kind 0 m32real, 1 m32int, 2 m64real, 3 m16int. */
  const readArith = (kind: number): number => {
    addr();
    switch (kind) {
      case 0: return readM32();
      case 1: readI32(); return 0;
      case 2: return readM64();
      default: readInt16(); return 0;
    }
  };

  // ---- arithmetic core: result = op(a, b) into ST(dst); a, b raw fields; returns flags
  /** op: 0 add 1 mul 4 sub 5 subr 6 div 7 divr (the /reg numbering of D8). */
  const arith = (opk: number, ase: number, ahi: number, alo: number, bse: number, bhi: number, blo: number, dst: number, popAfter: boolean, extraFlags: number): void => {
    const cw = s[FX] & 0xffff;
    // Fast path: precision control 53 bits, round to nearest, all exceptions masked, ADD/SUB/
    // MUL of values that are doubles: JavaScript arithmetic is then exact for the result;
    // PE and C1 come from the exact error (TwoSum, Dekker).
    if ((cw & 0x0f3f) === 0x023f && opk !== 6 && opk !== 7 && extraFlags === 0 && fastArith(opk, ase, ahi, alo, bse, bhi, blo)) {
      let sw = (s[FX] >>> 16) & ~SW_C1;
      if (FAST_PE) sw |= PE | (FAST_UP ? SW_C1 : 0);
      s[FX] = (s[FX] & 0xffff) | (sw << 16);
      writeST(dst, FAST_SE, FAST_HI, FAST_LO);
      if (popAfter) pop();
      return;
    }
    const ctl = ctlOf(cw, true);
    SF.clearUnpackFlags();
    F.flags = 0;
    F.up = 0;
    const rev = opk === 5 || opk === 7;
    if (rev) {
      SF.unpackExt(0, bse, bhi, blo);
      SF.unpackExt(1, ase, ahi, alo);
    } else {
      SF.unpackExt(0, ase, ahi, alo);
      SF.unpackExt(1, bse, bhi, blo);
    }
    // A denormal operand with a NaN or unsupported other operand does not raise DE.
    const den = SF.unpackFlags | extraFlags;
    switch (opk) {
      case 0: SF.add(0, SF.FMT_EXT, ctl); break;
      case 1: SF.mul(SF.FMT_EXT, ctl); break;
      case 4: case 5: SF.add(1, SF.FMT_EXT, ctl); break;
      default: SF.div(SF.FMT_EXT, ctl); break;
    }
    let flags = F.flags;
    // DE: for a denormal operand, unless the operation is invalid, has a NaN operand or
    // divides by zero (host behaviour). An unmasked DE stops the operation before it computes.
    let up = F.up;
    if (den !== 0 && (flags & (IE | ZE)) === 0 && !(SF.Ac >= SF.C_QNAN || SF.Bc >= SF.C_QNAN)) {
      if ((cw & DE) === 0) {
        flags = DE;
        up = 0;
      } else flags |= DE;
    }
    const ok = commit(flags, up);
    if (ok) {
      writeST(dst, F.se, F.hi, F.lo);
      if (popAfter) pop();
    }
  };

  const stRaw = (i: number): void => {
    const w = stw(s, i);
    Wlo = s[w];
    Whi = s[w + 1];
    Wse = s[w + 2] & 0xffff;
  };

  // ---- comparisons: sets C3 C2 C0 (or ZF PF CF)
  const cmpCore = (ase: number, ahi: number, alo: number, bse: number, bhi: number, blo: number, signaling: boolean, extraFlags: number): number => {
    SF.clearUnpackFlags();
    F.flags = 0;
    SF.unpackExt(0, ase, ahi, alo);
    SF.unpackExt(1, bse, bhi, blo);
    const r = SF.compare(signaling);
    let flags = F.flags;
    if (r !== 3) flags |= SF.unpackFlags | extraFlags;
    F.flags = flags;
    return r;
  };
  const CC_OF = [SW_C0, SW_C3, 0, SW_C0 | SW_C2 | SW_C3];
  const setCC = (r: number): void => {
    const sw = ((s[FX] >>> 16) & ~(SW_C0 | SW_C1 | SW_C2 | SW_C3)) | CC_OF[r];
    s[FX] = (s[FX] & 0xffff) | (sw << 16);
  };
  const EFL_OF = [S.F_CF, S.F_ZF, 0, S.F_ZF | S.F_PF | S.F_CF];

  switch (op) {
    // ============================================================== D8 / DC / DA / DE arithmetic
    case 0xd8: case 0xdc: case 0xda: case 0xde: {
      if (isMem) {
        const kind = op === 0xd8 ? 0 : op === 0xdc ? 2 : op === 0xda ? 1 : 3;
        if (reg === 2 || reg === 3) {
          const popN = reg === 3 ? 1 : 0;
          return () => {
            pre();
            const wf = readArith(kind);
            noteIp();
            noteDp(mLo, mHi);
            if (isEmpty(s, 0)) {
              compareUnderflow(false, popN);
              return 0;
            }
            const bse = Wse, bhi = Whi, blo = Wlo;
            stRaw(0);
            const r = cmpCore(Wse, Whi, Wlo, bse, bhi, blo, true, wf);
            compareDone(r, false, popN);
            return 0;
          };
        }
        return () => {
          pre();
          const wf = readArith(kind);
          noteIp();
          noteDp(mLo, mHi);
          if (isEmpty(s, 0)) {
            if (underflow()) writeIndef(0);
            return 0;
          }
          const bse = Wse, bhi = Whi, blo = Wlo;
          stRaw(0);
          arith(reg, Wse, Whi, Wlo, bse, bhi, blo, 0, false, wf);
          return 0;
        };
      }
      // Register forms.
      if (op === 0xda) {
        if (reg <= 3) {
          // FCMOVcc ST0, ST(i): B, E, BE, U
          const cc = [2, 4, 6, 10][reg]; // testCond codes: B=2, E=4, BE=6, P=10
          return fcmov(cpu, s, cc, rm, false, pre, noteIp, underflow, writeST, stw);
        }
        if (modrm === 0xe9) return compareRegs(1, false, 2, false); // FUCOMPP
        return null;
      }
      if (op === 0xde && reg === 3 && rm !== 1) return null; // DE D8..DF except D9 (FCOMPP)
      if (reg === 2 || reg === 3) {
        // FCOM/FCOMP ST(i) (D8), FCOM2/FCOMP3 aliases (DC), FCOMP5 (DE D0), FCOMPP (DE D9)
        const pops = op === 0xde && reg === 3 ? 2 : reg === 3 || op === 0xde ? 1 : 0;
        return compareRegs(rm, true, pops, false);
      }
      // Arithmetic: D8: ST0 = ST0 op ST(i); DC/DE: ST(i) = ST(i) op ST0 with sub/div reversed.
      const toSti = op !== 0xd8;
      const popAfter = op === 0xde;
      let opk = reg;
      if (toSti && reg >= 4) opk = reg ^ 1; // DC E0 = FSUBR ST(i),ST0 ...
      return () => {
        pre();
        noteIp();
        if (isEmpty(s, 0) || isEmpty(s, rm)) {
          if (underflow()) {
            writeIndef(toSti ? rm : 0);
            if (popAfter) pop();
          }
          return 0;
        }
        if (toSti) {
          // ST(i) = ST(i) op ST0
          stRaw(0);
          const bse = Wse, bhi = Whi, blo = Wlo;
          stRaw(rm);
          arith(opk, Wse, Whi, Wlo, bse, bhi, blo, rm, popAfter, 0);
        } else {
          stRaw(rm);
          const bse = Wse, bhi = Whi, blo = Wlo;
          stRaw(0);
          arith(opk, Wse, Whi, Wlo, bse, bhi, blo, 0, false, 0);
        }
        return 0;
      };
    }

    // ============================================================== D9
    case 0xd9: {
      if (isMem) {
        switch (reg) {
          case 0: // FLD m32real
            return () => {
              pre();
              addr();
              const wf = readM32();
              noteIp();
              noteDp(mLo, mHi);
              loadConverted(wf);
              return 0;
            };
          case 2: case 3: { // FST/FSTP m32real
            const p = reg === 3;
            return () => {
              pre();
              addr();
              cpu.probeWrite(seg, mLo, mHi, 4);
              noteIp();
              noteDp(mLo, mHi);
              storeReal(4, p);
              return 0;
            };
          }
          case 4: // FLDENV
            return () => {
              preNoWait();
              addr();
              loadEnv(cpu, s, seg, mLo, mHi, asize, osize, code64);
              return 0;
            };
          case 5: // FLDCW
            return () => {
              pre();
              addr();
              const v = cpu.rd16(seg, mLo, mHi);
              setFcw(s, (v & 0x1f3f) | 0x40);
              updateES(s);
              return 0;
            };
          case 6: // FNSTENV
            return () => {
              preNoWait();
              addr();
              storeEnv(cpu, s, seg, mLo, mHi, asize, osize, code64);
              setFcw(s, fcw(s) | 0x3f);
              updateES(s);
              return 0;
            };
          case 7: // FNSTCW
            return () => {
              preNoWait();
              addr();
              cpu.wr16(seg, mLo, mHi, fcw(s));
              return 0;
            };
        }
        return null;
      }
      if (reg === 0) {
        // FLD ST(i)
        return () => {
          pre();
          noteIp();
          if (isEmpty(s, rm)) {
            if (!underflow()) return 0;
            // Masked: push the indefinite.
            const t = (((s[FX] >>> 27) & 7) - 1) & 7;
            setTop(s, t);
            writeST(0, 0xffff, 0xc0000000 | 0, 0);
            return 0;
          }
          stRaw(rm);
          const se = Wse, hi = Whi, lo = Wlo;
          clearC1();
          push(se, hi, lo);
          return 0;
        };
      }
      if (reg === 1) {
        // FXCH ST(i)
        return fxch(rm);
      }
      if (reg === 3) {
        // FSTP1 (D9 D8+i): on the host, FSTP ST(i) without the stack-underflow check: an empty
        // ST0 is just popped.
        return () => {
          pre();
          noteIp();
          const t0 = getTop(s);
          if (((s[FX_TAG_OP] >>> t0) & 1) !== 0) {
            const pi = (t0 + rm) & 7;
            const a = FX_REGS + t0 * 4;
            const b = FX_REGS + pi * 4;
            s[b] = s[a];
            s[b + 1] = s[a + 1];
            s[b + 2] = s[a + 2];
            s[FX_TAG_OP] |= 1 << pi;
          }
          pop();
          clearC1();
          return 0;
        };
      }
      switch (modrm) {
        case 0xd0: return () => { pre(); noteIp(); return 0; }; // FNOP
        case 0xe0: case 0xe1: // FCHS, FABS
          return () => {
            pre();
            noteIp();
            if (isEmpty(s, 0)) {
              if (underflow()) writeIndef(0);
              return 0;
            }
            const w = stw(s, 0);
            s[w + 2] = modrm === 0xe0 ? (s[w + 2] ^ 0x8000) & 0xffff : s[w + 2] & 0x7fff;
            clearC1();
            return 0;
          };
        case 0xe4: // FTST
          return () => {
            pre();
            noteIp();
            if (isEmpty(s, 0)) {
              compareUnderflow(false, 0);
              return 0;
            }
            stRaw(0);
            const r = cmpCore(Wse, Whi, Wlo, 0, 0, 0, true, 0);
            compareDone(r, false, 0);
            return 0;
          };
        case 0xe5: // FXAM
          return () => {
            pre();
            noteIp();
            const w = stw(s, 0);
            const se = s[w + 2] & 0xffff;
            const hi = s[w + 1];
            const lo = s[w];
            let c: number;
            if (isEmpty(s, 0)) c = SW_C3 | SW_C0;
            else {
              const e = se & 0x7fff;
              if (e === 0x7fff) c = hi >= 0 ? 0 : ((hi & 0x7fffffff) | lo) === 0 ? SW_C2 | SW_C0 : SW_C0;
              else if (e === 0) c = (hi | lo) === 0 ? SW_C3 : SW_C3 | SW_C2;
              else c = hi < 0 ? SW_C2 : 0;
            }
            if ((se & 0x8000) !== 0) c |= SW_C1;
            const sw = ((s[FX] >>> 16) & ~(SW_C0 | SW_C1 | SW_C2 | SW_C3)) | c;
            s[FX] = (s[FX] & 0xffff) | (sw << 16);
            return 0;
          };
        case 0xe8: case 0xe9: case 0xea: case 0xeb: case 0xec: case 0xed: case 0xee: {
          const k = modrm - 0xe8;
          const [cse, chi, clo, dir] = CONSTS[k]!;
          return () => {
            pre();
            noteIp();
            const rc = (s[FX] >>> 10) & 3;
            let lo = clo;
            // Directed rounding: step toward the true value's side.
            if (dir > 0 && rc === 2) lo = (lo + 1) | 0;
            else if (dir < 0 && (rc === 1 || rc === 3)) lo = (lo - 1) | 0;
            clearC1();
            push(cse, chi | 0, lo | 0);
            return 0;
          };
        }
        case 0xf6: case 0xf7: // FDECSTP, FINCSTP
          return () => {
            pre();
            noteIp();
            setTop(s, getTop(s) + (modrm === 0xf7 ? 1 : -1));
            clearC1();
            return 0;
          };
        case 0xfa: case 0xfc: // FSQRT, FRNDINT
          return () => {
            pre();
            noteIp();
            if (isEmpty(s, 0)) {
              if (underflow()) writeIndef(0);
              return 0;
            }
            stRaw(0);
            const cw = s[FX] & 0xffff;
            SF.clearUnpackFlags();
            F.flags = 0;
            F.up = 0;
            SF.unpackExt(0, Wse, Whi, Wlo);
            if (modrm === 0xfa) SF.sqrt(SF.FMT_EXT, ctlOf(cw, true));
            else SF.roundIntegral(SF.FMT_EXT, ctlOf(cw, false), (cw >> 10) & 3, false);
            let flags = F.flags;
            let up = F.up;
            if (SF.Ac !== SF.C_QNAN && SF.Ac !== SF.C_SNAN && (flags & IE) === 0 && SF.unpackFlags !== 0) {
              if ((cw & DE) === 0) {
                flags = DE;
                up = 0;
              } else flags |= DE;
            }
            if (commit(flags, up)) writeST(0, F.se, F.hi, F.lo);
            return 0;
          };
        case 0xf4: // FXTRACT
          return () => {
            pre();
            noteIp();
            return fxtract();
          };
        case 0xfd: // FSCALE
          return () => {
            pre();
            noteIp();
            return fscale();
          };
        case 0xf8: case 0xf5: // FPREM, FPREM1
          return () => {
            pre();
            noteIp();
            return fprem(modrm === 0xf5);
          };
        case 0xf0: case 0xf1: case 0xf2: case 0xf3: case 0xf9: case 0xfb: case 0xfe: case 0xff:
          return () => {
            pre();
            noteIp();
            transcendental(cpu, s, modrm, {
              isEmpty: (i) => isEmpty(s, i), underflow, overflow, commit, writeST, pop, push,
              pushRaw: (se, hi, lo) => {
                setTop(s, (((s[FX] >>> 27) & 7) - 1) & 7);
                writeST(0, se, hi, lo);
              },
              stRaw: (i) => {
                stRaw(i);
                return [Wse, Whi, Wlo];
              },
              setC2: (v) => {
                const sw = ((s[FX] >>> 16) & ~SW_C2) | (v ? SW_C2 : 0);
                s[FX] = (s[FX] & 0xffff) | (sw << 16);
              },
            });
            return 0;
          };
      }
      return null;
    }

    // ============================================================== DB
    case 0xdb: {
      if (isMem) {
        switch (reg) {
          case 0: // FILD m32int
            return () => {
              pre();
              addr();
              readI32();
              noteIp();
              noteDp(mLo, mHi);
              clearC1();
              push(Wse, Whi, Wlo);
              return 0;
            };
          case 1: case 2: case 3: // FISTTP, FIST, FISTP m32int
            return fistMem(4, reg);
          case 5: // FLD m80
            return () => {
              pre();
              addr();
              readM80();
              noteIp();
              noteDp(mLo, mHi);
              clearC1();
              push(Wse, Whi, Wlo);
              return 0;
            };
          case 7: // FSTP m80
            return () => {
              pre();
              addr();
              cpu.probeWrite(seg, mLo, mHi, 10);
              noteIp();
              noteDp(mLo, mHi);
              if (isEmpty(s, 0)) {
                if (!underflow()) return 0;
                writeM80(0xffff, 0xc0000000 | 0, 0);
                pop();
                return 0;
              }
              stRaw(0);
              writeM80(Wse, Whi, Wlo);
              clearC1();
              pop();
              return 0;
            };
        }
        return null;
      }
      if (reg <= 3) {
        const cc = [2, 4, 6, 10][reg];
        return fcmov(cpu, s, cc, rm, true, pre, noteIp, underflow, writeST, stw);
      }
      if (reg === 5 || reg === 6) {
        // FUCOMI (E8+i), FCOMI (F0+i)
        return fcomi(rm, reg === 6, false);
      }
      switch (modrm) {
        case 0xe0: case 0xe1: case 0xe4: // FNENI, FNDISI, FNSETPM: no-ops on 387+
          return () => { preNoWait(); return 0; };
        case 0xe2: // FNCLEX
          return () => {
            preNoWait();
            setFsw(s, fsw(s) & ~(0x3f | SW_SF | SW_ES | SW_B));
            return 0;
          };
        case 0xe3: // FNINIT
          return () => {
            preNoWait();
            fninit(s);
            return 0;
          };
      }
      return null;
    }

    // ============================================================== DD
    case 0xdd: {
      if (isMem) {
        switch (reg) {
          case 0: // FLD m64real
            return () => {
              pre();
              addr();
              const wf = readM64();
              noteIp();
              noteDp(mLo, mHi);
              loadConverted(wf);
              return 0;
            };
          case 1: // FISTTP m64int
            return fistMem(8, 1);
          case 2: case 3: { // FST/FSTP m64real
            const p = reg === 3;
            return () => {
              pre();
              addr();
              cpu.probeWrite(seg, mLo, mHi, 8);
              noteIp();
              noteDp(mLo, mHi);
              storeReal(8, p);
              return 0;
            };
          }
          case 4: // FRSTOR
            return () => {
              preNoWait();
              addr();
              frstor(cpu, s, seg, mLo, mHi, asize, osize, code64);
              return 0;
            };
          case 6: // FNSAVE
            return () => {
              preNoWait();
              addr();
              fnsave(cpu, s, seg, mLo, mHi, asize, osize, code64);
              return 0;
            };
          case 7: // FNSTSW m16
            return () => {
              preNoWait();
              addr();
              cpu.wr16(seg, mLo, mHi, fsw(s));
              return 0;
            };
        }
        return null;
      }
      switch (reg) {
        case 0: // FFREE ST(i)
          return () => {
            pre();
            noteIp();
            setTagEmpty(s, (getTop(s) + rm) & 7);
            clearC1();
            return 0;
          };
        case 1: return fxch(rm); // FXCH4 alias
        case 2: return fstReg(rm, false); // FST ST(i)
        case 3: return fstReg(rm, true); // FSTP ST(i)
        case 4: case 5: // FUCOM, FUCOMP
          return compareRegs(rm, false, reg === 5 ? 1 : 0, false);
      }
      return null;
    }

    // ============================================================== DF
    case 0xdf: {
      if (isMem) {
        switch (reg) {
          case 0: // FILD m16int
            return () => {
              pre();
              addr();
              readInt16();
              noteIp();
              noteDp(mLo, mHi);
              clearC1();
              push(Wse, Whi, Wlo);
              return 0;
            };
          case 1: case 2: case 3: return fistMem(2, reg);
          case 4: // FBLD
            return () => {
              pre();
              addr();
              checkWrap(cpu, seg, mLo, 10);
              const lo = cpu.rd64(seg, mLo, mHi);
              const hi = cpu.hi;
              const a = addrAdd(mLo, mHi, 8, asize);
              const top = cpu.rd16(seg, a, ADDR_HI);
              noteIp();
              noteDp(mLo, mHi);
              bcdToExt(lo, hi, top);
              clearC1();
              push(Wse, Whi, Wlo);
              return 0;
            };
          case 5: // FILD m64int
            return () => {
              pre();
              addr();
              readI64();
              noteIp();
              noteDp(mLo, mHi);
              clearC1();
              push(Wse, Whi, Wlo);
              return 0;
            };
          case 6: // FBSTP
            return () => {
              pre();
              addr();
              cpu.probeWrite(seg, mLo, mHi, 10);
              noteIp();
              noteDp(mLo, mHi);
              return fbstp();
            };
          case 7: return fistMem(8, 3); // FISTP m64int
        }
        return null;
      }
      switch (reg) {
        case 0: // FFREEP ST(i)
          return () => {
            pre();
            noteIp();
            setTagEmpty(s, (getTop(s) + rm) & 7);
            pop();
            clearC1();
            return 0;
          };
        case 1: return fxch(rm); // FXCH7 alias
        case 2: case 3: return fstReg(rm, true); // FSTP8, FSTP9 aliases
        case 4:
          if (rm !== 0) return null;
          // FNSTSW AX
          return () => {
            preNoWait();
            s[0] = (s[0] & ~0xffff) | fsw(s);
            return 0;
          };
        case 5: case 6: return fcomi(rm, reg === 6, true); // FUCOMIP, FCOMIP
      }
      return null;
    }
  }
  return null;

  // ------------------------------------------------------------------ helpers needing the closure scope

  function loadConverted(wf: number): void {
    // FLD m32/m64: SNaN -> IE (quieted), denormal -> DE; the value converts exactly.
    const e = Wse & 0x7fff;
    let flags = wf;
    let se = Wse;
    let hi = Whi;
    const lo = Wlo;
    if (e === 0x7fff && ((hi & 0x7fffffff) | lo) !== 0 && (hi & 0x40000000) === 0) {
      flags |= IE;
      hi |= 0x40000000;
    }
    const t = (((s[FX] >>> 27) & 7) - 1) & 7;
    if (((s[FX_TAG_OP] >>> t) & 1) !== 0) {
      // Stack overflow.
      if (!overflow()) return;
      se = 0xffff; hi = 0xc0000000 | 0;
      s[FX] = (s[FX] & ~(7 << 27)) | (t << 27);
      writeST(0, se, hi, 0);
      return;
    }
    const cw = s[FX] & 0xffff;
    // An unmasked DE still loads on the host; an unmasked IE (SNaN) does not.
    if ((flags & ~cw & IE) !== 0) {
      commit(flags, 0);
      return;
    }
    commit(flags, 0);
    s[FX] = (s[FX] & ~(7 << 27)) | (t << 27);
    writeST(0, se, hi, lo);
  }

  function storeReal(size: number, popAfter: boolean): void {
    if (isEmpty(s, 0)) {
      if (!underflow()) return;
      if (size === 4) cpu.wr32(seg, mLo, mHi, 0xffc00000 | 0);
      else cpu.wr64(seg, mLo, mHi, 0, 0xfff80000 | 0);
      if (popAfter) pop();
      return;
    }
    stRaw(0);
    // Exactly representable in the destination: store the bits, no flags.
    const e = Wse & 0x7fff;
    if (Whi < 0) {
      if (size === 8 && (Wlo & 0x7ff) === 0 && e >= 16383 - 1022 && e <= 16383 + 1023) {
        const de = e - (16383 - 1023);
        cpu.wr64(seg, mLo, mHi, (Whi << 21) | (Wlo >>> 11), ((Wse & 0x8000) << 16) | (de << 20) | ((Whi >>> 11) & 0xfffff));
        clearC1();
        if (popAfter) pop();
        return;
      }
      if (size === 4 && Wlo === 0 && (Whi & 0xff) === 0 && e >= 16383 - 126 && e <= 16383 + 127) {
        const fe = e - (16383 - 127);
        cpu.wr32(seg, mLo, mHi, ((Wse & 0x8000) << 16) | (fe << 23) | ((Whi >>> 8) & 0x7fffff));
        clearC1();
        if (popAfter) pop();
        return;
      }
    }
    const cw = s[FX] & 0xffff;
    SF.clearUnpackFlags();
    F.flags = 0;
    F.up = 0;
    SF.unpackExt(0, Wse, Whi, Wlo);
    const ctl = ctlOf(cw, false) & ~SF.CTL_X87;
    SF.convert(size === 4 ? SF.FMT_F32 : SF.FMT_F64, ctl);
    const flags = F.flags;
    // Denormal operands raise DE only for... (x87 stores do not report DE for denormal sources)
    const unmasked = flags & ~cw & 0x3f;
    if ((unmasked & IE) !== 0) {
      commit(flags, F.up);
      return;
    }
    if ((unmasked & (OE | UE)) !== 0) {
      // Nothing is stored; the host reports OE/UE without PE and clears C1.
      commit(flags & ~PE, 0);
      return;
    }
    if (size === 4) cpu.wr32(seg, mLo, mHi, F.lo);
    else cpu.wr64(seg, mLo, mHi, F.lo, F.hi);
    commit(flags, F.up);
    if (popAfter) pop();
  }

  function writeM80(se: number, hi: number, lo: number): void {
    cpu.wr64(seg, mLo, mHi, lo, hi);
    const a = addrAdd(mLo, mHi, 8, asize);
    cpu.wr16(seg, a, ADDR_HI, se);
  }

  function fstReg(i: number, popAfter: boolean): Fn {
    return () => {
      pre();
      noteIp();
      if (isEmpty(s, 0)) {
        if (!underflow()) return 0;
        writeIndef(i);
        if (popAfter) pop();
        return 0;
      }
      stRaw(0);
      writeST(i, Wse, Whi, Wlo);
      clearC1();
      if (popAfter) pop();
      return 0;
    };
  }

  function fxch(i: number): Fn {
    return () => {
      pre();
      noteIp();
      const e0 = isEmpty(s, 0);
      const ei = isEmpty(s, i);
      if (e0 || ei) {
        if (!underflow()) return 0;
        if (e0) writeIndef(0);
        if (ei) writeIndef(i);
      }
      const a = stw(s, 0);
      const b = stw(s, i);
      for (let k = 0; k < 3; k++) {
        const t = s[a + k];
        s[a + k] = s[b + k];
        s[b + k] = t;
      }
      if (!(e0 || ei)) clearC1();
      return 0;
    };
  }

  function fcomi(i: number, signaling: boolean, popAfter: boolean): Fn {
    return compareRegs(i, signaling, popAfter ? 1 : 0, true);
  }

  /** FCOM-family on ST0 and ST(i): condition codes (or EFLAGS), then `pops` pops. */
  function compareRegs(i: number, signaling: boolean, pops: number, eflags: boolean): Fn {
    return () => {
      pre();
      noteIp();
      if (isEmpty(s, 0) || isEmpty(s, i)) {
        compareUnderflow(eflags, pops);
        return 0;
      }
      stRaw(i);
      const bse = Wse, bhi = Whi, blo = Wlo;
      stRaw(0);
      const r = cmpCore(Wse, Whi, Wlo, bse, bhi, blo, signaling, 0);
      compareDone(r, eflags, pops);
      return 0;
    };
  }

  /**
   * A comparison with an empty operand: "unordered" whether or not IE is masked (as the host
   * does); the pops happen only when IE is masked.
   */
  function compareUnderflow(eflags: boolean, pops: number): void {
    const masked = underflow();
    if (eflags) setArithFlags(s, S.F_ZF | S.F_PF | S.F_CF);
    else setCC(3);
    if (masked) for (let k = 0; k < pops; k++) pop();
  }

  /**
   * Ends a comparison: the result is reported even with an unmasked exception; FCOMP-style
   * pops happen then too, FCOMIP's do not (host behaviour).
   */
  function compareDone(r: number, eflags: boolean, pops: number): void {
    const flags = F.flags;
    const cw = s[FX] & 0xffff;
    commit(flags, -1);
    if (eflags) setArithFlags(s, EFL_OF[r]!);
    else setCC(r);
    if ((flags & ~cw & (IE | DE)) !== 0) return;
    for (let k = 0; k < pops; k++) pop();
  }

  /** FIST/FISTP/FISTTP to memory: size 2/4/8; kind 1 FISTTP, 2 FIST, 3 FISTP. */
  function fistMem(size: number, kind: number): Fn {
    const popAfter = kind !== 2;
    const bits = size * 8;
    return () => {
      pre();
      addr();
      cpu.probeWrite(seg, mLo, mHi, size);
      noteIp();
      noteDp(mLo, mHi);
      let v: number;
      let vh = 0;
      if (isEmpty(s, 0)) {
        if (!underflow()) return 0;
        v = bits === 16 ? 0x8000 : bits === 32 ? 0x80000000 | 0 : 0;
        vh = bits === 64 ? 0x80000000 | 0 : 0;
      } else {
        stRaw(0);
        const cw = s[FX] & 0xffff;
        SF.clearUnpackFlags();
        F.flags = 0;
        F.up = 0;
        SF.unpackExt(0, Wse, Whi, Wlo);
        v = SF.toInt(bits, kind === 1 ? 3 : (cw >> 10) & 3);
        vh = SF.IH;
        const flags = F.flags;
        const up = F.up;
        if ((flags & ~cw & IE) !== 0) {
          commit(flags, 0);
          return 0;
        }
        commit(flags, up);
      }
      if (size === 2) cpu.wr16(seg, mLo, mHi, v);
      else if (size === 4) cpu.wr32(seg, mLo, mHi, v);
      else cpu.wr64(seg, mLo, mHi, v, vh);
      if (popAfter) pop();
      return 0;
    };
  }

  function fxtract(): number {
    if (isEmpty(s, 0)) {
      if (underflow()) {
        // Masked: indefinites in ST0 and the pushed register, without a second (overflow)
        // check: C1 stays clear, as on the host.
        writeIndef(0);
        setTop(s, (((s[FX] >>> 27) & 7) - 1) & 7);
        writeST(0, 0xffff, 0xc0000000 | 0, 0);
      }
      return 0;
    }
    const t = (((s[FX] >>> 27) & 7) - 1) & 7;
    if (((s[FX_TAG_OP] >>> t) & 1) !== 0) {
      if (overflow()) {
        writeIndef(0);
        push(0xffff, 0xc0000000 | 0, 0);
      }
      return 0;
    }
    stRaw(0);
    SF.clearUnpackFlags();
    F.flags = 0;
    F.up = 0;
    const c = SF.unpackExt(0, Wse, Whi, Wlo);
    let flags = SF.unpackFlags;
    let ese: number, ehi: number, elo: number; // exponent (ST1 after)
    let mse: number, mhi: number, mlo: number; // significand (ST0 after)
    if (c === SF.C_QNAN || c === SF.C_SNAN) {
      flags = c === SF.C_SNAN ? IE : 0;
      ese = Wse; ehi = Whi | 0x40000000; elo = Wlo;
      mse = ese; mhi = ehi; mlo = elo;
    } else if (c === SF.C_UNSUPPORTED) {
      flags = IE;
      ese = 0xffff; ehi = 0xc0000000 | 0; elo = 0;
      mse = ese; mhi = ehi; mlo = elo;
    } else if (c === SF.C_ZERO) {
      flags = ZE;
      ese = 0xffff; ehi = 0x80000000 | 0; elo = 0; // -infinity
      mse = Wse; mhi = 0; mlo = 0;
    } else if (c === SF.C_INF) {
      ese = 0x7fff; ehi = 0x80000000 | 0; elo = 0;
      mse = Wse; mhi = Whi; mlo = Wlo;
    } else {
      const ex = SF.Ae - 16383;
      SF.fromInt64(ex >> 31, ex, SF.FMT_EXT, 0xc);
      ese = F.se; ehi = F.hi; elo = F.lo;
      mse = (SF.As << 15) | 16383; mhi = SF.Ah; mlo = SF.Al;
    }
    if (!commit(flags, 0)) return 0;
    writeST(0, ese, ehi, elo);
    push(mse, mhi, mlo);
    return 0;
  }

  function fscale(): number {
    if (isEmpty(s, 0) || isEmpty(s, 1)) {
      if (underflow()) writeIndef(0);
      return 0;
    }
    stRaw(1);
    const bse = Wse, bhi = Whi, blo = Wlo;
    stRaw(0);
    const cw = s[FX] & 0xffff;
    SF.clearUnpackFlags();
    F.flags = 0;
    F.up = 0;
    const ca = SF.unpackExt(0, Wse, Whi, Wlo);
    const cb = SF.unpackExt(1, bse, bhi, blo);
    const den = SF.unpackFlags;
    const nanA = ca === SF.C_QNAN || ca === SF.C_SNAN;
    const nanB = cb === SF.C_QNAN || cb === SF.C_SNAN;
    if (ca === SF.C_UNSUPPORTED || cb === SF.C_UNSUPPORTED) {
      F.flags = IE;
      SF.packDefaultNaN(SF.FMT_EXT);
    } else if (nanA || nanB) {
      SF.propagateNaN2(SF.FMT_EXT);
    } else if (cb === SF.C_INF) {
      if (SF.Bs === 0) {
        // x * 2^+inf
        if (ca === SF.C_ZERO) {
          F.flags = IE;
          SF.packDefaultNaN(SF.FMT_EXT);
        } else SF.packInf(SF.As, SF.FMT_EXT);
      } else {
        if (ca === SF.C_INF) {
          F.flags = IE;
          SF.packDefaultNaN(SF.FMT_EXT);
        } else {
          F.se = SF.As << 15; F.hi = 0; F.lo = 0;
        }
      }
    } else {
      // n = trunc(ST1)
      let n = 0;
      if (cb === SF.C_NORMAL) {
        const E = SF.Be - 16383;
        if (E >= 31) n = SF.Bs ? -0x20000 : 0x20000;
        else if (E >= 0) {
          n = SF.Bh >>> (31 - E);
          if (SF.Bs) n = -n;
        }
      }
      SF.scale(n, SF.FMT_EXT, ctlOf(cw, false));
      if (ca === SF.C_INF || ca === SF.C_ZERO) {
        F.up = 0;
      }
    }
    let flags = F.flags;
    let up = F.up;
    if (!nanA && !nanB && (flags & IE) === 0 && den !== 0) {
      if ((cw & DE) === 0) {
        flags = DE;
        up = 0;
      } else flags |= DE;
    }
    if (commit(flags, up)) writeST(0, F.se, F.hi, F.lo);
    return 0;
  }

  function fprem(nearest: boolean): number {
    if (isEmpty(s, 0) || isEmpty(s, 1)) {
      if (underflow()) writeIndef(0);
      const sw = (s[FX] >>> 16) & ~SW_C2;
      s[FX] = (s[FX] & 0xffff) | (sw << 16);
      return 0;
    }
    stRaw(1);
    const bse = Wse, bhi = Whi, blo = Wlo;
    stRaw(0);
    const cw = s[FX] & 0xffff;
    SF.clearUnpackFlags();
    F.flags = 0;
    F.up = 0;
    const ca = SF.unpackExt(0, Wse, Whi, Wlo);
    const cb = SF.unpackExt(1, bse, bhi, blo);
    SF.remainder(nearest, ctlOf(cw, false));
    let flags = F.flags;
    const nan = ca >= SF.C_QNAN || cb >= SF.C_QNAN;
    if (!nan && (flags & IE) === 0 && SF.unpackFlags !== 0) {
      if ((cw & DE) === 0) flags = DE;
      else flags |= DE;
    }
    if ((flags & IE) !== 0 || nan || (flags & ~cw & DE) !== 0) {
      // Invalid, NaN or an unmasked DE: C1 and C2 cleared, C0 and C3 left.
      const sw = (s[FX] >>> 16) & ~(SW_C1 | SW_C2);
      s[FX] = (s[FX] & 0xffff) | (sw << 16);
      if (commit(flags, -1)) writeST(0, F.se, F.hi, F.lo);
      return 0;
    }
    if (!commit(flags, 0)) return 0;
    writeST(0, F.se, F.hi, F.lo);
    const q = SF.remQuot;
    let c = 0;
    if (SF.remPartial) c = SW_C2;
    else {
      if (q & 4) c |= SW_C0;
      if (q & 2) c |= SW_C3;
      if (q & 1) c |= SW_C1;
    }
    setC(c);
    return 0;
  }

  function setC(c: number): void {
    const sw = ((s[FX] >>> 16) & ~(SW_C0 | SW_C1 | SW_C2 | SW_C3)) | c;
    s[FX] = (s[FX] & 0xffff) | (sw << 16);
  }

  function bcdToExt(lo: number, hi: number, top: number): void {
    // 18 digits: lo (8 digits... ) as packed BCD: bytes 0..8, sign in byte 9 bit 7.
    let high = 0; // digits 17..9
    let low = 0; // digits 8..0
    const nib = (i: number): number => {
      // nibble i (0 = least significant) of the 72-bit digit field
      if (i < 8) return (lo >>> (4 * i)) & 15;
      if (i < 16) return (hi >>> (4 * (i - 8))) & 15;
      return (top >>> (4 * (i - 16))) & 15;
    };
    for (let i = 17; i >= 9; i--) high = high * 10 + nib(i);
    for (let i = 8; i >= 0; i--) low = low * 10 + nib(i);
    // value = high * 1e9 + low, up to ~1.6e18 with invalid digits: compute in 64 bits.
    const prodLo = mulLo(high, 1000000000);
    const prodHi = mulHi(high, 1000000000);
    const t = (prodLo >>> 0) + low;
    const mlo = t | 0;
    const mhi = (prodHi + (t > 0xffffffff ? 1 : 0)) | 0;
    const sign = (top >>> 15) & 1;
    SF.fromMag64(sign, mhi, mlo, SF.FMT_EXT, 0xc);
    Wse = F.se; Whi = F.hi; Wlo = F.lo;
  }

  function fbstp(): number {
    if (isEmpty(s, 0)) {
      if (!underflow()) return 0;
      writeBcdIndef();
      pop();
      return 0;
    }
    stRaw(0);
    const cw = s[FX] & 0xffff;
    SF.clearUnpackFlags();
    F.flags = 0;
    F.up = 0;
    const c = SF.unpackExt(0, Wse, Whi, Wlo);
    let invalid = c >= SF.C_INF;
    let mhi = 0;
    let mlo = 0;
    let up = 0;
    if (!invalid) {
      SF.roundToIntMag((cw >> 10) & 3, SF.As);
      up = F.up;
      mhi = SF.IH;
      mlo = SF.IL;
      // |value| must be < 10^18 (0x0DE0B6B3A7640000).
      if (SF.IBig || mhi >>> 0 > 0x0de0b6b3 || (mhi === 0x0de0b6b3 && mlo >>> 0 >= 0xa7640000)) invalid = true;
    }
    if (invalid) {
      F.flags = (F.flags & ~PE) | IE;
      if (!commit(F.flags, 0)) return 0;
      writeBcdIndef();
      pop();
      return 0;
    }
    const flags = F.flags | (c === SF.C_NORMAL && (SF.unpackFlags & DE) !== 0 ? 0 : 0);
    // Decimal digits: mag = q * 1e9 + r.
    const q = divBillion(mhi, mlo);
    const r = remainderBillion;
    let lo = 0;
    let hi = 0;
    let topw = 0;
    let rr = r;
    for (let i = 0; i < 9; i++) {
      const dgt = rr % 10;
      rr = (rr - dgt) / 10;
      if (i < 8) lo |= dgt << (4 * i);
      else hi |= dgt;
    }
    let qq = q;
    for (let i = 9; i < 18; i++) {
      const dgt = qq % 10;
      qq = (qq - dgt) / 10;
      if (i < 16) hi |= dgt << (4 * (i - 8));
      else topw |= dgt << (4 * (i - 16));
    }
    if (SF.As && c !== SF.C_ZERO) topw |= 0x8000;
    else if (SF.As) topw |= 0x8000;
    commit(flags, up);
    cpu.wr64(seg, mLo, mHi, lo, hi);
    const a = addrAdd(mLo, mHi, 8, asize);
    cpu.wr16(seg, a, ADDR_HI, topw);
    pop();
    return 0;
  }

  function writeBcdIndef(): void {
    cpu.wr64(seg, mLo, mHi, 0, 0xc0000000 | 0);
    const a = addrAdd(mLo, mHi, 8, asize);
    cpu.wr16(seg, a, ADDR_HI, 0xffff);
  }
}

let remainderBillion = 0;
/** (hi:lo) / 1e9 for values below 2^60; remainder in remainderBillion. */
function divBillion(hi: number, lo: number): number {
  const B = 1000000000;
  let rem = hi >>> 0;
  let q = Math.floor(rem / B);
  rem -= q * B;
  let cur = rem * 65536 + (lo >>> 16);
  const q1 = Math.floor(cur / B);
  rem = cur - q1 * B;
  cur = rem * 65536 + (lo & 0xffff);
  const q2 = Math.floor(cur / B);
  rem = cur - q2 * B;
  remainderBillion = rem;
  q = q * 4294967296 + q1 * 65536 + q2;
  return q;
}

function mulLo(a: number, b: number): number {
  return Math.imul(a, b);
}
function mulHi(a: number, b: number): number {
  const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
  const ll = al * bl;
  const m1 = ah * bl + (ll >>> 16);
  const m2 = al * bh + (m1 & 0xffff);
  return (ah * bh + Math.floor(m1 / 65536) + Math.floor(m2 / 65536)) | 0;
}

function fcmov(_cpu: Cpu, s: Int32Array, cc: number, rm: number, negate: boolean, pre: () => void, noteIp: () => void,
  underflow: () => boolean, writeST: (i: number, se: number, hi: number, lo: number) => void, stw: (s: Int32Array, i: number) => number): Fn {
  return () => {
    pre();
    noteIp();
    if (isEmpty(s, 0) || isEmpty(s, rm)) {
      if (underflow()) writeIndef();
      return 0;
    }
    let t = testCond(s, cc);
    if (negate) t = !t;
    if (t) {
      const w = stw(s, rm);
      writeST(0, s[w + 2], s[w + 1], s[w]);
    }
    return 0;
  };
  function writeIndef(): void {
    writeST(0, 0xffff, 0xc0000000 | 0, 0);
  }
}

import { testCond } from "../flags.ts";

// ------------------------------------------------------------------ environment and state images

/**
 * The host checks the first dword and then the last byte of an environment or state image
 * before the rest: a fault reports that byte's address when the image runs into an unmapped
 * page.
 */
function probeLast(cpu: Cpu, seg: number, lo: number, hi: number, size: number, asize: number, write: boolean): void {
  checkWrap(cpu, seg, lo, size);
  const a = addrAdd(lo, hi, size - 1, asize);
  if (write) {
    cpu.probeWrite(seg, lo, hi, 4);
    cpu.probeWrite(seg, a, ADDR_HI, 1);
  } else {
    cpu.rd32(seg, lo, hi);
    cpu.rd8(seg, a, ADDR_HI);
  }
}

/** Stores the environment (14 or 28 bytes) at seg:lo/hi. */
function storeEnv(cpu: Cpu, s: Int32Array, seg: number, lo: number, hi: number, asize: number, osize: number, code64: boolean): void {
  const size = osize === 2 ? 14 : 28;
  probeLast(cpu, seg, lo, hi, size, asize, true);
  cpu.probeWrite(seg, lo, hi, size);
  writeEnv(cpu, s, seg, lo, hi, asize, osize, code64);
}

function writeEnv(cpu: Cpu, s: Int32Array, seg: number, lo: number, hi: number, asize: number, osize: number, code64: boolean): void {
  const real = (s[S.CR0] & S.CR0_PE) === 0 || (s[S.FLAGS] & S.F_VM) !== 0;
  const tag = fullTagWord(s);
  const fip = s[FX_FIP];
  const fdp = s[FX_FDP];
  const fopv = (s[FX_TAG_OP] >>> 16) & 0x7ff;
  const at = (k: number): number => {
    const r = addrAdd(lo, hi, k, asize);
    return r;
  };
  const w16 = (k: number, v: number): void => {
    const a = at(k);
    cpu.wr16(seg, a, ADDR_HI, v);
  };
  const w32 = (k: number, v: number): void => {
    const a = at(k);
    cpu.wr32(seg, a, ADDR_HI, v);
  };
  void code64;
  if (osize === 2) {
    w16(0, fcw(s));
    w16(2, fsw(s));
    w16(4, tag);
    if (real) {
      w16(6, fip);
      w16(8, ((fip >>> 4) & 0xf000) | fopv);
      w16(10, fdp);
      w16(12, (fdp >>> 4) & 0xf000);
    } else {
      w16(6, fip);
      w16(8, s[FX_FCS]);
      w16(10, fdp);
      w16(12, s[FX_FDS]);
    }
  } else {
    w32(0, fcw(s) | 0xffff0000);
    w32(4, fsw(s) | 0xffff0000);
    w32(8, tag | 0xffff0000);
    if (real) {
      w32(12, (fip & 0xffff) | 0xffff0000);
      w32(16, ((fip >>> 4) & 0x0ffff000) | fopv);
      w32(20, (fdp & 0xffff) | 0xffff0000);
      w32(24, (fdp >>> 4) & 0x0ffff000);
    } else {
      w32(12, fip);
      w32(16, (s[FX_FCS] & 0xffff) | (fopv << 16));
      w32(20, fdp);
      w32(24, (s[FX_FDS] & 0xffff) | 0xffff0000);
    }
  }
}

/** Reads the environment; returns nothing, writes the state only after all reads. */
function loadEnv(cpu: Cpu, s: Int32Array, seg: number, lo: number, hi: number, asize: number, osize: number, code64: boolean): void {
  probeLast(cpu, seg, lo, hi, osize === 2 ? 14 : 28, asize, false);
  readEnvInto(cpu, s, seg, lo, hi, asize, osize, code64);
  commitEnv(s);
}

const ENV = new Int32Array(8);
function readEnvInto(cpu: Cpu, s: Int32Array, seg: number, lo: number, hi: number, asize: number, osize: number, code64: boolean): void {
  void code64;
  const real = (s[S.CR0] & S.CR0_PE) === 0 || (s[S.FLAGS] & S.F_VM) !== 0;
  const r16 = (k: number): number => {
    const a = addrAdd(lo, hi, k, asize);
    return cpu.rd16(seg, a, ADDR_HI);
  };
  const r32 = (k: number): number => {
    const a = addrAdd(lo, hi, k, asize);
    return cpu.rd32(seg, a, ADDR_HI);
  };
  if (osize === 2) {
    ENV[0] = r16(0);
    ENV[1] = r16(2);
    ENV[2] = r16(4);
    if (real) {
      const a = r16(6), b = r16(8), c = r16(10), dd = r16(12);
      ENV[3] = a | ((b & 0xf000) << 4);
      ENV[4] = 0;
      ENV[5] = b & 0x7ff;
      ENV[6] = c | ((dd & 0xf000) << 4);
      ENV[7] = 0;
    } else {
      ENV[3] = r16(6);
      ENV[4] = r16(8);
      ENV[5] = 0;
      ENV[6] = r16(10);
      ENV[7] = r16(12);
    }
  } else {
    ENV[0] = r32(0) & 0xffff;
    ENV[1] = r32(4) & 0xffff;
    ENV[2] = r32(8) & 0xffff;
    if (real) {
      const a = r32(12), b = r32(16), c = r32(20), dd = r32(24);
      ENV[3] = (a & 0xffff) | ((b & 0x0ffff000) << 4);
      ENV[4] = 0;
      ENV[5] = b & 0x7ff;
      ENV[6] = (c & 0xffff) | ((dd & 0x0ffff000) << 4);
      ENV[7] = 0;
    } else {
      ENV[3] = r32(12);
      const b = r32(16);
      ENV[4] = b & 0xffff;
      ENV[5] = (b >>> 16) & 0x7ff;
      ENV[6] = r32(20);
      ENV[7] = r32(24) & 0xffff;
    }
  }
}

function commitEnv(s: Int32Array): void {
  s[FX] = ((ENV[0] & 0x1f3f) | 0x40) | ((ENV[1] & 0xffff) << 16);
  s[FX_TAG_OP] = abridgeTag(ENV[2]) | ((ENV[5] & 0x7ff) << 16);
  s[FX_FIP] = ENV[3];
  s[FX_FIP + 1] = 0;
  s[FX_FCS] = ENV[4];
  s[FX_FDP] = ENV[6];
  s[FX_FDP + 1] = 0;
  s[FX_FDS] = ENV[7];
  updateES(s);
}

const SAVE_REGS = new Int32Array(24);

function frstor(cpu: Cpu, s: Int32Array, seg: number, lo: number, hi: number, asize: number, osize: number, code64: boolean): void {
  const envSize = osize === 2 ? 14 : 28;
  probeLast(cpu, seg, lo, hi, envSize + 80, asize, false);
  readEnvInto(cpu, s, seg, lo, hi, asize, osize, code64);
  for (let i = 0; i < 8; i++) {
    const a = addrAdd(lo, hi, envSize + i * 10, asize);
    const ah = ADDR_HI;
    const l = cpu.rd64(seg, a, ah);
    const h = cpu.hi;
    const a2 = addrAdd(a, ah, 8, asize);
    SAVE_REGS[i * 3] = l;
    SAVE_REGS[i * 3 + 1] = h;
    SAVE_REGS[i * 3 + 2] = cpu.rd16(seg, a2, ADDR_HI);
  }
  commitEnv(s);
  const top = getTop(s);
  for (let i = 0; i < 8; i++) {
    const w = FX_REGS + ((top + i) & 7) * 4;
    s[w] = SAVE_REGS[i * 3];
    s[w + 1] = SAVE_REGS[i * 3 + 1];
    s[w + 2] = SAVE_REGS[i * 3 + 2] & 0xffff;
  }
}

function fnsave(cpu: Cpu, s: Int32Array, seg: number, lo: number, hi: number, asize: number, osize: number, code64: boolean): void {
  const envSize = osize === 2 ? 14 : 28;
  probeLast(cpu, seg, lo, hi, envSize + 80, asize, true);
  cpu.probeWrite(seg, lo, hi, envSize + 80);
  writeEnv(cpu, s, seg, lo, hi, asize, osize, code64);
  const top = getTop(s);
  for (let i = 0; i < 8; i++) {
    const w = FX_REGS + ((top + i) & 7) * 4;
    const a = addrAdd(lo, hi, envSize + i * 10, asize);
    const ah = ADDR_HI;
    cpu.wr64(seg, a, ah, s[w], s[w + 1]);
    const a2 = addrAdd(a, ah, 8, asize);
    cpu.wr16(seg, a2, ADDR_HI, s[w + 2]);
  }
  fninit(s);
}

/** FWAIT: #NM when CR0.MP and CR0.TS are both set; pending unmasked exceptions raise #MF. */
export function compileFwait(cpu: Cpu): Fn {
  const s = cpu.s;
  return () => {
    if ((s[S.CR0] & (S.CR0_MP | S.CR0_TS)) === (S.CR0_MP | S.CR0_TS)) cpu.fault(S.VEC_NM);
    if ((s[FX] & (SW_ES << 16)) !== 0) mathFault(cpu);
    return 0;
  };
}

// ------------------------------------------------------------------ x87 double fast path

const FDV = new DataView(new ArrayBuffer(8));
let FAST_SE = 0;
let FAST_HI = 0;
let FAST_LO = 0;
let FAST_PE = false;
let FAST_UP = false;
const SPLIT = 134217729;
const MIN_NORMAL = 2.2250738585072014e-308;

/** The extended value as a double if it is one exactly (a normal double or zero), else NaN. */
function extToDouble(se: number, hi: number, lo: number): number {
  const e = se & 0x7fff;
  if (e === 0) return (hi | lo) === 0 ? (se & 0x8000 ? -0 : 0) : Number.NaN;
  if (hi >= 0 || (lo & 0x7ff) !== 0 || e < 16383 - 1022 || e > 16383 + 1023) return Number.NaN;
  FDV.setInt32(0, (hi << 21) | (lo >>> 11), true);
  FDV.setInt32(4, ((se & 0x8000) << 16) | ((e - (16383 - 1023)) << 20) | ((hi >>> 11) & 0xfffff), true);
  return FDV.getFloat64(0, true);
}

/** opk 0 add, 1 mul, 4 sub (a - b), 5 subr (b - a). Returns false to take the general path. */
function fastArith(opk: number, ase: number, ahi: number, alo: number, bse: number, bhi: number, blo: number): boolean {
  const a = extToDouble(ase, ahi, alo);
  const b = extToDouble(bse, bhi, blo);
  if (Number.isNaN(a) || Number.isNaN(b)) return false;
  let r: number;
  let err: number;
  if (opk === 1) {
    r = a * b;
    const ca = SPLIT * a;
    const ah = ca - (ca - a);
    const al = a - ah;
    const cb = SPLIT * b;
    const bh = cb - (cb - b);
    const bl = b - bh;
    err = ah * bh - r + ah * bl + al * bh + al * bl;
    // Exact only without overflow in the splitting and with a normal error term.
    if (Math.abs(a) > 2 ** 900 || Math.abs(b) > 2 ** 900 || Math.abs(r) < 2 ** -969) return false;
  } else {
    const x = opk === 5 ? b : a;
    const y = opk === 0 ? b : opk === 5 ? -a : -b;
    r = x + y;
    const v = r - x;
    err = x - (r - v) + (y - v);
  }
  const ar = Math.abs(r);
  if (!(ar >= MIN_NORMAL && ar < Number.POSITIVE_INFINITY)) {
    // Exact zeros of ADD/SUB (x - x) are fine; anything tiny or huge takes the general path.
    if (!(r === 0 && opk !== 1 && err === 0)) return false;
  }
  FAST_PE = err !== 0;
  // Rounded up (C1): the magnitude grew, i.e. the exact value r + err is smaller in magnitude.
  FAST_UP = FAST_PE && (err < 0) === (r > 0);
  FDV.setFloat64(0, r, true);
  const wl = FDV.getInt32(0, true);
  const wh = FDV.getInt32(4, true);
  const de = (wh >>> 20) & 0x7ff;
  if (de === 0) {
    FAST_SE = (wh >>> 16) & 0x8000;
    FAST_HI = 0;
    FAST_LO = 0;
    return true;
  }
  FAST_SE = ((wh >>> 16) & 0x8000) | (de + 16383 - 1023);
  FAST_HI = 0x80000000 | ((wh & 0xfffff) << 11) | (wl >>> 21);
  FAST_LO = wl << 11;
  return true;
}
