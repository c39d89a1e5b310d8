import assert from "node:assert/strict";
import { test } from "node:test";
import { Cpu, EXIT_EXCEPTION, EXIT_TRIPLE_FAULT, GUEST_FAULT } from "./cpu.ts";
import { getArithFlags } from "./flags.ts";
import * as S from "./state.ts";
import { EV_EXTERNAL, EV_HW_EXCEPTION, EV_SOFT_INT } from "./system.ts";

// ---------------------------------------------------------------------- a tiny machine

const RAM = 8 << 20;

interface Machine {
  cpu: Cpu;
  ram: Uint8Array;
  dv: DataView;
  w32(pa: number, v: number): void;
  r32(pa: number): number;
  w64(pa: number, lo: number, hi: number): void;
}

function machine(): Machine {
  const ram = new Uint8Array(RAM);
  const memory = { u8: ram, ramBytes: RAM, mmioRead: () => -1, mmioWrite: () => {} };
  const cpu = new Cpu({ memory, io: { in: () => 0xff, out: () => {} } });
  const dv = new DataView(ram.buffer);
  return {
    cpu,
    ram,
    dv,
    w32: (pa, v) => dv.setInt32(pa, v, true),
    r32: (pa) => dv.getInt32(pa, true) >>> 0,
    w64: (pa, lo, hi) => {
      dv.setInt32(pa, lo, true);
      dv.setInt32(pa + 4, hi, true);
    },
  };
}

/** Flat 32-bit protected mode at CPL `cpl` (GDT at 0x1000 with the usual flat entries). */
function protectedMachine(cpl = 0): Machine {
  const m = machine();
  const { cpu } = m;
  const s = cpu.s;
  // GDT: 0 null, 0x08 code0, 0x10 data0, 0x18 code3, 0x20 data3, 0x28 TSS32 (at 0x3000)
  m.w64(0x1000, 0, 0);
  m.w64(0x1008, 0x0000ffff, 0x00cf9b00);
  m.w64(0x1010, 0x0000ffff, 0x00cf9300);
  m.w64(0x1018, 0x0000ffff, 0x00cffb00);
  m.w64(0x1020, 0x0000ffff, 0x00cff300);
  m.w64(0x1028, (0x3000 << 16) | 0x67, 0x00008b00);
  s[S.GDTR_BASE_LO] = 0x1000;
  s[S.GDTR_LIMIT] = 0x37;
  s[S.IDTR_BASE_LO] = 0x2000;
  s[S.IDTR_LIMIT] = 0x7ff;
  s[S.CR0] = S.CR0_PE | S.CR0_ET;
  s[S.CPL] = cpl;
  const code = cpl === 0 ? 0x08 : 0x1b;
  const data = cpl === 0 ? 0x10 : 0x23;
  const dplBits = cpl << 5;
  for (const seg of [S.SEG_ES, S.SEG_SS, S.SEG_DS, S.SEG_FS, S.SEG_GS]) cpu.loadSegmentRaw(seg, data, 0, -1, 0xc093 | dplBits);
  cpu.loadSegmentRaw(S.SEG_CS, code, 0, -1, 0xc09b | dplBits);
  cpu.loadSegmentRaw(S.SEG_TR, 0x28, 0x3000, 0x67, 0x8b);
  // TSS: ESP0 = 0x9000, SS0 = 0x10
  m.w32(0x3004, 0x9000);
  m.w32(0x3008, 0x10);
  cpu.setRip(0x5000);
  cpu.setReg32(S.REG_ESP, 0x8000);
  cpu.updateMode();
  return m;
}

/** Writes a 32-bit interrupt (or trap) gate at IDT[vector] (IDT at 0x2000). */
function gate32(m: Machine, vector: number, sel: number, offset: number, dpl = 0, trap = false): void {
  m.w64(0x2000 + vector * 8, (sel << 16) | (offset & 0xffff), (offset & 0xffff0000) | 0x8000 | (dpl << 13) | ((trap ? 0xf : 0xe) << 8));
}

function writeWords(m: Machine, at: number, words: number[]): void {
  for (let i = 0; i < words.length; i++) m.w32(at + i * 4, words[i]);
}

function faultOf(cpu: Cpu, fn: () => void): { vector: number; error: number } {
  try {
    fn();
  } catch (e) {
    if (e !== GUEST_FAULT) throw e;
    return { vector: cpu.pendingVector, error: cpu.pendingError };
  }
  assert.fail("expected a fault");
}

// ---------------------------------------------------------------------- paging: two-level

/** Two-level paging: page directory at 0x10000, one page table at 0x11000 for 0x400000..0x7fffff. */
function twoLevel(m: Machine): void {
  const s = m.cpu.s;
  m.w32(0x10000 + 1 * 4, 0x11000 | 0x7); // PDE[1]: P RW US
  s[S.CR3_LO] = 0x10000;
  s[S.CR0] |= S.CR0_PG;
  m.cpu.updateMode();
  m.cpu.flushTlb(false);
}

test("two-level walk: translation, accessed bits on both levels, dirty only for a write", () => {
  const m = protectedMachine();
  twoLevel(m);
  m.w32(0x11000 + 5 * 4, 0x200000 | 0x7);
  const r = m.cpu.sys.walk(0x405123, 0, 0, false);
  assert.equal(m.cpu.walkPhys, 0x200000);
  assert.equal(r & 1, 0, "clean page: not writable in the TLB");
  assert.equal(r & 2, 2, "executable");
  assert.equal(m.r32(0x10004) & 0x60, 0x20, "PDE accessed, not dirty");
  assert.equal(m.r32(0x11014) & 0x60, 0x20, "PTE accessed, not dirty");
  const w = m.cpu.sys.walk(0x405123, 0, 1, false);
  assert.equal(w & 1, 1);
  assert.equal(m.r32(0x11014) & 0x60, 0x60, "PTE dirty after the write");
  assert.equal(m.r32(0x10004) & 0x40, 0, "PDE never gets dirty");
  // A later read walk of the now-dirty page reports it writable.
  assert.equal(m.cpu.sys.walk(0x405000, 0, 0, false) & 1, 1);
});

test("two-level walk: not present, CR2 and the error code; no accessed bits on a fault", () => {
  const m = protectedMachine();
  twoLevel(m);
  let f = faultOf(m.cpu, () => m.cpu.sys.walk(0x801000, 0, 1, true));
  assert.deepEqual(f, { vector: S.VEC_PF, error: 2 | 4 });
  assert.equal(m.cpu.s[S.CR2_LO] >>> 0, 0x801000);
  f = faultOf(m.cpu, () => m.cpu.sys.walk(0x406000, 0, 0, false));
  assert.deepEqual(f, { vector: S.VEC_PF, error: 0 });
  assert.equal(m.r32(0x10004) & 0x20, 0, "a faulting walk sets no accessed bit");
});

test("write protection: supervisor writes to a read-only page fault only with CR0.WP", () => {
  const m = protectedMachine();
  twoLevel(m);
  m.w32(0x11000, 0x200000 | 0x5); // read-only user page
  assert.equal(m.cpu.sys.walk(0x400000, 0, 1, false) & 1, 1, "WP=0: the supervisor may write");
  m.cpu.s[S.CR0] |= S.CR0_WP;
  assert.deepEqual(faultOf(m.cpu, () => m.cpu.sys.walk(0x400000, 0, 1, false)), { vector: S.VEC_PF, error: 3 });
  assert.deepEqual(faultOf(m.cpu, () => m.cpu.sys.walk(0x400000, 0, 1, true)), { vector: S.VEC_PF, error: 7 });
  // A read walk reports the page as not writable, so the TLB never caches a write tag for it.
  assert.equal(m.cpu.sys.walk(0x400000, 0, 0, false) & 1, 0);
});

test("user access to a supervisor page: U/S at either level", () => {
  const m = protectedMachine();
  twoLevel(m);
  m.w32(0x11000, 0x200000 | 0x3); // supervisor page
  assert.deepEqual(faultOf(m.cpu, () => m.cpu.sys.walk(0x400000, 0, 0, true)), { vector: S.VEC_PF, error: 5 });
  m.w32(0x11000, 0x200000 | 0x7);
  m.w32(0x10004, 0x11000 | 0x3); // supervisor page table
  assert.deepEqual(faultOf(m.cpu, () => m.cpu.sys.walk(0x400000, 0, 2, true)), { vector: S.VEC_PF, error: 5 });
});

test("PSE: a 4 MiB page, global with CR4.PGE, reserved bits 21..17", () => {
  const m = protectedMachine();
  twoLevel(m);
  m.cpu.s[S.CR4] |= S.CR4_PSE | S.CR4_PGE;
  m.w32(0x10000 + 2 * 4, 0x400000 | 0x80 | 0x100 | 0x63); // 4 MiB at 0x800000 -> 0x400000, G, D
  const r = m.cpu.sys.walk(0x9abcde, 0, 1, false);
  assert.equal(m.cpu.walkPhys, 0x400000 + 0x1ab000);
  assert.equal(r & 5, 5, "writable and global");
  m.w32(0x10000 + 2 * 4, 0x400000 | 0x80 | 0x20000 | 0x63);
  assert.deepEqual(faultOf(m.cpu, () => m.cpu.sys.walk(0x800000, 0, 0, false)), { vector: S.VEC_PF, error: 9 });
});

// ---------------------------------------------------------------------- paging: PAE

/** PAE: PDPT at 0x10000, PD at 0x11000 (for 0..1 GiB), PT at 0x12000 (for 0..2 MiB). */
function pae(m: Machine, nxe: boolean): void {
  const s = m.cpu.s;
  m.w64(0x10000, 0x11000 | 1, 0);
  m.w64(0x11000, 0x12000 | 0x7, 0);
  s[S.CR3_LO] = 0x10000;
  s[S.CR4] |= S.CR4_PAE;
  if (nxe) s[S.EFER] |= S.EFER_NXE;
  s[S.CR0] |= S.CR0_PG;
  m.cpu.updateMode();
  m.cpu.flushTlb(false);
}

test("PAE: translation, NX with EFER.NXE (I/D in the error code), bit 63 reserved without NXE", () => {
  const m = protectedMachine();
  pae(m, true);
  m.w64(0x12000 + 3 * 8, 0x300000 | 0x7, 0x80000000 | 0);
  assert.equal(m.cpu.sys.walk(0x3456, 0, 0, true) & 2, 0, "not executable");
  assert.equal(m.cpu.walkPhys, 0x300000);
  assert.deepEqual(faultOf(m.cpu, () => m.cpu.sys.walk(0x3456, 0, 2, true)), { vector: S.VEC_PF, error: 0x15 });
  assert.deepEqual(faultOf(m.cpu, () => m.cpu.sys.walk(0x5000, 0, 2, false)), { vector: S.VEC_PF, error: 0x10 }, "not present fetch: I/D");
  m.cpu.s[S.EFER] &= ~S.EFER_NXE;
  assert.deepEqual(faultOf(m.cpu, () => m.cpu.sys.walk(0x3456, 0, 0, false)), { vector: S.VEC_PF, error: 0x9 }, "XD is reserved without NXE");
  assert.deepEqual(faultOf(m.cpu, () => m.cpu.sys.walk(0x5000, 0, 2, false)), { vector: S.VEC_PF, error: 0 }, "no I/D without NXE or SMEP");
});

test("PAE: reserved bits in a PDPTE and above MAXPHYADDR; 2 MiB pages", () => {
  const m = protectedMachine();
  pae(m, false);
  m.w64(0x11000 + 8, 0x600000 | 0x80 | 0x7, 0); // 2 MiB page at 0x200000 -> 0x600000
  m.cpu.sys.walk(0x2abcde, 0, 0, false);
  assert.equal(m.cpu.walkPhys, 0x600000 + 0xab000);
  m.w64(0x11000 + 8, 0x600000 | 0x80 | 0x7, 0x10); // physical bit 36: reserved
  assert.deepEqual(faultOf(m.cpu, () => m.cpu.sys.walk(0x200000, 0, 0, false)), { vector: S.VEC_PF, error: 9 });
  m.w64(0x10000, 0x11000 | 1 | 2, 0); // R/W is reserved in a PDPTE
  assert.deepEqual(faultOf(m.cpu, () => m.cpu.sys.walk(0x200000, 0, 1, true)), { vector: S.VEC_PF, error: 8 | 1 | 2 | 4 });
  // MOV CR3 validates the PDPTEs (Intel): #GP(0).
  assert.deepEqual(faultOf(m.cpu, () => m.cpu.sys.writeCr(3, 0x10000, 0)), { vector: S.VEC_GP, error: 0 });
});

// ---------------------------------------------------------------------- paging: four-level

/** Four-level: PML4 0x10000, PDPT 0x11000, PD 0x12000, PT 0x13000 mapping the low 2 MiB. */
function longPaging(m: Machine): void {
  const s = m.cpu.s;
  m.w64(0x10000, 0x11000 | 7, 0);
  m.w64(0x11000, 0x12000 | 7, 0);
  m.w64(0x12000, 0x13000 | 7, 0);
  s[S.CR3_LO] = 0x10000;
  s[S.CR4] |= S.CR4_PAE;
  s[S.EFER] |= S.EFER_LME | S.EFER_LMA | S.EFER_NXE;
  s[S.CR0] |= S.CR0_PG;
  m.cpu.updateMode();
  m.cpu.flushTlb(false);
}

test("four-level: 4 KiB, 2 MiB and 1 GiB pages, high linear addresses, accessed bits on every level", () => {
  const m = protectedMachine();
  longPaging(m);
  m.w64(0x13000 + 7 * 8, 0x500000 | 7, 0);
  m.cpu.sys.walk(0x7abc, 0, 0, false);
  assert.equal(m.cpu.walkPhys, 0x500000);
  for (const pa of [0x10000, 0x11000, 0x12000, 0x13038]) assert.equal(m.r32(pa) & 0x20, 0x20, `A at ${pa.toString(16)}`);
  // 0xffff8000_40200000: PML4[256], PDPT[1], PD[1] as a 2 MiB page.
  m.w64(0x10000 + 256 * 8, 0x14000 | 7, 0);
  m.w64(0x14000 + 1 * 8, 0x15000 | 7, 0);
  m.w64(0x15000 + 1 * 8, 0x400000 | 0x80 | 7, 0);
  m.cpu.sys.walk(0x40212345, 0xffff8000 | 0, 0, false);
  assert.equal(m.cpu.walkPhys, 0x412000);
  // 1 GiB page at PDPT[2] of PML4[256] -> physical 0x40000000 (beyond RAM: still translated).
  m.w64(0x14000 + 2 * 8, 0x40000000 | 0x80 | 0x100 | 7, 0);
  m.cpu.s[S.CR4] |= S.CR4_PGE;
  const r = m.cpu.sys.walk(0x80345678, 0xffff8000 | 0, 0, false);
  assert.equal(m.cpu.walkPhys, 0x40000000 + 0x345000);
  assert.equal(r & 4, 4, "global");
  m.w64(0x14000 + 2 * 8, 0x40000000 | 0x80 | 0x2000 | 7, 0); // bit 13: reserved in a 1 GiB PDPTE
  assert.deepEqual(faultOf(m.cpu, () => m.cpu.sys.walk(0x80000000, 0xffff8000 | 0, 0, false)), { vector: S.VEC_PF, error: 9 });
  assert.equal(m.cpu.s[S.CR2_LO] >>> 0, 0x80000000);
  assert.equal(m.cpu.s[S.CR2_HI] >>> 0, 0xffff8000);
  // PS in a PML4E is reserved.
  m.w64(0x10000 + 256 * 8, 0x14000 | 0x80 | 7, 0);
  assert.deepEqual(faultOf(m.cpu, () => m.cpu.sys.walk(0x40212345, 0xffff8000 | 0, 0, false)), { vector: S.VEC_PF, error: 9 });
});

test("SMEP: supervisor fetch from a user page faults with I/D", () => {
  const m = protectedMachine();
  longPaging(m);
  m.w64(0x13000 + 7 * 8, 0x500000 | 7, 0);
  m.cpu.s[S.CR4] |= S.CR4_SMEP;
  assert.equal(m.cpu.sys.walk(0x7000, 0, 0, false) & 2, 0);
  assert.deepEqual(faultOf(m.cpu, () => m.cpu.sys.walk(0x7000, 0, 2, false)), { vector: S.VEC_PF, error: 0x11 });
  assert.equal(m.cpu.sys.walk(0x7000, 0, 2, true) & 2, 2, "user fetch is fine");
});

// ---------------------------------------------------------------------- segment checks

test("checkSegment: limits, expand-down, read-only data, execute-only code, null", () => {
  const m = protectedMachine();
  const { cpu } = m;
  cpu.loadSegmentRaw(S.SEG_DS, 0x10, 0x1000, 0xfff, 0x4093);
  cpu.sys.checkSegment(S.SEG_DS, 0xffc, 4, true);
  assert.deepEqual(faultOf(cpu, () => cpu.sys.checkSegment(S.SEG_DS, 0xffd, 4, false)), { vector: S.VEC_GP, error: 0 });
  // Expand-down, B=0: valid offsets are 0x1000..0xffff.
  cpu.loadSegmentRaw(S.SEG_SS, 0x10, 0, 0xfff, 0x0097);
  cpu.sys.checkSegment(S.SEG_SS, 0x1000, 2, true);
  cpu.sys.checkSegment(S.SEG_SS, 0xfffe, 2, true);
  assert.deepEqual(faultOf(cpu, () => cpu.sys.checkSegment(S.SEG_SS, 0xfff, 2, true)), { vector: S.VEC_SS, error: 0 });
  assert.deepEqual(faultOf(cpu, () => cpu.sys.checkSegment(S.SEG_SS, 0xffff, 2, true)), { vector: S.VEC_SS, error: 0 });
  cpu.loadSegmentRaw(S.SEG_ES, 0x10, 0, -1, 0xc091); // read-only data
  cpu.sys.checkSegment(S.SEG_ES, 0, 4, false);
  assert.deepEqual(faultOf(cpu, () => cpu.sys.checkSegment(S.SEG_ES, 0, 4, true)), { vector: S.VEC_GP, error: 0 });
  cpu.loadSegmentRaw(S.SEG_FS, 0x08, 0, -1, 0xc099); // execute-only code
  assert.deepEqual(faultOf(cpu, () => cpu.sys.checkSegment(S.SEG_FS, 0, 1, false)), { vector: S.VEC_GP, error: 0 });
  cpu.loadSegmentRaw(S.SEG_GS, 0x08, 0, -1, 0xc09b); // readable code
  cpu.sys.checkSegment(S.SEG_GS, 0, 1, false);
  assert.deepEqual(faultOf(cpu, () => cpu.sys.checkSegment(S.SEG_GS, 0, 1, true)), { vector: S.VEC_GP, error: 0 });
  cpu.sys.loadSegment(S.SEG_GS, 0);
  assert.deepEqual(faultOf(cpu, () => cpu.sys.checkSegment(S.SEG_GS, 0, 1, false)), { vector: S.VEC_GP, error: 0 });
});

