// System tests of `tsxen run` (issue 3): xl.cfg in, a PV domain run with its console on stdio,
// the exit status telling how it ended; bad input is one line naming file, line and problem.
// Most run the command in-process through main() with a scripted console; one spawns the real
// bin/tsxen.mjs with a pipe on stdin.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { CliIo } from "../../src/cli/machine.ts";
import { main } from "../../src/cli/main.ts";
import { RUN_STATUS } from "../../src/cli/run.ts";
import { fetchGuest } from "../framework/guests.ts";
import { buildPvGuest, pvToolchain } from "./build.ts";

const skip = pvToolchain();
const dir = mkdtempSync(join(tmpdir(), "tsxen-run-"));

function config(name: string, text: string): string {
  const path = join(dir, `${name}.cfg`);
  writeFileSync(path, text);
  return path;
}

interface Ran {
  status: number;
  stdout: string;
  stderr: string;
}

/**
 * A console input chunk: typed 20 ms after the one before, or ({ after, send }) as soon as the
 * output so far contains `after` (for tests whose meaning depends on what the guest has done).
 */
type Typed = string | { after: string; send: string };

/** Runs `tsxen ARGV` in-process; `input` chunks are typed into the console one by one. */
async function run(argv: string[], input: Typed[] = [], terminal?: CliIo["terminal"]): Promise<Ran> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: (b) => {
      stdout += typeof b === "string" ? b : Buffer.from(b).toString();
    },
    stderr: (t) => {
      stderr += t;
    },
    attachInput: (receive) => {
      let next = 0;
      let last = Date.now();
      const timer = setInterval(() => {
        if (next >= input.length) return;
        const chunk = input[next];
        const ready = typeof chunk === "string" ? Date.now() - last >= 20 : stdout.includes(chunk.after);
        if (!ready) return;
        receive(Buffer.from(typeof chunk === "string" ? chunk : chunk.send));
        next++;
        last = Date.now();
      }, 5);
      return () => clearInterval(timer);
    },
    terminal,
  };
  const status = await main(argv, io);
  return { status, stdout, stderr };
}

for (const arch of ["i386", "x86_64"] as const) {
  test(`tsxen run (${arch}): console input reaches the guest, output comes back, poweroff exits 0`, { skip }, async () => {
    const kernel = buildPvGuest("echo", arch);
    const cfg = config(`echo-${arch}`, `name = "echo-${arch}"\nmemory = 8\nkernel = "${kernel}"\n`);
    const r = await run(["run", "--timeout", "60", cfg], ["hello\n", "second line\r", "quit\n"]);
    assert.equal(r.status, RUN_STATUS.poweroff, r.stderr);
    assert.equal(r.stdout, "echo guest ready\necho: hello\necho: second line\nbye\n");
    assert.match(r.stderr, /ended: poweroff/);
  });
}

test("tsxen run: ramdisk and extra reach the guest (start_info mod_start/mod_len, cmd_line)", { skip }, async () => {
  const kernel = buildPvGuest("echo", "x86_64");
  const ramdisk = join(dir, "initrd.txt");
  writeFileSync(ramdisk, `first line of the ramdisk\n${"x".repeat(10000)}\n`);
  const cfg = config("ramdisk", `name = "rd"\nmemory = 8\nkernel = "${kernel}"\nramdisk = "${ramdisk}"\nroot = "/dev/xvda1"\nextra = "console=hvc0"\n`);
  const r = await run(["run", "--timeout", "60", cfg], ["quit\n"]);
  assert.equal(r.status, RUN_STATUS.poweroff, r.stderr);
  assert.equal(
    r.stdout,
    'cmdline: root=/dev/xvda1 console=hvc0\nmodule: 10027 bytes, first line "first line of the ramdisk"\necho guest ready\nbye\n',
  );
});

test("tsxen run on a terminal: raw mode, Ctrl-] detaches and the domain runs on without a console", { skip }, async () => {
  const kernel = buildPvGuest("echo", "i386");
  const cfg = config("detach", `name = "detach"\nmemory = 8\nkernel = "${kernel}"\n`);
  const raw: boolean[] = [];
  const input: Typed[] = [
    { after: "echo guest ready\n", send: "hi\r" },
    { after: "echo: hi\n", send: "x\x1dquit\r" },
    "quit\r",
  ];
  const r = await run(["run", "--timeout", "1", cfg], input, { setRaw: (on) => raw.push(on) });
  // "x" before Ctrl-] still reaches the guest; nothing after it does (the guest never sees quit).
  assert.equal(r.stdout, "echo guest ready\necho: hi\n");
  assert.deepEqual(raw, [true, false]);
  assert.match(r.stderr, /detached from the console/);
  assert.equal(r.status, RUN_STATUS.timeout, r.stderr);
});

