/**
 * Segment descriptor layout: pure functions over the two 32-bit words of a descriptor
 * (lo = bytes 0..3, hi = bytes 4..7), and the VMX access-rights form the segment caches keep
 * (see state.ts: type/S/DPL/P in bits 0..7, AVL/L/DB/G in bits 12..15, bit 16 unusable).
 */
import * as S from "../state.ts";

/** System descriptor types (S = 0). Legacy and long mode share numbers where they overlap. */
export const SYS_TSS16_AVAIL = 0x1;
export const SYS_LDT = 0x2;
export const SYS_TSS16_BUSY = 0x3;
export const SYS_CALL_GATE16 = 0x4;
export const SYS_TASK_GATE = 0x5;
export const SYS_INT_GATE16 = 0x6;
export const SYS_TRAP_GATE16 = 0x7;
export const SYS_TSS32_AVAIL = 0x9;
export const SYS_TSS32_BUSY = 0xb;
export const SYS_CALL_GATE32 = 0xc;
export const SYS_INT_GATE32 = 0xe;
export const SYS_TRAP_GATE32 = 0xf;

/** Descriptor hi-word bits. */
export const D_ACCESSED = 1 << 8;
export const D_S = 1 << 12;
export const D_P = 1 << 15;
export const D_L = 1 << 21;
export const D_DB = 1 << 22;
export const D_G = 1 << 23;

export function descBase(lo: number, hi: number): number {
  return ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) | 0;
}

/** The byte-granular limit (G applied), as an int32 (0xffffffff is -1). */
export function descLimit(lo: number, hi: number): number {
  const raw = (lo & 0xffff) | (hi & 0xf0000);
  return (hi & D_G) !== 0 ? (raw << 12) | 0xfff : raw;
}

/** Access rights in the VMX layout of the segment caches. */
export function descAttr(hi: number): number {
  return (hi >>> 8) & 0xf0ff;
}

export function descDpl(hi: number): number {
  return (hi >>> 13) & 3;
}

/** Type with the S bit: 0x00..0x0f system, 0x10..0x17 data, 0x18..0x1f code. */
export function descType(hi: number): number {
  return (hi >>> 8) & 0x1f;
}

export function isCode(hi: number): boolean {
  return (hi & (D_S | (1 << 11))) === (D_S | (1 << 11));
}
export function isData(hi: number): boolean {
  return (hi & (D_S | (1 << 11))) === D_S;
}
export function isConforming(hi: number): boolean {
  return isCode(hi) && (hi & (1 << 10)) !== 0;
}
/** Data: writable. Code: readable. */
export function isRw(hi: number): boolean {
  return (hi & (1 << 9)) !== 0;
}
export function isPresent(hi: number): boolean {
  return (hi & D_P) !== 0;
}

/** The access-rights word of an unusable (null-loaded) segment cache. */
export function nullAttr(dpl: number): number {
  return S.ATTR_UNUSABLE | (dpl << S.ATTR_DPL_SHIFT);
}

/** Is `off .. off+size-1` inside a segment with this cache limit and attributes? */
export function withinLimit(attr: number, limit: number, off: number, size: number): boolean {
  const first = off >>> 0;
  const last = first + size - 1;
  const lim = limit >>> 0;
  if ((attr & (S.ATTR_CODE | S.ATTR_DC)) === S.ATTR_DC) {
    // Expand-down data: valid offsets are limit+1 .. 0xffff (or 0xffffffff with B).
    const upper = (attr & S.ATTR_DB) !== 0 ? 0xffffffff : 0xffff;
    return first > lim && last <= upper;
  }
  return last <= lim;
}
