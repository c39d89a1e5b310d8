// Entry to and exit from PV guests (xen-pv-abi.md §4.1, §5): what the hypervisor does with
// every exit of a vCPU's processor, and how it enters the guest's handlers.
//
// - Hypercalls: `int $0x82` from ring 1 (32-bit), `syscall` in guest kernel mode (64-bit).
// - Exceptions and software interrupts are "bounced" to the guest's trap table by building
//   Xen's frame on the guest kernel stack (32-bit ring 1: [SS ESP] EFLAGS CS|mask<<16 EIP
//   [err]; 64-bit ring 3: RCX R11 [err] RIP CS|mask<<32 RFLAGS RSP SS, 16-byte aligned).
// - #GP(0) from guest kernel code is first offered to privileged-instruction emulation,
//   #UD to the `ud2; "xen"; cpuid` forced-emulation prefix, #PF to the PV MMU's writable
//   page tables; #NM clears the virtual CR0.TS before it is bounced.
// - On every return to the guest, in this order: data selectors that no longer load (after a
//   descriptor-table change or a switch between vCPUs) go to the failsafe callback; a pending
//   virtual NMI is bounced through trap vector 2 unless one is being handled (masked until the
//   guest's HYPERVISOR_iret); pending events are delivered whenever upcall_pending is set and
//   upcall_mask clear (the guest enters its event callback with events masked).
//
// Invariants:
// - N1. Every bounce either completes (frame written, state switched) or crashes the domain
//   with the reason; it never leaves a half-built frame as the guest's state.
// - N2. The saved IF in every frame is !upcall_mask; the real IF stays 1, the real IOPL 0.
// - N3. A vector with no handler in the trap table crashes the domain ("Unhandled: vec N").
// - N4. Nothing here throws for a guest cause; an unexpected host exception while handling an
//   exit crashes only that domain (runVcpu's catch), with the message logged.
// - N5. A selector that cannot be loaded on the way back to the guest never runs: it is
//   replaced by null and the guest is told through its failsafe callback (or the domain is
//   crashed when it has none); a CS/SS that cannot be loaded likewise (32-bit failsafe,
//   64-bit fault in the guest).

import {
  EXIT_BUDGET,
  EXIT_EXCEPTION,
  EXIT_HLT,
  EXIT_INTERNAL,
  EXIT_NAMES,
  EXIT_REQUESTED,
  EXIT_SOFTWARE_INT,
  EXIT_SYSCALL,
  EXIT_TRIPLE_FAULT,
} from "../x86/cpu.ts";
import * as S from "../x86/state.ts";
import {
  descAttr,
  descBase,
  descDpl,
  descLimit,
  isCode,
  isData,
  isPresent,
  isRw,
} from "../x86/system/descriptors.ts";
import { dispatchHypercall } from "./hypercalls/table.ts";
import { newBaseptr, ptwrEmulate } from "./mm.ts";
import {
  FLAT_KERNEL_CS64,
  FLAT_KERNEL_SS64,
  FLAT_RING1_CS,
  FLAT_RING1_DS,
  TI_DPL_MASK,
  TI_MASK_EVENTS,
  VMASST_TYPE_architectural_iopl,
} from "./public.ts";
import type { Callback, Vcpu } from "./vcpu.ts";

const F_BOUNCE_CLEAR = S.F_TF | S.F_NT | S.F_RF | S.F_VM;
const buf8 = new Uint8Array(8);
const dv8 = new DataView(buf8.buffer);
const frameBuf = new Uint8Array(13 * 8);
const frameDv = new DataView(frameBuf.buffer);

/** Vectors whose exceptions push an error code. */
const HAS_ERROR =
  (1 << 8) | (1 << 10) | (1 << 11) | (1 << 12) | (1 << 13) | (1 << 14) | (1 << 17) | (1 << 21);

// ------------------------------------------------------------------ registers

export function getReg(v: Vcpu, r: number): [number, number] {
  return [v.s[r * 2] >>> 0, v.s[r * 2 + 1] >>> 0];
}
export function setReg(v: Vcpu, r: number, lo: number, hi = 0): void {
  v.s[r * 2] = lo | 0;
  v.s[r * 2 + 1] = v.domain.is64 ? hi | 0 : 0;
}
/** Sets RAX/EAX to a hypercall result (a signed JS number). */
export function setResult(v: Vcpu, value: number): void {
  if (v.domain.is64) {
    v.s[0] = value | 0;
    v.s[1] = value < 0 ? -1 : Math.floor(value / 4294967296) | 0;
  } else {
    v.s[0] = value | 0;
    v.s[1] = 0;
  }
}
function ripAdvance(v: Vcpu, n: number): void {
  const s = v.s;
  const lo = s[S.RIP_LO] >>> 0;
  const nlo = lo + n;
  if (v.domain.is64 && v.cpu.code64) {
    if (nlo > 0xffffffff) s[S.RIP_HI] = (s[S.RIP_HI] + 1) | 0;
    s[S.RIP_LO] = nlo | 0;
  } else s[S.RIP_LO] = nlo | 0;
}

// ------------------------------------------------------------------ segments

/** Reads the 8-byte descriptor of `sel` from the vCPU's GDT or LDT; null when out of range. */
export function readDescriptor(v: Vcpu, sel: number): [number, number] | null {
  const s = v.s;
  const idx = sel & 0xfff8;
  let lo: number;
  let hi: number;
  let limit: number;
  if ((sel & 4) !== 0) {
    const attr = s[S.segWord(S.SEG_LDTR, S.SEG_ATTR)];
    if ((attr & S.ATTR_UNUSABLE) !== 0) return null;
    lo = s[S.segWord(S.SEG_LDTR, S.SEG_BASE_LO)];
    hi = s[S.segWord(S.SEG_LDTR, S.SEG_BASE_HI)];
    limit = s[S.segWord(S.SEG_LDTR, S.SEG_LIMIT)] >>> 0;
  } else {
    lo = s[S.GDTR_BASE_LO];
    hi = s[S.GDTR_BASE_HI];
    limit = s[S.GDTR_LIMIT] >>> 0;
  }
  if (idx + 7 > limit) return null;
  const a = (lo >>> 0) + idx;
  if (v.cpu.readGuest(a | 0, a > 0xffffffff ? hi + 1 : hi, buf8, false) !== 0) return null;
  return [dv8.getInt32(0, true), dv8.getInt32(4, true)];
}

/**
 * Loads segment register `seg` with `sel` as seen from privilege `cpl` (descriptor checks as a
 * MOV/POP would do them, plus CS rules). Returns false when the selector is unusable.
 */
