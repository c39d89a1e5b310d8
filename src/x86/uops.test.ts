// The micro-op interpreter (uops.ts; runFast and runUops in cpu.ts) against the closures it
// mirrors: random programs of the forms that have micro-ops (register and immediate ALU, INC/DEC,
// MOV, loads and stores, MOVZX/MOVSX and ALU with memory, LEA, PUSH/POP, CALL/RET, JMP/Jcc,
// fused flag producer + Jcc), in
// 32-bit protected mode and in 64-bit mode, run once with micro-ops and once through the
// closures only; registers, RIP, EFLAGS, the retired count, the exit and memory must agree.
// Faults (#PF from an unmapped page in 64-bit mode) must leave the same precise state.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Cpu, EXIT_HLT } from "./cpu.ts";
import * as S from "./state.ts";

const RAM = 4 << 20;
const CODE = 0x1000;
const DATA = 0x40000; // 64 KiB of data; ESI/RSI points here
const STACK = 0x80000;

function makeCpu(mode: 32 | 64, code: Uint8Array, microOps: boolean): { cpu: Cpu; ram: Uint8Array } {
  const ram = new Uint8Array(RAM);
  const memory = { u8: ram, ramBytes: ram.length, mmioRead: () => -1, mmioWrite: () => {} };
  const cpu = new Cpu({ memory, io: { in: () => 0xff, out: () => {} }, jitThreshold: 0 });
  cpu.microOps = microOps;
  const s = cpu.s;
  if (mode === 32) {
    s[S.CR0] = S.CR0_PE | S.CR0_ET;
    for (const seg of [S.SEG_ES, S.SEG_SS, S.SEG_DS, S.SEG_FS, S.SEG_GS]) cpu.loadSegmentRaw(seg, 0x10, 0, -1, 0xc093);
    cpu.loadSegmentRaw(S.SEG_CS, 0x08, 0, -1, 0xc09b);
  } else {
    // Identity map of the first 2 MiB through 4 KiB pages, but page 0x7f000 left unmapped
    // (a load or store there faults) and 4 MiB beyond not mapped at all.
    const PML4 = 0x200000;
    const PDPT = PML4 + 0x1000;
    const PD = PML4 + 0x2000;
    const PT = PML4 + 0x3000;
    const put = (a: number, v: number) => {
      ram[a] = v & 0xff; ram[a + 1] = (v >> 8) & 0xff; ram[a + 2] = (v >> 16) & 0xff; ram[a + 3] = v >>> 24;
    };
    put(PML4, PDPT | 7);
    put(PDPT, PD | 7);
    put(PD, PT | 7);
    for (let i = 0; i < 512; i++) if (i !== 0x7f) put(PT + i * 8, (i << 12) | 0x67);
    s[S.CR3_LO] = PML4;
    s[S.CR4] = S.CR4_PAE;
    s[S.EFER] = S.EFER_LME | S.EFER_LMA;
    s[S.CR0] = S.CR0_PE | S.CR0_ET | S.CR0_PG;
    for (const seg of [S.SEG_ES, S.SEG_SS, S.SEG_DS, S.SEG_FS, S.SEG_GS]) cpu.loadSegmentRaw(seg, 0x10, 0, -1, 0xc093);
    cpu.loadSegmentRaw(S.SEG_CS, 0x08, 0, -1, 0xa09b);
    cpu.updateMode();
    cpu.flushTlb(false);
  }
  cpu.controls.exceptionBitmap = -1;
  ram.set(code, CODE);
  cpu.setRip(CODE);
  return { cpu, ram };
}

/** xorshift32 */
function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

// Registers a program may write: not ESP (4), not ESI (6, the data pointer), not EBX (3, a
// small index). 64-bit mode adds R8..R15 except R12 (SIB special cases are not the point here).
const DEST32 = [0, 1, 2, 5, 7];
const DEST64 = [0, 1, 2, 5, 7, 8, 9, 10, 11, 13, 14, 15];

function genProgram(mode: 32 | 64, seed: number): Uint8Array {
  const r = rng(seed);
  const pick = <T>(a: readonly T[]): T => a[r() % a.length];
  const out: number[] = [];
  const imm32 = (v: number) => out.push(v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff);
  const regs = mode === 64 ? DEST64 : DEST32;
  const rex = (w: boolean, reg: number, rm: number, index = 0) => {
    const b = 0x40 | (w ? 8 : 0) | ((reg >> 3) << 2) | ((index >> 3) << 1) | (rm >> 3);
    if (b !== 0x40 || (mode === 64 && w)) out.push(b);
  };
  const aluOps = [0x01, 0x29, 0x39, 0x21, 0x09, 0x31, 0x85, 0x11, 0x19, 0x03, 0x2b, 0x3b];
  const value = () => pick([0, 1, -1, 0x7fffffff, 0x80000000, r(), r() & 0xff, 0xffff]);
  const emit = (depth: number): void => {
    const w = mode === 64 && (r() & 1) === 1;
    const d = pick(regs);
    const src = pick([...regs, 3, 6]);
    switch (r() % 20) {
      case 0: case 1: // ALU r, r
        rex(w, src, d); out.push(pick(aluOps), 0xc0 | ((src & 7) << 3) | (d & 7)); break;
      case 2: // ALU r, imm8 / imm32 (83 / 81 /op)
        rex(w, 0, d);
        if (r() & 1) { out.push(0x83, 0xc0 | ((r() % 8) << 3) | (d & 7), r() & 0xff); }
        else { out.push(0x81, 0xc0 | ((r() % 8) << 3) | (d & 7)); imm32(value()); }
        break;
      case 3: // INC/DEC r (FF /0, /1)
        rex(w, 0, d); out.push(0xff, 0xc0 | ((r() & 1) << 3) | (d & 7)); break;
      case 4: // MOV r, r
        rex(w, src, d); out.push(0x89, 0xc0 | ((src & 7) << 3) | (d & 7)); break;
      case 5: // MOV r, imm32 (B8+r; with REX.W a 64-bit immediate)
        rex(w, 0, d); out.push(0xb8 | (d & 7)); imm32(value()); if (w) imm32(value()); break;
      case 6: case 7: { // MOV r, [esi + disp8] / [esi + ebx*4 + disp8] and the store
        const store = (r() & 1) === 1;
        const reg = store ? src : d;
        const sib = (r() & 1) === 1;
        rex(w, reg, 6, sib ? 3 : 0);
        out.push(store ? 0x89 : 0x8b);
        if (sib) out.push(0x44 | ((reg & 7) << 3), (2 << 6) | (3 << 3) | 6, r() & 0x7f);
        else out.push(0x46 | ((reg & 7) << 3), r() & 0x7f);
        break;
      }
      case 8: // LEA r, [esi + ebx*4 + disp8]
        rex(w, d, 6, 3); out.push(0x8d, 0x44 | ((d & 7) << 3), (2 << 6) | (3 << 3) | 6, r() & 0xff); break;
      case 9: { // PUSH src; POP d
        if (src >= 8) out.push(0x41); out.push(0x50 | (src & 7));
        if (d >= 8) out.push(0x41); out.push(0x58 | (d & 7));
        break;
      }
      case 10: case 11: { // flag producer; Jcc over a short body
        out.push(pick([0x39, 0x85, 0x29, 0x21]), 0xc0 | ((src & 7) << 3) | (d & 7));
        const cc = r() % 16;
        out.push(0x70 | cc, 0);
        const at = out.length;
        if (depth < 2) { emit(depth + 1); emit(depth + 1); }
        out[at - 1] = out.length - at;
        break;
      }
      case 12: { // DEC r; JNZ back: a bounded loop (counter in ECX)
        if (depth >= 2) break;
        out.push(0xb9); imm32((r() % 5) + 1);
        const top = out.length;
        emit(depth + 1);
        out.push(0x49, 0x75, 0);
        // in 64-bit mode 0x49 is a REX prefix: use FF C9 (dec ecx) there
        if (mode === 64) { out.splice(out.length - 3, 3, ...((r() & 1) === 1 ? [0x48] : []), 0xff, 0xc9, 0x75, 0); }
        out[out.length - 1] = (top - out.length) & 0xff;
        break;
      }
      case 13: { // CALL f; JMP over f; f: body; RET
        if (depth >= 2) break;
        out.push(0xe8); imm32(2);
        out.push(0xeb, 0);
        const jat = out.length;
        emit(depth + 1);
        out.push(0xc3);
        out[jat - 1] = out.length - jat;
        break;
      }
      case 14: // CMP r, imm8; JB/JL/JA... over nothing (fusion with immediates)
        rex(false, 0, d); out.push(0x83, 0xf8 | (d & 7), r() & 0xff, 0x70 | (r() % 16), 0); break;
      case 16: { // flag producer; MOV (no flags); Jcc: an unfused Jcc that reads another record's flags
        out.push(pick([0x39, 0x85, 0x29, 0x21, 0x31, 0x09, 0x01]), 0xc0 | ((src & 7) << 3) | (d & 7));
        out.push(0x89, 0xc0 | ((src & 7) << 3) | pick(DEST32));
        out.push(0x70 | (r() % 16), 0);
        const at = out.length;
        if (depth < 2) emit(depth + 1);
        out[at - 1] = out.length - at;
        break;
      }
      case 17: { // MOVZX/MOVSX from memory; ALU with a memory source or destination (aligned or not)
        const disp = (r() & 1) === 1 ? (r() & 0x1f) << 2 : r() & 0x7f;
        const reg = pick(regs);
        switch (r() % 3) {
          case 0: // 0F B6/B7/BE/BF /r: r32 (or r64 with REX.W), byte/word [esi + disp8]
            rex(w, reg, 6);
            out.push(0x0f, pick([0xb6, 0xb7, 0xbe, 0xbf]), 0x46 | ((reg & 7) << 3), disp);
            break;
          case 1: // ADD/SUB/CMP/AND/OR/XOR r32, [esi + disp8]
            rex(false, reg, 6);
            out.push(pick([0x03, 0x2b, 0x3b, 0x23, 0x0b, 0x33]), 0x46 | ((reg & 7) << 3), disp);
            break;
          default: // ADD/SUB/CMP/AND/OR/XOR/TEST [esi + disp8], r32
            rex(false, src, 6);
            out.push(pick([0x01, 0x29, 0x39, 0x21, 0x09, 0x31, 0x85]), 0x46 | ((src & 7) << 3), disp);
        }
        break;
      }
      case 18: // CALL f whose f moves its return address on by 2: the RET does not return after
        // the call (a block that followed the call must branch where it popped):
        // call f; inc eax (skipped); jmp end; f: add dword [esp], 2; ret; end:
        out.push(0xe8, 4, 0, 0, 0, 0xff, 0xc0, 0xeb, 5, 0x83, 0x04, 0x24, 0x02, 0xc3);
        break;
      case 15: // a store into the code stream ahead (self-modifying: the block must stop)
        if (mode === 32 && (r() % 4) === 0) {
          // mov dword [abs], imm32 over the next 4 bytes: 4 NOPs become 4 x INC EAX
          const here = CODE + out.length;
          out.push(0xc7, 0x05); imm32(here + 10); imm32(0x40404040); out.push(0x90, 0x90, 0x90, 0x90);
        }
        break;
      default: // a load that may fault in 64-bit mode (page 0x7f000 unmapped)
        if (mode === 64 && (r() % 8) === 0) { out.push(0x8b, 0x04, 0x25); imm32(0x7f000 + (r() & 0xfc)); }
        else { out.push(0x8b, 0x46 | ((d & 7) << 3), r() & 0x7f); }
    }
  };
  for (let k = 0; k < 40; k++) emit(0);
  out.push(0xf4);
  return Uint8Array.from(out);
}

