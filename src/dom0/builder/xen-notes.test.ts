import assert from "node:assert/strict";
import { test } from "node:test";
import { PT_NOTE, parseElf, SHT_NOTE } from "./elf.ts";
import { buildElf, concat, note, u32le, u64le } from "./synth-elf.ts";
import {
  checkXenImage,
  findXenMetadata,
  strtoull0,
  XEN_ELFNOTE_ENTRY,
  XEN_ELFNOTE_FEATURES,
  XEN_ELFNOTE_GUEST_OS,
  XEN_ELFNOTE_GUEST_VERSION,
  XEN_ELFNOTE_HV_START_LOW,
  XEN_ELFNOTE_HYPERCALL_PAGE,
  XEN_ELFNOTE_INIT_P2M,
  XEN_ELFNOTE_L1_MFN_VALID,
  XEN_ELFNOTE_LOADER,
  XEN_ELFNOTE_MOD_START_PFN,
  XEN_ELFNOTE_PADDR_OFFSET,
  XEN_ELFNOTE_PAE_MODE,
  XEN_ELFNOTE_PHYS32_ENTRY,
  XEN_ELFNOTE_SUPPORTED_FEATURES,
  XEN_ELFNOTE_SUSPEND_CANCEL,
  XEN_ELFNOTE_VIRT_BASE,
  XEN_ELFNOTE_XEN_VERSION,
} from "./xen-notes.ts";

const enc = new TextEncoder();
const code = new Uint8Array(16).fill(0x90);

/** A Linux-like 64-bit image: every numeric note 8 bytes, FEATURES without a NUL. */
function linuxLike(): Uint8Array {
  const notes = concat(
    note("Xen", XEN_ELFNOTE_GUEST_OS, "linux\0"),
    note("Xen", XEN_ELFNOTE_GUEST_VERSION, "2.6\0"),
    note("Xen", XEN_ELFNOTE_XEN_VERSION, "xen-3.0\0"),
    note("Xen", XEN_ELFNOTE_VIRT_BASE, u64le(0xffffffff80000000n)),
    note("Xen", XEN_ELFNOTE_INIT_P2M, u64le(0x8000000000n)),
    note("Xen", XEN_ELFNOTE_ENTRY, u64le(0xffffffff81000008n)),
    note("Xen", XEN_ELFNOTE_FEATURES, "!writable_page_tables|pae_pgdir_above_4gb"),
    note("Xen", XEN_ELFNOTE_SUPPORTED_FEATURES, u32le(0x8801)),
    note("Xen", XEN_ELFNOTE_PAE_MODE, "yes\0"),
    note("Xen", XEN_ELFNOTE_LOADER, "generic\0"),
    note("Xen", XEN_ELFNOTE_L1_MFN_VALID, concat(u64le(1n), u64le(1n))),
    note("Xen", XEN_ELFNOTE_SUSPEND_CANCEL, u32le(1)),
    note("Xen", XEN_ELFNOTE_MOD_START_PFN, u32le(1)),
    note("Xen", XEN_ELFNOTE_HV_START_LOW, u64le(0xffff800000000000n)),
    note("Xen", XEN_ELFNOTE_PADDR_OFFSET, u64le(0n)),
    note("Xen", XEN_ELFNOTE_PHYS32_ENTRY, u32le(0x1000000)),
    note("GNU", 3, new Uint8Array(20)),
  );
  return buildElf({
    elfClass: 64,
    entry: 0x1000000n,
    segments: [
      { vaddr: 0xffffffff81000000n, paddr: 0x1000000n, data: code, memsz: 0x200000n },
      // A percpu-like segment: p_vaddr 0, p_paddr inside the image.
      { vaddr: 0n, paddr: 0x1200000n, data: code, memsz: 0x1000n, flags: 6 },
      { type: PT_NOTE, flags: 4, vaddr: 0n, data: notes },
    ],
  });
}

