// The initial virtual layout of a PV domain, exactly as Xen's domU builder makes it
// (xen-pv-abi.md §2.3), and the function that writes it into machine memory.
//
// `planLayout` is pure: from the image's parameters, the domain's size and the module's length
// it computes where every item goes, as PFNs and virtual addresses. `writeInitialDomain`
// allocates the domain's frames (scattered: MFN ≠ PFN), loads the image, and writes the p2m
// list, start_info, the bootstrap page tables (with MFNs), the hypercall page and the module,
// and returns the register state the first vCPU starts with (§2.4).
//
// Invariants (this file owns them):
// - L1. Everything in [virtBase, mappedEnd) is mapped 1:1 onto pseudo-physical frames:
//       VA = virtBase + pfn × 4096. Items are page-aligned and follow each other in Xen's order:
//       kernel (at its p_paddr-derived place), module (unless MOD_START_PFN), p2m list (unless
//       INIT_P2M), start_info, xenstore page, console page, bootstrap page tables (top level
//       first, then each level down, each in address order), boot stack. After mappedEnd: the
//       module with MOD_START_PFN, then with INIT_P2M the p2m segment (the list, then the L3,
//       L2 and L1 tables that map it at INIT_P2M below the shared top-level table).
// - L2. mappedEnd is the first 4 MiB boundary strictly above (end of the page tables + boot
//       stack + 512 KiB); the page-table count is recomputed until it converges, because the
//       tables must map themselves (Xen's alloc_pgtables_pv loop).
// - L3. Every frame that holds a page table is mapped read-only (P|A) wherever the builder maps
//       it; every other page is P|RW|A; entries of upper levels are P|RW|A|D|U. So the domain can
//       pin its top-level table at once: no live page table is writable (the frame table's F3).
// - L4. A 32-bit PAE domain has an L2 under L3 slot 3 (0xC0000000–0xFFFFFFFF) even when
//       nothing of the image lives there: Xen puts its hole mappings (the M2P) in that L2. As
//       libxc does, the run of L2 tables is then extended from the first one up to slot 3 (a
//       mapping at 0 gets four L2s, for slots 0–3).
// - L5. Nothing is written outside the frames allocated to the domain, and every check happens
//       before the first frame is allocated: a layout that does not fit is an Error, with no
//       frames taken.

import { DOMID_XEN, FRAME_SIZE, type FrameAllocator } from "../../machine/frames.ts";
import type { MachineMemory } from "../../machine/memory.ts";
import type { ElfImage } from "./elf.ts";
import type { XenImageParams } from "./xen-notes.ts";

export const PAGE_SIZE = 4096;
const PAGE = 4096n;
/** Bytes of slack the builder leaves mapped after the boot stack. */
const SLACK_BYTES = 512n * 1024n;
const ALIGN_4M_MASK = (1n << 22n) - 1n;
const MAX_GUEST_CMDLINE = 1024;

// Page-table entry bits.
export const PTE_P = 0x1;
export const PTE_RW = 0x2;
export const PTE_US = 0x4;
export const PTE_A = 0x20;
export const PTE_D = 0x40;
export const L1_PROT = PTE_P | PTE_RW | PTE_A; // 0x23
export const L1_PROT_RO = PTE_P | PTE_A; // 0x21
export const UPPER_PROT = PTE_P | PTE_RW | PTE_A | PTE_D | PTE_US; // 0x67

// start_info.flags
export const SIF_PRIVILEGED = 1;
export const SIF_INITDOMAIN = 2;
export const SIF_MULTIBOOT_MOD = 4;
export const SIF_MOD_START_PFN = 8;
export const SIF_VIRT_P2M_4TOOLS = 16;

// vcpu_guest_context flags
export const VGCF_IN_KERNEL = 1 << 2;
export const VGCF_ONLINE = 1 << 5;
/** vm_assist type bit for the extended CR3 format (32-bit PAE guests). */
export const VMASST_TYPE_PAE_EXTENDED_CR3 = 3;

// Xen's flat selectors (public/arch-x86/xen-x86_{32,64}.h).
export const FLAT_RING1_CS = 0xe019;
export const FLAT_RING1_DS = 0xe021;
export const FLAT_KERNEL_CS64 = 0xe033;
export const FLAT_KERNEL_SS64 = 0xe02b;

