// The port I/O bus: 65,536 ports, each claimed by at most one device.
//
// Invariants (this file owns them):
// - `owner[p]` is the index into `handlers` of the device decoding port p, or -1; `base[p]` is
//   the first port of that device's range, so the device sees `p - base[p]` as its offset.
// - Ranges never overlap: `register` refuses a port that is already claimed.
// - An unclaimed port reads as all ones (masked to the access size) and ignores writes, as on
//   an ISA bus where nothing drives the data lines.
// Values cross the bus as unsigned numbers. Dispatch is two typed-array loads and one call; nothing is allocated per access.

import { type AccessSize, type PortDevice, type PortHandler, sizeMask } from "./devices/device.ts";

export const PORT_COUNT = 0x10000;

export class IoBus {
  private readonly owner = new Int16Array(PORT_COUNT).fill(-1);
  private readonly base = new Uint16Array(PORT_COUNT);
  private readonly handlers: PortHandler[] = [];
  private readonly names: string[] = [];

  /** Claims ports [firstPort, firstPort + device.portCount) for `device`. */
  register(firstPort: number, device: PortDevice<unknown>): void {
    const count = device.portCount;
    if (!Number.isInteger(firstPort) || firstPort < 0 || firstPort + count > PORT_COUNT || count < 1) {
      throw new RangeError(
        `${device.name}: port range 0x${firstPort.toString(16)}+${count} is outside 0..0xffff`,
      );
    }
    for (let p = firstPort; p < firstPort + count; p++) {
      const taken = this.owner[p];
      if (taken !== -1) {
        throw new Error(
          `${device.name}: port 0x${p.toString(16)} is already claimed by ${this.names[taken]}`,
        );
      }
    }
    const index = this.handlers.length;
    this.handlers.push(device);
    this.names.push(device.name);
    this.owner.fill(index, firstPort, firstPort + count);
    this.base.fill(firstPort, firstPort, firstPort + count);
  }

  /** The name of the device decoding `port`, or undefined. */
  deviceAt(port: number): string | undefined {
    const index = this.owner[port & 0xffff];
    return index === -1 ? undefined : this.names[index];
  }

  in(port: number, size: AccessSize): number {
    port &= 0xffff;
    const index = this.owner[port];
    if (index === -1) return sizeMask(size);
    return (this.handlers[index].portRead(port - this.base[port], size) & sizeMask(size)) >>> 0;
  }

  out(port: number, size: AccessSize, value: number): void {
    port &= 0xffff;
    const index = this.owner[port];
    if (index === -1) return;
    this.handlers[index].portWrite(port - this.base[port], size, (value & sizeMask(size)) >>> 0);
  }
}
