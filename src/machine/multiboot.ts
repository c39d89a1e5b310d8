// Multiboot (version 0.6.96, "Multiboot 1") loader: puts a kernel image and its modules into
// machine memory and builds the boot information structure, as the specification's boot loader
// would. The CPU state at entry (32-bit flat protected mode, paging off, EAX = 0x2BADB002,
// EBX = the info structure) is the caller's to set from the returned `MultibootEntry`.
//
// Machine layout after loading (all addresses physical):
//   0x00000-0x0FFFF  untouched (free RAM; real-mode IVT/BDA area on a PC)
//   0x10000-0x9FFFF  boot information: the info structure, then strings, module list, memory
//                    map, bump-allocated in that order (INFO_AREA_START..INFO_AREA_END)
//   0xA0000-0xFFFFF  reserved hole (VGA/ROM on a PC), type 2 in the memory map
//   0x100000-        the kernel's segments, then the modules in command-line order
//
// Invariants checked before anything is written to memory (so a rejected image leaves RAM as
// it was): every kernel segment and module lies in RAM at or above 1 MiB, modules follow the
// kernel without overlapping it or each other, and every length read from the image is checked
// against the image's size. Every rejection is a MultibootError whose one-line message names
// the problem.

import { type MachineMemory, PAGE_SIZE } from "./memory.ts";

export const MULTIBOOT_HEADER_MAGIC = 0x1badb002;
export const MULTIBOOT_BOOTLOADER_MAGIC = 0x2badb002;
/** The header must lie, 32-bit aligned, wholly within this many bytes of the image's start. */
export const MULTIBOOT_SEARCH_BYTES = 8192;

// Header flags (what the kernel asks of the boot loader).
export const MB_HEADER_PAGE_ALIGN_MODULES = 1 << 0;
export const MB_HEADER_MEMORY_INFO = 1 << 1;
export const MB_HEADER_VIDEO_MODE = 1 << 2;
export const MB_HEADER_AOUT_KLUDGE = 1 << 16;
/** Bits 0-15 are requirements: a loader that does not know one must refuse the kernel. */
const MB_HEADER_KNOWN_REQUIRED = MB_HEADER_PAGE_ALIGN_MODULES | MB_HEADER_MEMORY_INFO | MB_HEADER_VIDEO_MODE;

// Info flags (what the boot loader filled in).
export const MB_INFO_MEMORY = 1 << 0;
export const MB_INFO_CMDLINE = 1 << 2;
export const MB_INFO_MODS = 1 << 3;
export const MB_INFO_MEM_MAP = 1 << 6;
export const MB_INFO_BOOT_LOADER_NAME = 1 << 9;

export const MB_MEMORY_AVAILABLE = 1;
export const MB_MEMORY_RESERVED = 2;

const INFO_AREA_START = 0x10000;
const INFO_AREA_END = 0xa0000;
const INFO_STRUCT_BYTES = 116; // through the framebuffer fields of the 0.6.96 layout
const LOW_MEMORY_END = 0xa0000; // 640 KiB
const HIGH_MEMORY_START = 0x100000; // 1 MiB
const BOOT_LOADER_NAME = "tsxen";

// ELF constants used by the loader.
const ELF_HEADER_BYTES = 52;
const ELF_PHDR_BYTES = 32;
const ELFCLASS32 = 1;
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const ET_EXEC = 2;
const EM_386 = 3;
const PT_LOAD = 1;

export class MultibootError extends Error {
  override name = "MultibootError";
}

export interface MultibootModuleInput {
  /** The module's bytes. */
  data: Uint8Array;
  /** The module's string in the info structure (conventionally its file name and arguments). */
  cmdline: string;
}

export interface MultibootHeader {
  /** Byte offset of the header in the image. */
  offset: number;
  flags: number;
  /** a.out kludge address fields; present only when flag 16 is set. */
  headerAddr?: number;
  loadAddr?: number;
  loadEndAddr?: number;
  bssEndAddr?: number;
  entryAddr?: number;
}

/** One range to copy from the image into memory, followed by `zeroBytes` of zeroes. */
interface Segment {
  paddr: number;
  fileOffset: number;
  fileBytes: number;
  memBytes: number;
}

export interface MultibootEntry {
  /** Physical address to start executing at (32-bit protected mode, paging off). */
  entry: number;
  eax: number;
  /** Physical address of the Multiboot info structure. */
  ebx: number;
  /** First byte past the kernel's highest segment (including bss). */
  kernelEnd: number;
  modules: { start: number; end: number; cmdline: string }[];
}

