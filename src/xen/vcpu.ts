// A virtual CPU of a PV domain: one processor (src/x86) whose architectural state lives in a
// hypervisor-owned frame of machine memory, plus the PV state Xen keeps per vCPU (trap table,
// callbacks, kernel stack, virtual CR0.TS/CR2, virtual IOPL, kernel/user mode, page-table
// bases, GDT/LDT, timers, run state).
//
// Invariants:
// - V1. The processor runs with PV exit controls: every exception exits (exceptionBitmap all
//   ones), INT n exits, SYSCALL exits; real EFLAGS.IOPL is 0 and real IF is 1 while the guest
//   runs, so CLI/STI/IN/OUT from the guest kernel #GP into the hypervisor (entry.ts).
// - V2. Both guest types run under long-mode paging: a 64-bit vCPU's CR3 is its current guest
//   top table (kernel or user, by `kernelMode`), a 32-bit vCPU's CR3 is its own Xen L4
//   (`compatL4`) whose slot 0 points at the guest L3 in `guestTable`.
// - V3. `guestTable`/`guestTableUser` each hold one type reference on their frame (taken by
//   mm.ts when installed, dropped when replaced), so a table in use can never become writable.
// - V4. The vcpu_info the vCPU uses is at (vcpuInfoMfn, vcpuInfoOffset) in machine memory.

import { Cpu } from "../x86/cpu.ts";
import type { IoPorts } from "../x86/bus.ts";
import * as S from "../x86/state.ts";
import { FRAME_SIZE } from "../machine/frames.ts";
import type { Domain } from "./domain.ts";
import { PERDOMAIN_HI, PerDomainArea } from "./xenspace.ts";
import { FIRST_RESERVED_GDT_BYTE } from "./public.ts";
import { writeTimeInfo } from "./time.ts";

/** Port I/O never reaches devices from a PV guest directly: it #GPs and is emulated. */
const NO_IO: IoPorts = {
  in: (_port, size) => (size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff),
  out: () => {},
};

export const RUNSTATE_running = 0;
export const RUNSTATE_runnable = 1;
export const RUNSTATE_blocked = 2;
export const RUNSTATE_offline = 3;

/** A registered callback: code selector (32-bit guests) and address. */
export interface Callback {
  cs: number;
  lo: number;
  hi: number;
}

export interface EntryRegisters {
  rip: bigint;
  rsp: bigint;
  rsi: bigint;
  rflags: number;
  cs: number;
  ss: number;
  ds: number;
  es: number;
  fs: number;
  gs: number;
  kernelSs: number;
  kernelSp: bigint;
  dr6: number;
  dr7: number;
  upcallMask: number;
}

const lo32 = (v: bigint): number => Number(BigInt.asUintN(32, v)) | 0;
const hi32 = (v: bigint): number => Number(BigInt.asUintN(32, v >> 32n)) | 0;

export class Vcpu {
  readonly id: number;
  readonly domain: Domain;
  readonly cpu: Cpu;
  /** The hypervisor-owned frame holding the processor state. */
  readonly stateMfn: number;
  readonly s: Int32Array;

  // ---- PV state (Xen's struct pv_vcpu) ----
  /** Trap table: per vector the code selector, flags (DPL, mask events) and address. */
  readonly trapCs = new Uint16Array(256);
  readonly trapFlags = new Uint8Array(256);
  readonly trapLo = new Int32Array(256);
  readonly trapHi = new Int32Array(256);
  kernelSs = 0;
  kernelSpLo = 0;
  kernelSpHi = 0;
  eventCallback: Callback = { cs: 0, lo: 0, hi: 0 };
  failsafeCallback: Callback = { cs: 0, lo: 0, hi: 0 };
  syscallCallback: Callback = { cs: 0, lo: 0, hi: 0 };
  syscall32Callback: Callback = { cs: 0, lo: 0, hi: 0 };
  sysenterCallback: Callback = { cs: 0, lo: 0, hi: 0 };
  nmiCallback: Callback = { cs: 0, lo: 0, hi: 0 };
  failsafeDisablesEvents = false;
  syscallDisablesEvents = false;
  syscall32DisablesEvents = false;
  sysenterDisablesEvents = false;
  /** Virtual CR0.TS (fpu_taskswitch, CLTS, MOV CR0). */
  virtualTs = false;
  /** Virtual CR4 as the guest sees it. */
  virtualCr4 = S.CR4_PAE;
  /** Virtual CR2 (also written to vcpu_info.arch.cr2). */
  cr2Lo = 0;
  cr2Hi = 0;
  /** Virtual IOPL (physdev_op set_iopl), 0..3. */
  iopl = 0;
  /** 64-bit: the vCPU is in guest kernel mode. 32-bit: unused (CPL says it). */
  kernelMode = true;
  /** MFN of the guest's kernel top-level table (L4, or the PAE L3), 0 when none. */
  guestTable = 0;
  /** 64-bit: MFN of the user top-level table, 0 when none. */
  guestTableUser = 0;
  /** 32-bit: the Xen L4 this vCPU's CR3 points at. */
  compatL4 = 0;
  gdtFrames: number[] = [];
  gdtEntries = 0;
  ldtBaseLo = 0;
  ldtEntries = 0;
  /** Frames of the LDT, each holding a PGT_SEG_DESC type reference. */
  ldtFrames: number[] = [];
  debugRegs = [0, 0, 0, 0, 0, 0, 0xffff0ff0, 0x400];
  /** Where vcpu_info lives (V4). */
  vcpuInfoMfn: number;
  vcpuInfoOffset: number;

