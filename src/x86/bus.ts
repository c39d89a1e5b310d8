/**
 * The processor's only windows on the world. The owner (a bare machine, or a domain in the
 * hypervisor) supplies them; the processor never imports anything else that does I/O.
 */

/** Physical memory as the processor sees it: RAM bytes, and everything else as MMIO. */
export interface PhysicalMemory {
  /** The RAM, little-endian. Physical address p is byte p of this view for p < ramBytes. */
  readonly u8: Uint8Array;
  /** Bytes of RAM starting at physical address 0; accesses at or above go to MMIO. */
  readonly ramBytes: number;
  /** Physical addresses outside RAM (or inside declared MMIO holes). Reads of nothing return all ones. */
  mmioRead(addr: number, size: 1 | 2 | 4): number;
  mmioWrite(addr: number, size: 1 | 2 | 4, value: number): void;
  /**
   * Optional holes inside RAM that must go to MMIO (e.g. the legacy VGA window). A page whose
   * `isMmio(pageAddress)` is true is never cached as RAM by the TLB.
   */
  isMmio?(pageAddress: number): boolean;
}

/** The port I/O space. Sizes are 1, 2 or 4 bytes; values are zero-extended unsigned. */
export interface IoPorts {
  in(port: number, size: 1 | 2 | 4): number;
  out(port: number, size: 1 | 2 | 4, value: number): void;
}
