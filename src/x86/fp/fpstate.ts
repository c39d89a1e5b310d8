/**
 * Where the x87/MMX/SSE state lives in the vCPU state frame, and helpers shared by the units.
 *
 * Words FX.. FX+127 (FX = S.FXSAVE_AREA) hold an FXSAVE image, with one difference: the eight
 * 16-byte register slots at bytes 32..159 hold the PHYSICAL registers R0..R7 (slot i = Ri),
 * not ST(0)..ST(7), so that pushes and pops only move TOP. FXSAVE/FNSAVE rotate (ST(i) =
 * R((TOP + i) & 7)); fxsaveImage()/loadFxsaveImage() convert for owners that want the
 * architectural image (save/restore, a PV guest's vcpu context). MMi is Ri's significand.
 *
 * | word | bytes | what |
 * |---|---|---|
 * | FX+0 | 0-3 | FCW (low 16 bits), FSW (high 16 bits; TOP in bits 27-29 of the word) |
 * | FX+1 | 4-7 | FTW abridged (bits 0-7: bit i set = Ri not empty), FOP (bits 16-26) |
 * | FX+2, FX+3 | 8-15 | FIP (low, high) |
 * | FX+4, FX+5 | 16-23 | FDP (low, high) |
 * | FX+6 | 24 | MXCSR |
 * | FX+7 | 28 | MXCSR_MASK |
 * | FX+8+4i | 32+16i | Ri: significand low, significand high, sign/exponent (low 16 bits) |
 * | FX+40+4i | 160+16i | XMMi, four words |
 * | FX+104 | 416 | FCS (the selector the last x87 instruction ran under) |
 * | FX+105 | 420 | FDS |
 * | FX+128.. | 512.. | scratch for memory operands (never architectural) |
 */
import type { Cpu } from "../cpu.ts";
import * as S from "../state.ts";

export const FX = S.FXSAVE_AREA;
export const FX_CW_SW = FX;
export const FX_TAG_OP = FX + 1;
export const FX_FIP = FX + 2;
export const FX_FDP = FX + 4;
export const FX_MXCSR = FX + 6;
export const FX_MXCSR_MASK = FX + 7;
export const FX_REGS = FX + 8;
export const FX_XMM = FX + 40;
export const FX_FCS = FX + 104;
export const FX_FDS = FX + 105;
/** Scratch words for memory operands (16 bytes each, 4 slots). */
export const FX_SCRATCH = FX + 128;

/** MXCSR bits we implement (DAZ included); MXCSR_MASK reports them. */
export const MXCSR_MASK = 0xffff;
export const MXCSR_DEFAULT = 0x1f80;

// FSW bits.
export const SW_IE = 1;
export const SW_DE = 2;
export const SW_ZE = 4;
export const SW_OE = 8;
export const SW_UE = 0x10;
export const SW_PE = 0x20;
export const SW_SF = 0x40;
export const SW_ES = 0x80;
export const SW_C0 = 0x100;
export const SW_C1 = 0x200;
export const SW_C2 = 0x400;
export const SW_C3 = 0x4000;
export const SW_B = 0x8000;

/** Per-Cpu views of the state frame for the FP units. */
export interface FpViews {
  u8: Uint8Array;
  i8: Int8Array;
  u32: Uint32Array;
  i16: Int16Array;
  u16: Uint16Array;
  i32: Int32Array;
  f32: Float32Array;
  f64: Float64Array;
}

const viewsOf = new WeakMap<Int32Array, FpViews>();

export function views(s: Int32Array): FpViews {
  let v = viewsOf.get(s);
  if (!v) {
    const b = s.buffer;
    const o = s.byteOffset;
    const n = s.length * 4;
    v = {
      u8: new Uint8Array(b, o, n),
      i8: new Int8Array(b, o, n),
      u32: new Uint32Array(b, o, n >> 2),
      i16: new Int16Array(b, o, n >> 1),
      u16: new Uint16Array(b, o, n >> 1),
      i32: s,
      f32: new Float32Array(b, o, n >> 2),
      f64: new Float64Array(b, o, n >> 3),
    };
    viewsOf.set(s, v);
  }
  return v;
}

/** Optional legacy FERR# hook per processor (CR0.NE = 0): returns true if it handled the error. */
const ferrHooks = new WeakMap<Cpu, () => boolean>();

/**
 * Installs the legacy FERR# path for a processor: with CR0.NE clear, a pending unmasked x87
 * exception calls `hook` (a PC raises IRQ 13) and the instruction goes on, as if IGNNE# were
 * asserted. Without a hook, #MF is raised whatever CR0.NE says.
 */
export function setFerrHook(cpu: Cpu, hook: () => boolean): void {
  ferrHooks.set(cpu, hook);
}

/** Raises the pending x87 exception: #MF, or FERR# through the hook when CR0.NE is clear. */
export function mathFault(cpu: Cpu): void {
  if ((cpu.s[S.CR0] & S.CR0_NE) === 0) {
    const h = ferrHooks.get(cpu);
    if (h?.()) return;
  }
  cpu.fault(S.VEC_MF);
}

/** Adds k to an address (lo, hi) respecting the address size: returns lo, high word in ADDR_HI. */
export let ADDR_HI = 0;
export function addrAdd(lo: number, hi: number, k: number, asize: number): number {
  if (asize === 8) {
    const t = (lo >>> 0) + k;
    ADDR_HI = t > 0xffffffff ? (hi + 1) | 0 : hi;
    return t | 0;
  }
  ADDR_HI = 0;
  if (asize === 2) return (lo + k) & 0xffff;
  return (lo + k) | 0;
}

/** The linear address's low 4 bits are what alignment checks need: segment base + offset. */
export function linearLow(cpu: Cpu, seg: number, lo: number): number {
  if (cpu.code64 && seg < S.SEG_FS) return lo;
  return (lo + cpu.s[S.segWord(seg, S.SEG_BASE_LO)]) | 0;
}

/**
 * Outside 64-bit mode, an operand that runs past linear address 4 GiB is #GP(0) as one access
 * (the units split wide operands into several accesses, which would wrap silently).
 */
export function checkWrap(cpu: Cpu, seg: number, lo: number, size: number): void {
  if (cpu.code64) return;
  const lin = (lo + cpu.s[S.segWord(seg, S.SEG_BASE_LO)]) >>> 0;
  if (lin + size > 0x100000000) cpu.gp(0);
}
