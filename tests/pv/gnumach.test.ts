// System test (issue 3): the Debian GNU Mach 1.8 Xen images, i386 (PAE) and amd64, in 32 MiB
// PV domains with the PV console backend. Checks the console transcript as far as Mach gets
// today (banner, Xen magic, memory map, vm_page zones, then, with the xenstore ring server
// answering, the missing hd/eth devices and the "No bootstrap code loaded" panic).

import assert from "node:assert/strict";
import { test } from "node:test";
import { fetchGuest } from "../framework/guests.ts";
import { bootPv } from "./boot.ts";

for (const [arch, magic, zone] of [
  ["i386", "xen-3.0-x86_32p", "DIRECTMAP"],
  ["amd64", "xen-3.0-x86_64", "DMA32"],
] as const) {
  // Fetched on first use; with TSXEN_REQUIRE_GUESTS=1 (CI) a missing image is an error, not a skip.
  const path = fetchGuest(`gnumach-${arch}`);
  test(`GNU Mach ${arch}: banner, memory map, xenstore, the "No bootstrap code loaded" panic`, {
    skip: !path && "image not fetched (scripts/fetch-guests.sh)",
    timeout: 120_000,
  }, async (t) => {
    const b = await bootPv(path!, {
      memoryMiB: 32,
      emulateL2Writes: true,
      maxVirtualNs: 30e6,
      timeoutMs: 60_000,
    });
    const out = b.pvConsole.text();
    // The transcript goes into the test report (TAP diagnostics), one line each.
    for (const line of out.split(/\r?\n\r?/)) if (line !== "") t.diagnostic(`${arch} console: ${line}`);
    const lines = out.split(/\r?\n\r?/); // Mach ends lines with "\n\r"
    assert.equal(lines[0], "GNU Mach 1.8+git20221224-xen-486", out);
    assert.equal(lines[1], `Running on ${magic}.`, out);
    assert.ok(out.includes("biosmem: 000000000000000000:000000000002000000, available"), out);
    assert.ok(out.includes("vm_page: DMA: pages: 4080 (15M)"), out);
    assert.ok(out.includes(`vm_page: ${zone}: pages: 4096 (16M)`), out);
    // The xenstore probes (device/vbd, device/vif) answered ENOENT, then the expected panic.
    assert.ok(out.includes("hd: No block device (ENOENT). Hoping you don't need any"), out);
    assert.ok(out.includes("eth: No net device (ENOENT). Hoping you don't need any"), out);
    assert.ok(
      out.includes("panic ../kern/bootstrap.c:181: bootstrap_create: No bootstrap code loaded with the kernel!"),
      out,
    );
    assert.ok(b.xenstore.log.length > 0);
    assert.equal(b.domain.state, "shutdown");
    b.domain.destroy();
  });
}
