// ELF32/ELF64 parsing for the PV domain builder: the file header, program headers and section
// headers of a little-endian x86 executable, with every offset and size checked against the
// file before it is used.
//
// Invariants (this file owns them):
// - Nothing is read outside `bytes`: each table is range-checked as a whole before any entry is
//   read, and each entry's file range is either checked (PT_LOAD: an error if it leaves the
//   file) or reported through `inFile` so that callers reading it clamp (notes are read
//   leniently, as Xen's libelf does, because real images carry notes that overrun their
//   segment).
// - Addresses (vaddr, paddr, entry, section addr, memsz) are bigint: a 64-bit kernel lives at
//   0xffffffff80000000, beyond a double's 53 bits. File offsets and file sizes are numbers: any
//   value that matters has been checked to lie within the file, far below 2^53. Domain building
//   is not a hot path, so bigint costs nothing that matters here.
// - Every rejection is an Error whose one-line message starts with the image's name and names
//   the field and the problem.

export const EM_386 = 3;
export const EM_X86_64 = 62;
export const ET_EXEC = 2;
export const ET_DYN = 3;

export const PT_NULL = 0;
export const PT_LOAD = 1;
export const PT_NOTE = 4;
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

export const SHT_NOTE = 7;
export const SHT_NOBITS = 8;

/** Extended program-header numbering (e_phnum = PN_XNUM): never used by kernels; refused. */
const PN_XNUM = 0xffff;

export interface ProgramHeader {
  index: number;
  type: number;
  flags: number;
  offset: number;
  filesz: number;
  vaddr: bigint;
  paddr: bigint;
  memsz: bigint;
  align: bigint;
  /** True when [offset, offset + filesz) lies in the file. */
  inFile: boolean;
}

export interface SectionHeader {
  index: number;
  /** From the section-name string table; "" when it cannot be read. */
  name: string;
  type: number;
  flags: bigint;
  addr: bigint;
  offset: number;
  size: number;
  /** True when the section has file contents ([offset, offset + size) in the file, not NOBITS). */
  inFile: boolean;
}

export interface ElfImage {
  /** The name used in error messages (usually the file name). */
  source: string;
  bytes: Uint8Array;
  elfClass: 32 | 64;
  machine: number;
  type: number;
  entry: bigint;
  programHeaders: ProgramHeader[];
  sectionHeaders: SectionHeader[];
}

export function isElf(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46
  );
}

/** Little-endian reads that the caller has range-checked. */
class Reader {
  private readonly view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u8(at: number): number {
    return this.bytes[at];
  }
  u16(at: number): number {
    return this.view.getUint16(at, true);
  }
  u32(at: number): number {
    return this.view.getUint32(at, true);
  }
  u64(at: number): bigint {
    return this.view.getBigUint64(at, true);
  }
  /** A 64-bit field used as a file offset or size: exact below 2^53, larger values only compare
   * as "too big". */
  u64n(at: number): number {
    return this.view.getUint32(at + 4, true) * 0x1_0000_0000 + this.view.getUint32(at, true);
  }
}

const hex = (v: number | bigint): string => `0x${v.toString(16)}`;

/** True when [offset, offset + size) lies within a file of `length` bytes. */
export function rangeInFile(offset: number, size: number, length: number): boolean {
  return offset >= 0 && size >= 0 && offset <= length && size <= length - offset;
}

/** Reads a NUL-terminated string starting at `offset`, never past `end` (or the file). */
export function readCString(bytes: Uint8Array, offset: number, end: number): string {
  const stop = Math.min(end, bytes.length);
  let i = offset;
  while (i < stop && bytes[i] !== 0) i++;
  return offset < stop ? new TextDecoder("latin1").decode(bytes.subarray(offset, i)) : "";
}

