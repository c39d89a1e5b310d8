// System tests of the processor's system half (src/x86/system.ts): freestanding kernels from
// guests/x86/, built with gcc at test time, run on the bare machine (`tsxen machine`). Each
// kernel prints "ok <check>" or "FAIL <check>: ..." per check and "done <passed>/<total>",
// and exits with code 0 (host status 1) only when every check passed. The expected values
// inside the kernels come from the Intel SDM, not from the emulator.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { buildGuest, type GuestArch, REPO_ROOT } from "../framework/build-guest.ts";

const TSXEN = join(REPO_ROOT, "bin/tsxen.mjs");

interface Kernel {
  name: string;
  arch: GuestArch;
  /** The number of checks the kernel must report (guards against a kernel that stops early). */
  checks: number;
}

const KERNELS: Kernel[] = [
  { name: "protect32", arch: "i386", checks: 64 },
  { name: "paging32", arch: "i386", checks: 35 },
  { name: "long64", arch: "x86_64", checks: 51 },
  { name: "real32", arch: "i386", checks: 12 },
  { name: "tasks32", arch: "i386", checks: 12 },
];

function sources(k: Kernel): string[] {
  const harness = k.arch === "i386" ? "guests/x86/harness32.S" : "guests/x86/harness64.S";
  return [`guests/x86/${k.name}.c`, "guests/x86/harness.c", harness];
}

for (const k of KERNELS) {
  test(`${k.name} (${k.arch}): every check passes`, () => {
    const kernel = buildGuest({ name: k.name, arch: k.arch, sources: sources(k) });
    const r = spawnSync(process.execPath, [TSXEN, "machine", "--kernel", kernel, "--memory", "64M", "--timeout", "60"], {
      encoding: "latin1",
      timeout: 120_000,
    });
    const out = r.stdout.replace(/\r/g, "");
    const failed = out.split("\n").filter((l) => l.startsWith("FAIL") || l.startsWith("unexpected"));
    assert.deepEqual(failed, [], `${k.name} output:\n${out}\n${r.stderr}`);
    assert.match(out, new RegExp(`^done ${k.checks}/${k.checks}$`, "m"), `${k.name} output:\n${out}\n${r.stderr}`);
    assert.equal(r.status, 1, `exit status (stderr: ${r.stderr})`);
  });
}
