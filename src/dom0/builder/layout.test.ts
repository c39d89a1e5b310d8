import assert from "node:assert/strict";
import { test } from "node:test";
import { FrameAllocator, FrameTable } from "../../machine/frames.ts";
import { MachineMemory } from "../../machine/memory.ts";
import { PT_NOTE, parseElf, SHT_NOTE } from "./elf.ts";
import {
  FLAT_KERNEL_CS64,
  FLAT_KERNEL_SS64,
  FLAT_RING1_CS,
  FLAT_RING1_DS,
  hypercallPageBytes,
  type LayoutPlan,
  planLayout,
  SIF_MOD_START_PFN,
  writeInitialDomain,
} from "./layout.ts";
import { buildElf, concat, note, u32le, u64le } from "./synth-elf.ts";
import { checkXenImage, type XenImageParams } from "./xen-notes.ts";

const enc = new TextEncoder();

/** An image shaped like Debian's GNU Mach i386: legacy string, text + data/bss at 0xC0000000. */
function machI386() {
  const text = new Uint8Array(0x849a0);
  for (let i = 0; i < text.length; i++) text[i] = (i * 7) & 0xff;
  const legacy =
    "GUEST_OS=GNU Mach,XEN_VER=xen-3.0,VIRT_BASE=0xC0000000,ELF_PADDR_OFFSET=0xC0000000,HYPERCALL_PAGE=0x2," +
    "PAE=yes[extended-cr3],LOADER=generic,FEATURES=pae_pgdir_above_4gb";
  const bytes = buildElf({
    elfClass: 32,
    entry: 0xc0000000n,
    segments: [
      { vaddr: 0xc0000000n, data: text },
      { vaddr: 0xc0086000n, data: new Uint8Array(0x1520).fill(0xdd), memsz: 0x1d870n, flags: 6 },
    ],
    sections: [{ name: "__xen_guest", type: 1, data: enc.encode(`${legacy}\0`) }],
  });
  const elf = parseElf(bytes, "gnumach-i386");
  return { elf, params: checkXenImage(elf) };
}

/** Shaped like GNU Mach amd64. */
function machAmd64() {
  const legacy =
    "GUEST_OS=GNU Mach,XEN_VER=xen-3.0,VIRT_BASE=0x40000000,ELF_PADDR_OFFSET=0x40000000,HYPERCALL_PAGE=0x2,LOADER=generic";
  const bytes = buildElf({
    elfClass: 64,
    entry: 0x40000000n,
    segments: [
      { vaddr: 0x40000000n, data: new Uint8Array(0x77cfc).fill(0x90) },
      { vaddr: 0x40079000n, data: new Uint8Array(0x25a0).fill(0xdd), memsz: 0x289f0n, flags: 6 },
    ],
    sections: [{ name: "__xen_guest", type: 1, data: enc.encode(`${legacy}\0`) }],
  });
  const elf = parseElf(bytes, "gnumach-amd64");
  return { elf, params: checkXenImage(elf) };
}

/** Shaped like Linux: notes, kernel at -2 GiB + 16 MiB, INIT_P2M, MOD_START_PFN. */
function linuxLike() {
  const notes = concat(
    note("Xen", 6, "linux\0"),
    note("Xen", 5, "xen-3.0\0"),
    note("Xen", 3, u64le(0xffffffff80000000n)),
    note("Xen", 15, u64le(0x8000000000n)),
    note("Xen", 1, u64le(0xffffffff81000000n)),
    note("Xen", 16, u32le(1)),
    note("Xen", 9, "yes\0"),
  );
  const bytes = buildElf({
    elfClass: 64,
    entry: 0x1000000n,
    segments: [
      {
        vaddr: 0xffffffff81000000n,
        paddr: 0x1000000n,
        data: new Uint8Array(0x3000).fill(0x90),
        memsz: 0x200000n,
      },
      { type: PT_NOTE, vaddr: 0n, data: notes },
    ],
    sections: [{ name: ".notes", type: SHT_NOTE, data: notes }],
  });
  const elf = parseElf(bytes, "vmlinux");
  return { elf, params: checkXenImage(elf) };
}

