// Builds the project's freestanding test and benchmark kernels with the host's gcc, at test or
// bench time, into .cache/guests/ keyed by a hash of everything that goes into the build (the
// sources, the shared runtime, the compiler flags and the compiler's version), so a second run
// costs a hash and a stat.
//
// i386 kernels are linked as ELF32 and booted through the loader's ELF path. x86-64 kernels are
// linked as ELF64 (the entry code in guests/machine/runtime/boot64.S switches to long mode) and
// flattened with objcopy; their Multiboot header carries the address fields (flag 16).
// Builds write to a temporary name and rename, so concurrent test processes never see a
// half-written kernel.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const RUNTIME_DIR = join(REPO_ROOT, "guests/machine/runtime");
const CACHE_DIR = join(REPO_ROOT, ".cache/guests");

export type GuestArch = "i386" | "x86_64";

export interface GuestSpec {
  /** Cache and file name, e.g. "hello". */
  name: string;
  arch: GuestArch;
  /** The kernel's own C or assembly files, relative to the repository root. */
  sources: string[];
}

const COMMON_FLAGS = [
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
  // No x87/SSE code from the compiler: the kernels never enable the FPU or SSE.
  "-mgeneral-regs-only",
  "-Wl,--build-id=none",
  "-Wl,-z,noexecstack",
  "-Wl,-z,max-page-size=0x1000",
];
const ARCH_FLAGS: Record<GuestArch, string[]> = {
  i386: ["-m32"],
  x86_64: ["-m64", "-mno-red-zone", "-mcmodel=small"],
};

let compilerVersion: string | undefined;

function gccVersion(): string {
  if (compilerVersion === undefined) {
    try {
      compilerVersion = execFileSync("gcc", ["--version"], { encoding: "utf8" });
    } catch {
      throw new Error("gcc is not installed: building test kernels needs gcc and gcc-multilib");
    }
  }
  return compilerVersion;
}

function runtimeFiles(arch: GuestArch): { sources: string[]; all: string[] } {
  const boot = arch === "i386" ? "boot32.S" : "boot64.S";
  const all = readdirSync(RUNTIME_DIR)
    .sort()
    .map((f) => join(RUNTIME_DIR, f));
  return { sources: [join(RUNTIME_DIR, boot), join(RUNTIME_DIR, "runtime.c")], all };
}

/** Builds (or finds in the cache) the kernel image for `spec`; returns its path. */
export function buildGuest(spec: GuestSpec): string {
  const runtime = runtimeFiles(spec.arch);
  const ownSources = spec.sources.map((s) => resolve(REPO_ROOT, s));
  const flags = [...ARCH_FLAGS[spec.arch], ...COMMON_FLAGS, `-I${RUNTIME_DIR}`];
  const hash = createHash("sha256");
  hash.update(gccVersion());
  hash.update(JSON.stringify(flags));
  for (const file of [...runtime.all, ...ownSources]) {
    hash.update(file.slice(REPO_ROOT.length));
    hash.update(readFileSync(file));
  }
  const dir = join(CACHE_DIR, `${spec.name}-${spec.arch}-${hash.digest("hex").slice(0, 16)}`);
  const image = join(dir, spec.arch === "i386" ? `${spec.name}.elf` : `${spec.name}.bin`);
  if (existsSync(image)) return image;

  mkdirSync(dir, { recursive: true });
  const unique = `${process.pid}-${Date.now()}`;
  const elf = join(dir, `${spec.name}.elf.${unique}`);
  const script = join(RUNTIME_DIR, "kernel.ld");
  try {
    execFileSync("gcc", [...flags, "-T", script, ...runtime.sources, ...ownSources, "-o", elf], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    if (spec.arch === "x86_64") {
      const flat = `${image}.${unique}`;
      execFileSync("objcopy", ["-O", "binary", elf, flat], { stdio: ["ignore", "pipe", "pipe"] });
      renameSync(elf, join(dir, `${spec.name}.elf`));
      renameSync(flat, image);
    } else {
      renameSync(elf, image);
    }
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    const detail = err.stderr?.toString().trim() || err.message;
    throw new Error(`building guest ${spec.name} (${spec.arch}) failed:\n${detail}`);
  }
  return image;
}

/** The "hello" kernel of guests/machine/hello.c for either architecture. */
export function helloGuest(arch: GuestArch): GuestSpec {
  return { name: "hello", arch, sources: ["guests/machine/hello.c"] };
}
