// What a hypercall handler gets: the calling vCPU, its domain, guest memory, the arguments.

import type { Domain } from "../domain.ts";
import { GuestMem } from "../guestmem.ts";
import type { Vcpu } from "../vcpu.ts";

/** A handler's return value that means "registers already set; write no result". */
export const NO_RESULT = 2 ** 40;

export class Call {
  readonly v: Vcpu;
  readonly d: Domain;
  readonly mem: GuestMem;
  /** Arguments as [lo, hi] words (hi = 0 for 32-bit guests). */
  args: [number, number][] = [];
  /** True inside a multicall. */
  inMulticall = false;

  constructor(v: Vcpu) {
    this.v = v;
    this.d = v.domain;
    this.mem = new GuestMem(v);
  }

  /** Argument i as an unsigned 32-bit number. */
  u(i: number): number {
    return this.args[i][0] >>> 0;
  }
  /** Argument i as a signed int (C `int`). */
  i(i: number): number {
    return this.args[i][0] | 0;
  }
  lo(i: number): number {
    return this.args[i][0] >>> 0;
  }
  hi(i: number): number {
    return this.args[i][1] >>> 0;
  }
  /** Argument i is a NULL pointer. */
  isNull(i: number): boolean {
    return this.args[i][0] === 0 && this.args[i][1] === 0;
  }
  get is64(): boolean {
    return this.d.is64;
  }
  /**
   * Xen's guest_handle_okay / compat_handle_okay: [lo:hi, +len) is guest address space (64-bit:
   * outside Xen's L4 slots 256..271; 32-bit: below the hypervisor hole). Checks the range only.
   */
  handleOkay(lo: number, hi: number, len: number): boolean {
    if (this.d.is64) {
      const inXen = (h: number): boolean => h >>> 0 >= 0xffff8000 && h >>> 0 < 0xffff8800;
      const end = (lo >>> 0) + len;
      const endHi = end > 0xffffffff ? (hi + Math.floor(end / 4294967296)) | 0 : hi;
      return !inXen(hi) && !inXen(endHi);
    }
    return (lo >>> 0) + len <= 0xf5800000;
  }
  /** Bytes of a guest `unsigned long`. */
  get ulongBytes(): number {
    return this.d.is64 ? 8 : 4;
  }
}
