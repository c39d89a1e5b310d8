// The credit scheduler (a simple correct first version of Xen's credit1): every vCPU of a
// running domain that is online and not blocked is runnable; the scheduler runs them one at a
// time on the one physical CPU in slices, and returns to Node's event loop often.
//
// Policy:
// - Each domain has a weight (default 256) and a cap (percent of one CPU; 0 = none).
// - Credit is in ns of CPU time. Running debits the credit; when no runnable vCPU has credit
//   left, every vCPU earns SLICE × weight/256 (bounded to one accounting period of credit).
// - Priority: BOOST (just woken from block/poll and not yet run) > UNDER (credit > 0) > OVER;
//   round robin within a priority. A capped domain that used its cap in the current period
//   waits for the next one.
// - A slice is at most 30 ms of (virtual or wall) time, shorter when a timer is due sooner.
//
// Invariants:
// - S1. A vCPU runs only when its domain is "running", it is online and not blocked.
// - S2. Timers (single-shot, periodic VIRQ_TIMER, poll timeouts) fire when the clock passes
//   their deadline, before the next slice is chosen; a blocked vCPU woken by one is BOOSTed.
// - S3. Scheduler.run() yields to the event loop at least every YIELD_MS of wall time.

import type { Domain } from "./domain.ts";
import { runVcpu } from "./entry.ts";
import type { Xen } from "./hypervisor.ts";
import { VIRQ_TIMER } from "./public.ts";
import { NS_PER_INSTRUCTION } from "./time.ts";
import { RUNSTATE_blocked, RUNSTATE_offline, RUNSTATE_runnable, RUNSTATE_running, type Vcpu } from "./vcpu.ts";

export const CSCHED_SLICE_NS = 30_000_000;
export const CSCHED_DEFAULT_WEIGHT = 256;
const YIELD_MS = 10;
/** Instructions per slice chunk on the real clock (about a few ms of emulation). */
const REALTIME_CHUNK = 200_000;

export interface RunOptions {
  /** Stop when this returns true (checked between slices). */
  until?: () => boolean;
  /** Stop after this much wall time. */
  timeoutMs?: number;
  /** Deterministic clock: stop after this much virtual time (ns) has passed. */
  maxVirtualNs?: number;
}

export class Scheduler {
  readonly xen: Xen;
  readonly weight = new Map<number, number>();
  readonly cap = new Map<number, number>();
  private readonly usedInPeriod = new Map<number, number>();
  private periodStart = 0;
  private rr = 0;
  /** The vCPU whose slice is running, if any. */
  current: Vcpu | undefined;
  /** The vCPU that ran last (a different one next means a context switch). */
  private lastRun: Vcpu | undefined;
  /** Set by a yielding vCPU: end its slice now. */
  yieldRequested = false;

  constructor(xen: Xen) {
    this.xen = xen;
  }

  setWeight(d: Domain, weight: number): void {
    if (!Number.isInteger(weight) || weight < 1 || weight > 65535) throw new RangeError(`weight ${weight} (1..65535)`);
    this.weight.set(d.id, weight);
  }
  setCap(d: Domain, cap: number): void {
    if (!Number.isInteger(cap) || cap < 0) throw new RangeError(`cap ${cap}`);
    this.cap.set(d.id, cap);
  }

  /** All vCPUs of live domains. */
  private *allVcpus(): Generator<Vcpu> {
    for (const d of this.xen.domains.values()) for (const v of d.vcpus) yield v;
  }

  runnable(v: Vcpu): boolean {
    return v.domain.state === "running" && v.online && !v.blocked;
  }

  /** A domain was unpaused: its vCPUs may run. */
  wake(d: Domain): void {
    for (const v of d.vcpus) if (v.online && !v.blocked) v.runstate = RUNSTATE_runnable;
  }

  /** Something happened for v (event, timer): unblock it if its wait is over (E4, S2). */
  kick(v: Vcpu): void {
    if (!v.blocked) return;
    const done = v.pollPorts !== null ? v.domain.evtchn.anyPending(v.pollPorts) : v.upcallPending !== 0;
    if (done) this.unblock(v);
  }

  unblock(v: Vcpu): void {
    v.blocked = false;
    v.pollPorts = null;
    v.pollTimeout = -1;
    v.boosted = true;
    v.runstate = RUNSTATE_runnable;
    v.cpu.requestExit();
  }

  block(v: Vcpu): void {
    v.blocked = true;
    v.runstate = RUNSTATE_blocked;
    this.yieldRequested = true;
  }

  remove(_d: Domain): void {}

  /** Fires due timers (S2). */
  processTimers(now: number): void {
    for (const v of this.allVcpus()) {
      if (v.domain.state !== "running" || !v.online) continue;
      if (v.singleshot >= 0 && v.singleshot <= now) {
        v.singleshot = -1;
        v.domain.evtchn.sendVirq(v.id, VIRQ_TIMER);
      }
      if (v.periodPeriod > 0) {
        if (v.periodNext < 0) v.periodNext = now + v.periodPeriod;
        else if (v.periodNext <= now) {
          v.periodNext += v.periodPeriod;
          if (v.periodNext <= now) v.periodNext = now + v.periodPeriod;
          v.domain.evtchn.sendVirq(v.id, VIRQ_TIMER);
        }
      }
      if (v.blocked && v.pollTimeout >= 0 && v.pollTimeout <= now) this.unblock(v);
    }
  }

