// The toolstack (src/dom0/toolstack.ts): a domain that fails to build leaves nothing behind
// (T1), and each on_* action does what xl does with the domain that shut down (T2, T3).

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { type DomainEnd, Toolstack } from "../../src/dom0/toolstack.ts";
import { Xen } from "../../src/xen/hypervisor.ts";
import { loadKernelSync } from "./boot.ts";
import { buildPvGuest, pvToolchain } from "./build.ts";

const skip = pvToolchain();

async function runAll(xen: Xen, ts: Toolstack): Promise<void> {
  for (let round = 0; round < 20; round++) {
    await xen.scheduler.run({ until: () => ts.hasPending, maxVirtualNs: 5e9 });
    ts.settle();
    if (!ts.live.some((m) => m.domain.state === "running")) return;
  }
}

test("toolstack: a domain that does not fit is refused and leaves no frame, domain or xenstore node (T1)", { skip }, () => {
  const xen = new Xen({ memoryBytes: 32 * 1024 * 1024, deterministic: true });
  const ts = new Toolstack(xen);
  const free = xen.allocator.freeFrames;
  const kernel = loadKernelSync(buildPvGuest("hello", "i386"));
  assert.throws(
    () => ts.create({ name: "huge", kernel, memoryMiB: 1, module: new Uint8Array(4 * 1024 * 1024) }),
    /hello\.elf: the image and the initial layout need \d+ pages .* but the domain has 256/,
  );
  assert.equal(xen.domains.size, 0);
  assert.equal(xen.allocator.freeFrames, free);
  assert.deepEqual(ts.store.directory("/local/domain") ?? [], []);
  assert.throws(() => ts.create({ name: "many", kernel, memoryMiB: 8, vcpus: 33 }), /33 vCPUs \(a PV domain has 1\.\.32\)/);
  // Memory the machine does not have: the allocator's refusal, nothing kept.
  assert.throws(() => ts.create({ name: "big", kernel, memoryMiB: 64 }), /out of memory|do not fit|frames/);
  assert.equal(xen.domains.size, 0);
  assert.equal(xen.allocator.freeFrames, free);
  // And the machine still builds and runs a domain that fits.
  const ok = ts.create({ name: "fits", kernel, memoryMiB: 8 });
  assert.equal(ok.domain.state, "running");
});

test("toolstack: on_poweroff actions destroy, preserve, restart and rename-restart (T2)", { skip }, async () => {
  const kernel = loadKernelSync(buildPvGuest("hello", "x86_64"));
  const outcome = async (action: "destroy" | "preserve" | "restart" | "rename-restart") => {
    const xen = new Xen({ memoryBytes: 64 * 1024 * 1024, deterministic: true });
    const free = xen.allocator.freeFrames;
    const ts = new Toolstack(xen, { maxRestarts: 2 });
    const first = ts.create({ name: "h", kernel, memoryMiB: 8, onPoweroff: action });
    await runAll(xen, ts);
    return { xen, ts, free, first };
  };

  const destroyed = await outcome("destroy");
  assert.equal(destroyed.first.domain.state, "dead");
  assert.equal(destroyed.xen.domains.size, 0);
  assert.equal(destroyed.xen.allocator.freeFrames, destroyed.free, "every frame came back");
  assert.deepEqual(destroyed.ts.store.directory("/local/domain"), []);
  const end: DomainEnd = destroyed.ts.ended[0];
  assert.deepEqual(
    { reason: end.reasonName, action: end.action, name: end.name },
    { reason: "poweroff", action: "destroy", name: "h" },
  );

  const preserved = await outcome("preserve");
  assert.equal(preserved.first.domain.state, "shutdown");
  assert.equal(preserved.xen.domains.size, 1, "kept for inspection");
  assert.equal(preserved.first.pvConsole.domain, preserved.first.domain);

  const restarted = await outcome("restart");
  assert.equal(restarted.ts.ended.length, 3, "the first run and two restarts (maxRestarts 2)");
  assert.deepEqual(
    restarted.ts.ended.map((e) => e.domid),
    [1, 2, 3],
  );
  assert.equal(restarted.xen.domains.size, 0);
  assert.equal(restarted.xen.allocator.freeFrames, restarted.free);

  const renamed = await outcome("rename-restart");
  assert.equal(renamed.ts.ended.length, 3);
  assert.equal(renamed.xen.domains.size, 3, "every incarnation kept, shut down");
  for (const d of renamed.xen.domains.values()) assert.equal(d.state, "shutdown");
});

test("toolstack: on_crash=coredump-destroy writes the memory in PFN order, then destroys", { skip }, async () => {
  const dumpDir = mkdtempSync(join(tmpdir(), "tsxen-core-"));
  const xen = new Xen({ memoryBytes: 64 * 1024 * 1024, deterministic: true });
  const lines: string[] = [];
  const ts = new Toolstack(xen, { dumpDir, log: (l) => lines.push(l) });
  const kernel = loadKernelSync(buildPvGuest("nohandler", "i386"));
  const m = ts.create({ name: "dumped", kernel, memoryMiB: 8, onCrash: "coredump-destroy" });
  const startInfoPfn = (m.domain.vcpus[0].cpu.reg32(6) - 0xc0000000) >>> 12;
  await runAll(xen, ts);
  assert.equal(ts.ended[0].reasonName, "crash");
  assert.ok(ts.ended[0].crashReason);
  assert.equal(m.domain.state, "dead");
  const core = readFileSync(join(dumpDir, "dumped.core"));
  assert.equal(core.length, 8 * 1024 * 1024);
  // start_info (its PFN was in RSI at entry) begins with the magic "xen-3.0-x86_32p".
  const magic = core.subarray(startInfoPfn * 4096, startInfoPfn * 4096 + 15).toString("latin1");
  assert.equal(magic, "xen-3.0-x86_32p");
  assert.match(lines.join("\n"), /memory written to .*dumped\.core/);
});
