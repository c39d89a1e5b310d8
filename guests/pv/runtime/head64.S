/* Start of day of a 64-bit PV guest: ELF notes, entry, trap and event stubs. */
#include <xen/elfnote.h>
#define VIRT_BASE 0x40000000

#define NOTE(type, kind, value) \
  .pushsection .note.Xen, "a", @note; .balign 4; .long 2f - 1f; .long 4f - 3f; .long type; \
  1: .asciz "Xen"; 2: .balign 4; 3: kind value; 4: .balign 4; .popsection

NOTE(XEN_ELFNOTE_GUEST_OS, .asciz, "tsxen-test")
NOTE(XEN_ELFNOTE_GUEST_VERSION, .asciz, "1")
NOTE(XEN_ELFNOTE_XEN_VERSION, .asciz, "xen-3.0")
NOTE(XEN_ELFNOTE_LOADER, .asciz, "generic")
NOTE(XEN_ELFNOTE_VIRT_BASE, .quad, VIRT_BASE)
NOTE(XEN_ELFNOTE_PADDR_OFFSET, .quad, VIRT_BASE)
NOTE(XEN_ELFNOTE_ENTRY, .quad, _start)
NOTE(XEN_ELFNOTE_HYPERCALL_PAGE, .quad, hypercall_page)

  .section .text.head, "ax"
  .globl _start
_start:
  cld
  leaq stack_top(%rip), %rsp
  movq %rsi, %rdi
  call pv_start
1: jmp 1b

  .balign 4096
  .globl hypercall_page
hypercall_page:
  .fill 4096, 1, 0xc3

  .text
/* Xen's 64-bit frame: RCX, R11, [err], RIP, CS, RFLAGS, RSP, SS. */
.macro TRAP vec, err
  .globl trap_\vec
trap_\vec:
  popq %rcx
  popq %r11
  .if \err == 0
  pushq $0
  .endif
  pushq $\vec
  jmp trap_common
.endm
TRAP 0,0; TRAP 1,0; TRAP 2,0; TRAP 3,0; TRAP 4,0; TRAP 5,0; TRAP 6,0; TRAP 7,0
TRAP 8,1; TRAP 9,0; TRAP 10,1; TRAP 11,1; TRAP 12,1; TRAP 13,1; TRAP 14,1; TRAP 15,0
TRAP 16,0; TRAP 17,1; TRAP 18,0; TRAP 19,0; TRAP 32,0; TRAP 128,0; TRAP 129,0; TRAP 130,0

.macro SAVE
  pushq %rax; pushq %rbx; pushq %rcx; pushq %rdx; pushq %rsi; pushq %rdi; pushq %rbp
  pushq %r8; pushq %r9; pushq %r10; pushq %r11; pushq %r12; pushq %r13; pushq %r14; pushq %r15
.endm
.macro RESTORE
  popq %r15; popq %r14; popq %r13; popq %r12; popq %r11; popq %r10; popq %r9; popq %r8
  popq %rbp; popq %rdi; popq %rsi; popq %rdx; popq %rcx; popq %rbx; popq %rax
.endm

trap_common:
  SAVE
  movq %rsp, %rdi
  call trap_dispatch
  RESTORE
  addq $16, %rsp
return_from_trap:
  testb $3, 8(%rsp)
  jnz 1f
  orb $3, 8(%rsp)     /* kernel to kernel: a native iretq (RPL 0 in the frame means kernel) */
  iretq
1:                    /* to user mode: HYPERVISOR_iret {rax, r11, rcx, flags, rip, cs, rflags, rsp, ss} */
  pushq $0
  pushq %rcx
  pushq %r11
  pushq %rax
  movl $23, %eax
  syscall

  .globl event_entry
event_entry:
  popq %rcx
  popq %r11
  pushq $0
  pushq $-1
  SAVE
  call event_dispatch
  RESTORE
  addq $16, %rsp
  jmp return_from_trap

  .globl failsafe_entry
failsafe_entry:
  popq %rcx
  popq %r11
  pushq $0
  pushq $-2
  jmp trap_common

  .globl syscall_entry
syscall_entry:
  popq %rcx
  popq %r11
  pushq $0
  pushq $-3
  jmp trap_common

  .bss
  .balign 16
  .space 16384
  .globl stack_top
stack_top:
