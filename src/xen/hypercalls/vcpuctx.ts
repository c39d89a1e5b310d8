// VCPUOP_initialise (a vcpu_guest_context, native or compat layout) and
// VCPUOP_register_vcpu_info, as Xen's arch_set_info_guest and map_vcpu_info do them for a PV
// guest (xen-pv-abi.md §3.5, §7.6, §7.7).

import { PGT_L3, PGT_L4, PGT_SEG_DESC, PGT_WRITABLE, TYPE_CONFLICT } from "../../machine/frames.ts";
import * as S from "../../x86/state.ts";
import { loadSegment } from "../entry.ts";
import { getPageType, putPageType } from "../mm.ts";
import { EINVAL, FIRST_RESERVED_GDT_ENTRY } from "../public.ts";
import { RUNSTATE_offline, RUNSTATE_runnable, type Vcpu } from "../vcpu.ts";
import type { Call } from "./call.ts";
import { setLdt } from "./memory.ts";

export const VGCF_i387_valid = 1 << 0;
export const VGCF_in_kernel = 1 << 2;
export const VGCF_failsafe_disables_events = 1 << 3;
export const VGCF_syscall_disables_events = 1 << 4;
export const VGCF_online = 1 << 5;

/** sizeof(vcpu_guest_context): 64-bit 5168, compat 2800. */
export function guestContextSize(is64: boolean): number {
  return is64 ? 5168 : 2800;
}

/** The fields of a vcpu_guest_context both layouts share, as numbers (64-bit as [lo, hi]). */
interface Context {
  flags: number;
  /** General registers in processor order (RAX RCX RDX RBX RSP RBP RSI RDI R8..R15). */
  gpr: [number, number][];
  rip: [number, number];
  rflags: number;
  cs: number;
  ss: number;
  ds: number;
  es: number;
  fs: number;
  gs: number;
  trap: { vector: number; flags: number; cs: number; lo: number; hi: number }[];
  ldtBase: [number, number];
  ldtEnts: number;
  gdtFrames: number[];
  gdtEnts: number;
  kernelSs: number;
  kernelSp: [number, number];
  ctrlreg: [number, number][];
  debugreg: number[];
  eventCs: number;
  event: [number, number];
  failsafeCs: number;
  failsafe: [number, number];
  syscall: [number, number];
  fsBase: [number, number];
  gsBaseKernel: [number, number];
  gsBaseUser: [number, number];
}