export function loadSegment(v: Vcpu, seg: number, sel: number, cpl: number): boolean {
  const cpu = v.cpu;
  sel &= 0xffff;
  if ((sel & 0xfffc) === 0) {
    if (seg === S.SEG_CS) return false;
    if (seg === S.SEG_SS && !(v.domain.is64 && cpu.lma)) return false;
    cpu.loadSegmentRaw(seg, sel, 0, 0, S.ATTR_UNUSABLE | (cpl << S.ATTR_DPL_SHIFT));
    return true;
  }
  const d = readDescriptor(v, sel);
  if (d === null) return false;
  const [lo, hi] = d;
  if (!isPresent(hi)) return false;
  const dpl = descDpl(hi);
  if (seg === S.SEG_CS) {
    if (!isCode(hi) || dpl !== cpl) return false;
  } else if (seg === S.SEG_SS) {
    if (!isData(hi) || !isRw(hi) || dpl !== cpl || (sel & 3) !== cpl) return false;
  } else {
    if (!isData(hi) && !(isCode(hi) && isRw(hi))) return false;
  }
  cpu.loadSegmentRaw(seg, sel, descBase(lo, hi), descLimit(lo, hi), descAttr(hi) | 1);
  return true;
}

// ------------------------------------------------------------------ bounce frames

/** Writes `n` 4- or 8-byte items (item 0 at the highest address) below `sp`; returns new sp. */
function pushFrame(
  v: Vcpu,
  spLo: number,
  spHi: number,
  base: number,
  items: number[],
  size: 4 | 8,
): [number, number] | null {
  const n = items.length;
  const bytes = n * size;
  const newLo = (spLo >>> 0) - bytes;
  let lo = newLo;
  let hi = spHi;
  if (newLo < 0) {
    lo = newLo + 4294967296;
    hi = (spHi - 1) | 0;
  }
  for (let i = 0; i < n; i++) {
    const at = (n - 1 - i) * size;
    const val = items[i];
    if (size === 4) frameDv.setUint32(at, val >>> 0, true);
    else {
      frameDv.setUint32(at, (val % 4294967296) >>> 0, true);
      frameDv.setUint32(at + 4, Math.floor(val / 4294967296) >>> 0, true);
    }
  }
  if (v.domain.is64) {
    const h = hi >>> 0;
    if (h >= 0xffff8000 && h < 0xffff8800) return null;
    if (v.cpu.writeGuest(lo | 0, hi, frameBuf.subarray(0, bytes), false) !== 0) return null;
  } else {
    const lin = (base + lo) | 0;
    if (v.cpu.writeGuest(lin, 0, frameBuf.subarray(0, bytes), false) !== 0) return null;
    hi = 0;
  }
  return [lo >>> 0, hi];
}

const items: number[] = [];

/**
 * The context a bounce frame describes. By default the live registers; the failsafe paths
 * pass the context the guest asked to return to (which could not be loaded).
 */
export interface BounceContext {
  cs: number;
  ss: number;
  ripLo: number;
  ripHi: number;
  spLo: number;
  spHi: number;
  flags: number;
  /** 32-bit: the interrupted context is ring 2/3 (Xen tests bit 1 of the saved CS). */
  fromUser: boolean;
}

/** The IOPL Xen folds into a bounce frame's EFLAGS (vm_assist architectural_iopl). */
function frameIopl(v: Vcpu): number {
  return (v.domain.vmAssist & (1 << VMASST_TYPE_architectural_iopl)) !== 0 ? (v.iopl & 3) << 12 : 0;
}

/**
 * 32-bit (ring 1) bounce: to cs:eip with the Xen frame; error code when `err` ≥ 0; `extra`
 * items (the failsafe frame's GS FS ES DS) below everything else. `flatStack`: the frame goes
 * on the flat kernel stack (FLAT_RING1_DS) as Xen's load_segments does, not on kernel_ss.
 * Returns false after crashing the domain.
 */
function bounce32(
  v: Vcpu,
  err: number,
  cs: number,
  eip: number,
  maskEvents: boolean,
  what: string,
  ctx?: BounceContext,
  extra?: readonly number[],
  flatStack = false,
): boolean {
  const cpu = v.cpu;
  const s = v.s;
  const d = v.domain;
  const mask = v.upcallMask;
  const fromUser = ctx ? ctx.fromUser : cpu.cpl === 3;
  const eflags = ctx ? ctx.flags : cpu.getEflags();
  const fflags = ((eflags & ~(S.F_IF | S.F_IOPL)) | (mask ? 0 : S.F_IF) | frameIopl(v)) >>> 0;
  const oldCs = ctx ? ctx.cs & 0xffff : s[S.segWord(S.SEG_CS, S.SEG_SEL)] & 0xffff;
  const oldSs = ctx ? ctx.ss & 0xffff : s[S.segWord(S.SEG_SS, S.SEG_SEL)] & 0xffff;
  const oldEsp = ctx ? ctx.spLo >>> 0 : s[S.REG_ESP * 2] >>> 0;
  const oldEip = ctx ? ctx.ripLo >>> 0 : s[S.RIP_LO] >>> 0;
  items.length = 0;
  if (fromUser) items.push(oldSs, oldEsp);
  items.push(fflags, (oldCs | (mask << 16)) >>> 0, oldEip);
  if (err >= 0) items.push(err >>> 0);
  if (extra) items.push(...extra);
  // Validate the target before touching anything (N1).
  const targetCs = (cs & 0xfffc) === 0 ? 0 : (cs & 3) === 0 ? cs | 1 : cs;
  const csDesc = targetCs ? readDescriptor(v, targetCs) : null;
  if (!csDesc || !isCode(csDesc[1]) || !isPresent(csDesc[1]) || descDpl(csDesc[1]) !== 1) {
    d.crash(`${what}: bad code selector 0x${cs.toString(16)} for the guest handler`);
    return false;
  }
  let ssSel = oldSs;
  let espVal = oldEsp;
  let ssBase = ctx ? 0 : cpu.segBase[S.SEG_SS];
  if (ctx && !fromUser) {
    const ssDesc = readDescriptor(v, oldSs);
    if (!ssDesc || !isData(ssDesc[1]) || !isRw(ssDesc[1]) || descDpl(ssDesc[1]) !== 1) {
      d.crash(`${what}: bad stack selector 0x${oldSs.toString(16)}`);
      return false;
    }
    ssBase = descBase(ssDesc[0], ssDesc[1]);
  }
  if (flatStack) {
    ssSel = FLAT_RING1_DS;
    ssBase = 0;
    if (fromUser) espVal = v.kernelSpLo >>> 0;
  } else if (fromUser) {
    ssSel = v.kernelSs;
    espVal = v.kernelSpLo >>> 0;
    const ssDesc = readDescriptor(v, ssSel);
    if (!ssDesc || !isData(ssDesc[1]) || !isRw(ssDesc[1]) || descDpl(ssDesc[1]) !== 1) {
      d.crash(`${what}: bad kernel stack selector 0x${ssSel.toString(16)} (stack_switch)`);
      return false;
    }
    ssBase = descBase(ssDesc[0], ssDesc[1]);
  }
  const sp = pushFrame(v, espVal, 0, ssBase, items, 4);
  if (!sp) {
    d.crash(`${what}: cannot write the bounce frame on the guest kernel stack at 0x${espVal.toString(16)}`);
    return false;
  }
  s[S.CPL] = 1;
  if (fromUser || ctx || flatStack) {
    if (!loadSegment(v, S.SEG_SS, ssSel, 1)) {
      d.crash(`${what}: bad kernel stack selector 0x${ssSel.toString(16)}`);
      return false;
    }
  }
  loadSegment(v, S.SEG_CS, targetCs, 1);
  s[S.REG_ESP * 2] = sp[0] | 0;
  s[S.RIP_LO] = eip | 0;
  s[S.RIP_HI] = 0;
  cpu.setEflags(eflags & ~(F_BOUNCE_CLEAR | S.F_IOPL));
  if (maskEvents) v.upcallMask = 1;
  cpu.updateMode();
  return true;
}

