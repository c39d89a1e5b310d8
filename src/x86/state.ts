/**
 * The architectural state of one vCPU, as 32-bit words in a frame of machine memory.
 *
 * Invariants:
 * - Every piece of state that save/restore, migration or a JIT must see lives here, at the
 *   offsets below, as int32 words; 64-bit values are two words, low then high.
 * - Arithmetic flags (CF PF AF ZF SF OF) are lazy: they are a function of CC_OP, CC_DST,
 *   CC_SRC and CC_SRC2 (see flags.ts). FLAGS holds every other EFLAGS bit, with the six
 *   arithmetic bits always zero.
 * - Segment caches hold what the processor loaded from descriptors; ATTR uses the VMX
 *   access-rights layout (type, S, DPL, P in bits 0..7; AVL, L, D/B, G in bits 12..15;
 *   bit 16 = unusable).
 * - Nothing outside this file depends on the numeric offsets except through these names.
 */

export const STATE_WORDS = 1024; // one 4 KiB frame
export const STATE_BYTES = STATE_WORDS * 4;

// General registers: register i occupies words 2i (low) and 2i+1 (high).
export const REG_EAX = 0;
export const REG_ECX = 1;
export const REG_EDX = 2;
export const REG_EBX = 3;
export const REG_ESP = 4;
export const REG_EBP = 5;
export const REG_ESI = 6;
export const REG_EDI = 7;

export const RIP_LO = 32;
export const RIP_HI = 33;
export const FLAGS = 34;
export const CC_OP = 35;
export const CC_DST = 36; // and 37
export const CC_SRC = 38; // and 39
export const CC_SRC2 = 40; // and 41

// Segment registers in encoding order, then LDTR and TR.
export const SEG_ES = 0;
export const SEG_CS = 1;
export const SEG_SS = 2;
export const SEG_DS = 3;
export const SEG_FS = 4;
export const SEG_GS = 5;
export const SEG_LDTR = 6;
export const SEG_TR = 7;
export const SEG_BASE = 48; // each segment: SEL, BASE_LO, BASE_HI, LIMIT, ATTR, (3 spare)
export const SEG_STRIDE = 8;
export const SEG_SEL = 0;
export const SEG_BASE_LO = 1;
export const SEG_BASE_HI = 2;
export const SEG_LIMIT = 3;
export const SEG_ATTR = 4;
export function segWord(seg: number, field: number): number {
  return SEG_BASE + seg * SEG_STRIDE + field;
}

export const GDTR_BASE_LO = 112;
export const GDTR_BASE_HI = 113;
export const GDTR_LIMIT = 114;
export const IDTR_BASE_LO = 115;
export const IDTR_BASE_HI = 116;
export const IDTR_LIMIT = 117;

export const CR0 = 120;
export const CR2_LO = 121;
export const CR2_HI = 122;
export const CR3_LO = 123;
export const CR3_HI = 124;
export const CR4 = 125;
export const CR8 = 126;
export const EFER = 127;
export const DR0 = 128; // DR0..DR3, two words each
export const DR6 = 136;
export const DR7 = 137;

export const MSR_STAR_LO = 140;
export const MSR_STAR_HI = 141;
export const MSR_LSTAR_LO = 142;
export const MSR_LSTAR_HI = 143;
export const MSR_CSTAR_LO = 144;
export const MSR_CSTAR_HI = 145;
export const MSR_FMASK = 146;
export const MSR_KGSBASE_LO = 148;
export const MSR_KGSBASE_HI = 149;
export const MSR_SYSENTER_CS = 150;
export const MSR_SYSENTER_ESP_LO = 151;
export const MSR_SYSENTER_ESP_HI = 152;
export const MSR_SYSENTER_EIP_LO = 153;
export const MSR_SYSENTER_EIP_HI = 154;
export const MSR_TSC_AUX = 155;
export const MSR_PAT_LO = 156;
export const MSR_PAT_HI = 157;
export const MSR_APIC_BASE_LO = 158;
export const MSR_APIC_BASE_HI = 159;
export const MSR_MISC_ENABLE = 160;
export const TSC_OFFSET_LO = 161;
export const TSC_OFFSET_HI = 162;