test("PT_NOTE notes: every type read, numbers of 4 and 8 bytes, FEATURES without NUL", () => {
  const elf = parseElf(linuxLike(), "vmlinux");
  const meta = findXenMetadata(elf);
  assert.equal(meta.source, "PT_NOTE");
  assert.equal(meta.foreignNotes, 1);
  assert.equal(meta.guestOs, "linux");
  assert.equal(meta.guestVersion, "2.6");
  assert.equal(meta.xenVersion, "xen-3.0");
  assert.equal(meta.loader, "generic");
  assert.equal(meta.virtBase, 0xffffffff80000000n);
  assert.equal(meta.entry, 0xffffffff81000008n);
  assert.equal(meta.initP2M, 0x8000000000n);
  assert.equal(meta.pae, "extended-cr3");
  assert.equal(meta.featuresRequired, 1 << 0);
  assert.equal(meta.featuresSupported, (1 << 0) | (1 << 4) | 0x8801);
  assert.equal(meta.supportedFeaturesNote, 0x8801);
  assert.deepEqual(meta.l1MfnValid, [{ mask: 1n, value: 1n }]);
  assert.equal(meta.suspendCancel, 1n);
  assert.equal(meta.modStartPfn, 1n);
  assert.equal(meta.hvStartLow, 0xffff800000000000n);
  assert.equal(meta.paddrOffset, 0n);
  assert.equal(meta.phys32Entry, 0x1000000n);
  assert.deepEqual(meta.warnings, []);

  const params = checkXenImage(elf, meta);
  assert.equal(params.guestType, "xen-3.0-x86_64");
  assert.equal(params.virtOffset, 0xffffffff80000000n);
  assert.equal(params.kernelStart, 0xffffffff81000000n, "from p_paddr, not p_vaddr");
  assert.equal(params.kernelEnd, 0xffffffff81201000n, "the percpu segment counts by its p_paddr");
  assert.equal(params.entry, 0xffffffff81000008n, "the ENTRY note wins over e_entry");
  assert.equal(params.modStartPfn, true);
  assert.equal(params.loadSegments.length, 2);
});

test("GRUB-like: a PAE_MODE note that claims more bytes than the file holds is read leniently", () => {
  const notes = concat(
    note("Xen", XEN_ELFNOTE_GUEST_OS, "GRUB\0"),
    note("Xen", XEN_ELFNOTE_LOADER, "generic\0"),
    note("Xen", XEN_ELFNOTE_XEN_VERSION, "xen-3.0\0"),
    note("Xen", XEN_ELFNOTE_ENTRY, u32le(0)),
    note("Xen", XEN_ELFNOTE_VIRT_BASE, u32le(0)),
    note("Xen", XEN_ELFNOTE_PAE_MODE, "yes\0", 12),
  );
  // The notes are the very end of the file: the last one's 12-byte claim runs past EOF.
  const bytes = buildElf({
    elfClass: 32,
    entry: 0n,
    segments: [
      { vaddr: 0n, data: code, memsz: 0x416858n, flags: 7 },
      { type: PT_NOTE, flags: 4, vaddr: 0n, data: notes },
    ],
  });
  const noteOffset = new DataView(bytes.buffer).getUint32(52 + 32 + 4, true);
  const cut = bytes.slice(0, noteOffset + notes.length);
  // Section headers are gone with the cut: point e_shoff at nothing.
  new DataView(cut.buffer).setUint32(32, 0, true);
  const elf = parseElf(cut, "grub-i386-xen.bin");
  const meta = findXenMetadata(elf);
  assert.equal(meta.pae, "extended-cr3");
  assert.equal(meta.guestOs, "GRUB");
  assert.equal(meta.warnings.length, 1);
  assert.match(meta.warnings[0], /PAE_MODE .* descsz 12 but only 4 bytes/);
  const params = checkXenImage(elf, meta);
  assert.equal(params.entry, 0n);
  assert.equal(params.guestType, "xen-3.0-x86_32p");
});

test("notes only in SHT_NOTE sections are found when no PT_NOTE has Xen notes", () => {
  const notes = concat(
    note("Xen", XEN_ELFNOTE_LOADER, "generic\0"),
    note("Xen", XEN_ELFNOTE_XEN_VERSION, "xen-3.0\0"),
    note("Xen", XEN_ELFNOTE_HYPERCALL_PAGE, u64le(0x2000n)),
  );
  const bytes = buildElf({
    elfClass: 64,
    entry: 0x1000n,
    segments: [
      { vaddr: 0x1000n, data: code, memsz: 0x4000n },
      { type: PT_NOTE, flags: 4, vaddr: 0n, data: note("GNU", 3, new Uint8Array(8)) },
    ],
    sections: [{ name: ".note.Xen", type: SHT_NOTE, data: notes }],
  });
  const meta = findXenMetadata(parseElf(bytes, "old"));
  assert.equal(meta.source, "SHT_NOTE");
  assert.equal(meta.hypercallPage, 0x2000n, "a note's HYPERCALL_PAGE is a virtual address");
  assert.equal(meta.foreignNotes, 1);
});