const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;

function u32(image: Uint8Array, offset: number): number {
  return (
    (image[offset] | (image[offset + 1] << 8) | (image[offset + 2] << 16) | (image[offset + 3] << 24)) >>> 0
  );
}

function u16(image: Uint8Array, offset: number): number {
  return image[offset] | (image[offset + 1] << 8);
}

/** Finds and checks the Multiboot header; throws a MultibootError naming what is wrong. */
export function findMultibootHeader(image: Uint8Array): MultibootHeader {
  if (image.length < 12) {
    throw new MultibootError(`kernel image is ${image.length} bytes, too short to hold a Multiboot header`);
  }
  let badChecksumAt = -1;
  const limit = Math.min(image.length, MULTIBOOT_SEARCH_BYTES) - 12;
  for (let offset = 0; offset <= limit; offset += 4) {
    if (u32(image, offset) !== MULTIBOOT_HEADER_MAGIC) continue;
    const flags = u32(image, offset + 4);
    const checksum = u32(image, offset + 8);
    if (((MULTIBOOT_HEADER_MAGIC + flags + checksum) | 0) !== 0) {
      if (badChecksumAt < 0) badChecksumAt = offset;
      continue;
    }
    const unknown = flags & 0xffff & ~MB_HEADER_KNOWN_REQUIRED;
    if (unknown) {
      throw new MultibootError(`Multiboot header requires unsupported features (flag bits ${hex(unknown)})`);
    }
    const header: MultibootHeader = { offset, flags };
    if (flags & MB_HEADER_AOUT_KLUDGE) {
      if (offset + 32 > image.length) {
        throw new MultibootError(
          "Multiboot header sets the address-fields flag (16) but the image ends before them",
        );
      }
      header.headerAddr = u32(image, offset + 12);
      header.loadAddr = u32(image, offset + 16);
      header.loadEndAddr = u32(image, offset + 20);
      header.bssEndAddr = u32(image, offset + 24);
      header.entryAddr = u32(image, offset + 28);
    }
    return header;
  }
  if (badChecksumAt >= 0) {
    throw new MultibootError(`Multiboot header at offset ${badChecksumAt} has a bad checksum`);
  }
  throw new MultibootError(
    `no Multiboot header (magic ${hex(MULTIBOOT_HEADER_MAGIC)}) in the first 8192 bytes`,
  );
}

/** Segments and entry from the a.out kludge address fields (header flag 16). */
function aoutSegments(image: Uint8Array, h: MultibootHeader): { segments: Segment[]; entry: number } {
  const headerAddr = h.headerAddr!;
  const loadAddr = h.loadAddr!;
  if (loadAddr > headerAddr) {
    throw new MultibootError(`Multiboot load_addr ${hex(loadAddr)} is above header_addr ${hex(headerAddr)}`);
  }
  const fileOffset = h.offset - (headerAddr - loadAddr);
  if (fileOffset < 0) {
    throw new MultibootError(
      `Multiboot header_addr ${hex(headerAddr)} - load_addr ${hex(loadAddr)} reaches before the image's start`,
    );
  }
  const available = image.length - fileOffset;
  let fileBytes = available;
  if (h.loadEndAddr !== 0) {
    if (h.loadEndAddr! <= loadAddr) {
      throw new MultibootError(
        `Multiboot load_end_addr ${hex(h.loadEndAddr!)} is not above load_addr ${hex(loadAddr)}`,
      );
    }
    fileBytes = h.loadEndAddr! - loadAddr;
    if (fileBytes > available) {
      throw new MultibootError(
        `Multiboot load_end_addr ${hex(h.loadEndAddr!)} asks for ${fileBytes} bytes but the image has ${available}`,
      );
    }
  }
  let memBytes = fileBytes;
  if (h.bssEndAddr !== 0) {
    if (h.bssEndAddr! < loadAddr + fileBytes) {
      throw new MultibootError(
        `Multiboot bss_end_addr ${hex(h.bssEndAddr!)} is below the end of the loaded image`,
      );
    }
    memBytes = h.bssEndAddr! - loadAddr;
  }
  const entry = h.entryAddr!;
  if (entry < loadAddr || entry >= loadAddr + memBytes) {
    throw new MultibootError(`Multiboot entry_addr ${hex(entry)} is outside the loaded image`);
  }
  return { segments: [{ paddr: loadAddr, fileOffset, fileBytes, memBytes }], entry };
}

