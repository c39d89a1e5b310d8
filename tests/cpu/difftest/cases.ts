// Case and result records of the differential tester, and their binary form. The layout is
// documented at the top of tests/cpu/native/harness.c and must match it byte for byte.

export const CODE_ADDR = 0x1000_0000;
export const DATA_ADDR = 0x2000_0000;
export const DATA_SIZE = 8192;
export const STACK_ADDR = 0x3000_0000;
export const STACK_SIZE = 4096;
export const REGION_SIZE = DATA_SIZE + STACK_SIZE;
export const MAX_CODE = 64;
export const MAX_DIFFS = 48;
export const CASE_IN_SIZE = 272;
export const CASE_OUT_SIZE = 368;
export const VEC_TIMEOUT = 0x100;
export const VEC_SYSCALL = 0x101;
/** The arithmetic flags plus DF: the only EFLAGS bits a case sets or compares. */
export const FLAGS_MASK = 0xcd5;

export type Mode = 32 | 64;

export interface Patch {
  offset: number; // into the region (DATA then STACK)
  bytes: number[]; // 1..8 bytes
}

export interface TestCase {
  id: number;
  mode: Mode;
  eflags: number;
  fillSeed: number;
  /** rax rcx rdx rbx rsp rbp rsi rdi r8..r15 as BigInt-free pairs: low and high 32 bits. */
  regsLo: Uint32Array; // 16
  regsHi: Uint32Array; // 16
  code: Uint8Array; // <= 64 bytes, without the int3 terminator
  patches: Patch[]; // <= 4
  /** EFLAGS bits the manuals call undefined after this case's instruction. */
  undefinedFlags: number;
  /** Human-readable label: the opcode entry under test. */
  label: string;
  /** Generator stream the case came from, for replay. */
  seed: number;
  index: number;
}

export interface DiffEntry {
  offset: number;
  value: number;
}

export interface CaseResult {
  id: number;
  signo: number;
  vector: number;
  errorCode: number;
  addressLo: number;
  addressHi: number;
  regsLo: Uint32Array;
  regsHi: Uint32Array;
  ripLo: number;
  ripHi: number;
  eflags: number;
  ndiff: number;
  diffHash: number;
  diffs: DiffEntry[];
}

export function newResult(id: number): CaseResult {
  return {
    id,
    signo: 0,
    vector: 0,
    errorCode: 0,
    addressLo: 0,
    addressHi: 0,
    regsLo: new Uint32Array(16),
    regsHi: new Uint32Array(16),
    ripLo: 0,
    ripHi: 0,
    eflags: 0,
    ndiff: 0,
    diffHash: 0,
    diffs: [],
  };
}

export function encodeCase(c: TestCase, buf: Uint8Array, off: number): void {
  const dv = new DataView(buf.buffer, buf.byteOffset + off, CASE_IN_SIZE);
  buf.fill(0, off, off + CASE_IN_SIZE);
  dv.setUint32(0, c.id >>> 0, true);
  dv.setUint32(4, c.eflags >>> 0, true);
  if (c.code.length > MAX_CODE) throw new Error(`case ${c.id}: code longer than ${MAX_CODE} bytes`);
  dv.setUint32(8, c.code.length, true);
  dv.setUint32(12, c.fillSeed >>> 0, true);
  for (let i = 0; i < 16; i++) {
    dv.setUint32(16 + i * 8, c.regsLo[i]!, true);
    dv.setUint32(20 + i * 8, c.regsHi[i]!, true);
  }
  buf.set(c.code, off + 144);
  for (let p = 0; p < 4; p++) {
    const base = 208 + p * 16;
    const pt = c.patches[p];
    if (!pt) {
      dv.setUint16(base, 0xffff, true);
      continue;
    }
    dv.setUint16(base, pt.offset, true);
    dv.setUint8(base + 2, pt.bytes.length);
    for (let k = 0; k < pt.bytes.length && k < 8; k++) dv.setUint8(base + 8 + k, pt.bytes[k]!);
  }
}

