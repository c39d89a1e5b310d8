// `tsxen machine`: boots a Multiboot kernel on the bare machine (src/machine/bare.ts) with the
// console on stdout, and exits with the status the run earned:
//   (V << 1) | 1  the kernel wrote V to isa-debug-exit (port 0xF4), as QEMU does
//   0             the kernel halted (HLT; nothing on the bare machine can wake it)
//   2             bad input: unknown option, missing file, malformed kernel or module
//   4             triple fault
//   6             unhandled exception before the kernel loaded an IDT
//   8             internal emulator error
//   124           --timeout expired
// Every status we choose ourselves is even, so it can never be mistaken for a debug-exit one.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { BareMachine, describeOutcome, outcomeStatus, STATUS_BAD_INPUT } from "../machine/bare.ts";
import { parseMemorySize } from "../machine/memory.ts";
import { MultibootError, type MultibootModuleInput } from "../machine/multiboot.ts";

export const MACHINE_USAGE = `usage: tsxen machine --kernel FILE [--module FILE]... [--cmdline STR] [--memory SIZE]
                     [--timeout SECONDS] [--stats]

Boots a Multiboot (version 1) kernel on the bare machine: one vCPU, RAM, a 16550 UART at
0x3F8 and the debug console at 0xE9 (both copied to stdout), and isa-debug-exit at 0xF4.

  --kernel FILE      the kernel image (ELF32, or any image with Multiboot address fields)
  --module FILE      a module to load after the kernel; repeatable; its Multiboot string is FILE
  --cmdline STR      the kernel command line
  --memory SIZE      RAM size with optional K/M/G suffix (default 128M)
  --timeout SECONDS  stop a kernel that has not exited after this long (default: no limit)
  --stats            print instructions retired, seconds and MIPS to stderr

Exit status: (V << 1) | 1 when the kernel writes V to port 0xF4; 0 halted; 2 bad input;
4 triple fault; 6 unhandled exception; 8 internal error; 124 timeout.`;

/** Bad command-line input or files: the message is printed as one line and the status is 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

export interface CliIo {
  stdout: (bytes: Uint8Array | string) => void;
  stderr: (text: string) => void;
  /** Host keyboard input for the UART, if any. Returns a function that detaches it. */
  attachInput?: (receive: (bytes: Uint8Array) => void, onEnd?: () => void) => () => void;
  /** Present when stdin is a terminal: switches it to raw mode (true) and back (false). */
  terminal?: { setRaw: (raw: boolean) => void };
  /** Calls `handler` on SIGINT/SIGTERM instead of the default exit. Returns a detach function. */
  onInterrupt?: (handler: () => void) => () => void;
}

interface MachineArgs {
  kernel: string;
  modules: string[];
  cmdline: string | undefined;
  memoryBytes: number;
  timeoutMs: number;
  stats: boolean;
}

const MACHINE_OPTIONS = {
  kernel: { type: "string" },
  module: { type: "string", multiple: true },
  cmdline: { type: "string" },
  memory: { type: "string" },
  timeout: { type: "string" },
  stats: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** node:util's parse errors are several sentences; we keep the one fact that matters. */
function parseError(e: unknown): UsageError {
  const err = e as { code?: string; message: string };
  const quoted = /'([^']*)'/.exec(err.message)?.[1] ?? "";
  if (err.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") return new UsageError(`unknown option ${quoted}`);
  if (err.code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL")
    return new UsageError(`unexpected argument ${quoted}`);
  return new UsageError(err.message.split("\n")[0].replace(/^Option /, "option "));
}

function parseMachineArgs(argv: string[]): MachineArgs | "help" {
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof MACHINE_OPTIONS }>>;
  try {
    parsed = parseArgs({ args: argv, strict: true, allowPositionals: false, options: MACHINE_OPTIONS });
  } catch (e) {
    throw parseError(e);
  }
  const v = parsed.values;
  if (v.help) return "help";
  if (v.kernel === undefined) throw new UsageError("missing --kernel FILE");
  let memoryBytes = 128 * 1024 * 1024;
  if (v.memory !== undefined) {
    try {
      memoryBytes = parseMemorySize(v.memory);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  let timeoutMs = 0;
  if (v.timeout !== undefined) {
    const m = /^(\d+(?:\.\d+)?)s?$/.exec(v.timeout);
    if (!m || Number(m[1]) <= 0)
      throw new UsageError(`--timeout "${v.timeout}" is not a positive number of seconds`);
    timeoutMs = Number(m[1]) * 1000;
  }
  return {
    kernel: v.kernel,
    modules: v.module ?? [],
    cmdline: v.cmdline,
    memoryBytes,
    timeoutMs,
    stats: v.stats ?? false,
  };
}

/** Reads a file named on the command line; a problem is a UsageError naming it. */
export function readInputFile(path: string, what: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOENT") throw new UsageError(`${what} "${path}" does not exist`);
    if (code === "EISDIR") throw new UsageError(`${what} "${path}" is a directory`);
    if (code === "EACCES") throw new UsageError(`${what} "${path}" is not readable (permission denied)`);
    throw new UsageError(`${what} "${path}" cannot be read: ${(e as Error).message}`);
  }
}

/** Runs `tsxen machine ARGS`; returns the process exit status. */
export async function machineCommand(argv: string[], io: CliIo): Promise<number> {
  let args: MachineArgs | "help";
  let machine: BareMachine;
  try {
    args = parseMachineArgs(argv);
    if (args === "help") {
      io.stdout(`${MACHINE_USAGE}\n`);
      return 0;
    }
    const kernel = readInputFile(args.kernel, "kernel file");
    const modules: MultibootModuleInput[] = args.modules.map((path) => ({
      data: readInputFile(path, "module file"),
      cmdline: path,
    }));
    machine = new BareMachine({ memoryBytes: args.memoryBytes, output: (bytes) => io.stdout(bytes) });
    try {
      machine.boot(kernel, { cmdline: args.cmdline, modules });
    } catch (e) {
      if (e instanceof MultibootError) throw new UsageError(`kernel "${args.kernel}": ${e.message}`);
      throw e;
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`tsxen machine: ${e.message}\n`);
      return STATUS_BAD_INPUT;
    }
    throw e;
  }

  const detach = io.attachInput?.((bytes) => machine.uart.receive(bytes));
  try {
    const result = await machine.run({ timeoutMs: args.timeoutMs });
    if (result.outcome.kind !== "debug-exit" || args.stats) {
      io.stderr(`tsxen machine: ${describeOutcome(result.outcome)}\n`);
    }
    if (args.stats) {
      const mips = result.instructions / result.seconds / 1e6;
      io.stderr(
        `tsxen machine: ${result.instructions} instructions retired in ${result.seconds.toFixed(3)} s (${mips.toFixed(1)} MIPS)\n`,
      );
    }
    return outcomeStatus(result.outcome);
  } finally {
    detach?.();
  }
}
