/*
 * paging32: 32-bit paging and PAE paging, checked against the Intel SDM vol. 3 ch. 4
 * (4.3 32-bit paging, 4.4 PAE paging, 4.6 access rights, 4.7 page-fault exceptions, 4.8
 * accessed and dirty flags, 4.10 INVLPG).
 *
 * Layout: the first 16 MiB are identity-mapped with user-accessible 4 KiB pages (the kernel
 * and its ring-3 bodies live there); linear 0x40000000.. is the test window.
 */
#include "harness.h"

#define P 0x1u
#define W 0x2u
#define U 0x4u
#define A 0x20u
#define D 0x40u
#define PS 0x80u
#define TEST 0x40000000u

static u32 pd[1024] __attribute__((aligned(4096)));
static u32 ident[4][1024] __attribute__((aligned(4096)));
static u32 test_pt[1024] __attribute__((aligned(4096)));
static u8 frames[4][4096] __attribute__((aligned(4096)));

static u64 pdpt[4] __attribute__((aligned(32)));
static u64 pae_pd[2][512] __attribute__((aligned(4096)));
static u64 pae_ident[8][512] __attribute__((aligned(4096)));
static u64 pae_test_pt[512] __attribute__((aligned(4096)));

#define CR0_PG 0x80000000u
#define CR0_WP 0x10000u
#define CR4_PSE 0x10u
#define CR4_PAE 0x20u
#define EFER 0xc0000080u
#define EFER_NXE 0x800u

static volatile u32 sink;
static void read32(uptr a) { sink = *(volatile u32 *)a; }
static void write32(uptr a) { *(volatile u32 *)a = 0x12345678; }
static void exec_at(uptr a) { ((void (*)(void))a)(); }

static uptr frame(u32 i) { return (uptr)frames[i]; }

static void map(u32 index, u32 pte) {
  test_pt[index] = pte;
  invlpg(TEST + index * 4096);
}

static void two_level(void) {
  for (u32 t = 0; t < 4; t++) {
    for (u32 i = 0; i < 1024; i++) ident[t][i] = ((t * 1024 + i) << 12) | P | W | U;
    pd[t] = (u32)(uptr)ident[t] | P | W | U;
  }
  pd[TEST >> 22] = (u32)(uptr)test_pt | P | W | U;
  write_cr3((uptr)pd);
  write_cr0(read_cr0() | CR0_PG);

  /* 4.7: not present. */
  map(0, 0);
  expect_trap("read of a not-present page: #PF(0)", read32, TEST + 0x10, 14, 0);
  EQ("  CR2 is the linear address", trap.cr2, TEST + 0x10);
  expect_trap("write of a not-present page: #PF(W)", write32, TEST + 0x20, 14, 2);
  expect_user_trap("user read of a not-present page: #PF(U)", read32, TEST + 0x30, 14, 4);

  /* 4.8: accessed and dirty. */
  map(1, frame(0) | P | W | U);
  pd[TEST >> 22] &= ~A;
  CHECK("read of a present page", try_call(read32, TEST + 0x1000) == NO_TRAP);
  EQ("  sets A in the PDE", pd[TEST >> 22] & A, A);
  EQ("  sets A, not D, in the PTE", test_pt[1] & (A | D), A);
  CHECK("write of a present page", try_call(write32, TEST + 0x1004) == NO_TRAP);
  EQ("  sets D in the PTE", test_pt[1] & (A | D), A | D);
  EQ("  reaches the frame", *(u32 *)(frame(0) + 4), 0x12345678);
  EQ("  the PDE has no dirty bit", pd[TEST >> 22] & D, 0);

  /* 4.6: write protection. */
  map(2, frame(1) | P | U);
  write_cr0(read_cr0() & ~CR0_WP);
  CHECK("supervisor write to a read-only page with CR0.WP=0", try_call(write32, TEST + 0x2000) == NO_TRAP);
  write_cr0(read_cr0() | CR0_WP);
  expect_trap("supervisor write to a read-only page with CR0.WP=1: #PF(P|W)", write32, TEST + 0x2000, 14, 3);
  expect_user_trap("user write to a read-only page: #PF(P|W|U)", write32, TEST + 0x2008, 14, 7);
  CHECK("user read of a read-only user page", try_user(read32, TEST + 0x2000) == NO_TRAP);
  map(3, frame(2) | P | W);
  expect_user_trap("user read of a supervisor page: #PF(P|U)", read32, TEST + 0x3000, 14, 5);
  EQ("  CR2", trap.cr2, TEST + 0x3000);
  map(4, frame(2) | P | W | U);
  pd[TEST >> 22] &= ~U;
  invlpg(TEST + 0x4000);
  expect_user_trap("U/S clear in the PDE only: #PF(P|W|U)", write32, TEST + 0x4000, 14, 7);
  pd[TEST >> 22] |= U;
  invlpg(TEST + 0x4000);

  /* 4.10: INVLPG makes a changed PTE visible. */
  *(u32 *)frame(2) = 0x2222;
  *(u32 *)frame(3) = 0x3333;
  map(5, frame(2) | P | W);
  try_call(read32, TEST + 0x5000);
  EQ("read through the first mapping", sink, 0x2222);
  map(5, frame(3) | P | W);
  try_call(read32, TEST + 0x5000);
  EQ("after INVLPG the new mapping is used", sink, 0x3333);
  test_pt[5] = frame(2) | P | W;
  write_cr3(read_cr3());
  try_call(read32, TEST + 0x5000);
  EQ("after a CR3 reload the new mapping is used", sink, 0x2222);

  /* Instruction fetch: no NX in 32-bit paging, so a fetch from a data page works. */
  *(u8 *)frame(3) = 0xc3; /* ret */
  map(6, frame(3) | P | W);
  CHECK("fetch from a present page", try_call(exec_at, TEST + 0x6000) == NO_TRAP);
  expect_trap("fetch from a not-present page: #PF(0), no I/D without NXE", exec_at, TEST + 0x7000, 14, 0);
  EQ("  CR2 is the fetch address", trap.cr2, TEST + 0x7000);

  /* 4.3: 4 MiB pages with CR4.PSE. */
  write_cr4(read_cr4() | CR4_PSE);
  pd[(TEST >> 22) + 1] = 0x00000000 | PS | P | W;
  invlpg(TEST + 0x400000 + (uptr)frame(0));
  *(u32 *)frame(0) = 0xabcd;
  try_call(read32, TEST + 0x400000 + (uptr)frame(0));
  EQ("a 4 MiB page maps physical 0..4 MiB", sink, 0xabcd);
  EQ("  sets A in the PDE", pd[(TEST >> 22) + 1] & A, A);
  pd[(TEST >> 22) + 1] = 0x00000000 | (1u << 21) | PS | P | W;
  invlpg(TEST + 0x400000);
  expect_trap("4 MiB PDE with reserved bit 21: #PF(P|RSVD)", read32, TEST + 0x400000, 14, 9);
  pd[(TEST >> 22) + 1] = 0;
  write_cr4(read_cr4() & ~CR4_PSE);
  write_cr0(read_cr0() & ~CR0_PG);
}

