// Xen metadata of a PV kernel image, found the way Xen's libelf finds it (xen-pv-abi.md §2.1),
// and the checks and address arithmetic Xen applies before building the domain.
//
// Search order: the notes of every PT_NOTE program header (skipping any with p_offset 0); if
// none of them is owned by "Xen", the notes of every SHT_NOTE section; if still none, the
// legacy `__xen_guest` section, a NUL-terminated "KEY=VALUE,KEY=VALUE" string.
//
// Leniency, because real images need it:
// - only notes whose owner name is exactly "Xen" count; others (GNU Mach's notes say "name",
//   a macro bug) are counted in `foreignNotes` and otherwise ignored;
// - a note whose description runs past its segment, section or the end of the file (GRUB's
//   i386 PAE_MODE note claims 12 bytes and has 4) is read up to the end of the file; a note
//   whose 12-byte header does not fit in the file ends the walk;
// - strings end at the first NUL or at the end of the description (Linux's FEATURES note is
//   `.ascii`, with no NUL);
// - numbers are 1, 2, 4 or 8 bytes little-endian; another size reads as 0 (as libelf does),
//   with a warning.
// - at most MAX_TOTAL_NOTES notes are looked at (libelf's ELF_MAX_TOTAL_NOTE_COUNT), so a
//   hostile note region cannot make the walk slow.
// Differences from libelf, on purpose: legacy names and values are not truncated to libelf's
// 31/127-byte buffers; an image with notes of other owners only and no __xen_guest is reported
// as "not a Xen PV kernel" (libelf reaches its LOADER check and reports that instead).

import {
  type ElfImage,
  EM_386,
  EM_X86_64,
  isLoadable,
  type ProgramHeader,
  PT_NOTE,
  rangeInFile,
  readCString,
  SHT_NOTE,
} from "./elf.ts";

export const XEN_ELFNOTE_INFO = 0;
export const XEN_ELFNOTE_ENTRY = 1;
export const XEN_ELFNOTE_HYPERCALL_PAGE = 2;
export const XEN_ELFNOTE_VIRT_BASE = 3;
export const XEN_ELFNOTE_PADDR_OFFSET = 4;
export const XEN_ELFNOTE_XEN_VERSION = 5;
export const XEN_ELFNOTE_GUEST_OS = 6;
export const XEN_ELFNOTE_GUEST_VERSION = 7;
export const XEN_ELFNOTE_LOADER = 8;
export const XEN_ELFNOTE_PAE_MODE = 9;
export const XEN_ELFNOTE_FEATURES = 10;
export const XEN_ELFNOTE_BSD_SYMTAB = 11;
export const XEN_ELFNOTE_HV_START_LOW = 12;
export const XEN_ELFNOTE_L1_MFN_VALID = 13;
export const XEN_ELFNOTE_SUSPEND_CANCEL = 14;
export const XEN_ELFNOTE_INIT_P2M = 15;
export const XEN_ELFNOTE_MOD_START_PFN = 16;
export const XEN_ELFNOTE_SUPPORTED_FEATURES = 17;
export const XEN_ELFNOTE_PHYS32_ENTRY = 18;
export const XEN_ELFNOTE_PHYS32_RELOC = 19;

export const XEN_ELFNOTE_NAMES: readonly string[] = [
  "INFO",
  "ENTRY",
  "HYPERCALL_PAGE",
  "VIRT_BASE",
  "PADDR_OFFSET",
  "XEN_VERSION",
  "GUEST_OS",
  "GUEST_VERSION",
  "LOADER",
  "PAE_MODE",
  "FEATURES",
  "BSD_SYMTAB",
  "HV_START_LOW",
  "L1_MFN_VALID",
  "SUSPEND_CANCEL",
  "INIT_P2M",
  "MOD_START_PFN",
  "SUPPORTED_FEATURES",
  "PHYS32_ENTRY",
  "PHYS32_RELOC",
];

