import assert from "node:assert/strict";
import { test } from "node:test";
import { isLoadable, PT_LOAD, PT_NOTE, parseElf, SHT_NOTE } from "./elf.ts";
import { buildElf, note } from "./synth-elf.ts";

const code = new Uint8Array([0x90, 0x90, 0xf4]);

test("ELF64: header, program headers (addresses as bigint) and named sections", () => {
  const bytes = buildElf({
    elfClass: 64,
    entry: 0xffffffff81000000n,
    segments: [
      { vaddr: 0xffffffff81000000n, paddr: 0x1000000n, data: code, memsz: 0x2000n },
      { type: PT_NOTE, flags: 4, vaddr: 0n, data: note("Xen", 6, "linux\0") },
    ],
    sections: [{ name: ".note.Xen", type: SHT_NOTE, data: note("Xen", 6, "linux\0") }],
  });
  const elf = parseElf(bytes, "k64");
  assert.equal(elf.elfClass, 64);
  assert.equal(elf.machine, 62);
  assert.equal(elf.entry, 0xffffffff81000000n);
  assert.equal(elf.programHeaders.length, 2);
  const [load, notes] = elf.programHeaders;
  assert.equal(load.type, PT_LOAD);
  assert.equal(load.vaddr, 0xffffffff81000000n);
  assert.equal(load.paddr, 0x1000000n);
  assert.equal(load.memsz, 0x2000n);
  assert.equal(load.filesz, 3);
  assert.deepEqual([...bytes.subarray(load.offset, load.offset + 3)], [...code]);
  assert.ok(isLoadable(load));
  assert.ok(!isLoadable(notes));
  assert.deepEqual(
    elf.sectionHeaders.map((s) => s.name),
    ["", ".note.Xen", ".shstrtab"],
  );
});

test("ELF32: the same fields from the 32-bit layout", () => {
  const bytes = buildElf({
    elfClass: 32,
    entry: 0xc0000000n,
    segments: [{ vaddr: 0xc0000000n, data: code, memsz: 0x5000n, flags: 7 }],
    sections: [{ name: "__xen_guest", type: 1, data: new TextEncoder().encode("GUEST_OS=x\0") }],
  });
  const elf = parseElf(bytes, "k32");
  assert.equal(elf.elfClass, 32);
  assert.equal(elf.machine, 3);
  assert.equal(elf.entry, 0xc0000000n);
  assert.equal(elf.programHeaders[0].paddr, 0xc0000000n);
  assert.equal(elf.programHeaders[0].flags, 7);
  assert.equal(elf.sectionHeaders[1].name, "__xen_guest");
  assert.equal(elf.sectionHeaders[1].inFile, true);
});

test("malformed images are refused with the file, field and problem named", () => {
  const good = buildElf({ elfClass: 32, entry: 0n, segments: [{ vaddr: 0n, data: code }] });
  const setU32 = (at: number, value: number) => (b: Uint8Array) => {
    new DataView(b.buffer).setUint32(at, value, true);
    return b;
  };
  const cases: [string, (b: Uint8Array) => Uint8Array, RegExp][] = [
    ["not ELF", () => new TextEncoder().encode("MZ this is not an ELF file"), /bad: not an ELF file/],
    [
      "short",
      (b) => b.subarray(0, 30),
      /bad: ELF header: file of 30 bytes is shorter than the 52-byte header/,
    ],
    ["class", (b) => b.fill(3, 4, 5), /EI_CLASS 3/],
    ["big-endian", (b) => b.fill(2, 5, 6), /EI_DATA 2 is not 1/],
    ["type", (b) => b.fill(1, 16, 17), /e_type 1 is not an executable/],
    ["phentsize", (b) => b.fill(31, 42, 43), /e_phentsize 31 is not 32/],
    ["phoff", setU32(28, 0xfffffff0), /program headers at e_phoff 0xfffffff0/],
    ["shoff", setU32(32, good.length - 8), /section headers at e_shoff/],
    [
      "segment past EOF",
      setU32(52 + 16, 0x100000),
      /program header 0 \(PT_LOAD\): p_offset 0x1000 \+ p_filesz 0x100000 runs past the end of the file/,
    ],
    ["filesz > memsz", setU32(52 + 20, 1), /p_filesz 0x3 exceeds p_memsz 0x1/],
  ];
  for (const [what, mutate, message] of cases) {
    assert.throws(() => parseElf(mutate(good.slice()), "bad"), message, what);
  }
});

test("a truncated file never reads out of bounds: every prefix parses or is refused", () => {
  const bytes = buildElf({
    elfClass: 64,
    entry: 0x1000n,
    segments: [{ vaddr: 0x1000n, data: code }],
    sections: [{ name: ".note", type: SHT_NOTE, data: note("Xen", 1, new Uint8Array(8)) }],
  });
  for (let n = 0; n <= bytes.length; n += 7) {
    try {
      parseElf(bytes.subarray(0, n), "cut");
    } catch (err) {
      assert.match((err as Error).message, /^cut: /);
    }
  }
});

test("an unreadable section-name table leaves names empty instead of failing", () => {
  const bytes = buildElf({ elfClass: 32, entry: 0n, segments: [{ vaddr: 0n, data: code }] });
  // e_shstrndx = 99
  new DataView(bytes.buffer).setUint16(50, 99, true);
  const elf = parseElf(bytes, "k");
  assert.ok(elf.sectionHeaders.every((s) => s.name === ""));
});
