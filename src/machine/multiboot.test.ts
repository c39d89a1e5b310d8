import assert from "node:assert/strict";
import { test } from "node:test";
import { MachineMemory } from "./memory.ts";
import {
  findMultibootHeader,
  loadMultiboot,
  MB_HEADER_AOUT_KLUDGE,
  MB_HEADER_PAGE_ALIGN_MODULES,
  MB_INFO_CMDLINE,
  MB_INFO_MEM_MAP,
  MB_INFO_MODS,
  MULTIBOOT_BOOTLOADER_MAGIC,
  MULTIBOOT_HEADER_MAGIC,
} from "./multiboot.ts";

const MiB = 1024 * 1024;

/** Little-endian byte builder for synthetic images. */
class Bytes {
  readonly buf: Uint8Array;
  readonly view: DataView;
  constructor(size: number) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }
  u32(offset: number, value: number): this {
    this.view.setUint32(offset, value >>> 0, true);
    return this;
  }
  u16(offset: number, value: number): this {
    this.view.setUint16(offset, value, true);
    return this;
  }
}

function header(b: Bytes, offset: number, flags: number): void {
  b.u32(offset, MULTIBOOT_HEADER_MAGIC)
    .u32(offset + 4, flags)
    .u32(offset + 8, -(MULTIBOOT_HEADER_MAGIC + flags));
}

/** ELF32 i386 executable: one PT_LOAD of `code` at vaddr `vaddr`, paddr `paddr`, plus `bss` bytes. */
function elf32(
  opts: { paddr?: number; vaddr?: number; code?: number[]; bss?: number; mbFlags?: number } = {},
) {
  const paddr = opts.paddr ?? 0x100000;
  const vaddr = opts.vaddr ?? paddr;
  const code = opts.code ?? [0xf4];
  const b = new Bytes(0x1000 + 0x100);
  b.buf.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1], 0);
  b.u16(16, 2).u16(18, 3).u32(20, 1).u32(24, vaddr).u32(28, 52).u16(40, 52).u16(42, 32).u16(44, 1);
  // Program header at 52: PT_LOAD from file offset 0x1000.
  b.u32(52, 1)
    .u32(56, 0x1000)
    .u32(60, vaddr)
    .u32(64, paddr)
    .u32(68, 0x100)
    .u32(72, 0x100 + (opts.bss ?? 0));
  header(b, 0x100, opts.mbFlags ?? 0);
  b.buf.set(code, 0x1000);
  b.buf.fill(0xcc, 0x1000 + code.length, 0x1100);
  return b;
}

function cString(mem: MachineMemory, addr: number): string {
  let end = addr;
  while (mem.u8[end] !== 0) end++;
  return new TextDecoder().decode(mem.read(addr, end - addr));
}

