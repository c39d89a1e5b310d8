import assert from "node:assert/strict";
import { test } from "node:test";
import { Xen } from "../../xen/hypervisor.ts";
import { XS, XS_HDR, XS_REQ, XS_REQ_CONS, XS_REQ_PROD, XS_RSP, XS_RSP_CONS, XS_RSP_PROD, XenStoreRing } from "./ring.ts";
import { XenStore } from "./store.ts";

function setup() {
  const xen = new Xen({ memoryBytes: 4 * 1024 * 1024, deterministic: true });
  const d = xen.createDomain({ guestType: "pv32", name: "t" });
  const mfn = xen.allocator.allocate(d.id, 1)[0];
  const store = new XenStore();
  const ring = new XenStoreRing(d, store);
  ring.attach(mfn);
  store.introduceDomain(d.id, { name: "t", memoryKiB: 4096, storeMfn: mfn, storePort: ring.port });
  const u8 = xen.memory.u8;
  const dv = new DataView(u8.buffer, u8.byteOffset + mfn * 4096, 4096);
  dv.setUint32(XS_REQ_CONS, 0, true);
  dv.setUint32(XS_REQ_PROD, 0, true);
  dv.setUint32(XS_RSP_CONS, 0, true);
  dv.setUint32(XS_RSP_PROD, 0, true);
  const push = (bytes: Uint8Array) => {
    let prod = dv.getUint32(XS_REQ_PROD, true);
    for (const b of bytes) {
      dv.setUint8(XS_REQ + (prod & 1023), b);
      prod = (prod + 1) >>> 0;
    }
    dv.setUint32(XS_REQ_PROD, prod, true);
  };
  const send = (type: number, payload: string, reqId = 7, len?: number) => {
    const body = new TextEncoder().encode(payload);
    const h = new DataView(new ArrayBuffer(XS_HDR));
    h.setUint32(0, type, true);
    h.setUint32(4, reqId, true);
    h.setUint32(8, 0, true);
    h.setUint32(12, len ?? body.length, true);
    push(new Uint8Array(h.buffer));
    push(body);
  };
  /** Reads every reply in the rsp ring. */
  const replies = () => {
    const out: { type: number; reqId: number; body: string }[] = [];
    let cons = dv.getUint32(XS_RSP_CONS, true);
    const prod = dv.getUint32(XS_RSP_PROD, true);
    const get = (n: number) => {
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = dv.getUint8(XS_RSP + ((cons + i) & 1023));
      cons = (cons + n) >>> 0;
      return b;
    };
    while ((prod - cons) >>> 0 >= XS_HDR) {
      const h = new DataView(get(XS_HDR).buffer);
      out.push({ type: h.getUint32(0, true), reqId: h.getUint32(4, true), body: new TextDecoder().decode(get(h.getUint32(12, true))) });
    }
    dv.setUint32(XS_RSP_CONS, cons, true);
    return out;
  };
  return { xen, d, store, ring, dv, send, push, replies };
}

test("xenstore ring: read, write, directory, domain path", () => {
  const t = setup();
  t.send(XS.READ, "name\0");
  t.send(XS.WRITE, "data/x\0hello", 8);
  t.send(XS.READ, `/local/domain/${t.d.id}/data/x\0`, 9);
  t.send(XS.DIRECTORY, "device\0", 10);
  t.send(XS.GET_DOMAIN_PATH, `${t.d.id}\0`, 11);
  t.send(XS.READ, "device/vbd\0", 12);
  assert.equal(t.ring.service(), 6);
  assert.deepEqual(t.replies(), [
    { type: XS.READ, reqId: 7, body: "t" },
    { type: XS.WRITE, reqId: 8, body: "OK\0" },
    { type: XS.READ, reqId: 9, body: "hello" },
    { type: XS.DIRECTORY, reqId: 10, body: "" },
    { type: XS.GET_DOMAIN_PATH, reqId: 11, body: `/local/domain/${t.d.id}\0` },
    { type: XS.ERROR, reqId: 12, body: "ENOENT\0" },
  ]);
});

test("xenstore ring: a watch fires at registration and on writes below it", () => {
  const t = setup();
  t.send(XS.WATCH, "control/shutdown\0tok\0");
  t.ring.service();
  assert.deepEqual(t.replies(), [
    { type: XS.WATCH, reqId: 7, body: "OK\0" },
    { type: XS.WATCH_EVENT, reqId: 0, body: "control/shutdown\0tok\0" },
  ]);
  t.store.write(`/local/domain/${t.d.id}/control/shutdown`, "poweroff");
  assert.deepEqual(t.replies(), [{ type: XS.WATCH_EVENT, reqId: 0, body: "control/shutdown\0tok\0" }]);
});

test("xenstore ring: malformed requests get XS_ERROR, never a host exception", () => {
  const t = setup();
  t.send(XS.READ, "x", 1, 5000); // len > 4096: EINVAL, the rest of the ring dropped
  t.ring.service();
  assert.deepEqual(t.replies(), [{ type: XS.ERROR, reqId: 1, body: "EINVAL\0" }]);
  assert.equal(t.dv.getUint32(XS_REQ_CONS, true), t.dv.getUint32(XS_REQ_PROD, true));
  t.send(99, "", 2); // unknown type
  t.send(XS.READ, "bad//path\0", 3);
  t.send(XS.READ, "", 4); // empty path
  t.send(XS.WATCH, "onlypath", 5); // missing token
  t.send(XS.WRITE, "/local/domain/0/name\0x", 6); // not ours
  t.send(XS.GET_DOMAIN_PATH, "abc\0", 7);
  t.send(XS.INTRODUCE, "1\0 2\0 3\0", 8);
  t.ring.service();
  assert.deepEqual(
    t.replies().map((r) => [r.type, r.reqId, r.body]),
    [
      [XS.ERROR, 2, "EINVAL\0"],
      [XS.ERROR, 3, "EINVAL\0"],
      [XS.ERROR, 4, "EINVAL\0"],
      [XS.ERROR, 5, "EINVAL\0"],
      [XS.ERROR, 6, "EACCES\0"],
      [XS.ERROR, 7, "EINVAL\0"],
      [XS.ERROR, 8, "EACCES\0"],
    ],
  );
});

test("xenstore ring: partial requests wait; corrupt indices resynchronise; random bytes are safe", () => {
  const t = setup();
  const h = new DataView(new ArrayBuffer(XS_HDR));
  h.setUint32(0, XS.READ, true);
  h.setUint32(4, 3, true);
  h.setUint32(12, 5, true);
  t.push(new Uint8Array(h.buffer));
  t.push(new TextEncoder().encode("na"));
  assert.equal(t.ring.service(), 0);
  t.push(new TextEncoder().encode("me\0"));
  assert.equal(t.ring.service(), 1);
  assert.deepEqual(t.replies(), [{ type: XS.READ, reqId: 3, body: "t" }]);
  t.dv.setUint32(XS_REQ_PROD, t.dv.getUint32(XS_REQ_CONS, true) + 5000, true);
  assert.equal(t.ring.service(), 0);
  let seed = 1;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed >>> 16;
  };
  for (let i = 0; i < 2000; i++) {
    const n = rnd() % 64;
    const b = new Uint8Array(n);
    for (let k = 0; k < n; k++) b[k] = rnd() & 0xff;
    if (n >= 16) b.fill(0, 13, 16);
    t.push(b);
    t.ring.service();
    t.replies();
  }
});
