// The credit scheduler (a simple correct version of Xen's credit1 on one physical CPU): every
// vCPU of a running domain that is online and not blocked is runnable; the scheduler runs them
// one at a time in slices, and returns to Node's event loop often.
//
// Policy:
// - Each domain has a weight (default 256) and a cap (percent of one CPU; 0 = none).
// - Credit is in ns of CPU time. Running debits the credit; when no runnable vCPU has credit
//   left, every vCPU earns SLICE × weight/256 (bounded to four slices of credit), so running
//   vCPUs share the CPU in proportion to their weights.
// - Priority: BOOST (woken from block/poll while not over its credit, and not yet run) > UNDER
//   (credit > 0) > OVER; round robin within a priority (a vCPU goes to the back of the queue
//   when its slice ends). As Xen's credit1, a vCPU woken with BOOST preempts the running one
//   (whose slice ends at once) and a vCPU over its credit is not boosted.
// - A slice is 30 ms of (virtual or wall) time; it ends sooner when the vCPU blocks, yields,
//   is preempted or reaches its cap. Timers (anyone's) do not end it: they only split it into
//   chunks, so the timer's event is raised on time and a woken vCPU can preempt.
// - A cap is enforced per 30 ms accounting period: a capped domain runs at most cap% of each
//   period, then waits for the next one even when the CPU is otherwise idle (tighter than Xen,
//   which parks a capped vCPU at the next 10 ms tick once it is a period's worth in debt).
// - A slice runs as chunks of runVcpu; between chunks timers fire and, every YIELD_MS, run()
//   yields to the event loop. On the wall clock a chunk's instruction budget adapts to about
//   CHUNK_MS of wall time. On the deterministic clock chunks have fixed sizes (INITIAL_CHUNK
//   doubling up to DET_CHUNK instructions, a few ms of emulation), and slice, cap and timer
//   boundaries are all in virtual time, so a run is reproducible.
//
// Invariants:
// - S1. A vCPU runs only when its domain is "running", it is online and not blocked.
// - S2. Timers (single-shot, periodic VIRQ_TIMER, poll timeouts) fire when the clock passes
//   their deadline, before the next chunk runs; a blocked vCPU woken by one is BOOSTed.
// - S3. Scheduler.run() yields to the event loop at least every YIELD_MS of wall time, give or
//   take one chunk (about CHUNK_MS), on either clock.

import type { Domain } from "./domain.ts";
import { runVcpu } from "./entry.ts";
import type { Xen } from "./hypervisor.ts";
import { VIRQ_TIMER } from "./public.ts";
import { NS_PER_INSTRUCTION } from "./time.ts";
import { RUNSTATE_blocked, RUNSTATE_offline, RUNSTATE_runnable, RUNSTATE_running, type Vcpu } from "./vcpu.ts";

export const CSCHED_SLICE_NS = 30_000_000;
/** The accounting period over which caps are enforced (Xen: 3 ticks of 10 ms). */
export const CSCHED_PERIOD_NS = 30_000_000;
export const CSCHED_DEFAULT_WEIGHT = 256;
const YIELD_MS = 10;
/** Wall time one runVcpu call aims at; the instruction budget adapts to the emulator's speed. */
const CHUNK_MS = 2;
const MIN_CHUNK = 1_000;
const MAX_CHUNK = 10_000_000;
/** Small: the first chunks run on a cold emulator (slow until V8 has compiled it). */
const INITIAL_CHUNK = 2_000;
/** Deterministic clock: the largest chunk (fixed, so runs are reproducible). */
const DET_CHUNK = 50_000;

export interface RunOptions {
  /** Stop when this returns true (checked between chunks). */
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
  /** Round-robin order of every vCPU seen; a vCPU moves to the back when its slice ends. */
  private queue: Vcpu[] = [];
  /** The vCPU whose slice is in progress (undefined between slices; read-only outside). Between
   * its chunks the clock is up to date (sliceStartRetired = retired). */
  current: Vcpu | undefined;
  private sliceStart = 0;
  private sliceEnd = 0;
  /** A vCPU woken with BOOST: end the current slice before the next chunk. */
  private preempt = false;
  /** Instructions per runVcpu call (wall clock: adapted to CHUNK_MS of wall time). */
  private chunk = INITIAL_CHUNK;
  /** ns each vCPU has run (the scheduler's accounting; 1 ns per instruction when deterministic). */
  private readonly ranNs = new Map<Vcpu, number>();
  /** The vCPU that ran last (a different one next means a context switch). */
  private lastRun: Vcpu | undefined;
  /** Set by a yielding or blocking vCPU, or a preempting wake-up: end the slice now. */
  yieldRequested = false;
  /** Debug hook (tests): every slice as it ends, with its start and end time and why it ended. */
  onSlice: ((v: Vcpu, startNs: number, endNs: number, why: string) => void) | undefined;

