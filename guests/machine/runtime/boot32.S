/*
 * i386 entry for the bare-machine kernels: a Multiboot header (the kernel is an ELF32 file,
 * so no address fields), a stack, and a call to kmain(magic, info). kmain's return value is
 * the exit code.
 */
#define MB_MAGIC 0x1badb002
#define MB_FLAGS 0x00000003 /* page-align modules, want memory info */

  .section .multiboot, "a"
  .balign 4
  .long MB_MAGIC
  .long MB_FLAGS
  .long -(MB_MAGIC + MB_FLAGS)

  .text
  .globl _start
_start:
  mov $stack_top, %esp
  cld
  push %ebx
  push %eax
  call kmain
  push %eax
  call exit

  .bss
  .balign 16
  .skip 65536
stack_top:
