// Runs a slice of the differential test in one process, from a given case index: for chasing a
// failure that a long run (`npm run test:cpu-full`) reported only as a count. Prints the
// summary, the first three mismatches in full and the mismatch classes.
//
//   node --import tsx tests/cpu/difftest/range.ts MODE SEED FIRST_CASE COUNT
//   (MODE 32 or 64; FIRST_CASE is rounded down to a whole block of the generator's entries)
import { CaseGenerator } from "./generator.ts";
import { formatClasses, loadEmulator, runDifferential } from "./run.ts";

const [modeArg, seed, first, count] = process.argv.slice(2).map(Number);
if (!(modeArg === 32 || modeArg === 64) || ![seed, first, count].every(Number.isInteger)) {
  console.error("usage: range.ts MODE(32|64) SEED FIRST_CASE COUNT");
  process.exit(2);
}
const mode = modeArg as 32 | 64;
const entries = new CaseGenerator({ mode, seed }).entries.length;
const emu = await loadEmulator(mode);
if (typeof emu === "string") {
  console.error(emu);
  process.exit(2);
}
const s = await runDifferential(emu, { mode, seed, count, startBlock: Math.floor(first / entries), maxReports: 3 });
console.log(`${s.passed} passed, ${s.failed} failed, ${s.hostMemory} not compared (cases from ${Math.floor(first / entries) * entries}, ${entries} entries a block)`);
if (s.reports.length) console.log(s.reports.join("\n\n"));
if (s.classes.size) console.log(formatClasses(s.classes, 20));
if (s.failed > 0) process.exitCode = 1;
