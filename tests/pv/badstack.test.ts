// A trap bounce that lands on an unmapped kernel stack crashes that domain, with the reason
// logged (entry.ts N1), while the host and another running domain go on and finish normally.
// guests/pv/badstack.c faults from user mode with stack_switch's kernel stack unmapped, or from
// kernel mode with its stack pointer on an unmapped page; guests/pv/hypercalls.c (a checking
// guest) runs next to it on the same CPU.

import assert from "node:assert/strict";
import { test } from "node:test";
import { Toolstack } from "../../src/dom0/toolstack.ts";
import { Xen } from "../../src/xen/hypervisor.ts";
import { SHUTDOWN_crash, SHUTDOWN_poweroff } from "../../src/xen/public.ts";
import { loadKernelSync } from "./boot.ts";
import { buildPvGuest, type PvArch, pvToolchain } from "./build.ts";

const skip = pvToolchain();

for (const arch of ["i386", "x86_64"] as PvArch[]) {
  for (const where of ["user", "kernel"]) {
    test(`badstack (${arch}, fault in ${where} mode): the domain is crashed with its reason, a neighbour finishes`, {
      skip,
    }, async () => {
      const lines: string[] = [];
      let neighbourAtCrash = "";
      const log = (l: string) => {
        lines.push(l);
        if (/\(badstack\) crashed/.test(l))
          neighbourAtCrash = `${other.domain.state}, ${other.domain.consoleOut.join("").split("\n").length - 1} lines out`;
      };
      const xen = new Xen({ memoryBytes: 64 * 1024 * 1024, deterministic: true, log });
      const ts = new Toolstack(xen);
      const free = xen.allocator.freeFrames;
      const other = ts.create({
        name: "neighbour",
        kernel: loadKernelSync(buildPvGuest("hypercalls", arch)),
        memoryMiB: 8,
      });
      const bad = ts.create({
        name: "badstack",
        kernel: loadKernelSync(buildPvGuest("badstack", arch)),
        memoryMiB: 4,
        cmdline: where === "kernel" ? "where=kernel" : "",
      });
      const stackAt = (arch === "i386" ? 0xc0000000 : 0x40000000) + 0x1800000;
      for (let round = 0; round < 10 && ts.live.some((m) => m.domain.state === "running"); round++) {
        await xen.scheduler.run({ until: () => ts.hasPending, maxVirtualNs: 2e9, timeoutMs: 15_000 });
        ts.settle(); // on_crash / on_poweroff: destroy
      }
      const badOut = bad.domain.consoleOut.join("");
      console.log(`badstack (${arch}, ${where}): ${badOut.trim()} -> ${bad.domain.crashReason}`);
      assert.match(badOut, new RegExp(`^ud2 in ${where} mode`));
      assert.doesNotMatch(badOut, /not reached/);
      assert.equal(bad.domain.shutdownReason, SHUTDOWN_crash);
      // The kernel stack is where the bounce frame went: stack_switch's (user) or the current one.
      // 64-bit frames start 16-byte aligned below it; both are reported as the stack top.
      assert.match(
        bad.domain.crashReason ?? "",
        new RegExp(
          `^vector 6: cannot write the bounce frame on the guest kernel stack at 0x${stackAt.toString(16)}$`,
        ),
      );
      assert.match(
        lines.join("\n"),
        /domain \d+ \(badstack\) crashed: vector 6: cannot write the bounce frame/,
      );
      // The neighbour was running (midway) when the crash came, and ran to the end, unharmed.
      console.log(`neighbour at the crash: ${neighbourAtCrash}`);
      assert.match(neighbourAtCrash, /^running, ([1-9]|[1-3]\d|4[0-3]) lines out$/);
      const out = other.domain.consoleOut.join("");
      assert.deepEqual(
        out.split("\n").filter((l) => l.startsWith("not ok")),
        [],
        out,
      );
      assert.match(out, /checks: [1-9]\d* passed, 0 failed\n$/);
      assert.equal(other.domain.shutdownReason, SHUTDOWN_poweroff);
      // Both were destroyed by their actions and every frame came back to the host.
      assert.equal(xen.domains.size, 0);
      assert.equal(xen.allocator.freeFrames, free);
    });
  }
}
