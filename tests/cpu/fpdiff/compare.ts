// Compares native and emulated results of floating-point cases: everything the integer
// tester compares (registers, RIP, flags, memory, the outcome) plus the x87/SSE state from
// the FXSAVE images: FCW, FSW, the abridged tag word, MXCSR, the valid ST registers (all 80
// bits), and XMM0-7 (32-bit) or XMM0-15 (64-bit). Not compared: FOP, FIP, FDP, FCS, FDS
// (AMD saves them only while an exception is pending) and empty registers' contents.
import { compare as compareInteger, describeMismatch as describeInteger, hexBytes } from "../difftest/compare.ts";
import { hex32 } from "../difftest/cases.ts";
import type { FpCase, FpResult } from "./cases.ts";

function u16(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8);
}
function u32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

export function f80hex(b: Uint8Array, o: number): string {
  return `${u16(b, o + 8).toString(16).padStart(4, "0")}:${hex32(u32(b, o + 4))}${hex32(u32(b, o))}`;
}

/** Distance in units in the last place between two extended values of the same sign and class. */
function ulpDistance(a: Uint8Array, ao: number, b: Uint8Array, bo: number): number {
  const sa = u16(a, ao + 8);
  const sb = u16(b, bo + 8);
  if (sa >> 15 !== sb >> 15) return Number.POSITIVE_INFINITY;
  const va = (sa & 0x7fff) * 2 ** 64 + u32(a, ao + 4) * 2 ** 32 + u32(a, ao);
  const vb = (sb & 0x7fff) * 2 ** 64 + u32(b, bo + 4) * 2 ** 32 + u32(b, bo);
  // Doubles are not exact here; compare through the significand words when exponents agree.
  if ((sa & 0x7fff) === (sb & 0x7fff)) {
    const hiD = u32(a, ao + 4) - u32(b, bo + 4);
    const loD = u32(a, ao) - u32(b, bo);
    return Math.abs(hiD * 2 ** 32 + loD);
  }
  // Adjacent binades: measure across the boundary.
  if (Math.abs((sa & 0x7fff) - (sb & 0x7fff)) === 1) {
    const [lo, loo, hi, hio] = (sa & 0x7fff) < (sb & 0x7fff) ? [a, ao, b, bo] : [b, bo, a, ao];
    const dLow = 2 ** 64 - (u32(lo, loo + 4) * 2 ** 32 + u32(lo, loo)); // up to 2^64 at the low exponent
    const dHigh = u32(hi, hio + 4) * 2 ** 32 + u32(hi, hio) - 2 ** 63; // above 2^63 at the high exponent (ulp twice as big)
    return dLow + 2 * dHigh;
  }
  return Math.abs(va - vb);
}

export function compareFp(c: FpCase, nat: FpResult, emu: FpResult): string[] {
  let out = compareInteger(c, nat, emu).filter((d) => !(c.check.flagsMask && d.startsWith("eflags")));
  if (c.check.memIgnore && out.some((d) => d.startsWith("memory"))) {
    // Compare every changed byte except the ignored ones.
    const ign = new Set(c.check.memIgnore);
    const bad: string[] = [];
    for (const k of new Set([...nat.allDiffs.keys(), ...emu.allDiffs.keys()])) {
      if (ign.has(k) || nat.allDiffs.get(k) === emu.allDiffs.get(k)) continue;
      bad.push(`${hex32(k, 4)}: native ${nat.allDiffs.get(k)?.toString(16) ?? "-"}, emulator ${emu.allDiffs.get(k)?.toString(16) ?? "-"}`);
    }
    out = out.filter((d) => !d.startsWith("memory"));
    if (bad.length) out.push(`memory: ${bad.slice(0, 12).join("; ")}${bad.length > 12 ? " ..." : ""}`);
  }
  const a = nat.fx;
  const b = emu.fx;
  if (u16(a, 0) !== u16(b, 0)) out.push(`fcw: native ${hex32(u16(a, 0), 4)}, emulator ${hex32(u16(b, 0), 4)}`);
  const swMask = ~(c.check.swMask ?? 0) & 0xffff;
  if (((u16(a, 2) ^ u16(b, 2)) & swMask) !== 0) {
    out.push(`fsw: native ${hex32(u16(a, 2), 4)}, emulator ${hex32(u16(b, 2), 4)} (initial ${hex32(u16(c.fx, 2), 4)}, fcw ${hex32(u16(c.fx, 0), 4)})`);
  }
  if (a[4] !== b[4]) out.push(`ftw: native ${hex32(a[4]!, 2)}, emulator ${hex32(b[4]!, 2)} (initial ${hex32(c.fx[4]!, 2)})`);
  if (u32(a, 24) !== u32(b, 24)) out.push(`mxcsr: native ${hex32(u32(a, 24))}, emulator ${hex32(u32(b, 24))} (initial ${hex32(u32(c.fx, 24))})`);
  const top = (u16(a, 2) >> 11) & 7;
  for (let i = 0; i < 8; i++) {
    if (((a[4]! >> ((top + i) & 7)) & 1) === 0) continue;
    const o = 32 + i * 16;
    let same = true;
    for (let k = 0; k < 10; k++) if (a[o + k] !== b[o + k]) same = false;
    if (same) continue;
    if (c.check.ulps !== undefined && ulpDistance(a, o, b, o) <= c.check.ulps) continue;
    out.push(`st${i}: native ${f80hex(a, o)}, emulator ${f80hex(b, o)} (initial ${f80hex(c.fx, o)})`);
  }
  const nx = c.mode === 64 ? 16 : 8;
  for (let i = 0; i < nx; i++) {
    const o = 160 + i * 16;
    let same = true;
    for (let k = 0; k < 16; k++) if (a[o + k] !== b[o + k]) same = false;
    if (same) continue;
    if (c.check.relErr !== undefined) {
      // (Copies: a Node Buffer's slice() is a view into a larger pool.)
      const fa = new Float32Array(new Uint8Array(a.subarray(o, o + 16)).buffer);
      const fb = new Float32Array(new Uint8Array(b.subarray(o, o + 16)).buffer);
      let ok = true;
      for (let l = 0; l < 4; l++) {
        const x = fa[l]!;
        const y = fb[l]!;
        if (Object.is(x, y) || (Number.isNaN(x) && Number.isNaN(y))) continue;
        if (!(Math.abs(x - y) <= c.check.relErr * Math.abs(x))) ok = false;
      }
      if (ok) continue;
    }
    const hx = (r: Uint8Array) => [3, 2, 1, 0].map((l) => hex32(u32(r, o + l * 4))).join("_");
    out.push(`xmm${i}: native ${hx(a)}, emulator ${hx(b)} (initial ${hx(c.fx)})`);
  }
  return out;
}

export function replayFpCommand(c: FpCase): string {
  return `node --import tsx tests/cpu/fpdiff/replay.ts --mode ${c.mode} --seed ${c.seed} --index ${c.index}`;
}

export function describeFpMismatch(c: FpCase, diffs: readonly string[], extra = ""): string {
  const base = describeInteger(c, diffs, extra).split("\n");
  base[base.length - 1] = `  replay: ${replayFpCommand(c)}`;
  return base.join("\n");
}

export { hexBytes };
