// The xenstore ring server for one domain (xenstored's per-domain connection, xen-pv-abi.md
// §7.4, toolstack-and-ecosystem.md §1.10): the `xenstore_domain_interface` page
// (start_info.store_mfn) notified through the store event channel (start_info.store_evtchn).
//
//   req[1024] @0 (guest → store)  rsp[1024] @1024 (store → guest)
//   req_cons @2048 req_prod @2052 rsp_cons @2056 rsp_prod @2060 (u32, free-running)
//   server_features @2064 connection @2068 error @2072
//
// Each message is an `xsd_sockmsg` header {type, req_id, tx_id, len} (u32 LE) then `len`
// payload bytes (len ≤ 4096). Replies echo req_id/tx_id.
//
// Invariants:
// - X1. A request is consumed only once it is whole, and copied out of the shared page once
//   (header and payload) before it is parsed: the guest cannot change it under us.
// - X2. A malformed request (len > 4096, unknown type, bad path, missing NUL) gets XS_ERROR
//   "EINVAL" (or the fitting errno), never a host exception. After a bad length the rest of
//   the ring cannot be framed: everything up to req_prod is dropped.
// - X3. Replies that do not fit the rsp ring wait in `pending` and go out as the guest
//   consumes (on its next notify, yield, block or poll).
// - X4. Corrupt indices (more than a ring's worth outstanding) resynchronise to the producer.

import type { Domain } from "../../xen/domain.ts";
import { XenStore } from "./store.ts";

export const XS_RING_SIZE = 1024;
export const XS_REQ = 0;
export const XS_RSP = 1024;
export const XS_REQ_CONS = 2048;
export const XS_REQ_PROD = 2052;
export const XS_RSP_CONS = 2056;
export const XS_RSP_PROD = 2060;
export const XS_PAYLOAD_MAX = 4096;
export const XS_HDR = 16;

export const XS = {
  CONTROL: 0,
  DIRECTORY: 1,
  READ: 2,
  GET_PERMS: 3,
  WATCH: 4,
  UNWATCH: 5,
  TRANSACTION_START: 6,
  TRANSACTION_END: 7,
  INTRODUCE: 8,
  RELEASE: 9,
  GET_DOMAIN_PATH: 10,
  WRITE: 11,
  MKDIR: 12,
  RM: 13,
  SET_PERMS: 14,
  WATCH_EVENT: 15,
  ERROR: 16,
  IS_DOMAIN_INTRODUCED: 17,
  RESUME: 18,
  SET_TARGET: 19,
  RESET_WATCHES: 21,
  DIRECTORY_PART: 22,
} as const;

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8");

export interface XsLogEntry {
  type: number;
  reqId: number;
  txId: number;
  payload: string;
  reply: number;
  replyPayload: string;
}

export class XenStoreRing {
  readonly domain: Domain;
  readonly store: XenStore;
  readonly port: number;
  mfn = -1;
  /** Every request served (type, payload, reply), for tracing and tests. */
  readonly log: XsLogEntry[] = [];
  private pending: Uint8Array[] = [];
  private busy = false;
  private nextTx = 1;

  constructor(d: Domain, store: XenStore) {
    this.domain = d;
    this.store = store;
    this.port = d.evtchn.bindBackend(() => this.service());
    d.onBackendPoll(() => this.service());
  }

  attach(mfn: number): void {
    this.mfn = mfn;
  }

  get home(): string {
    return `/local/domain/${this.domain.id}`;
  }

  private dv(): DataView {
    const u8 = this.domain.xen.memory.u8;
    return new DataView(u8.buffer, u8.byteOffset + this.mfn * 4096, 4096);
  }

