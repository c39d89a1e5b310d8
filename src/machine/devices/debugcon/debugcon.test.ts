import assert from "node:assert/strict";
import { test } from "node:test";
import { DebugCon } from "./debugcon.ts";

test("writes go to the sink and reads return 0xE9", () => {
  const out: number[] = [];
  const con = new DebugCon((b) => out.push(b));
  con.portWrite(0, 1, 0x4f);
  con.portWrite(0, 4, 0x1234_564b);
  assert.deepEqual(out, [0x4f, 0x4b]);
  assert.equal(con.portRead(0, 1), 0xe9);
  assert.deepEqual(con.save(), {});
});
