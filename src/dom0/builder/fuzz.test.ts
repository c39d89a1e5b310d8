// Seeded mutation fuzzing of the builder's input side: a malformed kernel image must end in an
// Error whose one-line message starts with the image's name, never in a host exception
// (RangeError from a DataView, TypeError from a missing field) and never in a hang.

import assert from "node:assert/strict";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import { parseXlConfig, validatePvConfig } from "../xlcfg.ts";
import { PT_NOTE, parseElf, SHT_NOTE } from "./elf.ts";
import { planLayout } from "./layout.ts";
import { buildElf, concat, note, u32le, u64le } from "./synth-elf.ts";
import { unwrapKernel } from "./unwrap.ts";
import { checkXenImage, findXenMetadata } from "./xen-notes.ts";

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

const enc = new TextEncoder();

function seeds(): Uint8Array[] {
  const notes = concat(
    note("Xen", 6, "linux\0"),
    note("Xen", 5, "xen-3.0\0"),
    note("Xen", 3, u64le(0xffffffff80000000n)),
    note("Xen", 1, u64le(0xffffffff81000000n)),
    note("Xen", 15, u64le(0x8000000000n)),
    note("Xen", 13, concat(u64le(1n), u64le(1n))),
    note("Xen", 10, "!writable_page_tables|pae_pgdir_above_4gb"),
  );
  const elf64 = buildElf({
    elfClass: 64,
    entry: 0x1000000n,
    segments: [
      { vaddr: 0xffffffff81000000n, paddr: 0x1000000n, data: new Uint8Array(256).fill(0x90), memsz: 0x4000n },
      { type: PT_NOTE, vaddr: 0n, data: notes },
    ],
    sections: [{ name: ".notes", type: SHT_NOTE, data: notes }],
  });
  const elf32 = buildElf({
    elfClass: 32,
    entry: 0xc0000000n,
    segments: [{ vaddr: 0xc0000000n, data: new Uint8Array(256).fill(0x90), memsz: 0x3000n }],
    sections: [
      {
        name: "__xen_guest",
        type: 1,
        data: enc.encode(
          "GUEST_OS=GNU Mach,XEN_VER=xen-3.0,VIRT_BASE=0xC0000000,ELF_PADDR_OFFSET=0xC0000000,HYPERCALL_PAGE=0x2,PAE=yes[extended-cr3],LOADER=generic\0",
        ),
      },
      { name: ".note.Xen", type: SHT_NOTE, data: concat(note("name", 6, "x\0"), note("Xen", 99, u32le(5))) },
    ],
  });
  return [elf64, elf32];
}

function mutate(bytes: Uint8Array, r: () => number): Uint8Array {
  const out = bytes.slice();
  const kind = r() % 4;
  if (kind === 0) {
    // A few random bytes anywhere.
    for (let i = 0, n = 1 + (r() % 8); i < n; i++) out[r() % out.length] = r() & 0xff;
    return out;
  }
  if (kind === 1) {
    // Truncation.
    return out.subarray(0, r() % out.length);
  }
  // Header fields: the interesting damage is in the first 0x100 bytes and the tables.
  const at = kind === 2 ? r() % Math.min(out.length, 0x100) : r() % out.length;
  const v = new DataView(out.buffer);
  const values = [0, 1, 0xff, 0xffff, 0x7fffffff, 0xffffffff, out.length, out.length - 1, r()];
  if (at + 4 <= out.length) v.setUint32(at, values[r() % values.length] >>> 0, true);
  return out;
}

function expectCleanError(err: unknown, source: string, what: string): void {
  assert.ok(err instanceof Error, `${what}: threw a non-Error`);
  assert.ok(
    !(err instanceof RangeError) && !(err instanceof TypeError),
    `${what}: host exception ${(err as Error).name}: ${(err as Error).message}`,
  );
  assert.ok(err.message.startsWith(`${source}:`), `${what}: message does not name the image: ${err.message}`);
  assert.ok(!err.message.includes("\n"), `${what}: message is more than one line`);
}

test("mutated kernel images end in one-line Errors naming the image (5,000 cases)", () => {
  const r = rng(0x5eed);
  const bases = seeds();
  let accepted = 0;
  for (let i = 0; i < 5000; i++) {
    const input = mutate(bases[i % bases.length], r);
    try {
      const elf = parseElf(input, "fuzz.elf");
      const params = checkXenImage(elf, findXenMetadata(elf));
      planLayout({ params, nrPages: 8192, source: "fuzz.elf" });
      accepted++;
    } catch (err) {
      expectCleanError(err, "fuzz.elf", `case ${i}`);
    }
  }
  assert.ok(accepted > 100, `only ${accepted} mutants survived: the fuzzer mostly tests the first check`);
});

test("mutated compressed kernels end in one-line Errors naming the file (300 cases)", async () => {
  const r = rng(77);
  const gz = gzipSync(seeds()[0]);
  for (let i = 0; i < 300; i++) {
    const input = mutate(gz, r);
    try {
      const { elf } = await unwrapKernel(input, "fuzz.gz");
      parseElf(elf, "fuzz.gz");
    } catch (err) {
      expectCleanError(err, "fuzz.gz", `case ${i}`);
    }
  }
});

test("random xl.cfg text ends in one-line Errors naming file:line:column (3,000 cases)", () => {
  const r = rng(4242);
  const alphabet = `abcdemnoprstuvwxyz_.0123456789 \t\n;#=+[],'"\\xABC-:()!@`;
  const base = `name = "d"\nmemory = 64\nkernel = "k"\non_crash = 'preserve'\nl = [1, "a", [2,],\n]\n`;
  for (let i = 0; i < 3000; i++) {
    let text: string;
    if (i % 2 === 0) {
      const n = r() % 80;
      text = "";
      for (let k = 0; k < n; k++) text += alphabet[r() % alphabet.length];
    } else {
      const chars = [...base];
      for (let k = 0, n = 1 + (r() % 4); k < n; k++)
        chars[r() % chars.length] = alphabet[r() % alphabet.length];
      text = chars.join("");
    }
    try {
      validatePvConfig(parseXlConfig(text, "fuzz.cfg"));
    } catch (err) {
      assert.ok(
        err instanceof Error && !(err instanceof RangeError) && !(err instanceof TypeError),
        `case ${i}: ${err}`,
      );
      assert.match(err.message, /^fuzz\.cfg:\d+:\d+: [^\n]+$/, `case ${i}: ${JSON.stringify(text)}`);
    }
  }
});
