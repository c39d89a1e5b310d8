// The bare machine: machine memory, one vCPU, a port I/O bus and four devices (16550 UART at
// 0x3F8, debug console at 0xE9, isa-debug-exit at 0xF4, benchmark marker at 0xE8). It boots a
// Multiboot kernel and runs it until the kernel asks to exit, halts, faults beyond repair or
// runs out of time. This is where processor test kernels and benchmarks run; no hypervisor.
//
// Invariants:
// - The CPU runs in slices of at most SLICE_INSTRUCTIONS; between slices the run loop returns
//   to Node's event loop at least every YIELD_MS of wall time, so host input, signals and the
//   timeout keep working while a kernel spins.
// - Until the guest loads an IDT (IDTR.limit stays 0, as the Multiboot entry leaves it), every
//   exception exits to us, since the guest could not have handled it: it is reported with its
//   vector and RIP instead of ending, after #GP and #DF, in a bare "triple fault". Once the
//   guest has an IDT, exceptions go through it, and one that exited before we noticed the new
//   IDT is injected back as if it had never left.
// - Guest output is buffered and handed to `output` at slice boundaries and at the end, so a
//   kernel printing a byte at a time costs an array store per byte, not a write(2).

import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import {
  Cpu,
  EXIT_BUDGET,
  EXIT_EXCEPTION,
  EXIT_HLT,
  EXIT_INTERNAL,
  EXIT_NAMES,
  EXIT_REQUESTED,
  EXIT_TRIPLE_FAULT,
} from "../x86/cpu.ts";
import * as S from "../x86/state.ts";
import { DEBUGCON_PORT, DebugCon } from "./devices/debugcon/debugcon.ts";
import { DEBUGEXIT_PORT, DebugExit } from "./devices/debugexit/debugexit.ts";
import { MARKER_PORT, Marker } from "./devices/marker/marker.ts";
import { COM1_PORT, Uart16550 } from "./devices/uart16550/uart16550.ts";
import { IoBus } from "./iobus.ts";
import { MachineMemory } from "./memory.ts";
import { loadMultiboot, type MultibootEntry, type MultibootModuleInput } from "./multiboot.ts";

export const SLICE_INSTRUCTIONS = 1_000_000;
const YIELD_MS = 10;
const OUTPUT_BUFFER_BYTES = 64 * 1024;

/** Host exit statuses for outcomes other than debug-exit (whose statuses are all odd). */
export const STATUS_HALTED = 0;
export const STATUS_BAD_INPUT = 2;
export const STATUS_TRIPLE_FAULT = 4;
export const STATUS_UNHANDLED_EXCEPTION = 6;
export const STATUS_INTERNAL_ERROR = 8;
export const STATUS_TIMEOUT = 124; // as timeout(1)

export type RunOutcome =
  | { kind: "debug-exit"; value: number }
  | { kind: "halted"; rip: string; interruptsEnabled: boolean }
  | { kind: "triple-fault"; rip: string }
  | { kind: "exception"; vector: number; errorCode: number | null; rip: string }
  | { kind: "timeout"; seconds: number }
  | { kind: "internal"; message: string };

export interface RunResult {
  outcome: RunOutcome;
  /** Instructions retired during this run. */
  instructions: number;
  /** Wall-clock seconds spent in this run. */
  seconds: number;
}

/** A marker write noted by the machine (see devices/marker). */
export interface Mark {
  value: number;
  /** cpu.retired after the marker instruction completed. */
  retired: number;
  /** performance.now() at that moment, in milliseconds. */
  timeMs: number;
  /** CPU time this process had used (user + system), in ms: steadier than wall time on a busy host. */
  cpuMs: number;
}

export interface BareMachineOptions {
  memoryBytes: number;
  /** Receives guest console output (UART and debug console, interleaved as written). */
  output: (bytes: Uint8Array) => void;
}

const EXCEPTION_NAMES = [
  "#DE",
  "#DB",
  "NMI",
  "#BP",
  "#OF",
  "#BR",
  "#UD",
  "#NM",
  "#DF",
  "#MF(9)",
  "#TS",
  "#NP",
  "#SS",
  "#GP",
  "#PF",
  "(15)",
  "#MF",
  "#AC",
  "#MC",
  "#XM",
  "#VE",
  "#CP",
];

export function exceptionName(vector: number): string {
  return EXCEPTION_NAMES[vector] ?? `vector ${vector}`;
}

/** The host process exit status for an outcome. */
export function outcomeStatus(outcome: RunOutcome): number {
  switch (outcome.kind) {
    case "debug-exit":
      return DebugExit.processStatus(outcome.value);
    case "halted":
      return STATUS_HALTED;
    case "triple-fault":
      return STATUS_TRIPLE_FAULT;
    case "exception":
      return STATUS_UNHANDLED_EXCEPTION;
    case "timeout":
      return STATUS_TIMEOUT;
    case "internal":
      return STATUS_INTERNAL_ERROR;
  }
}

