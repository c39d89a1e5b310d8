import assert from "node:assert/strict";
import { test } from "node:test";
import { DOMID_XEN } from "../machine/frames.ts";
import { shutdownReasonName } from "./domain.ts";
import { Xen } from "./hypervisor.ts";
import { SHUTDOWN_crash, SHUTDOWN_poweroff, SHUTDOWN_reboot, SHUTDOWN_suspend, SHUTDOWN_watchdog } from "./public.ts";
import * as S from "../x86/state.ts";

function xen(): Xen {
  return new Xen({ memoryBytes: 16 * 1024 * 1024, deterministic: true });
}

test("a domain is created paused, unpauses, pauses nested, shuts down and is destroyed", () => {
  const x = xen();
  const d = x.createDomain({ guestType: "pv64", vcpus: 2, name: "t" });
  assert.equal(d.state, "paused");
  assert.equal(d.vcpus.length, 2);
  d.unpause();
  assert.equal(d.state, "running");
  d.pause();
  d.pause();
  d.unpause();
  assert.equal(d.state, "paused");
  d.unpause();
  assert.equal(d.state, "running");
  d.shutdown(SHUTDOWN_reboot);
  assert.equal(d.state, "shutdown");
  assert.equal(d.shutdownReason, SHUTDOWN_reboot);
  d.destroy();
  assert.equal(d.state, "dead");
  assert.equal(x.domains.size, 0);
});

test("shutdown reasons: the five names, and unknown values kept as numbers", () => {
  assert.deepEqual(
    [SHUTDOWN_poweroff, SHUTDOWN_reboot, SHUTDOWN_suspend, SHUTDOWN_crash, SHUTDOWN_watchdog].map(shutdownReasonName),
    ["poweroff", "reboot", "suspend", "crash", "watchdog"],
  );
  const x = xen();
  const d = x.createDomain({ guestType: "pv32" });
  d.unpause();
  d.shutdown(0xc1);
  assert.equal(d.shutdownReason, 0xc1);
  assert.equal(shutdownReasonName(0xc1), "unknown(193)");
});

test("a crash carries its reason and is logged", () => {
  const lines: string[] = [];
  const x = new Xen({ memoryBytes: 16 * 1024 * 1024, deterministic: true, log: (l) => lines.push(l) });
  const d = x.createDomain({ guestType: "pv32", name: "bad" });
  d.unpause();
  d.crash("Unhandled: vec 14");
  assert.equal(d.shutdownReason, SHUTDOWN_crash);
  assert.equal(d.crashReason, "Unhandled: vec 14");
  assert.match(lines.join("\n"), /bad\) crashed: Unhandled: vec 14/);
});

test("each vCPU's state frame is a hypervisor-owned frame of machine memory with PV exit controls", () => {
  const x = xen();
  const d = x.createDomain({ guestType: "pv64" });
  const v = d.vcpus[0];
  assert.equal(x.table.owner[v.stateMfn], DOMID_XEN);
  assert.equal(v.s.buffer, x.memory.wasm.buffer);
  assert.equal(v.s.byteOffset, v.stateMfn * 4096);
  v.cpu.setRip(0x1234, 0);
  assert.equal(x.memory.readU32(v.stateMfn * 4096 + S.RIP_LO * 4), 0x1234);
  assert.equal(v.cpu.controls.exceptionBitmap, -1);
  assert.equal(v.cpu.controls.interceptSoftwareInt, true);
  assert.equal(v.cpu.controls.interceptSyscall, true);
});

test("destroying domains returns every frame to the allocator", () => {
  const x = xen();
  const free = x.allocator.freeFrames;
  for (let i = 0; i < 5; i++) {
    const d = x.createDomain({ guestType: i % 2 ? "pv32" : "pv64", vcpus: 3 });
    const mfns = x.allocator.allocate(d.id, 10);
    for (let k = 0; k < mfns.length; k++) x.table.m2p[mfns[k]] = k;
    d.destroy();
  }
  assert.equal(x.allocator.freeFrames, free);
  for (let m = 0; m < x.table.frames; m++) assert.equal(x.table.check(m), undefined);
});
