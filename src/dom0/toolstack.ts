// The toolstack: what xl and libxl do for a PV domain, in-process. From a validated xl.cfg
// (xlcfg.ts) and a loaded kernel (builder/) it creates the domain in the hypervisor, builds its
// memory, connects its console and xenstore backends, pins the bootstrap page tables, loads
// the entry state and unpauses it; when the domain shuts down it carries out the configured
// on_poweroff / on_reboot / on_watchdog / on_crash action.
//
// Invariants:
// - T1. A domain that fails to build is destroyed before the error reaches the caller: no
//   half-built domain, no frame of it, no xenstore node of it is left behind.
// - T2. Shutdown actions run outside the guest's own execution: Domain.shutdown only queues
//   the domain (`pending`), and `settle()` (called by the run loop between scheduler runs)
//   destroys, restarts or preserves it. A domain never destroys itself from inside its vCPU.
// - T3. Every console byte the guest produced before it ended reaches the sink (the backend is
//   drained at shutdown, before the action runs).

import { writeFileSync } from "node:fs";
import { PGT_L3, PGT_L4 } from "../machine/frames.ts";
import type { Domain } from "../xen/domain.ts";
import { shutdownReasonName } from "../xen/domain.ts";
import type { Xen } from "../xen/hypervisor.ts";
import { newBaseptr, pinTable } from "../xen/mm.ts";
import {
  SHUTDOWN_crash,
  SHUTDOWN_poweroff,
  SHUTDOWN_reboot,
  SHUTDOWN_suspend,
  SHUTDOWN_watchdog,
} from "../xen/public.ts";
import { buildPvDomain, type PvKernel } from "./builder/index.ts";
import { ConsoleBackend } from "./console/backend.ts";
import type { XlAction } from "./xlcfg.ts";
import { XenStoreRing } from "./xenstore/ring.ts";
import { XenStore } from "./xenstore/store.ts";

/** Everything needed to (re)build one PV domain. */
export interface PvDomainSpec {
  name: string;
  kernel: PvKernel;
  /** The ramdisk (initrd) or multiboot module, if any. */
  module?: Uint8Array;
  /** MiB of RAM at boot, and the most it may grow to. */
  memoryMiB: number;
  maxmemMiB?: number;
  vcpus?: number;
  cmdline?: string;
  onPoweroff?: XlAction;
  onReboot?: XlAction;
  onCrash?: XlAction;
  onWatchdog?: XlAction;
  /** DomainConfig.emulateL2Writes: a tsxen extension GNU Mach 1.8 needs (docs/xen.md). */
  emulateL2Writes?: boolean;
}

/** A domain the toolstack manages, with its backends. */
export interface ManagedDomain {
  spec: PvDomainSpec;
  domain: Domain;
  pvConsole: ConsoleBackend;
  xenstore: XenStoreRing;
  /** How many times this spec has been (re)started before this incarnation. */
  restarts: number;
}

/** How a managed domain's life ended (after its action ran). */
export interface DomainEnd {
  name: string;
  domid: number;
  /** The shutdown reason (SHUTDOWN_*, or whatever number the guest gave). */
  reason: number;
  reasonName: string;
  crashReason?: string;
  action: XlAction;
}

export interface ToolstackOptions {
  /** The xenstore tree (default: a fresh one). */
  store?: XenStore;
  /** Console output of a domain: the PV console ring and console_io, in order (T3). */
  console?: (m: ManagedDomain, text: string) => void;
  /** Toolstack events (restarts, actions): one line each. */
  log?: (line: string) => void;
  /** Where coredump-* actions write `NAME.core` (default: the current directory). */
  dumpDir?: string;
  /** Restarts of one spec before on_reboot=restart gives up (xl's reboot-loop guard). */
  maxRestarts?: number;
}

