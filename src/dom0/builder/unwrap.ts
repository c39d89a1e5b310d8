// Turns a kernel file into the ELF image inside it, accepting what Xen's domain builder accepts
// for x86 PV kernels: a plain ELF, a compressed ELF (Debian ships GNU Mach gzip-compressed), or
// a Linux bzImage whose protected-mode payload is a compressed ELF vmlinux (xen-pv-abi.md §1).
//
// Invariants (this file owns them):
// - Decompression is bounded: no output may exceed MAX_KERNEL_BYTES, whatever sizes the input
//   claims, so a hostile file cannot exhaust the host's memory.
// - Nesting is bounded (MAX_LAYERS): a file that unwraps to itself cannot loop.
// - Every rejection is an Error whose message starts with the file's name and says what was
//   wrong with it (which layer, which field).
//
// Formats: gzip (node:zlib), xz (xz-decompress: WebAssembly xz-embedded, no native code) and
// zstd (fzstd, pure JavaScript): Node 20's zlib has neither xz nor zstd. bzip2, lzma, lzo and
// lz4 payloads are recognised and refused by name.

import { gunzipSync } from "node:zlib";
import { Decompress as ZstdDecompress } from "fzstd";
import xz from "xz-decompress";
import { isElf } from "./elf.ts";

/** The largest decompressed kernel we accept (Debian's vmlinux is about 60 MiB). */
export const MAX_KERNEL_BYTES = 256 * 1024 * 1024;
const MAX_LAYERS = 4;

export type Compression = "gzip" | "xz" | "zstd" | "bzip2" | "lzma" | "lzo" | "lz4";

export interface Unwrapped {
  elf: Uint8Array;
  /** What was peeled off, outermost first, e.g. ["bzImage", "xz"]. */
  steps: string[];
}

function startsWith(bytes: Uint8Array, at: number, magic: readonly number[]): boolean {
  if (at < 0 || at + magic.length > bytes.length) return false;
  for (let i = 0; i < magic.length; i++) if (bytes[at + i] !== magic[i]) return false;
  return true;
}