  constructor(xen: Xen) {
    this.xen = xen;
  }

  setWeight(d: Domain, weight: number): void {
    if (!Number.isInteger(weight) || weight < 1 || weight > 65535)
      throw new RangeError(`weight ${weight} (1..65535)`);
    this.weight.set(d.id, weight);
  }
  setCap(d: Domain, cap: number): void {
    if (!Number.isInteger(cap) || cap < 0) throw new RangeError(`cap ${cap}`);
    this.cap.set(d.id, cap);
  }

  /** ns of CPU time vCPU v has had from this scheduler. */
  runningNs(v: Vcpu): number {
    return this.ranNs.get(v) ?? 0;
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

  /**
   * Wakes a blocked vCPU. As credit1's csched_vcpu_wake: BOOST unless it is over its credit,
   * and a boosted wake-up preempts the running vCPU (its slice ends before the next chunk;
   * when the wake-up comes from the running vCPU's own hypercall, runVcpu stops after it).
   */
  unblock(v: Vcpu): void {
    v.blocked = false;
    v.pollPorts = null;
    v.pollTimeout = -1;
    v.boosted = v.credit >= 0;
    v.runstate = RUNSTATE_runnable;
    if (v.boosted && this.current !== undefined && this.current !== v) {
      this.preempt = true;
      this.yieldRequested = true;
    }
  }

  block(v: Vcpu): void {
    v.blocked = true;
    v.runstate = RUNSTATE_blocked;
    this.yieldRequested = true;
  }

  remove(d: Domain): void {
    this.queue = this.queue.filter((v) => v.domain !== d);
    for (const v of d.vcpus) this.ranNs.delete(v);
    if (this.current?.domain === d) this.current = undefined;
  }

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

  /** Starts a new accounting period when the clock has passed the current one. */
  private newPeriod(now: number): void {
    if (now - this.periodStart < CSCHED_PERIOD_NS) return;
    this.periodStart += Math.floor((now - this.periodStart) / CSCHED_PERIOD_NS) * CSCHED_PERIOD_NS;
    this.usedInPeriod.clear();
  }

  /** ns v's domain may still run in this period (Infinity without a cap). */
  private capLeft(v: Vcpu): number {
    const cap = this.cap.get(v.domain.id) ?? 0;
    if (cap === 0) return Number.POSITIVE_INFINITY;
    return (CSCHED_PERIOD_NS * cap) / 100 - (this.usedInPeriod.get(v.domain.id) ?? 0);
  }

  /** The queue in round-robin order, with vCPUs not seen before at the back. */
  private order(): Vcpu[] {
    const seen = new Set(this.queue);
    for (const v of this.allVcpus()) if (!seen.has(v)) this.queue.push(v);
    this.queue = this.queue.filter((v) => v.domain.state !== "dead");
    return this.queue;
  }

  /** Picks the next vCPU to run, or undefined when none is runnable (or all are capped). */
  pick(now: number): Vcpu | undefined {
    this.newPeriod(now);
    const list = this.order().filter((v) => this.runnable(v) && this.capLeft(v) > 0);
    if (list.length === 0) return undefined;
    if (!list.some((v) => v.boosted || v.credit > 0)) this.refill();
    let best: Vcpu | undefined;
    let bestPrio = -1;
    for (const v of list) {
      const prio = v.boosted ? 2 : v.credit > 0 ? 1 : 0;
      if (prio > bestPrio) {
        best = v;
        bestPrio = prio;
      }
    }
    return best;
  }

  /** Some runnable vCPU waits only for its cap's next period. */
  private capWaiting(): boolean {
    for (const v of this.allVcpus()) if (this.runnable(v) && this.capLeft(v) <= 0) return true;
    return false;
  }

  /** Ends the current slice: the vCPU goes to the back of the round robin. */
  private endSlice(now: number, why: string): void {
    const v = this.current;
    if (v === undefined) return;
    this.current = undefined;
    if (v.runstate === RUNSTATE_running) v.runstate = v.online ? RUNSTATE_runnable : RUNSTATE_offline;
    if (v.domain.state === "running") v.writeRunstateArea();
    const i = this.queue.indexOf(v);
    if (i >= 0) this.queue.splice(i, 1);
    this.queue.push(v);
    this.onSlice?.(v, this.sliceStart, now, why);
  }

  /** Why the current slice must end before another chunk, or undefined. */
  private sliceOver(v: Vcpu, now: number): string | undefined {
    if (!this.runnable(v)) return v.blocked ? "blocked" : "stopped";
    if (this.preempt) return "preempted";
    if (now >= this.sliceEnd) return "slice";
    if (this.capLeft(v) <= 0) return "cap";
    return undefined;
  }

  /**
   * Runs one chunk of the current slice, starting a new slice (pick) when there is none;
   * returns false when nothing could run.
   */
  runSlice(): boolean {
    const xen = this.xen;
    const clock = xen.clock;
    const now = clock.now();
    this.processTimers(now);
    this.newPeriod(now);
    let v = this.current;
    if (v !== undefined) {
      const why = this.sliceOver(v, now);
      if (why !== undefined) {
        this.endSlice(now, why);
        v = undefined;
      }
    }
    this.preempt = false;
    const startsSlice = v === undefined;
    if (v === undefined) {
      v = this.pick(now);
      if (!v) return false;
      this.current = v;
      this.sliceStart = now;
      this.sliceEnd = now + CSCHED_SLICE_NS;
      v.boosted = false;
    }
    // The chunk ends at the slice's end, the next timer, or the cap (S2).
    let end = Math.min(this.sliceEnd, this.nextDeadline());
    if (this.cap.get(v.domain.id))
      end = Math.min(end, now + this.capLeft(v), this.periodStart + CSCHED_PERIOD_NS);
    const span = Math.max(1, end - now);
    const budget = clock.deterministic
      ? Math.min(Math.ceil(span / NS_PER_INSTRUCTION), this.chunk)
      : this.chunk;
    v.runstate = RUNSTATE_running;
    // Switching between vCPUs reloads the data segments (Xen's load_segments, entry.ts) and
    // writes the runstate area of the vCPU switched in.
    if (this.lastRun !== v) {
      if (this.lastRun !== undefined) v.reloadSegments = true;
      this.lastRun = v;
    }
    if (startsSlice) v.writeRunstateArea();
    v.sliceStartRetired = v.cpu.retired;
    v.sliceStartNs = now;
    this.yieldRequested = false;
    const before = v.cpu.retired;
    const wallStart = performance.now();
    runVcpu(v, budget);
    const ran = v.cpu.retired - before;
    if (clock.deterministic) this.chunk = Math.min(DET_CHUNK, this.chunk * 2);
    else this.adaptChunk(ran, performance.now() - wallStart);
    if (clock.deterministic) clock.advance(ran * NS_PER_INSTRUCTION);
    const after = clock.now();
    const used = Math.max(after - now, ran * NS_PER_INSTRUCTION);
    v.credit -= used;
    this.usedInPeriod.set(v.domain.id, (this.usedInPeriod.get(v.domain.id) ?? 0) + used);
    this.ranNs.set(v, (this.ranNs.get(v) ?? 0) + used);
    v.sliceStartRetired = v.cpu.retired;
    if (this.current === v && (this.yieldRequested || !this.runnable(v))) {
      this.endSlice(
        after,
        v.blocked ? "blocked" : this.preempt ? "preempted" : this.runnable(v) ? "yield" : "stopped",
      );
    }
    return true;
  }

  /** Keeps one runVcpu call near CHUNK_MS of wall time (S3). */
  private adaptChunk(ran: number, ms: number): void {
    if (ran < 500 || ms < 0.05) return;
    const want = (ran / ms) * CHUNK_MS;
    // Shrink at once when a chunk was too slow; grow gradually.
    const next = want < this.chunk ? want : (this.chunk + want) / 2;
    this.chunk = Math.round(Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, next)));
  }

  /** True while some domain is running. */
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
      if (options.maxVirtualNs !== undefined && this.xen.clock.now() - vstart > options.maxVirtualNs)
        return "timeout";
      const ran = this.runSlice();
      if (!ran) {
        let deadline = this.nextDeadline();
        if (this.capWaiting()) deadline = Math.min(deadline, this.periodStart + CSCHED_PERIOD_NS);
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
