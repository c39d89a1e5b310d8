// Tiny Multiboot kernels written as machine code, for tests that need a guest but not gcc.

import { MULTIBOOT_HEADER_MAGIC } from "../../src/machine/multiboot.ts";

export const FLAT_LOAD_ADDRESS = 0x100000;
const CODE_OFFSET = 0x20;
/** Where the first instruction lands. */
export const FLAT_CODE_ADDRESS = FLAT_LOAD_ADDRESS + CODE_OFFSET;

/**
 * A flat Multiboot image (address fields, flag 16) loaded at 1 MiB whose code starts at
 * FLAT_CODE_ADDRESS. `code` is machine code as hex strings, one instruction per string.
 */
export function flatKernel(...code: string[]): Uint8Array {
  const bytes = code.flatMap((insn) =>
    insn
      .split(/\s+/)
      .filter(Boolean)
      .map((h) => Number.parseInt(h, 16)),
  );
  const image = new Uint8Array(CODE_OFFSET + bytes.length);
  const v = new DataView(image.buffer);
  const flags = 1 << 16;
  const load = FLAT_LOAD_ADDRESS;
  const header = [
    MULTIBOOT_HEADER_MAGIC,
    flags,
    -(MULTIBOOT_HEADER_MAGIC + flags),
    load,
    load,
    0,
    0,
    FLAT_CODE_ADDRESS,
  ];
  for (let i = 0; i < header.length; i++) v.setUint32(i * 4, header[i] >>> 0, true);
  image.set(bytes, CODE_OFFSET);
  return image;
}
