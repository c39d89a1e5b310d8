import assert from "node:assert/strict";
import { test } from "node:test";
import { Cpu, EXIT_BUDGET, EXIT_HLT, EXIT_REQUESTED } from "./cpu.ts";
import * as S from "./state.ts";

/** A CPU in flat 32-bit protected mode without paging, over 1 MiB of RAM, code at 0x1000. */
function flatCpu(code: number[], io?: { in(p: number, s: number): number; out(p: number, s: number, v: number): void }): { cpu: Cpu; ram: Uint8Array } {
  const ram = new Uint8Array(1 << 20);
  const memory = { u8: ram, ramBytes: ram.length, mmioRead: () => -1, mmioWrite: () => {} };
  const cpu = new Cpu({ memory, io: io ?? { in: () => 0xff, out: () => {} } });
  cpu.s[S.CR0] = S.CR0_PE | S.CR0_ET;
  for (const seg of [S.SEG_ES, S.SEG_SS, S.SEG_DS, S.SEG_FS, S.SEG_GS]) cpu.loadSegmentRaw(seg, 0x10, 0, -1, 0xc093);
  cpu.loadSegmentRaw(S.SEG_CS, 0x08, 0, -1, 0xc09b);
  ram.set(code, 0x1000);
  cpu.setRip(0x1000);
  cpu.setReg32(S.REG_ESP, 0x80000);
  return { cpu, ram };
}

test("a register loop retires exactly the instructions it executes", () => {
  // mov ecx, 1000; L: add eax, ebx; dec ecx; jnz L; hlt
  const { cpu } = flatCpu([0xb9, 0xe8, 0x03, 0, 0, 0x01, 0xd8, 0x49, 0x75, 0xfb, 0xf4]);
  cpu.setReg32(S.REG_EBX, 3);
  assert.equal(cpu.run(1_000_000), EXIT_HLT);
  assert.equal(cpu.retired, 1 + 3 * 1000 + 1);
  assert.equal(cpu.reg32(S.REG_EAX), 3000);
  assert.equal(cpu.eip, 0x100b);
});

test("the budget stops run() between blocks and the run resumes where it stopped", () => {
  const { cpu } = flatCpu([0xb9, 0xe8, 0x03, 0, 0, 0x01, 0xd8, 0x49, 0x75, 0xfb, 0xf4]);
  cpu.setReg32(S.REG_EBX, 1);
  let exits = 0;
  while (cpu.run(100) === EXIT_BUDGET) exits++;
  assert.ok(exits >= 29, `expected many budget exits, saw ${exits}`);
  assert.equal(cpu.reg32(S.REG_EAX), 1000);
  assert.equal(cpu.retired, 3002);
});

test("a store into the running block takes effect for the very next instruction", () => {
  // mov byte [0x100b], 0x40 (turns the following 'nop' at 0x100b... into 'inc eax'); nop; hlt
  // c6 05 0b 10 00 00 40 = mov byte [0x100b], 0x40 (7 bytes, at 0x1000..0x1006)
  // 0x1007: nop; 0x1008: nop; 0x1009: nop; 0x100a: nop; 0x100b: nop; 0x100c: hlt
  const { cpu, ram } = flatCpu([0xc6, 0x05, 0x0b, 0x10, 0, 0, 0x40, 0x90, 0x90, 0x90, 0x90, 0x90, 0xf4]);
  assert.equal(cpu.run(1000), EXIT_HLT);
  assert.equal(ram[0x100b], 0x40);
  assert.equal(cpu.reg32(S.REG_EAX), 1, "the modified instruction ran as inc eax");
});

