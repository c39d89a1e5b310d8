/**
 * The CPUID policy: what the processor tells the guest it implements.
 *
 * Invariants:
 * - A feature bit is reported only when the processor implements it. The x87/SSE bits are the
 *   one exception to "everything implemented is reported": they are off until the x87/SSE unit
 *   exists, and FLOATING_POINT_EDX / FLOATING_POINT_ECX below are the single place that turns
 *   them on.
 * - The policy is a plain table the owner (the hypervisor, per domain) may edit: set() a leaf,
 *   or change bits in place. Leaves past the maximum of their range return the highest basic
 *   leaf, as Intel processors do; other absent leaves return zeros.
 */

export interface CpuidRegs {
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

// Leaf 1 EDX.
export const CPUID_1_EDX_FPU = 1 << 0;
export const CPUID_1_EDX_DE = 1 << 2;
export const CPUID_1_EDX_PSE = 1 << 3;
export const CPUID_1_EDX_TSC = 1 << 4;
export const CPUID_1_EDX_MSR = 1 << 5;
export const CPUID_1_EDX_PAE = 1 << 6;
export const CPUID_1_EDX_CX8 = 1 << 8;
export const CPUID_1_EDX_APIC = 1 << 9;
export const CPUID_1_EDX_SEP = 1 << 11;
export const CPUID_1_EDX_PGE = 1 << 13;
export const CPUID_1_EDX_CMOV = 1 << 15;
export const CPUID_1_EDX_PAT = 1 << 16;
export const CPUID_1_EDX_CLFSH = 1 << 19;
export const CPUID_1_EDX_MMX = 1 << 23;
export const CPUID_1_EDX_FXSR = 1 << 24;
export const CPUID_1_EDX_SSE = 1 << 25;
export const CPUID_1_EDX_SSE2 = 1 << 26;
// Leaf 1 ECX.
export const CPUID_1_ECX_SSE3 = 1 << 0;
export const CPUID_1_ECX_SSSE3 = 1 << 9;
export const CPUID_1_ECX_SSE41 = 1 << 19;
export const CPUID_1_ECX_SSE42 = 1 << 20;
export const CPUID_1_ECX_CX16 = 1 << 13;
export const CPUID_1_ECX_MOVBE = 1 << 22;
export const CPUID_1_ECX_POPCNT = 1 << 23;
export const CPUID_1_ECX_HYPERVISOR = 1 << 31;
// Leaf 7 subleaf 0.
export const CPUID_7_EBX_SMEP = 1 << 7;
export const CPUID_7_ECX_UMIP = 1 << 2;
export const CPUID_7_ECX_RDPID = 1 << 22;
// Leaf 0x80000001.
export const CPUID_81_ECX_LAHF_LM = 1 << 0;
export const CPUID_81_ECX_ABM = 1 << 5;
export const CPUID_81_EDX_SYSCALL = 1 << 11;
export const CPUID_81_EDX_NX = 1 << 20;
export const CPUID_81_EDX_PAGE1GB = 1 << 26;
export const CPUID_81_EDX_RDTSCP = 1 << 27;
export const CPUID_81_EDX_LM = 1 << 29;

/**
 * The x87/SSE feature bits, reported only once the x87/SSE unit is implemented: flip
 * FLOATING_POINT_IMPLEMENTED (and extend the ECX set as SSE3.. arrive). Nothing else in the
 * processor reports these bits.
 */
const FLOATING_POINT_IMPLEMENTED = true;
const FLOATING_POINT_EDX = CPUID_1_EDX_FPU | CPUID_1_EDX_MMX | CPUID_1_EDX_FXSR | CPUID_1_EDX_SSE | CPUID_1_EDX_SSE2;
/** SSE3, SSSE3, SSE4.1, SSE4.2 (src/x86/fp; POPCNT is reported above). No XSAVE, no AVX. */
const FLOATING_POINT_ECX = CPUID_1_ECX_SSE3 | CPUID_1_ECX_SSSE3 | CPUID_1_ECX_SSE41 | CPUID_1_ECX_SSE42;

/** CMPXCHG16B: reported only if compile.ts implements it (see the report to the lead). */
const CMPXCHG16B_IMPLEMENTED = true;

export const VENDOR = "TsxenVirtCPU";
export const BRAND = "tsxen virtual processor";

/** Family 6, model 15, stepping 1 (a generic P6-family signature). */
const SIGNATURE = 0x000006f1;

function ascii4(str: string, at: number): number {
  let v = 0;
  for (let i = 0; i < 4; i++) v |= (str.charCodeAt(at + i) & 0xff) << (8 * i);
  return v | 0;
}

/** The subleaf key of leaves that ignore ECX. */
const ANY_SUBLEAF = -1;

export class CpuidPolicy {
  /** leaf -> subleaf (ANY_SUBLEAF when the leaf ignores ECX) -> registers. */
  private readonly table = new Map<number, Map<number, CpuidRegs>>();

