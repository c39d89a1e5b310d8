// The Bochs/QEMU debug console: a one-port character device at 0xE9 ("port E9 hack").
//
// Every write sends its low byte to the sink; a read returns 0xE9, which is how guests probe
// for the device's presence (Bochs and QEMU's isa-debugcon both answer that way).

import type { AccessSize, ByteSink, PortDevice } from "../device.ts";

export const DEBUGCON_PORT = 0xe9;
const PRESENCE_VALUE = 0xe9;

export class DebugCon implements PortDevice<Record<string, never>> {
  readonly name = "debugcon";
  readonly portCount = 1;

  constructor(private readonly output: ByteSink) {}

  reset(): void {}

  portRead(_offset: number, _size: AccessSize): number {
    return PRESENCE_VALUE;
  }

  portWrite(_offset: number, _size: AccessSize, value: number): void {
    this.output(value & 0xff);
  }

  save(): Record<string, never> {
    return {};
  }

  restore(_state: Record<string, never>): void {}
}
