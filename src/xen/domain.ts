// A domain: its vCPUs, its memory (frames owned in the frame table, the p2m size), its
// shared_info page, event channels, grant table and lifecycle.
//
// Lifecycle (Xen's): created (paused, pauseCount 1) → unpause → running ⇄ paused (pauseCount
// counts nested pauses) → shutdown(reason) (vCPUs stop; the toolstack decides: destroy, or
// restart per on_poweroff/on_reboot/on_crash) → destroyed (frames reclaimed, dead).
//
// Invariants:
// - D1. A shutdown reason is any number the guest gave (Xen keeps `(u8)reason` for
//   sched_op_compat): known ones have names, unknown ones are kept as numbers, never an error.
// - D2. After shutdown no vCPU of the domain runs again; after destroy none of its frames is
//   owned by it and its id is free.
// - D3. A crash (SHUTDOWN_crash) always carries a reason string in `crashReason`, logged once.

import { FRAME_SIZE } from "../machine/frames.ts";
import { EventChannels } from "./events.ts";
import type { Xen } from "./hypervisor.ts";
import { SHUTDOWN_crash, SHUTDOWN_NAMES } from "./public.ts";
import { Vcpu } from "./vcpu.ts";
import { PerDomainArea } from "./xenspace.ts";

export type GuestType = "pv32" | "pv64";
export type DomainState = "running" | "paused" | "shutdown" | "dead";

export interface DomainConfig {
  name?: string;
  guestType: GuestType;
  vcpus?: number;
  /** Most pages the domain may own (memory_op maximum_reservation). */
  maxPages?: number;
  /** Emulate kernel writes to validated L2 tables like L1 writes (not Xen: GNU Mach 1.8). */
  emulateL2Writes?: boolean;
}

/** The name of a shutdown reason (D1): "poweroff" ... or "unknown(N)". */
export function shutdownReasonName(reason: number): string {
  return SHUTDOWN_NAMES[reason] ?? `unknown(${reason})`;
}

export class Domain {
  readonly id: number;
  readonly name: string;
  readonly xen: Xen;
  readonly guestType: GuestType;
  readonly is64: boolean;
  readonly is32: boolean;
  readonly vcpus: Vcpu[] = [];
  readonly sharedInfoMfn: number;
  readonly perDomain: PerDomainArea;
  readonly evtchn: EventChannels;
  /** Grant-table frames (Xen-owned, shared with the domain). */
  readonly grantFrames: number[] = [];
  grantVersion = 1;
  /** A writable reference was dropped: flush every vCPU TLB before the guest runs (mm.ts M5). */
  needTlbFlush = false;
  /** Xen frames the domain may map (shared_info, grant frames): mfn → writable. */
  readonly sharedFrames = new Map<number, boolean>();
  /** Pages the domain has (the p2m size after build) and may have. */
  nrPages = 0;
  maxPages: number;
  /** vm_assist bits. */
  vmAssist = 0;
  /** DomainConfig.emulateL2Writes (mm.ts ptwrEmulate). */
  emulateL2Writes: boolean;
  pauseCount = 1;
  state: DomainState = "paused";
  shutdownReason: number | undefined;
  crashReason: string | undefined;
  /** Everything the domain wrote with console_io, in order. */
  readonly consoleOut: string[] = [];
  /** Host input waiting for CONSOLEIO_read. */
  consoleIn: number[] = [];
  private readonly shutdownListeners: ((d: Domain) => void)[] = [];
  private readonly backendPollers: (() => void)[] = [];