function parse(b: Uint8Array, is64: boolean): Context {
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  const u32 = (o: number): number => dv.getUint32(o, true);
  const u16 = (o: number): number => dv.getUint16(o, true);
  const q = (o: number): [number, number] => [u32(o), u32(o + 4)];
  if (is64) {
    const r = 520;
    // cpu_user_regs: r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi
    const at = (i: number): [number, number] => q(r + i * 8);
    const gpr: [number, number][] = [
      at(10), at(11), at(12), at(5), q(r + 152), at(4), at(13), at(14),
      at(9), at(8), at(7), at(6), at(3), at(2), at(1), at(0),
    ];
    const trap = [];
    for (let i = 0; i < 256; i++) {
      const o = 720 + i * 16;
      trap.push({ vector: b[o], flags: b[o + 1], cs: u16(o + 2), lo: u32(o + 8), hi: u32(o + 12) });
    }
    const gdtFrames = [];
    for (let i = 0; i < 16; i++) gdtFrames.push(q(4832 + i * 8)[1] !== 0 ? -1 : u32(4832 + i * 8));
    const ctrlreg: [number, number][] = [];
    for (let i = 0; i < 8; i++) ctrlreg.push(q(4984 + i * 8));
    const debugreg = [];
    for (let i = 0; i < 8; i++) debugreg.push(u32(5048 + i * 8));
    return {
      flags: u32(512),
      gpr,
      rip: q(r + 128),
      rflags: u32(r + 144),
      cs: u16(r + 136),
      ss: u16(r + 160),
      es: u16(r + 168),
      ds: u16(r + 176),
      fs: u16(r + 184),
      gs: u16(r + 192),
      trap,
      ldtBase: q(4816),
      ldtEnts: q(4824)[1] !== 0 ? 0x7fffffff : u32(4824),
      gdtFrames,
      gdtEnts: q(4960)[1] !== 0 ? 0x7fffffff : u32(4960),
      kernelSs: u32(4968) & 0xffff,
      kernelSp: q(4976),
      ctrlreg,
      debugreg,
      eventCs: 0,
      event: q(5112),
      failsafeCs: 0,
      failsafe: q(5120),
      syscall: q(5128),
      fsBase: q(5144),
      gsBaseKernel: q(5152),
      gsBaseUser: q(5160),
    };
  }
  const r = 516;
  const w = (o: number): [number, number] => [u32(o), 0];
  // cpu_user_regs (compat): ebx ecx edx esi edi ebp eax ... eip cs eflags esp ss es ds fs gs
  const gpr: [number, number][] = [w(r + 24), w(r + 4), w(r + 8), w(r + 0), w(r + 44), w(r + 20), w(r + 12), w(r + 16)];
  for (let i = 0; i < 8; i++) gpr.push([0, 0]);
  const trap = [];
  for (let i = 0; i < 256; i++) {
    const o = 584 + i * 8;
    trap.push({ vector: b[o], flags: b[o + 1], cs: u16(o + 2), lo: u32(o + 4), hi: 0 });
  }
  const gdtFrames = [];
  for (let i = 0; i < 16; i++) gdtFrames.push(u32(2640 + i * 4));
  const ctrlreg: [number, number][] = [];
  for (let i = 0; i < 8; i++) ctrlreg.push(w(2716 + i * 4));
  const debugreg = [];
  for (let i = 0; i < 8; i++) debugreg.push(u32(2748 + i * 4));
  return {
    flags: u32(512),
    gpr,
    rip: w(r + 32),
    rflags: u32(r + 40),
    cs: u16(r + 36),
    ss: u16(r + 48),
    es: u16(r + 52),
    ds: u16(r + 56),
    fs: u16(r + 60),
    gs: u16(r + 64),
    trap,
    ldtBase: w(2632),
    ldtEnts: u32(2636),
    gdtFrames,
    gdtEnts: u32(2704),
    kernelSs: u32(2708) & 0xffff,
    kernelSp: w(2712),
    ctrlreg,
    debugreg,
    eventCs: u32(2780) & 0xffff,
    event: w(2784),
    failsafeCs: u32(2788) & 0xffff,
    failsafe: w(2792),
    syscall: [0, 0],
    fsBase: [0, 0],
    gsBaseKernel: [0, 0],
    gsBaseUser: [0, 0],
  };
}

const canonical = ([, hi]: [number, number]): boolean => ((hi + 0x8000) & 0xffff0000) === 0;

/**
 * VCPUOP_initialise: Xen's arch_set_info_guest for a vCPU that has no context yet. Checks
 * (-EINVAL): 64-bit addresses canonical, LDT base page aligned and ≤ 8192 entries, a 64-bit
 * context outside kernel mode needs a user table (ctrlreg[1]), GDT ≤ 7168 entries on frames
 * that validate as descriptor pages, ctrlreg[3] (and ctrlreg[1]) a top-level table of the
 * domain. Then the registers, trap table, callbacks, kernel stack, virtual IOPL (from EFLAGS),
 * TS (ctrlreg[0]), debug registers and segment bases are the vCPU's, and VGCF_online brings it
 * up. The FPU starts in its default state (an i387 image is not loaded).
 */
