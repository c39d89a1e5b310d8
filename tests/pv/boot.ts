// Boots a PV kernel image in a fresh hypervisor: parse, plan, build (src/dom0/builder), pin the
// bootstrap tables, load the entry state, run. The glue between the builder and the hypervisor
// that a toolstack (`tsxen run`) will own; tests use it directly.

import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { parseElf } from "../../src/dom0/builder/elf.ts";
import { planLayout, writeInitialDomain } from "../../src/dom0/builder/layout.ts";
import { checkXenImage, findXenMetadata } from "../../src/dom0/builder/xen-notes.ts";
import { ConsoleBackend } from "../../src/dom0/console/backend.ts";
import { XenStoreRing } from "../../src/dom0/xenstore/ring.ts";
import { XenStore } from "../../src/dom0/xenstore/store.ts";
import { PGT_L3, PGT_L4 } from "../../src/machine/frames.ts";
import type { Domain } from "../../src/xen/domain.ts";
import { Xen, type XenOptions } from "../../src/xen/hypervisor.ts";
import { newBaseptr, pinTable } from "../../src/xen/mm.ts";

export interface BootOptions extends XenOptions {
  memoryMiB?: number;
  cmdline?: string;
  /** Virtual time limit (deterministic clock), default 10 s. */
  maxVirtualNs?: number;
  /** Wall time limit, default 60 s. */
  timeoutMs?: number;
  /** DomainConfig.emulateL2Writes (GNU Mach 1.8). */
  emulateL2Writes?: boolean;
  /** Receives the PV console ring's output as the backend drains it. */
  consoleSink?: (text: string) => void;
  /** A hypervisor to build into (to run several domains). */
  xen?: Xen;
  /** A xenstore tree shared by several domains (default: a fresh one). */
  store?: XenStore;
  /** vCPUs of the domain (default 1); vCPU 0 starts, the others wait for VCPUOP_initialise. */
  vcpus?: number;
}

export interface Booted {
  xen: Xen;
  domain: Domain;
  /** console_io output followed by nothing else (Xen's own console). */
  console: () => string;
  /** The PV console backend (the guest's console ring). */
  pvConsole: ConsoleBackend;
  /** The xenstore ring server for this domain. */
  xenstore: XenStoreRing;
}

/** Builds the domain (paused) from an image file. */
export function buildPv(path: string, options: BootOptions = {}): Booted {
  let bytes = new Uint8Array(readFileSync(path));
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = new Uint8Array(gunzipSync(bytes)); // Debian's GNU Mach
  const elf = parseElf(bytes, path);
  const params = checkXenImage(elf, findXenMetadata(elf));
  const xen = options.xen ?? new Xen({ memoryBytes: 64 * 1024 * 1024, deterministic: true, ...options });
  const nrPages = (options.memoryMiB ?? 8) * 256;
  const d = xen.createDomain({
    guestType: params.is64 ? "pv64" : "pv32",
    emulateL2Writes: options.emulateL2Writes,
    maxPages: nrPages,
    vcpus: options.vcpus,
    name: path.split("/").pop(),
  });
  const pvConsole = new ConsoleBackend(d, { sink: options.consoleSink });
  const consolePort = pvConsole.port;
  const store = options.store ?? new XenStore();
  const xenstore = new XenStoreRing(d, store);
  const storePort = xenstore.port;
  const plan = planLayout({ params, nrPages, source: path });
  const built = writeInitialDomain({
    domid: d.id,
    plan,
    elf,
    params,
    cmdline: options.cmdline,
    sharedInfoMaddr: d.sharedInfo,
    storeEvtchn: storePort,
    consoleEvtchn: consolePort,
    allocator: xen.allocator,
    memory: xen.memory,
  });
  for (const mfn of built.p2m) xen.space.syncM2P(mfn);
  pvConsole.attach(built.consoleMfn);
  xenstore.attach(built.storeMfn);
  store.introduceDomain(d.id, {
    name: d.name,
    memoryKiB: nrPages * 4,
    storeMfn: built.storeMfn,
    storePort,
    consoleMfn: built.consoleMfn,
    consolePort,
  });
  d.nrPages = nrPages;
  const top = built.topTableMfn;
  const rc = pinTable(d, top, params.is64 ? PGT_L4 : PGT_L3);
  if (rc !== 0) throw new Error(`${path}: pinning the bootstrap page tables failed (${rc})`);
  const v = d.vcpus[0];
  const rc2 = newBaseptr(v, top);
  if (rc2 !== 0) throw new Error(`${path}: installing the bootstrap page tables failed (${rc2})`);
  d.vmAssist = built.entry.vmAssist;
  v.setEntryState(built.entry);
  v.updateTime();
  const console = () => d.consoleOut.join("");
  return { xen, domain: d, console, pvConsole, xenstore };
}

/** Builds and runs a domain until it stops (or a limit passes). */
export async function bootPv(path: string, options: BootOptions = {}): Promise<Booted> {
  const b = buildPv(path, options);
  b.domain.unpause();
  await b.xen.scheduler.run({
    maxVirtualNs: options.maxVirtualNs ?? 300e6,
    timeoutMs: options.timeoutMs ?? 30_000,
  });
  return b;
}
