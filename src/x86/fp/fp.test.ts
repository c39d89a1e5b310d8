// The x87/MMX/SSE units' system-level behaviour that the user-mode differential tester cannot
// reach (CR0.EM/TS/MP/NE, CR4.OSFXSR/OSXMMEXCPT, FERR#, real-mode environment layouts), plus
// state-image round trips. Arithmetic exactness is the differential tester's job
// (tests/cpu/fpdiff.test.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { Cpu, EXIT_EXCEPTION, EXIT_HLT, EXIT_INTERNAL } from "../cpu.ts";
import * as S from "../state.ts";
import { FX, FX_MXCSR, FX_XMM, setFerrHook } from "./fpstate.ts";
import { fxsaveImage, loadFxsaveImage } from "./fxsave.ts";

/** Flat 32-bit protected mode, no paging, code at 0x1000, every exception exits. */
function flatCpu(code: number[], cr0 = S.CR0_PE | S.CR0_ET | S.CR0_NE | S.CR0_MP, cr4 = S.CR4_OSFXSR | S.CR4_OSXMMEXCPT): { cpu: Cpu; ram: Uint8Array } {
  const ram = new Uint8Array(1 << 20);
  const memory = { u8: ram, ramBytes: ram.length, mmioRead: () => -1, mmioWrite: () => {} };
  const cpu = new Cpu({ memory, io: { in: () => 0xff, out: () => {} } });
  cpu.s[S.CR0] = cr0;
  cpu.s[S.CR4] = cr4;
  for (const seg of [S.SEG_ES, S.SEG_SS, S.SEG_DS, S.SEG_FS, S.SEG_GS]) cpu.loadSegmentRaw(seg, 0x10, 0, -1, 0xc093);
  cpu.loadSegmentRaw(S.SEG_CS, 0x08, 0, -1, 0xc09b);
  ram.set([...code, 0xf4], 0x1000);
  cpu.setRip(0x1000);
  cpu.setReg32(S.REG_ESP, 0x80000);
  cpu.controls.exceptionBitmap = -1;
  return { cpu, ram };
}

function vectorOf(code: number[], cr0?: number, cr4?: number, setup?: (cpu: Cpu) => void): number {
  const { cpu } = flatCpu(code, cr0, cr4);
  setup?.(cpu);
  const r = cpu.run(100);
  if (r === EXIT_HLT) return -1;
  assert.equal(r, EXIT_EXCEPTION);
  return cpu.exitInfo.vector;
}

const FLD1 = [0xd9, 0xe8];
const FWAIT = [0x9b];
const ADDPS = [0x0f, 0x58, 0xc1];
const PADDB_MM = [0x0f, 0xfc, 0xc1];
const BASE = S.CR0_PE | S.CR0_ET | S.CR0_NE;

test("reset leaves the x87 with FCW 0040h, and MXCSR at its default", () => {
  const { cpu } = flatCpu([]);
  assert.equal(cpu.s[FX] & 0xffff, 0x0040);
  assert.equal(cpu.s[FX_MXCSR], 0x1f80);
});

test("CR0.EM and CR0.TS: #NM for x87, #UD/#NM for SSE and MMX, WAIT only with MP", () => {
  assert.equal(vectorOf(FLD1, BASE | S.CR0_EM), S.VEC_NM);
  assert.equal(vectorOf(FLD1, BASE | S.CR0_TS), S.VEC_NM);
  assert.equal(vectorOf(FLD1, BASE), -1);
  assert.equal(vectorOf(ADDPS, BASE | S.CR0_EM), S.VEC_UD, "SSE with EM is #UD");
  assert.equal(vectorOf(ADDPS, BASE | S.CR0_TS), S.VEC_NM);
  assert.equal(vectorOf(PADDB_MM, BASE | S.CR0_EM), S.VEC_UD, "MMX with EM is #UD");
  assert.equal(vectorOf(PADDB_MM, BASE | S.CR0_TS), S.VEC_NM);
  assert.equal(vectorOf(FWAIT, BASE | S.CR0_TS), -1, "WAIT ignores TS without MP");
  assert.equal(vectorOf(FWAIT, BASE | S.CR0_TS | S.CR0_MP), S.VEC_NM);
  assert.equal(vectorOf([0x0f, 0xae, 0x05, 0, 0x20, 0, 0], BASE | S.CR0_TS), S.VEC_NM, "FXSAVE with TS");
});

test("CR4.OSFXSR clear: SSE is #UD, MMX and x87 still run", () => {
  assert.equal(vectorOf(ADDPS, undefined, 0), S.VEC_UD);
  assert.equal(vectorOf(PADDB_MM, undefined, 0), -1);
  assert.equal(vectorOf(FLD1, undefined, 0), -1);
});

