// Boots a PV kernel image file in a fresh (deterministic) hypervisor through the toolstack
// (src/dom0/toolstack.ts, what `tsxen run` uses), synchronously, for tests and tracing tools.

import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { parseElf } from "../../src/dom0/builder/elf.ts";
import type { PvKernel } from "../../src/dom0/builder/index.ts";
import { checkXenImage, findXenMetadata } from "../../src/dom0/builder/xen-notes.ts";
import type { ConsoleBackend } from "../../src/dom0/console/backend.ts";
import { Toolstack } from "../../src/dom0/toolstack.ts";
import type { XenStoreRing } from "../../src/dom0/xenstore/ring.ts";
import type { XenStore } from "../../src/dom0/xenstore/store.ts";
import type { Domain } from "../../src/xen/domain.ts";
import { Xen, type XenOptions } from "../../src/xen/hypervisor.ts";

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

/** Reads, unwraps (gzip only: synchronous) and checks a PV kernel image file. */
export function loadKernelSync(path: string): PvKernel {
  let bytes = new Uint8Array(readFileSync(path));
  const steps: string[] = [];
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    bytes = new Uint8Array(gunzipSync(bytes)); // Debian's GNU Mach
    steps.push("gzip");
  }
  const elf = parseElf(bytes, path);
  const params = checkXenImage(elf, findXenMetadata(elf));
  return { source: path, steps, elf, meta: params.meta, params };
}

/** Builds the domain (paused) from an image file, through the toolstack. */
export function buildPv(path: string, options: BootOptions = {}): Booted {
  const xen = options.xen ?? new Xen({ memoryBytes: 64 * 1024 * 1024, deterministic: true, ...options });
  const toolstack = new Toolstack(xen, {
    store: options.store,
    console: options.consoleSink && ((_m, text) => options.consoleSink?.(text)),
  });
  const m = toolstack.create(
    {
      name: path.split("/").pop() ?? path,
      kernel: loadKernelSync(path),
      memoryMiB: options.memoryMiB ?? 8,
      cmdline: options.cmdline,
      vcpus: options.vcpus,
      emulateL2Writes: options.emulateL2Writes,
    },
    { paused: true },
  );
  const d = m.domain;
  const console = () => d.consoleOut.join("");
  return { xen, domain: d, console, pvConsole: m.pvConsole, xenstore: m.xenstore };
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