/** Segments and entry from an ELF32 executable's PT_LOAD program headers, placed by p_paddr. */
function elfSegments(image: Uint8Array): { segments: Segment[]; entry: number } {
  if (image.length < 4 || u32(image, 0) !== 0x464c457f) {
    throw new MultibootError(
      "kernel image is neither ELF nor marked with Multiboot address fields (flag 16)",
    );
  }
  if (image.length < ELF_HEADER_BYTES) throw new MultibootError("ELF header is truncated");
  const elfClass = image[4];
  if (elfClass === ELFCLASS64) {
    throw new MultibootError(
      "kernel is ELF64; a Multiboot 1 kernel must be ELF32 or use the address fields (flag 16)",
    );
  }
  if (elfClass !== ELFCLASS32) throw new MultibootError(`ELF class ${elfClass} is neither 32- nor 64-bit`);
  if (image[5] !== ELFDATA2LSB) throw new MultibootError("ELF image is not little-endian");
  const type = u16(image, 16);
  if (type !== ET_EXEC) throw new MultibootError(`ELF type ${type} is not an executable (ET_EXEC)`);
  const machine = u16(image, 18);
  if (machine !== EM_386) throw new MultibootError(`ELF machine ${machine} is not i386`);
  const entryVaddr = u32(image, 24);
  const phoff = u32(image, 28);
  const phentsize = u16(image, 42);
  const phnum = u16(image, 44);
  if (phnum === 0) throw new MultibootError("ELF image has no program headers");
  if (phentsize < ELF_PHDR_BYTES)
    throw new MultibootError(`ELF program header size ${phentsize} is too small`);
  if (phoff + phnum * phentsize > image.length)
    throw new MultibootError("ELF program headers run past the image's end");
  const segments: Segment[] = [];
  let entry = -1;
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (u32(image, ph) !== PT_LOAD) continue;
    const fileOffset = u32(image, ph + 4);
    const vaddr = u32(image, ph + 8);
    const paddr = u32(image, ph + 12);
    const fileBytes = u32(image, ph + 16);
    const memBytes = u32(image, ph + 20);
    if (fileBytes > memBytes) {
      throw new MultibootError(`ELF segment ${i} has p_filesz ${fileBytes} larger than p_memsz ${memBytes}`);
    }
    if (fileOffset + fileBytes > image.length) {
      throw new MultibootError(
        `ELF segment ${i} (offset ${fileOffset}, ${fileBytes} bytes) runs past the image's end`,
      );
    }
    if (memBytes === 0) continue;
    segments.push({ paddr, fileOffset, fileBytes, memBytes });
    // As GRUB does: an entry point inside a segment's virtual range is moved to its physical one.
    if (entryVaddr >= vaddr && entryVaddr - vaddr < memBytes) entry = paddr + (entryVaddr - vaddr);
  }
  if (segments.length === 0) throw new MultibootError("ELF image has no loadable (PT_LOAD) segments");
  if (entry < 0)
    throw new MultibootError(`ELF entry point ${hex(entryVaddr)} is outside every loadable segment`);
  return { segments, entry };
}

/** Bump allocator over the low-memory info area; every string and table goes through it. */
class InfoArea {
  private next = INFO_AREA_START;

  constructor(private readonly memory: MachineMemory) {}

  alloc(bytes: number, align = 4): number {
    const addr = (this.next + align - 1) & ~(align - 1);
    if (addr + bytes > INFO_AREA_END) {
      throw new MultibootError(
        `boot information (command lines and module strings) exceeds the ${(INFO_AREA_END - INFO_AREA_START) >> 10} KiB reserved for it`,
      );
    }
    this.next = addr + bytes;
    this.memory.fill(addr, bytes, 0);
    return addr;
  }

  string(text: string, what: string): number {
    if (text.includes("\0")) throw new MultibootError(`${what} contains a NUL character`);
    const bytes = new TextEncoder().encode(text);
    const addr = this.alloc(bytes.length + 1, 1);
    this.memory.write(addr, bytes);
    return addr;
  }
}

/**
 * Loads `kernel` and `modules` into `memory` and builds the Multiboot info structure.
 * Throws MultibootError (one line, naming the problem) for malformed or unplaceable input.
 */
