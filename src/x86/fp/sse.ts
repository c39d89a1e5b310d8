/**
 * SSE..SSE4.2 and MMX: the operand machinery, moves, control instructions (LDMXCSR,
 * STMXCSR, FXSAVE, FXRSTOR, EMMS) and the floating-point instructions. Packed-integer
 * operations are in sseint.ts, string and CRC instructions in ssestr.ts.
 *
 * Invariants:
 * - XMM and MMX registers live in the state frame (fpstate.ts); closures address them as word
 *   indices. A memory source is first read into the scratch words FX_SCRATCH (never
 *   architectural), so every operation reads registers and scratch alike.
 * - Checks come first: #UD (CR0.EM, CR4.OSFXSR), #NM (CR0.TS), #MF for MMX forms with a
 *   pending x87 exception, #GP(0) for a misaligned 16-byte operand of an aligned form, then
 *   the memory accesses; registers and MXCSR change last. An unmasked SIMD exception sets
 *   the MXCSR flags and raises #XM (#UD when CR4.OSXMMEXCPT is clear) without writing the
 *   destination.
 * - Floating point: a fast path computes with JavaScript doubles when that is exact for the
 *   flags (round to nearest, no FTZ/DAZ, all exceptions masked, PE already set, normal
 *   operands and results); everything else goes through softfloat.ts.
 */
import type { Cpu } from "../cpu.ts";
import type { Insn } from "../decoder.ts";
import { eaHigh, makeEA } from "../compile.ts";
import { setArithFlags } from "../flags.ts";
import * as S from "../state.ts";
import {
  ADDR_HI, FX, FX_MXCSR, FX_REGS, FX_SCRATCH, FX_TAG_OP, FX_XMM, MXCSR_MASK, SW_ES, addrAdd, checkWrap, linearLow, mathFault, views,
} from "./fpstate.ts";
import { loadImage, storeImage } from "./fxsave.ts";
import * as SF from "./softfloat.ts";
import { F } from "./softfloat.ts";
import { compileSseInt } from "./sseint.ts";
import { compileSseStr } from "./ssestr.ts";

export type Fn = () => number;

/** Everything a compile function of the SSE/MMX units needs about one instruction. */
export interface Ctx {
  cpu: Cpu;
  s: Int32Array;
  d: Insn;
  mn: string;
  ops: readonly string[];
  isMem: boolean;
  /** XMM register numbers (REX applied) / MMX register numbers (low 3 bits). */
  reg: number;
  rm: number;
  imm: number;
  rexW: boolean;
  code64: boolean;
  seg: number;
  /** Computes the memory operand's address into ctx.lo/ctx.hi. */
  addr: () => void;
  lo: number;
  hi: number;
  nextLo: number;
  nextHi: number;
  /** Checks for SSE forms (#UD, #NM). */
  sse: () => void;
  /** Checks for MMX forms (#UD, #NM, #MF); call enterMmx() once the operands are read. */
  mmx: () => void;
  enterMmx: () => void;
  /** Reads `size` bytes (1, 2, 4, 8, 16) of the memory operand into the scratch words. */
  load: (size: number, aligned: boolean) => void;
  /** Stores `size` bytes from word index w (after probing the whole range). */
  store: (size: number, w: number, aligned: boolean) => void;
  /** Word index of XMM register r / MMX register r / the scratch. */
  xw: (r: number) => number;
  mw: (r: number) => number;
  scratch: number;
  /** Commits SIMD exception flags: raises #XM/#UD for unmasked ones (returns only if none). */
  simd: (flags: number) => void;
}

export const SCR = FX_SCRATCH;
/** A second scratch block for results (words FX_SCRATCH+4..+7). */
export const TMP = FX_SCRATCH + 4;

export function xmmWord(r: number): number {
  return FX_XMM + r * 4;
}
export function mmWord(r: number): number {
  return FX_REGS + (r & 7) * 4;
}

/** Marks MMX register r written (exponent all ones). */
export function mmWritten(s: Int32Array, r: number): void {
  s[FX_REGS + (r & 7) * 4 + 2] = 0xffff;
}

export function makeCtx(cpu: Cpu, d: Insn, nextLo: number, nextHi: number): Ctx {
  const s = cpu.s;
  const isMem = d.mod !== 3;
  const ea = isMem ? makeEA(cpu, d, nextLo, nextHi) : null;
  const seg = d.seg;
  const asize = d.asize;
  const ctx: Ctx = {
    cpu,
    s,
    d,
    mn: d.entry!.mnemonic,
    ops: d.entry!.operands,
    isMem,
    reg: d.reg,
    rm: d.rm,
    imm: d.imm & 0xff,
    rexW: (d.rex & 8) !== 0,
    code64: cpu.code64,
    seg,
    lo: 0,
    hi: 0,
    nextLo,
    nextHi,
    addr: () => {
      ctx.lo = ea!();
      ctx.hi = eaHigh();
    },
    sse: () => {
      const cr0 = s[S.CR0];
      if ((cr0 & S.CR0_EM) !== 0 || (s[S.CR4] & S.CR4_OSFXSR) === 0) cpu.ud();
      if ((cr0 & S.CR0_TS) !== 0) cpu.fault(S.VEC_NM);
    },
    mmx: () => {
      const cr0 = s[S.CR0];
      if ((cr0 & S.CR0_EM) !== 0) cpu.ud();
      if ((cr0 & S.CR0_TS) !== 0) cpu.fault(S.VEC_NM);
      if ((s[FX] & (SW_ES << 16)) !== 0) mathFault(cpu);
    },
    enterMmx: () => {
      s[FX] &= ~(7 << 27); // TOP = 0
      s[FX_TAG_OP] |= 0xff; // all valid
    },
    load: (size, aligned) => {
      ctx.addr();
      const lo = ctx.lo;
      const hi = ctx.hi;
      if (aligned && (linearLow(cpu, seg, lo) & 15) !== 0) cpu.gp(0);
      if (size > 8) checkWrap(cpu, seg, lo, size);
      switch (size) {
        case 16: {
          const a = cpu.rd64(seg, lo, hi);
          const ah = cpu.hi;
          const l2 = addrAdd(lo, hi, 8, asize);
          const b = cpu.rd64(seg, l2, ADDR_HI);
          s[SCR] = a;
          s[SCR + 1] = ah;
          s[SCR + 2] = b;
          s[SCR + 3] = cpu.hi;
          break;
        }
        case 8:
          s[SCR] = cpu.rd64(seg, lo, hi);
          s[SCR + 1] = cpu.hi;
          break;
        case 4: s[SCR] = cpu.rd32(seg, lo, hi); break;
        case 2: s[SCR] = cpu.rd16(seg, lo, hi); break;
        default: s[SCR] = cpu.rd8(seg, lo, hi); break;
      }
    },
    store: (size, w, aligned) => {
      ctx.addr();
      const lo = ctx.lo;
      const hi = ctx.hi;
      if (aligned && (linearLow(cpu, seg, lo) & 15) !== 0) cpu.gp(0);
      if (size > 8) checkWrap(cpu, seg, lo, size);
      switch (size) {
        case 16: {
          // Within one page of a flat segment (or in 64-bit mode) the second half cannot fault
          // once the first has not; otherwise check the whole range first.
          if ((linearLow(cpu, seg, lo) & 0xfff) > 0xff0 || (!cpu.code64 && cpu.segFast[seg] === 0)) cpu.probeWrite(seg, lo, hi, 16);
          cpu.wr64(seg, lo, hi, s[w], s[w + 1]);
          const l2 = addrAdd(lo, hi, 8, asize);
          cpu.wr64(seg, l2, ADDR_HI, s[w + 2], s[w + 3]);
          break;
        }
        case 8: cpu.wr64(seg, lo, hi, s[w], s[w + 1]); break;
        case 4: cpu.wr32(seg, lo, hi, s[w]); break;
        case 2: cpu.wr16(seg, lo, hi, s[w]); break;
        default: cpu.wr8(seg, lo, hi, s[w]); break;
      }
    },
    xw: xmmWord,
    mw: mmWord,
    scratch: SCR,
    simd: (flags) => {
      if (flags === 0) return;
      const mx = s[FX_MXCSR];
      const unmasked = flags & ~(mx >> 7) & 0x3f;
      if (unmasked !== 0) {
        // Pre-computation exceptions (IE DE ZE) stop the operation before OE UE PE exist.
        const set = (unmasked & 7) !== 0 ? flags & 7 : flags;
        s[FX_MXCSR] = mx | set;
        if ((s[S.CR4] & S.CR4_OSXMMEXCPT) === 0) cpu.ud();
        cpu.fault(S.VEC_XM);
      }
      s[FX_MXCSR] = mx | flags;
    },
  };
  return ctx;
}