/** XENFEAT_* names from public/features.h, by bit number. */
export const XENFEAT_NAMES: readonly string[] = [
  "writable_page_tables",
  "writable_descriptor_tables",
  "auto_translated_physmap",
  "supervisor_mode_kernel",
  "pae_pgdir_above_4gb",
  "mmu_pt_update_preserve_ad",
  "highmem_assist",
  "gnttab_map_avail_bits",
  "hvm_callback_vector",
  "hvm_safe_pvclock",
  "hvm_pirqs",
  "dom0",
  "grant_map_identity",
  "memory_op_vnode_supported",
  "ARM_SMCCC_supported",
  "linux_rsdp_unrestricted",
  "not_direct_mapped",
  "direct_mapped",
  "runstate_phys_area",
  "vcpu_time_phys_area",
  "dm_msix_all_writes",
];
/** The feature names libelf's FEATURES parser knows (others are ignored, or refused if required). */
const LIBELF_FEATURE_BITS: readonly number[] = [0, 1, 2, 3, 4, 8, 11];
export const XENFEAT_writable_page_tables = 0;
export const XENFEAT_pae_pgdir_above_4gb = 4;

/**
 * Features a PV guest of tsxen may require ("!name"). writable_page_tables is harmless for PV
 * (Xen enables the writable-pagetable assist when asked, xen-pv-abi.md §2.1).
 */
export const PV_REQUIRABLE_FEATURES = (1 << 0) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7);

export type PaeMode = "no" | "yes" | "extended-cr3" | "bimodal";
export type MetadataSource = "PT_NOTE" | "SHT_NOTE" | "__xen_guest" | "none";

export interface XenNote {
  type: number;
  /** XEN_ELFNOTE_ name, or "unknown(N)". */
  typeName: string;
  origin: "PT_NOTE" | "SHT_NOTE";
  /** File offset of the note header. */
  offset: number;
  /** The description size the note declares. */
  descsz: number;
  /** The description bytes that exist (clamped to the file). */
  desc: Uint8Array;
}

export interface XenMetadata {
  source: MetadataSource;
  /** The Xen-owned notes used, in file order. */
  notes: XenNote[];
  /** Notes seen with another owner (ignored). */
  foreignNotes: number;
  /** The legacy string, when it was the source. */
  legacy?: string;
  legacyPairs: { key: string; value: string }[];

  entry?: bigint;
  /** Virtual address of the hypercall page (legacy page numbers already converted). */
  hypercallPage?: bigint;
  virtBase?: bigint;
  paddrOffset?: bigint;
  xenVersion?: string;
  guestOs?: string;
  guestVersion?: string;
  loader?: string;
  info?: string;
  pae: PaeMode;
  /** FEATURES: XENFEAT bits the guest supports, and those it requires ("!name"). */
  featuresSupported: number;
  featuresRequired: number;
  /** SUPPORTED_FEATURES note (a bitmap OR'ed into the supported features). */
  supportedFeaturesNote?: number;
  bsdSymtab: boolean;
  hvStartLow?: bigint;
  l1MfnValid?: { mask: bigint; value: bigint }[];
  suspendCancel?: bigint;
  initP2M?: bigint;
  modStartPfn?: bigint;
  phys32Entry?: bigint;
  warnings: string[];
}

const NOTE_HEADER = 12;
/** libelf stops looking after this many notes in all (ELF_MAX_TOTAL_NOTE_COUNT). */
export const MAX_TOTAL_NOTES = 2048;
const align4 = (n: number): number => n + ((4 - (n % 4)) % 4);

function emptyMetadata(): XenMetadata {
  return {
    source: "none",
    notes: [],
    foreignNotes: 0,
    legacyPairs: [],
    pae: "no",
    featuresSupported: 0,
    featuresRequired: 0,
    bsdSymtab: false,
    warnings: [],
  };
}

/** Walks the notes in [start, end) of the file; returns the Xen-owned ones. */
function walkNotes(
  bytes: Uint8Array,
  start: number,
  end: number,
  origin: "PT_NOTE" | "SHT_NOTE",
  meta: XenMetadata,
): XenNote[] {
  const found: XenNote[] = [];
  const seen = () => meta.notes.length + meta.foreignNotes + found.length;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = start;
  while (at < end) {
    if (!rangeInFile(at, NOTE_HEADER, bytes.length)) break;
    if (seen() >= MAX_TOTAL_NOTES) {
      meta.warnings.push(`more than ${MAX_TOTAL_NOTES} ELF notes: the rest are ignored`);
      break;
    }
    const namesz = view.getUint32(at, true);
    const descsz = view.getUint32(at + 4, true);
    const type = view.getUint32(at + 8, true);
    const nameAt = at + NOTE_HEADER;
    const descAt = nameAt + align4(namesz);
    const owner = readCString(bytes, nameAt, nameAt + namesz);
    if (owner === "Xen" && namesz >= 4) {
      const descEnd = Math.min(descAt + descsz, bytes.length);
      const desc = descAt < descEnd ? bytes.subarray(descAt, descEnd) : new Uint8Array(0);
      const typeName = XEN_ELFNOTE_NAMES[type] ?? `unknown(${type})`;
      if (desc.length < descsz) {
        meta.warnings.push(
          `${origin} note ${typeName} at 0x${at.toString(16)}: descsz ${descsz} but only ${desc.length} bytes in the file`,
        );
      }
      found.push({ type, typeName, origin, offset: at, descsz, desc });
    } else {
      meta.foreignNotes++;
    }
    at = descAt + align4(descsz); // always > at: the header alone is 12 bytes
  }
  return found;
}

