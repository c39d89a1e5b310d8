// `npm run test:cpu-full`: the long differential run, 5,000,000 cases by default (half per
// mode, one worker process per mode), progress on stderr, and at the end a line
// `N passed, N failed`. Exit status 1 if any case failed.
//
//   node --import tsx tests/cpu/diff-full.ts [--count N] [--seed S] [--mode 32|64] [--reports K]
//        [--node-arg FLAG]...   (extra node/V8 flags for the worker processes)
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Mode } from "./difftest/cases.ts";
import { formatClasses, loadEmulator, runDifferential } from "./difftest/run.ts";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : dflt;
}

interface WorkerResult {
  mode: Mode;
  passed: number;
  failed: number;
  reports: string[];
  classes: [string, number][];
  hostMemory: number;
}

async function worker(): Promise<void> {
  const mode = Number(arg("mode", "64")) as Mode;
  const count = Number(arg("count", "2500000"));
  const seed = Number(arg("seed", "1"));
  const emu = await loadEmulator(mode);
  if (typeof emu === "string") {
    process.stderr.write(`${emu}\n`);
    process.exit(2);
  }
  let last = 0;
  const s = await runDifferential(emu, {
    mode,
    seed,
    count,
    maxReports: Number(arg("reports", "10")),
    onProgress: (done, failed) => {
      const now = Date.now();
      if (now - last > 5000 || done === count) {
        last = now;
        process.stderr.write(`[${mode}-bit] ${done}/${count} cases, ${failed} failed\n`);
      }
    },
  });
  const out: WorkerResult = {
    mode,
    passed: s.passed,
    failed: s.failed,
    reports: s.reports,
    classes: [...s.classes],
    hostMemory: s.hostMemory,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

async function main(): Promise<void> {
  const count = Number(arg("count", "5000000"));
  const seed = arg("seed", "1");
  const modeArg = arg("mode", "both");
  const modes: Mode[] = modeArg === "both" ? [32, 64] : [Number(modeArg) as Mode];
  const self = fileURLToPath(import.meta.url);
  const nodeArgs: string[] = [];
  process.argv.forEach((a, i) => {
    if (a === "--node-arg" && i + 1 < process.argv.length) nodeArgs.push(process.argv[i + 1]!);
  });
  const t0 = Date.now();
  const results = await Promise.all(
    modes.map(
      (mode, k) =>
        new Promise<WorkerResult | null>((resolve) => {
          const n = Math.floor(count / modes.length) + (k === 0 ? count % modes.length : 0);
          const child = spawn(
            process.execPath,
            [...nodeArgs, "--import", "tsx", self, "--worker", "--mode", String(mode), "--count", String(n), "--seed", seed, "--reports", arg("reports", "10")],
            { stdio: ["ignore", "pipe", "pipe"] },
          );
          // Forward progress; a worker silent for 5 minutes is stuck (an emulator bug that
          // loops inside one instruction can't be stopped by the instruction budget).
          let lastActivity = Date.now();
          child.stderr.setEncoding("utf8");
          child.stderr.on("data", (d: string) => {
            lastActivity = Date.now();
            process.stderr.write(d);
          });
          const watchdog = setInterval(() => {
            if (Date.now() - lastActivity > 300_000) {
              process.stderr.write(`[${mode}-bit] worker made no progress for 5 minutes: stopping it\n`);
              child.kill("SIGKILL");
            }
          }, 10_000);
          let text = "";
          child.stdout.setEncoding("utf8");
          child.stdout.on("data", (d: string) => {
            text += d;
          });
          child.on("close", (code) => {
            clearInterval(watchdog);
            const line = text.trim().split("\n").pop() ?? "";
            try {
              resolve(JSON.parse(line) as WorkerResult);
            } catch {
              process.stderr.write(`[${mode}-bit] worker failed (exit ${code})\n`);
              resolve(null);
            }
          });
        }),
    ),
  );
  let passed = 0;
  let failed = 0;
  let hostMemory = 0;
  const classes = new Map<string, number>();
  for (const [k, r] of results.entries()) {
    if (!r) {
      failed += Math.floor(count / modes.length) + (k === 0 ? count % modes.length : 0);
      continue;
    }
    passed += r.passed;
    failed += r.failed;
    hostMemory += r.hostMemory;
    for (const [c, n] of r.classes) classes.set(c, (classes.get(c) ?? 0) + n);
    if (r.reports.length) process.stderr.write(`\nFirst mismatches (${r.mode}-bit):\n${r.reports.join("\n\n")}\n`);
  }
  if (classes.size) process.stderr.write(`\nMismatch classes:\n${formatClasses(classes, 60)}\n`);
  process.stderr.write(`\n${((Date.now() - t0) / 1000).toFixed(1)} s, seed ${seed}\n`);
  // Cases whose snippet reached the harness's own memory cannot be compared (docs/difftest.md).
  const notCompared = hostMemory > 0 ? ` (${hostMemory} not compared: they reached the native harness's own memory)` : "";
  process.stdout.write(`${passed} passed, ${failed} failed${notCompared}\n`);
  process.exit(failed > 0 ? 1 : 0);
}

if (process.argv.includes("--worker")) await worker();
else await main();