test("an ELF32 kernel loads by p_paddr and the info structure describes memory, cmdline and modules", () => {
  const mem = new MachineMemory(16 * MiB);
  const image = elf32({ paddr: 0x200000, vaddr: 0xc0200000, code: [0x90, 0xf4], bss: 0x2000 }).buf;
  mem.fill(0x200100, 0x2000, 0x55); // bss must come out zeroed
  const boot = loadMultiboot(mem, image, {
    cmdline: "console=ttyS0 hello",
    modules: [
      { data: Uint8Array.of(1, 2, 3), cmdline: "mod-a arg" },
      { data: new Uint8Array(5000).fill(9), cmdline: "mod-b" },
    ],
  });
  assert.equal(boot.eax, MULTIBOOT_BOOTLOADER_MAGIC);
  assert.equal(boot.entry, 0x200000, "the virtual entry point is translated to its physical address");
  assert.equal(boot.kernelEnd, 0x202100);
  assert.deepEqual([...mem.read(0x200000, 3)], [0x90, 0xf4, 0xcc]);
  assert.equal(mem.u8[0x200100 + 0x1fff], 0);

  const info = boot.ebx;
  assert.ok(info >= 0x10000 && info < 0xa0000, "info lives in low memory");
  const flags = mem.readU32(info);
  assert.equal(
    flags & (MB_INFO_CMDLINE | MB_INFO_MODS | MB_INFO_MEM_MAP | 1),
    MB_INFO_CMDLINE | MB_INFO_MODS | MB_INFO_MEM_MAP | 1,
  );
  assert.equal(mem.readU32(info + 4), 640);
  assert.equal(mem.readU32(info + 8), 15 * 1024);
  assert.equal(cString(mem, mem.readU32(info + 16)), "console=ttyS0 hello");
  assert.equal(cString(mem, mem.readU32(info + 64)), "tsxen");

  assert.equal(mem.readU32(info + 20), 2);
  const mods = mem.readU32(info + 24);
  const [a, b] = boot.modules;
  assert.equal(mem.readU32(mods), a.start);
  assert.equal(mem.readU32(mods + 4), a.start + 3);
  assert.equal(cString(mem, mem.readU32(mods + 8)), "mod-a arg");
  assert.equal(mem.readU32(mods + 16), b.start);
  assert.equal(mem.readU32(mods + 20), b.start + 5000);
  assert.ok(a.start >= boot.kernelEnd && b.start >= a.end, "modules follow the kernel without overlap");
  assert.deepEqual([...mem.read(a.start, 3)], [1, 2, 3]);
  assert.equal(mem.u8[b.end - 1], 9);

  const mmapLength = mem.readU32(info + 44);
  const mmap = mem.readU32(info + 48);
  const entries: [number, number, number][] = [];
  for (let e = mmap; e < mmap + mmapLength; e += mem.readU32(e) + 4) {
    entries.push([mem.readU32(e + 4), mem.readU32(e + 12), mem.readU32(e + 20)]);
  }
  assert.deepEqual(entries, [
    [0, 0xa0000, 1],
    [0xa0000, 0x60000, 2],
    [0x100000, 15 * MiB, 1],
  ]);
});

test("header flag 0 page-aligns modules", () => {
  const mem = new MachineMemory(8 * MiB);
  const boot = loadMultiboot(mem, elf32({ mbFlags: MB_HEADER_PAGE_ALIGN_MODULES }).buf, {
    modules: [
      { data: Uint8Array.of(1), cmdline: "a" },
      { data: Uint8Array.of(2), cmdline: "b" },
    ],
  });
  for (const m of boot.modules) assert.equal(m.start % 4096, 0);
  assert.equal(boot.modules[0].start, 0x101000);
  assert.equal(boot.modules[1].start, 0x102000);
});

test("no command line means no cmdline flag; no modules still sets a zero module count", () => {
  const mem = new MachineMemory(8 * MiB);
  const boot = loadMultiboot(mem, elf32().buf);
  assert.equal(mem.readU32(boot.ebx) & MB_INFO_CMDLINE, 0);
  assert.equal(mem.readU32(boot.ebx + 20), 0);
});

test("the a.out kludge fields (flag 16) place a flat image, even one in an ELF64 file", () => {
  // Image: 64 bytes of padding, header at file offset 64, code after it; loaded at 0x100000.
  const b = new Bytes(0x200);
  b.buf[0] = 0x7f; // looks like ELF64 to a reader that ignores flag 16
  b.buf.set([0x45, 0x4c, 0x46, 2], 1);
  const flags = MB_HEADER_AOUT_KLUDGE;
  header(b, 64, flags);
  b.u32(64 + 12, 0x100040) // header_addr
    .u32(64 + 16, 0x100000) // load_addr: file offset 0
    .u32(64 + 20, 0x100100) // load_end_addr: 0x100 bytes
    .u32(64 + 24, 0x101000) // bss_end_addr
    .u32(64 + 28, 0x100060); // entry
  b.buf[0x60] = 0xf4;
  b.buf[0x180] = 0x77; // past load_end: must not be copied
  const mem = new MachineMemory(4 * MiB);
  mem.fill(0x100180, 1, 0x55);
  const boot = loadMultiboot(mem, b.buf);
  assert.equal(boot.entry, 0x100060);
  assert.equal(mem.u8[0x100060], 0xf4);
  assert.equal(mem.u8[0x100180], 0, "bss is zeroed, not loaded");
  assert.equal(boot.kernelEnd, 0x101000);
  const hdr = findMultibootHeader(b.buf);
  assert.equal(hdr.offset, 64);
  assert.equal(hdr.loadEndAddr, 0x100100);
});

