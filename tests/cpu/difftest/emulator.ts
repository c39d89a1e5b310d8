// Runs differential-test cases on the emulator (src/x86) and reports results in the same
// form as the native harness.
import { EXIT_BUDGET, EXIT_EXCEPTION, EXIT_NAMES } from "../../../src/x86/cpu.ts";
import * as S from "../../../src/x86/state.ts";
import {
  type CaseResult,
  CODE_ADDR,
  MAX_CODE,
  type Mode,
  REGION_SIZE,
  type TestCase,
  VEC_TIMEOUT,
  newResult,
  regionFill,
} from "./cases.ts";
import { CODE_PHYS, REGION_FRAMES, type UserModeCpu, createUserModeCpu } from "./usermode.ts";

/** Emulator outcomes with no native counterpart are reported as vector 0x200 + exit reason. */
export const VEC_EXIT_BASE = 0x200;
/** Instruction budget for one case (a rep-string instruction may count once per iteration). */
const BUDGET = 200_000;

const SIGNAL_OF_VECTOR: Record<number, number> = { 0: 8, 1: 5, 3: 5, 4: 11, 5: 11, 6: 4, 12: 7, 13: 11, 14: 11, 16: 8, 17: 7, 19: 8 };

export class EmulatorRunner {
  readonly um: UserModeCpu;
  private fillSeed = -1;
  private readonly base = new Uint8Array(REGION_SIZE);
  private readonly initial = new Uint8Array(REGION_SIZE);
  private readonly initial32: Int32Array;
  private readonly final = new Uint8Array(REGION_SIZE);
  private readonly final32: Int32Array;
  private lastCodeLen = MAX_CODE + 16;
  /** Message of the last internal error (EXIT_INTERNAL), for reports. */
  lastMessage = "";
  /** The x87/SSE unit as it starts: every case begins from it, as the native harness's cases
   * begin from the harness's own state (fxsave/fxrstor around each case). Without this, a case
   * that leaves an unmasked exception pending (FXRSTOR or FLDENV of random memory) makes every
   * later FWAIT of the run raise #MF. */
  private readonly fpInitial: Int32Array;

  constructor(readonly mode: Mode) {
    this.um = createUserModeCpu(mode);
    this.fpInitial = this.um.cpu.s.slice(S.FXSAVE_AREA);
    this.initial32 = new Int32Array(this.initial.buffer);
    this.final32 = new Int32Array(this.final.buffer);
  }

  /** `keepFpState`: the caller has loaded the case's own x87/SSE state (the FP runner). */
  run(c: TestCase, keepFpState = false): CaseResult {
    const { cpu, ram } = this.um;
    const s = cpu.s;
    // Memory: region contents, code page.
    if (c.fillSeed !== this.fillSeed) {
      regionFill({ ...c, patches: [] }, this.base);
      this.fillSeed = c.fillSeed;
    }
    this.initial.set(this.base);
    for (const pt of c.patches) {
      for (let k = 0; k < pt.bytes.length; k++) if (pt.offset + k < REGION_SIZE) this.initial[pt.offset + k] = pt.bytes[k]!;
    }
    for (let p = 0; p < 3; p++) ram.set(this.initial.subarray(p * 4096, p * 4096 + 4096), REGION_FRAMES[p]!);
    ram.fill(0xcc, CODE_PHYS, CODE_PHYS + this.lastCodeLen);
    ram.set(c.code, CODE_PHYS);
    this.lastCodeLen = c.code.length + 16;
    cpu.invalidatePhysRange(CODE_PHYS, 4096);
    for (let p = 0; p < 3; p++) cpu.invalidatePhysRange(REGION_FRAMES[p]!, 4096);

    // Registers, flags and the x87/SSE state.
    this.um.resetSegments();
    if (!keepFpState) s.set(this.fpInitial, S.FXSAVE_AREA);
    const n = this.mode === 64 ? 16 : 8;
    for (let i = 0; i < 16; i++) cpu.setReg64(i, i < n ? c.regsLo[i]! : 0, i < n && this.mode === 64 ? c.regsHi[i]! : 0);
    cpu.setRip(CODE_ADDR, 0);
    cpu.setEflags((c.eflags & 0xcd5) | 0x202);
    s[S.HALTED] = 0;
    s[S.INTR_SHADOW] = 0;

    const reason = cpu.run(BUDGET);
    const r = newResult(c.id);
    const info = cpu.exitInfo;
    if (reason === EXIT_EXCEPTION) {
      r.vector = info.vector;
      r.errorCode = info.hasErrorCode ? info.errorCode >>> 0 : 0;
      if (info.vector === 14) {
        r.addressLo = info.addressLo >>> 0;
        r.addressHi = this.mode === 64 ? info.addressHi >>> 0 : 0;
      }
      r.signo = SIGNAL_OF_VECTOR[info.vector] ?? 0;
    } else if (reason === EXIT_BUDGET) {
      r.vector = VEC_TIMEOUT;
      r.signo = 14;
    } else {
      r.vector = VEC_EXIT_BASE + reason;
      this.lastMessage = `${EXIT_NAMES[reason] ?? reason}: ${info.message}`;
    }
    for (let i = 0; i < n; i++) {
      r.regsLo[i] = s[i * 2]! >>> 0;
      r.regsHi[i] = this.mode === 64 ? s[i * 2 + 1]! >>> 0 : 0;
    }
    r.ripLo = s[S.RIP_LO]! >>> 0;
    r.ripHi = this.mode === 64 ? s[S.RIP_HI]! >>> 0 : 0;
    // Software exceptions (INT3, INTO) are traps: the host reports RIP after the instruction.
    // A VT-x-style exit leaves RIP at the instruction and gives its length instead.
    if (reason === EXIT_EXCEPTION && (info.vector === 3 || info.vector === 4) && info.instructionLength > 0) {
      const lo = r.ripLo + info.instructionLength;
      r.ripLo = lo >>> 0;
      if (lo > 0xffffffff && this.mode === 64) r.ripHi = (r.ripHi + 1) >>> 0;
    }
    r.eflags = cpu.getEflags();

    // Region differences against the initial contents.
    for (let p = 0; p < 3; p++) this.final.set(ram.subarray(REGION_FRAMES[p]!, REGION_FRAMES[p]! + 4096), p * 4096);
    let nd = 0;
    let h = 2166136261;
    const a32 = this.initial32;
    const b32 = this.final32;
    for (let w = 0; w < REGION_SIZE / 4; w++) {
      if (a32[w] === b32[w]) continue;
      for (let k = 0; k < 4; k++) {
        const off = w * 4 + k;
        const v = this.final[off]!;
        if (v === this.initial[off]) continue;
        if (nd < 48) r.diffs.push({ offset: off, value: v });
        nd++;
        h = Math.imul(h ^ (off & 0xff), 16777619) >>> 0;
        h = Math.imul(h ^ (off >>> 8), 16777619) >>> 0;
        h = Math.imul(h ^ v, 16777619) >>> 0;
      }
    }
    r.ndiff = nd;
    r.diffHash = h >>> 0;
    return r;
  }
}

