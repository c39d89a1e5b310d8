// The block compiler against the interpreter: random straight-line register code inside a
// counted loop (so units loop on themselves and carry flag knowledge from one instruction to
// the next) must leave every register, the flags and the retired count exactly as the
// closures do. The host-CPU differential tests check the templates one instruction at a time;
// this checks what only whole units do (flags kept in locals, static carry and conditions).
import assert from "node:assert/strict";
import { test } from "node:test";
import { Cpu, EXIT_HLT } from "./cpu.ts";
import * as S from "./state.ts";

function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/** Registers the generated code may write: not ESP (4) or EBP (5, the loop counter). */
const REGS = [0, 1, 2, 3, 6, 7];

function randomInstruction(next: () => number): number[] {
  const pick = <T>(a: readonly T[]): T => a[next() % a.length];
  const d = pick(REGS);
  const r = next() % 8;
  const modrm = (reg: number, rm: number) => 0xc0 | (reg << 3) | rm;
  switch (next() % 16) {
    case 0: return [pick([0x01, 0x29, 0x39, 0x21, 0x09, 0x31, 0x85, 0x11, 0x19]), modrm(r, d)];
    case 1: return [0x83, modrm(next() % 8, d), pick([0, 1, 2, 0xff, 0x7f, 0x80, next() & 0xff])];
    case 2: return [0x81, modrm(next() % 8, d), next() & 0xff, next() & 0xff, next() & 0xff, next() & 0xff];
    case 3: return [pick([0x40, 0x48]) + d];
    case 4: return [0xc1, modrm(pick([4, 5, 7, 0, 1]), d), next() & 31];
    case 5: return [0xd1, modrm(pick([4, 5, 7, 2, 3]), d)];
    case 6: return [0x0f, 0xaf, modrm(d, r)];
    case 7: return [0x6b, modrm(d, r), next() & 0xff];
    case 8: return [0x0f, 0x40 + (next() % 16), modrm(d, r)];
    case 9: return [0x0f, 0x90 + (next() % 16), modrm(0, pick([0, 1, 2, 3]))];
    case 10: return [0x0f, pick([0xb6, 0xbe]), modrm(d, next() % 8)];
    case 11: return [0xf7, modrm(pick([2, 3]), d)];
    case 12: return [0x8d, 0x40 | (d << 3) | pick([0, 1, 2, 3, 5, 6, 7]), next() & 0xff]; // lea d, [reg + disp8], no SIB
    case 13: return [0xb8 + d, next() & 0xff, next() & 0xff, next() & 0xff, next() & 0xff];
    case 14: return [pick([0xf8, 0xf9, 0xf5])]; // clc, stc, cmc
    default: return [0x89, modrm(r, d)];
  }
}

function program(seed: number): number[] {
  const next = rng(seed);
  const body: number[] = [];
  const count = 1 + (next() % 12);
  for (let i = 0; i < count; i++) {
    if (next() % 3 === 0) {
      // A flag producer directly followed by a condition consumer, the pairs the compiler
      // evaluates statically (CMP/SUB/TEST/AND/ADD/INC/DEC then SETcc/CMOVcc).
      const d = REGS[next() % REGS.length];
      const r = next() % 2 ? d : REGS[next() % REGS.length];
      const producers = [[0x39, 0xc0 | (r << 3) | d], [0x29, 0xc0 | (r << 3) | d], [0x85, 0xc0 | (r << 3) | d], [0x21, 0xc0 | (r << 3) | d], [0x01, 0xc0 | (r << 3) | d], [0x40 + d], [0x48 + d]];
      body.push(...producers[next() % producers.length]);
      const cc = next() % 16;
      body.push(...(next() % 2 ? [0x0f, 0x90 + cc, 0xc0 | (next() % 4)] : [0x0f, 0x40 + cc, 0xc0 | (REGS[next() % REGS.length] << 3) | (next() % 8)]));
    } else body.push(...randomInstruction(next));
  }
  // mov ebp, N; L: body; dec ebp; jnz L; hlt
  const loop = [...body, 0x4d];
  const back = -(loop.length + 2);
  return [0xbd, 5 + (next() % 20), 0, 0, 0, ...loop, 0x75, back & 0xff, 0xf4];
}

function run(code: number[], jitThreshold: number, seed: number): Cpu {
  const ram = new Uint8Array(1 << 20);
  const cpu = new Cpu({ memory: { u8: ram, ramBytes: ram.length, mmioRead: () => -1, mmioWrite: () => {} }, io: { in: () => 0xff, out: () => {} }, jitThreshold });
  cpu.s[S.CR0] = S.CR0_PE | S.CR0_ET;
  for (const seg of [S.SEG_ES, S.SEG_SS, S.SEG_DS, S.SEG_FS, S.SEG_GS]) cpu.loadSegmentRaw(seg, 0x10, 0, -1, 0xc093);
  cpu.loadSegmentRaw(S.SEG_CS, 0x08, 0, -1, 0xc09b);
  ram.set(code, 0x1000);
  cpu.setRip(0x1000);
  const next = rng(seed ^ 0x5bd1e995);
  // Edge values half of the time, so that equal operands and sign boundaries come up often.
  const edges = [0, 1, 2, -1, 0x7fffffff, 0x80000000, 0x80000001, 0xff, 0x100, 0xffff];
  for (const r of REGS) cpu.setReg32(r, next() & 1 ? edges[next() % edges.length] : next());
  cpu.setReg32(S.REG_ESP, 0x80000);
  cpu.setEflags(2 | (next() & 0x8d5));
  return cpu;
}

test("compiled units compute exactly what the interpreter computes (2,000 random loops)", () => {
  let compiled = 0;
  for (let seed = 1; seed <= 2000; seed++) {
    const code = program(seed);
    const a = run(code, 0, seed);
    const b = run(code, 1, seed);
    assert.equal(a.run(100_000), EXIT_HLT, `seed ${seed}: interpreter`);
    assert.equal(b.run(100_000), EXIT_HLT, `seed ${seed}: compiled`);
    compiled += b.jitCompiled;
    const where = `seed ${seed}: ${code.map((x) => x.toString(16).padStart(2, "0")).join(" ")}`;
    for (let r = 0; r < 8; r++) assert.equal(b.reg32(r), a.reg32(r), `${where}: register ${r}`);
    assert.equal(b.getEflags(), a.getEflags(), `${where}: eflags`);
    assert.equal(b.retired, a.retired, `${where}: retired`);
  }
  assert.ok(compiled >= 2000, `units compiled: ${compiled}`);
});