test("code rewritten after it ran is decoded again", () => {
  // L: call f; cmp eax, 2; jne L; hlt ; f: nop; ret   and the guest patches f after the first call.
  // 0x1000: e8 0b 00 00 00        call 0x1010
  // 0x1005: 83 f8 02              cmp eax, 2
  // 0x1008: 75 f6                 jne 0x1000
  // 0x100a: f4                    hlt
  // 0x1010: 90 c3                 nop ; ret  -> patched to 40 c3 (inc eax; ret) by the host between runs
  const code = new Array(0x12).fill(0x90);
  code.splice(0, 11, 0xe8, 0x0b, 0, 0, 0, 0x83, 0xf8, 0x02, 0x75, 0xf6, 0xf4);
  code[0x10] = 0x90;
  code[0x11] = 0xc3;
  const { cpu, ram } = flatCpu(code);
  assert.equal(cpu.run(50), EXIT_BUDGET);
  assert.equal(cpu.reg32(S.REG_EAX), 0);
  ram[0x1010] = 0x40; // the owner changes guest memory: it must say so
  cpu.invalidatePhysRange(0x1010, 1);
  assert.equal(cpu.run(1000), EXIT_HLT);
  assert.equal(cpu.reg32(S.REG_EAX), 2);
});

test("a device callback can stop run() with requestExit", () => {
  // mov al, 1; out 0xf4, al; jmp $
  let cpu: Cpu;
  const io = { in: () => 0xff, out: (port: number) => { if (port === 0xf4) cpu.requestExit(); } };
  ({ cpu } = flatCpu([0xb0, 0x01, 0xe6, 0xf4, 0xeb, 0xfe], io));
  assert.equal(cpu.run(1_000_000), EXIT_REQUESTED);
  assert.equal(cpu.eip, 0x1004);
});

test("state is bytes: copying the state frame into a new CPU resumes the same computation", () => {
  const code = [0xb9, 0xe8, 0x03, 0, 0, 0x01, 0xd8, 0x49, 0x75, 0xfb, 0xf4];
  const a = flatCpu(code);
  a.cpu.setReg32(S.REG_EBX, 2);
  a.cpu.run(301);
  const b = flatCpu(code);
  b.cpu.s.set(a.cpu.s);
  for (let seg = 0; seg < 8; seg++) b.cpu.segmentChanged(seg);
  b.cpu.updateMode();
  assert.equal(b.cpu.run(1_000_000), EXIT_HLT);
  assert.equal(b.cpu.reg32(S.REG_EAX), 2000);
});

/** The same program run interpreted and compiled must end in the same state. */
function runBothTiers(code: number[], setup: (cpu: Cpu) => void): { interp: Cpu; jit: Cpu } {
  const a = flatCpu(code);
  a.cpu.jitThreshold = 0;
  setup(a.cpu);
  const b = flatCpu(code);
  b.cpu.jitThreshold = 2;
  setup(b.cpu);
  assert.equal(a.cpu.run(10_000_000), EXIT_HLT);
  assert.equal(b.cpu.run(10_000_000), EXIT_HLT);
  return { interp: a.cpu, jit: b.cpu };
}

test("a call/ret loop compiled as one trace retires and computes exactly as interpreted", () => {
  // mov ecx, 5000; L: call f; dec ecx; jnz L; hlt; f: add eax, 3; ret
  // 0x1000: b9 88 13 00 00 ; 0x1005: e8 06 00 00 00 ; 0x100a: 49 ; 0x100b: 75 f8 ; 0x100d: f4
  // 0x1010: 83 c0 03 ; 0x1013: c3
  const code = [0xb9, 0x88, 0x13, 0, 0, 0xe8, 0x06, 0, 0, 0, 0x49, 0x75, 0xf8, 0xf4, 0x90, 0x90, 0x83, 0xc0, 0x03, 0xc3];
  const { interp, jit } = runBothTiers(code, () => {});
  assert.equal(interp.reg32(S.REG_EAX), 15000);
  assert.equal(jit.reg32(S.REG_EAX), 15000);
  assert.equal(jit.retired, interp.retired);
  assert.ok(jit.jitCompiled > 0, "the block compiler ran");
});

