/* Start of day of a 32-bit PAE PV guest: ELF notes, entry, trap and event stubs. */
#include <xen/elfnote.h>
#define VIRT_BASE 0xC0000000

#define NOTE(type, kind, value) \
  .pushsection .note.Xen, "a", @note; .balign 4; .long 2f - 1f; .long 4f - 3f; .long type; \
  1: .asciz "Xen"; 2: .balign 4; 3: kind value; 4: .balign 4; .popsection

NOTE(XEN_ELFNOTE_GUEST_OS, .asciz, "tsxen-test")
NOTE(XEN_ELFNOTE_GUEST_VERSION, .asciz, "1")
NOTE(XEN_ELFNOTE_XEN_VERSION, .asciz, "xen-3.0")
NOTE(XEN_ELFNOTE_LOADER, .asciz, "generic")
NOTE(XEN_ELFNOTE_VIRT_BASE, .long, VIRT_BASE)
NOTE(XEN_ELFNOTE_PADDR_OFFSET, .long, VIRT_BASE)
NOTE(XEN_ELFNOTE_ENTRY, .long, _start)
NOTE(XEN_ELFNOTE_HYPERCALL_PAGE, .long, hypercall_page)
NOTE(XEN_ELFNOTE_PAE_MODE, .asciz, "yes")
NOTE(XEN_ELFNOTE_FEATURES, .asciz, "pae_pgdir_above_4gb")

  .section .text.head, "ax"
  .globl _start
_start:
  cld
  movl $stack_top, %esp
  pushl %esi
  call pv_start
1: jmp 1b

  .balign 4096
  .globl hypercall_page
hypercall_page:
  .fill 4096, 1, 0xc3

  .text
/* Exception stubs: push a dummy error code when the CPU has none, then the vector. */
.macro TRAP vec, err
  .globl trap_\vec
trap_\vec:
  .if \err == 0
  pushl $0
  .endif
  pushl $\vec
  jmp trap_common
.endm
TRAP 0,0; TRAP 1,0; TRAP 2,0; TRAP 3,0; TRAP 4,0; TRAP 5,0; TRAP 6,0; TRAP 7,0
TRAP 8,1; TRAP 9,0; TRAP 10,1; TRAP 11,1; TRAP 12,1; TRAP 13,1; TRAP 14,1; TRAP 15,0
TRAP 16,0; TRAP 17,1; TRAP 18,0; TRAP 19,0; TRAP 32,0; TRAP 128,0; TRAP 129,0; TRAP 130,0

/* Data segments may be user ones (or null after a return to ring 3): save them and load the
 * kernel's flat data segment, as a ring-1 kernel's entry code must. */
trap_common:
  pushal
  pushl %ds
  pushl %es
  movl $0xe021, %eax
  movl %eax, %ds
  movl %eax, %es
  leal 8(%esp), %eax
  pushl %eax
  call trap_dispatch
  addl $4, %esp
  popl %es
  popl %ds
  popal
  addl $8, %esp
  iret

  .globl event_entry
event_entry:
  pushl $0
  pushl $-1
  pushal
  pushl %ds
  pushl %es
  movl $0xe021, %eax
  movl %eax, %ds
  movl %eax, %es
  call event_dispatch
  popl %es
  popl %ds
  popal
  addl $8, %esp
  iret

  .globl failsafe_entry
failsafe_entry:
  pushl $0
  pushl $-2
  jmp trap_common

  .bss
  .balign 16
  .space 16384
  .globl stack_top
stack_top:
