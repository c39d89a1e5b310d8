import assert from "node:assert/strict";
import { test } from "node:test";
import { DebugCon } from "./devices/debugcon/debugcon.ts";
import { Uart16550 } from "./devices/uart16550/uart16550.ts";
import { IoBus } from "./iobus.ts";

test("ports route to their device with the offset from its base", () => {
  const bus = new IoBus();
  const out: number[] = [];
  bus.register(0x2f8, new Uart16550({ output: (b) => out.push(b) }));
  bus.out(0x2f8 + 7, 1, 0x42);
  assert.equal(bus.in(0x2ff, 1), 0x42);
  bus.out(0x2f8, 1, 0x21);
  assert.deepEqual(out, [0x21]);
  assert.equal(bus.deviceAt(0x2fc), "uart16550");
  assert.equal(bus.deviceAt(0x300), undefined);
});

test("unclaimed ports read all ones for the access size and ignore writes", () => {
  const bus = new IoBus();
  assert.equal(bus.in(0x80, 1), 0xff);
  assert.equal(bus.in(0x80, 2), 0xffff);
  assert.equal(bus.in(0x80, 4), 0xffffffff);
  bus.out(0x80, 4, 0x12345678);
});

test("values are masked to the access size and ports wrap at 64 Ki", () => {
  const bus = new IoBus();
  const out: number[] = [];
  bus.register(0xe9, new DebugCon((b) => out.push(b)));
  bus.out(0x100e9, 1, 0x141);
  assert.deepEqual(out, [0x41]);
});

test("overlapping and out-of-range registrations are refused with the culprit named", () => {
  const bus = new IoBus();
  bus.register(0x3f8, new Uart16550({ output: () => {} }));
  assert.throws(
    () => bus.register(0x3ff, new DebugCon(() => {})),
    /debugcon: port 0x3ff is already claimed by uart16550/,
  );
  assert.throws(() => bus.register(0xfffc, new Uart16550({ output: () => {} })), /outside/);
});
