// Builds the floating-point harness (fpharness.c) with gcc into .cache/fpdiff/ and runs
// batches of cases on the host CPU.
import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Mode } from "../difftest/cases.ts";
import { buildNativeHarness } from "../difftest/native.ts";
import { FP_CASE_IN_SIZE, FP_CASE_OUT_SIZE, type FpCase, type FpResult, decodeFpResult, encodeFpCase } from "./cases.ts";

const here = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(here, "../../..");
export const FP_HARNESS_SOURCE = join(REPO_ROOT, "tests/cpu/fpdiff/fpharness.c");
export const CACHE_DIR = join(REPO_ROOT, ".cache/fpdiff");

export function buildFpHarness(mode: Mode): string {
  return buildNativeHarness(FP_HARNESS_SOURCE, CACHE_DIR, `fpharness${mode}`, mode);
}

function encodeAll(cases: readonly FpCase[]): Uint8Array {
  const buf = new Uint8Array(cases.length * FP_CASE_IN_SIZE);
  for (let i = 0; i < cases.length; i++) encodeFpCase(cases[i]!, buf, i * FP_CASE_IN_SIZE);
  return buf;
}

function decodeAll(out: Uint8Array, cases: readonly FpCase[], stderr: string): FpResult[] {
  if (out.length !== cases.length * FP_CASE_OUT_SIZE) {
    throw new Error(`FP harness returned ${out.length} bytes for ${cases.length} cases (stderr: ${stderr.trim()})`);
  }
  const res: FpResult[] = [];
  for (let i = 0; i < cases.length; i++) {
    const r = decodeFpResult(out, i * FP_CASE_OUT_SIZE);
    if (r.id !== cases[i]!.id >>> 0) throw new Error(`FP harness: result ${i} has id ${r.id}, expected ${cases[i]!.id}`);
    res.push(r);
  }
  return res;
}

export function runFpNativeSync(mode: Mode, cases: readonly FpCase[]): FpResult[] {
  if (cases.length === 0) return [];
  const exe = buildFpHarness(mode);
  const r = spawnSync(exe, [], { input: encodeAll(cases), maxBuffer: cases.length * FP_CASE_OUT_SIZE + 1024 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`FP harness exited with ${r.status ?? r.signal}: ${r.stderr}`);
  return decodeAll(r.stdout, cases, String(r.stderr));
}

let tmpCounter = 0;

/**
 * Runs a batch in the background; a harness that could not map its fixed addresses (a rare
 * clash with the address-space randomization of the harness's own heap) is started again.
 */
export async function startFpNative(mode: Mode, cases: readonly FpCase[]): Promise<FpResult[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startFpNativeOnce(mode, cases);
    } catch (e) {
      if (attempt >= 3 || !/mmap/.test(String(e))) throw e;
    }
  }
}

function startFpNativeOnce(mode: Mode, cases: readonly FpCase[]): Promise<FpResult[]> {
  if (cases.length === 0) return Promise.resolve([]);
  const exe = buildFpHarness(mode);
  const stem = join(tmpdir(), `tsxen-fpdiff-${process.pid}-${tmpCounter++}`);
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
        if (code !== 0) throw new Error(`FP harness exited with ${code ?? signal}: ${stderr}`);
        resolvePromise(decodeAll(readFileSync(outPath), cases, stderr));
      } catch (e) {
        reject(e);
      } finally {
        cleanup();
      }
    });
  });
}
