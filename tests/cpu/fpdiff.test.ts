// Differential test of the x87, MMX and SSE..SSE4.2 units against the host CPU: generated
// cases covering every x87 form and every fp line of the opcode table run natively
// (tests/cpu/fpdiff/fpharness.c, with the x87/SSE state loaded by FXRSTOR and read back from
// the signal frame) and on the emulator; registers, flags, memory, faults and the whole
// x87/SSE state must agree. 200,000 cases over both modes, with operands drawn toward the
// edges and all rounding modes; `npm run test:fp-full` runs 5,000,000.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Mode } from "./difftest/cases.ts";
import { FpGenerator } from "./fpdiff/generator.ts";
import { formatFpClasses, runFpDifferential } from "./fpdiff/run.ts";

const SEED = 20240607;
const PER_MODE = 100_000;
const BLOCKS: [string, string[]][] = [
  ["x87 arithmetic and transcendentals", ["x87-arith", "x87-trans"]],
  ["x87 loads, stores, control, misc", ["x87-ldst", "x87-ctl", "x87-misc"]],
  ["SSE floating point and conversions", ["sse-float", "sse-cvt"]],
  ["SSE integer, moves, strings, MMX, control", ["sse-int", "sse-move", "sse-str", "sse-ctl", "mmx"]],
];

/** Cases per mode run again with every block compiled first (the JIT calls the FP closures). */
const JIT_PER_MODE = 10_000;

for (const mode of [32, 64] as Mode[]) {
  test(`fpdiff ${mode}-bit through the block compiler: ${JIT_PER_MODE} cases`, { timeout: 600_000 }, async () => {
    const s = await runFpDifferential({ mode, seed: SEED + 1, count: JIT_PER_MODE, jit: true, maxReports: 5 });
    console.log(`fpdiff ${mode}-bit jit: ${s.passed} passed, ${s.failed} failed`);
    if (s.failed > 0) assert.fail(`${s.failed} cases differ.\n${formatFpClasses(s.classes, 25)}\n\n${s.reports.join("\n\n")}`);
  });
  const gen = new FpGenerator({ mode, seed: SEED });
  const total = gen.entries.length;
  let assigned = 0;
  BLOCKS.forEach(([name, families], k) => {
    const size = gen.entries.filter((e) => families.includes(e.family)).length;
    // Proportional to the block's share of the forms; the last block takes the rest.
    const count = k === BLOCKS.length - 1 ? PER_MODE - assigned : Math.ceil((PER_MODE * size) / total);
    assigned += count;
    test(`fpdiff ${mode}-bit ${name}: ${count} cases over ${size} forms`, { timeout: 600_000 }, async () => {
      const s = await runFpDifferential({ mode, seed: SEED, count, families, maxReports: 5 });
      assert.equal(s.passed + s.failed, count);
      console.log(`fpdiff ${mode}-bit ${name}: ${s.passed} passed, ${s.failed} failed`);
      if (s.failed > 0) {
        assert.fail(
          `${s.failed} of ${count} cases differ from the host CPU.\n` +
            `Mismatch classes:\n${formatFpClasses(s.classes, 25)}\n\nFirst mismatches:\n${s.reports.join("\n\n")}`,
        );
      }
    });
  });
}