/** Switches a 64-bit vCPU between guest kernel and guest user mode (page tables and GS). */
export function toggleGuestMode(v: Vcpu): void {
  const s = v.s;
  const gsLo = S.segWord(S.SEG_GS, S.SEG_BASE_LO);
  const gsHi = S.segWord(S.SEG_GS, S.SEG_BASE_HI);
  const a = s[gsLo];
  const b = s[gsHi];
  s[gsLo] = s[S.MSR_KGSBASE_LO];
  s[gsHi] = s[S.MSR_KGSBASE_HI];
  s[S.MSR_KGSBASE_LO] = a;
  s[S.MSR_KGSBASE_HI] = b;
  v.cpu.segmentChanged(S.SEG_GS);
  v.kernelMode = !v.kernelMode;
  v.loadCr3();
}

function u64(lo: number, hi: number): number {
  return (hi >>> 0) * 4294967296 + (lo >>> 0);
}

/**
 * 64-bit bounce to `target` (lo/hi); error code when `err` ≥ 0; `extra` items (the failsafe
 * frame's GS FS ES DS, highest first) between RIP and R11. `ctx`: the context to describe
 * instead of the live registers.
 */
function bounce64(
  v: Vcpu,
  err: number,
  tLo: number,
  tHi: number,
  maskEvents: boolean,
  what: string,
  ctx?: BounceContext,
  extra?: readonly number[],
): boolean {
  const cpu = v.cpu;
  const s = v.s;
  const d = v.domain;
  const mask = v.upcallMask;
  const wasKernel = v.kernelMode;
  const rflags = ctx ? ctx.flags : cpu.getEflags();
  const fflags = ((rflags & ~(S.F_IF | S.F_IOPL)) | (mask ? 0 : S.F_IF) | frameIopl(v)) >>> 0;
  const cs = ctx ? ctx.cs & 0xffff : s[S.segWord(S.SEG_CS, S.SEG_SEL)] & 0xffff;
  const ss = ctx ? ctx.ss & 0xffff : s[S.segWord(S.SEG_SS, S.SEG_SEL)] & 0xffff;
  const ripLo = ctx ? ctx.ripLo : s[S.RIP_LO];
  const ripHi = ctx ? ctx.ripHi : s[S.RIP_HI];
  const rspLo = ctx ? ctx.spLo : s[S.REG_ESP * 2];
  const rspHi = ctx ? ctx.spHi : s[S.REG_ESP * 2 + 1];
  // Items are JS numbers: 64-bit values are exact only below 2^53, so build them as pairs.
  const words: [number, number][] = [
    [ss, 0],
    [rspLo, rspHi],
    [fflags, 0],
    [wasKernel ? cs & ~3 : cs, mask],
    [ripLo, ripHi],
  ];
  if (err >= 0) words.push([err >>> 0, 0]);
  if (extra) for (const x of extra) words.push([x >>> 0, 0]);
  words.push([s[11 * 2], s[11 * 2 + 1]], [s[1 * 2], s[1 * 2 + 1]]); // R11, RCX
  if (!wasKernel) toggleGuestMode(v);
  let spLo = wasKernel ? rspLo >>> 0 : v.kernelSpLo >>> 0;
  let spHi = wasKernel ? rspHi : v.kernelSpHi;
  spLo = (spLo & ~15) >>> 0;
  const bytes = words.length * 8;
  for (let i = 0; i < words.length; i++) {
    const at = (words.length - 1 - i) * 8;
    frameDv.setUint32(at, words[i][0] >>> 0, true);
    frameDv.setUint32(at + 4, words[i][1] >>> 0, true);
  }
  let newLo = spLo - bytes;
  if (newLo < 0) {
    newLo += 4294967296;
    spHi = (spHi - 1) | 0;
  }
  const h = spHi >>> 0;
  if (
    (h >= 0xffff8000 && h < 0xffff8800) ||
    v.cpu.writeGuest(newLo | 0, spHi, frameBuf.subarray(0, bytes), false) !== 0
  ) {
    d.crash(
      `${what}: cannot write the bounce frame on the guest kernel stack at 0x${u64(spLo, spHi).toString(16)}`,
    );
    return false;
  }
  s[S.CPL] = 3;
  cpu.loadSegmentRaw(S.SEG_CS, FLAT_KERNEL_CS64, 0, -1, 0xa0fb);
  cpu.loadSegmentRaw(S.SEG_SS, FLAT_KERNEL_SS64, 0, -1, 0xc0f3);
  s[S.REG_ESP * 2] = newLo | 0;
  s[S.REG_ESP * 2 + 1] = spHi | 0;
  s[S.RIP_LO] = tLo | 0;
  s[S.RIP_HI] = tHi | 0;
  cpu.setEflags(rflags & ~(F_BOUNCE_CLEAR | S.F_AC | S.F_IOPL));
  if (maskEvents) v.upcallMask = 1;
  cpu.updateMode();
  return true;
}

/** Bounces an exception or software interrupt through the guest's trap table (N3). */
export function bounceTrap(v: Vcpu, vector: number, err: number): boolean {
  const lo = v.trapLo[vector];
  const hi = v.trapHi[vector];
  const d = v.domain;
  const what = `vector ${vector}`;
  if ((lo === 0 && hi === 0) || (d.is32 && (v.trapCs[vector] & 0xfffc) === 0)) {
    const rip = u64(v.s[S.RIP_LO], v.s[S.RIP_HI]);
    d.crash(
      `Unhandled: vec ${vector}${err >= 0 ? ` error 0x${err.toString(16)}` : ""} at rip 0x${rip.toString(16)}` +
        (vector === 14 ? ` cr2 0x${u64(v.cr2Lo, v.cr2Hi).toString(16)}` : "") +
        " (no handler in the trap table)",
    );
    return false;
  }
  const mask = (v.trapFlags[vector] & TI_MASK_EVENTS) !== 0;
  return d.is64 ? bounce64(v, err, lo, hi, mask, what) : bounce32(v, err, v.trapCs[vector], lo, mask, what);
}

/** Bounces to a callback (event, syscall...) with no error code. */
export function bounceCallback(v: Vcpu, cb: Callback, maskEvents: boolean, what: string): boolean {
  return v.domain.is64
    ? bounce64(v, -1, cb.lo, cb.hi, maskEvents, what)
    : bounce32(v, -1, cb.cs, cb.lo, maskEvents, what);
}

/** Delivers pending events if the guest can take them now (E2 in events.ts). */
export function checkUpcall(v: Vcpu): void {
  if (v.upcallPending === 0 || v.upcallMask !== 0) return;
  const cb = v.eventCallback;
  if (cb.lo === 0 && cb.hi === 0) return; // no callback: the guest polls
  bounceCallback(v, cb, true, "event callback");
}

