// The processor's services to its owner: state bytes, guest-virtual copies, one-instruction
// emulation with a write hook, and the debug registers.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Cpu, EXIT_BUDGET, EXIT_EXCEPTION, EXIT_HLT } from "./cpu.ts";
import * as S from "./state.ts";

function flatCpu(code: number[], paging = false): { cpu: Cpu; ram: Uint8Array } {
  const ram = new Uint8Array(1 << 20);
  const memory = { u8: ram, ramBytes: ram.length, mmioRead: () => -1, mmioWrite: () => {} };
  const cpu = new Cpu({ memory, io: { in: () => 0xff, out: () => {} } });
  const dv = new DataView(ram.buffer);
  if (paging) {
    // Identity-map the first 1 MiB (supervisor), and map 0x400000 -> 0x20000 for the user.
    // 0x401000 stays unmapped.
    dv.setUint32(0x10000, 0x11000 | 0x7, true); // PDE 0
    for (let i = 0; i < 256; i++) dv.setUint32(0x11000 + i * 4, (i << 12) | 0x3, true);
    dv.setUint32(0x10000 + 4, 0x12000 | 0x7, true); // PDE 1 (0x400000)
    dv.setUint32(0x12000, 0x20000 | 0x7, true);
    cpu.s[S.CR3_LO] = 0x10000;
  }
  cpu.s[S.CR0] = S.CR0_PE | S.CR0_ET | (paging ? S.CR0_PG | S.CR0_WP : 0);
  for (const seg of [S.SEG_ES, S.SEG_SS, S.SEG_DS, S.SEG_FS, S.SEG_GS]) cpu.loadSegmentRaw(seg, 0x10, 0, -1, 0xc093);
  cpu.loadSegmentRaw(S.SEG_CS, 0x08, 0, -1, 0xc09b);
  ram.set(code, 0x1000);
  cpu.setRip(0x1000);
  cpu.setReg32(S.REG_ESP, 0x80000);
  return { cpu, ram };
}

test("saveState/restoreState round-trip a vCPU exactly, mid-computation", () => {
  const code = [0xb9, 0xe8, 0x03, 0, 0, 0x01, 0xd8, 0x49, 0x75, 0xfb, 0xf4];
  const a = flatCpu(code);
  a.cpu.setReg32(S.REG_EBX, 5);
  assert.equal(a.cpu.run(1001), EXIT_BUDGET);
  const saved = a.cpu.saveState();
  const b = flatCpu(code);
  b.cpu.restoreState(saved);
  assert.deepEqual(b.cpu.saveState(), saved, "restore then save gives the same bytes");
  assert.equal(b.cpu.retired, a.cpu.retired);
  assert.equal(b.cpu.run(1_000_000), EXIT_HLT);
  assert.equal(a.cpu.run(1_000_000), EXIT_HLT);
  assert.equal(b.cpu.reg32(S.REG_EAX), 5000);
  assert.deepEqual(b.cpu.saveState(), a.cpu.saveState());
  assert.throws(() => b.cpu.restoreState(new Uint8Array(10)), /expected 4096 bytes, got 10/);
});

test("readGuest/writeGuest translate through the guest's page tables and report faults without side effects", () => {
  const { cpu, ram } = flatCpu([0xf4], true);
  cpu.updateMode();
  ram.set([1, 2, 3, 4], 0x20ffc);
  const out = new Uint8Array(4);
  assert.equal(cpu.readGuest(0x400ffc, 0, out, true), 0);
  assert.deepEqual([...out], [1, 2, 3, 4]);
  assert.equal(cpu.writeGuest(0x400000, 0, new Uint8Array([9, 8]), true), 0);
  assert.deepEqual([...ram.subarray(0x20000, 0x20002)], [9, 8]);
  cpu.s[S.CR2_LO] = 0x1234;
  // Crossing into the unmapped page: nothing is written, the fault is reported, CR2 is untouched.
  assert.equal(cpu.writeGuest(0x400ffe, 0, new Uint8Array([7, 7, 7, 7]), true), S.VEC_PF);
  assert.deepEqual(cpu.guestFault, { vector: S.VEC_PF, errorCode: 0x6, addressLo: 0x401000, addressHi: 0 });
  assert.deepEqual([...ram.subarray(0x20ffe, 0x21000)], [3, 4]);
  assert.equal(cpu.s[S.CR2_LO], 0x1234);
  // A user access to a supervisor page is a protection fault.
  assert.equal(cpu.readGuest(0x1000, 0, out, true), S.VEC_PF);
  assert.equal(cpu.guestFault.errorCode, 0x5);
});

test("emulateOne runs exactly one instruction and lets the hook take its store", () => {
  // mov [0x2000], eax ; mov [0x2004], eax ; hlt
  const { cpu, ram } = flatCpu([0xa3, 0x00, 0x20, 0, 0, 0xa3, 0x04, 0x20, 0, 0, 0xf4]);
  cpu.setReg32(S.REG_EAX, 0xdeadbeef);
  const seen: [number, number, number][] = [];
  assert.equal(cpu.emulateOne((pa, size, value) => { seen.push([pa, size, value]); return true; }), EXIT_BUDGET);
  assert.deepEqual(seen, [[0x2000, 4, 0xdeadbeef]]);
  assert.equal(new DataView(ram.buffer).getUint32(0x2000, true), 0, "the hook took the store");
  assert.equal(cpu.eip, 0x1005);
  assert.equal(cpu.retired, 1);
  // Without the hook the next store lands normally.
  assert.equal(cpu.run(100), EXIT_HLT);
  assert.equal(new DataView(ram.buffer).getUint32(0x2004, true), 0xdeadbeef);
});