export const CPL = 170;
export const HALTED = 171;
export const INTR_SHADOW = 172;
export const A20_MASK = 173;
/** Instructions retired, as two words (low, high), written by saveState(). */
export const RETIRED_LO = 174;
export const RETIRED_HI = 175;
/** Words from here on belong to the x87/SSE unit (an FXSAVE image at word 256). */
export const FXSAVE_AREA = 256;

// EFLAGS bits.
export const F_CF = 1 << 0;
export const F_PF = 1 << 2;
export const F_AF = 1 << 4;
export const F_ZF = 1 << 6;
export const F_SF = 1 << 7;
export const F_TF = 1 << 8;
export const F_IF = 1 << 9;
export const F_DF = 1 << 10;
export const F_OF = 1 << 11;
export const F_IOPL = 3 << 12;
export const F_NT = 1 << 14;
export const F_RF = 1 << 16;
export const F_VM = 1 << 17;
export const F_AC = 1 << 18;
export const F_VIF = 1 << 19;
export const F_VIP = 1 << 20;
export const F_ID = 1 << 21;
export const F_ARITH = F_CF | F_PF | F_AF | F_ZF | F_SF | F_OF;

// CR0 / CR4 / EFER bits.
export const CR0_PE = 1 << 0;
export const CR0_MP = 1 << 1;
export const CR0_EM = 1 << 2;
export const CR0_TS = 1 << 3;
export const CR0_ET = 1 << 4;
export const CR0_NE = 1 << 5;
export const CR0_WP = 1 << 16;
export const CR0_AM = 1 << 18;
export const CR0_NW = 1 << 29;
export const CR0_CD = 1 << 30;
export const CR0_PG = 1 << 31;
export const CR4_VME = 1 << 0;
export const CR4_PVI = 1 << 1;
export const CR4_TSD = 1 << 2;
export const CR4_DE = 1 << 3;
export const CR4_PSE = 1 << 4;
export const CR4_PAE = 1 << 5;
export const CR4_MCE = 1 << 6;
export const CR4_PGE = 1 << 7;
export const CR4_PCE = 1 << 8;
export const CR4_OSFXSR = 1 << 9;
export const CR4_OSXMMEXCPT = 1 << 10;
export const CR4_UMIP = 1 << 11;
export const CR4_FSGSBASE = 1 << 16;
export const CR4_SMEP = 1 << 20;
export const CR4_SMAP = 1 << 21;
export const EFER_SCE = 1 << 0;
export const EFER_LME = 1 << 8;
export const EFER_LMA = 1 << 10;
export const EFER_NXE = 1 << 11;

// Segment attribute bits (VMX access-rights layout).
export const ATTR_TYPE_MASK = 0xf;
export const ATTR_ACCESSED = 1 << 0;
export const ATTR_RW = 1 << 1; // data: writable; code: readable
export const ATTR_DC = 1 << 2; // data: expand-down; code: conforming
export const ATTR_CODE = 1 << 3;
export const ATTR_S = 1 << 4;
export const ATTR_DPL_SHIFT = 5;
export const ATTR_P = 1 << 7;
export const ATTR_AVL = 1 << 12;
export const ATTR_L = 1 << 13;
export const ATTR_DB = 1 << 14;
export const ATTR_G = 1 << 15;
export const ATTR_UNUSABLE = 1 << 16;

/** Exception vectors. */
export const VEC_DE = 0;
export const VEC_DB = 1;
export const VEC_NMI = 2;
export const VEC_BP = 3;
export const VEC_OF = 4;
export const VEC_BR = 5;
export const VEC_UD = 6;
export const VEC_NM = 7;
export const VEC_DF = 8;
export const VEC_TS = 10;
export const VEC_NP = 11;
export const VEC_SS = 12;
export const VEC_GP = 13;
export const VEC_PF = 14;
export const VEC_MF = 16;
export const VEC_AC = 17;
export const VEC_MC = 18;
export const VEC_XM = 19;