/**
 * Delivers a pending virtual NMI (Xen's process_nmi): not while one is being handled (the
 * mask clears at the guest's next HYPERVISOR_iret); through trap-table vector 2 (where
 * nmi_op / CALLBACKTYPE_nmi put the callback, with events masked); with no handler there the
 * NMI is dropped, as Xen's null trap bounce.
 */
export function checkNmi(v: Vcpu): void {
  if (!v.nmiPending || v.nmiMasked) return;
  v.nmiPending = false;
  const none = v.domain.is32 ? (v.trapCs[2] & 0xfffc) === 0 : v.trapLo[2] === 0 && v.trapHi[2] === 0;
  if (none) return;
  if (bounceTrap(v, 2, -1)) v.nmiMasked = true;
}

/** Data segment registers in the order of the failsafe frame (DS lowest). */
const DATA_SEGS = [S.SEG_DS, S.SEG_ES, S.SEG_FS, S.SEG_GS];

/**
 * Would `sel` load into a data segment register the way Xen loads it (at ring 0: present,
 * data or readable code, DPL ≥ RPL)? A null selector always loads.
 */
function dataSelectorLoads(v: Vcpu, sel: number): boolean {
  if ((sel & 0xfffc) === 0) return true;
  const desc = readDescriptor(v, sel);
  if (!desc) return false;
  const hi = desc[1];
  if (!isPresent(hi)) return false;
  if (!isData(hi) && !(isCode(hi) && isRw(hi))) return false;
  if (!(isCode(hi) && (hi & (1 << 10)) !== 0) && descDpl(hi) < (sel & 3)) return false;
  return true;
}

/**
 * Xen's load_segments on the way back to a guest whose descriptor tables changed (or after
 * another vCPU ran): every data selector that no longer loads is replaced by a null selector
 * and the guest enters its failsafe callback with Xen's frame — 32-bit: [SS ESP] EFLAGS
 * CS|mask<<16 EIP GS FS ES DS on the ring-1 stack (FLAT_RING1_CS:failsafe_eip), 64-bit: SS RSP
 * RFLAGS CS|mask<<32 RIP GS FS ES DS R11 RCX. No failsafe callback: the domain crashes.
 */
export function reloadDataSegments(v: Vcpu): void {
  v.reloadSegments = false;
  const s = v.s;
  const sels = DATA_SEGS.map((seg) => s[S.segWord(seg, S.SEG_SEL)] & 0xffff);
  const bad = DATA_SEGS.filter((_seg, i) => !dataSelectorLoads(v, sels[i]));
  if (bad.length === 0) return;
  const d = v.domain;
  const cb = v.failsafeCallback;
  const names = bad.map((seg) => ["es", "cs", "ss", "ds", "fs", "gs"][seg]).join(", ");
  if (cb.lo === 0 && cb.hi === 0) {
    d.crash(`failsafe: ${names} cannot be reloaded and there is no failsafe callback`);
    return;
  }
  const dpl = d.is64 ? 3 : v.cpu.cpl;
  for (const seg of bad) {
    v.cpu.loadSegmentRaw(seg, 0, 0, 0, S.ATTR_UNUSABLE | (dpl << S.ATTR_DPL_SHIFT));
  }
  const extra = [sels[3], sels[2], sels[1], sels[0]]; // GS FS ES DS (DS lowest)
  const mask = v.failsafeDisablesEvents;
  if (d.is64) {
    bounce64(v, -1, cb.lo, cb.hi, mask, "failsafe callback", undefined, extra);
    return;
  }
  const cs = s[S.segWord(S.SEG_CS, S.SEG_SEL)] & 0xffff;
  const ctx: BounceContext = {
    cs,
    ss: s[S.segWord(S.SEG_SS, S.SEG_SEL)] & 0xffff,
    ripLo: s[S.RIP_LO],
    ripHi: 0,
    spLo: s[S.REG_ESP * 2],
    spHi: 0,
    flags: v.cpu.getEflags(),
    fromUser: (cs & 3) !== 1,
  };
  if (!ctx.fromUser) {
    // load_segments writes the frame at the live ESP (linear: the kernel's flat stack).
    ctx.spLo = (ctx.spLo + v.cpu.segBase[S.SEG_SS]) | 0;
  }
  bounce32(v, -1, FLAT_RING1_CS, cb.lo, mask, "failsafe callback", ctx, extra, true);
}

/**
 * A compat HYPERVISOR_iret whose CS or SS cannot be loaded (Xen: the iretq faults and
 * compat_failsafe_callback runs): the guest enters its failsafe callback (failsafe_cs:eip)
 * with the frame of the context it asked for plus its GS FS ES DS. No failsafe callback: the
 * domain crashes.
 */
export function failsafeIret32(v: Vcpu, ctx: BounceContext, why: string): void {
  const cb = v.failsafeCallback;
  if ((cb.cs & 0xfffc) === 0 && cb.lo === 0) {
    v.domain.crash(`iret: ${why} and there is no failsafe callback`);
    return;
  }
  const s = v.s;
  const extra = [
    s[S.segWord(S.SEG_GS, S.SEG_SEL)] & 0xffff,
    s[S.segWord(S.SEG_FS, S.SEG_SEL)] & 0xffff,
    s[S.segWord(S.SEG_ES, S.SEG_SEL)] & 0xffff,
    s[S.segWord(S.SEG_DS, S.SEG_SEL)] & 0xffff,
  ];
  bounce32(v, -1, cb.cs, cb.lo, v.failsafeDisablesEvents, "failsafe callback", ctx, extra);
}

/** The exception a failed CS/SS load raises: #NP/#SS for a not-present descriptor, else #GP. */
export function selectorFault(v: Vcpu, sel: number, isSs: boolean): [number, number] {
  if ((sel & 0xfffc) === 0) return [13, 0];
  const desc = readDescriptor(v, sel);
  if (!desc) return [13, sel & 0xfffc];
  const hi = desc[1];
  if (isSs ? !(isData(hi) && isRw(hi)) : !isCode(hi)) return [13, sel & 0xfffc];
  if (!isPresent(hi)) return [isSs ? 12 : 11, sel & 0xfffc];
  return [13, sel & 0xfffc];
}

/**
 * A 64-bit HYPERVISOR_iret whose CS or SS cannot be loaded: Xen's iretq faults and the fault
 * is the guest's, at the context it asked for — #GP(selector) (#NP/#SS when the descriptor is
 * not present). `ctx` is that context; the frame describes it.
 */
export function badIret64(v: Vcpu, ctx: BounceContext, vector: number, err: number): void {
  const lo = v.trapLo[vector];
  const hi = v.trapHi[vector];
  if (lo === 0 && hi === 0) {
    v.domain.crash(
      `iret: bad selectors cs 0x${ctx.cs.toString(16)} ss 0x${ctx.ss.toString(16)}; Unhandled: vec ${vector} error 0x${err.toString(16)} (no handler in the trap table)`,
    );
    return;
  }
  bounce64(v, err, lo, hi, (v.trapFlags[vector] & TI_MASK_EVENTS) !== 0, `vector ${vector}`, ctx);
}

/** Injects an exception into the guest (from emulation paths). */
export function injectException(v: Vcpu, vector: number, err = -1): boolean {
  if (err < 0 && ((HAS_ERROR >>> vector) & 1) !== 0) err = 0;
  return bounceTrap(v, vector, err);
}

