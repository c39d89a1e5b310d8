// A processor set up like a Linux user process on an x86-64 kernel, with the native
// harness's address space: the emulator half of the differential tester.
//
// - Long mode with 4-level paging, NX, CR0.WP and CR0.AM, like the host kernel. A "32-bit"
//   case runs in compatibility mode (CS.L=0, CS.D=1), which is exactly what a -m32 process
//   on a 64-bit kernel runs in; page-fault error codes then match the host's (I/D bit too).
// - CPL 3 with Linux's selectors: 64-bit CS=0x33 SS=0x2b DS=ES=FS=GS=0; 32-bit CS=0x23
//   SS=DS=ES=0x2b FS=0 GS=0x63. GDT and IDT are mapped supervisor-only high in the canonical
//   upper half, where user accesses can't reach them.
// - IDT gates are DPL 0 except #BP, #OF and 0x80 (DPL 3), so INT n raises #GP(n*8+2) as on
//   Linux. Every exception exits (exception bitmap all ones); nothing is ever delivered.
// - CODE is mapped user read/execute (not writable), DATA and STACK user read/write and
//   no-execute, at the harness's linear addresses. The two DATA pages are deliberately not
//   physically contiguous, so an access crossing them catches "next page = next frame" bugs.
import type { IoPorts, PhysicalMemory } from "../../../src/x86/bus.ts";
import { Cpu } from "../../../src/x86/cpu.ts";
import * as S from "../../../src/x86/state.ts";
import { CODE_ADDR, DATA_ADDR, type Mode, STACK_ADDR } from "./cases.ts";

export const RAM_BYTES = 0x40000;
const PML4 = 0x1000;
const PDPT_LOW = 0x2000;
const PD_LOW = 0x3000;
const PT_CODE = 0x4000;
const PT_DATA = 0x5000;
const PT_STACK = 0x6000;
const PDPT_HIGH = 0x9000;
const PD_HIGH = 0xa000;
const PT_HIGH = 0xb000;
export const CODE_PHYS = 0x10000;
/** Physical frames of the region's 4 KiB pages: DATA page 0, DATA page 1, STACK. */
export const REGION_FRAMES = [0x17000, 0x12000, 0x13000] as const;
const GDT_PHYS = 0x14000;
const IDT_PHYS = 0x15000;
/** Linear addresses of the GDT and IDT (upper half, supervisor only). */
const KERNEL_LIN_HI = 0xffff8000 | 0;
const GDT_LIN_LO = 0;
const IDT_LIN_LO = 0x1000;

const P = 1;
const RW = 2;
const US = 4;
const A = 0x20;
const D = 0x40;

export interface UserModeCpu {
  cpu: Cpu;
  ram: Uint8Array;
  mode: Mode;
  /** Puts segment registers, CPL, control state back to the user-mode baseline. */
  resetSegments(): void;
}

class FlatMemory implements PhysicalMemory {
  readonly u8: Uint8Array;
  readonly ramBytes: number;
  constructor(bytes: number) {
    this.u8 = new Uint8Array(new ArrayBuffer(bytes));
    this.ramBytes = bytes;
  }
  mmioRead(_addr: number, size: 1 | 2 | 4): number {
    return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
  }
  mmioWrite(): void {}
}

const noIo: IoPorts = {
  in: (_port, size) => (size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff),
  out: () => {},
};

function put32(ram: Uint8Array, pa: number, v: number): void {
  ram[pa] = v & 0xff;
  ram[pa + 1] = (v >>> 8) & 0xff;
  ram[pa + 2] = (v >>> 16) & 0xff;
  ram[pa + 3] = (v >>> 24) & 0xff;
}

function pte(ram: Uint8Array, table: number, index: number, frame: number, flags: number, nx = false): void {
  put32(ram, table + index * 8, (frame & ~0xfff) | flags);
  put32(ram, table + index * 8 + 4, nx ? 0x80000000 : 0);
}

