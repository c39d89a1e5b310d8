// The benchmark marker, a tsxen device at port 0xE8: each write of value V asks the machine to
// pause its CPU after the current instruction so that the machine can note (V, instructions
// retired, time). A kernel brackets a measured loop with two marker writes; because the CPU is
// stopped at each write, the retired count read there is exact, whatever granularity the CPU
// counts at inside run(). The marker instruction itself is one retired instruction between the
// two notes, which the benchmark runner subtracts.
//
// Writes of any size are accepted; reads float high. The device keeps the values written since
// the machine last drained it.

import { type AccessSize, type PortDevice, sizeMask } from "../device.ts";

export const MARKER_PORT = 0xe8;
const NO_VALUES: readonly number[] = [];

export class Marker implements PortDevice<{ pending: number[] }> {
  readonly name = "marker";
  readonly portCount = 1;
  private pending: number[] = [];

  constructor(private readonly requestStop: () => void) {}

  reset(): void {
    this.pending = [];
  }

  portRead(_offset: number, size: AccessSize): number {
    return sizeMask(size);
  }

  portWrite(_offset: number, _size: AccessSize, value: number): void {
    this.pending.push(value >>> 0);
    this.requestStop();
  }

  /** Values written since the last call, oldest first. */
  drain(): readonly number[] {
    if (this.pending.length === 0) return NO_VALUES; // the common case, once per CPU slice
    const values = this.pending;
    this.pending = [];
    return values;
  }

  save(): { pending: number[] } {
    return { pending: [...this.pending] };
  }

  restore(state: { pending: number[] }): void {
    this.pending = state.pending.map((v) => v >>> 0);
  }
}