// ------------------------------------------------------------------ exits

/** A software interrupt (INT n) from the guest (xen-pv-abi.md §5.4, pitfall 14). */
function softInt(v: Vcpu, vector: number, len: number): void {
  const d = v.domain;
  if (vector === 0x82 && d.is32 && v.cpu.cpl === 1) {
    ripAdvance(v, len);
    hypercall(v);
    return;
  }
  const dpl = v.trapFlags[vector] & TI_DPL_MASK;
  const ring = v.inKernel() ? 1 : 3;
  const handled = (v.trapLo[vector] | v.trapHi[vector]) !== 0;
  if (handled && dpl >= ring) {
    ripAdvance(v, len);
    bounceTrap(v, vector, -1);
  } else {
    bounceTrap(v, 13, (vector << 3) | 2);
  }
}

function hypercall(v: Vcpu): void {
  const s = v.s;
  v.hypercalls++;
  if (v.domain.is64) {
    dispatchHypercall(v, s[0] >>> 0, s[0 + 1] >>> 0, [
      [s[7 * 2] >>> 0, s[7 * 2 + 1] >>> 0], // RDI
      [s[6 * 2] >>> 0, s[6 * 2 + 1] >>> 0], // RSI
      [s[2 * 2] >>> 0, s[2 * 2 + 1] >>> 0], // RDX
      [s[10 * 2] >>> 0, s[10 * 2 + 1] >>> 0], // R10
      [s[8 * 2] >>> 0, s[8 * 2 + 1] >>> 0], // R8
    ]);
  } else {
    dispatchHypercall(v, s[0] >>> 0, 0, [
      [s[3 * 2] >>> 0, 0], // EBX
      [s[1 * 2] >>> 0, 0], // ECX
      [s[2 * 2] >>> 0, 0], // EDX
      [s[6 * 2] >>> 0, 0], // ESI
      [s[7 * 2] >>> 0, 0], // EDI
    ]);
  }
}

function syscallExit(v: Vcpu, len: number): void {
  const s = v.s;
  const d = v.domain;
  // What the SYSCALL instruction itself does: RCX = next RIP, R11 = RFLAGS.
  ripAdvance(v, len);
  const flags = v.cpu.getEflags();
  if (d.is64 && v.kernelMode) {
    s[1 * 2] = s[S.RIP_LO];
    s[1 * 2 + 1] = s[S.RIP_HI];
    s[11 * 2] = flags | 0;
    s[11 * 2 + 1] = 0;
    hypercall(v);
    return;
  }
  s[1 * 2] = s[S.RIP_LO];
  s[1 * 2 + 1] = s[S.RIP_HI];
  s[11 * 2] = flags | 0;
  s[11 * 2 + 1] = 0;
  const compatUser = !v.cpu.code64;
  const cb = compatUser ? v.syscall32Callback : v.syscallCallback;
  if (cb.lo === 0 && cb.hi === 0) {
    // No callback: #UD at the SYSCALL instruction.
    ripAdvance(v, -len);
    bounceTrap(v, 6, -1);
    return;
  }
  v.cpu.setEflags(flags & ~S.F_DF);
  bounceCallback(v, cb, compatUser ? v.syscall32DisablesEvents : v.syscallDisablesEvents, "syscall callback");
}

/** Exception exit (xen-pv-abi.md §5.4, §5.6). */
function exception(v: Vcpu, vector: number, err: number, hasErr: boolean, len: number): void {
  const d = v.domain;
  const cpu = v.cpu;
  switch (vector) {
    case 13:
      if (hasErr && err === 0 && emulatePrivOp(v)) return;
      break;
    case 6:
      if (forcedCpuid(v)) return;
      break;
    case 7:
      v.virtualTs = false;
      v.syncTs();
      break;
    case 14: {
      v.cr2Lo = cpu.exitInfo.addressLo;
      v.cr2Hi = d.is64 ? cpu.exitInfo.addressHi : 0;
      if (ptwrEmulate(v, err)) return;
      if (d.is64) err = (err & ~4) | (v.kernelMode ? 0 : 4);
      const vi = v.vcpuInfo + (d.is64 ? 16 : 8);
      const dvm = new DataView(d.xen.memory.u8.buffer);
      dvm.setUint32(vi, v.cr2Lo >>> 0, true);
      if (d.is64) dvm.setUint32(vi + 4, v.cr2Hi >>> 0, true);
      break;
    }
    default:
      break;
  }
  // Software exceptions (INT3, INTO, INT1) exit at the instruction: deliver after it.
  if (len > 0) ripAdvance(v, len);
  bounceTrap(v, vector, hasErr ? err : -1);
}

/**
 * A context from VCPUOP_initialise whose CS or SS does not load: the first exit to the guest
 * fails as Xen's would (compat: failsafe callback; 64-bit: the fault in the guest).
 */
function enterBadContext(v: Vcpu): void {
  const be = v.badEntry;
  v.badEntry = null;
  if (!be) return;
  const s = v.s;
  const ctx: BounceContext = {
    cs: be.cs,
    ss: be.ss,
    ripLo: s[S.RIP_LO],
    ripHi: s[S.RIP_HI],
    spLo: s[S.REG_ESP * 2],
    spHi: s[S.REG_ESP * 2 + 1],
    flags: v.cpu.getEflags(),
    fromUser: v.domain.is64 ? !v.kernelMode : (be.cs & 2) !== 0,
  };
  if (v.domain.is32) {
    failsafeIret32(v, ctx, `the initial cs 0x${be.cs.toString(16)} / ss 0x${be.ss.toString(16)} cannot be loaded`);
    return;
  }
  const csBad = !loadSegment(v, S.SEG_CS, be.cs, 3);
  const [vec, err] = csBad ? selectorFault(v, be.cs, false) : selectorFault(v, be.ss, true);
  badIret64(v, ctx, vec, err);
}

/** Handles one exit of the processor. */
export function handleExit(v: Vcpu, code: number): void {
  const cpu = v.cpu;
  const info = cpu.exitInfo;
  switch (code) {
    case EXIT_BUDGET:
    case EXIT_REQUESTED:
      return;
    case EXIT_EXCEPTION:
      exception(v, info.vector, info.errorCode, info.hasErrorCode, info.instructionLength);
      return;
    case EXIT_SOFTWARE_INT:
      softInt(v, info.qualification & 0xff, info.instructionLength);
      return;
    case EXIT_SYSCALL:
      syscallExit(v, info.instructionLength);
      return;
    case EXIT_TRIPLE_FAULT:
      v.domain.crash(`triple fault at rip 0x${u64(v.s[S.RIP_LO], v.s[S.RIP_HI]).toString(16)}`);
      return;
    case EXIT_INTERNAL:
      v.domain.crash(`internal emulator error: ${info.message.split("\n")[0]}`);
      v.domain.xen.log(info.message);
      return;
    case EXIT_HLT:
      v.domain.crash("HLT executed with CPL 0 (impossible for a PV guest)");
      return;
    default:
      v.domain.crash(`unexpected exit ${EXIT_NAMES[code] ?? code}`);
  }
}

