// `npm run machine:demo`: builds the hello test kernel (guests/machine/hello.c) with gcc and
// boots it on the tsxen bare machine through the real CLI, narrating what happens.

import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { buildGuest, helloGuest, REPO_ROOT } from "../tests/framework/build-guest.ts";

const rel = (p: string) => relative(process.cwd(), p) || ".";

console.log("Building guests/machine/hello.c as a 32-bit Multiboot kernel (gcc -m32 -ffreestanding) ...");
const kernel = buildGuest(helloGuest("i386"));
const moduleDir = join(REPO_ROOT, ".cache/demo");
mkdirSync(moduleDir, { recursive: true });
const module = join(moduleDir, "greeting.txt");
writeFileSync(module, "Hello from a Multiboot module!\n");

const args = [
  "machine",
  "--kernel",
  rel(kernel),
  "--module",
  rel(module),
  "--cmdline",
  "console=ttyS0 demo=1",
  "--stats",
];
console.log(`\nBooting it on the bare machine (one emulated x86 CPU, RAM, a serial port, an exit port):\n`);
console.log(`  bin/tsxen.mjs ${args.map((a) => (a.includes(" ") ? `"${a}"` : a)).join(" ")}\n`);
console.log("---- guest console (UART 0x3F8 and debug port 0xE9) ----");
const r = spawnSync(process.execPath, [join(REPO_ROOT, "bin/tsxen.mjs"), ...args], { stdio: "inherit" });
console.log("---------------------------------------------------------");
const status = r.status ?? 1;
if (status === 1) {
  console.log(
    "\nExit status 1: the kernel wrote 0 to port 0xF4 (QEMU's isa-debug-exit), and the machine exits with\n" +
      "(0 << 1) | 1 = 1, as QEMU would. Try `node bin/tsxen.mjs machine --help` for the other options.",
  );
  process.exitCode = 0;
} else {
  console.log(`\nUnexpected exit status ${status}: the demo kernel should have exited with status 1.`);
  process.exitCode = 1;
}