/** A run of pseudo-physical frames and the virtual addresses they are mapped at. */
export interface Segment {
  pfn: number;
  pages: number;
  /** Virtual address of the first byte (for the kernel: where the image starts). */
  vstart: bigint;
  /** Virtual address just past the segment's last page. */
  vend: bigint;
}

/** The page tables of one level for one mapped area. */
export interface TableLevel {
  /** 1 = L1 ... 4 = L4 (the PAE top is level 3). */
  level: number;
  /** First PFN of this level's tables (consecutive). */
  pfn: number;
  count: number;
  /** Virtual address range the tables cover: [from, to] (inclusive, aligned to the coverage). */
  from: bigint;
  to: bigint;
}

export interface LayoutPlan {
  is64: boolean;
  guestType: XenImageParams["guestType"];
  nrPages: number;
  virtBase: bigint;
  kernel: Segment;
  /** Absent without a module; `mapped` false with MOD_START_PFN (mod_start is then a PFN). */
  module?: Segment & { mapped: boolean; bytes: number };
  /** The p2m list as the guest sees it (vstart = mfn_list). */
  p2m: Segment;
  /** With INIT_P2M: the whole p2m segment (list + its tables), for first_p2m_pfn/nr_p2m_frames. */
  p2mSegment?: Segment;
  /** With INIT_P2M: the tables that map the list at INIT_P2M (below the shared top level). */
  p2mTables: TableLevel[];
  startInfo: Segment;
  xenstore: Segment;
  console: Segment;
  /** The bootstrap page tables: vstart = pt_base (the top-level table), pages = nr_pt_frames. */
  pageTables: Segment;
  tables: TableLevel[];
  bootStack: Segment;
  /** End of the initial mapping (4 MiB aligned, L2). */
  mappedEnd: bigint;
  /** First PFN after everything the builder placed. */
  allocEnd: number;
  hypercallPage?: Segment;
  /** Bytes per p2m entry (4 for 32-bit guests, 8 for 64-bit). */
  p2mEntryBytes: number;
}

export interface LayoutRequest {
  params: XenImageParams;
  /** Pages of memory the domain gets (memory= in MiB × 256). */
  nrPages: number;
  /** Length in bytes of the module (ramdisk), if any. */
  moduleBytes?: number;
  /** Source name for error messages. */
  source?: string;
}

const pagesFor = (bytes: bigint): number => Number((bytes + PAGE - 1n) / PAGE);
const hex = (v: bigint | number): string => `0x${v.toString(16)}`;

interface Level {
  /** log2 of the bytes one table of this level covers. */
  coverShift: bigint;
}

/** Tables needed per level (top level first) to map [from, to] (inclusive). */
function countTables(
  levels: number,
  from: bigint,
  to: bigint,
): { level: number; count: number; from: bigint; to: bigint }[] {
  const out: { level: number; count: number; from: bigint; to: bigint }[] = [];
  for (let level = levels; level >= 1; level--) {
    if (level === levels) {
      out.push({ level, count: 1, from: 0n, to: levels === 4 ? (1n << 48n) - 1n : (1n << 32n) - 1n });
      continue;
    }
    const l: Level = { coverShift: 12n + 9n * BigInt(level) };
    const mask = (1n << l.coverShift) - 1n;
    const start = from & ~mask;
    const end = to | mask;
    out.push({ level, count: Number(((end - start) >> l.coverShift) + 1n), from: start, to: end });
  }
  return out;
}

/** Keeps 64-bit virtual addresses to the 48 bits the tables index. */
const VA48 = (1n << 48n) - 1n;

/**
 * Computes the initial layout (see the invariants above). Throws an Error naming the problem
 * when the image, the module and the bootstrap structures do not fit the domain's memory or the
 * guest's address space.
 */