test("checkSegment in real mode checks only the limit", () => {
  const m = machine();
  const { cpu } = m;
  cpu.loadSegmentRaw(S.SEG_DS, 0x1234, 0x12340, 0xffff, 0x91);
  cpu.sys.checkSegment(S.SEG_DS, 0xfffe, 2, true);
  assert.deepEqual(faultOf(cpu, () => cpu.sys.checkSegment(S.SEG_DS, 0xffff, 2, true)), { vector: S.VEC_GP, error: 0 });
});

// ---------------------------------------------------------------------- event delivery

test("protected mode: an interrupt gate at the same privilege pushes EFLAGS, CS, EIP, error code", () => {
  const m = protectedMachine(0);
  const { cpu } = m;
  gate32(m, 13, 0x08, 0x7000);
  cpu.setEflags(S.F_IF | S.F_TF | S.F_CF | 2);
  cpu.sys.deliverEvent(13, EV_HW_EXCEPTION, 0x1234, true);
  assert.equal(cpu.eip, 0x7000);
  assert.equal(cpu.reg32(S.REG_ESP), 0x8000 - 16);
  assert.equal(m.r32(0x8000 - 4), (S.F_IF | S.F_TF | S.F_CF | 2) >>> 0, "EFLAGS");
  assert.equal(m.r32(0x8000 - 8), 0x08, "CS");
  assert.equal(m.r32(0x8000 - 12), 0x5000, "EIP");
  assert.equal(m.r32(0x8000 - 16), 0x1234, "error code");
  assert.equal(cpu.getEflags() & (S.F_IF | S.F_TF), 0, "IF and TF cleared by an interrupt gate");
  assert.equal(cpu.getEflags() & S.F_CF, S.F_CF);
});

test("protected mode: from CPL 3 the stack switches to SS0:ESP0 from the TSS", () => {
  const m = protectedMachine(3);
  const { cpu } = m;
  gate32(m, 0x80, 0x08, 0x7000, 3, true);
  cpu.setEflags(S.F_IF | 2);
  cpu.sys.deliverEvent(0x80, EV_SOFT_INT, 0, false);
  assert.equal(cpu.cpl, 0);
  assert.equal(cpu.s[S.segWord(S.SEG_CS, S.SEG_SEL)], 0x08);
  assert.equal(cpu.s[S.segWord(S.SEG_SS, S.SEG_SEL)], 0x10);
  assert.equal(cpu.reg32(S.REG_ESP), 0x9000 - 20);
  assert.deepEqual(
    [0x9000 - 4, 0x9000 - 8, 0x9000 - 12, 0x9000 - 16, 0x9000 - 20].map((a) => m.r32(a)),
    [0x23, 0x8000, S.F_IF | 2, 0x1b, 0x5000],
    "SS, ESP, EFLAGS, CS, EIP",
  );
  assert.equal(cpu.getEflags() & S.F_IF, S.F_IF, "a trap gate keeps IF");
  assert.equal(m.r32(0x100c) & 0x100, 0x100, "the CS descriptor became accessed");
});

test("protected mode: INT n through a gate with DPL < CPL is #GP(vector*8+2)", () => {
  const m = protectedMachine(3);
  const { cpu } = m;
  gate32(m, 0x30, 0x08, 0x7000, 0);
  gate32(m, 13, 0x08, 0x7100, 0);
  cpu.sys.deliverEvent(0x30, EV_SOFT_INT, 0, false, 2);
  assert.equal(cpu.eip, 0x7100, "the #GP handler runs");
  assert.equal(m.r32(0x9000 - 24), 0x30 * 8 + 2, "error code: IDT bit, no EXT");
  assert.equal(m.r32(0x9000 - 20), 0x5000 - 2, "the #GP reports the INT instruction");
});

test("an external interrupt through a not-present gate: #NP with IDT and EXT bits", () => {
  const m = protectedMachine(0);
  const { cpu } = m;
  gate32(m, 0x20, 0x08, 0x7000);
  m.w32(0x2000 + 0x20 * 8 + 4, m.r32(0x2000 + 0x20 * 8 + 4) & ~0x8000);
  gate32(m, 11, 0x08, 0x7200);
  cpu.sys.deliverEvent(0x20, EV_EXTERNAL, 0, false);
  assert.equal(cpu.eip, 0x7200);
  assert.equal(m.r32(0x8000 - 16), 0x20 * 8 + 3);
});

test("#DF: a #GP while delivering #NP becomes a double fault; a fault delivering #DF is a triple fault", () => {
  const m = protectedMachine(0);
  const { cpu } = m;
  gate32(m, 8, 0x08, 0x7800);
  // #NP's gate points at a null selector: #GP while delivering #NP.
  m.w64(0x2000 + 11 * 8, 0x00000000, 0x8e00);
  cpu.sys.deliverEvent(11, EV_HW_EXCEPTION, 0x18, true);
  assert.equal(cpu.eip, 0x7800);
  assert.equal(m.r32(0x8000 - 16), 0, "#DF error code 0");
  // Now break #DF's gate too.
  const m2 = protectedMachine(0);
  m2.w64(0x2000 + 11 * 8, 0x00000000, 0x8e00);
  m2.w64(0x2000 + 8 * 8, 0x00000000, 0x8e00);
  m2.cpu.sys.deliverEvent(11, EV_HW_EXCEPTION, 0x18, true);
  assert.equal(m2.cpu.exitReason, EXIT_TRIPLE_FAULT);
});

/** Identity-maps the first 4 MiB with two-level paging, except page 7 (0x7000..0x7fff). */
function pagedWithHole(m: Machine): void {
  twoLevel(m);
  m.w32(0x10000, 0x12000 | 7);
  for (let i = 0; i < 1024; i++) m.w32(0x12000 + i * 4, (i << 12) | 7);
  m.w32(0x12000 + 7 * 4, 0);
  m.cpu.flushTlb(false);
}

test("a #PF while delivering a #PF is a double fault, and a #PF delivering that is a triple fault", () => {
  const m = protectedMachine(0);
  const { cpu } = m;
  pagedWithHole(m);
  gate32(m, 14, 0x08, 0x6000);
  gate32(m, 8, 0x08, 0x6800);
  cpu.setReg32(S.REG_ESP, 0x8004); // the frame lands on the unmapped page
  cpu.sys.deliverEvent(14, EV_HW_EXCEPTION, 2, true);
  assert.equal(cpu.exitReason, EXIT_TRIPLE_FAULT);
  assert.equal(cpu.s[S.CR2_LO], 0x7ffc, "CR2 holds the address of the last #PF");
});

test("a #PF while delivering an external interrupt is a plain #PF, with IDT-vectoring information", () => {
  const m = protectedMachine(0);
  const { cpu } = m;
  pagedWithHole(m);
  gate32(m, 0x20, 0x08, 0x6400);
  cpu.controls.exceptionBitmap = 1 << S.VEC_PF;
  cpu.setReg32(S.REG_ESP, 0x8004);
  cpu.sys.deliverEvent(0x20, EV_EXTERNAL, 0, false);
  assert.equal(cpu.exitReason, EXIT_EXCEPTION);
  assert.equal(cpu.exitInfo.vector, S.VEC_PF);
  assert.equal(cpu.exitInfo.errorCode, 2, "supervisor write, not present");
  assert.equal(cpu.exitInfo.addressLo, 0x7ffc);
  assert.deepEqual({ ...cpu.sys.vectoring }, { valid: true, vector: 0x20, kind: EV_EXTERNAL, errorCode: 0, hasErrorCode: false });
  assert.equal(cpu.reg32(S.REG_ESP), 0x8004, "nothing was committed");
});

test("the exception bitmap turns delivery into an exit with the error code and CR2", () => {
  const m = protectedMachine(0);
  const { cpu } = m;
  cpu.controls.exceptionBitmap = 1 << S.VEC_PF;
  cpu.s[S.CR2_LO] = 0x1234;
  cpu.sys.deliverEvent(S.VEC_PF, EV_HW_EXCEPTION, 6, true);
  assert.equal(cpu.exitReason, EXIT_EXCEPTION);
  assert.equal(cpu.exitInfo.vector, 14);
  assert.equal(cpu.exitInfo.errorCode, 6);
  assert.equal(cpu.exitInfo.addressLo, 0x1234);
  assert.equal(cpu.eip, 0x5000, "nothing delivered");
});

