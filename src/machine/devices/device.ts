// The one shape every device model has, and how a device claims I/O ports.
//
// A device is a plain state machine: it is driven by port accesses from a CPU and by calls from
// its host side (bytes typed on a console, a timer), and it reaches the outside world only
// through callbacks given to its constructor. `save()` returns plain data (numbers, strings,
// arrays, nested objects) that survives JSON, so save/restore and migration need no per-device
// code; `restore(save())` is the identity on observable behaviour.

export type AccessSize = 1 | 2 | 4;

export interface Device<S> {
  /** Short, stable name used in logs and saved state ("uart16550", "debugexit", ...). */
  readonly name: string;
  /** Returns the device to its power-on state. */
  reset(): void;
  save(): S;
  restore(state: S): void;
}

/**
 * Port I/O handler. `offset` is the port minus the base the device was registered at, so one
 * model serves any base address (COM1 at 0x3F8, COM2 at 0x2F8). The bus routes an access by its
 * first port; a 2- or 4-byte access is the device's to interpret. Reads return the value masked
 * to `size` bytes.
 */
export interface PortHandler {
  portRead(offset: number, size: AccessSize): number;
  portWrite(offset: number, size: AccessSize, value: number): void;
}

/** A device that decodes a range of ports. */
export interface PortDevice<S> extends Device<S>, PortHandler {
  /** How many consecutive ports the device decodes. */
  readonly portCount: number;
}

/** Where output bytes of a console-like device go (the host's stdout, a test's transcript). */
export type ByteSink = (byte: number) => void;

export function sizeMask(size: AccessSize): number {
  return size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff;
}
