// `npm run test:fp-full` (also run by `npm run test:cpu-full`): the long floating-point
// differential run, 5,000,000 cases by default (half per mode, one worker process per mode),
// progress on stderr, and at the end a line `N passed, N failed`. Exit status 1 on failures.
//
//   node --import tsx tests/cpu/fp-full.ts [--count N] [--seed S] [--mode 32|64] [--reports K]
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Mode } from "./difftest/cases.ts";
import { formatFpClasses, runFpDifferential } from "./fpdiff/run.ts";

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
}

async function worker(): Promise<void> {
  const mode = Number(arg("mode", "64")) as Mode;
  const count = Number(arg("count", "2500000"));
  const seed = Number(arg("seed", "1"));
  let last = 0;
  const s = await runFpDifferential({
    mode,
    seed,
    count,
    maxReports: Number(arg("reports", "10")),
    onProgress: (done, failed) => {
      const now = Date.now();
      if (now - last > 5000 || done === count) {
        last = now;
        process.stderr.write(`[fp ${mode}-bit] ${done}/${count} cases, ${failed} failed\n`);
      }
    },
  });
  const out: WorkerResult = { mode, passed: s.passed, failed: s.failed, reports: s.reports, classes: [...s.classes] };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

async function main(): Promise<void> {
  const count = Number(arg("count", "5000000"));
  const seed = arg("seed", "1");
  const modeArg = arg("mode", "both");
  const modes: Mode[] = modeArg === "both" ? [32, 64] : [Number(modeArg) as Mode];
  const self = fileURLToPath(import.meta.url);
  const t0 = Date.now();
  const results = await Promise.allSettled(
    modes.map(
      (mode, k) =>
        new Promise<WorkerResult>((resolve, reject) => {
          const share = Math.floor(count / modes.length) + (k === 0 ? count % modes.length : 0);
          const child = spawn(
            process.execPath,
            ["--import", "tsx", self, "--worker", "--mode", String(mode), "--count", String(share), "--seed", seed, "--reports", arg("reports", "10")],
            { stdio: ["ignore", "pipe", "inherit"] },
          );
          let out = "";
          child.stdout.setEncoding("utf8");
          child.stdout.on("data", (d: string) => {
            out += d;
          });
          child.on("error", reject);
          child.on("close", (code) => {
            try {
              resolve(JSON.parse(out.trim().split("\n").pop() ?? "") as WorkerResult);
            } catch {
              reject(new Error(`fp worker for ${mode}-bit exited with ${code}`));
            }
          });
        }),
    ),
  );
  let passed = 0;
  let failed = 0;
  const classes = new Map<string, number>();
  for (const settled of results) {
    if (settled.status === "rejected") {
      process.stdout.write(`a worker failed: ${String(settled.reason)}\n`);
      failed++;
      continue;
    }
    const r = settled.value;
    passed += r.passed;
    failed += r.failed;
    for (const [k, n] of r.classes) classes.set(k, (classes.get(k) ?? 0) + n);
    if (r.reports.length) process.stdout.write(`${r.reports.join("\n\n")}\n\n`);
  }
  if (failed > 0) process.stdout.write(`Mismatch classes:\n${formatFpClasses(classes, 60)}\n`);
  process.stderr.write(`fp-full: ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  process.exitCode = failed > 0 ? 1 : 0;
}

if (process.argv.includes("--worker")) await worker();
else await main();
