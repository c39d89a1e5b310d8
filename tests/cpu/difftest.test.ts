// Differential test of the processor against the host CPU: generated cases covering every
// user-testable opcode form of src/x86/opcodes.ts run natively (tests/cpu/native/harness.c)
// and on the emulator; every register, RIP, the defined flags, the touched memory and the
// faults must agree. 200,000 cases over both modes; `npm run test:cpu-full` runs 5,000,000.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Mode } from "./difftest/cases.ts";
import { CaseGenerator, entryFamily } from "./difftest/generator.ts";
import { formatClasses, loadEmulator, runDifferential } from "./difftest/run.ts";

const SEED = 20240601;
const PER_MODE = 100_000;
const FAMILIES = ["alu", "shift", "muldiv", "string", "branch", "stack", "bits", "misc"];

for (const mode of [32, 64] as Mode[]) {
  const gen = new CaseGenerator({ mode, seed: SEED });
  const total = gen.entries.length;
  for (const family of FAMILIES) {
    const size = gen.entries.filter((e) => entryFamily(e) === family).length;
    if (size === 0) continue;
    // Cases proportional to the family's share of the entries (so every entry gets about as
    // many), rounded up: the blocks add up to at least PER_MODE.
    const count = Math.ceil((PER_MODE * size) / total);
    test(`difftest ${mode}-bit ${family}: ${count} cases over ${size} opcode forms`, { timeout: 300_000 }, async () => {
      const emu = await loadEmulator(mode);
      if (typeof emu === "string") assert.fail(`the emulator could not be loaded: ${emu}`);
      const s = await runDifferential(emu, { mode, seed: SEED, count, family, maxReports: 5 });
      assert.equal(s.passed + s.failed + s.hostMemory, count);
      // Reaching the harness's own memory is rare (about one case in a million): many more
      // would mean the emulator computes addresses that the host does not.
      assert.ok(s.hostMemory <= Math.ceil(count / 10_000), `${s.hostMemory} cases not compared`);
      if (s.failed > 0) {
        assert.fail(
          `${s.failed} of ${count} cases differ from the host CPU.\n` +
            `Mismatch classes:\n${formatClasses(s.classes, 25)}\n\nFirst mismatches:\n${s.reports.join("\n\n")}`,
        );
      }
    });
  }
}
