// `tsxen run CFG [KEY=VALUE]...`: what `xl create -c -F CFG` does on a Xen host, in one
// process: the xl.cfg file is parsed and checked, the kernel loaded, the domain built and
// started with its console on the terminal, and the command exits when the domain ends:
//   0  the domain powered off (and its on_poweroff action ended it)
//   2  bad input: options, the config file (FILE:LINE:COLUMN: problem), the kernel or ramdisk
//   3  the domain crashed (the reason is on stderr; its console output is all on stdout)
//   4  --timeout expired (the domain is destroyed)
//   5  the domain ended another way: reboot or watchdog with a destroy/preserve action,
//      suspend, or a shutdown reason Xen has no name for
//   130 interrupted (SIGINT/SIGTERM; the domain is destroyed)
// With a terminal on stdin the console is in raw mode and Ctrl-] detaches from it: the domain
// goes on running without a console until it ends, --timeout passes or Ctrl-C. Without a
// terminal, stdin is the console's input and stdout its output.

import { appendFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { loadPvKernel, type PvKernel } from "../dom0/builder/index.ts";
import { type ManagedDomain, Toolstack } from "../dom0/toolstack.ts";
import {
  type PvDomainConfig,
  parseXlConfig,
  type SourcePos,
  validatePvConfig,
  XlConfigError,
} from "../dom0/xlcfg.ts";
import { Xen } from "../xen/hypervisor.ts";
import { SHUTDOWN_crash, SHUTDOWN_poweroff } from "../xen/public.ts";
import { type CliIo, readInputFile, UsageError } from "./machine.ts";

export const RUN_USAGE = `usage: tsxen run [--timeout SECONDS] [--console-log FILE] [--deterministic] [--xen-strict]
                 CONFIG [KEY=VALUE]...

Runs one PV domain from an xl.cfg file (name, type="pv", memory, maxmem, vcpus, kernel, ramdisk,
cmdline or root/extra, on_poweroff/on_reboot/on_crash/on_watchdog) with its console on this
terminal (raw mode; Ctrl-] detaches) or, when stdin is not a terminal, console input from stdin
and output to stdout. KEY=VALUE settings after the file override it, as with xl create.

  --timeout SECONDS    destroy the domain and exit 4 after this long (default: no limit)
  --console-log FILE   also write the console output to FILE (as xenconsoled's log)
  --deterministic      virtual time (a fixed instruction rate) instead of the host clock
  --xen-strict         no tsxen extensions: GNU Mach 1.8's direct page-directory stores fault
                       as on Xen (docs/xen.md)

Exit status: 0 poweroff; 2 bad input; 3 crash; 4 timeout; 5 other shutdown (reboot, suspend,
watchdog, unknown reason) not restarted; 130 interrupted.`;

export const RUN_STATUS = {
  poweroff: 0,
  badInput: 2,
  crash: 3,
  timeout: 4,
  other: 5,
  interrupted: 130,
} as const;

/** The detach key of xl console (Ctrl-]). */
const DETACH_BYTE = 0x1d;

const RUN_OPTIONS = {
  timeout: { type: "string" },
  "console-log": { type: "string" },
  deterministic: { type: "boolean" },
  "xen-strict": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

interface RunArgs {
  config: string;
  overrides: string[];
  timeoutMs: number;
  consoleLog: string | undefined;
  deterministic: boolean;
  strict: boolean;
}

function parseRunArgs(argv: string[]): RunArgs | "help" {
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof RUN_OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, strict: true, allowPositionals: true, options: RUN_OPTIONS });
  } catch (e) {
    const err = e as { code?: string; message: string };
    const quoted = /'([^']*)'/.exec(err.message)?.[1] ?? "";
    if (err.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") throw new UsageError(`unknown option ${quoted}`);
    throw new UsageError(err.message.split("\n")[0].replace(/^Option /, "option "));
  }
  const v = parsed.values;
  if (v.help) return "help";
  const [config, ...overrides] = parsed.positionals;
  if (config === undefined) throw new UsageError("missing the xl.cfg file (tsxen run CONFIG)");
  for (const o of overrides) {
    if (!/^[a-z][._0-9a-z]*\s*\+?=/.test(o)) throw new UsageError(`"${o}" is not a KEY=VALUE setting`);
  }
  let timeoutMs = 0;
  if (v.timeout !== undefined) {
    const m = /^(\d+(?:\.\d+)?)s?$/.exec(v.timeout);
    if (!m || Number(m[1]) <= 0) throw new UsageError(`--timeout "${v.timeout}" is not a positive number of seconds`);
    timeoutMs = Number(m[1]) * 1000;
  }
  return {
    config,
    overrides,
    timeoutMs,
    consoleLog: v["console-log"],
    deterministic: v.deterministic ?? false,
    strict: v["xen-strict"] ?? false,
  };
}

