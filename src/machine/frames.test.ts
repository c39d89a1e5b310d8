import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DOMID_XEN,
  FLAG_VALIDATED,
  FrameAllocator,
  FrameTable,
  INVALID_PFN,
  OWNER_FREE,
  PGT_L1,
  PGT_L2,
  PGT_NONE,
  PGT_WRITABLE,
  TYPE_CONFLICT,
  TYPE_NEEDS_VALIDATION,
  TYPE_OK,
} from "./frames.ts";
import { MachineMemory } from "./memory.ts";

function checkAll(table: FrameTable): void {
  for (let mfn = 0; mfn < table.frames; mfn++) {
    const problem = table.check(mfn);
    assert.equal(problem, undefined, problem);
  }
}

test("a domain's frames are scattered, never the identity, and the same for the same seed", () => {
  const a = new FrameAllocator(new FrameTable(1024), { seed: 7, firstFrame: 16 });
  const b = new FrameAllocator(new FrameTable(1024), { seed: 7, firstFrame: 16 });
  const mfnsA = a.allocate(1, 256);
  const mfnsB = b.allocate(1, 256);
  assert.deepEqual([...mfnsA], [...mfnsB]);
  assert.equal(new Set(mfnsA).size, 256, "no frame handed out twice");
  let identity = 0;
  let contiguous = 0;
  for (let pfn = 0; pfn < 256; pfn++) {
    assert.ok(mfnsA[pfn] >= 16, "frames below firstFrame are never handed out");
    if (mfnsA[pfn] === pfn) identity++;
    if (pfn > 0 && mfnsA[pfn] === mfnsA[pfn - 1] + 1) contiguous++;
  }
  assert.ok(identity < 4, `${identity} frames have MFN = PFN`);
  assert.ok(contiguous < 8, `${contiguous} neighbours are contiguous`);
  const other = new FrameAllocator(new FrameTable(1024), { seed: 8, firstFrame: 16 }).allocate(1, 256);
  assert.notDeepEqual([...other], [...mfnsA], "another seed gives another order");
  checkAll(a.table);
});

test("allocation sets owner and the allocation reference; running out takes nothing", () => {
  const table = new FrameTable(64);
  const alloc = new FrameAllocator(table, { firstFrame: 4 });
  assert.equal(alloc.freeFrames, 60);
  const mfns = alloc.allocate(3, 50);
  for (const mfn of mfns) {
    assert.equal(table.owner[mfn], 3);
    assert.equal(table.count[mfn], 1);
  }
  assert.equal(alloc.tryAllocate(4, 11), null);
  assert.equal(alloc.freeFrames, 10);
  assert.throws(() => alloc.allocate(4, 11), /out of memory: 11 frames wanted for domain 4, 10 free/);
  assert.throws(() => alloc.allocate(0x7ff0, 1), /cannot own frames/);
  assert.equal(alloc.allocate(DOMID_XEN, 1).length, 1);
  checkAll(table);
});

test("type references: one type at a time, validation on first use, release at zero (F2–F4)", () => {
  const table = new FrameTable(32);
  const alloc = new FrameAllocator(table);
  const [mfn] = alloc.allocate(1, 1);
  assert.equal(table.getType(mfn, 1, PGT_L1), TYPE_NEEDS_VALIDATION);
  assert.equal(table.flags[mfn] & FLAG_VALIDATED, 0);
  table.setValidated(mfn);
  assert.equal(table.getType(mfn, 1, PGT_L1), TYPE_OK);
  assert.equal(table.typeCount[mfn], 2);
  assert.equal(table.count[mfn], 3);
  // A live L1 can't be mapped writable, nor used as an L2, nor typed by another domain.
  assert.equal(table.getType(mfn, 1, PGT_WRITABLE), TYPE_CONFLICT);
  assert.equal(table.getType(mfn, 1, PGT_L2), TYPE_CONFLICT);
  assert.equal(table.getType(mfn, 2, PGT_L1), TYPE_CONFLICT);
  assert.equal(table.count[mfn], 3, "a refused type reference leaves the counts alone");
  assert.equal(table.putType(mfn), PGT_NONE);
  assert.equal(table.putType(mfn), PGT_L1, "the last type reference releases the type");
  assert.equal(table.type[mfn], PGT_NONE);
  assert.equal(table.count[mfn], 1);
  // Now it may become writable; data pages need no validation.
  assert.equal(table.getType(mfn, 1, PGT_WRITABLE), TYPE_OK);
  assert.equal(table.getType(mfn, 1, PGT_L1), TYPE_CONFLICT);
  assert.equal(table.putType(mfn), PGT_WRITABLE);
  checkAll(table);
});