export function initialiseVcpu(c: Call, v: Vcpu, b: Uint8Array): number {
  const d = c.d;
  const is64 = d.is64;
  const x = parse(b, is64);
  if (is64) {
    const addrs = [x.rip, x.gpr[4], x.kernelSp, x.fsBase, x.gsBaseKernel, x.gsBaseUser, x.event, x.syscall, x.failsafe];
    if (x.ldtEnts !== 0) addrs.push(x.ldtBase);
    if (!addrs.every(canonical)) return -EINVAL;
    for (const t of x.trap) if (!canonical([t.lo, t.hi])) return -EINVAL;
  }
  // fixup_guest_stack_selector / fixup_guest_code_selector (32-bit: RPL 0 becomes 1).
  const fix = (sel: number): number => (!is64 && (sel & 3) === 0 ? (sel | 1) & 0xffff : sel);
  x.ss = fix(x.ss);
  x.kernelSs = fix(x.kernelSs);
  x.cs = fix(x.cs);
  x.eventCs = fix(x.eventCs);
  x.failsafeCs = fix(x.failsafeCs);
  for (const t of x.trap) t.cs = fix(t.cs);
  if ((x.ldtBase[0] & 0xfff) !== 0 || x.ldtEnts > 8192) return -EINVAL;
  if (is64 && (x.flags & VGCF_in_kernel) === 0 && x.ctrlreg[1][0] === 0 && x.ctrlreg[1][1] === 0) return -EINVAL;
  // pv_set_gdt
  if (x.gdtEnts > FIRST_RESERVED_GDT_ENTRY) return -EINVAL;
  const taken: number[] = [];
  const undo = (): void => {
    for (const m of taken) putPageType(d, m);
  };
  for (let i = 0; i < Math.ceil(x.gdtEnts / 512); i++) {
    const mfn = x.gdtFrames[i];
    if (mfn < 0 || !d.xen.table.isValid(mfn) || getPageType(d, mfn, PGT_SEG_DESC) !== 0) {
      undo();
      return -EINVAL;
    }
    taken.push(mfn);
  }
  const gdt = [...taken];
  // CR3: 64-bit xen_cr3_to_pfn, compat compat_cr3_to_pfn (the extended format).
  const [c3lo, c3hi] = x.ctrlreg[3];
  const top = is64 ? (c3hi & 0xfff00000) !== 0 ? -1 : (c3lo >>> 12) | (c3hi << 20) : ((c3lo >>> 12) | (c3lo << 20)) >>> 0;
  if (top < 0 || !d.xen.table.isValid(top) || getPageType(d, top, is64 ? PGT_L4 : PGT_L3) !== 0) {
    undo();
    return -EINVAL;
  }
  taken.push(top);
  let user = 0;
  if (is64 && (x.ctrlreg[1][0] !== 0 || x.ctrlreg[1][1] !== 0)) {
    const [u1, u2] = x.ctrlreg[1];
    user = (u2 & 0xfff00000) !== 0 ? -1 : (u1 >>> 12) | (u2 << 20);
    if (user <= 0 || !d.xen.table.isValid(user) || getPageType(d, user, PGT_L4) !== 0) {
      undo();
      return -EINVAL;
    }
  }
  // ---- commit
  v.resetProcessor();
  for (const m of v.gdtFrames) putPageType(d, m);
  v.gdtFrames = gdt;
  v.gdtEntries = x.gdtEnts;
  d.xen.mapGdt(v);
  v.guestTable = top;
  v.guestTableUser = user;
  v.kernelMode = !is64 || (x.flags & VGCF_in_kernel) !== 0;
  v.loadCr3();
  v.cpu.updateMode(); // paging on, so descriptors can be read through the GDT window
  for (let i = 0; i < 256; i++) {
    const t = x.trap[i];
    v.trapCs[i] = t.cs;
    v.trapFlags[i] = t.flags;
    v.trapLo[i] = t.lo | 0;
    v.trapHi[i] = t.hi | 0;
  }
  v.eventCallback = { cs: x.eventCs, lo: x.event[0] | 0, hi: x.event[1] | 0 };
  v.failsafeCallback = { cs: x.failsafeCs, lo: x.failsafe[0] | 0, hi: x.failsafe[1] | 0 };
  if (is64) v.syscallCallback = { cs: 0, lo: x.syscall[0] | 0, hi: x.syscall[1] | 0 };
  v.failsafeDisablesEvents = (x.flags & VGCF_failsafe_disables_events) !== 0;
  v.syscallDisablesEvents = (x.flags & VGCF_syscall_disables_events) !== 0;
  v.kernelSs = x.kernelSs;
  v.kernelSpLo = x.kernelSp[0] | 0;
  v.kernelSpHi = is64 ? x.kernelSp[1] | 0 : 0;
  v.iopl = (x.rflags >>> 12) & 3;
  v.virtualTs = (x.ctrlreg[0][0] & S.CR0_TS) !== 0;
  v.syncTs();
  if (x.ctrlreg[4][0] !== 0) v.virtualCr4 = x.ctrlreg[4][0];
  v.debugRegs = [...x.debugreg];
  const s = v.s;
  const cpu = v.cpu;
  for (let r = 0; r < (is64 ? 16 : 8); r++) cpu.setReg64(r, x.gpr[r][0] | 0, is64 ? x.gpr[r][1] | 0 : 0);
  cpu.setRip(x.rip[0] | 0, is64 ? x.rip[1] | 0 : 0);
  cpu.setEflags(((x.rflags & ~(S.F_IOPL | S.F_VM)) | S.F_IF | 2) >>> 0);
  // Segments: CS and SS as the first iret to the guest loads them; data segments as
  // load_segments does (one that does not load goes to the failsafe callback, entry.ts).
  const cpl = is64 ? 3 : x.cs & 3;
  s[S.CPL] = cpl;
  v.badEntry = null;
  if (!loadSegment(v, S.SEG_CS, x.cs, cpl) || !loadSegment(v, S.SEG_SS, x.ss, cpl)) v.badEntry = { cs: x.cs, ss: x.ss };
  const data: [number, number][] = [
    [S.SEG_DS, x.ds],
    [S.SEG_ES, x.es],
    [S.SEG_FS, x.fs],
    [S.SEG_GS, x.gs],
  ];
  for (const [seg, sel] of data) {
    if (!loadSegment(v, seg, sel, cpl)) {
      cpu.loadSegmentRaw(seg, sel, 0, 0, S.ATTR_UNUSABLE | (cpl << S.ATTR_DPL_SHIFT));
      v.reloadSegments = true;
    }
  }
  if (is64) {
    // A non-null selector kills fs_base / gs_base_user (Xen).
    s[S.segWord(S.SEG_FS, S.SEG_BASE_LO)] = (x.fs & ~3) === 0 ? x.fsBase[0] | 0 : 0;
    s[S.segWord(S.SEG_FS, S.SEG_BASE_HI)] = (x.fs & ~3) === 0 ? x.fsBase[1] | 0 : 0;
    const [kLo, kHi] = x.gsBaseKernel;
    const [uLo, uHi] = (x.gs & ~3) === 0 ? x.gsBaseUser : [0, 0];
    const [gLo, gHi, shLo, shHi] = v.kernelMode ? [kLo, kHi, uLo, uHi] : [uLo, uHi, kLo, kHi];
    s[S.segWord(S.SEG_GS, S.SEG_BASE_LO)] = gLo | 0;
    s[S.segWord(S.SEG_GS, S.SEG_BASE_HI)] = gHi | 0;
    s[S.MSR_KGSBASE_LO] = shLo | 0;
    s[S.MSR_KGSBASE_HI] = shHi | 0;
    cpu.segmentChanged(S.SEG_FS);
    cpu.segmentChanged(S.SEG_GS);
  }
  cpu.updateMode();
  if (x.ldtEnts !== 0) setLdt(v, x.ldtBase[0], x.ldtBase[1], x.ldtEnts);
  v.updateTime();
  v.initialised = true;
  v.online = (x.flags & VGCF_online) !== 0;
  v.runstate = v.online ? RUNSTATE_runnable : RUNSTATE_offline;
  return 0;
}