test("real mode: through the IVT, FLAGS CS IP pushed, IF TF cleared", () => {
  const m = machine();
  const { cpu } = m;
  m.dv.setUint16(0x21 * 4, 0x0100, true);
  m.dv.setUint16(0x21 * 4 + 2, 0x2000, true);
  cpu.loadSegmentRaw(S.SEG_CS, 0x1000, 0x10000, 0xffff, 0x9b);
  cpu.loadSegmentRaw(S.SEG_SS, 0x3000, 0x30000, 0xffff, 0x93);
  cpu.setRip(0x0123);
  cpu.setReg32(S.REG_ESP, 0x100);
  cpu.setEflags(S.F_IF | S.F_TF | 2);
  cpu.sys.deliverEvent(0x21, EV_SOFT_INT, 0, false);
  assert.equal(cpu.s[S.segWord(S.SEG_CS, S.SEG_SEL)], 0x2000);
  assert.equal(cpu.segBase[S.SEG_CS], 0x20000);
  assert.equal(cpu.eip, 0x100);
  assert.equal(cpu.reg32(S.REG_ESP), 0xfa);
  assert.equal(m.dv.getUint16(0x300fe, true), S.F_IF | S.F_TF | 2);
  assert.equal(m.dv.getUint16(0x300fc, true), 0x1000);
  assert.equal(m.dv.getUint16(0x300fa, true), 0x0123);
  assert.equal(cpu.getEflags() & (S.F_IF | S.F_TF), 0);
});

/** 64-bit mode at CPL `cpl` with four-level identity paging of the low 2 MiB... and 64-bit GDT/TSS. */
function longMachine(cpl: number): Machine {
  const m = protectedMachine(0);
  const { cpu } = m;
  const s = cpu.s;
  // Identity-map 0..2 MiB with one 2 MiB page, user-accessible.
  m.w64(0x10000, 0x11000 | 7, 0);
  m.w64(0x11000, 0x12000 | 7, 0);
  m.w64(0x12000, 0x000000 | 0x80 | 7, 0);
  s[S.CR3_LO] = 0x10000;
  s[S.CR4] |= S.CR4_PAE;
  s[S.EFER] |= S.EFER_LME | S.EFER_LMA | S.EFER_SCE;
  s[S.CR0] |= S.CR0_PG;
  // GDT: 0x08 code64 DPL0, 0x10 data0, 0x18 code32 DPL3, 0x20 data3, 0x28 code64 DPL3, 0x30 TSS64 (16 bytes)
  m.w64(0x1008, 0x0000ffff, 0x00af9b00);
  m.w64(0x1018, 0x0000ffff, 0x00cffb00);
  m.w64(0x1028, 0x0000ffff, 0x00affb00);
  m.w64(0x1030, (0x3000 << 16) | 0x67, 0x00008b00);
  m.w64(0x1038, 0, 0);
  s[S.GDTR_LIMIT] = 0x3f;
  s[S.CPL] = cpl;
  cpu.loadSegmentRaw(S.SEG_TR, 0x30, 0x3000, 0x67, 0x8b);
  // 64-bit TSS: RSP0 = 0x9000, IST1 = 0xa008 (misaligned on purpose)
  m.w64(0x3004, 0x9000, 0);
  m.w64(0x3024, 0xa008, 0);
  if (cpl === 0) {
    cpu.loadSegmentRaw(S.SEG_CS, 0x08, 0, -1, 0xa09b);
    cpu.loadSegmentRaw(S.SEG_SS, 0x10, 0, -1, 0xc093);
  } else {
    cpu.loadSegmentRaw(S.SEG_CS, 0x2b, 0, -1, 0xa0fb);
    cpu.loadSegmentRaw(S.SEG_SS, 0x23, 0, -1, 0xc0f3);
  }
  s[S.IDTR_LIMIT] = 0xfff;
  cpu.updateMode();
  cpu.flushTlb(false);
  cpu.setRip(0x5000);
  cpu.setReg32(S.REG_ESP, 0x8008);
  return m;
}

function gate64(m: Machine, vector: number, sel: number, offset: number, ist = 0, dpl = 0): void {
  m.w64(0x2000 + vector * 16, (sel << 16) | (offset & 0xffff), (offset & 0xffff0000) | 0x8e00 | (dpl << 13) | ist);
  m.w64(0x2000 + vector * 16 + 8, 0, 0);
}

test("long mode: from CPL 3 the frame goes on RSP0, 16-byte aligned, SS:RSP always pushed, SS null", () => {
  const m = longMachine(3);
  const { cpu } = m;
  assert.ok(cpu.code64);
  gate64(m, 0x80, 0x08, 0x7000, 0, 3);
  cpu.setEflags(S.F_IF | 2);
  cpu.sys.deliverEvent(0x80, EV_SOFT_INT, 0, false);
  assert.equal(cpu.cpl, 0);
  assert.equal(cpu.eip, 0x7000);
  assert.equal(cpu.reg32(S.REG_ESP), 0x9000 - 40);
  const q = (a: number) => m.r32(a);
  assert.deepEqual([q(0x9000 - 8), q(0x9000 - 16), q(0x9000 - 24), q(0x9000 - 32), q(0x9000 - 40)], [0x23, 0x8008, S.F_IF | 2, 0x2b, 0x5000]);
  assert.equal(cpu.s[S.segWord(S.SEG_SS, S.SEG_SEL)], 0, "SS is the null selector with RPL 0");
  assert.equal(cpu.getEflags() & S.F_IF, 0);
});

test("long mode: IST switches stacks even at the same privilege, aligned down to 16", () => {
  const m = longMachine(0);
  const { cpu } = m;
  gate64(m, 2, 0x08, 0x7000, 1);
  cpu.sys.deliverEvent(2, 2, 0, false);
  assert.equal(cpu.reg32(S.REG_ESP), 0xa000 - 40);
  assert.equal(m.r32(0xa000 - 16), 0x8008, "old RSP");
  assert.equal(cpu.s[S.segWord(S.SEG_SS, S.SEG_SEL)], 0x10, "same privilege: SS unchanged");
});

test("long mode: an error code is pushed after RIP; #GP for a 32-bit gate type", () => {
  const m = longMachine(0);
  const { cpu } = m;
  gate64(m, 14, 0x08, 0x7000);
  cpu.s[S.REG_ESP * 2] = 0x8000;
  cpu.sys.deliverEvent(14, EV_HW_EXCEPTION, 0x5, true);
  assert.equal(cpu.reg32(S.REG_ESP), 0x8000 - 48);
  assert.equal(m.r32(0x8000 - 48), 5);
  assert.equal(m.r32(0x8000 - 40), 0x5000);
});

test("lar/lsl report validity through ZF", () => {
  const m = protectedMachine(3);
  const { cpu } = m;
  assert.equal(cpu.sys.lar(0x1b) >>> 0, 0x00cffb00 & 0x00f0ff00);
  assert.equal(getArithFlags(cpu.s) & S.F_ZF, S.F_ZF);
  assert.equal(cpu.sys.lar(0x08), -1, "DPL 0 code is not visible from CPL 3");
  assert.equal(getArithFlags(cpu.s) & S.F_ZF, 0);
  assert.equal(cpu.sys.lsl(0x23), 0xffffffff);
  assert.equal(cpu.sys.lsl(0x28), -1, "a TSS with DPL 0");
});

// ---------------------------------------------------------------------- segment loads

test("loadSegment: privilege rules, #NP, SS rules, accessed bit, MOV SS shadow", () => {
  const m = protectedMachine(3);
  const { cpu } = m;
  assert.deepEqual(faultOf(cpu, () => cpu.sys.loadSegment(S.SEG_DS, 0x10)), { vector: S.VEC_GP, error: 0x10 }, "DPL 0 data from CPL 3");
  assert.deepEqual(faultOf(cpu, () => cpu.sys.loadSegment(S.SEG_DS, 0x40)), { vector: S.VEC_GP, error: 0x40 }, "beyond the GDT limit");
  cpu.sys.loadSegment(S.SEG_DS, 0x23);
  assert.equal(m.r32(0x1024) & 0x100, 0x100, "accessed bit set in the descriptor");
  assert.equal(cpu.s[S.segWord(S.SEG_DS, S.SEG_ATTR)] & 0xff, 0xf3);
  cpu.sys.loadSegment(S.SEG_ES, 0x1b); // readable DPL-3 code: fine for a data register
  assert.deepEqual(faultOf(cpu, () => cpu.sys.loadSegment(S.SEG_SS, 0x1b)), { vector: S.VEC_GP, error: 0x18 }, "code into SS");
  assert.deepEqual(faultOf(cpu, () => cpu.sys.loadSegment(S.SEG_SS, 0)), { vector: S.VEC_GP, error: 0 }, "null SS");
  m.w64(0x1030, 0x0000ffff, 0x00cf7300); // DPL 3 data, not present
  m.cpu.s[S.GDTR_LIMIT] = 0x3f;
  assert.deepEqual(faultOf(cpu, () => cpu.sys.loadSegment(S.SEG_FS, 0x33)), { vector: S.VEC_NP, error: 0x30 });
  assert.deepEqual(faultOf(cpu, () => cpu.sys.loadSegment(S.SEG_SS, 0x33)), { vector: S.VEC_SS, error: 0x30 });
  cpu.sys.loadSegment(S.SEG_SS, 0x23);
  assert.equal(cpu.s[S.INTR_SHADOW], 2, "MOV SS blocks interrupts (and single-step) for one instruction");
  cpu.sys.loadSegment(S.SEG_GS, 0);
  assert.equal(cpu.s[S.segWord(S.SEG_GS, S.SEG_ATTR)] & S.ATTR_UNUSABLE, S.ATTR_UNUSABLE);
});