test("pins hold a type reference and only page tables can be pinned (F5)", () => {
  const table = new FrameTable(16);
  const alloc = new FrameAllocator(table);
  const [pt, data] = alloc.allocate(1, 2);
  assert.equal(table.getType(pt, 1, PGT_L2), TYPE_NEEDS_VALIDATION);
  table.setValidated(pt);
  assert.equal(table.setPinned(pt), true);
  assert.equal(table.setPinned(pt), false, "pinning twice is refused");
  assert.throws(() => table.putType(pt), /pinned/);
  assert.equal(table.clearPinned(pt), true);
  assert.equal(table.putType(pt), PGT_L2);
  assert.equal(table.getType(data, 1, PGT_WRITABLE), TYPE_OK);
  assert.throws(() => table.setPinned(data), /not a typed page table/);
  checkAll(table);
});

test("references that are not held are hypervisor bugs, reported as errors (F6)", () => {
  const table = new FrameTable(16);
  const alloc = new FrameAllocator(table);
  const [mfn] = alloc.allocate(1, 1);
  assert.throws(() => table.putType(mfn), /no type reference/);
  assert.throws(() => table.setValidated(mfn), /no type reference/);
  assert.equal(table.getType(mfn, 1, PGT_L1), TYPE_NEEDS_VALIDATION);
  table.put(mfn); // the allocation reference may go while the type reference holds one (F2)
  assert.throws(() => table.put(mfn), /type references without general/);
  assert.equal(table.get(999, 1), false, "out-of-range MFNs are refused, not indexed");
  assert.equal(table.get(-1, 1), false);
  assert.equal(table.get(1.5, 1), false);
});

test("release frees at once or when the last reference goes; freed frames are scrubbed (F1, F8)", () => {
  const memory = new MachineMemory(2 * 1024 * 1024);
  const table = FrameTable.forMemory(memory);
  const alloc = new FrameAllocator(table, { memory, firstFrame: 1 });
  const free0 = alloc.freeFrames;
  const [a, b] = alloc.allocate(5, 2);
  memory.fill(a * 4096, 4096, 0xaa);
  table.m2p[a] = 0;
  assert.equal(alloc.release(a), true);
  assert.equal(table.owner[a], OWNER_FREE);
  assert.equal(table.m2p[a], INVALID_PFN);
  assert.equal(memory.u8[a * 4096 + 123], 0, "scrubbed");
  assert.ok(table.get(b, 5), "someone maps b");
  assert.equal(alloc.release(b), false, "still referenced");
  assert.equal(table.get(b, 5), false, "a released frame takes no new references");
  assert.equal(alloc.put(b), true, "the last reference frees it");
  assert.equal(alloc.freeFrames, free0);
  assert.throws(() => alloc.release(b), /not allocated/);
  checkAll(table);
});

test("a destroyed domain's frames all come back, whatever their types and pins", () => {
  const table = new FrameTable(256);
  const alloc = new FrameAllocator(table, { seed: 3 });
  const dom1 = alloc.allocate(1, 100);
  const dom2 = alloc.allocate(2, 50);
  assert.equal(table.getType(dom1[0], 1, PGT_L2), TYPE_NEEDS_VALIDATION);
  table.setValidated(dom1[0]);
  table.setPinned(dom1[0]);
  assert.equal(table.getType(dom1[1], 1, PGT_WRITABLE), TYPE_OK);
  assert.equal(alloc.reclaimDomain(1), 100);
  assert.equal(alloc.freeFrames, 206);
  for (const mfn of dom2) assert.equal(table.owner[mfn], 2, "other domains keep theirs");
  checkAll(table);
  // The freed frames are handed out again.
  assert.equal(alloc.allocate(3, 206).length, 206);
  assert.equal(alloc.freeFrames, 0);
  checkAll(table);
});

test("tryAllocateAligned: a free, aligned block of 2^order frames below the limit, or -1", () => {
  const t = new FrameTable(64);
  const a = new FrameAllocator(t, { seed: 7 });
  const first = a.tryAllocateAligned(3, 3);
  assert.ok(first >= 0 && first % 8 === 0);
  for (let m = first; m < first + 8; m++) {
    assert.equal(t.owner[m], 3);
    assert.equal(t.check(m), undefined);
  }
  assert.equal(a.freeFrames, 56);
  const low = a.tryAllocateAligned(3, 2, 16);
  assert.ok(low >= 0 && low < 16 && low % 4 === 0);
  // Break every 16-block, then none is left.
  const t2 = new FrameTable(64);
  for (const m of [0, 16, 32, 48]) t2.owner[m] = 1; // taken before the allocator sees the table
  const a3 = new FrameAllocator(t2, { seed: 1 });
  assert.equal(a3.tryAllocateAligned(1, 4), -1);
  assert.ok(a3.tryAllocateAligned(1, 3) >= 0);
  for (let m = 0; m < 64; m++) if (t2.owner[m] === 0x7ff4) assert.equal(t2.check(m), undefined);
});