// ------------------------------------------------------------------ dispatch

export function compileSse(cpu: Cpu, d: Insn, eipLo: number, eipHi: number, nextLo: number, nextHi: number): Fn | null {
  void eipLo;
  void eipHi;
  const c = makeCtx(cpu, d, nextLo, nextHi);
  return compileMove(c) ?? compileFloat(c) ?? compileSseInt(c) ?? compileSseStr(c);
}

/** Source word index of a W/Q operand: the register or (after load) the scratch. */
function srcWord(c: Ctx, mmx: boolean): number {
  if (c.isMem) return SCR;
  return mmx ? mmWord(c.rm) : xmmWord(c.rm);
}

// ------------------------------------------------------------------ moves and control

function compileMove(c: Ctx): Fn | null {
  const { s, cpu } = c;
  const reg = c.reg;
  const rm = c.rm;
  const isMem = c.isMem;
  const mn = c.mn;
  switch (mn) {
    case "movups": case "movupd": case "movaps": case "movapd": case "movdqa": case "movdqu": case "lddqu":
    case "movntps": case "movntpd": case "movntdq": case "movntdqa": {
      const toMem = c.ops[0]![0] === "W" || c.ops[0]![0] === "M";
      const aligned = !(mn === "movups" || mn === "movupd" || mn === "movdqu" || mn === "lddqu");
      const xr = xmmWord(reg);
      if (toMem) {
        if (!isMem) {
          const xd = xmmWord(rm);
          return () => {
            c.sse();
            s[xd] = s[xr]; s[xd + 1] = s[xr + 1]; s[xd + 2] = s[xr + 2]; s[xd + 3] = s[xr + 3];
            return 0;
          };
        }
        return () => {
          c.sse();
          c.store(16, xr, aligned);
          return 0;
        };
      }
      if (!isMem) {
        const xs = xmmWord(rm);
        return () => {
          c.sse();
          s[xr] = s[xs]; s[xr + 1] = s[xs + 1]; s[xr + 2] = s[xs + 2]; s[xr + 3] = s[xs + 3];
          return 0;
        };
      }
      return () => {
        c.sse();
        c.load(16, aligned);
        s[xr] = s[SCR]; s[xr + 1] = s[SCR + 1]; s[xr + 2] = s[SCR + 2]; s[xr + 3] = s[SCR + 3];
        return 0;
      };
    }
    case "movss": case "movsd": {
      const n = mn === "movss" ? 1 : 2;
      const xr = xmmWord(reg);
      if (c.ops[0]![0] === "W") {
        if (isMem) return () => { c.sse(); c.store(n * 4, xr, false); return 0; };
        const xd = xmmWord(rm);
        return () => { c.sse(); for (let k = 0; k < n; k++) s[xd + k] = s[xr + k]; return 0; };
      }
      if (isMem) {
        return () => {
          c.sse();
          c.load(n * 4, false);
          s[xr] = s[SCR];
          s[xr + 1] = n === 2 ? s[SCR + 1] : 0;
          s[xr + 2] = 0;
          s[xr + 3] = 0;
          return 0;
        };
      }
      const xs = xmmWord(rm);
      return () => { c.sse(); for (let k = 0; k < n; k++) s[xr + k] = s[xs + k]; return 0; };
    }
    case "movlps": case "movlpd": case "movhps": case "movhpd": {
      const high = mn === "movhps" || mn === "movhpd";
      const xr = xmmWord(reg);
      if (c.ops[0]![0] === "M") {
        if (!isMem) return null;
        return () => { c.sse(); c.store(8, high ? xr + 2 : xr, false); return 0; };
      }
      if (!isMem) {
        if (mn === "movlpd" || mn === "movhpd") return null;
        // MOVHLPS (0F 12 reg) / MOVLHPS (0F 16 reg)
        const xs = xmmWord(rm);
        if (!high) return () => { c.sse(); s[xr] = s[xs + 2]; s[xr + 1] = s[xs + 3]; return 0; };
        return () => { c.sse(); s[xr + 2] = s[xs]; s[xr + 3] = s[xs + 1]; return 0; };
      }
      const o = high ? 2 : 0;
      return () => {
        c.sse();
        c.load(8, false);
        s[xr + o] = s[SCR];
        s[xr + o + 1] = s[SCR + 1];
        return 0;
      };
    }
    case "movddup": case "movsldup": case "movshdup": {
      const xr = xmmWord(reg);
      const size = mn === "movddup" ? 8 : 16;
      const aligned = mn !== "movddup";
      return () => {
        c.sse();
        let w = xmmWord(rm);
        if (isMem) {
          c.load(size, aligned);
          w = SCR;
        }
        if (mn === "movddup") {
          const a = s[w], b = s[w + 1];
          s[xr] = a; s[xr + 1] = b; s[xr + 2] = a; s[xr + 3] = b;
        } else if (mn === "movsldup") {
          const a = s[w], b = s[w + 2];
          s[xr] = a; s[xr + 1] = a; s[xr + 2] = b; s[xr + 3] = b;
        } else {
          const a = s[w + 1], b = s[w + 3];
          s[xr] = a; s[xr + 1] = a; s[xr + 2] = b; s[xr + 3] = b;
        }
        return 0;
      };
    }
    case "movmskps": case "movmskpd": {
      if (isMem) return null;
      const xs = xmmWord(rm);
      const g = reg * 2;
      if (mn === "movmskps") return () => { c.sse(); s[g] = (s[xs] >>> 31) | ((s[xs + 1] >>> 31) << 1) | ((s[xs + 2] >>> 31) << 2) | ((s[xs + 3] >>> 31) << 3); s[g + 1] = 0; return 0; };
      return () => { c.sse(); s[g] = (s[xs + 1] >>> 31) | ((s[xs + 3] >>> 31) << 1); s[g + 1] = 0; return 0; };
    }
    case "movd": {
      // 66 0F 6E / 0F 6E: to XMM/MMX; 66 0F 7E / 0F 7E: from XMM/MMX. REX.W: 64 bits.
      const mmx = c.ops.some((o) => o[0] === "P");
      const toVec = c.ops[0]![0] === "V" || c.ops[0]![0] === "P";
      const w64 = c.rexW;
      const vw = mmx ? mmWord(reg) : xmmWord(reg);
      const g = rm * 2;
      const check = mmx ? c.mmx : c.sse;
      if (toVec) {
        return () => {
          check();
          let lo: number, hi = 0;
          if (isMem) {
            c.load(w64 ? 8 : 4, false);
            lo = s[SCR];
            if (w64) hi = s[SCR + 1];
          } else {
            lo = s[g];
            if (w64) hi = s[g + 1];
          }
          if (mmx) c.enterMmx();
          s[vw] = lo;
          s[vw + 1] = hi;
          if (mmx) mmWritten(s, reg);
          else { s[vw + 2] = 0; s[vw + 3] = 0; }
          return 0;
        };
      }
      return () => {
        check();
        if (isMem) {
          // The x87-to-MMX transition happens only if the store does not fault.
          c.store(w64 ? 8 : 4, vw, false);
          if (mmx) c.enterMmx();
        } else {
          if (mmx) c.enterMmx();
          s[g] = s[vw];
          s[g + 1] = w64 ? s[vw + 1] : 0;
        }
        return 0;
      };
    }
    case "movq": {
      const o0 = c.ops[0]!;
      if (o0 === "Pq" || o0 === "Qq") {
        // MMX movq: 0F 6F load, 0F 7F store
        const toReg = o0 === "Pq";
        const mr = mmWord(reg);
        if (toReg) {
          return () => {
            c.mmx();
            let w = mmWord(rm);
            if (isMem) { c.load(8, false); w = SCR; }
            c.enterMmx();
            s[mr] = s[w]; s[mr + 1] = s[w + 1];
            mmWritten(s, reg);
            return 0;
          };
        }
        return () => {
          c.mmx();
          if (isMem) {
            c.store(8, mr, false);
            c.enterMmx();
            return 0;
          }
          const md = mmWord(rm);
          c.enterMmx();
          s[md] = s[mr]; s[md + 1] = s[mr + 1];
          mmWritten(s, rm);
          return 0;
        };
      }
      const xr = xmmWord(reg);
      if (o0 === "Vq") {
        // F3 0F 7E: load low quadword, zero the high one
        return () => {
          c.sse();
          let w = xmmWord(rm);
          if (isMem) { c.load(8, false); w = SCR; }
          const a = s[w], b = s[w + 1];
          s[xr] = a; s[xr + 1] = b; s[xr + 2] = 0; s[xr + 3] = 0;
          return 0;
        };
      }
      // 66 0F D6: store low quadword (register form zeroes the destination's high quadword)
      if (isMem) return () => { c.sse(); c.store(8, xr, false); return 0; };
      const xd = xmmWord(rm);
      return () => { c.sse(); s[xd] = s[xr]; s[xd + 1] = s[xr + 1]; s[xd + 2] = 0; s[xd + 3] = 0; return 0; };
    }
    case "movq2dq": {
      if (isMem) return null;
      const xr = xmmWord(reg);
      const mr = mmWord(rm);
      return () => {
        c.sse();
        c.mmx();
        c.enterMmx();
        s[xr] = s[mr]; s[xr + 1] = s[mr + 1]; s[xr + 2] = 0; s[xr + 3] = 0;
        return 0;
      };
    }
    case "movdq2q": {
      if (isMem) return null;
      const mr = mmWord(reg);
      const xs = xmmWord(rm);
      return () => {
        c.sse();
        c.mmx();
        c.enterMmx();
        s[mr] = s[xs]; s[mr + 1] = s[xs + 1];
        mmWritten(s, reg);
        return 0;
      };
    }
    case "movntq": {
      if (!isMem) return null;
      const mr = mmWord(reg);
      return () => { c.mmx(); c.store(8, mr, false); c.enterMmx(); return 0; };
    }
    case "movnti": {
      if (!isMem) return null;
      const g = reg * 2;
      const w64 = c.rexW;
      return () => {
        c.store(w64 ? 8 : 4, g, false);
        return 0;
      };
    }
    case "maskmovq": case "maskmovdqu": {
      if (isMem) return null;
      const mmx = mn === "maskmovq";
      const n = mmx ? 8 : 16;
      const src = mmx ? mmWord(reg) : xmmWord(reg);
      const msk = mmx ? mmWord(rm) : xmmWord(rm);
      const asize = c.d.asize;
      const segD = c.d.segOverride >= 0 ? c.d.segOverride : S.SEG_DS;
      const seg = c.code64 && segD < 4 ? S.SEG_DS : segD;
      return () => {
        if (mmx) c.mmx();
        else c.sse();
        const v = views(s);
        const base = asize === 8 ? s[S.REG_EDI * 2] : asize === 4 ? s[S.REG_EDI * 2] : s[S.REG_EDI * 2] & 0xffff;
        const baseHi = asize === 8 ? s[S.REG_EDI * 2 + 1] : 0;
        // The MMX transition happens even if a store faults (host behaviour).
        if (mmx) c.enterMmx();
        // The host checks the whole 8/16-byte range first, even with no byte selected (a
        // fault writes nothing), then stores the selected bytes.
        checkWrap(cpu, seg, base, n);
        cpu.probeWrite(seg, base, baseHi, n);
        for (let i = 0; i < n; i++) {
          if ((v.u8[msk * 4 + i]! & 0x80) === 0) continue;
          const a = addrAdd(base, baseHi, i, asize);
          cpu.wr8(seg, a, ADDR_HI, v.u8[src * 4 + i]!);
        }
        return 0;
      };
    }
    case "emms":
      return () => {
        const cr0 = s[S.CR0];
        if ((cr0 & S.CR0_EM) !== 0) cpu.ud();
        if ((cr0 & S.CR0_TS) !== 0) cpu.fault(S.VEC_NM);
        if ((s[FX] & (SW_ES << 16)) !== 0) mathFault(cpu);
        s[FX_TAG_OP] &= ~0xff;
        s[FX] &= ~(7 << 27); // TOP = 0
        return 0;
      };
    case "ldmxcsr":
      return () => {
        c.sse();
        c.load(4, false);
        const v = s[SCR];
        if ((v & ~MXCSR_MASK) !== 0) cpu.gp(0);
        s[FX_MXCSR] = v;
        return 0;
      };
    case "stmxcsr":
      return () => {
        c.sse();
        s[SCR] = s[FX_MXCSR];
        c.store(4, SCR, false);
        return 0;
      };
    case "fxsave": case "fxrstor": {
      const w64 = c.rexW && c.code64;
      const nXmm = c.code64 ? 16 : 8;
      const asize = c.d.asize;
      const seg = c.seg;
      return () => {
        const cr0 = s[S.CR0];
        if ((cr0 & S.CR0_EM) !== 0) cpu.ud();
        if ((cr0 & S.CR0_TS) !== 0) cpu.fault(S.VEC_NM);
        c.addr();
        const lo = c.lo;
        const hi = c.hi;
        if ((linearLow(cpu, seg, lo) & 15) !== 0) cpu.gp(0);
        checkWrap(cpu, seg, lo, 512);
        const last = addrAdd(lo, hi, 511, asize);
        if (mn === "fxsave") {
          // The host checks the last byte first.
          cpu.probeWrite(seg, last, ADDR_HI, 1);
          cpu.probeWrite(seg, lo, hi, 512);
          storeImage(s, (off, v) => {
            const a = addrAdd(lo, hi, off, asize);
            cpu.wr32(seg, a, ADDR_HI, v);
          }, w64, nXmm);
          return 0;
        }
        const rd = (off: number): number => {
          const a = addrAdd(lo, hi, off, asize);
          return cpu.rd32(seg, a, ADDR_HI);
        };
        // Read everything (faults first), check MXCSR, then load.
        cpu.rd8(seg, last, ADDR_HI);
        const mx = rd(24);
        if ((mx & ~MXCSR_MASK) !== 0) cpu.gp(0);
        const img = FXIMG;
        for (let k = 0; k < 128; k++) img[k] = rd(k * 4);
        loadImage(s, (off) => img[off >> 2]!, w64, nXmm);
        return 0;
      };
    }
  }
  return null;
}

