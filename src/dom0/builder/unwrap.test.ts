import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import { buildElf } from "./synth-elf.ts";
import { bzImagePayload, detectCompression, unwrapKernel } from "./unwrap.ts";

const elf = buildElf({
  elfClass: 64,
  entry: 0x1000n,
  segments: [{ vaddr: 0x1000n, data: new Uint8Array(5000) }],
});

/** Compresses with a command-line tool (xz, zstd), or undefined when it is not installed. */
function compressWith(tool: string, data: Uint8Array): Uint8Array | undefined {
  const r = spawnSync(tool, ["-c", "-q"], { input: data, maxBuffer: 64 << 20 });
  return r.status === 0 ? new Uint8Array(r.stdout) : undefined;
}

/** A minimal bzImage: setup_sects, "HdrS", version 2.15, payload + 4-byte size. */
function bzImage(
  payload: Uint8Array,
  options: { setupSects?: number; withSize?: boolean; version?: number } = {},
) {
  const setupSects = options.setupSects ?? 1;
  const start = ((setupSects === 0 ? 4 : setupSects) + 1) * 512;
  const payloadOffset = 0x100;
  const sized = options.withSize === false ? payload : new Uint8Array(payload.length + 4);
  if (options.withSize !== false) {
    sized.set(payload);
    new DataView(sized.buffer).setUint32(payload.length, elf.length, true);
  }
  const out = new Uint8Array(start + payloadOffset + sized.length + 64);
  const v = new DataView(out.buffer);
  out[0x1f1] = setupSects;
  out.set([0x48, 0x64, 0x72, 0x53], 0x202);
  v.setUint16(0x206, options.version ?? 0x020f, true);
  v.setUint32(0x248, payloadOffset, true);
  v.setUint32(0x24c, sized.length, true);
  out.set(sized, start + payloadOffset);
  return out;
}

test("a plain ELF passes through, a gzip-compressed one is inflated", async () => {
  assert.deepEqual(await unwrapKernel(elf, "k"), { elf, steps: [] });
  const r = await unwrapKernel(gzipSync(elf), "k.gz");
  assert.deepEqual(r.steps, ["gzip"]);
  assert.deepEqual(r.elf, elf);
});

test("bzImage with a gzip payload (setup_sects 0 means 4), with and without the size trailer", async () => {
  for (const setupSects of [0, 1, 27]) {
    const r = await unwrapKernel(bzImage(gzipSync(elf), { setupSects }), "bzImage");
    assert.deepEqual(r.steps, ["bzImage", "gzip"]);
    assert.deepEqual(r.elf, elf);
  }
  const r = await unwrapKernel(bzImage(gzipSync(elf), { withSize: false }), "bzImage");
  assert.deepEqual(r.elf, elf);
});

test("bzImage with xz and zstd payloads (as Debian's Linux uses xz)", async (t) => {
  for (const [tool, kind] of [
    ["xz", "xz"],
    ["zstd", "zstd"],
  ] as const) {
    const packed = compressWith(tool, elf);
    if (!packed) {
      t.diagnostic(`${tool} not installed; ${kind} payload not tested`);
      continue;
    }
    assert.equal(detectCompression(packed), kind);
    const r = await unwrapKernel(bzImage(packed), "vmlinuz");
    assert.deepEqual(r.steps, ["bzImage", kind]);
    assert.deepEqual(r.elf, elf);
    const direct = await unwrapKernel(packed, `k.${tool}`);
    assert.deepEqual(direct.elf, elf);
  }
});

test("bad input is refused with the file, the layer and the problem", async () => {
  await assert.rejects(
    unwrapKernel(new TextEncoder().encode("hello"), "notes.txt"),
    /notes.txt: not an ELF kernel, a bzImage or a compressed file \(unknown magic 68 65 6c 6c\)/,
  );
  await assert.rejects(unwrapKernel(new Uint8Array(0), "empty"), /empty: .*\(empty file\)/);
  const gz = gzipSync(elf);
  await assert.rejects(unwrapKernel(gz.subarray(0, gz.length - 100), "cut.gz"), /cut.gz: gzip: /);
  await assert.rejects(
    unwrapKernel(bzImage(new Uint8Array([0x42, 0x5a, 0x68, 0x39, 1, 2, 3, 4])), "bz2"),
    /bz2: bzImage: bzip2 payload: bzip2 is not supported \(gzip, xz and zstd are\)/,
  );
  await assert.rejects(
    unwrapKernel(bzImage(gzipSync(elf), { version: 0x0206 }), "old"),
    /old: bzImage: boot protocol 2.06 predates payload_offset/,
  );
  const far = bzImage(gzipSync(elf));
  new DataView(far.buffer).setUint32(0x24c, 0x7fffffff, true);
  await assert.rejects(
    unwrapKernel(far, "far"),
    /far: bzImage: payload at 0x500 .* runs past the end of the file/,
  );
  await assert.rejects(
    unwrapKernel(bzImage(new Uint8Array(16).fill(0x77)), "junk"),
    /junk: bzImage: payload at 0x500 is in no compression format/,
  );
  // gzip of gzip of gzip ... beyond the nesting bound
  let nested: Uint8Array = elf;
  for (let i = 0; i < 5; i++) nested = gzipSync(nested);
  await assert.rejects(unwrapKernel(nested, "nested"), /nested: more than 4 layers/);
});

test("bzImagePayload reports the payload's place", () => {
  const img = bzImage(new Uint8Array(100), { setupSects: 2 });
  const p = bzImagePayload(img, "x");
  assert.deepEqual(p, { version: 0x020f, setupSects: 2, offset: 3 * 512 + 0x100, length: 104 });
});
