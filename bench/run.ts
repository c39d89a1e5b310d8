// `npm run bench`: the processor benchmarks. Builds bench/kernels (gcc, cached), boots each
// workload on the bare machine in this process and reports, for the measured loop only,
// guest instructions retired, seconds and MIPS.
//
//   npm run bench                     table for all eight workloads
//   npm run bench -- --json           {"workloads": {"r32": {"instructions", "seconds", "mips"}, ...}}
//   npm run bench -- --only r32,c64   a subset
//   npm run bench -- --scale 0.1      iteration counts scaled (for a quick look)
//   npm run bench -- --interpreter    the interpreter alone (block compiler off)
//   npm run bench -- --warmup 0       no unmeasured warm-up run (default 1, see below)
//   npm run bench -- --repeat 1       one measured run per workload (default 3, the median reported)
//
// What is measured: the kernel writes the benchmark marker (port 0xE8) right before the loop
// and right after it. The machine stops the CPU at each marker write and notes the retired-
// instruction count and the time, so setup, boot and the result printout are not counted. The
// instructions between the two notes are the loop plus the closing marker OUT; we subtract that
// one.
//
// Each workload first runs once unmeasured at a quarter of its size (--warmup), then is measured
// --repeat times; the run with the median MIPS is reported, and "runs" lists every measured
// run's MIPS. Why: the interpreter's loops are JavaScript that V8 optimises from the type
// feedback it has seen, and these machines are shared: a single cold run varies by up to 2x
// from one process to the next (c32 measured 52-88 MIPS in six runs of the same code), so a
// figure from one run says little. The reported figure is the warmed interpreter's, as a
// guest that has run for a second sees it.
//
// For r, m and c the count must equal iterations x instructions-per-iteration exactly
// (3, 6 and 5) and the runner fails if it does not; for s it is whatever the compiled C
// retires, and the CRC the kernel prints is checked against one computed here.
//
// Workloads: r = add/dec/jnz; m = one 32-bit load and one 32-bit store in a 16 KiB buffer plus
// two index operations plus dec/jnz; c = call f/dec/jnz with f = add/ret; s = xorshift fill,
// CRC-32 and quicksort of 1 MiB; f = double-precision 64x64 matrix multiplies in SSE2
// (bench/kernels/fmatmul.c), whose checksum is recomputed here and whose speed is compared
// with the same C compiled for the host (gcc -O2, bench/kernels/fnative.c); x = the same with
// an x87 inner loop (i386 only, precision control 53 bits, same checksum). Suffix 32: i386
// protected mode with paging on (4 KiB pages); 64: long mode (4-level paging, 4 KiB pages).

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { BareMachine, describeOutcome } from "../src/machine/bare.ts";
import { buildGuest, type GuestArch } from "../tests/framework/build-guest.ts";

export interface Workload {
  name: string;
  arch: GuestArch;
  kind: "r" | "m" | "c" | "s" | "f" | "x";
  /** Loop iterations (r, m, c) or rounds (s, f) at scale 1. */
  count: number;
}

/** Instructions per iteration, loop control included (see bench/kernels/loops*.S). */
const PER_ITERATION = { r: 3, m: 6, c: 5 } as const;
/** At scale 1, about 90 M instructions each: 1-3 s at 30-90 MIPS. */
const COUNTS = { r: 30_000_000, m: 15_000_000, c: 18_000_000, s: 1, f: 20, x: 5 } as const;
const WORKLOAD_NAMES = ["r32", "m32", "c32", "s32", "f32", "x32", "r64", "m64", "c64", "s64", "f64"];

/** Anchor figures in MIPS from the reference document, measured on other emulators, not here. */
const REFERENCE_MIPS = [
  { emulator: "v86 JIT", r: 778, m: 426, c: 237 },
  { emulator: "v86 interpreter", r: 100, m: 59, c: 72 },
  { emulator: "QEMU TCG", r: 2080, m: 2577, c: 550 },
];

export interface WorkloadResult {
  instructions: number;
  /** Wall-clock seconds of the measured loop. */
  seconds: number;
  mips: number;
  /** CPU seconds this process used in the loop: the steadier figure when the host is busy. */
  cpuSeconds: number;
  cpuMips: number;
  /** f workloads: the same C run natively on the host (seconds), and how many times faster it is. */
  nativeSeconds?: number;
  slowdown?: number;
  /** MIPS of every measured run, in order (the figures above are the median run's). */
  runs?: number[];
}

/** The f workload's checksum (fmatmul.c), as 16 hex digits: JavaScript doubles round the same way. */
export function expectedFChecksum(rounds: number): string {
  const N = 64;
  const a = new Float64Array(N * N);
  const b = new Float64Array(N * N);
  const c = new Float64Array(N * N);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < N; j++) {
      a[i * N + j] = ((i * 7 + j * 3) % 17) / 8.0 - 1.0;
      b[i * N + j] = ((i * 5 + j * 11) % 13) / 16.0 + 0.0625;
    }
  }
  for (let r = 0; r < rounds; r++) {
    c.fill(0);
    for (let i = 0; i < N; i++) {
      for (let k = 0; k < N; k++) {
        const aik = a[i * N + k]!;
        for (let j = 0; j < N; j++) c[i * N + j] = c[i * N + j]! + aik * b[k * N + j]!;
      }
    }
    for (let i = 0; i < N * N; i++) a[i] = c[i]! * 0.03125 - 0.5;
  }
  let sum = 0;
  for (let i = 0; i < N * N; i++) sum += c[i]!;
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, sum, true);
  return dv.getUint32(4, true).toString(16).padStart(8, "0") + dv.getUint32(0, true).toString(16).padStart(8, "0");
}

/** Builds bench/kernels/fnative.c for the host (gcc -O2, -m32/-m64) and runs `rounds` rounds. */
export function runNativeF(arch: GuestArch, rounds: number, x87 = false): { seconds: number; checksum: string } {
  const src = "bench/kernels/fnative.c";
  const dir = ".cache/bench";
  mkdirSync(dir, { recursive: true });
  const exe = join(dir, `fnative-${arch}`);
  const stale = !existsSync(exe) || [src, "bench/kernels/fmatmul.c"].some((f) => statSync(f).mtimeMs > statSync(exe).mtimeMs);
  if (stale) execFileSync("gcc", ["-O2", arch === "i386" ? "-m32" : "-m64", "-o", exe, src], { stdio: ["ignore", "pipe", "pipe"] });
  // Best of three runs (the host program is short).
  let best = Number.POSITIVE_INFINITY;
  let checksum = "";
  for (let k = 0; k < 3; k++) {
    const [sec, hi, lo] = execFileSync(exe, [String(rounds), x87 ? "x" : "f"], { encoding: "utf8" }).trim().split(/\s+/);
    best = Math.min(best, Number(sec));
    checksum = `${hi}${lo}`;
  }
  return { seconds: best, checksum };
}

export function workload(name: string): Workload {
  const kind = name[0] as Workload["kind"];
  return { name, arch: name.endsWith("64") ? "x86_64" : "i386", kind, count: COUNTS[kind] };
}

function benchKernel(arch: GuestArch): string {
  const loops = arch === "i386" ? "bench/kernels/loops32.S" : "bench/kernels/loops64.S";
  return buildGuest({ name: "bench", arch, sources: ["bench/kernels/bench.c", "bench/kernels/fmatmul.c", loops] });
}

/** CRC-32 (reflected, 0xEDB88320) of the s workload's data, XORed over rounds, as bench.c does. */
export function expectedSCrc(rounds: number): number {
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[i] = c;
  }
  const words = new Uint32Array(256 * 1024);
  const bytes = new Uint8Array(words.buffer);
  let crcs = 0;
  for (let r = 0; r < rounds; r++) {
    let x = (0x12345678 + r) >>> 0;
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      words[i] = x;
    }
    let c = -1;
    for (let i = 0; i < bytes.length; i++) c = table[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    crcs ^= ~c;
  }
  return crcs >>> 0;
}