/** A GNU Mach-like i386 image: notes owned by "name", and the legacy string. */
function gnuMachLike(legacy: string): Uint8Array {
  const bogus = concat(
    note("name", XEN_ELFNOTE_GUEST_OS, "GNU Mach\0"),
    note("name", XEN_ELFNOTE_VIRT_BASE, u32le(0xc0000000)),
    note("name", XEN_ELFNOTE_HYPERCALL_PAGE, u32le(0xc0002000)),
  );
  return buildElf({
    elfClass: 32,
    entry: 0xc0000000n,
    segments: [
      { vaddr: 0xc0000000n, data: code, memsz: 0x84000n },
      { vaddr: 0xc0086000n, data: code, memsz: 0x1d870n, flags: 6 },
    ],
    sections: [
      { name: "__xen_guest", type: 1, data: enc.encode(`${legacy}\0`) },
      { name: ".note.Xen", type: SHT_NOTE, data: bogus },
    ],
  });
}

const MACH_I386 =
  "GUEST_OS=GNU Mach,GUEST_VERSION=1.3,XEN_VER=xen-3.0,VIRT_BASE=0xC0000000,ELF_PADDR_OFFSET=0xC0000000," +
  "HYPERCALL_PAGE=0x2,PAE=yes[extended-cr3],LOADER=generic,FEATURES=pae_pgdir_above_4gb";

test("legacy __xen_guest: notes of other owners ignored, page-relative HYPERCALL_PAGE, paddr offset", () => {
  const elf = parseElf(gnuMachLike(MACH_I386), "gnumach");
  const meta = findXenMetadata(elf);
  assert.equal(meta.source, "__xen_guest");
  assert.equal(meta.foreignNotes, 3);
  assert.equal(meta.legacy, MACH_I386);
  assert.equal(meta.guestOs, "GNU Mach");
  assert.equal(meta.guestVersion, undefined, "Xen reads GUEST_VER, not GUEST_VERSION");
  assert.deepEqual(meta.warnings, ["__xen_guest: key GUEST_VERSION is not one Xen reads, ignored"]);
  assert.equal(meta.xenVersion, "xen-3.0");
  assert.equal(meta.virtBase, 0xc0000000n);
  assert.equal(meta.paddrOffset, 0xc0000000n);
  assert.equal(meta.hypercallPage, 0xc0002000n);
  assert.equal(meta.pae, "extended-cr3");
  assert.equal(meta.featuresSupported, 1 << 4);
  const params = checkXenImage(elf, meta);
  assert.equal(params.virtOffset, 0n);
  assert.equal(params.kernelStart, 0xc0000000n);
  assert.equal(params.kernelEnd, 0xc0086000n + 0x1d870n);
  assert.equal(params.entry, 0xc0000000n);
  assert.equal(params.hvStartLow, 0xf5800000n);
});

test("legacy defaults: ELF_PADDR_OFFSET defaults to VIRT_BASE; PAE=yes is not extended-cr3", () => {
  const meta = findXenMetadata(
    parseElf(
      gnuMachLike("XEN_VER=xen-3.0,LOADER=generic,VIRT_BASE=0xC0000000,PAE=yes,HYPERCALL_PAGE=3"),
      "m",
    ),
  );
  assert.equal(meta.pae, "yes");
  assert.equal(meta.hypercallPage, 0xc0003000n);
  const params = checkXenImage(
    parseElf(gnuMachLike("XEN_VER=xen-3.0,LOADER=generic,VIRT_BASE=0xC0000000,PAE=yes"), "m"),
  );
  assert.equal(params.paddrOffset, 0xc0000000n);
});