/** readInputFile, with the problem placed at the setting that named the file. */
function readFile(path: string, what: string, at?: SourcePos): Uint8Array {
  try {
    return readInputFile(path, what);
  } catch (e) {
    if (at && e instanceof UsageError) throw new XlConfigError(at, e.message);
    throw e;
  }
}

interface Loaded {
  cfg: PvDomainConfig;
  kernel: PvKernel;
  ramdisk: Uint8Array | undefined;
}

/** Parses, validates and loads everything the domain needs; every problem names its place. */
async function load(args: RunArgs): Promise<Loaded> {
  const text = new TextDecoder("utf-8", { fatal: false }).decode(readFile(args.config, "config file"));
  const parsed = parseXlConfig(text, args.config, args.overrides);
  const cfg = validatePvConfig(parsed);
  const kernelAt = parsed.settings.get("kernel")!.value.pos;
  const bytes = readFile(cfg.kernel, "kernel", kernelAt);
  let kernel: PvKernel;
  try {
    kernel = await loadPvKernel(bytes, cfg.kernel);
  } catch (e) {
    throw new XlConfigError(kernelAt, (e as Error).message);
  }
  let ramdisk: Uint8Array | undefined;
  if (cfg.ramdisk !== undefined) {
    ramdisk = readFile(cfg.ramdisk, "ramdisk", parsed.settings.get("ramdisk")!.value.pos);
  }
  return { cfg, kernel, ramdisk };
}

/** Machine memory for the run: the domain's maximum, twice with rename-restart, plus Xen's. */
function machineBytes(cfg: PvDomainConfig): number {
  const actions = [cfg.onPoweroff, cfg.onReboot, cfg.onCrash, cfg.onWatchdog];
  const copies = actions.includes("rename-restart") ? 2 : 1;
  return (cfg.maxmem * copies + 32) * 1024 * 1024;
}

