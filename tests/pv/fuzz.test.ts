import assert from "node:assert/strict";
import { test } from "node:test";
import { pvToolchain } from "./build.ts";
import { fuzzHypercalls } from "./fuzz.ts";

const skip = pvToolchain();

for (const arch of ["i386", "x86_64"] as const) {
  test(`hypercall fuzzer (${arch}): 50,000 seeded random calls, no host exception, frame table intact`, { skip }, () => {
    const r = fuzzHypercalls(arch, 50_000, arch === "i386" ? 1 : 2);
    assert.deepEqual(r.hostErrors.slice(0, 5), []);
    assert.equal(r.invariantErrors.length, 0, r.invariantErrors.slice(0, 5).join("\n"));
    assert.ok(r.byResult.size > 5, "the calls reached many different outcomes");
  });
}
