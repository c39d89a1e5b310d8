// The PV console backend (xenconsoled's part, xen-pv-abi.md §7.3): the `xencons_interface`
// ring in one page of the guest's RAM (start_info.console.domU.mfn), notified through the
// console event channel (start_info.console.domU.evtchn).
//
//   in[1024] @0 (backend → guest)   out[2048] @1024 (guest → backend)
//   in_cons @3072  in_prod @3076  out_cons @3080  out_prod @3084   (u32, free-running)
//
// The guest writes out[out_prod & 2047], bumps out_prod and sends on the port; the backend
// consumes up to out_prod, bumps out_cons and notifies back. The backend drains
// synchronously on every send and whenever the guest yields, blocks or polls (pitfall 30:
// GRUB and Mach spin on `SCHEDOP_yield` until out_cons == out_prod).
//
// Invariants:
// - C1. The backend only reads and writes the ring page and the indices it owns (out_cons,
//   in_prod); a guest that corrupts its indices loses at most the bytes in between (the
//   backend resynchronises to out_prod), never the host.
// - C2. Everything drained is passed to the sink in order and kept in `transcript` (also
//   after the domain shut down or crashed).
// - C3. Host input is never reordered: what does not fit in the `in` ring waits in `pendingIn`
//   (up to MAX_PENDING_INPUT bytes, then the newest input is refused) and goes in, oldest
//   first, whenever the guest notifies, yields, blocks or polls.

import type { Domain } from "../../xen/domain.ts";

export const CONS_IN = 0;
export const CONS_IN_SIZE = 1024;
export const CONS_OUT = 1024;
export const CONS_OUT_SIZE = 2048;
export const CONS_IN_CONS = 3072;
export const CONS_IN_PROD = 3076;
export const CONS_OUT_CONS = 3080;
export const CONS_OUT_PROD = 3084;

/** Host input kept while the guest's `in` ring is full (xenconsoled buffers similarly). */
export const MAX_PENDING_INPUT = 64 * 1024;

export interface ConsoleBackendOptions {
  /** Receives the guest's output as it is drained. */
  sink?: (text: string) => void;
}

export class ConsoleBackend {
  readonly domain: Domain;
  /** The console event channel (the guest's end; raise() notifies the guest). */
  readonly port: number;
  /** Machine frame of the ring page, once attached. */
  mfn = -1;
  /** All output drained so far (C2). */
  readonly transcript: string[] = [];
  private readonly sink: ((text: string) => void) | undefined;
  private readonly decoder = new TextDecoder("utf-8");
  private draining = false;
  /** Host input not yet in the ring (C3). */
  private pendingIn: Uint8Array[] = [];
  private pendingBytes = 0;

  /** Binds the console port (before the domain is built: start_info carries it). */
  constructor(d: Domain, options: ConsoleBackendOptions = {}) {
    this.domain = d;
    this.sink = options.sink;
    this.port = d.evtchn.bindBackend(() => this.service());
    d.onBackendPoll(() => this.service());
  }

  /** Attaches the ring page (start_info.console.domU.mfn, after the build). */
  attach(mfn: number): void {
    this.mfn = mfn;
  }

  private dv(): DataView {
    const u8 = this.domain.xen.memory.u8;
    return new DataView(u8.buffer, u8.byteOffset + this.mfn * 4096, 4096);
  }

  /** The whole output so far. */
  text(): string {
    return this.transcript.join("");
  }

  /** Consumes the guest's output ring; returns the number of bytes taken (C1, C2). */
  drain(): number {
    if (this.mfn < 0 || this.draining || this.domain.state === "dead") return 0;
    this.draining = true;
    try {
      const dv = this.dv();
      const prod = dv.getUint32(CONS_OUT_PROD, true);
      let cons = dv.getUint32(CONS_OUT_CONS, true);
      let n = (prod - cons) >>> 0;
      if (n === 0) return 0;
      if (n > CONS_OUT_SIZE) {
        // Corrupt indices: keep the last ring's worth (xenconsoled drops the excess too).
        cons = (prod - CONS_OUT_SIZE) >>> 0;
        n = CONS_OUT_SIZE;
      }
      const bytes = new Uint8Array(n);
      for (let i = 0; i < n; i++) bytes[i] = dv.getUint8(CONS_OUT + ((cons + i) & (CONS_OUT_SIZE - 1)));
      dv.setUint32(CONS_OUT_CONS, prod, true);
      const text = this.decoder.decode(bytes, { stream: true });
      if (text.length > 0) {
        this.transcript.push(text);
        this.sink?.(text);
      }
      if (this.domain.state !== "shutdown") this.domain.evtchn.raise(this.port);
      return n;
    } finally {
      this.draining = false;
    }
  }

  /** Everything the guest's notification or yield asks for: output drained, input fed (C3). */
  service(): void {
    this.drain();
    if (this.pendingBytes > 0) this.feed();
  }

  /** Bytes of host input waiting for room in the ring. */
  get pendingInput(): number {
    return this.pendingBytes;
  }

  /**
   * Host input for the guest: as much as fits goes into the `in` ring now, the rest waits
   * (C3). Returns how many bytes were accepted (into the ring or the queue); input beyond
   * MAX_PENDING_INPUT waiting bytes is refused.
   */
  input(data: string | Uint8Array): number {
    if (this.mfn < 0 || this.domain.state === "dead") return 0;
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    const room = MAX_PENDING_INPUT - this.pendingBytes;
    const take = bytes.length <= room ? bytes : bytes.subarray(0, Math.max(0, room));
    if (take.length === 0) return 0;
    this.pendingIn.push(take.slice());
    this.pendingBytes += take.length;
    this.feed();
    return take.length;
  }

  /** Moves waiting input into the `in` ring, oldest first, and notifies the guest. */
  private feed(): void {
    if (this.mfn < 0 || this.domain.state === "dead") return;
    const dv = this.dv();
    const cons = dv.getUint32(CONS_IN_CONS, true);
    let prod = dv.getUint32(CONS_IN_PROD, true);
    // Corrupt indices (prod - cons beyond the ring): the guest gets nothing until it repairs
    // them; nothing outside the ring is written (C1).
    let moved = 0;
    while (this.pendingIn.length > 0 && (prod - cons) >>> 0 < CONS_IN_SIZE) {
      const chunk = this.pendingIn[0];
      let k = 0;
      while (k < chunk.length && (prod - cons) >>> 0 < CONS_IN_SIZE) {
        dv.setUint8(CONS_IN + (prod & (CONS_IN_SIZE - 1)), chunk[k++]);
        prod = (prod + 1) >>> 0;
      }
      moved += k;
      if (k === chunk.length) this.pendingIn.shift();
      else this.pendingIn[0] = chunk.subarray(k);
    }
    if (moved === 0) return;
    this.pendingBytes -= moved;
    dv.setUint32(CONS_IN_PROD, prod, true);
    if (this.domain.state === "running") this.domain.evtchn.raise(this.port);
  }
}