/** Boots one workload and measures it; throws with the guest's transcript if anything is off. */
export async function runWorkload(w: Workload, scale = 1, interpreterOnly = false): Promise<WorkloadResult> {
  const count = Math.max(1, Math.round(w.count * scale));
  const cmdline = w.kind === "s" || w.kind === "f" || w.kind === "x" ? `workload=${w.kind} rounds=${count}` : `workload=${w.kind} iterations=${count}`;
  const chunks: Uint8Array[] = [];
  const machine = new BareMachine({ memoryBytes: 64 * 1024 * 1024, output: (b) => chunks.push(b) });
  if (interpreterOnly) machine.cpu.jitThreshold = 0; // no block compiler: closures only
  machine.boot(readFileSync(benchKernel(w.arch)), { cmdline });
  const result = await machine.run({ timeoutMs: 15 * 60 * 1000 });
  const transcript = Buffer.concat(chunks).toString("latin1");
  const fail = (why: string) => new Error(`${w.name}: ${why}\n--- guest output ---\n${transcript}`);
  if (result.outcome.kind !== "debug-exit" || result.outcome.value !== 0)
    throw fail(describeOutcome(result.outcome));
  if (machine.marks.length !== 2) throw fail(`expected 2 marker writes, saw ${machine.marks.length}`);
  const [start, end] = machine.marks;
  const instructions = end.retired - start.retired - 1;
  if (w.kind === "s") {
    const crc = /crc 0x([0-9a-f]{8})/.exec(transcript)?.[1];
    const want = expectedSCrc(count).toString(16).padStart(8, "0");
    if (crc !== want) throw fail(`CRC ${crc ?? "missing"} differs from the expected ${want}`);
  } else if (w.kind === "f" || w.kind === "x") {
    const sum = /checksum 0x([0-9a-f]{16})/.exec(transcript)?.[1];
    const want = expectedFChecksum(count);
    if (sum !== want) throw fail(`checksum ${sum ?? "missing"} differs from the expected ${want}`);
  } else {
    const want = count * PER_ITERATION[w.kind];
    if (instructions !== want)
      throw fail(`retired ${instructions} instructions in the loop, expected exactly ${want}`);
  }
  const seconds = (end.timeMs - start.timeMs) / 1000;
  const cpuSeconds = (end.cpuMs - start.cpuMs) / 1000;
  const r: WorkloadResult = { instructions, seconds, mips: instructions / seconds / 1e6, cpuSeconds, cpuMips: instructions / cpuSeconds / 1e6 };
  if (w.kind === "f" || w.kind === "x") {
    const native = runNativeF(w.arch, count, w.kind === "x");
    if (native.checksum !== expectedFChecksum(count)) throw fail(`the host program's checksum ${native.checksum} is not the expected one`);
    r.nativeSeconds = native.seconds;
    r.slowdown = cpuSeconds / native.seconds;
  }
  return r;
}