static void pae(void) {
  for (u32 t = 0; t < 8; t++) {
    for (u32 i = 0; i < 512; i++) pae_ident[t][i] = (u64)((t * 512 + i) << 12) | P | W | U;
    pae_pd[0][t] = (u64)(uptr)pae_ident[t] | P | W | U;
  }
  pae_pd[1][0] = (u64)(uptr)pae_test_pt | P | W | U; /* linear 0x40000000 */
  pdpt[0] = (u64)(uptr)pae_pd[0] | P;
  pdpt[1] = (u64)(uptr)pae_pd[1] | P;
  write_cr4(read_cr4() | CR4_PAE);
  write_cr3((uptr)pdpt);
  wrmsr(EFER, rdmsr(EFER) | EFER_NXE);
  write_cr0(read_cr0() | CR0_PG);

  *(u8 *)frame(3) = 0xc3;
  pae_test_pt[0] = (u64)frame(3) | P | W;
  invlpg(TEST);
  CHECK("PAE: fetch from an executable page", try_call(exec_at, TEST) == NO_TRAP);
  pae_test_pt[0] = (u64)frame(3) | P | W | (1ull << 63);
  invlpg(TEST);
  expect_trap("PAE: fetch from an XD page: #PF(P|I/D)", exec_at, TEST, 14, 0x11);
  CHECK("PAE: read of an XD page", try_call(read32, TEST) == NO_TRAP);
  expect_trap("PAE: fetch from a not-present page with NXE: #PF(I/D)", exec_at, TEST + 0x1000, 14, 0x10);
  pae_test_pt[2] = (u64)frame(3) | P | W | (1ull << 40);
  invlpg(TEST + 0x2000);
  expect_trap("PAE: PTE with physical bit 40 (MAXPHYADDR 36): #PF(P|RSVD)", read32, TEST + 0x2000, 14, 9);
  /* 2 MiB page: PD[1][1] maps linear 0x40200000 to physical 0. */
  pae_pd[1][1] = PS | P | W;
  invlpg(TEST + 0x200000);
  *(u32 *)frame(1) = 0xfeed;
  try_call(read32, TEST + 0x200000 + (uptr)frame(1));
  EQ("PAE: a 2 MiB page maps physical 0..2 MiB", sink, 0xfeed);
  pae_pd[1][1] = PS | P | W | (1u << 13);
  invlpg(TEST + 0x200000);
  expect_trap("PAE: 2 MiB PDE with reserved bit 13: #PF(P|RSVD)", read32, TEST + 0x200000, 14, 9);
  pae_pd[1][1] = 0;
  wrmsr(EFER, rdmsr(EFER) & ~(u64)EFER_NXE);
  pae_test_pt[0] = (u64)frame(3) | P | W | (1ull << 63);
  invlpg(TEST);
  expect_trap("PAE without NXE: bit 63 is reserved: #PF(P|RSVD)", read32, TEST, 14, 9);
  write_cr0(read_cr0() & ~CR0_PG);
}

u32 kmain(u32 magic, struct multiboot_info *info) {
  (void)magic;
  (void)info;
  harness_init();
  two_level();
  pae();
  return finish();
}