test("an unmasked SIMD exception is #XM, or #UD without CR4.OSXMMEXCPT; the flag is set either way", () => {
  // divss xmm0, xmm1 with xmm1 = 0 and ZM unmasked
  const code = [0xf3, 0x0f, 0x5e, 0xc1];
  const setup = (cpu: Cpu) => {
    cpu.s[FX_MXCSR] = 0x1f80 & ~0x200;
    cpu.s[FX_XMM] = 0x3f800000; // xmm0 = 1.0f
  };
  const a = flatCpu(code);
  setup(a.cpu);
  assert.equal(a.cpu.run(10), EXIT_EXCEPTION);
  assert.equal(a.cpu.exitInfo.vector, S.VEC_XM);
  assert.equal(a.cpu.s[FX_MXCSR] & 4, 4, "ZE set");
  assert.equal(a.cpu.s[FX_XMM], 0x3f800000, "destination unchanged");
  assert.equal(vectorOf(code, undefined, S.CR4_OSFXSR, setup), S.VEC_UD);
});

test("a pending unmasked x87 exception: #MF at the next waiting instruction with CR0.NE, else the FERR# hook", () => {
  // fldz; fld1; fdiv st0, st1 (1/0 with ZM unmasked); fwait
  const code = [0xd9, 0xee, 0xd9, 0xe8, 0xd8, 0xf1, 0x9b];
  const unmaskZE = (cpu: Cpu) => {
    cpu.s[FX] = (cpu.s[FX] & ~0xffff) | (0x037f & ~4);
  };
  const { cpu } = flatCpu(code);
  unmaskZE(cpu);
  assert.equal(cpu.run(10), EXIT_EXCEPTION);
  assert.equal(cpu.exitInfo.vector, S.VEC_MF);
  assert.equal(cpu.eip, 0x1006, "#MF is reported at the FWAIT");
  assert.equal((cpu.s[FX] >>> 16) & 0x8084, 0x8084, "ZE, ES and B set");
  // CR0.NE clear: the hook runs (a PC raises IRQ 13) and execution goes on.
  const b = flatCpu(code, S.CR0_PE | S.CR0_ET);
  unmaskZE(b.cpu);
  let ferr = 0;
  setFerrHook(b.cpu, () => {
    ferr++;
    return true;
  });
  assert.equal(b.cpu.run(10), EXIT_HLT);
  assert.equal(ferr, 1);
});

test("a misaligned MOVAPS is #GP(0); MOVUPS is fine", () => {
  // movaps xmm0, [0x2001]; movups xmm0, [0x2001]
  assert.equal(vectorOf([0x0f, 0x28, 0x05, 0x01, 0x20, 0, 0]), S.VEC_GP);
  assert.equal(vectorOf([0x0f, 0x10, 0x05, 0x01, 0x20, 0, 0]), -1);
});

test("FXSAVE and FXRSTOR round-trip the state; FXRSTOR with reserved MXCSR bits is #GP", () => {
  // fld1; fldpi; fxsave [0x2000]; fninit; fxrstor [0x2000]
  const { cpu, ram } = flatCpu([0xd9, 0xe8, 0xd9, 0xeb, 0x0f, 0xae, 0x05, 0, 0x20, 0, 0, 0xdb, 0xe3, 0x0f, 0xae, 0x0d, 0, 0x20, 0, 0]);
  cpu.s[FX_XMM + 5] = 0x12345678;
  assert.equal(cpu.run(20), EXIT_HLT);
  const img = new Uint8Array(512);
  fxsaveImage(cpu.s, img, false, 8);
  assert.deepEqual([...img.subarray(0, 24)], [...ram.subarray(0x2000, 0x2018)]);
  assert.equal(img[4], 0xc0, "two registers valid (abridged tag)");
  assert.equal(cpu.s[FX_XMM + 5], 0x12345678);
  // Reserved MXCSR bit in the image.
  ram[0x2000 + 27] = 0x01;
  const b = flatCpu([0x0f, 0xae, 0x0d, 0, 0x20, 0, 0]);
  b.ram.set(ram.subarray(0x2000, 0x2200), 0x2000);
  assert.equal(b.cpu.run(10), EXIT_EXCEPTION);
  assert.equal(b.cpu.exitInfo.vector, S.VEC_GP);
  // loadFxsaveImage puts ST(i) where FXSAVE found it.
  const c = flatCpu([]);
  loadFxsaveImage(c.cpu.s, img, false, 8);
  const back = new Uint8Array(512);
  fxsaveImage(c.cpu.s, back, false, 8);
  assert.deepEqual([...back.subarray(32, 160)], [...img.subarray(32, 160)]);
});

