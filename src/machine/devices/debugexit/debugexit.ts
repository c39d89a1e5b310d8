// An exit device compatible with QEMU's `isa-debug-exit` (iobase 0xF4): a write of value V asks
// the machine to stop, and the host process then exits with status (V << 1) | 1. The status is
// always odd, so a test kernel can never fake a clean exit 0 by accident.
//
// Accesses of 1, 2 or 4 bytes are accepted and V is the value written, masked to the access
// size. Only the first write counts: the CPU finishes the current instruction before it stops,
// and a later write in the same slice must not overwrite the recorded value. Reads return all
// ones, as QEMU's device (write-only) does.

import { type AccessSize, type PortDevice, sizeMask } from "../device.ts";

export const DEBUGEXIT_PORT = 0xf4;

export interface DebugExitState {
  exitValue: number | null;
}

export class DebugExit implements PortDevice<DebugExitState> {
  readonly name = "debugexit";
  readonly portCount = 1;
  /** The value the guest wrote, or null while it has not asked to exit. */
  exitValue: number | null = null;

  /** `requestStop` is called once, on the first write (the machine stops its CPU there). */
  constructor(private readonly requestStop: () => void) {}

  /** The host process exit status QEMU would produce for `value`, reduced to 8 bits by the OS. */
  static processStatus(value: number): number {
    return (((value << 1) | 1) & 0xff) >>> 0;
  }

  reset(): void {
    this.exitValue = null;
  }

  portRead(_offset: number, size: AccessSize): number {
    return sizeMask(size);
  }

  portWrite(_offset: number, _size: AccessSize, value: number): void {
    if (this.exitValue !== null) return;
    this.exitValue = value >>> 0;
    this.requestStop();
  }

  save(): DebugExitState {
    return { exitValue: this.exitValue };
  }

  restore(state: DebugExitState): void {
    this.exitValue = state.exitValue === null ? null : state.exitValue >>> 0;
  }
}
