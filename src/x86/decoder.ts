/**
 * The instruction decoder: bytes to a decoded instruction, driven entirely by opcodes.ts.
 *
 * Invariants:
 * - decode() never throws for any byte sequence; an undefined or invalid encoding yields
 *   `fault = FAULT_UD`, and a fetch that fails yields `fault = FAULT_FETCH` with the byte
 *   offset that failed, so the caller can raise #PF/#GP at the right address.
 * - At most 15 bytes are consumed; a longer instruction is #GP(0) as on hardware.
 * - Register numbers are final (REX already applied); 8-bit register operands without REX
 *   numbered 4..7 mean AH, CH, DH, BH and are flagged in `highByteRegs`.
 */
import { type OpcodeEntry, LOOKUP } from "./opcodes.ts";
import { SEG_DS, SEG_SS } from "./state.ts";

export const FAULT_NONE = 0;
export const FAULT_UD = 1;
export const FAULT_FETCH = 2;
export const FAULT_TOO_LONG = 3;

/** Base register value meaning "RIP-relative". */
export const BASE_RIP = 16;

export class Insn {
  entry: OpcodeEntry | null = null;
  fault = FAULT_NONE;
  /** Offset of the byte whose fetch failed (FAULT_FETCH). */
  faultOffset = 0;
  len = 0;
  /** Operand size in bytes: 1 (byte forms), 2, 4 or 8. For byte forms `osize` is still the word size. */
  osize = 4;
  asize = 4;
  /** Segment override (0..5), or -1. */
  segOverride = -1;
  /** The segment memory operands use: the override, or DS/SS by the base register. */
  seg = SEG_DS;
  /** 0, 0xF2 or 0xF3 when used as a REP prefix (not when it selected the opcode). */
  rep = 0;
  lock = false;
  rex = 0;
  opsizePrefix = false;
  mod = 0;
  reg = 0;
  rm = 0;
  modrm = -1;
  /** Memory operand: base register (-1 none, BASE_RIP), index register (-1 none), scale 0..3. */
  base = -1;
  index = -1;
  scale = 0;
  disp = 0;
  /** High word of a 64-bit absolute address (moffs64) or of the sign-extended displacement. */
  dispHi = 0;
  imm = 0;
  immHi = 0;
  imm2 = 0;
  /** 8-bit register operands use AH..BH encoding for 4..7 (no REX prefix). */
  highByteRegs = true;
  /** The opcode byte (for Z-operands and condition codes). */
  opcode = 0;

  get isMemory(): boolean {
    return this.modrm >= 0 && this.mod !== 3;
  }
}

/** Fetches the byte at offset i from the start of the instruction, or -1 if it can't be fetched. */
export type FetchByte = (i: number) => number;

const MAX_LEN = 15;

/**
 * Decodes one instruction. `code64`: 64-bit mode; `default32`: CS.D (ignored in 64-bit mode).
 * The result is written into `d`, which the caller may reuse.
 */