function runOnce(mode: 32 | 64, code: Uint8Array, seed: number, microOps: boolean) {
  const { cpu, ram } = makeCpu(mode, code, microOps);
  const r = rng(seed ^ 0x5a5a5a5a);
  for (let reg = 0; reg < (mode === 64 ? 16 : 8); reg++) cpu.setReg64(reg, r(), mode === 64 ? r() : 0);
  cpu.setReg64(S.REG_ESP, STACK, 0);
  cpu.setReg64(S.REG_ESI, DATA, 0);
  cpu.setReg64(S.REG_EBX, r() & 0xff, 0);
  for (let a = DATA; a < DATA + 0x800; a++) ram[a] = r() & 0xff;
  const exit = cpu.run(100_000);
  const regs: number[] = [];
  for (let k = 0; k < 34; k++) regs.push(cpu.s[k]);
  return { exit, regs, flags: cpu.getEflags(), retired: cpu.retired, vector: cpu.exitInfo.vector, cr2: cpu.s[S.CR2_LO], data: ram.slice(DATA, DATA + 0x1000), stack: ram.slice(STACK - 0x1000, STACK), code: ram.slice(CODE, CODE + 0x1000) };
}

for (const mode of [32, 64] as const) {
  test(`micro-ops agree with the closures on 150 random ${mode}-bit programs`, () => {
    let faults = 0;
    for (let seed = 1; seed <= 150; seed++) {
      const code = genProgram(mode, seed * 7919 + mode);
      const a = runOnce(mode, code, seed, true);
      const b = runOnce(mode, code, seed, false);
      const what = `${mode}-bit seed ${seed}`;
      assert.equal(a.exit, b.exit, `${what}: exit`);
      assert.deepEqual(a.regs, b.regs, `${what}: registers and RIP`);
      assert.equal(a.flags, b.flags, `${what}: EFLAGS`);
      assert.equal(a.retired, b.retired, `${what}: retired`);
      assert.equal(a.vector, b.vector, `${what}: vector`);
      assert.equal(a.cr2, b.cr2, `${what}: CR2`);
      assert.deepEqual(a.data, b.data, `${what}: data`);
      assert.deepEqual(a.stack, b.stack, `${what}: stack`);
      assert.deepEqual(a.code, b.code, `${what}: code`);
      if (a.exit !== EXIT_HLT) faults++;
    }
    if (mode === 64) assert.ok(faults > 0, "some programs fault");
  });
}

