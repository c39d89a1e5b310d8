// A seeded hypercall fuzzer: random hypercall numbers and arguments issued from a real PV
// domain of ours (the hello guest, built and paused at its first instruction), straight into
// the hypervisor's dispatch. The hypervisor must never throw, whatever the arguments; a domain
// the fuzzer shut down, crashed or blocked is revived so the run goes on. At the end the frame
// table's invariants must hold for every frame.
//
//   node --import tsx tests/pv/fuzz.ts [calls] [seed]     (npm run fuzz:hypercalls)

import { dispatchHypercall, HYPERCALLS } from "../../src/xen/hypercalls/table.ts";
import type { Vcpu } from "../../src/xen/vcpu.ts";
import { buildPv, type Booted } from "./boot.ts";
import { buildPvGuest, type PvArch } from "./build.ts";

function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

export interface FuzzResult {
  calls: number;
  revived: number;
  byResult: Map<number, number>;
  invariantErrors: string[];
  /** Exceptions the hypervisor caught in its own code (each crashed the fuzzing domain). */
  hostErrors: string[];
}

function revive(b: Booted, v: Vcpu): boolean {
  const d = b.domain;
  let changed = false;
  if (d.state !== "running") {
    d.state = "running";
    d.shutdownReason = undefined;
    d.crashReason = undefined;
    changed = true;
  }
  v.blocked = false;
  v.pollPorts = null;
  v.online = true;
  b.xen.scheduler.yieldRequested = false;
  return changed;
}

export function fuzzHypercalls(arch: PvArch, calls: number, seed: number): FuzzResult {
  const hostErrors: string[] = [];
  const b = buildPv(buildPvGuest("hello", arch), {
    // Two vCPUs, so VCPUOP_initialise/up/down/register_vcpu_info of a second one are reached.
    vcpus: 2,
    log: (l) => {
      if (/hypervisor error/.test(l)) hostErrors.push(l);
    },
  });
  b.domain.unpause();
  const v = b.domain.vcpus[0];
  const is64 = b.domain.is64;
  const rnd = xorshift(seed);
  const base = is64 ? 0x40000000 : 0xc0000000;
  const numbers = HYPERCALLS.map((e) => e.nr);
  const saved = v.cpu.saveState();
  const arg = (): [number, number] => {
    const k = rnd() % 10;
    switch (k) {
      case 0:
        return [0, 0];
      case 1:
        return [rnd() % 16, 0]; // small commands / counts
      case 2:
      case 3:
        return [(base + (rnd() % (2048 * 4096))) >>> 0, 0]; // inside the domain's memory
      case 4:
        return [(base + (rnd() % 64) * 4096) >>> 0, 0]; // the image's first pages
      case 5:
        return [rnd(), is64 ? rnd() : 0]; // anything
      case 6:
        return is64 ? [rnd(), 0xffff8000 + (rnd() % 0x800)] : [0xf5800000 + (rnd() % 0x800000), 0]; // Xen's range
      case 7:
        return [rnd() % 0x10000, 0]; // MFN-sized numbers
      case 8:
        return [0x7ff0, 0]; // DOMID_SELF
      default:
        return [-(1 + (rnd() % 64)) >>> 0, is64 ? 0xffffffff : 0]; // small negatives
    }
  };
  const byResult = new Map<number, number>();
  let revived = 0;
  for (let i = 0; i < calls; i++) {
    const nr = rnd() % 8 === 0 ? rnd() % 64 : numbers[rnd() % numbers.length];
    if (nr === 23) continue; // iret rewrites every register: covered by the guests
    const args = [arg(), arg(), arg(), arg(), arg()];
    dispatchHypercall(v, nr, 0, args);
    const r = v.s[0] | 0;
    byResult.set(r, (byResult.get(r) ?? 0) + 1);
    if (revive(b, v)) revived++;
    if (i % 1000 === 999) v.cpu.restoreState(saved);
  }
  const invariantErrors: string[] = [];
  const t = b.xen.table;
  for (let m = 0; m < t.frames; m++) {
    const e = t.check(m);
    if (e) invariantErrors.push(e);
  }
  return { calls, revived, byResult, invariantErrors, hostErrors };
}

const isMain = process.argv[1]?.endsWith("fuzz.ts");
if (isMain) {
  const calls = Number(process.argv[2] ?? 10_000_000);
  const seed = Number(process.argv[3] ?? 1);
  for (const arch of ["i386", "x86_64"] as PvArch[]) {
    const t0 = Date.now();
    const r = fuzzHypercalls(arch, calls, seed);
    console.log(
      `${arch}: ${r.calls} calls, ${r.revived} revivals, ${r.invariantErrors.length} invariant errors, ${r.hostErrors.length} host errors, ${Date.now() - t0} ms`,
    );
    if (r.invariantErrors.length || r.hostErrors.length) {
      console.log([...r.hostErrors, ...r.invariantErrors].slice(0, 10).join("\n"));
      process.exitCode = 1;
    }
  }
}
