/**
 * The block compiler: the second tier. A block that has run often is translated into one
 * JavaScript function (new Function), with the hot instruction forms written inline and every
 * other instruction calling its interpreter closure, so the compiler never needs to know an
 * instruction to be correct and the closures stay the single reference for every form.
 *
 * Invariants:
 * - A compiled block executes exactly the instructions of its interpreted block, in order,
 *   with the same architectural effects; it returns (index << 2) | code, where code is the
 *   closures' return code (0 fell off the end after `index` instructions, 1 near branch,
 *   2 end after instruction `index`, 3 far transfer) and index is the instruction that
 *   produced it.
 * - Before any instruction that can fault, cpu.jitIndex holds its index, so the run loop can
 *   put RIP on it and count what retired.
 * - After any instruction that stores to memory, the block checks that it is still valid (a
 *   store to its own code invalidates it and it stops at the next instruction).
 * - A block whose last instruction branches back to its own start loops inside the function
 *   while the budget lasts and no event is pending, adding each completed iteration to
 *   cpu.retired itself; the run loop counts only the last one.
 */
import type { Block, Cpu } from "./cpu.ts";
import { BASE_RIP, type Insn } from "./decoder.ts";
import { CC_ADD, CC_DEC, CC_INC, CC_LOGIC, CC_MUL, CC_SAR, CC_SHL, CC_SUB, getCF, getZF, testCond } from "./flags.ts";
import * as S from "./state.ts";
import { alu, alu64, lastHigh } from "./compile.ts";

const ALU_OPS: Record<string, number> = { add: 0, or: 1, adc: 2, sbb: 3, and: 4, sub: 5, xor: 6, cmp: 7, test: 4 };

interface Ctx {
  code64: boolean;
  sw: number;
  /** Instruction index and its RIP values. */
  k: number;
  nextLo: number;
  nextHi: number;
  blockEipLo: number;
  blockEipHi: number;
  /** Instructions in the block (for self-loops). */
  n: number;
  /** The lazy-flags operation (CC_OP value) the unit's code has set at this point, or -1. */
  flags: number;
}

const DST = `s[${S.CC_DST}]`;
const SRC = `s[${S.CC_SRC}]`;

/** CF as an expression over the lazy-flag words when the producing operation is known, or null. */
function carryExpr(flags: number): string | null {
  if (flags < 0) return null;
  const kind = flags >> 2;
  const sz = flags & 3;
  if (kind === CC_LOGIC) return "0";
  if (kind === CC_INC || kind === CC_DEC || kind === CC_SAR) return `(${SRC} & 1)`;
  if (kind === CC_MUL) return `(${SRC} !== 0 ? 1 : 0)`;
  if (sz === 3 && kind === CC_ADD) {
    const dh = `s[${S.CC_DST + 1}]`;
    const sh = `s[${S.CC_SRC + 1}]`;
    return `((${dh} >>> 0) < (${sh} >>> 0) || (${dh} === ${sh} && (${DST} >>> 0) < (${SRC} >>> 0)) ? 1 : 0)`;
  }
  if (sz !== 2) return null;
  if (kind === CC_ADD) return `((${DST} >>> 0) < (${SRC} >>> 0) ? 1 : 0)`;
  if (kind === CC_SUB) return `(((${DST} + ${SRC}) >>> 0) < (${SRC} >>> 0) ? 1 : 0)`;
  if (kind === CC_SHL) return `(${SRC} >>> 31)`;
  return null;
}

/** Condition cc as an expression over the lazy-flag words when the producer is known, or null. */
function condExpr(flags: number, cc: number): string | null {
  if (flags < 0) return null;
  const kind = flags >> 2;
  const sz = flags & 3;
  if (kind === 0 || sz < 2) return null;
  const zero = sz === 3 ? `((${DST} | s[${S.CC_DST + 1}]) === 0)` : `(${DST} === 0)`;
  if (cc === 4) return zero;
  if (cc === 5) return `!${zero}`;
  if (sz !== 2) return null;
  const a = `((${DST} + ${SRC}) | 0)`;
  if (kind === CC_SUB) {
    switch (cc) {
      case 2: return `((${a} >>> 0) < (${SRC} >>> 0))`;
      case 3: return `((${a} >>> 0) >= (${SRC} >>> 0))`;
      case 6: return `((${a} >>> 0) <= (${SRC} >>> 0))`;
      case 7: return `((${a} >>> 0) > (${SRC} >>> 0))`;
      case 8: return `(${DST} < 0)`;
      case 9: return `(${DST} >= 0)`;
      case 12: return `(${a} < ${SRC})`;
      case 13: return `(${a} >= ${SRC})`;
      case 14: return `(${a} <= ${SRC})`;
      case 15: return `(${a} > ${SRC})`;
    }
    return null;
  }
  if (kind === CC_LOGIC) {
    switch (cc) {
      case 2: return "false";
      case 3: return "true";
      case 6: return zero;
      case 7: return `!${zero}`;
      case 8: case 12: return `(${DST} < 0)`;
      case 9: case 13: return `(${DST} >= 0)`;
      case 14: return `(${DST} <= 0)`;
      case 15: return `(${DST} > 0)`;
    }
    return null;
  }
  if (kind === CC_INC || kind === CC_DEC || kind === CC_ADD) {
    if (cc === 8) return `(${DST} < 0)`;
    if (cc === 9) return `(${DST} >= 0)`;
  }
  return null;
}

