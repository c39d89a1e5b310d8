// Runs floating-point cases on the emulator: the integer tester's runner with the x87/SSE
// state loaded from the case's FXSAVE image first and read back as an image after.
import { EmulatorRunner } from "../difftest/emulator.ts";
import { type Mode, REGION_SIZE, regionFill } from "../difftest/cases.ts";
import { REGION_FRAMES } from "../difftest/usermode.ts";
import { fxsaveImage, loadFxsaveImage } from "../../../src/x86/fp/fxsave.ts";
import type { FpCase, FpResult } from "./cases.ts";

export class FpEmulatorRunner {
  readonly inner: EmulatorRunner;
  private readonly initial = new Uint8Array(REGION_SIZE);
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
    const r = this.inner.run(c, true) as FpResult;
    const fx = new Uint8Array(512);
    fx.set(c.fx);
    fxsaveImage(s, fx, this.mode === 64, n);
    r.fx = fx;
    r.allDiffs = new Map();
    if (r.ndiff > 0) {
      const init = regionFill(c, this.initial);
      const ram = this.inner.um.ram;
      for (let off = 0; off < REGION_SIZE; off++) {
        const v = ram[REGION_FRAMES[off >> 12]! + (off & 0xfff)]!;
        if (v !== init[off]) r.allDiffs.set(off, v);
      }
    }
    return r;
  }
}
