// Machine memory: the host's RAM as one WebAssembly.Memory, cut into 4 KiB frames.
//
// Invariants (this file owns them):
// - Machine address A lies in frame A >>> 12 (MFN = frame index); frame f covers bytes
//   [f * 4096, f * 4096 + 4096).
// - `ramBytes` is a multiple of 4 KiB, at least MIN_RAM_BYTES and at most MAX_RAM_BYTES. Every
//   address below `ramBytes` is RAM; the views may be longer (WebAssembly grows in 64 KiB
//   pages) but the bytes past `ramBytes` are not RAM and the CPU must not be given them.
// - The memory never grows, so the typed-array views taken at construction stay valid for the
//   life of the machine (a grow would detach them).
// - The memory is `shared: true`. Measured with bench/shared-memory.ts on Node 20 (V8 11.3):
//   Uint8Array and Int32Array loads and stores on a SharedArrayBuffer run at the same speed as
//   on an ordinary ArrayBuffer (within noise, ~250 M u8 and ~370 M i32 read-modify-writes per
//   second either way), so we take the shared form that worker threads and a wasm JIT need.
//
// There is no MMIO on the bare machine: every access outside RAM reads all ones and writes are
// dropped, as on a PC bus with nothing decoding the address.

import type { PhysicalMemory } from "../x86/bus.ts";

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
export const MIN_RAM_BYTES = 2 * 1024 * 1024;
/** Below 4 GiB with room for a later MMIO hole; also the most a 32-bit wasm memory can hold. */
export const MAX_RAM_BYTES = 3 * 1024 * 1024 * 1024;
const WASM_PAGE = 65536;

export class MachineMemory implements PhysicalMemory {
  readonly wasm: WebAssembly.Memory;
  /** Bytes of RAM (the CPU's `ramBytes`); the views may extend past it to a 64 KiB boundary. */
  readonly ramBytes: number;
  readonly frames: number;
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly i32: Int32Array;

  constructor(ramBytes: number) {
    if (!Number.isInteger(ramBytes) || ramBytes % PAGE_SIZE !== 0) {
      throw new RangeError(`memory size ${ramBytes} is not a whole number of 4 KiB frames`);
    }
    if (ramBytes < MIN_RAM_BYTES || ramBytes > MAX_RAM_BYTES) {
      throw new RangeError(
        `memory size ${ramBytes} bytes is outside ${MIN_RAM_BYTES >>> 20} MiB..${MAX_RAM_BYTES / 2 ** 20} MiB`,
      );
    }
    const pages = Math.ceil(ramBytes / WASM_PAGE);
    this.wasm = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    this.ramBytes = ramBytes;
    this.frames = ramBytes >>> PAGE_SHIFT;
    const buffer = this.wasm.buffer;
    this.u8 = new Uint8Array(buffer);
    this.u16 = new Uint16Array(buffer);
    this.i32 = new Int32Array(buffer);
  }

  /** MMIO read of an address outside RAM: nothing answers, the bus floats high. */
  mmioRead(_addr: number, size: 1 | 2 | 4): number {
    return size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff;
  }

  /** MMIO write outside RAM: dropped. */
  mmioWrite(_addr: number, _size: 1 | 2 | 4, _value: number): void {}

  /** True when [addr, addr + length) lies wholly in RAM. */
  contains(addr: number, length: number): boolean {
    return addr >= 0 && length >= 0 && addr + length <= this.ramBytes;
  }

  /** Copies host bytes into RAM; the caller has checked the range (throws if it is outside). */
  write(addr: number, bytes: Uint8Array): void {
    if (!this.contains(addr, bytes.length)) {
      throw new RangeError(`write of ${bytes.length} bytes at 0x${addr.toString(16)} is outside RAM`);
    }
    this.u8.set(bytes, addr);
  }

  fill(addr: number, length: number, value: number): void {
    if (!this.contains(addr, length)) {
      throw new RangeError(`fill of ${length} bytes at 0x${addr.toString(16)} is outside RAM`);
    }
    this.u8.fill(value, addr, addr + length);
  }

  /** A copy (not a view) of RAM bytes, so the caller never holds a view into shared memory. */
  read(addr: number, length: number): Uint8Array {
    if (!this.contains(addr, length)) {
      throw new RangeError(`read of ${length} bytes at 0x${addr.toString(16)} is outside RAM`);
    }
    return this.u8.slice(addr, addr + length);
  }

  readU32(addr: number): number {
    const u8 = this.u8;
    return (u8[addr] | (u8[addr + 1] << 8) | (u8[addr + 2] << 16) | (u8[addr + 3] << 24)) >>> 0;
  }

  writeU32(addr: number, value: number): void {
    const u8 = this.u8;
    u8[addr] = value;
    u8[addr + 1] = value >>> 8;
    u8[addr + 2] = value >>> 16;
    u8[addr + 3] = value >>> 24;
  }

  writeU16(addr: number, value: number): void {
    this.u8[addr] = value;
    this.u8[addr + 1] = value >>> 8;
  }
}

/**
 * Parses a memory size as the CLI takes it: a number of bytes with an optional K, M or G suffix
 * (binary units), e.g. "128M". Returns the byte count or throws an error naming the problem.
 */
export function parseMemorySize(text: string): number {
  const m = /^(\d+)([KMG]?)(?:i?B)?$/i.exec(text.trim());
  if (!m) throw new RangeError(`memory size "${text}" is not a number with an optional K, M or G suffix`);
  const unit = m[2]!.toUpperCase();
  const scale = unit === "K" ? 1024 : unit === "M" ? 1024 ** 2 : unit === "G" ? 1024 ** 3 : 1;
  const bytes = Number(m[1]) * scale;
  if (bytes % PAGE_SIZE !== 0) throw new RangeError(`memory size "${text}" is not a multiple of 4 KiB`);
  if (bytes < MIN_RAM_BYTES || bytes > MAX_RAM_BYTES) {
    throw new RangeError(`memory size "${text}" is outside 2M..3G`);
  }
  return bytes;
}
