import assert from "node:assert/strict";
import { test } from "node:test";
import { Marker } from "./marker.ts";

test("each write is kept in order, asks for a stop, and drains once", () => {
  let stops = 0;
  const marker = new Marker(() => stops++);
  marker.portWrite(0, 1, 1);
  marker.portWrite(0, 4, 0xffffffff);
  assert.equal(stops, 2);
  assert.deepEqual(marker.save(), { pending: [1, 0xffffffff] });
  assert.deepEqual(marker.drain(), [1, 0xffffffff]);
  assert.deepEqual(marker.drain(), []);
  assert.equal(marker.portRead(0, 1), 0xff);
});