export function planLayout(req: LayoutRequest): LayoutPlan {
  const { params, nrPages } = req;
  const source = req.source ?? "kernel";
  const fail = (what: string): never => {
    throw new Error(`${source}: ${what}`);
  };
  if (!Number.isInteger(nrPages) || nrPages <= 0)
    fail(`domain size of ${nrPages} pages is not a positive integer`);
  const is64 = params.is64;
  const levels = is64 ? 4 : 3;
  const virtBase = params.virtBase;
  if ((virtBase & (PAGE - 1n)) !== 0n) fail(`VIRT_BASE ${hex(virtBase)} is not page aligned`);
  if ((params.kernelStart & (PAGE - 1n)) !== 0n)
    fail(`image start ${hex(params.kernelStart)} is not page aligned`);

  // Allocation cursor, in PFNs from virtBase (VA = virtBase + pfn × 4096 for the whole area).
  const va = (pfn: number): bigint => virtBase + BigInt(pfn) * PAGE;
  const kernelPfn = Number((params.kernelStart - virtBase) / PAGE);
  const kernelPages = pagesFor(params.kernelEnd - params.kernelStart);
  let next = kernelPfn + kernelPages;
  const take = (pages: number): Segment => {
    const seg = { pfn: next, pages, vstart: va(next), vend: va(next + pages) };
    next += pages;
    return seg;
  };
  const kernel: Segment = { pfn: kernelPfn, pages: kernelPages, vstart: params.kernelStart, vend: va(next) };

  let module: LayoutPlan["module"];
  const moduleBytes = req.moduleBytes ?? 0;
  if (!Number.isInteger(moduleBytes) || moduleBytes < 0)
    fail(`module length ${moduleBytes} is not a byte count`);
  if (moduleBytes > 0 && !params.modStartPfn) {
    module = { ...take(pagesFor(BigInt(moduleBytes))), mapped: true, bytes: moduleBytes };
  }

  const p2mEntryBytes = is64 ? 8 : 4;
  const p2mListPages = pagesFor(BigInt(nrPages * p2mEntryBytes));
  // libxc ignores INIT_P2M unless it is page aligned and below VIRT_BASE.
  const initP2M =
    is64 && params.initP2M !== undefined && params.initP2M < virtBase && (params.initP2M & (PAGE - 1n)) === 0n
      ? params.initP2M
      : undefined;
  // Without INIT_P2M the list is part of the initial mapping, right here.
  let p2m: Segment | undefined = initP2M === undefined ? take(p2mListPages) : undefined;
  const startInfo = take(1);
  const xenstore = take(1);
  const console = take(1);

  // Bootstrap page tables: recount until the padded end they map covers them (L2).
  const tablesPfn = next;
  const extraPages = 1n + SLACK_BYTES / PAGE; // boot stack + slack
  const vaMask = is64 ? VA48 : 0xffff_ffffn;
  let pages = extraPages;
  let mappedEnd = 0n;
  let counts: ReturnType<typeof countTables> = [];
  let tableCount = 0;
  for (let round = 0; ; round++) {
    if (round > 16) fail("bootstrap page-table count does not converge");
    const tryEnd = (va(tablesPfn) + pages * PAGE) | ALIGN_4M_MASK; // inclusive, as Xen's round_up
    counts = countTables(levels, virtBase & vaMask, tryEnd & vaMask);
    if (!is64 && (tryEnd & vaMask) < 0xc000_0000n) {
      // L4: a PAE domain always has an L2 for L3 slot 3; Xen extends the L2 run up to it.
      const l2 = counts.find((c) => c.level === 2)!;
      l2.to = 0xffff_ffffn;
      l2.count = Number(((l2.to - l2.from) >> 30n) + 1n);
    }
    tableCount = counts.reduce((n, c) => n + c.count, 0);
    pages = BigInt(tableCount) + extraPages;
    if (va(tablesPfn) + pages * PAGE <= tryEnd + 1n) {
      mappedEnd = tryEnd + 1n;
      break;
    }
  }
  const pageTables = take(tableCount);
  const tables: TableLevel[] = [];
  {
    let pfn = pageTables.pfn;
    for (const c of counts) {
      tables.push({ level: c.level, pfn, count: c.count, from: c.from, to: c.to });
      pfn += c.count;
    }
  }
  const bootStack = take(1);

  // Everything the initial tables map is the domain's from here on (Xen's xc_dom_alloc_pad).
  next = Math.max(next, Number((mappedEnd - virtBase) / PAGE));
  if (params.modStartPfn && moduleBytes > 0) {
    // An unmapped module goes after the initial mapping; mod_start is its PFN.
    module = { ...take(pagesFor(BigInt(moduleBytes))), mapped: false, bytes: moduleBytes };
  }

  // With INIT_P2M, last of all: the list, then the tables that map it there (L3, L2, L1; the
  // top level is shared with the initial mapping).
  let p2mSegment: Segment | undefined;
  const p2mTables: TableLevel[] = [];
  if (initP2M !== undefined) {
    const from = initP2M & VA48;
    const to = (initP2M + BigInt(p2mListPages) * PAGE - 1n) & VA48;
    const p2mCounts = countTables(4, from, to).filter((c) => c.level < 4);
    const tablePages = p2mCounts.reduce((n, c) => n + c.count, 0);
    p2mSegment = take(p2mListPages + tablePages);
    p2m = {
      pfn: p2mSegment.pfn,
      pages: p2mListPages,
      vstart: initP2M,
      vend: initP2M + BigInt(p2mListPages) * PAGE,
    };
    let pfn = p2mSegment.pfn + p2mListPages;
    for (const c of p2mCounts) {
      const shared = tables.find((t) => t.level === c.level && c.from <= t.to && t.from <= c.to);
      if (shared) {
        fail(
          `INIT_P2M ${hex(initP2M)} needs level-${c.level} tables that the initial mapping also uses (not supported)`,
        );
      }
      p2mTables.push({ level: c.level, pfn, count: c.count, from: c.from, to: c.to });
      pfn += c.count;
    }
  }
  if (!p2m) throw new Error("internal: p2m list not placed");

  // Fit checks (L5): memory, and the 32-bit hypervisor hole.
  const needed = next;
  if (needed > nrPages) {
    fail(
      `the image and the initial layout need ${needed} pages (${Math.ceil((needed * PAGE_SIZE) / 2 ** 20)} MiB) but the domain has ${nrPages} (${Math.floor((nrPages * PAGE_SIZE) / 2 ** 20)} MiB)`,
    );
  }
  if (!is64 && params.hvStartLow !== undefined && mappedEnd > params.hvStartLow) {
    fail(
      `the initial mapping ends at ${hex(mappedEnd)}, inside the hypervisor hole at ${hex(params.hvStartLow)}`,
    );
  }
  if (is64 && virtBase + BigInt(nrPages) * PAGE > 1n << 64n)
    fail("the domain's memory does not fit above VIRT_BASE");

  let hypercallPage: Segment | undefined;
  if (params.hypercallPage !== undefined) {
    const offset = (params.hypercallPage - virtBase) / PAGE;
    if (offset >= BigInt(nrPages)) {
      fail(`HYPERCALL_PAGE ${hex(params.hypercallPage)} is beyond the domain's ${nrPages} pages`);
    }
    const pfn = Number(offset);
    hypercallPage = { pfn, pages: 1, vstart: va(pfn), vend: va(pfn + 1) };
  }

  return {
    is64,
    guestType: params.guestType,
    nrPages,
    virtBase,
    kernel,
    module,
    p2m,
    p2mSegment,
    p2mTables,
    startInfo,
    xenstore,
    console,
    pageTables,
    tables,
    bootStack,
    mappedEnd,
    allocEnd: next,
    hypercallPage,
    p2mEntryBytes,
  };
}

