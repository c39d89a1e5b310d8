// Real guest kernels from Debian, fetched and cached by scripts/fetch-guests.sh (see
// docs/guests.md). Tests that need one call `fetchGuest(name)` and skip when it returns
// undefined: a machine with no apt (or no network to Debian) still runs the rest of the suite.

import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { REPO_ROOT } from "./build-guest.ts";

export type RealGuest = "gnumach-i386" | "gnumach-amd64";

const SCRIPT = join(REPO_ROOT, "scripts/fetch-guests.sh");
const known = new Map<RealGuest, string | null>();

/** Runs the fetch script and returns the path of each guest it printed. Throws its stderr on failure. */
export function fetchGuests(names: RealGuest[]): Map<RealGuest, string> {
  const out = execFileSync("bash", [SCRIPT, ...names], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 300_000,
  });
  const paths = new Map<RealGuest, string>();
  for (const line of out.split("\n")) {
    const space = line.indexOf(" ");
    if (space > 0) paths.set(line.slice(0, space) as RealGuest, line.slice(space + 1));
  }
  for (const name of names) {
    if (!paths.has(name)) throw new Error(`scripts/fetch-guests.sh printed no path for ${name}`);
  }
  return paths;
}

/**
 * The path of a real guest kernel, fetching it on first use; undefined (with the reason on
 * stderr once) when it cannot be fetched here. Set TSXEN_REQUIRE_GUESTS=1 to make that an error.
 */
export function fetchGuest(name: RealGuest): string | undefined {
  const cached = known.get(name);
  if (cached !== undefined) return cached ?? undefined;
  try {
    const path = fetchGuests([name]).get(name)!;
    known.set(name, path);
    return path;
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    const reason = stderr || (err as Error).message;
    if (process.env.TSXEN_REQUIRE_GUESTS === "1") throw new Error(`cannot fetch ${name}: ${reason}`);
    process.stderr.write(`guests: ${name} unavailable, tests that need it are skipped: ${reason}\n`);
    known.set(name, null);
    return undefined;
  }
}