export function decode(fetch: FetchByte, code64: boolean, default32: boolean, d: Insn): Insn {
  d.entry = null;
  d.fault = FAULT_NONE;
  d.segOverride = -1;
  d.rep = 0;
  d.lock = false;
  d.rex = 0;
  d.opsizePrefix = false;
  d.modrm = -1;
  d.base = -1;
  d.index = -1;
  d.scale = 0;
  d.disp = 0;
  d.dispHi = 0;
  d.imm = 0;
  d.immHi = 0;
  d.imm2 = 0;
  d.mod = 0;
  d.reg = 0;
  d.rm = 0;
  let addrPrefix = false;
  let lastMandatory = 0; // last of F2/F3 seen
  let pos = 0;
  let b = 0;

  const next = (): number => {
    if (pos >= MAX_LEN) {
      if (d.fault === FAULT_NONE) d.fault = FAULT_TOO_LONG;
      return 0;
    }
    const v = fetch(pos);
    if (v < 0) {
      if (d.fault === FAULT_NONE) {
        d.fault = FAULT_FETCH;
        d.faultOffset = pos;
      }
      pos++;
      return 0;
    }
    pos++;
    return v;
  };

  // Prefixes.
  for (;;) {
    b = next();
    if (d.fault) return finish(d, pos);
    switch (b) {
      case 0x26: d.segOverride = 0; d.rex = 0; continue;
      case 0x2e: d.segOverride = 1; d.rex = 0; continue;
      case 0x36: d.segOverride = 2; d.rex = 0; continue;
      case 0x3e: d.segOverride = 3; d.rex = 0; continue;
      case 0x64: d.segOverride = 4; d.rex = 0; continue;
      case 0x65: d.segOverride = 5; d.rex = 0; continue;
      case 0x66: d.opsizePrefix = true; d.rex = 0; continue;
      case 0x67: addrPrefix = true; d.rex = 0; continue;
      case 0xf0: d.lock = true; d.rex = 0; continue;
      case 0xf2:
      case 0xf3: lastMandatory = b; d.rex = 0; continue;
    }
    if (code64 && (b & 0xf0) === 0x40) {
      d.rex = b; // only effective if it is the last prefix; reset above otherwise
      continue;
    }
    break;
  }
  d.highByteRegs = d.rex === 0;

  let map = 0;
  if (b === 0x0f) {
    map = 1;
    b = next();
    if (b === 0x38 || b === 0x3a) {
      map = b === 0x38 ? 2 : 3;
      b = next();
    }
    if (d.fault) return finish(d, pos);
  }
  d.opcode = b;
  const candidates = LOOKUP[map * 256 + b];
  if (!candidates) {
    d.fault = FAULT_UD;
    return finish(d, pos);
  }
  const modeBit = code64 ? 2 : 1;
  const needsModrm = candidates[0].hasModrm;
  if (needsModrm) {
    d.modrm = next();
    if (d.fault) return finish(d, pos);
    d.mod = d.modrm >> 6;
    d.reg = ((d.modrm >> 3) & 7) | ((d.rex & 4) << 1);
    d.rm = (d.modrm & 7) | ((d.rex & 1) << 3);
  }
  // Pick the entry: mandatory-prefix forms first, then exact modrm, then group, then plain.
  let best: OpcodeEntry | null = null;
  let bestScore = -1;
  for (const e of candidates) {
    if ((e.modes & modeBit) === 0) continue;
    let score = 0;
    if (e.prefix !== 0) {
      if (e.prefix === 0x66 ? !d.opsizePrefix : e.prefix !== lastMandatory) continue;
      score += 4;
    }
    if (e.modrmExact >= 0) {
      if (d.modrm !== e.modrmExact) continue;
      score += 2;
    } else if (e.group >= 0) {
      if (((d.modrm >> 3) & 7) !== e.group) continue;
      score += 1;
    }
    if (score > bestScore) {
      best = e;
      bestScore = score;
    }
  }
  if (!best || (best.memoryOnly && d.mod === 3) || (best.registerOnly && d.mod !== 3 && best.mnemonic !== "movcr" && best.mnemonic !== "movdr")) {
    d.fault = FAULT_UD;
    return finish(d, pos);
  }
  d.entry = best;
  if (best.prefix === 0xf2 || best.prefix === 0xf3) lastMandatory = 0;
  d.rep = lastMandatory;

  // Operand and address sizes.
  if (code64) {
    if (best.f64) d.osize = 8;
    else if (d.rex & 8) d.osize = 8;
    else if (d.opsizePrefix) d.osize = 2;
    else d.osize = best.d64 ? 8 : 4;
    d.asize = addrPrefix ? 4 : 8;
  } else {
    d.osize = default32 !== d.opsizePrefix ? 4 : 2;
    d.asize = default32 !== addrPrefix ? 4 : 2;
  }

  if (needsModrm && d.mod !== 3) decodeMemory(d, next, code64);
  if (d.fault) return finish(d, pos);

  // Immediates, in operand order.
  for (const op of best.operands) {
    switch (op) {
      case "Ib":
        if (best.mnemonic === "enter") d.imm2 = next();
        else d.imm = (next() << 24) >> 24;
        break;
      case "Jb":
        d.imm = (next() << 24) >> 24;
        break;
      case "Iw":
        d.imm = next() | (next() << 8);
        break;
      case "Iz":
      case "Jz":
        if (d.osize === 2 && !(op === "Jz" && code64)) d.imm = ((next() | (next() << 8)) << 16) >> 16;
        else d.imm = next() | (next() << 8) | (next() << 16) | (next() << 24);
        d.immHi = d.imm >> 31;
        break;
      case "Iv":
        if (d.osize === 2) d.imm = next() | (next() << 8);
        else {
          d.imm = next() | (next() << 8) | (next() << 16) | (next() << 24);
          if (d.osize === 8) d.immHi = next() | (next() << 8) | (next() << 16) | (next() << 24);
        }
        break;
      case "Ap":
        if (d.osize === 2) d.imm = next() | (next() << 8);
        else d.imm = next() | (next() << 8) | (next() << 16) | (next() << 24);
        d.imm2 = next() | (next() << 8);
        break;
      case "Ob":
      case "Ov":
        d.base = -1;
        d.index = -1;
        if (d.asize === 2) d.disp = next() | (next() << 8);
        else {
          d.disp = next() | (next() << 8) | (next() << 16) | (next() << 24);
          if (d.asize === 8) d.dispHi = next() | (next() << 8) | (next() << 16) | (next() << 24);
        }
        d.seg = d.segOverride >= (code64 ? 4 : 0) ? d.segOverride : SEG_DS;
        break;
    }
  }
  return finish(d, pos);
}

