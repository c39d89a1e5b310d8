// Builds the PV test guests (guests/pv/*.c with guests/pv/runtime/) with the host's gcc against
// the Xen public headers of Debian's libxen-dev, into .cache/guests/ keyed by a hash of
// everything that goes into the build (a sibling of tests/framework/build-guest.ts, which
// builds Multiboot kernels). Both architectures are linked as ELF with Xen ELF notes.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../framework/build-guest.ts";

export type PvArch = "i386" | "x86_64";
const RUNTIME_DIR = join(REPO_ROOT, "guests/pv/runtime");
const CACHE_DIR = join(REPO_ROOT, ".cache/guests");

const COMMON = [
  "-O2",
  "-Wall",
  "-Wextra",
  "-Werror",
  "-ffreestanding",
  "-fno-builtin",
  "-nostdlib",
  "-fno-pie",
  "-no-pie",
  "-static",
  "-fno-stack-protector",
  "-fno-asynchronous-unwind-tables",
  "-mgeneral-regs-only",
  "-Wl,--build-id=none",
  "-Wl,-z,noexecstack",
  "-Wl,-z,max-page-size=0x1000",
];
const ARCH: Record<PvArch, string[]> = {
  i386: ["-m32"],
  x86_64: ["-m64", "-mno-red-zone", "-mcmodel=small"],
};

let gccVersion: string | undefined;

/** True when gcc and the Xen headers are there (else the PV tests are skipped, with the reason). */
export function pvToolchain(): string | undefined {
  try {
    gccVersion ??= execFileSync("gcc", ["--version"], { encoding: "utf8" });
  } catch {
    return "gcc is not installed";
  }
  if (!existsSync("/usr/include/xen/xen.h")) return "the Xen public headers are missing (apt-get install libxen-dev)";
  return undefined;
}

/** Builds guests/pv/<name>.c for `arch`; returns the ELF path. */
export function buildPvGuest(name: string, arch: PvArch): string {
  const why = pvToolchain();
  if (why) throw new Error(`cannot build PV guest ${name}: ${why}`);
  const source = join(REPO_ROOT, "guests/pv", `${name}.c`);
  const runtime = readdirSync(RUNTIME_DIR)
    .sort()
    .map((f) => join(RUNTIME_DIR, f));
  const head = join(RUNTIME_DIR, arch === "i386" ? "head32.S" : "head64.S");
  const script = join(RUNTIME_DIR, arch === "i386" ? "pv32.ld" : "pv64.ld");
  const flags = [...ARCH[arch], ...COMMON, `-I${join(REPO_ROOT, "guests/pv")}`];
  const hash = createHash("sha256");
  hash.update(gccVersion ?? "");
  hash.update(JSON.stringify(flags));
  hash.update(readFileSync("/usr/include/xen/xen.h"));
  for (const f of [...runtime, source]) {
    hash.update(f.slice(REPO_ROOT.length));
    hash.update(readFileSync(f));
  }
  const dir = join(CACHE_DIR, `pv-${name}-${arch}-${hash.digest("hex").slice(0, 16)}`);
  const image = join(dir, `${name}.elf`);
  if (existsSync(image)) return image;
  mkdirSync(dir, { recursive: true });
  const tmp = `${image}.${process.pid}-${Date.now()}`;
  try {
    execFileSync("gcc", [...flags, "-T", script, head, join(RUNTIME_DIR, "runtime.c"), source, "-lgcc", "-o", tmp], {
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`building PV guest ${name} (${arch}) failed:\n${err.stderr?.toString().trim() || err.message}`);
  }
  renameSync(tmp, image);
  return image;
}