/** Refuses what a spec cannot be before anything is allocated. */
function checkSpec(spec: PvDomainSpec): void {
  if (!Number.isInteger(spec.memoryMiB) || spec.memoryMiB < 1)
    throw new Error(`domain ${spec.name}: memory ${spec.memoryMiB} MiB is not a positive whole number`);
  const maxmem = spec.maxmemMiB ?? spec.memoryMiB;
  if (!Number.isInteger(maxmem) || maxmem < spec.memoryMiB)
    throw new Error(`domain ${spec.name}: maxmem ${maxmem} MiB is below memory ${spec.memoryMiB} MiB`);
  const vcpus = spec.vcpus ?? 1;
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > 32)
    throw new Error(`domain ${spec.name}: ${vcpus} vCPUs (a PV domain has 1..32)`);
}

export class Toolstack {
  readonly xen: Xen;
  readonly store: XenStore;
  readonly domains = new Map<number, ManagedDomain>();
  /** Domains that shut down and whose action has not run yet (T2). */
  private readonly pending: ManagedDomain[] = [];
  /** How each managed domain ended, in order. */
  readonly ended: DomainEnd[] = [];
  private readonly options: ToolstackOptions;

  constructor(xen: Xen, options: ToolstackOptions = {}) {
    this.xen = xen;
    this.store = options.store ?? new XenStore();
    this.options = options;
  }

  /** Creates, builds and (unless `paused`) unpauses a PV domain; errors name the problem (T1). */
  create(spec: PvDomainSpec, options: { paused?: boolean; restarts?: number } = {}): ManagedDomain {
    checkSpec(spec);
    const xen = this.xen;
    const nrPages = spec.memoryMiB * 256;
    const params = spec.kernel.params;
    const d = xen.createDomain({
      name: spec.name,
      guestType: params.is64 ? "pv64" : "pv32",
      vcpus: spec.vcpus ?? 1,
      maxPages: (spec.maxmemMiB ?? spec.memoryMiB) * 256,
      emulateL2Writes: spec.emulateL2Writes,
    });
    let introduced = false;
    try {
      // The backends bind their ports first: start_info carries them.
      let managed: ManagedDomain | undefined;
      const sink = this.options.console;
      const pvConsole = new ConsoleBackend(d, { sink: sink && ((text) => managed && sink(managed, text)) });
      const xenstore = new XenStoreRing(d, this.store);
      managed = { spec, domain: d, pvConsole, xenstore, restarts: options.restarts ?? 0 };
      const { built } = buildPvDomain(spec.kernel, {
        domid: d.id,
        nrPages,
        module: spec.module,
        cmdline: spec.cmdline,
        sharedInfoMaddr: d.sharedInfo,
        storeEvtchn: xenstore.port,
        consoleEvtchn: pvConsole.port,
        allocator: xen.allocator,
        memory: xen.memory,
      });
      for (const mfn of built.p2m) xen.space.syncM2P(mfn);
      pvConsole.attach(built.consoleMfn);
      xenstore.attach(built.storeMfn);
      this.store.introduceDomain(d.id, {
        name: spec.name,
        memoryKiB: nrPages * 4,
        storeMfn: built.storeMfn,
        storePort: xenstore.port,
        consoleMfn: built.consoleMfn,
        consolePort: pvConsole.port,
        vcpus: spec.vcpus ?? 1,
      });
      introduced = true;
      d.nrPages = nrPages;
      const top = built.topTableMfn;
      const rc = pinTable(d, top, params.is64 ? PGT_L4 : PGT_L3);
      if (rc !== 0) throw new Error(`${spec.kernel.source}: pinning the bootstrap page tables failed (${rc})`);
      const v = d.vcpus[0];
      const rc2 = newBaseptr(v, top);
      if (rc2 !== 0) throw new Error(`${spec.kernel.source}: installing the bootstrap page tables failed (${rc2})`);
      d.vmAssist = built.entry.vmAssist;
      v.setEntryState(built.entry);
      v.updateTime();
      this.domains.set(d.id, managed);
      const m = managed;
      d.onShutdown(() => this.pending.push(m));
      if (!options.paused) d.unpause();
      return managed;
    } catch (e) {
      if (introduced) this.store.releaseDomain(d.id);
      d.destroy();
      throw e;
    }
  }

  /** True when some domain has shut down and waits for its action (the run loop's cue). */
  get hasPending(): boolean {
    return this.pending.length > 0;
  }

  /** The managed domains that are not dead. */
  get live(): ManagedDomain[] {
    return [...this.domains.values()].filter((m) => m.domain.state !== "dead");
  }