/** A code/data segment descriptor (8 bytes) with base 0 and a 4 GiB limit. */
function descriptor(ram: Uint8Array, pa: number, access: number, flags: number): void {
  put32(ram, pa, 0x0000ffff);
  put32(ram, pa + 4, 0x000f0000 | (access << 8) | (flags << 20));
}

const ATTR_CODE64_USER = 0xb | S.ATTR_S | (3 << S.ATTR_DPL_SHIFT) | S.ATTR_P | S.ATTR_L | S.ATTR_G;
const ATTR_CODE32_USER = 0xb | S.ATTR_S | (3 << S.ATTR_DPL_SHIFT) | S.ATTR_P | S.ATTR_DB | S.ATTR_G;
const ATTR_DATA_USER = 0x3 | S.ATTR_S | (3 << S.ATTR_DPL_SHIFT) | S.ATTR_P | S.ATTR_DB | S.ATTR_G;
const ATTR_NULL = S.ATTR_UNUSABLE;

export function createUserModeCpu(mode: Mode): UserModeCpu {
  const memory = new FlatMemory(RAM_BYTES);
  const ram = memory.u8;
  // Page tables: low half for CODE/DATA/STACK, upper half for GDT/IDT.
  pte(ram, PML4, 0, PDPT_LOW, P | RW | US | A);
  pte(ram, PML4, 256, PDPT_HIGH, P | RW | A);
  pte(ram, PDPT_LOW, 0, PD_LOW, P | RW | US | A);
  pte(ram, PD_LOW, CODE_ADDR >>> 21, PT_CODE, P | RW | US | A);
  pte(ram, PD_LOW, DATA_ADDR >>> 21, PT_DATA, P | RW | US | A);
  pte(ram, PD_LOW, STACK_ADDR >>> 21, PT_STACK, P | RW | US | A);
  pte(ram, PT_CODE, (CODE_ADDR >>> 12) & 511, CODE_PHYS, P | US | A);
  pte(ram, PT_DATA, (DATA_ADDR >>> 12) & 511, REGION_FRAMES[0], P | RW | US | A | D, true);
  pte(ram, PT_DATA, ((DATA_ADDR >>> 12) & 511) + 1, REGION_FRAMES[1], P | RW | US | A | D, true);
  pte(ram, PT_STACK, (STACK_ADDR >>> 12) & 511, REGION_FRAMES[2], P | RW | US | A | D, true);
  pte(ram, PDPT_HIGH, 0, PD_HIGH, P | RW | A);
  pte(ram, PD_HIGH, 0, PT_HIGH, P | RW | A);
  pte(ram, PT_HIGH, 0, GDT_PHYS, P | RW | A | D, true);
  pte(ram, PT_HIGH, 1, IDT_PHYS, P | RW | A | D, true);
  ram.fill(0xcc, CODE_PHYS, CODE_PHYS + 4096);

  // GDT with Linux's x86-64 layout.
  descriptor(ram, GDT_PHYS + 0x08, 0x9b, 0xc); // kernel 32-bit CS
  descriptor(ram, GDT_PHYS + 0x10, 0x9b, 0xa); // kernel CS
  descriptor(ram, GDT_PHYS + 0x18, 0x93, 0xc); // kernel DS
  descriptor(ram, GDT_PHYS + 0x20, 0xfb, 0xc); // user 32-bit CS (0x23)
  descriptor(ram, GDT_PHYS + 0x28, 0xf3, 0xc); // user DS (0x2b)
  descriptor(ram, GDT_PHYS + 0x30, 0xfb, 0xa); // user CS (0x33)
  descriptor(ram, GDT_PHYS + 0x60, 0xf3, 0xc); // TLS (0x63)
  // IDT: 256 64-bit interrupt gates to an unmapped kernel address.
  for (let v = 0; v < 256; v++) {
    const dpl = v === 3 || v === 4 || v === 0x80 ? 3 : 0;
    const g = IDT_PHYS + v * 16;
    put32(ram, g, (0x10 << 16) | 0x2000);
    put32(ram, g + 4, (0x80 | (dpl << 5) | 0xe) << 8);
    put32(ram, g + 8, KERNEL_LIN_HI);
    put32(ram, g + 12, 0);
  }

  // TSXEN_JIT_THRESHOLD=1 runs every case through the block compiler (tests/cpu/difftest-jit.test.ts).
  const jitThreshold = Number(process.env.TSXEN_JIT_THRESHOLD ?? 0);
  const cpu = new Cpu({ memory, io: noIo, jitThreshold });
  const s = cpu.s;
  s[S.CR0] = S.CR0_PE | S.CR0_MP | S.CR0_ET | S.CR0_NE | S.CR0_WP | S.CR0_AM | S.CR0_PG;
  s[S.CR3_LO] = PML4;
  s[S.CR3_HI] = 0;
  s[S.CR4] = S.CR4_PAE | S.CR4_PGE | S.CR4_OSFXSR | S.CR4_OSXMMEXCPT;
  s[S.EFER] = S.EFER_SCE | S.EFER_LME | S.EFER_LMA | S.EFER_NXE;
  s[S.GDTR_BASE_LO] = GDT_LIN_LO;
  s[S.GDTR_BASE_HI] = KERNEL_LIN_HI;
  s[S.GDTR_LIMIT] = 16 * 8 - 1;
  s[S.IDTR_BASE_LO] = IDT_LIN_LO;
  s[S.IDTR_BASE_HI] = KERNEL_LIN_HI;
  s[S.IDTR_LIMIT] = 256 * 16 - 1;
  // A 64-bit TSS like Linux's, whose I/O map base lies past its limit, so that port I/O at
  // CPL 3 is #GP(0) as on the host (not a walk of a bitmap that isn't there).
  ram[GDT_PHYS + 0x800 + 0x66] = 0x68;
  ram[GDT_PHYS + 0x800 + 0x67] = 0x00;
  cpu.loadSegmentRaw(S.SEG_TR, 0x40, GDT_LIN_LO + 0x800, 0x67, 0x8b, KERNEL_LIN_HI);
  // No LDT, as for a Linux process (LLDT 0): a far transfer or segment load naming the LDT is
  // #GP(selector), not a read of a table at linear 0.
  cpu.loadSegmentRaw(S.SEG_LDTR, 0, 0, 0, 0);
  s[S.segWord(S.SEG_LDTR, S.SEG_ATTR)] |= S.ATTR_UNUSABLE;
  cpu.controls.exceptionBitmap = -1;
  cpu.controls.interceptSoftwareInt = false;
  cpu.controls.interceptSyscall = true;
  cpu.controls.interceptCpuid = true;
  cpu.controls.interceptMsr = true;
  cpu.controls.interceptRdtsc = true;
  cpu.controls.interceptIo = true;

  const resetSegments = () => {
    s[S.CPL] = 3;
    if (mode === 64) {
      cpu.loadSegmentRaw(S.SEG_CS, 0x33, 0, -1, ATTR_CODE64_USER);
      cpu.loadSegmentRaw(S.SEG_SS, 0x2b, 0, -1, ATTR_DATA_USER);
      for (const seg of [S.SEG_DS, S.SEG_ES, S.SEG_FS, S.SEG_GS]) cpu.loadSegmentRaw(seg, 0, 0, 0, ATTR_NULL);
    } else {
      cpu.loadSegmentRaw(S.SEG_CS, 0x23, 0, -1, ATTR_CODE32_USER);
      for (const seg of [S.SEG_SS, S.SEG_DS, S.SEG_ES]) cpu.loadSegmentRaw(seg, 0x2b, 0, -1, ATTR_DATA_USER);
      cpu.loadSegmentRaw(S.SEG_FS, 0, 0, 0, ATTR_NULL);
      cpu.loadSegmentRaw(S.SEG_GS, 0x63, 0, -1, ATTR_DATA_USER);
    }
    s[S.CPL] = 3;
    cpu.updateMode();
  };
  resetSegments();
  cpu.flushTlb(false);
  return { cpu, ram, mode, resetSegments };
}