test("the literal constants of the micro-op loop match uops.ts and state.ts", async () => {
  // The run loop writes `32 /* RIP_LO */`: module constants read through a namespace are
  // loads, not constants, in V8's optimised code, and case labels must be literals for a jump table.
  const { readFileSync } = await import("node:fs");
  const U = await import("./uops.ts");
  const src = readFileSync(new URL("./cpu.ts", import.meta.url), "utf8");
  const names: Record<string, number> = { ...(S as unknown as Record<string, number>), ...(U as unknown as Record<string, number>) };
  let checked = 0;
  for (const m of src.matchAll(/\b(\d+) \/\* ([A-Z][A-Z0-9_]*)(?:, ([A-Z][A-Z0-9_]*))? \*\//g)) {
    const name = m[2];
    if (name === "CC_INC" || name === "CC_LOGIC") continue; // flags.ts kinds, checked below
    assert.equal(names[name], Number(m[1]), `${m[0]}`);
    checked++;
  }
  assert.ok(checked > 50);
  const F = await import("./flags.ts");
  assert.equal(F.CC_INC >> 1, 3);
  assert.equal(F.CC_DEC >> 1, 3);
  assert.equal(F.CC_LOGIC, 5);
});

test("a self-loop in the micro-op loop stops at the budget and resumes with exact counts", () => {
  // mov ecx, 1000; L: add eax, ebx; dec ecx; jnz L; hlt
  const code = Uint8Array.from([0xb9, 0xe8, 0x03, 0, 0, 0x01, 0xd8, 0x49, 0x75, 0xfb, 0xf4]);
  for (const budget of [1, 2, 3, 4, 7, 100]) {
    const { cpu } = makeCpu(32, code, true);
    cpu.setReg32(S.REG_EBX, 1);
    cpu.setReg32(S.REG_ESP, STACK);
    let runs = 0;
    for (;;) {
      const before = cpu.retired;
      const exit = cpu.run(budget);
      runs++;
      // run() may overshoot the budget by less than one block (at most 4 instructions here).
      assert.ok(cpu.retired - before < budget + 4, `budget ${budget}: ran ${cpu.retired - before}`);
      if (exit === EXIT_HLT) break;
    }
    assert.equal(cpu.reg32(S.REG_EAX), 1000);
    assert.equal(cpu.retired, 3002);
    assert.ok(runs >= Math.floor(3000 / (budget + 3)), `budget ${budget}: ${runs} runs`);
  }
});