/** The hypercall page (§4.1): 0xCC everywhere, then one 32-byte stub per hypercall number. */
export function hypercallPageBytes(is64: boolean): Uint8Array {
  const page = new Uint8Array(PAGE_SIZE).fill(0xcc);
  const IRET = 23;
  for (let i = 0; i < 128; i++) {
    const at = i * 32;
    const imm = [i & 0xff, (i >>> 8) & 0xff, 0, 0];
    let stub: number[];
    if (is64) {
      stub =
        i === IRET
          ? [0x51, 0x41, 0x53, 0x50, 0xb8, ...imm, 0x0f, 0x05] // push rcx; push r11; push rax; mov $23,%eax; syscall
          : [0x51, 0x41, 0x53, 0xb8, ...imm, 0x0f, 0x05, 0x41, 0x5b, 0x59, 0xc3]; // push rcx; push r11; mov; syscall; pop r11; pop rcx; ret
    } else {
      stub =
        i === IRET
          ? [0x50, 0xb8, ...imm, 0xcd, 0x82] // push %eax; mov $23,%eax; int $0x82
          : [0xb8, ...imm, 0xcd, 0x82, 0xc3]; // mov $i,%eax; int $0x82; ret
    }
    page.set(stub, at);
  }
  return page;
}

/** What the hypervisor gives the builder besides the image. */
export interface BuildRequest {
  domid: number;
  plan: LayoutPlan;
  elf: ElfImage;
  params: XenImageParams;
  module?: Uint8Array;
  cmdline?: string;
  /** Machine address of the domain's shared_info page (a Xen-owned frame). */
  sharedInfoMaddr: number;
  storeEvtchn: number;
  consoleEvtchn: number;
  /** Extra start_info flags (SIF_PRIVILEGED, SIF_INITDOMAIN, SIF_MULTIBOOT_MOD). */
  flags?: number;
  allocator: FrameAllocator;
  memory: MachineMemory;
}