function noteString(desc: Uint8Array): string {
  return readCString(desc, 0, desc.length);
}

function noteNumber(note: XenNote, meta: XenMetadata): bigint {
  const d = note.desc;
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  switch (note.descsz) {
    case 1:
      if (d.length >= 1) return BigInt(d[0]);
      break;
    case 2:
      if (d.length >= 2) return BigInt(v.getUint16(0, true));
      break;
    case 4:
      if (d.length >= 4) return BigInt(v.getUint32(0, true));
      break;
    case 8:
      if (d.length >= 8) return v.getBigUint64(0, true);
      break;
  }
  meta.warnings.push(
    `note ${note.typeName}: a number of ${note.descsz} bytes (${d.length} present) reads as 0`,
  );
  return 0n;
}

/** Parses a FEATURES string ("a|!b|c") into the metadata's bitmaps. */
export function parseFeatures(text: string, meta: XenMetadata): void {
  for (const raw of text.split("|")) {
    const required = raw.startsWith("!");
    const name = required ? raw.slice(1) : raw;
    if (name === "") continue;
    const bit = XENFEAT_NAMES.indexOf(name);
    if (bit < 0 || !LIBELF_FEATURE_BITS.includes(bit)) {
      if (required) meta.featuresRequired |= 0x8000_0000; // marks "unknown required", see checkXenImage      meta.warnings.push(`FEATURES: feature "${name}" is not one Xen's loader knows${required ? " (required)" : ""}`);
      continue;
    }
    meta.featuresSupported |= 1 << bit;
    if (required) meta.featuresRequired |= 1 << bit;
  }
}

function applyNote(note: XenNote, meta: XenMetadata, wordBytes: number): void {
  switch (note.type) {
    case XEN_ELFNOTE_INFO:
      meta.info = noteString(note.desc);
      break;
    case XEN_ELFNOTE_ENTRY:
      meta.entry = noteNumber(note, meta);
      break;
    case XEN_ELFNOTE_HYPERCALL_PAGE:
      meta.hypercallPage = noteNumber(note, meta);
      break;
    case XEN_ELFNOTE_VIRT_BASE:
      meta.virtBase = noteNumber(note, meta);
      break;
    case XEN_ELFNOTE_PADDR_OFFSET:
      meta.paddrOffset = noteNumber(note, meta);
      break;
    case XEN_ELFNOTE_XEN_VERSION:
      meta.xenVersion = noteString(note.desc);
      break;
    case XEN_ELFNOTE_GUEST_OS:
      meta.guestOs = noteString(note.desc);
      break;
    case XEN_ELFNOTE_GUEST_VERSION:
      meta.guestVersion = noteString(note.desc);
      break;
    case XEN_ELFNOTE_LOADER:
      meta.loader = noteString(note.desc);
      break;
    case XEN_ELFNOTE_PAE_MODE: {
      const s = noteString(note.desc);
      if (s === "yes") meta.pae = "extended-cr3";
      if (s.includes("bimodal")) meta.pae = "bimodal";
      break;
    }
    case XEN_ELFNOTE_FEATURES:
      parseFeatures(noteString(note.desc), meta);
      break;
    case XEN_ELFNOTE_BSD_SYMTAB:
      if (noteString(note.desc) === "yes") meta.bsdSymtab = true;
      break;
    case XEN_ELFNOTE_HV_START_LOW:
      meta.hvStartLow = noteNumber(note, meta);
      break;
    case XEN_ELFNOTE_L1_MFN_VALID: {
      // Pairs of {mask, value}, each a word of the guest's width.
      const d = note.desc;
      const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
      const read = (at: number) =>
        wordBytes === 8 ? v.getBigUint64(at, true) : BigInt(v.getUint32(at, true));
      const pairs: { mask: bigint; value: bigint }[] = [];
      for (let at = 0; at + 2 * wordBytes <= d.length; at += 2 * wordBytes) {
        pairs.push({ mask: read(at), value: read(at + wordBytes) });
      }
      meta.l1MfnValid = pairs;
      break;
    }
    case XEN_ELFNOTE_SUSPEND_CANCEL:
      meta.suspendCancel = noteNumber(note, meta);
      break;
    case XEN_ELFNOTE_INIT_P2M:
      meta.initP2M = noteNumber(note, meta);
      break;
    case XEN_ELFNOTE_MOD_START_PFN:
      meta.modStartPfn = noteNumber(note, meta);
      break;
    case XEN_ELFNOTE_SUPPORTED_FEATURES: {
      const bits = Number(BigInt.asUintN(32, noteNumber(note, meta)));
      meta.supportedFeaturesNote = bits;
      meta.featuresSupported |= bits;
      break;
    }
    case XEN_ELFNOTE_PHYS32_ENTRY:
      meta.phys32Entry = noteNumber(note, meta);
      break;
    case XEN_ELFNOTE_PHYS32_RELOC:
      break; // PVH only
    default:
      meta.warnings.push(`note ${note.typeName}: unknown Xen note type, ignored`);
  }
}

