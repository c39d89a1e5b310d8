// Grant mappings between two domains, driven from the host side through the hypercall table:
// a mapping holds its references, shows in the granter's entry, and goes away cleanly when
// the mapper or the granter is destroyed (hypercalls/grantmap.ts GM1, GM2).

import assert from "node:assert/strict";
import { test } from "node:test";
import { FRAME_SIZE, PGT_NONE } from "../../src/machine/frames.ts";
import type { Domain } from "../../src/xen/domain.ts";
import { Xen } from "../../src/xen/hypervisor.ts";
import { invoke } from "../../src/xen/hypercalls/table.ts";
import * as S from "../../src/x86/state.ts";
import { buildPv } from "./boot.ts";
import { buildPvGuest, pvToolchain } from "./build.ts";

const skip = pvToolchain();
const GTF_permit_access = 1;
const GTF_reading = 1 << 3;
const GTF_writing = 1 << 4;

/** A writable scratch address in the domain: the second half of its start_info page. */
function scratch(d: Domain): number {
  return ((d.vcpus[0].s[S.REG_ESI * 2] >>> 0) + 2048) >>> 0;
}

function put(d: Domain, va: number, bytes: Uint8Array): void {
  assert.equal(d.vcpus[0].cpu.writeGuest(va | 0, 0, bytes, false), 0);
}
function get(d: Domain, va: number, n: number): DataView {
  const b = new Uint8Array(n);
  assert.equal(d.vcpus[0].cpu.readGuest(va | 0, 0, b, false), 0);
  return new DataView(b.buffer);
}

/** Gives `granter` a grant table and grants `grantee` one of its plain data frames at `ref`. */
function grant(granter: Domain, grantee: Domain, ref: number): number {
  const v = granter.vcpus[0];
  const sc = scratch(granter);
  const st = new Uint8Array(24);
  const dv = new DataView(st.buffer);
  dv.setUint16(0, 0x7ff0, true);
  dv.setUint32(4, 1, true);
  dv.setUint32(16, sc + 64, true);
  put(granter, sc, st);
  assert.equal(invoke(v, 20, [[2, 0], [sc, 0], [1, 0], [0, 0], [0, 0]], false), 0);
  const t = granter.xen.table;
  let frame = -1;
  for (let m = 0; m < t.frames && frame < 0; m++)
    if (t.owner[m] === granter.id && t.typeCount[m] === 0 && t.count[m] === 1 && t.m2p[m] !== 0xffffffff) frame = m;
  const at = granter.grantFrames[0] * FRAME_SIZE + ref * 8;
  const mem = new DataView(granter.xen.memory.u8.buffer);
  mem.setUint16(at + 2, grantee.id, true);
  mem.setUint32(at + 4, frame, true);
  mem.setUint16(at, GTF_permit_access, true);
  return frame;
}

/** map_grant_ref from `mapper` at host address `host`; returns [status, handle]. */
function map(mapper: Domain, granter: Domain, ref: number, host: number): [number, number] {
  const sc = scratch(mapper);
  const op = new Uint8Array(32);
  const dv = new DataView(op.buffer);
  dv.setUint32(0, host, true);
  dv.setUint32(8, 2, true); // GNTMAP_host_map
  dv.setUint32(12, ref, true);
  dv.setUint16(16, granter.id, true);
  put(mapper, sc, op);
  assert.equal(invoke(mapper.vcpus[0], 20, [[0, 0], [sc, 0], [1, 0], [0, 0], [0, 0]], false), 0);
  const r = get(mapper, sc, 32);
  return [r.getInt16(18, true), r.getUint32(20, true)];
}

function flags(granter: Domain, ref: number): number {
  return new DataView(granter.xen.memory.u8.buffer).getUint16(granter.grantFrames[0] * FRAME_SIZE + ref * 8, true);
}

function intact(x: Xen): void {
  for (let m = 0; m < x.table.frames; m++) assert.equal(x.table.check(m), undefined);
}

test("grant mappings between domains: references, GTF flags, the mapper or the granter destroyed", { skip }, () => {
  const image = buildPvGuest("hello", "x86_64");
  const xen = new Xen({ memoryBytes: 64 * 1024 * 1024, deterministic: true });
  const a = buildPv(image, { xen }).domain;
  const b = buildPv(image, { xen }).domain;
  const c = buildPv(image, { xen }).domain;
  // b maps a's frame over its own xenstore page (start_info + 4096).
  const fa = grant(a, b, 5);
  const hostB = ((b.vcpus[0].s[S.REG_ESI * 2] >>> 0) + 4096) >>> 0;
  const [st, handle] = map(b, a, 5, hostB);
  assert.equal(st, 0);
  assert.equal(flags(a, 5), GTF_permit_access | GTF_reading | GTF_writing);
  assert.equal(xen.table.typeCount[fa], 1, "the writable mapping holds a type reference");
  new DataView(xen.memory.u8.buffer).setUint32(fa * FRAME_SIZE + 100, 0xfeedf00d, true);
  assert.equal(get(b, hostB + 100, 4).getUint32(0, true), 0xfeedf00d, "b sees a's frame");
  // The granter goes away: b's mapping is revoked, nothing of a stays reachable.
  a.destroy();
  assert.notEqual(b.vcpus[0].cpu.readGuest((hostB + 100) | 0, 0, new Uint8Array(4), false), 0, "unmapped");
  const sc = scratch(b);
  const un = new Uint8Array(24);
  const udv = new DataView(un.buffer);
  udv.setUint32(0, hostB, true);
  udv.setUint32(16, handle, true);
  put(b, sc, un);
  invoke(b.vcpus[0], 20, [[1, 0], [sc, 0], [1, 0], [0, 0], [0, 0]], false);
  assert.equal(get(b, sc, 24).getInt16(20, true), -4, "its handle is dead: GNTST_bad_handle");
  intact(xen);
  // The mapper goes away: its references on c's frame and c's GTF flags are released.
  const fc = grant(c, b, 7);
  const hostB2 = ((b.vcpus[0].s[S.REG_ESI * 2] >>> 0) + 8192) >>> 0;
  assert.equal(map(b, c, 7, hostB2)[0], 0);
  assert.equal(xen.table.typeCount[fc], 1);
  b.destroy();
  assert.equal(flags(c, 7), GTF_permit_access);
  assert.equal(xen.table.typeCount[fc], 0);
  assert.equal(xen.table.type[fc], PGT_NONE);
  assert.equal(xen.table.count[fc], 1, "only c's own allocation reference is left");
  intact(xen);
});
