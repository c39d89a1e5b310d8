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

import type { Domain } from "../../xen/domain.ts";

export const CONS_IN = 0;
export const CONS_IN_SIZE = 1024;
export const CONS_OUT = 1024;
export const CONS_OUT_SIZE = 2048;
export const CONS_IN_CONS = 3072;
export const CONS_IN_PROD = 3076;
export const CONS_OUT_CONS = 3080;
export const CONS_OUT_PROD = 3084;

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

  /** Binds the console port (before the domain is built: start_info carries it). */
  constructor(d: Domain, options: ConsoleBackendOptions = {}) {
    this.domain = d;
    this.sink = options.sink;
    this.port = d.evtchn.bindBackend(() => this.drain());
    d.onBackendPoll(() => this.drain());
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

  /** Host input into the guest's `in` ring; returns how many bytes fit (the rest is dropped). */
  input(data: string | Uint8Array): number {
    if (this.mfn < 0 || this.domain.state === "dead") return 0;
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    const dv = this.dv();
    const cons = dv.getUint32(CONS_IN_CONS, true);
    let prod = dv.getUint32(CONS_IN_PROD, true);
    let k = 0;
    while (k < bytes.length && (prod - cons) >>> 0 < CONS_IN_SIZE) {
      dv.setUint8(CONS_IN + (prod & (CONS_IN_SIZE - 1)), bytes[k++]);
      prod = (prod + 1) >>> 0;
    }
    dv.setUint32(CONS_IN_PROD, prod, true);
    if (k > 0 && this.domain.state === "running") this.domain.evtchn.raise(this.port);
    return k;
  }
}