export function parseElf(bytes: Uint8Array, source: string): ElfImage {
  const fail = (what: string): never => {
    throw new Error(`${source}: ${what}`);
  };
  if (bytes.length < 16 || !isElf(bytes)) fail("not an ELF file (no \\x7fELF magic)");
  const cls = bytes[4];
  if (cls !== 1 && cls !== 2) fail(`ELF header: EI_CLASS ${cls} is neither 1 (ELF32) nor 2 (ELF64)`);
  const is64 = cls === 2;
  if (bytes[5] !== 1) fail(`ELF header: EI_DATA ${bytes[5]} is not 1 (little-endian)`);
  if (bytes[6] !== 1) fail(`ELF header: EI_VERSION ${bytes[6]} is not 1`);
  const ehsize = is64 ? 64 : 52;
  if (bytes.length < ehsize)
    fail(`ELF header: file of ${bytes.length} bytes is shorter than the ${ehsize}-byte header`);
  const r = new Reader(bytes);

  const type = r.u16(16);
  const machine = r.u16(18);
  const entry = is64 ? r.u64(24) : BigInt(r.u32(24));
  const phoff = is64 ? r.u64n(32) : r.u32(28);
  const shoff = is64 ? r.u64n(40) : r.u32(32);
  const o = is64 ? 52 : 40; // e_ehsize
  const phentsize = r.u16(o + 2);
  const phnum = r.u16(o + 4);
  const shentsize = r.u16(o + 6);
  let shnum = r.u16(o + 8);
  const shstrndx = r.u16(o + 10);

  if (type !== ET_EXEC && type !== ET_DYN)
    fail(`ELF header: e_type ${type} is not an executable (2) or shared object (3)`);
  if (phnum === PN_XNUM) fail("ELF header: e_phnum 0xffff (extended numbering) is not supported");

  // Program headers.
  const phsize = is64 ? 56 : 32;
  const programHeaders: ProgramHeader[] = [];
  if (phnum > 0) {
    if (phentsize !== phsize) fail(`ELF header: e_phentsize ${phentsize} is not ${phsize}`);
    if (!rangeInFile(phoff, phnum * phsize, bytes.length)) {
      fail(
        `ELF header: program headers at e_phoff ${hex(phoff)} (${phnum} × ${phsize} bytes) run past the end of the file (${bytes.length} bytes)`,
      );
    }
  }
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phsize;
    let ph: ProgramHeader;
    if (is64) {
      ph = {
        index: i,
        type: r.u32(at),
        flags: r.u32(at + 4),
        offset: r.u64n(at + 8),
        vaddr: r.u64(at + 16),
        paddr: r.u64(at + 24),
        filesz: r.u64n(at + 32),
        memsz: r.u64(at + 40),
        align: r.u64(at + 48),
        inFile: false,
      };
    } else {
      ph = {
        index: i,
        type: r.u32(at),
        offset: r.u32(at + 4),
        vaddr: BigInt(r.u32(at + 8)),
        paddr: BigInt(r.u32(at + 12)),
        filesz: r.u32(at + 16),
        memsz: BigInt(r.u32(at + 20)),
        flags: r.u32(at + 24),
        align: BigInt(r.u32(at + 28)),
        inFile: false,
      };
    }
    ph.inFile = rangeInFile(ph.offset, ph.filesz, bytes.length);
    if (ph.type === PT_LOAD) {
      const what = `program header ${i} (PT_LOAD)`;
      if (!ph.inFile) {
        fail(
          `${what}: p_offset ${hex(ph.offset)} + p_filesz ${hex(ph.filesz)} runs past the end of the file (${bytes.length} bytes)`,
        );
      }
      if (BigInt(ph.filesz) > ph.memsz)
        fail(`${what}: p_filesz ${hex(ph.filesz)} exceeds p_memsz ${hex(ph.memsz)}`);
    }
    programHeaders.push(ph);
  }

  // Section headers (optional: a kernel may carry none).
  const shsize = is64 ? 64 : 40;
  const sectionHeaders: SectionHeader[] = [];
  if (shoff !== 0) {
    if (shentsize !== shsize) fail(`ELF header: e_shentsize ${shentsize} is not ${shsize}`);
    if (shnum === 0) {
      // Extended numbering: the count is in section 0's sh_size.
      if (!rangeInFile(shoff, shsize, bytes.length))
        fail(`ELF header: e_shoff ${hex(shoff)} is past the end of the file`);
      shnum = is64 ? r.u64n(shoff + 32) : r.u32(shoff + 20);
    }
    if (!rangeInFile(shoff, shnum * shsize, bytes.length)) {
      fail(
        `ELF header: section headers at e_shoff ${hex(shoff)} (${shnum} × ${shsize} bytes) run past the end of the file (${bytes.length} bytes)`,
      );
    }
  } else {
    shnum = 0;
  }
  const nameOffsets: number[] = [];
  for (let i = 0; i < shnum; i++) {
    const at = shoff + i * shsize;
    const sh: SectionHeader = is64
      ? {
          index: i,
          name: "",
          type: r.u32(at + 4),
          flags: r.u64(at + 8),
          addr: r.u64(at + 16),
          offset: r.u64n(at + 24),
          size: r.u64n(at + 32),
          inFile: false,
        }
      : {
          index: i,
          name: "",
          type: r.u32(at + 4),
          flags: BigInt(r.u32(at + 8)),
          addr: BigInt(r.u32(at + 12)),
          offset: r.u32(at + 16),
          size: r.u32(at + 20),
          inFile: false,
        };
    sh.inFile = sh.type !== SHT_NOBITS && rangeInFile(sh.offset, sh.size, bytes.length);
    nameOffsets.push(r.u32(at));
    sectionHeaders.push(sh);
  }
  // Names, if the string table is usable; an unusable one leaves names empty (lenient: only
  // the legacy __xen_guest lookup needs them).
  const strtab = shstrndx < sectionHeaders.length ? sectionHeaders[shstrndx] : undefined;
  if (strtab?.inFile) {
    const end = strtab.offset + strtab.size;
    for (let i = 0; i < sectionHeaders.length; i++) {
      const off = nameOffsets[i];
      if (off < strtab.size) sectionHeaders[i].name = readCString(bytes, strtab.offset + off, end);
    }
  }

  return { source, bytes, elfClass: is64 ? 64 : 32, machine, type, entry, programHeaders, sectionHeaders };
}

/** True for the segments Xen loads: PT_LOAD with any of R, W, X. */
export function isLoadable(ph: ProgramHeader): boolean {
  return ph.type === PT_LOAD && (ph.flags & (PF_R | PF_W | PF_X)) !== 0;
}