/** Recognises a compressed stream by its magic bytes. */
export function detectCompression(bytes: Uint8Array): Compression | undefined {
  if (startsWith(bytes, 0, [0x1f, 0x8b])) return "gzip";
  if (startsWith(bytes, 0, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return "xz";
  if (startsWith(bytes, 0, [0x28, 0xb5, 0x2f, 0xfd])) return "zstd";
  if (startsWith(bytes, 0, [0x42, 0x5a, 0x68])) return "bzip2";
  if (startsWith(bytes, 0, [0x5d, 0x00, 0x00])) return "lzma";
  if (startsWith(bytes, 0, [0x89, 0x4c, 0x5a, 0x4f])) return "lzo";
  if (startsWith(bytes, 0, [0x02, 0x21, 0x4c, 0x18])) return "lz4";
  return undefined;
}

// Linux boot protocol setup header fields (Documentation/arch/x86/boot.rst).
const SETUP_SECTS = 0x1f1;
const HDRS_MAGIC_AT = 0x202;
const VERSION_AT = 0x206;
const PAYLOAD_OFFSET_AT = 0x248;
const PAYLOAD_LENGTH_AT = 0x24c;
/** payload_offset/payload_length exist from boot protocol 2.08. */
const MIN_PAYLOAD_VERSION = 0x0208;

export function isBzImage(bytes: Uint8Array): boolean {
  return startsWith(bytes, HDRS_MAGIC_AT, [0x48, 0x64, 0x72, 0x53]); // "HdrS"
}

export interface BzImagePayload {
  version: number;
  setupSects: number;
  /** File offset and length of the compressed payload (length includes the 4-byte size). */
  offset: number;
  length: number;
}

/** Locates a bzImage's payload, checking every field against the file. */
export function bzImagePayload(bytes: Uint8Array, source: string): BzImagePayload {
  const fail = (what: string): never => {
    throw new Error(`${source}: bzImage: ${what}`);
  };
  if (bytes.length < PAYLOAD_LENGTH_AT + 4)
    fail(`file of ${bytes.length} bytes is too short for a setup header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint16(VERSION_AT, true);
  if (version < MIN_PAYLOAD_VERSION) {
    fail(
      `boot protocol ${version >> 8}.${(version & 0xff).toString().padStart(2, "0")} predates payload_offset (2.08)`,
    );
  }
  const setupSects = bytes[SETUP_SECTS] === 0 ? 4 : bytes[SETUP_SECTS];
  const protectedModeStart = (setupSects + 1) * 512;
  const offset = protectedModeStart + view.getUint32(PAYLOAD_OFFSET_AT, true);
  const length = view.getUint32(PAYLOAD_LENGTH_AT, true);
  if (offset > bytes.length || length > bytes.length - offset) {
    fail(
      `payload at 0x${offset.toString(16)} (setup_sects ${setupSects}, payload_offset 0x${view.getUint32(PAYLOAD_OFFSET_AT, true).toString(16)}) of 0x${length.toString(16)} bytes runs past the end of the file (${bytes.length} bytes)`,
    );
  }
  if (length < 8) fail(`payload_length ${length} is too short for a compressed kernel`);
  return { version, setupSects, offset, length };
}

function tooLarge(): Error {
  return new Error(`decompressed kernel exceeds ${MAX_KERNEL_BYTES >>> 20} MiB`);
}

function gunzip(data: Uint8Array): Uint8Array {
  try {
    const out = gunzipSync(data, { maxOutputLength: MAX_KERNEL_BYTES });
    return new Uint8Array(out.buffer, out.byteOffset, out.length); // a plain view, not a Buffer
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") throw tooLarge();
    throw err;
  }
}

async function unxz(data: Uint8Array): Promise<Uint8Array> {
  const input = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(data);
      controller.close();
    },
  });
  const reader = new xz.XzReadableStream(input).getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > MAX_KERNEL_BYTES) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  return joinChunks(chunks, total);
}

function unzstd(data: Uint8Array): Uint8Array {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const d = new ZstdDecompress((chunk) => {
    total += chunk.length;
    if (total > MAX_KERNEL_BYTES) throw tooLarge();
    chunks.push(chunk);
  });
  d.push(data, true);
  return joinChunks(chunks, total);
}

function joinChunks(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

async function decompress(kind: Compression, data: Uint8Array): Promise<Uint8Array> {
  switch (kind) {
    case "gzip":
      return gunzip(data);
    case "xz":
      return unxz(data);
    case "zstd":
      return unzstd(data);
    default:
      throw new Error(`${kind} is not supported (gzip, xz and zstd are)`);
  }
}

/**
 * A bzImage payload is the compressed vmlinux followed by its uncompressed size (4 bytes,
 * little-endian), which the stream decoders would take for trailing garbage: decode without it
 * and check the size; fall back to the whole payload for a kernel built without the size.
 */
async function decompressPayload(kind: Compression, payload: Uint8Array): Promise<Uint8Array> {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const declared = view.getUint32(payload.length - 4, true);
  let first: unknown;
  try {
    const out = await decompress(kind, payload.subarray(0, payload.length - 4));
    if (out.length === declared) return out;
    first = new Error(`decompressed ${out.length} bytes but the payload declares ${declared}`);
  } catch (err) {
    first = err;
  }
  try {
    return await decompress(kind, payload);
  } catch {
    throw first;
  }
}

/** Unwraps a kernel file into its ELF image (see the top of this file for what is accepted). */
export async function unwrapKernel(bytes: Uint8Array, source: string): Promise<Unwrapped> {
  const steps: string[] = [];
  let data = bytes;
  for (let layer = 0; layer < MAX_LAYERS; layer++) {
    if (isElf(data)) return { elf: data, steps };
    const where = steps.length ? `${source} (inside ${steps.join(" → ")})` : source;
    if (isBzImage(data)) {
      const p = bzImagePayload(data, where);
      const payload = data.subarray(p.offset, p.offset + p.length);
      const kind = detectCompression(payload);
      if (!kind) {
        throw new Error(
          `${where}: bzImage: payload at 0x${p.offset.toString(16)} is in no compression format known here`,
        );
      }
      try {
        data = await decompressPayload(kind, payload);
      } catch (err) {
        throw new Error(`${where}: bzImage: ${kind} payload: ${(err as Error).message}`);
      }
      steps.push("bzImage", kind);
      continue;
    }
    const kind = detectCompression(data);
    if (!kind) {
      throw new Error(
        `${where}: not an ELF kernel, a bzImage or a compressed file (unknown magic ${hexMagic(data)})`,
      );
    }
    try {
      data = await decompress(kind, data);
    } catch (err) {
      throw new Error(`${where}: ${kind}: ${(err as Error).message}`);
    }
    steps.push(kind);
  }
  throw new Error(`${source}: more than ${MAX_LAYERS} layers of compression`);
}

function hexMagic(bytes: Uint8Array): string {
  return [...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join(" ") || "(empty file)";
}