test("a compiled trace leaves when RET finds another return address than the call pushed", () => {
  // f replaces its return address with 'done' once EAX reaches 30:
  // 0x1000: mov ecx, 1000      b9 e8 03 00 00
  // 0x1005: L: call f          e8 0e 00 00 00   -> 0x1018
  // 0x100a: dec ecx            49
  // 0x100b: jnz L              75 f8
  // 0x100d: hlt                f4
  // 0x100e: done: mov ebx, 7; hlt   bb 07 00 00 00 f4 (at 0x100e..0x1013)
  // 0x1018: f: add eax, 3      83 c0 03
  // 0x101b: cmp eax, 30        83 f8 1e
  // 0x101e: jne r              75 07
  // 0x1020: mov dword [esp], 0x100e   c7 04 24 0e 10 00 00
  // 0x1027: r: ret             c3
  const code = new Array(0x28).fill(0x90);
  code.splice(0, 14, 0xb9, 0xe8, 0x03, 0, 0, 0xe8, 0x0e, 0, 0, 0, 0x49, 0x75, 0xf8, 0xf4);
  code.splice(0x0e, 6, 0xbb, 0x07, 0, 0, 0, 0xf4);
  code.splice(0x18, 16, 0x83, 0xc0, 0x03, 0x83, 0xf8, 0x1e, 0x75, 0x07, 0xc7, 0x04, 0x24, 0x0e, 0x10, 0, 0, 0xc3);
  const { interp, jit } = runBothTiers(code, () => {});
  for (const cpu of [interp, jit]) {
    assert.equal(cpu.reg32(S.REG_EAX), 30);
    assert.equal(cpu.reg32(S.REG_EBX), 7);
    assert.equal(cpu.eip, 0x1014);
  }
  assert.equal(jit.retired, interp.retired);
});

test("a compiled self-loop stops at the budget and resumes with exact counts", () => {
  const code = [0xb9, 0xe8, 0x03, 0, 0, 0x01, 0xd8, 0x49, 0x75, 0xfb, 0xf4];
  const { cpu } = flatCpu(code);
  cpu.jitThreshold = 1;
  cpu.setReg32(S.REG_EBX, 1);
  let exits = 0;
  while (cpu.run(250) === EXIT_BUDGET) exits++;
  assert.ok(exits >= 10);
  assert.equal(cpu.reg32(S.REG_EAX), 1000);
  assert.equal(cpu.retired, 3002);
});

test("a store by one vCPU invalidates code another vCPU decoded from the same memory", () => {
  // CPU A: L: inc eax; jmp L   (0x1000: 40 eb fd). CPU B: mov byte [0x1000], 0x43 (inc ebx); hlt
  const ram = new Uint8Array(1 << 20);
  const memory = { u8: ram, ramBytes: ram.length, mmioRead: () => -1, mmioWrite: () => {} };
  const make = (rip: number) => {
    const cpu = new Cpu({ memory, io: { in: () => 0xff, out: () => {} } });
    cpu.s[S.CR0] = S.CR0_PE | S.CR0_ET;
    for (const seg of [S.SEG_ES, S.SEG_SS, S.SEG_DS, S.SEG_FS, S.SEG_GS]) cpu.loadSegmentRaw(seg, 0x10, 0, -1, 0xc093);
    cpu.loadSegmentRaw(S.SEG_CS, 0x08, 0, -1, 0xc09b);
    cpu.setRip(rip);
    return cpu;
  };
  ram.set([0x40, 0xeb, 0xfd], 0x1000);
  ram.set([0xc6, 0x05, 0x00, 0x10, 0x00, 0x00, 0x43, 0xf4], 0x2000);
  const a = make(0x1000);
  const b = make(0x2000);
  assert.equal(a.run(1000), EXIT_BUDGET);
  const incs = a.reg32(S.REG_EAX);
  assert.ok(incs > 100);
  assert.equal(b.run(100), EXIT_HLT);
  assert.equal(a.run(1000), EXIT_BUDGET);
  assert.equal(a.reg32(S.REG_EAX), incs, "A no longer runs the old inc eax");
  assert.ok(a.reg32(S.REG_EBX) > 100, "A runs the new inc ebx");
  a.dispose();
  b.dispose();
});