/**
 * Runs vCPU v for up to `budget` instructions: delivers pending events, runs the processor,
 * handles its exits, until the budget is spent, the vCPU blocks or yields, or the domain
 * stops running (N4).
 */
export function runVcpu(v: Vcpu, budget: number): void {
  const cpu = v.cpu;
  const d = v.domain;
  const end = cpu.retired + budget;
  const sched = d.xen.scheduler;
  try {
    if (v.badEntry) enterBadContext(v);
    while (d.state === "running" && v.online && !v.blocked) {
      if (v.reloadSegments) reloadDataSegments(v);
      if (d.state !== "running") break;
      checkNmi(v);
      if (d.state !== "running") break;
      checkUpcall(v);
      if (d.state !== "running") break;
      const left = end - cpu.retired;
      if (left <= 0) break;
      const code = cpu.run(left);
      v.exits++;
      d.xen.traceExit?.(v, code);
      handleExit(v, code);
      if (sched.yieldRequested) break;
      if (code === EXIT_REQUESTED) break;
    }
  } catch (e) {
    const msg = e instanceof Error ? `${e.message}\n${e.stack}` : String(e);
    d.xen.log(msg);
    d.crash(`hypervisor error while handling the guest: ${msg.split("\n")[0]}`);
  }
}

// ------------------------------------------------------------------ emulation

const insn = new Uint8Array(16);

/** Reads up to 16 instruction bytes at CS:RIP; returns how many could be read. */
function fetchInsn(v: Vcpu): number {
  const s = v.s;
  const cpu = v.cpu;
  let lo: number;
  let hi = 0;
  if (cpu.code64) {
    lo = s[S.RIP_LO];
    hi = s[S.RIP_HI];
  } else lo = (s[S.RIP_LO] + cpu.segBase[S.SEG_CS]) | 0;
  for (let n = 16; n > 0; n--) {
    if (cpu.readGuest(lo, hi, insn.subarray(0, n), false) === 0) return n;
  }
  return 0;
}

/** `ud2; .ascii "xen"; cpuid` (0F 0B 78 65 6E 0F A2): emulate CPUID, RIP += 7. */
function forcedCpuid(v: Vcpu): boolean {
  const n = fetchInsn(v);
  if (n < 7) return false;
  if (insn[0] !== 0x0f || insn[1] !== 0x0b || insn[2] !== 0x78 || insn[3] !== 0x65 || insn[4] !== 0x6e)
    return false;
  if (insn[5] !== 0x0f || insn[6] !== 0xa2) return false;
  v.cpu.sys.cpuid(v.s[0], v.s[1 * 2]);
  ripAdvance(v, 7);
  return true;
}

/**
 * Virtual IOPL check (Xen's iopl_ok): kernel mode counts as ring 1 (ring 0 with vm_assist
 * architectural_iopl), user mode as ring 3.
 */
function ioplOk(v: Vcpu): boolean {
  const arch = (v.domain.vmAssist & (1 << VMASST_TYPE_architectural_iopl)) !== 0;
  const ring = v.inKernel() ? (arch ? 0 : 1) : 3;
  return ring <= v.iopl;
}

const bmpByte = new Uint8Array(1);

/**
 * Xen's guest_io_okay: the virtual IOPL allows it, or the ports are inside the I/O bitmap the
 * guest gave with physdev_op set_iobitmap and their bits are clear (a 0 bit allows). The bitmap
 * is read through the guest kernel's page tables; a byte that cannot be read forbids.
 */
export function guestIoOkay(v: Vcpu, port: number, bytes: number): boolean {
  if (ioplOk(v)) return true;
  if (port + bytes > v.iobmpLimit) return false;
  const toggle = v.domain.is64 && !v.kernelMode;
  if (toggle) {
    v.kernelMode = true;
    v.loadCr3();
  }
  let mask = 0;
  for (let k = 0; k < 2; k++) {
    const off = (port >>> 3) + k;
    const lo = (v.iobmpLo >>> 0) + off;
    const hi = v.domain.is64 ? (lo > 0xffffffff ? v.iobmpHi + 1 : v.iobmpHi) : 0;
    const ok = v.cpu.readGuest(lo | 0, hi | 0, bmpByte, false) === 0;
    mask |= (ok ? bmpByte[0] : 0xff) << (8 * k);
    if (!ok && k === 0) {
      mask |= 0xff00;
      break;
    }
  }
  if (toggle) {
    v.kernelMode = false;
    v.loadCr3();
  }
  return (mask & (((1 << bytes) - 1) << (port & 7))) === 0;
}

/** Injects #PF for an emulated access that faulted (CR2, vcpu_info.arch.cr2, U bit). */
function injectPageFault(v: Vcpu): void {
  const f = v.cpu.guestFault;
  const d = v.domain;
  v.cr2Lo = f.addressLo;
  v.cr2Hi = d.is64 ? f.addressHi : 0;
  const vi = v.vcpuInfo + (d.is64 ? 16 : 8);
  const dvm = new DataView(d.xen.memory.u8.buffer);
  dvm.setUint32(vi, v.cr2Lo >>> 0, true);
  if (d.is64) dvm.setUint32(vi + 4, v.cr2Hi >>> 0, true);
  let err = f.errorCode;
  if (d.is64) err = (err & ~4) | (v.kernelMode ? 0 : 4);
  bounceTrap(v, 14, err);
}

/** The segment register a prefix byte overrides to, or -1. */
function segPrefix(b: number): number {
  switch (b) {
    case 0x26:
      return S.SEG_ES;
    case 0x2e:
      return S.SEG_CS;
    case 0x36:
      return S.SEG_SS;
    case 0x3e:
      return S.SEG_DS;
    case 0x64:
      return S.SEG_FS;
    case 0x65:
      return S.SEG_GS;
    default:
      return -1;
  }
}

/** Most repetitions of a string I/O instruction done per exit (Xen's preemption point). */
const MAX_STRING_REPS = 65536;
const ones = new Uint8Array([0xff, 0xff, 0xff, 0xff]);
const ioBuf = new Uint8Array(4);

/**
 * INS/OUTS (with or without REP) under the virtual IOPL or I/O bitmap, as Xen's rep_ins /
 * rep_outs: the domain owns no ports, so INS stores all ones and OUTS reads its source and
 * drops it. ES for INS must be a writable data segment, the OUTS source readable (else #GP(0));
 * a fault on the memory side is the guest's #PF and nothing is committed; a zero count only
 * moves RIP. Returns false to bounce the original #GP (ports not allowed).
 */