const FXIMG = new Int32Array(128);

// ------------------------------------------------------------------ floating point

const MIN_NORMAL_64 = 2.2250738585072014e-308;
const MIN_NORMAL_32 = 1.1754943508222875e-38;
const MAX_32 = 3.4028234663852886e38;

const OP_ADD = 0;
const OP_SUB = 1;
const OP_MUL = 2;
const OP_DIV = 3;
const OP_MIN = 4;
const OP_MAX = 5;
const OP_SQRT = 6;

const FLOAT_OPS: Record<string, [number, number, number]> = {
  // mnemonic: [op, format (1 double, 2 single), lanes]
  addss: [OP_ADD, 2, 1], addsd: [OP_ADD, 1, 1], addps: [OP_ADD, 2, 4], addpd: [OP_ADD, 1, 2],
  subss: [OP_SUB, 2, 1], subsd: [OP_SUB, 1, 1], subps: [OP_SUB, 2, 4], subpd: [OP_SUB, 1, 2],
  mulss: [OP_MUL, 2, 1], mulsd: [OP_MUL, 1, 1], mulps: [OP_MUL, 2, 4], mulpd: [OP_MUL, 1, 2],
  divss: [OP_DIV, 2, 1], divsd: [OP_DIV, 1, 1], divps: [OP_DIV, 2, 4], divpd: [OP_DIV, 1, 2],
  minss: [OP_MIN, 2, 1], minsd: [OP_MIN, 1, 1], minps: [OP_MIN, 2, 4], minpd: [OP_MIN, 1, 2],
  maxss: [OP_MAX, 2, 1], maxsd: [OP_MAX, 1, 1], maxps: [OP_MAX, 2, 4], maxpd: [OP_MAX, 1, 2],
  sqrtss: [OP_SQRT, 2, 1], sqrtsd: [OP_SQRT, 1, 1], sqrtps: [OP_SQRT, 2, 4], sqrtpd: [OP_SQRT, 1, 2],
};