test("FNSTENV in real mode and 16-bit operand size uses the real-mode layouts", () => {
  // Real mode: fninit; fld1 at 0x1002 (CS base 0); fnstenv [0x2000] (16-bit: 14 bytes); o32 fnstenv [0x2100] (28 bytes)
  const ram = new Uint8Array(1 << 20);
  const memory = { u8: ram, ramBytes: ram.length, mmioRead: () => -1, mmioWrite: () => {} };
  const cpu = new Cpu({ memory, io: { in: () => 0xff, out: () => {} } });
  cpu.s[S.CR0] = S.CR0_ET | S.CR0_NE;
  for (const seg of [S.SEG_ES, S.SEG_SS, S.SEG_DS, S.SEG_FS, S.SEG_GS, S.SEG_CS]) cpu.loadSegmentRaw(seg, 0, 0, 0xffff, seg === S.SEG_CS ? 0x9b : 0x93);
  ram.set([0xdb, 0xe3, 0xd9, 0xe8, 0xd9, 0x36, 0x00, 0x20, 0x66, 0xd9, 0x36, 0x00, 0x21, 0xf4], 0x1000);
  cpu.setRip(0x1000);
  cpu.controls.exceptionBitmap = -1;
  assert.equal(cpu.run(10), EXIT_HLT);
  const dv = new DataView(ram.buffer);
  assert.equal(dv.getUint16(0x2000, true), 0x037f, "FCW");
  assert.equal(dv.getUint16(0x2006, true), 0x1002, "FIP[15:0] of FLD1");
  assert.equal(dv.getUint16(0x2008, true) & 0x7ff, 0x1e8, "FOP of FLD1 (D9 E8)");
  assert.equal(dv.getUint32(0x210c, true) & 0xffff, 0x1002, "32-bit real-mode FIP");
  assert.equal(dv.getUint32(0x2110, true) & 0x7ff, 0x1e8, "32-bit real-mode FOP");
});

test("random x87/MMX/SSE encodings never raise a host exception", () => {
  // 30,000 random byte strings starting with an x87 escape, 0F, 0F 38, 0F 3A or a mandatory
  // prefix, run in flat 32-bit protected mode with random registers, control word and MXCSR:
  // every outcome must be guest-visible (never EXIT_INTERNAL, the processor's report of a host
  // exception).
  let seed = 12345;
  const rnd = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) | 0;
    return (seed >>> 8) & 0xff;
  };
  const starts = [[0xd8], [0xd9], [0xda], [0xdb], [0xdc], [0xdd], [0xde], [0xdf], [0x0f], [0x0f, 0x38], [0x0f, 0x3a], [0x66, 0x0f], [0xf3, 0x0f], [0xf2, 0x0f], [0x66, 0x0f, 0x38], [0x66, 0x0f, 0x3a]];
  // One processor for all cases (a new one per case would allocate its TLB arrays each time).
  const { cpu, ram } = flatCpu([]);
  let executed = 0;
  for (let i = 0; i < 30000; i++) {
    const code = [...starts[i % starts.length]!];
    while (code.length < 12) code.push(rnd());
    ram.set([...code, 0xf4], 0x1000);
    cpu.invalidatePhysRange(0x1000, 16);
    cpu.setRip(0x1000);
    cpu.setEflags(2);
    cpu.s[S.CR0] = S.CR0_PE | S.CR0_ET | S.CR0_NE | S.CR0_MP;
    cpu.s[S.CR4] = S.CR4_OSFXSR | S.CR4_OSXMMEXCPT;
    // Random 0F opcodes include system instructions: put the segments back each time.
    for (const seg of [S.SEG_ES, S.SEG_SS, S.SEG_DS, S.SEG_FS, S.SEG_GS]) cpu.loadSegmentRaw(seg, 0x10, 0, -1, 0xc093);
    cpu.loadSegmentRaw(S.SEG_CS, 0x08, 0, -1, 0xc09b);
    cpu.s[S.CPL] = 0;
    cpu.updateMode();
    cpu.flushTlb(false);
    for (let r = 0; r < 8; r++) cpu.setReg32(r, r === S.REG_ESP ? 0x80000 : (rnd() << 12) | rnd());
    cpu.s[FX] = 0x037f & ~(rnd() & 0x3f);
    cpu.s[FX_MXCSR] = 0x1f80 & ~((rnd() & 0x3f) << 7);
    const r = cpu.run(5);
    if (r === EXIT_EXCEPTION || r === EXIT_HLT) executed++;
    assert.notEqual(r, EXIT_INTERNAL, `host exception for ${code.map((b) => b.toString(16)).join(" ")}: ${cpu.exitInfo.message}`);
  }
  assert.ok(executed > 25000, `only ${executed} cases ran to an exception or HLT`);
});
