// Runs floating-point cases on the emulator: the integer tester's runner with the x87/SSE
// state loaded from the case's FXSAVE image first and read back as an image after.
import { EmulatorRunner } from "../difftest/emulator.ts";
import type { Mode } from "../difftest/cases.ts";
import { fxsaveImage, loadFxsaveImage } from "../../../src/x86/fp/fxsave.ts";
import type { FpCase, FpResult } from "./cases.ts";

export class FpEmulatorRunner {
  readonly inner: EmulatorRunner;
  constructor(readonly mode: Mode) {
    this.inner = new EmulatorRunner(mode);
  }
  get lastMessage(): string {
    return this.inner.lastMessage;
  }
  run(c: FpCase): FpResult {
    const s = this.inner.um.cpu.s;
    const n = this.mode === 64 ? 16 : 8;
    loadFxsaveImage(s, c.fx, this.mode === 64, n);
    const r = this.inner.run(c) as FpResult;
    const fx = new Uint8Array(512);
    fx.set(c.fx);
    fxsaveImage(s, fx, this.mode === 64, n);
    r.fx = fx;
    return r;
  }
}
