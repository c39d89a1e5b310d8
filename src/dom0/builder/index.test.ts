import assert from "node:assert/strict";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import { FrameAllocator, FrameTable } from "../../machine/frames.ts";
import { MachineMemory } from "../../machine/memory.ts";
import { buildPvDomain, describePvKernel, loadPvKernel } from "./index.ts";
import { buildElf } from "./synth-elf.ts";

const legacy =
  "GUEST_OS=Test,XEN_VER=xen-3.0,VIRT_BASE=0x40000000,ELF_PADDR_OFFSET=0x40000000,HYPERCALL_PAGE=0x1,LOADER=generic\0";
const image = buildElf({
  elfClass: 64,
  entry: 0x40000000n,
  segments: [{ vaddr: 0x40000000n, data: new Uint8Array(0x3000).fill(0x90) }],
  sections: [{ name: "__xen_guest", type: 1, data: new TextEncoder().encode(legacy) }],
});

test("loadPvKernel → buildPvDomain: from file bytes to a domain's memory and entry state", async () => {
  const kernel = await loadPvKernel(gzipSync(image), "test.gz");
  assert.deepEqual(kernel.steps, ["gzip"]);
  assert.equal(kernel.params.hypercallPage, 0x40001000n);
  const memory = new MachineMemory(16 * 1024 * 1024);
  const allocator = new FrameAllocator(FrameTable.forMemory(memory), { memory, firstFrame: 8 });
  const { plan, built } = buildPvDomain(kernel, {
    domid: 3,
    nrPages: 2048,
    cmdline: "hello",
    sharedInfoMaddr: 0x1000,
    storeEvtchn: 1,
    consoleEvtchn: 2,
    allocator,
    memory,
  });
  assert.equal(built.p2m.length, 2048);
  assert.equal(built.entry.rip, 0x40000000n);
  assert.equal(built.entry.rsi, plan.startInfo.vstart);
  assert.equal(allocator.table.owner[built.topTableMfn], 3);
  const lines = describePvKernel(kernel);
  assert.equal(lines[0], "file: test.gz (gzip)");
  assert.ok(lines.includes("guest type: xen-3.0-x86_64"));
  assert.ok(lines.includes(`__xen_guest: ${legacy.slice(0, -1)}`));
});

test("loadPvKernel refuses what is not a PV kernel, naming the file", async () => {
  const plain = buildElf({
    elfClass: 64,
    entry: 0x1000n,
    segments: [{ vaddr: 0x1000n, data: new Uint8Array(8) }],
  });
  await assert.rejects(loadPvKernel(plain, "vmlinux"), /vmlinux: not a Xen PV kernel/);
  await assert.rejects(loadPvKernel(new Uint8Array(10), "zero"), /zero: not an ELF kernel/);
});