test("GNU Mach i386 layout: items in Xen's order, PAE tables, 4 MiB-aligned end with 512 KiB slack", () => {
  const { params } = machI386();
  const plan = planLayout({ params, nrPages: 8192 });
  assert.equal(plan.kernel.pfn, 0);
  assert.equal(plan.kernel.pages, 0xa4);
  assert.deepEqual([plan.p2m.pfn, plan.p2m.pages, plan.p2m.vstart], [0xa4, 8, 0xc00a4000n]);
  assert.equal(plan.startInfo.pfn, 0xac);
  assert.equal(plan.startInfo.vstart, 0xc00ac000n);
  assert.equal(plan.xenstore.pfn, 0xad);
  assert.equal(plan.console.pfn, 0xae);
  assert.deepEqual(
    [plan.pageTables.pfn, plan.pageTables.pages, plan.pageTables.vstart],
    [0xaf, 4, 0xc00af000n],
  );
  assert.deepEqual(
    plan.tables.map((t) => [t.level, t.pfn, t.count]),
    [
      [3, 0xaf, 1],
      [2, 0xb0, 1],
      [1, 0xb1, 2],
    ],
  );
  assert.equal(plan.bootStack.pfn, 0xb3);
  assert.equal(plan.bootStack.vend, 0xc00b4000n);
  assert.equal(plan.mappedEnd, 0xc0400000n);
  assert.ok(plan.mappedEnd - plan.bootStack.vend >= 512n * 1024n);
  assert.deepEqual([plan.hypercallPage?.pfn, plan.hypercallPage?.vstart], [2, 0xc0002000n]);
});

test("a PAE image below 3 GiB still gets an L2 for L3 slot 3: the L2 run reaches it", () => {
  const bytes = buildElf({
    elfClass: 32,
    entry: 0n,
    segments: [{ vaddr: 0n, data: new Uint8Array(64), memsz: 0x416858n, flags: 7 }],
    sections: [
      {
        name: "__xen_guest",
        type: 1,
        data: enc.encode("XEN_VER=xen-3.0,LOADER=generic,PAE=yes[extended-cr3]\0"),
      },
    ],
  });
  const params = checkXenImage(parseElf(bytes, "grub-like"));
  const plan = planLayout({ params, nrPages: 4096 });
  assert.deepEqual(
    plan.tables.map((t) => [t.level, t.count, t.from, t.to]),
    [
      [3, 1, 0n, 0xffffffffn],
      [2, 4, 0n, 0xffffffffn],
      [1, 4, 0n, 0x7fffffn],
    ],
  );
  assert.equal(plan.mappedEnd, 0x800000n);
  assert.equal(plan.pageTables.pages, 9);
  const { memory, built } = build({ elf: parseElf(bytes, "grub-like"), params }, 4096);
  const l3 = ((built.entry.cr3 >>> 12) | ((built.entry.cr3 & 0xfff) << 20)) * 4096;
  for (let slot = 0; slot < 4; slot++) {
    assert.equal(memory.readU32(l3 + slot * 8) & 0xfff, 0x67, `L3 slot ${slot} present`);
  }
  assert.equal(walk(memory, plan, built.entry.cr3, 0x7ff000n)?.maddr, built.p2m[0x7ff] * 4096);
});

test("GNU Mach amd64 layout: 4-level tables and 8-byte p2m entries", () => {
  const { params } = machAmd64();
  const plan = planLayout({ params, nrPages: 8192 });
  assert.equal(plan.kernel.pages, 0xa2);
  assert.deepEqual([plan.p2m.pfn, plan.p2m.pages], [0xa2, 16]);
  assert.equal(plan.startInfo.vstart, 0x400b2000n);
  assert.deepEqual(
    plan.tables.map((t) => [t.level, t.count]),
    [
      [4, 1],
      [3, 1],
      [2, 1],
      [1, 2],
    ],
  );
  assert.equal(plan.pageTables.vstart, 0x400b5000n);
  assert.equal(plan.bootStack.vend, 0x400bb000n);
  assert.equal(plan.mappedEnd, 0x40400000n);
});

test("the page-table count converges when the tables push the end past a 4 MiB boundary", () => {
  // Kernel ending just below a 4 MiB boundary minus the slack: the tables and slack cross it.
  const bytes = buildElf({
    elfClass: 64,
    entry: 0x400000n,
    segments: [{ vaddr: 0x400000n, data: new Uint8Array(16), memsz: 0x37c000n }],
    sections: [
      {
        name: "__xen_guest",
        type: 1,
        data: enc.encode("XEN_VER=xen-3.0,LOADER=generic,VIRT_BASE=0x400000\0"),
      },
    ],
  });
  const plan = planLayout({ params: checkXenImage(parseElf(bytes, "k")), nrPages: 4096 });
  const l1 = plan.tables.find((t) => t.level === 1)!;
  assert.equal(plan.mappedEnd, 0xc00000n);
  assert.equal(l1.count, 4, "8 MiB mapped needs four L1 tables");
  assert.ok(plan.bootStack.vend + 512n * 1024n <= plan.mappedEnd);
});