/** softfloat control bits from MXCSR. */
export function sseCtl(mx: number): number {
  let ctl = (mx >> 13) & 3;
  if ((mx & 0x8000) !== 0) ctl |= SF.CTL_FTZ;
  if ((mx & 0x800) === 0) ctl |= SF.CTL_UE_UNMASKED;
  if ((mx & 0x400) === 0) ctl |= SF.CTL_OE_UNMASKED;
  return ctl;
}

/** Flags accumulated by the lane helpers. */
let LF = 0;

/**
 * One lane of a two-operand FP operation in the general path: a at word aw, b at word bw
 * (doubles: two words, low first), result at word rw. Accumulates flags into LF.
 */
function laneGeneral(s: Int32Array, op: number, fmt: number, aw: number, bw: number, rw: number, mx: number): void {
  const daz = (mx & 0x40) !== 0;
  const ctl = sseCtl(mx);
  const f = fmt === 1 ? SF.FMT_F64 : SF.FMT_F32;
  SF.clearUnpackFlags();
  F.flags = 0;
  if (fmt === 1) {
    SF.unpackF64(0, s[aw + 1], s[aw], daz);
    if (op !== OP_SQRT) SF.unpackF64(1, s[bw + 1], s[bw], daz);
  } else {
    SF.unpackF32(0, s[aw], daz);
    if (op !== OP_SQRT) SF.unpackF32(1, s[bw], daz);
  }
  const ac = SF.Ac;
  const bc = op === OP_SQRT ? SF.C_ZERO : SF.Bc;
  const nan = ac >= SF.C_QNAN || (op !== OP_SQRT && bc >= SF.C_QNAN);
  switch (op) {
    case OP_ADD: SF.add(0, f, ctl); break;
    case OP_SUB: SF.add(1, f, ctl); break;
    case OP_MUL: SF.mul(f, ctl); break;
    case OP_DIV: SF.div(f, ctl); break;
    case OP_SQRT: SF.sqrt(f, ctl); break;
    default: {
      // MIN/MAX: the second operand when either is a NaN or both are zeros; IE for any NaN.
      let pickB: boolean;
      if (nan) {
        F.flags |= SF.FE_INVALID;
        pickB = true;
      } else if (ac === SF.C_ZERO && bc === SF.C_ZERO) pickB = true;
      else {
        const r = SF.compare(false);
        pickB = op === OP_MIN ? r !== 0 : r !== 2;
      }
      const src = pickB ? bw : aw;
      // With DAZ a denormal source is delivered as a zero of its sign.
      const cls = pickB ? bc : ac;
      if (cls === SF.C_ZERO) {
        const sign = fmt === 1 ? s[src + 1] & 0x80000000 : s[src] & 0x80000000;
        if (fmt === 1) { F.hi = sign; F.lo = 0; } else F.lo = sign;
      } else if (fmt === 1) { F.hi = s[src + 1]; F.lo = s[src]; }
      else F.lo = s[src];
      break;
    }
  }
  let flags = F.flags;
  if (!nan && (flags & (SF.FE_INVALID | SF.FE_DIVZERO)) === 0) flags |= SF.unpackFlags;
  else if (!nan && (flags & SF.FE_DIVZERO) !== 0) flags |= 0;
  LF |= flags;
  s[rw] = F.lo;
  if (fmt === 1) s[rw + 1] = F.hi;
}

