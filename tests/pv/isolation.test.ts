// Isolation between two domains, proven by one test guest (guests/pv/isolation.c) in two roles.
// B is built and run first: it offers A an event channel port (alloc_unbound), offers others to
// itself and to dom0, grants its secret page to a third domain, and waits. The test reads B's
// facts from the hypervisor (its ports, its secret frame, top page table, shared_info and grant
// frame) and builds A with them on its command line (start_info->cmd_line). A then tries to map,
// bind, send to, and grant-map/copy B's things: everything is refused, except binding the port B
// offered to A, over which one event crosses. Both widths.

import assert from "node:assert/strict";
import { test } from "node:test";
import { type ManagedDomain, Toolstack } from "../../src/dom0/toolstack.ts";
import { ECS_UNBOUND } from "../../src/xen/events.ts";
import { Xen } from "../../src/xen/hypervisor.ts";
import { SHUTDOWN_poweroff } from "../../src/xen/public.ts";
import { loadKernelSync } from "./boot.ts";
import { buildPvGuest, type PvArch, pvToolchain } from "./build.ts";

const skip = pvToolchain();
const out = (m: ManagedDomain): string => m.domain.consoleOut.join("");

/** The frame of B whose first bytes are "B-SECRETB-SECRET" (its secret page). */
function findSecret(xen: Xen, domid: number): number {
  const marker = new TextEncoder().encode("B-SECRETB-SECRET");
  const u8 = xen.memory.u8;
  for (let mfn = 0; mfn < xen.table.frames; mfn++) {
    if (xen.table.owner[mfn] !== domid) continue;
    if (marker.every((c, i) => u8[mfn * 4096 + i] === c)) return mfn;
  }
  return -1;
}

for (const arch of ["i386", "x86_64"] as PvArch[]) {
  test(`isolation (${arch}): A cannot map, bind, send to or grant-read B, except the port B offered it`, {
    skip,
  }, async () => {
    const xen = new Xen({ memoryBytes: 64 * 1024 * 1024, deterministic: true });
    const ts = new Toolstack(xen);
    const kernel = loadKernelSync(buildPvGuest("isolation", arch));
    // Domain ids are handed out in order (H2): B is 1, A will be 2.
    const aId = 2;
    const b = ts.create({ name: "B", kernel, memoryMiB: 4, cmdline: `role=b peer=${aId}` });
    await xen.scheduler.run({
      until: () => out(b).includes("B ready"),
      maxVirtualNs: 100e6,
      timeoutMs: 10_000,
    });
    assert.match(out(b), /B ready/, `${out(b)}\n${xen.logLines.join("\n")}`);
    assert.ok(b.domain.vcpus[0].blocked, "B waits for A's event");

    // B's facts, from the hypervisor.
    const ev = b.domain.evtchn;
    const unbound = (remote: number) => {
      for (let p = 1; p < ev.max; p++)
        if (ev.state[p] === ECS_UNBOUND && ev.remoteDom[p] === remote) return p;
      return -1;
    };
    const facts = {
      ok: unbound(aId),
      self: unbound(b.domain.id),
      dom0: unbound(0),
      con: b.pvConsole.port,
      secret: findSecret(xen, b.domain.id),
      top: b.domain.vcpus[0].guestTable,
      shinfo: b.domain.sharedInfoMfn,
      grant: b.domain.grantFrames[0],
    };
    for (const [k, v] of Object.entries(facts)) assert.ok(v > 0, `B's ${k}: ${v}`);
    assert.match(
      out(b),
      new RegExp(
        `ok=${facts.ok} self=${facts.self} dom0=${facts.dom0} con=${facts.con} grant=${facts.grant}\\n`,
      ),
    );
    const refs = (mfn: number) => [xen.table.count[mfn], xen.table.typeCount[mfn]];
    const before = [facts.secret, facts.top, facts.shinfo, facts.grant].map(refs);

    const cmdline = `role=a peer=${b.domain.id} ${Object.entries(facts)
      .map(([k, v]) => `${k}=${v}`)
      .join(" ")}`;
    const a = ts.create({ name: "A", kernel, memoryMiB: 4, cmdline });
    assert.equal(a.domain.id, aId);
    await xen.scheduler.run({
      until: () => a.domain.state !== "running" && b.domain.state !== "running",
      maxVirtualNs: 500e6,
      timeoutMs: 15_000,
    });
    const textA = out(a);
    const textB = out(b);
    console.log(
      `A (${arch}), cmdline "${cmdline}":\n${textA
        .split("\n")
        .filter((l) => !/^ok \d/.test(l))
        .join("\n")}`,
    );
    console.log(`B (${arch}): ${textB}`);
    const failed = textA.split("\n").filter((l) => l.startsWith("not ok"));
    assert.deepEqual(failed, [], textA);
    assert.match(textA, /checks: [1-9]\d* passed, 0 failed\n$/);
    assert.equal(
      a.domain.shutdownReason,
      SHUTDOWN_poweroff,
      `${a.domain.crashReason}\n${xen.logLines.join("\n")}`,
    );
    // The event crossed, on that port only, and B's secret is as it was.
    assert.match(textB, /B: event on the port offered to A: 1; events on other ports: 0; secret intact\n/);
    assert.equal(b.domain.shutdownReason, SHUTDOWN_poweroff);
    // A took no reference on any of B's frames (nothing of B was ever mapped by A).
    assert.deepEqual([facts.secret, facts.top, facts.shinfo, facts.grant].map(refs), before);
  });
}
