// Compares a native and an emulated result of one case, and formats mismatches.
import {
  type CaseResult,
  FLAGS_MASK,
  REG_NAMES_32,
  REG_NAMES_64,
  type TestCase,
  VEC_SYSCALL,
  VEC_TIMEOUT,
  hex32,
  hex64,
  regionAddress,
} from "./cases.ts";

/** EFLAGS bits compared besides the arithmetic ones and DF: TF, NT, AC, ID (popf can set them). */
export const EXTRA_FLAGS = 0x100 | 0x4000 | 0x40000 | 0x200000;

const FLAG_NAMES: [number, string][] = [
  [0x1, "CF"], [0x4, "PF"], [0x10, "AF"], [0x40, "ZF"], [0x80, "SF"], [0x100, "TF"], [0x400, "DF"],
  [0x800, "OF"], [0x4000, "NT"], [0x40000, "AC"], [0x200000, "ID"],
];

export function flagNames(f: number): string {
  const names = FLAG_NAMES.filter(([b]) => f & b).map(([, n]) => n);
  return names.length ? names.join(" ") : "-";
}

export function vectorName(v: number): string {
  const names: Record<number, string> = {
    0: "#DE", 1: "#DB", 3: "#BP", 4: "#OF", 5: "#BR", 6: "#UD", 7: "#NM", 8: "#DF", 10: "#TS", 11: "#NP",
    12: "#SS", 13: "#GP", 14: "#PF", 16: "#MF", 17: "#AC", 19: "#XM",
  };
  if (v === VEC_TIMEOUT) return "timeout";
  if (v === VEC_SYSCALL) return "syscall";
  if (v >= 0x200) return `exit#${v - 0x200}`;
  return names[v] ?? `vector ${v}`;
}

/** The EFLAGS mask compared for this case's outcome. */
export function flagsMask(c: TestCase, native: CaseResult): number {
  let mask = FLAGS_MASK | EXTRA_FLAGS;
  // Undefined flags are undefined only after the instruction completed; a fault leaves the
  // flags as they were before it.
  if (native.vector === 3 || native.vector === 1) mask &= ~c.undefinedFlags;
  return mask;
}

/**
 * BT/BTS/BTR/BTC with a register bit offset and a memory operand may access any of the bytes
 * of the operand-sized word holding the bit (SDM: "may access 2 or 4 bytes starting from
 * EA + 2/4 * (offset DIV 16/32)"), so the exact #PF address is the vendor's choice: accept
 * addresses less than 8 bytes apart.
 */
function btLatitude(c: TestCase, nat: CaseResult, emu: CaseResult): boolean {
  if (!/^0F (A3|AB|B3|BB) /.test(c.label) || nat.addressHi !== emu.addressHi) return false;
  return Math.abs(nat.addressLo - emu.addressLo) < 8;
}

/**
 * The x87/FXSAVE environment and state images are loaded and stored in several parts, and the
 * manuals do not say which part faults first when the image crosses into a missing page; the
 * host reports a byte inside the second page that is not always its first. Accept any address
 * on the same page within the image's size (512 bytes at most).
 */
function stateImageLatitude(c: TestCase, nat: CaseResult, emu: CaseResult): boolean {
  if (!/\b(fldenv|frstor|fnstenv|fnsave|fxrstor|fxsave)\b/.test(c.label) || nat.addressHi !== emu.addressHi) return false;
  return (nat.addressLo & ~0xfff) === (emu.addressLo & ~0xfff) && Math.abs(nat.addressLo - emu.addressLo) < 512;
}

/**
 * Linux reports a user access to the kernel half (at or above 0xffff800000000000) as a
 * protection fault whatever the hardware said (sanitize_error_code() in arch/x86/mm/fault.c,
 * so as not to leak the kernel's page-table layout): ignore the P bit there.
 */
function kernelHalfFault(nat: CaseResult, emu: CaseResult): boolean {
  return nat.vector === 14 && nat.addressHi >>> 0 >= 0xffff8000 && ((nat.errorCode ^ emu.errorCode) & ~1) === 0;
}

