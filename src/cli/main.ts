// The `tsxen` command line. Each subcommand lives in its own file and returns the process exit
// status; this file only dispatches and wires the process's stdio. Bad input of any kind is one
// line on stderr and exit status 2.

import { type CliIo, machineCommand } from "./machine.ts";
import { runCommand } from "./run.ts";

const USAGE = `usage: tsxen <command> [options]

commands:
  run       run a PV domain from an xl.cfg file, console on the terminal (tsxen run --help)
  machine   boot a Multiboot kernel on the bare machine (tsxen machine --help)`;

const COMMANDS: Record<string, (argv: string[], io: CliIo) => Promise<number>> = {
  machine: machineCommand,
  run: runCommand,
};

export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "--help" || command === "-h" || command === "help") {
    io.stdout(`${USAGE}\n`);
    return 0;
  }
  if (command === undefined) {
    io.stderr("tsxen: missing command (try tsxen --help)\n");
    return 2;
  }
  const run = COMMANDS[command];
  if (!run) {
    io.stderr(`tsxen: unknown command "${command}" (try tsxen --help)\n`);
    return 2;
  }
  return run(rest, io);
}

/** The real process's stdio, with stdin feeding the guest's UART. */
export function processIo(): CliIo {
  return {
    stdout: (bytes) => {
      process.stdout.write(bytes);
    },
    stderr: (text) => {
      process.stderr.write(text);
    },
    attachInput: (receive, onEnd) => {
      const onData = (chunk: Buffer) => receive(chunk);
      const ended = () => onEnd?.();
      process.stdin.on("data", onData);
      process.stdin.on("end", ended);
      return () => {
        process.stdin.off("data", onData);
        process.stdin.off("end", ended);
        process.stdin.pause();
      };
    },
    terminal: process.stdin.isTTY
      ? {
          setRaw: (raw) => {
            process.stdin.setRawMode(raw);
          },
        }
      : undefined,
    onInterrupt: (handler) => {
      process.on("SIGINT", handler);
      process.on("SIGTERM", handler);
      return () => {
        process.off("SIGINT", handler);
        process.off("SIGTERM", handler);
      };
    },
  };
}