/** One line for the host's stderr describing how the run ended. */
export function describeOutcome(outcome: RunOutcome): string {
  switch (outcome.kind) {
    case "debug-exit":
      return `guest wrote ${outcome.value} to the exit port 0xf4`;
    case "halted":
      return outcome.interruptsEnabled
        ? `guest halted at ${outcome.rip} with interrupts enabled, but the bare machine has no interrupt source`
        : `guest halted at ${outcome.rip} with interrupts disabled`;
    case "triple-fault":
      return `triple fault at ${outcome.rip}`;
    case "exception": {
      const code = outcome.errorCode === null ? "" : ` (error code 0x${outcome.errorCode.toString(16)})`;
      return `unhandled exception ${exceptionName(outcome.vector)}${code} at ${outcome.rip} before the guest loaded an IDT`;
    }
    case "timeout":
      return `timeout: the guest ran ${outcome.seconds} s without writing to the exit port`;
    case "internal":
      return `internal emulator error: ${outcome.message}`;
  }
}

export class BareMachine {
  readonly memory: MachineMemory;
  readonly io = new IoBus();
  readonly cpu: Cpu;
  readonly uart: Uart16550;
  readonly debugcon: DebugCon;
  readonly debugexit: DebugExit;
  readonly marker: Marker;
  /** Marker writes noted so far, in order. */
  readonly marks: Mark[] = [];
  private readonly output: (bytes: Uint8Array) => void;
  private readonly outBuffer = new Uint8Array(OUTPUT_BUFFER_BYTES);
  private outLength = 0;

  constructor(options: BareMachineOptions) {
    this.memory = new MachineMemory(options.memoryBytes);
    this.output = options.output;
    this.cpu = new Cpu({ memory: this.memory, io: this.io });
    const sink = (byte: number) => this.emit(byte);
    const stop = () => this.cpu.requestExit();
    this.uart = new Uart16550({ output: sink });
    this.debugcon = new DebugCon(sink);
    this.debugexit = new DebugExit(stop);
    this.marker = new Marker(stop);
    this.io.register(COM1_PORT, this.uart);
    this.io.register(DEBUGCON_PORT, this.debugcon);
    this.io.register(DEBUGEXIT_PORT, this.debugexit);
    this.io.register(MARKER_PORT, this.marker);
  }

  /**
   * Loads a Multiboot kernel and its modules and puts the CPU in the state the specification
   * prescribes: 32-bit protected mode with flat 4 GiB code and data segments, paging off,
   * interrupts off, EAX = 0x2BADB002, EBX = the info structure. GDTR and IDTR are left empty
   * (the specification leaves them undefined; a kernel loads its own before using them).
   * Throws MultibootError for a malformed image.
   */
  boot(
    kernel: Uint8Array,
    options: { cmdline?: string; modules?: readonly MultibootModuleInput[] } = {},
  ): MultibootEntry {
    const entry = loadMultiboot(this.memory, kernel, options);
    const cpu = this.cpu;
    cpu.reset();
    cpu.invalidatePhysRange(0, this.memory.ramBytes);
    const s = cpu.s;
    s[S.CR0] = S.CR0_PE | S.CR0_ET;
    const flatCode = S.ATTR_G | S.ATTR_DB | S.ATTR_P | S.ATTR_S | S.ATTR_CODE | S.ATTR_RW | S.ATTR_ACCESSED;
    const flatData = S.ATTR_G | S.ATTR_DB | S.ATTR_P | S.ATTR_S | S.ATTR_RW | S.ATTR_ACCESSED;
    for (const seg of [S.SEG_ES, S.SEG_SS, S.SEG_DS, S.SEG_FS, S.SEG_GS]) {
      cpu.loadSegmentRaw(seg, 0x10, 0, 0xffffffff, flatData);
    }
    cpu.loadSegmentRaw(S.SEG_CS, 0x08, 0, 0xffffffff, flatCode);
    s[S.GDTR_BASE_LO] = 0;
    s[S.GDTR_LIMIT] = 0;
    s[S.IDTR_BASE_LO] = 0;
    s[S.IDTR_LIMIT] = 0;
    cpu.updateMode();
    cpu.setEflags(0x2);
    cpu.setReg32(S.REG_EAX, entry.eax);
    cpu.setReg32(S.REG_EBX, entry.ebx);
    cpu.setRip(entry.entry);
    cpu.controls.exceptionBitmap = -1;
    for (const d of [this.uart, this.debugcon, this.debugexit, this.marker]) d.reset();
    this.marks.length = 0;
    return entry;
  }