  /** Serves every whole request in the ring and flushes replies; returns requests handled. */
  service(): number {
    if (this.mfn < 0 || this.busy || this.domain.state === "dead") return 0;
    this.busy = true;
    let handled = 0;
    let notify = false;
    try {
      notify = this.flush();
      const dv = this.dv();
      for (;;) {
        const prod = dv.getUint32(XS_REQ_PROD, true);
        let cons = dv.getUint32(XS_REQ_CONS, true);
        let avail = (prod - cons) >>> 0;
        if (avail > XS_RING_SIZE) {
          cons = prod; // X4
          dv.setUint32(XS_REQ_CONS, cons, true);
          avail = 0;
        }
        if (avail < XS_HDR) break;
        const hdr = this.copyReq(dv, cons, XS_HDR); // X1
        const h = new DataView(hdr.buffer);
        const type = h.getUint32(0, true);
        const reqId = h.getUint32(4, true);
        const txId = h.getUint32(8, true);
        const len = h.getUint32(12, true);
        if (len > XS_PAYLOAD_MAX) {
          // X2: cannot frame what follows; drop it all.
          dv.setUint32(XS_REQ_CONS, prod, true);
          this.reply(XS.ERROR, reqId, txId, "EINVAL", { type, reqId, txId, payload: "", len });
          handled++;
          notify = true;
          continue;
        }
        if (len > XS_RING_SIZE - XS_HDR) {
          // Larger than the ring: the guest would stream it as we consume. Take what is there.
          if (avail < XS_HDR) break;
        }
        if (avail < XS_HDR + len && len <= XS_RING_SIZE - XS_HDR) break; // not whole yet
        let payload: Uint8Array;
        if (len <= XS_RING_SIZE - XS_HDR) {
          payload = this.copyReq(dv, cons + XS_HDR, len);
          dv.setUint32(XS_REQ_CONS, (cons + XS_HDR + len) >>> 0, true);
        } else {
          // Streamed large request: not supported (no guest we run sends one); reject.
          dv.setUint32(XS_REQ_CONS, prod, true);
          this.reply(XS.ERROR, reqId, txId, "E2BIG", { type, reqId, txId, payload: "", len });
          handled++;
          notify = true;
          continue;
        }
        this.handle(type, reqId, txId, payload);
        handled++;
        notify = true;
      }
      if (this.flush()) notify = true;
    } catch (e) {
      // X2: never a host exception from guest data.
      this.domain.xen.logLines.push(`xenstore d${this.domain.id}: ${(e as Error).message}`);
    } finally {
      this.busy = false;
    }
    if (notify && this.domain.state === "running") this.domain.evtchn.raise(this.port);
    return handled;
  }

  private copyReq(dv: DataView, at: number, n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = dv.getUint8(XS_REQ + (((at + i) >>> 0) & (XS_RING_SIZE - 1)));
    return out;
  }

  /** Writes queued replies into the rsp ring as space allows (X3); true if anything moved. */
  private flush(): boolean {
    if (this.pending.length === 0) return false;
    const dv = this.dv();
    let moved = false;
    while (this.pending.length > 0) {
      const msg = this.pending[0];
      const cons = dv.getUint32(XS_RSP_CONS, true);
      let prod = dv.getUint32(XS_RSP_PROD, true);
      let used = (prod - cons) >>> 0;
      if (used > XS_RING_SIZE) used = XS_RING_SIZE; // X4: a confused guest; wait
      const space = XS_RING_SIZE - used;
      if (space === 0) break;
      const n = Math.min(space, msg.length);
      for (let i = 0; i < n; i++) {
        dv.setUint8(XS_RSP + (prod & (XS_RING_SIZE - 1)), msg[i]);
        prod = (prod + 1) >>> 0;
      }
      dv.setUint32(XS_RSP_PROD, prod, true);
      moved = true;
      if (n === msg.length) this.pending.shift();
      else {
        this.pending[0] = msg.subarray(n);
        break;
      }
    }
    return moved;
  }

  private reply(type: number, reqId: number, txId: number, body: string | Uint8Array, req?: { type: number; reqId: number; txId: number; payload: string; len?: number }): void {
    const bytes = typeof body === "string" ? enc.encode(type === XS.ERROR ? `${body}\0` : body) : body;
    const msg = new Uint8Array(XS_HDR + bytes.length);
    const h = new DataView(msg.buffer);
    h.setUint32(0, type, true);
    h.setUint32(4, reqId, true);
    h.setUint32(8, txId, true);
    h.setUint32(12, bytes.length, true);
    msg.set(bytes, XS_HDR);
    this.pending.push(msg);
    if (req) {
      this.log.push({ type: req.type, reqId, txId, payload: req.payload, reply: type, replyPayload: dec.decode(bytes) });
    }
  }

  /** Queues a watch event (path, token) for the guest. */
  private watchEvent(path: string, token: string): void {
    this.reply(XS.WATCH_EVENT, 0, 0, `${path}\0${token}\0`);
    if (!this.busy) this.service();
  }

  private resolve(p: string): string | undefined {
    if (p.length === 0) return undefined;
    const abs = p.startsWith("/") ? p : `${this.home}/${p}`;
    const norm = abs.length > 1 && abs.endsWith("/") ? abs.slice(0, -1) : abs;
    return XenStore.valid(norm) ? norm : undefined;
  }

  /** Splits a payload into NUL-terminated strings; undefined if the last one lacks its NUL. */
  private static strings(payload: Uint8Array, n: number): string[] | undefined {
    const out: string[] = [];
    let at = 0;
    for (let k = 0; k < n; k++) {
      const z = payload.indexOf(0, at);
      if (z < 0) {
        // xenstored tolerates a missing final NUL on single-string requests.
        if (k === n - 1 && at <= payload.length) {
          out.push(dec.decode(payload.subarray(at)));
          return out;
        }
        return undefined;
      }
      out.push(dec.decode(payload.subarray(at, z)));
      at = z + 1;
    }
    return out;
  }

