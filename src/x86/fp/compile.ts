/**
 * Instruction closures of the x87, MMX and SSE units. compileBody() in ../compile.ts hands
 * every mnemonic it does not know to compileFloatingPoint(); returning null means #UD.
 */
import type { Cpu } from "../cpu.ts";
import type { Insn } from "../decoder.ts";
import * as S from "../state.ts";

type Fn = () => number;

export function compileFloatingPoint(cpu: Cpu, d: Insn, eipLo: number, eipHi: number, nextLo: number, nextHi: number): Fn | null {
  void eipLo;
  void eipHi;
  void nextLo;
  void nextHi;
  const s = cpu.s;
  if (d.entry!.mnemonic === "fwait") return () => 0;
  if (d.entry!.mnemonic === "fpu") {
    // No x87 yet (CPUID reports no FPU): #NM if CR0.EM or CR0.TS says so, else #UD.
    return () => {
      if ((s[S.CR0] & (S.CR0_EM | S.CR0_TS)) !== 0) cpu.fault(S.VEC_NM);
      return cpu.ud();
    };
  }
  return null;
}
