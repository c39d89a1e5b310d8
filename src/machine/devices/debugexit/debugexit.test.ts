import assert from "node:assert/strict";
import { test } from "node:test";
import { DebugExit } from "./debugexit.ts";

test("the first write records the value and requests a stop once", () => {
  let stops = 0;
  const dev = new DebugExit(() => stops++);
  assert.equal(dev.exitValue, null);
  dev.portWrite(0, 4, 0xdeadbeef);
  dev.portWrite(0, 1, 3);
  assert.equal(dev.exitValue, 0xdeadbeef);
  assert.equal(stops, 1);
  assert.deepEqual(dev.save(), { exitValue: 0xdeadbeef });
  dev.reset();
  assert.equal(dev.exitValue, null);
  dev.restore({ exitValue: 5 });
  assert.equal(dev.exitValue, 5);
});

test("process status is (V << 1) | 1 in 8 bits, as QEMU's isa-debug-exit gives", () => {
  assert.equal(DebugExit.processStatus(0), 1);
  assert.equal(DebugExit.processStatus(1), 3);
  assert.equal(DebugExit.processStatus(0x10), 0x21);
  assert.equal(DebugExit.processStatus(0x80), 1);
  assert.equal(DebugExit.processStatus(0xffffffff), 0xff);
});

test("reads float high", () => {
  const dev = new DebugExit(() => {});
  assert.equal(dev.portRead(0, 1), 0xff);
  assert.equal(dev.portRead(0, 2), 0xffff);
});