/** Runs `tsxen run ARGS`; returns the process exit status. */
export async function runCommand(argv: string[], io: CliIo): Promise<number> {
  let args: RunArgs | "help";
  let loaded: Loaded;
  try {
    args = parseRunArgs(argv);
    if (args === "help") {
      io.stdout(`${RUN_USAGE}\n`);
      return 0;
    }
    loaded = await load(args);
  } catch (e) {
    if (e instanceof UsageError || e instanceof XlConfigError) {
      io.stderr(`tsxen run: ${e.message}\n`);
      return RUN_STATUS.badInput;
    }
    throw e;
  }
  const { cfg, kernel, ramdisk } = loaded;
  for (const w of cfg.warnings) io.stderr(`tsxen run: warning: ${w}\n`);

  // The console: to stdout while attached, and to --console-log always.
  let attached = true;
  let consoleLog = args.consoleLog;
  const consoleOut = (text: string): void => {
    if (attached) io.stdout(text);
    if (consoleLog === undefined) return;
    try {
      appendFileSync(consoleLog, text);
    } catch (e) {
      io.stderr(`tsxen run: --console-log "${consoleLog}": ${(e as Error).message}; no longer logging\r\n`);
      consoleLog = undefined;
    }
  };
  if (consoleLog !== undefined) {
    try {
      writeFileSync(consoleLog, "");
    } catch (e) {
      io.stderr(`tsxen run: --console-log "${args.consoleLog}": ${(e as Error).message}\n`);
      return RUN_STATUS.badInput;
    }
  }

  const xen = new Xen({
    memoryBytes: machineBytes(cfg),
    deterministic: args.deterministic,
    log: (line) => io.stderr(`(XEN) ${line}\r\n`),
    console: (_d, text) => consoleOut(text),
  });
  const toolstack = new Toolstack(xen, {
    console: (_m, text) => consoleOut(text),
    log: (line) => io.stderr(`tsxen run: ${line}\r\n`),
  });
  let managed: ManagedDomain;
  try {
    managed = toolstack.create({
      name: cfg.name,
      kernel,
      module: ramdisk,
      memoryMiB: cfg.memory,
      maxmemMiB: cfg.maxmem,
      vcpus: cfg.vcpus,
      cmdline: cfg.cmdline,
      onPoweroff: cfg.onPoweroff,
      onReboot: cfg.onReboot,
      onCrash: cfg.onCrash,
      onWatchdog: cfg.onWatchdog,
      emulateL2Writes: !args.strict,
    });
  } catch (e) {
    // The builder's errors name the kernel and the problem (T1: nothing is left behind).
    io.stderr(`tsxen run: ${args.config}: domain ${cfg.name}: ${(e as Error).message}\n`);
    return RUN_STATUS.badInput;
  }

  // Console input: to the current incarnation of the domain (a restart replaces it).
  let current = managed;
  const currentConsole = () => {
    const live = toolstack.live.find((m) => m.spec === managed.spec && m.domain.state !== "shutdown");
    if (live) current = live;
    return current.pvConsole;
  };
  let detachInput: (() => void) | undefined;
  const detach = (): void => {
    if (!attached) return;
    attached = false;
    detachInput?.();
    detachInput = undefined;
    io.terminal?.setRaw(false);
    io.stderr("\r\ntsxen run: detached from the console; the domain goes on (Ctrl-C stops it)\n");
  };
  if (io.attachInput) {
    io.terminal?.setRaw(true);
    detachInput = io.attachInput((bytes) => {
      let data = bytes;
      let detaching = false;
      if (io.terminal) {
        const k = bytes.indexOf(DETACH_BYTE);
        if (k >= 0) {
          data = bytes.subarray(0, k);
          detaching = true;
        }
      }
      if (data.length > 0 && currentConsole().input(data) < data.length) {
        io.stderr("tsxen run: console input dropped (the guest is not reading it)\r\n");
      }
      if (detaching) detach();
    });
  }
  let interrupted = false;
  const stopInterrupts = io.onInterrupt?.(() => {
    interrupted = true;
  });

  let status: number;
  try {
    const start = performance.now();
    for (;;) {
      const left = args.timeoutMs > 0 ? args.timeoutMs - (performance.now() - start) : undefined;
      const why = await xen.scheduler.run({
        until: () => toolstack.hasPending || interrupted,
        timeoutMs: left !== undefined ? Math.max(0, left) : undefined,
      });
      toolstack.settle();
      if (interrupted) {
        io.stderr("\r\ntsxen run: interrupted; destroying the domain\r\n");
        status = RUN_STATUS.interrupted;
        break;
      }
      if (why === "timeout") {
        io.stderr(`\r\ntsxen run: timeout after ${args.timeoutMs / 1000} s; destroying the domain\r\n`);
        status = RUN_STATUS.timeout;
        break;
      }
      const running = toolstack.live.some((m) => m.domain.state === "running" || m.domain.state === "paused");
      if (!running) {
        status = endStatus(toolstack.ended.at(-1)?.reason);
        break;
      }
    }
  } finally {
    for (const m of toolstack.live) toolstack.destroy(m);
    stopInterrupts?.();
    if (attached) {
      detachInput?.();
      io.terminal?.setRaw(false);
    }
  }
  const last = toolstack.ended.at(-1);
  if (last) {
    const why = last.crashReason ? `: ${last.crashReason}` : "";
    io.stderr(`tsxen run: domain ${last.name} (${last.domid}) ended: ${last.reasonName}${why}\n`);
  }
  return status;
}

function endStatus(reason: number | undefined): number {
  if (reason === SHUTDOWN_poweroff) return RUN_STATUS.poweroff;
  if (reason === SHUTDOWN_crash) return RUN_STATUS.crash;
  return RUN_STATUS.other;
}