function stringIo(v: Vcpu, op: number, len: number, opsize16: boolean, adsize: boolean, segOverride: number): boolean {
  const s = v.s;
  const cpu = v.cpu;
  const isIns = op === 0x6c || op === 0x6d;
  const size = (op & 1) === 0 ? 1 : opsize16 ? 2 : 4;
  const port = s[2 * 2] & 0xffff;
  if (!guestIoOkay(v, port, size)) return false;
  const code64 = cpu.code64;
  const aw = code64 ? (adsize ? 4 : 8) : cpu.csD !== adsize ? 4 : 2;
  const seg = isIns ? S.SEG_ES : segOverride >= 0 ? segOverride : S.SEG_DS;
  const attr = s[S.segWord(seg, S.SEG_ATTR)];
  if (!code64 || seg === S.SEG_FS || seg === S.SEG_GS) {
    if (!code64) {
      if ((attr & S.ATTR_UNUSABLE) !== 0 || (attr & S.ATTR_P) === 0) return false;
      const isCodeSeg = (attr & S.ATTR_CODE) !== 0;
      if (isIns ? isCodeSeg || (attr & S.ATTR_RW) === 0 : isCodeSeg && (attr & S.ATTR_RW) === 0) {
        injectException(v, 13, 0);
        return true;
      }
    }
  }
  const base = code64 && seg !== S.SEG_FS && seg !== S.SEG_GS ? 0 : cpu.segBase[seg];
  const baseHi = code64 && (seg === S.SEG_FS || seg === S.SEG_GS) ? s[S.segWord(seg, S.SEG_BASE_HI)] : 0;
  const limit = s[S.segWord(seg, S.SEG_LIMIT)] >>> 0;
  const idxReg = isIns ? S.REG_EDI : S.REG_ESI;
  const rep = len < 0;
  const n = rep ? -len : len;
  const readReg = (r: number): [number, number] => {
    const lo = s[r * 2] >>> 0;
    if (aw === 8) return [lo, s[r * 2 + 1] >>> 0];
    return [aw === 4 ? lo : lo & 0xffff, 0];
  };
  let [cLo, cHi] = rep ? readReg(S.REG_ECX) : [1, 0];
  let [oLo, oHi] = readReg(idxReg);
  const down = (cpu.getEflags() & S.F_DF) !== 0;
  let reps = 0;
  while ((cLo !== 0 || cHi !== 0) && reps < MAX_STRING_REPS) {
    let lin: number;
    let linHi = 0;
    if (code64) {
      const sum = oLo + (base >>> 0);
      lin = sum | 0;
      linHi = (oHi + baseHi + (sum > 0xffffffff ? 1 : 0)) | 0;
      if (aw === 4) linHi = (baseHi + (sum > 0xffffffff ? 1 : 0)) | 0;
    } else {
      if (oLo + size - 1 > limit) {
        injectException(v, seg === S.SEG_SS ? 12 : 13, 0);
        return true;
      }
      lin = (base + oLo) | 0;
    }
    const user = !v.inKernel() && v.domain.is32;
    if (isIns) {
      if (cpu.writeGuest(lin, linHi, ones.subarray(0, size), user) !== 0) {
        injectPageFault(v);
        return true;
      }
    } else if (cpu.readGuest(lin, linHi, ioBuf.subarray(0, size), user) !== 0) {
      injectPageFault(v);
      return true;
    }
    reps++;
    // Advance the index, count down RCX (address-size wide).
    const step = down ? -size : size;
    let nlo = oLo + step;
    let nhi = oHi;
    if (aw === 8) {
      if (nlo > 0xffffffff) {
        nlo -= 4294967296;
        nhi = (nhi + 1) >>> 0;
      } else if (nlo < 0) {
        nlo += 4294967296;
        nhi = (nhi - 1) >>> 0;
      }
    } else nlo = aw === 4 ? nlo >>> 0 : nlo & 0xffff;
    oLo = nlo >>> 0;
    oHi = nhi;
    if (rep) {
      if (cLo === 0) {
        cLo = 0xffffffff;
        cHi = (cHi - 1) >>> 0;
      } else cLo--;
    } else cLo = 0;
  }
  const writeReg = (r: number, lo: number, hi: number): void => {
    if (aw === 8) {
      s[r * 2] = lo | 0;
      s[r * 2 + 1] = hi | 0;
    } else if (aw === 4) {
      s[r * 2] = lo | 0;
      if (code64) s[r * 2 + 1] = 0;
    } else s[r * 2] = (s[r * 2] & ~0xffff) | (lo & 0xffff);
  };
  writeReg(idxReg, oLo, oHi);
  if (rep) writeReg(S.REG_ECX, cLo, cHi);
  if (cLo === 0 && cHi === 0) ripAdvance(v, n);
  return true;
}

/** The CR3 value the guest sees (xen_pfn_to_cr3; compat: extended format). */
function guestCr3(v: Vcpu): [number, number] {
  const mfn = v.domain.is64 && !v.kernelMode ? v.guestTableUser : v.guestTable;
  if (v.domain.is64) return [(mfn << 12) >>> 0, mfn >>> 20];
  return [((mfn << 12) | (mfn >>> 20)) >>> 0, 0];
}

const MSR_EFER = 0xc0000080;
const MSR_FS_BASE = 0xc0000100;
const MSR_GS_BASE = 0xc0000101;
const MSR_SHADOW_GS_BASE = 0xc0000102;
const MSR_PAT = 0x277;
const MSR_TSC = 0x10;
const MSR_MISC_ENABLE = 0x1a0;
const MSR_APIC_BASE = 0x1b;

function rdmsr(v: Vcpu, msr: number): [number, number] | null {
  const s = v.s;
  const is64 = v.domain.is64;
  switch (msr) {
    case MSR_EFER:
      return [(S.EFER_SCE | S.EFER_LME | S.EFER_LMA | S.EFER_NXE) >>> 0, 0];
    case MSR_FS_BASE:
      return is64
        ? [s[S.segWord(S.SEG_FS, S.SEG_BASE_LO)] >>> 0, s[S.segWord(S.SEG_FS, S.SEG_BASE_HI)] >>> 0]
        : null;
    case MSR_GS_BASE:
      return is64
        ? [s[S.segWord(S.SEG_GS, S.SEG_BASE_LO)] >>> 0, s[S.segWord(S.SEG_GS, S.SEG_BASE_HI)] >>> 0]
        : null;
    case MSR_SHADOW_GS_BASE:
      return is64 ? [s[S.MSR_KGSBASE_LO] >>> 0, s[S.MSR_KGSBASE_HI] >>> 0] : null;
    case MSR_PAT:
      return [0x00070406, 0x00000501];
    case MSR_TSC: {
      const t = v.domain.xen.tscFor(v);
      return [(t % 4294967296) >>> 0, Math.floor(t / 4294967296) >>> 0];
    }
    case MSR_MISC_ENABLE:
      return [(1 << 0) | (1 << 11) | (1 << 12), 0]; // fast strings, BTS and PEBS unavailable
    case MSR_APIC_BASE:
      return [0xfee00900 >>> 0, 0];
    default:
      return null;
  }
}

function wrmsr(v: Vcpu, msr: number, lo: number, hi: number): boolean {
  const s = v.s;
  const is64 = v.domain.is64;
  const canonical = ((hi + 0x8000) & 0xffff0000) === 0;
  switch (msr) {
    case MSR_FS_BASE:
      if (!is64 || !canonical) return false;
      s[S.segWord(S.SEG_FS, S.SEG_BASE_LO)] = lo | 0;
      s[S.segWord(S.SEG_FS, S.SEG_BASE_HI)] = hi | 0;
      v.cpu.segmentChanged(S.SEG_FS);
      return true;
    case MSR_GS_BASE:
      if (!is64 || !canonical) return false;
      s[S.segWord(S.SEG_GS, S.SEG_BASE_LO)] = lo | 0;
      s[S.segWord(S.SEG_GS, S.SEG_BASE_HI)] = hi | 0;
      v.cpu.segmentChanged(S.SEG_GS);
      return true;
    case MSR_SHADOW_GS_BASE:
      if (!is64 || !canonical) return false;
      s[S.MSR_KGSBASE_LO] = lo | 0;
      s[S.MSR_KGSBASE_HI] = hi | 0;
      return true;
    case MSR_EFER: {
      const cur = rdmsr(v, MSR_EFER)!;
      return lo >>> 0 === cur[0] && hi === 0;
    }
    case MSR_PAT:
    case MSR_MISC_ENABLE:
      return true; // writes ignored, as Xen does for PV
    default:
      return false;
  }
}

/**
 * Privileged-instruction emulation after #GP(0) (xen-pv-abi.md §5.6). Returns true when the
 * instruction was emulated (RIP advanced), false to bounce the #GP to the guest.
 */
export function emulatePrivOp(v: Vcpu): boolean {
  const n = fetchInsn(v);
  if (n === 0) return false;
  const cpu = v.cpu;
  const s = v.s;
  const code64 = cpu.code64;
  let i = 0;
  let opsize16 = false;
  let adsize = false;
  let rep = false;
  let segOverride = -1;
  let rex = 0;
  for (; i < n; i++) {
    const b = insn[i];
    if (b === 0x66) opsize16 = true;
    else if (b === 0x67) adsize = true;
    else if (b === 0xf3 || b === 0xf2) rep = true;
    else if (b === 0xf0) continue;
    else if (segPrefix(b) >= 0) segOverride = segPrefix(b);
    else break;
  }
  if (code64 && i < n && (insn[i] & 0xf0) === 0x40) rex = insn[i++];
  if (i >= n) return false;
  const op = insn[i];
  const kernel = v.inKernel();
  const ioSize = opsize16 ? 2 : 4;
  // CLI / STI: no-ops when the virtual IOPL allows them (as Xen's priv_op_validate).
  if (op === 0xfa || op === 0xfb) {
    if (!ioplOk(v)) return false;
    ripAdvance(v, i + 1);
    return true;
  }
  // Port I/O under the virtual IOPL or the I/O bitmap: the domain owns no ports, so IN reads
  // all ones and OUT is dropped (Xen's guest_io_okay, then admin_io_okay fails for a domU).
  if (op === 0xe4 || op === 0xe5 || op === 0xec || op === 0xed || op === 0xe6 || op === 0xe7 || op === 0xee || op === 0xef) {
    const isIn = op === 0xe4 || op === 0xe5 || op === 0xec || op === 0xed;
    const size = op & 1 ? ioSize : 1;
    const imm = op === 0xe4 || op === 0xe5 || op === 0xe6 || op === 0xe7;
    if (imm && i + 1 >= n) return false;
    const port = imm ? insn[i + 1] : s[2 * 2] & 0xffff;
    if (!guestIoOkay(v, port, size)) return false;
    const len = imm ? i + 2 : i + 1;
    if (isIn) {
      if (size === 1) s[0] = s[0] | 0xff;
      else if (size === 2) s[0] = s[0] | 0xffff;
      else {
        s[0] = -1;
        s[1] = 0;
      }
    }
    ripAdvance(v, len);
    return true;
  }
  if (op === 0x6c || op === 0x6d || op === 0x6e || op === 0x6f) {
    return stringIo(v, op, rep ? -(i + 1) : i + 1, opsize16, adsize, segOverride);
  }
  if (!kernel) return false;
  if (op !== 0x0f || i + 1 >= n) return false;
  const op2 = insn[i + 1];
  const modrm = insn[i + 2] ?? 0;
  const reg = ((modrm >> 3) & 7) | (rex & 4 ? 8 : 0);
  const rm = (modrm & 7) | (rex & 1 ? 8 : 0);
  switch (op2) {
    case 0x06: // CLTS
      v.virtualTs = false;
      v.syncTs();
      ripAdvance(v, i + 2);
      return true;
    case 0x08: // INVD
    case 0x09: // WBINVD
      ripAdvance(v, i + 2);
      return true;
    case 0x20: {
      // MOV r, CRn
      if ((modrm & 0xc0) !== 0xc0 || i + 2 >= n) return false;
      let val: [number, number];
      switch (reg) {
        case 0:
          val = [((s[S.CR0] & ~S.CR0_TS) | (v.virtualTs ? S.CR0_TS : 0)) >>> 0, 0];
          break;
        case 2:
          val = [v.cr2Lo >>> 0, v.cr2Hi >>> 0];
          break;
        case 3:
          val = guestCr3(v);
          break;
        case 4:
          val = [v.virtualCr4 >>> 0, 0];
          break;
        default:
          return false;
      }
      setReg(v, rm, val[0], code64 ? val[1] : 0);
      ripAdvance(v, i + 3);
      return true;
    }
    case 0x22: {
      // MOV CRn, r
      if ((modrm & 0xc0) !== 0xc0 || i + 2 >= n) return false;
      const lo = s[rm * 2] >>> 0;
      const hi = code64 ? s[rm * 2 + 1] >>> 0 : 0;
      switch (reg) {
        case 0: {
          const cur = ((s[S.CR0] & ~S.CR0_TS) | (v.virtualTs ? S.CR0_TS : 0)) >>> 0;
          if (((lo ^ cur) & ~S.CR0_TS) !== 0) return false; // unmodifiable CR0 flags
          v.virtualTs = (lo & S.CR0_TS) !== 0;
          v.syncTs();
          break;
        }
        case 2:
          v.cr2Lo = lo;
          v.cr2Hi = hi;
          break;
        case 3: {
          const mfn = v.domain.is64 ? (lo >>> 12) | (hi << 20) : (lo >>> 12) | ((lo & 0xfff) << 20);
          if (newBaseptr(v, mfn) !== 0) return false;
          break;
        }
        case 4:
          v.virtualCr4 = lo;
          break;
        default:
          return false;
      }
      ripAdvance(v, i + 3);
      return true;
    }
    case 0x21: // MOV r, DRn
    case 0x23: {
      // MOV DRn, r
      if ((modrm & 0xc0) !== 0xc0 || i + 2 >= n) return false;
      const dr = reg & 7;
      if (op2 === 0x21) setReg(v, rm, v.debugRegs[dr] >>> 0, 0);
      else v.debugRegs[dr] = s[rm * 2] >>> 0;
      ripAdvance(v, i + 3);
      return true;
    }
    case 0x30: {
      // WRMSR
      if (!wrmsr(v, s[1 * 2] >>> 0, s[0] >>> 0, s[2 * 2] >>> 0)) return false;
      ripAdvance(v, i + 2);
      return true;
    }
    case 0x32: {
      // RDMSR
      const r = rdmsr(v, s[1 * 2] >>> 0);
      if (!r) return false;
      setReg(v, 0, r[0], 0);
      setReg(v, 2, r[1], 0);
      ripAdvance(v, i + 2);
      return true;
    }
    default:
      return false;
  }
}
