/*
 * real32: real-address mode, checked against the Intel SDM vol. 3 §9.9 (switching modes),
 * §20.1 (real-address mode: the IVT, FLAGS/CS/IP pushed, IF/TF cleared, no error codes) and
 * vol. 2 (INT n, IRET; #GP for an operand past offset 0xFFFF). The kernel drops from 32-bit
 * protected mode through 16-bit protected mode into real mode, runs the checks' code there,
 * and comes back; the C side then compares what the 16-bit code recorded.
 */
#include "harness.h"

#define SEL_CODE16 0x40 /* 16-bit code, base 0x7000, limit 0xffff */
#define SEL_DATA16 0x48 /* 16-bit data, base 0x7000, limit 0xffff */
#define BLOB 0x7000u    /* where the real-mode code runs (CS = 0x0700) */

extern char rm_blob[], rm_blob_end[], rm_after_int[], rm_div[], rm_after_div[];
extern u16 r_flags_before, r_sp_in40, r_ip40, r_cs40, r_flags40, r_flags_in40, r_ip0, r_ip13, r_sp13;
extern u32 r_unreal;
void go_real(uptr);

__asm__(
    ".text\n"
    ".code32\n"
    "go_real:\n"
    "  pusha\n"
    "  mov %esp, saved_esp32\n"
    "  sidt saved_idtr\n"
    "  mov $0x10, %eax\n  mov %eax, %fs\n" /* flat 4 GiB: kept as 'unreal' FS in real mode */
    "  mov $0x48, %eax\n  mov %eax, %ds\n  mov %eax, %es\n  mov %eax, %ss\n  mov %eax, %gs\n"
    "  ljmp $0x40, $(rm_entry - rm_blob)\n"

    ".code16\n"
    "rm_blob:\n"
    "rm_entry:\n" /* 16-bit protected mode, CS base 0x7000 */
    "  mov %cr0, %eax\n  and $0xfffffffe, %eax\n  mov %eax, %cr0\n"
    "  ljmp $0x0700, $(rm_real - rm_blob)\n"
    "rm_real:\n"
    "  mov $0x0700, %ax\n  mov %ax, %ds\n  mov %ax, %ss\n  mov $0x0ff0, %sp\n"
    "  xor %ax, %ax\n  mov %ax, %es\n"
    "  lidt (rm_ivt_ptr - rm_blob)\n"
    "  movw $(rm_h40 - rm_blob), %es:(0x40 * 4)\n  movw $0x0700, %es:(0x40 * 4 + 2)\n"
    "  movw $(rm_h0 - rm_blob), %es:0\n  movw $0x0700, %es:2\n"
    "  movw $(rm_h13 - rm_blob), %es:(13 * 4)\n  movw $0x0700, %es:(13 * 4 + 2)\n"
    "  sti\n"
    "  pushf\n  popw (r_flags_before - rm_blob)\n"
    "  int $0x40\n"
    "rm_after_int:\n"
    "  cli\n"
    "  mov $7, %ax\n  xor %bl, %bl\n"
    "rm_div:\n"
    "  div %bl\n" /* #DE: the handler skips these 2 bytes */
    "rm_after_div:\n"
    "  mov 0xffff, %ax\n" /* a word at DS:0xFFFF: #GP; the handler skips these 3 bytes */
    "  mov $0x00100000, %esi\n"
    "  addr32 mov %fs:(%esi), %eax\n" /* unreal mode: FS kept its 4 GiB limit */
    "  mov %eax, (r_unreal - rm_blob)\n"
    "  mov %cr0, %eax\n  or $1, %eax\n  mov %eax, %cr0\n"
    "  ljmpl $0x08, $rm_back32\n"

    "rm_h40:\n"
    "  mov %sp, (r_sp_in40 - rm_blob)\n"
    "  push %bp\n  mov %sp, %bp\n"
    "  mov 2(%bp), %ax\n  mov %ax, (r_ip40 - rm_blob)\n"
    "  mov 4(%bp), %ax\n  mov %ax, (r_cs40 - rm_blob)\n"
    "  mov 6(%bp), %ax\n  mov %ax, (r_flags40 - rm_blob)\n"
    "  pushf\n  popw (r_flags_in40 - rm_blob)\n"
    "  pop %bp\n  iret\n"
    "rm_h0:\n"
    "  push %bp\n  mov %sp, %bp\n"
    "  mov 2(%bp), %ax\n  mov %ax, (r_ip0 - rm_blob)\n"
    "  addw $2, 2(%bp)\n"
    "  pop %bp\n  iret\n"
    "rm_h13:\n"
    "  mov %sp, (r_sp13 - rm_blob)\n"
    "  push %bp\n  mov %sp, %bp\n"
    "  mov 2(%bp), %ax\n  mov %ax, (r_ip13 - rm_blob)\n"
    "  addw $3, 2(%bp)\n"
    "  pop %bp\n  iret\n"

    "  .balign 4\n"
    "rm_ivt_ptr: .word 0x3ff\n  .long 0\n"
    "r_flags_before: .word 0\n"
    "r_sp_in40: .word 0\n"
    "r_ip40: .word 0\n"
    "r_cs40: .word 0\n"
    "r_flags40: .word 0\n"
    "r_flags_in40: .word 0\n"
    "r_ip0: .word 0\n"
    "r_ip13: .word 0\n"
    "r_sp13: .word 0\n"
    "  .balign 4\n"
    "r_unreal: .long 0\n"
    "rm_blob_end:\n"

    ".code32\n"
    "rm_back32:\n"
    "  mov $0x10, %eax\n  mov %eax, %ss\n"
    "  mov $0x23, %eax\n  mov %eax, %ds\n  mov %eax, %es\n  mov %eax, %fs\n  mov %eax, %gs\n"
    "  mov saved_esp32, %esp\n"
    "  lidt saved_idtr\n"
    "  popa\n"
    "  ret\n"
    ".data\n"
    "saved_esp32: .long 0\n"
    "saved_idtr: .word 0\n  .long 0\n"
    ".text\n");