test("layouts that do not fit are refused before any frame is taken", () => {
  const { params } = machI386();
  assert.throws(
    () => planLayout({ params, nrPages: 512, source: "mach" }),
    /mach: the image and the initial layout need 1024 pages \(4 MiB\) but the domain has 512 \(2 MiB\)/,
  );
  const low: XenImageParams = { ...params, hvStartLow: 0xc0200000n };
  assert.throws(
    () => planLayout({ params: low, nrPages: 8192 }),
    /initial mapping ends at 0xc0400000, inside the hypervisor hole at 0xc0200000/,
  );
  assert.throws(() => planLayout({ params, nrPages: 0 }), /not a positive integer/);
  const farHypercall: XenImageParams = { ...params, hypercallPage: 0xc4000000n };
  assert.throws(
    () => planLayout({ params: farHypercall, nrPages: 8192 }),
    /HYPERCALL_PAGE 0xc4000000 is beyond the domain's 8192 pages/,
  );
});

/** Translates a virtual address through the tables in machine memory (PAE or 4-level). */
function walk(
  memory: MachineMemory,
  plan: LayoutPlan,
  cr3: number,
  va: bigint,
): { maddr: number; rw: boolean } | undefined {
  const entry = (tableMaddr: number, index: number) => {
    const lo = memory.readU32(tableMaddr + index * 8);
    return { present: (lo & 1) === 1, rw: (lo & 2) !== 0, frame: (lo >>> 12) * 4096, lo };
  };
  const levels = plan.is64 ? 4 : 3;
  let table = plan.is64 ? cr3 : ((cr3 >>> 12) | ((cr3 & 0xfff) << 20)) * 4096;
  let rw = true;
  for (let level = levels; level >= 1; level--) {
    const shift = 12n + 9n * BigInt(level - 1);
    const index = Number((va >> shift) & (level === 3 && !plan.is64 ? 3n : 511n));
    const e = entry(table, index);
    if (!e.present) return undefined;
    if (level < levels || plan.is64) rw &&= e.rw;
    table = e.frame;
  }
  return { maddr: table + Number(va & 0xfffn), rw };
}

function build(
  image: { elf: ReturnType<typeof parseElf>; params: XenImageParams },
  nrPages: number,
  module?: Uint8Array,
  cmdline = "",
) {
  const memory = new MachineMemory(64 * 1024 * 1024);
  const table = FrameTable.forMemory(memory);
  const allocator = new FrameAllocator(table, { memory, seed: 42, firstFrame: 16 });
  const plan = planLayout({ params: image.params, nrPages, moduleBytes: module?.length });
  const built = writeInitialDomain({
    domid: 1,
    plan,
    elf: image.elf,
    params: image.params,
    module,
    cmdline,
    sharedInfoMaddr: 0x5000,
    storeEvtchn: 1,
    consoleEvtchn: 2,
    allocator,
    memory,
  });
  return { memory, table, allocator, plan, built };
}

