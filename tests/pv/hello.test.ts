import assert from "node:assert/strict";
import { test } from "node:test";
import { SHUTDOWN_poweroff } from "../../src/xen/public.ts";
import { bootPv } from "./boot.ts";
import { buildPvGuest, type PvArch, pvToolchain } from "./build.ts";

const skip = pvToolchain();

for (const arch of ["i386", "x86_64"] as PvArch[]) {
  test(`hello (${arch}): prints through console_io and powers off`, { skip }, async () => {
    const image = buildPvGuest("hello", arch);
    const { domain, console, xen } = await bootPv(image);
    const magic = arch === "i386" ? "xen-3.0-x86_32p" : "xen-3.0-x86_64";
    assert.equal(domain.crashReason, undefined, `${domain.crashReason}\n${xen.logLines.join("\n")}\n${console()}`);
    assert.equal(console(), `Hello from a PV guest (${magic}), 2048 pages\n`);
    assert.equal(domain.state, "shutdown");
    assert.equal(domain.shutdownReason, SHUTDOWN_poweroff);
  });
}