/**
 * C's strtoull(text, NULL, 0): leading spaces, an optional sign, then 0x/0X hex, 0 octal or
 * decimal, as far as the digits go; no digits gives 0; overflow saturates at 2^64 − 1.
 */
export function strtoull0(text: string): bigint {
  let i = 0;
  while (i < text.length && /\s/.test(text[i])) i++;
  let negative = false;
  if (text[i] === "+" || text[i] === "-") negative = text[i++] === "-";
  let base = 10n;
  if (
    text[i] === "0" &&
    (text[i + 1] === "x" || text[i + 1] === "X") &&
    /[0-9a-fA-F]/.test(text[i + 2] ?? "")
  ) {
    base = 16n;
    i += 2;
  } else if (text[i] === "0") {
    base = 8n;
  }
  let value = 0n;
  const max = (1n << 64n) - 1n;
  for (; i < text.length; i++) {
    const digit = Number.parseInt(text[i], 16);
    if (Number.isNaN(digit) || BigInt(digit) >= base) break;
    value = value * base + BigInt(digit);
    if (value > max) return max;
  }
  return negative ? BigInt.asUintN(64, -value) : value;
}

const LEGACY_KEYS = new Set([
  "GUEST_OS",
  "GUEST_VER",
  "XEN_VER",
  "LOADER",
  "PAE",
  "BSD_SYMTAB",
  "VIRT_BASE",
  "VIRT_ENTRY",
  "ELF_PADDR_OFFSET",
  "HYPERCALL_PAGE",
  "FEATURES",
]);

function applyLegacy(text: string, meta: XenMetadata): void {
  meta.legacy = text;
  let hypercallPageNumber: bigint | undefined;
  for (const item of text.split(",")) {
    if (item === "") continue;
    const eq = item.indexOf("=");
    const key = eq < 0 ? item : item.slice(0, eq);
    const value = eq < 0 ? "" : item.slice(eq + 1);
    meta.legacyPairs.push({ key, value });
    if (!LEGACY_KEYS.has(key)) {
      meta.warnings.push(`__xen_guest: key ${key} is not one Xen reads, ignored`);
      continue;
    }
    switch (key) {
      case "GUEST_OS":
        meta.guestOs = value;
        break;
      case "GUEST_VER":
        meta.guestVersion = value;
        break;
      case "XEN_VER":
        meta.xenVersion = value;
        break;
      case "LOADER":
        meta.loader = value;
        break;
      case "PAE":
        if (value === "yes[extended-cr3]") meta.pae = "extended-cr3";
        else if (value.startsWith("yes")) meta.pae = "yes";
        break;
      case "BSD_SYMTAB":
        meta.bsdSymtab = true;
        break;
      case "VIRT_BASE":
        meta.virtBase = strtoull0(value);
        break;
      case "VIRT_ENTRY":
        meta.entry = strtoull0(value);
        break;
      case "ELF_PADDR_OFFSET":
        meta.paddrOffset = strtoull0(value);
        break;
      case "HYPERCALL_PAGE":
        hypercallPageNumber = strtoull0(value);
        break;
      case "FEATURES":
        parseFeatures(value, meta);
        break;
    }
  } // In the legacy form HYPERCALL_PAGE is a page number relative to VIRT_BASE (added once the
  // whole string is read, so the order of the keys does not matter).
  if (hypercallPageNumber !== undefined) {
    meta.hypercallPage = BigInt.asUintN(64, (hypercallPageNumber << 12n) + (meta.virtBase ?? 0n));
  }
}