test("loadSegment: real mode sets base = selector << 4; 64-bit mode allows a null SS at CPL 0", () => {
  const m = machine();
  m.cpu.sys.loadSegment(S.SEG_ES, 0xb800);
  assert.equal(m.cpu.segBase[S.SEG_ES], 0xb8000);
  const l = longMachine(0);
  l.cpu.sys.loadSegment(S.SEG_SS, 0);
  assert.equal(l.cpu.s[S.segWord(S.SEG_SS, S.SEG_SEL)], 0);
  const u = longMachine(3);
  assert.deepEqual(faultOf(u.cpu, () => u.cpu.sys.loadSegment(S.SEG_SS, 3)), { vector: S.VEC_GP, error: 0 });
});

// ---------------------------------------------------------------------- far transfers

test("far call through a 32-bit call gate to CPL 0 copies parameters; far return goes back out", () => {
  const m = protectedMachine(3);
  const { cpu } = m;
  // GDT 0x30: call gate DPL 3 -> 0x08:0x7000, 2 dword parameters.
  m.w64(0x1030, (0x08 << 16) | 0x7000, 0x0000ec02);
  cpu.s[S.GDTR_LIMIT] = 0x37;
  m.w32(0x8000, 0x1111); // parameter 0 (at ESP)
  m.w32(0x8004, 0x2222); // parameter 1
  cpu.sys.farCall(0x33, 0, 0, 4, 0x5007, 0);
  assert.equal(cpu.cpl, 0);
  assert.equal(cpu.eip, 0x7000);
  assert.equal(cpu.s[S.segWord(S.SEG_SS, S.SEG_SEL)], 0x10);
  const sp = 0x9000;
  assert.deepEqual(
    [sp - 4, sp - 8, sp - 12, sp - 16, sp - 20, sp - 24].map((a) => m.r32(a)),
    [0x23, 0x8000, 0x2222, 0x1111, 0x1b, 0x5007],
    "SS, ESP, param 1, param 0, CS, EIP",
  );
  assert.equal(cpu.reg32(S.REG_ESP), sp - 24);
  // The kernel loads DS with its own data segment, then RETF 8 back to CPL 3.
  cpu.sys.loadSegment(S.SEG_DS, 0x10);
  cpu.sys.farReturn(4, 8);
  assert.equal(cpu.cpl, 3);
  assert.equal(cpu.eip, 0x5007);
  assert.equal(cpu.reg32(S.REG_ESP), 0x8008, "the caller's parameters popped too");
  assert.equal(cpu.s[S.segWord(S.SEG_SS, S.SEG_SEL)], 0x23);
  assert.equal(cpu.s[S.segWord(S.SEG_DS, S.SEG_ATTR)] & S.ATTR_UNUSABLE, S.ATTR_UNUSABLE, "DS (DPL 0) nulled");
  assert.equal(cpu.s[S.segWord(S.SEG_ES, S.SEG_ATTR)] & S.ATTR_UNUSABLE, 0, "ES (DPL 3) kept");
});

test("far jump and far call to a code segment at the same privilege; conforming code keeps CPL", () => {
  const m = protectedMachine(0);
  const { cpu } = m;
  cpu.sys.farCall(0x08, 0x6000, 0, 4, 0x5005, 0);
  assert.equal(cpu.eip, 0x6000);
  assert.equal(m.r32(0x8000 - 4), 0x08);
  assert.equal(m.r32(0x8000 - 8), 0x5005);
  cpu.sys.farReturn(4, 0);
  assert.equal(cpu.eip, 0x5005);
  assert.equal(cpu.reg32(S.REG_ESP), 0x8000);
  const u = protectedMachine(3);
  u.w64(0x1030, 0x0000ffff, 0x00cf9f00); // conforming code, DPL 0
  u.cpu.s[S.GDTR_LIMIT] = 0x37;
  u.cpu.sys.farJump(0x33, 0x1234, 0, 4);
  assert.equal(u.cpu.cpl, 3);
  assert.equal(u.cpu.s[S.segWord(S.SEG_CS, S.SEG_SEL)], 0x33);
  assert.deepEqual(faultOf(u.cpu, () => u.cpu.sys.farJump(0x08, 0, 0, 4)), { vector: S.VEC_GP, error: 8 });
  assert.deepEqual(faultOf(u.cpu, () => u.cpu.sys.farJump(0x1b, 0, 1, 8)), { vector: S.VEC_GP, error: 0 }, "beyond the limit");
});

test("64-bit call gate from CPL 3: RSP0 from the TSS, null SS, 8-byte pushes", () => {
  const m = longMachine(3);
  const { cpu } = m;
  // 16-byte call gate at 0x40 (DPL 3) -> 0x08:0xffff8000_00007000 (the address only needs to be canonical).
  m.w64(0x1040, (0x08 << 16) | 0x7000, 0x0000ec00);
  m.w64(0x1048, 0xffff8000 | 0, 0);
  cpu.s[S.GDTR_LIMIT] = 0x4f;
  cpu.sys.farCall(0x43, 0, 0, 4, 0x5007, 0);
  assert.equal(cpu.cpl, 0);
  assert.equal(cpu.eip, 0x7000);
  assert.equal(cpu.s[S.RIP_HI] >>> 0, 0xffff8000);
  assert.equal(cpu.reg32(S.REG_ESP), 0x9000 - 32);
  assert.deepEqual([0x9000 - 8, 0x9000 - 16, 0x9000 - 24, 0x9000 - 32].map((a) => m.r32(a)), [0x23, 0x8008, 0x2b, 0x5007]);
  // RETF with REX.W back to CPL 3 in 64-bit mode.
  cpu.sys.farReturn(8, 0);
  assert.equal(cpu.cpl, 3);
  assert.ok(cpu.code64);
  assert.equal(cpu.reg32(S.REG_ESP), 0x8008);
});

// ---------------------------------------------------------------------- IRET

test("iret: same privilege and to an outer privilege (protected mode)", () => {
  const m = protectedMachine(0);
  const { cpu } = m;
  // Frame for a return to CPL 3: EIP, CS, EFLAGS, ESP, SS.
  const frame = [0x5100, 0x1b, S.F_IF | S.F_IOPL | 2, 0x7000, 0x23];
  writeWords(m, 0x7f00, frame);
  cpu.setReg32(S.REG_ESP, 0x7f00);
  cpu.sys.iret(4);
  assert.equal(cpu.cpl, 3);
  assert.equal(cpu.eip, 0x5100);
  assert.equal(cpu.reg32(S.REG_ESP), 0x7000);
  assert.equal(cpu.getEflags() & (S.F_IF | S.F_IOPL), S.F_IF | S.F_IOPL, "CPL 0 may set IOPL");
  // From CPL 3 with IOPL 3, an IRET cannot change IOPL.
  writeWords(m, 0x6f00, [0x5200, 0x1b, S.F_IF | 2]);
  cpu.setReg32(S.REG_ESP, 0x6f00);
  cpu.sys.iret(4);
  assert.equal(cpu.getEflags() & S.F_IOPL, S.F_IOPL);
  assert.equal(cpu.reg32(S.REG_ESP), 0x6f0c);
  // Returning to CPL 0 from CPL 3 is #GP(selector).
  writeWords(m, 0x6e00, [0x5300, 0x08, 2]);
  cpu.setReg32(S.REG_ESP, 0x6e00);
  assert.deepEqual(faultOf(cpu, () => cpu.sys.iret(4)), { vector: S.VEC_GP, error: 8 });
  // NT set and no next EIP given (a task return must save it in the old TSS): #GP(0).
  const k = protectedMachine(0);
  k.cpu.setEflags(S.F_NT | 2);
  assert.deepEqual(faultOf(k.cpu, () => k.cpu.sys.iret(4)), { vector: S.VEC_GP, error: 0 });
});

test("iretq to compatibility mode at CPL 3, and to 64-bit mode with a null SS at CPL 0", () => {
  const m = longMachine(0);
  const { cpu } = m;
  writeWords(m, 0x7f00, [0x5100, 0, 0x1b, 0, S.F_IF | 2, 0, 0x7000, 0, 0x23, 0]);
  cpu.setReg32(S.REG_ESP, 0x7f00);
  cpu.sys.iret(8);
  assert.equal(cpu.cpl, 3);
  assert.ok(!cpu.code64 && cpu.lma && cpu.csD, "compatibility mode, 32-bit code");
  assert.equal(cpu.reg32(S.REG_ESP), 0x7000);
  const k = longMachine(0);
  writeWords(k, 0x7f00, [0x5100, 0, 0x08, 0, 2, 0, 0x7000, 0, 0, 0]);
  k.cpu.setReg32(S.REG_ESP, 0x7f00);
  k.cpu.sys.iret(8);
  assert.equal(k.cpu.cpl, 0);
  assert.ok(k.cpu.code64);
  assert.equal(k.cpu.reg32(S.REG_ESP), 0x7000, "IRETQ pops SS:RSP even at the same privilege");
});