/** Source for the effective address of a memory operand into locals `ea`/`eh`, or null. */
function eaSource(d: Insn, c: Ctx): string | null {
  const disp = d.disp | 0;
  if (d.asize === 2) return null;
  if (d.asize === 4) {
    if (d.base === BASE_RIP) return `ea = ${(c.nextLo + disp) | 0}; eh = 0;`;
    const parts: string[] = [];
    if (d.base >= 0) parts.push(`s[${d.base * 2}]`);
    if (d.index >= 0) parts.push(d.scale ? `(s[${d.index * 2}] << ${d.scale})` : `s[${d.index * 2}]`);
    parts.push(String(disp));
    return `ea = (${parts.join(" + ")}) | 0; eh = 0;`;
  }
  const dispHi = d.dispHi | 0;
  if (d.base === BASE_RIP) {
    const t = (c.nextLo >>> 0) + (disp >>> 0);
    return `ea = ${t | 0}; eh = ${(c.nextHi + dispHi + (t > 0xffffffff ? 1 : 0)) | 0};`;
  }
  if (d.base < 0 && d.index < 0) return `ea = ${disp}; eh = ${dispHi};`;
  if (d.index < 0) {
    const b = d.base * 2;
    return `t = (s[${b}] >>> 0) + ${disp >>> 0}; ea = t | 0; eh = (s[${b + 1}] + ${dispHi} + (t > 4294967295 ? 1 : 0)) | 0;`;
  }
  const i = d.index * 2;
  const sc = d.scale;
  const il = sc ? `(s[${i}] << ${sc})` : `s[${i}]`;
  const ih = sc ? `((s[${i + 1}] << ${sc}) | (s[${i}] >>> ${32 - sc}))` : `s[${i + 1}]`;
  if (d.base < 0) {
    return `t = (${il} >>> 0) + ${disp >>> 0}; ea = t | 0; eh = (${ih} + ${dispHi} + (t > 4294967295 ? 1 : 0)) | 0;`;
  }
  const b = d.base * 2;
  return (
    `t = (s[${b}] >>> 0) + (${il} >>> 0); t2 = (t >>> 0) + ${disp >>> 0}; ` +
    `eh = (s[${b + 1}] + ${ih} + ${dispHi} + (t > 4294967295 ? 1 : 0) + (t2 > 4294967295 ? 1 : 0)) | 0; ea = t2 | 0;`
  );
}

/** Source of a 32-bit flag-setting ALU op on `a` and `b` producing `r` (and the lazy flags). */
function alu32Source(op: number, a: string, b: string): string {
  switch (op) {
    case 0: return `b = ${b}; r = (${a} + b) | 0; s[${S.CC_OP}] = ${(CC_ADD << 2) | 2}; s[${S.CC_SRC}] = b; s[${S.CC_DST}] = r;`;
    case 5: case 7: return `b = ${b}; r = (${a} - b) | 0; s[${S.CC_OP}] = ${(CC_SUB << 2) | 2}; s[${S.CC_SRC}] = b; s[${S.CC_DST}] = r;`;
    case 1: return `r = ${a} | ${b}; s[${S.CC_OP}] = ${(CC_LOGIC << 2) | 2}; s[${S.CC_DST}] = r;`;
    case 4: return `r = ${a} & ${b}; s[${S.CC_OP}] = ${(CC_LOGIC << 2) | 2}; s[${S.CC_DST}] = r;`;
    case 6: return `r = ${a} ^ ${b}; s[${S.CC_OP}] = ${(CC_LOGIC << 2) | 2}; s[${S.CC_DST}] = r;`;
    default: return `r = ALU(s, ${op}, 2, ${a}, ${b});`;
  }
}

/** Source of a 64-bit ALU op on (al, ah) and (bl, bh) producing (r, h) and the lazy flags. */
function alu64Source(op: number, al: string, ah: string, bl: string, bh: string): string | null {
  const flags = (kind: number, src: boolean) =>
    `s[${S.CC_OP}] = ${(kind << 2) | 3}; ${src ? `s[${S.CC_SRC}] = b; s[${S.CC_SRC + 1}] = c; ` : ""}s[${S.CC_DST}] = r; s[${S.CC_DST + 1}] = h;`;
  switch (op) {
    case 0:
      return `b = ${bl}; c = ${bh}; t = (${al} >>> 0) + (b >>> 0); r = t | 0; h = (${ah} + c + (t > 4294967295 ? 1 : 0)) | 0; ${flags(CC_ADD, true)}`;
    case 5: case 7:
      return `b = ${bl}; c = ${bh}; t = (${al} >>> 0) - (b >>> 0); r = t | 0; h = (${ah} - c - (t < 0 ? 1 : 0)) | 0; ${flags(CC_SUB, true)}`;
    case 1: return `r = ${al} | ${bl}; h = ${ah} | ${bh}; ${flags(CC_LOGIC, false)}`;
    case 4: return `r = ${al} & ${bl}; h = ${ah} & ${bh}; ${flags(CC_LOGIC, false)}`;
    case 6: return `r = ${al} ^ ${bl}; h = ${ah} ^ ${bh}; ${flags(CC_LOGIC, false)}`;
  }
  return null;
}