export function decodeResult(buf: Uint8Array, off: number): CaseResult {
  const dv = new DataView(buf.buffer, buf.byteOffset + off, CASE_OUT_SIZE);
  const r = newResult(dv.getUint32(0, true));
  r.signo = dv.getUint32(4, true);
  r.vector = dv.getUint32(8, true);
  r.errorCode = dv.getUint32(12, true);
  r.addressLo = dv.getUint32(16, true);
  r.addressHi = dv.getUint32(20, true);
  for (let i = 0; i < 16; i++) {
    r.regsLo[i] = dv.getUint32(24 + i * 8, true);
    r.regsHi[i] = dv.getUint32(28 + i * 8, true);
  }
  r.ripLo = dv.getUint32(152, true);
  r.ripHi = dv.getUint32(156, true);
  r.eflags = dv.getUint32(160, true);
  r.ndiff = dv.getUint32(164, true);
  r.diffHash = dv.getUint32(168, true);
  const n = Math.min(r.ndiff, MAX_DIFFS);
  for (let i = 0; i < n; i++) {
    r.diffs.push({ offset: dv.getUint16(176 + i * 4, true), value: dv.getUint8(178 + i * 4) });
  }
  return r;
}

function fmix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** The region's initial contents (DATA then STACK), exactly as the harness computes them. */
export function regionFill(c: TestCase, dst: Uint8Array = new Uint8Array(REGION_SIZE)): Uint8Array {
  const w = new Uint32Array(dst.buffer, dst.byteOffset, REGION_SIZE / 4);
  const seed = c.fillSeed >>> 0;
  for (let i = 0; i < REGION_SIZE / 4; i++) w[i] = fmix32((seed ^ Math.imul(i, 0x9e3779b9)) >>> 0);
  for (const pt of c.patches) {
    for (let k = 0; k < pt.bytes.length && k < 8; k++) {
      const o = pt.offset + k;
      if (o < REGION_SIZE) dst[o] = pt.bytes[k]!;
    }
  }
  return dst;
}

/** Fills ndiff/diffHash/diffs of a result by comparing final region bytes with the initial ones. */
export function diffRegion(initial: Uint8Array, final: Uint8Array, r: CaseResult): void {
  let n = 0;
  let h = 2166136261;
  r.diffs = [];
  for (let off = 0; off < REGION_SIZE; off++) {
    const v = final[off]!;
    if (v === initial[off]) continue;
    if (n < MAX_DIFFS) r.diffs.push({ offset: off, value: v });
    n++;
    h = Math.imul(h ^ (off & 0xff), 16777619) >>> 0;
    h = Math.imul(h ^ (off >>> 8), 16777619) >>> 0;
    h = Math.imul(h ^ v, 16777619) >>> 0;
  }
  r.ndiff = n;
  r.diffHash = h >>> 0;
}

/** The address a region offset stands for. */
export function regionAddress(off: number): number {
  return off < DATA_SIZE ? DATA_ADDR + off : STACK_ADDR + off - DATA_SIZE;
}

export const REG_NAMES_64 = [
  "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
  "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
];
export const REG_NAMES_32 = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];

export function hex32(v: number, digits = 8): string {
  return (v >>> 0).toString(16).padStart(digits, "0");
}
export function hex64(hi: number, lo: number): string {
  return hex32(hi) + hex32(lo);
}

/** Builds a case by hand (tests, replay of hand-written snippets). Register values may be bigint. */
export function makeCase(
  mode: Mode,
  code: ArrayLike<number>,
  regs: Partial<Record<string, number | bigint>> = {},
  opts: { eflags?: number; fillSeed?: number; patches?: Patch[]; id?: number; label?: string; undefinedFlags?: number } = {},
): TestCase {
  const c: TestCase = {
    id: opts.id ?? 0,
    mode,
    eflags: opts.eflags ?? 0,
    fillSeed: opts.fillSeed ?? 0x1234_5678,
    regsLo: new Uint32Array(16),
    regsHi: new Uint32Array(16),
    code: Uint8Array.from(code),
    patches: opts.patches ?? [],
    undefinedFlags: opts.undefinedFlags ?? 0,
    label: opts.label ?? "hand-written",
    seed: 0,
    index: 0,
  };
  c.regsLo[4] = STACK_ADDR + 0x800;
  for (const [name, v] of Object.entries(regs)) {
    let i = REG_NAMES_64.indexOf(name);
    if (i < 0) i = REG_NAMES_32.indexOf(name);
    if (i < 0) throw new Error(`unknown register ${name}`);
    const b = BigInt(v!) & 0xffff_ffff_ffff_ffffn;
    c.regsLo[i] = Number(b & 0xffff_ffffn);
    c.regsHi[i] = Number(b >> 32n);
  }
  return c;
}

/** A 64-bit register of a result or case as bigint (for tests and dumps, not hot paths). */
export function reg64(lo: Uint32Array, hi: Uint32Array, i: number): bigint {
  return (BigInt(hi[i]!) << 32n) | BigInt(lo[i]!);
}