  constructor(apicId = 0) {
    const edx1 =
      CPUID_1_EDX_DE | CPUID_1_EDX_PSE | CPUID_1_EDX_TSC | CPUID_1_EDX_MSR | CPUID_1_EDX_PAE | CPUID_1_EDX_CX8 |
      CPUID_1_EDX_SEP | CPUID_1_EDX_PGE | CPUID_1_EDX_CMOV | CPUID_1_EDX_PAT | CPUID_1_EDX_CLFSH |
      (FLOATING_POINT_IMPLEMENTED ? FLOATING_POINT_EDX : 0);
    const ecx1 =
      CPUID_1_ECX_MOVBE | CPUID_1_ECX_POPCNT | (CMPXCHG16B_IMPLEMENTED ? CPUID_1_ECX_CX16 : 0) |
      (FLOATING_POINT_IMPLEMENTED ? FLOATING_POINT_ECX : 0);
    this.set(0, -1, { eax: 7, ebx: ascii4(VENDOR, 0), edx: ascii4(VENDOR, 4), ecx: ascii4(VENDOR, 8) });
    // EBX: CLFLUSH line 8 quadwords, 1 logical processor, initial APIC id.
    this.set(1, -1, { eax: SIGNATURE, ebx: (8 << 8) | (1 << 16) | ((apicId & 0xff) << 24), ecx: ecx1 | 0, edx: edx1 | 0 });
    this.set(7, 0, { eax: 0, ebx: CPUID_7_EBX_SMEP, ecx: CPUID_7_ECX_UMIP | CPUID_7_ECX_RDPID, edx: 0 });
    this.set(0x80000000, -1, { eax: 0x80000008 | 0, ebx: 0, ecx: 0, edx: 0 });
    this.set(0x80000001, -1, {
      eax: 0,
      ebx: 0,
      ecx: CPUID_81_ECX_LAHF_LM | CPUID_81_ECX_ABM,
      edx: CPUID_81_EDX_SYSCALL | CPUID_81_EDX_NX | CPUID_81_EDX_PAGE1GB | CPUID_81_EDX_RDTSCP | CPUID_81_EDX_LM,
    });
    const brand = BRAND.padEnd(48, "\0");
    for (let i = 0; i < 3; i++) {
      const at = i * 16;
      this.set(0x80000002 + i, -1, {
        eax: ascii4(brand, at),
        ebx: ascii4(brand, at + 4),
        ecx: ascii4(brand, at + 8),
        edx: ascii4(brand, at + 12),
      });
    }
    // 36 physical address bits, 48 linear.
    this.set(0x80000008, -1, { eax: 36 | (48 << 8), ebx: 0, ecx: 0, edx: 0 });
  }

  /** Sets a leaf (subleaf -1: the leaf ignores ECX). The registers object is kept, not copied. */
  set(leaf: number, subleaf: number, regs: CpuidRegs): void {
    let sub = this.table.get(leaf >>> 0);
    if (!sub) {
      sub = new Map();
      this.table.set(leaf >>> 0, sub);
    }
    sub.set(subleaf < 0 ? ANY_SUBLEAF : subleaf >>> 0, regs);
  }

  /** Removes a leaf entirely (all its subleaves). */
  delete(leaf: number): void {
    this.table.delete(leaf >>> 0);
  }

  /** The registers for (leaf, subleaf), applying the out-of-range rule. */
  lookup(leaf: number, subleaf: number): CpuidRegs | undefined {
    leaf >>>= 0;
    const maxBasic = (this.table.get(0)?.get(ANY_SUBLEAF)?.eax ?? 0) >>> 0;
    const maxExt = (this.table.get(0x80000000)?.get(ANY_SUBLEAF)?.eax ?? 0) >>> 0;
    const pastBasic = leaf > maxBasic && leaf < 0x40000000;
    const pastExtended = leaf > maxExt && leaf >= 0x80000000 && leaf < 0xc0000000;
    if (pastBasic || pastExtended) leaf = maxBasic;
    const sub = this.table.get(leaf);
    if (!sub) return undefined;
    return sub.get(ANY_SUBLEAF) ?? sub.get(subleaf >>> 0);
  }
}
