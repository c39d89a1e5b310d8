// System tests of `tsxen machine`: the real CLI in a child process, booting the gcc-built hello
// kernel (guests/machine/hello.c) in 32-bit protected mode and in 64-bit long mode, and the
// one-line errors with status 2 for bad input.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { buildGuest, helloGuest, REPO_ROOT } from "./framework/build-guest.ts";
import { flatKernel } from "./framework/flat-kernel.ts";

const TSXEN = join(REPO_ROOT, "bin/tsxen.mjs");
const scratch = mkdtempSync(join(tmpdir(), "tsxen-machine-test-"));

function tsxen(...args: string[]) {
  const r = spawnSync(process.execPath, [TSXEN, ...args], {
    encoding: "latin1",
    timeout: 120_000,
    stdio: "pipe",
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The checksum hello.c prints for a module: sum = sum * 31 + byte, in 32 bits. */
function moduleSum(bytes: Uint8Array): number {
  let sum = 0;
  for (const b of bytes) sum = (Math.imul(sum, 31) + b) >>> 0;
  return sum;
}

const hex8 = (n: number) => `0x${n.toString(16).padStart(8, "0")}`;

function file(name: string, content: string | Uint8Array): string {
  const path = join(scratch, name);
  writeFileSync(path, content);
  return path;
}

for (const arch of ["i386", "x86_64"] as const) {
  test(`the ${arch} hello kernel prints its boot information and exits with status 1`, () => {
    const kernel = buildGuest(helloGuest(arch));
    const modA = file("module-a.txt", "first module");
    const modB = file("module-b.bin", new Uint8Array(5000).fill(7));
    const r = tsxen(
      "machine",
      "--kernel",
      kernel,
      "--module",
      modA,
      "--module",
      modB,
      "--cmdline",
      "hello world",
      "--memory",
      "64M",
      "--timeout",
      "60",
    );
    assert.equal(r.stderr, "");
    assert.equal(r.status, 1, "(0 << 1) | 1");
    const lines = r.stdout.replace(/\r/g, "").split("\n");
    const bits = arch === "i386" ? "32" : "64";
    assert.deepEqual(lines.slice(0, 6), [
      "hello: debug console on port 0xe9",
      `hello: ${bits}-bit kernel booted by a Multiboot loader`,
      "hello: boot loader: tsxen",
      'hello: cmdline: "hello world"',
      "hello: memory: lower 640 KiB, upper 64512 KiB",
      "hello: 2 module(s)",
    ]);
    const sumA = hex8(moduleSum(new TextEncoder().encode("first module")));
    const sumB = hex8(moduleSum(new Uint8Array(5000).fill(7)));
    assert.match(
      lines[6],
      new RegExp(`^hello: module 0: 0x[0-9a-f]{8}-0x[0-9a-f]{8} 12 bytes sum ${sumA} "${modA}"$`),
    );
    assert.equal(lines[7], 'hello: module 0 text: "first module"');
    assert.match(
      lines[8],
      new RegExp(`^hello: module 1: 0x[0-9a-f]{5}000-0x[0-9a-f]{8} 5000 bytes sum ${sumB} ".*module-b.bin"$`),
    );
    assert.deepEqual(lines.slice(9), [
      "hello: memory map:",
      "hello:   0x0-0xa0000 available",
      "hello:   0xa0000-0x100000 reserved",
      "hello:   0x100000-0x4000000 available",
      "hello: exiting with code 0",
      "",
    ]);
  });
}

test("--stats reports instructions retired and MIPS on stderr", () => {
  const r = tsxen("machine", "--kernel", buildGuest(helloGuest("i386")), "--stats", "--timeout", "60");
  assert.equal(r.status, 1);
  assert.match(
    r.stderr,
    /guest wrote 0 to the exit port 0xf4\n.*\d+ instructions retired in [\d.]+ s \([\d.]+ MIPS\)\n$/,
  );
});

test("bad input is one line on stderr naming the problem, and exit status 2", () => {
  const hello = buildGuest(helloGuest("i386"));
  const cases: [string[], RegExp][] = [
    [["machine", "--kernel", hello, "--frobnicate"], /^tsxen machine: unknown option --frobnicate$/],
    [["machine"], /^tsxen machine: missing --kernel FILE$/],
    [
      ["machine", "--kernel", join(scratch, "nope.elf")],
      /^tsxen machine: kernel file ".*nope.elf" does not exist$/,
    ],
    [
      ["machine", "--kernel", hello, "--module", join(scratch, "gone")],
      /^tsxen machine: module file ".*gone" does not exist$/,
    ],
    [["machine", "--kernel", scratch], /^tsxen machine: kernel file ".*" is a directory$/],
    [
      ["machine", "--kernel", file("junk.bin", "not a kernel at all")],
      /^tsxen machine: kernel ".*junk.bin": no Multiboot header/,
    ],
    [["machine", "--kernel", hello, "--memory", "12Q"], /^tsxen machine: memory size "12Q" is not a number/],
    [
      ["machine", "--kernel", hello, "--timeout", "soon"],
      /^tsxen machine: --timeout "soon" is not a positive number/,
    ],
    [["machine", "--kernel", hello, "stray"], /^tsxen machine: unexpected argument stray$/],
    [
      [
        "machine",
        "--kernel",
        hello,
        "--memory",
        "2M",
        "--module",
        file("big.bin", new Uint8Array(1024 * 1024)),
      ],
      /^tsxen machine: kernel ".*": module ".*big.bin" \(1048576 bytes\) does not fit in RAM/,
    ],
    [["frobnicate"], /^tsxen: unknown command "frobnicate"/],
  ];
  for (const [args, message] of cases) {
    const r = tsxen(...args);
    assert.equal(r.status, 2, `${args.join(" ")}: status`);
    assert.equal(r.stdout, "", `${args.join(" ")}: stdout`);
    const lines = r.stderr.split("\n");
    assert.equal(lines.length, 2, `${args.join(" ")}: one line, got ${JSON.stringify(r.stderr)}`);
    assert.match(lines[0], message);
  }
});

test("a kernel that never exits is stopped by --timeout with status 124", () => {
  const r = tsxen("machine", "--kernel", file("loop.bin", flatKernel("eb fe")), "--timeout", "0.5"); // jmp $
  assert.equal(r.status, 124);
  assert.match(
    r.stderr,
    /^tsxen machine: timeout: the guest ran 0\.\d s without writing to the exit port\n$/,
  );
});
