// Case and result records of the floating-point differential tester: the integer tester's
// records (tests/cpu/difftest/cases.ts) followed by a 512-byte FXSAVE image (the initial
// x87/SSE state in a case, the final one in a result). Layout: tests/cpu/fpdiff/fpharness.c.
import {
  CASE_IN_SIZE,
  CASE_OUT_SIZE,
  type CaseResult,
  type TestCase,
  decodeResult,
  encodeCase,
} from "../difftest/cases.ts";

export const FP_CASE_IN_SIZE = CASE_IN_SIZE + 512;
/** Differences beyond the first 48 that the FP harness reports (FXSAVE writes 512 bytes). */
export const MORE_DIFFS = 560;
export const FP_CASE_OUT_SIZE = CASE_OUT_SIZE + 512 + 4 * MORE_DIFFS;

export interface FpCase extends TestCase {
  /** Initial FXSAVE image (512 bytes). */
  fx: Uint8Array;
  /** How the FP state is compared (see compare.ts). */
  check: FpCheck;
}

export interface FpCheck {
  /** ST registers compared within this many units in the last place (transcendentals). */
  ulps?: number;
  /** FSW bits not compared. */
  swMask?: number;
  /** XMM compared as packed singles within a relative error (RCPPS/RSQRTPS): the error bound. */
  relErr?: number;
  /** EFLAGS bits not compared. */
  flagsMask?: number;
  /** Region offsets whose memory contents are not compared. */
  memIgnore?: number[];
}

export interface FpResult extends CaseResult {
  fx: Uint8Array;
  /** Every changed byte (up to 608): region offset -> new value. */
  allDiffs: Map<number, number>;
}

export function encodeFpCase(c: FpCase, buf: Uint8Array, off: number): void {
  encodeCase(c, buf, off);
  buf.set(c.fx.subarray(0, 512), off + CASE_IN_SIZE);
}

export function decodeFpResult(buf: Uint8Array, off: number): FpResult {
  const r = decodeResult(buf, off) as FpResult;
  r.fx = new Uint8Array(buf.subarray(off + CASE_OUT_SIZE, off + CASE_OUT_SIZE + 512));
  r.allDiffs = new Map(r.diffs.map((d) => [d.offset, d.value]));
  const more = Math.min(Math.max(0, r.ndiff - 48), MORE_DIFFS);
  const base = off + CASE_OUT_SIZE + 512;
  for (let i = 0; i < more; i++) r.allDiffs.set(buf[base + i * 4]! | (buf[base + i * 4 + 1]! << 8), buf[base + i * 4 + 2]!);
  return r;
}