function compileFloat(c: Ctx): Fn | null {
  const { s } = c;
  const mn = c.mn;
  const isMem = c.isMem;
  const fop = FLOAT_OPS[mn];
  if (fop) {
    const [op, fmt, lanes] = fop;
    const xr = xmmWord(c.reg);
    const xs = isMem ? SCR : xmmWord(c.rm);
    const size = lanes === 1 ? (fmt === 1 ? 8 : 4) : 16;
    const step = fmt === 1 ? 2 : 1;
    const v = views(s);
    const f64 = v.f64;
    const f32 = v.f32;
    return () => {
      c.sse();
      if (isMem) c.load(size, size === 16);
      const mx = s[FX_MXCSR];
      // Fast path: round to nearest, nothing unmasked, no FTZ/DAZ (PE is then just a flag).
      if ((mx & 0xffc0) === 0x1f80 && op !== OP_MIN && op !== OP_MAX) {
        const r = fmt === 1 ? fast64(op, f64, xr >> 1, xs >> 1, lanes, (mx & 0x20) !== 0) : fast32(op, f32, xr, xs, lanes, (mx & 0x20) !== 0);
        if (r >= 0) {
          if (r === 1) s[FX_MXCSR] = mx | 0x20;
          return 0;
        }
      }
      LF = 0;
      for (let l = 0; l < lanes; l++) {
        const o = l * step;
        // SQRT takes its operand from the source (B); laneGeneral reads A for it.
        if (op === OP_SQRT) laneGeneral(s, op, fmt, xs + o, xs + o, TMP + o, mx);
        else laneGeneral(s, op, fmt, xr + o, xs + o, TMP + o, mx);
      }
      c.simd(LF);
      for (let k = 0; k < lanes * step; k++) s[xr + k] = s[TMP + k];
      return 0;
    };
  }
  return compileFloatMisc(c);
}

const TMPD = new Float64Array(4);
const SPLIT = 134217729; // 2^27 + 1 (Veltkamp splitting)
const BIG = 2 ** 900;
const TINY = 2 ** -969;

/**
 * Double lanes with JavaScript arithmetic, which is IEEE round-to-nearest: exact whenever the
 * operands and the result are normal (or zero) and finite, the only flag then being PE, which
 * error-free transformations detect (TwoSum, Dekker's product). Returns -1 to take the general
 * path (nothing written), 0 when done exactly (or PE already set), 1 when done and inexact.
 */
function fast64(op: number, f: Float64Array, d: number, sI: number, lanes: number, peSet: boolean): number {
  let inexact = false;
  for (let l = 0; l < lanes; l++) {
    const a = f[d + l]!;
    const b = f[sI + l]!;
    const aa = Math.abs(a);
    const ab = Math.abs(b);
    if ((op !== OP_SQRT && !(aa >= MIN_NORMAL_64 || aa === 0)) || !(ab >= MIN_NORMAL_64 || ab === 0)) return -1;
    let r: number;
    switch (op) {
      case OP_ADD: case OP_SUB: {
        const bb = op === OP_ADD ? b : -b;
        r = a + bb;
        if (!peSet && !inexact) {
          const v = r - a;
          if ((a - (r - v)) + (bb - v) !== 0) inexact = true;
        }
        break;
      }
      case OP_MUL:
        r = a * b;
        if (r === 0 && a !== 0 && b !== 0) return -1;
        if (!peSet && !inexact) {
          // Dekker's error term is exact only while it stays normal (|product| >= 2^-969)
          // and the splitting cannot overflow.
          if (aa > BIG || ab > BIG || Math.abs(r) < TINY) return -1;
          const ca = SPLIT * a;
          const ah = ca - (ca - a);
          const al = a - ah;
          const cb = SPLIT * b;
          const bh = cb - (cb - b);
          const bl = b - bh;
          if (((ah * bh - r) + ah * bl + al * bh) + al * bl !== 0) inexact = true;
        }
        break;
      case OP_DIV:
        if (!peSet || b === 0) return -1;
        r = a / b;
        if (r === 0 && a !== 0) return -1;
        break;
      default:
        if (!peSet || b < 0) return -1;
        r = Math.sqrt(b);
        break;
    }
    const ar = Math.abs(r);
    if (!(ar >= MIN_NORMAL_64 && ar < Number.POSITIVE_INFINITY) && r !== 0) return -1;
    TMPD[l] = r;
  }
  for (let l = 0; l < lanes; l++) f[d + l] = TMPD[l]!;
  return inexact ? 1 : 0;
}

/** Single lanes: computed in double and rounded once (innocuous double rounding); PE must be set already. */
function fast32(op: number, f: Float32Array, d: number, sI: number, lanes: number, peSet: boolean): number {
  if (!peSet) return -1;
  for (let l = 0; l < lanes; l++) {
    const a = f[d + l]!;
    const b = f[sI + l]!;
    const aa = Math.abs(a);
    const ab = Math.abs(b);
    if ((op !== OP_SQRT && !(aa >= MIN_NORMAL_32 || aa === 0)) || !(ab >= MIN_NORMAL_32 || ab === 0)) return -1;
    let r: number;
    switch (op) {
      case OP_ADD: r = Math.fround(a + b); break;
      case OP_SUB: r = Math.fround(a - b); break;
      case OP_MUL:
        r = Math.fround(a * b);
        if (r === 0 && a !== 0 && b !== 0) return -1;
        break;
      case OP_DIV:
        if (b === 0) return -1;
        r = Math.fround(a / b);
        if (r === 0 && a !== 0) return -1;
        break;
      default:
        if (b < 0) return -1;
        r = Math.fround(Math.sqrt(b));
        break;
    }
    const ar = Math.abs(r);
    if (!(ar >= MIN_NORMAL_32 && ar <= MAX_32) && r !== 0) return -1;
    TMPD[l] = r;
  }
  for (let l = 0; l < lanes; l++) f[d + l] = TMPD[l]!;
  return 0;
}

/** Comparison predicate (0..7) on A and B (unpacked); sets LF for invalid. */
function cmpPredicate(pred: number): boolean {
  const signaling = pred === 1 || pred === 2 || pred === 5 || pred === 6;
  const r = SF.compare(signaling); // 0 less, 1 equal, 2 greater, 3 unordered
  switch (pred & 7) {
    case 0: return r === 1;
    case 1: return r === 0;
    case 2: return r === 0 || r === 1;
    case 3: return r === 3;
    case 4: return r !== 1;
    case 5: return r !== 0;
    case 6: return !(r === 0 || r === 1);
    default: return r !== 3;
  }
}

function unpack2(s: Int32Array, fmt: number, aw: number, bw: number, daz: boolean): void {
  SF.clearUnpackFlags();
  F.flags = 0;
  if (fmt === 1) {
    SF.unpackF64(0, s[aw + 1], s[aw], daz);
    SF.unpackF64(1, s[bw + 1], s[bw], daz);
  } else {
    SF.unpackF32(0, s[aw], daz);
    SF.unpackF32(1, s[bw], daz);
  }
}