  /**
   * Runs the booted kernel until it ends. `timeoutMs` (0 = none) bounds the wall-clock time.
   * `onMark` is called after each marker write has been noted.
   */
  async run(options: { timeoutMs?: number; onMark?: (mark: Mark) => void } = {}): Promise<RunResult> {
    const cpu = this.cpu;
    const startMs = performance.now();
    const startRetired = cpu.retired;
    const deadline = options.timeoutMs ? startMs + options.timeoutMs : Number.POSITIVE_INFINITY;
    let lastYield = startMs;
    let outcome: RunOutcome | undefined;
    while (outcome === undefined) {
      if (cpu.controls.exceptionBitmap !== 0 && this.guestHasIdt()) cpu.controls.exceptionBitmap = 0;
      let reason: number;
      try {
        reason = cpu.run(SLICE_INSTRUCTIONS);
      } catch (e) {
        // The processor promises never to throw; if it does anyway, end this guest, not the host.
        outcome = { kind: "internal", message: `the processor threw: ${(e as Error).stack ?? e}` };
        break;
      }
      for (const value of this.marker.drain()) {
        const usage = process.cpuUsage();
        const mark = { value, retired: cpu.retired, timeMs: performance.now(), cpuMs: (usage.user + usage.system) / 1000 };
        this.marks.push(mark);
        options.onMark?.(mark);
      }
      // A write to the exit port wins over whatever the CPU ran into before it stopped.
      if (this.debugexit.exitValue !== null) {
        outcome = { kind: "debug-exit", value: this.debugexit.exitValue };
        break;
      }
      switch (reason) {
        case EXIT_BUDGET:
        case EXIT_REQUESTED:
          break;
        case EXIT_HLT:
          outcome = {
            kind: "halted",
            rip: this.ripText(),
            interruptsEnabled: (cpu.getEflags() & S.F_IF) !== 0,
          };
          break;
        case EXIT_TRIPLE_FAULT:
          outcome = { kind: "triple-fault", rip: this.ripText() };
          break;
        case EXIT_EXCEPTION:
          outcome = this.exceptionExit();
          break;
        case EXIT_INTERNAL:
          outcome = { kind: "internal", message: cpu.exitInfo.message };
          break;
        default:
          outcome = { kind: "internal", message: `unexpected CPU exit "${EXIT_NAMES[reason] ?? reason}"` };
      }
      const now = performance.now();
      if (outcome === undefined && now >= deadline) {
        outcome = { kind: "timeout", seconds: Math.round((now - startMs) / 100) / 10 };
      }
      if (outcome === undefined && now - lastYield >= YIELD_MS) {
        this.flushOutput();
        await yieldToEventLoop();
        lastYield = performance.now();
      }
    }
    this.flushOutput();
    return {
      outcome,
      instructions: cpu.retired - startRetired,
      seconds: (performance.now() - startMs) / 1000,
    };
  }

  private guestHasIdt(): boolean {
    return this.cpu.s[S.IDTR_LIMIT] !== 0;
  }

  /** An exception exited to us: report it, or reflect it into the IDT the guest has loaded since. */
  private exceptionExit(): RunOutcome | undefined {
    const cpu = this.cpu;
    const info = cpu.exitInfo;
    if (this.guestHasIdt()) {
      cpu.controls.exceptionBitmap = 0;
      if (info.vector === S.VEC_PF) {
        cpu.s[S.CR2_LO] = info.addressLo;
        cpu.s[S.CR2_HI] = info.addressHi;
      }
      cpu.injectEvent(info.vector, 3, info.errorCode, info.hasErrorCode);
      return undefined;
    }
    return {
      kind: "exception",
      vector: info.vector,
      errorCode: info.hasErrorCode ? info.errorCode >>> 0 : null,
      rip: this.ripText(),
    };
  }

  private ripText(): string {
    const s = this.cpu.s;
    const hi = s[S.RIP_HI] >>> 0;
    const lo = (s[S.RIP_LO] >>> 0).toString(16);
    return hi === 0 ? `rip 0x${lo}` : `rip 0x${hi.toString(16)}${lo.padStart(8, "0")}`;
  }

  private emit(byte: number): void {
    if (this.outLength === OUTPUT_BUFFER_BYTES) this.flushOutput();
    this.outBuffer[this.outLength++] = byte;
  }

  /** Hands buffered guest output to the host (a copy, so the host may keep it). */
  flushOutput(): void {
    if (this.outLength === 0) return;
    this.output(this.outBuffer.slice(0, this.outLength));
    this.outLength = 0;
  }
}
