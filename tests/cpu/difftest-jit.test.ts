// Differential test of the block compiler (src/x86/jit.ts) against the host CPU: the same
// 200,000 cases as difftest.test.ts, with every block compiled before its first execution, so
// each inline template of the compiler is checked against the host like the interpreter is.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Mode } from "./difftest/cases.ts";
import { CaseGenerator, entryFamily } from "./difftest/generator.ts";
import { formatClasses, loadEmulator, runDifferential } from "./difftest/run.ts";

process.env.TSXEN_JIT_THRESHOLD = "1"; // every block goes through the block compiler (jit.ts)
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
    test(`difftest (compiled blocks) ${mode}-bit ${family}: ${count} cases over ${size} opcode forms`, { timeout: 300_000 }, async () => {
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