/** DE from the unpack unless an operand is a NaN (the host's rule). */
function denFlags(): number {
  if (SF.Ac >= SF.C_QNAN || SF.Bc >= SF.C_QNAN) return 0;
  return SF.unpackFlags;
}

function compileFloatMisc(c: Ctx): Fn | null {
  const { s } = c;
  const mn = c.mn;
  const isMem = c.isMem;
  const xr = xmmWord(c.reg);
  const xs = isMem ? SCR : xmmWord(c.rm);
  const imm = c.imm;
  switch (mn) {
    case "andps": case "andpd": case "andnps": case "andnpd": case "orps": case "orpd": case "xorps": case "xorpd": {
      const k = mn.slice(0, mn.length - 2);
      return () => {
        c.sse();
        if (isMem) c.load(16, true);
        for (let i = 0; i < 4; i++) {
          const a = s[xr + i];
          const b = s[xs + i];
          s[xr + i] = k === "and" ? a & b : k === "andn" ? ~a & b : k === "or" ? a | b : a ^ b;
        }
        return 0;
      };
    }
    case "cmpss": case "cmpsd": case "cmpps": case "cmppd": {
      // Legacy SSE uses imm8 bits 2:0 only (the host ignores the rest).
      const pred = imm & 7;
      const fmt = mn.endsWith("d") ? 1 : 2;
      const lanes = mn[3] === "s" ? 1 : fmt === 1 ? 2 : 4;
      const step = fmt === 1 ? 2 : 1;
      const size = lanes === 1 ? (fmt === 1 ? 8 : 4) : 16;
      return () => {
        c.sse();
        if (isMem) c.load(size, size === 16);
        const mx = s[FX_MXCSR];
        const daz = (mx & 0x40) !== 0;
        LF = 0;
        for (let l = 0; l < lanes; l++) {
          const o = l * step;
          unpack2(s, fmt, xr + o, xs + o, daz);
          const t = cmpPredicate(pred);
          LF |= F.flags | denFlags();
          s[TMP + o] = t ? -1 : 0;
          if (fmt === 1) s[TMP + o + 1] = t ? -1 : 0;
        }
        c.simd(LF);
        for (let k = 0; k < lanes * step; k++) s[xr + k] = s[TMP + k];
        return 0;
      };
    }
    case "comiss": case "ucomiss": case "comisd": case "ucomisd": {
      const fmt = mn.endsWith("d") ? 1 : 2;
      const signaling = mn[0] === "c";
      return () => {
        c.sse();
        if (isMem) c.load(fmt === 1 ? 8 : 4, false);
        const mx = s[FX_MXCSR];
        unpack2(s, fmt, xr, xs, (mx & 0x40) !== 0);
        const r = SF.compare(signaling);
        let flags = F.flags;
        if (r !== 3) flags |= SF.unpackFlags;
        c.simd(flags);
        setArithFlags(s, r === 0 ? S.F_CF : r === 1 ? S.F_ZF : r === 2 ? 0 : S.F_ZF | S.F_PF | S.F_CF);
        return 0;
      };
    }
    case "shufps": case "shufpd": {
      return () => {
        c.sse();
        if (isMem) c.load(16, true);
        if (mn === "shufps") {
          s[TMP] = s[xr + (imm & 3)];
          s[TMP + 1] = s[xr + ((imm >> 2) & 3)];
          s[TMP + 2] = s[xs + ((imm >> 4) & 3)];
          s[TMP + 3] = s[xs + ((imm >> 6) & 3)];
        } else {
          const a = (imm & 1) * 2;
          const b = ((imm >> 1) & 1) * 2;
          s[TMP] = s[xr + a]; s[TMP + 1] = s[xr + a + 1];
          s[TMP + 2] = s[xs + b]; s[TMP + 3] = s[xs + b + 1];
        }
        for (let k = 0; k < 4; k++) s[xr + k] = s[TMP + k];
        return 0;
      };
    }
    case "unpcklps": case "unpckhps": case "unpcklpd": case "unpckhpd": {
      const hi = mn[5] === "h" ? 2 : 0;
      const ps = mn.endsWith("ps");
      return () => {
        c.sse();
        if (isMem) c.load(16, true);
        if (ps) {
          s[TMP] = s[xr + hi]; s[TMP + 1] = s[xs + hi]; s[TMP + 2] = s[xr + hi + 1]; s[TMP + 3] = s[xs + hi + 1];
        } else {
          s[TMP] = s[xr + hi]; s[TMP + 1] = s[xr + hi + 1]; s[TMP + 2] = s[xs + hi]; s[TMP + 3] = s[xs + hi + 1];
        }
        for (let k = 0; k < 4; k++) s[xr + k] = s[TMP + k];
        return 0;
      };
    }
    case "haddps": case "haddpd": case "hsubps": case "hsubpd": case "addsubps": case "addsubpd": {
      const fmt = mn.endsWith("d") ? 1 : 2;
      const step = fmt === 1 ? 2 : 1;
      const lanes = fmt === 1 ? 2 : 4;
      const kind = mn.startsWith("hadd") ? 0 : mn.startsWith("hsub") ? 1 : 2;
      return () => {
        c.sse();
        if (isMem) c.load(16, true);
        const mx = s[FX_MXCSR];
        LF = 0;
        // Copy the operands (the destination is also a source).
        for (let k = 0; k < 4; k++) {
          s[SCR2 + k] = s[xr + k];
          s[SCR2 + 4 + k] = s[xs + k];
        }
        const A = SCR2;
        const B = SCR2 + 4;
        for (let l = 0; l < lanes; l++) {
          const o = l * step;
          if (kind === 2) {
            laneGeneral(s, (l & 1) === 0 ? OP_SUB : OP_ADD, fmt, A + o, B + o, TMP + o, mx);
          } else {
            // Lanes: first half from A pairs, second half from B pairs.
            const half = lanes / 2;
            const srcBase = l < half ? A : B;
            const p = (l % half) * 2 * step;
            laneGeneral(s, kind === 0 ? OP_ADD : OP_SUB, fmt, srcBase + p, srcBase + p + step, TMP + o, mx);
          }
        }
        c.simd(LF);
        for (let k = 0; k < 4; k++) s[xr + k] = s[TMP + k];
        return 0;
      };
    }
    case "blendps": case "blendpd": case "blendvps": case "blendvpd": {
      const pd = mn.endsWith("pd");
      const v = mn.startsWith("blendv");
      const x0 = xmmWord(0);
      return () => {
        c.sse();
        if (isMem) c.load(16, true);
        for (let k = 0; k < 4; k++) {
          const lane = pd ? k >> 1 : k;
          const sel = v ? (pd ? s[x0 + lane * 2 + 1] < 0 : s[x0 + k] < 0) : ((imm >> lane) & 1) !== 0;
          if (sel) s[xr + k] = s[xs + k];
        }
        return 0;
      };
    }
    case "extractps": {
      const sel = imm & 3;
      if (!isMem) {
        const g = c.rm * 2;
        return () => { c.sse(); s[g] = s[xr + sel]; s[g + 1] = 0; return 0; };
      }
      return () => { c.sse(); c.store(4, xr + sel, false); return 0; };
    }
    case "insertps": {
      const srcSel = (imm >> 6) & 3;
      const dstSel = (imm >> 4) & 3;
      const zmask = imm & 15;
      return () => {
        c.sse();
        let v: number;
        if (isMem) {
          c.load(4, false);
          v = s[SCR];
        } else v = s[xs + srcSel];
        s[xr + dstSel] = v;
        for (let k = 0; k < 4; k++) if ((zmask >> k) & 1) s[xr + k] = 0;
        return 0;
      };
    }
    case "dpps": case "dppd": {
      const pd = mn === "dppd";
      return () => {
        c.sse();
        if (isMem) c.load(16, true);
        const mx = s[FX_MXCSR];
        LF = 0;
        for (let k = 0; k < 4; k++) {
          s[SCR2 + k] = s[xr + k];
          s[SCR2 + 4 + k] = s[xs + k];
        }
        const A = SCR2;
        const B = SCR2 + 4;
        const P = SCR2 + 8; // products
        if (pd) {
          for (let l = 0; l < 2; l++) {
            if ((imm >> (4 + l)) & 1) laneGeneral(s, OP_MUL, 1, A + l * 2, B + l * 2, P + l * 2, mx);
            else { s[P + l * 2] = 0; s[P + l * 2 + 1] = 0; }
          }
          // An unmasked exception of the products stops the instruction before the sums.
          c.simd(LF);
          LF = 0;
          laneGeneral(s, OP_ADD, 1, P, P + 2, P + 4, mx);
          c.simd(LF);
          for (let l = 0; l < 2; l++) {
            if ((imm >> l) & 1) { s[xr + l * 2] = s[P + 4]; s[xr + l * 2 + 1] = s[P + 5]; }
            else { s[xr + l * 2] = 0; s[xr + l * 2 + 1] = 0; }
          }
          return 0;
        }
        for (let l = 0; l < 4; l++) {
          if ((imm >> (4 + l)) & 1) laneGeneral(s, OP_MUL, 2, A + l, B + l, P + l, mx);
          else s[P + l] = 0;
        }
        c.simd(LF);
        LF = 0;
        const Q = SCR2 + 12;
        laneGeneral(s, OP_ADD, 2, P, P + 1, Q, mx);
        laneGeneral(s, OP_ADD, 2, P + 2, P + 3, Q + 1, mx);
        laneGeneral(s, OP_ADD, 2, Q, Q + 1, Q + 2, mx);
        c.simd(LF);
        for (let l = 0; l < 4; l++) s[xr + l] = (imm >> l) & 1 ? s[Q + 2] : 0;
        return 0;
      };
    }
    case "roundss": case "roundsd": case "roundps": case "roundpd": {
      const fmt = mn.endsWith("d") ? 1 : 2;
      const lanes = mn[5] === "s" ? 1 : fmt === 1 ? 2 : 4;
      const step = fmt === 1 ? 2 : 1;
      const size = lanes === 1 ? (fmt === 1 ? 8 : 4) : 16;
      return () => {
        c.sse();
        if (isMem) c.load(size, size === 16);
        const mx = s[FX_MXCSR];
        const rc = (imm & 4) !== 0 ? (mx >> 13) & 3 : imm & 3;
        const noPE = (imm & 8) !== 0;
        const daz = (mx & 0x40) !== 0;
        const f = fmt === 1 ? SF.FMT_F64 : SF.FMT_F32;
        LF = 0;
        for (let l = 0; l < lanes; l++) {
          const o = l * step;
          SF.clearUnpackFlags();
          F.flags = 0;
          if (fmt === 1) SF.unpackF64(0, s[xs + o + 1], s[xs + o], daz);
          else SF.unpackF32(0, s[xs + o], daz);
          SF.roundIntegral(f, (sseCtl(mx) & ~3) | rc, rc, noPE);
          LF |= F.flags;
          s[TMP + o] = F.lo;
          if (fmt === 1) s[TMP + o + 1] = F.hi;
        }
        c.simd(LF);
        for (let k = 0; k < lanes * step; k++) s[xr + k] = s[TMP + k];
        return 0;
      };
    }
    case "rcpss": case "rcpps": case "rsqrtss": case "rsqrtps": {
      const lanes = mn.endsWith("ss") ? 1 : 4;
      const rsq = mn.startsWith("rsqrt");
      const f32 = views(s).f32;
      return () => {
        c.sse();
        if (isMem) c.load(lanes === 1 ? 4 : 16, lanes === 4);
        for (let l = 0; l < lanes; l++) s[TMP + l] = approx(s[xs + l], rsq, f32);
        for (let l = 0; l < lanes; l++) s[xr + l] = s[TMP + l];
        return 0;
      };
    }
  }
  return compileConvert(c);
}

