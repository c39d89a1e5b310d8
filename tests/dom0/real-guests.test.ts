// The builder's view of the real GNU Mach images from Debian (fetched by scripts/fetch-guests.sh;
// skipped where they cannot be fetched). The expected values are the images' actual metadata,
// as recorded in docs/pv-builder.md.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { parseElf } from "../../src/dom0/builder/elf.ts";
import { describePvKernel, loadPvKernel } from "../../src/dom0/builder/index.ts";
import { hypercallPageBytes, planLayout, writeInitialDomain } from "../../src/dom0/builder/layout.ts";
import { unwrapKernel } from "../../src/dom0/builder/unwrap.ts";
import { checkXenImage, findXenMetadata } from "../../src/dom0/builder/xen-notes.ts";
import { FrameAllocator, FrameTable } from "../../src/machine/frames.ts";
import { MachineMemory } from "../../src/machine/memory.ts";
import { fetchGuest } from "../framework/guests.ts";

async function load(name: "gnumach-i386" | "gnumach-amd64") {
  const path = fetchGuest(name);
  if (!path) return undefined;
  const unwrapped = await unwrapKernel(readFileSync(path), path);
  const elf = parseElf(unwrapped.elf, path);
  const meta = findXenMetadata(elf);
  return { unwrapped, elf, meta, params: checkXenImage(elf, meta) };
}

test("GNU Mach i386 (32-bit PAE): gzip → ELF32, metadata from the legacy __xen_guest string", async (t) => {
  const g = await load("gnumach-i386");
  if (!g) return t.skip("gnumach-i386 not available");
  assert.deepEqual(g.unwrapped.steps, ["gzip"]);
  assert.equal(g.elf.elfClass, 32);
  assert.equal(g.elf.entry, 0xc0000000n);
  assert.equal(g.meta.source, "__xen_guest");
  assert.equal(g.meta.foreignNotes, 10, 'the .note.Xen notes are owned by "name"');
  assert.equal(
    g.meta.legacy,
    "GUEST_OS=GNU Mach,GUEST_VERSION=1.3,XEN_VER=xen-3.0,VIRT_BASE=0xC0000000,ELF_PADDR_OFFSET=0xC0000000," +
      "HYPERCALL_PAGE=0x2,PAE=yes[extended-cr3],LOADER=generic,FEATURES=pae_pgdir_above_4gb",
  );
  assert.equal(g.meta.guestOs, "GNU Mach");
  assert.equal(g.meta.guestVersion, undefined);
  assert.equal(g.meta.xenVersion, "xen-3.0");
  assert.equal(g.meta.loader, "generic");
  assert.equal(g.meta.pae, "extended-cr3");
  assert.equal(g.meta.featuresSupported, 1 << 4);
  assert.equal(g.meta.featuresRequired, 0);
  const p = g.params;
  assert.equal(p.guestType, "xen-3.0-x86_32p");
  assert.equal(p.virtBase, 0xc0000000n);
  assert.equal(p.paddrOffset, 0xc0000000n);
  assert.equal(p.virtOffset, 0n);
  assert.equal(p.entry, 0xc0000000n);
  assert.equal(p.hypercallPage, 0xc0002000n);
  assert.equal(p.kernelStart, 0xc0000000n);
  assert.equal(p.kernelEnd, 0xc00a3870n);
  assert.deepEqual(
    p.loadSegments.map((s) => [s.paddr, s.filesz, s.memsz]),
    [
      [0xc0000000n, 0x849a0, 0x849a0n],
      [0xc0086000n, 0x1520, 0x1d870n],
    ],
  );
});

test("GNU Mach amd64 (64-bit): gzip → ELF64, legacy string without PAE", async (t) => {
  const g = await load("gnumach-amd64");
  if (!g) return t.skip("gnumach-amd64 not available");
  assert.equal(g.elf.elfClass, 64);
  assert.equal(g.elf.entry, 0x40000000n);
  assert.equal(g.meta.source, "__xen_guest");
  assert.equal(g.meta.foreignNotes, 9);
  assert.equal(
    g.meta.legacy,
    "GUEST_OS=GNU Mach,GUEST_VERSION=1.3,XEN_VER=xen-3.0,VIRT_BASE=0x40000000,ELF_PADDR_OFFSET=0x40000000," +
      "HYPERCALL_PAGE=0x2,LOADER=generic",
  );
  assert.equal(g.meta.pae, "no");
  const p = g.params;
  assert.equal(p.guestType, "xen-3.0-x86_64");
  assert.equal(p.virtBase, 0x40000000n);
  assert.equal(p.virtOffset, 0n);
  assert.equal(p.entry, 0x40000000n);
  assert.equal(p.hypercallPage, 0x40002000n);
  assert.equal(p.kernelStart, 0x40000000n);
  assert.equal(p.kernelEnd, 0x400a19f0n);
});

test("both GNU Mach images lay out and load into a 64 MiB domain", async (t) => {
  for (const name of ["gnumach-i386", "gnumach-amd64"] as const) {
    const g = await load(name);
    if (!g) {
      t.diagnostic(`${name} not available`);
      continue;
    }
    const memory = new MachineMemory(128 * 1024 * 1024);
    const allocator = new FrameAllocator(FrameTable.forMemory(memory), { memory, seed: 1, firstFrame: 256 });
    const plan = planLayout({ params: g.params, nrPages: 16384, source: name });
    const built = writeInitialDomain({
      domid: 1,
      plan,
      elf: g.elf,
      params: g.params,
      sharedInfoMaddr: 0x1000,
      storeEvtchn: 1,
      consoleEvtchn: 2,
      allocator,
      memory,
    });
    const is64 = name === "gnumach-amd64";
    assert.equal(plan.mappedEnd, is64 ? 0x40400000n : 0xc0400000n);
    assert.equal(built.entry.rip, is64 ? 0x40000000n : 0xc0000000n);
    // The hypercall page (page 2) is filled; the first text bytes are the image's.
    const hp = built.p2m[2] * 4096;
    assert.deepEqual(memory.read(hp, 4096), hypercallPageBytes(is64));
    const text = g.elf.programHeaders[0];
    assert.deepEqual(
      memory.read(built.p2m[0] * 4096, 64),
      g.elf.bytes.subarray(text.offset, text.offset + 64),
    );
  }
});

test("loadPvKernel and describePvKernel report the i386 image", async (t) => {
  const path = fetchGuest("gnumach-i386");
  if (!path) return t.skip("gnumach-i386 not available");
  const k = await loadPvKernel(readFileSync(path), "gnumach-1.8-xen-486.gz");
  const lines = describePvKernel(k);
  for (const line of lines) t.diagnostic(line);
  assert.equal(lines[0], "file: gnumach-1.8-xen-486.gz (gzip)");
  assert.ok(lines.includes("guest type: xen-3.0-x86_32p"));
  assert.ok(lines.includes("hypercall page: 0xc0002000"));
  assert.ok(lines.includes("PAE: extended-cr3; features supported pae_pgdir_above_4gb, required -"));
});