/** Returns the list of differences (empty when the results agree). */
export function compare(c: TestCase, nat: CaseResult, emu: CaseResult): string[] {
  const out: string[] = [];
  if (nat.vector !== emu.vector) out.push(`outcome: native ${vectorName(nat.vector)}, emulator ${vectorName(emu.vector)}`);
  else if (nat.errorCode !== emu.errorCode && !kernelHalfFault(nat, emu)) out.push(`error code: native ${hex32(nat.errorCode, 4)}, emulator ${hex32(emu.errorCode, 4)}`);
  if (nat.vector === 14 && emu.vector === 14 && (nat.addressLo !== emu.addressLo || nat.addressHi !== emu.addressHi) && !btLatitude(c, nat, emu) && !stateImageLatitude(c, nat, emu)) {
    out.push(`#PF address: native ${hex64(nat.addressHi, nat.addressLo)}, emulator ${hex64(emu.addressHi, emu.addressLo)}`);
  }
  if (nat.ripLo !== emu.ripLo || (c.mode === 64 && nat.ripHi !== emu.ripHi)) {
    out.push(`rip: native ${hex64(nat.ripHi, nat.ripLo)}, emulator ${hex64(emu.ripHi, emu.ripLo)}`);
  }
  // AMD: a POPA that faults partway has already loaded some registers (the SDM's POPA
  // changes nothing on a fault, which is what the emulator does). Not compared on a fault.
  const partialPopa = c.label.startsWith("61 popa") && nat.vector !== 3 && nat.vector !== 1;
  const n = partialPopa ? 0 : c.mode === 64 ? 16 : 8;
  const names = c.mode === 64 ? REG_NAMES_64 : REG_NAMES_32;
  for (let i = 0; i < n; i++) {
    const lo = nat.regsLo[i] !== emu.regsLo[i];
    const hi = c.mode === 64 && nat.regsHi[i] !== emu.regsHi[i];
    if (lo || hi) {
      const f = c.mode === 64 ? (r: CaseResult) => hex64(r.regsHi[i]!, r.regsLo[i]!) : (r: CaseResult) => hex32(r.regsLo[i]!);
      out.push(`${names[i]}: native ${f(nat)}, emulator ${f(emu)} (initial ${c.mode === 64 ? hex64(c.regsHi[i]!, c.regsLo[i]!) : hex32(c.regsLo[i]!)})`);
    }
  }
  const mask = flagsMask(c, nat);
  if (((nat.eflags ^ emu.eflags) & mask) !== 0) {
    out.push(
      `eflags: native ${hex32(nat.eflags & mask, 6)} [${flagNames(nat.eflags & mask)}], emulator ${hex32(emu.eflags & mask, 6)} [${flagNames(emu.eflags & mask)}], differ in [${flagNames((nat.eflags ^ emu.eflags) & mask)}] (initial [${flagNames(c.eflags)}], undefined [${flagNames(c.undefinedFlags)}])`,
    );
  }
  if (nat.ndiff !== emu.ndiff || nat.diffHash !== emu.diffHash) {
    const fmt = (r: CaseResult) =>
      `${r.ndiff} byte(s) changed${r.ndiff ? ": " : ""}${r.diffs
        .slice(0, 16)
        .map((d) => `${hex32(regionAddress(d.offset))}=${d.value.toString(16).padStart(2, "0")}`)
        .join(" ")}${r.ndiff > 16 ? " ..." : ""}`;
    out.push(`memory: native ${fmt(nat)}; emulator ${fmt(emu)}`);
  }
  return out;
}

export function hexBytes(b: ArrayLike<number>): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
}

export function replayCommand(c: TestCase): string {
  return `node --import tsx tests/cpu/difftest/replay.ts --mode ${c.mode} --seed ${c.seed} --index ${c.index}`;
}

/** A readable report of one mismatching case. */
export function describeMismatch(c: TestCase, diffs: readonly string[], extra = ""): string {
  const lines = [
    `case ${c.index} (${c.mode}-bit, seed ${c.seed}): ${c.label}`,
    `  code: ${hexBytes(c.code)}`,
    ...diffs.map((d) => `  ${d}`),
  ];
  if (extra) lines.push(`  ${extra}`);
  lines.push(`  replay: ${replayCommand(c)}`);
  return lines.join("\n");
}