test("Xen's checks refuse what Xen refuses, naming the image and the problem", () => {
  const m = (legacy: string) => () => checkXenImage(parseElf(gnuMachLike(legacy), "k.elf"));
  const base = "XEN_VER=xen-3.0,LOADER=generic,PAE=yes,VIRT_BASE=0xC0000000";
  assert.throws(m("XEN_VER=xen-3.0,LOADER=other,PAE=yes"), /k.elf: LOADER is "other" and GUEST_OS is ""/);
  assert.doesNotThrow(m("XEN_VER=xen-3.0,GUEST_OS=linux,PAE=yes,VIRT_BASE=0xC0000000"));
  assert.throws(m("XEN_VER=xen-2.0,LOADER=generic,PAE=yes"), /XEN_VERSION is "xen-2.0", not "xen-3.0"/);
  assert.throws(m("XEN_VER=xen-3.0,LOADER=generic,VIRT_BASE=0xC0000000"), /without PAE/);
  assert.throws(m(`${base},FEATURES=!auto_translated_physmap`), /requires auto_translated_physmap/);
  assert.throws(m(`${base},FEATURES=!no_such_thing`), /requires a feature Xen does not know/);
  assert.doesNotThrow(m(`${base},FEATURES=no_such_thing|!writable_page_tables`));
  assert.throws(m(`${base},VIRT_ENTRY=0xB0000000`), /entry 0xb0000000 lies outside the image/);
  assert.throws(
    m("XEN_VER=xen-3.0,LOADER=generic,PAE=yes,ELF_PADDR_OFFSET=0xC0000000"),
    /k.elf: PADDR_OFFSET is set but VIRT_BASE is not/,
  );
  assert.throws(m(`${base},FEATURES=!mmu_pt_update_preserve_ad`), /requires a feature Xen does not know/);
  assert.throws(
    m("XEN_VER=xen-3.0,LOADER=generic,PAE=yes,VIRT_BASE=0xC0001000,ELF_PADDR_OFFSET=0xC0001000"),
    /VIRT_BASE 0xc0001000 is above the image start 0xc0000000/,
  );
  assert.throws(
    m(
      "XEN_VER=xen-3.0,LOADER=generic,PAE=yes,VIRT_BASE=0x40000000,ELF_PADDR_OFFSET=0x8000000,VIRT_ENTRY=0xF8000000",
    ),
    /reaches into the hypervisor hole at 0xf5800000/,
  );
  const plain = buildElf({ elfClass: 64, entry: 0x1000n, segments: [{ vaddr: 0x1000n, data: code }] });
  assert.throws(() => checkXenImage(parseElf(plain, "hello.elf")), /hello.elf: not a Xen PV kernel/);
  const arm = buildElf({ elfClass: 64, machine: 183, entry: 0n, segments: [{ vaddr: 0n, data: code }] });
  assert.throws(() => checkXenImage(parseElf(arm, "arm.elf")), /machine 183, not x86-64/);
});

test("INIT_P2M must not overlap the image", () => {
  const notes = concat(
    note("Xen", XEN_ELFNOTE_LOADER, "generic\0"),
    note("Xen", XEN_ELFNOTE_XEN_VERSION, "xen-3.0\0"),
    note("Xen", XEN_ELFNOTE_INIT_P2M, u64le(0x1800n)),
  );
  const bytes = buildElf({
    elfClass: 64,
    entry: 0x1000n,
    segments: [
      { vaddr: 0x1000n, data: code, memsz: 0x4000n },
      { type: PT_NOTE, vaddr: 0n, data: notes },
    ],
  });
  assert.throws(
    () => checkXenImage(parseElf(bytes, "p2m")),
    /p2m: INIT_P2M 0x1800 lies inside the image \[0x1000, 0x5000\)/,
  );
});

test("strtoull with base 0 as C parses it", () => {
  assert.equal(strtoull0("0xC0000000"), 0xc0000000n);
  assert.equal(strtoull0("0X2"), 2n);
  assert.equal(strtoull0("010"), 8n);
  assert.equal(strtoull0("  42abc"), 42n);
  assert.equal(strtoull0("0x"), 0n);
  assert.equal(strtoull0("junk"), 0n);
  assert.equal(strtoull0("-1"), 0xffffffffffffffffn);
  assert.equal(strtoull0("99999999999999999999999"), 0xffffffffffffffffn);
});

test("hostile note tables end the walk instead of looping or reading past the file", () => {
  // A note header whose namesz is huge: the name is clamped, the walk ends past the segment.
  const evil = concat(new Uint8Array([0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x7f, 1, 0, 0, 0]), code);
  const bytes = buildElf({
    elfClass: 64,
    entry: 0x1000n,
    segments: [
      { vaddr: 0x1000n, data: code },
      { type: PT_NOTE, vaddr: 0n, data: evil },
    ],
  });
  const meta = findXenMetadata(parseElf(bytes, "evil"));
  assert.equal(meta.source, "none");
  assert.equal(meta.foreignNotes, 1);
});