/** Inline source for one instruction, or null to call its closure. `stores`: it may write memory. */
function emit(d: Insn, c: Ctx): { src: string; faults: boolean; stores: boolean } | null {
  const e = d.entry!;
  const mn = e.mnemonic;
  const ops = e.operands;
  const os = d.osize;
  if (d.lock || d.rep) return null;
  const byteOp = ops.some((o) => o.endsWith("b") && o !== "Jb" && o !== "Ib") || ops[0] === "AL";
  if (byteOp && mn !== "movzx" && mn !== "movsx" && mn !== "setcc") return null;
  const k = c.k;
  const jumpTo = (lo: number, hi: number): string =>
    c.code64 ? `s[${S.RIP_LO}] = ${lo}; s[${S.RIP_HI}] = ${hi};` : `s[${S.RIP_LO}] = ${os === 2 ? lo & 0xffff : lo};`;
  const rel = (): [number, number] => {
    const t = (c.nextLo >>> 0) + (d.imm >>> 0);
    if (c.code64) return [t | 0, (c.nextHi + (d.imm >> 31) + (t > 0xffffffff ? 1 : 0)) | 0];
    return [t | 0, 0];
  };
  const set32 = (r: number, v: string) => `s[${r * 2}] = ${v}; s[${r * 2 + 1}] = 0;`;
  switch (mn) {
    case "add": case "sub": case "cmp": case "and": case "or": case "xor": case "test": {
      const op = ALU_OPS[mn];
      const write = mn !== "cmp" && mn !== "test";
      const o0 = ops[0];
      const o1 = ops[1];
      if (os === 8) {
        if (d.mod !== 3 && o0 !== "eAX" && (o1[0] === "E" || o0[0] === "E")) return null;
        const dr = o0 === "eAX" ? 0 : o0[0] === "G" ? d.reg : d.rm;
        let bl: string;
        let bh: string;
        if (o1[0] === "I") { bl = String(d.imm); bh = String(d.imm >> 31); }
        else { const br = o1[0] === "G" ? d.reg : d.rm; bl = `s[${br * 2}]`; bh = `s[${br * 2 + 1}]`; }
        const inline64 = alu64Source(op, `s[${dr * 2}]`, `s[${dr * 2 + 1}]`, bl, bh);
        if (inline64 !== null) {
          const w = write ? ` s[${dr * 2}] = r; s[${dr * 2 + 1}] = h;` : "";
          return { src: `${inline64}${w}`, faults: false, stores: false };
        }
        const w = write ? ` s[${dr * 2}] = r; s[${dr * 2 + 1}] = RHF();` : "";
        return { src: `r = ALU64(s, ${op}, s[${dr * 2}], s[${dr * 2 + 1}], ${bl}, ${bh});${w}`, faults: false, stores: false };
      }
      if (os !== 4) return null;
      if (o0 === "eAX" || (o0[0] === "E" && d.mod === 3) || o0[0] === "G") {
        const dr = o0 === "eAX" ? 0 : o0[0] === "G" ? d.reg : d.rm;
        let b: string;
        let pre = "";
        let faults = false;
        if (o1[0] === "I") b = String(d.imm | 0);
        else if (o1[0] === "G") b = `s[${d.reg * 2}]`;
        else if (d.mod === 3) b = `s[${d.rm * 2}]`;
        else {
          const ea = eaSource(d, c);
          if (ea === null) return null;
          pre = `cpu.jitIndex = ${k}; ${ea} m = cpu.rd32(${d.seg}, ea, eh); `;
          b = "m";
          faults = true;
        }
        const w = write ? ` ${set32(dr, "r")}` : "";
        return { src: `${pre}${alu32Source(op, `s[${dr * 2}]`, b)}${w}`, faults, stores: false };
      }
      // Memory destination.
      const ea = eaSource(d, c);
      if (ea === null) return null;
      const b = o1[0] === "I" ? String(d.imm | 0) : `s[${d.reg * 2}]`;
      const check = write ? `cpu.checkWritable(${d.seg}, ea, eh, 4); ` : "";
      const store = write ? ` cpu.wr32(${d.seg}, ea, eh, r);` : "";
      return { src: `cpu.jitIndex = ${k}; ${ea} ${check}m = cpu.rd32(${d.seg}, ea, eh); ${alu32Source(op, "m", b)}${store}`, faults: true, stores: write };
    }
    case "inc": case "dec": {
      if (d.mod !== 3 && ops[0] !== "Zv") return null;
      const r = ops[0] === "Zv" ? d.opcode & 7 : d.rm;
      const inc = mn === "inc";
      const kind = ((inc ? CC_INC : CC_DEC) << 2) | (os === 8 ? 3 : 2);
      if (os === 4) {
        return { src: `c = ${carryExpr(c.flags) ?? "CF(s)"}; r = (s[${r * 2}] ${inc ? "+" : "-"} 1) | 0; s[${S.CC_SRC}] = c; s[${S.CC_OP}] = ${kind}; s[${S.CC_DST}] = r; ${set32(r, "r")}`, faults: false, stores: false };
      }
      if (os === 8) {
        const w = r * 2;
        const hi = inc ? `(r === 0 ? (s[${w + 1}] + 1) | 0 : s[${w + 1}])` : `(r === -1 ? (s[${w + 1}] - 1) | 0 : s[${w + 1}])`;
        return { src: `c = ${carryExpr(c.flags) ?? "CF(s)"}; r = (s[${w}] ${inc ? "+" : "-"} 1) | 0; h = ${hi}; s[${S.CC_SRC}] = c; s[${S.CC_OP}] = ${kind}; s[${S.CC_DST}] = r; s[${S.CC_DST + 1}] = h; s[${w}] = r; s[${w + 1}] = h;`, faults: false, stores: false };
      }
      return null;
    }
    case "mov": {
      const o0 = ops[0];
      const o1 = ops[1];
      if (o0 === "Zv" && (os === 4 || os === 8)) {
        const r = (d.opcode & 7) | ((d.rex & 1) << 3);
        return { src: `s[${r * 2}] = ${d.imm | 0}; s[${r * 2 + 1}] = ${os === 8 ? d.immHi | 0 : 0};`, faults: false, stores: false };
      }
      if ((o0 === "Gv" || o0 === "Ev") && (o1 === "Gv" || o1 === "Ev") && (os === 4 || os === 8)) {
        const toReg = o0 === "Gv";
        if (d.mod === 3) {
          const a = (toReg ? d.reg : d.rm) * 2;
          const b = (toReg ? d.rm : d.reg) * 2;
          return { src: `s[${a}] = s[${b}]; s[${a + 1}] = ${os === 8 ? `s[${b + 1}]` : "0"};`, faults: false, stores: false };
        }
        const ea = eaSource(d, c);
        if (ea === null) return null;
        const r = d.reg * 2;
        if (os === 4) {
          if (toReg) return { src: `cpu.jitIndex = ${k}; ${ea} m = cpu.rd32(${d.seg}, ea, eh); s[${r}] = m; s[${r + 1}] = 0;`, faults: true, stores: false };
          return { src: `cpu.jitIndex = ${k}; ${ea} cpu.wr32(${d.seg}, ea, eh, s[${r}]);`, faults: true, stores: true };
        }
        if (toReg) return { src: `cpu.jitIndex = ${k}; ${ea} m = cpu.rd64(${d.seg}, ea, eh); s[${r + 1}] = cpu.hi; s[${r}] = m;`, faults: true, stores: false };
        return { src: `cpu.jitIndex = ${k}; ${ea} cpu.wr64(${d.seg}, ea, eh, s[${r}], s[${r + 1}]);`, faults: true, stores: true };
      }
      if (o0 === "Ev" && o1 === "Iz" && (os === 4 || os === 8)) {
        if (d.mod === 3) return { src: `s[${d.rm * 2}] = ${d.imm | 0}; s[${d.rm * 2 + 1}] = ${os === 8 ? d.imm >> 31 : 0};`, faults: false, stores: false };
        const ea = eaSource(d, c);
        if (ea === null) return null;
        if (os === 4) return { src: `cpu.jitIndex = ${k}; ${ea} cpu.wr32(${d.seg}, ea, eh, ${d.imm | 0});`, faults: true, stores: true };
        return { src: `cpu.jitIndex = ${k}; ${ea} cpu.wr64(${d.seg}, ea, eh, ${d.imm | 0}, ${d.imm >> 31});`, faults: true, stores: true };
      }
      return null;
    }
    case "shl": case "shr": case "sar": {
      if (os !== 4 || d.mod !== 3 || ops[1] === "CL") return null;
      const count = (ops[1] === "1" ? 1 : d.imm) & 31;
      const w = d.rm * 2;
      if (count === 0) return { src: `s[${w + 1}] = 0;`, faults: false, stores: false };
      const op = mn === "shl" ? "<<" : mn === "shr" ? ">>>" : ">>";
      const kind = mn === "shl" ? (CC_SHL << 2) | 2 : (CC_SAR << 2) | 2;
      return {
        src: `m = s[${w}]; r = (m ${op} ${count}) | 0; s[${S.CC_OP}] = ${kind}; s[${S.CC_SRC}] = m ${op} ${count - 1}; s[${S.CC_DST}] = r; ${set32(d.rm, "r")}`,
        faults: false,
        stores: false,
      };
    }
    case "movzx": case "movsx": {
      if (os !== 4 && os !== 8) return null;
      const byte = ops[1] === "Eb";
      const signed = mn === "movsx";
      let src: string;
      let pre = "";
      let faults = false;
      if (d.mod === 3) {
        if (byte && d.highByteRegs && d.rm >= 4 && d.rm < 8) src = `((s[${(d.rm - 4) * 2}] >> 8) & 255)`;
        else src = `(s[${d.rm * 2}] & ${byte ? 255 : 65535})`;
      } else {
        const ea = eaSource(d, c);
        if (ea === null) return null;
        pre = `cpu.jitIndex = ${k}; ${ea} `;
        src = byte ? `cpu.rd8(${d.seg}, ea, eh)` : `cpu.rd16(${d.seg}, ea, eh)`;
        faults = true;
      }
      const r = d.reg * 2;
      const val = signed ? (byte ? `((${src} << 24) >> 24)` : `((${src} << 16) >> 16)`) : src;
      const hi = os === 8 && signed ? "m >> 31" : "0";
      return { src: `${pre}m = ${val}; s[${r}] = m; s[${r + 1}] = ${hi};`, faults, stores: false };
    }
    case "imul": {
      if (os !== 4 || ops.length < 2) return null;
      let a: string;
      let pre = "";
      let faults = false;
      if (d.mod === 3) a = `s[${d.rm * 2}]`;
      else {
        const ea = eaSource(d, c);
        if (ea === null) return null;
        pre = `cpu.jitIndex = ${k}; ${ea} `;
        a = `cpu.rd32(${d.seg}, ea, eh)`;
        faults = true;
      }
      const b = ops.length === 3 ? String(d.imm | 0) : `s[${d.reg * 2}]`;
      // The double product is exact below 2^53 and certainly not an int32 above it.
      return {
        src: `${pre}m = ${a}; b = ${b}; r = Math.imul(m, b); s[${S.CC_SRC}] = m * b !== r ? 1 : 0; s[${S.CC_OP}] = ${(CC_MUL << 2) | 2}; s[${S.CC_DST}] = r; ${set32(d.reg, "r")}`,
        faults,
        stores: false,
      };
    }
    case "cmovcc": {
      if (os !== 4) return null;
      let pre = "";
      let a: string;
      let faults = false;
      if (d.mod === 3) a = `s[${d.rm * 2}]`;
      else {
        const ea = eaSource(d, c);
        if (ea === null) return null;
        pre = `cpu.jitIndex = ${k}; ${ea} `;
        a = `cpu.rd32(${d.seg}, ea, eh)`;
        faults = true;
      }
      const r = d.reg * 2;
      const cond = condExpr(c.flags, d.opcode & 15) ?? `COND(s, ${d.opcode & 15})`;
      return { src: `${pre}m = ${a}; if (${cond}) s[${r}] = m; s[${r + 1}] = 0;`, faults, stores: false };
    }
    case "setcc": {
      if (d.mod !== 3) return null;
      const hb = d.highByteRegs && d.rm >= 4 && d.rm < 8;
      const w = (hb ? d.rm - 4 : d.rm) * 2;
      const sh = hb ? 8 : 0;
      const cond = condExpr(c.flags, d.opcode & 15) ?? `COND(s, ${d.opcode & 15})`;
      return { src: `s[${w}] = (s[${w}] & ${~(0xff << sh)}) | ((${cond} ? 1 : 0) << ${sh});`, faults: false, stores: false };
    }
    case "lea": {
      if (os !== 4 && os !== 8) return null;
      const ea = eaSource(d, c);
      if (ea === null) return null;
      const r = d.reg * 2;
      return { src: `${ea} s[${r}] = ea; s[${r + 1}] = ${os === 8 && d.asize === 8 ? "eh" : "0"};`, faults: false, stores: false };
    }
    case "push": {
      if (ops[0] === "Iz" || ops[0] === "Ib") {
        if (c.sw === 4 && os === 4) return { src: `cpu.jitIndex = ${k}; t = (s[8] - 4) | 0; cpu.wr32(2, t, 0, ${d.imm | 0}); s[8] = t; s[9] = 0;`, faults: true, stores: true };
        if (c.sw === 8 && os === 8) return { src: `cpu.jitIndex = ${k}; t = (s[8] - 8) | 0; h = (t >>> 0) > (s[8] >>> 0) ? (s[9] - 1) | 0 : s[9]; cpu.wr64(2, t, h, ${d.imm | 0}, ${d.imm >> 31}); s[8] = t; s[9] = h;`, faults: true, stores: true };
        return null;
      }
      if (ops[0] !== "Zv") return null;
      const r = ((d.opcode & 7) | ((d.rex & 1) << 3)) * 2;
      if (c.sw === 4 && os === 4) return { src: `cpu.jitIndex = ${k}; t = (s[8] - 4) | 0; cpu.wr32(2, t, 0, s[${r}]); s[8] = t; s[9] = 0;`, faults: true, stores: true };
      if (c.sw === 8 && os === 8) return { src: `cpu.jitIndex = ${k}; t = (s[8] - 8) | 0; h = (t >>> 0) > (s[8] >>> 0) ? (s[9] - 1) | 0 : s[9]; cpu.wr64(2, t, h, s[${r}], s[${r + 1}]); s[8] = t; s[9] = h;`, faults: true, stores: true };
      return null;
    }
    case "pop": {
      if (ops[0] !== "Zv") return null;
      const r = ((d.opcode & 7) | ((d.rex & 1) << 3)) * 2;
      if (c.sw === 4 && os === 4) return { src: `cpu.jitIndex = ${k}; m = cpu.rd32(2, s[8], 0); s[8] = (s[8] + 4) | 0; s[9] = 0; s[${r}] = m; s[${r + 1}] = 0;`, faults: true, stores: false };
      if (c.sw === 8 && os === 8) return { src: `cpu.jitIndex = ${k}; m = cpu.rd64(2, s[8], s[9]); h = cpu.hi; t = (s[8] + 8) | 0; if ((t >>> 0) < 8) s[9] = (s[9] + 1) | 0; s[8] = t; s[${r}] = m; s[${r + 1}] = h;`, faults: true, stores: false };
      return null;
    }
    case "jmp": {
      if (ops[0] !== "Jb" && ops[0] !== "Jz") return null;
      const [lo, hi] = rel();
      return { src: `${jumpTo(lo, hi)} return ${(k << 2) | 1};`, faults: false, stores: false };
    }
    case "jcc": {
      const [lo, hi] = rel();
      const cc = d.opcode & 15;
      const selfLoop = lo === c.blockEipLo && hi === c.blockEipHi && k === c.n - 1;
      const taken = selfLoop
        ? `if (it + 1 < lim && !cpu.eventCheck) { it++; continue; } ${jumpTo(lo, hi)} return ${(k << 2) | 1};`
        : `${jumpTo(lo, hi)} return ${(k << 2) | 1};`;
      const cond = condExpr(c.flags, cc) ?? (cc === 4 ? "ZF(s) !== 0" : cc === 5 ? "ZF(s) === 0" : `COND(s, ${cc})`);
      return { src: `if (${cond}) { ${taken} } s[${S.RIP_LO}] = ${c.nextLo}; s[${S.RIP_HI}] = ${c.nextHi}; return ${(k << 2) | 1};`, faults: false, stores: false };
    }
    case "call": {
      if (ops[0] !== "Jz") return null;
      const [lo, hi] = rel();
      if (c.sw === 4 && !c.code64 && os === 4) return { src: `cpu.jitIndex = ${k}; t = (s[8] - 4) | 0; cpu.wr32(2, t, 0, ${c.nextLo}); s[8] = t; s[9] = 0; s[${S.RIP_LO}] = ${lo}; return ${(k << 2) | 1};`, faults: true, stores: true };
      if (c.sw === 8) return { src: `cpu.jitIndex = ${k}; t = (s[8] - 8) | 0; h = (t >>> 0) > (s[8] >>> 0) ? (s[9] - 1) | 0 : s[9]; cpu.wr64(2, t, h, ${c.nextLo}, ${c.nextHi}); s[8] = t; s[9] = h; s[${S.RIP_LO}] = ${lo}; s[${S.RIP_HI}] = ${hi}; return ${(k << 2) | 1};`, faults: true, stores: true };
      return null;
    }
    case "ret": {
      if (ops.length !== 0) return null;
      if (c.sw === 4 && !c.code64 && os === 4) return { src: `cpu.jitIndex = ${k}; m = cpu.rd32(2, s[8], 0); s[8] = (s[8] + 4) | 0; s[9] = 0; s[${S.RIP_LO}] = m; return ${(k << 2) | 1};`, faults: true, stores: false };
      if (c.sw === 8) return { src: `cpu.jitIndex = ${k}; m = cpu.rd64(2, s[8], s[9]); h = cpu.hi; if (((h + 32768) & -65536) !== 0) cpu.gp(0); t = (s[8] + 8) | 0; if ((t >>> 0) < 8) s[9] = (s[9] + 1) | 0; s[8] = t; s[${S.RIP_LO}] = m; s[${S.RIP_HI}] = h; return ${(k << 2) | 1};`, faults: true, stores: false };
      return null;
    }
  }
  return null;
}