export function loadMultiboot(
  memory: MachineMemory,
  kernel: Uint8Array,
  options: { cmdline?: string; modules?: readonly MultibootModuleInput[] } = {},
): MultibootEntry {
  const header = findMultibootHeader(kernel);
  const { segments, entry } =
    header.flags & MB_HEADER_AOUT_KLUDGE ? aoutSegments(kernel, header) : elfSegments(kernel);
  const ramBytes = memory.ramBytes;

  let kernelEnd = 0;
  for (const s of segments) {
    const end = s.paddr + s.memBytes;
    if (s.paddr < HIGH_MEMORY_START || end > ramBytes) {
      throw new MultibootError(
        `kernel segment ${hex(s.paddr)}-${hex(end)} is outside usable RAM ${hex(HIGH_MEMORY_START)}-${hex(ramBytes)}`,
      );
    }
    kernelEnd = Math.max(kernelEnd, end);
  }

  const moduleAlign = header.flags & MB_HEADER_PAGE_ALIGN_MODULES ? PAGE_SIZE : 8;
  const modules: MultibootEntry["modules"] = [];
  let next = kernelEnd;
  for (const m of options.modules ?? []) {
    const start = Math.ceil(next / moduleAlign) * moduleAlign;
    const end = start + m.data.length;
    if (end > ramBytes) {
      throw new MultibootError(
        `module "${m.cmdline}" (${m.data.length} bytes) does not fit in RAM at ${hex(start)} (RAM ends at ${hex(ramBytes)})`,
      );
    }
    modules.push({ start, end, cmdline: m.cmdline });
    next = end;
  }

  // Everything is checked: now write. The info area is allocated first so a too-long command
  // line is refused before the kernel is copied.
  const info = new InfoArea(memory);
  const infoAddr = info.alloc(INFO_STRUCT_BYTES);
  let flags = MB_INFO_MEMORY | MB_INFO_MODS | MB_INFO_MEM_MAP | MB_INFO_BOOT_LOADER_NAME;
  if (options.cmdline !== undefined) {
    flags |= MB_INFO_CMDLINE;
    memory.writeU32(infoAddr + 16, info.string(options.cmdline, "kernel command line"));
  }
  const modsAddr = info.alloc(16 * modules.length);
  modules.forEach((m, i) => {
    const entryAddr = modsAddr + 16 * i;
    memory.writeU32(entryAddr, m.start);
    memory.writeU32(entryAddr + 4, m.end);
    memory.writeU32(entryAddr + 8, info.string(m.cmdline, `module ${i} string`));
  });
  memory.writeU32(infoAddr + 20, modules.length);
  memory.writeU32(infoAddr + 24, modsAddr);

  const map: [number, number, number][] = [
    [0, LOW_MEMORY_END, MB_MEMORY_AVAILABLE],
    [LOW_MEMORY_END, HIGH_MEMORY_START - LOW_MEMORY_END, MB_MEMORY_RESERVED],
    [HIGH_MEMORY_START, ramBytes - HIGH_MEMORY_START, MB_MEMORY_AVAILABLE],
  ];
  const mmapAddr = info.alloc(24 * map.length);
  map.forEach(([base, length, type], i) => {
    const e = mmapAddr + 24 * i;
    memory.writeU32(e, 20); // size of the rest of the entry; `size` itself is not counted
    memory.writeU32(e + 4, base);
    memory.writeU32(e + 8, 0); // base, high half
    memory.writeU32(e + 12, length);
    memory.writeU32(e + 16, 0); // length, high half
    memory.writeU32(e + 20, type);
  });
  memory.writeU32(infoAddr + 44, 24 * map.length);
  memory.writeU32(infoAddr + 48, mmapAddr);
  memory.writeU32(infoAddr + 4, LOW_MEMORY_END >>> 10); // mem_lower, KiB
  memory.writeU32(infoAddr + 8, (ramBytes - HIGH_MEMORY_START) >>> 10); // mem_upper, KiB from 1 MiB
  memory.writeU32(infoAddr + 64, info.string(BOOT_LOADER_NAME, "boot loader name"));
  memory.writeU32(infoAddr, flags);

  for (const s of segments) {
    memory.write(s.paddr, kernel.subarray(s.fileOffset, s.fileOffset + s.fileBytes));
    memory.fill(s.paddr + s.fileBytes, s.memBytes - s.fileBytes, 0);
  }
  const inputs = options.modules ?? [];
  for (let i = 0; i < inputs.length; i++) memory.write(modules[i].start, inputs[i].data);

  return { entry, eax: MULTIBOOT_BOOTLOADER_MAGIC, ebx: infoAddr, kernelEnd, modules };
}