function finish(d: Insn, pos: number): Insn {
  d.len = pos;
  if (d.fault === FAULT_NONE && pos > MAX_LEN) d.fault = FAULT_TOO_LONG;
  return d;
}

function decodeMemory(d: Insn, next: () => number, code64: boolean): void {
  let defaultSS = false;
  if (d.asize === 2) {
    const rm = d.modrm & 7;
    switch (rm) {
      case 0: d.base = 3; d.index = 6; break; // BX+SI
      case 1: d.base = 3; d.index = 7; break; // BX+DI
      case 2: d.base = 5; d.index = 6; defaultSS = true; break; // BP+SI
      case 3: d.base = 5; d.index = 7; defaultSS = true; break; // BP+DI
      case 4: d.base = 6; break; // SI
      case 5: d.base = 7; break; // DI
      case 6: d.base = 5; defaultSS = true; break; // BP
      case 7: d.base = 3; break; // BX
    }
    if (d.mod === 0 && rm === 6) {
      d.base = -1;
      defaultSS = false;
      d.disp = next() | (next() << 8);
    } else if (d.mod === 1) d.disp = (next() << 24) >> 24;
    else if (d.mod === 2) d.disp = ((next() | (next() << 8)) << 16) >> 16;
  } else {
    const rmLow = d.modrm & 7;
    if (rmLow === 4) {
      const sib = next();
      d.scale = sib >> 6;
      const idx = ((sib >> 3) & 7) | ((d.rex & 2) << 2);
      d.index = idx === 4 ? -1 : idx;
      const baseLow = sib & 7;
      if (baseLow === 5 && d.mod === 0) {
        d.base = -1;
        d.disp = next() | (next() << 8) | (next() << 16) | (next() << 24);
      } else {
        d.base = baseLow | ((d.rex & 1) << 3);
        defaultSS = d.base === 4 || d.base === 5; // rSP/rBP, not r12/r13
      }
    } else if (rmLow === 5 && d.mod === 0) {
      d.base = code64 ? BASE_RIP : -1;
      d.disp = next() | (next() << 8) | (next() << 16) | (next() << 24);
    } else {
      d.base = d.rm;
      defaultSS = d.base === 4 || d.base === 5;
    }
    if (d.mod === 1) d.disp = (next() << 24) >> 24;
    else if (d.mod === 2) d.disp = next() | (next() << 8) | (next() << 16) | (next() << 24);
    d.dispHi = d.disp >> 31;
  }
  // In 64-bit mode ES/CS/SS/DS overrides are ignored; only FS and GS take effect.
  const override = code64 && d.segOverride >= 0 && d.segOverride < 4 ? -1 : d.segOverride;
  d.seg = override >= 0 ? override : defaultSS ? SEG_SS : SEG_DS;
}