const SCR2 = FX_SCRATCH + 8; // 16 words of operand copies and temporaries (to FX_SCRATCH+23)

/**
 * RCPSS/RSQRTSS: the manuals only bound the relative error (1.5 x 2^-12); this returns the
 * correctly rounded single result of the exact function (the differential tester compares
 * these within 2^-10: the host, an AMD processor, is off by up to 2^-11). Denormal inputs
 * count as zeros, and results up to 2^-126 are flushed to zero, as the host does.
 */
function approx(w: number, rsq: boolean, f32: Float32Array): number {
  const e = (w >>> 23) & 0xff;
  const sign = w & 0x80000000;
  if (e === 0xff) {
    if ((w & 0x7fffff) !== 0) return w | 0x400000; // NaN: quieted
    if (rsq) return sign !== 0 ? 0xffc00000 | 0 : 0; // rsqrt(+inf) = +0, rsqrt(-inf) = NaN
    return sign; // rcp(inf) = 0
  }
  if (e === 0) return rsq ? sign | 0x7f800000 : sign | 0x7f800000; // zero/denormal: infinity
  if (rsq && sign !== 0) return 0xffc00000 | 0;
  // Compute through the float view of a scratch slot.
  const save = f32[0]!;
  void save;
  const x = bitsToF32(w);
  let r = rsq ? 1 / Math.sqrt(x) : 1 / x;
  r = Math.fround(r);
  // The host flushes a reciprocal of 2^-126 too.
  if (Math.abs(r) <= MIN_NORMAL_32) return sign;
  return f32Bits(r);
}

const CV = new DataView(new ArrayBuffer(8));
export function bitsToF32(w: number): number {
  CV.setInt32(0, w, true);
  return CV.getFloat32(0, true);
}
export function f32Bits(x: number): number {
  CV.setFloat32(0, x, true);
  return CV.getInt32(0, true);
}

// ------------------------------------------------------------------ conversions