/** Register and vCPU state at the first instruction (§2.4). Addresses as bigint. */
export interface EntryState {
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
  /** The CR3 value (32p: the extended format pfn<<12 | pfn>>20). */
  cr3: number;
  kernelSs: number;
  kernelSp: bigint;
  dr6: number;
  dr7: number;
  /** VGCF_* flags of the vCPU. */
  vcpuFlags: number;
  /** vm_assist bits enabled from the start. */
  vmAssist: number;
  /** vcpu_info[0].evtchn_upcall_mask. */
  upcallMask: number;
}

export interface BuiltDomain {
  /** MFN of each PFN (the p2m); its length is nrPages. */
  p2m: Int32Array;
  /** MFN of the top-level table (pinned by the hypervisor before the domain runs). */
  topTableMfn: number;
  /** Every page-table frame the builder wrote, with its level (for typing and pinning). */
  pageTableFrames: { mfn: number; level: number }[];
  startInfoMfn: number;
  storeMfn: number;
  consoleMfn: number;
  entry: EntryState;
}

/**
 * Allocates the domain's frames and writes its initial memory. Checks everything first (L5); on
 * success the domain owns `plan.nrPages` frames and the M2P says which PFN each one is.
 */
export function writeInitialDomain(req: BuildRequest): BuiltDomain {
  const { plan, elf, params, memory, allocator } = req;
  const fail = (what: string): never => {
    throw new Error(`${elf.source}: ${what}`);
  };
  const cmdline = req.cmdline ?? "";
  const cmdBytes = new TextEncoder().encode(cmdline);
  if (cmdBytes.length >= MAX_GUEST_CMDLINE)
    fail(`command line of ${cmdBytes.length} bytes; at most ${MAX_GUEST_CMDLINE - 1} fit`);
  if ((req.module?.length ?? 0) !== (plan.module?.bytes ?? 0))
    fail("module length differs from the planned one");
  if (allocator.freeFrames < plan.nrPages) {
    fail(`out of memory: the domain needs ${plan.nrPages} frames, ${allocator.freeFrames} are free`);
  }
  if (req.domid < 0 || req.domid >= DOMID_XEN) fail(`domain id ${req.domid} cannot own memory`);

  const p2m = allocator.allocate(req.domid, plan.nrPages);
  const table = allocator.table;
  for (let pfn = 0; pfn < p2m.length; pfn++) {
    table.m2p[p2m[pfn]] = pfn;
    memory.fill(p2m[pfn] * FRAME_SIZE, FRAME_SIZE, 0);
  }
  const maddr = (pfn: number): number => p2m[pfn] * FRAME_SIZE;
  const virtBase = plan.virtBase;

  /** Copies bytes to pseudo-physical byte offset `at`, frame by frame. */
  const writePhys = (at: number, bytes: Uint8Array): void => {
    let done = 0;
    while (done < bytes.length) {
      const pos = at + done;
      const pfn = Math.floor(pos / PAGE_SIZE);
      const off = pos % PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - off, bytes.length - done);
      memory.u8.set(bytes.subarray(done, done + n), maddr(pfn) + off);
      done += n;
    }
  };

  // The image, by p_paddr (+ VIRT_BASE − PADDR_OFFSET); BSS is already zero.
  for (const ph of params.loadSegments) {
    const vaddr = BigInt.asUintN(64, ph.paddr + params.virtOffset);
    writePhys(Number(vaddr - virtBase), elf.bytes.subarray(ph.offset, ph.offset + ph.filesz));
  }
  if (plan.hypercallPage) writePhys(plan.hypercallPage.pfn * PAGE_SIZE, hypercallPageBytes(plan.is64));
  if (plan.module && req.module) writePhys(plan.module.pfn * PAGE_SIZE, req.module);

  // The p2m list.
  const w = plan.p2mEntryBytes;
  for (let pfn = 0; pfn < plan.nrPages; pfn++) {
    const at = plan.p2m.pfn * PAGE_SIZE + pfn * w;
    const a = maddr(Math.floor(at / PAGE_SIZE)) + (at % PAGE_SIZE);
    memory.writeU32(a, p2m[pfn]); // the high word of a 64-bit entry stays 0
  }

  // Page tables. A page-table frame is mapped read-only (L3).
  const pageTableFrames: { mfn: number; level: number }[] = [];
  const isTablePfn = new Set<number>();
  for (const t of [...plan.tables, ...plan.p2mTables]) {
    for (let i = 0; i < t.count; i++) {
      isTablePfn.add(t.pfn + i);
      pageTableFrames.push({ mfn: p2m[t.pfn + i], level: t.level });
    }
  }
  const writeEntry = (tablePfn: number, index: number, mfn: number, prot: number): void => {
    const a = maddr(tablePfn) + index * 8;
    memory.writeU32(a, (mfn * PAGE_SIZE + prot) >>> 0);
    memory.writeU32(a + 4, 0);
  };
  /** Links `va → pfn` through the given tables (top first), creating nothing: every table exists. */
  const levelTables = (set: TableLevel[]) => {
    const byLevel = new Map<number, TableLevel[]>();
    for (const t of set) byLevel.set(t.level, [...(byLevel.get(t.level) ?? []), t]);
    return byLevel;
  };
  const top = plan.tables[0];
  const mapArea = (areaTables: TableLevel[], from: bigint, pages: number, firstPfn: number): void => {
    const all = levelTables([top, ...areaTables.filter((t) => t.level !== top.level)]);
    const tableFor = (level: number, vaddr: bigint): number => {
      for (const t of all.get(level) ?? []) {
        if (vaddr >= t.from && vaddr <= t.to) {
          const shift = 12n + 9n * BigInt(level);
          return t.pfn + Number((vaddr - t.from) >> shift);
        }
      }
      return fail(`internal: no level-${level} table covers ${hex(vaddr)}`);
    };
    const vaMask = plan.is64 ? VA48 : 0xffffffffn;
    for (let i = 0; i < pages; i++) {
      const vaddr = (from + BigInt(i) * PAGE) & vaMask;
      const pfn = firstPfn + i;
      writeEntry(
        tableFor(1, vaddr),
        Number((vaddr >> 12n) & 511n),
        p2m[pfn],
        isTablePfn.has(pfn) ? L1_PROT_RO : L1_PROT,
      );
    }
    // Upper levels: link each table of level L to its parent.
    for (let level = 1; level < top.level; level++) {
      for (const t of all.get(level) ?? []) {
        const cover = 1n << (12n + 9n * BigInt(level));
        for (let k = 0; k < t.count; k++) {
          const vaddr = t.from + BigInt(k) * cover;
          const parentShift = 12n + 9n * BigInt(level);
          writeEntry(
            tableFor(level + 1, vaddr),
            Number((vaddr >> parentShift) & 511n),
            p2m[t.pfn + k],
            UPPER_PROT,
          );
        }
      }
    }
  };
  const mappedPages = Number((plan.mappedEnd - virtBase) / PAGE);
  mapArea(plan.tables.slice(1), virtBase, mappedPages, 0);
  if (plan.p2mSegment && plan.p2mTables.length) {
    mapArea(plan.p2mTables, plan.p2m.vstart, plan.p2m.pages, plan.p2m.pfn);
  }

  // start_info (§3.1).
  const si = maddr(plan.startInfo.pfn);
  const magic = new TextEncoder().encode(plan.guestType);
  memory.u8.set(magic, si);
  const put = (off32: number, off64: number, value: number | bigint): void => {
    const v = BigInt.asUintN(64, BigInt(value));
    if (plan.is64) {
      memory.writeU32(si + off64, Number(v & 0xffffffffn));
      memory.writeU32(si + off64 + 4, Number(v >> 32n));
    } else {
      memory.writeU32(si + off32, Number(v & 0xffffffffn));
    }
  };
  const put32 = (off32: number, off64: number, value: number): void => {
    memory.writeU32(si + (plan.is64 ? off64 : off32), value >>> 0);
  };
  let flags = req.flags ?? 0;
  let modStart: bigint = 0n;
  if (plan.module) {
    if (plan.module.mapped) modStart = plan.module.vstart;
    else {
      modStart = BigInt(plan.module.pfn);
      flags |= SIF_MOD_START_PFN;
    }
  }
  put(32, 32, plan.nrPages); // nr_pages
  put(36, 40, req.sharedInfoMaddr); // shared_info
  put32(40, 48, flags); // flags
  put(44, 56, p2m[plan.xenstore.pfn]); // store_mfn
  put32(48, 64, req.storeEvtchn); // store_evtchn
  put(52, 72, p2m[plan.console.pfn]); // console.domU.mfn
  put32(56, 80, req.consoleEvtchn); // console.domU.evtchn
  put(60, 88, plan.pageTables.vstart); // pt_base
  put(64, 96, plan.pageTables.pages); // nr_pt_frames
  put(68, 104, plan.p2m.vstart); // mfn_list
  put(72, 112, modStart); // mod_start
  put(76, 120, plan.module?.bytes ?? 0); // mod_len
  memory.u8.set(cmdBytes, si + (plan.is64 ? 128 : 80)); // cmd_line (NUL from the zeroed page)
  if (plan.p2mSegment) {
    put(1104, 1152, plan.p2mSegment.pfn); // first_p2m_pfn
    put(1108, 1160, plan.p2mSegment.pages); // nr_p2m_frames
  }

  const topMfn = p2m[top.pfn];
  const stackTop = plan.bootStack.vend;
  const entry: EntryState = plan.is64
    ? {
        rip: params.entry,
        rsp: stackTop,
        rsi: plan.startInfo.vstart,
        rflags: 0x200,
        cs: FLAT_KERNEL_CS64,
        ss: FLAT_KERNEL_SS64,
        ds: 0,
        es: 0,
        fs: 0,
        gs: 0,
        cr3: topMfn * PAGE_SIZE,
        kernelSs: FLAT_KERNEL_SS64,
        kernelSp: stackTop,
        dr6: 0xffff0ff0,
        dr7: 0x400,
        vcpuFlags: VGCF_IN_KERNEL | VGCF_ONLINE,
        vmAssist: 0,
        upcallMask: 1,
      }
    : {
        rip: params.entry,
        rsp: stackTop,
        rsi: plan.startInfo.vstart,
        rflags: 0x200,
        cs: FLAT_RING1_CS,
        ss: FLAT_RING1_DS,
        ds: FLAT_RING1_DS,
        es: FLAT_RING1_DS,
        fs: FLAT_RING1_DS,
        gs: FLAT_RING1_DS,
        cr3: ((topMfn * PAGE_SIZE) | (topMfn >>> 20)) >>> 0,
        kernelSs: FLAT_RING1_DS,
        kernelSp: stackTop,
        dr6: 0xffff0ff0,
        dr7: 0x400,
        vcpuFlags: VGCF_IN_KERNEL | VGCF_ONLINE,
        vmAssist:
          params.pae === "extended-cr3" || params.pae === "bimodal" ? 1 << VMASST_TYPE_PAE_EXTENDED_CR3 : 0,
        upcallMask: 1,
      };

  return {
    p2m,
    topTableMfn: topMfn,
    pageTableFrames,
    startInfoMfn: p2m[plan.startInfo.pfn],
    storeMfn: p2m[plan.xenstore.pfn],
    consoleMfn: p2m[plan.console.pfn],
    entry,
  };
}