/** What the block compiler hands back: the function, and the RIP of each instruction it covers. */
export interface Compiled {
  fn: () => number;
  /** ripLo/ripHi[k]: RIP of instruction k of the compiled unit; entry n: RIP after the last. */
  ripLo: Int32Array;
  ripHi: Int32Array;
  /** Blocks (besides the first) whose code the unit contains, to be invalidated with them. */
  spans: Block[];
  /** TLB generation it was compiled under when it spans other blocks (-1: it does not). */
  tlbGen: number;
}

const MAX_TRACE_BLOCKS = 4;
/** Placeholders in a closure call's line for storing and reloading the register locals. */
const SPILL = "/*spill*/";
const RELOAD = "/*reload*/";
const MAX_TRACE_INSNS = 96;

/**
 * Picks the blocks of a trace: the block itself, then, while its last instruction is a direct
 * CALL, or a RET whose return address the trace knows, the block that ran after it last time
 * (block linking remembers it). The trace ends at any other exit.
 */
function traceOf(b: Block): Block[] {
  const blocks = [b];
  const returns: number[] = [];
  let cur = b;
  let total = b.n;
  while (blocks.length < MAX_TRACE_BLOCKS) {
    const insns = cur.insns;
    if (insns === null || insns.length === 0) break;
    const last = insns[insns.length - 1];
    const mn = last.entry!.mnemonic;
    let nextEip: number;
    const endLo = (cur.eipLo + cur.offs[cur.n]) | 0;
    if (mn === "call" && last.entry!.operands[0] === "Jz") {
      returns.push(endLo);
      nextEip = (endLo + last.imm) | 0;
    } else if (mn === "ret" && last.entry!.operands.length === 0 && returns.length > 0) {
      nextEip = returns.pop()!;
    } else break;
    const succ = cur.succA !== null && cur.succA.eipLo === nextEip ? cur.succA : cur.succB !== null && cur.succB.eipLo === nextEip ? cur.succB : null;
    if (succ === null || !succ.valid || succ.mode !== b.mode || succ.insns === null || succ.eipHi !== cur.eipHi) break;
    if (blocks.includes(succ) || total + succ.n > MAX_TRACE_INSNS) break;
    blocks.push(succ);
    total += succ.n;
    cur = succ;
  }
  return blocks;
}