test("virtual-8086 mode: entered by IRET from CPL 0, left by an interrupt to a CPL-0 gate", () => {
  const m = protectedMachine(0);
  const { cpu } = m;
  // EIP, CS, EFLAGS(VM, IOPL 3), ESP, SS, ES, DS, FS, GS
  writeWords(m, 0x7f00, [0x0100, 0x2000, S.F_VM | S.F_IOPL | S.F_IF | 2, 0xfff0, 0x3000, 0x4000, 0x5000, 0x6000, 0x7000]);
  cpu.setReg32(S.REG_ESP, 0x7f00);
  cpu.sys.iret(4);
  assert.equal(cpu.cpl, 3);
  assert.equal(cpu.getEflags() & S.F_VM, S.F_VM);
  assert.equal(cpu.segBase[S.SEG_CS], 0x20000);
  assert.equal(cpu.segBase[S.SEG_DS], 0x50000);
  assert.equal(cpu.reg32(S.REG_ESP), 0xfff0);
  // A segment load in v86 mode is real-mode style.
  cpu.sys.loadSegment(S.SEG_ES, 0x1234);
  assert.equal(cpu.segBase[S.SEG_ES], 0x12340);
  // An external interrupt leaves v86 mode through a 32-bit gate to CPL 0.
  gate32(m, 0x20, 0x08, 0x7000);
  cpu.sys.deliverEvent(0x20, EV_EXTERNAL, 0, false);
  assert.equal(cpu.cpl, 0);
  assert.equal(cpu.getEflags() & S.F_VM, 0);
  assert.equal(cpu.reg32(S.REG_ESP), 0x9000 - 36);
  assert.deepEqual(
    Array.from({ length: 9 }, (_, i) => m.r32(0x9000 - 4 - 4 * i)),
    [0x7000, 0x6000, 0x5000, 0x1234, 0x3000, 0xfff0, (S.F_VM | S.F_IOPL | S.F_IF | 2) >>> 0, 0x2000, 0x0100],
    "GS FS DS ES SS ESP EFLAGS CS EIP",
  );
  assert.equal(cpu.s[S.segWord(S.SEG_DS, S.SEG_ATTR)] & S.ATTR_UNUSABLE, S.ATTR_UNUSABLE, "data segments nulled");
});

// ---------------------------------------------------------------------- control registers

test("long mode activation: EFER.LME + CR4.PAE + CR0.PG sets LMA; without PAE it is #GP", () => {
  const m = protectedMachine(0);
  const { cpu } = m;
  const s = cpu.s;
  m.w64(0x10000, 0x11000 | 7, 0);
  m.w64(0x11000, 0x12000 | 7, 0);
  m.w64(0x12000, 0x80 | 7, 0);
  cpu.sys.writeCr(3, 0x10000, 0);
  cpu.sys.wrmsr(0xc0000080, S.EFER_LME, 0);
  assert.deepEqual(faultOf(cpu, () => cpu.sys.writeCr(0, s[S.CR0] | S.CR0_PG, 0)), { vector: S.VEC_GP, error: 0 });
  cpu.sys.writeCr(4, S.CR4_PAE, 0);
  cpu.sys.writeCr(0, s[S.CR0] | S.CR0_PG, 0);
  assert.equal(s[S.EFER] & S.EFER_LMA, S.EFER_LMA);
  assert.ok(cpu.lma && !cpu.code64, "compatibility mode until CS is reloaded");
  assert.equal(cpu.pagingMode, 3);
  assert.deepEqual(faultOf(cpu, () => cpu.sys.wrmsr(0xc0000080, 0, 0)), { vector: S.VEC_GP, error: 0 }, "LME is frozen while paging");
  assert.deepEqual(faultOf(cpu, () => cpu.sys.writeCr(4, 0, 0)), { vector: S.VEC_GP, error: 0 }, "PAE cannot be cleared in long mode");
  // A far jump to a 64-bit code segment enters 64-bit mode.
  m.w64(0x1030, 0x0000ffff, 0x00af9b00);
  s[S.GDTR_LIMIT] = 0x37;
  cpu.sys.farJump(0x30, 0x5000, 0, 4);
  assert.ok(cpu.code64);
  assert.deepEqual(faultOf(cpu, () => cpu.sys.writeCr(0, s[S.CR0] & ~S.CR0_PG, 0)), { vector: S.VEC_GP, error: 0 }, "no paging off in 64-bit mode");
  assert.equal(cpu.sys.readCr(4), S.CR4_PAE);
});

test("CR0/CR4 reserved bits and consistency rules; CR8; DR4/DR5 aliases", () => {
  const m = protectedMachine(0);
  const { cpu } = m;
  assert.deepEqual(faultOf(cpu, () => cpu.sys.writeCr(0, S.CR0_PG, 0)), { vector: S.VEC_GP, error: 0 }, "PG without PE");
  assert.deepEqual(faultOf(cpu, () => cpu.sys.writeCr(0, S.CR0_PE | S.CR0_NW, 0)), { vector: S.VEC_GP, error: 0 }, "NW without CD");
  assert.deepEqual(faultOf(cpu, () => cpu.sys.writeCr(0, S.CR0_PE | (1 << 20), 0)), { vector: S.VEC_GP, error: 0 });
  assert.deepEqual(faultOf(cpu, () => cpu.sys.writeCr(4, S.CR4_VME, 0)), { vector: S.VEC_GP, error: 0 }, "VME is not offered");
  cpu.sys.writeCr(0, S.CR0_PE, 0);
  assert.equal(cpu.sys.readCr(0), S.CR0_PE | S.CR0_ET, "ET reads as 1");
  cpu.sys.writeCr(8, 5, 0);
  assert.equal(cpu.sys.readCr(8), 5);
  cpu.sys.writeDr(7, 0x3, 0);
  assert.equal(cpu.sys.readDr(5) >>> 0, 0x403, "DR5 aliases DR7 without CR4.DE");
  cpu.sys.writeCr(4, S.CR4_DE, 0);
  assert.deepEqual(faultOf(cpu, () => cpu.sys.readDr(4)), { vector: S.VEC_UD, error: 0 });
  cpu.sys.lmsw(0xe);
  assert.equal(cpu.sys.readCr(0) & 0xf, 0xf, "LMSW cannot clear PE");
  cpu.sys.clts();
  assert.equal(cpu.sys.smsw() & S.CR0_TS, 0);
});

// ---------------------------------------------------------------------- MSRs and fast system calls

test("MSRs: canonical checks, unknown MSRs, PAT validation, TSC writes through the offset", () => {
  const m = longMachine(0);
  const { cpu } = m;
  assert.deepEqual(faultOf(cpu, () => cpu.sys.wrmsr(0xc0000100, 0, 0x00010000)), { vector: S.VEC_GP, error: 0 });
  cpu.sys.wrmsr(0xc0000100, 0x1000, 0xffff8000 | 0);
  assert.equal(cpu.s[S.segWord(S.SEG_FS, S.SEG_BASE_HI)] >>> 0, 0xffff8000);
  assert.equal(cpu.sys.rdmsr(0xc0000100), 0x1000);
  assert.equal(cpu.hi >>> 0, 0xffff8000);
  assert.deepEqual(faultOf(cpu, () => cpu.sys.rdmsr(0x12345)), { vector: S.VEC_GP, error: 0 });
  assert.deepEqual(faultOf(cpu, () => cpu.sys.wrmsr(0x277, 0x02, 0)), { vector: S.VEC_GP, error: 0 }, "PAT type 2 is reserved");
  cpu.readTsc = () => 5_000_000_000;
  cpu.sys.wrmsr(0x10, 100, 1);
  cpu.readTsc = () => 5_000_000_010;
  assert.equal(cpu.sys.rdmsr(0x10), 110);
  assert.equal(cpu.hi, 1);
  cpu.sys.wrmsr(0xc0000102, 0xabc, 0);
  cpu.sys.swapgs();
  assert.equal(cpu.s[S.segWord(S.SEG_GS, S.SEG_BASE_LO)], 0xabc);
});

test("syscall/sysret round trip between CPL 3 (64-bit) and CPL 0", () => {
  const m = longMachine(3);
  const { cpu } = m;
  const s = cpu.s;
  // STAR: SYSCALL CS = 0x08 (SS 0x10); SYSRET base 0x18: CS32 = 0x1b, SS = 0x23, CS64 = 0x2b.
  cpu.sys.wrmsr(0xc0000081, 0, (0x18 << 16) | 0x08);
  cpu.sys.wrmsr(0xc0000082, 0x7000, 0xffff8000 | 0);
  cpu.sys.wrmsr(0xc0000084, S.F_IF | S.F_TF, 0);
  cpu.setEflags(S.F_IF | S.F_CF | 2);
  cpu.sys.syscall(0x5002, 0);
  assert.equal(cpu.cpl, 0);
  assert.ok(cpu.code64);
  assert.equal(cpu.eip, 0x7000);
  assert.equal(cpu.reg32(S.REG_ECX), 0x5002);
  assert.equal(s[22], S.F_IF | S.F_CF | 2, "R11 = old RFLAGS");
  assert.equal(cpu.getEflags() & S.F_IF, 0);
  assert.equal(s[S.segWord(S.SEG_SS, S.SEG_SEL)], 0x10);
  cpu.sys.sysret(8);
  assert.equal(cpu.cpl, 3);
  assert.ok(cpu.code64);
  assert.equal(s[S.segWord(S.SEG_CS, S.SEG_SEL)], 0x2b);
  assert.equal(s[S.segWord(S.SEG_SS, S.SEG_SEL)], 0x23);
  assert.equal(cpu.eip, 0x5002);
  assert.equal(cpu.getEflags() & S.F_IF, S.F_IF);
  // SYSRET to a non-canonical RCX is #GP(0) at CPL 0 (Intel).
  cpu.sys.syscall(0x5002, 0);
  cpu.setReg64(S.REG_ECX, 0, 0x00008000);
  assert.deepEqual(faultOf(cpu, () => cpu.sys.sysret(8)), { vector: S.VEC_GP, error: 0 });
  // SYSCALL outside 64-bit mode is #UD.
  const p = protectedMachine(3);
  assert.deepEqual(faultOf(p.cpu, () => p.cpu.sys.syscall(0, 0)), { vector: S.VEC_UD, error: 0 });
});

