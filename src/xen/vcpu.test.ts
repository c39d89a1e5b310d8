import assert from "node:assert/strict";
import { test } from "node:test";
import { checkNmi, reloadDataSegments } from "./entry.ts";
import { Xen } from "./hypervisor.ts";
import { RUNSTATE_blocked, RUNSTATE_offline, RUNSTATE_runnable, RUNSTATE_running } from "./vcpu.ts";

function xen(): Xen {
  return new Xen({ memoryBytes: 16 * 1024 * 1024, deterministic: true });
}

test("runstate accounting: time in each state, the current one counted up to now", () => {
  const x = xen();
  const d = x.createDomain({ guestType: "pv32", vcpus: 2 });
  const v = d.vcpus[1];
  assert.equal(v.runstate, RUNSTATE_offline);
  x.clock.advance(1000);
  v.runstate = RUNSTATE_runnable;
  x.clock.advance(300);
  v.runstate = RUNSTATE_running;
  x.clock.advance(200);
  v.runstate = RUNSTATE_blocked;
  x.clock.advance(50);
  const b = v.runstateInfo(x.now());
  assert.equal(b.length, 44); // compat layout: u64 aligned to 4
  const dv = new DataView(b.buffer);
  assert.equal(dv.getUint32(0, true), RUNSTATE_blocked);
  assert.equal(dv.getUint32(4, true), 1500); // state_entry_time
  const time = (i: number): number => dv.getUint32(12 + i * 8, true);
  assert.deepEqual([0, 1, 2, 3].map(time), [200, 300, 50, 1000]);
  const d64 = x.createDomain({ guestType: "pv64" });
  assert.equal(d64.vcpus[0].runstateInfo(x.now()).length, 48);
});

test("a pending NMI with no handler in vector 2 is dropped; one with a handler waits while masked", () => {
  const x = xen();
  const d = x.createDomain({ guestType: "pv64" });
  const v = d.vcpus[0];
  v.nmiPending = true;
  checkNmi(v);
  assert.equal(v.nmiPending, false);
  assert.equal(d.state, "paused"); // nothing crashed
  v.nmiPending = true;
  v.nmiMasked = true;
  v.trapLo[2] = 0x1000;
  checkNmi(v);
  assert.equal(v.nmiPending, true, "held while NMIs are masked");
});

test("reloading data segments with nothing wrong is a no-op; a bad one without a failsafe callback crashes", () => {
  const x = xen();
  const d = x.createDomain({ guestType: "pv32" });
  const v = d.vcpus[0];
  v.reloadSegments = true;
  reloadDataSegments(v);
  assert.equal(v.reloadSegments, false);
  assert.equal(d.crashReason, undefined);
  // GS = 0x0f: an LDT selector, and there is no LDT.
  v.cpu.loadSegmentRaw(5, 0x0f, 0, 0xffffffff, 0xc0f3);
  reloadDataSegments(v);
  assert.match(d.crashReason ?? "", /^failsafe: gs cannot be reloaded and there is no failsafe callback/);
});
