// The PV domain builder's front door: from a kernel file's bytes to a checked image, and from a
// checked image to a domain's initial memory. See docs/pv-builder.md for each step.

import type { FrameAllocator } from "../../machine/frames.ts";
import type { MachineMemory } from "../../machine/memory.ts";
import { type ElfImage, parseElf } from "./elf.ts";
import { type BuiltDomain, type LayoutPlan, planLayout, writeInitialDomain } from "./layout.ts";
import { unwrapKernel } from "./unwrap.ts";
import { checkXenImage, XENFEAT_NAMES, type XenImageParams, type XenMetadata } from "./xen-notes.ts";

export interface PvKernel {
  source: string;
  /** Layers peeled off the file, outermost first (e.g. ["gzip"], ["bzImage", "xz"]). */
  steps: string[];
  elf: ElfImage;
  meta: XenMetadata;
  params: XenImageParams;
}

/** Unwraps, parses and checks a PV kernel; every problem is an Error naming `source`. */
export async function loadPvKernel(bytes: Uint8Array, source: string): Promise<PvKernel> {
  const { elf: elfBytes, steps } = await unwrapKernel(bytes, source);
  const elf = parseElf(elfBytes, source);
  const params = checkXenImage(elf);
  return { source, steps, elf, meta: params.meta, params };
}

export interface PvBuildOptions {
  domid: number;
  /** Pages of RAM (memory= MiB × 256). */
  nrPages: number;
  module?: Uint8Array;
  cmdline?: string;
  sharedInfoMaddr: number;
  storeEvtchn: number;
  consoleEvtchn: number;
  flags?: number;
  allocator: FrameAllocator;
  memory: MachineMemory;
}

/** Plans the layout and writes the domain's initial memory (nothing is allocated on error). */
export function buildPvDomain(
  kernel: PvKernel,
  options: PvBuildOptions,
): { plan: LayoutPlan; built: BuiltDomain } {
  const plan = planLayout({
    params: kernel.params,
    nrPages: options.nrPages,
    moduleBytes: options.module?.length,
    source: kernel.source,
  });
  const built = writeInitialDomain({ ...options, plan, elf: kernel.elf, params: kernel.params });
  return { plan, built };
}

const hex = (v: bigint | number): string => `0x${v.toString(16)}`;

/** A human-readable account of a kernel's metadata and derived parameters, one fact a line. */
export function describePvKernel(k: PvKernel): string[] {
  const { meta, params, elf } = k;
  const features = (bits: number) => XENFEAT_NAMES.filter((_, i) => bits & (1 << i)).join("|") || "-";
  const lines = [
    `file: ${k.source}${k.steps.length ? ` (${k.steps.join(" → ")})` : ""}`,
    `ELF${elf.elfClass}, machine ${elf.machine}, e_entry ${hex(elf.entry)}`,
    `metadata from: ${meta.source}${meta.foreignNotes ? ` (${meta.foreignNotes} notes of other owners ignored)` : ""}`,
  ];
  if (meta.legacy !== undefined) lines.push(`__xen_guest: ${meta.legacy}`);
  for (const n of meta.notes) lines.push(`note ${n.typeName} (${n.descsz} bytes)`);
  lines.push(
    `guest type: ${params.guestType}`,
    `GUEST_OS "${meta.guestOs ?? ""}", GUEST_VERSION "${meta.guestVersion ?? ""}", XEN_VERSION "${meta.xenVersion ?? ""}", LOADER "${meta.loader ?? ""}"`,
    `VIRT_BASE ${hex(params.virtBase)}, PADDR_OFFSET ${hex(params.paddrOffset)}, image ${hex(params.kernelStart)}–${hex(params.kernelEnd)}, entry ${hex(params.entry)}`,
    `hypercall page: ${params.hypercallPage === undefined ? "none" : hex(params.hypercallPage)}`,
    `PAE: ${meta.pae}; features supported ${features(meta.featuresSupported)}, required ${features(meta.featuresRequired)}`,
  );
  if (params.initP2M !== undefined) lines.push(`INIT_P2M ${hex(params.initP2M)}`);
  if (params.modStartPfn) lines.push("MOD_START_PFN: module given by PFN, unmapped");
  if (params.hvStartLow !== undefined) lines.push(`hypervisor hole from ${hex(params.hvStartLow)}`);
  for (const s of params.loadSegments) {
    lines.push(
      `PT_LOAD paddr ${hex(s.paddr)} vaddr ${hex(s.vaddr)} filesz ${hex(s.filesz)} memsz ${hex(s.memsz)} flags ${s.flags}`,
    );
  }
  for (const w of meta.warnings) lines.push(`warning: ${w}`);
  return lines;
}
