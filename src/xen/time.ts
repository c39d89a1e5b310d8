// Time as PV guests see it (xen-pv-abi.md §3.3, §7.6).
//
// System time is nanoseconds since the hypervisor started. The virtual TSC runs at 1 GHz and
// equals system time (TSC offset 0), so vcpu_time_info is {tsc_timestamp = system_time = t,
// mul = 0x80000000, shift = 1} and stays exact for ever once written: now = t + (tsc - t).
//
// Two clocks:
// - RealClock: wall-clock nanoseconds (performance.now()).
// - VirtualClock (deterministic): time moves only when the scheduler says so: by the
//   instructions a vCPU retires (nsPerInstruction each), or, when every vCPU is blocked, by a
//   jump to the next timer deadline. Tests use it: a guest that waits 10 ms waits no real time.
//
// Invariants:
// - T1. now() never decreases.
// - T2. A vCPU's vcpu_time_info is written with the seqlock protocol: version made odd, the
//   fields written, version made even again (guests retry while odd or changed).

export interface Clock {
  /** Nanoseconds since boot (an integer). */
  now(): number;
  readonly deterministic: boolean;
  /** Deterministic clocks: move time forward by `ns` (ignored by the real clock). */
  advance(ns: number): void;
  /** Wall-clock time at system time 0, in ns since the Unix epoch (as a bigint-safe pair). */
  readonly bootWallSec: number;
  readonly bootWallNsec: number;
}

export class RealClock implements Clock {
  readonly deterministic = false;
  private readonly start = performance.now();
  readonly bootWallSec: number;
  readonly bootWallNsec: number;
  constructor() {
    const ms = Date.now();
    this.bootWallSec = Math.floor(ms / 1000);
    this.bootWallNsec = (ms % 1000) * 1e6;
  }
  now(): number {
    return Math.floor((performance.now() - this.start) * 1e6);
  }
  advance(_ns: number): void {}
}

export class VirtualClock implements Clock {
  readonly deterministic = true;
  private ns = 0;
  /** A fixed wall clock (2024-01-01T00:00:00Z) so runs are reproducible. */
  readonly bootWallSec = 1704067200;
  readonly bootWallNsec = 0;
  now(): number {
    return this.ns;
  }
  advance(ns: number): void {
    if (ns > 0) this.ns += Math.floor(ns);
  }
}

/** Nanoseconds a retired instruction is worth on the virtual clock. */
export const NS_PER_INSTRUCTION = 1;

/** vcpu_time_info multiplier/shift for a 1 GHz TSC. */
export const TSC_MUL = 0x80000000;
export const TSC_SHIFT = 1;

/** Writes a u64 (as a JS number < 2^53) at `addr` of a byte view, little-endian. */
export function writeU64(u8: Uint8Array, addr: number, value: number): void {
  const lo = value % 4294967296;
  const hi = Math.floor(value / 4294967296);
  writeU32(u8, addr, lo);
  writeU32(u8, addr + 4, hi);
}

export function writeU32(u8: Uint8Array, addr: number, v: number): void {
  u8[addr] = v;
  u8[addr + 1] = v >>> 8;
  u8[addr + 2] = v >>> 16;
  u8[addr + 3] = v >>> 24;
}

export function readU32(u8: Uint8Array, addr: number): number {
  return (u8[addr] | (u8[addr + 1] << 8) | (u8[addr + 2] << 16) | (u8[addr + 3] << 24)) >>> 0;
}

/** Writes vcpu_time_info (32 bytes at `addr`) for system time `t` with the seqlock (T2). */
export function writeTimeInfo(u8: Uint8Array, addr: number, t: number): void {
  const version = readU32(u8, addr);
  writeU32(u8, addr, (version + 1) | 1); // odd: update in progress
  writeU64(u8, addr + 8, t); // tsc_timestamp
  writeU64(u8, addr + 16, t); // system_time
  writeU32(u8, addr + 24, TSC_MUL);
  u8[addr + 28] = TSC_SHIFT;
  u8[addr + 29] = 1; // XEN_PVCLOCK_TSC_STABLE_BIT
  writeU32(u8, addr + 0, ((version + 1) | 1) + 1); // even again
}