test("GNU Mach i386 domain in memory: every mapped page, RO tables, image, hypercall page, start_info", () => {
  const image = machI386();
  const { memory, table, plan, built } = build(image, 8192, undefined, "root=device:hd0s1");
  const { p2m, entry } = built;
  let identity = 0;
  for (let pfn = 0; pfn < p2m.length; pfn++) {
    assert.equal(table.m2p[p2m[pfn]], pfn);
    assert.equal(table.owner[p2m[pfn]], 1);
    if (p2m[pfn] === pfn) identity++;
  }
  assert.ok(identity < 8, "MFN ≠ PFN");

  // Every page of the initial mapping translates to its PFN's frame; only page tables are RO.
  const tablePfns = new Set<number>();
  for (const t of plan.tables) for (let i = 0; i < t.count; i++) tablePfns.add(t.pfn + i);
  for (let pfn = 0; pfn < 1024; pfn++) {
    const t = walk(memory, plan, entry.cr3, 0xc0000000n + BigInt(pfn) * 4096n);
    assert.ok(t, `pfn ${pfn} mapped`);
    assert.equal(t.maddr, p2m[pfn] * 4096, `pfn ${pfn} maps its frame`);
    assert.equal(t.rw, !tablePfns.has(pfn), `pfn ${pfn} writability`);
  }
  assert.equal(walk(memory, plan, entry.cr3, 0xc0400000n), undefined, "nothing past the mapped end");
  assert.equal(walk(memory, plan, entry.cr3, 0xbffff000n), undefined, "nothing below VIRT_BASE");
  assert.deepEqual(
    built.pageTableFrames.map((f) => f.level),
    [3, 2, 1, 1],
  );
  assert.equal(built.topTableMfn, p2m[plan.pageTables.pfn]);

  // The image at its place, BSS zero, the hypercall page over it.
  const at = (va: bigint) => walk(memory, plan, entry.cr3, va)!.maddr;
  assert.equal(memory.u8[at(0xc0000000n + 0x1234n)], (0x1234 * 7) & 0xff);
  assert.equal(memory.u8[at(0xc0086000n + 0x100n)], 0xdd);
  assert.equal(memory.u8[at(0xc0086000n + 0x2000n)], 0, "BSS is zero");
  assert.deepEqual(memory.read(at(0xc0002000n), 4096), hypercallPageBytes(false));

  // p2m list (4-byte entries).
  for (const pfn of [0, 1, 4095, 8191])
    assert.equal(memory.readU32(at(plan.p2m.vstart + BigInt(pfn * 4))), p2m[pfn]);

  // start_info (32-bit offsets).
  const si = at(entry.rsi);
  const u32 = (off: number) => memory.readU32(si + off);
  assert.equal(new TextDecoder().decode(memory.read(si, 15)), "xen-3.0-x86_32p");
  assert.equal(memory.u8[si + 15], 0);
  assert.equal(u32(32), 8192);
  assert.equal(u32(36), 0x5000);
  assert.equal(u32(40), 0);
  assert.equal(u32(44), built.storeMfn);
  assert.equal(u32(48), 1);
  assert.equal(u32(52), built.consoleMfn);
  assert.equal(u32(56), 2);
  assert.equal(u32(60), 0xc00af000);
  assert.equal(u32(64), 4);
  assert.equal(u32(68), 0xc00a4000);
  assert.equal(u32(72), 0);
  assert.equal(u32(76), 0);
  assert.equal(new TextDecoder().decode(memory.read(si + 80, 18)), "root=device:hd0s1\0");

  // Entry state.
  assert.equal(entry.rip, 0xc0000000n);
  assert.equal(entry.rsi, 0xc00ac000n);
  assert.equal(entry.rsp, 0xc00b4000n);
  assert.equal(entry.rflags, 0x200);
  assert.deepEqual(
    [entry.cs, entry.ss, entry.ds, entry.es, entry.fs, entry.gs],
    [FLAT_RING1_CS, ...Array(5).fill(FLAT_RING1_DS)],
  );
  const top = built.topTableMfn;
  assert.equal(entry.cr3, ((top << 12) | (top >>> 20)) >>> 0);
  assert.equal(entry.kernelSs, FLAT_RING1_DS);
  assert.equal(entry.kernelSp, entry.rsp);
  assert.equal(entry.vmAssist, 1 << 3);
  assert.equal(entry.upcallMask, 1);
});

test("GNU Mach amd64 domain: 8-byte fields, 64-bit selectors, 4-level walk", () => {
  const module = new Uint8Array(10000).fill(0x4d);
  const { memory, plan, built } = build(machAmd64(), 8192, module);
  const { entry, p2m } = built;
  for (let pfn = 0; pfn < 1024; pfn++) {
    assert.equal(walk(memory, plan, entry.cr3, 0x40000000n + BigInt(pfn) * 4096n)?.maddr, p2m[pfn] * 4096);
  }
  const at = (va: bigint) => walk(memory, plan, entry.cr3, va)!.maddr;
  assert.deepEqual(memory.read(at(0x40002000n), 4096), hypercallPageBytes(true));
  const si = at(entry.rsi);
  const u64 = (off: number) => memory.readU32(si + off) + memory.readU32(si + off + 4) * 2 ** 32;
  assert.equal(new TextDecoder().decode(memory.read(si, 15)), "xen-3.0-x86_64\0");
  assert.equal(u64(32), 8192);
  assert.equal(u64(40), 0x5000);
  assert.equal(memory.readU32(si + 48), 0);
  assert.equal(u64(56), built.storeMfn);
  assert.equal(u64(72), built.consoleMfn);
  assert.equal(u64(88), Number(plan.pageTables.vstart));
  assert.equal(u64(96), 5);
  assert.equal(u64(104), Number(plan.p2m.vstart));
  assert.equal(u64(112), 0x400a2000, "the module follows the kernel and is mapped");
  assert.equal(u64(120), 10000);
  assert.equal(memory.u8[at(0x400a2000n + 9999n)], 0x4d);
  assert.equal(memory.readU32(at(plan.p2m.vstart + 8n * 77n)), p2m[77]);
  assert.equal(memory.readU32(at(plan.p2m.vstart + 8n * 77n) + 4), 0);
  assert.deepEqual([entry.cs, entry.ss, entry.ds, entry.fs], [FLAT_KERNEL_CS64, FLAT_KERNEL_SS64, 0, 0]);
  assert.equal(entry.cr3, built.topTableMfn * 4096);
  assert.equal(entry.vmAssist, 0);
});