test("sysenter/sysexit in 32-bit protected mode", () => {
  const m = protectedMachine(3);
  const { cpu } = m;
  cpu.sys.wrmsr(0x174, 0x08, 0);
  cpu.sys.wrmsr(0x175, 0x9000, 0);
  cpu.sys.wrmsr(0x176, 0x7000, 0);
  cpu.sys.sysenter();
  assert.equal(cpu.cpl, 0);
  assert.equal(cpu.eip, 0x7000);
  assert.equal(cpu.reg32(S.REG_ESP), 0x9000);
  assert.equal(cpu.s[S.segWord(S.SEG_SS, S.SEG_SEL)], 0x10);
  cpu.setReg32(S.REG_EDX, 0x5555);
  cpu.setReg32(S.REG_ECX, 0x8888);
  cpu.sys.sysexit(4);
  assert.equal(cpu.cpl, 3);
  assert.equal(cpu.s[S.segWord(S.SEG_CS, S.SEG_SEL)], 0x1b);
  assert.equal(cpu.s[S.segWord(S.SEG_SS, S.SEG_SEL)], 0x23);
  assert.equal(cpu.eip, 0x5555);
  assert.equal(cpu.reg32(S.REG_ESP), 0x8888);
});

// ---------------------------------------------------------------------- descriptor tables, TSS, I/O bitmap

test("lgdt/sgdt with 32- and 64-bit bases; UMIP", () => {
  const m = protectedMachine(0);
  const { cpu } = m;
  m.dv.setUint16(0x6000, 0x1ff, true);
  m.w32(0x6002, 0x12345678);
  cpu.sys.lgdt(S.SEG_DS, 0x6000, 0, 4);
  assert.equal(cpu.s[S.GDTR_LIMIT], 0x1ff);
  assert.equal(cpu.s[S.GDTR_BASE_LO], 0x12345678);
  cpu.sys.lidt(S.SEG_DS, 0x6000, 0, 2);
  assert.equal(cpu.s[S.IDTR_BASE_LO], 0x345678, "16-bit operand size: 24-bit base");
  cpu.sys.sgdt(S.SEG_DS, 0x6100, 0, 4);
  assert.equal(m.dv.getUint16(0x6100, true), 0x1ff);
  assert.equal(m.r32(0x6102), 0x12345678);
  const l = longMachine(0);
  l.dv.setUint16(0x6000, 0xfff, true);
  l.w64(0x6002, 0x1000, 0xffff8000 | 0);
  l.cpu.sys.lidt(S.SEG_DS, 0x6000, 0, 8);
  assert.equal(l.cpu.s[S.IDTR_BASE_HI] >>> 0, 0xffff8000);
  l.cpu.sys.sidt(S.SEG_DS, 0x6100, 0, 8);
  assert.equal(l.r32(0x6106), 0xffff8000);
  const u = protectedMachine(3);
  u.cpu.s[S.CR4] |= S.CR4_UMIP;
  assert.deepEqual(faultOf(u.cpu, () => u.cpu.sys.sgdt(S.SEG_DS, 0x6100, 0, 4)), { vector: S.VEC_GP, error: 0 });
  assert.deepEqual(faultOf(u.cpu, () => u.cpu.sys.str()), { vector: S.VEC_GP, error: 0 });
});

test("ltr marks the TSS busy and a busy TSS cannot be loaded; lldt", () => {
  const m = protectedMachine(0);
  const { cpu } = m;
  m.w64(0x1028, (0x3000 << 16) | 0x67, 0x00008900); // available 32-bit TSS
  cpu.sys.ltr(0x28);
  assert.equal((m.r32(0x102c) >>> 8) & 0xf, 0xb, "busy in the GDT");
  assert.equal(cpu.s[S.segWord(S.SEG_TR, S.SEG_ATTR)] & 0xf, 0xb);
  assert.equal(cpu.sys.str(), 0x28);
  assert.deepEqual(faultOf(cpu, () => cpu.sys.ltr(0x28)), { vector: S.VEC_GP, error: 0x28 });
  m.w64(0x1030, (0x4000 << 16) | 0xf, 0x00008200); // LDT at 0x4000, two entries
  cpu.s[S.GDTR_LIMIT] = 0x37;
  cpu.sys.lldt(0x30);
  assert.equal(cpu.segBase[S.SEG_LDTR], 0x4000);
  m.w64(0x4008, 0x0000ffff, 0x00cff300);
  cpu.sys.loadSegment(S.SEG_FS, 0x0f); // LDT entry 1, RPL 3
  assert.equal(cpu.s[S.segWord(S.SEG_FS, S.SEG_SEL)], 0x0f);
  assert.deepEqual(faultOf(cpu, () => cpu.sys.loadSegment(S.SEG_FS, 0x17)), { vector: S.VEC_GP, error: 0x14 }, "beyond the LDT limit");
});

test("checkIoPermission: the TSS I/O bitmap when CPL > IOPL", () => {
  const m = protectedMachine(3);
  const { cpu } = m;
  cpu.s[S.segWord(S.SEG_TR, S.SEG_LIMIT)] = 0x68 + 0x100; // a bitmap for ports 0..0x7ff
  m.dv.setUint16(0x3000 + 102, 0x68, true);
  // Bitmap: everything allowed except port 0x3f9.
  m.ram[0x3068 + (0x3f9 >> 3)] = 1 << (0x3f9 & 7);
  cpu.sys.checkIoPermission(0x3f8, 1);
  assert.deepEqual(faultOf(cpu, () => cpu.sys.checkIoPermission(0x3f8, 2)), { vector: S.VEC_GP, error: 0 });
  assert.deepEqual(faultOf(cpu, () => cpu.sys.checkIoPermission(0x800, 1)), { vector: S.VEC_GP, error: 0 }, "beyond the TSS limit");
  cpu.sys.checkIoPermission(0x7f8, 1); // its two bitmap bytes are 0x167 and 0x168: inside
  cpu.setEflags(S.F_IOPL | 2);
  cpu.sys.checkIoPermission(0x3f9, 1); // CPL <= IOPL: no bitmap
});

test("POPF rules: IOPL only at CPL 0, IF only when CPL <= IOPL, VM/RF untouched, 16-bit form", () => {
  const m = protectedMachine(3);
  const { cpu } = m;
  cpu.setEflags(S.F_IF | 2);
  cpu.sys.writeEflagsFromPopf(S.F_IOPL | S.F_CF | S.F_AC | S.F_VM | S.F_RF, 4);
  assert.equal(cpu.getEflags(), (S.F_IF | S.F_CF | S.F_AC | 2) >>> 0, "IF kept (CPL > IOPL), IOPL/VM/RF untouched");
  const k = protectedMachine(0);
  k.cpu.sys.writeEflagsFromPopf(S.F_IOPL | S.F_IF | S.F_AC | 0xffc00000, 2);
  assert.equal(k.cpu.getEflags(), (S.F_IOPL | S.F_IF | 2) >>> 0, "16-bit POPF leaves AC; reserved bits stay clear");
});

test("INVLPG drops every 4 KiB fragment of a large page", () => {
  const m = protectedMachine(0);
  const { cpu } = m;
  twoLevel(m);
  cpu.s[S.CR4] |= S.CR4_PSE;
  m.w32(0x10000 + 2 * 4, 0x400000 | 0x80 | 0x63);
  m.w32(0x10000, 0x12000 | 7);
  for (let i = 0; i < 1024; i++) m.w32(0x12000 + i * 4, (i << 12) | 0x67);
  cpu.flushTlb(false);
  cpu.setReg32(S.REG_EAX, 0);
  // Touch two pages of the 4 MiB mapping through the TLB, remap it, INVLPG one address.
  cpu.rd32(S.SEG_DS, 0x800000, 0);
  cpu.rd32(S.SEG_DS, 0x9ff000, 0);
  m.w32(0x400000, 0x11111111);
  m.w32(0x5ff000, 0x22222222);
  m.w32(0x10000 + 2 * 4, 0 | 0x80 | 0x63); // now -> physical 0
  m.w32(0x1ff000, 0x33333333);
  cpu.sys.invlpg(0x800000, 0);
  assert.equal(cpu.rd32(S.SEG_DS, 0x9ff000, 0) >>> 0, 0x33333333, "the other fragment was dropped too");
});

