// Runs generated floating-point cases natively and on the emulator, in batches, and compares.
import type { Mode } from "../difftest/cases.ts";
import type { FpCase, FpResult } from "./cases.ts";
import { compareFp, describeFpMismatch } from "./compare.ts";
import { FpEmulatorRunner } from "./emulator.ts";
import { FpGenerator } from "./generator.ts";
import { startFpNative } from "./native.ts";

export interface FpRunOptions {
  mode: Mode;
  seed: number;
  count: number;
  /** Only entries of these families. */
  families?: string[];
  /** Only entries whose label contains this. */
  filter?: string;
  startBlock?: number;
  batch?: number;
  maxReports?: number;
  /** Compile every block before its first execution (the block compiler calls the FP closures). */
  jit?: boolean;
  onProgress?: (done: number, failed: number) => void;
}

export interface FpRunSummary {
  mode: Mode;
  passed: number;
  failed: number;
  reports: string[];
  classes: Map<string, number>;
}

function* caseIndices(gen: FpGenerator, opts: FpRunOptions): Generator<number> {
  const n = gen.entries.length;
  const slots: number[] = [];
  for (let i = 0; i < n; i++) {
    const e = gen.entries[i]!;
    if (opts.families && !opts.families.includes(e.family)) continue;
    if (opts.filter && !e.label.includes(opts.filter)) continue;
    slots.push(i);
  }
  if (slots.length === 0) return;
  for (let block = opts.startBlock ?? 0; ; block++) for (const s of slots) yield block * n + s;
}

export async function runFpDifferential(opts: FpRunOptions): Promise<FpRunSummary> {
  const emu = new FpEmulatorRunner(opts.mode);
  if (opts.jit) emu.inner.um.cpu.jitThreshold = 1;
  const gen = new FpGenerator({ mode: opts.mode, seed: opts.seed });
  const batch = opts.batch ?? 10_000;
  const maxReports = opts.maxReports ?? 10;
  const summary: FpRunSummary = { mode: opts.mode, passed: 0, failed: 0, reports: [], classes: new Map() };
  const it = caseIndices(gen, opts);
  let remaining = opts.count;
  const nextBatch = (): FpCase[] => {
    const cases: FpCase[] = [];
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
    const nativePromise = startFpNative(opts.mode, cases);
    const exitMessages = new Map<number, string>();
    const emulated = cases.map((c) => {
      let r: FpResult;
      try {
        r = emu.run(c);
      } catch (e) {
        throw new Error(`host exception on case ${c.index} (${c.label}): ${e instanceof Error ? e.stack : String(e)}`);
      }
      if (r.vector >= 0x200) exitMessages.set(c.index, emu.lastMessage);
      return r;
    });
    const upcoming = nextBatch();
    const native = await nativePromise;
    for (let i = 0; i < cases.length; i++) {
      const c = cases[i]!;
      const diffs = compareFp(c, native[i]!, emulated[i]!);
      if (diffs.length === 0) {
        summary.passed++;
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
        summary.reports.push(describeFpMismatch(c, diffs, extra));
      }
    }
    opts.onProgress?.(summary.passed + summary.failed, summary.failed);
    cases = upcoming;
  }
  return summary;
}

export function formatFpClasses(classes: Map<string, number>, limit = 40): string {
  const sorted = [...classes].sort((a, b) => b[1] - a[1]);
  const lines = sorted.slice(0, limit).map(([k, n]) => `  ${String(n).padStart(7)}  ${k}`);
  if (sorted.length > limit) lines.push(`  ... and ${sorted.length - limit} more classes`);
  return lines.join("\n");
}