  constructor(xen: Xen, id: number, config: DomainConfig) {
    this.xen = xen;
    this.id = id;
    this.name = config.name ?? `domain-${id}`;
    this.guestType = config.guestType;
    this.is64 = config.guestType === "pv64";
    this.is32 = !this.is64;
    this.maxPages = config.maxPages ?? 0;
    this.emulateL2Writes = config.emulateL2Writes ?? false;
    this.sharedInfoMfn = xen.space.alloc(1)[0];
    this.sharedFrames.set(this.sharedInfoMfn, true);
    // Every vCPU starts with events masked (builder's promise, xen-pv-abi.md §2.3).
    for (let v = 0; v < 32; v++) xen.memory.u8[this.sharedInfoMfn * FRAME_SIZE + v * 64 + 1] = 1;
    this.perDomain = new PerDomainArea(xen.space);
    this.evtchn = new EventChannels(this);
    const n = config.vcpus ?? 1;
    if (!Number.isInteger(n) || n < 1 || n > 32)
      throw new RangeError(`domain ${this.name}: ${n} vCPUs (1..32)`);
    for (let i = 0; i < n; i++) this.vcpus.push(new Vcpu(this, i));
    this.writeWallclock();
  }

  /** Machine address of shared_info. */
  get sharedInfo(): number {
    return this.sharedInfoMfn * FRAME_SIZE;
  }

  /** Writes wc_sec/wc_nsec with the wc_version protocol. */
  writeWallclock(): void {
    const u8 = this.xen.memory.u8;
    const si = this.sharedInfo;
    const ver = this.is64 ? 3072 : 2304;
    const dv = new DataView(u8.buffer, u8.byteOffset);
    const v = dv.getUint32(si + ver, true);
    dv.setUint32(si + ver, (v + 1) | 1, true);
    dv.setUint32(si + ver + 4, this.xen.clock.bootWallSec >>> 0, true);
    dv.setUint32(si + ver + 8, this.xen.clock.bootWallNsec >>> 0, true);
    dv.setUint32(si + (this.is64 ? 3084 : 2340), Math.floor(this.xen.clock.bootWallSec / 4294967296), true);
    dv.setUint32(si + ver, ((v + 1) | 1) + 1, true);
  }

  /** In-process backends (console, xenstore) that make progress when the guest yields, blocks
   * or polls (xen-pv-abi.md pitfall 30). */
  onBackendPoll(fn: () => void): void {
    this.backendPollers.push(fn);
  }

  /** Runs the backends' work (from sched_op yield/block/poll and on shutdown). */
  pollBackends(): void {
    for (const fn of this.backendPollers) fn();
  }

  onShutdown(fn: (d: Domain) => void): void {
    this.shutdownListeners.push(fn);
  }

  pause(): void {
    if (this.state === "dead") return;
    this.pauseCount++;
    if (this.state === "running") this.state = "paused";
  }

  unpause(): void {
    if (this.state === "dead" || this.pauseCount === 0) return;
    this.pauseCount--;
    if (this.pauseCount === 0 && this.state === "paused") {
      this.state = "running";
      this.xen.scheduler.wake(this);
    }
  }

  get isRunning(): boolean {
    return this.state === "running";
  }

  /** The guest (or the toolstack) shuts the domain down with a reason (D1, D2). */
  shutdown(reason: number, why?: string): void {
    if (this.state === "shutdown" || this.state === "dead") return;
    this.shutdownReason = reason >>> 0;
    if (reason === SHUTDOWN_crash) {
      this.crashReason = why ?? "the guest reported a crash";
      this.xen.log(`domain ${this.id} (${this.name}) crashed: ${this.crashReason}`);
    } else {
      this.xen.log(`domain ${this.id} (${this.name}) shut down: ${shutdownReasonName(this.shutdownReason)}`);
    }
    this.state = "shutdown";
    for (const v of this.vcpus) v.cpu.requestExit();
    this.pollBackends(); // the last console output (a panic message) is kept
    for (const fn of this.shutdownListeners) fn(this);
  }

  /** Crashes the domain (D3): a misbehaving guest ends here, never in a host exception. */
  crash(why: string): void {
    this.shutdown(SHUTDOWN_crash, why);
  }

  /** Releases everything (D2). */
  destroy(): void {
    if (this.state === "dead") return;
    if (this.state !== "shutdown") {
      this.state = "shutdown";
      for (const v of this.vcpus) v.cpu.requestExit();
    }
    this.state = "dead";
    this.xen.destroyDomain(this);
  }
}