test("an instruction breakpoint faults before the instruction; a data breakpoint traps after the store", () => {
  // 0x1000: inc eax ; 0x1001: mov [0x3000], eax ; 0x1006: inc eax ; 0x1007: hlt
  const { cpu } = flatCpu([0x40, 0xa3, 0x00, 0x30, 0, 0, 0x40, 0xf4]);
  cpu.controls.exceptionBitmap = 1 << S.VEC_DB;
  cpu.s[S.DR0] = 0x1006; // execute
  cpu.s[S.DR0 + 2] = 0x3000; // DR1: write, 4 bytes
  cpu.s[S.DR7] = 0x1 | 0x4 | (0b01 << 20) | (0b11 << 22);
  assert.equal(cpu.run(100), EXIT_EXCEPTION);
  assert.equal(cpu.exitInfo.vector, S.VEC_DB);
  assert.equal(cpu.eip, 0x1006, "data breakpoint: a trap, RIP after the store");
  assert.equal(cpu.s[S.DR6] & 0xf, 0b10);
  assert.equal(cpu.run(100), EXIT_EXCEPTION);
  assert.equal(cpu.eip, 0x1006, "instruction breakpoint: a fault, RIP at the instruction");
  assert.equal(cpu.s[S.DR6] & 0xf, 0b01);
  assert.equal(cpu.reg32(S.REG_EAX), 1);
  cpu.setEflags(cpu.getEflags() | S.F_RF); // what IRET from the #DB handler would restore
  assert.equal(cpu.run(100), EXIT_HLT);
  assert.equal(cpu.reg32(S.REG_EAX), 2);
});

test("an I/O breakpoint (CR4.DE, R/W = 10) traps after the IN or OUT that touches its ports", () => {
  // 0x1000: out 0x80, al ; 0x1002: in al, dx ; 0x1003: out dx, ax ; 0x1005: hlt
  const code = [0xe6, 0x80, 0xec, 0x66, 0xef, 0xf4];
  const armed = (de: boolean, edx: number): Cpu => {
    const { cpu } = flatCpu(code);
    cpu.controls.exceptionBitmap = 1 << S.VEC_DB;
    cpu.setReg32(S.REG_EDX, edx);
    cpu.s[S.DR0 + 4] = 0x3f8; // DR2: ports 0x3f8..0x3f9 (LEN = 01, two bytes)
    cpu.s[S.DR7] = (1 << 4) | (0b10 << 24) | (0b01 << 26);
    if (de) cpu.s[S.CR4] |= S.CR4_DE;
    return cpu;
  };
  // Without CR4.DE the R/W = 10 encoding is undefined: no breakpoint.
  const off = armed(false, 0x3f7);
  assert.equal(off.run(100), EXIT_HLT);
  assert.equal(off.s[S.DR6] & 0xf, 0);
  // OUT to 0x80 and IN from 0x3f7 (one byte) miss; OUT of a word to 0x3f7 covers 0x3f8: a trap.
  const word = armed(true, 0x3f7);
  assert.equal(word.run(100), EXIT_EXCEPTION);
  assert.equal(word.exitInfo.vector, S.VEC_DB);
  assert.equal(word.eip, 0x1005, "a trap: RIP after the OUT");
  assert.equal(word.s[S.DR6] & 0xf, 0b100);
  // A one-byte IN from 0x3f9 hits too, and the trap comes right after it.
  const byte = armed(true, 0x3f9);
  assert.equal(byte.run(100), EXIT_EXCEPTION);
  assert.equal(byte.eip, 0x1003);
  assert.equal(byte.s[S.DR6] & 0xf, 0b100);
});

test("emulateOne can write through a read-only mapping for a hypervisor that keeps page tables read-only", () => {
  // mov [0x400010], eax ; hlt   with 0x400000 mapped read-only (supervisor-writable is off: CR0.WP)
  const { cpu, ram } = flatCpu([0xa3, 0x10, 0x00, 0x40, 0x00, 0xf4], true);
  new DataView(ram.buffer).setUint32(0x12000, 0x20000 | 0x5, true); // present, user, read-only
  cpu.updateMode();
  cpu.setReg32(S.REG_EAX, 0x1234);
  cpu.controls.exceptionBitmap = 1 << S.VEC_PF;
  assert.equal(cpu.run(10), EXIT_EXCEPTION, "an ordinary store faults");
  assert.equal(cpu.exitInfo.errorCode, 0x3);
  const seen: number[][] = [];
  assert.equal(cpu.emulateOne((pa, size, v) => { seen.push([pa, size, v]); return true; }, { writeThroughReadOnly: true }), EXIT_BUDGET);
  assert.deepEqual(seen, [[0x20010, 4, 0x1234]]);
  assert.equal(cpu.eip, 0x1005);
});
