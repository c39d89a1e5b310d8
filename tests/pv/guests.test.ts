// Runs every checking PV test guest (guests/pv/*.c that report "checks: N passed, 0 failed")
// in both 32-bit PAE and 64-bit, and the guests that must be crashed.

import assert from "node:assert/strict";
import { test } from "node:test";
import { SHUTDOWN_crash, SHUTDOWN_poweroff } from "../../src/xen/public.ts";
import { bootPv } from "./boot.ts";
import { buildPvGuest, type PvArch, pvToolchain } from "./build.ts";

const skip = pvToolchain();
const ARCHES: PvArch[] = ["i386", "x86_64"];
/** Boot options some guests need. */
// grants: each test boots a fresh hypervisor, whose first domain is 1.
const OPTIONS: Record<string, { vcpus?: number; cmdline?: string }> = { smp: { vcpus: 2 }, grants: { cmdline: "domid=1" } };
const CHECKING = (process.env.PV_GUESTS ?? "hypercalls,traps,events,mmu,usermode,callbacks,ports,memory,smp,grants").split(",");

for (const name of CHECKING) {
  for (const arch of ARCHES) {
    test(`${name} (${arch})`, { skip }, async () => {
      const image = buildPvGuest(name, arch);
      const { domain, console, xen } = await bootPv(image, OPTIONS[name]);
      const out = console();
      const failed = out.split("\n").filter((l) => l.startsWith("not ok"));
      assert.deepEqual(failed, [], out);
      assert.equal(domain.crashReason, undefined, `${domain.crashReason}\n${xen.logLines.join("\n")}\n${out}`);
      assert.match(out, /checks: [1-9]\d* passed, 0 failed\n$/);
      assert.equal(domain.shutdownReason, SHUTDOWN_poweroff);
    });
  }
}

for (const arch of ARCHES) {
  test(`nohandler (${arch}): a fault with no trap table crashes the domain, the reason logged`, { skip }, async () => {
    const image = buildPvGuest("nohandler", arch);
    const lines: string[] = [];
    const { domain, console } = await bootPv(image, { log: (l) => lines.push(l) });
    assert.equal(console(), "about to fault\n");
    assert.equal(domain.shutdownReason, SHUTDOWN_crash);
    assert.match(domain.crashReason ?? "", /^Unhandled: vec 14 error 0x2 at rip 0x[0-9a-f]+ cr2 0x0/);
    assert.match(lines.join("\n"), /crashed: Unhandled: vec 14/);
  });
}

for (const arch of ARCHES) {
  test(`nofailsafe (${arch}): a data selector that cannot be reloaded with no failsafe callback crashes the domain`, { skip }, async () => {
    const image = buildPvGuest("nofailsafe", arch);
    const lines: string[] = [];
    const { domain, console } = await bootPv(image, { log: (l) => lines.push(l) });
    assert.equal(console(), "about to break FS\n");
    assert.equal(domain.shutdownReason, SHUTDOWN_crash);
    assert.match(domain.crashReason ?? "", /^failsafe: fs cannot be reloaded and there is no failsafe callback/);
    assert.match(lines.join("\n"), /crashed: failsafe: fs cannot be reloaded/);
  });
}

for (const arch of ARCHES) {
  test(`grantunmap (${arch}): removing a grant mapping by a page-table write crashes the domain`, { skip }, async () => {
    const image = buildPvGuest("grantunmap", arch);
    const { domain, console } = await bootPv(image, { cmdline: "domid=1" });
    assert.equal(console(), "mapped: 0\n");
    assert.equal(domain.shutdownReason, SHUTDOWN_crash);
    assert.equal(domain.crashReason, "Attempt to implicitly unmap a granted PTE");
  });
}