/* The blob's variables as the real-mode code left them in the copy at BLOB. */
#define AT(sym) ((uptr)BLOB + ((uptr)&(sym) - (uptr)rm_blob))
#define R16(sym) (*(volatile u16 *)AT(sym))
#define OFF(label) ((uptr)(label) - (uptr)rm_blob)

u32 kmain(u32 magic, struct multiboot_info *info) {
  (void)magic;
  (void)info;
  harness_init();
  gdt_set(SEL_CODE16, seg_desc(BLOB, 0xffff, 0x9a, 0));
  gdt_set(SEL_DATA16, seg_desc(BLOB, 0xffff, 0x92, 0));
  CHECK("the real-mode blob fits below its stack", (uptr)(rm_blob_end - rm_blob) < 0xf00);
  memcpy((void *)BLOB, rm_blob, (uptr)(rm_blob_end - rm_blob));
  u32 expect_unreal = *(volatile u32 *)0x100000;
  go_real(0);
  CHECK("back in 32-bit protected mode", (read_cr0() & 1) == 1);
  EQ("INT 0x40 through the IVT: pushed IP is the next instruction", R16(r_ip40), OFF(rm_after_int));
  EQ("  pushed CS", R16(r_cs40), 0x0700);
  EQ("  pushed FLAGS are FLAGS before the INT", R16(r_flags40), R16(r_flags_before));
  EQ("  IF was set before", R16(r_flags_before) & 0x200, 0x200);
  EQ("  IF and TF clear in the handler", R16(r_flags_in40) & 0x300, 0);
  EQ("  three words pushed", R16(r_sp_in40), 0x0ff0 - 6);
  EQ("#DE through the IVT: pushed IP is the DIV (a fault)", R16(r_ip0), OFF(rm_div));
  EQ("#GP for a word at offset 0xFFFF: pushed IP is the MOV", R16(r_ip13), OFF(rm_after_div));
  EQ("  no error code in real mode", R16(r_sp13), 0x0ff0 - 6);
  EQ("unreal mode: FS keeps its 4 GiB limit after PE is cleared", *(volatile u32 *)AT(r_unreal), expect_unreal);
  return finish();
}