/**
 * VCPUOP_register_vcpu_info {u64 mfn, u32 offset, u32 rsvd}: Xen 4.17's map_vcpu_info. The
 * vcpu_info moves into the guest frame (which keeps a writable type reference for good: it
 * can never become a page table); its current contents are copied there, then every
 * selector bit and upcall_pending are set (one spurious upcall, nothing lost). -EINVAL for an
 * offset past the page end, a second registration, another vCPU that is up, or a frame the
 * domain does not own or that cannot be writable.
 */
export function registerVcpuInfo(c: Call, v: Vcpu): number {
  const d = c.d;
  const b = c.mem.bytes(c.lo(2), c.hi(2), 16);
  const dv = new DataView(b.buffer);
  const mfnLo = dv.getUint32(0, true);
  const mfnHi = dv.getUint32(4, true);
  const offset = dv.getUint32(8, true);
  if (offset > 4096 - 64) return -EINVAL;
  if (v.vcpuInfoRegistered) return -EINVAL;
  if (v !== c.v && v.online) return -EINVAL;
  const t = d.xen.table;
  const mfn = mfnHi !== 0 ? -1 : mfnLo;
  if (mfn < 0 || !t.isValid(mfn) || t.owner[mfn] !== d.id) return -EINVAL;
  if (t.getType(mfn, d.id, PGT_WRITABLE) === TYPE_CONFLICT) return -EINVAL;
  const u8 = d.xen.memory.u8;
  const from = v.vcpuInfo;
  const to = mfn * 4096 + offset;
  u8.copyWithin(to, from, from + 64);
  v.vcpuInfoMfn = mfn;
  v.vcpuInfoOffset = offset;
  v.vcpuInfoRegistered = true;
  u8.fill(0xff, to + (d.is64 ? 8 : 4), to + (d.is64 ? 16 : 8)); // evtchn_pending_sel = ~0
  u8[to] = 1; // evtchn_upcall_pending
  d.xen.scheduler.kick(v);
  v.updateTime();
  for (const x of d.vcpus) x.cpu.invalidatePhysRange(mfn * 4096, 4096);
  return 0;
}
