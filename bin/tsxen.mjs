#!/usr/bin/env node
// The tsxen command. It runs the TypeScript sources directly through tsx's loader (a
// dependency installed by `npm ci`), so a fresh checkout needs no build step and can never run
// a stale dist/. The exit status is whatever the subcommand returned.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
const status = await main(process.argv.slice(2));
// Exit explicitly: stdin may still be attached to the guest's UART. stdout and stderr writes
// are synchronous for files, pipes and terminals on Linux, so nothing is lost.
process.exit(status);
