// Tracing runner for GNU Mach (issue 3): boots a Debian gnumach-1.8-xen-486 image in a 32 MiB
// domain and logs every hypercall (number, name, arguments, result) and every exit that is not a
// hypercall, then the console transcript and how the domain ended.
//
//   node --import tsx tests/pv/trace-mach.ts [i386|amd64|path] [--quiet] [--max-ns N] [--tail N]

import { existsSync } from "node:fs";
import { EXIT_NAMES, EXIT_SOFTWARE_INT, EXIT_SYSCALL } from "../../src/x86/cpu.ts";
import * as S from "../../src/x86/state.ts";
import { shutdownReasonName } from "../../src/xen/domain.ts";
import { NO_RESULT } from "../../src/xen/hypercalls/call.ts";
import { hypercallEntry } from "../../src/xen/hypercalls/table.ts";
import { buildPv } from "./boot.ts";

export function machImage(arch: "i386" | "amd64"): string {
  return `.cache/debian/gnumach-image-1.8-xen-486_${arch}/tree/boot/gnumach-1.8-xen-486.gz`;
}

const argv = process.argv.slice(2);
const quiet = argv.includes("--quiet");
const opt = (name: string, dflt: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const which = argv.find((a) => !a.startsWith("--") && !/^\d/.test(a)) ?? "i386";
const path = which === "i386" || which === "amd64" ? machImage(which) : which;
if (!existsSync(path)) {
  console.error(`${path}: missing (scripts/fetch-guests.sh fetches it)`);
  process.exit(2);
}
const tail = opt("--tail", 0);
const lines: string[] = [];
const out = (l: string) => {
  if (tail > 0) {
    lines.push(l);
    if (lines.length > tail) lines.shift();
  } else if (!quiet) console.log(l);
};

const b = buildPv(path, {
  memoryMiB: 32,
  emulateL2Writes: !argv.includes("--xen-strict"),
  log: (l) => out(`[xen] ${l}`),
  console: (_d, t) => out(`[console_io] ${JSON.stringify(t)}`),
  consoleSink: (t) => out(`[console] ${JSON.stringify(t)}`),
});
const hex = (lo: number, hi = 0) =>
  hi ? `${(hi >>> 0).toString(16)}_${(lo >>> 0).toString(16).padStart(8, "0")}` : (lo >>> 0).toString(16);
let n = 0;
b.xen.traceHypercall = (v, nr, args, r) => {
  n++;
  const e = hypercallEntry(nr);
  const argc = e ? (v.domain.is64 ? e.args[1] : e.args[0]) : 5;
  const a = args
    .slice(0, argc)
    .map(([lo, hi]) => hex(lo, hi))
    .join(", ");
  const rip = hex(v.s[S.RIP_LO], v.domain.is64 ? v.s[S.RIP_HI] : 0);
  const res = r === NO_RESULT ? "(no result)" : r < 0 ? `${r} <-- REFUSED` : String(r);
  let extra = "";
  if (nr === 16 || nr === 32) {
    // event_channel_op(_compat): show the command and the first words of its argument.
    const [lo, hi] = nr === 16 ? args[0] : args[1];
    const buf = new Uint8Array(16);
    if (v.cpu.readGuest(lo | 0, hi | 0, buf, false) === 0) {
      const w = new DataView(buf.buffer);
      extra = ` {${[0, 4, 8, 12].map((o) => w.getUint32(o, true).toString(16)).join(" ")}}`;
    }
  }
  out(`#${n} @${v.cpu.retired} rip=${rip} ${e?.name ?? `hc${nr}`}(${a})${extra} = ${res}`);
};
b.xen.traceExit = (v, code) => {
  if (code === EXIT_SOFTWARE_INT && (v.cpu.exitInfo.qualification & 0xff) === 0x82) return;
  if (code === EXIT_SYSCALL && v.domain.is64 && v.kernelMode) return;
  const name = EXIT_NAMES[code] ?? String(code);
  if (name === "budget" || name === "requested") return;
  const i = v.cpu.exitInfo;
  out(
    `  exit ${name} vec=${i.vector} err=${i.hasErrorCode ? hex(i.errorCode) : "-"} rip=${hex(v.s[S.RIP_LO], v.s[S.RIP_HI])} cr2=${hex(i.addressLo, i.addressHi)}`,
  );
};
b.domain.unpause();
const t0 = Date.now();
await b.xen.scheduler.run({ maxVirtualNs: opt("--max-ns", 3e9), timeoutMs: opt("--timeout", 120_000) });
for (const l of lines) console.log(l);
const d = b.domain;
console.log(`--- ${n} hypercalls, ${d.vcpus[0].cpu.retired} instructions, ${Date.now() - t0} ms`);
console.log(
  `--- state ${d.state}${d.shutdownReason !== undefined ? ` reason ${shutdownReasonName(d.shutdownReason)}` : ""}${d.crashReason ? `: ${d.crashReason}` : ""}`,
);
console.log("--- console:");
console.log(b.console());
console.log("--- PV console:");
console.log(b.pvConsole.text());
