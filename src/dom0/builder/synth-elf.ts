// Builds small synthetic ELF images for the builder's tests: the layout of headers, segments,
// note sections and the section-name string table, nothing more. Not used by the builder.

export interface SynthSegment {
  type?: number; // default PT_LOAD
  flags?: number; // default R|X
  vaddr: bigint;
  paddr?: bigint; // default vaddr
  data: Uint8Array;
  memsz?: bigint; // default data.length
  /** Override p_filesz (to make malformed images). */
  filesz?: number;
  /** Override p_offset (to make malformed images). */
  offset?: number;
}

export interface SynthSection {
  name: string;
  type: number;
  data: Uint8Array;
  addr?: bigint;
}

export interface SynthElf {
  elfClass: 32 | 64;
  machine?: number;
  entry: bigint;
  segments?: SynthSegment[];
  sections?: SynthSection[];
}

const enc = new TextEncoder();

/** One ELF note: {namesz, descsz, type}, name and desc each padded to 4 bytes. */
export function note(
  name: string,
  type: number,
  desc: Uint8Array | string,
  descszOverride?: number,
): Uint8Array {
  const nameBytes = enc.encode(`${name}\0`);
  const descBytes = typeof desc === "string" ? enc.encode(desc) : desc;
  const pad = (n: number) => (n + 3) & ~3;
  const out = new Uint8Array(12 + pad(nameBytes.length) + pad(descBytes.length));
  const v = new DataView(out.buffer);
  v.setUint32(0, nameBytes.length, true);
  v.setUint32(4, descszOverride ?? descBytes.length, true);
  v.setUint32(8, type, true);
  out.set(nameBytes, 12);
  out.set(descBytes, 12 + pad(nameBytes.length));
  return out;
}

export function u32le(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value >>> 0, true);
  return out;
}

export function u64le(value: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, value), true);
  return out;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function buildElf(spec: SynthElf): Uint8Array {
  const is64 = spec.elfClass === 64;
  const ehsize = is64 ? 64 : 52;
  const phsize = is64 ? 56 : 32;
  const shsize = is64 ? 64 : 40;
  const segments = spec.segments ?? [];
  const sections = spec.sections ?? [];

  // File layout: header, program headers, then each segment's data at a 4 KiB-aligned offset,
  // then section data, the name table and the section headers.
  let at = ehsize + segments.length * phsize;
  const segOffsets: number[] = [];
  for (const s of segments) {
    at = (at + 0xfff) & ~0xfff;
    segOffsets.push(at);
    at += s.data.length;
  }
  const secOffsets: number[] = [];
  for (const s of sections) {
    at = (at + 3) & ~3;
    secOffsets.push(at);
    at += s.data.length;
  }
  const names = [""].concat(
    sections.map((s) => s.name),
    [".shstrtab"],
  );
  const nameOffsets: number[] = [];
  const strtabParts: Uint8Array[] = [];
  let strtabLen = 0;
  for (const n of names) {
    nameOffsets.push(strtabLen);
    const b = enc.encode(`${n}\0`);
    strtabParts.push(b);
    strtabLen += b.length;
  }
  const strtabOffset = at;
  at += strtabLen;
  at = (at + 7) & ~7;
  const shoff = at;
  const shnum = sections.length + 2;
  const total = shoff + shnum * shsize;

  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, is64 ? 2 : 1, 1, 1], 0);
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, spec.machine ?? (is64 ? 62 : 3), true);
  v.setUint32(20, 1, true);
  if (is64) {
    v.setBigUint64(24, spec.entry, true);
    v.setBigUint64(32, BigInt(ehsize), true);
    v.setBigUint64(40, BigInt(shoff), true);
  } else {
    v.setUint32(24, Number(spec.entry), true);
    v.setUint32(28, ehsize, true);
    v.setUint32(32, shoff, true);
  }
  const o = is64 ? 52 : 40;
  v.setUint16(o, ehsize, true);
  v.setUint16(o + 2, phsize, true);
  v.setUint16(o + 4, segments.length, true);
  v.setUint16(o + 6, shsize, true);
  v.setUint16(o + 8, shnum, true);
  v.setUint16(o + 10, shnum - 1, true);

  segments.forEach((s, i) => {
    const p = ehsize + i * phsize;
    const offset = s.offset ?? segOffsets[i];
    const filesz = s.filesz ?? s.data.length;
    const memsz = s.memsz ?? BigInt(s.data.length);
    const type = s.type ?? 1;
    const flags = s.flags ?? 5;
    const paddr = s.paddr ?? s.vaddr;
    if (is64) {
      v.setUint32(p, type, true);
      v.setUint32(p + 4, flags, true);
      v.setBigUint64(p + 8, BigInt(offset), true);
      v.setBigUint64(p + 16, s.vaddr, true);
      v.setBigUint64(p + 24, paddr, true);
      v.setBigUint64(p + 32, BigInt(filesz), true);
      v.setBigUint64(p + 40, memsz, true);
      v.setBigUint64(p + 48, 0x1000n, true);
    } else {
      v.setUint32(p, type, true);
      v.setUint32(p + 4, offset, true);
      v.setUint32(p + 8, Number(s.vaddr), true);
      v.setUint32(p + 12, Number(paddr), true);
      v.setUint32(p + 16, filesz, true);
      v.setUint32(p + 20, Number(memsz), true);
      v.setUint32(p + 24, flags, true);
      v.setUint32(p + 28, 0x1000, true);
    }
    out.set(s.data, segOffsets[i]);
  });
  sections.forEach((s, i) => {
    out.set(s.data, secOffsets[i]);
  });
  let sp = strtabOffset;
  for (const b of strtabParts) {
    out.set(b, sp);
    sp += b.length;
  }

  const writeSection = (
    index: number,
    name: number,
    type: number,
    offset: number,
    size: number,
    addr: bigint,
  ) => {
    const p = shoff + index * shsize;
    v.setUint32(p, name, true);
    v.setUint32(p + 4, type, true);
    if (is64) {
      v.setBigUint64(p + 16, addr, true);
      v.setBigUint64(p + 24, BigInt(offset), true);
      v.setBigUint64(p + 32, BigInt(size), true);
    } else {
      v.setUint32(p + 12, Number(addr), true);
      v.setUint32(p + 16, offset, true);
      v.setUint32(p + 20, size, true);
    }
  };
  sections.forEach((s, i) => {
    writeSection(i + 1, nameOffsets[i + 1], s.type, secOffsets[i], s.data.length, s.addr ?? 0n);
  });
  writeSection(shnum - 1, nameOffsets[shnum - 1], 3, strtabOffset, strtabLen, 0n);
  return out;
}
