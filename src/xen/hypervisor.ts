// The hypervisor: machine memory and its frame table, Xen's own address-space pieces, the
// clock, the domains and the scheduler that runs their vCPUs. One instance is one machine.
//
// Invariants:
// - H1. Every frame is either free, a domain's, or DOMID_XEN's (the frame table's F1); frames
//   allocated here for Xen's structures are released when their owner (domain, vCPU) dies.
// - H2. Domain ids are 1..0x7FEF, never reused while the domain exists; 0 is the (virtual,
//   in-process) control domain that owns the backends.
// - H3. Nothing a guest does makes a method of this class throw: guest misbehaviour ends in
//   Domain.crash with the reason logged.

import {
  DOMID_XEN,
  FLAG_ALLOCATED,
  FRAME_SIZE,
  FrameAllocator,
  FrameTable,
  PGT_NONE,
} from "../machine/frames.ts";
import { MachineMemory } from "../machine/memory.ts";
import { Domain, type DomainConfig } from "./domain.ts";
import { releaseMaptrack, revokeGrantsOf } from "./hypercalls/grantmap.ts";
import { Scheduler } from "./scheduler.ts";
import { type Clock, NS_PER_INSTRUCTION, RealClock, VirtualClock } from "./time.ts";
import type { Vcpu } from "./vcpu.ts";
import { XenSpace } from "./xenspace.ts";

export interface XenOptions {
  /** Machine memory in bytes (default 256 MiB), or an existing memory. */
  memoryBytes?: number;
  memory?: MachineMemory;
  /** Seed of the frame allocator's shuffle. */
  seed?: number;
  /** true: the virtual (deterministic) clock; false: wall-clock time. Default false. */
  deterministic?: boolean;
  clock?: Clock;
  /** Hypervisor log lines (crashes, shutdowns). Default: nothing. */
  log?: (line: string) => void;
  /** console_io output of a domain. */
  console?: (domain: Domain, text: string) => void;
  /** Block-compiler threshold for the vCPUs' processors (0 = interpreter). */
  jitThreshold?: number;
}

export class Xen {
  readonly memory: MachineMemory;
  readonly table: FrameTable;
  readonly allocator: FrameAllocator;
  readonly space: XenSpace;
  readonly clock: Clock;
  readonly scheduler: Scheduler;
  readonly domains = new Map<number, Domain>();
  readonly jitThreshold: number | undefined;
  readonly logLines: string[] = [];
  private readonly logSink: ((line: string) => void) | undefined;
  private readonly consoleSink: ((d: Domain, text: string) => void) | undefined;
  private nextDomid = 1;
  /** Debug hooks (tests/pv/trace-mach.ts): every hypercall with its result, every exit. */
  traceHypercall: ((v: Vcpu, nr: number, args: [number, number][], result: number) => void) | undefined;
  traceExit: ((v: Vcpu, code: number) => void) | undefined;

  constructor(options: XenOptions = {}) {
    this.memory = options.memory ?? new MachineMemory(options.memoryBytes ?? 256 * 1024 * 1024);
    this.table = FrameTable.forMemory(this.memory);
    this.allocator = new FrameAllocator(this.table, { memory: this.memory, seed: options.seed ?? 1 });
    this.space = new XenSpace(this.memory, this.table, this.allocator);
    this.clock = options.clock ?? (options.deterministic ? new VirtualClock() : new RealClock());
    this.logSink = options.log;
    this.consoleSink = options.console;
    this.jitThreshold = options.jitThreshold;
    this.scheduler = new Scheduler(this);
  }

  log(line: string): void {
    this.logLines.push(line);
    if (this.logLines.length > 1000) this.logLines.shift();
    this.logSink?.(line);
  }

  /** console_io output (allowed for every domain, xen-pv-abi.md §4.4). */
  consoleWrite(d: Domain, text: string): void {
    d.consoleOut.push(text);
    this.consoleSink?.(d, text);
  }

  createDomain(config: DomainConfig): Domain {
    let id = this.nextDomid;
    while (this.domains.has(id)) id = id >= 0x7fef ? 1 : id + 1;
    this.nextDomid = id >= 0x7fef ? 1 : id + 1;
    const d = new Domain(this, id, config);
    this.domains.set(id, d);
    return d;
  }

  /** Frees a dead domain's frames and Xen's frames kept for it (H1). */
  destroyDomain(d: Domain): void {
    releaseMaptrack(d);
    revokeGrantsOf(d);
    this.domains.delete(d.id);
    this.scheduler.remove(d);
    const t = this.table;
    const mine: number[] = [];
    for (let mfn = 0; mfn < t.frames; mfn++) if (t.owner[mfn] === d.id) mine.push(mfn);
    this.allocator.reclaimDomain(d.id);
    for (const mfn of mine) this.space.syncM2P(mfn);
    // Xen frames shared with it may still carry references from its (now gone) page tables.
    for (const mfn of d.sharedFrames.keys()) this.forceFree(mfn);
    for (const v of d.vcpus) {
      this.forceFree(v.stateMfn);
      if (v.compatL4) this.forceFree(v.compatL4);
    }
    this.forceFree(d.perDomain.l3);
    this.forceFree(d.perDomain.l2);
    for (const mfn of d.perDomain.l1) this.forceFree(mfn);
  }

  /** Frees a Xen frame whatever references a dead domain left on it. */
  private forceFree(mfn: number): void {
    const t = this.table;
    if (t.owner[mfn] !== DOMID_XEN) return;
    t.count[mfn] = 1;
    t.typeCount[mfn] = 0;
    t.type[mfn] = PGT_NONE;
    t.flags[mfn] = FLAG_ALLOCATED;
    this.allocator.release(mfn);
  }

  /** Points vCPU v's GDT window at its guest frames and Xen's reserved page. */
  mapGdt(v: Vcpu): void {
    const d = v.domain;
    d.perDomain.mapGdt(v.id, v.gdtFrames, d.is64 ? this.space.gdtXen64 : this.space.gdtXen32);
    v.cpu.flushTlb(false);
  }

  /** The virtual TSC of a vCPU (1 GHz, equal to system time; time.ts). */
  tscFor(v: Vcpu): number {
    const base = this.clock.now();
    if (!this.clock.deterministic) return base;
    return base + (v.cpu.retired - v.sliceStartRetired) * NS_PER_INSTRUCTION;
  }

  /**
   * System time now, as a running vCPU would read it: with the deterministic clock, time moves
   * by the instructions the vCPU in its slice has retired so far (the clock itself advances at
   * the end of the slice).
   */
  now(): number {
    const cur = this.scheduler.current;
    if (!this.clock.deterministic || !cur) return this.clock.now();
    return this.clock.now() + (cur.cpu.retired - cur.sliceStartRetired) * NS_PER_INSTRUCTION;
  }

  /** Machine byte address of a frame. */
  maddr(mfn: number): number {
    return mfn * FRAME_SIZE;
  }
}
