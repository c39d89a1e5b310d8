/*
 * x86-64 entry for the bare-machine kernels. The boot loader starts us in 32-bit protected mode
 * with paging off, so this file is assembled as a 64-bit object (gcc -m64) whose first part is
 * .code32: it identity-maps the first 16 MiB with 4 KiB pages (PML4 -> PDPT -> PD -> 8 PTs),
 * enables PAE, sets EFER.LME, turns paging on, loads a GDT with a 64-bit code segment and
 * far-jumps to .code64, which calls kmain(magic, info).
 *
 * The linked ELF64 file is turned into a flat binary (objcopy -O binary); the Multiboot header
 * carries the address fields (flag 16), which is how a Multiboot 1 loader places a kernel that
 * is not ELF32. 4 KiB pages rather than 2 MiB ones keep the page walk the same shape as the
 * 32-bit kernels' and ask the least of the processor.
 */
#define MB_MAGIC 0x1badb002
#define MB_FLAGS 0x00010003 /* address fields, page-align modules, want memory info */

  .section .multiboot, "a"
  .balign 4
multiboot_header:
  .long MB_MAGIC
  .long MB_FLAGS
  .long -(MB_MAGIC + MB_FLAGS)
  .long multiboot_header /* header_addr */
  .long __load_start     /* load_addr */
  .long __load_end       /* load_end_addr */
  .long __bss_end        /* bss_end_addr */
  .long _start           /* entry_addr */

  .text
  .code32
  .globl _start
_start:
  mov %eax, %edi /* keep the Multiboot registers; they become kmain's arguments */
  mov %ebx, %esi
  mov $stack_top, %esp
  cld

  /* Page tables live in .bss, which the loader zeroed. */
  mov $pml4, %ebx
  lea 0x1003(%ebx), %eax /* pml4[0] -> pdpt */
  mov %eax, (%ebx)
  lea 0x2003(%ebx), %eax /* pdpt[0] -> pd */
  mov %eax, 0x1000(%ebx)
  lea 0x3003(%ebx), %eax /* pd[0..7] -> pt0..pt7 */
  xor %ecx, %ecx
1:
  mov %eax, 0x2000(%ebx, %ecx, 8)
  add $0x1000, %eax
  inc %ecx
  cmp $8, %ecx
  jne 1b
  mov $0x3, %eax /* pt entries: frame i, present + writable */
  xor %ecx, %ecx
2:
  mov %eax, 0x3000(%ebx, %ecx, 8)
  add $0x1000, %eax
  inc %ecx
  cmp $4096, %ecx
  jne 2b

  mov %cr4, %eax
  or $0x20, %eax /* PAE */
  mov %eax, %cr4
  mov %ebx, %cr3
  mov $0xc0000080, %ecx /* EFER */
  rdmsr
  or $0x100, %eax /* LME */
  wrmsr
  mov %cr0, %eax
  or $0x80000001, %eax /* PG (and PE, already set) */
  mov %eax, %cr0
  lgdt gdt_pointer
  ljmp $0x08, $long_mode

  .code64
long_mode:
  mov $0x10, %ax
  mov %ax, %ds
  mov %ax, %es
  mov %ax, %ss
  mov %ax, %fs
  mov %ax, %gs
  mov $stack_top, %rsp
  /* edi = magic, esi = info (zero-extended by the 32-bit moves above) */
  call kmain
  mov %eax, %edi
  call exit

  .section .rodata
  .balign 8
gdt:
  .quad 0
  .quad 0x00209a0000000000 /* 0x08: 64-bit code, present, DPL 0 */
  .quad 0x0000920000000000 /* 0x10: data, present, writable */
gdt_end:
gdt_pointer:
  .word gdt_end - gdt - 1
  .long gdt

  .bss
  .balign 4096
pml4:
  .skip 0x1000
pdpt:
  .skip 0x1000
pd:
  .skip 0x1000
page_tables:
  .skip 0x8000
  .balign 16
  .skip 65536
stack_top:
