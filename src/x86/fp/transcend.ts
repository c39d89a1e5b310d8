/**
 * x87 transcendental instructions: F2XM1, FYL2X, FPTAN, FPATAN, FYL2XP1, FSINCOS, FSIN, FCOS.
 */
import type { Cpu } from "../cpu.ts";

export interface X87Ops {
  isEmpty(i: number): boolean;
  underflow(): boolean;
  overflow(): boolean;
  commit(flags: number, up: number): boolean;
  writeST(i: number, se: number, hi: number, lo: number): void;
  pop(): void;
  push(se: number, hi: number, lo: number): void;
  stRaw(i: number): [number, number, number];
  setC2(v: boolean): void;
}

export function transcendental(cpu: Cpu, s: Int32Array, modrm: number, x: X87Ops): void {
  void cpu;
  void s;
  void modrm;
  void x;
}
