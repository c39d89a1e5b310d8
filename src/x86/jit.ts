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
import { CC_ADD, CC_DEC, CC_INC, CC_LOGIC, CC_SUB, getCF, getZF, testCond } from "./flags.ts";
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

/** Inline source for one instruction, or null to call its closure. `stores`: it may write memory. */
function emit(d: Insn, c: Ctx): { src: string; faults: boolean; stores: boolean } | null {
  const e = d.entry!;
  const mn = e.mnemonic;
  const ops = e.operands;
  const os = d.osize;
  if (d.lock || d.rep) return null;
  const byteOp = ops.some((o) => o.endsWith("b") && o !== "Jb" && o !== "Ib") || ops[0] === "AL";
  if (byteOp) return null;
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
        return { src: `c = CF(s); r = (s[${r * 2}] ${inc ? "+" : "-"} 1) | 0; s[${S.CC_SRC}] = c; s[${S.CC_OP}] = ${kind}; s[${S.CC_DST}] = r; ${set32(r, "r")}`, faults: false, stores: false };
      }
      if (os === 8) {
        const w = r * 2;
        const hi = inc ? `(r === 0 ? (s[${w + 1}] + 1) | 0 : s[${w + 1}])` : `(r === -1 ? (s[${w + 1}] - 1) | 0 : s[${w + 1}])`;
        return { src: `c = CF(s); r = (s[${w}] ${inc ? "+" : "-"} 1) | 0; h = ${hi}; s[${S.CC_SRC}] = c; s[${S.CC_OP}] = ${kind}; s[${S.CC_DST}] = r; s[${S.CC_DST + 1}] = h; s[${w}] = r; s[${w + 1}] = h;`, faults: false, stores: false };
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
    case "lea": {
      if (os !== 4 && os !== 8) return null;
      const ea = eaSource(d, c);
      if (ea === null) return null;
      const r = d.reg * 2;
      return { src: `${ea} s[${r}] = ea; s[${r + 1}] = ${os === 8 && d.asize === 8 ? "eh" : "0"};`, faults: false, stores: false };
    }
    case "push": {
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
      const cond = cc === 4 ? "ZF(s) !== 0" : cc === 5 ? "ZF(s) === 0" : `COND(s, ${cc})`;
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

/** Compiles a block; returns null if it can't (the block then stays interpreted). */
export function compileBlock(cpu: Cpu, b: Block, insns: readonly Insn[]): (() => number) | null {
  const n = insns.length;
  if (n === 0 || n !== b.n) return null;
  const code64 = cpu.code64;
  const sw = code64 ? 8 : cpu.ssB ? 4 : 2;
  const lines: string[] = [];
  let selfLoop = false;
  let offset = 0;
  for (let k = 0; k < n; k++) {
    const d = insns[k];
    const startLo = (b.eipLo + offset) | 0;
    const startHi = code64 && startLo >>> 0 < b.eipLo >>> 0 ? (b.eipHi + 1) | 0 : b.eipHi;
    offset += d.len;
    const nextLo = (b.eipLo + offset) | 0;
    const nextHi = code64 && nextLo >>> 0 < b.eipLo >>> 0 ? (b.eipHi + 1) | 0 : b.eipHi;
    void startHi;
    const c: Ctx = { code64, sw, k, nextLo, nextHi, blockEipLo: b.eipLo, blockEipHi: b.eipHi, n };
    const inline = emit(d, c);
    if (inline !== null) {
      if (inline.src.includes("continue;")) selfLoop = true;
      lines.push(inline.src);
      if (inline.stores) lines.push(`if (B.n !== ${n}) return ${(k + 1) << 2};`);
    } else {
      lines.push(`cpu.jitIndex = ${k}; r = F[${k}](); if (r !== 0) return ${k << 2} | r; if (B.n !== ${n}) return ${(k + 1) << 2};`);
    }
  }
  lines.push(`return ${n << 2};`);
  // A self-loop counts its completed iterations in `it` and adds them to cpu.retired on the
  // way out, whichever way that is (return or a fault unwinding).
  const body = selfLoop
    ? `let it = 0;\nconst lim = Math.min(Math.floor((cpu.runEnd - cpu.retired) / ${n}), 1048576);\ntry {\nfor (;;) {\n${lines.join("\n")}\n}\n} finally {\ncpu.retired += it * ${n};\n}`
    : lines.join("\n");
  const src =
    `"use strict";\nreturn function block() {\n` +
    `let r = 0, b = 0, c = 0, h = 0, m = 0, t = 0, t2 = 0, ea = 0, eh = 0;\n${body}\n};`;
  try {
    const factory = new Function("cpu", "s", "F", "B", "ALU", "ALU64", "CF", "ZF", "COND", "RHF", src);
    return factory(cpu, cpu.s, b.fns, b, alu, alu64, getCF, getZF, testCond, lastHigh) as () => number;
  } catch {
    return null;
  }
}
