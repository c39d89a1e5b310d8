/**
 * FXSAVE images: conversion between the state frame (physical register slots, see
 * fpstate.ts) and the architectural 512-byte layout, for the FXSAVE/FXRSTOR instructions and
 * for owners (save/restore, a PV guest's vcpu context, the differential tester).
 */
import * as S from "../state.ts";
import { FX, FX_FCS, FX_FDP, FX_FDS, FX_FIP, FX_MXCSR, FX_MXCSR_MASK, FX_REGS, FX_TAG_OP, FX_XMM, MXCSR_MASK } from "./fpstate.ts";

/**
 * Writes the FXSAVE image of the current state into `out` (512 bytes, little-endian).
 * `rexW`: the 64-bit layout (FIP/FDP 64-bit) instead of FIP/FCS, FDP/FDS. `nXmm`: registers
 * saved (16 in 64-bit mode, else 8). Bytes 416..511 are left as they are.
 */
export function fxsaveImage(s: Int32Array, out: Uint8Array, rexW: boolean, nXmm: number): void {
  const dv = new DataView(out.buffer, out.byteOffset, 512);
  storeImage(s, (o, v) => dv.setInt32(o, v, true), rexW, nXmm);
}

/** Stores the image through a 32-bit writer (offset, value): the instruction uses guest memory. */
export function storeImage(s: Int32Array, w32: (off: number, v: number) => void, rexW: boolean, nXmm: number): void {
  const top = (s[FX] >>> 27) & 7;
  const fop = (s[FX_TAG_OP] >>> 16) & 0x7ff;
  // FTW abridged is by physical register: unchanged.
  w32(0, s[FX]);
  w32(4, (s[FX_TAG_OP] & 0xff) | (fop << 16));
  if (rexW) {
    w32(8, s[FX_FIP]);
    w32(12, s[FX_FIP + 1]);
    w32(16, s[FX_FDP]);
    w32(20, s[FX_FDP + 1]);
  } else {
    w32(8, s[FX_FIP]);
    w32(12, s[FX_FCS] & 0xffff);
    w32(16, s[FX_FDP]);
    w32(20, s[FX_FDS] & 0xffff);
  }
  w32(24, s[FX_MXCSR]);
  w32(28, MXCSR_MASK);
  for (let i = 0; i < 8; i++) {
    const w = FX_REGS + ((top + i) & 7) * 4;
    w32(32 + i * 16, s[w]);
    w32(36 + i * 16, s[w + 1]);
    w32(40 + i * 16, s[w + 2] & 0xffff);
    w32(44 + i * 16, 0);
  }
  for (let i = 0; i < nXmm; i++) {
    for (let k = 0; k < 4; k++) w32(160 + i * 16 + k * 4, s[FX_XMM + i * 4 + k]);
  }
}

/**
 * Loads an FXSAVE image (FXRSTOR without the checks: the caller has validated MXCSR).
 * `r32(off)` reads a 32-bit word of the image.
 */
export function loadImage(s: Int32Array, r32: (off: number) => number, rexW: boolean, nXmm: number): void {
  const w0 = r32(0);
  const w1 = r32(4);
  s[FX] = w0;
  s[FX_TAG_OP] = (w1 & 0xff) | (((w1 >>> 16) & 0x7ff) << 16);
  if (rexW) {
    s[FX_FIP] = r32(8);
    s[FX_FIP + 1] = r32(12);
    s[FX_FDP] = r32(16);
    s[FX_FDP + 1] = r32(20);
    s[FX_FCS] = 0;
    s[FX_FDS] = 0;
  } else {
    s[FX_FIP] = r32(8);
    s[FX_FIP + 1] = 0;
    s[FX_FCS] = r32(12) & 0xffff;
    s[FX_FDP] = r32(16);
    s[FX_FDP + 1] = 0;
    s[FX_FDS] = r32(20) & 0xffff;
  }
  s[FX_MXCSR] = r32(24) & MXCSR_MASK;
  s[FX_MXCSR_MASK] = MXCSR_MASK;
  const top = (w0 >>> 27) & 7;
  for (let i = 0; i < 8; i++) {
    const w = FX_REGS + ((top + i) & 7) * 4;
    s[w] = r32(32 + i * 16);
    s[w + 1] = r32(36 + i * 16);
    s[w + 2] = r32(40 + i * 16) & 0xffff;
    s[w + 3] = 0;
  }
  for (let i = 0; i < nXmm; i++) {
    for (let k = 0; k < 4; k++) s[FX_XMM + i * 4 + k] = r32(160 + i * 16 + k * 4);
  }
}

/** Loads a 512-byte FXSAVE image from a byte array (for owners and tests). */
export function loadFxsaveImage(s: Int32Array, img: Uint8Array, rexW: boolean, nXmm: number): void {
  const dv = new DataView(img.buffer, img.byteOffset, 512);
  loadImage(s, (o) => dv.getInt32(o, true), rexW, nXmm);
}

/** The x87/SSE state after RESET/INIT (FNINIT state, MXCSR default, registers zero). */
export function resetFpState(s: Int32Array): void {
  for (let w = FX; w < FX + 128; w++) s[w] = 0;
  s[FX] = 0x0040; // FCW after RESET is 0x0040 (INIT keeps... ); FNINIT gives 0x037F
  s[FX_MXCSR] = 0x1f80;
  s[FX_MXCSR_MASK] = MXCSR_MASK;
}

void S;
