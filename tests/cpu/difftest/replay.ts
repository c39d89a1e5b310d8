// Replays one differential-test case and prints the native and emulated outcomes side by side.
//   node --import tsx tests/cpu/difftest/replay.ts --mode 64 --seed S --index I
import { type CaseResult, type Mode, REG_NAMES_32, REG_NAMES_64, type TestCase, hex32, hex64, regionAddress } from "./cases.ts";
import { compare, flagNames, flagsMask, hexBytes, vectorName } from "./compare.ts";
import { CaseGenerator } from "./generator.ts";
import { runNativeSync } from "./native.ts";
import { loadEmulator } from "./run.ts";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const mode = Number(arg("mode") ?? "64") as Mode;
const seed = Number(arg("seed") ?? "1");
const index = Number(arg("index") ?? "0");
if (mode !== 32 && mode !== 64) throw new Error("--mode must be 32 or 64");

const gen = new CaseGenerator({ mode, seed });
const c: TestCase = gen.generate(index);
const [nat] = runNativeSync(mode, [c]);
const emu = await loadEmulator(mode);
const em: CaseResult | null = typeof emu === "string" ? null : emu.run(c);

const names = mode === 64 ? REG_NAMES_64 : REG_NAMES_32;
const n = mode === 64 ? 16 : 8;
const reg = (lo: Uint32Array, hi: Uint32Array, i: number) => (mode === 64 ? hex64(hi[i]!, lo[i]!) : hex32(lo[i]!));
const col = (s: string) => s.padEnd(20);
const mark = (a: string, b: string | undefined) => (b !== undefined && a !== b ? "  <<" : "");

console.log(`case ${index} (${mode}-bit, seed ${seed}): ${c.label}`);
console.log(`code: ${hexBytes(c.code)}`);
console.log(`initial eflags [${flagNames(c.eflags)}], undefined after it [${flagNames(c.undefinedFlags)}]`);
for (const p of c.patches) console.log(`patch ${hex32(regionAddress(p.offset))}: ${hexBytes(p.bytes)}`);
console.log("");
console.log(`${"".padEnd(8)}${col("initial")}${col("native")}${em ? col("emulator") : "(emulator unavailable)"}`);
for (let i = 0; i < n; i++) {
  const a = reg(nat!.regsLo, nat!.regsHi, i);
  const b = em ? reg(em.regsLo, em.regsHi, i) : undefined;
  console.log(`${names[i]!.padEnd(8)}${col(reg(c.regsLo, c.regsHi, i))}${col(a)}${b ? col(b) : ""}${mark(a, b)}`);
}
const ripN = hex64(nat!.ripHi, nat!.ripLo);
const ripE = em ? hex64(em.ripHi, em.ripLo) : undefined;
console.log(`${"rip".padEnd(8)}${col("")}${col(ripN)}${ripE ? col(ripE) : ""}${mark(ripN, ripE)}`);
const mask = flagsMask(c, nat!);
const fN = `${hex32(nat!.eflags & mask, 6)}`;
const fE = em ? hex32(em.eflags & mask, 6) : undefined;
console.log(`${"eflags".padEnd(8)}${col(hex32(c.eflags, 6))}${col(fN)}${fE ? col(fE) : ""}${mark(fN, fE)}  native [${flagNames(nat!.eflags & mask)}]${em ? ` emulator [${flagNames(em.eflags & mask)}]` : ""}`);
const out = (r: CaseResult) => `${vectorName(r.vector)} err=${hex32(r.errorCode, 4)}${r.vector === 14 ? ` addr=${hex64(r.addressHi, r.addressLo)}` : ""}`;
console.log(`${"outcome".padEnd(8)}${col("")}native ${out(nat!)}${em ? `; emulator ${out(em)}` : ""}`);
const mem = (r: CaseResult) => `${r.ndiff} byte(s): ${r.diffs.slice(0, 24).map((d) => `${hex32(regionAddress(d.offset))}=${d.value.toString(16).padStart(2, "0")}`).join(" ")}`;
console.log(`memory  native   ${mem(nat!)}`);
if (em) console.log(`memory  emulator ${mem(em)}`);
if (typeof emu === "string") console.log(`\n${emu}`);
else {
  if (em!.vector >= 0x200) console.log(`\nemulator exit: ${emu.lastMessage}`);
  const d = compare(c, nat!, em!);
  console.log(d.length ? `\nMISMATCH:\n  ${d.join("\n  ")}` : "\nmatch");
  process.exitCode = d.length ? 1 : 0;
}
