// Builds the native harness (tests/cpu/native/harness.c) with gcc into .cache/difftest/ and
// runs batches of cases on the host CPU.
import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { CASE_IN_SIZE, CASE_OUT_SIZE, type CaseResult, type Mode, type TestCase, decodeResult, encodeCase } from "./cases.ts";

const here = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(here, "../../..");
export const HARNESS_SOURCE = join(REPO_ROOT, "tests/cpu/native/harness.c");
export const CACHE_DIR = join(REPO_ROOT, ".cache/difftest");

function mtime(p: string): number {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return -1;
  }
}

/**
 * Compiles a native harness source for `mode` into cacheDir/name (reused while newer than the
 * source), statically when the toolchain allows it. Shared by the integer and FP testers.
 */
export function buildNativeHarness(source: string, cacheDir: string, name: string, mode: Mode): string {
  const out = join(cacheDir, name);
  if (mtime(out) >= mtime(source) && mtime(out) > 0) return out;
  mkdirSync(cacheDir, { recursive: true });
  // Build to a private name and rename, so concurrent test processes never see half a file.
  const tmp = `${out}.${process.pid}.tmp`;
  const base = [`-m${mode}`, "-O2", "-Wall", "-no-pie", "-o", tmp, source];
  let r = spawnSync("gcc", [...base, "-static"], { encoding: "utf8" });
  if (r.status !== 0) r = spawnSync("gcc", base, { encoding: "utf8" });
  if (r.error) throw new Error(`cannot run gcc to build ${name}: ${r.error.message}`);
  if (r.status !== 0) {
    const hint = mode === 32 ? " (32-bit builds need gcc-multilib: apt-get install gcc-multilib)" : "";
    throw new Error(`gcc failed to build ${name}${hint}:\n${r.stderr}`);
  }
  renameSync(tmp, out);
  return out;
}

/** Returns the path of the harness for `mode`, compiling it first if it is missing or stale. */
export function buildHarness(mode: Mode): string {
  return buildNativeHarness(HARNESS_SOURCE, CACHE_DIR, `harness${mode}`, mode);
}

function encodeAll(cases: readonly TestCase[]): Uint8Array {
  const buf = new Uint8Array(cases.length * CASE_IN_SIZE);
  for (let i = 0; i < cases.length; i++) encodeCase(cases[i]!, buf, i * CASE_IN_SIZE);
  return buf;
}

function decodeAll(out: Uint8Array, cases: readonly TestCase[], stderr: string): CaseResult[] {
  if (out.length !== cases.length * CASE_OUT_SIZE) {
    throw new Error(`native harness returned ${out.length} bytes for ${cases.length} cases (stderr: ${stderr.trim()})`);
  }
  const res: CaseResult[] = [];
  for (let i = 0; i < cases.length; i++) {
    const r = decodeResult(out, i * CASE_OUT_SIZE);
    if (r.id !== cases[i]!.id >>> 0) throw new Error(`native harness: result ${i} has id ${r.id}, expected ${cases[i]!.id}`);
    res.push(r);
  }
  return res;
}

/** Runs the cases (all of one mode) on the host CPU, synchronously. */
export function runNativeSync(mode: Mode, cases: readonly TestCase[]): CaseResult[] {
  if (cases.length === 0) return [];
  const exe = buildHarness(mode);
  const r = spawnSync(exe, [], { input: encodeAll(cases), maxBuffer: cases.length * CASE_OUT_SIZE + 1024 });
  if (r.error) throw r.error;
  const { rest } = splitHostMaps(String(r.stderr));
  if (r.status !== 0) throw new Error(`native harness exited with ${r.status ?? r.signal}: ${rest}`);
  return decodeAll(r.stdout, cases, rest);
}

let tmpCounter = 0;

/** A batch's native results, and the harness process's own mappings while it ran them. */
export interface NativeBatch {
  results: CaseResult[];
  /** [start, end) of every mapping of the harness process (its image, heap, stack...). */
  hostMaps: [number, number][];
}

/** Separates the harness's "hostmap START-END" lines from the rest of its stderr. */
function splitHostMaps(stderr: string): { hostMaps: [number, number][]; rest: string } {
  const hostMaps: [number, number][] = [];
  const rest: string[] = [];
  for (const line of stderr.split("\n")) {
    const m = /^hostmap ([0-9a-f]+)-([0-9a-f]+)$/.exec(line);
    if (m) hostMaps.push([Number.parseInt(m[1]!, 16), Number.parseInt(m[2]!, 16)]);
    else if (line !== "") rest.push(line);
  }
  return { hostMaps, rest: rest.join("\n") };
}

/**
 * Starts the harness on a batch in the background (input and output go through temporary
 * files, so the child runs while this thread is busy emulating) and returns a promise of
 * the results.
 */
export function startNative(mode: Mode, cases: readonly TestCase[]): Promise<NativeBatch> {
  if (cases.length === 0) return Promise.resolve({ results: [], hostMaps: [] });
  const exe = buildHarness(mode);
  const stem = join(tmpdir(), `tsxen-difftest-${process.pid}-${tmpCounter++}`);
  const inPath = `${stem}.in`;
  const outPath = `${stem}.out`;
  writeFileSync(inPath, encodeAll(cases));
  const inFd = openSync(inPath, "r");
  const outFd = openSync(outPath, "w");
  const child = spawn(exe, [], { stdio: [inFd, outFd, "pipe"] });
  closeSync(inFd);
  closeSync(outFd);
  let stderr = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (s: string) => {
    stderr += s;
  });
  return new Promise((resolvePromise, reject) => {
    const cleanup = () => {
      for (const p of [inPath, outPath]) if (existsSync(p)) rmSync(p, { force: true });
    };
    child.on("error", (e) => {
      cleanup();
      reject(e);
    });
    child.on("close", (code, signal) => {
      try {
        const { hostMaps, rest } = splitHostMaps(stderr);
        if (code !== 0) throw new Error(`native harness exited with ${code ?? signal}: ${rest}`);
        resolvePromise({ results: decodeAll(readFileSync(outPath), cases, rest), hostMaps });
      } catch (e) {
        reject(e);
      } finally {
        cleanup();
      }
    });
  });
}
