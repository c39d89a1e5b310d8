import assert from "node:assert/strict";
import { test } from "node:test";
import { Xen } from "../../xen/hypervisor.ts";
import {
  CONS_IN,
  CONS_IN_CONS,
  CONS_IN_PROD,
  CONS_IN_SIZE,
  CONS_OUT,
  CONS_OUT_CONS,
  CONS_OUT_PROD,
  ConsoleBackend,
  MAX_PENDING_INPUT,
} from "./backend.ts";

function setup() {
  const xen = new Xen({ memoryBytes: 16 * 1024 * 1024, deterministic: true });
  const d = xen.createDomain({ guestType: "pv64", maxPages: 16 });
  const out: string[] = [];
  const backend = new ConsoleBackend(d, { sink: (t) => out.push(t) });
  const page = xen.space.alloc(1)[0];
  backend.attach(page);
  const dv = new DataView(xen.memory.u8.buffer, xen.memory.u8.byteOffset + page * 4096, 4096);
  /** What the guest reads: everything between in_cons and in_prod, then it consumes it. */
  const guestReads = (): string => {
    const cons = dv.getUint32(CONS_IN_CONS, true);
    const prod = dv.getUint32(CONS_IN_PROD, true);
    let s = "";
    for (let i = cons; i !== prod; i = (i + 1) >>> 0) s += String.fromCharCode(dv.getUint8(CONS_IN + (i % CONS_IN_SIZE)));
    dv.setUint32(CONS_IN_CONS, prod, true);
    return s;
  };
  return { xen, d, backend, dv, out, guestReads };
}

test("console input that does not fit waits, in order, and goes in as the guest reads (C3)", () => {
  const { backend, guestReads } = setup();
  const text = Array.from({ length: 3000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join("");
  assert.equal(backend.input(text.slice(0, 2000)), 2000);
  assert.equal(backend.input(text.slice(2000)), 1000);
  assert.equal(backend.pendingInput, 3000 - CONS_IN_SIZE);
  let got = guestReads();
  assert.equal(got.length, CONS_IN_SIZE);
  backend.service(); // the guest notifies or yields
  got += guestReads();
  backend.service();
  got += guestReads();
  assert.equal(got, text);
  assert.equal(backend.pendingInput, 0);
});

test("console input beyond MAX_PENDING_INPUT waiting bytes is refused, not reordered", () => {
  const { backend } = setup();
  const big = new Uint8Array(MAX_PENDING_INPUT + CONS_IN_SIZE + 10).fill(0x41);
  assert.equal(backend.input(big), MAX_PENDING_INPUT);
  assert.equal(backend.pendingInput, MAX_PENDING_INPUT - CONS_IN_SIZE);
  // The ring took CONS_IN_SIZE bytes, so that much room is left in the queue.
  assert.equal(backend.input("more"), 4);
  assert.equal(backend.input(new Uint8Array(CONS_IN_SIZE)), CONS_IN_SIZE - 4);
  assert.equal(backend.input("x"), 0);
});

test("corrupt ring indices: no write outside the ring, output resynchronised (C1)", () => {
  const { backend, dv, xen, out, d } = setup();
  const before = new Uint8Array(xen.memory.u8.slice(0, xen.memory.u8.length));
  dv.setUint32(CONS_IN_CONS, 0, true);
  dv.setUint32(CONS_IN_PROD, 5000, true); // "more than a ring" outstanding
  backend.input("abc");
  assert.equal(dv.getUint32(CONS_IN_PROD, true), 5000, "nothing fed while the indices are corrupt");
  // Output: out_prod far beyond out_cons: the last ring's worth is taken.
  for (let i = 0; i < 2048; i++) dv.setUint8(CONS_OUT + i, 0x30 + (i % 10));
  dv.setUint32(CONS_OUT_CONS, 7, true);
  dv.setUint32(CONS_OUT_PROD, 1_000_000, true);
  assert.equal(backend.drain(), 2048);
  assert.equal(dv.getUint32(CONS_OUT_CONS, true), 1_000_000);
  assert.equal(out.join("").length, 2048);
  // Only the ring page changed (and shared_info, where the notification is pending).
  const after = xen.memory.u8;
  for (let mfn = 0; mfn < after.length / 4096; mfn++) {
    if (mfn === backend.mfn || mfn === d.sharedInfoMfn) continue;
    const a = before.subarray(mfn * 4096, mfn * 4096 + 4096);
    const b = after.subarray(mfn * 4096, mfn * 4096 + 4096);
    assert.equal(Buffer.compare(a, b), 0, `frame ${mfn} changed`);
  }
});