  // ---- scheduling and time ----
  online = false;
  private runstateValue = RUNSTATE_offline;
  /** Blocked in SCHEDOP_block (wakes on upcall_pending) or SCHEDOP_poll (on `pollPorts`). */
  blocked = false;
  pollPorts: number[] | null = null;
  /** Absolute ns deadline of a poll timeout, or -1. */
  pollTimeout = -1;
  /** Single-shot timer deadline (absolute ns) or -1. */
  singleshot = -1;
  /** Periodic timer period and next deadline (ns), period 0 = stopped. */
  periodPeriod = 10_000_000;
  periodNext = -1;
  /** Credit scheduler bookkeeping. */
  credit = 0;
  boosted = false;
  /** Retired-instruction count at the start of the current slice (virtual TSC). */
  sliceStartRetired = 0;
  sliceStartNs = 0;
  /** Ports bound to VIRQs on this vCPU (virq → port, 0 = none). */
  readonly virqPort = new Int32Array(24);
  /** Runstate area registered by the guest (virtual address), 0 = none. */
  runstateAreaLo = 0;
  runstateAreaHi = 0;
  /** Runstate accounting: ns spent in each RUNSTATE_* and when the current one began. */
  readonly runstateTime = [0, 0, 0, 0];
  runstateEntry = 0;
  /** A virtual NMI is pending (VCPUOP_send_nmi); delivered through trap vector 2. */
  nmiPending = false;
  /** NMIs are masked: one was delivered and the guest has not yet done HYPERVISOR_iret
   * (Xen's async_exception_mask). */
  nmiMasked = false;
  /** The vCPU has a context (vCPU 0 from the builder, others from VCPUOP_initialise). */
  initialised = false;
  /** The data segment registers must be reloaded from their descriptors before the guest
   * runs again (a descriptor table changed, or another vCPU ran): a selector that no longer
   * loads goes to the failsafe callback (entry.ts reloadDataSegments). */
  reloadSegments = false;
  /** The context VCPUOP_initialise gave could not be entered (CS/SS do not load): what the
   * first return to the guest does instead (entry.ts), as Xen's exit path would. */
  badEntry: { cs: number; ss: number } | null = null;
  /** VCPUOP_register_vcpu_info was done (Xen allows it once). */
  vcpuInfoRegistered = false;
  /** physdev_op set_iobitmap: guest virtual address of the bitmap and the ports it covers. */
  iobmpLo = 0;
  iobmpHi = 0;
  iobmpLimit = 0;
  /** Statistics. */
  hypercalls = 0;
  exits = 0;

  constructor(domain: Domain, id: number) {
    this.domain = domain;
    this.id = id;
    const xen = domain.xen;
    this.stateMfn = xen.space.alloc(1)[0];
    const mem = xen.memory;
    this.s = new Int32Array(mem.wasm.buffer, this.stateMfn * FRAME_SIZE, S.STATE_WORDS);
    this.cpu = new Cpu({
      memory: mem,
      io: NO_IO,
      state: this.s,
      readTsc: () => xen.tscFor(this),
      jitThreshold: xen.jitThreshold,
    });
    const c = this.cpu.controls;
    c.exceptionBitmap = -1; // V1
    c.interceptSoftwareInt = true;
    c.interceptSyscall = true;
    this.vcpuInfoMfn = domain.sharedInfoMfn;
    this.vcpuInfoOffset = id * 64;
    if (domain.is32) {
      this.compatL4 = xen.space.alloc(1)[0];
      xen.space.writeXenL4Slots(this.compatL4, domain.perDomain.l3);
    }
  }