function compileConvert(c: Ctx): Fn | null {
  const { s } = c;
  const mn = c.mn;
  const isMem = c.isMem;
  const reg = c.reg;
  const xr = xmmWord(reg);
  switch (mn) {
    case "cvtsi2ss": case "cvtsi2sd": {
      const w64 = c.rexW;
      const fmt = mn === "cvtsi2sd" ? SF.FMT_F64 : SF.FMT_F32;
      const g = c.rm * 2;
      return () => {
        c.sse();
        let lo: number, hi: number;
        if (isMem) {
          c.load(w64 ? 8 : 4, false);
          lo = s[SCR];
          hi = w64 ? s[SCR + 1] : lo >> 31;
        } else {
          lo = s[g];
          hi = w64 ? s[g + 1] : lo >> 31;
        }
        const mx = s[FX_MXCSR];
        F.flags = 0;
        SF.fromInt64(hi, lo, fmt, sseCtl(mx));
        c.simd(F.flags);
        s[xr] = F.lo;
        if (fmt === SF.FMT_F64) s[xr + 1] = F.hi;
        return 0;
      };
    }
    case "cvtss2si": case "cvtsd2si": case "cvttss2si": case "cvttsd2si": {
      const w64 = c.rexW;
      const fmt = mn.endsWith("sd2si") ? 1 : 2;
      const trunc = mn[3] === "t";
      const g = reg * 2;
      const xs = isMem ? SCR : xmmWord(c.rm);
      return () => {
        c.sse();
        if (isMem) c.load(fmt === 1 ? 8 : 4, false);
        const mx = s[FX_MXCSR];
        const daz = (mx & 0x40) !== 0;
        SF.clearUnpackFlags();
        F.flags = 0;
        if (fmt === 1) SF.unpackF64(0, s[xs + 1], s[xs], daz);
        else SF.unpackF32(0, s[xs], daz);
        const lo = SF.toInt(w64 ? 64 : 32, trunc ? 3 : (mx >> 13) & 3);
        const hi = SF.IH;
        // Conversions to integers do not report DE.
        c.simd(F.flags);
        s[g] = lo;
        s[g + 1] = w64 ? hi : 0;
        return 0;
      };
    }
    case "cvtss2sd": case "cvtsd2ss": case "cvtps2pd": case "cvtpd2ps": {
      const toD = mn === "cvtss2sd" || mn === "cvtps2pd";
      const lanes = mn[3] === "s" ? 1 : 2;
      const size = lanes === 1 ? (toD ? 4 : 8) : toD ? 8 : 16;
      const xs = isMem ? SCR : xmmWord(c.rm);
      return () => {
        c.sse();
        if (isMem) c.load(size, size === 16);
        const mx = s[FX_MXCSR];
        const daz = (mx & 0x40) !== 0;
        const ctl = sseCtl(mx);
        LF = 0;
        for (let l = 0; l < lanes; l++) {
          SF.clearUnpackFlags();
          F.flags = 0;
          if (toD) SF.unpackF32(0, s[xs + l], daz);
          else SF.unpackF64(0, s[xs + l * 2 + 1], s[xs + l * 2], daz);
          SF.convert(toD ? SF.FMT_F64 : SF.FMT_F32, ctl);
          let flags = F.flags;
          if (SF.Ac !== SF.C_QNAN && SF.Ac !== SF.C_SNAN) flags |= SF.unpackFlags;
          LF |= flags;
          if (toD) { s[TMP + l * 2] = F.lo; s[TMP + l * 2 + 1] = F.hi; }
          else s[TMP + l] = F.lo;
        }
        c.simd(LF);
        if (toD) for (let k = 0; k < lanes * 2; k++) s[xr + k] = s[TMP + k];
        else if (lanes === 1) s[xr] = s[TMP];
        else { s[xr] = s[TMP]; s[xr + 1] = s[TMP + 1]; s[xr + 2] = 0; s[xr + 3] = 0; }
        return 0;
      };
    }
    case "cvtdq2ps": case "cvtdq2pd": case "cvtpi2ps": case "cvtpi2pd": {
      const toD = mn.endsWith("pd");
      const mmxSrc = mn.startsWith("cvtpi");
      const lanes = toD || mmxSrc ? 2 : 4;
      const size = lanes === 2 ? 8 : 16;
      const xs = isMem ? SCR : mmxSrc ? mmWord(c.rm) : xmmWord(c.rm);
      return () => {
        c.sse();
        // An MMX register source makes the x87-to-MMX transition; a memory source does not.
        if (mmxSrc && !isMem) c.mmx();
        if (isMem) c.load(size, size === 16);
        if (mmxSrc && !isMem) c.enterMmx();
        const ctl = sseCtl(s[FX_MXCSR]);
        LF = 0;
        for (let l = 0; l < lanes; l++) {
          F.flags = 0;
          const v = s[xs + l];
          SF.fromInt64(v >> 31, v, toD ? SF.FMT_F64 : SF.FMT_F32, ctl);
          LF |= F.flags;
          if (toD) { s[TMP + l * 2] = F.lo; s[TMP + l * 2 + 1] = F.hi; }
          else s[TMP + l] = F.lo;
        }
        c.simd(LF);
        if (toD) for (let k = 0; k < 4; k++) s[xr + k] = s[TMP + k];
        else for (let k = 0; k < lanes; k++) s[xr + k] = s[TMP + k];
        return 0;
      };
    }
    case "cvtps2dq": case "cvttps2dq": case "cvtpd2dq": case "cvttpd2dq":
    case "cvtps2pi": case "cvttps2pi": case "cvtpd2pi": case "cvttpd2pi": {
      const fromD = mn.includes("pd2");
      const trunc = mn[3] === "t";
      const toMmx = mn.endsWith("pi");
      const lanes = fromD || toMmx ? 2 : 4;
      const size = fromD ? 16 : lanes * 4;
      const xs = isMem ? SCR : xmmWord(c.rm);
      const dst = toMmx ? mmWord(reg) : xr;
      return () => {
        c.sse();
        if (toMmx) c.mmx();
        if (isMem) c.load(size, size === 16);
        // The transition happens before a SIMD exception can be raised.
        if (toMmx) c.enterMmx();
        const mx = s[FX_MXCSR];
        const daz = (mx & 0x40) !== 0;
        const rc = trunc ? 3 : (mx >> 13) & 3;
        LF = 0;
        for (let l = 0; l < lanes; l++) {
          SF.clearUnpackFlags();
          F.flags = 0;
          if (fromD) SF.unpackF64(0, s[xs + l * 2 + 1], s[xs + l * 2], daz);
          else SF.unpackF32(0, s[xs + l], daz);
          const v = SF.toInt(32, rc);
          LF |= F.flags;
          s[TMP + l] = v;
        }
        c.simd(LF);
        if (toMmx) {
          s[dst] = s[TMP]; s[dst + 1] = s[TMP + 1];
          mmWritten(s, reg);
        } else if (lanes === 4) for (let k = 0; k < 4; k++) s[dst + k] = s[TMP + k];
        else { s[dst] = s[TMP]; s[dst + 1] = s[TMP + 1]; s[dst + 2] = 0; s[dst + 3] = 0; }
        return 0;
      };
    }
  }
  return null;
}

export { srcWord, bitsToF32 as f32FromBits };
