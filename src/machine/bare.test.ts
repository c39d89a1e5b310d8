import assert from "node:assert/strict";
import { test } from "node:test";
import { BareMachine, describeOutcome, outcomeStatus } from "./bare.ts";
import { flatKernel } from "../../tests/framework/flat-kernel.ts";

async function boot(image: Uint8Array, timeoutMs = 10_000) {
  const out: number[] = [];
  const machine = new BareMachine({ memoryBytes: 4 * 1024 * 1024, output: (b) => out.push(...b) });
  machine.boot(image, { cmdline: "x" });
  const result = await machine.run({ timeoutMs });
  return { machine, result, text: String.fromCharCode(...out) };
}

test("a kernel starts with the Multiboot registers, prints on both consoles and exits through 0xF4", async () => {
  const { result, text } = await boot(
    flatKernel(
      "3d 02 b0 ad 2b", // cmp eax, 0x2BADB002
      "75 15", // jne fail
      "b0 68", // mov al, 'h'
      "e6 e9", // out 0xe9, al
      "66 ba f8 03", // mov dx, 0x3f8
      "b0 69", // mov al, 'i'
      "ee", // out dx, al
      "b0 05", // mov al, 5
      "e6 f4", // out 0xf4, al
      "eb fe", // jmp $
      "90 90 90 90", // nop x 4
      "b0 07", // fail: mov al, 7
      "e6 f4", // out 0xf4, al
    ),
  );
  assert.equal(text, "hi");
  assert.deepEqual(result.outcome, { kind: "debug-exit", value: 5 });
  assert.equal(outcomeStatus(result.outcome), 11);
  assert.ok(result.instructions >= 8);
});

test("HLT with interrupts off stops the machine with status 0", async () => {
  const { result } = await boot(flatKernel("fa", "f4")); // cli; hlt
  assert.equal(result.outcome.kind, "halted");
  assert.equal(outcomeStatus(result.outcome), 0);
  assert.match(describeOutcome(result.outcome), /halted at rip 0x10002[12] with interrupts disabled/);
});

test("an exception before the guest loads an IDT is reported with its vector and RIP", async () => {
  const { result } = await boot(flatKernel("90", "0f 0b")); // nop; ud2
  assert.deepEqual(result.outcome, { kind: "exception", vector: 6, errorCode: null, rip: "rip 0x100021" });
  assert.equal(outcomeStatus(result.outcome), 6);
  assert.match(describeOutcome(result.outcome), /unhandled exception #UD at rip 0x100021/);
});

test("with a useless IDT loaded, a fault escalates to a triple fault", async () => {
  const { result } = await boot(
    flatKernel(
      "0f 01 1d 30 00 10 00", // lidt [0x100030]
      "0f 0b", // ud2: vector 6 lies past the 8-byte IDT -> #GP -> #DF -> shutdown
      "90 90 90 90 90 90 90", // padding up to 0x100030
      "07 00 00 00 00 00", // IDT pointer: limit 7, base 0
    ),
  );
  assert.equal(result.outcome.kind, "triple-fault");
  assert.equal(outcomeStatus(result.outcome), 4);
});

test("a kernel that never exits is stopped by the timeout", async () => {
  const { result } = await boot(flatKernel("eb fe"), 300); // jmp $
  assert.equal(result.outcome.kind, "timeout");
  assert.equal(outcomeStatus(result.outcome), 124);
  assert.ok(result.instructions > 0);
});

test("marker writes are noted with exact retired counts", async () => {
  const { machine, result } = await boot(
    flatKernel(
      "e6 e8", // out 0xe8, al: start mark
      "90",
      "90",
      "90",
      "e6 e8", // out 0xe8, al: end mark
      "b0 00", // mov al, 0
      "e6 f4", // out 0xf4, al
    ),
  );
  assert.equal(result.outcome.kind, "debug-exit");
  assert.equal(machine.marks.length, 2);
  assert.equal(machine.marks[1].retired - machine.marks[0].retired, 4, "three NOPs and the closing OUT");
});