test("Linux-like: p2m mapped at INIT_P2M with its own tables, module unmapped and given by PFN", () => {
  const module = new Uint8Array(5000).fill(0x11);
  const image = linuxLike();
  const { memory, plan, built } = build(image, 8192, module);
  const { entry, p2m } = built;
  assert.ok(plan.p2mSegment);
  assert.equal(plan.p2m.vstart, 0x8000000000n);
  assert.deepEqual(
    plan.p2mTables.map((t) => [t.level, t.count]),
    [
      [3, 1],
      [2, 1],
      [1, 1],
    ],
  );
  for (const pfn of [0, 100, 8191]) {
    const t = walk(memory, plan, entry.cr3, 0x8000000000n + BigInt(pfn * 8))!;
    assert.equal(memory.readU32(t.maddr), p2m[pfn]);
  }
  // Kernel by p_paddr: 0x1000000 + VIRT_BASE.
  assert.equal(walk(memory, plan, entry.cr3, 0xffffffff81000000n)?.maddr, p2m[0x1000] * 4096);
  const si = walk(memory, plan, entry.cr3, entry.rsi)!.maddr;
  const u64 = (off: number) => memory.readU32(si + off) + memory.readU32(si + off + 4) * 2 ** 32;
  assert.equal(memory.readU32(si + 48) & SIF_MOD_START_PFN, SIF_MOD_START_PFN);
  assert.ok(plan.module && !plan.module.mapped);
  assert.equal(u64(112), plan.module.pfn);
  assert.ok(BigInt(plan.module.pfn) * 4096n >= plan.mappedEnd - plan.virtBase, "after the initial mapping");
  assert.equal(memory.u8[p2m[plan.module.pfn + 1] * 4096 + (4999 - 4096)], 0x11);
  assert.equal(u64(1152), plan.p2mSegment.pfn);
  assert.equal(u64(1160), plan.p2mSegment.pages);
  assert.equal(u64(104), 0x8000000000);
});

test("bad build requests are refused with the problem named", () => {
  const image = machI386();
  assert.throws(
    () => build(image, 8192, undefined, "x".repeat(1024)),
    /command line of 1024 bytes; at most 1023 fit/,
  );
  const memory = new MachineMemory(8 * 1024 * 1024);
  const allocator = new FrameAllocator(FrameTable.forMemory(memory), { memory });
  const plan = planLayout({ params: image.params, nrPages: 4096 });
  assert.throws(
    () =>
      writeInitialDomain({
        domid: 1,
        plan,
        elf: image.elf,
        params: image.params,
        sharedInfoMaddr: 0,
        storeEvtchn: 1,
        consoleEvtchn: 2,
        allocator,
        memory,
      }),
    /out of memory: the domain needs 4096 frames, 2048 are free/,
  );
  assert.equal(allocator.freeFrames, 2048, "nothing taken");
});

test("hypercall stubs: mov $i, int $0x82 / syscall, and the iret stub", () => {
  const p32 = hypercallPageBytes(false);
  assert.deepEqual([...p32.subarray(18 * 32, 18 * 32 + 8)], [0xb8, 18, 0, 0, 0, 0xcd, 0x82, 0xc3]);
  assert.deepEqual([...p32.subarray(23 * 32, 23 * 32 + 8)], [0x50, 0xb8, 23, 0, 0, 0, 0xcd, 0x82]);
  assert.equal(p32[18 * 32 + 8], 0xcc);
  const p64 = hypercallPageBytes(true);
  assert.deepEqual(
    [...p64.subarray(29 * 32, 29 * 32 + 15)],
    [0x51, 0x41, 0x53, 0xb8, 29, 0, 0, 0, 0x0f, 0x05, 0x41, 0x5b, 0x59, 0xc3, 0xcc],
  );
  assert.deepEqual(
    [...p64.subarray(23 * 32, 23 * 32 + 11)],
    [0x51, 0x41, 0x53, 0x50, 0xb8, 23, 0, 0, 0, 0x0f, 0x05],
  );
});
