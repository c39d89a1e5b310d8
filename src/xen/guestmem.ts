// Copying to and from guest virtual memory for hypercalls (Xen's copy_{from,to}_guest).
//
// Invariants:
// - G1. Accesses go through the vCPU's current page tables with supervisor rights (the guest
//   kernel's view); a 64-bit guest's pointer into Xen's range (L4 slots 256..271) is refused
//   as a fault whatever the tables say, so no hypercall can read or write Xen's GDT/LDT windows.
// - G2. A fault never escapes as a host exception: it throws the one GUEST_MEM_FAULT object,
//   which hypercall dispatch turns into -EFAULT.

import type { Vcpu } from "./vcpu.ts";

export const GUEST_MEM_FAULT = { guestMemFault: true };

const scratch8 = new Uint8Array(8);
const scratchDv = new DataView(scratch8.buffer);

export class GuestMem {
  constructor(readonly v: Vcpu) {}

  /** True when [lo:hi, +len) touches Xen's part of a 64-bit address space (G1). */
  private inXen(lo: number, hi: number, len: number): boolean {
    if (!this.v.domain.is64) return false;
    const h = hi >>> 0;
    if (h >= 0xffff8000 && h < 0xffff8800) return true;
    // The end of the range may cross into Xen's part only by wrapping from below.
    const endLo = (lo >>> 0) + len;
    if (endLo > 0xffffffff && h + 1 >= 0xffff8000 && h + 1 < 0xffff8800) return true;
    return false;
  }

  read(lo: number, hi: number, out: Uint8Array): void {
    if (out.length === 0) return;
    if (this.inXen(lo, hi, out.length)) throw GUEST_MEM_FAULT;
    if (this.v.cpu.readGuest(lo | 0, this.v.domain.is64 ? hi | 0 : 0, out, false) !== 0) throw GUEST_MEM_FAULT;
  }

  write(lo: number, hi: number, data: Uint8Array): void {
    if (data.length === 0) return;
    if (this.inXen(lo, hi, data.length)) throw GUEST_MEM_FAULT;
    if (this.v.cpu.writeGuest(lo | 0, this.v.domain.is64 ? hi | 0 : 0, data, false) !== 0) throw GUEST_MEM_FAULT;
  }

  bytes(lo: number, hi: number, n: number): Uint8Array {
    const b = new Uint8Array(n);
    this.read(lo, hi, b);
    return b;
  }

  u32(lo: number, hi = 0): number {
    const b = scratch8.subarray(0, 4);
    this.read(lo, hi, b);
    return scratchDv.getUint32(0, true);
  }
  u16(lo: number, hi = 0): number {
    const b = scratch8.subarray(0, 2);
    this.read(lo, hi, b);
    return scratchDv.getUint16(0, true);
  }
  u8(lo: number, hi = 0): number {
    const b = scratch8.subarray(0, 1);
    this.read(lo, hi, b);
    return b[0];
  }
  /** A 64-bit value as [lo, hi] (unsigned words). */
  u64(lo: number, hi = 0): [number, number] {
    this.read(lo, hi, scratch8);
    return [scratchDv.getUint32(0, true), scratchDv.getUint32(4, true)];
  }
  /** A xen_ulong / pointer of the guest's width, as [lo, hi]. */
  ulong(lo: number, hi = 0): [number, number] {
    return this.v.domain.is64 ? this.u64(lo, hi) : [this.u32(lo, hi), 0];
  }

  setU32(lo: number, hi: number, value: number): void {
    scratchDv.setUint32(0, value >>> 0, true);
    this.write(lo, hi, scratch8.subarray(0, 4));
  }
  setU16(lo: number, hi: number, value: number): void {
    scratchDv.setUint16(0, value & 0xffff, true);
    this.write(lo, hi, scratch8.subarray(0, 2));
  }
  setU8(lo: number, hi: number, value: number): void {
    scratch8[0] = value;
    this.write(lo, hi, scratch8.subarray(0, 1));
  }
  setU64(lo: number, hi: number, vlo: number, vhi: number): void {
    scratchDv.setUint32(0, vlo >>> 0, true);
    scratchDv.setUint32(4, vhi >>> 0, true);
    this.write(lo, hi, scratch8);
  }
  /** Writes a xen_ulong of the guest's width (a signed JS number: negative errno allowed). */
  setUlong(lo: number, hi: number, value: number): void {
    if (this.v.domain.is64) {
      const vlo = value | 0;
      const vhi = value < 0 ? -1 : Math.floor(value / 4294967296);
      this.setU64(lo, hi, vlo, vhi);
    } else this.setU32(lo, hi, value | 0);
  }
}

/** Adds a byte offset to a guest address (lo, hi), carrying into hi (64-bit guests). */
export function addr(lo: number, hi: number, off: number): [number, number] {
  const sum = (lo >>> 0) + off;
  if (sum > 0xffffffff) return [sum - 4294967296, (hi + 1) | 0];
  if (sum < 0) return [sum + 4294967296, (hi - 1) | 0];
  return [sum, hi];
}
