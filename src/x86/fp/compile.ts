/**
 * Instruction closures of the x87, MMX and SSE units. compileBody() in ../compile.ts hands
 * every mnemonic it does not know to compileFloatingPoint(); returning null means #UD.
 */
import type { Cpu } from "../cpu.ts";
import type { Insn } from "../decoder.ts";
import { compileSse } from "./sse.ts";
import { compileFwait, compileX87 } from "./x87.ts";

type Fn = () => number;

export function compileFloatingPoint(cpu: Cpu, d: Insn, eipLo: number, eipHi: number, nextLo: number, nextHi: number): Fn | null {
  const mn = d.entry!.mnemonic;
  if (mn === "fpu") return compileX87(cpu, d, eipLo, eipHi, nextLo, nextHi);
  if (mn === "fwait") return compileFwait(cpu);
  return compileSse(cpu, d, eipLo, eipHi, nextLo, nextHi);
}