test("malformed images are refused with a message that names the problem", () => {
  const mem = new MachineMemory(4 * MiB);
  const load = (img: Uint8Array) => () => loadMultiboot(mem, img);
  assert.throws(load(new Uint8Array(4)), /too short to hold a Multiboot header/);
  assert.throws(
    load(new Uint8Array(9000)),
    /no Multiboot header \(magic 0x1badb002\) in the first 8192 bytes/,
  );

  const late = new Bytes(12000);
  header(late, 8192, 0);
  assert.throws(load(late.buf), /no Multiboot header/, "a header past 8 KiB does not count");

  const badSum = elf32();
  badSum.u32(0x108, 0);
  assert.throws(load(badSum.buf), /at offset 256 has a bad checksum/);

  assert.throws(load(elf32({ mbFlags: 1 << 5 }).buf), /unsupported features \(flag bits 0x20\)/);

  const elf64 = elf32();
  elf64.buf[4] = 2;
  assert.throws(load(elf64.buf), /kernel is ELF64/);

  const notElf = elf32();
  notElf.buf[1] = 0;
  assert.throws(load(notElf.buf), /neither ELF nor marked with Multiboot address fields/);

  const arm = elf32();
  arm.u16(18, 40);
  assert.throws(load(arm.buf), /ELF machine 40 is not i386/);

  const truncatedSegment = elf32();
  truncatedSegment.u32(52 + 16, 0x10000);
  truncatedSegment.u32(52 + 20, 0x10000);
  assert.throws(load(truncatedSegment.buf), /ELF segment 0 .* runs past the image's end/);

  const phdrsPastEnd = elf32();
  phdrsPastEnd.u16(44, 500);
  assert.throws(load(phdrsPastEnd.buf), /program headers run past/);

  assert.throws(load(elf32({ paddr: 0x8000 }).buf), /kernel segment 0x8000-0x8100 is outside usable RAM/);
  assert.throws(load(elf32({ paddr: 0x3fff80 }).buf), /outside usable RAM/);

  const badEntry = elf32();
  badEntry.u32(24, 0x500000);
  assert.throws(load(badEntry.buf), /entry point 0x500000 is outside every loadable segment/);

  const shortKludge = new Bytes(24);
  header(shortKludge, 0, MB_HEADER_AOUT_KLUDGE);
  assert.throws(load(shortKludge.buf), /image ends before them/);
});

test("modules that do not fit and over-long command lines are refused before memory is touched", () => {
  const mem = new MachineMemory(2 * MiB);
  mem.fill(0x100000, 16, 0xab);
  assert.throws(
    () => loadMultiboot(mem, elf32().buf, { modules: [{ data: new Uint8Array(MiB), cmdline: "big.img" }] }),
    /module "big.img" \(1048576 bytes\) does not fit in RAM/,
  );
  assert.throws(
    () => loadMultiboot(mem, elf32().buf, { cmdline: "x".repeat(600 * 1024) }),
    /exceeds the 576 KiB/,
  );
  assert.equal(mem.u8[0x100000], 0xab, "the kernel was not copied");
  assert.throws(() => loadMultiboot(mem, elf32().buf, { cmdline: "a\0b" }), /command line contains a NUL/);
});
