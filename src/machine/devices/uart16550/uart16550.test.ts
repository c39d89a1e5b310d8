import assert from "node:assert/strict";
import { test } from "node:test";
import { Uart16550 } from "./uart16550.ts";

function makeUart() {
  const out: number[] = [];
  const irq: boolean[] = [];
  const uart = new Uart16550({ output: (b) => out.push(b), onInterrupt: (level) => irq.push(level) });
  return { uart, out, irq };
}

test("THR writes reach the sink and LSR always reports the transmitter empty", () => {
  const { uart, out } = makeUart();
  for (const ch of "hi\n") uart.portWrite(0, 1, ch.charCodeAt(0));
  assert.equal(String.fromCharCode(...out), "hi\n");
  assert.equal(uart.portRead(5, 1) & 0x60, 0x60);
});

test("DLAB switches offsets 0 and 1 to the divisor latch", () => {
  const { uart, out } = makeUart();
  uart.portWrite(3, 1, 0x83); // DLAB, 8N1
  uart.portWrite(0, 1, 0x01);
  uart.portWrite(1, 1, 0x00);
  assert.equal(uart.portRead(0, 1), 0x01);
  assert.equal(uart.portRead(1, 1), 0x00);
  assert.deepEqual(out, [], "a divisor write is not a transmitted byte");
  uart.portWrite(3, 1, 0x03);
  uart.portWrite(1, 1, 0x05);
  assert.equal(uart.portRead(1, 1), 0x05, "IER is visible again with DLAB clear");
  assert.equal(uart.portRead(3, 1), 0x03);
});

test("received bytes are read from RBR in order with LSR.DR tracking the queue", () => {
  const { uart } = makeUart();
  assert.equal(uart.portRead(5, 1) & 1, 0);
  assert.equal(uart.receive(new TextEncoder().encode("ab")), 2);
  assert.equal(uart.portRead(5, 1) & 1, 1);
  assert.equal(uart.portRead(0, 1), 0x61);
  assert.equal(uart.portRead(0, 1), 0x62);
  assert.equal(uart.portRead(5, 1) & 1, 0);
});

test("IIR reports received data, then THRE, and reading IIR acknowledges THRE", () => {
  const { uart, irq } = makeUart();
  assert.equal(uart.portRead(2, 1), 0x01, "no interrupt pending after reset");
  uart.portWrite(1, 1, 0x03); // RDI + THRI
  assert.equal(irq.at(-1), true, "enabling THRI with THR empty raises the line");
  uart.receive(Uint8Array.of(0x41));
  assert.equal(uart.portRead(2, 1), 0x04, "received data has priority over THRE");
  uart.portRead(0, 1);
  assert.equal(uart.portRead(2, 1), 0x02);
  assert.equal(uart.portRead(2, 1), 0x01, "the IIR read acknowledged THRE");
  assert.equal(irq.at(-1), false);
  uart.portWrite(0, 1, 0x42);
  assert.equal(uart.portRead(2, 1), 0x02, "a THR write makes THR empty again at once");
});

test("FCR enables the FIFO bits in IIR (how Linux detects a 16550A) and clears the receiver", () => {
  const { uart } = makeUart();
  uart.receive(Uint8Array.of(1, 2, 3));
  uart.portWrite(2, 1, 0xc7);
  assert.equal(uart.portRead(2, 1) & 0xc0, 0xc0);
  assert.equal(uart.pendingInput, 0);
  uart.portWrite(2, 1, 0);
  assert.equal(uart.portRead(2, 1) & 0xc0, 0);
});

test("loopback mode feeds THR into RBR and mirrors MCR outputs into MSR", () => {
  const { uart, out } = makeUart();
  uart.portWrite(4, 1, 0x1f); // loop + DTR RTS OUT1 OUT2
  assert.equal(uart.portRead(6, 1) & 0xf0, 0xf0);
  uart.portWrite(4, 1, 0x10); // loop, all outputs low
  const msr = uart.portRead(6, 1);
  assert.equal(msr & 0xf0, 0x00);
  assert.equal(msr & 0x0b, 0x0b, "CTS, DSR and DCD changed; RI fell (trailing edge)");
  assert.equal(msr & 0x04, 0x04);
  assert.equal(uart.portRead(6, 1) & 0x0f, 0, "reading MSR clears the delta bits");
  uart.portWrite(0, 1, 0x5a);
  assert.deepEqual(out, []);
  assert.equal(uart.portRead(0, 1), 0x5a);
  uart.portWrite(4, 1, 0x0b);
  assert.equal(uart.portRead(6, 1) & 0xf0, 0xb0, "outside loopback the modem lines idle ready");
});

test("a host that outruns the receive queue sets the overrun bit once", () => {
  const { uart } = makeUart();
  assert.equal(uart.receive(new Uint8Array(5000)), 4096);
  assert.equal(uart.portRead(5, 1) & 0x02, 0x02);
  assert.equal(uart.portRead(5, 1) & 0x02, 0, "LSR error bits clear on read");
});

test("scratch register, save and restore round-trip", () => {
  const { uart } = makeUart();
  uart.portWrite(7, 1, 0x99);
  uart.portWrite(3, 1, 0x83);
  uart.portWrite(0, 1, 0x03);
  uart.portWrite(3, 1, 0x03);
  uart.portWrite(1, 1, 0x01);
  uart.receive(Uint8Array.of(7, 8));
  const saved = JSON.parse(JSON.stringify(uart.save()));
  const { uart: copy } = makeUart();
  copy.restore(saved);
  assert.deepEqual(copy.save(), uart.save());
  assert.equal(copy.portRead(7, 1), 0x99);
  assert.equal(copy.portRead(2, 1), 0x04);
  assert.equal(copy.portRead(0, 1), 7);
  uart.reset();
  assert.equal(uart.portRead(7, 1), 0);
  assert.equal(uart.pendingInput, 0);
});