async function main(): Promise<number> {
  let values: { json?: boolean; only?: string; scale?: string; interpreter?: boolean; warmup?: string; repeat?: string };
  try {
    values = parseArgs({
      options: {
        json: { type: "boolean" },
        only: { type: "string" },
        scale: { type: "string" },
        interpreter: { type: "boolean" },
        warmup: { type: "string" },
        repeat: { type: "string" },
      },
      strict: true,
    }).values;
  } catch (e) {
    console.error(`bench: ${(e as Error).message.split("\n")[0]}`);
    return 2;
  }
  const names = values.only ? values.only.split(",").map((s) => s.trim()) : WORKLOAD_NAMES;
  const unknown = names.filter((n) => !WORKLOAD_NAMES.includes(n));
  if (unknown.length) {
    console.error(`bench: unknown workload ${unknown.join(", ")} (have ${WORKLOAD_NAMES.join(", ")})`);
    return 2;
  }
  const scale = values.scale === undefined ? 1 : Number(values.scale);
  if (!(scale > 0)) {
    console.error(`bench: --scale "${values.scale}" is not a positive number`);
    return 2;
  }

  const warmups = values.warmup === undefined ? 1 : Number(values.warmup);
  if (!Number.isInteger(warmups) || warmups < 0) {
    console.error(`bench: --warmup "${values.warmup}" is not a whole number of runs`);
    return 2;
  }
  const repeats = values.repeat === undefined ? 3 : Number(values.repeat);
  if (!Number.isInteger(repeats) || repeats < 1) {
    console.error(`bench: --repeat "${values.repeat}" is not a positive whole number of runs`);
    return 2;
  }

  const results: Record<string, WorkloadResult> = {};
  if (!values.json) {
    console.log(
      `tsxen bare-machine benchmarks (measured loop only; ${values.interpreter ? "interpreter only" : "interpreter + block compiler"}; median of ${repeats} run${repeats === 1 ? "" : "s"} after ${warmups} warm-up run${warmups === 1 ? "" : "s"})\n`,
    );
    console.log(
      `${"workload".padEnd(10)}${"instructions".padStart(14)}${"seconds".padStart(10)}${"MIPS".padStart(9)}${"cpu s".padStart(9)}${"cpu MIPS".padStart(10)}`,
    );
  }
  for (const name of names) {
    for (let k = 0; k < warmups; k++) await runWorkload(workload(name), scale / 4, values.interpreter === true);
    const runs: WorkloadResult[] = [];
    for (let k = 0; k < repeats; k++) runs.push(await runWorkload(workload(name), scale, values.interpreter === true));
    const byMips = [...runs].sort((a, b) => a.mips - b.mips);
    const r: WorkloadResult = { ...byMips[(byMips.length - 1) >> 1], runs: runs.map((x) => round(x.mips, 1)) };
    results[name] = r;
    if (!values.json) {
      console.log(
        `${name.padEnd(10)}${r.instructions.toLocaleString("en-US").padStart(14)}${r.seconds.toFixed(3).padStart(10)}${r.mips.toFixed(1).padStart(9)}${r.cpuSeconds.toFixed(3).padStart(9)}${r.cpuMips.toFixed(1).padStart(10)}${
          r.nativeSeconds !== undefined ? `   host natively ${r.nativeSeconds.toFixed(4)} s: ${Math.round(r.slowdown!)}x faster (cpu s)` : ""
        }`,
      );
    }
  }
  if (values.json) {
    const workloads: Record<string, WorkloadResult> = {};
    for (const [name, r] of Object.entries(results)) {
      workloads[name] = {
        instructions: r.instructions,
        seconds: round(r.seconds, 4),
        mips: round(r.mips, 2),
        cpuSeconds: round(r.cpuSeconds, 4),
        cpuMips: round(r.cpuMips, 2),
        ...(r.nativeSeconds !== undefined ? { nativeSeconds: round(r.nativeSeconds, 6), slowdown: round(r.slowdown!, 1) } : {}),
        runs: r.runs,
      };
    }
    console.log(JSON.stringify({ workloads }));
  } else {
    console.log(
      "\nFor comparison, r/m/c in MIPS on other emulators (Debian i386 guest, 2-vCPU AMD EPYC host).\n" +
        "These are fixed figures from the reference document x86-emulation-speed.md §2.3, NOT measured here:",
    );
    for (const ref of REFERENCE_MIPS) {
      console.log(
        `  ${ref.emulator.padEnd(17)} r ${String(ref.r).padStart(5)}   m ${String(ref.m).padStart(5)}   c ${String(ref.c).padStart(5)}`,
      );
    }
  }
  return 0;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  try {
    process.exitCode = await main();
  } catch (e) {
    console.error(`bench: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}
