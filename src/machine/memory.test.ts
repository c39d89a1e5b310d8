import assert from "node:assert/strict";
import { test } from "node:test";
import { MachineMemory, parseMemorySize } from "./memory.ts";

test("machine memory is one shared wasm memory with views over the same bytes", () => {
  const mem = new MachineMemory(2 * 1024 * 1024 + 4096);
  assert.equal(mem.ramBytes, 2 * 1024 * 1024 + 4096);
  assert.equal(mem.frames, 513);
  assert.ok(mem.wasm.buffer instanceof SharedArrayBuffer);
  mem.writeU32(0x1000, 0xdeadbeef);
  assert.equal(mem.i32[0x400], 0xdeadbeef | 0);
  assert.equal(mem.u16[0x800], 0xbeef);
  assert.equal(mem.readU32(0x1000), 0xdeadbeef);
  assert.deepEqual([...mem.read(0x1000, 2)], [0xef, 0xbe]);
});

test("accesses outside RAM are refused by the host helpers and float high on the bus", () => {
  const mem = new MachineMemory(2 * 1024 * 1024);
  assert.throws(() => mem.write(mem.ramBytes - 1, new Uint8Array(2)), /outside RAM/);
  assert.equal(mem.contains(mem.ramBytes - 4, 4), true);
  assert.equal(mem.mmioRead(mem.ramBytes, 4), 0xffffffff);
  assert.equal(mem.mmioRead(mem.ramBytes, 1), 0xff);
});

test("sizes must be whole frames within the supported range", () => {
  assert.throws(() => new MachineMemory(3 * 1024 * 1024 + 1), /4 KiB/);
  assert.throws(() => new MachineMemory(1024 * 1024), /outside/);
});

test("memory sizes parse with binary suffixes and bad ones name the problem", () => {
  assert.equal(parseMemorySize("128M"), 128 * 1024 * 1024);
  assert.equal(parseMemorySize("4096k"), 4 * 1024 * 1024);
  assert.equal(parseMemorySize("1G"), 1024 ** 3);
  assert.equal(parseMemorySize("2097152"), 2 * 1024 * 1024);
  assert.throws(() => parseMemorySize("lots"), /memory size "lots" is not a number/);
  assert.throws(() => parseMemorySize("1M"), /outside 2M..3G/);
  assert.throws(() => parseMemorySize("8G"), /outside/);
  assert.throws(() => parseMemorySize("2049K"), /multiple of 4 KiB/);
});