  /** The RUNSTATE_* the vCPU is in; changing it accounts the time spent in the old one. */
  get runstate(): number {
    return this.runstateValue;
  }
  set runstate(state: number) {
    if (state === this.runstateValue) return;
    const now = this.domain.xen.now();
    this.runstateTime[this.runstateValue] += Math.max(0, now - this.runstateEntry);
    this.runstateEntry = now;
    this.runstateValue = state;
  }

  /** vcpu_runstate_info as of `now` (44 bytes for 32-bit guests, 48 for 64-bit). */
  runstateInfo(now: number): Uint8Array {
    const is64 = this.domain.is64;
    const b = new Uint8Array(is64 ? 48 : 44);
    const dv = new DataView(b.buffer);
    const at = is64 ? 8 : 4;
    const put64 = (off: number, v: number): void => {
      dv.setUint32(off, (v % 4294967296) >>> 0, true);
      dv.setUint32(off + 4, Math.floor(v / 4294967296) >>> 0, true);
    };
    dv.setUint32(0, this.runstateValue, true);
    put64(at, this.runstateEntry);
    for (let i = 0; i < 4; i++) {
      const extra = i === this.runstateValue ? Math.max(0, now - this.runstateEntry) : 0;
      put64(at + 8 + i * 8, this.runstateTime[i] + extra);
    }
    return b;
  }

  /**
   * Writes the runstate area the guest registered (VCPUOP_register_runstate_memory_area), as
   * Xen's update_runstate_area: through the vCPU's current page tables, a fault ignored; with
   * vm_assist runstate_update_flag, XEN_RUNSTATE_UPDATE (bit 63 of state_entry_time) is set
   * while the area is written.
   */
  writeRunstateArea(): void {
    if (this.runstateAreaLo === 0 && this.runstateAreaHi === 0) return;
    const lo = this.runstateAreaLo | 0;
    const hi = this.domain.is64 ? this.runstateAreaHi | 0 : 0;
    const info = this.runstateInfo(this.runstateEntry);
    const flag = (this.domain.vmAssist & (1 << 5)) !== 0;
    const at = this.domain.is64 ? 8 : 4;
    if (flag) {
      const w = new Uint8Array(info.subarray(at, at + 8));
      w[7] |= 0x80;
      const a = (lo >>> 0) + at;
      if (this.cpu.writeGuest(a | 0, a > 0xffffffff ? hi + 1 : hi, w, false) !== 0) return;
    }
    this.cpu.writeGuest(lo, hi, info, false);
  }

  /** Machine address of this vCPU's vcpu_info. */
  get vcpuInfo(): number {
    return this.vcpuInfoMfn * FRAME_SIZE + this.vcpuInfoOffset;
  }

  get upcallMask(): number {
    return this.domain.xen.memory.u8[this.vcpuInfo + 1];
  }
  set upcallMask(v: number) {
    this.domain.xen.memory.u8[this.vcpuInfo + 1] = v;
  }
  get upcallPending(): number {
    return this.domain.xen.memory.u8[this.vcpuInfo];
  }
  set upcallPending(v: number) {
    this.domain.xen.memory.u8[this.vcpuInfo] = v;
  }

  /** Guest is in kernel mode: CPL 1 for 32-bit guests, the mode flag for 64-bit ones. */
  inKernel(): boolean {
    return this.domain.is64 ? this.kernelMode : this.cpu.cpl !== 3;
  }

  /** Updates vcpu_time_info in vcpu_info (T2 in time.ts). */
  updateTime(): void {
    writeTimeInfo(this.domain.xen.memory.u8, this.vcpuInfo + 32, this.domain.xen.clock.now());
  }