test("tsxen run: a guest that faults with no trap handler is crashed (status 3), reason on stderr", { skip }, async () => {
  const kernel = buildPvGuest("nohandler", "x86_64");
  const log = join(dir, "nohandler.log");
  const cfg = config("nohandler", `name = "nohandler"\nmemory = 8\nkernel = "${kernel}"\n`);
  const r = await run(["run", "--console-log", log, cfg]);
  assert.equal(r.status, RUN_STATUS.crash, r.stderr);
  assert.equal(r.stdout, "about to fault\n");
  assert.equal(readFileSync(log, "utf8"), "about to fault\n", "the console log keeps the output");
  assert.match(r.stderr, /\(XEN\) domain \d+ \(nohandler\) crashed: .*(page fault|#PF|trap)/i);
});

test("tsxen run: --timeout ends a domain that waits for ever (status 4)", { skip }, async () => {
  const kernel = buildPvGuest("echo", "i386");
  const cfg = config("waits", `name = "waits"\nmemory = 8\nkernel = "${kernel}"\n`);
  const r = await run(["run", "--timeout", "0.5", cfg]);
  assert.equal(r.status, RUN_STATUS.timeout, r.stderr);
  assert.equal(r.stdout, "echo guest ready\n");
  assert.match(r.stderr, /timeout after 0.5 s/);
});

test("tsxen run: on_poweroff=restart starts the domain again (a new domain id each time)", { skip }, async () => {
  const kernel = buildPvGuest("hello", "i386");
  // KEY=VALUE settings after the file override it, as with xl create.
  const cfg = config("again", `name = "again"\nmemory = 8\nkernel = "${kernel}"\non_poweroff = "destroy"\n`);
  const r = await run(["run", "--timeout", "60", cfg, 'on_poweroff="restart"', "on_reboot='destroy'"]);
  // The toolstack gives up after 100 restarts (xl's reboot-loop guard is similar).
  assert.equal(r.status, RUN_STATUS.poweroff, r.stderr);
  const hellos = r.stdout.split("Hello from a PV guest").length - 1;
  assert.equal(hellos, 101, r.stdout.slice(0, 500));
  assert.match(r.stderr, /domain again: domain 1 destroyed, restarted as domain 2/);
  assert.match(r.stderr, /100 restarts; not restarting again/);
});

for (const arch of ["i386", "amd64"] as const) {
  const image = fetchGuest(`gnumach-${arch}`);
  test(`tsxen run examples/gnumach-${arch}.cfg: GNU Mach boots to its panic and ends as it asks`, {
    skip: !image && "image not fetched (scripts/fetch-guests.sh)",
  }, async () => {
    // The image where fetch-guests.sh put it (the example's path is relative to the checkout).
    const r = await run(["run", "--timeout", "120", `examples/gnumach-${arch}.cfg`, `kernel="${image}"`]);
    assert.match(r.stdout, /^GNU Mach 1\.8\+git20221224-xen-486\n\rRunning on xen-3\.0-x86_(32p|64)\./);
    assert.ok(r.stdout.includes("panic ../kern/bootstrap.c:181: bootstrap_create: No bootstrap code loaded with the kernel!"), r.stdout);
    // Mach 1.8 hands sched_op_compat(SCHEDOP_shutdown) a pointer; Xen keeps its low byte as the
    // reason, which has no name: the domain ends "as the guest asks", status 5.
    assert.equal(r.status, RUN_STATUS.other, r.stderr);
    assert.match(r.stderr, /ended: unknown\(\d+\)/);
  });
}

test("tsxen run: bad input is one line naming the file, line and problem, status 2", { skip }, async () => {
  const kernel = buildPvGuest("hello", "i386");
  const cases: [string[], RegExp][] = [
    [[], /^tsxen run: missing the xl\.cfg file/],
    [["--frobnicate", "x.cfg"], /^tsxen run: unknown option --frobnicate/],
    [[join(dir, "absent.cfg")], /config file ".*absent\.cfg" does not exist/],
    [[config("unknown-key", `name = "a"\nmemory = 8\nfrobs = 3\nkernel = "${kernel}"\n`)], /unknown-key\.cfg:3:1: unknown key 'frobs'/],
    [[config("bad-value", `name = "a"\nmemory = "lots"\nkernel = "${kernel}"\n`)], /bad-value\.cfg:2:10: 'memory' must be a number, not a string/],
    [[config("syntax", `name = "a\n`)], /syntax\.cfg:1:8: /],
    [[config("no-kernel", `name = "a"\nmemory = 8\nkernel = "${dir}/nothing"\n`)], /no-kernel\.cfg:3:10: kernel ".*nothing" does not exist/],
    [[config("not-xen", `name = "a"\nmemory = 8\nkernel = "${process.execPath}"\n`)], /not-xen\.cfg:3:10: .*node/],
    [[config("too-small", `name = "a"\nmemory = 1\nkernel = "${kernel}"\nramdisk = "${process.execPath}"\n`)], /too-small\.cfg: domain a: .*/],
    [[config("hvm", `name = "a"\ntype = "hvm"\nmemory = 8\nkernel = "${kernel}"\n`)], /hvm\.cfg:2:8: 'type' "hvm" is not supported yet/],
    [[config("override", `name = "a"\nmemory = 8\nkernel = "${kernel}"\n`), "memory"], /"memory" is not a KEY=VALUE setting/],
  ];
  for (const [args, pattern] of cases) {
    const r = await run(["run", ...args]);
    assert.equal(r.status, RUN_STATUS.badInput, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, pattern, args.join(" "));
    assert.equal(r.stderr.trimEnd().split("\n").length, 1, `one line: ${r.stderr}`);
    assert.equal(r.stdout, "");
  }
});

test("bin/tsxen.mjs run: stdin (a pipe) is the console input, stdout its output", { skip }, () => {
  const kernel = buildPvGuest("echo", "x86_64");
  const cfg = config("piped", `name = "piped"\nmemory = 8\nkernel = "${kernel}"\n`);
  const r = spawnSync(process.execPath, ["bin/tsxen.mjs", "run", "--timeout", "60", cfg], {
    input: "from a pipe\nquit\n",
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, "echo guest ready\necho: from a pipe\nbye\n");
});