/** Finds the Xen metadata of an image (no checks; see `checkXenImage`). */
export function findXenMetadata(elf: ElfImage): XenMetadata {
  const meta = emptyMetadata();
  const wordBytes = elf.elfClass === 64 ? 8 : 4;
  const bytes = elf.bytes;

  const fromSegments: XenNote[] = [];
  for (const ph of elf.programHeaders) {
    if (ph.type !== PT_NOTE || ph.offset === 0) continue;
    const end = Math.min(ph.offset + ph.filesz, bytes.length);
    fromSegments.push(...walkNotes(bytes, ph.offset, end, "PT_NOTE", meta));
  }
  let notes = fromSegments;
  if (notes.length > 0) {
    meta.source = "PT_NOTE";
  } else {
    const fromSections: XenNote[] = [];
    for (const sh of elf.sectionHeaders) {
      if (sh.type !== SHT_NOTE) continue;
      const end = Math.min(sh.offset + sh.size, bytes.length);
      fromSections.push(...walkNotes(bytes, sh.offset, end, "SHT_NOTE", meta));
    }
    notes = fromSections;
    if (notes.length > 0) meta.source = "SHT_NOTE";
  }
  meta.notes = notes;
  for (const note of notes) applyNote(note, meta, wordBytes);

  if (notes.length === 0) {
    const section = elf.sectionHeaders.find((sh) => sh.name === "__xen_guest");
    if (section?.inFile) {
      meta.source = "__xen_guest";
      applyLegacy(readCString(bytes, section.offset, section.offset + section.size), meta);
    }
  }
  return meta;
}

/** The parameters of a PV image after Xen's checks and defaults (libelf's dominfo). */
export interface XenImageParams {
  is64: boolean;
  /** start_info.magic and the capability string the guest needs. */
  guestType: "xen-3.0-x86_32p" | "xen-3.0-x86_64";
  virtBase: bigint;
  paddrOffset: bigint;
  /** VIRT_BASE − PADDR_OFFSET: add to p_paddr to get a segment's virtual address. */
  virtOffset: bigint;
  /** Lowest and highest virtual address of the loaded image (min p_paddr, max p_paddr+p_memsz). */
  kernelStart: bigint;
  kernelEnd: bigint;
  entry: bigint;
  hypercallPage?: bigint;
  initP2M?: bigint;
  /** The guest takes an unmapped, PFN-addressed initrd (SIF_MOD_START_PFN). */
  modStartPfn: boolean;
  pae: PaeMode;
  /** The hypervisor hole starts here for a 32-bit guest (HV_START_LOW may lower 0xF5800000). */
  hvStartLow?: bigint;
  loadSegments: ProgramHeader[];
  meta: XenMetadata;
}

/** HYPERVISOR_VIRT_START for 32-bit PAE guests on a 64-bit Xen (the compat M2P's start). */
export const HYPERVISOR_COMPAT_VIRT_START = 0xf580_0000n;

const hex = (v: bigint): string => `0x${v.toString(16)}`;

/**
 * Applies Xen's checks and defaults (libelf's note check and address calculation) and returns
 * the image's parameters, or throws an Error naming the image and the problem.
 */