  /**
   * Resets the processor to the PV execution environment: long-mode paging, Xen's GDT window
   * and empty IDT, no LDT, the guest ring (1 for 32-bit, 3 for 64-bit).
   */
  resetProcessor(): void {
    const cpu = this.cpu;
    const s = this.s;
    cpu.reset();
    s[S.CR0] = S.CR0_PE | S.CR0_MP | S.CR0_ET | S.CR0_NE | S.CR0_WP | S.CR0_PG;
    s[S.CR4] = S.CR4_PAE;
    s[S.EFER] = S.EFER_LME | S.EFER_LMA | S.EFER_NXE | S.EFER_SCE;
    s[S.CPL] = this.domain.is64 ? 3 : 1;
    cpu.loadSegmentRaw(S.SEG_LDTR, 0, 0, 0, S.ATTR_UNUSABLE);
    cpu.loadSegmentRaw(S.SEG_TR, 0, 0, 0, 0x8b);
    s[S.GDTR_BASE_LO] = PerDomainArea.gdtLo(this.id);
    s[S.GDTR_BASE_HI] = PERDOMAIN_HI;
    s[S.GDTR_LIMIT] = FIRST_RESERVED_GDT_BYTE + 0xfff;
    s[S.IDTR_BASE_LO] = 0;
    s[S.IDTR_BASE_HI] = 0;
    s[S.IDTR_LIMIT] = 0;
  }

  /** Loads the register state the builder computed (xen-pv-abi.md §2.4). */
  setEntryState(e: EntryRegisters): void {
    const cpu = this.cpu;
    const s = this.s;
    this.resetProcessor();
    const is64 = this.domain.is64;
    // Xen's flat segments (their descriptors are in Xen's GDT page, xenspace.ts).
    const FLAT = -1;
    const code64 = 0xa0fb;
    const data3 = 0xc0f3;
    const code1 = 0xc0bb;
    const data1 = 0xc0b3;
    const seg = (which: number, sel: number): void => {
      if ((sel & 0xfffc) === 0) {
        cpu.loadSegmentRaw(which, sel, 0, 0, S.ATTR_UNUSABLE | (is64 ? 3 << 5 : 1 << 5));
        return;
      }
      const attr =
        sel === 0xe033 && is64 ? code64 : sel === 0xe02b && is64 ? data3 : sel === 0xe019 ? code1 : data1;
      cpu.loadSegmentRaw(which, sel, 0, FLAT, attr);
    };
    seg(S.SEG_CS, e.cs);
    seg(S.SEG_SS, e.ss);
    seg(S.SEG_DS, e.ds);
    seg(S.SEG_ES, e.es);
    seg(S.SEG_FS, e.fs);
    seg(S.SEG_GS, e.gs);
    s[S.DR6] = e.dr6 | 0;
    s[S.DR7] = e.dr7 | 0;
    cpu.setRip(lo32(e.rip), hi32(e.rip));
    cpu.setReg64(S.REG_ESP, lo32(e.rsp), hi32(e.rsp));
    cpu.setReg64(S.REG_ESI, lo32(e.rsi), hi32(e.rsi));
    cpu.setEflags((e.rflags | 0x200) & ~0x3000);
    this.kernelSs = e.kernelSs;
    this.kernelSpLo = lo32(e.kernelSp);
    this.kernelSpHi = hi32(e.kernelSp);
    this.kernelMode = true;
    this.domain.xen.mapGdt(this);
    cpu.updateMode();
    this.loadCr3();
    this.upcallMask = e.upcallMask;
    this.online = true;
    this.initialised = true;
    this.runstate = RUNSTATE_runnable;
  }

  /** Points CR3 at the right table for the current mode (V2) and flushes the TLB. */
  loadCr3(): void {
    let mfn: number;
    if (this.domain.is32) {
      // Slot 0 of our L4 → the guest's L3 (long-mode L4 entry: P|RW|US|A).
      this.domain.xen.space.pte(this.compatL4, 0, this.guestTable, this.guestTable ? 0x27 : 0);
      mfn = this.compatL4;
    } else {
      mfn = this.kernelMode ? this.guestTable : this.guestTableUser || this.guestTable;
    }
    this.s[S.CR3_LO] = (mfn << 12) | 0;
    this.s[S.CR3_HI] = mfn >>> 20;
    this.cpu.flushTlb(false);
  }

  /** Copies the virtual TS into the real CR0 (so the FPU raises #NM). */
  syncTs(): void {
    if (this.virtualTs) this.s[S.CR0] |= S.CR0_TS;
    else this.s[S.CR0] &= ~S.CR0_TS;
  }

  /** Frees the hypervisor frames of this vCPU. */
  free(): void {
    const a = this.domain.xen.allocator;
    a.release(this.stateMfn);
    if (this.compatL4) a.release(this.compatL4);
  }
}