  private handle(type: number, reqId: number, txId: number, payload: Uint8Array): undefined {
    const text = dec.decode(payload);
    const req = { type, reqId, txId, payload: text };
    const ok = (body: string | Uint8Array): undefined => {
      this.reply(type, reqId, txId, body, req);
    };
    const err = (e: string): undefined => {
      this.reply(XS.ERROR, reqId, txId, e, req);
    };
    const one = () => {
      const s = XenStoreRing.strings(payload, 1);
      return s ? this.resolve(s[0]) : undefined;
    };
    const domid = this.domain.id;
    switch (type) {
      case XS.READ: {
        const p = one();
        if (!p) return err("EINVAL");
        const v = this.store.read(p);
        return v === undefined ? err("ENOENT") : ok(v);
      }
      case XS.DIRECTORY: {
        const p = one();
        if (!p) return err("EINVAL");
        const d = this.store.directory(p);
        return d === undefined ? err("ENOENT") : ok(d.map((c) => `${c}\0`).join(""));
      }
      case XS.WRITE: {
        const z = payload.indexOf(0);
        if (z < 0) return err("EINVAL");
        const p = this.resolve(dec.decode(payload.subarray(0, z)));
        if (!p) return err("EINVAL");
        if (!this.store.canWrite(domid, p)) return err("EACCES");
        this.store.write(p, dec.decode(payload.subarray(z + 1)), domid);
        return ok("OK\0");
      }
      case XS.MKDIR: {
        const p = one();
        if (!p) return err("EINVAL");
        if (!this.store.canWrite(domid, p)) return err("EACCES");
        this.store.mkdir(p, domid);
        return ok("OK\0");
      }
      case XS.RM: {
        const p = one();
        if (!p) return err("EINVAL");
        if (!this.store.canWrite(domid, p)) return err("EACCES");
        return this.store.rm(p) ? ok("OK\0") : err("ENOENT");
      }
      case XS.GET_PERMS: {
        const p = one();
        if (!p) return err("EINVAL");
        const n = this.store.lookup(p);
        return n ? ok(`n${n.owner}\0`) : err("ENOENT");
      }
      case XS.SET_PERMS: {
        const s = XenStoreRing.strings(payload, 1);
        const p = s ? this.resolve(s[0]) : undefined;
        if (!p) return err("EINVAL");
        if (!this.store.lookup(p)) return err("ENOENT");
        return this.store.canWrite(domid, p) ? ok("OK\0") : err("EACCES"); // accepted, not enforced
      }
      case XS.WATCH: {
        const s = XenStoreRing.strings(payload, 2);
        if (!s) return err("EINVAL");
        const p = s[0].startsWith("@") ? s[0] : this.resolve(s[0]);
        if (!p) return err("EINVAL");
        const token = s[1];
        this.store.watch(this, p, token, (path, tok) => this.watchEvent(s[0].startsWith("/") || s[0].startsWith("@") ? path : path.slice(this.home.length + 1), tok));
        ok("OK\0");
        // As xenstored: a watch fires once when registered.
        this.reply(XS.WATCH_EVENT, 0, 0, `${s[0]}\0${token}\0`);
        return;
      }
      case XS.UNWATCH: {
        const s = XenStoreRing.strings(payload, 2);
        if (!s) return err("EINVAL");
        const p = s[0].startsWith("@") ? s[0] : this.resolve(s[0]);
        if (!p) return err("EINVAL");
        return this.store.unwatch(this, p, s[1]) ? ok("OK\0") : err("ENOENT");
      }
      case XS.RESET_WATCHES:
        this.store.unwatchAll(this);
        return ok("OK\0");
      case XS.TRANSACTION_START:
        return ok(`${this.nextTx++}\0`);
      case XS.TRANSACTION_END:
        return ok("OK\0");
      case XS.GET_DOMAIN_PATH: {
        const s = XenStoreRing.strings(payload, 1);
        if (!s || !/^[0-9]+$/.test(s[0])) return err("EINVAL");
        return ok(`/local/domain/${Number(s[0])}\0`);
      }
      case XS.IS_DOMAIN_INTRODUCED:
        return ok("T\0");
      default:
        // CONTROL, INTRODUCE, RELEASE, RESUME, SET_TARGET: dom0-only; anything else unknown.
        return err(type === XS.CONTROL || (type >= XS.INTRODUCE && type <= XS.SET_TARGET) ? "EACCES" : "EINVAL");
    }
  }
}
