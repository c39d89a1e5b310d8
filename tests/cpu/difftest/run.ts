// Runs generated cases natively and on the emulator, in batches, and compares them.
import type { CaseResult, Mode, TestCase } from "./cases.ts";
import { compare, describeMismatch } from "./compare.ts";
import { CaseGenerator, entryFamily } from "./generator.ts";
import { startNative } from "./native.ts";

export interface Emulator {
  run(c: TestCase): CaseResult;
  lastMessage: string;
}

/**
 * Loads the emulator side. Returns an error message instead when the processor can't be
 * loaded at all (for instance while src/x86 is still being written).
 */
export async function loadEmulator(mode: Mode): Promise<Emulator | string> {
  let mod: typeof import("./emulator.ts");
  try {
    mod = await import("./emulator.ts");
  } catch (e) {
    return `the emulator could not be loaded: ${e instanceof Error ? e.message : String(e)}`;
  }
  return new mod.EmulatorRunner(mode);
}

export interface RunOptions {
  mode: Mode;
  seed: number;
  /** Number of cases to run. */
  count: number;
  /** Only entries of this family (see entryFamily); cases keep their global index. */
  family?: string;
  /** First block of indices (for splitting a long run). */
  startBlock?: number;
  batch?: number;
  /** How many mismatches to describe in full. */
  maxReports?: number;
  onProgress?: (done: number, failed: number) => void;
}

export interface RunSummary {
  mode: Mode;
  passed: number;
  failed: number;
  reports: string[];
  /** Mismatch classes: "entry label: what differed" -> count. */
  classes: Map<string, number>;
  /**
   * Cases not compared: the emulator took a #PF on an address the native harness process had
   * mapped (its own image, heap or stack), which the snippet could reach natively. Counted
   * neither passed nor failed.
   */
  hostMemory: number;
}

/** True when the emulator's outcome is a #PF on an address inside one of the harness's mappings. */
function faultedOnHostMemory(emu: CaseResult, hostMaps: readonly [number, number][]): boolean {
  if (emu.vector !== 14) return false;
  const addr = emu.addressHi * 2 ** 32 + emu.addressLo;
  return hostMaps.some(([lo, hi]) => addr >= lo && addr < hi);
}

/** Indices of the cases to run: all entries of the family, round robin, by global index. */
function* caseIndices(gen: CaseGenerator, family: string | undefined, startBlock: number): Generator<number> {
  const n = gen.entries.length;
  const slots: number[] = [];
  for (let i = 0; i < n; i++) if (family === undefined || entryFamily(gen.entries[i]!) === family) slots.push(i);
  if (slots.length === 0) return;
  for (let block = startBlock; ; block++) for (const s of slots) yield block * n + s;
}

export async function runDifferential(emu: Emulator, opts: RunOptions): Promise<RunSummary> {
  const gen = new CaseGenerator({ mode: opts.mode, seed: opts.seed });
  const batch = opts.batch ?? 20_000;
  const maxReports = opts.maxReports ?? 10;
  const summary: RunSummary = { mode: opts.mode, passed: 0, failed: 0, reports: [], classes: new Map(), hostMemory: 0 };
  const it = caseIndices(gen, opts.family, opts.startBlock ?? 0);
  let remaining = opts.count;
  const nextBatch = (): TestCase[] => {
    const cases: TestCase[] = [];
    while (cases.length < Math.min(batch, remaining)) {
      const r = it.next();
      if (r.done) break;
      cases.push(gen.generate(r.value));
    }
    remaining -= cases.length;
    return cases;
  };
  let cases = nextBatch();
  while (cases.length > 0) {
    const nativePromise = startNative(opts.mode, cases);
    const exitMessages = new Map<number, string>();
    const emulated = cases.map((c) => {
      const r = emu.run(c);
      if (r.vector >= 0x200) exitMessages.set(c.index, emu.lastMessage);
      return r;
    });
    // Generate the next batch while the harness may still be running.
    const upcoming = nextBatch();
    const { results: native, hostMaps } = await nativePromise;
    for (let i = 0; i < cases.length; i++) {
      const c = cases[i]!;
      const diffs = compare(c, native[i]!, emulated[i]!);
      if (diffs.length === 0) {
        summary.passed++;
        continue;
      }
      if (faultedOnHostMemory(emulated[i]!, hostMaps)) {
        summary.hostMemory++;
        continue;
      }
      summary.failed++;
      for (const d of diffs) {
        const key = `${c.mode}-bit ${c.label}: ${d.split(":")[0]}`;
        summary.classes.set(key, (summary.classes.get(key) ?? 0) + 1);
      }
      if (summary.reports.length < maxReports) {
        const msg = exitMessages.get(c.index);
        const extra = msg !== undefined ? `emulator exit: ${msg.split("\n").slice(0, 4).join(" | ")}` : "";
        summary.reports.push(describeMismatch(c, diffs, extra));
      }
    }
    opts.onProgress?.(summary.passed + summary.failed + summary.hostMemory, summary.failed);
    cases = upcoming;
  }
  return summary;
}

/** The most frequent mismatch classes, one per line. */
export function formatClasses(classes: Map<string, number>, limit = 40): string {
  const sorted = [...classes].sort((a, b) => b[1] - a[1]);
  const lines = sorted.slice(0, limit).map(([k, n]) => `  ${String(n).padStart(7)}  ${k}`);
  if (sorted.length > limit) lines.push(`  ... and ${sorted.length - limit} more classes`);
  return lines.join("\n");
}