  /** Runs the shutdown actions of every domain that has shut down (T2). */
  settle(): void {
    while (this.pending.length > 0) {
      const m = this.pending.shift()!;
      this.finish(m);
    }
  }

  /** Destroys a domain at the toolstack's request (xl destroy). */
  destroy(m: ManagedDomain): void {
    if (m.domain.state === "dead") return;
    m.domain.destroy();
    this.store.releaseDomain(m.domain.id);
    this.domains.delete(m.domain.id);
  }

  private actionFor(m: ManagedDomain, reason: number): XlAction {
    const s = m.spec;
    if (reason === SHUTDOWN_poweroff) return s.onPoweroff ?? "destroy";
    if (reason === SHUTDOWN_reboot) return s.onReboot ?? "restart";
    if (reason === SHUTDOWN_crash) return s.onCrash ?? "destroy";
    if (reason === SHUTDOWN_watchdog) return s.onWatchdog ?? "destroy";
    // A suspended domain waits for the toolstack to save it (xl keeps it); any other number is
    // a reason too (Domain D1) and ends the domain as libxl does for unknown reasons.
    if (reason === SHUTDOWN_suspend) return "preserve";
    return "destroy";
  }

  private finish(m: ManagedDomain): void {
    const d = m.domain;
    if (d.state === "dead") return;
    m.pvConsole.drain(); // T3
    const reason = d.shutdownReason ?? SHUTDOWN_crash;
    let action = this.actionFor(m, reason);
    const end: DomainEnd = {
      name: m.spec.name,
      domid: d.id,
      reason,
      reasonName: shutdownReasonName(reason),
      crashReason: d.crashReason,
      action,
    };
    const log = this.options.log;
    if (action === "coredump-destroy" || action === "coredump-restart") {
      const file = `${this.options.dumpDir ?? "."}/${m.spec.name}.core`;
      try {
        writeFileSync(file, this.coreImage(d));
        log?.(`domain ${d.id} (${m.spec.name}): memory written to ${file}`);
      } catch (e) {
        log?.(`domain ${d.id} (${m.spec.name}): writing ${file} failed: ${(e as Error).message}`);
      }
      action = action === "coredump-destroy" ? "destroy" : "restart";
    }
    if (action === "preserve") {
      log?.(`domain ${d.id} (${m.spec.name}) ${end.reasonName}: preserved (on_${end.reasonName} = preserve)`);
      this.ended.push(end);
      return;
    }
    if (action === "rename-restart") {
      // The old domain stays (shut down) for inspection; a new incarnation takes the name.
      this.ended.push(end);
      this.restart(m, `domain ${d.id} kept as it ended`);
      return;
    }
    this.destroy(m);
    this.ended.push(end);
    if (action === "restart" || action === "soft-reset") this.restart(m, `domain ${d.id} destroyed`);
  }

  private restart(m: ManagedDomain, what: string): void {
    const limit = this.options.maxRestarts ?? 100;
    const log = this.options.log;
    if (m.restarts + 1 > limit) {
      log?.(`domain ${m.spec.name}: ${limit} restarts; not restarting again`);
      return;
    }
    const next = this.create(m.spec, { restarts: m.restarts + 1 });
    log?.(`domain ${m.spec.name}: ${what}, restarted as domain ${next.domain.id}`);
  }

  /**
   * The domain's memory in PFN order (from the frame table's owner and machine-to-phys), one
   * 4 KiB page per PFN below nrPages: a raw image, not Xen's ELF core format (`xl dump-core`
   * files are not produced yet).
   */
  private coreImage(d: Domain): Uint8Array {
    const pages = d.nrPages;
    const out = new Uint8Array(pages * 4096);
    const u8 = this.xen.memory.u8;
    const t = this.xen.table;
    for (let mfn = 0; mfn < t.frames; mfn++) {
      if (t.owner[mfn] !== d.id) continue;
      const pfn = t.m2p[mfn];
      if (pfn >= 0 && pfn < pages) out.set(u8.subarray(mfn * 4096, mfn * 4096 + 4096), pfn * 4096);
    }
    return out;
  }
}