test("CPUID: vendor, no x87/SSE yet, long mode features, address sizes, out-of-range leaves", () => {
  const m = protectedMachine(0);
  const { cpu } = m;
  const regs = () => [S.REG_EAX, S.REG_EBX, S.REG_ECX, S.REG_EDX].map((r) => cpu.reg32(r));
  cpu.sys.cpuid(0, 0);
  const [max, b, c, d] = regs();
  const vendor = Buffer.alloc(12);
  vendor.writeUInt32LE(b, 0);
  vendor.writeUInt32LE(d, 4);
  vendor.writeUInt32LE(c, 8);
  assert.equal(vendor.toString("latin1"), "TsxenVirtCPU");
  cpu.sys.cpuid(1, 0);
  const edx1 = cpu.reg32(S.REG_EDX);
  assert.equal(edx1 & ((1 << 0) | (1 << 23) | (1 << 24) | (1 << 25) | (1 << 26)), (1 << 0) | (1 << 23) | (1 << 24) | (1 << 25) | (1 << 26), "FPU MMX FXSR SSE SSE2");
  assert.equal(cpu.reg32(S.REG_ECX) & ((1 << 0) | (1 << 9) | (1 << 19) | (1 << 20) | (1 << 26) | (1 << 28)), (1 << 0) | (1 << 9) | (1 << 19) | (1 << 20), "SSE3 SSSE3 SSE4.1 SSE4.2, no XSAVE, no AVX");
  assert.equal(edx1 & (1 << 6), 1 << 6, "PAE");
  cpu.sys.cpuid(0x80000001, 0);
  assert.equal(cpu.reg32(S.REG_EDX) & ((1 << 29) | (1 << 20) | (1 << 11)), (1 << 29) | (1 << 20) | (1 << 11));
  cpu.sys.cpuid(0x80000008, 0);
  assert.equal(cpu.reg32(S.REG_EAX), 0x3024);
  cpu.sys.cpuid(max + 5, 0);
  const high = regs();
  cpu.sys.cpuid(max, 0);
  assert.deepEqual(high, regs(), "a leaf past the maximum returns the highest basic leaf");
  cpu.sys.cpuidPolicy.set(0x40000000, -1, { eax: 0x40000001, ebx: 1, ecx: 2, edx: 3 });
  cpu.sys.cpuid(0x40000000, 0);
  assert.deepEqual(regs(), [0x40000001, 1, 2, 3]);
});

// ---------------------------------------------------------------------- through the run loop

test("run loop: INT 0x80 to a handler and IRET back, in 32-bit protected mode", () => {
  const m = protectedMachine(0);
  const { cpu } = m;
  m.ram.set([0xcd, 0x80, 0xf4], 0x5000); // int 0x80; hlt
  m.ram.set([0xb8, 42, 0, 0, 0, 0xcf], 0x7000); // mov eax, 42; iret
  gate32(m, 0x80, 0x08, 0x7000);
  assert.equal(cpu.run(100), 2 /* EXIT_HLT */);
  assert.equal(cpu.reg32(S.REG_EAX), 42);
  assert.equal(cpu.reg32(S.REG_ESP), 0x8000);
  assert.equal(cpu.eip, 0x5003);
});

test("run loop: a user-mode #PF in 64-bit mode is delivered through the IDT and IRETQ returns to CPL 3", () => {
  const m = longMachine(3);
  const { cpu } = m;
  // User code: mov eax, [0x300000] (unmapped: #PF) ; int 0x81
  m.ram.set([0x8b, 0x04, 0x25, 0x00, 0x00, 0x30, 0x00, 0xcd, 0x81], 0x5000);
  // #PF handler (CPL 0): add rsp, 8 (error code); mov eax, 7; add qword [rsp], 7 (skip the load); iretq
  m.ram.set([0x48, 0x83, 0xc4, 0x08, 0xb8, 7, 0, 0, 0, 0x48, 0x83, 0x04, 0x24, 0x07, 0x48, 0xcf], 0x7000);
  m.ram.set([0xf4], 0x7100); // int 0x81 handler: hlt
  gate64(m, 14, 0x08, 0x7000);
  gate64(m, 0x81, 0x08, 0x7100, 0, 3);
  assert.equal(cpu.run(100), 2 /* EXIT_HLT */);
  assert.equal(cpu.reg32(S.REG_EAX), 7);
  assert.equal(cpu.s[S.CR2_LO], 0x300000);
  assert.equal(m.r32(0x9000 - 48), 4 | 0, "error code: user read, not present");
  assert.equal(cpu.cpl, 0);
  assert.equal(cpu.eip, 0x7101);
});

// ---------------------------------------------------------------------- hardware task switching

/** Adds a second 32-bit TSS (selector 0x38, at 0x4000) describing a CPL-0 task at EIP 0x6000. */
function secondTask(m: Machine): void {
  const { cpu } = m;
  m.w64(0x1038, (0x4000 << 16) | 0x67, 0x00008900);
  cpu.s[S.GDTR_LIMIT] = 0x3f;
  m.w32(0x4000 + 0x20, 0x6000); // EIP
  m.w32(0x4000 + 0x24, 2); // EFLAGS
  m.w32(0x4000 + 0x28, 0xaaaa); // EAX
  m.w32(0x4000 + 0x38, 0xa000); // ESP
  for (const [off, sel] of [[0x48, 0x10], [0x4c, 0x08], [0x50, 0x10], [0x54, 0x10], [0x58, 0x10], [0x5c, 0x10]]) m.w32(0x4000 + off, sel);
  m.w32(0x4000 + 0x60, 0); // no LDT
  m.w64(0x1028, (0x3000 << 16) | 0x67, 0x00008b00); // the current TSS is busy
}

test("task switch: CALL to a TSS saves the old task, links back, sets NT and busy; IRET returns", () => {
  const m = protectedMachine(0);
  const { cpu } = m;
  secondTask(m);
  cpu.setReg32(S.REG_EAX, 0x1234);
  cpu.sys.farCall(0x38, 0, 0, 4, 0x5007, 0);
  assert.equal(cpu.eip, 0x6000);
  assert.equal(cpu.reg32(S.REG_EAX), 0xaaaa);
  assert.equal(cpu.reg32(S.REG_ESP), 0xa000);
  assert.equal(cpu.s[S.segWord(S.SEG_TR, S.SEG_SEL)], 0x38);
  assert.equal(cpu.getEflags() & S.F_NT, S.F_NT, "NT set in the called task");
  assert.equal(m.r32(0x4000) & 0xffff, 0x28, "back link");
  assert.equal(m.r32(0x3020), 0x5007, "old task's EIP: the return address");
  assert.equal(m.r32(0x3028), 0x1234, "old task's EAX");
  assert.equal((m.r32(0x103c) >>> 8) & 0xf, 0xb, "new TSS busy");
  assert.equal((m.r32(0x102c) >>> 8) & 0xf, 0xb, "old TSS still busy (nested)");
  assert.equal(cpu.s[S.CR0] & S.CR0_TS, S.CR0_TS);
  // IRET with NT returns to the linked task.
  cpu.sys.iret(4, 0x6010);
  assert.equal(cpu.s[S.segWord(S.SEG_TR, S.SEG_SEL)], 0x28);
  assert.equal(cpu.eip, 0x5007);
  assert.equal(cpu.reg32(S.REG_EAX), 0x1234);
  assert.equal((m.r32(0x103c) >>> 8) & 0xf, 0x9, "the returning task is no longer busy");
  assert.equal(m.r32(0x4020), 0x6010, "its EIP saved after the IRET");
  assert.equal(m.r32(0x4024) & S.F_NT, 0, "and its NT cleared");
  // JMP to a busy TSS: #GP(selector).
  assert.deepEqual(faultOf(cpu, () => cpu.sys.farJump(0x28, 0, 0, 4, 0x5010)), { vector: S.VEC_GP, error: 0x28 });
  // Without the next EIP, a task-switching JMP is #GP (see the contract with compile.ts).
  assert.deepEqual(faultOf(cpu, () => cpu.sys.farJump(0x38, 0, 0, 4)), { vector: S.VEC_GP, error: 0x38 });
});

test("task switch through an IDT task gate: #DF handled in its own task, error code on its stack", () => {
  const m = protectedMachine(0);
  const { cpu } = m;
  secondTask(m);
  m.w64(0x2000 + 8 * 8, 0x38 << 16, 0x8500); // task gate -> TSS 0x38
  m.w64(0x2000 + 11 * 8, 0, 0x8e00); // #NP gate with a null selector: #GP while delivering -> #DF
  cpu.sys.deliverEvent(11, EV_HW_EXCEPTION, 0x18, true);
  assert.equal(cpu.s[S.segWord(S.SEG_TR, S.SEG_SEL)], 0x38);
  assert.equal(cpu.eip, 0x6000);
  assert.equal(cpu.reg32(S.REG_ESP), 0xa000 - 4);
  assert.equal(m.r32(0xa000 - 4), 0, "#DF error code pushed on the new task's stack");
  assert.equal(m.r32(0x3020), 0x5000, "the interrupted task's EIP");
  assert.equal(cpu.getEflags() & S.F_NT, S.F_NT);
});