  /** The earliest timer deadline of a live vCPU, or Infinity. */
  nextDeadline(): number {
    let t = Number.POSITIVE_INFINITY;
    for (const v of this.allVcpus()) {
      if (v.domain.state !== "running" || !v.online) continue;
      if (v.singleshot >= 0) t = Math.min(t, v.singleshot);
      if (v.periodPeriod > 0 && v.periodNext >= 0) t = Math.min(t, v.periodNext);
      if (v.blocked && v.pollTimeout >= 0) t = Math.min(t, v.pollTimeout);
    }
    return t;
  }

  private refill(): void {
    for (const v of this.allVcpus()) {
      const w = this.weight.get(v.domain.id) ?? CSCHED_DEFAULT_WEIGHT;
      v.credit = Math.min(v.credit + (CSCHED_SLICE_NS * w) / CSCHED_DEFAULT_WEIGHT, CSCHED_SLICE_NS * 4);
    }
  }

  /** Picks the next vCPU to run, or undefined when none is runnable. */
  pick(now: number): Vcpu | undefined {
    if (now - this.periodStart >= CSCHED_SLICE_NS) {
      this.periodStart = now;
      this.usedInPeriod.clear();
    }
    const list = [...this.allVcpus()].filter((v) => {
      if (!this.runnable(v)) return false;
      const cap = this.cap.get(v.domain.id) ?? 0;
      if (cap > 0 && (this.usedInPeriod.get(v.domain.id) ?? 0) >= (CSCHED_SLICE_NS * cap) / 100) return false;
      return true;
    });
    if (list.length === 0) return undefined;
    if (!list.some((v) => v.boosted || v.credit > 0)) this.refill();
    const n = list.length;
    let best: Vcpu | undefined;
    let bestPrio = -1;
    for (let k = 0; k < n; k++) {
      const v = list[(this.rr + k) % n];
      const prio = v.boosted ? 2 : v.credit > 0 ? 1 : 0;
      if (prio > bestPrio) {
        best = v;
        bestPrio = prio;
      }
    }
    this.rr = (this.rr + 1) % Math.max(1, n);
    return best;
  }

  /** Runs one slice of one vCPU; returns false when nothing could run. */
  runSlice(): boolean {
    const xen = this.xen;
    const clock = xen.clock;
    let now = clock.now();
    this.processTimers(now);
    const v = this.pick(now);
    if (!v) return false;
    const deadline = this.nextDeadline();
    let sliceNs = Math.min(CSCHED_SLICE_NS, Math.max(0, deadline - now));
    if (sliceNs < 10_000) sliceNs = 10_000;
    const budget = clock.deterministic ? Math.ceil(sliceNs / NS_PER_INSTRUCTION) : REALTIME_CHUNK;
    v.runstate = RUNSTATE_running;
    // Switching between vCPUs reloads the data segments (Xen's load_segments, entry.ts).
    if (this.lastRun !== undefined && this.lastRun !== v) v.reloadSegments = true;
    this.lastRun = v;
    v.writeRunstateArea();
    v.boosted = false;
    v.sliceStartRetired = v.cpu.retired;
    v.sliceStartNs = now;
    this.yieldRequested = false;
    const before = v.cpu.retired;
    this.current = v;
    try {
      runVcpu(v, budget);
    } finally {
      this.current = undefined;
    }
    const ran = v.cpu.retired - before;
    if (clock.deterministic) clock.advance(ran * NS_PER_INSTRUCTION);
    const after = clock.now();
    const used = Math.max(after - now, ran * NS_PER_INSTRUCTION);
    v.credit -= used;
    this.usedInPeriod.set(v.domain.id, (this.usedInPeriod.get(v.domain.id) ?? 0) + used);
    v.sliceStartRetired = v.cpu.retired;
    if (v.runstate === RUNSTATE_running) v.runstate = v.online ? RUNSTATE_runnable : RUNSTATE_offline;
    if (v.domain.state === "running") v.writeRunstateArea();
    now = after;
    return true;
  }

  /** True while some domain is running (or paused: it may be unpaused). */
  private anyAlive(): boolean {
    for (const d of this.xen.domains.values()) if (d.state === "running") return true;
    return false;
  }

  /**
   * Runs the machine until no domain is running, `until()` holds, or a limit passes. Yields to
   * the event loop every YIELD_MS of wall time (S3). Returns why it stopped.
   */
  async run(options: RunOptions = {}): Promise<"idle" | "until" | "timeout"> {
    const start = performance.now();
    const vstart = this.xen.clock.now();
    let lastYield = performance.now();
    for (;;) {
      if (options.until?.()) return "until";
      if (!this.anyAlive()) return "idle";
      if (options.timeoutMs !== undefined && performance.now() - start > options.timeoutMs) return "timeout";
      if (options.maxVirtualNs !== undefined && this.xen.clock.now() - vstart > options.maxVirtualNs) return "timeout";
      const ran = this.runSlice();
      if (!ran) {
        const deadline = this.nextDeadline();
        if (this.xen.clock.deterministic) {
          if (deadline === Number.POSITIVE_INFINITY) return "idle"; // everything blocked for ever
          this.xen.clock.advance(deadline - this.xen.clock.now());
        } else {
          const wait = Math.min(YIELD_MS, Math.max(0, (deadline - this.xen.clock.now()) / 1e6));
          await new Promise((r) => setTimeout(r, wait));
          lastYield = performance.now();
        }
      }
      if (performance.now() - lastYield >= YIELD_MS) {
        await new Promise((r) => setImmediate(r));
        lastYield = performance.now();
      }
    }
  }
}