/** The lazy-flag operation after a template: the last constant stored to CC_OP, or -1 if dynamic. */
function flagsAfter(src: string, before: number): number {
  if (/\b(ALU|ALU64)\(s\b/.test(src)) return -1;
  let after = before;
  for (const m of src.matchAll(new RegExp(`s\\[${S.CC_OP}\\] = (\\d+);`, "g"))) after = Number(m[1]);
  return after;
}

/** Compiles a block (and the trace that follows it through calls and returns); null if it can't. */
export function compileBlock(cpu: Cpu, b: Block): Compiled | null {
  if (b.insns === null || b.insns.length !== b.n || b.n === 0) return null;
  const blocks = traceOf(b);
  const code64 = cpu.code64;
  const sw = code64 ? 8 : cpu.ssB ? 4 : 2;
  const insns: Insn[] = [];
  const fns: (() => number)[] = [];
  const ripLo: number[] = [];
  const ripHi: number[] = [];
  for (const blk of blocks) {
    for (let k = 0; k < blk.n; k++) {
      insns.push(blk.insns![k]);
      fns.push(blk.fns[k]);
      const lo = (blk.eipLo + blk.offs[k]) | 0;
      ripLo.push(lo);
      ripHi.push(code64 && lo >>> 0 < blk.eipLo >>> 0 ? (blk.eipHi + 1) | 0 : blk.eipHi);
    }
  }
  const lastBlk = blocks[blocks.length - 1];
  const endLo = (lastBlk.eipLo + lastBlk.offs[lastBlk.n]) | 0;
  ripLo.push(endLo);
  ripHi.push(code64 && endLo >>> 0 < lastBlk.eipLo >>> 0 ? (lastBlk.eipHi + 1) | 0 : lastBlk.eipHi);
  const n = insns.length;
  const lines: string[] = [];
  let selfLoop = false;
  // What the lazy-flag words hold, as far as the code emitted so far shows (-1: unknown).
  // A self-loop's head is reached from the entry and from the back edge: unknown there.
  let flags = -1;
  const nBlocks = blocks.length;
  for (let k = 0; k < n; k++) {
    const d = insns[k];
    // The instruction's own next RIP (a CALL's return address), which inside a trace differs
    // from the RIP of the next instruction of the unit after a CALL or RET.
    const ownNextLo = (ripLo[k] + d.len) | 0;
    const ownNextHi = code64 && ownNextLo >>> 0 < ripLo[k] >>> 0 ? (ripHi[k] + 1) | 0 : ripHi[k];
    const c: Ctx = { code64, sw, k, nextLo: ownNextLo, nextHi: ownNextHi, blockEipLo: b.eipLo, blockEipHi: b.eipHi, n, flags };
    const inTrace = nBlocks > 1 && k < n - 1;
    const inline = emitTraced(d, c, inTrace ? ripLo[k + 1] : null, inTrace ? ripHi[k + 1] : null);
    if (inline !== null) {
      if (inline.src.includes("continue;")) selfLoop = true;
      lines.push(inline.src);
      flags = flagsAfter(inline.src, flags);
      if (inline.stores) lines.push(`if (B.n !== ${b.n}) return ${(k + 1) << 2};`);
    } else {
      lines.push(`${SPILL}cpu.jitIndex = ${k}; r = F[${k}](); ${RELOAD}if (r !== 0) return ${k << 2} | r; if (B.n !== ${b.n}) return ${(k + 1) << 2};`);
      flags = -1;
    }
  }
  lines.push(`return ${n << 2};`);
  // Guest registers live in locals inside the unit: loaded at entry, stored back on every way
  // out (return or a fault unwinding), and around each closure call, which sees only s[].
  // The lazy-flag words (CC_OP .. CC_SRC2) too; the helpers that read or write them through
  // s (CF, ZF, COND, ALU, ALU64) get them stored before and reloaded after.
  const local = (w: number) => w < 32 || (w >= S.CC_OP && w <= S.CC_SRC2 + 1);
  const used = new Set<number>();
  for (const l of lines) for (const m of l.matchAll(/s\[(\d+)\]/g)) if (local(Number(m[1]))) used.add(Number(m[1]));
  const words = [...used].sort((x, y) => x - y);
  const spill = words.map((w) => `s[${w}] = g${w}; `).join("");
  const reload = words.map((w) => `g${w} = s[${w}]; `).join("");
  const flagWords = words.filter((w) => w >= 32);
  const flagSpill = flagWords.map((w) => `s[${w}] = g${w}; `).join("");
  const flagReload = flagWords.map((w) => `g${w} = s[${w}]; `).join("");
  const localized = lines.map((l) => {
    let out = l.replace(/s\[(\d+)\]/g, (all, w) => (local(Number(w)) ? `g${w}` : all));
    if (out.includes(SPILL)) out = out.replace(SPILL, spill).replace(RELOAD, reload);
    else if (/\b(ALU|ALU64)\(s\b/.test(out)) out = `${flagSpill}${out} ${flagReload}`; // they write the flags
    else if (/\b(CF|ZF|COND)\(s\b/.test(out)) out = `${flagSpill}${out}`; // they only read them
    return out;
  });
  const regs = words;
  // A self-loop counts its completed iterations in \`it\` and adds them to cpu.retired on the
  // way out, whichever way that is (return or a fault unwinding).
  let body = selfLoop
    ? `let it = 0;\nconst lim = Math.min(Math.floor((cpu.runEnd - cpu.retired) / ${n}), 1048576);\ntry {\nfor (;;) {\n${localized.join("\n")}\n}\n} finally {\ncpu.retired += it * ${n};\n}`
    : localized.join("\n");
  if (regs.length > 0) {
    body = `${regs.map((w) => `let g${w} = s[${w}];`).join(" ")}\ntry {\n${body}\n} finally {\n${spill}\n}`;
  }
  const src =
    `"use strict";\nreturn function block() {\n` +
    `let r = 0, b = 0, c = 0, h = 0, m = 0, t = 0, t2 = 0, ea = 0, eh = 0;\n${body}\n};`;
  try {
    const factory = new Function("cpu", "s", "F", "B", "ALU", "ALU64", "CF", "ZF", "COND", "RHF", src);
    const fn = factory(cpu, cpu.s, fns, b, alu, alu64, getCF, getZF, testCond, lastHigh) as () => number;
    return {
      fn,
      ripLo: Int32Array.from(ripLo),
      ripHi: Int32Array.from(ripHi),
      spans: blocks.slice(1),
      tlbGen: blocks.length > 1 ? cpu.tlbGen : -1,
    };
  } catch {
    return null;
  }
}

/**
 * Like emit(), but a CALL or RET whose successor in the trace is the next instruction of the
 * unit continues inline instead of returning (RET checks the popped address first).
 */
function emitTraced(
  d: Insn,
  c: Ctx,
  nextInTraceLo: number | null,
  nextInTraceHi: number | null,
): { src: string; faults: boolean; stores: boolean } | null {
  const out = emit(d, c);
  if (out === null || nextInTraceLo === null) return out;
  const mn = d.entry!.mnemonic;
  const fallsThrough = c.nextLo === nextInTraceLo;
  if (mn === "call" && !fallsThrough) {
    // The trace continues at the callee: drop the "return" after setting RIP.
    return { src: out.src.replace(/ return \d+;$/, ""), faults: out.faults, stores: out.stores };
  }
  if (mn === "ret" && !fallsThrough) {
    // Continue inline only if the popped address is the one the trace expects.
    const expect = c.code64 ? `m === ${nextInTraceLo} && h === ${nextInTraceHi}` : `m === ${nextInTraceLo}`;
    return { src: out.src.replace(/ return (\d+);$/, ` if (!(${expect})) return $1;`), faults: out.faults, stores: out.stores };
  }
  return out;
}
