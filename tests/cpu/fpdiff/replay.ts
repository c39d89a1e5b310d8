// Replays one floating-point case: native and emulated results side by side.
//   node --import tsx tests/cpu/fpdiff/replay.ts --mode 64 --seed S --index I
import type { Mode } from "../difftest/cases.ts";
import { hexBytes } from "../difftest/compare.ts";
import { compareFp, f80hex } from "./compare.ts";
import { FpEmulatorRunner } from "./emulator.ts";
import { FpGenerator } from "./generator.ts";
import { runFpNativeSync } from "./native.ts";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : dflt;
}
const mode = Number(arg("mode", "64")) as Mode;
const gen = new FpGenerator({ mode, seed: Number(arg("seed", "1")) });
const c = gen.generate(Number(arg("index", "0")));
const nat = runFpNativeSync(mode, [c])[0]!;
const emu = new FpEmulatorRunner(mode).run(c);
const u16 = (b: Uint8Array, o: number) => b[o]! | (b[o + 1]! << 8);
console.log(`case ${c.index} (${mode}-bit): ${c.label}\n  code: ${hexBytes(c.code)}`);
console.log(`  initial fcw ${u16(c.fx, 0).toString(16)} fsw ${u16(c.fx, 2).toString(16)} ftw ${c.fx[4]!.toString(16)} mxcsr ${(c.fx[24]! | (c.fx[25]! << 8)).toString(16)}`);
for (let i = 0; i < 8; i++) console.log(`  st${i}: initial ${f80hex(c.fx, 32 + i * 16)}  native ${f80hex(nat.fx, 32 + i * 16)}  emulator ${f80hex(emu.fx, 32 + i * 16)}`);
console.log(`  native: vector ${nat.vector} fsw ${u16(nat.fx, 2).toString(16)} ftw ${nat.fx[4]!.toString(16)}; emulator: vector ${emu.vector} fsw ${u16(emu.fx, 2).toString(16)} ftw ${emu.fx[4]!.toString(16)}`);
const d = compareFp(c, nat, emu);
console.log(d.length ? d.map((x) => `  DIFF ${x}`).join("\n") : "  identical");
