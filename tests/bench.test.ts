// The benchmark kernels as correctness tests: at a small scale, every workload must finish,
// and r/m/c must retire exactly iterations x instructions-per-iteration between the markers
// (runWorkload throws otherwise); s must print the CRC computed on the host.

import assert from "node:assert/strict";
import { test } from "node:test";
import { runWorkload, workload } from "../bench/run.ts";

const SCALE = 0.001; // r: 30,000 iterations; m: 15,000; c: 18,000; s: 1 round

for (const name of ["r32", "m32", "c32", "s32", "r64", "m64", "c64", "s64"]) {
  test(`benchmark ${name} runs with an exact instruction count`, { timeout: 300_000 }, async () => {
    const r = await runWorkload(workload(name), SCALE);
    assert.ok(r.instructions > 0 && r.seconds > 0);
  });
}