export function checkXenImage(elf: ElfImage, meta: XenMetadata = findXenMetadata(elf)): XenImageParams {
  const fail = (what: string): never => {
    throw new Error(`${elf.source}: ${what}`);
  };
  const is64 = elf.elfClass === 64;
  if (is64 && elf.machine !== EM_X86_64)
    fail(`ELF64 image for machine ${elf.machine}, not x86-64 (${EM_X86_64})`);
  if (!is64 && elf.machine !== EM_386) fail(`ELF32 image for machine ${elf.machine}, not i386 (${EM_386})`);
  if (meta.source === "none") {
    fail(
      `not a Xen PV kernel: no "Xen" ELF notes and no __xen_guest section${meta.foreignNotes ? ` (${meta.foreignNotes} notes of other owners ignored)` : ""}`,
    );
  }
  const loader = meta.loader ?? "";
  const guestOs = meta.guestOs ?? "";
  if (!loader.startsWith("generic") && !guestOs.startsWith("linux")) {
    fail(
      `LOADER is "${loader}" and GUEST_OS is "${guestOs}": Xen loads only images for the "generic" loader or Linux`,
    );
  }
  const xenVersion = meta.xenVersion ?? "";
  if (!xenVersion.startsWith("xen-3.0")) fail(`XEN_VERSION is "${xenVersion}", not "xen-3.0"`);
  if (!is64 && meta.pae === "no") {
    fail("32-bit kernel without PAE: only 32-bit PAE PV guests (xen-3.0-x86_32p) are supported");
  }
  if (meta.featuresRequired & 0x8000_0000) fail("FEATURES requires a feature Xen does not know");
  const missing = meta.featuresRequired & ~PV_REQUIRABLE_FEATURES;
  if (missing) {
    const names = XENFEAT_NAMES.filter((_, bit) => missing & (1 << bit));
    fail(`FEATURES requires ${names.join(", ")}, which a PV domain of tsxen does not offer`);
  }

  const loadSegments = elf.programHeaders.filter(isLoadable);
  if (loadSegments.length === 0) fail("no loadable (PT_LOAD) segment");
  let pstart = -1n;
  let pend = 0n;
  for (const ph of loadSegments) {
    const end = ph.paddr + ph.memsz;
    if (pstart < 0n || ph.paddr < pstart) pstart = ph.paddr;
    if (end > pend) pend = end;
  }
  if (meta.paddrOffset !== undefined && meta.virtBase === undefined)
    fail("PADDR_OFFSET is set but VIRT_BASE is not");
  const virtBase = meta.virtBase ?? 0n;
  // Legacy images default the paddr offset to VIRT_BASE (their p_paddr are virtual), notes to 0.
  const paddrOffset = meta.paddrOffset ?? (meta.source === "__xen_guest" ? virtBase : 0n);
  const virtOffset = BigInt.asUintN(64, virtBase - paddrOffset);
  const kernelStart = BigInt.asUintN(64, pstart + virtOffset);
  const kernelEnd = BigInt.asUintN(64, pend + virtOffset);
  const entry = meta.entry ?? elf.entry;

  if (kernelStart > kernelEnd) fail(`image start ${hex(kernelStart)} is above its end ${hex(kernelEnd)}`);
  if (entry < kernelStart || entry > kernelEnd) {
    fail(`entry ${hex(entry)} lies outside the image [${hex(kernelStart)}, ${hex(kernelEnd)}]`);
  }
  if (virtBase > kernelStart) fail(`VIRT_BASE ${hex(virtBase)} is above the image start ${hex(kernelStart)}`);
  if (meta.initP2M !== undefined) {
    if (!is64) fail("INIT_P2M is for 64-bit guests only");
    if (meta.initP2M >= kernelStart && meta.initP2M < kernelEnd) {
      fail(`INIT_P2M ${hex(meta.initP2M)} lies inside the image [${hex(kernelStart)}, ${hex(kernelEnd)})`);
    }
  } // Xen writes the hypercall page into the frame of PFN (HYPERCALL_PAGE − VIRT_BASE) >> 12,
  // whatever lies there; the layout checks that the domain has that PFN.
  if (meta.hypercallPage !== undefined && meta.hypercallPage < virtBase) {
    fail(`HYPERCALL_PAGE ${hex(meta.hypercallPage)} is below VIRT_BASE ${hex(virtBase)}`);
  }
  let hvStartLow: bigint | undefined;
  if (!is64) {
    hvStartLow = HYPERVISOR_COMPAT_VIRT_START;
    if (meta.hvStartLow !== undefined && meta.hvStartLow < hvStartLow) hvStartLow = meta.hvStartLow;
    if (kernelEnd > hvStartLow) {
      fail(`image end ${hex(kernelEnd)} reaches into the hypervisor hole at ${hex(hvStartLow)}`);
    }
  }

  return {
    is64,
    guestType: is64 ? "xen-3.0-x86_64" : "xen-3.0-x86_32p",
    virtBase,
    paddrOffset,
    virtOffset,
    kernelStart,
    kernelEnd,
    entry,
    hypercallPage: meta.hypercallPage,
    initP2M: meta.initP2M,
    modStartPfn: meta.modStartPfn !== undefined && meta.modStartPfn !== 0n,
    pae: meta.pae,
    hvStartLow,
    loadSegments,
    meta,
  };
}
